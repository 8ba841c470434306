//! The page's other API routes (token checked by the caller): the log ring, the alarms and
//! their acknowledgement, and the network scan. Plus the public chart data of a meter.

use super::api::percent_decode;
use super::response::{config_error, error, field_error, json_response, Reply};
use crate::http_head::query_value;
use crate::status::log_ring;
use crate::status::state::Status;
use serde_json::{json, Value};
use tiny_http::Method;

/// The most addresses x ports one scan from the page may probe: the request waits for the
/// scan, and each silent address costs up to a time-out per transport.
pub const MAX_PAGE_PROBES: usize = 256;

/// `GET /api/logs?since=N`: the lines after N (N = the `newest` of the previous answer).
pub(super) fn logs(query: &str) -> Reply {
    let since = query_value(query, "since")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (lines, newest) = log_ring::since(since);
    let lines: Vec<Value> = lines
        .into_iter()
        .map(|(seq, text)| json!({"seq": seq, "text": text}))
        .collect();
    json_response(200, &json!({"lines": lines, "newest": newest}))
}

/// An authorized API request: what the routes read of it.
pub(super) struct Call<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: &'a str,
    pub body: &'a str,
    /// The client's address (from the gate).
    pub client: &'a str,
}

/// `GET /api/alarms[?active=true]`, newest first; `POST /api/alarms/ID/ack`.
pub(super) fn alarms(status: &Status, call: &Call) -> Reply {
    let Call {
        method,
        path,
        query,
        body,
        client,
    } = *call;
    let rest: Vec<&str> = path
        .trim_start_matches("/api/alarms")
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    match (method, rest.as_slice()) {
        (Method::Get, []) => {
            let active_only = match query_value(query, "active") {
                None | Some("false") => false,
                Some("true") | Some("") => true,
                Some(v) => return error(400, format!("active={v}: use true or false")),
            };
            let list: Vec<Value> = status.with_alarms(|b| {
                b.all()
                    .iter()
                    .rev()
                    .filter(|a| !active_only || a.active())
                    .map(|a| a.to_json())
                    .collect()
            });
            json_response(200, &Value::Array(list))
        }
        (Method::Post, [id, "ack"]) => {
            let Ok(id) = id.parse::<i64>() else {
                return error(400, format!("{id:?} is not an alarm id"));
            };
            let given: Option<String> = serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|v| v.get("by").and_then(Value::as_str).map(str::to_string))
                .filter(|s| !s.trim().is_empty());
            let by = given.unwrap_or_else(|| format!("API client {client}"));
            let now = crate::clock::now_ms();
            match status.with_alarms(|b| b.ack(id, &by, now)) {
                Ok(a) => {
                    log::info!(
                        "alarm {id} acknowledged by {:?}",
                        a.acked_by.as_deref().unwrap_or("")
                    );
                    json_response(200, &a.to_json())
                }
                Err(_) => error(404, format!("alarm {id} not found")),
            }
        }
        _ => error(405, format!("{method} {path} is not supported")),
    }
}

/// Held while a scan from the page runs.
static SCAN_RUNNING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The one scan slot; given back when dropped.
struct ScanSlot;

impl ScanSlot {
    fn take() -> Option<ScanSlot> {
        use std::sync::atomic::Ordering;
        SCAN_RUNNING
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| ScanSlot)
    }
}

impl Drop for ScanSlot {
    fn drop(&mut self) {
        SCAN_RUNNING.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// `POST /api/scan {"hosts": "...", "ports": "...", ...meter fields}`: the meters found.
/// Other fields (addresses, authentication, transport, time-outs up to
/// `scan::MAX_SCAN_TIMEOUT_MS`) are the meter model's. Only addresses in `scan.allowed`.
pub(super) fn scan(store: &crate::store::Store, body: &str) -> Reply {
    // One scan at a time: the page has two request threads, and two scans of slow meters
    // froze it (helper-14); the other thread stays for the page.
    let Some(_running) = ScanSlot::take() else {
        return error(
            409,
            "a scan is running already (from the page or the API): try again when it ends",
        );
    };
    let Ok(Value::Object(mut o)) = serde_json::from_str::<Value>(body) else {
        return error(400, "scan takes a JSON object with hosts and ports");
    };
    let text = |o: &mut serde_json::Map<String, Value>, k: &str| {
        o.remove(k)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let (hosts, ports) = (text(&mut o, "hosts"), text(&mut o, "ports"));
    let targets = match page_targets(store, &hosts, &ports) {
        Ok(t) => t,
        Err(reply) => return reply,
    };
    let transport_given = o.contains_key("transport");
    o.insert("host".into(), targets.hosts[0].to_string().into());
    o.insert("port".into(), targets.ports[0].into());
    let template = match crate::scan::request_template(&o) {
        Ok(t) => t,
        Err(e) => return config_error(&e),
    };
    let transports = if transport_given {
        vec![template.transport]
    } else {
        crate::scan::TRANSPORTS.to_vec()
    };
    let found = std::sync::Mutex::new(Vec::new());
    let (hosts, ports) = (&targets.hosts, &targets.ports);
    crate::scan::scan(hosts, ports, &template, &transports, &|line| {
        found.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    });
    let mut found = found.into_inner().unwrap_or_else(|e| e.into_inner());
    found.sort_by_key(|v| (v["host"].as_str().map(str::to_string), v["port"].as_u64()));
    log::info!(
        "scan from the page: {} probe(s), {} meter(s) found",
        targets.probes(),
        found.len()
    );
    json_response(200, &json!({"probes": targets.probes(), "found": found}))
}

/// The page's hosts x ports: counted against [`MAX_PAGE_PROBES`] before they are expanded,
/// and inside `scan.allowed`.
fn page_targets(
    store: &crate::store::Store,
    hosts: &str,
    ports: &str,
) -> Result<crate::scan::Targets, Reply> {
    use crate::scan::TargetError;
    let refused = |e: TargetError| {
        let msg = match e {
            TargetError::TooMany { .. } => {
                format!("{e} from the page (use dlms-bridge scan for more)")
            }
            _ => e.to_string(),
        };
        field_error(msg, Some(e.field()))
    };
    let targets = crate::scan::targets(hosts, ports, MAX_PAGE_PROBES).map_err(refused)?;
    let setting = match store.settings() {
        Ok(s) => s.scan_allowed,
        Err(e) => return Err(error(500, format!("settings unreadable: {e}"))),
    };
    let allowed = crate::scan::Allowed::from_setting(&setting)
        .map_err(|e| error(500, format!("scan.allowed: {e}")))?;
    targets.check_allowed(&allowed).map_err(refused)?;
    Ok(targets)
}

/// `GET /status/meters/NAME/history`: the last hour of the meter's numeric values.
pub(super) fn history(status: &Status, path: &str) -> Reply {
    let name = percent_decode(
        path.trim_start_matches("/status/meters/")
            .trim_end_matches("/history"),
    );
    match status.history_json(&name) {
        Some(h) => json_response(200, &h),
        None if status.meter(&name).is_some() => json_response(
            200,
            &json!({"bucket_s": super::history::BUCKET_S, "series": {}}),
        ),
        None => error(404, format!("meter {name:?} not found")),
    }
}
