//! Response building shared by the page's routes and the admin API.

use tiny_http::{Header, Response};

pub(super) fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap_or_else(|_| {
        Header::from_bytes(&b"X-Invalid"[..], &b"1"[..]).unwrap_or_else(|_| unreachable!())
    })
}

pub(super) fn json_response(
    code: u16,
    body: &serde_json::Value,
) -> Response<std::io::Cursor<Vec<u8>>> {
    json_bytes_response(code, serde_json::to_vec(body).unwrap_or_default())
}

pub(super) fn json_bytes_response(code: u16, body: Vec<u8>) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(body)
        .with_status_code(code)
        .with_header(header("Content-Type", "application/json"))
        .with_header(header("Cache-Control", "no-store"))
        // Always a Content-Length: tiny_http would switch large bodies to chunked encoding,
        // which simple monitoring scripts do not expect.
        .with_chunked_threshold(usize::MAX)
}

/// A response of the page's API.
pub(super) type Reply = Response<std::io::Cursor<Vec<u8>>>;

/// `{"error": msg}` with `code`.
pub(super) fn error(code: u16, msg: impl Into<String>) -> Reply {
    json_response(code, &serde_json::json!({"error": msg.into()}))
}

/// A 400 about one input field, named so that the page can show it next to that field.
pub(super) fn field_error(msg: impl Into<String>, field: Option<&str>) -> Reply {
    json_response(
        400,
        &serde_json::json!({"error": msg.into(), "field": field}),
    )
}

/// A value the meter model refused.
pub(super) fn config_error(e: &crate::config::ConfigError) -> Reply {
    field_error(e.to_string(), e.field_name())
}
