//! The object identifiers DLMS uses in ACSE (Green Book 9.4.2.2.2 and 9.4.2.2.3):
//! `{joint-iso-ccitt(2) country(16) country-name(756) identified-organization(5) DLMS-UA(8)
//! application-context(1) | authentication-mechanism-name(2) id}`, BER-encoded as
//! `60 85 74 05 08 01|02 id`.

use crate::dlms::{ber, DecodeError, Reader};

const OID_PREFIX: [u8; 5] = [0x60, 0x85, 0x74, 0x05, 0x08];
const CONTEXT_ARC: u8 = 1;
const MECHANISM_ARC: u8 = 2;

/// Application context names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationContext {
    LogicalName,
    ShortName,
    LogicalNameCiphered,
    ShortNameCiphered,
    Unknown(u8),
}

impl ApplicationContext {
    pub fn id(self) -> u8 {
        match self {
            ApplicationContext::LogicalName => 1,
            ApplicationContext::ShortName => 2,
            ApplicationContext::LogicalNameCiphered => 3,
            ApplicationContext::ShortNameCiphered => 4,
            ApplicationContext::Unknown(id) => id,
        }
    }

    pub fn from_id(id: u8) -> Self {
        match id {
            1 => ApplicationContext::LogicalName,
            2 => ApplicationContext::ShortName,
            3 => ApplicationContext::LogicalNameCiphered,
            4 => ApplicationContext::ShortNameCiphered,
            other => ApplicationContext::Unknown(other),
        }
    }

    pub fn is_ciphered(self) -> bool {
        matches!(
            self,
            ApplicationContext::LogicalNameCiphered | ApplicationContext::ShortNameCiphered
        )
    }
}

/// Authentication mechanism names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Lowest,
    /// LLS: a password.
    Low,
    High,
    HighMd5,
    HighSha1,
    /// HLS mechanism 5: GMAC.
    HighGmac,
    HighSha256,
    HighEcdsa,
    Unknown(u8),
}

impl Mechanism {
    pub fn id(self) -> u8 {
        match self {
            Mechanism::Lowest => 0,
            Mechanism::Low => 1,
            Mechanism::High => 2,
            Mechanism::HighMd5 => 3,
            Mechanism::HighSha1 => 4,
            Mechanism::HighGmac => 5,
            Mechanism::HighSha256 => 6,
            Mechanism::HighEcdsa => 7,
            Mechanism::Unknown(id) => id,
        }
    }

    pub fn from_id(id: u8) -> Self {
        match id {
            0 => Mechanism::Lowest,
            1 => Mechanism::Low,
            2 => Mechanism::High,
            3 => Mechanism::HighMd5,
            4 => Mechanism::HighSha1,
            5 => Mechanism::HighGmac,
            6 => Mechanism::HighSha256,
            7 => Mechanism::HighEcdsa,
            other => Mechanism::Unknown(other),
        }
    }
}

fn oid(arc: u8, id: u8) -> [u8; 7] {
    let p = OID_PREFIX;
    [p[0], p[1], p[2], p[3], p[4], arc, id]
}

fn parse_oid(bytes: &[u8], arc: u8, what: &'static str) -> Result<u8, DecodeError> {
    match bytes {
        [a, b, c, d, e, f, id] if [*a, *b, *c, *d, *e] == OID_PREFIX && *f == arc => Ok(*id),
        _ => Err(DecodeError::InvalidValue {
            what,
            value: bytes.len() as u64,
        }),
    }
}

/// application-context-name: [1] EXPLICIT OBJECT IDENTIFIER.
pub(super) fn write_context(out: &mut Vec<u8>, ctx: ApplicationContext) {
    let mut inner = Vec::with_capacity(9);
    ber::write_tlv(&mut inner, 0x06, &oid(CONTEXT_ARC, ctx.id()));
    ber::write_tlv(out, 0xA1, &inner);
}

pub(super) fn read_context(content: &[u8]) -> Result<ApplicationContext, DecodeError> {
    let mut r = Reader::new(content);
    let oid = ber::expect_tlv(&mut r, 0x06, "application-context-name OID")?;
    r.finish()?;
    parse_oid(oid, CONTEXT_ARC, "application-context-name").map(ApplicationContext::from_id)
}

/// mechanism-name: [11] (AARQ) or [9] (AARE) IMPLICIT OBJECT IDENTIFIER.
pub(super) fn write_mechanism(out: &mut Vec<u8>, tag: u8, m: Mechanism) {
    ber::write_tlv(out, tag, &oid(MECHANISM_ARC, m.id()));
}

pub(super) fn read_mechanism(content: &[u8]) -> Result<Mechanism, DecodeError> {
    parse_oid(content, MECHANISM_ARC, "mechanism-name").map(Mechanism::from_id)
}
