//! The in-memory status snapshot: written by the workers and the publisher, read by the status
//! log lines (and the status page). Never read from the database.

use super::trace_ring::TraceRing;
use crate::client::NetStats;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MeterState {
    #[default]
    Connecting,
    Polling,
    Backoff,
    BreakerOpen,
    /// The meter refused our credentials for good: not tried again before
    /// `meter.auth_retry_s` or a configuration change.
    NeedsConfiguration,
    Disabled,
}

impl MeterState {
    pub fn as_str(self) -> &'static str {
        match self {
            MeterState::Connecting => "connecting",
            MeterState::Polling => "polling",
            MeterState::Backoff => "backoff",
            MeterState::BreakerOpen => "breaker-open",
            MeterState::NeedsConfiguration => "needs-configuration",
            MeterState::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct MeterStatus {
    pub state: MeterState,
    pub cycles: u64,
    pub successes: u64,
    pub failures: u64,
    pub consecutive_failures: u32,
    pub reconnects: u64,
    pub skipped_slots: u64,
    pub readings_sent: u64,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    /// DLMS traffic of this meter, all connections summed.
    pub net: NetStats,
    /// Readings of this meter acknowledged by the broker.
    pub published: u64,
    /// MQTT messages that carried readings of this meter, and this meter's share of their
    /// payload bytes (a gateway message shared by n meters counts 1/n of it to each by entries).
    pub mqtt_messages: u64,
    pub mqtt_bytes: u64,
    /// The latest values read (telemetry key -> JSON value).
    pub last_values: serde_json::Map<String, serde_json::Value>,
    /// The unit of each value that has one (telemetry key -> symbol, e.g. "Wh").
    pub units: serde_json::Map<String, serde_json::Value>,
    /// Why a configured profile cannot be read, while it cannot.
    pub profile_error: Option<String>,
    /// The meter's polling interval, for health checks.
    pub interval_s: u32,
    /// Secured meters: the next client invocation counter (not a secret; shows that it moves
    /// and how far it is from the end of the space).
    pub invocation_counter: Option<u32>,
    /// The meter's clock minus the gateway's, in seconds, at the last check.
    pub clock_drift_s: Option<i64>,
    /// Per profile (OBIS): the newest row collected (Unix s) and the rows collected.
    pub profiles: BTreeMap<String, ProfileProgress>,
    /// The last [`RECENT_ERRORS`] errors with their times (Unix ms).
    pub recent_errors: std::collections::VecDeque<(i64, String)>,
    /// The meter's refusal of the latest association attempt, until an association succeeds.
    pub rejected: Option<String>,
    /// Associations refused since start.
    pub rejections: u64,
}

/// Errors a meter's status keeps with their times.
pub const RECENT_ERRORS: usize = 5;

impl MeterStatus {
    /// Sets the last error and keeps it among the recent ones.
    pub fn note_error(&mut self, error: String) {
        if self.recent_errors.len() == RECENT_ERRORS {
            self.recent_errors.pop_front();
        }
        self.recent_errors
            .push_back((crate::clock::now_ms(), error.clone()));
        self.last_error = Some(error);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileProgress {
    pub newest_row_s: Option<i64>,
    pub rows: u64,
}

#[derive(Debug, Clone, Default)]
pub struct PublisherStatus {
    pub connected: bool,
    /// "gateway" or "device".
    pub mode: &'static str,
    /// Readings committed to the outbox and not yet acknowledged.
    pub outbox_rows: u64,
    /// Readings accepted and held in memory (write-behind, or waiting for a commit).
    pub in_memory: u64,
    /// The reading time of the oldest reading not acknowledged, in memory or in the outbox.
    pub oldest_unsent_ms: Option<i64>,
    /// Set while outbox commits fail (disk full, I/O error): the error.
    pub commit_error: Option<String>,
    /// The publisher thread's last pass (it passes at least every 0.5 s unless stuck).
    pub heartbeat: Option<std::time::Instant>,
    pub published_messages: u64,
    pub published_readings: u64,
    pub failed_publishes: u64,
    pub reconnects: u64,
    pub dropped: u64,
    pub mqtt_bytes: u64,
    /// Messages from the broker dropped unread (too large, over a device's rate, inbox full).
    pub incoming_dropped: u64,
    /// Readings kept back because one of their values is larger than any message may be.
    pub unfit: u64,
}

#[derive(Debug)]
pub struct Status {
    pub meters: Mutex<BTreeMap<String, MeterStatus>>,
    pub publisher: Mutex<PublisherStatus>,
    pub started: std::time::Instant,
    /// Publishing switched off (no broker configured): the outbox alone counts as working.
    pub publishing_disabled: std::sync::atomic::AtomicBool,
    /// `health.max_unsent_age_s`, kept current by the outbox thread.
    pub max_unsent_age_s: std::sync::atomic::AtomicU64,
    /// Whether the gateway's clock can stamp readings.
    pub gateway_clock: crate::bridge::gateway_clock::GatewayClock,
    /// Shared serial lines, while meter threads use them.
    pub buses: Mutex<Vec<std::sync::Weak<crate::client::bus::Bus>>>,
    /// Pushed notifications from senders that are no configured meter.
    pub push_unknown: std::sync::atomic::AtomicU64,
    /// Pushed notifications over TCP naming a configured meter that its keys or replay
    /// protection refused (not the meter's failures: anyone on the LAN can send them).
    pub push_refused: std::sync::atomic::AtomicU64,
    /// The last hour of each meter's numeric values (for the page's charts).
    pub history: Mutex<std::collections::HashMap<String, crate::status::history::MeterHistory>>,
    /// The alarms (kept by the alarm thread, acknowledged through the API).
    pub alarms: Mutex<crate::alarm::book::AlarmBook>,
    /// Each meter's last frames (issue 26), recorded by its thread.
    pub traces: Mutex<std::collections::HashMap<String, std::sync::Arc<TraceRing>>>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            meters: Mutex::default(),
            publisher: Mutex::default(),
            started: std::time::Instant::now(),
            publishing_disabled: std::sync::atomic::AtomicBool::new(false),
            max_unsent_age_s: std::sync::atomic::AtomicU64::new(120),
            gateway_clock: crate::bridge::gateway_clock::GatewayClock::new(0),
            buses: Mutex::default(),
            push_unknown: std::sync::atomic::AtomicU64::new(0),
            push_refused: std::sync::atomic::AtomicU64::new(0),
            history: Mutex::default(),
            alarms: Mutex::default(),
            traces: Mutex::default(),
        }
    }
}

impl Status {
    pub fn add_bus(&self, bus: &std::sync::Arc<crate::client::bus::Bus>) {
        let mut buses = self.buses.lock().unwrap_or_else(|e| e.into_inner());
        buses.retain(|b| b.strong_count() > 0);
        buses.push(std::sync::Arc::downgrade(bus));
    }

    /// The shared lines in use: (device, what they did).
    pub fn bus_figures(&self) -> Vec<(String, crate::client::bus::BusFigures)> {
        let buses = self.buses.lock().unwrap_or_else(|e| e.into_inner());
        buses
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .map(|b| (b.path.clone(), b.figures()))
            .collect()
    }

    pub fn update_meter(&self, name: &str, f: impl FnOnce(&mut MeterStatus)) {
        let mut m = self.meters.lock().unwrap_or_else(|e| e.into_inner());
        f(m.entry(name.to_string()).or_default());
    }

    pub fn update_publisher(&self, f: impl FnOnce(&mut PublisherStatus)) {
        f(&mut self.publisher.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Updates a meter's entry only if it exists: what arrives after a meter was removed
    /// (a late PUBACK) must not bring it back.
    /// `update_existing_meter` for many meters under one lock: `f` gets each meter's item.
    pub fn update_existing_meters<'a, T>(
        &self,
        items: impl IntoIterator<Item = (&'a str, T)>,
        mut f: impl FnMut(T, &mut MeterStatus),
    ) {
        let mut m = self.meters.lock().unwrap_or_else(|e| e.into_inner());
        for (name, item) in items {
            if let Some(s) = m.get_mut(name) {
                f(item, s);
            }
        }
    }

    pub fn update_existing_meter(&self, name: &str, f: impl FnOnce(&mut MeterStatus)) {
        let mut m = self.meters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = m.get_mut(name) {
            f(entry);
        }
    }

    pub fn remove_meter(&self, name: &str) {
        self.meters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        self.traces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// The meter's trace ring, made on first use (a restarted thread keeps the old frames:
    /// they are what explains the restart).
    pub fn trace_ring(&self, name: &str) -> std::sync::Arc<TraceRing> {
        self.traces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// The meter's trace as JSON (an empty one for a meter that has not connected yet).
    pub fn trace_json(&self, name: &str) -> serde_json::Value {
        let ring = self
            .traces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned();
        ring.unwrap_or_default().to_json()
    }

    /// Keeps a reading's numeric values for the charts.
    pub fn record_history(
        &self,
        name: &str,
        ts_ms: i64,
        values: &serde_json::Map<String, serde_json::Value>,
    ) {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_string())
            .or_default()
            .record(ts_ms, values);
    }

    /// A meter's chart data (JSON), if it has any.
    pub fn history_json(&self, name: &str) -> Option<serde_json::Value> {
        let now = crate::clock::now_ms();
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|h| h.to_json(now))
    }

    pub fn with_alarms<R>(&self, f: impl FnOnce(&mut crate::alarm::book::AlarmBook) -> R) -> R {
        f(&mut self.alarms.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads every meter's entry under the lock, without copying the map (at 1,000 meters a
    /// copy per /status request was most of its memory). Keep `f` short: meter threads wait.
    pub fn with_meters<R>(&self, f: impl FnOnce(&BTreeMap<String, MeterStatus>) -> R) -> R {
        f(&self.meters.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn meter_names(&self) -> Vec<String> {
        self.with_meters(|m| m.keys().cloned().collect())
    }

    pub fn meter(&self, name: &str) -> Option<MeterStatus> {
        self.with_meters(|m| m.get(name).cloned())
    }

    pub fn publisher(&self) -> PublisherStatus {
        self.publisher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One log line per meter (the periodic status report).
    pub fn report_lines(&self) -> Vec<String> {
        let p = self.publisher();
        let mut lines = vec![format!(
            "publisher: {} outbox={} memory={} published={} failed={} reconnects={} dropped={}",
            if self
                .publishing_disabled
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                "off (mqtt.host is empty)"
            } else if p.connected {
                "connected"
            } else {
                "disconnected"
            },
            p.outbox_rows,
            p.in_memory,
            p.published_readings,
            p.failed_publishes,
            p.reconnects,
            p.dropped
        )];
        for name in self.meter_names() {
            let Some(m) = self.meter(&name) else { continue };
            let rate = if m.cycles == 0 {
                0.0
            } else {
                100.0 * m.successes as f64 / m.cycles as f64
            };
            lines.push(format!(
                "meter {name:?}: {} cycles={} success={rate:.1}% published={} reconnects={} bytes_tx={} bytes_rx={}{}",
                m.state.as_str(),
                m.cycles,
                m.published,
                m.reconnects,
                m.net.bytes_sent,
                m.net.bytes_received,
                m.last_error.as_deref().map(|e| format!(" last_error={e:?}")).unwrap_or_default()
            ));
        }
        lines
    }
}

pub(crate) fn add_net(total: &mut NetStats, delta: &NetStats) {
    total.bytes_sent += delta.bytes_sent;
    total.bytes_received += delta.bytes_received;
    total.frames_sent += delta.frames_sent;
    total.frames_received += delta.frames_received;
    total.round_trips += delta.round_trips;
    total.timeouts += delta.timeouts;
    total.checksum_errors += delta.checksum_errors;
    total.stale += delta.stale;
}
