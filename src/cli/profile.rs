//! `dlms-bridge meter profile add|list|rm`: the profiles (load profiles, event logs) a meter's
//! thread collects with backfill. A running bridge picks changes up within a second.

use super::args::{parse_num, usage, UsageError};
use dlms_bridge::config::json::profile_json;
use dlms_bridge::config::ProfileSpec;
use dlms_bridge::store::{Store, StoreError};
use lexopt::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;

pub const HELP: &str = "\
dlms-bridge meter profile add NAME OBIS [--every-s N] [--key OBIS=KEY ...]
dlms-bridge meter profile list NAME | rm NAME OBIS
  Collects the meter's profile OBIS (class 7: a load profile such as 1-0:99.1.0, an event
  log such as 0-0:99.98.0) every N s (default: its capture period, at least 60 s), from the
  last row already sent, with backfill after any outage. Columns are named by --key, else
  by the bridge's names for well-known OBIS codes, else by their OBIS code.
";

/// Continues `meter`'s command line after `profile`.
pub fn run(mut parser: lexopt::Parser, mut db: PathBuf) -> Result<ExitCode, UsageError> {
    let (mut every, mut keys, mut pos) = (None, Vec::new(), Vec::new());
    while let Some(arg) = parser.next()? {
        match arg {
            Long("db") => db = PathBuf::from(parser.value()?),
            Long("every-s") => every = Some(parse_num::<u32>("--every-s", parser.value()?)?),
            Long("key") => keys.push(parser.value()?.string()?),
            Long("help") | Short('h') => {
                print!("{HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            Value(v) => pos.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let pos: Vec<&str> = pos.iter().map(String::as_str).collect();
    if !matches!(pos.as_slice(), ["add", ..]) && (every.is_some() || !keys.is_empty()) {
        return Err(usage("--every-s and --key apply to meter profile add only"));
    }
    let mut store = match Store::open(&db) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dlms-bridge: {}: {e}", db.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let meter = match pos.get(1).map(|n| store.meter(n)) {
        Some(Ok(m)) => m,
        Some(Err(e)) => return failed(e),
        None => return Err(usage(HELP.lines().next().unwrap_or_default())),
    };
    let mut changed = meter.clone();
    match pos.as_slice() {
        ["add", _, obis] => {
            let every = every.map(|n| n.to_string());
            let mut spec = ProfileSpec::from_parts(obis, every.as_deref(), &[])?;
            for k in &keys {
                spec.parse_key(k)?;
            }
            changed.profiles.retain(|p| p.obis != spec.obis);
            changed.profiles.push(spec.clone());
            let out = store.update_meter(&changed).map(|()| profile_json(&spec));
            print_or_fail(out)
        }
        ["list", _] => {
            let lines: Vec<String> = meter
                .profiles
                .iter()
                .map(|p| profile_json(p).to_string())
                .collect();
            let _ = super::write_lines(&lines);
            Ok(ExitCode::SUCCESS)
        }
        ["rm", name, obis] => {
            let obis = obis.parse().map_err(|e| usage(format!("{obis}: {e}")))?;
            changed.profiles.retain(|p| p.obis != obis);
            if changed.profiles.len() == meter.profiles.len() {
                eprintln!("dlms-bridge: meter {name:?} has no profile {obis}");
                return Ok(ExitCode::FAILURE);
            }
            let out = store
                .update_meter(&changed)
                .map(|()| serde_json::json!({"removed": obis.to_string()}));
            print_or_fail(out)
        }
        _ => Err(usage(format!(
            "unknown meter profile command {:?}\n{HELP}",
            pos.join(" ")
        ))),
    }
}

fn failed(e: StoreError) -> Result<ExitCode, UsageError> {
    match e {
        StoreError::Config(e) => Err(e.into()),
        e => {
            eprintln!("dlms-bridge: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_or_fail(r: dlms_bridge::store::Result<serde_json::Value>) -> Result<ExitCode, UsageError> {
    match r {
        Ok(v) => {
            let _ = super::write_lines(&[v.to_string()]);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => failed(e),
    }
}
