//! The runtime's error type.

use std::path::PathBuf;

/// Everything that can stop a job. Bad *input records* are not errors: they
/// are counted and routed aside (see [`crate::source::BadInput`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; names the field.
    #[error("invalid config `{field}`: {reason}")]
    Config { field: &'static str, reason: String },
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The state store reported an error.
    #[error("state store {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: fjall::Error,
    },
    /// The state directory exists but cannot be used (damaged, or written by
    /// an incompatible job or version). Nothing in it was deleted or reset;
    /// a damaged database may have had fjall's own recovery files rewritten
    /// when it was opened to be checked.
    #[error("state directory {path} refused: {reason} (nothing in it was deleted or reset)")]
    StateRefused { path: PathBuf, reason: String },
    /// A stored value could not be decoded.
    #[error("corrupt state value in {what}: {reason}")]
    Corrupt { what: String, reason: String },
    /// A task panicked or failed; carries the task name.
    #[error("task {task} failed: {reason}")]
    Task { task: String, reason: String },
    /// An MQTT client could not do its part (e.g. a publish was never
    /// acknowledged); names the client.
    #[error("mqtt {client}: {reason}")]
    Mqtt { client: String, reason: String },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Config { field, reason: reason.into() }
    }
}
