//! The simulated meter's profiles (class 7, Blue Book 4.3.6): a load profile of two energy
//! registers every `profile_period` seconds and a standard event log of simulated power
//! failures, both `profile_days` deep, with selective access by range (selector 1) and by entry
//! (selector 2), as real meters serve them. Rows are computed from the meter's clock, so a
//! test knows every row the meter holds ([`MeterModel::profile_rows`],
//! [`MeterModel::event_rows`]).

use super::model::{
    MeterModel, CLASS_CLOCK, CLASS_DATA, CLASS_REGISTER, ENERGY_EXPORT, ENERGY_IMPORT, EVENT_CODE,
    LOAD_PROFILE,
};
use crate::cosem::Obis;
use crate::dlms::axdr::{Data, DateTime};
use crate::dlms::xdlms::{CaptureObject, DataAccessResult, SelectiveAccess};

/// "Scope of access violated": selective access the object does not serve.
const SCOPE_OF_ACCESS_VIOLATED: DataAccessResult = DataAccessResult(12);

/// Seconds between a simulated power failure's "power down" and "power up" events.
pub const OUTAGE_LENGTH: i64 = 90;

fn column(class_id: u16, instance: Obis) -> CaptureObject {
    CaptureObject {
        class_id,
        instance,
        attribute: 2,
        data_index: 0,
    }
}

fn date_time(t: i64) -> Data {
    Data::OctetString(DateTime::from_unix(t, 0).to_bytes().to_vec())
}

impl MeterModel {
    pub fn profile_columns() -> [CaptureObject; 3] {
        [
            CaptureObject::CLOCK_TIME,
            column(CLASS_REGISTER, ENERGY_IMPORT),
            column(CLASS_REGISTER, ENERGY_EXPORT),
        ]
    }

    pub fn event_log_columns() -> [CaptureObject; 2] {
        [CaptureObject::CLOCK_TIME, column(CLASS_DATA, EVENT_CODE)]
    }

    /// Load profile row times (meter clock): every period over `profile_days`, ending at the
    /// last full period.
    pub fn profile_rows(&self, now: i64) -> Vec<i64> {
        let period = self.profile_period.max(1);
        let last = now - now.rem_euclid(period);
        let n = i64::from(self.profile_days) * 86_400 / period;
        (0..n).rev().map(|i| last - i * period).collect()
    }

    /// One load profile row as the meter stores it.
    pub fn profile_row(&self, t: i64) -> Vec<Data> {
        let energy = |o| Data::DoubleLongUnsigned(self.truth(o, t).map_or(0, |v| v.raw as u32));
        vec![date_time(t), energy(ENERGY_IMPORT), energy(ENERGY_EXPORT)]
    }

    /// Event log rows (time, event code) over `profile_days`: a power failure every
    /// `outage_every` seconds, "power down" (1) then "power up" (2) [`OUTAGE_LENGTH`] later.
    pub fn event_rows(&self, now: i64) -> Vec<(i64, u16)> {
        let every = self.outage_every.max(OUTAGE_LENGTH + 1);
        let first = now - i64::from(self.profile_days) * 86_400;
        let mut t = first - first.rem_euclid(every) + every;
        let mut rows = Vec::new();
        while t <= now {
            rows.push((t, 1));
            if t + OUTAGE_LENGTH <= now {
                rows.push((t + OUTAGE_LENGTH, 2));
            }
            t += every;
        }
        rows
    }

    /// Attributes of the two profiles: 2 buffer, 3 capture_objects, 4 capture_period,
    /// 7 entries_in_use, 8 profile_entries.
    pub(super) fn profile_attribute(
        &self,
        profile: Obis,
        attribute: i8,
        access: Option<&SelectiveAccess>,
        now: i64,
    ) -> Result<Data, DataAccessResult> {
        let load = profile == LOAD_PROFILE;
        let rows: Vec<(i64, Vec<Data>)> = if load {
            self.profile_rows(now)
                .into_iter()
                .map(|t| (t, self.profile_row(t)))
                .collect()
        } else {
            self.event_rows(now)
                .into_iter()
                .map(|(t, code)| (t, vec![date_time(t), Data::LongUnsigned(code)]))
                .collect()
        };
        let columns: Vec<CaptureObject> = if load {
            Self::profile_columns().to_vec()
        } else {
            Self::event_log_columns().to_vec()
        };
        match attribute {
            2 => self.select(rows, columns.len(), access),
            3 => Ok(Data::Array(
                columns.iter().map(CaptureObject::to_data).collect(),
            )),
            // An event log is asynchronous: capture period 0.
            4 => Ok(Data::DoubleLongUnsigned(if load {
                self.profile_period as u32
            } else {
                0
            })),
            7 => Ok(Data::DoubleLongUnsigned(rows.len() as u32)),
            8 => Ok(Data::DoubleLongUnsigned(rows.len().max(1) as u32)),
            _ => Err(DataAccessResult::OBJECT_UNAVAILABLE),
        }
    }

    /// The buffer, whole or by selective access (Blue Book 4.3.6, buffer attribute).
    fn select(
        &self,
        rows: Vec<(i64, Vec<Data>)>,
        columns: usize,
        access: Option<&SelectiveAccess>,
    ) -> Result<Data, DataAccessResult> {
        let (selected, col_range): (Vec<Vec<Data>>, std::ops::Range<usize>) = match access {
            None => (rows.into_iter().map(|(_, r)| r).collect(), 0..columns),
            Some(SelectiveAccess {
                selector: 1,
                parameters,
            }) => {
                if !self.range_access {
                    return Err(SCOPE_OF_ACCESS_VIOLATED);
                }
                let items = parameters.as_items().ok_or(SCOPE_OF_ACCESS_VIOLATED)?;
                let [restricting, from, to, _cols] = items else {
                    return Err(SCOPE_OF_ACCESS_VIOLATED);
                };
                let clock = CaptureObject::from_data(restricting)
                    .is_some_and(|c| c.class_id == CLASS_CLOCK);
                let bound = |d: &Data| d.as_date_time().and_then(|d| d.to_unix());
                let (Some(from), Some(to), true) = (bound(from), bound(to), clock) else {
                    return Err(SCOPE_OF_ACCESS_VIOLATED);
                };
                (
                    rows.into_iter()
                        .filter(|(t, _)| (from..=to).contains(t))
                        .map(|(_, r)| r)
                        .collect(),
                    0..columns,
                )
            }
            Some(SelectiveAccess {
                selector: 2,
                parameters,
            }) => {
                let items = parameters.as_items().ok_or(SCOPE_OF_ACCESS_VIOLATED)?;
                let nums: Vec<i128> = items.iter().filter_map(Data::as_i128).collect();
                let [from, to, from_col, to_col] = nums[..] else {
                    return Err(SCOPE_OF_ACCESS_VIOLATED);
                };
                let n = rows.len() as i128;
                let to = if to == 0 { n } else { to.min(n) };
                let first = (from.max(1) - 1) as usize;
                let last = to.max(0) as usize;
                let to_col = if to_col == 0 {
                    columns as i128
                } else {
                    to_col.min(columns as i128)
                };
                let cols = (from_col.max(1) - 1) as usize..to_col.max(0) as usize;
                (
                    rows.into_iter()
                        .skip(first)
                        .take(last.saturating_sub(first))
                        .map(|(_, r)| r)
                        .collect(),
                    cols,
                )
            }
            Some(_) => return Err(SCOPE_OF_ACCESS_VIOLATED),
        };
        Ok(Data::Array(
            selected
                .into_iter()
                .map(|row| Data::Structure(row.get(col_range.clone()).unwrap_or_default().to_vec()))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{CLASS_PROFILE_GENERIC, EVENT_LOG};
    use super::*;

    #[test]
    fn event_log_holds_power_failures_in_order() {
        let mut m = MeterModel::new(1, 0);
        m.profile_days = 1;
        let now = 1_795_500_000 + 1000;
        let rows = m.event_rows(now);
        assert_eq!(rows.len(), 8, "4 outages a day, 2 events each");
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!((rows[0].1, rows[1].1), (1, 2));
        assert_eq!(rows[1].0 - rows[0].0, OUTAGE_LENGTH);
        let Ok(Data::Array(all)) = m.get(CLASS_PROFILE_GENERIC, EVENT_LOG, 2, None, now) else {
            panic!("event log read failed");
        };
        assert_eq!(all.len(), 8);
    }

    #[test]
    fn range_access_can_be_refused_like_some_meters_do() {
        let mut m = MeterModel::new(1, 0);
        m.range_access = false;
        let now = 1_795_500_000;
        let range = SelectiveAccess::profile_range(
            CaptureObject::CLOCK_TIME,
            DateTime::from_unix(now - 3600, 0),
            DateTime::from_unix(now, 0),
            &[],
        );
        assert_eq!(
            m.get(CLASS_PROFILE_GENERIC, LOAD_PROFILE, 2, Some(&range), now),
            Err(SCOPE_OF_ACCESS_VIOLATED)
        );
        let entries = SelectiveAccess::profile_entries(1, 2, 1, 0);
        assert!(m
            .get(CLASS_PROFILE_GENERIC, LOAD_PROFILE, 2, Some(&entries), now)
            .is_ok());
    }

    #[test]
    fn the_capture_period_sets_the_row_spacing() {
        let mut m = MeterModel::new(1, 0);
        m.profile_period = 5;
        m.profile_days = 1;
        let rows = m.profile_rows(1_795_500_003);
        assert_eq!(rows.len(), 86_400 / 5);
        assert_eq!(*rows.last().unwrap(), 1_795_500_000);
        assert_eq!(
            m.get(CLASS_PROFILE_GENERIC, LOAD_PROFILE, 4, None, 0),
            Ok(Data::DoubleLongUnsigned(5))
        );
    }
}
