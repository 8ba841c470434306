//! InformationReportRequest (0x18), the SN push (IEC 62056-5-3, Green Book 9.3.x
//! "InformationReport service"): unsolicited, unconfirmed.
//!
//! ```text
//! 18 time-present(0|1) [len octets]  count Variable-Access-Specification...  count Data...
//! ```
//! current-time is an optional GeneralizedTime; DLMS sends it as an A-XDR octet string
//! (usually the 12-byte COSEM date-time), kept here as raw bytes.

use super::variable::{read_sequence, write_sequence, VariableAccess};
use super::INFORMATION_REPORT;
use crate::dlms::axdr::Data;
use crate::dlms::reader::write_axdr_length;
use crate::dlms::xdlms::expect_tag;
use crate::dlms::{DecodeError, Reader};

#[derive(Debug, Clone, PartialEq)]
pub struct InformationReport {
    pub current_time: Option<Vec<u8>>,
    pub items: Vec<VariableAccess>,
    pub values: Vec<Data>,
}

impl InformationReport {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![INFORMATION_REPORT];
        match &self.current_time {
            None => out.push(0),
            Some(t) => {
                out.push(1);
                write_axdr_length(&mut out, t.len());
                out.extend_from_slice(t);
            }
        }
        write_sequence(&mut out, &self.items, VariableAccess::write);
        write_sequence(&mut out, &self.values, |d, out| d.encode(out));
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_tag(&mut r, INFORMATION_REPORT, "InformationReportRequest")?;
        let current_time = match r.u8()? {
            0 => None,
            1 => {
                let len = r.axdr_length_bounded("InformationReport current-time")?;
                Some(r.bytes(len)?.to_vec())
            }
            v => {
                return Err(DecodeError::InvalidValue {
                    what: "InformationReport current-time flag",
                    value: u64::from(v),
                })
            }
        };
        let items = read_sequence(&mut r, "InformationReport names", VariableAccess::read)?;
        let values = read_sequence(&mut r, "InformationReport values", Data::read)?;
        r.finish()?;
        Ok(InformationReport {
            current_time,
            items,
            values,
        })
    }
}
