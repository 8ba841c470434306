//! One line of text per APDU (Green Book DLMS UA 1000-2 Ed. 10, 9.5 the COSEMpdu module and
//! 9.4.2.2 the ACSE APDUs), for traces and the `decode-*` commands. Ciphered APDUs show their
//! security header and are opened only when the keys were given (never in the bridge's ring).

use super::cipher::{self, DecodeKeys};
use super::services::{
    action_request_text, action_response_text, get_request_text, get_response_text,
    set_request_text, set_response_text,
};
use super::value::{hex, value_text};
use crate::dlms::acse::{Aare, Aarq, AssociationResult, ReleaseReason};
use crate::dlms::xdlms::notification::{DataNotification, DATA_NOTIFICATION};
use crate::dlms::xdlms::{Apdu, InitiateRequest, InitiateResponse};
use std::fmt::Write;

/// General-Block-Transfer (Green Book 9.5, tag 0xE0).
pub const GENERAL_BLOCK_TRANSFER: u8 = 0xE0;

/// A ciphered APDU inside a ciphered one is not opened again (bounds the recursion).
const MAX_NESTING: u8 = 2;

/// Describes one complete APDU; never fails (what cannot be decoded says why).
pub fn describe_apdu(apdu: &[u8], keys: &mut DecodeKeys) -> String {
    describe_nested(apdu, keys, 0)
}

/// A General-Block-Transfer block (IEC 62056-5-3 9.3.11): its control, numbers and data; an
/// APDU that fits in one block (block 1, last) is described inside it. Blocks of a longer APDU
/// are joined by the receiver (`xdlms::gbt::join_blocks`), not here.
fn general_block_text(apdu: &[u8], keys: &mut DecodeKeys, depth: u8) -> String {
    let b = match crate::dlms::xdlms::gbt::GeneralBlock::decode(apdu) {
        Ok(b) => b,
        Err(e) => return format!("General-Block-Transfer (not decoded: {e})"),
    };
    let mut text = format!(
        "General-Block-Transfer block {}{}{}, window {}, ack {}, {} bytes of data",
        b.block_number,
        if b.control.last_block { " (last)" } else { "" },
        if b.control.streaming {
            " streaming"
        } else {
            ""
        },
        b.control.window,
        b.block_number_ack,
        b.block_data.len()
    );
    if b.control.last_block && b.block_number == 1 && !b.block_data.is_empty() {
        if depth < MAX_NESTING {
            let _ = write!(
                text,
                ": {}",
                describe_nested(&b.block_data, keys, depth + 1)
            );
        }
    } else if b.block_number == 1 && !b.block_data.is_empty() {
        let _ = write!(text, " (first block of an APDU {:02X}..)", b.block_data[0]);
    }
    text
}

pub(super) fn describe_nested(apdu: &[u8], keys: &mut DecodeKeys, depth: u8) -> String {
    let Some(&tag) = apdu.first() else {
        return "empty APDU".to_string();
    };
    if let Some(name) = cipher::ciphered_name(tag) {
        return if depth < MAX_NESTING {
            cipher::describe_ciphered(name, apdu, keys, depth)
        } else {
            format!("{name} (nested too deeply, not opened)")
        };
    }
    match tag {
        DATA_NOTIFICATION => match DataNotification::decode(apdu) {
            Ok(n) => notification_text(&n),
            Err(e) => format!("DATA-NOTIFICATION (not decoded: {e})"),
        },
        GENERAL_BLOCK_TRANSFER => general_block_text(apdu, keys, depth),
        0x05 | 0x06 | 0x0C | 0x0D | 0x16 | 0x18 => {
            crate::dlms::sn::describe(apdu).unwrap_or_else(|| {
                format!(
                    "short-name {} (not decoded), {} bytes",
                    short_name_service(tag),
                    apdu.len()
                )
            })
        }
        _ => match Apdu::decode(apdu) {
            Ok(decoded) => plain_text(&decoded, keys, depth),
            Err(e) => format!("{} (not decoded: {e})", plain_name(tag)),
        },
    }
}

/// Short-name referencing services (Green Book 9.5, the SN xDLMS APDUs).
fn short_name_service(tag: u8) -> &'static str {
    match tag {
        0x05 => "ReadRequest",
        0x06 => "WriteRequest",
        0x0C => "ReadResponse",
        0x0D => "WriteResponse",
        0x16 => "UnconfirmedWriteRequest",
        _ => "InformationReportRequest",
    }
}

fn plain_name(tag: u8) -> String {
    match tag {
        0x60 => "AARQ".into(),
        0x61 => "AARE".into(),
        0x62 => "RLRQ".into(),
        0x63 => "RLRE".into(),
        0x01 => "InitiateRequest".into(),
        0x08 => "InitiateResponse".into(),
        0x0E => "ConfirmedServiceError".into(),
        0xC0 => "GET-Request".into(),
        0xC1 => "SET-Request".into(),
        0xC3 => "ACTION-Request".into(),
        0xC4 => "GET-Response".into(),
        0xC5 => "SET-Response".into(),
        0xC7 => "ACTION-Response".into(),
        0xD8 => "ExceptionResponse".into(),
        t => format!("unknown APDU tag 0x{t:02X}"),
    }
}

fn plain_text(apdu: &Apdu, keys: &mut DecodeKeys, depth: u8) -> String {
    match apdu {
        Apdu::Aarq(a) => aarq_text(a, keys, depth),
        Apdu::Aare(a) => aare_text(a, keys, depth),
        Apdu::Rlrq(r) => release_text("RLRQ", r.reason, r.user_information.as_deref(), keys),
        Apdu::Rlre(r) => release_text("RLRE", r.reason, r.user_information.as_deref(), keys),
        Apdu::InitiateRequest(i) => initiate_request_text(i, keys),
        Apdu::InitiateResponse(i) => initiate_response_text(i),
        Apdu::ConfirmedServiceError(e) => format!("ConfirmedServiceError: {e}"),
        Apdu::GetRequest(g) => get_request_text(g),
        Apdu::GetResponse(g) => get_response_text(g),
        Apdu::SetRequest(s) => set_request_text(s),
        Apdu::SetResponse(s) => set_response_text(s),
        Apdu::ActionRequest(a) => action_request_text(a),
        Apdu::ActionResponse(a) => action_response_text(a),
        Apdu::ExceptionResponse(e) => format!("ExceptionResponse: {e}"),
        // Recognised by the dispatcher but without a describer name: shown by its tag.
        Apdu::Ciphered(b) => format!("ciphered APDU, {} bytes", b.len()),
    }
}

/// AARQ (Green Book 9.4.2.2): the calling-authentication-value is a password (LLS) or a
/// challenge (HLS) and is never shown, only its length.
fn aarq_text(a: &Aarq, keys: &mut DecodeKeys, depth: u8) -> String {
    let mut t = format!("AARQ {:?}", a.application_context);
    if let Some(title) = &a.calling_ap_title {
        let _ = write!(t, ", calling-AP-title {}", hex(title));
        if let Ok(title) = <[u8; 8]>::try_from(title.as_slice()) {
            keys.client_title = Some(title);
        }
    }
    if let Some(m) = a.mechanism {
        let _ = write!(t, ", mechanism {m:?}");
    }
    if let Some(v) = &a.calling_authentication_value {
        let _ = write!(
            t,
            ", calling-authentication-value ({} bytes, masked)",
            v.len()
        );
    }
    if let Some(ui) = &a.user_information {
        let _ = write!(
            t,
            ", user-information: {}",
            describe_nested(ui, keys, depth)
        );
    }
    t
}

fn aare_text(a: &Aare, keys: &mut DecodeKeys, depth: u8) -> String {
    let result = match a.result {
        AssociationResult::Accepted => "accepted".to_string(),
        AssociationResult::RejectedPermanent => "rejected-permanent".to_string(),
        AssociationResult::RejectedTransient => "rejected-transient".to_string(),
        AssociationResult::Unknown(v) => format!("result {v}"),
    };
    let mut t = format!(
        "AARE {result} {:?}, diagnostic {}",
        a.application_context, a.diagnostic
    );
    if let Some(title) = &a.responding_ap_title {
        let _ = write!(t, ", responding-AP-title {}", hex(title));
        if let Ok(title) = <[u8; 8]>::try_from(title.as_slice()) {
            keys.server_title = Some(title);
        }
    }
    if let Some(m) = a.mechanism {
        let _ = write!(t, ", mechanism {m:?}");
    }
    if let Some(v) = &a.responding_authentication_value {
        let _ = write!(t, ", challenge StoC ({} bytes)", v.len());
    }
    if let Some(ui) = &a.user_information {
        let _ = write!(
            t,
            ", user-information: {}",
            describe_nested(ui, keys, depth)
        );
    }
    t
}

fn release_text(
    name: &str,
    reason: Option<ReleaseReason>,
    user_information: Option<&[u8]>,
    keys: &mut DecodeKeys,
) -> String {
    let mut t = name.to_string();
    if let Some(r) = reason {
        let _ = write!(t, " reason {r:?}");
    }
    if let Some(ui) = user_information {
        let _ = write!(t, ", user-information: {}", describe_apdu(ui, keys));
    }
    t
}

/// xDLMS InitiateRequest (Green Book 9.5, "xDLMS-Initiate"): a dedicated key is remembered
/// for the ded- APDUs that follow and never shown.
fn initiate_request_text(i: &InitiateRequest, keys: &mut DecodeKeys) -> String {
    let mut t = format!(
        "InitiateRequest dlms-version {}, conformance [{}], client-max-receive-pdu-size {}",
        i.proposed_dlms_version,
        i.proposed_conformance.names().join(", "),
        i.client_max_receive_pdu_size
    );
    if let Some(key) = &i.dedicated_key {
        let _ = write!(t, ", dedicated-key ({} bytes, masked)", key.len());
        if let Ok(key) = <[u8; 16]>::try_from(key.as_slice()) {
            keys.dedicated = Some(key);
        }
    }
    t
}

fn initiate_response_text(i: &InitiateResponse) -> String {
    format!(
        "InitiateResponse dlms-version {}, conformance [{}], server-max-receive-pdu-size {}, vaa-name 0x{:04X}",
        i.negotiated_dlms_version,
        i.negotiated_conformance.names().join(", "),
        i.server_max_receive_pdu_size,
        i.vaa_name
    )
}

fn notification_text(n: &DataNotification) -> String {
    let time = n
        .date_time
        .as_ref()
        .map(super::value::date_time_text)
        .unwrap_or_else(|| "none".to_string());
    format!(
        "DATA-NOTIFICATION long-invoke-id {}, date-time {time}, data {}",
        n.long_invoke_id,
        value_text(&n.body)
    )
}
