//! Starting the client's invocation counter where the meter expects it.
//!
//! A meter refuses a ciphered APDU whose invocation counter is not above the last one it
//! accepted for that key (Green Book 9.2.7.2.4, "the invocation counter shall be incremented
//! by the sender"). A client that lost its counter (new gateway, wiped database, key shared
//! with a handheld tool) reads the meter's frame counter object, a Data object 0.0.43.1.x.255
//! (Blue Book 4.4.8, x = the security setup instance, 0 for the management client on most
//! meters), over the public client (SAP 16, no security), and continues above it.

use super::error::ClientError;
use super::reads::{read_raw, Target};
use super::target::MeterTarget;
use super::Framing;
use crate::cosem::Obis;
use crate::dlms::axdr::Data;
use crate::dlms::session::SessionConfig;

/// The public client's SAP (Green Book 10.2.2: reserved, no security).
pub const PUBLIC_CLIENT: u8 = 16;

/// The usual frame counter of the management client.
pub const DEFAULT_FRAME_COUNTER: Obis = Obis::new(0, 0, 43, 1, 0, 255);

/// Reads the frame counter `obis` (class 1, attribute 2) from the meter of `target` through
/// a separate public-client association, and returns the counter to continue with.
pub fn next_counter_from_meter(target: &MeterTarget, obis: Obis) -> Result<u32, ClientError> {
    let public = MeterTarget {
        framing: match target.framing {
            Framing::Hdlc { server, .. } => Framing::Hdlc {
                client: PUBLIC_CLIENT,
                server,
            },
            Framing::Wrapper { server, .. } => Framing::Wrapper {
                client: u16::from(PUBLIC_CLIENT),
                server,
            },
        },
        session: SessionConfig {
            max_receive_pdu: target.session.max_receive_pdu,
            ..SessionConfig::default()
        },
        ..target.clone()
    };
    let mut conn = public.connect()?;
    let result = read_raw(&mut conn, &[Target::new(1, obis, 2)])?;
    conn.release();
    let value = match result.into_iter().next() {
        Some(Ok(Data::DoubleLongUnsigned(v))) => v,
        Some(Ok(other)) => {
            return Err(ClientError::FrameCounter(format!(
                "{obis} is {other:?}, not a double-long-unsigned counter"
            )))
        }
        Some(Err(e)) => {
            return Err(ClientError::FrameCounter(format!(
                "the public client cannot read {obis}: {e}"
            )))
        }
        None => return Err(ClientError::FrameCounter(format!("no answer for {obis}"))),
    };
    value.checked_add(1).ok_or_else(|| {
        ClientError::FrameCounter(format!(
            "{obis} is at its maximum: the key must be changed before it can be used again"
        ))
    })
}
