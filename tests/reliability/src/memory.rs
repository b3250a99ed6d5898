//! Memory figures of the test process, read from `/proc/self/status` (Linux only).

/// Returns the resident set size of this process in KiB, or 0 where `/proc` is missing.
pub fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// Returns the peak resident set size of this process in KiB, or 0 where `/proc` is missing.
pub fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}
