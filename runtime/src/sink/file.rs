//! File and stdout outputs.

use super::Output;
use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A file that grows by committed epochs. Its commit record is its length:
/// at recovery anything past it (a half-written epoch) is cut off.
pub struct FileOutput {
    path: PathBuf,
    file: Option<std::io::BufWriter<File>>,
    len: u64,
}

impl FileOutput {
    /// Output to `path`.
    pub fn new(path: &Path) -> Self {
        Self { path: path.to_path_buf(), file: None, len: 0 }
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::io(&self.path, e)
    }

    fn writer(&mut self) -> Result<&mut std::io::BufWriter<File>> {
        if self.file.is_none() {
            let f =
                OpenOptions::new().create(true).write(true).truncate(true).open(&self.path).map_err(|e| self.io(e))?;
            self.file = Some(std::io::BufWriter::with_capacity(1 << 16, f));
        }
        self.file.as_mut().ok_or_else(|| Error::io(&self.path, std::io::Error::other("not open")))
    }
}

impl Output for FileOutput {
    fn recover(&mut self, committed: Option<&[u8]>) -> Result<()> {
        let len = match committed {
            Some(b) => postcard::from_bytes::<u64>(b).map_err(|e| Error::Corrupt {
                what: format!("commit record of {}", self.path.display()),
                reason: e.to_string(),
            })?,
            None => 0,
        };
        // Checked before the file is opened (and maybe created): a refused
        // output is left exactly as it was.
        let on_disk = match std::fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(self.io(e)),
        };
        if on_disk < len {
            return Err(Error::OutputRefused {
                path: self.path.clone(),
                reason: format!(
                    "it has {on_disk} bytes but the committed checkpoints published {len}: it was changed or \
                     removed outside the job"
                ),
            });
        }
        let mut f =
            OpenOptions::new().create(true).truncate(false).write(true).open(&self.path).map_err(|e| self.io(e))?;
        f.set_len(len).map_err(|e| self.io(e))?;
        f.seek(SeekFrom::Start(len)).map_err(|e| self.io(e))?;
        self.len = len;
        self.file = Some(std::io::BufWriter::with_capacity(1 << 16, f));
        Ok(())
    }

    fn publish(&mut self, bytes: &[u8]) -> Result<()> {
        let w = self.writer()?;
        let r = w.write_all(bytes);
        r.map_err(|e| self.io(e))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn end_epoch(&mut self) -> Result<Vec<u8>> {
        let w = self.writer()?;
        let r = w.flush().and_then(|_| w.get_ref().sync_data());
        r.map_err(|e| self.io(e))?;
        postcard::to_allocvec(&self.len)
            .map_err(|e| Error::Corrupt { what: "file commit record".into(), reason: e.to_string() })
    }

    fn direct(&mut self, bytes: &[u8]) -> Result<()> {
        self.publish(bytes)
    }

    fn flush(&mut self) -> Result<()> {
        let w = self.writer()?;
        let r = w.flush();
        r.map_err(|e| self.io(e))
    }

    /// Appended and flushed to the file at once (synced at the barrier);
    /// a restart cuts the file back to the checkpointed length and the
    /// replay writes the same bytes again.
    fn publish_eager(&mut self, bytes: &[u8]) -> Result<()> {
        self.publish(bytes)?;
        self.flush()
    }
}

/// Standard output (not repeatable: a replay after a crash prints again).
pub struct StdoutOutput;

impl Output for StdoutOutput {
    fn recover(&mut self, _: Option<&[u8]>) -> Result<()> {
        Ok(())
    }
    fn publish(&mut self, bytes: &[u8]) -> Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes).map_err(|e| Error::io("<stdout>", e))
    }
    fn end_epoch(&mut self) -> Result<Vec<u8>> {
        self.flush()?;
        Ok(Vec::new())
    }
    fn direct(&mut self, bytes: &[u8]) -> Result<()> {
        self.publish(bytes)
    }
    fn flush(&mut self) -> Result<()> {
        std::io::stdout().flush().map_err(|e| Error::io("<stdout>", e))
    }
}
