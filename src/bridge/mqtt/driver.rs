//! The Paho driver: the publisher thread's loop and the only code that touches the MQTT
//! library or the clock. It executes the core's [`Command`]s and turns callbacks and completed
//! tokens into [`Input`]s; every decision is the core's.
//!
//! Paho's limits, stated once (they are the core's [`Limits`]):
//! - Paho C refuses a publish past `max_buffered_messages` queued commands ("Max buffered
//!   messages"); we set [`PAHO_MAX_BUFFERED`] and let the core have at most
//!   [`OUTSTANDING_PER_CLIENT`] publishes and subscribes outstanding per client, so the buffer
//!   can never fill.
//! - Paho C treats a CONNECT on a client it still thinks connected as a no-op whose token never
//!   completes: the core disconnects before every reconnect and replaces a client whose
//!   CONNECT went unanswered.
//! - Clients are never dropped. Dropping a Paho `AsyncClient` whose token callback still holds
//!   a reference destroys the C client inside that callback, under Paho C's global mutex (the
//!   deadlock of the first version, paho.mqtt.rust#239). A client lives as long as the
//!   process; a broker change or a fresh client leaves the old one disconnected, not freed.
//!
//! Never blocked: every Paho call here returns at once (connect, publish, subscribe return
//! tokens); each token is polled with a waker that names it, so the thread sleeps until a
//! completion, new work, a message or the core's next deadline. Messages from the broker come
//! through a bounded inbox ([`INBOX`]); past it they are dropped and counted in Paho's thread,
//! which never waits on us.

use super::core::{Command, Completion, Core, Input, Limits, Ticket};
use super::host::Host;
use super::session::{ClientKey, SessionId};
use super::ToPublisher;
use crate::config::settings::BridgeSettings;
use crossbeam_channel::{bounded, select, unbounded, Receiver, Sender};
use paho_mqtt as mqtt;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// Paho's command buffer per client (`max_buffered_messages`, 100 by default).
pub const PAHO_MAX_BUFFERED: i32 = 128;
/// Publishes and subscribes the core may have outstanding per client: half the buffer.
pub const OUTSTANDING_PER_CLIENT: usize = 64;
/// Messages from the broker waiting for this thread; more are dropped and counted.
pub const INBOX: usize = 256;
/// Longest sleep (heartbeat, liveness check).
const TICK: Duration = Duration::from_millis(500);
/// Inputs from the outbox and meter threads taken per pass, and messages from the broker.
const COMMANDS_PER_PASS: usize = 256;
const INCOMING_PER_PASS: usize = 64;
/// A token the library never completed is forgotten after this (its session was reset long
/// before by the core's deadline).
const TOKEN_SWEEP: Duration = Duration::from_secs(60);

/// Posted by Paho's threads.
enum Event {
    Token(Ticket),
    Connect(SessionId, u32),
    Lost(SessionId, u32),
}

struct Incoming {
    session: SessionId,
    topic: String,
    payload: Vec<u8>,
}

/// Wakes the thread for one token.
struct TicketWaker(Sender<Event>, Ticket);

impl Wake for TicketWaker {
    fn wake(self: Arc<Self>) {
        let _ = self.0.send(Event::Token(self.1));
    }
}

struct ConnectWaker(Sender<Event>, SessionId, u32);

impl Wake for ConnectWaker {
    fn wake(self: Arc<Self>) {
        let _ = self.0.send(Event::Connect(self.1.clone(), self.2));
    }
}

enum Pending {
    Delivery(mqtt::DeliveryToken),
    Subscribe(mqtt::Token),
}

impl Pending {
    /// The command's end, if it has ended (polling takes the result out of the token).
    fn poll(&mut self, cx: &mut Context<'_>) -> Option<Completion> {
        let result = match self {
            Pending::Delivery(t) => Pin::new(t).poll(cx),
            Pending::Subscribe(t) => Pin::new(t).poll(cx).map(|r| r.map(|_| ())),
        };
        match result {
            Poll::Ready(Ok(())) => Some(Completion::Acked),
            Poll::Ready(Err(e)) => Some(Completion::Failed(e.to_string())),
            Poll::Pending => None,
        }
    }
}

pub struct Publisher {
    core: Core,
    host: Host,
    settings: Arc<BridgeSettings>,
    /// Every client ever created: never dropped (see the module doc).
    clients: HashMap<ClientKey, mqtt::AsyncClient>,
    connecting: HashMap<SessionId, (u32, mqtt::ConnectToken)>,
    tokens: HashMap<Ticket, (Instant, Pending)>,
    events: (Sender<Event>, Receiver<Event>),
    incoming: (Sender<Incoming>, Receiver<Incoming>),
    dropped: Arc<AtomicU64>,
    dropped_seen: u64,
    /// Disconnect tokens of the last pass (waited for briefly at exit).
    disconnects: Vec<mqtt::Token>,
    last_check: Instant,
    last_sweep: Instant,
}

impl Publisher {
    pub fn new(host: Host) -> Publisher {
        let now = Instant::now();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        Publisher {
            core: Core::new(
                Limits {
                    max_outstanding: OUTSTANDING_PER_CLIENT,
                },
                super::gateway_device::identity(&hostname),
                now,
            ),
            host,
            settings: Arc::new(BridgeSettings::default()),
            clients: HashMap::new(),
            connecting: HashMap::new(),
            tokens: HashMap::new(),
            events: unbounded(),
            incoming: bounded(INBOX),
            dropped: Arc::default(),
            dropped_seen: 0,
            disconnects: Vec::new(),
            last_check: now,
            last_sweep: now,
        }
    }

    pub fn run(mut self, commands: Receiver<ToPublisher>) {
        let mut inputs: VecDeque<Input> = VecDeque::new();
        loop {
            self.host.heartbeat();
            let now = Instant::now();
            let wait = self
                .core
                .next_deadline()
                .map_or(TICK, |t| t.saturating_duration_since(now))
                .min(TICK);
            let events = self.events.1.clone();
            let incoming = self.incoming.1.clone();
            select! {
                recv(events) -> e => if let Ok(e) = e { self.event(e, &mut inputs) },
                recv(commands) -> c => match c {
                    Ok(c) => inputs.push_back(self.command(c)),
                    Err(_) => inputs.push_back(Input::Stop),
                },
                recv(incoming) -> m => if let Ok(m) = m { inputs.push_back(incoming_input(m)) },
                default(wait) => {}
            }
            // Completions first, then work and answers, then a bounded share of the broker's
            // messages: a flood from the broker cannot hold up publishing.
            while let Ok(e) = events.try_recv() {
                self.event(e, &mut inputs);
            }
            for c in commands.try_iter().take(COMMANDS_PER_PASS) {
                let input = self.command(c);
                inputs.push_back(input);
            }
            for m in incoming.try_iter().take(INCOMING_PER_PASS) {
                inputs.push_back(incoming_input(m));
            }
            self.count_dropped();
            self.check_liveness(&mut inputs);
            // Every input makes the core look at the time; a pass that brought none ticks.
            if inputs.is_empty() {
                inputs.push_back(Input::Tick);
            }
            while let Some(input) = inputs.pop_front() {
                let out = self.core.handle(input, Instant::now());
                for c in out {
                    if matches!(c, Command::Exit) {
                        return self.exit();
                    }
                    self.execute(c, &mut inputs);
                }
            }
            self.sweep();
        }
    }

    fn command(&mut self, c: ToPublisher) -> Input {
        match c {
            ToPublisher::Work(items) => Input::Work(items),
            ToPublisher::RpcReply { reply, result } => Input::RpcReply { reply, result },
            ToPublisher::OwnTelemetry(p) => Input::OwnTelemetry(p),
            ToPublisher::Configure(config) => {
                self.settings = config.settings.clone();
                self.host.configured(&config);
                Input::Configure {
                    settings: config.settings.clone(),
                    devices: config.devices.clone(),
                }
            }
            ToPublisher::Stop => Input::Stop,
        }
    }

    fn event(&mut self, e: Event, inputs: &mut VecDeque<Input>) {
        match e {
            Event::Token(ticket) => {
                let waker = self.ticket_waker(ticket);
                let mut cx = Context::from_waker(&waker);
                let done = self
                    .tokens
                    .get_mut(&ticket)
                    .and_then(|(_, p)| p.poll(&mut cx));
                if let Some(how) = done {
                    self.tokens.remove(&ticket);
                    inputs.push_back(Input::Completed { ticket, how });
                }
            }
            Event::Connect(session, generation) => self.poll_connect(session, generation, inputs),
            Event::Lost(session, generation) => inputs.push_back(Input::Lost {
                session,
                generation,
            }),
        }
    }

    fn ticket_waker(&self, ticket: Ticket) -> Waker {
        Waker::from(Arc::new(TicketWaker(self.events.0.clone(), ticket)))
    }

    fn poll_connect(&mut self, session: SessionId, generation: u32, inputs: &mut VecDeque<Input>) {
        let Some((g, token)) = self.connecting.get_mut(&session) else {
            return;
        };
        if *g != generation {
            return;
        }
        let waker = Waker::from(Arc::new(ConnectWaker(
            self.events.0.clone(),
            session.clone(),
            generation,
        )));
        let mut cx = Context::from_waker(&waker);
        let Poll::Ready(r) = Pin::new(token).poll(&mut cx) else {
            return;
        };
        self.connecting.remove(&session);
        let broker = &self.settings.broker;
        let result = r.map(|_| ()).map_err(|e| {
            super::broker_error::describe(&e, broker, || {
                super::broker_error::port_open(broker, Duration::from_secs(1))
            })
        });
        inputs.push_back(Input::ConnectDone {
            session,
            generation,
            result,
        });
    }

    fn client(
        &mut self,
        session: &SessionId,
        key: &ClientKey,
    ) -> Result<mqtt::AsyncClient, String> {
        if let Some(c) = self.clients.get(key) {
            return Ok(c.clone());
        }
        let create = mqtt::CreateOptionsBuilder::new()
            .server_uri(&key.uri)
            .client_id(&key.client_id)
            // Our outbox is the persistence: Paho keeps nothing on disk.
            .persistence(mqtt::PersistenceType::None)
            .max_buffered_messages(PAHO_MAX_BUFFERED)
            .finalize();
        let client = mqtt::AsyncClient::new(create).map_err(|e| e.to_string())?;
        let (lost, s, g) = (self.events.0.clone(), session.clone(), key.generation);
        client.set_connection_lost_callback(move |_| {
            let _ = lost.send(Event::Lost(s.clone(), g));
        });
        // Messages from the broker: handed to this thread, never handled on Paho's, and
        // never waited for (a full inbox drops and counts).
        let (inbox, dropped, s) = (
            self.incoming.0.clone(),
            self.dropped.clone(),
            session.clone(),
        );
        client.set_message_callback(move |_, msg| {
            if let Some(m) = msg {
                let sent = inbox.try_send(Incoming {
                    session: s.clone(),
                    topic: m.topic().to_string(),
                    payload: m.payload().to_vec(),
                });
                if sent.is_err() {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        self.clients.insert(key.clone(), client.clone());
        Ok(client)
    }

    fn execute(&mut self, c: Command, inputs: &mut VecDeque<Input>) {
        match c {
            Command::Connect {
                session,
                client,
                username,
            } => {
                let generation = client.generation;
                match self.connect(&session, &client, username) {
                    Ok(token) => {
                        self.connecting.insert(session.clone(), (generation, token));
                        self.poll_connect(session, generation, inputs);
                    }
                    Err(why) => inputs.push_back(Input::ConnectDone {
                        session,
                        generation,
                        result: Err(why),
                    }),
                }
            }
            Command::Disconnect { session, client } => {
                if self
                    .connecting
                    .get(&session)
                    .is_some_and(|(g, _)| *g == client.generation)
                {
                    self.connecting.remove(&session);
                }
                if let Some(c) = self.clients.get(&client) {
                    self.disconnects.push(c.disconnect(None));
                    if self.disconnects.len() > 64 {
                        self.disconnects.remove(0);
                    }
                }
            }
            Command::Subscribe {
                session,
                client,
                ticket,
                topics,
            } => match self.client(&session, &client) {
                Ok(c) => {
                    let token = c.subscribe_many(topics, &vec![1; topics.len()]);
                    self.track(ticket, Pending::Subscribe(token), inputs);
                }
                Err(e) => inputs.push_back(Input::Completed {
                    ticket,
                    how: Completion::Refused(e),
                }),
            },
            Command::Publish {
                session,
                client,
                ticket,
                topic,
                payload,
            } => {
                let sent = self.client(&session, &client).and_then(|c| {
                    c.try_publish(mqtt::Message::new(topic, payload, 1))
                        .map_err(|e| e.to_string())
                });
                match sent {
                    Ok(token) => self.track(ticket, Pending::Delivery(token), inputs),
                    Err(e) => inputs.push_back(Input::Completed {
                        ticket,
                        how: Completion::Refused(e),
                    }),
                }
            }
            other => {
                if let Some(input) = self.host.execute(other) {
                    inputs.push_back(input);
                }
            }
        }
    }

    /// Polls a new token once, so that its completion wakes this thread; one that is
    /// already complete is answered at once.
    fn track(&mut self, ticket: Ticket, mut pending: Pending, inputs: &mut VecDeque<Input>) {
        let waker = self.ticket_waker(ticket);
        let mut cx = Context::from_waker(&waker);
        match pending.poll(&mut cx) {
            Some(how) => inputs.push_back(Input::Completed { ticket, how }),
            None => {
                self.tokens.insert(ticket, (Instant::now(), pending));
            }
        }
    }

    fn connect(
        &mut self,
        session: &SessionId,
        key: &ClientKey,
        username: Option<String>,
    ) -> Result<mqtt::ConnectToken, String> {
        let broker = self.settings.broker.clone();
        // Paho refuses an ssl:// address in a build without TLS ("Bad protocol") before any
        // of our checks: say what it means instead.
        if broker.tls && !cfg!(feature = "tls") {
            return Err("this dlms-bridge was built without TLS (the tls feature): set mqtt.tls false, or install a build with TLS".into());
        }
        let client = self.client(session, key)?;
        let mut opts = mqtt::ConnectOptionsBuilder::new();
        opts.keep_alive_interval(Duration::from_secs(30))
            .clean_session(true)
            .connect_timeout(Duration::from_secs(5));
        if broker.tls {
            opts.ssl_options(super::tls::ssl_options(&broker)?);
        }
        if let Some(t) = &username {
            opts.user_name(t);
        }
        Ok(client.connect(opts.finalize()))
    }

    /// A connection the library lost without telling (its callback is not called after some
    /// failures): looked at once a second for the sessions the core has up.
    fn check_liveness(&mut self, inputs: &mut VecDeque<Input>) {
        if self.last_check.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_check = Instant::now();
        for (session, client) in self.core.up_sessions() {
            if self.clients.get(&client).is_some_and(|c| !c.is_connected()) {
                inputs.push_back(Input::Lost {
                    session,
                    generation: client.generation,
                });
            }
        }
    }

    fn count_dropped(&mut self) {
        let n = self.dropped.load(Ordering::Relaxed);
        if n > self.dropped_seen {
            let new = n - self.dropped_seen;
            self.dropped_seen = n;
            self.host.inbox_overflow(new);
        }
    }

    fn sweep(&mut self) {
        if self.last_sweep.elapsed() < Duration::from_secs(10) {
            return;
        }
        self.last_sweep = Instant::now();
        self.tokens.retain(|_, (at, _)| at.elapsed() < TOKEN_SWEEP);
    }

    /// Stopped: the disconnects get up to 300 ms; the clients go with the process.
    fn exit(mut self) {
        let until = Instant::now() + Duration::from_millis(300);
        for t in self.disconnects.drain(..) {
            let _ = t.wait_for(until.saturating_duration_since(Instant::now()));
        }
        self.host.stopped();
        // Never dropped here (see the module doc).
        std::mem::forget(self.clients);
    }
}

fn incoming_input(m: Incoming) -> Input {
    Input::Incoming {
        session: m.session,
        topic: m.topic,
        payload: m.payload,
    }
}
