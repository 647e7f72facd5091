//! The process's resident memory and CPU time from `/proc` (Linux; other
//! systems report none), and the size of a directory on disk.

use std::path::Path;
use std::sync::OnceLock;

/// When this process first asked (ms since the Unix epoch): call it early
/// to pin it to the process's start. Two processes never share it, so a
/// report carrying it tells a restarted process from a long-lived one.
pub fn started_ms() -> i64 {
    static STARTED: OnceLock<i64> = OnceLock::new();
    *STARTED.get_or_init(super::unix_ms)
}

/// Resident set size in bytes (`VmRSS`).
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().strip_suffix("kB")?.trim();
    kib.parse::<u64>().ok().map(|k| k * 1024)
}

/// User plus system CPU time in seconds. `/proc` counts it in USER_HZ
/// ticks, 100 per second on every Linux architecture.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: fields after it count
    // from its closing parenthesis.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15, so 11 and 12 after the name.
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Bytes of the regular files under `dir`, recursively (files that vanish
/// while it walks count as nothing).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut total = 0;
    for e in entries.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            total += dir_bytes(&e.path());
        } else if t.is_file() {
            total += e.metadata().map_or(0, |m| m.len());
        }
    }
    total
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        if cfg!(target_os = "linux") {
            assert!(super::rss_bytes().is_some_and(|b| b > 0));
            assert!(super::cpu_seconds().is_some());
        }
    }

    #[test]
    fn sums_a_directory() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        std::fs::write(d.path().join("a/x"), [0u8; 100]).unwrap();
        std::fs::write(d.path().join("y"), [0u8; 23]).unwrap();
        assert_eq!(super::dir_bytes(d.path()), 123);
    }
}
