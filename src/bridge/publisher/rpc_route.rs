//! The publisher's side of ThingsBoard RPC: requests from the broker are parsed
//! (`bridge::rpc`), meter calls handed to the meter's own thread (bounded queue: "busy" past
//! it), gateway calls answered here, every call answered once: by its meter, or with
//! "timeout" at `rpc.timeout_s` (a late answer is then dropped).

use super::super::rpc::{self, GatewayCall, ReplyTo, Request, RpcCall};
use super::Publisher;
use log::{info, warn};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

impl Publisher {
    pub(super) fn incoming(&mut self, session: Option<String>, topic: &str, payload: &[u8]) {
        let Some(parsed) = rpc::parse(session.as_deref(), topic, payload) else {
            self.shared_attributes(session, topic, payload);
            return;
        };
        match parsed {
            Err((ReplyTo::Ignore, _)) => {}
            Err((reply, e)) => {
                warn!("rpc: refused on {topic}: {e}");
                self.publish_reply(&reply, Err(e));
            }
            Ok((Request::Gateway(GatewayCall::Scan { hosts, ports }), reply)) => {
                self.start_scan(hosts, ports, reply);
            }
            Ok((Request::Gateway(call), reply)) => {
                let result = self.gateway_call(&call);
                info!(
                    "rpc: gateway {call:?} -> {}",
                    if result.is_ok() { "ok" } else { "error" }
                );
                self.publish_reply(&reply, result);
            }
            Ok((
                Request::Meter {
                    device,
                    call,
                    method,
                },
                reply,
            )) => {
                let key = reply.key();
                if self.pending_rpcs.contains_key(&key) {
                    self.publish_reply(
                        &reply,
                        Err("a request with this id is still running".into()),
                    );
                    return;
                }
                let timeout = Duration::from_secs(self.settings.rpc_timeout_s);
                let deadline = Instant::now() + timeout;
                let queue = self
                    .routes
                    .lock()
                    .ok()
                    .and_then(|r| r.get(&device).cloned());
                let Some(queue) = queue else {
                    let known = self.devices.contains_key(&device);
                    self.publish_reply(
                        &reply,
                        Err(if known {
                            format!("meter {device:?} is disabled or not running")
                        } else {
                            format!("no meter named {device:?}")
                        }),
                    );
                    return;
                };
                let call = RpcCall {
                    call,
                    method: method.clone(),
                    reply: reply.clone(),
                    deadline,
                    max_rows: self.settings.rpc_max_rows,
                };
                match queue.try_send(call) {
                    Ok(()) => {
                        self.pending_rpcs.insert(key, (reply, deadline, method));
                    }
                    Err(crossbeam_channel::TrySendError::Full(_)) => self.publish_reply(
                        &reply,
                        Err(format!(
                            "busy: {} requests already wait for meter {device:?} (rpc.queue)",
                            self.settings.rpc_queue
                        )),
                    ),
                    Err(crossbeam_channel::TrySendError::Disconnected(_)) => self.publish_reply(
                        &reply,
                        Err(format!("meter {device:?} is restarting; try again")),
                    ),
                }
            }
        }
    }

    pub(super) fn rpc_answered(&mut self, reply: ReplyTo, result: Result<Value, String>) {
        // Answered once: a late answer (after "timeout") is dropped.
        if self.pending_rpcs.remove(&reply.key()).is_some() {
            self.publish_reply(&reply, result);
        }
    }

    pub(super) fn expire_rpcs(&mut self) {
        let now = Instant::now();
        let late: Vec<String> = self
            .pending_rpcs
            .iter()
            .filter(|(_, (_, deadline, _))| *deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in late {
            if let Some((reply, _, method)) = self.pending_rpcs.remove(&key) {
                warn!(
                    "rpc: {method} timed out after {} s",
                    self.settings.rpc_timeout_s
                );
                self.publish_reply(
                    &reply,
                    Err(format!(
                        "timeout: no answer from the meter within {} s (rpc.timeout_s)",
                        self.settings.rpc_timeout_s
                    )),
                );
            }
        }
    }

    /// The earliest RPC deadline, for the thread's wait.
    pub(super) fn next_rpc_deadline(&self) -> Option<Instant> {
        self.pending_rpcs.values().map(|(_, d, _)| *d).min()
    }

    /// A scan takes seconds: it runs on a thread of its own (one at a time) and answers like a
    /// meter does, through this thread.
    fn start_scan(&mut self, hosts: Vec<std::net::Ipv4Addr>, ports: Vec<u16>, reply: ReplyTo) {
        if self.pending_rpcs.values().any(|(_, _, m)| m == "scan") {
            self.publish_reply(&reply, Err("busy: a scan is already running".into()));
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(self.settings.rpc_timeout_s);
        self.pending_rpcs
            .insert(reply.key(), (reply.clone(), deadline, "scan".into()));
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
                let _ = inbox.send(super::ToPublisher::RpcReply {
                    reply,
                    result: Ok(json!({"found": found})),
                });
            });
        if let Err(e) = spawned {
            warn!("rpc: cannot start the scan: {e}");
        }
    }

    fn gateway_call(&mut self, call: &GatewayCall) -> Result<Value, String> {
        Ok(match call {
            GatewayCall::Ping => json!({"pong": true, "version": env!("CARGO_PKG_VERSION")}),
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

    /// Publishes an answer on its session (QoS 1, not through the outbox: an answer nobody is
    /// connected to receive is dropped and logged).
    fn publish_reply(&mut self, reply: &ReplyTo, result: Result<Value, String>) {
        let (session, topic, payload) = reply.reply(result);
        let up = self.sessions.get(&session).is_some_and(|s| s.link.is_up());
        if up {
            self.publish_on(&session, &topic, payload);
        } else {
            warn!("rpc: answer on {topic} dropped: not connected");
        }
    }
}
