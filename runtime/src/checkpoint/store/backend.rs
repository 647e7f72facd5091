//! A blocking face over an async `object_store`: the engine is thread-based,
//! so the store owns a small current-thread tokio runtime and blocks on it.

use super::error::{Error, Result};
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use std::sync::Arc;

/// How a conditional write ended.
pub(crate) enum Put {
    Done,
    /// `Create` found the object already there, or `Update` found it changed.
    Lost,
    /// The backend cannot do this conditional write (LocalFileSystem has no
    /// `Update`).
    Unsupported,
}

pub(crate) struct Backend {
    rt: tokio::runtime::Runtime,
    store: Arc<dyn ObjectStore>,
    /// The job's directory inside the store: `<prefix>/<job>`.
    root: Path,
    pub(crate) url: String,
}

impl Backend {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, root: Path, url: String) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Refused { url: url.clone(), reason: format!("cannot start its I/O runtime: {e}") })?;
        Ok(Self { rt, store, root, url })
    }

    fn path(&self, rel: &str) -> Path {
        let mut p = self.root.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p = p.join(part);
        }
        p
    }

    fn backend(rel: &str, source: object_store::Error) -> Error {
        Error::Backend { object: rel.to_owned(), source }
    }

    /// The object's bytes and version tag, `None` if it does not exist.
    pub(crate) fn get(&self, rel: &str) -> Result<Option<(Bytes, UpdateVersion)>> {
        let path = self.path(rel);
        self.rt.block_on(async {
            let got = match self.store.get(&path).await {
                Ok(g) => g,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(Self::backend(rel, e)),
            };
            let version = UpdateVersion { e_tag: got.meta.e_tag.clone(), version: got.meta.version.clone() };
            let bytes = got.bytes().await.map_err(|e| Self::backend(rel, e))?;
            Ok(Some((bytes, version)))
        })
    }

    /// Writes `bytes` at `rel` with `mode`.
    pub(crate) fn put(&self, rel: &str, bytes: Vec<u8>, mode: PutMode) -> Result<Put> {
        let path = self.path(rel);
        let opts = PutOptions { mode, ..Default::default() };
        let res = self.rt.block_on(self.store.put_opts(&path, PutPayload::from(bytes), opts));
        match res {
            Ok(_) => Ok(Put::Done),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => Ok(Put::Lost),
            Err(object_store::Error::NotImplemented { .. }) => Ok(Put::Unsupported),
            Err(e) => Err(Self::backend(rel, e)),
        }
    }

    /// Overwrites `rel` with `bytes`.
    pub(crate) fn put_overwrite(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        match self.put(rel, bytes, PutMode::Overwrite)? {
            Put::Done => Ok(()),
            Put::Lost | Put::Unsupported => {
                Err(Error::invalid(format!("{rel}: the backend refused an unconditional write")))
            }
        }
    }

    /// Deletes `rel`; an object already gone is not an error.
    pub(crate) fn delete(&self, rel: &str) -> Result<()> {
        let path = self.path(rel);
        match self.rt.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Self::backend(rel, e)),
        }
    }

    /// Every object under the directory `rel_dir` (ending in `/`), as
    /// paths relative to the job's directory, sorted.
    pub(crate) fn list(&self, rel_dir: &str) -> Result<Vec<String>> {
        let prefix = self.path(rel_dir);
        let root = self.root.as_ref().to_owned();
        let metas: Vec<_> = self
            .rt
            .block_on(self.store.list(Some(&prefix)).try_collect::<Vec<_>>())
            .map_err(|e| Self::backend(rel_dir, e))?;
        let mut out: Vec<String> = metas
            .into_iter()
            .filter_map(|m| {
                let full = m.location.as_ref().to_owned();
                if root.is_empty() {
                    return Some(full);
                }
                full.strip_prefix(&root)?.strip_prefix('/').map(str::to_owned)
            })
            .collect();
        out.sort();
        Ok(out)
    }
}
