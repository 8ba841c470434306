//! The data block of a readout (IEC 62056-21 6.3, the data message's data block and data set structure): lines
//! of data sets `address(value*unit)`, a set possibly with more value groups `(..)(..)`; the
//! address read as an OBIS code (IEC 62056-6-1: A-B:C.D.E*F with A, B and F often left out),
//! the value as an exact decimal where it is a number.

use super::Iec21Error;
use crate::cosem::{Obis, ScaledValue};

/// One `(value*unit)` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueGroup {
    pub value: String,
    pub unit: Option<String>,
}

/// One data set: its address and its value groups (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSet {
    pub address: String,
    pub groups: Vec<ValueGroup>,
}

/// A data set's value as the bridge publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadingValue {
    /// A decimal number, exactly as sent (`0012345.678` is 12345678 x 10^-3).
    Number(ScaledValue),
    /// Anything else (a serial number, a date, a status word).
    Text(String),
}

/// The reading a data set stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub value: ReadingValue,
    pub unit: Option<String>,
}

/// Value group C letters (IEC 62056-6-1 clause 5.4 / 62056-21 data set addresses):
/// C 96 (general service), F 97 (error messages), L 98 (lists), P 99 (data profiles).
fn group_number(text: &str) -> Option<u8> {
    match text {
        "C" => Some(96),
        "F" => Some(97),
        "L" => Some(98),
        "P" => Some(99),
        _ if !text.is_empty() && text.len() <= 3 && text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse().ok()
        }
        _ => None,
    }
}

impl DataSet {
    /// The address as an OBIS code: `1-0:1.8.0*255`, `1.8.0`, `1-0:1.8.0`, `1:1.8.0`,
    /// `1.8.0*01` or `1.8.0&01` (historical values), `C.1.0`, `F.F`. What is left out is the
    /// usual: A 0 for the abstract groups C 96-99 (`C.1.0` is 0-0:96.1.0), else 1
    /// (electricity); B 0; E 0; F 255 (IEC 62056-6-1 clause 5.1: F 255 "not used").
    pub fn obis(&self) -> Option<Obis> {
        let (prefix, rest) = match self.address.split_once(':') {
            Some((p, r)) => (Some(p), r),
            None => (None, self.address.as_str()),
        };
        let (cde, f) = match rest.split_once(['*', '&']) {
            Some((cde, f)) => (cde, Some(f)),
            None => (rest, None),
        };
        let mut parts = cde.split('.');
        let c = group_number(parts.next()?)?;
        let d = group_number(parts.next()?)?;
        let e = match parts.next() {
            Some(e) => group_number(e)?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        let f = match f {
            Some(f) => group_number(f)?,
            None => 255,
        };
        let default_a = if (96..=99).contains(&c) { 0 } else { 1 };
        let (a, b) = match prefix.map(|p| p.split_once('-')) {
            None => (default_a, 0),
            Some(Some((a, b))) => (group_number(a)?, group_number(b)?),
            Some(None) => (default_a, group_number(prefix?)?),
        };
        Some(Obis::new(a, b, c, d, e, f))
    }

    /// The reading: the first value group that carries a unit (a maximum demand's value
    /// beside its time stamp), else the first group.
    pub fn reading(&self) -> Option<Reading> {
        let group = self
            .groups
            .iter()
            .find(|g| g.unit.is_some())
            .or_else(|| self.groups.first())?;
        let value = match decimal(&group.value) {
            Some(n) => ReadingValue::Number(n),
            None => ReadingValue::Text(group.value.clone()),
        };
        Some(Reading {
            value,
            unit: group.unit.clone(),
        })
    }
}

/// `[+-]digits[.digits]` as an exact decimal; `None` for anything else or more digits than an
/// i128 holds.
pub fn decimal(text: &str) -> Option<ScaledValue> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..)?),
        Some(b'+') => (false, text.get(1..)?),
        _ => (false, text),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits_only(int) || !digits_only(frac) || int.len() + frac.len() > 38 {
        return None;
    }
    let mut mantissa: i128 = format!("{int}{frac}").parse().ok()?;
    if negative {
        mantissa = -mantissa;
    }
    let exponent = -i8::try_from(frac.len()).ok()?;
    Some(ScaledValue { mantissa, exponent })
}

/// Characters a data set's address or value may not contain (IEC 62056-21 data set structure: the front and
/// rear boundary characters, the separator, the start and end characters).
fn forbidden(b: u8) -> bool {
    matches!(b, b'(' | b')' | b'/' | b'!') || !(b.is_ascii_graphic() || b == b' ')
}

/// Parses the data block (the lines between STX and the end character `!`).
pub fn parse_data_block(block: &[u8]) -> Result<Vec<DataSet>, Iec21Error> {
    let mut sets: Vec<DataSet> = Vec::new();
    for (i, line) in block.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        parse_line(line, &mut sets).map_err(|()| Iec21Error::BadDataLine(i + 1))?;
    }
    Ok(sets)
}

/// One data line: data sets one after another; a group without an address continues the set
/// before it (value groups of one set may be split over lines).
fn parse_line(mut line: &[u8], sets: &mut Vec<DataSet>) -> Result<(), ()> {
    while !line.is_empty() {
        let open = line.iter().position(|b| *b == b'(').ok_or(())?;
        let (address, rest) = line.split_at(open);
        let close = rest.iter().position(|b| *b == b')').ok_or(())?;
        let inner = rest.get(1..close).ok_or(())?;
        line = rest.get(close + 1..).ok_or(())?;
        // Spaces around an address are layout (some meters align their lines).
        let address = address.trim_ascii();
        if address.iter().any(|b| forbidden(*b) || *b == b'*') || address.len() > 32 {
            return Err(());
        }
        if inner.iter().any(|b| forbidden(*b)) {
            return Err(());
        }
        let inner = String::from_utf8_lossy(inner);
        let group = match inner.split_once('*') {
            Some((v, u)) => ValueGroup {
                value: v.to_string(),
                unit: Some(u.to_string()),
            },
            None => ValueGroup {
                value: inner.into_owned(),
                unit: None,
            },
        };
        if address.is_empty() {
            sets.last_mut().ok_or(())?.groups.push(group);
        } else {
            sets.push(DataSet {
                address: String::from_utf8_lossy(address).into_owned(),
                groups: vec![group],
            });
        }
    }
    Ok(())
}

impl DataSet {
    /// The data set as a meter writes it on a data line: `address(value*unit)(value)...`.
    pub fn to_line(&self) -> String {
        let mut out = self.address.clone();
        for g in &self.groups {
            match &g.unit {
                Some(u) => out.push_str(&format!("({}*{u})", g.value)),
                None => out.push_str(&format!("({})", g.value)),
            }
        }
        out
    }
}

/// The first data set whose address is `obis`.
pub fn find(sets: &[DataSet], obis: Obis) -> Option<&DataSet> {
    sets.iter().find(|s| s.obis() == Some(obis))
}

/// The meter's error code (`F.F`, 0-0:97.97.0) when it is not all zeros.
pub fn error_code(sets: &[DataSet]) -> Option<&str> {
    let set = find(sets, Obis::new(0, 0, 97, 97, 0, 255))?;
    let value = set.groups.first()?.value.as_str();
    (!value.bytes().all(|b| b == b'0')).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(address: &str) -> DataSet {
        DataSet {
            address: address.into(),
            groups: vec![],
        }
    }

    #[test]
    fn addresses_as_obis_codes() {
        let o = |s: &str| set(s).obis().map(|o| o.to_string());
        assert_eq!(o("1.8.0").as_deref(), Some("1-0:1.8.0*255"));
        assert_eq!(o("1-0:1.8.0*255").as_deref(), Some("1-0:1.8.0*255"));
        assert_eq!(o("1-1:32.7.0").as_deref(), Some("1-1:32.7.0*255"));
        assert_eq!(o("1.8.0*01").as_deref(), Some("1-0:1.8.0*1"));
        assert_eq!(o("1.8.0&04").as_deref(), Some("1-0:1.8.0*4"));
        assert_eq!(o("C.1.0").as_deref(), Some("0-0:96.1.0*255"));
        assert_eq!(o("F.F").as_deref(), Some("0-0:97.97.0*255"));
        assert_eq!(o("0.9.1").as_deref(), Some("1-0:0.9.1*255"));
        // pwitab's "3:14" / "3:171.0": channel 3.
        assert_eq!(o("3:171.0").as_deref(), Some("1-3:171.0.0*255"));
        for bad in [
            "",
            "1",
            "1.8.0.0",
            "x.8.0",
            "1.8.256",
            "1-0:1.8.0*x",
            "a-b:1.8.0",
        ] {
            assert_eq!(o(bad), None, "{bad}");
        }
    }

    #[test]
    fn exact_decimals() {
        let d = |s: &str| decimal(s).map(|v| (v.mantissa, v.exponent));
        assert_eq!(d("0012345.678"), Some((12_345_678, -3)));
        assert_eq!(d("230.1"), Some((2301, -1)));
        assert_eq!(d("-0.5"), Some((-5, -1)));
        assert_eq!(d("+7"), Some((7, 0)));
        assert_eq!(
            decimal("0012345.678").map(|v| v.to_string()).as_deref(),
            Some("12345.678")
        );
        for bad in ["", "-", ".5", "1.2.3", "12-11-30", "1e3", "SIM0000000001"] {
            assert_eq!(d(bad), None, "{bad}");
        }
        assert_eq!(d(&"9".repeat(39)), None, "more than an i128 holds");
    }

    /// Data lines reassembled from the values of a real meter's telegram published in
    /// blietaer/HAiR doc/ReadMe.md (a Belgian smart meter's P1 port, which writes IEC 62056-21
    /// data sets with their A-B: prefix; the page lists address and value group text): one
    /// value group with a unit, a time stamp group before the value, a list of OBIS codes,
    /// an empty value.
    #[test]
    fn data_lines_of_a_real_meter() {
        let block = b"1-0:1.8.1(001985.597*kWh)\r\n1-0:32.7.0(230.9*V)\r\n\
1-0:1.6.0(230123183000W)(13.078*kW)\r\n0-0:98.1.0(0)(1-0:1.6.0)(1-0:1.6.0)()\r\n\
0-0:96.13.0()\r\n0-0:96.14.0(0001)\r\n";
        let sets = parse_data_block(block).unwrap();
        assert_eq!(sets.len(), 6);
        let r = |i: usize| sets[i].reading().unwrap();
        assert_eq!(
            r(0),
            Reading {
                value: ReadingValue::Number(ScaledValue {
                    mantissa: 1_985_597,
                    exponent: -3
                }),
                unit: Some("kWh".into())
            }
        );
        assert_eq!(r(1).unit.as_deref(), Some("V"));
        // The maximum demand: its value, not its time stamp.
        assert_eq!(
            r(2).value,
            ReadingValue::Number(ScaledValue {
                mantissa: 13078,
                exponent: -3
            })
        );
        assert_eq!(sets[2].groups[0].value, "230123183000W");
        assert_eq!(sets[3].groups.len(), 4);
        assert_eq!(r(4).value, ReadingValue::Text(String::new()));
        assert_eq!(
            find(&sets, Obis::new(0, 0, 96, 14, 0, 255)).map(|s| s.groups[0].value.as_str()),
            Some("0001")
        );
    }

    #[test]
    fn several_sets_per_line_and_continued_groups() {
        // pwitab iec62056-21 tests/test_data.py (TestDataLine): three sets on one line.
        let sets = parse_data_block(b"12(12*kWh)13(13*kWh)14(14*kwh)\r\n").unwrap();
        assert_eq!(sets.len(), 3);
        assert_eq!(sets[2].groups[0].unit.as_deref(), Some("kwh"));
        // A group on the next line without an address belongs to the set before it.
        let sets = parse_data_block(b"1.6.0(02.35*kW)\r\n(2212301230)\r\nF.F(00)\r\n").unwrap();
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0].groups.len(), 2);
        assert_eq!(error_code(&sets), None);
        let sets = parse_data_block(b"F.F(00400000)\r\n").unwrap();
        assert_eq!(error_code(&sets), Some("00400000"));
        assert_eq!(parse_data_block(b""), Ok(vec![]));
    }

    #[test]
    fn data_sets_write_back_as_their_lines() {
        let block = b"  1.6.0(02.35*kW)(2212301230)\r\n0.0.0(12345678)\r\n";
        let sets = parse_data_block(block).unwrap();
        assert_eq!(sets[0].address, "1.6.0", "layout spaces dropped");
        assert_eq!(sets[0].to_line(), "1.6.0(02.35*kW)(2212301230)");
        assert_eq!(sets[1].to_line(), "0.0.0(12345678)");
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        for (block, line) in [
            (&b"1.8.0(1\r\n"[..], 1),
            (b"1.8.0(1)\r\n1.8.0\r\n", 2),
            (b"(1)\r\n", 1),
            (b"1.8.0(1)x\r\n", 1),
            (b"1.8.0((1)\r\n", 1),
            (b"1.8/0(1)\r\n", 1),
            (b"1.8.0(1)\r\n\r\n1.8.0(\x01)", 3),
        ] {
            assert_eq!(
                parse_data_block(block),
                Err(Iec21Error::BadDataLine(line)),
                "{block:?}"
            );
        }
    }
}
