//! The gateway as a ThingsBoard device of its own (gateway mode): its telemetry every
//! `thingsboard.stats_interval_s` (figures the driver collects), its alarms, its client
//! attributes on each connection, and `v1/gateway/disconnect` for meters that were removed or
//! disabled.

use super::core::{Command, Core, Device, OWN_TELEMETRY_QUEUE};
use super::session::SessionId;
use crate::config::settings::PublishMode;
use log::info;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const GATEWAY_DISCONNECT: &str = "v1/gateway/disconnect";
pub const OWN_TELEMETRY: &str = "v1/devices/me/telemetry";
pub const OWN_ATTRIBUTES: &str = "v1/devices/me/attributes";

/// The gateway's client attributes: who it is.
pub fn identity(hostname: &str) -> String {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "target": format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        "hostname": hostname,
    })
    .to_string()
}

impl Core {
    /// The gateway's alarms: kept (the newest [`OWN_TELEMETRY_QUEUE`]) until the gateway
    /// session is up. Device mode has no device for the gateway itself: the log and the page
    /// tell.
    pub(super) fn queue_own(&mut self, payload: String) {
        if self.settings.broker.mode != PublishMode::Gateway {
            return;
        }
        if self.own_pending.len() == OWN_TELEMETRY_QUEUE {
            self.own_pending.pop_front();
        }
        self.own_pending.push_back(payload);
    }

    /// What is due for the gateway's own device: its figures, its waiting alarms.
    pub(super) fn own_due(&mut self, now: Instant, out: &mut Vec<Command>) {
        if !self.gateway_up() {
            return;
        }
        while let Some(p) = self.own_pending.pop_front() {
            self.queue_control(&SessionId::Gateway, OWN_TELEMETRY, p, now);
        }
        let every = self.settings.stats_interval_s;
        if every > 0 && self.next_stats_at.is_some_and(|t| now >= t) {
            self.next_stats_at = Some(now + Duration::from_secs(every));
            out.push(Command::CollectStats);
        }
    }

    /// Meters that were announced and are now removed or disabled: `v1/gateway/disconnect`.
    pub(super) fn announce_gone(&mut self, devices: &BTreeMap<String, Device>, now: Instant) {
        let Some(s) = self.sessions.get_mut(&SessionId::Gateway) else {
            return;
        };
        let gone: Vec<String> = s
            .announced
            .iter()
            .filter(|d| !devices.get(*d).is_some_and(|x| x.enabled))
            .cloned()
            .collect();
        for d in &gone {
            s.announced.remove(d);
        }
        for d in gone {
            info!("publisher: meter {d:?} removed or disabled: announcing its disconnection");
            self.queue_control(
                &SessionId::Gateway,
                GATEWAY_DISCONNECT,
                json!({"device": d}).to_string(),
                now,
            );
        }
    }
}
