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
    /// The meter did not announce mode E (no `\2` after the baud character).
    NotModeE(String),
    UnknownBaud(u8),
}

impl fmt::Display for ModeEError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModeEError::Malformed(s) => write!(f, "malformed IEC 62056-21 identification {s:?}"),
            ModeEError::NotModeE(s) => write!(f, "meter does not offer mode E (HDLC) in {s:?}"),
            ModeEError::UnknownBaud(c) => write!(f, "unknown baud rate character {:?}", *c as char),
        }
    }
}

impl std::error::Error for ModeEError {}

/// Parses the identification line (with or without its CR LF; parity bits stripped).
pub fn parse_identification(line: &[u8]) -> Result<Identification, ModeEError> {
    let text: String = line.iter().map(|b| (b & 0x7F) as char).collect();
    let t = text.trim_end_matches(['\r', '\n']);
    let shown = || t.to_string();
    let body = t
        .strip_prefix('/')
        .ok_or_else(|| ModeEError::Malformed(shown()))?;
    if body.len() < 4 || !body.is_char_boundary(3) {
        return Err(ModeEError::Malformed(shown()));
    }
    let (manufacturer, rest) = body.split_at(3);
    let baud_char = rest.as_bytes()[0];
    let baud = match baud_char {
        b'0' => 300,
        b'1' => 600,
        b'2' => 1200,
        b'3' => 2400,
        b'4' => 4800,
        b'5' => 9600,
        b'6' => 19200,
        other => return Err(ModeEError::UnknownBaud(other)),
    };
    let ident = rest[1..]
        .strip_prefix("\\2")
        .ok_or_else(|| ModeEError::NotModeE(shown()))?;
    Ok(Identification {
        manufacturer: manufacturer.to_string(),
        baud_char,
        baud,
        ident: ident.to_string(),
    })
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
        assert!(matches!(
            parse_identification(b"/LGZ5ZMD\r\n"),
            Err(ModeEError::NotModeE(_))
        ));
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
