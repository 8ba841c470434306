//! Short names of attributes and methods, and the object list of Association SN (Blue Book
//! DLMS UA 1000-1, 4.1.3 "Referencing methods" and 4.4.4 "Association SN", IC 12).
//!
//! Every object of an SN meter has a base name (its attribute 1, logical_name). Attribute n
//! is at `base + (n - 1) * 8`; the methods of each class start at an offset the Blue Book
//! gives per class in its "short name" column (e.g. Clock: attributes 0x00..0x40, methods
//! 0x60..0x88), so [`first_method_offset`] is a table, not a formula.

use super::variable::ShortName;
use crate::cosem::Obis;
use crate::dlms::axdr::Data;
use std::collections::HashMap;
use std::fmt;

/// The base name of Association SN itself (Blue Book 4.4.4: the current association is
/// reached at base name 0xFA00); its object_list is attribute 2, short name 0xFA08.
pub const CURRENT_ASSOCIATION_BASE: ShortName = 0xFA00;
pub const OBJECT_LIST: ShortName = CURRENT_ASSOCIATION_BASE + 8;
/// reply_to_HLS_authentication, method 8 of Association SN (first method at 0x20): HLS pass 3
/// over short names.
pub const REPLY_TO_HLS: ShortName = CURRENT_ASSOCIATION_BASE + 0x20 + 7 * 8;

/// Why a logical-name reference has no short name on this meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShortNameError {
    /// The object is not in the meter's object list.
    UnknownObject { class_id: u16, instance: Obis },
    /// Attribute or method id 0 or negative: there is nothing at that offset.
    InvalidIndex { index: i8 },
    /// The Blue Book gives no method short names for this class (or not that many).
    NoMethod { class_id: u16, method: i8 },
    /// base + offset passes 0xFFFF.
    OutOfRange { base: ShortName, offset: u16 },
    /// An element of object_list is not {long, long-unsigned, unsigned, octet-string(6)}.
    BadObjectList { index: usize },
}

impl fmt::Display for ShortNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShortNameError::UnknownObject { class_id, instance } => write!(
                f,
                "class {class_id} {instance} is not in the meter's short-name object list"
            ),
            ShortNameError::InvalidIndex { index } => {
                write!(f, "index {index} has no short name (indexes start at 1)")
            }
            ShortNameError::NoMethod { class_id, method } => write!(
                f,
                "no short name is defined for method {method} of class {class_id}"
            ),
            ShortNameError::OutOfRange { base, offset } => {
                write!(f, "short name 0x{base:04X} + 0x{offset:02X} passes 0xFFFF")
            }
            ShortNameError::BadObjectList { index } => {
                write!(f, "object_list element {index} is not an SN object entry")
            }
        }
    }
}

impl std::error::Error for ShortNameError {}

/// One element of Association SN object_list (Blue Book 4.4.4, attribute 2):
/// `structure { base_name long, class_id long-unsigned, version unsigned,
/// logical_name octet-string }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnObject {
    pub base_name: ShortName,
    pub class_id: u16,
    pub version: u8,
    pub instance: Obis,
}

impl SnObject {
    pub fn from_data(d: &Data) -> Option<SnObject> {
        match d.as_items()? {
            [base, Data::LongUnsigned(class_id), Data::Unsigned(version), Data::OctetString(ln)] => {
                Some(SnObject {
                    base_name: match base {
                        // base_name is typed long (Integer16) but is a 16-bit name: 0xFA00
                        // arrives as a negative number. Some meters send long-unsigned.
                        Data::Long(b) => *b as u16,
                        Data::LongUnsigned(b) => *b,
                        _ => return None,
                    },
                    class_id: *class_id,
                    version: *version,
                    instance: Obis::from_bytes(ln)?,
                })
            }
            _ => None,
        }
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::Long(self.base_name as i16),
            Data::LongUnsigned(self.class_id),
            Data::Unsigned(self.version),
            Data::OctetString(self.instance.0.to_vec()),
        ])
    }
}

/// The offset of the first method of a class (Blue Book 1000-1, the "short name" column of
/// each interface class). `None` for classes without methods or not listed here. Cross-checked
/// against Gurux's GXDLMS.getActionInfo table (its Java form; the Python 1.0.203 port folds
/// several branches together).
pub fn first_method_offset(class_id: u16) -> Option<(u16, i8)> {
    // (offset of method 1, number of methods)
    Some(match class_id {
        3 => (0x28, 1),  // Register: reset
        4 => (0x38, 1),  // Extended register: reset
        5 => (0x48, 2),  // Demand register: reset, next_period
        6 => (0x30, 3),  // Register activation: add_register, add_mask, delete_mask
        7 => (0x58, 4),  // Profile generic: reset, capture, (2 reserved)
        8 => (0x60, 6),  // Clock: adjust_to_quarter .. shift_time
        9 => (0x20, 1),  // Script table: execute
        11 => (0x10, 2), // Special days table: insert, delete
        12 => (0x20, 8), // Association SN: read_by_logical_name .. reply_to_HLS_authentication
        18 => (0x40, 4), // Image transfer
        20 => (0x50, 1), // Activity calendar: activate_passive_calendar
        40 => (0x38, 1), // Push setup: push
        70 => (0x20, 2), // Disconnect control: remote_disconnect, remote_reconnect
        _ => return None,
    })
}

/// The short name of attribute `attribute` of the object at `base` (Blue Book 4.1.3:
/// attribute n at offset (n - 1) * 8).
pub fn attribute_name(base: ShortName, attribute: i8) -> Result<ShortName, ShortNameError> {
    if attribute < 1 {
        return Err(ShortNameError::InvalidIndex { index: attribute });
    }
    offset(base, (attribute as u16 - 1) * 8)
}

/// The short name of method `method` of a `class_id` object at `base`.
pub fn method_name(
    base: ShortName,
    class_id: u16,
    method: i8,
) -> Result<ShortName, ShortNameError> {
    if method < 1 {
        return Err(ShortNameError::InvalidIndex { index: method });
    }
    let (first, count) =
        first_method_offset(class_id).ok_or(ShortNameError::NoMethod { class_id, method })?;
    if method > count {
        return Err(ShortNameError::NoMethod { class_id, method });
    }
    offset(base, first + (method as u16 - 1) * 8)
}

fn offset(base: ShortName, offset: u16) -> Result<ShortName, ShortNameError> {
    base.checked_add(offset)
        .ok_or(ShortNameError::OutOfRange { base, offset })
}

/// (class, OBIS) -> base name, built once per association from object_list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShortNameMap {
    objects: Vec<SnObject>,
    by_instance: HashMap<(u16, Obis), ShortName>,
}

impl ShortNameMap {
    pub fn new(objects: Vec<SnObject>) -> Self {
        let by_instance = objects
            .iter()
            .map(|o| ((o.class_id, o.instance), o.base_name))
            .collect();
        ShortNameMap {
            objects,
            by_instance,
        }
    }

    /// From the value of object_list (an array of [`SnObject`] structures).
    pub fn from_object_list(list: &Data) -> Result<Self, ShortNameError> {
        let items = match list {
            Data::Array(items) => items,
            _ => return Err(ShortNameError::BadObjectList { index: 0 }),
        };
        let objects = items
            .iter()
            .enumerate()
            .map(|(index, d)| SnObject::from_data(d).ok_or(ShortNameError::BadObjectList { index }))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ShortNameMap::new(objects))
    }

    pub fn objects(&self) -> &[SnObject] {
        &self.objects
    }

    pub fn base_name(&self, class_id: u16, instance: Obis) -> Result<ShortName, ShortNameError> {
        self.by_instance
            .get(&(class_id, instance))
            .copied()
            .ok_or(ShortNameError::UnknownObject { class_id, instance })
    }

    pub fn attribute(
        &self,
        class_id: u16,
        instance: Obis,
        attribute: i8,
    ) -> Result<ShortName, ShortNameError> {
        attribute_name(self.base_name(class_id, instance)?, attribute)
    }

    pub fn method(
        &self,
        class_id: u16,
        instance: Obis,
        method: i8,
    ) -> Result<ShortName, ShortNameError> {
        method_name(self.base_name(class_id, instance)?, class_id, method)
    }
}
