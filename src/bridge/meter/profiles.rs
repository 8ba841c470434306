//! Profile collection with backfill: a meter's load profiles and event logs (class 7 Profile
//! generic, Blue Book 4.3.6), read incrementally from the newest row already sent (the cursor,
//! kept per meter and profile in SQLite) to the meter's present, in chunks of
//! `profile.chunk_rows` rows between live polls.
//!
//! Rows are read by range on the clock column (selective access selector 1); a meter that
//! refuses range access is read by entry (selector 2) from its newest entry backwards until
//! the cursor is reached. Every chunk leaves with the cursor it moves to; the outbox thread
//! stores that cursor only once the chunk's rows are in the outbox (or acknowledged), so a
//! restart, even after kill -9, resumes without skipping a row (a row may come twice, with the
//! same timestamp).

use crate::bridge::event::Reading;
use crate::client::reads::{self, ProfileRow, ReadError, RowSelection, ScalerCache, Target};
use crate::client::{json, ClientError, Connection, Transport};
use crate::config::settings::BridgeSettings;
use crate::config::ProfileSpec;
use crate::cosem::events::{event_name, is_event_code};
use crate::dlms::axdr::format_rfc3339;
use crate::dlms::xdlms::CaptureObject;
use log::{info, warn};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// How far a meter's clock may be ahead of ours before its newest rows are taken as "not yet
/// complete": a window ending later than now minus this is read again next time.
const CLOCK_MARGIN_S: i64 = 120;

/// Rows of one profile read and ready to go, with the cursor they move to.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub profile: String,
    pub rows: Vec<Reading>,
    /// The newest row's time (Unix seconds): the cursor once these rows are in the outbox.
    pub cursor: i64,
}

/// What the collector needs of the bridge's settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub chunk_rows: u32,
    pub initial_days: u32,
    pub max_backfill_days: u32,
}

impl Limits {
    pub fn of(s: &BridgeSettings) -> Limits {
        Limits {
            chunk_rows: s.profile_chunk_rows.max(1),
            initial_days: s.profile_initial_days,
            max_backfill_days: s.profile_max_backfill_days.max(1),
        }
    }
}

/// The association-bound facts of a profile: read once per association.
#[derive(Debug, Clone)]
struct Shape {
    columns: Vec<CaptureObject>,
    /// capture_period (attribute 4); 0 for asynchronous profiles (event logs).
    period: i64,
}

#[derive(Debug)]
struct State {
    spec: ProfileSpec,
    /// The newest row sent (Unix seconds).
    cursor: Option<i64>,
    /// Where the next range read starts: past the cursor, and past windows already found
    /// empty (gaps in the meter's own record) in this run.
    scan_from: Option<i64>,
    shape: Option<Shape>,
    by_entry: bool,
    due: Instant,
    /// The last collection stopped at its chunk limit: the next one is due at once.
    backlog: bool,
    /// The profile cannot be read (no such object, not a profile, no access): said once
    /// until it can, and why (for the meter's card and the `profile_refused` alarm).
    refused: bool,
    refused_why: Option<String>,
}

impl State {
    /// Due at its period, or at once while a backlog remains.
    fn is_due(&self, now: Instant) -> bool {
        self.backlog || self.due <= now
    }
}

/// A meter's profiles and their collection state.
#[derive(Debug, Default)]
pub struct Collector {
    meter: String,
    utc_offset_min: i16,
    states: Vec<State>,
}

/// Where cursors are kept (the database; a map in tests).
pub trait Cursors {
    fn load(&self, meter: &str, profile: &str) -> Option<i64>;
}

impl Collector {
    /// Why a configured profile cannot be read (the first such), while it cannot.
    pub fn refused(&self) -> Option<String> {
        self.states.iter().find_map(|s| s.refused_why.clone())
    }

    pub fn new(meter: &str, specs: &[ProfileSpec], utc_offset_min: i16) -> Collector {
        let mut c = Collector {
            meter: meter.to_string(),
            utc_offset_min,
            states: Vec::new(),
        };
        c.configure(specs, utc_offset_min);
        c
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// A live change of the meter's profiles: kept profiles keep their state.
    pub fn configure(&mut self, specs: &[ProfileSpec], utc_offset_min: i16) {
        self.utc_offset_min = utc_offset_min;
        let mut old = std::mem::take(&mut self.states);
        for spec in specs {
            match old.iter().position(|s| s.spec.obis == spec.obis) {
                Some(i) => {
                    let mut s = old.swap_remove(i);
                    s.spec = spec.clone();
                    self.states.push(s);
                }
                None => self.states.push(State {
                    spec: spec.clone(),
                    cursor: None,
                    scan_from: None,
                    shape: None,
                    by_entry: false,
                    due: Instant::now(),
                    backlog: false,
                    refused: false,
                    refused_why: None,
                }),
            }
        }
    }

    /// The association ended: columns and periods are read again on the next one.
    pub fn association_closed(&mut self) {
        for s in &mut self.states {
            s.shape = None;
        }
    }

    /// Whether a profile is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.states.iter().any(|s| s.is_due(now))
    }

    /// Collects at most one chunk of every profile that is due, on the open association.
    /// Errors of the link end the collection (the caller handles them like a failed poll);
    /// a profile the meter refuses is reported once and retried at its period.
    pub fn collect<T: Transport>(
        &mut self,
        conn: &mut Connection<T>,
        cache: &mut ScalerCache,
        cursors: &dyn Cursors,
        limits: Limits,
        now_s: i64,
    ) -> Result<Vec<Chunk>, ClientError> {
        let mut out = Vec::new();
        let now = Instant::now();
        for i in 0..self.states.len() {
            if !self.states[i].is_due(now) {
                continue;
            }
            if self.states[i].cursor.is_none() {
                let key = self.states[i].spec.obis.to_string();
                let stored = cursors.load(&self.meter, &key);
                self.states[i].cursor = Some(self.start_of(i, stored, limits, now_s));
            }
            match self.collect_one(i, conn, cache, limits, now_s)? {
                Ok(Some(chunk)) => out.push(chunk),
                Ok(None) => {}
                Err(e) => {
                    let s = &mut self.states[i];
                    if !s.refused {
                        warn!(
                            "meter {:?}: profile {}: {e} (retrying every {} s)",
                            self.meter,
                            s.spec.obis,
                            every_s(s)
                        );
                    }
                    s.refused = true;
                    s.refused_why = Some(format!("profile {}: {e}", s.spec.obis));
                    s.backlog = false;
                    s.shape = None;
                    s.due = now + Duration::from_secs(every_s(s));
                }
            }
        }
        Ok(out)
    }

    /// Where a profile starts: after its stored cursor, or `profile.initial_days` back for a
    /// new one; never further back than `profile.max_backfill_days` (the skipped part logged).
    fn start_of(&self, i: usize, stored: Option<i64>, limits: Limits, now_s: i64) -> i64 {
        let floor = now_s - i64::from(limits.max_backfill_days) * 86_400;
        let wanted = stored.unwrap_or(now_s - i64::from(limits.initial_days) * 86_400);
        if wanted < floor {
            warn!(
                "meter {:?}: profile {}: the gap since {} is longer than profile.max_backfill_days ({}): rows before {} are skipped",
                self.meter,
                self.states[i].spec.obis,
                format_rfc3339(wanted),
                limits.max_backfill_days,
                format_rfc3339(floor)
            );
            return floor;
        }
        wanted
    }

    fn collect_one<T: Transport>(
        &mut self,
        i: usize,
        conn: &mut Connection<T>,
        cache: &mut ScalerCache,
        limits: Limits,
        now_s: i64,
    ) -> Result<Result<Option<Chunk>, ReadError>, ClientError> {
        let obis = self.states[i].spec.obis;
        if self.states[i].shape.is_none() {
            let columns = match reads::read_capture_objects(conn, obis)? {
                Ok(c) if !c.is_empty() => c,
                Ok(_) => return Ok(Err(ReadError::Scaler("no capture objects".into()))),
                Err(e) => return Ok(Err(e)),
            };
            let period = reads::read_unsigned(conn, Target::new(7, obis, 4))?.unwrap_or(0);
            self.states[i].shape = Some(Shape {
                columns,
                period: i64::try_from(period).unwrap_or(0),
            });
        }
        let shape = self.states[i].shape.clone().unwrap_or(Shape {
            columns: Vec::new(),
            period: 0,
        });
        let cursor = self.states[i].cursor.unwrap_or(now_s);
        let from = self.states[i]
            .scan_from
            .unwrap_or(cursor + 1)
            .max(cursor + 1);
        let (rows, window_end) = if self.states[i].by_entry {
            let rows = match self.read_by_entry(i, conn, cache, &shape, limits, cursor)? {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            (rows, None)
        } else {
            // A load profile: chunk_rows periods; an event log (period 0): everything since
            // the cursor (events are few).
            let to = if shape.period > 0 {
                from + i64::from(limits.chunk_rows) * shape.period - 1
            } else {
                now_s + CLOCK_MARGIN_S
            };
            match reads::read_profile_rows(
                conn,
                obis,
                &shape.columns,
                RowSelection::Range(from, to),
                cache,
                self.utc_offset_min,
            )? {
                Ok(rows) => (timed(rows, shape.period), Some(to)),
                Err(ReadError::Access(e)) => {
                    info!(
                        "meter {:?}: profile {obis}: range access refused ({e}); reading by entry",
                        self.meter
                    );
                    self.states[i].by_entry = true;
                    let rows = match self.read_by_entry(i, conn, cache, &shape, limits, cursor)? {
                        Ok(r) => r,
                        Err(e) => return Ok(Err(e)),
                    };
                    (rows, None)
                }
                Err(e) => return Ok(Err(e)),
            }
        };
        let s = &mut self.states[i];
        if s.refused {
            info!("meter {:?}: profile {obis} reads again", self.meter);
            s.refused = false;
            s.refused_why = None;
        }
        let fresh: Vec<(i64, Vec<(CaptureObject, reads::Value)>)> =
            rows.into_iter().filter(|(t, _)| *t > cursor).collect();
        let every = Duration::from_secs(every_s(s));
        let Some(newest) = fresh.last().map(|(t, _)| *t) else {
            // Nothing new. A range wholly in the past was a gap in the meter's record: go on
            // past it at once. One that reaches the present is asked again at the period.
            match window_end {
                Some(to) if to < now_s - CLOCK_MARGIN_S.max(shape.period) => {
                    s.scan_from = Some(to + 1);
                    s.backlog = true;
                }
                _ => {
                    s.backlog = false;
                    s.due = Instant::now() + every;
                }
            }
            return Ok(Ok(None));
        };
        s.cursor = Some(newest);
        s.scan_from = Some(newest + 1);
        s.backlog = match window_end {
            Some(to) => to < now_s - shape.period,
            None => false,
        };
        if !s.backlog {
            s.due = Instant::now() + every;
        }
        let spec = s.spec.clone();
        let readings = fresh
            .into_iter()
            .map(|(t, values)| Reading {
                device: self.meter.clone(),
                ts_ms: t * 1000,
                values: row_values(&spec, values),
            })
            .collect();
        Ok(Ok(Some(Chunk {
            profile: spec.obis.to_string(),
            rows: readings,
            cursor: newest,
        })))
    }

    /// By entry: entries_in_use, then chunks from the newest entry backwards until a row at or
    /// before the cursor (or the first entry) is reached; oldest first.
    fn read_by_entry<T: Transport>(
        &self,
        i: usize,
        conn: &mut Connection<T>,
        cache: &mut ScalerCache,
        shape: &Shape,
        limits: Limits,
        cursor: i64,
    ) -> Result<Result<Vec<TimedRow>, ReadError>, ClientError> {
        let obis = self.states[i].spec.obis;
        let in_use = match reads::read_unsigned(conn, Target::new(7, obis, 7))? {
            Ok(n) => u32::try_from(n).unwrap_or(u32::MAX),
            Err(e) => return Ok(Err(e)),
        };
        let chunk = limits.chunk_rows;
        // Bounded by the backfill limit (rows of one period each, or the whole buffer).
        let most = if shape.period > 0 {
            (i64::from(limits.max_backfill_days) * 86_400 / shape.period).max(1) as u32
        } else {
            in_use
        };
        let mut rows: Vec<TimedRow> = Vec::new();
        let mut last = in_use;
        while last > 0 && (in_use - last) < most {
            let first = last.saturating_sub(chunk - 1).max(1);
            let part = match reads::read_profile_rows(
                conn,
                obis,
                &shape.columns,
                RowSelection::Entries(first, last),
                cache,
                self.utc_offset_min,
            )? {
                Ok(r) => timed(r, shape.period),
                Err(e) => return Ok(Err(e)),
            };
            let reached = part.first().is_none_or(|(t, _)| *t <= cursor);
            part.into_iter().rev().for_each(|r| rows.push(r));
            if reached {
                break;
            }
            last = first - 1;
        }
        rows.reverse();
        Ok(Ok(rows))
    }
}

/// Seconds between collections: as configured, else the capture period, at least
/// [`MIN_EVERY_S`](crate::config::profile::MIN_EVERY_S).
fn every_s(s: &State) -> u64 {
    let period = s.shape.as_ref().map_or(0, |sh| sh.period);
    u64::from(s.spec.every_s.unwrap_or_else(|| {
        (period.clamp(0, 86_400) as u32).max(crate::config::profile::MIN_EVERY_S)
    }))
}

type TimedRow = (i64, Vec<(CaptureObject, reads::Value)>);

/// Rows with their times: a row without a clock value (meters leave it out of equidistant
/// rows, Blue Book 4.3.6 "buffer") is one period after the previous one; a row whose time
/// cannot be known is left out.
fn timed(rows: Vec<ProfileRow>, period: i64) -> Vec<TimedRow> {
    let mut prev: Option<i64> = None;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let t = match (row.timestamp, prev) {
            (Some(t), _) => t,
            (None, Some(p)) if period > 0 => p + period,
            _ => continue,
        };
        prev = Some(t);
        out.push((t, row.values));
    }
    out
}

/// A row's telemetry: each column by its key; an event code column as `event_code` with the
/// log's name in `event_log` and the event's text in `event` where it is a known code.
fn row_values(
    spec: &ProfileSpec,
    values: Vec<(CaptureObject, reads::Value)>,
) -> Map<String, Value> {
    let mut map = Map::new();
    for (column, value) in values {
        let (v, _) = json::value(&value);
        if is_event_code(column.instance) {
            map.insert("event_log".into(), json!(spec.obis.to_string()));
            if let Some(name) = v.as_i64().and_then(event_name) {
                map.insert("event".into(), json!(name));
            }
            map.insert("event_code".into(), v);
        } else {
            map.insert(spec.key_of(column.instance), v);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosem::Obis;
    use crate::dlms::axdr::Data;

    #[test]
    fn a_gap_starts_at_the_cursor_but_never_before_the_backfill_limit() {
        let spec = ProfileSpec::new(Obis::new(1, 0, 99, 1, 0, 255));
        let c = Collector::new("M", &[spec], 0);
        let limits = Limits {
            chunk_rows: 96,
            initial_days: 1,
            max_backfill_days: 31,
        };
        let now = 1_800_000_000;
        assert_eq!(c.start_of(0, Some(now - 7200), limits, now), now - 7200);
        assert_eq!(
            c.start_of(0, None, limits, now),
            now - 86_400,
            "a new profile"
        );
        assert_eq!(
            c.start_of(0, Some(now - 90 * 86_400), limits, now),
            now - 31 * 86_400,
            "a 90-day gap is cut to 31 days"
        );
    }

    #[test]
    fn rows_without_a_clock_value_follow_the_previous_one() {
        let row = |t: Option<i64>| ProfileRow {
            timestamp: t,
            values: Vec::new(),
        };
        let rows = timed(
            vec![row(None), row(Some(900)), row(None), row(Some(2700))],
            900,
        );
        let times: Vec<i64> = rows.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            times,
            vec![900, 1800, 2700],
            "a leading row without time is left out"
        );
    }

    #[test]
    fn event_codes_become_event_log_telemetry() {
        let spec = ProfileSpec::new(Obis::new(0, 0, 99, 98, 0, 255));
        let code = CaptureObject {
            class_id: 1,
            instance: Obis::new(0, 0, 96, 11, 0, 255),
            attribute: 2,
            data_index: 0,
        };
        let map = row_values(
            &spec,
            vec![(code, reads::Value::Data(Data::LongUnsigned(1)))],
        );
        assert_eq!(
            Value::Object(map),
            json!({"event_log": "0-0:99.98.0*255", "event_code": 1, "event": "power down"})
        );
    }
}
