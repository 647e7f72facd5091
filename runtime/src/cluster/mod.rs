//! A job across several processes: one coordinator and N worker slots.
//!
//! Every process builds the same logical graph from the job's arguments
//! (the coordinator sends its own to the workers). Tasks are placed by
//! subtask index: subtask `i` of every vertex runs on the `i mod n`-th live
//! slot, so sources and sinks (one subtask each) run on the first, and the
//! key-group ranges of keyed operators spread over all. Edges between
//! tasks on different workers are bridged over the [`crate::net::Link`]
//! between the two (one per worker pair); the rest stay in-process.
//!
//! Checkpoints: the coordinator runs the checkpoint state machine over
//! every task of the job. A worker forwards its tasks' reports; once all of
//! its live tasks staged an epoch it uploads what they staged to the
//! checkpoint store (state entries as deltas, sink output as objects) and
//! only then forwards their acks. When every task acked, the coordinator
//! commits the epoch in the store (metadata, then `latest`), publishes the
//! sinks' output of it through the job's outputs, and tells the workers,
//! which apply the epoch locally and let sources release input.
//!
//! Failure: a worker lost (its control link ends: exit, dropped connection,
//! 10 s without a heartbeat), a failed task, or an aborted epoch ends the
//! generation. The coordinator tells the workers to stop, claims a new
//! generation in the store (fencing anything the old one might still
//! write) and deploys again once the slots are back, or after
//! `worker_timeout` on the slots that are: each worker restores its key
//! groups of the latest committed checkpoint from the store. A restarted
//! coordinator does the same from what the store holds.

mod control;
mod coordinator;
mod liveness;
mod view;
mod worker;

pub use coordinator::{run_coordinator, ClusterOutcome, CoordinatorOptions};
pub use liveness::{liveness_age, Liveness};
pub use view::{ClusterSnapshot, ClusterView, WorkerReport, WorkerView, REPORT_EVERY};
pub use worker::{request_savepoint, run_worker, WorkerOptions};

use crate::checkpoint::TaskId;
use crate::error::{Error, Result};
use crate::net::{EdgeId, Link};
use crate::record::Message;
use crate::sink::Output;
use crate::{Env, JobConfig};
use crossbeam_channel::{Receiver, Sender};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Builds the job in a process of the cluster: from the job's arguments,
/// calling [`EnvMaker::make`] with the job's config where a single process
/// would call [`Env::new`], then adding sources, operators and sinks.
pub type BuildJob<'a> = &'a dyn Fn(&[String], EnvMaker<'_>) -> std::result::Result<Env, String>;

/// Creates the job's [`Env`] for its place in the cluster.
pub struct EnvMaker<'a> {
    make: Box<dyn FnOnce(JobConfig) -> Result<Env> + 'a>,
}

impl<'a> EnvMaker<'a> {
    pub(crate) fn new(make: impl FnOnce(JobConfig) -> Result<Env> + 'a) -> Self {
        EnvMaker { make: Box::new(make) }
    }

    /// The job's environment for `config` (its state directory and
    /// restore settings are the cluster's).
    ///
    /// # Errors
    /// A bad config, or the node's state could not be prepared.
    pub fn make(self, config: JobConfig) -> Result<Env> {
        (self.make)(config)
    }
}

/// The ends of an edge in this process: the sender for the upstream
/// task's chain, the receiver (if the downstream task runs here) for its
/// inputs.
pub(crate) type EdgeEnds<T> = (Sender<Message<T>>, Option<Receiver<Message<T>>>);

/// Where this process stands in a deployment of the job.
pub(crate) struct Wiring {
    /// This worker's slot; `None` in the coordinator (no task runs there).
    me: Option<u16>,
    /// The live slots, in order.
    slots: Vec<u16>,
    /// A link to every other live slot.
    links: BTreeMap<u16, Arc<Link>>,
    /// Messages a remote edge may have in flight.
    credits: u32,
    /// The sinks' outputs, by sink id (used by the coordinator).
    outputs: Vec<(u16, Box<dyn Output>)>,
    /// Where sources mirror their ingest logs (in a worker).
    pub(crate) mirror: Option<crate::state::MirrorSpec>,
    /// The counters the job's tasks register in (a worker keeps one set
    /// across deployments); `None`: fresh ones.
    pub(crate) metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Wiring {
    pub(crate) fn new(me: Option<u16>, slots: Vec<u16>, links: BTreeMap<u16, Arc<Link>>, credits: u32) -> Self {
        Wiring { me, slots, links, credits, outputs: Vec::new(), mirror: None, metrics: None }
    }

    /// The slot `task` runs on.
    pub(crate) fn slot_of(&self, task: TaskId) -> u16 {
        placement(&self.slots, task)
    }

    pub(crate) fn is_local(&self, task: TaskId) -> bool {
        self.me == Some(self.slot_of(task))
    }

    pub(crate) fn add_output(&mut self, id: u16, output: Box<dyn Output>) {
        self.outputs.push((id, output));
    }

    pub(crate) fn take_outputs(&mut self) -> Vec<(u16, Box<dyn Output>)> {
        std::mem::take(&mut self.outputs)
    }

    fn link(&self, slot: u16) -> Result<&Arc<Link>> {
        self.links.get(&slot).ok_or_else(|| Error::Cluster(format!("no link to worker slot {slot}")))
    }

    /// See [`crate::stream::Env`]'s `Plan::edge`: bridges `tx`/`rx` over a
    /// link when exactly one end of the edge runs here.
    pub(crate) fn edge<T>(
        &self,
        src: TaskId,
        dst: TaskId,
        tx: Sender<Message<T>>,
        rx: Receiver<Message<T>>,
    ) -> Result<EdgeEnds<T>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        let (src_here, dst_here) = (self.is_local(src), self.is_local(dst));
        let id = EdgeId::new(src.vertex.into(), src.subtask.into(), dst.vertex.into(), dst.subtask.into())
            .map_err(|e| Error::Cluster(e.to_string()))?;
        let net = |e: crate::net::NetError| Error::Cluster(e.to_string());
        match (src_here, dst_here) {
            (true, true) => Ok((tx, Some(rx))),
            (true, false) => {
                let out = self.link(self.slot_of(dst))?.outbox::<T>(id).map_err(net)?;
                spawn_bridge(format!("edge-out {id}"), move || {
                    for msg in rx {
                        let end = matches!(msg, Message::End);
                        if let Err(e) = out.send(&msg) {
                            tracing::debug!(edge = %id, error = %e, "outbound edge ended");
                            return;
                        }
                        if end {
                            return;
                        }
                    }
                })?;
                Ok((tx, None))
            }
            (false, true) => {
                let mut inbox = self.link(self.slot_of(src))?.inbox::<T>(id, self.credits).map_err(net)?;
                spawn_bridge(format!("edge-in {id}"), move || loop {
                    match inbox.recv() {
                        Ok(msg) => {
                            let end = matches!(msg, Message::End);
                            if tx.send(msg).is_err() || end {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::debug!(edge = %id, error = %e, "inbound edge ended");
                            return;
                        }
                    }
                })?;
                let (dead, _) = crossbeam_channel::bounded(1);
                Ok((dead, Some(rx)))
            }
            (false, false) => Ok((tx, None)),
        }
    }
}

/// The slot subtask `task` runs on among the live `slots`.
pub(crate) fn placement(slots: &[u16], task: TaskId) -> u16 {
    match slots.len() {
        0 => 0,
        n => slots[usize::from(task.subtask) % n],
    }
}

fn spawn_bridge(name: String, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new().name(name).spawn(f).map(drop).map_err(|e| Error::io("<thread>", e))
}

/// A hash of the job graph: its tasks (ids, names, sources) and key
/// groups. Processes that would build different graphs disagree on it.
pub(crate) fn graph_hash(tasks: &[(TaskId, String, bool)], key_groups: u16, parallelism: usize) -> u64 {
    let mut text = format!("kg={key_groups} p={parallelism}");
    for (id, name, source) in tasks {
        text.push_str(&format!(";{id}:{name}:{source}"));
    }
    crate::key::Key::stable_hash(&text)
}
