//! Reassembly of a long ReadResponse (Green Book 9.3.x "ReadRequest/ReadResponse with block
//! transfer"): the meter sends data-block-result {last, number, raw}; the client acknowledges
//! each non-last block with a ReadRequest carrying block-number-access {number} and the meter
//! sends the next. Numbers start at 1 and grow by one; the raw data joined is the A-XDR of
//! the result(s) (one Data for one variable, a sequence of Read-Data-Results for several).

use super::read::ReadRequest;
use super::variable::SnDataBlock;
use crate::dlms::xdlms::EmptyRun;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnBlockError {
    /// A block other than the one expected.
    WrongNumber { expected: u16, received: u16 },
    /// The joined raw data would pass the configured limit.
    TooLong { limit: usize },
    /// `blocks` blocks in a row carried no data (see `xdlms::MAX_EMPTY_BLOCKS`).
    EmptyBlocks { blocks: u32 },
    /// The transfer would need block 65536 (SN block numbers are 16 bits).
    NumbersExhausted,
}

impl std::fmt::Display for SnBlockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnBlockError::WrongNumber { expected, received } => {
                write!(f, "read block {received} arrived, {expected} expected")
            }
            SnBlockError::TooLong { limit } => {
                write!(f, "the block transfer passes {limit} bytes")
            }
            SnBlockError::EmptyBlocks { blocks } => write!(
                f,
                "read: {blocks} blocks in a row without data (the meter would go on for ever)"
            ),
            SnBlockError::NumbersExhausted => {
                write!(f, "read: the block transfer needs more than 65535 blocks")
            }
        }
    }
}

impl std::error::Error for SnBlockError {}

#[derive(Debug)]
pub enum SnBlockProgress {
    /// Send this acknowledgement.
    Next(ReadRequest),
    /// The raw data of every block, joined.
    Complete(Vec<u8>),
}

#[derive(Debug)]
pub struct ReadBlockAssembler {
    expected: u16,
    raw: Vec<u8>,
    limit: usize,
    empty: EmptyRun,
}

impl ReadBlockAssembler {
    pub fn new(limit: usize) -> Self {
        ReadBlockAssembler {
            expected: 1,
            raw: Vec::new(),
            limit,
            empty: EmptyRun::default(),
        }
    }

    pub fn push(&mut self, block: &SnDataBlock) -> Result<SnBlockProgress, SnBlockError> {
        if block.block_number != self.expected {
            return Err(SnBlockError::WrongNumber {
                expected: self.expected,
                received: block.block_number,
            });
        }
        if self.raw.len().saturating_add(block.raw_data.len()) > self.limit {
            return Err(SnBlockError::TooLong { limit: self.limit });
        }
        self.raw.extend_from_slice(&block.raw_data);
        if block.last_block {
            return Ok(SnBlockProgress::Complete(std::mem::take(&mut self.raw)));
        }
        self.empty
            .after(block.raw_data.is_empty())
            .map_err(|blocks| SnBlockError::EmptyBlocks { blocks })?;
        let number = self.expected;
        self.expected = self
            .expected
            .checked_add(1)
            .ok_or(SnBlockError::NumbersExhausted)?;
        Ok(SnBlockProgress::Next(ReadRequest::next_block(number)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u16, data: Vec<u8>) -> SnDataBlock {
        SnDataBlock {
            last_block: false,
            block_number: n,
            raw_data: data,
        }
    }

    /// An SN meter sending empty blocks for ever (helper-14): ended after the bound, named
    /// for what it is (it used to run 65,535 round trips, then say "passes 4194304 bytes").
    #[test]
    fn empty_blocks_end_the_read_and_running_out_of_numbers_says_so() {
        let mut asm = ReadBlockAssembler::new(1 << 22);
        let ended = (1..1000).find_map(|n| asm.push(&block(n, vec![])).err());
        assert!(
            matches!(ended, Some(SnBlockError::EmptyBlocks { .. })),
            "{ended:?}"
        );
        let mut asm = ReadBlockAssembler::new(1 << 22);
        asm.expected = u16::MAX;
        assert_eq!(
            asm.push(&block(u16::MAX, vec![1])).err(),
            Some(SnBlockError::NumbersExhausted)
        );
    }
}
