//! From status snapshots to the conditions that hold now. Pure: the caller passes the time.

use super::{Condition, Kind, Subject};
use std::collections::HashMap;

/// A meter at a 1 s interval is not "offline" after one slow answer: at least this long.
pub const MIN_OFFLINE_S: i64 = 10;
/// A drop of readings stays an active alarm this long after the last reading dropped.
pub const DROPPED_HOLD_S: i64 = 600;
/// After a start, meters appear in the status as their threads start: until then no meter
/// alarm is cleared for want of its meter.
pub const START_GRACE_S: i64 = 10;

/// One meter as the status shows it.
#[derive(Debug, Clone, Default)]
pub struct MeterView {
    pub name: String,
    pub disabled: bool,
    pub breaker_open: bool,
    pub interval_s: u32,
    pub last_success_ms: Option<i64>,
    pub last_error: Option<String>,
    /// The refusal of the latest association, while it is the latest word from the meter.
    pub rejected: Option<String>,
    /// Refused associations so far.
    pub rejections: u64,
    pub clock_drift_s: Option<i64>,
    /// Why a configured profile cannot be read.
    pub profile_error: Option<String>,
}

/// The gateway as the status shows it.
#[derive(Debug, Clone, Default)]
pub struct GatewayView {
    pub publishing: bool,
    pub connected: bool,
    /// Readings not yet acknowledged: the outbox and memory.
    pub unsent: u64,
    pub outbox_max_rows: u64,
    pub dropped: u64,
    pub commit_error: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub publisher_offline_s: u64,
    pub clock_drift_s: u64,
}

/// What holds now, and what cannot be told yet (an alarm of these stays as it is: after a
/// restart, a meter not yet tried is neither offline nor back).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub holds: Vec<Condition>,
    pub undecided: Vec<(Subject, Kind)>,
    /// Every meter alarm is undecided (just started).
    pub meters_undecided: bool,
}

#[derive(Debug, Default)]
pub struct Watch {
    started_ms: Option<i64>,
    /// When each meter was first seen (the reference while it has never been read).
    first_seen_ms: HashMap<String, i64>,
    rejections: HashMap<String, u64>,
    disconnected_since_ms: Option<i64>,
    dropped: Option<u64>,
    last_drop_ms: Option<i64>,
}

impl Watch {
    pub fn observe(
        &mut self,
        meters: &[MeterView],
        gateway: &GatewayView,
        limits: Limits,
        now_ms: i64,
    ) -> Verdict {
        let mut v = Verdict::default();
        let started = *self.started_ms.get_or_insert(now_ms);
        v.meters_undecided = now_ms - started < START_GRACE_S * 1000;
        self.first_seen_ms
            .retain(|name, _| meters.iter().any(|m| &m.name == name));
        for m in meters {
            self.meter(m, limits, now_ms, &mut v);
        }
        self.gateway(gateway, limits, now_ms, &mut v);
        v
    }

    fn meter(&mut self, m: &MeterView, limits: Limits, now_ms: i64, v: &mut Verdict) {
        let subject = Some(m.name.clone());
        let hold = |v: &mut Verdict, kind, detail: String, occurrences| {
            v.holds.push(Condition {
                meter: subject.clone(),
                kind,
                detail,
                occurrences,
            })
        };
        let first_seen = *self.first_seen_ms.entry(m.name.clone()).or_insert(now_ms);
        let previous_rejections = self.rejections.insert(m.name.clone(), m.rejections);
        if m.disabled {
            return;
        }
        let limit_s = (3 * i64::from(m.interval_s)).max(MIN_OFFLINE_S);
        let since = m.last_success_ms.unwrap_or(first_seen);
        let silent_s = (now_ms - since) / 1000;
        if silent_s > limit_s {
            let why = m.last_error.as_deref().unwrap_or("no answer yet");
            let detail = match m.last_success_ms {
                Some(_) => format!("no successful read for {silent_s} s: {why}"),
                None => format!("never read in {silent_s} s: {why}"),
            };
            hold(v, Kind::MeterOffline, detail, 0);
        } else if m.last_success_ms.is_none() {
            v.undecided.push((subject.clone(), Kind::MeterOffline));
        }
        if m.breaker_open {
            let why = m.last_error.clone().unwrap_or_default();
            hold(v, Kind::BreakerOpen, format!("retries paused: {why}"), 0);
        }
        if let Some(why) = &m.rejected {
            let new = m
                .rejections
                .saturating_sub(previous_rejections.unwrap_or(0))
                .max(u64::from(previous_rejections.is_none()));
            hold(v, Kind::AssociationRejected, why.clone(), new);
        } else if m.last_success_ms.is_none() {
            // Not associated since start: a refusal from before a restart may still hold.
            v.undecided
                .push((subject.clone(), Kind::AssociationRejected));
        }
        if m.clock_drift_s.is_none() {
            v.undecided.push((subject.clone(), Kind::ClockDrift));
        }
        if let Some(why) = &m.profile_error {
            hold(v, Kind::ProfileRefused, why.clone(), 0);
        } else if m.last_success_ms.is_none() {
            v.undecided.push((subject.clone(), Kind::ProfileRefused));
        }
        if let Some(drift) = m.clock_drift_s {
            if drift.unsigned_abs() > limits.clock_drift_s {
                let detail = format!(
                    "the meter's clock is {} s {} the gateway's (limit {} s)",
                    drift.unsigned_abs(),
                    if drift > 0 { "ahead of" } else { "behind" },
                    limits.clock_drift_s
                );
                hold(v, Kind::ClockDrift, detail, 0);
            }
        }
    }

    fn gateway(&mut self, g: &GatewayView, limits: Limits, now_ms: i64, v: &mut Verdict) {
        let mut hold = |kind, detail: String, occurrences| {
            v.holds.push(Condition {
                meter: None,
                kind,
                detail,
                occurrences,
            })
        };
        if g.outbox_max_rows > 0 && g.unsent.saturating_mul(5) >= g.outbox_max_rows * 4 {
            hold(
                Kind::OutboxHigh,
                format!(
                    "{} readings wait ({} % of outbox.max_rows {})",
                    g.unsent,
                    g.unsent * 100 / g.outbox_max_rows,
                    g.outbox_max_rows
                ),
                0,
            );
        }
        let before = self.dropped.replace(g.dropped);
        let new_drops = before.map_or(0, |b| g.dropped.saturating_sub(b));
        if new_drops > 0 {
            self.last_drop_ms = Some(now_ms);
        }
        if self
            .last_drop_ms
            .is_some_and(|t| now_ms - t <= DROPPED_HOLD_S * 1000)
        {
            hold(
                Kind::ReadingsDropped,
                format!(
                    "{} readings dropped so far (outbox full or too old)",
                    g.dropped
                ),
                new_drops,
            );
        }
        if g.publishing && !g.connected {
            let since = *self.disconnected_since_ms.get_or_insert(now_ms);
            let offline_s = (now_ms - since) / 1000;
            if offline_s > limits.publisher_offline_s as i64 {
                hold(
                    Kind::PublisherOffline,
                    format!("no broker connection for {offline_s} s"),
                    0,
                );
            } else {
                v.undecided.push((None, Kind::PublisherOffline));
            }
        } else {
            self.disconnected_since_ms = None;
        }
        if let Some(e) = &g.commit_error {
            hold(Kind::DiskFull, format!("outbox commits fail: {e}"), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        publisher_offline_s: 300,
        clock_drift_s: 60,
    };

    fn meter(name: &str) -> MeterView {
        MeterView {
            name: name.into(),
            interval_s: 5,
            ..MeterView::default()
        }
    }

    fn kinds(v: &Verdict) -> Vec<(Option<&str>, Kind)> {
        v.holds
            .iter()
            .map(|c| (c.meter.as_deref(), c.kind))
            .collect()
    }

    #[test]
    fn a_meter_is_offline_after_three_intervals_without_a_read() {
        let mut w = Watch::default();
        let g = GatewayView::default();
        let mut m = meter("A");
        m.last_success_ms = Some(0);
        assert!(w.observe(&[m.clone()], &g, LIMITS, 15_000).holds.is_empty());
        let v = w.observe(&[m.clone()], &g, LIMITS, 16_000);
        assert_eq!(kinds(&v), [(Some("A"), Kind::MeterOffline)]);
        assert!(v.holds[0].detail.contains("16 s"), "{:?}", v.holds);
        m.disabled = true;
        assert!(w.observe(&[m], &g, LIMITS, 60_000).holds.is_empty());
    }

    #[test]
    fn a_meter_never_read_is_undecided_until_its_limit_then_offline() {
        let mut w = Watch::default();
        let g = GatewayView::default();
        let mut m = meter("A");
        m.interval_s = 1;
        let v = w.observe(&[m.clone()], &g, LIMITS, 1_000);
        let a = Some("A".to_string());
        assert_eq!(
            v.undecided,
            [
                (a.clone(), Kind::MeterOffline),
                (a.clone(), Kind::AssociationRejected),
                (a.clone(), Kind::ClockDrift),
                (a, Kind::ProfileRefused)
            ],
            "nothing known yet: alarms from before a restart stay as they are"
        );
        let v = w.observe(&[m], &g, LIMITS, 12_000);
        assert_eq!(kinds(&v), [(Some("A"), Kind::MeterOffline)], "10 s minimum");
    }

    /// Issue 25 item 9: a profile that is not one was only logged, once.
    #[test]
    fn a_profile_that_cannot_be_read_is_an_alarm_while_it_cannot() {
        let mut w = Watch::default();
        let g = GatewayView::default();
        let mut m = meter("A");
        m.last_success_ms = Some(0);
        m.profile_error = Some("profile 1-0:32.7.0*255: not a profile".into());
        let v = w.observe(&[m.clone()], &g, LIMITS, 1_000);
        assert_eq!(kinds(&v), [(Some("A"), Kind::ProfileRefused)]);
        assert_eq!(v.holds[0].kind.severity(), crate::alarm::Severity::Warning);
        m.profile_error = None;
        assert!(w.observe(&[m], &g, LIMITS, 2_000).holds.is_empty());
    }

    #[test]
    fn rejections_count_new_refusals_and_clocks_their_limit() {
        let mut w = Watch::default();
        let g = GatewayView::default();
        let mut m = meter("A");
        m.last_success_ms = Some(0);
        m.rejected = Some("authentication failure".into());
        m.rejections = 3;
        m.clock_drift_s = Some(-61);
        m.breaker_open = true;
        let v = w.observe(&[m.clone()], &g, LIMITS, 1_000);
        assert_eq!(
            kinds(&v),
            [
                (Some("A"), Kind::BreakerOpen),
                (Some("A"), Kind::AssociationRejected),
                (Some("A"), Kind::ClockDrift)
            ]
        );
        m.breaker_open = false;
        assert_eq!(
            v.holds[1].occurrences, 3,
            "first look: every refusal so far"
        );
        assert!(v.holds[2].detail.contains("61 s behind"));
        m.rejections = 5;
        m.clock_drift_s = Some(60);
        let v = w.observe(&[m], &g, LIMITS, 2_000);
        assert_eq!(kinds(&v), [(Some("A"), Kind::AssociationRejected)]);
        assert_eq!(v.holds[0].occurrences, 2);
    }

    #[test]
    fn gateway_conditions() {
        let mut w = Watch::default();
        let mut g = GatewayView {
            publishing: true,
            connected: false,
            unsent: 79,
            outbox_max_rows: 100,
            dropped: 7,
            commit_error: None,
        };
        let v = w.observe(&[], &g, LIMITS, 0);
        assert!(v.holds.is_empty(), "{v:?}");
        assert_eq!(v.undecided, [(None, Kind::PublisherOffline)]);
        g.unsent = 80;
        g.dropped = 9;
        g.commit_error = Some("database or disk is full".into());
        let v = w.observe(&[], &g, LIMITS, 301_000);
        assert_eq!(
            kinds(&v),
            [
                (None, Kind::OutboxHigh),
                (None, Kind::ReadingsDropped),
                (None, Kind::PublisherOffline),
                (None, Kind::DiskFull)
            ]
        );
        assert_eq!(v.holds[1].occurrences, 2);
        g.connected = true;
        g.commit_error = None;
        g.unsent = 0;
        let v = w.observe(&[], &g, LIMITS, 302_000);
        assert_eq!(
            kinds(&v),
            [(None, Kind::ReadingsDropped)],
            "drops hold a while"
        );
        let v = w.observe(&[], &g, LIMITS, 302_000 + DROPPED_HOLD_S * 1000);
        assert!(v.holds.is_empty());
        g.connected = false;
        let v = w.observe(&[], &g, LIMITS, 1_000_000);
        assert!(
            v.holds.is_empty(),
            "the outage counts from its start: {v:?}"
        );
    }
}
