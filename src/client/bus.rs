//! A shared serial line (RS-485 multi-drop): several meters, each with its own HDLC address,
//! behind one port. One owner per line: the port is opened once, and meters take turns on it.
//! A turn is a meter's whole exchange (SNRM to DISC, or one poll on an open association);
//! turns are served in the order they were asked for (a ticket lock), so no meter waits more
//! than one round of the others, whatever their intervals. Between a turn's end and the next
//! request on the line, `turnaround` passes (RS-485 transceivers need time to switch
//! direction). HDLC frames carry addresses: bytes a late meter sends into another's turn are
//! dropped by address (`LinkError::WrongAddress`).

use super::transport::{SerialSettings, SerialTransport, Transport};
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What a bus has done, for the status page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BusFigures {
    pub turns: u64,
    /// Time the line was held by a turn.
    pub busy: Duration,
    /// Since the bus was created.
    pub since: Option<Instant>,
    /// Waits for a turn (ms), the last 256.
    pub waits_ms: Vec<u64>,
    /// Busy time per meter.
    pub per_meter: std::collections::BTreeMap<String, Duration>,
}

#[derive(Debug, Default)]
struct Tickets {
    next: u64,
    serving: u64,
    /// When the last turn ended (the turnaround counts from it).
    released: Option<Instant>,
}

#[derive(Debug)]
pub struct Bus {
    pub path: String,
    settings: SerialSettings,
    turnaround: Duration,
    port: Mutex<Option<SerialTransport>>,
    tickets: Mutex<Tickets>,
    turn_changed: Condvar,
    figures: Mutex<BusFigures>,
}

impl std::fmt::Debug for SerialTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SerialTransport")
    }
}

/// The line held by one meter; released on drop.
pub struct Turn {
    bus: Arc<Bus>,
    meter: String,
    started: Instant,
}

impl Bus {
    pub fn new(settings: SerialSettings, turnaround: Duration) -> Arc<Bus> {
        Arc::new(Bus {
            path: settings.path.clone(),
            settings,
            turnaround,
            port: Mutex::new(None),
            tickets: Mutex::default(),
            turn_changed: Condvar::new(),
            figures: Mutex::new(BusFigures {
                since: Some(Instant::now()),
                ..BusFigures::default()
            }),
        })
    }

    /// The line settings every meter on it must share.
    pub fn settings(&self) -> &SerialSettings {
        &self.settings
    }

    /// Waits for the line, in the order of asking.
    pub fn turn(self: &Arc<Bus>, meter: &str) -> Turn {
        let asked = Instant::now();
        let mut t = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        let ticket = t.next;
        t.next += 1;
        while t.serving != ticket {
            t = self.turn_changed.wait(t).unwrap_or_else(|e| e.into_inner());
        }
        let quiet_until = t.released.map(|r| r + self.turnaround);
        drop(t);
        if let Some(until) = quiet_until {
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
        }
        let waited = asked.elapsed().as_millis() as u64;
        let mut f = self.figures.lock().unwrap_or_else(|e| e.into_inner());
        if f.waits_ms.len() >= 256 {
            f.waits_ms.remove(0);
        }
        f.waits_ms.push(waited);
        drop(f);
        Turn {
            bus: self.clone(),
            meter: meter.to_string(),
            started: Instant::now(),
        }
    }

    pub fn figures(&self) -> BusFigures {
        self.figures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs `f` on the open port (opened now if needed; dropped after an error so that the
    /// next use opens it afresh).
    fn with_port<R>(&self, f: impl FnOnce(&mut SerialTransport) -> io::Result<R>) -> io::Result<R> {
        let mut port = self.port.lock().unwrap_or_else(|e| e.into_inner());
        if port.is_none() {
            *port = Some(SerialTransport::open(&self.settings)?);
        }
        let result = match port.as_mut() {
            Some(p) => f(p),
            None => Err(io::ErrorKind::NotConnected.into()),
        };
        if matches!(&result, Err(e) if e.kind() != io::ErrorKind::TimedOut) {
            *port = None;
        }
        result
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let held = self.started.elapsed();
        {
            let mut f = self.bus.figures.lock().unwrap_or_else(|e| e.into_inner());
            f.turns += 1;
            f.busy += held;
            *f.per_meter.entry(self.meter.clone()).or_default() += held;
        }
        let mut t = self.bus.tickets.lock().unwrap_or_else(|e| e.into_inner());
        t.serving += 1;
        t.released = Some(Instant::now());
        drop(t);
        self.bus.turn_changed.notify_all();
    }
}

/// A meter's view of the shared line (used only while it holds a turn).
pub struct BusTransport(pub Arc<Bus>);

impl Transport for BusTransport {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.with_port(|p| p.send(bytes))
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.0.with_port(|p| p.recv(buf, timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SerialSettings {
        SerialSettings {
            path: "/dev/null-bus".into(),
            baud: 9600,
            data_bits: serialport::DataBits::Eight,
            parity: serialport::Parity::None,
            stop_bits: serialport::StopBits::One,
        }
    }

    /// Turns are served in the order they were asked for: a meter asking every moment cannot
    /// take two turns while another waits.
    #[test]
    fn turns_are_exclusive_and_in_order() {
        let bus = Bus::new(settings(), Duration::from_millis(1));
        let log = Arc::new(Mutex::new(Vec::new()));
        let first = bus.turn("eager");
        let mut handles = Vec::new();
        for name in ["slow", "eager"] {
            let (bus, log) = (bus.clone(), log.clone());
            handles.push(std::thread::spawn(move || {
                let _t = bus.turn(name);
                log.lock().unwrap().push(name);
                std::thread::sleep(Duration::from_millis(5));
            }));
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(first);
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*log.lock().unwrap(), ["slow", "eager"]);
        let f = bus.figures();
        assert_eq!(f.turns, 3);
        assert_eq!(f.per_meter.len(), 2);
        assert!(f.waits_ms.iter().any(|w| *w >= 15), "{:?}", f.waits_ms);
    }
}
