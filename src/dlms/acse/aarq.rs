//! AARQ, the association request (Green Book 9.4.2.2, Table "AARQ").
//!
//! ```text
//! 60 len
//!   A1 application-context-name
//!   A6 calling-AP-title (client system title; ciphered contexts and HLS)
//!   8A sender-acse-requirements (07 80 = authentication; with a mechanism only)
//!   8B mechanism-name
//!   AC calling-authentication-value (password for LLS, challenge CtoS for HLS)
//!   BE user-information (xDLMS InitiateRequest, plain or glo-ciphered)
//! ```

use super::names::{self, ApplicationContext, Mechanism};
use super::{
    read_ap_title, read_authentication_value, read_user_information, write_ap_title,
    write_authentication_value, write_user_information, AARQ_TAG, ACSE_REQUIREMENTS_AUTH,
};
use crate::dlms::{ber, DecodeError, Reader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aarq {
    pub application_context: ApplicationContext,
    pub calling_ap_title: Option<Vec<u8>>,
    pub mechanism: Option<Mechanism>,
    pub calling_authentication_value: Option<Vec<u8>>,
    /// The encoded xDLMS InitiateRequest (or its ciphered form).
    pub user_information: Option<Vec<u8>>,
}

impl Aarq {
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64);
        names::write_context(&mut body, self.application_context);
        if let Some(title) = &self.calling_ap_title {
            write_ap_title(&mut body, 0xA6, title);
        }
        if let Some(m) = self.mechanism {
            ber::write_tlv(&mut body, 0x8A, &ACSE_REQUIREMENTS_AUTH);
            names::write_mechanism(&mut body, 0x8B, m);
        }
        if let Some(value) = &self.calling_authentication_value {
            write_authentication_value(&mut body, 0xAC, value);
        }
        if let Some(ui) = &self.user_information {
            write_user_information(&mut body, 0xBE, ui);
        }
        let mut out = Vec::with_capacity(body.len() + 3);
        ber::write_tlv(&mut out, AARQ_TAG, &body);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Aarq, DecodeError> {
        let mut outer = Reader::new(bytes);
        let body = ber::expect_tlv(&mut outer, AARQ_TAG, "AARQ")?;
        outer.finish()?;
        let mut r = Reader::new(body);
        let mut aarq = Aarq {
            application_context: ApplicationContext::Unknown(0),
            calling_ap_title: None,
            mechanism: None,
            calling_authentication_value: None,
            user_information: None,
        };
        let mut have_context = false;
        while !r.is_empty() {
            let (tag, content) = ber::read_tlv(&mut r)?;
            match tag {
                0xA1 => {
                    aarq.application_context = names::read_context(content)?;
                    have_context = true;
                }
                0xA6 => aarq.calling_ap_title = Some(read_ap_title(content)?),
                0x8B => aarq.mechanism = Some(names::read_mechanism(content)?),
                0xAC => {
                    aarq.calling_authentication_value = Some(read_authentication_value(content)?)
                }
                0xBE => aarq.user_information = Some(read_user_information(content)?),
                // protocol-version, AE qualifiers, invocation ids, acse-requirements,
                // implementation-information: carried but not needed.
                _ => {}
            }
        }
        if !have_context {
            return Err(DecodeError::InvalidValue {
                what: "AARQ without application-context-name",
                value: 0,
            });
        }
        Ok(aarq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlms::test_util::hex;

    #[test]
    fn gurux_no_authentication_aarq() {
        // AARQ from gurux-dlms (LN, no authentication, conformance 0x401E5D, PDU 0xFFFF).
        let bytes = hex("601DA109060760857405080101BE10040E01000000065F1F0400401E5DFFFF");
        let aarq = Aarq::decode(&bytes).unwrap();
        assert_eq!(aarq.application_context, ApplicationContext::LogicalName);
        assert_eq!(aarq.mechanism, None);
        assert_eq!(
            aarq.user_information.as_deref(),
            Some(&hex("01000000065F1F0400401E5DFFFF")[..])
        );
        assert_eq!(aarq.encode(), bytes);
    }

    #[test]
    fn green_book_lls_example() {
        // The Green Book's AARQ example with LLS: password "12345678", proposed conformance
        // 0x007E1F, client max receive PDU size 0x04B0.
        let bytes = hex("6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738BE10040E01000000065F1F0400007E1F04B0");
        let aarq = Aarq::decode(&bytes).unwrap();
        assert_eq!(aarq.mechanism, Some(Mechanism::Low));
        assert_eq!(
            aarq.calling_authentication_value.as_deref(),
            Some(&b"12345678"[..])
        );
        let initiate =
            crate::dlms::xdlms::InitiateRequest::decode(aarq.user_information.as_deref().unwrap())
                .unwrap();
        assert_eq!(initiate.proposed_conformance.0, 0x00_7E1F);
        assert_eq!(initiate.client_max_receive_pdu_size, 0x04B0);
        assert_eq!(aarq.encode(), bytes);
    }

    #[test]
    fn low_level_security_round_trip() {
        let aarq = Aarq {
            application_context: ApplicationContext::LogicalName,
            calling_ap_title: None,
            mechanism: Some(Mechanism::Low),
            calling_authentication_value: Some(b"12345678".to_vec()),
            user_information: Some(vec![1, 0, 0, 0, 6]),
        };
        let bytes = aarq.encode();
        // 8A 02 07 80 | 8B 07 60 85 74 05 08 02 01 | AC 0A 80 08 '12345678'
        let needle = hex("8A0207808B0760857405080201AC0A80083132333435363738");
        assert!(bytes.windows(needle.len()).any(|w| w == needle));
        assert_eq!(Aarq::decode(&bytes).unwrap(), aarq);
    }

    #[test]
    fn malformed() {
        let bytes = hex("601DA109060760857405080101BE10040E01000000065F1F0400401E5DFFFF");
        for cut in 0..bytes.len() {
            assert!(Aarq::decode(&bytes[..cut]).is_err());
        }
        assert!(Aarq::decode(&hex("6000")).is_err());
        assert!(Aarq::decode(&hex("6103A10100")).is_err());
    }
}
