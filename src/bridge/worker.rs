//! One meter's thread: connect, associate, poll on a fixed schedule, send readings to the
//! publisher. Failures lead to reconnects, exponential backoff with jitter, and a circuit
//! breaker that pauses a meter reconnecting too often; none of it touches other meters.

use super::counter::CounterLease;
use super::event::{Event, Reading};
use super::poll::{Failed, PollCycle, Step, BREAKER_PAUSE};
use crate::client::reads::{self, ScalerCache, Target};
use crate::client::{json, ClientError, Connection, Heard, MeterTarget, NetStats, Transport};
use crate::clock::now_ms;
use crate::config::values::Ciphering;
use crate::config::MeterConfig;
use crate::cosem::Obis;
use crate::status::state::{add_net, MeterState, Status};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{info, warn};
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
}

fn targets_of(config: &MeterConfig) -> Vec<Target> {
    config
        .measurements
        .iter()
        .map(|m| Target::new(m.class_id, m.obis, m.attribute))
        .collect()
}

fn interval_of(config: &MeterConfig) -> Duration {
    Duration::from_secs(u64::from(config.interval_s))
}

pub struct Worker {
    config: MeterConfig,
    targets: Vec<Target>,
    events: Sender<Event>,
    control: Receiver<Control>,
    status: Arc<Status>,
    db: std::path::PathBuf,
}

impl Worker {
    pub fn new(
        config: MeterConfig,
        events: Sender<Event>,
        control: Receiver<Control>,
        status: Arc<Status>,
        db: &std::path::Path,
    ) -> Worker {
        let targets = targets_of(&config);
        Worker {
            config,
            targets,
            events,
            control,
            status,
            db: db.to_path_buf(),
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
        lease.ensure(at_least)?;
        sec.invocation_counter = lease.next.clone();
        sec.counter_limit = Some(lease.limit.clone());
        Ok(target)
    }

    /// Sleeps until `t`, a stop request or a live change of configuration.
    fn sleep_until(&self, t: Instant) -> Wake {
        let wait = t.saturating_duration_since(Instant::now());
        match self.control.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => Wake::Due,
            Ok(Control::Stop) | Err(RecvTimeoutError::Disconnected) => Wake::Stop,
            Ok(Control::Update(config)) => Wake::Update(config),
        }
    }

    /// Takes up a change of live fields only (`config::fields`: interval, measurements,
    /// device type, token) without touching the association.
    fn apply_live(&mut self, config: MeterConfig, cycle: &mut PollCycle) {
        if config.interval_s != self.config.interval_s {
            cycle.set_interval(Instant::now(), interval_of(&config));
        }
        self.targets = targets_of(&config);
        info!(
            "meter {:?}: configuration change applied live (association kept)",
            config.name
        );
        self.config = config;
    }

    fn set_state(&self, state: MeterState) {
        self.status
            .update_meter(&self.config.name, |m| m.state = state);
    }

    pub fn run(mut self) {
        let name = self.config.name.clone();
        let Some(target) = self.config.target() else {
            warn!("meter {name:?}: invalid configuration, not polled");
            return;
        };
        let lease = target
            .session
            .security
            .as_ref()
            .map(|sec| CounterLease::new(&name, &sec.keys, self.db.clone()));
        let seed = name
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        let mut cycle = PollCycle::new(Instant::now(), interval_of(&self.config), seed);
        let mut conn: Option<Connection<Box<dyn Transport>>> = None;
        // Traffic of the current connection already added to the status.
        let mut counted = NetStats::default();
        let mut cache = ScalerCache::default();
        let mut identity_sent = false;
        info!(
            "meter {name:?}: polling {} every {} s",
            target.endpoint, self.config.interval_s
        );
        loop {
            match self.sleep_until(cycle.wake_at()) {
                Wake::Due => {}
                Wake::Stop => break,
                Wake::Update(config) => {
                    self.apply_live(*config, &mut cycle);
                    continue;
                }
            }
            let slot = cycle.begin(Instant::now());
            if slot.skipped > 0 {
                self.status
                    .update_meter(&name, |m| m.skipped_slots += slot.skipped);
            }
            if slot.step == Step::Paused {
                self.set_state(MeterState::BreakerOpen);
                continue;
            }
            let ts_ms = now_ms();
            self.status.update_meter(&name, |m| m.cycles += 1);
            if slot.step == Step::Connect {
                self.set_state(MeterState::Connecting);
                let opened = self
                    .association_target(&target, lease.as_ref())
                    .and_then(|t| t.connect());
                match opened {
                    Ok(c) => {
                        cache.clear();
                        counted = NetStats::default();
                        conn = Some(c);
                        cycle.connected();
                        self.status.update_meter(&name, |m| m.reconnects += 1);
                    }
                    Err(e) => {
                        // The failed connection's own counters went with it: keep what the
                        // error says (a time-out, and any frames with bad checksums).
                        if let ClientError::NoAnswer { heard, .. } = &e {
                            self.status.update_meter(&name, |m| {
                                m.net.timeouts += 1;
                                if let Heard::BadChecksums(n) = heard {
                                    m.net.checksum_errors += n;
                                }
                            });
                        }
                        let f = cycle.connect_failed(Instant::now());
                        self.report_failure(&e, f);
                        if f.breaker_opened {
                            warn!("meter {name:?}: too many reconnects in an hour, pausing for {} min", BREAKER_PAUSE.as_secs() / 60);
                            self.set_state(MeterState::BreakerOpen);
                        }
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            if let Some(lease) = &lease {
                // Room for this cycle's counters, reserved before they are used.
                if let Err(e) = lease.ensure(0) {
                    let f = cycle.read_failed(Instant::now(), false);
                    self.report_failure(&e, f);
                    continue;
                }
            }
            if !identity_sent {
                identity_sent = self.send_identity(c, ts_ms);
            }
            let result = reads::read_values(c, &self.targets, &mut cache);
            let now_stats = c.stats();
            if let Some(lease) = &lease {
                let next = lease.next.load(std::sync::atomic::Ordering::SeqCst);
                self.status
                    .update_meter(&name, |m| m.invocation_counter = Some(next));
            }
            self.status
                .update_meter(&name, |m| add_net(&mut m.net, &delta(&counted, &now_stats)));
            counted = now_stats;
            match result {
                Ok(values) => {
                    if !self.deliver(ts_ms, values) {
                        break;
                    }
                    // Keep the association between polls only if the next poll comes before
                    // the meter's inactivity timeout would drop it (Microstar: 180 s).
                    let keep_open = self.config.interval_s < self.config.inactivity_timeout_s;
                    if cycle.read_ok(keep_open) {
                        if let Some(mut c) = conn.take() {
                            c.release();
                        }
                    }
                }
                Err(e) => {
                    let f = cycle.read_failed(Instant::now(), e.is_transient());
                    if !cycle.is_open() {
                        conn = None; // dropped: released best-effort, reconnected next slot
                    }
                    self.report_failure(&e, f);
                }
            }
        }
        if let Some(mut c) = conn.take() {
            c.release();
        }
        info!("meter {name:?}: stopped");
    }

    /// A successful read: the values go to the outbox thread and the status. `false` when the
    /// bridge is stopping (the channel is closed).
    fn deliver(&self, ts_ms: i64, values: Vec<Result<reads::Value, reads::ReadError>>) -> bool {
        let name = &self.config.name;
        let mut map = Map::new();
        let mut errors = Vec::new();
        for ((meas, t), v) in self
            .config
            .measurements
            .iter()
            .zip(&self.targets)
            .zip(values)
        {
            match v {
                Ok(v) => {
                    map.insert(meas.key.clone(), json::value(&v).0);
                }
                Err(e) => errors.push(format!("{} ({}): {e}", meas.key, t.obis)),
            }
        }
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
        self.status.update_meter(name, |m| {
            m.state = MeterState::Polling;
            m.successes += 1;
            m.consecutive_failures = 0;
            if got {
                m.readings_sent += 1;
                m.last_success_ms = Some(ts_ms);
                m.last_values = latest;
            }
            m.last_error = errors.first().cloned();
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
        self.status.update_meter(&self.config.name, |m| {
            m.failures += 1;
            m.consecutive_failures = n;
            m.last_error = Some(e.to_string());
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
        ];
        let targets: Vec<Target> = ids.iter().map(|(_, t)| *t).collect();
        let Ok(values) = reads::read_raw(c, &targets) else {
            return false;
        };
        let mut attrs = Map::new();
        for ((key, _), v) in ids.iter().zip(values) {
            if let Ok(d) = v {
                attrs.insert((*key).into(), json::data(&d));
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
    }
}
