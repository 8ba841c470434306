//! ExceptionResponse and ConfirmedServiceError (Green Book 9.5): the two ways a server says it
//! cannot serve a request at all.
//!
//! ```text
//! D8 state-error service-error [invocation-counter(u32) when service-error = 6]
//! 0E service (1 initiateError, ...) error-class error-code
//! ```

use super::{expect_tag, CONFIRMED_SERVICE_ERROR, EXCEPTION_RESPONSE};
use crate::dlms::{DecodeError, Reader};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionResponse {
    /// 1 service-not-allowed, 2 service-unknown.
    pub state_error: u8,
    /// 1 operation-not-possible, 2 service-not-supported, 3 other-reason, 4 pdu-too-long,
    /// 5 deciphering-error, 6 invocation-counter-error.
    pub service_error: u8,
    /// The server's expected invocation counter, with invocation-counter-error.
    pub invocation_counter: Option<u32>,
}

impl ExceptionResponse {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![EXCEPTION_RESPONSE, self.state_error, self.service_error];
        if let Some(ic) = self.invocation_counter {
            out.extend_from_slice(&ic.to_be_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<ExceptionResponse, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_tag(&mut r, EXCEPTION_RESPONSE, "ExceptionResponse")?;
        let state_error = r.u8()?;
        let service_error = r.u8()?;
        let invocation_counter = if service_error == 6 {
            Some(r.u32()?)
        } else {
            None
        };
        r.finish()?;
        Ok(ExceptionResponse {
            state_error,
            service_error,
            invocation_counter,
        })
    }
}

impl fmt::Display for ExceptionResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state_error {
            1 => "service not allowed",
            2 => "service unknown",
            _ => "state error",
        };
        let service = match self.service_error {
            1 => "operation not possible",
            2 => "service not supported",
            3 => "other reason",
            4 => "PDU too long",
            5 => "deciphering error",
            6 => "invocation counter error",
            _ => "service error",
        };
        write!(
            f,
            "meter exception: {state} ({}), {service} ({})",
            self.state_error, self.service_error
        )?;
        if let Some(ic) = self.invocation_counter {
            write!(f, ", expected invocation counter {ic}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmedServiceError {
    /// Which service failed: 1 initiateError, 2 getStatus, 3 getNameList, 4 getVariableAttribute,
    /// 5 read, 6 write, ...
    pub service: u8,
    /// ServiceError choice: 0 application-reference, 1 hardware-resource, 2 vde-state-error,
    /// 3 service, 4 definition, 5 access, 6 initiate, 7 load-data-set, 9 task, 10 other-error.
    pub error_class: u8,
    pub error: u8,
}

impl ConfirmedServiceError {
    pub fn encode(&self) -> Vec<u8> {
        vec![
            CONFIRMED_SERVICE_ERROR,
            self.service,
            self.error_class,
            self.error,
        ]
    }

    pub fn decode(bytes: &[u8]) -> Result<ConfirmedServiceError, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_tag(&mut r, CONFIRMED_SERVICE_ERROR, "ConfirmedServiceError")?;
        let e = ConfirmedServiceError {
            service: r.u8()?,
            error_class: r.u8()?,
            error: r.u8()?,
        };
        r.finish()?;
        Ok(e)
    }
}

impl fmt::Display for ConfirmedServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.error_class == 6 {
            let why = match self.error {
                0 => "other",
                1 => "DLMS version too low",
                2 => "incompatible conformance",
                3 => "PDU size too short",
                4 => "refused by the VDE handler",
                _ => "unknown initiate error",
            };
            return write!(
                f,
                "meter refused the xDLMS initiate: {why} ({})",
                self.error
            );
        }
        write!(
            f,
            "confirmed service error: service {}, class {}, error {}",
            self.service, self.error_class, self.error
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_response_forms() {
        let e = ExceptionResponse::decode(&[0xD8, 0x01, 0x02]).unwrap();
        assert_eq!(
            e.to_string(),
            "meter exception: service not allowed (1), service not supported (2)"
        );
        assert_eq!(e.encode(), [0xD8, 0x01, 0x02]);
        let ic = ExceptionResponse::decode(&[0xD8, 0x01, 0x06, 0, 0, 0x01, 0x00]).unwrap();
        assert_eq!(ic.invocation_counter, Some(256));
        assert!(ExceptionResponse::decode(&[0xD8, 0x01, 0x06, 0]).is_err());
    }

    #[test]
    fn initiate_error() {
        let e = ConfirmedServiceError::decode(&[0x0E, 0x01, 0x06, 0x01]).unwrap();
        assert_eq!(
            e.to_string(),
            "meter refused the xDLMS initiate: DLMS version too low (1)"
        );
        assert_eq!(e.encode(), [0x0E, 0x01, 0x06, 0x01]);
        assert!(ConfirmedServiceError::decode(&[0x0E, 0x01]).is_err());
    }
}
