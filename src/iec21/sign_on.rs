//! The opening of every IEC 62056-21 exchange (clause 6.3.1-6.3.3): the request message, the
//! meter's identification, and the client's acknowledgement/option select.

use super::Iec21Error;

/// The request message `/ ? address ! CR LF` (clause 6.3.1); an empty `device_address`
/// addresses whatever meter is on the optical port.
pub fn request(device_address: &str) -> Vec<u8> {
    format!("/?{device_address}!\r\n").into_bytes()
}

/// What the identification's baud rate character Z (and the `\2` escape) says about the
/// meter (clause 6.4: protocol modes; 6.3.2 item Z).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolMode {
    /// Z is any other printable character: the readout follows at 300 baud, no switch.
    A,
    /// Z 'A'..'F': both sides switch to `baud` right after the identification, no
    /// acknowledgement.
    B { baud: u32 },
    /// Z '0'..'6': the client acknowledges with option select, then both switch to `baud`.
    C { baud: u32 },
    /// Z '0'..'6' followed by the escape `\2` (Annex E): mode C, plus HDLC (binary mode) on
    /// request.
    E { baud: u32 },
}

/// The identification message `/ X X X Z ident CR LF` (clause 6.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    /// The three-letter manufacturer's identification (a lower-case third letter announces a
    /// 20 ms reaction time instead of 200 ms).
    pub manufacturer: String,
    /// The baud rate character Z as sent.
    pub baud_char: u8,
    pub mode: ProtocolMode,
    /// The identification after Z, without the `\W` enhanced-identification escape.
    pub ident: String,
}

/// Mode C (and E) baud rate characters of the identification (6.3.2, item Z): '0' 300 ..
/// '6' 19200.
const MODE_C_RATES: [u32; 7] = [300, 600, 1200, 2400, 4800, 9600, 19200];

/// The mode C baud rate of character `z` ('0'..'6').
pub fn mode_c_baud(z: u8) -> Option<u32> {
    let i = z.checked_sub(b'0')?;
    MODE_C_RATES.get(usize::from(i)).copied()
}

/// The mode C baud rate character of `baud` (`None` for a rate the table lacks).
pub fn mode_c_char(baud: u32) -> Option<u8> {
    let i = MODE_C_RATES.iter().position(|r| *r == baud)?;
    u8::try_from(i).ok().map(|i| b'0' + i)
}

/// Mode B baud rate characters: 'A' 600 .. 'F' 19200 ('G'..'I' reserved).
fn mode_b_baud(z: u8) -> Option<u32> {
    let i = z.checked_sub(b'A')?;
    MODE_C_RATES.get(usize::from(i) + 1).copied()
}

impl Identification {
    /// The rate the readout comes at once the sign-on is done, as far as the meter decides it
    /// (mode C and E: the client may choose a lower one in its acknowledgement).
    pub fn proposed_baud(&self) -> u32 {
        match self.mode {
            ProtocolMode::A => 300,
            ProtocolMode::B { baud } | ProtocolMode::C { baud } | ProtocolMode::E { baud } => baud,
        }
    }
}

/// Parses one identification line (with or without its CR LF; parity bits stripped).
pub fn parse_identification(line: &[u8]) -> Result<Identification, Iec21Error> {
    let bytes: Vec<u8> = line.iter().map(|b| b & 0x7F).collect();
    let shown = || Iec21Error::NotIdentification(String::from_utf8_lossy(&bytes).into_owned());
    let mut body = bytes.as_slice();
    while let [rest @ .., b'\r' | b'\n'] = body {
        body = rest;
    }
    // '/' X X X Z, then the identification proper (clause 6.3.2: at most 16 printable
    // characters; real meters send more, so only printable is checked).
    let [b'/', m1, m2, m3, z, ident @ ..] = body else {
        return Err(shown());
    };
    let manufacturer = [*m1, *m2, *m3];
    if !manufacturer.iter().all(u8::is_ascii_alphabetic)
        || !ident.iter().all(|c| c.is_ascii_graphic() || *c == b' ')
        || matches!(*z, b'/' | b'!')
        || !z.is_ascii_graphic()
    {
        return Err(shown());
    }
    // Annex E: "\2" right after Z announces the binary (HDLC) mode E; other "\W" escapes
    // are enhanced identifications of mode C meters and are skipped.
    let (escape, ident) = match ident {
        [b'\\', w, rest @ ..] => (Some(*w), rest),
        _ => (None, ident),
    };
    let mode = if let Some(baud) = mode_c_baud(*z) {
        if escape == Some(b'2') {
            ProtocolMode::E { baud }
        } else {
            ProtocolMode::C { baud }
        }
    } else if let Some(baud) = mode_b_baud(*z) {
        ProtocolMode::B { baud }
    } else if z.is_ascii_digit() || (b'G'..=b'I').contains(z) {
        return Err(Iec21Error::ReservedBaudCharacter(*z));
    } else {
        ProtocolMode::A
    };
    Ok(Identification {
        manufacturer: String::from_utf8_lossy(&manufacturer).into_owned(),
        baud_char: *z,
        mode,
        ident: String::from_utf8_lossy(ident).into_owned(),
    })
}

/// Protocol control character V of the acknowledgement (clause 6.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolControl {
    /// '0': normal protocol procedure.
    Normal,
    /// '2': HDLC (mode E, Annex E).
    Binary,
}

/// Mode control character Y of the acknowledgement (clause 6.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeControl {
    /// '0': data readout.
    Readout,
    /// '1': programming mode.
    Programming,
    /// '2': binary mode (HDLC, Annex E).
    Binary,
}

/// The acknowledgement/option select message `ACK V Z Y CR LF` (clause 6.3.3).
pub fn option_select(v: ProtocolControl, baud_char: u8, y: ModeControl) -> Vec<u8> {
    let v = match v {
        ProtocolControl::Normal => b'0',
        ProtocolControl::Binary => b'2',
    };
    let y = match y {
        ModeControl::Readout => b'0',
        ModeControl::Programming => b'1',
        ModeControl::Binary => b'2',
    };
    vec![0x06, v, baud_char, y, b'\r', b'\n']
}

/// The mode C acknowledgement that asks for the data readout at the rate of `baud_char`.
pub fn readout_acknowledgement(baud_char: u8) -> Vec<u8> {
    option_select(ProtocolControl::Normal, baud_char, ModeControl::Readout)
}

/// The baud rate character to acknowledge a mode C/E meter with: its proposal, or the
/// fastest rate not above `max_baud` (6.3.3: the acknowledgement carries the rate the client
/// selects, the meter's proposal or one below it); `'0'` (300 baud: no switch) when `max_baud` is under 600.
pub fn choose_baud_char(id: &Identification, max_baud: u32) -> u8 {
    let proposed = id.proposed_baud();
    let chosen = MODE_C_RATES
        .iter()
        .rev()
        .find(|r| **r <= proposed.min(max_baud))
        .copied()
        .unwrap_or(300);
    mode_c_char(chosen).unwrap_or(b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_messages() {
        // pwitab iec62056-21 tests/test_data.py (TestRequestMessage).
        assert_eq!(request("45678903"), b"/?45678903!\r\n");
        assert_eq!(request(""), b"/?!\r\n");
    }

    #[test]
    fn identifications_of_real_meters() {
        // Elster EK280 (pwitab iec62056-21 tests/test_data.py): mode E at 19200.
        let id = parse_identification(b"/Els6\\2EK280\r\n").unwrap();
        assert_eq!(id.manufacturer, "Els");
        assert_eq!(id.mode, ProtocolMode::E { baud: 19200 });
        assert_eq!(id.ident, "EK280");
        // L+G ZMD (the mode E opening's vector, src/client/mode_e.rs).
        let id = parse_identification(b"/LGZ5\\2ZMD4104407.B32\r\n").unwrap();
        assert_eq!(id.mode, ProtocolMode::E { baud: 9600 });
        // An identification in Iskraemeco's form (made up here: 'ISk', the lower-case k
        // announcing 20 ms reaction time): mode C at 9600.
        let id = parse_identification(b"/ISk5MT174-0001\r\n").unwrap();
        assert_eq!(
            (id.manufacturer.as_str(), id.mode, id.ident.as_str()),
            ("ISk", ProtocolMode::C { baud: 9600 }, "MT174-0001")
        );
        // Mode B (6.4): 'E' is 9600 baud; mode A: any other printable character.
        let id = parse_identification(b"/ABCEmeter\r\n").unwrap();
        assert_eq!(id.mode, ProtocolMode::B { baud: 9600 });
        let id = parse_identification(b"/ABC:meter").unwrap();
        assert_eq!((id.mode, id.proposed_baud()), (ProtocolMode::A, 300));
        // Parity bits (7E1 read as 8 bits) are stripped.
        let with_parity: Vec<u8> = b"/ISk5MT174\r\n".iter().map(|b| b | 0x80).collect();
        assert_eq!(
            parse_identification(&with_parity).unwrap().mode,
            ProtocolMode::C { baud: 9600 }
        );
    }

    #[test]
    fn bad_identifications() {
        for bad in [
            &b""[..],
            b"/",
            b"/IS",
            b"ISk5MT174\r\n",
            b"/1Sk5MT174",
            b"/ISk/x",
            b"/ISk5\x01",
        ] {
            assert!(
                matches!(
                    parse_identification(bad),
                    Err(Iec21Error::NotIdentification(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_identification(b"/ISk8x"),
            Err(Iec21Error::ReservedBaudCharacter(b'8'))
        );
        assert_eq!(
            parse_identification(b"/ISkGx"),
            Err(Iec21Error::ReservedBaudCharacter(b'G'))
        );
    }

    #[test]
    fn acknowledgements() {
        // pwitab iec62056-21 tests/test_data.py (TestAckOptionSelectMessage): "\x06051\r\n".
        assert_eq!(
            option_select(ProtocolControl::Normal, b'5', ModeControl::Programming),
            b"\x06051\r\n"
        );
        assert_eq!(readout_acknowledgement(b'5'), b"\x06050\r\n");
        // The mode E acknowledgement of src/client/mode_e.rs: ACK 2 Z 2.
        assert_eq!(
            option_select(ProtocolControl::Binary, b'5', ModeControl::Binary),
            b"\x06252\r\n"
        );
        let id = parse_identification(b"/Els6\\2EK280").unwrap();
        assert_eq!(choose_baud_char(&id, 19200), b'6');
        assert_eq!(choose_baud_char(&id, 9600), b'5');
        assert_eq!(choose_baud_char(&id, 5000), b'4');
        assert_eq!(choose_baud_char(&id, 300), b'0');
        assert_eq!(choose_baud_char(&id, 0), b'0');
        assert_eq!((mode_c_baud(b'7'), mode_c_char(1234)), (None, None));
    }
}
