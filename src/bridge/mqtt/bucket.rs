//! Rates, pure: a token bucket (`thingsboard.max_messages_per_second`, and each device's share
//! of messages from the broker), a bucket per key with a bounded table, and a throttle for
//! warnings on input paths ("N more suppressed"). Times are passed in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    /// Starts with one token: a quiet client sends its first message at once.
    pub fn new(rate: u32, burst: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            tokens: 1.0,
            refilled: now,
        }
    }

    /// A new rate keeps what was saved (up to the new burst).
    pub fn set_rate(&mut self, rate: u32, burst: u32) {
        self.rate = f64::from(rate.max(1));
        self.burst = f64::from(burst.max(1));
        self.tokens = self.tokens.min(self.burst);
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled = self.refilled.max(now);
    }

    /// Whether a token is there now (without taking it).
    pub fn available(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 1.0
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        if self.available(now) {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token will be there (now if one is).
    pub fn ready_at(&self) -> Instant {
        if self.tokens >= 1.0 {
            return self.refilled;
        }
        self.refilled + Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
    }
}

/// One bucket per key (a device sending RPCs or attributes), the table bounded: past
/// `max_keys` the quietest half is forgotten (forgetting only ever gives a full bucket back).
#[derive(Debug)]
pub struct PerKey {
    rate: u32,
    burst: u32,
    max_keys: usize,
    buckets: HashMap<String, TokenBucket>,
}

impl PerKey {
    pub fn new(rate: u32, burst: u32, max_keys: usize) -> PerKey {
        PerKey {
            rate,
            burst,
            max_keys: max_keys.max(1),
            buckets: HashMap::new(),
        }
    }

    pub fn take(&mut self, key: &str, now: Instant) -> bool {
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.max_keys {
            let mut by_age: Vec<(Instant, String)> = self
                .buckets
                .iter()
                .map(|(k, b)| (b.refilled, k.clone()))
                .collect();
            by_age.sort();
            for (_, k) in by_age.into_iter().take(self.max_keys / 2 + 1) {
                self.buckets.remove(&k);
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        let bucket = self
            .buckets
            .entry(key.to_string())
            .or_insert_with(|| TokenBucket {
                tokens: f64::from(burst),
                ..TokenBucket::new(rate, burst, now)
            });
        bucket.take(now)
    }
}

pub use crate::log_throttle::{suppressed, Throttle};

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_bucket_holds_the_rate_and_says_when_the_next_token_comes() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 10, t0);
        assert!(b.take(t0));
        assert!(!b.take(t0), "one token at the start");
        assert_eq!(b.ready_at(), t0 + 100 * MS);
        assert!(!b.take(t0 + 99 * MS));
        assert!(b.take(t0 + 100 * MS));
        // A second of silence saves the burst, no more.
        let later = t0 + Duration::from_secs(5);
        let sent = (0..100).filter(|_| b.take(later)).count();
        assert_eq!(sent, 10);
        // Over ten seconds: the rate, whatever the asking.
        let mut n = 0;
        let mut t = later;
        while t < later + Duration::from_secs(10) {
            n += usize::from(b.take(t));
            t += MS;
        }
        assert!((99..=101).contains(&n), "{n}");
    }

    #[test]
    fn per_key_buckets_are_separate_and_the_table_stays_bounded() {
        let t0 = Instant::now();
        let mut p = PerKey::new(1, 3, 4);
        assert_eq!((0..10).filter(|_| p.take("flood", t0)).count(), 3);
        assert!(p.take("quiet", t0), "another key is not held back");
        for i in 0..100 {
            p.take(&format!("k{i}"), t0 + i * MS);
        }
        assert!(p.buckets.len() <= 4);
    }
}
