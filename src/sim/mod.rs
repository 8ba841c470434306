//! The meter simulator: a server-side DLMS meter built on the same protocol core, for the
//! tests, the demo and the benchmarks (`dlms-bridge simulate`).

mod gbt;
pub mod mode_c;
pub mod model;
pub mod net;
pub mod profiles;
pub mod push;
pub mod server;

pub use model::MeterModel;
pub use server::{ServerConfig, ServerSession};
