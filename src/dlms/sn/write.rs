//! WriteRequest (0x06), WriteResponse (0x0D) and UnconfirmedWriteRequest (0x16), the SN
//! counterparts of SET (IEC 62056-5-3, Green Book 9.3.x "SN services").
//!
//! ```text
//! 06 count Variable-Access-Specification... count Data...     WriteRequest
//! 16 (same body)                                               UnconfirmedWriteRequest
//! 0D count Write-Data-Result...                                WriteResponse
//!   00                                                         success
//!   01 result(u8)                                              data-access-error
//!   02 block-number(u16)                                       block-number (long write)
//! ```
//! A method of an SN object is invoked by writing its parameter to the method's short name
//! (Blue Book DLMS UA 1000-1, 4.1.3 "short name referencing"), see [`super::names`].

use super::variable::{read_sequence, write_sequence, VariableAccess};
use super::{UNCONFIRMED_WRITE_REQUEST, WRITE_REQUEST, WRITE_RESPONSE};
use crate::dlms::axdr::Data;
use crate::dlms::xdlms::{expect_tag, DataAccessResult};
use crate::dlms::{DecodeError, Reader};

/// The body of a WriteRequest and of an UnconfirmedWriteRequest.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteRequest {
    pub items: Vec<VariableAccess>,
    pub values: Vec<Data>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteResult {
    Success,
    Error(DataAccessResult),
    BlockNumber(u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteResponse {
    pub results: Vec<WriteResult>,
}

impl WriteRequest {
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with_tag(WRITE_REQUEST)
    }

    /// The same body as an UnconfirmedWriteRequest (no answer comes back).
    pub fn encode_unconfirmed(&self) -> Vec<u8> {
        self.encode_with_tag(UNCONFIRMED_WRITE_REQUEST)
    }

    fn encode_with_tag(&self, tag: u8) -> Vec<u8> {
        let mut out = vec![tag];
        write_sequence(&mut out, &self.items, VariableAccess::write);
        write_sequence(&mut out, &self.values, |d, out| d.encode(out));
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_with_tag(bytes, WRITE_REQUEST, "WriteRequest")
    }

    pub fn decode_unconfirmed(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_with_tag(bytes, UNCONFIRMED_WRITE_REQUEST, "UnconfirmedWriteRequest")
    }

    fn decode_with_tag(bytes: &[u8], tag: u8, what: &'static str) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_tag(&mut r, tag, what)?;
        let items = read_sequence(&mut r, "WriteRequest names", VariableAccess::read)?;
        let values = read_sequence(&mut r, "WriteRequest values", Data::read)?;
        r.finish()?;
        Ok(WriteRequest { items, values })
    }
}

impl WriteResult {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => WriteResult::Success,
            1 => WriteResult::Error(DataAccessResult(r.u8()?)),
            2 => WriteResult::BlockNumber(r.u16()?),
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "Write-Data-Result",
                    tag: t,
                })
            }
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            WriteResult::Success => out.push(0),
            WriteResult::Error(e) => out.extend_from_slice(&[1, e.0]),
            WriteResult::BlockNumber(n) => {
                out.push(2);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
    }
}

impl WriteResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![WRITE_RESPONSE];
        write_sequence(&mut out, &self.results, WriteResult::write);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_tag(&mut r, WRITE_RESPONSE, "WriteResponse")?;
        let results = read_sequence(&mut r, "WriteResponse count", WriteResult::read)?;
        r.finish()?;
        Ok(WriteResponse { results })
    }
}
