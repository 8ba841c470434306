//! Meters that push, over pseudo-terminals: the test writes what a HAN port sends (a captured
//! Kamstrup frame, garbage, a truncated frame; a DATA-NOTIFICATION ciphered by the Gurux library
//! with published keys) and the bridge must publish exactly the sender's values at the
//! notification's own time, skip what is damaged, and refuse a replayed ciphered frame.

mod common;

use common::push_vector as vector;

use common::{
    cli_ok, gateway_readings, have_mosquitto, pty_pair, wait_for, Bridge, Mosquitto, Subscriber,
    TempDir,
};
use dlms_bridge::dlms::hdlc::{Control, Frame, RawAddress};
use std::io::Write;
use std::time::Duration;

/// The keys the Gurux vector was ciphered with (the Green Book example keys).
const GURUX_KEYS: [&str; 8] = [
    "--security",
    "auth-enc",
    "--system-title",
    "4D4D4D0000BC614E",
    "--encryption-key",
    "000102030405060708090A0B0C0D0E0F",
    "--authentication-key",
    "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF",
];

/// Waits until every one of `devices` has published.
fn wait_for_devices(sub: &Subscriber, devices: &[&str]) {
    wait_for(
        "every pushing meter's reading",
        Duration::from_secs(20),
        || {
            let r = gateway_readings(&sub.messages());
            devices.iter().all(|d| r.contains_key(*d))
        },
    );
}

/// A HAN-style HDLC UI frame around an APDU (LLC E6 E7 00 first).
fn ui_frame(apdu: &[u8]) -> Vec<u8> {
    let mut info = vec![0xE6, 0xE7, 0x00];
    info.extend_from_slice(apdu);
    Frame {
        segmented: false,
        destination: RawAddress::client(0x10),
        source: RawAddress::client(0x15),
        control: Control::Ui { poll: true },
        info,
    }
    .emit()
    .unwrap()
}

#[test]
fn pushed_notifications_plain_and_ciphered_become_readings() {
    if !have_mosquitto() {
        return;
    }
    let (Some(plain), Some(ciphered), Some(mbus)) = (
        pty_pair("push-plain"),
        pty_pair("push-ciphered"),
        pty_pair("push-mbus"),
    ) else {
        return;
    };
    let dir = TempDir::new("push");
    let broker = Mosquitto::start(&dir.0);
    let sub = Subscriber::start(broker.port, "v1/gateway/telemetry");
    let db = dir.0.join("b.db");
    cli_ok(
        &db,
        &["settings", "set", "mqtt.port", &broker.port.to_string()],
    );
    cli_ok(&db, &["settings", "set", "http.bind", ""]);
    cli_ok(&db, &["settings", "set", "outbox.commit_interval_ms", "50"]);
    // The captured notifications are from 2020 and 2021: their own time is what is checked
    // here (past push.max_clock_skew_s it would be the gateway's).
    cli_ok(&db, &["settings", "set", "push.max_clock_skew_s", "0"]);
    let han = plain.dir.join("probe").display().to_string();
    let p1 = ciphered.dir.join("probe").display().to_string();
    cli_ok(
        &db,
        &[
            "meter", "add", "HAN", "--serial", &han, "--push", "serial", "--baud", "2400",
        ],
    );
    cli_ok(
        &db,
        &["meter", "add", "P1", "--serial", &p1, "--push", "serial"]
            .iter()
            .chain(GURUX_KEYS.iter())
            .copied()
            .collect::<Vec<_>>(),
    );
    // The Tirol example: M-Bus framed, ciphered (encryption only) with its published key.
    let tirol = mbus.dir.join("probe").display().to_string();
    cli_ok(
        &db,
        &[
            "meter",
            "add",
            "Tirol",
            "--serial",
            &tirol,
            "--push",
            "serial",
            "--security",
            "enc",
            "--system-title",
            "4B464D1010000023",
            "--encryption-key",
            "101112131415161718191A1B1C1D1E1F",
            "--authentication-key",
            "00000000000000000000000000000000",
        ],
    );
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("the bridge listening", Duration::from_secs(10), || {
        bridge
            .log()
            .matches("listening for pushed notifications")
            .count()
            == 3
    });
    std::thread::sleep(Duration::from_millis(300));

    let kamstrup = vector("kamstrup-10s-captured.hex");
    let mut han_line = std::fs::OpenOptions::new()
        .write(true)
        .open(plain.dir.join("meter"))
        .unwrap();
    han_line.write_all(&[0x00, 0x7E, 0xA0, 0x55, 0x13]).unwrap(); // garbage
    han_line.write_all(&kamstrup[..100]).unwrap(); // truncated, then a whole frame
    han_line.write_all(&kamstrup).unwrap();

    let wrapped = vector("gurux-ciphered-wrapper.hex");
    let ciphered_frame = ui_frame(&wrapped[8..]);
    let mut p1_line = std::fs::OpenOptions::new()
        .write(true)
        .open(ciphered.dir.join("meter"))
        .unwrap();
    p1_line.write_all(&ciphered_frame).unwrap();

    let mut mbus_line = std::fs::OpenOptions::new()
        .write(true)
        .open(mbus.dir.join("meter"))
        .unwrap();
    mbus_line
        .write_all(&vector("kaifa-tirol-mbus-ciphered.hex"))
        .unwrap();

    let readings = || gateway_readings(&sub.messages());
    wait_for_devices(&sub, &["HAN", "P1", "Tirol"]);
    // The same ciphered frame again: a replay.
    p1_line.write_all(&ciphered_frame).unwrap();
    wait_for("the replay refused", Duration::from_secs(10), || {
        bridge.log().contains("replayed")
    });
    let log = bridge.terminate();
    let r = readings();
    let han = &r["HAN"];
    assert_eq!(han.len(), 1, "the damaged copies are skipped: {han:?}");
    let (ts, v) = &han[0];
    assert_eq!(*ts, 1_604_871_850_000, "the notification's own time");
    assert_eq!(v["active_power"], 3889, "{v}");
    assert_eq!(v["voltage_l1"], 236, "{v}");
    assert_eq!(v["voltage_l3"], 235, "{v}");
    let p1 = &r["P1"];
    assert_eq!(p1.len(), 1, "one reading; the replay refused: {p1:?}");
    assert_eq!(p1[0].1["active_energy_import"], 123456, "{:?}", p1[0].1);
    let (ts, tirol) = &r["Tirol"][0];
    assert_eq!(*ts, 1_626_702_395_000);
    assert_eq!(tirol["voltage_l1"], 230.8, "{tirol}");
    assert_eq!(tirol["active_energy_import"], 9108, "{tirol}");
    assert!(!log.contains("panicked"), "{log}");
    sub.finish();
}

/// Meters that push over TCP to `push.listen`: a ciphered notification (known by its system
/// title), a plain wrapper one and a plain HDLC one (known by their source addresses), one
/// known by the logical device name it carries (the Tirol example's plain text); an
/// unknown sender counted and dropped; a replay refused; a stream of garbage closed without
/// harm to the others.
#[test]
fn meters_pushing_over_tcp_are_known_by_title_or_address() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("push-tcp");
    let broker = Mosquitto::start(&dir.0);
    let sub = Subscriber::start(broker.port, "v1/gateway/telemetry");
    let db = dir.0.join("b.db");
    let (listen, http) = (common::free_port(), common::free_port());
    for (k, v) in [
        ("mqtt.port", broker.port.to_string()),
        ("http.bind", format!("127.0.0.1:{http}")),
        ("outbox.commit_interval_ms", "50".into()),
        ("push.listen", format!("127.0.0.1:{listen}")),
        // Captured in 2020 and 2021: their own time is what is checked here.
        ("push.max_clock_skew_s", "0".into()),
    ] {
        cli_ok(&db, &["settings", "set", k, &v]);
    }
    cli_ok(
        &db,
        &["meter", "add", "T", "--push", "tcp"]
            .iter()
            .chain(GURUX_KEYS.iter())
            .copied()
            .collect::<Vec<_>>(),
    );
    cli_ok(
        &db,
        &["meter", "add", "W", "--push", "tcp", "--push-address", "5"],
    );
    cli_ok(
        &db,
        &["meter", "add", "K", "--push", "tcp", "--push-address", "16"],
    );
    // Known by the logical device name in its notifications (the Tirol example, deciphered
    // and sent plain).
    cli_ok(
        &db,
        &[
            "meter",
            "add",
            "L",
            "--push",
            "tcp",
            "--logical-device-name",
            "KFM1100100000035",
        ],
    );
    // The Landis+Gyr E450 capture: three GBT blocks over three HDLC frames, known by the
    // logical device name in the joined notification.
    cli_ok(
        &db,
        &[
            "meter",
            "add",
            "E",
            "--push",
            "tcp",
            "--logical-device-name",
            "LGZ1020782546371",
        ],
    );
    let mut bridge = Bridge::start(&db, &dir.0);
    common::wait_port(listen, Duration::from_secs(10));

    let send = |bytes: &[u8]| {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", listen)).unwrap();
        c.write_all(bytes).unwrap();
        c
    };
    // Garbage first (a bad wrapper version): that connection is closed, nothing else suffers.
    let _junk = send(&[0x00, 0x07, 0x00, 0x01, 0x00, 0x01, 0x00, 0x02, 0xAA, 0xBB]);
    let ciphered = vector("gurux-ciphered-wrapper.hex");
    let aidon = vector("aidon-list-2.hex");
    let plain = dlms_bridge::dlms::wrapper::wrap(5, 1, &aidon).unwrap();
    let unknown = dlms_bridge::dlms::wrapper::wrap(9, 1, &aidon).unwrap();
    let mut meter = send(&ciphered);
    meter.write_all(&unknown).unwrap();
    meter.write_all(&plain).unwrap();
    meter.write_all(&ciphered).unwrap(); // a replay
    let _hdlc = send(&vector("kamstrup-10s-captured.hex"));
    let tirol_plain = dlms_bridge::hex::parse(concat!(
        "0f0029b2dc0c07e50713010f2e2300ff8880020c09060000010000ff090c07e5",
        "0713010f2e2300ff8880020209060000600100ff090e314b464d303130303030",
        "303033350202090600002a0000ff09104b464d31313030313030303030303335",
        "020309060100200700ff12090402020fff16230203090601001f0700ff120000",
        "02020ffe1621020309060100010700ff060000000002020f00161b0203090601",
        "00020700ff060000000002020f00161b020309060100010800ff060000239402",
        "020f00161e020309060100020800ff060000000002020f00161e020309060100",
        "030800ff060000006002020f001620020309060100040800ff06000000090202",
        "0f001620"
    ))
    .unwrap();
    let _ldn = send(&dlms_bridge::dlms::wrapper::wrap(77, 1, &tirol_plain).unwrap());
    let _gbt = send(&vector("landis-gyr-e450-cyprus-gbt.hex"));

    let readings = || gateway_readings(&sub.messages());
    wait_for_devices(&sub, &["T", "W", "K", "L", "E"]);
    wait_for("the replay refused", Duration::from_secs(10), || {
        bridge.log().contains("replayed")
    });
    let status: serde_json::Value =
        serde_json::from_str(&common::http_get(http, "/status").1).unwrap();
    assert_eq!(status["push_unknown_senders"], 1, "{status}");
    let log = bridge.terminate();
    assert!(log.contains("unknown sender (source address 9"), "{log}");
    let r = readings();
    assert_eq!(r["T"].len(), 1, "the replay refused: {:?}", r["T"]);
    assert_eq!(r["T"][0].1["active_energy_import"], 123456);
    assert_eq!(r["W"][0].1["active_power"], 280);
    assert_eq!(r["W"][0].1["voltage_l1"], 227.4);
    assert_eq!(r["K"][0].1["active_power"], 3889);
    assert_eq!(r["K"][0].0, 1_604_871_850_000);
    assert_eq!(r["L"][0].1["active_energy_import"], 9108);
    let (ts, e450) = &r["E"][0];
    assert_eq!(e450["active_energy_import"], 7136726, "{e450}");
    assert_eq!(e450["active_energy_export"], 2688904, "{e450}");
    // 2026-07-18 16:58:00, deviation not specified: the meter's offset (0) applies.
    assert_eq!(*ts, 1_784_393_880_000);
    sub.finish();
}
