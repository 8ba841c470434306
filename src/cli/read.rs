//! `dlms-bridge read`: reads values, a profile, or the object list from one meter and prints
//! one JSON object per line on stdout; errors go to stderr, one line each.

use super::args::{parse_num, usage, AfterYesNo, MeterFlags, UsageError};
use dlms_bridge::client::json;
use dlms_bridge::client::reads::{self, RowSelection, ScalerCache, Target};
use dlms_bridge::client::{ClientError, MeterTarget};
use dlms_bridge::config::meter::parse_object;
use dlms_bridge::config::values::Protocol;
use dlms_bridge::config::MeterConfig;
use dlms_bridge::cosem::Obis;
use dlms_bridge::dlms::axdr::{format_rfc3339, parse_rfc3339, DateTime};
use lexopt::prelude::*;
use serde_json::{json, Map, Value as Json};
use std::process::ExitCode;

fn help() -> String {
    format!(
        "\
dlms-bridge read --host HOST --port PORT [--transport hdlc|wrapper] OBIS[:CLASS:ATTRIBUTE] ...
dlms-bridge read --serial DEVICE [--mode-e] OBIS ...
dlms-bridge read --serial DEVICE|--host HOST --port PORT --protocol mode-c [OBIS ...]
dlms-bridge read ... --profile OBIS [--from 2026-11-24T00:00:00Z --to 2026-11-24T06:00:00Z]
dlms-bridge read ... --list-objects
dlms-bridge read ... --set-clock now|2026-11-24T06:00:00Z

  OBIS defaults to CLASS:ATTRIBUTE 3:2 (register value, scaled by its scaler_unit)
  --protocol mode-c takes an IEC 62056-21 readout: the OBIS codes given, or all of it
  --retries N                reconnects on time-outs and broken links (default 2)
  --invocation-counter N     first counter to use with --security (default: the time in seconds)
  --trace                    every frame sent and received on stderr: ms, direction, hex, decoded
meter flags, as for `meter add` (the same defaults):
{}",
        super::args::meter_flags_help(&[
            "name",
            "enabled",
            "interval_s",
            "inactivity_timeout_s",
            "device_type",
            "access_token"
        ])
    )
}

enum Mode {
    Values(Vec<Target>),
    Profile { obis: Obis, selection: RowSelection },
    ListObjects,
    SetClock(i64),
}

/// `OBIS[:CLASS:ATTRIBUTE]`
fn parse_target(s: &str) -> Result<Target, UsageError> {
    let (obis, class, attribute) = parse_object(s).map_err(usage)?;
    Ok(Target::new(class, obis, attribute))
}

pub fn run(mut parser: lexopt::Parser) -> Result<ExitCode, UsageError> {
    let mut flags = MeterFlags::anonymous(
        MeterConfig {
            name: "read".into(),
            ..MeterConfig::default()
        },
        AfterYesNo::LeaveForNext,
    );
    let (mut retries, mut invocation_counter, mut trace) = (2u32, None, false);
    let mut targets = Vec::new();
    let (mut profile, mut from, mut to, mut list, mut set_clock) = (None, None, None, false, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("retries") => retries = parse_num("--retries", parser.value()?)?,
            Long("invocation-counter") => {
                invocation_counter =
                    Some(parse_num::<u32>("--invocation-counter", parser.value()?)?)
            }
            Long("profile") => profile = Some(parser.value()?.string()?),
            Long("from") => from = Some(parser.value()?.string()?),
            Long("to") => to = Some(parser.value()?.string()?),
            Long("list-objects") => list = true,
            Long("trace") => trace = true,
            Long("set-clock") => set_clock = Some(parser.value()?.string()?),
            Long("help") | Short('h') => {
                print!("{}", help());
                return Ok(ExitCode::SUCCESS);
            }
            Long(name) => {
                let name = name.to_string();
                if !flags.take(&name, &mut parser)? {
                    return Err(usage(format!("--{name} is not a read option")));
                }
            }
            Value(v) => targets.push(parse_target(&v.string()?)?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let time = |flag: &str, s: Option<String>| -> Result<Option<i64>, UsageError> {
        s.map(|s| {
            parse_rfc3339(&s)
                .ok_or_else(|| usage(format!("{flag}: {s:?} is not YYYY-MM-DDTHH:MM:SSZ")))
        })
        .transpose()
    };
    let (from, to) = (time("--from", from)?, time("--to", to)?);
    let modes = usize::from(!targets.is_empty())
        + usize::from(profile.is_some())
        + usize::from(list)
        + usize::from(set_clock.is_some());
    // A readout meter (--protocol mode-c) without OBIS codes prints its whole readout.
    if modes != 1 && !(modes == 0 && flags.was_given("protocol")) {
        return Err(usage(
            "give OBIS codes, or --profile, or --list-objects, or --set-clock (one of them)",
        ));
    }
    let mode = if let Some(p) = profile {
        let obis = p.parse::<Obis>().map_err(|e| usage(e.to_string()))?;
        let selection = match (from, to) {
            (None, None) => RowSelection::All,
            (Some(f), Some(t)) if f <= t => RowSelection::Range(f, t),
            (Some(_), Some(_)) => return Err(usage("--from is after --to")),
            _ => return Err(usage("--from and --to go together")),
        };
        Mode::Profile { obis, selection }
    } else if list {
        Mode::ListObjects
    } else if let Some(c) = set_clock {
        let t = if c == "now" {
            now()
        } else {
            time("--set-clock", Some(c))?.unwrap_or_default()
        };
        Mode::SetClock(t)
    } else {
        Mode::Values(targets)
    };
    if from.is_some() && !matches!(mode, Mode::Profile { .. }) {
        return Err(usage("--from/--to apply to --profile"));
    }
    let meter = flags.finish()?;
    match (&mode, meter.protocol) {
        (Mode::Values(targets), Protocol::ModeC) => {
            return Ok(super::read_mode_c::read(&meter, targets, retries))
        }
        (_, Protocol::ModeC) => return Err(usage("--protocol mode-c reads OBIS codes only")),
        (Mode::Values(t), Protocol::Dlms) if t.is_empty() => {
            return Err(usage("give the OBIS codes to read"))
        }
        _ => {}
    }
    let dedicated_key = meter.dedicated_key;
    let base = meter
        .target()
        .ok_or_else(|| usage("the meter flags do not describe a meter"))?;
    let mut target = dlms_bridge::config::fresh_association(&base, dedicated_key)
        .map_err(|e| usage(e.to_string()))?;
    if trace {
        target.trace =
            dlms_bridge::client::Tracer::to(dlms_bridge::client::trace::StderrTrace::new());
    }
    if let Some(sec) = &target.session.security {
        // Without a stored counter, the time in seconds is a counter that never goes back
        // between runs (at most one run per second; the bridge persists its counters).
        let first =
            invocation_counter.unwrap_or_else(|| now().clamp(1, i64::from(u32::MAX)) as u32);
        sec.invocation_counter
            .store(first, std::sync::atomic::Ordering::SeqCst);
    }
    if let (Some(obis), Some(sec)) = (meter.frame_counter, &target.session.security) {
        match dlms_bridge::client::frame_counter::next_counter_from_meter(&target, obis) {
            Ok(next) => {
                sec.invocation_counter
                    .fetch_max(next, std::sync::atomic::Ordering::SeqCst);
            }
            Err(e) => return Ok(fail(&target, e)),
        }
    }
    Ok(execute(&target, retries, mode))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn fail(target: &MeterTarget, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("dlms-bridge: {}: {e}", target.endpoint);
    ExitCode::FAILURE
}

/// The pause before the first retry (the second waits twice as long).
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);

/// Connects, reads, releases; retried as a whole on transient errors. Output is printed only
/// once an attempt has succeeded, so a retry never prints a line twice.
fn execute(target: &MeterTarget, retries: u32, mode: Mode) -> ExitCode {
    let mut attempt = 0;
    loop {
        match collect(target, &mode) {
            Ok((lines, errors)) => {
                if super::write_lines(&lines).is_err() {
                    // stdout closed (e.g. piped into `head`): nothing left to tell anyone.
                    return ExitCode::SUCCESS;
                }
                for e in &errors {
                    eprintln!("dlms-bridge: {e}");
                }
                return if errors.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                };
            }
            Err(e) if e.is_transient() && attempt < retries => {
                attempt += 1;
                // Said, and paused: a silent meter took 30 s before with no word, and
                // immediate retries meet a meter that is still busy with the last one.
                let pause = RETRY_PAUSE * attempt;
                eprintln!(
                    "dlms-bridge: {}: attempt {attempt} of {}: {e}; trying again in {} s",
                    target.endpoint,
                    retries + 1,
                    pause.as_secs()
                );
                std::thread::sleep(pause);
            }
            Err(e) => return fail(target, e),
        }
    }
}

/// One attempt: the JSON lines and the per-item errors.
fn collect(target: &MeterTarget, mode: &Mode) -> Result<(Vec<String>, Vec<String>), ClientError> {
    let mut conn = target.connect()?;
    if let Some(advice) = conn.default_link_advice(None) {
        eprintln!("dlms-bridge: {advice}");
    }
    let mut cache = ScalerCache::default();
    let (mut lines, mut errors) = (Vec::new(), Vec::new());
    match mode {
        Mode::Values(targets) => {
            let values = reads::read_values(&mut conn, targets, &mut cache)?;
            for (t, v) in targets.iter().zip(values) {
                match v {
                    Ok(v) => lines.push(json::reading(t, &v).to_string()),
                    Err(e) => {
                        errors.push(format!("{} {}:{}: {e}", t.obis, t.class_id, t.attribute))
                    }
                }
            }
        }
        Mode::Profile { obis, selection } => {
            match reads::read_profile(&mut conn, *obis, *selection, &mut cache)? {
                Ok(profile) => {
                    for row in profile.rows {
                        let mut fields = Map::new();
                        fields.insert(
                            "ts".into(),
                            row.timestamp
                                .map_or(Json::Null, |t| json!(format_rfc3339(t))),
                        );
                        for (col, value) in &row.values {
                            fields.insert(col.instance.to_string(), json::value(value).0);
                        }
                        lines.push(json!({"obis": obis.to_string(), "row": fields}).to_string());
                    }
                }
                Err(e) => errors.push(format!("{obis} 7:2: {e}")),
            }
        }
        Mode::ListObjects => match reads::list_objects(&mut conn)? {
            Ok(objects) => {
                for o in objects {
                    lines.push(json!({"obis": o.obis.to_string(), "class": o.class_id, "version": o.version}).to_string());
                }
            }
            Err(e) => errors.push(format!("object list: {e}")),
        },
        Mode::SetClock(t) => {
            reads::set_clock(&mut conn, DateTime::from_unix(*t, 0))?;
            lines.push(json!({"obis": "0-0:1.0.0*255", "class": 8, "attribute": 2, "value": format_rfc3339(*t)}).to_string());
        }
    }
    conn.release();
    Ok((lines, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_with_and_without_class() {
        let t = parse_target("1-0:32.7.0*255").unwrap();
        assert_eq!((t.class_id, t.attribute), (3, 2));
        let t = parse_target("0-0:1.0.0*255:8:2").unwrap();
        assert_eq!(
            (t.class_id, t.obis.to_string().as_str(), t.attribute),
            (8, "0-0:1.0.0*255", 2)
        );
        let t = parse_target("1.0.32.7.0.255:3:3").unwrap();
        assert_eq!(t.attribute, 3);
        assert!(parse_target("1-0:32.7.0*255:x:2").is_err());
        assert!(parse_target("nonsense").is_err());
    }
}
