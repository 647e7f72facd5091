//! Stateful operators that run after a key-by.

mod count_window;
mod session_window;
mod time_window;

pub(crate) use count_window::CountWindowOp;
pub(crate) use session_window::SessionWindowOp;
pub(crate) use time_window::TimeWindowOp;

/// How a windowed operator treats lateness.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Lateness {
    /// Milliseconds a window stays open after it fired.
    pub(crate) allowed: i64,
}
