//! End to end: simulated meters -> `dlms-bridge run` (a real process) -> a real mosquitto on a
//! loopback port -> a subscriber that checks every value against the simulator's truth.
//! mosquitto is required in CI (DLMS_BRIDGE_REQUIRE_INTEROP=1); elsewhere the tests skip with a
//! note when it is not installed.

mod common;

use common::*;
use dlms_bridge::config::values::Transport;
use dlms_bridge::config::MeterConfig;
use dlms_bridge::cosem::Obis;
use dlms_bridge::sim::model::MeterModel;
use dlms_bridge::sim::net::{Fault, SimConfig};
use dlms_bridge::store::Store;
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[test]
fn gateway_mode_end_to_end() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("gateway");
    let broker = Mosquitto::start(&dir.0);
    let sims = simulated(0..3, 40, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    let names = ["Meter A", "Meter B", "Meter C"];
    configure(&db, broker.port, &sims, &names, |_| {});
    let sub = Subscriber::start(broker.port, "v1/gateway/#");
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("readings", Duration::from_secs(20), || {
        gateway_readings(&sub.messages())
            .values()
            .all(|v| v.len() >= 4)
            && gateway_readings(&sub.messages()).len() == 3
    });
    let log = bridge.terminate();
    let msgs = sub.finish();
    for name in names {
        let connect: Vec<&Value> = msgs
            .iter()
            .filter(|(t, v)| t == "v1/gateway/connect" && v["device"] == name)
            .map(|(_, v)| v)
            .collect();
        assert!(!connect.is_empty(), "no v1/gateway/connect for {name}");
        assert_eq!(connect[0]["type"], "electricity-meter");
    }
    let readings = gateway_readings(&msgs);
    // No fault injected: every reading arrives exactly once.
    assert_no_duplicates(&readings);
    for (i, name) in names.iter().enumerate() {
        let r = &readings[*name];
        for (ts, values) in r {
            check_values(&sims.models[i], *ts, values);
        }
        check_continuity(r, 1600, name);
        let attrs: Vec<&Value> = msgs
            .iter()
            .filter(|(t, _)| t == "v1/gateway/attributes")
            .filter_map(|(_, v)| v.get(*name))
            .collect();
        let identity: Vec<&&Value> = attrs
            .iter()
            .filter(|a| a.get("serialNumber").is_some())
            .collect();
        assert_eq!(identity.len(), 1, "{name}: identity once");
        assert_eq!(identity[0]["serialNumber"], sims.models[i].serial_number());
        assert_eq!(identity[0]["obisMap"]["voltage_l1"], "1-0:32.7.0*255:3:2");
        // Issue 25 item 12: each key's unit, once (they do not change).
        let units: Vec<&&Value> = attrs.iter().filter(|a| a.get("units").is_some()).collect();
        assert_eq!(units.len(), 1, "{name}: units once: {attrs:?}");
        assert_eq!(units[0]["units"]["voltage_l1"], "V");
        assert_eq!(units[0]["units"]["active_energy_import"], "Wh");
    }
    let store = Store::open(&db).unwrap();
    assert_eq!(
        store.outbox_stats().unwrap().rows,
        0,
        "acknowledged readings are deleted: {log}"
    );
    assert!(log.contains("stopping: releasing 3 meter(s)"), "{log}");
}

/// Issue 25 item 3: every gateway used the client id `dlms-bridge`, and two on one broker
/// knocked each other off every second. Two bridges with the default client id (two
/// databases, as two gateways or two services on one machine) share one broker.
#[test]
fn two_bridges_at_the_default_client_id_both_stay_connected() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("two-bridges");
    let broker = Mosquitto::start(&dir.0);
    let (sims_a, sims_b) = (
        simulated(0..1, 41, Transport::Hdlc),
        simulated(1..2, 41, Transport::Hdlc),
    );
    let (a, b) = (dir.0.join("a.db"), dir.0.join("b.db"));
    configure(&a, broker.port, &sims_a, &["A"], |_| {});
    configure(&b, broker.port, &sims_b, &["B"], |_| {});
    let sub = Subscriber::start(broker.port, "v1/gateway/telemetry");
    let mut first = Bridge::start(&a, &dir.0);
    let mut other = Bridge::start(&b, &dir.0);
    wait_for("both meters' readings", Duration::from_secs(20), || {
        gateway_readings(&sub.messages()).len() == 2
    });
    std::thread::sleep(Duration::from_secs(15));
    let logs = [first.terminate(), other.terminate()];
    for log in &logs {
        assert!(!log.contains("connection to"), "a session lost: {log}");
        assert!(log.contains("connected to"), "{log}");
    }
    let ids: Vec<&str> = logs
        .iter()
        .map(|l| {
            l.split(" as \"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("")
        })
        .collect();
    assert!(
        ids[0].starts_with("dlms-bridge-") && ids[0] != ids[1],
        "{ids:?}"
    );
}

#[test]
fn device_mode_end_to_end() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("device");
    let broker = Mosquitto::start(&dir.0);
    let sims = simulated(0..2, 41, Transport::Wrapper);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["D1", "D2"], |m| {
        m.set("transport", "wrapper").unwrap();
        m.server_physical = None;
        m.set("access_token", &format!("token-{}", m.name)).unwrap();
    });
    Store::open(&db)
        .unwrap()
        .set_setting("thingsboard.mode", "device")
        .unwrap();
    let sub = Subscriber::start(broker.port, "v1/devices/me/#");
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("readings", Duration::from_secs(20), || {
        sub.messages()
            .iter()
            .filter(|(t, _)| t == "v1/devices/me/telemetry")
            .count()
            >= 6
    });
    bridge.terminate();
    let msgs = sub.finish();
    // Device-API telemetry: an array of {ts, values}; which meter is told by its values.
    let mut per_meter = [0usize; 2];
    for (topic, v) in &msgs {
        match topic.as_str() {
            "v1/devices/me/telemetry" => {
                for item in v.as_array().expect("device telemetry is an array") {
                    let volts = item["values"]["voltage_l1"].as_f64().unwrap();
                    let i = (0..2)
                        .find(|i| truth(&sims.models[*i], Obis::new(1, 0, 32, 7, 0, 255)) == volts)
                        .expect("a known meter");
                    check_values(
                        &sims.models[i],
                        item["ts"].as_i64().unwrap(),
                        &item["values"],
                    );
                    per_meter[i] += 1;
                }
            }
            "v1/devices/me/attributes" => assert!(
                v["serialNumber"].is_string() || v["units"]["voltage_l1"] == "V",
                "{v}"
            ),
            // On connecting, each device session asks for its shared attributes (issue 13).
            "v1/devices/me/attributes/request/1" => {
                assert!(
                    v["sharedKeys"].as_str().unwrap().contains("interval_s"),
                    "{v}"
                )
            }
            other => panic!("unexpected topic {other}"),
        }
    }
    assert!(per_meter.iter().all(|n| *n >= 2), "{per_meter:?}");
    assert!(!msgs.iter().any(|(t, _)| t.starts_with("v1/gateway")));
}

#[test]
fn broker_outage_loses_nothing_and_keeps_order_and_timestamps() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("outage");
    let mut broker = Mosquitto::start(&dir.0);
    let sims = simulated(0..2, 42, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["O1", "O2"], |_| {});
    let sub = Subscriber::start(broker.port, "v1/gateway/#");
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("first readings", Duration::from_secs(15), || {
        gateway_readings(&sub.messages()).len() == 2
    });
    broker.stop();
    let down_from = dlms_bridge::clock::now_ms();
    std::thread::sleep(Duration::from_secs(5));
    let store = Store::open(&db).unwrap();
    assert!(
        store.outbox_stats().unwrap().rows >= 6,
        "readings wait in the outbox while the broker is down"
    );
    broker.restart();
    let up_at = dlms_bridge::clock::now_ms();
    wait_for("backlog drained", Duration::from_secs(30), || {
        store.outbox_stats().unwrap().rows == 0
    });
    std::thread::sleep(Duration::from_secs(2));
    let log = bridge.terminate();
    let readings = gateway_readings(&sub.finish());
    for (i, name) in ["O1", "O2"].iter().enumerate() {
        let r = &readings[*name];
        check_continuity(r, 1600, name);
        let during: Vec<_> = r
            .iter()
            .filter(|(ts, _)| (down_from..up_at).contains(ts))
            .collect();
        assert!(
            during.len() >= 4,
            "{name}: readings taken during the outage arrive with their own timestamps ({}): {log}",
            during.len()
        );
        for (ts, v) in r {
            check_values(&sims.models[i], *ts, v);
        }
    }
}

#[test]
fn sigkill_loses_no_accepted_reading() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("sigkill");
    let sims = simulated(0..2, 43, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    // First run: no broker on this port, so everything accepted stays in the outbox.
    configure(&db, free_port(), &sims, &["K1", "K2"], |_| {});
    let mut bridge = Bridge::start(&db, &dir.0);
    let store = Store::open(&db).unwrap();
    // Readings, not rows: each meter's identity and units attributes take rows too.
    let telemetry = || {
        store
            .outbox_oldest(0, 100_000)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == dlms_bridge::store::outbox::EntryKind::Telemetry)
            .count()
    };
    wait_for("outbox filling", Duration::from_secs(20), || {
        telemetry() >= 8
    });
    bridge.kill9();
    let accepted: HashSet<(String, i64)> = store
        .outbox_oldest(0, 100_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == dlms_bridge::store::outbox::EntryKind::Telemetry)
        .map(|e| (e.device, e.ts_ms))
        .collect();
    assert!(accepted.len() >= 6);
    // Second run, with a broker: the accepted readings all arrive.
    let broker = Mosquitto::start(&dir.0);
    let mut s = Store::open(&db).unwrap();
    s.set_setting("mqtt.port", &broker.port.to_string())
        .unwrap();
    let sub = Subscriber::start(broker.port, "v1/gateway/#");
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for(
        "accepted readings delivered",
        Duration::from_secs(30),
        || {
            let got: HashSet<(String, i64)> = gateway_readings(&sub.messages())
                .into_iter()
                .flat_map(|(d, r)| r.into_iter().map(move |(ts, _)| (d.clone(), ts)))
                .collect();
            accepted.is_subset(&got)
        },
    );
    bridge.terminate();
    let readings = gateway_readings(&sub.finish());
    for (i, name) in ["K1", "K2"].iter().enumerate() {
        for (ts, v) in &readings[*name] {
            check_values(&sims.models[i], *ts, v);
        }
    }
}

#[test]
fn faulty_meters_recover_without_disturbing_the_others() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("faults");
    let broker = Mosquitto::start(&dir.0);
    let healthy = SimConfig::new(MeterModel::new(44, 0), Transport::Hdlc);
    let mut silent = SimConfig::new(MeterModel::new(44, 1), Transport::Hdlc);
    silent.fault = Fault::Silence;
    silent.fault_limit = Some(4);
    let mut garbage = SimConfig::new(MeterModel::new(44, 2), Transport::Hdlc);
    garbage.fault = Fault::Garbage;
    let mut dropping = SimConfig::new(MeterModel::new(44, 3), Transport::Hdlc);
    dropping.fault = Fault::DropMidBlock;
    dropping.fault_limit = Some(3);
    dropping.server.max_receive_pdu = 48; // the profile columns (60 bytes) then need blocks
    let sims = meters(vec![healthy, silent, garbage, dropping]);
    let db = dir.0.join("bridge.db");
    let names = ["Healthy", "Silent", "Garbage", "Dropping"];
    configure(&db, broker.port, &sims, &names, |m| {
        if m.name == "Dropping" {
            m.measurements.push(dlms_bridge::config::Measurement {
                key: "profile_columns".into(),
                obis: "1-0:99.1.0*255".parse().unwrap(),
                class_id: 7,
                attribute: 3,
            });
        }
    });
    let sub = Subscriber::start(broker.port, "v1/gateway/#");
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("every meter publishing", Duration::from_secs(40), || {
        let r = gateway_readings(&sub.messages());
        names
            .iter()
            .all(|n| r.get(*n).is_some_and(|v| v.len() >= 2))
            && r["Healthy"].len() >= 10
    });
    let log = bridge.terminate();
    let readings = gateway_readings(&sub.finish());
    // The healthy meter kept its 1 s schedule while the others failed and reconnected.
    check_continuity(&readings["Healthy"], 1600, "Healthy");
    for (i, name) in names.iter().enumerate() {
        for (ts, v) in &readings[*name] {
            check_values(&sims.models[i], *ts, v);
        }
    }
    for (i, n) in [(1usize, 4u64), (3, 3)] {
        assert_eq!(
            sims.counters[i].faults.load(Ordering::Relaxed),
            n,
            "{} faults injected: {log}",
            names[i]
        );
    }
    assert!(log.contains("meter \"Silent\": no answer"), "{log}");
}

#[test]
fn configuration_changes_apply_to_a_running_bridge() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("live");
    let broker = Mosquitto::start(&dir.0);
    let sims = simulated(0..2, 45, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["First"], |_| {});
    Store::open(&db)
        .unwrap()
        .set_setting("log.status_interval_s", "1")
        .unwrap();
    let sub = Subscriber::start(broker.port, "v1/gateway/#");
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("First publishing", Duration::from_secs(15), || {
        gateway_readings(&sub.messages()).contains_key("First")
    });
    // Add a meter with the CLI while the bridge runs.
    let port = sims.ports[1].to_string();
    let out = cli(
        &db,
        &[
            "meter",
            "add",
            "Second",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--server-physical",
            "17",
            "--interval-s",
            "1",
            "--measure",
            "volts=1-0:32.7.0*255",
            "--measure",
            "serial=0-0:96.1.0*255:1:2",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("Second publishing", Duration::from_secs(15), || {
        gateway_readings(&sub.messages()).contains_key("Second")
    });
    let second = &gateway_readings(&sub.messages())["Second"][0].1;
    assert_eq!(
        second["volts"].as_f64().unwrap(),
        truth(&sims.models[1], Obis::new(1, 0, 32, 7, 0, 255))
    );
    assert_eq!(second["serial"], sims.models[1].serial_number());
    // Remove the first: its readings stop.
    assert!(cli(&db, &["meter", "rm", "First"]).status.success());
    std::thread::sleep(Duration::from_secs(2));
    let before = gateway_readings(&sub.messages())["First"].len();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        gateway_readings(&sub.messages())["First"].len(),
        before,
        "a removed meter stops"
    );
    // Edit the second: a new measurement set shows up.
    assert!(cli(
        &db,
        &["meter", "edit", "Second", "--measure", "hz=1-0:14.7.0*255"]
    )
    .status
    .success());
    wait_for("edited measurements", Duration::from_secs(15), || {
        gateway_readings(&sub.messages())["Second"]
            .iter()
            .any(|(_, v)| v.get("hz").is_some())
    });
    let log = bridge.terminate();
    assert!(
        log.contains("status: meter \"Second\": polling cycles="),
        "{log}"
    );
    assert!(log.contains("success=100.0%"), "{log}");
}

#[test]
fn meter_commands_validate_and_never_half_apply() {
    let dir = TempDir::new("cli");
    let db = dir.0.join("bridge.db");
    let ok = |args: &[&str]| {
        let o = cli(&db, args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let fails = |args: &[&str]| {
        let o = cli(&db, args);
        assert!(!o.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    ok(&[
        "meter",
        "add",
        "M1",
        "--host",
        "10.1.2.3",
        "--port",
        "4059",
        "--transport",
        "wrapper",
        "--auth",
        "low",
        "--password",
        "s3cret",
    ]);
    let e = fails(&["meter", "add", "M2", "--host", "10.1.2.3"]);
    assert!(e.contains("meter \"M2\": --host needs --port"), "{e}");
    let e = fails(&["meter", "add", "M1", "--host", "h", "--port", "1"]);
    assert!(e.contains("exists already"), "{e}");
    let e = fails(&["meter", "edit", "M1", "--interval-s", "0"]);
    assert!(
        e.contains("--interval-s: \"0\" is not a whole number 1..86400"),
        "{e}"
    );
    let e = fails(&["meter", "edit", "Nope", "--interval-s", "5"]);
    assert!(e.contains("not found"), "{e}");
    let shown = ok(&["meter", "show", "M1"]);
    assert!(
        shown.contains("\"interval_s\": 60") && !shown.contains("s3cret"),
        "{shown}"
    );
    let listed = ok(&["meter", "list"]);
    assert_eq!(listed.lines().count(), 1);
    let exported = ok(&["meter", "export"]);
    assert!(!exported.contains("s3cret"));
    let file = dir.0.join("bad.json");
    std::fs::write(
        &file,
        r#"[{"name": "M3", "host": "h", "port": 1}, {"name": "M4"}]"#,
    )
    .unwrap();
    let e = fails(&["meter", "import", file.to_str().unwrap()]);
    assert!(e.contains("M4"), "{e}");
    assert_eq!(
        ok(&["meter", "list"]).lines().count(),
        1,
        "nothing of a failed import is kept"
    );
    ok(&["settings", "set", "thingsboard.gateway_token", "TOKEN123"]);
    let s = ok(&["settings", "show"]);
    assert!(
        s.contains("thingsboard.gateway_token = (set)") && !s.contains("TOKEN123"),
        "{s}"
    );
    let e = fails(&["settings", "set", "outbox.full_policy", "drop-all"]);
    assert!(e.contains("drop-oldest"), "{e}");
    ok(&["meter", "rm", "M1"]);
    assert_eq!(ok(&["meter", "list"]).lines().count(), 0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

mod secured {
    use super::*;
    use dlms_bridge::dlms::security::Keys;
    use dlms_bridge::sim::server::ServerSecurity;

    const EK: &str = "000102030405060708090A0B0C0D0E0F";
    const AK: &str = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF";

    fn secured(framing: Transport, seed: u32, hls: bool) -> (SimConfig, ServerSecurity) {
        let security = ServerSecurity::new(
            Keys {
                block_cipher: dlms_bridge::hex::array(EK).unwrap(),
                authentication: dlms_bridge::hex::array(AK).unwrap(),
            },
            *b"SIMMETER",
            hls,
        );
        let mut c = SimConfig::new(MeterModel::new(70, seed), framing);
        c.server.security = Some(security.clone());
        (c, security)
    }

    fn reserved(db: &Path, meter: &str) -> u32 {
        let store = Store::open(db).unwrap();
        let key_id = dlms_bridge::bridge::meter::counter::CounterLease::new(
            meter,
            &Keys {
                block_cipher: dlms_bridge::hex::array(EK).unwrap(),
                authentication: [0; 16],
            },
            db.to_path_buf(),
        )
        .key_id()
        .to_string();
        store
            .reserved_invocation_counter(meter, &key_id)
            .unwrap()
            .unwrap_or(0)
    }

    /// Two secured meters (HLS-GMAC over HDLC, configured with the CLI; ded- and general
    /// ciphering with a frame counter over the wrapper): readings flow, the invocation counter
    /// continues across a clean restart and a kill -9 (the meters refuse any counter they saw
    /// before), a meter whose stored counters were lost recovers through its frame counter,
    /// and no key ever reaches the log, `meter show` or `meter export`.
    #[test]
    fn readings_flow_and_counters_continue_across_restarts() {
        if !have_mosquitto() {
            return;
        }
        let dir = TempDir::new("secured");
        let broker = Mosquitto::start(&dir.0);
        let (hdlc, hdlc_sec) = secured(Transport::Hdlc, 0, true);
        let (wrapper, wrapper_sec) = secured(Transport::Wrapper, 1, false);
        let sims = meters(vec![hdlc, wrapper]);
        let db = dir.0.join("bridge.db");
        configure(&db, broker.port, &sims, &[], |_| {});
        let port = sims.ports[0].to_string();
        let out = cli(
            &db,
            &[
                "meter",
                "add",
                "Secure A",
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--server-physical",
                "17",
                "--interval-s",
                "1",
                "--timeout-ms",
                "1000",
                "--auth",
                "high-gmac",
                "--security",
                "auth-enc",
                "--system-title",
                "4252494447453031",
                "--encryption-key",
                EK,
                "--authentication-key",
                AK,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        {
            let mut store = Store::open(&db).unwrap();
            let mut m = MeterConfig::tcp("Secure B", "127.0.0.1", sims.ports[1]);
            m.set("transport", "wrapper").unwrap();
            m.interval_s = 1;
            m.set("security", "auth-enc").unwrap();
            m.set("system_title", "4252494447453032").unwrap();
            m.set("encryption_key", EK).unwrap();
            m.set("authentication_key", AK).unwrap();
            m.dedicated_key = true;
            m.general_ciphering = true;
            m.set("frame_counter", "0.0.43.1.0.255").unwrap();
            store.add_meter(&m).unwrap();
        }
        let sub = Subscriber::start(broker.port, "v1/gateway/telemetry");
        let count = |name: &str| {
            gateway_readings(&sub.messages())
                .get(name)
                .map_or(0, Vec::len)
        };
        let mut bridge = Bridge::start(&db, &dir.0);
        wait_for("secured readings", Duration::from_secs(20), || {
            count("Secure A") >= 3 && count("Secure B") >= 3
        });
        let mut log = bridge.terminate();
        let first_run = hdlc_sec.last_received_counter();
        assert!(first_run > 0);
        assert!(
            reserved(&db, "Secure A") > first_run,
            "every counter used was reserved first"
        );

        // Restart: the meter refuses counters it saw, so readings prove the counter went on.
        let before = (count("Secure A"), count("Secure B"));
        let mut bridge = Bridge::start(&db, &dir.0);
        wait_for("readings after a restart", Duration::from_secs(20), || {
            count("Secure A") >= before.0 + 3 && count("Secure B") >= before.1 + 3
        });
        assert!(hdlc_sec.last_received_counter() > first_run);
        // kill -9: nothing is written at exit, the reservation alone carries the counter.
        bridge.kill9();
        log.push_str(&bridge.log());
        let killed_at = hdlc_sec.last_received_counter();
        // Secure B's stored counters are lost (a restored backup, a new SD card): its frame
        // counter tells where the meter stands.
        // Secure A has no frame counter configured: losing its counters too, it is refused
        // once, resynchronises from the meter's frame counter (0-0:43.1.0, public client)
        // and goes on.
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute("DELETE FROM invocation_counters", [])
            .unwrap();
        let wrapper_before = wrapper_sec.last_received_counter();
        let before = (count("Secure A"), count("Secure B"));
        let mut bridge = Bridge::start(&db, &dir.0);
        wait_for("readings after kill -9", Duration::from_secs(20), || {
            count("Secure A") >= before.0 + 3 && count("Secure B") >= before.1 + 3
        });
        let resync_log = bridge.terminate();
        assert!(
            resync_log.contains("\"Secure A\": invocation counter resynchronised from"),
            "{resync_log}"
        );
        log.push_str(&resync_log);
        assert!(hdlc_sec.last_received_counter() > killed_at);
        assert!(wrapper_sec.last_received_counter() > wrapper_before);
        for (name, i) in [("Secure A", 0), ("Secure B", 1)] {
            for (ts, values) in &gateway_readings(&sub.messages())[name] {
                check_values(&sims.models[i], *ts, values);
            }
        }

        let show = cli(&db, &["meter", "show", "Secure A"]);
        let export = cli(&db, &["meter", "export"]);
        for text in [
            log.clone(),
            String::from_utf8_lossy(&show.stdout).into_owned(),
            String::from_utf8_lossy(&export.stdout).into_owned(),
        ] {
            for key in [EK, AK] {
                assert!(
                    !text.to_uppercase().contains(key),
                    "a key leaked into: {text}"
                );
            }
        }
        assert!(String::from_utf8_lossy(&show.stdout).contains("\"encryption_key_set\": true"));
    }
}

mod tls {
    use super::*;

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A CA, a broker certificate for 127.0.0.1 signed by it, a client certificate signed by
    /// it, and an unrelated CA: made fresh for this test, valid for a day.
    fn make_pki(dir: &Path) {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let mut a = vec!["req", "-x509"];
            a.extend(ec);
            let (key, crt, subj) = (
                format!("{ca}.key"),
                format!("{ca}.crt"),
                format!("/CN=dlms-bridge test {ca}"),
            );
            a.extend(["-keyout", &key, "-out", &crt, "-days", "1", "-subj", &subj]);
            openssl(dir, &a);
        }
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        for (name, ext) in [("server", Some("server.ext")), ("client", None)] {
            let (key, csr, crt, subj) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.crt"),
                format!("/CN=dlms-bridge-{name}"),
            );
            let mut a = vec!["req"];
            a.extend(ec);
            a.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(dir, &a);
            let mut a = vec![
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "1",
            ];
            if let Some(e) = ext {
                a.extend(["-extfile", e]);
            }
            openssl(dir, &a);
        }
        // mosquitto started as root drops to its own user, which must read its key (a
        // throw-away test key).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }

    fn settings(db: &Path, port: u16, dir: &Path, ca: &str, client_cert: bool) {
        let mut store = Store::open(db).unwrap();
        let path = |f: &str| dir.join(f).display().to_string();
        store.set_setting("mqtt.port", &port.to_string()).unwrap();
        store.set_setting("mqtt.tls", "true").unwrap();
        store.set_setting("mqtt.ca_file", &path(ca)).unwrap();
        let (cert, key) = if client_cert {
            (path("client.crt"), path("client.key"))
        } else {
            (String::new(), String::new())
        };
        store.set_setting("mqtt.client_cert", &cert).unwrap();
        store.set_setting("mqtt.client_key", &key).unwrap();
    }

    /// mqtts to a mosquitto that requires client certificates from the test CA: readings
    /// arrive; a broker certificate from another CA, or no client certificate, is a clear
    /// error in the log and the readings wait in the outbox.
    #[test]
    fn mqtts_with_ca_verification_and_client_certificate() {
        if !have_mosquitto() {
            return;
        }
        let dir = TempDir::new("tls");
        make_pki(&dir.0);
        let tls_port = free_port();
        let d = dir.0.display();
        let broker = Mosquitto::start_with(
            &dir.0,
            &format!(
                "listener {tls_port} 127.0.0.1\ncafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\nrequire_certificate true\n"
            ),
        );
        wait_for("the TLS listener", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_ok()
        });
        let sims = meters(vec![SimConfig::new(
            MeterModel::new(80, 0),
            Transport::Hdlc,
        )]);
        let db = dir.0.join("bridge.db");
        configure(&db, broker.port, &sims, &["Meter T"], |_| {});
        let sub = Subscriber::start(broker.port, "v1/gateway/telemetry");
        let count = || {
            gateway_readings(&sub.messages())
                .get("Meter T")
                .map_or(0, Vec::len)
        };

        // Trusted both ways.
        settings(&db, tls_port, &dir.0, "ca.crt", true);
        let mut bridge = Bridge::start(&db, &dir.0);
        wait_for("readings over mqtts", Duration::from_secs(20), || {
            count() >= 3
        });
        let log = bridge.terminate();
        assert!(
            log.contains(&format!("connected to ssl://127.0.0.1:{tls_port}")),
            "{log}"
        );
        for (ts, values) in &gateway_readings(&sub.messages())["Meter T"] {
            check_values(&sims.models[0], *ts, values);
        }

        for (ca, client_cert, what) in [
            ("other-ca.crt", true, "a broker certificate from another CA"),
            ("ca.crt", false, "no client certificate"),
        ] {
            settings(&db, tls_port, &dir.0, ca, client_cert);
            let before = count();
            let mut bridge = Bridge::start(&db, &dir.0);
            let refused = |bridge: &Bridge| {
                bridge.log().contains("TLS handshake failed")
                    && Store::open(&db).unwrap().outbox_stats().unwrap().rows >= 2
            };
            let start = std::time::Instant::now();
            while !refused(&bridge) {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "{what}: no clear error within 30 s: {}",
                    bridge.log()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            let log = bridge.terminate();
            assert!(log.contains("mqtt.ca_file"), "{what}: {log}");
            assert_eq!(count(), before, "{what}: nothing may be published");
        }
        // Fixed again: the readings kept in the outbox are delivered.
        settings(&db, tls_port, &dir.0, "ca.crt", true);
        let kept = Store::open(&db).unwrap().outbox_stats().unwrap().rows;
        let before = count();
        let mut bridge = Bridge::start(&db, &dir.0);
        wait_for("the kept readings", Duration::from_secs(20), || {
            count() as u64 >= before as u64 + kept
        });
        bridge.terminate();
    }
}

/// The largest outbox id ever given (SQLite's AUTOINCREMENT sequence): how many readings were
/// ever written to the outbox.
fn outbox_inserts(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// Write behind (the default): while the broker acknowledges in time, readings are published
/// from memory and never written to the outbox; with `outbox.write_behind false` every reading
/// is committed first. Both ways every reading arrives, exact.
#[test]
fn write_behind_keeps_acknowledged_readings_off_the_disk() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("write-behind");
    let broker = Mosquitto::start(&dir.0);
    let sims = simulated(0..2, 90, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    let names = ["WB A", "WB B"];
    configure(&db, broker.port, &sims, &names, |_| {});
    // A roomy window, so that a loaded CI machine still gets its PUBACKs in time.
    Store::open(&db)
        .unwrap()
        .set_setting("outbox.commit_interval_ms", "1000")
        .unwrap();
    let sub = Subscriber::start(broker.port, "v1/gateway/telemetry");
    let delivered = || -> usize {
        gateway_readings(&sub.messages())
            .values()
            .map(Vec::len)
            .sum()
    };
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("first readings", Duration::from_secs(20), || {
        delivered() >= 4
    });
    let (readings0, inserts0) = (delivered(), outbox_inserts(&db));
    wait_for("more readings", Duration::from_secs(20), || {
        delivered() >= readings0 + 12
    });
    let (readings1, inserts1) = (delivered(), outbox_inserts(&db));
    assert!(
        (inserts1 - inserts0) * 4 < (readings1 - readings0) as i64,
        "written behind: {} of {} readings went to disk",
        inserts1 - inserts0,
        readings1 - readings0
    );
    // Switched off live: every reading is committed before it is published.
    let out = cli(&db, &["settings", "set", "outbox.write_behind", "false"]);
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(1500));
    let (readings2, inserts2) = (delivered(), outbox_inserts(&db));
    wait_for(
        "readings through the outbox",
        Duration::from_secs(20),
        || delivered() >= readings2 + 8,
    );
    let (readings3, inserts3) = (delivered(), outbox_inserts(&db));
    assert!(
        inserts3 - inserts2 >= (readings3 - readings2) as i64 - 2,
        "committed first: {} of {} readings went to disk",
        inserts3 - inserts2,
        readings3 - readings2
    );
    bridge.terminate();
    let readings = gateway_readings(&sub.finish());
    for (i, name) in names.iter().enumerate() {
        for (ts, values) in &readings[*name] {
            check_values(&sims.models[i], *ts, values);
        }
        check_continuity(&readings[*name], 2600, name);
    }
}
