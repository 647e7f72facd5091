//! Count windows: every `n` elements of a key form a window (a global
//! window with a purging count trigger). Event time does not close them.

use crate::aggregate::Aggregate;
use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::key::Key;
use crate::record::Record;
use crate::state::Table;
use crate::task::{Consumer, TaskCtx};
use crate::window::{Window, Windowed};
use serde::{Deserialize, Serialize};

/// The running window of a key: how many, the accumulator, and the event
/// time span the elements covered (reported as the window).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Filling<Acc> {
    count: u64,
    acc: Acc,
    min_ts: i64,
    max_ts: i64,
}

pub(crate) struct CountWindowOp<T, K: Key, KF, A: Aggregate<T>> {
    key: KF,
    agg: A,
    n: u64,
    table: Table<K, (), Filling<A::Acc>>,
    out: Vec<Record<Windowed<K, A::Out>>>,
    down: Box<dyn Consumer<Windowed<K, A::Out>>>,
    task: std::sync::Arc<crate::metrics::TaskMetrics>,
}

impl<T: Send + 'static, K: Key, KF: Fn(&T) -> K + Send, A: Aggregate<T>> CountWindowOp<T, K, KF, A> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ctx: &TaskCtx,
        op: u16,
        _groups: std::ops::Range<u16>,
        key: KF,
        agg: A,
        n: u64,
        down: Box<dyn Consumer<Windowed<K, A::Out>>>,
    ) -> Result<Self> {
        Ok(Self {
            key,
            agg,
            n,
            table: Table::new(op, ctx.key_groups, ctx.cache_bytes, ctx.backing(), ctx.next_epoch),
            out: Vec::new(),
            down,
            task: ctx.task_metrics.clone(),
        })
    }
}

impl<T: Send + 'static, K: Key, KF: Fn(&T) -> K + Send, A: Aggregate<T>> Consumer<T> for CountWindowOp<T, K, KF, A> {
    fn batch(&mut self, recs: Vec<Record<T>>) -> Result<()> {
        for r in recs {
            let k = (self.key)(&r.value);
            let agg = &self.agg;
            let f =
                self.table.upsert(&k, (), || Filling { count: 0, acc: agg.create(), min_ts: r.ts, max_ts: r.ts })?;
            agg.add(&mut f.acc, &r.value);
            f.count += 1;
            f.min_ts = f.min_ts.min(r.ts);
            f.max_ts = f.max_ts.max(r.ts);
            if f.count >= self.n {
                let w = Window { start: f.min_ts, end: f.max_ts.saturating_add(1) };
                let value = agg.result(&f.acc);
                self.table.take(&k, ())?;
                self.out.push(Record { ts: w.max_timestamp(), wm: r.wm, value: Windowed { key: k, window: w, value } });
            }
        }
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        self.task.state_cache_bytes.store(self.table.cached_bytes() as u64, relaxed);
        self.task.spilled_entries.store(self.table.spilled_entries(), relaxed);
        let (hits, misses) = self.table.lookups();
        self.task.cache_hits.store(hits, relaxed);
        self.task.cache_misses.store(misses, relaxed);
        if !self.out.is_empty() {
            self.task.records_out.fetch_add(self.out.len() as u64, relaxed);
            self.down.batch(std::mem::take(&mut self.out))?;
        }
        Ok(())
    }

    fn watermark(&mut self, wm: i64) -> Result<()> {
        self.down.watermark(wm)
    }

    fn barrier(&mut self, cp: &mut Checkpoint, last: bool) -> Result<()> {
        if let Some(b) = cp.batch.as_mut() {
            self.table.snapshot(cp.epoch, b)?;
        }
        self.down.barrier(cp, last)
    }

    fn end(&mut self) -> Result<()> {
        self.down.end()
    }
}
