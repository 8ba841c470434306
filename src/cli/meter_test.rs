//! `dlms-bridge meter test NAME`: one association and one read of a stored meter with its
//! stored secrets, so that checking a meter does not mean typing its password and keys into
//! `read` (issue 25). Secured meters take their invocation counters from the database's
//! reservations, as the bridge does: a counter is never used twice.

use dlms_bridge::bridge::meter::counter::CounterLease;
use dlms_bridge::client::json;
use dlms_bridge::client::reads::{self, ScalerCache};
use dlms_bridge::client::trace::{StderrTrace, Tracer};
use dlms_bridge::config::MeterConfig;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

/// `trace`: every frame on stderr (`--trace`).
pub fn run(meter: &MeterConfig, db: &Path, trace: bool) -> ExitCode {
    if meter.protocol == dlms_bridge::config::values::Protocol::ModeC {
        return super::read_mode_c::meter_test(meter);
    }
    let name = &meter.name;
    let Some(base) = meter.target() else {
        eprintln!("dlms-bridge: meter {name:?}: its configuration does not describe a meter it can reach (meter show {name:?})");
        return ExitCode::FAILURE;
    };
    let mut target = match dlms_bridge::config::fresh_association(&base, meter.dedicated_key) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("dlms-bridge: meter {name:?}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if trace {
        target.trace = Tracer::to(StderrTrace::new());
    }
    if let Some(sec) = target.session.security.as_mut() {
        let lease = CounterLease::new(name, &sec.keys, db.to_path_buf());
        if let Err(e) = lease.attach(sec, 0) {
            eprintln!("dlms-bridge: meter {name:?}: {e}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!(
        "dlms-bridge: meter {name:?}: associating with {} ...",
        target.endpoint
    );
    let mut conn = match target.connect() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dlms-bridge: meter {name:?}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let targets = meter.measurement_targets();
    let mut cache = ScalerCache::default();
    let values = reads::read_values(&mut conn, &targets, &mut cache);
    conn.release();
    let values = match values {
        Ok(v) => v,
        Err(e) => {
            eprintln!("dlms-bridge: meter {name:?}: associated, but the read failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = 0;
    let mut lines = Vec::new();
    for (m, v) in meter.measurements.iter().zip(values) {
        match v {
            Ok(v) => {
                let (value, unit) = json::value(&v);
                lines.push(
                    json!({"key": m.key, "obis": m.obis.to_string(), "value": value, "unit": unit})
                        .to_string(),
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("dlms-bridge: meter {name:?}: {} ({}): {e}", m.key, m.obis);
            }
        }
    }
    let _ = super::write_lines(&lines);
    eprintln!(
        "dlms-bridge: meter {name:?}: association ok, {} of {} values read",
        meter.measurements.len() - failed,
        meter.measurements.len()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
