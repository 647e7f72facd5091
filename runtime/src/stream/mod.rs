//! The DataStream API: build a job, then run it.
//!
//! `source → map / filter / flat_map → key_by → window(..).aggregate(..)
//! → sink`. Stateless operators fuse into the task before them; a key-by
//! starts a new set of parallel tasks, each owning a contiguous range of key
//! groups.

mod env;
mod keyed;

pub(crate) use env::{open_state, open_state_then, start_tasks, Built};
pub use env::{Env, JobConfig, JobOutcome, OutputMode};
pub use keyed::{KeyedStream, WindowedStream};

use crate::checkpoint::TaskId;
use crate::error::Result;
use crate::sink::Sink;
use crate::task::{Consumer, FilterC, FlatMapC, MapC};
use env::Plan;
use serde::{de::DeserializeOwned, Serialize};

/// The upstream end of an edge being built: which of the stream's
/// instances it is, and the task that runs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Up {
    pub(crate) index: usize,
    pub(crate) task: TaskId,
}

type Factory<'a, T> = &'a mut dyn FnMut(&mut Plan, Up) -> Result<Box<dyn Consumer<T>>>;
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
                b(plan, &mut |plan, up| down(plan, Up { index: pa + up.index, task: up.task }))
            }),
        }
    }

    /// Partitions the stream by key for keyed state and windows. Records
    /// cross the key-by to other nodes in a cluster, so they serialise.
    pub fn key_by<K, KF>(self, key: KF) -> KeyedStream<T, K, KF>
    where
        T: Serialize + DeserializeOwned,
        K: crate::key::Key,
        KF: Fn(&T) -> K + Clone + Send + 'static,
    {
        KeyedStream::new(self, key)
    }

    /// Writes the stream to `sink`, exactly once when the job checkpoints.
    /// In a cluster records reach the sink's node over the network, so
    /// they serialise.
    pub fn sink(self, sink: Sink<T>)
    where
        T: Serialize + DeserializeOwned,
    {
        let env = self.env.clone();
        let id = env.next_op();
        let build = self.build;
        env.add_terminal(Box::new(move |plan: &mut Plan| {
            let sink_task = TaskId::new(id, 0);
            let mut rxs = Vec::new();
            let mut count = 0;
            build(plan, &mut |plan, up| {
                count += 1;
                let (tx, rx) = plan.edge::<T>(up.task, sink_task)?;
                rxs.extend(rx);
                Ok(plan.forward(tx, up.task, sink_task))
            })?;
            plan.spawn_sink(id, sink, count, rxs)
        }));
    }
}
