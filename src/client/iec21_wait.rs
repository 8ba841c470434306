//! The wait both IEC 62056-21 openings share (the mode E sign-on and the mode A/B/C readout):
//! more bytes of a line, 7 data bits (the parity bit of 7E1 stripped), until a deadline; at the
//! deadline a time-out that says whether anything came.

use super::error::{ClientError, Heard};
use super::transport::Transport;
use std::time::{Duration, Instant};

/// Appends what arrives before `deadline` to `line`; `NoAnswer` (after `timeout`, for
/// `waiting_for`) once the deadline has passed.
pub fn receive_7bit<T: Transport + ?Sized>(
    t: &mut T,
    line: &mut Vec<u8>,
    deadline: Instant,
    timeout: Duration,
    waiting_for: &'static str,
) -> Result<(), ClientError> {
    let now = Instant::now();
    if now >= deadline {
        return Err(ClientError::NoAnswer {
            waiting_for,
            after: timeout,
            heard: if line.is_empty() {
                Heard::Nothing
            } else {
                Heard::Incomplete(line.len() as u64)
            },
        });
    }
    let mut buf = [0u8; 256];
    let n = t.recv(&mut buf, deadline - now)?;
    line.extend(buf.get(..n).unwrap_or_default().iter().map(|b| b & 0x7F));
    Ok(())
}
