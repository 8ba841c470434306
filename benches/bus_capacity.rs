//! Bus benchmark (not a test): how many meters one 9600-baud RS-485 line serves at a 60 s
//! interval. Eight simulated meters share a pseudo-terminal line whose answers take the time
//! their bytes need at 9600 baud (`simulate --serial --meters 8 --line-baud 9600`); the bridge
//! polls each every 5 s (10 registers; the association opened and released in each turn) for
//! BUS_SECONDS (default 40). From /status: turns, the line's busy time, the mean turn, the
//! bytes of a turn and what they need on the wire (10 bits a byte), and the meters a line
//! carries at 60 s: 60 s / (mean turn + turnaround).
//!
//! Run: `cargo bench --bench bus_capacity` (needs socat). Figures go in docs/benchmarks.md.

#[path = "../tests/common/mod.rs"]
mod common;

use serde_json::Value;
use std::time::Duration;

fn main() {
    if !common::bench_or_skip("bus_capacity", &["socat"]) {
        return;
    }
    let seconds: u64 = std::env::var("BUS_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let l = common::line(
        "bench-bus",
        8,
        &["--line-baud", "9600"],
        17..25,
        &["--interval-s", "5"],
    )
    .expect("socat");
    let (db, dir, http, line) = (&l.db, &l.dir, l.http, l.path.clone());
    let mut bridge = common::Bridge::start(db, &dir.0);
    common::wait_port(http, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(seconds));
    let s: Value = serde_json::from_str(&common::http_get(http, "/status").1).unwrap();
    bridge.terminate();
    let bus = &s["buses"][&line];
    let turns = bus["turns"].as_u64().unwrap().max(1);
    let utilisation = bus["utilisation_percent"].as_f64().unwrap();
    let busy_s = utilisation / 100.0 * seconds as f64;
    let mean_turn_ms = busy_s * 1000.0 / turns as f64;
    let bytes: u64 = s["meters"]
        .as_object()
        .unwrap()
        .values()
        .map(|m| {
            m["dlms"]["bytes_sent"].as_u64().unwrap()
                + m["dlms"]["bytes_received"].as_u64().unwrap()
        })
        .sum();
    let bytes_per_turn = bytes as f64 / turns as f64;
    let wire_ms = bytes_per_turn * 10.0 / 9600.0 * 1000.0;
    let cycles: u64 = s["meters"]
        .as_object()
        .unwrap()
        .values()
        .map(|m| m["successes"].as_u64().unwrap())
        .sum();
    let turnaround_ms = 20.0;
    println!("| meters | interval | seconds | turns | successful polls | line utilisation | mean turn | bytes per turn | their time at 9600 baud | wait p50 / max | meters per line at 60 s |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| 8 | 5 s | {seconds} | {turns} | {cycles} | {utilisation:.1} % | {mean_turn_ms:.0} ms | {bytes_per_turn:.0} | {wire_ms:.0} ms | {} / {} ms | {:.0} |",
        bus["wait_p50_ms"], bus["wait_max_ms"],
        60_000.0 / (mean_turn_ms + turnaround_ms)
    );
}
