//! `dlms-bridge simulate`: simulated meters on consecutive loopback ports, or one on a serial
//! device (a pseudo-terminal in tests), until interrupted or `--duration-s` passes.

use super::args::{parse_num, usage, UsageError};
use dlms_bridge::config::values::Transport;
use dlms_bridge::dlms::xdlms::Conformance;
use dlms_bridge::sim::mode_c::{self, ReadoutMode};
use dlms_bridge::sim::model::MeterModel;
use dlms_bridge::sim::net::{self, Fault, SimConfig, SimCounters};
use lexopt::prelude::*;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const HELP: &str = "\
dlms-bridge simulate [--meters 3] [--port-base 4061] [--transport hdlc|wrapper] [--seed 1]
                     [--password P] [--fault KIND [--fault-every N]] [--profile-days 2]
                     [--max-info 128] [--pdu 1024] [--duration-s N]
                     [--profile-period-s 900] [--outage-every-s 21600] [--no-range-access]
                     [--clock-offset-s 0] [--clock-read-only] [--window 1] [--latency-ms 0]
                     [--referencing ln|sn|auto] [--gbt] [--quirk NAME ...]
dlms-bridge simulate --push-to HOST:PORT [--push-every-s 10] [--gbt] [--seed 1] [--duration-s N]
dlms-bridge simulate --serial DEVICE [--mode-e] [--meters N [--line-baud 9600]] ...
dlms-bridge simulate [--serial DEVICE] --protocol mode-c [--iec-mode a|b|c]
  Meters listen on 127.0.0.1 only, ports port-base .. port-base+meters-1, HDLC server address
  logical 1 physical 17, wrapper wPort 1; meter i has seed+i's values. With --serial and
  --meters N, N meters share the line (RS-485) at physical addresses 17 .. 17+N-1;
  --line-baud makes each answer take its time on such a line.
  Fault kinds: silence, slow, garbage, bad-crc, split, drop-mid-block, dm, frmr.
  Profiles: the load profile 1-0:99.1.0 (+A, -A energy every --profile-period-s) and the
  standard event log 0-0:99.98.0 (a power failure every --outage-every-s), --profile-days
  deep; --no-range-access serves them by entry only. --clock-offset-s runs the meter's clock
  ahead (or behind, negative) of the system clock; a SET of the clock moves it (refused with
  --clock-read-only). --referencing sn serves the same objects over short names only (an LN
  AARQ is refused with application-context-name-not-supported), auto over both; ln (default)
  over logical names only.
  HDLC: the meter grants at most --max-info bytes per frame and --window frames per
  acknowledgement; --latency-ms delays every answer (a link's turnaround).
  --gbt grants general block transfer: an answer longer than the client's PDU goes out in
  General-Block-Transfer blocks (window 1) instead of GET data blocks.
  --quirk (repeatable) reproduces a real meter's firmware: fixed-invoke-id, holds-link,
  quick-reconnect-garbage, ignores-snrm-parameters, one-connection (`--quirk help` says each).
  --push-to: meter 0 pushes a DATA-NOTIFICATION of its registers to HOST:PORT (a bridge's
  push.listen) every --push-every-s, in HDLC UI frames from address 1; with --gbt in general
  block transfer as an L+G E450 pushes (streaming blocks, window 0, LLC in the first frame only).
  --protocol mode-c: IEC 62056-21 readout meters (mode C at 9600 baud after the 300 baud
  sign-on; --iec-mode a or b for those modes), the same registers as a data readout.
  Security: --encryption-key HEX --authentication-key HEX [--system-title HEX] [--hls] serves
  ciphered associations only (suite 0), with HLS-GMAC when --hls is given.";

pub fn run(mut parser: lexopt::Parser) -> Result<ExitCode, UsageError> {
    let (mut meters, mut port_base, mut framing, mut seed) = (3u16, 4061u16, Transport::Hdlc, 1u64);
    let (mut password, mut fault, mut fault_every, mut profile_days) =
        (None, Fault::None, 1u64, 2u32);
    let (mut max_info, mut pdu, mut duration, mut serial, mut mode_e) =
        (128u16, 1024u16, None, None, false);
    let (mut ek, mut ak, mut title, mut hls) = (None, None, *b"SIMMETER", false);
    let (mut profile_period, mut outage_every, mut range_access, mut clock_offset) =
        (900i64, 6 * 3600i64, true, 0i64);
    let (mut window, mut latency_ms, mut line_baud) = (1u8, 0u64, None);
    let mut referencing = dlms_bridge::dlms::sn::association::Referencing::Ln;
    let mut clock_settable = true;
    let mut gbt = false;
    let mut quirks: Vec<String> = Vec::new();
    let (mut push_to, mut push_every) = (None, 10u64);
    let mut readout = ReadoutFlags::default();
    // With --serial, one meter unless --meters says otherwise (then they share the line).
    let mut meters_given = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("meters") => {
                meters = parse_num("--meters", parser.value()?)?;
                meters_given = true;
            }
            Long("port-base") => port_base = parse_num("--port-base", parser.value()?)?,
            Long("transport") => {
                framing = dlms_bridge::config::values::word(&parser.value()?.string()?)
                    .map_err(|e| usage(format!("--transport: {e}")))?
            }
            Long("seed") => seed = parse_num("--seed", parser.value()?)?,
            Long("password") => password = Some(parser.value()?.string()?.into_bytes()),
            Long("fault") => fault = parser.value()?.string()?.parse().map_err(UsageError)?,
            Long("fault-every") => fault_every = parse_num("--fault-every", parser.value()?)?,
            Long("profile-days") => profile_days = parse_num("--profile-days", parser.value()?)?,
            Long("max-info") => max_info = parse_num("--max-info", parser.value()?)?,
            Long("profile-period-s") => {
                profile_period = parse_num("--profile-period-s", parser.value()?)?
            }
            Long("outage-every-s") => {
                outage_every = parse_num("--outage-every-s", parser.value()?)?
            }
            Long("no-range-access") => range_access = false,
            Long("clock-read-only") => clock_settable = false,
            Long("window") => window = parse_num("--window", parser.value()?)?,
            Long("latency-ms") => latency_ms = parse_num("--latency-ms", parser.value()?)?,
            Long("line-baud") => line_baud = Some(parse_num("--line-baud", parser.value()?)?),
            Long("clock-offset-s") => {
                clock_offset = parse_num("--clock-offset-s", parser.value()?)?
            }
            Long("pdu") => pdu = parse_num("--pdu", parser.value()?)?,
            Long("referencing") => {
                referencing = dlms_bridge::config::values::word(&parser.value()?.string()?)
                    .map_err(|e| usage(format!("--referencing: {e}")))?
            }
            Long("duration-s") => {
                duration = Some(Duration::from_secs(parse_num(
                    "--duration-s",
                    parser.value()?,
                )?))
            }
            Long("serial") => serial = Some(parser.value()?.string()?),
            Long("mode-e") => mode_e = true,
            Long("encryption-key") => {
                ek = Some(super::args::hex_array::<16>(
                    "--encryption-key",
                    &parser.value()?.string()?,
                )?)
            }
            Long("authentication-key") => {
                ak = Some(super::args::hex_array::<16>(
                    "--authentication-key",
                    &parser.value()?.string()?,
                )?)
            }
            Long("system-title") => {
                title = super::args::hex_array::<8>("--system-title", &parser.value()?.string()?)?
            }
            Long("hls") => hls = true,
            Long("gbt") => gbt = true,
            Long("quirk") => {
                let name = parser.value()?.string()?;
                if name == "help" {
                    println!("quirks: {}", net::QUIRKS);
                    return Ok(ExitCode::SUCCESS);
                }
                // Checked now: a typo is a usage error, not a meter that behaves.
                SimConfig::new(MeterModel::new(0, 0), framing)
                    .with_quirk(&name)
                    .map_err(|e| usage(format!("--quirk: {e}")))?;
                quirks.push(name);
            }
            Long("push-to") => push_to = Some(parser.value()?.string()?),
            Long("push-every-s") => push_every = parse_num("--push-every-s", parser.value()?)?,
            Long(flag @ ("protocol" | "iec-mode")) => {
                let flag = flag.to_string();
                readout.take(&flag, &parser.value()?.string()?)?
            }
            Long("help") | Short('h') => {
                println!("{HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    if meters == 0 || u32::from(port_base) + u32::from(meters) > 65_536 {
        return Err(usage("--meters/--port-base leave the port range"));
    }
    if !(32..=2030).contains(&max_info) || pdu < 64 {
        return Err(usage("--max-info must be 32..2030 and --pdu at least 64"));
    }
    if !(1..=7).contains(&window) {
        return Err(usage("--window must be 1..7"));
    }
    if profile_period < 1 || outage_every < 100 {
        return Err(usage(
            "--profile-period-s must be at least 1 and --outage-every-s at least 100",
        ));
    }
    if mode_e && serial.is_none() {
        return Err(usage("--mode-e needs --serial"));
    }
    let readout = readout.mode(mode_e, meters_given && serial.is_some() && meters > 1)?;
    let security = match (ek, ak) {
        (Some(block_cipher), Some(authentication)) => {
            Some(dlms_bridge::sim::server::ServerSecurity::new(
                dlms_bridge::dlms::security::Keys {
                    block_cipher,
                    authentication,
                },
                title,
                hls,
            ))
        }
        (None, None) if !hls => None,
        _ => {
            return Err(usage(
                "security needs both --encryption-key and --authentication-key (--hls too)",
            ))
        }
    };
    let make = |i: u32| {
        let mut model = MeterModel::new(seed, i);
        model.profile_days = profile_days;
        model.profile_period = profile_period;
        model.outage_every = outage_every;
        model.range_access = range_access;
        model.clock_settable = clock_settable;
        model
            .clock_offset
            .store(clock_offset, std::sync::atomic::Ordering::Relaxed);
        let mut c = SimConfig::new(model, framing);
        c.server.password = password.clone();
        c.server.security = security.clone();
        c.server.max_receive_pdu = pdu;
        if gbt {
            c.server.conformance =
                Conformance(c.server.conformance.0 | Conformance::GENERAL_BLOCK_TRANSFER);
        }
        c.server.referencing = referencing;
        c.fault = fault;
        c.fault_every = fault_every;
        c.hdlc_max_info = max_info;
        c.hdlc_window = window;
        c.latency = Duration::from_millis(latency_ms);
        c.mode_e = mode_e;
        c.readout = readout;
        for q in &quirks {
            // Every name was checked as it was parsed.
            let _ = c.with_quirk(q);
        }
        c
    };
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(target) = push_to {
        return Ok(push_loop(
            &target,
            make(0).model,
            push_every.max(1),
            gbt,
            duration,
        ));
    }
    if let Some(path) = serial {
        if meters_given && meters > 1 {
            if mode_e {
                return Err(usage(
                    "--mode-e signs on to one meter per line: not with --meters",
                ));
            }
            let configs: Vec<SimConfig> = (0..u32::from(meters))
                .map(|i| {
                    let mut c = make(i);
                    c.server_address =
                        dlms_bridge::dlms::hdlc::ServerAddress::new(1, Some(17 + i as u16));
                    c
                })
                .collect();
            return Ok(serve_bus(&path, &configs, line_baud, duration, &stop));
        }
        return Ok(serve_serial(&path, make(0), duration, &stop));
    }
    let handles = match net::spawn_tcp_meters(port_base, meters, make, stop.clone()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("dlms-bridge: cannot listen on 127.0.0.1:{port_base}..: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    for (i, (port, _, _)) in handles.iter().enumerate() {
        let model = MeterModel::new(seed, i as u32);
        eprintln!(
            "dlms-bridge: simulated meter {i} (serial {}) on 127.0.0.1:{port} ({})",
            model.serial_number(),
            match readout {
                Some(mode) => format!("IEC 62056-21 readout, mode {mode:?}"),
                None => format!("{framing:?}"),
            }
        );
    }
    let start = Instant::now();
    while duration.is_none_or_elapsed(start) {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for (_, _, h) in handles {
        let _ = h.join();
    }
    Ok(ExitCode::SUCCESS)
}

/// `--protocol dlms|mode-c` and `--iec-mode a|b|c`.
#[derive(Default)]
struct ReadoutFlags {
    mode_c: bool,
    mode: Option<ReadoutMode>,
}

impl ReadoutFlags {
    fn take(&mut self, flag: &str, value: &str) -> Result<(), UsageError> {
        if flag == "protocol" {
            let p: dlms_bridge::config::values::Protocol = dlms_bridge::config::values::word(value)
                .map_err(|e| usage(format!("--protocol: {e}")))?;
            self.mode_c = p == dlms_bridge::config::values::Protocol::ModeC;
        } else {
            self.mode = Some(
                value
                    .parse()
                    .map_err(|e: String| usage(format!("--iec-mode: {e}")))?,
            );
        }
        Ok(())
    }

    /// The readout mode the meters offer, if they are readout meters.
    fn mode(&self, mode_e: bool, bus: bool) -> Result<Option<ReadoutMode>, UsageError> {
        if !self.mode_c {
            return match self.mode {
                Some(_) => Err(usage("--iec-mode needs --protocol mode-c")),
                None => Ok(None),
            };
        }
        if mode_e || bus {
            return Err(usage(
                "--protocol mode-c is one readout meter per line: not with --mode-e or --meters",
            ));
        }
        Ok(Some(self.mode.unwrap_or(ReadoutMode::C)))
    }
}

trait Deadline {
    fn is_none_or_elapsed(&self, start: Instant) -> bool;
}

impl Deadline for Option<Duration> {
    /// True while the simulator should keep running.
    fn is_none_or_elapsed(&self, start: Instant) -> bool {
        match self {
            None => true,
            Some(d) => start.elapsed() < *d,
        }
    }
}

fn serve_bus(
    path: &str,
    configs: &[SimConfig],
    line_baud: Option<u32>,
    duration: Option<Duration>,
    stop: &Arc<AtomicBool>,
) -> ExitCode {
    let start = Instant::now();
    eprintln!(
        "dlms-bridge: {} simulated meters on {path} (physical addresses 17..{})",
        configs.len(),
        16 + configs.len()
    );
    while duration.is_none_or_elapsed(start) {
        match serialport::new(path, 9600)
            .timeout(Duration::from_millis(200))
            .open()
        {
            Ok(port) => {
                let _ = net::serve_hdlc_bus(port, configs, line_baud, stop);
            }
            Err(e) => {
                eprintln!("dlms-bridge: {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ExitCode::SUCCESS
}

fn serve_serial(
    path: &str,
    config: SimConfig,
    duration: Option<Duration>,
    stop: &Arc<AtomicBool>,
) -> ExitCode {
    let counters = SimCounters::default();
    let start = Instant::now();
    let speaks = match (config.readout, config.mode_e) {
        (Some(mode), _) => format!("an IEC 62056-21 mode {mode:?} readout meter"),
        (None, true) => "DLMS/HDLC after an IEC 62056-21 mode E opening".to_string(),
        (None, false) => "DLMS/HDLC".to_string(),
    };
    eprintln!("dlms-bridge: simulated meter on {path}: {speaks}");
    while duration.is_none_or_elapsed(start) {
        // A readout meter listens at 300 baud 7E1 and follows its own rate switches.
        let port = match config.readout {
            Some(_) => serialport::new(path, 300)
                .data_bits(serialport::DataBits::Seven)
                .parity(serialport::Parity::Even),
            None => serialport::new(path, 9600),
        }
        .timeout(Duration::from_millis(200))
        .open();
        match (port, config.readout) {
            (Ok(port), Some(mode)) => {
                let mut line = port.try_clone().ok();
                let _ = mode_c::serve_switching(port, &config.model, mode, stop, |baud| {
                    if let Some(l) = line.as_mut() {
                        let _ = l.set_baud_rate(baud);
                    }
                });
            }
            (Ok(port), None) => {
                let _ = net::serve_stream(port, &config, &counters, stop);
            }
            (Err(e), _) => {
                eprintln!("dlms-bridge: {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ExitCode::SUCCESS
}

/// Pushes meter 0's notifications to `target` until `duration` passes (reconnecting when the
/// connection drops): the I/O around `sim::push`.
fn push_loop(
    target: &str,
    model: MeterModel,
    every: u64,
    gbt: bool,
    duration: Option<Duration>,
) -> ExitCode {
    use std::io::Write;
    let start = Instant::now();
    let mut invoke = 0u32;
    let mut conn: Option<std::net::TcpStream> = None;
    while duration.is_none_or_elapsed(start) {
        if conn.is_none() {
            conn = std::net::TcpStream::connect(target).ok();
        }
        if let Some(c) = conn.as_mut() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            invoke = invoke.wrapping_add(1);
            let apdu = dlms_bridge::sim::push::notification(&model, now, invoke);
            let sent = dlms_bridge::sim::push::frames(&apdu, gbt)
                .iter()
                .try_for_each(|f| c.write_all(f));
            if sent.is_err() {
                conn = None;
            }
        }
        std::thread::sleep(Duration::from_secs(every));
    }
    ExitCode::SUCCESS
}
