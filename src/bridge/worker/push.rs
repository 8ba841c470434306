//! A meter that pushes on a receive-only serial line (HAN/P1 customer ports: a frame every
//! 2-10 s, nothing ever sent to the meter). The line is opened, and reopened after errors;
//! every notification the sans-I/O [`Receiver`] takes becomes a reading, stamped with the
//! notification's own time (else the gateway's, when its clock is set).

use super::{Control, Worker};
use crate::bridge::event::{Event, Reading};
use crate::client::push::{parse_template, PushError, Receiver};
use crate::client::{json, Endpoint, SerialTransport, Transport};
use crate::clock::now_ms;
use crate::cosem::Obis;
use crate::status::state::MeterState;
use log::{info, warn};
use serde_json::Map;
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
        let keys = match (&self.config.encryption_key, &self.config.authentication_key) {
            (Some(ek), Some(ak)) => Some((
                crate::dlms::security::Keys {
                    block_cipher: ek.0,
                    authentication: ak.0,
                },
                self.config.system_title,
            )),
            _ => None,
        };
        let template = self
            .config
            .push_template
            .as_deref()
            .map(parse_template)
            .transpose()
            .unwrap_or_default()
            .unwrap_or_default();
        let mut receiver = Receiver::new(keys, template, self.config.utc_offset_min);
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
                        if !self.deliver_pushed(pushed.time_s, pushed.values) {
                            return;
                        }
                    }
                    Err(e) => self.refused(&e, &mut last_logged),
                }
            }
        }
        info!("meter {name:?}: stopped");
    }

    /// A notification's values as a reading; `false` when the bridge is stopping.
    fn deliver_pushed(
        &self,
        time_s: Option<i64>,
        values: Vec<(Obis, crate::client::reads::Value)>,
    ) -> bool {
        let now = now_ms();
        let ts_ms = match time_s {
            Some(t) => t * 1000,
            None if self.status.gateway_clock.trusted(now) => now,
            // No time of its own and ours is not set: nothing to stamp it with.
            None => return true,
        };
        let mut map = Map::new();
        for (obis, v) in values {
            map.insert(self.key_for(obis), json::value(&v).0);
        }
        let latest = map.clone();
        let name = &self.config.name;
        if self
            .events
            .send(Event::Reading(Reading {
                device: name.clone(),
                ts_ms,
                values: map,
            }))
            .is_err()
        {
            return false;
        }
        self.status.update_meter(name, |m| {
            m.state = MeterState::Polling;
            m.cycles += 1;
            m.successes += 1;
            m.consecutive_failures = 0;
            m.readings_sent += 1;
            m.last_success_ms = Some(ts_ms);
            m.last_values = latest;
            m.last_error = None;
        });
        true
    }

    /// The telemetry key of a pushed OBIS code: the meter's measurement for it (the value
    /// group B, the channel, may differ: HAN lists use 1-1:, measurements 1-0:), else the
    /// bridge's name for it, else the code.
    fn key_for(&self, obis: Obis) -> String {
        let same_quantity = |a: Obis, b: Obis| {
            let (mut x, mut y) = (a.0, b.0);
            x[1] = 0;
            y[1] = 0;
            x == y
        };
        self.config
            .measurements
            .iter()
            .find(|m| m.obis == obis)
            .or_else(|| {
                self.config
                    .measurements
                    .iter()
                    .find(|m| same_quantity(m.obis, obis))
            })
            .map(|m| m.key.clone())
            .or_else(|| crate::config::profile::well_known_key(obis).map(str::to_string))
            .unwrap_or_else(|| obis.to_string())
    }

    fn refused(&self, e: &PushError, last: &mut Option<(String, Instant)>) {
        let name = &self.config.name;
        self.status.update_meter(name, |m| {
            m.cycles += 1;
            m.failures += 1;
            if matches!(e, PushError::Replayed { .. }) {
                m.net.stale += 1;
            }
        });
        self.note_failure(&e.to_string(), last);
    }

    /// Reported in the status; logged once a minute per kind of message.
    fn note_failure(&self, what: &str, last: &mut Option<(String, Instant)>) {
        let name = &self.config.name;
        self.status.update_meter(name, |m| {
            m.last_error = Some(what.to_string());
            if m.successes == 0 {
                m.state = MeterState::Connecting;
            }
        });
        let kind: String = what.chars().take(24).collect();
        let due = last.as_ref().map_or(true, |(k, t)| {
            *k != kind || t.elapsed() >= Duration::from_secs(60)
        });
        if due {
            warn!("meter {name:?}: {what}");
            *last = Some((kind, Instant::now()));
        }
    }
}
