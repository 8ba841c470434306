//! A full disk during an outage: every reading delivered (at least once, with its own
//! timestamp), /healthz back to 200, and SIGTERM obeyed within 5 s. The broker restarted every
//! 5 s for a minute and the 5-minute outage run at field scale in `field_scale.rs`. The 20-boot run of a broker that is down for 2 minutes at boot is
//! `benches/boot_soak.rs` (40 broker-minutes: not for every CI run); its figures are in
//! docs/benchmarks.md.

mod common;

use common::*;
use dlms_bridge::config::values::Transport;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The readings per meter with repeats (the same timestamp twice: at-least-once delivery
/// across a connection lost before its PUBACK) removed, and how many repeats there were.
fn distinct(msgs: &[(String, Value)]) -> (BTreeMap<String, Vec<(i64, Value)>>, usize) {
    let mut repeats = 0;
    let mut out = gateway_readings(msgs);
    for list in out.values_mut() {
        list.sort_by_key(|r| r.0);
        let before = list.len();
        list.dedup_by_key(|r| r.0);
        repeats += before - list.len();
    }
    (out, repeats)
}

/// Every second from the first reading on is there for every meter.
fn check_all_delivered(msgs: &[(String, Value)], names: &[&str], started_ms: i64) -> usize {
    let (readings, repeats) = distinct(msgs);
    for name in names {
        let r = readings
            .get(*name)
            .unwrap_or_else(|| panic!("{name}: nothing delivered"));
        assert!(
            r[0].0 - started_ms < 5000,
            "{name}: the first readings arrive"
        );
        check_continuity(r, 2500, name);
    }
    repeats
}

fn health(port: u16) -> u16 {
    http_get(port, "/healthz").0
}

/// A small tmpfs for the database, so that the disk really fills (root only: skipped with a
/// note elsewhere).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(at.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_during_an_outage_loses_nothing() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("disk-full");
    let Some(disk) = SmallDisk::mount(&dir.0.join("small"), "4m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let mut broker = Mosquitto::start(&dir.0);
    let sub = Subscriber::start(broker.port, "v1/gateway/telemetry");
    let sims = simulated(0..2, 72, Transport::Hdlc);
    let db = disk.0.join("bridge.db");
    let names = ["F1", "F2"];
    configure(&db, broker.port, &sims, &names, |_| {});
    let http = free_port();
    setting(&db, "http.bind", &format!("127.0.0.1:{http}"));
    setting(&db, "mqtt.reconnect_max_s", "2");
    let started = dlms_bridge::clock::now_ms();
    let mut bridge = Bridge::start(&db, &dir.0);
    wait_for("healthy", Duration::from_secs(15), || health(http) == 200);
    broker.stop();
    std::thread::sleep(Duration::from_secs(3));
    // Fill the disk: commits fail (SQLITE_FULL) and readings stay in memory.
    let filler = disk.0.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut f, &block).is_ok() {}
    drop(f);
    wait_for(
        "/healthz names the failing commits",
        Duration::from_secs(15),
        || {
            http_get(http, "/healthz")
                .1
                .contains("outbox commits failing")
        },
    );
    // The alarm: raised from memory (its own row cannot be written yet).
    let disk_alarm = "dlms_bridge_alarms_active{type=\"disk_full\",severity=\"CRITICAL\"}";
    wait_for("the disk_full alarm", Duration::from_secs(10), || {
        http_get(http, "/metrics")
            .1
            .contains(&format!("{disk_alarm} 1"))
    });
    std::thread::sleep(Duration::from_secs(10));
    // The broker returns while the disk is still full: readings go out from memory.
    broker.restart();
    wait_for(
        "readings published from memory",
        Duration::from_secs(20),
        || {
            let (r, _) = distinct(&sub.messages());
            names.iter().all(|n| {
                r.get(*n).is_some_and(|l| {
                    l.last()
                        .is_some_and(|x| x.0 > dlms_bridge::clock::now_ms() - 5000)
                })
            })
        },
    );
    std::fs::remove_file(&filler).unwrap();
    wait_for("commits work again", Duration::from_secs(20), || {
        bridge.log().contains("commits work again") && health(http) == 200
    });
    wait_for(
        "the disk_full alarm cleared",
        Duration::from_secs(10),
        || {
            http_get(http, "/metrics")
                .1
                .contains(&format!("{disk_alarm} 0"))
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    terminate_within(&mut bridge, Duration::from_secs(5));
    // Written once the disk took writes again: raised and cleared, in the database.
    let stored = dlms_bridge::store::Store::open(&db)
        .unwrap()
        .alarms()
        .unwrap();
    assert!(
        stored
            .iter()
            .any(|a| a.kind == dlms_bridge::alarm::Kind::DiskFull
                && a.meter.is_none()
                && a.cleared_ms.is_some()),
        "{stored:?}"
    );
    let repeats = check_all_delivered(&sub.finish(), &names, started);
    eprintln!("disk full during an outage: every reading delivered, {repeats} repeat(s)");
}
