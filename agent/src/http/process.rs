//! The process's resident memory and CPU time (from the runtime) and the
//! machine's host name.

pub(crate) use rivulet::metrics::process::{cpu_seconds, rss_bytes};

/// This machine's host name.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
