//! Issue 26 over HTTP (bearer token, like every /api route): `GET /api/meters/NAME/trace`, a
//! meter's last frames from its trace ring, and `POST /api/decode`, the page's decode box
//! (`{"hex": "...", "apdu": false}` and optionally the keys of a ciphered association, used
//! for this one request and never stored or logged).

use super::response::{error, json_response, Reply};
use super::state::Status;
use crate::dlms::describe::{describe_stream, DecodeKeys, Describer};
use crate::dlms::security::Keys;
use crate::store::{Store, StoreError};
use serde_json::{json, Value};

/// The most hex digits one decode takes (a 64 KiB wrapper PDU and its header, as text).
const MAX_HEX_DIGITS: usize = 2 * (8 + 65_535);

/// The NAME of a `/api/meters/NAME/trace` path (still percent-encoded).
pub(super) fn trace_of(path: &str) -> Option<&str> {
    path.strip_prefix("/api/meters/")
        .and_then(|rest| rest.strip_suffix("/trace"))
        .filter(|name| !name.is_empty() && !name.contains('/'))
}

/// `GET /api/meters/NAME/trace`: 404 for a meter that is not configured.
pub(super) fn trace(store: &Store, status: &Status, name: &str) -> Reply {
    match store.meter(name) {
        Ok(_) => {}
        Err(StoreError::NotFound(m)) => return error(404, format!("{m} not found")),
        Err(e) => return error(500, e.to_string()),
    }
    json_response(200, &trace_document(status, name))
}

/// What the API and the `trace` RPC answer for a meter.
pub fn trace_document(status: &Status, name: &str) -> Value {
    let mut doc = status.trace_json(name);
    if let Value::Object(o) = &mut doc {
        o.insert("meter".into(), json!(name));
    }
    doc
}

/// [`trace_document`] with only the newest `last` entries (an RPC answer must fit
/// `thingsboard.max_payload_bytes`).
pub fn trace_document_last(status: &Status, name: &str, last: usize) -> Value {
    let mut doc = trace_document(status, name);
    if let Some(Value::Array(entries)) = doc.get_mut("entries") {
        let skip = entries.len().saturating_sub(last);
        entries.drain(..skip);
    }
    doc
}

/// `POST /api/decode`.
pub(super) fn decode(body: &str) -> Reply {
    let request: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return error(400, format!("invalid JSON: {e}")),
    };
    let Some(hex) = request.get("hex").and_then(Value::as_str) else {
        return error(400, "give \"hex\": the bytes as hex digits");
    };
    if hex.len() > MAX_HEX_DIGITS {
        return error(413, "hex: too long for one decode");
    }
    let Some(bytes) = crate::hex::parse(hex) else {
        return error(
            400,
            "hex: not a hex string (pairs of 0-9 A-F, spaces allowed)",
        );
    };
    let keys = match keys_of(&request) {
        Ok(k) => k,
        Err(msg) => return error(400, msg),
    };
    let lines = if request.get("apdu").and_then(Value::as_bool) == Some(true) {
        vec![Describer::with_keys(keys).describe_apdu(&bytes)]
    } else {
        describe_stream(&bytes, keys)
    };
    json_response(200, &json!({"lines": lines}))
}

fn keys_of(request: &Value) -> Result<DecodeKeys, String> {
    let field = |name: &str| -> Result<Option<String>, String> {
        match request.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{name}: a string of hex digits")),
        }
    };
    fn array<const N: usize>(name: &str, s: &str) -> Result<[u8; N], String> {
        crate::hex::array::<N>(s)
            .ok_or_else(|| format!("{name}: expected {N} bytes as {} hex digits", 2 * N))
    }
    let encryption = field("encryption_key")?;
    let authentication = field("authentication_key")?;
    let title = field("system_title")?
        .map(|t| array::<8>("system_title", &t))
        .transpose()?;
    match (encryption, authentication) {
        (None, None) => Ok(DecodeKeys::none()),
        (Some(e), Some(a)) => Ok(DecodeKeys::with_keys(
            Keys {
                block_cipher: array::<16>("encryption_key", &e)?,
                authentication: array::<16>("authentication_key", &a)?,
            },
            title,
        )),
        _ => Err("give both encryption_key and authentication_key, or neither".into()),
    }
}
