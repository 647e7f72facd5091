//! Keyed process functions (Flink's `KeyedProcessFunction`): user code
//! called per record and per timer, with keyed state and timers.
//!
//! The runtime calls [`KeyedProcessFunction::open`] once per parallel
//! instance to declare states, then `process` for every record (late ones
//! included: lateness is the function's business) and `on_timer` for every
//! timer that fires. Event-time timers fire when the operator's watermark
//! reaches them (`timestamp <= watermark`), in timestamp order, before the
//! record that moved the watermark; the final watermark of a bounded input
//! fires them all. Processing-time timers fire by the wall clock, between
//! batches or, with no input, when their deadline passes; those still
//! pending when a bounded input ends do not fire (as in Flink).

use super::timers::{TimeDomain, Timers};
use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::key::Key;
use crate::record::Record;
use crate::state::{Scope, Slot, StateContext, StateRegistry, TableSite};
use crate::task::{Consumer, TaskCtx};
use crate::time::now_ms;
use std::time::{Duration, Instant};

/// A function over a keyed stream with per-key state and timers.
///
/// It is cloned once per parallel instance before `open`.
///
/// ```
/// use rivulet::state::{StateRegistry, ValueState};
/// use rivulet::{source::Generator, Env, JobConfig, KeyedProcessFunction, ProcessContext, Result, Sink, TimeDomain, Watermarks};
/// use std::time::Duration;
///
/// /// Counts readings per sensor; says so when a sensor falls silent for 10 s.
/// #[derive(Clone, Default)]
/// struct Silence {
///     last: Option<ValueState<i64>>,
/// }
///
/// impl KeyedProcessFunction<u32, (u32, i64)> for Silence {
///     type Out = String;
///     fn open(&mut self, states: &mut StateRegistry<u32>) -> Result<()> {
///         self.last = Some(states.value(None)?);
///         Ok(())
///     }
///     fn process(&mut self, r: (u32, i64), ctx: &mut ProcessContext<'_, u32, String>) -> Result<()> {
///         let Some(last) = self.last else { return Ok(()) };
///         last.update(ctx, r.1)?;
///         ctx.timers().register_event_time(r.1 + 10_000)
///     }
///     fn on_timer(&mut self, ts: i64, _: TimeDomain, ctx: &mut ProcessContext<'_, u32, String>) -> Result<()> {
///         let Some(last) = self.last else { return Ok(()) };
///         if last.value(ctx)? == Some(ts - 10_000) {
///             ctx.emit(format!("sensor {} silent since {}", ctx.key(), ts - 10_000));
///         }
///         Ok(())
///     }
/// }
///
/// # fn main() -> Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let out = dir.path().join("silent.txt");
/// let env = Env::new(JobConfig::new("silence"))?;
/// // Sensor 1 reports every second for a minute, sensor 2 only at the start.
/// let readings = Generator::new(Some(62), |i| if i < 2 { (2, 0) } else { (1, (i as i64 - 2) * 1_000) });
/// env.source(readings, Watermarks::bounded_out_of_orderness(Duration::ZERO, |r: &(u32, i64)| r.1))
///     .key_by(|r: &(u32, i64)| r.0)
///     .process(Silence::default())
///     .sink(Sink::file(&out, |s: &String, buf: &mut Vec<u8>| buf.extend_from_slice(format!("{s}\n").as_bytes())));
/// env.execute()?;
/// // Sensor 2 falls silent at 0; sensor 1 at the end of its input.
/// assert_eq!(std::fs::read_to_string(&out).unwrap(), "sensor 2 silent since 0\nsensor 1 silent since 59000\n");
/// # Ok(()) }
/// ```
pub trait KeyedProcessFunction<K: Key, T>: Clone + Send + 'static {
    /// What it emits.
    type Out: Send + 'static;

    /// Declares the keyed states (in a stable order: the order names them
    /// in checkpoints). Called once per instance before any record.
    ///
    /// # Errors
    /// Declaring more states than fit; any error of the function's own.
    fn open(&mut self, states: &mut StateRegistry<K>) -> Result<()> {
        let _ = states;
        Ok(())
    }

    /// Handles one record of the current key (`ctx.key()`).
    ///
    /// # Errors
    /// A state error, or the function's own; it fails the job.
    fn process(&mut self, value: T, ctx: &mut ProcessContext<'_, K, Self::Out>) -> Result<()>;

    /// A timer of the current key fired at `timestamp`.
    ///
    /// # Errors
    /// As for `process`.
    fn on_timer(
        &mut self,
        timestamp: i64,
        domain: TimeDomain,
        ctx: &mut ProcessContext<'_, K, Self::Out>,
    ) -> Result<()> {
        let _ = (timestamp, domain, ctx);
        Ok(())
    }
}

/// What a process function sees of the runtime for one call: the current
/// key, time, output, timers and (through the state handles) keyed state.
pub struct ProcessContext<'a, K: Key, O> {
    key: &'a K,
    ts: i64,
    wm: i64,
    now: i64,
    out: &'a mut Vec<Record<O>>,
    timers: &'a mut Timers<K>,
    slots: &'a mut [Box<dyn Slot<K>>],
}

impl<K: Key, O> ProcessContext<'_, K, O> {
    /// The key of the record or timer being handled.
    pub fn key(&self) -> &K {
        self.key
    }

    /// The record's event timestamp, or the timestamp of the firing timer.
    pub fn timestamp(&self) -> i64 {
        self.ts
    }

    /// The operator's event-time watermark.
    pub fn current_watermark(&self) -> i64 {
        self.wm
    }

    /// Processing time (ms since the Unix epoch), read once per batch.
    pub fn current_processing_time(&self) -> i64 {
        self.now
    }

    /// Emits `value` with the current timestamp ([`Self::timestamp`]).
    #[inline]
    pub fn emit(&mut self, value: O) {
        self.emit_at(value, self.ts);
    }

    /// Emits `value` with event timestamp `ts`.
    #[inline]
    pub fn emit_at(&mut self, value: O, ts: i64) {
        self.out.push(Record { ts, wm: self.wm, value });
    }

    /// The current key's timers.
    pub fn timers(&mut self) -> TimerService<'_, K> {
        TimerService { key: self.key, wm: self.wm, now: self.now, timers: self.timers }
    }
}

impl<K: Key, O> StateContext<K> for ProcessContext<'_, K, O> {
    fn scope(&mut self) -> Scope<'_, K> {
        Scope { key: self.key, now: self.now, slots: self.slots }
    }
}

/// Registers and deletes the current key's timers. A timer is identified
/// by (key, timestamp, domain): registering it again does nothing.
pub struct TimerService<'a, K: Key> {
    key: &'a K,
    wm: i64,
    now: i64,
    timers: &'a mut Timers<K>,
}

impl<K: Key> TimerService<'_, K> {
    /// Fires `on_timer` once the watermark reaches `ts`. A timer at or
    /// before the current watermark fires at the next watermark advance.
    ///
    /// # Errors
    /// A state store error.
    pub fn register_event_time(&mut self, ts: i64) -> Result<()> {
        self.timers.register(self.key, ts, TimeDomain::EventTime)
    }

    /// Fires `on_timer` once the wall clock reaches `ts` (ms since the Unix
    /// epoch).
    ///
    /// # Errors
    /// A state store error.
    pub fn register_processing_time(&mut self, ts: i64) -> Result<()> {
        self.timers.register(self.key, ts, TimeDomain::ProcessingTime)
    }

    /// Deletes an event-time timer (nothing happens if there is none).
    ///
    /// # Errors
    /// A state store error.
    pub fn delete_event_time(&mut self, ts: i64) -> Result<()> {
        self.timers.delete(self.key, ts, TimeDomain::EventTime)
    }

    /// Deletes a processing-time timer (nothing happens if there is none).
    ///
    /// # Errors
    /// A state store error.
    pub fn delete_processing_time(&mut self, ts: i64) -> Result<()> {
        self.timers.delete(self.key, ts, TimeDomain::ProcessingTime)
    }

    /// The operator's event-time watermark.
    pub fn current_watermark(&self) -> i64 {
        self.wm
    }

    /// Processing time (ms since the Unix epoch), read once per batch.
    pub fn current_processing_time(&self) -> i64 {
        self.now
    }
}

/// The operator that runs a process function in one parallel instance.
pub(crate) struct ProcessOp<T, K: Key, KF, F: KeyedProcessFunction<K, T>> {
    key: KF,
    f: F,
    slots: Vec<Box<dyn Slot<K>>>,
    timers: Timers<K>,
    wm: i64,
    now: i64,
    out: Vec<Record<F::Out>>,
    down: Box<dyn Consumer<F::Out>>,
    task: std::sync::Arc<crate::metrics::TaskMetrics>,
    _t: std::marker::PhantomData<fn(T)>,
}

impl<T: Send + 'static, K: Key, KF: Fn(&T) -> K + Send, F: KeyedProcessFunction<K, T>> ProcessOp<T, K, KF, F> {
    /// Opens `f`, builds its states as tables of `op` (sharing the task's
    /// cache budget) and, after a restart, reloads the timers of `groups`.
    pub(crate) fn new(
        ctx: &TaskCtx,
        op: u16,
        groups: std::ops::Range<u16>,
        key: KF,
        mut f: F,
        down: Box<dyn Consumer<F::Out>>,
    ) -> Result<Self> {
        let mut registry = StateRegistry::new();
        f.open(&mut registry)?;
        let site = TableSite {
            op,
            key_groups: ctx.key_groups,
            owned: groups.clone(),
            budget: ctx.cache_bytes / usize::from(registry.tables()),
            backing: ctx.backing(),
            next_epoch: ctx.next_epoch,
        };
        let timer_site = ctx.store.as_ref().map(|s| (s, op, groups.start));
        let mut timers = Timers::new(site.table(0)?, timer_site, ctx.cache_bytes / 8);
        let slots = registry.build(&site)?;
        if ctx.restored {
            timers.restore(groups)?;
        }
        Ok(Self {
            key,
            f,
            slots,
            timers,
            wm: i64::MIN,
            now: now_ms(),
            out: Vec::new(),
            down,
            task: ctx.task_metrics.clone(),
            _t: std::marker::PhantomData,
        })
    }

    /// Moves event time to `wm`, firing the event-time timers it passes.
    fn advance(&mut self, wm: i64) -> Result<()> {
        self.wm = wm;
        while let Some((ts, k)) = self.timers.pop(TimeDomain::EventTime, wm)? {
            let mut ctx = ProcessContext {
                key: &k,
                ts,
                wm,
                now: self.now,
                out: &mut self.out,
                timers: &mut self.timers,
                slots: &mut self.slots,
            };
            self.f.on_timer(ts, TimeDomain::EventTime, &mut ctx)?;
        }
        Ok(())
    }

    /// Reads the clock and fires the processing-time timers due.
    fn tick(&mut self) -> Result<()> {
        self.now = now_ms();
        while let Some((ts, k)) = self.timers.pop(TimeDomain::ProcessingTime, self.now)? {
            let mut ctx = ProcessContext {
                key: &k,
                ts,
                wm: self.wm,
                now: self.now,
                out: &mut self.out,
                timers: &mut self.timers,
                slots: &mut self.slots,
            };
            self.f.on_timer(ts, TimeDomain::ProcessingTime, &mut ctx)?;
        }
        Ok(())
    }

    /// Lets every TTL state clean a few expired values.
    fn sweep(&mut self) -> Result<()> {
        for s in &mut self.slots {
            s.sweep(self.now)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.task.records_out.fetch_add(self.out.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.down.batch(std::mem::take(&mut self.out))
    }
}

impl<T: Send + 'static, K: Key, KF: Fn(&T) -> K + Send, F: KeyedProcessFunction<K, T>> Consumer<T>
    for ProcessOp<T, K, KF, F>
{
    fn batch(&mut self, recs: Vec<Record<T>>) -> Result<()> {
        self.tick()?;
        for r in recs {
            if r.wm > self.wm {
                self.advance(r.wm)?;
            }
            let k = (self.key)(&r.value);
            let mut ctx = ProcessContext {
                key: &k,
                ts: r.ts,
                wm: self.wm,
                now: self.now,
                out: &mut self.out,
                timers: &mut self.timers,
                slots: &mut self.slots,
            };
            self.f.process(r.value, &mut ctx)?;
        }
        self.sweep()?;
        self.flush()
    }

    fn watermark(&mut self, wm: i64) -> Result<()> {
        self.tick()?;
        if wm > self.wm {
            self.advance(wm)?;
        }
        self.flush()?;
        self.down.watermark(wm)
    }

    fn barrier(&mut self, cp: &mut Checkpoint, last: bool) -> Result<()> {
        if let Some(b) = cp.batch.as_mut() {
            self.timers.snapshot(cp.epoch, b)?;
            for s in &mut self.slots {
                s.snapshot(cp.epoch, b)?;
            }
        }
        self.down.barrier(cp, last)
    }

    fn end(&mut self) -> Result<()> {
        self.flush()?;
        self.down.end()
    }

    fn next_deadline(&self) -> Option<Instant> {
        let ts = self.timers.next_processing()?;
        let wait = u64::try_from(ts.saturating_sub(now_ms())).unwrap_or(0);
        // A timer beyond what `Instant` can hold is as good as never.
        Instant::now().checked_add(Duration::from_millis(wait))
    }

    fn on_time(&mut self) -> Result<()> {
        self.tick()?;
        self.sweep()?;
        self.flush()
    }
}
