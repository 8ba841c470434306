//! Frame traces: a [`Transport`] wrapper that hands every unit sent and received (an HDLC
//! frame, a wrapper PDU, a sign-on line) to a [`TraceSink`]. Every client path (TCP, serial,
//! shared bus, mode E) opens its transport in [`super::MeterTarget`], which wraps it only when
//! a trace is on: an untraced connection costs nothing per frame.
//!
//! Secrets: an AARQ's calling-authentication-value is masked before any sink sees the bytes
//! ([`crate::dlms::describe::mask_secrets`]); ciphered APDUs are passed as they are, ciphered.

use super::transport::Transport;
use crate::dlms::describe::{mask_secrets, Describer, Direction, Splitter};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where traced units go. Called from the meter's thread with the bytes of one unit.
pub trait TraceSink: Send + Sync {
    fn record(&self, direction: Direction, unit: &[u8]);
}

/// A connection's trace setting: off, or a sink. Cheap to clone (one `Arc`).
#[derive(Clone, Default)]
pub struct Tracer(Option<Arc<dyn TraceSink>>);

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Tracer(on)"
        } else {
            "Tracer(off)"
        })
    }
}

impl Tracer {
    pub fn off() -> Tracer {
        Tracer(None)
    }

    pub fn to(sink: Arc<dyn TraceSink>) -> Tracer {
        Tracer(Some(sink))
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Records a unit directly (the mode E sign-on, which runs before the wrapper exists).
    pub fn record(&self, direction: Direction, unit: &[u8]) {
        if let Some(sink) = &self.0 {
            record_masked(sink.as_ref(), direction, unit);
        }
    }

    /// `transport`, traced when a sink is set.
    pub fn wrap(&self, transport: Box<dyn Transport>) -> Box<dyn Transport> {
        match &self.0 {
            None => transport,
            Some(sink) => Box::new(Traced {
                inner: transport,
                sink: sink.clone(),
                sent: Splitter::new(),
                received: Splitter::new(),
            }),
        }
    }
}

fn record_masked(sink: &dyn TraceSink, direction: Direction, unit: &[u8]) {
    if direction == Direction::Sent {
        let mut copy = unit.to_vec();
        mask_secrets(&mut copy);
        sink.record(direction, &copy);
    } else {
        sink.record(direction, unit);
    }
}

struct Traced {
    inner: Box<dyn Transport>,
    sink: Arc<dyn TraceSink>,
    sent: Splitter,
    received: Splitter,
}

impl Traced {
    fn drain(splitter: &mut Splitter, sink: &dyn TraceSink, direction: Direction) {
        while let Some(unit) = splitter.next_unit() {
            record_masked(sink, direction, &unit);
        }
    }
}

impl Transport for Traced {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        // A unit is recorded before it is written: a write that fails was still attempted.
        self.sent.push(bytes);
        Traced::drain(&mut self.sent, self.sink.as_ref(), Direction::Sent);
        if let Some(rest) = self.sent.finish() {
            record_masked(self.sink.as_ref(), Direction::Sent, &rest);
        }
        self.inner.send(bytes)
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let result = self.inner.recv(buf, timeout);
        if let Ok(n) = result {
            self.received.push(buf.get(..n).unwrap_or_default());
            Traced::drain(&mut self.received, self.sink.as_ref(), Direction::Received);
        }
        result
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        // What arrived but never completed a frame is part of the story of a failed read.
        if let Some(rest) = self.received.finish() {
            record_masked(self.sink.as_ref(), Direction::Received, &rest);
        }
    }
}

/// `--trace`: each unit on stderr as `+MS -> HEX` and an indented decoded line. The values the
/// command prints stay alone on stdout.
pub struct StderrTrace {
    start: Instant,
    describer: Mutex<Describer>,
}

impl StderrTrace {
    pub fn new() -> Arc<StderrTrace> {
        Arc::new(StderrTrace {
            start: Instant::now(),
            describer: Mutex::new(Describer::new()),
        })
    }
}

/// The two lines of one traced unit.
pub fn trace_lines(ms: u128, direction: Direction, hex: &str, decoded: &str) -> String {
    format!(
        "{ms:>7} ms {} {hex}\n{:>10} {} {decoded}",
        direction.arrow(),
        "",
        direction.arrow()
    )
}

impl TraceSink for StderrTrace {
    fn record(&self, direction: Direction, unit: &[u8]) {
        let decoded = match self.describer.lock() {
            Ok(mut d) => d.describe(unit),
            Err(_) => String::from("(describer unavailable)"),
        };
        let ms = self.start.elapsed().as_millis();
        eprintln!(
            "{}",
            trace_lines(ms, direction, &crate::hex::encode(unit), &decoded)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects what it is given.
    #[derive(Default)]
    struct Collect(Mutex<Vec<(Direction, Vec<u8>)>>);

    impl TraceSink for Collect {
        fn record(&self, direction: Direction, unit: &[u8]) {
            self.0.lock().unwrap().push((direction, unit.to_vec()));
        }
    }

    /// Answers each send with the given bytes in two reads.
    struct Echo(Vec<u8>, usize);

    impl Transport for Echo {
        fn send(&mut self, _: &[u8]) -> io::Result<()> {
            self.1 = 0;
            Ok(())
        }
        fn recv(&mut self, buf: &mut [u8], _: Duration) -> io::Result<usize> {
            let rest = &self.0[self.1.min(self.0.len())..];
            let n = rest.len().min(10).min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn units_are_traced_whole_and_the_password_masked() {
        // gurux-dlms 1.0.203's LLS AARQ (tests/vectors/independent.json, hdlc_aarq_lls) and
        // dlms-cosem 25.1.0's UA (hdlc_ua_from_meter).
        let aarq = crate::hex::parse("7EA044032110E684E6E6006036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738BE10040E01000000065F1F0400401E5DFFFF8B3C7E").unwrap();
        let ua =
            crate::hex::parse("7EA01E210373C37A818012050180060180070400000001080400000001533B7E")
                .unwrap();
        let sink = Arc::new(Collect::default());
        let mut t = Tracer::to(sink.clone()).wrap(Box::new(Echo(ua.clone(), 0)));
        t.send(&aarq).unwrap();
        let mut buf = [0u8; 64];
        while t.recv(&mut buf, Duration::ZERO).unwrap() > 0 {}
        drop(t);
        let got = sink.0.lock().unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, Direction::Sent);
        assert!(!got[0].1.windows(8).any(|w| w == b"12345678"));
        assert_eq!(got[0].1.len(), aarq.len());
        assert_eq!(got[1], (Direction::Received, ua));
        // Off: the transport is the same object, untouched.
        assert!(!Tracer::off().is_on());
    }
}
