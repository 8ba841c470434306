//! Status server under load (not a test): `wrk` hammers /status and /metrics while the bridge
//! polls 100 simulated meters every second. Reports the server's throughput and latency, and
//! the polling schedule (cycles per meter per second, skipped slots) without and with the load.
//!
//! Run: `cargo bench --bench status_load` (needs wrk). STATUS_LOAD_SECONDS=15 sets each phase.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Proc, BIN};

fn get(port: u16, path: &str) -> String {
    common::http_get(port, path).1
}

/// (total cycles, total skipped slots, meters polling)
fn schedule(port: u16) -> (u64, u64, usize) {
    let v: serde_json::Value = serde_json::from_str(&get(port, "/status")).unwrap();
    let meters = v["meters"].as_object().unwrap();
    let sum = |k: &str| meters.values().map(|m| m[k].as_u64().unwrap_or(0)).sum();
    (
        sum("cycles"),
        sum("skipped_slots"),
        meters.values().filter(|m| m["state"] == "polling").count(),
    )
}

fn main() {
    if !common::bench_or_skip("status_load", &["wrk"]) {
        return;
    }
    let seconds: u64 = std::env::var("STATUS_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let meters = 100u16;
    let (port_base, http_port) = (common::free_ports(meters), common::free_port());
    let dir = std::env::temp_dir().join(format!("dlms-bridge-status-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _sim = common::simulate_process(meters, port_base);
    let db = dir.join("bridge.db");
    let db_s = db.to_str().unwrap();
    let set = |k: &str, v: &str| {
        assert!(Command::new(BIN)
            .args(["settings", "set", k, v, "--db", db_s])
            .status()
            .unwrap()
            .success())
    };
    set("mqtt.host", "");
    set("http.bind", &format!("127.0.0.1:{http_port}"));
    let list: Vec<serde_json::Value> = (0..meters)
        .map(|i| serde_json::json!({"name": format!("M{i:03}"), "host": "127.0.0.1", "port": port_base + i, "server_physical": 17, "interval_s": 1}))
        .collect();
    let file = dir.join("meters.json");
    std::fs::write(&file, serde_json::to_string(&list).unwrap()).unwrap();
    assert!(Command::new(BIN)
        .args(["meter", "import", file.to_str().unwrap(), "--db", db_s])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success());
    let _bridge = Proc(
        Command::new(BIN)
            .args(["run", "--db", db_s, "--log-file"])
            .arg(dir.join("bridge.log"))
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(6));

    let phase = |load: bool| -> (f64, u64, usize, String) {
        let (c0, s0, _) = schedule(http_port);
        let t0 = Instant::now();
        let wrk = if load {
            let out = Command::new("wrk")
                .args([
                    "-t2",
                    "-c16",
                    &format!("-d{seconds}s"),
                    "--latency",
                    &format!("http://127.0.0.1:{http_port}/status"),
                ])
                .output()
                .expect("wrk");
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            std::thread::sleep(Duration::from_secs(seconds));
            String::new()
        };
        let wall = t0.elapsed().as_secs_f64();
        let (c1, s1, polling) = schedule(http_port);
        (
            (c1 - c0) as f64 / wall / f64::from(meters),
            s1 - s0,
            polling,
            wrk,
        )
    };
    let (idle_rate, idle_skipped, idle_polling, _) = phase(false);
    let (load_rate, load_skipped, load_polling, wrk) = phase(true);
    let pick = |key: &str| {
        wrk.lines()
            .find(|l| l.trim_start().starts_with(key))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    println!("| phase | poll cycles per meter per s | skipped slots | meters polling | /status requests/s | latency p50 | latency p99 |");
    println!("|---|---|---|---|---|---|---|");
    println!("| idle | {idle_rate:.3} | {idle_skipped} | {idle_polling} | - | - | - |");
    let rps = pick("Requests/sec:").replace("Requests/sec: ", "");
    let p50 = pick("50%").replace("50% ", "");
    let p99 = pick("99%").replace("99% ", "");
    println!("| wrk -t2 -c16 on /status | {load_rate:.3} | {load_skipped} | {load_polling} | {rps} | {p50} | {p99} |");
    let _ = std::fs::remove_dir_all(&dir);
}
