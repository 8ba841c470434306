//! ACTION service (Green Book 9.5, "ACTION-Request", "ACTION-Response").
//!
//! ```text
//! C3 01 iip method (00 | 01 Data)                 ACTION-Request-Normal
//! C3 02 iip block-number                          ACTION-Request-Next-Pblock
//! C3 04 iip method DataBlock-SA                   ACTION-Request-With-First-Pblock
//! C3 06 iip DataBlock-SA                          ACTION-Request-With-Pblock
//! C7 01 iip result (00 | 01 Get-Data-Result)      ACTION-Response-Normal
//! C7 02 iip DataBlock-SA                          ACTION-Response-With-Pblock
//! C7 04 iip block-number                          ACTION-Response-Next-Pblock
//! ```

use super::block::DataBlockSa;
use super::descriptor::{
    read_get_data_result, write_get_data_result, DataAccessResult, GetDataResult, MethodDescriptor,
};
use super::invoke::InvokeIdAndPriority;
use super::{expect_tag, ACTION_REQUEST, ACTION_RESPONSE};
use crate::dlms::axdr::Data;
use crate::dlms::{DecodeError, Reader};

#[derive(Debug, Clone, PartialEq)]
pub enum ActionRequest {
    Normal {
        invoke: InvokeIdAndPriority,
        method: MethodDescriptor,
        parameters: Option<Data>,
    },
    NextPblock {
        invoke: InvokeIdAndPriority,
        block_number: u32,
    },
    WithFirstPblock {
        invoke: InvokeIdAndPriority,
        method: MethodDescriptor,
        block: DataBlockSa,
    },
    WithPblock {
        invoke: InvokeIdAndPriority,
        block: DataBlockSa,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ActionResponse {
    Normal {
        invoke: InvokeIdAndPriority,
        result: DataAccessResult,
        return_parameters: Option<GetDataResult>,
    },
    WithPblock {
        invoke: InvokeIdAndPriority,
        block: DataBlockSa,
    },
    NextPblock {
        invoke: InvokeIdAndPriority,
        block_number: u32,
    },
}

fn read_optional_data(r: &mut Reader<'_>) -> Result<Option<Data>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(Data::read(r)?)),
        t => Err(DecodeError::InvalidValue {
            what: "method-invocation-parameters presence flag",
            value: u64::from(t),
        }),
    }
}

impl ActionRequest {
    /// The request(s) that invoke `method` with `parameters`, in parameter blocks when the
    /// normal request would exceed `max_pdu`.
    pub fn build(
        invoke: InvokeIdAndPriority,
        method: MethodDescriptor,
        parameters: Option<&Data>,
        max_pdu: usize,
    ) -> Option<Vec<ActionRequest>> {
        let normal = ActionRequest::Normal {
            invoke,
            method,
            parameters: parameters.cloned(),
        };
        let Some(params) = parameters.filter(|_| normal.encode().len() > max_pdu) else {
            return Some(vec![normal]);
        };
        let first_overhead = 3 + 9 + 5;
        let overhead = 3 + 5;
        let blocks = DataBlockSa::split(&params.to_bytes(), max_pdu, first_overhead, overhead)?;
        Some(
            blocks
                .into_iter()
                .enumerate()
                .map(|(i, block)| {
                    if i == 0 {
                        ActionRequest::WithFirstPblock {
                            invoke,
                            method,
                            block,
                        }
                    } else {
                        ActionRequest::WithPblock { invoke, block }
                    }
                })
                .collect(),
        )
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ACTION_REQUEST];
        match self {
            ActionRequest::Normal {
                invoke,
                method,
                parameters,
            } => {
                out.extend_from_slice(&[1, invoke.0]);
                method.write(&mut out);
                match parameters {
                    None => out.push(0),
                    Some(p) => {
                        out.push(1);
                        p.encode(&mut out);
                    }
                }
            }
            ActionRequest::NextPblock {
                invoke,
                block_number,
            } => {
                out.extend_from_slice(&[2, invoke.0]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
            ActionRequest::WithFirstPblock {
                invoke,
                method,
                block,
            } => {
                out.extend_from_slice(&[4, invoke.0]);
                method.write(&mut out);
                block.write(&mut out);
            }
            ActionRequest::WithPblock { invoke, block } => {
                out.extend_from_slice(&[6, invoke.0]);
                block.write(&mut out);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<ActionRequest, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_tag(&mut r, ACTION_REQUEST, "ACTION-Request")?;
        let choice = r.u8()?;
        let invoke = InvokeIdAndPriority(r.u8()?);
        let req = match choice {
            1 => ActionRequest::Normal {
                invoke,
                method: MethodDescriptor::read(&mut r)?,
                parameters: read_optional_data(&mut r)?,
            },
            2 => ActionRequest::NextPblock {
                invoke,
                block_number: r.u32()?,
            },
            4 => ActionRequest::WithFirstPblock {
                invoke,
                method: MethodDescriptor::read(&mut r)?,
                block: DataBlockSa::read(&mut r)?,
            },
            6 => ActionRequest::WithPblock {
                invoke,
                block: DataBlockSa::read(&mut r)?,
            },
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "ACTION-Request choice",
                    tag: t,
                })
            }
        };
        r.finish()?;
        Ok(req)
    }
}

impl ActionResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ACTION_RESPONSE];
        match self {
            ActionResponse::Normal {
                invoke,
                result,
                return_parameters,
            } => {
                out.extend_from_slice(&[1, invoke.0, result.0]);
                match return_parameters {
                    None => out.push(0),
                    Some(r) => {
                        out.push(1);
                        write_get_data_result(r, &mut out);
                    }
                }
            }
            ActionResponse::WithPblock { invoke, block } => {
                out.extend_from_slice(&[2, invoke.0]);
                block.write(&mut out);
            }
            ActionResponse::NextPblock {
                invoke,
                block_number,
            } => {
                out.extend_from_slice(&[4, invoke.0]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<ActionResponse, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_tag(&mut r, ACTION_RESPONSE, "ACTION-Response")?;
        let choice = r.u8()?;
        let invoke = InvokeIdAndPriority(r.u8()?);
        let resp = match choice {
            1 => ActionResponse::Normal {
                invoke,
                result: DataAccessResult(r.u8()?),
                return_parameters: match r.u8()? {
                    0 => None,
                    1 => Some(read_get_data_result(&mut r)?),
                    t => {
                        return Err(DecodeError::InvalidValue {
                            what: "return-parameters presence flag",
                            value: u64::from(t),
                        })
                    }
                },
            },
            2 => ActionResponse::WithPblock {
                invoke,
                block: DataBlockSa::read(&mut r)?,
            },
            4 => ActionResponse::NextPblock {
                invoke,
                block_number: r.u32()?,
            },
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "ACTION-Response choice",
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

    fn reply_to_hls() -> MethodDescriptor {
        // Association LN (class 15) method 1, reply_to_HLS_authentication.
        MethodDescriptor::new(15, Obis::new(0, 0, 40, 0, 0, 255), 1)
    }

    #[test]
    fn normal_action_with_parameters() {
        let params = Data::OctetString(vec![0x11; 17]);
        let reqs = ActionRequest::build(
            InvokeIdAndPriority(0xC1),
            reply_to_hls(),
            Some(&params),
            1024,
        )
        .unwrap();
        let bytes = reqs[0].encode();
        assert_eq!(
            &bytes[..14],
            &[0xC3, 0x01, 0xC1, 0x00, 0x0F, 0, 0, 40, 0, 0, 0xFF, 0x01, 0x01, 0x09]
        );
        assert_eq!(ActionRequest::decode(&bytes).unwrap(), reqs[0]);
        let resp = ActionResponse::Normal {
            invoke: InvokeIdAndPriority(0xC1),
            result: DataAccessResult::SUCCESS,
            return_parameters: Some(Ok(Data::OctetString(vec![0x22; 17]))),
        };
        let rb = resp.encode();
        assert_eq!(&rb[..6], &[0xC7, 0x01, 0xC1, 0x00, 0x01, 0x00]);
        assert_eq!(ActionResponse::decode(&rb).unwrap(), resp);
        let bare = [0xC7, 0x01, 0xC1, 0x00, 0x00];
        assert_eq!(ActionResponse::decode(&bare).unwrap().encode(), bare);
    }

    #[test]
    fn long_parameters_go_in_pblocks() {
        let params = Data::OctetString(vec![0x33; 600]);
        let reqs = ActionRequest::build(
            InvokeIdAndPriority(0xC1),
            reply_to_hls(),
            Some(&params),
            200,
        )
        .unwrap();
        assert!(matches!(reqs[0], ActionRequest::WithFirstPblock { .. }));
        let mut raw = Vec::new();
        for r in &reqs {
            let b = r.encode();
            assert!(b.len() <= 200);
            assert_eq!(&ActionRequest::decode(&b).unwrap(), r);
            match r {
                ActionRequest::WithFirstPblock { block, .. }
                | ActionRequest::WithPblock { block, .. } => raw.extend_from_slice(&block.raw_data),
                _ => panic!("unexpected {r:?}"),
            }
        }
        assert_eq!(Data::decode(&raw).unwrap(), params);
        for r in [
            ActionResponse::NextPblock {
                invoke: InvokeIdAndPriority(0xC1),
                block_number: 1,
            },
            ActionResponse::WithPblock {
                invoke: InvokeIdAndPriority(0xC1),
                block: DataBlockSa {
                    last_block: true,
                    block_number: 1,
                    raw_data: vec![0, 1],
                },
            },
        ] {
            assert_eq!(ActionResponse::decode(&r.encode()).unwrap(), r);
        }
        let next = ActionRequest::NextPblock {
            invoke: InvokeIdAndPriority(0xC1),
            block_number: 2,
        };
        assert_eq!(ActionRequest::decode(&next.encode()).unwrap(), next);
        assert!(ActionRequest::decode(&[0xC3, 0x03, 0xC1]).is_err());
    }
}
