//! COSEM reads on a [`Connection`]: registers with their scaler and unit (Blue Book 4.3.2-4.3.4),
//! clock (4.5.1), profile generic buffers (4.3.6) and the Association LN object list (4.4.4).
//!
//! Reads are batched into as few GETs as the meter allows (with-list, split by PDU size), and
//! scaler_unit is read once per association and cached.

use super::connection::Connection;
use super::error::ClientError;
use super::transport::Transport;
use crate::cosem::scaled::scale_float;
use crate::cosem::{Obis, ScaledValue, Unit};
use crate::dlms::axdr::{Data, DateTime};
use crate::dlms::xdlms::{AttributeDescriptor, CaptureObject, DataAccessResult, SelectiveAccess};
use std::collections::HashMap;

/// One attribute to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub class_id: u16,
    pub obis: Obis,
    pub attribute: i8,
}

impl Target {
    pub fn new(class_id: u16, obis: Obis, attribute: i8) -> Self {
        Target {
            class_id,
            obis,
            attribute,
        }
    }

    fn descriptor(&self) -> AttributeDescriptor {
        AttributeDescriptor::new(self.class_id, self.obis, self.attribute)
    }

    /// The attribute holding this value's scaler_unit, if the value is scaled: Register and
    /// Extended Register value (2) use attribute 3; Demand Register current/last average (2, 3)
    /// use attribute 4.
    pub fn scaler_attribute(&self) -> Option<i8> {
        match (self.class_id, self.attribute) {
            (3 | 4, 2) => Some(3),
            (5, 2 | 3) => Some(4),
            _ => None,
        }
    }
}

/// A value as read, scaled where the object has a scaler.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scaled { value: ScaledValue, unit: Unit },
    Float { value: f64, unit: Unit },
    Data(Data),
}

/// Why one attribute could not be read (the others in the batch may have been).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    Access(DataAccessResult),
    /// The scaler_unit attribute could not be read or has an unexpected shape.
    Scaler(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Access(r) if *r == DataAccessResult::OBJECT_UNDEFINED => {
                write!(f, "object not found in the meter ({r})")
            }
            ReadError::Access(r) if *r == DataAccessResult::READ_WRITE_DENIED => {
                write!(f, "access denied ({r})")
            }
            ReadError::Access(r) => write!(f, "meter answered {r}"),
            ReadError::Scaler(s) => write!(f, "scaler_unit: {s}"),
        }
    }
}

/// (class, OBIS, scaler_unit attribute) -> scaler and unit, or why they could not be read.
type ScalerMap = HashMap<(u16, Obis, i8), Result<(i8, Unit), ReadError>>;

/// Per-association cache of scaler_unit values.
#[derive(Debug, Default)]
pub struct ScalerCache {
    map: ScalerMap,
}

impl ScalerCache {
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

fn parse_scaler_unit(d: &Data) -> Result<(i8, Unit), ReadError> {
    match d.as_items() {
        Some([scaler, Data::Enum(unit)]) => {
            let s = scaler.as_i128().and_then(|v| i8::try_from(v).ok());
            s.map(|s| (s, Unit(*unit)))
                .ok_or_else(|| ReadError::Scaler(format!("bad scaler {scaler:?}")))
        }
        _ => Err(ReadError::Scaler(format!("unexpected shape {d:?}"))),
    }
}

/// Reads plain attributes in batches (no scaling).
pub fn read_raw<T: Transport>(
    conn: &mut Connection<T>,
    targets: &[Target],
) -> Result<Vec<Result<Data, DataAccessResult>>, ClientError> {
    let mut out = Vec::with_capacity(targets.len());
    for chunk in targets.chunks(conn.max_get_batch().max(1)) {
        let items = chunk.iter().map(|t| (t.descriptor(), None)).collect();
        out.extend(conn.get(items)?);
    }
    Ok(out)
}

/// Reads the scaler_unit of every target that has one and is not cached yet.
fn fill_scalers<T: Transport>(
    conn: &mut Connection<T>,
    targets: &[Target],
    cache: &mut ScalerCache,
) -> Result<(), ClientError> {
    let missing: Vec<Target> = targets
        .iter()
        .filter_map(|t| {
            let attr = t.scaler_attribute()?;
            let key = (t.class_id, t.obis, attr);
            (!cache.map.contains_key(&key)).then_some(Target::new(t.class_id, t.obis, attr))
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !missing.is_empty() {
        for (t, r) in missing.iter().zip(read_raw(conn, &missing)?) {
            let parsed = r
                .map_err(ReadError::Access)
                .and_then(|d| parse_scaler_unit(&d));
            cache.map.insert((t.class_id, t.obis, t.attribute), parsed);
        }
    }
    Ok(())
}

/// Reads values, applying scaler_unit (read once per association, cached in `cache`).
pub fn read_values<T: Transport>(
    conn: &mut Connection<T>,
    targets: &[Target],
    cache: &mut ScalerCache,
) -> Result<Vec<Result<Value, ReadError>>, ClientError> {
    // Scalers first, for those not cached yet; then the values. With a meter that allows
    // multiple references the first poll takes two batches, every later one takes one.
    fill_scalers(conn, targets, cache)?;
    let raw = read_raw(conn, targets)?;
    Ok(targets
        .iter()
        .zip(raw)
        .map(|(t, r)| {
            let data = r.map_err(ReadError::Access)?;
            let Some(attr) = t.scaler_attribute() else {
                return Ok(Value::Data(data));
            };
            let (scaler, unit) = cache
                .map
                .get(&(t.class_id, t.obis, attr))
                .cloned()
                .unwrap_or_else(|| Err(ReadError::Scaler("not read".into())))?;
            Ok(scale(data, scaler, unit))
        })
        .collect())
}

/// Applies a scaler to a register value.
pub fn scale(data: Data, scaler: i8, unit: Unit) -> Value {
    if let Some(value) = ScaledValue::from_data(&data, scaler) {
        return Value::Scaled { value, unit };
    }
    match data {
        Data::Float32(f) => Value::Float {
            value: scale_float(f64::from(f), scaler),
            unit,
        },
        Data::Float64(f) => Value::Float {
            value: scale_float(f, scaler),
            unit,
        },
        other => Value::Data(other),
    }
}

/// The meter's clock.
pub fn read_clock<T: Transport>(
    conn: &mut Connection<T>,
) -> Result<Result<DateTime, ReadError>, ClientError> {
    let clock = Target::new(8, Obis::new(0, 0, 1, 0, 0, 255), 2);
    let r = read_raw(conn, &[clock])?.remove(0);
    Ok(r.map_err(ReadError::Access).and_then(|d| {
        d.as_date_time()
            .ok_or_else(|| ReadError::Scaler(format!("clock value is not a date-time: {d:?}")))
    }))
}

/// Sets the meter's clock.
pub fn set_clock<T: Transport>(
    conn: &mut Connection<T>,
    time: DateTime,
) -> Result<(), ClientError> {
    let clock = AttributeDescriptor::new(8, Obis::new(0, 0, 1, 0, 0, 255), 2);
    conn.set(clock, &Data::OctetString(time.to_bytes().to_vec()))
}

/// One entry of the object list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectEntry {
    pub class_id: u16,
    pub version: u8,
    pub obis: Obis,
}

/// Association LN object_list (attribute 2 of 0.0.40.0.0.255).
pub fn list_objects<T: Transport>(
    conn: &mut Connection<T>,
) -> Result<Result<Vec<ObjectEntry>, ReadError>, ClientError> {
    // An SN association read its object list (Association SN, Blue Book 4.4.4) already.
    if let Some(map) = conn.short_names() {
        return Ok(Ok(map
            .objects()
            .iter()
            .map(|o| ObjectEntry {
                class_id: o.class_id,
                version: o.version,
                obis: o.instance,
            })
            .collect()));
    }
    let target = Target::new(15, Obis::new(0, 0, 40, 0, 0, 255), 2);
    let r = read_raw(conn, &[target])?.remove(0);
    Ok(r.map_err(ReadError::Access).map(|d| {
        d.as_items()
            .unwrap_or_default()
            .iter()
            .filter_map(|e| match e.as_items()? {
                [Data::LongUnsigned(class_id), Data::Unsigned(version), Data::OctetString(ln), ..] => Some(ObjectEntry {
                    class_id: *class_id,
                    version: *version,
                    obis: Obis::from_bytes(ln)?,
                }),
                _ => None,
            })
            .collect()
    }))
}

/// A profile buffer decoded into rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub columns: Vec<CaptureObject>,
    /// Per row: its timestamp (from a clock column) and the values of the other columns.
    pub rows: Vec<ProfileRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRow {
    pub timestamp: Option<i64>,
    pub values: Vec<(CaptureObject, Value)>,
}

/// Which rows to read.
#[derive(Debug, Clone, Copy)]
pub enum RowSelection {
    All,
    /// Unix seconds, both inclusive, by the clock column.
    Range(i64, i64),
    /// 1-based entries, both inclusive.
    Entries(u32, u32),
}

/// Reads a Profile Generic: capture_objects, the scalers of register columns, then the buffer.
pub fn read_profile<T: Transport>(
    conn: &mut Connection<T>,
    obis: Obis,
    selection: RowSelection,
    cache: &mut ScalerCache,
) -> Result<Result<Profile, ReadError>, ClientError> {
    let columns = match read_capture_objects(conn, obis)? {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    Ok(
        read_profile_rows(conn, obis, &columns, selection, cache, 0)?
            .map(|rows| Profile { columns, rows }),
    )
}

/// A profile's capture_objects (attribute 3): its columns.
pub fn read_capture_objects<T: Transport>(
    conn: &mut Connection<T>,
    obis: Obis,
) -> Result<Result<Vec<CaptureObject>, ReadError>, ClientError> {
    let capture = Target::new(7, obis, 3);
    Ok(read_raw(conn, &[capture])?
        .remove(0)
        .map_err(ReadError::Access)
        .map(|d| {
            d.as_items()
                .unwrap_or_default()
                .iter()
                .filter_map(CaptureObject::from_data)
                .collect()
        }))
}

/// An unsigned attribute (a profile's capture_period, entries_in_use, ...).
pub fn read_unsigned<T: Transport>(
    conn: &mut Connection<T>,
    target: Target,
) -> Result<Result<u64, ReadError>, ClientError> {
    Ok(read_raw(conn, &[target])?
        .remove(0)
        .map_err(ReadError::Access)
        .and_then(|d| {
            d.as_i128()
                .and_then(|v| u64::try_from(v).ok())
                .ok_or_else(|| ReadError::Scaler(format!("not an unsigned number: {d:?}")))
        }))
}

/// Reads rows of a profile whose columns are known: the scalers of register columns (once
/// per association, from `cache`), then the buffer with the selection. A clock column
/// becomes the row's timestamp (local-time clocks: `utc_offset_min`, see
/// [`DateTime::to_unix_local`]).
pub fn read_profile_rows<T: Transport>(
    conn: &mut Connection<T>,
    obis: Obis,
    columns: &[CaptureObject],
    selection: RowSelection,
    cache: &mut ScalerCache,
    utc_offset_min: i16,
) -> Result<Result<Vec<ProfileRow>, ReadError>, ClientError> {
    let scaled: Vec<Target> = columns
        .iter()
        .map(|c| Target::new(c.class_id, c.instance, c.attribute))
        .filter(|t| t.scaler_attribute().is_some())
        .collect();
    fill_scalers(conn, &scaled, cache)?;
    let access = match selection {
        RowSelection::All => None,
        RowSelection::Range(from, to) => Some(SelectiveAccess::profile_range(
            columns
                .iter()
                .find(|c| c.class_id == 8)
                .copied()
                .unwrap_or(CaptureObject::CLOCK_TIME),
            DateTime::from_unix(from, 0),
            DateTime::from_unix(to, 0),
            &[],
        )),
        RowSelection::Entries(from, to) => Some(SelectiveAccess::profile_entries(from, to, 1, 0)),
    };
    let buffer = AttributeDescriptor::new(7, obis, 2);
    let data = match conn.get(vec![(buffer, access)])?.remove(0) {
        Ok(d) => d,
        Err(e) => return Ok(Err(ReadError::Access(e))),
    };
    let rows = data
        .as_items()
        .unwrap_or_default()
        .iter()
        .map(|row| {
            let mut timestamp = None;
            let mut values = Vec::new();
            for (col, cell) in columns.iter().zip(row.as_items().unwrap_or_default()) {
                if col.class_id == 8 && col.attribute == 2 {
                    timestamp = cell
                        .as_date_time()
                        .and_then(|d| d.to_unix_local(utc_offset_min));
                    continue;
                }
                let target = Target::new(col.class_id, col.instance, col.attribute);
                let value = match target
                    .scaler_attribute()
                    .and_then(|a| cache.map.get(&(col.class_id, col.instance, a)))
                {
                    Some(Ok((scaler, unit))) => scale(cell.clone(), *scaler, *unit),
                    _ => Value::Data(cell.clone()),
                };
                values.push((*col, value));
            }
            ProfileRow { timestamp, values }
        })
        .collect();
    Ok(Ok(rows))
}
