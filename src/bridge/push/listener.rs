//! The TCP listener for meters that push (IDIS/DSMR push setups, class 40): meters connect to
//! `push.listen` and send DATA-NOTIFICATIONs (wrapper or HDLC). A notification is for the
//! meter whose system title its ciphering names, else whose `push_address` its source address
//! is, else whose `logical_device_name` it carries (0-0:42.0.0); it is opened with that meter's keys, replay-checked and mapped like any pushed one.
//! Unknown senders are counted and logged once per sender; the listener bounds its
//! connections, their idle time and their PDU size.

use super::reading;
use crate::bridge::event::Event;
use crate::client::push::{sender_title, Arrival, PushStream, Receiver};
use crate::config::values::Push;
use crate::config::MeterConfig;
use crate::status::state::Status;
use crossbeam_channel::Sender;
use log::{info, warn};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 32;
/// A connection that sends nothing this long is closed.
pub const IDLE: Duration = Duration::from_secs(300);

/// The meters that push over TCP, with their receive state (replay counters).
#[derive(Default)]
pub struct PushMeters {
    meters: HashMap<String, (MeterConfig, Receiver)>,
    unknown_seen: HashSet<String>,
}

pub type Registry = Arc<Mutex<PushMeters>>;

impl PushMeters {
    /// Takes the current configuration; meters that did not change keep their state.
    pub fn configure(&mut self, meters: &[MeterConfig]) {
        let mut old = std::mem::take(&mut self.meters);
        for m in meters.iter().filter(|m| m.enabled && m.push == Push::Tcp) {
            let entry = match old.remove(&m.name) {
                Some((was, r)) if was == *m => (was, r),
                _ => (
                    m.clone(),
                    Receiver::new(
                        reading::keys_of(m),
                        reading::template_of(m),
                        m.utc_offset_min,
                    ),
                ),
            };
            self.meters.insert(m.name.clone(), entry);
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
    std::thread::Builder::new()
        .name("push-listener".into())
        .spawn(move || {
            let active = Arc::new(AtomicUsize::new(0));
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, peer)) => {
                        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                            warn!("push: {peer}: {MAX_CONNECTIONS} connections already, closed");
                            continue;
                        }
                        active.fetch_add(1, Ordering::Relaxed);
                        let (registry, events, status, stop, active) = (
                            registry.clone(),
                            events.clone(),
                            status.clone(),
                            stop.clone(),
                            active.clone(),
                        );
                        let spawned = std::thread::Builder::new()
                            .name("push-conn".into())
                            .stack_size(64 * 1024)
                            .spawn(move || {
                                serve(conn, &peer.to_string(), &registry, &events, &status, &stop);
                                active.fetch_sub(1, Ordering::Relaxed);
                            });
                        if spawned.is_err() {
                            warn!("push: cannot start a thread for {peer}");
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Err(e) => {
                        warn!("push: accept: {e}");
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            }
        })
}

fn serve(
    mut conn: TcpStream,
    peer: &str,
    registry: &Registry,
    events: &Sender<Event>,
    status: &Status,
    stop: &AtomicBool,
) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
    let mut stream = PushStream::new();
    let mut buf = [0u8; 2048];
    let mut heard = Instant::now();
    while !stop.load(Ordering::Relaxed) && heard.elapsed() < IDLE {
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
        heard = Instant::now();
        let arrivals = match stream.push(&buf[..n]) {
            Ok(a) => a,
            Err(e) => {
                warn!("push: {peer}: {e}; connection closed");
                return;
            }
        };
        for arrival in arrivals {
            if !take(&arrival, peer, registry, events, status) {
                return;
            }
        }
    }
}

/// One notification: to its meter, or counted as from an unknown sender. `false` when the
/// bridge is stopping.
fn take(
    arrival: &Arrival,
    peer: &str,
    registry: &Registry,
    events: &Sender<Event>,
    status: &Status,
) -> bool {
    let mut reg = registry.lock().unwrap_or_else(|e| e.into_inner());
    let Some(name) = reg.meter_for(arrival) else {
        status.push_unknown.fetch_add(1, Ordering::Relaxed);
        let who = match sender_title(&arrival.apdu) {
            Some(t) => format!("system title {}", crate::hex::encode(&t)),
            None => format!("source address {} from {peer}", arrival.source),
        };
        if reg.unknown_seen.len() < 1000 && reg.unknown_seen.insert(who.clone()) {
            warn!("push: a notification from an unknown sender ({who}) dropped (said once per sender)");
        }
        return true;
    };
    let Some((meter, receiver)) = reg.meters.get_mut(&name) else {
        return true;
    };
    match receiver.apdu(&arrival.apdu) {
        Ok(p) => {
            let meter = meter.clone();
            drop(reg);
            reading::deliver(&meter, status, events, p)
        }
        Err(e) => {
            warn!("push: meter {name:?}: {e}");
            reading::refused(&name, status, &e);
            true
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
