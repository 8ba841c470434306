//! Meters that push: the TCP listener (`listener.rs`) for meters that connect to
//! `push.listen`, and the one path from a taken notification to a reading (`reading.rs`),
//! shared with meters on a receive-only serial line (`meter/han.rs`).

pub mod listener;
pub mod reading;
