//! The IEC 62056-47 wrapper decoder: no panic; decoded PDUs re-wrap to the bytes consumed.
#![no_main]
use dlms_bridge::dlms::wrapper::{wrap, WrapperDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = WrapperDecoder::new();
    d.push(data);
    let mut consumed = 0;
    while let Ok(Some(pdu)) = d.next_pdu() {
        let bytes = wrap(pdu.source, pdu.destination, &pdu.apdu).unwrap();
        assert_eq!(&data[consumed..consumed + bytes.len()], &bytes[..]);
        consumed += bytes.len();
    }
});
