//! The `dlms-bridge` binary: the bridge (`run`, `demo`), configuration (`meter`, `settings`),
//! meter tools (`read`, `scan`, `simulate`) and offline protocol decoders.
#![forbid(unsafe_code)]

mod cli;

use dlms_bridge::cosem::Obis;
use dlms_bridge::dlms::hdlc::Deframer;
use dlms_bridge::dlms::xdlms::Apdu;
use std::process::ExitCode;

const USAGE: &str = "\
dlms-bridge — reads DLMS/COSEM meters and publishes to ThingsBoard over MQTT

USAGE:
    dlms-bridge read ...             read values, a profile or the object list from a meter
    dlms-bridge scan ...             find meters in the given host/port ranges
    dlms-bridge simulate ...         run simulated meters (loopback TCP or a serial device)
    dlms-bridge demo                 simulated meters + bridge (+ mosquitto if installed); Ctrl-C stops
    dlms-bridge run [--db PATH]      the bridge: poll meters, publish to ThingsBoard
    dlms-bridge meter ...            add|list|show|edit|rm|import|export meters
    dlms-bridge settings ...         show|set MQTT / ThingsBoard / outbox settings
    dlms-bridge provision ...        register this gateway with ThingsBoard (device provisioning)
    dlms-bridge decode-hdlc HEX      decode a byte stream of HDLC frames and their APDUs
    dlms-bridge decode-apdu HEX      decode one APDU
    dlms-bridge obis CODE            normalise an OBIS code
    dlms-bridge --version
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sub: Option<fn(lexopt::Parser) -> Result<ExitCode, cli::args::UsageError>> =
        match args.first().map(String::as_str) {
            Some("read") => Some(cli::read::run),
            Some("scan") => Some(cli::scan::run),
            Some("simulate") => Some(cli::simulate::run),
            Some("run") => Some(cli::run::run),
            Some("demo") => Some(cli::demo::run),
            Some("meter") => Some(cli::meter::run),
            Some("settings") => Some(cli::meter::settings),
            Some("provision") => Some(cli::provision::run),
            _ => None,
        };
    if let Some(run) = sub {
        return match run(lexopt::Parser::from_args(args.iter().skip(1))) {
            Ok(code) => code,
            Err(cli::args::UsageError(msg)) => {
                eprintln!("dlms-bridge {}: {msg} (see --help)", args[0]);
                ExitCode::from(2)
            }
        };
    }
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(0), arg(1)) {
        (Some("--version" | "-V"), _) => {
            println!(
                "dlms-bridge {} (commit {}, {}, {})",
                env!("CARGO_PKG_VERSION"),
                env!("DLMS_BRIDGE_COMMIT"),
                env!("DLMS_BRIDGE_TARGET"),
                if cfg!(feature = "tls") {
                    "MQTT TLS"
                } else {
                    "no TLS"
                }
            );
            ExitCode::SUCCESS
        }
        (Some("decode-hdlc"), Some(hex)) => with_hex(hex, decode_hdlc),
        (Some("decode-apdu"), Some(hex)) => with_hex(hex, |b| {
            match Apdu::decode(b) {
                Ok(apdu) => println!("{apdu:?}"),
                Err(e) => {
                    eprintln!("dlms-bridge: invalid APDU: {e}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }),
        (Some("obis"), Some(code)) => match code.parse::<Obis>() {
            Ok(obis) => {
                println!("{obis}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("dlms-bridge: {e}");
                ExitCode::FAILURE
            }
        },
        (Some("-h" | "--help"), _) | (None, _) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprint!("dlms-bridge: unknown command\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn with_hex(hex: &str, f: impl FnOnce(&[u8]) -> ExitCode) -> ExitCode {
    match cli::args::parse_hex(hex) {
        Some(b) => f(&b),
        None => {
            eprintln!("dlms-bridge: not a hex string");
            ExitCode::from(2)
        }
    }
}

fn decode_hdlc(bytes: &[u8]) -> ExitCode {
    let mut deframer = Deframer::new();
    deframer.push(bytes);
    while let Some(frame) = deframer.next_frame() {
        println!("{frame:?}");
        let info = frame.info.get(3..).unwrap_or_default();
        if !info.is_empty() && !frame.segmented {
            match Apdu::decode(info) {
                Ok(apdu) => println!("  {apdu:?}"),
                Err(e) => println!("  (APDU not decoded: {e})"),
            }
        }
    }
    let stats = deframer.stats();
    if stats.discarded_bytes > 0 {
        eprintln!(
            "dlms-bridge: {} byte(s) discarded, {} checksum error(s)",
            stats.discarded_bytes, stats.checksum_errors
        );
    }
    ExitCode::SUCCESS
}
