//! Random bytes for HLS challenges and dedicated keys, from the kernel (no extra crate: every
//! target gateway is Linux with /dev/urandom).

use std::io::{self, Read};

/// `N` random bytes for `purpose` (named in the error, e.g. "the HLS challenge").
pub fn random_bytes<const N: usize>(purpose: &str) -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot read /dev/urandom for {purpose}: {e}"),
            )
        })?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_draws_differ() {
        let a = super::random_bytes::<16>("a test").unwrap();
        let b = super::random_bytes::<16>("a test").unwrap();
        assert_ne!(a, b);
    }
}
