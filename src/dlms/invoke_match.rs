//! Which answers belong to a request, by invoke id (Green Book 9.3.x: the invoke-id of a
//! response is the request's). Two kinds of meter break the simple rule in opposite ways:
//!
//! - A late answer to a request we gave up on (its time-out passed) arrives while we wait for
//!   the next one: it carries the old request's id and must not be taken for the new answer.
//! - Some firmware answers every request with one fixed invoke id: waiting for "our" id means
//!   waiting for ever although the meter answered.
//!
//! So an answer with another id is dropped only when that id belongs to a request that went
//! unanswered in this association; any other id is taken as the answer to the one request
//! outstanding (confirmed services are sent one at a time) and reported, so the connection can
//! say once that the meter does this.

use super::xdlms::InvokeIdAndPriority;

/// The ids of requests that got no answer (bit n: invoke id n, 0..=15).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unanswered(u16);

impl Unanswered {
    /// A request with this id timed out: its answer, if it comes, is stale.
    pub fn abandon(&mut self, invoke: InvokeIdAndPriority) {
        self.0 |= 1 << (invoke.invoke_id() & 0x0F);
    }

    /// This id is used for a new request: answers with it are that request's again.
    pub fn reuse(&mut self, invoke: InvokeIdAndPriority) {
        self.0 &= !(1 << (invoke.invoke_id() & 0x0F));
    }

    fn contains(self, id: u8) -> bool {
        self.0 & (1 << (id & 0x0F)) != 0
    }
}

/// One request's view of the answers that come.
#[derive(Debug, Clone, Copy)]
pub struct InvokeMatch {
    own: InvokeIdAndPriority,
    stale: Unanswered,
    /// The id of an answer taken although it was not ours (fixed-id firmware).
    foreign: Option<u8>,
}

impl InvokeMatch {
    pub fn new(own: InvokeIdAndPriority, stale: Unanswered) -> InvokeMatch {
        InvokeMatch {
            own,
            stale,
            foreign: None,
        }
    }

    pub fn own(&self) -> InvokeIdAndPriority {
        self.own
    }

    /// Whether an answer carrying `got` is this request's.
    pub fn accepts(&mut self, got: InvokeIdAndPriority) -> bool {
        let id = got.invoke_id();
        if id == self.own.invoke_id() {
            return true;
        }
        if self.stale.contains(id) {
            return false;
        }
        self.foreign = Some(id);
        true
    }

    /// The id of an answer taken that was not this request's, if one was.
    pub fn foreign(&self) -> Option<u8> {
        self.foreign
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> InvokeIdAndPriority {
        InvokeIdAndPriority::new(n, true, true)
    }

    #[test]
    fn late_answers_are_dropped_and_fixed_ids_are_taken() {
        let mut unanswered = Unanswered::default();
        unanswered.abandon(id(3));
        let mut m = InvokeMatch::new(id(4), unanswered);
        assert!(!m.accepts(id(3)), "the late answer to request 3");
        assert_eq!(m.foreign(), None);
        assert!(m.accepts(id(4)));
        // A meter that answers everything with id 0.
        let mut m = InvokeMatch::new(id(5), unanswered);
        assert!(m.accepts(id(0)));
        assert_eq!(m.foreign(), Some(0));
        // Id 3 in use again: its answers are that request's.
        unanswered.reuse(id(3));
        assert!(InvokeMatch::new(id(3), unanswered).accepts(id(3)));
        assert!(InvokeMatch::new(id(6), unanswered).accepts(id(3)));
    }
}
