//! General block transfer (IEC 62056-5-3 9.3.11) end to end: the real client against the
//! simulator granting it (`simulate --gbt`), over HDLC and the wrapper, plain and ciphered:
//! registers and a load profile longer than the client's PDU, read through GBT blocks; and
//! the same meter read without GBT (`gbt off`: GET data blocks instead).

mod common;

use dlms_bridge::client::reads::{self, RowSelection, ScalerCache, Target, Value};
use dlms_bridge::client::{Connection, ConnectionOptions, Framing, TcpTransport};
use dlms_bridge::config::values::Transport;
use dlms_bridge::dlms::hdlc::ServerAddress;
use dlms_bridge::dlms::security::{Keys, Protection};
use dlms_bridge::dlms::session::{GbtPolicy, Security, SessionConfig};
use dlms_bridge::dlms::xdlms::Conformance;
use dlms_bridge::sim::model::{self, MeterModel};
use dlms_bridge::sim::net::SimConfig;
use dlms_bridge::sim::server::{ServerSecurity, SERVER_CONFORMANCE};
use std::time::Duration;

const KEYS: Keys = Keys {
    block_cipher: [0x11; 16],
    authentication: [0x22; 16],
};

/// A simulated meter granting general block transfer, serving until dropped.
fn gbt_sim(framing: Transport, secured: bool) -> common::SimMeter {
    let mut config = SimConfig::new(MeterModel::new(5, 0), framing);
    config.server.conformance =
        Conformance(SERVER_CONFORMANCE.0 | Conformance::GENERAL_BLOCK_TRANSFER);
    config.server.max_receive_pdu = 256;
    if secured {
        config.server.security = Some(ServerSecurity::new(KEYS, *b"SIMMETER", false));
    }
    common::serve_sim(config)
}

fn connect(s: &common::SimMeter, gbt: GbtPolicy, secured: bool) -> Connection<TcpTransport> {
    let transport = TcpTransport::connect("127.0.0.1", s.port, Duration::from_secs(2)).unwrap();
    let framing = match s.config.framing {
        Transport::Hdlc => Framing::Hdlc {
            client: 16,
            server: ServerAddress::new(1, Some(17)),
        },
        Transport::Wrapper => Framing::Wrapper {
            client: 16,
            server: 1,
        },
    };
    let session = SessionConfig {
        // Answers over 256 bytes need blocks.
        max_receive_pdu: 256,
        gbt,
        security: secured
            .then(|| Security::new(KEYS, *b"BRIDGE01", Protection::AuthenticatedEncrypted, 1)),
        ..SessionConfig::default()
    };
    let options = ConnectionOptions {
        response_timeout: Duration::from_millis(800),
        ..ConnectionOptions::default()
    };
    Connection::open(transport, framing, session, options).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Reads 24 registers (one with-list GET, longer than 256 bytes) and 50 profile rows, checks
/// them against the simulator's truth, and returns the GBT blocks it took.
fn read_and_check(s: &common::SimMeter, conn: &mut Connection<TcpTransport>) -> u64 {
    let targets: Vec<Target> = MeterModel::register_codes()
        .into_iter()
        .map(|o| Target::new(3, o, 2))
        .collect();
    let mut cache = ScalerCache::default();
    let values = reads::read_values(conn, &targets, &mut cache).unwrap();
    assert_eq!(values.len(), targets.len());
    for (t, v) in targets.iter().zip(&values) {
        let truth = s.config.model.truth(t.obis, now()).unwrap();
        match v {
            Ok(Value::Scaled { value, unit }) => {
                assert_eq!(
                    (value.exponent, unit.0),
                    (truth.scaler, truth.unit),
                    "{}",
                    t.obis
                );
                if truth.unit != 30 {
                    assert_eq!(value.mantissa, i128::from(truth.raw), "{}", t.obis);
                }
            }
            other => panic!("{}: {other:?}", t.obis),
        }
    }
    let profile = reads::read_profile(
        conn,
        model::LOAD_PROFILE,
        RowSelection::Entries(1, 50),
        &mut cache,
    )
    .unwrap()
    .unwrap();
    assert_eq!(profile.rows.len(), 50);
    for row in &profile.rows {
        let t = row.timestamp.unwrap();
        let Value::Scaled { value, unit } = &row.values[0].1 else {
            panic!("{row:?}")
        };
        assert_eq!(unit.0, 30);
        assert_eq!(
            value.mantissa,
            i128::from(s.config.model.truth(model::ENERGY_IMPORT, t).unwrap().raw),
            "the row of {t}"
        );
    }
    conn.stats().gbt_blocks
}

#[test]
fn registers_and_a_profile_through_general_block_transfer() {
    for framing in [Transport::Hdlc, Transport::Wrapper] {
        for secured in [false, true] {
            let s = gbt_sim(framing, secured);
            let mut conn = connect(&s, GbtPolicy::Auto, secured);
            let granted = conn.negotiated().unwrap().conformance;
            assert!(granted.has(Conformance::GENERAL_BLOCK_TRANSFER));
            let blocks = read_and_check(&s, &mut conn);
            // 50 rows of about 20 bytes: several 256-byte blocks.
            assert!(
                blocks >= 5,
                "{framing:?} secured {secured}: {blocks} GBT blocks"
            );
        }
    }
}

#[test]
fn gbt_off_reads_the_same_meter_with_get_data_blocks() {
    let s = gbt_sim(Transport::Hdlc, false);
    let mut conn = connect(&s, GbtPolicy::Off, false);
    let granted = conn.negotiated().unwrap().conformance;
    assert!(!granted.has(Conformance::GENERAL_BLOCK_TRANSFER));
    assert_eq!(read_and_check(&s, &mut conn), 0);
}

#[test]
fn gbt_on_refuses_a_meter_without_it() {
    let mut config = SimConfig::new(MeterModel::new(5, 0), Transport::Wrapper);
    config.server.max_receive_pdu = 256;
    let s = common::serve_sim(config);
    let transport = TcpTransport::connect("127.0.0.1", s.port, Duration::from_secs(2)).unwrap();
    let session = SessionConfig {
        gbt: GbtPolicy::On,
        ..SessionConfig::default()
    };
    let e = Connection::open(
        transport,
        Framing::Wrapper {
            client: 16,
            server: 1,
        },
        session,
        ConnectionOptions::default(),
    )
    .err()
    .expect("refused");
    assert!(e.to_string().contains("general-block-transfer"), "{e}");
}

/// `simulate --push-to ... --gbt`: the simulator pushes its registers in general block
/// transfer (the E450's way: streaming blocks, window 0, LLC in the first frame only); our
/// push receiver joins the blocks and reads the simulator's values.
#[test]
fn the_simulator_pushes_in_general_block_transfer() {
    use dlms_bridge::client::push::Receiver;
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut sim = std::process::Command::new(env!("CARGO_BIN_EXE_dlms-bridge"))
        .args([
            "simulate",
            "--push-to",
            &format!("127.0.0.1:{port}"),
            "--push-every-s",
            "1",
            "--gbt",
            "--duration-s",
            "5",
        ])
        .spawn()
        .unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut receiver = Receiver::new(None, Vec::new(), 0);
    let mut bytes = Vec::new();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while got.is_empty() {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "the simulator closed before a whole notification");
        bytes.extend_from_slice(&buf[..n]);
        got.extend(receiver.push_bytes(&buf[..n]));
    }
    let _ = sim.kill();
    let _ = sim.wait();
    let mut deframer = dlms_bridge::dlms::hdlc::Deframer::new();
    deframer.push(&bytes);
    let blocks: Vec<u8> = std::iter::from_fn(|| deframer.next_frame())
        .map(|f| f.info[if f.info[0] == 0xE6 { 4 } else { 1 }])
        .collect();
    // Block-control: streaming, window 0; the last one also last-block.
    assert!(blocks.len() >= 3, "{blocks:02X?}");
    assert!(blocks[..blocks.len() - 1].iter().all(|c| *c == 0x40));
    assert_eq!(blocks.last(), Some(&0xC0));
    assert_eq!(
        &bytes[8..12],
        &[0xE6, 0xE7, 0x00, 0xE0],
        "LLC, then block 1"
    );
    let p = got.remove(0).unwrap();
    let t = p.time_s.unwrap();
    assert!((t - now()).abs() <= 5);
    let model = MeterModel::new(1, 0);
    for obis in [model::ENERGY_IMPORT, model::ENERGY_EXPORT] {
        let truth = model.truth(obis, t).unwrap();
        let (_, value) = p.values.iter().find(|(o, _)| *o == obis).unwrap();
        let Value::Scaled { value, unit } = value else {
            panic!("{value:?}")
        };
        assert_eq!(
            (value.mantissa, unit.0),
            (i128::from(truth.raw), 30),
            "{obis}"
        );
    }
    assert_eq!(p.values.len(), MeterModel::register_codes().len());
}
