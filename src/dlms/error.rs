//! The one error type of every decoder in the protocol stack.

use std::fmt;

/// Why a sequence of bytes is not a valid protocol element.
///
/// Flat and `#[non_exhaustive]` (the ureq-proto style): callers match the few variants they
/// act on and print the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the element was complete.
    Truncated { needed: usize, available: usize },
    /// The element was complete but bytes were left over.
    TrailingBytes(usize),
    /// A tag (A-XDR data type, APDU tag, BER tag, choice index) that is not defined here.
    UnknownTag { what: &'static str, tag: u8 },
    /// A field holds a value outside its defined range.
    InvalidValue { what: &'static str, value: u64 },
    /// A length field is impossible (too large, or inconsistent with its content).
    InvalidLength { what: &'static str, length: u64 },
    /// Nesting of arrays/structures deeper than the decoder accepts (stack safety).
    TooDeep,
    /// A check sequence did not match.
    BadChecksum { what: &'static str },
    /// A string that must be text is not valid UTF-8 / ASCII.
    BadText,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { needed, available } => {
                write!(
                    f,
                    "truncated: needed {needed} more byte(s), {available} available"
                )
            }
            DecodeError::TrailingBytes(n) => write!(f, "{n} unexpected trailing byte(s)"),
            DecodeError::UnknownTag { what, tag } => write!(f, "unknown {what} tag 0x{tag:02X}"),
            DecodeError::InvalidValue { what, value } => write!(f, "invalid {what}: {value}"),
            DecodeError::InvalidLength { what, length } => {
                write!(f, "invalid {what} length {length}")
            }
            DecodeError::TooDeep => write!(f, "data nested too deeply"),
            DecodeError::BadChecksum { what } => write!(f, "bad {what}"),
            DecodeError::BadText => write!(f, "string is not valid text"),
        }
    }
}

impl std::error::Error for DecodeError {}
