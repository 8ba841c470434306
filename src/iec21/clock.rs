//! The meter's own date and time in a readout, for stamping readings when the gateway's
//! clock is not set: the data sets 0.9.2 (date) and 0.9.1 (time) of IEC 62056-6-1 (1-0:0.9.2
//! and 1-0:0.9.1, "local date" and "local time"), in the forms readout meters write them.

use super::data_set::{find, DataSet};
use crate::cosem::Obis;
use crate::dlms::axdr::{ClockStatus, Date, DateTime, Time, DEVIATION_NOT_SPECIFIED};

/// A COSEM date-time field "not specified" (Blue Book 4.1.6.1).
const NOT_SPECIFIED: u8 = 0xFF;

/// The digits of `text` once the separators meters put between fields are dropped
/// (`26-12-01`, `26.12.01`, `14:15:00`); `None` if anything else is there.
fn digits(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for b in text.bytes() {
        match b {
            b'0'..=b'9' => out.push(b - b'0'),
            b'-' | b'.' | b':' | b'/' => {}
            _ => return None,
        }
    }
    Some(out)
}

fn two(d: &[u8], at: usize) -> Option<u8> {
    Some(d.get(at)? * 10 + d.get(at + 1)?)
}

/// `YYMMDD` (years 2000-2099) or `YYYYMMDD`, with or without separators.
fn date(text: &str) -> Option<Date> {
    let d = digits(text)?;
    let (year, rest) = match d.len() {
        6 => (2000 + u16::from(two(&d, 0)?), 2),
        8 => (u16::from(two(&d, 0)?) * 100 + u16::from(two(&d, 2)?), 4),
        _ => return None,
    };
    Some(Date {
        year,
        month: two(&d, rest)?,
        day: two(&d, rest + 2)?,
        day_of_week: NOT_SPECIFIED,
    })
}

/// `hhmmss` or `hhmm`, with or without separators.
fn time(text: &str) -> Option<Time> {
    let d = digits(text)?;
    let second = match d.len() {
        6 => two(&d, 4)?,
        4 => 0,
        _ => return None,
    };
    Some(Time {
        hour: two(&d, 0)?,
        minute: two(&d, 2)?,
        second,
        hundredths: NOT_SPECIFIED,
    })
}

/// The meter's date and time from its readout (local time: no deviation is sent), `None`
/// when either is missing or not a date or time.
pub fn meter_time(sets: &[DataSet]) -> Option<DateTime> {
    let value = |e: u8| {
        let set = find(sets, Obis::new(1, 0, 0, 9, e, 255))?;
        Some(set.groups.first()?.value.as_str())
    };
    let dt = DateTime {
        date: date(value(2)?)?,
        time: time(value(1)?)?,
        deviation: DEVIATION_NOT_SPECIFIED,
        status: ClockStatus(NOT_SPECIFIED),
    };
    // Only a real instant: the conversion checks the ranges.
    dt.to_unix().map(|_| dt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iec21::data_set::parse_data_block;

    #[test]
    fn date_and_time_in_the_usual_forms() {
        for (block, unix) in [
            // 2026-12-01T14:15:00 as local time, in three spellings.
            (&b"0.9.1(141500)\r\n0.9.2(261201)\r\n"[..], 1_796_134_500),
            (b"0.9.2(26-12-01)\r\n0.9.1(14:15:00)\r\n", 1_796_134_500),
            (b"1-0:0.9.1(1415)\r\n1-0:0.9.2(20261201)\r\n", 1_796_134_500),
        ] {
            let sets = parse_data_block(block).unwrap();
            let t = meter_time(&sets).unwrap_or_else(|| panic!("{block:?}"));
            assert_eq!(t.to_unix_local(0), Some(unix));
            assert_eq!(t.to_unix_local(60), Some(unix - 3600), "CET: an hour east");
        }
    }

    #[test]
    fn no_time_without_both_or_with_nonsense() {
        for block in [
            &b"0.9.1(141500)\r\n"[..],
            b"0.9.2(261201)\r\n",
            b"0.9.1(141500)\r\n0.9.2(261341)\r\n",
            b"0.9.1(256000)\r\n0.9.2(261201)\r\n",
            b"0.9.1(14h15)\r\n0.9.2(261201)\r\n",
            b"0.9.1(1)\r\n0.9.2(2612011)\r\n",
        ] {
            let sets = parse_data_block(block).unwrap();
            assert_eq!(meter_time(&sets), None, "{block:?}");
        }
    }
}
