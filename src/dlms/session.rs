//! The client side of a DLMS/COSEM application association, sans-I/O (Green Book 9.3):
//! it builds request APDUs and interprets response APDUs; a connection driver elsewhere moves
//! them over HDLC or the wrapper.
//!
//! - [`ClientSession::aarq`] / [`ClientSession::on_aare`]: association with no authentication
//!   or LLS; the negotiated conformance and the server's max receive PDU size are kept and
//!   honoured (GET-with-list only if multiple-references was granted, blocks only if
//!   block-transfer-with-get was granted).
//! - [`ClientSession::get`] returns a [`GetExchange`]: a small state machine that follows block
//!   transfers (GET-Request-Next with the last block number received) until all results are in.
//! - A response whose invoke id is that of an earlier request that went unanswered is
//!   [`Step::Ignore`]d: a late answer is never taken for the current one. Any other id is
//!   taken as the answer to the one request outstanding (firmware with a fixed invoke id;
//!   see `invoke_match`).

use super::acse::{Aarq, ApplicationContext, AssociationRejected, Mechanism, ReleaseReason, Rlrq};
use super::axdr::Data;
use super::hls::{self, HlsHash};
use super::invoke_match::{InvokeMatch, Unanswered};
use super::security::{self, Keys, Protection, ReplayGuard, SecurityError};
use super::sn::client::SnReadExchange;
use super::sn::names::REPLY_TO_HLS;
use super::sn::{self, association::Referencing, ShortNameError, SnBlockError};
use super::xdlms::gbt::{GbtError, GbtReassembler};
use super::xdlms::{
    ActionRequest, ActionResponse, Apdu, AttributeDescriptor, BlockError, BlockProgress,
    ConfirmedServiceError, Conformance, DataAccessResult, ExceptionResponse, GetBlockAssembler,
    GetDataResult, GetRequest, GetResponse, InitiateRequest, InitiateResponse, InvokeIdAndPriority,
    MethodDescriptor, SelectiveAccess, SetRequest, SetResponse,
};
use super::DecodeError;
use std::fmt;

/// How the client authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum Authentication {
    None,
    /// LLS: a password (mechanism 1).
    Low(Vec<u8>),
    /// HLS-GMAC (mechanism 5) with this client-to-server challenge (8 to 64 random bytes,
    /// supplied by the caller: this code draws no randomness). Needs [`SessionConfig::security`].
    HighGmac {
        challenge: Vec<u8>,
    },
    /// HLS mechanism 3 (MD5), 4 (SHA-1) or 6 (SHA-256) with the shared HLS secret and this
    /// client-to-server challenge (8 to 64 random bytes, supplied by the caller). SHA-256 binds
    /// both system titles: ours is `client_title` (sent as calling-AP-title), the meter's comes
    /// in the AARE.
    HighHash {
        mechanism: HlsHash,
        secret: Vec<u8>,
        challenge: Vec<u8>,
        client_title: Option<[u8; 8]>,
    },
}

impl fmt::Debug for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a password.
        match self {
            Authentication::None => f.write_str("None"),
            Authentication::Low(_) => f.write_str("Low(***)"),
            Authentication::HighGmac { .. } => f.write_str("HighGmac"),
            Authentication::HighHash { mechanism, .. } => write!(f, "HighHash({mechanism:?}, ***)"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub authentication: Authentication,
    pub proposed_conformance: Conformance,
    /// What we accept from the meter in one APDU.
    pub max_receive_pdu: u16,
    /// Upper bound for a reassembled block transfer.
    pub max_block_transfer: usize,
    /// Suite-0 ciphering of the association (glo- APDUs) and HLS-GMAC keys.
    pub security: Option<Security>,
    /// Whether to propose general block transfer and take answers in it.
    pub gbt: GbtPolicy,
    /// LN, SN, or LN then SN (the connection decides; see `crate::dlms::sn::association`).
    pub referencing: Referencing,
}

/// General block transfer (IEC 62056-5-3 9.3.11) in an association.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GbtPolicy {
    /// Not proposed; an answer in GBT is refused.
    Off,
    /// Proposed; used when the meter grants it and answers with it.
    Auto,
    /// Proposed and required: an association without it is refused.
    On,
}

/// Our receive window in general block transfer: one block, acknowledged before the next
/// (what every GBT meter must accept; the HDLC link below has its own window).
pub const GBT_WINDOW: u8 = 1;

/// Security suite 0 settings of a client.
#[derive(Debug, Clone)]
pub struct Security {
    pub keys: Keys,
    pub client_title: [u8; 8],
    pub protection: Protection,
    /// The next invocation counter, shared by every session (reconnection) with these keys:
    /// a counter must never repeat for a key. The caller persists it across restarts.
    pub invocation_counter: std::sync::Arc<std::sync::atomic::AtomicU32>,
    /// Propose general-protection and, when the meter grants it, send general-glo/ded
    /// ciphering APDUs (Green Book 9.5) instead of service-specific glo-/ded- ones.
    pub general_ciphering: bool,
    /// A dedicated key for this association (sent in the ciphered InitiateRequest); requests
    /// are then ded- ciphered with it. Meters usually require a fresh one per association.
    pub dedicated_key: Option<[u8; 16]>,
    /// Counters from this value on are not yet reserved (persisted) by the caller: the session
    /// refuses to use them rather than risk a repeat after a crash. `None`: no limit below
    /// the end of the counter space.
    pub counter_limit: Option<std::sync::Arc<std::sync::atomic::AtomicU32>>,
    /// The meter's counters seen so far, shared like `invocation_counter` by every
    /// association with these keys: a meter's counter grows across associations too, so an
    /// old AARE or answer replayed into a new association is refused as well.
    pub replay_guard: std::sync::Arc<std::sync::Mutex<ReplayGuard>>,
}

impl Security {
    /// Global keys, glo- ciphering, counter starting at `invocation_counter`.
    pub fn new(
        keys: Keys,
        client_title: [u8; 8],
        protection: Protection,
        invocation_counter: u32,
    ) -> Security {
        Security {
            keys,
            client_title,
            protection,
            invocation_counter: std::sync::Arc::new(invocation_counter.into()),
            general_ciphering: false,
            dedicated_key: None,
            counter_limit: None,
            replay_guard: std::sync::Arc::default(),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            authentication: Authentication::None,
            proposed_conformance: Conformance::CLIENT_DEFAULT,
            max_receive_pdu: 0xFFFF,
            max_block_transfer: 4 << 20,
            security: None,
            gbt: GbtPolicy::Off,
            referencing: Referencing::default(),
        }
    }
}

/// Refuses a meter counter that does not grow (a poisoned lock, after a panic elsewhere,
/// still holds a valid guard).
fn check_replay(sec: &Security, ic: u32) -> Result<(), SecurityError> {
    let mut guard = sec
        .replay_guard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    guard.check(ic)
}

/// What the meter granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub conformance: Conformance,
    /// The largest APDU the meter accepts from us.
    pub server_max_pdu: u16,
}

#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionError {
    Decode(DecodeError),
    Rejected(AssociationRejected),
    Exception(ExceptionResponse),
    ServiceError(ConfirmedServiceError),
    Block(BlockError),
    Gbt(GbtError),
    /// An APDU that does not answer the request.
    Unexpected(&'static str),
    NotAssociated,
    /// The meter answered with a different number of results than requested.
    ResultCount {
        requested: usize,
        received: usize,
    },
    /// A request too large for the meter's PDU size and no block transfer granted.
    TooLarge,
    /// A SET or ACTION refused by the meter.
    Refused(DataAccessResult),
    Security(SecurityError),
    /// The meter did not prove it knows the keys, or refused ours (HLS-GMAC).
    HlsFailed(String),
    /// A configuration this session cannot act on (e.g. HLS-GMAC without keys).
    Misconfigured(&'static str),
    /// No invocation counter may be used: the reserved range is used up (the caller must
    /// reserve more), or the counter space of the key is (the key must be changed).
    CounterExhausted {
        next: u32,
        end_of_space: bool,
    },
    /// An LN reference with no short name on this SN meter.
    ShortName(ShortNameError),
    /// A long ReadResponse out of order or too long.
    SnBlock(SnBlockError),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Decode(e) => write!(f, "malformed APDU from the meter: {e}"),
            SessionError::Rejected(e) => e.fmt(f),
            SessionError::Exception(e) => e.fmt(f),
            SessionError::ServiceError(e) => e.fmt(f),
            SessionError::Block(e) => e.fmt(f),
            SessionError::Gbt(e) => e.fmt(f),
            SessionError::Unexpected(what) => write!(f, "unexpected APDU from the meter: {what}"),
            SessionError::NotAssociated => write!(f, "no association"),
            SessionError::ResultCount {
                requested,
                received,
            } => write!(f, "asked for {requested} values, meter returned {received}"),
            SessionError::TooLarge => write!(f, "request exceeds the meter's PDU size"),
            SessionError::Refused(r) => write!(f, "meter refused: {r}"),
            SessionError::Security(e) => e.fmt(f),
            SessionError::HlsFailed(why) => write!(f, "HLS authentication failed: {why}"),
            SessionError::Misconfigured(why) => write!(f, "{why}"),
            SessionError::CounterExhausted {
                next,
                end_of_space: true,
            } => write!(
                f,
                "invocation counter {next} is the last of this key: change the encryption key"
            ),
            SessionError::CounterExhausted { next, .. } => write!(
                f,
                "invocation counter {next} is not reserved in the database yet (is the disk full?)"
            ),
            SessionError::ShortName(e) => e.fmt(f),
            SessionError::SnBlock(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<DecodeError> for SessionError {
    fn from(e: DecodeError) -> Self {
        SessionError::Decode(e)
    }
}

impl From<SecurityError> for SessionError {
    fn from(e: SecurityError) -> Self {
        SessionError::Security(e)
    }
}

impl From<GbtError> for SessionError {
    fn from(e: GbtError) -> Self {
        SessionError::Gbt(e)
    }
}

impl From<BlockError> for SessionError {
    fn from(e: BlockError) -> Self {
        SessionError::Block(e)
    }
}

/// The next move of an exchange.
#[derive(Debug, Clone, PartialEq)]
pub enum Step<T> {
    /// Send this APDU and feed the answer back.
    Send(Vec<u8>),
    /// Finished.
    Done(T),
    /// Not an answer to this request (stale invoke id): keep waiting.
    Ignore,
}

#[derive(Debug)]
pub struct ClientSession {
    config: SessionConfig,
    invoke: InvokeIdAndPriority,
    negotiated: Option<Negotiated>,
    server_title: Option<[u8; 8]>,
    /// The meter's challenge while HLS-GMAC pass 3 is pending.
    stoc: Option<Vec<u8>>,
    /// The next AARQ proposes short-name referencing.
    short_names: bool,
    /// Requests of this association that got no answer (their late answers are stale).
    unanswered: Unanswered,
}

/// HLS pass 3 as the association's referencing carries it.
#[derive(Debug)]
pub enum HlsReply {
    Ln(ActionExchange),
    Sn(SnReadExchange),
}

/// Maps the answers every exchange must treat alike (exceptions, service errors).
fn general_error(apdu: &Apdu) -> Option<SessionError> {
    match apdu {
        Apdu::ExceptionResponse(e) => Some(SessionError::Exception(*e)),
        Apdu::ConfirmedServiceError(e) => Some(SessionError::ServiceError(*e)),
        _ => None,
    }
}

impl ClientSession {
    pub fn new(config: SessionConfig) -> Self {
        ClientSession {
            invoke: InvokeIdAndPriority::new(0, true, true),
            negotiated: None,
            server_title: None,
            stoc: None,
            short_names: config.referencing == Referencing::Sn,
            unanswered: Unanswered::default(),
            config,
        }
    }

    /// The request with this invoke id got no answer in time: a late answer with its id will
    /// be dropped.
    pub fn abandon(&mut self, invoke: InvokeIdAndPriority) {
        self.unanswered.abandon(invoke);
    }

    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }

    /// Whether the next AARQ proposes short-name referencing (`Referencing::Auto` falls
    /// back to it; the connection decides when).
    pub fn use_short_names(&mut self, on: bool) {
        self.short_names = on;
    }

    pub fn short_names(&self) -> bool {
        self.short_names
    }

    fn context(&self, ciphered: bool) -> ApplicationContext {
        match (self.short_names, ciphered) {
            (true, c) => sn::association::context(c),
            (false, false) => ApplicationContext::LogicalName,
            (false, true) => ApplicationContext::LogicalNameCiphered,
        }
    }

    /// Forgets the association (after a connection loss).
    pub fn reset(&mut self) {
        self.negotiated = None;
    }

    /// The next invocation counter this session will use (persist it: it must never repeat).
    pub fn invocation_counter(&self) -> u32 {
        use std::sync::atomic::Ordering;
        self.config
            .security
            .as_ref()
            .map_or(0, |s| s.invocation_counter.load(Ordering::SeqCst))
    }

    /// Takes the next invocation counter; never wraps, never passes the reserved limit.
    fn next_ic(&self) -> Result<u32, SessionError> {
        use std::sync::atomic::Ordering;
        let Some(sec) = self.config.security.as_ref() else {
            return Ok(0);
        };
        let limit = sec
            .counter_limit
            .as_ref()
            .map_or(u32::MAX, |l| l.load(Ordering::SeqCst));
        sec.invocation_counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |ic| {
                // (then_some would compute ic + 1 even at the end of the space.)
                if ic < limit {
                    Some(ic + 1)
                } else {
                    None
                }
            })
            .map_err(|next| SessionError::CounterExhausted {
                next,
                end_of_space: limit == u32::MAX,
            })
    }

    pub fn aarq(&mut self) -> Result<Vec<u8>, SessionError> {
        let mut initiate =
            InitiateRequest::new(self.proposed_conformance(), self.config.max_receive_pdu);
        if let Some(sec) = &self.config.security {
            initiate.dedicated_key = sec.dedicated_key.map(|k| k.to_vec());
        }
        let initiate = initiate.encode();
        let (mechanism, value) = match &self.config.authentication {
            Authentication::None => (None, None),
            Authentication::Low(pw) => (Some(Mechanism::Low), Some(pw.clone())),
            Authentication::HighGmac { challenge } => {
                if self.config.security.is_none() {
                    return Err(SessionError::Misconfigured(
                        "HLS-GMAC needs the security keys and system title",
                    ));
                }
                (Some(Mechanism::HighGmac), Some(challenge.clone()))
            }
            Authentication::HighHash {
                mechanism,
                challenge,
                client_title,
                ..
            } => {
                if *mechanism == HlsHash::Sha256
                    && client_title.is_none()
                    && self.config.security.is_none()
                {
                    return Err(SessionError::Misconfigured(
                        "HLS SHA-256 needs our system title",
                    ));
                }
                let m = match mechanism {
                    HlsHash::Md5 => Mechanism::HighMd5,
                    HlsHash::Sha1 => Mechanism::HighSha1,
                    HlsHash::Sha256 => Mechanism::HighSha256,
                };
                (Some(m), Some(challenge.clone()))
            }
        };
        // HLS SHA-256 binds the calling-AP-title into its proofs (Green Book 9.2.7.4), so the
        // AARQ carries it even without ciphering.
        let hash_title = match &self.config.authentication {
            Authentication::HighHash {
                mechanism: HlsHash::Sha256,
                client_title,
                ..
            } => *client_title,
            _ => None,
        };
        let (context, title, user_information) = match &self.config.security {
            None => (
                self.context(false),
                hash_title.map(|t| t.to_vec()),
                initiate,
            ),
            Some(sec) => {
                let ic = self.next_ic()?;
                let glo = security::cipher_apdu(
                    &sec.keys,
                    &sec.client_title,
                    ic,
                    sec.protection,
                    &initiate,
                )?;
                (self.context(true), Some(sec.client_title.to_vec()), glo)
            }
        };
        Ok(Aarq {
            application_context: context,
            calling_ap_title: title,
            mechanism,
            calling_authentication_value: value,
            user_information: Some(user_information),
        }
        .encode())
    }

    pub fn on_aare(&mut self, apdu: &[u8]) -> Result<Negotiated, SessionError> {
        let aare = match Apdu::decode(apdu)? {
            Apdu::Aare(a) => a,
            other => {
                return Err(general_error(&other).unwrap_or(SessionError::Unexpected("not an AARE")))
            }
        };
        aare.check().map_err(SessionError::Rejected)?;
        let ui = aare
            .user_information
            .as_deref()
            .ok_or(SessionError::Unexpected("AARE without InitiateResponse"))?;
        if let Some(t) = aare.responding_ap_title.as_deref() {
            self.server_title = <[u8; 8]>::try_from(t).ok();
        }
        let plain_ui;
        let ui = match (&self.config.security, ui.first()) {
            (Some(sec), Some(&0x28)) => {
                let title = self.server_title.ok_or(SessionError::Unexpected(
                    "ciphered AARE without the meter's system title",
                ))?;
                let (plain, ic) = security::decipher_apdu(&sec.keys, &title, ui)?;
                check_replay(sec, ic)?;
                plain_ui = plain;
                &plain_ui[..]
            }
            _ => ui,
        };
        let initiate = InitiateResponse::decode(ui)?;
        if matches!(
            self.config.authentication,
            Authentication::HighGmac { .. } | Authentication::HighHash { .. }
        ) {
            let stoc = aare
                .responding_authentication_value
                .clone()
                .ok_or_else(|| SessionError::HlsFailed("the meter sent no challenge".into()))?;
            self.stoc = Some(stoc);
        }
        let negotiated = Negotiated {
            // A meter may grant more than asked; use only what both sides have.
            conformance: initiate
                .negotiated_conformance
                .intersect(self.proposed_conformance()),
            server_max_pdu: initiate.server_max_receive_pdu_size,
        };
        if self.config.gbt == GbtPolicy::On
            && !negotiated
                .conformance
                .has(Conformance::GENERAL_BLOCK_TRANSFER)
        {
            return Err(SessionError::Unexpected(
                "the meter did not grant general-block-transfer (gbt on)",
            ));
        }
        self.negotiated = Some(negotiated);
        Ok(negotiated)
    }

    /// A reassembler for an answer that came in general block transfer (acknowledgements
    /// with window [`GBT_WINDOW`], joined size bounded like block transfers); refused unless
    /// the meter granted it.
    pub fn gbt_reassembler(&self) -> Result<GbtReassembler, SessionError> {
        let negotiated = self.require()?;
        if !negotiated
            .conformance
            .has(Conformance::GENERAL_BLOCK_TRANSFER)
        {
            return Err(SessionError::Unexpected(
                "an answer in general block transfer, which was not negotiated",
            ));
        }
        Ok(GbtReassembler::new(
            self.config.max_block_transfer,
            GBT_WINDOW,
        ))
    }

    /// HLS pass 3, if the association waits for it: f(StoC) to the meter's
    /// reply_to_HLS_authentication, Association LN method 1 (an ACTION) or, over short names,
    /// Association SN method 8 (a ReadRequest with parameterized access: it returns f(CtoS)).
    pub fn hls_reply(&mut self) -> Result<Option<HlsReply>, SessionError> {
        let Some(proof) = self.hls_proof()? else {
            return Ok(None);
        };
        let proof = Data::OctetString(proof);
        if self.short_names {
            let limit = self.config.max_block_transfer;
            return Ok(Some(HlsReply::Sn(SnReadExchange::method_with_return(
                REPLY_TO_HLS,
                proof,
                limit,
            ))));
        }
        let method = MethodDescriptor::new(15, crate::cosem::Obis::new(0, 0, 40, 0, 0, 255), 1);
        self.action(method, Some(&proof))
            .map(|a| Some(HlsReply::Ln(a)))
    }

    /// f(StoC), the client's proof of HLS pass 3 (`None`: no HLS pending).
    fn hls_proof(&mut self) -> Result<Option<Vec<u8>>, SessionError> {
        let Some(stoc) = self.stoc.clone() else {
            return Ok(None);
        };
        let f = match &self.config.authentication {
            Authentication::HighHash { mechanism, .. } => {
                let mechanism = *mechanism;
                let (title, server) = self.hash_titles()?;
                hls::client_proof(mechanism, &self.hash_parties(&title, &server, &stoc)?)
            }
            _ => {
                let sec = self
                    .config
                    .security
                    .as_ref()
                    .ok_or(SessionError::Misconfigured("HLS-GMAC needs keys"))?;
                let (keys, title) = (sec.keys.clone(), sec.client_title);
                // The counter used inside f(StoC) is consumed like any other.
                let ic = self.next_ic()?;
                security::gmac_response(&keys, &title, ic, &stoc)
            }
        };
        Ok(Some(f))
    }

    /// Both system titles of an HLS hash association (zeros where the mechanism does not use
    /// them: MD5 and SHA-1 hash only the challenge and the secret).
    fn hash_titles(&self) -> Result<([u8; 8], [u8; 8]), SessionError> {
        let Authentication::HighHash {
            mechanism,
            client_title,
            ..
        } = &self.config.authentication
        else {
            return Err(SessionError::Misconfigured("not an HLS hash mechanism"));
        };
        if *mechanism != HlsHash::Sha256 {
            return Ok(([0; 8], [0; 8]));
        }
        let ours = client_title
            .or_else(|| self.config.security.as_ref().map(|s| s.client_title))
            .ok_or(SessionError::Misconfigured(
                "HLS SHA-256 needs our system title",
            ))?;
        let theirs = self.server_title.ok_or_else(|| {
            SessionError::HlsFailed("the meter sent no system title (HLS SHA-256 needs it)".into())
        })?;
        Ok((ours, theirs))
    }

    fn hash_parties<'a>(
        &'a self,
        client_title: &'a [u8; 8],
        server_title: &'a [u8; 8],
        stoc: &'a [u8],
    ) -> Result<hls::HlsParties<'a>, SessionError> {
        let Authentication::HighHash {
            secret, challenge, ..
        } = &self.config.authentication
        else {
            return Err(SessionError::Misconfigured("not an HLS hash mechanism"));
        };
        Ok(hls::HlsParties {
            secret,
            client_title,
            server_title,
            ctos: challenge,
            stoc,
        })
    }

    /// HLS pass 4: checks the meter's f(CtoS), returned by the ACTION.
    pub fn on_hls_result(&mut self, returned: Option<Data>) -> Result<(), SessionError> {
        let stoc = self.stoc.take();
        let f = match (&self.config.authentication, returned) {
            (
                Authentication::HighGmac { .. } | Authentication::HighHash { .. },
                Some(Data::OctetString(f)),
            ) => f,
            (Authentication::HighGmac { .. } | Authentication::HighHash { .. }, other) => {
                return Err(SessionError::HlsFailed(format!(
                    "unexpected reply {other:?}"
                )))
            }
            _ => return Ok(()),
        };
        if let Authentication::HighHash { mechanism, .. } = &self.config.authentication {
            let mechanism = *mechanism;
            let stoc = stoc.unwrap_or_default();
            let (title, server) = self.hash_titles()?;
            let parties = self.hash_parties(&title, &server, &stoc)?;
            if !hls::verify_server_proof(mechanism, &parties, &f) {
                return Err(SessionError::HlsFailed(
                    "the meter's answer does not verify (wrong HLS secret?)".into(),
                ));
            }
            return Ok(());
        }
        let (Some(sec), Authentication::HighGmac { challenge }) =
            (&self.config.security, &self.config.authentication)
        else {
            return Err(SessionError::Misconfigured("HLS-GMAC needs keys"));
        };
        let title = self
            .server_title
            .ok_or_else(|| SessionError::HlsFailed("no system title from the meter".into()))?;
        security::verify_gmac_response(&sec.keys, &title, challenge, &f).map_err(|e| {
            SessionError::HlsFailed(format!("the meter's answer does not verify ({e})"))
        })?;
        Ok(())
    }

    /// Ciphers a request APDU for the wire (unchanged without security).
    pub fn seal(&mut self, plain: &[u8]) -> Result<Vec<u8>, SessionError> {
        let Some(sec) = &self.config.security else {
            return Ok(plain.to_vec());
        };
        let general = sec.general_ciphering
            && self
                .negotiated
                .is_some_and(|n| n.conformance.has(Conformance::GENERAL_PROTECTION));
        let envelope = security::Envelope::choose(general, sec.dedicated_key.is_some());
        let ic = self.next_ic()?;
        Ok(security::seal_apdu(
            &sec.keys,
            sec.dedicated_key.as_ref(),
            envelope,
            &sec.client_title,
            ic,
            sec.protection,
            plain,
        )?)
    }

    /// What the AARQ proposes: the configured bits, plus general-protection when asked for.
    fn proposed_conformance(&self) -> Conformance {
        let mut c = if self.short_names {
            sn::association::SN_CONFORMANCE
        } else {
            self.config.proposed_conformance
        };
        if self
            .config
            .security
            .as_ref()
            .is_some_and(|s| s.general_ciphering)
        {
            c = Conformance(c.0 | Conformance::GENERAL_PROTECTION);
        }
        if self.config.gbt != GbtPolicy::Off {
            c = Conformance(c.0 | Conformance::GENERAL_BLOCK_TRANSFER);
        }
        c
    }

    /// Deciphers a response APDU from the wire. With security configured, plain data responses
    /// are refused (a meter in a ciphered association never sends them); plain exceptions
    /// and service errors pass.
    pub fn unseal(&mut self, apdu: &[u8]) -> Result<Vec<u8>, SessionError> {
        let first = apdu.first().copied().unwrap_or(0);
        match &self.config.security {
            None => Ok(apdu.to_vec()),
            Some(sec) if crate::dlms::xdlms::is_ciphered_tag(first) => {
                let title = self.server_title.ok_or(SessionError::Unexpected(
                    "ciphered APDU before the meter's system title",
                ))?;
                let opened =
                    security::open_apdu(&sec.keys, sec.dedicated_key.as_ref(), Some(&title), apdu)?;
                check_replay(sec, opened.invocation_counter)?;
                Ok(opened.plain)
            }
            Some(_) if matches!(first, 0xD8 | 0x0E) => Ok(apdu.to_vec()),
            Some(_) => Err(SessionError::Unexpected(
                "unciphered response in a ciphered association",
            )),
        }
    }

    /// RLRQ with reason normal.
    pub fn rlrq(&self) -> Vec<u8> {
        Rlrq {
            reason: Some(ReleaseReason::Normal),
            user_information: None,
        }
        .encode()
    }

    fn next_invoke(&mut self) -> InvokeIdAndPriority {
        self.invoke = self.invoke.next();
        self.unanswered.reuse(self.invoke);
        self.invoke
    }

    fn require(&self) -> Result<Negotiated, SessionError> {
        self.negotiated.ok_or(SessionError::NotAssociated)
    }

    /// How many attributes fit in one GET: 1 unless multiple references were granted, else as
    /// many as keep the request within the meter's PDU size.
    pub fn max_get_batch(&self) -> usize {
        match self.negotiated {
            Some(n) if n.conformance.has(Conformance::MULTIPLE_REFERENCES) => {
                // C0 03 iip count(<=3) then 9 + 1 per plain attribute.
                (usize::from(n.server_max_pdu).saturating_sub(6) / 10).clamp(1, 64)
            }
            _ => 1,
        }
    }

    /// Starts reading `items` (one GET-Request-Normal, or With-List for several).
    pub fn get(
        &mut self,
        items: Vec<(AttributeDescriptor, Option<SelectiveAccess>)>,
    ) -> Result<GetExchange, SessionError> {
        let negotiated = self.require()?;
        let invoke = self.next_invoke();
        let count = items.len();
        let request = match <[_; 1]>::try_from(items) {
            Ok([(attribute, access)]) => GetRequest::Normal {
                invoke,
                attribute,
                access,
            },
            Err(items) => {
                if !negotiated.conformance.has(Conformance::MULTIPLE_REFERENCES) {
                    return Err(SessionError::Unexpected(
                        "GET-with-list needs multiple-references, which the meter did not grant",
                    ));
                }
                GetRequest::WithList { invoke, items }
            }
        };
        let bytes = request.encode();
        if bytes.len() > usize::from(negotiated.server_max_pdu) {
            return Err(SessionError::TooLarge);
        }
        Ok(GetExchange {
            invoke,
            ids: InvokeMatch::new(invoke, self.unanswered),
            count,
            request: bytes,
            assembler: None,
            block_limit: self.config.max_block_transfer,
        })
    }

    /// Writes one attribute (in data blocks when the value exceeds the meter's PDU size and
    /// block transfer with SET was granted).
    pub fn set(
        &mut self,
        attribute: AttributeDescriptor,
        value: &Data,
    ) -> Result<SetExchange, SessionError> {
        let negotiated = self.require()?;
        let invoke = self.next_invoke();
        let max = usize::from(negotiated.server_max_pdu);
        let built = SetRequest::build(invoke, attribute, value, max)
            .map(|v| v.iter().map(SetRequest::encode).collect());
        let requests = in_sending_order(built, negotiated, Conformance::BLOCK_TRANSFER_WITH_SET)?;
        Ok(SetExchange {
            ids: InvokeMatch::new(invoke, self.unanswered),
            requests,
        })
    }

    /// Invokes one method with optional parameters.
    pub fn action(
        &mut self,
        method: MethodDescriptor,
        parameters: Option<&Data>,
    ) -> Result<ActionExchange, SessionError> {
        let negotiated = self.require()?;
        let invoke = self.next_invoke();
        let max = usize::from(negotiated.server_max_pdu);
        let built = ActionRequest::build(invoke, method, parameters, max)
            .map(|v| v.iter().map(ActionRequest::encode).collect());
        let requests =
            in_sending_order(built, negotiated, Conformance::BLOCK_TRANSFER_WITH_ACTION)?;
        Ok(ActionExchange {
            ids: InvokeMatch::new(invoke, self.unanswered),
            requests,
        })
    }
}

/// The encoded requests of a SET or ACTION, last first (exchanges pop them): refused when the
/// value does not fit the meter's PDU at all, or needs blocks the meter did not grant.
fn in_sending_order(
    built: Option<Vec<Vec<u8>>>,
    negotiated: Negotiated,
    block_bit: u32,
) -> Result<Vec<Vec<u8>>, SessionError> {
    let mut requests = built.ok_or(SessionError::TooLarge)?;
    if requests.len() > 1 && !negotiated.conformance.has(block_bit) {
        return Err(SessionError::TooLarge);
    }
    requests.reverse();
    Ok(requests)
}

/// One GET, possibly spread over block transfers.
#[derive(Debug)]
pub struct GetExchange {
    invoke: InvokeIdAndPriority,
    ids: InvokeMatch,
    count: usize,
    request: Vec<u8>,
    assembler: Option<GetBlockAssembler>,
    block_limit: usize,
}

impl GetExchange {
    /// Which answers this request takes (its invoke id, and one it took that was not).
    pub fn invoke_match(&self) -> &InvokeMatch {
        &self.ids
    }

    /// The first request to send.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    pub fn on_response(&mut self, apdu: &[u8]) -> Result<Step<Vec<GetDataResult>>, SessionError> {
        let response = match Apdu::decode(apdu)? {
            Apdu::GetResponse(r) => r,
            other => {
                return Err(
                    general_error(&other).unwrap_or(SessionError::Unexpected("not a GET-Response"))
                )
            }
        };
        if !self.ids.accepts(response.invoke()) {
            return Ok(Step::Ignore);
        }
        let results = match response {
            GetResponse::Normal { result, .. } => vec![result],
            GetResponse::WithList { results, .. } => results,
            block @ GetResponse::WithDatablock { .. } => {
                let limit = self.block_limit;
                let assembler = self
                    .assembler
                    .get_or_insert_with(|| GetBlockAssembler::new(limit));
                match assembler.push(&block)? {
                    BlockProgress::Next(next) => return Ok(Step::Send(next.encode())),
                    BlockProgress::Complete(raw) => self.decode_blocks(&raw)?,
                }
            }
        };
        if results.len() != self.count {
            return Err(SessionError::ResultCount {
                requested: self.count,
                received: results.len(),
            });
        }
        Ok(Step::Done(results))
    }

    /// The reassembled raw data: one Data for a single attribute; for a list, the sequence of
    /// Get-Data-Results (Green Book 9.3.7).
    fn decode_blocks(&self, raw: &[u8]) -> Result<Vec<GetDataResult>, SessionError> {
        if self.count == 1 {
            return Ok(vec![Ok(Data::decode(raw)?)]);
        }
        // Re-use the WithList decoder on a synthetic header.
        let mut pdu = vec![0xC4, 0x03, self.invoke.0];
        pdu.extend_from_slice(raw);
        match GetResponse::decode(&pdu)? {
            GetResponse::WithList { results, .. } => Ok(results),
            _ => Err(SessionError::Unexpected("block transfer content")),
        }
    }
}

/// One SET, possibly in several data blocks.
#[derive(Debug)]
pub struct SetExchange {
    ids: InvokeMatch,
    /// Remaining requests, last first.
    requests: Vec<Vec<u8>>,
}

impl SetExchange {
    /// Which answers this request takes (its invoke id, and one it took that was not).
    pub fn invoke_match(&self) -> &InvokeMatch {
        &self.ids
    }

    /// The first request to send.
    pub fn start(&mut self) -> Vec<u8> {
        self.requests.pop().unwrap_or_default()
    }

    pub fn on_response(&mut self, apdu: &[u8]) -> Result<Step<()>, SessionError> {
        let response = match Apdu::decode(apdu)? {
            Apdu::SetResponse(r) => r,
            other => {
                return Err(
                    general_error(&other).unwrap_or(SessionError::Unexpected("not a SET-Response"))
                )
            }
        };
        let (invoke, result) = match response {
            SetResponse::Normal { invoke, result } => (invoke, Some(result)),
            SetResponse::LastDatablock { invoke, result, .. } => (invoke, Some(result)),
            SetResponse::Datablock { invoke, .. } => (invoke, None),
        };
        if !self.ids.accepts(invoke) {
            return Ok(Step::Ignore);
        }
        match result {
            Some(DataAccessResult::SUCCESS) => Ok(Step::Done(())),
            Some(other) => Err(SessionError::Refused(other)),
            None => match self.requests.pop() {
                Some(next) => Ok(Step::Send(next)),
                None => Err(SessionError::Unexpected(
                    "SET block acknowledged after the last",
                )),
            },
        }
    }
}

/// One ACTION, possibly with parameter blocks.
#[derive(Debug)]
pub struct ActionExchange {
    ids: InvokeMatch,
    requests: Vec<Vec<u8>>,
}

impl ActionExchange {
    /// Which answers this request takes (its invoke id, and one it took that was not).
    pub fn invoke_match(&self) -> &InvokeMatch {
        &self.ids
    }

    pub fn start(&mut self) -> Vec<u8> {
        self.requests.pop().unwrap_or_default()
    }

    pub fn on_response(&mut self, apdu: &[u8]) -> Result<Step<Option<Data>>, SessionError> {
        let response = match Apdu::decode(apdu)? {
            Apdu::ActionResponse(r) => r,
            other => {
                return Err(general_error(&other)
                    .unwrap_or(SessionError::Unexpected("not an ACTION-Response")))
            }
        };
        match response {
            ActionResponse::Normal {
                invoke,
                result,
                return_parameters,
            } => {
                if !self.ids.accepts(invoke) {
                    return Ok(Step::Ignore);
                }
                if result != DataAccessResult::SUCCESS {
                    return Err(SessionError::Refused(result));
                }
                match return_parameters {
                    None => Ok(Step::Done(None)),
                    Some(Ok(data)) => Ok(Step::Done(Some(data))),
                    Some(Err(e)) => Err(SessionError::Refused(e)),
                }
            }
            ActionResponse::NextPblock { invoke, .. } => {
                if !self.ids.accepts(invoke) {
                    return Ok(Step::Ignore);
                }
                match self.requests.pop() {
                    Some(next) => Ok(Step::Send(next)),
                    None => Err(SessionError::Unexpected(
                        "ACTION block acknowledged after the last",
                    )),
                }
            }
            ActionResponse::WithPblock { .. } => Err(SessionError::Unexpected(
                "ACTION-Response with parameter blocks is not supported",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosem::Obis;
    use crate::dlms::acse::{AssociationResult, ResultSourceDiagnostic};

    fn associated(granted: Conformance, server_pdu: u16) -> ClientSession {
        let mut s = ClientSession::new(SessionConfig::default());
        let aare = crate::dlms::acse::Aare {
            application_context: ApplicationContext::LogicalName,
            result: AssociationResult::Accepted,
            diagnostic: ResultSourceDiagnostic::User(0),
            responding_ap_title: None,
            mechanism: None,
            responding_authentication_value: None,
            user_information: Some(
                InitiateResponse {
                    negotiated_quality_of_service: None,
                    negotiated_dlms_version: 6,
                    negotiated_conformance: granted,
                    server_max_receive_pdu_size: server_pdu,
                    vaa_name: 7,
                }
                .encode(),
            ),
        };
        s.on_aare(&aare.encode()).unwrap();
        s
    }

    #[test]
    fn long_set_and_action_use_blocks_only_when_granted() {
        let clock = AttributeDescriptor::new(8, Obis::new(0, 0, 1, 0, 0, 255), 2);
        let method = MethodDescriptor::new(15, Obis::new(0, 0, 40, 0, 0, 255), 1);
        let big = Data::OctetString(vec![7; 500]);
        let mut plain = associated(Conformance(Conformance::SET | Conformance::ACTION), 128);
        assert!(matches!(
            plain.set(clock, &big),
            Err(SessionError::TooLarge)
        ));
        assert!(matches!(
            plain.action(method, Some(&big)),
            Err(SessionError::TooLarge)
        ));
        assert!(
            plain.set(clock, &Data::Unsigned(1)).is_ok(),
            "a small value needs no blocks"
        );
        let all = Conformance::CLIENT_DEFAULT;
        let mut blocks = associated(all, 128);
        let mut set = blocks.set(clock, &big).unwrap();
        let first = set.start();
        assert_eq!(
            &first[..2],
            &[0xC1, 0x02],
            "SET-Request-With-First-Datablock first"
        );
        let ack = SetResponse::Datablock {
            invoke: InvokeIdAndPriority(first[2]),
            block_number: 1,
        }
        .encode();
        match set.on_response(&ack).unwrap() {
            Step::Send(next) => assert_eq!(&next[..2], &[0xC1, 0x03]),
            other => panic!("{other:?}"),
        }
        let mut action = blocks.action(method, Some(&big)).unwrap();
        assert_eq!(
            &action.start()[..2],
            &[0xC3, 0x04],
            "ACTION-Request-With-First-Pblock first"
        );
    }

    #[test]
    fn nothing_before_association() {
        let mut s = ClientSession::new(SessionConfig::default());
        let clock = AttributeDescriptor::new(8, Obis::new(0, 0, 1, 0, 0, 255), 2);
        assert!(matches!(
            s.get(vec![(clock, None)]),
            Err(SessionError::NotAssociated)
        ));
        assert_eq!(s.max_get_batch(), 1);
    }

    #[test]
    fn counters_stop_at_the_reserved_limit_and_at_the_end_of_the_space() {
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::Arc;
        let keys = Keys {
            block_cipher: [1; 16],
            authentication: [2; 16],
        };
        let mut sec = Security::new(keys.clone(), *b"CLIENT01", Protection::Authenticated, 10);
        let limit = Arc::new(AtomicU32::new(12));
        sec.counter_limit = Some(limit.clone());
        let mut s = ClientSession::new(SessionConfig {
            security: Some(sec),
            ..SessionConfig::default()
        });
        let plain = [0xC0, 0x01, 0xC1, 0, 8, 0, 0, 1, 0, 0, 255, 2, 0];
        assert!(s.seal(&plain).is_ok());
        assert!(s.seal(&plain).is_ok());
        let e = s.seal(&plain).unwrap_err();
        assert!(e.to_string().contains("not reserved"), "{e}");
        assert_eq!(
            s.invocation_counter(),
            12,
            "a refused counter is not consumed"
        );
        limit.store(13, Ordering::SeqCst);
        assert!(s.seal(&plain).is_ok());

        // The last counter of the space is never used (no wrap to 0).
        let mut s = ClientSession::new(SessionConfig {
            security: Some(Security::new(
                keys,
                *b"CLIENT01",
                Protection::Authenticated,
                u32::MAX - 1,
            )),
            ..SessionConfig::default()
        });
        assert!(s.seal(&plain).is_ok());
        let e = s.seal(&plain).unwrap_err();
        assert!(e.to_string().contains("change the encryption key"), "{e}");
    }
}
