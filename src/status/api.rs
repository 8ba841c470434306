//! The admin API: the `meter` commands over HTTP, applied live (the supervisor picks changes
//! up from the database). Protected by a bearer token from the settings (`http.api_token`);
//! refused entirely while no token is set. Passwords and tokens are accepted, never returned.

use super::response::{config_error, error, json_response, Reply};
use crate::config::json::{
    apply_json, from_json, measurements_from_json, measurements_json, to_json, Secrets,
};
use crate::config::MeterConfig;
use crate::store::{Store, StoreError};
use serde_json::{json, Value};
use tiny_http::Method;

/// The HTTP status from the kind of error, never from its wording.
fn store_error(e: StoreError) -> Reply {
    match e {
        StoreError::NotFound(m) => error(404, format!("{m} not found")),
        StoreError::Conflict(m) => error(409, m),
        StoreError::Config(e) => config_error(&e),
        StoreError::Invalid(m) => error(400, m),
        other => error(500, other.to_string()),
    }
}

/// Decodes %XX escapes in a path segment (meter names may contain spaces).
pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|c| hex(*c)),
            b.get(i + 2).and_then(|c| hex(*c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Equal-time comparison, so the token cannot be guessed byte by byte from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A meter as the API shows it: secrets replaced by whether they are set.
pub(super) fn public(m: &MeterConfig) -> Value {
    to_json(m, Secrets::SetOrNot)
}

/// Checks the bearer token (and the address's failed sign-ins) before any API route.
pub(super) fn authorize(
    store: &Store,
    auth: Option<&str>,
    client: &str,
    limiter: &std::sync::Mutex<super::sign_in::SignInLimiter>,
) -> Result<(), Reply> {
    let token = match store.settings() {
        Ok(s) => s.api_token,
        Err(e) => return Err(store_error(e)),
    };
    let Some(token) = token else {
        return Err(error(
            403,
            "the API is disabled: set http.api_token to enable it (dlms-bridge settings set http.api_token ...)",
        ));
    };
    let now = std::time::Instant::now();
    let mut limiter = limiter.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(wait_s) = limiter.check(client, now) {
        return Err(error(
            429,
            format!("too many failed sign-ins from {client}: try again in {wait_s} s"),
        )
        .with_header(super::response::header("Retry-After", &wait_s.to_string())));
    }
    // The scheme name is case-insensitive (RFC 7235 section 2.1).
    let presented = auth.and_then(|a| {
        let (scheme, token) = a.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    match presented {
        Some(given) if same(given.trim().as_bytes(), token.as_bytes()) => {
            limiter.succeeded(client);
            Ok(())
        }
        wrong_or_none => {
            // Only a wrong token counts as a failed sign-in (a page asking without one does not).
            if wrong_or_none.is_some() {
                limiter.failed(client, now);
            }
            Err(error(401, "missing or wrong bearer token")
                .with_header(super::response::header("WWW-Authenticate", "Bearer")))
        }
    }
}

/// `/api/meters...` (the caller authorized the request).
pub(super) fn meters(store: &mut Store, method: &Method, path: &str, body: &str) -> Reply {
    let decoded: Vec<String> = path
        .trim_start_matches("/api/meters")
        .split('/')
        .filter(|p| !p.is_empty())
        .map(percent_decode)
        .collect();
    let parts: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let parse = |body: &str| {
        serde_json::from_str::<Value>(body).map_err(|e| error(400, format!("invalid JSON: {e}")))
    };
    match (method, parts.as_slice()) {
        (Method::Get, []) => match store.meters() {
            Ok(ms) => json_response(200, &Value::Array(ms.iter().map(public).collect())),
            Err(e) => store_error(e),
        },
        (Method::Post, []) => {
            let m = match parse(body).and_then(|v| from_json(&v).map_err(|e| config_error(&e))) {
                Ok(m) => m,
                Err(r) => return r,
            };
            match store.add_meter(&m) {
                Ok(id) => json_response(201, &json!({"id": id, "name": m.name})),
                Err(e) => store_error(e),
            }
        }
        (Method::Get, [id]) => match store.meter(id) {
            Ok(m) => json_response(200, &public(&m)),
            Err(e) => store_error(e),
        },
        (Method::Patch, [id]) => {
            let patch = match parse(body) {
                Ok(Value::Object(o)) => o,
                Ok(_) => return error(400, "PATCH takes a JSON object of fields"),
                Err(r) => return r,
            };
            let mut m = match store.meter(id) {
                Ok(m) => m,
                Err(e) => return store_error(e),
            };
            // Only the fields given change; the whole is then checked.
            if let Err(e) = apply_json(&mut m, &patch) {
                return config_error(&e.of_meter(&m.name));
            }
            match store.update_meter(&m) {
                Ok(()) => json_response(200, &public(&m)),
                Err(e) => store_error(e),
            }
        }
        (Method::Delete, [id]) => match store.remove_meter(id) {
            Ok(()) => json_response(200, &json!({"deleted": id})),
            Err(e) => store_error(e),
        },
        (Method::Get, [id, "measurements"]) => match store.meter(id) {
            Ok(m) => json_response(200, &measurements_json(&m.measurements)),
            Err(e) => store_error(e),
        },
        (Method::Put, [id, "measurements"]) => {
            let list = match parse(body)
                .and_then(|v| measurements_from_json(&v).map_err(|e| config_error(&e)))
            {
                Ok(l) => l,
                Err(r) => return r,
            };
            let mut m = match store.meter(id) {
                Ok(m) => m,
                Err(e) => return store_error(e),
            };
            m.measurements = list;
            match store.update_meter(&m) {
                Ok(()) => json_response(200, &measurements_json(&m.measurements)),
                Err(e) => store_error(e),
            }
        }
        _ => error(405, format!("{method} {path} is not supported")),
    }
}
