//! `dlms-bridge meter test NAME`: one association and one read of a stored meter with its
//! stored secrets, so that checking a meter does not mean typing its password and keys into
//! `read` (issue 25). Secured meters take their invocation counters from the database's
//! reservations, as the bridge does: a counter is never used twice.

use dlms_bridge::bridge::meter::counter::CounterLease;
use dlms_bridge::client::json;
use dlms_bridge::client::reads::{self, ScalerCache};
use dlms_bridge::client::trace::{StderrTrace, Tracer};
use dlms_bridge::config::MeterConfig;
use dlms_bridge::store::auth_refusals::AuthRefusal;
use dlms_bridge::store::Store;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

/// Why these credentials are not to be tried now: the meter refused exactly them less than
/// `meter.auth_retry_s` ago (by the bridge or an earlier `meter test`).
fn refused_lately(meter: &MeterConfig, store: &Store) -> Option<String> {
    let refusal = store.auth_refusal(&meter.name).ok()??;
    let retry_s = store.settings().map_or(3600, |s| s.auth_retry_s);
    let ago_s = (dlms_bridge::clock::now_ms() - refusal.at_ms).max(0) / 1000;
    (refusal.secret == meter.credentials_fingerprint() && (ago_s as u64) < retry_s).then(|| {
        format!(
            "the meter refused these credentials {ago_s} s ago ({}); many meters lock their password or port after 3 failed authentications, so meter test does not try them again for {} min: correct them with meter edit {:?} --password ... (or the keys), or pass --force",
            refusal.by,
            retry_s / 60,
            meter.name
        )
    })
}

/// `trace`: every frame on stderr (`--trace`). `force`: try credentials the meter refused
/// lately all the same (`--force`).
pub fn run(meter: &MeterConfig, store: &Store, db: &Path, trace: bool, force: bool) -> ExitCode {
    if meter.protocol == dlms_bridge::config::values::Protocol::ModeC {
        return super::read_mode_c::meter_test(meter);
    }
    let name = &meter.name;
    if let Some(why) = refused_lately(meter, store).filter(|_| !force) {
        eprintln!("dlms-bridge: meter {name:?}: {why}");
        return ExitCode::FAILURE;
    }
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
            if e.refuses_configuration() {
                if let Err(e) =
                    store.record_auth_refusal(name, &AuthRefusal::now(meter, "meter test"))
                {
                    eprintln!("dlms-bridge: meter {name:?}: the refusal was not recorded: {e}");
                }
                eprintln!("dlms-bridge: meter {name:?}: not tried again by meter test (without --force) until its credentials change (meter edit) or meter.auth_retry_s passes: many meters lock after 3 failed authentications");
            }
            return ExitCode::FAILURE;
        }
    };
    // These credentials work: a refusal on record is history.
    let _ = store.clear_auth_refusal(name);
    if let Some(advice) = conn.default_link_advice(Some(name)) {
        eprintln!("dlms-bridge: meter {name:?}: {advice}");
    }
    let referencing = if conn.short_names().is_some() {
        "short names"
    } else {
        "logical names"
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
        "dlms-bridge: meter {name:?}: association ok ({referencing}), {} of {} values read",
        meter.measurements.len() - failed,
        meter.measurements.len()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
