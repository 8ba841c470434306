//! The outbox: what is unsent, and who holds it. `queue.rs` is the pure bookkeeping (times
//! passed in, every state unit-tested); `thread.rs` is the outbox thread around it, the single
//! writer of the SQLite outbox and the only place a reading is accepted.

pub mod queue;
pub mod thread;

pub use thread::{OutboxThread, NEWEST_READING};
