//! Interoperability with an independent DLMS server: tests/interop/gurux_server.py, a meter
//! built on the Gurux DLMS library (PyPI gurux-dlms), over HDLC and the wrapper on loopback.
//! Our client reads its registers, serial number, clock and load profile (in blocks), and every
//! value must be what the script serves; then the same against Gurux's secured server
//! (GXDLMSSecureServer) with HLS-GMAC and authenticated encryption, over both framings. CI makes the test mandatory
//! (DLMS_BRIDGE_REQUIRE_INTEROP=1); elsewhere it skips with a note if the package is missing.

mod common;

use dlms_bridge::client::reads::{self, RowSelection, ScalerCache, Target, Value};
use dlms_bridge::client::{Connection, ConnectionOptions, Framing, TcpTransport};
use dlms_bridge::cosem::Obis;
use dlms_bridge::dlms::axdr::Data;
use dlms_bridge::dlms::hdlc::ServerAddress;
use dlms_bridge::dlms::session::SessionConfig;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/gurux_server.py");

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

use common::required;

/// The values the script serves, or `None` (skip) where gurux-dlms is not installed.
fn served_values() -> Option<serde_json::Value> {
    let out = Command::new("python3")
        .args([SCRIPT, "--port", "1", "--print-values"])
        .output();
    match out {
        Ok(o) if o.status.success() => Some(serde_json::from_slice(&o.stdout).unwrap()),
        other => {
            assert!(!required(), "gurux server script failed: {other:?}");
            eprintln!("skipped: gurux-dlms not available ({other:?})");
            None
        }
    }
}

fn start(transport: &str, secure: bool) -> (Server, u16) {
    start_with(transport, if secure { &["--security"] } else { &[] })
}

fn start_with(transport: &str, extra: &[&str]) -> (Server, u16) {
    let port = common::free_port();
    let port_text = port.to_string();
    let mut args = vec![SCRIPT, "--port", &port_text, "--transport", transport];
    args.extend_from_slice(extra);
    let mut child = Command::new("python3")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), format!("ready {port}"));
    (Server(child), port)
}

fn connect(
    port: u16,
    framing: Framing,
    session: SessionConfig,
) -> Result<Connection<TcpTransport>, dlms_bridge::client::ClientError> {
    let transport = TcpTransport::connect("127.0.0.1", port, Duration::from_secs(2)).unwrap();
    let options = ConnectionOptions {
        response_timeout: Duration::from_secs(3),
        ..ConnectionOptions::default()
    };
    Connection::open(transport, framing, session, options)
}

fn framings() -> [(&'static str, Framing); 2] {
    [
        (
            "hdlc",
            Framing::Hdlc {
                client: 16,
                server: ServerAddress::new(1, None),
            },
        ),
        (
            "wrapper",
            Framing::Wrapper {
                client: 16,
                server: 1,
            },
        ),
    ]
}

#[test]
fn our_client_reads_a_gurux_meter_over_hdlc_and_wrapper() {
    let Some(truth) = served_values() else { return };
    for (name, framing) in framings() {
        let (_server, port) = start(name, false);
        let mut conn = connect(port, framing, SessionConfig::default()).unwrap();
        read_everything(name, &mut conn, &truth);
    }
}

/// HLS-GMAC (mechanism 5) and suite-0 authenticated encryption against Gurux's secured server:
/// Gurux checks our f(StoC) and deciphers our glo- requests; we check its f(CtoS), its
/// ciphered answers and their counters. Wrong keys are refused.
#[test]
fn our_client_reads_a_secured_gurux_meter_with_hls_gmac_and_authenticated_encryption() {
    use dlms_bridge::dlms::security::{Keys, Protection};
    use dlms_bridge::dlms::session::{Authentication, Security};
    let Some(truth) = served_values() else { return };
    let key =
        |name: &str| dlms_bridge::hex::array(truth["security"][name].as_str().unwrap()).unwrap();
    let keys = Keys {
        block_cipher: key("encryption_key"),
        authentication: key("authentication_key"),
    };
    let session = |keys: Keys| SessionConfig {
        authentication: Authentication::HighGmac {
            challenge: b"dlms-bridge-ctos".to_vec(),
        },
        security: Some(Security::new(
            keys,
            *b"BRIDGE01",
            Protection::AuthenticatedEncrypted,
            1,
        )),
        ..SessionConfig::default()
    };
    for (name, framing) in framings() {
        let (_server, port) = start(name, true);
        let mut conn =
            connect(port, framing, session(keys.clone())).unwrap_or_else(|e| panic!("{name}: {e}"));
        read_everything(name, &mut conn, &truth);
        assert!(conn.invocation_counter() > 3, "{name}: every APDU counted");
        drop(conn);
        let mut wrong_ek = keys.clone();
        wrong_ek.block_cipher[0] ^= 1;
        let mut wrong_ak = keys.clone();
        wrong_ak.authentication[0] ^= 1;
        for (what, wrong) in [("encryption", wrong_ek), ("authentication", wrong_ak)] {
            assert!(
                connect(port, framing, session(wrong)).is_err(),
                "{name}: a wrong {what} key must not associate"
            );
        }
    }
}

/// HLS mechanisms 3 (MD5), 4 (SHA-1) and 6 (SHA-256) against the Gurux meter: it checks our
/// f(StoC) with Gurux's GXSecure and we check its f(CtoS); a wrong secret is refused by the
/// meter (and never retried by the caller: it is a refusal of the configuration).
#[test]
fn our_client_authenticates_to_a_gurux_meter_with_hls_md5_sha1_and_sha256_over_ln_and_sn() {
    use dlms_bridge::dlms::hls::HlsHash;
    use dlms_bridge::dlms::session::Authentication;
    let Some(truth) = served_values() else { return };
    let secret = truth["hls_secret"].as_str().unwrap().as_bytes().to_vec();
    use dlms_bridge::dlms::sn::association::Referencing;
    let session = |mechanism, secret: Vec<u8>, referencing| SessionConfig {
        authentication: Authentication::HighHash {
            mechanism,
            secret,
            challenge: b"dlms-bridge-ctos-hash".to_vec(),
            client_title: Some(*b"BRIDGE01"),
        },
        referencing,
        ..SessionConfig::default()
    };
    for (word, mechanism) in [
        ("md5", HlsHash::Md5),
        ("sha1", HlsHash::Sha1),
        ("sha256", HlsHash::Sha256),
    ] {
        // Over short names pass 3 is Association SN's method 8, read with its parameter.
        for referencing in [Referencing::Ln, Referencing::Sn] {
            let (name, framing) = framings()[0];
            let what = format!("{word} {}", referencing.name());
            let (_server, port) =
                start_with(name, &["--hls", word, "--referencing", referencing.name()]);
            let mut conn = connect(
                port,
                framing,
                session(mechanism, secret.clone(), referencing),
            )
            .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(
                conn.short_names().is_some(),
                referencing == Referencing::Sn,
                "{what}"
            );
            read_everything(&what, &mut conn, &truth);
            drop(conn);
            let mut wrong = secret.clone();
            wrong[0] ^= 1;
            let refused = connect(port, framing, session(mechanism, wrong, referencing))
                .err()
                .unwrap_or_else(|| panic!("{what}: a wrong secret must not associate"));
            assert!(refused.refuses_configuration(), "{what}: {refused}");
        }
    }
}

/// Registers, serial number, clock and the load profile, each compared with what the script
/// serves.
fn read_everything(name: &str, conn: &mut Connection<TcpTransport>, truth: &serde_json::Value) {
    {
        // Registers: one GET-with-list for the scalers, one for the values.
        let registers = truth["registers"].as_object().unwrap();
        let targets: Vec<Target> = registers
            .keys()
            .map(|o| Target::new(3, o.parse::<Obis>().unwrap(), 2))
            .collect();
        let mut cache = ScalerCache::default();
        let values = reads::read_values(conn, &targets, &mut cache).unwrap();
        for (t, v) in targets.iter().zip(&values) {
            let want = &registers[&t.obis.dotted()];
            let Ok(Value::Scaled { value, unit }) = v else {
                panic!("{name} {}: {v:?}", t.obis)
            };
            assert_eq!(
                value.mantissa,
                i128::from(want["raw"].as_i64().unwrap()),
                "{name} {}",
                t.obis
            );
            assert_eq!(
                i64::from(value.exponent),
                want["scaler"].as_i64().unwrap(),
                "{name} {}",
                t.obis
            );
            assert_eq!(
                i64::from(unit.0),
                want["unit"].as_i64().unwrap(),
                "{name} {}",
                t.obis
            );
        }
        assert_eq!(values.len(), registers.len());

        let serial =
            reads::read_raw(conn, &[Target::new(1, Obis::new(0, 0, 96, 1, 0, 255), 2)]).unwrap();
        let text = match &serial[0] {
            Ok(Data::VisibleString(b) | Data::OctetString(b)) => {
                String::from_utf8_lossy(b).into_owned()
            }
            other => panic!("{name} serial: {other:?}"),
        };
        assert_eq!(text, truth["serial_number"].as_str().unwrap());

        let clock = reads::read_clock(conn).unwrap().unwrap();
        assert_eq!(clock.to_unix(), truth["clock"].as_i64());

        // The ~6 KiB load profile in one APDU. Over HDLC (max info 128) that is ~50 segments
        // to reassemble. (Block transfer is not exercised here: gurux-dlms 1.0.203's Python
        // server answers GET-Request-Next with hardware-fault, to its own client too. Blocks
        // are checked against dlms-cosem's encoding and our simulator instead.)
        let before = conn.stats().frames_received;
        let profile = reads::read_profile(
            conn,
            Obis::new(1, 0, 99, 1, 0, 255),
            RowSelection::All,
            &mut cache,
        )
        .unwrap()
        .unwrap();
        if name == "hdlc" {
            assert!(
                conn.stats().frames_received - before > 40,
                "no segmentation? {:?}",
                conn.stats()
            );
        }
        check_profile(name, &profile, truth);
    }
}

/// Every row of the load profile as the script serves it.
fn check_profile(name: &str, profile: &reads::Profile, truth: &serde_json::Value) {
    {
        let p = &truth["profile"];
        assert_eq!(
            profile.rows.len() as u64,
            p["rows"].as_u64().unwrap(),
            "{name}"
        );
        for (i, row) in profile.rows.iter().enumerate() {
            let i = i as i64;
            assert_eq!(
                row.timestamp,
                Some(p["start"].as_i64().unwrap() + i * p["step"].as_i64().unwrap())
            );
            let energy =
                p["energy_base"].as_i64().unwrap() + i * p["energy_step"].as_i64().unwrap();
            let Value::Scaled { value, .. } = &row.values[0].1 else {
                panic!("{name} row {i}: {row:?}")
            };
            assert_eq!(value.mantissa, i128::from(energy), "{name} row {i}");
        }
    }
}

/// The Gurux meter over short names (`gurux_server.py --referencing sn`: GXDLMSServer with
/// logicalNameReferencing False and an Association SN): our client maps the LN descriptors
/// through Gurux's object list and reads the same exact values, with `referencing sn` and
/// with `auto`.
#[test]
fn our_client_reads_a_gurux_short_name_meter() {
    use dlms_bridge::dlms::sn::association::Referencing;
    let Some(truth) = served_values() else { return };
    for (name, framing) in framings() {
        let port = common::free_port();
        let port_text = port.to_string();
        let mut child = Command::new("python3")
            .args([
                SCRIPT,
                "--port",
                &port_text,
                "--transport",
                name,
                "--referencing",
                "sn",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let _server = Server(child);
        assert_eq!(line.trim(), format!("ready {port}"));
        for referencing in [Referencing::Sn, Referencing::Auto] {
            let session = SessionConfig {
                referencing,
                ..SessionConfig::default()
            };
            let mut conn =
                connect(port, framing, session).unwrap_or_else(|e| panic!("{name}: {e}"));
            let map = conn.short_names().expect("an SN association");
            assert_eq!(
                map.base_name(12, Obis::new(0, 0, 40, 0, 0, 255)),
                Ok(0xFA00),
                "{name}: Association SN at its base name"
            );
            read_everything(name, &mut conn, &truth);
            // The clock written by WriteRequest and read back.
            let later = truth["clock"].as_i64().unwrap() + 3600;
            reads::set_clock(
                &mut conn,
                dlms_bridge::dlms::axdr::DateTime::from_unix(later, 0),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            let clock = reads::read_clock(&mut conn).unwrap().unwrap();
            assert_eq!(clock.to_unix(), Some(later), "{name}");
        }
        // (SN block transfer is not exercised here: asked for a receive size of 256 bytes,
        // gurux-dlms 1.0.203's Python server marks its first data-block-result as the last
        // and puts only the array header in it, then appends a hardware-fault to the next.
        // SN blocks are checked against our simulator, tests/short_names.rs.)
    }
}

/// Issue 26: a trace of an independent meter's frames. Every frame Gurux sends is decoded
/// (none "not decoded"), its ~50 HDLC segments of the load profile are joined into one
/// GET-Response of the size the client assembled, and the association lines are complete.
#[test]
fn traced_frames_of_a_gurux_meter_all_decode() {
    use dlms_bridge::client::trace::{TraceSink, Tracer};
    use dlms_bridge::client::Transport;
    use dlms_bridge::dlms::describe::{Describer, Direction};
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Lines(Mutex<(Describer, Vec<(Direction, String)>)>);
    impl TraceSink for Lines {
        fn record(&self, direction: Direction, unit: &[u8]) {
            let mut g = self.0.lock().unwrap();
            let line = g.0.describe(unit);
            g.1.push((direction, line));
        }
    }

    if served_values().is_none() {
        return;
    }
    for (name, framing) in framings() {
        let (_server, port) = start(name, false);
        let sink = Arc::new(Lines::default());
        let tcp = TcpTransport::connect("127.0.0.1", port, Duration::from_secs(2)).unwrap();
        let transport: Box<dyn Transport> = Tracer::to(sink.clone()).wrap(Box::new(tcp));
        let options = ConnectionOptions {
            response_timeout: Duration::from_secs(3),
            ..ConnectionOptions::default()
        };
        let mut conn =
            Connection::open(transport, framing, SessionConfig::default(), options).unwrap();
        let profile = reads::read_profile(
            &mut conn,
            Obis::new(1, 0, 99, 1, 0, 255),
            RowSelection::All,
            &mut ScalerCache::default(),
        )
        .unwrap()
        .unwrap();
        assert!(!profile.rows.is_empty());
        conn.release();
        drop(conn);
        let g = sink.0.lock().unwrap();
        let lines = &g.1;
        let text: Vec<String> = lines
            .iter()
            .map(|(d, l)| format!("{} {l}", d.arrow()))
            .collect();
        let all = text.join("\n");
        // gurux-dlms 1.0.203's RLRE is the one malformed answer: its lengths (63 0E ... BE 0F)
        // cover 14 of its 20 bytes, and the trace says so rather than guess.
        for line in &text {
            if line.contains("RLRE") {
                assert!(line.contains("trailing byte"), "{name}: {line}");
            } else {
                assert!(!line.contains("not decoded"), "{name}:\n{all}");
            }
        }
        assert!(
            all.contains("<- ") && all.contains("AARE accepted"),
            "{name}:\n{all}"
        );
        assert!(
            all.contains("-> ") && all.contains("RLRQ"),
            "{name}:\n{all}"
        );
        let received = lines
            .iter()
            .filter(|(d, _)| *d == Direction::Received)
            .count();
        assert!(received > 3, "{name}:\n{all}");
        if name == "hdlc" {
            let joined = lines
                .iter()
                .find(|(_, l)| l.contains("from ") && l.contains(" segments: GET-Response-Normal"))
                .unwrap_or_else(|| panic!("no joined profile in\n{all}"));
            let segments: usize = joined
                .1
                .split(" segments")
                .next()
                .and_then(|s| s.rsplit(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap();
            assert!(segments > 40, "{}", joined.1);
            assert!(joined.1.contains("array["), "{}", joined.1);
        }
    }
}

/// General block transfer (IEC 62056-5-3 9.3.11) against Gurux's server granting it
/// (gurux_server.py --gbt WINDOW): the ~6 KiB load profile in General-Block-Transfer blocks of
/// a 1 KiB PDU, one per acknowledgement (window 1) or three at a time (window 3); every row
/// must be what the script serves.
///
/// Ignored: gurux-dlms 1.0.203's server cannot finish a GBT GET. Its first block is right
/// (E0 01 0001 0000, 1017 bytes of GET-Response-Normal); its second, sent for our
/// acknowledgement E0 01 0001 0001 00, declares 1017 data bytes but carries 4 more
/// (00 01 C1 01), and every later acknowledgement is answered with those 4 bytes alone. Over
/// HDLC its second block also repeats the LLC header and then skips an N(S). Our GBT path is
/// checked against the simulator (tests/gbt.rs) and Gurux-made blocks (src/dlms/xdlms/gbt.rs,
/// src/client/push.rs); run this with `--ignored` against a fixed Gurux release.
#[test]
#[ignore = "gurux-dlms 1.0.203's server breaks GBT after its first block (see the comment)"]
fn our_client_reads_a_gurux_profile_through_general_block_transfer() {
    use dlms_bridge::dlms::session::GbtPolicy;
    use dlms_bridge::dlms::xdlms::Conformance;
    let Some(truth) = served_values() else { return };
    for (name, framing) in framings() {
        for window in ["1", "3"] {
            let (_server, port) = start_with(name, &["--gbt", window]);
            let session = SessionConfig {
                gbt: GbtPolicy::On,
                max_receive_pdu: 1024,
                ..SessionConfig::default()
            };
            let mut conn =
                connect(port, framing, session).unwrap_or_else(|e| panic!("{name}: {e}"));
            let granted = conn.negotiated().unwrap().conformance;
            assert!(granted.has(Conformance::GENERAL_BLOCK_TRANSFER), "{name}");
            let mut cache = ScalerCache::default();
            let profile = reads::read_profile(
                &mut conn,
                Obis::new(1, 0, 99, 1, 0, 255),
                RowSelection::All,
                &mut cache,
            )
            .unwrap_or_else(|e| panic!("{name} window {window}: {e:?}"))
            .unwrap();
            check_profile(name, &profile, &truth);
            let blocks = conn.stats().gbt_blocks;
            assert!(blocks >= 6, "{name} window {window}: {blocks} GBT blocks");
        }
    }
}

/// The other direction: Gurux's client (tests/interop/gurux_gbt_client.py, proposing
/// general-block-transfer and a 256-byte PDU) reads our simulator's load profile through GBT
/// blocks (`simulate --gbt`), over both framings: every row it joins must be the simulator's.
#[test]
fn a_gurux_client_reads_our_simulators_profile_through_general_block_transfer() {
    use dlms_bridge::config::values::Transport;
    use dlms_bridge::dlms::xdlms::Conformance;
    use dlms_bridge::sim::model::{self, MeterModel};
    use dlms_bridge::sim::net::{self, SimConfig, SimCounters};
    use dlms_bridge::sim::server::SERVER_CONFORMANCE;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    if served_values().is_none() {
        return;
    }
    for (name, transport) in [("hdlc", Transport::Hdlc), ("wrapper", Transport::Wrapper)] {
        let mut config = SimConfig::new(MeterModel::new(4, 0), transport);
        config.server.conformance =
            Conformance(SERVER_CONFORMANCE.0 | Conformance::GENERAL_BLOCK_TRANSFER);
        let stop = Arc::new(AtomicBool::new(false));
        let listener = net::bind_ephemeral().unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cfg, st) = (config.clone(), stop.clone());
        std::thread::spawn(move || {
            net::serve_tcp(listener, cfg, Arc::new(SimCounters::default()), st)
        });
        let out = Command::new("python3")
            .args([
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/interop/gurux_gbt_client.py"
                ),
                "--port",
                &port.to_string(),
                "--transport",
                name,
            ])
            .output()
            .unwrap();
        stop.store(true, Ordering::Relaxed);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let granted = Conformance(got["conformance"].as_u64().unwrap() as u32);
        assert!(granted.has(Conformance::GENERAL_BLOCK_TRANSFER), "{name}");
        assert!(
            got["gbt_acknowledgements"].as_u64().unwrap() >= 10,
            "{name}: {got}"
        );
        let rows = got["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 192, "{name}: two days of 15-minute rows");
        for row in rows {
            let t = row[0].as_i64().unwrap();
            assert_eq!(t % model::PROFILE_PERIOD, 0, "{name}");
            for (column, obis) in [(1, model::ENERGY_IMPORT), (2, model::ENERGY_EXPORT)] {
                let truth = config.model.truth(obis, t).unwrap().raw;
                assert_eq!(row[column].as_i64(), Some(truth), "{name} {obis} at {t}");
            }
        }
    }
}
