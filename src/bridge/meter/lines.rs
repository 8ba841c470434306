//! The shared serial lines of this bridge (RS-485 buses): one [`Bus`] per serial device named by
//! two or more meters, alive while a meter thread uses it (so that a line no longer shared goes
//! back to being a meter's own port), and visible to the status page.

use super::SharedSettings;
use crate::client::bus::Bus;
use crate::client::Endpoint;
use crate::config::MeterConfig;
use crate::status::state::Status;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

pub struct Lines {
    lines: Mutex<HashMap<String, Weak<Bus>>>,
    settings: SharedSettings,
    status: Arc<Status>,
}

impl Lines {
    pub fn new(settings: SharedSettings, status: Arc<Status>) -> Lines {
        Lines {
            lines: Mutex::default(),
            settings,
            status,
        }
    }

    /// The bus on `path`, made from `meter`'s line settings if no thread uses it yet (the
    /// configuration check makes every meter on a line agree on them).
    pub fn line(&self, path: &str, meter: &MeterConfig) -> Arc<Bus> {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bus) = lines.get(path).and_then(Weak::upgrade) {
            return bus;
        }
        let settings = match meter.target().map(|t| t.endpoint) {
            Some(Endpoint::Serial { settings, .. }) => settings,
            _ => crate::client::SerialSettings::hdlc(path, meter.baud),
        };
        let turnaround = Duration::from_millis(
            self.settings
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .bus_turnaround_ms,
        );
        let bus = Bus::new(settings, turnaround);
        lines.insert(path.to_string(), Arc::downgrade(&bus));
        self.status.add_bus(&bus);
        bus
    }
}
