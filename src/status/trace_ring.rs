//! Each meter's last [`ENTRIES`] traced units (frames or wrapper PDUs, both directions), for
//! `GET /api/meters/NAME/trace`, the `trace` RPC and the page's meter detail (issue 26): what
//! a field engineer needs when a meter stops answering, without a restart with `--trace`.
//!
//! Bounded: at most [`ENTRIES`] entries of at most [`MAX_BYTES`] bytes each. A unit that fits
//! is described only when the ring is read (the ring's units in order, through one describer,
//! as they were recorded), so a poll costs no description and a meter's ring holds its bytes
//! only (a few KiB; every meter of a 1,000-meter gateway has one). A longer unit (a block of
//! a profile) is described when recorded, while it is whole, in at most [`MAX_TEXT`]
//! characters. Without keys either way, so a ciphered APDU stays ciphered, and the AARQ's
//! password was masked before the ring saw it ([`crate::client::trace`]).

use crate::client::trace::TraceSink;
use crate::dlms::describe::{truncate, Describer, Direction};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Mutex;

pub const ENTRIES: usize = 64;
/// Bytes of a unit kept for its hex (a 2 KiB HDLC frame or a 64 KiB PDU is cut): room for a
/// whole frame of the common 128-byte information field (141 bytes with its header), which
/// is then described only when read. At 128 nearly every I-frame was "long": described at
/// every poll (CPU) and kept with its text.
pub const MAX_BYTES: usize = 160;
pub const MAX_TEXT: usize = 300;

struct Entry {
    seq: u64,
    at_ms: i64,
    direction: Direction,
    length: usize,
    bytes: Box<[u8]>,
    /// Only for a unit longer than [`MAX_BYTES`]: described while it was whole.
    decoded: Option<Box<str>>,
}

#[derive(Default)]
struct Ring {
    next_seq: u64,
    entries: VecDeque<Entry>,
    /// Sees only the long units, in order (their segments joined), when they are recorded;
    /// the short ones are described by a fresh describer when the ring is read.
    describer: Describer,
}

/// One meter's ring; the meter's thread records into it, the page and the RPC read it.
#[derive(Default)]
pub struct TraceRing {
    ring: Mutex<Ring>,
}

impl std::fmt::Debug for TraceRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TraceRing({} entries)", self.len())
    }
}

impl TraceRing {
    pub fn new() -> TraceRing {
        TraceRing::default()
    }

    /// The entries, oldest first: `{"capacity", "entries": [{seq, at_ms, direction, length,
    /// hex, truncated, decoded}]}`.
    pub fn to_json(&self) -> Value {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let mut describer = Describer::new();
        let entries: Vec<Value> = ring
            .entries
            .iter()
            .map(|e| {
                let decoded = match &e.decoded {
                    Some(text) => text.to_string(),
                    None => truncate(describer.describe(&e.bytes), MAX_TEXT),
                };
                json!({
                    "seq": e.seq,
                    "at_ms": e.at_ms,
                    "direction": e.direction.name(),
                    "length": e.length,
                    "hex": crate::hex::encode(&e.bytes),
                    "truncated": e.length > e.bytes.len(),
                    "decoded": decoded,
                })
            })
            .collect();
        json!({"capacity": ENTRIES, "entries": entries})
    }

    pub fn len(&self) -> usize {
        self.ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TraceSink for TraceRing {
    fn record(&self, direction: Direction, unit: &[u8]) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let decoded = (unit.len() > MAX_BYTES)
            .then(|| truncate(ring.describer.describe(unit), MAX_TEXT).into_boxed_str());
        let seq = ring.next_seq;
        ring.next_seq += 1;
        if ring.entries.len() == ENTRIES {
            ring.entries.pop_front();
        }
        ring.entries.push_back(Entry {
            seq,
            at_ms: crate::clock::now_ms(),
            direction,
            length: unit.len(),
            bytes: unit[..unit.len().min(MAX_BYTES)].into(),
            decoded,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_is_bounded_and_keeps_the_newest() {
        let ring = TraceRing::new();
        // dlms-cosem 25.1.0's RR (tests/vectors/independent.json, hdlc_rr_from_client).
        let rr = crate::hex::parse("7EA00703217113C57E").unwrap();
        for _ in 0..ENTRIES + 10 {
            ring.record(Direction::Sent, &rr);
        }
        let big = vec![0x55u8; 5000];
        ring.record(Direction::Received, &big);
        let j = ring.to_json();
        let entries = j["entries"].as_array().unwrap();
        assert_eq!(entries.len(), ENTRIES);
        assert_eq!(entries[0]["seq"], 11);
        assert!(entries[0]["decoded"]
            .as_str()
            .unwrap()
            .contains("HDLC RR N(R)=3"));
        let last = &entries[ENTRIES - 1];
        assert_eq!(last["direction"], "received");
        assert_eq!(last["length"], 5000);
        assert_eq!(last["truncated"], true);
        assert_eq!(last["hex"].as_str().unwrap().len(), 2 * MAX_BYTES);
    }
}
