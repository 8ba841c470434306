//! `dlms-bridge meter add|list|show|edit|rm|import|export|profile` and `dlms-bridge settings show|set`:
//! configuration management. A running bridge picks changes up within a second.

use super::args::{did_you_mean, usage, AfterYesNo, MeterFlags, UsageError};
use super::run::default_db;
use dlms_bridge::config::fields;
use dlms_bridge::config::json::{to_json, Secrets};
use dlms_bridge::config::settings::{self, Setting};
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
dlms-bridge meter list [--json | --table] | show NAME | rm NAME
                     (list: a table on a terminal, else JSON lines)
dlms-bridge meter test NAME [--trace] [--force]   one association and one read with the
                               stored settings and secrets (counts as an attempt: a meter may
                               lock after 3 wrong); --trace prints every frame on stderr;
                               credentials the meter refused in the last meter.auth_retry_s
                               are not tried again without --force
dlms-bridge meter import FILE.json [--replace] | export    (JSON array of meters; - for stdin)
dlms-bridge meter presets      the makes --preset P knows (meter add NAME --preset microstar
                               --meter-serial 71234567 --host H): their settings and sources
dlms-bridge meter profile add|list|rm ...            (load profiles, event logs: meter profile --help)
dlms-bridge settings show | get KEY | set KEY VALUE   (secrets show as (set) or (not set))
  common: --db PATH (default $DLMS_BRIDGE_DB, else the service's database, else
  ./dlms-bridge.db: see dlms-bridge run --help)
  exit codes: 0 done, 1 failed (database, file, a meter that does not exist or is taken),
  2 usage (unknown command, flag or setting, a bad value on the command line)
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
    let mut list_format: Option<ListFormat> = None;
    let mut trace = false;
    let mut force = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("db") => db = PathBuf::from(parser.value()?),
            Long("help") | Short('h') => {
                print!("{}", help());
                return Ok(ExitCode::SUCCESS);
            }
            Long("replace") => replace = true,
            Long("json") => list_format = Some(ListFormat::Json),
            Long("table") => list_format = Some(ListFormat::Table),
            Long("trace") => trace = true,
            Long("force") => force = true,
            Value(v) if positional.is_empty() && v == "help" => {
                print!("{}", help());
                return Ok(ExitCode::SUCCESS);
            }
            Value(v) if positional.is_empty() && v == "profile" => {
                return super::profile::run(parser, db);
            }
            Long(name) => {
                let name = name.to_string();
                if !flags.take(&name, &mut parser)? {
                    let known = fields::FIELDS.iter().map(|f| f.flag);
                    let hint = super::args::suggest(&name, known)
                        .map_or(String::new(), |f| format!(" (did you mean --{f}?)"));
                    return Err(usage(format!("--{name} is not a meter field{hint}")));
                }
            }
            Value(v) => positional.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let pos: Vec<&str> = positional.iter().map(String::as_str).collect();
    check_command(&pos, &flags)?;
    if replace && pos.first() != Some(&"import") {
        return Err(usage("--replace applies to meter import only"));
    }
    if list_format.is_some() && pos.first() != Some(&"list") {
        return Err(usage("--json and --table apply to meter list only"));
    }
    if (trace || force) && pos.first() != Some(&"test") {
        return Err(usage("--trace and --force apply to meter test only"));
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
                let format = list_format.unwrap_or_else(|| {
                    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                        ListFormat::Table
                    } else {
                        ListFormat::Json
                    }
                });
                let lines = match format {
                    ListFormat::Json => ms.iter().map(list_json).collect(),
                    ListFormat::Table => list_table(&ms),
                };
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
        ["presets"] => Ok(print_presets()),
        ["test", name] => match store.meter(name) {
            Ok(m) => Ok(super::meter_test::run(&m, &store, &db, trace, force)),
            Err(e) => done(Err::<(), _>(e)),
        },
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

/// The `meter` commands and what each takes after its name.
const COMMANDS: &[(&str, &str)] = &[
    (
        "add",
        "NAME (--host H --port P | --serial DEV) [--FIELD VALUE ...]",
    ),
    ("edit", "NAME --FIELD VALUE ..."),
    ("list", ""),
    ("show", "NAME"),
    ("rm", "NAME"),
    ("test", "NAME"),
    ("presets", ""),
    ("import", "FILE.json [--replace]"),
    ("export", ""),
    ("profile", "add|list|rm ..."),
];

/// The command's words and flags make sense together: said before the database is opened.
fn check_command(pos: &[&str], flags: &MeterFlags) -> Result<(), UsageError> {
    let names = || COMMANDS.iter().map(|(c, _)| *c);
    let list = names().collect::<Vec<_>>().join(", ");
    let Some((cmd, rest)) = pos.split_first() else {
        return Err(usage(format!("meter needs a command: {list}")));
    };
    let Some((_, takes)) = COMMANDS.iter().find(|(c, _)| c == cmd) else {
        return Err(usage(format!(
            "unknown meter command {cmd:?}{}; commands: {list}",
            did_you_mean(cmd, names())
        )));
    };
    let line = format!("dlms-bridge meter {cmd} {takes}");
    let line = line.trim_end();
    let wants = takes
        .split_whitespace()
        .next()
        .filter(|w| w.starts_with(char::is_uppercase));
    match (wants, rest.len()) {
        (Some(what), 0) => {
            let what = what.trim_end_matches(".json");
            return Err(usage(format!("meter {cmd} needs a {what}: {line}")));
        }
        (Some(_), 1) | (None, 0) => {}
        (Some(what), _) => {
            let extra: Vec<String> = rest[1..].iter().map(|w| format!("{w:?}")).collect();
            return Err(usage(format!(
                "meter {cmd} takes one {}; {} left over (quote a name with spaces): {line}",
                what.trim_end_matches(".json"),
                extra.join(" ")
            )));
        }
        (None, _) => {
            return Err(usage(format!(
                "meter {cmd} takes nothing after it; got {:?}",
                rest.join(" ")
            )))
        }
    }
    let editing = matches!(*cmd, "add" | "edit");
    if let Some((flag, _)) = flags.given.first().filter(|_| !editing) {
        return Err(usage(format!(
            "--{flag} applies to meter add and meter edit only"
        )));
    }
    if !flags.measures.is_empty() && !editing {
        return Err(usage("--measure applies to meter add and meter edit only"));
    }
    if flags.has_preset() && *cmd != "add" {
        // On an existing meter a preset would mix two makes (the old one's OBIS codes, gap
        // and time-outs kept where the new one sets nothing: a new user's finding).
        return Err(usage(
            "--preset and --meter-serial apply to meter add only: a preset sets up a make from the defaults; to change a meter's make, meter rm it and meter add it again with --preset (or change single fields with meter edit)",
        ));
    }
    if *cmd == "edit" && flags.given.is_empty() && flags.measures.is_empty() && !flags.has_preset()
    {
        return Err(usage(format!(
            "meter edit {:?}: nothing to change: {line}",
            rest[0]
        )));
    }
    Ok(())
}

/// `meter presets`: each make's settings and where they come from.
fn print_presets() -> ExitCode {
    let mut lines = Vec::new();
    for p in dlms_bridge::config::presets::PRESETS {
        lines.push(format!("{}: {}", p.name, p.make));
        let mut sets: Vec<String> = p
            .fields
            .iter()
            .map(|(f, v)| {
                let flag = fields::find(f).map_or(*f, |x| x.flag);
                format!("--{flag} {v}")
            })
            .collect();
        if let Some(c) = p.channel {
            sets.push(format!("measurements on OBIS channel B={c}"));
        }
        if p.physical_from_serial.is_some() {
            sets.push("--server-physical from --meter-serial (its last 4 digits)".into());
        }
        lines.push(format!("  sets: {}", sets.join(", ")));
        lines.push(format!("  source: {}", p.source));
    }
    lines.push("Flags given with --preset win over the preset's.".into());
    let _ = super::write_lines(&lines);
    ExitCode::SUCCESS
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListFormat {
    Json,
    Table,
}

fn list_json(m: &MeterConfig) -> String {
    json!({"id": m.id, "name": m.name, "enabled": m.enabled,
           "endpoint": m.endpoint_text(), "transport": word_of(m.transport),
           "interval_s": m.interval_s, "auth": word_of(m.auth),
           "measurements": m.measurements.len()})
    .to_string()
}

/// `meter list` for people: one aligned row per meter.
fn list_table(meters: &[MeterConfig]) -> Vec<String> {
    let mut rows =
        vec![["NAME", "ID", "ENABLED", "ENDPOINT", "INTERVAL", "AUTH"].map(String::from)];
    for m in meters {
        let endpoint = match (m.endpoint_text(), m.push) {
            (e, _) if !e.is_empty() => e,
            (_, dlms_bridge::config::values::Push::Tcp) => "(push over TCP)".to_string(),
            _ => "-".to_string(),
        };
        rows.push([
            m.name.clone(),
            m.id.map_or_else(|| "-".into(), |id| id.to_string()),
            if m.enabled { "yes" } else { "no" }.to_string(),
            endpoint,
            format!("{} s", m.interval_s),
            word_of(m.auth).to_string(),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut lines: Vec<String> = rows
        .iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - cell.chars().count())))
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect();
    if meters.is_empty() {
        lines = vec!["no meters (dlms-bridge meter add NAME --host H --port P)".to_string()];
    }
    lines
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
                print!("{}", settings::help_lines());
                return Ok(ExitCode::SUCCESS);
            }
            Value(v) => pos.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let pos: Vec<&str> = pos.iter().map(String::as_str).collect();
    check_settings_command(&pos)?;
    let mut store = match open(&db) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
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
        ["get", key] => match store.settings() {
            Ok(s) => Ok(print(&setting(key)?.shown(&s))),
            Err(e) => done(Err::<(), _>(e)),
        },
        ["set", key, value] => {
            setting(key)?;
            match store.set_setting(key, value) {
                // The value given was refused: a usage error, like a bad meter flag.
                Err(StoreError::Invalid(m)) => Err(usage(m)),
                r => done(r),
            }
        }
        _ => unreachable!("checked by check_settings_command"),
    }
}

const SETTINGS_COMMANDS: &[(&str, &str, usize)] =
    &[("show", "", 0), ("get", "KEY", 1), ("set", "KEY VALUE", 2)];

fn check_settings_command(pos: &[&str]) -> Result<(), UsageError> {
    let Some((cmd, rest)) = pos.split_first() else {
        return Ok(());
    };
    let names = || SETTINGS_COMMANDS.iter().map(|(c, _, _)| *c);
    let Some((_, takes, n)) = SETTINGS_COMMANDS.iter().find(|(c, _, _)| c == cmd) else {
        return Err(usage(format!(
            "unknown settings command {cmd:?}{}; commands: show, get KEY, set KEY VALUE",
            did_you_mean(cmd, names())
        )));
    };
    if rest.len() != *n {
        let line = format!("dlms-bridge settings {cmd} {takes}");
        return Err(usage(match (n, rest.len()) {
            (0, _) => format!(
                "settings {cmd} takes nothing after it; got {:?}",
                rest.join(" ")
            ),
            (_, k) if k < *n => format!("settings {cmd} needs {takes}: {}", line.trim_end()),
            _ => format!(
                "settings {cmd} takes {takes}; got {} words (quote a value with spaces): {}",
                rest.len(),
                line.trim_end()
            ),
        }));
    }
    if let Some(key) = rest.first() {
        setting(key)?;
    }
    Ok(())
}

/// A setting by key, or a usage error naming the key, the nearest key and every key.
fn setting(key: &str) -> Result<&'static Setting, UsageError> {
    settings::find(key).ok_or_else(|| {
        let keys = || settings::SETTINGS.iter().map(|s| s.key);
        usage(format!(
            "unknown setting {key:?}{}; known: {}",
            did_you_mean(key, keys()),
            keys().collect::<Vec<_>>().join(", ")
        ))
    })
}
