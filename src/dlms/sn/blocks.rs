//! Reassembly of a long ReadResponse (Green Book 9.3.x "ReadRequest/ReadResponse with block
//! transfer"): the meter sends data-block-result {last, number, raw}; the client acknowledges
//! each non-last block with a ReadRequest carrying block-number-access {number} and the meter
//! sends the next. Numbers start at 1 and grow by one; the raw data joined is the A-XDR of
//! the result(s) (one Data for one variable, a sequence of Read-Data-Results for several).

use super::read::ReadRequest;
use super::variable::SnDataBlock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnBlockError {
    /// A block other than the one expected.
    WrongNumber { expected: u16, received: u16 },
    /// The joined raw data would pass the configured limit.
    TooLong { limit: usize },
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
}

impl ReadBlockAssembler {
    pub fn new(limit: usize) -> Self {
        ReadBlockAssembler {
            expected: 1,
            raw: Vec::new(),
            limit,
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
        let number = self.expected;
        // u16 block numbers: a transfer that would need block 65536 is refused as too long.
        self.expected = self
            .expected
            .checked_add(1)
            .ok_or(SnBlockError::TooLong { limit: self.limit })?;
        Ok(SnBlockProgress::Next(ReadRequest::next_block(number)))
    }
}
