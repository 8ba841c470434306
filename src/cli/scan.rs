//! `dlms-bridge scan`: finds meters in the host and port ranges given (and nowhere else) by
//! probing each with a real SNRM/AARQ, then reads the serial number and logical device name
//! where the association allows. One JSON line per meter found.

use super::args::{usage, AfterYesNo, MeterFlags, UsageError};
use dlms_bridge::scan::{probe_template, scan, targets, TargetError, MAX_PROBES, TRANSPORTS};
use lexopt::prelude::*;
use std::process::ExitCode;

pub const HELP: &str = "\
dlms-bridge scan --hosts 127.0.0.1-127.0.0.20 --ports 3333,4059,4061 [--transport hdlc|wrapper]
  --hosts   one address, a range A-B (or A-N for the last octet), a CIDR block A/N, or a
            comma list of those
  --ports   comma list of ports (ranges P-Q allowed)
  without --transport, each port is tried with HDLC, then the wrapper
  other options as for `read` (addresses, --auth, ...); the time-outs default to 1000 ms here
  (a probe of an address where nothing answers costs one connect time-out)";

pub fn run(mut parser: lexopt::Parser) -> Result<ExitCode, UsageError> {
    let mut flags = MeterFlags::anonymous(probe_template(), AfterYesNo::Refuse);
    let (mut hosts, mut ports) = (None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("hosts") => hosts = Some(parser.value()?.string()?),
            Long("ports") => ports = Some(parser.value()?.string()?),
            Long("help") | Short('h') => {
                println!("{HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            Long(name) => {
                let name = name.to_string();
                if !flags.take(&name, &mut parser)? {
                    return Err(usage(format!("--{name} is not a scan option")));
                }
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    // Never a default range: the user names every address that will be contacted.
    let hosts =
        hosts.ok_or_else(|| usage("scan needs --hosts (no default range is ever scanned)"))?;
    let ports = ports.ok_or_else(|| usage("scan needs --ports"))?;
    // Counted before they are expanded; the operator's own scan is not held to scan.allowed.
    let targets = targets(&hosts, &ports, MAX_PROBES).map_err(|e| match e {
        TargetError::Hosts(_) | TargetError::Ports(_) => usage(format!("--{e}")),
        _ => usage(e.to_string()),
    })?;
    let (hosts, ports) = (targets.hosts, targets.ports);
    if ["host", "port", "serial"]
        .iter()
        .any(|f| flags.was_given(f))
    {
        return Err(usage(
            "scan takes --hosts/--ports, not --host/--port/--serial",
        ));
    }
    let transports = if flags.was_given("transport") {
        vec![flags.meter.transport]
    } else {
        TRANSPORTS.to_vec()
    };
    // Checked once, on the first address, so that a bad combination is one usage error.
    flags.meter.host = Some(hosts[0].to_string());
    flags.meter.port = Some(ports[0]);
    let template = flags.finish()?;
    let found = scan(&hosts, &ports, &template, &transports, &|line| {
        let _ = super::write_lines(&[line.to_string()]);
    });
    eprintln!("dlms-bridge: scan done: {found} meter(s) found");
    Ok(ExitCode::SUCCESS)
}
