//! Profile-read benchmark (not a test): a 31-day 15-minute load profile (2,976 rows) read
//! whole over HDLC from the simulator, by our client with the link at the defaults of a SNRM
//! without parameters (128 bytes, window 1) and with what we propose by default (2030 bytes,
//! window 7: the meter grants 1,024 and 7), and by the Gurux Python client with its default
//! link settings; each with no latency and with a 50 ms turnaround per answer
//! (`simulate --latency-ms 50`: a modem or a slow meter). Bytes on the wire, round trips and
//! time, against the link's physical minimum at 9600 baud (bytes x 10 bits / 9600).
//!
//! Run: `cargo bench --bench profile_read` (the Gurux rows need `pip install gurux-dlms`).
//! Figures go in docs/benchmarks.md.

#[path = "../tests/common/mod.rs"]
mod common;

use dlms_bridge::client::reads::{self, RowSelection, ScalerCache};
use dlms_bridge::client::{Connection, ConnectionOptions, Framing, TcpTransport};
use dlms_bridge::dlms::hdlc::ServerAddress;
use dlms_bridge::dlms::session::SessionConfig;
use dlms_bridge::sim::model::LOAD_PROFILE;
use std::time::{Duration, Instant};

struct Row {
    client: String,
    latency_ms: u64,
    rows: usize,
    round_trips: u64,
    sent: u64,
    received: u64,
    seconds: f64,
}

fn simulator(port: u16, latency_ms: u64) -> common::Proc {
    let latency = latency_ms.to_string();
    let args = [
        "--profile-days",
        "31",
        "--max-info",
        "1024",
        "--window",
        "7",
    ];
    common::simulator(port, &[&args[..], &["--latency-ms", &latency]].concat())
}

fn ours(port: u16, latency_ms: u64, max_info: u16, window: u8) -> Row {
    let t0 = Instant::now();
    let t = TcpTransport::connect("127.0.0.1", port, Duration::from_secs(2)).unwrap();
    let options = ConnectionOptions {
        max_info,
        window,
        response_timeout: Duration::from_secs(10),
        inter_frame_timeout: Duration::from_secs(10),
        ..ConnectionOptions::default()
    };
    let framing = Framing::Hdlc {
        client: 16,
        server: ServerAddress::new(1, Some(17)),
    };
    let mut conn = Connection::open(t, framing, SessionConfig::default(), options).unwrap();
    let mut cache = ScalerCache::default();
    let profile = reads::read_profile(&mut conn, LOAD_PROFILE, RowSelection::All, &mut cache)
        .unwrap()
        .unwrap();
    conn.release();
    let s = conn.stats();
    Row {
        client: format!("dlms-bridge (Rust), proposing {max_info} bytes, window {window}"),
        latency_ms,
        rows: profile.rows.len(),
        // Every frame we send waits for the meter: the link's turnarounds.
        round_trips: s.frames_sent,
        sent: s.bytes_sent,
        received: s.bytes_received,
        seconds: t0.elapsed().as_secs_f64(),
    }
}

fn gurux(port: u16, latency_ms: u64) -> Option<Row> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/gurux_profile.py");
    let v = common::python_json(script, &["--port", &port.to_string()])?;
    Some(Row {
        client: v["client"].as_str()?.to_string(),
        latency_ms,
        rows: v["rows"].as_u64()? as usize,
        round_trips: v["round_trips"].as_u64()?,
        sent: v["bytes_sent"].as_u64()?,
        received: v["bytes_received"].as_u64()?,
        seconds: v["seconds"].as_f64()?,
    })
}

fn main() {
    if !common::bench_or_skip("profile_read", &[]) {
        return;
    }
    let mut rows = Vec::new();
    for latency in [0u64, 50] {
        let port = common::free_port();
        let _sim = simulator(port, latency);
        rows.push(ours(port, latency, 128, 1));
        rows.push(ours(port, latency, 2030, 7));
        if let Some(g) = gurux(port, latency) {
            rows.push(g);
        }
    }
    println!("| client | turnaround | rows | frames sent (each waits for the meter) | bytes sent | bytes received | time | physical minimum at 9600 baud |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        assert_eq!(r.rows, 2976, "{}: every row", r.client);
        let minimum = (r.sent + r.received) as f64 * 10.0 / 9600.0;
        println!(
            "| {} | {} ms | {} | {} | {} | {} | {:.2} s | {:.1} s |",
            r.client, r.latency_ms, r.rows, r.round_trips, r.sent, r.received, r.seconds, minimum
        );
    }
}
