//! OBIS codes (IEC 62056-6-1): six value groups A-F naming a COSEM object.
//!
//! Accepted text forms: `1-0:32.7.0*255` (the canonical one, printed by `Display`),
//! `1-0:32.7.0` (F defaults to 255), `1.0.32.7.0.255`, and 12 hex digits `0100200700FF`.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Obis(pub [u8; 6]);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObisParseError(String);

impl fmt::Display for ObisParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid OBIS code {:?}: expected A-B:C.D.E*F (e.g. 1-0:32.7.0*255) or A.B.C.D.E.F",
            self.0
        )
    }
}

impl std::error::Error for ObisParseError {}

impl Obis {
    pub const fn new(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8) -> Obis {
        Obis([a, b, c, d, e, f])
    }

    /// From the 6-byte logical name of an attribute descriptor.
    pub fn from_bytes(b: &[u8]) -> Option<Obis> {
        <[u8; 6]>::try_from(b).ok().map(Obis)
    }

    /// The dotted form `1.0.32.7.0.255`.
    pub fn dotted(&self) -> String {
        let [a, b, c, d, e, f] = self.0;
        format!("{a}.{b}.{c}.{d}.{e}.{f}")
    }
}

impl fmt::Display for Obis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a}-{b}:{c}.{d}.{e}*{g}")
    }
}

impl FromStr for Obis {
    type Err = ObisParseError;

    fn from_str(s: &str) -> Result<Obis, ObisParseError> {
        let err = || ObisParseError(s.to_string());
        let t = s.trim();
        if t.len() == 12 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut out = [0u8; 6];
            for (i, o) in out.iter_mut().enumerate() {
                *o = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| err())?;
            }
            return Ok(Obis(out));
        }
        let parts: Vec<&str> = if let Some((ab, rest)) = t.split_once(':') {
            let (a, b) = ab.split_once('-').ok_or_else(err)?;
            let (cde, f) = match rest.split_once('*') {
                Some((cde, f)) => (cde, f),
                None => (rest, "255"),
            };
            let mut v = vec![a, b];
            v.extend(cde.split('.'));
            v.push(f);
            v
        } else {
            t.split('.').collect()
        };
        if parts.len() != 6 {
            return Err(err());
        }
        let mut out = [0u8; 6];
        for (o, p) in out.iter_mut().zip(&parts) {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            *o = p.parse().map_err(|_| err())?;
        }
        Ok(Obis(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_to_the_same_code() {
        let want = Obis::new(1, 0, 32, 7, 0, 255);
        for s in [
            "1-0:32.7.0*255",
            "1-0:32.7.0",
            "1.0.32.7.0.255",
            "0100200700FF",
            " 1-0:32.7.0*255 ",
        ] {
            assert_eq!(s.parse::<Obis>().unwrap(), want, "{s}");
        }
        assert_eq!(want.to_string(), "1-0:32.7.0*255");
        assert_eq!(want.dotted(), "1.0.32.7.0.255");
        // Microstar uses channel B = 1.
        assert_eq!("1-1:32.7.0*255".parse::<Obis>().unwrap().0[1], 1);
    }

    #[test]
    fn bad_codes_are_refused_with_a_clear_message() {
        for s in [
            "",
            "1-0:32.7*255",
            "1.0.32.7.0.256",
            "1.0.32.7.0",
            "1-0:32.7.0*",
            "a.b.c.d.e.f",
            "1.0.+3.7.0.255",
        ] {
            let e = s.parse::<Obis>().unwrap_err();
            assert!(e.to_string().contains("invalid OBIS code"), "{s}");
        }
    }
}
