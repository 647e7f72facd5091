//! The DataStream API: build a job, then run it.
//!
//! `source → map / filter / flat_map → key_by → window(..).aggregate(..)
//! → sink`. Stateless operators fuse into the task before them; a key-by
//! starts a new set of parallel tasks, each owning a contiguous range of key
//! groups.

mod env;
mod keyed;

pub use env::{Env, JobConfig, JobOutcome, OutputMode};
pub use keyed::{KeyedStream, WindowedStream};

use crate::error::Result;
use crate::sink::Sink;
use crate::task::{Consumer, FilterC, FlatMapC, MapC};
use env::Plan;

type Factory<'a, T> = &'a mut dyn FnMut(&mut Plan, usize) -> Result<Box<dyn Consumer<T>>>;
type Builder<T> = Box<dyn FnOnce(&mut Plan, Factory<'_, T>) -> Result<()>>;

/// A stream of `T` under construction.
pub struct DataStream<T> {
    env: Env,
    /// How many task instances produce this stream.
    parallelism: usize,
    build: Builder<T>,
}

impl<T: Send + 'static> DataStream<T> {
    fn then<U: Send + 'static>(
        self,
        mut wrap: impl FnMut(Box<dyn Consumer<U>>) -> Box<dyn Consumer<T>> + 'static,
    ) -> DataStream<U> {
        let prev = self.build;
        DataStream {
            env: self.env,
            parallelism: self.parallelism,
            build: Box::new(move |plan, down| prev(plan, &mut |plan, i| Ok(wrap(down(plan, i)?)))),
        }
    }

    /// Transforms every record.
    pub fn map<U: Send + 'static>(self, f: impl FnMut(T) -> U + Clone + Send + 'static) -> DataStream<U> {
        self.then(move |down| Box::new(MapC { f: f.clone(), down }))
    }

    /// Keeps the records for which `f` is true.
    pub fn filter(self, f: impl FnMut(&T) -> bool + Clone + Send + 'static) -> DataStream<T> {
        self.then(move |down| Box::new(FilterC { f: f.clone(), down }))
    }

    /// Replaces every record by zero or more records.
    pub fn flat_map<U: Send + 'static, I: IntoIterator<Item = U> + 'static>(
        self,
        f: impl FnMut(T) -> I + Clone + Send + 'static,
    ) -> DataStream<U> {
        self.then(move |down| Box::new(FlatMapC { f: f.clone(), down }))
    }

    /// Merges two streams of the same type.
    pub fn union(self, other: DataStream<T>) -> DataStream<T> {
        let (a, b) = (self.build, other.build);
        let pa = self.parallelism;
        DataStream {
            env: self.env,
            parallelism: pa + other.parallelism,
            build: Box::new(move |plan, down| {
                a(plan, &mut *down)?;
                b(plan, &mut |plan, i| down(plan, pa + i))
            }),
        }
    }

    /// Partitions the stream by key for keyed state and windows.
    pub fn key_by<K, KF>(self, key: KF) -> KeyedStream<T, K, KF>
    where
        K: crate::key::Key,
        KF: Fn(&T) -> K + Clone + Send + 'static,
    {
        KeyedStream::new(self, key)
    }

    /// Writes the stream to `sink`, exactly once when the job checkpoints.
    pub fn sink(self, sink: Sink<T>) {
        let env = self.env.clone();
        let id = env.next_op();
        let (build, parallelism) = (self.build, self.parallelism);
        env.add_terminal(Box::new(move |plan: &mut Plan| {
            let mut inputs: Vec<_> = plan.spawn_sink(id, sink, parallelism)?.into_iter().map(Some).collect();
            build(plan, &mut |_, i| {
                inputs
                    .get_mut(i)
                    .and_then(Option::take)
                    .ok_or_else(|| crate::error::Error::config("sink", "stream instance count mismatch"))
            })
        }));
    }
}
