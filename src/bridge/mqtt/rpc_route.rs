//! The core's side of messages from the broker: each is size-checked and rate-limited per
//! device before it is parsed; RPCs (`bridge::rpc`) become commands (a meter call for the
//! meter's own thread, a gateway call, a scan), every call is answered once: by its meter, or
//! with "timeout" at `rpc.timeout_s` (a late answer is then dropped). Shared-attribute
//! messages go to `shared_attributes.rs`.

use super::bucket::suppressed;
use super::core::{CallRefusal, Command, Core, Count, PendingRpc, MAX_INCOMING_BYTES};
use super::session::SessionId;
use crate::bridge::rpc::{self, GatewayCall, ReplyTo, Request, RpcCall};
use log::warn;
use serde_json::Value;
use std::time::{Duration, Instant};

const DEVICE_RPC_REQUEST_PREFIX: &str = "v1/devices/me/rpc/request/";

impl Core {
    pub(super) fn incoming(
        &mut self,
        session: SessionId,
        topic: &str,
        payload: &[u8],
        now: Instant,
        out: &mut Vec<Command>,
    ) {
        if payload.len() > MAX_INCOMING_BYTES {
            out.push(Command::Count(Count::IncomingDropped(1)));
            // A device-API request names its reply in the topic: answered unread.
            if let Some(id) = topic.strip_prefix(DEVICE_RPC_REQUEST_PREFIX) {
                let reply = ReplyTo::Device {
                    session: session.clone(),
                    id: id.to_string(),
                };
                self.reply(
                    &reply,
                    Err(format!(
                        "refused unread: the request has {} bytes, more than {MAX_INCOMING_BYTES}",
                        payload.len()
                    )),
                    now,
                );
            }
            if let Some(n) = self.throttle.allow("incoming-large", now) {
                warn!(
                    "publisher: a {}-byte message on {topic} ({session}) is over {MAX_INCOMING_BYTES} bytes: dropped unread{}",
                    payload.len(),
                    suppressed(n)
                );
            }
            return;
        }
        let Some(parsed) = rpc::parse(&session, topic, payload) else {
            self.attributes_message(session, topic, payload, now, out);
            return;
        };
        // Not a request (our own answer echoed by a plain broker): costs no one's rate.
        if matches!(parsed, Err((ReplyTo::Ignore, _))) {
            return;
        }
        let rate_key = match &parsed {
            Ok((Request::Meter { device, .. }, _)) => self.rate_key(device),
            _ => match session.device() {
                Some(d) => self.rate_key(d),
                None => "the gateway itself".into(),
            },
        };
        if !self.take_incoming(&rate_key, "RPCs", now, out) {
            return;
        }
        match parsed {
            Err((ReplyTo::Ignore, _)) => {}
            Err((reply, e)) => {
                warn!("rpc: refused on {topic}: {e}");
                self.reply(&reply, Err(e), now);
            }
            Ok((Request::Gateway(GatewayCall::Scan { hosts, ports }), reply)) => {
                if self.pending_rpcs.values().any(|p| p.method == "scan") {
                    self.reply(&reply, Err("busy: a scan is already running".into()), now);
                    return;
                }
                self.pend(&reply, "scan", now);
                out.push(Command::StartScan {
                    hosts,
                    ports,
                    reply,
                });
            }
            Ok((Request::Gateway(GatewayCall::Ping), reply)) => {
                log::debug!("rpc: gateway Ping -> ok");
                self.reply(&reply, Ok(rpc::pong()), now);
            }
            Ok((Request::Gateway(call), reply)) => {
                if self.pend_once(&reply, "gateway", now).is_some() {
                    out.push(Command::GatewayCall { call, reply });
                }
            }
            Ok((
                Request::Meter {
                    device,
                    call,
                    method,
                },
                reply,
            )) => {
                let Some(deadline) = self.pend_once(&reply, &method, now) else {
                    return;
                };
                out.push(Command::CallMeter {
                    device,
                    call: RpcCall {
                        call,
                        method,
                        reply,
                        deadline,
                        max_rows: self.settings.rpc_max_rows,
                    },
                });
            }
        }
    }

    /// Configured meters are limited each on their own; names nobody configured share one
    /// limit (the table stays as small as the configuration).
    pub(super) fn rate_key(&self, device: &str) -> String {
        if self.devices.contains_key(device) {
            format!("meter {device:?}")
        } else {
            "meters nobody configured".into()
        }
    }

    /// Whether a message from the broker may be handled now: within its device's rate and
    /// the total; dropped and counted if not.
    pub(super) fn take_incoming(
        &mut self,
        key: &str,
        what: &str,
        now: Instant,
        out: &mut Vec<Command>,
    ) -> bool {
        if !self.incoming_total.available(now) {
            out.push(Command::Count(Count::IncomingDropped(1)));
            if let Some(n) = self.throttle.allow("incoming-total", now) {
                warn!("publisher: RPCs and shared attributes come faster than {} a second in all: dropped{}", super::core::INCOMING_TOTAL, suppressed(n));
            }
            return false;
        }
        if !self.incoming_rate.take(key, now) {
            out.push(Command::Count(Count::IncomingDropped(1)));
            if let Some(n) = self.throttle.allow("incoming-rate", now) {
                warn!(
                    "publisher: {what} for {key} come faster than {} a second: dropped{}",
                    super::core::INCOMING_PER_DEVICE,
                    suppressed(n)
                );
            }
            return false;
        }
        self.incoming_total.take(now);
        true
    }

    /// Records a call as pending, with its deadline; a call whose id is still pending is
    /// answered so instead (`None`).
    fn pend_once(&mut self, reply: &ReplyTo, method: &str, now: Instant) -> Option<Instant> {
        if self.pending_rpcs.contains_key(&reply.key()) {
            self.reply(
                reply,
                Err("a request with this id is still running".into()),
                now,
            );
            return None;
        }
        Some(self.pend(reply, method, now))
    }

    fn pend(&mut self, reply: &ReplyTo, method: &str, now: Instant) -> Instant {
        let deadline = now + Duration::from_secs(self.settings.rpc_timeout_s);
        self.pending_rpcs.insert(
            reply.key(),
            PendingRpc {
                reply: reply.clone(),
                deadline,
                method: method.to_string(),
            },
        );
        deadline
    }

    pub(super) fn call_refused(&mut self, reply: ReplyTo, why: CallRefusal, now: Instant) {
        if self.pending_rpcs.remove(&reply.key()).is_none() {
            return;
        }
        let device = match &reply {
            ReplyTo::Gateway { device, .. } => device.clone(),
            ReplyTo::Device { session, .. } => session.device().unwrap_or("").to_string(),
            ReplyTo::Ignore => return,
        };
        let e = match why {
            CallRefusal::NotRunning if self.devices.contains_key(&device) => {
                format!("meter {device:?} is disabled or not running")
            }
            CallRefusal::NotRunning => format!("no meter named {device:?}"),
            CallRefusal::Busy => format!(
                "busy: {} requests already wait for meter {device:?} (rpc.queue)",
                self.settings.rpc_queue
            ),
            CallRefusal::Restarting => format!("meter {device:?} is restarting; try again"),
        };
        self.reply(&reply, Err(e), now);
    }

    pub(super) fn expire_rpcs(&mut self, now: Instant) {
        let late: Vec<String> = self
            .pending_rpcs
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in late {
            if let Some(p) = self.pending_rpcs.remove(&key) {
                let secs = self.settings.rpc_timeout_s;
                warn!("rpc: {} timed out after {secs} s", p.method);
                self.reply(
                    &p.reply,
                    Err(format!(
                        "timeout: no answer from the meter within {secs} s (rpc.timeout_s)"
                    )),
                    now,
                );
            }
        }
    }

    /// Queues an answer on its session (QoS 1, not through the outbox: an answer nobody is
    /// connected to receive is dropped and logged). An answer over the payload limit is
    /// replaced by an error saying so.
    pub(super) fn reply(&mut self, reply: &ReplyTo, result: Result<Value, String>, now: Instant) {
        if matches!(reply, ReplyTo::Ignore) {
            return;
        }
        let (session, topic, mut payload) = reply.reply(result);
        let max = self.settings.max_payload_bytes;
        if payload.len() > max {
            let (_, _, short) = reply.reply(Err(format!(
                "the answer has {} bytes, more than thingsboard.max_payload_bytes ({max}): ask for fewer rows",
                payload.len()
            )));
            payload = short;
        }
        let up = self.sessions.get(&session).is_some_and(|s| s.link.is_up());
        if up {
            self.queue_control(&session, &topic, payload, now);
        } else {
            warn!("rpc: answer on {topic} dropped: not connected");
        }
    }
}
