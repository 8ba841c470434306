//! Where a meter is and how to talk to it: everything needed to open a [`Connection`], with
//! the transport chosen at run time (TCP, serial, serial with mode E sign-on).

use super::connection::{Connection, ConnectionOptions, Framing};
use super::error::ClientError;
use super::mode_e;
use super::transport::{SerialSettings, SerialTransport, TcpTransport, Transport};
use crate::dlms::describe::Direction;
use crate::dlms::session::SessionConfig;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub enum Endpoint {
    Tcp {
        host: String,
        port: u16,
    },
    /// A serial line; with `mode_e`, an IEC 62056-21 sign-on at 300 baud 7E1 comes first and
    /// the line then switches to the rate the meter proposes.
    Serial {
        settings: SerialSettings,
        mode_e: bool,
    },
    /// A serial line shared with other meters (RS-485): used only while holding a turn.
    Bus(std::sync::Arc<super::bus::Bus>),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp { host, port } => write!(f, "{host}:{port}"),
            Endpoint::Serial { settings, .. } => write!(f, "{}", settings.path),
            Endpoint::Bus(bus) => write!(f, "{} (shared)", bus.path),
        }
    }
}

/// The meter's turn until a transport holds it (given back if opening the transport fails).
struct TurnGuard(Option<String>);

impl TurnGuard {
    fn into_meter(mut self) -> String {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for TurnGuard {
    fn drop(&mut self) {
        if let Some(meter) = self.0.take() {
            super::spacing::give_back(&meter);
        }
    }
}

/// How long a meter is given to drop a held link after our DISC, before the second attempt.
const HELD_LINK_PAUSE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct MeterTarget {
    pub endpoint: Endpoint,
    pub framing: Framing,
    pub session: SessionConfig,
    pub options: ConnectionOptions,
    pub connect_timeout: Duration,
    /// Every frame sent and received, to a sink (`--trace`, the bridge's trace ring).
    pub trace: super::trace::Tracer,
}

impl MeterTarget {
    fn transport(&self) -> Result<Box<dyn Transport>, ClientError> {
        match &self.endpoint {
            Endpoint::Tcp { host, port } => Ok(Box::new(TcpTransport::connect(
                host,
                *port,
                self.connect_timeout,
            )?)),
            Endpoint::Serial {
                settings,
                mode_e: false,
            } => Ok(Box::new(SerialTransport::open(settings)?)),
            Endpoint::Bus(bus) => Ok(Box::new(super::bus::BusTransport(bus.clone()))),
            Endpoint::Serial {
                settings,
                mode_e: true,
            } => {
                let sign_on = SerialSettings {
                    baud: 300,
                    data_bits: serialport::DataBits::Seven,
                    parity: serialport::Parity::Even,
                    ..settings.clone()
                };
                let mut port = SerialTransport::open(&sign_on)?;
                let id = mode_e_sign_on(&mut port, self.options.response_timeout, &self.trace)?;
                // IEC 62056-21 leaves the meter 200-1500 ms to switch after the ACK.
                std::thread::sleep(Duration::from_millis(250));
                port.reconfigure(
                    id.baud,
                    serialport::DataBits::Eight,
                    serialport::Parity::None,
                )?;
                Ok(Box::new(port))
            }
        }
    }

    /// Opens the transport, connects the link and associates (after the meter's reconnect gap,
    /// if it has one and the last connection to it closed less than that ago).
    ///
    /// A meter that refuses the link with DM may still hold one from a connection lost
    /// without a release: it is sent a DISC, given a moment, and tried once more.
    pub fn connect(&self) -> Result<Connection<Box<dyn Transport>>, ClientError> {
        match self.open_once() {
            Err(ClientError::Link(crate::dlms::hdlc::LinkError::DisconnectedMode))
                if matches!(self.framing, Framing::Hdlc { .. }) =>
            {
                log::info!(
                    "{}: the meter refused the link (DM): releasing a link it may still hold \
                     (DISC) and trying once more",
                    self.endpoint
                );
                // Traced too: the DISC is what a field engineer looks for in the trace.
                let mut transport = self.trace.wrap(self.spaced_transport()?);
                super::connection::release_held_link(
                    &mut transport,
                    self.framing,
                    self.options.response_timeout,
                )?;
                drop(transport);
                // (The reconnect gap, if any, is waited for by the next connection itself.)
                std::thread::sleep(HELD_LINK_PAUSE);
                self.open_once()
            }
            other => other,
        }
    }

    fn open_once(&self) -> Result<Connection<Box<dyn Transport>>, ClientError> {
        let transport = self.trace.wrap(self.spaced_transport()?);
        Connection::open(
            transport,
            self.framing,
            self.session.clone(),
            self.options.clone(),
        )
    }

    fn spaced_transport(&self) -> Result<Box<dyn Transport>, ClientError> {
        if matches!(self.endpoint, Endpoint::Bus(_)) {
            // The bus gives turns of its own.
            return self.transport();
        }
        let gap = self.options.reconnect_gap;
        let key = self.endpoint.to_string();
        // The meter is its endpoint and server address: any client address counts (the
        // public client's frame-counter read and the management client's poll alike).
        let meter = match self.framing {
            Framing::Hdlc { server, .. } => format!("{key} hdlc {server:?}"),
            Framing::Wrapper { server, .. } => format!("{key} wrapper {server}"),
        };
        let patience = self.connect_timeout.max(self.options.response_timeout);
        if !super::spacing::take_turn(&meter, self.options.single_connection, patience) {
            return Err(ClientError::Busy { waited: patience });
        }
        let turn = TurnGuard(Some(meter));
        let wait = super::spacing::wait_needed(&key, gap, Instant::now());
        if !wait.is_zero() {
            log::debug!(
                "{key}: waiting {} ms before connecting again (reconnect_gap_s)",
                wait.as_millis()
            );
            std::thread::sleep(wait);
        }
        let transport = self.transport()?;
        Ok(Box::new(super::spacing::Spaced::holding(
            transport,
            key,
            turn.into_meter(),
        )))
    }

    /// [`MeterTarget::connect`], retried on transient errors (`retries` more attempts).
    pub fn connect_with_retries(
        &self,
        retries: u32,
    ) -> Result<Connection<Box<dyn Transport>>, ClientError> {
        let mut attempt = 0;
        loop {
            match self.connect() {
                Err(e) if e.is_transient() && attempt < retries => attempt += 1,
                other => return other,
            }
        }
    }
}

/// The mode E exchange on an open port (300 baud 7E1).
pub fn mode_e_sign_on(
    port: &mut SerialTransport,
    timeout: Duration,
    trace: &super::trace::Tracer,
) -> Result<mode_e::Identification, ClientError> {
    let request = mode_e::request("");
    trace.record(Direction::Sent, &request);
    port.send(&request)?;
    let deadline = Instant::now() + timeout;
    let mut line = Vec::new();
    loop {
        super::iec21_wait::receive_7bit(
            port,
            &mut line,
            deadline,
            timeout,
            "IEC 62056-21 sign-on",
        )?;
        if mode_e::is_readout(&line) {
            // A readout meter answers the sign-on with its data message (Apator Norax 3).
            let start: Vec<u8> = line.iter().take(60).copied().collect();
            return Err(ClientError::ModeE(mode_e::ModeEError::NotModeE(
                String::from_utf8_lossy(&start).into_owned(),
            )));
        }
        if let Some(end) = line.windows(2).position(|w| w == b"\r\n") {
            trace.record(Direction::Received, &line[..end + 2]);
            let id = mode_e::parse_identification(&line[..end + 2]).map_err(ClientError::ModeE)?;
            let ack = mode_e::acknowledgement(&id);
            trace.record(Direction::Sent, &ack);
            port.send(&ack)?;
            return Ok(id);
        }
        if line.len() > 128 {
            return Err(ClientError::ModeE(mode_e::ModeEError::Malformed(
                String::from_utf8_lossy(&line).into_owned(),
            )));
        }
    }
}
