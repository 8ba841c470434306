//! The xDLMS conformance block (Green Book 9.4.6.1, "Conformance"): a 24-bit BIT STRING sent as
//! `5F 1F 04 00 b0 b1 b2` ([APPLICATION 31] IMPLICIT, 4 content bytes, 0 unused bits).
//! Bit n of the standard is mask `1 << (23 - n)` here.

use crate::dlms::{DecodeError, Reader};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conformance(pub u32);

/// (bit number, name) as in the Green Book.
const BITS: [(u8, &str); 23] = [
    (1, "general-protection"),
    (2, "general-block-transfer"),
    (3, "read"),
    (4, "write"),
    (5, "unconfirmed-write"),
    (6, "delta-value-encoding"),
    (7, "reserved-seven"),
    (8, "attribute0-supported-with-set"),
    (9, "priority-mgmt-supported"),
    (10, "attribute0-supported-with-get"),
    (11, "block-transfer-with-get-or-read"),
    (12, "block-transfer-with-set-or-write"),
    (13, "block-transfer-with-action"),
    (14, "multiple-references"),
    (15, "information-report"),
    (16, "data-notification"),
    (17, "access"),
    (18, "parameterized-access"),
    (19, "get"),
    (20, "set"),
    (21, "selective-access"),
    (22, "event-notification"),
    (23, "action"),
];

const fn bit(n: u8) -> u32 {
    1 << (23 - n)
}

impl Conformance {
    pub const GENERAL_PROTECTION: u32 = bit(1);
    pub const GENERAL_BLOCK_TRANSFER: u32 = bit(2);
    pub const ATTRIBUTE0_WITH_GET: u32 = bit(10);
    pub const BLOCK_TRANSFER_WITH_GET: u32 = bit(11);
    pub const BLOCK_TRANSFER_WITH_SET: u32 = bit(12);
    pub const BLOCK_TRANSFER_WITH_ACTION: u32 = bit(13);
    pub const MULTIPLE_REFERENCES: u32 = bit(14);
    pub const GET: u32 = bit(19);
    pub const SET: u32 = bit(20);
    pub const SELECTIVE_ACCESS: u32 = bit(21);
    pub const ACTION: u32 = bit(23);

    /// What a reading client proposes: get/set/action, selective access, multiple references
    /// and block transfer in every direction.
    pub const CLIENT_DEFAULT: Conformance = Conformance(
        Self::BLOCK_TRANSFER_WITH_GET
            | Self::BLOCK_TRANSFER_WITH_SET
            | Self::BLOCK_TRANSFER_WITH_ACTION
            | Self::MULTIPLE_REFERENCES
            | Self::GET
            | Self::SET
            | Self::SELECTIVE_ACCESS
            | Self::ACTION,
    );

    pub fn has(self, mask: u32) -> bool {
        self.0 & mask == mask
    }

    /// The bits both sides have.
    pub fn intersect(self, other: Conformance) -> Conformance {
        Conformance(self.0 & other.0)
    }

    /// Names of the bits set, for logs and `read --list-objects` diagnostics.
    pub fn names(self) -> Vec<&'static str> {
        BITS.iter()
            .filter(|(n, _)| self.0 & bit(*n) != 0)
            .map(|(_, name)| *name)
            .collect()
    }

    pub fn encode(self, out: &mut Vec<u8>) {
        let b = self.0.to_be_bytes();
        out.extend_from_slice(&[0x5F, 0x1F, 0x04, 0x00, b[1], b[2], b[3]]);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Conformance, DecodeError> {
        let tag = r.u16()?;
        if tag != 0x5F1F {
            return Err(DecodeError::UnknownTag {
                what: "conformance block",
                tag: (tag >> 8) as u8,
            });
        }
        let len = r.u8()?;
        if len != 4 {
            return Err(DecodeError::InvalidLength {
                what: "conformance block",
                length: u64::from(len),
            });
        }
        let _unused_bits = r.u8()?;
        let b = r.array::<3>()?;
        Ok(Conformance(u32::from_be_bytes([0, b[0], b[1], b[2]])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gurux_proposed_conformance() {
        // gurux-dlms proposes 0x401E5D (in its AARQ: 5F 1F 04 00 40 1E 5D).
        let c = Conformance::read(&mut Reader::new(&[
            0x5F, 0x1F, 0x04, 0x00, 0x40, 0x1E, 0x5D,
        ]))
        .unwrap();
        assert_eq!(c, Conformance(0x40_1E5D));
        assert!(c.has(Conformance::MULTIPLE_REFERENCES | Conformance::GET));
        assert!(c.has(Conformance::BLOCK_TRANSFER_WITH_GET));
        assert!(!c.has(Conformance::ATTRIBUTE0_WITH_GET));
        assert_eq!(
            c.names(),
            [
                "general-protection",
                "block-transfer-with-get-or-read",
                "block-transfer-with-set-or-write",
                "block-transfer-with-action",
                "multiple-references",
                "access",
                "get",
                "set",
                "selective-access",
                "action"
            ]
        );
        let mut out = Vec::new();
        c.encode(&mut out);
        assert_eq!(out, [0x5F, 0x1F, 0x04, 0x00, 0x40, 0x1E, 0x5D]);
    }

    #[test]
    fn malformed() {
        assert!(Conformance::read(&mut Reader::new(&[0x5F, 0x1E, 4, 0, 0, 0, 0])).is_err());
        assert!(Conformance::read(&mut Reader::new(&[0x5F, 0x1F, 3, 0, 0, 0])).is_err());
        assert!(Conformance::read(&mut Reader::new(&[0x5F, 0x1F, 4, 0, 0])).is_err());
    }
}
