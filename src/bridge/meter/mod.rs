//! One meter's thread: connect, associate, poll on a fixed schedule, send readings to the
//! publisher. Failures lead to reconnects, exponential backoff with jitter, and a circuit
//! breaker that pauses a meter reconnecting too often; none of it touches other meters.

pub mod clock;
mod collect;
pub mod counter;
mod drive;
mod han;
pub mod lines;
mod mode_c;
pub mod poll;
pub mod profiles;
pub mod rpc_exec;
pub mod schedule;

use super::event::{Event, Reading};
use super::mqtt::ToPublisher;
use super::rpc::{MeterCall, RpcCall};
use crate::client::reads::{self, ScalerCache, Target};
use crate::client::{json, ClientError, Connection, Heard, MeterTarget, NetStats, Transport};
use crate::clock::now_ms;
use crate::config::settings::BridgeSettings;
use crate::config::values::Ciphering;
use crate::config::MeterConfig;
use crate::cosem::Obis;
use crate::status::state::{add_net, MeterState, Status};
use clock::MeterClock;
use counter::CounterLease;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use drive::Flow;
use log::{info, warn};
use poll::{Failed, PollCycle, Step, BREAKER_PAUSE};
use profiles::Collector;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the supervisor tells a meter's thread.
pub enum Control {
    Stop,
    /// A new configuration that differs only in live fields.
    Update(Box<MeterConfig>),
}

enum Wake {
    Due,
    Stop,
    Update(Box<MeterConfig>),
    Rpc(RpcCall),
}

/// The meter's association as the thread holds it between slots.
#[derive(Default)]
struct Assoc {
    conn: Option<Connection<Box<dyn Transport>>>,
    /// Traffic of the current connection already added to the status.
    counted: NetStats,
    cache: ScalerCache,
}

fn interval_of(config: &MeterConfig) -> Duration {
    Duration::from_secs(u64::from(config.interval_s))
}

/// The bridge's settings as the supervisor last read them (profile and clock limits).
pub type SharedSettings = Arc<std::sync::RwLock<BridgeSettings>>;

pub struct Worker {
    config: MeterConfig,
    targets: Vec<Target>,
    events: Sender<Event>,
    control: Receiver<Control>,
    rpc: Receiver<RpcCall>,
    to_publisher: Sender<ToPublisher>,
    status: Arc<Status>,
    db: std::path::PathBuf,
    settings: SharedSettings,
    collector: Collector,
    clock: MeterClock,
    bus: Option<Arc<crate::client::bus::Bus>>,
    /// The units last sent to ThingsBoard (the `units` attribute), sent again when they change.
    units_sent: std::cell::RefCell<Map<String, Value>>,
    /// A refusal of this meter's credentials may be on record (`store::auth_refusals`):
    /// the next association that succeeds clears it.
    auth_refusal_on_record: std::cell::Cell<bool>,
}

/// Where a worker gets its RPCs and sends their answers.
pub struct RpcPorts {
    pub calls: Receiver<RpcCall>,
    pub replies: Sender<ToPublisher>,
}

/// What a worker shares with the bridge.
pub struct Shared {
    pub status: Arc<Status>,
    pub db: std::path::PathBuf,
    pub settings: SharedSettings,
    /// The shared serial line, for a meter on one.
    pub bus: Option<Arc<crate::client::bus::Bus>>,
    /// A refusal of its credentials is on record (`store::auth_refusals`, read by the
    /// supervisor): its first successful association clears it.
    pub auth_refusal_on_record: bool,
}

impl Worker {
    pub fn new(
        config: MeterConfig,
        events: Sender<Event>,
        control: Receiver<Control>,
        rpc: RpcPorts,
        shared: Shared,
    ) -> Worker {
        let targets = config.measurement_targets();
        let collector = Collector::new(&config.name, &config.profiles, config.utc_offset_min);
        Worker {
            config,
            targets,
            events,
            control,
            rpc: rpc.calls,
            to_publisher: rpc.replies,
            status: shared.status,
            db: shared.db,
            settings: shared.settings,
            collector,
            clock: MeterClock::default(),
            bus: shared.bus,
            units_sent: Default::default(),
            auth_refusal_on_record: std::cell::Cell::new(shared.auth_refusal_on_record),
        }
    }

    /// The target of one association: a fresh HLS challenge and dedicated key each time, the
    /// invocation counter reserved (and started above the meter's frame counter if one is
    /// configured).
    fn association_target(
        &self,
        base: &MeterTarget,
        lease: Option<&CounterLease>,
    ) -> Result<MeterTarget, ClientError> {
        let mut target = crate::config::fresh_association(base, self.config.dedicated_key)
            .map_err(ClientError::Io)?;
        let (Some(lease), Some(sec)) = (lease, target.session.security.as_mut()) else {
            return Ok(target);
        };
        let mut at_least = 0;
        if let Some(obis) = self.config.frame_counter {
            match crate::client::frame_counter::next_counter_from_meter(base, obis) {
                Ok(n) => at_least = n,
                // The stored counter may still be ahead of the meter's: try with it.
                Err(e) => warn!("meter {:?}: {e}", self.config.name),
            }
        }
        lease.attach(sec, at_least)?;
        Ok(target)
    }

    /// Sleeps until `t`, a stop request, a live change of configuration or an RPC.
    fn sleep_until(&self, t: Instant) -> Wake {
        let wait = t.saturating_duration_since(Instant::now());
        crossbeam_channel::select! {
            recv(self.control) -> c => match c {
                Ok(Control::Stop) | Err(_) => Wake::Stop,
                Ok(Control::Update(config)) => Wake::Update(config),
            },
            recv(self.rpc) -> r => match r {
                Ok(call) => Wake::Rpc(call),
                // The publisher is gone: only stop requests matter now.
                Err(_) => match self.control.recv_timeout(wait) {
                    Err(RecvTimeoutError::Timeout) => Wake::Due,
                    Ok(Control::Stop) | Err(RecvTimeoutError::Disconnected) => Wake::Stop,
                    Ok(Control::Update(config)) => Wake::Update(config),
                },
            },
            default(wait) => Wake::Due,
        }
    }

    /// Takes up a change of live fields only (`config::fields`: interval, measurements,
    /// device type, token) without touching the association.
    fn apply_live(&mut self, config: MeterConfig, cycle: &mut PollCycle) {
        if config.interval_s != self.config.interval_s {
            cycle.set_interval(Instant::now(), interval_of(&config));
        }
        self.targets = config.measurement_targets();
        self.collector
            .configure(&config.profiles, config.utc_offset_min);
        info!(
            "meter {:?}: configuration change applied live (association kept)",
            config.name
        );
        self.config = config;
        self.report_interval();
    }

    /// The interval the status (offline alarm, /healthz: 3 intervals) judges this meter by.
    fn report_interval(&self) {
        // A meter that needs `reconnect_gap_s` between connections is read no more often than
        // that when each poll connects anew: judged by the longer of the two (the offline
        // alarm flapped at gap 12 s, interval 5 s: a new user's finding).
        let interval = self.config.interval_s.max(self.config.reconnect_gap_s);
        self.status
            .update_meter(&self.config.name, |m| m.interval_s = interval);
    }

    /// A read succeeded: the association is kept for the next poll only if that comes before
    /// the meter's inactivity time-out would drop it (Microstar: 180 s) and, on a shared line,
    /// if `bus.keep_open` says so; else it is released now.
    fn end_slot(&mut self, assoc: &mut Assoc, cycle: &mut PollCycle) {
        let on_bus_keep_open = || {
            self.settings
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .bus_keep_open
        };
        let keep_open = self.config.interval_s < self.config.inactivity_timeout_s
            && (self.bus.is_none() || on_bus_keep_open());
        if cycle.read_ok(keep_open) {
            if let Some(mut c) = assoc.conn.take() {
                c.release();
            }
            self.collector.association_closed();
        }
    }

    fn set_state(&self, state: MeterState) {
        self.status
            .update_meter(&self.config.name, |m| m.state = state);
    }

    pub fn run(mut self) {
        // Push meters too: their interval is the time expected between notifications (before
        // this, 0: the offline alarm rose 10 s after every push; issue 25).
        self.report_interval();
        match self.config.push {
            crate::config::values::Push::Serial => return self.run_push(),
            crate::config::values::Push::Tcp => {
                // Served by the push listener; this thread only waits to be stopped.
                self.set_state(MeterState::Connecting);
                while let Ok(Control::Update(_)) = self.control.recv() {}
                return;
            }
            crate::config::values::Push::None => {}
        }
        if self.config.protocol == crate::config::values::Protocol::ModeC {
            return self.run_mode_c();
        }
        let name = self.config.name.clone();
        let Some(mut target) = self.config.target() else {
            warn!("meter {name:?}: invalid configuration, not polled");
            return;
        };
        if let Some(bus) = &self.bus {
            target.endpoint = crate::client::Endpoint::Bus(bus.clone());
            // A silent meter costs the line one time-out per turn, not two.
            target.options.snrm_fallback_on_silence = false;
        }
        // Every frame of every association into the meter's trace ring (issue 26: the page's
        // meter detail, GET /api/meters/NAME/trace, the trace RPC).
        target.trace = crate::client::Tracer::to(self.status.trace_ring(&name));
        let lease = target
            .session
            .security
            .as_ref()
            .map(|sec| CounterLease::new(&name, &sec.keys, self.db.clone()));
        let mut cycle = self.new_cycle();
        let assoc = Assoc::default();
        info!(
            "meter {name:?}: polling {} every {} s",
            target.endpoint, self.config.interval_s
        );
        let mut identity_sent = false;
        let mut state = (assoc, target);
        self.drive(
            &mut cycle,
            &mut state,
            |w, (assoc, target), call, cycle| {
                w.serve_rpc(call, assoc, cycle, target, lease.as_ref())
            },
            |w, (assoc, target), cycle, step| {
                w.dlms_slot(
                    assoc,
                    cycle,
                    step,
                    target,
                    lease.as_ref(),
                    &mut identity_sent,
                )
            },
        );
        let (mut assoc, _) = state;
        if let Some(mut c) = assoc.conn.take() {
            c.release();
        }
        info!("meter {name:?}: stopped");
    }

    /// One due slot of a DLMS meter: (re)associate when the step says so, read, deliver,
    /// collect profiles and set the clock, then keep or release the association.
    fn dlms_slot(
        &mut self,
        assoc: &mut Assoc,
        cycle: &mut PollCycle,
        step: Step,
        target: &mut MeterTarget,
        lease: Option<&CounterLease>,
        identity_sent: &mut bool,
    ) -> Flow {
        let name = self.config.name.clone();
        // On a shared line the whole slot (connect, poll, profiles, release) is one turn.
        let _turn = self.bus.as_ref().map(|b| b.turn(&name));
        let ts_ms = now_ms();
        // A gateway clock that is not set (gateway_clock.rs) stamps nothing.
        let clock_set = self.status.gateway_clock.trusted(ts_ms);
        if step == Step::Connect {
            if !self.open(assoc, cycle, target, lease) {
                return Flow::Next;
            }
            // Identity attributes on each new association (the clock drift changes).
            *identity_sent = false;
        }
        let Some(c) = assoc.conn.as_mut() else {
            return Flow::Next;
        };
        if let Some(lease) = lease {
            // Room for this cycle's counters, reserved before they are used.
            if let Err(e) = lease.ensure(0) {
                let f = cycle.read_failed(Instant::now(), false);
                self.report_failure(&e, f);
                return Flow::Next;
            }
        }
        if !*identity_sent && clock_set {
            *identity_sent = self.send_identity(c, ts_ms);
        }
        let offset = self.config.utc_offset_min;
        let result = reads::read_values(c, &self.targets, &mut assoc.cache).and_then(|v| {
            // Without a gateway clock the meter's own clock, read now, stamps the values;
            // with one, the meter's clock is checked (when due) against it.
            if clock_set {
                let drift = self.check_clock(c)?;
                Ok((Some(ts_ms), drift, v))
            } else {
                Ok((meter_time_ms(c, offset)?, None, v))
            }
        });
        self.count_traffic(assoc, lease);
        match result {
            Ok((None, _, _)) => {
                // Held back rather than stamped with a wrong time; the association stays.
                self.status.update_meter(&name, |m| {
                    m.note_error(
                        "reading held back: the gateway clock is not set and the meter's clock cannot be read".into(),
                    )
                });
                self.end_slot(assoc, cycle);
            }
            Ok((Some(ts_ms), drift, values)) => {
                if !self.deliver(ts_ms, values, drift) {
                    return Flow::Stop;
                }
                let extras = if clock_set {
                    self.after_poll(assoc, cycle.wake_at())
                } else {
                    // No clock sync from a wrong clock; profiles wait and backfill.
                    Ok(true)
                };
                self.count_traffic(assoc, lease);
                match extras {
                    Ok(true) => {}
                    Ok(false) => return Flow::Stop,
                    Err(e) => {
                        let f = cycle.read_failed(Instant::now(), e.is_transient());
                        if !cycle.is_open() {
                            assoc.conn = None;
                            self.collector.association_closed();
                        }
                        self.report_failure(&e, f);
                        return Flow::Next;
                    }
                }
                self.end_slot(assoc, cycle);
            }
            Err(e) => {
                let f = cycle.read_failed(Instant::now(), e.is_transient());
                if !cycle.is_open() {
                    assoc.conn = None; // dropped: released best-effort, reconnected next slot
                    self.collector.association_closed();
                }
                self.report_failure(&e, f);
            }
        }
        Flow::Next
    }

    /// Opens the association; false (reported, backing off) if that failed.
    fn open(
        &mut self,
        assoc: &mut Assoc,
        cycle: &mut PollCycle,
        target: &mut MeterTarget,
        lease: Option<&CounterLease>,
    ) -> bool {
        let name = &self.config.name;
        self.set_state(MeterState::Connecting);
        let attempt = match self
            .association_target(target, lease)
            .and_then(|t| t.connect())
        {
            // Our counter may lag the meter's (another client used the keys, a restored
            // database): resynchronised once, from the meter, then tried again.
            Err(e) if self.resync_counter(&e, target, lease) => self
                .association_target(target, lease)
                .and_then(|t| t.connect()),
            other => other,
        };
        match attempt {
            Ok(c) => {
                if let Some(advice) = c.default_link_advice(Some(name)) {
                    // Remembered for this thread: no block (and no wasted attempt) next time;
                    // the advice saves it after each restart too.
                    info!("meter {name:?}: {advice}");
                    target.options.max_info = 128;
                    target.options.window = 1;
                }
                if self.auth_refusal_on_record.replace(false) {
                    self.with_store(|store| store.clear_auth_refusal(name));
                }
                assoc.cache.clear();
                assoc.counted = NetStats::default();
                assoc.conn = Some(c);
                self.collector.association_closed();
                self.clock.association_opened();
                cycle.connected();
                self.status.update_meter(name, |m| m.reconnects += 1);
                true
            }
            Err(e) => {
                // The failed connection's own counters went with it: keep what the error
                // says (a time-out, and any frames with bad checksums).
                if let ClientError::NoAnswer { heard, .. } = &e {
                    self.status.update_meter(name, |m| {
                        m.net.timeouts += 1;
                        if let Heard::BadChecksums(n) = heard {
                            m.net.checksum_errors += n;
                        }
                    });
                }
                if e.refuses_configuration() {
                    self.record_auth_refusal();
                    let retry_s = self.settings.read().map_or(3600, |s| s.auth_retry_s);
                    let f =
                        cycle.authentication_refused(Instant::now(), Duration::from_secs(retry_s));
                    self.report_failure(&e, f);
                    warn!(
                        "meter {name:?}: not tried again for {} min, or until its configuration changes (meter edit): many meters lock their password or port after 3 failed authentications",
                        retry_s / 60
                    );
                    self.set_state(MeterState::NeedsConfiguration);
                    return false;
                }
                self.connect_failed(cycle, &e, "reconnects");
                false
            }
        }
    }

    /// The meter refused these credentials: on record for `meter test` (which does not try
    /// them again), cleared by the next association that succeeds.
    fn record_auth_refusal(&self) {
        let refusal = crate::store::auth_refusals::AuthRefusal::now(&self.config, "the bridge");
        self.with_store(|store| store.record_auth_refusal(&self.config.name, &refusal));
        self.auth_refusal_on_record.set(true);
    }

    /// One short use of the database from this thread (rare events only: each opens it).
    fn with_store(&self, f: impl FnOnce(&crate::store::Store) -> crate::store::Result<()>) {
        let done = crate::store::Store::open(&self.db).and_then(|store| f(&store));
        if let Err(e) = done {
            warn!("meter {:?}: database: {e}", self.config.name);
        }
    }

    /// A failed connection (or readout): the backoff, the failure reported, and the breaker's
    /// pause said when it opens (`attempts`: what was tried too often).
    fn connect_failed(&self, cycle: &mut PollCycle, e: &ClientError, attempts: &str) {
        let f = cycle.connect_failed(Instant::now());
        self.report_failure(e, f);
        if f.breaker_opened {
            warn!(
                "meter {:?}: too many {attempts} in an hour, pausing for {} min",
                self.config.name,
                BREAKER_PAUSE.as_secs() / 60
            );
            self.set_state(MeterState::BreakerOpen);
        }
    }

    /// After a refusal that an invocation counter behind the meter's would explain (an AARQ
    /// rejected without a diagnostic that names the configuration, or an exception
    /// invocation-counter-error, Green Book 9.3.5), moves our counter above the meter's: the
    /// one the exception names, else the meter's frame counter read by the public client
    /// (0-0:43.1.0). True when the counter moved and the association is worth one more try;
    /// a second refusal is then reported (and alarmed) as usual.
    fn resync_counter(
        &self,
        e: &ClientError,
        base: &MeterTarget,
        lease: Option<&CounterLease>,
    ) -> bool {
        use crate::dlms::session::SessionError;
        let Some(lease) = lease else { return false };
        let named = match e {
            ClientError::Session(SessionError::Exception(x)) if x.service_error == 6 => {
                x.invocation_counter
            }
            ClientError::Session(SessionError::Rejected(_)) if !e.refuses_configuration() => None,
            _ => return false,
        };
        let obis = self
            .config
            .frame_counter
            .unwrap_or(crate::client::frame_counter::DEFAULT_FRAME_COUNTER);
        let meters = match named {
            Some(n) => Ok(n),
            // With a frame counter configured it was read before this attempt already.
            None if self.config.frame_counter.is_some() => return false,
            None => crate::client::frame_counter::next_counter_from_meter(base, obis),
        };
        let name = &self.config.name;
        let ours = lease.next.load(std::sync::atomic::Ordering::SeqCst);
        match meters {
            Ok(theirs) if theirs > ours => match lease.ensure(theirs) {
                Ok(()) => {
                    info!(
                        "meter {name:?}: invocation counter resynchronised from {ours} to {theirs} (the meter's {}); trying once more",
                        if named.is_some() { "exception".to_string() } else { format!("frame counter {obis}") }
                    );
                    true
                }
                Err(e) => {
                    warn!("meter {name:?}: {e}");
                    false
                }
            },
            Ok(_) => false,
            Err(e) => {
                warn!(
                    "meter {name:?}: could not read its frame counter {obis} to resynchronise: {e}"
                );
                false
            }
        }
    }

    /// Adds the connection's traffic since the last count to the status.
    fn count_traffic(&self, assoc: &mut Assoc, lease: Option<&CounterLease>) {
        let Some(c) = assoc.conn.as_ref() else { return };
        let now_stats = c.stats();
        if let Some(lease) = lease {
            let next = lease.next.load(std::sync::atomic::Ordering::SeqCst);
            self.status
                .update_meter(&self.config.name, |m| m.invocation_counter = Some(next));
        }
        let d = delta(&assoc.counted, &now_stats);
        self.status
            .update_meter(&self.config.name, |m| add_net(&mut m.net, &d));
        assoc.counted = now_stats;
    }

    /// Runs one RPC between polls, on the open association (opened for it if needed), and
    /// sends the answer back. Never a second association to the meter.
    fn serve_rpc(
        &mut self,
        call: RpcCall,
        assoc: &mut Assoc,
        cycle: &mut PollCycle,
        target: &mut MeterTarget,
        lease: Option<&CounterLease>,
    ) {
        let started = Instant::now();
        if started >= call.deadline {
            return; // already answered "timeout" by the publisher
        }
        if let MeterCall::Trace { last } = call.call {
            // From the ring, not the meter: no turn on a shared line, and available when the
            // meter refuses us (that is when the frames are wanted).
            let result = Ok(crate::status::diagnostics::trace_document_last(
                &self.status,
                &self.config.name,
                last,
            ));
            let _ = self.to_publisher.send(ToPublisher::RpcReply {
                reply: call.reply,
                result,
            });
            return;
        }
        let _turn = self.bus.as_ref().map(|b| b.turn(&self.config.name));
        let result = if call.call.writes() && !self.config.rpc_write {
            Err(format!(
                "{} writes to the meter, and this meter's rpc_write is false (dlms-bridge meter edit {:?} --rpc-write true)",
                call.method, self.config.name
            ))
        } else if cycle.needs_configuration(started) {
            // An RPC must not become the attempt that locks the meter.
            Err(format!(
                "the meter refused our credentials ({}); fix its configuration (meter edit {:?}) before asking it anything",
                self.status
                    .meter(&self.config.name)
                    .and_then(|m| m.last_error)
                    .unwrap_or_default(),
                self.config.name
            ))
        } else if call.call == MeterCall::PollNow {
            // The next slot now: readings go out as from any poll.
            cycle.poll_now(started);
            Ok(serde_json::json!({"polled": true}))
        } else if assoc.conn.is_none() && !self.open(assoc, cycle, target, lease) {
            Err(format!(
                "cannot reach the meter: {}",
                self.status
                    .meter(&self.config.name)
                    .and_then(|m| m.last_error)
                    .unwrap_or_default()
            ))
        } else {
            let max_rows = call.max_rows;
            let outcome = match assoc.conn.as_mut() {
                Some(c) => rpc_exec::execute(c, &mut assoc.cache, &call.call, max_rows),
                None => Err(rpc_exec::ExecError::Refused("no association".into())),
            };
            self.count_traffic(assoc, lease);
            match outcome {
                Ok(v) => Ok(v),
                Err(rpc_exec::ExecError::Link(e)) => {
                    let f = cycle.read_failed(Instant::now(), true);
                    assoc.conn = None;
                    let text = e.to_string();
                    self.report_failure(&e, f);
                    Err(text)
                }
                Err(rpc_exec::ExecError::Refused(m)) => Err(m),
            }
        };
        info!(
            "rpc: meter {:?} {} -> {} in {} ms",
            self.config.name,
            call.method,
            match &result {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("error: {e}"),
            },
            started.elapsed().as_millis()
        );
        let _ = self.to_publisher.send(ToPublisher::RpcReply {
            reply: call.reply,
            result,
        });
    }

    /// A successful read: the values go to the outbox thread and the status. `false` when the
    /// bridge is stopping (the channel is closed).
    fn deliver(
        &self,
        ts_ms: i64,
        values: Vec<Result<reads::Value, reads::ReadError>>,
        clock_drift_s: Option<i64>,
    ) -> bool {
        let mut map = Map::new();
        if let Some(d) = clock_drift_s {
            map.insert("clock_drift_s".into(), json!(d));
        }
        let mut errors = Vec::new();
        let mut units = Map::new();
        for ((meas, t), v) in self
            .config
            .measurements
            .iter()
            .zip(&self.targets)
            .zip(values)
        {
            match v {
                Ok(v) => {
                    let (value, unit) = json::value(&v);
                    map.insert(meas.key.clone(), value);
                    if let Some(u) = unit {
                        units.insert(meas.key.clone(), json!(u));
                    }
                }
                Err(e) => errors.push(format!("{} ({}): {e}", meas.key, t.obis)),
            }
        }
        self.publish(ts_ms, map, units, errors)
    }

    /// Sends a reading's values (and the units, when they changed) and reports the poll in
    /// the status: what [`Worker::deliver`] and the IEC 62056-21 readout share. `false` when
    /// the bridge is stopping.
    fn publish(
        &self,
        ts_ms: i64,
        map: Map<String, Value>,
        units: Map<String, Value>,
        errors: Vec<String>,
    ) -> bool {
        let name = &self.config.name;
        if !errors.is_empty() {
            warn!("meter {name:?}: {}", errors.join("; "));
        }
        let got = !map.is_empty();
        let latest = map.clone();
        if got {
            let reading = Event::Reading(Reading {
                device: name.clone(),
                ts_ms,
                values: map,
            });
            // Blocks if the outbox thread is behind: backpressure, not loss.
            if self.events.send(reading).is_err() {
                return false;
            }
        }
        if got {
            self.status.record_history(name, ts_ms, &latest);
        }
        // Each key's unit as a client attribute, `units` (issue 25: energy went out as
        // `active_energy_import 237345632` with no Wh anywhere); again only when it changes.
        if !units.is_empty() && *self.units_sent.borrow() != units {
            let sent = self
                .events
                .send(Event::Attributes {
                    device: name.clone(),
                    ts_ms,
                    values: Map::from_iter([("units".to_string(), Value::Object(units.clone()))]),
                })
                .is_ok();
            if sent {
                let u = units.clone();
                self.status.update_meter(name, |m| m.units = u);
                *self.units_sent.borrow_mut() = units;
            }
        }
        self.status.update_meter(name, |m| {
            m.state = MeterState::Polling;
            m.successes += 1;
            m.consecutive_failures = 0;
            m.rejected = None;
            if got {
                m.readings_sent += 1;
                m.last_success_ms = Some(ts_ms);
                m.last_values = latest;
            }
            match errors.first() {
                Some(e) => m.note_error(e.clone()),
                None => m.last_error = None,
            }
        });
        true
    }

    /// Logs a failure and puts it in the status.
    fn report_failure(&self, e: &ClientError, f: Failed) {
        let (n, wait) = (f.consecutive, f.wait);
        let hint = match e {
            ClientError::Session(crate::dlms::session::SessionError::Rejected(_))
                if self.config.security != Ciphering::None
                    && self.config.frame_counter.is_none() =>
            {
                " (if another client used these keys, the meter's counter may be ahead of ours: \
                 set frame_counter, e.g. 0.0.43.1.0.255)"
            }
            _ => "",
        };
        warn!(
            "meter {:?}: {e}{hint}{}",
            self.config.name,
            if wait.is_zero() {
                String::new()
            } else {
                format!(" (retrying in {} s)", wait.as_secs())
            }
        );
        let rejected = matches!(
            e,
            ClientError::Session(
                crate::dlms::session::SessionError::Rejected(_)
                    | crate::dlms::session::SessionError::HlsFailed(_)
            )
        );
        let text = e.to_string();
        self.status.update_meter(&self.config.name, |m| {
            m.failures += 1;
            m.consecutive_failures = n;
            if rejected {
                m.rejected = Some(text.clone());
                m.rejections += 1;
            }
            m.note_error(text);
            m.state = if wait.is_zero() {
                MeterState::Connecting
            } else {
                MeterState::Backoff
            };
        });
    }

    /// Reads identity objects once per worker and sends them as ThingsBoard attributes.
    fn send_identity(&self, c: &mut Connection<Box<dyn Transport>>, ts_ms: i64) -> bool {
        let ids = [
            (
                "serialNumber",
                Target::new(1, Obis::new(0, 0, 96, 1, 0, 255), 2),
            ),
            (
                "logicalDeviceName",
                Target::new(1, Obis::new(0, 0, 42, 0, 0, 255), 2),
            ),
            // The active firmware identifier (Blue Book 7.5.1, 1-0:0.2.0).
            (
                "firmwareVersion",
                Target::new(1, Obis::new(1, 0, 0, 2, 0, 255), 2),
            ),
            ("clock", Target::new(8, Obis::new(0, 0, 1, 0, 0, 255), 2)),
        ];
        let targets: Vec<Target> = ids.iter().map(|(_, t)| *t).collect();
        let Ok(values) = reads::read_raw(c, &targets) else {
            return false;
        };
        let mut attrs = Map::new();
        // Each where readable: a meter without a firmware object still gets the rest.
        for ((key, _), v) in ids.iter().zip(values) {
            match (v, *key) {
                (Ok(d), "clock") => {
                    if let Some(t) = d.as_date_time().and_then(|t| t.to_unix()) {
                        attrs.insert("clockDrift_s".into(), json!(t - now_ms() / 1000));
                    }
                }
                (Ok(d), key) => {
                    attrs.insert(key.into(), json::data(&d));
                }
                (Err(_), _) => {}
            }
        }
        let obis_map: Map<String, Value> = self
            .config
            .measurements
            .iter()
            .map(|m| {
                (
                    m.key.clone(),
                    json!(format!("{}:{}:{}", m.obis, m.class_id, m.attribute)),
                )
            })
            .collect();
        attrs.insert("obisMap".into(), Value::Object(obis_map));
        attrs.insert("deviceType".into(), json!(self.config.device_type));
        self.events
            .send(Event::Attributes {
                device: self.config.name.clone(),
                ts_ms,
                values: attrs,
            })
            .is_ok()
    }
}

/// The meter's clock now (Unix ms), `None` if it cannot be read or is not a time.
/// A refusal that trying again cannot cure, only a configuration change (Green Book 9.3.2,
/// acse-service-user diagnostics): the application context or the mechanism not taken, the
/// authentication failed or is required; and HLS failing its proof.
fn meter_time_ms(
    c: &mut Connection<Box<dyn Transport>>,
    utc_offset_min: i16,
) -> Result<Option<i64>, ClientError> {
    Ok(reads::read_clock(c)?
        .ok()
        .and_then(|t| t.to_unix_local(utc_offset_min))
        .map(|s| s * 1000))
}

fn delta(a: &NetStats, b: &NetStats) -> NetStats {
    NetStats {
        bytes_sent: b.bytes_sent - a.bytes_sent,
        bytes_received: b.bytes_received - a.bytes_received,
        frames_sent: b.frames_sent - a.frames_sent,
        frames_received: b.frames_received - a.frames_received,
        round_trips: b.round_trips - a.round_trips,
        timeouts: b.timeouts - a.timeouts,
        checksum_errors: b.checksum_errors.saturating_sub(a.checksum_errors),
        stale: b.stale - a.stale,
        gbt_blocks: b.gbt_blocks - a.gbt_blocks,
    }
}
