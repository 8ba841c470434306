//! ThingsBoard MQTT topics and payloads, pure: outbox entries in, (topic, payload) out.
//!
//! - Gateway API: `v1/gateway/connect` {"device": name, "type": type};
//!   `v1/gateway/telemetry` {"Meter A": [{"ts": ms, "values": {...}}, ...], ...};
//!   `v1/gateway/attributes` {"Meter A": {...}}.
//! - Device API (one session per device token): `v1/devices/me/telemetry`
//!   [{"ts": ms, "values": {...}}, ...]; `v1/devices/me/attributes` {...}.
//!
//! Entries are packed in order into messages no larger than the payload limit
//! (`thingsboard.max_payload_bytes`; ThingsBoard drops the connection of a client that sends
//! more). No message over the limit is ever produced: an entry too large for one message is
//! split by its keys into several entries with the same timestamp (ThingsBoard merges them),
//! and an entry holding one value that alone is too large is returned as *unfit* (the caller
//! parks it: a larger limit will let it out).

use crate::store::outbox::{Entry, EntryKind};
use serde_json::json;

pub const GATEWAY_CONNECT: &str = "v1/gateway/connect";
pub const GATEWAY_TELEMETRY: &str = "v1/gateway/telemetry";
pub const GATEWAY_ATTRIBUTES: &str = "v1/gateway/attributes";
pub const DEVICE_TELEMETRY: &str = "v1/devices/me/telemetry";
pub const DEVICE_ATTRIBUTES: &str = "v1/devices/me/attributes";

/// One MQTT message and the outbox entries it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub topic: &'static str,
    pub payload: String,
    pub entry_ids: Vec<i64>,
    /// The device it is for (device mode: selects the session).
    pub device: Option<String>,
}

pub fn gateway_connect(device: &str, device_type: &str) -> String {
    json!({"device": device, "type": device_type}).to_string()
}

/// The entry's values as JSON object text, embedded as it is stored: the outbox holds the
/// text the worker wrote, so it is checked (a damaged row must not break a whole message), not
/// parsed into a tree and written again.
fn values_of(e: &Entry) -> &str {
    let p = e.payload.trim();
    let object =
        p.starts_with('{') && serde_json::from_str::<&serde_json::value::RawValue>(p).is_ok();
    if object {
        p
    } else {
        "{}"
    }
}

/// `{"ts":...,"values":{...}}`
fn ts_values(e: &Entry) -> String {
    format!("{{\"ts\":{},\"values\":{}}}", e.ts_ms, values_of(e))
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A gateway message being filled: per device (in first-seen order) its items, the entry ids,
/// and the message's size in bytes so far.
struct Pending {
    kind: EntryKind,
    devices: Vec<(String, Vec<String>)>,
    ids: Vec<i64>,
    size: usize,
}

impl Pending {
    fn new(kind: EntryKind) -> Pending {
        Pending {
            kind,
            devices: Vec::new(),
            ids: Vec::new(),
            size: 2,
        }
    }

    fn has(&self, device: &str) -> bool {
        self.devices.iter().any(|(d, _)| d == device)
    }

    fn into_message(self) -> Message {
        let members: Vec<String> = self
            .devices
            .into_iter()
            .map(|(device, items)| match self.kind {
                EntryKind::Telemetry => format!("{}:[{}]", quoted(&device), items.join(",")),
                // One attributes entry per device and message (see `collides`).
                EntryKind::Attributes => format!("{}:{}", quoted(&device), items.join(",")),
            })
            .collect();
        Message {
            topic: if self.kind == EntryKind::Telemetry {
                GATEWAY_TELEMETRY
            } else {
                GATEWAY_ATTRIBUTES
            },
            payload: format!("{{{}}}", members.join(",")),
            entry_ids: self.ids,
            device: None,
        }
    }
}

/// Messages of `entries` within `max_payload` (gateway API when `device` is `None`), and
/// the ids of entries that cannot fit even alone. An entry id appears in every message that
/// carries a part of it.
pub fn pack(
    device: Option<&str>,
    entries: &[Entry],
    max_payload: usize,
) -> (Vec<Message>, Vec<i64>) {
    let gateway = device.is_none();
    // Entries that fit as they are (the usual case) are packed without a copy.
    // (The stored text's length bounds the values' size: no JSON is checked twice.)
    let all_fit = entries
        .iter()
        .all(|e| size_alone(e, e.payload.len(), gateway) <= max_payload);
    let (split, unfit) = if all_fit {
        (Vec::new(), Vec::new())
    } else {
        split_oversize(entries, max_payload, gateway)
    };
    let fitting = if all_fit { entries } else { &split[..] };
    let messages = match device {
        None => gateway_messages(fitting, max_payload),
        Some(d) => device_messages(d, fitting, max_payload),
    };
    (messages, unfit)
}

/// The size of the message that would carry `e` alone, with `values` as its values.
fn size_alone(e: &Entry, values: usize, gateway: bool) -> usize {
    let ts = e.ts_ms.to_string().len();
    // {"ts":N,"values":V}
    let item = values + ts + 17;
    match (gateway, e.kind) {
        (true, EntryKind::Telemetry) => quoted(&e.device).len() + item + 5,
        (true, EntryKind::Attributes) => quoted(&e.device).len() + values + 3,
        (false, EntryKind::Telemetry) => item + 2,
        (false, EntryKind::Attributes) => values,
    }
}

/// Entries too large for one message split into parts by their keys; the ids of entries
/// with a single value too large for any message.
fn split_oversize(entries: &[Entry], max: usize, gateway: bool) -> (Vec<Entry>, Vec<i64>) {
    let mut out = Vec::with_capacity(entries.len());
    let mut unfit = Vec::new();
    for e in entries {
        let values = values_of(e);
        if size_alone(e, values.len(), gateway) <= max {
            out.push(e.clone());
            continue;
        }
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(values)
        else {
            unfit.push(e.id);
            continue;
        };
        let mut parts: Vec<String> = Vec::new();
        let mut current: Vec<String> = Vec::new();
        let mut size = 2;
        let mut fits = true;
        for (k, v) in &map {
            let member = format!("{}:{}", quoted(k), v);
            if size_alone(e, member.len() + 2, gateway) > max {
                fits = false;
                break;
            }
            if size_alone(e, size + member.len() + 1, gateway) > max && !current.is_empty() {
                parts.push(format!("{{{}}}", current.join(",")));
                current.clear();
                size = 2;
            }
            size += member.len() + 1;
            current.push(member);
        }
        if !fits {
            unfit.push(e.id);
            continue;
        }
        if !current.is_empty() {
            parts.push(format!("{{{}}}", current.join(",")));
        }
        out.extend(parts.into_iter().map(|payload| Entry {
            payload,
            ..e.clone()
        }));
    }
    (out, unfit)
}

/// Packs entries (in outbox order) into gateway messages within `max_payload` bytes; an
/// entry that alone exceeds it goes out alone ([`pack`] splits such entries first).
pub fn gateway_messages(entries: &[Entry], max_payload: usize) -> Vec<Message> {
    let mut out = Vec::new();
    let mut current: Option<Pending> = None;
    for e in entries {
        let item = if e.kind == EntryKind::Telemetry {
            ts_values(e)
        } else {
            values_of(e).to_string()
        };
        // Size of this entry in the message: the item, the device key, separators (the key
        // is charged to every item: never less than what the message grows by).
        let cost = item.len() + quoted(&e.device).len() + 4;
        let fits = current
            .as_ref()
            .is_some_and(|c| c.kind == e.kind && c.size + cost <= max_payload);
        // Attributes of one device are merged into one object: two in one message would
        // collide, so a second attribute entry for the same device starts a new message.
        let collides = current
            .as_ref()
            .is_some_and(|c| c.kind == EntryKind::Attributes && c.has(&e.device));
        if !fits || collides {
            out.extend(current.take().map(Pending::into_message));
        }
        let c = current.get_or_insert_with(|| Pending::new(e.kind));
        match c.devices.iter_mut().find(|(d, _)| *d == e.device) {
            Some((_, items)) => items.push(item),
            None => c.devices.push((e.device.clone(), vec![item])),
        }
        c.ids.push(e.id);
        c.size += cost;
    }
    out.extend(current.map(Pending::into_message));
    out
}

/// Packs one device's entries (in order) into device-API messages within `max_payload`.
pub fn device_messages(device: &str, entries: &[Entry], max_payload: usize) -> Vec<Message> {
    let mut out = Vec::new();
    let mut batch: Vec<String> = Vec::new();
    let mut ids = Vec::new();
    let mut size = 2;
    let flush =
        |batch: &mut Vec<String>, ids: &mut Vec<i64>, size: &mut usize, out: &mut Vec<Message>| {
            if !batch.is_empty() {
                out.push(Message {
                    topic: DEVICE_TELEMETRY,
                    payload: format!("[{}]", batch.join(",")),
                    entry_ids: std::mem::take(ids),
                    device: Some(device.to_string()),
                });
                batch.clear();
            }
            *size = 2;
        };
    for e in entries {
        if e.kind == EntryKind::Attributes {
            flush(&mut batch, &mut ids, &mut size, &mut out);
            out.push(Message {
                topic: DEVICE_ATTRIBUTES,
                payload: values_of(e).to_string(),
                entry_ids: vec![e.id],
                device: Some(device.to_string()),
            });
            continue;
        }
        let item = ts_values(e);
        let cost = item.len() + 1;
        if size + cost > max_payload {
            flush(&mut batch, &mut ids, &mut size, &mut out);
        }
        batch.push(item);
        ids.push(e.id);
        size += cost;
    }
    flush(&mut batch, &mut ids, &mut size, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn e(id: i64, device: &str, ts: i64, kind: EntryKind, payload: &str) -> Entry {
        Entry {
            id,
            device: device.into(),
            ts_ms: ts,
            kind,
            payload: payload.into(),
        }
    }

    #[test]
    fn gateway_telemetry_is_batched_across_meters() {
        let entries = [
            e(
                1,
                "Meter A",
                1000,
                EntryKind::Telemetry,
                r#"{"voltage_l1":230.1}"#,
            ),
            e(
                2,
                "Meter B",
                1000,
                EntryKind::Telemetry,
                r#"{"voltage_l1":229.9}"#,
            ),
            e(
                3,
                "Meter A",
                2000,
                EntryKind::Telemetry,
                r#"{"voltage_l1":230.2}"#,
            ),
        ];
        let msgs = gateway_messages(&entries, 65_536);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].topic, "v1/gateway/telemetry");
        assert_eq!(msgs[0].entry_ids, [1, 2, 3]);
        let v: Value = serde_json::from_str(&msgs[0].payload).unwrap();
        assert_eq!(
            v,
            json!({"Meter A": [{"ts": 1000, "values": {"voltage_l1": 230.1}}, {"ts": 2000, "values": {"voltage_l1": 230.2}}],
                   "Meter B": [{"ts": 1000, "values": {"voltage_l1": 229.9}}]})
        );
        assert_eq!(
            gateway_connect("Meter A", "electricity-meter"),
            r#"{"device":"Meter A","type":"electricity-meter"}"#
        );
    }

    #[test]
    fn payload_limit_splits_in_order_and_attributes_stand_apart() {
        let mut entries: Vec<Entry> = (0..50)
            .map(|i| {
                e(
                    i,
                    "M",
                    1000 + i,
                    EntryKind::Telemetry,
                    r#"{"active_energy_import":123456789}"#,
                )
            })
            .collect();
        entries.insert(
            10,
            e(
                100,
                "M",
                0,
                EntryKind::Attributes,
                r#"{"serialNumber":"SIM1"}"#,
            ),
        );
        let msgs = gateway_messages(&entries, 1024);
        assert!(msgs.len() > 3);
        assert!(
            msgs.iter().all(|m| m.payload.len() <= 1024),
            "{:?}",
            msgs.iter().map(|m| m.payload.len()).collect::<Vec<_>>()
        );
        let ids: Vec<i64> = msgs.iter().flat_map(|m| m.entry_ids.clone()).collect();
        assert_eq!(
            ids,
            entries.iter().map(|e| e.id).collect::<Vec<_>>(),
            "order kept, nothing lost or doubled"
        );
        let attrs: Vec<&Message> = msgs
            .iter()
            .filter(|m| m.topic == GATEWAY_ATTRIBUTES)
            .collect();
        assert_eq!(attrs.len(), 1);
        assert_eq!(attrs[0].payload, r#"{"M":{"serialNumber":"SIM1"}}"#);
    }

    #[test]
    fn no_message_over_the_limit_is_ever_produced() {
        // A 5,000-value entry (a shared attribute once made one of 50,000) among small ones.
        let big: String = format!(
            "{{{}}}",
            (0..5000)
                .map(|i| format!("\"m{i}\":{i}.5"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let huge_value = format!("{{\"blob\":\"{}\"}}", "x".repeat(3000));
        let entries = [
            e(1, "A", 1000, EntryKind::Telemetry, r#"{"a":1}"#),
            e(2, "B \"quoted\"", 2000, EntryKind::Telemetry, &big),
            e(3, "C", 3000, EntryKind::Attributes, &big),
            e(4, "D", 4000, EntryKind::Telemetry, &huge_value),
            e(5, "A", 5000, EntryKind::Telemetry, r#"{"a":2}"#),
        ];
        for gateway in [true, false] {
            for max in [512, 2048, 65_536] {
                let device = (!gateway).then_some("A");
                let (msgs, unfit) = pack(device, &entries, max);
                for m in &msgs {
                    assert!(m.payload.len() <= max, "{} > {max}", m.payload.len());
                    serde_json::from_str::<Value>(&m.payload).unwrap();
                }
                // Every value of entry 2 arrives once, all with its timestamp.
                let mut seen = std::collections::BTreeSet::new();
                for m in msgs.iter().filter(|m| m.entry_ids.contains(&2)) {
                    let v: Value = serde_json::from_str(&m.payload).unwrap();
                    let items = if gateway {
                        v["B \"quoted\""].as_array().unwrap().clone()
                    } else {
                        v.as_array().unwrap().clone()
                    };
                    for item in items.iter().filter(|i| i["ts"] == 2000) {
                        for k in item["values"].as_object().unwrap().keys() {
                            assert!(seen.insert(k.clone()), "{k} twice");
                        }
                    }
                }
                assert_eq!(seen.len(), 5000, "max {max}");
                assert_eq!(
                    unfit,
                    if max < 3100 { vec![4] } else { vec![] },
                    "max {max}"
                );
            }
        }
    }

    #[test]
    fn device_mode_payloads() {
        let entries = [
            e(1, "M", 1000, EntryKind::Telemetry, r#"{"a":1}"#),
            e(2, "M", 2000, EntryKind::Telemetry, r#"{"a":2}"#),
            e(3, "M", 0, EntryKind::Attributes, r#"{"model":"X"}"#),
        ];
        let msgs = device_messages("M", &entries, 65_536);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].topic, DEVICE_TELEMETRY);
        assert_eq!(
            msgs[0].payload,
            r#"[{"ts":1000,"values":{"a":1}},{"ts":2000,"values":{"a":2}}]"#
        );
        assert_eq!(msgs[1].topic, DEVICE_ATTRIBUTES);
        assert_eq!(msgs[1].payload, r#"{"model":"X"}"#);
    }

    #[test]
    fn a_damaged_payload_goes_out_empty_and_names_are_escaped() {
        let entries = [
            e(1, "Meter \"Q\"", 1000, EntryKind::Telemetry, "{\"a\":1"),
            e(2, "Meter \"Q\"", 2000, EntryKind::Telemetry, r#"{"a":2}"#),
        ];
        let msgs = gateway_messages(&entries, 65_536);
        let v: Value = serde_json::from_str(&msgs[0].payload).unwrap();
        assert_eq!(
            v,
            json!({"Meter \"Q\"": [{"ts": 1000, "values": {}}, {"ts": 2000, "values": {"a": 2}}]})
        );
    }
}
