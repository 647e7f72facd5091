//! The checkpoint store: the durable copy of a job's checkpoints outside any
//! node, on a shared volume (`file:///abs/path`) or S3-compatible storage
//! (`s3://bucket/prefix`, cargo feature `s3`), through `object_store`.
//!
//! The API is blocking (the engine is thread-based): the store owns a
//! current-thread tokio runtime and blocks on it. One `CheckpointStore` is
//! meant for one thread at a time; open one per thread that needs it.
//!
//! # Layout
//! Under `<prefix>/<job>/` (numbers zero-padded to 20 digits, key groups to 5):
//! - `generations/<g>`: claimed with a conditional create (`PutMode::Create`),
//!   so two coordinators can never both claim `g`. The newest generation is
//!   the fence: writes from an older one are refused.
//! - `epochs/<e>/g<g>-kg<first>-<last>-p<part>.delta`: the state entries a task set
//!   or deleted in epoch `e` for key groups `first..=last`, in key order.
//!   The writing generation is in the name, so a fenced writer can only
//!   ever add objects nobody reads, never overwrite a committed one.
//! - `epochs/<e>/meta-g<g>`: the epoch's metadata ([`EpochMeta`]): its
//!   generation, its parent checkpoint (the latest one when it was
//!   committed), its deltas with sizes and CRCs, and per-task source
//!   positions and sink commit records as opaque bytes. Restores follow the
//!   parent links, so an epoch whose metadata was written but never made
//!   latest (a crash between the two) is never part of any restore.
//! - `latest`: the commit point, written last; names the latest complete
//!   epoch and its generation.
//! - `materialised/<kg>/<e>-g<g>`: a full copy of key group `kg` as of the
//!   committed checkpoint `(e, g)`.
//! - `epochs/<e>/g<g>-sink<s>-p<part>.out`: results sink `s` staged in
//!   epoch `e`, published by the coordinator once `e` is committed;
//!   `published/<s>`: how far it got.
//! - `finished`: the checkpoint at which the job's input ended.
//! - `ingest/<source>/...`: sources' ingest logs, mirrored before their
//!   input is acknowledged upstream (see `ingest.rs`).
//! - `pins/<e>`: checkpoint `e` was copied to a savepoint that the job may
//!   be rolled back to: sources keep their ingest logs from it on.
//! - `rolled-back/<e>-g<g>`: the savepoint of checkpoint `(e, g)` was
//!   rolled back to (see `rollback.rs`), by the epoch it names.
//! - `gc-floor`: written by [`CheckpointStore::gc`] before it deletes
//!   anything: chain epochs at or below it may be gone.
//!
//! Every object is a 20-byte header (magic `RVCS`, format version, kind,
//! body length, CRC32 of the body) and a postcard body; reading a damaged
//! or foreign object is [`Error::Damaged`] naming it.
//!
//! # Fencing, and the race that remains
//! `commit_epoch` checks that no newer generation was claimed, writes the
//! metadata, checks again, then writes `latest` conditionally on the
//! version it read (`PutMode::Update` with its ETag): on S3 a coordinator
//! that lost a race cannot move `latest`. `LocalFileSystem` has no
//! conditional update, so on `file://` the second check and the overwrite
//! of `latest` are separate steps: a coordinator paused between them (a
//! window of one rename) could still move `latest` to its epoch after a
//! newer generation was claimed. What it commits is a complete, verified
//! checkpoint; the newer coordinator reads `latest` again at its own
//! commit and chains onto whatever it finds.
//!
//! # Example
//! ```
//! use rivulet::checkpoint::store::{CheckpointStore, Entry, KeyGroups};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let url = format!("file://{}", dir.path().display());
//! let store = CheckpointStore::open(&url, "sensor-average")?;
//! let generation = store.claim_generation()?;
//! // A task uploads its epoch-1 delta for key groups 0..=63 and acks with the DeltaRef.
//! let set = Entry { key: vec![0, 5, 0, 1, b'k'], value: Some(b"v".to_vec()) };
//! let delta = store.put_delta(generation, 1, KeyGroups { first: 0, last: 63 }, &[set])?;
//! // The coordinator commits the epoch once every task acked.
//! store.commit_epoch(generation, 1, vec![delta], Vec::new())?;
//! let state = store.restore(KeyGroups::one(5), 1)?;
//! assert_eq!(state, vec![(vec![0, 5, 0, 1, b'k'], b"v".to_vec())]);
//! # Ok(())
//! # }
//! ```
//!
//! # Exit codes
//! See [`Error::exit_code`]: 2 for a bad `--checkpoint-store` URL, 3 for a
//! refused store (missing directory, damaged data, fenced writer).

mod backend;
mod commit;
mod error;
mod export;
mod format;
mod gc;
mod generation;
mod ingest;
mod location;
mod model;
mod outputs;
mod paths;
mod restore;
mod rollback;

#[cfg(test)]
mod tests;
#[cfg(all(test, feature = "s3"))]
mod tests_s3;

pub use error::{Error, Result};
pub use model::{Committed, DeltaRef, Entry, EpochMeta, KeyGroups, TaskRecord};
pub use outputs::{OutputRef, Published};
pub use rollback::RolledBack;

use backend::Backend;
use format::Kind;

/// A job's checkpoints in a store; see the module docs for the layout.
pub struct CheckpointStore {
    io: Backend,
    job: String,
}

impl std::fmt::Debug for CheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointStore").field("url", &self.io.url).field("job", &self.job).finish()
    }
}

impl CheckpointStore {
    /// Opens the checkpoints of `job` in the store at `url`, and proves the
    /// committed data intact: if `latest` exists, its epoch's metadata and
    /// every delta it lists must be present and pass their CRCs.
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed URL, a relative `file://` path, an
    /// unsupported scheme or a bad job name; [`Error::Refused`] if a
    /// `file://` directory does not exist; [`Error::Damaged`] if the
    /// committed data cannot be proven intact; [`Error::Backend`] on I/O.
    pub fn open(url: &str, job: &str) -> Result<Self> {
        let valid = !job.is_empty()
            && job != "."
            && job != ".."
            && job.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !valid {
            return Err(Error::Config {
                url: url.to_owned(),
                reason: format!("job name `{job}` must be non-empty ASCII letters, digits, `.`, `_` or `-`"),
            });
        }
        let (store, prefix) = location::parse(url)?;
        let root = prefix.join(job);
        let store = Self { io: Backend::new(store, root, url.to_owned())?, job: job.to_owned() };
        store.verify_latest()?;
        tracing::debug!(url, job, "checkpoint store opened");
        Ok(store)
    }

    /// The job this store holds checkpoints of.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Reads and decodes `rel`; `None` if it does not exist.
    fn read<T: serde::de::DeserializeOwned>(&self, rel: &str, kind: Kind) -> Result<Option<T>> {
        let Some((bytes, _)) = self.io.get(rel)? else {
            return Ok(None);
        };
        format::decode(rel, kind, &bytes).map(Some)
    }

    /// Reads and decodes `rel`, which committed data says must exist.
    fn read_required<T: serde::de::DeserializeOwned>(&self, rel: &str, kind: Kind, named_by: &str) -> Result<T> {
        match self.read(rel, kind)? {
            Some(v) => Ok(v),
            None => Err(self.missing(rel, format!("missing, but {named_by} names it"))),
        }
    }

    /// The error for `rel`, which committed data names, found missing
    /// (`reason` says by whom). A store whose volume went away (an
    /// unmounted share, a mount point that is no directory) shows every
    /// object missing: that is an outage to wait out. It is damage only if
    /// `latest` is still there and `rel` is still missing on a second look.
    pub(crate) fn missing(&self, rel: &str, reason: String) -> Error {
        match self.io.get(paths::LATEST) {
            Err(e) => e,
            Ok(None) => Error::unreachable(rel, "missing, and so is `latest`"),
            Ok(Some(_)) => match self.io.get(rel) {
                Err(e) => e,
                Ok(None) => Error::damaged(rel, reason),
                Ok(Some(_)) => Error::unreachable(rel, "missing at first, present on a second look"),
            },
        }
    }

    fn verify_latest(&self) -> Result<()> {
        let Some(latest) = self.latest()? else {
            return Ok(());
        };
        let meta = self.meta_of(latest, paths::LATEST)?;
        // Maintenance may have materialised key groups at the latest
        // checkpoint itself and collected its deltas: a restore of those
        // groups reads the materialisation, not the delta.
        let all = KeyGroups { first: 0, last: u16::MAX };
        let mats = self.materialisations(all, latest.epoch)?;
        let at_latest = |kg: u16| mats.get(&kg).is_some_and(|list| list.first() == Some(&latest));
        for delta in meta.deltas.iter().filter(|d| !d.groups.iter().all(at_latest)) {
            self.read_delta(delta)?;
        }
        Ok(())
    }
}
