//! The web page as a technician uses it, in headless Chromium driven by Playwright
//! (`tests/browser/admin_page.py`, Debian's chromium): sign in, add / edit / disable / remove a
//! meter through the form (with a field error first), scan loopback simulator ports and add a
//! found meter, screenshots at phone and desktop width with their elements checked visible,
//! an alarm raised when a meter goes silent, acknowledged, cleared when it returns, the live
//! log, and a chart with points. This side runs the bridge binary, the simulators (stopping
//! and restarting one when the page asks) and mosquitto, and checks what ThingsBoard got.
//! CI installs chromium and Playwright and requires this test (DLMS_BRIDGE_REQUIRE_INTEROP=1);
//! elsewhere it skips with a note without them.

mod common;

use common::{
    free_port, free_ports, have_mosquitto, http, http_get, simulator, wait_for, wait_port, Bridge,
    Mosquitto, Subscriber, TempDir,
};
use dlms_bridge::config::MeterConfig;
use dlms_bridge::store::Store;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const TOKEN: &str = "page-test-token-0123456789";
const SILENT: &str = "Kitchen";

/// The browser's full path (Playwright wants one) and whether Playwright is installed.
fn browser_tools() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let chromium = ["chromium", "chromium-browser"].into_iter().find_map(|c| {
        std::env::split_paths(&path)
            .map(|d| d.join(c))
            .find(|p| p.is_file())
    });
    let playwright = Command::new("python3")
        .args(["-c", "import playwright.sync_api"])
        .output()
        .is_ok_and(|o| o.status.success());
    match (chromium, playwright) {
        (Some(c), true) if have_mosquitto() => Some(c),
        _ => {
            assert!(
                !common::required(),
                "chromium, Playwright (pip) and mosquitto are required here"
            );
            eprintln!("skipped: needs chromium, python3 -m pip install playwright, mosquitto");
            None
        }
    }
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &str) -> (u32, u32) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{path} is not a PNG");
    assert_eq!(&b[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

/// The alarm telemetry a meter's device got on the gateway API: (state, type) in order.
fn alarm_telemetry(messages: &[(String, Value)], device: &str) -> Vec<(String, String)> {
    messages
        .iter()
        .filter(|(t, _)| t == "v1/gateway/telemetry")
        .filter_map(|(_, v)| v.get(device).and_then(Value::as_array).cloned())
        .flatten()
        .filter_map(|item| {
            let v = item.get("values")?;
            Some((
                v.get("alarm_state")?.as_str()?.to_string(),
                v.get("alarm_type")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn the_page_manages_meters_scans_charts_and_handles_alarms() {
    let Some(chromium) = browser_tools() else {
        return;
    };
    let temp = TempDir::new("admin-page");
    let dir = temp.0.clone();
    let shots = dir.join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let broker = Mosquitto::start(&dir);
    let subscriber = Subscriber::start(broker.port, "v1/gateway/#");
    let silent_port = free_port();
    let mut silent = Some(simulator(silent_port, &["--seed", "3"]));
    let form_port = free_port();
    let _form = simulator(form_port, &["--seed", "4"]);
    // Two simulators on consecutive ports and a third port where nothing listens.
    let scan_base = free_ports(3);
    let _scan = simulator(scan_base, &["--meters", "2", "--seed", "5"]);
    wait_port(scan_base + 1, Duration::from_secs(10));
    let http_port = free_port();
    let db = dir.join("bridge.db");
    {
        let mut store = Store::open(&db).unwrap();
        for (k, v) in [
            ("mqtt.port", broker.port.to_string()),
            ("outbox.commit_interval_ms", "50".into()),
            ("http.bind", format!("127.0.0.1:{http_port}")),
            ("http.api_token", TOKEN.into()),
        ] {
            store.set_setting(k, &v).unwrap();
        }
        let mut m = MeterConfig::tcp(SILENT, "127.0.0.1", silent_port);
        m.server_physical = Some(17);
        m.interval_s = 1;
        m.response_timeout_ms = 500;
        m.connect_timeout_ms = 500;
        store.add_meter(&m).unwrap();
    }
    let mut bridge = Bridge::start(&db, &dir);
    wait_port(http_port, Duration::from_secs(10));
    let mut script = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/admin_page.py"
        ))
        .env("URL", format!("http://127.0.0.1:{http_port}/"))
        .env("TOKEN", TOKEN)
        .env("FORM_PORT", form_port.to_string())
        .env("SCAN_PORTS", format!("{}-{}", scan_base, scan_base + 2))
        .env("SILENT_METER", SILENT)
        .env("SHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_script = script.stdin.take().unwrap();
    let from_script = BufReader::new(script.stdout.take().unwrap());
    let (mut last_step, mut result) = (String::new(), None);
    for line in from_script.lines() {
        let line = line.unwrap();
        eprintln!("page: {line}");
        if let Some(s) = line.strip_prefix("STEP ") {
            last_step = s.to_string();
        } else if let Some(what) = line.strip_prefix("ASK ") {
            if what.starts_with("silence") {
                drop(silent.take());
            } else if what.starts_with("resume") {
                silent = Some(simulator(silent_port, &["--seed", "3"]));
            }
            writeln!(to_script, "OK").unwrap();
        } else if let Some(r) = line.strip_prefix("RESULT ") {
            result = Some(serde_json::from_str::<Value>(r).unwrap());
        }
    }
    let out = script.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = bridge.log();
    assert!(
        out.status.success() && result.is_some(),
        "the page test failed at step {last_step:?}:\n{stderr}\nbridge log (end):\n{}",
        log.lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    let result = result.unwrap();
    eprintln!("page result: {result}");
    assert!(result["field_error"].as_str().unwrap().contains("OBIS"));
    assert_eq!(result["found"].as_array().unwrap().len(), 2);
    assert!(result["chart_points"].as_u64().unwrap() >= 2);
    for s in result["screenshots"].as_array().unwrap() {
        let (w, h) = png_size(s["file"].as_str().unwrap());
        assert_eq!(u64::from(w), s["width"].as_u64().unwrap(), "{s}");
        assert!(h >= 800, "{s}: {h}px high");
    }
    assert_eq!(
        result["screenshots"].as_array().unwrap().len(),
        6,
        "meters, alarms and detail at both widths"
    );
    // The alarm as the API keeps it: acknowledged by the page's client, cleared.
    let id = result["alarm_id"].as_i64().unwrap();
    let auth = format!("Bearer {TOKEN}");
    let (code, body) = http(http_port, "GET", "/api/alarms", Some(&auth), None);
    assert_eq!(code, 200, "{body}");
    let alarms: Value = serde_json::from_str(&body).unwrap();
    let alarm = alarms
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(alarm["type"], "meter_offline");
    assert_eq!(alarm["meter"], SILENT);
    assert_eq!(alarm["active"], false);
    assert_eq!(alarm["acked_by"], "API client 127.0.0.1");
    let (_, metrics) = http_get(http_port, "/metrics");
    assert!(
        metrics.contains("dlms_bridge_alarms_active{type=\"meter_offline\",severity=\"MAJOR\"} 0"),
        "{metrics}"
    );
    // ThingsBoard got the alarm raised and cleared on the meter's device (the rule chain's
    // input), in that order.
    wait_for(
        "the cleared alarm's telemetry",
        Duration::from_secs(15),
        || alarm_telemetry(&subscriber.messages(), SILENT).len() >= 2,
    );
    let told = alarm_telemetry(&subscriber.finish(), SILENT);
    assert_eq!(
        told,
        [
            ("raised".to_string(), "meter_offline".to_string()),
            ("cleared".to_string(), "meter_offline".to_string())
        ]
    );
    let log = bridge.terminate();
    assert!(!log.contains(TOKEN), "the API token is in the log");
    assert!(log.contains(&format!(
        "alarm {id} acknowledged by \"API client 127.0.0.1\""
    )));
    drop(silent);
}
