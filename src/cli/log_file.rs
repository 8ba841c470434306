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

fn open(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
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
