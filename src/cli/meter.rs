//! `dlms-bridge meter add|list|show|edit|rm|import|export|profile` and `dlms-bridge settings show|set`:
//! configuration management. A running bridge picks changes up within a second.

use super::args::{usage, AfterYesNo, MeterFlags, UsageError};
use super::run::default_db;
use dlms_bridge::config::fields;
use dlms_bridge::config::json::{to_json, Secrets};
use dlms_bridge::config::values::word_of;
use dlms_bridge::config::MeterConfig;
use dlms_bridge::store::{Store, StoreError};
use lexopt::prelude::*;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

fn help() -> String {
    format!(
        "\
dlms-bridge meter add NAME (--host H --port P | --serial DEV) [--FIELD VALUE ...]
dlms-bridge meter edit NAME --FIELD VALUE ...        (only the fields given change)
dlms-bridge meter list | show NAME | rm NAME
dlms-bridge meter import FILE.json [--replace] | export    (JSON array of meters; - for stdin)
dlms-bridge meter profile add|list|rm ...            (load profiles, event logs: meter profile --help)
dlms-bridge settings show | set KEY VALUE
  common: --db PATH (default $DLMS_BRIDGE_DB, else ./dlms-bridge.db)
  A meter that exists is an import error unless --replace: a replaced meter takes exactly the
  file's fields (defaults for the rest; exports carry no secrets, so give them in the file).
  Yes/no fields take true/false (yes/no, 1/0); alone they mean true. N|none and OBIS|none
  fields take none to clear.
fields (JSON name = flag with _ for -, except serial_device = --serial):
{}",
        super::args::meter_flags_help(&[])
    )
}

fn open(db: &std::path::Path) -> Result<Store, ExitCode> {
    Store::open(db).map_err(|e| {
        eprintln!("dlms-bridge: {}: {e}", db.display());
        ExitCode::FAILURE
    })
}

/// Store errors: a refused configuration is a usage error (named by flags, exit 2).
fn done<T>(r: dlms_bridge::store::Result<T>) -> Result<ExitCode, UsageError> {
    match r {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(StoreError::Config(e)) => Err(e.into()),
        Err(e) => {
            eprintln!("dlms-bridge: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print(text: &str) -> ExitCode {
    // A closed pipe (`meter export | head`) is not an error worth a panic or a message.
    let _ = super::write_lines(&[text.to_string()]);
    ExitCode::SUCCESS
}

pub fn run(mut parser: lexopt::Parser) -> Result<ExitCode, UsageError> {
    let mut db = default_db();
    let mut positional: Vec<String> = Vec::new();
    let mut flags = MeterFlags::new(MeterConfig::default(), AfterYesNo::Refuse);
    let mut replace = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("db") => db = PathBuf::from(parser.value()?),
            Long("help") | Short('h') => {
                print!("{}", help());
                return Ok(ExitCode::SUCCESS);
            }
            Long("replace") => replace = true,
            Value(v) if positional.is_empty() && v == "profile" => {
                return super::profile::run(parser, db);
            }
            Long(name) => {
                let name = name.to_string();
                if !flags.take(&name, &mut parser)? {
                    return Err(usage(format!("--{name} is not a meter field")));
                }
            }
            Value(v) => positional.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let pos: Vec<&str> = positional.iter().map(String::as_str).collect();
    let editing = matches!(pos.as_slice(), ["add" | "edit", _]);
    if !editing && !flags.given.is_empty() {
        return Err(usage(format!(
            "--{} applies to meter add and meter edit only",
            flags.given[0].0
        )));
    }
    if replace && !matches!(pos.as_slice(), ["import", _]) {
        return Err(usage("--replace applies to meter import only"));
    }
    let mut store = match open(&db) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    match pos.as_slice() {
        ["add", name] => {
            if flags.was_given("name") {
                return Err(usage("meter add takes the name once, as NAME"));
            }
            fields::find("name").map_or(Ok(()), |f| f.apply(&mut flags.meter, Some(name)))?;
            let m = flags.finish()?;
            match store.add_meter(&m) {
                Ok(id) => Ok(print(&json!({"added": name, "id": id}).to_string())),
                Err(e) => done(Err::<(), _>(e)),
            }
        }
        ["edit", name] => {
            let stored = match store.meter(name) {
                Ok(m) => m,
                Err(e) => return done(Err::<(), _>(e)),
            };
            let m = flags.onto(stored)?;
            done(store.update_meter(&m))
        }
        ["list"] => match store.meters() {
            Ok(ms) => {
                let lines: Vec<String> = ms
                    .iter()
                    .map(|m| {
                        json!({"id": m.id, "name": m.name, "enabled": m.enabled,
                               "endpoint": m.endpoint_text(), "transport": word_of(m.transport),
                               "interval_s": m.interval_s, "measurements": m.measurements.len()})
                        .to_string()
                    })
                    .collect();
                let _ = super::write_lines(&lines);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => done(Err::<(), _>(e)),
        },
        ["show", name] => match store.meter(name) {
            Ok(m) => Ok(print(
                &serde_json::to_string_pretty(&to_json(&m, Secrets::SetOrNot)).unwrap_or_default(),
            )),
            Err(e) => done(Err::<(), _>(e)),
        },
        ["rm", name] => done(store.remove_meter(name)),
        ["import", file] => {
            let text = if *file == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
            } else {
                std::fs::read_to_string(file)
            };
            match text {
                Ok(t) => match store.import_meters(&t, replace) {
                    Ok(n) => Ok(print(
                        &json!({"added": n.added, "replaced": n.replaced}).to_string(),
                    )),
                    Err(StoreError::Config(e)) => {
                        // Files use the field names, not the flags.
                        eprintln!("dlms-bridge: {file}: {e}");
                        Ok(ExitCode::FAILURE)
                    }
                    Err(e) => done(Err::<(), _>(e)),
                },
                Err(e) => {
                    eprintln!("dlms-bridge: {file}: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        ["export"] => match store.export_meters() {
            Ok(j) => Ok(print(&j)),
            Err(e) => done(Err::<(), _>(e)),
        },
        _ => Err(usage(format!("unknown meter command {:?}", pos.join(" ")))),
    }
}

pub fn settings(mut parser: lexopt::Parser) -> Result<ExitCode, UsageError> {
    let mut db = default_db();
    let mut pos = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("db") => db = PathBuf::from(parser.value()?),
            Long("help") | Short('h') => {
                print!("{}", help());
                println!("settings:");
                print!("{}", dlms_bridge::config::settings::help_lines());
                return Ok(ExitCode::SUCCESS);
            }
            Value(v) => pos.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let mut store = match open(&db) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let pos: Vec<&str> = pos.iter().map(String::as_str).collect();
    match pos.as_slice() {
        ["show"] | [] => match store.settings() {
            Ok(s) => {
                let lines: Vec<String> = s
                    .shown()
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect();
                let _ = super::write_lines(&lines);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => done(Err::<(), _>(e)),
        },
        ["set", key, value] => done(store.set_setting(key, value)),
        _ => Err(usage("settings show | settings set KEY VALUE")),
    }
}
