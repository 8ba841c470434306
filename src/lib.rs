//! dlms-bridge: reads electricity meters over DLMS/COSEM (IEC 62056) and publishes their
//! readings to ThingsBoard over MQTT.
//!
//! The library half holds everything that can be tested without a meter or a broker:
//! - [`dlms`]: the protocol stack, sans-I/O (bytes in, values and bytes out; no sockets, no
//!   threads, no clocks). One connection driver elsewhere moves bytes between a transport and
//!   these state machines.
//! - [`cosem`]: the object model on top of it (OBIS codes, units, scaled values).
//! - [`iec21`]: IEC 62056-21 sign-on and ASCII data readout (modes A, B, C), sans-I/O.
#![forbid(unsafe_code)]

pub mod alarm;
#[cfg(feature = "runtime")]
pub mod bridge;
pub mod client;
pub mod clock;
pub mod config;
pub mod cosem;
pub mod dlms;
pub mod hex;
pub mod http_head;
pub mod iec21;
pub mod log_throttle;
pub mod machine;
pub mod procfs;
pub mod scan;
pub mod sim;
pub mod slots;
#[cfg(feature = "runtime")]
pub mod status;
#[cfg(feature = "runtime")]
pub mod store;
