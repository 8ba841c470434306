//! `dlms-bridge meter add|list|show|edit|rm|import|export` and `dlms-bridge settings show|set`:
//! configuration management. A running bridge picks changes up within a second.

use super::args::{usage, UsageError};
use super::run::default_db;
use dlms_bridge::store::config::{default_measurements, Measurement, MeterConfig};
use dlms_bridge::store::settings::KEYS;
use dlms_bridge::store::Store;
use lexopt::prelude::*;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

pub const HELP: &str = "\
dlms-bridge meter add NAME (--host H --port P | --serial DEV [--mode-e]) [FIELD VALUE ...]
dlms-bridge meter edit NAME FIELD VALUE ...
dlms-bridge meter list | show NAME | rm NAME
dlms-bridge meter import FILE.json | export           (JSON array of meters; - for stdin)
dlms-bridge settings show | set KEY VALUE
  common: --db PATH (default $DLMS_BRIDGE_DB, else ./dlms-bridge.db)
  fields: --transport hdlc|wrapper --client-address N --server-logical N --server-physical N|none
          --auth none|low|high-gmac --password P --interval-s N --timeout-ms N --inter-frame-timeout-ms N
          --security none|auth|enc|auth-enc --system-title HEX --encryption-key HEX
          --authentication-key HEX --dedicated-key true|false --general-ciphering true|false
          --frame-counter OBIS|none (e.g. 0.0.43.1.0.255: start above the meter's counter)
          --inactivity-timeout-s N --device-type T --access-token T --enabled true|false
          --measure KEY=OBIS[:CLASS:ATTR] (repeatable; replaces the default 3-phase set)";

fn open(db: &std::path::Path) -> Result<Store, ExitCode> {
    Store::open(db).map_err(|e| {
        eprintln!("dlms-bridge: {}: {e}", db.display());
        ExitCode::FAILURE
    })
}

fn done(r: dlms_bridge::store::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dlms-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Applies `--field value` options to a meter.
fn apply_field(
    m: &mut MeterConfig,
    field: &str,
    v: String,
    measures: &mut Vec<Measurement>,
) -> Result<(), UsageError> {
    let num = |v: &str| {
        v.parse::<u32>()
            .map_err(|_| usage(format!("--{field}: invalid number {v:?}")))
    };
    match field {
        "host" => m.host = Some(v),
        "port" => {
            m.port = Some(
                v.parse()
                    .map_err(|_| usage(format!("--port: invalid {v:?}")))?,
            )
        }
        "serial" => m.serial_device = Some(v),
        "baud" => m.baud = num(&v)?,
        "mode-e" => m.mode_e = v != "false",
        "transport" => m.transport = v,
        "client-address" => {
            m.client_address = v
                .parse()
                .map_err(|_| usage(format!("--client-address: invalid {v:?}")))?
        }
        "server-logical" => {
            m.server_logical = v
                .parse()
                .map_err(|_| usage(format!("--server-logical: invalid {v:?}")))?
        }
        "server-physical" => {
            m.server_physical = if v == "none" {
                None
            } else {
                Some(
                    v.parse()
                        .map_err(|_| usage(format!("--server-physical: invalid {v:?}")))?,
                )
            }
        }
        "auth" => m.auth = v,
        "password" => m.password = Some(v),
        "interval-s" => m.interval_s = num(&v)?,
        "timeout-ms" => {
            m.response_timeout_ms = num(&v)?;
            m.connect_timeout_ms = num(&v)?;
        }
        "inter-frame-timeout-ms" => m.inter_frame_timeout_ms = num(&v)?,
        "inactivity-timeout-s" => m.inactivity_timeout_s = num(&v)?,
        "device-type" => m.device_type = v,
        "access-token" => m.access_token = Some(v),
        "security" => m.security = v,
        "system-title" => m.system_title = Some(v),
        "encryption-key" => m.encryption_key = Some(v),
        "authentication-key" => m.authentication_key = Some(v),
        "dedicated-key" => m.dedicated_key = yes(&v),
        "general-ciphering" => m.general_ciphering = yes(&v),
        "frame-counter" => m.frame_counter = (v != "none").then_some(v),
        "enabled" => m.enabled = yes(&v),
        "measure" => {
            let (key, spec) = v
                .split_once('=')
                .ok_or_else(|| usage(format!("--measure {v:?}: expected KEY=OBIS[:CLASS:ATTR]")))?;
            let mut parts = spec.rsplitn(3, ':').collect::<Vec<_>>();
            parts.reverse();
            let numeric =
                |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit() || b == b'-');
            let (obis, class_id, attribute) = match parts.as_slice() {
                [o, c, a] if numeric(c) && numeric(a) && !c.contains('-') => (
                    o.to_string(),
                    c.parse().map_err(|_| usage("bad class"))?,
                    a.parse().map_err(|_| usage("bad attribute"))?,
                ),
                _ => (spec.to_string(), 3, 2),
            };
            measures.push(Measurement {
                key: key.into(),
                obis,
                class_id,
                attribute,
            });
        }
        other => return Err(usage(format!("unknown field --{other}"))),
    }
    Ok(())
}

fn yes(v: &str) -> bool {
    matches!(v, "true" | "yes" | "1")
}

/// A meter as `meter show` prints it: secrets only as "(set)" or "(not set)".
fn shown(m: &MeterConfig) -> serde_json::Value {
    let mut v = serde_json::to_value(m).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        for (field, secret) in [
            ("password", &m.password),
            ("access_token", &m.access_token),
            ("encryption_key", &m.encryption_key),
            ("authentication_key", &m.authentication_key),
        ] {
            let state = if secret.is_some() {
                "(set)"
            } else {
                "(not set)"
            };
            o.insert(field.into(), json!(state));
        }
    }
    v
}

pub fn run(mut parser: lexopt::Parser) -> Result<ExitCode, UsageError> {
    let mut db = default_db();
    let mut positional: Vec<String> = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("db") => db = PathBuf::from(parser.value()?),
            Long("help") | Short('h') => {
                println!("{HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            Long("mode-e") => fields.push(("mode-e".into(), "true".into())),
            Long(name) => {
                let name = name.to_string();
                fields.push((name, parser.value()?.string()?));
            }
            Value(v) => positional.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let pos: Vec<&str> = positional.iter().map(String::as_str).collect();
    let mut store = match open(&db) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    Ok(match pos.as_slice() {
        ["add", name] => {
            let mut m: MeterConfig =
                serde_json::from_value(json!({"name": name})).map_err(|e| usage(e.to_string()))?;
            let mut measures = Vec::new();
            for (f, v) in fields {
                apply_field(&mut m, &f, v, &mut measures)?;
            }
            m.measurements = if measures.is_empty() {
                default_measurements()
            } else {
                measures
            };
            match store.add_meter(&m) {
                Ok(id) => {
                    println!("{}", json!({"added": name, "id": id}));
                    ExitCode::SUCCESS
                }
                Err(e) => done(Err(e)),
            }
        }
        ["edit", name] => {
            let mut m = match store.meter(name) {
                Ok(m) => m,
                Err(e) => return Ok(done(Err(e))),
            };
            let mut measures = Vec::new();
            for (f, v) in fields {
                apply_field(&mut m, &f, v, &mut measures)?;
            }
            if !measures.is_empty() {
                m.measurements = measures;
            }
            done(store.update_meter(&m))
        }
        ["list"] => match store.meters() {
            Ok(ms) => {
                for m in ms {
                    let endpoint = match (&m.host, m.port, &m.serial_device) {
                        (Some(h), Some(p), _) => format!("{h}:{p}"),
                        (_, _, Some(d)) => d.clone(),
                        _ => String::new(),
                    };
                    println!(
                        "{}",
                        json!({"id": m.id, "name": m.name, "enabled": m.enabled, "endpoint": endpoint,
                               "transport": m.transport, "interval_s": m.interval_s, "measurements": m.measurements.len()})
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => done(Err(e)),
        },
        ["show", name] => match store.meter(name) {
            Ok(m) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&shown(&m)).unwrap_or_default()
                );
                ExitCode::SUCCESS
            }
            Err(e) => done(Err(e)),
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
                Ok(t) => match store.import_meters(&t) {
                    Ok(n) => {
                        println!("{}", json!({"imported": n}));
                        ExitCode::SUCCESS
                    }
                    Err(e) => done(Err(e)),
                },
                Err(e) => {
                    eprintln!("dlms-bridge: {file}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        ["export"] => match store.export_meters() {
            Ok(j) => {
                println!("{j}");
                ExitCode::SUCCESS
            }
            Err(e) => done(Err(e)),
        },
        _ => return Err(usage(format!("unknown meter command {:?}", pos.join(" ")))),
    })
}

pub fn settings(mut parser: lexopt::Parser) -> Result<ExitCode, UsageError> {
    let mut db = default_db();
    let mut pos = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("db") => db = PathBuf::from(parser.value()?),
            Long("help") | Short('h') => {
                println!("{HELP}");
                for (k, d) in KEYS {
                    println!("  {k:40} {d}");
                }
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
    Ok(match pos.as_slice() {
        ["show"] | [] => match store.settings() {
            Ok(s) => {
                for (k, v) in s.shown() {
                    println!("{k} = {v}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => done(Err(e)),
        },
        ["set", key, value] => done(store.set_setting(key, value)),
        _ => return Err(usage("settings show | settings set KEY VALUE")),
    })
}
