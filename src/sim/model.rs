//! The simulated meter's object model: a realistic 3-phase register set with scalers and
//! units, a clock, a load profile, identity objects and the Association LN object list.
//!
//! Values are deterministic: instantaneous registers are a function of (seed, meter index,
//! OBIS) only, and energy registers grow linearly with time from a seeded base, so a test can
//! compute the truth for any instant with [`MeterModel::truth`].

use crate::cosem::Obis;
use crate::dlms::axdr::{Data, DateTime};
use crate::dlms::xdlms::{DataAccessResult, SelectiveAccess};

pub const CLASS_DATA: u16 = 1;
pub const CLASS_REGISTER: u16 = 3;
pub const CLASS_EXTENDED_REGISTER: u16 = 4;
pub const CLASS_DEMAND_REGISTER: u16 = 5;
pub const CLASS_PROFILE_GENERIC: u16 = 7;
pub const CLASS_CLOCK: u16 = 8;
pub const CLASS_ASSOCIATION_LN: u16 = 15;
/// Disconnect control (Blue Book 4.5.8): the supply relay.
pub const CLASS_DISCONNECT_CONTROL: u16 = 70;

pub const SERIAL_NUMBER: Obis = Obis::new(0, 0, 96, 1, 0, 255);
pub const LOGICAL_DEVICE_NAME: Obis = Obis::new(0, 0, 42, 0, 0, 255);
pub const CLOCK: Obis = Obis::new(0, 0, 1, 0, 0, 255);
pub const DISCONNECT_CONTROL: Obis = Obis::new(0, 0, 96, 3, 10, 255);
pub const ASSOCIATION: Obis = Obis::new(0, 0, 40, 0, 0, 255);
pub const LOAD_PROFILE: Obis = Obis::new(1, 0, 99, 1, 0, 255);
/// The standard event log and its event code object (IDIS).
pub const EVENT_LOG: Obis = Obis::new(0, 0, 99, 98, 0, 255);
pub const EVENT_CODE: Obis = Obis::new(0, 0, 96, 11, 0, 255);
pub const ENERGY_IMPORT: Obis = Obis::new(1, 0, 1, 8, 0, 255);
pub const ENERGY_EXPORT: Obis = Obis::new(1, 0, 2, 8, 0, 255);
pub const MAX_DEMAND: Obis = Obis::new(1, 0, 1, 6, 0, 255);
pub const DEMAND: Obis = Obis::new(1, 0, 1, 4, 0, 255);

/// Energy registers count from 2020-01-01T00:00:00Z, so totals look like a meter's.
const ENERGY_EPOCH: i64 = 1_577_836_800;

/// Seconds between load profile rows.
pub const PROFILE_PERIOD: i64 = 900;

/// How a register's value is stored on the wire.
#[derive(Debug, Clone, Copy)]
enum Kind {
    LongUnsigned,
    DoubleLongUnsigned,
    DoubleLong,
    Long,
}

/// A register: OBIS, wire type, scaler, unit, and the raw value range it is drawn from.
#[derive(Debug, Clone, Copy)]
struct RegisterSpec {
    obis: Obis,
    kind: Kind,
    scaler: i8,
    unit: u8,
    base: i64,
    spread: i64,
}

const fn reg(obis: Obis, kind: Kind, scaler: i8, unit: u8, base: i64, spread: i64) -> RegisterSpec {
    RegisterSpec {
        obis,
        kind,
        scaler,
        unit,
        base,
        spread,
    }
}

/// The instantaneous registers (Blue Book / IEC 62056-6-1 OBIS for electricity).
const INSTANTANEOUS: [RegisterSpec; 11] = [
    reg(
        Obis::new(1, 0, 32, 7, 0, 255),
        Kind::LongUnsigned,
        -1,
        35,
        2250,
        100,
    ), // V L1
    reg(
        Obis::new(1, 0, 52, 7, 0, 255),
        Kind::LongUnsigned,
        -1,
        35,
        2250,
        100,
    ), // V L2
    reg(
        Obis::new(1, 0, 72, 7, 0, 255),
        Kind::LongUnsigned,
        -1,
        35,
        2250,
        100,
    ), // V L3
    reg(
        Obis::new(1, 0, 31, 7, 0, 255),
        Kind::DoubleLongUnsigned,
        -2,
        33,
        100,
        2000,
    ), // A L1
    reg(
        Obis::new(1, 0, 51, 7, 0, 255),
        Kind::DoubleLongUnsigned,
        -2,
        33,
        100,
        2000,
    ), // A L2
    reg(
        Obis::new(1, 0, 71, 7, 0, 255),
        Kind::DoubleLongUnsigned,
        -2,
        33,
        100,
        2000,
    ), // A L3
    reg(
        Obis::new(1, 0, 1, 7, 0, 255),
        Kind::DoubleLong,
        0,
        27,
        200,
        9000,
    ), // +P W
    reg(
        Obis::new(1, 0, 2, 7, 0, 255),
        Kind::DoubleLong,
        0,
        27,
        0,
        500,
    ), // -P W
    reg(
        Obis::new(1, 0, 9, 7, 0, 255),
        Kind::DoubleLong,
        0,
        28,
        300,
        9000,
    ), // S VA
    reg(
        Obis::new(1, 0, 14, 7, 0, 255),
        Kind::LongUnsigned,
        -2,
        44,
        4990,
        20,
    ), // f Hz
    reg(
        Obis::new(1, 0, 13, 7, 0, 255),
        Kind::Long,
        -3,
        255,
        850,
        150,
    ), // PF
];

/// Energy registers: Wh, scaler 0; they grow by `rate` Wh per hour.
const ENERGY: [(Obis, i64); 2] = [(ENERGY_IMPORT, 1_000_000), (ENERGY_EXPORT, 50_000)];

/// splitmix64: a tiny, well-mixed hash for deterministic values.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn obis_key(o: Obis) -> u64 {
    o.0.iter().fold(0u64, |k, b| (k << 8) | u64::from(*b))
}

/// One simulated meter.
#[derive(Debug, Clone)]
pub struct MeterModel {
    pub seed: u64,
    pub index: u32,
    /// Days of load profile and event log kept.
    pub profile_days: u32,
    /// Seconds between load profile rows (the capture period).
    pub profile_period: i64,
    /// Whether the profiles serve selective access by range (some meters only by entry).
    pub range_access: bool,
    /// Seconds between simulated power failures in the event log (each a "power down" and,
    /// 90 s later, a "power up" event).
    pub outage_every: i64,
    /// The meter's clock minus the system clock, in seconds: shared by every connection to
    /// this meter, moved by a SET of the clock.
    pub clock_offset: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// Whether a SET of the clock is accepted (some meters allow it only to other clients).
    pub clock_settable: bool,
}

/// A value and its scaler/unit, as the truth for tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    pub raw: i64,
    pub scaler: i8,
    pub unit: u8,
}

impl MeterModel {
    pub fn new(seed: u64, index: u32) -> Self {
        MeterModel {
            seed,
            index,
            profile_days: 2,
            profile_period: PROFILE_PERIOD,
            range_access: true,
            outage_every: 6 * 3600,
            clock_offset: std::sync::Arc::default(),
            clock_settable: true,
        }
    }

    fn hash(&self, obis: Obis) -> u64 {
        mix(self.seed ^ mix(u64::from(self.index)) ^ mix(obis_key(obis)))
    }

    pub fn serial_number(&self) -> String {
        format!("SIM{:010}", (self.hash(SERIAL_NUMBER) % 10_000_000_000))
    }

    fn energy_rate(&self, obis: Obis) -> i64 {
        // Wh per hour: 100..5100 W average.
        100 + (self.hash(obis) >> 8) as i64 % 5000
    }

    /// The raw value, scaler and unit of a register at Unix time `now`.
    pub fn truth(&self, obis: Obis, now: i64) -> Option<Truth> {
        if let Some(spec) = INSTANTANEOUS.iter().find(|s| s.obis == obis) {
            let raw = spec.base + (self.hash(obis) % spec.spread as u64) as i64;
            return Some(Truth {
                raw,
                scaler: spec.scaler,
                unit: spec.unit,
            });
        }
        let (_, base) = ENERGY.iter().find(|(o, _)| *o == obis)?;
        let start = base + (self.hash(obis) % 1_000_000) as i64;
        Some(Truth {
            raw: start + (now - ENERGY_EPOCH).max(0) * self.energy_rate(obis) / 3600,
            scaler: 0,
            unit: 30,
        })
    }

    /// Every register OBIS this meter has (instantaneous and energy).
    pub fn register_codes() -> Vec<Obis> {
        INSTANTANEOUS
            .iter()
            .map(|s| s.obis)
            .chain(ENERGY.iter().map(|(o, _)| *o))
            .collect()
    }

    fn register_value(&self, obis: Obis, now: i64) -> Option<Data> {
        let t = self.truth(obis, now)?;
        let kind = INSTANTANEOUS
            .iter()
            .find(|s| s.obis == obis)
            .map_or(Kind::DoubleLongUnsigned, |s| s.kind);
        Some(match kind {
            Kind::LongUnsigned => Data::LongUnsigned(t.raw as u16),
            Kind::DoubleLongUnsigned => Data::DoubleLongUnsigned(t.raw as u32),
            Kind::DoubleLong => Data::DoubleLong(t.raw as i32),
            Kind::Long => Data::Long(t.raw as i16),
        })
    }

    fn scaler_unit(&self, obis: Obis) -> Option<Data> {
        let t = self.truth(obis, 0)?;
        Some(Data::Structure(vec![
            Data::Integer(t.scaler),
            Data::Enum(t.unit),
        ]))
    }

    /// Reads attribute `attr` of object (`class`, `obis`) at time `now`.
    pub fn get(
        &self,
        class: u16,
        obis: Obis,
        attr: i8,
        access: Option<&SelectiveAccess>,
        now: i64,
    ) -> Result<Data, DataAccessResult> {
        let undefined = Err(DataAccessResult::OBJECT_UNDEFINED);
        if attr == 1 {
            // Attribute 1 of every class is the logical name.
            return if self.has_object(class, obis) {
                Ok(Data::OctetString(obis.0.to_vec()))
            } else {
                undefined
            };
        }
        let date_time = |t: i64| Data::OctetString(DateTime::from_unix(t, 0).to_bytes().to_vec());
        match (class, obis, attr) {
            (CLASS_DATA, SERIAL_NUMBER, 2) => {
                Ok(Data::VisibleString(self.serial_number().into_bytes()))
            }
            (CLASS_DATA, LOGICAL_DEVICE_NAME, 2) => Ok(Data::OctetString(
                format!("SIM{:013}", self.index).into_bytes(),
            )),
            (CLASS_CLOCK, CLOCK, 2) => Ok(date_time(now)),
            (CLASS_CLOCK, CLOCK, 3) => Ok(Data::Long(0)),
            (CLASS_CLOCK, CLOCK, 4) => Ok(Data::Unsigned(0)),
            (CLASS_REGISTER, o, 2) => self
                .register_value(o, now)
                .ok_or(DataAccessResult::OBJECT_UNDEFINED),
            (CLASS_REGISTER, o, 3) => self
                .scaler_unit(o)
                .ok_or(DataAccessResult::OBJECT_UNDEFINED),
            // Extended register: max demand with its capture time (start of the hour).
            (CLASS_EXTENDED_REGISTER, MAX_DEMAND, 2) => Ok(Data::DoubleLongUnsigned(
                self.truth(Obis::new(1, 0, 1, 7, 0, 255), now)
                    .map_or(0, |t| t.raw as u32 + 500),
            )),
            (CLASS_EXTENDED_REGISTER, MAX_DEMAND, 3) => {
                Ok(Data::Structure(vec![Data::Integer(0), Data::Enum(27)]))
            }
            (CLASS_EXTENDED_REGISTER, MAX_DEMAND, 4) => Ok(Data::Unsigned(0)),
            (CLASS_EXTENDED_REGISTER, MAX_DEMAND, 5) => Ok(date_time(now - now.rem_euclid(3600))),
            // Demand register: current and last average of +P over 15-minute periods.
            (CLASS_DEMAND_REGISTER, DEMAND, 2 | 3) => Ok(Data::DoubleLongUnsigned(
                self.truth(Obis::new(1, 0, 1, 7, 0, 255), now)
                    .map_or(0, |t| t.raw as u32),
            )),
            (CLASS_DEMAND_REGISTER, DEMAND, 4) => {
                Ok(Data::Structure(vec![Data::Integer(0), Data::Enum(27)]))
            }
            (CLASS_DEMAND_REGISTER, DEMAND, 5) => Ok(Data::Unsigned(0)),
            (CLASS_DEMAND_REGISTER, DEMAND, 6) => {
                Ok(date_time(now - now.rem_euclid(PROFILE_PERIOD)))
            }
            (CLASS_DEMAND_REGISTER, DEMAND, 7) => {
                Ok(date_time(now - now.rem_euclid(PROFILE_PERIOD)))
            }
            (CLASS_DEMAND_REGISTER, DEMAND, 8) => {
                Ok(Data::DoubleLongUnsigned(PROFILE_PERIOD as u32))
            }
            (CLASS_DEMAND_REGISTER, DEMAND, 9) => Ok(Data::LongUnsigned(1)),
            (CLASS_PROFILE_GENERIC, p @ (LOAD_PROFILE | EVENT_LOG), a) => {
                self.profile_attribute(p, a, access, now)
            }
            (CLASS_DATA, EVENT_CODE, 2) => Ok(Data::LongUnsigned(
                self.event_rows(now).last().map_or(0, |(_, code)| *code),
            )),
            (CLASS_ASSOCIATION_LN, ASSOCIATION, 2) => Ok(self.object_list()),
            _ if self.has_object(class, obis) => Err(DataAccessResult::OBJECT_UNAVAILABLE),
            _ => undefined,
        }
    }

    pub fn has_object(&self, class: u16, obis: Obis) -> bool {
        self.objects().contains(&(class, obis))
    }

    /// (class, OBIS) of every object.
    pub fn objects(&self) -> Vec<(u16, Obis)> {
        let mut v = vec![
            (CLASS_DATA, SERIAL_NUMBER),
            (CLASS_DATA, LOGICAL_DEVICE_NAME),
            (CLASS_CLOCK, CLOCK),
            (CLASS_DISCONNECT_CONTROL, DISCONNECT_CONTROL),
            (CLASS_ASSOCIATION_LN, ASSOCIATION),
            (CLASS_PROFILE_GENERIC, LOAD_PROFILE),
            (CLASS_PROFILE_GENERIC, EVENT_LOG),
            (CLASS_DATA, EVENT_CODE),
            (CLASS_EXTENDED_REGISTER, MAX_DEMAND),
            (CLASS_DEMAND_REGISTER, DEMAND),
        ];
        v.extend(
            Self::register_codes()
                .into_iter()
                .map(|o| (CLASS_REGISTER, o)),
        );
        v
    }

    fn object_list(&self) -> Data {
        let version = |class| match class {
            CLASS_CLOCK | CLASS_PROFILE_GENERIC => 1,
            CLASS_ASSOCIATION_LN => 2,
            _ => 0,
        };
        Data::Array(
            self.objects()
                .into_iter()
                .map(|(class, obis)| {
                    Data::Structure(vec![
                        Data::LongUnsigned(class),
                        Data::Unsigned(version(class)),
                        Data::OctetString(obis.0.to_vec()),
                        // access_rights: attribute and method access lists (left empty: "as
                        // the association allows").
                        Data::Structure(vec![Data::Array(vec![]), Data::Array(vec![])]),
                    ])
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlms::xdlms::CaptureObject;

    #[test]
    fn values_are_deterministic_and_plausible() {
        let a = MeterModel::new(42, 0);
        let b = MeterModel::new(42, 0);
        let c = MeterModel::new(42, 1);
        let v = Obis::new(1, 0, 32, 7, 0, 255);
        assert_eq!(a.truth(v, 0), b.truth(v, 1000));
        // Another meter differs (in some register: one value may coincide by chance).
        let all = |m: &MeterModel| {
            MeterModel::register_codes()
                .iter()
                .map(|o| m.truth(*o, 0))
                .collect::<Vec<_>>()
        };
        assert_ne!(all(&a), all(&c));
        let volts = a.truth(v, 0).unwrap();
        assert!((2250..2350).contains(&volts.raw) && volts.scaler == -1 && volts.unit == 35);
        let e0 = a.truth(ENERGY_IMPORT, ENERGY_EPOCH).unwrap().raw;
        let e1 = a.truth(ENERGY_IMPORT, ENERGY_EPOCH + 3600).unwrap().raw;
        assert!(e1 > e0);
        assert_eq!(a.serial_number(), b.serial_number());
        assert_eq!(a.serial_number().len(), 13);
    }

    #[test]
    fn profile_by_range_and_entry() {
        let m = MeterModel::new(1, 0);
        let now = 1_795_500_000 + 100;
        let rows = m.profile_rows(now);
        assert_eq!(rows.len(), 192);
        assert_eq!(*rows.last().unwrap(), 1_795_500_000);
        let range = SelectiveAccess::profile_range(
            CaptureObject::CLOCK_TIME,
            DateTime::from_unix(1_795_500_000 - 3600, 0),
            DateTime::from_unix(1_795_500_000, 0),
            &[],
        );
        let Ok(Data::Array(r)) = m.get(CLASS_PROFILE_GENERIC, LOAD_PROFILE, 2, Some(&range), now)
        else {
            panic!("range read failed");
        };
        assert_eq!(r.len(), 5);
        let entries = SelectiveAccess::profile_entries(1, 3, 2, 2);
        let Ok(Data::Array(e)) = m.get(CLASS_PROFILE_GENERIC, LOAD_PROFILE, 2, Some(&entries), now)
        else {
            panic!("entry read failed");
        };
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].as_items().unwrap().len(), 1);
        assert!(m
            .get(CLASS_REGISTER, Obis::new(9, 9, 9, 9, 9, 9), 2, None, now)
            .is_err());
    }
}
