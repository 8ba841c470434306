//! COSEM values (A-XDR `Data`, Green Book 9.5) as one short line of text for traces: numbers as
//! numbers, octet strings as hex (OBIS codes and date-times recognised), nesting shown with
//! brackets, and everything cut at a bounded length so that a 300-row profile stays one line.

use crate::cosem::Obis;
use crate::dlms::axdr::{Data, Date, DateTime, Time};
use std::fmt::Write;

/// Longest text of one value; the rest is replaced by "…".
pub const MAX_VALUE_TEXT: usize = 160;

/// The value as text of at most about [`MAX_VALUE_TEXT`] characters.
pub fn value_text(data: &Data) -> String {
    let mut out = String::new();
    write_value(&mut out, data);
    truncate(out, MAX_VALUE_TEXT)
}

/// Cuts `text` at `max` characters (on a character boundary), marking the cut.
pub fn truncate(mut text: String, max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Bytes as upper-case hex without separators.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
    out
}

fn write_value(out: &mut String, data: &Data) {
    // Stop formatting once well past the cut: a huge array costs no more than a short one.
    if out.len() > MAX_VALUE_TEXT * 2 {
        return;
    }
    let _ = match data {
        Data::Null => write!(out, "null"),
        Data::Array(items) => write_items(out, "array", items),
        Data::Structure(items) => write_items(out, "structure", items),
        Data::Boolean(b) => write!(out, "{b}"),
        Data::BitString(b) => write!(out, "bit-string({} bits) {}", b.bits, hex(&b.bytes)),
        Data::DoubleLong(v) => write!(out, "{v}"),
        Data::DoubleLongUnsigned(v) => write!(out, "{v}"),
        Data::OctetString(b) => write_octets(out, b),
        Data::VisibleString(b) => write!(out, "\"{}\"", printable(b)),
        Data::Utf8String(s) => write!(out, "\"{}\"", printable(s.as_bytes())),
        Data::Bcd(v) => write!(out, "bcd {v}"),
        Data::Integer(v) => write!(out, "{v}"),
        Data::Long(v) => write!(out, "{v}"),
        Data::Unsigned(v) => write!(out, "{v}"),
        Data::LongUnsigned(v) => write!(out, "{v}"),
        Data::CompactArray(c) => write!(out, "compact-array of {} value(s)", c.values.len()),
        Data::Long64(v) => write!(out, "{v}"),
        Data::Long64Unsigned(v) => write!(out, "{v}"),
        Data::Enum(v) => write!(out, "enum {v}"),
        Data::Float32(v) => write!(out, "{v}"),
        Data::Float64(v) => write!(out, "{v}"),
        Data::DateTime(dt) => write!(out, "{}", date_time_text(dt)),
        Data::Date(d) => write!(out, "{}", date_text(d)),
        Data::Time(t) => write!(out, "{}", time_text(t)),
        Data::DontCare => write!(out, "dont-care"),
    };
}

fn write_items(out: &mut String, kind: &str, items: &[Data]) -> std::fmt::Result {
    write!(out, "{kind}[")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if out.len() > MAX_VALUE_TEXT * 2 {
            return write!(out, "… {} item(s)]", items.len());
        }
        write_value(out, item);
    }
    out.push(']');
    Ok(())
}

/// An octet string: a 6-byte one is shown as the OBIS code it usually is, a 12-byte one as
/// the COSEM date-time it usually is (Blue Book 4.1.6.1), and always with its hex.
fn write_octets(out: &mut String, b: &[u8]) -> std::fmt::Result {
    if let Ok(six) = <[u8; 6]>::try_from(b) {
        return write!(out, "{} ({})", hex(b), Obis(six));
    }
    if b.len() == 12 {
        if let Ok(dt) = DateTime::from_bytes(b) {
            return write!(out, "{} ({})", hex(b), date_time_text(&dt));
        }
    }
    if !b.is_empty() && b.iter().all(|c| (0x20..0x7F).contains(c)) {
        return write!(out, "{} (\"{}\")", hex(b), printable(b));
    }
    write!(out, "{}", hex(b))
}

/// Printable ASCII kept, anything else as `\xNN` (a trace never carries control characters).
fn printable(b: &[u8]) -> String {
    let mut out = String::new();
    for &c in b {
        if (0x20..0x7F).contains(&c) && c != b'"' && c != b'\\' {
            out.push(c as char);
        } else {
            let _ = write!(out, "\\x{c:02X}");
        }
    }
    out
}

/// A COSEM date (Blue Book 4.1.6.1): 0xFFFF / 0xFF fields are "not specified" and shown as `*`.
pub fn date_text(d: &Date) -> String {
    let year = if d.year == 0xFFFF {
        "*".to_string()
    } else {
        format!("{:04}", d.year)
    };
    let field = |v: u8| {
        if v == 0xFF {
            "*".to_string()
        } else {
            format!("{v:02}")
        }
    };
    format!("{year}-{}-{}", field(d.month), field(d.day))
}

pub fn time_text(t: &Time) -> String {
    let field = |v: u8| {
        if v == 0xFF {
            "*".to_string()
        } else {
            format!("{v:02}")
        }
    };
    format!("{}:{}:{}", field(t.hour), field(t.minute), field(t.second))
}

/// A COSEM date-time with its deviation (minutes, 0x8000 = not specified) and clock status.
pub fn date_time_text(dt: &DateTime) -> String {
    let mut text = format!("{} {}", date_text(&dt.date), time_text(&dt.time));
    if dt.deviation != crate::dlms::axdr::DEVIATION_NOT_SPECIFIED {
        let _ = write!(text, " deviation {} min", dt.deviation);
    }
    if dt.status.0 != 0 && dt.status.0 != 0xFF {
        let _ = write!(text, " status 0x{:02X}", dt.status.0);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_short_and_readable() {
        let d = Data::Structure(vec![
            Data::OctetString(vec![1, 0, 1, 8, 0, 255]),
            Data::DoubleLongUnsigned(12345),
            Data::VisibleString(b"AB\x01".to_vec()),
        ]);
        assert_eq!(
            value_text(&d),
            "structure[0100010800FF (1-0:1.8.0*255), 12345, \"AB\\x01\"]"
        );
        let big = Data::Array(vec![Data::Unsigned(7); 10_000]);
        let text = value_text(&big);
        assert!(text.chars().count() <= MAX_VALUE_TEXT + 1, "{text}");
        assert!(text.ends_with('…'), "{text}");
    }
}
