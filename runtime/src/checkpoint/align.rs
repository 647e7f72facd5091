//! Reading a task's inputs: barrier alignment and the minimum watermark.

use crate::record::Message;
use crossbeam_channel::{Receiver, RecvTimeoutError, Select};
use std::time::Instant;

/// What the task should do next.
pub(crate) enum Event<T> {
    /// Records from one input, their watermarks already lowered to what the
    /// other inputs allow.
    Data(Vec<crate::record::Record<T>>),
    /// The task's watermark advanced.
    Watermark(i64),
    /// Every live input delivered this barrier.
    Barrier { epoch: u64, last: bool },
    /// Every input ended.
    End,
    /// An input's sender vanished without `End`: upstream failed.
    Broken,
    /// The deadline given to [`Inputs::next`] passed with nothing to read.
    Deadline,
}

/// A task's inputs. A barrier blocks its input until the same barrier has
/// arrived on every other live input (exactly-once alignment).
pub(crate) struct Inputs<T> {
    rx: Vec<Receiver<Message<T>>>,
    wm: Vec<i64>,
    ended: Vec<bool>,
    idle: Vec<bool>,
    blocked: Vec<bool>,
    pending: Option<(u64, bool)>,
    emitted_wm: i64,
}

impl<T> Inputs<T> {
    pub(crate) fn new(rx: Vec<Receiver<Message<T>>>) -> Self {
        let n = rx.len();
        Self {
            rx,
            wm: vec![i64::MIN; n],
            ended: vec![false; n],
            idle: vec![false; n],
            blocked: vec![false; n],
            pending: None,
            emitted_wm: i64::MIN,
        }
    }

    fn min_wm_except(&self, skip: usize) -> i64 {
        let mut m = i64::MAX;
        for (i, &w) in self.wm.iter().enumerate() {
            if i != skip && !self.ended[i] && !self.idle[i] {
                m = m.min(w);
            }
        }
        m
    }

    fn aligned(&self) -> bool {
        (0..self.rx.len()).all(|i| self.ended[i] || self.blocked[i])
    }

    /// Blocks for the next event, or until `deadline` (when given).
    pub(crate) fn next(&mut self, deadline: Option<Instant>) -> Event<T> {
        loop {
            if let Some((epoch, last)) = self.pending {
                if self.aligned() {
                    self.pending = None;
                    self.blocked.iter_mut().for_each(|b| *b = false);
                    return Event::Barrier { epoch, last };
                }
            }
            if self.ended.iter().all(|&e| e) {
                return Event::End;
            }
            let (i, msg) = if self.rx.len() == 1 {
                match deadline {
                    None => (0, self.rx[0].recv()),
                    Some(d) => match self.rx[0].recv_deadline(d) {
                        Ok(m) => (0, Ok(m)),
                        Err(RecvTimeoutError::Timeout) => return Event::Deadline,
                        Err(RecvTimeoutError::Disconnected) => return Event::Broken,
                    },
                }
            } else {
                let mut sel = Select::new();
                let mut idx = Vec::with_capacity(self.rx.len());
                for (i, r) in self.rx.iter().enumerate() {
                    if !self.ended[i] && !self.blocked[i] {
                        sel.recv(r);
                        idx.push(i);
                    }
                }
                let op = match deadline {
                    None => sel.select(),
                    Some(d) => match sel.select_deadline(d) {
                        Ok(op) => op,
                        Err(_) => return Event::Deadline,
                    },
                };
                let i = idx[op.index()];
                let m = op.recv(&self.rx[i]);
                (i, m)
            };
            let Ok(msg) = msg else { return Event::Broken };
            match msg {
                Message::Data(mut recs) => {
                    self.idle[i] = false;
                    if self.rx.len() > 1 {
                        let others = self.min_wm_except(i);
                        for r in &mut recs {
                            r.wm = r.wm.min(others);
                        }
                    }
                    return Event::Data(recs);
                }
                Message::Watermark(w) if w == crate::time::IDLE_MARK => {
                    self.idle[i] = true;
                    if let Some(e) = self.advance() {
                        return e;
                    }
                }
                Message::Watermark(w) => {
                    self.idle[i] = false;
                    if w > self.wm[i] {
                        self.wm[i] = w;
                    }
                    if let Some(e) = self.advance() {
                        return e;
                    }
                }
                Message::Barrier { epoch, last } => {
                    self.blocked[i] = true;
                    self.pending = Some((epoch, last || self.pending.is_some_and(|p| p.1)));
                }
                Message::End => {
                    self.ended[i] = true;
                    self.wm[i] = i64::MAX;
                    if let Some(e) = self.advance() {
                        return e;
                    }
                }
            }
        }
    }

    fn advance(&mut self) -> Option<Event<T>> {
        // Every input idle: time stands still (Flink's rule). Every input
        // ended: nothing to add — a finished source sent its final
        // watermark itself, and a stopped one must not fire open windows
        // (they stay in the checkpoint for the next run).
        if (0..self.rx.len()).all(|i| self.ended[i] || self.idle[i]) {
            return None;
        }
        let m = self.min_wm_except(usize::MAX);
        if m > self.emitted_wm {
            self.emitted_wm = m;
            return Some(Event::Watermark(m));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;

    fn wm<T>(e: Event<T>) -> Option<i64> {
        match e {
            Event::Watermark(w) => Some(w),
            _ => None,
        }
    }

    #[test]
    fn watermark_is_the_minimum_and_idle_inputs_do_not_hold_it_back() {
        let (a, ra) = crossbeam_channel::unbounded::<Message<u8>>();
        let (b, rb) = crossbeam_channel::unbounded::<Message<u8>>();
        let mut inputs = Inputs::new(vec![ra, rb]);
        a.send(Message::Watermark(100)).unwrap();
        b.send(Message::Watermark(50)).unwrap();
        assert_eq!(wm(inputs.next(None)), Some(50));
        b.send(Message::Watermark(crate::time::IDLE_MARK)).unwrap();
        assert_eq!(wm(inputs.next(None)), Some(100), "idle input left out of the minimum");
        // Data from the idle input makes it count again; its records see
        // the other input's watermark as a bound.
        b.send(Message::Data(vec![Record { ts: 60, wm: 55, value: 1 }])).unwrap();
        match inputs.next(None) {
            Event::Data(r) => assert_eq!(r[0].wm, 55),
            _ => panic!("expected data"),
        }
        // Regression: inputs ending (e.g. a stopped job) are no final
        // watermark; that comes from the sources in-band.
        a.send(Message::End).unwrap();
        b.send(Message::End).unwrap();
        assert!(matches!(inputs.next(None), Event::End));
    }

    #[test]
    fn barriers_align_across_inputs() {
        let (a, ra) = crossbeam_channel::unbounded::<Message<u8>>();
        let (b, rb) = crossbeam_channel::unbounded::<Message<u8>>();
        let mut inputs = Inputs::new(vec![ra, rb]);
        a.send(Message::Barrier { epoch: 1, last: false }).unwrap();
        // Records behind the barrier on input a must wait for b's barrier.
        a.send(Message::Data(vec![Record { ts: 1, wm: 0, value: 9 }])).unwrap();
        b.send(Message::Data(vec![Record { ts: 1, wm: 0, value: 7 }])).unwrap();
        b.send(Message::Barrier { epoch: 1, last: false }).unwrap();
        match inputs.next(None) {
            Event::Data(r) => assert_eq!(r[0].value, 7, "b's pre-barrier data first"),
            _ => panic!("expected data"),
        }
        assert!(matches!(inputs.next(None), Event::Barrier { epoch: 1, .. }));
        match inputs.next(None) {
            Event::Data(r) => assert_eq!(r[0].value, 9),
            _ => panic!("expected data"),
        }
    }
}
