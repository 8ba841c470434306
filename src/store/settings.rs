//! Bridge-wide settings (MQTT broker, ThingsBoard mode and limits, outbox bounds), stored as
//! key/value rows and read into a typed [`BridgeSettings`] with defaults.

use super::{Result, Store, StoreError};
use rusqlite::params;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishMode {
    /// One MQTT session with the gateway token; meters are gateway devices.
    Gateway,
    /// One MQTT session per meter, with the meter's own access token.
    Device,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullPolicy {
    /// Delete the oldest readings to make room (the default: recent data matters most).
    DropOldest,
    /// Refuse new readings while full.
    DropNewest,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BridgeSettings {
    /// Publishing is off when empty: readings stay in the outbox.
    pub mqtt_host: String,
    pub mqtt_port: u16,
    pub client_id: String,
    /// MQTT over TLS (mqtts; brokers listen on 8883 for it).
    pub mqtt_tls: bool,
    /// PEM file of the CA(s) that signed the broker's certificate; empty: the system's CAs.
    pub mqtt_ca_file: String,
    /// PEM client certificate and private key (X.509 device authentication in ThingsBoard);
    /// both or neither.
    pub mqtt_client_cert: String,
    pub mqtt_client_key: String,
    pub mqtt_client_key_password: Option<String>,
    /// Check that the broker's certificate names `mqtt_host` (on unless a test lab says so).
    pub mqtt_verify_hostname: bool,
    pub mode: PublishMode,
    pub gateway_token: Option<String>,
    /// ThingsBoard's default maximum MQTT payload is 64 KiB.
    pub max_payload_bytes: usize,
    pub max_messages_per_second: u32,
    /// Readings per group commit, and the longest a reading waits for its commit.
    pub batch_max_readings: usize,
    pub commit_interval_ms: u64,
    pub outbox_max_rows: u64,
    pub outbox_max_age_s: u64,
    pub outbox_full_policy: FullPolicy,
    /// Write behind: readings the broker acknowledges within the commit interval are never
    /// written to disk (SD card wear); the rest are committed as usual.
    pub outbox_write_behind: bool,
    /// The longest wait between two connect attempts (the backoff doubles up to it).
    pub reconnect_max_s: u64,
    /// /healthz fails when the oldest unacknowledged reading is older than this.
    pub health_max_unsent_age_s: u64,
    pub status_interval_s: u64,
    /// Status page address; empty disables it.
    pub http_bind: String,
    /// Bearer token of the admin API; the API is refused entirely while unset.
    pub api_token: Option<String>,
}

impl Default for BridgeSettings {
    fn default() -> Self {
        BridgeSettings {
            mqtt_host: "127.0.0.1".into(),
            mqtt_port: 1883,
            client_id: "dlms-bridge".into(),
            mqtt_tls: false,
            mqtt_ca_file: String::new(),
            mqtt_client_cert: String::new(),
            mqtt_client_key: String::new(),
            mqtt_client_key_password: None,
            mqtt_verify_hostname: true,
            mode: PublishMode::Gateway,
            gateway_token: None,
            max_payload_bytes: 65_536,
            max_messages_per_second: 50,
            batch_max_readings: 500,
            commit_interval_ms: 200,
            outbox_max_rows: 1_000_000,
            outbox_max_age_s: 30 * 86_400,
            outbox_full_policy: FullPolicy::DropOldest,
            outbox_write_behind: true,
            reconnect_max_s: 30,
            health_max_unsent_age_s: 120,
            status_interval_s: 60,
            http_bind: "127.0.0.1:8080".into(),
            api_token: None,
        }
    }
}

/// Every key, its meaning, for `settings show` and errors.
pub const KEYS: &[(&str, &str)] = &[
    (
        "mqtt.host",
        "broker host (empty: do not publish, keep readings in the outbox)",
    ),
    ("mqtt.port", "broker port"),
    ("mqtt.client_id", "MQTT client id (gateway mode)"),
    (
        "mqtt.tls",
        "true: MQTT over TLS (set mqtt.port to the broker's TLS port, usually 8883)",
    ),
    (
        "mqtt.ca_file",
        "PEM file of the CA that signed the broker's certificate (empty: system CAs)",
    ),
    (
        "mqtt.client_cert",
        "PEM client certificate for X.509 authentication (with mqtt.client_key)",
    ),
    ("mqtt.client_key", "PEM private key of mqtt.client_cert"),
    (
        "mqtt.client_key_password",
        "password of an encrypted mqtt.client_key (secret)",
    ),
    (
        "mqtt.verify_hostname",
        "false: accept a trusted certificate for another host name (test labs only)",
    ),
    ("thingsboard.mode", "gateway or device"),
    (
        "thingsboard.gateway_token",
        "gateway device access token (secret)",
    ),
    ("thingsboard.max_payload_bytes", "largest MQTT payload"),
    ("thingsboard.max_messages_per_second", "publish rate limit"),
    ("outbox.batch_max_readings", "readings per group commit"),
    (
        "outbox.commit_interval_ms",
        "longest wait before a reading is committed",
    ),
    ("outbox.max_rows", "outbox bound in readings"),
    (
        "outbox.max_age_s",
        "readings older than this are dropped (counted and logged)",
    ),
    ("outbox.full_policy", "drop-oldest or drop-newest"),
    (
        "outbox.write_behind",
        "true (default): readings acknowledged within outbox.commit_interval_ms are not written to disk; false: every reading is committed before it is published",
    ),
    (
        "mqtt.reconnect_max_s",
        "longest wait between broker connect attempts in seconds (the wait doubles from 1 s up to it; default 30)",
    ),
    (
        "health.max_unsent_age_s",
        "/healthz answers 503 when the oldest reading not yet acknowledged by the broker is older than this (default 120)",
    ),
    (
        "log.status_interval_s",
        "seconds between per-meter status lines",
    ),
    (
        "http.bind",
        "address of the status page and API (ADDRESS:PORT; empty: no status page)",
    ),
    (
        "http.api_token",
        "bearer token of the meter API (secret, at least 16 characters; empty: API off)",
    ),
];

fn parse<T: std::str::FromStr>(key: &str, v: &str) -> Result<T> {
    v.trim()
        .parse()
        .map_err(|_| StoreError::Invalid(format!("setting {key}: invalid value {v:?}")))
}

fn boolean(key: &str, v: &str) -> Result<bool> {
    match v.trim() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(StoreError::Invalid(format!(
            "setting {key}: {v:?} is not true or false"
        ))),
    }
}

impl BridgeSettings {
    fn apply(&mut self, key: &str, v: &str) -> Result<()> {
        match key {
            "mqtt.host" => self.mqtt_host = v.trim().to_string(),
            "mqtt.port" => self.mqtt_port = parse(key, v)?,
            "mqtt.client_id" => self.client_id = v.to_string(),
            "mqtt.tls" => self.mqtt_tls = boolean(key, v)?,
            "mqtt.ca_file" => self.mqtt_ca_file = v.trim().to_string(),
            "mqtt.client_cert" => self.mqtt_client_cert = v.trim().to_string(),
            "mqtt.client_key" => self.mqtt_client_key = v.trim().to_string(),
            "mqtt.client_key_password" => {
                self.mqtt_client_key_password = Some(v.to_string()).filter(|p| !p.is_empty())
            }
            "mqtt.verify_hostname" => self.mqtt_verify_hostname = boolean(key, v)?,
            "thingsboard.mode" => {
                self.mode = match v {
                    "gateway" => PublishMode::Gateway,
                    "device" => PublishMode::Device,
                    _ => {
                        return Err(StoreError::Invalid(format!(
                            "{key}: {v:?} is not gateway or device"
                        )))
                    }
                }
            }
            "thingsboard.gateway_token" => {
                self.gateway_token = Some(v.to_string()).filter(|t| !t.is_empty())
            }
            "thingsboard.max_payload_bytes" => self.max_payload_bytes = parse(key, v)?,
            "thingsboard.max_messages_per_second" => self.max_messages_per_second = parse(key, v)?,
            "outbox.batch_max_readings" => self.batch_max_readings = parse(key, v)?,
            "outbox.commit_interval_ms" => self.commit_interval_ms = parse(key, v)?,
            "outbox.max_rows" => self.outbox_max_rows = parse(key, v)?,
            "outbox.max_age_s" => self.outbox_max_age_s = parse(key, v)?,
            "outbox.full_policy" => {
                self.outbox_full_policy = match v {
                    "drop-oldest" => FullPolicy::DropOldest,
                    "drop-newest" => FullPolicy::DropNewest,
                    _ => {
                        return Err(StoreError::Invalid(format!(
                            "{key}: {v:?} is not drop-oldest or drop-newest"
                        )))
                    }
                }
            }
            "outbox.write_behind" => self.outbox_write_behind = boolean(key, v)?,
            "mqtt.reconnect_max_s" => self.reconnect_max_s = parse(key, v)?,
            "health.max_unsent_age_s" => self.health_max_unsent_age_s = parse(key, v)?,
            "log.status_interval_s" => self.status_interval_s = parse(key, v)?,
            "http.bind" => {
                let v = v.trim();
                if !v.is_empty() && v.parse::<std::net::SocketAddr>().is_err() {
                    return Err(StoreError::Invalid(format!(
                        "{key}: {v:?} is not ADDRESS:PORT (e.g. 127.0.0.1:8080)"
                    )));
                }
                self.http_bind = v.to_string();
            }
            "http.api_token" => {
                if !v.is_empty() && v.len() < 16 {
                    return Err(StoreError::Invalid(format!(
                        "{key}: use at least 16 characters"
                    )));
                }
                self.api_token = Some(v.to_string()).filter(|t| !t.is_empty());
            }
            _ => {
                let known: Vec<&str> = KEYS.iter().map(|k| k.0).collect();
                return Err(StoreError::Invalid(format!(
                    "unknown setting {key:?}; known: {}",
                    known.join(", ")
                )));
            }
        }
        self.check()
    }

    fn check(&self) -> Result<()> {
        let bad = |m: &str| Err(StoreError::Invalid(m.to_string()));
        if self.max_payload_bytes < 1024 {
            return bad("thingsboard.max_payload_bytes must be at least 1024");
        }
        if self.max_messages_per_second == 0 || self.batch_max_readings == 0 {
            return bad("rates and batch sizes must be positive");
        }
        if self.commit_interval_ms == 0 || self.commit_interval_ms > 60_000 {
            return bad("outbox.commit_interval_ms must be 1..60000");
        }
        if self.mqtt_port == 0 {
            return bad("mqtt.port must be 1..65535");
        }
        if !(1..=3600).contains(&self.reconnect_max_s) {
            return bad("mqtt.reconnect_max_s must be 1..3600");
        }
        if self.health_max_unsent_age_s == 0 {
            return bad("health.max_unsent_age_s must be positive");
        }
        if self.outbox_max_rows == 0 || self.outbox_max_age_s == 0 || self.status_interval_s == 0 {
            return bad("outbox bounds and the status interval must be positive");
        }
        Ok(())
    }

    /// (key, value) for display; secrets masked.
    pub fn shown(&self) -> Vec<(&'static str, String)> {
        vec![
            ("mqtt.host", self.mqtt_host.clone()),
            ("mqtt.port", self.mqtt_port.to_string()),
            ("mqtt.client_id", self.client_id.clone()),
            ("mqtt.tls", self.mqtt_tls.to_string()),
            ("mqtt.ca_file", self.mqtt_ca_file.clone()),
            ("mqtt.client_cert", self.mqtt_client_cert.clone()),
            ("mqtt.client_key", self.mqtt_client_key.clone()),
            (
                "mqtt.client_key_password",
                if self.mqtt_client_key_password.is_some() {
                    "(set)"
                } else {
                    "(not set)"
                }
                .into(),
            ),
            (
                "mqtt.verify_hostname",
                self.mqtt_verify_hostname.to_string(),
            ),
            (
                "thingsboard.mode",
                if self.mode == PublishMode::Gateway {
                    "gateway"
                } else {
                    "device"
                }
                .into(),
            ),
            (
                "thingsboard.gateway_token",
                if self.gateway_token.is_some() {
                    "(set)"
                } else {
                    "(not set)"
                }
                .into(),
            ),
            (
                "thingsboard.max_payload_bytes",
                self.max_payload_bytes.to_string(),
            ),
            (
                "thingsboard.max_messages_per_second",
                self.max_messages_per_second.to_string(),
            ),
            (
                "outbox.batch_max_readings",
                self.batch_max_readings.to_string(),
            ),
            (
                "outbox.commit_interval_ms",
                self.commit_interval_ms.to_string(),
            ),
            ("outbox.max_rows", self.outbox_max_rows.to_string()),
            ("outbox.max_age_s", self.outbox_max_age_s.to_string()),
            (
                "outbox.full_policy",
                if self.outbox_full_policy == FullPolicy::DropOldest {
                    "drop-oldest"
                } else {
                    "drop-newest"
                }
                .into(),
            ),
            ("outbox.write_behind", self.outbox_write_behind.to_string()),
            ("mqtt.reconnect_max_s", self.reconnect_max_s.to_string()),
            (
                "health.max_unsent_age_s",
                self.health_max_unsent_age_s.to_string(),
            ),
            ("log.status_interval_s", self.status_interval_s.to_string()),
            ("http.bind", self.http_bind.clone()),
            (
                "http.api_token",
                if self.api_token.is_some() {
                    "(set)"
                } else {
                    "(not set)"
                }
                .into(),
            ),
        ]
    }
}

impl Store {
    pub fn settings(&self) -> Result<BridgeSettings> {
        let mut s = BridgeSettings::default();
        let mut stmt = self.conn.prepare("SELECT key, value FROM settings")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (k, v) = row?;
            s.apply(&k, &v)?;
        }
        Ok(s)
    }

    /// Sets one setting after checking it; an invalid value changes nothing.
    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<()> {
        let mut s = self.settings()?;
        s.apply(key, value)?;
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;

    #[test]
    fn defaults_set_and_refuse() {
        let (mut store, _d) = temp_store("settings");
        assert_eq!(store.settings().unwrap(), BridgeSettings::default());
        store.set_setting("mqtt.port", "18830").unwrap();
        store.set_setting("thingsboard.mode", "device").unwrap();
        store
            .set_setting("thingsboard.gateway_token", "SECRET")
            .unwrap();
        let s = store.settings().unwrap();
        assert_eq!((s.mqtt_port, s.mode), (18830, PublishMode::Device));
        assert!(!format!("{:?}", s.shown()).contains("SECRET"));
        assert!(store.set_setting("mqtt.port", "99999").is_err());
        assert!(store.set_setting("thingsboard.mode", "both").is_err());
        assert!(store.set_setting("outbox.max_rows", "0").is_err());
        let e = store.set_setting("mqtt.hots", "x").unwrap_err().to_string();
        assert!(
            e.contains("unknown setting") && e.contains("mqtt.host"),
            "{e}"
        );
        assert_eq!(
            store.settings().unwrap().mqtt_port,
            18830,
            "failed sets change nothing"
        );
    }
}
