//! The checkpoint history: the last [`CHECKPOINT_HISTORY`] checkpoints and
//! running totals, written by the coordinator once per checkpoint.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Checkpoints kept in [`CheckpointLog::history`].
pub const CHECKPOINT_HISTORY: usize = 64;

/// One checkpoint as the coordinator saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointRecord {
    /// Its epoch.
    pub epoch: u64,
    /// When it was triggered (ms since the Unix epoch).
    pub triggered_ms: i64,
    /// From its trigger until it was complete and published; `None` while
    /// in progress or when it failed.
    pub duration: Option<Duration>,
    /// State, position and output entries the tasks staged for it.
    pub entries: u64,
    /// Bytes of its delta, counted when it is applied to the state: at its
    /// completion with one checkpoint retained, else once it is older
    /// than every retained checkpoint (0 until then). On a cluster, bytes
    /// uploaded to the checkpoint store at its completion.
    pub bytes: u64,
    /// `in_progress`, `complete` or `failed`.
    pub status: &'static str,
}

/// Totals over every checkpoint of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CheckpointTotals {
    /// Checkpoints completed.
    pub completed: u64,
    /// Checkpoints that failed (aborted after the checkpoint timeout).
    pub failed: u64,
    /// Sum of the completed ones' durations.
    pub duration: Duration,
    /// Sum of the delta bytes counted (see [`CheckpointRecord::bytes`]).
    pub bytes: u64,
    /// When the last one completed (ms since the Unix epoch).
    pub last_complete_ms: Option<i64>,
}

/// The history and totals, behind one lock taken once per checkpoint.
#[derive(Debug, Default)]
pub struct CheckpointLog {
    inner: Mutex<(VecDeque<CheckpointRecord>, CheckpointTotals)>,
}

/// Now in ms since the Unix epoch.
pub(crate) fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl CheckpointLog {
    /// Epoch `epoch` was triggered.
    pub(crate) fn triggered(&self, epoch: u64) {
        let Ok(mut g) = self.inner.lock() else { return };
        if g.0.len() == CHECKPOINT_HISTORY {
            g.0.pop_front();
        }
        g.0.push_back(CheckpointRecord {
            epoch,
            triggered_ms: unix_ms(),
            duration: None,
            entries: 0,
            bytes: 0,
            status: "in_progress",
        });
    }

    /// A task staged `entries` for `epoch`.
    pub(crate) fn staged(&self, epoch: u64, entries: u64) {
        let Ok(mut g) = self.inner.lock() else { return };
        if let Some(r) = g.0.iter_mut().rev().find(|r| r.epoch == epoch) {
            r.entries += entries;
        }
    }

    /// `epoch` is complete and published, `took` after its trigger, with
    /// `bytes` counted at once (see [`CheckpointRecord::bytes`]).
    pub(crate) fn completed(&self, epoch: u64, took: Duration, bytes: u64) {
        let Ok(mut g) = self.inner.lock() else { return };
        let (history, totals) = &mut *g;
        if let Some(r) = history.iter_mut().rev().find(|r| r.epoch == epoch) {
            r.duration = Some(took);
            r.bytes = bytes;
            r.status = "complete";
        }
        totals.completed += 1;
        totals.duration += took;
        totals.bytes += bytes;
        totals.last_complete_ms = Some(unix_ms());
    }

    /// The delta of `epoch`, `bytes` long, was applied to the state.
    pub(crate) fn applied(&self, epoch: u64, bytes: u64) {
        let Ok(mut g) = self.inner.lock() else { return };
        let (history, totals) = &mut *g;
        if let Some(r) = history.iter_mut().rev().find(|r| r.epoch == epoch) {
            r.bytes += bytes;
        }
        totals.bytes += bytes;
    }

    /// `epoch` failed.
    pub(crate) fn failed(&self, epoch: u64) {
        let Ok(mut g) = self.inner.lock() else { return };
        let (history, totals) = &mut *g;
        if let Some(r) = history.iter_mut().rev().find(|r| r.epoch == epoch) {
            r.status = "failed";
        }
        totals.failed += 1;
    }

    /// The last checkpoints, oldest first.
    pub fn history(&self) -> Vec<CheckpointRecord> {
        self.inner.lock().map(|g| g.0.iter().cloned().collect()).unwrap_or_default()
    }

    /// Totals over the run.
    pub fn totals(&self) -> CheckpointTotals {
        self.inner.lock().map(|g| g.1).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Guards the deferred count: a delta applied after its epoch completed
    // (retained checkpoints) is counted on its own record and in the
    // totals, once.
    #[test]
    fn a_delta_is_counted_when_it_is_applied() {
        let log = CheckpointLog::default();
        for e in 1..=3 {
            log.triggered(e);
            log.completed(e, Duration::from_millis(5), 0);
        }
        log.applied(1, 100);
        log.applied(2, 40);
        log.applied(9, 7); // no longer in the history: only in the totals
        let bytes: Vec<u64> = log.history().iter().map(|r| r.bytes).collect();
        assert_eq!(bytes, [100, 40, 0]);
        assert_eq!(log.totals().bytes, 147);
        assert_eq!(log.totals().completed, 3);
    }
}
