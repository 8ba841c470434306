//! The small subset of BER (ITU-T X.690) that ACSE APDUs use: single-byte tags, definite
//! lengths in short form or long form of up to four bytes. Nothing else is accepted.

use super::{DecodeError, Reader};

/// Reads one TLV, returning its tag and content.
pub(crate) fn read_tlv<'a>(r: &mut Reader<'a>) -> Result<(u8, &'a [u8]), DecodeError> {
    let tag = r.u8()?;
    if tag & 0x1F == 0x1F {
        // Multi-byte tags occur only inside xDLMS (the conformance block), never at ACSE level.
        return Err(DecodeError::UnknownTag {
            what: "BER multi-byte",
            tag,
        });
    }
    let len = read_length(r)?;
    Ok((tag, r.bytes(len)?))
}

pub(crate) fn read_length(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    let first = r.u8()?;
    if first < 0x80 {
        return Ok(first as usize);
    }
    let n = (first & 0x7F) as usize;
    if n == 0 || n > 4 {
        // 0x80 is the indefinite form, which DLMS does not use.
        return Err(DecodeError::InvalidLength {
            what: "BER length-of-length",
            length: n as u64,
        });
    }
    let mut len = 0usize;
    for b in r.bytes(n)? {
        len = (len << 8) | usize::from(*b);
    }
    if len > r.remaining() {
        return Err(DecodeError::InvalidLength {
            what: "BER element",
            length: len as u64,
        });
    }
    Ok(len)
}

pub(crate) fn write_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xFF {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.push(0x82);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
}

pub(crate) fn write_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    write_length(out, content.len());
    out.extend_from_slice(content);
}

/// Reads a TLV and requires its tag.
pub(crate) fn expect_tlv<'a>(
    r: &mut Reader<'a>,
    tag: u8,
    what: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let (t, content) = read_tlv(r)?;
    if t != tag {
        return Err(DecodeError::UnknownTag { what, tag: t });
    }
    Ok(content)
}

/// A small non-negative BER INTEGER (one to four content bytes).
pub(crate) fn decode_small_integer(content: &[u8], what: &'static str) -> Result<u32, DecodeError> {
    if content.is_empty() || content.len() > 4 {
        return Err(DecodeError::InvalidLength {
            what,
            length: content.len() as u64,
        });
    }
    Ok(content.iter().fold(0u32, |v, b| (v << 8) | u32::from(*b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lengths() {
        for len in [0usize, 5, 127, 128, 255, 256, 1000] {
            let content = vec![0x55; len];
            let mut out = Vec::new();
            write_tlv(&mut out, 0xBE, &content);
            let mut r = Reader::new(&out);
            assert_eq!(read_tlv(&mut r).unwrap(), (0xBE, &content[..]));
            assert!(r.is_empty());
        }
    }

    #[test]
    fn bad_lengths() {
        assert!(read_tlv(&mut Reader::new(&[0x04, 0x80])).is_err());
        assert!(read_tlv(&mut Reader::new(&[0x04, 0x85, 0, 0, 0, 0, 1])).is_err());
        assert!(read_tlv(&mut Reader::new(&[0x04, 0x82, 0xFF, 0xFF, 0])).is_err());
        assert!(read_tlv(&mut Reader::new(&[0x5F, 0x01, 0x00])).is_err());
        assert!(decode_small_integer(&[], "x").is_err());
    }
}
