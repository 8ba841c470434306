//! The runtime under broker faults, as an unattended gateway meets them: a broker that is
//! down when the bridge boots and comes up later, a second outage, a broker that accepts TCP
//! and never answers (black hole), a broker that never acknowledges (PUBACK lost). In every
//! state readings keep being committed, SIGTERM ends the process within 5 s, and /healthz tells
//! the truth. Real processes on loopback; mosquitto is the broker.

mod common;

use common::*;
use dlms_bridge::config::values::Transport;
use dlms_bridge::store::Store;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn outbox_rows(db: &Path) -> u64 {
    Store::open(db).unwrap().outbox_stats().unwrap().rows
}

#[test]
fn broker_down_at_boot_then_up_then_a_second_outage_loses_nothing() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("boot-outage");
    let mut broker = Mosquitto::prepare(&dir.0, free_port(), "");
    // The subscriber's persistent session exists before the bridge publishes anything.
    broker.restart();
    let sub = Subscriber::start(broker.port, "v1/gateway/#");
    broker.stop();
    let sims = simulated(0..2, 60, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["B1", "B2"], |_| {});
    let reconnect_max_s = 4;
    setting(&db, "mqtt.reconnect_max_s", &reconnect_max_s.to_string());
    let started = dlms_bridge::clock::now_ms();
    let mut bridge = Bridge::start(&db, &dir.0);
    // Down for 25 s at boot: past the 16-20 s where the first version froze for good.
    std::thread::sleep(Duration::from_secs(25));
    assert!(
        outbox_rows(&db) >= 30,
        "readings are committed while the broker is down ({}): {}",
        outbox_rows(&db),
        bridge.log()
    );
    broker.restart();
    let up = Instant::now();
    wait_for(
        "the first readings after the broker came up",
        Duration::from_secs(reconnect_max_s + 5),
        || gateway_readings(&sub.messages()).len() == 2,
    );
    eprintln!("connected {:?} after the broker came up", up.elapsed());
    wait_for("backlog drained", Duration::from_secs(20), || {
        outbox_rows(&db) == 0
    });
    // A second outage, 12 s.
    broker.stop();
    std::thread::sleep(Duration::from_secs(12));
    broker.restart();
    let up = Instant::now();
    let before = sub.messages().len();
    wait_for(
        "readings after the second outage",
        Duration::from_secs(reconnect_max_s + 5),
        || sub.messages().len() > before,
    );
    eprintln!("reconnected {:?} after the second outage", up.elapsed());
    wait_for("second backlog drained", Duration::from_secs(20), || {
        outbox_rows(&db) == 0
    });
    std::thread::sleep(Duration::from_secs(2));
    let log = terminate_within(&mut bridge, Duration::from_secs(5));
    let readings = gateway_readings(&sub.finish());
    for (i, name) in ["B1", "B2"].iter().enumerate() {
        let r = &readings[*name];
        // Every second of the run is there, the outages included, with its own timestamp.
        assert!(
            r.first().unwrap().0 - started < 3000,
            "{name}: the readings taken while the broker was down at boot arrive: {log}"
        );
        check_continuity(r, 1600, name);
        for (ts, v) in r {
            check_values(&sims.models[i], *ts, v);
        }
    }
    assert!(
        !log.contains("reconnects=0") || log.contains("connected to"),
        "{log}"
    );
}

/// Accepts TCP connections and never answers (a broker behind a dead NAT, a firewall that
/// drops after the handshake).
fn black_hole() -> (u16, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while !s.load(Ordering::Relaxed) {
            if let Ok((c, _)) = l.accept() {
                held.push(c);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (port, stop)
}

#[test]
fn a_black_hole_broker_neither_holds_up_commits_nor_stop() {
    let dir = TempDir::new("black-hole");
    let (port, hole) = black_hole();
    let sims = simulated(0..2, 61, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, port, &sims, &["H1", "H2"], |_| {});
    let http = free_port();
    setting(&db, "http.bind", &format!("127.0.0.1:{http}"));
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("first commits", Duration::from_secs(10), || {
        outbox_rows(&db) >= 2
    });
    // The first version's connect() blocked the commit loop for 10 s at a time: now the
    // outbox grows with every poll (2 meters at 1 s) whatever the broker does.
    let (t0, n0) = (Instant::now(), outbox_rows(&db));
    std::thread::sleep(Duration::from_secs(12));
    let grown = outbox_rows(&db) - n0;
    let expected = 2 * t0.elapsed().as_secs();
    assert!(
        grown + 3 >= expected,
        "{grown} readings committed in {:?} (expected about {expected}): {}",
        t0.elapsed(),
        bridge.log()
    );
    let (code, body) = http_get(http, "/healthz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("not connected"), "{body}");
    let (_, status) = http_get(http, "/status");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert!(status["publisher"]["outbox_depth"].as_u64().unwrap() >= grown);
    assert!(status["publisher"]["oldest_unsent_age_s"].as_u64().unwrap() >= 12);
    // Stop while a connect attempt hangs.
    let log = terminate_within(&mut bridge, Duration::from_secs(5));
    // Said as what it is: the port answers TCP, MQTT never answers.
    assert!(
        log.contains("accepts TCP connections but no CONNACK came")
            || log.contains("no answer to CONNECT within"),
        "{log}"
    );
    assert!(!log.contains("TCP connect timeout"), "{log}");
    hole.store(true, Ordering::Relaxed);
}

#[test]
fn a_refused_token_is_reported_as_such() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("refused");
    let broker = Mosquitto::start_with(&dir.0, "allow_anonymous false\n");
    let sims = simulated(0..1, 62, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["R1"], |_| {});
    setting(&db, "thingsboard.gateway_token", "NOT-A-VALID-TOKEN");
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("the refusal in the log", Duration::from_secs(15), || {
        bridge.log().contains("refused the connection")
    });
    let log = bridge.terminate();
    assert!(log.contains("the access token is wrong"), "{log}");
    assert!(
        !log.contains(": (0)") && !log.contains("NOT-A-VALID-TOKEN"),
        "{log}"
    );
}

/// Answers CONNECT with CONNACK and then swallows everything: PUBACKs never come.
fn no_puback_broker(l: TcpListener, stop: Arc<AtomicBool>) {
    l.set_nonblocking(true).unwrap();
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut c, _)) = l.accept() else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let s = stop.clone();
        std::thread::spawn(move || {
            c.set_nonblocking(false).unwrap();
            c.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut buf = [0u8; 4096];
            let mut acked = false;
            while !s.load(Ordering::Relaxed) {
                match c.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if !acked && buf[0] == 0x10 {
                            let _ = c.write_all(&[0x20, 0x02, 0x00, 0x00]);
                            acked = true;
                        }
                        let _ = n;
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
        });
    }
}

#[test]
fn lost_pubacks_turn_health_red_and_the_readings_arrive_later() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("no-puback");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let fake = std::thread::spawn(move || no_puback_broker(l, s));
    let sims = simulated(0..1, 62, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, port, &sims, &["P1"], |_| {});
    let http = free_port();
    setting(&db, "http.bind", &format!("127.0.0.1:{http}"));
    setting(&db, "health.max_unsent_age_s", "4");
    setting(&db, "mqtt.reconnect_max_s", "2");
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for(
        "healthy at first (connected, reading)",
        Duration::from_secs(10),
        || http_get(http, "/status").1.contains("\"connected\":true"),
    );
    // Readings are published and never acknowledged: within the threshold (4 s) plus a poll,
    // health must say so.
    wait_for(
        "/healthz 503 for unacknowledged readings",
        Duration::from_secs(10),
        || {
            let (code, body) = http_get(http, "/healthz");
            code == 503 && body.contains("unacknowledged")
        },
    );
    let (_, metrics) = http_get(http, "/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("dlms_bridge_outbox_oldest_age_seconds ")
                && l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() > 4.0),
        "{metrics}"
    );
    // No PUBACK within 10 s: the session is given up and the readings offered again.
    wait_for("the PUBACK timeout", Duration::from_secs(15), || {
        bridge.log().contains("no PUBACK within 10 s")
    });
    // The broker is replaced by one that acknowledges: everything arrives, health recovers.
    stop.store(true, Ordering::Relaxed);
    fake.join().unwrap();
    let mut broker = Mosquitto::prepare(&dir.0, port, "");
    broker.restart();
    let sub = Subscriber::start(broker.port, "v1/gateway/#");
    wait_for("/healthz 200 again", Duration::from_secs(30), || {
        http_get(http, "/healthz").0 == 200
    });
    let log = terminate_within(&mut bridge, Duration::from_secs(5));
    let readings = gateway_readings(&sub.finish());
    assert!(!readings["P1"].is_empty());
    assert_eq!(outbox_rows(&db), 0, "{log}");
}

#[test]
fn the_gateway_token_never_reaches_the_log_at_debug_level() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("token-log");
    let broker = Mosquitto::start(&dir.0);
    let sims = simulated(0..1, 63, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["T1"], |_| {});
    let token = "GATEWAY-TOKEN-0123456789";
    setting(&db, "thingsboard.gateway_token", token);
    let sub = Subscriber::start(broker.port, "v1/gateway/#");
    let mut bridge = Bridge::start_with_args(&db, &dir.0, &["--log-level", "debug"]);
    wait_for("readings", Duration::from_secs(15), || {
        !gateway_readings(&sub.messages()).is_empty()
    });
    let log = terminate_within(&mut bridge, Duration::from_secs(5));
    assert!(
        log.contains("DEBUG") || log.contains("connected to"),
        "{log}"
    );
    assert!(!log.contains(token), "the token is in the log:\n{log}");
}

/// This process's soft limit on open files (/proc/self/limits).
fn own_open_file_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn idle_connections_and_endless_headers_cannot_take_the_page_or_the_bridge_down() {
    let dir = TempDir::new("http-flood");
    let sims = simulated(0..1, 64, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, free_port(), &sims, &["F1"], |_| {});
    setting(&db, "mqtt.host", "");
    let http = free_port();
    setting(&db, "http.bind", &format!("127.0.0.1:{http}"));
    // The bridge under the usual service limit of 1,024 open files, 1,000 idle connections
    // against it (the first version's tiny_http panicked at "Too many open files" and took the
    // process down). Where this test process may not hold 1,000 sockets itself, the same
    // ratio at 256 / 400.
    let (limit, connections) = if own_open_file_limit() >= 1200 {
        (1024, 1000)
    } else {
        eprintln!("open-file limit below 1200 here: 400 connections against a limit of 256");
        (256, 400)
    };
    let log = dir.0.join("flood.log");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n {limit} && exec {} run --db {} --log-file {}",
            BIN,
            db.display(),
            log.display()
        ))
        .spawn()
        .unwrap();
    wait_for("the status page", Duration::from_secs(10), || {
        http_get(http, "/healthz").0 != 0
    });
    let cycles = || -> u64 {
        let (_, body) = http_get(http, "/status");
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["meters"]["F1"]["cycles"].as_u64())
            .unwrap_or(0)
    };
    // Idle connections, held open: about as many as the bridge has descriptors.
    let mut idle = Vec::new();
    for _ in 0..connections {
        if let Ok(c) = std::net::TcpStream::connect(("127.0.0.1", http)) {
            idle.push(c);
        }
    }
    let before = Instant::now();
    wait_for(
        "the page to answer again with the idle connections still open",
        Duration::from_secs(15),
        || http_get(http, "/status").0 == 200,
    );
    eprintln!(
        "page answered {:?} after {connections} idle connections",
        before.elapsed()
    );
    let c0 = cycles();
    std::thread::sleep(Duration::from_secs(3));
    assert!(cycles() >= c0 + 2, "the meter keeps its 1 s slots");
    drop(idle);
    // An endless header line: refused after 16 KiB, memory stays flat.
    let rss0 = rss_kib(child.id());
    let mut s = std::net::TcpStream::connect(("127.0.0.1", http)).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(b"GET /status HTTP/1.1\r\nX-Endless: ");
    let block = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 64 << 20 {
        if s.write_all(&block).is_err() {
            break;
        }
        sent += block.len();
    }
    assert!(sent < 64 << 20, "the gate kept reading an endless header");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let grown = rss_kib(child.id()).saturating_sub(rss0);
    assert!(grown < 2048, "RSS grew {grown} KiB");
    assert_ne!(http_get(http, "/healthz").0, 0, "the page still answers");
    assert!(child.try_wait().unwrap().is_none(), "the bridge is alive");
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(5), "SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A damaged page in the outbox (a bad SD card sector): the bridge rebuilds the outbox from
/// what can be read, counts and logs what was lost, and goes on publishing; the first version
/// logged "malformed" twice a second forever and published nothing.
#[test]
fn a_damaged_outbox_is_rebuilt_and_publishing_goes_on() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("damaged-outbox");
    let broker = Mosquitto::start(&dir.0);
    let sub = Subscriber::start(broker.port, "v1/gateway/telemetry");
    let sims = simulated(0..1, 63, Transport::Hdlc);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["D1"], |_| {});
    let http = free_port();
    setting(&db, "http.bind", &format!("127.0.0.1:{http}"));
    // A backlog of 2,000 readings from an earlier outage, then a damaged page among them.
    let total = 2000i64;
    let now = dlms_bridge::clock::now_ms();
    let (leaf, page_size) = {
        let mut store = Store::open(&db).unwrap();
        let entries: Vec<_> = (0..total)
            .map(|i| dlms_bridge::store::outbox::NewEntry {
                device: "D1".into(),
                ts_ms: now - 3_600_000 + i * 1000,
                kind: dlms_bridge::store::outbox::EntryKind::Telemetry,
                payload: format!("{{\"backlog\":{i},\"pad\":\"{}\"}}", "x".repeat(150)),
            })
            .collect();
        let settings = store.settings().unwrap();
        store.outbox_insert(&entries, &settings, now).unwrap();
        drop(store);
        let conn = rusqlite::Connection::open(&db).unwrap();
        let leaf: i64 = conn
            .query_row(
                "SELECT pageno FROM dbstat WHERE name = 'outbox' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 OFFSET 30",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let page_size: i64 = conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        (leaf, page_size)
    };
    let mut bytes = std::fs::read(&db).unwrap();
    let at = ((leaf - 1) * page_size) as usize;
    bytes[at..at + 64].fill(0xFF);
    std::fs::write(&db, bytes).unwrap();
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("the rebuild in the log", Duration::from_secs(20), || {
        bridge.log().contains("the database file is damaged")
    });
    let log = bridge.log();
    let line = log
        .lines()
        .find(|l| l.contains("moved to a fresh outbox"))
        .unwrap_or_else(|| panic!("{log}"));
    let number = |after: &str| -> i64 {
        line.split(after)
            .next()
            .unwrap()
            .split_whitespace()
            .last()
            .unwrap()
            .parse()
            .unwrap()
    };
    // Rows delivered before the damaged page was reached were already deleted.
    let (kept, lost) = (number(" reading(s) moved"), number(" lost on damaged"));
    assert!(kept + lost <= total, "{line}");
    assert!(lost > 0 && lost < 100, "{line}");
    let kept = total - lost;
    let backlog = |msgs: &[(String, serde_json::Value)]| {
        gateway_readings(msgs)
            .get("D1")
            .map(|r| r.iter().filter(|(_, v)| v.get("backlog").is_some()).count())
            .unwrap_or(0) as i64
    };
    wait_for(
        "the kept backlog delivered",
        Duration::from_secs(60),
        || backlog(&sub.messages()) >= kept,
    );
    wait_for("new readings delivered", Duration::from_secs(20), || {
        gateway_readings(&sub.messages())
            .get("D1")
            .is_some_and(|r| r.iter().any(|(_, v)| v.get("voltage_l1").is_some()))
    });
    let (_, status) = http_get(http, "/status");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        status["publisher"]["dropped"],
        serde_json::json!(lost),
        "{status}"
    );
    let log = bridge.terminate();
    assert!(
        !log.contains("malformed\n") || log.matches("malformed").count() < 5,
        "{log}"
    );
    let msgs = sub.finish();
    assert_eq!(backlog(&msgs), kept, "each readable reading once: {line}");
    let distinct: std::collections::BTreeSet<i64> = gateway_readings(&msgs)["D1"]
        .iter()
        .filter_map(|(_, v)| v.get("backlog")?.as_i64())
        .collect();
    assert_eq!(distinct.len() as i64, kept);
}
