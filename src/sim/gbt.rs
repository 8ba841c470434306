//! The simulator's side of general block transfer (IEC 62056-5-3 9.3.11): an answer longer
//! than the client's PDU is cut into General-Block-Transfer blocks (after ciphering: GBT sits
//! outside the security layer), sent one per acknowledgement. The client's block-number-ack
//! names the last block it has, so a resend after a lost block needs nothing more.

use crate::dlms::xdlms::gbt::{GeneralBlock, GENERAL_BLOCK_TRANSFER};

/// The simulator's own receive window, announced in its blocks.
const WINDOW: u8 = 1;

/// Header bytes of a block: tag, block-control, two numbers, a length of up to 3 bytes.
const HEADER: usize = 9;

/// The blocks of one answer not yet acknowledged.
#[derive(Debug, Default)]
pub(crate) struct GbtSender {
    blocks: Vec<GeneralBlock>,
}

impl GbtSender {
    /// The answer as it goes out: unchanged when it fits `client_pdu`, else its first block
    /// (the rest wait for acknowledgements).
    pub(crate) fn start(&mut self, answer: Vec<u8>, client_pdu: usize) -> Vec<u8> {
        self.blocks.clear();
        if answer.len() <= client_pdu {
            return answer;
        }
        let room = client_pdu.saturating_sub(HEADER).max(1);
        match GeneralBlock::split(&answer, room, WINDOW, 0) {
            Some(blocks) => {
                self.blocks = blocks;
                self.block_after(0).unwrap_or(answer)
            }
            None => answer,
        }
    }

    /// A General-Block-Transfer APDU from the client: the block after the one it
    /// acknowledges; `None` when nothing is pending (or it is not a block).
    pub(crate) fn on_block(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        if apdu.first() != Some(&GENERAL_BLOCK_TRANSFER) || self.blocks.is_empty() {
            return None;
        }
        let ack = GeneralBlock::decode(apdu).ok()?.block_number_ack;
        self.block_after(ack)
    }

    /// The block after `ack`; `None` past the last (the transfer is over).
    fn block_after(&mut self, ack: u16) -> Option<Vec<u8>> {
        let Some(block) = self.blocks.get(usize::from(ack)) else {
            self.blocks.clear();
            return None;
        };
        let mut block = block.clone();
        block.block_number_ack = ack;
        Some(block.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlms::xdlms::gbt::{GbtProgress, GbtReassembler};

    #[test]
    fn an_answer_goes_out_in_blocks_and_a_repeated_ack_resends() {
        let answer: Vec<u8> = (0..500u16).map(|i| i as u8).collect();
        let mut sender = GbtSender::default();
        assert_eq!(sender.start(vec![1, 2, 3], 64), vec![1, 2, 3]);
        let mut block = sender.start(answer.clone(), 109);
        assert_eq!(block.len(), 107, "100 data bytes after a 7-byte header");
        let mut client = GbtReassembler::new(10_000, 1);
        let mut acks = 0;
        loop {
            match client.push_apdu(&block).unwrap() {
                GbtProgress::Complete(joined) => {
                    assert_eq!(joined, answer);
                    break;
                }
                GbtProgress::Send(ack) => {
                    acks += 1;
                    block = sender.on_block(&ack.encode()).unwrap();
                    // The same acknowledgement again (the client lost the block): the same
                    // block again.
                    assert_eq!(sender.on_block(&ack.encode()).unwrap(), block);
                }
                GbtProgress::Wait => panic!("window 1: every block is acknowledged"),
            }
        }
        assert_eq!(acks, 4);
        let past_the_last = GeneralBlock {
            block_number_ack: 5,
            ..GeneralBlock::decode(&block).unwrap()
        };
        assert_eq!(sender.on_block(&past_the_last.encode()), None);
        assert_eq!(sender.on_block(&block), None, "nothing pending any more");
    }
}
