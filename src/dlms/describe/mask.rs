//! Secrets out of traced bytes: the AARQ's calling-authentication-value (Green Book 9.4.2.2,
//! tag 0xAC: the LLS password, or the HLS challenge) is overwritten with `*` before a frame is
//! kept or printed. An HDLC frame gets its FCS recomputed, so the masked frame still decodes
//! (IEC 62056-46 6.4.1: the FCS covers everything between the flags).
//!
//! Ciphered APDUs need nothing: they are kept as they were on the wire, still ciphered.

use crate::dlms::acse::AARQ_TAG;
use crate::dlms::hdlc::fcs::fcs16;
use crate::dlms::hdlc::FLAG;
use crate::dlms::wrapper::{HEADER_LEN, VERSION};
use crate::dlms::{ber, Reader};
use std::ops::Range;

const CALLING_AUTHENTICATION_VALUE: u8 = 0xAC;
const MASK: u8 = b'*';

/// Masks the password in one unit (HDLC frame or wrapper PDU) as sent; anything else is left
/// as it is. Returns whether something was masked.
pub fn mask_secrets(unit: &mut [u8]) -> bool {
    let Some(apdu_start) = apdu_offset(unit) else {
        return false;
    };
    let Some(apdu) = unit.get(apdu_start..) else {
        return false;
    };
    let Some(range) = secret_range(apdu) else {
        return false;
    };
    let start = apdu_start + range.start;
    let end = (apdu_start + range.end).min(unit.len());
    if let Some(secret) = unit.get_mut(start..end) {
        secret.fill(MASK);
    }
    if unit.first() == Some(&FLAG) {
        refresh_fcs(unit);
    }
    true
}

/// Where the APDU starts: after the wrapper header, or after an HDLC I-frame's header, HCS and
/// LLC bytes (E6 E6 00, IEC 62056-46 / Green Book 8.4.3.4).
fn apdu_offset(unit: &[u8]) -> Option<usize> {
    match unit {
        [FLAG, f0, _, ..] if f0 & 0xF0 == 0xA0 => {
            let mut i = 3;
            // Two address fields, each up to and including the byte whose low bit is 1.
            for _ in 0..2 {
                let len = unit.get(i..)?.iter().position(|b| b & 1 == 1)? + 1;
                i += len;
            }
            let control = *unit.get(i)?;
            if control & 0x01 != 0 {
                return None; // not an I-frame
            }
            i += 1 + 2; // control, HCS
            let llc = unit.get(i..i + 3)?;
            (llc[0] == 0xE6).then_some(i + 3)
        }
        [v0, v1, ..] if u16::from_be_bytes([*v0, *v1]) == VERSION => Some(HEADER_LEN),
        _ => None,
    }
}

/// The content of the AARQ's 0xAC element, relative to the APDU's start. A truncated AARQ
/// (the first segment of a long one) is masked up to where its bytes end.
fn secret_range(apdu: &[u8]) -> Option<Range<usize>> {
    let mut r = Reader::new(apdu);
    if r.u8().ok()? != AARQ_TAG {
        return None;
    }
    ber::read_length(&mut r).ok()?;
    while !r.is_empty() {
        let tag = r.u8().ok()?;
        let len = ber::read_length(&mut r).ok()?;
        if tag == CALLING_AUTHENTICATION_VALUE {
            // Authentication-value ::= CHOICE { charstring [0], bitstring [1], ... }: the
            // secret is the content of the inner element, its tag and length stay.
            r.u8().ok()?;
            let inner = ber::read_length(&mut r).ok()?;
            let start = r.position();
            return Some(start..(start + inner).min(apdu.len()));
        }
        r.bytes(len).ok()?;
    }
    None
}

fn refresh_fcs(frame: &mut [u8]) {
    let n = frame.len();
    if n < 4 {
        return;
    }
    let fcs = fcs16(&frame[1..n - 3]).to_le_bytes();
    frame[n - 3] = fcs[0];
    frame[n - 2] = fcs[1];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlms::hdlc::Frame;
    use crate::dlms::test_util::hex;

    #[test]
    fn the_lls_password_is_masked_and_the_frame_stays_valid() {
        // gurux-dlms 1.0.203's AARQ with LLS password "12345678" in an I-frame
        // (tests/vectors/independent.json, hdlc_aarq_lls).
        let mut frame = hex("7EA044032110E684E6E6006036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738BE10040E01000000065F1F0400401E5DFFFF8B3C7E");
        let aarq = Frame::parse(&frame).unwrap().info[3..].to_vec();
        assert!(mask_secrets(&mut frame));
        assert!(!frame.windows(8).any(|w| w == b"12345678"));
        assert!(frame.windows(8).any(|w| w == b"********"));
        let parsed = Frame::parse(&frame).expect("FCS recomputed");
        let masked = crate::dlms::acse::Aarq::decode(&parsed.info[3..]).expect("still an AARQ");
        assert_eq!(
            masked.calling_authentication_value.as_deref(),
            Some(&b"********"[..])
        );
        assert_eq!(
            masked.user_information,
            crate::dlms::acse::Aarq::decode(&aarq)
                .unwrap()
                .user_information
        );

        let mut wrapped = crate::dlms::wrapper::wrap(16, 1, &aarq).unwrap();
        assert!(mask_secrets(&mut wrapped));
        assert!(!wrapped.windows(8).any(|w| w == b"12345678"));
        // A GET is left alone.
        let mut get =
            crate::dlms::wrapper::wrap(16, 1, &hex("C001C100030100010800FF0200")).unwrap();
        assert!(!mask_secrets(&mut get));
    }
}
