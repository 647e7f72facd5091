//! Where a window operator's results and late elements go, shared by the
//! time and session window operators.

use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::record::Record;
use crate::task::Consumer;

/// Buffers a batch's results and late elements and passes them, and every
/// control signal, downstream and to the late-data side output.
pub(crate) struct WindowOutput<T, O> {
    /// Results of the batch being processed.
    pub(crate) out: Vec<Record<O>>,
    down: Box<dyn Consumer<O>>,
    late: Option<Box<dyn Consumer<T>>>,
    late_buf: Vec<Record<T>>,
    /// Results passed downstream so far.
    pub(crate) emitted: u64,
}

impl<T, O> WindowOutput<T, O> {
    pub(crate) fn new(down: Box<dyn Consumer<O>>, late: Option<Box<dyn Consumer<T>>>) -> Self {
        Self { out: Vec::new(), down, late, late_buf: Vec::new(), emitted: 0 }
    }

    /// The job asked for a side output of late elements.
    pub(crate) fn keeps_late(&self) -> bool {
        self.late.is_some()
    }

    /// An element too late for any window: kept for the side output if the
    /// job asked for one.
    pub(crate) fn late(&mut self, r: Record<T>) {
        if self.late.is_some() {
            self.late_buf.push(r);
        }
    }

    pub(crate) fn flush(&mut self) -> Result<()> {
        if !self.out.is_empty() {
            self.emitted += self.out.len() as u64;
            self.down.batch(std::mem::take(&mut self.out))?;
        }
        if !self.late_buf.is_empty() {
            let late = std::mem::take(&mut self.late_buf);
            if let Some(l) = &mut self.late {
                l.batch(late)?;
            }
        }
        Ok(())
    }

    pub(crate) fn watermark(&mut self, wm: i64) -> Result<()> {
        self.down.watermark(wm)
    }

    pub(crate) fn barrier(&mut self, cp: &mut Checkpoint, last: bool) -> Result<()> {
        if let Some(l) = &mut self.late {
            l.barrier(cp, last)?;
        }
        self.down.barrier(cp, last)
    }

    pub(crate) fn end(&mut self) -> Result<()> {
        if let Some(l) = &mut self.late {
            l.end()?;
        }
        self.down.end()
    }
}
