//! The status page and admin API on tiny_http: `/status` (JSON), `/metrics` (Prometheus),
//! `/healthz`, `/` (a self-contained dashboard) and `/api/meters...` (bearer token).
//! Figures come from the in-memory [`Status`] snapshot, never from the database; only the API
//! (configuration) opens the database.

mod admin;
mod api;
pub mod diagnostics;
pub mod gate;
pub mod history;
mod http;
mod https;
pub mod log_ring;
mod metrics;
mod response;
pub mod sign_in;
mod snapshot;
pub mod state;
pub mod trace_ring;

pub use http::StatusServer;
pub use snapshot::{health, status_json};
