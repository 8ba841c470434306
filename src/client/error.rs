//! Errors of the blocking client: the protocol errors plus I/O and time-outs, each phrased for
//! the person reading the log.

use super::mode_e::ModeEError;
use crate::dlms::hdlc::LinkError;
use crate::dlms::session::SessionError;
use crate::iec21::Iec21Error;
use std::fmt;
use std::io;
use std::time::Duration;

/// What arrived during a wait that ended without an answer: told apart because the causes
/// differ (silence: wrong address or framing; bad checksums: line noise or a wrong baud rate;
/// a frame still incomplete: a slow line or meter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    Nothing,
    /// Frames rejected for a bad HCS or FCS.
    BadChecksums(u64),
    /// Bytes that held no frame at all.
    Unframed(u64),
    /// Part of a frame, still incomplete at the deadline (bytes buffered).
    Incomplete(u64),
}

#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting or reading/writing failed.
    Io(io::Error),
    /// Nothing valid came back in time; `heard` says what did.
    NoAnswer {
        waiting_for: &'static str,
        after: Duration,
        heard: Heard,
    },
    /// The meter closed the connection.
    Closed,
    Link(LinkError),
    Session(SessionError),
    ModeE(ModeEError),
    /// An IEC 62056-21 readout (mode A, B or C) could not be taken.
    Iec21(Iec21Error),
    /// The meter's frame counter could not be read or used (invocation counter start).
    FrameCounter(String),
    /// The client's invocation counter could not be reserved or is used up.
    InvocationCounter(String),
    /// Another connection of this process to the meter stayed open this long (a meter takes
    /// one at a time).
    Busy {
        waited: Duration,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "I/O error: {e}"),
            ClientError::NoAnswer {
                waiting_for,
                after,
                heard,
            } => {
                let ms = after.as_millis();
                match heard {
                    Heard::Nothing => {
                        write!(f, "no answer from the meter to {waiting_for} within {ms} ms")?;
                        if *waiting_for == "SNRM" || *waiting_for == "AARQ" {
                            // Meters answer wrong addresses and wrong framing with silence.
                            write!(f, " (check the client/server addresses and the transport: hdlc or wrapper; a meter with only an IEC 62056-21 readout needs --protocol mode-c)")?;
                        }
                        Ok(())
                    }
                    Heard::BadChecksums(n) => write!(
                        f,
                        "the answer to {waiting_for} failed its checksum within {ms} ms ({n} frame(s) with a bad HCS/FCS: line noise, or a wrong baud rate or parity)"
                    ),
                    Heard::Unframed(n) => write!(
                        f,
                        "{n} byte(s) came back to {waiting_for} within {ms} ms but no valid frame (check the transport: hdlc or wrapper, and the line settings; a meter that answers garbage right after a previous connection needs --reconnect-gap-s, Microstar 15)"
                    ),
                    Heard::Incomplete(n) => write!(
                        f,
                        "the answer to {waiting_for} was still incomplete after {ms} ms ({n} byte(s) of it received: a slow line or meter; raise the response or inter-frame time-out)"
                    ),
                }
            }
            ClientError::Closed => write!(f, "the meter closed the connection"),
            ClientError::Link(LinkError::DisconnectedMode) => {
                write!(
                    f,
                    "the meter refused the HDLC connection (DM): wrong address or busy"
                )
            }
            ClientError::Link(e) => e.fmt(f),
            ClientError::Session(e) => e.fmt(f),
            ClientError::ModeE(e) => e.fmt(f),
            ClientError::Iec21(e) => e.fmt(f),
            ClientError::FrameCounter(e) => write!(f, "frame counter: {e}"),
            ClientError::InvocationCounter(e) => write!(f, "invocation counter: {e}"),
            ClientError::Busy { waited } => write!(
                f,
                "another connection to this meter stayed open for {} ms (the bridge's poll, a \
                 scan or an RPC): a meter takes one connection at a time; try again",
                waited.as_millis()
            ),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// Whether a fresh connection may cure it (time-outs, broken links), as opposed to a
    /// refusal that will repeat (wrong password, unknown object).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Io(_)
            | ClientError::NoAnswer { .. }
            | ClientError::Closed
            | ClientError::Link(_)
            | ClientError::Busy { .. } => true,
            ClientError::Session(
                SessionError::Block(_)
                | SessionError::SnBlock(_)
                | SessionError::Gbt(_)
                | SessionError::Decode(_),
            ) => true,
            // A damaged or cut readout is read again; a meter that sends no readout at all
            // will not send one next time either.
            ClientError::Iec21(e) => matches!(
                e,
                Iec21Error::BccMismatch { .. } | Iec21Error::Truncated | Iec21Error::TooLong
            ),
            ClientError::Session(_)
            | ClientError::ModeE(_)
            | ClientError::FrameCounter(_)
            | ClientError::InvocationCounter(_) => false,
        }
    }
}

impl ClientError {
    /// Whether the meter refused the association for a reason only a change of its
    /// configuration mends: a permanent rejection whose acse-service-user diagnostic
    /// (IEC 62056-5-3 / Green Book 9.3.2, AARE result-source-diagnostic) is
    /// application-context-name-not-supported (2) or names the authentication (11 mechanism not
    /// recognised, 12 mechanism required, 13 authentication failure, 14 authentication
    /// required), or an HLS reply that did not verify. Retrying such a refusal locks many meters'
    /// passwords or ports, so the bridge stops associating the meter (`needs-configuration`).
    pub fn refuses_configuration(&self) -> bool {
        use crate::dlms::acse::{AssociationResult, ResultSourceDiagnostic};
        match self {
            ClientError::Session(SessionError::Rejected(r)) => {
                r.result == AssociationResult::RejectedPermanent
                    && matches!(r.diagnostic, ResultSourceDiagnostic::User(2 | 11..=14))
            }
            ClientError::Session(SessionError::HlsFailed(_)) => true,
            _ => false,
        }
    }

    /// A refused association phrased for whoever configures the meter (what `scan` reports for
    /// a meter that answers but will not associate); `None` when the error is no refusal.
    pub fn refusal_advice(&self) -> Option<String> {
        use crate::dlms::acse::ResultSourceDiagnostic;
        match self {
            ClientError::Session(SessionError::Rejected(r)) => Some(match r.diagnostic {
                ResultSourceDiagnostic::User(12..=14) => format!(
                    "needs authentication (--auth low --password ..., or the meter's HLS keys): {r}"
                ),
                _ => r.to_string(),
            }),
            ClientError::Session(SessionError::HlsFailed(why)) => {
                Some(format!("HLS authentication failed: {why}"))
            }
            _ => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ClientError::Closed
        } else {
            ClientError::Io(e)
        }
    }
}

impl From<LinkError> for ClientError {
    fn from(e: LinkError) -> Self {
        ClientError::Link(e)
    }
}

impl From<SessionError> for ClientError {
    fn from(e: SessionError) -> Self {
        ClientError::Session(e)
    }
}
