//! Keyed streams and windows.

use super::Up;
use super::{DataStream, Plan};
use crate::aggregate::Aggregate;
use crate::checkpoint::TaskId;
use crate::error::Result;
use crate::key::{group_range, Key};
use crate::operator::{KeyedProcessFunction, Lateness, ProcessOp, TimeWindowOp};
use crate::record::Message;
use crate::sink::Sink;
use crate::task::{Consumer, Partition, TaskCtx, Unplaced};
use crate::window::{Assigner, Windowed};
use crossbeam_channel::Receiver;
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;

/// A stream partitioned by key.
pub struct KeyedStream<T, K, KF> {
    stream: DataStream<T>,
    key: KF,
    parallelism: Option<usize>,
    _k: std::marker::PhantomData<fn() -> K>,
}

impl<T, K, KF> KeyedStream<T, K, KF>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    K: Key,
    KF: Fn(&T) -> K + Clone + Send + 'static,
{
    pub(crate) fn new(stream: DataStream<T>, key: KF) -> Self {
        Self { stream, key, parallelism: None, _k: std::marker::PhantomData }
    }

    /// Instances of the keyed operator (default: the job's parallelism).
    pub fn parallelism(mut self, n: usize) -> Self {
        self.parallelism = Some(n.max(1));
        self
    }

    /// Groups each key's records into windows.
    pub fn window(self, assigner: impl Into<Assigner>) -> WindowedStream<T, K, KF> {
        WindowedStream { keyed: self, assigner: assigner.into(), lateness: Lateness::default(), late: None }
    }

    /// Runs `f` on every record and timer of each key, with keyed state and
    /// timers (see [`KeyedProcessFunction`]). Its state tables take the ids
    /// [`crate::state::state_table_id`] derives from the operator id.
    pub fn process<F: KeyedProcessFunction<K, T>>(self, f: F) -> DataStream<F::Out> {
        let op = self.stream.env.next_op();
        let key = self.key.clone();
        self.stage("process", move |_plan, ctx, _i, groups, down, local| {
            if !local {
                return Ok(Box::new(Unplaced));
            }
            let head: Box<dyn Consumer<T>> = Box::new(ProcessOp::new(ctx, op, groups, key.clone(), f.clone(), down)?);
            Ok(head)
        })
    }

    /// Wires the exchange into this keyed stage and builds one head per
    /// instance with `make(plan, instance, key-group range, downstream,
    /// local)`; for an instance placed on another node (`local` false)
    /// `make` only wires what the instance's edges need.
    pub(crate) fn stage<O: Send + 'static>(
        self,
        name: &'static str,
        make: impl Fn(
                &mut Plan,
                &TaskCtx,
                usize,
                std::ops::Range<u16>,
                Box<dyn Consumer<O>>,
                bool,
            ) -> Result<Box<dyn Consumer<T>>>
            + 'static,
    ) -> DataStream<O> {
        let env = self.stream.env.clone();
        let p = self.parallelism.unwrap_or_else(|| env.config().parallelism);
        let op = env.next_op();
        let prev = self.stream.build;
        let key = self.key;
        DataStream {
            env,
            parallelism: p,
            build: Box::new(move |plan, down| {
                let groups = plan.config.key_groups;
                let mut rxs: Vec<Vec<Receiver<Message<T>>>> = (0..p).map(|_| Vec::new()).collect();
                prev(plan, &mut |plan, up| {
                    let mut txs = Vec::with_capacity(p);
                    for (i, r) in rxs.iter_mut().enumerate() {
                        let (tx, rx) = plan.edge::<T>(up.task, TaskId::new(op, i))?;
                        txs.push(tx);
                        r.extend(rx);
                    }
                    let task = format!("{name}-{op} (from upstream {})", up.index);
                    Ok(Box::new(Partition::new(key.clone(), txs, groups, task, plan.blocked(up.task))))
                })?;
                for (i, inputs) in rxs.into_iter().enumerate() {
                    let task = TaskId::new(op, i);
                    let local = plan.is_local(task);
                    let d = down(plan, Up { index: i, task })?;
                    let tname = format!("{name}-{op}-{i}");
                    let ctx = plan.ctx(tname.clone(), task);
                    let head = make(plan, &ctx, i, group_range(i, groups, p), d, local)?;
                    plan.spawn(task, tname, false, move || crate::task::run_input_task(ctx, inputs, head));
                }
                Ok(())
            }),
        }
    }
}

/// A keyed stream cut into windows.
pub struct WindowedStream<T, K, KF> {
    keyed: KeyedStream<T, K, KF>,
    assigner: Assigner,
    lateness: Lateness,
    late: Option<Sink<T>>,
}

impl<T, K, KF> WindowedStream<T, K, KF>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    K: Key,
    KF: Fn(&T) -> K + Clone + Send + 'static,
{
    /// Keeps windows open `lateness` after they fired; each late element
    /// within it fires the window again with the element included.
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.lateness.allowed = lateness.as_millis() as i64;
        self
    }

    /// Sends elements too late for any window to `sink` instead of only
    /// counting them (Flink's late-data side output).
    pub fn late_output(mut self, sink: Sink<T>) -> Self {
        self.late = Some(sink);
        self
    }

    /// Aggregates each key's window incrementally with `agg`.
    pub fn aggregate<A: Aggregate<T>>(self, agg: A) -> DataStream<Windowed<K, A::Out>> {
        let Self { keyed, assigner, lateness, late } = self;
        let env = keyed.stream.env.clone();
        let late_id = late.as_ref().map(|_| env.next_op());
        let key = keyed.key.clone();
        let p = keyed.parallelism.unwrap_or_else(|| env.config().parallelism);
        let late = std::cell::RefCell::new((late, Vec::<Option<Box<dyn Consumer<T>>>>::new()));
        let op = env.next_op();
        keyed.stage("window", move |plan, ctx, i, groups, down, local| {
            let mut l = late.borrow_mut();
            if let (Some(sink), Some(id)) = (l.0.take(), late_id) {
                let late_task = TaskId::new(id, 0);
                let mut rxs = Vec::new();
                for j in 0..p {
                    let (tx, rx) = plan.edge::<T>(TaskId::new(op, j), late_task)?;
                    rxs.extend(rx);
                    l.1.push(Some(plan.forward(tx, TaskId::new(op, j), late_task)));
                }
                plan.spawn_sink(id, sink, p, rxs)?;
            }
            let late_i = l.1.get_mut(i).and_then(Option::take);
            if !local {
                return Ok(Box::new(Unplaced));
            }
            let head: Box<dyn Consumer<T>> = match assigner {
                Assigner::Time(panes) => Box::new(TimeWindowOp::new(
                    ctx,
                    op,
                    groups,
                    key.clone(),
                    agg.clone(),
                    panes,
                    lateness,
                    down,
                    late_i,
                )?),
                Assigner::Session(s) => Box::new(crate::operator::SessionWindowOp::new(
                    ctx,
                    op,
                    groups,
                    key.clone(),
                    agg.clone(),
                    s,
                    lateness,
                    down,
                    late_i,
                )?),
                Assigner::Count(n) => {
                    Box::new(crate::operator::CountWindowOp::new(ctx, op, groups, key.clone(), agg.clone(), n, down)?)
                }
            };
            Ok(head)
        })
    }
}
