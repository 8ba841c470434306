//! Hex text for keys, system titles and raw APDUs (CLI flags, meter configuration).

/// Bytes from hex digits; whitespace is ignored. `None` for odd lengths or non-hex digits.
pub fn parse(s: &str) -> Option<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !clean.len().is_multiple_of(2) {
        return None;
    }
    (0..clean.len())
        .step_by(2)
        .map(|i| {
            clean
                .get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
        })
        .collect()
}

/// Bytes as upper-case hex digits.
pub fn encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Exactly `N` bytes from hex.
pub fn array<const N: usize>(s: &str) -> Option<[u8; N]> {
    parse(s).and_then(|b| <[u8; N]>::try_from(b).ok())
}

/// A test vector file: hex lines, `#` lines are its citation and notes.
#[cfg(test)]
pub(crate) fn vector(text: &str) -> Vec<u8> {
    let hex: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    parse(&hex).expect("a vector file holds hex")
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_keys_and_refuses_junk() {
        assert_eq!(super::parse("0a FF"), Some(vec![0x0A, 0xFF]));
        assert_eq!(super::array::<2>("0AFF"), Some([0x0A, 0xFF]));
        assert_eq!(super::array::<2>("0AFF00"), None);
        assert_eq!(super::parse("0AF"), None);
        assert_eq!(super::parse("zz"), None);
        assert_eq!(super::parse("é0"), None);
    }
}
