//! The streaming HDLC deframer over arbitrary bytes in arbitrary chunks: no panic, a bounded
//! buffer, and every frame it yields re-emits to bytes that parse back to the same frame.
#![no_main]
use dlms_bridge::dlms::hdlc::{Deframer, Frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut d = Deframer::new();
    for piece in stream.chunks(chunk) {
        d.push(piece);
        while let Some(frame) = d.next_frame() {
            let bytes = frame.emit().expect("a parsed frame fits its length field");
            assert_eq!(Frame::parse(&bytes).expect("re-emitted frame parses"), frame);
        }
        assert!(d.buffered() <= 2 * (0x7FF + 2) + chunk);
    }
});
