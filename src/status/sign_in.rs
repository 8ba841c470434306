//! Failed sign-ins (wrong or missing API token) limited per client address: after
//! [`MAX_FAILURES`] within [`WINDOW`], that address is refused (429) until the window ends,
//! right token or not, so that guessing costs minutes per handful of tries. Pure: the caller
//! passes the time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at once; the stalest are forgotten first.
const MAX_CLIENTS: usize = 1024;

#[derive(Debug, Default)]
pub struct SignInLimiter {
    failures: HashMap<String, (u32, Instant)>,
}

impl SignInLimiter {
    /// `Err(seconds)`: refused for that long.
    pub fn check(&mut self, client: &str, now: Instant) -> Result<(), u64> {
        match self.failures.get(client) {
            Some((n, since)) if now.duration_since(*since) < WINDOW => {
                if *n >= MAX_FAILURES {
                    Err((WINDOW - now.duration_since(*since)).as_secs().max(1))
                } else {
                    Ok(())
                }
            }
            Some(_) => {
                self.failures.remove(client);
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub fn failed(&mut self, client: &str, now: Instant) {
        if self.failures.len() >= MAX_CLIENTS && !self.failures.contains_key(client) {
            self.failures
                .retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
            if self.failures.len() >= MAX_CLIENTS {
                if let Some(oldest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(k, _)| k.clone())
                {
                    self.failures.remove(&oldest);
                }
            }
        }
        let entry = self.failures.entry(client.to_string()).or_insert((0, now));
        if now.duration_since(entry.1) >= WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    pub fn succeeded(&mut self, client: &str) {
        self.failures.remove(client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_an_address_for_the_rest_of_the_minute() {
        let mut l = SignInLimiter::default();
        let t = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert_eq!(l.check("10.0.0.1", t), Ok(()));
            l.failed("10.0.0.1", t);
        }
        assert_eq!(l.check("10.0.0.1", t + Duration::from_secs(10)), Err(50));
        assert_eq!(
            l.check("10.0.0.2", t),
            Ok(()),
            "other addresses are not hit"
        );
        assert_eq!(l.check("10.0.0.1", t + WINDOW), Ok(()));
        l.failed("10.0.0.2", t);
        l.succeeded("10.0.0.2");
        assert!(!l.failures.contains_key("10.0.0.2"));
    }

    #[test]
    fn the_table_is_bounded() {
        let mut l = SignInLimiter::default();
        let t = Instant::now();
        for i in 0..MAX_CLIENTS + 10 {
            l.failed(&format!("a{i}"), t + Duration::from_millis(i as u64));
        }
        assert_eq!(l.failures.len(), MAX_CLIENTS);
    }
}
