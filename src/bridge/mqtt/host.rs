//! What the core asks of the rest of the bridge, done on the publisher thread: answers to the
//! outbox thread, RPCs handed to meter threads, gateway calls, scans, shared attributes
//! applied through the store, the gateway's figures, and the status counters.

use super::core::{CallRefusal, Command, Count, Input};
use super::{Configuration, FromPublisher, ToPublisher};
use crate::bridge::rpc::{GatewayCall, ReplyTo};
use crate::status::state::{MeterState, Status};
use crate::store::Store;
use crossbeam_channel::{Sender, TrySendError};
use log::{info, warn};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub struct Host {
    store: Store,
    status: Arc<Status>,
    answers: Sender<FromPublisher>,
    /// This thread's own channel (a scan answers through it).
    inbox: Sender<ToPublisher>,
    /// Meter threads' RPC queues, by meter name (kept by the supervisor).
    routes: crate::bridge::Routes,
    allow_remote_rpc_write: bool,
    /// The setting `scan.allowed`: the blocks a scan RPC may probe.
    scan_allowed: String,
    /// When the inbox overflow was last logged, and what was dropped since.
    overflow_logged: Option<(std::time::Instant, u64)>,
}

impl Host {
    pub fn new(
        store: Store,
        status: Arc<Status>,
        answers: Sender<FromPublisher>,
        inbox: Sender<ToPublisher>,
        routes: crate::bridge::Routes,
    ) -> Host {
        Host {
            store,
            status,
            answers,
            inbox,
            routes,
            allow_remote_rpc_write: false,
            scan_allowed: "auto".into(),
            overflow_logged: None,
        }
    }

    pub fn configured(&mut self, config: &Configuration) {
        self.allow_remote_rpc_write = config.settings.allow_remote_rpc_write;
        self.scan_allowed = config.settings.scan_allowed.clone();
    }

    pub fn heartbeat(&self) {
        self.status
            .update_publisher(|p| p.heartbeat = Some(std::time::Instant::now()));
    }

    pub fn stopped(&self) {
        self.status.update_publisher(|p| p.connected = false);
    }

    /// Messages the library's thread could not hand over (the inbox was full).
    /// Logged at most every 10 s, with the count since the last line.
    pub fn inbox_overflow(&mut self, n: u64) {
        self.count(Count::IncomingDropped(n));
        let now = std::time::Instant::now();
        let (at, held) = self
            .overflow_logged
            .unwrap_or((now - std::time::Duration::from_secs(10), 0));
        if now.duration_since(at) >= std::time::Duration::from_secs(10) {
            warn!("publisher: {} message(s) from the broker dropped: more arrive than the gateway takes (RPC or attribute flood)", held + n);
            self.overflow_logged = Some((now, 0));
        } else {
            self.overflow_logged = Some((at, held + n));
        }
    }

    /// Does what the core asked; some answers come back as an input.
    pub fn execute(&mut self, c: Command) -> Option<Input> {
        match c {
            Command::Answer(list) => {
                let _ = self.answers.send(FromPublisher::Answers(list));
            }
            Command::Connected(up) => {
                let _ = self.answers.send(FromPublisher::Connected(up));
            }
            Command::Unpark => {
                let _ = self.answers.send(FromPublisher::Unpark);
            }
            Command::CallMeter { device, call } => {
                let queue = self
                    .routes
                    .lock()
                    .ok()
                    .and_then(|r| r.get(&device).cloned());
                let reply = call.reply.clone();
                let why = match queue {
                    None => CallRefusal::NotRunning,
                    Some(q) => match q.try_send(call) {
                        Ok(()) => return None,
                        Err(TrySendError::Full(_)) => CallRefusal::Busy,
                        Err(TrySendError::Disconnected(_)) => CallRefusal::Restarting,
                    },
                };
                return Some(Input::MeterCallRefused { reply, why });
            }
            Command::GatewayCall { call, reply } => {
                let result = self.gateway_call(&call);
                info!(
                    "rpc: gateway {call:?} -> {}",
                    if result.is_ok() { "ok" } else { "error" }
                );
                return Some(Input::RpcReply { reply, result });
            }
            Command::StartScan {
                hosts,
                ports,
                reply,
            } => return self.start_scan(hosts, ports, reply),
            Command::ApplyAttributes {
                session,
                device,
                data,
            } => {
                let result = self
                    .store
                    .meter(&device)
                    .map_err(|e| e.to_string())
                    .and_then(|meter| {
                        let m = super::shared_attributes::apply(
                            &meter,
                            &data,
                            self.allow_remote_rpc_write,
                        )?;
                        if m == meter {
                            return Ok(false);
                        }
                        self.store
                            .update_meter(&m)
                            .map(|()| true)
                            .map_err(|e| e.to_string())
                    });
                return Some(Input::AttributesApplied {
                    session,
                    device,
                    data,
                    result,
                    at_ms: crate::clock::now_ms(),
                });
            }
            Command::CollectStats => return Some(Input::Stats(self.stats())),
            Command::Count(c) => self.count(c),
            Command::State {
                any_up,
                disabled,
                gateway_mode,
            } => {
                self.status.update_publisher(|p| {
                    p.connected = any_up;
                    p.mode = if gateway_mode { "gateway" } else { "device" };
                });
                self.status
                    .publishing_disabled
                    .store(disabled, Ordering::Relaxed);
            }
            // The driver's own.
            Command::Connect { .. }
            | Command::Disconnect { .. }
            | Command::Subscribe { .. }
            | Command::Publish { .. }
            | Command::Exit => {}
        }
        None
    }

    fn count(&mut self, c: Count) {
        match c {
            Count::Delivered {
                bytes,
                telemetry,
                per_device,
            } => {
                let n: u64 = per_device.iter().map(|(_, n)| n).sum();
                self.status.update_publisher(|p| {
                    p.published_messages += 1;
                    p.published_readings += n;
                    p.mqtt_bytes += bytes;
                });
                let share = bytes / (per_device.len().max(1) as u64);
                // Never creates an entry: a meter removed meanwhile stays removed.
                self.status.update_existing_meters(
                    per_device.iter().map(|(d, n)| (d.as_str(), *n)),
                    |n, m| {
                        if telemetry {
                            m.published += n;
                        }
                        m.mqtt_messages += 1;
                        m.mqtt_bytes += share;
                    },
                );
            }
            Count::FailedPublish => self.status.update_publisher(|p| p.failed_publishes += 1),
            Count::Reconnect => self.status.update_publisher(|p| p.reconnects += 1),
            Count::IncomingDropped(n) => self.status.update_publisher(|p| p.incoming_dropped += n),
            Count::Unfit(n) => self.status.update_publisher(|p| p.unfit += n),
        }
    }

    fn gateway_call(&mut self, call: &GatewayCall) -> Result<Value, String> {
        Ok(match call {
            GatewayCall::Ping => crate::bridge::rpc::pong(),
            GatewayCall::Status => crate::status::status_json(&self.status),
            GatewayCall::Meters => {
                let meters: Vec<Value> = self.status.with_meters(|m| {
                    m.iter()
                        .map(|(name, s)| json!({"name": name, "state": s.state.as_str()}))
                        .collect()
                });
                Value::Array(meters)
            }
            GatewayCall::Reload => {
                self.store
                    .bump_config_revision()
                    .map_err(|e| format!("reload: {e}"))?;
                json!({"reloaded": true})
            }
            GatewayCall::Scan { .. } => return Err("scan runs on its own thread".into()),
        })
    }

    /// A scan takes seconds: it runs on a thread of its own (one at a time) and answers like a
    /// meter does, through this thread. Addresses outside `scan.allowed` are refused here
    /// (the RPC parser is pure and cannot read the routes).
    fn start_scan(
        &self,
        hosts: Vec<std::net::Ipv4Addr>,
        ports: Vec<u16>,
        reply: ReplyTo,
    ) -> Option<Input> {
        let targets = crate::scan::Targets { hosts, ports };
        let allowed = crate::scan::Allowed::from_setting(&self.scan_allowed)
            .map_err(|e| format!("scan.allowed: {e}"))
            .and_then(|a| targets.check_allowed(&a).map_err(|e| e.to_string()));
        if let Err(e) = allowed {
            warn!("rpc: scan refused: {e}");
            return Some(Input::RpcReply {
                reply,
                result: Err(e),
            });
        }
        let crate::scan::Targets { hosts, ports } = targets;
        let inbox = self.inbox.clone();
        let template = crate::scan::probe_template();
        let spawned = std::thread::Builder::new()
            .name("rpc-scan".into())
            .spawn(move || {
                let found = std::sync::Mutex::new(Vec::new());
                let transports = crate::scan::TRANSPORTS;
                crate::scan::scan(&hosts, &ports, &template, &transports, &|line| {
                    if let Ok(mut f) = found.lock() {
                        f.push(line);
                    }
                });
                let found = found.into_inner().unwrap_or_default();
                info!(
                    "rpc: scan of {} address(es) x {} port(s) found {}",
                    hosts.len(),
                    ports.len(),
                    found.len()
                );
                let _ = inbox.send(ToPublisher::RpcReply {
                    reply,
                    result: Ok(json!({"found": found})),
                });
            });
        if let Err(e) = spawned {
            warn!("rpc: cannot start the scan: {e}");
        }
        None
    }

    /// The gateway's own telemetry.
    fn stats(&self) -> String {
        let (configured, polling, failing) = self.status.with_meters(|m| {
            (
                m.len(),
                m.values()
                    .filter(|s| s.state == MeterState::Polling)
                    .count(),
                m.values().filter(|s| s.consecutive_failures > 0).count(),
            )
        });
        let p = self.status.publisher();
        let now = crate::clock::now_ms();
        json!({
            "meters_configured": configured,
            "meters_polling": polling,
            "meters_failing": failing,
            "outbox_depth": p.outbox_rows + p.in_memory,
            "oldest_unsent_age_s": p.oldest_unsent_ms.map(|t| ((now - t) / 1000).max(0)),
            "readings_published": p.published_readings,
            "reconnects": p.reconnects,
            "dropped": p.dropped,
            "incoming_dropped": p.incoming_dropped,
            "cpu_s": crate::procfs::cpu_seconds("self"),
            "rss_kib": crate::procfs::field("self", "status", "VmRSS:"),
            "uptime_s": self.status.started.elapsed().as_secs(),
        })
        .to_string()
    }
}
