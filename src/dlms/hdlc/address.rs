//! HDLC addresses (IEC 62056-46 clause 6.4.2.2; Green Book 8.4.2.2).
//!
//! Each address byte carries 7 bits shifted left by one; the lowest bit is 1 only on the last
//! byte of the address. The client address is always one byte (its SAP: 16 public, 1
//! management, ...). The server address is an upper (logical device) and an optional lower
//! (physical device) part, in 1, 2 or 4 bytes:
//! - 1 byte: upper only (7 bits);
//! - 2 bytes: upper 7 bits, lower 7 bits;
//! - 4 bytes: upper 14 bits, lower 14 bits.

use crate::dlms::{DecodeError, Reader};

/// A client SAP (one byte on the wire).
pub type Address = u8;

/// A server address: logical (upper) and physical (lower) device address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerAddress {
    pub logical: u16,
    pub physical: Option<u16>,
    /// Bytes on the wire: 1, 2 or 4.
    pub size: u8,
}

impl ServerAddress {
    /// The smallest encoding that holds both parts (meters answer only to the size they expect,
    /// so callers that know it better can set `size` themselves).
    pub fn new(logical: u16, physical: Option<u16>) -> Self {
        let size = match physical {
            None if logical < 0x80 => 1,
            Some(p) if logical < 0x80 && p < 0x80 => 2,
            _ => 4,
        };
        ServerAddress {
            logical,
            physical,
            size,
        }
    }

    /// Encodes the address; `None` if a part does not fit the chosen size.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let lower = self.physical.unwrap_or(0);
        match self.size {
            1 if self.logical < 0x80 && self.physical.is_none() => {
                Some(vec![((self.logical as u8) << 1) | 1])
            }
            2 if self.logical < 0x80 && lower < 0x80 => {
                Some(vec![(self.logical as u8) << 1, ((lower as u8) << 1) | 1])
            }
            4 if self.logical < 0x4000 && lower < 0x4000 => Some(vec![
                ((self.logical >> 7) as u8) << 1,
                ((self.logical & 0x7F) as u8) << 1,
                ((lower >> 7) as u8) << 1,
                (((lower & 0x7F) as u8) << 1) | 1,
            ]),
            _ => None,
        }
    }
}

/// Reads an address field of 1, 2 or 4 bytes: the bytes up to and including the first whose
/// lowest bit is 1.
pub(crate) fn read_address_bytes<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    let rest = r.rest();
    let len =
        rest.iter()
            .position(|b| b & 1 == 1)
            .map(|i| i + 1)
            .ok_or(DecodeError::Truncated {
                needed: 1,
                available: 0,
            })?;
    if !matches!(len, 1 | 2 | 4) {
        return Err(DecodeError::InvalidLength {
            what: "HDLC address",
            length: len as u64,
        });
    }
    r.bytes(len)
}

/// Decodes a server address from its wire bytes (1, 2 or 4 of them).
pub fn decode_server(bytes: &[u8]) -> Result<ServerAddress, DecodeError> {
    let v = |i: usize| u16::from(bytes[i] >> 1);
    match bytes.len() {
        1 => Ok(ServerAddress {
            logical: v(0),
            physical: None,
            size: 1,
        }),
        2 => Ok(ServerAddress {
            logical: v(0),
            physical: Some(v(1)),
            size: 2,
        }),
        4 => Ok(ServerAddress {
            logical: (v(0) << 7) | v(1),
            physical: Some((v(2) << 7) | v(3)),
            size: 4,
        }),
        n => Err(DecodeError::InvalidLength {
            what: "HDLC server address",
            length: n as u64,
        }),
    }
}

/// Decodes a one-byte client address.
pub fn decode_client(bytes: &[u8]) -> Result<Address, DecodeError> {
    match bytes {
        [b] => Ok(b >> 1),
        _ => Err(DecodeError::InvalidLength {
            what: "HDLC client address",
            length: bytes.len() as u64,
        }),
    }
}

/// Encodes a one-byte client address (SAP 0..=127).
pub fn encode_client(sap: Address) -> u8 {
    (sap << 1) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_two_and_four_byte_forms() {
        // Green Book 8.4.2.2 example forms; server 1 alone is 0x03 (as gurux sends it).
        assert_eq!(ServerAddress::new(1, None).encode().unwrap(), [0x03]);
        // logical 1, physical 17: 2 bytes.
        let two = ServerAddress::new(1, Some(17));
        assert_eq!(two.encode().unwrap(), [0x02, 0x23]);
        assert_eq!(decode_server(&[0x02, 0x23]).unwrap(), two);
        // logical 1, physical 0x3FFF: 4 bytes.
        let four = ServerAddress::new(1, Some(0x3FFF));
        assert_eq!(four.size, 4);
        let bytes = four.encode().unwrap();
        assert_eq!(bytes, [0x00, 0x02, 0xFE, 0xFF]);
        assert_eq!(decode_server(&bytes).unwrap(), four);
        // Microstar logical 0 still encodes.
        assert_eq!(
            ServerAddress::new(0, Some(17)).encode().unwrap(),
            [0x00, 0x23]
        );
    }

    #[test]
    fn client_address() {
        assert_eq!(encode_client(16), 0x21);
        assert_eq!(decode_client(&[0x21]).unwrap(), 16);
        assert!(decode_client(&[0x20, 0x21]).is_err());
    }

    #[test]
    fn unterminated_or_three_byte_address_is_an_error() {
        assert!(read_address_bytes(&mut Reader::new(&[0x02, 0x04])).is_err());
        assert!(read_address_bytes(&mut Reader::new(&[0x02, 0x04, 0x05])).is_err());
    }

    #[test]
    fn too_large_for_size_is_refused() {
        let bad = ServerAddress {
            logical: 0x80,
            physical: None,
            size: 1,
        };
        assert_eq!(bad.encode(), None);
    }
}
