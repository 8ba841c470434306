//! Ciphered APDUs in a trace (Green Book DLMS UA 1000-2 Ed. 10, 9.2.7.2.4 and 9.5): the
//! service, the security header (security control byte, invocation counter, the carried system
//! title of general-ciphering) and, only when keys were given, the deciphered APDU inside.
//!
//! The bridge's per-meter ring never has keys: what was ciphered on the wire stays ciphered.

use super::apdu::describe_nested;
use super::value::hex;
use crate::dlms::security::{self, Envelope, Keys};
use crate::dlms::{DecodeError, Reader};
use std::fmt::Write;

/// Keys to open ciphered APDUs with, and what a trace learnt on the way: the system titles
/// of the AARQ and AARE (the IV of glo-/ded- APDUs is the sender's title, Green Book
/// 9.2.7.2.4.2) and the dedicated key of a (deciphered) InitiateRequest.
#[derive(Clone, Default)]
pub struct DecodeKeys {
    pub keys: Option<Keys>,
    /// The sender's system title for APDUs that do not carry one and whose association was
    /// not seen (`--system-title`).
    pub system_title: Option<[u8; 8]>,
    pub client_title: Option<[u8; 8]>,
    pub server_title: Option<[u8; 8]>,
    pub dedicated: Option<[u8; 16]>,
}

impl std::fmt::Debug for DecodeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are never printed, not even in a debug dump.
        f.write_str("DecodeKeys(***)")
    }
}

impl DecodeKeys {
    /// No keys: ciphered APDUs are described, never opened.
    pub fn none() -> DecodeKeys {
        DecodeKeys::default()
    }

    pub fn with_keys(keys: Keys, system_title: Option<[u8; 8]>) -> DecodeKeys {
        DecodeKeys {
            keys: Some(keys),
            system_title,
            ..DecodeKeys::default()
        }
    }
}

/// The name of a ciphered APDU's service, or `None` if the tag is not a ciphered one.
pub fn ciphered_name(tag: u8) -> Option<&'static str> {
    Some(match tag {
        0x21 => "glo-initiateRequest",
        0x28 => "glo-initiateResponse",
        0xC8 => "glo-get-request",
        0xC9 => "glo-set-request",
        0xCB => "glo-action-request",
        0xCC => "glo-get-response",
        0xCD => "glo-set-response",
        0xCF => "glo-action-response",
        0xDE => "glo-exception-response",
        0x41 => "ded-initiateRequest",
        0x48 => "ded-initiateResponse",
        0xD0 => "ded-get-request",
        0xD1 => "ded-set-request",
        0xD3 => "ded-action-request",
        0xD4 => "ded-get-response",
        0xD5 => "ded-set-response",
        0xD7 => "ded-action-response",
        security::GENERAL_GLO_CIPHERING => "general-glo-ciphering",
        security::GENERAL_DED_CIPHERING => "general-ded-ciphering",
        _ => return None,
    })
}

/// Whether the service is one a client sends (its IV holds the client's system title).
fn sent_by_client(tag: u8) -> bool {
    matches!(tag, 0x21 | 0x41 | 0xC8 | 0xC9 | 0xCB | 0xD0 | 0xD1 | 0xD3)
}

/// The header fields of a ciphered APDU.
struct Header<'a> {
    carried_title: Option<&'a [u8]>,
    security_control: u8,
    invocation_counter: u32,
    body_len: usize,
}

fn header(apdu: &[u8], envelope: Envelope) -> Result<Header<'_>, DecodeError> {
    let mut r = Reader::new(apdu);
    r.u8()?;
    let carried_title = if envelope.is_general() {
        let len = r.axdr_length_bounded("system title")?;
        Some(r.bytes(len)?)
    } else {
        None
    };
    let body_len = r.axdr_length_bounded("ciphered APDU")?;
    let security_control = r.u8()?;
    let invocation_counter = r.u32()?;
    Ok(Header {
        carried_title,
        security_control,
        invocation_counter,
        body_len,
    })
}

fn protection_text(sc: u8) -> String {
    let what = match sc & 0x30 {
        0x10 => "authenticated",
        0x20 => "encrypted",
        0x30 => "authenticated and encrypted",
        _ => "not protected",
    };
    let mut t = format!("security control 0x{sc:02X} (suite {}, {what}", sc & 0x0F);
    if sc & 0x80 != 0 {
        t.push_str(", compressed");
    }
    if sc & 0x40 != 0 {
        t.push_str(", broadcast key");
    }
    t.push(')');
    t
}

pub(super) fn describe_ciphered(
    name: &str,
    apdu: &[u8],
    keys: &mut DecodeKeys,
    depth: u8,
) -> String {
    let tag = apdu.first().copied().unwrap_or_default();
    let Some(envelope) = Envelope::of_tag(tag) else {
        return format!("{name} (envelope unknown)");
    };
    let h = match header(apdu, envelope) {
        Ok(h) => h,
        Err(e) => return format!("{name} (not decoded: {e})"),
    };
    let mut t = name.to_string();
    if let Some(title) = h.carried_title {
        let _ = write!(t, " system-title {}", hex(title));
    }
    let _ = write!(
        t,
        ", {}, invocation counter {}, {} byte(s) protected",
        protection_text(h.security_control),
        h.invocation_counter,
        h.body_len
    );
    let Some(k) = keys.keys.clone() else {
        return t;
    };
    // Whose title is in the IV: the carried one (general-), else the sender's from the
    // association, else the one given on the command line.
    let learnt = if sent_by_client(tag) {
        keys.client_title
    } else {
        keys.server_title
    };
    let title = if envelope.is_general() {
        None
    } else {
        match learnt.or(keys.system_title) {
            Some(title) => Some(title),
            None => {
                t.push_str(" | not deciphered: no system title (give --system-title)");
                return t;
            }
        }
    };
    match security::open_apdu(&k, keys.dedicated.as_ref(), title.as_ref(), apdu) {
        Ok(opened) => {
            let inner = describe_nested(&opened.plain, keys, depth + 1);
            let _ = write!(t, " | deciphered: {inner}");
        }
        Err(e) => {
            let _ = write!(t, " | not deciphered: {e}");
        }
    }
    t
}
