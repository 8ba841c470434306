//! The service scripts: the SysV script really starts, reports, restarts and stops the bridge
//! (start-stop-daemon, pidfile), and install.sh stages every board for every init system.
//! shellcheck runs in CI (.ci/run).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;

use common::{free_port, wait_port, TempDir, BIN};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn temp(name: &str) -> TempDir {
    TempDir::new(&format!("init-{name}"))
}

fn sysv(dir: &Path, action: &str) -> Output {
    Command::new("sh")
        .arg(format!("{ROOT}/init.d/dlms-bridge.sysv"))
        .arg(action)
        .env("DAEMON", BIN)
        .env("PIDFILE", dir.join("bridge.pid"))
        .env("DEFAULTS", dir.join("defaults"))
        .output()
        .unwrap()
}

fn pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("bridge.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn sysv_start_status_restart_stop() {
    if Command::new("start-stop-daemon")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(!common::required(), "start-stop-daemon is required here");
        eprintln!("skipped: no start-stop-daemon");
        return;
    }
    let d = temp("sysv");
    let dir = &d.0;
    let port = free_port();
    std::fs::write(
        dir.join("defaults"),
        format!(
            "DATA_DIR={0}/data\nDB={0}/data/bridge.db\nLOG_FILE={0}/bridge.log\nLOG_LEVEL=info\nRUN_AS=root\nSTACK_KIB=128\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let db = dir.join("data/bridge.db");
    for (k, v) in [
        ("mqtt.host", String::new()),
        ("http.bind", format!("127.0.0.1:{port}")),
    ] {
        assert!(Command::new(BIN)
            .args(["settings", "set", k, &v, "--db"])
            .arg(&db)
            .status()
            .unwrap()
            .success());
    }
    let status = sysv(dir, "status");
    assert_eq!(status.status.code(), Some(3), "not running yet");
    let start = sysv(dir, "start");
    assert!(
        start.status.success(),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    let first = pid(dir).expect("pidfile");
    assert!(alive(first));
    wait_port(port, Duration::from_secs(10));
    let status = sysv(dir, "status");
    assert!(status.status.success());
    assert!(String::from_utf8_lossy(&status.stdout).contains(&format!("running (pid {first})")));
    assert!(String::from_utf8_lossy(&sysv(dir, "start").stdout).contains("already running"));
    assert!(sysv(dir, "reload").status.success());
    let restart = sysv(dir, "restart");
    assert!(
        restart.status.success(),
        "{}",
        String::from_utf8_lossy(&restart.stderr)
    );
    let second = pid(dir).expect("pidfile after restart");
    assert_ne!(first, second);
    assert!(!alive(first), "the old process is gone");
    let t0 = Instant::now();
    assert!(sysv(dir, "stop").status.success());
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "a clean stop takes seconds, not the KILL timeout"
    );
    assert!(!alive(second));
    assert_eq!(sysv(dir, "status").status.code(), Some(3));
    assert!(
        sysv(dir, "stop").status.success(),
        "stopping a stopped service is fine"
    );
    let log = std::fs::read_to_string(dir.join("bridge.log")).unwrap();
    assert!(
        log.contains("bridge running") && log.contains("stopping: releasing"),
        "{log}"
    );
    assert_eq!(sysv(dir, "bogus").status.code(), Some(2));
}

#[test]
fn install_stages_every_board_and_init_system() {
    for board in ["raspberry-pi-os", "openwrt-router", "debian-alpine-arm"] {
        for init in ["sysv", "openrc", "procd"] {
            let d = temp(&format!("install-{board}-{init}"));
            let out = Command::new("sh")
                .arg(format!("{ROOT}/init.d/install.sh"))
                .args([
                    "--board",
                    board,
                    "--init",
                    init,
                    "--binary",
                    BIN,
                    "--destdir",
                ])
                .arg(&d.0)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{board}/{init}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let bin = if init == "procd" {
                "usr/bin/dlms-bridge"
            } else {
                "usr/local/bin/dlms-bridge"
            };
            assert!(d.0.join(bin).exists(), "{board}/{init}: binary");
            assert!(
                d.0.join("etc/init.d/dlms-bridge").exists(),
                "{board}/{init}: script"
            );
            let conf = if init == "openrc" {
                "etc/conf.d/dlms-bridge"
            } else {
                "etc/default/dlms-bridge"
            };
            let text = std::fs::read_to_string(d.0.join(conf)).unwrap();
            assert!(
                text.contains("HTTP_BIND=") && text.contains("DAEMON="),
                "{board}/{init}: {text}"
            );
            // The board's database got its HTTP and MQTT defaults.
            let data_dir = text
                .lines()
                .find_map(|l| l.strip_prefix("DATA_DIR="))
                .unwrap();
            let db = d.0.join(data_dir.trim_start_matches('/')).join("bridge.db");
            let shown = Command::new(BIN)
                .args(["settings", "show", "--db"])
                .arg(&db)
                .output()
                .unwrap();
            let want = text
                .lines()
                .find_map(|l| l.strip_prefix("HTTP_BIND="))
                .unwrap();
            assert!(
                String::from_utf8_lossy(&shown.stdout).contains(&format!("http.bind = {want}")),
                "{board}/{init}"
            );
        }
    }
    let out = Command::new("sh")
        .arg(format!("{ROOT}/init.d/install.sh"))
        .args(["--board", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
