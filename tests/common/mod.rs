//! The harness the integration tests share: temp dirs, free loopback ports, waiting for
//! conditions, a real mosquitto, a QoS 1 subscriber, simulated meters and the bridge process
//! (always reaped on drop). A test that cannot run here prints "skipped" and why; CI sets
//! DLMS_BRIDGE_REQUIRE_INTEROP=1 so that a missing peer fails the run instead.
#![allow(dead_code)]

use dlms_bridge::config::values::Transport;
use dlms_bridge::config::MeterConfig;
use dlms_bridge::cosem::Obis;
use dlms_bridge::sim::model::{self, MeterModel};
use dlms_bridge::sim::net::{self, SimConfig, SimCounters};
use dlms_bridge::store::Store;
use paho_mqtt as mqtt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_dlms-bridge");

pub fn required() -> bool {
    std::env::var("DLMS_BRIDGE_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

pub fn have_mosquitto() -> bool {
    let ok = Command::new("mosquitto")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(ok || !required(), "mosquitto is required here");
    if !ok {
        eprintln!("skipped: mosquitto is not installed");
    }
    ok
}

pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("dlms-bridge-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A child process that is always stopped and reaped: SIGTERM on drop, up to 15 s for a
/// clean exit, then SIGKILL.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let start = Instant::now();
        while self.0.try_wait().ok().flatten().is_none()
            && start.elapsed() < Duration::from_secs(15)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first of `n` consecutive free loopback ports (for `simulate --port-base`). Looked for
/// below the kernel's ephemeral range: inside it, the many short connections of a busy machine
/// leave few runs of 1,000 free ports (a search there once spun for minutes).
pub fn free_ports(n: u16) -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let free = |p: u16| (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", p + i)).is_ok());
    // Spread the start by process, so that parallel test binaries rarely meet.
    let span = low.saturating_sub(n).saturating_sub(10_000).max(1);
    let mut p = 10_000 + (std::process::id() as u16).wrapping_mul(7919) % span;
    for _ in 0..64 {
        if p + n < low && free(p) {
            return p;
        }
        p = 10_000 + (p - 10_000 + n + 17) % span;
    }
    loop {
        let p = free_port();
        if p < 60_000 && free(p) {
            return p;
        }
    }
}

/// Waits until something listens on the loopback `port`.
pub fn wait_port(port: u16, timeout: Duration) {
    wait_for(&format!("a listener on port {port}"), timeout, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// Benchmarks measure only under `cargo bench` (which passes `--bench`) and where the
/// programs they drive are installed; otherwise (e.g. `cargo test --all-targets`) they say
/// "skipped" and why, and succeed.
pub fn bench_or_skip(name: &str, programs: &[&str]) -> bool {
    if !std::env::args().any(|a| a == "--bench") {
        println!("{name}: skipped (a benchmark: run it with cargo bench --bench {name})");
        return false;
    }
    for p in programs {
        let found = Command::new(p)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            println!("{name}: skipped ({p} is not installed)");
            return false;
        }
    }
    true
}

/// Whether `program` runs here (`program ARGS` starts); if not, the test is skipped with a
/// note, or fails where peers are required (CI).
pub fn have(program: &str, args: &[&str]) -> bool {
    let ok = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(ok || !required(), "{program} is required here");
    if !ok {
        eprintln!("skipped: {program} is not installed");
    }
    ok
}

/// `dlms-bridge simulate --meters 1` on `port` with more `args`, in a process of its own,
/// listening when this returns; stopped on drop.
pub fn simulator(port: u16, args: &[&str]) -> Proc {
    let p = Proc(
        Command::new(BIN)
            .args([
                "simulate",
                "--meters",
                "1",
                "--port-base",
                &port.to_string(),
            ])
            .args(args)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port, Duration::from_secs(10));
    p
}

/// Runs a Python helper that prints one JSON line; `None` (said on stderr) where it cannot
/// run (Python or its package missing): benchmarks leave that row out.
pub fn python_json(script: &str, args: &[&str]) -> Option<Value> {
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "{script} unavailable: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// `dlms-bridge simulate`: `meters` simulated meters on loopback ports from `port_base`, in a
/// process of its own (so that benchmarks do not count its CPU), stopped on drop.
pub fn simulate_process(meters: u16, port_base: u16) -> Proc {
    Proc(
        Command::new(BIN)
            .args([
                "simulate",
                "--meters",
                &meters.to_string(),
                "--port-base",
                &port_base.to_string(),
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// The binary with `args` and `--db db`.
pub fn cli(db: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap()
}

/// `cli` that must succeed; its standard output.
pub fn cli_ok(db: &Path, args: &[&str]) -> String {
    succeeded(&format!("{args:?}"), cli(db, args))
}

/// The standard output of a command that must have succeeded (else its stderr, in the
/// failure, named by `what`).
pub fn succeeded(what: &str, out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A setting written straight into the database.
pub fn setting(db: &Path, key: &str, value: &str) {
    Store::open(db).unwrap().set_setting(key, value).unwrap();
}

/// A process's resident memory (VmRSS), KiB.
pub fn rss_kib(pid: u32) -> u64 {
    dlms_bridge::procfs::field(&pid.to_string(), "status", "VmRSS:").unwrap_or(0)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub struct Mosquitto {
    pub child: Option<Child>,
    pub port: u16,
    pub conf: PathBuf,
}

impl Mosquitto {
    pub fn start(dir: &Path) -> Mosquitto {
        Mosquitto::start_with(dir, "")
    }

    /// With `extra` configuration lines (more listeners) after the plain loopback listener.
    pub fn start_with(dir: &Path, extra: &str) -> Mosquitto {
        let mut m = Mosquitto::prepare(dir, free_port(), extra);
        m.restart();
        m
    }

    /// Configured on `port` but not started (a broker that comes up later: `restart`).
    pub fn prepare(dir: &Path, port: u16, extra: &str) -> Mosquitto {
        // Started as root, mosquitto drops to its own user: it must be able to write its
        // persistence file and log here, or subscriber sessions do not survive a restart and a
        // fast publisher's first messages after it reach nobody.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777));
        }
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "allow_anonymous true\npersistence true\npersistence_location {0}/\nautosave_interval 1\nlog_dest file {0}/mosquitto.log\nlog_type all\nlistener {port} 127.0.0.1\n{extra}",
                dir.display()
            ),
        )
        .unwrap();
        Mosquitto {
            child: None,
            port,
            conf,
        }
    }

    pub fn restart(&mut self) {
        self.child = Some(
            Command::new("mosquitto")
                .arg("-c")
                .arg(&self.conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let port = self.port;
        wait_for("mosquitto", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    /// SIGTERM: mosquitto saves its persistent sessions.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A QoS 1 subscriber with a persistent session, reconnecting across broker restarts.
pub struct Subscriber {
    pub messages: Arc<Mutex<Vec<(String, Value)>>>,
    pub stop: Arc<AtomicBool>,
    pub handle: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    pub fn start(port: u16, topic: &'static str) -> Subscriber {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (messages.clone(), stop.clone());
        let ready = Arc::new(AtomicBool::new(false));
        let r = ready.clone();
        let id = format!("e2e-sub-{port}");
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let cli = mqtt::Client::new(
                    mqtt::CreateOptionsBuilder::new()
                        .server_uri(format!("tcp://127.0.0.1:{port}"))
                        .client_id(&id)
                        .persistence(mqtt::PersistenceType::None)
                        .finalize(),
                )
                .unwrap();
                let rx = cli.start_consuming();
                let opts = mqtt::ConnectOptionsBuilder::new()
                    .clean_session(false)
                    .finalize();
                if cli.connect(opts).is_err() || cli.subscribe(topic, 1).is_err() {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                r.store(true, Ordering::Relaxed);
                loop {
                    match rx.recv_timeout(Duration::from_millis(100)) {
                        Ok(Some(msg)) => {
                            let v: Value =
                                serde_json::from_slice(msg.payload()).unwrap_or(Value::Null);
                            m.lock().unwrap().push((msg.topic().to_string(), v));
                        }
                        Ok(None) => break, // disconnected
                        Err(_) if s.load(Ordering::Relaxed) => break,
                        Err(_) if !cli.is_connected() => break,
                        Err(_) => {}
                    }
                }
                let _ = cli.disconnect(
                    mqtt::DisconnectOptionsBuilder::new()
                        .timeout(Duration::from_secs(1))
                        .finalize(),
                );
            }
        });
        wait_for("subscriber", Duration::from_secs(10), || {
            ready.load(Ordering::Relaxed)
        });
        Subscriber {
            messages,
            stop,
            handle: Some(handle),
        }
    }

    pub fn messages(&self) -> Vec<(String, Value)> {
        self.messages.lock().unwrap().clone()
    }

    pub fn finish(mut self) -> Vec<(String, Value)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.messages()
    }
}

pub struct Meters {
    pub stop: Arc<AtomicBool>,
    pub ports: Vec<u16>,
    pub models: Vec<MeterModel>,
    pub counters: Vec<Arc<SimCounters>>,
}

impl Drop for Meters {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub fn meters(configs: Vec<SimConfig>) -> Meters {
    let stop = Arc::new(AtomicBool::new(false));
    let mut out = Meters {
        stop: stop.clone(),
        ports: vec![],
        models: vec![],
        counters: vec![],
    };
    for c in configs {
        let l = net::bind_ephemeral().unwrap();
        out.ports.push(l.local_addr().unwrap().port());
        out.models.push(c.model.clone());
        let counters = Arc::new(SimCounters::default());
        out.counters.push(counters.clone());
        let s = stop.clone();
        std::thread::spawn(move || net::serve_tcp(l, c, counters, s));
    }
    out
}

/// One simulated meter on a port of its own, serving until dropped; its configuration kept
/// for the truths the tests compare with.
pub struct SimMeter {
    pub port: u16,
    pub config: SimConfig,
    stop: Arc<AtomicBool>,
}

impl Drop for SimMeter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub fn serve_sim(config: SimConfig) -> SimMeter {
    let stop = Arc::new(AtomicBool::new(false));
    let listener = net::bind_ephemeral().unwrap();
    let port = listener.local_addr().unwrap().port();
    let (cfg, s) = (config.clone(), stop.clone());
    std::thread::spawn(move || net::serve_tcp(listener, cfg, Arc::new(SimCounters::default()), s));
    SimMeter { port, config, stop }
}

/// The binary run to its end with `args`.
pub fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// Standard output as JSON lines (`--json` and the `read` family).
pub fn json_lines(out: &std::process::Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// Meters of one framing with the model seeded `seed`, one per index in `range`.
pub fn simulated(range: std::ops::Range<u32>, seed: u64, framing: Transport) -> Meters {
    meters(
        range
            .map(|i| SimConfig::new(MeterModel::new(seed, i), framing))
            .collect(),
    )
}

pub struct Bridge {
    pub child: Child,
    pub log: PathBuf,
}

impl Bridge {
    pub fn start(db: &Path, dir: &Path) -> Bridge {
        Bridge::start_with_args(db, dir, &[])
    }

    /// With more `run` arguments (e.g. `--log-level debug`).
    pub fn start_with_args(db: &Path, dir: &Path, args: &[&str]) -> Bridge {
        // One log per process: a later bridge must not be judged by an earlier one's lines.
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let log = dir.join(format!(
            "bridge-{}.log",
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let child = Command::new(BIN)
            .args(["run", "--db"])
            .arg(db)
            .arg("--log-file")
            .arg(&log)
            .args(args)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Bridge { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the process must be gone within 8 s with success.
    pub fn terminate(&mut self) -> String {
        terminate_within(self, Duration::from_secs(8))
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bridge {
    /// A failed assertion must not leave a bridge running.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn configure(
    db: &Path,
    mqtt_port: u16,
    meters: &Meters,
    names: &[&str],
    tweak: impl Fn(&mut MeterConfig),
) {
    let mut store = Store::open(db).unwrap();
    store
        .set_setting("mqtt.port", &mqtt_port.to_string())
        .unwrap();
    store
        .set_setting("outbox.commit_interval_ms", "50")
        .unwrap();
    for (name, port) in names.iter().zip(&meters.ports) {
        let mut m = MeterConfig::tcp(name, "127.0.0.1", *port);
        m.server_physical = Some(17);
        m.interval_s = 1;
        m.response_timeout_ms = 500;
        m.inter_frame_timeout_ms = 500;
        tweak(&mut m);
        store.add_meter(&m).unwrap();
    }
}

/// The simulator's value as the nearest f64 of the exact decimal raw x 10^scaler.
pub fn truth(model: &MeterModel, obis: Obis) -> f64 {
    let t = model.truth(obis, 0).unwrap();
    format!("{}e{}", t.raw, t.scaler).parse().unwrap()
}

/// Gateway telemetry per device, in arrival order: (ts, values).
pub fn gateway_readings(msgs: &[(String, Value)]) -> BTreeMap<String, Vec<(i64, Value)>> {
    let mut out: BTreeMap<String, Vec<(i64, Value)>> = BTreeMap::new();
    for (topic, v) in msgs {
        if topic != "v1/gateway/telemetry" {
            continue;
        }
        for (device, list) in v.as_object().expect("telemetry is an object") {
            for item in list.as_array().expect("a device's telemetry is an array") {
                let ts = item["ts"].as_i64().expect("ts");
                out.entry(device.clone())
                    .or_default()
                    .push((ts, item["values"].clone()));
            }
        }
    }
    out
}

pub fn check_values(model: &MeterModel, ts: i64, values: &Value) {
    assert_eq!(
        values["voltage_l1"].as_f64().unwrap(),
        truth(model, Obis::new(1, 0, 32, 7, 0, 255))
    );
    assert_eq!(
        values["current_l3"].as_f64().unwrap(),
        truth(model, Obis::new(1, 0, 71, 7, 0, 255))
    );
    assert_eq!(
        values["frequency"].as_f64().unwrap(),
        truth(model, Obis::new(1, 0, 14, 7, 0, 255))
    );
    assert_eq!(
        values["power_factor"].as_f64().unwrap(),
        truth(model, Obis::new(1, 0, 13, 7, 0, 255))
    );
    assert_eq!(
        values["active_power"].as_i64().unwrap() as f64,
        truth(model, Obis::new(1, 0, 1, 7, 0, 255))
    );
    let energy = values["active_energy_import"].as_i64().unwrap();
    let t = ts / 1000;
    let lo = model.truth(model::ENERGY_IMPORT, t - 2).unwrap().raw;
    let hi = model.truth(model::ENERGY_IMPORT, t + 2).unwrap().raw;
    assert!(
        (lo..=hi).contains(&energy),
        "energy {energy} not in {lo}..={hi}"
    );
    let keys = values.as_object().unwrap();
    assert!(keys.len() >= 10, "the default measurement set: {values}");
    if let Some(columns) = keys.get("profile_columns") {
        assert_eq!(columns.as_array().map(Vec::len), Some(3), "{columns}");
    }
}

/// Per device: strictly increasing timestamps (no duplicates, original order) and no gap
/// longer than `max_gap_ms`.
pub fn check_continuity(readings: &[(i64, Value)], max_gap_ms: i64, what: &str) {
    for w in readings.windows(2) {
        assert!(
            w[1].0 > w[0].0,
            "{what}: timestamps not increasing: {} then {}",
            w[0].0,
            w[1].0
        );
        assert!(
            w[1].0 - w[0].0 <= max_gap_ms,
            "{what}: gap of {} ms",
            w[1].0 - w[0].0
        );
    }
}

/// SIGTERM, and the process must be gone within `limit` with success. Returns the log.
pub fn terminate_within(bridge: &mut Bridge, limit: Duration) -> String {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(bridge.child.id().to_string())
        .status();
    let start = Instant::now();
    loop {
        if let Some(status) = bridge.child.try_wait().unwrap() {
            assert!(status.success(), "bridge exit {status}: {}", bridge.log());
            break;
        }
        assert!(
            start.elapsed() < limit,
            "bridge did not stop within {limit:?} of SIGTERM: {}",
            bridge.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    bridge.log()
}

/// A minimal HTTP/1.1 client on loopback, one request per connection: (status code, body);
/// (0, "") when nothing listens.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let body = body.unwrap_or("");
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let _ = write!(s, "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let code = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// `http` GET without credentials.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    http(port, "GET", path, None, None)
}

/// Readings per device must each carry a distinct timestamp (no reading delivered twice).
pub fn assert_no_duplicates(readings: &BTreeMap<String, Vec<(i64, Value)>>) {
    for (device, list) in readings {
        let mut seen = std::collections::HashSet::new();
        for (ts, _) in list {
            assert!(seen.insert(*ts), "{device}: reading {ts} delivered twice");
        }
    }
}

/// A client playing ThingsBoard: publishes requests, collects every message on `topics`.
pub struct Tb {
    pub client: mqtt::Client,
    pub seen: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Tb {
    pub fn connect(port: u16, topics: &[&str]) -> Tb {
        let client = mqtt::Client::new(
            mqtt::CreateOptionsBuilder::new()
                .server_uri(format!("tcp://127.0.0.1:{port}"))
                .client_id(format!("tb-{port}"))
                .persistence(mqtt::PersistenceType::None)
                .finalize(),
        )
        .unwrap();
        let rx = client.start_consuming();
        client.connect(None).unwrap();
        for t in topics {
            client.subscribe(t, 1).unwrap();
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for msg in rx.iter().flatten() {
                let v = serde_json::from_slice(msg.payload()).unwrap_or(Value::Null);
                s.lock().unwrap().push((msg.topic().to_string(), v));
            }
        });
        Tb { client, seen }
    }

    pub fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(mqtt::Message::new(topic, payload, 1))
            .unwrap();
    }

    /// Gateway API: the answer to request `id` for `device`.
    pub fn gateway(&self, device: &str, id: i64, method: &str, params: Value) -> Value {
        let req = json!({"device": device, "data": {"id": id, "method": method, "params": params}});
        self.publish("v1/gateway/rpc", &req.to_string());
        self.answer(|t, v| {
            t == "v1/gateway/rpc" && v["id"] == json!(id) && v["device"] == json!(device)
        })["data"]
            .clone()
    }

    /// Device API: the answer on `v1/devices/me/rpc/response/{id}`.
    pub fn device(&self, id: i64, method: &str, params: Value) -> Value {
        self.publish(
            &format!("v1/devices/me/rpc/request/{id}"),
            &json!({"method": method, "params": params}).to_string(),
        );
        let topic = format!("v1/devices/me/rpc/response/{id}");
        self.answer(|t, _| t == topic)
    }

    pub fn answer(&self, matches: impl Fn(&str, &Value) -> bool) -> Value {
        // Polled every 2 ms: the RPC benchmark times answers with this.
        let start = Instant::now();
        loop {
            let found = self
                .seen
                .lock()
                .unwrap()
                .iter()
                .find(|(t, v)| matches(t, v))
                .map(|(_, v)| v.clone());
            if let Some(v) = found {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "timed out waiting for the RPC answer"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// A connected pseudo-terminal pair made by socat: `dir/meter` and `dir/probe`.
pub struct PtyPair {
    pub _socat: Proc,
    pub dir: PathBuf,
}

/// `None` (skipped, or a failure where peers are required) without socat.
pub fn pty_pair(name: &str) -> Option<PtyPair> {
    let dir = std::env::temp_dir().join(format!("dlms-bridge-pty-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("meter"), dir.join("probe"));
    let child = Command::new("socat")
        .arg(format!("pty,raw,echo=0,link={}", a.display()))
        .arg(format!("pty,raw,echo=0,link={}", b.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => Proc(c),
        Err(e) => {
            assert!(!required(), "socat is required here: {e}");
            eprintln!("skipped: no socat ({e})");
            return None;
        }
    };
    let start = Instant::now();
    while !(a.exists() && b.exists()) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "socat made no ptys"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(PtyPair { _socat: child, dir })
}

/// A shared serial line: simulated meters at physical addresses 17.. on one side of a pty
/// pair (`simulate --serial --meters N` with `sim_args`), a database with publishing off and
/// the status page on a free port, and `meters` at those addresses on the other side, each
/// added with `meter_args`. `None` where socat is missing (skipped).
pub struct Line {
    pub pair: PtyPair,
    pub _sim: Proc,
    pub dir: TempDir,
    pub db: PathBuf,
    pub http: u16,
    /// The bridge's side of the line.
    pub path: String,
}

pub fn line(
    name: &str,
    simulated: u16,
    sim_args: &[&str],
    meters: std::ops::Range<u16>,
    meter_args: &[&str],
) -> Option<Line> {
    let pair = pty_pair(name)?;
    let sim = Proc(
        Command::new(BIN)
            .args(["simulate", "--serial"])
            .arg(pair.dir.join("meter"))
            .args(["--meters", &simulated.to_string()])
            .args(sim_args)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let dir = TempDir::new(name);
    let db = dir.0.join("b.db");
    let http = free_port();
    cli_ok(&db, &["settings", "set", "mqtt.host", ""]);
    cli_ok(
        &db,
        &["settings", "set", "http.bind", &format!("127.0.0.1:{http}")],
    );
    let path = pair.dir.join("probe").display().to_string();
    for address in meters {
        let (name, address) = (format!("M{address}"), address.to_string());
        let mut args = vec![
            "meter",
            "add",
            &name,
            "--serial",
            &path,
            "--server-physical",
            &address,
        ];
        args.extend_from_slice(meter_args);
        cli_ok(&db, &args);
    }
    Some(Line {
        pair,
        _sim: sim,
        dir,
        db,
        http,
        path,
    })
}

/// A push vector of tests/vectors/push/ (hex lines; `#` lines are comments).
pub fn push_vector(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(format!(
        "{}/tests/vectors/push/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let hex: String = text.lines().filter(|l| !l.starts_with('#')).collect();
    dlms_bridge::hex::parse(&hex).unwrap()
}
