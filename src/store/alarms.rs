//! The alarm book's rows: written by the alarm thread, read back at start.

use super::{Result, Store};
use crate::alarm::{Alarm, Kind};
use rusqlite::params;

impl Store {
    /// Every stored alarm (rows of kinds this build does not know are skipped).
    pub fn alarms(&self) -> Result<Vec<Alarm>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, meter, kind, detail, first_seen_ms, last_seen_ms, count, cleared_ms,
                    acked_by, acked_ms FROM alarms ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            let kind: String = r.get(2)?;
            Ok(Kind::parse(&kind).map(|kind| Alarm {
                id: r.get(0).unwrap_or(0),
                meter: r.get(1).unwrap_or(None),
                kind,
                severity: kind.severity(),
                detail: r.get(3).unwrap_or_default(),
                first_seen_ms: r.get(4).unwrap_or(0),
                last_seen_ms: r.get(5).unwrap_or(0),
                count: r.get::<_, i64>(6).unwrap_or(1).max(0) as u64,
                cleared_ms: r.get(7).unwrap_or(None),
                acked_by: r.get(8).unwrap_or(None),
                acked_ms: r.get(9).unwrap_or(None),
            }))
        })?;
        let mut out = Vec::new();
        for row in rows {
            out.extend(row?);
        }
        Ok(out)
    }

    /// Writes changed alarms and deletes pruned ones, in one transaction.
    pub fn save_alarms(&mut self, changed: &[Alarm], pruned: &[i64]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO alarms (id, meter, kind, severity, detail, first_seen_ms,
                 last_seen_ms, count, cleared_ms, acked_by, acked_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for a in changed {
                put.execute(params![
                    a.id,
                    a.meter,
                    a.kind.as_str(),
                    a.severity.as_str(),
                    a.detail,
                    a.first_seen_ms,
                    a.last_seen_ms,
                    a.count.min(i64::MAX as u64) as i64,
                    a.cleared_ms,
                    a.acked_by,
                    a.acked_ms
                ])?;
            }
            let mut delete = tx.prepare_cached("DELETE FROM alarms WHERE id = ?1")?;
            for id in pruned {
                delete.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::alarm::book::AlarmBook;
    use crate::alarm::watch::Verdict;
    use crate::alarm::{Condition, Kind};
    use crate::store::Store;

    #[test]
    fn alarms_survive_a_restart_and_pruned_ones_go() {
        let dir = crate::store::tempdir::TempDir::new("alarms");
        let path = dir.path().join("a.db");
        let mut store = Store::open(&path).unwrap();
        let mut book = AlarmBook::default();
        let holds = Verdict {
            holds: vec![Condition {
                meter: Some("A".into()),
                kind: Kind::MeterOffline,
                detail: "silent".into(),
                occurrences: 0,
            }],
            ..Verdict::default()
        };
        book.apply(&holds, 1_000);
        book.ack(1, "Anna", 1_500).unwrap();
        book.apply(&Verdict::default(), 2_000);
        book.apply(&holds, 3_000);
        let (changed, pruned) = book.take_changes();
        store.save_alarms(&changed, &pruned).unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        let back = store.alarms().unwrap();
        assert_eq!(back, book.all());
        assert_eq!(back[0].acked_by.as_deref(), Some("Anna"));
        let mut store = store;
        store.save_alarms(&[], &[1]).unwrap();
        assert_eq!(store.alarms().unwrap().len(), 1);
        let book = AlarmBook::with(store.alarms().unwrap());
        assert_eq!(book.active().count(), 1);
    }
}
