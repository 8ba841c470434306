//! Finding meters: every address x port given (and nowhere else) probed with a real SNRM/AARQ,
//! then the serial number and logical device name read where the association allows. Used by
//! `dlms-bridge scan` and the gateway's `scan` RPC.

use crate::client::json;
use crate::client::reads::{self, Target};
use crate::client::{Endpoint, MeterTarget};
use crate::config::values::{word_of, Transport};
use crate::config::MeterConfig;
use crate::cosem::Obis;
use serde_json::json;
use std::net::Ipv4Addr;
use std::sync::Mutex;

/// The most addresses x ports one scan may probe: a typo must not become a sweep.
pub const MAX_PROBES: usize = 65_536;
const PARALLEL: usize = 16;

/// `10.1.0.0/16` (or one address): the block's first address and its prefix length.
pub fn parse_cidr(text: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad = || format!("{text:?} is not an IPv4 CIDR block (e.g. 10.1.0.0/16)");
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, l.parse::<u8>().map_err(|_| bad())?),
        None => (text, 32),
    };
    let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
    if len > 32 {
        return Err(bad());
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ok((Ipv4Addr::from(u32::from(addr) & mask), len))
}

/// `127.0.0.1`, `127.0.0.1-127.0.0.9`, `127.0.0.1-9`, or a comma list of those.
pub fn parse_hosts(spec: &str) -> Result<Vec<Ipv4Addr>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("--hosts: {part:?} is not an IPv4 address or range");
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
            return Err(format!("--hosts: {part:?} ends before it starts"));
        }
        if (e - s) as usize >= MAX_PROBES {
            return Err(format!("--hosts: {part:?} is too large"));
        }
        out.extend((s..=e).map(Ipv4Addr::from));
    }
    if out.is_empty() {
        return Err("--hosts is empty".to_string());
    }
    Ok(out)
}

/// `4059`, `4059-4062`, or a comma list of those.
pub fn parse_ports(spec: &str) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("--ports: {part:?} is not a port or range");
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a == 0 || b < a {
            return Err(bad());
        }
        out.extend(a..=b);
    }
    if out.is_empty() {
        return Err("--ports is empty".to_string());
    }
    Ok(out)
}

/// Each port is tried with HDLC, then the wrapper, unless a transport is given.
pub const TRANSPORTS: [Transport; 2] = [Transport::Hdlc, Transport::Wrapper];

/// The meter a probe uses before its flags: the defaults with 1 s time-outs (a probe of an
/// address where nothing answers costs one connect time-out).
pub fn probe_template() -> MeterConfig {
    MeterConfig {
        name: "scan".into(),
        connect_timeout_ms: 1000,
        response_timeout_ms: 1000,
        inter_frame_timeout_ms: 1000,
        ..MeterConfig::default()
    }
}

/// Probes every host x port with each transport in turn (the first that answers wins),
/// `PARALLEL` at a time, with the addressing, authentication and time-outs of `template`;
/// `found` gets one JSON object per meter as it is found.
pub fn scan(
    hosts: &[Ipv4Addr],
    ports: &[u16],
    template: &MeterConfig,
    transports: &[Transport],
    found: &(dyn Fn(serde_json::Value) + Sync),
) -> usize {
    let work: Vec<(Ipv4Addr, u16)> = hosts
        .iter()
        .flat_map(|h| ports.iter().map(move |p| (*h, *p)))
        .collect();
    let next = Mutex::new(work.into_iter());
    let count = Mutex::new(0usize);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| loop {
                let Some((host, port)) = next.lock().ok().and_then(|mut it| it.next()) else {
                    return;
                };
                for transport in transports {
                    let meter = MeterConfig {
                        host: Some(host.to_string()),
                        port: Some(port),
                        transport: *transport,
                        ..template.clone()
                    };
                    let Some(target) = meter.target() else {
                        continue;
                    };
                    let Ok(target) = crate::config::fresh_association(&target, false) else {
                        continue;
                    };
                    if let Some(line) = probe(&target, *transport) {
                        found(line);
                        *count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                        break;
                    }
                }
            });
        }
    });
    count.into_inner().unwrap_or_else(|e| e.into_inner())
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
