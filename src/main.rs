//! The `dlms-bridge` binary: the bridge (`run`, `demo`), configuration (`meter`, `settings`),
//! meter tools (`read`, `scan`, `simulate`) and offline protocol decoders.
#![forbid(unsafe_code)]

mod cli;

use dlms_bridge::cosem::Obis;
use std::process::ExitCode;

const USAGE: &str = "\
dlms-bridge — reads DLMS/COSEM meters and publishes to ThingsBoard over MQTT

USAGE:
    dlms-bridge read ...             read values, a profile or the object list from a meter
    dlms-bridge scan ...             find meters in the given host/port ranges
    dlms-bridge simulate ...         run simulated meters (loopback TCP or a serial device)
    dlms-bridge demo                 simulated meters + bridge (+ mosquitto if installed); Ctrl-C stops
    dlms-bridge run [--db PATH]      the bridge: poll meters, publish to ThingsBoard
    dlms-bridge meter ...            add|list|show|edit|rm|test|import|export|profile meters
    dlms-bridge settings ...         show|get|set MQTT / ThingsBoard / outbox settings
    dlms-bridge provision ...        register this gateway with ThingsBoard (device provisioning)
    dlms-bridge backup FILE          the whole database, secrets included, to a new file (0600)
    dlms-bridge restore FILE         the database from a backup (the bridge stopped)
    dlms-bridge decode-hdlc HEX      decode a byte stream of HDLC frames or wrapper PDUs
    dlms-bridge decode-apdu HEX      decode one APDU (--encryption-key/--authentication-key
                                     open ciphered ones)
    dlms-bridge obis CODE            normalise an OBIS code
    dlms-bridge help [COMMAND]       this text, or a command's (like COMMAND --help)
    dlms-bridge --version
  maintainers:
    dlms-bridge docs configuration   Markdown reference of every meter field and setting

EXIT CODES: 0 done, 1 failed (meter, network, database, file), 2 usage error (unknown
command, flag or setting, a missing argument, a bad value on the command line)
";

type Sub = fn(lexopt::Parser) -> Result<ExitCode, cli::args::UsageError>;

/// The commands that parse their own options, by name.
const SUBCOMMANDS: &[(&str, Sub)] = &[
    ("read", cli::read::run),
    ("scan", cli::scan::run),
    ("simulate", cli::simulate::run),
    ("run", cli::run::run),
    ("demo", cli::demo::run),
    ("meter", cli::meter::run),
    ("settings", cli::meter::settings),
    ("provision", cli::provision::run),
    ("docs", cli::docs::run),
    ("backup", cli::backup::backup),
    ("restore", cli::backup::restore),
    ("decode-hdlc", cli::decode::hdlc),
    ("decode-apdu", cli::decode::apdu),
];

/// Every command's name, for the near-miss suggestion.
const COMMANDS: &[&str] = &[
    "read",
    "scan",
    "simulate",
    "run",
    "demo",
    "meter",
    "settings",
    "provision",
    "docs",
    "backup",
    "restore",
    "decode-hdlc",
    "decode-apdu",
    "obis",
    "help",
];

fn sub(name: &str) -> Option<Sub> {
    SUBCOMMANDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

fn run_sub(name: &str, run: Sub, args: &[String]) -> ExitCode {
    match run(lexopt::Parser::from_args(args.iter())) {
        Ok(code) => code,
        Err(cli::args::UsageError(msg)) => {
            eprintln!("dlms-bridge {name}: {msg} (see --help)");
            ExitCode::from(2)
        }
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprint!("dlms-bridge: {msg}\n\n{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some((name, run)) = args.first().and_then(|a| sub(a).map(|f| (a, f))) {
        return run_sub(name, run, &args[1..]);
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
        (Some("obis"), Some(code)) => match code.parse::<Obis>() {
            Ok(obis) => {
                println!("{obis}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                // A bad value on the command line: a usage error.
                eprintln!("dlms-bridge obis: {e}");
                ExitCode::from(2)
            }
        },
        (Some("obis"), None) => usage_error("obis needs a CODE, e.g. 1-0:1.8.0"),
        (Some("help"), Some(cmd)) => match sub(cmd) {
            Some(run) => run_sub(cmd, run, &["--help".to_string()]),
            None if COMMANDS.contains(&cmd) => {
                print!("{USAGE}");
                ExitCode::SUCCESS
            }
            None => unknown(cmd),
        },
        (Some("-h" | "--help" | "help"), _) | (None, _) => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        (Some(cmd), _) => unknown(cmd),
    }
}

fn unknown(cmd: &str) -> ExitCode {
    let hint = cli::args::did_you_mean(cmd, COMMANDS.iter().copied());
    let what = if cmd.starts_with('-') {
        "unknown option"
    } else {
        "unknown command"
    };
    usage_error(&format!("{what} {cmd:?}{hint}"))
}
