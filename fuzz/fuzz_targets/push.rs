//! Pushed data: a DATA-NOTIFICATION decoded directly (re-encoding decodes to the same), the
//! same bytes through the push receiver (HDLC deframing, reassembly, OBIS mapping, with and
//! without a template) and through a TCP push stream (wrapper or HDLC): no panic, bounded
//! memory.
#![no_main]
use dlms_bridge::client::push::{parse_template, sender_title, PushStream, Receiver};
use dlms_bridge::dlms::xdlms::notification::DataNotification;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = DataNotification::decode(data) {
        let again = DataNotification::decode(&n.encode()).expect("our encoding decodes");
        assert_eq!(again.encode(), n.encode());
    }
    let template = parse_template("-,1-0:1.7.0,1-0:31.7.0@-3").unwrap();
    let mut plain = Receiver::new(None, Vec::new(), 0);
    let mut templated = Receiver::new(None, template, 60);
    for chunk in data.chunks(37) {
        let _ = plain.push_bytes(chunk);
        let _ = templated.push_bytes(chunk);
    }
    let _ = plain.apdu(data);
    let _ = sender_title(data);
    let mut tcp = PushStream::new();
    for chunk in data.chunks(23) {
        if tcp.push(chunk).is_err() {
            break;
        }
    }
});
