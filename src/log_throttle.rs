//! Warnings on input paths, rate-limited: a sender that repeats a fault (a bad tag every few
//! milliseconds, a flood of connections) must not fill the gateway's SD card with the same
//! line. At most one warning per key per `every`; the ones held back meanwhile are counted and
//! named in the next that goes out ("N more suppressed"). Keys are bounded: past `MAX_KEYS`
//! the stalest are forgotten (so a sender cycling through ports or addresses costs memory
//! once, and its count goes on under the keys it still uses). Pure: the caller passes the
//! time.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Keys remembered at once.
pub const MAX_KEYS: usize = 1024;

#[derive(Debug)]
pub struct Throttle<K = &'static str> {
    every: Duration,
    last: HashMap<K, (Instant, u64)>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    pub fn new(every: Duration) -> Throttle<K> {
        Throttle {
            every,
            last: HashMap::new(),
        }
    }

    /// `Some(suppressed)` when a warning of this key may be written now (with how many were
    /// held back since the last), `None` when it is held back.
    pub fn allow(&mut self, key: K, now: Instant) -> Option<u64> {
        if let Some((at, held)) = self.last.get_mut(&key) {
            if now.saturating_duration_since(*at) < self.every {
                *held += 1;
                return None;
            }
            let n = *held;
            *at = now;
            *held = 0;
            return Some(n);
        }
        if self.last.len() >= MAX_KEYS {
            self.forget_stalest();
        }
        self.last.insert(key, (now, 0));
        Some(0)
    }

    fn forget_stalest(&mut self) {
        let mut ages: Vec<Instant> = self.last.values().map(|(at, _)| *at).collect();
        ages.sort_unstable();
        let cut = ages[ages.len() / 2];
        self.last.retain(|_, (at, _)| *at > cut);
    }
}

/// At most `lines` warnings per `window` in all, whatever their keys: a flood from 250
/// addresses (one line a minute each) must not write 250 lines a minute either.
#[derive(Debug)]
pub struct Budget {
    lines: u32,
    window: Duration,
    started: Option<Instant>,
    used: u32,
    held: u64,
}

impl Budget {
    pub fn new(lines: u32, window: Duration) -> Budget {
        Budget {
            lines: lines.max(1),
            window,
            started: None,
            used: 0,
            held: 0,
        }
    }

    /// A line that its own key allowed, carrying `carried` held back under that key:
    /// `Some(all held back)` when it may be written now, `None` when it is held back too
    /// (its count goes into the next line written).
    pub fn allow(&mut self, now: Instant, carried: u64) -> Option<u64> {
        let expired = self
            .started
            .is_none_or(|t| now.saturating_duration_since(t) >= self.window);
        if expired {
            self.started = Some(now);
            self.used = 0;
        }
        if self.used >= self.lines {
            self.held += carried + 1;
            return None;
        }
        self.used += 1;
        Some(carried + std::mem::take(&mut self.held))
    }
}

/// " (N more suppressed)" or nothing.
pub fn suppressed(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} more suppressed)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_throttle_counts_what_it_holds_back() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(10));
        assert_eq!(t.allow("x", t0), Some(0));
        assert_eq!(t.allow("x", t0 + MS), None);
        assert_eq!(t.allow("y", t0 + MS), Some(0), "kinds apart");
        assert_eq!(t.allow("x", t0 + 2 * MS), None);
        assert_eq!(t.allow("x", t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(suppressed(2), " (2 more suppressed)");
    }

    #[test]
    fn the_budget_bounds_all_keys_together_and_counts_what_it_holds() {
        let t0 = Instant::now();
        let mut b = Budget::new(2, Duration::from_secs(60));
        assert_eq!(b.allow(t0, 0), Some(0));
        assert_eq!(b.allow(t0, 3), Some(3));
        assert_eq!(b.allow(t0, 5), None);
        assert_eq!(b.allow(t0, 0), None);
        assert_eq!(b.allow(t0 + Duration::from_secs(60), 1), Some(1 + 6 + 1));
    }

    #[test]
    fn the_keys_stay_bounded() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(10));
        for i in 0..10 * MAX_KEYS as u64 {
            t.allow(i, t0 + Duration::from_micros(i));
        }
        assert!(t.last.len() <= MAX_KEYS);
    }
}
