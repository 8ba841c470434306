//! Client invocation counters, reserved in ranges per meter and key.
//!
//! A counter must never repeat for a key (Green Book 9.2.7.2.4: the IV is the system title
//! and the counter; a repeated IV under GCM leaks the key stream and lets a recorded request
//! be replayed). Writing every counter to disk would wear an SD card, so the bridge reserves a
//! range (`reserved_until` is committed before any counter of the range is used) and a crash
//! skips the rest of the range instead of reusing it. Rows stay when a meter is removed: a
//! meter added again under the same name with the same key continues above its old counters.

use super::{Result, Store, StoreError};
use rusqlite::{params, OptionalExtension};
use std::ops::Range;

/// The end of the counter space: counters are 0..=u32::MAX - 1 (the last value is never used,
/// so "next" always fits).
const SPACE_END: u64 = u32::MAX as u64;

impl Store {
    /// Reserves `size` counters for `meter` and `key_id`, starting at `at_least` or above the
    /// last reservation, whichever is higher. Returns the reserved range (shorter than `size`
    /// only at the end of the space; an error once the space is used up).
    pub fn reserve_invocation_counters(
        &mut self,
        meter: &str,
        key_id: &str,
        at_least: u32,
        size: u32,
    ) -> Result<Range<u32>> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let stored: Option<i64> = tx
            .query_row(
                "SELECT reserved_until FROM invocation_counters WHERE meter = ?1 AND key_id = ?2",
                params![meter, key_id],
                |r| r.get(0),
            )
            .optional()?;
        let start = (stored.unwrap_or(0).max(0) as u64).max(u64::from(at_least));
        let end = (start + u64::from(size)).min(SPACE_END);
        if start >= end {
            return Err(StoreError::Invalid(format!(
                "meter {meter:?}: every invocation counter of key {key_id} is used: change the key"
            )));
        }
        tx.execute(
            "INSERT INTO invocation_counters (meter, key_id, reserved_until) VALUES (?1, ?2, ?3)
             ON CONFLICT (meter, key_id) DO UPDATE SET reserved_until = excluded.reserved_until",
            params![meter, key_id, end as i64],
        )?;
        tx.commit()?;
        Ok(start as u32..end as u32)
    }

    /// The end of the last reservation (the next counter a restarted bridge starts from).
    pub fn reserved_invocation_counter(&self, meter: &str, key_id: &str) -> Result<Option<u32>> {
        Ok(self
            .conn
            .query_row(
                "SELECT reserved_until FROM invocation_counters WHERE meter = ?1 AND key_id = ?2",
                params![meter, key_id],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(|v| v as u32))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::temp_store;

    #[test]
    fn ranges_never_overlap_and_survive_reopening() {
        let (mut store, dir) = temp_store("counters");
        let a = store
            .reserve_invocation_counters("m", "k1", 0, 100)
            .unwrap();
        assert_eq!(a, 0..100);
        // Asking from an older counter still continues after the reservation.
        let b = store
            .reserve_invocation_counters("m", "k1", 50, 100)
            .unwrap();
        assert_eq!(b, 100..200);
        // The meter's frame counter may be ahead: jump there.
        let c = store
            .reserve_invocation_counters("m", "k1", 5000, 100)
            .unwrap();
        assert_eq!(c, 5000..5100);
        // Other keys and meters count on their own.
        assert_eq!(
            store.reserve_invocation_counters("m", "k2", 0, 10).unwrap(),
            0..10
        );
        assert_eq!(
            store.reserve_invocation_counters("n", "k1", 0, 10).unwrap(),
            0..10
        );
        let path = store.path().to_path_buf();
        drop(store);
        let store = crate::store::Store::open(&path).unwrap();
        assert_eq!(
            store.reserved_invocation_counter("m", "k1").unwrap(),
            Some(5100)
        );
        drop(dir);
    }

    #[test]
    fn the_end_of_the_space_is_a_clear_error() {
        let (mut store, _dir) = temp_store("counters-end");
        let r = store
            .reserve_invocation_counters("m", "k", u32::MAX - 10, 100)
            .unwrap();
        assert_eq!(r, u32::MAX - 10..u32::MAX);
        let e = store
            .reserve_invocation_counters("m", "k", 0, 100)
            .unwrap_err();
        assert!(e.to_string().contains("change the key"), "{e}");
    }
}
