//! The typed values of a meter's configuration and the parsers that make them from text (a
//! flag's value, a JSON value, a database column): each refuses anything it does not
//! recognise with a sentence saying what it expects.

use super::error::quoted;
use std::fmt;

/// How DLMS APDUs are framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HDLC (IEC 62056-46), over TCP or a serial line.
    Hdlc,
    /// The TCP wrapper (IEC 62056-47, Green Book 10.3): TCP only.
    Wrapper,
}

/// How a meter's data arrives: polled by the bridge, or pushed by the meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Polled (the bridge asks).
    None,
    /// DATA-NOTIFICATIONs arriving on a receive-only serial line (HAN/P1 customer ports).
    Serial,
    /// DATA-NOTIFICATIONs sent by the meter to the bridge's TCP listener (`push.listen`).
    Tcp,
}

/// How the client proves who it is when associating (Green Book 9.2.7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    None,
    /// LLS: a password in the AARQ.
    Low,
    /// HLS mechanism 5 (GMAC): needs ciphering keys.
    HighGmac,
}

/// Suite-0 ciphering of xDLMS APDUs (Green Book 9.2.7.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ciphering {
    None,
    Auth,
    Enc,
    AuthEnc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    None,
    Even,
    Odd,
}

/// One of a fixed set of words.
pub trait Word: Sized + Copy + 'static {
    const ALL: &'static [(Self, &'static str)];
}

impl Word for Transport {
    const ALL: &'static [(Self, &'static str)] =
        &[(Transport::Hdlc, "hdlc"), (Transport::Wrapper, "wrapper")];
}

impl Word for Push {
    const ALL: &'static [(Self, &'static str)] = &[
        (Push::None, "none"),
        (Push::Serial, "serial"),
        (Push::Tcp, "tcp"),
    ];
}

impl Word for AuthKind {
    const ALL: &'static [(Self, &'static str)] = &[
        (AuthKind::None, "none"),
        (AuthKind::Low, "low"),
        (AuthKind::HighGmac, "high-gmac"),
    ];
}

impl Word for Ciphering {
    const ALL: &'static [(Self, &'static str)] = &[
        (Ciphering::None, "none"),
        (Ciphering::Auth, "auth"),
        (Ciphering::Enc, "enc"),
        (Ciphering::AuthEnc, "auth-enc"),
    ];
}

impl Word for Parity {
    const ALL: &'static [(Self, &'static str)] = &[
        (Parity::None, "none"),
        (Parity::Even, "even"),
        (Parity::Odd, "odd"),
    ];
}

pub fn word_of<W: Word + PartialEq>(w: W) -> &'static str {
    W::ALL
        .iter()
        .find(|(v, _)| *v == w)
        .map_or("", |(_, name)| name)
}

/// "a, b or c".
pub fn choices<W: Word>() -> String {
    let names: Vec<&str> = W::ALL.iter().map(|(_, n)| *n).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

pub fn word<W: Word>(v: &str) -> Result<W, String> {
    W::ALL
        .iter()
        .find(|(_, name)| *name == v)
        .map(|(w, _)| *w)
        .ok_or_else(|| format!("{} is not {}", quoted(v), choices::<W>()))
}

/// true/false, yes/no, 1/0: anything else is refused (a typo must not disable a meter).
pub fn boolean(v: &str) -> Result<bool, String> {
    match v {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!("{} is not true or false (yes/no, 1/0)", quoted(v))),
    }
}

/// An integer in `lo..=hi`.
pub fn bounded<T>(v: &str, lo: T, hi: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    match v.trim().parse::<T>() {
        Ok(n) if n >= lo && n <= hi => Ok(n),
        _ => Err(format!("{} is not a whole number {lo}..{hi}", quoted(v))),
    }
}

fn has_control(v: &str) -> bool {
    v.chars().any(char::is_control)
}

/// Text shown in logs and on the page: 1..=`max` characters, no control characters (an ANSI
/// escape in a meter name would reach every terminal that shows the log), no surrounding
/// blanks.
pub fn label(v: &str, max: usize) -> Result<String, String> {
    if v.is_empty() || v.chars().count() > max {
        return Err(format!("{} must be 1 to {max} characters", quoted(v)));
    }
    if has_control(v) {
        return Err(format!("{} contains control characters", quoted(v)));
    }
    if v.trim() != v {
        return Err(format!("{} starts or ends with blanks", quoted(v)));
    }
    Ok(v.to_string())
}

/// A host name or IP address literal (RFC 1123 labels; IPv6 literals as written).
pub fn host(v: &str) -> Result<String, String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
    if v.is_empty() || v.len() > 253 || !v.chars().all(ok_char) || v.starts_with('-') {
        return Err(format!("{} is not a host name or IP address", quoted(v)));
    }
    Ok(v.to_string())
}

/// A device path such as /dev/ttyUSB0.
pub fn device_path(v: &str) -> Result<String, String> {
    if !v.starts_with('/') || has_control(v) || v.contains(' ') || v.len() > 255 {
        return Err(format!(
            "{} is not a device path such as /dev/ttyUSB0",
            quoted(v)
        ));
    }
    Ok(v.to_string())
}

/// A secret kept as given (a password or token): 1..=`max` bytes, no control characters.
pub fn secret_text(v: &str, max: usize) -> Result<Secret<String>, String> {
    if v.is_empty() || v.len() > max || has_control(v) {
        // Never repeat a secret in a message: it reaches logs and terminals.
        return Err(format!(
            "must be 1 to {max} bytes without control characters"
        ));
    }
    Ok(Secret(v.to_string()))
}

/// `N` bytes as `2N` hex digits.
pub fn hex_bytes<const N: usize>(v: &str) -> Result<[u8; N], String> {
    crate::hex::array::<N>(v).ok_or_else(|| format!("expected {N} bytes as {} hex digits", 2 * N))
}

pub fn hex_text(b: &[u8]) -> String {
    crate::hex::encode(b)
}

/// A value never shown: `{:?}` (which may reach a log) prints only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(pub T);

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(secret)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_words_and_booleans() {
        assert_eq!(word::<Transport>("wrapper"), Ok(Transport::Wrapper));
        assert_eq!(
            word::<AuthKind>("hi"),
            Err("\"hi\" is not none, low or high-gmac".to_string())
        );
        for (v, want) in [("yes", true), ("0", false), ("false", false)] {
            assert_eq!(boolean(v), Ok(want));
        }
        for typo in ["flase", "maybe", "", "True "] {
            assert!(boolean(typo).is_err(), "{typo:?}");
        }
        assert_eq!(word_of(Ciphering::AuthEnc), "auth-enc");
    }

    #[test]
    fn labels_hosts_and_numbers() {
        assert!(label("Meter A", 128).is_ok());
        for bad in ["", " A", "A\u{1b}[31m", "A\nB", &"x".repeat(129)] {
            assert!(label(bad, 128).is_err(), "{bad:?}");
        }
        assert!(host("127.0.0.1").is_ok() && host("meter-7.local").is_ok() && host("::1").is_ok());
        for bad in ["my host", "", "a\tb", "-x"] {
            assert!(host(bad).is_err(), "{bad:?}");
        }
        assert_eq!(bounded::<u16>("65535", 1, 65535), Ok(65535));
        assert!(bounded::<u16>("0", 1, 65535).is_err());
        assert!(bounded::<u16>("70000", 1, 65535).is_err());
        assert!(secret_text("pw\u{7}", 64).unwrap_err().find("pw").is_none());
        assert_eq!(format!("{:?}", Secret("pw")), "(secret)");
        assert_eq!(hex_text(&hex_bytes::<2>("0aff").unwrap()), "0AFF");
    }
}
