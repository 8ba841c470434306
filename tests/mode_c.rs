//! IEC 62056-21 data readout (`protocol mode-c`, issue 26 item 3): our client against our
//! simulated readout meter (`simulate --protocol mode-c`) over pseudo-terminals in modes A, B
//! and C (the 300 -> 9600 baud switch sequence, which a pty carries without effect) and over
//! TCP; `meter test`; a bridge publishing the readout to a real mosquitto; a mode E opening
//! refused with the right advice; and pwitab's iec62056-21 (tests/interop/iec21_client.py) as
//! an independent client reading the simulator. Every value is checked against the model.

mod common;

use common::*;
use dlms_bridge::config::values::Transport;
use dlms_bridge::cosem::Obis;
use dlms_bridge::sim::mode_c::ReadoutMode;
use dlms_bridge::sim::model::{MeterModel, ENERGY_IMPORT};
use dlms_bridge::sim::net::SimConfig;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/iec21_client.py");

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The model's value of `obis` as the nearest f64 of the exact decimal raw x 10^scaler.
fn truth(model: &MeterModel, obis: Obis) -> f64 {
    let t = model.truth(obis, 0).unwrap();
    format!("{}e{}", t.raw, t.scaler).parse().unwrap()
}

/// Energy read at about `t` (published in Wh: the readout prints kWh, `iec21::units` moves
/// the decimal point exactly) lies within the model's Wh of t-3 .. t+3 s.
fn check_energy(model: &MeterModel, wh: f64, t: i64) {
    assert_eq!(wh.fract(), 0.0, "{wh} Wh: a whole number, exactly");
    let wh = wh as i64;
    let lo = model.truth(ENERGY_IMPORT, t - 3).unwrap().raw;
    let hi = model.truth(ENERGY_IMPORT, t + 3).unwrap().raw;
    assert!((lo..=hi).contains(&wh), "energy {wh} Wh not in {lo}..={hi}");
}

fn simulate_serial(device: &std::path::Path, args: &[&str]) -> Proc {
    let p = Proc(
        Command::new(BIN)
            .args(["simulate", "--serial"])
            .arg(device)
            .args(["--protocol", "mode-c", "--seed", "26", "--duration-s", "60"])
            .args(args)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    p
}

#[test]
fn read_over_a_pty_in_modes_a_b_and_c() {
    let model = MeterModel::new(26, 0);
    for mode in ["a", "b", "c"] {
        let Some(pair) = pty_pair(&format!("mode-c-{mode}")) else {
            return;
        };
        let _sim = simulate_serial(&pair.dir.join("meter"), &["--iec-mode", mode]);
        let probe = pair.dir.join("probe");
        let out = run(&[
            "read",
            "--serial",
            probe.to_str().unwrap(),
            "--protocol",
            "mode-c",
            "1-0:32.7.0*255",
            "1-0:1.8.0",
            "1-0:13.7.0",
        ]);
        let t = now();
        assert!(
            out.status.success(),
            "mode {mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = json_lines(&out);
        assert_eq!(v.len(), 3, "mode {mode}: {v:?}");
        assert_eq!(v[0]["obis"], "1-0:32.7.0*255");
        assert_eq!(v[0]["unit"], "V");
        assert_eq!(
            v[0]["value"].as_f64().unwrap(),
            truth(&model, Obis::new(1, 0, 32, 7, 0, 255)),
            "mode {mode}"
        );
        assert_eq!(v[1]["unit"], "Wh");
        check_energy(&model, v[1]["value"].as_f64().unwrap(), t);
        assert_eq!(v[2]["unit"], Value::Null, "power factor has no unit");
        assert_eq!(
            v[2]["value"].as_f64().unwrap(),
            truth(&model, Obis::new(1, 0, 13, 7, 0, 255))
        );
        // A code the meter does not read out is an error, the others still printed.
        let out = run(&[
            "read",
            "--serial",
            probe.to_str().unwrap(),
            "--protocol",
            "mode-c",
            "1-0:32.7.0",
            "1-0:99.99.99",
        ]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(json_lines(&out).len(), 1);
        assert!(String::from_utf8_lossy(&out.stderr).contains("not in the meter's readout"));
    }
}

#[test]
fn a_mode_e_opening_to_a_readout_meter_says_to_set_protocol_mode_c() {
    for mode in ["c", "a"] {
        let Some(pair) = pty_pair(&format!("mode-e-to-c-{mode}")) else {
            return;
        };
        let _sim = simulate_serial(&pair.dir.join("meter"), &["--iec-mode", mode]);
        let out = run(&[
            "read",
            "--serial",
            pair.dir.join("probe").to_str().unwrap(),
            "--mode-e",
            "--retries",
            "0",
            "1-0:1.8.0",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(
                "the meter answered with an IEC 62056-21 mode C readout: set --protocol mode-c"
            ),
            "mode {mode}: {err}"
        );
    }
}

/// A meter that answers the sign-on with its readout straight away, with no identification
/// (what the Apator Norax 3 was reported to do to a mode E request): refused with the advice.
#[test]
fn a_mode_e_opening_answered_by_a_readout_says_to_set_protocol_mode_c() {
    let Some(pair) = pty_pair("mode-e-readout") else {
        return;
    };
    let meter = pair.dir.join("meter");
    let fake = std::thread::spawn(move || {
        let mut port = serialport::new(meter.to_str().unwrap(), 300)
            .timeout(Duration::from_millis(100))
            .open()
            .unwrap();
        let (mut got, mut buf) = (Vec::new(), [0u8; 64]);
        let start = std::time::Instant::now();
        while !got.ends_with(b"!\r\n") && start.elapsed() < Duration::from_secs(10) {
            if let Ok(n) = std::io::Read::read(&mut port, &mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        let readout = dlms_bridge::iec21::message::data_message(b"1.8.0(0012345.678*kWh)\r\n");
        std::io::Write::write_all(&mut port, &readout).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        got
    });
    let out = run(&[
        "read",
        "--serial",
        pair.dir.join("probe").to_str().unwrap(),
        "--mode-e",
        "--retries",
        "0",
        "1-0:1.8.0",
    ]);
    assert_eq!(fake.join().unwrap(), b"/?!\r\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "the meter answered with an IEC 62056-21 mode C readout: set --protocol mode-c"
        ),
        "{err}"
    );
}

#[test]
fn read_all_over_tcp_and_meter_test() {
    let port = free_ports(1);
    let _sim = simulator(port, &["--protocol", "mode-c", "--seed", "27"]);
    let model = MeterModel::new(27, 0);
    let port_text = port.to_string();
    let out = run(&[
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        &port_text,
        "--protocol",
        "mode-c",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = json_lines(&out);
    let by_obis = |o: &str| all.iter().find(|v| v["obis"] == o).cloned().unwrap();
    assert_eq!(by_obis("0-0:96.1.0*255")["value"], model.serial_number());
    assert_eq!(by_obis("0-0:96.1.0*255")["address"], "C.1.0");
    assert_eq!(
        by_obis("1-0:14.7.0*255")["value"].as_f64().unwrap(),
        truth(&model, Obis::new(1, 0, 14, 7, 0, 255))
    );
    assert_eq!(all.len(), 17, "{all:?}");

    let dir = TempDir::new("mode-c-test");
    let db = dir.0.join("b.db");
    cli_ok(
        &db,
        &[
            "meter",
            "add",
            "RO",
            "--host",
            "127.0.0.1",
            "--port",
            &port_text,
            "--protocol",
            "mode-c",
        ],
    );
    let out = cli(&db, &["meter", "test", "RO"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("readout ok (/SIM5DLMS-BRIDGE"), "{err}");
    assert!(err.contains("10 of 10 values read"), "{err}");
    let v = json_lines(&out);
    let key = |k: &str| v.iter().find(|l| l["key"] == k).cloned().unwrap();
    assert_eq!(
        key("current_l3")["value"].as_f64().unwrap(),
        truth(&model, Obis::new(1, 0, 71, 7, 0, 255))
    );
    assert_eq!(key("active_energy_import")["unit"], "Wh");
    // DLMS-only settings are refused with the reason.
    let out = cli(
        &db,
        &["meter", "edit", "RO", "--auth", "low", "--password", "x"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no DLMS authentication or security"));
}

#[test]
fn the_bridge_publishes_readout_values_with_their_units() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("mode-c-bridge");
    let broker = Mosquitto::start(&dir.0);
    let mut config = SimConfig::new(MeterModel::new(28, 0), Transport::Hdlc);
    config.readout = Some(ReadoutMode::C);
    let sims = meters(vec![config]);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["Readout"], |m| {
        m.protocol = dlms_bridge::config::values::Protocol::ModeC;
    });
    let sub = Subscriber::start(broker.port, "v1/gateway/#");
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("readings", Duration::from_secs(30), || {
        gateway_readings(&sub.messages())
            .get("Readout")
            .is_some_and(|r| r.len() >= 3)
    });
    let log = bridge.terminate();
    let msgs = sub.finish();
    let readings = &gateway_readings(&msgs)["Readout"];
    let model = &sims.models[0];
    for (ts, values) in readings {
        for (key, obis) in [
            ("voltage_l1", Obis::new(1, 0, 32, 7, 0, 255)),
            ("current_l2", Obis::new(1, 0, 51, 7, 0, 255)),
            ("frequency", Obis::new(1, 0, 14, 7, 0, 255)),
            ("power_factor", Obis::new(1, 0, 13, 7, 0, 255)),
            ("active_power", Obis::new(1, 0, 1, 7, 0, 255)),
        ] {
            assert_eq!(
                values[key].as_f64().unwrap(),
                truth(model, obis),
                "{key}: {log}"
            );
        }
        check_energy(
            model,
            values["active_energy_import"].as_f64().unwrap(),
            ts / 1000,
        );
    }
    check_continuity(readings, 1600, "Readout");
    let attrs: Vec<&Value> = msgs
        .iter()
        .filter(|(t, _)| t == "v1/gateway/attributes")
        .filter_map(|(_, v)| v.get("Readout"))
        .collect();
    let units = attrs.iter().find_map(|a| a.get("units")).expect("units");
    assert_eq!(units["active_energy_import"], "Wh");
    assert_eq!(units["voltage_l1"], "V");
    let identity = attrs
        .iter()
        .find(|a| a.get("identification").is_some())
        .expect("identity");
    assert_eq!(identity["serialNumber"], model.serial_number());
    assert_eq!(identity["identification"], "/SIM5DLMS-BRIDGE");
}

/// pwitab's iec62056-21 (an independent implementation) reads our simulator: identification,
/// every data set's address, value and unit as the model has them, and its BCC check passed.
#[test]
fn pwitab_iec62056_21_reads_the_simulator() {
    let port = free_ports(1);
    let _sim = simulator(port, &["--protocol", "mode-c", "--seed", "29"]);
    let out = Command::new("python3")
        .args([SCRIPT, "--port", &port.to_string()])
        .output();
    let t = now();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            assert!(!required(), "python3 is required here: {e}");
            eprintln!("skipped: no python3 ({e})");
            return;
        }
    };
    if out.status.code() == Some(3) {
        let why = String::from_utf8_lossy(&out.stderr);
        assert!(!required(), "iec62056-21 is required here: {why}");
        eprintln!("skipped: {why} (pip install iec62056-21==0.0.2)");
        return;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["identification"]["manufacturer"], "SIM");
    assert_eq!(got["identification"]["baud"], 9600);
    let model = MeterModel::new(29, 0);
    let sets = got["data_sets"].as_array().unwrap();
    let set = |address: &str| {
        sets.iter()
            .find(|s| s["address"] == address)
            .unwrap_or_else(|| panic!("{address} not in {sets:?}"))
    };
    assert_eq!(set("C.1.0")["value"], model.serial_number());
    assert_eq!(set("F.F")["value"], "00000000");
    let mut registers = 0;
    for obis in MeterModel::register_codes() {
        let [_, _, c, d, e, _] = obis.0;
        let s = set(&format!("{c}.{d}.{e}"));
        let value: f64 = s["value"].as_str().unwrap().parse().unwrap();
        let unit = model.truth(obis, 0).unwrap().unit;
        if obis == ENERGY_IMPORT {
            // pwitab's client gives the readout's own text, in kWh.
            assert_eq!(s["unit"], "kWh");
            check_energy(&model, (value * 1000.0).round(), t);
        } else if unit != 30 {
            assert_eq!(value, truth(&model, obis), "{obis}");
            let symbol = dlms_bridge::cosem::Unit(unit).symbol().unwrap_or_default();
            assert_eq!(s["unit"].as_str().unwrap_or_default(), symbol, "{obis}");
        }
        registers += 1;
    }
    assert_eq!(registers, 13);
    // Serial, error register, time, date and the registers: nothing more, nothing less.
    assert_eq!(sets.len(), 17);
}

/// libfaketime (as tests/profiles.rs finds it): the bridge starts with its clock in 1970.
fn libfaketime() -> Option<std::path::PathBuf> {
    let found = std::fs::read_dir("/usr/lib")
        .ok()?
        .flatten()
        .map(|d| d.path().join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            !required(),
            "libfaketime (apt install faketime) is required here"
        );
        eprintln!("skipped: libfaketime is not installed (apt install faketime)");
    }
    found
}

/// A gateway whose clock is not set (1970) stamps readout values with the meter's date and
/// time from the readout (0.9.2, 0.9.1), as DLMS meters' values get the meter's clock.
#[test]
fn without_a_gateway_clock_the_readout_time_stamps_the_values() {
    if !have_mosquitto() {
        return;
    }
    let Some(faketime) = libfaketime() else {
        return;
    };
    let dir = TempDir::new("mode-c-1970");
    let broker = Mosquitto::start(&dir.0);
    let mut config = SimConfig::new(MeterModel::new(30, 0), Transport::Hdlc);
    config.readout = Some(ReadoutMode::C);
    let sims = meters(vec![config]);
    let db = dir.0.join("bridge.db");
    configure(&db, broker.port, &sims, &["Readout"], |m| {
        m.protocol = dlms_bridge::config::values::Protocol::ModeC;
    });
    let sub = Subscriber::start(broker.port, "v1/gateway/telemetry");
    let clock_file = dir.0.join("faketime");
    std::fs::write(&clock_file, "@1970-01-02 00:00:00\n").unwrap();
    let log = dir.0.join("bridge-1970.log");
    let child = Command::new(BIN)
        .args(["run", "--db"])
        .arg(&db)
        .arg("--log-file")
        .arg(&log)
        .env("LD_PRELOAD", &faketime)
        .env("FAKETIME_TIMESTAMP_FILE", &clock_file)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut bridge = Bridge { child, log };
    wait_for("readings", Duration::from_secs(30), || {
        gateway_readings(&sub.messages())
            .get("Readout")
            .is_some_and(|r| r.len() >= 2)
    });
    let log = bridge.terminate();
    let readings = gateway_readings(&sub.finish()).remove("Readout").unwrap();
    let real = now() * 1000;
    for (ts, values) in &readings {
        // The meter's clock (the simulator's: the real time), to the second.
        assert!(
            (real - 60_000..=real).contains(ts),
            "ts {ts} vs {real}: {log}"
        );
        assert_eq!(ts % 1000, 0, "a readout's time has whole seconds");
        check_energy(
            &sims.models[0],
            values["active_energy_import"].as_f64().unwrap(),
            ts / 1000,
        );
    }
    assert!(log.contains("gateway clock not set"), "{log}");
}
