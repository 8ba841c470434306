//! The trace describer (`dlms_bridge::dlms::describe`): no panic on any input, as a stream
//! (HDLC frames, segments joined, wrapper PDUs, text), as one APDU, and through the password
//! mask. The Green Book example keys are given so that the deciphering path runs too (the
//! seeds' ciphered vectors were made with them); a masked unit stays the same length.
#![no_main]
use dlms_bridge::dlms::describe::{describe_stream, mask_secrets, DecodeKeys, Describer};
use dlms_bridge::dlms::security::Keys;
use libfuzzer_sys::fuzz_target;

fn keys() -> DecodeKeys {
    let block_cipher: [u8; 16] = core::array::from_fn(|i| i as u8);
    let authentication: [u8; 16] = core::array::from_fn(|i| 0xD0 + i as u8);
    DecodeKeys::with_keys(
        Keys {
            block_cipher,
            authentication,
        },
        Some([0x4D, 0x4D, 0x4D, 0x00, 0x00, 0xBC, 0x61, 0x4E]),
    )
}

fuzz_target!(|data: &[u8]| {
    let _ = describe_stream(data, DecodeKeys::none());
    let _ = describe_stream(data, keys());
    let _ = Describer::with_keys(keys()).describe_apdu(data);
    let mut masked = data.to_vec();
    mask_secrets(&mut masked);
    assert_eq!(masked.len(), data.len());
});
