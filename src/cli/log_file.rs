//! The log file: appended to, and reopened after SIGHUP, so that logrotate (or a plain `mv`)
//! can rotate it without restarting the bridge.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct ReopeningFile {
    path: PathBuf,
    file: File,
    reopen: Arc<AtomicBool>,
}

/// Created 0640: the log names meters, hosts and the page's clients' addresses, which are not
/// for every local user (the group can read it, for a log shipper).
fn open(path: &PathBuf) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::fs::PermissionsExt;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)?;
    // A log left world-readable by an earlier version is closed to others too.
    if let Ok(meta) = file.metadata() {
        let mode = meta.permissions().mode();
        if mode & 0o007 != 0 {
            let _ = file.set_permissions(std::fs::Permissions::from_mode(mode & !0o007));
        }
    }
    Ok(file)
}

impl ReopeningFile {
    /// Opens `path` and arranges for SIGHUP to reopen it before the next line.
    pub fn open(path: PathBuf) -> io::Result<ReopeningFile> {
        let file = open(&path)?;
        let reopen = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, reopen.clone())?;
        Ok(ReopeningFile { path, file, reopen })
    }
}

impl Write for ReopeningFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.reopen.swap(false, Ordering::Relaxed) {
            // If the new file cannot be opened, go on writing to the old one.
            if let Ok(f) = open(&self.path) {
                self.file = f;
            }
        }
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_new_log_file_is_not_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("dlms-bridge-log-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bridge.log");
        let _ = std::fs::remove_file(&path);
        drop(super::open(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        let _ = std::fs::remove_dir_all(&dir);
        // The umask may take bits away, never add them.
        assert_eq!(mode & !0o640, 0, "mode {mode:o}");
    }
}
