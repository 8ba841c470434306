//! Attribute and method descriptors, selective access, access results (Green Book 9.5,
//! "Cosem-Attribute-Descriptor", "Selective-Access-Descriptor", "Data-Access-Result").

use crate::cosem::Obis;
use crate::dlms::axdr::{Data, DateTime};
use crate::dlms::{DecodeError, Reader};
use std::fmt;

/// class-id (u16) | instance-id (6-byte OBIS) | attribute-id (i8)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttributeDescriptor {
    pub class_id: u16,
    pub instance: Obis,
    pub attribute: i8,
}

/// class-id (u16) | instance-id (6-byte OBIS) | method-id (i8)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodDescriptor {
    pub class_id: u16,
    pub instance: Obis,
    pub method: i8,
}

fn read_target(r: &mut Reader<'_>) -> Result<(u16, Obis, i8), DecodeError> {
    let class_id = r.u16()?;
    let instance = Obis(r.array::<6>()?);
    Ok((class_id, instance, r.u8()? as i8))
}

fn write_target(out: &mut Vec<u8>, class_id: u16, instance: Obis, id: i8) {
    out.extend_from_slice(&class_id.to_be_bytes());
    out.extend_from_slice(&instance.0);
    out.push(id as u8);
}

impl AttributeDescriptor {
    pub fn new(class_id: u16, instance: Obis, attribute: i8) -> Self {
        AttributeDescriptor {
            class_id,
            instance,
            attribute,
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (class_id, instance, attribute) = read_target(r)?;
        Ok(AttributeDescriptor {
            class_id,
            instance,
            attribute,
        })
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        write_target(out, self.class_id, self.instance, self.attribute);
    }
}

impl MethodDescriptor {
    pub fn new(class_id: u16, instance: Obis, method: i8) -> Self {
        MethodDescriptor {
            class_id,
            instance,
            method,
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (class_id, instance, method) = read_target(r)?;
        Ok(MethodDescriptor {
            class_id,
            instance,
            method,
        })
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        write_target(out, self.class_id, self.instance, self.method);
    }
}

/// access-selector (u8) and access-parameters (Data).
#[derive(Debug, Clone, PartialEq)]
pub struct SelectiveAccess {
    pub selector: u8,
    pub parameters: Data,
}

/// One column of a profile's capture_objects (Blue Book 4.3.6: class_id, logical_name,
/// attribute_index, data_index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureObject {
    pub class_id: u16,
    pub instance: Obis,
    pub attribute: i8,
    pub data_index: u16,
}

impl CaptureObject {
    /// The clock's time attribute, the usual first column and range restriction.
    pub const CLOCK_TIME: CaptureObject = CaptureObject {
        class_id: 8,
        instance: Obis::new(0, 0, 1, 0, 0, 255),
        attribute: 2,
        data_index: 0,
    };

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::LongUnsigned(self.class_id),
            Data::OctetString(self.instance.0.to_vec()),
            Data::Integer(self.attribute),
            Data::LongUnsigned(self.data_index),
        ])
    }

    /// From one element of capture_objects; `None` if it has another shape.
    pub fn from_data(d: &Data) -> Option<CaptureObject> {
        match d.as_items()? {
            [Data::LongUnsigned(class_id), Data::OctetString(ln), Data::Integer(attribute), Data::LongUnsigned(data_index)] => {
                Some(CaptureObject {
                    class_id: *class_id,
                    instance: Obis::from_bytes(ln)?,
                    attribute: *attribute,
                    data_index: *data_index,
                })
            }
            _ => None,
        }
    }
}

impl SelectiveAccess {
    /// Profile Generic range_descriptor (selector 1, Blue Book 4.3.6): rows whose
    /// `restricting` column lies in [from, to]; `columns` empty means all columns.
    pub fn profile_range(
        restricting: CaptureObject,
        from: DateTime,
        to: DateTime,
        columns: &[CaptureObject],
    ) -> Self {
        SelectiveAccess {
            selector: 1,
            parameters: Data::Structure(vec![
                restricting.to_data(),
                Data::OctetString(from.to_bytes().to_vec()),
                Data::OctetString(to.to_bytes().to_vec()),
                Data::Array(columns.iter().map(CaptureObject::to_data).collect()),
            ]),
        }
    }

    /// Profile Generic entry_descriptor (selector 2): rows `from_entry..=to_entry` (1-based;
    /// 0 as `to_entry` means the last), columns `from_column..=to_column` (0 = last).
    pub fn profile_entries(
        from_entry: u32,
        to_entry: u32,
        from_column: u16,
        to_column: u16,
    ) -> Self {
        SelectiveAccess {
            selector: 2,
            parameters: Data::Structure(vec![
                Data::DoubleLongUnsigned(from_entry),
                Data::DoubleLongUnsigned(to_entry),
                Data::LongUnsigned(from_column),
                Data::LongUnsigned(to_column),
            ]),
        }
    }

    /// Access-selection: 00 (absent) | 01 selector Data.
    pub(crate) fn read_optional(r: &mut Reader<'_>) -> Result<Option<Self>, DecodeError> {
        match r.u8()? {
            0 => Ok(None),
            1 => Ok(Some(SelectiveAccess {
                selector: r.u8()?,
                parameters: Data::read(r)?,
            })),
            t => Err(DecodeError::InvalidValue {
                what: "access-selection presence flag",
                value: u64::from(t),
            }),
        }
    }

    pub(crate) fn write_optional(access: &Option<Self>, out: &mut Vec<u8>) {
        match access {
            None => out.push(0),
            Some(a) => {
                out.extend_from_slice(&[1, a.selector]);
                a.parameters.encode(out);
            }
        }
    }
}

/// Data-Access-Result (also used for Action-Result, whose codes agree). Unknown codes are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataAccessResult(pub u8);

impl DataAccessResult {
    pub const SUCCESS: DataAccessResult = DataAccessResult(0);
    pub const READ_WRITE_DENIED: DataAccessResult = DataAccessResult(3);
    pub const OBJECT_UNDEFINED: DataAccessResult = DataAccessResult(4);
    pub const OBJECT_UNAVAILABLE: DataAccessResult = DataAccessResult(11);
    pub const DATA_BLOCK_UNAVAILABLE: DataAccessResult = DataAccessResult(14);
    pub const LONG_GET_ABORTED: DataAccessResult = DataAccessResult(15);
    pub const DATA_BLOCK_NUMBER_INVALID: DataAccessResult = DataAccessResult(19);
    pub const OTHER_REASON: DataAccessResult = DataAccessResult(250);

    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "success",
            1 => "hardware-fault",
            2 => "temporary-failure",
            3 => "read-write-denied",
            4 => "object-undefined",
            9 => "object-class-inconsistent",
            11 => "object-unavailable",
            12 => "type-unmatched",
            13 => "scope-of-access-violated",
            14 => "data-block-unavailable",
            15 => "long-get-aborted",
            16 => "no-long-get-in-progress",
            17 => "long-set-aborted",
            18 => "no-long-set-in-progress",
            19 => "data-block-number-invalid",
            250 => "other-reason",
            _ => return None,
        })
    }
}

impl fmt::Display for DataAccessResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({})", self.0),
            None => write!(f, "data-access-result {}", self.0),
        }
    }
}

/// Get-Data-Result ::= CHOICE { data [0] Data, data-access-result [1] Data-Access-Result }.
pub type GetDataResult = Result<Data, DataAccessResult>;

pub(crate) fn read_get_data_result(r: &mut Reader<'_>) -> Result<GetDataResult, DecodeError> {
    match r.u8()? {
        0 => Ok(Ok(Data::read(r)?)),
        1 => Ok(Err(DataAccessResult(r.u8()?))),
        t => Err(DecodeError::UnknownTag {
            what: "Get-Data-Result",
            tag: t,
        }),
    }
}

pub(crate) fn write_get_data_result(result: &GetDataResult, out: &mut Vec<u8>) {
    match result {
        Ok(d) => {
            out.push(0);
            d.encode(out);
        }
        Err(e) => out.extend_from_slice(&[1, e.0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_object_round_trip() {
        let c = CaptureObject::CLOCK_TIME;
        assert_eq!(CaptureObject::from_data(&c.to_data()), Some(c));
        assert_eq!(CaptureObject::from_data(&Data::Null), None);
    }

    #[test]
    fn access_result_names() {
        assert_eq!(DataAccessResult(3).to_string(), "read-write-denied (3)");
        assert_eq!(DataAccessResult(99).to_string(), "data-access-result 99");
    }
}
