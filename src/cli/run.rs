//! `dlms-bridge run`: the bridge, until SIGTERM or SIGINT.

use super::args::{usage, UsageError};
use dlms_bridge::bridge;
use dlms_bridge::status::state::Status;
use lexopt::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub const HELP: &str = "\
dlms-bridge run [--db PATH] [--log-file PATH] [--log-level error|warn|info|debug]
                [--default-http-bind ADDR:PORT] [--default-mqtt-host HOST]
  Polls every enabled meter of the database and publishes to ThingsBoard; applies
  `meter`/`settings` changes live; SIGTERM or SIGINT stops it cleanly.
  --db defaults to $DLMS_BRIDGE_DB, else DB= in /etc/default/dlms-bridge or
  /etc/conf.d/dlms-bridge (what the service uses), else an installed
  /var/lib/dlms-bridge/bridge.db or /etc/dlms-bridge/bridge.db, else ./dlms-bridge.db
  --log-file is reopened on SIGHUP (log rotation); without it the log goes to stderr
  --default-*: applied only when the database has no such setting (service first start)";

/// The service's environment files (Debian packages, OpenRC) and the installed databases
/// (packages and install.sh; OpenWrt), in the order they are tried.
const SERVICE_ENV: [&str; 2] = ["/etc/default/dlms-bridge", "/etc/conf.d/dlms-bridge"];
const INSTALLED: [&str; 2] = [
    "/var/lib/dlms-bridge/bridge.db",
    "/etc/dlms-bridge/bridge.db",
];

/// The database path when no --db is given: the one the service uses, so that `sudo
/// dlms-bridge meter add ...` on a gateway changes what the service reads (issue 25).
pub fn default_db() -> PathBuf {
    default_db_from(
        std::env::var_os("DLMS_BRIDGE_DB"),
        &|p| std::fs::read_to_string(p).ok(),
        &|p| p.is_file(),
    )
}

/// [`default_db`] with its inputs given: $DLMS_BRIDGE_DB, the files' text, and which files
/// exist.
pub fn default_db_from(
    env: Option<std::ffi::OsString>,
    read: &dyn Fn(&str) -> Option<String>,
    exists: &dyn Fn(&std::path::Path) -> bool,
) -> PathBuf {
    if let Some(p) = env.filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    for file in SERVICE_ENV {
        if let Some(db) = read(file).and_then(|text| env_value(&text, "DB")) {
            return PathBuf::from(db);
        }
    }
    INSTALLED
        .iter()
        .map(PathBuf::from)
        .find(|p| exists(p))
        .unwrap_or_else(|| PathBuf::from("dlms-bridge.db"))
}

/// The value of `key` in a shell-style environment file (`KEY=value`, `KEY="value"`; `$VAR`
/// and `${VAR}` of keys set above it expanded; the last assignment wins). `None` when absent
/// or empty.
fn env_value(text: &str, key: &str) -> Option<String> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for line in text.lines().map(str::trim) {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim().trim_start_matches("export ").trim();
        if k.is_empty() || k.starts_with('#') {
            continue;
        }
        let v = v.trim().trim_matches('"').trim_matches('\'');
        let mut expanded = v.to_string();
        for (name, value) in vars.iter().rev() {
            expanded = expanded
                .replace(&format!("${{{name}}}"), value)
                .replace(&format!("${name}"), value);
        }
        vars.retain(|(n, _)| n != k);
        vars.push((k.to_string(), expanded));
    }
    vars.into_iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && !v.contains('$'))
}

pub fn init_logging(level: log::LevelFilter, file: Option<&PathBuf>) -> Result<(), UsageError> {
    let config = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_thread_level(log::LevelFilter::Off)
        .set_target_level(log::LevelFilter::Off)
        // Paho C's trace prints the connect options, user_name (the ThingsBoard token)
        // included: the bridge logs every connection event itself.
        .add_filter_ignore_str("paho_mqtt")
        .build();
    let writer: Box<dyn std::io::Write + Send> = match file {
        Some(p) => Box::new(
            super::log_file::ReopeningFile::open(p.clone())
                .map_err(|e| usage(format!("--log-file {}: {e}", p.display())))?,
        ),
        None => Box::new(std::io::stderr()),
    };
    // The page's log panel reads the same lines from memory.
    let writer = dlms_bridge::status::log_ring::Tee::new(writer);
    let _ = simplelog::WriteLogger::init(level, config, writer);
    Ok(())
}

pub fn parse_level(v: &str) -> Result<log::LevelFilter, UsageError> {
    v.parse().map_err(|_| {
        usage(format!(
            "--log-level: {v:?} is not error, warn, info or debug"
        ))
    })
}

pub fn run(mut parser: lexopt::Parser) -> Result<ExitCode, UsageError> {
    let (mut db, mut log_file, mut level) = (default_db(), None, log::LevelFilter::Info);
    let mut defaults: Vec<(&str, String)> = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("db") => db = PathBuf::from(parser.value()?),
            // A board's first-start defaults: applied only where the database has no value.
            Long("default-http-bind") => defaults.push(("http.bind", parser.value()?.string()?)),
            Long("default-mqtt-host") => defaults.push(("mqtt.host", parser.value()?.string()?)),
            Long("log-file") => log_file = Some(PathBuf::from(parser.value()?)),
            Long("log-level") => level = parse_level(&parser.value()?.string()?)?,
            Long("help") | Short('h') => {
                println!("{HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    // Signals first: a service manager may stop us while we are still starting.
    let stop = stop_on_signals();
    init_logging(level, log_file.as_ref())?;
    if !defaults.is_empty() {
        if let Err(e) = apply_defaults(&db, &defaults) {
            eprintln!("dlms-bridge: {}: {e}", db.display());
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(match bridge::run(&db, stop, Arc::new(Status::default())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once: in the log file if there is one (a service's only record), and on stderr
            // (which is the log when there is no file).
            if log_file.is_some() {
                log::error!("{}: {e}", db.display());
            }
            eprintln!("dlms-bridge: {}: {e}", db.display());
            ExitCode::FAILURE
        }
    })
}

/// Sets each setting the database does not have yet (a board's defaults, given by its
/// service at every start: the first start seeds them as the service user, and a value set
/// later with `settings set` is never overwritten).
fn apply_defaults(
    db: &std::path::Path,
    defaults: &[(&str, String)],
) -> dlms_bridge::store::Result<()> {
    let mut store = dlms_bridge::store::Store::open(db)?;
    for (key, value) in defaults {
        if !store.has_setting(key)? {
            store.set_setting(key, value)?;
        }
    }
    Ok(())
}

/// A flag set by SIGTERM or SIGINT. A second signal kills the process at once.
pub fn stop_on_signals() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone());
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    stop
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_cli_finds_the_services_database() {
        let none = |_: &str| None;
        let nothing = |_: &Path| false;
        assert_eq!(
            default_db_from(None, &none, &nothing),
            Path::new("dlms-bridge.db")
        );
        assert_eq!(
            default_db_from(Some("/x/y.db".into()), &none, &nothing),
            Path::new("/x/y.db")
        );
        let installed = |p: &Path| p == Path::new("/etc/dlms-bridge/bridge.db");
        assert_eq!(
            default_db_from(None, &none, &installed),
            Path::new("/etc/dlms-bridge/bridge.db")
        );
        // A board file as install.sh writes it (board-config/*.env).
        let board = |f: &str| {
            (f == "/etc/conf.d/dlms-bridge").then(|| {
                "# board\nDATA_DIR=\"/srv/meters\"\nDB=\"$DATA_DIR/bridge.db\"\nLOG_LEVEL=info\n".to_string()
            })
        };
        assert_eq!(
            default_db_from(None, &board, &installed),
            Path::new("/srv/meters/bridge.db")
        );
        assert_eq!(env_value("DB=/a\nDB=/b\n", "DB").as_deref(), Some("/b"));
        assert_eq!(env_value("DB=$UNSET/x\n", "DB"), None);
    }
}
