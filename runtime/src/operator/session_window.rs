//! Session windows: per key, windows that merge when elements come closer
//! than the gap (Flink's `MergingWindowAssigner` semantics).

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
use crate::window::session::intersects;
use crate::window::{Session, Window, Windowed};
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One open session of a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Open<Acc> {
    start: i64,
    end: i64,
    acc: Acc,
}

/// Timers handled at a time (see the time window operator).
const FIRE_CHUNK: usize = 4096;

pub(crate) struct SessionWindowOp<T, K: Key, KF, A: Aggregate<T>> {
    key: KF,
    agg: A,
    session: Session,
    lateness: i64,
    table: Table<K, (), Vec<Open<A::Acc>>>,
    fire: TimerQueue<K>,
    cleanup: TimerQueue<K>,
    due: Vec<K>,
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

impl<T: Send + 'static, K: Key, KF: Fn(&T) -> K + Send, A: Aggregate<T>> SessionWindowOp<T, K, KF, A> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ctx: &TaskCtx,
        op: u16,
        groups: std::ops::Range<u16>,
        key: KF,
        agg: A,
        session: Session,
        lateness: Lateness,
        down: Box<dyn Consumer<Windowed<K, A::Out>>>,
        late: Option<Box<dyn Consumer<T>>>,
    ) -> Result<Self> {
        let mut me = Self {
            key,
            agg,
            session,
            lateness: lateness.allowed,
            table: Table::new(op, ctx.key_groups, ctx.cache_bytes, ctx.backing(), ctx.next_epoch),
            fire: TimerQueue::new(ctx.store.as_ref(), op, 0, groups.start, ctx.cache_bytes / 8),
            cleanup: TimerQueue::new(ctx.store.as_ref(), op, 1, groups.start, ctx.cache_bytes / 8),
            due: Vec::new(),
            wm: i64::MIN,
            emit_wm: i64::MIN,
            output: WindowOutput::new(down, late),
            metrics: ctx.metrics.clone(),
            task: ctx.task_metrics.clone(),
        };
        if ctx.restored {
            let Self { table, fire, cleanup, lateness, .. } = &mut me;
            let mut err = None;
            table.restore(groups, |k, (), sessions| {
                for s in sessions {
                    let t = s.end - 1;
                    let mut r = fire.push(t, k.clone());
                    if *lateness > 0 {
                        r = r.and_then(|()| cleanup.push(t.saturating_add(*lateness), k.clone()));
                    }
                    if let Err(e) = r {
                        err.get_or_insert(e);
                    }
                }
            })?;
            err.map_or(Ok(()), Err)?;
        }
        Ok(me)
    }

    fn emit(&mut self, k: &K, s: &Open<A::Acc>) {
        let w = Window { start: s.start, end: s.end };
        self.output.out.push(Record {
            ts: w.max_timestamp(),
            wm: self.emit_wm,
            value: Windowed { key: k.clone(), window: w, value: self.agg.result(&s.acc) },
        });
    }

    fn advance(&mut self, wm: i64) -> Result<()> {
        self.emit_wm = self.wm;
        self.wm = wm;
        let mut keys = std::mem::take(&mut self.due);
        while let Some(t) = self.fire.pop_due(wm, FIRE_CHUNK, &mut keys)? {
            // A session that took an element without growing registered
            // its timer again: fire it once.
            let mut seen = FxHashSet::default();
            keys.retain(|k| seen.insert(k.clone()));
            for k in keys.drain(..) {
                let Some(sessions) = self.table.get(&k, ())?.cloned() else { continue };
                // A timer of a session that since grew finds no match.
                let mut fired = false;
                for s in sessions.iter().filter(|s| s.end - 1 == t) {
                    self.emit(&k, s);
                    fired = true;
                }
                if fired && self.lateness == 0 {
                    self.drop_sessions(&k, |s| s.end - 1 <= t)?;
                }
            }
            self.output.flush()?;
        }
        let lateness = self.lateness;
        while self.cleanup.pop_due(wm, FIRE_CHUNK, &mut keys)?.is_some() {
            for k in keys.drain(..) {
                self.drop_sessions(&k, |s| (s.end - 1).saturating_add(lateness) <= wm)?;
            }
        }
        self.due = keys;
        self.emit_wm = wm;
        self.flush()
    }

    fn drop_sessions(&mut self, k: &K, gone: impl Fn(&Open<A::Acc>) -> bool) -> Result<()> {
        let Some(mut sessions) = self.table.take(k, ())? else { return Ok(()) };
        sessions.retain(|s| !gone(s));
        if !sessions.is_empty() {
            self.table.put(k, (), sessions)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.output.flush()?;
        self.task.records_out.store(self.output.emitted, Ordering::Relaxed);
        Ok(())
    }

    fn add(&mut self, r: Record<T>) -> Result<bool> {
        let k = (self.key)(&r.value);
        let mut w = self.session.window_of(r.ts);
        let mut sessions = self.table.take(&k, ())?.unwrap_or_default();
        // Merge every open session the new element touches.
        let mut merged: Vec<Open<A::Acc>> = Vec::new();
        let mut rest = Vec::with_capacity(sessions.len() + 1);
        for s in sessions.drain(..) {
            if intersects(&Window { start: s.start, end: s.end }, &w) {
                w.start = w.start.min(s.start);
                w.end = w.end.max(s.end);
                merged.push(s);
            } else {
                rest.push(s);
            }
        }
        if (w.end - 1).saturating_add(self.lateness) <= self.wm {
            // Late: the session state stays as it was.
            rest.extend(merged);
            rest.sort_by_key(|s| s.start);
            if !rest.is_empty() {
                self.table.put(&k, (), rest)?;
            }
            self.output.late(r);
            return Ok(false);
        }
        merged.sort_by_key(|s| s.start);
        let mut acc = self.agg.create();
        for s in &merged {
            self.agg.merge(&mut acc, &s.acc);
        }
        self.agg.add(&mut acc, &r.value);
        let s = Open { start: w.start, end: w.end, acc };
        let t = w.max_timestamp();
        if t <= self.wm {
            // Within allowed lateness: fire at once (EventTimeTrigger).
            self.emit(&k, &s);
        } else {
            self.fire.push(t, k.clone())?;
        }
        if self.lateness > 0 {
            self.cleanup.push(t.saturating_add(self.lateness), k.clone())?;
        }
        rest.push(s);
        rest.sort_by_key(|s| s.start);
        self.table.put(&k, (), rest)?;
        Ok(true)
    }
}

impl<T: Send + 'static, K: Key, KF: Fn(&T) -> K + Send, A: Aggregate<T>> Consumer<T> for SessionWindowOp<T, K, KF, A> {
    fn batch(&mut self, recs: Vec<Record<T>>) -> Result<()> {
        let mut late = 0;
        for r in recs {
            if r.wm > self.wm {
                self.advance(r.wm)?;
            }
            if !self.add(r)? {
                late += 1;
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
