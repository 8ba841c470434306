//! Finding meters: every address x port given (and nowhere else) probed with a real SNRM/AARQ,
//! then the serial number and logical device name read where the association allows. Used by
//! `dlms-bridge scan`, the page's scan and the gateway's `scan` RPC.
//!
//! A request's hosts and ports are counted before anything is expanded: a comma list of 2,000
//! /16 ranges is 131 million addresses, and expanding it first took the bridge to 509 MiB
//! before the cap refused it. The page and the RPC may only probe the blocks of `scan.allowed`.

use crate::client::json;
use crate::client::reads::{self, Target};
use crate::client::{Endpoint, MeterTarget};
use crate::config::values::{word_of, Transport};
use crate::config::{ConfigError, MeterConfig};
use crate::cosem::Obis;
use serde_json::json;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Mutex;

/// The most addresses x ports one scan may probe: a typo must not become a sweep.
pub const MAX_PROBES: usize = 65_536;
const PARALLEL: usize = 16;

/// The longest time-out a scan request may give: a meter may take up to 600 s, but a scan
/// from the page or an RPC waits for every silent address, so a large one would hold the
/// request (and the one scan allowed at a time) for hours.
pub const MAX_SCAN_TIMEOUT_MS: u32 = 5000;

/// Why a scan request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// The hosts text is malformed: why.
    Hosts(String),
    /// The ports text is malformed: why.
    Ports(String),
    /// More probes than the caller allows (counted, never expanded).
    TooMany { probes: u64, cap: usize },
    /// An address outside `scan.allowed` (its value, and the blocks it stands for).
    NotAllowed {
        host: Ipv4Addr,
        setting: String,
        blocks: String,
    },
}

impl TargetError {
    /// The request field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            TargetError::Ports(_) => "ports",
            _ => "hosts",
        }
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Hosts(why) => write!(f, "hosts: {why}"),
            TargetError::Ports(why) => write!(f, "ports: {why}"),
            TargetError::TooMany { probes, cap } => {
                write!(f, "{probes} probes requested; at most {cap}")
            }
            TargetError::NotAllowed {
                host,
                setting,
                blocks,
            } => write!(
                f,
                "{host} is outside scan.allowed ({setting}: {blocks}); only those addresses may be scanned from here (dlms-bridge settings set scan.allowed CIDR,... widens it; dlms-bridge scan on the gateway is not restricted)"
            ),
        }
    }
}

impl std::error::Error for TargetError {}

/// What one scan probes: every host x every port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    pub hosts: Vec<Ipv4Addr>,
    pub ports: Vec<u16>,
}

impl Targets {
    /// Hosts x ports.
    pub fn probes(&self) -> usize {
        self.hosts.len() * self.ports.len()
    }

    /// Refuses the first host outside `allowed`.
    pub fn check_allowed(&self, allowed: &Allowed) -> Result<(), TargetError> {
        match self.hosts.iter().find(|h| !allowed.contains(**h)) {
            Some(host) => Err(TargetError::NotAllowed {
                host: *host,
                setting: allowed.setting.clone(),
                blocks: allowed.blocks_text(),
            }),
            None => Ok(()),
        }
    }
}

/// `hosts` x `ports` (texts as [`host_ranges`] and [`port_ranges`] take them), refused
/// without expanding anything when they make more than `cap` probes: nothing larger than
/// `cap` addresses or ports is ever allocated.
pub fn targets(hosts: &str, ports: &str, cap: usize) -> Result<Targets, TargetError> {
    let host_ranges = host_ranges(hosts)?;
    let port_ranges = port_ranges(ports)?;
    let probes = count(&host_ranges).saturating_mul(count(&port_ranges));
    if probes > cap as u64 {
        return Err(TargetError::TooMany { probes, cap });
    }
    Ok(Targets {
        hosts: host_ranges
            .iter()
            .flat_map(|(s, e)| (*s..=*e).map(Ipv4Addr::from))
            .collect(),
        ports: port_ranges.iter().flat_map(|(s, e)| *s..=*e).collect(),
    })
}

/// How many values the inclusive ranges hold, overflow-safe (each range is at most 2^32).
pub fn count<T: Copy + Into<u64>>(ranges: &[(T, T)]) -> u64 {
    ranges.iter().fold(0u64, |sum, (s, e)| {
        let (s, e): (u64, u64) = ((*s).into(), (*e).into());
        sum.saturating_add(e.saturating_sub(s) + 1)
    })
}

/// `127.0.0.1`, `127.0.0.1-127.0.0.9`, `127.0.0.1-9`, `10.1.2.0/24`, or a comma list of
/// those, as inclusive ranges (a few bytes per entry of the text, whatever the ranges'
/// sizes; the probe cap bounds what is scanned).
pub fn host_ranges(spec: &str) -> Result<Vec<(u32, u32)>, TargetError> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || TargetError::Hosts(format!("{part:?} is not an IPv4 address or range"));
        if part.contains('/') {
            let (first, len) = parse_cidr(part).map_err(|_| bad())?;
            let size = if len == 0 {
                u32::MAX
            } else {
                (1u32 << (32 - len)) - 1
            };
            let start = u32::from(first);
            out.push((start, start.saturating_add(size)));
            continue;
        }
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
            return Err(TargetError::Hosts(format!(
                "{part:?} ends before it starts"
            )));
        }
        out.push((s, e));
    }
    if out.is_empty() {
        return Err(TargetError::Hosts("empty".to_string()));
    }
    Ok(out)
}

/// `4059`, `4059-4062`, or a comma list of those, as inclusive ranges.
pub fn port_ranges(spec: &str) -> Result<Vec<(u16, u16)>, TargetError> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || TargetError::Ports(format!("{part:?} is not a port or range"));
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a == 0 || b < a {
            return Err(bad());
        }
        out.push((a, b));
    }
    if out.is_empty() {
        return Err(TargetError::Ports("empty".to_string()));
    }
    Ok(out)
}

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
    Ok((Ipv4Addr::from(u32::from(addr) & mask(len)), len))
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len)
    }
}

/// The blocks a scan from the page or an RPC may probe (the setting `scan.allowed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// The setting as given ("auto" or the blocks), for messages.
    pub setting: String,
    pub blocks: Vec<(Ipv4Addr, u8)>,
}

impl Allowed {
    /// From the setting; "auto" reads the gateway's own subnets from /proc/net/route.
    pub fn from_setting(setting: &str) -> Result<Allowed, String> {
        Allowed::resolve(setting, || {
            std::fs::read_to_string("/proc/net/route").unwrap_or_else(|e| {
                log::warn!(
                    "scan: /proc/net/route unreadable ({e}): scan.allowed auto is loopback only"
                );
                String::new()
            })
        })
    }

    /// "auto": the directly connected subnets of `routes()` (the text of /proc/net/route)
    /// and loopback; otherwise the comma list of CIDR blocks.
    pub fn resolve(setting: &str, routes: impl FnOnce() -> String) -> Result<Allowed, String> {
        let setting = setting.trim();
        let blocks = if setting == "auto" {
            let mut blocks = connected_subnets(&routes());
            blocks.push((Ipv4Addr::new(127, 0, 0, 0), 8));
            blocks
        } else {
            setting
                .split(',')
                .map(|b| parse_cidr(b.trim()))
                .collect::<Result<_, _>>()?
        };
        Ok(Allowed {
            setting: setting.to_string(),
            blocks,
        })
    }

    pub fn contains(&self, host: Ipv4Addr) -> bool {
        let h = u32::from(host);
        self.blocks
            .iter()
            .any(|(net, len)| h & mask(*len) == u32::from(*net))
    }

    fn blocks_text(&self) -> String {
        let list: Vec<String> = self
            .blocks
            .iter()
            .map(|(net, len)| format!("{net}/{len}"))
            .collect();
        list.join(", ")
    }
}

/// The directly connected IPv4 subnets in the text of /proc/net/route: routes that are up
/// (flag 1) with no gateway (00000000), as CIDR blocks. Destination and Mask are the kernel's
/// 32-bit words in hex, bytes in network order in memory (little-endian text on the
/// gateways we run on). A default route without a gateway (mask 0, a point-to-point link) is
/// left out: it would allow the whole Internet.
pub fn connected_subnets(text: &str) -> Vec<(Ipv4Addr, u8)> {
    let hex = |f: &str| u32::from_str_radix(f, 16).ok();
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(dest), Some(gateway), Some(flags), Some(m)) = (
            f.get(1).and_then(|v| hex(v)),
            f.get(2).and_then(|v| hex(v)),
            f.get(3).and_then(|v| hex(v)),
            f.get(7).and_then(|v| hex(v)),
        ) else {
            continue;
        };
        let mask = u32::from(Ipv4Addr::from(m.to_le_bytes()));
        let len = mask.leading_ones();
        if gateway != 0 || flags & 1 == 0 || len == 0 || mask.count_ones() != len {
            continue;
        }
        let net = Ipv4Addr::from(u32::from(Ipv4Addr::from(dest.to_le_bytes())) & mask);
        let block = (net, len as u8);
        if !out.contains(&block) {
            out.push(block);
        }
    }
    out
}

/// The probe template with the fields of a scan request applied (addresses, authentication,
/// transport, time-outs); time-outs above [`MAX_SCAN_TIMEOUT_MS`] are refused.
pub fn request_template(
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<MeterConfig, ConfigError> {
    let mut template = probe_template();
    crate::config::json::apply_json(&mut template, fields)?;
    for (name, ms) in [
        ("connect_timeout_ms", template.connect_timeout_ms),
        ("response_timeout_ms", template.response_timeout_ms),
        ("inter_frame_timeout_ms", template.inter_frame_timeout_ms),
    ] {
        if ms > MAX_SCAN_TIMEOUT_MS {
            return Err(ConfigError::field(
                name,
                format!("{ms} ms: a scan waits at most {MAX_SCAN_TIMEOUT_MS} ms per answer"),
            ));
        }
    }
    Ok(template)
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

/// One probe: `None` if nothing DLMS answers there. A meter that answers but refuses the
/// association is found too, with why (`refused`): "0 meters found" for a meter that wants a
/// password sent the user looking for a wiring fault (issue 25).
fn probe(target: &MeterTarget, transport: Transport) -> Option<serde_json::Value> {
    let mut conn = match target.connect() {
        Ok(c) => c,
        Err(e) => return refused(target, transport, &e),
    };
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
        // What `referencing auto` found the meter to speak.
        "referencing": if conn.short_names().is_some() { "sn" } else { "ln" },
    });
    conn.release();
    Some(line)
}

/// The line for a meter that answered DLMS and refused the association; `None` for any
/// other failure (nothing there, or not a meter).
fn refused(
    target: &MeterTarget,
    transport: Transport,
    e: &crate::client::ClientError,
) -> Option<serde_json::Value> {
    let why = e.refusal_advice()?;
    let Endpoint::Tcp { host, port } = &target.endpoint else {
        return None;
    };
    Some(json!({
        "host": host,
        "port": port,
        "transport": word_of(transport),
        "serial_number": null,
        "logical_device_name": null,
        "refused": why,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_blocks_are_ranges() {
        assert_eq!(
            host_ranges("10.1.2.0/30").unwrap(),
            vec![(0x0A01_0200, 0x0A01_0203)]
        );
        assert_eq!(
            host_ranges("10.1.2.7/32").unwrap(),
            vec![(0x0A01_0207, 0x0A01_0207)]
        );
        assert_eq!(host_ranges("0.0.0.0/0").unwrap(), vec![(0, u32::MAX)]);
        assert!(host_ranges("10.1.2.0/33").is_err());
    }

    /// Issue 25 item 7: a meter that wants a password is found, and told apart.
    #[test]
    fn a_meter_refusing_the_association_is_found_with_why() {
        use crate::sim::net::{bind_ephemeral, serve_tcp, SimConfig};
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let listener = bind_ephemeral().unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut config = SimConfig::new(crate::sim::model::MeterModel::new(1, 0), Transport::Hdlc);
        config.server.password = Some(b"secret".to_vec());
        let s = stop.clone();
        std::thread::spawn(move || serve_tcp(listener, config, Default::default(), s));
        let mut template = probe_template();
        template.auth = crate::config::values::AuthKind::Low;
        template.password = Some(crate::config::values::Secret("wrong".into()));
        let found = Mutex::new(Vec::new());
        let n = scan(
            &[Ipv4Addr::LOCALHOST],
            &[port],
            &template,
            &[Transport::Hdlc],
            &|line| found.lock().unwrap().push(line),
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let found = found.into_inner().unwrap();
        assert_eq!(n, 1, "{found:?}");
        let why = found[0]["refused"].as_str().unwrap_or("");
        assert!(why.contains("authentication"), "{found:?}");
    }

    #[test]
    fn host_and_port_specs() {
        let hosts = |spec: &str| targets(spec, "1", MAX_PROBES).map(|t| t.hosts.len());
        assert_eq!(hosts("127.0.0.1-127.0.0.3"), Ok(3));
        assert_eq!(hosts("127.0.0.1-20"), Ok(20));
        assert_eq!(hosts("127.0.0.5, 127.0.0.9"), Ok(2));
        assert!(hosts("127.0.0.9-127.0.0.1").is_err());
        assert!(hosts("10.0.0.0-11.0.0.0").is_err());
        assert!(matches!(hosts("example.com"), Err(TargetError::Hosts(_))));
        assert!(hosts("").is_err());
        assert_eq!(
            targets("127.0.0.1", "3333,4059,4061-4063", 8)
                .unwrap()
                .ports,
            [3333, 4059, 4061, 4062, 4063]
        );
        assert!(matches!(
            targets("127.0.0.1", "0", 8),
            Err(TargetError::Ports(_))
        ));
        assert!(targets("127.0.0.1", "70000", 8).is_err());
    }

    /// 2,000 /16 ranges: counted (131 million), refused, never expanded.
    #[test]
    fn a_huge_list_is_counted_and_refused_before_any_expansion() {
        let huge = vec!["1.0.0.0-1.0.255.255"; 2000].join(",");
        let ranges = host_ranges(&huge).unwrap();
        assert_eq!(ranges.len(), 2000, "one pair per entry, not per address");
        assert_eq!(count(&ranges), 2000 * 65_536);
        let t0 = std::time::Instant::now();
        let e = targets(&huge, "4059", 256).unwrap_err();
        assert!(t0.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(
            e,
            TargetError::TooMany {
                probes: 131_072_000,
                cap: 256
            }
        );
        assert_eq!(e.to_string(), "131072000 probes requested; at most 256");
        // Ports multiply, and the product cannot overflow.
        let all = vec!["0.0.0.0-255.255.255.255"; 5000].join(",");
        let ports = vec!["1-65535"; 5000].join(",");
        assert!(matches!(
            targets(&all, &ports, MAX_PROBES),
            Err(TargetError::TooMany { .. })
        ));
        assert_eq!(count(&[(0u32, u32::MAX)]), 1 << 32);
        // Exactly the cap is allowed.
        assert_eq!(targets("127.0.0.1-16", "1-16", 256).unwrap().probes(), 256);
        assert!(targets("127.0.0.1-17", "1-16", 256).is_err());
    }

    const ROUTES: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
wlan0\t0000100A\t00000000\t0001\t0\t0\t600\t0000FFFF\t0\t0\t0
ppp0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0
eth1\t0002A8C0\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t0000FEA9\t0101A8C0\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0
";

    #[test]
    fn connected_subnets_from_proc_net_route() {
        assert_eq!(
            connected_subnets(ROUTES),
            [
                (Ipv4Addr::new(192, 168, 1, 0), 24),
                (Ipv4Addr::new(10, 16, 0, 0), 16)
            ],
            "no default route, nothing via a gateway, nothing down"
        );
        assert!(connected_subnets("").is_empty());
        assert!(connected_subnets("header\ngarbage line\n").is_empty());
    }

    #[test]
    fn scans_stay_in_the_allowed_blocks() {
        let auto = Allowed::resolve("auto", || ROUTES.to_string()).unwrap();
        for ok in ["192.168.1.7", "10.16.200.1", "127.0.0.1"] {
            assert!(auto.contains(ok.parse().unwrap()), "{ok}");
        }
        for out in ["192.168.2.1", "169.254.0.1", "8.8.8.8", "10.17.0.1"] {
            assert!(!auto.contains(out.parse().unwrap()), "{out}");
        }
        let t = targets("127.0.0.1,192.168.1.10-12,192.168.3.1", "4059", 256).unwrap();
        let e = t.check_allowed(&auto).unwrap_err();
        assert!(
            e.to_string().starts_with("192.168.3.1 is outside scan.allowed (auto: 192.168.1.0/24, 10.16.0.0/16, 127.0.0.0/8)"),
            "{e}"
        );
        let listed = Allowed::resolve("10.1.0.0/16, 192.168.3.0/30", String::new).unwrap();
        assert!(t.check_allowed(&listed).is_err(), "loopback only with auto");
        let inside = targets("192.168.3.1-3", "4059", 256).unwrap();
        assert_eq!(inside.check_allowed(&listed), Ok(()));
        assert!(Allowed::resolve("10.1.0.0/33", String::new).is_err());
    }

    #[test]
    fn scan_time_outs_are_bounded() {
        let fields = |v: serde_json::Value| v.as_object().unwrap().clone();
        let t = request_template(&fields(json!({"response_timeout_ms": 5000}))).unwrap();
        assert_eq!((t.response_timeout_ms, t.connect_timeout_ms), (5000, 1000));
        for f in [
            "connect_timeout_ms",
            "response_timeout_ms",
            "inter_frame_timeout_ms",
        ] {
            let e = request_template(&fields(json!({ f: 600_000 }))).unwrap_err();
            assert_eq!(e.field_name(), Some(f));
            assert!(e.to_string().contains("at most 5000 ms"), "{e}");
        }
    }
}
