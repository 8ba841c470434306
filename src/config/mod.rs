//! The configuration model: every meter field defined once ([`fields::FIELDS`]), typed
//! ([`MeterConfig`]), parsed and checked where it enters (the command line, the API, an
//! import file, the database), and turned into a client target in one place.
//!
//! Front ends name fields their own way (`--serial` / `serial_device`); messages are written
//! once with placeholders and rendered for each ([`Naming`]).

pub mod error;
pub mod fields;
pub mod json;
pub mod lines;
pub mod meter;
pub mod mode_c;
pub mod presets;
pub mod profile;
pub mod settings;
pub mod target;
pub mod values;

pub use error::{ConfigError, Naming};
pub use meter::{default_measurements, Measurement, MeterConfig};
pub use profile::ProfileSpec;
pub use target::fresh_association;
