//! SET service (Green Book 9.5, "SET-Request", "SET-Response").
//!
//! ```text
//! C1 01 iip attribute access-selection Data               SET-Request-Normal
//! C1 02 iip attribute access-selection DataBlock-SA       SET-Request-With-First-Datablock
//! C1 03 iip DataBlock-SA                                  SET-Request-With-Datablock
//! C5 01 iip result                                        SET-Response-Normal
//! C5 02 iip block-number                                  SET-Response-Datablock
//! C5 03 iip result block-number                           SET-Response-Last-Datablock
//! ```

use super::block::DataBlockSa;
use super::descriptor::{AttributeDescriptor, DataAccessResult, SelectiveAccess};
use super::invoke::InvokeIdAndPriority;
use super::{expect_tag, SET_REQUEST, SET_RESPONSE};
use crate::dlms::axdr::Data;
use crate::dlms::{DecodeError, Reader};

#[derive(Debug, Clone, PartialEq)]
pub enum SetRequest {
    Normal {
        invoke: InvokeIdAndPriority,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
        value: Data,
    },
    WithFirstDatablock {
        invoke: InvokeIdAndPriority,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
        block: DataBlockSa,
    },
    WithDatablock {
        invoke: InvokeIdAndPriority,
        block: DataBlockSa,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetResponse {
    Normal {
        invoke: InvokeIdAndPriority,
        result: DataAccessResult,
    },
    Datablock {
        invoke: InvokeIdAndPriority,
        block_number: u32,
    },
    LastDatablock {
        invoke: InvokeIdAndPriority,
        result: DataAccessResult,
        block_number: u32,
    },
}

impl SetRequest {
    /// The request(s) that write `value`: one SET-Request-Normal when it fits `max_pdu`
    /// (the meter's negotiated receive size), else a first-datablock request and datablocks.
    /// `None` if `max_pdu` is too small to carry anything.
    pub fn build(
        invoke: InvokeIdAndPriority,
        attribute: AttributeDescriptor,
        value: &Data,
        max_pdu: usize,
    ) -> Option<Vec<SetRequest>> {
        let normal = SetRequest::Normal {
            invoke,
            attribute,
            access: None,
            value: value.clone(),
        };
        if normal.encode().len() <= max_pdu {
            return Some(vec![normal]);
        }
        // tag, choice, iip, descriptor (9), access flag, last-block, block-number (4)
        let first_overhead = 3 + 9 + 1 + 5;
        let overhead = 3 + 5;
        let blocks = DataBlockSa::split(&value.to_bytes(), max_pdu, first_overhead, overhead)?;
        Some(
            blocks
                .into_iter()
                .enumerate()
                .map(|(i, block)| {
                    if i == 0 {
                        SetRequest::WithFirstDatablock {
                            invoke,
                            attribute,
                            access: None,
                            block,
                        }
                    } else {
                        SetRequest::WithDatablock { invoke, block }
                    }
                })
                .collect(),
        )
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![SET_REQUEST];
        match self {
            SetRequest::Normal {
                invoke,
                attribute,
                access,
                value,
            } => {
                out.extend_from_slice(&[1, invoke.0]);
                attribute.write(&mut out);
                SelectiveAccess::write_optional(access, &mut out);
                value.encode(&mut out);
            }
            SetRequest::WithFirstDatablock {
                invoke,
                attribute,
                access,
                block,
            } => {
                out.extend_from_slice(&[2, invoke.0]);
                attribute.write(&mut out);
                SelectiveAccess::write_optional(access, &mut out);
                block.write(&mut out);
            }
            SetRequest::WithDatablock { invoke, block } => {
                out.extend_from_slice(&[3, invoke.0]);
                block.write(&mut out);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<SetRequest, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_tag(&mut r, SET_REQUEST, "SET-Request")?;
        let choice = r.u8()?;
        let invoke = InvokeIdAndPriority(r.u8()?);
        let req = match choice {
            1 => SetRequest::Normal {
                invoke,
                attribute: AttributeDescriptor::read(&mut r)?,
                access: SelectiveAccess::read_optional(&mut r)?,
                value: Data::read(&mut r)?,
            },
            2 => SetRequest::WithFirstDatablock {
                invoke,
                attribute: AttributeDescriptor::read(&mut r)?,
                access: SelectiveAccess::read_optional(&mut r)?,
                block: DataBlockSa::read(&mut r)?,
            },
            3 => SetRequest::WithDatablock {
                invoke,
                block: DataBlockSa::read(&mut r)?,
            },
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "SET-Request choice",
                    tag: t,
                })
            }
        };
        r.finish()?;
        Ok(req)
    }
}

impl SetResponse {
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            SetResponse::Normal { invoke, result } => vec![SET_RESPONSE, 1, invoke.0, result.0],
            SetResponse::Datablock {
                invoke,
                block_number,
            } => {
                let mut out = vec![SET_RESPONSE, 2, invoke.0];
                out.extend_from_slice(&block_number.to_be_bytes());
                out
            }
            SetResponse::LastDatablock {
                invoke,
                result,
                block_number,
            } => {
                let mut out = vec![SET_RESPONSE, 3, invoke.0, result.0];
                out.extend_from_slice(&block_number.to_be_bytes());
                out
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<SetResponse, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_tag(&mut r, SET_RESPONSE, "SET-Response")?;
        let choice = r.u8()?;
        let invoke = InvokeIdAndPriority(r.u8()?);
        let resp = match choice {
            1 => SetResponse::Normal {
                invoke,
                result: DataAccessResult(r.u8()?),
            },
            2 => SetResponse::Datablock {
                invoke,
                block_number: r.u32()?,
            },
            3 => SetResponse::LastDatablock {
                invoke,
                result: DataAccessResult(r.u8()?),
                block_number: r.u32()?,
            },
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "SET-Response choice",
                    tag: t,
                })
            }
        };
        r.finish()?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosem::Obis;
    use crate::dlms::axdr::DateTime;

    fn clock_time() -> AttributeDescriptor {
        AttributeDescriptor::new(8, Obis::new(0, 0, 1, 0, 0, 255), 2)
    }

    #[test]
    fn set_clock_normal() {
        let dt = DateTime::from_unix(1_795_500_000, 0);
        let value = Data::OctetString(dt.to_bytes().to_vec());
        let reqs =
            SetRequest::build(InvokeIdAndPriority(0xC1), clock_time(), &value, 1024).unwrap();
        assert_eq!(reqs.len(), 1);
        let bytes = reqs[0].encode();
        // C1 01 C1 | 0008 0000010000FF 02 | 00 | 09 0C <date-time>
        assert_eq!(
            &bytes[..15],
            &[0xC1, 0x01, 0xC1, 0x00, 0x08, 0, 0, 1, 0, 0, 0xFF, 0x02, 0x00, 0x09, 0x0C]
        );
        assert_eq!(SetRequest::decode(&bytes).unwrap(), reqs[0]);
        let resp = SetResponse::Normal {
            invoke: InvokeIdAndPriority(0xC1),
            result: DataAccessResult::SUCCESS,
        };
        assert_eq!(resp.encode(), [0xC5, 0x01, 0xC1, 0x00]);
        assert_eq!(
            SetResponse::decode(&[0xC5, 0x01, 0xC1, 0x00]).unwrap(),
            resp
        );
    }

    #[test]
    fn long_value_goes_in_datablocks_that_fit() {
        let value = Data::OctetString((0..1000).map(|i| i as u8).collect());
        let reqs = SetRequest::build(InvokeIdAndPriority(0xC1), clock_time(), &value, 128).unwrap();
        assert!(reqs.len() > 7);
        let mut raw = Vec::new();
        for (i, req) in reqs.iter().enumerate() {
            let bytes = req.encode();
            assert!(bytes.len() <= 128, "PDU {i} is {} bytes", bytes.len());
            assert_eq!(&SetRequest::decode(&bytes).unwrap(), req);
            let block = match req {
                SetRequest::WithFirstDatablock { block, .. } if i == 0 => block,
                SetRequest::WithDatablock { block, .. } if i > 0 => block,
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(block.block_number, i as u32 + 1);
            assert_eq!(block.last_block, i + 1 == reqs.len());
            raw.extend_from_slice(&block.raw_data);
        }
        assert_eq!(Data::decode(&raw).unwrap(), value);
        assert!(SetRequest::build(InvokeIdAndPriority(0xC1), clock_time(), &value, 20).is_none());
        for resp in [
            SetResponse::Datablock {
                invoke: InvokeIdAndPriority(0xC1),
                block_number: 3,
            },
            SetResponse::LastDatablock {
                invoke: InvokeIdAndPriority(0xC1),
                result: DataAccessResult(0),
                block_number: 9,
            },
        ] {
            assert_eq!(SetResponse::decode(&resp.encode()).unwrap(), resp);
        }
    }
}
