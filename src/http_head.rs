//! The HTTP request head as the page's gate reads it (sans-I/O): bounded, checked, rewritten
//! to one request per connection with the client's address added. Also the query strings of
//! the page's API. Pure functions of bytes, fuzzed (`fuzz/fuzz_targets/http_head.rs`).

/// The longest request head (request line and headers).
pub const MAX_HEAD: usize = 16 * 1024;

/// The client's address as the gate saw it, for the routes (sign-in limits, acknowledgements).
/// A client cannot set it: the gate drops any such header it sends.
pub const PEER_HEADER: &str = "X-Dlms-Bridge-Peer";

/// What the head reader found.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// The head (ending in CRLFCRLF, `Connection` replaced by `close`), its body length, and
    /// any bytes read past it.
    Complete {
        head: Vec<u8>,
        content_length: u64,
        extra: Vec<u8>,
        /// The request line's method and target, for the gate's routing.
        method: String,
        target: String,
        /// An `Authorization: Bearer ...` header is present (checked behind the gate, but a
        /// body is not read for a request without one).
        bearer: bool,
        /// `Expect: 100-continue` (removed: the gate answers it itself).
        expects_continue: bool,
    },
    TooLarge,
    Malformed,
    /// Well-formed but refused with this status line: a chunked body (the gate forwards only
    /// bodies of a known length: 411), another HTTP version than 1.0 or 1.1 (an HTTP/2
    /// preface, `PRI * HTTP/2.0`, would hold a request thread: 505).
    Unsupported(&'static str),
}

/// Pure: parses a buffered request head (sans-I/O) from the client at `peer`. `None`: need
/// more bytes.
pub fn parse_head(buf: &[u8], peer: &str) -> Option<Head> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (buf.len() > MAX_HEAD).then_some(Head::TooLarge);
    };
    if end + 4 > MAX_HEAD {
        return Some(Head::TooLarge);
    }
    let Ok(text) = std::str::from_utf8(&buf[..end]) else {
        return Some(Head::Malformed);
    };
    // A bare CR or LF (or NUL) inside a line could make the next parser see a line we did
    // not: a forged peer header (found by the fuzz target). RFC 9112 2.2 lets us refuse.
    if text
        .split("\r\n")
        .any(|l| l.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)))
    {
        return Some(Head::Malformed);
    }
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Some(Head::Malformed);
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Some(Head::Unsupported("505 HTTP Version Not Supported"));
    }
    let (mut bearer, mut expects_continue) = (false, false);
    let mut head = String::with_capacity(end + 24);
    head.push_str(request_line);
    head.push_str("\r\n");
    let mut content_length = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Some(Head::Malformed);
        };
        // Trimmed: "X-Dlms-Bridge-Peer : forged" must not pass as another header.
        let name = name.trim();
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case(PEER_HEADER) {
            continue;
        }
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Some(Head::Unsupported("411 Length Required"));
        }
        if name.eq_ignore_ascii_case("expect") {
            expects_continue = value.trim().eq_ignore_ascii_case("100-continue");
            continue;
        }
        if name.eq_ignore_ascii_case("authorization") {
            bearer = value.trim().split_once(' ').is_some_and(|(scheme, token)| {
                scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()
            });
        }
        if name.eq_ignore_ascii_case("content-length") {
            match value.trim().parse() {
                Ok(n) => content_length = n,
                Err(_) => return Some(Head::Malformed),
            }
        }
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str(PEER_HEADER);
    head.push_str(": ");
    head.push_str(peer);
    head.push_str("\r\nConnection: close\r\n\r\n");
    Some(Head::Complete {
        head: head.into_bytes(),
        content_length,
        extra: buf[end + 4..].to_vec(),
        method: method.to_string(),
        target: target.to_string(),
        bearer,
        expects_continue,
    })
}

/// The value of `key` in a query string (`a=1&b`: `b` is the empty string).
pub fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_rewritten_to_close_and_keeps_what_follows() {
        let h = parse_head(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nX-Dlms-Bridge-Peer: 1.2.3.4\r\nContent-Length: 3\r\n\r\nabcGET", "127.0.0.1").unwrap();
        let Head::Complete {
            head,
            content_length,
            extra,
            ..
        } = h
        else {
            panic!("{h:?}")
        };
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nX-Dlms-Bridge-Peer: 127.0.0.1\r\nConnection: close\r\n\r\n"
        );
        assert_eq!((content_length, extra.as_slice()), (3, &b"abcGET"[..]));
    }

    #[test]
    fn incomplete_heads_wait_and_endless_ones_are_refused() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n", "p"), None);
        let endless = vec![b'a'; MAX_HEAD + 1];
        assert_eq!(parse_head(&endless, "p"), Some(Head::TooLarge));
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.extend(vec![b'a'; MAX_HEAD]);
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_head(&long, "p"), Some(Head::TooLarge));
    }

    /// Issue 24 item 1: what would hold a request thread behind the gate is refused at once.
    #[test]
    fn chunked_bodies_and_other_versions_are_refused_and_routing_facts_are_read() {
        assert_eq!(
            parse_head(b"PRI * HTTP/2.0\r\n\r\n", "p"),
            Some(Head::Unsupported("505 HTTP Version Not Supported"))
        );
        assert_eq!(
            parse_head(
                b"PUT /api/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                "p"
            ),
            Some(Head::Unsupported("411 Length Required"))
        );
        let Some(Head::Complete {
            head,
            method,
            target,
            bearer,
            expects_continue,
            ..
        }) = parse_head(
            b"POST /api/meters HTTP/1.1\r\nAuthorization: Bearer abc\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
            "p",
        )
        else {
            panic!()
        };
        assert_eq!((method.as_str(), target.as_str()), ("POST", "/api/meters"));
        assert!(bearer && expects_continue);
        assert!(!String::from_utf8(head).unwrap().contains("Expect"));
        let Some(Head::Complete { bearer, .. }) = parse_head(
            b"POST /api/x HTTP/1.1\r\nAuthorization: Basic abc\r\n\r\n",
            "p",
        ) else {
            panic!()
        };
        assert!(!bearer);
    }

    #[test]
    fn query_values() {
        assert_eq!(query_value("since=5&active=true", "active"), Some("true"));
        assert_eq!(query_value("active", "active"), Some(""));
        assert_eq!(query_value("", "since"), None);
    }

    #[test]
    fn malformed_heads_are_refused() {
        assert_eq!(parse_head(b"GARBAGE\r\n\r\n", "p"), Some(Head::Malformed));
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nno colon\r\n\r\n", "p"),
            Some(Head::Malformed)
        );
        assert_eq!(
            parse_head(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "p"),
            Some(Head::Malformed)
        );
        assert_eq!(
            parse_head(b"GET /x HTTP/1.1\nX-Dlms-Bridge-Peer: 1.2.3.4\r\n\r\n", "p"),
            Some(Head::Malformed),
            "a bare LF would smuggle a header line"
        );
        assert_eq!(
            parse_head(
                b"GET / HTTP/1.1\r\nA: b\rX-Dlms-Bridge-Peer: 1\r\n\r\n",
                "p"
            ),
            Some(Head::Malformed)
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\n\xff: x\r\n\r\n", "p"),
            Some(Head::Malformed)
        );
    }
}
