//! Alarms the bridge raises and clears itself (sans-I/O): what went wrong, on which meter or
//! on the gateway, since when, how often, and who acknowledged it.
//!
//! [`watch::Watch`] turns snapshots of the runtime's status into the conditions that hold now;
//! [`book::AlarmBook`] turns conditions into alarms (raise, update, clear), bounded in number.
//! The runtime (`bridge::alarm_watch`) feeds both once a second, keeps the book in SQLite and
//! tells ThingsBoard.

pub mod book;
pub mod watch;

use serde_json::{json, Value};

/// ThingsBoard's alarm severities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Critical,
    Major,
    Minor,
    Warning,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::Major,
        Severity::Minor,
        Severity::Warning,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::Major => "MAJOR",
            Severity::Minor => "MINOR",
            Severity::Warning => "WARNING",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// No successful read for three polling intervals (at least [`watch::MIN_OFFLINE_S`]).
    MeterOffline,
    /// The meter's circuit breaker is open: the bridge has stopped trying for a while.
    BreakerOpen,
    /// The meter refused the association (authentication, keys, invocation counter).
    AssociationRejected,
    /// The meter's clock is off by more than `alarm.clock_drift_s`.
    ClockDrift,
    /// The outbox holds more than 80 % of `outbox.max_rows`.
    OutboxHigh,
    /// Readings were dropped (outbox full or too old).
    ReadingsDropped,
    /// No broker connection for more than `alarm.publisher_offline_s`.
    PublisherOffline,
    /// Outbox commits fail (disk full or an I/O error).
    DiskFull,
    /// A configured profile cannot be read (not a profile, no such object, no access).
    ProfileRefused,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::MeterOffline,
        Kind::BreakerOpen,
        Kind::AssociationRejected,
        Kind::ClockDrift,
        Kind::OutboxHigh,
        Kind::ReadingsDropped,
        Kind::PublisherOffline,
        Kind::DiskFull,
        Kind::ProfileRefused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::MeterOffline => "meter_offline",
            Kind::BreakerOpen => "breaker_open",
            Kind::AssociationRejected => "association_rejected",
            Kind::ClockDrift => "clock_drift",
            Kind::OutboxHigh => "outbox_high",
            Kind::ReadingsDropped => "readings_dropped",
            Kind::PublisherOffline => "publisher_offline",
            Kind::DiskFull => "disk_full",
            Kind::ProfileRefused => "profile_refused",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Data at risk is critical; a meter not read is major; a clock is a warning.
    pub fn severity(self) -> Severity {
        match self {
            Kind::DiskFull | Kind::ReadingsDropped | Kind::AssociationRejected => {
                Severity::Critical
            }
            Kind::MeterOffline | Kind::PublisherOffline | Kind::OutboxHigh => Severity::Major,
            Kind::BreakerOpen => Severity::Minor,
            Kind::ClockDrift | Kind::ProfileRefused => Severity::Warning,
        }
    }
}

/// What an alarm is about: a meter (by name) or the gateway itself (`None`).
pub type Subject = Option<String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub id: i64,
    pub meter: Subject,
    pub kind: Kind,
    pub severity: Severity,
    /// The latest explanation (an error message, a drift in seconds, ...).
    pub detail: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Occurrences while raised: failed associations, dropped readings; 1 for a state.
    pub count: u64,
    pub cleared_ms: Option<i64>,
    pub acked_by: Option<String>,
    pub acked_ms: Option<i64>,
}

impl Alarm {
    pub fn active(&self) -> bool {
        self.cleared_ms.is_none()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "meter": self.meter,
            "subject": self.meter.as_deref().unwrap_or("gateway"),
            "type": self.kind.as_str(),
            "severity": self.severity.as_str(),
            "detail": self.detail,
            "first_seen_ms": self.first_seen_ms,
            "last_seen_ms": self.last_seen_ms,
            "count": self.count,
            "active": self.active(),
            "cleared_ms": self.cleared_ms,
            "acknowledged": self.acked_ms.is_some(),
            "acked_by": self.acked_by,
            "acked_ms": self.acked_ms,
        })
    }

    /// The telemetry that tells ThingsBoard (a rule chain creates or clears its alarm).
    pub fn telemetry(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("alarm_type".into(), self.kind.as_str().into());
        m.insert("alarm_severity".into(), self.severity.as_str().into());
        m.insert(
            "alarm_state".into(),
            if self.active() { "raised" } else { "cleared" }.into(),
        );
        m.insert("alarm_detail".into(), self.detail.clone().into());
        m
    }
}

/// A condition that holds now (from [`watch::Watch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub meter: Subject,
    pub kind: Kind,
    pub detail: String,
    /// New occurrences since the last look (0 for a state that simply goes on).
    pub occurrences: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_have_a_severity() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("nope"), None);
        assert_eq!(Kind::DiskFull.severity(), Severity::Critical);
        assert_eq!(Kind::ClockDrift.severity(), Severity::Warning);
    }
}
