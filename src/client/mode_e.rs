//! IEC 62056-21 mode E sign-on (clause 6.4.5 / Annex E), used by optical probes: at 300 baud
//! 7E1 the client sends `/?!` CR LF, the meter identifies itself as `/XXXZ\2ident` CR LF (the
//! `\2` announces HDLC), the client acknowledges with ACK `2` Z `2` CR LF, and both switch to the
//! baud rate coded by Z with 8N1, where HDLC begins.

use std::fmt;

/// The sign-on request (`device_address` empty addresses any meter on the line).
pub fn request(device_address: &str) -> Vec<u8> {
    format!("/?{device_address}!\r\n").into_bytes()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    pub manufacturer: String,
    /// The baud rate character Z ('0'..'6').
    pub baud_char: u8,
    pub baud: u32,
    pub ident: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeEError {
    Malformed(String),
    /// The meter answered as an IEC 62056-21 mode A, B or C meter (an identification without
    /// the `\2` escape, or a data readout): it offers the ASCII readout, not HDLC.
    NotModeE(String),
    UnknownBaud(u8),
}

impl fmt::Display for ModeEError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModeEError::Malformed(s) => write!(f, "malformed IEC 62056-21 identification {s:?}"),
            ModeEError::NotModeE(s) => write!(
                f,
                "the meter answered with an IEC 62056-21 mode C readout: set --protocol mode-c \
                 (it does not offer mode E, HDLC; it sent {s:?})"
            ),
            ModeEError::UnknownBaud(c) => write!(f, "unknown baud rate character {:?}", *c as char),
        }
    }
}

impl std::error::Error for ModeEError {}

/// Parses the identification line (with or without its CR LF; parity bits stripped).
pub fn parse_identification(line: &[u8]) -> Result<Identification, ModeEError> {
    let shown = || {
        let text: String = line.iter().map(|b| char::from(b & 0x7F)).collect();
        text.trim_end_matches(['\r', '\n']).to_string()
    };
    let id = crate::iec21::sign_on::parse_identification(line).map_err(|e| match e {
        crate::iec21::Iec21Error::ReservedBaudCharacter(c) => ModeEError::UnknownBaud(c),
        _ => ModeEError::Malformed(shown()),
    })?;
    match id.mode {
        crate::iec21::ProtocolMode::E { baud } => Ok(Identification {
            manufacturer: id.manufacturer,
            baud_char: id.baud_char,
            baud,
            ident: id.ident,
        }),
        // Annex E: only "\2" after Z announces HDLC; anything else is a readout meter.
        _ => Err(ModeEError::NotModeE(shown())),
    }
}

/// Whether bytes received in answer to the sign-on are a data message (STX first: the
/// readout of a mode A meter, or of one that answers any request with its readout, as the
/// Apator Norax 3 does).
pub fn is_readout(received: &[u8]) -> bool {
    received
        .iter()
        .map(|b| b & 0x7F)
        .find(|b| *b == b'/' || *b == crate::iec21::message::STX)
        == Some(crate::iec21::message::STX)
}

/// The acknowledgement that selects HDLC at the meter's proposed rate.
pub fn acknowledgement(id: &Identification) -> Vec<u8> {
    vec![0x06, b'2', id.baud_char, b'2', b'\r', b'\n']
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_on_messages() {
        assert_eq!(request(""), b"/?!\r\n");
        let id = parse_identification(b"/LGZ5\\2ZMD4104407.B32\r\n").unwrap();
        assert_eq!(id.manufacturer, "LGZ");
        assert_eq!(id.baud, 9600);
        assert_eq!(id.ident, "ZMD4104407.B32");
        assert_eq!(acknowledgement(&id), [0x06, b'2', b'5', b'2', b'\r', b'\n']);
    }

    #[test]
    fn refusals() {
        let e = parse_identification(b"/LGZ5ZMD\r\n").unwrap_err();
        assert_eq!(e, ModeEError::NotModeE("/LGZ5ZMD".into()));
        assert!(e.to_string().starts_with(
            "the meter answered with an IEC 62056-21 mode C readout: set --protocol mode-c"
        ));
        // Mode B and mode A identifications are readout meters too.
        assert!(matches!(
            parse_identification(b"/APAEnorax\r\n"),
            Err(ModeEError::NotModeE(_))
        ));
        assert!(is_readout(b"\x021.8.0(1)"));
        assert!(is_readout(b"\r\n\x82"), "STX with its parity bit");
        assert!(!is_readout(b"/LGZ5\\2ZMD\r\n\x02"));
        assert!(!is_readout(b""));
        assert!(matches!(
            parse_identification(b"/LGZ9\\2X\r\n"),
            Err(ModeEError::UnknownBaud(b'9'))
        ));
        assert!(matches!(
            parse_identification(b"LGZ5\\2X"),
            Err(ModeEError::Malformed(_))
        ));
        assert!(parse_identification(b"/\xC3\xA95").is_err());
    }
}
