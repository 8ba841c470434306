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
    },
    TooLarge,
    Malformed,
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
    if request_line.split(' ').count() != 3 {
        return Some(Head::Malformed);
    }
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
