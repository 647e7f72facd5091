//! Session windows: per key, windows that merge when elements come closer
//! than the gap (Flink's `MergingWindowAssigner` semantics).

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
use crate::window::session::intersects;
use crate::window::{Session, Window, Windowed};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One open session of a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Open<Acc> {
    start: i64,
    end: i64,
    acc: Acc,
}

pub(crate) struct SessionWindowOp<T, K: Key, KF, A: Aggregate<T>> {
    key: KF,
    agg: A,
    session: Session,
    lateness: i64,
    table: Table<K, (), Vec<Open<A::Acc>>>,
    fire: BTreeMap<i64, Vec<K>>,
    cleanup: BTreeMap<i64, Vec<K>>,
    wm: i64,
    output: WindowOutput<T, Windowed<K, A::Out>>,
    metrics: Arc<Metrics>,
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
            fire: BTreeMap::new(),
            cleanup: BTreeMap::new(),
            wm: i64::MIN,
            output: WindowOutput::new(down, late),
            metrics: ctx.metrics.clone(),
        };
        if ctx.restored {
            let mut timers = Vec::new();
            me.table.restore(groups, |k, (), sessions| {
                for s in sessions {
                    timers.push((k.clone(), s.end - 1));
                }
            })?;
            for (k, t) in timers {
                me.fire.entry(t).or_default().push(k.clone());
                if me.lateness > 0 {
                    me.cleanup.entry(t.saturating_add(me.lateness)).or_default().push(k);
                }
            }
        }
        Ok(me)
    }

    fn emit(&mut self, k: &K, s: &Open<A::Acc>) {
        let w = Window { start: s.start, end: s.end };
        self.output.out.push(Record {
            ts: w.max_timestamp(),
            wm: self.wm,
            value: Windowed { key: k.clone(), window: w, value: self.agg.result(&s.acc) },
        });
    }

    fn advance(&mut self, wm: i64) -> Result<()> {
        self.wm = wm;
        while let Some(e) = self.fire.first_entry() {
            let t = *e.key();
            if t > wm {
                break;
            }
            for k in e.remove() {
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
        }
        while let Some(e) = self.cleanup.first_entry() {
            if *e.key() > wm {
                break;
            }
            let lateness = self.lateness;
            for k in e.remove() {
                self.drop_sessions(&k, |s| (s.end - 1).saturating_add(lateness) <= wm)?;
            }
        }
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
        self.output.flush()
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
            self.fire.entry(t).or_default().push(k.clone());
        }
        if self.lateness > 0 {
            self.cleanup.entry(t.saturating_add(self.lateness)).or_default().push(k.clone());
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
