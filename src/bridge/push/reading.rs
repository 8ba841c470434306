//! A pushed notification taken for a meter becomes a reading: the same for a meter on a serial
//! HAN port (its own thread) and for meters pushing to the TCP listener.

use crate::bridge::event::{Event, Reading};
use crate::client::json;
use crate::client::push::Pushed;
use crate::clock::now_ms;
use crate::config::MeterConfig;
use crate::cosem::Obis;
use crate::status::state::{MeterState, Status};
use crossbeam_channel::Sender;
use serde_json::Map;

/// Sends the reading (stamped with the notification's own time, else the gateway's when its
/// clock is set, else not at all) and records it in the status; `false` when the bridge is
/// stopping.
pub fn deliver(
    meter: &MeterConfig,
    status: &Status,
    events: &Sender<Event>,
    pushed: Pushed,
) -> bool {
    let now = now_ms();
    let ts_ms = match pushed.time_s {
        Some(t) => t * 1000,
        None if status.gateway_clock.trusted(now) => now,
        None => return true,
    };
    let mut map = Map::new();
    for (obis, v) in pushed.values {
        map.insert(key_for(meter, obis), json::value(&v).0);
    }
    let latest = map.clone();
    if events
        .send(Event::Reading(Reading {
            device: meter.name.clone(),
            ts_ms,
            values: map,
        }))
        .is_err()
    {
        return false;
    }
    status.record_history(&meter.name, ts_ms, &latest);
    status.update_meter(&meter.name, |m| {
        m.state = MeterState::Polling;
        m.cycles += 1;
        m.successes += 1;
        m.consecutive_failures = 0;
        m.readings_sent += 1;
        m.last_success_ms = Some(ts_ms);
        m.last_values = latest;
        m.last_error = None;
    });
    true
}

/// A refused notification in the meter's status (replays count as stale frames).
pub fn refused(meter: &str, status: &Status, e: &crate::client::push::PushError) {
    status.update_meter(meter, |m| {
        m.cycles += 1;
        m.failures += 1;
        m.note_error(e.to_string());
        if matches!(e, crate::client::push::PushError::Replayed { .. }) {
            m.net.stale += 1;
        }
    });
}

/// The telemetry key of a pushed OBIS code: the meter's measurement for it (value group B, the
/// channel, may differ: HAN lists use 1-1:, measurements 1-0:), else the bridge's name for it,
/// else the code.
pub fn key_for(meter: &MeterConfig, obis: Obis) -> String {
    let same_quantity = |a: Obis, b: Obis| {
        let (mut x, mut y) = (a.0, b.0);
        x[1] = 0;
        y[1] = 0;
        x == y
    };
    meter
        .measurements
        .iter()
        .find(|m| m.obis == obis)
        .or_else(|| {
            meter
                .measurements
                .iter()
                .find(|m| same_quantity(m.obis, obis))
        })
        .map(|m| m.key.clone())
        .or_else(|| crate::config::profile::well_known_key(obis).map(str::to_string))
        .unwrap_or_else(|| obis.to_string())
}

/// The keys and expected system title of a meter's ciphered notifications.
pub fn keys_of(meter: &MeterConfig) -> Option<(crate::dlms::security::Keys, Option<[u8; 8]>)> {
    match (&meter.encryption_key, &meter.authentication_key) {
        (Some(ek), Some(ak)) => Some((
            crate::dlms::security::Keys {
                block_cipher: ek.0,
                authentication: ak.0,
            },
            meter.system_title,
        )),
        _ => None,
    }
}

/// A meter's push template (checked when it was configured).
pub fn template_of(meter: &MeterConfig) -> Vec<crate::client::push::Slot> {
    meter
        .push_template
        .as_deref()
        .and_then(|t| crate::client::push::parse_template(t).ok())
        .unwrap_or_default()
}
