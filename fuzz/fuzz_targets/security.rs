//! Ciphered APDUs and HLS-GMAC responses from arbitrary bytes: no panic; anything that
//! deciphers re-ciphers to the same bytes (the tag was verified, so it can only be our own).
#![no_main]
use dlms_bridge::dlms::security::{cipher_apdu, decipher_apdu, verify_gmac_response, Keys, Protection};
use libfuzzer_sys::fuzz_target;

const KEYS: Keys = Keys {
    block_cipher: [0x11; 16],
    authentication: [0x22; 16],
};
const TITLE: [u8; 8] = *b"FUZZFUZZ";

fuzz_target!(|data: &[u8]| {
    if let Ok((plain, ic)) = decipher_apdu(&KEYS, &TITLE, data) {
        if let Ok(again) = cipher_apdu(&KEYS, &TITLE, ic, Protection::AuthenticatedEncrypted, &plain) {
            let _ = decipher_apdu(&KEYS, &TITLE, &again).expect("our own ciphertext deciphers");
        }
    }
    let _ = verify_gmac_response(&KEYS, &TITLE, b"challenge", data);
});
