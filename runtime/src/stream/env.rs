//! The job environment: configuration, the plan being built, execution.

use super::DataStream;
use crate::checkpoint::{Committer, CoordHandle, Coordinator, TaskId};
use crate::error::{Error, Result};
use crate::key::DEFAULT_KEY_GROUPS;
use crate::metrics::Metrics;
use crate::record::Message;
use crate::sink::{recover_eager, Sink, SinkCommitter, SinkConsumer};
use crate::source::Source;
use crate::state::{Recovered, Store, StoreConfig};
use crate::task::{run_input_task, run_source_task, Consumer, Forward, TaskCtx};
use crate::time::Watermarks;
use crossbeam_channel::{Receiver, Sender};
use serde::{de::DeserializeOwned, Serialize};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The default [`JobConfig::min_checkpoint_pause`].
const DEFAULT_MIN_CHECKPOINT_PAUSE: Duration = Duration::from_millis(5);
/// The default [`JobConfig::checkpoint_timeout`].
const DEFAULT_CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(600);

/// When a sink's results leave the job (with a state directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMode {
    /// Results are staged and published when the next periodic checkpoint
    /// completes: exactly once, delay up to `checkpoint_interval`.
    #[default]
    Checkpoint,
    /// Commit on output: a sink receiving results asks for a checkpoint at
    /// once (at most one per `min_checkpoint_pause` after the previous one)
    /// and publishes them when it completes: still exactly once, delay
    /// about one checkpoint's duration.
    CommitOnOutput,
    /// Eager: a sink publishes results as soon as it receives them, and
    /// checkpoints how far it got. After a crash the job replays from its
    /// last complete checkpoint and publishes the same results again, in
    /// the same order, with the same numbers (MQTT message ids
    /// `<client>:r<n>`; a file is cut back to its checkpointed length and
    /// rewritten with the same bytes). Consumers that drop repeated ids see
    /// every result once. Needs a deterministic order of results: one
    /// source and parallelism 1 (checked), event time only, and a replay
    /// that reads the same input (the MQTT ingest log does). Results fired
    /// by the end of input (`stop_after_idle`) are the exception: input
    /// arriving before the restart changes them.
    Eager,
}

impl std::str::FromStr for OutputMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "checkpoint" => Ok(Self::Checkpoint),
            "commit-on-output" => Ok(Self::CommitOnOutput),
            "eager" => Ok(Self::Eager),
            _ => Err(Error::config("output_mode", format!("`{s}`: expected checkpoint, commit-on-output or eager"))),
        }
    }
}

/// How a job runs.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// The job's name; a state directory belongs to one job.
    pub name: String,
    /// Instances of each keyed operator.
    pub parallelism: usize,
    /// Key groups (max parallelism); fixed for the life of the state.
    pub key_groups: u16,
    /// Where state and checkpoints live; `None` runs in memory without
    /// checkpoints and writes nothing but the output.
    pub state_dir: Option<PathBuf>,
    /// Time between checkpoints.
    pub checkpoint_interval: Duration,
    /// When sinks publish results (with a state directory; without one
    /// they write straight through).
    pub output_mode: OutputMode,
    /// Least time from the end of one checkpoint to the start of one asked
    /// for by output ([`OutputMode::CommitOnOutput`]): bounds how often a
    /// stream of results (e.g. a backlog replayed, where windows close back
    /// to back) checkpoints.
    pub min_checkpoint_pause: Duration,
    /// Longest time from the start of a checkpoint until every task has
    /// staged it. A checkpoint that takes longer (a task hangs) is aborted
    /// and the job stops with an error naming the tasks that did not
    /// answer; the next run resumes from the last complete checkpoint.
    pub checkpoint_timeout: Duration,
    /// Bytes of keyed state each operator instance keeps in memory.
    pub state_cache_bytes: usize,
    /// Records per batch read from a source.
    pub batch_size: usize,
    /// Batches buffered per channel (backpressure beyond that).
    pub channel_capacity: usize,
    /// fjall tuning, and how many complete checkpoints stay restorable
    /// ([`StoreConfig::retain_checkpoints`]).
    pub store: StoreConfig,
    /// Before running, restore this retained checkpoint of the state
    /// directory (see [`Store::rollback_to`]): state, source positions and
    /// outputs go back to it, later checkpoints are dropped, and the job
    /// replays from there.
    pub restore_checkpoint: Option<u64>,
    /// What defines the job's state besides its name, as `(name, value)`
    /// pairs: its inputs' identity, window, watermark delay, aggregates.
    /// Recorded when the state directory is created; a later start with
    /// other values is refused, naming each difference. Settings that may
    /// legally change between runs (parallelism, checkpoint interval and
    /// retention, outputs) do not belong here. The key groups are added by
    /// the engine.
    pub identity: Vec<(String, String)>,
}

impl JobConfig {
    /// Defaults for a job called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            parallelism: 1,
            key_groups: DEFAULT_KEY_GROUPS,
            state_dir: None,
            checkpoint_interval: Duration::from_secs(1),
            output_mode: OutputMode::Checkpoint,
            min_checkpoint_pause: DEFAULT_MIN_CHECKPOINT_PAUSE,
            checkpoint_timeout: DEFAULT_CHECKPOINT_TIMEOUT,
            state_cache_bytes: 8 << 20,
            batch_size: 1024,
            channel_capacity: 16,
            store: StoreConfig::default(),
            restore_checkpoint: None,
            identity: Vec::new(),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.parallelism == 0 || self.parallelism > usize::from(self.key_groups) {
            return Err(Error::config(
                "parallelism",
                format!("must be between 1 and the number of key groups ({})", self.key_groups),
            ));
        }
        if self.key_groups == 0 || self.key_groups == u16::MAX {
            return Err(Error::config("key_groups", "must be between 1 and 65534"));
        }
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        if self.channel_capacity == 0 {
            return Err(Error::config("channel_capacity", "must be at least 1"));
        }
        if self.state_cache_bytes > crate::memory::MAX_STATE_CACHE_BYTES {
            return Err(Error::config(
                "state_cache_bytes",
                format!("must be at most {} bytes", crate::memory::MAX_STATE_CACHE_BYTES),
            ));
        }
        if self.checkpoint_interval.is_zero() {
            return Err(Error::config("checkpoint_interval", "must be positive"));
        }
        if self.checkpoint_timeout.is_zero() {
            return Err(Error::config("checkpoint_timeout", "must be positive"));
        }
        if self.store.retain_checkpoints == 0 {
            return Err(Error::config("retain_checkpoints", "must be at least 1"));
        }
        if self.restore_checkpoint.is_some() && self.state_dir.is_none() {
            return Err(Error::config("restore_checkpoint", "needs a state directory"));
        }
        Ok(())
    }
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobOutcome {
    /// The state directory said the job had already finished: nothing ran.
    pub already_finished: bool,
    /// The job resumed from this complete epoch.
    pub resumed_from: Option<u64>,
    /// Checkpoints completed in this run.
    pub checkpoints: u64,
    /// Counters at the end.
    pub metrics: crate::metrics::Snapshot,
    /// Wall time of the run.
    pub elapsed: Duration,
}

type Terminal = Box<dyn FnOnce(&mut Plan) -> Result<()>>;

pub(crate) struct TaskSpec {
    pub(crate) id: TaskId,
    pub(crate) name: String,
    pub(crate) source: bool,
    /// `None` for a task placed on another node.
    run: Option<Box<dyn FnOnce() -> Result<()> + Send>>,
}

/// The job being built.
pub(crate) struct Plan {
    pub(crate) config: JobConfig,
    store: Option<Arc<Store>>,
    recovered: Recovered,
    next_op: u16,
    terminals: Vec<Terminal>,
    tasks: Vec<TaskSpec>,
    committers: Vec<Box<dyn Committer>>,
    metrics: Arc<Metrics>,
    coord: Coordinator,
    handle: CoordHandle,
    /// In a cluster: where tasks run and the links to the other workers.
    cluster: Option<crate::cluster::Wiring>,
}

impl Plan {
    /// True when `task` runs in this process.
    pub(crate) fn is_local(&self, task: TaskId) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.is_local(task))
    }

    /// The channel of the edge from `src` to `dst`: the sender is for
    /// `src`'s chain, the receiver (if `dst` runs here) for `dst`'s inputs.
    /// An edge between this process and another node is bridged over the
    /// link to it.
    pub(crate) fn edge<T>(&mut self, src: TaskId, dst: TaskId) -> Result<crate::cluster::EdgeEnds<T>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.metrics.add_edge(src.vertex, dst.vertex);
        let (tx, rx) = crossbeam_channel::bounded(self.config.channel_capacity);
        match &self.cluster {
            None => Ok((tx, Some(rx))),
            Some(c) => c.edge(src, dst, tx, rx),
        }
    }

    /// The consumer that sends `src`'s output over `tx` to `dst`.
    pub(crate) fn forward<T: Send + 'static>(
        &self,
        tx: Sender<Message<T>>,
        src: TaskId,
        dst: TaskId,
    ) -> Box<dyn Consumer<T>> {
        Box::new(Forward { tx, task: format!("task {dst}"), blocked: self.blocked(src) })
    }

    /// The backpressure counter of task `src` (time its sends wait).
    pub(crate) fn blocked(&self, src: TaskId) -> Arc<std::sync::atomic::AtomicU64> {
        self.metrics.backpressure(src.vertex, src.subtask)
    }

    pub(crate) fn ctx(&self, name: String, task: TaskId) -> TaskCtx {
        // `window-3-0` is subtask 0 of operator `window-3`; `source-1` and
        // `sink-4` have one subtask.
        let operator = match name.rsplit_once('-') {
            Some((op, _)) if name.matches('-').count() >= 2 => op,
            _ => name.as_str(),
        };
        let task_metrics = if self.is_local(task) {
            self.metrics.task(&name, operator, task.vertex, task.subtask)
        } else {
            self.metrics.unlisted_task(&name, operator, task.vertex, task.subtask)
        };
        TaskCtx {
            task_metrics,
            name,
            task,
            store: self.store.clone(),
            coord: Some(self.handle.clone()),
            next_epoch: self.recovered.complete.map_or(1, |c| c + 1),
            restored: self.recovered.complete.is_some(),
            metrics: self.metrics.clone(),
            key_groups: self.config.key_groups,
            cache_bytes: self.config.state_cache_bytes,
            mirror: self.cluster.as_ref().and_then(|c| c.mirror.clone()),
        }
    }

    pub(crate) fn spawn(
        &mut self,
        id: TaskId,
        name: String,
        source: bool,
        run: impl FnOnce() -> Result<()> + Send + 'static,
    ) {
        let run: Option<Box<dyn FnOnce() -> Result<()> + Send>> =
            if self.is_local(id) { Some(Box::new(run)) } else { None };
        self.tasks.push(TaskSpec { id, name, source, run });
    }

    /// Registers the sink task `id` reading `rxs`, the local ends of its
    /// `inputs` edges (see [`Plan::edge`]). In a cluster the sink's output
    /// belongs to the coordinator, which publishes what the task staged.
    pub(crate) fn spawn_sink<T: Send + 'static>(
        &mut self,
        id: u16,
        sink: Sink<T>,
        inputs: usize,
        rxs: Vec<Receiver<Message<T>>>,
    ) -> Result<()> {
        let name = format!("sink-{id}");
        let task = TaskId::new(id, 0);
        let Sink { encode, mut output } = sink;
        if let Some(c) = &mut self.cluster {
            if self.config.output_mode == OutputMode::Eager {
                return Err(Error::config("output_mode", "eager output is not available in a cluster"));
            }
            c.add_output(id, output);
            if !c.is_local(task) {
                // Named for the job graph's edges, counted where it runs.
                self.metrics.unlisted_task(&name, &name, id, 0);
                self.spawn(task, name, false, || Ok(()));
                return Ok(());
            }
            let ctx = self.ctx(name.clone(), task);
            let head = Box::new(SinkConsumer {
                id,
                encode,
                buf: Vec::new(),
                store: self.store.clone(),
                direct: None,
                eager: false,
                epoch: ctx.next_epoch,
                chunk: 0,
                metrics: self.metrics.clone(),
                task: ctx.task_metrics.clone(),
                request: (self.config.output_mode == OutputMode::CommitOnOutput).then(|| self.handle.clone()),
                requested: 0,
            });
            self.spawn(ctx.task, name, false, move || run_input_task(ctx, rxs, head));
            return Ok(());
        }
        let ctx = self.ctx(name.clone(), task);
        let eager = self.store.is_some() && self.config.output_mode == OutputMode::Eager;
        let direct = match &self.store {
            Some(store) if eager => {
                if inputs != 1 {
                    return Err(Error::config(
                        "output_mode",
                        "eager output needs its results in one deterministic order: parallelism 1 before the sink",
                    ));
                }
                recover_eager(store, id, self.recovered.complete.is_some(), &mut *output)?;
                Some(output)
            }
            Some(_) => {
                self.committers.push(Box::new(SinkCommitter { id, output }));
                None
            }
            None => {
                output.recover(None)?;
                Some(output)
            }
        };
        let head = Box::new(SinkConsumer {
            id,
            encode,
            buf: Vec::new(),
            store: self.store.clone(),
            direct,
            eager,
            epoch: ctx.next_epoch,
            chunk: 0,
            metrics: self.metrics.clone(),
            task: ctx.task_metrics.clone(),
            request: (self.store.is_some() && self.config.output_mode == OutputMode::CommitOnOutput)
                .then(|| self.handle.clone()),
            requested: 0,
        });
        self.spawn(ctx.task, name, false, move || run_input_task(ctx, rxs, head));
        Ok(())
    }
}

/// The environment a job is built in. Cheap to clone; single-threaded.
#[derive(Clone)]
pub struct Env {
    plan: Rc<RefCell<Option<Plan>>>,
}

impl Env {
    /// Opens the state directory (restoring its last complete checkpoint,
    /// or [`JobConfig::restore_checkpoint`]) and prepares an empty job.
    ///
    /// # Errors
    /// A bad config (naming the field) or a refused state directory
    /// ([`Error::StateRefused`], also when the checkpoint to restore is not
    /// retained).
    pub fn new(config: JobConfig) -> Result<Env> {
        Env::create(config, None)
    }

    /// [`Env::new`] for a process of a cluster, with its place in it.
    pub(crate) fn create(config: JobConfig, cluster: Option<crate::cluster::Wiring>) -> Result<Env> {
        config.validate()?;
        let (store, recovered) = match &config.state_dir {
            Some(_) => {
                let (s, mut r) = open_state(&config)?;
                if let Some(epoch) = config.restore_checkpoint {
                    r = s.rollback_to(epoch)?;
                    tracing::info!(epoch, "restored a retained checkpoint");
                }
                (Some(Arc::new(s)), r)
            }
            None => (None, Recovered::default()),
        };
        let next_epoch = recovered.complete.map_or(1, |c| c + 1);
        let metrics = cluster.as_ref().and_then(|c| c.metrics.clone()).unwrap_or_default();
        if let Some(dir) = &config.state_dir {
            metrics.set_state_dir(dir);
        }
        let coord = Coordinator::new(
            store.clone(),
            config.checkpoint_interval,
            config.min_checkpoint_pause,
            config.checkpoint_timeout,
            next_epoch,
            metrics.clone(),
        );
        let handle = coord.handle();
        let plan = Plan {
            config,
            store,
            recovered,
            next_op: 0,
            terminals: Vec::new(),
            tasks: Vec::new(),
            committers: Vec::new(),
            metrics,
            coord,
            handle,
            cluster,
        };
        Ok(Env { plan: Rc::new(RefCell::new(Some(plan))) })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Plan) -> R) -> R {
        let mut p = self.plan.borrow_mut();
        let Some(plan) = p.as_mut() else {
            panic!("the job was already executed");
        };
        f(plan)
    }

    pub(crate) fn next_op(&self) -> u16 {
        self.with(|p| {
            p.next_op += 1;
            p.next_op
        })
    }

    pub(crate) fn add_terminal(&self, t: Terminal) {
        self.with(|p| p.terminals.push(t));
    }

    /// The job's configuration.
    pub fn config(&self) -> JobConfig {
        self.with(|p| p.config.clone())
    }

    /// The job's live counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.with(|p| p.metrics.clone())
    }

    /// A flag that stops the job (sources stop reading; no final results).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.with(|p| p.handle.stop.clone())
    }

    /// True when the state directory holds a job that already ran to its end.
    pub fn already_finished(&self) -> bool {
        self.with(|p| p.recovered.finished)
    }

    /// A stream read from `source`, with event time per `watermarks`.
    pub fn source<S: Source>(&self, source: S, watermarks: Watermarks<S::Item>) -> DataStream<S::Item> {
        let op = self.next_op();
        DataStream {
            env: self.clone(),
            parallelism: 1,
            build: Box::new(move |plan, down| {
                let chain = down(plan, super::Up { index: 0, task: TaskId::new(op, 0) })?;
                let name = format!("source-{op}");
                let ctx = plan.ctx(name.clone(), TaskId::new(op, 0));
                let batch = plan.config.batch_size;
                plan.spawn(ctx.task, name, true, move || run_source_task(ctx, op, source, watermarks, batch, chain));
                Ok(())
            }),
        }
    }

    /// Runs the job to its end (or until stopped).
    ///
    /// # Errors
    /// A task failed, or the state store did.
    pub fn execute(self) -> Result<JobOutcome> {
        let started = Instant::now();
        let Built { mut coord, tasks, committers, metrics, handle, recovered, .. } = self.build()?;
        let resumed_from = recovered.complete;
        for c in committers {
            coord.add_committer(c);
        }
        for t in &tasks {
            coord.add_task(t.id, t.name.clone(), t.source)?;
        }
        // Also for a finished job: a crash after its last epoch was marked
        // complete but before the sinks published it leaves that epoch's
        // results in the outbox, and recovery publishes them.
        coord.recover(resumed_from)?;
        if recovered.finished {
            return Ok(JobOutcome {
                already_finished: true,
                resumed_from,
                checkpoints: 0,
                metrics: metrics.snapshot(),
                elapsed: started.elapsed(),
            });
        }
        let threads = start_tasks(tasks, &handle)?;
        drop(handle);
        let checkpoints = coord.run()?;
        for t in threads {
            let _ = t.join();
        }
        Ok(JobOutcome {
            already_finished: false,
            resumed_from,
            checkpoints,
            metrics: metrics.snapshot(),
            elapsed: started.elapsed(),
        })
    }

    /// Builds the job's tasks without starting them.
    pub(crate) fn build(self) -> Result<Built> {
        let Some(mut plan) = self.plan.borrow_mut().take() else {
            return Err(Error::config("job", "already executed"));
        };
        for t in std::mem::take(&mut plan.terminals) {
            t(&mut plan)?;
        }
        let eager = plan.store.is_some() && plan.config.output_mode == OutputMode::Eager;
        if eager && tasks_sources(&plan.tasks) != 1 {
            return Err(Error::config(
                "output_mode",
                "eager output needs its results in one deterministic order: exactly one source",
            ));
        }
        let Plan { coord, tasks, committers, metrics, handle, recovered, store, cluster, config, .. } = plan;
        Ok(Built { coord, tasks, committers, metrics, handle, recovered, store, cluster, config })
    }
}

/// Opens `config`'s state directory as the job's (checking its identity).
pub(crate) fn open_state(config: &JobConfig) -> Result<(Store, Recovered)> {
    open_state_then(config, |_| Ok(()))
}

/// [`open_state`], running `before_recovery` on the store before it is
/// restored to its last complete epoch (see [`Store::open_job_then`]).
pub(crate) fn open_state_then(
    config: &JobConfig,
    before_recovery: impl FnOnce(&Store) -> Result<()>,
) -> Result<(Store, Recovered)> {
    let dir = config.state_dir.as_ref().ok_or_else(|| Error::config("state_dir", "needed here"))?;
    let mut identity = config.identity.clone();
    identity.push(("key groups".into(), config.key_groups.to_string()));
    Store::open_job_then(dir, &config.name, &identity, &config.store, before_recovery)
}

/// A job's tasks, built and not yet started.
pub(crate) struct Built {
    pub(crate) coord: Coordinator,
    pub(crate) tasks: Vec<TaskSpec>,
    pub(crate) committers: Vec<Box<dyn Committer>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) handle: CoordHandle,
    pub(crate) recovered: Recovered,
    pub(crate) store: Option<Arc<Store>>,
    pub(crate) cluster: Option<crate::cluster::Wiring>,
    pub(crate) config: JobConfig,
}

/// Starts a thread per task placed here; each reports its end to `handle`.
pub(crate) fn start_tasks(tasks: Vec<TaskSpec>, handle: &CoordHandle) -> Result<Vec<std::thread::JoinHandle<()>>> {
    let mut threads = Vec::new();
    for t in tasks {
        let h = handle.clone();
        let TaskSpec { id, name, run, .. } = t;
        let Some(run) = run else { continue };
        let th = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
                h.ended(
                    id,
                    match r {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(p) => Err(panic_message(&p)),
                    },
                );
            })
            .map_err(|e| Error::io("<thread>", e))?;
        threads.push(th);
    }
    Ok(threads)
}

fn tasks_sources(tasks: &[TaskSpec]) -> usize {
    tasks.iter().filter(|t| t.source).count()
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".into()
    }
}
