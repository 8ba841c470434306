//! `dlms-bridge scan`: finds meters in the host and port ranges given (and nowhere else) by
//! probing each with a real SNRM/AARQ, then reads the serial number and logical device name
//! where the association allows. One JSON line per meter found.

use super::args::{usage, AfterYesNo, MeterFlags, UsageError};
use dlms_bridge::client::json;
use dlms_bridge::client::reads::{self, Target};
use dlms_bridge::client::{Endpoint, MeterTarget};
use dlms_bridge::config::values::{word_of, Transport};
use dlms_bridge::config::MeterConfig;
use dlms_bridge::cosem::Obis;
use lexopt::prelude::*;
use serde_json::json;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::Mutex;

pub const HELP: &str = "\
dlms-bridge scan --hosts 127.0.0.1-127.0.0.20 --ports 3333,4059,4061 [--transport hdlc|wrapper]
  --hosts   one address, a range A-B (or A-N for the last octet), or a comma list of those
  --ports   comma list of ports (ranges P-Q allowed)
  without --transport, each port is tried with HDLC, then the wrapper
  other options as for `read` (addresses, --auth, ...); the time-outs default to 1000 ms here
  (a probe of an address where nothing answers costs one connect time-out)";

/// The most addresses x ports one scan may probe: a typo must not become a sweep.
const MAX_PROBES: usize = 65_536;
const PARALLEL: usize = 16;

fn parse_hosts(spec: &str) -> Result<Vec<Ipv4Addr>, UsageError> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || usage(format!("--hosts: {part:?} is not an IPv4 address or range"));
        let (a, b) = match part.split_once('-') {
            None => (part, None),
            Some((a, b)) => (a, Some(b)),
        };
        let start: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let end = match b {
            None => start,
            Some(b) if !b.contains('.') => {
                let last: u8 = b.parse().map_err(|_| bad())?;
                let o = start.octets();
                Ipv4Addr::new(o[0], o[1], o[2], last)
            }
            Some(b) => b.parse().map_err(|_| bad())?,
        };
        let (s, e) = (u32::from(start), u32::from(end));
        if e < s {
            return Err(usage(format!("--hosts: {part:?} ends before it starts")));
        }
        if (e - s) as usize >= MAX_PROBES {
            return Err(usage(format!("--hosts: {part:?} is too large")));
        }
        out.extend((s..=e).map(Ipv4Addr::from));
    }
    if out.is_empty() {
        return Err(usage("--hosts is empty"));
    }
    Ok(out)
}

fn parse_ports(spec: &str) -> Result<Vec<u16>, UsageError> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || usage(format!("--ports: {part:?} is not a port or range"));
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a == 0 || b < a {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    if out.is_empty() {
        return Err(usage("--ports is empty"));
    }
    Ok(out)
}

pub fn run(mut parser: lexopt::Parser) -> Result<ExitCode, UsageError> {
    let mut flags = MeterFlags::anonymous(
        MeterConfig {
            name: "scan".into(),
            connect_timeout_ms: 1000,
            response_timeout_ms: 1000,
            inter_frame_timeout_ms: 1000,
            ..MeterConfig::default()
        },
        AfterYesNo::Refuse,
    );
    let (mut hosts, mut ports) = (None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("hosts") => hosts = Some(parse_hosts(&parser.value()?.string()?)?),
            Long("ports") => ports = Some(parse_ports(&parser.value()?.string()?)?),
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
    if hosts.len() * ports.len() > MAX_PROBES {
        return Err(usage(format!(
            "{} probes requested; the limit is {MAX_PROBES}",
            hosts.len() * ports.len()
        )));
    }
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
        vec![Transport::Hdlc, Transport::Wrapper]
    };
    // Checked once, on the first address, so that a bad combination is one usage error.
    flags.meter.host = Some(hosts[0].to_string());
    flags.meter.port = Some(ports[0]);
    let template = flags.finish()?;
    let work: Vec<(Ipv4Addr, u16)> = hosts
        .iter()
        .flat_map(|h| ports.iter().map(move |p| (*h, *p)))
        .collect();
    let next = Mutex::new(work.into_iter());
    let found = Mutex::new(0usize);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| loop {
                let Some((host, port)) = next.lock().ok().and_then(|mut it| it.next()) else {
                    return;
                };
                for transport in &transports {
                    let meter = MeterConfig {
                        host: Some(host.to_string()),
                        port: Some(port),
                        transport: *transport,
                        ..template.clone()
                    };
                    let Some(target) = meter.target() else {
                        continue;
                    };
                    let Ok(target) = dlms_bridge::config::fresh_association(&target, false) else {
                        continue;
                    };
                    if let Some(line) = probe(&target, *transport) {
                        let _ = super::write_lines(&[line.to_string()]);
                        *found.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                        break;
                    }
                }
            });
        }
    });
    let found = found.into_inner().unwrap_or_else(|e| e.into_inner());
    eprintln!("dlms-bridge: scan done: {found} meter(s) found");
    Ok(ExitCode::SUCCESS)
}

/// One probe: `None` if nothing DLMS answers there.
fn probe(target: &MeterTarget, transport: Transport) -> Option<serde_json::Value> {
    let mut conn = target.connect().ok()?;
    let identity = [
        Target::new(1, Obis::new(0, 0, 96, 1, 0, 255), 2),
        Target::new(1, Obis::new(0, 0, 42, 0, 0, 255), 2),
    ];
    let values = reads::read_raw(&mut conn, &identity).unwrap_or_default();
    let field = |i: usize| values.get(i).and_then(|r| r.as_ref().ok()).map(json::data);
    let Endpoint::Tcp { host, port } = &target.endpoint else {
        return None;
    };
    let line = json!({
        "host": host,
        "port": port,
        "transport": word_of(transport),
        "serial_number": field(0),
        "logical_device_name": field(1),
    });
    conn.release();
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_specs() {
        assert_eq!(parse_hosts("127.0.0.1-127.0.0.3").unwrap().len(), 3);
        assert_eq!(parse_hosts("127.0.0.1-20").unwrap().len(), 20);
        assert_eq!(parse_hosts("127.0.0.5, 127.0.0.9").unwrap().len(), 2);
        assert!(parse_hosts("127.0.0.9-127.0.0.1").is_err());
        assert!(parse_hosts("10.0.0.0-11.0.0.0").is_err());
        assert!(parse_hosts("example.com").is_err());
        assert!(parse_hosts("").is_err());
        assert_eq!(
            parse_ports("3333,4059,4061-4063").unwrap(),
            [3333, 4059, 4061, 4062, 4063]
        );
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("70000").is_err());
    }
}
