//! A meter's profiles to collect (class 7 Profile generic: load profiles, event logs): which
//! object, how often, and what its columns are called in telemetry.

use super::error::{quoted, ConfigError};
use crate::cosem::Obis;

/// Shortest default collection period (a profile is not a register to poll); an explicit
/// `every_s` may be shorter.
pub const MIN_EVERY_S: u32 = 60;

/// One profile of a meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSpec {
    pub obis: Obis,
    /// Seconds between collections; `None`: the profile's capture_period (attribute 4), at
    /// least [`MIN_EVERY_S`].
    pub every_s: Option<u32>,
    /// Telemetry keys for captured objects, where the default name is not wanted.
    pub keys: Vec<(Obis, String)>,
}

fn fail(message: String) -> ConfigError {
    ConfigError::field("profiles", message)
}

impl ProfileSpec {
    pub fn new(obis: Obis) -> ProfileSpec {
        ProfileSpec {
            obis,
            every_s: None,
            keys: Vec::new(),
        }
    }

    /// From the text forms the command line, the API and the database share.
    pub fn from_parts(
        obis: &str,
        every_s: Option<&str>,
        keys: &[(String, String)],
    ) -> Result<ProfileSpec, ConfigError> {
        let obis: Obis = obis
            .parse()
            .map_err(|e| fail(format!("{}: {e}", quoted(obis))))?;
        let every_s = every_s
            .map(|v| super::values::bounded::<u32>(v, 1, 86_400))
            .transpose()
            .map_err(|m| fail(format!("{obis}: every_s {m}")))?;
        let mut spec = ProfileSpec {
            obis,
            every_s,
            keys: Vec::new(),
        };
        for (column, key) in keys {
            spec.set_key(column, key)?;
        }
        Ok(spec)
    }

    /// `OBIS=KEY` as `--key` takes it.
    pub fn parse_key(&mut self, v: &str) -> Result<(), ConfigError> {
        let (column, key) = v
            .split_once('=')
            .ok_or_else(|| fail(format!("{} is not OBIS=KEY", quoted(v))))?;
        self.set_key(column, key)
    }

    fn set_key(&mut self, column: &str, key: &str) -> Result<(), ConfigError> {
        let column: Obis = column
            .parse()
            .map_err(|e| fail(format!("{}: key for {}: {e}", self.obis, quoted(column))))?;
        let key =
            super::values::label(key, 64).map_err(|m| fail(format!("{}: key {m}", self.obis)))?;
        self.keys.retain(|(c, _)| *c != column);
        self.keys.push((column, key));
        Ok(())
    }

    /// The telemetry key of a captured object: the configured one, a well-known name, or the
    /// OBIS code.
    pub fn key_of(&self, column: Obis) -> String {
        self.keys
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, k)| k.clone())
            .or_else(|| well_known_key(column).map(str::to_string))
            .unwrap_or_else(|| column.to_string())
    }
}

/// Profiles of one meter: each object once.
pub fn check_profiles(list: &[ProfileSpec]) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for p in list {
        if !seen.insert(p.obis) {
            return Err(fail(format!("{} appears twice", p.obis)));
        }
    }
    Ok(())
}

/// The telemetry names the bridge uses for well-known OBIS codes (IEC 62056-6-1 value group C
/// quantities, D 7 instantaneous and 8 cumulative), as in the default measurements, so that a
/// profile's energy column and a polled register of the same quantity share a key.
pub fn well_known_key(obis: Obis) -> Option<&'static str> {
    let [a, _, c, d, e, _] = obis.0;
    if a != 1 || e != 0 {
        return None;
    }
    Some(match (c, d) {
        (1, 8) => "active_energy_import",
        (2, 8) => "active_energy_export",
        (3, 8) => "reactive_energy_import",
        (4, 8) => "reactive_energy_export",
        (1, 7) => "active_power",
        (2, 7) => "active_power_export",
        (1, 4) | (1, 5) => "active_power_import_avg",
        (2, 4) | (2, 5) => "active_power_export_avg",
        (32, 7) => "voltage_l1",
        (52, 7) => "voltage_l2",
        (72, 7) => "voltage_l3",
        (31, 7) => "current_l1",
        (51, 7) => "current_l2",
        (71, 7) => "current_l3",
        (14, 7) => "frequency",
        (13, 7) => "power_factor",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_default_to_well_known_names_then_obis() {
        let mut p = ProfileSpec::new(Obis::new(1, 0, 99, 1, 0, 255));
        assert_eq!(
            p.key_of(Obis::new(1, 0, 1, 8, 0, 255)),
            "active_energy_import"
        );
        assert_eq!(p.key_of(Obis::new(0, 0, 96, 10, 1, 255)), "0-0:96.10.1*255");
        p.parse_key("1-0:1.8.0*255=import_kwh").unwrap();
        assert_eq!(p.key_of(Obis::new(1, 0, 1, 8, 0, 255)), "import_kwh");
        assert!(p.parse_key("1-0:1.8.0").is_err());
        assert!(p.parse_key("x=import").is_err());
        assert!(ProfileSpec::from_parts("1-0:99.1.0", Some("0"), &[]).is_err());
        assert!(ProfileSpec::from_parts("1-0:99.1.0", Some("900"), &[]).is_ok());
        let twice = vec![p.clone(), p];
        assert!(check_profiles(&twice)
            .unwrap_err()
            .to_string()
            .contains("appears twice"));
    }
}
