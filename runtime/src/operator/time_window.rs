//! Tumbling, sliding and cumulating windows with incremental aggregation
//! over panes.

use super::output::WindowOutput;
use super::Lateness;
use crate::aggregate::Aggregate;
use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::key::Key;
use crate::metrics::{Metrics, TaskMetrics};
use crate::record::Record;
use crate::state::{Table, TimerQueue};
use crate::task::{Consumer, TaskCtx};
use crate::window::time_windows::Panes;
use crate::window::{Window, Windowed};
use rustc_hash::FxHashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Timers handled at a time: a firing of a million keys goes out in
/// chunks, never as one list in memory.
const FIRE_CHUNK: usize = 4096;

/// A pane's times, and when its records are late.
#[derive(Clone, Copy)]
struct PaneSpan {
    start: i64,
    /// Its last timestamp; `last < start` for no pane.
    last: i64,
    /// Its records are late once the watermark reaches this: the max
    /// timestamp of its last window, plus the allowed lateness.
    late_at: i64,
}

impl PaneSpan {
    const NONE: Self = Self { start: 0, last: -1, late_at: i64::MIN };

    /// The pane of `ts`, which fits the panes' range. When some time of
    /// the pane would not fit, the span holds no time (so each is checked
    /// on its own).
    fn of(panes: &Panes, lateness: i64, ts: i64) -> Self {
        let start = panes.pane_start(ts);
        // `ts` fits, so `ts + pane` does not overflow.
        let end = start + panes.pane - 1;
        let last = if panes.fits(start) && panes.fits(end) { end } else { start - 1 };
        let late_at = panes.last_window_of_pane(start).max_timestamp().saturating_add(lateness);
        Self { start, last, late_at }
    }

    #[inline]
    fn holds(&self, ts: i64) -> bool {
        ts >= self.start && ts <= self.last
    }
}

pub(crate) struct TimeWindowOp<T, K: Key, KF, A: Aggregate<T>> {
    key: KF,
    agg: A,
    panes: Panes,
    lateness: i64,
    /// The pane of the last record (most records fall into the pane of
    /// the one before them).
    last_pane: PaneSpan,
    /// Pane accumulators keyed by (key, pane start).
    table: Table<K, i64, A::Acc>,
    /// Window max-timestamp → keys whose window fires then.
    fire: TimerQueue<K>,
    /// Cleanup time → panes to drop (only with lateness or sliding).
    cleanup: TimerQueue<(K, i64)>,
    /// Timers being handled.
    due: Vec<K>,
    /// Positions in the batch being handled of its late records, when the
    /// job keeps them: they are moved out once the batch was read.
    late_at: Vec<usize>,
    wm: i64,
    /// The watermark its results carry: while a watermark fires windows,
    /// the one before it (Flink's order: a window's results precede the
    /// watermark that fired it, so a downstream operator sees them on
    /// time).
    emit_wm: i64,
    output: WindowOutput<T, Windowed<K, A::Out>>,
    metrics: Arc<Metrics>,
    task: Arc<TaskMetrics>,
}

impl<T: Send + 'static, K: Key, KF: Fn(&T) -> K + Send, A: Aggregate<T>> TimeWindowOp<T, K, KF, A> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ctx: &TaskCtx,
        op: u16,
        groups: std::ops::Range<u16>,
        key: KF,
        agg: A,
        panes: Panes,
        lateness: Lateness,
        down: Box<dyn Consumer<Windowed<K, A::Out>>>,
        late: Option<Box<dyn Consumer<T>>>,
    ) -> Result<Self> {
        let table = Table::new(op, ctx.key_groups, ctx.cache_bytes, ctx.backing(), ctx.next_epoch);
        let timer_bytes = ctx.cache_bytes / 8;
        let store = ctx.store.as_ref();
        let mut me = Self {
            key,
            agg,
            panes,
            lateness: lateness.allowed,
            last_pane: PaneSpan::NONE,
            table,
            fire: TimerQueue::new(store, op, 0, groups.start, timer_bytes),
            cleanup: TimerQueue::new(store, op, 1, groups.start, timer_bytes),
            due: Vec::new(),
            late_at: Vec::new(),
            wm: i64::MIN,
            emit_wm: i64::MIN,
            output: WindowOutput::new(down, late),
            metrics: ctx.metrics.clone(),
            task: ctx.task_metrics.clone(),
        };
        if ctx.restored {
            let Self { table, fire, cleanup, panes, lateness, wm, .. } = &mut me;
            let mut err = None;
            table.restore(groups, |k, p, _| {
                if let Err(e) = register(fire, cleanup, panes, *lateness, *wm, k, p) {
                    err.get_or_insert(e);
                }
            })?;
            err.map_or(Ok(()), Err)?;
        }
        Ok(me)
    }

    /// Timers for a new pane of `k`.
    fn register(&mut self, k: &K, p: i64) -> Result<()> {
        register(&mut self.fire, &mut self.cleanup, &self.panes, self.lateness, self.wm, k, p)
    }

    fn emit(&mut self, k: K, w: Window, acc: &A::Acc) {
        self.output.out.push(Record {
            ts: w.max_timestamp(),
            wm: self.emit_wm,
            value: Windowed { key: k, window: w, value: self.agg.result(acc) },
        });
    }

    /// Merges the panes of `w` for `k`; `None` when all are empty.
    fn window_acc(&mut self, k: &K, w: Window) -> Result<Option<A::Acc>> {
        let mut acc: Option<A::Acc> = None;
        for p in self.panes.panes_of_window(w) {
            if let Some(a) = self.table.get(k, p)? {
                match &mut acc {
                    None => acc = Some(a.clone()),
                    Some(x) => self.agg.merge(x, a),
                }
            }
        }
        Ok(acc)
    }

    /// Moves event time to `wm`, firing and cleaning windows on the way.
    fn advance(&mut self, wm: i64) -> Result<()> {
        self.emit_wm = self.wm;
        self.wm = wm;
        let purge_on_fire = self.panes.is_tumbling() && self.lateness == 0;
        let mut keys = std::mem::take(&mut self.due);
        while let Some(t) = self.fire.pop_due(wm, FIRE_CHUNK, &mut keys)? {
            let w = self.panes.window_ending(t + 1);
            if purge_on_fire {
                for k in keys.drain(..) {
                    if let Some(acc) = self.table.take(&k, w.start)? {
                        self.emit(k, w, &acc);
                    }
                }
            } else {
                if !self.panes.is_tumbling() {
                    // A key registers a window once per pane: fire it once.
                    // (In-memory timers of a time come in one batch; spilled
                    // ones are unique in the store.)
                    let mut seen = FxHashSet::default();
                    keys.retain(|k| seen.insert(k.clone()));
                }
                for k in keys.drain(..) {
                    if let Some(acc) = self.window_acc(&k, w)? {
                        self.emit(k, w, &acc);
                    }
                }
            }
            // Results of a big firing go downstream as they are made.
            self.output.flush()?;
        }
        self.due = keys;
        let mut panes = Vec::new();
        while self.cleanup.pop_due(wm, FIRE_CHUNK, &mut panes)?.is_some() {
            for (k, p) in panes.drain(..) {
                self.table.take(&k, p)?;
            }
        }
        self.emit_wm = wm;
        self.flush()
    }

    fn flush(&mut self) -> Result<()> {
        self.output.flush()?;
        self.task.records_out.store(self.output.emitted, Ordering::Relaxed);
        self.task.state_cache_bytes.store(self.table.cached_bytes() as u64, Ordering::Relaxed);
        self.task.spilled_entries.store(self.table.spilled_entries(), Ordering::Relaxed);
        let (hits, misses) = self.table.lookups();
        self.task.cache_hits.store(hits, Ordering::Relaxed);
        self.task.cache_misses.store(misses, Ordering::Relaxed);
        Ok(())
    }

    /// A late element within allowed lateness re-fires the windows of its
    /// pane that already fired (Flink's `EventTimeTrigger.onElement`).
    fn refire(&mut self, k: &K, p: i64) -> Result<()> {
        let fired: Vec<Window> = self
            .panes
            .windows_of_pane(p)
            // Fired, but not yet past its lateness (then it is gone in Flink).
            .filter(|w| w.max_timestamp() <= self.wm && w.max_timestamp().saturating_add(self.lateness) > self.wm)
            .collect();
        for w in fired {
            if let Some(acc) = self.window_acc(k, w)? {
                self.emit(k.clone(), w, &acc);
            }
        }
        Ok(())
    }
}

/// Registers the timers of a new pane `p` of `k`: the windows it belongs
/// to fire, then (with lateness, or for sliding panes) it is dropped.
fn register<K: Key>(
    fire: &mut TimerQueue<K>,
    cleanup: &mut TimerQueue<(K, i64)>,
    panes: &Panes,
    lateness: i64,
    wm: i64,
    k: &K,
    p: i64,
) -> Result<()> {
    if panes.is_tumbling() {
        let w = Window { start: p, end: p + panes.size };
        if w.max_timestamp() > wm {
            fire.push(w.max_timestamp(), k.clone())?;
        }
        if lateness > 0 {
            cleanup.push(w.max_timestamp().saturating_add(lateness), (k.clone(), p))?;
        }
        return Ok(());
    }
    for w in panes.windows_of_pane(p) {
        if w.max_timestamp() > wm {
            fire.push(w.max_timestamp(), k.clone())?;
        }
    }
    let last = panes.last_window_of_pane(p);
    cleanup.push(last.max_timestamp().saturating_add(lateness), (k.clone(), p))
}

impl<T: Send + 'static, K: Key, KF: Fn(&T) -> K + Send, A: Aggregate<T>> Consumer<T> for TimeWindowOp<T, K, KF, A> {
    fn batch(&mut self, recs: Vec<Record<T>>) -> Result<()> {
        let mut late = 0u64;
        let mut out_of_range = 0u64;
        let mut first_out_of_range = None;
        // Read in place: a record moves only if it goes to the late output.
        for (i, r) in recs.iter().enumerate() {
            if r.wm > self.wm {
                self.advance(r.wm)?;
            }
            if !self.last_pane.holds(r.ts) {
                if !self.panes.fits(r.ts) {
                    // Its window end would wrap past i64: refused as bad
                    // input rather than aggregated into a wrong window.
                    out_of_range += 1;
                    first_out_of_range.get_or_insert(r.ts);
                    continue;
                }
                self.last_pane = PaneSpan::of(&self.panes, self.lateness, r.ts);
            }
            let p = self.last_pane.start;
            if self.last_pane.late_at <= self.wm {
                late += 1;
                if self.output.keeps_late() {
                    self.late_at.push(i);
                }
                continue;
            }
            let k = (self.key)(&r.value);
            let agg = &self.agg;
            let mut created = false;
            let acc = self.table.upsert(&k, p, || {
                created = true;
                agg.create()
            })?;
            agg.add(acc, &r.value);
            if created {
                self.register(&k, p)?;
            }
            // Only panes whose earliest window already fired can re-fire.
            if self.lateness > 0 && self.panes.windows_of_pane(p).next().is_some_and(|w| w.max_timestamp() <= self.wm) {
                self.refire(&k, p)?;
            }
        }
        if late > 0 {
            self.metrics.late.fetch_add(late, Ordering::Relaxed);
        }
        if !self.late_at.is_empty() {
            let mut at = self.late_at.iter().copied().peekable();
            for (i, r) in recs.into_iter().enumerate() {
                if at.next_if_eq(&i).is_some() {
                    self.output.late(r);
                }
            }
            self.late_at.clear();
        }
        if out_of_range > 0 {
            // One line per batch, not per record: a source stuck on bad
            // timestamps must not flood the log.
            tracing::warn!(
                count = out_of_range,
                first_ts = first_out_of_range,
                "records skipped: their windows would overflow the range of event time"
            );
            self.metrics.bad_input.fetch_add(out_of_range, Ordering::Relaxed);
        }
        self.flush()
    }

    fn watermark(&mut self, wm: i64) -> Result<()> {
        if wm > self.wm {
            self.advance(wm)?;
        }
        self.output.watermark(wm)
    }

    fn barrier(&mut self, cp: &mut Checkpoint, last: bool) -> Result<()> {
        if let Some(b) = cp.batch.as_mut() {
            self.table.snapshot(cp.epoch, b)?;
        }
        self.output.barrier(cp, last)
    }

    fn end(&mut self) -> Result<()> {
        self.output.end()
    }
}

#[cfg(test)]
mod pane_span_tests {
    use super::*;

    /// Guards the reuse of the last record's pane: a reused pane holds
    /// exactly its own times, all of which fit the range of event time,
    /// and says when they are late as the panes do.
    #[test]
    fn a_pane_is_reused_only_for_its_own_times_that_fit() {
        for (size, slide, offset) in [(10, 10, 0), (10, 10, 3), (10, 4, 0), (7, 7, -2)] {
            let pane = if size == slide { size } else { 2 };
            let panes = Panes { size, slide, pane, offset, cumulate: false };
            let near = |edge: i64| (-40..=40).map(move |d| edge.saturating_add(d));
            for ts in near(i64::MIN).chain(near(i64::MAX)).chain(near(1234)) {
                if !panes.fits(ts) {
                    continue;
                }
                let span = PaneSpan::of(&panes, 5, ts);
                assert_eq!(span.start, panes.pane_start(ts));
                let late = panes.last_window_of_pane(span.start).max_timestamp().saturating_add(5);
                assert_eq!(span.late_at, late);
                for t in near(ts) {
                    if span.holds(t) {
                        assert!(panes.fits(t), "{t} reused from {ts}");
                        assert_eq!(panes.pane_start(t), span.start, "{t} reused from {ts}");
                    }
                }
                if ts == 1234 {
                    assert!((span.start..span.start + pane).all(|t| span.holds(t)));
                }
            }
        }
    }
}
