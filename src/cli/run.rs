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
  Polls every enabled meter of the database and publishes to ThingsBoard; applies
  `meter`/`settings` changes live; SIGTERM or SIGINT stops it cleanly.
  --db defaults to $DLMS_BRIDGE_DB, else ./dlms-bridge.db";

/// The database path: --db, else $DLMS_BRIDGE_DB, else ./dlms-bridge.db.
pub fn default_db() -> PathBuf {
    std::env::var_os("DLMS_BRIDGE_DB")
        .map_or_else(|| PathBuf::from("dlms-bridge.db"), PathBuf::from)
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
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| usage(format!("--log-file {}: {e}", p.display())))?,
        ),
        None => Box::new(std::io::stderr()),
    };
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
    while let Some(arg) = parser.next()? {
        match arg {
            Long("db") => db = PathBuf::from(parser.value()?),
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

/// A flag set by SIGTERM or SIGINT. A second signal kills the process at once.
pub fn stop_on_signals() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone());
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    stop
}
