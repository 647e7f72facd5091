//! Credit-based flow control, as in Flink's network stack.
//!
//! One TCP connection carries many edges, and a task aligning a barrier
//! stops reading some of its inputs. If the link's reader blocked on a full
//! inbox, every other edge behind it would stall (head-of-line blocking) and
//! the barrier the task waits for could never arrive: a deadlock. So the
//! reader never blocks. Instead the receiver of each edge grants the sender
//! credits, one per free inbox slot; every edge message (data, watermark,
//! barrier, end) spends one; the sender's `send` blocks while it holds none.
//! The inbox therefore always has room for what arrives, backpressure still
//! reaches the sending task across nodes, and memory per edge stays below
//! credits × [`super::frame::MAX_BODY`].
//!
//! The receiver returns credits as its task consumes messages, in bunches of
//! half the inbox (at least one) to save frames. That cannot starve the
//! sender: if the sender holds no credit and nothing is queued or in flight,
//! every slot is consumed-but-unreturned, which is at least the bunch size,
//! so it has been returned.

use super::error::NetError;
use std::sync::{Condvar, Mutex, PoisonError};

/// The sending side of one edge: the credits it holds.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<GateState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    credits: u32,
    ended: Option<NetError>,
}

impl Gate {
    /// The receiver granted `n` more messages.
    pub(crate) fn grant(&self, n: u32) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.credits = s.credits.saturating_add(n);
        self.cv.notify_all();
    }

    /// Takes one credit, blocking while there is none. Fails once the link
    /// has ended.
    pub(crate) fn acquire(&self) -> Result<(), NetError> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(e) = &s.ended {
                return Err(e.clone());
            }
            if s.credits > 0 {
                s.credits -= 1;
                return Ok(());
            }
            s = self.cv.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Credits held right now.
    pub(crate) fn available(&self) -> u32 {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).credits
    }

    /// The link ended: wake every blocked sender with `e`.
    pub(crate) fn end(&self, e: NetError) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.ended.is_none() {
            s.ended = Some(e);
        }
        self.cv.notify_all();
    }
}

/// The receiving side of one edge: consumed messages not yet returned as
/// credit.
#[derive(Debug)]
pub(crate) struct Returner {
    pending: u32,
    bunch: u32,
}

impl Returner {
    /// For an inbox of `capacity` slots.
    pub(crate) fn new(capacity: u32) -> Self {
        Returner { pending: 0, bunch: capacity.div_ceil(2).max(1) }
    }

    /// One message was consumed; returns the credits to send now, if any.
    pub(crate) fn consumed(&mut self) -> Option<u32> {
        self.pending += 1;
        if self.pending < self.bunch {
            return None;
        }
        Some(std::mem::take(&mut self.pending))
    }
}
