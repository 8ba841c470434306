//! Boot soak (not a test; 40 broker-minutes): the gateway boots while its broker is
//! unreachable for `BOOT_SOAK_DOWN_S` (120) seconds, `BOOT_SOAK_RUNS` (20) times,
//! `BOOT_SOAK_PARALLEL` (4) at a time. The first version froze for good in 3 of 7 such boots
//! (16-20 s in). Each run must connect within `mqtt.reconnect_max_s` (30) + 5 s of the broker
//! coming up, deliver every reading taken while it was down, and stop within 5 s of SIGTERM.
//!
//! Run: `cargo bench --bench boot_soak` (needs mosquitto).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use dlms_bridge::config::values::Transport;
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One boot; returns (seconds from broker up to connected, readings delivered, max gap ms).
fn boot(run: u64, down_s: u64) -> Result<(f64, usize, i64), String> {
    let dir = TempDir::new(&format!("boot-soak-{run}"));
    let mut broker = Mosquitto::prepare(&dir.0, free_port(), "");
    broker.restart();
    let sub = Subscriber::start(broker.port, "v1/gateway/telemetry");
    broker.stop();
    let sims = simulated(0..1, 80 + run, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["S1"], |_| {});
    let started = dlms_bridge::clock::now_ms();
    let mut bridge = Bridge::start(&db, &dir.0);
    std::thread::sleep(Duration::from_secs(down_s));
    broker.restart();
    let up = Instant::now();
    let connected = loop {
        let connects = bridge.log().matches("publisher: connected").count();
        if connects > 0 {
            break up.elapsed().as_secs_f64();
        }
        if up.elapsed() > Duration::from_secs(35) {
            return Err(format!(
                "run {run}: not connected 35 s after the broker came up"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let expected = down_s as usize;
    let t = Instant::now();
    while gateway_readings(&sub.messages())
        .get("S1")
        .map_or(0, Vec::len)
        < expected
    {
        if t.elapsed() > Duration::from_secs(60) {
            return Err(format!("run {run}: backlog not delivered"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let stop = Instant::now();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &bridge.child.id().to_string()])
        .status();
    while bridge.child.try_wait().ok().flatten().is_none() {
        if stop.elapsed() > Duration::from_secs(5) {
            return Err(format!("run {run}: SIGTERM not obeyed within 5 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut r = gateway_readings(&sub.finish())
        .remove("S1")
        .unwrap_or_default();
    r.sort_by_key(|x| x.0);
    r.dedup_by_key(|x| x.0);
    if r.first().is_none_or(|f| f.0 - started > 5000) {
        return Err(format!(
            "run {run}: the first readings (broker down) are missing"
        ));
    }
    let gap = r.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap_or(0);
    Ok((connected, r.len(), gap))
}

fn main() {
    if !bench_or_skip("boot_soak", &["mosquitto"]) {
        return;
    }
    let (runs, down_s, parallel) = (
        env("BOOT_SOAK_RUNS", 20),
        env("BOOT_SOAK_DOWN_S", 120),
        env("BOOT_SOAK_PARALLEL", 4).max(1),
    );
    let results = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..parallel {
            s.spawn(|| loop {
                let run = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if run >= runs {
                    return;
                }
                let r = boot(run, down_s);
                eprintln!("boot {run}: {r:?}");
                results.lock().unwrap().push(r);
            });
        }
    });
    let results = results.into_inner().unwrap();
    let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let worst_connect = ok.iter().map(|r| r.0).fold(0.0, f64::max);
    let worst_gap = ok.iter().map(|r| r.2).max().unwrap_or(0);
    println!(
        "boot_soak: {} of {runs} boots with the broker down {down_s} s: connected within {worst_connect:.1} s of the broker (worst), largest gap between readings {worst_gap} ms",
        ok.len()
    );
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        println!("  FAILED {r}");
    }
}
