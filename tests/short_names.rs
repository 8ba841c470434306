//! Short-name referencing end to end: the real client (`Connection`, `client::reads`) against
//! the simulator serving the same model over SN (`ServerConfig::referencing`), with
//! `referencing sn` and `auto` (LN refused with application-context-name-not-supported, then
//! SN), over HDLC and the wrapper. The values are checked against the model's truth. Then the
//! binary: `simulate --referencing sn` read by `read` (auto) and `read --referencing sn`.

mod common;

use dlms_bridge::client::reads::{self, RowSelection, ScalerCache, Target, Value};
use dlms_bridge::client::{ClientError, Connection, ConnectionOptions, Framing, TcpTransport};
use dlms_bridge::config::values::Transport;
use dlms_bridge::cosem::Obis;
use dlms_bridge::dlms::axdr::Data;
use dlms_bridge::dlms::hdlc::ServerAddress;
use dlms_bridge::dlms::session::{SessionConfig, SessionError};
use dlms_bridge::dlms::sn::association::Referencing;
use dlms_bridge::dlms::xdlms::MethodDescriptor;
use dlms_bridge::sim::model::{self, MeterModel};
use dlms_bridge::sim::net::SimConfig;
use std::time::Duration;

fn sim(framing: Transport, referencing: Referencing) -> common::SimMeter {
    let mut config = SimConfig::new(MeterModel::new(11, 1), framing);
    config.server.referencing = referencing;
    common::serve_sim(config)
}

fn connect(
    s: &common::SimMeter,
    referencing: Referencing,
) -> Result<Connection<TcpTransport>, ClientError> {
    let transport = TcpTransport::connect("127.0.0.1", s.port, Duration::from_secs(2))?;
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
        referencing,
        ..SessionConfig::default()
    };
    let options = ConnectionOptions {
        response_timeout: Duration::from_millis(800),
        meter_key: format!("127.0.0.1:{}", s.port),
        ..ConnectionOptions::default()
    };
    Connection::open(transport, framing, session, options)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Registers (scaler and unit included), clock read and set, a profile whole and by range.
fn read_everything(s: &common::SimMeter, conn: &mut Connection<TcpTransport>) {
    assert!(conn.short_names().is_some(), "an SN association");
    // The scanner's object list comes from Association SN.
    let objects = reads::list_objects(conn).unwrap().unwrap();
    assert!(objects
        .iter()
        .any(|o| o.class_id == 7 && o.obis == model::LOAD_PROFILE));
    assert!(objects.iter().any(|o| o.class_id == 12));
    let targets: Vec<Target> = MeterModel::register_codes()
        .into_iter()
        .take(6)
        .map(|o| Target::new(3, o, 2))
        .collect();
    let mut cache = ScalerCache::default();
    let values = reads::read_values(conn, &targets, &mut cache).unwrap();
    for (t, v) in targets.iter().zip(&values) {
        let truth = s.config.model.truth(t.obis, now()).unwrap();
        match v {
            Ok(Value::Scaled { value, unit }) => {
                assert_eq!(value.exponent, truth.scaler, "{}", t.obis);
                assert_eq!(unit.0, truth.unit, "{}", t.obis);
                if truth.unit != 30 {
                    assert_eq!(value.mantissa, i128::from(truth.raw), "{}", t.obis);
                }
            }
            other => panic!("{}: {other:?}", t.obis),
        }
    }

    let clock = reads::read_clock(conn).unwrap().unwrap();
    assert!((clock.to_unix().unwrap() - now()).abs() <= 2);
    let target = dlms_bridge::dlms::axdr::DateTime::from_unix(now() + 3600, 0);
    reads::set_clock(conn, target).unwrap();
    let moved = reads::read_clock(conn).unwrap().unwrap();
    assert!((moved.to_unix().unwrap() - now() - 3600).abs() <= 2);

    // An RPC's method (disconnect control, Blue Book 4.5.8) is a write of the method's
    // short name: remote_disconnect at base + 0x20, remote_reconnect at base + 0x28.
    let relay = model::DISCONNECT_CONTROL;
    for (method, state) in [(1, 0), (2, 1)] {
        let returned = conn
            .action(
                MethodDescriptor::new(70, relay, method),
                Some(&Data::Integer(0)),
            )
            .unwrap();
        assert_eq!(returned, None);
        let read = reads::read_raw(conn, &[Target::new(70, relay, 3)]).unwrap();
        assert_eq!(read[0], Ok(Data::Enum(state)), "after method {method}");
    }
    // An object the meter does not list has no short name: a clear error, no request sent.
    let before = conn.stats().round_trips;
    let unknown = conn.get(vec![(
        dlms_bridge::dlms::xdlms::AttributeDescriptor::new(3, Obis::new(1, 0, 99, 99, 0, 255), 2),
        None,
    )]);
    assert!(
        matches!(
            unknown,
            Err(ClientError::Session(SessionError::ShortName(_)))
        ),
        "{unknown:?}"
    );
    assert_eq!(conn.stats().round_trips, before);

    // The whole load profile needs SN block transfer (data-block-result + block-number-access).
    let before = conn.stats().round_trips;
    let profile = reads::read_profile(conn, model::LOAD_PROFILE, RowSelection::All, &mut cache)
        .unwrap()
        .unwrap();
    assert!(conn.stats().round_trips - before > 3, "SN blocks expected");
    let last = profile.rows.last().unwrap();
    let t = last.timestamp.unwrap();
    assert_eq!(t % model::PROFILE_PERIOD, 0);
    let Value::Scaled { value, unit } = &last.values[0].1 else {
        panic!("{last:?}")
    };
    assert_eq!(unit.0, 30);
    assert_eq!(
        value.mantissa,
        i128::from(s.config.model.truth(model::ENERGY_IMPORT, t).unwrap().raw)
    );
    // Range selection travels as parameterized-access.
    let ranged = reads::read_profile(
        conn,
        model::LOAD_PROFILE,
        RowSelection::Range(t - 3600, t),
        &mut cache,
    )
    .unwrap()
    .unwrap();
    assert_eq!(ranged.rows.len(), 5);
    assert_eq!(ranged.rows[4].timestamp, Some(t));
}

#[test]
fn sn_meter_read_with_referencing_sn() {
    for framing in [Transport::Hdlc, Transport::Wrapper] {
        let s = sim(framing, Referencing::Sn);
        let mut conn = connect(&s, Referencing::Sn).unwrap();
        read_everything(&s, &mut conn);
    }
}

#[test]
fn auto_falls_back_to_sn_and_remembers() {
    let s = sim(Transport::Hdlc, Referencing::Sn);
    // LN alone is refused with application-context-name-not-supported.
    match connect(&s, Referencing::Ln) {
        Err(ClientError::Session(SessionError::Rejected(r))) => {
            assert!(dlms_bridge::dlms::sn::association::is_context_rejection(&r))
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("an LN association with an SN-only meter"),
    }
    let mut conn = connect(&s, Referencing::Auto).unwrap();
    let first = conn.stats().round_trips;
    read_everything(&s, &mut conn);
    drop(conn);
    // The second association goes to SN at once: one AARQ fewer.
    let conn = connect(&s, Referencing::Auto).unwrap();
    assert!(conn.short_names().is_some());
    assert_eq!(conn.stats().round_trips, first - 1);
}

#[test]
fn auto_stays_ln_on_an_ln_meter_and_both_serve_the_same_model() {
    let s = sim(Transport::Wrapper, Referencing::Auto);
    let conn = connect(&s, Referencing::Auto).unwrap();
    assert!(conn.short_names().is_none(), "LN first");
    drop(conn);
    let mut conn = connect(&s, Referencing::Sn).unwrap();
    read_everything(&s, &mut conn);
}

#[test]
fn the_binary_reads_an_sn_simulator() {
    let port = common::free_ports(1);
    let _sim = common::simulator(port, &["--referencing", "sn", "--seed", "5"]);
    let p = port.to_string();
    let read = |extra: &[&str]| {
        let mut args = vec!["read", "--host", "127.0.0.1", "--port", &p];
        args.extend_from_slice(extra);
        let out = std::process::Command::new(common::BIN)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let truth = MeterModel::new(5, 0)
        .truth(dlms_bridge::cosem::Obis::new(1, 0, 32, 7, 0, 255), 0)
        .unwrap();
    for referencing in ["auto", "sn"] {
        let v = read(&["--referencing", referencing, "1-0:32.7.0*255"]);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0]["unit"], "V");
        assert_eq!(v[0]["value"].as_f64().unwrap(), truth.raw as f64 / 10.0);
    }
    let objects = read(&["--referencing", "sn", "--list-objects"]);
    assert!(objects
        .iter()
        .any(|o| o["obis"] == "1-0:99.1.0*255" && o["class"] == 7));
    // The scanner finds it and says it speaks SN, with its serial number read over SN.
    let out = std::process::Command::new(common::BIN)
        .args([
            "scan",
            "--hosts",
            "127.0.0.1",
            "--ports",
            &p,
            "--timeout-ms",
            "500",
        ])
        .output()
        .unwrap();
    let found: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["referencing"], "sn");
    assert_eq!(
        found[0]["serial_number"],
        MeterModel::new(5, 0).serial_number()
    );
    // LN alone is refused, in one clear line.
    let out = std::process::Command::new(common::BIN)
        .args([
            "read",
            "--host",
            "127.0.0.1",
            "--port",
            &p,
            "--referencing",
            "ln",
            "1-0:32.7.0*255",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("application context name not supported"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Suite-0 authenticated encryption over SN (application context 2.16.756.5.8.1.4): the
/// requests travel as glo-readRequest / glo-writeRequest, the answers as glo-readResponse /
/// glo-writeResponse; a plain ReadRequest in that association is refused.
#[test]
fn ciphered_sn_association() {
    use dlms_bridge::dlms::security::{Keys, Protection};
    use dlms_bridge::dlms::session::Security;
    use dlms_bridge::sim::server::ServerSecurity;
    let keys = Keys {
        block_cipher: dlms_bridge::hex::array("000102030405060708090A0B0C0D0E0F").unwrap(),
        authentication: dlms_bridge::hex::array("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF").unwrap(),
    };
    let mut config = SimConfig::new(MeterModel::new(11, 1), Transport::Wrapper);
    config.server.referencing = Referencing::Sn;
    config.server.security = Some(ServerSecurity::new(keys.clone(), *b"SIMMETER", false));
    let s = common::serve_sim(config);
    let transport = TcpTransport::connect("127.0.0.1", s.port, Duration::from_secs(2)).unwrap();
    let session = SessionConfig {
        referencing: Referencing::Sn,
        security: Some(Security::new(
            keys,
            *b"BRIDGE01",
            Protection::AuthenticatedEncrypted,
            1,
        )),
        ..SessionConfig::default()
    };
    let options = ConnectionOptions {
        response_timeout: Duration::from_millis(800),
        ..ConnectionOptions::default()
    };
    let framing = Framing::Wrapper {
        client: 16,
        server: 1,
    };
    let mut conn = Connection::open(transport, framing, session, options).unwrap();
    let counter = conn.invocation_counter();
    read_everything(&s, &mut conn);
    assert!(
        conn.invocation_counter() > counter + 5,
        "every request ciphered"
    );
}

/// HLS-GMAC over SN: pass 3 is Association SN's reply_to_HLS_authentication (method 8,
/// 0xFA58) read with f(StoC) as its parameter; the meter's f(CtoS) comes back as the read's
/// data and is checked. A client with the wrong authentication key is refused.
#[test]
fn hls_gmac_over_short_names() {
    use dlms_bridge::dlms::security::{Keys, Protection};
    use dlms_bridge::dlms::session::{Authentication, Security};
    use dlms_bridge::sim::server::ServerSecurity;
    let keys = Keys {
        block_cipher: [0x31; 16],
        authentication: [0x32; 16],
    };
    let mut config = SimConfig::new(MeterModel::new(12, 0), Transport::Hdlc);
    config.server.referencing = Referencing::Sn;
    config.server.security = Some(ServerSecurity::new(keys.clone(), *b"SIMMETER", true));
    let s = common::serve_sim(config);
    let session = |keys: Keys| SessionConfig {
        referencing: Referencing::Sn,
        authentication: Authentication::HighGmac {
            challenge: b"0123456789ABCDEF".to_vec(),
        },
        security: Some(Security::new(
            keys,
            *b"BRIDGE01",
            Protection::AuthenticatedEncrypted,
            1,
        )),
        ..SessionConfig::default()
    };
    let open = |keys: Keys| {
        let transport = TcpTransport::connect("127.0.0.1", s.port, Duration::from_secs(2)).unwrap();
        let framing = Framing::Hdlc {
            client: 16,
            server: ServerAddress::new(1, Some(17)),
        };
        let options = ConnectionOptions {
            response_timeout: Duration::from_millis(800),
            ..ConnectionOptions::default()
        };
        Connection::open(transport, framing, session(keys), options)
    };
    let mut conn = open(keys.clone()).unwrap();
    assert!(conn.short_names().is_some());
    read_everything(&s, &mut conn);
    conn.release();
    let mut wrong = keys;
    wrong.authentication[0] ^= 1;
    let refused = open(wrong).err().expect("a wrong key must not associate");
    assert!(refused.refuses_configuration(), "{refused}");
}

/// The bridge process polls an SN-only meter configured `auto` (the default) and one
/// configured `sn` beside an LN meter, and publishes their readings through mosquitto with
/// the simulator's values.
#[test]
fn the_bridge_polls_sn_meters_end_to_end() {
    if !common::have_mosquitto() {
        return;
    }
    let dir = common::TempDir::new("short-names");
    let broker = common::Mosquitto::start(&dir.0);
    let mut configs = Vec::new();
    for (i, referencing) in [Referencing::Sn, Referencing::Sn, Referencing::Ln]
        .into_iter()
        .enumerate()
    {
        let mut c = SimConfig::new(MeterModel::new(60, i as u32), Transport::Hdlc);
        c.server.referencing = referencing;
        configs.push(c);
    }
    let sims = common::meters(configs);
    let db = dir.0.join("bridge.db");
    let names = ["SN auto", "SN fixed", "LN auto"];
    common::configure(&db, broker.port, &sims, &names, |m| {
        if m.name == "SN fixed" {
            m.referencing = Referencing::Sn;
        }
    });
    let sub = common::Subscriber::start(broker.port, "v1/gateway/#");
    let mut bridge = common::Bridge::start(&db, &dir.0);
    common::wait_for("readings", Duration::from_secs(20), || {
        let r = common::gateway_readings(&sub.messages());
        r.len() == 3 && r.values().all(|v| v.len() >= 3)
    });
    let log = bridge.terminate();
    let readings = common::gateway_readings(&sub.finish());
    common::assert_no_duplicates(&readings);
    for (i, name) in names.iter().enumerate() {
        for (ts, values) in &readings[*name] {
            common::check_values(&sims.models[i], *ts, values);
        }
    }
    assert!(!log.contains("ERROR"), "{log}");
}
