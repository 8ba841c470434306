//! The blocking client against the simulator over loopback TCP: every read path over HDLC and
//! the wrapper, LLS, errors, and recovery from every fault kind.

use dlms_bridge::client::reads::{self, RowSelection, ScalerCache, Target, Value};
use dlms_bridge::client::{ClientError, Connection, ConnectionOptions, Framing, TcpTransport};
use dlms_bridge::config::values::Transport;
use dlms_bridge::cosem::Obis;
use dlms_bridge::dlms::hdlc::ServerAddress;
use dlms_bridge::dlms::session::{Authentication, SessionConfig};
use dlms_bridge::sim::model::{self, MeterModel};
use dlms_bridge::sim::net::{self, Fault, SimConfig, SimCounters};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

struct Sim {
    port: u16,
    counters: Arc<SimCounters>,
    stop: Arc<AtomicBool>,
    config: SimConfig,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn sim(config: SimConfig) -> Sim {
    let stop = Arc::new(AtomicBool::new(false));
    let listener = net::bind_ephemeral().unwrap();
    let port = listener.local_addr().unwrap().port();
    let counters = Arc::new(SimCounters::default());
    let (c, s, cfg) = (counters.clone(), stop.clone(), config.clone());
    std::thread::spawn(move || net::serve_tcp(listener, cfg, c, s));
    Sim {
        port,
        counters,
        stop,
        config,
    }
}

fn framing(f: Transport) -> Framing {
    match f {
        Transport::Hdlc => Framing::Hdlc {
            client: 16,
            server: ServerAddress::new(1, Some(17)),
        },
        Transport::Wrapper => Framing::Wrapper {
            client: 16,
            server: 1,
        },
    }
}

fn connect(s: &Sim, auth: Authentication) -> Result<Connection<TcpTransport>, ClientError> {
    let transport = TcpTransport::connect("127.0.0.1", s.port, Duration::from_secs(2))?;
    let session = SessionConfig {
        authentication: auth,
        ..SessionConfig::default()
    };
    let options = ConnectionOptions {
        response_timeout: Duration::from_millis(800),
        ..ConnectionOptions::default()
    };
    Connection::open(transport, framing(s.config.framing), session, options)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn eight_registers() -> Vec<Target> {
    MeterModel::register_codes()
        .into_iter()
        .take(8)
        .map(|o| Target::new(3, o, 2))
        .collect()
}

/// Checks scaled register values against the simulator's truth.
fn assert_truth(
    model: &MeterModel,
    targets: &[Target],
    values: &[Result<Value, reads::ReadError>],
) {
    for (t, v) in targets.iter().zip(values) {
        let truth = model.truth(t.obis, now()).unwrap();
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
}

#[test]
fn registers_over_hdlc_and_wrapper() {
    for framing in [Transport::Hdlc, Transport::Wrapper] {
        let s = sim(SimConfig::new(MeterModel::new(7, 0), framing));
        let mut conn = connect(&s, Authentication::None).unwrap();
        let targets = eight_registers();
        let mut cache = ScalerCache::default();
        let values = reads::read_values(&mut conn, &targets, &mut cache).unwrap();
        assert_truth(&s.config.model, &targets, &values);
        // The second poll uses the cached scalers: exactly one round trip (one with-list GET).
        let before = conn.stats().round_trips;
        let again = reads::read_values(&mut conn, &targets, &mut cache).unwrap();
        assert_eq!(conn.stats().round_trips - before, 1, "{framing:?}");
        assert_truth(&s.config.model, &targets, &again);
        // Voltage prints exactly.
        let Ok(Value::Scaled { value, .. }) = &again[0] else {
            panic!()
        };
        assert!(value.to_string().contains('.'), "{value}");
    }
}

#[test]
fn profile_needs_blocks_and_segments() {
    for framing in [Transport::Hdlc, Transport::Wrapper] {
        let s = sim(SimConfig::new(MeterModel::new(3, 1), framing));
        let mut conn = connect(&s, Authentication::None).unwrap();
        let mut cache = ScalerCache::default();
        let profile = reads::read_profile(
            &mut conn,
            model::LOAD_PROFILE,
            RowSelection::All,
            &mut cache,
        )
        .unwrap()
        .unwrap();
        assert_eq!(profile.rows.len(), 192);
        let last = profile.rows.last().unwrap();
        let t = last.timestamp.unwrap();
        assert_eq!(t % model::PROFILE_PERIOD, 0);
        let Value::Scaled { value, unit } = &last.values[0].1 else {
            panic!()
        };
        assert_eq!(unit.0, 30);
        assert_eq!(
            value.mantissa,
            i128::from(s.config.model.truth(model::ENERGY_IMPORT, t).unwrap().raw)
        );
        let stats = conn.stats();
        // capture_objects, scalers, values, then ~6 blocks of 1 KiB.
        assert!(stats.round_trips >= 8, "block transfer expected: {stats:?}");
        if framing == Transport::Hdlc {
            assert!(
                stats.frames_received > 40,
                "segmentation expected: {stats:?}"
            );
        }
        // By range: the last hour, 5 rows.
        let ranged = reads::read_profile(
            &mut conn,
            model::LOAD_PROFILE,
            RowSelection::Range(t - 3600, t),
            &mut cache,
        )
        .unwrap()
        .unwrap();
        assert_eq!(ranged.rows.len(), 5);
        assert_eq!(ranged.rows[4].timestamp, Some(t));
        let entries = reads::read_profile(
            &mut conn,
            model::LOAD_PROFILE,
            RowSelection::Entries(1, 10),
            &mut cache,
        )
        .unwrap()
        .unwrap();
        assert_eq!(entries.rows.len(), 10);
    }
}

#[test]
fn clock_objects_and_other_classes() {
    let s = sim(SimConfig::new(MeterModel::new(9, 2), Transport::Hdlc));
    let mut conn = connect(&s, Authentication::None).unwrap();
    let clock = reads::read_clock(&mut conn).unwrap().unwrap();
    assert!((clock.to_unix().unwrap() - now()).abs() <= 2);
    let target = dlms_bridge::dlms::axdr::DateTime::from_unix(now() + 3600, 0);
    reads::set_clock(&mut conn, target).unwrap();
    let moved = reads::read_clock(&mut conn).unwrap().unwrap();
    assert!((moved.to_unix().unwrap() - now() - 3600).abs() <= 2);

    let objects = reads::list_objects(&mut conn).unwrap().unwrap();
    assert!(objects
        .iter()
        .any(|o| o.class_id == 7 && o.obis == model::LOAD_PROFILE));
    assert_eq!(objects.len(), s.config.model.objects().len());

    let mut cache = ScalerCache::default();
    let targets = [
        Target::new(1, model::SERIAL_NUMBER, 2),
        Target::new(4, model::MAX_DEMAND, 2),
        Target::new(4, model::MAX_DEMAND, 5),
        Target::new(5, model::DEMAND, 2),
        Target::new(3, Obis::new(1, 0, 99, 99, 0, 255), 2),
    ];
    let v = reads::read_values(&mut conn, &targets, &mut cache).unwrap();
    assert_eq!(
        v[0],
        Ok(Value::Data(dlms_bridge::dlms::axdr::Data::VisibleString(
            s.config.model.serial_number().into_bytes()
        )))
    );
    assert!(matches!(v[1], Ok(Value::Scaled { .. })));
    assert!(matches!(&v[2], Ok(Value::Data(d)) if d.as_date_time().is_some()));
    assert!(matches!(v[3], Ok(Value::Scaled { .. })));
    assert_eq!(
        v[4].as_ref().unwrap_err().to_string(),
        "object not found in the meter (object-undefined (4))"
    );
}

#[test]
fn low_level_security() {
    let mut config = SimConfig::new(MeterModel::new(1, 0), Transport::Wrapper);
    config.server.password = Some(b"12345678".to_vec());
    let s = sim(config);
    assert!(connect(&s, Authentication::Low(b"12345678".to_vec())).is_ok());
    let err = connect(&s, Authentication::Low(b"wrong".to_vec()))
        .err()
        .unwrap();
    assert!(err.to_string().contains("authentication failure"), "{err}");
    assert!(!err.is_transient());
    let err = connect(&s, Authentication::None).err().unwrap();
    assert!(err.to_string().contains("authentication required"), "{err}");
}

#[test]
fn wrong_address_is_reported_as_no_answer() {
    let s = sim(SimConfig::new(MeterModel::new(1, 0), Transport::Hdlc));
    let transport = TcpTransport::connect("127.0.0.1", s.port, Duration::from_secs(1)).unwrap();
    let options = ConnectionOptions {
        response_timeout: Duration::from_millis(300),
        ..ConnectionOptions::default()
    };
    let wrong = Framing::Hdlc {
        client: 16,
        server: ServerAddress::new(1, Some(99)),
    };
    let err = Connection::open(transport, wrong, SessionConfig::default(), options)
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .starts_with("no answer from the meter to SNRM"),
        "{err}"
    );
}

/// Reads 8 registers with a fresh connection per attempt, retrying as the bridge does.
fn read_with_retries(
    s: &Sim,
    attempts: usize,
) -> Result<Vec<Result<Value, reads::ReadError>>, ClientError> {
    let mut last = None;
    for _ in 0..attempts {
        let result = connect(s, Authentication::None).and_then(|mut c| {
            let mut cache = ScalerCache::default();
            reads::read_values(&mut c, &eight_registers(), &mut cache)
        });
        match result {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap())
}

#[test]
fn every_fault_kind_is_recovered_from() {
    // (fault, every n-th request, at most this many times): the first attempt meets the
    // fault; faults that do not break the exchange (garbage before a good frame, a corrupted
    // copy, a split answer) hit every request and must be absorbed without a retry.
    let faults = [
        (Fault::Silence, 2, Some(1)),
        (Fault::Slow(Duration::from_millis(1200)), 2, Some(1)),
        (Fault::Garbage, 1, None),
        (Fault::BadCrc, 1, None),
        (Fault::Split, 1, None),
        (Fault::DisconnectedMode, 1, Some(1)),
        (Fault::FrameReject, 2, Some(1)),
    ];
    for framing in [Transport::Hdlc, Transport::Wrapper] {
        for (fault, every, limit) in faults {
            if framing == Transport::Wrapper
                && matches!(fault, Fault::DisconnectedMode | Fault::FrameReject)
            {
                continue; // HDLC-only faults
            }
            // The wrapper has no checksum: garbage or a corrupted copy kills the connection,
            // so there it is injected once and recovered from by reconnecting.
            let limit = if framing == Transport::Wrapper
                && matches!(fault, Fault::Garbage | Fault::BadCrc)
            {
                Some(1)
            } else {
                limit
            };
            let mut config = SimConfig::new(MeterModel::new(5, 3), framing);
            config.fault = fault;
            config.fault_every = every;
            config.fault_limit = limit;
            let s = sim(config);
            let values =
                read_with_retries(&s, 6).unwrap_or_else(|e| panic!("{framing:?} {fault:?}: {e}"));
            assert_truth(&s.config.model, &eight_registers(), &values);
            assert!(
                s.counters.faults.load(std::sync::atomic::Ordering::Relaxed) > 0,
                "{framing:?} {fault:?} was never injected"
            );
        }
    }
}

#[test]
fn dropped_connection_mid_block_is_recovered_from() {
    for framing in [Transport::Hdlc, Transport::Wrapper] {
        let mut config = SimConfig::new(MeterModel::new(5, 4), framing);
        config.fault = Fault::DropMidBlock;
        config.fault_limit = Some(1);
        let s = sim(config);
        let mut done = None;
        for _ in 0..6 {
            let attempt = connect(&s, Authentication::None).and_then(|mut c| {
                let mut cache = ScalerCache::default();
                reads::read_profile(&mut c, model::LOAD_PROFILE, RowSelection::All, &mut cache)
            });
            match attempt {
                Ok(p) => {
                    done = Some(p.unwrap());
                    break;
                }
                Err(e) => assert!(e.is_transient(), "{e}"),
            }
        }
        assert_eq!(done.expect("profile read after retries").rows.len(), 192);
        assert_eq!(
            s.counters.faults.load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert_eq!(
            s.counters
                .connections
                .load(std::sync::atomic::Ordering::Relaxed),
            2,
            "{framing:?}"
        );
    }
}

#[test]
fn a_late_answer_is_never_taken_for_the_next_one() {
    for framing in [Transport::Hdlc, Transport::Wrapper] {
        let mut config = SimConfig::new(MeterModel::new(8, 0), framing);
        config.fault = Fault::Slow(Duration::from_millis(1200));
        config.fault_limit = Some(1);
        let s = sim(config);
        let mut conn = connect(&s, Authentication::None).unwrap();
        let targets = eight_registers();
        let mut cache = ScalerCache::default();
        // The first GET (the scalers) is answered after our 800 ms timeout...
        let err = reads::read_values(&mut conn, &targets, &mut cache).unwrap_err();
        assert!(matches!(err, ClientError::NoAnswer { .. }), "{err}");
        // ...and arrives while we wait for the next GET on the same connection: it carries the
        // old invoke id and is dropped; the values are the right ones, not the late scalers.
        let values = reads::read_values(&mut conn, &targets, &mut cache).unwrap();
        assert_truth(&s.config.model, &targets, &values);
        assert!(conn.stats().stale >= 1, "{framing:?}: {:?}", conn.stats());
        assert_eq!(conn.stats().timeouts, 1);
    }
}

mod security {
    use super::*;
    use dlms_bridge::dlms::security::{Keys, Protection};
    use dlms_bridge::dlms::session::Security;
    use dlms_bridge::sim::server::ServerSecurity;
    use std::sync::atomic::AtomicU32;

    const KEYS: Keys = Keys {
        block_cipher: *b"0123456789abcdef",
        authentication: *b"fedcba9876543210",
    };

    fn secure_sim(framing: Transport, hls: bool) -> Sim {
        let mut config = SimConfig::new(MeterModel::new(13, 0), framing);
        config.server.security = Some(ServerSecurity::new(KEYS, *b"SIMMETER", hls));
        sim(config)
    }

    fn secure_connect(
        s: &Sim,
        keys: Keys,
        protection: Protection,
        hls: bool,
        counter: Arc<AtomicU32>,
    ) -> Result<Connection<TcpTransport>, ClientError> {
        secure_connect_with(s, keys, protection, hls, counter, |_| {})
    }

    fn secure_connect_with(
        s: &Sim,
        keys: Keys,
        protection: Protection,
        hls: bool,
        counter: Arc<AtomicU32>,
        adjust: impl FnOnce(&mut Security),
    ) -> Result<Connection<TcpTransport>, ClientError> {
        let transport = TcpTransport::connect("127.0.0.1", s.port, Duration::from_secs(2))?;
        let mut security = Security::new(keys, *b"BRIDGE01", protection, 0);
        security.invocation_counter = counter;
        adjust(&mut security);
        let session = SessionConfig {
            authentication: if hls {
                Authentication::HighGmac {
                    challenge: b"client-challenge".to_vec(),
                }
            } else {
                Authentication::None
            },
            security: Some(security),
            ..SessionConfig::default()
        };
        let options = ConnectionOptions {
            response_timeout: Duration::from_millis(800),
            ..ConnectionOptions::default()
        };
        Connection::open(transport, framing(s.config.framing), session, options)
    }

    #[test]
    fn hls_gmac_with_authenticated_encryption_over_hdlc_and_wrapper() {
        for f in [Transport::Hdlc, Transport::Wrapper] {
            let s = secure_sim(f, true);
            let counter = Arc::new(AtomicU32::new(100));
            let mut conn = secure_connect(
                &s,
                KEYS,
                Protection::AuthenticatedEncrypted,
                true,
                counter.clone(),
            )
            .unwrap();
            let mut cache = ScalerCache::default();
            let values = reads::read_values(&mut conn, &eight_registers(), &mut cache).unwrap();
            assert_truth(&s.config.model, &eight_registers(), &values);
            // Block transfer of the profile, ciphered.
            let p = reads::read_profile(
                &mut conn,
                model::LOAD_PROFILE,
                RowSelection::Entries(1, 50),
                &mut cache,
            )
            .unwrap()
            .unwrap();
            assert_eq!(p.rows.len(), 50);
            let used = conn.invocation_counter();
            assert!(used > 104, "every APDU used a fresh counter: {used}");
            drop(conn);
            // A reconnection continues the counter; it never starts over.
            let conn = secure_connect(
                &s,
                KEYS,
                Protection::AuthenticatedEncrypted,
                true,
                counter.clone(),
            )
            .unwrap();
            assert!(conn.invocation_counter() > used);
        }
    }

    #[test]
    fn every_protection_without_hls() {
        for p in [
            Protection::Authenticated,
            Protection::Encrypted,
            Protection::AuthenticatedEncrypted,
        ] {
            let s = secure_sim(Transport::Wrapper, false);
            let mut conn = secure_connect(&s, KEYS, p, false, Arc::new(AtomicU32::new(1))).unwrap();
            let clock = reads::read_clock(&mut conn).unwrap().unwrap();
            assert!((clock.to_unix().unwrap() - now()).abs() <= 2, "{p:?}");
        }
    }

    #[test]
    fn wrong_keys_and_plain_clients_are_refused_clearly() {
        let s = secure_sim(Transport::Hdlc, true);
        let mut wrong_ek = KEYS;
        wrong_ek.block_cipher[0] ^= 1;
        let e = secure_connect(
            &s,
            wrong_ek,
            Protection::AuthenticatedEncrypted,
            true,
            Arc::new(AtomicU32::new(1)),
        )
        .err()
        .unwrap();
        assert!(
            e.to_string()
                .contains("association rejected permanently: authentication failure"),
            "{e}"
        );
        let mut wrong_ak = KEYS;
        wrong_ak.authentication[3] ^= 1;
        let e = secure_connect(
            &s,
            wrong_ak,
            Protection::AuthenticatedEncrypted,
            true,
            Arc::new(AtomicU32::new(1)),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("authentication failure"), "{e}");
        // A client without security gets the public association: the frame counter, nothing
        // else.
        let mut public = connect(&s, Authentication::None).unwrap();
        let denied =
            reads::read_values(&mut public, &eight_registers(), &mut ScalerCache::default())
                .unwrap();
        assert!(denied.iter().all(|v| v.is_err()), "{denied:?}");
        drop(public);
        // An LLS client is not the public one: refused.
        let e = connect(&s, Authentication::Low(b"secret".to_vec()))
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .contains("application context name not supported"),
            "{e}"
        );
        // HLS-GMAC without keys is a configuration error, said before anything is sent.
        let transport = TcpTransport::connect("127.0.0.1", s.port, Duration::from_secs(2)).unwrap();
        let session = SessionConfig {
            authentication: Authentication::HighGmac {
                challenge: vec![1; 16],
            },
            ..SessionConfig::default()
        };
        let e = Connection::open(
            transport,
            framing(s.config.framing),
            session,
            ConnectionOptions::default(),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("HLS-GMAC needs"), "{e}");
    }

    #[test]
    fn dedicated_key_and_general_ciphering_in_every_combination() {
        for f in [Transport::Hdlc, Transport::Wrapper] {
            for (dedicated, general) in [(false, true), (true, false), (true, true)] {
                let s = secure_sim(f, true);
                let mut conn = secure_connect_with(
                    &s,
                    KEYS,
                    Protection::AuthenticatedEncrypted,
                    true,
                    Arc::new(AtomicU32::new(1)),
                    |sec| {
                        sec.dedicated_key = dedicated.then_some([0x3C; 16]);
                        sec.general_ciphering = general;
                    },
                )
                .unwrap();
                let granted = conn.negotiated().unwrap().conformance;
                assert_eq!(
                    granted.has(dlms_bridge::dlms::xdlms::Conformance::GENERAL_PROTECTION),
                    general
                );
                let mut cache = ScalerCache::default();
                let values = reads::read_values(&mut conn, &eight_registers(), &mut cache)
                    .unwrap_or_else(|e| panic!("{f:?} ded={dedicated} general={general}: {e}"));
                assert_truth(&s.config.model, &eight_registers(), &values);
                let p = reads::read_profile(
                    &mut conn,
                    model::LOAD_PROFILE,
                    RowSelection::Entries(1, 20),
                    &mut cache,
                )
                .unwrap()
                .unwrap();
                assert_eq!(p.rows.len(), 20);
            }
        }
    }

    #[test]
    fn a_lost_counter_is_refused_then_recovered_from_the_frame_counter() {
        use dlms_bridge::client::frame_counter::{next_counter_from_meter, DEFAULT_FRAME_COUNTER};
        use dlms_bridge::client::{Endpoint, MeterTarget};
        let s = secure_sim(Transport::Wrapper, true);
        let counter = Arc::new(AtomicU32::new(500));
        let mut conn = secure_connect(
            &s,
            KEYS,
            Protection::AuthenticatedEncrypted,
            true,
            counter.clone(),
        )
        .unwrap();
        reads::read_clock(&mut conn).unwrap().unwrap();
        drop(conn);
        let used = counter.load(std::sync::atomic::Ordering::SeqCst);
        // A client that starts over (counter 1) is refused: the meter saw higher counters.
        let e = secure_connect(
            &s,
            KEYS,
            Protection::AuthenticatedEncrypted,
            true,
            Arc::new(AtomicU32::new(1)),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("association rejected"), "{e}");
        // The public client reads where the meter stands; continuing there works.
        let target = MeterTarget {
            endpoint: Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: s.port,
            },
            framing: framing(s.config.framing),
            session: SessionConfig::default(),
            options: ConnectionOptions::default(),
            connect_timeout: Duration::from_secs(2),
            trace: Default::default(),
        };
        let next = next_counter_from_meter(&target, DEFAULT_FRAME_COUNTER).unwrap();
        assert_eq!(next, used, "the meter saw every counter up to {}", used - 1);
        let mut conn = secure_connect(
            &s,
            KEYS,
            Protection::AuthenticatedEncrypted,
            true,
            Arc::new(AtomicU32::new(next)),
        )
        .unwrap();
        reads::read_clock(&mut conn).unwrap().unwrap();
        // A frame counter that is not one is a clear error.
        let e = next_counter_from_meter(&target, model::CLOCK).unwrap_err();
        assert!(e.to_string().starts_with("frame counter:"), "{e}");
    }
}

/// The largest link proposed (2030 bytes, window 7): a meter granting 512/7 gets them used; a
/// meter that ignores any SNRM with a parameter block is asked again without one and works
/// with 128/1; a meter that does neither is still "no answer".
#[test]
fn link_parameters_are_negotiated_or_left_out_for_meters_that_ignore_them() {
    let proposal = |max_info, window| ConnectionOptions {
        response_timeout: Duration::from_millis(500),
        max_info,
        window,
        ..ConnectionOptions::default()
    };
    let open = |s: &Sim, options: ConnectionOptions| {
        let t = TcpTransport::connect("127.0.0.1", s.port, Duration::from_secs(2)).unwrap();
        Connection::open(
            t,
            framing(Transport::Hdlc),
            SessionConfig::default(),
            options,
        )
    };
    let mut granting = SimConfig::new(MeterModel::new(1, 0), Transport::Hdlc);
    granting.hdlc_max_info = 512;
    granting.hdlc_window = 7;
    let s = sim(granting);
    let c = open(&s, proposal(2030, 7)).unwrap();
    assert!(!c.fell_back_to_default_link());

    let mut ignoring = SimConfig::new(MeterModel::new(1, 0), Transport::Hdlc);
    ignoring.ignore_snrm_parameters = true;
    let s = sim(ignoring);
    let mut c = open(&s, proposal(2030, 7)).unwrap();
    assert!(c.fell_back_to_default_link());
    let mut cache = ScalerCache::default();
    let values = reads::read_values(&mut c, &eight_registers(), &mut cache).unwrap();
    assert!(values.iter().all(Result::is_ok));
    // Without the fallback on silence (a shared line), the same meter is "no answer".
    let strict = ConnectionOptions {
        snrm_fallback_on_silence: false,
        ..proposal(2030, 7)
    };
    assert!(matches!(
        open(&s, strict),
        Err(ClientError::NoAnswer { .. })
    ));
}

/// A meter that garbles a connection made soon after the last one closed (Microstar: 10-15 s).
/// Without a gap the second connection fails; with `reconnect_gap_s` the client waits and both
/// succeed, whichever caller connects (the gap is kept per endpoint for the process).
#[test]
fn a_reconnect_gap_is_honoured_for_meters_that_garble_quick_reconnects() {
    use dlms_bridge::client::{Endpoint, MeterTarget};
    let mut config = SimConfig::new(MeterModel::new(12, 0), Transport::Hdlc);
    config.garbage_on_quick_reconnect = Some(Duration::from_millis(1500));
    let s = sim(config);
    let target = |gap_s: u64| MeterTarget {
        endpoint: Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port: s.port,
        },
        framing: framing(Transport::Hdlc),
        session: SessionConfig::default(),
        options: ConnectionOptions {
            response_timeout: Duration::from_millis(600),
            reconnect_gap: Duration::from_secs(gap_s),
            ..ConnectionOptions::default()
        },
        connect_timeout: Duration::from_secs(2),
        trace: Default::default(),
    };
    let first = target(0).connect().unwrap();
    drop(first);
    let quick = target(0).connect();
    assert!(
        quick.is_err(),
        "the simulated quirk garbles a quick reconnect"
    );
    std::thread::sleep(Duration::from_millis(1600));
    let faults = s.counters.faults.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let mut conn = target(2).connect().expect("connects after the gap");
        reads::read_clock(&mut conn).unwrap().unwrap();
        drop(conn);
        assert!(started.elapsed() < Duration::from_secs(4));
    }
    assert_eq!(
        s.counters.faults.load(std::sync::atomic::Ordering::Relaxed),
        faults,
        "no connection came too soon"
    );
}

/// A meter that holds the association of a connection lost without a release, and refuses
/// every new link with DM until a DISC (MEM600-like). The client sends the DISC itself and
/// tries once more; a normal release leaves nothing held.
#[test]
fn a_link_held_by_a_lost_connection_is_released_with_disc_and_tried_once_more() {
    use dlms_bridge::client::{Endpoint, MeterTarget};
    use std::net::{Shutdown, TcpStream};
    struct Cut(TcpStream);
    impl dlms_bridge::client::Transport for Cut {
        fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
            std::io::Write::write_all(&mut self.0, bytes)
        }
        fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
            self.0
                .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
            match std::io::Read::read(&mut self.0, buf) {
                Ok(0) => Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
                Err(e) => Err(e),
            }
        }
    }
    let mut config = SimConfig::new(MeterModel::new(13, 0), Transport::Hdlc);
    config.holds_unreleased_link = true;
    let s = sim(config);
    let stream = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let cut = stream.try_clone().unwrap();
    let options = ConnectionOptions {
        response_timeout: Duration::from_millis(800),
        ..ConnectionOptions::default()
    };
    let lost = Connection::open(
        Cut(stream),
        framing(Transport::Hdlc),
        SessionConfig::default(),
        options.clone(),
    )
    .unwrap();
    // The line drops: no RLRQ, no DISC reaches the meter.
    cut.shutdown(Shutdown::Both).unwrap();
    drop(lost);
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.counters.held.load(std::sync::atomic::Ordering::Relaxed));
    let target = MeterTarget {
        endpoint: Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port: s.port,
        },
        framing: framing(Transport::Hdlc),
        session: SessionConfig::default(),
        options,
        connect_timeout: Duration::from_secs(2),
        trace: Default::default(),
    };
    let mut conn = target
        .connect()
        .expect("DISC, then the second attempt associates");
    reads::read_clock(&mut conn).unwrap().unwrap();
    assert!(
        s.counters.faults.load(std::sync::atomic::Ordering::Relaxed) >= 1,
        "the first SNRM was refused"
    );
    drop(conn);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !s.counters.held.load(std::sync::atomic::Ordering::Relaxed),
        "a released association leaves nothing held"
    );
}

/// The simulator's one-connection mode itself: a second TCP connection while one is open is
/// closed at once (the meter the test below must never meet that way).
#[test]
fn a_one_connection_meter_closes_a_second_connection() {
    use std::io::Read;
    use std::net::TcpStream;
    let mut config = SimConfig::new(MeterModel::new(14, 1), Transport::Hdlc);
    config.one_connection = true;
    let s = sim(config);
    let _first = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut second = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        matches!(second.read(&mut byte), Ok(0) | Err(_)),
        "closed at once"
    );
    assert_eq!(
        s.counters
            .refused
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

/// One connection at a time to a `single_connection` meter in this process: a second connect
/// (a scan of a polled meter, an ad-hoc read) waits for the first to close, and says so when it
/// does not in time.
#[test]
fn a_second_connection_to_one_meter_waits_for_the_first() {
    use dlms_bridge::client::{Endpoint, MeterTarget};
    // The meter takes one connection at a time (`simulate --quirk one-connection`).
    let mut config = SimConfig::new(MeterModel::new(14, 0), Transport::Hdlc);
    config.one_connection = true;
    let s = sim(config);
    let target = |connect_ms: u64| MeterTarget {
        endpoint: Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port: s.port,
        },
        framing: framing(Transport::Hdlc),
        session: SessionConfig::default(),
        options: ConnectionOptions {
            response_timeout: Duration::from_millis(300),
            single_connection: true,
            ..ConnectionOptions::default()
        },
        connect_timeout: Duration::from_millis(connect_ms),
        trace: Default::default(),
    };
    let first = target(2000).connect().unwrap();
    let busy = target(400)
        .connect()
        .err()
        .expect("refused while the first is open");
    assert!(
        matches!(busy, ClientError::Busy { .. }) && busy.is_transient(),
        "{busy}"
    );
    let connections = s
        .counters
        .connections
        .load(std::sync::atomic::Ordering::Relaxed);
    let later = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(first);
    });
    let mut second = target(3000)
        .connect()
        .expect("connects once the first closed");
    later.join().unwrap();
    reads::read_clock(&mut second).unwrap().unwrap();
    assert_eq!(
        s.counters
            .connections
            .load(std::sync::atomic::Ordering::Relaxed),
        connections + 1,
        "the refused attempt never reached the meter"
    );
    assert_eq!(
        s.counters
            .refused
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "never a second connection while one was open"
    );
}

/// Firmware that answers every request with one fixed invoke id: the answer to the one
/// request outstanding is taken (it used to be waited past until the time-out), over both
/// framings, with block transfers; a late answer is still dropped (test above).
#[test]
fn answers_with_a_fixed_invoke_id_are_taken() {
    for framing in [Transport::Hdlc, Transport::Wrapper] {
        let mut config = SimConfig::new(MeterModel::new(15, 0), framing);
        config.fixed_invoke_id = Some(0);
        let s = sim(config);
        let mut conn = connect(&s, Authentication::None).unwrap();
        let targets = eight_registers();
        let mut cache = ScalerCache::default();
        let values = reads::read_values(&mut conn, &targets, &mut cache).unwrap();
        assert_truth(&s.config.model, &targets, &values);
        reads::read_clock(&mut conn).unwrap().unwrap();
        let profile = reads::read_profile(
            &mut conn,
            model::LOAD_PROFILE,
            RowSelection::All,
            &mut cache,
        )
        .unwrap();
        assert_eq!(profile.unwrap().rows.len(), 192, "{framing:?}");
        assert_eq!(conn.stats().timeouts, 0, "{framing:?}: {:?}", conn.stats());
    }
}
