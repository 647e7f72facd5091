//! The consumer chain: stateless operators fused into their task.

use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::record::Record;

/// Receives a stream inside a task. Operators implement it and pass results
/// on to the next consumer.
pub trait Consumer<T>: Send {
    /// A batch of records.
    ///
    /// # Errors
    /// State or output errors; they fail the task.
    fn batch(&mut self, recs: Vec<Record<T>>) -> Result<()>;
    /// The task's watermark advanced.
    ///
    /// # Errors
    /// As for `batch`.
    fn watermark(&mut self, wm: i64) -> Result<()>;
    /// A checkpoint barrier: add this operator's delta to `cp`, then pass
    /// the barrier on.
    ///
    /// # Errors
    /// As for `batch`.
    fn barrier(&mut self, cp: &mut Checkpoint, last: bool) -> Result<()>;
    /// End of stream.
    ///
    /// # Errors
    /// As for `batch`.
    fn end(&mut self) -> Result<()>;
    /// When the operator next needs [`Consumer::on_time`] even if no input
    /// arrives (its earliest processing-time timer). Asked by an input
    /// task's head before it waits; `None`: wait for input only.
    fn next_deadline(&self) -> Option<std::time::Instant> {
        None
    }
    /// The deadline from [`Consumer::next_deadline`] passed with no input.
    ///
    /// # Errors
    /// As for `batch`.
    fn on_time(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The head of a task placed on another node: never fed here.
pub(crate) struct Unplaced;

impl<T> Consumer<T> for Unplaced {
    fn batch(&mut self, _: Vec<Record<T>>) -> Result<()> {
        Err(unplaced())
    }
    fn watermark(&mut self, _: i64) -> Result<()> {
        Err(unplaced())
    }
    fn barrier(&mut self, _: &mut Checkpoint, _: bool) -> Result<()> {
        Err(unplaced())
    }
    fn end(&mut self) -> Result<()> {
        Err(unplaced())
    }
}

fn unplaced() -> crate::error::Error {
    crate::error::Error::Task { task: "unplaced".into(), reason: "a task placed on another node was fed here".into() }
}

macro_rules! pass_control {
    () => {
        fn watermark(&mut self, wm: i64) -> Result<()> {
            self.down.watermark(wm)
        }
        fn barrier(&mut self, cp: &mut Checkpoint, last: bool) -> Result<()> {
            self.down.barrier(cp, last)
        }
        fn end(&mut self) -> Result<()> {
            self.down.end()
        }
    };
}

pub(crate) struct MapC<F, U> {
    pub(crate) f: F,
    pub(crate) down: Box<dyn Consumer<U>>,
}

impl<T, U, F: FnMut(T) -> U + Send> Consumer<T> for MapC<F, U> {
    #[inline]
    fn batch(&mut self, recs: Vec<Record<T>>) -> Result<()> {
        let f = &mut self.f;
        let out = recs.into_iter().map(|r| Record { ts: r.ts, wm: r.wm, value: f(r.value) }).collect();
        self.down.batch(out)
    }
    pass_control!();
}

pub(crate) struct FilterC<F, T> {
    pub(crate) f: F,
    pub(crate) down: Box<dyn Consumer<T>>,
}

impl<T, F: FnMut(&T) -> bool + Send> Consumer<T> for FilterC<F, T> {
    #[inline]
    fn batch(&mut self, mut recs: Vec<Record<T>>) -> Result<()> {
        let f = &mut self.f;
        recs.retain(|r| f(&r.value));
        if recs.is_empty() {
            return Ok(());
        }
        self.down.batch(recs)
    }
    pass_control!();
}

pub(crate) struct FlatMapC<F, U> {
    pub(crate) f: F,
    pub(crate) down: Box<dyn Consumer<U>>,
}

impl<T, U, I: IntoIterator<Item = U>, F: FnMut(T) -> I + Send> Consumer<T> for FlatMapC<F, U> {
    fn batch(&mut self, recs: Vec<Record<T>>) -> Result<()> {
        let mut out = Vec::with_capacity(recs.len());
        for r in recs {
            let (ts, wm) = (r.ts, r.wm);
            out.extend((self.f)(r.value).into_iter().map(|value| Record { ts, wm, value }));
        }
        self.down.batch(out)
    }
    pass_control!();
}
