//! One meter's configuration, typed. Values are checked one by one where they enter (the
//! field parsers in `fields.rs`); [`MeterConfig::validate`] checks how they combine. A meter
//! that passed it builds its [`MeterTarget`](crate::client::MeterTarget) without failing.

use super::error::{quoted, ConfigError};
use super::profile::{check_profiles, ProfileSpec};
use super::values::{AuthKind, Ciphering, Parity, Protocol, Push, Secret, Transport};

use crate::cosem::Obis;
use crate::dlms::session::GbtPolicy;

/// One telemetry key and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurement {
    pub key: String,
    pub obis: Obis,
    pub class_id: u16,
    pub attribute: i8,
}

impl Measurement {
    /// A register's value (class 3, attribute 2).
    pub fn register(key: &str, obis: Obis) -> Measurement {
        Measurement {
            key: key.to_string(),
            obis,
            class_id: 3,
            attribute: 2,
        }
    }

    /// `KEY=OBIS[:CLASS:ATTR]`, as `--measure` takes it.
    pub fn parse_spec(v: &str) -> Result<Measurement, ConfigError> {
        let (key, spec) = v.split_once('=').ok_or_else(|| {
            ConfigError::field(
                "measurements",
                format!("{} is not KEY=OBIS[:CLASS:ATTR]", quoted(v)),
            )
        })?;
        let (obis, class, attribute) = split_object(spec);
        Measurement::from_parts(key, obis, class, attribute)
    }

    /// From its four parts as text (the API's and the database's form).
    pub fn from_parts(
        key: &str,
        obis: &str,
        class: &str,
        attribute: &str,
    ) -> Result<Measurement, ConfigError> {
        let fail = |m: String| ConfigError::field("measurements", m);
        let key = super::values::label(key, 64).map_err(|m| fail(format!("key {m}")))?;
        let obis: Obis = obis.parse().map_err(|e| fail(format!("{key}: {e}")))?;
        let class_id = super::values::bounded::<u16>(class, 1, u16::MAX)
            .map_err(|m| fail(format!("{key}: class {m}")))?;
        let attribute = super::values::bounded::<i8>(attribute, 1, i8::MAX)
            .map_err(|m| fail(format!("{key}: attribute {m}")))?;
        Ok(Measurement {
            key,
            obis,
            class_id,
            attribute,
        })
    }
}

/// `OBIS[:CLASS:ATTR]` into its parts (class 3, attribute 2 if not given). An OBIS code's
/// own colon (`1-0:32.7.0`) is told apart by the numbers after it.
pub fn split_object(spec: &str) -> (&str, &str, &str) {
    let mut parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    parts.reverse();
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    match parts.as_slice() {
        [o, c, a] if digits(c) && digits(a) && !c.contains('-') => (o, c, a),
        _ => (spec, "3", "2"),
    }
}

/// `OBIS[:CLASS:ATTR]` as a read target (`dlms-bridge read`'s arguments).
pub fn parse_object(spec: &str) -> Result<(Obis, u16, i8), String> {
    let (obis, class, attribute) = split_object(spec);
    let obis: Obis = obis.parse().map_err(|e| format!("{e}"))?;
    let class = super::values::bounded::<u16>(class, 1, u16::MAX)
        .map_err(|m| format!("{spec}: class {m}"))?;
    let attribute = super::values::bounded::<i8>(attribute, i8::MIN, i8::MAX)
        .map_err(|m| format!("{spec}: attribute {m}"))?;
    Ok((obis, class, attribute))
}

/// The measurements a new meter gets when none are given: the usual 3-phase set.
pub fn default_measurements() -> Vec<Measurement> {
    [
        ("voltage_l1", [1, 0, 32, 7, 0, 255]),
        ("voltage_l2", [1, 0, 52, 7, 0, 255]),
        ("voltage_l3", [1, 0, 72, 7, 0, 255]),
        ("current_l1", [1, 0, 31, 7, 0, 255]),
        ("current_l2", [1, 0, 51, 7, 0, 255]),
        ("current_l3", [1, 0, 71, 7, 0, 255]),
        ("active_power", [1, 0, 1, 7, 0, 255]),
        ("frequency", [1, 0, 14, 7, 0, 255]),
        ("active_energy_import", [1, 0, 1, 8, 0, 255]),
        ("power_factor", [1, 0, 13, 7, 0, 255]),
    ]
    .into_iter()
    .map(|(key, obis)| Measurement::register(key, Obis(obis)))
    .collect()
}

/// A meter: where it is, how to address and authenticate to it, what to read and how often.
/// Every field is defined once, in `fields.rs` (name, flag, help, parser, default shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterConfig {
    /// The database row; `None` until stored.
    pub id: Option<i64>,
    pub name: String,
    pub enabled: bool,
    pub transport: Transport,
    /// LN, SN or auto (see `crate::dlms::sn::association::Referencing`).
    pub referencing: crate::dlms::sn::association::Referencing,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub serial_device: Option<String>,
    pub baud: u32,
    pub data_bits: u8,
    pub parity: Parity,
    pub stop_bits: u8,
    pub mode_e: bool,
    /// DLMS, or the IEC 62056-21 readout (`src/config/mode_c.rs` says what goes with it).
    pub protocol: Protocol,
    pub client_address: u8,
    pub server_logical: u16,
    /// `None`: a one-byte server address (logical only).
    pub server_physical: Option<u16>,
    pub auth: AuthKind,
    pub password: Option<Secret<String>>,
    pub security: Ciphering,
    pub system_title: Option<[u8; 8]>,
    pub encryption_key: Option<Secret<[u8; 16]>>,
    pub authentication_key: Option<Secret<[u8; 16]>>,
    pub dedicated_key: bool,
    pub general_ciphering: bool,
    /// General block transfer (IEC 62056-5-3 9.3.11): proposed, required or not.
    pub gbt: GbtPolicy,
    pub frame_counter: Option<Obis>,
    pub connect_timeout_ms: u32,
    pub response_timeout_ms: u32,
    pub inter_frame_timeout_ms: u32,
    pub max_info: u16,
    /// HDLC window proposed (IEC 62056-46 6.4.4.4.3.2).
    pub hdlc_window: u8,
    pub interval_s: u32,
    pub inactivity_timeout_s: u32,
    /// Least seconds between the close of a connection to the meter and the next one.
    pub reconnect_gap_s: u32,
    /// The meter takes one connection at a time.
    pub single_connection: bool,
    pub device_type: String,
    pub access_token: Option<Secret<String>>,
    /// ThingsBoard RPCs that write to the meter (set_clock, set, action, disconnect,
    /// reconnect) are refused unless this is true.
    pub rpc_write: bool,
    /// Minutes east of UTC of a meter whose clock carries no deviation (local time).
    pub utc_offset_min: i16,
    /// Set the meter's clock when it drifts by more than this many seconds; `None`: never.
    pub clock_sync_threshold_s: Option<u32>,
    pub measurements: Vec<Measurement>,
    /// Profiles (load profiles, event logs) collected with backfill.
    pub profiles: Vec<ProfileSpec>,
    /// Polled, or pushing DATA-NOTIFICATIONs.
    pub push: Push,
    /// For pushed lists without OBIS codes: the OBIS code (and scaler) of each position.
    pub push_template: Option<String>,
    /// A TCP push meter that does not cipher: the source address (wrapper wPort or HDLC
    /// address) its notifications carry.
    pub push_address: Option<u16>,
    /// A TCP push meter known by the logical device name (0-0:42.0.0) its notifications carry.
    pub logical_device_name: Option<String>,
}

impl Default for MeterConfig {
    /// The defaults every path shares (`meter add`, `read`, `scan`, the API, import): the
    /// addressing `dlms-bridge simulate` and most meters answer (client 16, logical 1,
    /// physical 17), none of the secrets.
    fn default() -> Self {
        MeterConfig {
            id: None,
            name: String::new(),
            enabled: true,
            transport: Transport::Hdlc,
            referencing: crate::dlms::sn::association::Referencing::Auto,
            host: None,
            port: None,
            serial_device: None,
            baud: 9600,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
            mode_e: false,
            protocol: Protocol::Dlms,
            client_address: 16,
            server_logical: 1,
            server_physical: Some(17),
            auth: AuthKind::None,
            password: None,
            security: Ciphering::None,
            system_title: None,
            encryption_key: None,
            authentication_key: None,
            dedicated_key: false,
            general_ciphering: false,
            gbt: GbtPolicy::Off,
            frame_counter: None,
            connect_timeout_ms: 5000,
            response_timeout_ms: 5000,
            inter_frame_timeout_ms: 5000,
            // The largest the standard allows: the meter's UA grants what it can (IEC 62056-46
            // 6.4.4.4.3.2: the smaller of both); a meter that refuses any parameter block gets
            // a SNRM without one (client::connection).
            max_info: 2030,
            hdlc_window: 7,
            interval_s: 60,
            inactivity_timeout_s: 120,
            reconnect_gap_s: 0,
            single_connection: false,
            device_type: "electricity-meter".to_string(),
            access_token: None,
            rpc_write: false,
            utc_offset_min: 0,
            clock_sync_threshold_s: None,
            measurements: default_measurements(),
            profiles: Vec::new(),
            push: Push::None,
            push_template: None,
            push_address: None,
            logical_device_name: None,
        }
    }
}

impl MeterConfig {
    /// A short fingerprint of the credentials an association presents (mechanism, password
    /// or HLS secret, keys), salted with the meter's name: tells a refusal of these
    /// credentials (`store::auth_refusals`) from one of credentials changed since. The
    /// database holds the secrets themselves; this only avoids a second copy of them.
    pub fn credentials_fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        h.update([0]);
        h.update(format!("{:?}", self.auth).as_bytes());
        h.update([0]);
        if let Some(p) = &self.password {
            h.update(p.0.as_bytes());
        }
        h.update([0]);
        for key in [&self.authentication_key, &self.encryption_key]
            .into_iter()
            .flatten()
        {
            h.update(key.0);
        }
        crate::hex::encode(&h.finalize()[..8])
    }

    /// A meter with every default, reached over TCP.
    pub fn tcp(name: &str, host: &str, port: u16) -> MeterConfig {
        MeterConfig {
            name: name.to_string(),
            host: Some(host.to_string()),
            port: Some(port),
            ..MeterConfig::default()
        }
    }

    /// How the fields combine (each value was checked when it was parsed); errors name the
    /// meter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::field("name", "is required"));
        }
        self.combination().map_err(|e| e.of_meter(&self.name))
    }

    /// [`MeterConfig::validate`] for a meter that has no name yet (`read`, `scan`).
    pub fn combination(&self) -> Result<(), ConfigError> {
        self.usable_combination()?;
        // A password is only sent with low authentication: given without it, it is a
        // mistake (the meter would be asked for the public association instead).
        if self.auth == AuthKind::None && self.password.is_some() {
            return Err(ConfigError::new(
                "{password} is given but {auth} is none: give {auth} low, or drop the \
                 password (none clears it)",
            ));
        }
        Ok(())
    }

    /// Whether the meter can be read as it is: [`MeterConfig::validate`] without the checks
    /// for mistakes that do no harm once stored (a password kept with `auth` none, as
    /// versions before issue 25 accepted). What a stored meter must pass to be polled.
    pub fn usable(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::field("name", "is required"));
        }
        self.usable_combination()
            .map_err(|e| e.of_meter(&self.name))
    }

    fn usable_combination(&self) -> Result<(), ConfigError> {
        let err = ConfigError::new;
        if self.protocol == Protocol::ModeC {
            self.mode_c_combination()?;
        }
        if self.push == Push::Tcp {
            // The meter comes to us: no address of its own; it is known by what it sends.
            if self.host.is_some() || self.port.is_some() || self.serial_device.is_some() {
                return Err(err(
                    "{push} tcp meters connect to push.listen: no {host}, {port} or {serial_device}",
                ));
            }
            if self.system_title.is_none()
                && self.push_address.is_none()
                && self.logical_device_name.is_none()
            {
                return Err(err(
                    "{push} tcp needs {system_title} (ciphered notifications), {push_address} or \
                     {logical_device_name}",
                ));
            }
            return Ok(());
        }
        match (&self.host, self.port, &self.serial_device) {
            (Some(_), Some(_), None) => {}
            (None, None, Some(_)) => {
                if self.transport == Transport::Wrapper {
                    return Err(err("{transport} wrapper is for TCP; serial lines use hdlc"));
                }
            }
            (Some(_), Some(_), Some(_)) => {
                return Err(err(
                    "give either {host} and {port}, or {serial_device}, not both (none clears one)",
                ))
            }
            (Some(_), None, None) => return Err(err("{host} needs {port}")),
            (None, Some(_), None) => return Err(err("{port} needs {host}")),
            _ => return Err(err("give either {host} and {port}, or {serial_device}")),
        }
        if self.push == Push::Serial && self.serial_device.is_none() {
            return Err(err("{push} serial needs {serial_device}"));
        }
        if self.mode_e && self.serial_device.is_none() {
            return Err(err(
                "{mode_e} applies to serial meters ({serial_device}) only",
            ));
        }
        match (self.auth, &self.password) {
            (AuthKind::Low, None) => return Err(err("{auth} low needs a {password}")),
            (AuthKind::HighMd5 | AuthKind::HighSha1 | AuthKind::HighSha256, None) => {
                return Err(err(
                    "{auth} high-md5, high-sha1 and high-sha256 need the HLS secret as {password}",
                ))
            }
            (AuthKind::HighSha256, _) if self.system_title.is_none() => {
                return Err(err(
                    "{auth} high-sha256 needs our {system_title} (8 bytes; the meter hashes it \
                     into the proofs)",
                ))
            }
            (AuthKind::HighGmac, _) if self.security == Ciphering::None => {
                return Err(err(
                    "{auth} high-gmac needs {security} auth, enc or auth-enc and its keys",
                ))
            }
            _ => {}
        }
        if self.security == Ciphering::None {
            if self.dedicated_key || self.general_ciphering || self.frame_counter.is_some() {
                return Err(err(
                    "{dedicated_key}, {general_ciphering} and {frame_counter} need {security}",
                ));
            }
        } else if self.system_title.is_none()
            || self.encryption_key.is_none()
            || self.authentication_key.is_none()
        {
            return Err(err(
                "{security} needs {system_title}, {encryption_key} and {authentication_key}",
            ));
        }
        let mut keys = std::collections::HashSet::new();
        for m in &self.measurements {
            if !keys.insert(m.key.as_str()) {
                return Err(ConfigError::field(
                    "measurements",
                    format!("key {} appears twice", quoted(&m.key)),
                ));
            }
        }
        if self.measurements.is_empty() {
            return Err(ConfigError::field("measurements", "needs at least one"));
        }
        check_profiles(&self.profiles)
    }

    /// The TCP or serial endpoint as people write it.
    pub fn endpoint_text(&self) -> String {
        match (&self.host, self.port, &self.serial_device) {
            (Some(h), Some(p), _) => format!("{h}:{p}"),
            (_, _, Some(d)) => d.clone(),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_are_refused_with_a_reason() {
        let good = MeterConfig::tcp("M", "127.0.0.1", 1);
        assert_eq!(good.validate(), Ok(()));
        type Mutation = fn(&mut MeterConfig);
        let cases: &[(Mutation, &str)] = &[
            (
                |m| m.serial_device = Some("/dev/ttyUSB0".into()),
                "not both",
            ),
            (|m| m.port = None, "host needs port"),
            (|m| m.auth = AuthKind::Low, "needs a password"),
            (
                |m| m.password = Some(Secret("pw".into())),
                "password is given but auth is none: give auth low",
            ),
            (|m| m.auth = AuthKind::HighGmac, "high-gmac needs security"),
            (
                |m| m.auth = AuthKind::HighMd5,
                "need the HLS secret as password",
            ),
            (
                |m| {
                    m.auth = AuthKind::HighSha256;
                    m.password = Some(Secret("secret".into()));
                },
                "high-sha256 needs our system_title",
            ),
            (|m| m.security = Ciphering::Auth, "needs system_title"),
            (|m| m.dedicated_key = true, "need security"),
            (|m| m.mode_e = true, "serial meters"),
            (|m| m.measurements.clear(), "at least one"),
            (
                |m| m.measurements[1].key = "voltage_l1".into(),
                "appears twice",
            ),
        ];
        for (mutate, needle) in cases {
            let mut m = good.clone();
            mutate(&mut m);
            let err = m.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
            assert!(err.starts_with("meter \"M\": "), "{err}");
        }
    }

    #[test]
    fn a_password_without_low_authentication_is_refused_but_a_stored_one_still_polls() {
        let mut m = MeterConfig::tcp("M", "127.0.0.1", 1);
        m.password = Some(Secret("pw".into()));
        let e = m.validate().unwrap_err();
        assert_eq!(
            e.render(super::super::Naming::Flags),
            "meter \"M\": --password is given but --auth is none: give --auth low, or drop \
             the password (none clears it)"
        );
        assert!(m.combination().is_err(), "read and scan refuse it too");
        assert_eq!(
            m.usable(),
            Ok(()),
            "a meter stored before the check is still usable"
        );
        m.auth = AuthKind::Low;
        assert_eq!(m.validate(), Ok(()));
    }

    #[test]
    fn measurement_specs() {
        let m = Measurement::parse_spec("e=1-0:1.8.0*255:3:2").unwrap();
        assert_eq!(
            (m.key.as_str(), m.obis, m.class_id),
            ("e", Obis([1, 0, 1, 8, 0, 255]), 3)
        );
        let clock = Measurement::parse_spec("t=0-0:1.0.0:8:2").unwrap();
        assert_eq!(clock.class_id, 8);
        assert!(Measurement::parse_spec("v").is_err());
        assert!(Measurement::parse_spec("v=1.2.3").is_err());
        assert!(Measurement::parse_spec("v=1-0:32.7.0:3:0").is_err());
    }
}
