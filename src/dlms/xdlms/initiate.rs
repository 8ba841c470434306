//! xDLMS InitiateRequest and InitiateResponse (Green Book 9.5, "xDLMS-Initiate"), A-XDR:
//!
//! ```text
//! InitiateRequest  ::= 01 [dedicated-key: 00 | 01 len key] [response-allowed: 00 | 01 bool]
//!                      [proposed-quality-of-service: 00 | 01 i8] dlms-version(u8)
//!                      conformance(5F1F0400xxxxxx) client-max-receive-pdu-size(u16)
//! InitiateResponse ::= 08 [negotiated-quality-of-service: 00 | 01 i8] dlms-version(u8)
//!                      conformance server-max-receive-pdu-size(u16) vaa-name(u16)
//! ```

use super::conformance::Conformance;
use crate::dlms::reader::write_axdr_length;
use crate::dlms::{DecodeError, Reader};

pub const INITIATE_REQUEST_TAG: u8 = 0x01;
pub const INITIATE_RESPONSE_TAG: u8 = 0x08;
pub const DLMS_VERSION: u8 = 6;
/// vaa-name of logical name referencing.
pub const VAA_NAME_LN: u16 = 0x0007;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiateRequest {
    pub dedicated_key: Option<Vec<u8>>,
    pub response_allowed: bool,
    pub proposed_quality_of_service: Option<i8>,
    pub proposed_dlms_version: u8,
    pub proposed_conformance: Conformance,
    pub client_max_receive_pdu_size: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiateResponse {
    pub negotiated_quality_of_service: Option<i8>,
    pub negotiated_dlms_version: u8,
    pub negotiated_conformance: Conformance,
    pub server_max_receive_pdu_size: u16,
    pub vaa_name: u16,
}

fn read_optional_i8(r: &mut Reader<'_>) -> Result<Option<i8>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.u8()? as i8)),
        t => Err(DecodeError::InvalidValue {
            what: "OPTIONAL presence flag",
            value: u64::from(t),
        }),
    }
}

fn write_optional_i8(out: &mut Vec<u8>, v: Option<i8>) {
    match v {
        None => out.push(0),
        Some(v) => out.extend_from_slice(&[1, v as u8]),
    }
}

impl InitiateRequest {
    /// A plain request proposing `conformance` and a receive size of `max_pdu`.
    pub fn new(conformance: Conformance, max_pdu: u16) -> Self {
        InitiateRequest {
            dedicated_key: None,
            response_allowed: true,
            proposed_quality_of_service: None,
            proposed_dlms_version: DLMS_VERSION,
            proposed_conformance: conformance,
            client_max_receive_pdu_size: max_pdu,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![INITIATE_REQUEST_TAG];
        match &self.dedicated_key {
            None => out.push(0),
            Some(k) => {
                out.push(1);
                write_axdr_length(&mut out, k.len());
                out.extend_from_slice(k);
            }
        }
        // response-allowed is DEFAULT TRUE: encoded as absent when true.
        if self.response_allowed {
            out.push(0);
        } else {
            out.extend_from_slice(&[1, 0]);
        }
        write_optional_i8(&mut out, self.proposed_quality_of_service);
        out.push(self.proposed_dlms_version);
        self.proposed_conformance.encode(&mut out);
        out.extend_from_slice(&self.client_max_receive_pdu_size.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<InitiateRequest, DecodeError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8()?;
        if tag != INITIATE_REQUEST_TAG {
            return Err(DecodeError::UnknownTag {
                what: "InitiateRequest",
                tag,
            });
        }
        let dedicated_key = match r.u8()? {
            0 => None,
            1 => {
                let len = r.axdr_length_bounded("dedicated-key")?;
                Some(r.bytes(len)?.to_vec())
            }
            t => {
                return Err(DecodeError::InvalidValue {
                    what: "dedicated-key presence flag",
                    value: u64::from(t),
                })
            }
        };
        let response_allowed = match r.u8()? {
            0 => true,
            1 => r.u8()? != 0,
            t => {
                return Err(DecodeError::InvalidValue {
                    what: "response-allowed presence flag",
                    value: u64::from(t),
                })
            }
        };
        let req = InitiateRequest {
            dedicated_key,
            response_allowed,
            proposed_quality_of_service: read_optional_i8(&mut r)?,
            proposed_dlms_version: r.u8()?,
            proposed_conformance: Conformance::read(&mut r)?,
            client_max_receive_pdu_size: r.u16()?,
        };
        r.finish()?;
        Ok(req)
    }
}

impl InitiateResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![INITIATE_RESPONSE_TAG];
        write_optional_i8(&mut out, self.negotiated_quality_of_service);
        out.push(self.negotiated_dlms_version);
        self.negotiated_conformance.encode(&mut out);
        out.extend_from_slice(&self.server_max_receive_pdu_size.to_be_bytes());
        out.extend_from_slice(&self.vaa_name.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<InitiateResponse, DecodeError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8()?;
        if tag != INITIATE_RESPONSE_TAG {
            return Err(DecodeError::UnknownTag {
                what: "InitiateResponse",
                tag,
            });
        }
        let resp = InitiateResponse {
            negotiated_quality_of_service: read_optional_i8(&mut r)?,
            negotiated_dlms_version: r.u8()?,
            negotiated_conformance: Conformance::read(&mut r)?,
            server_max_receive_pdu_size: r.u16()?,
            vaa_name: r.u16()?,
        };
        r.finish()?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gurux_initiate_request() {
        let bytes = [
            0x01, 0x00, 0x00, 0x00, 0x06, 0x5F, 0x1F, 0x04, 0x00, 0x40, 0x1E, 0x5D, 0xFF, 0xFF,
        ];
        let req = InitiateRequest::decode(&bytes).unwrap();
        assert_eq!(req, InitiateRequest::new(Conformance(0x40_1E5D), 0xFFFF));
        assert_eq!(req.encode(), bytes);
    }

    #[test]
    fn request_with_dedicated_key_and_no_response() {
        let req = InitiateRequest {
            dedicated_key: Some(vec![0xAA; 16]),
            response_allowed: false,
            proposed_quality_of_service: Some(-1),
            ..InitiateRequest::new(Conformance::CLIENT_DEFAULT, 1024)
        };
        let bytes = req.encode();
        assert_eq!(&bytes[..3], &[0x01, 0x01, 0x10]);
        assert_eq!(InitiateRequest::decode(&bytes).unwrap(), req);
    }

    #[test]
    fn initiate_response() {
        let bytes = [
            0x08, 0x00, 0x06, 0x5F, 0x1F, 0x04, 0x00, 0x00, 0x10, 0x1D, 0x04, 0x00, 0x00, 0x07,
        ];
        let resp = InitiateResponse::decode(&bytes).unwrap();
        assert_eq!(resp.server_max_receive_pdu_size, 1024);
        assert_eq!(resp.vaa_name, VAA_NAME_LN);
        assert_eq!(resp.negotiated_conformance, Conformance(0x00_101D));
        assert_eq!(resp.encode(), bytes);
        for cut in 0..bytes.len() {
            assert!(InitiateResponse::decode(&bytes[..cut]).is_err());
        }
        assert!(InitiateResponse::decode(&[0x08, 0x02]).is_err());
    }
}
