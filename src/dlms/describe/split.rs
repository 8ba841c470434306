//! Cuts a received byte stream into the units a trace shows, one line each: HDLC frames (by the
//! 11-bit length of their format field, IEC 62056-46 6.4.1: never by the next 0x7E, which
//! occurs inside frames over TCP), wrapper PDUs (IEC 62056-47: the 8-byte header's length),
//! and whatever else arrived (an IEC 62056-21 sign-on line, garbage) as it came.
//!
//! Unlike the link's [`crate::dlms::hdlc::Deframer`] nothing is dropped or checked here: a
//! frame with a bad check sequence is shown, and the describer says what is wrong with it.

use crate::dlms::hdlc::FLAG;
use crate::dlms::wrapper::{HEADER_LEN, VERSION};

/// The largest unit held: a wrapper PDU's header plus its 16-bit length.
const MAX_UNIT: usize = HEADER_LEN + u16::MAX as usize;

#[derive(Debug, Default)]
pub struct Splitter {
    buf: Vec<u8>,
    /// The last unit was a frame closed by a flag (which may open the next frame too).
    after_frame: bool,
}

impl Splitter {
    pub fn new() -> Splitter {
        Splitter::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.after_frame
            && self.buf.is_empty()
            && bytes.first().is_some_and(|b| b & 0xF0 == 0xA0)
        {
            self.buf.push(FLAG);
        }
        self.after_frame = false;
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete unit, or `None` until more bytes arrive.
    pub fn next_unit(&mut self) -> Option<Vec<u8>> {
        let size = self.unit_size()?;
        let size = size.min(self.buf.len());
        let unit: Vec<u8> = self.buf.drain(..size).collect();
        // A frame's closing flag may open the next one too: give that one its flag back.
        let closed_by_flag =
            unit.len() > 1 && unit.first() == Some(&FLAG) && unit.last() == Some(&FLAG);
        if closed_by_flag && self.buf.first().is_some_and(|b| b & 0xF0 == 0xA0) {
            self.buf.insert(0, FLAG);
        }
        self.after_frame = closed_by_flag && self.buf.is_empty();
        Some(unit)
    }

    /// Whatever is left (an incomplete frame at the end of a trace).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.buf.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.buf))
        }
    }

    fn unit_size(&self) -> Option<usize> {
        let buf = &self.buf;
        let first = *buf.first()?;
        if first == FLAG {
            if buf.get(1) == Some(&FLAG) {
                // Inter-frame fill: one flag alone.
                return Some(1);
            }
            let format = u16::from_be_bytes([*buf.get(1)?, *buf.get(2)?]);
            if format & 0xF000 == 0xA000 {
                let size = (format & 0x07FF) as usize + 2;
                if buf.len() >= size {
                    // Without its closing flag it was no frame (garbage that began with 0x7E):
                    // shown up to the next flag, so that the real frame after it stays whole.
                    return Some(if buf[size - 1] == FLAG {
                        size
                    } else {
                        self.up_to_next_start(1)
                    });
                }
                // Not complete yet; but a valid frame starting inside it means these bytes
                // were a lost tail or garbage (as the deframer judges them).
                return self.valid_frame_inside().or(None);
            }
            return Some(self.up_to_next_start(1));
        }
        if first == (VERSION >> 8) as u8 {
            if buf.len() < 2 {
                return None;
            }
            if buf[1] == VERSION as u8 {
                if buf.len() < HEADER_LEN {
                    return None;
                }
                let size = HEADER_LEN + usize::from(u16::from_be_bytes([buf[6], buf[7]]));
                return (buf.len() >= size.min(MAX_UNIT)).then_some(size);
            }
        }
        // Text (IEC 62056-21 sign-on) up to its line end, anything else up to the next flag.
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            return Some(end + 2);
        }
        let next = self.up_to_next_start(1);
        (next < buf.len() || buf.len() > 256).then_some(next)
    }

    /// Where a complete frame with a valid FCS starts after the first byte, if one does.
    fn valid_frame_inside(&self) -> Option<usize> {
        let buf = &self.buf;
        (1..buf.len()).filter(|&i| buf[i] == FLAG).find(|&i| {
            let rest = &buf[i..];
            match rest {
                [FLAG, f0, f1, ..] if f0 & 0xF0 == 0xA0 => {
                    let size = (usize::from(f0 & 0x07) << 8 | usize::from(*f1)) + 2;
                    rest.get(..size)
                        .is_some_and(|frame| crate::dlms::hdlc::Frame::parse(frame).is_ok())
                }
                _ => false,
            }
        })
    }

    /// Bytes from the start up to the next flag (or all of them).
    fn up_to_next_start(&self, from: usize) -> usize {
        self.buf
            .iter()
            .skip(from)
            .position(|&b| b == FLAG)
            .map(|i| i + from)
            .unwrap_or(self.buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlms::test_util::hex;

    #[test]
    fn frames_are_cut_by_their_length_not_by_flags() {
        // dlms-cosem 25.1.0's UA (tests/vectors/independent.json, hdlc_ua_from_meter), then a
        // wrapper PDU, then a sign-on line, in pieces.
        let ua = hex("7EA01E210373C37A818012050180060180070400000001080400000001533B7E");
        let wrapped = hex("00010010000100056203800100");
        let mut s = Splitter::new();
        let mut all = ua.clone();
        all.extend_from_slice(&wrapped[..8]);
        s.push(&all[..5]);
        assert_eq!(s.next_unit(), None);
        s.push(&all[5..]);
        assert_eq!(s.next_unit(), Some(ua));
        assert_eq!(s.next_unit(), None);
        s.push(&wrapped[8..]);
        assert_eq!(s.next_unit(), Some(wrapped));
        s.push(b"/ISK5ME382\r\n/IS");
        assert_eq!(s.next_unit().as_deref(), Some(&b"/ISK5ME382\r\n"[..]));
        assert_eq!(s.next_unit(), None);
        assert_eq!(s.finish().as_deref(), Some(&b"/IS"[..]));
    }

    #[test]
    fn garbage_that_looks_like_a_frame_start_does_not_swallow_the_next_frame() {
        // A flag and a format field announcing 300 bytes, then dlms-cosem's RR
        // (tests/vectors/independent.json, hdlc_rr_from_client).
        let rr = hex("7EA00703217113C57E");
        let mut s = Splitter::new();
        s.push(&hex("7EA12C0102"));
        s.push(&rr);
        assert_eq!(s.next_unit(), Some(hex("7EA12C0102")));
        assert_eq!(s.next_unit(), Some(rr.clone()));
        // A complete candidate without its closing flag: cut at the next flag.
        let mut s = Splitter::new();
        s.push(&hex("7EA0080102030405"));
        s.push(&rr);
        assert_eq!(s.next_unit(), Some(hex("7EA0080102030405")));
        assert_eq!(s.next_unit(), Some(rr.clone()));
        // Two frames sharing one flag (IEC 62056-46 6.4.1 allows it): both shown whole.
        let mut s = Splitter::new();
        s.push(&rr);
        s.push(&rr[1..]);
        assert_eq!(s.next_unit(), Some(rr.clone()));
        assert_eq!(s.next_unit(), Some(rr.clone()));
        // ... also when the second arrives in a read of its own.
        s.push(&rr[1..]);
        assert_eq!(s.next_unit(), Some(rr));
    }
}
