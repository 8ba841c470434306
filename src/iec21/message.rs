//! The data message `STX data-block ! CR LF ETX BCC` (IEC 62056-21 6.3, data message) and
//! its block check character; a streaming reader that takes a line's bytes as they come.

use super::data_set::{parse_data_block, DataSet};
use super::Iec21Error;

pub const STX: u8 = 0x02;
pub const ETX: u8 = 0x03;
/// Ends a partial block instead of ETX (IEC 62056-21 block messages); not supported in a readout here.
pub const EOT: u8 = 0x04;

/// More than any readout needs: a meter with 1,000 data lines of 60 characters.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// The block check character (IEC 62056-21 6.3 / 6.4): the XOR of every byte after STX (or SOH)
/// up to and including ETX, on 7-bit characters.
pub fn bcc(bytes_after_start: &[u8]) -> u8 {
    bytes_after_start.iter().fold(0u8, |x, b| x ^ (b & 0x7F))
}

/// Frames a data block (its lines, each ending CR LF) as a data message: STX, the block, the
/// end character `!` CR LF, ETX, BCC (what a meter sends; the simulator uses it).
pub fn data_message(data_block: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data_block.len() + 6);
    out.push(STX);
    out.extend_from_slice(data_block);
    out.extend_from_slice(b"!\r\n");
    out.push(ETX);
    let check = bcc(out.get(1..).unwrap_or_default());
    out.push(check);
    out
}

/// Parses a whole data message (parity bits stripped first) into its data sets.
pub fn parse_data_message(message: &[u8]) -> Result<Vec<DataSet>, Iec21Error> {
    if message.len() > MAX_MESSAGE {
        return Err(Iec21Error::TooLong);
    }
    let bytes: Vec<u8> = message.iter().map(|b| b & 0x7F).collect();
    let Some((&first, after_stx)) = bytes.split_first() else {
        return Err(Iec21Error::Truncated);
    };
    if first != STX {
        return Err(Iec21Error::NotReadout("it does not begin with STX"));
    }
    let Some(etx) = after_stx.iter().position(|b| *b == ETX || *b == EOT) else {
        return Err(Iec21Error::Truncated);
    };
    let (block, rest) = after_stx.split_at(etx);
    let Some(&received) = rest.get(1) else {
        return Err(Iec21Error::Truncated);
    };
    if rest.first() == Some(&EOT) {
        return Err(Iec21Error::NotReadout(
            "a partial block (EOT): partial block readout is not supported",
        ));
    }
    let computed = bcc(after_stx.get(..=etx).unwrap_or_default());
    if received != computed {
        return Err(Iec21Error::BccMismatch { received, computed });
    }
    // The data block ends with the end character '!' CR LF (IEC 62056-21 6.3: "!" is the end of
    // the data readout); a few meters leave out the CR LF after it.
    let block = block
        .strip_suffix(b"!\r\n")
        .or_else(|| block.strip_suffix(b"!"))
        .ok_or(Iec21Error::NotReadout("no end character '!' before ETX"))?;
    parse_data_block(block)
}

/// Finds a data message in bytes as a line delivers them: skips anything before STX (the
/// echo of a half-duplex line, the identification, noise), collects up to ETX and the BCC.
#[derive(Debug, Default)]
pub struct ReadoutReader {
    buf: Vec<u8>,
    started: bool,
    /// Bytes skipped before STX (none expected after the identification).
    pub skipped: usize,
}

impl ReadoutReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes received so far of the message (0 until STX).
    pub fn received(&self) -> usize {
        self.buf.len()
    }

    /// Takes bytes; `Some` once the message is complete (its bytes after the BCC are
    /// dropped: nothing follows a readout).
    pub fn push(&mut self, bytes: &[u8]) -> Option<Result<Vec<DataSet>, Iec21Error>> {
        for &raw in bytes {
            let b = raw & 0x7F;
            if !self.started {
                if b == STX {
                    self.started = true;
                    self.buf.push(b);
                } else {
                    self.skipped = self.skipped.saturating_add(1);
                }
                continue;
            }
            if self.buf.len() >= MAX_MESSAGE {
                return Some(Err(Iec21Error::TooLong));
            }
            self.buf.push(b);
            // The byte after ETX/EOT is the BCC: the message is complete.
            if let [.., before_last, _] = self.buf.as_slice() {
                if *before_last == ETX || *before_last == EOT {
                    let message = std::mem::take(&mut self.buf);
                    self.started = false;
                    return Some(parse_data_message(&message));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_check_characters_of_pwitab_vectors() {
        // pwitab iec62056-21 tests/test_bcc.py: a command message (BCC from after SOH) ...
        let m = b"\x01P0\x02(1234567)\x03P";
        assert_eq!(bcc(&m[1..m.len() - 1]), b'P');
        let m = [
            0x01, 0x57, 0x32, 0x02, 0x43, 0x30, 0x30, 0x33, 0x28, 0x39, 0x31, 0x30, 0x33, 0x32,
            0x34, 0x30, 0x39, 0x32, 0x32, 0x33, 0x39, 0x29, 0x03, 0x1b,
        ];
        assert_eq!(bcc(&m[1..m.len() - 1]), 0x1b);
        // ... and tests/test_data.py's readout: the BCC is '"'.
        let block = b"3:14(314*kWh)4:15(415*kWh)\r\n";
        assert_eq!(
            data_message(block),
            b"\x023:14(314*kWh)4:15(415*kWh)\r\n!\r\n\x03\""
        );
    }

    #[test]
    fn a_readout_of_pwitab_tests() {
        let sets = parse_data_message(b"\x023:14(314*kWh)4:15(415*kWh)\r\n!\r\n\x03\"").unwrap();
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0].address, "3:14");
        assert_eq!(sets[0].groups[0].value, "314");
        assert_eq!(sets[1].groups[0].unit.as_deref(), Some("kWh"));
        // The same with a wrong BCC ('x', pwitab's test_invalid_bcc_raises_error).
        assert_eq!(
            parse_data_message(b"\x023:14(314*kWh)4:15(415*kWh)\r\n!\r\n\x03x"),
            Err(Iec21Error::BccMismatch {
                received: b'x',
                computed: b'"'
            })
        );
    }

    /// A readout framed by an independent implementation: pwitab iec62056-21 0.0.2,
    /// `ReadoutDataMessage(DataBlock([...])).to_bytes()` with these data sets (made with
    /// `python3 -c` from the package's `messages` module; its BCC is 'E').
    const PWITAB_READOUT: &[u8] = b"\x02C.1.0(12345678)\r\nF.F(00000000)\r\n\
1.8.0(0012345.678*kWh)\r\n1.8.1(0001234.500*kWh)1.8.2(0011111.178*kWh)\r\n32.7.0(230.1*V)\r\n\
1.6.0(02.350*kW)(2612011415)\r\n!\r\n\x03E";

    #[test]
    fn a_readout_framed_by_pwitab() {
        let sets = parse_data_message(PWITAB_READOUT).unwrap();
        let addresses: Vec<&str> = sets.iter().map(|s| s.address.as_str()).collect();
        assert_eq!(
            addresses,
            ["C.1.0", "F.F", "1.8.0", "1.8.1", "1.8.2", "32.7.0", "1.6.0"]
        );
        assert_eq!(sets[4].groups[0].value, "0011111.178");
        assert_eq!(
            sets[6].groups.len(),
            2,
            "the time stamp group belongs to 1.6.0"
        );
        // Our framing of the same block is byte for byte pwitab's.
        let block = PWITAB_READOUT.get(1..PWITAB_READOUT.len() - 5).unwrap();
        assert_eq!(data_message(block), PWITAB_READOUT);
    }

    #[test]
    fn framing_errors() {
        assert_eq!(parse_data_message(b""), Err(Iec21Error::Truncated));
        assert_eq!(
            parse_data_message(b"\x021.8.0(1)"),
            Err(Iec21Error::Truncated)
        );
        assert_eq!(
            parse_data_message(b"\x021.8.0(1)!\r\n\x03"),
            Err(Iec21Error::Truncated)
        );
        assert!(matches!(
            parse_data_message(b"/ISk5MT174\r\n"),
            Err(Iec21Error::NotReadout(_))
        ));
        // A well-framed block without the end character '!'.
        let mut m = vec![STX];
        m.extend_from_slice(b"1.8.0(1)\r\n\x03");
        m.push(bcc(&m[1..]));
        assert!(matches!(
            parse_data_message(&m),
            Err(Iec21Error::NotReadout(_))
        ));
        // A partial block (EOT) with a good BCC.
        let mut m = vec![STX];
        m.extend_from_slice(b"1.8.0(1)\r\n\x04");
        m.push(bcc(&m[1..]));
        assert!(matches!(
            parse_data_message(&m),
            Err(Iec21Error::NotReadout(_))
        ));
        assert_eq!(
            parse_data_message(&vec![STX; MAX_MESSAGE + 1]),
            Err(Iec21Error::TooLong)
        );
    }

    #[test]
    fn the_reader_takes_the_message_in_pieces_after_noise() {
        let message = data_message(b"1.8.0(0012345.678*kWh)\r\n");
        let mut stream = b"/ISk5MT174\r\n".to_vec();
        stream.extend_from_slice(&message);
        for cut in 0..stream.len() {
            let mut reader = ReadoutReader::new();
            let (a, b) = stream.split_at(cut);
            let got = reader.push(a).or_else(|| reader.push(b));
            let sets = got.expect("complete").expect("valid");
            assert_eq!(sets[0].groups[0].value, "0012345.678", "cut at {cut}");
        }
        let mut reader = ReadoutReader::new();
        assert!(reader.push(&message[..message.len() - 1]).is_none());
        assert_eq!(reader.received(), message.len() - 1);
        let mut bad = message.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            ReadoutReader::new().push(&bad),
            Some(Err(Iec21Error::BccMismatch { .. }))
        ));
    }
}
