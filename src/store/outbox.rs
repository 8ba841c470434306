//! The durable outbox: readings committed before they are published, deleted only when the
//! broker acknowledged them (PUBACK). A restart resends whatever is still here, oldest first.
//!
//! Bounded by rows and by age. What the bound removes is counted (`counters` table, name
//! `outbox_dropped_full` / `outbox_dropped_age`) and reported to the caller to log: the outbox
//! never loses data silently.

use super::{Result, Store};
use crate::config::settings::{BridgeSettings, FullPolicy};
use rusqlite::{params, OptionalExtension};

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

fn row_count(conn: &rusqlite::Connection) -> Result<u64> {
    Ok(conn
        .query_row(
            "SELECT value FROM counters WHERE name = 'outbox_rows'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .unwrap_or(0)
        .max(0) as u64)
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
        let rows = row_count(&tx)?;
        let room = limits.outbox_max_rows.saturating_sub(rows) as usize;
        let accepted = match limits.outbox_full_policy {
            FullPolicy::DropNewest => room.min(entries.len()),
            FullPolicy::DropOldest => entries.len(),
        };
        out.dropped_full += (entries.len() - accepted) as u64;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO outbox (device, ts_ms, kind, payload, queued_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for e in &entries[..accepted] {
                stmt.execute(params![
                    e.device,
                    e.ts_ms,
                    e.kind.as_str(),
                    e.payload,
                    now_ms
                ])?;
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
        // The age bound counts from arrival (rows before schema 5: their reading time), which
        // grows with the id: only when the oldest is past the bound is there anything to
        // delete, found from the low ids on (no scan of the whole outbox). A backfilled profile
        // row (reading time days ago) arrives now and is kept.
        let oldest: Option<i64> = tx
            .query_row(
                "SELECT COALESCE(queued_ms, ts_ms) FROM outbox ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if oldest.is_some_and(|t| t < cutoff) {
            out.dropped_age = tx.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT 100000) AND COALESCE(queued_ms, ts_ms) < ?1",
                [cutoff],
            )? as u64;
        }
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

    /// A small write that succeeds only if the disk takes writes (after commits failed).
    pub fn outbox_probe_write(&mut self, now_ms: i64) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO counters (name, value) VALUES ('outbox_write_probe', ?1)",
            [now_ms],
        )?;
        Ok(())
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

    /// The row count (kept by triggers) and when the first row arrived (arrival grows with
    /// the id): both without reading the outbox through.
    pub fn outbox_stats(&self) -> Result<OutboxStats> {
        Ok(OutboxStats {
            rows: row_count(&self.conn)?,
            oldest_ts_ms: self
                .conn
                .query_row(
                    "SELECT COALESCE(queued_ms, ts_ms) FROM outbox ORDER BY id LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?,
        })
    }

    /// Raises a counter to `value` (never lowers it).
    pub fn raise_counter(&mut self, name: &str, value: u64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO counters (name, value) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET value = MAX(value, excluded.value)",
            params![name, value as i64],
        )?;
        Ok(())
    }

    pub fn counter(&self, name: &str) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT COALESCE((SELECT value FROM counters WHERE name = ?1), 0)",
            [name],
            |r| r.get(0),
        )?)
    }
}

/// What quarantining a damaged outbox kept and lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    /// Readings read back from the damaged table into a fresh outbox.
    pub kept: u64,
    /// Readings the damaged pages held (the count before, less what was kept).
    pub lost: u64,
    /// The damaged table, if SQLite could not drop it (kept, renamed, for forensics).
    pub left_as: Option<String>,
}

/// Whether the error says the database file is damaged (SQLITE_CORRUPT).
pub fn is_corrupt(e: &super::StoreError) -> bool {
    matches!(e, super::StoreError::Sqlite(err)
        if err.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseCorrupt))
}

type Row = (i64, String, i64, String, String, Option<i64>);

/// Up to `limit` whole rows after `after`, in id order.
fn read_from(
    conn: &rusqlite::Connection,
    table: &str,
    after: i64,
    limit: i64,
) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT id, device, ts_ms, kind, payload, queued_ms FROM {table} WHERE id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    let rows = stmt.query_map([after, limit], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })?;
    rows.collect()
}

/// The smallest id at or above which the damaged table reads again (the first whole row after
/// it can be read), given that the first row after `after` cannot; `None` if nothing after
/// `after` can be read.
fn past_the_damage(conn: &rusqlite::Connection, table: &str, after: i64) -> Option<i64> {
    let readable = |x: i64| read_from(conn, table, x, 1).is_ok();
    let (mut bad, mut step) = (after, 1i64);
    let good = loop {
        let x = after.checked_add(step)?;
        if readable(x) {
            break x;
        }
        bad = x;
        step = step.checked_mul(2)?;
    };
    let (mut lo, mut hi) = (bad, good);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if readable(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

impl Store {
    /// Replaces a damaged outbox (SQLITE_CORRUPT) by a fresh one holding every reading that
    /// can still be read, in order with its id; the readings on damaged pages are lost and
    /// counted. The damaged table is dropped, or kept renamed if SQLite cannot drop it.
    /// Everything else in the file (meters, settings, counters) is left as it is.
    pub fn outbox_quarantine(&mut self, now_s: i64) -> Result<Quarantine> {
        let before = row_count(&self.conn).unwrap_or(0);
        let damaged = format!("outbox_damaged_{now_s}");
        // A read that meets a damaged page poisons the write transaction it is in (SQLite
        // then refuses every write of that transaction): reads and writes alternate, each
        // write in its own transaction.
        self.conn.execute_batch(&format!(
            "BEGIN IMMEDIATE;
             DROP TRIGGER IF EXISTS outbox_rows_ins;
             DROP TRIGGER IF EXISTS outbox_rows_del;
             ALTER TABLE outbox RENAME TO {damaged};
             {}
             INSERT OR REPLACE INTO sqlite_sequence (name, seq)
                 SELECT 'outbox', seq FROM sqlite_sequence WHERE name = '{damaged}';
             COMMIT;",
            super::schema::OUTBOX_TABLE
        ))?;
        let mut kept = 0u64;
        let mut after = i64::MIN;
        // Batches while they read; at a failure, row by row to the damage, then past it.
        let mut batch = 500;
        loop {
            match read_from(&self.conn, &damaged, after, batch) {
                Ok(rows) if rows.is_empty() => break,
                Ok(rows) => {
                    let tx = self
                        .conn
                        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    {
                        let mut insert = tx.prepare_cached(
                            "INSERT INTO outbox (id, device, ts_ms, kind, payload, queued_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        )?;
                        for (id, device, ts, kind, payload, queued) in &rows {
                            insert.execute(params![id, device, ts, kind, payload, queued])?;
                            after = *id;
                        }
                    }
                    tx.commit()?;
                    kept += rows.len() as u64;
                    batch = 500;
                }
                Err(_) if batch > 1 => batch = 1,
                Err(_) => match past_the_damage(&self.conn, &damaged, after) {
                    Some(x) => after = x,
                    None => break,
                },
            }
        }
        self.conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {} COMMIT;",
            super::schema::OUTBOX_ROW_COUNT
        ))?;
        let dropped = self
            .conn
            .execute_batch(&format!("DROP TABLE {damaged}"))
            .is_ok();
        Ok(Quarantine {
            kept,
            lost: before.saturating_sub(kept),
            left_as: (!dropped).then_some(damaged),
        })
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
        assert_eq!(
            (stats.rows, stats.oldest_ts_ms),
            (6, Some(now)),
            "the oldest row's arrival"
        );
    }

    /// A backfilled profile row is older than the age bound by its reading time, but it has
    /// just arrived: kept. The bound counts from arrival.
    #[test]
    fn the_age_bound_counts_from_arrival_not_from_the_reading_time() {
        let (mut store, _d) = temp_store("age-arrival");
        let now = 1_795_500_000_000;
        let limits = BridgeSettings {
            outbox_max_age_s: 30 * 86_400,
            ..BridgeSettings::default()
        };
        let forty_days_ago = now - 40 * 86_400_000;
        let out = store
            .outbox_insert(&[entry("A", forty_days_ago)], &limits, now)
            .unwrap();
        assert_eq!(out.dropped_age, 0);
        let out = store
            .outbox_insert(&[entry("A", now)], &limits, now + 1000)
            .unwrap();
        assert_eq!(
            (out.dropped_age, store.outbox_stats().unwrap().rows),
            (0, 2)
        );
        assert_eq!(store.outbox_oldest(0, 1).unwrap()[0].ts_ms, forty_days_ago);
        // 31 days after its arrival it goes.
        let later = now + 31 * 86_400_000;
        let out = store
            .outbox_insert(&[entry("A", later)], &limits, later)
            .unwrap();
        assert_eq!(out.dropped_age, 2);
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

    #[test]
    fn a_damaged_outbox_page_is_quarantined_and_the_rest_kept() {
        let dir = crate::store::tempdir::TempDir::new("corrupt");
        let path = dir.path().join("bridge.db");
        let total = 3000u64;
        let (leaf, page_size) = {
            let mut store = Store::open(&path).unwrap();
            let big = "x".repeat(150);
            for chunk in 0..(total / 500) {
                let batch: Vec<NewEntry> = (0..500)
                    .map(|i| NewEntry {
                        payload: format!("{{\"v\":{},\"pad\":\"{big}\"}}", chunk * 500 + i),
                        ..entry("A", 1_000_000 + (chunk * 500 + i) as i64)
                    })
                    .collect();
                store
                    .outbox_insert(&batch, &BridgeSettings::default(), 1_000_000)
                    .unwrap();
            }
            let leaf: i64 = store
                .conn
                .query_row(
                    "SELECT pageno FROM dbstat WHERE name = 'outbox' AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 OFFSET 20",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let page_size: i64 = store
                .conn
                .pragma_query_value(None, "page_size", |r| r.get(0))
                .unwrap();
            store
                .conn
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                .unwrap();
            (leaf, page_size)
        };
        // Garbage over the leaf's header and cell pointers: SQLITE_CORRUPT when it is read.
        let mut bytes = std::fs::read(&path).unwrap();
        let at = ((leaf - 1) * page_size) as usize;
        bytes[at..at + 64].fill(0xFF);
        std::fs::write(&path, bytes).unwrap();
        let mut store = Store::open(&path).unwrap();
        let err = store.outbox_oldest(0, 10_000).unwrap_err();
        assert!(is_corrupt(&err), "{err}");
        let q = match store.outbox_quarantine(1) {
            Ok(q) => q,
            Err(e) => panic!("quarantine: {e:?}"),
        };
        assert_eq!(q.kept + q.lost, total, "{q:?}");
        assert!(
            q.lost > 0 && q.lost < 100,
            "{q:?}: one page's readings lost"
        );
        let rows = store.outbox_oldest(0, 10_000).unwrap();
        assert_eq!(rows.len() as u64, q.kept);
        assert!(rows.windows(2).all(|w| w[0].id < w[1].id), "in order");
        assert_eq!(store.outbox_stats().unwrap().rows, q.kept);
        let last = rows.last().unwrap().id;
        let out = store
            .outbox_insert(
                &[entry("A", 5_000_000)],
                &BridgeSettings::default(),
                5_000_000,
            )
            .unwrap();
        assert!(out.ids[0].unwrap() > last, "ids keep growing");
    }
}
