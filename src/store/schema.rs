//! Schema and migrations. `PRAGMA user_version` holds the number of migrations applied; each
//! migration runs in its own transaction, so a crash mid-upgrade leaves the previous version.

use super::{Result, StoreError};
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: configuration and outbox.
    "CREATE TABLE meters (
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
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
];

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
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
