//! JSON renderings of COSEM values for `read` output.

use crate::client::reads::Value;
use crate::dlms::axdr::{format_rfc3339, Data};
use serde_json::{json, Value as Json};

/// A value for the `value` field, and the unit symbol if any.
pub fn value(v: &Value) -> (Json, Option<String>) {
    match v {
        Value::Scaled { value, unit } => {
            // Whole numbers print as integers (energy in Wh), others as the nearest f64 of
            // the exact decimal.
            let n = match (value.exponent >= 0, value.to_string().parse::<i64>()) {
                (true, Ok(i)) => json!(i),
                _ => number(value.to_f64()),
            };
            (n, unit_symbol(unit.0, unit.symbol()))
        }
        Value::Float { value, unit } => (number(*value), unit_symbol(unit.0, unit.symbol())),
        Value::Data(d) => (data(d), None),
    }
}

/// A value as read from `target`: `{"obis","class","attribute","value","unit"}` (the lines of
/// `dlms-bridge read`, the answers of the `read` RPCs).
pub fn reading(target: &crate::client::reads::Target, v: &Value) -> Json {
    let (value, unit) = self::value(v);
    json!({"obis": target.obis.to_string(), "class": target.class_id,
           "attribute": target.attribute, "value": value, "unit": unit})
}

fn unit_symbol(code: u8, symbol: Option<&str>) -> Option<String> {
    match symbol {
        Some("") => None,
        Some(s) => Some(s.to_string()),
        None => Some(format!("unit({code})")),
    }
}

fn number(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
}

fn hex(b: &[u8]) -> String {
    crate::hex::encode(b)
}

/// Any COSEM value as JSON: numbers as numbers, date-times as RFC 3339 strings, printable
/// octet-strings as text, other octet-strings as hex.
pub fn data(d: &Data) -> Json {
    match d {
        Data::Null | Data::DontCare => Json::Null,
        Data::Boolean(b) => json!(b),
        Data::Array(items) | Data::Structure(items) => {
            Json::Array(items.iter().map(data).collect())
        }
        Data::CompactArray(ca) => Json::Array(ca.values.iter().map(data).collect()),
        Data::BitString(bs) => json!(
            bs.bytes
                .iter()
                .map(|b| format!("{b:08b}"))
                .collect::<String>()[..bs.bits.min(bs.bytes.len() * 8)]
        ),
        Data::Float32(f) => number(f64::from(*f)),
        Data::Float64(f) => number(*f),
        Data::Utf8String(s) => json!(s),
        Data::VisibleString(b) => json!(String::from_utf8_lossy(b)),
        Data::OctetString(b) => {
            if let Some(t) = d.as_date_time().and_then(|dt| dt.to_unix()) {
                json!(format_rfc3339(t))
            } else if !b.is_empty() && b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
                json!(String::from_utf8_lossy(b))
            } else {
                json!(hex(b))
            }
        }
        Data::DateTime(dt) => match dt.to_unix() {
            Some(t) => json!(format_rfc3339(t)),
            None => json!(hex(&dt.to_bytes())),
        },
        Data::Date(x) => json!(hex(&x.to_bytes())),
        Data::Time(x) => json!(hex(&x.to_bytes())),
        other => match other.as_i128() {
            Some(i) => match i64::try_from(i) {
                Ok(v) => json!(v),
                Err(_) => json!(i.to_string()),
            },
            None => Json::Null,
        },
    }
}
