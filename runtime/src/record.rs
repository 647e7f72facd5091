//! What travels on a channel between tasks.

/// A value with its event timestamp and the watermark that held when the
/// source emitted it.
///
/// Carrying the watermark per record (instead of only between batches) is
/// what makes lateness decisions independent of batch sizes: a record is late
/// exactly when it would be late with a watermark emitted after every event.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<T> {
    /// Event time, milliseconds since the Unix epoch.
    pub ts: i64,
    /// The source's watermark just before this record.
    pub wm: i64,
    /// The payload.
    pub value: T,
}

/// A message on a channel: data and in-band control.
#[derive(Debug)]
pub enum Message<T> {
    /// A batch of records.
    Data(Vec<Record<T>>),
    /// Event time has advanced to this watermark on this channel.
    Watermark(i64),
    /// Checkpoint barrier of an epoch; `last` marks the final epoch of a
    /// bounded stream.
    Barrier {
        /// The checkpoint's epoch.
        epoch: u64,
        /// True for the barrier that ends a bounded stream.
        last: bool,
    },
    /// The channel is finished.
    End,
}
