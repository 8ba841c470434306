//! Readout units in the DLMS base units: a readout writes `237409.176*kWh`, a DLMS register
//! the same energy as 237409176 Wh (DLMS units have no prefixes, Blue Book 4.3.2: the scaler
//! says the power of ten). A meter read either way must publish one key in one unit, or a
//! ThingsBoard chart mixing them is off by 1000 (found trying it as a new user).

use crate::cosem::ScaledValue;

/// The base units of electricity readouts (`cosem::units` symbols), and the spellings
/// meters use for them.
const BASES: [(&str, &str); 10] = [
    ("Wh", "Wh"),
    ("varh", "varh"),
    ("VArh", "varh"),
    ("VAh", "VAh"),
    ("W", "W"),
    ("var", "var"),
    ("VAr", "var"),
    ("VA", "VA"),
    ("V", "V"),
    ("A", "A"),
];

/// The value in the base unit when `unit` is a prefixed one (k: 10^3, M: 10^6, as in
/// `kWh`, `kvarh`, `MWh`), exactly (the decimal exponent moves); `None` for anything else,
/// kept as the meter wrote it.
pub fn to_base(value: ScaledValue, unit: &str) -> Option<(ScaledValue, &'static str)> {
    let (shift, rest) = match unit.as_bytes().first()? {
        b'k' => (3, unit.get(1..)?),
        b'M' => (6, unit.get(1..)?),
        _ => return None,
    };
    let base = BASES.iter().find(|(spelt, _)| *spelt == rest)?.1;
    let exponent = value.exponent.checked_add(shift)?;
    Some((
        ScaledValue {
            mantissa: value.mantissa,
            exponent,
        },
        base,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaled(mantissa: i128, exponent: i8) -> ScaledValue {
        ScaledValue { mantissa, exponent }
    }

    #[test]
    fn prefixed_units_become_base_units_exactly() {
        assert_eq!(
            to_base(scaled(237409176, -3), "kWh"),
            Some((scaled(237409176, 0), "Wh"))
        );
        assert_eq!(
            to_base(scaled(12, -1), "kvarh"),
            Some((scaled(12, 2), "varh"))
        );
        assert_eq!(to_base(scaled(5, 0), "MWh"), Some((scaled(5, 6), "Wh")));
        assert_eq!(
            to_base(scaled(1234, -3), "kW"),
            Some((scaled(1234, 0), "W"))
        );
        assert_eq!(to_base(scaled(1, 0), "kVArh"), Some((scaled(1, 3), "varh")));
    }

    #[test]
    fn other_units_are_kept() {
        for unit in ["Wh", "V", "Hz", "m3", "kg", "k", "", "kX", "°C"] {
            assert_eq!(to_base(scaled(1, 0), unit), None, "{unit:?}");
        }
        assert_eq!(to_base(scaled(1, 125), "MWh"), None, "exponent overflow");
    }
}
