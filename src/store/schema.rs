//! Schema and migrations. `PRAGMA user_version` holds the number of migrations applied; each
//! migration runs in its own transaction, so a crash mid-upgrade leaves the previous version.

use super::{Result, StoreError};
use rusqlite::Connection;

/// One migration: SQL, or code where SQL alone cannot say it.
#[derive(Clone, Copy)]
enum Step {
    Sql(&'static str),
    Code(fn(&Connection) -> Result<()>),
}

impl Step {
    fn apply(self, conn: &Connection) -> Result<()> {
        match self {
            Step::Sql(sql) => Ok(conn.execute_batch(sql)?),
            Step::Code(f) => f(conn),
        }
    }
}

const MIGRATIONS: &[Step] = &[
    // 1: configuration and outbox.
    Step::Sql("CREATE TABLE meters (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        enabled INTEGER NOT NULL DEFAULT 1,
        transport TEXT NOT NULL CHECK (transport IN ('hdlc', 'wrapper')),
        host TEXT,
        port INTEGER,
        serial_device TEXT,
        baud INTEGER NOT NULL DEFAULT 9600,
        mode_e INTEGER NOT NULL DEFAULT 0,
        client_address INTEGER NOT NULL DEFAULT 16,
        server_logical INTEGER NOT NULL DEFAULT 1,
        server_physical INTEGER,
        auth TEXT NOT NULL DEFAULT 'none' CHECK (auth IN ('none', 'low')),
        password TEXT,
        connect_timeout_ms INTEGER NOT NULL DEFAULT 5000,
        response_timeout_ms INTEGER NOT NULL DEFAULT 5000,
        inter_frame_timeout_ms INTEGER NOT NULL DEFAULT 5000,
        interval_s INTEGER NOT NULL DEFAULT 60,
        inactivity_timeout_s INTEGER NOT NULL DEFAULT 120,
        device_type TEXT NOT NULL DEFAULT 'electricity-meter',
        access_token TEXT
    );
    CREATE TABLE measurements (
        meter_id INTEGER NOT NULL REFERENCES meters(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        obis TEXT NOT NULL,
        class_id INTEGER NOT NULL DEFAULT 3,
        attribute INTEGER NOT NULL DEFAULT 2,
        PRIMARY KEY (meter_id, key)
    );
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE config_revision (id INTEGER PRIMARY KEY CHECK (id = 1), revision INTEGER NOT NULL);
    INSERT INTO config_revision VALUES (1, 0);
    CREATE TRIGGER meters_ins AFTER INSERT ON meters BEGIN UPDATE config_revision SET revision = revision + 1; END;
    CREATE TRIGGER meters_upd AFTER UPDATE ON meters BEGIN UPDATE config_revision SET revision = revision + 1; END;
    CREATE TRIGGER meters_del AFTER DELETE ON meters BEGIN UPDATE config_revision SET revision = revision + 1; END;
    CREATE TRIGGER meas_ins AFTER INSERT ON measurements BEGIN UPDATE config_revision SET revision = revision + 1; END;
    CREATE TRIGGER meas_upd AFTER UPDATE ON measurements BEGIN UPDATE config_revision SET revision = revision + 1; END;
    CREATE TRIGGER meas_del AFTER DELETE ON measurements BEGIN UPDATE config_revision SET revision = revision + 1; END;
    CREATE TRIGGER settings_ins AFTER INSERT ON settings BEGIN UPDATE config_revision SET revision = revision + 1; END;
    CREATE TRIGGER settings_upd AFTER UPDATE ON settings BEGIN UPDATE config_revision SET revision = revision + 1; END;
    CREATE TRIGGER settings_del AFTER DELETE ON settings BEGIN UPDATE config_revision SET revision = revision + 1; END;
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        kind TEXT NOT NULL DEFAULT 'telemetry' CHECK (kind IN ('telemetry', 'attributes')),
        payload TEXT NOT NULL
    );
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"),
    // 2: DLMS security per meter (HLS-GMAC, suite-0 ciphering) and the client invocation
    // counters reserved per meter and key. The CHECK on auth changes, so the meters table is
    // rebuilt (SQLite's documented 12-step procedure; foreign keys are off meanwhile).
    Step::Sql("CREATE TABLE meters_v2 (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        enabled INTEGER NOT NULL DEFAULT 1,
        transport TEXT NOT NULL CHECK (transport IN ('hdlc', 'wrapper')),
        host TEXT,
        port INTEGER,
        serial_device TEXT,
        baud INTEGER NOT NULL DEFAULT 9600,
        mode_e INTEGER NOT NULL DEFAULT 0,
        client_address INTEGER NOT NULL DEFAULT 16,
        server_logical INTEGER NOT NULL DEFAULT 1,
        server_physical INTEGER,
        auth TEXT NOT NULL DEFAULT 'none' CHECK (auth IN ('none', 'low', 'high-gmac')),
        password TEXT,
        connect_timeout_ms INTEGER NOT NULL DEFAULT 5000,
        response_timeout_ms INTEGER NOT NULL DEFAULT 5000,
        inter_frame_timeout_ms INTEGER NOT NULL DEFAULT 5000,
        interval_s INTEGER NOT NULL DEFAULT 60,
        inactivity_timeout_s INTEGER NOT NULL DEFAULT 120,
        device_type TEXT NOT NULL DEFAULT 'electricity-meter',
        access_token TEXT,
        security TEXT NOT NULL DEFAULT 'none' CHECK (security IN ('none', 'auth', 'enc', 'auth-enc')),
        system_title TEXT,
        encryption_key TEXT,
        authentication_key TEXT,
        dedicated_key INTEGER NOT NULL DEFAULT 0,
        general_ciphering INTEGER NOT NULL DEFAULT 0,
        frame_counter TEXT
    );
    INSERT INTO meters_v2 (id, name, enabled, transport, host, port, serial_device, baud, mode_e,
        client_address, server_logical, server_physical, auth, password, connect_timeout_ms,
        response_timeout_ms, inter_frame_timeout_ms, interval_s, inactivity_timeout_s,
        device_type, access_token)
    SELECT id, name, enabled, transport, host, port, serial_device, baud, mode_e,
        client_address, server_logical, server_physical, auth, password, connect_timeout_ms,
        response_timeout_ms, inter_frame_timeout_ms, interval_s, inactivity_timeout_s,
        device_type, access_token FROM meters;
    DROP TABLE meters;
    ALTER TABLE meters_v2 RENAME TO meters;
    CREATE TRIGGER meters_ins AFTER INSERT ON meters BEGIN UPDATE config_revision SET revision = revision + 1; END;
    CREATE TRIGGER meters_upd AFTER UPDATE ON meters BEGIN UPDATE config_revision SET revision = revision + 1; END;
    CREATE TRIGGER meters_del AFTER DELETE ON meters BEGIN UPDATE config_revision SET revision = revision + 1; END;
    UPDATE config_revision SET revision = revision + 1;
    CREATE TABLE invocation_counters (
        meter TEXT NOT NULL,
        key_id TEXT NOT NULL,
        reserved_until INTEGER NOT NULL CHECK (reserved_until BETWEEN 0 AND 4294967295),
        PRIMARY KEY (meter, key_id)
    );"),
    // 3: which process runs on this database (for the message a second `run` gets).
    Step::Sql("CREATE TABLE runner (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, started_s INTEGER NOT NULL);"),
    // 4: the outbox's row count kept by triggers: COUNT(*) walked every page of a large
    // backlog on every group commit.
    Step::Sql(OUTBOX_ROW_COUNT),
    // 5: profiles to collect per meter (configuration), the collection cursors (state: the
    // newest row already in the outbox, per meter and profile), and when a row entered the
    // outbox (a backfilled profile row is days older than its arrival: the age bound and the
    // health check count from arrival).
    Step::Sql("CREATE TABLE profiles (
        meter_id INTEGER NOT NULL REFERENCES meters(id) ON DELETE CASCADE,
        obis TEXT NOT NULL,
        every_s INTEGER,
        keys TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (meter_id, obis)
    );
    CREATE TRIGGER profiles_ins AFTER INSERT ON profiles BEGIN UPDATE config_revision SET revision = revision + 1; END;
    CREATE TRIGGER profiles_upd AFTER UPDATE ON profiles BEGIN UPDATE config_revision SET revision = revision + 1; END;
    CREATE TRIGGER profiles_del AFTER DELETE ON profiles BEGIN UPDATE config_revision SET revision = revision + 1; END;
    CREATE TABLE profile_cursors (
        meter TEXT NOT NULL,
        obis TEXT NOT NULL,
        last_ts INTEGER NOT NULL,
        PRIMARY KEY (meter, obis)
    );
    ALTER TABLE outbox ADD COLUMN queued_ms INTEGER;"),
    // 6: the alarms the bridge raised (state, not configuration: no revision triggers).
    Step::Sql("CREATE TABLE alarms (
        id INTEGER PRIMARY KEY,
        meter TEXT,
        kind TEXT NOT NULL,
        severity TEXT NOT NULL,
        detail TEXT NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        count INTEGER NOT NULL,
        cleared_ms INTEGER,
        acked_by TEXT,
        acked_ms INTEGER
    );"),
    // 7: any authentication mechanism: the CHECK on auth is dropped (the field model, one
    // definition, validates the words; a CHECK would need a table rebuild for every new one).
    Step::Code(drop_auth_check),
    // 8: the last refusal of each meter's credentials, shared by the bridge and `meter test`
    // (many meters lock their password after 3 failures: nobody tries a refused one again
    // without being told). `secret` is a fingerprint of the credentials, never the secret.
    Step::Sql("CREATE TABLE auth_refusals (
        meter TEXT PRIMARY KEY,
        secret TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        by TEXT NOT NULL
    );"),
];

/// Migration 7: rebuilds the meters table without the CHECK on `auth` (SQLite cannot drop a
/// constraint in place; its documented 12-step procedure, with foreign keys off around the
/// migration). The columns are whatever this database has (fields add theirs as they come),
/// so the table's own CREATE statement is reused, minus the CHECK.
fn drop_auth_check(conn: &Connection) -> Result<()> {
    let sql: String = conn.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'meters'",
        [],
        |r| r.get(0),
    )?;
    let Some(check) = sql.find("CHECK (auth IN (") else {
        return Ok(());
    };
    let unreadable = || StoreError::Invalid("the meters table definition is not ours".into());
    let check_end = check + sql[check..].find("))").ok_or_else(unreadable)? + 2;
    let columns = sql.find('(').ok_or_else(unreadable)?;
    let without = format!("{}{}", &sql[columns..check], &sql[check_end..]);
    conn.execute_batch(&format!(
        "CREATE TABLE meters_v7 {without};
         INSERT INTO meters_v7 SELECT * FROM meters;
         DROP TABLE meters;
         ALTER TABLE meters_v7 RENAME TO meters;
         CREATE TRIGGER meters_ins AFTER INSERT ON meters BEGIN UPDATE config_revision SET revision = revision + 1; END;
         CREATE TRIGGER meters_upd AFTER UPDATE ON meters BEGIN UPDATE config_revision SET revision = revision + 1; END;
         CREATE TRIGGER meters_del AFTER DELETE ON meters BEGIN UPDATE config_revision SET revision = revision + 1; END;
         UPDATE config_revision SET revision = revision + 1;"
    ))?;
    Ok(())
}

/// The outbox row counter and its triggers (also re-created when a corrupt outbox is
/// quarantined).
pub(super) const OUTBOX_ROW_COUNT: &str = "
    INSERT OR REPLACE INTO counters (name, value) VALUES ('outbox_rows', (SELECT COUNT(*) FROM outbox));
    CREATE TRIGGER outbox_rows_ins AFTER INSERT ON outbox BEGIN UPDATE counters SET value = value + 1 WHERE name = 'outbox_rows'; END;
    CREATE TRIGGER outbox_rows_del AFTER DELETE ON outbox BEGIN UPDATE counters SET value = value - 1 WHERE name = 'outbox_rows'; END;";

/// The outbox table as migration 1 created it.
pub(super) const OUTBOX_TABLE: &str = "CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        kind TEXT NOT NULL DEFAULT 'telemetry' CHECK (kind IN ('telemetry', 'attributes')),
        payload TEXT NOT NULL,
        queued_ms INTEGER
    );";

/// `PRAGMA application_id` of our databases ("DLMB"): tells ours from other SQLite files.
const APPLICATION_ID: i64 = 0x444C_4D42;

/// Refuses a SQLite file that is not ours (before anything is written to it). Databases of
/// earlier versions carry no application id: they are known by their tables.
pub(super) fn check_ours(conn: &Connection) -> Result<()> {
    let id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if id == APPLICATION_ID {
        return Ok(());
    }
    if id != 0 {
        return Err(StoreError::Foreign(format!(
            "an SQLite database of another application (application id {id:#x})"
        )));
    }
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let ours = ["config_revision", "meters", "outbox"]
        .iter()
        .all(|t| tables.iter().any(|have| have == t));
    if !tables.is_empty() && !ours {
        let mut shown = tables
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if tables.len() > 5 {
            shown.push_str(", ...");
        }
        return Err(StoreError::Foreign(format!(
            "an SQLite database with other tables ({shown})"
        )));
    }
    conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    Ok(())
}

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

pub(super) fn migrate(conn: &Connection) -> Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > VERSION {
        return Err(StoreError::TooNew {
            found: current,
            supported: VERSION,
        });
    }
    if current == VERSION {
        return Ok(());
    }
    // Table rebuilds must not cascade; the pragma has no effect inside a transaction.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let result = (|| -> Result<()> {
        for (i, step) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let tx = conn.unchecked_transaction()?;
            step.apply(&tx)?;
            let broken: Option<String> = tx
                .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
                .ok();
            if let Some(table) = broken {
                return Err(StoreError::Invalid(format!(
                    "database migration {} left dangling rows in {table}",
                    i + 1
                )));
            }
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    })();
    conn.pragma_update(None, "foreign_keys", "ON")?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::{AuthKind, Ciphering};

    #[test]
    fn migrates_once_and_refuses_newer() {
        let (store, _dir) = crate::store::temp_store("schema");
        let v: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, VERSION);
        migrate(&store.conn).unwrap();
        store
            .conn
            .pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        assert!(matches!(
            migrate(&store.conn),
            Err(StoreError::TooNew { .. })
        ));
    }

    /// A database written at every earlier schema version (by the dlms-bridge of that time:
    /// no application id, its meters, measurements and unsent readings) opens with this one,
    /// migrates, and keeps all of it.
    #[test]
    fn databases_of_every_earlier_version_migrate_and_keep_their_data() {
        for version in 1..VERSION {
            let dir = crate::store::tempdir::TempDir::new("every-version");
            let path = dir.path().join(format!("v{version}.db"));
            {
                let conn = Connection::open(&path).unwrap();
                for step in &MIGRATIONS[..version as usize] {
                    step.apply(&conn).unwrap();
                }
                conn.pragma_update(None, "user_version", version).unwrap();
                conn.execute_batch(
                    "INSERT INTO meters (name, transport, host, port, server_physical, interval_s)
                         VALUES ('old', 'wrapper', '127.0.0.1', 4059, NULL, 15);
                     INSERT INTO measurements (meter_id, key, obis) VALUES (1, 'v', '1-0:32.7.0*255');
                     INSERT INTO outbox (device, ts_ms, payload) VALUES ('old', 1000, '{\"v\":1}');
                     INSERT INTO outbox (device, ts_ms, payload) VALUES ('old', 2000, '{\"v\":2}');",
                )
                .unwrap();
            }
            let mut store = crate::store::Store::open(&path)
                .unwrap_or_else(|e| panic!("version {version}: {e}"));
            let m = store.meter("old").unwrap();
            assert_eq!(
                (
                    m.transport,
                    m.server_physical,
                    m.interval_s,
                    m.measurements.len()
                ),
                (crate::config::values::Transport::Wrapper, None, 15, 1),
                "version {version}"
            );
            let stats = store.outbox_stats().unwrap();
            assert_eq!(
                (stats.rows, stats.oldest_ts_ms),
                (2, Some(1000)),
                "version {version}"
            );
            assert_eq!(store.outbox_delete(&[1]).unwrap(), 1);
            assert_eq!(
                store.outbox_stats().unwrap().rows,
                1,
                "the counter follows deletes"
            );
            let id: i64 = store
                .conn
                .pragma_query_value(None, "application_id", |r| r.get(0))
                .unwrap();
            assert_eq!(id, APPLICATION_ID, "version {version}");
        }
    }

    #[test]
    fn version_6_databases_take_every_authentication_mechanism() {
        let dir = crate::store::tempdir::TempDir::new("migrate-7");
        let path = dir.path().join("v6.db");
        {
            let conn = Connection::open(&path).unwrap();
            for step in &MIGRATIONS[..6] {
                step.apply(&conn).unwrap();
            }
            conn.pragma_update(None, "user_version", 6).unwrap();
            // A column added by a field after migration 2, as older versions did.
            crate::store::config::add_missing_columns(&conn).unwrap();
            conn.execute_batch(
                "INSERT INTO meters (name, transport, host, port, auth, password)
                     VALUES ('old', 'hdlc', '127.0.0.1', 4059, 'low', 'pw');
                 INSERT INTO measurements (meter_id, key, obis) VALUES (1, 'v', '1-0:32.7.0*255');",
            )
            .unwrap();
            let refused = conn.execute("UPDATE meters SET auth = 'high-md5'", []);
            assert!(refused.is_err(), "version 6 has the CHECK");
        }
        let mut store = crate::store::Store::open(&path).unwrap();
        let mut m = store.meter("old").unwrap();
        assert_eq!((m.measurements.len(), m.auth), (1, AuthKind::Low));
        m.auth = AuthKind::HighMd5;
        store.update_meter(&m).unwrap();
        assert_eq!(store.meter("old").unwrap().auth, AuthKind::HighMd5);
        let fk: i64 = store
            .conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        store.remove_meter("old").unwrap();
        let orphans: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM measurements", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            orphans, 0,
            "measurements still cascade from the rebuilt table"
        );
    }

    #[test]
    fn version_1_databases_keep_their_meters_and_measurements() {
        let dir = crate::store::tempdir::TempDir::new("migrate");
        let path = dir.path().join("v1.db");
        {
            let conn = Connection::open(&path).unwrap();
            MIGRATIONS[0].apply(&conn).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute_batch(
                "INSERT INTO meters (name, transport, host, port, auth, password)
                     VALUES ('old', 'hdlc', '127.0.0.1', 4059, 'low', 'pw');
                 INSERT INTO measurements (meter_id, key, obis) VALUES (1, 'v', '1-0:32.7.0*255');",
            )
            .unwrap();
        }
        let store = crate::store::Store::open(&path).unwrap();
        let m = store.meter("old").unwrap();
        assert_eq!(
            (m.auth, m.password.map(|p| p.0)),
            (AuthKind::Low, Some("pw".to_string()))
        );
        assert_eq!(m.security, Ciphering::None);
        assert_eq!(m.measurements.len(), 1, "measurements survive the rebuild");
        let fk: bool = store
            .conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert!(fk, "foreign keys are back on");
        // The new CHECK accepts high-gmac.
        store
            .conn
            .execute("UPDATE meters SET auth = 'high-gmac'", [])
            .unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (store, _dir) = crate::store::temp_store("perm");
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
