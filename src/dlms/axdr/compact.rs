//! Compact arrays (Green Book 9.5, "compact-array"; Blue Book 4.1.5): a type description
//! followed by an octet-string holding the values without their tags, used by meters to send
//! profile buffers compactly.
//!
//! ```text
//! TypeDescription ::= simple tag | 01 count(u16) TypeDescription | 02 n TypeDescription{n}
//! ```

use super::{read_body, tag, CompactArray, Data, MAX_DEPTH};
use crate::dlms::reader::write_axdr_length;
use crate::dlms::{DecodeError, Reader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeDescription {
    /// A type without inner structure (any tag but array, structure, compact-array). Null and
    /// don't-care carry no bytes and are refused: an array of them would decode from nothing.
    Simple(u8),
    Array {
        count: u16,
        element: Box<TypeDescription>,
    },
    Structure(Vec<TypeDescription>),
}

impl TypeDescription {
    fn read(r: &mut Reader<'_>, depth: usize) -> Result<TypeDescription, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let t = r.u8()?;
        Ok(match t {
            tag::ARRAY => TypeDescription::Array {
                count: r.u16()?,
                element: Box::new(TypeDescription::read(r, depth + 1)?),
            },
            tag::STRUCTURE => {
                let n = r.axdr_length()?;
                if n == 0 || n > r.remaining() {
                    return Err(DecodeError::InvalidLength {
                        what: "compact-array structure description",
                        length: n as u64,
                    });
                }
                let mut fields = Vec::with_capacity(n);
                for _ in 0..n {
                    fields.push(TypeDescription::read(r, depth + 1)?);
                }
                TypeDescription::Structure(fields)
            }
            tag::COMPACT_ARRAY | tag::NULL | tag::DONT_CARE => {
                return Err(DecodeError::UnknownTag {
                    what: "compact-array element type",
                    tag: t,
                })
            }
            simple => TypeDescription::Simple(simple),
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            TypeDescription::Simple(t) => out.push(*t),
            TypeDescription::Array { count, element } => {
                out.push(tag::ARRAY);
                out.extend_from_slice(&count.to_be_bytes());
                element.write(out);
            }
            TypeDescription::Structure(fields) => {
                out.push(tag::STRUCTURE);
                write_axdr_length(out, fields.len());
                for f in fields {
                    f.write(out);
                }
            }
        }
    }

    /// Decodes one value. `budget` counts the values (nodes) still allowed: an inner array of
    /// count 0 takes no bytes, so nested descriptions could otherwise multiply into millions of
    /// values from a few bytes (found by the `axdr` fuzz target).
    fn read_value(
        &self,
        r: &mut Reader<'_>,
        depth: usize,
        budget: &mut usize,
    ) -> Result<Data, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        *budget = budget.checked_sub(1).ok_or(DecodeError::InvalidLength {
            what: "compact-array (more values than its size allows)",
            length: 0,
        })?;
        match self {
            TypeDescription::Simple(t) => read_body(r, *t, depth),
            TypeDescription::Array { count, element } => {
                // Every element takes at least one byte (null types are refused above).
                if usize::from(*count) > r.remaining() {
                    return Err(DecodeError::InvalidLength {
                        what: "compact-array inner array",
                        length: u64::from(*count),
                    });
                }
                (0..*count)
                    .map(|_| element.read_value(r, depth + 1, budget))
                    .collect::<Result<_, _>>()
                    .map(Data::Array)
            }
            TypeDescription::Structure(fields) => fields
                .iter()
                .map(|f| f.read_value(r, depth + 1, budget))
                .collect::<Result<_, _>>()
                .map(Data::Structure),
        }
    }

    fn write_value(&self, value: &Data, out: &mut Vec<u8>) {
        match (self, value.as_items()) {
            (TypeDescription::Array { element, .. }, Some(items)) => {
                for item in items {
                    element.write_value(item, out);
                }
            }
            (TypeDescription::Structure(fields), Some(items)) => {
                for (f, item) in fields.iter().zip(items) {
                    f.write_value(item, out);
                }
            }
            _ => value.encode_body(out),
        }
    }
}

pub(super) fn decode(r: &mut Reader<'_>, depth: usize) -> Result<CompactArray, DecodeError> {
    let description = TypeDescription::read(r, depth + 1)?;
    let len = r.axdr_length_bounded("compact-array contents")?;
    let mut contents = Reader::new(r.bytes(len)?);
    let mut values = Vec::new();
    // Generous for real data (a structure of one-byte fields makes fewer than 2 values per
    // byte), small enough that no input can make the decoder allocate without bound.
    let mut budget = 4 * len + 64;
    while !contents.is_empty() {
        let before = contents.remaining();
        values.push(description.read_value(&mut contents, depth + 1, &mut budget)?);
        if contents.remaining() == before {
            // A description that takes no bytes (an empty inner array) would loop forever.
            return Err(DecodeError::InvalidLength {
                what: "compact-array element",
                length: 0,
            });
        }
    }
    Ok(CompactArray {
        description,
        values,
    })
}

pub(super) fn encode(ca: &CompactArray, out: &mut Vec<u8>) {
    ca.description.write(out);
    let mut contents = Vec::new();
    for v in &ca.values {
        ca.description.write_value(v, &mut contents);
    }
    write_axdr_length(out, contents.len());
    out.extend_from_slice(&contents);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_rows_as_compact_array() {
        // compact-array of structure { long-unsigned, double-long-unsigned }, two rows.
        let bytes = [
            0x13, 0x02, 0x02, 0x12, 0x06, 0x0C, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0A, 0x00, 0x02,
            0x00, 0x00, 0x00, 0x14,
        ];
        let data = Data::decode(&bytes).unwrap();
        let Data::CompactArray(ca) = &data else {
            panic!("not a compact array: {data:?}");
        };
        assert_eq!(
            ca.description,
            TypeDescription::Structure(vec![
                TypeDescription::Simple(tag::LONG_UNSIGNED),
                TypeDescription::Simple(tag::DOUBLE_LONG_UNSIGNED)
            ])
        );
        assert_eq!(
            ca.values,
            vec![
                Data::Structure(vec![Data::LongUnsigned(1), Data::DoubleLongUnsigned(10)]),
                Data::Structure(vec![Data::LongUnsigned(2), Data::DoubleLongUnsigned(20)]),
            ]
        );
        assert_eq!(data.to_bytes(), bytes);
    }

    #[test]
    fn nested_array_description_and_strings() {
        let ca = Data::CompactArray(CompactArray {
            description: TypeDescription::Array {
                count: 2,
                element: Box::new(TypeDescription::Simple(tag::OCTET_STRING)),
            },
            values: vec![Data::Array(vec![
                Data::OctetString(vec![1]),
                Data::OctetString(vec![2, 3]),
            ])],
        });
        let bytes = ca.to_bytes();
        assert_eq!(Data::decode(&bytes).unwrap(), ca);
    }

    #[test]
    fn hostile_descriptions_are_refused() {
        // Array of nulls: would decode forever from nothing.
        assert!(Data::decode(&[0x13, 0x00, 0x00]).is_err());
        // Array count larger than the contents.
        assert!(Data::decode(&[0x13, 0x01, 0xFF, 0xFF, 0x11, 0x01, 0x05]).is_err());
        // Contents cut mid-value.
        assert!(Data::decode(&[0x13, 0x12, 0x03, 0x00, 0x01, 0x00]).is_err());
        // Zero-sized element (empty inner array) with contents left.
        assert!(Data::decode(&[0x13, 0x01, 0x00, 0x00, 0x11, 0x01, 0x05]).is_err());
        // Found by the axdr fuzz target (out of memory): nested array descriptions around an
        // empty inner array multiply into ~10^8 values from 63 bytes.
        let oom = [
            0x13, 0x01, 0x00, 0x02, 0x01, 0x00, 0x13, 0x01, 0x00, 0x13, 0x01, 0x00, 0x13, 0x01,
            0x00, 0x02, 0x01, 0x00, 0x13, 0x01, 0x00, 0x13, 0x01, 0x00, 0x02, 0x01, 0x00, 0x13,
            0x01, 0x00, 0x00, 0x01, 0x00, 0x02, 0x03, 0x1A, 0x3B, 0x7E, 0x1A, 0x01, 0x00, 0x02,
            0x01, 0xC4, 0x3B, 0x01, 0xFF, 0xFF, 0x3B, 0x3B, 0x03, 0x02, 0x1A, 0x61, 0xC5, 0xC4,
            0xFE, 0xFE, 0x3B, 0x3B, 0x3B, 0x3B, 0x3B,
        ];
        assert!(matches!(
            Data::decode(&oom),
            Err(DecodeError::InvalidLength { .. })
        ));
        // Empty structure description.
        assert!(Data::decode(&[0x13, 0x02, 0x00, 0x00]).is_err());
    }
}
