//! Several meters on one serial line (RS-485 multi-drop), over a pseudo-terminal pair: the
//! simulator answers at physical addresses 17, 18, 19 on one side at an emulated 9600 baud;
//! the bridge has four meters on the other side, the fourth (20) silent. Every answering meter
//! is read on schedule (the line has the capacity), the silent one costs its time-out and
//! backs off, the status page shows the line's figures, and meters that disagree about the
//! line's settings are refused naming both.

mod common;

use common::{cli, cli_ok, wait_port, Bridge};
use serde_json::Value;
use std::time::Duration;

#[test]
fn meters_on_one_serial_line_take_turns_and_a_silent_one_costs_only_its_timeout() {
    let Some(l) = common::line(
        "bus",
        3,
        &["--line-baud", "9600"],
        17..21,
        &["--interval-s", "5", "--timeout-ms", "800"],
    ) else {
        return;
    };
    let (db, http, line) = (&l.db, l.http, l.path.as_str());
    // A fifth meter on the line at another speed: refused, naming both meters.
    let refused = cli(
        db,
        &["meter", "add", "X", "--serial", line, "--baud", "19200"],
    );
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains(r#"meters "M17" and "X" share the serial line"#) && err.contains("baud"),
        "{err}"
    );

    let mut bridge = Bridge::start(db, &l.dir.0);
    wait_port(http, Duration::from_secs(10));
    let status = || -> Value {
        serde_json::from_str(&common::http_get(http, "/status").1).unwrap_or(Value::Null)
    };
    // 32 s: each answering meter has 6 slots of 5 s; a round of the line takes about 3.5 s
    // (three turns of ~0.87 s at 9600 baud and the silent meter's time-out).
    std::thread::sleep(Duration::from_secs(32));
    let s = status();
    for m in ["M17", "M18", "M19"] {
        let meter = &s["meters"][m];
        let ok = meter["successes"].as_u64().unwrap_or(0);
        assert!(
            ok >= 5,
            "{m} read on schedule despite the silent meter: {meter}"
        );
        assert_eq!(meter["skipped_slots"], 0, "{m}: {meter}");
    }
    let silent = &s["meters"]["M20"];
    assert_eq!(silent["successes"], 0, "{silent}");
    assert!(
        silent["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no answer")),
        "{silent}"
    );
    let bus = &s["buses"][line];
    assert!(bus["turns"].as_u64().unwrap() >= 18, "{bus}");
    let utilisation = bus["utilisation_percent"].as_f64().unwrap();
    assert!(utilisation > 5.0 && utilisation < 100.0, "{bus}");
    assert_eq!(bus["share_percent"].as_object().unwrap().len(), 4, "{bus}");
    assert!(bus["wait_max_ms"].as_u64().is_some(), "{bus}");
    let metrics = common::http_get(http, "/metrics").1;
    assert!(
        metrics.contains(&format!("dlms_bridge_bus_turns_total{{line=\"{line}\"}}"))
            && metrics.contains("dlms_bridge_bus_meter_busy_seconds_total"),
        "{metrics}"
    );
    let log = bridge.terminate();
    assert!(!log.contains("exclusive lock"), "one owner per line: {log}");
}

/// With `bus.keep_open`, each meter keeps its association across its turns (one connection
/// each), and the line still alternates between them.
#[test]
fn associations_stay_open_across_turns_when_asked() {
    let Some(l) = common::line("bus-keep-open", 2, &[], 17..19, &["--interval-s", "2"]) else {
        return;
    };
    cli_ok(&l.db, &["settings", "set", "bus.keep_open", "true"]);
    let http = l.http;
    let mut bridge = Bridge::start(&l.db, &l.dir.0);
    wait_port(http, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(12));
    let s: Value = serde_json::from_str(&common::http_get(http, "/status").1).unwrap();
    bridge.terminate();
    for m in ["M17", "M18"] {
        let meter = &s["meters"][m];
        assert!(meter["successes"].as_u64().unwrap() >= 4, "{m}: {meter}");
        assert_eq!(meter["reconnects"], 1, "{m} kept its association: {meter}");
    }
}
