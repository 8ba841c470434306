//! The HDLC link state machine (IEC 62056-46 clause 6.4.4; Green Book 8.4.5), sans-I/O.
//!
//! One type serves both ends: the client (a bridge reading a meter) and the server (the meter
//! simulator). Feed it frames from the [`super::Deframer`] with [`Link::handle_frame`]; take the
//! frames it wants sent with [`Link::poll_transmit`].
//!
//! - Connection: SNRM -> UA (with the parameter block), DISC -> UA or DM.
//! - Sending an APDU: the LLC header is prepended, the result is cut into segments of at most
//!   the negotiated max-info-field length; every segment but the last has the segmentation bit.
//!   Up to the negotiated transmit window of segments go out back to back, the poll bit set only
//!   on the last of them (IEC 62056-46 6.4.4.4.3: the sender polls for the acknowledgement once
//!   per window); the next window follows the peer's RR. With window 1 every segment waits
//!   for its RR.
//! - Receiving: I-frames must carry N(S) equal to the next expected (V(R)); a segment carrying
//!   the poll bit is acknowledged with RR whose N(R) is that next expected N(S) (the last
//!   received plus 1, modulo 8); segments inside a window are acknowledged together by that RR.
//!   A repeated I-frame (N(S) = V(R) - 1, the peer missed our RR) is acknowledged again and
//!   dropped, so a late duplicate is never taken for a new answer.

use super::control::Control;
use super::frame::{Frame, FrameTooLong, RawAddress};
use super::params::LinkParams;
use super::{LLC_REQUEST, LLC_RESPONSE};
use crate::dlms::DecodeError;
use std::collections::VecDeque;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Disconnected,
    Connecting,
    Connected,
    Disconnecting,
}

/// What a received frame meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The link is up with these parameters (our view: `max_info_tx` is what we may send).
    Connected(LinkParams),
    /// A complete APDU (LLC header removed), reassembled from its segments.
    Apdu(Vec<u8>),
    /// The link is down (DISC accepted or confirmed).
    Disconnected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    /// The frame is for another address (a stray or late frame); it was ignored.
    WrongAddress,
    /// The peer answered DM: it refuses the connection or is not connected.
    DisconnectedMode,
    /// The peer answered FRMR: it rejected one of our frames.
    FrameRejected,
    /// A frame that makes no sense in the current state.
    Unexpected(Control),
    /// An I-frame out of sequence.
    Sequence {
        expected: u8,
        received: u8,
    },
    /// An operation that needs a connected link.
    NotConnected,
    /// A new APDU while the previous one is still being sent.
    Busy,
    /// A reassembled APDU exceeded the limit.
    ApduTooLong(usize),
    /// The information field lacks the LLC header.
    MissingLlc,
    Decode(DecodeError),
    Encode(FrameTooLong),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::WrongAddress => write!(f, "HDLC frame for another address ignored"),
            LinkError::DisconnectedMode => write!(f, "peer answered DM (disconnected mode)"),
            LinkError::FrameRejected => write!(f, "peer answered FRMR (frame rejected)"),
            LinkError::Unexpected(c) => write!(f, "unexpected HDLC frame {c:?}"),
            LinkError::Sequence { expected, received } => {
                write!(f, "HDLC I-frame N(S)={received}, expected {expected}")
            }
            LinkError::NotConnected => write!(f, "HDLC link not connected"),
            LinkError::Busy => write!(f, "HDLC link still sending the previous APDU"),
            LinkError::ApduTooLong(n) => write!(f, "reassembled APDU of {n} bytes is too long"),
            LinkError::MissingLlc => write!(f, "I-frame without the LLC header"),
            LinkError::Decode(e) => write!(f, "HDLC: {e}"),
            LinkError::Encode(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LinkError {}

impl From<DecodeError> for LinkError {
    fn from(e: DecodeError) -> Self {
        LinkError::Decode(e)
    }
}

impl From<FrameTooLong> for LinkError {
    fn from(e: FrameTooLong) -> Self {
        LinkError::Encode(e)
    }
}

/// The link of one client-server pair.
#[derive(Debug)]
pub struct Link {
    role: Role,
    local: RawAddress,
    /// For a server, learned from the SNRM.
    remote: Option<RawAddress>,
    proposed: LinkParams,
    /// Send the parameter block in SNRM even when it holds only defaults.
    always_send_params: bool,
    params: LinkParams,
    state: State,
    /// V(S): N(S) of the next I-frame we send.
    vs: u8,
    /// V(R): N(S) we expect next.
    vr: u8,
    pending_segments: VecDeque<Vec<u8>>,
    /// Segments of the current window sent and not yet acknowledged.
    in_flight: usize,
    /// Segments received since our last RR.
    rx_unacked: usize,
    rx: Vec<u8>,
    rx_started: bool,
    max_apdu: usize,
    outbox: VecDeque<Frame>,
}

impl Link {
    /// A client link from `client` to `server`, proposing `proposed` (our view).
    pub fn client(client: RawAddress, server: RawAddress, proposed: LinkParams) -> Link {
        Link::new(Role::Client, client, Some(server), proposed)
    }

    /// A server link answering at `server` to any client.
    pub fn server(server: RawAddress, proposed: LinkParams) -> Link {
        Link::new(Role::Server, server, None, proposed)
    }

    fn new(
        role: Role,
        local: RawAddress,
        remote: Option<RawAddress>,
        proposed: LinkParams,
    ) -> Link {
        Link {
            role,
            local,
            remote,
            proposed,
            always_send_params: false,
            params: LinkParams::default(),
            state: State::Disconnected,
            vs: 0,
            vr: 0,
            pending_segments: VecDeque::new(),
            in_flight: 0,
            rx_unacked: 0,
            rx: Vec::new(),
            rx_started: false,
            max_apdu: 0xFFFF + 16,
            outbox: VecDeque::new(),
        }
    }

    /// Some meters require the SNRM parameter block even with default values; others reject
    /// any block. By default it is sent only when it differs from the defaults.
    pub fn set_always_send_params(&mut self, on: bool) {
        self.always_send_params = on;
    }

    /// What a new SNRM proposes.
    pub fn propose(&mut self, proposed: LinkParams) {
        self.proposed = proposed;
    }

    /// Whether a SNRM carries a parameter block.
    pub fn proposes_parameters(&self) -> bool {
        self.always_send_params || self.proposed != LinkParams::default()
    }

    /// Limit for a reassembled APDU.
    pub fn set_max_apdu(&mut self, bytes: usize) {
        self.max_apdu = bytes;
    }

    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// The negotiated parameters (our view).
    pub fn params(&self) -> LinkParams {
        self.params
    }

    /// The client address of the current peer (server role) or our own (client role).
    pub fn client_address(&self) -> Option<RawAddress> {
        match self.role {
            Role::Client => Some(self.local),
            Role::Server => self.remote,
        }
    }

    /// The next frame to send, as bytes.
    pub fn poll_transmit(&mut self) -> Option<Result<Vec<u8>, FrameTooLong>> {
        self.outbox.pop_front().map(|f| f.emit())
    }

    /// Client: asks for a connection (queues SNRM).
    pub fn connect(&mut self) {
        let info = if self.proposes_parameters() {
            self.proposed.emit()
        } else {
            Vec::new()
        };
        self.reset_sequence();
        self.queue(Control::Snrm { poll: true }, info, false);
        self.state = State::Connecting;
    }

    /// Client: asks to disconnect (queues DISC).
    pub fn disconnect(&mut self) {
        self.queue(Control::Disc { poll: true }, Vec::new(), false);
        self.state = State::Disconnecting;
    }

    /// Forgets the connection without telling the peer (after a transport loss).
    pub fn abort(&mut self) {
        self.state = State::Disconnected;
        self.reset_sequence();
        self.outbox.clear();
        if self.role == Role::Server {
            self.remote = None;
        }
    }

    /// Queues an APDU for sending, segmented as negotiated.
    pub fn send(&mut self, apdu: &[u8]) -> Result<(), LinkError> {
        if self.state != State::Connected {
            return Err(LinkError::NotConnected);
        }
        if !self.pending_segments.is_empty() {
            return Err(LinkError::Busy);
        }
        let llc = match self.role {
            Role::Client => LLC_REQUEST,
            Role::Server => LLC_RESPONSE,
        };
        let mut data = Vec::with_capacity(apdu.len() + 3);
        data.extend_from_slice(&llc);
        data.extend_from_slice(apdu);
        let max = usize::from(self.params.max_info_tx).max(1);
        self.pending_segments = data.chunks(max).map(<[u8]>::to_vec).collect();
        self.send_window();
        Ok(())
    }

    /// Sends the next window of segments: up to the negotiated transmit window, the poll bit
    /// on the last one sent.
    fn send_window(&mut self) {
        let window = usize::from(self.params.window_tx.clamp(1, 7));
        self.in_flight = 0;
        while self.in_flight < window {
            let Some(segment) = self.pending_segments.pop_front() else {
                break;
            };
            self.in_flight += 1;
            let more = !self.pending_segments.is_empty();
            let control = Control::I {
                ns: self.vs,
                nr: self.vr,
                poll: !more || self.in_flight == window,
            };
            self.vs = (self.vs + 1) % 8;
            self.queue(control, segment, more);
        }
    }

    fn queue(&mut self, control: Control, info: Vec<u8>, segmented: bool) {
        if let Some(remote) = self.remote {
            self.outbox.push_back(Frame {
                segmented,
                destination: remote,
                source: self.local,
                control,
                info,
            });
        }
    }

    fn reset_sequence(&mut self) {
        self.vs = 0;
        self.vr = 0;
        self.pending_segments.clear();
        self.in_flight = 0;
        self.rx_unacked = 0;
        self.rx.clear();
        self.rx_started = false;
    }

    /// Handles one received frame.
    pub fn handle_frame(&mut self, frame: &Frame) -> Result<Option<LinkEvent>, LinkError> {
        if frame.destination != self.local {
            return Err(LinkError::WrongAddress);
        }
        match (self.role, frame.control) {
            (Role::Server, Control::Snrm { .. }) => return self.accept_snrm(frame),
            (_, _) if self.remote != Some(frame.source) => return Err(LinkError::WrongAddress),
            _ => {}
        }
        match frame.control {
            Control::Ua { .. } => match self.state {
                State::Connecting => {
                    // The UA's block is the server's view; swap it into ours. A malformed block
                    // is read leniently: the meter has accepted the connection.
                    let theirs = LinkParams::parse(&frame.info)
                        .unwrap_or_else(|_| LinkParams::parse_lenient(&frame.info))
                        .swapped();
                    self.params = LinkParams::negotiate(self.proposed, theirs);
                    self.state = State::Connected;
                    Ok(Some(LinkEvent::Connected(self.params)))
                }
                State::Disconnecting => {
                    self.state = State::Disconnected;
                    Ok(Some(LinkEvent::Disconnected))
                }
                _ => Err(LinkError::Unexpected(frame.control)),
            },
            Control::Dm { .. } => {
                let was = self.state;
                self.state = State::Disconnected;
                if was == State::Disconnecting {
                    Ok(Some(LinkEvent::Disconnected))
                } else {
                    Err(LinkError::DisconnectedMode)
                }
            }
            Control::Disc { .. } => {
                if self.state == State::Connected {
                    self.queue(Control::Ua { poll: true }, Vec::new(), false);
                    self.abort_keep_outbox();
                    Ok(Some(LinkEvent::Disconnected))
                } else {
                    self.queue(Control::Dm { poll: true }, Vec::new(), false);
                    Ok(None)
                }
            }
            Control::Frmr { .. } => {
                self.state = State::Disconnected;
                Err(LinkError::FrameRejected)
            }
            Control::Rr { nr, .. } => {
                if self.state != State::Connected {
                    return Err(LinkError::Unexpected(frame.control));
                }
                // RR with N(R) = V(S) acknowledges the window sent; any other N(R) (a poll
                // repeated by the peer) leaves the next window where it is.
                if nr == self.vs {
                    self.send_window();
                }
                Ok(None)
            }
            Control::Rnr { .. } => Ok(None),
            Control::I { ns, poll, .. } => self.receive_i(frame, ns, poll),
            other => Err(LinkError::Unexpected(other)),
        }
    }

    fn abort_keep_outbox(&mut self) {
        self.state = State::Disconnected;
        self.reset_sequence();
    }

    fn accept_snrm(&mut self, frame: &Frame) -> Result<Option<LinkEvent>, LinkError> {
        let theirs = LinkParams::parse(&frame.info)?.swapped();
        self.remote = Some(frame.source);
        self.params = LinkParams::negotiate(self.proposed, theirs);
        self.reset_sequence();
        self.state = State::Connected;
        self.queue(Control::Ua { poll: true }, self.params.emit(), false);
        Ok(Some(LinkEvent::Connected(self.params)))
    }

    fn receive_i(
        &mut self,
        frame: &Frame,
        ns: u8,
        poll: bool,
    ) -> Result<Option<LinkEvent>, LinkError> {
        if self.state != State::Connected {
            if self.role == Role::Server {
                self.queue(Control::Dm { poll: true }, Vec::new(), false);
            }
            return Err(LinkError::NotConnected);
        }
        if ns != self.vr {
            if ns == (self.vr + 7) % 8 {
                // A repeat: the peer missed our acknowledgement. Acknowledge again, drop it.
                self.queue(
                    Control::Rr {
                        nr: self.vr,
                        poll: true,
                    },
                    Vec::new(),
                    false,
                );
                return Ok(None);
            }
            return Err(LinkError::Sequence {
                expected: self.vr,
                received: ns,
            });
        }
        self.vr = (self.vr + 1) % 8;
        let mut info: &[u8] = &frame.info;
        if !self.rx_started {
            let expected_llc = match self.role {
                Role::Client => LLC_RESPONSE,
                Role::Server => LLC_REQUEST,
            };
            info = info
                .strip_prefix(&expected_llc[..])
                .ok_or(LinkError::MissingLlc)?;
            self.rx_started = true;
        }
        if self.rx.len() + info.len() > self.max_apdu {
            let n = self.rx.len() + info.len();
            self.rx.clear();
            self.rx_started = false;
            return Err(LinkError::ApduTooLong(n));
        }
        self.rx.extend_from_slice(info);
        if frame.segmented {
            // Inside a window the sender waits for nothing: its poll, or a full receive window
            // (a peer that forgets the poll bit), asks for the RR.
            self.rx_unacked += 1;
            if !poll && self.rx_unacked < usize::from(self.params.window_rx.max(1)) {
                return Ok(None);
            }
            self.rx_unacked = 0;
            self.queue(
                Control::Rr {
                    nr: self.vr,
                    poll: true,
                },
                Vec::new(),
                false,
            );
            return Ok(None);
        }
        self.rx_started = false;
        self.rx_unacked = 0;
        Ok(Some(LinkEvent::Apdu(std::mem::take(&mut self.rx))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlms::hdlc::{Deframer, ServerAddress};

    fn server_addr() -> RawAddress {
        RawAddress::server(ServerAddress::new(1, None)).unwrap()
    }

    fn pair(client_params: LinkParams, server_params: LinkParams) -> (Link, Link) {
        let client = Link::client(RawAddress::client(16), server_addr(), client_params);
        let server = Link::server(server_addr(), server_params);
        (client, server)
    }

    /// Moves every queued frame from `from` to `to` through a deframer, collecting events.
    fn pump(from: &mut Link, to: &mut Link) -> Vec<LinkEvent> {
        let mut d = Deframer::new();
        let mut events = Vec::new();
        while let Some(bytes) = from.poll_transmit() {
            d.push(&bytes.unwrap());
            while let Some(f) = d.next_frame() {
                if let Some(e) = to.handle_frame(&f).unwrap() {
                    events.push(e);
                }
            }
        }
        events
    }

    /// Runs both directions until neither has anything to send.
    fn converse(c: &mut Link, s: &mut Link) -> (Vec<LinkEvent>, Vec<LinkEvent>) {
        let (mut at_client, mut at_server) = (Vec::new(), Vec::new());
        loop {
            let a = pump(c, s);
            let b = pump(s, c);
            let quiet = c.outbox.is_empty() && s.outbox.is_empty();
            at_server.extend(a);
            at_client.extend(b);
            if quiet {
                return (at_client, at_server);
            }
        }
    }

    #[test]
    fn snrm_without_block_matches_gurux() {
        let (mut c, _) = pair(LinkParams::default(), LinkParams::default());
        c.connect();
        assert_eq!(
            c.poll_transmit().unwrap().unwrap(),
            [0x7E, 0xA0, 0x07, 0x03, 0x21, 0x93, 0x0F, 0x01, 0x7E]
        );
    }

    #[test]
    fn connect_exchange_segmented_both_ways_disconnect() {
        let client_params = LinkParams {
            max_info_tx: 64,
            max_info_rx: 256,
            ..LinkParams::default()
        };
        let server_params = LinkParams {
            max_info_tx: 100,
            max_info_rx: 2000,
            ..LinkParams::default()
        };
        let (mut c, mut s) = pair(client_params, server_params);
        c.connect();
        let (at_c, at_s) = converse(&mut c, &mut s);
        let agreed = LinkParams {
            max_info_tx: 64,
            max_info_rx: 100,
            ..LinkParams::default()
        };
        assert_eq!(at_c, vec![LinkEvent::Connected(agreed)]);
        assert_eq!(at_s, vec![LinkEvent::Connected(agreed.swapped())]);

        for round in 0..12u8 {
            let request: Vec<u8> = (0..150).map(|i| (i as u8) ^ round).collect();
            c.send(&request).unwrap();
            let (_, at_s) = converse(&mut c, &mut s);
            assert_eq!(at_s, vec![LinkEvent::Apdu(request.clone())]);
            let response: Vec<u8> = (0..1000).map(|i| (i % 251) as u8 ^ 0x7E).collect();
            s.send(&response).unwrap();
            let (at_c, _) = converse(&mut c, &mut s);
            assert_eq!(at_c, vec![LinkEvent::Apdu(response)]);
        }
        c.disconnect();
        let (at_c, at_s) = converse(&mut c, &mut s);
        assert_eq!(at_c, vec![LinkEvent::Disconnected]);
        assert_eq!(at_s, vec![LinkEvent::Disconnected]);
        assert!(!c.is_connected());
    }

    /// Window 7 both ways: a 2,000-byte answer in 128-byte segments goes out seven at a
    /// time, the poll bit only on the seventh (and on the last), one RR per window; N(S) wraps
    /// modulo 8 across windows.
    #[test]
    fn windows_send_several_segments_per_acknowledgement() {
        let windowed = LinkParams {
            window_tx: 7,
            window_rx: 7,
            ..LinkParams::default()
        };
        let (mut c, mut s) = pair(windowed, windowed);
        c.connect();
        let (at_c, _) = converse(&mut c, &mut s);
        assert_eq!(at_c, vec![LinkEvent::Connected(windowed)]);
        let answer: Vec<u8> = (0..2000).map(|i| (i % 253) as u8).collect();
        s.send(&answer).unwrap();
        let mut first_window = Vec::new();
        while let Some(bytes) = s.poll_transmit() {
            first_window.push(Frame::parse(&bytes.unwrap()).unwrap());
        }
        assert_eq!(first_window.len(), 7, "a window, then the sender waits");
        let polls: Vec<bool> = first_window
            .iter()
            .map(|f| matches!(f.control, Control::I { poll: true, .. }))
            .collect();
        assert_eq!(polls, [false, false, false, false, false, false, true]);
        let mut rrs = 0;
        for f in &first_window {
            assert_eq!(c.handle_frame(f).unwrap(), None);
        }
        while let Some(bytes) = c.poll_transmit() {
            let rr = Frame::parse(&bytes.unwrap()).unwrap();
            assert_eq!(rr.control, Control::Rr { nr: 7, poll: true });
            rrs += 1;
            s.handle_frame(&rr).unwrap();
        }
        assert_eq!(rrs, 1, "one RR for the window");
        // 2,003 bytes with the LLC header: 16 segments, windows of 7, 7 and 2.
        let (at_c, _) = converse(&mut c, &mut s);
        assert_eq!(at_c, vec![LinkEvent::Apdu(answer)]);
        // The same link goes on working after N(S) wrapped.
        c.send(&[1, 2, 3]).unwrap();
        let (_, at_s) = converse(&mut c, &mut s);
        assert_eq!(at_s, vec![LinkEvent::Apdu(vec![1, 2, 3])]);
    }

    /// A peer that sends a window without the poll bit still gets its RR once the receive
    /// window is full.
    #[test]
    fn a_full_receive_window_is_acknowledged_without_a_poll() {
        let windowed = LinkParams {
            window_tx: 2,
            window_rx: 2,
            ..LinkParams::default()
        };
        let (mut c, mut s) = pair(windowed, windowed);
        c.connect();
        converse(&mut c, &mut s);
        s.send(&[7u8; 600]).unwrap();
        let mut frames = Vec::new();
        while let Some(bytes) = s.poll_transmit() {
            let mut f = Frame::parse(&bytes.unwrap()).unwrap();
            if let Control::I { ns, nr, .. } = f.control {
                f.control = Control::I {
                    ns,
                    nr,
                    poll: false,
                };
            }
            frames.push(f);
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(c.handle_frame(&frames[0]).unwrap(), None);
        assert!(c.poll_transmit().is_none(), "inside the window: no RR yet");
        assert_eq!(c.handle_frame(&frames[1]).unwrap(), None);
        let rr = Frame::parse(&c.poll_transmit().unwrap().unwrap()).unwrap();
        assert_eq!(rr.control, Control::Rr { nr: 2, poll: true });
    }

    #[test]
    fn rr_carries_next_expected_sequence() {
        let (mut c, mut s) = pair(LinkParams::default(), LinkParams::default());
        c.connect();
        converse(&mut c, &mut s);
        s.send(&[0u8; 300]).unwrap(); // 3 segments of 128
        let first = Frame::parse(&s.poll_transmit().unwrap().unwrap()).unwrap();
        assert!(first.segmented);
        assert_eq!(c.handle_frame(&first).unwrap(), None);
        let rr = Frame::parse(&c.poll_transmit().unwrap().unwrap()).unwrap();
        assert_eq!(rr.control, Control::Rr { nr: 1, poll: true });
        // The same segment again (our RR was lost): acknowledged again, not appended twice.
        assert_eq!(c.handle_frame(&first).unwrap(), None);
        let rr_again = Frame::parse(&c.poll_transmit().unwrap().unwrap()).unwrap();
        assert_eq!(rr_again.control, Control::Rr { nr: 1, poll: true });
        s.handle_frame(&rr).unwrap();
        let (at_c, _) = converse(&mut c, &mut s);
        assert_eq!(at_c, vec![LinkEvent::Apdu(vec![0u8; 300])]);
    }

    #[test]
    fn stray_frames_and_refusals_are_errors() {
        let (mut c, mut s) = pair(LinkParams::default(), LinkParams::default());
        assert_eq!(c.send(&[1]), Err(LinkError::NotConnected));
        c.connect();
        converse(&mut c, &mut s);
        // A frame for client 1 is not ours.
        let stray = Frame {
            segmented: false,
            destination: RawAddress::client(1),
            source: server_addr(),
            control: Control::I {
                ns: 0,
                nr: 0,
                poll: true,
            },
            info: LLC_RESPONSE.to_vec(),
        };
        assert_eq!(c.handle_frame(&stray), Err(LinkError::WrongAddress));
        // Out of sequence.
        let out_of_seq = Frame {
            destination: RawAddress::client(16),
            control: Control::I {
                ns: 4,
                nr: 0,
                poll: true,
            },
            ..stray.clone()
        };
        assert!(matches!(
            c.handle_frame(&out_of_seq),
            Err(LinkError::Sequence { .. })
        ));
        // Missing LLC.
        let no_llc = Frame {
            control: Control::I {
                ns: 0,
                nr: 0,
                poll: true,
            },
            info: vec![0xC4, 0x01],
            ..out_of_seq.clone()
        };
        assert_eq!(c.handle_frame(&no_llc), Err(LinkError::MissingLlc));
        // DM while connecting.
        let (mut c2, _) = pair(LinkParams::default(), LinkParams::default());
        c2.connect();
        let dm = Frame {
            control: Control::Dm { poll: true },
            info: vec![],
            ..out_of_seq
        };
        assert_eq!(c2.handle_frame(&dm), Err(LinkError::DisconnectedMode));
        // Busy while a segmented APDU is in flight.
        c.send(&[0u8; 500]).unwrap();
        assert_eq!(c.send(&[1]), Err(LinkError::Busy));
    }

    #[test]
    fn oversized_reassembly_is_refused() {
        let (mut c, mut s) = pair(LinkParams::default(), LinkParams::default());
        c.connect();
        converse(&mut c, &mut s);
        c.set_max_apdu(200);
        s.send(&[7u8; 400]).unwrap();
        let mut err = None;
        for _ in 0..10 {
            let mut d = Deframer::new();
            while let Some(b) = s.poll_transmit() {
                d.push(&b.unwrap());
            }
            while let Some(f) = d.next_frame() {
                if let Err(e) = c.handle_frame(&f) {
                    err = Some(e);
                }
            }
            pump(&mut c, &mut s);
        }
        assert!(matches!(err, Some(LinkError::ApduTooLong(_))));
    }
}
