//! ThingsBoard shared attributes -> meter configuration. Keys `interval_s`, `enabled`,
//! `measurements` (`{"key": "OBIS[:class:attr]"}`), `profiles` (the API's list,
//! `[{"obis": ..., "every_s": ..., "keys": {...}}]`, as JSON or as its text),
//! `clock_sync_threshold_s` and, only when the gateway's owner allowed it
//! (`thingsboard.allow_remote_rpc_write`), `rpc_write`; never secrets. Values go through the
//! one typed meter model, as `meter edit` does: an invalid one changes nothing and comes back as
//! the client attribute `config_error`; an applied change as `config_applied_at`. On every
//! (re)connect the current values are requested, so a change made while the gateway was
//! offline is applied.

use super::bucket::suppressed;
use super::core::{Command, Core, Count};
use super::session::SessionId;
use crate::config::{Measurement, MeterConfig};
use crate::dlms::axdr::format_rfc3339;
use log::{info, warn};
use serde_json::{json, Map, Value};
use std::time::Instant;

pub const GATEWAY_ATTRIBUTES: &str = "v1/gateway/attributes";
pub const GATEWAY_ATTRIBUTES_RESPONSE: &str = "v1/gateway/attributes/response";
const GATEWAY_ATTRIBUTES_REQUEST: &str = "v1/gateway/attributes/request";
pub const DEVICE_ATTRIBUTES: &str = "v1/devices/me/attributes";
pub const DEVICE_ATTRIBUTES_RESPONSE: &str = "v1/devices/me/attributes/response/+";
const DEVICE_ATTRIBUTES_REQUEST: &str = "v1/devices/me/attributes/request/1";

/// Measurements a shared attribute may set (a meter answers a few dozen registers; a
/// 600-entry list was once accepted and made every poll log 45 KB of "object not found").
pub const MAX_REMOTE_MEASUREMENTS: usize = 128;

/// The shared attributes that configure a meter.
pub const KEYS: [&str; 6] = [
    "interval_s",
    "enabled",
    "measurements",
    "profiles",
    "clock_sync_threshold_s",
    "rpc_write",
];

/// What to apply for which meter, from one message; `None`: not a shared-attribute message.
pub fn parse(
    session: &SessionId,
    topic: &str,
    payload: &[u8],
) -> Option<(String, Map<String, Value>)> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let (device, data) = match (session.device(), topic) {
        // {"device": "Meter A", "data": {...}}; our own client attributes ({"Meter A": {...}})
        // echoed by a plain broker have no "device" and are not taken.
        (None, GATEWAY_ATTRIBUTES) => (
            v["device"].as_str()?.to_string(),
            v["data"].as_object()?.clone(),
        ),
        // {"id": 1, "device": "Meter A", "values": {...}} (or "value" for a single key).
        (None, GATEWAY_ATTRIBUTES_RESPONSE) => {
            let device = v["device"].as_str()?.to_string();
            // We ask for several keys: ThingsBoard answers with "values".
            let data = v["values"].as_object()?.clone();
            (device, data)
        }
        (Some(d), DEVICE_ATTRIBUTES) => (d.to_string(), v.as_object()?.clone()),
        (Some(d), t) if t.starts_with("v1/devices/me/attributes/response/") => {
            (d.to_string(), v["shared"].as_object()?.clone())
        }
        _ => return None,
    };
    let data: Map<String, Value> = data
        .into_iter()
        .filter(|(k, _)| KEYS.contains(&k.as_str()))
        .collect();
    (!data.is_empty()).then_some((device, data))
}

/// The meter with the attributes applied, or why not (the first problem, as a sentence).
pub fn apply(
    meter: &MeterConfig,
    data: &Map<String, Value>,
    allow_rpc_write: bool,
) -> Result<MeterConfig, String> {
    let mut m = meter.clone();
    for (key, value) in data {
        match (key.as_str(), value) {
            ("rpc_write", _) if !allow_rpc_write => {
                return Err("rpc_write cannot be set from ThingsBoard on this gateway (thingsboard.allow_remote_rpc_write is false)".into())
            }
            ("measurements", Value::Object(list)) if list.len() > MAX_REMOTE_MEASUREMENTS => {
                return Err(format!(
                    "measurements: {} given, at most {MAX_REMOTE_MEASUREMENTS} from ThingsBoard",
                    list.len()
                ))
            }
            ("measurements", Value::Object(list)) => {
                let mut measurements = Vec::new();
                for (k, spec) in list {
                    let spec = spec.as_str().ok_or(format!(
                        "measurements: {k}: expected \"OBIS[:class:attr]\" text"
                    ))?;
                    measurements.push(
                        Measurement::parse_spec(&format!("{k}={spec}")).map_err(|e| e.to_string())?,
                    );
                }
                m.measurements = measurements;
            }
            ("measurements", _) => {
                return Err("measurements: expected {\"key\": \"OBIS[:class:attr]\", ...}".into())
            }
            ("profiles", v) => {
                // ThingsBoard keeps a JSON attribute as JSON, or as text when typed in a string.
                let parsed;
                let list = match v {
                    Value::String(text) => {
                        parsed = serde_json::from_str::<Value>(text)
                            .map_err(|e| format!("profiles: not JSON: {e}"))?;
                        &parsed
                    }
                    other => other,
                };
                m.profiles = crate::config::json::profiles_from_json(list)
                    .map_err(|e| e.to_string())?;
            }
            ("clock_sync_threshold_s", Value::Null) => m.clock_sync_threshold_s = None,
            (key, Value::String(s)) => m.set(key, s).map_err(|e| e.to_string())?,
            (key, Value::Bool(b)) => m.set(key, &b.to_string()).map_err(|e| e.to_string())?,
            (key, Value::Number(n)) => m.set(key, &n.to_string()).map_err(|e| e.to_string())?,
            (key, other) => return Err(format!("{key}: {other} is not a value for it")),
        }
    }
    check_clock_sync(meter, &m)?;
    m.validate().map_err(|e| e.to_string())?;
    Ok(m)
}

/// A clock sync threshold writes the meter's clock, as the `set_clock` RPC does: set or
/// changed from ThingsBoard only for a meter whose `rpc_write` allows that RPC. Clearing it,
/// or the value the gateway already has (sent again on every reconnect), needs nothing.
fn check_clock_sync(before: &MeterConfig, after: &MeterConfig) -> Result<(), String> {
    let changed = after.clock_sync_threshold_s != before.clock_sync_threshold_s;
    if changed && after.clock_sync_threshold_s.is_some() && !after.rpc_write {
        return Err(format!(
            "clock_sync_threshold_s sets the meter's clock, as set_clock does, and this meter's rpc_write is false (dlms-bridge meter edit {:?} --rpc-write true; from ThingsBoard only with thingsboard.allow_remote_rpc_write true)",
            before.name
        ));
    }
    Ok(())
}

/// The request for a meter's current shared attributes, on its session.
pub fn request(session: &SessionId, device: &str) -> (String, String) {
    match session {
        SessionId::Gateway => (
            GATEWAY_ATTRIBUTES_REQUEST.to_string(),
            json!({"id": 1, "device": device, "client": false, "keys": KEYS}).to_string(),
        ),
        SessionId::Device(_) => (
            DEVICE_ATTRIBUTES_REQUEST.to_string(),
            json!({"sharedKeys": KEYS.join(",")}).to_string(),
        ),
    }
}

impl Core {
    /// A shared-attribute message from the broker: applied through the driver (the store),
    /// within the device's rate.
    pub(super) fn attributes_message(
        &mut self,
        session: SessionId,
        topic: &str,
        payload: &[u8],
        now: Instant,
        out: &mut Vec<Command>,
    ) {
        let Some((device, data)) = parse(&session, topic, payload) else {
            return;
        };
        if !self.devices.contains_key(&device) {
            // Never answered: an answer naming a device ThingsBoard does not have would make
            // it create one (a forged flood of names would fill the tenant).
            out.push(Command::Count(Count::IncomingDropped(1)));
            if let Some(n) = self.throttle.allow("attributes-unknown", now) {
                warn!("publisher: shared attributes for {device:?}, which is no configured meter: ignored{}", suppressed(n));
            }
            return;
        }
        let key = self.rate_key(&device);
        if !self.take_incoming(&key, "shared attributes", now, out) {
            return;
        }
        out.push(Command::ApplyAttributes {
            session,
            device,
            data,
        });
    }

    /// The store's verdict on shared attributes: reported to ThingsBoard as the meter's
    /// client attributes `config_error` / `config_applied_at`.
    pub(super) fn attributes_applied(
        &mut self,
        session: SessionId,
        device: String,
        data: Map<String, Value>,
        result: Result<bool, String>,
        at_ms: i64,
        now: Instant,
    ) {
        let report = match result {
            Ok(changed) => {
                if changed {
                    let mut text = Value::Object(data).to_string();
                    if text.len() > 300 {
                        let cut = (0..=300)
                            .rev()
                            .find(|i| text.is_char_boundary(*i))
                            .unwrap_or(0);
                        text.truncate(cut);
                        text.push_str("...");
                    }
                    info!("shared attributes applied to meter {device:?}: {text}");
                }
                json!({"config_error": null, "config_applied_at": format_rfc3339(at_ms / 1000)})
            }
            Err(e) => {
                // The answer goes back on every message; the log line at most every few
                // seconds (a dashboard repeating a refused value must not fill the card).
                if let Some(n) = self.throttle.allow("attributes-refused", now) {
                    warn!(
                        "shared attributes for meter {device:?} refused: {e}{}",
                        suppressed(n)
                    );
                }
                json!({"config_error": e})
            }
        };
        match &session {
            SessionId::Gateway => self.queue_control(
                &session,
                GATEWAY_ATTRIBUTES,
                json!({ device: report }).to_string(),
                now,
            ),
            SessionId::Device(_) => {
                self.queue_control(&session, DEVICE_ATTRIBUTES, report.to_string(), now)
            }
        }
    }

    /// On each connection: who the gateway is, and a request for the current shared
    /// attributes of every meter the session speaks for (a change made while the gateway was
    /// offline is applied); the gateway's figures soon after.
    pub(super) fn on_connected(&mut self, id: &SessionId, now: Instant) {
        let requests: Vec<String> = match id {
            SessionId::Gateway => {
                let identity = self.identity.clone();
                self.queue_control(id, super::gateway_device::OWN_ATTRIBUTES, identity, now);
                self.next_stats_at = Some(now);
                self.devices
                    .values()
                    .filter(|d| d.enabled)
                    .map(|d| d.name.clone())
                    .collect()
            }
            SessionId::Device(d) => vec![d.clone()],
        };
        if let Some(s) = self.sessions.get_mut(id) {
            s.attribute_requests = requests.into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_and_responses_in_both_apis() {
        let (d, data) = parse(
            &SessionId::Gateway,
            GATEWAY_ATTRIBUTES,
            br#"{"device":"A","data":{"interval_s":5,"colour":"red"}}"#,
        )
        .unwrap();
        assert_eq!(
            (d.as_str(), data.len()),
            ("A", 1),
            "unknown keys are not taken"
        );
        assert!(
            parse(
                &SessionId::Gateway,
                GATEWAY_ATTRIBUTES,
                br#"{"A":{"config_error":null}}"#
            )
            .is_none(),
            "our own echo"
        );
        let (_, data) = parse(
            &SessionId::Gateway,
            GATEWAY_ATTRIBUTES_RESPONSE,
            br#"{"id":1,"device":"A","values":{"enabled":false}}"#,
        )
        .unwrap();
        assert_eq!(data["enabled"], json!(false));
        let (d, _) = parse(
            &SessionId::Device("B".into()),
            "v1/devices/me/attributes/response/1",
            br#"{"shared":{"interval_s":9}}"#,
        )
        .unwrap();
        assert_eq!(d, "B");
        assert!(parse(
            &SessionId::Device("B".into()),
            DEVICE_ATTRIBUTES,
            br#"{"serialNumber":"X"}"#
        )
        .is_none());
        assert!(parse(&SessionId::Gateway, GATEWAY_ATTRIBUTES, b"{oops").is_none());
    }

    #[test]
    fn applied_through_the_typed_model() {
        let m = MeterConfig::tcp("A", "127.0.0.1", 1);
        let data = |v: Value| v.as_object().unwrap().clone();
        let changed = apply(&m, &data(json!({"interval_s": 5, "enabled": "no"})), false).unwrap();
        assert_eq!((changed.interval_s, changed.enabled), (5, false));
        let e = apply(&m, &data(json!({"interval_s": 0})), false).unwrap_err();
        assert!(e.contains("interval_s"), "{e}");
        let e = apply(&m, &data(json!({"rpc_write": true})), false).unwrap_err();
        assert!(e.contains("allow_remote_rpc_write"), "{e}");
        assert!(
            apply(&m, &data(json!({"rpc_write": true})), true)
                .unwrap()
                .rpc_write
        );
        let ms = apply(
            &m,
            &data(json!({"measurements": {"v": "1-0:32.7.0", "e": "1-0:1.8.0:3:2"}})),
            false,
        )
        .unwrap();
        assert_eq!(ms.measurements.len(), 2);
        assert!(apply(&m, &data(json!({"measurements": {"v": "nonsense"}})), false).is_err());
        let writable = MeterConfig {
            rpc_write: true,
            ..m.clone()
        };
        let p = apply(
            &writable,
            &data(json!({"profiles": [{"obis": "1-0:99.1.0", "every_s": 900}],
                         "clock_sync_threshold_s": 30})),
            false,
        )
        .unwrap();
        assert_eq!(p.profiles[0].every_s, Some(900));
        assert_eq!(p.clock_sync_threshold_s, Some(30));
        let as_text = apply(
            &m,
            &data(json!({"profiles": "[{\"obis\": \"0-0:99.98.0\"}]"})),
            false,
        )
        .unwrap();
        assert_eq!(as_text.profiles[0].obis.to_string(), "0-0:99.98.0*255");
        assert!(apply(&m, &data(json!({"profiles": [{"obis": "x"}]})), false).is_err());
    }

    #[test]
    fn a_clock_sync_threshold_needs_the_set_clock_permission() {
        let m = MeterConfig::tcp("A", "127.0.0.1", 1);
        let data = |v: Value| v.as_object().unwrap().clone();
        let sync = data(json!({"clock_sync_threshold_s": 30}));
        for allow in [false, true] {
            let e = apply(&m, &sync, allow).unwrap_err();
            assert!(
                e.contains("rpc_write is false") && e.contains("--rpc-write true"),
                "{e}"
            );
            assert!(e.contains("thingsboard.allow_remote_rpc_write"), "{e}");
        }
        // With rpc_write, given in the same message (only where the owner allows that)...
        let both = data(json!({"clock_sync_threshold_s": 30, "rpc_write": true}));
        assert!(apply(&m, &both, false).is_err());
        assert_eq!(
            apply(&m, &both, true).unwrap().clock_sync_threshold_s,
            Some(30)
        );
        // ... or already set on the meter.
        let writable = MeterConfig {
            rpc_write: true,
            ..m.clone()
        };
        assert_eq!(
            apply(&writable, &sync, false)
                .unwrap()
                .clock_sync_threshold_s,
            Some(30)
        );
        // Clearing it, or the value the operator set (sent again at every reconnect), is no
        // new write.
        let operator_set = MeterConfig {
            clock_sync_threshold_s: Some(30),
            ..m.clone()
        };
        assert!(apply(&operator_set, &sync, false).is_ok());
        let lower = data(json!({"clock_sync_threshold_s": 5}));
        assert!(apply(&operator_set, &lower, false).is_err());
        let cleared = data(json!({"clock_sync_threshold_s": null}));
        assert_eq!(
            apply(&operator_set, &cleared, false)
                .unwrap()
                .clock_sync_threshold_s,
            None
        );
    }
}
