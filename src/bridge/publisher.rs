//! The one MQTT thread: owns the Paho clients and publishes the work the outbox thread hands
//! it, answering each item with its [`Outcome`]. It never touches the outbox, so nothing it
//! waits for can hold up a commit.
//!
//! Never blocked: every Paho call here returns at once (connect and publish return tokens);
//! tokens are polled with a waker that posts to this thread's channel, so the thread sleeps
//! until a PUBACK, a CONNACK, new work or the next deadline (connect attempt 15 s, PUBACK 10 s,
//! reconnect backoff). Connection state per session is [`Link`]'s (pure, unit-tested).
//!
//! Clients are never dropped. Dropping a Paho `AsyncClient` whose token callback still holds a
//! reference destroys the C client inside that callback, under Paho C's global mutex: the
//! deadlock of the first version (the publisher and Paho's send/receive threads all waiting on
//! locks, paho.mqtt.rust#239). So one client per (broker URI, client id) lives as long as the
//! process and is reconnected; a broker change leaves the old client disconnected, not freed.

use super::link::Link;
use super::queue::{Key, Outcome, WorkItem};
use super::thingsboard::{self, Message};
use crate::config::settings::{BridgeSettings, PublishMode};
use crate::status::state::Status;
use crate::store::outbox::Entry;
use crate::store::Store;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{error, info, warn};
use paho_mqtt as mqtt;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// A message without PUBACK by then counts as not delivered, and the session is restarted.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages one session may have unacknowledged (announcements included). Paho C refuses a
/// publish past its command buffer (100 by default: "Max buffered messages"), measured with 100
/// meters whose first gateway batch was 100 announcements and a telemetry message.
const MAX_IN_FLIGHT: usize = 50;
/// Longest sleep (settings reload, heartbeat).
const TICK: Duration = Duration::from_millis(500);
/// Gateway telemetry messages held while the broker is away.
pub const OWN_TELEMETRY_QUEUE: usize = 64;

/// From the outbox thread.
#[derive(Debug)]
pub enum ToPublisher {
    Work(Vec<WorkItem>),
    /// A message from the broker (posted by Paho's thread): an RPC request. `session`: the
    /// device whose session it came in on (device mode), `None` for the gateway's.
    Incoming {
        session: Option<String>,
        topic: String,
        payload: Vec<u8>,
    },
    /// A meter thread's answer to an RPC.
    RpcReply {
        reply: super::rpc::ReplyTo,
        result: Result<serde_json::Value, String>,
    },
    /// Telemetry of the gateway's own device (`{"ts":..,"values":..}`): its alarms. Sent when
    /// the gateway session is up (gateway mode; kept in memory, the newest
    /// [`OWN_TELEMETRY_QUEUE`]).
    OwnTelemetry(String),
    /// A token completed or a connection changed (posted by Paho's threads through the waker).
    Wake,
    Stop,
}

/// To the outbox thread.
#[derive(Debug, Clone, PartialEq)]
pub enum FromPublisher {
    Answers(Vec<(Key, Outcome)>),
    /// Whether work can be taken. `false` also means: everything held was answered Retry.
    Connected(bool),
}

mod gateway_device;
mod rpc_route;
mod shared_attributes;

/// Wakes the publisher thread when a Paho token completes.
struct ChannelWaker(Sender<ToPublisher>);

impl Wake for ChannelWaker {
    fn wake(self: Arc<Self>) {
        let _ = self.0.try_send(ToPublisher::Wake);
    }
}

struct InFlight {
    token: mqtt::DeliveryToken,
    /// The token's result when it was already complete at the first poll (a poll takes the
    /// result out of the token: it must not be polled again).
    ready: Option<Result<(), String>>,
    keys: Vec<Key>,
    deadline: Instant,
    /// For the counters: telemetry readings per device, payload bytes.
    per_device: Vec<(String, u64)>,
    telemetry: bool,
    bytes: u64,
}

struct Session {
    client_key: (String, String),
    link: Link,
    connecting: Option<mqtt::ConnectToken>,
    /// Gateway mode: devices announced with v1/gateway/connect in this MQTT session.
    announced: HashSet<String>,
    waiting: VecDeque<WorkItem>,
    in_flight: Vec<InFlight>,
    token: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct DeviceInfo {
    device_type: String,
    token: Option<String>,
}

pub struct Publisher {
    store: Store,
    settings: BridgeSettings,
    revision: i64,
    devices: HashMap<String, DeviceInfo>,
    status: Arc<Status>,
    /// Every client ever created, by (URI, client id): never dropped (see the module doc).
    clients: HashMap<(String, String), mqtt::AsyncClient>,
    /// None: the gateway session; Some(device): device mode.
    sessions: HashMap<Option<String>, Session>,
    answers: Sender<FromPublisher>,
    waker: Waker,
    reported_connected: bool,
    tokens: f64,
    last_refill: Instant,
    warned_no_token: HashSet<String>,
    /// Meter threads' RPC queues, by meter name (kept by the supervisor).
    routes: super::Routes,
    /// This thread's own channel, for Paho's message callbacks.
    inbox: Sender<ToPublisher>,
    /// RPCs handed to meters and not answered yet, with their deadline.
    pending_rpcs: HashMap<String, (super::rpc::ReplyTo, Instant, String)>,
    last_stats: Option<Instant>,
    /// The gateway's own telemetry waiting for the gateway session.
    own_pending: VecDeque<String>,
}

fn broker_settings_changed(a: &BridgeSettings, b: &BridgeSettings) -> bool {
    a.mqtt_host != b.mqtt_host
        || a.mqtt_port != b.mqtt_port
        || a.mode != b.mode
        || a.gateway_token != b.gateway_token
        || a.client_id != b.client_id
        || a.mqtt_tls != b.mqtt_tls
        || a.mqtt_ca_file != b.mqtt_ca_file
        || a.mqtt_client_cert != b.mqtt_client_cert
        || a.mqtt_client_key != b.mqtt_client_key
        || a.mqtt_client_key_password != b.mqtt_client_key_password
        || a.mqtt_verify_hostname != b.mqtt_verify_hostname
        || a.reconnect_max_s != b.reconnect_max_s
}

impl Publisher {
    pub fn new(
        store: Store,
        status: Arc<Status>,
        answers: Sender<FromPublisher>,
        wake: Sender<ToPublisher>,
        routes: super::Routes,
    ) -> crate::store::Result<Publisher> {
        let mut p = Publisher {
            settings: store.settings()?,
            store,
            revision: -1,
            devices: HashMap::new(),
            status,
            clients: HashMap::new(),
            sessions: HashMap::new(),
            answers,
            waker: Waker::from(Arc::new(ChannelWaker(wake.clone()))),
            routes,
            inbox: wake,
            pending_rpcs: HashMap::new(),
            last_stats: None,
            own_pending: VecDeque::new(),
            reported_connected: false,
            tokens: 1.0,
            last_refill: Instant::now(),
            warned_no_token: HashSet::new(),
        };
        p.reload()?;
        Ok(p)
    }

    fn reload(&mut self) -> crate::store::Result<()> {
        let revision = self.store.config_revision()?;
        if revision == self.revision {
            return Ok(());
        }
        let settings = self.store.settings()?;
        if self.revision >= 0 && broker_settings_changed(&settings, &self.settings) {
            info!("publisher: broker settings changed, reconnecting");
            self.close_sessions();
        }
        self.settings = settings;
        let mode = if self.settings.mode == PublishMode::Gateway {
            "gateway"
        } else {
            "device"
        };
        let disabled = self.settings.mqtt_host.is_empty();
        self.status.update_publisher(|p| p.mode = mode);
        let was = self
            .status
            .publishing_disabled
            .swap(disabled, std::sync::atomic::Ordering::Relaxed);
        if disabled && (!was || self.revision < 0) {
            // Said once per change: an empty host is a choice, but a silent one looks like a
            // broken broker connection.
            info!("publisher: publishing is off (mqtt.host is empty); readings stay in the outbox");
        }
        let meters = self.store.meters()?;
        let enabled: HashSet<String> = meters
            .iter()
            .filter(|m| m.enabled)
            .map(|m| m.name.clone())
            .collect();
        self.announce_gone(&enabled);
        self.devices = meters
            .into_iter()
            .map(|m| {
                (
                    m.name,
                    DeviceInfo {
                        device_type: m.device_type,
                        token: m.access_token.map(|t| t.0),
                    },
                )
            })
            .collect();
        self.warned_no_token.clear();
        self.revision = revision;
        Ok(())
    }

    pub fn run(mut self, commands: Receiver<ToPublisher>) {
        let mut last_reload = Instant::now();
        loop {
            let now = Instant::now();
            self.status
                .update_publisher(|p| p.heartbeat = Some(std::time::Instant::now()));
            let wait = self
                .next_wake()
                .into_iter()
                .chain(self.next_rpc_deadline())
                .min()
                .map_or(TICK, |t| t.saturating_duration_since(now))
                .min(TICK);
            let first = match commands.recv_timeout(wait) {
                Ok(c) => Some(c),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut stop = false;
            for cmd in first.into_iter().chain(commands.try_iter()) {
                match cmd {
                    ToPublisher::Work(items) => self.take_work(items),
                    ToPublisher::Wake => {}
                    ToPublisher::OwnTelemetry(payload) => self.queue_own(payload),
                    ToPublisher::Incoming {
                        session,
                        topic,
                        payload,
                    } => self.incoming(session, &topic, &payload),
                    ToPublisher::RpcReply { reply, result } => self.rpc_answered(reply, result),
                    ToPublisher::Stop => stop = true,
                }
            }
            if stop {
                break;
            }
            if last_reload.elapsed() >= Duration::from_secs(1) {
                if let Err(e) = self.reload() {
                    error!("publisher: reading configuration: {e}");
                }
                last_reload = Instant::now();
            }
            self.drive();
            self.expire_rpcs();
            self.gateway_stats();
            self.send_own();
        }
        self.shutdown();
    }

    fn next_wake(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for (id, s) in &self.sessions {
            let wanted = s.wanted(id);
            for t in s
                .link
                .next_wake()
                .filter(|_| wanted)
                .into_iter()
                .chain(s.in_flight.iter().map(|f| f.deadline))
            {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
            if s.link.is_up() && !s.waiting.is_empty() {
                // Rate limited: look again when a token has refilled.
                let rate = f64::from(self.settings.max_messages_per_second.max(1));
                let t = Instant::now() + Duration::from_secs_f64(1.0 / rate);
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        }
        next
    }

    /// Sorts work into sessions (device mode: one per device token).
    fn take_work(&mut self, items: Vec<WorkItem>) {
        let mut parked = Vec::new();
        for item in items {
            let session = match self.settings.mode {
                PublishMode::Gateway => {
                    // Sent before the outbox thread learnt of a lost connection: give it back.
                    if !self.sessions.get(&None).is_some_and(|s| s.link.is_up()) {
                        parked.push((item.key, Outcome::Retry));
                        continue;
                    }
                    None
                }
                PublishMode::Device => {
                    let token = self
                        .devices
                        .get(&item.entry.device)
                        .and_then(|d| d.token.clone());
                    if token.is_none() {
                        if self.warned_no_token.insert(item.entry.device.clone()) {
                            warn!("meter {:?} has no access_token: its readings stay in the outbox (device mode)", item.entry.device);
                        }
                        parked.push((item.key, Outcome::Park));
                        continue;
                    }
                    Some(item.entry.device.clone())
                }
            };
            self.session(session).waiting.push_back(item);
        }
        self.answer(parked);
    }

    fn session(&mut self, id: Option<String>) -> &mut Session {
        let settings = &self.settings;
        let (client_id, token) = match &id {
            None => (settings.client_id.clone(), settings.gateway_token.clone()),
            Some(d) => (
                format!("{}-{d}", settings.client_id),
                self.devices.get(d).and_then(|i| i.token.clone()),
            ),
        };
        let uri = super::tls::broker_uri(settings);
        self.sessions.entry(id).or_insert_with(|| Session {
            client_key: (uri, client_id),
            link: Link::new(Instant::now()),
            connecting: None,
            announced: HashSet::new(),
            waiting: VecDeque::new(),
            in_flight: Vec::new(),
            token,
        })
    }

    fn answer(&self, list: Vec<(Key, Outcome)>) {
        if !list.is_empty() {
            let _ = self.answers.send(FromPublisher::Answers(list));
        }
    }

    /// One pass over every session: connections, completions, publishing.
    fn drive(&mut self) {
        if self.settings.mqtt_host.is_empty() {
            // Publishing switched off: hand everything back, take nothing.
            self.set_connected(false);
            let held = self.take_all_held();
            self.answer(held);
            return;
        }
        let ids: Vec<Option<String>> = self.sessions.keys().cloned().collect();
        for id in ids {
            self.drive_connection(&id);
            self.poll_in_flight(&id);
            self.publish_waiting(&id);
        }
        // Gateway mode: the gateway session is wanted even with no work, so that the outbox
        // thread learns it may hand work over (and RPCs arrive).
        if self.settings.mode == PublishMode::Gateway && !self.sessions.contains_key(&None) {
            self.session(None);
            self.drive_connection(&None);
        }
        // Device mode: every meter with a token has its session, for its RPCs.
        if self.settings.mode == PublishMode::Device {
            let missing: Vec<String> = self
                .devices
                .iter()
                .filter(|(d, info)| {
                    info.token.is_some() && !self.sessions.contains_key(&Some((*d).clone()))
                })
                .map(|(d, _)| d.clone())
                .collect();
            for d in missing {
                let id = Some(d);
                self.session(id.clone());
                self.drive_connection(&id);
            }
        }
        let up = match self.settings.mode {
            PublishMode::Gateway => self.sessions.get(&None).is_some_and(|s| s.link.is_up()),
            // Device mode: work is sorted per device, so a session is opened by its work.
            PublishMode::Device => true,
        };
        self.set_connected(up);
        let any_up = self.sessions.values().any(|s| s.link.is_up());
        self.status.update_publisher(|p| p.connected = any_up);
    }

    fn set_connected(&mut self, up: bool) {
        if up != self.reported_connected {
            self.reported_connected = up;
            let _ = self.answers.send(FromPublisher::Connected(up));
        }
    }

    fn client(
        &mut self,
        key: &(String, String),
        session: &Option<String>,
    ) -> Result<mqtt::AsyncClient, String> {
        if let Some(c) = self.clients.get(key) {
            return Ok(c.clone());
        }
        let create = mqtt::CreateOptionsBuilder::new()
            .server_uri(&key.0)
            .client_id(&key.1)
            // Our outbox is the persistence: Paho keeps nothing on disk.
            .persistence(mqtt::PersistenceType::None)
            .finalize();
        let client = mqtt::AsyncClient::new(create).map_err(|e| e.to_string())?;
        let waker = self.waker.clone();
        client.set_connection_lost_callback(move |_| waker.wake_by_ref());
        // RPC requests: handed to this thread, never handled on Paho's.
        let (inbox, session) = (self.inbox.clone(), session.clone());
        client.set_message_callback(move |_, msg| {
            if let Some(m) = msg {
                let _ = inbox.send(ToPublisher::Incoming {
                    session: session.clone(),
                    topic: m.topic().to_string(),
                    payload: m.payload().to_vec(),
                });
            }
        });
        self.clients.insert(key.clone(), client.clone());
        Ok(client)
    }

    fn drive_connection(&mut self, id: &Option<String>) {
        let now = Instant::now();
        let Some(s) = self.sessions.get(id) else {
            return;
        };
        let key = s.client_key.clone();
        let wanted = s.wanted(id);
        // Up: still connected?
        if s.link.is_up() {
            let alive = self.clients.get(&key).is_some_and(|c| c.is_connected());
            if !alive {
                warn!("publisher: connection to {} lost (readings are kept and sent again after reconnecting)", key.0);
                self.session_lost(id, now);
            }
            return;
        }
        // Connecting: completed, failed, or overdue?
        let overdue = s.link.attempt_overdue(now);
        let s = self.sessions.get_mut(id).expect("looked up above");
        if let Some(token) = s.connecting.as_mut() {
            let mut cx = Context::from_waker(&self.waker);
            let settings = &self.settings;
            let result = match Pin::new(token).poll(&mut cx) {
                Poll::Ready(r) => Some(r.map(|_| ()).map_err(|e| {
                    super::broker_error::describe(&e, settings, || {
                        super::broker_error::port_open(settings, Duration::from_secs(1))
                    })
                })),
                Poll::Pending if overdue => Some(Err(format!(
                    "no answer to CONNECT within {} s",
                    super::link::CONNECT_DEADLINE.as_secs()
                ))),
                Poll::Pending => None,
            };
            match result {
                None => {}
                Some(Ok(())) => {
                    s.connecting = None;
                    let again = s.link.connected();
                    s.announced.clear();
                    info!("publisher: connected to {} as {:?}", key.0, key.1);
                    if let Some(c) = self.clients.get(&key) {
                        // RPC requests to the meters (gateway API) and to this session's
                        // device (device API; in gateway mode: the gateway itself).
                        // Shared attributes: updates and the answers to our requests.
                        let topics: &[&str] = if id.is_none() {
                            &[
                                super::rpc::GATEWAY_RPC,
                                super::rpc::DEVICE_RPC_REQUESTS,
                                shared_attributes::GATEWAY_ATTRIBUTES,
                                shared_attributes::GATEWAY_ATTRIBUTES_RESPONSE,
                            ]
                        } else {
                            &[
                                super::rpc::DEVICE_RPC_REQUESTS,
                                shared_attributes::DEVICE_ATTRIBUTES,
                                shared_attributes::DEVICE_ATTRIBUTES_RESPONSE,
                            ]
                        };
                        drop(c.subscribe_many(topics, &vec![1; topics.len()]));
                    }
                    if id.is_none() {
                        self.gateway_attributes();
                        self.last_stats = None;
                    }
                    self.request_shared_attributes(id);
                    if again {
                        self.status.update_publisher(|p| p.reconnects += 1);
                    }
                }
                Some(Err(e)) => {
                    s.connecting = None;
                    self.connect_failed(id, now, &e);
                }
            }
            return;
        }
        if !(wanted && s.link.should_connect(now)) {
            return;
        }
        let token = s.token.clone();
        // Paho refuses an ssl:// address in a build without TLS ("Bad protocol") before any
        // of our checks: say what it means instead.
        if self.settings.mqtt_tls && !cfg!(feature = "tls") {
            s.link.connecting(now);
            self.connect_failed(
                id,
                now,
                "this dlms-bridge was built without TLS (the tls feature): set mqtt.tls false, or install a build with TLS",
            );
            return;
        }
        let attempt = self.client(&key, id).and_then(|client| {
            let mut opts = mqtt::ConnectOptionsBuilder::new();
            opts.keep_alive_interval(Duration::from_secs(30))
                .clean_session(true)
                .connect_timeout(Duration::from_secs(5));
            if self.settings.mqtt_tls {
                opts.ssl_options(super::tls::ssl_options(&self.settings)?);
            }
            if let Some(t) = &token {
                opts.user_name(t);
            }
            Ok(client.connect(opts.finalize()))
        });
        let s = self.sessions.get_mut(id).expect("looked up above");
        match attempt {
            Ok(token) => {
                s.link.connecting(now);
                s.connecting = Some(token);
                // Poll it once now so that its completion wakes this thread.
                self.drive_connection(id);
            }
            Err(e) => self.connect_failed(id, now, &e),
        }
    }

    /// An attempt failed: back off and say when the next comes.
    fn connect_failed(&mut self, id: &Option<String>, now: Instant, why: &str) {
        let max = Duration::from_secs(self.settings.reconnect_max_s);
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        let wait = s.link.failed(now, max);
        warn!(
            "publisher: cannot connect to {}: {why} (retrying in {} s; readings are kept)",
            s.client_key.0,
            wait.as_secs()
        );
    }

    /// The session's connection is gone: everything it held goes back as Retry.
    fn session_lost(&mut self, id: &Option<String>, now: Instant) {
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        s.link.lost(now);
        s.announced.clear();
        let back = s.take_held();
        let failed = back.len() as u64;
        if failed > 0 {
            self.status.update_publisher(|p| p.failed_publishes += 1);
        }
        self.answer(back);
    }

    fn poll_in_flight(&mut self, id: &Option<String>) {
        let now = Instant::now();
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        let mut cx = Context::from_waker(&self.waker);
        let mut done: Vec<(Key, Outcome)> = Vec::new();
        let mut acked: Vec<InFlight> = Vec::new();
        let mut timed_out = false;
        let mut failed: Option<String> = None;
        let mut i = 0;
        while i < s.in_flight.len() {
            let f = &mut s.in_flight[i];
            let polled = match f.ready.take() {
                Some(r) => Poll::Ready(r),
                None => Pin::new(&mut f.token)
                    .poll(&mut cx)
                    .map(|r| r.map_err(|e| e.to_string())),
            };
            match polled {
                Poll::Ready(Ok(())) => {
                    let f = s.in_flight.remove(i);
                    done.extend(f.keys.iter().map(|k| (*k, Outcome::Acked)));
                    acked.push(f);
                }
                Poll::Ready(Err(e)) => {
                    let f = s.in_flight.remove(i);
                    done.extend(f.keys.iter().map(|k| (*k, Outcome::Retry)));
                    failed = Some(e);
                }
                Poll::Pending if now >= f.deadline => {
                    let f = s.in_flight.remove(i);
                    done.extend(f.keys.iter().map(|k| (*k, Outcome::Retry)));
                    timed_out = true;
                }
                Poll::Pending => i += 1,
            }
        }
        for f in &acked {
            self.count_delivery(f);
        }
        self.answer(done);
        if timed_out || failed.is_some() {
            let why =
                failed.unwrap_or_else(|| format!("no PUBACK within {} s", ACK_TIMEOUT.as_secs()));
            warn!("publisher: publish failed ({why}); reconnecting, the readings are sent again");
            self.status.update_publisher(|p| p.failed_publishes += 1);
            // A session that lost PUBACKs is not trusted: start a fresh one.
            if let Some(key) = self.sessions.get(id).map(|s| s.client_key.clone()) {
                if let Some(c) = self.clients.get(&key) {
                    drop(c.disconnect(None));
                }
            }
            self.session_lost(id, now);
        }
    }

    fn count_delivery(&self, f: &InFlight) {
        if f.keys.is_empty() {
            return;
        }
        let n: u64 = if f.telemetry {
            f.per_device.iter().map(|(_, n)| n).sum()
        } else {
            0
        };
        self.status.update_publisher(|p| {
            p.published_messages += 1;
            p.published_readings += n;
            p.mqtt_bytes += f.bytes;
        });
        let total: u64 = f.per_device.iter().map(|(_, n)| n).sum();
        for (d, n) in &f.per_device {
            let share = f.bytes * n / total.max(1);
            // Never creates an entry: a meter removed meanwhile stays removed.
            self.status.update_existing_meter(d, |m| {
                if f.telemetry {
                    m.published += n;
                }
                m.mqtt_messages += 1;
                m.mqtt_bytes += share;
            });
        }
    }

    fn take_token(&mut self) -> bool {
        let rate = f64::from(self.settings.max_messages_per_second);
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last_refill).as_secs_f64() * rate)
            .min(rate.max(1.0));
        self.last_refill = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn publish_waiting(&mut self, id: &Option<String>) {
        let Some(s) = self.sessions.get(id) else {
            return;
        };
        if !s.link.is_up() || s.waiting.is_empty() {
            return;
        }
        let Some(client) = self.clients.get(&s.client_key).cloned() else {
            return;
        };
        // Entries with their position in `waiting` as id.
        let entries: Vec<Entry> = s
            .waiting
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
        let max = self.settings.max_payload_bytes;
        let messages = match id {
            None => thingsboard::gateway_messages(&entries, max),
            Some(d) => thingsboard::device_messages(d, &entries, max),
        };
        let mut sent: HashSet<usize> = HashSet::new();
        let mut failure = None;
        for msg in messages {
            let busy = self.sessions.get(id).map_or(0, |s| s.in_flight.len());
            // Room for this message and for announcing each of its devices.
            if busy + msg.entry_ids.len().min(MAX_IN_FLIGHT) + 1 > MAX_IN_FLIGHT && busy > 0 {
                break;
            }
            if !self.take_token() {
                break;
            }
            if id.is_none() {
                if let Err(e) = self.announce(&client, &msg, &entries) {
                    failure = Some(e);
                    break;
                }
            }
            match self.publish(&client, id, &msg, &entries) {
                Ok(()) => sent.extend(msg.entry_ids.iter().map(|i| *i as usize)),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let s = self.sessions.get_mut(id).expect("looked up above");
        let mut i = 0;
        s.waiting.retain(|_| {
            i += 1;
            !sent.contains(&(i - 1))
        });
        if let Some(e) = failure {
            warn!("publisher: publish refused by the MQTT library ({e}); reconnecting");
            self.session_lost(id, Instant::now());
        }
    }

    /// Gateway mode: v1/gateway/connect before a device's first message in this session
    /// (QoS 1 in the same session: ThingsBoard receives it first).
    fn announce(
        &mut self,
        client: &mqtt::AsyncClient,
        msg: &Message,
        entries: &[Entry],
    ) -> Result<(), String> {
        let devices: HashSet<&str> = msg
            .entry_ids
            .iter()
            .map(|i| entries[*i as usize].device.as_str())
            .collect();
        for d in devices {
            let s = self.sessions.get(&None).expect("gateway session");
            if s.announced.contains(d) {
                continue;
            }
            let device_type = self
                .devices
                .get(d)
                .map_or("electricity-meter", |i| i.device_type.as_str());
            let m = mqtt::Message::new(
                thingsboard::GATEWAY_CONNECT,
                thingsboard::gateway_connect(d, device_type),
                1,
            );
            // Tracked like any message (it takes a place in Paho's buffer), carrying no entries.
            let f = self.start_delivery(client, m, Vec::new(), Vec::new(), false, 0)?;
            let s = self.sessions.get_mut(&None).expect("gateway session");
            s.announced.insert(d.to_string());
            s.in_flight.push(f);
        }
        Ok(())
    }

    fn publish(
        &mut self,
        client: &mqtt::AsyncClient,
        id: &Option<String>,
        msg: &Message,
        entries: &[Entry],
    ) -> Result<(), String> {
        let s = self.sessions.get(id).expect("publishing on it");
        let keys: Vec<Key> = msg
            .entry_ids
            .iter()
            .map(|i| s.waiting[*i as usize].key)
            .collect();
        let mut per_device: Vec<(String, u64)> = Vec::new();
        for i in &msg.entry_ids {
            let d = &entries[*i as usize].device;
            match per_device.iter_mut().find(|(x, _)| x == d) {
                Some((_, n)) => *n += 1,
                None => per_device.push((d.clone(), 1)),
            }
        }
        let m = mqtt::Message::new(msg.topic, msg.payload.as_bytes(), 1);
        let f = self.start_delivery(
            client,
            m,
            keys,
            per_device,
            msg.topic.ends_with("telemetry"),
            msg.payload.len() as u64,
        )?;
        self.sessions
            .get_mut(id)
            .expect("publishing on it")
            .in_flight
            .push(f);
        Ok(())
    }

    /// Publishes `m` (QoS 1) and polls its token once, so that the PUBACK wakes this thread.
    /// A token answered at once (usually refused by the library) keeps its result, handled on
    /// the next pass: a poll takes the result out of the token.
    fn start_delivery(
        &self,
        client: &mqtt::AsyncClient,
        m: mqtt::Message,
        keys: Vec<Key>,
        per_device: Vec<(String, u64)>,
        telemetry: bool,
        bytes: u64,
    ) -> Result<InFlight, String> {
        let mut token = client.try_publish(m).map_err(|e| e.to_string())?;
        let mut cx = Context::from_waker(&self.waker);
        let ready = match Pin::new(&mut token).poll(&mut cx) {
            Poll::Ready(r) => {
                self.waker.wake_by_ref();
                Some(r.map_err(|e| e.to_string()))
            }
            Poll::Pending => None,
        };
        Ok(InFlight {
            token,
            ready,
            keys,
            deadline: Instant::now() + ACK_TIMEOUT,
            per_device,
            telemetry,
            bytes,
        })
    }

    /// Everything every session holds, as Retry.
    fn take_all_held(&mut self) -> Vec<(Key, Outcome)> {
        self.sessions
            .values_mut()
            .flat_map(|s| s.take_held())
            .collect()
    }

    /// Broker settings changed: every session starts over (their clients stay allocated).
    fn close_sessions(&mut self) {
        for s in self.sessions.values() {
            if s.link.is_up() {
                if let Some(c) = self.clients.get(&s.client_key) {
                    drop(c.disconnect(None));
                }
            }
        }
        let held = self.take_all_held();
        self.sessions.clear();
        self.set_connected(false);
        self.answer(held);
        self.status.update_publisher(|p| p.connected = false);
    }

    /// Stop: wait briefly for outstanding PUBACKs, then disconnect, within about a second.
    fn shutdown(mut self) {
        let until = Instant::now() + Duration::from_millis(800);
        while Instant::now() < until && self.sessions.values().any(|s| !s.in_flight.is_empty()) {
            let ids: Vec<Option<String>> = self.sessions.keys().cloned().collect();
            for id in &ids {
                self.poll_in_flight(id);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let held = self.take_all_held();
        self.answer(held);
        let tokens: Vec<mqtt::Token> = self
            .sessions
            .values()
            .filter(|s| s.link.is_up())
            .filter_map(|s| self.clients.get(&s.client_key))
            .map(|c| c.disconnect(None))
            .collect();
        for t in tokens {
            let _ = t.wait_for(Duration::from_millis(300));
        }
        self.status.update_publisher(|p| p.connected = false);
        info!("publisher: stopped");
        // The clients are dropped with the process, never here (see the module doc).
        std::mem::forget(self.clients);
    }
}

impl Session {
    /// Everything this session holds (in flight and waiting), as Retry.
    fn take_held(&mut self) -> Vec<(Key, Outcome)> {
        let mut back: Vec<(Key, Outcome)> = Vec::new();
        for f in self.in_flight.drain(..) {
            back.extend(f.keys.iter().map(|k| (*k, Outcome::Retry)));
        }
        back.extend(self.waiting.drain(..).map(|w| (w.key, Outcome::Retry)));
        back
    }

    /// Whether this session should be connected: the gateway session always is (so that the
    /// outbox thread learns it may hand work over); a device session while it has work.
    fn wanted(&self, id: &Option<String>) -> bool {
        // Device sessions with a token stay up for their RPCs too.
        id.is_none()
            || self.token.is_some()
            || !self.waiting.is_empty()
            || !self.in_flight.is_empty()
    }
}
