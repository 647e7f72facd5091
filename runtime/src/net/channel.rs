//! The ends of an edge as operator code sees them: the same types whether
//! the other end is in this process or on another node.

use super::credit::{Gate, Returner};
use super::edge::EdgeId;
use super::error::NetError;
use super::frame::{self, Frame, Kind};
use super::link::Shared;
use crate::record::Message;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// The sending end of an edge to another node.
pub struct RemoteOutbox<T> {
    edge: EdgeId,
    gate: Arc<Gate>,
    link: Arc<Shared>,
    _t: PhantomData<fn(T)>,
}

impl<T: Serialize> RemoteOutbox<T> {
    pub(crate) fn new(edge: EdgeId, gate: Arc<Gate>, link: Arc<Shared>) -> Self {
        RemoteOutbox { edge, gate, link, _t: PhantomData }
    }

    /// Encodes `msg` and queues it once the receiver granted credit:
    /// blocks while it has none (backpressure across nodes). Fails when the
    /// link has ended or the batch encodes beyond [`frame::MAX_BODY`].
    pub fn send(&self, msg: &Message<T>) -> Result<(), NetError> {
        let buf = frame::encode_message(msg, self.edge.0, self.link.generation)?;
        self.gate.acquire()?;
        self.link.push(buf)
    }

    /// Credits held right now (messages that may be sent without blocking).
    pub fn credits(&self) -> u32 {
        self.gate.available()
    }

    /// The edge.
    pub fn edge(&self) -> EdgeId {
        self.edge
    }
}

/// The receiving end of an edge from another node.
pub struct RemoteInbox<T> {
    edge: EdgeId,
    rx: Receiver<Frame>,
    credit: Returner,
    link: Arc<Shared>,
    _t: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> RemoteInbox<T> {
    pub(crate) fn new(edge: EdgeId, rx: Receiver<Frame>, credits: u32, link: Arc<Shared>) -> Self {
        RemoteInbox { edge, rx, credit: Returner::new(credits), link, _t: PhantomData }
    }

    /// The next message, blocking. A link failure is returned at once, even
    /// with messages still queued; after a graceful close the queued
    /// messages come first.
    pub fn recv(&mut self) -> Result<Message<T>, NetError> {
        if let Some(e) = self.link.failure() {
            return Err(e);
        }
        match self.rx.recv() {
            Ok(f) => self.take(&f),
            Err(_) => Err(self.link.end_reason()),
        }
    }

    /// Like [`RemoteInbox::recv`], but `Ok(None)` after `wait` with nothing.
    pub fn recv_timeout(&mut self, wait: Duration) -> Result<Option<Message<T>>, NetError> {
        if let Some(e) = self.link.failure() {
            return Err(e);
        }
        match self.rx.recv_timeout(wait) {
            Ok(f) => self.take(&f).map(Some),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(self.link.end_reason()),
        }
    }

    fn take(&mut self, f: &Frame) -> Result<Message<T>, NetError> {
        if let Some(n) = self.credit.consumed() {
            let grant = frame::encode(Kind::Credit, self.edge.0, self.link.generation, &n)?;
            self.link.push(grant)?;
        }
        frame::decode_message(f, &self.link.peer)
    }

    /// The edge.
    pub fn edge(&self) -> EdgeId {
        self.edge
    }
}

/// The sending end of an edge, local or remote.
pub enum Outbox<T> {
    /// To a task in this process.
    Local(Sender<Message<T>>),
    /// To a task on another node.
    Remote(RemoteOutbox<T>),
}

impl<T: Serialize> Outbox<T> {
    /// Sends one message, blocking while the receiver has no room.
    pub fn send(&self, msg: Message<T>) -> Result<(), NetError> {
        match self {
            Outbox::Local(tx) => tx.send(msg).map_err(|_| NetError::LocalGone),
            Outbox::Remote(r) => r.send(&msg),
        }
    }
}

/// The receiving end of an edge, local or remote.
pub enum Inbox<T> {
    /// From a task in this process.
    Local(Receiver<Message<T>>),
    /// From a task on another node.
    Remote(RemoteInbox<T>),
}

impl<T: DeserializeOwned> Inbox<T> {
    /// The next message, blocking; an error when the sender is gone
    /// without `End` or the link failed.
    pub fn recv(&mut self) -> Result<Message<T>, NetError> {
        match self {
            Inbox::Local(rx) => rx.recv().map_err(|_| NetError::LocalGone),
            Inbox::Remote(r) => r.recv(),
        }
    }

    /// Like [`Inbox::recv`], but `Ok(None)` after `wait` with nothing.
    pub fn recv_timeout(&mut self, wait: Duration) -> Result<Option<Message<T>>, NetError> {
        match self {
            Inbox::Local(rx) => match rx.recv_timeout(wait) {
                Ok(m) => Ok(Some(m)),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected) => Err(NetError::LocalGone),
            },
            Inbox::Remote(r) => r.recv_timeout(wait),
        }
    }
}
