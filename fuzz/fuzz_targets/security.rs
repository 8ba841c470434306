//! Ciphered APDUs (every envelope: glo-, ded-, general-glo, general-ded) and HLS-GMAC
//! responses from arbitrary bytes: no panic; anything that deciphers re-ciphers to the same
//! bytes (the tag was verified, so it can only be our own).
#![no_main]
use dlms_bridge::dlms::security::{open_apdu, seal_apdu, verify_gmac_response, Keys};
use libfuzzer_sys::fuzz_target;

const KEYS: Keys = Keys {
    block_cipher: [0x11; 16],
    authentication: [0x22; 16],
};
const DEDICATED: [u8; 16] = [0x33; 16];
const TITLE: [u8; 8] = *b"FUZZFUZZ";

fuzz_target!(|data: &[u8]| {
    // General- forms carry their title; glo-/ded- ones use the known one.
    for peer in [None, Some(&TITLE)] {
        if let Ok(opened) = open_apdu(&KEYS, Some(&DEDICATED), peer, data) {
            let sealed = seal_apdu(
                &KEYS,
                Some(&DEDICATED),
                opened.envelope,
                &TITLE,
                opened.invocation_counter,
                opened.protection,
                &opened.plain,
            );
            if let Ok(again) = sealed {
                let reopened = open_apdu(&KEYS, Some(&DEDICATED), Some(&TITLE), &again)
                    .expect("our own ciphertext deciphers");
                assert_eq!(reopened.plain, opened.plain);
            }
        }
    }
    let _ = verify_gmac_response(&KEYS, &TITLE, b"challenge", data);
});
