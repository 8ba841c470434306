//! The meter side of an association, sans-I/O: one APDU in, at most one APDU out.
//!
//! It accepts AARQs with no authentication or with the configured LLS password, negotiates
//! conformance and PDU size, answers GET (normal, with-list, with block transfer when the answer
//! exceeds the client's receive size), SET of the clock, and RLRQ. Anything else gets the
//! answer a strict meter would give.
//!
//! With security configured it behaves like a meter with a management client that must use
//! suite-0 ciphering (glo-, ded- with the client's dedicated key, or general-glo/ded once
//! general-protection is negotiated; answers use the envelope of the request), optionally
//! HLS-GMAC, and a public client (plain AARQ, no authentication) that may read only the frame
//! counter 0.0.43.1.0.255: the last invocation counter received from the management client,
//! which the meter tracks across associations and refuses to see repeated.

#[path = "short_names.rs"]
mod short_names;

use super::model::{MeterModel, CLASS_CLOCK, CLASS_DISCONNECT_CONTROL, CLOCK, DISCONNECT_CONTROL};
use crate::dlms::acse::{
    Aare, Aarq, ApplicationContext, AssociationResult, Mechanism, ReleaseReason,
    ResultSourceDiagnostic, Rlre,
};
use crate::dlms::axdr::Data;
use crate::dlms::security::{self, Keys, Protection};
use crate::dlms::xdlms::AttributeDescriptor;
use crate::dlms::xdlms::{
    ActionRequest, ActionResponse, Apdu, ConfirmedServiceError, Conformance, DataAccessResult,
    ExceptionResponse, GetDataResult, GetRequest, GetResponse, InitiateRequest, InitiateResponse,
    InvokeIdAndPriority, SetRequest, SetResponse, DLMS_VERSION, VAA_NAME_LN,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the simulated meter grants.
pub const SERVER_CONFORMANCE: Conformance = Conformance(
    Conformance::BLOCK_TRANSFER_WITH_GET
        | Conformance::MULTIPLE_REFERENCES
        | Conformance::GET
        | Conformance::SET
        | Conformance::SELECTIVE_ACCESS
        | Conformance::ACTION,
);

/// The frame counter object of the management client's security setup (Blue Book 4.4.8:
/// invocation counters are Data objects 0.0.43.1.x.255).
pub const FRAME_COUNTER: crate::cosem::Obis = crate::cosem::Obis::new(0, 0, 43, 1, 0, 255);

/// Suite-0 security of the simulated meter.
#[derive(Debug, Clone)]
pub struct ServerSecurity {
    pub keys: Keys,
    pub server_title: [u8; 8],
    /// Require HLS-GMAC (mechanism 5) rather than no authentication.
    pub hls: bool,
    /// The last invocation counter received from each client system title, shared by every
    /// connection to this meter: a counter is accepted once, ever.
    pub received_counters: Arc<Mutex<HashMap<[u8; 8], u32>>>,
    /// The meter's own invocation counter, shared by every connection: it never restarts.
    pub own_counter: Arc<std::sync::atomic::AtomicU32>,
}

impl ServerSecurity {
    pub fn new(keys: Keys, server_title: [u8; 8], hls: bool) -> ServerSecurity {
        ServerSecurity {
            keys,
            server_title,
            hls,
            received_counters: Arc::default(),
            own_counter: Arc::new(1.into()),
        }
    }

    /// The last invocation counter received (from any client): what the frame counter shows
    /// (a simulator has one management client; with several, the highest is safe for all).
    pub fn last_received_counter(&self) -> u32 {
        self.received_counters
            .lock()
            .map_or(0, |m| m.values().copied().max().unwrap_or(0))
    }

    /// Accepts `ic` from `client` only if it is above every counter received from it before.
    fn accept_counter(&self, client: &[u8; 8], ic: u32) -> bool {
        let Ok(mut seen) = self.received_counters.lock() else {
            return false;
        };
        match seen.get(client) {
            Some(&last) if ic <= last => false,
            _ => {
                seen.insert(*client, ic);
                true
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// LLS password; `None` accepts clients without authentication.
    pub password: Option<Vec<u8>>,
    /// Ciphered associations only (glo- APDUs), optionally with HLS-GMAC.
    pub security: Option<ServerSecurity>,
    pub max_receive_pdu: u16,
    pub conformance: Conformance,
    /// The disconnect control's state (Blue Book 4.5.8 control_state: 0 disconnected,
    /// 1 connected, 2 ready for reconnection), shared by every connection to this meter.
    pub relay: Arc<std::sync::atomic::AtomicU8>,
    /// LN only (the default), SN only, or both (`auto`): see `short_names.rs`.
    pub referencing: crate::dlms::sn::association::Referencing,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            password: None,
            security: None,
            max_receive_pdu: 1024,
            conformance: SERVER_CONFORMANCE,
            relay: Arc::new(1.into()),
            referencing: crate::dlms::sn::association::Referencing::Ln,
        }
    }
}

#[derive(Debug)]
struct PendingBlocks {
    invoke: InvokeIdAndPriority,
    data: Vec<u8>,
    chunk: usize,
    sent: u32,
}

/// The security state of one association.
#[derive(Debug)]
struct Ciphering {
    client_title: [u8; 8],
    protection: Protection,
    dedicated_key: Option<[u8; 16]>,
    ctos: Vec<u8>,
    stoc: Vec<u8>,
    hls_pending: bool,
}

#[derive(Debug)]
pub struct ServerSession {
    model: MeterModel,
    config: ServerConfig,
    ciphering: Option<Ciphering>,
    /// (granted conformance, client's max receive PDU).
    association: Option<(Conformance, usize)>,
    /// The association is the public client's of a secured meter: frame counter only.
    public: bool,
    pending: Option<PendingBlocks>,
    gbt: super::gbt::GbtSender,
    sn: short_names::ShortNameFront,
}

impl ServerSession {
    pub fn new(model: MeterModel, config: ServerConfig) -> Self {
        ServerSession {
            model,
            config,
            ciphering: None,
            association: None,
            public: false,
            pending: None,
            gbt: super::gbt::GbtSender::default(),
            sn: short_names::ShortNameFront::default(),
        }
    }

    pub fn is_associated(&self) -> bool {
        self.association.is_some()
    }

    /// Handles one request APDU at system time `now` (Unix seconds). In a ciphered
    /// association requests are deciphered and answers ciphered here; where general block
    /// transfer was granted, a long answer then goes out in blocks ([`super::gbt`]).
    pub fn handle(&mut self, apdu: &[u8], now: i64) -> Option<Vec<u8>> {
        if apdu.first() == Some(&crate::dlms::xdlms::gbt::GENERAL_BLOCK_TRANSFER) {
            return Some(self.gbt.on_block(apdu).unwrap_or_else(|| exception(1, 1)));
        }
        let answer = self.handle_unblocked(apdu, now)?;
        Some(match self.association {
            Some((granted, client_pdu)) if granted.has(Conformance::GENERAL_BLOCK_TRANSFER) => {
                self.gbt.start(answer, client_pdu)
            }
            _ => answer,
        })
    }

    fn handle_unblocked(&mut self, apdu: &[u8], now: i64) -> Option<Vec<u8>> {
        let first = apdu.first().copied().unwrap_or(0);
        if !crate::dlms::xdlms::is_ciphered_tag(first) || first == 0x21 {
            let secured = self.config.security.is_some() && !self.public;
            if secured && matches!(first, 0xC0 | 0xC1 | 0xC3 | 0x05 | 0x06) {
                return Some(exception(1, 1)); // plain request in a ciphered association
            }
            return self.handle_plain(apdu, now);
        }
        let (Some(sec), Some(c)) = (self.config.security.clone(), self.ciphering.as_mut()) else {
            return Some(exception(1, 1));
        };
        let opened = security::open_apdu(
            &sec.keys,
            c.dedicated_key.as_ref(),
            Some(&c.client_title),
            apdu,
        );
        let (plain, envelope) = match opened {
            Ok(o) if sec.accept_counter(&c.client_title, o.invocation_counter) => {
                (o.plain, o.envelope)
            }
            Ok(o) => {
                let ic = o.invocation_counter;
                return Some(
                    ExceptionResponse {
                        state_error: 1,
                        service_error: 6,
                        invocation_counter: Some(ic),
                    }
                    .encode(),
                );
            }
            Err(_) => return Some(exception(1, 5)), // deciphering error
        };
        let protection = c.protection;
        let dedicated = c.dedicated_key;
        let answer = self.handle_plain(&plain, now)?;
        // An exception-response has no glo-/ded- form (IEC 62056-5-3 clause 8): it goes plain
        // unless the association uses the general-ciphering envelopes.
        let first = answer.first().copied().unwrap_or(0);
        if !envelope.is_general() && security::glo_tag(first).is_none() {
            return Some(answer);
        }
        let ic = self.next_ic();
        security::seal_apdu(
            &sec.keys,
            dedicated.as_ref(),
            envelope,
            &sec.server_title,
            ic,
            protection,
            &answer,
        )
        .ok()
    }

    /// The meter's next invocation counter (only ciphered associations use one).
    fn next_ic(&mut self) -> u32 {
        self.config.security.as_ref().map_or(0, |sec| {
            sec.own_counter
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        })
    }

    fn handle_plain(&mut self, apdu: &[u8], now: i64) -> Option<Vec<u8>> {
        if let Some(answer) = self.short_name_front(apdu, now) {
            return answer;
        }
        self.handle_ln(apdu, now)
    }

    fn handle_ln(&mut self, apdu: &[u8], now: i64) -> Option<Vec<u8>> {
        let meter_now = now
            + self
                .model
                .clock_offset
                .load(std::sync::atomic::Ordering::Relaxed);
        let decoded = match Apdu::decode(apdu) {
            Ok(a) => a,
            Err(_) => return Some(exception(2, 2)),
        };
        // Until HLS-GMAC pass 3 succeeded, only the reply (or a new AARQ / RLRQ) is served.
        let hls_pending = self.ciphering.as_ref().is_some_and(|c| c.hls_pending);
        if hls_pending && !matches!(decoded, Apdu::Aarq(_) | Apdu::Rlrq(_)) {
            return Some(match decoded {
                Apdu::ActionRequest(req) => self.reply_to_hls(req),
                _ => exception(1, 1),
            });
        }
        match decoded {
            Apdu::Aarq(aarq) => Some(self.associate(&aarq)),
            Apdu::Rlrq(_) => {
                self.association = None;
                self.pending = None;
                Some(
                    Rlre {
                        reason: Some(ReleaseReason::Normal),
                        user_information: None,
                    }
                    .encode(),
                )
            }
            Apdu::GetRequest(req) => Some(match self.association {
                None => exception(1, 1),
                Some((conformance, client_pdu)) => {
                    self.get(req, conformance, client_pdu, meter_now)
                }
            }),
            Apdu::SetRequest(req) => Some(match self.association {
                None => exception(1, 1),
                Some(_) => self.set(req, now),
            }),
            Apdu::ActionRequest(req) => Some(match self.association {
                None => exception(1, 1),
                Some(_) => self.action(req),
            }),
            _ => Some(exception(2, 2)),
        }
    }

    fn associate(&mut self, aarq: &Aarq) -> Vec<u8> {
        self.association = None;
        self.ciphering = None;
        self.public = false;
        let public = aarq.application_context == ApplicationContext::LogicalName
            && matches!(aarq.mechanism, None | Some(Mechanism::Lowest));
        if let Some(sec) = self.config.security.clone() {
            if !public {
                return self.associate_ciphered(aarq, &sec);
            }
            self.public = true;
        }
        let reject = |diag: u8, ui: Option<Vec<u8>>| {
            Aare {
                application_context: aarq.application_context,
                result: AssociationResult::RejectedPermanent,
                diagnostic: ResultSourceDiagnostic::User(diag),
                responding_ap_title: None,
                mechanism: aarq.mechanism,
                responding_authentication_value: None,
                user_information: ui,
            }
            .encode()
        };
        if aarq.application_context != ApplicationContext::LogicalName {
            return reject(2, None);
        }
        match (
            &self.config.password,
            aarq.mechanism,
            &aarq.calling_authentication_value,
        ) {
            (None, None | Some(Mechanism::Lowest), _) => {}
            (None, Some(_), _) => return reject(11, None),
            (Some(_), None | Some(Mechanism::Lowest), _) if !self.public => {
                return reject(14, None)
            }
            (Some(_), None | Some(Mechanism::Lowest), _) => {}
            (Some(pw), Some(Mechanism::Low), Some(given)) if pw == given => {}
            (Some(_), Some(Mechanism::Low), _) => return reject(13, None),
            (Some(_), Some(_), _) => return reject(11, None),
        }
        let Some(initiate) = aarq
            .user_information
            .as_deref()
            .and_then(|ui| InitiateRequest::decode(ui).ok())
        else {
            return reject(1, None);
        };
        let initiate_error = |code| {
            Some(
                ConfirmedServiceError {
                    service: 1,
                    error_class: 6,
                    error: code,
                }
                .encode(),
            )
        };
        let (granted, pdu, response) = match self.negotiate(&initiate) {
            Ok(n) => n,
            Err(code) => return reject(1, initiate_error(code)),
        };
        self.association = Some((granted, pdu));
        self.pending = None;
        Aare {
            application_context: ApplicationContext::LogicalName,
            result: AssociationResult::Accepted,
            diagnostic: ResultSourceDiagnostic::User(0),
            responding_ap_title: None,
            mechanism: aarq.mechanism,
            responding_authentication_value: None,
            user_information: Some(response),
        }
        .encode()
    }

    /// The xDLMS negotiation shared by plain and ciphered associations: granted conformance,
    /// the answer size limit, and the encoded InitiateResponse; or the initiate error code
    /// (1 DLMS version too low, 3 PDU size too short).
    fn negotiate(&self, initiate: &InitiateRequest) -> Result<(Conformance, usize, Vec<u8>), u8> {
        if initiate.proposed_dlms_version < DLMS_VERSION {
            return Err(1);
        }
        if initiate.client_max_receive_pdu_size < 64 {
            return Err(3);
        }
        let mut offered = self.config.conformance;
        if self.config.security.is_some() {
            offered = Conformance(offered.0 | Conformance::GENERAL_PROTECTION);
        }
        let granted = initiate.proposed_conformance.intersect(offered);
        // Answers are limited by the client's receive size and by our own PDU size, as on
        // real meters (their send buffer is their receive buffer).
        let pdu = initiate
            .client_max_receive_pdu_size
            .min(self.config.max_receive_pdu);
        let response = InitiateResponse {
            negotiated_quality_of_service: None,
            negotiated_dlms_version: DLMS_VERSION,
            negotiated_conformance: granted,
            server_max_receive_pdu_size: self.config.max_receive_pdu,
            vaa_name: VAA_NAME_LN,
        }
        .encode();
        Ok((granted, usize::from(pdu), response))
    }

    fn associate_ciphered(&mut self, aarq: &Aarq, sec: &ServerSecurity) -> Vec<u8> {
        let reject = |diag: u8| {
            Aare {
                application_context: aarq.application_context,
                result: AssociationResult::RejectedPermanent,
                diagnostic: ResultSourceDiagnostic::User(diag),
                responding_ap_title: Some(sec.server_title.to_vec()),
                mechanism: aarq.mechanism,
                responding_authentication_value: None,
                user_information: None,
            }
            .encode()
        };
        if aarq.application_context != ApplicationContext::LogicalNameCiphered {
            return reject(2);
        }
        let Some(client_title) = aarq
            .calling_ap_title
            .as_deref()
            .and_then(|t| <[u8; 8]>::try_from(t).ok())
        else {
            return reject(3);
        };
        let ctos = match (sec.hls, aarq.mechanism, &aarq.calling_authentication_value) {
            (true, Some(Mechanism::HighGmac), Some(c)) if (8..=64).contains(&c.len()) => c.clone(),
            (true, Some(Mechanism::HighGmac), _) => return reject(13),
            (true, _, _) => return reject(14),
            (false, None | Some(Mechanism::Lowest), _) => Vec::new(),
            (false, _, _) => return reject(11),
        };
        let Some(glo) = aarq.user_information.as_deref() else {
            return reject(1);
        };
        // Wrong keys or title: the glo-initiate does not decipher.
        let Ok((plain, ic)) = security::decipher_apdu(&sec.keys, &client_title, glo) else {
            return reject(13);
        };
        // A counter seen before: a replayed AARQ, or a client that lost its counter (it can
        // read the frame counter over the public client and continue above it).
        if !sec.accept_counter(&client_title, ic) {
            return reject(1);
        }
        // Answer with the protection the client chose (its security control byte).
        let protection = match glo.get(2).map(|sc| sc & 0x30) {
            Some(0x10) => Protection::Authenticated,
            Some(0x20) => Protection::Encrypted,
            _ => Protection::AuthenticatedEncrypted,
        };
        let Ok(initiate) = InitiateRequest::decode(&plain) else {
            return reject(1);
        };
        let Ok((granted, pdu, response)) = self.negotiate(&initiate) else {
            return reject(1);
        };
        let ic = self.next_ic();
        let Ok(glo_response) =
            security::cipher_apdu(&sec.keys, &sec.server_title, ic, protection, &response)
        else {
            return reject(1);
        };
        // A per-association challenge; a simulator needs no secret randomness.
        let stoc: Vec<u8> = format!("SIMSTOC{ic:09}").into_bytes();
        self.ciphering = Some(Ciphering {
            client_title,
            protection,
            dedicated_key: initiate
                .dedicated_key
                .as_deref()
                .and_then(|k| <[u8; 16]>::try_from(k).ok()),
            ctos,
            stoc: stoc.clone(),
            hls_pending: sec.hls,
        });
        self.association = Some((granted, pdu));
        self.pending = None;
        Aare {
            application_context: ApplicationContext::LogicalNameCiphered,
            result: AssociationResult::Accepted,
            diagnostic: ResultSourceDiagnostic::User(if sec.hls { 14 } else { 0 }),
            responding_ap_title: Some(sec.server_title.to_vec()),
            mechanism: aarq.mechanism,
            responding_authentication_value: sec.hls.then_some(stoc),
            user_information: Some(glo_response),
        }
        .encode()
    }

    /// HLS-GMAC passes 3 and 4 (Green Book 9.2.7.4): check f(StoC), answer f(CtoS).
    fn reply_to_hls(&mut self, req: ActionRequest) -> Vec<u8> {
        let ActionRequest::Normal {
            invoke,
            method,
            parameters,
        } = req
        else {
            return exception(1, 2);
        };
        let refuse = |this: &mut Self| {
            this.association = None;
            this.ciphering = None;
            ActionResponse::Normal {
                invoke,
                result: DataAccessResult::READ_WRITE_DENIED,
                return_parameters: None,
            }
            .encode()
        };
        let (Some(sec), Some(c)) = (self.config.security.clone(), self.ciphering.as_ref()) else {
            return refuse(self);
        };
        let is_reply = (method.class_id, method.instance, method.method)
            == (15, crate::cosem::Obis::new(0, 0, 40, 0, 0, 255), 1);
        let f = match parameters {
            Some(Data::OctetString(f)) if is_reply => f,
            _ => return refuse(self),
        };
        if security::verify_gmac_response(&sec.keys, &c.client_title, &c.stoc, &f).is_err() {
            return refuse(self);
        }
        let ctos = c.ctos.clone();
        let ic = self.next_ic();
        if let Some(c) = self.ciphering.as_mut() {
            c.hls_pending = false;
        }
        let answer = security::gmac_response(&sec.keys, &sec.server_title, ic, &ctos);
        ActionResponse::Normal {
            invoke,
            result: DataAccessResult::SUCCESS,
            return_parameters: Some(Ok(Data::OctetString(answer))),
        }
        .encode()
    }

    fn get(
        &mut self,
        req: GetRequest,
        conformance: Conformance,
        client_pdu: usize,
        now: i64,
    ) -> Vec<u8> {
        let frame_counter = self
            .config
            .security
            .as_ref()
            .map(ServerSecurity::last_received_counter);
        let public = self.public;
        let relay = self.config.relay.clone();
        let read = |a: &AttributeDescriptor, access: &Option<_>| -> GetDataResult {
            match frame_counter {
                Some(ic) if (a.class_id, a.instance, a.attribute) == (1, FRAME_COUNTER, 2) => {
                    Ok(Data::DoubleLongUnsigned(ic))
                }
                Some(_) if public => Err(DataAccessResult::READ_WRITE_DENIED),
                _ if (a.class_id, a.instance) == (CLASS_DISCONNECT_CONTROL, DISCONNECT_CONTROL)
                    && a.attribute > 1 =>
                {
                    let state = relay.load(std::sync::atomic::Ordering::SeqCst);
                    match a.attribute {
                        2 => Ok(Data::Boolean(state == 1)),
                        3 => Ok(Data::Enum(state)),
                        // control_mode 2: remote disconnect and reconnect allowed.
                        4 => Ok(Data::Enum(2)),
                        _ => Err(DataAccessResult::OBJECT_UNDEFINED),
                    }
                }
                _ => self
                    .model
                    .get(a.class_id, a.instance, a.attribute, access.as_ref(), now),
            }
        };
        let (invoke, response, raw) = match req {
            GetRequest::Normal {
                invoke,
                attribute,
                access,
            } => {
                let result = read(&attribute, &access);
                let raw = result.as_ref().ok().map(Data::to_bytes);
                (invoke, GetResponse::Normal { invoke, result }, raw)
            }
            GetRequest::WithList { invoke, items } => {
                if !conformance.has(Conformance::MULTIPLE_REFERENCES) {
                    return exception(1, 2);
                }
                let results: Vec<GetDataResult> = items.iter().map(|(a, s)| read(a, s)).collect();
                let response = GetResponse::WithList { invoke, results };
                // The raw data of a list in blocks is the count and the results (9.3.7):
                // the response without its tag, choice and invoke-id bytes.
                let raw = response.encode()[3..].to_vec();
                (invoke, response, Some(raw))
            }
            GetRequest::Next {
                invoke,
                block_number,
            } => return self.next_block(invoke, block_number),
        };
        let encoded = response.encode();
        // With general block transfer granted, the whole answer goes out in GBT blocks.
        if encoded.len() <= client_pdu || conformance.has(Conformance::GENERAL_BLOCK_TRANSFER) {
            return encoded;
        }
        match raw {
            Some(data) if conformance.has(Conformance::BLOCK_TRANSFER_WITH_GET) => {
                // Header of a block response: C4 02 iip last(1) number(4) choice(1) length(<=3).
                let chunk = client_pdu.saturating_sub(12).max(1);
                self.pending = Some(PendingBlocks {
                    invoke,
                    data,
                    chunk,
                    sent: 0,
                });
                self.next_block(invoke, 0)
            }
            _ => GetResponse::Normal {
                invoke,
                result: Err(DataAccessResult::OTHER_REASON),
            }
            .encode(),
        }
    }

    /// Sends the block after `acknowledged` (Green Book 9.3.7: the client acknowledges the last
    /// block number it received).
    fn next_block(&mut self, invoke: InvokeIdAndPriority, acknowledged: u32) -> Vec<u8> {
        let abort = |code| GetResponse::WithDatablock {
            invoke,
            last_block: true,
            block_number: acknowledged.wrapping_add(1),
            raw: Err(DataAccessResult(code)),
        };
        let Some(p) = self.pending.as_mut() else {
            return abort(16).encode(); // no-long-get-in-progress
        };
        if acknowledged != p.sent {
            self.pending = None;
            return abort(19).encode(); // data-block-number-invalid
        }
        let start = p.sent as usize * p.chunk;
        let end = (start + p.chunk).min(p.data.len());
        p.sent += 1;
        let last = end >= p.data.len();
        let response = GetResponse::WithDatablock {
            invoke: p.invoke,
            last_block: last,
            block_number: p.sent,
            raw: Ok(p.data[start..end].to_vec()),
        };
        if last {
            self.pending = None;
        }
        response.encode()
    }

    fn set(&mut self, req: SetRequest, now: i64) -> Vec<u8> {
        let SetRequest::Normal {
            invoke,
            attribute,
            value,
            ..
        } = req
        else {
            return exception(1, 2);
        };
        let result = if (attribute.class_id, attribute.instance, attribute.attribute)
            == (CLASS_CLOCK, CLOCK, 2)
            && !self.model.clock_settable
        {
            DataAccessResult::READ_WRITE_DENIED
        } else if (attribute.class_id, attribute.instance, attribute.attribute)
            == (CLASS_CLOCK, CLOCK, 2)
        {
            match value.as_date_time().and_then(|d| d.to_unix()) {
                Some(t) => {
                    self.model
                        .clock_offset
                        .store(t - now, std::sync::atomic::Ordering::Relaxed);
                    DataAccessResult::SUCCESS
                }
                None => DataAccessResult(12), // type-unmatched
            }
        } else if self
            .model
            .has_object(attribute.class_id, attribute.instance)
        {
            DataAccessResult::READ_WRITE_DENIED
        } else {
            DataAccessResult::OBJECT_UNDEFINED
        };
        SetResponse::Normal { invoke, result }.encode()
    }
}

impl ServerSession {
    /// Disconnect control methods 1 (remote_disconnect) and 2 (remote_reconnect), each with
    /// an integer(0) parameter (Blue Book 4.5.8).
    fn action(&mut self, req: ActionRequest) -> Vec<u8> {
        let ActionRequest::Normal { invoke, method, .. } = req else {
            return exception(1, 2);
        };
        let result = if (method.class_id, method.instance)
            == (CLASS_DISCONNECT_CONTROL, DISCONNECT_CONTROL)
        {
            let to = match method.method {
                1 => Some(0),
                2 => Some(1),
                _ => None,
            };
            match to {
                Some(state) => {
                    self.config
                        .relay
                        .store(state, std::sync::atomic::Ordering::SeqCst);
                    DataAccessResult::SUCCESS
                }
                None => DataAccessResult::OBJECT_UNDEFINED,
            }
        } else if self.model.has_object(method.class_id, method.instance) {
            DataAccessResult::READ_WRITE_DENIED
        } else {
            DataAccessResult::OBJECT_UNDEFINED
        };
        ActionResponse::Normal {
            invoke,
            result,
            return_parameters: None,
        }
        .encode()
    }
}

fn exception(state: u8, service: u8) -> Vec<u8> {
    ExceptionResponse {
        state_error: state,
        service_error: service,
        invocation_counter: None,
    }
    .encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlms::session::{ClientSession, SessionConfig, SessionError};

    #[test]
    fn initiate_errors_are_explained_in_plain_and_ciphered_associations() {
        let mut old = InitiateRequest::new(SERVER_CONFORMANCE, 1024);
        old.proposed_dlms_version = 5;
        let aarq = Aarq {
            application_context: ApplicationContext::LogicalName,
            calling_ap_title: None,
            mechanism: None,
            calling_authentication_value: None,
            user_information: Some(old.encode()),
        };
        let mut meter = ServerSession::new(MeterModel::new(1, 0), ServerConfig::default());
        let aare = meter.handle(&aarq.encode(), 0).unwrap();
        let err = ClientSession::new(SessionConfig::default())
            .on_aare(&aare)
            .unwrap_err();
        assert!(matches!(err, SessionError::Rejected(_)));
        assert!(err.to_string().contains("DLMS version too low"), "{err}");

        // The ciphered path applies the same negotiation.
        let keys = Keys {
            block_cipher: [1; 16],
            authentication: [2; 16],
        };
        let mut sec = ServerSession::new(
            MeterModel::new(1, 0),
            ServerConfig {
                security: Some(ServerSecurity::new(keys.clone(), *b"SIMMETER", false)),
                ..ServerConfig::default()
            },
        );
        let mut tiny = InitiateRequest::new(SERVER_CONFORMANCE, 32);
        tiny.proposed_dlms_version = 6;
        let glo = security::cipher_apdu(
            &keys,
            b"CLIENT01",
            1,
            Protection::AuthenticatedEncrypted,
            &tiny.encode(),
        )
        .unwrap();
        let aarq = Aarq {
            application_context: ApplicationContext::LogicalNameCiphered,
            calling_ap_title: Some(b"CLIENT01".to_vec()),
            mechanism: None,
            calling_authentication_value: None,
            user_information: Some(glo),
        };
        let aare =
            crate::dlms::acse::Aare::decode(&sec.handle(&aarq.encode(), 0).unwrap()).unwrap();
        assert_eq!(aare.result, AssociationResult::RejectedPermanent);
        assert!(!sec.is_associated());
    }

    /// Sans-I/O, both ends: a ciphered answer the client has seen is refused when it comes
    /// again (a replay by a man in the middle), in the same association or a later one, and
    /// so is a request the meter has seen.
    #[test]
    fn replayed_answers_and_requests_are_refused() {
        let keys = Keys {
            block_cipher: [3; 16],
            authentication: [4; 16],
        };
        let mut meter = ServerSession::new(
            MeterModel::new(1, 0),
            ServerConfig {
                security: Some(ServerSecurity::new(keys.clone(), *b"SIMMETER", false)),
                ..ServerConfig::default()
            },
        );
        let config = SessionConfig {
            security: Some(crate::dlms::session::Security::new(
                keys,
                *b"CLIENT01",
                Protection::AuthenticatedEncrypted,
                1,
            )),
            ..SessionConfig::default()
        };
        let mut client = ClientSession::new(config.clone());
        let aare = meter.handle(&client.aarq().unwrap(), 0).unwrap();
        client.on_aare(&aare).unwrap();
        // A later association with the same keys (a reconnect) must not accept the old AARE:
        // the guard spans associations, as the meter's counter does.
        let mut again = ClientSession::new(config.clone());
        let _ = again.aarq().unwrap();
        assert!(matches!(
            again.on_aare(&aare),
            Err(SessionError::Security(
                security::SecurityError::Replay { .. }
            ))
        ));
        let clock = AttributeDescriptor::new(CLASS_CLOCK, CLOCK, 2);
        let exchange = client.get(vec![(clock, None)]).unwrap();
        let request = client.seal(exchange.request()).unwrap();
        let answer = meter.handle(&request, 0).unwrap();
        assert!(client.unseal(&answer).is_ok());
        assert!(matches!(
            client.unseal(&answer),
            Err(SessionError::Security(
                security::SecurityError::Replay { .. }
            ))
        ));
        // The meter answers a replayed request with an exception naming the counter.
        let refused = meter.handle(&request, 0).unwrap();
        assert!(matches!(
            Apdu::decode(&refused),
            Ok(Apdu::ExceptionResponse(ExceptionResponse {
                service_error: 6,
                invocation_counter: Some(_),
                ..
            }))
        ));
    }
}
