//! The bridge's SQLite database: configuration (meters, measurements, settings) and the
//! durable outbox of readings. One file, WAL mode, schema migrations by `PRAGMA user_version`,
//! file mode 0600 (it holds passwords and tokens).
//!
//! rusqlite's `Connection` is `Send` but not `Sync`: every thread that needs the database opens
//! its own [`Store`] (the publisher thread is the only writer of the outbox).

pub mod alarms;
pub mod auth_refusals;
pub mod backup;
pub mod config;
pub mod counters;
pub mod lock;
pub mod outbox;
mod schema;
pub mod settings;

use rusqlite::Connection;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    Sqlite(rusqlite::Error),
    Io(std::io::Error),
    /// Configuration that does not make sense; nothing was changed.
    Invalid(String),
    /// A meter's configuration refused by the model; nothing was changed.
    Config(crate::config::ConfigError),
    /// The name is taken; nothing was changed.
    Conflict(String),
    NotFound(String),
    /// The file is not a dlms-bridge database; it was left as it is.
    Foreign(String),
    /// Another `dlms-bridge run` holds the database.
    Locked {
        pid: Option<i64>,
    },
    /// The database was written by a newer dlms-bridge.
    TooNew {
        found: i64,
        supported: i64,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Sqlite(e) => write!(f, "database: {e}"),
            StoreError::Io(e) => write!(f, "database file: {e}"),
            StoreError::Invalid(m) | StoreError::Conflict(m) => write!(f, "{m}"),
            StoreError::Config(e) => write!(f, "{e}"),
            StoreError::NotFound(m) => write!(f, "{m} not found"),
            StoreError::Foreign(m) => write!(f, "not a dlms-bridge database: {m}; it was left untouched"),
            StoreError::Locked { pid } => {
                let who = pid.map_or("another dlms-bridge".to_string(), |p| format!("another dlms-bridge (pid {p})"));
                write!(f, "{who} is running on this database; stop it first (two would poll the same meters and take turns on the broker)")
            }
            StoreError::TooNew { found, supported } => write!(
                f,
                "database schema version {found} is newer than this dlms-bridge supports ({supported}); upgrade dlms-bridge"
            ),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => {
                StoreError::Foreign("not an SQLite file".into())
            }
            _ => StoreError::Sqlite(e),
        }
    }
}

impl From<crate::config::ConfigError> for StoreError {
    fn from(e: crate::config::ConfigError) -> Self {
        StoreError::Config(e)
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating the file if needed) and migrates the database at `path`. Its directory
    /// must exist: a tree created silently by `sudo dlms-bridge meter add --db ...` belongs to
    /// root, and a typo in a path would become a database nobody reads (issue 25).
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(StoreError::Io(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "the directory {} does not exist (the package creates /var/lib/dlms-bridge; create it, or give --db a path in an existing directory)",
                        dir.display()
                    ),
                )));
            }
        }
        if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0) {
            return Err(StoreError::Foreign(
                "an empty file (remove it to start with an empty configuration)".into(),
            ));
        }
        let conn = Connection::open(path)?;
        restrict_permissions(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        schema::check_ours(&conn)?;
        // WAL: readers (CLI, status) never block the publisher. synchronous=FULL: a committed
        // reading survives power loss, not only a crash; group commit keeps fsyncs rare.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&conn)?;
        config::add_missing_columns(&conn)?;
        keep_service_ownership(path);
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Run as root against a service's database (`sudo dlms-bridge meter add ... --db
/// /var/lib/dlms-bridge/bridge.db`), SQLite would leave the database, its -wal and -shm files
/// owned by root, and the service user could no longer open them. Files get the owner of the
/// database (or, for a new one, of its directory) when that is not root.
#[cfg(unix)]
fn keep_service_ownership(path: &Path) {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").map_or(true, |m| m.uid() != 0) {
        return;
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let owner = [path, dir]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| (m.uid(), m.gid()))
        .find(|(uid, _)| *uid != 0);
    let Some((uid, gid)) = owner else { return };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    for suffix in ["", "-wal", "-shm"] {
        let p = path.with_file_name(format!("{name}{suffix}"));
        if std::fs::metadata(&p).is_ok_and(|m| m.uid() != uid) {
            let _ = std::os::unix::fs::chown(&p, Some(uid), Some(gid));
        }
    }
}

#[cfg(not(unix))]
fn keep_service_ownership(_: &Path) {}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_permissions(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
pub(crate) fn temp_store(name: &str) -> (Store, tempdir::TempDir) {
    let dir = tempdir::TempDir::new(name);
    let store = Store::open(&dir.path().join("bridge.db")).unwrap();
    (store, dir)
}

#[cfg(test)]
pub(crate) mod tempdir {
    /// A directory removed on drop (tests only).
    pub struct TempDir(std::path::PathBuf);

    impl TempDir {
        pub fn new(name: &str) -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "dlms-bridge-{name}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod open_tests {
    /// Issue 25 item 5: a database in a directory that does not exist is an error, not a
    /// tree created on the spot.
    #[test]
    fn a_missing_directory_is_an_error_not_created() {
        let dir = super::tempdir::TempDir::new("missing-dir");
        let path = dir.path().join("no/such/dir/bridge.db");
        let err = super::Store::open(&path).err().expect("opened");
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(!dir.path().join("no").exists());
    }
}
