//! Frames and APDUs as text, for `read --trace`, the bridge's per-meter trace ring, the page's
//! decode box and the `decode-hdlc` / `decode-apdu` commands: sans-I/O, never panics (fuzz
//! target `describe`), never shows a password or a key.
//!
//! [`Describer`] is stateful because a trace is: HDLC segments are joined into one APDU (the
//! segmentation bit of the frame format field, IEC 62056-46 clause 6.4.1; Green Book 8.4.2)
//! and the system titles of the AARQ/AARE are remembered to open the glo- APDUs that follow
//! when keys are given.

mod apdu;
mod cipher;
mod mask;
mod services;
mod split;
mod value;

pub use apdu::{describe_apdu, GENERAL_BLOCK_TRANSFER};
pub use cipher::DecodeKeys;
pub use mask::mask_secrets;
pub use split::Splitter;
pub use value::{hex, truncate, value_text};

use crate::dlms::hdlc::{Control, Frame, LinkParams, FLAG};
use crate::dlms::wrapper::{WrapperHeader, HEADER_LEN, VERSION};
use std::fmt::Write;

/// Who sent a unit, when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

impl Direction {
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::Sent => "->",
            Direction::Received => "<-",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

/// The most bytes of segments joined into one APDU (a GET-Response of a long profile can reach
/// megabytes over many block transfers, but one block's segments stay well below this).
const MAX_JOINED: usize = 64 * 1024;

/// Segments of an APDU not yet complete, per sender address.
#[derive(Debug, Default)]
struct Pending {
    source: Vec<u8>,
    bytes: Vec<u8>,
    segments: usize,
}

/// Describes the units of one trace in order, one line each.
#[derive(Debug, Default)]
pub struct Describer {
    keys: DecodeKeys,
    pending: Vec<Pending>,
}

impl Describer {
    /// A describer that opens no ciphered APDU (the bridge's ring).
    pub fn new() -> Describer {
        Describer::default()
    }

    pub fn with_keys(keys: DecodeKeys) -> Describer {
        Describer {
            keys,
            pending: Vec::new(),
        }
    }

    /// One line for one unit: an HDLC frame, a wrapper PDU, or other bytes.
    pub fn describe(&mut self, unit: &[u8]) -> String {
        match unit {
            [] => "nothing".to_string(),
            [FLAG] => "HDLC flag (fill)".to_string(),
            [FLAG, f, ..] if f & 0xF0 == 0xA0 => self.hdlc(unit),
            [v0, v1, ..] if u16::from_be_bytes([*v0, *v1]) == VERSION => self.wrapper(unit),
            _ => other_text(unit),
        }
    }

    /// One line for one APDU (`decode-apdu`).
    pub fn describe_apdu(&mut self, apdu: &[u8]) -> String {
        describe_apdu(apdu, &mut self.keys)
    }

    fn wrapper(&mut self, unit: &[u8]) -> String {
        let header = match WrapperHeader::parse(unit) {
            Ok(h) => h,
            Err(e) => return format!("wrapper (not decoded: {e})"),
        };
        let apdu = unit.get(HEADER_LEN..).unwrap_or_default();
        let mut t = format!(
            "wrapper wPort {} -> {}, length {}",
            header.source, header.destination, header.length
        );
        if apdu.len() != usize::from(header.length) {
            let _ = write!(t, " (but {} byte(s) follow)", apdu.len());
        }
        let _ = write!(t, ": {}", describe_apdu(apdu, &mut self.keys));
        t
    }

    fn hdlc(&mut self, unit: &[u8]) -> String {
        let frame = match Frame::parse(unit) {
            Ok(f) => f,
            Err(e) => return format!("HDLC frame of {} bytes (not decoded: {e})", unit.len()),
        };
        let mut t = format!(
            "HDLC {} dst {} src {}",
            control_text(frame.control),
            address_text(frame.destination.as_bytes()),
            address_text(frame.source.as_bytes())
        );
        match frame.control {
            Control::Snrm { .. } | Control::Ua { .. } => {
                let _ = write!(t, ", {}", params_text(&frame.info));
            }
            Control::I { .. } | Control::Ui { .. } => {
                let _ = write!(t, ", {}", self.information(&frame));
            }
            Control::Frmr { .. } if !frame.info.is_empty() => {
                let _ = write!(t, ", reject information {}", hex(&frame.info));
            }
            _ if !frame.info.is_empty() => {
                let _ = write!(t, ", {} byte(s) of information", frame.info.len());
            }
            _ => {}
        }
        t
    }

    /// An I- or UI-frame's information field: a whole APDU, or a segment of one (joined with
    /// the others of the same sender when the last arrives).
    fn information(&mut self, frame: &Frame) -> String {
        let source = frame.source.as_bytes().to_vec();
        let index = self.pending.iter().position(|p| p.source == source);
        let first = index.is_none();
        // The LLC header (E6 E6 00 from a client, E6 E7 00 from a server; Green Book 8.4.3.4)
        // opens the first segment only.
        let body = if first {
            match frame.info.get(..3) {
                Some([0xE6, 0xE6 | 0xE7, 0x00]) => frame.info.get(3..).unwrap_or_default(),
                _ => &frame.info[..],
            }
        } else {
            &frame.info[..]
        };
        if frame.segmented {
            let pending = match index {
                Some(i) => &mut self.pending[i],
                None => {
                    if self.pending.len() >= 4 {
                        self.pending.remove(0);
                    }
                    self.pending.push(Pending {
                        source,
                        ..Pending::default()
                    });
                    let last = self.pending.len() - 1;
                    &mut self.pending[last]
                }
            };
            let room = MAX_JOINED.saturating_sub(pending.bytes.len());
            pending
                .bytes
                .extend_from_slice(&body[..body.len().min(room)]);
            pending.segments += 1;
            return format!(
                "segment {} ({} byte(s), more follow)",
                pending.segments,
                body.len()
            );
        }
        match index {
            None => describe_apdu(body, &mut self.keys),
            Some(i) => {
                let mut joined = self.pending.remove(i);
                let room = MAX_JOINED.saturating_sub(joined.bytes.len());
                joined
                    .bytes
                    .extend_from_slice(&body[..body.len().min(room)]);
                format!(
                    "last segment ({} byte(s)); APDU of {} bytes from {} segments: {}",
                    body.len(),
                    joined.bytes.len(),
                    joined.segments + 1,
                    describe_apdu(&joined.bytes, &mut self.keys)
                )
            }
        }
    }
}

/// IEC 62056-46 6.4.3: frame type, sequence numbers N(S)/N(R) and the poll/final bit.
fn control_text(c: Control) -> String {
    let pf = |p: bool| if p { " P/F" } else { "" };
    match c {
        Control::I { ns, nr, poll } => format!("I N(S)={ns} N(R)={nr}{}", pf(poll)),
        Control::Rr { nr, poll } => format!("RR N(R)={nr}{}", pf(poll)),
        Control::Rnr { nr, poll } => format!("RNR N(R)={nr}{}", pf(poll)),
        Control::Snrm { poll } => format!("SNRM{}", pf(poll)),
        Control::Disc { poll } => format!("DISC{}", pf(poll)),
        Control::Ua { poll } => format!("UA{}", pf(poll)),
        Control::Dm { poll } => format!("DM{}", pf(poll)),
        Control::Frmr { poll } => format!("FRMR{}", pf(poll)),
        Control::Ui { poll } => format!("UI{}", pf(poll)),
        Control::Unknown(b) => format!("control 0x{b:02X}"),
    }
}

/// An HDLC address field (IEC 62056-46 6.4.2.2): one byte is a SAP, two or four bytes are the
/// upper (logical) and lower (physical) server address.
fn address_text(bytes: &[u8]) -> String {
    let v = |i: usize| u16::from(bytes.get(i).copied().unwrap_or_default() >> 1);
    match bytes.len() {
        1 => format!("{} (0x{})", v(0), hex(bytes)),
        2 => format!("{}/{} (0x{})", v(0), v(1), hex(bytes)),
        4 => format!(
            "{}/{} (0x{})",
            (v(0) << 7) | v(1),
            (v(2) << 7) | v(3),
            hex(bytes)
        ),
        _ => format!("0x{}", hex(bytes)),
    }
}

/// The SNRM/UA parameter block (IEC 62056-46 6.4.4.4.3.2; Green Book 8.4.5.3.2), seen from
/// the frame's sender.
fn params_text(info: &[u8]) -> String {
    if info.is_empty() {
        return "no parameters (defaults: max info 128/128, window 1/1)".to_string();
    }
    let (p, note) = match LinkParams::parse(info) {
        Ok(p) => (p, ""),
        Err(_) => (
            LinkParams::parse_lenient(info),
            " (malformed block, read leniently)",
        ),
    };
    format!(
        "max info transmit {} receive {}, window transmit {} receive {}{note}",
        p.max_info_tx, p.max_info_rx, p.window_tx, p.window_rx
    )
}

/// Bytes that are neither an HDLC frame nor a wrapper PDU: text (an IEC 62056-21 sign-on) is
/// shown as text, anything else by its length.
fn other_text(unit: &[u8]) -> String {
    let texty = unit.iter().all(|&b| {
        (0x20..0x7F).contains(&(b & 0x7F)) || matches!(b & 0x7F, 0x01..=0x06 | b'\r' | b'\n')
    });
    if texty {
        let mut t = String::from("text \"");
        for &b in unit.iter().take(128) {
            let c = b & 0x7F; // 7E1 sign-on bytes read with 8N1 keep their parity bit
            match c {
                b'\r' => t.push_str("\\r"),
                b'\n' => t.push_str("\\n"),
                0x20..=0x7E if c != b'"' => t.push(c as char),
                _ => {
                    let _ = write!(t, "\\x{c:02X}");
                }
            }
        }
        t.push('"');
        return t;
    }
    format!("{} byte(s), not an HDLC frame or wrapper PDU", unit.len())
}

/// Every unit of a byte stream, one line each (`decode-hdlc`, the page's decode box).
pub fn describe_stream(bytes: &[u8], keys: DecodeKeys) -> Vec<String> {
    let mut describer = Describer::with_keys(keys);
    let mut splitter = Splitter::new();
    splitter.push(bytes);
    let mut lines = Vec::new();
    while let Some(unit) = splitter.next_unit() {
        lines.push(describer.describe(&unit));
    }
    if let Some(rest) = splitter.finish() {
        lines.push(format!(
            "{} byte(s) at the end, incomplete: {}",
            rest.len(),
            describer.describe(&rest)
        ));
    }
    lines
}

#[cfg(test)]
mod tests;
