//! What differs in an SN association (Green Book 9.4.2.2.2 application context names,
//! 9.4.6.1 conformance; Blue Book 4.4.4 Association SN).

use crate::dlms::acse::{ApplicationContext, AssociationRejected, ResultSourceDiagnostic};
use crate::dlms::xdlms::Conformance;

/// vaa-name an SN meter returns in its InitiateResponse: the base name of Association SN
/// (Green Book 9.4.6.1; LN meters return 0x0007).
pub const VAA_NAME_SN: u16 = super::names::CURRENT_ASSOCIATION_BASE;

const fn bit(n: u8) -> u32 {
    1 << (23 - n)
}

/// The SN services a reading client proposes (Green Book 9.4.6.1 bit numbers): read (3),
/// write (4), unconfirmed-write (5), block-transfer-with-get-or-read (11),
/// block-transfer-with-set-or-write (12), multiple-references (14), information-report (15),
/// parameterized-access (18). Gurux's SN client proposes the same without the block bits.
pub const SN_CONFORMANCE: Conformance =
    Conformance(bit(3) | bit(4) | bit(5) | bit(11) | bit(12) | bit(14) | bit(15) | bit(18));

pub const READ: u32 = bit(3);
pub const WRITE: u32 = bit(4);
pub const PARAMETERIZED_ACCESS: u32 = bit(18);

/// The application context name of SN referencing, plain or ciphered
/// (2.16.756.5.8.1.2 / 2.16.756.5.8.1.4).
pub fn context(ciphered: bool) -> ApplicationContext {
    if ciphered {
        ApplicationContext::ShortNameCiphered
    } else {
        ApplicationContext::ShortName
    }
}

/// A meter that refuses an association because it does not speak the proposed application
/// context (acse-service-user diagnostic 2, "application-context-name-not-supported"): the
/// cue for `referencing auto` to try the other referencing.
pub fn is_context_rejection(rejected: &AssociationRejected) -> bool {
    rejected.diagnostic == ResultSourceDiagnostic::User(2)
}

/// How a client addresses a meter's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Referencing {
    /// Logical names (class, OBIS, attribute): GET/SET/ACTION.
    Ln,
    /// Short names: Read/Write through Association SN's object list.
    Sn,
    /// LN first; SN when the meter rejects the LN context (diagnostic 2) or does not answer
    /// the LN AARQ.
    #[default]
    Auto,
}

impl Referencing {
    pub fn name(self) -> &'static str {
        match self {
            Referencing::Ln => "ln",
            Referencing::Sn => "sn",
            Referencing::Auto => "auto",
        }
    }

    pub fn parse(s: &str) -> Option<Referencing> {
        Some(match s {
            "ln" => Referencing::Ln,
            "sn" => Referencing::Sn,
            "auto" => Referencing::Auto,
            _ => return None,
        })
    }
}
