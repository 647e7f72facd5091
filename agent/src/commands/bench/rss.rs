//! Peak resident set size of this process, as the benchmarks report it.

/// Peak resident set size of this process (VmHWM), in KiB; 0 where
/// /proc/self/status is not there.
pub(super) fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
