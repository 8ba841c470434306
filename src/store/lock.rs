//! One `dlms-bridge run` per database. Two would poll the same meters (a meter serves one
//! association at a time) and, with the same MQTT client id, knock each other off the broker
//! every few seconds.
//!
//! The lock is an abstract Unix socket named after the database's path: the kernel releases
//! it when the process ends, however it ends (kill -9 included), so a stale lock cannot keep
//! a rebooted gateway from starting. Abstract names are per network namespace: bridges in
//! different namespaces sharing one database file are not detected.

use super::{Result, Store, StoreError};
use std::os::unix::net::UnixListener;

/// Held for the life of the run.
pub struct RunLock {
    _socket: UnixListener,
}

/// FNV-1a: a stable name for a path (the standard hasher may change between Rust releases,
/// and two versions of the bridge must agree).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(target_os = "linux")]
fn bind(name: &str) -> std::io::Result<UnixListener> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    UnixListener::bind_addr(&addr)
}

#[cfg(not(target_os = "linux"))]
fn bind(name: &str) -> std::io::Result<UnixListener> {
    // No abstract namespace: a socket file in the temporary directory (removed on start if
    // stale, which cannot be told from a live one without asking it: best effort).
    UnixListener::bind(std::env::temp_dir().join(name))
}

impl Store {
    /// Takes the database's run lock, or says which process holds it.
    pub fn lock_for_run(&self) -> Result<RunLock> {
        let path = std::fs::canonicalize(self.path()).unwrap_or_else(|_| self.path().into());
        let name = format!(
            "dlms-bridge-{:016x}",
            fnv1a(path.as_os_str().as_encoded_bytes())
        );
        match bind(&name) {
            Ok(socket) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                self.conn.execute(
                    "INSERT OR REPLACE INTO runner (id, pid, started_s) VALUES (1, ?1, ?2)",
                    [i64::from(std::process::id()), now],
                )?;
                Ok(RunLock { _socket: socket })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                let pid = self
                    .conn
                    .query_row("SELECT pid FROM runner WHERE id = 1", [], |r| r.get(0))
                    .ok();
                Err(StoreError::Locked { pid })
            }
            Err(e) => Err(StoreError::Io(e)),
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
}
