//! The TCP listener for meters that push (IDIS/DSMR push setups, class 40): meters connect to
//! `push.listen` and send DATA-NOTIFICATIONs (wrapper or HDLC). A notification is for the
//! meter whose system title its ciphering names, else whose `push_address` its source address
//! is, else whose `logical_device_name` it carries (0-0:42.0.0); it is opened with that
//! meter's keys (a meter with keys takes nothing plain), replay-checked against the last
//! invocation counter taken (kept in the database, so a restart or an edit does not forget
//! it) and mapped like any pushed one.
//!
//! The listener is open to the site LAN, so nothing an unknown device does may lock a meter
//! out or fill the log:
//! - [`MAX_CONNECTIONS`] slots, [`MAX_UNIDENTIFIED_PER_ADDRESS`] per address until a
//!   connection has delivered a notification one of our meters takes; newcomers evict the
//!   unidentified (`crate::slots`), never an identified meter;
//! - an unidentified connection has [`FIRST_NOTIFICATION`] to deliver one, an identified one
//!   [`IDLE`] between them: bytes that are not a taken notification do not keep a slot;
//! - after a notification that is not taken a connection pauses [`REFUSED_PAUSE`];
//! - every warning is rate-limited per sender address or meter ("N more suppressed").

use super::reading;
use crate::bridge::event::Event;
use crate::client::push::{sender_title, Arrival, PushStream, Receiver};
use crate::config::values::Push;
use crate::config::MeterConfig;
use crate::log_throttle::{suppressed, Budget, Throttle};
use crate::slots::{lock, Entry, SharedSlots, SlotId};
use crate::status::state::Status;
use crate::store::Store;
use crossbeam_channel::Sender;
use log::{info, warn};
use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// Connections one address may hold before any of them delivered a notification we take:
/// room for a burst from several meters behind one address (a concentrator, a NAT router),
/// each safe from eviction for its grace once it has spoken; at 4 the fifth of five pushes
/// sent at once from one address was refused.
pub const MAX_UNIDENTIFIED_PER_ADDRESS: usize = 8;
/// The time a new connection has to deliver a notification one of our meters takes.
pub const FIRST_NOTIFICATION: Duration = Duration::from_secs(30);
/// The longest gap between taken notifications on one connection.
pub const IDLE: Duration = Duration::from_secs(300);
/// A connection pauses this long after a notification that was not taken (unknown sender,
/// refused): a flood of bad tags costs the gateway ten decryptions a second per connection,
/// and the other connections get the registry.
pub const REFUSED_PAUSE: Duration = Duration::from_millis(100);
/// How often a connection's thread looks up from its socket (stop, eviction, deadline).
const POLL: Duration = Duration::from_secs(1);
/// One warning per sender (or meter) and kind this often, with the count held back.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Warnings of the listener in all per [`WARN_EVERY`], whatever the number of senders.
const WARN_LINES: u32 = 20;

/// The meters that push over TCP, with their receive state (replay counters).
pub struct PushMeters {
    meters: HashMap<String, (MeterConfig, Receiver)>,
    /// Where the last taken invocation counters are kept (None: in memory only).
    store: Option<Store>,
    max_skew_s: u64,
    warnings: Throttle<(&'static str, String)>,
    /// All of them together: at most [`WARN_LINES`] per [`WARN_EVERY`].
    budget: Budget,
}

impl Default for PushMeters {
    fn default() -> Self {
        PushMeters {
            meters: HashMap::new(),
            store: None,
            max_skew_s: 300,
            warnings: Throttle::new(WARN_EVERY),
            budget: Budget::new(WARN_LINES, WARN_EVERY),
        }
    }
}

pub type Registry = Arc<Mutex<PushMeters>>;

/// What became of one notification.
enum Taken {
    /// Taken for a meter: the connection is identified.
    Yes,
    /// Not ours, or refused.
    No,
    /// The bridge is stopping.
    Stopping,
}

impl PushMeters {
    /// Keeps replay counters in `store`.
    pub fn with_store(store: Store) -> PushMeters {
        PushMeters {
            store: Some(store),
            ..PushMeters::default()
        }
    }

    /// Takes the current configuration; meters that did not change keep their state, and an
    /// edited one goes on from its last taken counter.
    pub fn configure(&mut self, meters: &[MeterConfig], max_skew_s: u64) {
        self.max_skew_s = max_skew_s;
        let mut old = std::mem::take(&mut self.meters);
        for m in meters.iter().filter(|m| m.enabled && m.push == Push::Tcp) {
            let entry = match old.remove(&m.name) {
                Some((was, r)) if was == *m => (was, r),
                was => {
                    let kept = self.kept_counter(m);
                    let in_memory = was
                        .filter(|(w, _)| w.system_title == m.system_title)
                        .and_then(|(_, r)| r.last_counter());
                    (m.clone(), reading::receiver_for(m, kept.max(in_memory)))
                }
            };
            self.meters.insert(m.name.clone(), entry);
        }
    }

    fn kept_counter(&mut self, meter: &MeterConfig) -> Option<u32> {
        let store = self.store.as_ref()?;
        match store.counter(&reading::counter_name(meter)) {
            Ok(0) => None,
            Ok(n) => u32::try_from(n - 1).ok(),
            Err(e) => {
                warn!("push: meter {:?}: its last invocation counter cannot be read ({e}); replays are refused from the next one taken", meter.name);
                None
            }
        }
    }

    /// Keeps the counter just taken (stored plus one: 0 means none kept).
    fn keep_counter(&mut self, name: &str) {
        let Some((meter, receiver)) = self.meters.get(name) else {
            return;
        };
        let (Some(counter), Some(store)) = (receiver.last_counter(), self.store.as_mut()) else {
            return;
        };
        if let Err(e) = store.raise_counter(&reading::counter_name(meter), u64::from(counter) + 1) {
            if let Some(n) = self
                .warnings
                .allow(("counter", name.to_string()), Instant::now())
            {
                warn!("push: meter {name:?}: its invocation counter cannot be kept ({e}); a restart would forget it{}", suppressed(n));
            }
        }
    }

    /// Writes `line` unless a warning of this kind for `who` went out less than a minute ago.
    fn warn(&mut self, kind: &'static str, who: &str, line: impl FnOnce() -> String) {
        let now = Instant::now();
        if let Some(n) = self.warnings.allow((kind, who.to_string()), now) {
            if let Some(all) = self.budget.allow(now, n) {
                warn!("{}{}", line(), suppressed(all));
            }
        }
    }

    fn meter_for(&self, arrival: &Arrival) -> Option<String> {
        if let Some(title) = sender_title(&arrival.apdu) {
            return self
                .meters
                .values()
                .find(|(m, _)| m.system_title == Some(title))
                .map(|(m, _)| m.name.clone());
        }
        if let Some((m, _)) = self
            .meters
            .values()
            .find(|(m, _)| m.push_address == Some(arrival.source))
        {
            return Some(m.name.clone());
        }
        let name = logical_device_name(&arrival.apdu)?;
        self.meters
            .values()
            .find(|(m, _)| m.logical_device_name.as_deref() == Some(name.as_str()))
            .map(|(m, _)| m.name.clone())
    }
}

/// The logical device name (0-0:42.0.0) a plain notification carries, as text.
fn logical_device_name(apdu: &[u8]) -> Option<String> {
    let n = crate::dlms::xdlms::notification::DataNotification::decode(apdu).ok()?;
    let ldn = crate::cosem::Obis::new(0, 0, 42, 0, 0, 255);
    crate::client::push::values(&n.body, &[])
        .into_iter()
        .find(|(o, _)| *o == ldn)
        .and_then(|(_, v)| match crate::client::json::value(&v).0 {
            serde_json::Value::String(s) => Some(s),
            _ => None,
        })
}

/// What every connection thread shares.
#[derive(Clone)]
struct Shared {
    registry: Registry,
    events: Sender<Event>,
    status: Arc<Status>,
    stop: Arc<AtomicBool>,
    table: SharedSlots,
}

/// Listens until `stop`; each connection on a thread of its own.
pub fn start(
    bind: &str,
    registry: Registry,
    events: Sender<Event>,
    status: Arc<Status>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let listener = TcpListener::bind(bind)?;
    listener.set_nonblocking(true)?;
    info!("push: listening for meters on {bind}");
    let shared = Shared {
        registry,
        events,
        status,
        stop,
        table: crate::slots::shared(MAX_CONNECTIONS, MAX_UNIDENTIFIED_PER_ADDRESS),
    };
    std::thread::Builder::new()
        .name("push-listener".into())
        .spawn(move || {
            while !shared.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, peer)) => admit(conn, peer, &shared),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => {
                        let mut reg = shared.registry.lock().unwrap_or_else(|e| e.into_inner());
                        reg.warn("accept", "", || format!("push: accept: {e}"));
                        drop(reg);
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            }
        })
}

fn warn_for(shared: &Shared, kind: &'static str, who: IpAddr, line: impl FnOnce() -> String) {
    let mut reg = shared.registry.lock().unwrap_or_else(|e| e.into_inner());
    reg.warn(kind, &who.to_string(), line);
}

/// A slot for the newcomer (evicting unidentified connections if need be) and its thread.
fn admit(conn: TcpStream, peer: SocketAddr, shared: &Shared) {
    let id = match crate::slots::admit_connection(&shared.table, &conn, peer.ip()) {
        Some(Entry::Admitted { id, evicted }) => {
            if evicted > 0 {
                warn_for(shared, "evicted", peer.ip(), || {
                    format!("push: {evicted} connection(s) that delivered no notification closed to make room for {peer}")
                });
            }
            id
        }
        Some(Entry::Refused) => {
            let census = lock(&shared.table).census(Instant::now(), crate::slots::silent);
            warn_for(shared, "full", peer.ip(), || {
                format!("push: {peer}: all {MAX_CONNECTIONS} connections are meters or clients speaking ({census}): closed")
            });
            return;
        }
        None => return,
    };
    let s = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("push-conn".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            serve(conn, peer, id, &s);
            lock(&s.table).release(id);
        });
    if spawned.is_err() {
        lock(&shared.table).release(id);
        warn_for(shared, "thread", peer.ip(), || {
            format!("push: cannot start a thread for {peer}")
        });
    }
}

fn serve(mut conn: TcpStream, peer: SocketAddr, id: SlotId, shared: &Shared) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(POLL));
    let mut stream = PushStream::new();
    let mut buf = [0u8; 2048];
    let mut identified = false;
    let mut heard = false;
    let mut deadline = Instant::now() + FIRST_NOTIFICATION;
    while !shared.stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        // Evicted: done at once (what its socket still buffers is not read on; a thread that
        // went on would outlive its slot).
        if !lock(&shared.table).holds(id) {
            return;
        }
        if !heard {
            let waited =
                crate::slots::wait_to_hear(&shared.table, id, &conn, Instant::now() + POLL);
            let _ = conn.set_read_timeout(Some(POLL));
            match waited {
                Ok(true) => heard = true,
                Ok(false) => continue,
                Err(_) => return,
            }
        }
        let n = match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        let arrivals = match stream.push(&buf[..n]) {
            Ok(a) => a,
            Err(e) => {
                warn_for(shared, "stream", peer.ip(), || {
                    format!("push: {peer}: {e}; connection closed")
                });
                return;
            }
        };
        for arrival in arrivals {
            if !identified && !lock(&shared.table).holds(id) {
                return;
            }
            match take(&arrival, peer, shared) {
                Taken::Yes => {
                    deadline = Instant::now() + IDLE;
                    if !identified {
                        identified = true;
                        lock(&shared.table).settle(id);
                    }
                }
                Taken::No => std::thread::sleep(REFUSED_PAUSE),
                Taken::Stopping => return,
            }
        }
    }
}

/// One notification: to its meter, or counted as from an unknown sender.
fn take(arrival: &Arrival, peer: SocketAddr, shared: &Shared) -> Taken {
    let status = &shared.status;
    let mut reg = shared.registry.lock().unwrap_or_else(|e| e.into_inner());
    let Some(name) = reg.meter_for(arrival) else {
        status.push_unknown.fetch_add(1, Ordering::Relaxed);
        let who = match sender_title(&arrival.apdu) {
            Some(t) => format!("system title {}", crate::hex::encode(&t)),
            None => format!("source address {}", arrival.source),
        };
        reg.warn("unknown", &peer.ip().to_string(), || {
            format!(
                "push: a notification from an unknown sender ({who}, from {}) dropped",
                peer.ip()
            )
        });
        return Taken::No;
    };
    let Some((meter, receiver)) = reg.meters.get_mut(&name) else {
        return Taken::No;
    };
    match receiver.apdu(&arrival.apdu) {
        Ok(p) => {
            let meter = meter.clone();
            let max_skew_s = reg.max_skew_s;
            // Kept before it is published: a crash between the two loses no protection.
            reg.keep_counter(&name);
            drop(reg);
            if reading::deliver(&meter, status, &shared.events, p, max_skew_s) {
                Taken::Yes
            } else {
                Taken::Stopping
            }
        }
        Err(e) => {
            reg.warn("refused", &name, || {
                format!(
                    "push: meter {name:?}: a notification from {} refused: {e}",
                    peer.ip()
                )
            });
            drop(reg);
            // Counted apart, not as the meter's failures: the system title and address a
            // notification names travel in clear, so anyone could spoil the meter's figures.
            status.push_refused.fetch_add(1, Ordering::Relaxed);
            Taken::No
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Tirol example's plain text names its logical device.
    #[test]
    fn the_logical_device_name_of_a_notification() {
        let apdu = crate::hex::parse(concat!(
            "0f0029b2dc0c07e50713010f2e2300ff8880020c09060000010000ff090c07e5",
            "0713010f2e2300ff8880020209060000600100ff090e314b464d303130303030",
            "303033350202090600002a0000ff09104b464d31313030313030303030303335",
            "020309060100200700ff12090402020fff1623"
        ))
        .unwrap();
        // A cut body still decodes as far as the name? No: the structure count says 12.
        assert_eq!(
            logical_device_name(&apdu),
            None,
            "a truncated body is no notification"
        );
        assert_eq!(logical_device_name(&[0x0F]), None);
    }
}
