//! A worker slot: connects to the coordinator, runs the tasks each
//! deployment places on it, uploads what they checkpoint.

use super::control::{worker_end, CtlTx, Deploy, ToCoord, ToWorker, SLOT};
use super::{graph_hash, placement, BuildJob, EnvMaker, Wiring};
use crate::checkpoint::protocol::{Generation, ToCoordinator, ToTask};
use crate::checkpoint::store::{CheckpointStore, DeltaRef, Entry, KeyGroups, OutputRef};
use crate::checkpoint::TaskId;
use crate::error::{Error, Result};
use crate::key::group_range;
use crate::net::{ClusterToken, HandshakeConfig, Identity, Link, LinkConfig, NetError, NetMetrics};
use crate::record::{Message, Record};
use crate::state::codec::OPERATOR_GROUP;
use crate::state::{MirrorSpec, Store};
use crate::stream::{open_state, open_state_then, start_tasks, Built};
use crate::Env;
use crossbeam_channel::{select, Receiver};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Keys and values of an epoch's delta a worker reads and uploads as one
/// object (and so holds in memory at once), more only for a key group that
/// is larger on its own.
const DELTA_PART_BYTES: usize = 4 << 20;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The job's name (both ends of every link must agree on it).
    pub job: String,
    /// The coordinator's address, `HOST:PORT` (resolved at every attempt,
    /// so a coordinator moved to another node is found again).
    pub coordinator: String,
    /// This worker's slot: a stable identity across restarts.
    pub slot: u16,
    /// The node-local state directory (a cache of the checkpoint store).
    pub state_dir: PathBuf,
    /// Where to listen for data links from other workers.
    pub listen: SocketAddr,
    /// The address other workers dial (default: the bound listen address).
    pub advertise: Option<String>,
    /// The cluster token; `None` only on loopback.
    pub token: Option<ClusterToken>,
    /// The counters every deployment's tasks register in (what this
    /// worker's own HTTP endpoint serves, and what it reports to the
    /// coordinator).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where this worker serves its own `/metrics`, told to the
    /// coordinator (`None`: it does not).
    pub http: Option<String>,
    /// The liveness file its control loop keeps (`--alive-file`).
    pub liveness: Arc<super::Liveness>,
}

/// How one deployment ended.
enum Ended {
    /// The job finished: exit.
    Finished,
    /// The generation ended: wait for the next deployment.
    Stopped,
}

/// Runs the worker until the job finishes (exit 0 for the caller).
/// Reconnects to the coordinator whenever the link to it ends.
///
/// # Errors
/// The coordinator refused this worker (e.g. its slot is out of range or
/// its job graph differs), or the node's state or listener failed.
pub fn run_worker(opts: &WorkerOptions, build: BuildJob<'_>) -> Result<()> {
    // Pinned now: the reports carry it to tell this process from its successor.
    crate::metrics::process::started_ms();
    let listener = TcpListener::bind(opts.listen).map_err(|e| Error::io(opts.listen.to_string(), e))?;
    let bound = listener.local_addr().map_err(|e| Error::io(opts.listen.to_string(), e))?;
    let data_addr = opts.advertise.clone().unwrap_or_else(|| bound.to_string());
    std::fs::create_dir_all(&opts.state_dir).map_err(|e| Error::io(&opts.state_dir, e))?;
    tracing::info!(slot = opts.slot, data = %data_addr, coordinator = %opts.coordinator, "worker starting");
    let mut waiting_since = Instant::now();
    loop {
        opts.liveness.beat();
        let link = match dial_coordinator(opts) {
            Ok(l) => l,
            Err(DialError::Refused(reason)) => return Err(Error::ClusterRefused(reason)),
            Err(DialError::Other(e)) => {
                if waiting_since.elapsed() > Duration::from_secs(5) {
                    let e = e.to_string();
                    tracing::warn!(error = %e, "waiting for the coordinator");
                    waiting_since = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        match serve(opts, &listener, &data_addr, &link, build) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e @ Error::ClusterRefused(_)) => return Err(e),
            Err(e) => tracing::warn!(error = %e, "lost the coordinator; reconnecting"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Asks the coordinator at `coordinator` of job `job` for a savepoint: a
/// full, self-contained copy of its latest complete checkpoint in the
/// (empty) store at `to`. Returns the epoch copied.
///
/// # Errors
/// The coordinator cannot be reached or refuses this process, or the copy
/// failed (its reason).
pub fn request_savepoint(coordinator: &str, job: &str, token: Option<ClusterToken>, to: &str) -> Result<u64> {
    let opts = WorkerOptions {
        job: job.to_owned(),
        coordinator: coordinator.to_owned(),
        slot: 0,
        state_dir: PathBuf::new(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        advertise: None,
        token,
        metrics: Arc::default(),
        http: None,
        liveness: Arc::default(),
    };
    let link = match dial_coordinator(&opts) {
        Ok(l) => l,
        Err(DialError::Refused(r)) => return Err(Error::ClusterRefused(r)),
        Err(DialError::Other(e)) => return Err(e),
    };
    let (tx, mut rx) = worker_end(&link)?;
    tx.send(ToCoord::Savepoint { to: to.to_owned() })?;
    match rx.recv_timeout(Duration::from_secs(3600))? {
        Some(ToWorker::SavepointDone { epoch }) => Ok(epoch),
        Some(ToWorker::SavepointFailed { reason }) => Err(Error::Cluster(format!("savepoint failed: {reason}"))),
        other => Err(Error::Cluster(format!("unexpected answer to a savepoint request: {other:?}"))),
    }
}

/// Why the coordinator could not be reached.
enum DialError {
    /// The membership handshake refused this worker (another job, a wrong
    /// or missing token): trying again cannot help.
    Refused(String),
    /// Anything else (not up yet, moved, network): try again.
    Other(Error),
}

fn dial_coordinator(opts: &WorkerOptions) -> std::result::Result<Link, DialError> {
    let cfg = LinkConfig::new(HandshakeConfig {
        identity: Identity { job: opts.job.clone(), graph_hash: 0, generation: 0 },
        token: opts.token.clone(),
        timeout: Duration::from_secs(10),
    });
    let at = &opts.coordinator;
    Link::dial_name(at, &cfg, Arc::new(NetMetrics::default())).map_err(|e| match e {
        NetError::Refused { reason, peer, .. } => {
            DialError::Refused(format!("the coordinator at {at} ({peer}): {reason}"))
        }
        e => DialError::Other(Error::Cluster(format!("the coordinator at {at}: {e}"))),
    })
}

/// Serves one connection to the coordinator; true when the job finished.
fn serve(
    opts: &WorkerOptions,
    listener: &TcpListener,
    data_addr: &str,
    link: &Link,
    build: BuildJob<'_>,
) -> Result<bool> {
    let (tx, rx) = worker_end(link)?;
    let (events_tx, events) = crossbeam_channel::unbounded();
    rx.forward((), events_tx)?;
    tx.send(ToCoord::Hello { slot: opts.slot, data_addr: data_addr.to_owned() })?;
    // Between deployments the worker still reports (no generation, its
    // counters so far): the coordinator's health view and totals stay current.
    let idle_stats = || {
        opts.liveness.beat();
        ToCoord::Stats { report: super::view::WorkerReport::of(&opts.metrics, 0, opts.http.clone()) }
    };
    tx.send(idle_stats())?;
    loop {
        let msg = match events.recv_timeout(super::view::REPORT_EVERY) {
            Ok(((), msg)) => msg,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                tx.send(idle_stats())?;
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(Error::Cluster("control link ended".into()));
            }
        };
        match msg? {
            ToWorker::Deploy(d) => match deployment(opts, listener, &tx, &events, d, build)? {
                Ended::Finished => return Ok(true),
                Ended::Stopped => {}
            },
            ToWorker::Refuse { reason } => return Err(Error::ClusterRefused(reason)),
            ToWorker::Stop { finished: true, .. } => return Ok(true),
            other => tracing::debug!(?other, "control message outside a deployment ignored"),
        }
    }
}

/// The links to the other live workers: dials the higher slots, accepts
/// the lower ones (each names its slot first).
fn data_links(
    opts: &WorkerOptions,
    listener: &TcpListener,
    d: &Deploy,
    metrics: &Arc<NetMetrics>,
) -> Result<BTreeMap<u16, Arc<Link>>> {
    let cfg = LinkConfig::new(HandshakeConfig {
        identity: Identity { job: opts.job.clone(), graph_hash: d.graph_hash, generation: d.generation },
        token: opts.token.clone(),
        timeout: Duration::from_secs(10),
    });
    let net = |e: crate::net::NetError| Error::Cluster(e.to_string());
    let mut links = BTreeMap::new();
    for (slot, addr) in d.slots.iter().filter(|(s, _)| *s > opts.slot) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let link = loop {
            // Resolved at every attempt: the slot's task may be restarting
            // and come back at another address.
            match Link::dial_name(addr, &cfg, metrics.clone()) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(slot, error = %e, "dialing worker");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(Error::Cluster(format!("worker {slot} at {addr}: {e}"))),
            }
        };
        link.outbox::<u16>(SLOT)
            .map_err(net)?
            .send(&Message::Data(vec![Record { ts: 0, wm: 0, value: opts.slot }]))
            .map_err(net)?;
        links.insert(*slot, Arc::new(link));
    }
    let lower: BTreeSet<u16> = d.slots.iter().map(|(s, _)| *s).filter(|s| *s < opts.slot).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    listener.set_nonblocking(true).map_err(|e| Error::io(data_addr_of(listener), e))?;
    while links.len() < d.slots.len() - 1 {
        if Instant::now() > deadline {
            return Err(Error::Cluster("timed out waiting for the other workers' links".into()));
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => return Err(Error::io(data_addr_of(listener), e)),
        };
        let _ = stream.set_nonblocking(false);
        let link = match Link::accept(stream, &cfg, metrics.clone()) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "data link refused");
                continue;
            }
        };
        let mut inbox = link.inbox::<u16>(SLOT, 1).map_err(net)?;
        let slot = match inbox.recv_timeout(Duration::from_secs(10)).map_err(net)? {
            Some(Message::Data(recs)) => recs.first().map(|r| r.value),
            _ => None,
        };
        match slot {
            Some(s) if lower.contains(&s) && !links.contains_key(&s) => {
                links.insert(s, Arc::new(link));
            }
            other => tracing::warn!(?other, "data link from an unexpected slot dropped"),
        }
    }
    Ok(links)
}

fn data_addr_of(listener: &TcpListener) -> String {
    listener.local_addr().map_or_else(|_| "listener".into(), |a| a.to_string())
}

/// Prepares this node's state for `config` in deployment `d`: a directory
/// per generation holding this slot's key groups of the checkpoint to
/// restore. When the previous generation's directory is at exactly that
/// checkpoint and this slot keeps the same key groups, it is taken over
/// as it is (task-local recovery: nothing is downloaded); otherwise the
/// key groups are loaded from the checkpoint store into a fresh one.
fn prepare(opts: &WorkerOptions, d: &Deploy, mut config: crate::JobConfig, mut wiring: Wiring) -> Result<Env> {
    wiring.mirror = Some(MirrorSpec { url: d.store_url.clone(), job: config.name.clone(), generation: d.generation });
    let slots: Vec<u16> = d.slots.iter().map(|(s, _)| *s).collect();
    let p = config.parallelism;
    let ranges: Vec<std::ops::Range<u16>> = (0..p)
        .filter(|i| placement(&slots, TaskId::new(0, *i)) == opts.slot)
        .map(|i| group_range(i, config.key_groups, p))
        .collect();
    let assignment = format!("key groups {} parallelism {p} ranges {ranges:?}", config.key_groups);
    let dir = opts.state_dir.join(format!("g{:020}", d.generation));
    let reused = d.restore.is_some_and(|epoch| take_over(opts, d, &dir, &assignment, &config, epoch));
    if let Ok(entries) = std::fs::read_dir(&opts.state_dir) {
        for e in entries.flatten() {
            let path = e.path();
            if generation_dir(&path).is_none() || path == dir {
                continue;
            }
            let gone = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            gone.map_err(|err| Error::io(&path, err))?;
        }
    }
    let marker = opts.state_dir.join(format!("g{:020}.assignment", d.generation));
    std::fs::write(&marker, &assignment).map_err(|e| Error::io(&marker, e))?;
    config.state_dir = Some(dir);
    config.restore_checkpoint = None;
    match d.restore {
        Some(epoch) if reused => {
            tracing::info!(epoch, slot = opts.slot, "task-local recovery: this node's state is at the checkpoint");
        }
        Some(epoch) => {
            let store = CheckpointStore::open(&d.store_url, &config.name)?;
            let (local, _) = open_state(&config)?;
            // Written into the local store as read, one stored object at a
            // time: the worker never holds its whole state.
            let groups = ranges.iter().filter_map(|r| KeyGroups::new(r.start, r.end.saturating_sub(1)));
            for groups in std::iter::once(KeyGroups::one(OPERATOR_GROUP)).chain(groups) {
                store.restore_into(groups, epoch, |writes| {
                    local.load_restored(writes.into_iter().map(|e| (e.key, e.value)).collect())
                })?;
            }
            local.mark_complete(epoch, false)?;
            tracing::info!(epoch, slot = opts.slot, "restored this slot's key groups from the checkpoint store");
        }
        None => {}
    }
    Env::create(config, Some(wiring))
}

/// The generation of a directory `g<20 digits>` (or its `.assignment`
/// file) under a worker's state directory.
fn generation_dir(path: &std::path::Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_prefix('g')?;
    let digits = digits.strip_suffix(".assignment").unwrap_or(digits);
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Moves the newest earlier generation's directory to `dir` if it holds
/// exactly checkpoint `epoch` of the same key groups, or holds it staged
/// and uploaded by this node (it stopped between its upload and the
/// commit's notification; the epoch is completed locally first); any doubt
/// (another assignment, another epoch, a directory that does not open)
/// says no.
fn take_over(
    opts: &WorkerOptions,
    d: &Deploy,
    dir: &std::path::Path,
    assignment: &str,
    config: &crate::JobConfig,
    epoch: u64,
) -> bool {
    let Ok(entries) = std::fs::read_dir(&opts.state_dir) else { return false };
    let newest = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p != dir)
        .filter_map(|p| generation_dir(&p).map(|g| (g, p)))
        .max_by_key(|(g, _)| *g);
    let Some((g, prev)) = newest else { return false };
    let marker = opts.state_dir.join(format!("g{g:020}.assignment"));
    if std::fs::read_to_string(marker).ok().as_deref() != Some(assignment) {
        return false;
    }
    // The checkpoint's generation: this node may have uploaded its part of
    // it and stopped before it heard of the commit.
    let committed = CheckpointStore::open(&d.store_url, &config.name).and_then(|s| s.epoch_meta(epoch));
    let Ok(meta) = committed else { return false };
    let mut probe = config.clone();
    probe.state_dir = Some(prev.clone());
    let at = match open_state_then(&probe, |s| s.complete_uploaded(meta.generation, epoch).map(drop)) {
        Ok((store, recovered)) => {
            drop(store);
            recovered.complete
        }
        Err(e) => {
            tracing::info!(error = %e, "the previous generation's state is not reusable");
            return false;
        }
    };
    at == Some(epoch) && std::fs::rename(&prev, dir).is_ok()
}

/// Runs deployment `d` until the coordinator ends it.
fn deployment(
    opts: &WorkerOptions,
    listener: &TcpListener,
    ctl: &CtlTx<ToCoord>,
    events: &Receiver<((), Result<ToWorker>)>,
    d: Deploy,
    build: BuildJob<'_>,
) -> Result<Ended> {
    let g = d.generation;
    let net = Arc::new(NetMetrics::default());
    let links = match data_links(opts, listener, &d, &net) {
        Ok(l) => l,
        Err(e) => {
            ctl.send(ToCoord::Refused { generation: g, reason: e.to_string(), fatal: false })?;
            return Ok(Ended::Stopped);
        }
    };
    let slots: Vec<u16> = d.slots.iter().map(|(s, _)| *s).collect();
    let mut wiring = Wiring::new(Some(opts.slot), slots, links, 16);
    opts.metrics.clear_tasks();
    wiring.metrics = Some(opts.metrics.clone());
    let built = build(&d.args, EnvMaker::new(|config| prepare(opts, &d, config, wiring)))
        .map_err(Error::Cluster)
        .and_then(Env::build);
    let built = match built {
        Ok(b) => b,
        Err(e) => {
            ctl.send(ToCoord::Refused { generation: g, reason: e.to_string(), fatal: false })?;
            return Ok(Ended::Stopped);
        }
    };
    let ids: Vec<_> = built.tasks.iter().map(|t| (t.id, t.name.clone(), t.source)).collect();
    let hash = graph_hash(&ids, built.config.key_groups, built.config.parallelism);
    if hash != d.graph_hash {
        let reason = format!(
            "this worker builds another job graph (hash {hash:#018x}, the coordinator's {:#018x}): a different binary or job",
            d.graph_hash
        );
        ctl.send(ToCoord::Refused { generation: g, reason: reason.clone(), fatal: true })?;
        return Err(Error::ClusterRefused(reason));
    }
    ctl.send(ToCoord::Ready { generation: g, graph_hash: hash })?;
    loop {
        opts.liveness.beat();
        let ((), msg) = match events.recv_timeout(super::view::REPORT_EVERY) {
            Ok(m) => m,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(Error::Cluster("control link ended".into()))
            }
        };
        match msg? {
            ToWorker::Start { generation } if generation == g => break,
            ToWorker::Stop { finished, .. } => return Ok(if finished { Ended::Finished } else { Ended::Stopped }),
            other => tracing::debug!(?other, "ignored while waiting to start"),
        }
    }
    Running::start(opts, ctl, built, g, &d.store_url, net)?.run(events)
}

/// A deployment's tasks at work.
struct Running<'a> {
    slot: u16,
    metrics: Arc<crate::metrics::Metrics>,
    http: Option<String>,
    liveness: Arc<super::Liveness>,
    ctl: &'a CtlTx<ToCoord>,
    generation: u64,
    built_store: Arc<Store>,
    cstore: CheckpointStore,
    handle: crate::checkpoint::CoordHandle,
    reports: Receiver<ToCoordinator>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Keeps the data links up while the tasks run.
    wiring: Option<Wiring>,
    /// What the data links carried.
    net: Arc<NetMetrics>,
    live: BTreeSet<TaskId>,
    acked: BTreeMap<u64, BTreeSet<TaskId>>,
    /// Reports in order; an ack waits here until its epoch is uploaded.
    queue: VecDeque<ToCoordinator>,
    uploaded: u64,
}

impl<'a> Running<'a> {
    fn start(
        opts: &WorkerOptions,
        ctl: &'a CtlTx<ToCoord>,
        built: Built,
        generation: u64,
        url: &str,
        net: Arc<NetMetrics>,
    ) -> Result<Self> {
        let Built { coord, tasks, handle, store, cluster, recovered, config, .. } = built;
        let store = store.ok_or_else(|| Error::Cluster("a worker needs a state directory".into()))?;
        let cstore = CheckpointStore::open(url, &config.name)?;
        let wiring = cluster.ok_or_else(|| Error::Cluster("a worker needs its wiring".into()))?;
        let live: BTreeSet<TaskId> = tasks.iter().filter(|t| wiring.is_local(t.id)).map(|t| t.id).collect();
        let reports = coord.into_reports();
        let threads = start_tasks(tasks, &handle)?;
        tracing::info!(slot = opts.slot, generation, tasks = live.len(), resumed_from = ?recovered.complete, "deployment running");
        Ok(Running {
            slot: opts.slot,
            metrics: opts.metrics.clone(),
            http: opts.http.clone(),
            liveness: opts.liveness.clone(),
            ctl,
            generation,
            built_store: store,
            cstore,
            handle,
            reports,
            threads,
            wiring: Some(wiring),
            net,
            live,
            acked: BTreeMap::new(),
            queue: VecDeque::new(),
            uploaded: recovered.complete.unwrap_or(0),
        })
    }

    fn run(mut self, events: &Receiver<((), Result<ToWorker>)>) -> Result<Ended> {
        let outcome = self.serve(events);
        self.stop();
        outcome
    }

    fn serve(&mut self, events: &Receiver<((), Result<ToWorker>)>) -> Result<Ended> {
        let g = Generation(self.generation);
        let ticks = crossbeam_channel::tick(super::view::REPORT_EVERY);
        self.send_stats()?;
        loop {
            select! {
                recv(ticks) -> _ => self.send_stats()?,
                recv(self.reports) -> r => {
                    let Ok(r) = r else { continue };
                    self.local_report(r)?;
                }
                recv(events) -> m => {
                    let ((), m) = m.map_err(|_| Error::Cluster("control link ended".into()))?;
                    match m? {
                        ToWorker::Trigger { generation, epoch } if generation == self.generation => {
                            self.handle.deliver(ToTask::Trigger { generation: g, epoch });
                        }
                        ToWorker::Complete { generation, epoch, pinned } if generation == self.generation => {
                            self.handle.set_pinned(pinned);
                            let s = &self.built_store;
                            s.mark_complete(epoch, false)?;
                            s.seal_checkpoint(epoch)?;
                            s.apply_epoch(epoch)?;
                            s.drop_outbox_through(epoch)?;
                            self.handle.deliver(ToTask::Complete { generation: g, epoch });
                        }
                        ToWorker::Stop { finished, .. } => {
                            return Ok(if finished { Ended::Finished } else { Ended::Stopped });
                        }
                        other => tracing::debug!(?other, "control message ignored"),
                    }
                }
            }
        }
    }

    /// Tells the coordinator this worker's counters.
    fn send_stats(&self) -> Result<()> {
        self.liveness.beat();
        let report = super::view::WorkerReport::of(&self.metrics, self.generation, self.http.clone());
        self.ctl.send(ToCoord::Stats { report })
    }

    fn local_report(&mut self, r: ToCoordinator) -> Result<()> {
        let r = r.in_generation(Generation(self.generation));
        match &r {
            ToCoordinator::Ack(a) => {
                self.acked.entry(a.epoch).or_default().insert(a.task);
                self.queue.push_back(r);
            }
            ToCoordinator::Done { task, .. } => {
                self.live.remove(task);
                self.queue.push_back(r);
            }
            ToCoordinator::Failed { .. } | ToCoordinator::Want { .. } | ToCoordinator::FinalWanted { .. } => {
                self.ctl.send(ToCoord::Report { generation: self.generation, report: r })?;
            }
        }
        if let Err(e) = self.upload_ready() {
            // The coordinator fails the generation and starts the next one
            // from the latest checkpoint (after waiting out a store outage).
            let task = self.live.first().copied().unwrap_or(TaskId::new(0, 0));
            let reason = format!("worker {}: uploading to the checkpoint store failed: {e}", self.slot);
            tracing::warn!("{reason}");
            let report = ToCoordinator::Failed { task, generation: Generation(self.generation), reason };
            return self.ctl.send(ToCoord::Report { generation: self.generation, report });
        }
        self.flush()
    }

    /// Uploads every epoch all live local tasks have staged.
    fn upload_ready(&mut self) -> Result<()> {
        while let Some((&epoch, tasks)) = self.acked.first_key_value() {
            if !self.live.iter().all(|t| tasks.contains(t)) {
                return Ok(());
            }
            self.acked.remove(&epoch);
            self.upload(epoch)?;
            self.built_store.mark_uploaded(self.generation, epoch)?;
            self.uploaded = self.uploaded.max(epoch);
        }
        Ok(())
    }

    fn upload(&mut self, epoch: u64) -> Result<()> {
        let g = self.generation;
        let mut deltas: Vec<DeltaRef> = Vec::new();
        // One object per part: a worker holds one part of its delta at a
        // time, not the whole epoch.
        self.built_store.staged_parts(epoch, DELTA_PART_BYTES, |part| {
            let entries: Vec<Entry> = part.into_iter().map(|(key, value)| Entry { key, value }).collect();
            // In key order, so the first and last keys bound its key groups.
            let first = entries.first().and_then(Entry::key_group);
            let last = entries.last().and_then(Entry::key_group);
            if let Some(range) = first.zip(last).and_then(|(first, last)| KeyGroups::new(first, last)) {
                deltas.push(self.cstore.put_delta_part(g, epoch, range, self.slot, &entries)?);
            }
            Ok(())
        })?;
        let mut outputs: Vec<OutputRef> = Vec::new();
        for (sink, bytes) in self.built_store.outbox_of(epoch)? {
            outputs.push(self.cstore.put_output(g, epoch, sink, self.slot, &bytes)?);
        }
        self.ctl.send(ToCoord::Uploaded { generation: g, epoch, deltas, outputs })
    }

    /// Sends queued reports up to the first ack of an epoch not uploaded.
    fn flush(&mut self) -> Result<()> {
        while let Some(r) = self.queue.front() {
            if let ToCoordinator::Ack(a) = r {
                if a.epoch > self.uploaded {
                    return Ok(());
                }
            }
            if let Some(r) = self.queue.pop_front() {
                self.ctl.send(ToCoord::Report { generation: self.generation, report: r })?;
            }
        }
        Ok(())
    }

    /// Stops the tasks: the stop flag for sources, the links closed for
    /// tasks waiting on the network; waits for every thread.
    fn stop(&mut self) {
        // Nothing triggers or collects a final epoch once the serving loop
        // has ended: a stopped source that waited for one (as a single
        // process does) would hold the reconnect for its whole timeout.
        self.handle.abandoned.store(true, Ordering::Release);
        self.handle.stop.store(true, Ordering::Release);
        self.wiring = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        tracing::info!(
            slot = self.slot,
            generation = self.generation,
            bytes_sent = self.net.bytes_sent(),
            frames_sent = self.net.frames_sent(),
            "deployment stopped"
        );
    }
}
