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

/// What a polled meter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// DLMS/COSEM (HDLC or the wrapper).
    Dlms,
    /// The IEC 62056-21 ASCII data readout (modes A, B and C; a mode E meter's readout too).
    ModeC,
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
    /// HLS mechanisms 3, 4 and 6: hashes of the challenges and the HLS secret (the password).
    HighMd5,
    HighSha1,
    HighSha256,
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

/// `referencing`: logical names, short names, or LN then SN (IEC 62056-5-3 9.3).
impl Word for crate::dlms::sn::association::Referencing {
    const ALL: &'static [(Self, &'static str)] =
        &[(Self::Ln, "ln"), (Self::Sn, "sn"), (Self::Auto, "auto")];
}

impl Word for Protocol {
    const ALL: &'static [(Self, &'static str)] =
        &[(Protocol::Dlms, "dlms"), (Protocol::ModeC, "mode-c")];
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
        (AuthKind::HighMd5, "high-md5"),
        (AuthKind::HighSha1, "high-sha1"),
        (AuthKind::HighSha256, "high-sha256"),
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

impl Word for crate::dlms::session::GbtPolicy {
    const ALL: &'static [(Self, &'static str)] =
        &[(Self::Off, "off"), (Self::Auto, "auto"), (Self::On, "on")];
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

/// Characters that change how the text around them looks without showing themselves: bidi
/// embeddings, overrides and isolates, zero-width spaces, joiners and marks, the line and
/// paragraph separators, the byte-order mark, the soft hyphen. A name holding one can be
/// shown as another meter's name (or reversed) on the page, in ThingsBoard and in the log.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{FEFF}'
                | '\u{00AD}'
        )
}

/// A name people tell meters apart by: a [`label`] without invisible or direction-changing
/// characters (any other Unicode is fine: "Zähler Süd", "電表 7").
pub fn visible_label(v: &str, max: usize) -> Result<String, String> {
    let v = label(v, max)?;
    match v.chars().find(|c| is_invisible(*c)) {
        Some(c) => Err(format!(
            "{} contains the invisible or direction-changing character U+{:04X}",
            quoted(&v),
            u32::from(c)
        )),
        None => Ok(v),
    }
}

/// A host to connect to: an IPv4 or IPv6 address, or a DNS host name (RFC 1123: labels of 1
/// to 63 letters, digits and hyphens, no hyphen at either end, 253 characters in all). The
/// meters' `host` and `mqtt.host` share it.
pub fn host(v: &str) -> Result<String, String> {
    match host_problem(v) {
        None => Ok(v.to_string()),
        Some(why) => Err(format!(
            "{} is not a host name or IP address ({why})",
            quoted(v)
        )),
    }
}

/// What is wrong with `v` as a host, if anything.
fn host_problem(v: &str) -> Option<&'static str> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    if v.contains(':') {
        return match v.parse::<Ipv6Addr>() {
            Ok(a) if a.is_unspecified() => Some(":: is no address to connect to"),
            Ok(_) => None,
            Err(_) if v.matches(':').count() == 1 => Some("a port goes in port, not in host"),
            Err(_) => Some("not an IPv6 address"),
        };
    }
    if v.is_empty() {
        return Some("empty");
    }
    if v.len() > 253 {
        return Some("longer than 253 characters");
    }
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Some("only letters, digits, '-' and '.'");
    }
    let labels: Vec<&str> = v.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return Some("an empty label");
    }
    if labels.iter().any(|l| l.len() > 63) {
        return Some("a label longer than 63 characters");
    }
    if labels
        .iter()
        .any(|l| l.starts_with('-') || l.ends_with('-'))
    {
        return Some("a label starts or ends with '-'");
    }
    // A numeric last label is an address, never a name: 999.1.1.1 is a typo.
    let last = labels.last().copied().unwrap_or_default();
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return match v.parse::<Ipv4Addr>() {
            Err(_) => Some("numeric, but not an IPv4 address"),
            Ok(a) if a.is_unspecified() => Some("0.0.0.0 is no address to connect to"),
            Ok(a) if a.is_broadcast() => Some("the broadcast address"),
            Ok(_) => None,
        };
    }
    None
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
    fn names_are_any_visible_text() {
        for good in ["Meter A", "Zähler Süd/7", "電表 7", "sim-1", "Ünïcødé ✓"] {
            assert_eq!(visible_label(good, 128).as_deref(), Ok(good));
        }
        for bad in [
            "A\u{202E}B",
            "A\u{2066}B",
            "A\u{2069}",
            "\u{200B}A",
            "A\u{200D}B",
            "A\u{200F}B",
            "A\u{2028}B",
            "A\u{2029}B",
            "\u{FEFF}A",
            "Me\u{00AD}ter",
            "A\u{85}B",
            "A\u{1b}[31m",
        ] {
            let e = visible_label(bad, 128).unwrap_err();
            assert!(e.contains("character"), "{bad:?}: {e}");
        }
        let e = visible_label("A\u{202E}B", 128).unwrap_err();
        assert!(e.contains("U+202E"), "{e}");
    }

    #[test]
    fn strict_words_and_booleans() {
        assert_eq!(word::<Transport>("wrapper"), Ok(Transport::Wrapper));
        assert_eq!(
            word::<AuthKind>("hi"),
            Err(
                "\"hi\" is not none, low, high-gmac, high-md5, high-sha1 or high-sha256"
                    .to_string()
            )
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
        for good in [
            "127.0.0.1",
            "meter-7.local",
            "::1",
            "fe80::1",
            "localhost",
            "h",
            "10.0.0.255",
            "4ever.example",
            &format!(
                "{}.{}.{}.{}",
                "a".repeat(63),
                "b".repeat(63),
                "c".repeat(63),
                "d".repeat(61)
            ),
        ] {
            assert_eq!(host(good).as_deref(), Ok(good), "{good:?}");
        }
        for (bad, why) in [
            ("my host", "only letters"),
            ("", "empty"),
            ("a\tb", "only letters"),
            ("-x", "'-'"),
            ("x-.y", "'-'"),
            ("localhost:80", "a port goes in port"),
            ("a..b", "an empty label"),
            (".a", "an empty label"),
            ("a.", "an empty label"),
            ("999.1.1.1", "not an IPv4 address"),
            ("1.2.3", "not an IPv4 address"),
            ("example.123", "not an IPv4 address"),
            ("255.255.255.255", "broadcast"),
            ("0.0.0.0", "no address"),
            ("::", "no address"),
            ("1::2::3", "not an IPv6"),
            ("meter_7", "only letters"),
            ("zähler", "only letters"),
            (&"x".repeat(64), "longer than 63"),
            (
                &format!(
                    "{}.{}.{}.{}",
                    "a".repeat(63),
                    "b".repeat(63),
                    "c".repeat(63),
                    "d".repeat(62)
                ),
                "longer than 253",
            ),
        ] {
            let e = host(bad).unwrap_err();
            assert!(
                e.contains("is not a host name or IP address") && e.contains(why),
                "{bad:?}: {e}"
            );
        }
        assert_eq!(bounded::<u16>("65535", 1, 65535), Ok(65535));
        assert!(bounded::<u16>("0", 1, 65535).is_err());
        assert!(bounded::<u16>("70000", 1, 65535).is_err());
        assert!(secret_text("pw\u{7}", 64).unwrap_err().find("pw").is_none());
        assert_eq!(format!("{:?}", Secret("pw")), "(secret)");
        assert_eq!(hex_text(&hex_bytes::<2>("0aff").unwrap()), "0AFF");
    }
}
