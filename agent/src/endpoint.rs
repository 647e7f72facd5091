//! `--http`: starts the job's HTTP endpoint when asked for, in builds
//! with the cargo feature `http` (a build without it refuses the flag).

use crate::args::HttpConfig;
use rivulet::metrics::Metrics;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub use crate::role::Role;

/// The endpoint of a job, if one was asked for; dropping it stops it.
pub struct Served {
    #[cfg(feature = "http")]
    endpoint: Option<crate::http::Endpoint>,
}

/// Starts the endpoint for `job` when `cfg` is given.
///
/// # Errors
/// [`rivulet::Error::Config`] naming `--http`: the address cannot be bound,
/// or this build has no HTTP endpoint.
pub fn serve(
    cfg: Option<&HttpConfig>,
    job: &str,
    metrics: Arc<Metrics>,
    result_columns: &[&'static str],
) -> Result<Served, rivulet::Error> {
    serve_as(cfg, job, metrics, result_columns, Role::Single)
}

/// [`serve`] for a process with `role` in a cluster.
///
/// # Errors
/// As [`serve`].
pub fn serve_as(
    cfg: Option<&HttpConfig>,
    job: &str,
    metrics: Arc<Metrics>,
    result_columns: &[&'static str],
    role: Role,
) -> Result<Served, rivulet::Error> {
    #[cfg(feature = "http")]
    {
        let endpoint = match cfg {
            Some(c) => Some(crate::http::Endpoint::start(
                c,
                crate::http::JobInfo { name: job.to_string(), metrics, result_columns: result_columns.to_vec(), role },
            )?),
            None => None,
        };
        Ok(Served { endpoint })
    }
    #[cfg(not(feature = "http"))]
    {
        let _ = (job, metrics, result_columns, role);
        match cfg {
            Some(_) => Err(rivulet::Error::Config {
                field: "--http",
                reason: "this build has no HTTP endpoint (built without the cargo feature `http`)".into(),
            }),
            None => Ok(Served {}),
        }
    }
}

impl Served {
    /// The address the endpoint listens on, if it runs.
    pub fn addr(&self) -> Option<std::net::SocketAddr> {
        #[cfg(feature = "http")]
        return self.endpoint.as_ref().map(crate::http::Endpoint::addr);
        #[cfg(not(feature = "http"))]
        None
    }

    /// Records whether the job ended well.
    pub fn finish(&self, ok: bool) {
        #[cfg(feature = "http")]
        if let Some(e) = &self.endpoint {
            e.finish(if ok { crate::http::JobState::Finished } else { crate::http::JobState::Failed });
        }
        #[cfg(not(feature = "http"))]
        let _ = ok;
    }

    /// Keeps serving the final figures for `--http-linger`, or until
    /// `interrupted` is set.
    pub fn linger(&self, interrupted: &AtomicBool) {
        #[cfg(feature = "http")]
        if let Some(e) = &self.endpoint {
            e.linger(interrupted);
        }
        #[cfg(not(feature = "http"))]
        let _ = interrupted;
    }
}
