//! IEC 62056-21 (formerly IEC 61107) local data exchange, sans-I/O: the sign-on messages and the
//! ASCII data readout of protocol modes A, B and C (and the mode E identification, which the
//! HDLC opening in [`crate::client::mode_e`] uses).
//!
//! The exchange (IEC 62056-21 clause 6.3 messages, 6.4 protocol modes): the client sends the
//! request `/?address!` CR LF at 300 baud 7E1; the meter answers with its identification
//! `/XXXZ ident` CR LF. In mode C the client then sends the acknowledgement/option select
//! `ACK 0 Z 0` CR LF (data readout at the rate coded by Z), both switch, and the meter sends the
//! data message `STX data-block ! CR LF ETX BCC`. Mode B switches without the acknowledgement,
//! mode A does not switch at all.
//!
//! - [`sign_on`]: the request, the identification (mode and baud rate), the option select.
//! - [`message`]: the data message framing and its block check character, and a streaming
//!   reader that finds it in the bytes a line delivers.
//! - [`clock`]: the meter's date and time (0.9.2, 0.9.1) in a readout.
//! - [`data_set`]: the data lines `address(value*unit)(value)...` and their addresses as OBIS
//!   codes, values as exact decimals.

pub mod clock;
pub mod data_set;
mod error;
pub mod message;
pub mod sign_on;
pub mod units;

pub use data_set::{DataSet, Reading, ValueGroup};
pub use error::Iec21Error;
pub use message::{parse_data_message, ReadoutReader};
pub use sign_on::{Identification, ProtocolMode};
