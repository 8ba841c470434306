//! GET service (Green Book 9.5, "GET-Request", "GET-Response"; 9.3.7 for block transfer).
//!
//! ```text
//! C0 01 iip attribute access-selection                    GET-Request-Normal
//! C0 02 iip block-number(u32)                             GET-Request-Next
//! C0 03 iip n (attribute access-selection){n}             GET-Request-With-List
//! C4 01 iip Get-Data-Result                               GET-Response-Normal
//! C4 02 iip last-block(bool) block-number(u32)
//!       (00 raw-data octet-string | 01 data-access-result) GET-Response-With-Datablock
//! C4 03 iip n Get-Data-Result{n}                          GET-Response-With-List
//! ```

use super::descriptor::{
    read_get_data_result, write_get_data_result, AttributeDescriptor, DataAccessResult,
    GetDataResult, SelectiveAccess,
};
use super::invoke::InvokeIdAndPriority;
use super::{expect_tag, GET_REQUEST, GET_RESPONSE};
use crate::dlms::reader::write_axdr_length;
use crate::dlms::{DecodeError, Reader};
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum GetRequest {
    Normal {
        invoke: InvokeIdAndPriority,
        attribute: AttributeDescriptor,
        access: Option<SelectiveAccess>,
    },
    Next {
        invoke: InvokeIdAndPriority,
        block_number: u32,
    },
    WithList {
        invoke: InvokeIdAndPriority,
        items: Vec<(AttributeDescriptor, Option<SelectiveAccess>)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum GetResponse {
    Normal {
        invoke: InvokeIdAndPriority,
        result: GetDataResult,
    },
    WithDatablock {
        invoke: InvokeIdAndPriority,
        last_block: bool,
        block_number: u32,
        /// A part of the encoded answer, or why the transfer stopped.
        raw: Result<Vec<u8>, DataAccessResult>,
    },
    WithList {
        invoke: InvokeIdAndPriority,
        results: Vec<GetDataResult>,
    },
}

/// Reads an element count and refuses counts larger than the bytes left (each element takes
/// at least `min_size` bytes), so that no allocation follows a hostile count.
pub(crate) fn read_count(
    r: &mut Reader<'_>,
    min_size: usize,
    what: &'static str,
) -> Result<usize, DecodeError> {
    let n = r.axdr_length()?;
    if n.saturating_mul(min_size) > r.remaining() {
        return Err(DecodeError::InvalidLength {
            what,
            length: n as u64,
        });
    }
    Ok(n)
}

impl GetRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![GET_REQUEST];
        match self {
            GetRequest::Normal {
                invoke,
                attribute,
                access,
            } => {
                out.extend_from_slice(&[1, invoke.0]);
                attribute.write(&mut out);
                SelectiveAccess::write_optional(access, &mut out);
            }
            GetRequest::Next {
                invoke,
                block_number,
            } => {
                out.extend_from_slice(&[2, invoke.0]);
                out.extend_from_slice(&block_number.to_be_bytes());
            }
            GetRequest::WithList { invoke, items } => {
                out.extend_from_slice(&[3, invoke.0]);
                write_axdr_length(&mut out, items.len());
                for (attribute, access) in items {
                    attribute.write(&mut out);
                    SelectiveAccess::write_optional(access, &mut out);
                }
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<GetRequest, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_tag(&mut r, GET_REQUEST, "GET-Request")?;
        let choice = r.u8()?;
        let invoke = InvokeIdAndPriority(r.u8()?);
        let req = match choice {
            1 => GetRequest::Normal {
                invoke,
                attribute: AttributeDescriptor::read(&mut r)?,
                access: SelectiveAccess::read_optional(&mut r)?,
            },
            2 => GetRequest::Next {
                invoke,
                block_number: r.u32()?,
            },
            3 => {
                let n = read_count(&mut r, 10, "GET-Request-With-List")?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    let attribute = AttributeDescriptor::read(&mut r)?;
                    items.push((attribute, SelectiveAccess::read_optional(&mut r)?));
                }
                GetRequest::WithList { invoke, items }
            }
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "GET-Request choice",
                    tag: t,
                })
            }
        };
        r.finish()?;
        Ok(req)
    }
}

impl GetResponse {
    pub fn invoke(&self) -> InvokeIdAndPriority {
        match self {
            GetResponse::Normal { invoke, .. }
            | GetResponse::WithDatablock { invoke, .. }
            | GetResponse::WithList { invoke, .. } => *invoke,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![GET_RESPONSE];
        match self {
            GetResponse::Normal { invoke, result } => {
                out.extend_from_slice(&[1, invoke.0]);
                write_get_data_result(result, &mut out);
            }
            GetResponse::WithDatablock {
                invoke,
                last_block,
                block_number,
                raw,
            } => {
                out.extend_from_slice(&[2, invoke.0, u8::from(*last_block)]);
                out.extend_from_slice(&block_number.to_be_bytes());
                match raw {
                    Ok(data) => {
                        out.push(0);
                        write_axdr_length(&mut out, data.len());
                        out.extend_from_slice(data);
                    }
                    Err(e) => out.extend_from_slice(&[1, e.0]),
                }
            }
            GetResponse::WithList { invoke, results } => {
                out.extend_from_slice(&[3, invoke.0]);
                write_axdr_length(&mut out, results.len());
                for result in results {
                    write_get_data_result(result, &mut out);
                }
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<GetResponse, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_tag(&mut r, GET_RESPONSE, "GET-Response")?;
        let choice = r.u8()?;
        let invoke = InvokeIdAndPriority(r.u8()?);
        let resp = match choice {
            1 => GetResponse::Normal {
                invoke,
                result: read_get_data_result(&mut r)?,
            },
            2 => {
                let last_block = r.u8()? != 0;
                let block_number = r.u32()?;
                let raw = match r.u8()? {
                    0 => {
                        let len = r.axdr_length_bounded("raw-data")?;
                        Ok(r.bytes(len)?.to_vec())
                    }
                    1 => Err(DataAccessResult(r.u8()?)),
                    t => {
                        return Err(DecodeError::UnknownTag {
                            what: "DataBlock-G result",
                            tag: t,
                        })
                    }
                };
                GetResponse::WithDatablock {
                    invoke,
                    last_block,
                    block_number,
                    raw,
                }
            }
            3 => {
                let n = read_count(&mut r, 2, "GET-Response-With-List")?;
                let mut results = Vec::with_capacity(n);
                for _ in 0..n {
                    results.push(read_get_data_result(&mut r)?);
                }
                GetResponse::WithList { invoke, results }
            }
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "GET-Response choice",
                    tag: t,
                })
            }
        };
        r.finish()?;
        Ok(resp)
    }
}

/// Why a block transfer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    /// The meter sent a block out of order (Green Book 9.3.7: numbers start at 1 and grow by 1).
    UnexpectedBlock { expected: u32, received: u32 },
    /// The meter aborted the transfer.
    Aborted(DataAccessResult),
    /// The reassembled answer passed the limit.
    TooLarge(usize),
    /// A response that is not a data block arrived mid-transfer.
    NotABlock,
    /// `blocks` blocks in a row carried no data: a meter that would go on for ever.
    EmptyBlocks { blocks: u32 },
}

/// Empty non-last blocks in a row that end a block transfer (GET, SN Read, general block
/// transfer): a block without data moves nothing, and a hostile meter sent them for ever
/// (block numbers run to 2^32).
pub const MAX_EMPTY_BLOCKS: u32 = 16;

/// Empty non-last blocks in a row, against [`MAX_EMPTY_BLOCKS`] (GET and SN Read block
/// transfers share the rule).
#[derive(Debug, Default)]
pub struct EmptyRun(u32);

impl EmptyRun {
    /// After a non-last block: `Err(n)` once `n` empty ones came in a row.
    pub fn after(&mut self, empty: bool) -> Result<(), u32> {
        self.0 = if empty { self.0 + 1 } else { 0 };
        if self.0 >= MAX_EMPTY_BLOCKS {
            Err(self.0)
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::UnexpectedBlock { expected, received } => {
                write!(
                    f,
                    "block transfer: got block {received}, expected {expected}"
                )
            }
            BlockError::Aborted(e) => write!(f, "block transfer aborted by the meter: {e}"),
            BlockError::TooLarge(n) => write!(f, "block transfer exceeds {n} bytes"),
            BlockError::NotABlock => write!(f, "block transfer: unexpected response"),
            BlockError::EmptyBlocks { blocks } => write!(
                f,
                "block transfer: {blocks} blocks in a row without data (the meter would go on for ever)"
            ),
        }
    }
}

impl std::error::Error for BlockError {}

/// What to do after a block.
#[derive(Debug, Clone, PartialEq)]
pub enum BlockProgress {
    /// Send this GET-Request-Next.
    Next(GetRequest),
    /// The transfer is complete: the concatenated raw data.
    Complete(Vec<u8>),
}

/// Reassembles a GET-Response-With-Datablock sequence (Green Book 9.3.7), sans-I/O.
#[derive(Debug)]
pub struct GetBlockAssembler {
    expected: u32,
    data: Vec<u8>,
    limit: usize,
    empty: EmptyRun,
}

impl GetBlockAssembler {
    pub fn new(limit: usize) -> Self {
        GetBlockAssembler {
            expected: 1,
            data: Vec::new(),
            limit,
            empty: EmptyRun::default(),
        }
    }

    pub fn push(&mut self, response: &GetResponse) -> Result<BlockProgress, BlockError> {
        let GetResponse::WithDatablock {
            invoke,
            last_block,
            block_number,
            raw,
        } = response
        else {
            return Err(BlockError::NotABlock);
        };
        let chunk = raw.as_ref().map_err(|e| BlockError::Aborted(*e))?;
        if *block_number != self.expected {
            return Err(BlockError::UnexpectedBlock {
                expected: self.expected,
                received: *block_number,
            });
        }
        if self.data.len() + chunk.len() > self.limit {
            return Err(BlockError::TooLarge(self.limit));
        }
        self.data.extend_from_slice(chunk);
        if *last_block {
            return Ok(BlockProgress::Complete(std::mem::take(&mut self.data)));
        }
        self.empty
            .after(chunk.is_empty())
            .map_err(|blocks| BlockError::EmptyBlocks { blocks })?;
        // Block numbers run out only past any limit a transfer may reach.
        self.expected = self
            .expected
            .checked_add(1)
            .ok_or(BlockError::TooLarge(self.limit))?;
        // Acknowledge with the number of the block just received.
        Ok(BlockProgress::Next(GetRequest::Next {
            invoke: *invoke,
            block_number: *block_number,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosem::Obis;
    use crate::dlms::axdr::Data;

    fn voltage() -> AttributeDescriptor {
        AttributeDescriptor::new(3, Obis::new(1, 0, 32, 7, 0, 255), 2)
    }

    #[test]
    fn gurux_get_request_normal() {
        let bytes = [
            0xC0, 0x01, 0xC1, 0x00, 0x03, 0x01, 0x00, 0x20, 0x07, 0x00, 0xFF, 0x02, 0x00,
        ];
        let req = GetRequest::decode(&bytes).unwrap();
        assert_eq!(
            req,
            GetRequest::Normal {
                invoke: InvokeIdAndPriority(0xC1),
                attribute: voltage(),
                access: None
            }
        );
        assert_eq!(req.encode(), bytes);
        for cut in 0..bytes.len() {
            assert!(GetRequest::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn response_normal_data_and_error() {
        let ok = [0xC4, 0x01, 0xC1, 0x00, 0x12, 0x08, 0xFD];
        assert_eq!(
            GetResponse::decode(&ok).unwrap(),
            GetResponse::Normal {
                invoke: InvokeIdAndPriority(0xC1),
                result: Ok(Data::LongUnsigned(2301))
            }
        );
        let denied = [0xC4, 0x01, 0xC1, 0x01, 0x03];
        let resp = GetResponse::decode(&denied).unwrap();
        assert_eq!(
            resp,
            GetResponse::Normal {
                invoke: InvokeIdAndPriority(0xC1),
                result: Err(DataAccessResult::READ_WRITE_DENIED)
            }
        );
        assert_eq!(resp.encode(), denied);
        assert!(GetResponse::decode(&[0xC4, 0x01, 0xC1, 0x02, 0x03]).is_err());
        assert!(GetResponse::decode(&[0xC4, 0x01, 0xC1, 0x01, 0x03, 0x00]).is_err());
    }

    #[test]
    fn with_list_both_ways() {
        let req = GetRequest::WithList {
            invoke: InvokeIdAndPriority(0xC2),
            items: vec![
                (voltage(), None),
                (
                    AttributeDescriptor::new(3, Obis::new(1, 0, 32, 7, 0, 255), 3),
                    None,
                ),
            ],
        };
        assert_eq!(GetRequest::decode(&req.encode()).unwrap(), req);
        let resp = GetResponse::WithList {
            invoke: InvokeIdAndPriority(0xC2),
            results: vec![
                Ok(Data::LongUnsigned(2301)),
                Ok(Data::Structure(vec![Data::Integer(-1), Data::Enum(35)])),
                Err(DataAccessResult::OBJECT_UNDEFINED),
            ],
        };
        let bytes = resp.encode();
        assert_eq!(&bytes[..4], &[0xC4, 0x03, 0xC2, 0x03]);
        assert_eq!(GetResponse::decode(&bytes).unwrap(), resp);
        // A count of 100 results in 3 bytes is refused before allocating.
        assert!(GetResponse::decode(&[0xC4, 0x03, 0xC2, 0x64, 0x01, 0x03]).is_err());
    }

    #[test]
    fn block_transfer_reassembly() {
        let whole = Data::OctetString(vec![0x5A; 500]).to_bytes();
        let blocks: Vec<GetResponse> = whole
            .chunks(200)
            .enumerate()
            .map(|(i, c)| GetResponse::WithDatablock {
                invoke: InvokeIdAndPriority(0xC1),
                last_block: (i + 1) * 200 >= whole.len(),
                block_number: i as u32 + 1,
                raw: Ok(c.to_vec()),
            })
            .collect();
        let mut asm = GetBlockAssembler::new(10_000);
        for (i, b) in blocks.iter().enumerate() {
            let bytes = b.encode();
            assert_eq!(&GetResponse::decode(&bytes).unwrap(), b);
            match asm.push(b).unwrap() {
                BlockProgress::Next(next) => {
                    assert_eq!(
                        next.encode(),
                        [0xC0, 0x02, 0xC1, 0x00, 0x00, 0x00, i as u8 + 1]
                    );
                }
                BlockProgress::Complete(data) => {
                    assert_eq!(i, blocks.len() - 1);
                    assert_eq!(
                        Data::decode(&data).unwrap(),
                        Data::OctetString(vec![0x5A; 500])
                    );
                }
            }
        }
    }

    /// Empty blocks that never end (helper-14 sent them to the SN and GBT paths) end the
    /// transfer after [`MAX_EMPTY_BLOCKS`]; an empty block now and then does not.
    #[test]
    fn empty_blocks_for_ever_end_the_transfer() {
        let block = |n: u32, data: Vec<u8>| GetResponse::WithDatablock {
            invoke: InvokeIdAndPriority(0xC1),
            last_block: false,
            block_number: n,
            raw: Ok(data),
        };
        let mut asm = GetBlockAssembler::new(10_000);
        for n in 1..=40 {
            let data = if n % 2 == 0 { vec![] } else { vec![1] };
            assert!(asm.push(&block(n, data)).is_ok(), "block {n}");
        }
        let mut asm = GetBlockAssembler::new(10_000);
        let ended = (1..1000).find_map(|n| asm.push(&block(n, vec![])).err().map(|e| (n, e)));
        assert_eq!(
            ended,
            Some((
                MAX_EMPTY_BLOCKS,
                BlockError::EmptyBlocks {
                    blocks: MAX_EMPTY_BLOCKS
                }
            ))
        );
    }

    #[test]
    fn block_transfer_errors() {
        let block = |n: u32, raw| GetResponse::WithDatablock {
            invoke: InvokeIdAndPriority(0xC1),
            last_block: false,
            block_number: n,
            raw,
        };
        let mut asm = GetBlockAssembler::new(100);
        assert_eq!(
            asm.push(&block(2, Ok(vec![1]))),
            Err(BlockError::UnexpectedBlock {
                expected: 1,
                received: 2
            })
        );
        assert_eq!(
            asm.push(&block(1, Err(DataAccessResult::LONG_GET_ABORTED))),
            Err(BlockError::Aborted(DataAccessResult::LONG_GET_ABORTED))
        );
        assert_eq!(
            asm.push(&block(1, Ok(vec![0; 101]))),
            Err(BlockError::TooLarge(100))
        );
    }
}
