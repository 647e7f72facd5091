//! A source replayed at a bounded rate: a recorded file played back at
//! the speed it was recorded, or a demo that must not finish in a blink.

use super::{Out, Poll, Source, SourceContext};
use crate::error::Result;
use crate::metrics::SourceHealth;
use crate::record::Record;
use std::time::Instant;

/// Hands out at most `rate` records per second of wall time from the
/// source it wraps, counted from when it opens (or is restored). It is
/// behind when it has handed out fewer than `rate × elapsed`; ahead, it
/// reports [`Poll::Pending`] and the task waits. Positions, checkpoints
/// and malformed records are the inner source's.
pub struct Paced<S> {
    inner: S,
    rate: f64,
    start: Option<Instant>,
    handed: u64,
}

impl<S: Source> Paced<S> {
    /// Wraps `inner`, allowing `rate` records per second (finite, above 0).
    ///
    /// # Panics
    /// `rate` is not a finite number above zero (flags are checked first).
    pub fn new(inner: S, rate: f64) -> Self {
        assert!(rate.is_finite() && rate > 0.0, "rate {rate}");
        Paced { inner, rate, start: None, handed: 0 }
    }

    /// Polls the inner source with `poll` for no more than the pace allows.
    fn pace<O: Out<S::Item>>(
        &mut self,
        out: &mut O,
        max: usize,
        poll: impl FnOnce(&mut S, &mut O, usize) -> Result<Poll>,
    ) -> Result<Poll> {
        let allowed = self.allowed();
        if allowed == 0 {
            return Ok(Poll::Pending);
        }
        let before = out.count();
        let polled = poll(&mut self.inner, out, max.min(usize::try_from(allowed).unwrap_or(usize::MAX)))?;
        self.handed += (out.count() - before) as u64;
        Ok(polled)
    }

    /// Records the pace allows now, beyond those handed out so far.
    fn allowed(&mut self) -> u64 {
        let start = *self.start.get_or_insert_with(Instant::now);
        // At least one record at the start, so a slow pace starts at once.
        let due = (start.elapsed().as_secs_f64() * self.rate) as u64 + 1;
        due.saturating_sub(self.handed)
    }
}

impl<S: Source> Source for Paced<S> {
    type Item = S::Item;

    fn poll_batch(&mut self, out: &mut Vec<S::Item>, max: usize) -> Result<Poll> {
        self.pace(out, max, S::poll_batch)
    }

    fn poll_records(&mut self, out: &mut Vec<Record<S::Item>>, max: usize) -> Result<Poll> {
        self.pace(out, max, S::poll_records)
    }

    fn position(&self) -> Vec<u8> {
        self.inner.position()
    }

    fn prepare_checkpoint(&mut self) -> Result<()> {
        self.inner.prepare_checkpoint()
    }

    fn bad_records(&self) -> u64 {
        self.inner.bad_records()
    }

    fn health(&self) -> Option<SourceHealth> {
        self.inner.health()
    }

    fn restore(&mut self, position: &[u8]) -> Result<()> {
        self.start = None;
        self.handed = 0;
        self.inner.restore(position)
    }

    fn open(&mut self, ctx: &SourceContext) -> Result<()> {
        self.inner.open(ctx)
    }

    fn on_epoch_complete(&mut self, epoch: u64, position: &[u8], pinned: Option<u64>) -> Result<()> {
        self.inner.on_epoch_complete(epoch, position, pinned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Generator;
    use std::time::Duration;

    type Numbers = Paced<Generator<u64, fn(u64) -> u64>>;

    #[test]
    fn a_paced_source_hands_out_no_more_than_its_rate_allows() {
        paced_by(|s: &mut Numbers, out: &mut Vec<u64>, max| s.poll_batch(out, max).unwrap());
    }

    /// The same through `poll_records`, which the source task calls.
    #[test]
    fn paced_records_keep_the_same_pace() {
        paced_by(|s: &mut Numbers, out: &mut Vec<u64>, max| {
            let mut recs = Vec::new();
            let poll = s.poll_records(&mut recs, max).unwrap();
            out.extend(recs.into_iter().map(|r| r.value));
            poll
        });
    }

    // Guards the pace: a paced generator hands out about `rate × elapsed`
    // records (never more than one ahead), ends like the generator, and
    // counts again from a restore.
    fn paced_by(poll_batch: impl Fn(&mut Numbers, &mut Vec<u64>, usize) -> Poll) {
        let mut s: Numbers = Paced::new(Generator::new(Some(300), |i| i), 1000.0);
        let mut out = Vec::new();
        let start = Instant::now();
        let mut pending = 0;
        loop {
            let before = out.len();
            let poll = poll_batch(&mut s, &mut out, 64);
            let allowed = (start.elapsed().as_secs_f64() * 1000.0) as usize + 1;
            assert!(out.len() <= allowed, "{} records after {:?}", out.len(), start.elapsed());
            match poll {
                Poll::End => break,
                Poll::Pending => {
                    assert_eq!(out.len(), before, "nothing handed out with Pending");
                    pending += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Poll::Ready => {}
            }
        }
        assert_eq!(out, (0..300).collect::<Vec<u64>>());
        assert!(start.elapsed() >= Duration::from_millis(299), "{:?}", start.elapsed());
        assert!(pending > 0, "the pace never held the source back");
        // From a restore, the count starts again: one record at once.
        let at = s.position();
        s.restore(&at).unwrap();
        let mut again = Vec::new();
        assert_eq!(poll_batch(&mut s, &mut again, 64), Poll::End);
        assert!(again.is_empty());
    }
}
