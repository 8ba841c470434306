//! The HDLC parameter negotiation block carried by SNRM and UA (IEC 62056-46 clause 6.4.4.4.3.2;
//! Green Book 8.4.5.3.2):
//!
//! ```text
//! 81 (format id) 80 (group id) LL (group length)
//!   05 len max-info-field-length-transmit
//!   06 len max-info-field-length-receive
//!   07 len window-size-transmit
//!   08 len window-size-receive
//! ```
//! Values are unsigned big-endian of 1, 2 or 4 bytes. Directions are the sender's: the client's
//! "transmit" is the server's "receive". A SNRM or UA without the block means the defaults
//! (128 bytes, window 1).

use crate::dlms::{DecodeError, Reader};

const FORMAT_ID: u8 = 0x81;
const GROUP_ID: u8 = 0x80;
const MAX_INFO_TX: u8 = 0x05;
const MAX_INFO_RX: u8 = 0x06;
const WINDOW_TX: u8 = 0x07;
const WINDOW_RX: u8 = 0x08;

/// Link parameters, seen from the side that sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkParams {
    pub max_info_tx: u16,
    pub max_info_rx: u16,
    pub window_tx: u8,
    pub window_rx: u8,
}

impl Default for LinkParams {
    /// The values that apply when the block is absent.
    fn default() -> Self {
        LinkParams {
            max_info_tx: 128,
            max_info_rx: 128,
            window_tx: 1,
            window_rx: 1,
        }
    }
}

impl LinkParams {
    /// The same parameters seen from the peer (transmit and receive swapped).
    pub fn swapped(self) -> LinkParams {
        LinkParams {
            max_info_tx: self.max_info_rx,
            max_info_rx: self.max_info_tx,
            window_tx: self.window_rx,
            window_rx: self.window_tx,
        }
    }

    /// What both sides can live with: the smaller of each proposal. `ours` and `theirs` are both
    /// seen from our side (swap the peer's block first).
    pub fn negotiate(ours: LinkParams, theirs: LinkParams) -> LinkParams {
        LinkParams {
            max_info_tx: ours.max_info_tx.min(theirs.max_info_tx),
            max_info_rx: ours.max_info_rx.min(theirs.max_info_rx),
            window_tx: ours.window_tx.min(theirs.window_tx).max(1),
            window_rx: ours.window_rx.min(theirs.window_rx).max(1),
        }
    }

    /// The parameter block. Lengths are written in the smallest form that holds the value, as
    /// meters expect (2 bytes for sizes above 255).
    pub fn emit(&self) -> Vec<u8> {
        let mut group = Vec::with_capacity(20);
        let mut put = |id: u8, value: u32| {
            group.push(id);
            if value <= 0xFF {
                group.extend_from_slice(&[1, value as u8]);
            } else if value <= 0xFFFF {
                group.push(2);
                group.extend_from_slice(&(value as u16).to_be_bytes());
            } else {
                group.push(4);
                group.extend_from_slice(&value.to_be_bytes());
            }
        };
        put(MAX_INFO_TX, u32::from(self.max_info_tx));
        put(MAX_INFO_RX, u32::from(self.max_info_rx));
        // Window sizes are always sent as 4 bytes, as in the standard's example.
        group.extend_from_slice(&[WINDOW_TX, 4]);
        group.extend_from_slice(&u32::from(self.window_tx).to_be_bytes());
        group.extend_from_slice(&[WINDOW_RX, 4]);
        group.extend_from_slice(&u32::from(self.window_rx).to_be_bytes());
        let mut out = vec![FORMAT_ID, GROUP_ID, group.len() as u8];
        out.extend_from_slice(&group);
        out
    }

    /// Parses a block; an empty input means the defaults. Unknown parameters are skipped.
    pub fn parse(bytes: &[u8]) -> Result<LinkParams, DecodeError> {
        let mut params = LinkParams::default();
        if bytes.is_empty() {
            return Ok(params);
        }
        let mut r = Reader::new(bytes);
        let format = r.u8()?;
        if format != FORMAT_ID {
            return Err(DecodeError::UnknownTag {
                what: "HDLC parameter format",
                tag: format,
            });
        }
        let group = r.u8()?;
        if group != GROUP_ID {
            return Err(DecodeError::UnknownTag {
                what: "HDLC parameter group",
                tag: group,
            });
        }
        let group_len = r.u8()? as usize;
        let mut g = Reader::new(r.bytes(group_len)?);
        r.finish()?;
        while !g.is_empty() {
            let id = g.u8()?;
            let len = g.u8()? as usize;
            let raw = g.bytes(len)?;
            if !matches!(len, 1 | 2 | 4) {
                return Err(DecodeError::InvalidLength {
                    what: "HDLC parameter",
                    length: len as u64,
                });
            }
            let value = raw.iter().fold(0u32, |v, b| (v << 8) | u32::from(*b));
            let size = |v: u32| -> Result<u16, DecodeError> {
                // The 11-bit frame length bounds any useful information field size.
                u16::try_from(v)
                    .ok()
                    .filter(|s| (32..=2030).contains(s))
                    .ok_or(DecodeError::InvalidValue {
                        what: "HDLC max information field length",
                        value: u64::from(v),
                    })
            };
            let window = |v: u32| -> Result<u8, DecodeError> {
                u8::try_from(v).ok().filter(|w| (1..=7).contains(w)).ok_or(
                    DecodeError::InvalidValue {
                        what: "HDLC window size",
                        value: u64::from(v),
                    },
                )
            };
            match id {
                MAX_INFO_TX => params.max_info_tx = size(value)?,
                MAX_INFO_RX => params.max_info_rx = size(value)?,
                WINDOW_TX => params.window_tx = window(value)?,
                WINDOW_RX => params.window_rx = window(value)?,
                _ => {}
            }
        }
        Ok(params)
    }
}

impl LinkParams {
    /// What can be recovered from a malformed block, for a client reading a UA: the group
    /// length is ignored (some servers send 0) and values out of range keep their defaults.
    /// Used only after [`LinkParams::parse`] failed: a meter that answered UA has accepted the
    /// connection, and refusing to talk over a sloppy parameter block helps nobody.
    pub fn parse_lenient(bytes: &[u8]) -> LinkParams {
        let mut params = LinkParams::default();
        let Some(mut rest) = bytes.get(3..) else {
            return params;
        };
        while let [id, len, tail @ ..] = rest {
            let len = usize::from(*len);
            let Some(raw) = tail.get(..len) else { break };
            rest = &tail[len..];
            if !matches!(len, 1 | 2 | 4) {
                continue;
            }
            let value = raw.iter().fold(0u32, |v, b| (v << 8) | u32::from(*b));
            let size = u16::try_from(value)
                .ok()
                .filter(|s| (32..=2030).contains(s));
            let window = u8::try_from(value).ok().filter(|w| (1..=7).contains(w));
            match *id {
                MAX_INFO_TX => params.max_info_tx = size.unwrap_or(params.max_info_tx),
                MAX_INFO_RX => params.max_info_rx = size.unwrap_or(params.max_info_rx),
                WINDOW_TX => params.window_tx = window.unwrap_or(params.window_tx),
                WINDOW_RX => params.window_rx = window.unwrap_or(params.window_rx),
                _ => {}
            }
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlms::test_util::hex;

    #[test]
    fn a_ua_with_one_byte_parameter_values_is_taken() {
        // Elster AS3500: every parameter value in one byte (max info 128/128, window 1/1),
        // where the standard's example uses 2 and 4.
        let p = LinkParams::parse(&hex("81800C050180060180070101080101")).unwrap();
        assert_eq!(
            (p.max_info_tx, p.max_info_rx, p.window_tx, p.window_rx),
            (128, 128, 1, 1)
        );
    }

    #[test]
    fn default_block_round_trips() {
        // Max 128/128, window 1/1, every parameter present.
        let block = hex("818012050180060180070400000001080400000001");
        let p = LinkParams::parse(&block).unwrap();
        assert_eq!(p, LinkParams::default());
        assert_eq!(p.emit(), block);
    }

    #[test]
    fn gurux_snrm_block_with_two_byte_sizes() {
        // The SNRM information field gurux-dlms sends for max info 512/512: window sizes are
        // omitted (defaults) and sizes use 2 bytes.
        let p = LinkParams::parse(&hex("8180080502020006020200")).unwrap();
        assert_eq!((p.max_info_tx, p.max_info_rx), (512, 512));
        assert_eq!((p.window_tx, p.window_rx), (1, 1));
    }

    #[test]
    fn lenient_parse_of_a_gurux_server_ua() {
        // The UA gurux-dlms 1.0.203's server sends: group length 0, and its attempt to patch the
        // length wrote 0x02 into the window-size-receive value instead.
        let ua = hex("818000050180060180070400000001080400020001");
        assert!(LinkParams::parse(&ua).is_err());
        let p = LinkParams::parse_lenient(&ua);
        assert_eq!(p, LinkParams::default());
        let big = hex("81801405020200060204000704000000010804000000FF");
        let p = LinkParams::parse_lenient(&big);
        assert_eq!((p.max_info_tx, p.max_info_rx, p.window_rx), (512, 1024, 1));
        assert_eq!(LinkParams::parse_lenient(&[0x81]), LinkParams::default());
    }

    #[test]
    fn two_byte_sizes_and_swapping() {
        let p = LinkParams {
            max_info_tx: 1024,
            max_info_rx: 512,
            window_tx: 1,
            window_rx: 7,
        };
        let bytes = p.emit();
        assert_eq!(&bytes[3..7], &[0x05, 0x02, 0x04, 0x00]);
        assert_eq!(LinkParams::parse(&bytes).unwrap(), p);
        assert_eq!(p.swapped().max_info_tx, 512);
        let agreed = LinkParams::negotiate(p, LinkParams::default());
        assert_eq!(agreed, LinkParams::default());
    }

    #[test]
    fn empty_means_defaults_and_bad_blocks_are_errors() {
        assert_eq!(LinkParams::parse(&[]).unwrap(), LinkParams::default());
        assert!(LinkParams::parse(&[0x81, 0x80, 0x05, 0x05, 0x01]).is_err());
        assert!(LinkParams::parse(&hex("8180030501FF")).is_ok());
        assert!(LinkParams::parse(&hex("81800305010A")).is_err()); // 10 bytes is not a size
        assert!(LinkParams::parse(&hex("8180060704000000FF")).is_err()); // window 255
        assert!(LinkParams::parse(&hex("8180050503000080")).is_err()); // 3-byte value
    }
}
