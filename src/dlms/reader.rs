//! A bounds-checked cursor over a byte slice: the only way decoders read input, so that no
//! decoder indexes a slice directly and none can panic on short input.

use super::DecodeError;

#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                needed: n,
                available: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A-XDR variable length (Green Book 9.5, "length of a variable-length type"): one byte
    /// below 0x80, else 0x80 | n followed by n big-endian bytes.
    pub(crate) fn axdr_length(&mut self) -> Result<usize, DecodeError> {
        let first = self.u8()?;
        if first < 0x80 {
            return Ok(first as usize);
        }
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 {
            return Err(DecodeError::InvalidLength {
                what: "A-XDR length-of-length",
                length: n as u64,
            });
        }
        let mut value: u64 = 0;
        for b in self.bytes(n)? {
            value = (value << 8) | u64::from(*b);
        }
        Ok(value as usize)
    }

    /// Reads a length-prefixed element and checks the length against what is left, so that
    /// callers never allocate from an attacker-chosen count.
    pub(crate) fn axdr_length_bounded(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let len = self.axdr_length()?;
        if len > self.remaining() {
            return Err(DecodeError::InvalidLength {
                what,
                length: len as u64,
            });
        }
        Ok(len)
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// Writes an A-XDR variable length (the inverse of [`Reader::axdr_length`]).
pub(crate) fn write_axdr_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xFF {
        out.extend_from_slice(&[0x81, len as u8]);
    } else if len <= 0xFFFF {
        out.push(0x82);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x84);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip_in_every_form() {
        for len in [0usize, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x1_0000] {
            let mut out = Vec::new();
            write_axdr_length(&mut out, len);
            let mut r = Reader::new(&out);
            assert_eq!(r.axdr_length().unwrap(), len);
            assert!(r.is_empty());
        }
        let mut out = Vec::new();
        write_axdr_length(&mut out, 0x80);
        assert_eq!(out, [0x81, 0x80]);
    }

    #[test]
    fn short_input_is_an_error_not_a_panic() {
        let mut r = Reader::new(&[0x82, 0x01]);
        assert_eq!(
            r.axdr_length(),
            Err(DecodeError::Truncated {
                needed: 2,
                available: 1
            })
        );
        let mut r = Reader::new(&[0x85, 0, 0, 0, 0, 1]);
        assert!(matches!(
            r.axdr_length(),
            Err(DecodeError::InvalidLength { .. })
        ));
        assert!(Reader::new(&[1]).u16().is_err());
    }
}
