//! A pushed notification taken for a meter becomes a reading: the same for a meter on a serial
//! HAN port (its own thread) and for meters pushing to the TCP listener.

use crate::bridge::event::{Event, Reading};
use crate::client::json;
use crate::client::push::Pushed;
use crate::clock::now_ms;
use crate::config::MeterConfig;
use crate::cosem::Obis;
use crate::log_throttle::{suppressed, Throttle};
use crate::status::state::{MeterState, Status};
use crossbeam_channel::Sender;
use log::warn;
use serde_json::Map;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Warnings of notifications stamped far from the gateway's clock, per meter.
fn skew_warnings() -> &'static Mutex<Throttle<String>> {
    static WARNINGS: OnceLock<Mutex<Throttle<String>>> = OnceLock::new();
    WARNINGS.get_or_init(|| Mutex::new(Throttle::new(Duration::from_secs(600))))
}

/// The time a reading is stamped with: the notification's own, unless the gateway's clock is
/// trusted and the two differ by more than `max_skew_s` (a meter with a flat RTC battery, or a
/// plain sender choosing its own date): then the gateway's, said in the log. `None`: no time
/// to give it (no date-time in it and the gateway's clock not set).
pub fn stamp(
    meter: &str,
    time_s: Option<i64>,
    now_ms: i64,
    trusted: bool,
    max_skew_s: u64,
) -> Option<i64> {
    match time_s {
        Some(t) if trusted && max_skew_s > 0 && (t * 1000).abs_diff(now_ms) > max_skew_s * 1000 => {
            let mut w = skew_warnings().lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = w.allow(meter.to_string(), Instant::now()) {
                warn!(
                    "push: meter {meter:?}: its notification's date-time is {} s from the gateway's clock (push.max_clock_skew_s {max_skew_s}): stamped with the gateway's time{}",
                    ((t * 1000).abs_diff(now_ms)) / 1000,
                    suppressed(n)
                );
            }
            Some(now_ms)
        }
        Some(t) => Some(t * 1000),
        None if trusted => Some(now_ms),
        None => None,
    }
}

/// Sends the reading (stamped as [`stamp`] says, else not at all) and records it in the
/// status; `false` when the bridge is stopping.
pub fn deliver(
    meter: &MeterConfig,
    status: &Status,
    events: &Sender<Event>,
    pushed: Pushed,
    max_skew_s: u64,
) -> bool {
    let now = now_ms();
    let trusted = status.gateway_clock.trusted(now);
    let Some(ts_ms) = stamp(&meter.name, pushed.time_s, now, trusted, max_skew_s) else {
        return true;
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
        // When it was heard, not the time it carries: a meter whose clock is behind (or a
        // list stamped at the start of its period) read as silent for that long, and the
        // offline alarm rose just after a push (issue 25).
        m.last_success_ms = Some(now);
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

/// The receive side of a pushing meter: its keys, its template, whether its security needs
/// authenticated notifications, and replay protection from `last_counter` on.
pub fn receiver_for(
    meter: &MeterConfig,
    last_counter: Option<u32>,
) -> crate::client::push::Receiver {
    use crate::config::values::Ciphering;
    crate::client::push::Receiver::new(keys_of(meter), template_of(meter), meter.utc_offset_min)
        .requiring_authentication(matches!(
            meter.security,
            Ciphering::Auth | Ciphering::AuthEnc
        ))
        .with_last_counter(last_counter)
}

/// The name a meter's last taken invocation counter is kept under (in the counters table),
/// per expected system title: a replaced meter (another title) starts afresh.
pub fn counter_name(meter: &MeterConfig) -> String {
    let title = meter
        .system_title
        .map_or_else(|| "any".to_string(), |t| crate::hex::encode(&t));
    format!("push_invocation_counter/{}/{title}", meter.name)
}

/// A meter's push template (checked when it was configured).
pub fn template_of(meter: &MeterConfig) -> Vec<crate::client::push::Slot> {
    meter
        .push_template
        .as_deref()
        .and_then(|t| crate::client::push::parse_template(t).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::stamp;

    #[test]
    fn a_push_counts_as_heard_now_whatever_time_it_carries() {
        let status = crate::status::state::Status::default();
        let (tx, rx) = crossbeam_channel::unbounded();
        let meter = crate::config::MeterConfig::tcp("P", "127.0.0.1", 1);
        let now = crate::clock::now_ms();
        let pushed = crate::client::push::Pushed {
            time_s: Some(now / 1000 - 250),
            values: Vec::new(),
        };
        assert!(super::deliver(&meter, &status, &tx, pushed, 300));
        assert!(rx.try_recv().is_ok());
        let heard = status.meter("P").and_then(|m| m.last_success_ms).unwrap();
        assert!(
            heard >= now,
            "last success {heard} is the reading's time, not now ({now})"
        );
    }

    /// Issue 24 item 6: a date-time far from a trusted gateway clock is not believed.
    #[test]
    fn a_notification_far_from_the_gateways_clock_is_stamped_with_the_gateways_time() {
        let now = 1_800_000_000_000;
        assert_eq!(
            stamp("m", Some(1_800_000_100), now, true, 300),
            Some(1_800_000_100_000)
        );
        assert_eq!(stamp("m", Some(4_000_000_000), now, true, 300), Some(now));
        assert_eq!(stamp("m", Some(1_000_000_000), now, true, 300), Some(now));
        assert_eq!(
            stamp("m", Some(1_000_000_000), now, true, 0),
            Some(1_000_000_000_000),
            "0: off"
        );
        assert_eq!(
            stamp("m", Some(1_000_000_000), now, false, 300),
            Some(1_000_000_000_000),
            "no trusted clock to compare"
        );
        assert_eq!(stamp("m", None, now, false, 300), None);
        assert_eq!(stamp("m", None, now, true, 300), Some(now));
    }
}
