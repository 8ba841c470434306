//! The IEC 62056-47 TCP/UDP wrapper (Green Book 7.3.3.2): an 8-byte header before each APDU.
//!
//! ```text
//! version (u16 = 0x0001) | source wPort (u16) | destination wPort (u16) | length (u16) | APDU
//! ```
//! wPorts play the role of HDLC addresses: the client's wPort is its SAP (16 public), the
//! server's is its logical device (1 management logical device).
//!
//! The wrapper has no checksum and no flag, so a stream cannot be resynchronised after a bad
//! header: [`WrapperDecoder`] reports it and the connection must be reset.

use super::{DecodeError, Reader};

pub const HEADER_LEN: usize = 8;
pub const VERSION: u16 = 0x0001;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrapperHeader {
    pub source: u16,
    pub destination: u16,
    pub length: u16,
}

impl WrapperHeader {
    pub fn parse(bytes: &[u8]) -> Result<WrapperHeader, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u16()?;
        if version != VERSION {
            return Err(DecodeError::InvalidValue {
                what: "wrapper version",
                value: u64::from(version),
            });
        }
        Ok(WrapperHeader {
            source: r.u16()?,
            destination: r.u16()?,
            length: r.u16()?,
        })
    }
}

/// Wraps an APDU; `None` if it is longer than the 16-bit length allows.
pub fn wrap(source: u16, destination: u16, apdu: &[u8]) -> Option<Vec<u8>> {
    let length = u16::try_from(apdu.len()).ok()?;
    let mut out = Vec::with_capacity(HEADER_LEN + apdu.len());
    for v in [VERSION, source, destination, length] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(apdu);
    Some(out)
}

/// One wrapped APDU as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapperPdu {
    pub source: u16,
    pub destination: u16,
    pub apdu: Vec<u8>,
}

/// A streaming decoder: push what was read, then take complete PDUs.
#[derive(Debug, Default)]
pub struct WrapperDecoder {
    buf: Vec<u8>,
}

impl WrapperDecoder {
    pub fn new() -> Self {
        WrapperDecoder::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn reset(&mut self) {
        self.buf.clear();
    }

    /// `Ok(None)` when more bytes are needed; an error when the header is invalid (the stream
    /// is then unusable: reset the connection). The buffer never holds more than one header
    /// plus the 64 KiB its length can announce, plus what one push added.
    pub fn next_pdu(&mut self) -> Result<Option<WrapperPdu>, DecodeError> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let header = WrapperHeader::parse(&self.buf[..HEADER_LEN])?;
        let total = HEADER_LEN + usize::from(header.length);
        if self.buf.len() < total {
            return Ok(None);
        }
        let apdu = self.buf[HEADER_LEN..total].to_vec();
        self.buf.drain(..total);
        Ok(Some(WrapperPdu {
            source: header.source,
            destination: header.destination,
            apdu,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // GET-Request for 1-0:32.7.0*255 attribute 2 from client 16 to server 1, as gurux-dlms
    // wraps it (InterfaceType.WRAPPER).
    const GURUX_WRAPPED_GET: &[u8] = &[
        0x00, 0x01, 0x00, 0x10, 0x00, 0x01, 0x00, 0x0D, 0xC0, 0x01, 0xC1, 0x00, 0x03, 0x01, 0x00,
        0x20, 0x07, 0x00, 0xFF, 0x02, 0x00,
    ];

    #[test]
    fn golden_wrap_and_parse() {
        let apdu = &GURUX_WRAPPED_GET[8..];
        assert_eq!(wrap(16, 1, apdu).unwrap(), GURUX_WRAPPED_GET);
        let mut d = WrapperDecoder::new();
        d.push(GURUX_WRAPPED_GET);
        let pdu = d.next_pdu().unwrap().unwrap();
        assert_eq!((pdu.source, pdu.destination), (16, 1));
        assert_eq!(pdu.apdu, apdu);
        assert_eq!(d.next_pdu(), Ok(None));
    }

    #[test]
    fn streaming_split_at_every_point_and_back_to_back() {
        let mut stream = GURUX_WRAPPED_GET.to_vec();
        stream.extend_from_slice(&wrap(1, 16, &[0xC4, 0x01]).unwrap());
        for cut in 0..stream.len() {
            let mut d = WrapperDecoder::new();
            d.push(&stream[..cut]);
            let mut got = Vec::new();
            while let Some(p) = d.next_pdu().unwrap() {
                got.push(p);
            }
            d.push(&stream[cut..]);
            while let Some(p) = d.next_pdu().unwrap() {
                got.push(p);
            }
            assert_eq!(got.len(), 2, "cut {cut}");
            assert_eq!(got[1].apdu, [0xC4, 0x01]);
        }
    }

    #[test]
    fn bad_version_and_oversize() {
        let mut d = WrapperDecoder::new();
        d.push(&[0x00, 0x02, 0, 16, 0, 1, 0, 0]);
        assert!(matches!(
            d.next_pdu(),
            Err(DecodeError::InvalidValue { .. })
        ));
        assert_eq!(wrap(1, 1, &vec![0; 70_000]), None);
        assert!(WrapperHeader::parse(&[0, 1, 0]).is_err());
    }
}
