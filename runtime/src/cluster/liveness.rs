//! The liveness file of a coordinator or worker (`--alive-file`): the
//! process's control loop writes the wall-clock time into it, at most once
//! a second, and `rivulet health --file` (a container's healthcheck: the
//! images have no shell) calls the process wedged when that time is too
//! old. A worker waiting for its coordinator keeps writing: restarting it
//! would not bring the coordinator back.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Writes a liveness file, or nothing when it has no path.
#[derive(Debug)]
pub struct Liveness {
    path: Option<PathBuf>,
    /// When it last wrote (the monotonic clock).
    last: Mutex<Option<Instant>>,
    warned: AtomicBool,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness::at(None)
    }
}

impl Liveness {
    /// Writes to `path` (nothing when `None`).
    pub fn at(path: Option<PathBuf>) -> Self {
        Liveness { path, last: Mutex::new(None), warned: AtomicBool::new(false) }
    }

    /// Says the control loop is turning: writes the time unless it did
    /// less than a second ago (by the monotonic clock, so a wall clock set
    /// back, as on a Pi without RTC at boot, still gets a write a second).
    /// A failed write is logged once and never stops the job.
    pub fn beat(&self) {
        let Some(path) = &self.path else { return };
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = write(path, unix_ms()) {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the liveness file");
            }
        }
    }
}

/// Written beside and renamed over, so a reader never sees half of it.
fn write(path: &Path, ms: u64) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{ms}\n"))?;
    std::fs::rename(&tmp, path)
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How long ago the process owning the liveness file at `path` last wrote
/// it (zero when its time is ahead of this clock).
///
/// # Errors
/// The file is missing, unreadable or holds no time (the message says
/// which).
pub fn liveness_age(path: &Path) -> Result<Duration, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ms: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{}: holds no time in milliseconds ({:?})", path.display(), text.trim()))?;
    Ok(Duration::from_millis(unix_ms().saturating_sub(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_writes_the_time_and_the_age_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alive");
        assert!(liveness_age(&path).unwrap_err().contains("alive"));
        let l = Liveness::at(Some(path.clone()));
        l.beat();
        assert!(liveness_age(&path).unwrap() < Duration::from_secs(5));
        // Within the second, a beat writes nothing.
        std::fs::write(&path, "1\n").unwrap();
        l.beat();
        assert!(liveness_age(&path).unwrap() > Duration::from_secs(3600));
        std::fs::write(&path, "soon\n").unwrap();
        assert!(liveness_age(&path).unwrap_err().contains("holds no time"));
        // A time ahead of the clock is fresh.
        std::fs::write(&path, format!("{}\n", unix_ms() + 60_000)).unwrap();
        assert_eq!(liveness_age(&path).unwrap(), Duration::ZERO);
    }

    #[test]
    fn without_a_path_nothing_is_written_and_a_bad_path_is_no_error() {
        let none = Liveness::default();
        none.beat();
        assert!(none.last.lock().unwrap().is_none(), "no path: no write was tried");
        let bad = Liveness::at(Some(PathBuf::from("/nonexistent/dir/alive")));
        bad.beat();
        assert!(bad.warned.load(Ordering::Relaxed), "the failed write was logged");
        assert!(!Path::new("/nonexistent/dir/alive").exists());
    }
}
