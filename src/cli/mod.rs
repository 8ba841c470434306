//! The command-line interface: one module per subcommand, shared option parsing in `args`.
pub mod args;
pub mod json;
pub mod read;
pub mod scan;
pub mod simulate;
