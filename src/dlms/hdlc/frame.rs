//! One HDLC frame of format type 3 (IEC 62056-46 clause 6.4.1; Green Book 8.4.2):
//!
//! ```text
//! 7E | format (2) | dest addr (1,2,4) | src addr (1,2,4) | control | [HCS (2) | info] | FCS (2) | 7E
//! ```
//! The format field is `1010 S LLL LLLL LLLL`: type 3, the segmentation bit S, and the 11-bit
//! length of everything between the flags. The HCS (header check sequence) is present only when
//! there is an information field; the FCS covers everything from the format field on.

use super::address::{self, Address, ServerAddress};
use super::control::Control;
use super::fcs::fcs16;
use super::FLAG;
use crate::dlms::{DecodeError, Reader};
use std::fmt;

/// The largest value of the 11-bit length field.
pub const MAX_FRAME_LENGTH: usize = 0x7FF;
const FORMAT_TYPE_3: u16 = 0xA000;
const SEGMENTED: u16 = 0x0800;

/// An address field as it was on the wire; whether it is a client or server address depends on
/// the direction, which only the link knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawAddress {
    bytes: [u8; 4],
    len: u8,
}

impl RawAddress {
    fn from_slice(b: &[u8]) -> RawAddress {
        let mut bytes = [0u8; 4];
        bytes[..b.len()].copy_from_slice(b);
        RawAddress {
            bytes,
            len: b.len() as u8,
        }
    }

    pub fn client(sap: Address) -> RawAddress {
        RawAddress::from_slice(&[address::encode_client(sap)])
    }

    /// `None` if the address does not fit its declared size.
    pub fn server(addr: ServerAddress) -> Option<RawAddress> {
        addr.encode().map(|b| RawAddress::from_slice(&b))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    pub fn as_client(&self) -> Result<Address, DecodeError> {
        address::decode_client(self.as_bytes())
    }

    pub fn as_server(&self) -> Result<ServerAddress, DecodeError> {
        address::decode_server(self.as_bytes())
    }
}

/// An owned HDLC frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The segmentation bit: more segments of the same APDU follow.
    pub segmented: bool,
    pub destination: RawAddress,
    pub source: RawAddress,
    pub control: Control,
    /// The information field (empty when the frame has none).
    pub info: Vec<u8>,
}

/// The information field does not fit the 11-bit length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTooLong(pub usize);

impl fmt::Display for FrameTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HDLC frame of {} bytes exceeds the 11-bit length field",
            self.0
        )
    }
}

impl std::error::Error for FrameTooLong {}

impl Frame {
    /// Bytes between the flags.
    pub fn length(&self) -> usize {
        let header = 2 + self.destination.as_bytes().len() + self.source.as_bytes().len() + 1;
        let info = if self.info.is_empty() {
            0
        } else {
            2 + self.info.len()
        };
        header + info + 2
    }

    /// The frame with both flags, ready to send.
    pub fn emit(&self) -> Result<Vec<u8>, FrameTooLong> {
        let length = self.length();
        if length > MAX_FRAME_LENGTH {
            return Err(FrameTooLong(length));
        }
        let mut out = Vec::with_capacity(length + 2);
        out.push(FLAG);
        let mut format = FORMAT_TYPE_3 | length as u16;
        if self.segmented {
            format |= SEGMENTED;
        }
        out.extend_from_slice(&format.to_be_bytes());
        out.extend_from_slice(self.destination.as_bytes());
        out.extend_from_slice(self.source.as_bytes());
        out.push(self.control.to_byte());
        if !self.info.is_empty() {
            let hcs = fcs16(&out[1..]);
            out.extend_from_slice(&hcs.to_le_bytes());
            out.extend_from_slice(&self.info);
        }
        let fcs = fcs16(&out[1..]);
        out.extend_from_slice(&fcs.to_le_bytes());
        out.push(FLAG);
        Ok(out)
    }

    /// Parses exactly one frame, flags included. Every field and both check sequences are
    /// verified.
    pub fn parse(bytes: &[u8]) -> Result<Frame, DecodeError> {
        let mut r = Reader::new(bytes);
        if r.u8()? != FLAG {
            return Err(DecodeError::InvalidValue {
                what: "HDLC opening flag",
                value: u64::from(bytes[0]),
            });
        }
        let format = r.u16()?;
        if format & 0xF000 != FORMAT_TYPE_3 {
            return Err(DecodeError::InvalidValue {
                what: "HDLC frame format type",
                value: u64::from(format >> 12),
            });
        }
        let length = (format & 0x07FF) as usize;
        if length + 2 != bytes.len() {
            return Err(DecodeError::InvalidLength {
                what: "HDLC frame",
                length: length as u64,
            });
        }
        let body = &bytes[1..bytes.len() - 1];
        if bytes[bytes.len() - 1] != FLAG {
            return Err(DecodeError::InvalidValue {
                what: "HDLC closing flag",
                value: u64::from(bytes[bytes.len() - 1]),
            });
        }
        // Check the FCS first: on a corrupted frame the addresses are meaningless.
        if body.len() < 2 + 2 + 1 + 1 + 1 {
            return Err(DecodeError::InvalidLength {
                what: "HDLC frame",
                length: length as u64,
            });
        }
        let (covered, fcs) = body.split_at(body.len() - 2);
        if fcs16(covered).to_le_bytes() != [fcs[0], fcs[1]] {
            return Err(DecodeError::BadChecksum { what: "HDLC FCS" });
        }
        let mut r = Reader::new(&covered[2..]);
        let destination = RawAddress::from_slice(address::read_address_bytes(&mut r)?);
        let source = RawAddress::from_slice(address::read_address_bytes(&mut r)?);
        let control = Control::from_byte(r.u8()?);
        let info = if r.is_empty() {
            Vec::new()
        } else {
            let header_len = r.position() + 2;
            let hcs = r.bytes(2)?;
            if fcs16(&covered[..header_len]).to_le_bytes() != [hcs[0], hcs[1]] {
                return Err(DecodeError::BadChecksum { what: "HDLC HCS" });
            }
            if r.is_empty() {
                // An HCS with nothing after it: the length field lied about an info field.
                return Err(DecodeError::InvalidLength {
                    what: "HDLC information field",
                    length: 0,
                });
            }
            r.rest().to_vec()
        };
        Ok(Frame {
            segmented: format & SEGMENTED != 0,
            destination,
            source,
            control,
            info,
        })
    }
}

/// The total size (flags included) announced by a frame header starting at a flag, if the
/// header is complete and of format type 3.
pub(crate) fn announced_size(buf: &[u8]) -> Option<Result<usize, ()>> {
    if buf.len() < 3 {
        return None;
    }
    let format = u16::from_be_bytes([buf[1], buf[2]]);
    if format & 0xF000 != FORMAT_TYPE_3 {
        return Some(Err(()));
    }
    let length = (format & 0x07FF) as usize;
    // The smallest legal frame: format (2) + two 1-byte addresses + control + FCS (2).
    if length < 7 {
        return Some(Err(()));
    }
    Some(Ok(length + 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlms::test_util::hex;

    #[test]
    fn gurux_snrm_decodes_and_reencodes() {
        let bytes = hex("7EA0070321930F017E");
        let f = Frame::parse(&bytes).unwrap();
        assert_eq!(
            f.destination.as_server().unwrap(),
            ServerAddress::new(1, None)
        );
        assert_eq!(f.source.as_client().unwrap(), 16);
        assert_eq!(f.control, Control::Snrm { poll: true });
        assert!(f.info.is_empty());
        assert_eq!(f.emit().unwrap(), bytes);
    }

    #[test]
    fn gurux_get_request_frame_decodes_and_reencodes() {
        let bytes = hex("7EA0190321326FD8E6E600C001C100030100200700FF020085837E");
        let f = Frame::parse(&bytes).unwrap();
        assert_eq!(
            f.control,
            Control::I {
                ns: 1,
                nr: 1,
                poll: true
            }
        );
        assert_eq!(f.info, hex("E6E600C001C100030100200700FF0200"));
        assert_eq!(f.emit().unwrap(), bytes);
    }

    #[test]
    fn corrupted_frames_are_typed_errors() {
        let good = hex("7EA0190321326FD8E6E600C001C100030100200700FF020085837E");
        let mut bad_fcs = good.clone();
        bad_fcs[20] ^= 1;
        assert_eq!(
            Frame::parse(&bad_fcs),
            Err(DecodeError::BadChecksum { what: "HDLC FCS" })
        );
        for cut in 0..good.len() {
            assert!(Frame::parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad_format = good.clone();
        bad_format[1] = 0x80;
        assert!(Frame::parse(&bad_format).is_err());
    }

    #[test]
    fn bad_hcs_with_good_fcs_is_detected() {
        let mut bytes = hex("7EA0190321326FD8E6E600C001C100030100200700FF020085837E");
        bytes[6] ^= 0xFF;
        let n = bytes.len();
        let fcs = fcs16(&bytes[1..n - 3]).to_le_bytes();
        bytes[n - 3] = fcs[0];
        bytes[n - 2] = fcs[1];
        assert_eq!(
            Frame::parse(&bytes),
            Err(DecodeError::BadChecksum { what: "HDLC HCS" })
        );
    }

    #[test]
    fn segmentation_bit_and_four_byte_address() {
        let f = Frame {
            segmented: true,
            destination: RawAddress::client(16),
            source: RawAddress::server(ServerAddress::new(1, Some(0x1234))).unwrap(),
            control: Control::I {
                ns: 3,
                nr: 5,
                poll: false,
            },
            info: vec![0xAA; 100],
        };
        let bytes = f.emit().unwrap();
        assert_eq!(bytes[1] & 0x08, 0x08);
        assert_eq!(Frame::parse(&bytes).unwrap(), f);
        assert_eq!(bytes.len(), f.length() + 2);
    }

    #[test]
    fn overlong_info_is_refused() {
        let f = Frame {
            segmented: false,
            destination: RawAddress::client(16),
            source: RawAddress::client(1),
            control: Control::Ui { poll: false },
            info: vec![0; MAX_FRAME_LENGTH],
        };
        assert!(f.emit().is_err());
    }
}
