//! One MQTT session's state, as the core keeps it: which client it uses, its connection
//! ([`Link`]), what it holds for the outbox (waiting, packed, in flight), what it must send
//! besides (announcements, answers, attribute requests) and how many library commands it has
//! outstanding.

use super::link::Link;
use super::thingsboard;
use crate::bridge::outbox::queue::{Key, Outcome, WorkItem};
use crate::store::outbox::{Entry, EntryKind};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

/// Whose session: the gateway's (gateway API, and the gateway's own device), or one meter's
/// (device API, the meter's access token).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SessionId {
    Gateway,
    Device(String),
}

impl SessionId {
    /// The meter a device session speaks for.
    pub fn device(&self) -> Option<&str> {
        match self {
            SessionId::Gateway => None,
            SessionId::Device(d) => Some(d),
        }
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionId::Gateway => f.write_str("the gateway session"),
            SessionId::Device(d) => write!(f, "the session of meter {d:?}"),
        }
    }
}

/// Which library client a session uses. A new `generation` is a new client with the same
/// URI and client id: the way out of a client that no longer completes a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub uri: String,
    pub client_id: String,
    pub generation: u32,
}

/// A message the session must send besides readings (QoS 1, not through the outbox).
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub topic: String,
    pub payload: String,
}

/// A packed message of readings, waiting for its turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    pub topic: &'static str,
    pub payload: String,
    /// One per entry part the message carries.
    pub keys: Vec<Key>,
    /// The devices it carries (gateway mode: each is announced before it).
    pub devices: Vec<String>,
}

/// A key handed to this session: its device, whether it is telemetry, and in how many
/// messages not yet acknowledged its parts travel.
#[derive(Debug, Clone)]
pub struct Held {
    pub device: String,
    pub telemetry: bool,
    pub parts: u32,
}

#[derive(Debug)]
pub struct Session {
    pub client: ClientKey,
    pub link: Link,
    /// The client has had no CONNECT since it was made: nothing to disconnect first.
    pub fresh_client: bool,
    /// CONNECTs in a row that got no answer at all.
    pub unanswered_connects: u32,
    /// The MQTT user name (access token).
    pub username: Option<String>,
    /// Gateway mode: devices announced (v1/gateway/connect) in this MQTT session.
    pub announced: HashSet<String>,
    /// Work not packed yet.
    pub waiting: VecDeque<WorkItem>,
    /// Packed messages, in order.
    pub ready: VecDeque<Packed>,
    /// Every key this session holds (waiting keys are not in it).
    pub held: HashMap<Key, Held>,
    /// Answers, the gateway's own telemetry and attributes, disconnect announcements.
    pub control: VecDeque<Outgoing>,
    /// Shared-attribute requests still to send after a connect (lowest priority).
    pub attribute_requests: VecDeque<String>,
    /// Library commands (publishes, subscribes) not completed.
    pub outstanding: usize,
    /// Alternates answers and readings when both wait.
    pub control_turn: bool,
    /// When the current connection came up.
    pub up_since: Option<Instant>,
    /// Connections in a row that failed within [`SHORT_SESSION`] of coming up.
    pub short_sessions: u32,
    /// Readings for this session were parked while it was down.
    pub parked: bool,
}

/// A connection that fails sooner than this after coming up counts as a failed attempt for
/// the backoff (a broker that takes the CONNECT and refuses every publish).
pub const SHORT_SESSION: std::time::Duration = std::time::Duration::from_secs(10);

impl Session {
    pub fn new(client: ClientKey, username: Option<String>, now: Instant) -> Session {
        Session {
            client,
            link: Link::new(now),
            fresh_client: true,
            unanswered_connects: 0,
            username,
            announced: HashSet::new(),
            waiting: VecDeque::new(),
            ready: VecDeque::new(),
            held: HashMap::new(),
            control: VecDeque::new(),
            attribute_requests: VecDeque::new(),
            outstanding: 0,
            control_turn: false,
            up_since: None,
            short_sessions: 0,
            parked: false,
        }
    }

    /// Whether this session holds readings (waiting, packed or in flight).
    pub fn holds_work(&self) -> bool {
        !self.waiting.is_empty() || !self.held.is_empty()
    }

    /// Everything held, as Retry; the session keeps its answers to send.
    pub fn take_held(&mut self) -> Vec<(Key, Outcome)> {
        let mut back: Vec<(Key, Outcome)> = self
            .held
            .drain()
            .map(|(k, _)| (k, Outcome::Retry))
            .collect();
        back.extend(self.waiting.drain(..).map(|w| (w.key, Outcome::Retry)));
        self.ready.clear();
        back
    }

    /// Packs what waits into messages (when nothing packed is left). Entries that cannot fit
    /// any message come back to be parked.
    pub fn pack(&mut self, device: Option<&str>, max_payload: usize) -> Vec<Key> {
        if !self.ready.is_empty() || self.waiting.is_empty() {
            return Vec::new();
        }
        let items: Vec<WorkItem> = self.waiting.drain(..).collect();
        let entries: Vec<Entry> = items
            .iter()
            .enumerate()
            .map(|(i, w)| Entry {
                id: i as i64,
                device: w.entry.device.clone(),
                ts_ms: w.entry.ts_ms,
                kind: w.entry.kind,
                payload: w.entry.payload.clone(),
            })
            .collect();
        let (messages, unfit) = thingsboard::pack(device, &entries, max_payload);
        for m in messages {
            let keys: Vec<Key> = m.entry_ids.iter().map(|i| items[*i as usize].key).collect();
            let mut devices: Vec<String> = Vec::new();
            let mut seen: HashSet<&str> = HashSet::new();
            for i in &m.entry_ids {
                let w = &items[*i as usize];
                let h = self.held.entry(w.key).or_insert_with(|| Held {
                    device: w.entry.device.clone(),
                    telemetry: w.entry.kind == EntryKind::Telemetry,
                    parts: 0,
                });
                h.parts += 1;
                // Only the gateway API announces devices.
                if device.is_none() && seen.insert(&w.entry.device) {
                    devices.push(w.entry.device.clone());
                }
            }
            self.ready.push_back(Packed {
                topic: m.topic,
                payload: m.payload,
                keys,
                devices,
            });
        }
        unfit.iter().map(|i| items[*i as usize].key).collect()
    }
}
