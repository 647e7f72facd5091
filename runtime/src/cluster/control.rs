//! The control plane: typed messages between the coordinator and a worker,
//! carried on the link between them (authenticated by the same handshake
//! as the data plane, with heartbeats: a silent peer is a lost one).

use crate::checkpoint::protocol::ToCoordinator;
use crate::checkpoint::store::{DeltaRef, OutputRef};
use crate::error::{Error, Result};
use crate::net::{EdgeId, Link, RemoteInbox, RemoteOutbox};
use crate::record::{Message, Record};
use crossbeam_channel::Sender;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::time::Duration;

/// Coordinator → worker on the control link.
const DOWN: EdgeId = EdgeId(0xffff_fffe);
/// Worker → coordinator on the control link.
const UP: EdgeId = EdgeId(0xffff_fffd);
/// On a data link, the dialing worker names its slot.
pub(crate) const SLOT: EdgeId = EdgeId(0xffff_fffc);
/// Control messages in flight per direction.
const CREDITS: u32 = 256;

/// A deployment of the job: what a worker needs to run its part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Deploy {
    pub(crate) generation: u64,
    /// Live slots and the data address each one listens on.
    pub(crate) slots: Vec<(u16, String)>,
    /// The checkpoint to restore (`None`: a fresh start).
    pub(crate) restore: Option<u64>,
    /// The job's arguments, as the coordinator was given them.
    pub(crate) args: Vec<String>,
    /// The job graph's hash as the coordinator built it.
    pub(crate) graph_hash: u64,
    /// The checkpoint store's URL.
    pub(crate) store_url: String,
}

/// Coordinator → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    Deploy(Deploy),
    /// Every worker is ready: start the tasks.
    Start {
        generation: u64,
    },
    Trigger {
        generation: u64,
        epoch: u64,
    },
    Complete {
        generation: u64,
        epoch: u64,
        /// The oldest checkpoint a savepoint pins: sources keep their input
        /// from its positions on.
        pinned: Option<u64>,
    },
    /// The generation ends: stop its tasks (`finished`: the job is done,
    /// exit).
    Stop {
        generation: u64,
        finished: bool,
    },
    /// This worker cannot take part (wrong slot, another job, ...).
    Refuse {
        reason: String,
    },
    /// A savepoint was written: the checkpoint it copies.
    SavepointDone {
        epoch: u64,
    },
    /// A savepoint could not be written.
    SavepointFailed {
        reason: String,
    },
}

/// Worker → coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ToCoord {
    /// First message: the worker's slot and where it listens for data links.
    Hello { slot: u16, data_addr: String },
    /// First message of a savepoint client: write one to this store URL.
    Savepoint { to: String },
    /// Built and linked: waiting for `Start`.
    Ready { generation: u64, graph_hash: u64 },
    /// Could not deploy; `fatal` when it never will (its job graph
    /// differs: another binary), and leaves.
    Refused { generation: u64, reason: String, fatal: bool },
    /// What the worker uploaded for an epoch (sent before the acks of it).
    Uploaded { generation: u64, epoch: u64, deltas: Vec<DeltaRef>, outputs: Vec<OutputRef> },
    /// A task's checkpoint report.
    Report { generation: u64, report: ToCoordinator },
    /// The worker's counters (records in and out per task, watermarks,
    /// state, backpressure, memory), every [`super::view::REPORT_EVERY`]
    /// while a deployment runs; also what the coordinator's health view
    /// hears as the worker's heartbeat.
    Stats { report: super::view::WorkerReport },
}

/// The sending half of a control link.
pub(crate) struct CtlTx<S> {
    out: RemoteOutbox<S>,
}

/// The receiving half of a control link.
pub(crate) struct CtlRx<R> {
    inbox: RemoteInbox<R>,
    peer: String,
}

fn net(e: crate::net::NetError) -> Error {
    Error::Cluster(e.to_string())
}

impl<S: Serialize> CtlTx<S> {
    pub(crate) fn send(&self, msg: S) -> Result<()> {
        self.out.send(&Message::Data(vec![Record { ts: 0, wm: 0, value: msg }])).map_err(net)
    }
}

impl<R: DeserializeOwned> CtlRx<R> {
    /// The next message; `Ok(None)` after `wait` without one; an error when
    /// the link ended.
    pub(crate) fn recv_timeout(&mut self, wait: Duration) -> Result<Option<R>> {
        match self.inbox.recv_timeout(wait).map_err(net)? {
            None => Ok(None),
            Some(Message::Data(mut recs)) if recs.len() == 1 => Ok(recs.pop().map(|r| r.value)),
            Some(_) => Err(Error::Cluster(format!("{}: unexpected control frame", self.peer))),
        }
    }

    /// Forwards every message (and finally the error that ended the link)
    /// to `to`, tagged with `tag`, from a thread of its own.
    pub(crate) fn forward<Tag: Copy + Send + 'static>(mut self, tag: Tag, to: Sender<(Tag, Result<R>)>) -> Result<()>
    where
        R: Send + 'static,
    {
        std::thread::Builder::new()
            .name(format!("control {}", self.peer))
            .spawn(move || loop {
                match self.recv_timeout(Duration::from_secs(3600)) {
                    Ok(None) => {}
                    Ok(Some(m)) => {
                        if to.send((tag, Ok(m))).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = to.send((tag, Err(e)));
                        return;
                    }
                }
            })
            .map(drop)
            .map_err(|e| Error::io("<thread>", e))
    }
}

fn split<S: Serialize, R: DeserializeOwned>(link: &Link, out: EdgeId, inbox: EdgeId) -> Result<(CtlTx<S>, CtlRx<R>)> {
    let out = link.outbox(out).map_err(net)?;
    let inbox = link.inbox(inbox, CREDITS).map_err(net)?;
    Ok((CtlTx { out }, CtlRx { inbox, peer: link.peer().to_owned() }))
}

/// The coordinator's halves of a control link.
pub(crate) fn coordinator_end(link: &Link) -> Result<(CtlTx<ToWorker>, CtlRx<ToCoord>)> {
    split(link, DOWN, UP)
}

/// A worker's halves of a control link.
pub(crate) fn worker_end(link: &Link) -> Result<(CtlTx<ToCoord>, CtlRx<ToWorker>)> {
    split(link, UP, DOWN)
}
