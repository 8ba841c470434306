//! The one error type of the IEC 62056-21 decoders.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Iec21Error {
    /// Not an identification message `/XXXZ ident` CR LF (IEC 62056-21 6.3.2); the text as received.
    NotIdentification(String),
    /// A baud rate character the standard reserves (mode B 'G'..'I', mode C '7'..'9').
    ReservedBaudCharacter(u8),
    /// The message ends before its end (no ETX, or no BCC after it).
    Truncated,
    /// Bytes that are not a data message `STX ... ! CR LF ETX BCC` (IEC 62056-21 6.3, data message): `what`
    /// says which part is missing.
    NotReadout(&'static str),
    /// The block check character (IEC 62056-21 6.3: XOR of every byte after STX up to and
    /// including ETX) does not match: line noise or a wrong baud rate / parity.
    BccMismatch { received: u8, computed: u8 },
    /// A data line that is not `address(value*unit)...` (1-based line number).
    BadDataLine(usize),
    /// More bytes than any readout needs ([`crate::iec21::message::MAX_MESSAGE`]).
    TooLong,
}

impl fmt::Display for Iec21Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Iec21Error::NotIdentification(s) => {
                write!(f, "not an IEC 62056-21 identification message: {s:?}")
            }
            Iec21Error::ReservedBaudCharacter(c) => write!(
                f,
                "the meter proposed the reserved IEC 62056-21 baud rate character {:?}",
                char::from(*c)
            ),
            Iec21Error::Truncated => {
                write!(
                    f,
                    "the IEC 62056-21 data message ended before its ETX and BCC"
                )
            }
            Iec21Error::NotReadout(what) => {
                write!(f, "not an IEC 62056-21 data readout: {what}")
            }
            Iec21Error::BccMismatch { received, computed } => write!(
                f,
                "the IEC 62056-21 data message failed its check character (BCC {received:#04x}, \
                 computed {computed:#04x}: line noise, or a wrong baud rate or parity)"
            ),
            Iec21Error::BadDataLine(n) => write!(
                f,
                "line {n} of the IEC 62056-21 readout is not address(value*unit)"
            ),
            Iec21Error::TooLong => write!(f, "the IEC 62056-21 data message is too long"),
        }
    }
}

impl std::error::Error for Iec21Error {}
