//! Random bytes for HLS challenges and dedicated keys, from the kernel (no extra crate: every
//! target gateway is Linux with /dev/urandom).

use std::io::{self, Read};

pub fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_draws_differ() {
        let a = super::random_bytes::<16>().unwrap();
        let b = super::random_bytes::<16>().unwrap();
        assert_ne!(a, b);
    }
}
