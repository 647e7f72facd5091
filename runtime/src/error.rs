//! The runtime's error type.

use std::path::PathBuf;

/// Everything that can stop a job. Bad *input records* are not errors: they
/// are counted and routed aside (see [`crate::source::BadInput`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; names the field.
    #[error("invalid config `{field}`: {reason}")]
    Config {
        /// The setting's name in the runtime's API (e.g. `client_id`);
        /// binaries map it to their flag.
        field: &'static str,
        /// What the value must be instead.
        reason: String,
    },
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The state store reported an error.
    #[error("state store {path}: {source}")]
    Store {
        /// The state directory.
        path: PathBuf,
        /// fjall's error.
        #[source]
        source: fjall::Error,
    },
    /// The state directory exists but cannot be used (damaged, or written by
    /// an incompatible job or version). Nothing in it was deleted or reset;
    /// a damaged database may have had fjall's own recovery files rewritten
    /// when it was opened to be checked.
    #[error("state directory {path} refused: {reason} (nothing in it was deleted or reset)")]
    StateRefused {
        /// The state directory.
        path: PathBuf,
        /// Why it cannot be used, as a sentence for the user.
        reason: String,
    },
    /// An output file cannot be brought in line with the committed
    /// checkpoints: it is shorter than what they published (changed or
    /// removed outside the job). It was neither created nor changed.
    #[error("output {path} refused: {reason} (it was left as it is)")]
    OutputRefused {
        /// The output file.
        path: PathBuf,
        /// What does not match, as a sentence for the user.
        reason: String,
    },
    /// A stored value could not be decoded.
    #[error("corrupt state value in {what}: {reason}")]
    Corrupt {
        /// Which kind of value (e.g. `mqtt ingest log entry`).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A task panicked or failed; carries the task name.
    #[error("task {task} failed: {reason}")]
    Task {
        /// The task's name.
        task: String,
        /// The panic message or the failure.
        reason: String,
    },
    /// An MQTT client could not do its part (e.g. a publish was never
    /// acknowledged); names the client.
    #[error("mqtt {client}: {reason}")]
    Mqtt {
        /// The MQTT client id.
        client: String,
        /// What did not happen.
        reason: String,
    },
    /// A cluster's member could not do its part (a refused or lost peer,
    /// a job graph that differs between binaries).
    #[error("cluster: {0}")]
    Cluster(String),
    /// This process was refused membership of the cluster (another job, a
    /// wrong or missing token, a slot the job does not have, a different
    /// job graph): trying again cannot help.
    #[error("cluster: refused: {0}")]
    ClusterRefused(String),
    /// The checkpoint store of a cluster refused or failed.
    #[error(transparent)]
    CheckpointStore(#[from] crate::checkpoint::store::Error),
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
