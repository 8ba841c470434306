//! /status memory at 1,000 meters (not a test): the bridge polls 1,000 simulated meters
//! (no broker: readings wait in the outbox) and /status is fetched 100 times. Reports the
//! document's size and the bridge's RSS before, during and after; a status page whose every
//! request leaves memory behind shows here as growth.
//!
//! Run: `cargo bench --bench status_memory`. STATUS_MEMORY_METERS=1000 sets the size.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{
    free_port, free_ports, http_get, rss_kib, setting, wait_for, wait_port, Proc, TempDir, BIN,
};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    if !common::bench_or_skip("status_memory", &[]) {
        return;
    }
    let meters: u16 = std::env::var("STATUS_MEMORY_METERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = TempDir::new("status-memory");
    let port_base = free_ports(meters);
    let _sim = common::simulate_process(meters, port_base);
    wait_port(port_base + meters - 1, Duration::from_secs(60));
    let db = dir.0.join("bridge.db");
    let http = free_port();
    let set = |k: &str, v: &str| setting(&db, k, v);
    set("mqtt.host", "");
    set("http.bind", &format!("127.0.0.1:{http}"));
    let list: Vec<serde_json::Value> = (0..meters)
        .map(|i| serde_json::json!({"name": format!("M{i:04}"), "host": "127.0.0.1", "port": port_base + i, "interval_s": 10}))
        .collect();
    let file = dir.0.join("meters.json");
    std::fs::write(&file, serde_json::to_string(&list).unwrap()).unwrap();
    assert!(Command::new(BIN)
        .args(["meter", "import"])
        .arg(&file)
        .arg("--db")
        .arg(&db)
        .status()
        .unwrap()
        .success());
    let bridge = Proc(
        Command::new(BIN)
            .args(["run", "--log-level", "warn", "--db"])
            .arg(&db)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = bridge.0.id();
    wait_port(http, Duration::from_secs(30));
    wait_for("every meter polled once", Duration::from_secs(120), || {
        let (_, body) = http_get(http, "/status");
        serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|s| {
            s["meters"].as_object().is_some_and(|m| {
                m.len() == usize::from(meters)
                    && m.values().all(|v| v["successes"].as_u64() > Some(0))
            })
        })
    });
    std::thread::sleep(Duration::from_secs(2));
    let before = rss_kib(pid);
    let mut size = 0;
    let mut rows = vec![(0, before)];
    let t0 = Instant::now();
    for i in 1..=100 {
        size = http_get(http, "/status").1.len();
        if i % 10 == 0 {
            rows.push((i, rss_kib(pid)));
        }
    }
    let per_call = t0.elapsed() / 100;
    println!("status_memory: {meters} meters, /status {size} bytes, {per_call:?} per call");
    println!("| calls | bridge RSS (MiB) |\n|---|---|");
    for (i, kib) in &rows {
        println!("| {i} | {:.1} |", *kib as f64 / 1024.0);
    }
    let after = rows.last().map_or(0, |r| r.1);
    println!(
        "growth over 100 calls: {:.1} MiB",
        (after as f64 - before as f64) / 1024.0
    );
}
