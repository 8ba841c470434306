//! Byte transports to a meter: TCP and serial lines. Blocking, with a timeout on every read.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A blocking byte pipe to one meter.
pub trait Transport: Send {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Reads what arrives within `timeout`: `Ok(0)` on timeout, `UnexpectedEof` when the peer
    /// closed the connection.
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

pub struct TcpTransport {
    stream: TcpStream,
}

impl TcpTransport {
    /// Connects to the first address `host:port` resolves to, within `timeout`.
    pub fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpTransport> {
        let addr: SocketAddr = (host, port).to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{host} does not resolve"))
        })?;
        // Callers name the endpoint: the message says only what happened.
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| {
            let why = if timed_out(&e) {
                format!(
                    "TCP connect timed out after {} ms (nothing answered)",
                    timeout.as_millis()
                )
            } else {
                format!("TCP connect failed: {e}")
            };
            io::Error::new(e.kind(), why)
        })?;
        stream.set_nodelay(true)?;
        Ok(TcpTransport { stream })
    }
}

impl Transport for TcpTransport {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        // A zero timeout means "block forever" to the socket API.
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        match self.stream.read(buf) {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => Ok(n),
            Err(e) if timed_out(&e) => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// Serial line settings.
#[derive(Debug, Clone)]
pub struct SerialSettings {
    pub path: String,
    pub baud: u32,
    pub data_bits: serialport::DataBits,
    pub parity: serialport::Parity,
    pub stop_bits: serialport::StopBits,
}

impl SerialSettings {
    /// 8N1 at `baud`: direct HDLC.
    pub fn hdlc(path: &str, baud: u32) -> Self {
        SerialSettings {
            path: path.to_string(),
            baud,
            data_bits: serialport::DataBits::Eight,
            parity: serialport::Parity::None,
            stop_bits: serialport::StopBits::One,
        }
    }
}

pub struct SerialTransport {
    port: Box<dyn serialport::SerialPort>,
}

impl SerialTransport {
    pub fn open(s: &SerialSettings) -> io::Result<SerialTransport> {
        let port = serialport::new(&s.path, s.baud)
            .data_bits(s.data_bits)
            .parity(s.parity)
            .stop_bits(s.stop_bits)
            .flow_control(serialport::FlowControl::None)
            .timeout(Duration::from_millis(100))
            .open()
            .map_err(|e| io::Error::other(format!("cannot open the serial line: {e}")))?;
        Ok(SerialTransport { port })
    }

    /// Changes line settings (IEC 62056-21 mode E switches from 300 7E1 to 9600 8N1).
    pub fn reconfigure(
        &mut self,
        baud: u32,
        data_bits: serialport::DataBits,
        parity: serialport::Parity,
    ) -> io::Result<()> {
        let map = |e: serialport::Error| io::Error::other(e.to_string());
        self.port.set_baud_rate(baud).map_err(map)?;
        self.port.set_data_bits(data_bits).map_err(map)?;
        self.port.set_parity(parity).map_err(map)?;
        Ok(())
    }
}

impl Transport for SerialTransport {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.port.write_all(bytes)?;
        self.port.flush()
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.port
            .set_timeout(timeout.max(Duration::from_millis(1)))
            .map_err(|e| io::Error::other(e.to_string()))?;
        match self.port.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if timed_out(&e) => Ok(0),
            Err(e) => Err(e),
        }
    }
}

impl Transport for Box<dyn Transport> {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        (**self).send(bytes)
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        (**self).recv(buf, timeout)
    }
}
