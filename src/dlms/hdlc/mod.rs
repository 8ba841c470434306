//! IEC 62056-46 HDLC data link layer (Green Book 8.4), as used by DLMS meters over serial lines
//! and over raw TCP (where frames are *not* byte-stuffed).
//!
//! - [`fcs`]: the CRC-16/X.25 used for HCS and FCS.
//! - [`address`]: client and server addresses in their 1, 2 and 4-byte forms.
//! - [`control`]: the control field (I, RR, RNR, SNRM, DISC, UA, DM, FRMR, UI).
//! - [`frame`]: one frame, parsed from and emitted to bytes.
//! - [`params`]: the SNRM/UA parameter negotiation block.
//! - [`deframer`]: a streaming frame finder that trusts the length field, never the next 0x7E.
//! - [`link`]: the link state machine (connect, segmentation, reassembly, N(S)/N(R)).

pub mod address;
pub mod control;
pub mod deframer;
pub mod fcs;
pub mod frame;
pub mod link;
pub mod params;

pub use address::{Address, ServerAddress};
pub use control::Control;
pub use deframer::Deframer;
pub use frame::{Frame, FrameTooLong, RawAddress};
pub use link::{Link, LinkError, LinkEvent, Role};
pub use params::LinkParams;

/// The flag that opens and closes every frame.
pub const FLAG: u8 = 0x7E;

/// LLC header on I-frames from client to server (Green Book 8.4.3.4: destination LSAP 0xE6,
/// source LSAP 0xE6, quality 0x00).
pub const LLC_REQUEST: [u8; 3] = [0xE6, 0xE6, 0x00];
/// LLC header on I-frames from server to client (source LSAP 0xE7 marks a response).
pub const LLC_RESPONSE: [u8; 3] = [0xE6, 0xE7, 0x00];
