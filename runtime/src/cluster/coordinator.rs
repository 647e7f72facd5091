//! The coordinator: gathers the worker slots, deploys the job on them, runs
//! the checkpoint state machine over all their tasks, commits epochs in the
//! checkpoint store and publishes the sinks' output; on a failure, starts a
//! new generation from the latest committed checkpoint.

use super::control::{coordinator_end, CtlTx, Deploy, ToCoord, ToWorker};
use super::{graph_hash, BuildJob, EnvMaker, Wiring};
use crate::checkpoint::machine::{Action, Input, Machine, Timing};
use crate::checkpoint::protocol::Generation;
use crate::checkpoint::store::{CheckpointStore, Committed, DeltaRef, OutputRef, Published, RolledBack, TaskRecord};
use crate::checkpoint::TaskId;
use crate::error::{Error, Result};
use crate::net::{ClusterToken, HandshakeConfig, Identity, Link, LinkConfig, NetMetrics};
use crate::sink::Output;
use crate::{Env, JobConfig};
use crossbeam_channel::{Receiver, Sender};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Savepoints whose checkpoints stay pinned: the job's MQTT sources keep
/// their ingest logs from the oldest of them on, so the job can be rolled
/// back to any of them without losing a message.
pub(crate) const PINNED_SAVEPOINTS: usize = 2;

/// How often pins are checked for expiry while one is held.
const PIN_CHECK: Duration = Duration::from_secs(60);

fn unix_now() -> u64 {
    u64::try_from(crate::time::now_ms()).unwrap_or(0) / 1000
}

/// How the coordinator runs.
#[derive(Debug, Clone)]
pub struct CoordinatorOptions {
    /// Where workers connect.
    pub listen: SocketAddr,
    /// Worker slots of the job: `0..workers`.
    pub workers: u16,
    /// The checkpoint store: `file:///path` or `s3://bucket/prefix`.
    pub store_url: String,
    /// How long a lost slot may take to come back before the job goes on
    /// without it.
    pub worker_timeout: Duration,
    /// The cluster token; `None` only on loopback.
    pub token: Option<ClusterToken>,
    /// The job's arguments, sent to every worker to build the same graph.
    pub job_args: Vec<String>,
    /// Start from this savepoint (a store URL written by `savepoint`) when
    /// the checkpoint store holds no checkpoint of the job yet.
    pub from_savepoint: Option<String>,
    /// How long a savepoint's checkpoint stays pinned (its sources keep
    /// their ingest logs from it on, for a rollback); zero pins nothing.
    pub pin_savepoints: Duration,
    /// Go back to this savepoint (a store URL written by `savepoint`): its
    /// state and source positions become the job's next checkpoint, once
    /// (see [`CheckpointStore::rollback_to`]).
    pub rollback_to: Option<String>,
    /// Where the coordinator keeps what it knows of the job for its HTTP
    /// endpoint (workers, their counters, checkpoints, results).
    pub view: Arc<super::ClusterView>,
    /// The liveness file its control loop keeps (`--alive-file`).
    pub liveness: Arc<super::Liveness>,
}

/// How the job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterOutcome {
    /// The checkpoint the job finished at.
    pub finished_at: Committed,
    /// Generations this run of the coordinator started.
    pub generations: u64,
    /// Epochs committed by this run.
    pub checkpoints: u64,
    /// The store said the job had already finished: nothing ran.
    pub already_finished: bool,
    /// What `rollback_to` did, if asked.
    pub rolled_back: Option<RolledBack>,
}

type Tasks = Vec<(TaskId, String, bool)>;
type Outputs = Vec<(u16, Box<dyn Output>)>;

/// A connected worker.
struct Member {
    tx: CtlTx<ToWorker>,
    data_addr: String,
    /// Where its control link comes from.
    peer: String,
    conn: u64,
    /// Keeps the control link up.
    _link: Link,
}

/// A connection event: `(slot, connection number)` and what arrived.
type Event = ((u16, u64), Result<ToCoord>);

/// A sink's output, published from the store.
struct SinkOut {
    id: u16,
    output: Box<dyn Output>,
    /// The output was brought back to its last published record.
    recovered: bool,
}

/// Runs the job on the workers until it finishes.
///
/// # Errors
/// A bad job or store URL, a refused store, a worker whose job graph
/// differs, or a store failure while committing.
pub fn run_coordinator(opts: &CoordinatorOptions, build: BuildJob<'_>) -> Result<ClusterOutcome> {
    if opts.workers == 0 {
        return Err(Error::config("workers", "must be at least 1"));
    }
    opts.liveness.beat();
    let (config, tasks, outputs) = probe(opts, build)?;
    let hash = graph_hash(&tasks, config.key_groups, config.parallelism);
    let store = CheckpointStore::open(&opts.store_url, &config.name)?;
    if let Some(from) = &opts.from_savepoint {
        import_savepoint(&store, from, &opts.store_url, &outputs)?;
    }
    let mut rolled_back = None;
    if let Some(to) = &opts.rollback_to {
        let r = store.rollback_to(to)?;
        rolled_back = Some(r);
        if r.already {
            tracing::info!(savepoint = %to, epoch = r.at.epoch, "already rolled back to this savepoint: resuming from the store");
        } else {
            tracing::info!(
                savepoint = %to,
                savepoint_epoch = r.savepoint.epoch,
                from = r.from.epoch,
                epoch = r.at.epoch,
                keys_set = r.set,
                keys_deleted = r.deleted,
                "rolled back to a savepoint: its state is the job's checkpoint {}",
                r.at.epoch
            );
        }
    }
    let mut sinks: Vec<SinkOut> =
        outputs.into_iter().map(|(id, output)| SinkOut { id, output, recovered: false }).collect();
    if let Some(at) = store.finished()? {
        publish_pending(&store, store.newest_generation()?, &mut sinks, Some(at), &opts.view.metrics)?;
        tracing::info!(epoch = at.epoch, "the job already finished");
        return Ok(ClusterOutcome {
            finished_at: at,
            generations: 0,
            checkpoints: 0,
            already_finished: true,
            rolled_back,
        });
    }
    let listener = TcpListener::bind(opts.listen).map_err(|e| Error::io(opts.listen.to_string(), e))?;
    let (events_tx, events) = crossbeam_channel::unbounded::<Event>();
    let (joins_tx, joins) = crossbeam_channel::unbounded::<(u16, String, Member)>();
    let (requests_tx, requests) = crossbeam_channel::unbounded::<Request>();
    accept_loop(listener, opts, &config.name, Joined { events: events_tx, joins: joins_tx, requests: requests_tx })?;
    let mut groups: Vec<u16> = (0..config.key_groups).collect();
    groups.push(crate::state::codec::OPERATOR_GROUP);
    let maintenance = spawn_maintenance(&opts.store_url, &config.name, groups, config.store.retain_checkpoints)?;
    let mut c = Cluster {
        requests,
        maintenance,
        opts,
        config,
        tasks,
        hash,
        store,
        sinks,
        members: BTreeMap::new(),
        events,
        joins,
        generations: 0,
        checkpoints: 0,
        committed: None,
        pinned: None,
        pins_checked: Instant::now(),
        rolled_back,
    };
    c.expire_pins()?;
    c.run()
}

/// Builds the job graph without placing anything here: its config, tasks
/// and sink outputs.
fn probe(opts: &CoordinatorOptions, build: BuildJob<'_>) -> Result<(JobConfig, Tasks, Outputs)> {
    let wiring = Wiring::new(None, (0..opts.workers).collect(), BTreeMap::new(), 1);
    let env = build(
        &opts.job_args,
        EnvMaker::new(|mut config: JobConfig| {
            config.state_dir = None;
            config.restore_checkpoint = None;
            Env::create(config, Some(wiring))
        }),
    )
    .map_err(Error::Cluster)?;
    let mut built = env.build()?;
    opts.view.set_graph(opts.workers, built.metrics.edges());
    let tasks = built.tasks.iter().map(|t| (t.id, t.name.clone(), t.source)).collect();
    let outputs = built.cluster.as_mut().map(Wiring::take_outputs).unwrap_or_default();
    Ok((built.config, tasks, outputs))
}

/// A savepoint asked for: where to, and how to answer.
struct Request {
    to: String,
    tx: CtlTx<ToWorker>,
    _link: Link,
}

/// Where the accepting threads hand what arrives.
#[derive(Clone)]
struct Joined {
    events: Sender<Event>,
    joins: Sender<(u16, String, Member)>,
    requests: Sender<Request>,
}

fn accept_loop(listener: TcpListener, opts: &CoordinatorOptions, job: &str, to: Joined) -> Result<()> {
    let cfg = LinkConfig::new(HandshakeConfig {
        identity: Identity { job: job.to_owned(), graph_hash: 0, generation: 0 },
        token: opts.token.clone(),
        timeout: Duration::from_secs(10),
    });
    let metrics = Arc::new(NetMetrics::default());
    std::thread::Builder::new()
        .name("coordinator-accept".into())
        .spawn(move || {
            let mut conn = 0u64;
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                conn += 1;
                let (cfg, metrics, to) = (cfg.clone(), metrics.clone(), to.clone());
                let id = conn;
                let _ = std::thread::Builder::new().name(format!("join-{id}")).spawn(move || {
                    if let Err(e) = join(stream, &cfg, metrics, id, &to) {
                        tracing::warn!(error = %e, "a worker's connection was refused");
                    }
                });
            }
        })
        .map(drop)
        .map_err(|e| Error::io("<thread>", e))
}

/// Handshake and `Hello` of one worker connection.
fn join(stream: std::net::TcpStream, cfg: &LinkConfig, metrics: Arc<NetMetrics>, conn: u64, to: &Joined) -> Result<()> {
    let link = Link::accept(stream, cfg, metrics).map_err(|e| Error::Cluster(e.to_string()))?;
    let (tx, mut rx) = coordinator_end(&link)?;
    match rx.recv_timeout(Duration::from_secs(10))? {
        Some(ToCoord::Hello { slot, data_addr }) => {
            rx.forward((slot, conn), to.events.clone())?;
            let peer = link.peer().to_owned();
            let _ = to.joins.send((slot, data_addr.clone(), Member { tx, data_addr, peer, conn, _link: link }));
        }
        Some(ToCoord::Savepoint { to: url }) => {
            let _ = to.requests.send(Request { to: url, tx, _link: link });
        }
        _ => return Err(Error::Cluster(format!("{}: no hello", link.peer()))),
    }
    Ok(())
}

/// Copies the latest checkpoint of the store at `from` (a savepoint) into
/// `store`, unless `store` already holds checkpoints of the job (the
/// savepoint was imported by an earlier start of the same command).
fn import_savepoint(store: &CheckpointStore, from: &str, url: &str, outputs: &Outputs) -> Result<()> {
    if store.newest_generation()? != 0 || store.latest()?.is_some() {
        tracing::info!(from, "the checkpoint store already holds this job's checkpoints: resuming from them");
        return Ok(());
    }
    let source = CheckpointStore::open(from, store.job())?;
    let latest = source.latest()?.ok_or_else(|| {
        Error::CheckpointStore(crate::checkpoint::store::Error::Refused {
            url: from.to_owned(),
            reason: format!("holds no checkpoint of job {}", store.job()),
        })
    })?;
    copy_checkpoint(&source, latest.epoch, url, outputs.iter().map(|(id, _)| *id))?;
    tracing::info!(from, epoch = latest.epoch, "started from a savepoint");
    Ok(())
}

/// Writes checkpoint `epoch` of `source` to the empty store at `to` as its
/// only checkpoint, with how far each sink had published it.
fn copy_checkpoint(source: &CheckpointStore, epoch: u64, to: &str, sinks: impl Iterator<Item = u16>) -> Result<()> {
    let at = source.export(epoch, to)?;
    let target = CheckpointStore::open(to, source.job())?;
    for sink in sinks {
        if let Some(p) = source.published(sink)? {
            if p.epoch < epoch {
                return Err(Error::Cluster(format!(
                    "sink {sink} has published epoch {} only, not {epoch}: try again in a moment",
                    p.epoch
                )));
            }
            target.put_published(at.generation, sink, &Published { epoch, record: p.record })?;
        }
    }
    Ok(())
}

struct Cluster<'a> {
    /// Savepoints asked for.
    requests: Receiver<Request>,
    /// Committed and published epochs, for [`spawn_maintenance`].
    maintenance: Sender<u64>,
    opts: &'a CoordinatorOptions,
    config: JobConfig,
    tasks: Tasks,
    hash: u64,
    store: CheckpointStore,
    sinks: Vec<SinkOut>,
    members: BTreeMap<u16, Member>,
    events: Receiver<Event>,
    joins: Receiver<(u16, String, Member)>,
    generations: u64,
    checkpoints: u64,
    /// The newest checkpoint seen committed: once there is one, a store
    /// without `latest` is an outage, not a job to start from scratch.
    committed: Option<Committed>,
    /// The oldest checkpoint a savepoint pins (see [`PINNED_SAVEPOINTS`]).
    pinned: Option<u64>,
    /// When pins were last checked for expiry.
    pins_checked: Instant,
    rolled_back: Option<RolledBack>,
}

/// Why a generation ended.
enum GenEnd {
    Finished(Committed),
    Failed(String),
}

impl Cluster<'_> {
    fn run(&mut self) -> Result<ClusterOutcome> {
        let mut first = true;
        let mut failures = 0u64;
        loop {
            self.gather(first);
            first = false;
            let (generation, latest) = match self.claim() {
                Ok(c) => c,
                Err(Error::CheckpointStore(e)) if e.is_transient() => {
                    tracing::warn!(error = %e, "the checkpoint store is unavailable; retrying");
                    self.opts.liveness.beat();
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let committed_before = self.checkpoints;
            let end = match self.generation(generation, latest) {
                Err(Error::CheckpointStore(e)) if e.is_transient() => GenEnd::Failed(e.to_string()),
                other => other?,
            };
            match end {
                GenEnd::Finished(at) => {
                    self.broadcast(ToWorker::Stop { generation, finished: true });
                    // Let the stop reach the workers before the links close.
                    std::thread::sleep(Duration::from_millis(200));
                    return Ok(ClusterOutcome {
                        finished_at: at,
                        generations: self.generations,
                        checkpoints: self.checkpoints,
                        already_finished: false,
                        rolled_back: self.rolled_back,
                    });
                }
                GenEnd::Failed(why) => {
                    tracing::warn!(generation, reason = %why, "generation failed; restarting from the latest checkpoint");
                    self.broadcast(ToWorker::Stop { generation, finished: false });
                    // Back to back failures (a worker that cannot deploy)
                    // are retried at a growing pace, up to once a second.
                    failures = if self.checkpoints > committed_before { 1 } else { failures + 1 };
                    std::thread::sleep(Duration::from_millis((50 * failures).min(1000)));
                }
            }
        }
    }

    /// Claims the next generation (fencing every older one) and reads the
    /// checkpoint it starts from; publishes what the sinks have not yet.
    fn claim(&mut self) -> Result<(u64, Option<Committed>)> {
        let generation = self.store.claim_generation()?;
        self.generations += 1;
        let latest = self.store.latest()?;
        if let (None, Some(seen)) = (latest, self.committed) {
            let what = format!("missing, though epoch {} was committed", seen.epoch);
            return Err(Error::CheckpointStore(crate::checkpoint::store::Error::unreachable("latest", &what)));
        }
        if latest.is_some() {
            self.committed = latest;
        }
        publish_pending(&self.store, generation, &mut self.sinks, latest, &self.opts.view.metrics)?;
        Ok((generation, latest))
    }

    /// Writes the savepoints asked for: the latest committed checkpoint,
    /// pinned (so a rollback to it replays every message since), then
    /// copied to each requested store.
    fn serve_requests(&mut self) {
        while let Ok(r) = self.requests.try_recv() {
            let done = self.store.latest().map_err(Error::from).and_then(|latest| {
                let latest = latest.ok_or_else(|| Error::Cluster("no checkpoint is complete yet".into()))?;
                // Pinned before any later epoch completes (this thread
                // completes them), so no source has cut past it.
                if !self.opts.pin_savepoints.is_zero() {
                    self.pin(latest.epoch)?;
                }
                let sinks = self.sinks.iter().map(|s| s.id);
                copy_checkpoint(&self.store, latest.epoch, &r.to, sinks)?;
                Ok(latest.epoch)
            });
            let reply = match done {
                Ok(epoch) => {
                    tracing::info!(epoch, to = %r.to, "savepoint written");
                    ToWorker::SavepointDone { epoch }
                }
                Err(e) => ToWorker::SavepointFailed { reason: e.to_string() },
            };
            let _ = r.tx.send(reply);
        }
    }

    /// Pins checkpoint `epoch` and releases the pins of all but the newest
    /// [`PINNED_SAVEPOINTS`].
    fn pin(&mut self, epoch: u64) -> Result<()> {
        self.store.pin(epoch, unix_now())?;
        let pins = self.store.pins()?;
        let release = pins.len().saturating_sub(PINNED_SAVEPOINTS);
        for &old in &pins[..release] {
            self.store.unpin(old)?;
        }
        self.pinned = pins.get(release).copied();
        Ok(())
    }

    /// Releases the pins older than `--pin-savepoints`, so that a savepoint
    /// nobody rolls back to stops holding its sources' ingest logs.
    fn expire_pins(&mut self) -> Result<()> {
        self.pins_checked = Instant::now();
        let now = unix_now();
        let mut kept = None;
        for epoch in self.store.pins()? {
            let at = self.store.pinned_at(epoch)?.unwrap_or(0);
            if now.saturating_sub(at) >= self.opts.pin_savepoints.as_secs() {
                self.store.unpin(epoch)?;
                tracing::info!(epoch, "savepoint pin expired: its sources may release their input");
            } else {
                kept = kept.or(Some(epoch));
            }
        }
        self.pinned = kept;
        Ok(())
    }

    fn broadcast(&mut self, msg: ToWorker) {
        let mut lost = Vec::new();
        for (slot, m) in &self.members {
            if m.tx.send(msg.clone()).is_err() {
                lost.push(*slot);
            }
        }
        for s in lost {
            self.members.remove(&s);
            self.opts.view.lost(s);
        }
    }

    /// Takes in new connections; a slot that connects again replaces its
    /// old connection. Refuses slots outside `0..workers`.
    fn absorb_joins(&mut self) -> Vec<u16> {
        let mut rejoined = Vec::new();
        while let Ok((slot, addr, m)) = self.joins.try_recv() {
            if slot >= self.opts.workers {
                let reason = format!(
                    "slot {slot} is not one of this job's {} worker slots (0..{})",
                    self.opts.workers, self.opts.workers
                );
                tracing::warn!(slot, "{reason}");
                let _ = m.tx.send(ToWorker::Refuse { reason });
                continue;
            }
            tracing::info!(slot, data = %addr, "worker joined");
            self.opts.view.joined(slot, &addr, &m.peer);
            if self.members.insert(slot, m).is_some() {
                rejoined.push(slot);
            }
        }
        rejoined
    }

    /// Drops members whose link ended (events of old connections are
    /// ignored); returns the slots lost.
    fn drain_events(&mut self, wait: Duration) -> Vec<(u16, Option<ToCoord>)> {
        self.opts.liveness.beat();
        let mut out = Vec::new();
        let first = self.events.recv_timeout(wait).ok();
        for ((slot, conn), msg) in first.into_iter().chain(std::iter::from_fn(|| self.events.try_recv().ok())) {
            if self.members.get(&slot).is_none_or(|m| m.conn != conn) {
                continue;
            }
            match msg {
                Ok(ToCoord::Stats { report }) => self.opts.view.heard(slot, Some(report)),
                Ok(m) => {
                    self.opts.view.heard(slot, None);
                    out.push((slot, Some(m)));
                }
                Err(e) => {
                    tracing::warn!(slot, error = %e, "worker lost");
                    self.members.remove(&slot);
                    self.opts.view.lost(slot);
                    out.push((slot, None));
                }
            }
        }
        out
    }

    /// Waits until every slot is connected; after the first generation,
    /// goes on with the slots that are once `worker_timeout` passed.
    fn gather(&mut self, first: bool) {
        let started = Instant::now();
        let mut told = Instant::now();
        loop {
            self.absorb_joins();
            self.serve_requests();
            let _ = self.drain_events(Duration::from_millis(20));
            let n = self.members.len();
            if n == usize::from(self.opts.workers) {
                return;
            }
            if !first && n > 0 && started.elapsed() >= self.opts.worker_timeout {
                tracing::warn!(live = n, of = self.opts.workers, "going on with the workers that are here");
                return;
            }
            if told.elapsed() > Duration::from_secs(5) {
                tracing::info!(connected = n, of = self.opts.workers, "waiting for workers");
                told = Instant::now();
            }
        }
    }

    /// Deploys and runs one generation.
    fn generation(&mut self, generation: u64, latest: Option<Committed>) -> Result<GenEnd> {
        let slots: Vec<(u16, String)> = self.members.iter().map(|(s, m)| (*s, m.data_addr.clone())).collect();
        tracing::info!(generation, workers = slots.len(), restore = ?latest.map(|c| c.epoch), "deploying");
        let deploy = Deploy {
            generation,
            slots: slots.clone(),
            restore: latest.map(|c| c.epoch),
            args: self.opts.job_args.clone(),
            graph_hash: self.hash,
            store_url: self.opts.store_url.clone(),
        };
        self.broadcast(ToWorker::Deploy(deploy));
        self.opts.view.deployed(generation, slots.iter().map(|(s, _)| *s).collect());
        let mut ready = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        while ready < slots.len() {
            if Instant::now() > deadline {
                return Ok(GenEnd::Failed("workers did not get ready in time".into()));
            }
            if !self.absorb_joins().is_empty() {
                return Ok(GenEnd::Failed("a worker reconnected while deploying".into()));
            }
            for (slot, msg) in self.drain_events(Duration::from_millis(20)) {
                match msg {
                    None => return Ok(GenEnd::Failed(format!("worker {slot} lost while deploying"))),
                    Some(ToCoord::Ready { generation: g, .. }) if g == generation => ready += 1,
                    Some(ToCoord::Refused { generation: g, reason, fatal }) if g == generation => {
                        if fatal {
                            tracing::error!(slot, "worker refused: {reason}");
                            self.members.remove(&slot);
                            self.opts.view.lost(slot);
                        }
                        return Ok(GenEnd::Failed(format!("worker {slot} could not deploy: {reason}")));
                    }
                    Some(other) => tracing::debug!(slot, ?other, "ignored while deploying"),
                }
            }
        }
        self.broadcast(ToWorker::Start { generation });
        let timing = Timing {
            interval: self.config.checkpoint_interval,
            min_pause: self.config.min_checkpoint_pause,
            epoch_timeout: self.config.checkpoint_timeout,
            checkpointing: true,
        };
        let next = latest.map_or(1, |c| c.epoch + 1);
        let mut machine = Machine::new(timing, Generation(generation), next);
        for (id, _, source) in &self.tasks {
            machine.add_task(*id, *source);
        }
        let mut uploads: BTreeMap<u64, (Vec<DeltaRef>, Vec<OutputRef>)> = BTreeMap::new();
        // Per epoch: when it was triggered, and the bytes it uploaded.
        let mut timing: BTreeMap<u64, (Instant, u64)> = BTreeMap::new();
        let opts = self.opts;
        let log = &opts.view.metrics.checkpoint_log;
        let mut finished_at = None;
        let start = Instant::now();
        let mut inputs: Vec<Input> = vec![Input::Tick];
        loop {
            if !self.absorb_joins().is_empty() {
                return Ok(GenEnd::Failed("a worker restarted".into()));
            }
            self.serve_requests();
            for input in inputs.drain(..) {
                let actions = machine.step(start.elapsed(), input);
                for action in actions {
                    match action {
                        Action::Trigger { epoch } => {
                            timing.insert(epoch, (Instant::now(), 0));
                            log.triggered(epoch);
                            self.broadcast(ToWorker::Trigger { generation, epoch })
                        }
                        Action::WriteCompleteMarker { epoch, finished } => {
                            let (deltas, outputs) = uploads.remove(&epoch).unwrap_or_default();
                            let bytes = deltas.iter().map(|d| d.bytes).chain(outputs.iter().map(|o| o.bytes)).sum();
                            timing.entry(epoch).or_insert((Instant::now(), 0)).1 = bytes;
                            let records = outputs.iter().map(output_record).collect::<Result<Vec<_>>>()?;
                            let at = self.store.commit_epoch(generation, epoch, deltas, records)?;
                            self.checkpoints += 1;
                            self.committed = Some(at);
                            if finished {
                                finished_at = Some(at);
                            }
                        }
                        Action::NotifyCommit { epoch } => {
                            let latest = self.store.latest()?;
                            publish_pending(&self.store, generation, &mut self.sinks, latest, &self.opts.view.metrics)?;
                            if let Some((at, bytes)) = timing.remove(&epoch) {
                                let took = at.elapsed();
                                tracing::info!(generation, epoch, uploaded_bytes = bytes, took = ?took, "checkpoint complete");
                                log.completed(epoch, took, bytes);
                                self.opts.view.metrics.checkpoints.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            timing.retain(|e, _| *e > epoch);
                            if let Some(at) = finished_at.filter(|a| a.epoch == epoch) {
                                self.store.mark_finished(at)?;
                            }
                            if self.pinned.is_some() && self.pins_checked.elapsed() >= PIN_CHECK {
                                self.expire_pins()?;
                            }
                            self.broadcast(ToWorker::Complete { generation, epoch, pinned: self.pinned });
                            let _ = self.maintenance.send(epoch);
                        }
                        Action::Abort { epoch, missing } => {
                            log.failed(epoch);
                            return Ok(GenEnd::Failed(format!("epoch {epoch} timed out waiting for {missing:?}")));
                        }
                        Action::Fail { task, reason } => {
                            return Ok(GenEnd::Failed(format!("task {task} failed: {reason}")));
                        }
                        Action::Finish => {
                            let at = finished_at.or(self.store.latest()?).unwrap_or(Committed { epoch: 0, generation });
                            return Ok(GenEnd::Finished(at));
                        }
                        Action::Ignore { task, epoch, why } => {
                            tracing::debug!(?task, ?epoch, ?why, "checkpoint message ignored");
                        }
                    }
                }
            }
            let wait = machine.next_deadline().map_or(Duration::from_millis(50), |d| {
                d.saturating_sub(start.elapsed()).min(Duration::from_millis(50))
            });
            for (slot, msg) in self.drain_events(wait.max(Duration::from_micros(100))) {
                match msg {
                    None => return Ok(GenEnd::Failed(format!("worker {slot} lost"))),
                    Some(ToCoord::Report { generation: g, report }) if g == generation => {
                        if let crate::checkpoint::protocol::ToCoordinator::Ack(a) = &report {
                            log.staged(a.epoch, a.staged.entries);
                        }
                        inputs.push(Input::Report(report.in_generation(Generation(generation))));
                    }
                    Some(ToCoord::Uploaded { generation: g, epoch, deltas, outputs }) if g == generation => {
                        let e = uploads.entry(epoch).or_default();
                        e.0.extend(deltas);
                        e.1.extend(outputs);
                    }
                    Some(other) => tracing::debug!(slot, ?other, "stale control message ignored"),
                }
            }
            if inputs.is_empty() {
                inputs.push(Input::Tick);
            }
        }
    }
}

/// Commits between two rounds of store maintenance.
const MAINTAIN_EVERY: u32 = 10;

/// Keeps the checkpoint store small, on a thread of its own with its own
/// handle on the store: every [`MAINTAIN_EVERY`] committed (and published)
/// epochs it materialises every key group as of the newest one, then
/// deletes what the last `retain` checkpoints no longer need. A failure is
/// logged and tried again at the next round.
fn spawn_maintenance(url: &str, job: &str, groups: Vec<u16>, retain: usize) -> Result<Sender<u64>> {
    let store = CheckpointStore::open(url, job)?;
    let (tx, rx) = crossbeam_channel::unbounded::<u64>();
    std::thread::Builder::new()
        .name("store-maintenance".into())
        .spawn(move || {
            let mut recent = std::collections::VecDeque::new();
            let mut since = 0;
            while let Ok(epoch) = rx.recv() {
                recent.push_back(epoch);
                while recent.len() > retain.max(1) {
                    recent.pop_front();
                }
                since += 1;
                if since < MAINTAIN_EVERY {
                    continue;
                }
                since = 0;
                let retained: Vec<u64> = recent.iter().copied().collect();
                let round = store.materialise_all(groups.iter().copied(), epoch).and_then(|_| store.gc(&retained));
                match round {
                    Ok(deleted) => tracing::debug!(epoch, deleted, "checkpoint store maintained"),
                    Err(e) => {
                        tracing::warn!(epoch, error = %e, "checkpoint store maintenance failed; trying again later")
                    }
                }
            }
        })
        .map(drop)
        .map_err(|e| Error::io("<thread>", e))?;
    Ok(tx)
}

/// An output reference as the task record the epoch's metadata keeps.
fn output_record(r: &OutputRef) -> Result<TaskRecord> {
    let bytes = postcard::to_stdvec(r).map_err(|e| Error::Cluster(format!("encoding an output reference: {e}")))?;
    Ok(TaskRecord { task: format!("sink-{}.{}", r.sink, r.part), source_positions: Vec::new(), sink_commits: bytes })
}

/// Publishes, for every sink, the output of committed epochs after the
/// one it last published, up to `latest`; first brings the output back to
/// its last published record (undoing a publish the coordinator did not
/// record before a crash).
fn publish_pending(
    store: &CheckpointStore,
    generation: u64,
    sinks: &mut [SinkOut],
    latest: Option<Committed>,
    metrics: &crate::metrics::Metrics,
) -> Result<()> {
    for s in sinks.iter_mut() {
        if let Err(e) = publish_sink(store, generation, s, latest, metrics) {
            // Brought back to its last recorded publish before the next try.
            s.recovered = false;
            return Err(e);
        }
    }
    Ok(())
}

fn publish_sink(
    store: &CheckpointStore,
    generation: u64,
    s: &mut SinkOut,
    latest: Option<Committed>,
    metrics: &crate::metrics::Metrics,
) -> Result<()> {
    {
        let published = store.published(s.id)?;
        if !s.recovered {
            s.output.recover(published.as_ref().map(|p| p.record.as_slice()))?;
            s.recovered = true;
        }
        let Some(latest) = latest else { return Ok(()) };
        let after = published.as_ref().map_or(0, |p| p.epoch);
        if after >= latest.epoch {
            return Ok(());
        }
        let mut metas = Vec::new();
        let mut meta = store.epoch_meta(latest.epoch)?;
        loop {
            let parent = meta.parent;
            metas.push(meta);
            match parent {
                Some(p) if p.epoch > after => meta = store.epoch_meta(p.epoch)?,
                _ => break,
            }
        }
        for meta in metas.into_iter().rev() {
            let mut refs: Vec<OutputRef> = Vec::new();
            for t in &meta.tasks {
                if t.sink_commits.is_empty() {
                    continue;
                }
                let r: OutputRef = postcard::from_bytes(&t.sink_commits)
                    .map_err(|e| Error::Cluster(format!("epoch {}: undecodable output reference: {e}", meta.epoch)))?;
                if r.sink == s.id {
                    refs.push(r);
                }
            }
            refs.sort_by_key(|r| r.part);
            for r in &refs {
                let rows = store.read_output(r)?;
                if metrics.results.is_enabled() {
                    metrics.results.push(&rows);
                }
                s.output.publish(&rows)?;
            }
            let record = s.output.end_epoch()?;
            store.put_published(generation, s.id, &Published { epoch: meta.epoch, record })?;
        }
    }
    Ok(())
}
