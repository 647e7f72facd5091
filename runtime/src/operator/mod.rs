//! Stateful operators that run after a key-by.

mod count_window;
mod output;
mod process;
mod session_window;
mod time_window;
mod timers;

pub(crate) use count_window::CountWindowOp;
pub(crate) use session_window::SessionWindowOp;
pub(crate) use time_window::TimeWindowOp;

pub(crate) use process::ProcessOp;
pub use process::{KeyedProcessFunction, ProcessContext, TimerService};
pub use timers::TimeDomain;

/// How a windowed operator treats lateness.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Lateness {
    /// Milliseconds a window stays open after it fired.
    pub(crate) allowed: i64,
}
