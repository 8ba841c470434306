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
