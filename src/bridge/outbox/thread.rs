//! The outbox thread: the single writer of the SQLite outbox, and the only place a reading is
//! *accepted*. It takes readings from the meters' channel, commits them in groups, deletes what
//! the broker acknowledged, and hands work to the publisher thread. It never calls the MQTT
//! library, so a broker that hangs, refuses or disappears cannot delay a commit: the loss window
//! on a crash is `outbox.commit_interval_ms`, whatever the network does.
//!
//! The decisions are [`Queue`]'s (pure, unit-tested); this file is the I/O around them.

use super::queue::{Limits, Queue};
use crate::bridge::event::{Event, ProfileCursor};
use crate::bridge::mqtt::{FromPublisher, ToPublisher};
use crate::clock::now_ms;
use crate::config::settings::BridgeSettings;
use crate::status::state::Status;
use crate::store::{outbox, Store, StoreError};
use crossbeam_channel::{never, select, Receiver, Sender};
use log::{error, info, warn};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a stopping bridge keeps handing the backlog to a connected publisher.
const FINAL_FLUSH: Duration = Duration::from_secs(2);
/// Longest sleep of the loop (settings reload, status refresh).
const TICK: Duration = Duration::from_millis(500);

pub struct OutboxThread {
    store: Store,
    settings: Arc<BridgeSettings>,
    status: Arc<Status>,
    queue: Queue,
    connected: bool,
    to_publisher: Sender<ToPublisher>,
    last_error_logged: Option<Instant>,
    last_quarantine: Option<Instant>,
    /// Profile cursors waiting for their rows to leave memory: (last row's acceptance
    /// number, cursor).
    cursors: std::collections::VecDeque<(u64, ProfileCursor)>,
    newest_stored: i64,
    newest_stored_at: Option<Instant>,
}

/// The counter holding the newest trusted reading time (Unix ms).
pub const NEWEST_READING: &str = "newest_reading_ms";

fn limits(s: &BridgeSettings) -> Limits {
    Limits {
        commit_interval: Duration::from_millis(s.commit_interval_ms),
        batch_max: s.batch_max_readings,
        write_behind: s.outbox_write_behind,
        max_outstanding: s.batch_max_readings.clamp(1, 2000),
    }
}

/// A damaged outbox (SQLITE_CORRUPT: a bad SD card sector, a torn write on a cheap card) is
/// replaced at once by a fresh one holding every reading that can still be read; the readings
/// on damaged pages are counted as dropped and logged. The alternative, exiting so that the
/// service manager restarts the bridge, would only repeat: the damage stays in the file.
fn quarantine(store: &mut Store, status: &Status, e: &StoreError) -> bool {
    let now_s = now_ms() / 1000;
    match store.outbox_quarantine(now_s) {
        Ok(q) => {
            error!(
                "outbox: the database file is damaged ({e}): {} reading(s) moved to a fresh outbox, {} lost on damaged pages{}",
                q.kept,
                q.lost,
                q.left_as.map_or(String::new(), |t| format!(
                    " (the damaged table is kept as {t}; the file should be replaced when convenient)"
                ))
            );
            status.update_publisher(|p| p.dropped += q.lost);
            true
        }
        Err(e2) => {
            error!("outbox: the database file is damaged ({e}) and the outbox could not be rebuilt ({e2}); readings are kept in memory");
            false
        }
    }
}

impl OutboxThread {
    pub fn new(
        store: Store,
        status: Arc<Status>,
        to_publisher: Sender<ToPublisher>,
    ) -> crate::store::Result<OutboxThread> {
        let mut store = store;
        let stats = match store.outbox_stats() {
            Err(e) if outbox::is_corrupt(&e) => {
                quarantine(&mut store, &status, &e);
                store.outbox_stats()?
            }
            other => other?,
        };
        let settings = store.settings()?;
        status.max_unsent_age_s.store(
            settings.health_max_unsent_age_s,
            std::sync::atomic::Ordering::Relaxed,
        );
        let c = OutboxThread {
            settings: Arc::new(settings),
            store,
            status,
            queue: Queue::new(stats.rows, stats.oldest_ts_ms),
            connected: false,
            to_publisher,
            last_error_logged: None,
            last_quarantine: None,
            cursors: std::collections::VecDeque::new(),
            newest_stored: 0,
            newest_stored_at: None,
        };
        c.publish_status();
        Ok(c)
    }

    /// `settings`: the supervisor's, on every configuration change.
    pub fn run(
        mut self,
        events: Receiver<Event>,
        answers: Receiver<FromPublisher>,
        settings: Receiver<Arc<BridgeSettings>>,
    ) {
        let mut last_tick = Instant::now();
        let mut closing_since: Option<Instant> = None;
        loop {
            let l = limits(&self.settings);
            let now = Instant::now();
            let wake = self
                .queue
                .next_commit_at(&l)
                .map_or(TICK, |t| t.saturating_duration_since(now))
                .min(TICK);
            let readings = if closing_since.is_none() && self.queue.has_room(&l) {
                &events
            } else {
                &never()
            };
            select! {
                recv(readings) -> ev => match ev {
                    Ok(ev) => self.accept(ev),
                    Err(_) => closing_since = Some(Instant::now()),
                },
                recv(answers) -> a => match a {
                    Ok(a) => self.take_answer(a),
                    // The publisher is gone: nothing will be acknowledged any more.
                    Err(_) => {
                        if closing_since.is_none() {
                            error!("outbox: the publisher thread ended; readings are kept in the outbox");
                        }
                        self.connected = false;
                        self.queue.publisher_reset();
                    }
                },
                recv(settings) -> s => if let Ok(s) = s { self.configure(s) },
                default(wake) => {}
            }
            // Take what else is waiting without blocking, up to a batch.
            while closing_since.is_none() && self.queue.has_room(&l) {
                match events.try_recv() {
                    Ok(ev) => self.accept(ev),
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        closing_since = Some(Instant::now());
                        break;
                    }
                }
            }
            while let Ok(a) = answers.try_recv() {
                self.take_answer(a);
            }
            if last_tick.elapsed() >= TICK {
                self.reload();
                last_tick = Instant::now();
            }
            let now = Instant::now();
            if self.queue.commit_due(now, &l) {
                self.commit(now);
            }
            self.delete_acknowledged();
            self.store_cursors();
            if self.queue.probe_due(now) {
                self.probe_disk(now);
            }
            self.hand_out_work(&l);
            self.publish_status();
            if let Some(since) = closing_since {
                // Stopping: everything in memory goes to disk now (unless a failed commit is
                // backing off); then the publisher gets a short while to drain, only if it is
                // connected.
                if self.queue.commit_allowed(now) {
                    self.commit(now);
                }
                let drained = self.queue.rows == 0 && self.queue.in_memory() == 0;
                if drained || !self.connected || since.elapsed() >= FINAL_FLUSH {
                    if self.queue.in_memory() > 0 {
                        // Last chance, whatever the backoff.
                        self.commit(Instant::now());
                    }
                    self.delete_acknowledged();
                    self.store_cursors();
                    break;
                }
            }
        }
        let _ = self.to_publisher.send(ToPublisher::Stop);
        self.store_newest_reading(true);
        self.refresh_row_stats();
        self.publish_status();
        info!(
            "outbox: stopped, {} reading(s) kept in the outbox{}",
            self.queue.rows,
            if self.queue.in_memory() > 0 {
                format!(
                    ", {} LOST (the outbox could not be written)",
                    self.queue.in_memory()
                )
            } else {
                String::new()
            }
        );
    }

    fn accept(&mut self, ev: Event) {
        if let Event::Reading(r) = &ev {
            // A live reading's time, if the gateway's clock agreed with it: the floor below
            // which the clock is known to be wrong (gateway_clock.rs).
            if r.ts_ms <= now_ms() + 60_000 {
                self.status.gateway_clock.observed(r.ts_ms);
            }
        }
        let (entries, cursor) = ev.into_entries();
        let now = Instant::now();
        for e in entries {
            self.queue.accept(e, now);
        }
        if let Some(c) = cursor {
            // A chunk without rows moves nothing; its cursor is stored as soon as due.
            let after = self.queue.last_accepted().unwrap_or(0);
            self.cursors.push_back((after, c));
        }
    }

    /// Stores the cursors whose rows have all left memory (committed or acknowledged), in
    /// order; a failed write keeps them for the next pass.
    fn store_cursors(&mut self) {
        let ready = self
            .cursors
            .iter()
            .take_while(|(seq, _)| self.queue.left_memory(*seq))
            .count();
        if ready == 0 {
            return;
        }
        let batch: Vec<(String, String, i64)> = self
            .cursors
            .iter()
            .take(ready)
            .map(|(_, c)| (c.meter.clone(), c.profile.clone(), c.last_ts))
            .collect();
        match self.store.set_profile_cursors(&batch) {
            Ok(()) => {
                self.cursors.drain(..ready);
            }
            Err(e) => {
                if self.should_log_error() {
                    warn!("outbox: storing profile cursors (retrying): {e}");
                }
            }
        }
    }

    fn take_answer(&mut self, a: FromPublisher) {
        match a {
            FromPublisher::Answers(list) => {
                for (key, outcome) in list {
                    self.queue.answered(key, outcome);
                }
            }
            FromPublisher::Unpark => self.queue.unpark(),
            FromPublisher::Connected(up) => {
                self.connected = up;
                if !up {
                    // The publisher returned (as Retry) whatever it held.
                    self.queue.publisher_reset();
                }
            }
        }
    }

    /// Keeps the newest trusted reading time in the database (once a minute and at stop), for
    /// the clock check after a restart.
    fn store_newest_reading(&mut self, force: bool) {
        let newest = self.status.gateway_clock.newest_ms();
        let due = force
            || self
                .newest_stored_at
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
        if newest > self.newest_stored && due {
            if self
                .store
                .raise_counter(NEWEST_READING, newest.max(0) as u64)
                .is_ok()
            {
                self.newest_stored = newest;
            }
            self.newest_stored_at = Some(Instant::now());
        }
    }

    fn reload(&mut self) {
        self.store_newest_reading(false);
        self.refresh_row_stats();
    }

    /// A configuration change: new limits, and parked readings may be deliverable now.
    fn configure(&mut self, settings: Arc<BridgeSettings>) {
        self.status.max_unsent_age_s.store(
            settings.health_max_unsent_age_s,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.settings = settings;
        self.queue.unpark();
    }

    /// The count and the oldest row, as the store sees them (corrects what the queue tracks).
    /// Once per 30 s: a full disk must not fill the log too.
    fn should_log_error(&mut self) -> bool {
        let due = self
            .last_error_logged
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(30));
        if due {
            self.last_error_logged = Some(Instant::now());
        }
        due
    }

    /// After failed commits, a write that succeeded ends the failing state.
    fn writes_work_again(&mut self, how: &str) {
        if self.queue.commit_failing() {
            self.queue.write_succeeded();
            self.status.update_publisher(|p| p.commit_error = None);
            info!("outbox: commits work again ({how} succeeded)");
        }
    }

    /// Commits are failing and nothing waits to be committed: a small write tells whether
    /// the disk takes writes again.
    fn probe_disk(&mut self, now: Instant) {
        match self.store.outbox_probe_write(now_ms()) {
            Ok(()) => self.writes_work_again("a test write"),
            Err(_) => self.queue.commit_failed(now),
        }
    }

    /// A damaged outbox behind `e` is rebuilt (`quarantine`); true if that was the error and
    /// it was handled. At most one rebuild a minute: damage that comes back at once (a failing
    /// card) must not turn into a loop of rebuilds; meanwhile the readings stay in memory and
    /// the error is reported as any other.
    fn rebuilt_if_damaged(&mut self, e: &StoreError) -> bool {
        let due = self
            .last_quarantine
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
        if !(outbox::is_corrupt(e) && due) {
            return false;
        }
        self.last_quarantine = Some(Instant::now());
        if quarantine(&mut self.store, &self.status, e) {
            self.refresh_row_stats();
        }
        true
    }

    fn refresh_row_stats(&mut self) {
        if let Ok(s) = self.store.outbox_stats() {
            self.queue.rows = s.rows;
            self.queue.oldest_row_ts_ms = s.oldest_ts_ms;
        }
    }

    fn commit(&mut self, now: Instant) {
        let batch = self.queue.commit_batch();
        match self.store.outbox_insert(&batch, &self.settings, now_ms()) {
            Ok(out) => {
                if out.dropped_full + out.dropped_age > 0 {
                    warn!(
                        "outbox bound reached: dropped {} reading(s) (full, policy {:?}) and {} (older than {} s)",
                        out.dropped_full, self.settings.outbox_full_policy, out.dropped_age, self.settings.outbox_max_age_s
                    );
                    self.status
                        .update_publisher(|p| p.dropped += out.dropped_full + out.dropped_age);
                }
                let was_failing = self.queue.commit_failing();
                self.queue.committed(&out.ids);
                if self.queue.oldest_row_ts_ms.is_none() {
                    self.queue.oldest_row_ts_ms = Some(now_ms());
                }
                if out.dropped_full + out.dropped_age > 0 {
                    self.refresh_row_stats();
                }
                // (publish_status clears the reported error now that commits work.)
                if was_failing {
                    info!(
                        "outbox: commits work again ({} reading(s) committed)",
                        batch.len()
                    );
                }
            }
            Err(e) => {
                self.queue.commit_failed(now);
                if self.rebuilt_if_damaged(&e) {
                    return;
                }
                if self.should_log_error() {
                    error!(
                        "outbox commit failed ({} reading(s) kept in memory, retrying; published from memory while connected): {e}",
                        batch.len()
                    );
                }
                let msg = e.to_string();
                self.status.update_publisher(|p| p.commit_error = Some(msg));
            }
        }
    }

    fn delete_acknowledged(&mut self) {
        if self.queue.deletes().is_empty() {
            return;
        }
        let ids = self.queue.deletes().to_vec();
        match self.store.outbox_delete(&ids) {
            Ok(n) => {
                self.queue.deleted(n);
                self.writes_work_again("deleting acknowledged readings");
            }
            // Kept as acknowledged (never offered again) and retried; said once per 30 s.
            Err(e) => {
                if !self.rebuilt_if_damaged(&e) && self.should_log_error() {
                    warn!(
                        "outbox: deleting {} acknowledged reading(s) (retrying): {e}",
                        ids.len()
                    );
                }
            }
        }
    }

    fn hand_out_work(&mut self, l: &Limits) {
        if !self.connected {
            return;
        }
        if let Some(n) = self.queue.rows_wanted(l) {
            match self.store.outbox_oldest(0, n) {
                Ok(rows) => {
                    let work = self.queue.offer_rows(rows, l);
                    self.send(work);
                }
                Err(e) => {
                    if !self.rebuilt_if_damaged(&e) {
                        warn!("outbox: reading the oldest readings: {e}");
                    }
                }
            }
        }
        let work = self.queue.offer_memory(l, self.connected);
        self.send(work);
    }

    fn send(&mut self, work: Vec<super::queue::WorkItem>) {
        if work.is_empty() {
            return;
        }
        if self.to_publisher.send(ToPublisher::Work(work)).is_err() {
            self.connected = false;
            self.queue.publisher_reset();
        }
    }

    fn publish_status(&self) {
        let (rows, memory, oldest, failing) = (
            self.queue.rows,
            self.queue.in_memory() as u64,
            self.queue.oldest_unsent_ts_ms(Instant::now(), now_ms()),
            self.queue.commit_failing(),
        );
        self.status.update_publisher(|p| {
            p.outbox_rows = rows;
            p.in_memory = memory;
            p.oldest_unsent_ms = oldest;
            if !failing {
                p.commit_error = None;
            }
        });
    }
}
