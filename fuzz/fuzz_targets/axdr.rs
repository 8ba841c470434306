//! A-XDR Data: no panic; whatever decodes re-encodes to a canonical form that is stable.
#![no_main]
use dlms_bridge::dlms::axdr::Data;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = Data::decode(data) {
        let canonical = value.to_bytes();
        let again = Data::decode(&canonical).expect("canonical encoding decodes");
        assert_eq!(again.to_bytes(), canonical);
    }
    let _ = Data::decode_prefix(data);
});
