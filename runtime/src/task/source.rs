//! The source task: reads batches, stamps event time and watermarks, runs
//! the fused chain, and injects barriers between batches.

use super::{Consumer, TaskCtx};
use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::record::Record;
use crate::source::{Poll, Source, SourceContext};
use crate::state::{codec, IngestLog};
use crate::time::watermark::WatermarkKind;
use crate::time::{now_ms, BoundedOutOfOrderness, Watermarks, MAX_WATERMARK};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What a source checkpoints: its reader's position and its watermark
/// generator, so a restored run makes the same lateness decisions.
#[derive(Serialize, Deserialize)]
struct SourceSnapshot {
    position: Vec<u8>,
    watermark: BoundedOutOfOrderness,
}

pub(crate) fn position_key(op: u16) -> Vec<u8> {
    let mut k = Vec::new();
    codec::key_prefix(codec::OPERATOR_GROUP, op, &mut k);
    k
}

/// Runs a source task to the end of its input (or until stopped).
pub(crate) fn run_source_task<S: Source>(
    ctx: TaskCtx,
    op: u16,
    mut source: S,
    wms: Watermarks<S::Item>,
    batch_size: usize,
    mut chain: Box<dyn Consumer<S::Item>>,
) -> Result<()> {
    let (lag, stamp) = match &wms.kind {
        WatermarkKind::EventTime { lag, timestamp } => (*lag, Some(timestamp.clone())),
        WatermarkKind::ProcessingTime => (0, None),
    };
    let mut gen = BoundedOutOfOrderness::with_lag(lag);
    let key = position_key(op);
    let ingest = match (&ctx.store, &ctx.mirror) {
        (Some(s), Some(m)) => Some(IngestLog::mirrored(s.clone(), op, m)?),
        (Some(s), None) => Some(IngestLog::new(s.clone(), op)),
        (None, _) => None,
    };
    source.open(&SourceContext {
        name: ctx.name.clone(),
        ingest,
        restored: ctx.restored,
        retain_checkpoints: ctx.store.as_ref().map_or(1, |s| s.retain_checkpoints()),
    })?;
    if ctx.restored {
        if let Some(store) = &ctx.store {
            if let Some(bytes) = store.state.get(&key).map_err(|e| store.err(e))? {
                let snap: SourceSnapshot = codec::decode_value(&bytes, "source position")?;
                source.restore(&snap.position)?;
                gen = snap.watermark;
            }
        }
    }
    let metrics = ctx.metrics.clone();
    let mut bad_seen = 0u64;
    let mut injected = ctx.next_epoch.saturating_sub(1);
    // Each batch goes downstream in a vector of its own, sized like the
    // batch before it (a full file batch: exactly).
    let mut recs: Vec<Record<S::Item>> = Vec::with_capacity(batch_size);
    let mut last_wm = i64::MIN;
    let mut last_data = Instant::now();
    let mut idle = false;
    // Positions of epochs injected but not yet known complete.
    let mut staged: std::collections::VecDeque<(u64, Vec<u8>)> = std::collections::VecDeque::new();
    if let Some(c) = &ctx.coord {
        c.register_source_thread();
    }
    loop {
        if let Some(c) = &ctx.coord {
            if c.stop.load(Ordering::Acquire) {
                break;
            }
            let t = c.trigger.load(Ordering::Acquire);
            if t > injected {
                injected = t;
                let pos = barrier(&ctx, &key, &mut source, &gen, t, false, &mut *chain)?;
                if ctx.store.is_some() {
                    staged.push_back((t, pos));
                }
            }
            let done = c.completed.load(Ordering::Acquire);
            let mut newest = None;
            while staged.front().is_some_and(|(e, _)| *e <= done) {
                newest = staged.pop_front();
            }
            if let Some((e, pos)) = newest {
                source.on_epoch_complete(e, &pos, c.pinned())?;
            }
        }
        let poll = source.poll_records(&mut recs, batch_size)?;
        if !recs.is_empty() {
            last_data = Instant::now();
            idle = false;
            // Stamped where the source wrote them.
            for r in &mut recs {
                let ts = match &stamp {
                    Some(f) => f(&r.value),
                    None => now_ms(),
                };
                r.wm = if stamp.is_some() { gen.current() } else { ts - 1 };
                r.ts = ts;
                gen.on_event(ts);
            }
            let n = recs.len();
            metrics.records_in.fetch_add(n as u64, Ordering::Relaxed);
            ctx.task_metrics.records_in.fetch_add(n as u64, Ordering::Relaxed);
            ctx.task_metrics.records_out.fetch_add(n as u64, Ordering::Relaxed);
            chain.batch(std::mem::replace(&mut recs, Vec::with_capacity(n)))?;
        }
        let wm = if stamp.is_some() { gen.current() } else { now_ms() - 1 };
        if wm > last_wm {
            last_wm = wm;
            ctx.task_metrics.watermark.store(wm, Ordering::Relaxed);
            chain.watermark(wm)?;
        }
        if let Some(h) = source.health() {
            ctx.task_metrics.set_health(h);
        }
        match poll {
            Poll::Ready => {}
            Poll::Pending => {
                if let Some(t) = wms.idle_timeout {
                    if !idle && last_data.elapsed() >= t {
                        idle = true;
                        // An idle input no longer holds operators back.
                        chain.watermark(crate::time::IDLE_MARK)?;
                    }
                }
                // A trigger unparks us: the barrier goes out at once.
                std::thread::park_timeout(Duration::from_millis(1));
            }
            Poll::End => break,
        }
        let bad = source.bad_records();
        if bad > bad_seen {
            metrics.bad_input.fetch_add(bad - bad_seen, Ordering::Relaxed);
            bad_seen = bad;
        }
    }
    let stopped = ctx.coord.as_ref().is_some_and(|c| c.stop.load(Ordering::Acquire));
    let bad = source.bad_records();
    metrics.bad_input.fetch_add(bad.saturating_sub(bad_seen), Ordering::Relaxed);
    if !stopped {
        chain.watermark(MAX_WATERMARK)?;
    }
    // Stopped or finished, the last barrier records where the input was
    // left. Stopped (e.g. Ctrl-C), no final watermark precedes it: windows
    // stay open in the checkpoint, and the next run resumes them.
    if let Some(c) = &ctx.coord {
        if ctx.store.is_some() {
            c.want_final(ctx.task, injected);
            let asked = Instant::now();
            let t = loop {
                let t = c.trigger.load(Ordering::Acquire);
                if t > injected {
                    break Some(t);
                }
                // A job stopped by an aborted epoch, or because a task
                // failed, or a worker's generation that ended (its
                // coordinator lost or replaced), has no coordinator left
                // to trigger the epoch.
                if c.aborted.load(Ordering::Acquire) > 0 || c.abandoned.load(Ordering::Acquire) {
                    break None;
                }
                if stopped && asked.elapsed() > Duration::from_secs(30) {
                    break None;
                }
                std::thread::sleep(Duration::from_micros(200));
            };
            if let Some(t) = t {
                barrier(&ctx, &key, &mut source, &gen, t, true, &mut *chain)?;
            }
        }
    }
    chain.end()
}

#[allow(clippy::too_many_arguments)]
fn barrier<S: Source>(
    ctx: &TaskCtx,
    key: &[u8],
    source: &mut S,
    gen: &BoundedOutOfOrderness,
    epoch: u64,
    last: bool,
    chain: &mut dyn Consumer<S::Item>,
) -> Result<Vec<u8>> {
    let mut cp = Checkpoint::new(epoch, ctx.store.as_ref());
    source.prepare_checkpoint()?;
    let position = source.position();
    if let (Some(store), Some(batch)) = (&ctx.store, cp.batch.as_mut()) {
        let snap = SourceSnapshot { position: position.clone(), watermark: *gen };
        let mut v = Vec::new();
        codec::encode_value(&snap, &mut v)?;
        batch.insert(&store.stage, codec::stage_key(epoch, key), codec::put_entry(&v));
    }
    chain.barrier(&mut cp, last)?;
    let staged = cp.commit()?;
    if let Some(c) = &ctx.coord {
        c.ack(ctx.task, epoch, staged, last);
    }
    Ok(position)
}
