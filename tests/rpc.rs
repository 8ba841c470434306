//! ThingsBoard RPC end to end: mosquitto stands in for ThingsBoard, a test client publishes
//! requests on ThingsBoard's topics and reads the answers; the meter is the simulator (with
//! its class 70 relay). Gateway mode and device mode.

mod common;

use common::*;
use dlms_bridge::config::values::Transport;
use dlms_bridge::cosem::Obis;
use dlms_bridge::store::Store;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

fn cli_ok(db: &Path, args: &[&str]) {
    let out = cli(db, args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn result(v: &Value) -> &Value {
    assert!(v.get("error").is_none(), "an error: {v}");
    &v["result"]
}

fn error(v: &Value) -> String {
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {v}"))
        .to_string()
}

#[test]
fn gateway_mode_rpc_reads_sets_the_clock_and_operates_the_relay() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("rpc-gateway");
    let broker = Mosquitto::start(&dir.0);
    let tb = Tb::connect(
        broker.port,
        &["v1/gateway/rpc", "v1/devices/me/rpc/response/+"],
    );
    let sims = simulated(0..1, 90, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["Meter A"], |_| {});
    let http = free_port();
    setting(&db, "http.bind", &format!("127.0.0.1:{http}"));
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("connected and polling", Duration::from_secs(15), || {
        bridge.log().contains("publisher: connected")
            && http_get(http, "/status").1.contains("\"successes\":")
    });
    std::thread::sleep(Duration::from_millis(500));

    // Reads: exact values from the simulator.
    let serial = tb.gateway(
        "Meter A",
        1,
        "read",
        json!({"obis": "0-0:96.1.0", "class": 1}),
    );
    assert_eq!(
        result(&serial)["value"],
        json!(sims.models[0].serial_number())
    );
    let volts = tb.gateway("Meter A", 2, "read", json!({"obis": "1-0:32.7.0"}));
    assert_eq!(result(&volts)["unit"], json!("V"), "{volts}");
    let model = &sims.models[0];
    assert_eq!(
        result(&volts)["value"].as_f64().unwrap(),
        truth(model, Obis::new(1, 0, 32, 7, 0, 255)),
        "the simulator's exact value"
    );
    let many = tb.gateway(
        "Meter A",
        3,
        "read_many",
        json!(["1-0:32.7.0", "1-0:31.7.0", "1-0:99.9.9"]),
    );
    let list = result(&many).as_array().unwrap().clone();
    assert_eq!(list.len(), 3);
    assert_eq!(list[1]["unit"], json!("A"));
    assert_eq!(
        list[1]["value"].as_f64().unwrap(),
        truth(model, Obis::new(1, 0, 31, 7, 0, 255))
    );
    assert!(
        list[2]["error"].as_str().unwrap().contains("not found"),
        "{many}"
    );
    let profile = tb.gateway(
        "Meter A",
        4,
        "read_profile",
        json!({"obis": "1-0:99.1.0", "from": "2020-01-01T00:00:00Z"}),
    );
    let rows = result(&profile)["rows"].as_array().unwrap().len();
    assert!(rows > 0, "{profile}");

    // The clock: read; set refused without rpc_write; allowed with it (a live field).
    let clock = tb.gateway("Meter A", 5, "get_clock", json!({}));
    assert!(
        result(&clock)["drift_s"].as_i64().unwrap().abs() <= 2,
        "{clock}"
    );
    let refused = tb.gateway(
        "Meter A",
        6,
        "set_clock",
        json!({"time": "2026-01-01T00:00:00Z"}),
    );
    assert!(error(&refused).contains("rpc_write is false"), "{refused}");
    cli_ok(&db, &["meter", "edit", "Meter A", "--rpc-write", "true"]);
    wait_for("rpc_write applied", Duration::from_secs(10), || {
        bridge.log().contains("applied live")
    });
    let set = tb.gateway(
        "Meter A",
        7,
        "set_clock",
        json!({"time": "2026-01-01T00:00:00Z"}),
    );
    let after = result(&set)["drift_after_s"].as_i64().unwrap();
    assert!(after < -1_000_000, "the meter's clock is in January: {set}");
    let back = tb.gateway("Meter A", 8, "set_clock", json!({"time": "now"}));
    assert!(
        result(&back)["drift_after_s"].as_i64().unwrap().abs() <= 2,
        "{back}"
    );

    // The relay (class 70).
    let state = tb.gateway("Meter A", 9, "relay_state", json!({}));
    assert_eq!(result(&state)["output_state"], json!(true), "{state}");
    let off = tb.gateway("Meter A", 10, "disconnect", json!({}));
    assert_eq!(
        result(&off)["control_state"],
        json!("disconnected"),
        "{off}"
    );
    let state = tb.gateway("Meter A", 11, "relay_state", json!({}));
    assert_eq!(result(&state)["output_state"], json!(false));
    let on = tb.gateway("Meter A", 12, "reconnect", json!({}));
    assert_eq!(result(&on)["output_state"], json!(true), "{on}");

    // Errors: one clear sentence each, and the bridge goes on.
    let e = tb.gateway("Nobody", 13, "read", json!({"obis": "1-0:32.7.0"}));
    assert!(error(&e).contains("no meter named"), "{e}");
    let e = tb.gateway("Meter A", 14, "fly", json!({}));
    assert!(error(&e).contains("unknown method"), "{e}");
    let e = tb.gateway("Meter A", 15, "read", json!({"obis": "nonsense"}));
    assert!(error(&e).contains("OBIS"), "{e}");
    tb.publish("v1/gateway/rpc", "{this is not json");
    let e = tb.answer(|t, v| {
        t == "v1/gateway/rpc"
            && v["data"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("malformed JSON"))
    });
    assert!(e["data"]["error"].is_string());
    let polled = tb.gateway("Meter A", 16, "poll_now", json!({}));
    assert_eq!(result(&polled)["polled"], json!(true));

    // The gateway itself (device API on the gateway's session).
    let pong = tb.device(17, "ping", json!({}));
    assert_eq!(result(&pong)["pong"], json!(true), "{pong}");
    let meters = tb.device(18, "meters", json!({}));
    assert_eq!(result(&meters)[0]["name"], json!("Meter A"), "{meters}");
    let status = tb.device(19, "status", json!({}));
    assert!(result(&status)["meters"]["Meter A"].is_object());
    let ports = format!("{},{}", sims.ports[0], free_port());
    let scan = tb.device(20, "scan", json!({"hosts": "127.0.0.1", "ports": ports}));
    let found = result(&scan)["found"].as_array().unwrap().clone();
    assert_eq!(found.len(), 1, "{scan}");
    assert_eq!(found[0]["port"], json!(sims.ports[0]));
    assert_eq!(
        found[0]["serial_number"],
        json!(sims.models[0].serial_number())
    );
    let wide = tb.device(
        21,
        "scan",
        json!({"hosts": "127.0.0.1-127.0.0.200", "ports": "1-2"}),
    );
    assert!(error(&wide).contains("at most 256"), "{wide}");

    // The 1 s schedule was kept through all of it.
    let (_, body) = http_get(http, "/status");
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["meters"]["Meter A"]["skipped_slots"], json!(0), "{body}");
    let log = bridge.terminate();
    assert!(
        log.contains("rpc: meter \"Meter A\" disconnect -> ok"),
        "{log}"
    );
}

#[test]
fn device_mode_rpc_on_the_meters_own_session() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("rpc-device");
    let broker = Mosquitto::start(&dir.0);
    let tb = Tb::connect(broker.port, &["v1/devices/me/rpc/response/+"]);
    let sims = simulated(0..1, 91, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["D1"], |m| {
        m.set("access_token", "TOKEN-D1").unwrap();
    });
    setting(&db, "thingsboard.mode", "device");
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("the device session", Duration::from_secs(15), || {
        bridge.log().contains("publisher: connected")
    });
    std::thread::sleep(Duration::from_millis(500));
    let serial = tb.device(1, "read", json!({"obis": "0-0:96.1.0", "class": 1}));
    assert_eq!(
        result(&serial)["value"],
        json!(sims.models[0].serial_number())
    );
    let refused = tb.device(2, "disconnect", json!({}));
    assert!(error(&refused).contains("rpc_write"), "{refused}");
    let e = tb.device(3, "read", json!({}));
    assert!(error(&e).contains("obis"), "{e}");
    let e = tb.device(4, "fly", json!({}));
    assert!(error(&e).contains("unknown method"), "{e}");
    // A shared attribute on the meter's own device.
    tb.publish(
        "v1/devices/me/attributes",
        &json!({"interval_s": 4}).to_string(),
    );
    wait_for("interval 4 applied", Duration::from_secs(10), || {
        Store::open(&db).unwrap().meter("D1").unwrap().interval_s == 4
    });
    bridge.terminate();
}

#[test]
fn the_gateway_reports_itself_and_announces_disabled_meters() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("rpc-gateway-device");
    let broker = Mosquitto::start(&dir.0);
    let tb = Tb::connect(
        broker.port,
        &[
            "v1/devices/me/telemetry",
            "v1/devices/me/attributes",
            "v1/gateway/disconnect",
            "v1/gateway/attributes",
        ],
    );
    let sims = simulated(0..2, 92, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["G1", "G2"], |_| {});
    setting(&db, "thingsboard.stats_interval_s", "1");
    let mut bridge = Bridge::start(&db, &dir.0);
    let attrs = tb.answer(|t, v| t == "v1/devices/me/attributes" && v.get("version").is_some());
    assert_eq!(attrs["version"], json!(env!("CARGO_PKG_VERSION")));
    let stats =
        tb.answer(|t, v| t == "v1/devices/me/telemetry" && v["meters_polling"].as_u64() == Some(2));
    assert_eq!(stats["meters_configured"], json!(2), "{stats}");
    assert!(
        stats["rss_kib"].as_u64().unwrap() > 0 && stats["cpu_s"].is_number(),
        "{stats}"
    );
    // Identity attributes of each meter on its association, the clock drift among them.
    let identity =
        tb.answer(|t, v| t == "v1/gateway/attributes" && v["G1"]["serialNumber"].is_string());
    assert_eq!(
        identity["G1"]["serialNumber"],
        json!(sims.models[0].serial_number())
    );
    assert!(
        identity["G1"]["clockDrift_s"].as_i64().unwrap().abs() <= 2,
        "{identity}"
    );
    cli_ok(&db, &["meter", "edit", "G2", "--enabled", "false"]);
    let gone = tb.answer(|t, _| t == "v1/gateway/disconnect");
    assert_eq!(gone, json!({"device": "G2"}));
    bridge.terminate();
}

#[test]
fn shared_attributes_configure_meters_even_when_changed_offline() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("shared-attributes");
    let broker = Mosquitto::start(&dir.0);
    let tb = Tb::connect(
        broker.port,
        &["v1/gateway/attributes/request", "v1/gateway/attributes"],
    );
    let sims = simulated(0..1, 93, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["S1"], |_| {});
    let http = free_port();
    setting(&db, "http.bind", &format!("127.0.0.1:{http}"));
    let interval = || Store::open(&db).unwrap().meter("S1").unwrap().interval_s;
    let mut bridge = Bridge::start(&db, &dir.0);
    // Changed in ThingsBoard while the gateway was offline: the bridge asks on connecting.
    let request = tb.answer(|t, v| t == "v1/gateway/attributes/request" && v["device"] == "S1");
    assert!(
        request["keys"]
            .as_array()
            .unwrap()
            .contains(&json!("interval_s")),
        "{request}"
    );
    tb.publish(
        "v1/gateway/attributes/response",
        &json!({"id": request["id"], "device": "S1", "values": {"interval_s": 3}}).to_string(),
    );
    wait_for("interval 3 applied", Duration::from_secs(10), || {
        interval() == 3
    });
    // A live update, and the polling rate follows.
    tb.publish(
        "v1/gateway/attributes",
        &json!({"device": "S1", "data": {"interval_s": 2}}).to_string(),
    );
    wait_for("interval 2 applied", Duration::from_secs(10), || {
        interval() == 2
    });
    tb.answer(|t, v| t == "v1/gateway/attributes" && v["S1"]["config_applied_at"].is_string());
    let cycles = || -> u64 {
        let (_, body) = http_get(http, "/status");
        serde_json::from_str::<Value>(&body).unwrap()["meters"]["S1"]["cycles"]
            .as_u64()
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_secs(1));
    let c0 = cycles();
    std::thread::sleep(Duration::from_secs(6));
    let polled = cycles() - c0;
    assert!(
        (2..=4).contains(&polled),
        "{polled} polls in 6 s at a 2 s interval"
    );
    // Invalid values and forbidden keys change nothing and come back as config_error.
    tb.publish(
        "v1/gateway/attributes",
        &json!({"device": "S1", "data": {"interval_s": 0}}).to_string(),
    );
    let e = tb.answer(|t, v| {
        t == "v1/gateway/attributes"
            && v["S1"]["config_error"]
                .as_str()
                .is_some_and(|e| e.contains("interval_s"))
    });
    assert!(
        e["S1"]["config_error"]
            .as_str()
            .unwrap()
            .contains("1..86400"),
        "{e}"
    );
    tb.publish(
        "v1/gateway/attributes",
        &json!({"device": "S1", "data": {"rpc_write": true}}).to_string(),
    );
    tb.answer(|t, v| {
        t == "v1/gateway/attributes"
            && v["S1"]["config_error"]
                .as_str()
                .is_some_and(|e| e.contains("allow_remote_rpc_write"))
    });
    let m = Store::open(&db).unwrap().meter("S1").unwrap();
    assert_eq!((m.interval_s, m.rpc_write), (2, false));
    // Secrets are never taken from attributes.
    tb.publish(
        "v1/gateway/attributes",
        &json!({"device": "S1", "data": {"password": "x"}}).to_string(),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(Store::open(&db)
        .unwrap()
        .meter("S1")
        .unwrap()
        .password
        .is_none());
    bridge.terminate();
}

#[test]
fn a_slow_meter_gets_timeouts_and_busy_answers_each_request_answered_once() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("rpc-slow");
    let broker = Mosquitto::start(&dir.0);
    let tb = Tb::connect(
        broker.port,
        &["v1/gateway/rpc", "v1/devices/me/rpc/response/+"],
    );
    // Data requests are never answered: a call waits out its 3 s response time-out.
    let mut config = dlms_bridge::sim::net::SimConfig::new(
        dlms_bridge::sim::model::MeterModel::new(94, 0),
        Transport::Hdlc,
    );
    config.fault = dlms_bridge::sim::net::Fault::Silence;
    let sims = meters(vec![config]);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["Slow"], |m| {
        m.response_timeout_ms = 3000;
        m.interval_s = 60;
    });
    setting(&db, "rpc.timeout_s", "1");
    setting(&db, "rpc.queue", "1");
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("connected", Duration::from_secs(15), || {
        bridge.log().contains("publisher: connected")
    });
    // Let the first poll (60 s interval) time out, so the thread waits for calls.
    std::thread::sleep(Duration::from_secs(4));
    for id in 1..=4 {
        let req = json!({"device": "Slow", "data": {"id": id, "method": "read", "params": {"obis": "1-0:32.7.0"}}});
        tb.publish("v1/gateway/rpc", &req.to_string());
    }
    let answers = |id: i64| -> Vec<Value> {
        tb.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, v)| t == "v1/gateway/rpc" && v["id"] == json!(id))
            .map(|(_, v)| v["data"].clone())
            .collect()
    };
    wait_for("all four answered", Duration::from_secs(15), || {
        (1..=4).all(|id| !answers(id).is_empty())
    });
    // Later answers (the meter's, after the time-out) must not follow.
    std::thread::sleep(Duration::from_secs(7));
    let mut busy = 0;
    let mut timeouts = 0;
    for id in 1..=4 {
        let a = answers(id);
        assert_eq!(a.len(), 1, "request {id} answered once: {a:?}");
        let e = error(&a[0]);
        busy += usize::from(e.starts_with("busy"));
        timeouts += usize::from(e.starts_with("timeout"));
    }
    assert!(
        busy >= 1 && timeouts >= 1,
        "busy {busy}, timeouts {timeouts}"
    );
    // Device mode's malformed requests too: on the gateway session, an unknown method.
    let e = tb.device(9, "fly", json!({}));
    assert!(error(&e).contains("unknown gateway method"), "{e}");
    tb.publish("v1/devices/me/rpc/request/10", "{broken");
    let e = tb.answer(|t, _| t == "v1/devices/me/rpc/response/10");
    assert!(error(&e).contains("malformed JSON"), "{e}");
    bridge.terminate();
}

/// `dlms-bridge provision` against a stand-in for ThingsBoard's provisioning answer.
#[test]
fn provisioning_stores_the_token_once_and_explains_refusals() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("provision");
    let broker = Mosquitto::start(&dir.0);
    let tb = Tb::connect(broker.port, &["/provision/request"]);
    let provision = |db: &Path, timeout: &str| {
        std::process::Command::new(BIN)
            .args([
                "provision",
                "--host",
                "127.0.0.1",
                "--port",
                &broker.port.to_string(),
            ])
            .args([
                "--key",
                "K",
                "--secret",
                "S",
                "--device-name",
                "GW-1",
                "--timeout-s",
                timeout,
                "--db",
            ])
            .arg(db)
            .output()
            .unwrap()
    };
    // Answers every request after it arrives (the client subscribes first), as `answer` says.
    let answering = |answer: Value| {
        let seen = tb.seen.clone();
        let before = seen.lock().unwrap().len();
        let client = tb.client.clone();
        std::thread::spawn(move || {
            for _ in 0..200 {
                if seen.lock().unwrap().len() > before {
                    client
                        .publish(paho_mqtt::Message::new(
                            "/provision/response",
                            answer.to_string(),
                            1,
                        ))
                        .unwrap();
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        })
    };
    let db = dir.0.join("gw.db");
    let t = answering(
        json!({"status": "SUCCESS", "credentialsType": "ACCESS_TOKEN", "credentialsValue": "TOKEN-GW-1"}),
    );
    let out = provision(&db, "10");
    t.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let request = tb.answer(|t, _| t == "/provision/request");
    assert_eq!(
        (
            &request["deviceName"],
            &request["provisionDeviceKey"],
            &request["gateway"]
        ),
        (&json!("GW-1"), &json!("K"), &json!(true))
    );
    let s = Store::open(&db).unwrap().settings().unwrap();
    assert_eq!(s.broker.gateway_token.as_deref(), Some("TOKEN-GW-1"));
    assert_eq!(s.broker.port, broker.port);
    // Run again (every boot of a fleet image): nothing asked, no second device.
    let asked = tb.seen.lock().unwrap().len();
    let again = provision(&db, "2");
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already set"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(tb.seen.lock().unwrap().len(), asked, "no second request");
    // Refusals and silence: a clear line, exit 1, nothing stored.
    for (answer, needle) in [
        (Some(json!({"status": "NOT_FOUND"})), "NOT_FOUND"),
        (
            Some(json!({"status": "FAILURE", "errorMsg": "Failed to provision device!"})),
            "Failed to provision device!",
        ),
        (None, "no answer"),
    ] {
        let db = dir
            .0
            .join(format!("gw-{needle}.db").replace(' ', "_").replace('!', ""));
        let t = answer.map(answering);
        let out = provision(&db, "2");
        if let Some(t) = t {
            t.join().unwrap();
        }
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(Store::open(&db)
            .unwrap()
            .settings()
            .unwrap()
            .broker
            .gateway_token
            .is_none());
    }
}

/// Issue 26: the `trace` RPC answers the meter's last frames, the same document as
/// `GET /api/meters/NAME/trace`.
#[test]
fn trace_rpc_answers_the_meters_last_frames() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("rpc-trace");
    let broker = Mosquitto::start(&dir.0);
    let tb = Tb::connect(broker.port, &["v1/gateway/rpc"]);
    let sims = simulated(0..1, 92, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["Meter T"], |_| {});
    let http = free_port();
    setting(&db, "http.bind", &format!("127.0.0.1:{http}"));
    setting(&db, "http.api_token", "trace-token-0123456789");
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("connected and polling", Duration::from_secs(15), || {
        bridge.log().contains("publisher: connected")
            && http_get(http, "/status").1.contains("\"successes\":")
    });
    let answer = tb.gateway("Meter T", 1, "trace", json!({}));
    let (code, body) = common::http(
        http,
        "GET",
        "/api/meters/Meter%20T/trace",
        Some("Bearer trace-token-0123456789"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let api: Value = serde_json::from_str(&body).unwrap();
    let rpc = result(&answer);
    assert_eq!(rpc["meter"], "Meter T");
    assert_eq!(rpc["capacity"], api["capacity"]);
    let rpc_entries = rpc["entries"].as_array().unwrap();
    let api_entries = api["entries"].as_array().unwrap();
    assert!(!rpc_entries.is_empty(), "{answer}");
    // The meter polls on: what both hold is the same, entry for entry.
    let mut shared = 0;
    for e in rpc_entries {
        if let Some(same) = api_entries.iter().find(|a| a["seq"] == e["seq"]) {
            assert_eq!(same, e);
            shared += 1;
        }
    }
    assert!(shared > 0, "{answer} / {body}");
    let text: Vec<&str> = rpc_entries
        .iter()
        .map(|e| e["decoded"].as_str().unwrap())
        .collect();
    assert!(
        text.iter().any(|t| t.contains("GET-Request"))
            && text.iter().any(|t| t.contains("GET-Response")),
        "{text:?}"
    );
    let last = tb.gateway("Meter T", 2, "trace", json!({"last": 3}));
    assert_eq!(
        result(&last)["entries"].as_array().unwrap().len(),
        3,
        "{last}"
    );
    let bad = tb.gateway("Meter T", 3, "trace", json!({"last": 0}));
    assert!(error(&bad).contains("last"), "{bad}");
    bridge.terminate();
}
