//! xDLMS APDUs (Green Book 9.5, the COSEMpdu ASN.1 module) and the [`Apdu`] dispatcher that
//! decodes any APDU a client or server may receive, ACSE ones included.

mod action;
mod block;
pub mod ciphered;
mod conformance;
mod descriptor;
mod exception;
pub mod gbt;
mod get;
mod initiate;
mod invoke;
pub mod notification;
mod set;

pub use action::{ActionRequest, ActionResponse};
pub use block::DataBlockSa;
pub use conformance::Conformance;
pub use descriptor::{
    AttributeDescriptor, CaptureObject, DataAccessResult, GetDataResult, MethodDescriptor,
    SelectiveAccess,
};
pub use exception::{ConfirmedServiceError, ExceptionResponse};
pub use get::{
    BlockError, BlockProgress, EmptyRun, GetBlockAssembler, GetRequest, GetResponse,
    MAX_EMPTY_BLOCKS,
};
pub use initiate::{InitiateRequest, InitiateResponse, DLMS_VERSION, VAA_NAME_LN};
pub use invoke::InvokeIdAndPriority;
pub use set::{SetRequest, SetResponse};

use super::acse::{Aare, Aarq, Rlre, Rlrq, AARE_TAG, AARQ_TAG, RLRE_TAG, RLRQ_TAG};
use super::{DecodeError, Reader};

pub const GET_REQUEST: u8 = 0xC0;
pub const SET_REQUEST: u8 = 0xC1;
pub const ACTION_REQUEST: u8 = 0xC3;
pub const GET_RESPONSE: u8 = 0xC4;
pub const SET_RESPONSE: u8 = 0xC5;
pub const ACTION_RESPONSE: u8 = 0xC7;
pub const EXCEPTION_RESPONSE: u8 = 0xD8;
pub const CONFIRMED_SERVICE_ERROR: u8 = 0x0E;

pub(crate) fn expect_tag(
    r: &mut Reader<'_>,
    tag: u8,
    what: &'static str,
) -> Result<(), DecodeError> {
    let t = r.u8()?;
    if t == tag {
        Ok(())
    } else {
        Err(DecodeError::UnknownTag { what, tag: t })
    }
}

pub use ciphered::is_ciphered_tag;

/// Any APDU of the logical-name profile.
#[derive(Debug, Clone, PartialEq)]
pub enum Apdu {
    Aarq(Aarq),
    Aare(Aare),
    Rlrq(Rlrq),
    Rlre(Rlre),
    InitiateRequest(InitiateRequest),
    InitiateResponse(InitiateResponse),
    ConfirmedServiceError(ConfirmedServiceError),
    GetRequest(GetRequest),
    GetResponse(GetResponse),
    SetRequest(SetRequest),
    SetResponse(SetResponse),
    ActionRequest(ActionRequest),
    ActionResponse(ActionResponse),
    ExceptionResponse(ExceptionResponse),
    /// A ciphered APDU, kept whole (tag included) for the security layer.
    Ciphered(Vec<u8>),
}

impl Apdu {
    pub fn decode(bytes: &[u8]) -> Result<Apdu, DecodeError> {
        let tag = *bytes.first().ok_or(DecodeError::Truncated {
            needed: 1,
            available: 0,
        })?;
        Ok(match tag {
            AARQ_TAG => Apdu::Aarq(Aarq::decode(bytes)?),
            AARE_TAG => Apdu::Aare(Aare::decode(bytes)?),
            RLRQ_TAG => Apdu::Rlrq(Rlrq::decode(bytes)?),
            RLRE_TAG => Apdu::Rlre(Rlre::decode(bytes)?),
            initiate::INITIATE_REQUEST_TAG => {
                Apdu::InitiateRequest(InitiateRequest::decode(bytes)?)
            }
            initiate::INITIATE_RESPONSE_TAG => {
                Apdu::InitiateResponse(InitiateResponse::decode(bytes)?)
            }
            CONFIRMED_SERVICE_ERROR => {
                Apdu::ConfirmedServiceError(ConfirmedServiceError::decode(bytes)?)
            }
            GET_REQUEST => Apdu::GetRequest(GetRequest::decode(bytes)?),
            GET_RESPONSE => Apdu::GetResponse(GetResponse::decode(bytes)?),
            SET_REQUEST => Apdu::SetRequest(SetRequest::decode(bytes)?),
            SET_RESPONSE => Apdu::SetResponse(SetResponse::decode(bytes)?),
            ACTION_REQUEST => Apdu::ActionRequest(ActionRequest::decode(bytes)?),
            ACTION_RESPONSE => Apdu::ActionResponse(ActionResponse::decode(bytes)?),
            EXCEPTION_RESPONSE => Apdu::ExceptionResponse(ExceptionResponse::decode(bytes)?),
            t if is_ciphered_tag(t) => Apdu::Ciphered(bytes.to_vec()),
            t => {
                return Err(DecodeError::UnknownTag {
                    what: "APDU",
                    tag: t,
                })
            }
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            Apdu::Aarq(a) => a.encode(),
            Apdu::Aare(a) => a.encode(),
            Apdu::Rlrq(a) => a.encode(),
            Apdu::Rlre(a) => a.encode(),
            Apdu::InitiateRequest(a) => a.encode(),
            Apdu::InitiateResponse(a) => a.encode(),
            Apdu::ConfirmedServiceError(a) => a.encode(),
            Apdu::GetRequest(a) => a.encode(),
            Apdu::GetResponse(a) => a.encode(),
            Apdu::SetRequest(a) => a.encode(),
            Apdu::SetResponse(a) => a.encode(),
            Apdu::ActionRequest(a) => a.encode(),
            Apdu::ActionResponse(a) => a.encode(),
            Apdu::ExceptionResponse(a) => a.encode(),
            Apdu::Ciphered(b) => b.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_by_tag() {
        assert!(matches!(
            Apdu::decode(&[0xD8, 1, 2]),
            Ok(Apdu::ExceptionResponse(_))
        ));
        assert!(matches!(Apdu::decode(&[0x62, 0x00]), Ok(Apdu::Rlrq(_))));
        assert!(matches!(Apdu::decode(&[0xCC, 0x01]), Ok(Apdu::Ciphered(_))));
        assert!(matches!(
            Apdu::decode(&[0x99]),
            Err(DecodeError::UnknownTag { .. })
        ));
        assert!(Apdu::decode(&[]).is_err());
    }
}
