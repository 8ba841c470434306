//! `decode-hdlc` and `decode-apdu`: bytes from a capture (or a `--trace` line) as one line per
//! frame, with the describer the trace uses (`dlms_bridge::dlms::describe`). Ciphered APDUs are
//! opened when the keys are given; the system title comes from the AARQ/AARE in the bytes,
//! from a general-ciphering APDU, or from `--system-title`.

use super::args::{hex_array, parse_hex, usage, UsageError};
use dlms_bridge::dlms::describe::{describe_stream, DecodeKeys, Describer};
use dlms_bridge::dlms::security::Keys;
use lexopt::prelude::*;
use std::process::ExitCode;

const HELP_HDLC: &str = "\
dlms-bridge decode-hdlc HEX [KEYS]  decode a byte stream: HDLC frames (segments joined),
                                    wrapper PDUs, sign-on text; one line each
";
const HELP_APDU: &str = "\
dlms-bridge decode-apdu HEX [KEYS]  decode one APDU
";
const HELP_KEYS: &str = "
KEYS (to open ciphered APDUs; both keys are needed):
    --encryption-key HEX       the global block cipher key (16 bytes)
    --authentication-key HEX   the authentication key (16 bytes)
    --system-title HEX         the sender's system title (8 bytes), for glo-/ded- APDUs whose
                               association (AARQ/AARE) is not in HEX
";

pub fn hdlc(parser: lexopt::Parser) -> Result<ExitCode, UsageError> {
    let Some((bytes, keys)) = parse(parser, HELP_HDLC)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let lines = describe_stream(&bytes, keys);
    Ok(print(&lines))
}

pub fn apdu(parser: lexopt::Parser) -> Result<ExitCode, UsageError> {
    let Some((bytes, keys)) = parse(parser, HELP_APDU)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let line = Describer::with_keys(keys).describe_apdu(&bytes);
    Ok(print(&[line]))
}

fn print(lines: &[String]) -> ExitCode {
    match super::write_lines(lines) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// The bytes and keys of the command line; `None` after `--help`.
fn parse(
    mut parser: lexopt::Parser,
    help: &str,
) -> Result<Option<(Vec<u8>, DecodeKeys)>, UsageError> {
    let mut hex = None;
    let mut encryption = None;
    let mut authentication = None;
    let mut system_title = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("encryption-key") => {
                encryption = Some(hex_array::<16>(
                    "--encryption-key",
                    &parser.value()?.string()?,
                )?)
            }
            Long("authentication-key") => {
                authentication = Some(hex_array::<16>(
                    "--authentication-key",
                    &parser.value()?.string()?,
                )?)
            }
            Long("system-title") => {
                system_title = Some(hex_array::<8>(
                    "--system-title",
                    &parser.value()?.string()?,
                )?)
            }
            Long("help") | Short('h') => {
                print!("{help}{HELP_KEYS}");
                return Ok(None);
            }
            Value(v) if hex.is_none() => hex = Some(v.string()?),
            other => return Err(other.unexpected().into()),
        }
    }
    let hex = hex.ok_or_else(|| usage("needs HEX (the bytes as hex digits)"))?;
    let bytes = parse_hex(&hex).ok_or_else(|| usage("HEX is not a hex string"))?;
    let keys = match (encryption, authentication) {
        (Some(block_cipher), Some(authentication)) => DecodeKeys::with_keys(
            Keys {
                block_cipher,
                authentication,
            },
            system_title,
        ),
        (None, None) if system_title.is_none() => DecodeKeys::none(),
        _ => {
            return Err(usage(
                "give both --encryption-key and --authentication-key (and --system-title only with them)",
            ))
        }
    };
    Ok(Some((bytes, keys)))
}
