//! One MQTT session's connection state, pure: the publisher thread asks it when to connect,
//! tells it what happened, and sleeps until [`Link::next_wake`]. Times are passed in.
//!
//! ```text
//! Down{retry_at} --now >= retry_at--> Connecting{since} --CONNACK--> Up
//!      ^                                   |  failed, or no answer by the deadline
//!      +-------- backoff 1, 2, 4 ... max --+  (and from Up when the connection is lost)
//! ```
//! The backoff doubles per failed attempt up to `mqtt.reconnect_max_s` and never stops: a
//! broker that comes back is connected within that cap, however long it was gone.

use std::time::{Duration, Instant};

/// A connect attempt that has not completed by then is given up (Paho's own connect timeout
/// is 5 s; this is the deadline for a library call that never answers at all).
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Down { retry_at: Instant },
    Connecting { since: Instant },
    Up,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub state: LinkState,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// Connected at least once (a later connection is a *re*connect).
    pub ever_connected: bool,
}

/// The wait after `failures` failed attempts: 1, 2, 4, ... s, at most `max`.
pub fn backoff(failures: u32, max: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(max.max(Duration::from_secs(1)))
}

impl Link {
    pub fn new(now: Instant) -> Link {
        Link {
            state: LinkState::Down { retry_at: now },
            failures: 0,
            ever_connected: false,
        }
    }

    pub fn is_up(&self) -> bool {
        self.state == LinkState::Up
    }

    pub fn is_connecting(&self) -> bool {
        matches!(self.state, LinkState::Connecting { .. })
    }

    /// Whether an attempt should start now.
    pub fn should_connect(&self, now: Instant) -> bool {
        matches!(self.state, LinkState::Down { retry_at } if now >= retry_at)
    }

    pub fn connecting(&mut self, now: Instant) {
        self.state = LinkState::Connecting { since: now };
    }

    /// An attempt in progress that has run past its deadline.
    pub fn attempt_overdue(&self, now: Instant) -> bool {
        matches!(self.state, LinkState::Connecting { since } if now >= since + CONNECT_DEADLINE)
    }

    /// CONNACK accepted. Returns true for a reconnection.
    pub fn connected(&mut self) -> bool {
        let again = self.ever_connected;
        self.state = LinkState::Up;
        self.failures = 0;
        self.ever_connected = true;
        again
    }

    /// An attempt failed: returns the wait before the next.
    pub fn failed(&mut self, now: Instant, max: Duration) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let wait = backoff(self.failures, max);
        self.state = LinkState::Down {
            retry_at: now + wait,
        };
        wait
    }

    /// The connection dropped while up (or was closed on purpose): try again after 1 s.
    pub fn lost(&mut self, now: Instant) {
        self.lost_for(now, Duration::from_secs(1));
    }

    /// The connection dropped: try again after `wait` (a session that keeps failing soon
    /// after its connect backs off instead of reconnecting every second).
    pub fn lost_for(&mut self, now: Instant, wait: Duration) {
        self.failures = 0;
        self.state = LinkState::Down {
            retry_at: now + wait,
        };
    }

    /// When this link next needs the thread's attention.
    pub fn next_wake(&self) -> Option<Instant> {
        match self.state {
            LinkState::Down { retry_at } => Some(retry_at),
            LinkState::Connecting { since } => Some(since + CONNECT_DEADLINE),
            LinkState::Up => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(30);

    #[test]
    fn backoff_doubles_to_the_cap_and_never_stops() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n, MAX).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30, 30]);
        assert_eq!(backoff(u32::MAX, MAX), MAX);
        assert_eq!(backoff(3, Duration::from_secs(2)).as_secs(), 2);
        assert_eq!(backoff(3, Duration::ZERO).as_secs(), 1, "never a busy loop");
    }

    #[test]
    fn a_first_attempt_starts_at_once() {
        let t0 = Instant::now();
        let link = Link::new(t0);
        assert!(link.should_connect(t0));
        assert_eq!(link.next_wake(), Some(t0));
    }

    #[test]
    fn failures_back_off_and_a_broker_that_returns_is_reached_within_the_cap() {
        let t0 = Instant::now();
        let mut link = Link::new(t0);
        let mut now = t0;
        // Broker gone for 5 minutes: attempts keep coming, never more than MAX apart.
        while now < t0 + Duration::from_secs(300) {
            assert!(link.should_connect(now));
            link.connecting(now);
            assert!(!link.should_connect(now), "one attempt at a time");
            let wait = link.failed(now, MAX);
            assert!(wait <= MAX);
            assert!(!link.should_connect(now + wait - Duration::from_millis(1)));
            now += wait;
        }
        link.connecting(now);
        assert!(!link.connected(), "the first connection is not a reconnect");
        assert_eq!(link.failures, 0);
        assert!(link.is_up());
        assert_eq!(link.next_wake(), None);
    }

    #[test]
    fn an_attempt_without_an_answer_is_given_up_at_its_deadline() {
        let t0 = Instant::now();
        let mut link = Link::new(t0);
        link.connecting(t0);
        assert!(!link.attempt_overdue(t0 + CONNECT_DEADLINE - Duration::from_millis(1)));
        assert!(link.attempt_overdue(t0 + CONNECT_DEADLINE));
        assert_eq!(link.next_wake(), Some(t0 + CONNECT_DEADLINE));
    }

    #[test]
    fn a_lost_connection_retries_after_a_second_and_counts_as_a_reconnect() {
        let t0 = Instant::now();
        let mut link = Link::new(t0);
        link.connecting(t0);
        link.connected();
        link.lost(t0);
        assert!(!link.should_connect(t0));
        assert!(link.should_connect(t0 + Duration::from_secs(1)));
        link.connecting(t0);
        assert!(link.connected());
    }
}
