//! A streaming HDLC frame finder for byte streams (TCP or serial) — sans-I/O.
//!
//! The end of a frame is given by the 11-bit length in its format field, **never** by the next
//! 0x7E: DLMS over TCP is not byte-stuffed, so 0x7E occurs inside HCS, FCS and data (about one
//! frame in 120 in practice). Splitting on 0x7E desynchronises a reader for good.
//!
//! Resynchronisation (the tokio-modbus RTU idea): a candidate frame starts at a flag followed by
//! a type-3 format field. If its header check sequence, closing flag, or FCS is wrong, only the
//! opening flag byte is dropped and the search starts again at the next flag. Bytes before the
//! first flag are dropped at once. A truncated frame (one whose announced length swallows the
//! start of a later frame) is abandoned as soon as a complete, valid frame is found starting
//! inside it, so a lost segment costs one frame, not the rest of the stream.
//!
//! The buffer is bounded: a candidate never exceeds the 11-bit length plus two flags, and
//! everything before the current candidate is dropped.
//!
//! Usage: [`Deframer::push`] what was read, then call [`Deframer::next_frame`] until `None`.

use super::frame::{announced_size, Frame, MAX_FRAME_LENGTH};
use super::FLAG;
use crate::dlms::hdlc::fcs::fcs16;
use crate::dlms::DecodeError;

/// Counters of what the deframer saw, for per-meter network diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeframerStats {
    pub frames: u64,
    /// Bytes dropped while resynchronising (garbage, broken or truncated frames).
    pub discarded_bytes: u64,
    /// Candidates rejected for a bad HCS or FCS.
    pub checksum_errors: u64,
    /// Candidates rejected for a bad format field, length, address or closing flag.
    pub format_errors: u64,
}

/// Keeps at most this much: one maximal candidate plus one more.
const MAX_BUFFER: usize = 2 * (MAX_FRAME_LENGTH + 2);

#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
    stats: DeframerStats,
}

enum Candidate {
    /// Not enough bytes yet to judge.
    Incomplete,
    /// Not a frame: drop the flag and search on.
    Invalid { checksum: bool },
    /// A valid frame of this many bytes (flags included).
    Complete(Frame, usize),
}

impl Deframer {
    pub fn new() -> Self {
        Deframer::default()
    }

    pub fn stats(&self) -> DeframerStats {
        self.stats
    }

    /// Bytes held, waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Forgets buffered bytes (after a reconnect).
    pub fn reset(&mut self) {
        self.buf.clear();
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > MAX_BUFFER {
            // Only reachable when the caller pushes without draining; keep the newest bytes.
            let excess = self.buf.len() - MAX_BUFFER;
            self.discard(excess);
        }
    }

    /// The next complete, valid frame, or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match self.buf.iter().position(|&b| b == FLAG) {
                None => {
                    let n = self.buf.len();
                    self.discard(n);
                    return None;
                }
                Some(0) => {}
                Some(i) => self.discard(i),
            }
            match check_candidate(&self.buf) {
                Candidate::Complete(frame, size) => {
                    // Keep the closing flag: it may also open the next frame.
                    self.buf.drain(..size - 1);
                    self.stats.frames += 1;
                    return Some(frame);
                }
                Candidate::Invalid { checksum } => {
                    if checksum {
                        self.stats.checksum_errors += 1;
                    } else if self.buf.get(1) != Some(&FLAG) {
                        // Two flags in a row are inter-frame fill, not an error.
                        self.stats.format_errors += 1;
                    }
                    self.discard(1);
                }
                Candidate::Incomplete => {
                    // Is there a complete frame starting inside this candidate? Then this one
                    // was truncated (a lost tail): drop it and deliver the later one.
                    let later = (1..self.buf.len())
                        .filter(|&i| self.buf[i] == FLAG)
                        .find(|&i| {
                            matches!(check_candidate(&self.buf[i..]), Candidate::Complete(..))
                        });
                    match later {
                        Some(i) => {
                            self.stats.format_errors += 1;
                            self.discard(i);
                        }
                        None => return None,
                    }
                }
            }
        }
    }

    fn discard(&mut self, n: usize) {
        self.buf.drain(..n);
        self.stats.discarded_bytes += n as u64;
    }
}

/// Judges the candidate that starts at `buf[0]` (a flag).
fn check_candidate(buf: &[u8]) -> Candidate {
    let size = match announced_size(buf) {
        None => return Candidate::Incomplete,
        Some(Err(())) => return Candidate::Invalid { checksum: false },
        Some(Ok(size)) => size,
    };
    // Check the header before waiting for the whole frame: garbage that happens to look like a
    // flag and a format field is rejected after a handful of bytes, not after up to 2 KiB.
    if let Some(bad) = header_check_fails(buf, size) {
        return Candidate::Invalid { checksum: bad };
    }
    if buf.len() < size {
        return Candidate::Incomplete;
    }
    match Frame::parse(&buf[..size]) {
        Ok(frame) => Candidate::Complete(frame, size),
        Err(DecodeError::BadChecksum { .. }) => Candidate::Invalid { checksum: true },
        Err(_) => Candidate::Invalid { checksum: false },
    }
}

/// `Some(is_checksum_error)` if the header is already known to be wrong; `None` if it is fine
/// or not yet complete.
fn header_check_fails(buf: &[u8], size: usize) -> Option<bool> {
    let mut pos = 3;
    for _ in 0..2 {
        let start = pos;
        loop {
            let b = *buf.get(pos)?;
            pos += 1;
            if b & 1 == 1 {
                break;
            }
            if pos - start >= 4 {
                return Some(false);
            }
        }
        if !matches!(pos - start, 1 | 2 | 4) {
            return Some(false);
        }
    }
    let control_end = pos + 1;
    // Without an information field the frame is header + FCS + flag.
    if size < control_end + 3 {
        return Some(false);
    }
    if size == control_end + 3 {
        return None;
    }
    let hcs = buf.get(control_end..control_end + 2)?;
    Some(fcs16(&buf[1..control_end]).to_le_bytes() != [hcs[0], hcs[1]]).filter(|bad| *bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlms::hdlc::{Control, RawAddress, ServerAddress};

    fn frame(info: Vec<u8>, ns: u8, server: ServerAddress) -> Frame {
        Frame {
            segmented: false,
            destination: RawAddress::client(16),
            source: RawAddress::server(server).unwrap(),
            control: Control::I {
                ns,
                nr: 0,
                poll: true,
            },
            info,
        }
    }

    /// Searches deterministically for a frame whose HCS and FCS both contain 0x7E and whose
    /// information field does too.
    fn frame_with_flags_everywhere() -> Frame {
        for logical in 0..0x80u16 {
            for physical in 0..0x80u16 {
                let server = ServerAddress::new(logical, Some(physical));
                for ns in 0..8 {
                    // The HCS covers the length field, so probe with the final info length.
                    let probe = frame(vec![0x7E; 5], ns, server).emit().unwrap();
                    let hcs_at = 1 + 2 + 2 + 1 + 1;
                    if !probe[hcs_at..hcs_at + 2].contains(&FLAG) {
                        continue;
                    }
                    for x in 0..=255u8 {
                        let f = frame(vec![0x7E, x, 0x7E, 0xA0, 0x7E], ns, server);
                        let bytes = f.emit().unwrap();
                        let n = bytes.len();
                        if bytes[n - 3..n - 1].contains(&FLAG) {
                            return f;
                        }
                    }
                }
            }
        }
        unreachable!("a frame with 0x7E in HCS and FCS exists");
    }

    #[test]
    fn flags_inside_hcs_fcs_and_info_are_not_frame_ends() {
        let f = frame_with_flags_everywhere();
        let bytes = f.emit().unwrap();
        let n = bytes.len();
        assert!(bytes[7..9].contains(&FLAG), "HCS holds 0x7E");
        assert!(bytes[n - 3..n - 1].contains(&FLAG), "FCS holds 0x7E");
        assert!(bytes[1..n - 1].iter().filter(|&&b| b == FLAG).count() >= 5);
        let mut d = Deframer::new();
        d.push(&bytes);
        d.push(&bytes);
        assert_eq!(d.next_frame(), Some(f.clone()));
        assert_eq!(d.next_frame(), Some(f));
        assert_eq!(d.next_frame(), None);
        assert_eq!(d.stats().checksum_errors, 0);
    }

    #[test]
    fn garbage_before_between_and_inside_frames() {
        let a = frame(b"first".to_vec(), 0, ServerAddress::new(1, None));
        let b = frame_with_flags_everywhere();
        let c = frame(vec![0x7E; 40], 2, ServerAddress::new(1, Some(17)));
        let (ea, eb, ec) = (a.emit().unwrap(), b.emit().unwrap(), c.emit().unwrap());
        let mut stream = vec![0x00, 0x7E, 0xA0, 0x7E, 0x7E, 0x13, 0x37];
        stream.extend_from_slice(&ea);
        stream.extend_from_slice(&[0x7E, 0xA0, 0x19, 0x03, 0x21, 0x10, 0xAA, 0xBB]); // bad HCS
        stream.extend_from_slice(&eb);
        // A frame truncated mid-information (its tail lost) directly followed by a good one.
        stream.extend_from_slice(&ec[..20]);
        stream.extend_from_slice(&ec);
        // A frame with a corrupted byte inside (bad FCS), then garbage, then the good one.
        let mut broken = ea.clone();
        broken[10] ^= 0x55;
        stream.extend_from_slice(&broken);
        stream.extend_from_slice(&[0xFF, 0x7E]);
        stream.extend_from_slice(&ea);
        // Feed it in awkward pieces: byte by byte.
        let mut d = Deframer::new();
        let mut got = Vec::new();
        for byte in &stream {
            d.push(std::slice::from_ref(byte));
            while let Some(f) = d.next_frame() {
                got.push(f);
            }
        }
        assert_eq!(got, vec![a.clone(), b, c, a]);
        let stats = d.stats();
        assert_eq!(stats.frames, 4);
        assert!(stats.checksum_errors >= 2, "{stats:?}");
        assert!(d.buffered() <= 1);
    }

    #[test]
    fn shared_flag_between_back_to_back_frames() {
        let a = frame(b"one".to_vec(), 0, ServerAddress::new(1, None));
        let b = frame(b"two".to_vec(), 1, ServerAddress::new(1, None));
        let mut stream = a.emit().unwrap();
        stream.extend_from_slice(&b.emit().unwrap()[1..]); // no second opening flag
        let mut d = Deframer::new();
        d.push(&stream);
        assert_eq!(d.next_frame(), Some(a));
        assert_eq!(d.next_frame(), Some(b));
    }

    #[test]
    fn split_at_every_point() {
        let f = frame_with_flags_everywhere();
        let bytes = f.emit().unwrap();
        for cut in 0..bytes.len() {
            let mut d = Deframer::new();
            d.push(&bytes[..cut]);
            assert_eq!(d.next_frame(), None, "cut {cut}");
            d.push(&bytes[cut..]);
            assert_eq!(d.next_frame(), Some(f.clone()), "cut {cut}");
        }
    }

    #[test]
    fn buffer_stays_bounded_on_endless_garbage() {
        let mut d = Deframer::new();
        for i in 0..10_000u32 {
            d.push(&[0x7E, 0xA7, 0xFF, (i % 251) as u8]);
            while d.next_frame().is_some() {}
            assert!(d.buffered() <= MAX_BUFFER);
        }
        // A maximal announced length with a valid-looking header waits, bounded.
        assert!(d.buffered() <= MAX_FRAME_LENGTH + 2);
    }
}
