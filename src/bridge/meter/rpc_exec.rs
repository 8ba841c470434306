//! Runs a ThingsBoard RPC on a meter's open association (the meter's own worker thread, between
//! polls) and says the result in JSON: values scaled with their unit, times in RFC 3339.

use crate::bridge::rpc::{MeterCall, Object};
use crate::client::reads::{self, RowSelection, ScalerCache, Target};
use crate::client::{json, ClientError, Connection, Transport};
use crate::clock::now_ms;
use crate::cosem::Obis;
use crate::dlms::axdr::{format_rfc3339, Data, DateTime};
use crate::dlms::xdlms::{AttributeDescriptor, MethodDescriptor};
use serde_json::{json, Map, Value};

/// Why a call failed: the meter's answer (the association stays) or the link (it is dropped).
#[derive(Debug)]
pub enum ExecError {
    Refused(String),
    Link(ClientError),
}

impl From<ClientError> for ExecError {
    fn from(e: ClientError) -> Self {
        if e.is_transient() {
            ExecError::Link(e)
        } else {
            ExecError::Refused(e.to_string())
        }
    }
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecError::Refused(m) => f.write_str(m),
            ExecError::Link(e) => e.fmt(f),
        }
    }
}

fn target(o: &Object) -> Target {
    Target::new(o.class_id, o.obis, o.attribute)
}

fn read_objects<T: Transport>(
    conn: &mut Connection<T>,
    cache: &mut ScalerCache,
    objects: &[Object],
) -> Result<Vec<Value>, ExecError> {
    let targets: Vec<Target> = objects.iter().map(target).collect();
    let values = reads::read_values(conn, &targets, cache)?;
    Ok(objects
        .iter()
        .zip(values)
        .map(|(o, v)| match v {
            Ok(v) => json::reading(&target(o), &v),
            Err(e) => json!({"obis": o.obis.to_string(), "error": e.to_string()}),
        })
        .collect())
}

fn clock<T: Transport>(conn: &mut Connection<T>) -> Result<i64, ExecError> {
    reads::read_clock(conn)?
        .map_err(|e| ExecError::Refused(format!("clock: {e}")))?
        .to_unix()
        .ok_or_else(|| ExecError::Refused("the meter's clock is not a complete date-time".into()))
}

fn relay_state<T: Transport>(conn: &mut Connection<T>, obis: Obis) -> Result<Value, ExecError> {
    let targets = [Target::new(70, obis, 2), Target::new(70, obis, 3)];
    let got = reads::read_raw(conn, &targets)?;
    let output = match &got[0] {
        Ok(Data::Boolean(b)) => json!(b),
        Ok(other) => return Err(ExecError::Refused(format!("output_state is {other:?}"))),
        Err(e) => return Err(ExecError::Refused(format!("relay {obis}: {e}"))),
    };
    // Blue Book 4.5.8 control_state.
    let control = match &got[1] {
        Ok(Data::Enum(0)) => json!("disconnected"),
        Ok(Data::Enum(1)) => json!("connected"),
        Ok(Data::Enum(2)) => json!("ready_for_reconnection"),
        Ok(other) => json!(format!("{other:?}")),
        Err(_) => Value::Null,
    };
    Ok(json!({"obis": obis.to_string(), "output_state": output, "control_state": control}))
}

/// Runs `call` (not `PollNow`: the worker polls itself) on the open association.
pub fn execute<T: Transport>(
    conn: &mut Connection<T>,
    cache: &mut ScalerCache,
    call: &MeterCall,
    max_rows: usize,
) -> Result<Value, ExecError> {
    match call {
        MeterCall::Read(o) => {
            let mut v = read_objects(conn, cache, std::slice::from_ref(o))?;
            let v = v.remove(0);
            match v.get("error") {
                Some(e) => Err(ExecError::Refused(format!(
                    "{}: {}",
                    o.obis,
                    e.as_str().unwrap_or_default()
                ))),
                None => Ok(v),
            }
        }
        MeterCall::ReadMany(objects) => Ok(Value::Array(read_objects(conn, cache, objects)?)),
        MeterCall::ReadProfile { obis, from, to } => {
            let selection = match (from, to) {
                (None, None) => RowSelection::All,
                (f, t) => RowSelection::Range(f.unwrap_or(0), t.unwrap_or(now_ms() / 1000)),
            };
            let profile = reads::read_profile(conn, *obis, selection, cache)?
                .map_err(|e| ExecError::Refused(format!("profile {obis}: {e}")))?;
            let truncated = profile.rows.len() > max_rows;
            let rows: Vec<Value> = profile
                .rows
                .iter()
                .take(max_rows)
                .map(|row| {
                    let mut values = Map::new();
                    for (col, v) in &row.values {
                        values.insert(col.instance.to_string(), json::value(v).0);
                    }
                    json!({"ts": row.timestamp.map(format_rfc3339), "values": values})
                })
                .collect();
            Ok(json!({"obis": obis.to_string(), "rows": rows, "truncated": truncated}))
        }
        MeterCall::GetClock => {
            let meter = clock(conn)?;
            let gateway = now_ms() / 1000;
            Ok(json!({"time": format_rfc3339(meter), "drift_s": meter - gateway}))
        }
        MeterCall::SetClock(time) => {
            let before = clock(conn)? - now_ms() / 1000;
            let t = time.unwrap_or_else(|| now_ms() / 1000);
            reads::set_clock(conn, DateTime::from_unix(t, 0))?;
            let after = clock(conn)? - now_ms() / 1000;
            Ok(
                json!({"set_to": format_rfc3339(t), "drift_before_s": before, "drift_after_s": after}),
            )
        }
        MeterCall::RelayState(obis) => relay_state(conn, *obis),
        MeterCall::Disconnect(obis) | MeterCall::Reconnect(obis) => {
            // Methods 1 remote_disconnect and 2 remote_reconnect take integer(0) (Blue Book
            // 4.5.8).
            let method = if matches!(call, MeterCall::Disconnect(_)) {
                1
            } else {
                2
            };
            conn.action(
                MethodDescriptor::new(70, *obis, method),
                Some(&Data::Integer(0)),
            )?;
            relay_state(conn, *obis)
        }
        MeterCall::Set { object, value } => {
            conn.set(
                AttributeDescriptor::new(object.class_id, object.obis, object.attribute),
                value,
            )?;
            Ok(json!({"obis": object.obis.to_string(), "set": true}))
        }
        MeterCall::Action {
            obis,
            class_id,
            method,
            parameter,
        } => {
            let returned = conn.action(
                MethodDescriptor::new(*class_id, *obis, *method),
                parameter.as_ref(),
            )?;
            Ok(json!({"obis": obis.to_string(), "returned": returned.as_ref().map(json::data)}))
        }
        MeterCall::PollNow => Ok(json!({"polled": true})),
        // Answered by the worker from the meter's trace ring, before any association.
        MeterCall::Trace { .. } => Err(ExecError::Refused(
            "trace is answered from the trace ring".into(),
        )),
    }
}
