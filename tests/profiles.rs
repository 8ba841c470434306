//! Load profiles, event logs and clocks end to end: the bridge process against the simulator
//! process and mosquitto. The simulator's profiles are functions of its clock, so every row
//! the meter holds is known ([`MeterModel::profile_rows`], [`MeterModel::event_rows`]) and
//! the rows published are compared with them exactly: timestamps and values. Short capture
//! periods (seconds instead of 15 minutes) stand for the real ones: the collection does not
//! depend on the period's length, only on how many rows it covers.

mod common;

use common::{
    free_port, gateway_readings, have_mosquitto, simulator, wait_for, wait_port, Bridge, Mosquitto,
    Subscriber, TempDir, BIN,
};
use dlms_bridge::sim::model::{MeterModel, ENERGY_EXPORT, ENERGY_IMPORT};
use dlms_bridge::store::Store;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const LOAD_PROFILE: &str = "1-0:99.1.0*255";
const EVENT_LOG: &str = "0-0:99.98.0*255";

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What every test here starts with: a broker, a subscriber to gateway telemetry, a port for
/// the simulated meter and a database path.
struct Rig {
    dir: TempDir,
    broker: Mosquitto,
    sub: Subscriber,
    port: u16,
    db: PathBuf,
}

impl Rig {
    fn new(name: &str) -> Rig {
        let dir = TempDir::new(name);
        let broker = Mosquitto::start(&dir.0);
        let sub = Subscriber::start(broker.port, "v1/gateway/telemetry");
        let db = dir.0.join("b.db");
        Rig {
            dir,
            broker,
            sub,
            port: free_port(),
            db,
        }
    }
}

fn model(period: i64, days: u32) -> MeterModel {
    let mut m = MeterModel::new(1, 0);
    m.profile_period = period;
    m.profile_days = days;
    m
}

fn cli(db: &Path, args: &[&str]) {
    common::cli_ok(db, args);
}

/// A meter "M" polled every 2 s with `profiles`, the broker on `mqtt`, fast commits.
fn setup(db: &Path, mqtt: u16, meter_port: u16, settings: &[(&str, &str)], profiles: &[&str]) {
    cli(db, &["settings", "set", "mqtt.port", &mqtt.to_string()]);
    cli(db, &["settings", "set", "http.bind", ""]);
    cli(db, &["settings", "set", "outbox.commit_interval_ms", "50"]);
    for (k, v) in settings {
        cli(db, &["settings", "set", k, v]);
    }
    cli(
        db,
        &[
            "meter",
            "add",
            "M",
            "--host",
            "127.0.0.1",
            "--port",
            &meter_port.to_string(),
            "--interval-s",
            "2",
            "--timeout-ms",
            "1000",
        ],
    );
    for p in profiles {
        // Collected every 2 s: the tests' periods are seconds.
        cli(db, &["meter", "profile", "add", "M", p, "--every-s", "2"]);
    }
}

fn cursor(db: &Path, profile: &str) -> Option<i64> {
    Store::open(db)
        .unwrap()
        .profile_cursor("M", profile)
        .unwrap()
}

/// Load profile rows received for meter M: time (s) -> values (the last copy of a row sent
/// twice; each copy is compared anyway).
fn profile_rows(sub: &Subscriber, m: &MeterModel) -> BTreeMap<i64, Value> {
    let mut rows = BTreeMap::new();
    for (ts, v) in gateway_readings(&sub.messages())
        .remove("M")
        .unwrap_or_default()
    {
        if v.get("active_energy_export").is_none() {
            continue;
        }
        assert_eq!(ts % 1000, 0, "a row keeps the meter's timestamp");
        let t = ts / 1000;
        let truth = |o| m.truth(o, t).unwrap().raw;
        assert_eq!(
            (
                v["active_energy_import"].as_i64(),
                v["active_energy_export"].as_i64()
            ),
            (Some(truth(ENERGY_IMPORT)), Some(truth(ENERGY_EXPORT))),
            "row at {t}: {v}"
        );
        rows.insert(t, v);
    }
    rows
}

/// The rows the meter holds from `from` (exclusive) to `to` (inclusive) that were not
/// received.
fn missing(rows: &BTreeMap<i64, Value>, m: &MeterModel, from: i64, to: i64) -> Vec<i64> {
    m.profile_rows(to)
        .into_iter()
        .filter(|t| *t > from && !rows.contains_key(t))
        .collect()
}

/// Waits until every row of (`from`, `to`] has arrived (each checked against the meter's
/// values on the way); fails naming what is missing.
fn wait_complete(sub: &Subscriber, m: &MeterModel, from: i64, to: i64, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let gone = missing(&profile_rows(sub, m), m, from, to);
        if gone.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {} rows missing, first {:?}",
            gone.len(),
            gone.first()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A new profile is collected `profile.initial_days` back in chunks, then live; every row
/// equals the meter's. A meter that refuses range access is read by entry with the same
/// result.
#[test]
fn a_new_profile_is_backfilled_then_collected_live() {
    if !have_mosquitto() {
        return;
    }
    for range_access in [true, false] {
        let Rig {
            dir,
            broker,
            sub,
            port,
            db,
        } = Rig::new(&format!("profile-live-{range_access}"));
        let mut args = vec!["--profile-period-s", "10", "--profile-days", "2"];
        if !range_access {
            args.push("--no-range-access");
        }
        let _meter = simulator(port, &args);
        let m = model(10, 2);
        setup(
            &db,
            broker.port,
            port,
            &[("profile.initial_days", "1")],
            &[LOAD_PROFILE],
        );
        let start = now_s();
        let mut bridge = Bridge::start(&db, &dir.0);
        wait_complete(&sub, &m, start - 86_400, start - 20, "a day of rows");
        let rows = profile_rows(&sub, &m);
        assert!(
            *rows.keys().next().unwrap() > start - 86_400 - 10,
            "nothing older than profile.initial_days"
        );
        // Live: rows the meter records from now on arrive too.
        let later = now_s() + 25;
        wait_complete(&sub, &m, start - 86_400, later - 10, "live rows");
        let log = bridge.terminate();
        assert_eq!(
            log.contains("range access refused"),
            !range_access,
            "entry reads only where range access is refused: {log}"
        );
        let newest = *m.profile_rows(later - 10).last().unwrap();
        assert!(
            cursor(&db, LOAD_PROFILE).unwrap() >= newest,
            "the cursor is stored"
        );
        sub.finish();
    }
}

/// Stopped for two hours (the cursor two hours back when it starts again, as after a real
/// stop), unreachable for a while, killed with -9 in the middle of a backfill: each time the
/// gap arrives, oldest first, with exactly the meter's rows; none is skipped.
#[test]
fn gaps_after_a_stop_an_unreachable_meter_and_kill_9_are_backfilled() {
    if !have_mosquitto() {
        return;
    }
    let Rig {
        dir,
        broker,
        sub,
        port,
        db,
    } = Rig::new("profile-gaps");
    let args = ["--profile-period-s", "2", "--profile-days", "1"];
    let mut meter = simulator(port, &args);
    let m = model(2, 1);
    setup(
        &db,
        broker.port,
        port,
        &[("profile.initial_days", "0"), ("profile.chunk_rows", "50")],
        &[LOAD_PROFILE],
    );
    let start = now_s();
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("live rows", Duration::from_secs(30), || {
        cursor(&db, LOAD_PROFILE).is_some_and(|c| c >= start + 4)
    });
    bridge.terminate();

    // Two hours stopped: 3,600 rows of 2 s.
    let stopped_at = cursor(&db, LOAD_PROFILE).unwrap();
    let resume = stopped_at - 7200;
    Store::open(&db)
        .unwrap()
        .set_profile_cursors(&[("M".into(), LOAD_PROFILE.into(), resume)])
        .unwrap();
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_complete(&sub, &m, resume, now_s(), "the two hours");

    // The meter unreachable: its rows of that time come when it is back.
    drop(meter);
    let away = now_s();
    std::thread::sleep(Duration::from_secs(8));
    meter = simulator(port, &args);
    let back = now_s();
    wait_complete(&sub, &m, away - 4, back + 2, "the rows of the outage");
    bridge.terminate();

    // kill -9 in the middle of a backfill of 6 hours (10,800 rows, chunks of 50).
    let resume = now_s() - 6 * 3600;
    Store::open(&db)
        .unwrap()
        .set_profile_cursors(&[("M".into(), LOAD_PROFILE.into(), resume)])
        .unwrap();
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("the backfill under way", Duration::from_secs(30), || {
        cursor(&db, LOAD_PROFILE).is_some_and(|c| c > resume + 600)
    });
    bridge.kill9();
    let at_kill = cursor(&db, LOAD_PROFILE).unwrap();
    assert!(
        at_kill < now_s() - 3600,
        "killed in the middle of the backfill"
    );
    let _bridge = Bridge::start(&db, &dir.0);
    wait_complete(&sub, &m, resume, now_s(), "the rest of the backfill");
    drop(meter);
    sub.finish();
}

/// The standard event log: the simulator's power failures arrive as `event_log`,
/// `event_code` and `event` telemetry at the events' own times.
#[test]
fn event_log_power_failures_arrive_named_at_their_times() {
    if !have_mosquitto() {
        return;
    }
    let Rig {
        dir,
        broker,
        sub,
        port,
        db,
    } = Rig::new("event-log");
    let _meter = simulator(port, &["--outage-every-s", "600", "--profile-days", "1"]);
    let mut m = model(900, 1);
    m.outage_every = 600;
    setup(
        &db,
        broker.port,
        port,
        &[("profile.initial_days", "1")],
        &[EVENT_LOG],
    );
    let start = now_s();
    let mut bridge = Bridge::start(&db, &dir.0);
    let expected: Vec<(i64, u16)> = m
        .event_rows(start)
        .into_iter()
        .filter(|(t, _)| *t > start - 86_400)
        .collect();
    assert!(expected.len() > 200);
    let events = || -> Vec<(i64, Value)> {
        gateway_readings(&sub.messages())
            .remove("M")
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, v)| v.get("event_code").is_some())
            .collect()
    };
    wait_for("the day's events", Duration::from_secs(30), || {
        events().len() >= expected.len()
    });
    let got = events();
    for (t, code) in &expected {
        let (_, v) = got
            .iter()
            .find(|(ts, _)| *ts == t * 1000)
            .unwrap_or_else(|| panic!("event at {t} missing"));
        assert_eq!(v["event_code"], *code);
        assert_eq!(v["event_log"], EVENT_LOG);
        assert_eq!(
            v["event"],
            if *code == 1 { "power down" } else { "power up" }
        );
    }
    bridge.terminate();
    sub.finish();
}

/// A meter 5 minutes ahead: its drift is published and shown; with a sync threshold the
/// bridge sets its clock (logged with before and after) and the drift goes to about zero.
/// Issue 25 item 9: a profile on an object that is not one (a register here) was only
/// logged once; it shows on the meter's card (`profile_error`) and as an alarm.
#[test]
fn a_profile_that_is_not_one_shows_on_the_card_and_as_an_alarm() {
    if !have_mosquitto() {
        return;
    }
    let Rig {
        dir,
        broker,
        sub: _sub,
        port,
        db,
    } = Rig::new("not-a-profile");
    let _meter = simulator(port, &[]);
    setup(&db, broker.port, port, &[], &["1-0:32.7.0"]);
    let http = free_port();
    cli(
        &db,
        &["settings", "set", "http.bind", &format!("127.0.0.1:{http}")],
    );
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_port(http, Duration::from_secs(10));
    wait_for(
        "the profile refused on the card",
        Duration::from_secs(20),
        || {
            serde_json::from_str::<Value>(&common::http_get(http, "/status").1)
                .is_ok_and(|s| s["meters"]["M"]["profile_error"].is_string())
        },
    );
    let status: Value = serde_json::from_str(&common::http_get(http, "/status").1).unwrap();
    let why = status["meters"]["M"]["profile_error"].as_str().unwrap();
    assert!(why.contains("1-0:32.7.0"), "{why}");
    assert_eq!(
        status["meters"]["M"]["state"], "polling",
        "the values are still read"
    );
    wait_for("the profile_refused alarm", Duration::from_secs(20), || {
        bridge.log().contains("profile_refused")
    });
    bridge.terminate();
}

#[test]
fn clock_drift_is_reported_and_synced_over_the_threshold() {
    if !have_mosquitto() {
        return;
    }
    let Rig {
        dir,
        broker,
        sub,
        port,
        db,
    } = Rig::new("clock-drift");
    let _meter = simulator(port, &["--clock-offset-s", "300"]);
    setup(
        &db,
        broker.port,
        port,
        &[("clock.check_interval_s", "10")],
        &[],
    );
    let http = free_port();
    cli(
        &db,
        &["settings", "set", "http.bind", &format!("127.0.0.1:{http}")],
    );
    let drifts = || -> Vec<i64> {
        gateway_readings(&sub.messages())
            .remove("M")
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(_, v)| v.get("clock_drift_s").and_then(Value::as_i64))
            .collect()
    };
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("a drift report", Duration::from_secs(20), || {
        !drifts().is_empty()
    });
    assert!((298..=302).contains(&drifts()[0]), "{:?}", drifts());
    wait_port(http, Duration::from_secs(10));
    let status: Value = serde_json::from_str(&common::http_get(http, "/status").1).unwrap();
    let shown = status["meters"]["M"]["clock_drift_s"].as_i64().unwrap();
    assert!((298..=302).contains(&shown), "{status}");
    assert!(!bridge.log().contains("clock set"), "no threshold: no sync");
    bridge.terminate();

    cli(
        &db,
        &["meter", "edit", "M", "--clock-sync-threshold-s", "60"],
    );
    let before = drifts().len();
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("the sync", Duration::from_secs(20), || {
        bridge.log().contains("clock set")
    });
    // The next check (10 s) finds the meter on time.
    wait_for("a check after the sync", Duration::from_secs(30), || {
        drifts().len() >= before + 2
    });
    let after = *drifts().last().unwrap();
    assert!(after.abs() <= 2, "drift after the sync: {after}");
    let log = bridge.terminate();
    let line = log.lines().find(|l| l.contains("clock set")).unwrap();
    assert!(
        line.contains("(+300 s)") || line.contains("(+299 s)") || line.contains("(+301 s)"),
        "{line}"
    );
    sub.finish();
}

/// libfaketime, which this test uses to start the bridge with its system clock in 1970.
fn libfaketime() -> Option<std::path::PathBuf> {
    let found = std::fs::read_dir("/usr/lib")
        .ok()?
        .flatten()
        .map(|d| d.path().join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            !common::required(),
            "libfaketime (apt install faketime) is required here"
        );
        eprintln!("skipped: libfaketime is not installed (apt install faketime)");
    }
    found
}

/// A gateway that boots with its clock in 1970 (a Raspberry Pi without RTC before NTP):
/// nothing is published with a 1970 time; live readings carry the meter's clock; the status
/// and the log say why; when the clock is set (NTP), the profile backfill covers what was
/// missed.
#[test]
fn a_gateway_clock_in_1970_stamps_nothing_and_the_backfill_follows_ntp() {
    if !have_mosquitto() {
        return;
    }
    let Some(faketime) = libfaketime() else {
        return;
    };
    let Rig {
        dir,
        broker,
        sub,
        port,
        db,
    } = Rig::new("clock-1970");
    let _meter = simulator(port, &["--profile-period-s", "2", "--profile-days", "1"]);
    let m = model(2, 1);
    setup(
        &db,
        broker.port,
        port,
        &[("profile.initial_days", "0")],
        &[LOAD_PROFILE],
    );
    let http = free_port();
    cli(
        &db,
        &["settings", "set", "http.bind", &format!("127.0.0.1:{http}")],
    );
    // A first run with a good clock: the profile has a cursor.
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("a cursor", Duration::from_secs(30), || {
        cursor(&db, LOAD_PROFILE).is_some()
    });
    bridge.terminate();
    let before = cursor(&db, LOAD_PROFILE).unwrap();

    // Reboot into 1970.
    let clock_file = dir.0.join("faketime");
    std::fs::write(&clock_file, "@1970-01-02 00:00:00\n").unwrap();
    let log = dir.0.join("bridge-1970.log");
    let child = Command::new(BIN)
        .args(["run", "--db"])
        .arg(&db)
        .arg("--log-file")
        .arg(&log)
        .env("LD_PRELOAD", &faketime)
        .env("FAKETIME_TIMESTAMP_FILE", &clock_file)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut bridge = Bridge { child, log };
    let live = || -> Vec<(i64, Value)> {
        gateway_readings(&sub.messages())
            .remove("M")
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, v)| v.get("voltage_l1").is_some())
            .collect()
    };
    let n = live().len();
    wait_for(
        "readings stamped by the meter",
        Duration::from_secs(20),
        || live().len() >= n + 3,
    );
    wait_port(http, Duration::from_secs(10));
    let status: Value = serde_json::from_str(&common::http_get(http, "/status").1).unwrap();
    assert_eq!(status["gateway_clock"]["set"], false, "{status}");
    assert!(bridge.log().contains("gateway clock not set"));
    assert_eq!(
        cursor(&db, LOAD_PROFILE),
        Some(before),
        "profiles wait for the clock"
    );
    // NTP: the clock jumps to the real time.
    let synced = now_s();
    std::fs::write(&clock_file, "+0\n").unwrap();
    wait_for("the clock set again", Duration::from_secs(20), || {
        bridge.log().contains("gateway clock is set now")
    });
    wait_complete(
        &sub,
        &m,
        before,
        synced + 4,
        "the rows missed while the clock was wrong",
    );
    bridge.terminate();
    let year_2000_ms = 946_684_800_000;
    for (device, rows) in gateway_readings(&sub.messages()) {
        for (ts, v) in rows {
            assert!(ts > year_2000_ms, "{device}: published with time {ts}: {v}");
        }
    }
    sub.finish();
}

/// A meter that refuses to have its clock set is reported once per check, not asked again at
/// every poll.
#[test]
fn a_meter_refusing_the_clock_sync_is_reported_not_retried_in_a_loop() {
    if !have_mosquitto() {
        return;
    }
    let Rig {
        dir,
        broker,
        sub,
        port,
        db,
    } = Rig::new("clock-refused");
    let _meter = simulator(port, &["--clock-offset-s", "300", "--clock-read-only"]);
    setup(
        &db,
        broker.port,
        port,
        &[("clock.check_interval_s", "10")],
        &[],
    );
    cli(
        &db,
        &["meter", "edit", "M", "--clock-sync-threshold-s", "60"],
    );
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("the refusal", Duration::from_secs(15), || {
        bridge.log().contains("refused to be set")
    });
    // 14 s more: polls every 2 s (7 of them), clock checks every 10 s (at most 2).
    std::thread::sleep(Duration::from_secs(14));
    let log = bridge.terminate();
    let refusals = log.matches("refused to be set").count();
    assert!((1..=3).contains(&refusals), "{refusals} refusals:\n{log}");
    assert!(!log.contains("clock set:"), "{log}");
    sub.finish();
}
