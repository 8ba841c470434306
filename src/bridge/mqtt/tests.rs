//! The publisher core, state by state, in milliseconds: time is an `Instant` the tests move,
//! the library is a fake that answers (or does not) as each test says.

use super::core::*;
use super::link::CONNECT_DEADLINE;
use super::session::{ClientKey, SessionId};
use crate::bridge::outbox::queue::{Key, Outcome, WorkItem};
use crate::bridge::rpc::ReplyTo;
use crate::config::settings::{BridgeSettings, PublishMode};
use crate::store::outbox::{EntryKind, NewEntry};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIMIT: usize = 64;
const MS: Duration = Duration::from_millis(1);

fn settings(f: impl FnOnce(&mut BridgeSettings)) -> Arc<BridgeSettings> {
    let mut s = BridgeSettings::default();
    f(&mut s);
    Arc::new(s)
}

fn devices(n: usize, tokens: bool) -> Vec<Device> {
    (0..n)
        .map(|i| Device {
            name: format!("M{i}"),
            device_type: "electricity-meter".into(),
            token: tokens.then(|| format!("T{i}")),
            enabled: true,
        })
        .collect()
}

fn reading(key: u64, device: &str) -> WorkItem {
    WorkItem {
        key: Key::Memory(key),
        entry: NewEntry {
            device: device.into(),
            ts_ms: 1_700_000_000_000 + key as i64,
            kind: EntryKind::Telemetry,
            payload: format!(r#"{{"active_energy_import":{key}.5}}"#),
        },
    }
}

/// The core with a fake library around it: what was published, what is outstanding, what
/// the outbox was told.
struct Harness {
    core: Core,
    now: Instant,
    /// Publishes and subscribes not completed, in order.
    outstanding: Vec<(Ticket, SessionId, String, String)>,
    published: Vec<(SessionId, String, String)>,
    answers: HashMap<Key, Vec<Outcome>>,
    connects: Vec<(SessionId, ClientKey)>,
    disconnects: Vec<(SessionId, ClientKey)>,
    /// Clients the fake library has connected (a CONNECT on one is a no-op: Paho C).
    connected: HashSet<ClientKey>,
    connected_to_outbox: Option<bool>,
    calls: Vec<Command>,
    exited: bool,
    max_seen: HashMap<SessionId, usize>,
}

impl Harness {
    fn new(s: Arc<BridgeSettings>, d: Vec<Device>) -> Harness {
        let now = Instant::now();
        let mut h = Harness {
            core: Core::new(
                Limits {
                    max_outstanding: LIMIT,
                },
                "{}".into(),
                now,
            ),
            now,
            outstanding: Vec::new(),
            published: Vec::new(),
            answers: HashMap::new(),
            connects: Vec::new(),
            disconnects: Vec::new(),
            connected: HashSet::new(),
            connected_to_outbox: None,
            calls: Vec::new(),
            exited: false,
            max_seen: HashMap::new(),
        };
        h.input(Input::Configure {
            settings: s,
            devices: d,
        });
        h
    }

    fn input(&mut self, i: Input) {
        let out = self.core.handle(i, self.now);
        for c in out {
            match c {
                Command::Connect {
                    session, client, ..
                } => self.connects.push((session, client)),
                Command::Disconnect { session, client } => {
                    self.connected.remove(&client);
                    self.disconnects.push((session, client));
                }
                Command::Publish {
                    session,
                    ticket,
                    topic,
                    payload,
                    ..
                } => {
                    self.published
                        .push((session.clone(), topic.clone(), payload.clone()));
                    self.outstanding.push((ticket, session, topic, payload));
                }
                Command::Subscribe {
                    session, ticket, ..
                } => self
                    .outstanding
                    .push((ticket, session, "SUBSCRIBE".into(), String::new())),
                Command::Answer(list) => {
                    for (k, o) in list {
                        self.answers.entry(k).or_default().push(o);
                    }
                }
                Command::Connected(up) => self.connected_to_outbox = Some(up),
                Command::Exit => self.exited = true,
                Command::Count(_) | Command::State { .. } => {}
                other => self.calls.push(other),
            }
        }
        for (id, s) in &self.core.sessions {
            let n = s.outstanding;
            assert!(
                n <= LIMIT,
                "{id}: {n} outstanding, over the library's limit"
            );
            if n > 0 {
                let m = self.max_seen.entry(id.clone()).or_default();
                *m = (*m).max(n);
            }
        }
    }

    fn at(&mut self, d: Duration) {
        self.now += d;
        self.input(Input::Tick);
    }

    /// The last connect is answered.
    fn connack(&mut self, result: Result<(), String>) {
        let (session, client) = self.connects.last().cloned().expect("a connect");
        if result.is_ok() {
            self.connected.insert(client.clone());
        }
        self.input(Input::ConnectDone {
            session,
            generation: client.generation,
            result,
        });
    }

    /// Completes every outstanding command (PUBACK, SUBACK), in order, until none is left.
    fn ack_all(&mut self) {
        while !self.outstanding.is_empty() {
            let batch: Vec<_> = std::mem::take(&mut self.outstanding);
            for (ticket, ..) in batch {
                self.input(Input::Completed {
                    ticket,
                    how: Completion::Acked,
                });
            }
            self.at(MS);
        }
    }

    /// Runs the broker for `d`: the bucket refills, acknowledgements come 1 ms after.
    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        while self.now < until {
            self.ack_all();
            self.at(Duration::from_millis(20));
        }
    }

    fn acked(&self) -> usize {
        self.answers
            .values()
            .filter(|o| o.last() == Some(&Outcome::Acked))
            .count()
    }

    fn topics(&self, t: &str) -> usize {
        self.published.iter().filter(|(_, x, _)| x == t).count()
    }
}

fn up_gateway(s: Arc<BridgeSettings>, d: Vec<Device>) -> Harness {
    let mut h = Harness::new(s, d);
    assert_eq!(h.connects.len(), 1, "connects at once");
    assert!(
        h.disconnects.is_empty(),
        "a fresh client is not disconnected"
    );
    h.connack(Ok(()));
    assert_eq!(h.connected_to_outbox, Some(true));
    // The subscription, who the gateway is, the attribute requests; the bucket fills again.
    h.run_for(Duration::from_secs(25));
    h
}

#[test]
fn first_batch_after_a_reconnect_with_1000_devices_never_exceeds_the_library_buffer() {
    let s = settings(|s| s.max_messages_per_second = 10_000);
    let mut h = up_gateway(s, devices(1000, false));
    // A reconnect: the attribute requests of the first session are done.
    let client = h.connects[0].1.clone();
    h.input(Input::Lost {
        session: SessionId::Gateway,
        generation: client.generation,
    });
    h.at(Duration::from_secs(1));
    h.connack(Ok(()));
    h.ack_all();
    // A backlog covering every device, as after an outage.
    let work: Vec<WorkItem> = (0..2000)
        .map(|i| reading(i, &format!("M{}", i % 1000)))
        .collect();
    let before = h.published.len();
    h.input(Input::Work(work));
    h.run_for(Duration::from_secs(20));
    assert_eq!(h.acked(), 2000, "every reading delivered");
    assert_eq!(
        h.topics("v1/gateway/connect"),
        1000,
        "each device announced once"
    );
    assert!(h.max_seen[&SessionId::Gateway] <= LIMIT);
    assert_eq!(
        h.max_seen[&SessionId::Gateway],
        LIMIT,
        "and the budget is used"
    );
    // Each telemetry message is preceded by the announcement of all its devices.
    let mut announced = HashSet::new();
    for (_, topic, payload) in &h.published {
        let v: Value = serde_json::from_str(payload).unwrap();
        match topic.as_str() {
            "v1/gateway/connect" => {
                announced.insert(v["device"].as_str().unwrap().to_string());
            }
            "v1/gateway/telemetry" => {
                for d in v.as_object().unwrap().keys() {
                    assert!(announced.contains(d), "{d} before its announcement");
                }
            }
            _ => {}
        }
    }
    // While readings waited, no attribute request went out (lowest priority).
    let last_telemetry = h
        .published
        .iter()
        .rposition(|(_, t, _)| t == "v1/gateway/telemetry")
        .unwrap();
    assert!(h.published[before..last_telemetry]
        .iter()
        .all(|(_, t, _)| t != "v1/gateway/attributes/request"));
    assert_eq!(
        h.topics("v1/gateway/attributes/request"),
        2000,
        "1,000 per session"
    );
}

#[test]
fn a_publish_refused_by_the_library_comes_back_and_the_client_is_disconnected_before_reconnecting()
{
    let mut h = up_gateway(settings(|_| {}), devices(3, false));
    h.ack_all();
    h.input(Input::Work(vec![reading(1, "M0"), reading(2, "M1")]));
    let (ticket, ..) = h
        .outstanding
        .iter()
        .find(|(_, _, t, _)| t == "v1/gateway/telemetry")
        .cloned()
        .unwrap();
    h.input(Input::Completed {
        ticket,
        how: Completion::Refused("Max buffered messages".into()),
    });
    assert_eq!(h.answers[&Key::Memory(1)], [Outcome::Retry]);
    assert_eq!(h.answers[&Key::Memory(2)], [Outcome::Retry]);
    assert_eq!(h.connected_to_outbox, Some(false));
    assert_eq!(h.disconnects.len(), 1, "disconnected at once");
    // A session that failed right after its connect backs off before the next.
    h.at(Duration::from_millis(900));
    assert_eq!(h.connects.len(), 1);
    h.at(Duration::from_secs(2));
    assert_eq!(h.connects.len(), 2, "reconnects");
    assert_eq!(h.disconnects.len(), 2, "after disconnecting first");
    // Late completions of the old session change nothing.
    let old: Vec<Ticket> = h.outstanding.drain(..).map(|(t, ..)| t).collect();
    for t in old {
        h.input(Input::Completed {
            ticket: t,
            how: Completion::Acked,
        });
    }
    assert_eq!(h.answers[&Key::Memory(1)], [Outcome::Retry]);
}

#[test]
fn a_connect_never_answered_is_given_up_and_a_fresh_client_takes_over() {
    let mut h = Harness::new(settings(|_| {}), devices(1, false));
    let first = h.connects[0].1.clone();
    // The library never completes the CONNECT (Paho C on a client it thinks connected).
    h.at(CONNECT_DEADLINE - MS);
    assert_eq!(h.connects.len(), 1);
    h.at(MS);
    assert_eq!(h.disconnects.len(), 1, "given up: disconnected");
    h.at(Duration::from_secs(1));
    assert_eq!(h.connects.len(), 2);
    assert_eq!(h.connects[1].1, first, "the same client once more");
    h.at(CONNECT_DEADLINE);
    h.at(Duration::from_secs(2));
    assert_eq!(h.connects.len(), 3);
    let fresh = &h.connects[2].1;
    assert_eq!(
        fresh.generation,
        first.generation + 1,
        "then a fresh client"
    );
    assert_eq!(
        (&fresh.uri, &fresh.client_id),
        (&first.uri, &first.client_id)
    );
    let disconnects_before = h.disconnects.len();
    assert!(
        h.disconnects.iter().all(|(_, c)| *c != *fresh),
        "a fresh client is not disconnected before its first connect"
    );
    // A late answer of the old client changes nothing; the fresh one's counts.
    h.input(Input::ConnectDone {
        session: SessionId::Gateway,
        generation: first.generation,
        result: Ok(()),
    });
    assert_ne!(h.connected_to_outbox, Some(true));
    h.connack(Ok(()));
    assert_eq!(h.connected_to_outbox, Some(true));
    assert_eq!(h.disconnects.len(), disconnects_before);
}

#[test]
fn connect_failures_back_off_to_the_cap_and_never_stop() {
    let mut h = Harness::new(
        settings(|s| s.broker.reconnect_max_s = 8),
        devices(1, false),
    );
    let mut gaps = Vec::new();
    let mut last = h.now;
    for _ in 0..8 {
        h.connack(Err("refused".into()));
        let n = h.connects.len();
        while h.connects.len() == n {
            h.at(Duration::from_millis(100));
        }
        gaps.push((h.now - last).as_secs());
        last = h.now;
    }
    assert_eq!(gaps, [1, 2, 4, 8, 8, 8, 8, 8]);
    assert!(h.disconnects.len() >= 8, "each reconnect disconnects first");
}

#[test]
fn a_late_puback_resets_the_session_and_a_missing_one_too() {
    let mut h = up_gateway(settings(|_| {}), devices(1, false));
    h.ack_all();
    h.input(Input::Work(vec![reading(1, "M0")]));
    // The announcement and the reading are out; no PUBACK by the deadline.
    h.at(ACK_TIMEOUT - MS);
    assert!(!h.answers.contains_key(&Key::Memory(1)));
    h.at(MS);
    assert_eq!(h.answers[&Key::Memory(1)], [Outcome::Retry]);
    assert_eq!(h.disconnects.len(), 1);
    // The PUBACK arrives late: nothing changes (the reading was given back).
    let late: Vec<Ticket> = h.outstanding.drain(..).map(|(t, ..)| t).collect();
    for t in late {
        h.input(Input::Completed {
            ticket: t,
            how: Completion::Acked,
        });
    }
    assert_eq!(h.answers[&Key::Memory(1)], [Outcome::Retry]);
    // Next session: the reading goes out again and is acknowledged in time.
    h.at(Duration::from_secs(1));
    h.connack(Ok(()));
    h.ack_all();
    h.input(Input::Work(vec![reading(1, "M0")]));
    h.ack_all();
    assert_eq!(h.answers[&Key::Memory(1)], [Outcome::Retry, Outcome::Acked]);
    assert_eq!(
        h.topics("v1/gateway/connect"),
        2,
        "announced again in the new session"
    );
}

#[test]
fn a_session_lost_mid_batch_gives_everything_back_once() {
    let mut h = up_gateway(
        settings(|s| {
            s.max_messages_per_second = 2;
            s.max_payload_bytes = 300;
        }),
        devices(4, false),
    );
    h.ack_all();
    let work: Vec<WorkItem> = (0..40)
        .map(|i| reading(i, &format!("M{}", i % 4)))
        .collect();
    h.input(Input::Work(work));
    h.run_for(Duration::from_secs(4));
    let acked = h.acked();
    assert!(acked > 0 && acked < 40, "{acked}");
    let client = h.connects[0].1.clone();
    h.input(Input::Lost {
        session: SessionId::Gateway,
        generation: client.generation,
    });
    for i in 0..40 {
        let o = &h.answers[&Key::Memory(i)];
        assert_eq!(o.len(), 1, "answered once: {o:?}");
    }
    assert_eq!(h.acked(), acked);
    assert_eq!(h.core.held(), 0);
    // A Lost of an older client is ignored.
    h.at(Duration::from_secs(1));
    h.connack(Ok(()));
    h.input(Input::Lost {
        session: SessionId::Gateway,
        generation: client.generation + 7,
    });
    assert_eq!(h.connected_to_outbox, Some(true));
}

#[test]
fn the_rate_limit_holds_for_every_kind_of_message() {
    let mut h = up_gateway(
        settings(|s| {
            s.max_messages_per_second = 10;
            s.max_payload_bytes = 200;
        }),
        devices(50, false),
    );
    let start = h.published.len();
    let work: Vec<WorkItem> = (0..500)
        .map(|i| reading(i, &format!("M{}", i % 50)))
        .collect();
    h.input(Input::Work(work));
    h.run_for(Duration::from_secs(10));
    let sent = h.published.len() - start;
    // 10 a second for 10 s, plus the 10 saved up (the burst is one second's worth).
    assert!((109..=112).contains(&sent), "{sent}");
    assert!(h.core.next_deadline().is_some(), "wakes for the next token");
}

#[test]
fn a_broker_change_closes_every_session_and_connects_to_the_new_broker() {
    let mut h = up_gateway(settings(|_| {}), devices(2, false));
    h.ack_all();
    h.input(Input::Work(vec![reading(1, "M0")]));
    h.input(Input::Configure {
        settings: settings(|s| s.broker.port = 1884),
        devices: devices(2, false),
    });
    assert_eq!(h.answers[&Key::Memory(1)], [Outcome::Retry]);
    assert_eq!(h.connected_to_outbox, Some(false));
    let last = h.connects.last().unwrap().1.clone();
    assert_eq!(last.uri, "tcp://127.0.0.1:1884");
    // A setting that is not the broker's changes no session.
    h.connack(Ok(()));
    let n = h.connects.len();
    h.input(Input::Configure {
        settings: settings(|s| {
            s.broker.port = 1884;
            s.rpc_timeout_s = 5;
        }),
        devices: devices(2, false),
    });
    h.at(Duration::from_secs(2));
    assert_eq!(h.connects.len(), n);
    assert_eq!(h.connected_to_outbox, Some(true));
}

#[test]
fn stop_while_connecting_and_stop_with_messages_in_flight_end_within_the_grace() {
    let mut h = Harness::new(settings(|_| {}), devices(1, false));
    h.input(Input::Stop);
    assert!(h.exited, "nothing in flight: at once");
    assert_eq!(
        h.disconnects.len(),
        1,
        "the pending connect is disconnected"
    );

    let mut h = up_gateway(settings(|_| {}), devices(1, false));
    h.ack_all();
    h.input(Input::Work(vec![reading(1, "M0"), reading(2, "M0")]));
    h.input(Input::Stop);
    assert!(!h.exited, "waits for the PUBACKs");
    h.input(Input::Work(vec![reading(3, "M0")]));
    assert_eq!(
        h.answers[&Key::Memory(3)],
        [Outcome::Retry],
        "no new work taken"
    );
    h.at(STOP_GRACE);
    assert!(h.exited);
    assert_eq!(h.answers[&Key::Memory(1)], [Outcome::Retry]);
    // Acknowledged in time: answered Acked and exits at once.
    let mut h = up_gateway(settings(|_| {}), devices(1, false));
    h.ack_all();
    h.input(Input::Work(vec![reading(1, "M0")]));
    h.input(Input::Stop);
    h.ack_all();
    assert!(h.exited);
    assert_eq!(h.answers[&Key::Memory(1)], [Outcome::Acked]);
}

#[test]
fn device_mode_with_1000_sessions_keeps_each_within_its_budget() {
    let s = settings(|s| {
        s.broker.mode = PublishMode::Device;
        s.max_messages_per_second = 5000;
    });
    let mut h = Harness::new(s, devices(1000, true));
    assert_eq!(h.connects.len(), 1000, "one session per meter with a token");
    let ids: HashSet<&str> = h
        .connects
        .iter()
        .map(|(_, c)| c.client_id.as_str())
        .collect();
    assert_eq!(ids.len(), 1000, "client ids apart");
    for (session, client) in h.connects.clone() {
        h.connected.insert(client.clone());
        h.input(Input::ConnectDone {
            session,
            generation: client.generation,
            result: Ok(()),
        });
    }
    let work: Vec<WorkItem> = (0..5000)
        .map(|i| reading(i, &format!("M{}", i % 1000)))
        .collect();
    h.input(Input::Work(work));
    h.run_for(Duration::from_secs(5));
    assert_eq!(h.acked(), 5000);
    assert!(h.max_seen.values().all(|n| *n <= LIMIT));
    // A meter without a token: parked, never a session.
    let mut d = devices(2, true);
    d[1].token = None;
    let mut h = Harness::new(settings(|s| s.broker.mode = PublishMode::Device), d);
    h.input(Input::Work(vec![reading(9, "M1")]));
    assert_eq!(h.answers[&Key::Memory(9)], [Outcome::Park]);
    assert_eq!(h.connects.len(), 1);
}

#[test]
fn an_rpc_and_attribute_flood_while_a_backlog_drains_leaves_publishing_working() {
    let mut h = up_gateway(
        settings(|s| {
            s.max_messages_per_second = 50;
            s.max_payload_bytes = 1000;
        }),
        devices(10, false),
    );
    h.ack_all();
    let work: Vec<WorkItem> = (0..1000)
        .map(|i| reading(i, &format!("M{}", i % 10)))
        .collect();
    h.input(Input::Work(work));
    let mut rpcs = 0;
    let until = h.now + Duration::from_secs(30);
    while h.now < until {
        // 11,000 messages a second from the broker (110 per 10 ms): gateway RPCs, device
        // RPCs and shared attributes for configured and unknown meters.
        for i in 0..110 {
            rpcs += 1;
            let payload = match i % 3 {
                0 => {
                    json!({"device": format!("M{}", i % 12), "data": {"id": rpcs, "method": "get_clock"}})
                }
                1 => json!({"device": "M1", "data": {"interval_s": 5}}),
                _ => json!({"method": "ping"}),
            };
            let topic = match i % 3 {
                0 => "v1/gateway/rpc".to_string(),
                1 => "v1/gateway/attributes".to_string(),
                _ => format!("v1/devices/me/rpc/request/{rpcs}"),
            };
            h.input(Input::Incoming {
                session: SessionId::Gateway,
                topic,
                payload: payload.to_string().into_bytes(),
            });
        }
        h.ack_all();
        h.at(Duration::from_millis(10));
    }
    assert_eq!(h.acked(), 1000, "the backlog drained under the flood");
    let meter_calls = h
        .calls
        .iter()
        .filter(|c| matches!(c, Command::CallMeter { .. }))
        .count();
    let applies = h
        .calls
        .iter()
        .filter(|c| matches!(c, Command::ApplyAttributes { .. }))
        .count();
    // Per device: 20 saved up, then 10 a second; all devices together 50, then 20 a second.
    assert!(applies <= 20 + 10 * 30, "{applies}");
    assert!(
        meter_calls + applies <= 50 + 20 * 30,
        "{meter_calls} + {applies}"
    );
    assert!(meter_calls > 100 && applies > 100, "not everything refused");
    assert!(h.core.held() == 0);
}

#[test]
fn oversized_input_is_refused_unread_and_oversized_output_never_produced() {
    let mut h = up_gateway(settings(|s| s.max_payload_bytes = 4096), devices(1, false));
    h.ack_all();
    let big = format!(
        r#"{{"method":"ping","params":"{}"}}"#,
        "x".repeat(MAX_INCOMING_BYTES)
    );
    h.input(Input::Incoming {
        session: SessionId::Gateway,
        topic: "v1/devices/me/rpc/request/5".into(),
        payload: big.into_bytes(),
    });
    h.at(MS);
    let (_, topic, payload) = h.published.last().unwrap().clone();
    assert_eq!(topic, "v1/devices/me/rpc/response/5");
    assert!(payload.contains("refused unread"), "{payload}");
    // A meter's answer over the payload limit becomes an error saying so.
    let reply = ReplyTo::Gateway {
        device: "M0".into(),
        id: json!(1),
    };
    h.input(Input::Incoming {
        session: SessionId::Gateway,
        topic: "v1/gateway/rpc".into(),
        payload: br#"{"device":"M0","data":{"id":1,"method":"get_clock"}}"#.to_vec(),
    });
    h.input(Input::RpcReply {
        reply,
        result: Ok(json!({"rows": "y".repeat(10_000)})),
    });
    h.ack_all();
    let (_, topic, payload) = h.published.last().unwrap().clone();
    assert_eq!(topic, "v1/gateway/rpc");
    assert!(payload.contains("ask for fewer rows"), "{payload}");
    assert!(h.published.iter().all(|(_, _, p)| p.len() <= 4096));
    // A reading with one value too large for any message is parked, not sent.
    let mut r = reading(77, "M0");
    r.entry.payload = format!(r#"{{"blob":"{}"}}"#, "z".repeat(5000));
    h.input(Input::Work(vec![r, reading(78, "M0")]));
    h.ack_all();
    assert_eq!(h.answers[&Key::Memory(77)], [Outcome::Park]);
    assert_eq!(h.answers[&Key::Memory(78)], [Outcome::Acked]);
    assert!(h.published.iter().all(|(_, _, p)| p.len() <= 4096));
}

#[test]
fn rpcs_are_answered_once_by_the_meter_or_by_the_timeout() {
    let mut h = up_gateway(settings(|s| s.rpc_timeout_s = 5), devices(2, false));
    h.ack_all();
    let ask = |h: &mut Harness, id: i64| {
        h.input(Input::Incoming {
            session: SessionId::Gateway,
            topic: "v1/gateway/rpc".into(),
            payload: json!({"device": "M0", "data": {"id": id, "method": "get_clock"}})
                .to_string()
                .into_bytes(),
        })
    };
    ask(&mut h, 1);
    ask(&mut h, 1);
    h.ack_all();
    assert!(h.published.last().unwrap().2.contains("still running"));
    let reply = match h.calls.last() {
        Some(Command::CallMeter { call, .. }) => call.reply.clone(),
        other => panic!("{other:?}"),
    };
    h.input(Input::RpcReply {
        reply: reply.clone(),
        result: Ok(json!({"clock": "x"})),
    });
    h.input(Input::RpcReply {
        reply,
        result: Ok(json!({"clock": "late"})),
    });
    h.ack_all();
    assert_eq!(
        h.published
            .iter()
            .filter(|(_, t, p)| t == "v1/gateway/rpc" && p.contains("clock"))
            .count(),
        1
    );
    ask(&mut h, 2);
    h.at(Duration::from_secs(5));
    h.ack_all();
    assert!(h.published.last().unwrap().2.contains("timeout"));
    // A meter that cannot take it says why.
    ask(&mut h, 3);
    let reply = match h.calls.last() {
        Some(Command::CallMeter { call, .. }) => call.reply.clone(),
        other => panic!("{other:?}"),
    };
    h.input(Input::MeterCallRefused {
        reply,
        why: CallRefusal::Busy,
    });
    h.ack_all();
    assert!(h.published.last().unwrap().2.contains("busy"));
}

#[test]
fn the_gateway_device_announces_itself_sends_its_figures_and_its_alarms() {
    let mut h = Harness::new(settings(|s| s.stats_interval_s = 60), devices(2, false));
    h.input(Input::OwnTelemetry(
        r#"{"ts":1,"values":{"alarm_type":"x"}}"#.into(),
    ));
    h.connack(Ok(()));
    h.ack_all();
    assert_eq!(
        h.topics("v1/devices/me/attributes"),
        1,
        "who the gateway is"
    );
    assert!(h.calls.iter().any(|c| matches!(c, Command::CollectStats)));
    h.input(Input::Stats(r#"{"meters_configured":2}"#.into()));
    h.run_for(Duration::from_secs(2));
    assert_eq!(
        h.topics("v1/devices/me/telemetry"),
        2,
        "the alarm and the figures"
    );
    // A meter removed after its readings went out: its disconnection is announced.
    h.input(Input::Work(vec![reading(1, "M1")]));
    h.ack_all();
    h.input(Input::Configure {
        settings: settings(|s| s.stats_interval_s = 60),
        devices: devices(1, false),
    });
    h.ack_all();
    assert_eq!(h.topics("v1/gateway/disconnect"), 1);
}

#[test]
fn publishing_off_gives_everything_back_and_takes_nothing() {
    let mut h = Harness::new(settings(|s| s.broker.host.clear()), devices(1, false));
    assert!(h.connects.is_empty());
    h.input(Input::Work(vec![reading(1, "M0")]));
    assert_eq!(h.answers[&Key::Memory(1)], [Outcome::Retry]);
    assert_eq!(h.connected_to_outbox, Some(false));
}

#[test]
fn device_mode_a_meter_whose_session_is_down_holds_up_no_other() {
    let s = settings(|s| s.broker.mode = PublishMode::Device);
    let mut h = Harness::new(s, devices(3, true));
    // M0 and M1 connect; M2's broker account refuses it.
    for (session, client) in h.connects.clone() {
        let result = if session == SessionId::Device("M2".into()) {
            Err("refused".to_string())
        } else {
            Ok(())
        };
        h.input(Input::ConnectDone {
            session,
            generation: client.generation,
            result,
        });
    }
    h.run_for(Duration::from_secs(2));
    h.input(Input::Work(vec![
        reading(1, "M0"),
        reading(2, "M2"),
        reading(3, "M1"),
    ]));
    h.run_for(Duration::from_secs(1));
    assert_eq!(h.answers[&Key::Memory(1)], [Outcome::Acked]);
    assert_eq!(h.answers[&Key::Memory(3)], [Outcome::Acked]);
    assert_eq!(
        h.answers[&Key::Memory(2)],
        [Outcome::Park],
        "answered at once: the batch is complete"
    );
    assert!(!h.calls.iter().any(|c| matches!(c, Command::Unpark)));
    // M2 comes up: its parked readings may go.
    let (session, client) = h
        .connects
        .iter()
        .rev()
        .find(|(s, _)| *s == SessionId::Device("M2".into()))
        .cloned()
        .unwrap();
    h.at(Duration::from_secs(2));
    h.input(Input::ConnectDone {
        session,
        generation: client.generation,
        result: Ok(()),
    });
    assert!(h.calls.iter().any(|c| matches!(c, Command::Unpark)));
}

#[test]
fn many_device_names_share_one_total_and_unknown_meters_get_no_attribute_answer() {
    let mut h = up_gateway(settings(|_| {}), devices(5, false));
    let before = h.published.len();
    // 1,000 attribute messages for names nobody configured, in one second.
    for i in 0..1000 {
        h.input(Input::Incoming {
            session: SessionId::Gateway,
            topic: "v1/gateway/attributes".into(),
            payload: json!({"device": format!("rnd{i}"), "data": {"interval_s": 5}})
                .to_string()
                .into_bytes(),
        });
    }
    h.run_for(Duration::from_secs(1));
    assert!(
        !h.calls
            .iter()
            .any(|c| matches!(c, Command::ApplyAttributes { .. })),
        "nothing applied"
    );
    assert!(
        h.published[before..]
            .iter()
            .all(|(_, t, _)| t != "v1/gateway/attributes"),
        "no answer names a device ThingsBoard would create"
    );
    // RPCs over many names: bounded by the total.
    for i in 0..1000 {
        h.input(Input::Incoming {
            session: SessionId::Gateway,
            topic: "v1/gateway/rpc".into(),
            payload:
                json!({"device": format!("M{}", i % 5), "data": {"id": i, "method": "get_clock"}})
                    .to_string()
                    .into_bytes(),
        });
    }
    let calls = h
        .calls
        .iter()
        .filter(|c| matches!(c, Command::CallMeter { .. }))
        .count();
    assert!(
        (20..=INCOMING_TOTAL_BURST as usize + 1).contains(&calls),
        "{calls}"
    );
}

#[test]
fn a_remote_measurement_list_is_bounded() {
    let m = crate::config::MeterConfig::tcp("A", "127.0.0.1", 1);
    let list: serde_json::Map<String, Value> = (0..600)
        .map(|i| {
            (
                format!("k{i}"),
                json!(format!("1-0:{}.{}.0", 1 + i % 80, 7 + i / 80)),
            )
        })
        .collect();
    let data = json!({"measurements": list});
    let e = super::shared_attributes::apply(&m, data.as_object().unwrap(), false).unwrap_err();
    assert!(e.contains("at most 128"), "{e}");
}

#[test]
fn our_own_answers_echoed_by_a_plain_broker_cost_no_rate() {
    let mut h = up_gateway(settings(|_| {}), devices(1, false));
    // A plain broker sends our answers on v1/gateway/rpc back to us: 200 of them.
    for i in 0..200 {
        h.input(Input::Incoming {
            session: SessionId::Gateway,
            topic: "v1/gateway/rpc".into(),
            payload: json!({"device": "M0", "id": i, "data": {"result": {"pong": true}}})
                .to_string()
                .into_bytes(),
        });
    }
    h.input(Input::Incoming {
        session: SessionId::Gateway,
        topic: "v1/devices/me/rpc/request/7".into(),
        payload: br#"{"method":"ping"}"#.to_vec(),
    });
    h.run_for(Duration::from_secs(1));
    assert!(
        h.published
            .iter()
            .any(|(_, t, p)| t == "v1/devices/me/rpc/response/7" && p.contains("pong")),
        "the real request is answered"
    );
}
