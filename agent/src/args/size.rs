//! `--state-cache SIZE`: sizes like `8MiB`, `64MiB`, `512KiB` (the
//! `bytesize` crate's syntax: binary units KiB/MiB/GiB, decimal kB/MB/GB,
//! or bare bytes), bounded below by [`MIN_STATE_CACHE`] and above by what
//! the machine has; left out, a default chosen from the machine's memory.

use bytesize::ByteSize;
use std::sync::LazyLock;

/// The smallest state cache accepted: 64 KiB. Below it a table holds too
/// few entries to be worth having and every access goes to disk.
pub const MIN_STATE_CACHE: u64 = 64 << 10;

/// The least and the most [`default_state_cache`] chooses: 8 MiB and
/// 64 MiB per instance.
pub const DEFAULT_STATE_CACHE_RANGE: std::ops::RangeInclusive<u64> = (8 << 20)..=(64 << 20);

/// The `--state-cache` of a job that leaves the flag out: 1/256 of
/// `memory`, the memory the process may use ([`mem_usable`]), per
/// instance, within [`DEFAULT_STATE_CACHE_RANGE`], in whole MiB (the least
/// of the range where the memory is not known).
/// A 1 GiB Pi gets 8 MiB, a 4 GiB one 16 MiB, 16 GiB and more 64 MiB. A
/// cache costs memory only as keys fill it, so a job with few keys stays
/// small whatever the default.
#[must_use]
pub fn default_state_cache(memory: Option<u64>) -> u64 {
    let range = DEFAULT_STATE_CACHE_RANGE;
    let share = memory.map_or(*range.start(), |t| t / 256);
    share.clamp(*range.start(), *range.end()) >> 20 << 20
}

/// [`default_state_cache`] of this machine, as a flag value (`16MiB`):
/// the default of every `--state-cache`.
pub static DEFAULT_STATE_CACHE: LazyLock<String> =
    LazyLock::new(|| format!("{}MiB", default_state_cache(mem_usable()) >> 20));

/// Parses a `--state-cache` value (clap value parser), bounded by
/// [`MIN_STATE_CACHE`], the runtime's own limit and this machine's memory.
///
/// # Errors
/// Not a size, or outside the bounds.
pub fn state_cache_size(text: &str) -> Result<usize, String> {
    state_cache_within(text, mem_total())
}

/// [`state_cache_size`] against a given memory total (`None`: unknown, as
/// off Linux, so only the runtime's limit applies).
pub(crate) fn state_cache_within(text: &str, mem_total: Option<u64>) -> Result<usize, String> {
    let size: ByteSize =
        text.trim().parse().map_err(|e| format!("`{text}` is not a size like 512KiB, 8MiB or 1GiB ({e})"))?;
    let bytes = size.as_u64();
    if bytes < MIN_STATE_CACHE {
        return Err(format!("`{text}` is below the minimum of 64KiB"));
    }
    let runtime_max = rivulet::memory::MAX_STATE_CACHE_BYTES as u64;
    if bytes > runtime_max {
        return Err(format!("`{text}` is above the engine's limit of {}", ByteSize::b(runtime_max).display().iec()));
    }
    if let Some(total) = mem_total.filter(|&t| bytes > t) {
        return Err(format!("`{text}` is more than this machine's memory ({})", ByteSize::b(total).display().iec()));
    }
    usize::try_from(bytes).map_err(|_| format!("`{text}` does not fit this platform's address space"))
}

/// This machine's memory in bytes (MemTotal of /proc/meminfo), or `None`
/// where that is not known (not Linux, or no /proc). Bounds an explicit
/// `--state-cache`.
pub fn mem_total() -> Option<u64> {
    usable_memory(&std::fs::read_to_string("/proc/meminfo").ok()?, std::iter::empty())
}

/// The memory this process may use, in bytes: [`mem_total`], or the memory
/// limit of its container's cgroup (v2 `memory.max`, v1
/// `memory.limit_in_bytes`) when that is lower, as for a Swarm service
/// with a memory limit. What the default `--state-cache` is taken from.
pub fn mem_usable() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let limits = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        .map(|p| std::fs::read_to_string(p).ok());
    usable_memory(&text, limits.iter().flatten().map(String::as_str))
}

/// [`mem_usable`] from the text of /proc/meminfo and of cgroup limit files
/// (`max` or a byte count).
fn usable_memory<'a>(meminfo: &str, limits: impl Iterator<Item = &'a str>) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    let total = kib.checked_mul(1024)?;
    Some(limits.filter_map(|l| l.trim().parse::<u64>().ok()).fold(total, u64::min))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    // Guards the accepted spellings: binary and decimal units, bare bytes.
    #[test]
    fn units() {
        assert_eq!(state_cache_within("8MiB", Some(GIB)), Ok(8 << 20));
        assert_eq!(state_cache_within("64MiB", Some(GIB)), Ok(64 << 20));
        assert_eq!(state_cache_within("512KiB", Some(GIB)), Ok(512 << 10));
        assert_eq!(state_cache_within("1GiB", Some(2 * GIB)), Ok(1 << 30));
        assert_eq!(state_cache_within("10MB", Some(GIB)), Ok(10_000_000));
        assert_eq!(state_cache_within("65536", Some(GIB)), Ok(65536));
    }

    // Guards issue 16 §2: the default follows the device's memory within
    // its range, so a 1 GiB Pi keeps the small cache it always had.
    #[test]
    fn the_default_follows_the_machines_memory() {
        const MIB: u64 = 1 << 20;
        assert_eq!(default_state_cache(Some(GIB)), 8 * MIB);
        assert_eq!(default_state_cache(Some(512 * MIB)), 8 * MIB);
        assert_eq!(default_state_cache(Some(4 * GIB)), 16 * MIB);
        assert_eq!(default_state_cache(Some(8 * GIB - 300 * MIB)), 30 * MIB, "whole MiB");
        assert_eq!(default_state_cache(Some(16 * GIB)), 64 * MIB);
        assert_eq!(default_state_cache(Some(24 * GIB)), 64 * MIB);
        assert_eq!(default_state_cache(None), 8 * MIB);
        let text = DEFAULT_STATE_CACHE.as_str();
        assert_eq!(state_cache_size(text), Ok(default_state_cache(mem_usable()) as usize), "{text}");
    }

    // Guards issue 16 §2 in a container: a cgroup memory limit below the
    // machine's memory is what the default goes by.
    #[test]
    fn a_cgroup_limit_lowers_the_memory_a_job_counts_on() {
        let meminfo = "MemTotal:        1012345 kB\nMemFree:  1000 kB\n";
        let total = 1_012_345 * 1024;
        assert_eq!(usable_memory(meminfo, [].into_iter()), Some(total));
        assert_eq!(usable_memory(meminfo, ["max\n"].into_iter()), Some(total), "v2, no limit");
        assert_eq!(usable_memory(meminfo, ["9223372036854771712\n"].into_iter()), Some(total), "v1, no limit");
        assert_eq!(usable_memory(meminfo, ["134217728\n"].into_iter()), Some(128 << 20));
        assert_eq!(usable_memory(meminfo, ["max", "268435456"].into_iter()), Some(256 << 20));
        assert_eq!(usable_memory("", ["134217728"].into_iter()), None, "no MemTotal: not known");
    }

    // Guards issue 12 §9: too small, more than the machine has, or beyond
    // u64 is refused instead of panicking or wrapping to 0.
    #[test]
    fn bounds() {
        for t in ["0", "1KiB", "65535", "0MiB"] {
            let e = state_cache_within(t, Some(GIB)).unwrap_err();
            assert!(e.contains("minimum"), "{t}: {e}");
        }
        let e = state_cache_within("2GiB", Some(GIB)).unwrap_err();
        assert!(e.contains("machine's memory"), "{e}");
        for t in ["99999999999999999999GiB", "16EiB", "100000PiB"] {
            assert!(state_cache_within(t, None).is_err(), "{t}");
        }
        assert_eq!(state_cache_within("64KiB", Some(GIB)), Ok(64 << 10));
    }

    // Guards that garbage is a message, not a panic.
    #[test]
    fn garbage() {
        for t in ["bogus", "", "8 parsecs", "-1MiB", "NaNMiB"] {
            assert!(state_cache_within(t, Some(GIB)).is_err(), "{t}");
        }
    }

    // Guards the machine bound on Linux, where the tests run.
    #[test]
    #[cfg(target_os = "linux")]
    fn machine_memory_is_known_on_linux() {
        assert!(mem_total().is_some_and(|t| t > 64 << 20));
    }
}
