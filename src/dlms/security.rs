//! DLMS security suite 0 (Green Book 9.2.7.2.4 / 9.2.7.4: AES-GCM-128), sans-I/O.
//!
//! - The initialisation vector is the sender's system title (8 bytes) followed by its
//!   invocation counter (4 bytes, big-endian); the tag is 12 bytes.
//! - Security control byte: suite in bits 0-3, 0x10 authentication, 0x20 encryption.
//!   Authenticated and encrypted: AAD = SC || AK. Authenticated only: AAD = SC || AK ||
//!   plaintext, which travels in clear. Encrypted only: no tag.
//! - A ciphered APDU is `tag | length | SC | IC | payload [| auth tag]`; the tag of the
//!   ciphered service is the plain one's glo- counterpart (0xC0 GET-Request -> 0xC8, ...).
//! - HLS-GMAC (mechanism 5): f(challenge) = SC(0x10) || IC || GMAC(SC || AK || challenge).
//!
//! The tag is always verified, and [`ReplayGuard`] refuses an invocation counter that does not
//! grow. Key handling (storage, never logging) is the caller's.

use super::reader::write_axdr_length;
use super::{DecodeError, Reader};
use aes_gcm::aead::generic_array::typenum::U12;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes128;
use aes_gcm::AesGcm;
use std::fmt;

type Gcm = AesGcm<Aes128, U12, U12>;

pub const TAG_LEN: usize = 12;
pub const AUTHENTICATED: u8 = 0x10;
pub const ENCRYPTED: u8 = 0x20;

/// What protection an APDU gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    Authenticated,
    Encrypted,
    AuthenticatedEncrypted,
}

impl Protection {
    /// A security policy by the name the CLI and the meter configuration use: "none" (no
    /// ciphering: `Some(None)`), "auth", "enc" or "auth-enc"; `None` for any other name.
    pub fn from_policy(name: &str) -> Option<Option<Protection>> {
        Some(match name {
            "none" => None,
            "auth" => Some(Protection::Authenticated),
            "enc" => Some(Protection::Encrypted),
            "auth-enc" => Some(Protection::AuthenticatedEncrypted),
            _ => return None,
        })
    }

    pub fn control_byte(self) -> u8 {
        match self {
            Protection::Authenticated => AUTHENTICATED,
            Protection::Encrypted => ENCRYPTED,
            Protection::AuthenticatedEncrypted => AUTHENTICATED | ENCRYPTED,
        }
    }

    fn from_control(sc: u8) -> Result<Protection, SecurityError> {
        // Suites 0 and 1 cipher alike (AES-GCM-128, Green Book 9.2.3.4); suite 1 adds ECDH and
        // ECDSA, which this implementation does not do. Meters that label their
        // glo-ciphered pushes suite 1 (Kaifa MA309) are read like suite 0.
        if sc & 0x0F > 1 {
            return Err(SecurityError::UnsupportedSuite(sc & 0x0F));
        }
        match sc & 0x30 {
            AUTHENTICATED => Ok(Protection::Authenticated),
            ENCRYPTED => Ok(Protection::Encrypted),
            0x30 => Ok(Protection::AuthenticatedEncrypted),
            _ => Err(SecurityError::NotProtected),
        }
    }
}

/// Suite-0 keys. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct Keys {
    pub block_cipher: [u8; 16],
    pub authentication: [u8; 16],
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecurityError {
    Decode(DecodeError),
    /// The tag did not verify: wrong key, wrong system title, or tampered data.
    BadTag,
    /// The invocation counter did not grow: a replay, or a counter reset by the meter.
    Replay {
        last: u32,
        received: u32,
    },
    UnsupportedSuite(u8),
    /// Neither authentication nor encryption in the security control byte.
    NotProtected,
    /// The plain APDU tag has no ciphered counterpart here (or the tag is not a ciphered one).
    NoCipheredTag(u8),
    /// A ded- APDU, but no dedicated key was agreed in this association.
    NoDedicatedKey,
    /// A glo-/ded- APDU before the peer's system title is known (no AARQ/AARE title).
    NoSystemTitle,
    /// A general- APDU whose system title is not the peer's.
    ForeignSystemTitle,
    /// A system title that is not 8 bytes long.
    SystemTitleLength(usize),
    /// A glo-/ded- APDU whose deciphered content is another service than its tag names.
    ServiceMismatch {
        ciphered: u8,
        carried: Option<u8>,
    },
}

impl fmt::Display for SecurityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecurityError::Decode(e) => write!(f, "ciphered APDU: {e}"),
            SecurityError::BadTag => write!(
                f,
                "authentication tag mismatch (wrong keys or system title, or tampered data)"
            ),
            SecurityError::Replay { last, received } => {
                write!(
                    f,
                    "invocation counter {received} not above the last accepted {last} (replay?)"
                )
            }
            SecurityError::UnsupportedSuite(s) => {
                write!(f, "security suite {s} is not supported (only suite 0)")
            }
            SecurityError::NotProtected => {
                write!(f, "security control byte asks for no protection")
            }
            SecurityError::NoCipheredTag(t) => write!(f, "no ciphered form for APDU tag 0x{t:02X}"),
            SecurityError::NoDedicatedKey => {
                write!(
                    f,
                    "dedicated-key APDU, but no dedicated key in this association"
                )
            }
            SecurityError::NoSystemTitle => {
                write!(f, "ciphered APDU before the peer's system title is known")
            }
            SecurityError::ForeignSystemTitle => {
                write!(f, "general-ciphering APDU from another system title")
            }
            SecurityError::SystemTitleLength(n) => {
                write!(f, "system title of {n} bytes (8 expected)")
            }
            SecurityError::ServiceMismatch { ciphered, carried } => match carried {
                Some(c) => write!(
                    f,
                    "ciphered APDU 0x{ciphered:02X} holds an APDU of tag 0x{c:02X}, not the service its tag names"
                ),
                None => write!(f, "ciphered APDU 0x{ciphered:02X} holds nothing"),
            },
        }
    }
}

impl std::error::Error for SecurityError {}

impl From<DecodeError> for SecurityError {
    fn from(e: DecodeError) -> Self {
        SecurityError::Decode(e)
    }
}

fn iv(system_title: &[u8; 8], ic: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[..8].copy_from_slice(system_title);
    iv[8..].copy_from_slice(&ic.to_be_bytes());
    iv
}

/// `SC || IC || payload [|| tag]` for `plain`.
pub fn protect(
    keys: &Keys,
    system_title: &[u8; 8],
    ic: u32,
    protection: Protection,
    plain: &[u8],
) -> Vec<u8> {
    let sc = protection.control_byte();
    let cipher = Gcm::new(GenericArray::from_slice(&keys.block_cipher));
    let nonce = iv(system_title, ic);
    let nonce = GenericArray::from_slice(&nonce);
    let mut out = Vec::with_capacity(5 + plain.len() + TAG_LEN);
    out.push(sc);
    out.extend_from_slice(&ic.to_be_bytes());
    let mut aad = vec![sc];
    aad.extend_from_slice(&keys.authentication);
    let mut buf = plain.to_vec();
    match protection {
        Protection::AuthenticatedEncrypted => {
            // Encryption of a buffer cannot fail for sizes DLMS uses (< 64 GiB).
            let tag = cipher
                .encrypt_in_place_detached(nonce, &aad, &mut buf)
                .unwrap_or_default();
            out.extend_from_slice(&buf);
            out.extend_from_slice(&tag);
        }
        Protection::Authenticated => {
            aad.extend_from_slice(plain);
            let mut empty: [u8; 0] = [];
            let tag = cipher
                .encrypt_in_place_detached(nonce, &aad, &mut empty)
                .unwrap_or_default();
            out.extend_from_slice(plain);
            out.extend_from_slice(&tag);
        }
        Protection::Encrypted => {
            let _ = cipher.encrypt_in_place_detached(nonce, &[], &mut buf);
            out.extend_from_slice(&buf);
        }
    }
    out
}

/// The plaintext and invocation counter of `SC || IC || payload [|| tag]`, tag verified.
pub fn unprotect(
    keys: &Keys,
    system_title: &[u8; 8],
    data: &[u8],
) -> Result<(Vec<u8>, u32, Protection), SecurityError> {
    let mut r = Reader::new(data);
    let sc = r.u8()?;
    let ic = r.u32()?;
    let protection = Protection::from_control(sc)?;
    let rest = r.rest();
    let cipher = Gcm::new(GenericArray::from_slice(&keys.block_cipher));
    let nonce = iv(system_title, ic);
    let nonce = GenericArray::from_slice(&nonce);
    let mut aad = vec![sc];
    aad.extend_from_slice(&keys.authentication);
    let split = |rest: &[u8]| -> Result<(Vec<u8>, [u8; TAG_LEN]), SecurityError> {
        if rest.len() < TAG_LEN {
            return Err(DecodeError::Truncated {
                needed: TAG_LEN,
                available: rest.len(),
            }
            .into());
        }
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(tag);
        Ok((body.to_vec(), t))
    };
    let plain = match protection {
        Protection::AuthenticatedEncrypted => {
            let (mut body, tag) = split(rest)?;
            cipher
                .decrypt_in_place_detached(nonce, &aad, &mut body, GenericArray::from_slice(&tag))
                .map_err(|_| SecurityError::BadTag)?;
            body
        }
        Protection::Authenticated => {
            let (body, tag) = split(rest)?;
            aad.extend_from_slice(&body);
            let mut empty: [u8; 0] = [];
            cipher
                .decrypt_in_place_detached(nonce, &aad, &mut empty, GenericArray::from_slice(&tag))
                .map_err(|_| SecurityError::BadTag)?;
            body
        }
        Protection::Encrypted => {
            // CTR mode: decrypting is encrypting again (there is no tag to check).
            let mut body = rest.to_vec();
            let _ = cipher.encrypt_in_place_detached(nonce, &[], &mut body);
            body
        }
    };
    Ok((plain, ic, protection))
}

/// A key's check value: the first 8 bytes of AES-128(key, 0^128) (the usual KCV, longer).
/// Identifies a key (for per-key invocation counters, in logs) without revealing it.
pub fn key_check_value(key: &[u8; 16]) -> [u8; 8] {
    use aes_gcm::aes::cipher::{BlockEncrypt, KeyInit as _};
    let cipher = Aes128::new(GenericArray::from_slice(key));
    let mut block = GenericArray::from([0u8; 16]);
    cipher.encrypt_block(&mut block);
    let mut kcv = [0u8; 8];
    kcv.copy_from_slice(&block[..8]);
    kcv
}

/// HLS-GMAC f(challenge): `SC || IC || GMAC(SC || AK || challenge)` (Green Book 9.2.7.4).
pub fn gmac_response(keys: &Keys, system_title: &[u8; 8], ic: u32, challenge: &[u8]) -> Vec<u8> {
    let mut out = vec![AUTHENTICATED];
    out.extend_from_slice(&ic.to_be_bytes());
    out.extend_from_slice(&gmac_tag(keys, system_title, ic, challenge));
    out
}

fn gmac_tag(keys: &Keys, system_title: &[u8; 8], ic: u32, challenge: &[u8]) -> [u8; TAG_LEN] {
    let full = protect(keys, system_title, ic, Protection::Authenticated, challenge);
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(&full[full.len() - TAG_LEN..]);
    t
}

/// Checks the peer's f(challenge) (our challenge, the peer's system title).
pub fn verify_gmac_response(
    keys: &Keys,
    peer_title: &[u8; 8],
    challenge: &[u8],
    response: &[u8],
) -> Result<u32, SecurityError> {
    let mut r = Reader::new(response);
    let sc = r.u8()?;
    let ic = r.u32()?;
    let tag = r.bytes(TAG_LEN)?;
    r.finish()?;
    if sc != AUTHENTICATED {
        return Err(SecurityError::NotProtected);
    }
    // Compared in constant time: a comparison that stops at the first differing byte tells a
    // patient attacker, by its timing, how much of a forged tag is right.
    use subtle::ConstantTimeEq;
    if !bool::from(gmac_tag(keys, peer_title, ic, challenge).ct_eq(tag)) {
        return Err(SecurityError::BadTag);
    }
    Ok(ic)
}

/// The envelope of a ciphered APDU (Green Book 9.5 and 9.2.7.2.3): which key protects it and
/// whether the sender's system title travels with it.
///
/// - glo- / ded- APDUs: the service-specific ciphered tag (0xC8 glo-get-request, 0xD0
///   ded-get-request, ...); the system titles come from the AARQ/AARE.
/// - general-glo-ciphering (0xDB) / general-ded-ciphering (0xDC): any APDU, preceded by the
///   sender's system title; used once general-protection is negotiated (conformance bit 1).
///
/// "ded" means the dedicated key the client sent in its (ciphered) InitiateRequest; it replaces
/// the global block cipher key for the rest of that association, the authentication key stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    Global,
    Dedicated,
    GeneralGlobal,
    GeneralDedicated,
}

use crate::dlms::xdlms::ciphered::{classify, CipheredTag};
pub use crate::dlms::xdlms::ciphered::{
    ded_tag, glo_tag, GENERAL_DED_CIPHERING, GENERAL_GLO_CIPHERING,
};

impl Envelope {
    /// The envelope a client uses: general- once negotiated, ded- with a dedicated key.
    pub fn choose(general: bool, dedicated: bool) -> Envelope {
        match (general, dedicated) {
            (false, false) => Envelope::Global,
            (false, true) => Envelope::Dedicated,
            (true, false) => Envelope::GeneralGlobal,
            (true, true) => Envelope::GeneralDedicated,
        }
    }

    /// The envelope of a ciphered APDU, from its first byte (the one tag table decides).
    pub fn of_tag(tag: u8) -> Option<Envelope> {
        Some(match classify(tag)? {
            CipheredTag::Glo(_) => Envelope::Global,
            CipheredTag::Ded(_) => Envelope::Dedicated,
            CipheredTag::GeneralGlo => Envelope::GeneralGlobal,
            CipheredTag::GeneralDed => Envelope::GeneralDedicated,
        })
    }

    pub fn is_dedicated(self) -> bool {
        matches!(self, Envelope::Dedicated | Envelope::GeneralDedicated)
    }

    pub fn is_general(self) -> bool {
        matches!(self, Envelope::GeneralGlobal | Envelope::GeneralDedicated)
    }
}

/// The keys that protect one envelope: the dedicated key replaces the block cipher key.
fn envelope_keys(
    keys: &Keys,
    dedicated_key: Option<&[u8; 16]>,
    envelope: Envelope,
) -> Result<Keys, SecurityError> {
    if !envelope.is_dedicated() {
        return Ok(keys.clone());
    }
    let dedicated = dedicated_key.ok_or(SecurityError::NoDedicatedKey)?;
    Ok(Keys {
        block_cipher: *dedicated,
        authentication: keys.authentication,
    })
}

/// Wraps a plain APDU into a ciphered one of the given envelope. `system_title` is the
/// sender's (ours).
pub fn seal_apdu(
    keys: &Keys,
    dedicated_key: Option<&[u8; 16]>,
    envelope: Envelope,
    system_title: &[u8; 8],
    ic: u32,
    protection: Protection,
    plain: &[u8],
) -> Result<Vec<u8>, SecurityError> {
    let first = *plain.first().ok_or(DecodeError::Truncated {
        needed: 1,
        available: 0,
    })?;
    let key = envelope_keys(keys, dedicated_key, envelope)?;
    let body = protect(&key, system_title, ic, protection, plain);
    let mut out = Vec::with_capacity(body.len() + 16);
    match envelope {
        Envelope::Global => out.push(glo_tag(first).ok_or(SecurityError::NoCipheredTag(first))?),
        Envelope::Dedicated => out.push(ded_tag(first).ok_or(SecurityError::NoCipheredTag(first))?),
        Envelope::GeneralGlobal | Envelope::GeneralDedicated => {
            out.push(if envelope.is_dedicated() {
                GENERAL_DED_CIPHERING
            } else {
                GENERAL_GLO_CIPHERING
            });
            write_axdr_length(&mut out, system_title.len());
            out.extend_from_slice(system_title);
        }
    }
    write_axdr_length(&mut out, body.len());
    out.extend_from_slice(&body);
    Ok(out)
}

/// A deciphered APDU and what protected it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub plain: Vec<u8>,
    pub invocation_counter: u32,
    pub protection: Protection,
    pub envelope: Envelope,
}

/// Unwraps a ciphered APDU of any envelope, tag verified. `peer_title` is the sender's system
/// title as learnt from the association; a general- APDU carrying another title is refused
/// (Green Book 9.2.7.2.3: the originator's title is part of the IV, a foreign one means a
/// foreign sender).
pub fn open_apdu(
    keys: &Keys,
    dedicated_key: Option<&[u8; 16]>,
    peer_title: Option<&[u8; 8]>,
    apdu: &[u8],
) -> Result<Opened, SecurityError> {
    let mut r = Reader::new(apdu);
    let tag = r.u8()?;
    let envelope = Envelope::of_tag(tag).ok_or(SecurityError::NoCipheredTag(tag))?;
    let title: [u8; 8] = if envelope.is_general() {
        let len = r.axdr_length_bounded("system title")?;
        let carried = r.bytes(len)?;
        let carried =
            <[u8; 8]>::try_from(carried).map_err(|_| SecurityError::SystemTitleLength(len))?;
        match peer_title {
            Some(expected) if *expected != carried => {
                return Err(SecurityError::ForeignSystemTitle)
            }
            _ => carried,
        }
    } else {
        *peer_title.ok_or(SecurityError::NoSystemTitle)?
    };
    let len = r.axdr_length_bounded("ciphered APDU")?;
    let body = r.bytes(len)?;
    r.finish()?;
    let key = envelope_keys(keys, dedicated_key, envelope)?;
    let (plain, invocation_counter, protection) = unprotect(&key, &title, body)?;
    // A glo-/ded- tag names the service it carries (IEC 62056-5-3 clause 8): a glo-get-response
    // that holds anything but a get-response is not what the peer said it sent.
    if let Some(CipheredTag::Glo(expected) | CipheredTag::Ded(expected)) = classify(tag) {
        let carried = plain.first().copied();
        if carried != Some(expected) {
            return Err(SecurityError::ServiceMismatch {
                ciphered: tag,
                carried,
            });
        }
    }
    Ok(Opened {
        plain,
        invocation_counter,
        protection,
        envelope,
    })
}

/// Wraps a plain APDU into its glo- ciphered form.
pub fn cipher_apdu(
    keys: &Keys,
    system_title: &[u8; 8],
    ic: u32,
    protection: Protection,
    plain: &[u8],
) -> Result<Vec<u8>, SecurityError> {
    seal_apdu(
        keys,
        None,
        Envelope::Global,
        system_title,
        ic,
        protection,
        plain,
    )
}

/// Unwraps a glo- (or general-glo-) ciphered APDU: (plain APDU, invocation counter).
pub fn decipher_apdu(
    keys: &Keys,
    peer_title: &[u8; 8],
    apdu: &[u8],
) -> Result<(Vec<u8>, u32), SecurityError> {
    let opened = open_apdu(keys, None, Some(peer_title), apdu)?;
    Ok((opened.plain, opened.invocation_counter))
}

/// Refuses invocation counters that do not grow (per key and peer).
#[derive(Debug, Clone, Default)]
pub struct ReplayGuard {
    last: Option<u32>,
}

impl ReplayGuard {
    pub fn check(&mut self, ic: u32) -> Result<(), SecurityError> {
        match self.last {
            Some(last) if ic <= last => Err(SecurityError::Replay { last, received: ic }),
            _ => {
                self.last = Some(ic);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlms::test_util::hex;

    fn gurux_keys() -> (Keys, [u8; 8]) {
        let mut bc = [0u8; 16];
        bc.copy_from_slice(&hex("000102030405060708090A0B0C0D0E0F"));
        let mut ak = [0u8; 16];
        ak.copy_from_slice(&hex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"));
        let mut st = [0u8; 8];
        st.copy_from_slice(&hex("4D4D4D0000BC614E"));
        (
            Keys {
                block_cipher: bc,
                authentication: ak,
            },
            st,
        )
    }

    // The glo-initiate-request in gurux-dlms's HLS-GMAC AARQ (tests/vectors/independent.json,
    // wrapper_aarq_hls_gmac_ciphered): authenticated and encrypted, invocation counter 1.
    const GURUX_GLO_INITIATE: &str =
        "211F3000000001D061000A04EC615571C4CA5676A23CB02E0F3B43A1EE9C3B5C56";

    #[test]
    fn gurux_glo_initiate_request_deciphers_and_reciphers() {
        let (keys, st) = gurux_keys();
        let apdu = hex(GURUX_GLO_INITIATE);
        let (plain, ic) = decipher_apdu(&keys, &st, &apdu).unwrap();
        assert_eq!(ic, 1);
        let initiate = crate::dlms::xdlms::InitiateRequest::decode(&plain).unwrap();
        assert_eq!(initiate.proposed_dlms_version, 6);
        assert_eq!(
            cipher_apdu(&keys, &st, 1, Protection::AuthenticatedEncrypted, &plain).unwrap(),
            apdu
        );
    }

    #[test]
    fn wrong_key_tampering_and_replay_are_refused() {
        let (keys, st) = gurux_keys();
        let apdu = hex(GURUX_GLO_INITIATE);
        let mut other = keys.clone();
        other.block_cipher[0] ^= 1;
        assert_eq!(
            decipher_apdu(&other, &st, &apdu),
            Err(SecurityError::BadTag)
        );
        let mut wrong_ak = keys.clone();
        wrong_ak.authentication[15] ^= 1;
        assert_eq!(
            decipher_apdu(&wrong_ak, &st, &apdu),
            Err(SecurityError::BadTag)
        );
        for i in 7..apdu.len() {
            let mut t = apdu.clone();
            t[i] ^= 0x01;
            assert_eq!(
                decipher_apdu(&keys, &st, &t),
                Err(SecurityError::BadTag),
                "byte {i}"
            );
        }
        let mut guard = ReplayGuard::default();
        guard.check(5).unwrap();
        assert_eq!(
            guard.check(5),
            Err(SecurityError::Replay {
                last: 5,
                received: 5
            })
        );
        guard.check(6).unwrap();
        assert!(decipher_apdu(&keys, &st, &apdu[..10]).is_err());
    }

    #[test]
    fn every_protection_round_trips() {
        let (keys, st) = gurux_keys();
        let plain = hex("C001C100080000010000FF0200");
        for p in [
            Protection::Authenticated,
            Protection::Encrypted,
            Protection::AuthenticatedEncrypted,
        ] {
            let c = cipher_apdu(&keys, &st, 42, p, &plain).unwrap();
            assert_eq!(c[0], 0xC8);
            if p == Protection::Authenticated {
                assert!(
                    c.windows(plain.len()).any(|w| w == plain),
                    "authenticated-only travels in clear"
                );
            } else {
                assert!(!c.windows(plain.len()).any(|w| w == plain));
            }
            assert_eq!(decipher_apdu(&keys, &st, &c).unwrap(), (plain.clone(), 42));
        }
        assert_eq!(
            cipher_apdu(&keys, &st, 1, Protection::Encrypted, &[0x62, 0]),
            Err(SecurityError::NoCipheredTag(0x62))
        );
    }

    #[test]
    fn hls_gmac_challenge_response() {
        let (keys, client_title) = gurux_keys();
        let server_title = *b"SIMSIM01";
        let stoc = b"0123456789ABCDEF";
        let f = gmac_response(&keys, &client_title, 7, stoc);
        assert_eq!(f.len(), 5 + TAG_LEN);
        assert_eq!(&f[..5], &[0x10, 0, 0, 0, 7]);
        assert_eq!(verify_gmac_response(&keys, &client_title, stoc, &f), Ok(7));
        assert_eq!(
            verify_gmac_response(&keys, &server_title, stoc, &f),
            Err(SecurityError::BadTag)
        );
        assert_eq!(
            verify_gmac_response(&keys, &client_title, b"another challenge", &f),
            Err(SecurityError::BadTag)
        );
    }

    // Green Book (DLMS UA 1000-2), security examples for suite 0: the keys of gurux_keys(),
    // system title 4D4D4D0000BC614E, invocation counter 0x01234567, and the plain
    // get-request of the clock's time C0 01 00 | 0008 0000010000FF 02 | 00.
    const GB_PLAIN: &str = "C0010000080000010000FF0200";
    const GB_IC: u32 = 0x0123_4567;

    #[test]
    fn green_book_suite0_examples() {
        let (keys, st) = gurux_keys();
        let plain = hex(GB_PLAIN);
        // Authenticated and encrypted: SC 30, ciphertext, 12-byte tag.
        let auth_enc = hex("30012345674113 12FF935A47566827C467BC 7D825C3BE4A77C3FCC056B6B");
        assert_eq!(
            protect(
                &keys,
                &st,
                GB_IC,
                Protection::AuthenticatedEncrypted,
                &plain
            ),
            auth_enc
        );
        // Authenticated only: SC 10, the plaintext in clear, the tag.
        let auth = hex("1001234567C0010000080000010000FF020006725D910F9221D263877516");
        assert_eq!(
            protect(&keys, &st, GB_IC, Protection::Authenticated, &plain),
            auth
        );
        // Encrypted only: SC 20, the same ciphertext, no tag.
        let enc = hex("20012345674113 12FF935A47566827C467BC");
        assert_eq!(
            protect(&keys, &st, GB_IC, Protection::Encrypted, &plain),
            enc
        );
        for (bytes, p) in [
            (auth_enc, Protection::AuthenticatedEncrypted),
            (auth, Protection::Authenticated),
            (enc, Protection::Encrypted),
        ] {
            assert_eq!(unprotect(&keys, &st, &bytes), Ok((plain.clone(), GB_IC, p)));
        }
    }

    #[test]
    fn key_check_value_is_aes_of_zero() {
        // AES-128 of the zero block under key 00..0F, as computed by Python's `cryptography`.
        let key: [u8; 16] = hex("000102030405060708090A0B0C0D0E0F").try_into().unwrap();
        assert_eq!(key_check_value(&key).to_vec(), hex("C6A13B37878F5B82"));
    }

    #[test]
    fn green_book_hls_gmac_example() {
        // Green Book 9.2.7.4 example: CtoS "K56iVagY", StoC "P6wRJ21F"; the client's title
        // 4D4D4D0000000001 with IC 1, the meter's 4D4D4D0000BC614E with IC 0x01234567.
        let (keys, server_title) = gurux_keys();
        let client_title: [u8; 8] = hex("4D4D4D0000000001").try_into().unwrap();
        assert_eq!(
            gmac_response(&keys, &client_title, 1, b"P6wRJ21F"),
            hex("10000000011A52FE7DD3E72748973C1E28")
        );
        assert_eq!(
            gmac_response(&keys, &server_title, GB_IC, b"K56iVagY"),
            hex("1001234567FE1466AFB3DBCD4F9389E2B7")
        );
    }

    #[test]
    fn exceptions_have_no_service_specific_ciphered_form() {
        let (keys, st) = gurux_keys();
        // exception-response: state-error service-not-allowed, service-error operation-not-possible
        let exception = [0xD8, 0x01, 0x01];
        let sealed = |envelope| {
            seal_apdu(
                &keys,
                None,
                envelope,
                &st,
                3,
                Protection::AuthenticatedEncrypted,
                &exception,
            )
        };
        assert_eq!(
            sealed(Envelope::Global),
            Err(SecurityError::NoCipheredTag(0xD8))
        );
        let general = sealed(Envelope::GeneralGlobal).unwrap();
        assert_eq!(
            open_apdu(&keys, None, Some(&st), &general).unwrap().plain,
            exception
        );
    }

    #[test]
    fn a_ciphered_tag_must_name_the_service_it_carries() {
        let (keys, st) = gurux_keys();
        let set_response = [0xC5, 0x01, 0xC1, 0x00];
        let mut sealed = seal_apdu(
            &keys,
            None,
            Envelope::Global,
            &st,
            4,
            Protection::AuthenticatedEncrypted,
            &set_response,
        )
        .unwrap();
        assert_eq!(sealed[0], 0xCD);
        // The tag byte is outside the authenticated data: relabelled, it still deciphers.
        sealed[0] = 0xCC;
        assert_eq!(
            open_apdu(&keys, None, Some(&st), &sealed),
            Err(SecurityError::ServiceMismatch {
                ciphered: 0xCC,
                carried: Some(0xC5)
            })
        );
    }

    #[test]
    fn every_envelope_round_trips_and_keys_are_not_interchangeable() {
        let (keys, st) = gurux_keys();
        let dedicated = [0x5A; 16];
        let plain = hex(GB_PLAIN);
        for (envelope, first) in [
            (Envelope::Global, 0xC8),
            (Envelope::Dedicated, 0xD0),
            (Envelope::GeneralGlobal, 0xDB),
            (Envelope::GeneralDedicated, 0xDC),
        ] {
            let sealed = seal_apdu(
                &keys,
                Some(&dedicated),
                envelope,
                &st,
                9,
                Protection::AuthenticatedEncrypted,
                &plain,
            )
            .unwrap();
            assert_eq!(sealed[0], first);
            assert_eq!(Envelope::of_tag(first), Some(envelope));
            let opened = open_apdu(&keys, Some(&dedicated), Some(&st), &sealed).unwrap();
            assert_eq!(
                (opened.plain.clone(), opened.invocation_counter),
                (plain.clone(), 9)
            );
            assert_eq!(opened.envelope, envelope);
            if envelope.is_general() {
                // The title travels with the APDU, so none needs to be known...
                assert_eq!(
                    open_apdu(&keys, Some(&dedicated), None, &sealed),
                    Ok(opened)
                );
                // ...but another peer's title is refused.
                assert_eq!(
                    open_apdu(&keys, Some(&dedicated), Some(b"OTHERSYS"), &sealed),
                    Err(SecurityError::ForeignSystemTitle)
                );
            } else {
                assert_eq!(
                    open_apdu(&keys, Some(&dedicated), None, &sealed),
                    Err(SecurityError::NoSystemTitle)
                );
            }
            if envelope.is_dedicated() {
                assert_eq!(
                    open_apdu(&keys, None, Some(&st), &sealed),
                    Err(SecurityError::NoDedicatedKey)
                );
                assert_eq!(
                    open_apdu(&keys, Some(&[0x5B; 16]), Some(&st), &sealed),
                    Err(SecurityError::BadTag)
                );
            }
        }
        assert_eq!(
            seal_apdu(
                &keys,
                None,
                Envelope::Dedicated,
                &st,
                1,
                Protection::Authenticated,
                &plain
            ),
            Err(SecurityError::NoDedicatedKey)
        );
    }
}
