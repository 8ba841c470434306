//! ACSE APDUs for association establishment and release (Green Book 9.4.2, ISO/IEC 8650-1 as
//! profiled by DLMS): AARQ, AARE, RLRQ, RLRE, BER-encoded, carrying the xDLMS
//! InitiateRequest/Response (plain or ciphered) in their user-information field.

mod aare;
mod aarq;
mod names;
mod release;

pub use aare::{Aare, AssociationRejected, AssociationResult, ResultSourceDiagnostic};
pub use aarq::Aarq;
pub use names::{ApplicationContext, Mechanism};
pub use release::{ReleaseReason, Rlre, Rlrq};

/// APDU tags ([APPLICATION n], constructed).
pub const AARQ_TAG: u8 = 0x60;
pub const AARE_TAG: u8 = 0x61;
pub const RLRQ_TAG: u8 = 0x62;
pub const RLRE_TAG: u8 = 0x63;

use super::ber;
use super::{DecodeError, Reader};

/// user-information ::= [30] EXPLICIT OCTET STRING holding an xDLMS APDU.
fn write_user_information(out: &mut Vec<u8>, tag: u8, xdlms: &[u8]) {
    let mut inner = Vec::with_capacity(xdlms.len() + 4);
    ber::write_tlv(&mut inner, 0x04, xdlms);
    ber::write_tlv(out, tag, &inner);
}

fn read_user_information(content: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut r = Reader::new(content);
    let inner = ber::expect_tlv(&mut r, 0x04, "user-information OCTET STRING")?;
    r.finish()?;
    Ok(inner.to_vec())
}

/// An AP-title: [n] EXPLICIT OCTET STRING (the system title, 8 bytes in DLMS).
fn write_ap_title(out: &mut Vec<u8>, tag: u8, title: &[u8]) {
    let mut inner = Vec::with_capacity(title.len() + 2);
    ber::write_tlv(&mut inner, 0x04, title);
    ber::write_tlv(out, tag, &inner);
}

fn read_ap_title(content: &[u8]) -> Result<Vec<u8>, DecodeError> {
    read_user_information(content)
}

/// An authentication value: [n] EXPLICIT CHOICE { charstring [0] IMPLICIT GraphicString, ... }.
fn write_authentication_value(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    let mut inner = Vec::with_capacity(value.len() + 2);
    ber::write_tlv(&mut inner, 0x80, value);
    ber::write_tlv(out, tag, &inner);
}

fn read_authentication_value(content: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut r = Reader::new(content);
    let (tag, value) = ber::read_tlv(&mut r)?;
    // charstring [0] or bitstring [1]; both carry the bytes DLMS needs.
    if tag != 0x80 && tag != 0x81 {
        return Err(DecodeError::UnknownTag {
            what: "authentication-value",
            tag,
        });
    }
    r.finish()?;
    Ok(value.to_vec())
}

/// sender/responder-acse-requirements: BIT STRING with the authentication bit set (07 80).
const ACSE_REQUIREMENTS_AUTH: [u8; 2] = [0x07, 0x80];
