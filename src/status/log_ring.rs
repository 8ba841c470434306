//! The last [`LINES`] log lines in memory, for the page's log panel (`/api/logs?since=`).
//! The logger writes through [`Tee`]; every complete line gets a sequence number, so a page
//! asks only for what it has not seen.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;

pub const LINES: usize = 500;
/// Longer lines are cut (a line is ~100 bytes; the ring stays under ~250 KiB at worst).
pub const MAX_LINE: usize = 512;

struct Ring {
    next_seq: u64,
    lines: VecDeque<(u64, String)>,
}

static RING: Mutex<Ring> = Mutex::new(Ring {
    next_seq: 1,
    lines: VecDeque::new(),
});

pub fn push(line: &str) {
    let mut text: String = line.trim_end().to_string();
    if text.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    let mut ring = RING.lock().unwrap_or_else(|e| e.into_inner());
    let seq = ring.next_seq;
    ring.next_seq += 1;
    if ring.lines.len() == LINES {
        ring.lines.pop_front();
    }
    ring.lines.push_back((seq, text));
}

/// The lines after `seq` (all that are left if the page fell behind), and the newest number.
pub fn since(seq: u64) -> (Vec<(u64, String)>, u64) {
    let ring = RING.lock().unwrap_or_else(|e| e.into_inner());
    let lines = ring
        .lines
        .iter()
        .filter(|(s, _)| *s > seq)
        .cloned()
        .collect();
    (lines, ring.next_seq - 1)
}

/// Writes to `inner` and copies each complete line into the ring.
pub struct Tee<W> {
    inner: W,
    partial: Vec<u8>,
}

impl<W> Tee<W> {
    pub fn new(inner: W) -> Tee<W> {
        Tee {
            inner,
            partial: Vec::new(),
        }
    }
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The ring gets the line even when the file cannot be written (disk full): the page
        // is where one would look then.
        let n = match self.inner.write(buf) {
            Ok(n) => n,
            Err(_) => buf.len(),
        };
        for part in buf[..n].split_inclusive(|b| *b == b'\n') {
            if self.partial.len() < MAX_LINE * 4 {
                self.partial.extend_from_slice(part);
            }
            if part.ends_with(b"\n") {
                push(&String::from_utf8_lossy(&self.partial));
                self.partial.clear();
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_bounded_and_read_since() {
        let mut tee = Tee::new(Vec::new());
        write!(tee, "first ").unwrap();
        write!(tee, "line\nsecond line\nthird").unwrap();
        let (_, newest) = since(u64::MAX);
        let (lines, _) = since(newest.saturating_sub(2));
        let texts: Vec<&str> = lines.iter().map(|(_, t)| t.as_str()).collect();
        assert!(texts.ends_with(&["first line", "second line"]), "{texts:?}");
        assert_eq!(tee.inner, b"first line\nsecond line\nthird");
        for i in 0..LINES + 5 {
            push(&format!("flood {i}"));
        }
        let (all, newest) = since(0);
        assert_eq!(all.len(), LINES);
        assert_eq!(all.last().unwrap().0, newest);
        assert!(all.windows(2).all(|w| w[1].0 > w[0].0));
        push(&"x".repeat(MAX_LINE * 2));
        let (last, _) = since(newest);
        assert!(last[0].1.len() <= MAX_LINE + 3);
    }
}
