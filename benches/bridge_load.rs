//! Bridge load benchmark (not a test): N simulated meters polled every second, published to a
//! local mosquitto. Reports the bridge process's CPU and RSS, read -> delivery latency
//! (reading timestamp to arrival at a subscriber, which is after the PUBACK path), and the
//! bytes the bridge writes to disk per hour (the outbox, from /proc/PID/io).
//!
//! Run: `cargo bench --bench bridge_load` (needs mosquitto). BRIDGE_LOAD_METERS="10 100 1000"
//! and BRIDGE_LOAD_SECONDS=30 change the sizes and the measuring window;
//! BRIDGE_LOAD_SETTINGS="outbox.commit_interval_ms=1000" applies settings before the run.

use paho_mqtt as mqtt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Proc, BIN};

fn proc_cpu_s(pid: u32) -> f64 {
    dlms_bridge::procfs::cpu_seconds(&pid.to_string()).unwrap_or(0.0)
}

fn proc_field(pid: u32, file: &str, key: &str) -> u64 {
    dlms_bridge::procfs::field(&pid.to_string(), file, key).unwrap_or(0)
}

fn wait_port(port: u16) {
    common::wait_port(port, Duration::from_secs(60));
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return -1;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn run(meters: u16, seconds: u64, port_base: u16, mqtt_port: u16) -> String {
    let dir =
        std::env::temp_dir().join(format!("dlms-bridge-load-{meters}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {mqtt_port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n"
        ),
    )
    .unwrap();
    let _broker = Proc(
        Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto"),
    );
    let _sim = common::simulate_process(meters, port_base);
    wait_port(mqtt_port);
    wait_port(port_base + meters - 1);
    let db = dir.join("bridge.db");
    let db_s = db.to_str().unwrap();
    let set = |k: &str, v: &str| {
        assert!(Command::new(BIN)
            .args(["settings", "set", k, v, "--db", db_s])
            .status()
            .unwrap()
            .success())
    };
    set("mqtt.port", &mqtt_port.to_string());
    set("thingsboard.max_messages_per_second", "1000");
    // BRIDGE_LOAD_SETTINGS="key=value,key=value": settings to compare (e.g. the commit interval).
    for kv in std::env::var("BRIDGE_LOAD_SETTINGS")
        .unwrap_or_default()
        .split(',')
    {
        if let Some((k, v)) = kv.split_once('=') {
            set(k.trim(), v.trim());
        }
    }
    let list: Vec<serde_json::Value> = (0..meters)
        .map(|i| serde_json::json!({"name": format!("M{i:04}"), "host": "127.0.0.1", "port": port_base + i, "server_physical": 17, "interval_s": 1}))
        .collect();
    let file = dir.join("meters.json");
    std::fs::write(&file, serde_json::to_string(&list).unwrap()).unwrap();
    assert!(Command::new(BIN)
        .args(["meter", "import", file.to_str().unwrap(), "--db", db_s])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success());

    // Subscriber: latency = arrival - reading timestamp.
    let latencies = Arc::new(Mutex::new(Vec::<i64>::new()));
    let readings = Arc::new(Mutex::new(0u64));
    let cli = mqtt::Client::new(
        mqtt::CreateOptionsBuilder::new()
            .server_uri(format!("tcp://127.0.0.1:{mqtt_port}"))
            .client_id("load-sub")
            .finalize(),
    )
    .unwrap();
    let rx = cli.start_consuming();
    cli.connect(None).unwrap();
    cli.subscribe("v1/gateway/telemetry", 1).unwrap();
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (lat, cnt, meas) = (latencies.clone(), readings.clone(), measuring.clone());
    std::thread::spawn(move || {
        for msg in rx.iter().flatten() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            let v: serde_json::Value = serde_json::from_slice(msg.payload()).unwrap_or_default();
            if !meas.load(std::sync::atomic::Ordering::Relaxed) {
                continue;
            }
            for list in v.as_object().into_iter().flat_map(|o| o.values()) {
                for item in list.as_array().into_iter().flatten() {
                    lat.lock()
                        .unwrap()
                        .push(now - item["ts"].as_i64().unwrap_or(now));
                    *cnt.lock().unwrap() += 1;
                }
            }
        }
    });

    let bridge = Proc(
        Command::new(BIN)
            .args(["run", "--db", db_s, "--log-file"])
            .arg(dir.join("bridge.log"))
            .spawn()
            .unwrap(),
    );
    let pid = bridge.0.id();
    // Warm-up: associations, scalers, identity.
    std::thread::sleep(Duration::from_secs(5 + u64::from(meters) / 200));
    measuring.store(true, std::sync::atomic::Ordering::Relaxed);
    let (cpu0, w0, t0) = (
        proc_cpu_s(pid),
        proc_field(pid, "io", "write_bytes:"),
        Instant::now(),
    );
    let mut rss_max = 0;
    while t0.elapsed() < Duration::from_secs(seconds) {
        rss_max = rss_max.max(proc_field(pid, "status", "VmRSS:"));
        std::thread::sleep(Duration::from_millis(500));
    }
    let wall = t0.elapsed().as_secs_f64();
    let (cpu, written) = (
        proc_cpu_s(pid) - cpu0,
        proc_field(pid, "io", "write_bytes:") - w0,
    );
    measuring.store(false, std::sync::atomic::Ordering::Relaxed);
    let threads = proc_field(pid, "status", "Threads:");
    drop(bridge);
    let mut l = latencies.lock().unwrap().clone();
    l.sort_unstable();
    let n = *readings.lock().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    format!(
        "| {meters} | {:.0} | {:.1}% | {:.1} | {} | {} | {} | {} | {:.1} |",
        n as f64 / wall,
        100.0 * cpu / wall,
        1e6 * cpu / (n.max(1) as f64),
        rss_max / 1024,
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        threads,
        written as f64 * 3600.0 / wall / 1e6
    )
}

fn main() {
    if !common::bench_or_skip("bridge_load", &["mosquitto"]) {
        return;
    }
    let sizes: Vec<u16> = std::env::var("BRIDGE_LOAD_METERS")
        .unwrap_or_else(|_| "10 100 1000".into())
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    let seconds = std::env::var("BRIDGE_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    println!("| meters | readings/s delivered | bridge CPU (of one core) | CPU µs / reading | RSS max (MiB) | latency p50 (ms) | latency p99 (ms) | threads | disk writes (MB/h) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (i, n) in sizes.into_iter().enumerate() {
        // Below the ephemeral port range (32768+), where a busy port is unlikely.
        let line = run(n, seconds, 24000 + 1000 * i as u16, 21883 + i as u16);
        println!("{line}");
    }
}
