//! The configuration model as a new user meets it: the binary's `meter`, `settings`, `read`
//! and `run` commands, the API, import and export. Each test here failed before the typed
//! model (issue 11).

mod common;

use common::*;
use dlms_bridge::config::fields::FIELDS;
use dlms_bridge::config::values::Transport;
use dlms_bridge::store::Store;
use serde_json::{json, Value};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_meter_added_with_only_host_and_port_is_read_with_the_defaults_read_uses() {
    let dir = TempDir::new("defaults");
    let db = dir.0.join("bridge.db");
    let sims = simulated(0..1, 5, Transport::Hdlc);
    let port = sims.ports[0].to_string();
    let add = cli(
        &db,
        &[
            "meter",
            "add",
            "A",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--interval-s",
            "1",
        ],
    );
    assert!(add.status.success(), "{}", stderr(&add));
    // `read` with the same two flags reads the same meter...
    let read = Command::new(BIN)
        .args(["read", "--host", "127.0.0.1", "--port", &port, "1-0:32.7.0"])
        .output()
        .unwrap();
    assert!(read.status.success(), "{}", stderr(&read));
    // ...and so does the bridge (it needs no broker for that).
    let http_port = free_port();
    let bind = format!("127.0.0.1:{http_port}");
    for (k, v) in [
        ("http.bind", bind.as_str()),
        ("mqtt.port", &free_port().to_string()),
    ] {
        assert!(cli(&db, &["settings", "set", k, v]).status.success());
    }
    let bridge = Bridge::start(&db, &dir.0);
    wait_for("a successful poll of A", Duration::from_secs(20), || {
        let (_, body) = http_get(http_port, "/status");
        serde_json::from_str::<Value>(&body)
            .is_ok_and(|s| s["meters"]["A"]["successes"].as_u64() > Some(0))
    });
    // Live fields (interval, measurements) are taken up without a new association.
    let edit = cli(
        &db,
        &[
            "meter",
            "edit",
            "A",
            "--interval-s",
            "2",
            "--measure",
            "volts=1-0:32.7.0",
        ],
    );
    assert!(edit.status.success(), "{}", stderr(&edit));
    wait_for("the edited measurements", Duration::from_secs(20), || {
        let (_, body) = http_get(http_port, "/status");
        serde_json::from_str::<Value>(&body)
            .is_ok_and(|s| s["meters"]["A"]["values"].get("volts").is_some())
    });
    let (_, body) = http_get(http_port, "/status");
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["meters"]["A"]["reconnects"], json!(1), "{body}");
    assert!(bridge.log().contains("applied live"), "{}", bridge.log());
    // A change of address is not live: the meter's thread restarts.
    let edit = cli(&db, &["meter", "edit", "A", "--client-address", "1"]);
    assert!(edit.status.success(), "{}", stderr(&edit));
    wait_for(
        &format!("the restart in {}", bridge.log.display()),
        Duration::from_secs(10),
        || bridge.log().contains("configuration changed or removed"),
    );
    drop(bridge);
    // Every help text states the default the code uses.
    for cmd in ["meter", "read"] {
        let help = Command::new(BIN).args([cmd, "--help"]).output().unwrap();
        let line = stdout(&help)
            .lines()
            .find(|l| l.contains("--server-physical"))
            .map(str::to_owned)
            .unwrap_or_default();
        assert!(line.contains("(default 17)"), "{cmd}: {line:?}");
    }
}

#[test]
fn yes_no_values_are_strict() {
    let dir = TempDir::new("booleans");
    let db = dir.0.join("bridge.db");
    let base = ["meter", "add", "A", "--host", "127.0.0.1", "--port", "4059"];
    for (flag, typo) in [
        ("--enabled", "flase"),
        ("--dedicated-key", "maybe"),
        ("--mode-e", "ja"),
    ] {
        let mut args = base.to_vec();
        args.extend([flag, typo]);
        let out = cli(&db, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains(&format!(
                "{flag}: \"{typo}\" is not true or false (yes/no, 1/0)"
            )),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        stdout(&cli(&db, &["meter", "list"])),
        "",
        "nothing was added"
    );
    assert!(cli(&db, &base).status.success());
    let off = cli(&db, &["meter", "edit", "A", "--enabled", "no"]);
    assert!(off.status.success(), "{}", stderr(&off));
    let typo = cli(&db, &["meter", "edit", "A", "--enabled", "flase"]);
    assert_eq!(typo.status.code(), Some(2));
    let shown: Value = serde_json::from_str(&stdout(&cli(&db, &["meter", "show", "A"]))).unwrap();
    assert_eq!(shown["enabled"], json!(false), "the typo changed nothing");
}

#[test]
fn names_hosts_and_settings_are_checked_and_listed() {
    let dir = TempDir::new("names");
    let db = dir.0.join("bridge.db");
    for (name, host, needle) in [
        ("Red\u{1b}[31m", "127.0.0.1", "contains control characters"),
        ("Line\nbreak", "127.0.0.1", "contains control characters"),
        (
            "Meter\u{202E}A",
            "127.0.0.1",
            "contains the invisible or direction-changing character U+202E",
        ),
        (
            "A",
            "a..b",
            "--host: \"a..b\" is not a host name or IP address (an empty label)",
        ),
        ("42", "127.0.0.1", "is a number"),
        (
            "A",
            "my host",
            "--host: \"my host\" is not a host name or IP address",
        ),
    ] {
        let out = cli(&db, &["meter", "add", name, "--host", host, "--port", "1"]);
        assert_eq!(out.status.code(), Some(2), "{name:?} {host:?}");
        assert!(stderr(&out).contains(needle), "{}", stderr(&out));
        assert!(
            !stderr(&out).contains('\u{1b}'),
            "the escape never reaches the terminal"
        );
    }
    let zero = cli(&db, &["settings", "set", "mqtt.port", "0"]);
    assert!(!zero.status.success());
    for (key, value, needle) in [
        (
            "mqtt.host",
            "a b",
            "mqtt.host: \"a b\" is not a host name or IP address",
        ),
        ("mqtt.host", "tb:1883", "a port goes in port"),
        ("http.api_token", "0000000000000000", "different characters"),
        ("http.api_token", "1234567890123456", "sequence"),
        ("http.api_token", "abcdefghijklmnop", "sequence"),
    ] {
        let out = cli(&db, &["settings", "set", key, value]);
        assert!(!out.status.success(), "{key} {value}");
        assert!(stderr(&out).contains(needle), "{}", stderr(&out));
    }
    let help = stdout(
        &Command::new(BIN)
            .args(["settings", "--help"])
            .output()
            .unwrap(),
    );
    let unknown = stderr(&cli(&db, &["settings", "set", "nope", "1"]));
    for key in ["http.bind", "http.api_token", "mqtt.reconnect_max_s"] {
        assert!(help.contains(key), "settings --help lacks {key}");
        assert!(
            unknown.contains(key),
            "the unknown-setting list lacks {key}: {unknown}"
        );
    }
}

#[test]
fn importing_an_existing_name_needs_replace_and_a_replace_keeps_nothing_implicit() {
    let dir = TempDir::new("import");
    let db = dir.0.join("bridge.db");
    let add = cli(
        &db,
        &[
            "meter",
            "add",
            "A",
            "--host",
            "127.0.0.1",
            "--port",
            "1",
            "--auth",
            "low",
            "--password",
            "pw",
            "--interval-s",
            "7",
        ],
    );
    assert!(add.status.success(), "{}", stderr(&add));
    let file = dir.0.join("a.json");
    std::fs::write(&file, r#"[{"name": "A", "host": "127.0.0.1", "port": 2}]"#).unwrap();
    let f = file.to_str().unwrap();
    let refused = cli(&db, &["meter", "import", f]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("exists already: give --replace"),
        "{}",
        stderr(&refused)
    );
    let m = Store::open(&db).unwrap().meter("A").unwrap();
    assert_eq!((m.port, m.interval_s), (Some(1), 7), "unchanged");
    let replaced = cli(&db, &["meter", "import", f, "--replace"]);
    assert!(replaced.status.success(), "{}", stderr(&replaced));
    assert_eq!(stdout(&replaced).trim(), r#"{"added":0,"replaced":1}"#);
    let m = Store::open(&db).unwrap().meter("A").unwrap();
    assert_eq!(
        (
            m.port,
            m.interval_s,
            m.get("auth").as_deref(),
            m.password.is_some()
        ),
        (Some(2), 60, Some("none"), false),
        "exactly the file: defaults for the rest, no secret kept"
    );
}

#[test]
fn errors_name_flags_once_and_a_closed_pipe_is_not_a_panic() {
    let dir = TempDir::new("errors");
    let db = dir.0.join("bridge.db");
    let out = cli(
        &db,
        &[
            "meter",
            "add",
            "A",
            "--serial",
            "/dev/ttyUSB0",
            "--host",
            "h",
            "--port",
            "1",
        ],
    );
    assert_eq!(
        stderr(&out).trim(),
        "dlms-bridge meter: meter \"A\": give either --host and --port, or --serial, not both (none clears one) (see --help)"
    );
    let out = Command::new(BIN)
        .args(["run", "--db", "/proc/nope/x.db"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    // 300 meters export to ~300 kB: far more than a pipe holds once `head` has gone.
    let many: Vec<Value> = (0..300)
        .map(|i| json!({"name": format!("M{i}"), "host": "127.0.0.1", "port": 1000 + i}))
        .collect();
    let file = dir.0.join("many.json");
    std::fs::write(&file, serde_json::to_string(&many).unwrap()).unwrap();
    assert!(cli(&db, &["meter", "import", file.to_str().unwrap()])
        .status
        .success());
    let mut export = Command::new(BIN)
        .args(["meter", "export", "--db"])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 600];
    std::io::Read::read_exact(export.stdout.as_mut().unwrap(), &mut head).unwrap();
    drop(export.stdout.take());
    let out = export.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn a_second_run_on_the_same_database_is_refused_naming_the_first() {
    let dir = TempDir::new("lock");
    let db = dir.0.join("bridge.db");
    assert!(cli(
        &db,
        &["settings", "set", "mqtt.port", &free_port().to_string()]
    )
    .status
    .success());
    let first = Bridge::start(&db, &dir.0);
    wait_for("the first bridge", Duration::from_secs(10), || {
        first.log().contains("bridge running")
    });
    let second = Command::new(BIN)
        .args(["run", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let want = format!(
        "another dlms-bridge (pid {}) is running on this database",
        first.child.id()
    );
    assert!(stderr(&second).contains(&want), "{}", stderr(&second));
    let mut first = first;
    first.kill9();
    // kill -9 leaves no stale lock behind.
    let mut third = Bridge::start(&db, &dir.0);
    wait_for("a bridge after kill -9", Duration::from_secs(10), || {
        third.log().contains("bridge running")
    });
    third.terminate();
}

#[test]
fn empty_and_foreign_files_are_reported_and_left_alone() {
    let dir = TempDir::new("foreign");
    let empty = dir.0.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let out = cli(&empty, &["meter", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a dlms-bridge database: an empty file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    let other = dir.0.join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE customers (id INTEGER); INSERT INTO customers VALUES (1);")
        .unwrap();
    let before = std::fs::read(&other).unwrap();
    let out = cli(&other, &["meter", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("other tables (customers)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&other).unwrap(), before, "left untouched");
    let text = dir.0.join("notes.db");
    std::fs::write(&text, "these are not the droids".repeat(100)).unwrap();
    let out = cli(&text, &["meter", "list"]);
    assert!(
        stderr(&out).contains("not an SQLite file"),
        "{}",
        stderr(&out)
    );
}

/// A valid value and the other fields it needs.
type Valid = (&'static str, Vec<(&'static str, &'static str)>);

/// Sample values per field: valid ones (with the fields they need), and invalid ones.
fn samples(field: &str) -> (Vec<Valid>, Vec<&'static str>) {
    let secure: Vec<(&str, &str)> = vec![
        ("security", "auth-enc"),
        ("system_title", "4D4D4D0000BC614E"),
        ("encryption_key", "000102030405060708090A0B0C0D0E0F"),
        ("authentication_key", "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"),
    ];
    let serial = vec![
        ("host", ""),
        ("port", ""),
        ("serial_device", "/dev/ttyUSB0"),
    ];
    match field {
        "name" => (
            vec![("Meter Ä/7", vec![]), ("電表 7", vec![])],
            vec!["", "12", "a\u{7}", "A\u{202E}B", "\u{200B}A", "A\u{FEFF}"],
        ),
        "enabled" => (vec![("false", vec![]), ("yes", vec![])], vec!["flase", "2"]),
        "transport" => (vec![("wrapper", vec![])], vec!["modbus"]),
        "referencing" => (vec![("sn", vec![]), ("ln", vec![])], vec!["short"]),
        // Loopback names only: nothing here may resolve or reach beyond 127.0.0.0/8.
        "host" => (
            vec![("localhost", vec![]), ("127.0.0.2", vec![])],
            vec![
                "a b",
                "-x",
                "localhost:80",
                "a..b",
                "999.1.1.1",
                "255.255.255.255",
                "0.0.0.0",
                "meter_7",
            ],
        ),
        "port" => (vec![("65535", vec![])], vec!["0", "65536", "x"]),
        "serial_device" => (vec![("/dev/ttyS3", serial.clone())], vec!["ttyS3"]),
        "baud" => (vec![("115200", serial.clone())], vec!["12"]),
        "data_bits" => (vec![("7", serial.clone())], vec!["9"]),
        "parity" => (vec![("even", serial.clone())], vec!["mark"]),
        "stop_bits" => (vec![("2", serial.clone())], vec!["3"]),
        "mode_e" => (vec![("true", serial.clone())], vec!["ja"]),
        "protocol" => (vec![("mode-c", vec![]), ("dlms", vec![])], vec!["iec"]),
        "client_address" => (vec![("1", vec![])], vec!["128"]),
        "server_logical" => (vec![("16383", vec![])], vec!["16384"]),
        "server_physical" => (vec![("none", vec![]), ("256", vec![])], vec!["-1"]),
        "auth" => (
            vec![
                ("low", vec![("password", "pw")]),
                ("high-sha1", vec![("password", "secret")]),
                (
                    "high-sha256",
                    vec![("password", "secret"), ("system_title", "0102030405060708")],
                ),
            ],
            vec!["high"],
        ),
        "password" => (vec![("0000 0001", vec![("auth", "low")])], vec!["a\u{1b}b"]),
        "security" => (vec![("enc", secure[1..].to_vec())], vec!["all"]),
        "system_title" => (vec![("0102030405060708", vec![])], vec!["0102"]),
        "encryption_key" => (
            vec![("FFEEDDCCBBAA99887766554433221100", vec![])],
            vec!["zz"],
        ),
        "authentication_key" => (
            vec![("00112233445566778899AABBCCDDEEFF", vec![])],
            vec!["0011"],
        ),
        "dedicated_key" => (vec![("true", secure.clone())], vec!["maybe"]),
        "general_ciphering" => (vec![("true", secure.clone())], vec!["maybe"]),
        "frame_counter" => (vec![("0-0:43.1.0*255", secure.clone())], vec!["1.2.3"]),
        "gbt" => (vec![("on", vec![]), ("off", vec![])], vec!["sometimes"]),
        "connect_timeout_ms" | "response_timeout_ms" | "inter_frame_timeout_ms" => {
            (vec![("600000", vec![])], vec!["9"])
        }
        "max_info" => (vec![("128", vec![])], vec!["31", "2031"]),
        "hdlc_window" => (vec![("1", vec![])], vec!["0", "8"]),
        "interval_s" => (vec![("86400", vec![])], vec!["0"]),
        "inactivity_timeout_s" => (vec![("3", vec![])], vec!["0"]),
        "reconnect_gap_s" => (vec![("15", vec![]), ("0", vec![])], vec!["601", "-1"]),
        "single_connection" => (vec![("true", vec![])], vec!["once"]),
        "device_type" => (vec![("heat meter", vec![])], vec![" x"]),
        "access_token" => (vec![("A1b2C3", vec![])], vec!["a\u{1}"]),
        "rpc_write" => (vec![("true", vec![])], vec!["sure"]),
        "utc_offset_min" => (vec![("-300", vec![]), ("60", vec![])], vec!["841", "1.5"]),
        "clock_sync_threshold_s" => (vec![("none", vec![]), ("30", vec![])], vec!["0"]),
        "push" => (
            vec![
                ("serial", serial.clone()),
                (
                    "tcp",
                    vec![("host", ""), ("port", ""), ("push_address", "7")],
                ),
            ],
            vec!["tcp4"],
        ),
        "push_address" => (vec![("5", vec![]), ("none", vec![])], vec!["65536"]),
        "logical_device_name" => (vec![("KFM1100100000035", vec![])], vec![" x"]),
        "push_template" => (
            vec![("-,1-0:1.7.0,1-0:31.7.0@-3", vec![]), ("none", vec![])],
            vec!["1-0:1.7.0@x"],
        ),
        other => panic!("no samples for field {other}: add them here"),
    }
}

/// Every field round-trips CLI -> database -> export -> API -> import unchanged, and every
/// invalid value gets the same sentence from the command line, the API and an import file.
#[test]
fn every_field_round_trips_and_is_refused_alike_on_every_path() {
    let dir = TempDir::new("roundtrip");
    let (cli_db, api_db, import_db) = (
        dir.0.join("cli.db"),
        dir.0.join("api.db"),
        dir.0.join("import.db"),
    );
    let http_port = free_port();
    let bind = format!("127.0.0.1:{http_port}");
    {
        let mut s = Store::open(&api_db).unwrap();
        s.set_setting("http.bind", &bind).unwrap();
        s.set_setting("http.api_token", "T0KEN-0123456789abcdef")
            .unwrap();
        s.set_setting("mqtt.port", &free_port().to_string())
            .unwrap();
    }
    // The API server alone, in this process: no meter is polled, no serial line opened.
    let server = dlms_bridge::status::StatusServer::start(
        &bind,
        std::sync::Arc::new(dlms_bridge::status::state::Status::default()),
        &api_db,
    )
    .unwrap();
    let auth = Some("Bearer T0KEN-0123456789abcdef");
    wait_for("the API", Duration::from_secs(10), || {
        http(http_port, "GET", "/api/meters", auth, None).0 == 200
    });
    let flag_of = |name: &str| FIELDS.iter().find(|f| f.name == name).unwrap().flag;
    let mut n = 0;
    for field in FIELDS {
        let (valid, invalid) = samples(field.name);
        for (value, needs) in valid {
            n += 1;
            let name = if field.name == "name" {
                value.to_string()
            } else {
                format!("M{n}")
            };
            // The meter as flags: a TCP meter, what the sample needs, then the sample.
            let mut given: Vec<(&str, String)> =
                vec![("host", "127.0.0.1".into()), ("port", "4059".into())];
            for (k, v) in needs.iter().chain([(field.name, value)].iter()) {
                given.retain(|(g, _)| g != k);
                if !v.is_empty() && *k != "name" {
                    // A line of its own per meter: meters on one line share its settings.
                    let v = if *k == "serial_device" && *v == "/dev/ttyUSB0" {
                        format!("/dev/ttyUSB{n}")
                    } else {
                        v.to_string()
                    };
                    given.push((k, v));
                }
            }
            let mut args: Vec<String> = vec!["meter".into(), "add".into(), name.clone()];
            for (k, v) in &given {
                args.push(format!("--{}", flag_of(k)));
                args.push(v.clone());
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = cli(&cli_db, &argv);
            assert!(out.status.success(), "{argv:?}: {}", stderr(&out));
            let stored = Store::open(&cli_db).unwrap().meter(&name).unwrap();
            // Export, then POST the exported object (with its secrets, which exports omit).
            let export: Value =
                serde_json::from_str(&stdout(&cli(&cli_db, &["meter", "export"]))).unwrap();
            let mut object = export
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == json!(name))
                .cloned()
                .unwrap();
            for f in FIELDS.iter().filter(|f| f.secret) {
                if let Some(v) = stored.get(f.name) {
                    object[f.name] = json!(v);
                }
            }
            let (code, body) = http(
                http_port,
                "POST",
                "/api/meters",
                auth,
                Some(&object.to_string()),
            );
            assert_eq!(code, 201, "{object}: {body}");
            // GET it back and import that into a third database.
            let path = format!("/api/meters/{}", escaped(&name));
            let (code, body) = http(http_port, "GET", &path, auth, None);
            assert_eq!(code, 200, "{body}");
            let mut got: Value = serde_json::from_str(&body).unwrap();
            for f in FIELDS.iter().filter(|f| f.secret) {
                if let Some(v) = stored.get(f.name) {
                    got[f.name] = json!(v);
                }
            }
            let file = dir.0.join("one.json");
            std::fs::write(&file, json!([got]).to_string()).unwrap();
            let out = cli(&import_db, &["meter", "import", file.to_str().unwrap()]);
            assert!(out.status.success(), "{got}: {}", stderr(&out));
            let imported = Store::open(&import_db).unwrap().meter(&name).unwrap();
            assert_eq!(
                dlms_bridge::config::MeterConfig {
                    id: None,
                    ..imported
                },
                dlms_bridge::config::MeterConfig {
                    id: None,
                    ..stored.clone()
                },
                "{} = {value:?} did not survive the round trip",
                field.name
            );
            assert_eq!(stored.get(field.name).is_some(), value != "none");
        }
        for bad in invalid {
            // The sentence after the field's name must be the same on every path.
            let tail = |text: &str, named: &str| {
                text.split_once(&format!("{named}: "))
                    .map(|(_, t)| {
                        t.trim()
                            .trim_end_matches(" (see --help)")
                            .trim_end_matches("\"}")
                            .to_string()
                    })
                    .unwrap_or_else(|| panic!("{named} not named in {text:?}"))
            };
            let name = if field.name == "name" {
                bad.to_string()
            } else {
                "Bad".to_string()
            };
            let mut args = vec![
                "meter",
                "add",
                "Bad",
                "--host",
                "127.0.0.1",
                "--port",
                "4059",
            ];
            let flag = format!("--{}", field.flag);
            if field.name == "name" {
                args[2] = bad;
            } else {
                args.extend([flag.as_str(), bad]);
            }
            let out = cli(&cli_db, &args);
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let on_cli = tail(&stderr(&out), &flag);
            let object = json!({"name": name, "host": "127.0.0.1", "port": 4059, field.name: bad});
            let (code, body) = http(
                http_port,
                "POST",
                "/api/meters",
                auth,
                Some(&object.to_string()),
            );
            assert_eq!(code, 400, "{object}: {body}");
            let api: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(api["field"], json!(field.name), "{body}");
            let on_api = tail(api["error"].as_str().unwrap(), field.name);
            let file = dir.0.join("bad.json");
            std::fs::write(&file, json!([object]).to_string()).unwrap();
            let out = cli(&import_db, &["meter", "import", file.to_str().unwrap()]);
            assert_eq!(out.status.code(), Some(1));
            let on_import = tail(&stderr(&out), field.name);
            assert_eq!(
                (&on_cli, &on_api),
                (&on_import, &on_import),
                "{}={bad:?}",
                field.name
            );
        }
    }
    server.stop();
}

/// A path segment with everything but letters and digits %-escaped.
fn escaped(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Profiles are part of the meter: added, listed and removed on the command line, exported
/// and imported with the meter, refused with a message naming the profile, and a running
/// bridge's status shows them being collected.
#[test]
fn profiles_are_configured_like_every_other_part_of_a_meter() {
    let dir = TempDir::new("profiles-config");
    let db = dir.0.join("bridge.db");
    let ok = |o: Output| succeeded("meter profile", o);
    ok(cli(
        &db,
        &["meter", "add", "A", "--host", "127.0.0.1", "--port", "1"],
    ));
    let added = ok(cli(
        &db,
        &[
            "meter",
            "profile",
            "add",
            "A",
            "1-0:99.1.0",
            "--key",
            "1-0:1.8.0=import_wh",
        ],
    ));
    assert_eq!(
        serde_json::from_str::<Value>(&added).unwrap(),
        json!({"obis": "1-0:99.1.0*255", "every_s": null, "keys": {"1-0:1.8.0*255": "import_wh"}})
    );
    ok(cli(
        &db,
        &[
            "meter",
            "profile",
            "add",
            "A",
            "0-0:99.98.0",
            "--every-s",
            "900",
        ],
    ));
    assert_eq!(
        ok(cli(&db, &["meter", "profile", "list", "A"]))
            .lines()
            .count(),
        2
    );
    for bad in [
        vec!["meter", "profile", "add", "A", "1-0:99.1"],
        vec![
            "meter",
            "profile",
            "add",
            "A",
            "1-0:99.2.0",
            "--every-s",
            "0",
        ],
        vec![
            "meter",
            "profile",
            "add",
            "A",
            "1-0:99.2.0",
            "--key",
            "import",
        ],
        vec!["meter", "profile", "add", "nobody", "1-0:99.2.0"],
        vec!["meter", "profile", "rm", "A", "1-0:99.2.0"],
    ] {
        let o = cli(&db, &bad);
        assert!(!o.status.success(), "{bad:?} was accepted");
        assert_eq!(stderr(&o).lines().count(), 1, "{bad:?}: {}", stderr(&o));
    }
    assert_eq!(
        Store::open(&db).unwrap().meter("A").unwrap().profiles.len(),
        2
    );
    // Export, then import into a fresh database: the same profiles.
    let exported = ok(cli(&db, &["meter", "export"]));
    let file = dir.0.join("meters.json");
    std::fs::write(&file, &exported).unwrap();
    let other = dir.0.join("other.db");
    ok(cli(&other, &["meter", "import", file.to_str().unwrap()]));
    let (a, b) = (
        Store::open(&db).unwrap().meter("A").unwrap().profiles,
        Store::open(&other).unwrap().meter("A").unwrap().profiles,
    );
    assert_eq!(a, b);
    // A bad profile in a file names it.
    std::fs::write(
        &file,
        r#"[{"name": "B", "host": "h", "port": 1, "profiles": [{"obis": "1-0:99.1.0", "every": 5}]}]"#,
    )
    .unwrap();
    let o = cli(&other, &["meter", "import", file.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("profiles: unknown field \"every\""),
        "{}",
        stderr(&o)
    );
    ok(cli(&db, &["meter", "profile", "rm", "A", "0-0:99.98.0"]));
    assert_eq!(
        Store::open(&db).unwrap().meter("A").unwrap().profiles.len(),
        1
    );
}

/// Issue 25: `--password` without `--auth low` was stored and the meter then asked for the
/// public association. It is refused with the same sentence on the command line (exit 2),
/// in an import file and in the API; `read` refuses it too.
#[test]
fn a_password_without_low_authentication_is_refused_on_every_path() {
    let dir = TempDir::new("password-auth");
    let db = dir.0.join("bridge.db");
    let add = ["meter", "add", "A", "--host", "127.0.0.1", "--port", "4059"];
    let mut args = add.to_vec();
    args.extend(["--password", "pw"]);
    let out = cli(&db, &args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        "dlms-bridge meter: meter \"A\": --password is given but --auth is none: give --auth \
         low, or drop the password (none clears it) (see --help)"
    );
    assert!(cli(&db, &add).status.success());
    let out = cli(&db, &["meter", "edit", "A", "--password", "pw"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--auth is none"), "{}", stderr(&out));
    let low = cli(
        &db,
        &["meter", "edit", "A", "--auth", "low", "--password", "pw"],
    );
    assert!(low.status.success(), "{}", stderr(&low));
    let out = cli(&db, &["meter", "edit", "A", "--auth", "none"]);
    assert!(
        stderr(&out).contains("or drop the password"),
        "{}",
        stderr(&out)
    );
    let none = cli(
        &db,
        &["meter", "edit", "A", "--auth", "none", "--password", "none"],
    );
    assert!(none.status.success(), "{}", stderr(&none));

    let file = dir.0.join("m.json");
    std::fs::write(
        &file,
        r#"[{"name": "B", "host": "127.0.0.1", "port": 4059, "password": "pw"}]"#,
    )
    .unwrap();
    let out = cli(&db, &["meter", "import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("password is given but auth is none: give auth low"),
        "{}",
        stderr(&out)
    );

    let read = Command::new(BIN)
        .args([
            "read",
            "--host",
            "127.0.0.1",
            "--port",
            "1",
            "--password",
            "pw",
            "1-0:1.8.0",
        ])
        .output()
        .unwrap();
    assert_eq!(read.status.code(), Some(2), "{}", stderr(&read));
    assert!(
        stderr(&read).contains("--auth is none"),
        "{}",
        stderr(&read)
    );

    let http_port = free_port();
    let bind = format!("127.0.0.1:{http_port}");
    {
        let mut s = Store::open(&db).unwrap();
        s.set_setting("http.bind", &bind).unwrap();
        s.set_setting("http.api_token", "T0KEN-0123456789abcdef")
            .unwrap();
    }
    let server = dlms_bridge::status::StatusServer::start(
        &bind,
        std::sync::Arc::new(dlms_bridge::status::state::Status::default()),
        &db,
    )
    .unwrap();
    let auth = Some("Bearer T0KEN-0123456789abcdef");
    wait_for("the API", Duration::from_secs(10), || {
        http(http_port, "GET", "/api/meters", auth, None).0 == 200
    });
    let (code, body) = http(
        http_port,
        "POST",
        "/api/meters",
        auth,
        Some(r#"{"name": "C", "host": "127.0.0.1", "port": 4059, "password": "pw"}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("password is given but auth is none"),
        "{body}"
    );
    let (code, body) = http(
        http_port,
        "PATCH",
        "/api/meters/A",
        auth,
        Some(r#"{"password": "pw"}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("give auth low"), "{body}");
    server.stop();
}
