//! The durable outbox: readings committed before they are published, deleted only when the
//! broker acknowledged them (PUBACK). A restart resends whatever is still here, oldest first.
//!
//! Bounded by rows and by age. What the bound removes is counted (`counters` table, name
//! `outbox_dropped_full` / `outbox_dropped_age`) and reported to the caller to log: the outbox
//! never loses data silently.

use super::{Result, Store};
use crate::config::settings::{BridgeSettings, FullPolicy};
use rusqlite::params;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Telemetry,
    Attributes,
}

impl EntryKind {
    fn as_str(self) -> &'static str {
        match self {
            EntryKind::Telemetry => "telemetry",
            EntryKind::Attributes => "attributes",
        }
    }
}

/// A reading (or attribute set) to store: `payload` is the JSON object of values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub device: String,
    pub ts_ms: i64,
    pub kind: EntryKind,
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub device: String,
    pub ts_ms: i64,
    pub kind: EntryKind,
    pub payload: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    pub inserted: usize,
    /// The row id of each entry given, in order (None: refused by the drop-newest bound).
    pub ids: Vec<Option<i64>>,
    /// Refused (drop-newest) or evicted (drop-oldest) because the outbox was full.
    pub dropped_full: u64,
    /// Evicted for being older than the age bound.
    pub dropped_age: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub rows: u64,
    pub oldest_ts_ms: Option<i64>,
}

impl Store {
    /// Commits `entries` in one transaction (the group commit), then applies the bounds.
    pub fn outbox_insert(
        &mut self,
        entries: &[NewEntry],
        limits: &BridgeSettings,
        now_ms: i64,
    ) -> Result<InsertOutcome> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut out = InsertOutcome::default();
        let rows: u64 = tx.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))?;
        let room = limits.outbox_max_rows.saturating_sub(rows) as usize;
        let accepted = match limits.outbox_full_policy {
            FullPolicy::DropNewest => room.min(entries.len()),
            FullPolicy::DropOldest => entries.len(),
        };
        out.dropped_full += (entries.len() - accepted) as u64;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO outbox (device, ts_ms, kind, payload) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for e in &entries[..accepted] {
                stmt.execute(params![e.device, e.ts_ms, e.kind.as_str(), e.payload])?;
                out.ids.push(Some(tx.last_insert_rowid()));
            }
        }
        out.ids.resize(entries.len(), None);
        out.inserted = accepted;
        if limits.outbox_full_policy == FullPolicy::DropOldest {
            let excess = (rows + accepted as u64).saturating_sub(limits.outbox_max_rows);
            if excess > 0 {
                out.dropped_full += tx.execute(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?1)",
                    [excess as i64],
                )? as u64;
            }
        }
        let cutoff = now_ms - (limits.outbox_max_age_s as i64).saturating_mul(1000);
        out.dropped_age = tx.execute("DELETE FROM outbox WHERE ts_ms < ?1", [cutoff])? as u64;
        for (name, n) in [
            ("outbox_dropped_full", out.dropped_full),
            ("outbox_dropped_age", out.dropped_age),
        ] {
            if n > 0 {
                tx.execute(
                    "INSERT INTO counters (name, value) VALUES (?1, ?2)
                     ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                    params![name, n as i64],
                )?;
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// The oldest entries with id above `after_id`, in order.
    pub fn outbox_oldest(&self, after_id: i64, limit: usize) -> Result<Vec<Entry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, device, ts_ms, kind, payload FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after_id, limit as i64], |r| {
            let kind: String = r.get(3)?;
            Ok(Entry {
                id: r.get(0)?,
                device: r.get(1)?,
                ts_ms: r.get(2)?,
                kind: if kind == "attributes" {
                    EntryKind::Attributes
                } else {
                    EntryKind::Telemetry
                },
                payload: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Deletes acknowledged entries, in one transaction; returns how many rows went.
    pub fn outbox_delete(&mut self, ids: &[i64]) -> Result<u64> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut deleted = 0;
        {
            let mut stmt = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
            for id in ids {
                deleted += stmt.execute([id])? as u64;
            }
        }
        tx.commit()?;
        Ok(deleted)
    }

    pub fn outbox_stats(&self) -> Result<OutboxStats> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*), MIN(ts_ms) FROM outbox", [], |r| {
                Ok(OutboxStats {
                    rows: r.get(0)?,
                    oldest_ts_ms: r.get(1)?,
                })
            })?)
    }

    pub fn counter(&self, name: &str) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT COALESCE((SELECT value FROM counters WHERE name = ?1), 0)",
            [name],
            |r| r.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;

    fn entry(device: &str, ts_ms: i64) -> NewEntry {
        NewEntry {
            device: device.into(),
            ts_ms,
            kind: EntryKind::Telemetry,
            payload: format!("{{\"v\":{ts_ms}}}"),
        }
    }

    #[test]
    fn insert_read_in_order_delete() {
        let (mut store, _d) = temp_store("outbox");
        let limits = BridgeSettings::default();
        let now = 1_795_500_000_000;
        let batch: Vec<NewEntry> = (0..10)
            .map(|i| entry(if i % 2 == 0 { "A" } else { "B" }, now + i))
            .collect();
        assert_eq!(
            store.outbox_insert(&batch, &limits, now).unwrap().inserted,
            10
        );
        let first = store.outbox_oldest(0, 4).unwrap();
        assert_eq!(
            first.iter().map(|e| e.ts_ms - now).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        let next = store.outbox_oldest(first[3].id, 100).unwrap();
        assert_eq!(next.len(), 6);
        store
            .outbox_delete(&first.iter().map(|e| e.id).collect::<Vec<_>>())
            .unwrap();
        let stats = store.outbox_stats().unwrap();
        assert_eq!((stats.rows, stats.oldest_ts_ms), (6, Some(now + 4)));
    }

    #[test]
    fn bounds_are_explicit_and_counted() {
        let (mut store, _d) = temp_store("bounds");
        let now = 1_795_500_000_000;
        let mut limits = BridgeSettings {
            outbox_max_rows: 5,
            ..BridgeSettings::default()
        };
        let batch: Vec<NewEntry> = (0..8).map(|i| entry("A", now + i)).collect();
        let out = store.outbox_insert(&batch, &limits, now).unwrap();
        assert_eq!((out.inserted, out.dropped_full), (8, 3));
        // drop-oldest kept the newest five
        assert_eq!(store.outbox_oldest(0, 10).unwrap()[0].ts_ms, now + 3);
        limits.outbox_full_policy = FullPolicy::DropNewest;
        let out = store
            .outbox_insert(&[entry("A", now + 100)], &limits, now)
            .unwrap();
        assert_eq!((out.inserted, out.dropped_full), (0, 1));
        assert_eq!(store.counter("outbox_dropped_full").unwrap(), 4);
        // Age bound.
        limits.outbox_max_rows = 100;
        limits.outbox_max_age_s = 1;
        let out = store
            .outbox_insert(&[entry("A", now + 10_000)], &limits, now + 10_000)
            .unwrap();
        assert_eq!(out.dropped_age, 5);
        assert_eq!(store.outbox_stats().unwrap().rows, 1);
        assert_eq!(store.counter("outbox_dropped_age").unwrap(), 5);
    }

    #[test]
    fn committed_entries_survive_reopening() {
        let dir = crate::store::tempdir::TempDir::new("reopen");
        let path = dir.path().join("b.db");
        {
            let mut store = Store::open(&path).unwrap();
            store
                .outbox_insert(&[entry("A", 1)], &BridgeSettings::default(), 1)
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.outbox_stats().unwrap().rows, 1);
    }
}
