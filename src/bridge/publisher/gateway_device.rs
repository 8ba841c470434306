//! The gateway as a ThingsBoard device of its own (gateway mode): its telemetry every
//! `thingsboard.stats_interval_s`, its client attributes on each connection, and
//! `v1/gateway/disconnect` for meters that were removed or disabled.

use super::Publisher;
use crate::clock::now_ms;
use crate::status::state::MeterState;
use log::info;
use serde_json::json;
use std::collections::HashSet;
use std::time::Instant;

pub const GATEWAY_DISCONNECT: &str = "v1/gateway/disconnect";
const OWN_TELEMETRY: &str = "v1/devices/me/telemetry";
const OWN_ATTRIBUTES: &str = "v1/devices/me/attributes";

impl Publisher {
    /// Publishes on the gateway session if it is up (QoS 1; a message that finds it down is
    /// simply not sent: these are figures, not readings).
    fn publish_own(&self, topic: &str, payload: String) {
        self.publish_on(&None, topic, payload);
    }

    /// On each connection of the gateway session: who the gateway is.
    pub(super) fn gateway_attributes(&self) {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        self.publish_own(
            OWN_ATTRIBUTES,
            json!({
                "version": env!("CARGO_PKG_VERSION"),
                "target": format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
                "hostname": hostname,
            })
            .to_string(),
        );
    }

    /// The gateway's own telemetry, when due.
    pub(super) fn gateway_stats(&mut self) {
        let every = self.settings.stats_interval_s;
        if every == 0
            || self
                .last_stats
                .is_some_and(|t| t.elapsed().as_secs() < every)
        {
            return;
        }
        if !self.sessions.get(&None).is_some_and(|s| s.link.is_up()) {
            return;
        }
        self.last_stats = Some(Instant::now());
        let (configured, polling, failing) = self.status.with_meters(|m| {
            (
                m.len(),
                m.values()
                    .filter(|s| s.state == MeterState::Polling)
                    .count(),
                m.values().filter(|s| s.consecutive_failures > 0).count(),
            )
        });
        let p = self.status.publisher();
        let now = now_ms();
        self.publish_own(
            OWN_TELEMETRY,
            json!({
                "meters_configured": configured,
                "meters_polling": polling,
                "meters_failing": failing,
                "outbox_depth": p.outbox_rows + p.in_memory,
                "oldest_unsent_age_s": p.oldest_unsent_ms.map(|t| ((now - t) / 1000).max(0)),
                "readings_published": p.published_readings,
                "reconnects": p.reconnects,
                "dropped": p.dropped,
                "cpu_s": crate::procfs::cpu_seconds("self"),
                "rss_kib": crate::procfs::field("self", "status", "VmRSS:"),
                "uptime_s": self.status.started.elapsed().as_secs(),
            })
            .to_string(),
        );
    }

    pub(super) fn queue_own(&mut self, payload: String) {
        if self.settings.mode != crate::config::settings::PublishMode::Gateway {
            // Device mode has no device for the gateway itself: the log and the page tell.
            return;
        }
        if self.own_pending.len() == super::OWN_TELEMETRY_QUEUE {
            self.own_pending.pop_front();
        }
        self.own_pending.push_back(payload);
    }

    /// Sends what is waiting once the gateway session is up.
    pub(super) fn send_own(&mut self) {
        if self.own_pending.is_empty() || !self.sessions.get(&None).is_some_and(|s| s.link.is_up())
        {
            return;
        }
        while let Some(p) = self.own_pending.pop_front() {
            self.publish_own(OWN_TELEMETRY, p);
        }
    }

    /// Meters that were announced and are now removed or disabled: `v1/gateway/disconnect`.
    pub(super) fn announce_gone(&mut self, enabled: &HashSet<String>) {
        let Some(s) = self.sessions.get(&None) else {
            return;
        };
        let gone: Vec<String> = s
            .announced
            .iter()
            .filter(|d| !enabled.contains(*d))
            .cloned()
            .collect();
        for d in gone {
            info!("publisher: meter {d:?} removed or disabled: announcing its disconnection");
            self.publish_own(GATEWAY_DISCONNECT, json!({"device": d}).to_string());
            if let Some(s) = self.sessions.get_mut(&None) {
                s.announced.remove(&d);
            }
        }
    }
}
