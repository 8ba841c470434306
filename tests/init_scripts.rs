//! The service scripts: the SysV script really starts, reports, restarts and stops the bridge
//! (start-stop-daemon, pidfile), and install.sh stages every board for every init system.
//! shellcheck runs in CI (.ci/run).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;

use common::{free_port, TempDir, BIN};

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

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
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
    if !common::have("start-stop-daemon", &["--version"]) {
        return;
    }
    let d = temp("sysv");
    let dir = &d.0;
    let port = free_port();
    // As root (CI), the service runs as an unprivileged user, as on a Raspberry Pi: it must be
    // able to create its log file and database (both were root's in the first version).
    let as_root = is_root();
    let run_as = if as_root { "nobody" } else { "root" };
    std::fs::write(
        dir.join("defaults"),
        format!(
            "DATA_DIR={0}/data\nDB={0}/data/bridge.db\nLOG_FILE={0}/bridge.log\nLOG_LEVEL=info\nRUN_AS={run_as}\nSTACK_KIB=128\nHTTP_BIND=127.0.0.1:{port}\nMQTT_HOST=\n",
            dir.display()
        ),
    )
    .unwrap();
    let db = dir.join("data/bridge.db");
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
    // The board's HTTP default was seeded into the new database at the first start.
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no status page on port {port} within 20 s; the service's log:\n{}",
            std::fs::read_to_string(dir.join("bridge.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    if as_root {
        use std::os::unix::fs::MetadataExt;
        let nobody = std::fs::metadata(&db).unwrap().uid();
        assert_ne!(nobody, 0, "the database belongs to the service user");
        assert_eq!(
            std::fs::metadata(dir.join("bridge.log")).unwrap().uid(),
            nobody
        );
        // root editing the service's database leaves it usable by the service.
        let add = Command::new(BIN)
            .args([
                "meter",
                "add",
                "A",
                "--host",
                "127.0.0.1",
                "--port",
                "1",
                "--db",
            ])
            .arg(&db)
            .output()
            .unwrap();
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        for suffix in ["", "-wal", "-shm"] {
            let f = dir.join(format!("data/bridge.db{suffix}"));
            if let Ok(m) = std::fs::metadata(&f) {
                assert_eq!(m.uid(), nobody, "{}", f.display());
            }
        }
    }
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
    // A binary for another CPU: staging must not run it ("Exec format error" in the first
    // version, after a partial install).
    let arm = temp("foreign-binary");
    let foreign = arm.0.join("dlms-bridge");
    std::fs::write(&foreign, b"\x7fELF\x01\x01\x01\0not for this machine").unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&foreign)
        .status()
        .unwrap();
    for board in ["raspberry-pi-os", "openwrt-router", "debian-alpine-arm"] {
        for init in ["systemd", "sysv", "openrc", "procd"] {
            let d = temp(&format!("install-{board}-{init}"));
            let out = Command::new("sh")
                .arg(format!("{ROOT}/init.d/install.sh"))
                .args([
                    "--board",
                    board,
                    "--init",
                    init,
                    "--binary",
                    foreign.to_str().unwrap(),
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
            let service = if init == "systemd" {
                "etc/systemd/system/dlms-bridge.service"
            } else {
                "etc/init.d/dlms-bridge"
            };
            assert!(d.0.join(service).exists(), "{board}/{init}: service");
            if init == "systemd" {
                assert!(d.0.join("usr/lib/sysusers.d/dlms-bridge.conf").exists());
            }
            let conf = if init == "openrc" {
                "etc/conf.d/dlms-bridge"
            } else {
                "etc/default/dlms-bridge"
            };
            let text = std::fs::read_to_string(d.0.join(conf)).unwrap();
            assert!(
                text.contains("HTTP_BIND=") && (init == "systemd" || text.contains("DAEMON=")),
                "{board}/{init}: {text}"
            );
            if init == "systemd" {
                let db = text
                    .lines()
                    .rev()
                    .find_map(|l| l.strip_prefix("DB="))
                    .unwrap();
                assert!(db.starts_with('/') && !db.contains('$'), "{board}: DB={db}");
            }
            // Nothing was run: the database is made by the service at its first start.
            let data_dir = text
                .lines()
                .find_map(|l| l.strip_prefix("DATA_DIR="))
                .unwrap();
            let data = d.0.join(data_dir.trim_start_matches('/'));
            assert!(
                data.is_dir() && !data.join("bridge.db").exists(),
                "{board}/{init}"
            );
        }
    }
    // The OpenWrt board gets procd without being told.
    let d = temp("install-openwrt-default");
    let out = Command::new("sh")
        .arg(format!("{ROOT}/init.d/install.sh"))
        .args(["--board", "openwrt-router", "--binary"])
        .arg(&foreign)
        .arg("--destdir")
        .arg(&d.0)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("with procd"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = Command::new("sh")
        .arg(format!("{ROOT}/init.d/install.sh"))
        .args(["--board", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_log_file_is_reopened_after_rotation() {
    let d = temp("logrotate");
    let db = d.0.join("bridge.db");
    let log = d.0.join("bridge.log");
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--default-mqtt-host",
            "",
            "--default-http-bind",
            "",
            "--db",
        ])
        .arg(&db)
        .arg("--log-file")
        .arg(&log)
        .spawn()
        .unwrap();
    common::wait_for("the first log lines", Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("bridge running"))
    });
    // logrotate's default: move the file, then signal the service (reload).
    std::fs::rename(&log, d.0.join("bridge.log.1")).unwrap();
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let fresh = std::fs::read_to_string(&log).expect("a new log file");
    assert!(fresh.contains("stopping"), "{fresh}");
    let old = std::fs::read_to_string(d.0.join("bridge.log.1")).unwrap();
    assert!(
        !old.contains("stopping"),
        "nothing more went to the moved file"
    );
}

/// The amd64 .deb of the test binary: its path.
fn build_deb() -> String {
    let built = Command::new("sh")
        .arg(format!("{ROOT}/cross/package.sh"))
        .args(["deb", "amd64", BIN])
        .output()
        .unwrap();
    let out = common::succeeded("cross/package.sh deb amd64", built);
    format!("{ROOT}/{}", out.trim())
}

/// Issue 25 item 6: the package named none of the libraries a native build links (libssl3),
/// and its /etc/default set DB and HTTP_BIND twice and a LOG_FILE systemd ignores.
#[test]
fn the_deb_depends_on_what_the_binary_links_and_sets_each_default_once() {
    if !common::have("dpkg-deb", &["--version"]) || !common::have("readelf", &["--version"]) {
        eprintln!("skipped: dpkg-deb or readelf missing");
        return;
    }
    let deb = build_deb();
    let depends = Command::new("dpkg-deb")
        .args(["-f", &deb, "Depends"])
        .output()
        .unwrap();
    let depends = String::from_utf8_lossy(&depends.stdout).to_string();
    let linked = Command::new("readelf").args(["-d", BIN]).output().unwrap();
    if String::from_utf8_lossy(&linked.stdout).contains("libssl.so.3") {
        assert!(depends.contains("libssl3"), "Depends: {depends}");
    }
    assert!(depends.contains("adduser"), "Depends: {depends}");
    let defaults = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "dpkg-deb --fsys-tarfile '{deb}' | tar -xO ./etc/default/dlms-bridge"
        ))
        .output()
        .unwrap();
    let defaults = String::from_utf8_lossy(&defaults.stdout).to_string();
    for key in ["DB=", "HTTP_BIND="] {
        let n = defaults.lines().filter(|l| l.starts_with(key)).count();
        assert_eq!(n, 1, "{key} set {n} times:\n{defaults}");
    }
    assert!(
        !defaults.lines().any(|l| l.starts_with("LOG_FILE=")),
        "{defaults}"
    );
}

/// The .deb installs, runs as its user, keeps the data on remove and removes it on purge.
/// It installs on this machine, so only where asked (CI: DLMS_BRIDGE_TEST_DPKG=1, as root).
#[test]
fn deb_package_installs_removes_and_purges() {
    if std::env::var("DLMS_BRIDGE_TEST_DPKG").map_or(true, |v| v != "1") || !is_root() {
        eprintln!(
            "skipped: set DLMS_BRIDGE_TEST_DPKG=1 (as root) to install the package on this machine"
        );
        return;
    }
    let deb = build_deb();
    let dpkg = |args: &[&str]| {
        let out = Command::new("dpkg").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "dpkg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    dpkg(&["-i", &deb]);
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let data = std::fs::metadata("/var/lib/dlms-bridge").unwrap();
    assert_eq!(data.permissions().mode() & 0o777, 0o700);
    assert_ne!(
        data.uid(),
        0,
        "the data directory belongs to the service user"
    );
    assert!(Path::new("/etc/default/dlms-bridge").exists());
    // The service user can make and use its database.
    let out = Command::new("su")
        .args(["-s", "/bin/sh", "dlms-bridge", "-c"])
        .arg("/usr/bin/dlms-bridge settings set log.status_interval_s 1 --db /var/lib/dlms-bridge/bridge.db && /usr/bin/dlms-bridge settings show --db /var/lib/dlms-bridge/bridge.db")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The quick start's configure step, then the service (its SysV script: no systemd
    // here) as the service user: the log shows readings published.
    let work = temp("deb-quick-start");
    let broker = common::Mosquitto::start(&work.0);
    let meter_port = free_port();
    let _meter = common::simulate_process(1, meter_port);
    let db = "/var/lib/dlms-bridge/bridge.db";
    let cli = |args: &[&str]| {
        let out = Command::new("/usr/bin/dlms-bridge")
            .args(args)
            .args(["--db", db])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    cli(&[
        "meter",
        "add",
        "kitchen",
        "--host",
        "127.0.0.1",
        "--port",
        &meter_port.to_string(),
        "--interval-s",
        "1",
    ]);
    cli(&["settings", "set", "mqtt.port", &broker.port.to_string()]);
    cli(&["settings", "set", "log.status_interval_s", "1"]);
    cli(&["settings", "set", "http.bind", ""]);
    let service = |action: &str| {
        let out = Command::new("/etc/init.d/dlms-bridge")
            .arg(action)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{action}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    service("start");
    let pid: u32 = std::fs::read_to_string("/run/dlms-bridge.pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let owner = std::fs::metadata(format!("/proc/{pid}")).unwrap().uid();
    assert_eq!(owner, data.uid(), "the service runs as its user");
    let log = "/var/log/dlms-bridge.log";
    common::wait_for("readings published", Duration::from_secs(30), || {
        std::fs::read_to_string(log).is_ok_and(|t| {
            t.lines().any(|l| {
                l.contains("status: meter \"kitchen\": polling")
                    && l.split_once("published=")
                        .and_then(|(_, n)| n.split(' ').next()?.parse::<u64>().ok())
                        .is_some_and(|n| n > 0)
            })
        })
    });
    service("stop");
    dpkg(&["-r", "dlms-bridge"]);
    assert!(!Path::new("/usr/bin/dlms-bridge").exists());
    assert!(
        Path::new("/var/lib/dlms-bridge/bridge.db").exists(),
        "remove keeps the data"
    );
    dpkg(&["--purge", "dlms-bridge"]);
    assert!(
        !Path::new("/var/lib/dlms-bridge").exists(),
        "purge removes the data"
    );
    let user = Command::new("getent")
        .args(["passwd", "dlms-bridge"])
        .output()
        .unwrap();
    assert!(!user.status.success(), "purge removes the user");
}

/// A minimal ELF header for `machine` (no program headers: no loader, so "static"), enough for
/// the packaging script's checks without building a binary for that CPU.
fn fake_static_elf(path: &Path, machine: u16) {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // 64-bit
    h[5] = 1; // little endian
    h[6] = 1; // version
    h[16..18].copy_from_slice(&2u16.to_le_bytes()); // executable
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h[52..54].copy_from_slice(&64u16.to_le_bytes()); // header size
    std::fs::write(path, h).unwrap();
    Command::new("chmod").arg("+x").arg(path).status().unwrap();
}

fn untar(archive: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let out = Command::new("tar")
        .arg("xzf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .output()
        .unwrap();
    common::succeeded("tar", out);
}

/// The OpenWrt package: an opkg archive with the static binary, the procd service and the
/// board's defaults (a conffile); the service's command keeps the database on the overlay, logs
/// to logread unless a log file is configured; installing enables without starting; a
/// dynamically linked or wrong-CPU binary is refused.
#[test]
fn openwrt_package_holds_a_procd_service_that_logs_to_logread() {
    if !common::have("readelf", &["--version"]) {
        return;
    }
    let d = temp("openwrt-package");
    let bin = d.0.join("dlms-bridge");
    fake_static_elf(&bin, 0xB7); // AArch64
    let package = |arch: &str, binary: &Path| {
        Command::new("sh")
            .arg(format!("{ROOT}/cross/package.sh"))
            .args(["openwrt", arch])
            .arg(binary)
            .output()
            .unwrap()
    };
    let out = package("aarch64_cortex-a53", &bin);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ipk = Path::new(ROOT).join(String::from_utf8_lossy(&out.stdout).trim());
    assert!(ipk.to_string_lossy().ends_with("_aarch64_cortex-a53.ipk"));
    let outer = d.0.join("outer");
    untar(&ipk, &outer);
    assert_eq!(
        std::fs::read_to_string(outer.join("debian-binary")).unwrap(),
        "2.0\n"
    );
    let (control, data) = (d.0.join("control"), d.0.join("data"));
    untar(&outer.join("control.tar.gz"), &control);
    untar(&outer.join("data.tar.gz"), &data);
    let fields = std::fs::read_to_string(control.join("control")).unwrap();
    assert!(
        fields.contains("Package: dlms-bridge\n")
            && fields.contains("Architecture: aarch64_cortex-a53\n")
    );
    assert_eq!(
        std::fs::read_to_string(control.join("conffiles")).unwrap(),
        "/etc/default/dlms-bridge\n"
    );
    assert_eq!(
        std::fs::read(data.join("usr/bin/dlms-bridge")).unwrap(),
        std::fs::read(&bin).unwrap()
    );

    // The procd service, run with stand-ins for rc.common's procd_* helpers.
    let service = data.join("etc/init.d/dlms-bridge");
    let defaults = data.join("etc/default/dlms-bridge");
    let command_of = |defaults: &Path| {
        let script = format!(
            "procd_open_instance() {{ :; }}; procd_close_instance() {{ :; }}; mkdir() {{ :; }}\n\
             procd_set_param() {{ echo \"set $*\"; }}; procd_append_param() {{ echo \"append $*\"; }}\n\
             . {service}\nDEFAULTS={defaults} start_service\n",
            service = service.display(),
            defaults = defaults.display()
        );
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let params = command_of(&defaults);
    let command = params
        .lines()
        .find(|l| l.starts_with("set command"))
        .unwrap();
    assert!(
        command.contains("/usr/bin/dlms-bridge run --db /etc/dlms-bridge/bridge.db"),
        "{params}"
    );
    assert!(
        !params.contains("--log-file") && !params.contains("/tmp"),
        "{params}"
    );
    assert!(
        params.contains("set stdout 1") && params.contains("set stderr 1"),
        "{params}"
    );
    assert!(params.contains("set respawn"), "{params}");
    let with_file = d.0.join("defaults-with-log-file");
    std::fs::write(
        &with_file,
        std::fs::read_to_string(&defaults).unwrap() + "LOG_FILE=/tmp/dlms-bridge.log\n",
    )
    .unwrap();
    assert!(command_of(&with_file).contains("append command --log-file /tmp/dlms-bridge.log"));

    // Built into an image ($IPKG_INSTROOT): nothing is run.
    let out = Command::new("sh")
        .arg(control.join("postinst"))
        .env("IPKG_INSTROOT", &d.0)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--db /etc/dlms-bridge/bridge.db"));

    // Refused: a binary for another CPU, a dynamically linked one.
    let out = package("arm_cortex-a7_neon-vfpv4", &bin);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a binary for arm_cortex-a7"));
    if cfg!(target_arch = "x86_64") {
        let out = package("x86_64", Path::new(BIN));
        assert_eq!(out.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("dynamically linked"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_file(ipk);
}

/// Building on a machine without the C tools stops before cargo with one line naming the
/// packages, instead of pages of CMake or linker output from a dependency's build script.
#[test]
fn a_build_without_its_prerequisites_names_the_packages_in_one_line() {
    let d = temp("bare-path");
    // A PATH with only what the script itself uses: no cmake, no compilers, no Python.
    for tool in ["sh", "dirname"] {
        let found = ["/bin", "/usr/bin"]
            .iter()
            .map(|dir| Path::new(dir).join(tool))
            .find(|p| p.exists())
            .unwrap();
        std::os::unix::fs::symlink(found, d.0.join(tool)).unwrap();
    }
    for (args, packages) in [
        (
            vec!["aarch64-unknown-linux-gnu"],
            "cmake gcc-aarch64-linux-gnu gcc",
        ),
        (
            vec!["--static", "aarch64-unknown-linux-musl"],
            "cmake python3 python3-pip gcc",
        ),
    ] {
        let out = Command::new(d.0.join("sh"))
            .arg(format!("{ROOT}/cross/build.sh"))
            .args(&args)
            .env("PATH", &d.0)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "building needs {packages}: sudo apt-get install {packages}"
            )),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
}

/// The systemd unit (as install.sh and the .deb install it) passes `systemd-analyze verify`
/// without a warning; a misspelled hardening key, the mistake that silently drops a
/// protection, is caught by the same check.
#[test]
fn the_systemd_unit_verifies_cleanly() {
    if !common::have("systemd-analyze", &["--version"]) {
        return;
    }
    let d = temp("systemd-verify");
    let unit = std::fs::read_to_string(format!("{ROOT}/init.d/dlms-bridge.service"))
        .unwrap()
        .replace("/usr/local/bin/dlms-bridge", BIN);
    let verify = |name: &str, text: &str| {
        let path = d.0.join(name);
        std::fs::write(&path, text).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, warnings) = verify("dlms-bridge.service", &unit);
    assert!(ok && warnings.trim().is_empty(), "{warnings}");
    for key in [
        "ProtectSystem=strict",
        "ReadWritePaths=",
        "SupplementaryGroups=dialout",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(key), "{key}");
    }
    let (_, warnings) = verify(
        "misspelled.service",
        &unit.replace("ProtectSystem=", "ProtectSistem="),
    );
    assert!(warnings.contains("ProtectSistem"), "{warnings}");
}
