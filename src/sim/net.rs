//! The simulator's I/O: serves [`ServerSession`]s over TCP (HDLC or wrapper) or over any byte
//! stream (a pseudo-terminal for the serial path, optionally after an IEC 62056-21 mode E
//! sign-on), with fault injection.

use super::model::MeterModel;
use super::server::{ServerConfig, ServerSession};
use crate::config::values::Transport;
use crate::dlms::hdlc::{
    Control, Deframer, Frame, Link, LinkEvent, LinkParams, RawAddress, ServerAddress,
};
use crate::dlms::wrapper::{self, WrapperDecoder};
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A misbehaviour injected into every `every`-th answer to a data request (GET/SET).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// No answer at all.
    Silence,
    /// The answer comes this late.
    Slow(Duration),
    /// Random bytes before the answer.
    Garbage,
    /// A corrupted copy of the answer (bad FCS; for the wrapper: garbage) before the good one.
    BadCrc,
    /// The answer written in small pieces at random split points.
    Split,
    /// The connection is closed after the first block of a block transfer.
    DropMidBlock,
    /// The SNRM is answered with DM (HDLC only).
    DisconnectedMode,
    /// The request is answered with FRMR (HDLC only).
    FrameReject,
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        Ok(match s {
            "none" => Fault::None,
            "silence" => Fault::Silence,
            "slow" => Fault::Slow(Duration::from_millis(1500)),
            "garbage" => Fault::Garbage,
            "bad-crc" => Fault::BadCrc,
            "split" => Fault::Split,
            "drop-mid-block" => Fault::DropMidBlock,
            "dm" => Fault::DisconnectedMode,
            "frmr" => Fault::FrameReject,
            other => return Err(format!("unknown fault {other:?} (none, silence, slow, garbage, bad-crc, split, drop-mid-block, dm, frmr)")),
        })
    }
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub framing: Transport,
    pub server: ServerConfig,
    pub model: MeterModel,
    pub fault: Fault,
    /// Apply the fault to every n-th data answer (1 = always).
    pub fault_every: u64,
    /// Stop injecting after this many faults (`None`: never stop).
    pub fault_limit: Option<u64>,
    /// The meter's HDLC max information field (128 forces segmentation of most answers).
    pub hdlc_max_info: u16,
    /// The largest HDLC window the meter grants (1: one segment per acknowledgement).
    pub hdlc_window: u8,
    /// The link's turnaround: how long after a frame arrives its answer starts (a modem, a
    /// slow meter, a long serial line).
    pub latency: Duration,
    /// Answer no SNRM that carries a parameter block (meters that ignore one).
    pub ignore_snrm_parameters: bool,
    pub server_address: ServerAddress,
    /// Expect an IEC 62056-21 mode E sign-on before HDLC (serial only).
    pub mode_e: bool,
    /// A connection opened sooner than this after the last one closed gets garbage for
    /// every request (Microstar meters within 10-15 s; TCP only).
    pub garbage_on_quick_reconnect: Option<Duration>,
    /// A connection lost without RLRQ/DISC leaves the association held: every later SNRM is
    /// answered with DM until a DISC releases it (MEM600-like meters; HDLC only).
    pub holds_unreleased_link: bool,
    /// Answer every GET/SET/ACTION with this invoke id, whatever the request's (firmware
    /// with a fixed invoke id). Plain answers only.
    pub fixed_invoke_id: Option<u8>,
    /// Take one TCP connection at a time: a second one, while the first is open, is closed
    /// at once and counted in `SimCounters::refused` (2N MeterCom, many modems).
    pub one_connection: bool,
    /// Be an IEC 62056-21 readout meter of this mode instead of a DLMS one.
    pub readout: Option<super::mode_c::ReadoutMode>,
}

impl SimConfig {
    pub fn new(model: MeterModel, framing: Transport) -> Self {
        SimConfig {
            framing,
            server: ServerConfig::default(),
            model,
            fault: Fault::None,
            fault_every: 1,
            fault_limit: None,
            hdlc_max_info: 128,
            hdlc_window: 1,
            latency: Duration::ZERO,
            ignore_snrm_parameters: false,
            server_address: ServerAddress::new(1, Some(17)),
            mode_e: false,
            garbage_on_quick_reconnect: None,
            holds_unreleased_link: false,
            fixed_invoke_id: None,
            one_connection: false,
            readout: None,
        }
    }
}

/// The real-meter behaviours `simulate --quirk` reproduces, by name (issue 26).
pub const QUIRKS: &str = "fixed-invoke-id (every answer with invoke id 0), \
holds-link (an association lost without DISC is held: SNRM gets DM until a DISC), \
quick-reconnect-garbage (garbage for a connection within 10 s of the last, as Microstar), \
ignores-snrm-parameters (no answer to a SNRM with a parameter block), \
one-connection (a second TCP connection while one is open is closed at once, as 2N MeterCom)";

impl SimConfig {
    /// Takes on the quirk `name` (one of [`QUIRKS`]).
    pub fn with_quirk(&mut self, name: &str) -> Result<(), String> {
        match name {
            "fixed-invoke-id" => self.fixed_invoke_id = Some(0),
            "holds-link" => self.holds_unreleased_link = true,
            "quick-reconnect-garbage" => {
                self.garbage_on_quick_reconnect = Some(Duration::from_secs(10))
            }
            "ignores-snrm-parameters" => self.ignore_snrm_parameters = true,
            "one-connection" => self.one_connection = true,
            other => return Err(format!("unknown quirk {other:?}: {QUIRKS}")),
        }
        Ok(())
    }
}

/// Counters shared by all connections of one simulated meter.
#[derive(Debug, Default)]
pub struct SimCounters {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
    pub faults: AtomicU64,
    /// An association left behind by a lost connection (`holds_unreleased_link`).
    pub held: AtomicBool,
    /// Connections closed at once because another was open (`one_connection`).
    pub refused: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Accepts connections until `stop` is set; one thread per connection.
pub fn serve_tcp(
    listener: TcpListener,
    config: SimConfig,
    counters: Arc<SimCounters>,
    stop: Arc<AtomicBool>,
) {
    let _ = listener.set_nonblocking(true);
    // When the last connection closed, for `garbage_on_quick_reconnect`.
    let last_closed = Arc::new(std::sync::Mutex::new(None::<std::time::Instant>));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_nodelay(true);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let (config, counters, stop) = (config.clone(), counters.clone(), stop.clone());
                let last_closed = last_closed.clone();
                if config.one_connection && counters.open.load(Ordering::SeqCst) > 0 {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                    drop(stream);
                    continue;
                }
                counters.open.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let too_soon = config.garbage_on_quick_reconnect.is_some_and(|gap| {
                        let last = *last_closed.lock().unwrap_or_else(|e| e.into_inner());
                        last.is_some_and(|t| t.elapsed() < gap)
                    });
                    if too_soon {
                        counters.faults.fetch_add(1, Ordering::Relaxed);
                        let _ = serve_garbage(stream, &stop);
                    } else {
                        let _ = serve_stream(stream, &config, &counters, &stop);
                    }
                    *last_closed.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(std::time::Instant::now());
                    counters.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// `fixed_invoke_id`: the invoke-id-and-priority byte of a GET/SET/ACTION response (third
/// byte: tag, choice, invoke) gets the fixed id, its priority bits kept.
fn fix_invoke_id(answer: &mut [u8], fixed: Option<u8>) {
    if let (Some(id), [0xC4 | 0xC5 | 0xC7, _, invoke, ..]) = (fixed, answer) {
        *invoke = (*invoke & 0xF0) | (id & 0x0F);
    }
}

/// Answers whatever arrives with bytes that are no frame, until the peer closes.
fn serve_garbage(mut stream: std::net::TcpStream, stop: &AtomicBool) -> io::Result<()> {
    let mut buf = [0u8; 512];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                let junk: Vec<u8> = (0..24).map(|_| (rng.next() >> 24) as u8 | 0x01).collect();
                stream.write_all(&junk)?;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A byte stream the simulator can serve: TCP, or a pseudo-terminal / serial device.
pub trait SimStream: Read + Write {}
impl<T: Read + Write> SimStream for T {}

/// Deterministic pseudo-random numbers for fault placement.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct Conn<'a, S: SimStream> {
    stream: S,
    config: &'a SimConfig,
    counters: &'a SimCounters,
    rng: Rng,
}

impl<S: SimStream> Conn<'_, S> {
    fn fault_now(&mut self) -> Fault {
        if self.config.fault == Fault::None {
            return Fault::None;
        }
        let n = self.counters.requests.load(Ordering::Relaxed);
        let injected = self.counters.faults.load(Ordering::Relaxed);
        let under_limit = match self.config.fault_limit {
            Some(limit) => injected < limit,
            None => true,
        };
        if under_limit && n.is_multiple_of(self.config.fault_every.max(1)) {
            self.counters.faults.fetch_add(1, Ordering::Relaxed);
            self.config.fault
        } else {
            Fault::None
        }
    }

    /// Writes `bytes` honouring the split fault.
    fn write(&mut self, bytes: &[u8], split: bool) -> io::Result<()> {
        if !split {
            return self.stream.write_all(bytes);
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = (1 + self.rng.next() % 7) as usize;
            let (a, b) = rest.split_at(n.min(rest.len()));
            self.stream.write_all(a)?;
            self.stream.flush()?;
            std::thread::sleep(Duration::from_millis(2));
            rest = b;
        }
        Ok(())
    }
}

/// Serves one connection until the peer closes it, `stop` is set, or a fault closes it.
pub fn serve_stream<S: SimStream>(
    stream: S,
    config: &SimConfig,
    counters: &SimCounters,
    stop: &AtomicBool,
) -> io::Result<()> {
    counters.connections.fetch_add(1, Ordering::Relaxed);
    if let Some(mode) = config.readout {
        return super::mode_c::serve(stream, &config.model, mode, stop);
    }
    let seed = config.model.seed ^ counters.connections.load(Ordering::Relaxed);
    let mut conn = Conn {
        stream,
        config,
        counters,
        rng: Rng(seed | 1),
    };
    if config.mode_e {
        mode_e_sign_on(&mut conn.stream, stop)?;
    }
    let mut session = ServerSession::new(config.model.clone(), config.server.clone());
    match config.framing {
        Transport::Hdlc => serve_hdlc(&mut conn, &mut session, stop),
        Transport::Wrapper => serve_wrapper(&mut conn, &mut session, stop),
    }
}

/// Reads once; `Ok(None)` on a read timeout, `Ok(Some(0))` on EOF.
fn read_some<S: SimStream>(stream: &mut S, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match stream.read(buf) {
        Ok(n) => Ok(Some(n)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// IEC 62056-21 mode E: `/?!` request, identification with `\2` (HDLC follows), ACK `2 Z 2`.
fn mode_e_sign_on<S: SimStream>(stream: &mut S, stop: &AtomicBool) -> io::Result<()> {
    let mut line = Vec::new();
    let mut buf = [0u8; 64];
    let mut stage = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(n) = read_some(stream, &mut buf)? else {
            continue;
        };
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        // Mode E works in 7E1 before the switch: strip the parity bit.
        line.extend(buf[..n].iter().map(|b| b & 0x7F));
        while let Some(end) = line.windows(2).position(|w| w == b"\r\n") {
            let msg: Vec<u8> = line.drain(..end + 2).collect();
            match stage {
                0 if msg.starts_with(b"/?") && msg.ends_with(b"!\r\n") => {
                    stream.write_all(b"/SIM5\\2DLMSBRIDGE\r\n")?;
                    stage = 1;
                }
                1 if msg.first() == Some(&0x06) => return Ok(()),
                _ => {}
            }
        }
    }
    Err(io::ErrorKind::Interrupted.into())
}

fn serve_hdlc<S: SimStream>(
    conn: &mut Conn<'_, S>,
    session: &mut ServerSession,
    stop: &AtomicBool,
) -> io::Result<()> {
    let local =
        RawAddress::server(conn.config.server_address).ok_or(io::ErrorKind::InvalidInput)?;
    let params = LinkParams {
        max_info_tx: conn.config.hdlc_max_info,
        max_info_rx: conn.config.hdlc_max_info,
        window_tx: conn.config.hdlc_window.clamp(1, 7),
        window_rx: conn.config.hdlc_window.clamp(1, 7),
    };
    let mut link = Link::server(local, params);
    let mut deframer = Deframer::new();
    let mut buf = [0u8; 2048];
    let mut pending_fault = Fault::None;
    while !stop.load(Ordering::Relaxed) {
        let Some(n) = read_some(&mut conn.stream, &mut buf)? else {
            continue;
        };
        if n == 0 {
            return Ok(());
        }
        deframer.push(&buf[..n]);
        while let Some(frame) = deframer.next_frame() {
            if conn.config.holds_unreleased_link {
                if matches!(frame.control, Control::Disc { .. }) {
                    conn.counters.held.store(false, Ordering::Relaxed);
                } else if matches!(frame.control, Control::Snrm { .. })
                    && conn.counters.held.load(Ordering::Relaxed)
                {
                    conn.counters.faults.fetch_add(1, Ordering::Relaxed);
                    conn.stream
                        .write_all(&reply(&frame, Control::Dm { poll: true }))?;
                    continue;
                }
            }
            if frame.control == (Control::Snrm { poll: true })
                && conn.config.fault == Fault::DisconnectedMode
                && conn.fault_now() == Fault::DisconnectedMode
            {
                conn.stream
                    .write_all(&reply(&frame, Control::Dm { poll: true }))?;
                continue;
            }
            if conn.config.ignore_snrm_parameters
                && matches!(frame.control, Control::Snrm { .. })
                && !frame.info.is_empty()
            {
                continue;
            }
            let is_request = matches!(frame.control, Control::I { .. }) && !frame.segmented;
            // Frames the link refuses (stray, out of sequence) are ignored, as a meter does.
            let event = link.handle_frame(&frame).unwrap_or_default();
            if event == Some(LinkEvent::Disconnected) && conn.config.mode_e {
                // After DISC a mode E meter falls back to its 300 baud sign-on state.
                while let Some(Ok(bytes)) = link.poll_transmit() {
                    conn.stream.write_all(&bytes)?;
                }
                return Ok(());
            }
            let mut split = false;
            if let Some(LinkEvent::Apdu(apdu)) = event {
                let is_data = matches!(apdu.first(), Some(0xC0 | 0xC1 | 0xC3));
                if is_data {
                    conn.counters.requests.fetch_add(1, Ordering::Relaxed);
                }
                // A dropped connection is decided when a block is actually sent (below).
                pending_fault = if is_data && conn.config.fault != Fault::DropMidBlock {
                    conn.fault_now()
                } else {
                    Fault::None
                };
                match pending_fault {
                    Fault::Silence => continue,
                    Fault::FrameReject if is_request => {
                        conn.stream
                            .write_all(&reply(&frame, Control::Frmr { poll: true }))?;
                        continue;
                    }
                    Fault::Slow(d) => std::thread::sleep(d),
                    Fault::Garbage => {
                        let junk: Vec<u8> = (0..(8 + conn.rng.next() % 40))
                            .map(|_| conn.rng.next() as u8)
                            .collect();
                        conn.stream.write_all(&junk)?;
                    }
                    _ => {}
                }
                if let Some(mut answer) = session.handle(&apdu, unix_now()) {
                    fix_invoke_id(&mut answer, conn.config.fixed_invoke_id);
                    let _ = link.send(&answer);
                }
                if conn.config.holds_unreleased_link {
                    // Held from the association on, released by RLRQ (or a DISC, above).
                    conn.counters
                        .held
                        .store(session.is_associated(), Ordering::Relaxed);
                }
            }
            split = split || pending_fault == Fault::Split;
            let mut sent_block = false;
            let mut turned_around = false;
            while let Some(bytes) = link.poll_transmit() {
                let Ok(bytes) = bytes else { continue };
                if !turned_around && !conn.config.latency.is_zero() {
                    std::thread::sleep(conn.config.latency);
                }
                turned_around = true;
                if pending_fault == Fault::BadCrc {
                    let mut bad = bytes.clone();
                    let at = bad.len() - 3;
                    bad[at] ^= 0x5A;
                    conn.stream.write_all(&bad)?;
                }
                conn.write(&bytes, split)?;
                sent_block = sent_block || is_block_response(&bytes);
            }
            if sent_block
                && conn.config.fault == Fault::DropMidBlock
                && conn.fault_now() == Fault::DropMidBlock
            {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Whether an emitted frame starts a GET-Response-With-Datablock (C4 02 after the LLC).
fn is_block_response(frame: &[u8]) -> bool {
    frame
        .windows(5)
        .any(|w| w == [0xE6, 0xE7, 0x00, 0xC4, 0x02])
}

fn reply(to: &Frame, control: Control) -> Vec<u8> {
    Frame {
        segmented: false,
        destination: to.source,
        source: to.destination,
        control,
        info: Vec::new(),
    }
    .emit()
    .unwrap_or_default()
}

fn serve_wrapper<S: SimStream>(
    conn: &mut Conn<'_, S>,
    session: &mut ServerSession,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut decoder = WrapperDecoder::new();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let Some(n) = read_some(&mut conn.stream, &mut buf)? else {
            continue;
        };
        if n == 0 {
            return Ok(());
        }
        decoder.push(&buf[..n]);
        loop {
            let pdu = match decoder.next_pdu() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(_) => return Ok(()), // unusable stream: close it, as a meter would
            };
            let is_data = matches!(pdu.apdu.first(), Some(0xC0 | 0xC1 | 0xC3));
            if is_data {
                conn.counters.requests.fetch_add(1, Ordering::Relaxed);
            }
            let fault = if is_data && conn.config.fault != Fault::DropMidBlock {
                conn.fault_now()
            } else {
                Fault::None
            };
            match fault {
                Fault::Silence => continue,
                Fault::Slow(d) => std::thread::sleep(d),
                Fault::Garbage | Fault::BadCrc => {
                    // The wrapper has no checksum: a corrupted stream cannot be resynchronised,
                    // so garbage means the connection is lost. Send it and close.
                    conn.stream.write_all(&[0x00, 0x07, 0xFF, 0xFF])?;
                    return Ok(());
                }
                _ => {}
            }
            if let Some(mut answer) = session.handle(&pdu.apdu, unix_now()) {
                fix_invoke_id(&mut answer, conn.config.fixed_invoke_id);
                let wrapped = wrapper::wrap(pdu.destination, pdu.source, &answer)
                    .ok_or(io::ErrorKind::InvalidData)?;
                let is_block = answer.starts_with(&[0xC4, 0x02]);
                if is_block
                    && conn.config.fault == Fault::DropMidBlock
                    && conn.fault_now() == Fault::DropMidBlock
                {
                    // Half of the block, then the connection is gone.
                    conn.stream.write_all(&wrapped[..wrapped.len() / 2])?;
                    return Ok(());
                }
                conn.write(&wrapped, fault == Fault::Split)?;
            }
        }
    }
    Ok(())
}

/// One running simulated meter: its port, counters and serving thread.
pub type SimHandle = (u16, Arc<SimCounters>, std::thread::JoinHandle<()>);

/// Binds `count` consecutive loopback ports from `first_port` and serves one simulated meter on
/// each (meter index = position). Returns the join handles; set `stop` to end them.
pub fn spawn_tcp_meters(
    first_port: u16,
    count: u16,
    make: impl Fn(u32) -> SimConfig,
    stop: Arc<AtomicBool>,
) -> io::Result<Vec<SimHandle>> {
    let mut out = Vec::new();
    for i in 0..count {
        let port = first_port + i;
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let port = listener.local_addr()?.port();
        let counters = Arc::new(SimCounters::default());
        let (config, c, s) = (make(u32::from(i)), counters.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name(format!("sim-{port}"))
            .spawn(move || serve_tcp(listener, config, c, s))?;
        out.push((port, counters, handle));
    }
    Ok(out)
}

/// Convenience for tests: a loopback listener on an ephemeral port.
pub fn bind_ephemeral() -> io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", 0))
}

/// Several meters on one serial line (RS-485 multi-drop): each answers at its own HDLC address
/// (`SimConfig::server_address`), the others' frames are not for it. With `line_baud`, every
/// answer takes the time its bytes need on such a line (10 bits a byte), so a bus can be
/// measured against its physical limit. No faults are injected on a bus; a meter that is
/// silent is one not in `configs`.
pub fn serve_hdlc_bus<S: SimStream>(
    mut stream: S,
    configs: &[SimConfig],
    line_baud: Option<u32>,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut meters = Vec::new();
    for c in configs {
        let local = RawAddress::server(c.server_address).ok_or(io::ErrorKind::InvalidInput)?;
        let params = LinkParams {
            max_info_tx: c.hdlc_max_info,
            max_info_rx: c.hdlc_max_info,
            window_tx: c.hdlc_window.clamp(1, 7),
            window_rx: c.hdlc_window.clamp(1, 7),
        };
        meters.push((
            Link::server(local, params),
            ServerSession::new(c.model.clone(), c.server.clone()),
        ));
    }
    let mut deframer = Deframer::new();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Some(n) = read_some(&mut stream, &mut buf)? else {
            continue;
        };
        if n == 0 {
            return Ok(());
        }
        // The request's own bytes took their time on the line before the meter had them.
        line_time(n, line_baud);
        deframer.push(&buf[..n]);
        while let Some(frame) = deframer.next_frame() {
            for (link, session) in &mut meters {
                let Ok(event) = link.handle_frame(&frame) else {
                    continue; // another meter's frame, or one this link refuses
                };
                if let Some(LinkEvent::Apdu(apdu)) = event {
                    if let Some(answer) = session.handle(&apdu, unix_now()) {
                        let _ = link.send(&answer);
                    }
                }
                while let Some(bytes) = link.poll_transmit() {
                    let Ok(bytes) = bytes else { continue };
                    if let Some(baud) = line_baud {
                        let bits = bytes.len() as u64 * 10;
                        std::thread::sleep(Duration::from_micros(
                            bits * 1_000_000 / u64::from(baud),
                        ));
                    }
                    stream.write_all(&bytes)?;
                    stream.flush()?;
                }
            }
        }
    }
    Ok(())
}

/// Waits what `bytes` take on a line of `baud` (8N1: 10 bits a byte).
fn line_time(bytes: usize, baud: Option<u32>) {
    if let Some(baud) = baud.filter(|b| *b > 0) {
        let bits = bytes as u64 * 10;
        std::thread::sleep(Duration::from_micros(bits * 1_000_000 / u64::from(baud)));
    }
}
