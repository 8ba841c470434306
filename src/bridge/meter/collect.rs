//! What a meter's thread does after a poll, on the same association, while the next poll is
//! not due: the clock check and profile collection (`clock.rs`, `profiles.rs`).

use super::profiles::{Chunk, Cursors, Limits};
use super::{Assoc, Worker};
use crate::bridge::event::{Event, ProfileCursor};
use crate::client::{ClientError, Connection, Transport};
use crate::clock::now_ms;
use crate::store::Store;
use log::warn;
use std::path::Path;
use std::time::{Duration, Instant};

/// Cursors from the database (read once per profile and thread).
struct DbCursors<'a>(&'a Path);

impl Cursors for DbCursors<'_> {
    fn load(&self, meter: &str, profile: &str) -> Option<i64> {
        match Store::open(self.0).and_then(|s| s.profile_cursor(meter, profile)) {
            Ok(c) => c,
            Err(e) => {
                warn!(
                    "meter {meter:?}: profile {profile}: reading its cursor: {e}; starting afresh"
                );
                None
            }
        }
    }
}

impl Worker {
    /// The meter's clock check, when due: the drift goes with this poll's reading as
    /// `clock_drift_s` and to the status.
    pub(super) fn check_clock(
        &mut self,
        c: &mut Connection<Box<dyn Transport>>,
    ) -> Result<Option<i64>, ClientError> {
        let interval = {
            let s = self.settings.read().unwrap_or_else(|e| e.into_inner());
            Duration::from_secs(s.clock_check_interval_s)
        };
        let Some(check) = self
            .clock
            .check(c, &self.config, interval, || now_ms() / 1000)?
        else {
            return Ok(None);
        };
        let shown = check.synced_to.unwrap_or(check.drift_s);
        self.status
            .update_meter(&self.config.name, |m| m.clock_drift_s = Some(shown));
        Ok(Some(check.drift_s))
    }

    /// Profile chunks until the profiles are up to date or the next poll (or a stop, an
    /// update, an RPC) is near. `Err`: the link failed, as in a poll. `false` in the `Ok`: the
    /// bridge is stopping.
    pub(super) fn after_poll(
        &mut self,
        assoc: &mut Assoc,
        next_poll: Instant,
    ) -> Result<bool, ClientError> {
        let Some(c) = assoc.conn.as_mut() else {
            return Ok(true);
        };
        let limits = {
            let s = self.settings.read().unwrap_or_else(|e| e.into_inner());
            Limits::of(&s)
        };
        if self.collector.is_empty() {
            return Ok(true);
        }
        let cursors = DbCursors(&self.db);
        let mut round = Duration::ZERO;
        while self.collector.due(Instant::now())
            && Instant::now() + round < next_poll
            && self.control.is_empty()
            && self.rpc.is_empty()
        {
            let t0 = Instant::now();
            let chunks =
                self.collector
                    .collect(c, &mut assoc.cache, &cursors, limits, now_ms() / 1000)?;
            round = t0.elapsed();
            for chunk in chunks {
                if !self.send_chunk(chunk) {
                    return Ok(false);
                }
            }
        }
        // A profile that is not one (or not readable) shows on the card and as an alarm,
        // not only once in the log (issue 25).
        let refused = self.collector.refused();
        self.status
            .update_meter(&self.config.name, |m| m.profile_error = refused);
        Ok(true)
    }

    fn send_chunk(&self, chunk: Chunk) -> bool {
        let name = &self.config.name;
        let rows = chunk.rows.len() as u64;
        self.status.update_meter(name, |m| {
            let p = m.profiles.entry(chunk.profile.clone()).or_default();
            p.newest_row_s = Some(chunk.cursor);
            p.rows += rows;
        });
        // Blocks while the outbox thread is behind: backpressure, not loss.
        self.events
            .send(Event::ProfileRows {
                rows: chunk.rows,
                cursor: ProfileCursor {
                    meter: name.clone(),
                    profile: chunk.profile,
                    last_ts: chunk.cursor,
                },
            })
            .is_ok()
    }
}
