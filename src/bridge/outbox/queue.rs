//! What is unsent, and who holds it: the pure bookkeeping of the outbox thread.
//!
//! A reading is *accepted* when it leaves the meter's channel and enters this queue's memory.
//! From there it is either acknowledged by the broker straight from memory (write-behind) or
//! committed to the SQLite outbox when it has waited `commit_interval_ms`; a committed reading is
//! deleted when the broker acknowledges it. The publisher thread (MQTT) is handed *work*: items
//! named by a [`Key`], answered with an [`Outcome`]. Nothing here does I/O or reads the clock:
//! the outbox thread (`thread.rs`) passes the time in and performs what the queue decides,
//! so every state is unit-tested below.
//!
//! Invariants:
//! - An item is offered to the publisher at most once at a time (no duplicate in flight), and a
//!   row acknowledged but not yet deleted is never offered again.
//! - A memory item committed while offered keeps its offer: the publisher's answer then applies
//!   to the row (acknowledged: the row is deleted; refused: the row is offered again later).
//! - Accepting never depends on the publisher: commits are decided by time and size only.

use crate::store::outbox::{Entry, NewEntry};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Names an item handed to the publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// A reading still in memory, by acceptance number.
    Memory(u64),
    /// A committed outbox row, by id.
    Row(i64),
}

/// The publisher's answer for one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// PUBACK received.
    Acked,
    /// Not delivered (connection lost, PUBACK timeout): offer it again.
    Retry,
    /// Cannot be delivered with the current configuration (device mode without a token):
    /// keep it, offer it again after the configuration changes.
    Park,
}

/// An item of work for the publisher.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkItem {
    pub key: Key,
    pub entry: NewEntry,
}

#[derive(Debug)]
struct MemoryItem {
    seq: u64,
    entry: NewEntry,
    accepted: Instant,
    offered: bool,
}

/// The limits the queue works within (from the settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub commit_interval: Duration,
    pub batch_max: usize,
    pub write_behind: bool,
    /// Items the publisher may hold unanswered.
    pub max_outstanding: usize,
}

#[derive(Debug, Default)]
pub struct Queue {
    memory: VecDeque<MemoryItem>,
    next_seq: u64,
    /// Rows offered and not yet answered.
    offered_rows: HashSet<i64>,
    /// Memory items committed while offered: their answer applies to this row.
    committed_offers: HashMap<u64, i64>,
    /// Acknowledged rows waiting for their DELETE (never offered again meanwhile).
    acked_rows: Vec<i64>,
    /// Rows that cannot be delivered until the configuration changes.
    parked_rows: HashSet<i64>,
    /// Memory items parked likewise.
    parked_memory: HashSet<u64>,
    /// Outbox rows (as last counted plus what this queue committed and deleted).
    pub rows: u64,
    /// When the oldest outbox row arrived, as last read from the store.
    pub oldest_row_ts_ms: Option<i64>,
    commit_retry_at: Option<Instant>,
    commit_failures: u32,
}

impl Queue {
    pub fn new(rows: u64, oldest_row_ts_ms: Option<i64>) -> Queue {
        Queue {
            rows,
            oldest_row_ts_ms,
            ..Queue::default()
        }
    }

    /// Takes a reading from a meter. Never refused: the channel before it is the bound.
    pub fn accept(&mut self, entry: NewEntry, now: Instant) {
        self.memory.push_back(MemoryItem {
            seq: self.next_seq,
            entry,
            accepted: now,
            offered: false,
        });
        self.next_seq += 1;
    }

    /// The acceptance number of the last reading taken, if any.
    pub fn last_accepted(&self) -> Option<u64> {
        self.next_seq.checked_sub(1)
    }

    /// Whether every reading accepted up to `seq` has left memory (committed to the outbox,
    /// or acknowledged by the broker).
    pub fn left_memory(&self, seq: u64) -> bool {
        // Memory is in acceptance order (items leave from the front or in place): the front
        // holds the lowest number still there.
        self.memory.front().is_none_or(|m| m.seq > seq)
    }

    /// Readings in memory (not committed, not acknowledged).
    pub fn in_memory(&self) -> usize {
        self.memory.len()
    }

    /// Whether the memory may take more readings (the outbox thread stops reading the channel
    /// past this, so that meters wait instead of memory growing while commits fail).
    pub fn has_room(&self, limits: &Limits) -> bool {
        self.memory.len() < limits.batch_max.saturating_mul(20).max(1000)
    }

    pub fn commit_failing(&self) -> bool {
        self.commit_failures > 0
    }

    /// Since when (Unix ms) the oldest reading not yet acknowledged has waited, in memory or
    /// in the outbox: its arrival, not its reading time (a backfilled profile row is days
    /// older than its arrival, and has not waited that long). `now`/`now_ms`: the same instant
    /// on both clocks.
    pub fn oldest_unsent_ts_ms(&self, now: Instant, now_ms: i64) -> Option<i64> {
        // Memory is in arrival order.
        let memory = self
            .memory
            .front()
            .map(|m| now_ms - now.saturating_duration_since(m.accepted).as_millis() as i64);
        match (memory, self.oldest_row_ts_ms.filter(|_| self.rows > 0)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether there is something to commit and no failed commit is backing off.
    pub fn commit_allowed(&self, now: Instant) -> bool {
        !self.memory.is_empty() && self.commit_retry_at.is_none_or(|t| now >= t)
    }

    /// Whether a group commit is due now.
    pub fn commit_due(&self, now: Instant, limits: &Limits) -> bool {
        let Some(oldest) = self.memory.front() else {
            return false;
        };
        self.commit_allowed(now)
            && (self.memory.len() >= limits.batch_max
                || now.saturating_duration_since(oldest.accepted) >= limits.commit_interval)
    }

    /// When the next commit could become due (for the outbox thread's wait).
    pub fn next_commit_at(&self, limits: &Limits) -> Option<Instant> {
        let due = self.memory.front()?.accepted + limits.commit_interval;
        Some(self.commit_retry_at.map_or(due, |r| r.max(due)))
    }

    /// The readings to commit now (every memory item, in order).
    pub fn commit_batch(&self) -> Vec<NewEntry> {
        self.memory.iter().map(|m| m.entry.clone()).collect()
    }

    /// The commit of the first `ids.len()` memory items succeeded; `ids[i]` is the row of item
    /// i (None: refused by the outbox bound, counted by the store).
    pub fn committed(&mut self, ids: &[Option<i64>]) {
        for id in ids {
            let Some(item) = self.memory.pop_front() else {
                break;
            };
            if let Some(id) = id {
                self.rows += 1;
                if item.offered {
                    self.committed_offers.insert(item.seq, *id);
                    self.offered_rows.insert(*id);
                }
                if self.parked_memory.remove(&item.seq) {
                    self.parked_rows.insert(*id);
                }
            }
        }
        self.commit_failures = 0;
        self.commit_retry_at = None;
    }

    /// The commit failed (disk full, I/O error): everything stays in memory; retry with
    /// backoff (0.5, 1, 2, 4, 5, 5 ... s).
    pub fn commit_failed(&mut self, now: Instant) {
        self.commit_failures += 1;
        let wait = Duration::from_millis(500 << self.commit_failures.min(4).saturating_sub(1));
        self.commit_retry_at = Some(now + wait.min(Duration::from_secs(5)));
    }

    /// A write other than a commit succeeded (a delete, a probe): the disk takes writes again.
    /// With write-behind a healthy broker acknowledges everything before its commit is due,
    /// so without this the failing state (and /healthz 503) would outlive the full disk.
    pub fn write_succeeded(&mut self) {
        self.commit_failures = 0;
        self.commit_retry_at = None;
    }

    /// Whether to probe the disk with a small write: commits are failing, nothing is waiting
    /// to be committed (that commit would be the probe), and the backoff has passed.
    pub fn probe_due(&self, now: Instant) -> bool {
        self.commit_failing()
            && self.memory.is_empty()
            && self.commit_retry_at.is_none_or(|t| now >= t)
    }

    /// The publisher's answers.
    pub fn answered(&mut self, key: Key, outcome: Outcome) {
        match key {
            Key::Memory(seq) => {
                if let Some(row) = self.committed_offers.remove(&seq) {
                    return self.answered(Key::Row(row), outcome);
                }
                let Some(pos) = self.memory.iter().position(|m| m.seq == seq) else {
                    return;
                };
                match outcome {
                    Outcome::Acked => {
                        self.memory.remove(pos);
                    }
                    Outcome::Retry => self.memory[pos].offered = false,
                    Outcome::Park => {
                        self.memory[pos].offered = false;
                        self.parked_memory.insert(seq);
                    }
                }
            }
            Key::Row(id) => {
                if !self.offered_rows.remove(&id) {
                    return;
                }
                match outcome {
                    Outcome::Acked => self.acked_rows.push(id),
                    Outcome::Retry => {}
                    Outcome::Park => {
                        self.parked_rows.insert(id);
                    }
                }
            }
        }
    }

    /// The configuration changed: parked items may be deliverable now.
    pub fn unpark(&mut self) {
        self.parked_rows.clear();
        self.parked_memory.clear();
    }

    /// Acknowledged rows to delete now.
    pub fn deletes(&self) -> &[i64] {
        &self.acked_rows
    }

    /// The DELETE of `deletes()` committed, removing `deleted` rows.
    pub fn deleted(&mut self, deleted: u64) {
        self.acked_rows.clear();
        self.rows = self.rows.saturating_sub(deleted);
    }

    fn outstanding(&self) -> usize {
        self.offered_rows.len() + self.memory.iter().filter(|m| m.offered).count()
    }

    /// Rows in the outbox that could be offered now.
    fn rows_available(&self) -> bool {
        self.rows
            > (self.offered_rows.len() + self.acked_rows.len() + self.parked_rows.len()) as u64
    }

    /// How many outbox rows to read for the publisher now, if any: only while nothing is
    /// outstanding (so that what arrives meanwhile goes out in one batch).
    pub fn rows_wanted(&self, limits: &Limits) -> Option<usize> {
        (self.outstanding() == 0 && self.rows_available()).then_some(
            limits.max_outstanding
                + self.acked_rows.len()
                + self.parked_rows.len()
                + self.offered_rows.len(),
        )
    }

    /// Offers rows read from the outbox (oldest first), skipping any acknowledged, offered or
    /// parked one. An empty read means the count was stale: it is corrected.
    pub fn offer_rows(&mut self, rows: Vec<Entry>, limits: &Limits) -> Vec<WorkItem> {
        if rows.is_empty() {
            self.rows = (self.offered_rows.len() + self.acked_rows.len()) as u64;
            self.parked_rows.clear();
            return Vec::new();
        }
        let acked: HashSet<i64> = self.acked_rows.iter().copied().collect();
        let mut work = Vec::new();
        for e in rows {
            if work.len() >= limits.max_outstanding {
                break;
            }
            if acked.contains(&e.id)
                || self.offered_rows.contains(&e.id)
                || self.parked_rows.contains(&e.id)
            {
                continue;
            }
            self.offered_rows.insert(e.id);
            work.push(WorkItem {
                key: Key::Row(e.id),
                entry: NewEntry {
                    device: e.device,
                    ts_ms: e.ts_ms,
                    kind: e.kind,
                    payload: e.payload,
                },
            });
        }
        if work.is_empty() && self.outstanding() == 0 {
            // Everything read was parked or acknowledged: no more rows to offer now.
            self.rows = self.rows.min(
                (self.offered_rows.len() + self.acked_rows.len() + self.parked_rows.len()) as u64,
            );
        }
        work
    }

    /// Offers readings straight from memory when that keeps order (no row waits before them)
    /// and either write-behind is on or the outbox cannot be written (so a full disk does not
    /// stop publishing). Only while nothing is outstanding, so that they batch.
    pub fn offer_memory(&mut self, limits: &Limits, connected: bool) -> Vec<WorkItem> {
        if !connected
            || self.outstanding() > 0
            || self.rows_available()
            || !(limits.write_behind || self.commit_failing())
        {
            return Vec::new();
        }
        let mut work = Vec::new();
        for m in self.memory.iter_mut() {
            if work.len() >= limits.max_outstanding {
                break;
            }
            if m.offered || self.parked_memory.contains(&m.seq) {
                continue;
            }
            m.offered = true;
            work.push(WorkItem {
                key: Key::Memory(m.seq),
                entry: m.entry.clone(),
            });
        }
        work
    }

    /// The publisher lost everything it held (it stopped or was restarted): offer it again.
    pub fn publisher_reset(&mut self) {
        self.offered_rows.clear();
        self.committed_offers.clear();
        for m in self.memory.iter_mut() {
            m.offered = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::outbox::EntryKind;

    fn reading(ts: i64) -> NewEntry {
        NewEntry {
            device: "A".into(),
            ts_ms: ts,
            kind: EntryKind::Telemetry,
            payload: format!("{{\"v\":{ts}}}"),
        }
    }

    fn row(id: i64) -> Entry {
        Entry {
            id,
            device: "A".into(),
            ts_ms: id,
            kind: EntryKind::Telemetry,
            payload: "{}".into(),
        }
    }

    fn limits(write_behind: bool) -> Limits {
        Limits {
            commit_interval: Duration::from_millis(200),
            batch_max: 500,
            write_behind,
            max_outstanding: 100,
        }
    }

    #[test]
    fn accepting_commits_by_time_or_size_whatever_the_publisher_does() {
        let l = limits(true);
        let t0 = Instant::now();
        let mut q = Queue::new(0, None);
        q.accept(reading(1), t0);
        assert!(!q.commit_due(t0 + Duration::from_millis(199), &l));
        assert!(q.commit_due(t0 + Duration::from_millis(200), &l));
        let small = Limits { batch_max: 2, ..l };
        q.accept(reading(2), t0);
        assert!(q.commit_due(t0, &small), "a full batch commits at once");
        assert_eq!(q.commit_batch().len(), 2);
        q.committed(&[Some(1), Some(2)]);
        assert_eq!((q.in_memory(), q.rows), (0, 2));
    }

    #[test]
    fn write_behind_acknowledged_readings_never_reach_the_disk() {
        let l = limits(true);
        let t0 = Instant::now();
        let mut q = Queue::new(0, None);
        q.accept(reading(1), t0);
        q.accept(reading(2), t0);
        assert!(
            q.offer_memory(&l, false).is_empty(),
            "not while disconnected"
        );
        let work = q.offer_memory(&l, true);
        assert_eq!(work.len(), 2);
        assert!(
            q.offer_memory(&l, true).is_empty(),
            "offered once at a time"
        );
        q.answered(work[0].key, Outcome::Acked);
        q.answered(work[1].key, Outcome::Acked);
        assert_eq!(q.in_memory(), 0);
        assert!(!q.commit_due(t0 + Duration::from_secs(1), &l));
    }

    #[test]
    fn without_write_behind_readings_wait_for_the_commit() {
        let mut q = Queue::new(0, None);
        q.accept(reading(1), Instant::now());
        assert!(q.offer_memory(&limits(false), true).is_empty());
    }

    #[test]
    fn an_offer_committed_before_its_puback_applies_to_the_row() {
        let l = limits(true);
        let t0 = Instant::now();
        let mut q = Queue::new(0, None);
        q.accept(reading(1), t0);
        let work = q.offer_memory(&l, true);
        q.committed(&[Some(7)]);
        // Not offered again from the outbox while the first offer is in flight.
        assert_eq!(q.rows_wanted(&l), None);
        q.answered(work[0].key, Outcome::Acked);
        assert_eq!(q.deletes(), &[7]);
        // Acknowledged and not yet deleted: never offered again.
        assert!(q.offer_rows(vec![row(7)], &l).is_empty());
        q.deleted(1);
        assert_eq!(q.rows, 0);
    }

    #[test]
    fn a_refused_offer_committed_meanwhile_is_offered_again_from_the_outbox() {
        let l = limits(true);
        let mut q = Queue::new(0, None);
        q.accept(reading(1), Instant::now());
        let work = q.offer_memory(&l, true);
        q.committed(&[Some(7)]);
        q.answered(work[0].key, Outcome::Retry);
        assert!(q.deletes().is_empty());
        assert!(q.rows_wanted(&l).is_some());
        let again = q.offer_rows(vec![row(7)], &l);
        assert_eq!(again[0].key, Key::Row(7));
    }

    #[test]
    fn rows_go_before_memory_to_keep_order() {
        let l = limits(true);
        let mut q = Queue::new(3, Some(1));
        q.accept(reading(10), Instant::now());
        assert!(q.offer_memory(&l, true).is_empty(), "rows first");
        let work = q.offer_rows(vec![row(1), row(2), row(3)], &l);
        assert_eq!(work.len(), 3);
        assert_eq!(q.rows_wanted(&l), None, "nothing more while outstanding");
        for w in &work {
            q.answered(w.key, Outcome::Acked);
        }
        q.deleted(3);
        assert_eq!(q.offer_memory(&l, true).len(), 1);
    }

    #[test]
    fn failing_commits_keep_readings_and_publish_them_from_memory() {
        let l = limits(false);
        let t0 = Instant::now();
        let mut q = Queue::new(0, None);
        q.accept(reading(5), t0);
        q.commit_failed(t0);
        assert!(q.commit_failing());
        assert!(
            !q.commit_due(t0 + Duration::from_millis(300), &l),
            "backs off"
        );
        assert!(q.commit_due(t0 + Duration::from_millis(600), &l));
        assert_eq!(
            q.oldest_unsent_ts_ms(t0 + Duration::from_millis(600), 10_000),
            Some(9_400),
            "memory counts as unsent, from its arrival"
        );
        // Disk full: published from memory even without write-behind.
        let work = q.offer_memory(&l, true);
        assert_eq!(work.len(), 1);
        q.answered(work[0].key, Outcome::Acked);
        assert_eq!(q.in_memory(), 0);
    }

    #[test]
    fn commit_backoff_is_bounded() {
        let t0 = Instant::now();
        let mut q = Queue::new(0, None);
        q.accept(reading(1), t0);
        for _ in 0..20 {
            q.commit_failed(t0);
        }
        assert!(q.commit_due(t0 + Duration::from_secs(5), &limits(true)));
        assert!(
            !q.has_room(&Limits {
                batch_max: 0,
                ..limits(true)
            }) || q.in_memory() < 1000
        );
    }

    #[test]
    fn parked_rows_wait_for_a_configuration_change() {
        let l = limits(false);
        let mut q = Queue::new(2, Some(1));
        let work = q.offer_rows(vec![row(1), row(2)], &l);
        q.answered(work[0].key, Outcome::Park);
        q.answered(work[1].key, Outcome::Acked);
        q.deleted(1);
        assert_eq!(q.rows_wanted(&l), None, "only a parked row is left");
        q.unpark();
        assert!(q.rows_wanted(&l).is_some());
        assert_eq!(q.offer_rows(vec![row(1)], &l).len(), 1);
    }

    #[test]
    fn a_stale_row_count_is_corrected_by_an_empty_read() {
        let l = limits(true);
        let mut q = Queue::new(5, Some(1));
        assert!(q.offer_rows(Vec::new(), &l).is_empty());
        assert_eq!(q.rows, 0);
        assert_eq!(q.oldest_unsent_ts_ms(Instant::now(), 0), None);
    }

    #[test]
    fn a_publisher_reset_offers_everything_again() {
        let l = limits(true);
        let mut q = Queue::new(1, Some(1));
        q.offer_rows(vec![row(1)], &l);
        q.publisher_reset();
        assert_eq!(q.offer_rows(vec![row(1)], &l).len(), 1);
    }

    #[test]
    fn refused_by_the_bound_is_not_a_row() {
        let mut q = Queue::new(0, None);
        q.accept(reading(1), Instant::now());
        q.committed(&[None]);
        assert_eq!((q.in_memory(), q.rows), (0, 0));
    }

    #[test]
    fn a_successful_delete_or_probe_ends_the_failing_state() {
        let t0 = Instant::now();
        let mut q = Queue::new(0, None);
        q.commit_failed(t0);
        assert!(q.commit_failing());
        assert!(!q.probe_due(t0), "backing off");
        assert!(
            q.probe_due(t0 + Duration::from_secs(1)),
            "nothing in memory: probe"
        );
        q.write_succeeded();
        assert!(!q.commit_failing() && !q.probe_due(t0 + Duration::from_secs(1)));
    }
}
