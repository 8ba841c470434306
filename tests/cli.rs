//! The binary as a user runs it: `simulate` in one process, `read` and `scan` in others, over
//! loopback TCP and over a pseudo-terminal pair (socat) for the serial path and mode E.

use dlms_bridge::cosem::Obis;
use dlms_bridge::sim::model::MeterModel;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod common;

use common::{cli, free_ports, json_lines, run, Proc, TempDir, BIN};

fn wait_port(port: u16) {
    common::wait_port(port, Duration::from_secs(10));
}

fn simulate(args: &[&str]) -> Proc {
    Proc(
        Command::new(BIN)
            .arg("simulate")
            .args(args)
            .args(["--duration-s", "60"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn voltage_truth(seed: u64, index: u32) -> f64 {
    let t = MeterModel::new(seed, index)
        .truth(Obis::new(1, 0, 32, 7, 0, 255), 0)
        .unwrap();
    t.raw as f64 / 10.0
}

#[test]
fn read_values_profile_and_objects_over_tcp() {
    for transport in ["hdlc", "wrapper"] {
        let port = free_ports(2);
        let _sim = simulate(&[
            "--meters",
            "2",
            "--port-base",
            &port.to_string(),
            "--transport",
            transport,
            "--seed",
            "11",
        ]);
        wait_port(port + 1);
        let p = (port + 1).to_string();
        let out = run(&[
            "read",
            "--host",
            "127.0.0.1",
            "--port",
            &p,
            "--transport",
            transport,
            "1-0:32.7.0*255",
            "1.0.1.8.0.255",
            "0-0:96.1.0*255:1:2",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = json_lines(&out);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0]["obis"], "1-0:32.7.0*255");
        assert_eq!(v[0]["class"], 3);
        assert_eq!(v[0]["attribute"], 2);
        assert_eq!(v[0]["unit"], "V");
        assert_eq!(v[0]["value"].as_f64().unwrap(), voltage_truth(11, 1));
        assert!(
            v[1]["value"].is_u64(),
            "energy prints as an integer: {}",
            v[1]
        );
        assert_eq!(v[1]["unit"], "Wh");
        assert_eq!(v[2]["value"], MeterModel::new(11, 1).serial_number());

        let out = run(&[
            "read",
            "--host",
            "127.0.0.1",
            "--port",
            &p,
            "--transport",
            transport,
            "--profile",
            "1-0:99.1.0*255",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows = json_lines(&out);
        assert_eq!(rows.len(), 192);
        assert_eq!(rows[0]["obis"], "1-0:99.1.0*255");
        assert!(rows[0]["row"]["ts"].as_str().unwrap().ends_with(":00Z"));
        assert!(rows[0]["row"]["1-0:1.8.0*255"].is_u64());

        let out = run(&[
            "read",
            "--host",
            "127.0.0.1",
            "--port",
            &p,
            "--transport",
            transport,
            "--list-objects",
        ]);
        assert!(json_lines(&out)
            .iter()
            .any(|o| o["obis"] == "1-0:99.1.0*255" && o["class"] == 7));
    }
}

#[test]
fn errors_are_one_clear_line_and_a_nonzero_exit() {
    let port = free_ports(1);
    let _sim = simulate(&[
        "--meters",
        "1",
        "--port-base",
        &port.to_string(),
        "--password",
        "secret",
    ]);
    wait_port(port);
    let p = port.to_string();
    let base = [
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        &p,
        "--timeout-ms",
        "400",
        "--retries",
        "0",
    ];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        run(&a)
    };
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).trim().to_string();

    let out = with(&["--auth", "low", "--password", "wrong", "1-0:32.7.0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("association rejected permanently: authentication failure"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1);

    let out = with(&["--server-physical", "99", "1-0:32.7.0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no answer from the meter to SNRM"),
        "{}",
        stderr(&out)
    );
    // Issue 25 item 10: each attempt said, with a pause before the next; an authentication
    // failure is never retried.
    let started = std::time::Instant::now();
    let mut retried = base.to_vec();
    retried.truncate(retried.len() - 1);
    retried.extend_from_slice(&["1", "--server-physical", "99", "1-0:32.7.0"]);
    let out = run(&retried);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("attempt 1 of 2"), "{}", stderr(&out));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "no pause before the retry"
    );
    let mut wrong = base.to_vec();
    wrong.truncate(wrong.len() - 1);
    wrong.extend_from_slice(&["3", "--auth", "low", "--password", "wrong", "1-0:32.7.0"]);
    let out = run(&wrong);
    assert!(!stderr(&out).contains("attempt 1"), "{}", stderr(&out));

    let out = with(&[
        "--auth",
        "low",
        "--password",
        "secret",
        "1-0:32.7.0",
        "1-0:99.98.0*255",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_lines(&out).len(), 1, "the good value is still printed");
    assert!(
        stderr(&out).contains("1-0:99.98.0*255 3:2: object not found"),
        "{}",
        stderr(&out)
    );

    let out = with(&[
        "--auth",
        "low",
        "--password",
        "secret",
        "0-0:1.0.0*255:8:2",
        "--profile",
        "1-0:99.1.0*255",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["read", "--port", "1", "1-0:32.7.0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--host"), "{}", stderr(&out));
    let out = run(&[
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        "1",
        "--retries",
        "0",
        "1-0:32.7.0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    // One line, naming the address once.
    let err = stderr(&out);
    assert!(
        err.contains("127.0.0.1:1: I/O error: TCP connect failed"),
        "{err}"
    );
    assert_eq!(
        (err.lines().count(), err.matches("127.0.0.1").count()),
        (1, 1),
        "{err}"
    );
}

#[test]
fn scan_finds_meters_only_in_the_given_ranges() {
    let port = free_ports(3);
    let _hdlc = simulate(&[
        "--meters",
        "2",
        "--port-base",
        &port.to_string(),
        "--seed",
        "5",
    ]);
    let _wrapper = simulate(&[
        "--meters",
        "1",
        "--port-base",
        &(port + 2).to_string(),
        "--transport",
        "wrapper",
        "--seed",
        "6",
    ]);
    wait_port(port + 1);
    wait_port(port + 2);
    let ports = format!("{}-{}", port, port + 3);
    let out = run(&[
        "scan",
        "--hosts",
        "127.0.0.1-127.0.0.2",
        "--ports",
        &ports,
        "--timeout-ms",
        "300",
    ]);
    assert!(out.status.success());
    let mut found = json_lines(&out);
    found.sort_by_key(|v| v["port"].as_u64());
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(found[0]["transport"], "hdlc");
    assert_eq!(
        found[0]["serial_number"],
        MeterModel::new(5, 0).serial_number()
    );
    assert_eq!(found[2]["transport"], "wrapper");
    assert_eq!(
        found[2]["serial_number"],
        MeterModel::new(6, 0).serial_number()
    );
    assert!(found.iter().all(|v| v["host"] == "127.0.0.1"));
    // No default range, and no huge one.
    assert_eq!(run(&["scan", "--ports", "4059"]).status.code(), Some(2));
    assert_eq!(
        run(&[
            "scan",
            "--hosts",
            "10.0.0.0-10.255.255.255",
            "--ports",
            "4059"
        ])
        .status
        .code(),
        Some(2)
    );
}

use common::pty_pair;

fn serial_read(pair: &Path, mode_e: bool) {
    let meter = pair.join("meter");
    let probe = pair.join("probe");
    let mut sim_args = vec!["--serial", meter.to_str().unwrap(), "--seed", "21"];
    if mode_e {
        sim_args.push("--mode-e");
    }
    let _sim = simulate(&sim_args);
    std::thread::sleep(Duration::from_millis(300));
    let read = |extra: &[&str]| {
        let mut args = vec![
            "read",
            "--serial",
            probe.to_str().unwrap(),
            "--timeout-ms",
            "2000",
        ];
        if mode_e {
            args.push("--mode-e");
        }
        args.extend_from_slice(extra);
        let out = run(&args);
        assert!(
            out.status.success(),
            "mode E {mode_e}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_lines(&out)
    };
    let v = read(&["1-0:32.7.0*255", "0-0:96.1.0*255:1:2"]);
    assert_eq!(v[0]["value"].as_f64().unwrap(), voltage_truth(21, 0));
    assert_eq!(v[1]["value"], MeterModel::new(21, 0).serial_number());
    // The profile needs segmentation and blocks over the serial line too.
    let out = read(&["--profile", "1-0:99.1.0*255"]);
    assert_eq!(out.len(), 192);
}

#[test]
fn serial_hdlc_over_a_pty() {
    if let Some(pair) = pty_pair("hdlc") {
        serial_read(&pair.dir, false);
    }
}

#[test]
fn serial_mode_e_over_a_pty() {
    if let Some(pair) = pty_pair("mode-e") {
        serial_read(&pair.dir, true);
    }
}

#[test]
fn secure_read_with_hls_gmac_and_every_line_option() {
    let ek = "000102030405060708090A0B0C0D0E0F";
    let ak = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF";
    let port = free_ports(1);
    let _sim = simulate(&[
        "--meters",
        "1",
        "--port-base",
        &port.to_string(),
        "--seed",
        "31",
        "--encryption-key",
        ek,
        "--authentication-key",
        ak,
        "--hls",
    ]);
    wait_port(port);
    let p = port.to_string();
    let secure = [
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        &p,
        "--auth",
        "high-gmac",
        "--security",
        "auth-enc",
        "--system-title",
        "4D4D4D0000BC614E",
        "--encryption-key",
        ek,
        "--inter-frame-timeout-ms",
        "1500",
        "--retries",
        "0",
    ];
    let mut args = secure.to_vec();
    args.extend(["--authentication-key", ak, "1-0:32.7.0*255"]);
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json_lines(&out)[0]["value"].as_f64().unwrap(),
        voltage_truth(31, 0)
    );
    // A counter the meter saw before is refused (the default counter is the time)...
    let mut stale = secure.to_vec();
    stale.extend([
        "--authentication-key",
        ak,
        "--invocation-counter",
        "1",
        "1-0:32.7.0*255",
    ]);
    let out = run(&stale);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("association rejected"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ...and accepted once it starts above the meter's frame counter, here with a fresh
    // dedicated key and general ciphering.
    let mut recovered = stale.clone();
    recovered.splice(
        recovered.len() - 1..recovered.len() - 1,
        [
            "--frame-counter",
            "0.0.43.1.0.255",
            "--dedicated-key",
            "true",
            "--general-ciphering",
        ],
    );
    let out = run(&recovered);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json_lines(&out)[0]["value"].as_f64().unwrap(),
        voltage_truth(31, 0)
    );
    let mut wrong = secure.to_vec();
    wrong.extend([
        "--authentication-key",
        "D0D1D2D3D4D5D6D7D8D9DADBDCDDDE00",
        "1-0:32.7.0*255",
    ]);
    let out = run(&wrong);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("authentication failure"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Keys must be given whole; serial line options parse (and are refused with --host only
    // by the target rules, not as unknown flags).
    let out = run(&[
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        &p,
        "--auth",
        "high-gmac",
        "1-0:32.7.0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("--auth high-gmac needs --security auth, enc or auth-enc"));
    let out = run(&[
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        &p,
        "--security",
        "auth-enc",
        "--system-title",
        "ABCD",
        "1-0:32.7.0",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected 8 bytes"));
    let out = run(&[
        "read",
        "--serial",
        "/nonexistent/tty",
        "--parity",
        "even",
        "--data-bits",
        "7",
        "--stop-bits",
        "2",
        "--baud",
        "300",
        "--retries",
        "0",
        "1-0:32.7.0",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "parsed, then failed to open: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tty"));
}

#[test]
fn version_names_commit_target_and_features() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!(
            "dlms-bridge {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(text.contains(std::env::consts::ARCH), "{text}");
    assert!(text.contains("TLS"), "{text}");
}

fn err_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

fn out_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Issue 25: a usage error says what is missing or unknown and exits 2; a failure exits 1.
#[test]
fn usage_errors_say_what_is_missing_and_exit_2() {
    let dir = TempDir::new("cli-usage");
    let db = dir.0.join("bridge.db");
    for (args, needle) in [
        (
            &["meter", "add", "--host", "1.2.3.4"][..],
            "meter add needs a NAME: dlms-bridge meter add NAME",
        ),
        (&["meter", "add"][..], "meter add needs a NAME"),
        (
            &["meter", "edit"][..],
            "meter edit needs a NAME: dlms-bridge meter edit NAME --FIELD VALUE",
        ),
        (&["meter", "show"][..], "meter show needs a NAME"),
        (&["meter", "import"][..], "meter import needs a FILE"),
        (
            &["meter", "ad", "x"][..],
            "unknown meter command \"ad\" (did you mean add?); commands: add, edit, list",
        ),
        (
            &["meter", "add", "A", "B", "--host", "h", "--port", "1"][..],
            "\"B\" left over",
        ),
        (
            &["meter", "list", "--host", "h"][..],
            "--host applies to meter add and meter edit only",
        ),
        (
            &["meter", "add", "A", "--hots", "h"][..],
            "--hots is not a meter field (did you mean --host?)",
        ),
        (&["meter", "list", "--bogus"][..], "--bogus"),
        (&["meter", "edit", "A"][..], "nothing to change"),
        (
            &["settings", "set", "mqtt.hots", "x"][..],
            "unknown setting \"mqtt.hots\" (did you mean mqtt.host?); known: mqtt.host",
        ),
        (&["settings", "get", "nope"][..], "unknown setting \"nope\""),
        (
            &["settings", "set", "mqtt.port"][..],
            "settings set needs KEY VALUE",
        ),
        (
            &["settings", "sett", "mqtt.port", "1"][..],
            "(did you mean set?)",
        ),
        (
            &["settings", "set", "mqtt.port", "0"][..],
            "mqtt.port: \"0\"",
        ),
        (
            &["meter", "add", "A", "--host", "h", "--port", "0"][..],
            "--port: \"0\"",
        ),
    ] {
        let out = cli(&db, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", err_of(&out));
        assert!(err_of(&out).contains(needle), "{args:?}: {}", err_of(&out));
        assert_eq!(
            err_of(&out).lines().count(),
            1,
            "{args:?}: {}",
            err_of(&out)
        );
    }
    assert_eq!(
        out_of(&cli(&db, &["meter", "list"])),
        "",
        "nothing was added"
    );

    // `help` is `--help`; an unknown command is named, then the usage follows.
    let help = run(&["--help"]);
    for args in [&["help"][..], &[][..]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(out.stdout, help.stdout, "{args:?}");
    }
    assert!(out_of(&help).contains("dlms-bridge docs configuration"));
    let meter_help = run(&["help", "meter"]);
    assert_eq!(meter_help.status.code(), Some(0));
    assert_eq!(meter_help.stdout, run(&["meter", "--help"]).stdout);
    for (args, needle) in [
        (
            &["foo"][..],
            "dlms-bridge: unknown command \"foo\"\n\ndlms-bridge — ",
        ),
        (
            &["metre", "list"][..],
            "unknown command \"metre\" (did you mean meter?)",
        ),
        (&["--bogus"][..], "unknown option \"--bogus\""),
        (&["obis"][..], "obis needs a CODE"),
        (&["obis", "1.2"][..], "obis"),
        (&["help", "foo"][..], "unknown command \"foo\""),
        (
            &["docs", "configration"][..],
            "(did you mean configuration?)",
        ),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", err_of(&out));
        assert!(err_of(&out).contains(needle), "{args:?}: {}", err_of(&out));
        if !matches!(args, ["docs", ..] | ["obis", _]) {
            assert!(
                err_of(&out).contains("\nUSAGE:\n"),
                "{args:?}: the usage follows"
            );
        }
    }

    let out = cli(
        &db,
        &[
            "provision",
            "--host",
            "tb:1883",
            "--key",
            "k",
            "--secret",
            "s",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", err_of(&out));
    assert!(
        err_of(&out).starts_with("dlms-bridge provision: --host: \"tb:1883\""),
        "{}",
        err_of(&out)
    );

    // Failures at run time exit 1.
    let out = cli(&db, &["meter", "edit", "Nobody", "--port", "2"]);
    assert_eq!(out.status.code(), Some(1), "{}", err_of(&out));
    let out = run(&["meter", "list", "--db", "/proc/nope/x.db"]);
    assert_eq!(out.status.code(), Some(1), "{}", err_of(&out));
}

#[test]
fn settings_get_prints_one_value_and_never_a_secret() {
    let dir = TempDir::new("cli-settings-get");
    let db = dir.0.join("bridge.db");
    let get = |key: &str| {
        let out = cli(&db, &["settings", "get", key]);
        assert_eq!(out.status.code(), Some(0), "{key}: {}", err_of(&out));
        out_of(&out).trim_end().to_string()
    };
    assert_eq!(get("mqtt.port"), "1883");
    assert!(cli(&db, &["settings", "set", "mqtt.port", "18830"])
        .status
        .success());
    assert_eq!(get("mqtt.port"), "18830");
    assert_eq!(get("thingsboard.gateway_token"), "(not set)");
    let set = cli(
        &db,
        &[
            "settings",
            "set",
            "thingsboard.gateway_token",
            "T0k3n-very-secret",
        ],
    );
    assert!(set.status.success(), "{}", err_of(&set));
    assert_eq!(get("thingsboard.gateway_token"), "(set)");
}

#[test]
fn meter_list_is_a_table_for_people_and_json_lines_for_programs() {
    let dir = TempDir::new("cli-list");
    let db = dir.0.join("bridge.db");
    for args in [
        &[
            "meter",
            "add",
            "Kitchen",
            "--host",
            "10.0.0.7",
            "--port",
            "4059",
            "--interval-s",
            "15",
        ][..],
        &[
            "meter",
            "add",
            "Basement meter",
            "--serial",
            "/dev/ttyUSB0",
            "--auth",
            "low",
            "--password",
            "pw",
            "--enabled",
            "no",
        ][..],
    ] {
        let out = cli(&db, args);
        assert!(out.status.success(), "{args:?}: {}", err_of(&out));
    }
    // Not a terminal (a pipe): JSON lines, as before; --json says so explicitly.
    let piped = cli(&db, &["meter", "list"]);
    assert_eq!(piped.stdout, cli(&db, &["meter", "list", "--json"]).stdout);
    let v = json_lines(&piped);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["name"], "Basement meter");
    assert_eq!(v[0]["endpoint"], "/dev/ttyUSB0");
    assert_eq!(v[0]["auth"], "low");
    assert_eq!(v[1]["endpoint"], "10.0.0.7:4059");
    assert_eq!(v[1]["interval_s"], 15);
    let table = out_of(&cli(&db, &["meter", "list", "--table"]));
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 3, "{table}");
    let cols: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(
        cols,
        ["NAME", "ID", "ENABLED", "ENDPOINT", "INTERVAL", "AUTH"],
        "{table}"
    );
    assert!(rows[1].starts_with("Basement meter  "), "{table}");
    assert!(
        rows[1].contains("  no  ") && rows[1].contains("/dev/ttyUSB0"),
        "{table}"
    );
    assert!(rows[1].ends_with("low"), "{table}");
    assert!(
        rows[2].contains("10.0.0.7:4059") && rows[2].contains("15 s"),
        "{table}"
    );
    let at = |r: &str| {
        r.find("ENDPOINT")
            .or_else(|| r.find("/dev").or_else(|| r.find("10.0")))
    };
    assert_eq!(at(rows[0]), at(rows[1]), "aligned:\n{table}");
    assert_eq!(at(rows[1]), at(rows[2]), "aligned:\n{table}");
    let out = cli(&db, &["meter", "show", "Kitchen", "--json"]);
    assert_eq!(out.status.code(), Some(2), "--json is for list");
    // On a terminal (script(1) gives it one), the table is the default.
    if common::have("script", &["--version"]) {
        let cmd = format!("{BIN} meter list --db {}", db.display());
        let out = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .unwrap();
        let text = out_of(&out).replace('\r', "");
        assert_eq!(text, table, "a terminal gets the table");
    }
}

/// docs/configuration.md is `dlms-bridge docs configuration`'s output, kept in step with the
/// field and setting tables it is generated from.
#[test]
fn docs_configuration_is_up_to_date() {
    let out = run(&["docs", "configuration"]);
    assert_eq!(out.status.code(), Some(0), "{}", err_of(&out));
    let generated = out_of(&out);
    for f in dlms_bridge::config::fields::FIELDS {
        assert!(
            generated.contains(&format!("| `{}` | `--{}", f.name, f.flag)),
            "{}",
            f.name
        );
    }
    for s in dlms_bridge::config::settings::SETTINGS {
        assert!(generated.contains(&format!("| `{}` |", s.key)), "{}", s.key);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/configuration.md is out of date: run `cargo run -- docs configuration > docs/configuration.md`"
    );
}

/// Issue 25 item 13: `meter export` keeps no secrets; `backup` keeps everything and `restore`
/// brings it back, never under a running bridge and never from a file that is not ours.
#[test]
fn backup_and_restore_keep_every_secret() {
    let dir = TempDir::new("cli-backup");
    let db = dir.0.join("bridge.db");
    let ok = |out: Output| common::succeeded("dlms-bridge", out);
    ok(cli(
        &db,
        &[
            "meter",
            "add",
            "A",
            "--host",
            "127.0.0.1",
            "--port",
            "4059",
            "--auth",
            "low",
            "--password",
            "pa55word",
        ],
    ));
    let file = dir.0.join("backup.db");
    ok(cli(&db, &["backup", file.to_str().unwrap()]));
    let again = cli(&db, &["backup", file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1), "a backup overwrote a file");
    ok(cli(&db, &["meter", "rm", "A"]));
    ok(cli(&db, &["restore", file.to_str().unwrap()]));
    let shown = ok(cli(&db, &["meter", "show", "A"]));
    assert!(shown.contains("\"password_set\": true"), "{shown}");
    let junk = dir.0.join("junk");
    std::fs::write(&junk, "not a database").unwrap();
    let refused = cli(&db, &["restore", junk.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(ok(cli(&db, &["meter", "show", "A"])).contains("\"name\": \"A\""));
    let missing = cli(&db, &["restore"]);
    assert_eq!(missing.status.code(), Some(2), "no FILE is a usage error");
}

/// Issue 25 item 11: a stored meter checked with its stored secrets, no retyping.
#[test]
fn meter_test_reads_a_stored_meter_with_its_secrets() {
    let dir = TempDir::new("cli-meter-test");
    let db = dir.0.join("bridge.db");
    let port = free_ports(1);
    let port_s = port.to_string();
    let _sim = simulate(&[
        "--meters",
        "1",
        "--port-base",
        &port_s,
        "--password",
        "pa55word",
    ]);
    wait_port(port);
    let ok = |out: Output| common::succeeded("dlms-bridge", out);
    ok(cli(
        &db,
        &[
            "meter",
            "add",
            "P",
            "--host",
            "127.0.0.1",
            "--port",
            &port_s,
            "--auth",
            "low",
            "--password",
            "pa55word",
        ],
    ));
    let out = ok(cli(&db, &["meter", "test", "P"]));
    assert!(
        out.contains("\"key\":\"voltage_l1\"") && out.contains("\"unit\":\"V\""),
        "{out}"
    );
    ok(cli(&db, &["meter", "edit", "P", "--password", "wrong-one"]));
    let refused = cli(&db, &["meter", "test", "P"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("authentication"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[test]
fn presets_fill_a_makes_settings_under_the_flags_given() {
    let dir = TempDir::new("cli-presets");
    let db = dir.0.join("bridge.db");
    let listed = cli(&db, &["meter", "presets"]);
    assert!(listed.status.success(), "{}", err_of(&listed));
    let text = out_of(&listed);
    assert!(
        text.contains("microstar:") && text.contains("source:"),
        "{text}"
    );
    let add = |args: &[&str]| {
        let mut all = vec!["meter", "add"];
        all.extend_from_slice(args);
        cli(&db, &all)
    };
    let out = add(&[
        "seed",
        "--preset",
        "microstar",
        "--meter-serial",
        "71234567",
        "--host",
        "10.0.0.9",
        "--password",
        "pw",
    ]);
    assert!(out.status.success(), "{}", err_of(&out));
    let shown: Value =
        serde_json::from_str(&out_of(&cli(&db, &["meter", "show", "seed"]))).unwrap();
    for (field, want) in [
        ("port", serde_json::json!(3333)),
        ("client_address", serde_json::json!(1)),
        ("server_logical", serde_json::json!(0)),
        ("server_physical", serde_json::json!(4567)),
        ("auth", serde_json::json!("low")),
        ("reconnect_gap_s", serde_json::json!(15)),
        ("inactivity_timeout_s", serde_json::json!(180)),
    ] {
        assert_eq!(shown[field], want, "{field}: {shown}");
    }
    assert_eq!(
        shown["measurements"][0]["obis"],
        serde_json::json!("1-1:32.7.0*255")
    );
    // A flag given wins over the preset, whatever its place.
    let out = add(&[
        "own-port",
        "--port",
        "4000",
        "--preset",
        "microstar",
        "--meter-serial",
        "71230042",
        "--host",
        "10.0.0.9",
        "--password",
        "pw",
    ]);
    assert!(out.status.success(), "{}", err_of(&out));
    // A preset on an existing meter would mix two makes: refused, with what to do.
    let out = cli(
        &db,
        &["meter", "edit", "own-port", "--preset", "landis-gyr-e450"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err_of(&out).contains("apply to meter add only"),
        "{}",
        err_of(&out)
    );
    let shown: Value =
        serde_json::from_str(&out_of(&cli(&db, &["meter", "show", "own-port"]))).unwrap();
    assert_eq!(shown["port"], serde_json::json!(4000));
    for (args, says) in [
        (
            &["x", "--preset", "microstr", "--host", "h"][..],
            "did you mean microstar",
        ),
        (
            &[
                "x",
                "--preset",
                "microstar",
                "--meter-serial",
                "12ab",
                "--host",
                "h",
                "--password",
                "p",
            ][..],
            "does not end in 4 digits",
        ),
        (
            &["x", "--meter-serial", "1234", "--host", "h", "--port", "1"][..],
            "--meter-serial is for a --preset",
        ),
        // Without the serial a Microstar would get the default address and never answer.
        (
            &[
                "x",
                "--preset",
                "microstar",
                "--host",
                "h",
                "--password",
                "p",
            ][..],
            "give --meter-serial SERIAL",
        ),
    ] {
        let out = add(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(err_of(&out).contains(says), "{args:?}: {}", err_of(&out));
    }
}

/// The `--trace` lines on stderr: (direction, hex, decoded) per unit.
fn trace_units(stderr: &str) -> Vec<(String, String, String)> {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut units = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let mut words = l.split_whitespace();
        let (Some(ms), Some("ms"), Some(dir), Some(hex)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if ms.parse::<u64>().is_err() {
            continue;
        }
        let decoded = lines.get(i + 1).map_or("", |d| d.trim_start());
        let decoded = decoded
            .strip_prefix(dir)
            .unwrap_or_else(|| panic!("no decoded line after {l:?}"));
        units.push((dir.to_string(), hex.to_string(), decoded.trim().to_string()));
    }
    units
}

/// Issue 26: `simulate --quirk fixed-invoke-id` answers every request with invoke id 0 (the
/// trace shows it), and `read` still takes each answer (the one request outstanding); a quirk
/// the simulator does not know is a usage error that lists the known ones.
#[test]
fn simulate_quirks_reproduce_a_fixed_invoke_id_that_read_tolerates() {
    let port = free_ports(1);
    let _sim = simulate(&[
        "--meters",
        "1",
        "--port-base",
        &port.to_string(),
        "--quirk",
        "fixed-invoke-id",
    ]);
    wait_port(port);
    let out = run(&[
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--timeout-ms",
        "3000",
        "--trace",
        "1-0:32.7.0",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        json_lines(&out)[0]["value"].as_f64().unwrap(),
        voltage_truth(1, 0)
    );
    let units = trace_units(&stderr);
    let invoke = |prefix: &str| -> Vec<String> {
        units
            .iter()
            .filter_map(|(_, _, d)| d.split(prefix).nth(1))
            .filter_map(|rest| rest.split([' ', ':']).next().map(str::to_string))
            .collect()
    };
    let asked = invoke("GET-Request-Normal invoke ");
    let answered = invoke("GET-Response-Normal invoke ");
    assert_eq!(asked.len(), 2, "{stderr}");
    assert_eq!(answered, ["0", "0"], "{stderr}");
    assert!(asked.iter().any(|i| i != "0"), "{stderr}");

    let out = run(&["simulate", "--quirk", "fixed-invoke-idd"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown quirk") && stderr.contains("holds-link"),
        "{stderr}"
    );
}

/// Issue 26: `read --trace` shows the whole exchange, in order, one unit per entry, with the
/// password masked, and the values alone on stdout.
#[test]
fn read_trace_shows_every_frame_in_order() {
    let ports = free_ports(2);
    let _hdlc = simulate(&[
        "--meters",
        "1",
        "--port-base",
        &ports.to_string(),
        "--password",
        "s3cretpw",
    ]);
    let wrapper_port = (ports + 1).to_string();
    let _wrapper = simulate(&[
        "--meters",
        "1",
        "--port-base",
        &wrapper_port,
        "--transport",
        "wrapper",
    ]);
    wait_port(ports);
    wait_port(ports + 1);
    let out = run(&[
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        &ports.to_string(),
        "--auth",
        "low",
        "--password",
        "s3cretpw",
        "--trace",
        "1-0:32.7.0",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        json_lines(&out)[0]["value"].as_f64().unwrap(),
        voltage_truth(1, 0)
    );
    let units = trace_units(&stderr);
    let kinds: Vec<String> = units
        .iter()
        .map(|(dir, _, decoded)| {
            let what = [
                "SNRM",
                "AARQ",
                "AARE",
                "GET-Request",
                "GET-Response",
                "RLRQ",
                "RLRE",
                "DISC",
                "UA",
            ]
            .into_iter()
            .find(|k| decoded.contains(k))
            .unwrap_or_else(|| panic!("{decoded}"));
            format!("{dir} {what}")
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "-> SNRM",
            "<- UA",
            "-> AARQ",
            "<- AARE",
            "-> GET-Request", // scaler_unit
            "<- GET-Response",
            "-> GET-Request", // value
            "<- GET-Response",
            "-> RLRQ",
            "<- RLRE",
            "-> DISC",
            "<- UA",
        ],
        "{stderr}"
    );
    // HDLC details: addresses, sequence numbers, the AARE's result.
    assert!(
        units[2].2.contains("HDLC I N(S)=0 N(R)=0"),
        "{}",
        units[2].2
    );
    assert!(units[3].2.contains("AARE accepted"), "{}", units[3].2);
    assert!(
        units[7].2.contains("GET-Response-Normal invoke 2: "),
        "{}",
        units[7].2
    );
    // The password appears nowhere, neither as text nor as hex; the AARQ says it was masked.
    let pw_hex: String = "s3cretpw".bytes().map(|b| format!("{b:02X}")).collect();
    assert!(
        !stderr.contains("s3cretpw") && !stderr.contains(&pw_hex),
        "{stderr}"
    );
    assert!(units[2].2.contains("(8 bytes, masked)"), "{}", units[2].2);
    // Each hex is the unit itself: decode-hdlc of it says the same (every frame is whole).
    for (_, hex, decoded) in &units[..2] {
        let again = run(&["decode-hdlc", hex]);
        assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), decoded);
    }

    // The wrapper: the same exchange without the link layer.
    let out = run(&[
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        &wrapper_port,
        "--transport",
        "wrapper",
        "--trace",
        "1-0:32.7.0",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let units = trace_units(&stderr);
    assert_eq!(units.len(), 8, "{stderr}");
    assert!(units[0].2.starts_with("wrapper wPort 16 -> 1") && units[0].2.contains("AARQ"));
    assert!(units[7].2.contains("RLRE"), "{stderr}");
    // Without --trace nothing of it.
    let quiet = run(&[
        "read",
        "--host",
        "127.0.0.1",
        "--port",
        &wrapper_port,
        "--transport",
        "wrapper",
        "1-0:32.7.0",
    ]);
    assert!(trace_units(&String::from_utf8_lossy(&quiet.stderr)).is_empty());
}

/// Issue 26: `meter test NAME --trace`, the stored meter's exchange on stderr.
/// A new user ran `meter test` three times on a refused password (a meter may lock after 3):
/// a refusal is on record, and `meter test` does not try the same credentials again (the
/// meter is not even contacted) until they change or `--force` is given; the next success
/// clears it.
#[test]
fn meter_test_does_not_retry_refused_credentials() {
    use dlms_bridge::sim::model::MeterModel;
    use dlms_bridge::sim::net::SimConfig;
    use std::sync::atomic::Ordering;
    let dir = TempDir::new("cli-meter-test-refused");
    let db = dir.0.join("bridge.db");
    let mut config = SimConfig::new(
        MeterModel::new(3, 0),
        dlms_bridge::config::values::Transport::Hdlc,
    );
    config.server.password = Some(b"right-pw".to_vec());
    let sims = common::meters(vec![config]);
    let port = sims.ports[0].to_string();
    let connections = || sims.counters[0].connections.load(Ordering::Relaxed);
    common::cli_ok(
        &db,
        &[
            "meter",
            "add",
            "P",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--auth",
            "low",
            "--password",
            "wrong-pw",
        ],
    );
    let first = cli(&db, &["meter", "test", "P"]);
    assert!(!first.status.success());
    let stderr = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(stderr.contains("not tried again by meter test"), "{stderr}");
    let tried = connections();
    assert!(tried >= 1);
    let second = cli(&db, &["meter", "test", "P"]);
    let stderr = String::from_utf8_lossy(&second.stderr).into_owned();
    assert!(!second.status.success());
    assert!(
        stderr.contains("refused these credentials") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(connections(), tried, "the meter was not contacted again");
    let forced = cli(&db, &["meter", "test", "P", "--force"]);
    assert!(!forced.status.success());
    assert!(connections() > tried, "--force tries");
    // Changed credentials are tried, and their success clears the record.
    common::cli_ok(&db, &["meter", "edit", "P", "--password", "right-pw"]);
    let fixed = cli(&db, &["meter", "test", "P"]);
    let stderr = String::from_utf8_lossy(&fixed.stderr).into_owned();
    assert!(fixed.status.success(), "{stderr}");
    assert!(
        stderr.contains("association ok (logical names)"),
        "{stderr}"
    );
    common::cli_ok(&db, &["meter", "edit", "P", "--password", "wrong-pw"]);
    let again = cli(&db, &["meter", "test", "P"]);
    let stderr = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(
        stderr.contains("not tried again by meter test") && !stderr.contains("refused these"),
        "a success cleared the old record: {stderr}"
    );
}

#[test]
fn meter_test_trace_shows_the_exchange() {
    let dir = TempDir::new("cli-meter-test-trace");
    let db = dir.0.join("bridge.db");
    let port = free_ports(1);
    let port_s = port.to_string();
    let _sim = simulate(&["--meters", "1", "--port-base", &port_s]);
    wait_port(port);
    common::succeeded(
        "dlms-bridge",
        cli(
            &db,
            &[
                "meter",
                "add",
                "T",
                "--host",
                "127.0.0.1",
                "--port",
                &port_s,
            ],
        ),
    );
    let out = cli(&db, &["meter", "test", "T", "--trace"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("voltage_l1"));
    let units = trace_units(&stderr);
    assert!(
        units.first().is_some_and(|u| u.2.contains("SNRM")),
        "{stderr}"
    );
    assert!(
        units
            .iter()
            .any(|u| u.2.contains("GET-Request-With-List") || u.2.contains("GET-Request-Normal")),
        "{stderr}"
    );
    assert!(units.last().is_some_and(|u| u.2.contains("UA")), "{stderr}");
    let misplaced = cli(&db, &["meter", "list", "--trace"]);
    assert_eq!(misplaced.status.code(), Some(2));
}

/// Issue 26: the serial path with the IEC 62056-21 mode E sign-on is traced too: the sign-on
/// lines at 300 baud, then the HDLC frames at the proposed rate.
#[test]
fn mode_e_trace_shows_the_sign_on_then_hdlc() {
    let Some(pair) = pty_pair("mode-e-trace") else {
        return;
    };
    let meter = pair.dir.join("meter");
    let probe = pair.dir.join("probe");
    let _sim = simulate(&[
        "--serial",
        meter.to_str().unwrap(),
        "--seed",
        "23",
        "--mode-e",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let out = run(&[
        "read",
        "--serial",
        probe.to_str().unwrap(),
        "--timeout-ms",
        "2000",
        "--mode-e",
        "--trace",
        "1-0:32.7.0",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        json_lines(&out)[0]["value"].as_f64().unwrap(),
        voltage_truth(23, 0)
    );
    let units = trace_units(&stderr);
    // Request "/?!\r\n", the meter's identification, the acknowledgement (ACK 0 Z 2 CR LF).
    assert!(units.len() > 4, "{stderr}");
    assert_eq!(units[0].0, "->");
    assert!(
        units[0].2.starts_with("text \"/?!\\r\\n\""),
        "{}",
        units[0].2
    );
    assert_eq!(units[1].0, "<-");
    assert!(units[1].2.starts_with("text \"/"), "{}", units[1].2);
    assert!(units[2].2.starts_with("text \"\\x06"), "{}", units[2].2);
    assert!(units[3].2.contains("HDLC SNRM"), "{}", units[3].2);
    assert!(
        units.iter().any(|u| u.2.contains("GET-Response-Normal")),
        "{stderr}"
    );
}

/// Issue 26: `decode-hdlc` / `decode-apdu` offline, ciphered APDUs opened with the keys.
#[test]
fn decode_commands_open_ciphered_apdus_with_the_keys() {
    // gurux-dlms 1.0.203's glo-ciphered GET of the clock with the Green Book example keys
    // (tests/vectors/independent.json, wrapper_glo_get_clock, without its wrapper header).
    let glo = "C81E3001234568887F56F92BBDFB413823BB59FE96B477FE1BD783E0FDA128D9";
    let keys = [
        "--encryption-key",
        "000102030405060708090A0B0C0D0E0F",
        "--authentication-key",
        "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF",
        "--system-title",
        "4D4D4D0000BC614E",
    ];
    let plain = run(&["decode-apdu", glo]);
    assert!(plain.status.success());
    let text = out_of(&plain);
    assert!(
        text.starts_with("glo-get-request") && !text.contains("deciphered"),
        "{text}"
    );
    let mut args = vec!["decode-apdu", glo];
    args.extend_from_slice(&keys);
    let opened = out_of(&run(&args));
    assert!(
        opened
            .contains("deciphered: GET-Request-Normal invoke 1: class 8 0-0:1.0.0*255 attribute 2"),
        "{opened}"
    );
    // The same in its wrapper, through decode-hdlc (any stream of frames or PDUs).
    let mut args = vec!["decode-hdlc", "0001001000010020", glo];
    args.extend_from_slice(&keys);
    let joined = run(&args);
    assert_eq!(joined.status.code(), Some(2), "HEX is one argument");
    let wrapped = format!("0001001000010020{glo}");
    let mut args = vec!["decode-hdlc", wrapped.as_str()];
    args.extend_from_slice(&keys);
    let text = out_of(&run(&args));
    assert!(
        text.starts_with("wrapper wPort 16 -> 1") && text.contains("deciphered"),
        "{text}"
    );
    // One key alone, or a bad one, is a usage error.
    let half = run(&["decode-apdu", glo, "--encryption-key", keys[1]]);
    assert_eq!(half.status.code(), Some(2));
    assert!(
        err_of(&half).contains("--authentication-key"),
        "{}",
        err_of(&half)
    );
    let bad = run(&[
        "decode-apdu",
        glo,
        "--encryption-key",
        "00",
        "--authentication-key",
        keys[3],
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(run(&["decode-apdu"]).status.code(), Some(2));
    assert_eq!(run(&["decode-hdlc", "7G"]).status.code(), Some(2));
}
