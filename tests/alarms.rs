//! Alarms against the bridge binary, simulator processes and mosquitto: the gateway's
//! publisher alarm told to ThingsBoard when the broker is back, a meter refusing our password
//! (association rejected) and a meter whose clock runs ahead (clock drift), cleared by fixing
//! the meter through the API; acknowledgements and cleared alarms survive a restart; HTTPS for
//! the page; failed sign-ins limited per address; the log API.

mod common;

use common::{
    free_port, have, have_mosquitto, http, http_get, simulated, simulator, terminate_within,
    wait_for, wait_port, Bridge, Mosquitto, Subscriber, TempDir,
};
use dlms_bridge::config::values::{AuthKind, Transport};
use dlms_bridge::config::MeterConfig;
use dlms_bridge::store::Store;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "alarm-test-token-0123456789";

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn alarms(port: u16, active: bool) -> Vec<Value> {
    let path = if active {
        "/api/alarms?active=true"
    } else {
        "/api/alarms"
    };
    let (code, body) = http(port, "GET", path, Some(&bearer()), None);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn find(list: &[Value], subject: &str, kind: &str) -> Option<Value> {
    list.iter()
        .find(|a| a["subject"] == subject && a["type"] == kind)
        .cloned()
}

fn settings(db: &Path, pairs: &[(&str, String)]) {
    let mut store = Store::open(db).unwrap();
    for (k, v) in pairs {
        store.set_setting(k, v).unwrap();
    }
}

/// A bridge with its page on a free port, the API token, `extra` settings and `meters`,
/// started in `dir`; returns it with the page's port and the database.
fn start_bridge(
    dir: &Path,
    extra: &[(&str, String)],
    meters: &[MeterConfig],
) -> (Bridge, u16, std::path::PathBuf) {
    let http_port = free_port();
    let db = dir.join("bridge.db");
    let mut pairs = vec![
        ("http.bind", format!("127.0.0.1:{http_port}")),
        ("http.api_token", TOKEN.to_string()),
    ];
    pairs.extend(extra.iter().cloned());
    settings(&db, &pairs);
    let mut store = Store::open(&db).unwrap();
    for m in meters {
        store.add_meter(m).unwrap();
    }
    drop(store);
    let bridge = Bridge::start(&db, dir);
    wait_port(http_port, Duration::from_secs(10));
    (bridge, http_port, db)
}

/// At the shipped defaults (a meter added with host, port and a wrong password): one
/// attempt, not one a minute and then more, and one alarm.
#[test]
fn a_wrong_password_at_the_defaults_is_tried_once() {
    let temp = TempDir::new("alarm-password-defaults");
    let port = free_port();
    let _sim = simulator(port, &["--password", "right-one"]);
    let mut m = MeterConfig::tcp("Wrong", "127.0.0.1", port);
    m.server_physical = Some(17);
    m.auth = AuthKind::Low;
    m.password = Some(dlms_bridge::config::values::Secret("wrong-one".into()));
    let (mut bridge, http_port, db) = start_bridge(&temp.0, &[("mqtt.host", String::new())], &[m]);
    wait_for("the refusal", Duration::from_secs(30), || {
        find(&alarms(http_port, true), "Wrong", "association_rejected").is_some()
    });
    // The bridge's refusal is on record: `meter test` does not try the same password.
    let out = common::cli(&db, &["meter", "test", "Wrong"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success()
            && stderr.contains("refused these credentials")
            && stderr.contains("the bridge"),
        "{stderr}"
    );
    // Two more slots at the default 60 s interval.
    std::thread::sleep(Duration::from_secs(130));
    let log = bridge.terminate();
    let attempts = log
        .matches("meter \"Wrong\": association rejected permanently")
        .count();
    assert_eq!(attempts, 1, "{log}");
    assert!(log.contains("not tried again for 60 min"), "{log}");
}

fn meter(name: &str, port: u16, tweak: impl Fn(&mut MeterConfig)) -> MeterConfig {
    let mut m = MeterConfig::tcp(name, "127.0.0.1", port);
    m.server_physical = Some(17);
    m.interval_s = 1;
    m.response_timeout_ms = 500;
    tweak(&mut m);
    m
}

/// The gateway device's alarm telemetry (v1/devices/me/telemetry): (state, type) in order.
fn gateway_alarm_telemetry(messages: &[(String, Value)]) -> Vec<(String, String)> {
    messages
        .iter()
        .filter(|(t, v)| t == "v1/devices/me/telemetry" && v["values"]["alarm_type"].is_string())
        .map(|(_, v)| {
            (
                v["values"]["alarm_state"].as_str().unwrap().to_string(),
                v["values"]["alarm_type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_publisher_alarm_reaches_thingsboard_when_the_broker_is_back() {
    if !have_mosquitto() {
        assert!(!common::required(), "mosquitto is required here");
        return;
    }
    let temp = TempDir::new("alarm-publisher");
    let dir = temp.0.clone();
    let mut broker = Mosquitto::start(&dir);
    // Subscribed before the outage (a persistent session): what the bridge sends when the
    // broker is back waits for this subscriber.
    let sub = Subscriber::start(broker.port, "v1/devices/me/telemetry");
    broker.stop();
    let sim_port = free_port();
    let _sim = simulator(sim_port, &[]);
    let (mut bridge, http_port, _) = start_bridge(
        &dir,
        &[
            ("mqtt.port", broker.port.to_string()),
            ("mqtt.reconnect_max_s", "2".into()),
            ("alarm.publisher_offline_s", "3".into()),
        ],
        &[meter("M", sim_port, |_| {})],
    );
    wait_for("the publisher alarm", Duration::from_secs(20), || {
        find(&alarms(http_port, true), "gateway", "publisher_offline").is_some()
    });
    let raised = find(&alarms(http_port, true), "gateway", "publisher_offline").unwrap();
    assert_eq!(raised["severity"], "MAJOR");
    assert!(raised["meter"].is_null());
    let (_, metrics) = http_get(http_port, "/metrics");
    assert!(metrics
        .contains("dlms_bridge_alarms_active{type=\"publisher_offline\",severity=\"MAJOR\"} 1"));
    let (_, status) = http_get(http_port, "/status");
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["alarms"]["active"], 1, "{}", status["alarms"]);
    broker.restart();
    wait_for("cleared", Duration::from_secs(20), || {
        alarms(http_port, true).is_empty()
    });
    wait_for(
        "the gateway's alarm telemetry",
        Duration::from_secs(20),
        || gateway_alarm_telemetry(&sub.messages()).len() >= 2,
    );
    assert_eq!(
        gateway_alarm_telemetry(&sub.finish()),
        [
            ("raised".to_string(), "publisher_offline".to_string()),
            ("cleared".to_string(), "publisher_offline".to_string())
        ]
    );
    let log = bridge.terminate();
    assert!(
        log.contains("raised: gateway publisher_offline (MAJOR)"),
        "{log}"
    );
}

#[test]
fn a_small_outbox_filling_up_raises_outbox_and_dropped_alarms() {
    let temp = TempDir::new("alarm-outbox");
    let dir = temp.0.clone();
    let sim_port = free_port();
    let _sim = simulator(sim_port, &[]);
    // No broker at all: readings stay in an outbox of 10 rows.
    let (mut bridge, http_port, _) = start_bridge(
        &dir,
        &[
            ("mqtt.port", free_port().to_string()),
            ("outbox.max_rows", "10".into()),
        ],
        &[meter("M", sim_port, |_| {})],
    );
    wait_for("outbox and dropped alarms", Duration::from_secs(40), || {
        let a = alarms(http_port, true);
        find(&a, "gateway", "outbox_high").is_some()
            && find(&a, "gateway", "readings_dropped").is_some()
    });
    let a = alarms(http_port, true);
    let high = find(&a, "gateway", "outbox_high").unwrap();
    assert!(
        high["detail"]
            .as_str()
            .unwrap()
            .contains("of outbox.max_rows 10"),
        "{high}"
    );
    let dropped = find(&a, "gateway", "readings_dropped").unwrap();
    assert_eq!(dropped["severity"], "CRITICAL");
    wait_for("drops counted", Duration::from_secs(20), || {
        find(&alarms(http_port, true), "gateway", "readings_dropped")
            .is_some_and(|x| x["count"].as_u64() > dropped["count"].as_u64())
    });
    bridge.terminate();
}

#[test]
fn meter_alarms_rise_clear_and_survive_a_restart() {
    let temp = TempDir::new("alarm-meters");
    let dir = temp.0.clone();
    let locked = free_port();
    let _locked = simulator(locked, &["--password", "right-one"]);
    let ahead = free_port();
    let _ahead = simulator(ahead, &["--clock-offset-s", "300", "--seed", "9"]);
    let (mut bridge, http_port, db) = start_bridge(
        &dir,
        &[
            ("mqtt.host", String::new()),
            ("alarm.clock_drift_s", "120".into()),
        ],
        &[
            meter("Locked", locked, |m| {
                m.auth = AuthKind::Low;
                m.password = Some(dlms_bridge::config::values::Secret("wrong-one".into()));
            }),
            meter("Ahead", ahead, |_| {}),
        ],
    );
    wait_for("both meter alarms", Duration::from_secs(30), || {
        let a = alarms(http_port, true);
        find(&a, "Locked", "association_rejected").is_some()
            && find(&a, "Ahead", "clock_drift").is_some()
    });
    let a = alarms(http_port, true);
    let rejected = find(&a, "Locked", "association_rejected").unwrap();
    assert_eq!(rejected["severity"], "CRITICAL");
    let drift = find(&a, "Ahead", "clock_drift").unwrap();
    assert_eq!(drift["severity"], "WARNING");
    assert!(
        drift["detail"].as_str().unwrap().contains("ahead of"),
        "{drift}"
    );
    // Issue 25 item 2: no new attempt after a refusal for good (it was retried every second
    // here, and 9-10 times in 3-5 minutes at the defaults, until the meter locked).
    std::thread::sleep(Duration::from_secs(10));
    let still = find(&alarms(http_port, true), "Locked", "association_rejected").unwrap();
    assert_eq!(still["count"], rejected["count"], "tried again: {still}");
    let status: Value =
        serde_json::from_str(&http(http_port, "GET", "/status", None, None).1).unwrap();
    let locked = &status["meters"]["Locked"];
    assert_eq!(locked["state"], "needs-configuration", "{locked}");
    let id = rejected["id"].as_i64().unwrap();
    let (code, body) = http(
        http_port,
        "POST",
        &format!("/api/alarms/{id}/ack"),
        Some(&bearer()),
        Some(r#"{"by":"Anna"}"#),
    );
    assert_eq!(code, 200, "{body}");
    let (code, _) = http(
        http_port,
        "POST",
        "/api/alarms/999999/ack",
        Some(&bearer()),
        None,
    );
    assert_eq!(code, 404);
    // Fixing the password through the API clears the alarm; the drift stays (120 s limit).
    let (code, body) = http(
        http_port,
        "PATCH",
        "/api/meters/Locked",
        Some(&bearer()),
        Some(r#"{"password":"right-one"}"#),
    );
    assert_eq!(code, 200, "{body}");
    wait_for("the rejection cleared", Duration::from_secs(30), || {
        find(&alarms(http_port, true), "Locked", "association_rejected").is_none()
    });
    let before = alarms(http_port, false);
    let cleared = before.iter().find(|x| x["id"] == id).unwrap().clone();
    assert_eq!(cleared["acked_by"], "Anna");
    assert!(cleared["cleared_ms"].is_i64());
    bridge.terminate();
    // A restart keeps them: the cleared one as it was, the drift still active (same id).
    let mut bridge = Bridge::start(&db, &dir);
    wait_port(http_port, Duration::from_secs(10));
    let after = alarms(http_port, false);
    assert_eq!(after.iter().find(|x| x["id"] == id), Some(&cleared));
    let drift_after = find(&after, "Ahead", "clock_drift").unwrap();
    assert_eq!(drift_after["id"], drift["id"]);
    assert_eq!(drift_after["active"], true);
    bridge.terminate();
}

/// A self-signed certificate for 127.0.0.1 made with the `openssl` tool.
fn certificate(dir: &Path) -> Option<(String, String)> {
    if !have("openssl", &["version"]) {
        return None;
    }
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then(|| (cert.display().to_string(), key.display().to_string()))
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "10"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn https_sign_in_limits_and_the_log_api() {
    let temp = TempDir::new("page-https");
    let dir = temp.0.clone();
    let (Some((cert, key)), true) = (certificate(&dir), have("curl", &["--version"])) else {
        assert!(!common::required(), "openssl and curl are required here");
        eprintln!("skipped: needs openssl and curl");
        return;
    };
    let (mut bridge, http_port, db) = start_bridge(
        &dir,
        &[
            ("mqtt.host", String::new()),
            ("http.tls_cert", cert.clone()),
            ("http.tls_key", key.clone()),
        ],
        &[],
    );
    let base = format!("https://127.0.0.1:{http_port}");
    let (ok, body) = curl(&["--cacert", &cert, &format!("{base}/status")]);
    assert!(ok && body.contains("\"uptime_s\""), "{body}");
    let (ok, body) = curl(&["--cacert", &cert, &format!("{base}/")]);
    assert!(ok && body.contains("<title>dlms-bridge</title>"), "{body}");
    // Plain HTTP on the HTTPS port gets nothing.
    let (code, _) = http_get(http_port, "/status");
    assert_eq!(code, 0, "plain HTTP answered on the HTTPS port");
    // The log API over HTTPS: lines after a number, and the newest number.
    let auth = format!("Authorization: {}", bearer());
    let (ok, body) = curl(&[
        "--cacert",
        &cert,
        "-H",
        &auth,
        &format!("{base}/api/logs?since=0"),
    ]);
    assert!(ok, "{body}");
    let logs: Value = serde_json::from_str(&body).unwrap();
    let lines = logs["lines"].as_array().unwrap();
    assert!(
        lines.iter().any(|l| l["text"]
            .as_str()
            .unwrap()
            .contains(&format!("status page on https://127.0.0.1:{http_port}/"))),
        "{body}"
    );
    let newest = logs["newest"].as_u64().unwrap();
    let (_, body) = curl(&[
        "--cacert",
        &cert,
        "-H",
        &auth,
        &format!("{base}/api/logs?since={newest}"),
    ]);
    let later: Value = serde_json::from_str(&body).unwrap();
    assert!(later["lines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["seq"].as_u64() > Some(newest)));
    // Five wrong tokens: the address is refused for the rest of the minute, right token or not.
    for i in 0..5 {
        let (_, body) = curl(&[
            "--cacert",
            &cert,
            "-w",
            " %{http_code}",
            "-H",
            "Authorization: Bearer wrong-token-0123456789",
            &format!("{base}/api/alarms"),
        ]);
        assert!(body.ends_with(" 401"), "try {i}: {body}");
    }
    let (_, body) = curl(&[
        "--cacert",
        &cert,
        "-i",
        "-H",
        &auth,
        &format!("{base}/api/alarms"),
    ]);
    assert!(body.starts_with("HTTP/1.1 429"), "{body}");
    assert!(
        body.to_ascii_lowercase().contains("retry-after: "),
        "{body}"
    );
    assert!(
        body.contains("too many failed sign-ins from 127.0.0.1"),
        "{body}"
    );
    let log = bridge.terminate();
    assert!(!log.contains(TOKEN), "the token is in the log");
    // A key that does not match the certificate: no page, a clear reason.
    settings(&db, &[("http.tls_key", cert.clone())]);
    let mut bridge = Bridge::start(&db, &dir);
    wait_for("the refusal", Duration::from_secs(10), || {
        bridge
            .log()
            .contains("status page not started: http.tls_key")
    });
    bridge.terminate();
}

/// A meter that needs 12 s between connections is judged by that, not by its 1 s interval
/// (with a gap longer than the interval the offline alarm flapped: a new user's finding);
/// /status says what each meter is expected at.
#[test]
fn a_reconnect_gap_longer_than_the_interval_sets_the_expected_interval() {
    let temp = TempDir::new("alarm-gap");
    let sims = simulated(0..2, 92, Transport::Hdlc);
    let (mut bridge, http_port, _db) = start_bridge(
        &temp.0,
        &[("mqtt.host", String::new())],
        &[
            meter("Gap", sims.ports[0], |m| m.reconnect_gap_s = 12),
            meter("Plain", sims.ports[1], |_| {}),
        ],
    );
    let expected = |name: &str| -> Option<u64> {
        let (_, body) = common::http_get(http_port, "/status");
        let v: Value = serde_json::from_str(&body).ok()?;
        v["meters"][name]["expected_every_s"].as_u64()
    };
    wait_for("both meters in the status", Duration::from_secs(20), || {
        expected("Gap").is_some() && expected("Plain").is_some()
    });
    assert_eq!(expected("Gap"), Some(12));
    assert_eq!(expected("Plain"), Some(1));
    bridge.terminate();
}

/// At the shipped defaults: a meter added with only its host and port (60 s interval) is
/// healthy for 3 minutes and raises no alarm (it raised `meter_offline` 11 s after every read,
/// and /healthz failed ~50 of every 60 s, while `interval_s` never reached the status).
#[test]
fn a_meter_at_the_default_interval_raises_no_alarm_and_health_stays_200() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("alarm-defaults");
    let broker = Mosquitto::start(&dir.0);
    let sims = simulated(0..1, 91, Transport::Hdlc);
    let m = MeterConfig::tcp("Default", "127.0.0.1", sims.ports[0]);
    let (mut bridge, http, _db) =
        start_bridge(&dir.0, &[("mqtt.port", broker.port.to_string())], &[m]);
    wait_for("the first read", Duration::from_secs(70), || {
        http_get(http, "/healthz").0 == 200
    });
    let t0 = Instant::now();
    let mut samples = 0;
    while t0.elapsed() < Duration::from_secs(180) {
        let (code, body) = http_get(http, "/healthz");
        assert_eq!(code, 200, "after {:?}: {body}", t0.elapsed());
        let active = alarms(http, true);
        assert!(active.is_empty(), "after {:?}: {active:?}", t0.elapsed());
        samples += 1;
        std::thread::sleep(Duration::from_secs(2));
    }
    eprintln!("{samples} samples over 3 minutes: /healthz 200, no alarm");
    terminate_within(&mut bridge, Duration::from_secs(5));
}
