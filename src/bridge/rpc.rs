//! ThingsBoard server-side RPC, pure: requests parsed into typed calls, replies formatted,
//! pending calls timed out. No I/O: the publisher feeds it MQTT messages and publishes what it
//! returns; meter calls run on the meter's own worker thread (`rpc_exec.rs`).
//!
//! - Gateway API: a request on `v1/gateway/rpc` is
//!   `{"device":"Meter A","data":{"id":42,"method":"read","params":{...}}}`; the reply goes to
//!   `v1/gateway/rpc` as `{"device":"Meter A","id":42,"data":{...}}`.
//! - Device API: a request on `v1/devices/me/rpc/request/42` is `{"method":..,"params":..}`;
//!   the reply goes to `v1/devices/me/rpc/response/42`. On the gateway's own session (gateway
//!   mode) these are calls to the gateway itself.

pub use super::mqtt::session::SessionId;
use crate::cosem::Obis;
use crate::dlms::axdr::{parse_rfc3339, Data};
use serde_json::{json, Map, Value};

pub const GATEWAY_RPC: &str = "v1/gateway/rpc";
pub const DEVICE_RPC_REQUESTS: &str = "v1/devices/me/rpc/request/+";
const DEVICE_RPC_REQUEST_PREFIX: &str = "v1/devices/me/rpc/request/";
const DEVICE_RPC_RESPONSE_PREFIX: &str = "v1/devices/me/rpc/response/";

/// The disconnect control object most meters use (Blue Book 4.5.8).
pub const DEFAULT_RELAY: Obis = Obis::new(0, 0, 96, 3, 10, 255);

/// A COSEM attribute to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object {
    pub obis: Obis,
    pub class_id: u16,
    pub attribute: i8,
}

/// What a meter is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum MeterCall {
    Read(Object),
    ReadMany(Vec<Object>),
    ReadProfile {
        obis: Obis,
        from: Option<i64>,
        to: Option<i64>,
    },
    GetClock,
    /// Unix seconds (`"now"` resolved when the call runs: `None`).
    SetClock(Option<i64>),
    RelayState(Obis),
    Disconnect(Obis),
    Reconnect(Obis),
    Set {
        object: Object,
        value: Data,
    },
    Action {
        obis: Obis,
        class_id: u16,
        method: i8,
        parameter: Option<Data>,
    },
    PollNow,
    /// The meter's last `last` traced frames (issue 26), answered from its trace ring without
    /// a word to the meter.
    Trace {
        last: usize,
    },
}

impl MeterCall {
    /// Calls that change the meter: refused unless the meter's `rpc_write` is true.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            MeterCall::SetClock(_)
                | MeterCall::Disconnect(_)
                | MeterCall::Reconnect(_)
                | MeterCall::Set { .. }
                | MeterCall::Action { .. }
        )
    }
}

/// What the gateway itself is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayCall {
    Ping,
    Status,
    Meters,
    Reload,
    /// Probe these addresses x ports (at most `MAX_RPC_PROBES`; the host checks them against
    /// `scan.allowed`, which this pure parser cannot read).
    Scan {
        hosts: Vec<std::net::Ipv4Addr>,
        ports: Vec<u16>,
    },
}

/// A scan answered over RPC must end within the RPC time-out: at 1 s per silent address and 16
/// in parallel, 256 probes take at most 16 s.
pub const MAX_RPC_PROBES: usize = 256;

/// Where a reply goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReplyTo {
    /// Gateway API: on the gateway session, `v1/gateway/rpc`, for `device`.
    Gateway { device: String, id: Value },
    /// Device API on `session`, response topic `id`.
    Device { session: SessionId, id: String },
    /// Not a request (an answer seen on the request topic): nothing is sent.
    Ignore,
}

impl ReplyTo {
    /// The session to publish on, the topic and the payload.
    pub fn reply(&self, result: Result<Value, String>) -> (SessionId, String, String) {
        let body = match result {
            Ok(v) => json!({ "result": v }),
            Err(e) => json!({ "error": e }),
        };
        match self {
            ReplyTo::Gateway { device, id } => (
                SessionId::Gateway,
                GATEWAY_RPC.to_string(),
                json!({"device": device, "id": id, "data": body}).to_string(),
            ),
            ReplyTo::Device { session, id } => (
                session.clone(),
                format!("{DEVICE_RPC_RESPONSE_PREFIX}{id}"),
                body.to_string(),
            ),
            ReplyTo::Ignore => (SessionId::Gateway, String::new(), String::new()),
        }
    }

    /// A stable key for the pending-call table.
    pub fn key(&self) -> String {
        match self {
            ReplyTo::Gateway { device, id } => format!("g|{device}|{id}"),
            ReplyTo::Device { session, id } => {
                format!("d|{}|{id}", session.device().unwrap_or(""))
            }
            ReplyTo::Ignore => String::new(),
        }
    }
}

/// The answer to the gateway's `ping`.
pub fn pong() -> Value {
    json!({"pong": true, "version": env!("CARGO_PKG_VERSION")})
}

/// An RPC on its way to a meter's thread.
#[derive(Debug)]
pub struct RpcCall {
    pub call: MeterCall,
    pub method: String,
    pub reply: ReplyTo,
    /// After this the publisher has answered "timeout": the call is skipped.
    pub deadline: std::time::Instant,
    pub max_rows: usize,
}

/// A parsed request: for a meter (by name) or for the gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Meter {
        device: String,
        call: MeterCall,
        method: String,
    },
    Gateway(GatewayCall),
}

/// Parses one MQTT message on an RPC topic. `session`: the session it came in on. `Err` carries the reply to send at once
/// (malformed JSON, unknown method, bad parameters); `Ok(None)`: not an RPC topic.
pub fn parse(
    session: &SessionId,
    topic: &str,
    payload: &[u8],
) -> Option<Result<(Request, ReplyTo), (ReplyTo, String)>> {
    if topic == GATEWAY_RPC && *session == SessionId::Gateway {
        return Some(parse_gateway(payload));
    }
    let id = topic.strip_prefix(DEVICE_RPC_REQUEST_PREFIX)?;
    let reply = ReplyTo::Device {
        session: session.clone(),
        id: id.to_string(),
    };
    Some((|| {
        let v: Value = serde_json::from_slice(payload)
            .map_err(|e| (reply.clone(), format!("malformed JSON: {e}")))?;
        let (method, params) = method_and_params(&v).map_err(|e| (reply.clone(), e))?;
        let request = match session.device() {
            Some(device) => Request::Meter {
                device: device.to_string(),
                call: meter_call(method, params).map_err(|e| (reply.clone(), e))?,
                method: method.to_string(),
            },
            None => Request::Gateway(gateway_call(method, params).map_err(|e| (reply.clone(), e))?),
        };
        Ok((request, reply.clone()))
    })())
}

fn parse_gateway(payload: &[u8]) -> Result<(Request, ReplyTo), (ReplyTo, String)> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| {
        (
            ReplyTo::Gateway {
                device: String::new(),
                id: Value::Null,
            },
            format!("malformed JSON: {e}"),
        )
    })?;
    let device = v["device"].as_str().unwrap_or_default().to_string();
    let data = &v["data"];
    // Answers travel on the same topic (a broker without ThingsBoard's routing echoes ours
    // back): they carry the id outside `data`, or a result or error inside; not requests.
    if v.get("id").is_some() || data.get("result").is_some() || data.get("error").is_some() {
        return Err((ReplyTo::Ignore, String::new()));
    }
    let reply = ReplyTo::Gateway {
        device: device.clone(),
        id: data.get("id").cloned().unwrap_or(Value::Null),
    };
    if device.is_empty() {
        return Err((reply, "the request names no device".into()));
    }
    if !data.is_object() {
        return Err((reply, "the request has no data object".into()));
    }
    let (method, params) = method_and_params(data).map_err(|e| (reply.clone(), e))?;
    let call = meter_call(method, params).map_err(|e| (reply.clone(), e))?;
    Ok((
        Request::Meter {
            device,
            call,
            method: method.to_string(),
        },
        reply,
    ))
}

fn method_and_params(v: &Value) -> Result<(&str, &Value), String> {
    let method = v["method"].as_str().ok_or("the request has no method")?;
    Ok((method, &v["params"]))
}

fn gateway_call(method: &str, params: &Value) -> Result<GatewayCall, String> {
    Ok(match method {
        "ping" => GatewayCall::Ping,
        "status" => GatewayCall::Status,
        "meters" => GatewayCall::Meters,
        "reload" => GatewayCall::Reload,
        "scan" => {
            let p = params_object(params)?;
            let text = |k: &str| {
                p.get(k).and_then(Value::as_str).ok_or(format!(
                    "scan needs {k:?}, e.g. \"hosts\": \"192.168.1.10-20\", \"ports\": \"4059\""
                ))
            };
            // Counted before anything is expanded: a long list of large ranges costs nothing.
            let t = crate::scan::targets(text("hosts")?, text("ports")?, MAX_RPC_PROBES).map_err(
                |e| match e {
                    crate::scan::TargetError::TooMany { .. } => {
                        format!("{e} in an RPC scan (use dlms-bridge scan on the gateway for more)")
                    }
                    _ => e.to_string(),
                },
            )?;
            GatewayCall::Scan {
                hosts: t.hosts,
                ports: t.ports,
            }
        }
        other => {
            return Err(format!(
                "unknown gateway method {other:?}; known: ping, status, meters, reload, scan"
            ))
        }
    })
}

/// ThingsBoard's debug terminal sends params as a JSON string at times: accept both.
fn params_object(params: &Value) -> Result<Map<String, Value>, String> {
    match params {
        Value::Null => Ok(Map::new()),
        Value::Object(o) => Ok(o.clone()),
        Value::String(s) if s.trim().is_empty() => Ok(Map::new()),
        Value::String(s) => match serde_json::from_str(s) {
            Ok(Value::Object(o)) => Ok(o),
            _ => Err("params must be a JSON object".into()),
        },
        _ => Err("params must be a JSON object".into()),
    }
}

fn obis_of(p: &Map<String, Value>, key: &str) -> Result<Obis, String> {
    p.get(key)
        .and_then(Value::as_str)
        .ok_or(format!(
            "params need {key:?} (an OBIS code, e.g. \"1-0:32.7.0\")"
        ))?
        .parse()
        .map_err(|e| format!("{key}: {e}"))
}

fn int_of<T: TryFrom<i64>>(
    p: &Map<String, Value>,
    key: &str,
    default: Option<T>,
) -> Result<T, String> {
    match p.get(key) {
        None | Some(Value::Null) => default.ok_or(format!("params need {key:?}")),
        Some(v) => v
            .as_i64()
            .and_then(|n| T::try_from(n).ok())
            .ok_or(format!("{key}: {v} is not a valid number here")),
    }
}

fn object_of(p: &Map<String, Value>) -> Result<Object, String> {
    Ok(Object {
        obis: obis_of(p, "obis")?,
        class_id: int_of(p, "class", Some(3))?,
        attribute: int_of(p, "attribute", Some(2))?,
    })
}

fn time_of(p: &Map<String, Value>, key: &str) -> Result<Option<i64>, String> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_rfc3339(s).map(Some).ok_or(format!(
            "{key}: {s:?} is not RFC 3339 (2026-11-30T06:00:00Z)"
        )),
        Some(v) => Err(format!("{key}: {v} is not RFC 3339 text")),
    }
}

/// A typed COSEM value: `{"type":"long-unsigned","value":5}`.
pub fn typed_value(v: &Value) -> Result<Data, String> {
    let kind = v["type"]
        .as_str()
        .ok_or("a value is {\"type\": ..., \"value\": ...}")?;
    let x = &v["value"];
    let int = |lo: i64, hi: i64| -> Result<i64, String> {
        x.as_i64()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or(format!("{kind}: {x} is not a whole number {lo}..{hi}"))
    };
    Ok(match kind {
        "null" => Data::Null,
        "boolean" => Data::Boolean(x.as_bool().ok_or("boolean: expected true or false")?),
        "integer" => Data::Integer(int(-128, 127)? as i8),
        "unsigned" => Data::Unsigned(int(0, 255)? as u8),
        "enum" => Data::Enum(int(0, 255)? as u8),
        "long" => Data::Long(int(-32768, 32767)? as i16),
        "long-unsigned" => Data::LongUnsigned(int(0, 65535)? as u16),
        "double-long" => Data::DoubleLong(int(i64::from(i32::MIN), i64::from(i32::MAX))? as i32),
        "double-long-unsigned" => Data::DoubleLongUnsigned(int(0, i64::from(u32::MAX))? as u32),
        "long64" => Data::Long64(x.as_i64().ok_or("long64: expected a whole number")?),
        "long64-unsigned" => {
            Data::Long64Unsigned(x.as_u64().ok_or("long64-unsigned: expected a whole number")?)
        }
        "octet-string" => Data::OctetString(
            x.as_str()
                .and_then(crate::hex::parse)
                .ok_or("octet-string: expected hex text")?,
        ),
        "visible-string" => Data::VisibleString(
            x.as_str()
                .filter(|s| s.is_ascii())
                .ok_or("visible-string: expected ASCII text")?
                .as_bytes()
                .to_vec(),
        ),
        "utf8-string" => Data::Utf8String(x.as_str().ok_or("utf8-string: expected text")?.into()),
        other => {
            return Err(format!(
                "unknown value type {other:?}; known: null, boolean, integer, unsigned, enum, long, long-unsigned, double-long, double-long-unsigned, long64, long64-unsigned, octet-string, visible-string, utf8-string"
            ))
        }
    })
}

pub fn meter_call(method: &str, params: &Value) -> Result<MeterCall, String> {
    let relay = |p: &Map<String, Value>| -> Result<Obis, String> {
        if p.contains_key("obis") {
            obis_of(p, "obis")
        } else {
            Ok(DEFAULT_RELAY)
        }
    };
    // read_many takes a list (of objects or "OBIS[:CLASS:ATTR]" texts) or {"objects": [...]}.
    if method == "read_many" {
        let list = match params {
            Value::Array(a) => a.clone(),
            _ => match params_object(params)?.get("objects") {
                Some(Value::Array(a)) => a.clone(),
                _ => return Err("read_many takes a list of objects".into()),
            },
        };
        if list.is_empty() || list.len() > 64 {
            return Err("read_many takes 1 to 64 objects".into());
        }
        let objects = list
            .iter()
            .map(|item| match item {
                Value::String(s) => {
                    crate::config::meter::parse_object(s).map(|(obis, class_id, attribute)| {
                        Object {
                            obis,
                            class_id,
                            attribute,
                        }
                    })
                }
                Value::Object(o) => object_of(o),
                other => Err(format!("{other} is not an object to read")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(MeterCall::ReadMany(objects));
    }
    let p = params_object(params)?;
    Ok(match method {
        "read" => MeterCall::Read(object_of(&p)?),
        "read_profile" => {
            let (from, to) = (time_of(&p, "from")?, time_of(&p, "to")?);
            if let (Some(f), Some(t)) = (from, to) {
                if f > t {
                    return Err("from is after to".into());
                }
            }
            MeterCall::ReadProfile {
                obis: obis_of(&p, "obis")?,
                from,
                to,
            }
        }
        "get_clock" => MeterCall::GetClock,
        "set_clock" => match p.get("time").and_then(Value::as_str) {
            Some("now") | None => MeterCall::SetClock(None),
            Some(_) => MeterCall::SetClock(time_of(&p, "time")?),
        },
        "relay_state" => MeterCall::RelayState(relay(&p)?),
        "disconnect" => MeterCall::Disconnect(relay(&p)?),
        "reconnect" => MeterCall::Reconnect(relay(&p)?),
        "set" => MeterCall::Set {
            object: object_of(&p)?,
            value: typed_value(p.get("value").ok_or("set needs \"value\"")?)?,
        },
        "action" => MeterCall::Action {
            obis: obis_of(&p, "obis")?,
            class_id: int_of(&p, "class", None)?,
            method: int_of(&p, "method", None)?,
            parameter: p.get("parameter").map(typed_value).transpose()?,
        },
        "poll_now" => MeterCall::PollNow,
        "trace" => {
            let entries = crate::status::trace_ring::ENTRIES;
            let last: usize = int_of(&p, "last", Some(entries))?;
            if !(1..=entries).contains(&last) {
                return Err(format!("last: 1..{entries} frames"));
            }
            MeterCall::Trace { last }
        }
        other => {
            return Err(format!(
                "unknown method {other:?}; known: read, read_many, read_profile, get_clock, set_clock, relay_state, disconnect, reconnect, set, action, poll_now, trace"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_requests_and_replies() {
        let req = br#"{"device":"Meter A","data":{"id":42,"method":"read","params":{"obis":"1-0:32.7.0"}}}"#;
        let (request, reply) = parse(&SessionId::Gateway, GATEWAY_RPC, req)
            .unwrap()
            .unwrap();
        assert_eq!(
            request,
            Request::Meter {
                device: "Meter A".into(),
                call: MeterCall::Read(Object {
                    obis: Obis::new(1, 0, 32, 7, 0, 255),
                    class_id: 3,
                    attribute: 2
                }),
                method: "read".into(),
            }
        );
        let (session, topic, payload) = reply.reply(Ok(json!({"value": 230.1})));
        assert_eq!((session, topic.as_str()), (SessionId::Gateway, GATEWAY_RPC));
        assert_eq!(
            serde_json::from_str::<Value>(&payload).unwrap(),
            json!({"device":"Meter A","id":42,"data":{"result":{"value":230.1}}})
        );
    }

    #[test]
    fn device_and_gateway_session_requests() {
        let (r, reply) = parse(
            &SessionId::Device("Meter A".into()),
            "v1/devices/me/rpc/request/7",
            br#"{"method":"get_clock","params":{}}"#,
        )
        .unwrap()
        .unwrap();
        assert!(matches!(
            r,
            Request::Meter {
                call: MeterCall::GetClock,
                ..
            }
        ));
        let (_, topic, payload) = reply.reply(Err("no".into()));
        assert_eq!(topic, "v1/devices/me/rpc/response/7");
        assert_eq!(payload, r#"{"error":"no"}"#);
        let (r, _) = parse(
            &SessionId::Gateway,
            "v1/devices/me/rpc/request/1",
            br#"{"method":"ping"}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r, Request::Gateway(GatewayCall::Ping));
        assert!(parse(&SessionId::Gateway, "v1/gateway/telemetry", b"{}").is_none());
        // Our own answer echoed by the broker is not a request.
        let echo = br#"{"device":"Meter A","id":42,"data":{"result":1}}"#;
        assert!(matches!(
            parse(&SessionId::Gateway, GATEWAY_RPC, echo),
            Some(Err((ReplyTo::Ignore, _)))
        ));
    }

    #[test]
    fn every_malformed_request_gets_an_error_reply() {
        for (payload, needle) in [
            (&b"{not json"[..], "malformed JSON"),
            (br#"{"data":{"id":1,"method":"read"}}"#, "no device"),
            (br#"{"device":"A"}"#, "no data"),
            (br#"{"device":"A","data":{"id":1}}"#, "no method"),
            (br#"{"device":"A","data":{"id":1,"method":"fly"}}"#, "unknown method"),
            (br#"{"device":"A","data":{"id":1,"method":"read","params":{}}}"#, "obis"),
            (br#"{"device":"A","data":{"id":1,"method":"read","params":{"obis":"x"}}}"#, "OBIS"),
            (br#"{"device":"A","data":{"id":1,"method":"read","params":{"obis":"1.0.1.8.0.255","class":"x"}}}"#, "class"),
            (br#"{"device":"A","data":{"id":1,"method":"set","params":{"obis":"0.0.1.0.0.255","class":8,"attribute":2,"value":{"type":"long-unsigned","value":-1}}}}"#, "long-unsigned"),
            (br#"{"device":"A","data":{"id":1,"method":"set_clock","params":{"time":"yesterday"}}}"#, "RFC 3339"),
            (br#"{"device":"A","data":{"id":1,"method":"read_profile","params":{"obis":"1.0.99.1.0.255","from":"2026-11-30T06:00:00Z","to":"2026-11-30T05:00:00Z"}}}"#, "after"),
            (br#"{"device":"A","data":{"id":1,"method":"read_many","params":[]}}"#, "1 to 64"),
        ] {
            match parse(&SessionId::Gateway, GATEWAY_RPC, payload) {
                Some(Err((_, e))) => assert!(e.contains(needle), "{e} should say {needle}"),
                other => panic!("{other:?}"),
            }
        }
        let e = parse(
            &SessionId::Gateway,
            "v1/devices/me/rpc/request/1",
            br#"{"method":"fly"}"#,
        );
        assert!(matches!(e, Some(Err((_, m))) if m.contains("unknown gateway method")));
    }

    #[test]
    fn scan_requests_are_counted_before_they_are_expanded() {
        let huge = vec!["1.0.0.0-1.0.255.255"; 2000].join(",");
        let e = gateway_call("scan", &json!({"hosts": huge, "ports": "4059"})).unwrap_err();
        assert!(
            e.starts_with("131072000 probes requested; at most 256 in an RPC scan"),
            "{e}"
        );
        let ok = gateway_call("scan", &json!({"hosts": "127.0.0.1-2", "ports": "1-3"})).unwrap();
        assert!(
            matches!(ok, GatewayCall::Scan { hosts, ports } if hosts.len() == 2 && ports.len() == 3)
        );
        let e = gateway_call("scan", &json!({"hosts": "x", "ports": "1"})).unwrap_err();
        assert!(e.starts_with("hosts: \"x\""), "{e}");
    }

    #[test]
    fn writes_are_told_apart() {
        assert!(meter_call("disconnect", &Value::Null).unwrap().writes());
        assert!(meter_call("set_clock", &json!({"time": "now"}))
            .unwrap()
            .writes());
        assert!(!meter_call("relay_state", &Value::Null).unwrap().writes());
        assert_eq!(
            meter_call("relay_state", &json!("{\"obis\": \"0-0:96.3.10*255\"}")).unwrap(),
            MeterCall::RelayState(DEFAULT_RELAY),
            "params given as a JSON string (ThingsBoard's debug terminal)"
        );
    }
}
