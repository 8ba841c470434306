//! Variable-Access-Specification (IEC 62056-5-3 / Green Book DLMS UA 1000-2 Ed. 10, 9.3.x
//! "SN services", the ASN.1 of ReadRequest/WriteRequest): how a short-name request names
//! what it reads or writes.
//!
//! ```text
//! 02 name(u16)                                   variable-name
//! 04 name(u16) selector(u8) parameter(Data)      parameterized-access (selective access,
//!                                                and method invocation with parameters)
//! 05 block-number(u16)                           block-number-access (acknowledges a
//!                                                data-block-result of a long ReadResponse)
//! 06 last(bool) block-number(u16) raw(octets)    read-data-block-access (a long ReadRequest)
//! 07 last(bool) block-number(u16) raw(octets)    write-data-block-access (a long WriteRequest)
//! ```
//! `detailed-access [3]` is defined in the ASN.1 but its use is not specified by the Green
//! Book; it is refused as an unknown tag.

use crate::dlms::axdr::Data;
use crate::dlms::reader::write_axdr_length;
use crate::dlms::{DecodeError, Reader};

/// A short name (ObjectName, Unsigned16): the base name of an object plus the offset of one
/// attribute or method (see [`super::names`]).
pub type ShortName = u16;

/// One block of a long SN request or response: last-block, block-number (u16 in SN, unlike
/// the u32 of LN's DataBlock-G), raw-data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnDataBlock {
    pub last_block: bool,
    pub block_number: u16,
    pub raw_data: Vec<u8>,
}

impl SnDataBlock {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let last_block = match r.u8()? {
            0 => false,
            1 => true,
            v => {
                return Err(DecodeError::InvalidValue {
                    what: "SN last-block flag",
                    value: u64::from(v),
                })
            }
        };
        let block_number = r.u16()?;
        let len = r.axdr_length_bounded("SN data block raw-data")?;
        Ok(SnDataBlock {
            last_block,
            block_number,
            raw_data: r.bytes(len)?.to_vec(),
        })
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.last_block));
        out.extend_from_slice(&self.block_number.to_be_bytes());
        write_axdr_length(out, self.raw_data.len());
        out.extend_from_slice(&self.raw_data);
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum VariableAccess {
    Name(ShortName),
    Parameterized {
        name: ShortName,
        selector: u8,
        parameter: Data,
    },
    BlockNumber(u16),
    ReadDataBlock(SnDataBlock),
    WriteDataBlock(SnDataBlock),
}

const VARIABLE_NAME: u8 = 2;
const PARAMETERIZED_ACCESS: u8 = 4;
const BLOCK_NUMBER_ACCESS: u8 = 5;
const READ_DATA_BLOCK_ACCESS: u8 = 6;
const WRITE_DATA_BLOCK_ACCESS: u8 = 7;

impl VariableAccess {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            VARIABLE_NAME => VariableAccess::Name(r.u16()?),
            PARAMETERIZED_ACCESS => VariableAccess::Parameterized {
                name: r.u16()?,
                selector: r.u8()?,
                parameter: Data::read(r)?,
            },
            BLOCK_NUMBER_ACCESS => VariableAccess::BlockNumber(r.u16()?),
            READ_DATA_BLOCK_ACCESS => VariableAccess::ReadDataBlock(SnDataBlock::read(r)?),
            WRITE_DATA_BLOCK_ACCESS => VariableAccess::WriteDataBlock(SnDataBlock::read(r)?),
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "Variable-Access-Specification",
                    tag: t,
                })
            }
        })
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        match self {
            VariableAccess::Name(name) => {
                out.push(VARIABLE_NAME);
                out.extend_from_slice(&name.to_be_bytes());
            }
            VariableAccess::Parameterized {
                name,
                selector,
                parameter,
            } => {
                out.push(PARAMETERIZED_ACCESS);
                out.extend_from_slice(&name.to_be_bytes());
                out.push(*selector);
                parameter.encode(out);
            }
            VariableAccess::BlockNumber(n) => {
                out.push(BLOCK_NUMBER_ACCESS);
                out.extend_from_slice(&n.to_be_bytes());
            }
            VariableAccess::ReadDataBlock(b) => {
                out.push(READ_DATA_BLOCK_ACCESS);
                b.write(out);
            }
            VariableAccess::WriteDataBlock(b) => {
                out.push(WRITE_DATA_BLOCK_ACCESS);
                b.write(out);
            }
        }
    }
}

/// SEQUENCE OF: an A-XDR count, then the elements. The count is checked against the bytes
/// left (every element takes at least one), so a forged count allocates nothing.
pub(crate) fn read_sequence<T>(
    r: &mut Reader<'_>,
    what: &'static str,
    mut element: impl FnMut(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let count = r.axdr_length_bounded(what)?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(element(r)?);
    }
    Ok(out)
}

pub(crate) fn write_sequence<T>(
    out: &mut Vec<u8>,
    items: &[T],
    element: impl Fn(&T, &mut Vec<u8>),
) {
    write_axdr_length(out, items.len());
    for item in items {
        element(item, out);
    }
}
