//! COSEM physical units (Blue Book 4.3.2, "scaler_unit": the `unit` enumeration).
//!
//! The table is the Blue Book's, codes 1-72 plus 254 (other) and 255 (no unit / count);
//! imperial units (128-174) are reported by code only.

use std::fmt;

/// A unit code from a `scaler_unit` structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unit(pub u8);

/// (code, symbol, quantity)
const TABLE: &[(u8, &str, &str)] = &[
    (1, "a", "year"),
    (2, "mo", "month"),
    (3, "wk", "week"),
    (4, "d", "day"),
    (5, "h", "hour"),
    (6, "min", "minute"),
    (7, "s", "second"),
    (8, "°", "phase angle"),
    (9, "°C", "temperature"),
    (10, "currency", "local currency"),
    (11, "m", "length"),
    (12, "m/s", "speed"),
    (13, "m³", "volume"),
    (14, "m³", "corrected volume"),
    (15, "m³/h", "volume flux"),
    (16, "m³/h", "corrected volume flux"),
    (17, "m³/d", "volume flux per day"),
    (18, "m³/d", "corrected volume flux per day"),
    (19, "l", "volume"),
    (20, "kg", "mass"),
    (21, "N", "force"),
    (22, "Nm", "energy"),
    (23, "Pa", "pressure"),
    (24, "bar", "pressure"),
    (25, "J", "energy"),
    (26, "J/h", "thermal power"),
    (27, "W", "active power"),
    (28, "VA", "apparent power"),
    (29, "var", "reactive power"),
    (30, "Wh", "active energy"),
    (31, "VAh", "apparent energy"),
    (32, "varh", "reactive energy"),
    (33, "A", "current"),
    (34, "C", "electrical charge"),
    (35, "V", "voltage"),
    (36, "V/m", "electric field strength"),
    (37, "F", "capacitance"),
    (38, "Ω", "resistance"),
    (39, "Ωm²/m", "resistivity"),
    (40, "Wb", "magnetic flux"),
    (41, "T", "magnetic flux density"),
    (42, "A/m", "magnetic field strength"),
    (43, "H", "inductance"),
    (44, "Hz", "frequency"),
    (45, "1/(Wh)", "active energy meter constant"),
    (46, "1/(varh)", "reactive energy meter constant"),
    (47, "1/(VAh)", "apparent energy meter constant"),
    (48, "V²h", "volt-squared hours"),
    (49, "A²h", "ampere-squared hours"),
    (50, "kg/s", "mass flux"),
    (51, "S", "conductance"),
    (52, "K", "temperature"),
    (53, "1/(V²h)", "volt-squared hour meter constant"),
    (54, "1/(A²h)", "ampere-squared hour meter constant"),
    (55, "1/m³", "volume meter constant"),
    (56, "%", "percentage"),
    (57, "Ah", "ampere hours"),
    (60, "Wh/m³", "energy per volume"),
    (61, "J/m³", "calorific value"),
    (62, "mol %", "molar fraction"),
    (63, "g/m³", "mass density"),
    (64, "Pa s", "dynamic viscosity"),
    (65, "J/kg", "specific energy"),
    (66, "g/cm²", "pressure"),
    (67, "atm", "pressure"),
    (70, "dBm", "signal strength"),
    (71, "dBµV", "signal strength"),
    (72, "dB", "logarithmic unit"),
    (254, "other", "other unit"),
    (255, "", "count (no unit)"),
];

impl Unit {
    pub const WATT: Unit = Unit(27);
    pub const VOLT_AMPERE: Unit = Unit(28);
    pub const VAR: Unit = Unit(29);
    pub const WATT_HOUR: Unit = Unit(30);
    pub const AMPERE: Unit = Unit(33);
    pub const VOLT: Unit = Unit(35);
    pub const HERTZ: Unit = Unit(44);
    pub const NONE: Unit = Unit(255);

    fn entry(self) -> Option<&'static (u8, &'static str, &'static str)> {
        TABLE.iter().find(|e| e.0 == self.0)
    }

    /// The symbol ("V", "Wh"); empty for "no unit"; `None` for codes outside the table.
    pub fn symbol(self) -> Option<&'static str> {
        self.entry().map(|e| e.1)
    }

    /// What the unit measures ("voltage").
    pub fn quantity(self) -> Option<&'static str> {
        self.entry().map(|e| e.2)
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.symbol() {
            Some(s) => f.write_str(s),
            None => write!(f, "unit({})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn electricity_units_from_the_blue_book() {
        // The codes DLMS-NOTES lists, checked against the Blue Book table.
        for (code, sym) in [
            (27, "W"),
            (28, "VA"),
            (29, "var"),
            (30, "Wh"),
            (33, "A"),
            (35, "V"),
            (44, "Hz"),
        ] {
            assert_eq!(Unit(code).symbol(), Some(sym));
        }
        assert_eq!(Unit::NONE.symbol(), Some(""));
        assert_eq!(Unit(35).quantity(), Some("voltage"));
        assert_eq!(Unit(0).symbol(), None);
        assert_eq!(Unit(200).to_string(), "unit(200)");
    }

    #[test]
    fn table_codes_are_unique_and_ordered() {
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
