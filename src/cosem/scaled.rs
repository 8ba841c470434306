//! Exact scaled register values (Blue Book 4.3.2: value x 10^scaler).
//!
//! A register holding 2301 with scaler -1 is 230.1 V exactly; going through `f64` would print
//! 230.10000000000002 for some values. [`ScaledValue`] keeps the integer and the power of ten
//! and prints the exact decimal.

use crate::dlms::axdr::Data;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaledValue {
    pub mantissa: i128,
    pub exponent: i8,
}

impl ScaledValue {
    /// Applies a scaler to an integer register value; `None` for non-integer data (floats are
    /// scaled with [`scale_float`]).
    pub fn from_data(value: &Data, scaler: i8) -> Option<ScaledValue> {
        value.as_i128().map(|mantissa| ScaledValue {
            mantissa,
            exponent: scaler,
        })
    }

    /// The nearest `f64` (for JSON numbers).
    pub fn to_f64(self) -> f64 {
        // Parsing the exact decimal gives the correctly rounded f64, which multiplying by a
        // power of ten would not.
        self.to_string().parse().unwrap_or(f64::NAN)
    }
}

/// A float register scaled by 10^scaler.
pub fn scale_float(value: f64, scaler: i8) -> f64 {
    format!("{value}e{scaler}").parse().unwrap_or(f64::NAN)
}

impl fmt::Display for ScaledValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let negative = self.mantissa < 0;
        let digits = self.mantissa.unsigned_abs().to_string();
        let sign = if negative { "-" } else { "" };
        if self.exponent >= 0 {
            let zeros = "0".repeat(self.exponent as usize);
            return if digits == "0" {
                f.write_str("0")
            } else {
                write!(f, "{sign}{digits}{zeros}")
            };
        }
        let frac = self.exponent.unsigned_abs() as usize;
        let padded = format!("{digits:0>width$}", width = frac + 1);
        let (int, dec) = padded.split_at(padded.len() - frac);
        let dec = dec.trim_end_matches('0');
        if dec.is_empty() {
            write!(f, "{sign}{int}")
        } else {
            write!(f, "{sign}{int}.{dec}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(m: i128, e: i8) -> String {
        ScaledValue {
            mantissa: m,
            exponent: e,
        }
        .to_string()
    }

    #[test]
    fn exact_decimals() {
        assert_eq!(s(2301, -1), "230.1");
        assert_eq!(s(5, -3), "0.005");
        assert_eq!(s(-5, -3), "-0.005");
        assert_eq!(s(12345, 0), "12345");
        assert_eq!(s(12, 3), "12000");
        assert_eq!(s(2300, -2), "23");
        assert_eq!(s(0, 3), "0");
        assert_eq!(s(i128::from(u64::MAX), -2), "184467440737095516.15");
        assert_eq!(
            ScaledValue {
                mantissa: 2301,
                exponent: -1
            }
            .to_f64(),
            230.1
        );
    }

    #[test]
    fn from_register_data() {
        let v = ScaledValue::from_data(&Data::LongUnsigned(2301), -1).unwrap();
        assert_eq!(v.to_string(), "230.1");
        assert!(ScaledValue::from_data(&Data::OctetString(vec![]), 0).is_none());
        assert_eq!(scale_float(2301.0, -1), 230.1);
    }
}
