//! The invocation counter of one secured meter: shared with every session of its worker and
//! extended from the database (in reserved ranges, see `store::counters`) before it runs out.
//! The session refuses counters at or above `limit`, so a counter is used only after its
//! range was committed to disk.

use crate::client::ClientError;
use crate::dlms::security::{key_check_value, Keys};
use crate::store::Store;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Counters reserved per database write: one write every few thousand APDUs.
pub const RESERVATION: u32 = 4096;
/// A poll cycle starts only with at least this many reserved counters left; a cycle of
/// register reads uses a handful (one per APDU, block transfers included).
pub const HEADROOM: u32 = 256;

pub struct CounterLease {
    meter: String,
    /// The encryption key's check value: counters are per key, the key itself is not stored
    /// twice.
    key_id: String,
    db: PathBuf,
    pub next: Arc<AtomicU32>,
    pub limit: Arc<AtomicU32>,
}

impl CounterLease {
    /// Nothing reserved yet: the first [`CounterLease::ensure`] reads the database.
    pub fn new(meter: &str, keys: &Keys, db: PathBuf) -> CounterLease {
        let kcv = key_check_value(&keys.block_cipher);
        CounterLease {
            meter: meter.to_string(),
            key_id: kcv.iter().map(|b| format!("{b:02X}")).collect(),
            db,
            next: Arc::default(),
            limit: Arc::default(),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Reserves as [`CounterLease::ensure`] does, and gives the session this lease's counters:
    /// it uses only what was reserved on disk.
    pub fn attach(
        &self,
        sec: &mut crate::dlms::session::Security,
        at_least: u32,
    ) -> Result<(), ClientError> {
        self.ensure(at_least)?;
        sec.invocation_counter = self.next.clone();
        sec.counter_limit = Some(self.limit.clone());
        Ok(())
    }

    /// Makes sure counters from `max(next, at_least)` on are reserved, with room for a poll
    /// cycle. `at_least` is what the meter's frame counter asks for (0 when not read).
    pub fn ensure(&self, at_least: u32) -> Result<(), ClientError> {
        let next = self.next.load(Ordering::SeqCst);
        let limit = self.limit.load(Ordering::SeqCst);
        let want = next.max(at_least);
        if want < limit && limit - want >= HEADROOM {
            self.next.store(want, Ordering::SeqCst);
            return Ok(());
        }
        let mut store = Store::open(&self.db)
            .map_err(|e| ClientError::InvocationCounter(format!("cannot reserve: {e}")))?;
        let range = store
            .reserve_invocation_counters(&self.meter, &self.key_id, want, RESERVATION)
            .map_err(|e| ClientError::InvocationCounter(format!("cannot reserve: {e}")))?;
        // A range that continues the current one keeps `want`; otherwise start at the range.
        let start = if range.start == limit && want < limit {
            want
        } else {
            range.start
        };
        self.next.store(start, Ordering::SeqCst);
        self.limit.store(range.end, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extends_before_running_out_and_continues_after_a_restart() {
        let dir = crate::store::tempdir::TempDir::new("lease");
        let db = dir.path().join("bridge.db");
        let keys = Keys {
            block_cipher: [7; 16],
            authentication: [8; 16],
        };
        let lease = CounterLease::new("m", &keys, db.clone());
        lease.ensure(0).unwrap();
        assert_eq!(lease.next.load(Ordering::SeqCst), 0);
        assert_eq!(lease.limit.load(Ordering::SeqCst), RESERVATION);
        // Use almost everything: the next ensure extends without skipping.
        lease.next.store(RESERVATION - 10, Ordering::SeqCst);
        lease.ensure(0).unwrap();
        assert_eq!(lease.next.load(Ordering::SeqCst), RESERVATION - 10);
        assert_eq!(lease.limit.load(Ordering::SeqCst), 2 * RESERVATION);
        // The meter's frame counter is ahead: jump above it.
        lease.ensure(100_000).unwrap();
        assert_eq!(lease.next.load(Ordering::SeqCst), 100_000);
        let used_until = 100_050;
        lease.next.store(used_until, Ordering::SeqCst);
        drop(lease);
        // A restart (crash: nothing written since) starts above everything handed out.
        let again = CounterLease::new("m", &keys, db);
        again.ensure(0).unwrap();
        assert!(again.next.load(Ordering::SeqCst) >= used_until);
        assert_eq!(again.next.load(Ordering::SeqCst), 100_000 + RESERVATION);
    }
}
