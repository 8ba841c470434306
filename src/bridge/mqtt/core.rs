//! The publisher's decisions, pure: `Core::handle(Input, now) -> Vec<Command>` and
//! [`Core::next_deadline`]. The Paho driver (`driver.rs`) is the only code that touches the
//! library or the clock: it executes the commands and turns callbacks and completed tokens
//! into inputs. Every state and transition is tested in `tests.rs`, in milliseconds.
//!
//! What the core guarantees, whatever the inputs:
//! - **Never more library commands outstanding per client than [`Limits::max_outstanding`]**
//!   (publishes of readings, announcements, answers, attribute requests and subscriptions all
//!   count), which the driver sets below the buffer it gives Paho: the library never refuses
//!   for a full buffer, however many devices a first batch after a reconnect announces.
//! - **Every command comes back**: a publish or subscribe is answered by `Completed` (acked,
//!   failed, or refused by the library at once) or expires at its deadline; the readings it
//!   carried then go back to the outbox as Retry. Nothing is dropped silently.
//! - **A reconnect always disconnects first**, and a client that does not complete a CONNECT
//!   within [`super::link::CONNECT_DEADLINE`] twice in a row is replaced by a fresh client
//!   (Paho C treats a CONNECT on a client it still thinks connected as a no-op whose token
//!   never completes: the wedge of the second version).
//! - **Bounded inputs**: messages from the broker over [`MAX_INCOMING_BYTES`] are not parsed;
//!   each device may send [`INCOMING_PER_DEVICE`] a second (burst [`INCOMING_BURST`]), the
//!   rest is dropped and counted; answers wait in a bounded queue ([`CONTROL_QUEUE`]); no
//!   message over `thingsboard.max_payload_bytes` is produced.
//! - **Readings keep moving under a flood**: answers and readings alternate when both wait,
//!   and attribute requests go only when no reading waits.

use super::bucket::{suppressed, PerKey, Throttle, TokenBucket};
use super::link::CONNECT_DEADLINE;
use super::session::{ClientKey, Outgoing, Session, SessionId, SHORT_SESSION};
use super::thingsboard;
use crate::bridge::outbox::queue::{Key, Outcome, WorkItem};
use crate::bridge::rpc::{GatewayCall, ReplyTo, RpcCall};
use crate::config::settings::{BridgeSettings, PublishMode};
use log::{info, warn};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A message without PUBACK by then counts as not delivered, and the session is restarted.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// A message from the broker larger than this is not parsed (RPCs and shared attributes are
/// a few hundred bytes; a 50,000-measurement attribute once made every telemetry message
/// 739 KB).
pub const MAX_INCOMING_BYTES: usize = 16 * 1024;
/// RPCs and attribute messages one device may send a second, and saved up (ThingsBoard
/// limits each device likewise); the rest is dropped and counted.
pub const INCOMING_PER_DEVICE: u32 = 10;
pub const INCOMING_BURST: u32 = 20;
/// RPCs and attribute messages taken a second from all devices together (each may be a
/// meter exchange and a log line): a flood over many device names is bounded too.
pub const INCOMING_TOTAL: u32 = 20;
pub const INCOMING_TOTAL_BURST: u32 = 50;
/// Answers and own messages a session holds for sending; more are dropped and counted.
pub const CONTROL_QUEUE: usize = 512;
/// The gateway's own telemetry messages held while the broker is away.
pub const OWN_TELEMETRY_QUEUE: usize = 64;
/// Stop: how long outstanding PUBACKs are waited for.
pub const STOP_GRACE: Duration = Duration::from_millis(800);
/// A warning of one kind on an input path at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// Unanswered CONNECTs after which the session gets a fresh client.
const FRESH_CLIENT_AFTER: u32 = 2;

/// Facts of the driver's library, stated there once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Library commands (publish, subscribe) a client may have outstanding.
    pub max_outstanding: usize,
}

/// A meter as the publisher sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub device_type: String,
    pub token: Option<String>,
    pub enabled: bool,
}

/// Names one library command (a publish or a subscribe) until it completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// How a library command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    Acked,
    /// The library or the broker failed it after taking it.
    Failed(String),
    /// The library refused it at once (buffer full, not connected).
    Refused(String),
}

/// Why a meter could not take an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallRefusal {
    NotRunning,
    Busy,
    Restarting,
}

#[derive(Debug)]
pub enum Input {
    /// The settings and the meters (at start and on every configuration change).
    Configure {
        settings: Arc<BridgeSettings>,
        devices: Vec<Device>,
    },
    Work(Vec<WorkItem>),
    ConnectDone {
        session: SessionId,
        generation: u32,
        result: Result<(), String>,
    },
    /// The library says the connection dropped.
    Lost {
        session: SessionId,
        generation: u32,
    },
    Completed {
        ticket: Ticket,
        how: Completion,
    },
    Incoming {
        session: SessionId,
        topic: String,
        payload: Vec<u8>,
    },
    /// A meter's (or the gateway's) answer to an RPC.
    RpcReply {
        reply: ReplyTo,
        result: Result<Value, String>,
    },
    MeterCallRefused {
        reply: ReplyTo,
        why: CallRefusal,
    },
    /// Shared attributes applied (`Ok(true)`), unchanged (`Ok(false)`) or refused.
    AttributesApplied {
        session: SessionId,
        device: String,
        data: serde_json::Map<String, Value>,
        result: Result<bool, String>,
        at_ms: i64,
    },
    /// The gateway's figures, asked for with [`Command::CollectStats`].
    Stats(String),
    /// Telemetry of the gateway's own device (its alarms).
    OwnTelemetry(String),
    /// Time passed.
    Tick,
    Stop,
}

/// Counters for the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Count {
    /// One message acknowledged: its bytes, and per device it carried (in first-seen order)
    /// the readings it completed (a reading split over several messages counts with its last
    /// part, so a device can be there with 0).
    Delivered {
        bytes: u64,
        telemetry: bool,
        per_device: Vec<(String, u64)>,
    },
    FailedPublish,
    Reconnect,
    /// Messages from the broker dropped (too large, over a device's rate, queue full).
    IncomingDropped(u64),
    /// Readings parked because no message can carry them.
    Unfit(u64),
}

#[derive(Debug)]
pub enum Command {
    Connect {
        session: SessionId,
        client: ClientKey,
        username: Option<String>,
    },
    Disconnect {
        session: SessionId,
        client: ClientKey,
    },
    Subscribe {
        session: SessionId,
        client: ClientKey,
        ticket: Ticket,
        topics: &'static [&'static str],
    },
    Publish {
        session: SessionId,
        client: ClientKey,
        ticket: Ticket,
        topic: String,
        payload: String,
    },
    /// To the outbox thread.
    Answer(Vec<(Key, Outcome)>),
    /// To the outbox thread: whether it may hand work over.
    Connected(bool),
    /// To the outbox thread: readings parked for a session that was down may go now.
    Unpark,
    CallMeter {
        device: String,
        call: RpcCall,
    },
    GatewayCall {
        call: GatewayCall,
        reply: ReplyTo,
    },
    StartScan {
        hosts: Vec<std::net::Ipv4Addr>,
        ports: Vec<u16>,
        reply: ReplyTo,
    },
    ApplyAttributes {
        session: SessionId,
        device: String,
        data: serde_json::Map<String, Value>,
    },
    CollectStats,
    Count(Count),
    /// The status line: publishing off, connected, mode.
    State {
        any_up: bool,
        disabled: bool,
        gateway_mode: bool,
    },
    /// Stopped: everything answered, every session closed.
    Exit,
}

#[derive(Debug)]
pub(super) enum Carried {
    Readings { keys: Vec<Key>, bytes: u64 },
    Control,
    Subscribe,
}

#[derive(Debug)]
pub(super) struct InFlight {
    pub session: SessionId,
    pub generation: u32,
    pub deadline: Instant,
    pub carried: Carried,
}

#[derive(Debug)]
pub(super) struct PendingRpc {
    pub reply: ReplyTo,
    pub deadline: Instant,
    pub method: String,
}

pub struct Core {
    pub(super) limits: Limits,
    pub(super) settings: Arc<BridgeSettings>,
    pub(super) devices: BTreeMap<String, Device>,
    configured: bool,
    pub(super) sessions: BTreeMap<SessionId, Session>,
    /// In issue order, which is deadline order.
    pub(super) in_flight: BTreeMap<Ticket, InFlight>,
    next_ticket: u64,
    bucket: TokenBucket,
    pub(super) incoming_rate: PerKey,
    pub(super) incoming_total: TokenBucket,
    pub(super) throttle: Throttle,
    pub(super) pending_rpcs: HashMap<String, PendingRpc>,
    pub(super) own_pending: VecDeque<String>,
    /// The gateway's client attributes (published on every gateway connect).
    pub(super) identity: String,
    pub(super) next_stats_at: Option<Instant>,
    reported_connected: Option<bool>,
    reported_state: Option<(bool, bool, bool)>,
    warned_no_token: HashSet<String>,
    stopping_until: Option<Instant>,
    exited: bool,
    /// Device mode: every meter with a token has its session (until the next change).
    sessions_complete: bool,
}

impl Core {
    /// `identity`: the gateway's client attributes (version, target, host name).
    pub fn new(limits: Limits, identity: String, now: Instant) -> Core {
        let settings = Arc::new(BridgeSettings::default());
        Core {
            limits,
            bucket: TokenBucket::new(settings.max_messages_per_second, 1, now),
            settings,
            devices: BTreeMap::new(),
            configured: false,
            sessions: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_ticket: 0,
            incoming_rate: PerKey::new(INCOMING_PER_DEVICE, INCOMING_BURST, 4096),
            incoming_total: TokenBucket::new(INCOMING_TOTAL, INCOMING_TOTAL_BURST, now),
            throttle: Throttle::new(WARN_EVERY),
            pending_rpcs: HashMap::new(),
            own_pending: VecDeque::new(),
            identity,
            next_stats_at: None,
            reported_connected: None,
            reported_state: None,
            warned_no_token: HashSet::new(),
            stopping_until: None,
            exited: false,
            sessions_complete: false,
        }
    }

    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        if self.exited {
            return out;
        }
        match input {
            Input::Configure { settings, devices } => {
                self.configure(settings, devices, now, &mut out)
            }
            Input::Work(items) => self.take_work(items, now, &mut out),
            Input::ConnectDone {
                session,
                generation,
                result,
            } => self.connect_done(session, generation, result, now, &mut out),
            Input::Lost {
                session,
                generation,
            } => {
                let current = self
                    .sessions
                    .get(&session)
                    .is_some_and(|s| s.client.generation == generation && s.link.is_up());
                if current {
                    warn!("publisher: connection to {} lost ({session}; readings are kept and sent again after reconnecting)", self.sessions[&session].client.uri);
                    self.reset(&session, now, &mut out);
                }
            }
            Input::Completed { ticket, how } => self.completed(ticket, how, now, &mut out),
            Input::Incoming {
                session,
                topic,
                payload,
            } => self.incoming(session, &topic, &payload, now, &mut out),
            Input::RpcReply { reply, result } => {
                // Answered once: a late answer (after "timeout") is dropped.
                if self.pending_rpcs.remove(&reply.key()).is_some() {
                    self.reply(&reply, result, now);
                }
            }
            Input::MeterCallRefused { reply, why } => self.call_refused(reply, why, now),
            Input::AttributesApplied {
                session,
                device,
                data,
                result,
                at_ms,
            } => self.attributes_applied(session, device, data, result, at_ms, now),
            Input::Stats(payload) => self.queue_control(
                &SessionId::Gateway,
                super::gateway_device::OWN_TELEMETRY,
                payload,
                now,
            ),
            Input::OwnTelemetry(payload) => self.queue_own(payload),
            Input::Tick => {}
            Input::Stop => {
                if self.stopping_until.is_none() {
                    self.stopping_until = Some(now + STOP_GRACE);
                }
            }
        }
        self.step(now, &mut out);
        out
    }

    /// When the core next needs `Tick` (besides inputs).
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        if let Some(f) = self.in_flight.values().next() {
            at(f.deadline);
        }
        if let Some(t) = self.stopping_until {
            at(t);
        }
        if !self.publishing() {
            return next;
        }
        for (id, s) in &self.sessions {
            if self.wanted(id, s) {
                if let Some(t) = s.link.next_wake() {
                    at(t);
                }
            }
            if s.link.is_up() && s.outstanding < self.limits.max_outstanding && Self::sendable(s) {
                at(self.bucket.ready_at());
            }
        }
        for r in self.pending_rpcs.values() {
            at(r.deadline);
        }
        if self.gateway_up() {
            if let Some(t) = self.next_stats_at {
                at(t);
            }
        }
        next
    }

    fn publishing(&self) -> bool {
        !self.settings.broker.host.is_empty() && self.configured
    }

    pub(super) fn gateway_up(&self) -> bool {
        self.sessions
            .get(&SessionId::Gateway)
            .is_some_and(|s| s.link.is_up())
    }

    fn sendable(s: &Session) -> bool {
        !s.ready.is_empty()
            || !s.waiting.is_empty()
            || !s.control.is_empty()
            || !s.attribute_requests.is_empty()
    }

    /// Whether a session should be connected: the gateway's always (so that the outbox thread
    /// learns it may hand work over, and RPCs arrive); a device's while it has a token (for
    /// its RPCs) or work.
    fn wanted(&self, id: &SessionId, s: &Session) -> bool {
        self.stopping_until.is_none()
            && (matches!(id, SessionId::Gateway) || s.username.is_some() || s.holds_work())
    }

    fn client_key(&self, id: &SessionId, generation: u32) -> ClientKey {
        let b = &self.settings.broker;
        ClientKey {
            uri: super::tls::broker_uri(b),
            client_id: match id {
                SessionId::Gateway => b.client_id.clone(),
                SessionId::Device(d) => format!("{}-{d}", b.client_id),
            },
            generation,
        }
    }

    fn username(&self, id: &SessionId) -> Option<String> {
        match id {
            SessionId::Gateway => self.settings.broker.gateway_token.clone(),
            SessionId::Device(d) => self.devices.get(d).and_then(|i| i.token.clone()),
        }
    }

    pub(super) fn session(&mut self, id: &SessionId, now: Instant) -> &mut Session {
        if !self.sessions.contains_key(id) {
            let s = Session::new(self.client_key(id, 0), self.username(id), now);
            self.sessions.insert(id.clone(), s);
        }
        self.sessions.get_mut(id).expect("inserted above")
    }

    fn configure(
        &mut self,
        settings: Arc<BridgeSettings>,
        devices: Vec<Device>,
        now: Instant,
        out: &mut Vec<Command>,
    ) {
        let first = !self.configured;
        if !first && settings.broker != self.settings.broker {
            info!("publisher: broker settings changed, reconnecting");
            self.close_all(now, out);
        }
        // Said once per change: an empty host is a choice, but a silent one looks like a
        // broken broker connection.
        if settings.broker.host.is_empty() && (first || !self.settings.broker.host.is_empty()) {
            info!("publisher: publishing is off (mqtt.host is empty); readings stay in the outbox");
        }
        let rate = settings.max_messages_per_second;
        self.bucket.set_rate(rate, rate.max(1));
        self.settings = settings;
        self.configured = true;
        let devices: BTreeMap<String, Device> =
            devices.into_iter().map(|d| (d.name.clone(), d)).collect();
        self.announce_gone(&devices, now);
        // Device sessions whose meter is gone or whose token changed start over.
        let changed: Vec<SessionId> = self
            .sessions
            .keys()
            .filter(|id| match id {
                SessionId::Gateway => false,
                SessionId::Device(d) => {
                    self.devices.get(d).map(|x| &x.token) != devices.get(d).map(|x| &x.token)
                }
            })
            .cloned()
            .collect();
        self.devices = devices;
        self.sessions_complete = false;
        for id in changed {
            self.close(&id, now, out);
        }
        self.warned_no_token.clear();
    }

    /// Work from the outbox thread, sorted into sessions.
    fn take_work(&mut self, items: Vec<WorkItem>, now: Instant, out: &mut Vec<Command>) {
        let mut back = Vec::new();
        for item in items {
            if !self.publishing() || self.stopping_until.is_some() {
                back.push((item.key, Outcome::Retry));
                continue;
            }
            let id = match self.settings.broker.mode {
                PublishMode::Gateway => SessionId::Gateway,
                PublishMode::Device => {
                    let has_token = self
                        .devices
                        .get(&item.entry.device)
                        .is_some_and(|d| d.token.is_some());
                    if !has_token {
                        if self.warned_no_token.insert(item.entry.device.clone()) {
                            warn!("meter {:?} has no access_token: its readings stay in the outbox (device mode)", item.entry.device);
                        }
                        back.push((item.key, Outcome::Park));
                        continue;
                    }
                    SessionId::Device(item.entry.device.clone())
                }
            };
            let s = self.session(&id, now);
            if s.link.is_up() {
                s.waiting.push_back(item);
            } else if id == SessionId::Gateway {
                // Sent before the outbox thread learnt of a lost connection: give it back.
                back.push((item.key, Outcome::Retry));
            } else {
                // Device mode: one meter whose session is down must not hold up the others
                // (the outbox hands a new batch only when the last is answered): parked until
                // that session comes up.
                s.parked = true;
                back.push((item.key, Outcome::Park));
            }
        }
        if !back.is_empty() {
            out.push(Command::Answer(back));
        }
    }

    fn connect_done(
        &mut self,
        id: SessionId,
        generation: u32,
        result: Result<(), String>,
        now: Instant,
        out: &mut Vec<Command>,
    ) {
        let max = Duration::from_secs(self.settings.broker.reconnect_max_s);
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.client.generation != generation || !s.link.is_connecting() {
            // An attempt given up already, or of an older client.
            return;
        }
        s.unanswered_connects = 0;
        match result {
            Ok(()) => {
                let again = s.link.connected();
                s.up_since = Some(now);
                s.announced.clear();
                info!(
                    "publisher: connected to {} as {:?}",
                    s.client.uri, s.client.client_id
                );
                let (ticket, client) = self.issue(&id, Carried::Subscribe, now);
                out.push(Command::Subscribe {
                    session: id.clone(),
                    client,
                    ticket,
                    topics: super::subscriptions(&id),
                });
                if again {
                    out.push(Command::Count(Count::Reconnect));
                }
                if std::mem::take(&mut self.sessions.get_mut(&id).expect("looked up above").parked)
                {
                    out.push(Command::Unpark);
                }
                self.on_connected(&id, now);
            }
            Err(why) => {
                let wait = s.link.failed(now, max);
                warn!(
                    "publisher: cannot connect to {}: {why} (retrying in {} s; readings are kept)",
                    s.client.uri,
                    wait.as_secs()
                );
            }
        }
    }

    /// A library command on the session: its ticket (deadline [`ACK_TIMEOUT`]) and client; it
    /// counts as outstanding until it completes or the session is reset.
    pub(super) fn issue(
        &mut self,
        id: &SessionId,
        carried: Carried,
        now: Instant,
    ) -> (Ticket, ClientKey) {
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        let s = self
            .sessions
            .get_mut(id)
            .expect("commands go on existing sessions");
        s.outstanding += 1;
        let client = s.client.clone();
        let generation = client.generation;
        self.in_flight.insert(
            ticket,
            InFlight {
                session: id.clone(),
                generation,
                deadline: now + ACK_TIMEOUT,
                carried,
            },
        );
        (ticket, client)
    }

    fn completed(&mut self, ticket: Ticket, how: Completion, now: Instant, out: &mut Vec<Command>) {
        let Some(f) = self.in_flight.remove(&ticket) else {
            // Of a session reset meanwhile (a PUBACK after its deadline): already answered.
            return;
        };
        let Some(s) = self.sessions.get_mut(&f.session) else {
            return;
        };
        if s.client.generation != f.generation {
            return;
        }
        s.outstanding = s.outstanding.saturating_sub(1);
        match (how, f.carried) {
            (Completion::Acked, Carried::Readings { keys, bytes }) => {
                let mut done = Vec::with_capacity(keys.len());
                let mut per_device: Vec<(String, u64)> = Vec::new();
                // Index into `per_device` by device name.
                let mut slots: HashMap<String, usize> = HashMap::new();
                let mut telemetry = false;
                for k in keys {
                    let Some(h) = s.held.get_mut(&k) else {
                        continue;
                    };
                    telemetry |= h.telemetry;
                    let slot = *slots.entry(h.device.clone()).or_insert_with(|| {
                        per_device.push((h.device.clone(), 0));
                        per_device.len() - 1
                    });
                    h.parts = h.parts.saturating_sub(1);
                    if h.parts == 0 {
                        let h = s.held.remove(&k).expect("looked up above");
                        done.push((k, Outcome::Acked));
                        if h.telemetry {
                            per_device[slot].1 += 1;
                        }
                    }
                }
                out.push(Command::Count(Count::Delivered {
                    bytes,
                    telemetry,
                    per_device,
                }));
                if !done.is_empty() {
                    out.push(Command::Answer(done));
                }
            }
            (Completion::Acked, _) => {}
            (Completion::Failed(why), Carried::Subscribe) => {
                // RPCs and attribute updates will not arrive; readings still go out.
                warn!("publisher: subscribing on {} failed ({why}): RPCs and shared attributes are not received in this session", f.session);
            }
            (Completion::Failed(why) | Completion::Refused(why), _) => {
                warn!("publisher: publish failed on {} ({why}); reconnecting, the readings are sent again", f.session);
                self.reset(&f.session, now, out);
            }
        }
    }

    /// The session's connection is gone or not trusted: everything it held goes back as
    /// Retry, the client is disconnected, a new connection follows after a second.
    pub(super) fn reset(&mut self, id: &SessionId, now: Instant, out: &mut Vec<Command>) {
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        let back = s.take_held();
        if s.link.is_up() {
            if s.up_since
                .is_some_and(|t| now.saturating_duration_since(t) < SHORT_SESSION)
            {
                s.short_sessions += 1;
                // A broker keeps one session per client id and drops the older connection
                // when another client connects with it: a session ended again and again just
                // after it began is most likely that (issue 25).
                if s.short_sessions >= 3 {
                    if let Some(n) = self.throttle.allow("client-id-taken", now) {
                        warn!(
                            "publisher: {id}'s connection ended {} times in a row within {} s of its start: another client is probably using client id {:?} (mqtt.client_id; auto makes one per machine){}",
                            s.short_sessions,
                            SHORT_SESSION.as_secs(),
                            s.client.client_id,
                            suppressed(n)
                        );
                    }
                }
                let max = Duration::from_secs(self.settings.broker.reconnect_max_s);
                s.link
                    .lost_for(now, super::link::backoff(s.short_sessions, max));
            } else {
                s.short_sessions = 0;
                s.link.lost(now);
            }
        } else {
            s.link.lost(now);
        }
        s.up_since = None;
        s.announced.clear();
        s.attribute_requests.clear();
        s.outstanding = 0;
        out.push(Command::Disconnect {
            session: id.clone(),
            client: s.client.clone(),
        });
        s.fresh_client = false;
        self.in_flight.retain(|_, f| f.session != *id);
        if !back.is_empty() {
            out.push(Command::Count(Count::FailedPublish));
            out.push(Command::Answer(back));
        }
    }

    /// Closes a session for good (broker change, meter gone): reset, then forgotten.
    fn close(&mut self, id: &SessionId, now: Instant, out: &mut Vec<Command>) {
        self.reset(id, now, out);
        self.sessions.remove(id);
        self.sessions_complete = false;
    }

    fn close_all(&mut self, now: Instant, out: &mut Vec<Command>) {
        let ids: Vec<SessionId> = self.sessions.keys().cloned().collect();
        for id in ids {
            self.close(&id, now, out);
        }
    }

    /// Everything that time and state make due.
    fn step(&mut self, now: Instant, out: &mut Vec<Command>) {
        self.expire(now, out);
        if let Some(until) = self.stopping_until {
            let readings_in_flight = self
                .in_flight
                .values()
                .any(|f| matches!(f.carried, Carried::Readings { .. }));
            if now >= until || !readings_in_flight {
                self.finish(now, out);
                return;
            }
        }
        self.expire_rpcs(now);
        if !self.publishing() {
            if !self.sessions.is_empty() {
                self.close_all(now, out);
            }
        } else {
            self.ensure_sessions(now);
            // Only the sessions that need something (1,000 device sessions are common).
            let connecting: Vec<SessionId> = self
                .sessions
                .iter()
                .filter(|(_, s)| s.link.attempt_overdue(now) || s.link.should_connect(now))
                .map(|(id, _)| id.clone())
                .collect();
            for id in &connecting {
                self.drive_connection(id, now, out);
            }
            self.own_due(now, out);
            let max = self.limits.max_outstanding;
            let sending: Vec<SessionId> = self
                .sessions
                .iter()
                .filter(|(_, s)| s.link.is_up() && s.outstanding < max && Self::sendable(s))
                .map(|(id, _)| id.clone())
                .collect();
            for id in &sending {
                self.send(id, now, out);
            }
        }
        self.report(out);
    }

    fn ensure_sessions(&mut self, now: Instant) {
        match self.settings.broker.mode {
            PublishMode::Gateway => {
                self.session(&SessionId::Gateway, now);
            }
            PublishMode::Device => {
                if self.sessions_complete {
                    return;
                }
                self.sessions_complete = true;
                let missing: Vec<SessionId> = self
                    .devices
                    .values()
                    .filter(|d| d.token.is_some() && d.enabled)
                    .map(|d| SessionId::Device(d.name.clone()))
                    .filter(|id| !self.sessions.contains_key(id))
                    .collect();
                for id in missing {
                    self.session(&id, now);
                }
            }
        }
    }

    fn drive_connection(&mut self, id: &SessionId, now: Instant, out: &mut Vec<Command>) {
        let max = Duration::from_secs(self.settings.broker.reconnect_max_s);
        let wanted = self.sessions.get(id).is_some_and(|s| self.wanted(id, s));
        let username = self.username(id);
        let s = self.sessions.get_mut(id).expect("driven sessions exist");
        if s.link.attempt_overdue(now) {
            s.unanswered_connects += 1;
            out.push(Command::Disconnect {
                session: id.clone(),
                client: s.client.clone(),
            });
            let fresh = s.unanswered_connects >= FRESH_CLIENT_AFTER;
            if fresh {
                s.client.generation += 1;
                s.fresh_client = true;
                s.unanswered_connects = 0;
            }
            let wait = s.link.failed(now, max);
            warn!(
                "publisher: cannot connect to {}: no answer to CONNECT within {} s{} (retrying in {} s; readings are kept)",
                s.client.uri,
                CONNECT_DEADLINE.as_secs(),
                if fresh { "; the next attempt uses a fresh MQTT client" } else { "" },
                wait.as_secs()
            );
            return;
        }
        if !(wanted && s.link.should_connect(now)) {
            return;
        }
        s.username = username;
        if !s.fresh_client {
            // Paho C ignores a CONNECT on a client it still thinks connected, and never
            // completes its token: a reconnect always disconnects first.
            out.push(Command::Disconnect {
                session: id.clone(),
                client: s.client.clone(),
            });
        }
        s.fresh_client = false;
        s.link.connecting(now);
        out.push(Command::Connect {
            session: id.clone(),
            client: s.client.clone(),
            username: s.username.clone(),
        });
    }

    /// Publishes what the session may send now: within its outstanding budget and the rate.
    fn send(&mut self, id: &SessionId, now: Instant, out: &mut Vec<Command>) {
        let max_payload = self.settings.max_payload_bytes;
        let gateway = *id == SessionId::Gateway;
        loop {
            let Some(s) = self.sessions.get_mut(id) else {
                return;
            };
            if !s.link.is_up() || s.outstanding >= self.limits.max_outstanding {
                return;
            }
            let unfit = s.pack(id.device(), max_payload);
            if !unfit.is_empty() {
                warn!("publisher: {} reading(s) hold a single value larger than thingsboard.max_payload_bytes ({max_payload}): kept in the outbox until the limit is raised", unfit.len());
                out.push(Command::Count(Count::Unfit(unfit.len() as u64)));
                out.push(Command::Answer(
                    unfit.into_iter().map(|k| (k, Outcome::Park)).collect(),
                ));
            }
            if !Self::sendable(s) || !self.bucket.available(now) {
                return;
            }
            // What goes next: an announcement the next readings need, then answers and
            // readings in turn, then attribute requests when no reading waits.
            let unannounced = if gateway {
                s.ready.front().and_then(|m| {
                    m.devices
                        .iter()
                        .find(|d| !s.announced.contains(*d))
                        .cloned()
                })
            } else {
                None
            };
            let (topic, payload, carried) = if let Some(d) = unannounced {
                s.announced.insert(d.clone());
                let device_type = self
                    .devices
                    .get(&d)
                    .map_or("electricity-meter", |i| i.device_type.as_str());
                (
                    thingsboard::GATEWAY_CONNECT.to_string(),
                    thingsboard::gateway_connect(&d, device_type),
                    Carried::Control,
                )
            } else if !s.control.is_empty() && (s.control_turn || s.ready.is_empty()) {
                s.control_turn = false;
                let o = s.control.pop_front().expect("not empty");
                (o.topic, o.payload, Carried::Control)
            } else if let Some(m) = s.ready.pop_front() {
                s.control_turn = true;
                let bytes = m.payload.len() as u64;
                (
                    m.topic.to_string(),
                    m.payload,
                    Carried::Readings {
                        keys: m.keys,
                        bytes,
                    },
                )
            } else if let Some(d) = s.attribute_requests.pop_front() {
                let (topic, payload) = super::shared_attributes::request(id, &d);
                (topic, payload, Carried::Control)
            } else {
                return;
            };
            self.bucket.take(now);
            let (ticket, client) = self.issue(id, carried, now);
            out.push(Command::Publish {
                session: id.clone(),
                client,
                ticket,
                topic,
                payload,
            });
        }
    }

    /// Messages past their deadline: their session is not trusted any more.
    fn expire(&mut self, now: Instant, out: &mut Vec<Command>) {
        let mut late: Vec<SessionId> = Vec::new();
        for f in self.in_flight.values() {
            if f.deadline > now {
                break;
            }
            if !late.contains(&f.session) {
                late.push(f.session.clone());
            }
        }
        for id in late {
            warn!(
                "publisher: publish failed on {id} (no PUBACK within {} s); reconnecting, the readings are sent again",
                ACK_TIMEOUT.as_secs()
            );
            self.reset(&id, now, out);
        }
    }

    /// Queues a message on a session (answers, own messages); bounded.
    pub(super) fn queue_control(
        &mut self,
        id: &SessionId,
        topic: &str,
        payload: String,
        now: Instant,
    ) {
        let max = self.settings.max_payload_bytes;
        if payload.len() > max {
            warn!("publisher: a {}-byte message on {topic} is over thingsboard.max_payload_bytes ({max}): not sent", payload.len());
            return;
        }
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        if s.control.len() >= CONTROL_QUEUE {
            if let Some(n) = self.throttle.allow("control-full", now) {
                warn!("publisher: {CONTROL_QUEUE} answers already wait on {id}: one on {topic} dropped{}", suppressed(n));
            }
            return;
        }
        s.control.push_back(Outgoing {
            topic: topic.to_string(),
            payload,
        });
    }

    /// Stop: whatever is still held goes back, every session is closed.
    fn finish(&mut self, now: Instant, out: &mut Vec<Command>) {
        self.close_all(now, out);
        out.push(Command::Exit);
        self.exited = true;
        info!("publisher: stopped");
    }

    fn report(&mut self, out: &mut Vec<Command>) {
        let up = match self.settings.broker.mode {
            PublishMode::Gateway => self.gateway_up(),
            // Device mode: work is sorted per device, so a session is opened by its work.
            PublishMode::Device => self.publishing(),
        } && self.stopping_until.is_none();
        if self.reported_connected != Some(up) {
            self.reported_connected = Some(up);
            out.push(Command::Connected(up));
        }
        let state = (
            self.sessions.values().any(|s| s.link.is_up()),
            self.settings.broker.host.is_empty(),
            self.settings.broker.mode == PublishMode::Gateway,
        );
        if self.reported_state != Some(state) {
            self.reported_state = Some(state);
            out.push(Command::State {
                any_up: state.0,
                disabled: state.1,
                gateway_mode: state.2,
            });
        }
    }

    /// The sessions the core has up, with their clients (for the driver's liveness check).
    pub fn up_sessions(&self) -> Vec<(SessionId, ClientKey)> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.link.is_up())
            .map(|(id, s)| (id.clone(), s.client.clone()))
            .collect()
    }

    /// For tests and the status: library commands outstanding on a session.
    pub fn outstanding(&self, id: &SessionId) -> usize {
        self.sessions.get(id).map_or(0, |s| s.outstanding)
    }

    /// Readings the core holds (waiting, packed, in flight), for tests.
    pub fn held(&self) -> usize {
        self.sessions
            .values()
            .map(|s| s.waiting.len() + s.held.len())
            .sum()
    }
}
