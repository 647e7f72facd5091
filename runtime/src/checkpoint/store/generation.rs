//! Generations: claimed with a conditional create; the newest one fences
//! every older writer.

use super::backend::Put;
use super::error::{Error, Result};
use super::format::{self, Kind};
use super::{paths, CheckpointStore};
use object_store::PutMode;

impl CheckpointStore {
    /// The newest claimed generation, or 0 if none was ever claimed.
    ///
    /// # Errors
    /// [`Error::Backend`] if the store cannot be listed.
    pub fn newest_generation(&self) -> Result<u64> {
        let names = self.io.list(paths::GENERATIONS)?;
        Ok(names.iter().filter_map(|n| paths::parse_generation(n)).max().unwrap_or(0))
    }

    /// Claims the next generation (newest + 1) with a conditional create,
    /// retrying past generations others claim meanwhile. From then on every
    /// write from an older generation is refused.
    ///
    /// # Errors
    /// [`Error::Backend`] on I/O.
    pub fn claim_generation(&self) -> Result<u64> {
        let mut g = self.newest_generation()?;
        loop {
            g += 1;
            let body = format::encode(Kind::Generation, &g)?;
            match self.io.put(&paths::generation(g), body, PutMode::Create)? {
                Put::Done => {
                    tracing::info!(job = %self.job, generation = g, "generation claimed");
                    return Ok(g);
                }
                Put::Lost => continue,
                Put::Unsupported => {
                    return Err(Error::Refused {
                        url: self.io.url.clone(),
                        reason: "the backend cannot create an object conditionally, so generations cannot be fenced"
                            .into(),
                    })
                }
            }
        }
    }

    /// Refuses a write from `generation` if a newer one was claimed (or if
    /// it was never claimed).
    pub(crate) fn check_fence(&self, generation: u64) -> Result<()> {
        let newest = self.newest_generation()?;
        if newest > generation {
            return Err(Error::Fenced { generation, newest });
        }
        if newest < generation {
            return Err(Error::invalid(format!("generation {generation} was never claimed (newest is {newest})")));
        }
        Ok(())
    }
}
