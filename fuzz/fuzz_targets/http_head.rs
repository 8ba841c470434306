//! The page's request-head parser and query strings from untrusted bytes: no panic; a head
//! that is accepted ends the head, carries our peer header exactly once (a client's own is
//! dropped) and `Connection: close`, and keeps every byte that followed it.
#![no_main]
use dlms_bridge::http_head::{parse_head, query_value, Head, PEER_HEADER};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(Head::Complete { head, extra, .. }) = parse_head(data, "192.0.2.1") {
        let text = String::from_utf8(head).expect("heads are UTF-8");
        assert!(text.ends_with("Connection: close\r\n\r\n"));
        let ours = format!("\r\n{PEER_HEADER}: 192.0.2.1\r\nConnection: close\r\n\r\n");
        assert!(text.ends_with(&ours), "{text:?}");
        let peer_lines = text
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .filter(|(name, _)| name.trim().eq_ignore_ascii_case(PEER_HEADER))
            .count();
        assert_eq!(peer_lines, 1, "{text:?}");
        assert!(data.ends_with(&extra));
    }
    if let Ok(q) = std::str::from_utf8(data) {
        for key in ["since", "active", ""] {
            if let Some(v) = query_value(q, key) {
                assert!(q.contains(v));
            }
        }
    }
});
