//! Connection slots of a listener open to the site LAN (the status page's gate, the push
//! listener), sans-I/O: who may come in when slots run short.
//!
//! A slot is *settled* once its connection has shown it is a real client (a complete request
//! at the gate; a notification one of our meters takes at the push listener), and *heard*
//! once its thread has seen its first bytes ([`wait_to_hear`] marks it before reading them,
//! so a client that has spoken never looks silent: in CI a scan request was read, not settled
//! yet, taken for idle and cut off by the flood from its own address). Connections that are
//! neither are what an unfriendly device makes for free, so they never lock anyone out:
//! - one address holds at most `per_address` unsettled slots; past that its own oldest
//!   unsettled connection gives way, unless that one came less than [`GRACE`] ago and has
//!   spoken (heard, or bytes wait unread in its socket, as the caller's `silent` says): then
//!   the newcomer is refused, never let past the share;
//! - when every slot is taken, the oldest silent connection of the address holding the most
//!   gives way (a client that connected a moment ago from elsewhere is the newest of an
//!   address holding one: the last to be chosen), or a heard one whose [`GRACE`] is over (a
//!   dribbling body). A silent one has no grace: with one, a flood of empty connections from
//!   a few addresses, 32 a second, kept every slot too young to free;
//! - settled connections, and connections whose bytes wait unread, are never evicted. When no
//!   slot can be freed the newcomer is refused.
//!
//! The caller keeps a handle per slot (a clone of the socket) and shuts the evicted ones down.

use std::net::IpAddr;
use std::time::{Duration, Instant};

pub type SlotId = u64;

/// How long a connection that has spoken is safe from eviction by newcomers.
pub const GRACE: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Slot<H> {
    id: SlotId,
    address: IpAddr,
    since: Instant,
    heard: bool,
    settled: bool,
    handle: H,
}

/// What became of a newcomer.
#[derive(Debug)]
pub enum Admission<H> {
    /// In, in slot `id`; the connections in `evicted` lost their slots to it (shut them down).
    Admitted { id: SlotId, evicted: Vec<H> },
    /// Every slot is taken and none could be freed, or the address's share is taken by
    /// connections speaking this moment.
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
    pub fn admit(
        &mut self,
        address: IpAddr,
        handle: H,
        now: Instant,
        silent: impl Fn(&H) -> bool,
    ) -> Admission<H> {
        let mut evicted = Vec::new();
        let own = self
            .slots
            .iter()
            .filter(|s| !s.settled && s.address == address)
            .count();
        if own >= self.per_address {
            // Heard but not settled counts too, once its grace is over: frames nobody takes, a
            // body that never ends.
            let victim = self.oldest(|s| {
                let old = now.saturating_duration_since(s.since) >= GRACE;
                s.address == address && !s.settled && (old || !s.heard && silent(&s.handle))
            });
            match victim {
                Some(i) => evicted.push(self.slots.swap_remove(i).handle),
                // All of its share are speaking, just now: it waits its turn (it gets no more
                // than its share, whatever it sends).
                None => return Admission::Refused(handle),
            }
        }
        if self.slots.len() >= self.max {
            let evictable = |s: &Slot<H>| {
                let old = now.saturating_duration_since(s.since) >= GRACE;
                !s.settled && if s.heard { old } else { silent(&s.handle) }
            };
            let busiest = self.busiest(&evictable);
            match busiest.and_then(|a| self.oldest(|s| s.address == a && evictable(s))) {
                Some(i) => evicted.push(self.slots.swap_remove(i).handle),
                None => return Admission::Refused(handle),
            }
        }
        let id = self.next;
        self.next += 1;
        self.slots.push(Slot {
            id,
            address,
            since: now,
            heard: false,
            settled: false,
            handle,
        });
        Admission::Admitted { id, evicted }
    }

    /// What holds the slots, for a refusal's log line.
    pub fn census(&self, now: Instant, silent: impl Fn(&H) -> bool) -> String {
        let count = |f: &dyn Fn(&Slot<H>) -> bool| self.slots.iter().filter(|s| f(s)).count();
        let settled = count(&|s| s.settled);
        let heard = count(&|s| s.heard && !s.settled);
        let speaking = count(&|s| !s.heard && !s.settled && !silent(&s.handle));
        let young = count(&|s| !s.settled && now.saturating_duration_since(s.since) < GRACE);
        let mut by_address: Vec<(IpAddr, usize)> = Vec::new();
        for s in &self.slots {
            match by_address.iter_mut().find(|(a, _)| *a == s.address) {
                Some((_, n)) => *n += 1,
                None => by_address.push((s.address, 1)),
            }
        }
        by_address.sort_by_key(|a| std::cmp::Reverse(a.1));
        let top: Vec<String> = by_address
            .iter()
            .take(3)
            .map(|(a, n)| format!("{n} from {a}"))
            .collect();
        format!(
            "{settled} settled, {heard} heard, {speaking} speaking, {young} new; {}",
            top.join(", ")
        )
    }

    /// The connection in `id` has spoken: its thread has its first bytes.
    pub fn heard(&mut self, id: SlotId) {
        if let Some(s) = self.slots.iter_mut().find(|s| s.id == id) {
            s.heard = true;
        }
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

    fn oldest(&self, which: impl Fn(&Slot<H>) -> bool) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| which(s))
            .min_by_key(|(_, s)| (s.since, s.id))
            .map(|(i, _)| i)
    }

    /// The address with the most `evictable` slots (ties: the one holding the oldest).
    fn busiest(&self, evictable: &impl Fn(&Slot<H>) -> bool) -> Option<IpAddr> {
        let mut counts: Vec<(IpAddr, usize, Instant)> = Vec::new();
        for s in self.slots.iter().filter(|s| evictable(s)) {
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

/// The slots of a listener's TCP connections, shared by its accept loop and connection
/// threads (the gate and the push listener).
#[cfg(feature = "runtime")]
pub type SharedSlots = std::sync::Arc<std::sync::Mutex<Slots<std::net::TcpStream>>>;

/// A new table of `max` slots, `per_address` for one address's unsettled connections.
#[cfg(feature = "runtime")]
pub fn shared(max: usize, per_address: usize) -> SharedSlots {
    std::sync::Arc::new(std::sync::Mutex::new(Slots::new(max, per_address)))
}

/// The table, whatever thread panicked holding it (each call leaves it consistent).
#[cfg(feature = "runtime")]
pub fn lock(table: &SharedSlots) -> std::sync::MutexGuard<'_, Slots<std::net::TcpStream>> {
    table.lock().unwrap_or_else(|e| e.into_inner())
}

/// What became of an accepted connection.
#[cfg(feature = "runtime")]
pub enum Entry {
    /// In, in slot `id`; `evicted` connections were shut down to make room.
    Admitted { id: SlotId, evicted: usize },
    /// No slot could be freed.
    Refused,
}

/// Takes a slot for `conn` from `peer`: the evicted connections are shut down here (their
/// threads see the end of their stream, and stop). `None`: the socket could not be cloned.
#[cfg(feature = "runtime")]
pub fn admit_connection(
    table: &SharedSlots,
    conn: &std::net::TcpStream,
    peer: IpAddr,
) -> Option<Entry> {
    let handle = conn.try_clone().ok()?;
    let admission = lock(table).admit(peer, handle, Instant::now(), silent);
    Some(match admission {
        Admission::Admitted { id, evicted } => {
            for e in &evicted {
                let _ = e.shutdown(std::net::Shutdown::Both);
            }
            Entry::Admitted {
                id,
                evicted: evicted.len(),
            }
        }
        Admission::Refused(_) => Entry::Refused,
    })
}

/// Waits, within `deadline`, for the first bytes of the connection in slot `id`, and marks it
/// heard before its thread reads them: between the moment they leave the socket and the moment
/// they make a request or a frame, the connection would otherwise look silent, and go to the
/// next newcomer from its address. `Ok(false)`: nothing came in time.
#[cfg(feature = "runtime")]
pub fn wait_to_hear(
    table: &SharedSlots,
    id: SlotId,
    tcp: &std::net::TcpStream,
    deadline: Instant,
) -> std::io::Result<bool> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Ok(false);
    }
    tcp.set_read_timeout(Some(left))?;
    match tcp.peek(&mut [0u8; 1]) {
        Ok(0) => Err(std::io::ErrorKind::UnexpectedEof.into()),
        Ok(_) => {
            lock(table).heard(id);
            Ok(true)
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Whether nothing has arrived on `tcp` yet that its thread has not read: a non-blocking
/// peek (MSG_DONTWAIT, so the connection's own blocking mode and time-outs are untouched).
/// An error or an end of stream counts as silent: such a connection has nothing to lose.
#[cfg(feature = "runtime")]
pub fn silent(tcp: &std::net::TcpStream) -> bool {
    use nix::sys::socket::{recv, MsgFlags};
    use std::os::unix::io::AsRawFd;
    let mut byte = [0u8; 1];
    !matches!(
        recv(
            tcp.as_raw_fd(),
            &mut byte,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT
        ),
        Ok(n) if n > 0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn admitted<H: std::fmt::Debug>(a: Admission<H>) -> (SlotId, Vec<H>) {
        match a {
            Admission::Admitted { id, evicted } => (id, evicted),
            Admission::Refused(_) => panic!("refused"),
        }
    }

    #[cfg(feature = "runtime")]
    #[test]
    fn a_socket_is_silent_until_bytes_wait_in_it() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let handle = accepted.try_clone().unwrap();
        assert!(silent(&handle));
        client.write_all(b"x").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!silent(&handle));
    }

    fn always(_: &&str) -> bool {
        true
    }

    #[test]
    fn a_flood_from_one_address_evicts_itself_not_the_others() {
        let t0 = Instant::now();
        let mut slots = Slots::new(8, 4);
        let (meter, _) = admitted(slots.admit(ip(1), "meter", t0, always));
        for i in 0..100u64 {
            let t = t0 + Duration::from_micros(i);
            let (_, evicted) = admitted(slots.admit(ip(66), "attacker", t, always));
            assert!(!evicted.contains(&"meter"));
        }
        assert!(
            slots.holds(meter),
            "the meter's fresh connection was evicted"
        );
        assert_eq!(slots.len(), 5, "the per-address share");
    }

    /// The same address as a flood: a client whose bytes wait in its socket, or that has been
    /// heard, stays; the silent ones go.
    #[test]
    fn a_client_speaking_from_a_flooding_address_stays() {
        let t0 = Instant::now();
        let mut slots = Slots::new(32, 4);
        let (monitor, _) = admitted(slots.admit(ip(1), "monitor", t0, always));
        let speaking = |h: &&str| *h != "monitor";
        for i in 0..50u64 {
            let t = t0 + Duration::from_micros(i);
            admitted(slots.admit(ip(1), "idle", t, speaking));
        }
        assert!(slots.holds(monitor), "its request was waiting to be read");
        slots.settle(monitor);
        for i in 0..50u64 {
            let t = t0 + Duration::from_millis(i);
            admitted(slots.admit(ip(1), "idle", t, always));
        }
        assert!(slots.holds(monitor), "settled");
        assert_eq!(slots.len(), 5, "the share, and the settled one");
    }

    /// A client whose request its thread has read (socket empty, not settled yet) stays while
    /// its own address floods, for its grace; then it is as evictable as the flood.
    #[test]
    fn a_client_whose_bytes_were_read_is_not_taken_for_idle() {
        let t0 = Instant::now();
        let mut slots = Slots::new(32, 4);
        let (monitor, _) = admitted(slots.admit(ip(1), "monitor", t0, always));
        slots.heard(monitor);
        for i in 0..50u64 {
            let t = t0 + Duration::from_micros(i);
            let _ = slots.admit(ip(1), "idle", t, always);
        }
        assert!(slots.holds(monitor), "read a moment ago, taken for idle");
        for i in 0..8u64 {
            let t = t0 + GRACE + Duration::from_micros(i);
            admitted(slots.admit(ip(1), "idle", t, always));
        }
        assert!(!slots.holds(monitor), "past its grace, unsettled: it goes");
    }

    /// The flood helper-4 found: empty connections from eight addresses, 100 a second, each
    /// held 3 s; a meter reconnecting for each push from its own address must get in.
    #[test]
    fn a_fast_flood_of_empty_connections_from_many_addresses_locks_nobody_out() {
        let t0 = Instant::now();
        let mut slots = Slots::new(32, 4);
        let mut meter_in = 0;
        for i in 0..3000u64 {
            let t = t0 + Duration::from_millis(10 * i);
            let _ = slots.admit(ip(2 + (i % 8) as u8), "flood", t, always);
            if i % 80 == 0 {
                if let Admission::Admitted { id, .. } = slots.admit(ip(1), "meter", t, always) {
                    meter_in += 1;
                    slots.heard(id);
                    slots.settle(id);
                    slots.release(id);
                }
            }
        }
        assert_eq!(meter_in, 38, "the meter got in every time");
    }

    #[test]
    fn when_full_the_busiest_address_loses_its_oldest_and_settled_ones_stay() {
        let t0 = Instant::now();
        let s = Duration::from_secs(2);
        let mut slots = Slots::new(4, 4);
        let (a, _) = admitted(slots.admit(ip(1), 1, t0, |_| true));
        slots.settle(a);
        let (b, _) = admitted(slots.admit(ip(2), 2, t0 + s, |_| true));
        let (c, _) = admitted(slots.admit(ip(3), 3, t0 + 2 * s, |_| true));
        let (d, _) = admitted(slots.admit(ip(3), 4, t0 + 3 * s, |_| true));
        let (_, evicted) = admitted(slots.admit(ip(4), 5, t0 + 4 * s, |_| true));
        assert_eq!(evicted, vec![3], "ip 3 holds two: its oldest goes");
        assert!(slots.holds(a) && slots.holds(b) && !slots.holds(c) && slots.holds(d));
        slots.settle(b);
        slots.settle(d);
        let (e, evicted) = admitted(slots.admit(ip(9), 6, t0 + 4 * s, |_| true));
        assert_eq!(
            evicted,
            vec![5],
            "the only unsettled one, silent: at any age"
        );
        slots.heard(e);
        assert!(
            matches!(
                slots.admit(ip(11), 7, t0 + 4 * s, |_| true),
                Admission::Refused(7)
            ),
            "heard a moment ago"
        );
        let (f, evicted) = admitted(slots.admit(ip(11), 7, t0 + 6 * s, |_| true));
        assert_eq!(evicted, vec![6], "heard, but slow past its grace");
        slots.settle(f);
        assert!(matches!(
            slots.admit(ip(12), 8, t0 + 7 * s, |_| true),
            Admission::Refused(8)
        ));
        slots.release(a);
        assert_eq!(slots.len(), 3);
        admitted(slots.admit(ip(12), 8, t0 + 8 * s, |_| true));
    }
}
