//! The blocking DLMS client: transports (TCP, serial, mode E sign-on), the connection driver,
//! and COSEM reads on top of it; and IEC 62056-21 data readouts (`mode_c`).

pub mod bus;
pub mod connection;
pub mod entropy;
pub mod error;
pub mod frame_counter;
pub mod iec21_wait;
pub mod json;
pub mod mode_c;
pub mod mode_e;
pub mod push;
pub mod reads;
mod referencing_memory;
pub mod spacing;
pub mod target;
pub mod trace;
pub mod transport;

pub use connection::{Connection, ConnectionOptions, Framing, NetStats};
pub use error::{ClientError, Heard};
pub use target::{Endpoint, MeterTarget};
pub use trace::{TraceSink, Tracer};
pub use transport::{SerialSettings, SerialTransport, TcpTransport, Transport};
