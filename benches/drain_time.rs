//! Drain benchmark (not a test): how long a 5-minute backlog of 1,000 meters takes to reach
//! the broker, against `thingsboard.max_messages_per_second`. The backlog is written into the
//! outbox before the bridge starts (5 minutes of readings per meter at the interval given,
//! 8 values each, as the simulator's meters give); the 1,000 meters themselves keep polling
//! the simulator at that interval meanwhile, as they would after an outage. Reported: the
//! time from the bridge's start until no reading of the backlog is left in the outbox.
//!
//! Run: `cargo bench --bench drain_time` (needs mosquitto). DRAIN_RATES="10 50 200 1000",
//! DRAIN_METERS=1000, DRAIN_INTERVALS="60 5" change the sizes.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use dlms_bridge::config::MeterConfig;
use dlms_bridge::store::outbox::{EntryKind, NewEntry};
use dlms_bridge::store::Store;
use std::time::{Duration, Instant};

fn list(var: &str, default: &str) -> Vec<u64> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

fn run(meters: u16, interval_s: u64, rate: u64) -> String {
    let dir = TempDir::new(&format!("drain-{meters}-{interval_s}-{rate}"));
    let broker = Mosquitto::start(&dir.0);
    let base = free_ports(meters);
    let _sim = simulate_process(meters, base);
    wait_port(base + meters - 1, Duration::from_secs(30));
    let db = dir.0.join("bridge.db");
    let mut store = Store::open(&db).unwrap();
    for (k, v) in [
        ("mqtt.port", broker.port.to_string()),
        ("thingsboard.max_messages_per_second", rate.to_string()),
        ("http.bind", String::new()),
    ] {
        store.set_setting(k, &v).unwrap();
    }
    let now = dlms_bridge::clock::now_ms();
    let per_meter = 300 / interval_s;
    let mut backlog = Vec::new();
    for i in 0..meters {
        let name = format!("D{i:04}");
        let mut m = MeterConfig::tcp(&name, "127.0.0.1", base + i);
        m.interval_s = interval_s as u32;
        store.add_meter(&m).unwrap();
        for k in 0..per_meter {
            backlog.push(NewEntry {
                device: name.clone(),
                ts_ms: now - 300_000 + (k * interval_s * 1000) as i64,
                kind: EntryKind::Telemetry,
                payload: format!(
                    r#"{{"voltage_l1":230.{k},"voltage_l2":231.{k},"voltage_l3":229.{k},"current_l1":5.{i},"current_l2":4.{i},"current_l3":6.{i},"active_power_import":3456.{k},"active_energy_import":{}}}"#,
                    1_000_000 + u64::from(i) * 1000 + k
                ),
            });
        }
    }
    let settings = store.settings().unwrap();
    for chunk in backlog.chunks(5000) {
        store.outbox_insert(chunk, &settings, now).unwrap();
    }
    let rows = || Store::open(&db).unwrap().outbox_stats().unwrap().rows;
    let start_rows = rows();
    drop(store);
    let t0 = Instant::now();
    let mut bridge = Bridge::start(&db, &dir.0);
    // The backlog's rows gone (new readings arrive meanwhile and leave from memory).
    let mut drained = None;
    while t0.elapsed() < Duration::from_secs(900) {
        let left = Store::open(&db)
            .unwrap()
            .outbox_oldest(0, 1)
            .unwrap()
            .first()
            .is_none_or(|e| e.ts_ms >= now);
        if left {
            drained = Some(t0.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    terminate_within(&mut bridge, Duration::from_secs(10));
    format!(
        "| {meters} | {interval_s} s | {start_rows} | {rate} | {} |",
        drained.map_or("> 900 s".to_string(), |d| format!(
            "{:.1} s",
            d.as_secs_f64()
        ))
    )
}

fn main() {
    if !bench_or_skip("drain_time", &["mosquitto"]) {
        return;
    }
    let meters = list("DRAIN_METERS", "1000")[0] as u16;
    println!(
        "| meters | interval | backlog (readings) | max_messages_per_second | drained after |"
    );
    println!("|---|---|---|---|---|");
    for interval in list("DRAIN_INTERVALS", "60 5") {
        for rate in list("DRAIN_RATES", "10 50 200 1000") {
            println!("{}", run(meters, interval, rate));
        }
    }
}
