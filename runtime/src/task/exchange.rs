//! The ends of a task that feed other tasks: bounded channels of batches.

use super::Consumer;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::key::{instance_for_group, key_group, Key};
use crate::record::{Message, Record};
use crossbeam_channel::{Sender, TrySendError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn closed(task: &str) -> Error {
    Error::Task { task: task.to_string(), reason: "downstream task stopped".into() }
}

/// Sends `m`; when the queue is full, waits for room and adds the time
/// waited to `blocked` (ns), the sending task's backpressure. A queue with
/// room costs what a plain send does: the clock is read only when full.
#[inline]
fn send<T>(tx: &Sender<Message<T>>, m: Message<T>, blocked: &AtomicU64, task: &str) -> Result<()> {
    match tx.try_send(m) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(m)) => {
            let since = Instant::now();
            let sent = tx.send(m).map_err(|_| closed(task));
            blocked.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
            sent
        }
        Err(TrySendError::Disconnected(_)) => Err(closed(task)),
    }
}

/// Sends everything to one downstream task.
pub(crate) struct Forward<T> {
    pub(crate) tx: Sender<Message<T>>,
    pub(crate) task: String,
    /// The sending task's backpressure counter.
    pub(crate) blocked: Arc<AtomicU64>,
}

impl<T: Send> Consumer<T> for Forward<T> {
    fn batch(&mut self, recs: Vec<Record<T>>) -> Result<()> {
        send(&self.tx, Message::Data(recs), &self.blocked, &self.task)
    }
    fn watermark(&mut self, wm: i64) -> Result<()> {
        send(&self.tx, Message::Watermark(wm), &self.blocked, &self.task)
    }
    fn barrier(&mut self, cp: &mut Checkpoint, last: bool) -> Result<()> {
        let epoch = cp.epoch;
        send(&self.tx, Message::Barrier { epoch, last }, &self.blocked, &self.task)
    }
    fn end(&mut self) -> Result<()> {
        send(&self.tx, Message::End, &self.blocked, &self.task)
    }
}

/// Routes each record to the instance owning its key group.
pub(crate) struct Partition<T, K, KF> {
    pub(crate) key: KF,
    pub(crate) tx: Vec<Sender<Message<T>>>,
    pub(crate) bufs: Vec<Vec<Record<T>>>,
    pub(crate) groups: u16,
    pub(crate) wm: i64,
    pub(crate) task: String,
    /// The sending task's backpressure counter.
    pub(crate) blocked: Arc<AtomicU64>,
    pub(crate) _k: std::marker::PhantomData<fn() -> K>,
}

impl<T, K, KF> Partition<T, K, KF> {
    pub(crate) fn new(
        key: KF,
        tx: Vec<Sender<Message<T>>>,
        groups: u16,
        task: String,
        blocked: Arc<AtomicU64>,
    ) -> Self {
        let n = tx.len();
        Self {
            key,
            tx,
            bufs: (0..n).map(|_| Vec::new()).collect(),
            groups,
            wm: i64::MIN,
            task,
            blocked,
            _k: std::marker::PhantomData,
        }
    }
}

impl<T: Send, K: Key, KF: Fn(&T) -> K + Send> Partition<T, K, KF> {
    fn broadcast(&self, m: impl Fn() -> Message<T>) -> Result<()> {
        for tx in &self.tx {
            send(tx, m(), &self.blocked, &self.task)?;
        }
        Ok(())
    }
}

impl<T: Send, K: Key, KF: Fn(&T) -> K + Send> Consumer<T> for Partition<T, K, KF> {
    #[inline]
    fn batch(&mut self, recs: Vec<Record<T>>) -> Result<()> {
        let n = self.tx.len();
        if n == 1 {
            send(&self.tx[0], Message::Data(recs), &self.blocked, &self.task)?;
        } else {
            let per = recs.len() / n + 16;
            for r in recs {
                let g = key_group(&(self.key)(&r.value), self.groups);
                let i = instance_for_group(g, self.groups, n);
                let b = &mut self.bufs[i];
                if b.capacity() == 0 {
                    b.reserve(per);
                }
                b.push(r);
            }
            for (b, tx) in self.bufs.iter_mut().zip(&self.tx) {
                if !b.is_empty() {
                    let batch = std::mem::replace(b, Vec::with_capacity(per));
                    send(tx, Message::Data(batch), &self.blocked, &self.task)?;
                }
            }
        }
        Ok(())
    }
    fn watermark(&mut self, wm: i64) -> Result<()> {
        if wm == crate::time::IDLE_MARK {
            return self.broadcast(|| Message::Watermark(wm));
        }
        if wm > self.wm {
            self.wm = wm;
            self.broadcast(|| Message::Watermark(wm))?;
        }
        Ok(())
    }
    fn barrier(&mut self, cp: &mut Checkpoint, last: bool) -> Result<()> {
        let epoch = cp.epoch;
        self.broadcast(|| Message::Barrier { epoch, last })
    }
    fn end(&mut self) -> Result<()> {
        self.broadcast(|| Message::End)
    }
}
