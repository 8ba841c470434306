//! The schedule every polled meter shares, DLMS or readout: sleep until the next slot, take
//! up live changes, hand RPCs and due slots to the meter's kind, count skipped slots, hold
//! while the breaker is open. Written once: the readout worker had repeated it (duplicates).

use super::poll::{PollCycle, Step};
use super::{Wake, Worker};
use crate::bridge::rpc::RpcCall;
use crate::status::state::MeterState;
use std::time::Instant;

/// What a slot's work says of the loop.
pub(super) enum Flow {
    Next,
    /// The bridge is going down (the publisher's channel closed).
    Stop,
}

impl Worker {
    /// The meter's schedule from now, its jitter seeded by its name (meters started together
    /// do not retry together).
    pub(super) fn new_cycle(&self) -> PollCycle {
        let seed = self
            .config
            .name
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        PollCycle::new(Instant::now(), super::interval_of(&self.config), seed)
    }

    /// Runs the schedule until the worker is stopped or `slot` says [`Flow::Stop`]. `state`
    /// is what the RPCs and the slots of one meter kind share (its association, its target).
    pub(super) fn drive<S>(
        &mut self,
        cycle: &mut PollCycle,
        state: &mut S,
        mut rpc: impl FnMut(&mut Self, &mut S, RpcCall, &mut PollCycle),
        mut slot: impl FnMut(&mut Self, &mut S, &mut PollCycle, Step) -> Flow,
    ) {
        let name = self.config.name.clone();
        loop {
            match self.sleep_until(cycle.wake_at()) {
                Wake::Due => {}
                Wake::Stop => return,
                Wake::Update(config) => {
                    self.apply_live(*config, cycle);
                    continue;
                }
                Wake::Rpc(call) => {
                    rpc(self, state, call, cycle);
                    continue;
                }
            }
            let begun = cycle.begin(Instant::now());
            if begun.skipped > 0 {
                self.status
                    .update_meter(&name, |m| m.skipped_slots += begun.skipped);
            }
            if begun.step == Step::Paused {
                self.set_state(MeterState::BreakerOpen);
                continue;
            }
            self.status.update_meter(&name, |m| m.cycles += 1);
            if let Flow::Stop = slot(self, state, cycle, begun.step) {
                return;
            }
        }
    }
}
