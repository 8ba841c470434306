//! The command-line interface: one module per subcommand, shared option parsing in `args`.
pub mod args;
pub mod backup;
pub mod decode;
pub mod demo;
pub mod docs;
pub mod log_file;
pub mod meter;
pub mod meter_test;
pub mod profile;
pub mod provision;
pub mod read;
pub mod read_mode_c;
pub mod run;
pub mod scan;
pub mod simulate;

/// Writes lines to stdout, reporting a closed pipe as an error instead of panicking.
pub fn write_lines(lines: &[String]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for l in lines {
        writeln!(out, "{l}")?;
    }
    out.flush()
}
