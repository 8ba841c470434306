//! COSEM date, time and date-time (Blue Book 4.1.6.1 "Date and time formats").
//!
//! ```text
//! date-time = year(2) month day day-of-week | hour minute second hundredths | deviation(2) status
//! ```
//! Every field may be "not specified" (0xFF, year 0xFFFF, deviation 0x8000); month also has
//! 0xFD/0xFE (daylight-saving end/begin) and day 0xFD/0xFE (second last / last day of month).
//! The raw fields are kept as received so that values round-trip exactly; conversions to
//! absolute time are explicit and fail (return `None`) on unspecified or out-of-range fields.
//!
//! Deviation: minutes from local time to UTC, i.e. `UTC = local + deviation` (CET in winter is
//! -60). Some meters use the opposite sign; that is a per-meter setting above this layer.

use crate::dlms::{DecodeError, Reader};

pub const NOT_SPECIFIED: u8 = 0xFF;
pub const YEAR_NOT_SPECIFIED: u16 = 0xFFFF;
pub const DEVIATION_NOT_SPECIFIED: i16 = i16::MIN; // 0x8000

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    /// 1 = Monday .. 7 = Sunday.
    pub day_of_week: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Time {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub hundredths: u8,
}

/// The clock status byte (Blue Book 4.1.6.1): bit flags, 0xFF when not specified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClockStatus(pub u8);

impl ClockStatus {
    pub const INVALID_VALUE: u8 = 0x01;
    pub const DOUBTFUL_VALUE: u8 = 0x02;
    pub const DIFFERENT_CLOCK_BASE: u8 = 0x04;
    pub const INVALID_CLOCK_STATUS: u8 = 0x08;
    pub const DAYLIGHT_SAVING_ACTIVE: u8 = 0x80;

    pub fn is_specified(self) -> bool {
        self.0 != 0xFF
    }

    /// False when the meter itself says the time is invalid or doubtful.
    pub fn is_trustworthy(self) -> bool {
        !self.is_specified()
            || self.0 & (Self::INVALID_VALUE | Self::DOUBTFUL_VALUE | Self::INVALID_CLOCK_STATUS)
                == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    pub date: Date,
    pub time: Time,
    /// Minutes; [`DEVIATION_NOT_SPECIFIED`] when absent.
    pub deviation: i16,
    pub status: ClockStatus,
}

impl Date {
    pub fn from_bytes(b: &[u8]) -> Result<Date, DecodeError> {
        let mut r = Reader::new(b);
        let d = Date {
            year: r.u16()?,
            month: r.u8()?,
            day: r.u8()?,
            day_of_week: r.u8()?,
        };
        r.finish()?;
        Ok(d)
    }

    pub fn to_bytes(&self) -> [u8; 5] {
        let y = self.year.to_be_bytes();
        [y[0], y[1], self.month, self.day, self.day_of_week]
    }
}

impl Time {
    pub fn from_bytes(b: &[u8]) -> Result<Time, DecodeError> {
        let mut r = Reader::new(b);
        let t = Time {
            hour: r.u8()?,
            minute: r.u8()?,
            second: r.u8()?,
            hundredths: r.u8()?,
        };
        r.finish()?;
        Ok(t)
    }

    pub fn to_bytes(&self) -> [u8; 4] {
        [self.hour, self.minute, self.second, self.hundredths]
    }
}

impl DateTime {
    pub fn from_bytes(b: &[u8]) -> Result<DateTime, DecodeError> {
        if b.len() != 12 {
            return Err(DecodeError::InvalidLength {
                what: "date-time",
                length: b.len() as u64,
            });
        }
        Ok(DateTime {
            date: Date::from_bytes(&b[..5])?,
            time: Time::from_bytes(&b[5..9])?,
            deviation: i16::from_be_bytes([b[9], b[10]]),
            status: ClockStatus(b[11]),
        })
    }

    pub fn to_bytes(&self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..5].copy_from_slice(&self.date.to_bytes());
        out[5..9].copy_from_slice(&self.time.to_bytes());
        out[9..11].copy_from_slice(&self.deviation.to_be_bytes());
        out[11] = self.status.0;
        out
    }

    /// The local wall-clock fields for a UTC instant, with `deviation` minutes
    /// (`local = UTC - deviation`), status "OK" (0x00) and hundredths 0.
    pub fn from_unix(seconds: i64, deviation: i16) -> DateTime {
        let local = seconds - i64::from(deviation) * 60;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday (4).
        let day_of_week = ((days + 3).rem_euclid(7) + 1) as u8;
        DateTime {
            date: Date {
                year: year as u16,
                month,
                day,
                day_of_week,
            },
            time: Time {
                hour: (secs / 3600) as u8,
                minute: (secs / 60 % 60) as u8,
                second: (secs % 60) as u8,
                hundredths: 0,
            },
            deviation,
            status: ClockStatus(0),
        }
    }

    /// Seconds since the Unix epoch (UTC), if every field needed is specified and in range.
    /// An unspecified deviation is taken as 0 (the meter runs on UTC); an unspecified
    /// hundredths as 0.
    pub fn to_unix(&self) -> Option<i64> {
        let d = self.date;
        let t = self.time;
        if d.year == YEAR_NOT_SPECIFIED || !(1..=12).contains(&d.month) {
            return None;
        }
        if d.day == 0 || d.day > days_in_month(i64::from(d.year), d.month) {
            return None;
        }
        if t.hour > 23 || t.minute > 59 || t.second > 59 {
            return None;
        }
        let deviation = match self.deviation {
            DEVIATION_NOT_SPECIFIED => 0,
            dev if (-720..=720).contains(&dev) => i64::from(dev),
            _ => return None,
        };
        let days = days_from_civil(i64::from(d.year), d.month, d.day);
        let local = days * 86_400
            + i64::from(t.hour) * 3600
            + i64::from(t.minute) * 60
            + i64::from(t.second);
        Some(local + deviation * 60)
    }
}

impl DateTime {
    /// [`DateTime::to_unix`] for a meter whose clock may be local time: when the date-time
    /// carries no deviation (0x8000), it is local time `utc_offset_min` minutes east of UTC,
    /// one hour more while the status says daylight saving is active (Blue Book 4.1.6.1,
    /// clock status bit 7). With a deviation the date-time says itself where it is.
    pub fn to_unix_local(&self, utc_offset_min: i16) -> Option<i64> {
        let unix = self.to_unix()?;
        if self.deviation != DEVIATION_NOT_SPECIFIED {
            return Some(unix);
        }
        let dst =
            self.status.is_specified() && self.status.0 & ClockStatus::DAYLIGHT_SAVING_ACTIVE != 0;
        Some(unix - i64::from(utc_offset_min) * 60 - if dst { 3600 } else { 0 })
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time.
pub fn format_rfc3339(seconds: i64) -> String {
    let dt = DateTime::from_unix(seconds, 0);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        dt.date.year, dt.date.month, dt.date.day, dt.time.hour, dt.time.minute, dt.time.second
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (UTC only, as the CLI accepts it).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u16>().ok();
    let dt = DateTime {
        date: Date {
            year: num(0..4)?,
            month: num(5..7)? as u8,
            day: num(8..10)? as u8,
            day_of_week: NOT_SPECIFIED,
        },
        time: Time {
            hour: num(11..13)? as u8,
            minute: num(14..16)? as u8,
            second: num(17..19)? as u8,
            hundredths: 0,
        },
        deviation: 0,
        status: ClockStatus(0),
    };
    dt.to_unix()
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u8) -> u8 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_without_deviation_takes_the_meters_offset_and_dst_flag() {
        // 2026-07-01 14:00 local, no deviation, DST active, meter in CET (+60): 12:00 UTC.
        let mut dt = DateTime::from_unix(1_782_864_000 + 14 * 3600, 0);
        dt.deviation = DEVIATION_NOT_SPECIFIED;
        dt.status = ClockStatus(ClockStatus::DAYLIGHT_SAVING_ACTIVE);
        assert_eq!(dt.to_unix_local(60), Some(1_782_864_000 + 12 * 3600));
        dt.status = ClockStatus(0);
        assert_eq!(dt.to_unix_local(60), Some(1_782_864_000 + 13 * 3600));
        assert_eq!(dt.to_unix_local(0), dt.to_unix(), "offset 0: as UTC");
        // With a deviation the offset does not apply.
        let with_deviation = DateTime::from_unix(1_782_864_000, -60);
        assert_eq!(with_deviation.to_unix_local(120), Some(1_782_864_000));
    }

    #[test]
    fn blue_book_style_example() {
        // 2026-11-24 (Tuesday) 00:15:00.00, deviation -60 (CET), status 0x00.
        let bytes = [
            0x07, 0xEA, 0x0B, 0x18, 0x02, 0x00, 0x0F, 0x00, 0x00, 0xFF, 0xC4, 0x00,
        ];
        let dt = DateTime::from_bytes(&bytes).unwrap();
        assert_eq!(dt.date.year, 2026);
        assert_eq!(dt.date.day_of_week, 2);
        assert_eq!(dt.deviation, -60);
        // Local 00:15 at UTC+1 is 23:15 UTC the day before.
        assert_eq!(
            format_rfc3339(dt.to_unix().unwrap()),
            "2026-11-23T23:15:00Z"
        );
        assert_eq!(dt.to_bytes(), bytes);
        assert_eq!(DateTime::from_unix(dt.to_unix().unwrap(), -60), dt);
    }

    #[test]
    fn unspecified_fields() {
        let mut bytes = [0xFFu8; 12];
        bytes[9] = 0x80;
        bytes[10] = 0x00;
        let dt = DateTime::from_bytes(&bytes).unwrap();
        assert_eq!(dt.deviation, DEVIATION_NOT_SPECIFIED);
        assert!(!dt.status.is_specified());
        assert_eq!(dt.to_unix(), None);
        assert_eq!(dt.to_bytes(), bytes);
    }

    #[test]
    fn out_of_range_fields_do_not_convert() {
        let mut dt = DateTime::from_unix(0, 0);
        dt.date.month = 13;
        assert_eq!(dt.to_unix(), None);
        let mut dt = DateTime::from_unix(0, 0);
        dt.date.day = 31;
        dt.date.month = 2;
        assert_eq!(dt.to_unix(), None);
        let mut dt = DateTime::from_unix(0, 0);
        dt.deviation = 900;
        assert_eq!(dt.to_unix(), None);
        assert!(DateTime::from_bytes(&[0; 11]).is_err());
    }

    #[test]
    fn calendar_round_trips_across_leap_years() {
        for days in (-700_000i64..2_000_000).step_by(997) {
            let t = days * 86_400 + 3_723;
            let dt = DateTime::from_unix(t, 120);
            assert_eq!(dt.to_unix(), Some(t), "days {days}");
        }
        // Cross-checked with Python's datetime.
        assert_eq!(parse_rfc3339("2026-11-24T06:00:00Z"), Some(1795500000));
        assert_eq!(format_rfc3339(1795500000), "2026-11-24T06:00:00Z");
        assert_eq!(parse_rfc3339("2026-02-30T06:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-11-24 06:00:00"), None);
    }
}
