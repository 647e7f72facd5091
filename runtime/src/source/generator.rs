//! A deterministic generator: record `i` is a pure function of `i`, so a
//! restored generator continues with exactly the records it would have made.

use super::{Out, Poll, Source};
use crate::error::{Error, Result};
use crate::record::Record;
use std::time::Instant;

/// Generates `count` records (or forever) with `make(i)`, optionally paced
/// to a rate in records per second.
pub struct Generator<T, F> {
    make: F,
    next: u64,
    count: Option<u64>,
    rate: Option<f64>,
    started: Option<(Instant, u64)>,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T: Send + 'static, F: FnMut(u64) -> T + Send + 'static> Generator<T, F> {
    /// Records `make(0), make(1), ...`, `count` of them (`None`: unbounded).
    pub fn new(count: Option<u64>, make: F) -> Self {
        Self { make, next: 0, count, rate: None, started: None, _t: std::marker::PhantomData }
    }

    /// Paces output to about `per_second` records per second.
    pub fn with_rate(mut self, per_second: f64) -> Self {
        self.rate = (per_second > 0.0).then_some(per_second);
        self
    }
}

impl<T: Send + 'static, F: FnMut(u64) -> T + Send + 'static> Generator<T, F> {
    fn poll_into(&mut self, out: &mut impl Out<T>, max: usize) -> Result<Poll> {
        let mut n = max as u64;
        if let Some(c) = self.count {
            n = n.min(c.saturating_sub(self.next));
            if n == 0 {
                return Ok(Poll::End);
            }
        }
        if let Some(rate) = self.rate {
            let (t0, i0) = *self.started.get_or_insert((Instant::now(), self.next));
            let allowed = i0 + (t0.elapsed().as_secs_f64() * rate) as u64;
            n = n.min(allowed.saturating_sub(self.next));
            if n == 0 {
                return Ok(Poll::Pending);
            }
        }
        for _ in 0..n {
            out.put((self.make)(self.next));
            self.next += 1;
        }
        Ok(Poll::Ready)
    }
}

impl<T: Send + 'static, F: FnMut(u64) -> T + Send + 'static> Source for Generator<T, F> {
    type Item = T;

    fn poll_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<Poll> {
        self.poll_into(out, max)
    }

    fn poll_records(&mut self, out: &mut Vec<Record<T>>, max: usize) -> Result<Poll> {
        self.poll_into(out, max)
    }

    fn position(&self) -> Vec<u8> {
        self.next.to_le_bytes().to_vec()
    }

    fn restore(&mut self, position: &[u8]) -> Result<()> {
        let bytes: [u8; 8] = position.try_into().map_err(|_| Error::Corrupt {
            what: "generator position".into(),
            reason: format!("{} bytes, expected 8", position.len()),
        })?;
        self.next = u64::from_le_bytes(bytes);
        self.started = None;
        Ok(())
    }
}
