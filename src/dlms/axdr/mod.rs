//! A-XDR encoding of COSEM `Data` (Green Book 9.5 "Encoding of the Data type"; IEC 61334-6).
//!
//! Every value is a one-byte type tag followed by its content: fixed-size numbers big-endian,
//! variable-size strings with an A-XDR length, arrays and structures with an element count.
//! Values decode into [`Data`], which encodes back to the same bytes (floats included, NaNs
//! bit-for-bit). Nesting is limited to [`MAX_DEPTH`] so that a hostile input cannot exhaust the
//! stack, and element counts are checked against the bytes left before anything is allocated.

mod compact;
mod datetime;

pub use compact::TypeDescription;
pub use datetime::{
    format_rfc3339, parse_rfc3339, ClockStatus, Date, DateTime, Time, DEVIATION_NOT_SPECIFIED,
};

use super::reader::write_axdr_length;
use super::{DecodeError, Reader};

/// Deepest nesting of arrays/structures accepted.
pub const MAX_DEPTH: usize = 32;

/// Type tags (Green Book 9.5, Table "Data types").
pub mod tag {
    pub const NULL: u8 = 0;
    pub const ARRAY: u8 = 1;
    pub const STRUCTURE: u8 = 2;
    pub const BOOLEAN: u8 = 3;
    pub const BIT_STRING: u8 = 4;
    pub const DOUBLE_LONG: u8 = 5;
    pub const DOUBLE_LONG_UNSIGNED: u8 = 6;
    pub const OCTET_STRING: u8 = 9;
    pub const VISIBLE_STRING: u8 = 10;
    pub const UTF8_STRING: u8 = 12;
    pub const BCD: u8 = 13;
    pub const INTEGER: u8 = 15;
    pub const LONG: u8 = 16;
    pub const UNSIGNED: u8 = 17;
    pub const LONG_UNSIGNED: u8 = 18;
    pub const COMPACT_ARRAY: u8 = 19;
    pub const LONG64: u8 = 20;
    pub const LONG64_UNSIGNED: u8 = 21;
    pub const ENUM: u8 = 22;
    pub const FLOAT32: u8 = 23;
    pub const FLOAT64: u8 = 24;
    pub const DATE_TIME: u8 = 25;
    pub const DATE: u8 = 26;
    pub const TIME: u8 = 27;
    pub const DONT_CARE: u8 = 255;
}

/// A bit-string: `bits` significant bits, most significant first, in `ceil(bits/8)` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitString {
    pub bits: usize,
    pub bytes: Vec<u8>,
}

/// A compact array (Green Book 9.5, "compact-array"): one type description, then the values
/// without their tags.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactArray {
    pub description: TypeDescription,
    pub values: Vec<Data>,
}

/// A COSEM value.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Null,
    Array(Vec<Data>),
    Structure(Vec<Data>),
    Boolean(bool),
    BitString(BitString),
    DoubleLong(i32),
    DoubleLongUnsigned(u32),
    OctetString(Vec<u8>),
    /// Kept as bytes: meters put non-ASCII bytes in visible-strings, and those must survive.
    VisibleString(Vec<u8>),
    Utf8String(String),
    Bcd(i8),
    Integer(i8),
    Long(i16),
    Unsigned(u8),
    LongUnsigned(u16),
    CompactArray(CompactArray),
    Long64(i64),
    Long64Unsigned(u64),
    Enum(u8),
    Float32(f32),
    Float64(f64),
    DateTime(DateTime),
    Date(Date),
    Time(Time),
    DontCare,
}

impl Data {
    /// Decodes exactly one value; trailing bytes are an error.
    pub fn decode(bytes: &[u8]) -> Result<Data, DecodeError> {
        let mut r = Reader::new(bytes);
        let data = Data::read(&mut r)?;
        r.finish()?;
        Ok(data)
    }

    /// Decodes one value from the front of `bytes`, returning it and the bytes used.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Data, usize), DecodeError> {
        let mut r = Reader::new(bytes);
        let data = Data::read(&mut r)?;
        Ok((data, r.position()))
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Data, DecodeError> {
        read_tagged(r, 0)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        self.encode_body(out);
    }

    pub fn tag(&self) -> u8 {
        match self {
            Data::Null => tag::NULL,
            Data::Array(_) => tag::ARRAY,
            Data::Structure(_) => tag::STRUCTURE,
            Data::Boolean(_) => tag::BOOLEAN,
            Data::BitString(_) => tag::BIT_STRING,
            Data::DoubleLong(_) => tag::DOUBLE_LONG,
            Data::DoubleLongUnsigned(_) => tag::DOUBLE_LONG_UNSIGNED,
            Data::OctetString(_) => tag::OCTET_STRING,
            Data::VisibleString(_) => tag::VISIBLE_STRING,
            Data::Utf8String(_) => tag::UTF8_STRING,
            Data::Bcd(_) => tag::BCD,
            Data::Integer(_) => tag::INTEGER,
            Data::Long(_) => tag::LONG,
            Data::Unsigned(_) => tag::UNSIGNED,
            Data::LongUnsigned(_) => tag::LONG_UNSIGNED,
            Data::CompactArray(_) => tag::COMPACT_ARRAY,
            Data::Long64(_) => tag::LONG64,
            Data::Long64Unsigned(_) => tag::LONG64_UNSIGNED,
            Data::Enum(_) => tag::ENUM,
            Data::Float32(_) => tag::FLOAT32,
            Data::Float64(_) => tag::FLOAT64,
            Data::DateTime(_) => tag::DATE_TIME,
            Data::Date(_) => tag::DATE,
            Data::Time(_) => tag::TIME,
            Data::DontCare => tag::DONT_CARE,
        }
    }

    /// The content without the tag (what compact arrays carry).
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Data::Null | Data::DontCare => {}
            Data::Array(items) | Data::Structure(items) => {
                write_axdr_length(out, items.len());
                for item in items {
                    item.encode(out);
                }
            }
            Data::Boolean(b) => out.push(u8::from(*b)),
            Data::BitString(bs) => {
                write_axdr_length(out, bs.bits);
                out.extend_from_slice(&bs.bytes);
            }
            Data::DoubleLong(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::DoubleLongUnsigned(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::OctetString(b) | Data::VisibleString(b) => {
                write_axdr_length(out, b.len());
                out.extend_from_slice(b);
            }
            Data::Utf8String(s) => {
                write_axdr_length(out, s.len());
                out.extend_from_slice(s.as_bytes());
            }
            Data::Bcd(v) | Data::Integer(v) => out.push(*v as u8),
            Data::Long(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::Unsigned(v) | Data::Enum(v) => out.push(*v),
            Data::LongUnsigned(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::CompactArray(ca) => compact::encode(ca, out),
            Data::Long64(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::Long64Unsigned(v) => out.extend_from_slice(&v.to_be_bytes()),
            Data::Float32(v) => out.extend_from_slice(&v.to_bits().to_be_bytes()),
            Data::Float64(v) => out.extend_from_slice(&v.to_bits().to_be_bytes()),
            Data::DateTime(dt) => out.extend_from_slice(&dt.to_bytes()),
            Data::Date(d) => out.extend_from_slice(&d.to_bytes()),
            Data::Time(t) => out.extend_from_slice(&t.to_bytes()),
        }
    }

    /// The value as a signed integer, for the integer types.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Data::DoubleLong(v) => v.into(),
            Data::DoubleLongUnsigned(v) => v.into(),
            Data::Integer(v) | Data::Bcd(v) => v.into(),
            Data::Long(v) => v.into(),
            Data::Unsigned(v) | Data::Enum(v) => v.into(),
            Data::LongUnsigned(v) => v.into(),
            Data::Long64(v) => v.into(),
            Data::Long64Unsigned(v) => v.into(),
            _ => return None,
        })
    }

    /// The elements of an array or structure.
    pub fn as_items(&self) -> Option<&[Data]> {
        match self {
            Data::Array(v) | Data::Structure(v) => Some(v),
            _ => None,
        }
    }

    /// The bytes of an octet-string or visible-string.
    pub fn as_octets(&self) -> Option<&[u8]> {
        match self {
            Data::OctetString(b) | Data::VisibleString(b) => Some(b),
            _ => None,
        }
    }

    /// A date-time, given either as the date-time type or as the 12-byte octet-string that
    /// COSEM attributes (Clock.time, capture times, profile timestamps) usually carry.
    pub fn as_date_time(&self) -> Option<DateTime> {
        match self {
            Data::DateTime(dt) => Some(*dt),
            Data::OctetString(b) if b.len() == 12 => DateTime::from_bytes(b).ok(),
            _ => None,
        }
    }
}

fn read_tagged(r: &mut Reader<'_>, depth: usize) -> Result<Data, DecodeError> {
    let t = r.u8()?;
    read_body(r, t, depth)
}

/// Reads the content of a value whose tag is `t`.
pub(crate) fn read_body(r: &mut Reader<'_>, t: u8, depth: usize) -> Result<Data, DecodeError> {
    if depth >= MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    Ok(match t {
        tag::NULL => Data::Null,
        tag::ARRAY | tag::STRUCTURE => {
            let count = r.axdr_length()?;
            // Every element takes at least one byte: a larger count is a lie.
            if count > r.remaining() {
                return Err(DecodeError::InvalidLength {
                    what: "array/structure",
                    length: count as u64,
                });
            }
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                items.push(read_tagged(r, depth + 1)?);
            }
            if t == tag::ARRAY {
                Data::Array(items)
            } else {
                Data::Structure(items)
            }
        }
        tag::BOOLEAN => Data::Boolean(r.u8()? != 0),
        tag::BIT_STRING => {
            let bits = r.axdr_length()?;
            let bytes = r.bytes(bits.div_ceil(8))?.to_vec();
            Data::BitString(BitString { bits, bytes })
        }
        tag::DOUBLE_LONG => Data::DoubleLong(r.u32()? as i32),
        tag::DOUBLE_LONG_UNSIGNED => Data::DoubleLongUnsigned(r.u32()?),
        tag::OCTET_STRING | tag::VISIBLE_STRING | tag::UTF8_STRING => {
            let len = r.axdr_length_bounded("string")?;
            let bytes = r.bytes(len)?.to_vec();
            match t {
                tag::OCTET_STRING => Data::OctetString(bytes),
                tag::VISIBLE_STRING => Data::VisibleString(bytes),
                _ => Data::Utf8String(String::from_utf8(bytes).map_err(|_| DecodeError::BadText)?),
            }
        }
        tag::BCD => Data::Bcd(r.u8()? as i8),
        tag::INTEGER => Data::Integer(r.u8()? as i8),
        tag::LONG => Data::Long(r.u16()? as i16),
        tag::UNSIGNED => Data::Unsigned(r.u8()?),
        tag::LONG_UNSIGNED => Data::LongUnsigned(r.u16()?),
        tag::COMPACT_ARRAY => Data::CompactArray(compact::decode(r, depth)?),
        tag::LONG64 => Data::Long64(r.u64()? as i64),
        tag::LONG64_UNSIGNED => Data::Long64Unsigned(r.u64()?),
        tag::ENUM => Data::Enum(r.u8()?),
        tag::FLOAT32 => Data::Float32(f32::from_bits(r.u32()?)),
        tag::FLOAT64 => Data::Float64(f64::from_bits(r.u64()?)),
        tag::DATE_TIME => Data::DateTime(DateTime::from_bytes(r.bytes(12)?)?),
        tag::DATE => Data::Date(Date::from_bytes(r.bytes(5)?)?),
        tag::TIME => Data::Time(Time::from_bytes(r.bytes(4)?)?),
        tag::DONT_CARE => Data::DontCare,
        other => {
            return Err(DecodeError::UnknownTag {
                what: "A-XDR data type",
                tag: other,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlms::test_util::hex;

    fn both_ways(bytes: &str, value: Data) {
        let bytes = hex(bytes);
        assert_eq!(Data::decode(&bytes).unwrap(), value, "decode {bytes:02X?}");
        assert_eq!(value.to_bytes(), bytes, "encode {value:?}");
        for cut in 0..bytes.len() {
            assert!(
                Data::decode(&bytes[..cut]).is_err(),
                "cut {cut} of {bytes:02X?}"
            );
        }
    }

    #[test]
    fn every_simple_type() {
        // Encodings as in the Green Book 9.5 examples and gurux-dlms GXCommon.setData.
        both_ways("00", Data::Null);
        both_ways("03 01", Data::Boolean(true));
        both_ways(
            "04 0A C0 40",
            Data::BitString(BitString {
                bits: 10,
                bytes: vec![0xC0, 0x40],
            }),
        );
        both_ways("05 FF FF FF FE", Data::DoubleLong(-2));
        both_ways("06 00 01 E2 40", Data::DoubleLongUnsigned(123_456));
        both_ways("09 03 01 02 03", Data::OctetString(vec![1, 2, 3]));
        both_ways("0A 03 41 42 43", Data::VisibleString(b"ABC".to_vec()));
        both_ways("0C 02 C3 A9", Data::Utf8String("é".into()));
        both_ways("0D 12", Data::Bcd(0x12));
        both_ways("0F FD", Data::Integer(-3));
        both_ways("10 FF 38", Data::Long(-200));
        both_ways("11 FF", Data::Unsigned(255));
        both_ways("12 08 FC", Data::LongUnsigned(2300));
        both_ways("14 FF FF FF FF FF FF FF FF", Data::Long64(-1));
        both_ways("15 00 00 00 01 00 00 00 00", Data::Long64Unsigned(1 << 32));
        both_ways("16 1B", Data::Enum(27));
        both_ways("17 43 66 19 9A", Data::Float32(230.1));
        both_ways("18 40 6C C3 33 33 33 33 33", Data::Float64(230.1));
        both_ways("FF", Data::DontCare);
    }

    #[test]
    fn nested_register_scaler_unit_and_array() {
        // Register attribute 3 (scaler_unit): structure { integer -1, enum 35 (V) }.
        both_ways(
            "02 02 0F FF 16 23",
            Data::Structure(vec![Data::Integer(-1), Data::Enum(35)]),
        );
        both_ways(
            "01 02 12 00 01 12 00 02",
            Data::Array(vec![Data::LongUnsigned(1), Data::LongUnsigned(2)]),
        );
    }

    #[test]
    fn long_octet_string_uses_long_length_form() {
        let value = Data::OctetString(vec![0xAB; 300]);
        let bytes = value.to_bytes();
        assert_eq!(&bytes[..4], &[0x09, 0x82, 0x01, 0x2C]);
        assert_eq!(Data::decode(&bytes).unwrap(), value);
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        assert!(matches!(
            Data::decode(&[0x07]),
            Err(DecodeError::UnknownTag { .. })
        ));
        assert!(matches!(
            Data::decode(&hex("01 84 7F FF FF FF")),
            Err(DecodeError::InvalidLength { .. })
        ));
        assert!(matches!(
            Data::decode(&hex("09 05 01")),
            Err(DecodeError::InvalidLength { .. })
        ));
        assert_eq!(Data::decode(&hex("0C 01 FF")), Err(DecodeError::BadText));
        assert_eq!(
            Data::decode(&hex("11 01 02")),
            Err(DecodeError::TrailingBytes(1))
        );
        let deep: Vec<u8> = std::iter::repeat_n([0x01, 0x01], 1000).flatten().collect();
        assert_eq!(Data::decode(&deep), Err(DecodeError::TooDeep));
    }

    #[test]
    fn date_time_as_octet_string() {
        let bytes = hex("07EA0B1802000F0000FFC400");
        let clock = Data::OctetString(bytes.clone());
        let dt = clock.as_date_time().unwrap();
        assert_eq!(dt.to_bytes().to_vec(), bytes);
        assert_eq!(Data::Unsigned(3).as_date_time(), None);
    }
}
