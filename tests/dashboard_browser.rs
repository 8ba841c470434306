//! The dashboard in a real headless Chromium (Debian's `chromium`): it loads, shows the
//! simulated meters with their values, and updates itself. CI installs chromium and requires
//! this test (DLMS_BRIDGE_REQUIRE_INTEROP=1); elsewhere it skips with a note without it.

mod common;

use common::{free_port, wait_port, TempDir};
use dlms_bridge::bridge;
use dlms_bridge::config::values::Transport;
use dlms_bridge::config::MeterConfig;
use dlms_bridge::sim::model::MeterModel;
use dlms_bridge::sim::net::{self, SimConfig, SimCounters};
use dlms_bridge::status::state::Status;
use dlms_bridge::store::Store;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn chromium() -> Option<&'static str> {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(c);
        }
    }
    let required = common::required();
    assert!(!required, "chromium is required here");
    eprintln!("skipped: no chromium");
    None
}

/// The DOM after the page's scripts ran for a while.
fn dump_dom(browser: &str, url: &str, profile: &std::path::Path) -> String {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The cycle count shown on a meter's card.
fn cycles_of(dom: &str, meter: &str) -> Option<u64> {
    let card = dom.split(&format!("data-meter=\"{meter}\"")).nth(1)?;
    let meta = card.split("class=\"meta\">").nth(1)?;
    let text = meta.split('<').next()?;
    text.split(" cycles")
        .next()?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

#[test]
fn dashboard_shows_meters_and_updates() {
    let Some(browser) = chromium() else { return };
    let temp = TempDir::new("browser");
    let dir = temp.0.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let mut ports = Vec::new();
    for i in 0..2 {
        let l = net::bind_ephemeral().unwrap();
        ports.push(l.local_addr().unwrap().port());
        let s = stop.clone();
        std::thread::spawn(move || {
            net::serve_tcp(
                l,
                SimConfig::new(MeterModel::new(70, i), Transport::Hdlc),
                Arc::new(SimCounters::default()),
                s,
            )
        });
    }
    let http_port = free_port();
    let db = dir.join("bridge.db");
    {
        let mut store = Store::open(&db).unwrap();
        store.set_setting("mqtt.host", "").unwrap();
        store
            .set_setting("http.bind", &format!("127.0.0.1:{http_port}"))
            .unwrap();
        for (i, port) in ports.iter().enumerate() {
            let mut m = MeterConfig::tcp(&format!("Kitchen {i}"), "127.0.0.1", *port);
            m.server_physical = Some(17);
            m.interval_s = 1;
            store.add_meter(&m).unwrap();
        }
        // A meter nobody answers for: last by name, first on the page (failing meters first).
        let closed = net::bind_ephemeral().unwrap().local_addr().unwrap().port();
        let mut m = MeterConfig::tcp("Zeta unreachable", "127.0.0.1", closed);
        m.interval_s = 1;
        store.add_meter(&m).unwrap();
    }
    let bridge_stop = Arc::new(AtomicBool::new(false));
    let (bs, d) = (bridge_stop.clone(), db.clone());
    let bridge =
        std::thread::spawn(move || bridge::run(&d, bs, Arc::new(Status::default())).unwrap());
    wait_port(http_port, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    let url = format!("http://127.0.0.1:{http_port}/");
    let first = dump_dom(browser, &url, &dir.join("profile1"));
    let volts = format!(
        "{}",
        MeterModel::new(70, 0)
            .truth(dlms_bridge::cosem::Obis::new(1, 0, 32, 7, 0, 255), 0)
            .unwrap()
            .raw as f64
            / 10.0
    );
    for name in ["Kitchen 0", "Kitchen 1"] {
        assert!(
            first.contains(&format!("data-meter=\"{name}\"")),
            "meter {name} not shown: {first}"
        );
    }
    assert!(
        first.contains("voltage_l1") && first.contains(&volts),
        "values not shown ({volts}): {first}"
    );
    assert!(first.contains("state polling"), "{first}");
    let position = |name: &str| first.find(&format!("data-meter=\"{name}\"")).unwrap();
    assert!(
        position("Zeta unreachable") < position("Kitchen 0")
            && position("Kitchen 0") < position("Kitchen 1"),
        "failing meters first, then by name: {first}"
    );
    // No token on this gateway: read-only, and the page says how to set one.
    assert!(
        first.contains("<div id=\"api-off\" class=\"notice\">"),
        "the API-off notice is not shown: {first}"
    );
    assert!(first.contains("settings set http.api_token"));
    // The page refreshes itself (every 2 s of page time; 5 s of it ran).
    let refreshes: u32 = first
        .split("data-refreshes=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        refreshes >= 2,
        "the page did not refresh itself: {refreshes}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let second = dump_dom(browser, &url, &dir.join("profile2"));
    let (a, b) = (
        cycles_of(&first, "Kitchen 0"),
        cycles_of(&second, "Kitchen 0"),
    );
    assert!(
        a.is_some() && b > a,
        "the page shows fresh figures: {a:?} then {b:?}"
    );
    bridge_stop.store(true, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let _ = bridge.join();
    let _ = std::fs::remove_dir_all(&dir);
}
