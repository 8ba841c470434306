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
    pub fn control_byte(self) -> u8 {
        match self {
            Protection::Authenticated => AUTHENTICATED,
            Protection::Encrypted => ENCRYPTED,
            Protection::AuthenticatedEncrypted => AUTHENTICATED | ENCRYPTED,
        }
    }

    fn from_control(sc: u8) -> Result<Protection, SecurityError> {
        if sc & 0x0F != 0 {
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
    /// The plain APDU tag has no glo- ciphered counterpart here.
    NoCipheredTag(u8),
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
    if gmac_tag(keys, peer_title, ic, challenge) != tag {
        return Err(SecurityError::BadTag);
    }
    Ok(ic)
}

/// The glo- ciphered tag of a plain APDU tag (Green Book 9.5, "glo-" APDUs).
pub fn glo_tag(plain_tag: u8) -> Option<u8> {
    Some(match plain_tag {
        0x01 => 0x21, // initiateRequest -> glo-initiateRequest
        0x08 => 0x28, // initiateResponse
        0xC0 => 0xC8, // get-request
        0xC1 => 0xC9, // set-request
        0xC3 => 0xCB, // action-request
        0xC4 => 0xCC, // get-response
        0xC5 => 0xCD, // set-response
        0xC7 => 0xCF, // action-response
        0xD8 => 0xDE, // exception-response
        _ => return None,
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
    let first = *plain.first().ok_or(DecodeError::Truncated {
        needed: 1,
        available: 0,
    })?;
    let tag = glo_tag(first).ok_or(SecurityError::NoCipheredTag(first))?;
    let body = protect(keys, system_title, ic, protection, plain);
    let mut out = vec![tag];
    write_axdr_length(&mut out, body.len());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Unwraps a glo- ciphered APDU: (plain APDU, invocation counter).
pub fn decipher_apdu(
    keys: &Keys,
    peer_title: &[u8; 8],
    apdu: &[u8],
) -> Result<(Vec<u8>, u32), SecurityError> {
    let mut r = Reader::new(apdu);
    let _tag = r.u8()?;
    let len = r.axdr_length_bounded("ciphered APDU")?;
    let body = r.bytes(len)?;
    r.finish()?;
    let (plain, ic, _) = unprotect(keys, peer_title, body)?;
    Ok((plain, ic))
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
}
