//! Timing decisions of a meter worker, pure (times are passed in): the fixed-rate schedule,
//! exponential backoff with jitter, and the reconnect circuit breaker.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Fixed-rate polling: cycle k is due at `start + k * interval`, so the period does not grow
/// with the read time. Slots missed while busy or backing off are skipped, not caught up.
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    interval: Duration,
    next: u64,
}

impl Schedule {
    pub fn new(start: Instant, interval: Duration) -> Self {
        Schedule {
            start,
            interval: interval.max(Duration::from_millis(1)),
            next: 0,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn due(&self) -> Instant {
        self.start + self.interval * self.next as u32
    }

    /// Moves to the first slot strictly after `now`; returns how many were skipped.
    pub fn advance(&mut self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start);
        let first_after = (elapsed.as_nanos() / self.interval.as_nanos()) as u64 + 1;
        let skipped = first_after.saturating_sub(self.next + 1);
        self.next = first_after.max(self.next + 1);
        skipped
    }
}

/// Exponential backoff after consecutive failures: base * 2^(n-1), capped, +-20% jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    seed: u64,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            base,
            max,
            seed: seed | 1,
        }
    }

    pub fn delay(&mut self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let exp = self.base.saturating_mul(1u32 << (failures - 1).min(20));
        let capped = exp.min(self.max);
        // xorshift for jitter: spreads reconnects of many meters behind one router.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let factor = 0.8 + (self.seed % 1000) as f64 / 2500.0; // 0.8 .. 1.2
        capped.mul_f64(factor)
    }
}

/// Opens (pauses the meter) after too many reconnects within an hour.
#[derive(Debug, Clone)]
pub struct Breaker {
    max_per_hour: usize,
    pause: Duration,
    reconnects: VecDeque<Instant>,
    open_until: Option<Instant>,
}

impl Breaker {
    pub fn new(max_per_hour: usize, pause: Duration) -> Self {
        Breaker {
            max_per_hour,
            pause,
            reconnects: VecDeque::new(),
            open_until: None,
        }
    }

    /// Records a reconnect; returns true if that opened the breaker.
    pub fn record_reconnect(&mut self, now: Instant) -> bool {
        while self
            .reconnects
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(3600))
        {
            self.reconnects.pop_front();
        }
        self.reconnects.push_back(now);
        if self.reconnects.len() > self.max_per_hour {
            self.open_until = Some(now + self.pause);
            self.reconnects.clear();
            return true;
        }
        false
    }

    pub fn is_open(&mut self, now: Instant) -> bool {
        match self.open_until {
            Some(t) if now < t => true,
            Some(_) => {
                self.open_until = None;
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_does_not_drift_and_skips_missed_slots() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, Duration::from_secs(10));
        assert_eq!(s.due(), t0);
        // A read that took 3 s: the next slot is still t0 + 10 s.
        assert_eq!(s.advance(t0 + Duration::from_secs(3)), 0);
        assert_eq!(s.due(), t0 + Duration::from_secs(10));
        // A 25 s outage: slots 20 s is skipped, next is 30 s.
        assert_eq!(s.advance(t0 + Duration::from_secs(25)), 1);
        assert_eq!(s.due(), t0 + Duration::from_secs(30));
        // Advancing early never goes backwards.
        s.advance(t0);
        assert_eq!(s.due(), t0 + Duration::from_secs(40));
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60), 7);
        assert_eq!(b.delay(0), Duration::ZERO);
        let d: Vec<Duration> = (1..=10).map(|n| b.delay(n)).collect();
        assert!(d[0] >= Duration::from_millis(800) && d[0] <= Duration::from_millis(1200));
        assert!(d[3] >= Duration::from_millis(6400) && d[3] <= Duration::from_millis(9600));
        assert!(d[9] <= Duration::from_secs(72) && d[9] >= Duration::from_secs(48));
        let mut other = Backoff::new(Duration::from_secs(1), Duration::from_secs(60), 8);
        assert_ne!(
            other.delay(5),
            Backoff::new(Duration::from_secs(1), Duration::from_secs(60), 7).delay(5)
        );
    }

    #[test]
    fn breaker_opens_after_too_many_reconnects_and_closes_later() {
        let t0 = Instant::now();
        let mut br = Breaker::new(3, Duration::from_secs(900));
        for i in 0..3 {
            assert!(!br.record_reconnect(t0 + Duration::from_secs(i)));
        }
        assert!(br.record_reconnect(t0 + Duration::from_secs(4)));
        assert!(br.is_open(t0 + Duration::from_secs(100)));
        assert!(!br.is_open(t0 + Duration::from_secs(905)));
        // Reconnects spread over more than an hour do not open it.
        let mut br = Breaker::new(3, Duration::from_secs(900));
        for i in 0..10 {
            assert!(!br.record_reconnect(t0 + Duration::from_secs(1300 * i)));
        }
    }
}
