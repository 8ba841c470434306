//! `dlms-bridge read` and `meter test` on a `protocol mode-c` meter: one IEC 62056-21 data
//! readout, printed as JSON lines (the OBIS codes asked for, or every data set).

use dlms_bridge::client::mode_c::{self, Readout};
use dlms_bridge::client::reads::Target;
use dlms_bridge::client::ClientError;
use dlms_bridge::config::MeterConfig;
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

/// The pause before the first retry (the second waits twice as long), as `read` does.
const RETRY_PAUSE: Duration = Duration::from_secs(2);

/// One readout, retried as a whole on transient errors (a bad BCC, a time-out).
fn readout(meter: &MeterConfig, retries: u32, who: &str) -> Result<Readout, ClientError> {
    let endpoint = meter.target().map(|t| t.endpoint).ok_or_else(|| {
        ClientError::Io(std::io::Error::other(
            "the meter flags do not describe a meter",
        ))
    })?;
    let options = meter.readout_options();
    let mut attempt = 0;
    loop {
        match mode_c::read(&endpoint, &options) {
            Err(e) if e.is_transient() && attempt < retries => {
                attempt += 1;
                let pause = RETRY_PAUSE * attempt;
                eprintln!(
                    "dlms-bridge: {who}: attempt {attempt} of {}: {e}; trying again in {} s",
                    retries + 1,
                    pause.as_secs()
                );
                std::thread::sleep(pause);
            }
            other => return other,
        }
    }
}

/// `read --protocol mode-c [OBIS ...]`: the codes asked for (each missing one an error), or
/// with none every data set of the readout, its address as sent beside the OBIS code.
pub fn read(meter: &MeterConfig, targets: &[Target], retries: u32) -> ExitCode {
    let who = meter.endpoint_text();
    let readout = match readout(meter, retries, &who) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dlms-bridge: {who}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut lines = Vec::new();
    let mut failed = false;
    if targets.is_empty() {
        for set in &readout.data_sets {
            let (value, unit) = set
                .reading()
                .map(|r| mode_c::reading_json(&r))
                .unwrap_or_default();
            lines.push(
                json!({"obis": set.obis().map(|o| o.to_string()), "address": set.address,
                       "value": value, "unit": unit})
                .to_string(),
            );
        }
    } else {
        let wanted: Vec<(String, _)> = targets
            .iter()
            .map(|t| (t.obis.to_string(), t.obis))
            .collect();
        let picked = mode_c::pick(
            &readout.data_sets,
            wanted.iter().map(|(k, o)| (k.as_str(), *o)),
        );
        for (obis, found) in picked {
            match found {
                Some((value, unit)) => {
                    lines.push(json!({"obis": obis, "value": value, "unit": unit}).to_string())
                }
                None => {
                    eprintln!("dlms-bridge: {who}: {obis}: not in the meter's readout");
                    failed = true;
                }
            }
        }
    }
    let _ = super::write_lines(&lines);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `meter test NAME` of a readout meter: its measurements from one readout.
pub fn meter_test(meter: &MeterConfig) -> ExitCode {
    let name = &meter.name;
    eprintln!(
        "dlms-bridge: meter {name:?}: IEC 62056-21 readout from {} ...",
        meter.endpoint_text()
    );
    let readout = match readout(meter, 0, &format!("meter {name:?}")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dlms-bridge: meter {name:?}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let wanted = meter.measurements.iter().map(|m| (m.key.as_str(), m.obis));
    let mut lines = Vec::new();
    let mut failed = 0;
    for ((key, found), m) in mode_c::pick(&readout.data_sets, wanted)
        .into_iter()
        .zip(&meter.measurements)
    {
        match found {
            Some((value, unit)) => lines.push(
                json!({"key": key, "obis": m.obis.to_string(), "value": value, "unit": unit})
                    .to_string(),
            ),
            None => {
                failed += 1;
                eprintln!(
                    "dlms-bridge: meter {name:?}: {key} ({}): not in the meter's readout",
                    m.obis
                );
            }
        }
    }
    let _ = super::write_lines(&lines);
    let id = &readout.identification;
    eprintln!(
        "dlms-bridge: meter {name:?}: readout ok (/{}{}{}, {} data sets), {} of {} values read",
        id.manufacturer,
        char::from(id.baud_char),
        id.ident,
        readout.data_sets.len(),
        meter.measurements.len() - failed,
        meter.measurements.len()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
