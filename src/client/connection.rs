//! The connection driver: the one place that moves bytes between a [`Transport`] and the
//! sans-I/O HDLC link / wrapper decoder and client session (the ureq `run.rs` pattern).
//!
//! A [`Connection`] is one association: opened with SNRM/UA (HDLC) and AARQ/AARE, used for
//! GET/SET/ACTION, and released with RLRQ and DISC on every exit path (`Drop` included).

use super::error::{ClientError, Heard};
use super::referencing_memory;
use super::transport::Transport;
use crate::dlms::axdr::Data;
use crate::dlms::hdlc::{
    Deframer, Link, LinkError, LinkEvent, LinkParams, RawAddress, ServerAddress,
};
use crate::dlms::invoke_match::InvokeMatch;
use crate::dlms::session::{
    ClientSession, HlsReply, Negotiated, SessionConfig, SessionError, Step,
};
use crate::dlms::sn::association::Referencing;
use crate::dlms::sn::client::{SnReadExchange, SnWriteExchange};
use crate::dlms::sn::ShortNameMap;
use crate::dlms::wrapper::{self, WrapperDecoder};
use crate::dlms::xdlms::gbt::{GbtProgress, GENERAL_BLOCK_TRANSFER};
use crate::dlms::xdlms::{AttributeDescriptor, GetDataResult, MethodDescriptor, SelectiveAccess};
use std::time::{Duration, Instant};

/// How APDUs are framed on the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// IEC 62056-46 HDLC: client SAP and server address.
    Hdlc { client: u8, server: ServerAddress },
    /// IEC 62056-47 wrapper: client and server wPorts.
    Wrapper { client: u16, server: u16 },
}

#[derive(Debug, Clone)]
pub struct ConnectionOptions {
    /// How long to wait for the first frame of each answer.
    pub response_timeout: Duration,
    /// How long to wait for each further frame of a segmented answer (meters that pause
    /// between segments, like some L+G E450 firmwares, need this longer than the default).
    pub inter_frame_timeout: Duration,
    /// HDLC max information field we propose (both directions).
    pub max_info: u16,
    /// HDLC window we propose (both directions).
    pub window: u8,
    /// Send the SNRM parameter block even when it holds only the defaults.
    pub always_send_snrm_params: bool,
    /// A SNRM with a parameter block that gets no answer is tried once more without one
    /// (a meter that ignores such a SNRM rather than refusing it). Off on shared lines, where
    /// a silent meter must cost the line one time-out only.
    pub snrm_fallback_on_silence: bool,
    /// The least time between the close of one connection to this meter and the next
    /// (`reconnect_gap_s`; see `spacing`). Zero: none.
    pub reconnect_gap: Duration,
    /// The meter takes one connection at a time: no other connection of this process is made
    /// to it while this one is open (see `spacing`).
    pub single_connection: bool,
    /// Where the meter is (its endpoint), so that `referencing auto` remembers for the rest
    /// of the process what this meter speaks.
    pub meter_key: String,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            response_timeout: Duration::from_secs(5),
            inter_frame_timeout: Duration::from_secs(5),
            max_info: 128,
            window: 1,
            always_send_snrm_params: false,
            snrm_fallback_on_silence: true,
            reconnect_gap: Duration::ZERO,
            single_connection: false,
            meter_key: String::new(),
        }
    }
}

/// Per-connection network accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub frames_sent: u64,
    pub frames_received: u64,
    /// Request/response pairs (an APDU out, an APDU back).
    pub round_trips: u64,
    pub timeouts: u64,
    pub checksum_errors: u64,
    /// Frames or PDUs that were not for us or not for the current request.
    pub stale: u64,
    /// General-Block-Transfer blocks received (IEC 62056-5-3 9.3.11).
    pub gbt_blocks: u64,
}

enum Framer {
    Hdlc {
        link: Link,
        deframer: Deframer,
    },
    Wrapper {
        decoder: WrapperDecoder,
        client: u16,
        server: u16,
    },
}

/// Where a wait for an answer started: what had arrived by then.
#[derive(Debug, Clone, Copy, Default)]
struct WaitMark {
    bytes: u64,
    checksum_errors: u64,
}

pub struct Connection<T: Transport> {
    transport: T,
    framer: Framer,
    session: ClientSession,
    options: ConnectionOptions,
    stats: NetStats,
    open: bool,
    wait: WaitMark,
    /// The link came up only without a SNRM parameter block.
    fell_back: bool,
    /// An SN association's names, read from Association SN once per association.
    short_names: Option<ShortNameMap>,
    referencing: Referencing,
    framing: Framing,
    block_limit: usize,
    /// A fixed-invoke-id answer was logged for this connection.
    told_foreign_invoke: bool,
}

impl<T: Transport> Connection<T> {
    /// Connects the link and associates.
    pub fn open(
        transport: T,
        framing: Framing,
        session: SessionConfig,
        options: ConnectionOptions,
    ) -> Result<Self, ClientError> {
        let framer = match framing {
            Framing::Hdlc { client, server } => {
                let server =
                    RawAddress::server(server).ok_or(ClientError::Io(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "server address does not fit its size",
                    )))?;
                let proposed = LinkParams {
                    max_info_tx: options.max_info,
                    max_info_rx: options.max_info,
                    window_tx: options.window.clamp(1, 7),
                    window_rx: options.window.clamp(1, 7),
                };
                let mut link = Link::client(RawAddress::client(client), server, proposed);
                link.set_always_send_params(options.always_send_snrm_params);
                Framer::Hdlc {
                    link,
                    deframer: Deframer::new(),
                }
            }
            Framing::Wrapper { client, server } => Framer::Wrapper {
                decoder: WrapperDecoder::new(),
                client,
                server,
            },
        };
        let referencing = session.referencing;
        let block_limit = session.max_block_transfer;
        let mut conn = Connection {
            transport,
            framer,
            session: ClientSession::new(session),
            short_names: None,
            referencing,
            framing,
            block_limit,
            options,
            stats: NetStats::default(),
            wait: WaitMark::default(),
            open: false,
            fell_back: false,
            told_foreign_invoke: false,
        };
        conn.connect_link()?;
        conn.open = true;
        conn.associate()?;
        Ok(conn)
    }

    /// AARQ/AARE in the configured referencing; `auto` proposes what last worked for this
    /// meter (LN at first) and, when the meter refuses that context or stays silent, the other.
    fn associate(&mut self) -> Result<(), ClientError> {
        if self.referencing != Referencing::Auto {
            return self.associate_once();
        }
        // Without an endpoint name (ad hoc connections, tests) nothing is remembered.
        let key = (!self.options.meter_key.is_empty()).then(|| self.referencing_key());
        let remembered = key.as_deref().and_then(referencing_memory::recall);
        self.session
            .use_short_names(remembered == Some(Referencing::Sn));
        let result = match self.associate_once() {
            // On a shared line a silent meter must cost one time-out only (as for SNRM).
            Err(e)
                if referencing_memory::worth_the_other(
                    &e,
                    self.options.snrm_fallback_on_silence,
                ) =>
            {
                let other = !self.session.short_names();
                self.session.use_short_names(other);
                self.associate_once()
            }
            other => other,
        };
        if let (Ok(()), Some(key)) = (&result, key) {
            let worked = if self.session.short_names() {
                Referencing::Sn
            } else {
                Referencing::Ln
            };
            referencing_memory::remember(key, worked);
        }
        result
    }

    /// The meter's identity, for `auto`'s memory: where it is and its address on the line.
    fn referencing_key(&self) -> String {
        format!("{} {:?}", self.options.meter_key, self.framing)
    }

    fn associate_once(&mut self) -> Result<(), ClientError> {
        self.short_names = None;
        let aarq = self.session.aarq()?;
        let aare = self.exchange(&aarq, "AARQ")?;
        self.session.on_aare(&aare)?;
        // HLS passes 3 and 4: prove we know the secret, check that the meter does.
        match self.session.hls_reply()? {
            None => {}
            Some(HlsReply::Ln(mut exchange)) => {
                let first = exchange.start();
                let returned = self.run(first, |apdu| exchange.on_response(apdu), "HLS reply")?;
                self.session.on_hls_result(returned)?;
            }
            Some(HlsReply::Sn(mut exchange)) => {
                let first = exchange.request().to_vec();
                let results = self.run(first, |apdu| exchange.on_response(apdu), "HLS reply")?;
                let returned = match results.into_iter().next() {
                    Some(Ok(data)) => Some(data),
                    // The meter refused our proof (wrong secret) or has no such method.
                    Some(Err(e)) => {
                        return Err(SessionError::HlsFailed(format!(
                            "the meter refused our reply to its challenge ({e})"
                        ))
                        .into())
                    }
                    None => None,
                };
                self.session.on_hls_result(returned)?;
            }
        }
        if self.session.short_names() {
            // Blue Book 4.4.4: the names come from Association SN's object_list, read once.
            let mut exchange = SnReadExchange::object_list(self.block_limit);
            let first = exchange.request().to_vec();
            let list = self.run(first, |apdu| exchange.on_response(apdu), "object list")?;
            let list = match list.into_iter().next() {
                Some(Ok(list)) => list,
                Some(Err(e)) => return Err(SessionError::Refused(e).into()),
                None => return Err(SessionError::Unexpected("empty object list answer").into()),
            };
            let map = ShortNameMap::from_object_list(&list).map_err(SessionError::ShortName)?;
            self.short_names = Some(map);
        }
        Ok(())
    }

    /// The short names of an SN association (`None` for LN).
    pub fn short_names(&self) -> Option<&ShortNameMap> {
        self.short_names.as_ref()
    }

    pub fn negotiated(&self) -> Option<Negotiated> {
        self.session.negotiated()
    }

    pub fn stats(&self) -> NetStats {
        let mut s = self.stats;
        if let Framer::Hdlc { deframer, .. } = &self.framer {
            s.checksum_errors = deframer.stats().checksum_errors;
        }
        s
    }

    /// The next invocation counter of a ciphered association (to persist).
    pub fn invocation_counter(&self) -> u32 {
        self.session.invocation_counter()
    }

    pub fn max_get_batch(&self) -> usize {
        self.session.max_get_batch()
    }

    fn max_pdu(&self) -> usize {
        self.negotiated()
            .map_or(0, |n| usize::from(n.server_max_pdu))
    }

    /// SNRM until UA. A meter that answers a parameter block with DM or FRMR (some refuse any
    /// block, DLMS-NOTES) is asked once more without one: the defaults, 128 bytes, window 1.
    fn connect_link(&mut self) -> Result<(), ClientError> {
        let fallback = |e: &ClientError, on_silence: bool| match e {
            ClientError::Link(LinkError::DisconnectedMode | LinkError::FrameRejected) => true,
            ClientError::NoAnswer { .. } => on_silence,
            _ => false,
        };
        match self.snrm() {
            Err(e)
                if self.proposes_parameters()
                    && fallback(&e, self.options.snrm_fallback_on_silence) =>
            {
                if let Framer::Hdlc { link, .. } = &mut self.framer {
                    link.propose(LinkParams::default());
                }
                self.snrm()?;
                self.fell_back = true;
                Ok(())
            }
            other => other,
        }
    }

    /// Whether the link came up only with a SNRM without parameters (after the meter refused
    /// or ignored our block): later connections can skip the block.
    pub fn fell_back_to_default_link(&self) -> bool {
        self.fell_back
    }

    /// When the link fell back: what to set so that the first attempt is not wasted again
    /// (`meter`: the stored meter's name, for `meter edit`; `None`: flags of `read`).
    pub fn default_link_advice(&self, meter: Option<&str>) -> Option<String> {
        let how = match meter {
            Some(name) => format!("meter edit {name:?} --max-info 128 --hdlc-window 1"),
            None => "--max-info 128 --hdlc-window 1".to_string(),
        };
        self.fell_back.then(|| {
            format!(
                "the meter does not take a SNRM parameter block: using the defaults (128 bytes, window 1); {how} saves the first attempt"
            )
        })
    }

    fn proposes_parameters(&self) -> bool {
        matches!(&self.framer, Framer::Hdlc { link, .. } if link.proposes_parameters())
    }

    fn snrm(&mut self) -> Result<(), ClientError> {
        let Framer::Hdlc { link, .. } = &mut self.framer else {
            return Ok(());
        };
        link.connect();
        self.flush()?;
        self.mark_wait();
        let deadline = Instant::now() + self.options.response_timeout;
        loop {
            let Framer::Hdlc { link, deframer } = &mut self.framer else {
                unreachable!()
            };
            while let Some(frame) = deframer.next_frame() {
                self.stats.frames_received += 1;
                match link.handle_frame(&frame) {
                    Ok(Some(LinkEvent::Connected(_))) => return Ok(()),
                    Ok(_) | Err(LinkError::WrongAddress) | Err(LinkError::Unexpected(_)) => {
                        self.stats.stale += 1
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            self.receive(deadline, "SNRM", self.options.response_timeout)?;
        }
    }

    fn checksum_errors(&self) -> u64 {
        match &self.framer {
            Framer::Hdlc { deframer, .. } => deframer.stats().checksum_errors,
            Framer::Wrapper { .. } => 0,
        }
    }

    /// A wait for an answer starts (or starts again after progress).
    fn mark_wait(&mut self) {
        self.wait = WaitMark {
            bytes: self.stats.bytes_received,
            checksum_errors: self.checksum_errors(),
        };
    }

    /// What arrived since the wait started.
    fn heard(&self) -> Heard {
        let bad = self.checksum_errors() - self.wait.checksum_errors;
        let bytes = self.stats.bytes_received - self.wait.bytes;
        let pending = match &self.framer {
            Framer::Hdlc { deframer, .. } => deframer.buffered(),
            Framer::Wrapper { decoder, .. } => decoder.buffered(),
        } as u64;
        if bad > 0 {
            Heard::BadChecksums(bad)
        } else if bytes == 0 {
            Heard::Nothing
        } else if pending > 0 {
            Heard::Incomplete(pending)
        } else {
            Heard::Unframed(bytes)
        }
    }

    /// Writes everything the link has queued.
    fn flush(&mut self) -> Result<(), ClientError> {
        if let Framer::Hdlc { link, .. } = &mut self.framer {
            while let Some(frame) = link.poll_transmit() {
                let bytes = frame.map_err(LinkError::Encode)?;
                self.stats.frames_sent += 1;
                self.stats.bytes_sent += bytes.len() as u64;
                self.transport.send(&bytes)?;
            }
        }
        Ok(())
    }

    /// Reads once into the framer; fails at `deadline` (reported as `after`).
    fn receive(
        &mut self,
        deadline: Instant,
        waiting_for: &'static str,
        after: Duration,
    ) -> Result<(), ClientError> {
        let now = Instant::now();
        if now >= deadline {
            self.stats.timeouts += 1;
            return Err(ClientError::NoAnswer {
                waiting_for,
                after,
                heard: self.heard(),
            });
        }
        let mut buf = [0u8; 2048];
        let n = self.transport.recv(&mut buf, deadline - now)?;
        self.stats.bytes_received += n as u64;
        match &mut self.framer {
            Framer::Hdlc { deframer, .. } => deframer.push(&buf[..n]),
            Framer::Wrapper { decoder, .. } => decoder.push(&buf[..n]),
        }
        Ok(())
    }

    /// Sends one APDU and returns the next APDU received.
    fn exchange(&mut self, apdu: &[u8], waiting_for: &'static str) -> Result<Vec<u8>, ClientError> {
        self.send_apdu(apdu)?;
        self.stats.round_trips += 1;
        self.receive_apdu(waiting_for)
    }

    fn send_apdu(&mut self, apdu: &[u8]) -> Result<(), ClientError> {
        match &mut self.framer {
            Framer::Hdlc { link, .. } => {
                link.send(apdu)?;
                self.flush()
            }
            Framer::Wrapper { client, server, .. } => {
                let bytes = wrapper::wrap(*client, *server, apdu).ok_or(ClientError::Io(
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "APDU longer than the wrapper allows",
                    ),
                ))?;
                self.stats.frames_sent += 1;
                self.stats.bytes_sent += bytes.len() as u64;
                self.transport.send(&bytes)?;
                Ok(())
            }
        }
    }

    fn receive_apdu(&mut self, waiting_for: &'static str) -> Result<Vec<u8>, ClientError> {
        let mut deadline = Instant::now() + self.options.response_timeout;
        let mut after = self.options.response_timeout;
        self.mark_wait();
        loop {
            match &mut self.framer {
                Framer::Hdlc { link, deframer } => {
                    let mut progressed = false;
                    while let Some(frame) = deframer.next_frame() {
                        self.stats.frames_received += 1;
                        progressed = true;
                        match link.handle_frame(&frame) {
                            Ok(Some(LinkEvent::Apdu(apdu))) => {
                                self.flush()?;
                                return Ok(apdu);
                            }
                            Ok(_) => {}
                            Err(LinkError::WrongAddress) => self.stats.stale += 1,
                            Err(e) => return Err(e.into()),
                        }
                    }
                    if progressed {
                        // RRs for segments, next segments of our request.
                        self.flush()?;
                        after = self.options.inter_frame_timeout;
                        deadline = Instant::now() + after;
                        self.mark_wait();
                    }
                }
                Framer::Wrapper {
                    decoder,
                    client,
                    server,
                } => match decoder.next_pdu() {
                    Ok(Some(pdu)) if pdu.destination == *client && pdu.source == *server => {
                        self.stats.frames_received += 1;
                        return Ok(pdu.apdu);
                    }
                    Ok(Some(_)) => {
                        self.stats.stale += 1;
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => return Err(ClientError::Session(e.into())),
                },
            }
            self.receive(deadline, waiting_for, after)?;
        }
    }

    /// Runs an exchange state machine to its end, ignoring stale answers.
    fn run<R>(
        &mut self,
        first: Vec<u8>,
        mut on_response: impl FnMut(&[u8]) -> Result<Step<R>, crate::dlms::session::SessionError>,
        waiting_for: &'static str,
    ) -> Result<R, ClientError> {
        // Requests are ciphered and answers deciphered here when the association uses
        // security; the exchanges themselves only ever see plain APDUs.
        let sealed = self.session.seal(&first)?;
        let mut apdu = self.exchange(&sealed, waiting_for)?;
        loop {
            let whole = self.join_general_blocks(apdu, waiting_for)?;
            let plain = self.session.unseal(&whole)?;
            match on_response(&plain)? {
                Step::Done(r) => return Ok(r),
                Step::Send(next) => {
                    let sealed = self.session.seal(&next)?;
                    apdu = self.exchange(&sealed, waiting_for)?;
                }
                Step::Ignore => {
                    self.stats.stale += 1;
                    apdu = self.receive_apdu(waiting_for)?;
                }
            }
        }
    }

    /// An answer in general block transfer (IEC 62056-5-3 9.3.11): acknowledges each window,
    /// asks again for a lost block, and returns the APDU the blocks carry (still ciphered, if
    /// it is: GBT sits outside the security layer). Any other APDU is returned as it is.
    fn join_general_blocks(
        &mut self,
        first: Vec<u8>,
        waiting_for: &'static str,
    ) -> Result<Vec<u8>, ClientError> {
        if first.first() != Some(&GENERAL_BLOCK_TRANSFER) {
            return Ok(first);
        }
        let mut reassembler = self.session.gbt_reassembler()?;
        let mut block = first;
        loop {
            self.stats.gbt_blocks += 1;
            let progress = reassembler
                .push_apdu(&block)
                .map_err(crate::dlms::session::SessionError::from)?;
            block = match progress {
                GbtProgress::Complete(apdu) => return Ok(apdu),
                GbtProgress::Wait => self.receive_apdu(waiting_for)?,
                GbtProgress::Send(ack) => self.exchange(&ack.encode(), waiting_for)?,
            };
        }
    }

    /// Reads attributes in one GET (normal, or with-list when several; see
    /// [`Connection::max_get_batch`]), following block transfers.
    pub fn get(
        &mut self,
        items: Vec<(AttributeDescriptor, Option<SelectiveAccess>)>,
    ) -> Result<Vec<GetDataResult>, ClientError> {
        if let Some(map) = &self.short_names {
            let mut exchange = SnReadExchange::new(map, &items, self.block_limit)?;
            let first = exchange.request().to_vec();
            return self.run(first, |apdu| exchange.on_response(apdu), "Read");
        }
        let mut exchange = self.session.get(items)?;
        let first = exchange.request().to_vec();
        let result = self.run(first, |apdu| exchange.on_response(apdu), "GET");
        self.note_invoke(exchange.invoke_match(), &result);
        result
    }

    /// After an LN exchange: a request that timed out makes its late answer stale; an answer
    /// taken with another invoke id (fixed-id firmware) is said once per connection.
    fn note_invoke<R>(&mut self, ids: &InvokeMatch, result: &Result<R, ClientError>) {
        if matches!(result, Err(ClientError::NoAnswer { .. })) {
            self.session.abandon(ids.own());
        }
        if let Some(got) = ids.foreign() {
            if !self.told_foreign_invoke {
                self.told_foreign_invoke = true;
                log::info!(
                    "the meter answered a request of invoke id {} with invoke id {got}: taken as \
                     the answer (its firmware uses a fixed invoke id; said once per connection)",
                    ids.own().invoke_id()
                );
            }
        }
    }

    pub fn set(&mut self, attribute: AttributeDescriptor, value: &Data) -> Result<(), ClientError> {
        if let Some(map) = &self.short_names {
            let max = self.max_pdu();
            let mut exchange = SnWriteExchange::attribute(map, attribute, value, max)?;
            let first = exchange.request().to_vec();
            return self.run(first, |apdu| exchange.on_response(apdu), "Write");
        }
        let mut exchange = self.session.set(attribute, value)?;
        let first = exchange.start();
        let result = self.run(first, |apdu| exchange.on_response(apdu), "SET");
        self.note_invoke(exchange.invoke_match(), &result);
        result
    }

    pub fn action(
        &mut self,
        method: MethodDescriptor,
        parameters: Option<&Data>,
    ) -> Result<Option<Data>, ClientError> {
        if let Some(map) = &self.short_names {
            let max = self.max_pdu();
            let mut exchange = SnWriteExchange::method(map, method, parameters, max)?;
            let first = exchange.request().to_vec();
            self.run(first, |apdu| exchange.on_response(apdu), "Write (method)")?;
            return Ok(None);
        }
        let mut exchange = self.session.action(method, parameters)?;
        let first = exchange.start();
        let result = self.run(first, |apdu| exchange.on_response(apdu), "ACTION");
        self.note_invoke(exchange.invoke_match(), &result);
        result
    }

    /// Releases the association (RLRQ) and the link (DISC), best effort and bounded in time:
    /// a meter that does not answer is not waited for beyond one response timeout each.
    pub fn release(&mut self) {
        if !self.open {
            return;
        }
        self.open = false;
        let rlrq = self.session.rlrq();
        self.session.reset();
        let _ = self.exchange(&rlrq, "RLRQ");
        if let Framer::Hdlc { link, .. } = &mut self.framer {
            link.disconnect();
            let _ = self.flush();
            let deadline = Instant::now() + self.options.response_timeout;
            while let Framer::Hdlc { link, deframer } = &mut self.framer {
                let mut done = false;
                while let Some(frame) = deframer.next_frame() {
                    if let Ok(Some(LinkEvent::Disconnected)) | Err(LinkError::DisconnectedMode) =
                        link.handle_frame(&frame)
                    {
                        done = true;
                    }
                }
                if done
                    || self
                        .receive(deadline, "DISC", self.options.response_timeout)
                        .is_err()
                {
                    break;
                }
            }
        }
    }
}

/// Sends a DISC to the meter on a fresh transport and waits (at most `timeout`) for its
/// answer: the release of a link a meter still holds from a connection that was lost without
/// one (meters such as the MEM600 refuse a new link with DM until the old one is released).
/// The wrapper has no link to release: nothing is sent.
pub fn release_held_link<T: Transport>(
    transport: &mut T,
    framing: Framing,
    timeout: Duration,
) -> Result<(), ClientError> {
    let Framing::Hdlc { client, server } = framing else {
        return Ok(());
    };
    let server = RawAddress::server(server).ok_or(ClientError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "server address does not fit its size",
    )))?;
    let mut link = Link::client(RawAddress::client(client), server, LinkParams::default());
    link.disconnect();
    while let Some(frame) = link.poll_transmit() {
        transport.send(&frame.map_err(LinkError::Encode)?)?;
    }
    // UA or DM: either way the meter has heard it; what it says does not matter.
    let deadline = Instant::now() + timeout;
    let mut deframer = Deframer::new();
    let mut buf = [0u8; 256];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let n = transport.recv(&mut buf, left)?;
        deframer.push(&buf[..n]);
        if deframer.next_frame().is_some() {
            break;
        }
        if n == 0 && left.is_zero() {
            break;
        }
    }
    Ok(())
}

impl<T: Transport> Drop for Connection<T> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlms::hdlc::ServerAddress;

    /// Answers every request with the same bytes once, then silence.
    struct Scripted(Option<Vec<u8>>);

    impl Transport for Scripted {
        fn send(&mut self, _: &[u8]) -> std::io::Result<()> {
            Ok(())
        }
        fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
            match self.0.take() {
                Some(bytes) => {
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    Ok(bytes.len())
                }
                None => {
                    std::thread::sleep(timeout.min(Duration::from_millis(5)));
                    Ok(0)
                }
            }
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        crate::hex::parse(s).unwrap()
    }

    /// What the SNRM wait ends with, for these bytes from the meter.
    fn snrm_outcome(answer: Option<Vec<u8>>) -> Result<(), ClientError> {
        let options = ConnectionOptions {
            response_timeout: Duration::from_millis(60),
            ..ConnectionOptions::default()
        };
        let framing = Framing::Hdlc {
            client: 16,
            server: ServerAddress::new(1, None),
        };
        Connection::open(Scripted(answer), framing, SessionConfig::default(), options).map(|_| ())
    }

    #[test]
    fn a_wait_without_an_answer_says_what_did_arrive() {
        // dlms-cosem 25.1.0's UA (tests/vectors/independent.json, hdlc_ua_from_meter).
        let ua = hex("7EA01E210373C37A818012050180060180070400000001080400000001533B7E");
        let heard = |answer| match snrm_outcome(answer) {
            Err(ClientError::NoAnswer { heard, .. }) => heard,
            other => panic!("{other:?}"),
        };
        assert_eq!(heard(None), Heard::Nothing);
        let mut flipped = ua.clone();
        flipped[12] ^= 0x01;
        assert_eq!(heard(Some(flipped)), Heard::BadChecksums(1));
        assert_eq!(heard(Some(ua[..10].to_vec())), Heard::Incomplete(10));
        assert_eq!(heard(Some(b"hello".to_vec())), Heard::Unframed(5));
        // The good UA passes the SNRM wait; the AARQ wait then hears nothing.
        match snrm_outcome(Some(ua)) {
            Err(ClientError::NoAnswer {
                waiting_for, heard, ..
            }) => assert_eq!((waiting_for, heard), ("AARQ", Heard::Nothing)),
            other => panic!("{other:?}"),
        }
        let text = ClientError::NoAnswer {
            waiting_for: "GET",
            after: Duration::from_millis(800),
            heard: Heard::BadChecksums(2),
        }
        .to_string();
        assert!(
            text.contains("failed its checksum") && !text.contains("addresses"),
            "{text}"
        );
    }
}
