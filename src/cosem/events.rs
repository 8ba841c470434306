//! Event logs: the event code objects and the standard event codes.
//!
//! An event log is a Profile generic (class 7) whose columns are the clock and an "event code"
//! Data object (class 1, OBIS 0-0:96.11.e: e = 0 standard, 1 fraud/tamper, 2 disconnector,
//! 3 power quality, 4 communication, ... per IEC 62056-6-1 / DLMS UA 1000-1 "Event code
//! objects"). The codes themselves are the IDIS companion specification's (IDIS Package 2,
//! "Standard event log" and "Fraud detection log" tables), which most meters in Europe use;
//! codes outside this table are published as numbers only.

use super::Obis;

/// Whether a captured object is an event code (0-0:96.11.e).
pub fn is_event_code(obis: Obis) -> bool {
    let [a, b, c, d, _, _] = obis.0;
    (a, b, c, d) == (0, 0, 96, 11)
}

/// The name of an event code, where it is a well-known one.
pub fn event_name(code: i64) -> Option<&'static str> {
    Some(match code {
        // Standard event log (0-0:99.98.0).
        1 => "power down",
        2 => "power up",
        3 => "daylight saving time enabled or disabled",
        4 => "clock adjusted (old date/time)",
        5 => "clock adjusted (new date/time)",
        6 => "clock invalid",
        7 => "replace battery",
        8 => "battery voltage low",
        9 => "TOU activated",
        10 => "error register cleared",
        11 => "alarm register cleared",
        12 => "program memory error",
        13 => "RAM error",
        14 => "NV memory error",
        15 => "watchdog error",
        16 => "measurement system error",
        17 => "firmware ready for activation",
        18 => "firmware activated",
        19 => "passive TOU programmed",
        // Fraud detection log (0-0:99.98.1).
        40 => "terminal cover removed",
        41 => "terminal cover closed",
        42 => "strong DC field detected",
        43 => "no strong DC field anymore",
        44 => "meter cover removed",
        45 => "meter cover closed",
        46 => "association authentication failure",
        47 => "decryption or authentication failure",
        48 => "replay attack",
        // Disconnector control log (0-0:99.98.2).
        59 => "manual disconnection",
        60 => "manual connection",
        61 => "remote disconnection",
        62 => "remote connection",
        63 => "local disconnection",
        // Power quality log (0-0:99.98.4).
        76 => "under voltage L1",
        77 => "under voltage L2",
        78 => "under voltage L3",
        79 => "over voltage L1",
        80 => "over voltage L2",
        81 => "over voltage L3",
        82 => "missing voltage L1",
        83 => "missing voltage L2",
        84 => "missing voltage L3",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_code_objects_and_names() {
        assert!(is_event_code(Obis::new(0, 0, 96, 11, 0, 255)));
        assert!(is_event_code(Obis::new(0, 0, 96, 11, 1, 255)));
        assert!(!is_event_code(Obis::new(0, 0, 96, 10, 1, 255)));
        assert_eq!(event_name(1), Some("power down"));
        assert_eq!(event_name(2), Some("power up"));
        assert_eq!(event_name(999), None);
    }
}
