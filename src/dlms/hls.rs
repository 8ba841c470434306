//! HLS authentication by hashing (IEC 62056-5-3 / Green Book DLMS UA 1000-2 Ed. 10, 9.2.7.4,
//! table "HLS authentication mechanisms"): the processed challenges each side proves it knows
//! the shared HLS secret with, sent in pass 3 (client: f(StoC), by the Association LN method
//! reply_to_HLS_authentication) and pass 4 (server: f(CtoS), returned by that method).
//!
//! - mechanism 3, HLS MD5:     f(X) = MD5(X || secret)
//! - mechanism 4, HLS SHA-1:   f(X) = SHA-1(X || secret)
//! - mechanism 6, HLS SHA-256: f(StoC) = SHA-256(secret || SystemTitle-C || SystemTitle-S ||
//!   StoC || CtoS), and f(CtoS) = SHA-256(secret || SystemTitle-S || SystemTitle-C || CtoS ||
//!   StoC): both titles and both challenges are bound into each proof.
//!
//! HLS-GMAC (mechanism 5) lives in `security`, as it uses the ciphering keys.

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The hash-based HLS mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HlsHash {
    Md5,
    Sha1,
    Sha256,
}

/// What the processing of one challenge needs; titles only matter to SHA-256.
#[derive(Clone, Copy)]
pub struct HlsParties<'a> {
    pub secret: &'a [u8],
    pub client_title: &'a [u8; 8],
    pub server_title: &'a [u8; 8],
    /// Client-to-server challenge (sent in the AARQ).
    pub ctos: &'a [u8],
    /// Server-to-client challenge (received in the AARE).
    pub stoc: &'a [u8],
}

fn digest<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
    let mut d = D::new();
    for p in parts {
        d.update(p);
    }
    d.finalize().to_vec()
}

fn hash(mechanism: HlsHash, parts: &[&[u8]]) -> Vec<u8> {
    match mechanism {
        HlsHash::Md5 => digest::<Md5>(parts),
        HlsHash::Sha1 => digest::<Sha1>(parts),
        HlsHash::Sha256 => digest::<Sha256>(parts),
    }
}

/// The client's pass 3: f(StoC).
pub fn client_proof(mechanism: HlsHash, p: &HlsParties<'_>) -> Vec<u8> {
    match mechanism {
        HlsHash::Sha256 => hash(
            mechanism,
            &[p.secret, p.client_title, p.server_title, p.stoc, p.ctos],
        ),
        _ => hash(mechanism, &[p.stoc, p.secret]),
    }
}

/// The server's pass 4: f(CtoS).
pub fn server_proof(mechanism: HlsHash, p: &HlsParties<'_>) -> Vec<u8> {
    match mechanism {
        HlsHash::Sha256 => hash(
            mechanism,
            &[p.secret, p.server_title, p.client_title, p.ctos, p.stoc],
        ),
        _ => hash(mechanism, &[p.ctos, p.secret]),
    }
}

/// Whether the meter's pass 4 proves it knows the secret (compared in constant time).
pub fn verify_server_proof(mechanism: HlsHash, p: &HlsParties<'_>, received: &[u8]) -> bool {
    bool::from(server_proof(mechanism, p).as_slice().ct_eq(received))
}

/// Whether a client's pass 3 is right (the simulated meter's side).
pub fn verify_client_proof(mechanism: HlsHash, p: &HlsParties<'_>, received: &[u8]) -> bool {
    bool::from(client_proof(mechanism, p).as_slice().ct_eq(received))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;

    // Made with Python's hashlib, following the Green Book formulas as the Gurux library
    // applies them (gurux_dlms 1.0.203, GXSecure.secure and GXDLMSClient.getApplicationAssociationRequest):
    //   secret = b"Gurux", CtoS = bytes(range(16)), StoC = bytes(range(16, 32)),
    //   ST-C = b"GRX12345", ST-S = b"SIMMETER"
    //   md5(StoC + secret), sha1(StoC + secret), sha256(secret + STC + STS + StoC + CtoS), ...
    const CTOS: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
    const STOC: [u8; 16] = [
        16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    ];

    fn parties() -> HlsParties<'static> {
        HlsParties {
            secret: b"Gurux",
            client_title: b"GRX12345",
            server_title: b"SIMMETER",
            ctos: &CTOS,
            stoc: &STOC,
        }
    }

    #[test]
    fn proofs_match_hashlib() {
        let p = parties();
        for (mechanism, client, server) in VECTORS {
            assert_eq!(
                hex::encode(&client_proof(*mechanism, &p)).to_lowercase(),
                *client,
                "{mechanism:?}"
            );
            assert_eq!(
                hex::encode(&server_proof(*mechanism, &p)).to_lowercase(),
                *server,
                "{mechanism:?}"
            );
            assert!(verify_server_proof(
                *mechanism,
                &p,
                &hex::parse(server).unwrap()
            ));
            assert!(verify_client_proof(
                *mechanism,
                &p,
                &hex::parse(client).unwrap()
            ));
            let mut wrong = hex::parse(server).unwrap();
            wrong[0] ^= 1;
            assert!(!verify_server_proof(*mechanism, &p, &wrong));
            assert!(!verify_server_proof(*mechanism, &p, &wrong[1..]));
        }
    }

    const VECTORS: &[(HlsHash, &str, &str)] = &[
        (
            HlsHash::Md5,
            "79a52a24f5c6385d5401b5e1deed566c",
            "17a9ee6dd45e6d9a687e29ff3a12e96c",
        ),
        (
            HlsHash::Sha1,
            "59950e69a497d52f25f7904315c8319280b40477",
            "7be86e8e5c00357ddc8d51c2ac92899cdca21beb",
        ),
        (
            HlsHash::Sha256,
            "888be6ca89b21614d2221ab380f78e6a3eba346a3f3023d9cfa3b5acb5f7f852",
            "1d3154c1f48d5006c54cc3c2765571d5bb3dfd1a14f421fd7d62d7b67ab06f89",
        ),
    ];
}
