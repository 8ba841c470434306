//! ReadRequest (0x05) and ReadResponse (0x0C), the SN counterpart of GET (IEC 62056-5-3,
//! Green Book 9.3.x "SN services", ReadRequest ::= SEQUENCE OF Variable-Access-Specification).
//!
//! ```text
//! 05 count Variable-Access-Specification...        ReadRequest
//! 0C count Read-Data-Result...                     ReadResponse, one result per request item
//!   00 Data                                        data
//!   01 result(u8)                                  data-access-error (Data-Access-Result)
//!   02 last(bool) block-number(u16) raw(octets)    data-block-result (a long response)
//!   03 block-number(u16)                           block-number (acknowledges a block of a
//!                                                  long ReadRequest)
//! ```
//! SN PDUs carry no invoke id: a client has one request outstanding at a time.

use super::variable::{read_sequence, write_sequence, SnDataBlock, VariableAccess};
use super::{READ_REQUEST, READ_RESPONSE};
use crate::dlms::axdr::Data;
use crate::dlms::xdlms::{expect_tag, DataAccessResult};
use crate::dlms::{DecodeError, Reader};

#[derive(Debug, Clone, PartialEq)]
pub struct ReadRequest {
    pub items: Vec<VariableAccess>,
}

/// One answer in a ReadResponse.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadResult {
    Data(Data),
    Error(DataAccessResult),
    DataBlock(SnDataBlock),
    BlockNumber(u16),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadResponse {
    pub results: Vec<ReadResult>,
}

impl ReadRequest {
    /// The acknowledgement of block `block_number` of a long ReadResponse, asking for the
    /// next one (Green Book 9.3.x, "ReadRequest with block-number-access").
    pub fn next_block(block_number: u16) -> Self {
        ReadRequest {
            items: vec![VariableAccess::BlockNumber(block_number)],
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![READ_REQUEST];
        write_sequence(&mut out, &self.items, VariableAccess::write);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_tag(&mut r, READ_REQUEST, "ReadRequest")?;
        let items = read_sequence(&mut r, "ReadRequest count", VariableAccess::read)?;
        r.finish()?;
        Ok(ReadRequest { items })
    }
}

impl ReadResult {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => ReadResult::Data(Data::read(r)?),
            1 => ReadResult::Error(DataAccessResult(r.u8()?)),
            2 => ReadResult::DataBlock(SnDataBlock::read(r)?),
            3 => ReadResult::BlockNumber(r.u16()?),
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "Read-Data-Result",
                    tag: t,
                })
            }
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            ReadResult::Data(d) => {
                out.push(0);
                d.encode(out);
            }
            ReadResult::Error(e) => out.extend_from_slice(&[1, e.0]),
            ReadResult::DataBlock(b) => {
                out.push(2);
                b.write(out);
            }
            ReadResult::BlockNumber(n) => {
                out.push(3);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
    }
}

impl ReadResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![READ_RESPONSE];
        write_sequence(&mut out, &self.results, ReadResult::write);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_tag(&mut r, READ_RESPONSE, "ReadResponse")?;
        let results = read_sequence(&mut r, "ReadResponse count", ReadResult::read)?;
        r.finish()?;
        Ok(ReadResponse { results })
    }
}
