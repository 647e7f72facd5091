//! `--state-cache SIZE`: sizes like `8MiB`, `64MiB`, `512KiB` (the
//! `bytesize` crate's syntax: binary units KiB/MiB/GiB, decimal kB/MB/GB,
//! or bare bytes), bounded below by [`MIN_STATE_CACHE`] and above by what
//! the machine has.

use bytesize::ByteSize;

/// The smallest state cache accepted: 64 KiB. Below it a table holds too
/// few entries to be worth having and every access goes to disk.
pub const MIN_STATE_CACHE: u64 = 64 << 10;

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
/// where that is not known (not Linux, or no /proc).
pub fn mem_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
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
