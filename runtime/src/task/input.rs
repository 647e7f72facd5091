//! Tasks fed by channels: keyed operators and sinks.

use super::{Consumer, TaskCtx};
use crate::checkpoint::align::Event;
use crate::checkpoint::{Checkpoint, Inputs};
use crate::error::{Error, Result};
use crate::record::Message;
use crossbeam_channel::Receiver;
use std::sync::atomic::Ordering;

/// Runs `head` over `inputs` until every input ends.
pub(crate) fn run_input_task<T>(
    ctx: TaskCtx,
    inputs: Vec<Receiver<Message<T>>>,
    mut head: Box<dyn Consumer<T>>,
) -> Result<()> {
    let mut inputs = Inputs::new(inputs);
    loop {
        match inputs.next(head.next_deadline()) {
            Event::Data(recs) => {
                ctx.task_metrics.records_in.fetch_add(recs.len() as u64, Ordering::Relaxed);
                head.batch(recs)?
            }
            Event::Deadline => head.on_time()?,
            Event::Watermark(w) => {
                ctx.task_metrics.watermark.store(w, Ordering::Relaxed);
                head.watermark(w)?
            }
            Event::Barrier { epoch, last } => {
                let mut cp = Checkpoint::new(epoch, ctx.store.as_ref());
                head.barrier(&mut cp, last)?;
                let staged = cp.commit()?;
                if let Some(c) = &ctx.coord {
                    c.ack(ctx.task, epoch, staged, false);
                }
            }
            Event::End => return head.end(),
            Event::Broken => {
                return Err(Error::Task {
                    task: ctx.name.clone(),
                    reason: "an upstream task stopped without finishing".into(),
                })
            }
        }
    }
}
