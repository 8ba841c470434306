//! The alarms themselves: raised when a condition starts to hold, updated while it holds,
//! cleared when it no longer does, acknowledged by a person. Bounded: every active alarm is
//! kept, and at most [`KEEP_CLEARED`] cleared ones (the oldest go first).

use super::watch::Verdict;
use super::{Alarm, Kind, Subject};
use std::collections::BTreeSet;

pub const KEEP_CLEARED: usize = 200;
/// Acknowledging names are cut to this (they come from the API).
const MAX_BY: usize = 64;

#[derive(Debug, Default)]
pub struct AlarmBook {
    alarms: Vec<Alarm>,
    next_id: i64,
    /// Changed since the last [`AlarmBook::take_changes`]: to be written.
    dirty: BTreeSet<i64>,
    /// Pruned since then: to be deleted.
    pruned: Vec<i64>,
}

/// What changed for the outside world (telemetry, log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Raised(Alarm),
    Cleared(Alarm),
}

#[derive(Debug, PartialEq, Eq)]
pub struct NotFound;

impl AlarmBook {
    /// A book holding alarms read back from the database.
    pub fn with(mut alarms: Vec<Alarm>) -> AlarmBook {
        alarms.sort_by_key(|a| a.id);
        let next_id = alarms.last().map_or(1, |a| a.id + 1);
        AlarmBook {
            alarms,
            next_id,
            ..AlarmBook::default()
        }
    }

    pub fn all(&self) -> &[Alarm] {
        &self.alarms
    }

    pub fn active(&self) -> impl Iterator<Item = &Alarm> {
        self.alarms.iter().filter(|a| a.active())
    }

    fn open_index(&self, meter: &Subject, kind: Kind) -> Option<usize> {
        self.alarms
            .iter()
            .position(|a| a.active() && a.kind == kind && &a.meter == meter)
    }

    /// Applies what holds now.
    pub fn apply(&mut self, verdict: &Verdict, now_ms: i64) -> Vec<Transition> {
        let mut out = Vec::new();
        for c in &verdict.holds {
            match self.open_index(&c.meter, c.kind) {
                Some(i) => {
                    let a = &mut self.alarms[i];
                    a.last_seen_ms = now_ms;
                    // The detail (e.g. "silent for 41 s") and last-seen time change every
                    // second: kept in memory, written with the next change or touch.
                    a.detail.clone_from(&c.detail);
                    if c.occurrences > 0 {
                        a.count += c.occurrences;
                        self.dirty.insert(a.id);
                    }
                }
                None => {
                    if self.next_id == 0 {
                        self.next_id = 1;
                    }
                    let a = Alarm {
                        id: self.next_id,
                        meter: c.meter.clone(),
                        kind: c.kind,
                        severity: c.kind.severity(),
                        detail: c.detail.clone(),
                        first_seen_ms: now_ms,
                        last_seen_ms: now_ms,
                        count: c.occurrences.max(1),
                        cleared_ms: None,
                        acked_by: None,
                        acked_ms: None,
                    };
                    self.next_id += 1;
                    self.dirty.insert(a.id);
                    out.push(Transition::Raised(a.clone()));
                    self.alarms.push(a);
                }
            }
        }
        for a in &mut self.alarms {
            let holds = |(m, k): (&Subject, Kind)| m == &a.meter && k == a.kind;
            let still = verdict.holds.iter().any(|c| holds((&c.meter, c.kind)))
                || verdict.undecided.iter().any(|(m, k)| holds((m, *k)))
                || (verdict.meters_undecided && a.meter.is_some());
            if a.active() && !still {
                a.cleared_ms = Some(now_ms);
                self.dirty.insert(a.id);
                out.push(Transition::Cleared(a.clone()));
            }
        }
        self.prune();
        out
    }

    fn prune(&mut self) {
        let cleared = self.alarms.iter().filter(|a| !a.active()).count();
        if cleared <= KEEP_CLEARED {
            return;
        }
        let mut times: Vec<(i64, i64)> = self
            .alarms
            .iter()
            .filter_map(|a| a.cleared_ms.map(|t| (t, a.id)))
            .collect();
        times.sort_unstable();
        let gone: BTreeSet<i64> = times[..cleared - KEEP_CLEARED]
            .iter()
            .map(|(_, id)| *id)
            .collect();
        self.alarms.retain(|a| !gone.contains(&a.id));
        for id in gone {
            self.dirty.remove(&id);
            self.pruned.push(id);
        }
    }

    /// Acknowledges an alarm (active or cleared); the first acknowledgement stays.
    pub fn ack(&mut self, id: i64, by: &str, now_ms: i64) -> Result<Alarm, NotFound> {
        let a = self
            .alarms
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or(NotFound)?;
        if a.acked_ms.is_none() {
            let by: String = by
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_BY)
                .collect();
            a.acked_by = Some(by);
            a.acked_ms = Some(now_ms);
            self.dirty.insert(id);
        }
        Ok(a.clone())
    }

    /// Alarms to write and ids to delete since the last call.
    pub fn take_changes(&mut self) -> (Vec<Alarm>, Vec<i64>) {
        let dirty = std::mem::take(&mut self.dirty);
        let changed = self
            .alarms
            .iter()
            .filter(|a| dirty.contains(&a.id))
            .cloned()
            .collect();
        (changed, std::mem::take(&mut self.pruned))
    }

    /// A write failed: the same changes are written next time.
    pub fn put_back(&mut self, changed: &[Alarm], pruned: Vec<i64>) {
        self.dirty.extend(changed.iter().map(|a| a.id));
        self.pruned.extend(pruned);
    }

    /// Marks every active alarm to be written (their last-seen times, now and then).
    pub fn touch_active(&mut self) {
        let ids: Vec<i64> = self.active().map(|a| a.id).collect();
        self.dirty.extend(ids);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarm::Condition;

    fn holds(meter: Option<&str>, kind: Kind, occurrences: u64) -> Verdict {
        Verdict {
            holds: vec![Condition {
                meter: meter.map(str::to_string),
                kind,
                detail: "why".into(),
                occurrences,
            }],
            ..Verdict::default()
        }
    }

    #[test]
    fn raise_update_clear_ack() {
        let mut b = AlarmBook::default();
        let t = b.apply(&holds(Some("A"), Kind::AssociationRejected, 1), 1_000);
        assert!(matches!(&t[..], [Transition::Raised(a)] if a.id == 1 && a.count == 1));
        assert!(b
            .apply(&holds(Some("A"), Kind::AssociationRejected, 2), 2_000)
            .is_empty());
        let a = &b.all()[0];
        assert_eq!(
            (a.count, a.first_seen_ms, a.last_seen_ms),
            (3, 1_000, 2_000)
        );
        let acked = b.ack(1, "Anna\u{7}", 2_500).unwrap();
        assert_eq!(acked.acked_by.as_deref(), Some("Anna"));
        assert_eq!(
            b.ack(1, "Bob", 2_600).unwrap().acked_by.as_deref(),
            Some("Anna")
        );
        assert_eq!(b.ack(9, "Bob", 2_600), Err(NotFound));
        let t = b.apply(&Verdict::default(), 3_000);
        assert!(matches!(&t[..], [Transition::Cleared(a)] if a.cleared_ms == Some(3_000)));
        assert_eq!(b.active().count(), 0);
        // Again: a new alarm, not the cleared one reopened.
        let t = b.apply(&holds(Some("A"), Kind::AssociationRejected, 1), 4_000);
        assert!(matches!(&t[..], [Transition::Raised(a)] if a.id == 2));
        let (changed, pruned) = b.take_changes();
        assert_eq!(changed.len(), 2);
        assert!(pruned.is_empty());
        assert_eq!(b.take_changes().0.len(), 0);
    }

    #[test]
    fn undecided_alarms_stay_and_the_book_is_bounded() {
        let mut b = AlarmBook::default();
        b.apply(&holds(None, Kind::PublisherOffline, 0), 0);
        let undecided = Verdict {
            undecided: vec![(None, Kind::PublisherOffline)],
            ..Verdict::default()
        };
        assert!(b.apply(&undecided, 1).is_empty());
        assert_eq!(b.active().count(), 1);
        b.apply(&holds(Some("M"), Kind::ClockDrift, 0), 1);
        let starting = Verdict {
            meters_undecided: true,
            ..Verdict::default()
        };
        assert!(
            b.apply(&starting, 1).is_empty(),
            "just started: meter alarms stay"
        );
        assert_eq!(b.active().count(), 1);
        b.apply(&Verdict::default(), 2);
        b.apply(&Verdict::default(), 2);
        for i in 0..(KEEP_CLEARED as i64 + 10) {
            b.apply(&holds(Some("M"), Kind::MeterOffline, 0), 10 + 2 * i);
            b.apply(&Verdict::default(), 11 + 2 * i);
        }
        b.apply(&holds(Some("M"), Kind::MeterOffline, 0), 100_000);
        assert_eq!(b.all().len(), KEEP_CLEARED + 1);
        assert_eq!(b.active().count(), 1, "active alarms are never pruned");
        let (_, pruned) = b.take_changes();
        assert_eq!(pruned.len(), 12);
        assert_eq!(pruned[0], 1, "the oldest cleared go first");
    }
}
