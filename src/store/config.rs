//! Meter configuration: what to read from which meter, how, and how often. Validated before it
//! is stored: bad input gets one clear error and changes nothing.

use super::{Result, Store, StoreError};
use crate::client::reads::Target;
use crate::client::{ConnectionOptions, Endpoint, Framing, MeterTarget, SerialSettings};
use crate::cosem::Obis;
use crate::dlms::hdlc::ServerAddress;
use crate::dlms::security::{Keys, Protection};
use crate::dlms::session::{Authentication, Security, SessionConfig};
use rusqlite::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One telemetry key and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measurement {
    pub key: String,
    pub obis: String,
    #[serde(default = "default_class")]
    pub class_id: u16,
    #[serde(default = "default_attribute")]
    pub attribute: i8,
}

fn default_class() -> u16 {
    3
}
fn default_attribute() -> i8 {
    2
}

impl Measurement {
    pub fn target(&self) -> Result<Target> {
        let obis: Obis = self
            .obis
            .parse()
            .map_err(|e| StoreError::Invalid(format!("measurement {}: {e}", self.key)))?;
        Ok(Target::new(self.class_id, obis, self.attribute))
    }
}

/// The measurements a new meter gets when none are given: the usual 3-phase set.
pub fn default_measurements() -> Vec<Measurement> {
    [
        ("voltage_l1", "1-0:32.7.0*255"),
        ("voltage_l2", "1-0:52.7.0*255"),
        ("voltage_l3", "1-0:72.7.0*255"),
        ("current_l1", "1-0:31.7.0*255"),
        ("current_l2", "1-0:51.7.0*255"),
        ("current_l3", "1-0:71.7.0*255"),
        ("active_power", "1-0:1.7.0*255"),
        ("frequency", "1-0:14.7.0*255"),
        ("active_energy_import", "1-0:1.8.0*255"),
        ("power_factor", "1-0:13.7.0*255"),
    ]
    .into_iter()
    .map(|(key, obis)| Measurement {
        key: key.into(),
        obis: obis.into(),
        class_id: 3,
        attribute: 2,
    })
    .collect()
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// "hdlc" or "wrapper".
    #[serde(default = "default_transport")]
    pub transport: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub serial_device: Option<String>,
    #[serde(default = "default_baud")]
    pub baud: u32,
    #[serde(default)]
    pub mode_e: bool,
    #[serde(default = "default_client")]
    pub client_address: u8,
    #[serde(default = "one")]
    pub server_logical: u16,
    #[serde(default)]
    pub server_physical: Option<u16>,
    /// "none", "low" (LLS password) or "high-gmac" (HLS-GMAC; needs `security`).
    #[serde(default = "default_auth")]
    pub auth: String,
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
    /// Suite-0 ciphering: "none", "auth", "enc" or "auth-enc".
    #[serde(default = "default_security")]
    pub security: String,
    /// Our (the client's) system title: 8 bytes as 16 hex digits.
    #[serde(default)]
    pub system_title: Option<String>,
    /// Global unicast encryption key (block cipher key), 32 hex digits. Never exported.
    #[serde(default, skip_serializing)]
    pub encryption_key: Option<String>,
    /// Authentication key, 32 hex digits. Never exported.
    #[serde(default, skip_serializing)]
    pub authentication_key: Option<String>,
    /// Send a fresh random dedicated key with every association (ded- ciphering).
    #[serde(default)]
    pub dedicated_key: bool,
    /// General-glo/ded ciphering when the meter grants general-protection.
    #[serde(default)]
    pub general_ciphering: bool,
    /// The meter's frame counter object (e.g. "0.0.43.1.0.255"): read over the public client
    /// before each association so that our invocation counter starts above it.
    #[serde(default)]
    pub frame_counter: Option<String>,
    #[serde(default = "default_timeout")]
    pub connect_timeout_ms: u32,
    #[serde(default = "default_timeout")]
    pub response_timeout_ms: u32,
    #[serde(default = "default_timeout")]
    pub inter_frame_timeout_ms: u32,
    #[serde(default = "default_interval")]
    pub interval_s: u32,
    /// The meter drops an idle association after this long; the worker reads within it.
    #[serde(default = "default_inactivity")]
    pub inactivity_timeout_s: u32,
    #[serde(default = "default_device_type")]
    pub device_type: String,
    /// ThingsBoard device token (device mode only).
    #[serde(default, skip_serializing)]
    pub access_token: Option<String>,
    #[serde(default = "default_measurements")]
    pub measurements: Vec<Measurement>,
}

/// Shows what an export shows: never a password, token or key (a `{:?}` may reach a log).
impl std::fmt::Debug for MeterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = serde_json::to_string(self).unwrap_or_default();
        write!(f, "MeterConfig{shown}")
    }
}

fn yes() -> bool {
    true
}
fn one() -> u16 {
    1
}
fn default_transport() -> String {
    "hdlc".into()
}
fn default_baud() -> u32 {
    9600
}
fn default_client() -> u8 {
    16
}
fn default_auth() -> String {
    "none".into()
}
fn default_security() -> String {
    "none".into()
}
fn default_timeout() -> u32 {
    5000
}
fn default_interval() -> u32 {
    60
}
fn default_inactivity() -> u32 {
    120
}
fn default_device_type() -> String {
    "electricity-meter".into()
}

impl MeterConfig {
    /// A meter with every default, reached over TCP.
    pub fn tcp(name: &str, host: &str, port: u16) -> MeterConfig {
        let mut m: MeterConfig = serde_json::from_value(serde_json::json!({"name": name}))
            .unwrap_or_else(|_| unreachable!());
        m.host = Some(host.into());
        m.port = Some(port);
        m
    }

    /// Every rule a stored meter obeys.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(StoreError::Invalid(format!("meter {:?}: {m}", self.name)));
        if self.name.trim().is_empty() || self.name.len() > 128 {
            return Err(StoreError::Invalid(
                "meter name must be 1 to 128 characters".into(),
            ));
        }
        if !matches!(self.transport.as_str(), "hdlc" | "wrapper") {
            return bad(format!(
                "transport {:?} is not hdlc or wrapper",
                self.transport
            ));
        }
        match (&self.host, self.port, &self.serial_device) {
            (Some(h), Some(p), None) if !h.trim().is_empty() && p > 0 => {}
            (None, None, Some(d)) if !d.trim().is_empty() => {
                if self.transport == "wrapper" {
                    return bad("the wrapper is for TCP; serial lines use hdlc".into());
                }
            }
            _ => return bad("give either host and port, or serial_device".into()),
        }
        if self.mode_e && self.serial_device.is_none() {
            return bad("mode_e applies to serial meters only".into());
        }
        if self.client_address > 0x7F {
            return bad("client_address must be 0..127".into());
        }
        if ServerAddress::new(self.server_logical, self.server_physical)
            .encode()
            .is_none()
        {
            return bad("server_logical/server_physical must be below 16384".into());
        }
        match (self.auth.as_str(), &self.password) {
            ("none", _) => {}
            ("low", Some(p)) if !p.is_empty() => {}
            ("low", _) => return bad("auth low needs a password".into()),
            ("high-gmac", _) if self.security != "none" => {}
            ("high-gmac", _) => {
                return bad("auth high-gmac needs security auth, enc or auth-enc and keys".into())
            }
            (other, _) => return bad(format!("auth {other:?} is not none, low or high-gmac")),
        }
        if let Err(m) = self.dlms_security() {
            return bad(m);
        }
        for (what, v) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("response_timeout_ms", self.response_timeout_ms),
            ("inter_frame_timeout_ms", self.inter_frame_timeout_ms),
        ] {
            if !(10..=600_000).contains(&v) {
                return bad(format!("{what} must be 10..600000"));
            }
        }
        if !(1..=86_400).contains(&self.interval_s) {
            return bad("interval_s must be 1..86400".into());
        }
        if self.inactivity_timeout_s == 0 {
            return bad("inactivity_timeout_s must be positive".into());
        }
        if self.measurements.is_empty() {
            return bad("needs at least one measurement".into());
        }
        let mut keys = std::collections::HashSet::new();
        for m in &self.measurements {
            if m.key.trim().is_empty() || !keys.insert(m.key.as_str()) {
                return bad(format!("measurement key {:?} is empty or repeated", m.key));
            }
            m.target()?;
        }
        Ok(())
    }

    /// How to reach and read this meter.
    pub fn target(&self) -> Result<MeterTarget> {
        self.validate()?;
        let endpoint = match (&self.host, self.port, &self.serial_device) {
            (Some(host), Some(port), _) => Endpoint::Tcp {
                host: host.clone(),
                port,
            },
            (_, _, Some(dev)) => Endpoint::Serial {
                settings: SerialSettings::hdlc(dev, self.baud),
                mode_e: self.mode_e,
            },
            _ => return Err(StoreError::Invalid("no endpoint".into())),
        };
        let framing = if self.transport == "wrapper" {
            Framing::Wrapper {
                client: u16::from(self.client_address),
                server: self.server_logical,
            }
        } else {
            Framing::Hdlc {
                client: self.client_address,
                server: ServerAddress::new(self.server_logical, self.server_physical),
            }
        };
        let authentication = match &self.password {
            Some(p) if self.auth == "low" => Authentication::Low(p.clone().into_bytes()),
            // The worker draws a fresh challenge for every association.
            _ if self.auth == "high-gmac" => Authentication::HighGmac {
                challenge: Vec::new(),
            },
            _ => Authentication::None,
        };
        Ok(MeterTarget {
            endpoint,
            framing,
            session: SessionConfig {
                authentication,
                security: self.dlms_security().map_err(StoreError::Invalid)?,
                ..SessionConfig::default()
            },
            options: ConnectionOptions {
                response_timeout: Duration::from_millis(u64::from(self.response_timeout_ms)),
                inter_frame_timeout: Duration::from_millis(u64::from(self.inter_frame_timeout_ms)),
                ..ConnectionOptions::default()
            },
            connect_timeout: Duration::from_millis(u64::from(self.connect_timeout_ms)),
        })
    }

    /// Suite-0 settings (keys, title, protection) with the counter at 0: the worker sets the
    /// counter from its reservation, and a fresh dedicated key per association.
    fn dlms_security(&self) -> std::result::Result<Option<Security>, String> {
        let policy = Protection::from_policy(&self.security).ok_or_else(|| {
            format!(
                "security {:?} is not none, auth, enc or auth-enc",
                self.security
            )
        })?;
        let Some(protection) = policy else {
            if self.dedicated_key || self.general_ciphering || self.frame_counter.is_some() {
                return Err(
                    "dedicated_key, general_ciphering and frame_counter need security".into(),
                );
            }
            return Ok(None);
        };
        let title = self
            .system_title
            .as_deref()
            .and_then(crate::hex::array::<8>)
            .ok_or("security needs system_title: 8 bytes as 16 hex digits")?;
        let key = |k: &Option<String>, what: &str| {
            k.as_deref()
                .and_then(crate::hex::array::<16>)
                .ok_or(format!("security needs {what}: 16 bytes as 32 hex digits"))
        };
        let keys = Keys {
            block_cipher: key(&self.encryption_key, "encryption_key")?,
            authentication: key(&self.authentication_key, "authentication_key")?,
        };
        if let Some(fc) = &self.frame_counter {
            fc.parse::<Obis>()
                .map_err(|e| format!("frame_counter: {e}"))?;
        }
        let mut sec = Security::new(keys, title, protection, 0);
        sec.general_ciphering = self.general_ciphering;
        Ok(Some(sec))
    }

    /// The frame counter object to read before associating, if configured.
    pub fn frame_counter_obis(&self) -> Option<Obis> {
        self.frame_counter.as_deref().and_then(|s| s.parse().ok())
    }

    pub fn targets(&self) -> Result<Vec<Target>> {
        self.measurements.iter().map(Measurement::target).collect()
    }

    /// Secrets left `None` keep their stored value: exports carry none, so an exported and
    /// edited meter (or a re-import) does not lose its password, token or keys.
    fn keep_secrets_of(&mut self, stored: &MeterConfig) {
        let keep = |new: &mut Option<String>, old: &Option<String>| {
            if new.is_none() {
                new.clone_from(old);
            }
        };
        keep(&mut self.password, &stored.password);
        keep(&mut self.access_token, &stored.access_token);
        keep(&mut self.encryption_key, &stored.encryption_key);
        keep(&mut self.authentication_key, &stored.authentication_key);
    }

    fn from_row(row: &Row<'_>) -> rusqlite::Result<MeterConfig> {
        Ok(MeterConfig {
            id: Some(row.get("id")?),
            name: row.get("name")?,
            enabled: row.get("enabled")?,
            transport: row.get("transport")?,
            host: row.get("host")?,
            port: row.get("port")?,
            serial_device: row.get("serial_device")?,
            baud: row.get("baud")?,
            mode_e: row.get("mode_e")?,
            client_address: row.get("client_address")?,
            server_logical: row.get("server_logical")?,
            server_physical: row.get("server_physical")?,
            auth: row.get("auth")?,
            password: row.get("password")?,
            connect_timeout_ms: row.get("connect_timeout_ms")?,
            response_timeout_ms: row.get("response_timeout_ms")?,
            inter_frame_timeout_ms: row.get("inter_frame_timeout_ms")?,
            interval_s: row.get("interval_s")?,
            inactivity_timeout_s: row.get("inactivity_timeout_s")?,
            device_type: row.get("device_type")?,
            access_token: row.get("access_token")?,
            security: row.get("security")?,
            system_title: row.get("system_title")?,
            encryption_key: row.get("encryption_key")?,
            authentication_key: row.get("authentication_key")?,
            dedicated_key: row.get("dedicated_key")?,
            general_ciphering: row.get("general_ciphering")?,
            frame_counter: row.get("frame_counter")?,
            measurements: Vec::new(),
        })
    }
}

impl Store {
    /// Every meter with its measurements, by name.
    pub fn meters(&self) -> Result<Vec<MeterConfig>> {
        let mut stmt = self.conn.prepare("SELECT * FROM meters ORDER BY name")?;
        let mut meters = stmt
            .query_map([], MeterConfig::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for m in &mut meters {
            m.measurements = self.measurements(m.id.unwrap_or_default())?;
        }
        Ok(meters)
    }

    fn measurements(&self, meter_id: i64) -> Result<Vec<Measurement>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, obis, class_id, attribute FROM measurements WHERE meter_id = ?1 ORDER BY rowid")?;
        let rows = stmt.query_map([meter_id], |r| {
            Ok(Measurement {
                key: r.get(0)?,
                obis: r.get(1)?,
                class_id: r.get(2)?,
                attribute: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// A meter by name or numeric id.
    pub fn meter(&self, name_or_id: &str) -> Result<MeterConfig> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM meters WHERE name = ?1 OR CAST(id AS TEXT) = ?1",
                [name_or_id],
                |r| r.get(0),
            )
            .optional()?;
        let id = id.ok_or_else(|| StoreError::NotFound(format!("meter {name_or_id:?}")))?;
        let mut m = self.conn.query_row(
            "SELECT * FROM meters WHERE id = ?1",
            [id],
            MeterConfig::from_row,
        )?;
        m.measurements = self.measurements(id)?;
        Ok(m)
    }

    /// Adds a meter; returns its id.
    pub fn add_meter(&mut self, m: &MeterConfig) -> Result<i64> {
        m.validate()?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let id = insert_meter(&tx, m)?;
        tx.commit()?;
        Ok(id)
    }

    /// Replaces a meter's configuration (found by `m.id` or else by name). Secrets left `None`
    /// keep their stored value, so an exported-then-edited meter does not lose its password.
    pub fn update_meter(&mut self, m: &MeterConfig) -> Result<()> {
        let existing = match m.id {
            Some(id) => self.meter(&id.to_string())?,
            None => self.meter(&m.name)?,
        };
        let mut m = m.clone();
        m.id = existing.id;
        m.keep_secrets_of(&existing);
        m.validate()?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM measurements WHERE meter_id = ?1", [m.id])?;
        write_meter(&tx, &m, m.id)?;
        tx.commit()?;
        Ok(())
    }

    pub fn remove_meter(&mut self, name_or_id: &str) -> Result<()> {
        let m = self.meter(name_or_id)?;
        self.conn
            .execute("DELETE FROM meters WHERE id = ?1", [m.id])?;
        Ok(())
    }

    /// Imports meters from JSON (an array of meter objects): all or nothing. Existing names
    /// are updated, new ones added.
    pub fn import_meters(&mut self, json: &str) -> Result<usize> {
        let mut meters: Vec<MeterConfig> =
            serde_json::from_str(json).map_err(|e| StoreError::Invalid(format!("import: {e}")))?;
        let existing: std::collections::HashMap<String, MeterConfig> = self
            .meters()?
            .into_iter()
            .map(|m| (m.name.clone(), m))
            .collect();
        let mut names = std::collections::HashSet::new();
        for m in &mut meters {
            // Exports carry no secrets: an import of one keeps the stored password and token.
            if let Some(old) = existing.get(&m.name) {
                m.id = old.id;
                m.keep_secrets_of(old);
            } else {
                m.id = None;
            }
            m.validate()?;
            if !names.insert(m.name.clone()) {
                return Err(StoreError::Invalid(format!(
                    "import: meter {:?} appears twice",
                    m.name
                )));
            }
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for m in &meters {
            match m.id {
                Some(id) => {
                    tx.execute("DELETE FROM measurements WHERE meter_id = ?1", [id])?;
                    write_meter(&tx, m, Some(id))?;
                }
                None => {
                    insert_meter(&tx, m)?;
                }
            }
        }
        tx.commit()?;
        Ok(meters.len())
    }

    /// Every meter as JSON, without secrets (passwords and tokens are never exported).
    pub fn export_meters(&self) -> Result<String> {
        let meters: Vec<MeterConfig> = self
            .meters()?
            .into_iter()
            .map(|mut m| {
                m.id = None;
                m
            })
            .collect();
        serde_json::to_string_pretty(&meters).map_err(|e| StoreError::Invalid(e.to_string()))
    }

    /// Changes whenever meters, measurements or settings change (maintained by triggers).
    pub fn config_revision(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT revision FROM config_revision", [], |r| r.get(0))?)
    }
}

fn insert_meter(tx: &rusqlite::Transaction<'_>, m: &MeterConfig) -> Result<i64> {
    let taken: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM meters WHERE name = ?1)",
        [&m.name],
        |r| r.get(0),
    )?;
    if taken {
        return Err(StoreError::Invalid(format!(
            "a meter named {:?} exists already",
            m.name
        )));
    }
    write_meter(tx, m, None)
}

fn write_meter(tx: &rusqlite::Transaction<'_>, m: &MeterConfig, id: Option<i64>) -> Result<i64> {
    tx.execute(
        "INSERT OR REPLACE INTO meters (id, name, enabled, transport, host, port, serial_device, baud, mode_e,
            client_address, server_logical, server_physical, auth, password, connect_timeout_ms,
            response_timeout_ms, inter_frame_timeout_ms, interval_s, inactivity_timeout_s, device_type, access_token,
            security, system_title, encryption_key, authentication_key, dedicated_key, general_ciphering, frame_counter)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21,
            ?22, ?23, ?24, ?25, ?26, ?27, ?28)",
        params![
            id,
            m.name,
            m.enabled,
            m.transport,
            m.host,
            m.port,
            m.serial_device,
            m.baud,
            m.mode_e,
            m.client_address,
            m.server_logical,
            m.server_physical,
            m.auth,
            m.password,
            m.connect_timeout_ms,
            m.response_timeout_ms,
            m.inter_frame_timeout_ms,
            m.interval_s,
            m.inactivity_timeout_s,
            m.device_type,
            m.access_token,
            m.security,
            m.system_title,
            m.encryption_key,
            m.authentication_key,
            m.dedicated_key,
            m.general_ciphering,
            m.frame_counter
        ],
    )?;
    let id = tx.last_insert_rowid();
    for meas in &m.measurements {
        tx.execute(
            "INSERT INTO measurements (meter_id, key, obis, class_id, attribute) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, meas.key, meas.obis, meas.class_id, meas.attribute],
        )?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;

    #[test]
    fn add_list_edit_remove() {
        let (mut store, _d) = temp_store("cfg");
        let r0 = store.config_revision().unwrap();
        let mut m = MeterConfig::tcp("Meter A", "127.0.0.1", 4061);
        m.auth = "low".into();
        m.password = Some("secret".into());
        let id = store.add_meter(&m).unwrap();
        assert!(store.config_revision().unwrap() > r0);
        let got = store.meter("Meter A").unwrap();
        assert_eq!(got.id, Some(id));
        assert_eq!(got.measurements, default_measurements());
        assert_eq!(store.meter(&id.to_string()).unwrap().name, "Meter A");
        // Duplicate names are refused and change nothing.
        assert!(matches!(store.add_meter(&m), Err(StoreError::Invalid(_))));
        assert_eq!(store.meters().unwrap().len(), 1);
        // Edit without the password keeps it.
        let mut edited = got.clone();
        edited.password = None;
        edited.interval_s = 5;
        store.update_meter(&edited).unwrap();
        let got = store.meter("Meter A").unwrap();
        assert_eq!(
            (got.interval_s, got.password.as_deref()),
            (5, Some("secret"))
        );
        store.remove_meter("Meter A").unwrap();
        assert!(matches!(
            store.meter("Meter A"),
            Err(StoreError::NotFound(_))
        ));
        let n: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM measurements", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "measurements go with their meter");
    }

    #[test]
    fn invalid_configurations_are_refused_with_a_reason() {
        let good = MeterConfig::tcp("M", "127.0.0.1", 1);
        type Mutation = Box<dyn Fn(&mut MeterConfig)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|m| m.name = " ".into()), "name"),
            (Box::new(|m| m.transport = "modbus".into()), "transport"),
            (
                Box::new(|m| m.serial_device = Some("/dev/ttyUSB0".into())),
                "either host",
            ),
            (Box::new(|m| m.auth = "low".into()), "password"),
            (Box::new(|m| m.interval_s = 0), "interval_s"),
            (Box::new(|m| m.measurements.clear()), "measurement"),
            (
                Box::new(|m| m.measurements[1].key = "voltage_l1".into()),
                "repeated",
            ),
            (
                Box::new(|m| m.measurements[0].obis = "1.2.3".into()),
                "OBIS",
            ),
            (
                Box::new(|m| m.server_physical = Some(20_000)),
                "below 16384",
            ),
        ];
        for (mutate, needle) in cases {
            let mut m = good.clone();
            mutate(&mut m);
            let err = m.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
        assert!(good.validate().is_ok());
    }

    #[test]
    fn import_is_all_or_nothing_and_export_hides_secrets() {
        let (mut store, _d) = temp_store("import");
        let json = r#"[
            {"name": "A", "host": "127.0.0.1", "port": 4061, "auth": "low", "password": "pw", "access_token": "tok"},
            {"name": "B", "serial_device": "/dev/ttyUSB0", "mode_e": true, "interval_s": 15,
             "measurements": [{"key": "v1", "obis": "1-0:32.7.0*255"}]}
        ]"#;
        assert_eq!(store.import_meters(json).unwrap(), 2);
        let bad = r#"[{"name": "C", "host": "127.0.0.1", "port": 1}, {"name": "D", "port": 2}]"#;
        assert!(store.import_meters(bad).is_err());
        assert!(
            matches!(store.meter("C"), Err(StoreError::NotFound(_))),
            "nothing of a bad import is kept"
        );
        assert!(store
            .import_meters(r#"[{"name": "E", "host": "h", "port": 1, "colour": "red"}]"#)
            .is_err());
        let out = store.export_meters().unwrap();
        assert!(!out.contains("pw") && !out.contains("tok"), "{out}");
        // Re-importing the export keeps the secrets.
        store.import_meters(&out).unwrap();
        assert_eq!(store.meter("A").unwrap().password.as_deref(), Some("pw"));
        assert_eq!(store.meter("B").unwrap().measurements.len(), 1);
    }
}
