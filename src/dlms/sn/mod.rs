//! Short-name (SN) referencing, sans-I/O: the xDLMS services of meters that address
//! attributes by a 16-bit name instead of (class, OBIS, attribute) (IEC 62056-5-3 / Green Book
//! DLMS UA 1000-2 Ed. 10, 9.3.x "SN services"; the names come from Association SN, Blue Book
//! DLMS UA 1000-1, IC 12).
//!
//! - [`variable`]: Variable-Access-Specification, the SN data blocks
//! - [`read`], [`write`], [`report`]: the APDUs
//! - [`blocks`]: reassembly of long ReadResponses
//! - [`names`]: short names of attributes and methods, the object list
//!
//! Every decoder returns a typed [`DecodeError`]; none panics (fuzz target `sn`).

pub mod association;
pub mod blocks;
pub mod client;
pub mod names;
pub mod read;
pub mod report;
pub mod variable;
pub mod write;

pub use blocks::{ReadBlockAssembler, SnBlockError, SnBlockProgress};
pub use names::{ShortNameError, ShortNameMap, SnObject};
pub use read::{ReadRequest, ReadResponse, ReadResult};
pub use report::InformationReport;
pub use variable::{ShortName, SnDataBlock, VariableAccess};
pub use write::{WriteRequest, WriteResponse, WriteResult};

use crate::dlms::DecodeError;

/// APDU tags of the SN services (Green Book 9.5, the xDLMS-APDU CHOICE).
pub const READ_REQUEST: u8 = 0x05;
pub const WRITE_REQUEST: u8 = 0x06;
pub const READ_RESPONSE: u8 = 0x0C;
pub const WRITE_RESPONSE: u8 = 0x0D;
pub const UNCONFIRMED_WRITE_REQUEST: u8 = 0x16;
pub const INFORMATION_REPORT: u8 = 0x18;

/// Any SN service APDU.
#[derive(Debug, Clone, PartialEq)]
pub enum SnApdu {
    ReadRequest(ReadRequest),
    ReadResponse(ReadResponse),
    WriteRequest(WriteRequest),
    WriteResponse(WriteResponse),
    UnconfirmedWriteRequest(WriteRequest),
    InformationReport(InformationReport),
}

impl SnApdu {
    /// `Ok(None)` when the tag is not one of the SN services (an LN or ACSE APDU).
    pub fn decode(bytes: &[u8]) -> Result<Option<SnApdu>, DecodeError> {
        let Some(&tag) = bytes.first() else {
            return Err(DecodeError::Truncated {
                needed: 1,
                available: 0,
            });
        };
        Ok(Some(match tag {
            READ_REQUEST => SnApdu::ReadRequest(ReadRequest::decode(bytes)?),
            READ_RESPONSE => SnApdu::ReadResponse(ReadResponse::decode(bytes)?),
            WRITE_REQUEST => SnApdu::WriteRequest(WriteRequest::decode(bytes)?),
            WRITE_RESPONSE => SnApdu::WriteResponse(WriteResponse::decode(bytes)?),
            UNCONFIRMED_WRITE_REQUEST => {
                SnApdu::UnconfirmedWriteRequest(WriteRequest::decode_unconfirmed(bytes)?)
            }
            INFORMATION_REPORT => SnApdu::InformationReport(InformationReport::decode(bytes)?),
            _ => return Ok(None),
        }))
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            SnApdu::ReadRequest(a) => a.encode(),
            SnApdu::ReadResponse(a) => a.encode(),
            SnApdu::WriteRequest(a) => a.encode(),
            SnApdu::WriteResponse(a) => a.encode(),
            SnApdu::UnconfirmedWriteRequest(a) => a.encode_unconfirmed(),
            SnApdu::InformationReport(a) => a.encode(),
        }
    }
}

fn describe_access(v: &VariableAccess) -> String {
    match v {
        VariableAccess::Name(n) => format!("0x{n:04X}"),
        VariableAccess::Parameterized { name, selector, .. } => {
            format!("0x{name:04X} selector {selector}")
        }
        VariableAccess::BlockNumber(n) => format!("block-number {n}"),
        VariableAccess::ReadDataBlock(b) | VariableAccess::WriteDataBlock(b) => {
            format!("data block {}{}", b.block_number, last(b.last_block))
        }
    }
}

fn last(is_last: bool) -> &'static str {
    if is_last {
        " (last)"
    } else {
        ""
    }
}

fn names(items: &[VariableAccess]) -> String {
    items
        .iter()
        .map(describe_access)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line describing an SN APDU, for the APDU decoder (`decode-apdu`) and logs; `None` when
/// `apdu` is not an SN service APDU, `Some("... malformed: why")` when it is one but does not
/// decode.
pub fn describe(apdu: &[u8]) -> Option<String> {
    let decoded = match SnApdu::decode(apdu) {
        Ok(None) => return None,
        Ok(Some(a)) => a,
        Err(e) => {
            let what = match apdu.first() {
                Some(&READ_REQUEST) => "ReadRequest",
                Some(&READ_RESPONSE) => "ReadResponse",
                Some(&WRITE_REQUEST) => "WriteRequest",
                Some(&WRITE_RESPONSE) => "WriteResponse",
                Some(&UNCONFIRMED_WRITE_REQUEST) => "UnconfirmedWriteRequest",
                Some(&INFORMATION_REPORT) => "InformationReport",
                _ => return None,
            };
            return Some(format!("{what} (SN), malformed: {e}"));
        }
    };
    Some(match decoded {
        SnApdu::ReadRequest(r) => format!("ReadRequest (SN) {}", names(&r.items)),
        SnApdu::ReadResponse(r) => {
            let results: Vec<String> = r
                .results
                .iter()
                .map(|res| match res {
                    ReadResult::Data(d) => format!("data {d:?}"),
                    ReadResult::Error(e) => format!("error {e}"),
                    ReadResult::DataBlock(b) => format!(
                        "data block {}{}, {} bytes",
                        b.block_number,
                        last(b.last_block),
                        b.raw_data.len()
                    ),
                    ReadResult::BlockNumber(n) => format!("block-number {n}"),
                })
                .collect();
            format!("ReadResponse (SN) {}", results.join(", "))
        }
        SnApdu::WriteRequest(w) => format!(
            "WriteRequest (SN) {} ({} value(s))",
            names(&w.items),
            w.values.len()
        ),
        SnApdu::UnconfirmedWriteRequest(w) => format!(
            "UnconfirmedWriteRequest (SN) {} ({} value(s))",
            names(&w.items),
            w.values.len()
        ),
        SnApdu::WriteResponse(w) => {
            let results: Vec<String> = w
                .results
                .iter()
                .map(|res| match res {
                    WriteResult::Success => "success".to_string(),
                    WriteResult::Error(e) => format!("error {e}"),
                    WriteResult::BlockNumber(n) => format!("block-number {n}"),
                })
                .collect();
            format!("WriteResponse (SN) {}", results.join(", "))
        }
        SnApdu::InformationReport(i) => format!(
            "InformationReport (SN) {}{} ({} value(s))",
            names(&i.items),
            if i.current_time.is_some() {
                ", with time"
            } else {
                ""
            },
            i.values.len()
        ),
    })
}

#[cfg(test)]
mod tests;
