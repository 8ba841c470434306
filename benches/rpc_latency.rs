//! RPC while polling (not a test): one simulated meter polled every second, `RPC_COUNT` (50)
//! `read` RPCs sent one after another at random points of the poll cycle through mosquitto (as
//! ThingsBoard would). Reports the answer time (request published -> answer received) and the
//! meter's skipped poll slots: an RPC must not cost the schedule a slot, and should be answered
//! within one poll interval plus its own exchange.
//!
//! Run: `cargo bench --bench rpc_latency` (needs mosquitto).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use dlms_bridge::config::values::Transport;
use serde_json::json;
use std::time::{Duration, Instant};

fn main() {
    if !bench_or_skip("rpc_latency", &["mosquitto"]) {
        return;
    }
    let count: i64 = std::env::var("RPC_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let dir = TempDir::new("rpc-latency");
    // RPC_NODELAY=1: the broker sends without Nagle's delay (ThingsBoard's Netty does).
    let broker = if std::env::var("RPC_NODELAY").is_ok_and(|v| v == "1") {
        Mosquitto::start_with(&dir.0, "set_tcp_nodelay true\n")
    } else {
        Mosquitto::start(&dir.0)
    };
    let tb = Tb::connect(broker.port, &["v1/gateway/rpc"]);
    let sims = simulated(0..1, 95, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["Meter A"], |_| {});
    let http = free_port();
    dlms_bridge::store::Store::open(&db)
        .unwrap()
        .set_setting("http.bind", &format!("127.0.0.1:{http}"))
        .unwrap();
    let bridge = Bridge::start(&db, &dir.0);
    wait_for("polling", Duration::from_secs(15), || {
        bridge.log().contains("publisher: connected")
            && http_get(http, "/status").1.contains("\"successes\":")
    });
    let skipped = || -> u64 {
        let (_, body) = http_get(http, "/status");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["meters"]["Meter A"]
            ["skipped_slots"]
            .as_u64()
            .unwrap_or(0)
    };
    let skipped0 = skipped();
    let mut times = Vec::new();
    let mut seed = 12345u64;
    for id in 1..=count {
        // A random point of the 1 s cycle.
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(100 + (seed >> 33) % 900));
        let t = Instant::now();
        let answer = tb.gateway("Meter A", id, "read", json!({"obis": "1-0:32.7.0"}));
        assert!(answer.get("result").is_some(), "{answer}");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "| RPCs | answer p50 (ms) | p99 (ms) | max (ms) | poll interval | skipped slots |\n|---|---|---|---|---|---|\n| {count} | {:.0} | {:.0} | {:.0} | 1 s | {} |",
        pct(0.5),
        pct(0.99),
        times[times.len() - 1],
        skipped() - skipped0
    );
}
