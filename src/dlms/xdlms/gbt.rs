//! General block transfer (GBT), sans-I/O: the General-Block-Transfer APDU and the receive side
//! of the mechanism (IEC 62056-5-3 clause 9.3.11 "general block transfer mechanism"; Green Book
//! DLMS UA 1000-2 Ed. 10 9.1.4.4.x; the APDU in the COSEMpdu module of Green Book 9.5).
//!
//! ```text
//! E0 block-control(u8) block-number(u16) block-number-acknowledged(u16) block-data(octet string)
//! block-control: bit 7 last-block, bit 6 streaming, bits 5..0 window
//! ```
//!
//! GBT wraps any APDU, ciphered ones included (it sits outside the security layer): the blocks
//! are joined first, then the joined APDU is deciphered and decoded as usual.

use crate::dlms::reader::write_axdr_length;
use crate::dlms::{DecodeError, Reader};
use std::fmt;

/// The APDU tag of General-Block-Transfer ([224], Green Book 9.5).
pub const GENERAL_BLOCK_TRANSFER: u8 = 0xE0;

const LAST_BLOCK: u8 = 0x80;
const STREAMING: u8 = 0x40;
const WINDOW: u8 = 0x3F;

/// The block-control byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockControl {
    /// This block is the last one of the APDU.
    pub last_block: bool,
    /// More blocks of the current window follow without an acknowledgement; clear on the last
    /// block of a window, where the sender waits (IEC 62056-5-3 9.3.11).
    pub streaming: bool,
    /// How many blocks the sender of this APDU can receive in one window (0..=63); 0: it
    /// cannot receive at all (an unconfirmed push).
    pub window: u8,
}

impl BlockControl {
    pub fn from_byte(b: u8) -> BlockControl {
        BlockControl {
            last_block: b & LAST_BLOCK != 0,
            streaming: b & STREAMING != 0,
            window: b & WINDOW,
        }
    }

    pub fn to_byte(self) -> u8 {
        (if self.last_block { LAST_BLOCK } else { 0 })
            | (if self.streaming { STREAMING } else { 0 })
            | (self.window & WINDOW)
    }
}

/// One General-Block-Transfer APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralBlock {
    pub control: BlockControl,
    /// This block's number; each side numbers its own blocks from 1.
    pub block_number: u16,
    /// The number of the last block received in order from the peer (0: none yet).
    pub block_number_ack: u16,
    /// A part of the carried APDU (empty in a bare acknowledgement).
    pub block_data: Vec<u8>,
}

impl GeneralBlock {
    pub fn decode(bytes: &[u8]) -> Result<GeneralBlock, DecodeError> {
        let mut r = Reader::new(bytes);
        super::expect_tag(&mut r, GENERAL_BLOCK_TRANSFER, "General-Block-Transfer")?;
        let control = BlockControl::from_byte(r.u8()?);
        let block_number = r.u16()?;
        let block_number_ack = r.u16()?;
        let len = r.axdr_length_bounded("General-Block-Transfer block-data")?;
        let block_data = r.bytes(len)?.to_vec();
        r.finish()?;
        Ok(GeneralBlock {
            control,
            block_number,
            block_number_ack,
            block_data,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.block_data.len() + 9);
        out.push(GENERAL_BLOCK_TRANSFER);
        out.push(self.control.to_byte());
        out.extend_from_slice(&self.block_number.to_be_bytes());
        out.extend_from_slice(&self.block_number_ack.to_be_bytes());
        write_axdr_length(&mut out, self.block_data.len());
        out.extend_from_slice(&self.block_data);
        out
    }

    /// Cuts `apdu` into blocks of at most `room` data bytes, numbered from 1, sent with
    /// `window` as the sender's receive window. Blocks of one window (`window` blocks; at
    /// least 1) are streamed: all but the last of each window carry the streaming bit.
    /// `None` if `room` is 0 or the APDU needs more than 65535 blocks.
    pub fn split(apdu: &[u8], room: usize, window: u8, ack: u16) -> Option<Vec<GeneralBlock>> {
        if room == 0 {
            return None;
        }
        let chunks: Vec<&[u8]> = if apdu.is_empty() {
            vec![&[]]
        } else {
            apdu.chunks(room).collect()
        };
        let n = chunks.len();
        if n > usize::from(u16::MAX) {
            return None;
        }
        let per_window = usize::from(window.clamp(1, WINDOW));
        Some(
            chunks
                .into_iter()
                .enumerate()
                .map(|(i, data)| GeneralBlock {
                    control: BlockControl {
                        last_block: i + 1 == n,
                        streaming: i + 1 != n && (i + 1) % per_window != 0,
                        window: window & WINDOW,
                    },
                    block_number: i as u16 + 1,
                    block_number_ack: ack,
                    block_data: data.to_vec(),
                })
                .collect(),
        )
    }
}

/// Why a general block transfer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GbtError {
    /// A block that is not a valid General-Block-Transfer APDU.
    Decode(DecodeError),
    /// The joined APDU would pass the limit (bytes).
    TooLarge(usize),
    /// Blocks were lost and cannot be asked for again (a receive-only listener: a push).
    LostBlock { expected: u16, received: u16 },
    /// The peer kept sending blocks past a gap after it was asked for the missing one.
    RecoveryFailed { expected: u16 },
    /// A block arrived after the last block.
    AfterLastBlock,
    /// The peer went on without progress: `blocks` in a row brought no data (resends, empty
    /// blocks, restarts), or its block numbers ran out (a hostile or broken meter: without
    /// this bound a transfer never ended, 18,000 round trips a second).
    NoProgress { blocks: u32 },
}

impl fmt::Display for GbtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GbtError::Decode(e) => write!(f, "general block transfer: {e}"),
            GbtError::TooLarge(n) => write!(f, "general block transfer exceeds {n} bytes"),
            GbtError::LostBlock { expected, received } => write!(
                f,
                "general block transfer: block {expected} lost (got block {received})"
            ),
            GbtError::RecoveryFailed { expected } => write!(
                f,
                "general block transfer: block {expected} not resent after it was asked for"
            ),
            GbtError::AfterLastBlock => {
                write!(f, "general block transfer: a block after the last block")
            }
            GbtError::NoProgress { blocks } => write!(
                f,
                "general block transfer: {blocks} blocks in a row brought no data (the meter repeats or restarts its answer)"
            ),
        }
    }
}

impl std::error::Error for GbtError {}

impl From<DecodeError> for GbtError {
    fn from(e: DecodeError) -> Self {
        GbtError::Decode(e)
    }
}

/// What to do after a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GbtProgress {
    /// Send this General-Block-Transfer APDU (the acknowledgement of a window, or the request
    /// for a lost block), then wait for the next blocks.
    Send(GeneralBlock),
    /// More blocks of this window follow: wait for them (streaming), send nothing.
    Wait,
    /// The transfer is complete: the carried APDU.
    Complete(Vec<u8>),
}

/// The most blocks past a gap we wait through for the peer to answer our request for the lost
/// one (a window is at most 63 blocks).
const MAX_BLOCKS_PAST_GAP: u16 = 2 * WINDOW as u16;
/// The most blocks in a row that bring no data (resends of blocks we have, empty blocks,
/// restarts from block 1) before the transfer is given up: a healthy meter resends a window
/// or two after a loss; a broken one repeats for ever.
const MAX_UNPRODUCTIVE: u32 = 4 * WINDOW as u32;

/// Joins the blocks of one General-Block-Transfer (IEC 62056-5-3 9.3.11), sans-I/O.
///
/// Blocks must come in order (numbers from 1, each one more than the last). A block the
/// reassembler already has (a resend) is skipped. A gap is a lost block: a reassembler that
/// may answer (`window > 0`) asks for it again at the end of the window, by acknowledging the
/// last block received in order (the sender then resends from the next one); a receive-only
/// one (window 0, a push listener) fails with [`GbtError::LostBlock`]. A block numbered 1
/// starts a new transfer (an earlier incomplete one, whose last block was lost, is dropped).
#[derive(Debug)]
pub struct GbtReassembler {
    /// The next block number we need.
    next: u16,
    data: Vec<u8>,
    limit: usize,
    /// Our receive window, sent in every block-control we send.
    window: u8,
    /// Our own next block number (for the acknowledgements we send).
    our_number: u16,
    /// Blocks received past a gap since we asked for the lost one.
    past_gap: u16,
    /// Blocks in a row that brought no data ([`MAX_UNPRODUCTIVE`]).
    unproductive: u32,
    done: bool,
}

impl GbtReassembler {
    /// `limit`: the largest joined APDU accepted; `window`: how many blocks we receive per
    /// window (0: we never answer, a push listener).
    pub fn new(limit: usize, window: u8) -> GbtReassembler {
        GbtReassembler {
            next: 1,
            data: Vec::new(),
            limit,
            window: window & WINDOW,
            our_number: 1,
            past_gap: 0,
            unproductive: 0,
            done: false,
        }
    }

    /// Whether some blocks are held, waiting for the rest.
    pub fn in_progress(&self) -> bool {
        self.next > 1 && !self.done
    }

    /// Decodes and takes one block as it arrived.
    pub fn push_apdu(&mut self, apdu: &[u8]) -> Result<GbtProgress, GbtError> {
        self.push(&GeneralBlock::decode(apdu)?)
    }

    pub fn push(&mut self, block: &GeneralBlock) -> Result<GbtProgress, GbtError> {
        let ends_window = block.control.last_block || !block.control.streaming;
        let brings_data = block.block_number == self.next
            && (!block.block_data.is_empty() || block.control.last_block)
            && !self.done;
        if brings_data {
            self.unproductive = 0;
        } else {
            self.unproductive += 1;
            if self.unproductive > MAX_UNPRODUCTIVE {
                return Err(GbtError::NoProgress {
                    blocks: self.unproductive,
                });
            }
        }
        if block.block_number == u16::MAX && !block.control.last_block {
            // The next block would need number 0: numbers ran out (about 65,000 blocks).
            return Err(GbtError::NoProgress {
                blocks: u32::from(u16::MAX),
            });
        }
        if block.block_number == 1 && self.next != 1 {
            // A new transfer: the previous one never completed (its last block was lost).
            self.restart();
        }
        if self.done {
            return Err(GbtError::AfterLastBlock);
        }
        if block.block_number < self.next {
            // A resend of a block we have: nothing new (it may end the window, though).
            return Ok(self.after_window(ends_window));
        }
        if block.block_number > self.next {
            if self.window == 0 {
                let expected = self.next;
                self.restart();
                return Err(GbtError::LostBlock {
                    expected,
                    received: block.block_number,
                });
            }
            self.past_gap = self.past_gap.saturating_add(1);
            if self.past_gap > MAX_BLOCKS_PAST_GAP {
                return Err(GbtError::RecoveryFailed {
                    expected: self.next,
                });
            }
            // Ask again at the end of the window (IEC 62056-5-3 9.3.11, lost block recovery).
            return Ok(self.after_window(ends_window));
        }
        if self.data.len().saturating_add(block.block_data.len()) > self.limit {
            return Err(GbtError::TooLarge(self.limit));
        }
        self.data.extend_from_slice(&block.block_data);
        self.next = self.next.wrapping_add(1);
        self.past_gap = 0;
        if block.control.last_block {
            self.done = true;
            return Ok(GbtProgress::Complete(std::mem::take(&mut self.data)));
        }
        Ok(self.after_window(ends_window))
    }

    /// At the end of a window, the acknowledgement (of the last block received in order);
    /// within one, wait. A receive-only reassembler never answers. The acknowledgement has
    /// last-block set: it carries no data and no block of ours follows (gurux-dlms's client
    /// acknowledges the same way, E0 81 ...).
    fn after_window(&mut self, ends_window: bool) -> GbtProgress {
        if self.window == 0 || !ends_window {
            return GbtProgress::Wait;
        }
        let ack = GeneralBlock {
            control: BlockControl {
                last_block: true,
                streaming: false,
                window: self.window,
            },
            block_number: self.our_number,
            block_number_ack: self.next.wrapping_sub(1),
            block_data: Vec::new(),
        };
        self.our_number = self.our_number.wrapping_add(1);
        GbtProgress::Send(ack)
    }

    fn restart(&mut self) {
        self.next = 1;
        self.data.clear();
        self.past_gap = 0;
        self.done = false;
    }
}

/// Joins the General-Block-Transfer APDUs of one transfer, in the order received, into the
/// APDU they carry (for decoders of captures: no acknowledgements, no recovery). `Ok(None)`:
/// the last block is not among them yet.
pub fn join_blocks<'a>(
    blocks: impl IntoIterator<Item = &'a [u8]>,
    limit: usize,
) -> Result<Option<Vec<u8>>, GbtError> {
    let mut reassembler = GbtReassembler::new(limit, 0);
    for block in blocks {
        if let GbtProgress::Complete(apdu) = reassembler.push_apdu(block)? {
            return Ok(Some(apdu));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlms::axdr::Data;
    use crate::dlms::xdlms::notification::DataNotification;

    fn hex(s: &str) -> Vec<u8> {
        crate::hex::parse(s).unwrap()
    }

    /// The two blocks of tests/vectors/gbt/gurux-push-plain-hdlc.hex (gurux-dlms 1.0.203
    /// GXDLMSNotify, made by tests/interop/gen_gbt_vectors.py), HDLC and LLC headers removed.
    const GURUX_BLOCK_1: &str =
        "E00100010000390FC000000100020C09060100010800FF06000003EF0906010002\
        0800FF06000007D709060100030800FF0600000BBF09060100040800FF0600";
    const GURUX_BLOCK_2: &str =
        "E081000200001D000FA709060100050800FF060000138F09060100060800FF0600001777";

    /// Block 1 of the Landis+Gyr E450 capture (tests/vectors/push/landis-gyr-e450-cyprus-gbt.hex),
    /// up to its first data byte: streaming, window 0, block 1, nothing acknowledged, 112 bytes.
    const E450_BLOCK_1_HEADER: &str = "E04000010000700F007C83D3";

    #[test]
    fn gurux_blocks_decode_encode_and_join() {
        let (one, two) = (hex(GURUX_BLOCK_1), hex(GURUX_BLOCK_2));
        let b1 = GeneralBlock::decode(&one).unwrap();
        assert_eq!(
            b1.control,
            BlockControl {
                last_block: false,
                streaming: false,
                window: 1
            }
        );
        assert_eq!((b1.block_number, b1.block_number_ack), (1, 0));
        assert_eq!(b1.block_data.len(), 0x39);
        assert_eq!(b1.encode(), one);
        let b2 = GeneralBlock::decode(&two).unwrap();
        assert!(b2.control.last_block);
        assert_eq!((b2.block_number, b2.block_data.len()), (2, 0x1D));
        assert_eq!(b2.encode(), two);

        let apdu = join_blocks([&one[..], &two[..]], 1024).unwrap().unwrap();
        let n = DataNotification::decode(&apdu).unwrap();
        let Data::Structure(items) = n.body else {
            panic!("{:?}", n.body)
        };
        assert_eq!(items.len(), 12);
        assert_eq!(items[1], Data::DoubleLongUnsigned(1007));
        assert_eq!(items[11], Data::DoubleLongUnsigned(6007));
        assert_eq!(join_blocks([&one[..]], 1024), Ok(None), "no last block yet");
        for cut in 0..one.len() {
            assert!(GeneralBlock::decode(&one[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = one.clone();
        longer.push(0);
        assert!(GeneralBlock::decode(&longer).is_err(), "a trailing byte");
    }

    #[test]
    fn the_e450_block_control_is_streaming_with_window_zero() {
        let header = hex(E450_BLOCK_1_HEADER);
        // Only the header: the block-data length says 112 bytes follow.
        assert!(GeneralBlock::decode(&header).is_err());
        assert_eq!(
            BlockControl::from_byte(header[1]),
            BlockControl {
                last_block: false,
                streaming: true,
                window: 0
            }
        );
        assert_eq!(BlockControl::from_byte(0xC0).to_byte(), 0xC0);
        assert_eq!(BlockControl::from_byte(0xBF).window, 0x3F);
    }

    fn blocks(len: usize, room: usize, window: u8) -> (Vec<u8>, Vec<GeneralBlock>) {
        let apdu: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let blocks = GeneralBlock::split(&apdu, room, window, 1).unwrap();
        (apdu, blocks)
    }

    fn ack_of(progress: GbtProgress) -> u16 {
        match progress {
            GbtProgress::Send(a) => {
                assert!(a.block_data.is_empty() && a.control.last_block);
                assert!(!a.control.streaming);
                a.block_number_ack
            }
            other => panic!("expected an acknowledgement, got {other:?}"),
        }
    }

    #[test]
    fn windows_are_acknowledged_at_their_last_block() {
        let (apdu, blocks) = blocks(1000, 100, 3);
        assert_eq!(blocks.len(), 10);
        let controls: Vec<u8> = blocks.iter().map(|b| b.control.to_byte()).collect();
        assert_eq!(
            controls,
            [0x43, 0x43, 0x03, 0x43, 0x43, 0x03, 0x43, 0x43, 0x03, 0x83]
        );
        let mut r = GbtReassembler::new(10_000, 3);
        let mut acks = Vec::new();
        for b in &blocks {
            match r.push(b).unwrap() {
                GbtProgress::Wait => {}
                GbtProgress::Complete(joined) => assert_eq!(joined, apdu),
                sent => acks.push(ack_of(sent)),
            }
        }
        assert_eq!(acks, [3, 6, 9]);
        assert!(!r.in_progress());
    }

    #[test]
    fn a_lost_block_is_asked_for_again_and_resends_are_skipped() {
        let (apdu, blocks) = blocks(600, 100, 3);
        let mut r = GbtReassembler::new(10_000, 3);
        assert_eq!(r.push(&blocks[0]), Ok(GbtProgress::Wait));
        // Block 2 is lost; block 3 ends the window: acknowledge 1, the last in order.
        assert_eq!(ack_of(r.push(&blocks[2]).unwrap()), 1);
        // The meter resends from 2 (a fresh window of three); a duplicate of 1 is skipped.
        assert_eq!(r.push(&blocks[0]), Ok(GbtProgress::Wait));
        let mut resent = blocks[1].clone();
        resent.control.streaming = true;
        assert_eq!(r.push(&resent), Ok(GbtProgress::Wait));
        let mut three = blocks[2].clone();
        three.control.streaming = true;
        assert_eq!(r.push(&three), Ok(GbtProgress::Wait));
        let mut four = blocks[3].clone();
        four.control.streaming = false;
        assert_eq!(ack_of(r.push(&four).unwrap()), 4);
        assert_eq!(r.push(&blocks[4]), Ok(GbtProgress::Wait));
        assert_eq!(r.push(&blocks[5]), Ok(GbtProgress::Complete(apdu)));
        assert_eq!(r.push(&blocks[5]), Err(GbtError::AfterLastBlock));
    }

    #[test]
    fn a_peer_that_never_resends_fails_after_a_bound() {
        let mut r = GbtReassembler::new(10_000, 1);
        let block = |n| GeneralBlock {
            control: BlockControl::from_byte(0x41),
            block_number: n,
            block_number_ack: 0,
            block_data: vec![1],
        };
        assert_eq!(r.push(&block(1)), Ok(GbtProgress::Wait));
        for n in 3..3 + MAX_BLOCKS_PAST_GAP {
            assert_eq!(r.push(&block(n)), Ok(GbtProgress::Wait));
        }
        assert_eq!(
            r.push(&block(200)),
            Err(GbtError::RecoveryFailed { expected: 2 })
        );
    }

    /// helper-14's hostile meters: one answering block 1 again and again, one repeating its
    /// second block, one sending empty blocks: each read went on for ever (18,000 round trips a
    /// second); now each ends with NoProgress after a bound, and a healthy resend still works.
    #[test]
    fn a_peer_that_repeats_restarts_or_sends_empty_blocks_is_given_up() {
        let block = |n: u16, data: Vec<u8>| GeneralBlock {
            control: BlockControl::from_byte(0x01),
            block_number: n,
            block_number_ack: 0,
            block_data: data,
        };
        let no_progress =
            |r: Result<GbtProgress, GbtError>| matches!(r, Err(GbtError::NoProgress { .. }));
        for (what, next) in [
            (
                "block 1 again and again",
                &(|_: u16| 1u16) as &dyn Fn(u16) -> u16,
            ),
            ("its second block again and again", &|i: u16| i.min(2)),
        ] {
            let mut r = GbtReassembler::new(1 << 22, 1);
            let mut ended = None;
            for i in 1..2000u16 {
                let got = r.push(&block(next(i), vec![7; 10]));
                if got.is_err() {
                    ended = Some((i, got));
                    break;
                }
            }
            let (i, got) = ended.unwrap_or_else(|| panic!("{what}: never ended"));
            assert!(no_progress(got), "{what}");
            assert!(
                u32::from(i) <= MAX_UNPRODUCTIVE + 3,
                "{what}: after {i} blocks"
            );
        }
        let mut r = GbtReassembler::new(1 << 22, 1);
        let mut ended = false;
        for n in 1..2000u16 {
            if no_progress(r.push(&block(n, Vec::new()))) {
                ended = true;
                break;
            }
        }
        assert!(ended, "empty blocks never ended");
        // A block resent once or twice, then the rest: complete.
        let (apdu, blocks) = blocks(300, 100, 1);
        let mut r = GbtReassembler::new(10_000, 1);
        for b in [
            &blocks[0], &blocks[0], &blocks[0], &blocks[1], &blocks[1], &blocks[2],
        ] {
            let got = r.push(b).unwrap();
            if let GbtProgress::Complete(joined) = got {
                assert_eq!(joined, apdu);
                return;
            }
        }
        panic!("a healthy resend did not complete");
    }

    #[test]
    fn a_listener_cannot_recover_and_starts_over_at_block_one() {
        let (apdu, blocks) = blocks(300, 100, 0);
        let mut r = GbtReassembler::new(10_000, 0);
        assert_eq!(r.push(&blocks[0]), Ok(GbtProgress::Wait));
        assert_eq!(
            r.push(&blocks[2]),
            Err(GbtError::LostBlock {
                expected: 2,
                received: 3
            })
        );
        // The next notification's block 1 starts afresh; a listener never answers.
        for b in &blocks[..2] {
            assert_eq!(r.push(b), Ok(GbtProgress::Wait));
        }
        assert_eq!(r.push(&blocks[2]), Ok(GbtProgress::Complete(apdu.clone())));
        // An incomplete transfer is dropped when the next one begins.
        let mut r = GbtReassembler::new(10_000, 0);
        assert_eq!(r.push(&blocks[0]), Ok(GbtProgress::Wait));
        assert!(r.in_progress());
        for b in &blocks {
            let _ = r.push(b);
        }
        assert!(!r.in_progress());
    }

    #[test]
    fn the_joined_size_is_bounded() {
        let (_, blocks) = blocks(300, 100, 1);
        let mut r = GbtReassembler::new(250, 1);
        assert!(r.push(&blocks[0]).is_ok());
        assert!(r.push(&blocks[1]).is_ok());
        assert_eq!(r.push(&blocks[2]), Err(GbtError::TooLarge(250)));
        assert_eq!(
            join_blocks(
                blocks
                    .iter()
                    .map(|b| b.encode())
                    .collect::<Vec<_>>()
                    .iter()
                    .map(Vec::as_slice),
                299
            ),
            Err(GbtError::TooLarge(299))
        );
        assert!(GeneralBlock::split(&[1, 2], 0, 1, 0).is_none());
        assert!(GeneralBlock::split(&vec![0; 70_000], 1, 1, 0).is_none());
    }
}
