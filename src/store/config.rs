//! Meters in the database: one column per field of the configuration model, written and
//! read through the field table (`config::fields`), so a new field needs no code here: its
//! column is added when the database is opened. Values are validated before they are stored;
//! bad input gets one clear error and changes nothing.

use super::{Result, Store, StoreError};
use crate::config::fields::{Kind, FIELDS};
use crate::config::json::from_json;
use crate::config::{Measurement, MeterConfig, ProfileSpec};
use log::warn;
use rusqlite::types::Value as Sql;
use rusqlite::{params_from_iter, OptionalExtension, Row};
use std::collections::{HashMap, HashSet};

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Imported {
    pub added: usize,
    pub replaced: usize,
}

/// Adds a column for every field the meters table lacks (NULL in existing rows: the field's
/// default, or none for an optional field).
pub(super) fn add_missing_columns(conn: &rusqlite::Connection) -> Result<()> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('meters')")?;
    let have: HashSet<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for f in FIELDS.iter().filter(|f| !have.contains(f.name)) {
        let ty = if f.kind == Kind::Text {
            "TEXT"
        } else {
            "INTEGER"
        };
        conn.execute_batch(&format!("ALTER TABLE meters ADD COLUMN {} {ty}", f.name))?;
    }
    Ok(())
}

fn sql_value(kind: Kind, text: Option<String>) -> Sql {
    match (kind, text) {
        (_, None) => Sql::Null,
        (Kind::Bool, Some(t)) => Sql::Integer(i64::from(t == "true")),
        (Kind::Int, Some(t)) => t.parse().map_or(Sql::Text(t), Sql::Integer),
        (Kind::Text, Some(t)) => Sql::Text(t),
    }
}

/// A stored meter. A value this version does not accept (stored by an older one) is logged
/// and replaced by the default rather than hiding the meter.
fn from_row(row: &Row<'_>) -> rusqlite::Result<MeterConfig> {
    let mut m = MeterConfig {
        id: Some(row.get("id")?),
        ..MeterConfig::default()
    };
    let name: String = row.get("name")?;
    for f in FIELDS {
        let text = match row.get::<_, Sql>(f.name)? {
            Sql::Null if !f.optional => continue,
            Sql::Null => None,
            Sql::Integer(i) => Some(i.to_string()),
            Sql::Real(r) => Some(r.to_string()),
            Sql::Text(t) => Some(t),
            Sql::Blob(_) => continue,
        };
        if let Err(e) = f.apply(&mut m, text.as_deref()) {
            warn!("meter {name:?}: stored {e}; using the default");
        }
    }
    Ok(m)
}

impl Store {
    /// Every meter with its measurements, by name.
    pub fn meters(&self) -> Result<Vec<MeterConfig>> {
        let mut stmt = self.conn.prepare("SELECT * FROM meters ORDER BY name")?;
        let mut meters = stmt
            .query_map([], from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for m in &mut meters {
            m.measurements = self.measurements(m.id.unwrap_or_default())?;
            m.profiles = self.profiles(m.id.unwrap_or_default())?;
        }
        Ok(meters)
    }

    fn profiles(&self, meter_id: i64) -> Result<Vec<ProfileSpec>> {
        let mut stmt = self.conn.prepare(
            "SELECT obis, every_s, keys FROM profiles WHERE meter_id = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map([meter_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (obis, every_s, keys) = row?;
            let keys: Vec<(String, String)> = serde_json::from_str(&keys).unwrap_or_default();
            let every = every_s.map(|n| n.to_string());
            match ProfileSpec::from_parts(&obis, every.as_deref(), &keys) {
                Ok(p) => out.push(p),
                Err(e) => warn!("meter {meter_id}: stored profile left out: {e}"),
            }
        }
        Ok(out)
    }

    /// The serial-line check over the stored meters with `changed` added or replacing the
    /// stored ones of the same id or name.
    fn check_lines_with(&self, changed: &[MeterConfig]) -> Result<()> {
        let mut all: Vec<MeterConfig> = self
            .meters()?
            .into_iter()
            .filter(|m| {
                !changed
                    .iter()
                    .any(|c| (c.id.is_some() && c.id == m.id) || c.name == m.name)
            })
            .collect();
        all.extend_from_slice(changed);
        crate::config::lines::check_lines(&all)?;
        Ok(())
    }

    /// The newest profile row already in the outbox (Unix seconds), per meter and profile.
    pub fn profile_cursor(&self, meter: &str, obis: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT last_ts FROM profile_cursors WHERE meter = ?1 AND obis = ?2",
                [meter, obis],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Moves profile cursors, in one transaction (only after their rows are in the outbox).
    pub fn set_profile_cursors(&mut self, cursors: &[(String, String, i64)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for (meter, obis, ts) in cursors {
            tx.execute(
                "INSERT INTO profile_cursors (meter, obis, last_ts) VALUES (?1, ?2, ?3)
                 ON CONFLICT(meter, obis) DO UPDATE SET last_ts = excluded.last_ts",
                rusqlite::params![meter, obis, ts],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn measurements(&self, meter_id: i64) -> Result<Vec<Measurement>> {
        let mut stmt = self.conn.prepare(
            "SELECT key, obis, class_id, attribute FROM measurements WHERE meter_id = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map([meter_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, obis, class, attr) = row?;
            match Measurement::from_parts(&key, &obis, &class.to_string(), &attr.to_string()) {
                Ok(m) => out.push(m),
                Err(e) => warn!("meter {meter_id}: stored measurement left out: {e}"),
            }
        }
        Ok(out)
    }

    /// A meter by name or numeric id.
    pub fn meter(&self, name_or_id: &str) -> Result<MeterConfig> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM meters WHERE name = ?1 OR CAST(id AS TEXT) = ?1 ORDER BY name = ?1 DESC",
                [name_or_id],
                |r| r.get(0),
            )
            .optional()?;
        let id = id.ok_or_else(|| StoreError::NotFound(format!("meter {name_or_id:?}")))?;
        let mut m = self
            .conn
            .query_row("SELECT * FROM meters WHERE id = ?1", [id], from_row)?;
        m.measurements = self.measurements(id)?;
        m.profiles = self.profiles(id)?;
        Ok(m)
    }

    /// Adds a meter; returns its id.
    pub fn add_meter(&mut self, m: &MeterConfig) -> Result<i64> {
        m.validate()?;
        self.check_lines_with(std::slice::from_ref(m))?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        refuse_taken_name(&tx, &m.name, None)?;
        let id = write_meter(&tx, m, None)?;
        tx.commit()?;
        Ok(id)
    }

    /// Replaces a stored meter (found by `m.id`, else by name) by exactly `m`: callers load
    /// the meter, change what they were asked to, and store the whole.
    pub fn update_meter(&mut self, m: &MeterConfig) -> Result<()> {
        let id = match m.id {
            Some(id) => self.meter(&id.to_string())?.id,
            None => self.meter(&m.name)?.id,
        };
        m.validate()?;
        let mut changed = m.clone();
        changed.id = id;
        self.check_lines_with(std::slice::from_ref(&changed))?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        refuse_taken_name(&tx, &m.name, id)?;
        write_meter(&tx, m, id)?;
        tx.commit()?;
        Ok(())
    }

    pub fn remove_meter(&mut self, name_or_id: &str) -> Result<()> {
        let m = self.meter(name_or_id)?;
        self.conn
            .execute("DELETE FROM meters WHERE id = ?1", [m.id])?;
        Ok(())
    }

    /// Imports meters from JSON (an array of meter objects), all or nothing. A name that
    /// exists is refused unless `replace`; a replaced meter becomes exactly what the file
    /// says (fields left out take their defaults; exports carry no secrets, so a file meant to
    /// replace a meter with a password or keys must give them).
    pub fn import_meters(&mut self, json: &str, replace: bool) -> Result<Imported> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| StoreError::Invalid(format!("import: not JSON: {e}")))?;
        let list = value
            .as_array()
            .ok_or_else(|| StoreError::Invalid("import: expected a JSON array of meters".into()))?;
        let existing: HashMap<String, Option<i64>> = self
            .meters()?
            .into_iter()
            .map(|m| (m.name.clone(), m.id))
            .collect();
        let mut meters = Vec::new();
        let mut names = HashSet::new();
        for item in list {
            let mut m = from_json(item)?;
            if !names.insert(m.name.clone()) {
                return Err(StoreError::Invalid(format!(
                    "import: meter {:?} appears twice",
                    m.name
                )));
            }
            m.id = match existing.get(&m.name) {
                Some(_) if !replace => {
                    return Err(StoreError::Conflict(format!(
                        "meter {:?} exists already: give --replace to replace it with the file's \
                         fields (an export carries no secrets)",
                        m.name
                    )))
                }
                Some(id) => *id,
                None => None,
            };
            meters.push(m);
        }
        self.check_lines_with(&meters)?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut done = Imported::default();
        for m in &meters {
            write_meter(&tx, m, m.id)?;
            if m.id.is_some() {
                done.replaced += 1;
            } else {
                done.added += 1;
            }
        }
        tx.commit()?;
        Ok(done)
    }

    /// Every meter as JSON, without secrets (passwords, tokens and keys are never exported).
    pub fn export_meters(&self) -> Result<String> {
        let meters: Vec<serde_json::Value> = self
            .meters()?
            .iter()
            .map(|m| crate::config::json::to_json(m, crate::config::json::Secrets::Omit))
            .collect();
        serde_json::to_string_pretty(&meters).map_err(|e| StoreError::Invalid(e.to_string()))
    }

    /// Makes every reader of the configuration read it again (`reload`).
    pub fn bump_config_revision(&mut self) -> Result<()> {
        self.conn
            .execute("UPDATE config_revision SET revision = revision + 1", [])?;
        Ok(())
    }

    /// Changes whenever meters, measurements or settings change (maintained by triggers).
    pub fn config_revision(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT revision FROM config_revision", [], |r| r.get(0))?)
    }
}

fn refuse_taken_name(tx: &rusqlite::Transaction<'_>, name: &str, id: Option<i64>) -> Result<()> {
    let taken: Option<i64> = tx
        .query_row("SELECT id FROM meters WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?;
    match taken {
        Some(other) if Some(other) != id => Err(StoreError::Conflict(format!(
            "a meter named {name:?} exists already"
        ))),
        _ => Ok(()),
    }
}

/// Writes the meter's row (replacing row `id` if given) and its measurements.
fn write_meter(tx: &rusqlite::Transaction<'_>, m: &MeterConfig, id: Option<i64>) -> Result<i64> {
    let columns: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
    let marks: Vec<String> = (1..=columns.len() + 1).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT OR REPLACE INTO meters (id, {}) VALUES ({})",
        columns.join(", "),
        marks.join(", ")
    );
    let mut values = vec![id.map_or(Sql::Null, Sql::Integer)];
    values.extend(FIELDS.iter().map(|f| sql_value(f.kind, f.text(m))));
    if let Some(id) = id {
        tx.execute("DELETE FROM measurements WHERE meter_id = ?1", [id])?;
        tx.execute("DELETE FROM profiles WHERE meter_id = ?1", [id])?;
    }
    tx.execute(&sql, params_from_iter(values))?;
    let id = tx.last_insert_rowid();
    for x in &m.measurements {
        tx.execute(
            "INSERT INTO measurements (meter_id, key, obis, class_id, attribute) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![id, x.key, x.obis.to_string(), x.class_id, x.attribute],
        )?;
    }
    for p in &m.profiles {
        let keys: Vec<(String, &String)> = p.keys.iter().map(|(c, k)| (c.to_string(), k)).collect();
        tx.execute(
            "INSERT INTO profiles (meter_id, obis, every_s, keys) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                id,
                p.obis.to_string(),
                p.every_s,
                serde_json::to_string(&keys).unwrap_or_else(|_| "[]".into())
            ],
        )?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_measurements;
    use crate::config::values::{AuthKind, Secret};
    use crate::store::temp_store;

    #[test]
    fn add_list_edit_remove() {
        let (mut store, _d) = temp_store("cfg");
        let r0 = store.config_revision().unwrap();
        let mut m = MeterConfig::tcp("Meter A", "127.0.0.1", 4061);
        m.auth = AuthKind::Low;
        m.password = Some(Secret("secret".into()));
        m.server_physical = None;
        let id = store.add_meter(&m).unwrap();
        assert!(store.config_revision().unwrap() > r0);
        let got = store.meter("Meter A").unwrap();
        assert_eq!(
            got,
            MeterConfig {
                id: Some(id),
                ..m.clone()
            },
            "stored as given"
        );
        assert_eq!(got.measurements, default_measurements());
        assert_eq!(store.meter(&id.to_string()).unwrap().name, "Meter A");
        assert!(matches!(store.add_meter(&m), Err(StoreError::Conflict(_))));
        assert_eq!(store.meters().unwrap().len(), 1);
        let mut edited = got.clone();
        edited.interval_s = 5;
        store.update_meter(&edited).unwrap();
        assert_eq!(store.meter("Meter A").unwrap(), edited);
        let mut other = MeterConfig::tcp("B", "127.0.0.1", 1);
        store.add_meter(&other).unwrap();
        other = store.meter("B").unwrap();
        other.name = "Meter A".into();
        assert!(matches!(
            store.update_meter(&other),
            Err(StoreError::Conflict(_))
        ));
        store.remove_meter("Meter A").unwrap();
        assert!(matches!(
            store.meter("Meter A"),
            Err(StoreError::NotFound(_))
        ));
        let n: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM measurements", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, default_measurements().len() as i64, "only B's remain");
    }

    #[test]
    fn import_refuses_duplicates_unless_replace_and_export_hides_secrets() {
        let (mut store, _d) = temp_store("import");
        let json = r#"[
            {"name": "A", "host": "127.0.0.1", "port": 4061, "auth": "low", "password": "pw", "access_token": "tok", "interval_s": 7},
            {"name": "B", "serial_device": "/dev/ttyUSB0", "mode_e": true, "interval_s": 15,
             "measurements": [{"key": "v1", "obis": "1-0:32.7.0*255"}]}
        ]"#;
        assert_eq!(store.import_meters(json, false).unwrap().added, 2);
        let bad = r#"[{"name": "C", "host": "127.0.0.1", "port": 1}, {"name": "D", "port": 2}]"#;
        assert!(store.import_meters(bad, false).is_err());
        assert!(
            matches!(store.meter("C"), Err(StoreError::NotFound(_))),
            "all or nothing"
        );
        let again = store.import_meters(json, false).unwrap_err();
        assert!(matches!(again, StoreError::Conflict(_)), "{again}");
        let out = store.export_meters().unwrap();
        assert!(!out.contains("pw") && !out.contains("tok"), "{out}");
        // A replace takes exactly the file: A's export has no password, so it is refused...
        let e = store.import_meters(&out, true).unwrap_err().to_string();
        assert!(e.contains("needs a password"), "{e}");
        assert_eq!(store.meter("A").unwrap().interval_s, 7, "nothing changed");
        // ...and with it, every field comes from the file.
        let replacing = r#"[{"name": "A", "host": "127.0.0.1", "port": 4061}]"#;
        let done = store.import_meters(replacing, true).unwrap();
        assert_eq!(
            done,
            Imported {
                added: 0,
                replaced: 1
            }
        );
        let a = store.meter("A").unwrap();
        assert_eq!(
            (a.auth, a.interval_s, a.password),
            (AuthKind::None, 60, None)
        );
    }

    #[test]
    fn stored_values_this_version_refuses_fall_back_to_defaults() {
        let (mut store, _d) = temp_store("legacy");
        store
            .add_meter(&MeterConfig::tcp("A", "127.0.0.1", 1))
            .unwrap();
        store
            .conn
            .execute("UPDATE meters SET baud = 7, enabled = 'flase'", [])
            .unwrap();
        let m = store.meter("A").unwrap();
        assert_eq!((m.baud, m.enabled), (9600, true));
    }
}
