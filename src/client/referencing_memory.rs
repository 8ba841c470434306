//! What `referencing auto` learned per meter, for the rest of the process: a meter that
//! answered in SN is associated in SN straight away after a reconnect (no LN AARQ first).

use super::error::ClientError;
use crate::dlms::session::SessionError;
use crate::dlms::sn::association::{is_context_rejection, Referencing};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

fn memory() -> &'static Mutex<HashMap<String, Referencing>> {
    static MEMORY: OnceLock<Mutex<HashMap<String, Referencing>>> = OnceLock::new();
    MEMORY.get_or_init(Mutex::default)
}

pub(crate) fn recall(key: &str) -> Option<Referencing> {
    memory().lock().ok()?.get(key).copied()
}

pub(crate) fn remember(key: String, worked: Referencing) {
    if let Ok(mut m) = memory().lock() {
        m.insert(key, worked);
    }
}

/// The meter refused the proposed application context (AARE diagnostic
/// application-context-name-not-supported, Green Book 9.4.2.2.2) or did not answer the AARQ:
/// the other referencing is worth one try (silence only where `on_silence`).
pub(crate) fn worth_the_other(e: &ClientError, on_silence: bool) -> bool {
    match e {
        ClientError::Session(SessionError::Rejected(r)) => is_context_rejection(r),
        ClientError::NoAnswer { .. } => on_silence,
        _ => false,
    }
}
