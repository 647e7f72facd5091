//! The checkpoint store's typed error, and the exit code each kind maps to.

/// What can go wrong opening, reading or writing a checkpoint store.
///
/// Exit codes (see [`Error::exit_code`]): a URL that cannot name a store is a
/// configuration error (2); a store that exists in name but cannot be used
/// (its directory is missing, its committed data cannot be proven intact,
/// or this writer has been fenced) is refused (3); a backend failure is 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `--checkpoint-store` URL is malformed, relative, or of an
    /// unsupported scheme.
    #[error("--checkpoint-store {url}: {reason}")]
    Config {
        /// The URL as given.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The store cannot be used as it is; nothing in it was changed.
    #[error("--checkpoint-store {url} refused: {reason} (nothing in it was deleted or reset)")]
    Refused {
        /// The store's URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored object is missing, truncated, fails its CRC, or is not a
    /// Rivulet checkpoint object of the expected kind and version.
    #[error("checkpoint store object {object} is damaged: {reason} (nothing was deleted or reset)")]
    Damaged {
        /// The object's path inside the store.
        object: String,
        /// What was found wrong.
        reason: String,
    },
    /// A write from a generation older than the newest claimed one.
    #[error("generation {generation} is fenced: generation {newest} has been claimed by another coordinator")]
    Fenced {
        /// The generation that tried to write.
        generation: u64,
        /// The newest claimed generation.
        newest: u64,
    },
    /// The caller passed something the store cannot record (unsorted or
    /// out-of-range keys, an epoch not after the latest, an unknown epoch).
    #[error("checkpoint store: {reason}")]
    Invalid {
        /// What was wrong with the request.
        reason: String,
    },
    /// The backend failed on an object (I/O, network, permissions).
    #[error("checkpoint store object {object}: {source}")]
    Backend {
        /// The object's path inside the store.
        object: String,
        /// The backend's error.
        #[source]
        source: object_store::Error,
    },
}

impl Error {
    /// The process exit code a binary should use for this error: 2 for a
    /// bad `--checkpoint-store` URL, 3 for a refused store (missing
    /// directory, damaged data, fenced writer), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config { .. } => 2,
            Error::Refused { .. } | Error::Damaged { .. } | Error::Fenced { .. } => 3,
            Error::Invalid { .. } | Error::Backend { .. } => 1,
        }
    }

    /// True for a failure of the storage itself (I/O, network) that may
    /// pass: retrying later is sensible. Refusals, damage and fencing are
    /// not.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Backend { .. })
    }

    /// A transient backend error for `object`: the store shows less than
    /// it did (`what`), as when its volume went away.
    pub(crate) fn unreachable(object: &str, what: &str) -> Self {
        Error::Backend {
            object: object.to_owned(),
            source: object_store::Error::Generic {
                store: "checkpoint store",
                source: format!("{what}: the store is not reachable as it was (an unmounted volume?)").into(),
            },
        }
    }

    pub(crate) fn damaged(object: &str, reason: impl Into<String>) -> Self {
        Error::Damaged { object: object.to_owned(), reason: reason.into() }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Error::Invalid { reason: reason.into() }
    }
}

/// `Result` with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
