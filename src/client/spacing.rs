//! The least time between two connections to one meter (`reconnect_gap_s`). Some meters
//! answer a connection made within seconds of the last one with garbage or not at all
//! (Microstar: 10-15 s), so every connection this process opens to such a meter, whoever opens
//! it (the poll, an RPC, a profile read, the frame-counter read, a scan, `read`), waits until the
//! gap since the last one closed has passed. The close times are kept per endpoint for the
//! whole process; only endpoints with a gap are kept, and entries older than an hour go.

use super::transport::Transport;
use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static LAST_CLOSED: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);

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

/// A transport that notes when it closed, for the next connection's gap.
pub struct Spaced {
    inner: Box<dyn Transport>,
    endpoint: String,
}

impl Spaced {
    pub fn new(inner: Box<dyn Transport>, endpoint: String) -> Spaced {
        Spaced { inner, endpoint }
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
}
