//! The one publisher thread: the single writer of the outbox and the owner of the MQTT
//! session(s).
//!
//! Every loop: take readings from the channel; commit them to the outbox in one transaction
//! when the batch is full or the oldest has waited `commit_interval_ms` (group commit); then
//! publish the oldest outbox entries (QoS 1, in order, within the payload and rate limits) and
//! delete each message's entries when its PUBACK arrives. While the broker is unreachable
//! nothing is deleted; on reconnect the backlog drains in order with its original timestamps.
//! A crash loses nothing committed; an entry published but not yet deleted when the process
//! dies is sent again (at-least-once: ThingsBoard overwrites the same key and timestamp).

use super::event::{now_ms, Event};
use super::status::Status;
use super::thingsboard::{self, Message};
use crate::store::outbox::{Entry, NewEntry};
use crate::store::settings::{BridgeSettings, PublishMode};
use crate::store::Store;
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use log::{error, info, warn};
use paho_mqtt as mqtt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping bridge keeps publishing what is left.
const FINAL_FLUSH: Duration = Duration::from_secs(3);
const OUTBOX_PAGE: usize = 2000;

struct Session {
    client: Option<mqtt::AsyncClient>,
    /// Gateway mode: devices announced with v1/gateway/connect in this MQTT session.
    announced: HashSet<String>,
    retry_at: Instant,
    failures: u32,
}

impl Session {
    fn new() -> Self {
        Session {
            client: None,
            announced: HashSet::new(),
            retry_at: Instant::now(),
            failures: 0,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct DeviceInfo {
    device_type: String,
    token: Option<String>,
}

pub struct Publisher {
    store: Store,
    settings: BridgeSettings,
    devices: HashMap<String, DeviceInfo>,
    revision: i64,
    status: Arc<Status>,
    gateway: Session,
    per_device: HashMap<String, Session>,
    /// Token bucket for the message rate limit.
    tokens: f64,
    last_refill: Instant,
    warned_no_token: HashSet<String>,
    /// Write-behind publishing in progress: entries have synthetic negative ids, PUBACKs are
    /// awaited until `direct_deadline` at most, and acknowledged ids are collected here.
    direct_deadline: Option<Instant>,
    direct_acked: HashSet<i64>,
}

/// How one publish ended.
enum Delivery {
    Acked,
    /// Write-behind: no PUBACK within the commit interval (the broker may still take it).
    Late,
    Failed,
}

impl Publisher {
    pub fn new(store: Store, status: Arc<Status>) -> crate::store::Result<Publisher> {
        let mut p = Publisher {
            settings: store.settings()?,
            store,
            devices: HashMap::new(),
            revision: -1,
            status,
            gateway: Session::new(),
            per_device: HashMap::new(),
            tokens: 1.0,
            last_refill: Instant::now(),
            warned_no_token: HashSet::new(),
            direct_deadline: None,
            direct_acked: HashSet::new(),
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
        let broker_changed = settings.mqtt_host != self.settings.mqtt_host
            || settings.mqtt_port != self.settings.mqtt_port
            || settings.mode != self.settings.mode
            || settings.gateway_token != self.settings.gateway_token
            || settings.client_id != self.settings.client_id
            || settings.mqtt_tls != self.settings.mqtt_tls
            || settings.mqtt_ca_file != self.settings.mqtt_ca_file
            || settings.mqtt_client_cert != self.settings.mqtt_client_cert
            || settings.mqtt_client_key != self.settings.mqtt_client_key
            || settings.mqtt_client_key_password != self.settings.mqtt_client_key_password
            || settings.mqtt_verify_hostname != self.settings.mqtt_verify_hostname;
        if broker_changed {
            self.disconnect_all();
        }
        self.settings = settings;
        let mode = if self.settings.mode == PublishMode::Gateway {
            "gateway"
        } else {
            "device"
        };
        self.status.update_publisher(|p| p.mode = mode);
        self.devices = self
            .store
            .meters()?
            .into_iter()
            .map(|m| {
                (
                    m.name,
                    DeviceInfo {
                        device_type: m.device_type,
                        token: m.access_token,
                    },
                )
            })
            .collect();
        self.revision = revision;
        Ok(())
    }

    pub fn run(mut self, events: Receiver<Event>) {
        let mut pending: Vec<NewEntry> = Vec::new();
        let mut oldest_pending = Instant::now();
        let mut closing = false;
        let mut last_reload = Instant::now();
        loop {
            match events.recv_timeout(Duration::from_millis(20)) {
                Ok(ev) => {
                    if pending.is_empty() {
                        oldest_pending = Instant::now();
                    }
                    pending.push(ev.into_entry());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => closing = true,
            }
            while pending.len() < self.settings.batch_max_readings {
                match events.try_recv() {
                    Ok(ev) => pending.push(ev.into_entry()),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closing = true;
                        break;
                    }
                }
            }
            let window = Duration::from_millis(self.settings.commit_interval_ms);
            // Write behind: after half the window (to batch), publish straight from memory and
            // commit only what the broker has not acknowledged by the end of the window.
            if self.settings.outbox_write_behind
                && !closing
                && !pending.is_empty()
                && (oldest_pending.elapsed() >= window / 2
                    || pending.len() >= self.settings.batch_max_readings)
            {
                self.publish_direct(&mut pending, oldest_pending + window);
            }
            let due = oldest_pending.elapsed() >= window;
            if !pending.is_empty()
                && (closing || due || pending.len() >= self.settings.batch_max_readings)
            {
                self.commit(&mut pending);
            }
            if last_reload.elapsed() >= Duration::from_secs(1) {
                if let Err(e) = self.reload() {
                    error!("publisher: reading configuration: {e}");
                }
                last_reload = Instant::now();
            }
            if closing {
                break;
            }
            self.publish_round(Instant::now() + Duration::from_millis(200));
        }
        self.commit(&mut pending);
        self.publish_round(Instant::now() + FINAL_FLUSH);
        self.refresh_outbox_status();
        self.disconnect_all();
        info!(
            "publisher: stopped, {} reading(s) left in the outbox",
            self.status.publisher().outbox_rows
        );
    }

    /// Write behind: publishes `pending` from memory when the outbox is empty and the broker
    /// connected (so order is kept and an outage still goes through the outbox), waiting for
    /// PUBACKs until `deadline`. What is acknowledged is dropped; the rest is committed now
    /// (an unacknowledged message may still arrive: then its readings are sent twice, with the
    /// same timestamps, as after any crash).
    fn publish_direct(&mut self, pending: &mut Vec<NewEntry>, deadline: Instant) {
        let publisher = self.status.publisher();
        if !publisher.connected || publisher.outbox_rows > 0 || self.settings.mqtt_host.is_empty() {
            return;
        }
        let entries: Vec<Entry> = pending
            .iter()
            .enumerate()
            .map(|(i, e)| Entry {
                id: -(i as i64) - 1,
                device: e.device.clone(),
                ts_ms: e.ts_ms,
                kind: e.kind,
                payload: e.payload.clone(),
            })
            .collect();
        self.direct_acked.clear();
        self.direct_deadline = Some(deadline);
        match self.settings.mode {
            PublishMode::Gateway => self.publish_gateway(&entries, deadline),
            PublishMode::Device => self.publish_devices(&entries, deadline),
        };
        self.direct_deadline = None;
        let acked = std::mem::take(&mut self.direct_acked);
        let mut index = 0i64;
        pending.retain(|_| {
            index += 1;
            !acked.contains(&-index)
        });
        self.commit(pending);
    }

    /// The group commit. A failed commit (disk full) keeps the readings in memory and retries:
    /// the meters block on the channel meanwhile rather than lose data.
    fn commit(&mut self, pending: &mut Vec<NewEntry>) {
        if pending.is_empty() {
            return;
        }
        match self.store.outbox_insert(pending, &self.settings, now_ms()) {
            Ok(out) => {
                if out.dropped_full + out.dropped_age > 0 {
                    warn!(
                        "outbox bound reached: dropped {} reading(s) (full, policy {:?}) and {} (older than {} s)",
                        out.dropped_full, self.settings.outbox_full_policy, out.dropped_age, self.settings.outbox_max_age_s
                    );
                    self.status
                        .update_publisher(|p| p.dropped += out.dropped_full + out.dropped_age);
                }
                pending.clear();
                self.refresh_outbox_status();
            }
            Err(e) => {
                error!(
                    "outbox commit failed ({} reading(s) kept in memory, retrying): {e}",
                    pending.len()
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }

    fn refresh_outbox_status(&self) {
        if let Ok(s) = self.store.outbox_stats() {
            self.status.update_publisher(|p| {
                p.outbox_rows = s.rows;
                p.oldest_unsent_ms = s.oldest_ts_ms;
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

    /// Publishes outbox entries until `deadline`, the outbox is empty, the rate limit is
    /// reached, or the broker fails.
    fn publish_round(&mut self, deadline: Instant) {
        let disabled = self.settings.mqtt_host.is_empty();
        self.status
            .publishing_disabled
            .store(disabled, std::sync::atomic::Ordering::Relaxed);
        if disabled {
            return;
        }
        while Instant::now() < deadline {
            let entries = match self.store.outbox_oldest(0, OUTBOX_PAGE) {
                Ok(e) if !e.is_empty() => e,
                Ok(_) => return,
                Err(e) => {
                    error!("publisher: reading the outbox: {e}");
                    return;
                }
            };
            let progressed = match self.settings.mode {
                PublishMode::Gateway => self.publish_gateway(&entries, deadline),
                PublishMode::Device => self.publish_devices(&entries, deadline),
            };
            self.refresh_outbox_status();
            if !progressed {
                return;
            }
        }
    }

    fn publish_gateway(&mut self, entries: &[Entry], deadline: Instant) -> bool {
        let settings = self.settings.clone();
        let Some(client) = connect(
            &mut self.gateway,
            &settings,
            &settings.client_id,
            settings.gateway_token.as_deref(),
            &self.status,
        ) else {
            return false;
        };
        let device_of: HashMap<i64, &str> =
            entries.iter().map(|e| (e.id, e.device.as_str())).collect();
        let mut progressed = false;
        for msg in thingsboard::gateway_messages(entries, settings.max_payload_bytes) {
            if Instant::now() >= deadline || !self.take_token() {
                break;
            }
            let devices: HashSet<&str> = msg
                .entry_ids
                .iter()
                .filter_map(|id| device_of.get(id).copied())
                .collect();
            for d in devices {
                if !self.gateway.announced.contains(d) {
                    let device_type = self
                        .devices
                        .get(d)
                        .map_or("electricity-meter", |i| i.device_type.as_str());
                    let connect_msg = mqtt::Message::new(
                        thingsboard::GATEWAY_CONNECT,
                        thingsboard::gateway_connect(d, device_type),
                        1,
                    );
                    match self.deliver(&client, connect_msg) {
                        Delivery::Acked => {}
                        Delivery::Late => return progressed,
                        Delivery::Failed => {
                            self.gateway.client = None;
                            return progressed;
                        }
                    }
                    self.gateway.announced.insert(d.to_string());
                }
            }
            match self.send(&client, &msg, &device_of) {
                Delivery::Acked => progressed = true,
                Delivery::Late => return progressed,
                Delivery::Failed => {
                    self.gateway.client = None;
                    return progressed;
                }
            }
        }
        progressed
    }

    fn publish_devices(&mut self, entries: &[Entry], deadline: Instant) -> bool {
        let settings = self.settings.clone();
        let mut by_device: Vec<(String, Vec<Entry>)> = Vec::new();
        for e in entries {
            match by_device.iter_mut().find(|(d, _)| *d == e.device) {
                Some((_, v)) => v.push(e.clone()),
                None => by_device.push((e.device.clone(), vec![e.clone()])),
            }
        }
        let device_of: HashMap<i64, &str> =
            entries.iter().map(|e| (e.id, e.device.as_str())).collect();
        let mut progressed = false;
        for (device, list) in by_device {
            let Some(token) = self.devices.get(&device).and_then(|i| i.token.clone()) else {
                if self.warned_no_token.insert(device.clone()) {
                    warn!("meter {device:?} has no access_token: its readings stay in the outbox (device mode)");
                }
                continue;
            };
            let session = self
                .per_device
                .entry(device.clone())
                .or_insert_with(Session::new);
            let client_id = format!("{}-{device}", settings.client_id);
            let Some(client) = connect(session, &settings, &client_id, Some(&token), &self.status)
            else {
                continue;
            };
            for msg in thingsboard::device_messages(&device, &list, settings.max_payload_bytes) {
                if Instant::now() >= deadline || !self.take_token() {
                    return progressed;
                }
                match self.send(&client, &msg, &device_of) {
                    Delivery::Acked => progressed = true,
                    Delivery::Late => break,
                    Delivery::Failed => {
                        if let Some(s) = self.per_device.get_mut(&device) {
                            s.client = None;
                        }
                        break;
                    }
                }
            }
        }
        progressed
    }

    /// Publishes one message and, on PUBACK, deletes its entries (or, written behind, notes
    /// them as acknowledged).
    fn send(
        &mut self,
        client: &mqtt::AsyncClient,
        msg: &Message,
        device_of: &HashMap<i64, &str>,
    ) -> Delivery {
        let m = mqtt::Message::new(msg.topic, msg.payload.clone(), 1);
        match self.deliver(client, m) {
            Delivery::Acked => {}
            other => return other,
        }
        if self.direct_deadline.is_some() {
            self.direct_acked.extend(msg.entry_ids.iter().copied());
        } else if let Err(e) = self.store.outbox_delete(&msg.entry_ids) {
            // Published but still stored: it will be sent again, which is safe.
            error!("publisher: deleting acknowledged entries: {e}");
        }
        let telemetry = msg.topic.ends_with("telemetry");
        let mut per_device: HashMap<&str, u64> = HashMap::new();
        if telemetry {
            for id in &msg.entry_ids {
                if let Some(d) = device_of.get(id) {
                    *per_device.entry(d).or_default() += 1;
                }
            }
        }
        let n = if telemetry {
            msg.entry_ids.len() as u64
        } else {
            0
        };
        self.status.update_publisher(|p| {
            p.published_messages += 1;
            p.published_readings += n;
            p.mqtt_bytes += msg.payload.len() as u64;
        });
        let total: u64 = per_device.values().sum();
        for (d, n) in per_device {
            let share = msg.payload.len() as u64 * n / total.max(1);
            self.status.update_meter(d, |m| {
                m.published += n;
                m.mqtt_messages += 1;
                m.mqtt_bytes += share;
            });
        }
        Delivery::Acked
    }

    /// Publishes with QoS 1 and waits for the PUBACK (written behind: until the deadline).
    fn deliver(&mut self, client: &mqtt::AsyncClient, msg: mqtt::Message) -> Delivery {
        let wait = match self.direct_deadline {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(20), ACK_TIMEOUT),
            None => ACK_TIMEOUT,
        };
        match client.publish(msg).wait_for(wait) {
            Ok(_) => Delivery::Acked,
            Err(mqtt::Error::Timeout) if self.direct_deadline.is_some() => Delivery::Late,
            Err(e) => {
                warn!("publisher: publish failed, will retry after reconnecting: {e}");
                self.status.update_publisher(|p| {
                    p.failed_publishes += 1;
                    p.connected = false;
                });
                Delivery::Failed
            }
        }
    }

    fn disconnect_all(&mut self) {
        for s in std::iter::once(&mut self.gateway).chain(self.per_device.values_mut()) {
            if let Some(c) = s.client.take() {
                let _ = c.disconnect(None).wait_for(Duration::from_secs(2));
            }
            s.announced.clear();
        }
        self.status.update_publisher(|p| p.connected = false);
    }
}

/// The connected client of `session`, connecting (with backoff) when needed.
fn connect(
    session: &mut Session,
    settings: &BridgeSettings,
    client_id: &str,
    token: Option<&str>,
    status: &Status,
) -> Option<mqtt::AsyncClient> {
    if let Some(c) = &session.client {
        if c.is_connected() {
            return Some(c.clone());
        }
        session.client = None;
        session.announced.clear();
    }
    if Instant::now() < session.retry_at {
        return None;
    }
    let uri = super::tls::broker_uri(settings);
    let create = mqtt::CreateOptionsBuilder::new()
        .server_uri(&uri)
        .client_id(client_id)
        // Our outbox is the persistence: Paho keeps nothing on disk.
        .persistence(mqtt::PersistenceType::None)
        .finalize();
    let result = mqtt::AsyncClient::new(create)
        .map_err(|e| e.to_string())
        .and_then(|client| {
            let mut opts = mqtt::ConnectOptionsBuilder::new();
            opts.keep_alive_interval(Duration::from_secs(30))
                .clean_session(true)
                .connect_timeout(Duration::from_secs(5));
            if settings.mqtt_tls {
                opts.ssl_options(super::tls::ssl_options(settings)?);
            }
            if let Some(t) = token {
                opts.user_name(t);
            }
            client
                .connect(opts.finalize())
                .wait_for(Duration::from_secs(10))
                .map(|_| client)
                .map_err(|e| super::tls::explain_failure(settings, &e.to_string()))
        });
    match result {
        Ok(client) => {
            info!("publisher: connected to {uri} as {client_id:?}");
            session.failures = 0;
            session.client = Some(client.clone());
            status.update_publisher(|p| {
                p.connected = true;
                p.reconnects += 1;
            });
            Some(client)
        }
        Err(e) => {
            session.failures += 1;
            let wait = Duration::from_secs(1 << session.failures.min(5));
            session.retry_at = Instant::now() + wait;
            warn!("publisher: cannot connect to {uri}: {e} (retrying in {} s; readings are kept in the outbox)", wait.as_secs());
            status.update_publisher(|p| p.connected = false);
            None
        }
    }
}
