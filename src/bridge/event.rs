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

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Reading(Reading),
    /// Meter identity for ThingsBoard attributes (serial number, OBIS map, ...).
    Attributes {
        device: String,
        ts_ms: i64,
        values: Map<String, Value>,
    },
}

impl Event {
    pub fn into_entry(self) -> NewEntry {
        match self {
            Event::Reading(r) => NewEntry {
                device: r.device,
                ts_ms: r.ts_ms,
                kind: EntryKind::Telemetry,
                payload: Value::Object(r.values).to_string(),
            },
            Event::Attributes {
                device,
                ts_ms,
                values,
            } => NewEntry {
                device,
                ts_ms,
                kind: EntryKind::Attributes,
                payload: Value::Object(values).to_string(),
            },
        }
    }
}
