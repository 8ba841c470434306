//! The blocking DLMS client: transports (TCP, serial, mode E sign-on), the connection driver,
//! and COSEM reads on top of it.

pub mod bus;
pub mod connection;
pub mod entropy;
pub mod error;
pub mod frame_counter;
pub mod json;
pub mod mode_e;
pub mod push;
pub mod reads;
pub mod target;
pub mod trace;
pub mod transport;

pub use connection::{Connection, ConnectionOptions, Framing, NetStats};
pub use error::{ClientError, Heard};
pub use target::{Endpoint, MeterTarget};
pub use trace::{TraceSink, Tracer};
pub use transport::{SerialSettings, SerialTransport, TcpTransport, Transport};
