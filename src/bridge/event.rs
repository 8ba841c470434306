//! What meter workers send to the publisher.

use crate::store::outbox::{EntryKind, NewEntry};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub device: String,
    /// The time of the read (Unix milliseconds), not of publication.
    pub ts_ms: i64,
    pub values: Map<String, Value>,
}

/// A profile's collection cursor: the newest row (Unix seconds) of `profile` of `meter` that
/// is in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileCursor {
    pub meter: String,
    pub profile: String,
    pub last_ts: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Reading(Reading),
    /// Rows of a profile with the cursor they move to: stored only once every row is in the
    /// outbox or acknowledged.
    ProfileRows {
        rows: Vec<Reading>,
        cursor: ProfileCursor,
    },
    /// Meter identity for ThingsBoard attributes (serial number, OBIS map, ...).
    Attributes {
        device: String,
        ts_ms: i64,
        values: Map<String, Value>,
    },
}

impl Reading {
    pub fn into_entry(self) -> NewEntry {
        NewEntry {
            device: self.device,
            ts_ms: self.ts_ms,
            kind: EntryKind::Telemetry,
            payload: Value::Object(self.values).to_string(),
        }
    }
}

impl Event {
    /// The outbox entries of the event, and the cursor that follows them (profile rows).
    pub fn into_entries(self) -> (Vec<NewEntry>, Option<ProfileCursor>) {
        match self {
            Event::Reading(r) => (vec![r.into_entry()], None),
            Event::ProfileRows { rows, cursor } => (
                rows.into_iter().map(Reading::into_entry).collect(),
                Some(cursor),
            ),
            Event::Attributes {
                device,
                ts_ms,
                values,
            } => (
                vec![NewEntry {
                    device,
                    ts_ms,
                    kind: EntryKind::Attributes,
                    payload: Value::Object(values).to_string(),
                }],
                None,
            ),
        }
    }
}
