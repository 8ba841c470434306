//! A meter that pushes on a receive-only serial line (HAN/P1 customer ports: a frame every
//! 2-10 s, nothing ever sent to the meter). The line is opened, and reopened after errors;
//! every notification the sans-I/O [`crate::client::push::Receiver`] takes becomes a reading, stamped with the
//! notification's own time (else the gateway's, when its clock is set).

use super::{Control, Worker};
use crate::client::push::PushError;
use crate::client::{Endpoint, SerialTransport, Transport};
use crate::status::state::MeterState;
use log::{info, warn};
use std::time::{Duration, Instant};

/// How long the line may stay silent before the meter counts as failing (HAN ports push every
/// 2-10 s; an hourly list can take longer, but not this long).
const SILENCE: Duration = Duration::from_secs(60);

impl Worker {
    pub(super) fn run_push(self) {
        let name = self.config.name.clone();
        let settings = match self.config.target().map(|t| t.endpoint) {
            Some(Endpoint::Serial { settings, .. }) => settings,
            _ => {
                warn!("meter {name:?}: push serial needs a serial device; not read");
                return;
            }
        };
        // A serial line cannot be replayed into from the LAN: its counter lives in memory.
        let mut receiver = crate::bridge::push::reading::receiver_for(&self.config, None);
        info!(
            "meter {name:?}: listening for pushed notifications on {}",
            settings.path
        );
        let mut port: Option<SerialTransport> = None;
        let mut buf = [0u8; 1024];
        let mut last_heard = Instant::now();
        let mut last_logged: Option<(String, Instant)> = None;
        loop {
            match self.control.try_recv() {
                Ok(Control::Stop) | Err(crossbeam_channel::TryRecvError::Disconnected) => break,
                Ok(Control::Update(_)) | Err(crossbeam_channel::TryRecvError::Empty) => {}
            }
            let Some(p) = port.as_mut() else {
                match SerialTransport::open(&settings) {
                    Ok(p) => port = Some(p),
                    Err(e) => {
                        self.note_failure(&format!("{}: {e}", settings.path), &mut last_logged);
                        std::thread::sleep(Duration::from_secs(2));
                    }
                }
                continue;
            };
            let n = match p.recv(&mut buf, Duration::from_millis(500)) {
                Ok(n) => n,
                Err(e) => {
                    self.note_failure(&format!("{}: {e}", settings.path), &mut last_logged);
                    port = None;
                    continue;
                }
            };
            if n == 0 && last_heard.elapsed() >= SILENCE {
                self.note_failure(
                    &format!("nothing pushed for {} s", last_heard.elapsed().as_secs()),
                    &mut last_logged,
                );
                last_heard = Instant::now();
            }
            for result in receiver.push_bytes(&buf[..n]) {
                last_heard = Instant::now();
                match result {
                    Ok(pushed) => {
                        if !crate::bridge::push::reading::deliver(
                            &self.config,
                            &self.status,
                            &self.events,
                            pushed,
                            self.settings
                                .read()
                                .map_or(300, |s| s.push_max_clock_skew_s),
                        ) {
                            return;
                        }
                    }
                    Err(e) => self.refused(&e, &mut last_logged),
                }
            }
        }
        info!("meter {name:?}: stopped");
    }

    fn refused(&self, e: &PushError, last: &mut Option<(String, Instant)>) {
        crate::bridge::push::reading::refused(&self.config.name, &self.status, e);
        self.note_failure(&e.to_string(), last);
    }

    /// Reported in the status; logged once a minute per kind of message.
    fn note_failure(&self, what: &str, last: &mut Option<(String, Instant)>) {
        let name = &self.config.name;
        self.status.update_meter(name, |m| {
            m.note_error(what.to_string());
            if m.successes == 0 {
                m.state = MeterState::Connecting;
            }
        });
        let kind: String = what.chars().take(24).collect();
        let due = last
            .as_ref()
            .is_none_or(|(k, t)| *k != kind || t.elapsed() >= Duration::from_secs(60));
        if due {
            warn!("meter {name:?}: {what}");
            *last = Some((kind, Instant::now()));
        }
    }
}
