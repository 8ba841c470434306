//! The meter's clock (class 8, 0-0:1.0.0*255, Blue Book 4.5.1): read on each new association
//! and every `clock.check_interval_s`; the drift (meter minus gateway, seconds) goes out as
//! telemetry `clock_drift_s`. With the meter's `clock_sync_threshold_s`, a drift larger than
//! that sets the meter's clock (attribute 2, SET), at most once per check interval, logged
//! with the time before and after; a meter that refuses is reported, not asked again before
//! the next check.

use crate::client::reads;
use crate::client::{ClientError, Connection, Transport};
use crate::config::MeterConfig;
use crate::dlms::axdr::{format_rfc3339, DateTime, DEVIATION_NOT_SPECIFIED};
use log::{info, warn};
use std::time::{Duration, Instant};

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockCheck {
    /// Meter minus gateway, seconds (after a sync: the drift that was found).
    pub drift_s: i64,
    /// The meter's time (Unix seconds), for a gateway that does not trust its own clock.
    pub meter_now_s: i64,
    /// The clock was set, and the drift after it.
    pub synced_to: Option<i64>,
}

#[derive(Debug, Default)]
pub struct MeterClock {
    next: Option<Instant>,
    /// The last attempt to set the clock: at most one per check interval, however often
    /// associations (and so clock reads) come.
    last_sync: Option<Instant>,
}

/// The date-time to write for `now_s` to a meter: UTC with deviation 0, or, for a meter that
/// keeps local time without a deviation (`utc_offset_min` set), its local time without one.
pub fn meter_time(now_s: i64, utc_offset_min: i16) -> DateTime {
    if utc_offset_min == 0 {
        return DateTime::from_unix(now_s, 0);
    }
    let mut d = DateTime::from_unix(now_s + i64::from(utc_offset_min) * 60, 0);
    d.deviation = DEVIATION_NOT_SPECIFIED;
    d
}

impl MeterClock {
    /// A new association: check at once.
    pub fn association_opened(&mut self) {
        self.next = None;
    }

    pub fn due(&self, now: Instant) -> bool {
        self.next.is_none_or(|t| t <= now)
    }

    /// Reads the clock if a check is due (and sets it when the meter's threshold says so).
    /// `Ok(None)`: not due, or the meter has no readable clock (logged).
    pub fn check<T: Transport>(
        &mut self,
        conn: &mut Connection<T>,
        config: &MeterConfig,
        interval: Duration,
        gateway_now_s: impl Fn() -> i64,
    ) -> Result<Option<ClockCheck>, ClientError> {
        let now = Instant::now();
        if !self.due(now) {
            return Ok(None);
        }
        self.next = Some(now + interval);
        let name = &config.name;
        let read = |conn: &mut Connection<T>| -> Result<Option<i64>, ClientError> {
            Ok(match reads::read_clock(conn)? {
                Ok(t) => t.to_unix_local(config.utc_offset_min),
                Err(_) => None,
            })
        };
        let Some(meter_s) = read(conn)? else {
            warn!("meter {name:?}: its clock (0-0:1.0.0) cannot be read; no drift reported");
            return Ok(None);
        };
        let ours = gateway_now_s();
        let drift = meter_s - ours;
        let mut check = ClockCheck {
            drift_s: drift,
            meter_now_s: meter_s,
            synced_to: None,
        };
        let Some(threshold) = config.clock_sync_threshold_s else {
            return Ok(Some(check));
        };
        if drift.unsigned_abs() <= u64::from(threshold)
            || self.last_sync.is_some_and(|t| t.elapsed() < interval)
        {
            return Ok(Some(check));
        }
        self.last_sync = Some(Instant::now());
        let target = meter_time(gateway_now_s(), config.utc_offset_min);
        match reads::set_clock(conn, target) {
            Ok(()) => {
                let after = read(conn)?.map(|t| t - gateway_now_s());
                info!(
                    "meter {name:?}: clock set: it was {} ({drift:+} s), now {} ({} s); next check in {} s",
                    format_rfc3339(meter_s),
                    after.map_or("unreadable".into(), |a| format_rfc3339(gateway_now_s() + a)),
                    after.map_or("?".into(), |a| format!("{a:+}")),
                    interval.as_secs()
                );
                check.synced_to = after;
            }
            Err(why) if !why.is_transient() => warn!(
                "meter {name:?}: clock is {drift:+} s off (threshold {threshold} s) and the meter refused to be set: {why}; not retried before the next check in {} s",
                interval.as_secs()
            ),
            Err(e) => return Err(e),
        }
        Ok(Some(check))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_meters_are_written_local_time_without_deviation() {
        let t = 1_782_864_000;
        assert_eq!(meter_time(t, 0).to_unix(), Some(t));
        let local = meter_time(t, 60);
        assert_eq!(local.deviation, DEVIATION_NOT_SPECIFIED);
        assert_eq!(local.to_unix_local(60), Some(t));
    }
}
