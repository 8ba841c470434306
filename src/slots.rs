//! Connection slots of a listener open to the site LAN (the status page's gate, the push
//! listener), sans-I/O: who may come in when every slot is taken.
//!
//! A slot is *settled* once its connection has shown it is a real client (a complete request
//! head and body at the gate; a notification one of our meters' keys or addresses accept at
//! the push listener). Unsettled connections are what an unfriendly device can make for free,
//! so they never lock anyone out:
//! - one address holds at most `per_address` unsettled slots; its next connection evicts its
//!   own oldest;
//! - when every slot is taken, a new connection evicts an unsettled one: the oldest of the
//!   address holding the most (so a flood from one host evicts itself, not the meter that
//!   connected a second ago from another);
//! - settled connections are never evicted; only when all slots are settled is a newcomer
//!   refused.
//!
//! The caller keeps a handle per slot (a clone of the socket) and shuts the evicted ones down.

use std::net::IpAddr;
use std::time::Instant;

pub type SlotId = u64;

#[derive(Debug)]
struct Slot<H> {
    id: SlotId,
    address: IpAddr,
    since: Instant,
    settled: bool,
    handle: H,
}

/// What became of a newcomer.
#[derive(Debug)]
pub enum Admission<H> {
    /// In, in slot `id`; the connections in `evicted` lost their slots to it (shut them down).
    Admitted { id: SlotId, evicted: Vec<H> },
    /// Every slot is held by a settled connection.
    Refused(H),
}

#[derive(Debug)]
pub struct Slots<H> {
    max: usize,
    per_address: usize,
    next: SlotId,
    slots: Vec<Slot<H>>,
}

impl<H> Slots<H> {
    pub fn new(max: usize, per_address: usize) -> Slots<H> {
        Slots {
            max: max.max(1),
            per_address: per_address.max(1),
            next: 0,
            slots: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Takes a slot for a connection from `address`, evicting as the module says.
    pub fn admit(&mut self, address: IpAddr, handle: H, now: Instant) -> Admission<H> {
        let mut evicted = Vec::new();
        let own_unsettled = self.unsettled_of(address);
        if own_unsettled >= self.per_address {
            if let Some(i) = self.oldest_unsettled(|a| a == address) {
                evicted.push(self.slots.swap_remove(i).handle);
            }
        }
        if self.slots.len() >= self.max {
            match self.busiest_address() {
                Some(busiest) => {
                    if let Some(i) = self.oldest_unsettled(|a| a == busiest) {
                        evicted.push(self.slots.swap_remove(i).handle);
                    }
                }
                None => return Admission::Refused(handle),
            }
        }
        let id = self.next;
        self.next += 1;
        self.slots.push(Slot {
            id,
            address,
            since: now,
            settled: false,
            handle,
        });
        Admission::Admitted { id, evicted }
    }

    /// The connection in `id` has shown it is a real client: it is never evicted.
    pub fn settle(&mut self, id: SlotId) {
        if let Some(s) = self.slots.iter_mut().find(|s| s.id == id) {
            s.settled = true;
        }
    }

    /// Whether `id` still holds its slot (it may have been evicted).
    pub fn holds(&self, id: SlotId) -> bool {
        self.slots.iter().any(|s| s.id == id)
    }

    /// The connection in `id` ended.
    pub fn release(&mut self, id: SlotId) {
        if let Some(i) = self.slots.iter().position(|s| s.id == id) {
            self.slots.swap_remove(i);
        }
    }

    fn unsettled_of(&self, address: IpAddr) -> usize {
        self.slots
            .iter()
            .filter(|s| !s.settled && s.address == address)
            .count()
    }

    fn oldest_unsettled(&self, of: impl Fn(IpAddr) -> bool) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.settled && of(s.address))
            .min_by_key(|(_, s)| (s.since, s.id))
            .map(|(i, _)| i)
    }

    /// The address with the most unsettled slots (ties: the one holding the oldest).
    fn busiest_address(&self) -> Option<IpAddr> {
        let mut counts: Vec<(IpAddr, usize, Instant)> = Vec::new();
        for s in self.slots.iter().filter(|s| !s.settled) {
            match counts.iter_mut().find(|(a, _, _)| *a == s.address) {
                Some((_, n, oldest)) => {
                    *n += 1;
                    *oldest = (*oldest).min(s.since);
                }
                None => counts.push((s.address, 1, s.since)),
            }
        }
        counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)))
            .map(|(a, _, _)| a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn admitted<H: std::fmt::Debug>(a: Admission<H>) -> (SlotId, Vec<H>) {
        match a {
            Admission::Admitted { id, evicted } => (id, evicted),
            Admission::Refused(_) => panic!("refused"),
        }
    }

    #[test]
    fn a_flood_from_one_address_evicts_itself_not_the_others() {
        let t0 = Instant::now();
        let mut slots = Slots::new(8, 4);
        let (meter, _) = admitted(slots.admit(ip(1), "meter", t0));
        for i in 0..100u32 {
            let t = t0 + Duration::from_millis(u64::from(i) + 1);
            let (_, evicted) = admitted(slots.admit(ip(66), "attacker", t));
            assert!(!evicted.contains(&"meter"));
        }
        assert!(
            slots.holds(meter),
            "the meter's fresh connection was evicted"
        );
        assert_eq!(slots.unsettled_of(ip(66)), 4, "the per-address cap");
    }

    #[test]
    fn when_full_the_busiest_address_loses_its_oldest_and_settled_ones_stay() {
        let t0 = Instant::now();
        let mut slots = Slots::new(4, 4);
        let (a, _) = admitted(slots.admit(ip(1), 1, t0));
        slots.settle(a);
        let (b, _) = admitted(slots.admit(ip(2), 2, t0 + Duration::from_millis(1)));
        let (c, _) = admitted(slots.admit(ip(3), 3, t0 + Duration::from_millis(2)));
        let (d, _) = admitted(slots.admit(ip(3), 4, t0 + Duration::from_millis(3)));
        let (_, evicted) = admitted(slots.admit(ip(4), 5, t0 + Duration::from_millis(4)));
        assert_eq!(evicted, vec![3], "ip 3 holds two: its oldest goes");
        assert!(slots.holds(a) && slots.holds(b) && !slots.holds(c) && slots.holds(d));
        for id in [b, d] {
            slots.settle(id);
        }
        let (e, evicted) = admitted(slots.admit(ip(9), 6, t0 + Duration::from_millis(5)));
        assert_eq!(evicted, vec![5], "the only unsettled one");
        slots.settle(e);
        assert!(matches!(
            slots.admit(ip(10), 7, t0 + Duration::from_millis(6)),
            Admission::Refused(7)
        ));
        slots.release(a);
        assert_eq!(slots.len(), 3);
        admitted(slots.admit(ip(10), 8, t0 + Duration::from_millis(7)));
    }
}
