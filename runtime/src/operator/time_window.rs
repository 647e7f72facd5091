//! Tumbling and sliding windows with incremental aggregation over panes.

use super::output::WindowOutput;
use super::Lateness;
use crate::aggregate::Aggregate;
use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::key::Key;
use crate::metrics::Metrics;
use crate::record::Record;
use crate::state::Table;
use crate::task::{Consumer, TaskCtx};
use crate::window::time_windows::Panes;
use crate::window::{Window, Windowed};
use rustc_hash::FxHashSet;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(crate) struct TimeWindowOp<T, K: Key, KF, A: Aggregate<T>> {
    key: KF,
    agg: A,
    panes: Panes,
    lateness: i64,
    /// Pane accumulators keyed by (key, pane start).
    table: Table<K, i64, A::Acc>,
    /// Window max-timestamp → keys whose window fires then.
    fire: BTreeMap<i64, Vec<K>>,
    /// Cleanup time → panes to drop (only with lateness or sliding).
    cleanup: BTreeMap<i64, Vec<(K, i64)>>,
    wm: i64,
    output: WindowOutput<T, Windowed<K, A::Out>>,
    metrics: Arc<Metrics>,
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
        let mut me = Self {
            key,
            agg,
            panes,
            lateness: lateness.allowed,
            table,
            fire: BTreeMap::new(),
            cleanup: BTreeMap::new(),
            wm: i64::MIN,
            output: WindowOutput::new(down, late),
            metrics: ctx.metrics.clone(),
        };
        if ctx.restored {
            let mut restored = Vec::new();
            me.table.restore(groups, |k, p, _| restored.push((k.clone(), p)))?;
            for (k, p) in restored {
                me.register(&k, p);
            }
        }
        Ok(me)
    }

    /// Timers for a new pane of `k`.
    fn register(&mut self, k: &K, p: i64) {
        if self.panes.is_tumbling() {
            let w = Window { start: p, end: p + self.panes.size };
            if w.max_timestamp() > self.wm {
                self.fire.entry(w.max_timestamp()).or_default().push(k.clone());
            }
            if self.lateness > 0 {
                let t = w.max_timestamp().saturating_add(self.lateness);
                self.cleanup.entry(t).or_default().push((k.clone(), p));
            }
            return;
        }
        for w in self.panes.windows_of_pane(p) {
            if w.max_timestamp() > self.wm {
                self.fire.entry(w.max_timestamp()).or_default().push(k.clone());
            }
        }
        let last = self.panes.last_window_of_pane(p);
        let t = last.max_timestamp().saturating_add(self.lateness);
        self.cleanup.entry(t).or_default().push((k.clone(), p));
    }

    fn emit(&mut self, k: K, w: Window, acc: &A::Acc) {
        self.output.out.push(Record {
            ts: w.max_timestamp(),
            wm: self.wm,
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
        self.wm = wm;
        let purge_on_fire = self.panes.is_tumbling() && self.lateness == 0;
        while let Some(entry) = self.fire.first_entry() {
            let t = *entry.key();
            if t > wm {
                break;
            }
            let mut keys = entry.remove();
            let end = t + 1;
            let w = Window { start: end - self.panes.size, end };
            if purge_on_fire {
                for k in keys {
                    if let Some(acc) = self.table.take(&k, w.start)? {
                        self.emit(k, w, &acc);
                    }
                }
            } else {
                if !self.panes.is_tumbling() {
                    let mut seen = FxHashSet::default();
                    keys.retain(|k| seen.insert(k.clone()));
                }
                for k in keys {
                    if let Some(acc) = self.window_acc(&k, w)? {
                        self.emit(k, w, &acc);
                    }
                }
            }
        }
        while let Some(entry) = self.cleanup.first_entry() {
            if *entry.key() > wm {
                break;
            }
            for (k, p) in entry.remove() {
                self.table.take(&k, p)?;
            }
        }
        self.flush()
    }

    fn flush(&mut self) -> Result<()> {
        self.output.flush()
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

impl<T: Send + 'static, K: Key, KF: Fn(&T) -> K + Send, A: Aggregate<T>> Consumer<T> for TimeWindowOp<T, K, KF, A> {
    fn batch(&mut self, recs: Vec<Record<T>>) -> Result<()> {
        let mut late = 0u64;
        for r in recs {
            if r.wm > self.wm {
                self.advance(r.wm)?;
            }
            let p = self.panes.pane_start(r.ts);
            let last = self.panes.last_window_of_pane(p);
            if last.max_timestamp().saturating_add(self.lateness) <= self.wm {
                late += 1;
                self.output.late(r);
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
                self.register(&k, p);
            }
            // Only panes whose earliest window already fired can re-fire.
            if self.lateness > 0 && self.panes.windows_of_pane(p).next().is_some_and(|w| w.max_timestamp() <= self.wm) {
                self.refire(&k, p)?;
            }
        }
        if late > 0 {
            self.metrics.late.fetch_add(late, Ordering::Relaxed);
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
