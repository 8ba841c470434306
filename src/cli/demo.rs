//! `dlms-bridge demo`: the main job on an embedded default. Simulated meters on loopback, a
//! throw-away database, a local mosquitto if one is installed (or already listening), and the
//! bridge publishing to it in gateway mode. Ctrl-C stops everything.

use super::args::{parse_num, usage, UsageError};
use super::run::{init_logging, stop_on_signals};
use dlms_bridge::bridge;
use dlms_bridge::config::values::Transport;
use dlms_bridge::config::MeterConfig;
use dlms_bridge::sim::model::MeterModel;
use dlms_bridge::sim::net::{self, SimConfig};
use dlms_bridge::status::state::Status;
use dlms_bridge::store::Store;
use lexopt::prelude::*;
use log::{info, warn};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub const HELP: &str = "\
dlms-bridge demo [--meters 3] [--interval-s 5] [--port-base 4061] [--mqtt-port 1883]
                 [--http-port 8080] [--dir DIR]
  Runs simulated meters on 127.0.0.1, a local mosquitto (if installed and the port is free;
  an existing broker on the port is used as it is), and the bridge, until Ctrl-C.
  The web page is on 127.0.0.1:--http-port; when 8080 is taken and no --http-port is given,
  on a free port (the banner says which). Without --dir the demo's files go to a temporary
  directory, removed when it stops.
  Watch the data:  mosquitto_sub -h 127.0.0.1 -p 1883 -t 'v1/gateway/#' -v";

struct Broker(Option<Child>);

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).is_ok()
}

fn start_mosquitto(dir: &std::path::Path, port: u16) -> Option<Child> {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .ok()?;
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    for _ in 0..50 {
        if listening(port) {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

pub fn run(mut parser: lexopt::Parser) -> Result<ExitCode, UsageError> {
    let (mut meters, mut interval, mut port_base, mut mqtt_port, mut dir) =
        (3u16, 5u32, 4061u16, 1883u16, None);
    let mut http_port: Option<u16> = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("meters") => meters = parse_num("--meters", parser.value()?)?,
            Long("interval-s") => interval = parse_num("--interval-s", parser.value()?)?,
            Long("port-base") => port_base = parse_num("--port-base", parser.value()?)?,
            Long("mqtt-port") => mqtt_port = parse_num("--mqtt-port", parser.value()?)?,
            Long("dir") => dir = Some(PathBuf::from(parser.value()?)),
            Long("http-port") => http_port = Some(parse_num("--http-port", parser.value()?)?),
            Long("help") | Short('h') => {
                println!("{HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    if meters == 0 || meters > 1000 || interval == 0 {
        return Err(usage("--meters must be 1..1000 and --interval-s positive"));
    }
    init_logging(log::LevelFilter::Info, None)?;
    let temporary = dir.is_none();
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("dlms-bridge-demo-{}", std::process::id()))
    });
    // The page's port: the one asked for, else 8080 unless something listens there already
    // (another bridge: its page and token would be taken for this one's), else a free one.
    let http_port = match http_port {
        Some(p) => p,
        None if !listening(8080) => 8080,
        None => std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_or(8080, |a| a.port()),
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("dlms-bridge: {}: {e}", dir.display());
        return Ok(ExitCode::FAILURE);
    }
    let stop = stop_on_signals();
    // The meters stop after the bridge, which releases its associations first.
    let meters_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sims = match net::spawn_tcp_meters(
        port_base,
        meters,
        |i| SimConfig::new(MeterModel::new(1, i), Transport::Hdlc),
        meters_stop.clone(),
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dlms-bridge: cannot start simulated meters on 127.0.0.1:{port_base}: {e} (try --port-base)");
            return Ok(ExitCode::FAILURE);
        }
    };
    let db = dir.join("bridge.db");
    let configured = (|| -> dlms_bridge::store::Result<(Broker, String)> {
        let mut store = Store::open(&db)?;
        let broker = if listening(mqtt_port) {
            info!("using the MQTT broker already listening on 127.0.0.1:{mqtt_port}");
            Broker(None)
        } else if let Some(child) = start_mosquitto(&dir, mqtt_port) {
            info!("started mosquitto on 127.0.0.1:{mqtt_port}");
            Broker(Some(child))
        } else {
            warn!(
                "no MQTT broker (mosquitto not installed?): readings are kept in the outbox at {}",
                db.display()
            );
            store.set_setting("mqtt.host", "")?;
            Broker(None)
        };
        if broker.0.is_some() || listening(mqtt_port) {
            store.set_setting("mqtt.host", "127.0.0.1")?;
            store.set_setting("mqtt.port", &mqtt_port.to_string())?;
        }
        store.set_setting("log.status_interval_s", "10")?;
        store.set_setting("http.bind", &format!("127.0.0.1:{http_port}"))?;
        // A throw-away token for this demo's page (printed on the terminal, never logged).
        let token = match store.settings()?.api_token {
            Some(t) => t,
            None => {
                // 32 hex digits; drawn again in the rare case the token rules refuse them
                // (fewer than 8 different characters).
                let mut tries = 0;
                loop {
                    let bytes =
                        dlms_bridge::client::entropy::random_bytes::<16>("the demo's API token")?;
                    let t = dlms_bridge::hex::encode(&bytes);
                    match store.set_setting("http.api_token", &t) {
                        Ok(()) => break t,
                        Err(_) if tries < 8 => tries += 1,
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        for (i, (port, _, _)) in sims.iter().enumerate() {
            let name = format!("Demo meter {}", i + 1);
            if store.meter(&name).is_ok() {
                continue;
            }
            let mut m = MeterConfig::tcp(&name, "127.0.0.1", *port);
            m.server_physical = Some(17);
            m.interval_s = interval;
            store.add_meter(&m)?;
        }
        Ok((broker, token))
    })();
    let (_broker, token) = match configured {
        Ok(b) => b,
        Err(e) => {
            eprintln!("dlms-bridge: {}: {e}", db.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    eprintln!(
        "dlms-bridge demo: {meters} simulated meter(s) on 127.0.0.1:{port_base}.., database {}\n  \
         watch:  mosquitto_sub -h 127.0.0.1 -p {mqtt_port} -t 'v1/gateway/#' -v\n  \
         web page:  http://127.0.0.1:{http_port}/ (sign in with the token {token}; JSON at /status, Prometheus at /metrics)\n  \
         read a meter yourself:  dlms-bridge read --host 127.0.0.1 --port {port_base} 1-0:32.7.0\n  \
         Ctrl-C stops.",
        db.display()
    );
    let result = bridge::run(&db, stop.clone(), Arc::new(Status::default()));
    meters_stop.store(true, Ordering::Relaxed);
    drop(_broker);
    if temporary {
        // Ours alone (a directory named after this process): nothing is left in /tmp.
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dlms-bridge: {e}");
            ExitCode::FAILURE
        }
    })
}
