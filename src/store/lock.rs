//! One `dlms-bridge run` per database. Two would poll the same meters (a meter serves one
//! association at a time) and, with the same MQTT client id, knock each other off the broker
//! every few seconds.
//!
//! The lock is `flock(2)` on a file beside the database (`bridge.db.lock`, mode 0600). Only a
//! user who can write the database's directory can create it and only its owner can open it,
//! so no other local user can take the lock first (an abstract socket, the earlier lock, was
//! open to any user). The kernel releases it when the process ends, however it ends (kill -9
//! included), so a stale file cannot keep a rebooted gateway from starting; and it holds
//! across network and PID namespaces sharing the file.

use super::{Result, Store, StoreError};
use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Held for the life of the run (closing the file releases the lock).
pub struct RunLock {
    _file: File,
}

/// The lock file of the database at `db`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    db.with_file_name(name)
}

fn open_lock_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

impl Store {
    /// Takes the database's run lock, or says which process holds it.
    pub fn lock_for_run(&self) -> Result<RunLock> {
        let path = lock_path(self.path());
        let file = open_lock_file(&path).map_err(|e| {
            StoreError::Io(std::io::Error::new(
                e.kind(),
                format!("the run lock {}: {e}", path.display()),
            ))
        })?;
        use nix::fcntl::{flock, FlockArg};
        match flock(file.as_raw_fd(), FlockArg::LockExclusiveNonblock) {
            Ok(()) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                self.conn.execute(
                    "INSERT OR REPLACE INTO runner (id, pid, started_s) VALUES (1, ?1, ?2)",
                    [i64::from(std::process::id()), now],
                )?;
                Ok(RunLock { _file: file })
            }
            Err(nix::errno::Errno::EWOULDBLOCK) => {
                let pid = self
                    .conn
                    .query_row("SELECT pid FROM runner WHERE id = 1", [], |r| r.get(0))
                    .ok();
                Err(StoreError::Locked { pid })
            }
            Err(e) => Err(StoreError::Io(std::io::Error::from(e))),
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn a_second_run_is_refused_with_the_first_ones_pid() {
        let (store, _d) = crate::store::temp_store("lock");
        let held = store.lock_for_run().unwrap();
        let again = crate::store::Store::open(store.path()).unwrap();
        let err = again.lock_for_run().err().unwrap();
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(held);
        assert!(again.lock_for_run().is_ok(), "released with its holder");
    }

    /// Issue 24 item 8: any local user could bind the abstract socket the lock used to be, and
    /// the bridge then refused to start. The name it used is taken first here.
    #[test]
    fn a_squatted_abstract_name_does_not_keep_the_bridge_from_starting() {
        use std::os::linux::net::SocketAddrExt;
        let (store, _d) = crate::store::temp_store("lock-squat");
        let path = std::fs::canonicalize(store.path()).unwrap();
        let hash = crate::machine::fnv1a(path.as_os_str().as_encoded_bytes());
        let name = format!("dlms-bridge-{hash:016x}");
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let _squatter = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        let held = store.lock_for_run();
        assert!(held.is_ok(), "{:?}", held.err());
        let mode = std::fs::metadata(super::lock_path(store.path())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
    }
}
