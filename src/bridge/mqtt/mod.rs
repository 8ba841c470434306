//! The MQTT side of the bridge: one publisher thread, a pure core and a thin Paho driver.
//!
//! ```text
//! outbox thread --Work--> driver --Input--> core --Command--> driver --> Paho (connect, publish)
//!        ^                  |  ^                                            |
//!        +---Answers--------+  +--- callbacks and completed tokens ---------+
//! ```
//! - `core.rs` decides everything (sessions, messages in flight by ticket, the rate limit,
//!   announcements, RPCs, shared attributes, the gateway's own telemetry), with the time
//!   passed in: every state is unit-tested in `tests.rs`.
//! - `driver.rs` is the only code that touches Paho or the clock; `host.rs` does what the
//!   core asks of the rest of the bridge (the store, meter threads, the status).
//! - Pure helpers: `link.rs` (connection state and backoff), `bucket.rs` (rates),
//!   `thingsboard.rs` (topics and payloads), `session.rs`, `rpc_route.rs`,
//!   `shared_attributes.rs`, `gateway_device.rs`; `tls.rs` and `broker_error.rs` build
//!   options and explain failures.

pub mod broker_error;
mod bucket;
pub mod core;
mod driver;
mod gateway_device;
mod host;
pub mod link;
mod rpc_route;
pub mod session;
pub mod shared_attributes;
pub mod thingsboard;
pub mod tls;

#[cfg(test)]
mod tests;

pub use self::core::{Device, OWN_TELEMETRY_QUEUE};
pub use driver::Publisher;
pub use host::Host;
pub use session::SessionId;

use crate::bridge::outbox::queue::{Key, Outcome, WorkItem};
use crate::config::settings::BridgeSettings;
use std::sync::Arc;

/// What the supervisor sends when the configuration changes.
#[derive(Debug, Clone)]
pub struct Configuration {
    pub settings: Arc<BridgeSettings>,
    pub devices: Vec<Device>,
}

/// To the publisher thread.
#[derive(Debug)]
pub enum ToPublisher {
    /// From the outbox thread.
    Work(Vec<WorkItem>),
    /// A meter thread's answer to an RPC.
    RpcReply {
        reply: super::rpc::ReplyTo,
        result: Result<serde_json::Value, String>,
    },
    /// Telemetry of the gateway's own device (`{"ts":..,"values":..}`): its alarms. Sent when
    /// the gateway session is up (gateway mode; kept in memory, the newest
    /// [`OWN_TELEMETRY_QUEUE`]).
    OwnTelemetry(String),
    /// From the supervisor: the settings and meters, at start and on every change.
    Configure(Arc<Configuration>),
    Stop,
}

/// To the outbox thread.
#[derive(Debug, Clone, PartialEq)]
pub enum FromPublisher {
    Answers(Vec<(Key, Outcome)>),
    /// Whether work can be taken. `false` also means: everything held was answered Retry.
    Connected(bool),
    /// Device mode: a meter's session came up; readings parked while it was down may go now.
    Unpark,
}

/// The topics a session subscribes to: RPC requests to the meters (gateway API) and to the
/// session's device (device API; in gateway mode: the gateway itself); shared attributes:
/// updates and the answers to our requests.
pub fn subscriptions(id: &SessionId) -> &'static [&'static str] {
    match id {
        SessionId::Gateway => &[
            super::rpc::GATEWAY_RPC,
            super::rpc::DEVICE_RPC_REQUESTS,
            shared_attributes::GATEWAY_ATTRIBUTES,
            shared_attributes::GATEWAY_ATTRIBUTES_RESPONSE,
        ],
        SessionId::Device(_) => &[
            super::rpc::DEVICE_RPC_REQUESTS,
            shared_attributes::DEVICE_ATTRIBUTES,
            shared_attributes::DEVICE_ATTRIBUTES_RESPONSE,
        ],
    }
}
