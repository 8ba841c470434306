//! Backups of the whole database, secrets included (meter passwords and keys, tokens, the
//! invocation counters): what `meter export` leaves out, so that a damaged SD card costs no
//! keys. `VACUUM INTO` makes a consistent copy while the bridge runs; a restore replaces the
//! database only while no bridge runs on it (the run lock), and only with a file that is a
//! dlms-bridge database.

use super::{Result, Store, StoreError};
use std::path::{Path, PathBuf};

/// Creates `path` empty with mode 0600 (VACUUM INTO keeps an existing empty file's mode);
/// refuses to overwrite anything.
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| {
            StoreError::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e} (a backup never overwrites a file)", path.display()),
            ))
        })
}

impl Store {
    /// Writes a consistent copy of the whole database to `to` (a new file, mode 0600).
    pub fn backup_to(&self, to: &Path) -> Result<()> {
        create_private(to)?;
        let target = to
            .to_str()
            .ok_or_else(|| StoreError::Invalid(format!("{}: not a UTF-8 path", to.display())))?;
        if let Err(e) = self.conn.execute("VACUUM INTO ?1", [target]) {
            let _ = std::fs::remove_file(to);
            return Err(e.into());
        }
        Ok(())
    }
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    db.with_file_name(name)
}

/// Replaces the database at `db` by the backup `from`, while no bridge runs on it. The backup
/// is checked (it must open as a dlms-bridge database) before anything is replaced; the
/// current database is kept beside it as `bridge.db.before-restore`.
pub fn restore(from: &Path, db: &Path) -> Result<()> {
    let staged = sibling(db, ".restoring");
    let _ = std::fs::remove_file(&staged);
    {
        let source = Store::open(from)?;
        source.backup_to(&staged)?;
    }
    // Checked (and migrated, if an older version made it) where it will live.
    if let Err(e) = Store::open(&staged) {
        let _ = std::fs::remove_file(&staged);
        return Err(e);
    }
    let current = Store::open(db)?;
    let _lock = current.lock_for_run()?;
    let kept = sibling(db, ".before-restore");
    let _ = std::fs::remove_file(&kept);
    current.backup_to(&kept)?;
    drop(current);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(sibling(db, suffix));
    }
    std::fs::rename(&staged, db)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::values::Secret;
    use crate::config::MeterConfig;

    /// Issue 25 item 13: exports carry no secrets; a backup carries everything, and a
    /// restore gives it back.
    #[test]
    fn a_backup_keeps_the_secrets_and_a_restore_brings_them_back() {
        use std::os::unix::fs::PermissionsExt;
        let (mut store, dir) = crate::store::temp_store("backup");
        let mut m = MeterConfig::tcp("A", "127.0.0.1", 4059);
        m.auth = crate::config::values::AuthKind::Low;
        m.password = Some(Secret("s3cret-pass".into()));
        store.add_meter(&m).unwrap();
        store.set_setting("mqtt.host", "tb.example.com").unwrap();
        let file = dir.path().join("backup.db");
        store.backup_to(&file).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(store.backup_to(&file).is_err(), "overwrote a file");
        store.remove_meter("A").unwrap();
        store.set_setting("mqtt.host", "other").unwrap();
        let db = store.path().to_path_buf();
        drop(store);
        super::restore(&file, &db).unwrap();
        let back = crate::store::Store::open(&db).unwrap();
        let a = back.meter("A").unwrap();
        assert_eq!(a.password, Some(Secret("s3cret-pass".into())));
        assert_eq!(back.settings().unwrap().broker.host, "tb.example.com");
        // A running bridge holds the lock: no restore under it.
        let _held = back.lock_for_run().unwrap();
        assert!(super::restore(&file, &db).is_err());
        // Not a database of ours: refused, nothing replaced.
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"not sqlite at all, just text").unwrap();
        assert!(super::restore(&junk, &db).is_err());
    }
}
