//! The alarm thread: once a second it looks at the status, raises and clears alarms
//! (`crate::alarm`), writes changes to SQLite and tells ThingsBoard: a meter's alarm as
//! telemetry of that meter through the outbox (durable, like a reading), the gateway's on the
//! gateway's own device (gateway mode; queued in memory until the broker is back).

use super::event::{Event, Reading};
use super::meter::SharedSettings;
use super::mqtt::ToPublisher;
use crate::alarm::book::{AlarmBook, Transition};
use crate::alarm::watch::{GatewayView, Limits, MeterView, Watch};
use crate::alarm::Alarm;
use crate::clock::now_ms;
use crate::status::state::{MeterState, Status};
use crate::store::Store;
use crossbeam_channel::Sender;
use log::{info, warn};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_secs(1);
/// Active alarms' last-seen times reach the database this often (not every second: SD cards).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

pub struct AlarmThread {
    pub store: Store,
    pub status: Arc<Status>,
    pub events: Sender<Event>,
    pub to_publisher: Sender<ToPublisher>,
    pub settings: SharedSettings,
}

impl AlarmThread {
    /// Loads the stored alarms into the status and starts watching.
    pub fn start(self, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
        match self.store.alarms() {
            Ok(stored) => self.status.with_alarms(|b| *b = AlarmBook::with(stored)),
            Err(e) => warn!("alarms: reading the stored alarms: {e}; starting with none"),
        }
        std::thread::Builder::new()
            .name("alarms".into())
            .stack_size(256 * 1024)
            .spawn(move || self.run(&stop))
    }

    fn run(mut self, stop: &AtomicBool) {
        let mut watch = Watch::default();
        let mut last_touch = Instant::now();
        let mut write_failing = false;
        while !stop.load(Ordering::Relaxed) {
            let now = now_ms();
            let (meters, gateway, limits) = self.look();
            let verdict = watch.observe(&meters, &gateway, limits, now);
            let (transitions, changed, pruned) = self.status.with_alarms(|b| {
                let t = b.apply(&verdict, now);
                if last_touch.elapsed() >= TOUCH_EVERY {
                    b.touch_active();
                    last_touch = Instant::now();
                }
                let (changed, pruned) = b.take_changes();
                (t, changed, pruned)
            });
            for t in transitions {
                self.tell(&t);
            }
            if !changed.is_empty() || !pruned.is_empty() {
                match self.store.save_alarms(&changed, &pruned) {
                    Ok(()) => write_failing = false,
                    Err(e) => {
                        // Kept in memory (the page and API still show them); written when the
                        // database takes writes again.
                        if !write_failing {
                            warn!("alarms: cannot be written to the database: {e}; kept in memory");
                        }
                        write_failing = true;
                        self.status.with_alarms(|b| b.put_back(&changed, pruned));
                    }
                }
            }
            std::thread::sleep(TICK);
        }
    }

    fn look(&self) -> (Vec<MeterView>, GatewayView, Limits) {
        let meters = self.status.with_meters(|all| {
            all.iter()
                .map(|(name, m)| MeterView {
                    name: name.clone(),
                    disabled: m.state == MeterState::Disabled,
                    breaker_open: m.state == MeterState::BreakerOpen,
                    interval_s: m.interval_s.max(1),
                    last_success_ms: m.last_success_ms,
                    last_error: m.last_error.clone(),
                    rejected: m.rejected.clone(),
                    profile_error: m.profile_error.clone(),
                    rejections: m.rejections,
                    clock_drift_s: m.clock_drift_s,
                })
                .collect()
        });
        let p = self.status.publisher();
        let s = self.settings.read().unwrap_or_else(|e| e.into_inner());
        let gateway = GatewayView {
            publishing: !self.status.publishing_disabled.load(Ordering::Relaxed),
            connected: p.connected,
            unsent: p.outbox_rows + p.in_memory,
            outbox_max_rows: s.outbox_max_rows,
            dropped: p.dropped,
            commit_error: p.commit_error.clone(),
        };
        let limits = Limits {
            publisher_offline_s: s.alarm_publisher_offline_s,
            clock_drift_s: s.alarm_clock_drift_s,
        };
        (meters, gateway, limits)
    }

    /// The log and ThingsBoard.
    fn tell(&self, t: &Transition) {
        let (a, raised): (&Alarm, bool) = match t {
            Transition::Raised(a) => (a, true),
            Transition::Cleared(a) => (a, false),
        };
        let subject = a
            .meter
            .as_deref()
            .map_or("gateway".to_string(), |m| format!("meter {m:?}"));
        if raised {
            warn!(
                "alarm {} raised: {subject} {} ({}): {}",
                a.id,
                a.kind.as_str(),
                a.severity.as_str(),
                a.detail
            );
        } else {
            info!("alarm {} cleared: {subject} {}", a.id, a.kind.as_str());
        }
        let ts_ms = if raised {
            a.first_seen_ms
        } else {
            a.cleared_ms.unwrap_or(a.last_seen_ms)
        };
        match &a.meter {
            Some(meter) => {
                let reading = Event::Reading(Reading {
                    device: meter.clone(),
                    ts_ms,
                    values: a.telemetry(),
                });
                if self
                    .events
                    .send_timeout(reading, Duration::from_secs(5))
                    .is_err()
                {
                    warn!(
                        "alarm {}: the outbox did not take its telemetry within 5 s",
                        a.id
                    );
                }
            }
            None => {
                let payload = serde_json::json!({"ts": ts_ms, "values": a.telemetry()});
                let _ = self
                    .to_publisher
                    .send(ToPublisher::OwnTelemetry(payload.to_string()));
            }
        }
    }
}
