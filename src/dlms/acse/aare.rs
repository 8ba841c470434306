//! AARE, the association response (Green Book 9.4.2.2, Table "AARE").
//!
//! ```text
//! 61 len
//!   A1 application-context-name
//!   A2 03 02 01 rr                 result: 0 accepted, 1 rejected-permanent, 2 rejected-transient
//!   A3 05 A1|A2 03 02 01 dd        result-source-diagnostic: acse-service-user | -provider
//!   A4 responding-AP-title         (server system title)
//!   88 responder-acse-requirements
//!   89 mechanism-name
//!   AA responding-authentication-value (challenge StoC for HLS)
//!   BE user-information            (InitiateResponse, or ConfirmedServiceError on rejection)
//! ```

use super::names::{self, ApplicationContext, Mechanism};
use super::{
    read_ap_title, read_authentication_value, read_user_information, write_ap_title,
    write_authentication_value, write_user_information, AARE_TAG, ACSE_REQUIREMENTS_AUTH,
};
use crate::dlms::xdlms::ConfirmedServiceError;
use crate::dlms::{ber, DecodeError, Reader};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssociationResult {
    Accepted,
    RejectedPermanent,
    RejectedTransient,
    Unknown(u8),
}

impl AssociationResult {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => AssociationResult::Accepted,
            1 => AssociationResult::RejectedPermanent,
            2 => AssociationResult::RejectedTransient,
            o => AssociationResult::Unknown(o),
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            AssociationResult::Accepted => 0,
            AssociationResult::RejectedPermanent => 1,
            AssociationResult::RejectedTransient => 2,
            AssociationResult::Unknown(o) => o,
        }
    }
}

/// Who diagnosed the result, and the code (Green Book 9.4.2.2, "Associate-source-diagnostic").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultSourceDiagnostic {
    User(u8),
    Provider(u8),
}

impl fmt::Display for ResultSourceDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ResultSourceDiagnostic::User(code) => {
                let text = match code {
                    0 => "null",
                    1 => "no reason given",
                    2 => "application context name not supported",
                    3 => "calling AP title not recognized",
                    4 => "calling AP invocation identifier not recognized",
                    5 => "calling AE qualifier not recognized",
                    6 => "calling AE invocation identifier not recognized",
                    7 => "called AP title not recognized",
                    8 => "called AP invocation identifier not recognized",
                    9 => "called AE qualifier not recognized",
                    10 => "called AE invocation identifier not recognized",
                    11 => "authentication mechanism name not recognised",
                    12 => "authentication mechanism name required",
                    13 => "authentication failure (wrong password or key)",
                    14 => "authentication required",
                    _ => return write!(f, "acse-service-user diagnostic {code}"),
                };
                write!(f, "{text} (acse-service-user {code})")
            }
            ResultSourceDiagnostic::Provider(code) => {
                let text = match code {
                    0 => "null",
                    1 => "no reason given",
                    2 => "no common acse version",
                    _ => return write!(f, "acse-service-provider diagnostic {code}"),
                };
                write!(f, "{text} (acse-service-provider {code})")
            }
        }
    }
}

/// A refused association, with everything the meter said about why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationRejected {
    pub result: AssociationResult,
    pub diagnostic: ResultSourceDiagnostic,
    /// The xDLMS reason, when the meter put a ConfirmedServiceError in user-information.
    pub service_error: Option<ConfirmedServiceError>,
}

impl fmt::Display for AssociationRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.result {
            AssociationResult::RejectedPermanent => "permanently",
            AssociationResult::RejectedTransient => "transiently",
            _ => "with an unknown result",
        };
        write!(f, "association rejected {kind}: {}", self.diagnostic)?;
        if let Some(e) = &self.service_error {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AssociationRejected {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aare {
    pub application_context: ApplicationContext,
    pub result: AssociationResult,
    pub diagnostic: ResultSourceDiagnostic,
    pub responding_ap_title: Option<Vec<u8>>,
    pub mechanism: Option<Mechanism>,
    pub responding_authentication_value: Option<Vec<u8>>,
    /// The encoded xDLMS InitiateResponse, its ciphered form, or a ConfirmedServiceError.
    pub user_information: Option<Vec<u8>>,
}

impl Aare {
    /// `Ok` if the association was accepted, else the reasons in one error.
    pub fn check(&self) -> Result<(), AssociationRejected> {
        if self.result == AssociationResult::Accepted {
            return Ok(());
        }
        let service_error = self
            .user_information
            .as_deref()
            .and_then(|ui| ConfirmedServiceError::decode(ui).ok());
        Err(AssociationRejected {
            result: self.result,
            diagnostic: self.diagnostic,
            service_error,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(64);
        names::write_context(&mut body, self.application_context);
        ber::write_tlv(&mut body, 0xA2, &[0x02, 0x01, self.result.to_u8()]);
        let (choice, code) = match self.diagnostic {
            ResultSourceDiagnostic::User(c) => (0xA1, c),
            ResultSourceDiagnostic::Provider(c) => (0xA2, c),
        };
        ber::write_tlv(&mut body, 0xA3, &[choice, 0x03, 0x02, 0x01, code]);
        if let Some(title) = &self.responding_ap_title {
            write_ap_title(&mut body, 0xA4, title);
        }
        if let Some(m) = self.mechanism {
            ber::write_tlv(&mut body, 0x88, &ACSE_REQUIREMENTS_AUTH);
            names::write_mechanism(&mut body, 0x89, m);
        }
        if let Some(v) = &self.responding_authentication_value {
            write_authentication_value(&mut body, 0xAA, v);
        }
        if let Some(ui) = &self.user_information {
            write_user_information(&mut body, 0xBE, ui);
        }
        let mut out = Vec::with_capacity(body.len() + 3);
        ber::write_tlv(&mut out, AARE_TAG, &body);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Aare, DecodeError> {
        let mut outer = Reader::new(bytes);
        let body = ber::expect_tlv(&mut outer, AARE_TAG, "AARE")?;
        outer.finish()?;
        let mut r = Reader::new(body);
        let mut context = None;
        let mut result = None;
        let mut diagnostic = None;
        let mut aare = Aare {
            application_context: ApplicationContext::Unknown(0),
            result: AssociationResult::Unknown(0xFF),
            diagnostic: ResultSourceDiagnostic::User(0),
            responding_ap_title: None,
            mechanism: None,
            responding_authentication_value: None,
            user_information: None,
        };
        while !r.is_empty() {
            let (tag, content) = ber::read_tlv(&mut r)?;
            match tag {
                0xA1 => context = Some(names::read_context(content)?),
                0xA2 => {
                    let mut c = Reader::new(content);
                    let int = ber::expect_tlv(&mut c, 0x02, "AARE result INTEGER")?;
                    c.finish()?;
                    let v = ber::decode_small_integer(int, "AARE result")?;
                    result = Some(AssociationResult::from_u8(v.min(255) as u8));
                }
                0xA3 => {
                    let mut c = Reader::new(content);
                    let (choice, inner) = ber::read_tlv(&mut c)?;
                    c.finish()?;
                    let mut i = Reader::new(inner);
                    let int = ber::expect_tlv(&mut i, 0x02, "AARE diagnostic INTEGER")?;
                    i.finish()?;
                    let code = ber::decode_small_integer(int, "AARE diagnostic")?.min(255) as u8;
                    diagnostic = Some(match choice {
                        0xA1 => ResultSourceDiagnostic::User(code),
                        0xA2 => ResultSourceDiagnostic::Provider(code),
                        t => {
                            return Err(DecodeError::UnknownTag {
                                what: "AARE result-source-diagnostic",
                                tag: t,
                            })
                        }
                    });
                }
                0xA4 => aare.responding_ap_title = Some(read_ap_title(content)?),
                0x89 => aare.mechanism = Some(names::read_mechanism(content)?),
                0xAA => {
                    aare.responding_authentication_value = Some(read_authentication_value(content)?)
                }
                0xBE => aare.user_information = Some(read_user_information(content)?),
                _ => {}
            }
        }
        let missing = |what| DecodeError::InvalidValue { what, value: 0 };
        aare.application_context =
            context.ok_or(missing("AARE without application-context-name"))?;
        aare.result = result.ok_or(missing("AARE without result"))?;
        aare.diagnostic = diagnostic.ok_or(missing("AARE without result-source-diagnostic"))?;
        Ok(aare)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlms::test_util::hex;

    // An accepted AARE as meters and gurux-dlms servers send it: LN context, result 0,
    // diagnostic user 0, InitiateResponse with conformance 0x00101D and PDU size 0x0400.
    const ACCEPTED: &str =
        "6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F040000101D04000007";

    /// Real-meter dialects the decoder tolerates (issue 26), each as reported: the AARE
    /// fields they change, the rest as a standard accepted AARE.
    #[test]
    fn an_aare_with_a_non_standard_mechanism_name_tag_is_accepted() {
        // ZIV firmware: the mechanism-name under context tag [5] (0x85) instead of [9]
        // (0x89); the field is informative to a client, so it is skipped.
        let ziv = "6132A109060760857405080101A203020100A305A103020100850760857405080201\
                   BE10040E0800065F1F040000101D04000007";
        let aare = Aare::decode(&hex(ziv)).unwrap();
        assert_eq!(aare.result, AssociationResult::Accepted);
        assert_eq!(aare.mechanism, None);
        assert!(aare.check().is_ok());
        assert!(aare.user_information.is_some());
    }

    #[test]
    fn a_rejected_aare_without_user_information_reads_as_its_rejection() {
        // L+G ZCXi: rejected-permanent, authentication-failure (13), no user-information.
        let zcxi = "6117A109060760857405080101A203020101A305A10302010D";
        let aare = Aare::decode(&hex(zcxi)).unwrap();
        assert_eq!(aare.user_information, None);
        let rejected = aare.check().unwrap_err();
        assert_eq!(rejected.result, AssociationResult::RejectedPermanent);
        assert_eq!(rejected.diagnostic, ResultSourceDiagnostic::User(13));
        // The session says what the meter said, not "AARE without InitiateResponse".
        let mut session = crate::dlms::session::ClientSession::new(Default::default());
        let _ = session.aarq();
        assert!(matches!(
            session.on_aare(&hex(zcxi)),
            Err(crate::dlms::session::SessionError::Rejected(r)) if r.diagnostic == ResultSourceDiagnostic::User(13)
        ));
    }

    #[test]
    fn accepted_response() {
        let bytes = hex(ACCEPTED);
        let aare = Aare::decode(&bytes).unwrap();
        assert_eq!(aare.result, AssociationResult::Accepted);
        assert_eq!(aare.diagnostic, ResultSourceDiagnostic::User(0));
        assert_eq!(
            aare.user_information.as_deref(),
            Some(&hex("0800065F1F040000101D04000007")[..])
        );
        assert_eq!(aare.encode(), bytes);
    }

    #[test]
    fn green_book_example() {
        // The Green Book's AARE example: accepted, negotiated conformance 0x00501F, server max
        // receive PDU size 500, vaa-name 0x0007.
        let bytes = hex("6129A109060760857405080101A203020100A305A103020100BE10040E0800065F1F040000501F01F40007");
        let aare = Aare::decode(&bytes).unwrap();
        assert_eq!(aare.result, AssociationResult::Accepted);
        let initiate =
            crate::dlms::xdlms::InitiateResponse::decode(aare.user_information.as_deref().unwrap())
                .unwrap();
        assert_eq!(initiate.negotiated_conformance.0, 0x00_501F);
        assert_eq!(initiate.server_max_receive_pdu_size, 500);
        assert_eq!(aare.encode(), bytes);
    }

    #[test]
    fn rejected_with_authentication_failure_is_explained() {
        let aare = Aare {
            application_context: ApplicationContext::LogicalName,
            result: AssociationResult::RejectedPermanent,
            diagnostic: ResultSourceDiagnostic::User(13),
            responding_ap_title: None,
            mechanism: Some(Mechanism::Low),
            responding_authentication_value: None,
            user_information: Some(hex("0E010601")),
        };
        let bytes = aare.encode();
        assert_eq!(Aare::decode(&bytes).unwrap(), aare);
        assert_eq!(
            aare.check().unwrap_err().to_string(),
            "association rejected permanently: authentication failure (wrong password or key) \
             (acse-service-user 13); meter refused the xDLMS initiate: DLMS version too low (1)"
        );
        assert_eq!(Aare::decode(&hex(ACCEPTED)).unwrap().check(), Ok(()));
    }

    #[test]
    fn missing_fields_and_truncation() {
        let bytes = hex(ACCEPTED);
        for cut in 0..bytes.len() {
            assert!(Aare::decode(&bytes[..cut]).is_err());
        }
        assert!(Aare::decode(&hex("610BA109060760857405080101")).is_err());
    }
}
