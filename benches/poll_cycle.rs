//! Poll-cycle benchmark (not a test): round trips, bytes on the wire and CPU per poll cycle of 8
//! registers, for our client and for the Gurux Python client, against the same simulated meter
//! (a separate `dlms-bridge simulate` process, so its CPU is not counted).
//!
//! A secured run (HLS-GMAC, authenticated encryption) shows what suite 0 costs per cycle.
//!
//! Run: `cargo bench --bench poll_cycle` (set POLL_CYCLES to change the cycle count). The
//! Gurux row needs `pip install gurux-dlms`. Figures go in docs/benchmarks.md.

#[path = "../tests/common/mod.rs"]
mod common;

use dlms_bridge::client::reads::{self, ScalerCache, Target};
use dlms_bridge::client::{Connection, ConnectionOptions, Framing, TcpTransport};
use dlms_bridge::dlms::hdlc::ServerAddress;
use dlms_bridge::dlms::session::SessionConfig;
use dlms_bridge::sim::model::MeterModel;
use std::time::{Duration, Instant};

/// CPU seconds (user + system) of this process, from /proc/self/stat (clock ticks of 10 ms).
fn cpu_seconds() -> f64 {
    dlms_bridge::procfs::cpu_seconds("self").unwrap_or(0.0)
}

struct Row {
    client: String,
    transport: &'static str,
    cycles: u64,
    round_trips: u64,
    sent: u64,
    received: u64,
    cpu_s: f64,
}

/// Keys of the secured run (the Green Book example keys).
const EK: &str = "000102030405060708090A0B0C0D0E0F";
const AK: &str = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF";

fn secured_session() -> SessionConfig {
    use dlms_bridge::dlms::security::{Keys, Protection};
    use dlms_bridge::dlms::session::{Authentication, Security};
    SessionConfig {
        authentication: Authentication::HighGmac {
            challenge: vec![0x42; 16],
        },
        security: Some(Security::new(
            Keys {
                block_cipher: dlms_bridge::hex::array(EK).unwrap(),
                authentication: dlms_bridge::hex::array(AK).unwrap(),
            },
            *b"BENCH001",
            Protection::AuthenticatedEncrypted,
            1,
        )),
        ..SessionConfig::default()
    }
}

fn ours(
    port: u16,
    framing: Framing,
    transport: &'static str,
    cycles: u64,
    session: SessionConfig,
) -> Row {
    let client = if session.security.is_some() {
        "dlms-bridge (Rust), HLS-GMAC + auth-enc"
    } else {
        "dlms-bridge (Rust)"
    };
    let t = TcpTransport::connect("127.0.0.1", port, Duration::from_secs(2)).unwrap();
    let mut conn = Connection::open(t, framing, session, ConnectionOptions::default()).unwrap();
    let targets: Vec<Target> = MeterModel::register_codes()
        .into_iter()
        .take(8)
        .map(|o| Target::new(3, o, 2))
        .collect();
    let mut cache = ScalerCache::default();
    reads::read_values(&mut conn, &targets, &mut cache).unwrap();
    let s0 = conn.stats();
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    for _ in 0..cycles {
        let v = reads::read_values(&mut conn, &targets, &mut cache).unwrap();
        assert!(v.iter().all(Result::is_ok));
    }
    let cpu_s = cpu_seconds() - cpu0;
    let s1 = conn.stats();
    eprintln!(
        "ours/{transport}: {cycles} cycles in {:.2?}",
        wall0.elapsed()
    );
    Row {
        client: client.into(),
        transport,
        cycles,
        round_trips: s1.round_trips - s0.round_trips,
        sent: s1.bytes_sent - s0.bytes_sent,
        received: s1.bytes_received - s0.bytes_received,
        cpu_s,
    }
}

fn gurux(port: u16, transport: &'static str, cycles: u64) -> Option<Row> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/gurux_poll.py");
    let v = common::python_json(
        script,
        &[
            "--port",
            &port.to_string(),
            "--cycles",
            &cycles.to_string(),
            "--transport",
            transport,
        ],
    )?;
    Some(Row {
        client: v["client"].as_str()?.to_string(),
        transport,
        cycles,
        round_trips: v["round_trips"].as_u64()?,
        sent: v["bytes_sent"].as_u64()?,
        received: v["bytes_received"].as_u64()?,
        cpu_s: v["cpu_s"].as_f64()?,
    })
}

fn main() {
    if !common::bench_or_skip("poll_cycle", &[]) {
        return;
    }
    let cycles: u64 = std::env::var("POLL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut rows = Vec::new();
    let runs = [
        ("hdlc", port, false),
        ("wrapper", port + 1, false),
        ("hdlc", port + 2, true),
        ("wrapper", port + 3, true),
    ];
    for (transport, p, secured) in runs {
        let mut args = vec!["--transport", transport, "--duration-s", "600"];
        if secured {
            args.extend(["--encryption-key", EK, "--authentication-key", AK, "--hls"]);
        }
        let sim = common::simulator(p, &args);
        let framing = match transport {
            "hdlc" => Framing::Hdlc {
                client: 16,
                server: ServerAddress::new(1, Some(17)),
            },
            _ => Framing::Wrapper {
                client: 16,
                server: 1,
            },
        };
        if secured {
            rows.push(ours(p, framing, transport, cycles, secured_session()));
        } else {
            rows.push(ours(
                p,
                framing,
                transport,
                cycles,
                SessionConfig::default(),
            ));
            rows.extend(gurux(p, transport, cycles / 10));
        }
        drop(sim);
    }
    println!("| client | transport | cycles | round trips / cycle | bytes sent / cycle | bytes received / cycle | CPU µs / cycle |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        let c = r.cycles as f64;
        println!(
            "| {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} |",
            r.client,
            r.transport,
            r.cycles,
            r.round_trips as f64 / c,
            r.sent as f64 / c,
            r.received as f64 / c,
            r.cpu_s * 1e6 / c
        );
    }
}
