//! A meter's poll cycle, pure: when to act, whether to connect or read, how failures back off
//! and when the breaker opens. The meter thread (`meter/mod.rs`) does the I/O it decides and reports
//! the outcome back; every rule here is tested without a meter or a clock.

use super::schedule::{Backoff, Breaker, Schedule};
use std::time::{Duration, Instant};

/// Consecutive failures before the worker backs off (before that it retries every slot).
pub const FAILURES_BEFORE_BACKOFF: u32 = 3;
/// Reconnects per hour that open the breaker, and how long it stays open.
pub const MAX_RECONNECTS_PER_HOUR: usize = 30;
pub const BREAKER_PAUSE: Duration = Duration::from_secs(15 * 60);

/// What the worker does in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The breaker is open: no traffic to the meter in this slot.
    Paused,
    /// No association: open one (and, if that works, read).
    Connect,
    /// Read on the open association.
    Read,
}

/// The start of a slot: slots missed since the last one, and the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub skipped: u64,
    pub step: Step,
}

/// After a failure: how long until the next attempt (zero: the next slot), and whether this
/// failure opened the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    pub consecutive: u32,
    pub wait: Duration,
    pub breaker_opened: bool,
}

pub struct PollCycle {
    schedule: Schedule,
    backoff: Backoff,
    breaker: Breaker,
    not_before: Instant,
    failures: u32,
    open: bool,
    /// The meter refused our credentials for good: no association before this (or before a
    /// configuration change).
    refused_until: Option<Instant>,
}

impl PollCycle {
    /// `seed` spreads the backoff jitter of different meters.
    pub fn new(now: Instant, interval: Duration, seed: u64) -> PollCycle {
        PollCycle {
            schedule: Schedule::new(now, interval),
            backoff: Backoff::new(Duration::from_secs(2), Duration::from_secs(300), seed),
            breaker: Breaker::new(MAX_RECONNECTS_PER_HOUR, BREAKER_PAUSE),
            not_before: now,
            failures: 0,
            open: false,
            refused_until: None,
        }
    }

    /// The meter refused the association for good (wrong password or key, a mechanism it
    /// does not take): many meters lock their password or port after 3 failed
    /// authentications, so no new attempt for `retry_after`, or until the configuration
    /// changes (a change of anything but the live fields restarts the worker, and with it
    /// this cycle).
    pub fn authentication_refused(&mut self, now: Instant, retry_after: Duration) -> Failed {
        let mut f = self.failed(now);
        self.refused_until = Some(now + retry_after);
        self.not_before = now + retry_after;
        f.wait = retry_after;
        f
    }

    /// Whether the meter waits for its configuration after a refusal.
    pub fn needs_configuration(&self, now: Instant) -> bool {
        self.refused_until.is_some_and(|t| now < t)
    }

    /// A new interval (a live configuration change): the schedule restarts from `now`.
    pub fn set_interval(&mut self, now: Instant, interval: Duration) {
        self.schedule = Schedule::new(now, interval);
    }

    /// A slot now (an RPC asked for a poll): the schedule restarts from `now`.
    pub fn poll_now(&mut self, now: Instant) {
        self.schedule = Schedule::new(now, self.schedule.interval());
        self.not_before = now;
    }

    /// When the next slot starts (a backoff may push it past the schedule).
    pub fn wake_at(&self) -> Instant {
        self.schedule.due().max(self.not_before)
    }

    /// A slot starts.
    pub fn begin(&mut self, now: Instant) -> Slot {
        let skipped = self.schedule.advance(now);
        let step = if self.breaker.is_open(now) {
            Step::Paused
        } else if self.open {
            Step::Read
        } else {
            Step::Connect
        };
        Slot { skipped, step }
    }

    pub fn connected(&mut self) {
        self.open = true;
    }

    /// Opening the association failed.
    pub fn connect_failed(&mut self, now: Instant) -> Failed {
        let mut f = self.failed(now);
        f.breaker_opened = self.breaker.record_reconnect(now);
        f
    }

    /// The read succeeded; `keep_open`: the next poll comes before the meter's inactivity
    /// time-out. Returns whether to release the association now.
    pub fn read_ok(&mut self, keep_open: bool) -> bool {
        self.failures = 0;
        if !keep_open {
            self.open = false;
        }
        !keep_open
    }

    /// The read failed; `transient`: a fresh association may cure it (it is dropped).
    pub fn read_failed(&mut self, now: Instant, transient: bool) -> Failed {
        if transient {
            self.open = false;
        }
        self.failed(now)
    }

    /// Whether an association is open (the worker holds it).
    pub fn is_open(&self) -> bool {
        self.open
    }

    fn failed(&mut self, now: Instant) -> Failed {
        self.failures += 1;
        let n = self.failures;
        let wait = if n >= FAILURES_BEFORE_BACKOFF {
            self.backoff.delay(n - FAILURES_BEFORE_BACKOFF + 1)
        } else {
            Duration::ZERO
        };
        self.not_before = now + wait;
        Failed {
            consecutive: n,
            wait,
            breaker_opened: false,
        }
    }
}

#[cfg(test)]
mod tests {
    /// Issue 25 item 2: a wrong password was retried 9-10 times in 3-5 minutes.
    #[test]
    fn a_refused_authentication_is_tried_once_an_hour() {
        let t0 = Instant::now();
        let mut cycle = PollCycle::new(t0, Duration::from_secs(60), 1);
        let mut attempts = 0;
        let mut now = t0;
        while now < t0 + Duration::from_secs(3600) {
            if cycle.wake_at() <= now {
                assert_eq!(cycle.begin(now).step, Step::Connect);
                attempts += 1;
                cycle.authentication_refused(now, Duration::from_secs(3600));
                assert!(cycle.needs_configuration(now));
            }
            now += Duration::from_secs(1);
        }
        assert_eq!(attempts, 1, "failed authentications in an hour");
        assert!(!cycle.needs_configuration(now + Duration::from_secs(1)));
    }

    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn connects_then_reads_on_the_open_association() {
        let t0 = Instant::now();
        let mut c = PollCycle::new(t0, S, 1);
        assert_eq!(c.begin(t0).step, Step::Connect);
        c.connected();
        assert!(!c.read_ok(true), "kept open");
        assert_eq!(c.begin(t0 + S).step, Step::Read);
        assert!(
            c.read_ok(false),
            "released: the next poll is past the inactivity time-out"
        );
        assert_eq!(c.begin(t0 + 2 * S).step, Step::Connect);
    }

    #[test]
    fn failures_retry_every_slot_then_back_off() {
        let t0 = Instant::now();
        let mut c = PollCycle::new(t0, S, 1);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..6 {
            now = c.wake_at().max(now);
            assert_eq!(c.begin(now).step, Step::Connect);
            waits.push(c.connect_failed(now).wait);
        }
        assert_eq!(&waits[..2], &[Duration::ZERO, Duration::ZERO]);
        assert!(
            waits[2] > Duration::ZERO && waits[5] > waits[2],
            "{waits:?}"
        );
        assert!(
            c.wake_at() >= now + waits[5],
            "the schedule waits for the backoff"
        );
        // A success resets the count.
        c.begin(c.wake_at());
        c.connected();
        c.read_ok(true);
        let f = c.read_failed(c.wake_at(), false);
        assert_eq!((f.consecutive, f.wait), (1, Duration::ZERO));
        assert!(
            c.is_open(),
            "a refusal (not transient) keeps the association"
        );
        c.read_failed(c.wake_at(), true);
        assert!(!c.is_open(), "a broken link drops it");
    }

    #[test]
    fn too_many_reconnects_in_an_hour_pause_the_meter() {
        let t0 = Instant::now();
        let mut c = PollCycle::new(t0, S, 1);
        let mut opened_at = None;
        for i in 0..=MAX_RECONNECTS_PER_HOUR as u64 {
            let now = t0 + Duration::from_secs(60 * i);
            c.begin(now);
            if c.connect_failed(now).breaker_opened {
                opened_at = Some(now);
                break;
            }
        }
        let opened = opened_at.expect("the breaker opens");
        assert_eq!(c.begin(opened + S).step, Step::Paused);
        assert_eq!(c.begin(opened + BREAKER_PAUSE + S).step, Step::Connect);
    }

    #[test]
    fn missed_slots_are_counted_and_a_new_interval_restarts_the_schedule() {
        let t0 = Instant::now();
        let mut c = PollCycle::new(t0, S, 1);
        c.begin(t0);
        assert_eq!(c.begin(t0 + Duration::from_millis(3500)).skipped, 2);
        c.set_interval(t0 + 4 * S, 10 * S);
        assert_eq!(c.wake_at(), t0 + 4 * S);
    }
}
