//! How connections to one meter are spaced and never doubled, for the whole process, whoever
//! opens them (the poll, an RPC, a profile read, the frame-counter read, a scan, `read`):
//!
//! - The least time between two connections (`reconnect_gap_s`). Some meters answer a
//!   connection made within seconds of the last one with garbage or not at all (Microstar:
//!   10-15 s): the next connection waits until the gap since the last one closed has passed.
//!   Close times are kept per endpoint; entries older than an hour go.
//! - One connection at a time to a `single_connection` meter (endpoint and address). Many
//!   meters and modems take one TCP connection (2N MeterCom), others refuse a second
//!   association (MEM600): while such a meter's connection is open, any other connection to
//!   it (a scan of the polled address, an RPC's own read) waits for it to close, at most its
//!   connect time-out. Meters behind one TCP converter have addresses of their own and are not
//!   held up by each other here.

use super::transport::Transport;
use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static LAST_CLOSED: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);
/// Connections open now, per meter (endpoint and address): how many, and whether one of
/// them belongs to a meter that takes only one (`single_connection`).
static OPEN: Mutex<Option<HashMap<String, (u32, bool)>>> = Mutex::new(None);

/// Takes a turn on the meter, waiting at most `patience`; `false` if none came in time. A
/// connection to a `single_connection` meter (`exclusive`) waits until no other is open, and
/// while it is open every other connection to that meter waits.
pub fn take_turn(meter: &str, exclusive: bool, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    loop {
        {
            let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
            let open = open.get_or_insert_with(HashMap::new);
            let (count, held_exclusively) = open.entry(meter.to_string()).or_insert((0, false));
            if *count == 0 || !(exclusive || *held_exclusively) {
                *count += 1;
                *held_exclusively |= exclusive;
                return true;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Gives back a turn: its transport closed, or none came to hold it (opening failed).
pub fn give_back(meter: &str) {
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(open) = open.as_mut() {
        if let Some((count, exclusive)) = open.get_mut(meter) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(meter);
            } else {
                // The exclusive holder is the only one while it is open: it just closed.
                *exclusive = false;
            }
        }
    }
}

/// How long the next connection to `endpoint` must still wait for the gap to pass.
pub fn wait_needed(endpoint: &str, gap: Duration, now: Instant) -> Duration {
    let table = LAST_CLOSED.lock().unwrap_or_else(|e| e.into_inner());
    table
        .as_ref()
        .and_then(|t| t.get(endpoint))
        .map_or(Duration::ZERO, |closed| {
            (*closed + gap).saturating_duration_since(now)
        })
}

fn closed(endpoint: &str, at: Instant) {
    let mut table = LAST_CLOSED.lock().unwrap_or_else(|e| e.into_inner());
    let table = table.get_or_insert_with(HashMap::new);
    table.retain(|_, t| at.saturating_duration_since(*t) < Duration::from_secs(3600));
    table.insert(endpoint.to_string(), at);
}

/// A transport that holds the meter's turn ([`take_turn`]) and notes when it closed, for the
/// next connection's gap.
pub struct Spaced {
    inner: Box<dyn Transport>,
    endpoint: String,
    /// The turn taken, if any (released on drop).
    meter: Option<String>,
}

impl Spaced {
    pub fn new(inner: Box<dyn Transport>, endpoint: String) -> Spaced {
        Spaced {
            inner,
            endpoint,
            meter: None,
        }
    }

    /// The same, holding the turn of `meter` (already taken).
    pub fn holding(inner: Box<dyn Transport>, endpoint: String, meter: String) -> Spaced {
        Spaced {
            inner,
            endpoint,
            meter: Some(meter),
        }
    }
}

impl Transport for Spaced {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.send(bytes)
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.inner.recv(buf, timeout)
    }
}

impl Drop for Spaced {
    fn drop(&mut self) {
        closed(&self.endpoint, Instant::now());
        if let Some(meter) = &self.meter {
            give_back(meter);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Null;
    impl Transport for Null {
        fn send(&mut self, _: &[u8]) -> io::Result<()> {
            Ok(())
        }
        fn recv(&mut self, _: &mut [u8], _: Duration) -> io::Result<usize> {
            Ok(0)
        }
    }

    #[test]
    fn the_gap_counts_from_the_close_of_the_last_connection() {
        let gap = Duration::from_secs(12);
        let key = "spacing-test:1";
        assert_eq!(wait_needed(key, gap, Instant::now()), Duration::ZERO);
        let t = Spaced::new(Box::new(Null), key.into());
        std::thread::sleep(Duration::from_millis(20));
        // Still open: the gap has not started.
        assert_eq!(wait_needed(key, gap, Instant::now()), Duration::ZERO);
        drop(t);
        let left = wait_needed(key, gap, Instant::now());
        assert!(left > Duration::from_secs(11) && left <= gap, "{left:?}");
        assert_eq!(wait_needed(key, gap, Instant::now() + gap), Duration::ZERO);
        assert_eq!(
            wait_needed("spacing-test:2", gap, Instant::now()),
            Duration::ZERO
        );
    }

    #[test]
    fn one_connection_at_a_time_per_single_connection_meter() {
        let meter = "spacing-test:3 hdlc 1/17";
        assert!(take_turn(meter, true, Duration::ZERO));
        let first = Spaced::holding(Box::new(Null), "spacing-test:3".into(), meter.into());
        assert!(!take_turn(meter, false, Duration::from_millis(60)), "taken");
        let other = "spacing-test:3 hdlc 1/18";
        assert!(take_turn(other, true, Duration::ZERO), "another address");
        // Meters that take several connections are not held up.
        let shared = "spacing-test:4";
        assert!(take_turn(shared, false, Duration::ZERO));
        assert!(take_turn(shared, false, Duration::ZERO));
        assert!(!take_turn(shared, true, Duration::from_millis(30)));
        let waiter = std::thread::spawn(move || take_turn(meter, false, Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(50));
        drop(first);
        assert!(
            waiter.join().unwrap(),
            "the turn passes when the first closes"
        );
    }
}
