//! Figures about a process from Linux's /proc (`pid` is a number or "self"): the gateway's
//! own telemetry, and the benchmarks and tests that measure the bridge.

/// CPU seconds used (utime + stime, fields 14 and 15 of /proc/PID/stat, 100 ticks a second).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name, which may itself hold spaces.
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// The first number of the line starting with `key` in /proc/PID/`file` (e.g. "status",
/// "VmRSS:" in KiB; "io", "write_bytes:").
pub fn field(pid: &str, file: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        assert!(super::cpu_seconds("self").is_some_and(|s| s >= 0.0));
        assert!(super::field("self", "status", "VmRSS:").is_some_and(|k| k > 0));
        assert_eq!(super::field("self", "status", "NoSuchKey:"), None);
    }
}
