//! The DLMS/COSEM protocol stack, free of I/O.
//!
//! Layers, bottom-up (the references are the DLMS UA Green Book, DLMS UA 1000-2 Ed. 10):
//! - [`hdlc`]: IEC 62056-46 data link layer (frames, deframer, link state machine).
//! - [`wrapper`]: IEC 62056-47 TCP/UDP wrapper header.
//! - [`axdr`]: A-XDR encoding of COSEM `Data` (Green Book 9.5).
//! - [`ber`] and [`acse`]: association establishment and release (Green Book 9.4.2).
//! - [`xdlms`]: GET/SET/ACTION services and the InitiateRequest/Response (Green Book 9.3, 9.5).
//! - [`sn`]: the short-name services (ReadRequest/WriteRequest/InformationReport, Green Book 9.3.x).
//!
//! Every decoder takes a complete input slice and returns a typed [`DecodeError`] on malformed
//! input: none of them panics, whatever the bytes (each has a fuzz target under `fuzz/`).

pub mod acse;
pub mod axdr;
pub mod ber;
pub mod describe;
mod error;
pub mod hdlc;
pub mod hls;
pub mod invoke_match;
pub(crate) mod reader;
pub mod security;
pub mod session;
pub mod sn;
pub mod wrapper;
pub mod xdlms;

pub use error::DecodeError;
pub(crate) use reader::Reader;

/// Helpers shared by the protocol tests.
#[cfg(test)]
pub(crate) mod test_util {
    /// Bytes from hex digits; whitespace is ignored (a test vector that is not hex panics).
    pub fn hex(s: &str) -> Vec<u8> {
        crate::hex::parse(s).unwrap_or_else(|| panic!("not hex: {s}"))
    }
}
