//! The contract every source and sink must pass, as reusable checks.
//!
//! A source must hand out the same records however it is polled, and a
//! source restored to any position it reported must continue with exactly
//! the records after it. An output must, after `recover(record)`, hold
//! exactly what was published up to the epoch that produced `record` —
//! whatever was published after it is undone — and publishing again from
//! there must give the uninterrupted result.

use crate::error::Result;
use crate::sink::Output;
use crate::source::{Poll, Source};
use std::fmt::Debug;

/// Records read, and `(records so far, position)` after every poll.
pub type Drained<T> = (Vec<T>, Vec<(usize, Vec<u8>)>);

/// Reads `source` to its end in batches of `batch`, recording the position
/// after every batch.
///
/// # Errors
/// The source failed.
pub fn drain<S: Source>(source: &mut S, batch: usize) -> Result<Drained<S::Item>> {
    let mut items = Vec::new();
    let mut positions = vec![(0, source.position())];
    let mut idle = 0;
    loop {
        match source.poll_batch(&mut items, batch)? {
            Poll::End => return Ok((items, positions)),
            Poll::Pending => {
                idle += 1;
                assert!(idle < 10_000, "a bounded source under test kept answering Pending");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Poll::Ready => {}
        }
        positions.push((items.len(), source.position()));
    }
}

/// Checks the source contract on sources made by `make` (each call must
/// give a fresh source over the same input).
///
/// # Panics
/// When the contract is broken, with a message saying how.
///
/// # Errors
/// A source failed.
pub fn check_source<S: Source>(mut make: impl FnMut() -> Result<S>) -> Result<()>
where
    S::Item: PartialEq + Debug + Clone,
{
    let (all, _) = drain(&mut make()?, usize::MAX / 2)?;
    for batch in [1, 2, 7, 1000] {
        let (items, positions) = drain(&mut make()?, batch)?;
        assert_eq!(items, all, "batch size {batch} changed what the source produced");
        for (done, pos) in positions.iter().step_by((positions.len() / 25).max(1)) {
            let mut resumed = make()?;
            resumed.restore(pos)?;
            let (rest, _) = drain(&mut resumed, batch)?;
            assert_eq!(rest, all[*done..], "restore to the position after {done} records");
        }
    }
    Ok(())
}

/// Checks the output contract: `make` opens the destination afresh (as a
/// restarted process would), `read` returns what it holds now.
///
/// # Panics
/// When the contract is broken.
///
/// # Errors
/// The output failed.
pub fn check_output<O: Output>(mut make: impl FnMut() -> O, read: impl Fn() -> Vec<u8>) -> Result<()> {
    let mut o = make();
    o.recover(None)?;
    assert!(read().is_empty(), "a fresh output starts empty");
    o.publish(b"epoch-1 a\n")?;
    o.publish(b"epoch-1 b\n")?;
    let first = o.end_epoch()?;
    o.publish(b"epoch-2 half")?; // the process dies before end_epoch
    drop(o);

    let mut o = make();
    o.recover(Some(&first))?;
    assert_eq!(read(), b"epoch-1 a\nepoch-1 b\n", "recover undoes what came after the record");
    o.publish(b"epoch-2 a\n")?;
    let second = o.end_epoch()?;
    drop(o);

    // Recovering twice to the same record changes nothing.
    for _ in 0..2 {
        let mut o = make();
        o.recover(Some(&second))?;
    }
    assert_eq!(read(), b"epoch-1 a\nepoch-1 b\nepoch-2 a\n");
    Ok(())
}
