//! Settings in the database: key/value rows read into [`BridgeSettings`] through the one
//! table of settings (`config::settings`).

use super::{Result, Store, StoreError};
use crate::config::settings::BridgeSettings;
use log::warn;
use rusqlite::params;

impl Store {
    /// The settings; a stored value this version refuses is logged and left at its default
    /// (it must not keep the bridge from starting).
    pub fn settings(&self) -> Result<BridgeSettings> {
        let mut s = BridgeSettings::default();
        let mut stmt = self.conn.prepare("SELECT key, value FROM settings")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (k, v) = row?;
            if let Err(e) = s.apply(&k, &v) {
                warn!("stored setting ignored: {e}");
            }
        }
        Ok(s)
    }

    /// Whether `key` is stored (not just defaulted).
    pub fn has_setting(&self, key: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM settings WHERE key = ?1)",
            [key],
            |r| r.get(0),
        )?)
    }

    /// Sets one setting after checking it; an invalid value changes nothing.
    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<()> {
        let mut s = self.settings()?;
        s.apply(key, value).map_err(StoreError::Invalid)?;
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
    use crate::config::settings::PublishMode;
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
        assert_eq!((s.broker.port, s.broker.mode), (18830, PublishMode::Device));
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
            store.settings().unwrap().broker.port,
            18830,
            "failed sets change nothing"
        );
    }
}
