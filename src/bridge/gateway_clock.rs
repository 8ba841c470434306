//! Whether the gateway's own clock can be believed. A Raspberry Pi has no real-time clock: it
//! boots with the time it last saved (or 1970) and jumps when NTP syncs. A reading stamped
//! with such a time is worse than none: it lands in the wrong place of every chart and bill.
//! The clock is not set when it is earlier than this binary's commit, or more than an hour
//! earlier than the newest reading time already stored. While it is not set, meter threads
//! stamp live readings with the meter's clock (read on the same association) or hold them
//! back, never sync a meter's clock, and leave profiles for the backfill once it is set.

use crate::dlms::axdr::format_rfc3339;
use log::{info, warn};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// How far the clock may be behind the newest stored reading (an NTP step back of seconds is
/// normal; an hour is a clock that was never set).
const BEHIND_NEWEST_MS: i64 = 3_600_000;

#[derive(Debug)]
pub struct GatewayClock {
    /// This binary's commit time (Unix ms).
    built_ms: i64,
    /// The newest reading time known to have been stamped by a good clock (Unix ms).
    newest_ms: AtomicI64,
    untrusted: AtomicBool,
}

impl GatewayClock {
    pub fn new(newest_stored_ms: i64) -> GatewayClock {
        let built_s: i64 = option_env!("DLMS_BRIDGE_BUILT_UNIX")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        GatewayClock::with_floor(built_s * 1000, newest_stored_ms)
    }

    pub fn with_floor(built_ms: i64, newest_stored_ms: i64) -> GatewayClock {
        GatewayClock {
            built_ms,
            newest_ms: AtomicI64::new(newest_stored_ms),
            untrusted: AtomicBool::new(false),
        }
    }

    /// Why `now_ms` cannot be right, if it cannot.
    pub fn doubt(&self, now_ms: i64) -> Option<String> {
        let newest = self.newest_ms.load(Ordering::Relaxed);
        if now_ms < self.built_ms {
            Some(format!(
                "the system time {} is before this build ({})",
                format_rfc3339(now_ms.div_euclid(1000)),
                format_rfc3339(self.built_ms / 1000)
            ))
        } else if now_ms < newest - BEHIND_NEWEST_MS {
            Some(format!(
                "the system time {} is more than an hour before the newest reading already stored ({})",
                format_rfc3339(now_ms.div_euclid(1000)),
                format_rfc3339(newest / 1000)
            ))
        } else {
            None
        }
    }

    /// Whether `now_ms` can stamp readings; says so in the log when that changes.
    pub fn trusted(&self, now_ms: i64) -> bool {
        let doubt = self.doubt(now_ms);
        let was = self.untrusted.swap(doubt.is_some(), Ordering::Relaxed);
        match (&doubt, was) {
            (Some(why), false) => warn!(
                "gateway clock not set: {why}; live readings take each meter's clock, profiles wait for the clock (then backfill)"
            ),
            (None, true) => info!(
                "gateway clock is set now ({}): readings are stamped with it again",
                format_rfc3339(now_ms / 1000)
            ),
            _ => {}
        }
        doubt.is_none()
    }

    /// A reading time stamped while the clock was trusted.
    pub fn observed(&self, ts_ms: i64) {
        self.newest_ms.fetch_max(ts_ms, Ordering::Relaxed);
    }

    pub fn newest_ms(&self) -> i64 {
        self.newest_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_before_the_build_or_an_hour_behind_the_newest_reading_is_not_set() {
        let built = 1_790_000_000_000;
        let c = GatewayClock::with_floor(built, 0);
        assert!(!c.trusted(86_400_000), "1970");
        assert!(c.doubt(86_400_000).unwrap().contains("before this build"));
        assert!(c.trusted(built + 1000));
        c.observed(built + 10 * 3_600_000);
        assert!(
            c.trusted(built + 9 * 3_600_000 + 1),
            "less than an hour behind"
        );
        let doubt = c.doubt(built + 8 * 3_600_000).unwrap();
        assert!(doubt.contains("more than an hour before"), "{doubt}");
    }
}
