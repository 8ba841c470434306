//! The one table of ciphered APDU tags: which plain xDLMS APDU each glo- and ded- tag carries
//! (IEC 62056-5-3 Ed. 3 clause 8, the COSEMpdu ASN.1 module; Green Book DLMS UA 1000-2 Ed. 10
//! 9.5), and the general-glo/ded-ciphering envelopes (Green Book 9.2.7.2.4.5). Sealing,
//! opening, the APDU dispatcher and the session all ask this table, so they cannot disagree
//! about what is ciphered: an exception-response, for one, has no glo- or ded- form (it travels
//! plain, or inside general-glo-ciphering).

/// The general-glo-ciphering APDU tag [219].
pub const GENERAL_GLO_CIPHERING: u8 = 0xDB;
/// The general-ded-ciphering APDU tag [220].
pub const GENERAL_DED_CIPHERING: u8 = 0xDC;

/// One plain APDU and its service-specific ciphered forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipheredForms {
    pub plain: u8,
    /// glo- form: ciphered with the global unicast (block cipher) key.
    pub glo: u8,
    /// ded- form: ciphered with the dedicated key of the association.
    pub ded: Option<u8>,
    pub name: &'static str,
}

const fn forms(plain: u8, glo: u8, ded: Option<u8>, name: &'static str) -> CipheredForms {
    CipheredForms {
        plain,
        glo,
        ded,
        name,
    }
}

/// Every service-specific ciphered tag of the COSEMpdu module, with the plain tag it carries.
/// The initiate request/response have a ded- form only for the request (the dedicated key is
/// agreed in it; IEC 62056-5-3 9.2.2.3), the response is glo- ciphered.
pub const TABLE: &[CipheredForms] = &[
    forms(0x01, 0x21, Some(0x41), "initiateRequest"),
    forms(0x05, 0x25, Some(0x45), "readRequest"),
    forms(0x06, 0x26, Some(0x46), "writeRequest"),
    forms(0x08, 0x28, Some(0x48), "initiateResponse"),
    forms(0x0C, 0x2C, Some(0x4C), "readResponse"),
    forms(0x0D, 0x2D, Some(0x4D), "writeResponse"),
    forms(0x0E, 0x2E, Some(0x4E), "confirmedServiceError"),
    forms(0x16, 0x36, Some(0x56), "unconfirmedWriteRequest"),
    forms(0x18, 0x38, Some(0x58), "informationReportRequest"),
    forms(0xC0, 0xC8, Some(0xD0), "get-request"),
    forms(0xC1, 0xC9, Some(0xD1), "set-request"),
    forms(0xC2, 0xCA, Some(0xD2), "event-notification-request"),
    forms(0xC3, 0xCB, Some(0xD3), "action-request"),
    forms(0xC4, 0xCC, Some(0xD4), "get-response"),
    forms(0xC5, 0xCD, Some(0xD5), "set-response"),
    forms(0xC7, 0xCF, Some(0xD7), "action-response"),
];

/// How a ciphered APDU is wrapped, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipheredTag {
    /// A glo- APDU carrying the plain APDU of this tag.
    Glo(u8),
    /// A ded- APDU carrying the plain APDU of this tag.
    Ded(u8),
    GeneralGlo,
    GeneralDed,
}

/// What a first byte says about ciphering; `None` for every plain (or unknown) tag.
pub fn classify(tag: u8) -> Option<CipheredTag> {
    match tag {
        GENERAL_GLO_CIPHERING => return Some(CipheredTag::GeneralGlo),
        GENERAL_DED_CIPHERING => return Some(CipheredTag::GeneralDed),
        _ => {}
    }
    TABLE.iter().find_map(|f| {
        if f.glo == tag {
            Some(CipheredTag::Glo(f.plain))
        } else if f.ded == Some(tag) {
            Some(CipheredTag::Ded(f.plain))
        } else {
            None
        }
    })
}

/// Whether an APDU with this first byte is ciphered (and goes to the security layer).
pub fn is_ciphered_tag(tag: u8) -> bool {
    classify(tag).is_some()
}

/// The glo- tag of a plain APDU tag.
pub fn glo_tag(plain: u8) -> Option<u8> {
    TABLE.iter().find(|f| f.plain == plain).map(|f| f.glo)
}

/// The ded- tag of a plain APDU tag.
pub fn ded_tag(plain: u8) -> Option<u8> {
    TABLE.iter().find(|f| f.plain == plain).and_then(|f| f.ded)
}

/// The name of a plain APDU tag that has ciphered forms (for messages and decoders).
pub fn name_of(plain: u8) -> Option<&'static str> {
    TABLE.iter().find(|f| f.plain == plain).map(|f| f.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_is_in_one_place_only() {
        let mut seen = std::collections::BTreeSet::new();
        for f in TABLE {
            for t in [Some(f.plain), Some(f.glo), f.ded].into_iter().flatten() {
                assert!(seen.insert(t), "tag 0x{t:02X} appears twice");
            }
        }
        assert!(!seen.contains(&GENERAL_GLO_CIPHERING) && !seen.contains(&GENERAL_DED_CIPHERING));
    }

    #[test]
    fn the_dispatcher_the_sealer_and_the_opener_agree() {
        for t in 0..=255u8 {
            match classify(t) {
                Some(CipheredTag::Glo(p)) => assert_eq!(glo_tag(p), Some(t)),
                Some(CipheredTag::Ded(p)) => assert_eq!(ded_tag(p), Some(t)),
                Some(_) => assert!(t == 0xDB || t == 0xDC),
                None => {
                    assert!(glo_tag(t).is_none() || TABLE.iter().any(|f| f.plain == t));
                }
            }
        }
        // IEC 62056-5-3 tags that real meters send (Gurux's Command enum agrees).
        assert_eq!(classify(0xCC), Some(CipheredTag::Glo(0xC4)));
        assert_eq!(classify(0xD4), Some(CipheredTag::Ded(0xC4)));
        assert_eq!(classify(0x28), Some(CipheredTag::Glo(0x08)));
        assert_eq!(classify(0x2E), Some(CipheredTag::Glo(0x0E)));
        // An exception-response has no ciphered form: 0xDE is no APDU of the standard.
        assert_eq!(classify(0xDE), None);
        assert_eq!(glo_tag(0xD8), None);
        assert!(!is_ciphered_tag(0xD8) && !is_ciphered_tag(0xE0) && !is_ciphered_tag(0x0F));
    }
}
