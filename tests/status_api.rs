//! The status page and admin API of a running bridge (in-process, publishing off): every
//! endpoint, authentication, bad input, unknown meters, and that no secret is ever returned.

mod common;

use common::{free_port, http};
use dlms_bridge::bridge;
use dlms_bridge::config::values::Transport;
use dlms_bridge::config::MeterConfig;
use dlms_bridge::sim::model::MeterModel;
use dlms_bridge::sim::net::{self, SimConfig, SimCounters};
use dlms_bridge::status::state::Status;
use dlms_bridge::store::Store;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "test-token-0123456789";
const EK: &str = "00112233445566778899AABBCCDDEEFF";
const AK: &str = "FFEEDDCCBBAA99887766554433221100";
const SECRETS: [&str; 5] = ["meter-password-1", "device-token-2", TOKEN, EK, AK];

/// The meter is secured (HLS-GMAC, authenticated encryption): its keys are secrets too.
fn secured_sim() -> SimConfig {
    let key = |h: &str| dlms_bridge::hex::array::<16>(h).unwrap();
    let mut c = SimConfig::new(MeterModel::new(60, 0), Transport::Hdlc);
    c.server.security = Some(dlms_bridge::sim::server::ServerSecurity::new(
        dlms_bridge::dlms::security::Keys {
            block_cipher: key(EK),
            authentication: key(AK),
        },
        *b"SIMMETER",
        true,
    ));
    c
}

struct Running {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    port: u16,
    dir: PathBuf,
    _sim_stop: Arc<AtomicBool>,
    sim_port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self._sim_stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(name: &str, token: Option<&str>, meter_reachable: bool) -> Running {
    let dir = std::env::temp_dir().join(format!("dlms-bridge-api-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sim_stop = Arc::new(AtomicBool::new(false));
    let listener = net::bind_ephemeral().unwrap();
    let sim_port = listener.local_addr().unwrap().port();
    let s = sim_stop.clone();
    std::thread::spawn(move || {
        net::serve_tcp(listener, secured_sim(), Arc::new(SimCounters::default()), s)
    });
    let db = dir.join("bridge.db");
    let port = free_port();
    {
        let mut store = Store::open(&db).unwrap();
        store.set_setting("mqtt.host", "").unwrap();
        store
            .set_setting("http.bind", &format!("127.0.0.1:{port}"))
            .unwrap();
        if let Some(t) = token {
            store.set_setting("http.api_token", t).unwrap();
        }
        let mut m = MeterConfig::tcp(
            "Meter A",
            "127.0.0.1",
            if meter_reachable {
                sim_port
            } else {
                free_port()
            },
        );
        m.server_physical = Some(17);
        m.interval_s = 1;
        m.response_timeout_ms = 300;
        m.connect_timeout_ms = 300;
        m.set("auth", "high-gmac").unwrap();
        m.set("password", SECRETS[0]).unwrap();
        m.set("access_token", SECRETS[1]).unwrap();
        m.set("security", "auth-enc").unwrap();
        m.set("system_title", "4252494447453031").unwrap();
        m.set("encryption_key", EK).unwrap();
        m.set("authentication_key", AK).unwrap();
        store.add_meter(&m).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (st, d) = (stop.clone(), db.clone());
    let handle =
        std::thread::spawn(move || bridge::run(&d, st, Arc::new(Status::default())).unwrap());
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "status page did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Running {
        stop,
        handle: Some(handle),
        port,
        dir,
        _sim_stop: sim_stop,
        sim_port,
    }
}

fn no_secrets(body: &str) {
    for s in SECRETS {
        assert!(!body.contains(s), "a secret leaked: {body}");
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(20), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn status_metrics_health_and_dashboard() {
    let r = start("status", Some(TOKEN), true);
    wait_until("a reading", || {
        let (_, body) = http(r.port, "GET", "/status", None, None);
        serde_json::from_str::<Value>(&body)
            .is_ok_and(|v| v["meters"]["Meter A"]["values"]["voltage_l1"].is_number())
    });
    let (code, body) = http(r.port, "GET", "/status", None, None);
    assert_eq!(code, 200);
    no_secrets(&body);
    let v: Value = serde_json::from_str(&body).unwrap();
    let m = &v["meters"]["Meter A"];
    assert_eq!(m["state"], "polling");
    assert_eq!(m["breaker"], "closed");
    // The secured meter's counter is shown (it is no secret) and has moved.
    assert!(m["invocation_counter"].as_u64().unwrap() > 0, "{m}");
    let truth = MeterModel::new(60, 0)
        .truth(dlms_bridge::cosem::Obis::new(1, 0, 32, 7, 0, 255), 0)
        .unwrap();
    assert_eq!(
        m["values"]["voltage_l1"].as_f64().unwrap(),
        format!("{}e-1", truth.raw).parse::<f64>().unwrap()
    );
    assert!(
        m["dlms"]["bytes_sent"].as_u64().unwrap() > 0
            && m["dlms"]["frames_received"].as_u64().unwrap() > 0
    );
    assert!(m["cycles"].as_u64().unwrap() >= 1);
    for key in [
        "connected",
        "mode",
        "outbox_depth",
        "oldest_unsent_age_s",
        "published_readings",
        "failed",
        "reconnects",
    ] {
        assert!(v["publisher"].get(key).is_some(), "publisher.{key} missing");
    }
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));

    let (code, metrics) = http(r.port, "GET", "/metrics", None, None);
    assert_eq!(code, 200);
    assert!(
        metrics.contains("dlms_bridge_meter_cycles_total{meter=\"Meter A\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE dlms_bridge_outbox_readings gauge"));
    no_secrets(&metrics);

    let (code, body) = http(r.port, "GET", "/healthz", None, None);
    assert_eq!((code, body.trim()), (200, "ok"));

    let (code, page) = http(r.port, "GET", "/", None, None);
    assert_eq!(code, 200);
    assert!(page.contains("<title>dlms-bridge</title>") && page.contains("fetch(\"/status\""));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external assets"
    );
    assert_eq!(http(r.port, "GET", "/nope", None, None).0, 404);
}

#[test]
fn health_is_503_when_no_meter_answers() {
    let r = start("unhealthy", None, false);
    std::thread::sleep(Duration::from_millis(1500));
    let (code, body) = http(r.port, "GET", "/healthz", None, None);
    assert_eq!(code, 503);
    assert!(body.contains("no meter has been read recently"), "{body}");
    let (_, status) = http(r.port, "GET", "/status", None, None);
    let v: Value = serde_json::from_str(&status).unwrap();
    assert!(
        v["meters"]["Meter A"]["consecutive_failures"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert!(v["meters"]["Meter A"]["last_error"]
        .as_str()
        .unwrap()
        .contains("connect"));
}

#[test]
fn api_refused_without_a_configured_token() {
    let r = start("notoken", None, true);
    let (code, body) = http(
        r.port,
        "GET",
        "/api/meters",
        Some("Bearer anything-at-all-here"),
        None,
    );
    assert_eq!(code, 403);
    assert!(body.contains("http.api_token"), "{body}");
}

#[test]
fn api_crud_with_authentication_and_live_effect() {
    let r = start("api", Some(TOKEN), true);
    let auth = format!("Bearer {TOKEN}");
    let a = Some(auth.as_str());
    assert_eq!(http(r.port, "GET", "/api/meters", None, None).0, 401);
    assert_eq!(
        http(
            r.port,
            "GET",
            "/api/meters",
            Some("Bearer wrong-token-0123456789"),
            None
        )
        .0,
        401
    );
    assert_eq!(
        http(r.port, "GET", "/api/meters", Some(TOKEN), None).0,
        401,
        "the Bearer scheme is required"
    );

    let (code, body) = http(r.port, "GET", "/api/meters", a, None);
    assert_eq!(code, 200);
    no_secrets(&body);
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list[0]["name"], "Meter A");
    assert_eq!(list[0]["password_set"], true);

    assert_eq!(
        http(r.port, "POST", "/api/meters", a, Some("{not json")).0,
        400
    );
    let (code, body) = http(
        r.port,
        "POST",
        "/api/meters",
        a,
        Some(r#"{"name": "B", "host": "127.0.0.1"}"#),
    );
    assert_eq!(code, 400);
    assert!(body.contains("host needs port"), "{body}");
    let (code, _) = http(
        r.port,
        "POST",
        "/api/meters",
        a,
        Some(r#"{"name": "B", "host": "127.0.0.1", "port": 1, "colour": "red"}"#),
    );
    assert_eq!(code, 400, "unknown fields are refused");
    let new = json!({"name": "Meter B", "host": "127.0.0.1", "port": r.sim_port, "server_physical": 17, "interval_s": 1,
                     "auth": "high-gmac", "password": SECRETS[0], "access_token": SECRETS[1],
                     "security": "auth-enc", "system_title": "4252494447453032",
                     "encryption_key": EK, "authentication_key": AK,
                     "measurements": [{"key": "volts", "obis": "1-0:32.7.0*255"}]});
    // A stored password (unused with HLS-GMAC) is a secret all the same; keys go in, never
    // come out.
    let (code, body) = http(r.port, "POST", "/api/meters", a, Some(&new.to_string()));
    assert_eq!(code, 201, "{body}");
    no_secrets(&body);
    assert_eq!(
        http(r.port, "POST", "/api/meters", a, Some(&new.to_string())).0,
        409
    );
    wait_until("Meter B polled", || {
        let (_, s) = http(r.port, "GET", "/status", None, None);
        serde_json::from_str::<Value>(&s)
            .is_ok_and(|v| v["meters"]["Meter B"]["values"]["volts"].is_number())
    });

    assert_eq!(http(r.port, "GET", "/api/meters/Nope", a, None).0, 404);
    let (code, body) = http(r.port, "GET", "/api/meters/Meter%20B", a, None);
    assert_eq!(code, 200, "by name, URL-encoded: {body}");
    no_secrets(&body);
    let shown: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(shown["access_token_set"], true);
    assert_eq!(shown["encryption_key_set"], true);
    assert_eq!(shown["authentication_key_set"], true);
    assert_eq!(shown["security"], "auth-enc");
    let (code, body) = http(
        r.port,
        "PATCH",
        "/api/meters/2",
        a,
        Some(r#"{"interval_s": 2}"#),
    );
    assert_eq!(code, 200, "{body}");
    no_secrets(&body);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["interval_s"],
        2
    );
    assert_eq!(
        http(
            r.port,
            "PATCH",
            "/api/meters/2",
            a,
            Some(r#"{"interval_s": 0}"#)
        )
        .0,
        400
    );
    assert_eq!(
        http(r.port, "PATCH", "/api/meters/2", a, Some("[1]")).0,
        400
    );
    let (code, body) = http(
        r.port,
        "PUT",
        "/api/meters/2/measurements",
        a,
        Some(r#"[{"key": "hz", "obis": "1-0:14.7.0*255"}]"#),
    );
    assert_eq!(code, 200, "{body}");
    let (_, body) = http(r.port, "GET", "/api/meters/2/measurements", a, None);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()[0]["key"],
        "hz"
    );
    assert_eq!(
        http(r.port, "PUT", "/api/meters/2/measurements", a, Some("[]")).0,
        400
    );
    // The secrets survived the edits without ever being returned.
    let store = Store::open(&r.dir.join("bridge.db")).unwrap();
    assert_eq!(
        store.meter("Meter B").unwrap().get("password").as_deref(),
        Some(SECRETS[0])
    );
    assert_eq!(http(r.port, "DELETE", "/api/meters/2", a, None).0, 200);
    assert_eq!(http(r.port, "DELETE", "/api/meters/2", a, None).0, 404);
    wait_until("Meter B gone from the status", || {
        let (_, s) = http(r.port, "GET", "/status", None, None);
        serde_json::from_str::<Value>(&s).is_ok_and(|v| v["meters"].get("Meter B").is_none())
    });
    assert_eq!(http(r.port, "POST", "/api/meters/1", a, Some("{}")).0, 405);
}

/// `POST /api/scan` (issue 24): a list of 2,000 /16 ranges is counted and refused at once,
/// without the 500 MiB its expansion once took; addresses outside `scan.allowed` and
/// time-outs a meter may have but a scan may not are refused before anything is probed.
#[test]
fn page_scans_are_counted_confined_and_quick() {
    let r = start("scan", Some(TOKEN), false);
    let auth = format!("Bearer {TOKEN}");
    let a = Some(auth.as_str());
    let scan = |body: Value| http(r.port, "POST", "/api/scan", a, Some(&body.to_string()));
    let rss = || dlms_bridge::procfs::field("self", "status", "VmRSS:").unwrap_or(0);

    let huge = vec!["1.0.0.0-1.0.255.255"; 2000].join(",");
    let (before, t0) = (rss(), Instant::now());
    let (code, body) = scan(json!({"hosts": huge, "ports": "4059"}));
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("131072000 probes requested; at most 256"),
        "{body}"
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let grown_kib = rss().saturating_sub(before);
    assert!(grown_kib < 64 * 1024, "RSS grew by {grown_kib} KiB");

    // Loopback only (what "auto" means here depends on the machine's own subnets, which
    // the unit tests cover): any other address is refused before it is probed. Read by
    // each request, so the change counts at once.
    Store::open(&r.dir.join("bridge.db"))
        .unwrap()
        .set_setting("scan.allowed", "127.0.0.0/8")
        .unwrap();
    let (code, body) = scan(json!({"hosts": "127.0.0.1,10.0.0.1", "ports": "4059"}));
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("10.0.0.1 is outside scan.allowed (127.0.0.0/8: 127.0.0.0/8)"),
        "{body}"
    );

    let port = free_port().to_string();
    let (code, body) =
        scan(json!({"hosts": "127.0.0.1", "ports": port, "response_timeout_ms": 600000}));
    assert_eq!(code, 400, "{body}");
    let e: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(e["field"], "response_timeout_ms", "{body}");
    assert!(body.contains("at most 5000 ms"), "{body}");

    // Loopback is always allowed: nothing listens there, nothing is found.
    let (code, body) = scan(json!({"hosts": "127.0.0.1", "ports": port}));
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["probes"].as_u64(), v["found"].as_array().map(Vec::len)),
        (Some(1), Some(0))
    );

    // One scan at a time (two scans of slow meters held both of the page's threads): a meter
    // that takes the connection and never answers keeps the first busy; a second is refused
    // with 409, and the page answers meanwhile.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port().to_string();
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(8);
        silent.set_nonblocking(true).unwrap();
        while Instant::now() < deadline {
            if let Ok((c, _)) = silent.accept() {
                open.push(c);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let (port_num, token) = (r.port, auth.clone());
    let slow_body = json!({"hosts": "127.0.0.1", "ports": silent_port, "transport": "wrapper",
                           "response_timeout_ms": 2000})
    .to_string();
    let first = std::thread::spawn(move || {
        http(
            port_num,
            "POST",
            "/api/scan",
            Some(&token),
            Some(&slow_body),
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    let (code, body) = scan(json!({"hosts": "127.0.0.1", "ports": port}));
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("a scan is running already"), "{body}");
    let t0 = Instant::now();
    assert_eq!(http(r.port, "GET", "/status", None, None).0, 200);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let (code, body) = first.join().unwrap();
    assert_eq!(code, 200, "{body}");
    held.join().unwrap();
    let (code, _) = scan(json!({"hosts": "127.0.0.1", "ports": port}));
    assert_eq!(code, 200, "the slot is given back");
}

/// Issue 26: a meter's last frames over the API, ciphered APDUs still ciphered and no secret in
/// them; the page's decode box.
#[test]
fn meter_trace_and_decode_box() {
    let r = start("trace", Some(TOKEN), true);
    let auth = format!("Bearer {TOKEN}");
    let a = Some(auth.as_str());
    let path = "/api/meters/Meter%20A/trace";
    assert_eq!(http(r.port, "GET", path, None, None).0, 401);
    let mut doc = Value::Null;
    wait_until("a traced GET", || {
        let (code, body) = http(r.port, "GET", path, a, None);
        assert_eq!(code, 200, "{body}");
        doc = serde_json::from_str(&body).unwrap();
        doc["entries"].as_array().is_some_and(|e| {
            e.iter().any(|e| {
                e["decoded"]
                    .as_str()
                    .unwrap_or("")
                    .contains("glo-get-response")
            })
        })
    });
    let (_, body) = http(r.port, "GET", path, a, None);
    no_secrets(&body);
    assert_eq!(doc["meter"], "Meter A");
    assert_eq!(doc["capacity"], 64);
    let entries = doc["entries"].as_array().unwrap();
    assert!(entries.len() <= 64);
    let decoded: Vec<&str> = entries
        .iter()
        .map(|e| e["decoded"].as_str().unwrap())
        .collect();
    let text = decoded.join("\n");
    // The association: SNRM/UA, the AARQ with its HLS challenge masked, the AARE; the GETs
    // are glo-ciphered and stay so (the ring has no keys).
    assert!(
        text.contains("HDLC SNRM") && text.contains("HDLC UA"),
        "{text}"
    );
    assert!(
        text.contains("AARQ LogicalNameCiphered") && text.contains("masked"),
        "{text}"
    );
    assert!(text.contains("AARE accepted"), "{text}");
    assert!(text.contains("glo-get-request"), "{text}");
    assert!(
        !text.contains("GET-Request-Normal") && !text.contains("deciphered"),
        "{text}"
    );
    for e in entries {
        assert!(
            matches!(e["direction"].as_str(), Some("sent" | "received")),
            "{e}"
        );
        let hex = e["hex"].as_str().unwrap();
        assert!(
            !hex.is_empty() && hex.len() <= 2 * dlms_bridge::status::trace_ring::MAX_BYTES,
            "{e}"
        );
        assert!(e["at_ms"].as_i64().unwrap() > 0);
    }
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert_eq!(
        http(r.port, "GET", "/api/meters/Nobody/trace", a, None).0,
        404
    );

    // The decode box: gurux-dlms 1.0.203's GET of 1-0:32.7.0 (tests/vectors/independent.json,
    // hdlc_get_voltage), then its glo-ciphered GET of the clock with the Green Book keys.
    let decode = |body: Value| http(r.port, "POST", "/api/decode", a, Some(&body.to_string()));
    assert_eq!(
        http(r.port, "POST", "/api/decode", None, Some(r#"{"hex":"00"}"#)).0,
        401
    );
    let (code, body) =
        decode(json!({"hex": "7EA0190321107FDAE6E600C001C100030100200700FF020085837E"}));
    assert_eq!(code, 200, "{body}");
    let lines: Value = serde_json::from_str(&body).unwrap();
    assert!(
        lines["lines"][0]
            .as_str()
            .unwrap()
            .contains("GET-Request-Normal invoke 1: class 3 1-0:32.7.0*255 attribute 2"),
        "{body}"
    );
    let glo = "0001001000010020C81E3001234568887F56F92BBDFB413823BB59FE96B477FE1BD783E0FDA128D9";
    let (code, body) = decode(json!({
        "hex": glo,
        "encryption_key": "000102030405060708090A0B0C0D0E0F",
        "authentication_key": "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF",
        "system_title": "4D4D4D0000BC614E",
    }));
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("deciphered: GET-Request-Normal invoke 1: class 8 0-0:1.0.0*255"),
        "{body}"
    );
    assert!(!body.contains("000102030405060708090A0B0C0D0E0F"), "{body}");
    assert_eq!(decode(json!({"hex": "7G"})).0, 400);
    assert_eq!(decode(json!({"hex": glo, "encryption_key": "00"})).0, 400);
    assert_eq!(
        http(r.port, "POST", "/api/decode", a, Some("{not json")).0,
        400
    );
}
