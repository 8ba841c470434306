//! DataBlock-SA (Green Book 9.5): one block of a long SET or ACTION.
//!
//! ```text
//! last-block(bool) block-number(u32) raw-data(octet-string)
//! ```

use crate::dlms::reader::write_axdr_length;
use crate::dlms::{DecodeError, Reader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBlockSa {
    pub last_block: bool,
    pub block_number: u32,
    pub raw_data: Vec<u8>,
}

impl DataBlockSa {
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let last_block = r.u8()? != 0;
        let block_number = r.u32()?;
        let len = r.axdr_length_bounded("DataBlock-SA raw-data")?;
        Ok(DataBlockSa {
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

    /// Cuts `encoded` into blocks numbered from 1 such that the first PDU (whose header takes
    /// `first_overhead` bytes) and every later one (`overhead` bytes) fit `max_pdu`.
    /// Returns `None` if `max_pdu` leaves no room for data.
    pub(crate) fn split(
        encoded: &[u8],
        max_pdu: usize,
        first_overhead: usize,
        overhead: usize,
    ) -> Option<Vec<DataBlockSa>> {
        // 3 bytes is the longest A-XDR length a block of up to 64 KiB needs.
        let first_room = max_pdu.checked_sub(first_overhead + 3).filter(|n| *n > 0)?;
        let room = max_pdu.checked_sub(overhead + 3).filter(|n| *n > 0)?;
        let mut blocks = Vec::new();
        let (first, mut rest) = encoded.split_at(first_room.min(encoded.len()));
        blocks.push(first.to_vec());
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(room.min(rest.len()));
            blocks.push(chunk.to_vec());
            rest = tail;
        }
        let n = blocks.len();
        Some(
            blocks
                .into_iter()
                .enumerate()
                .map(|(i, raw_data)| DataBlockSa {
                    last_block: i + 1 == n,
                    block_number: i as u32 + 1,
                    raw_data,
                })
                .collect(),
        )
    }
}
