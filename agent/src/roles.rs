//! The cluster roles every job binary runs the same way: a worker slot
//! (its own HTTP endpoint, then the runtime's worker loop) and a
//! savepoint request. Each binary passes its job's name and how it builds
//! its job from the coordinator's arguments.

use crate::args::cluster::{cluster_token, SavepointArgs, WorkerArgs};
use crate::endpoint::{self, Role};
use rivulet::cluster::{BuildJob, WorkerOptions};
use std::sync::Arc;

/// Runs worker slot `w` of job `job` until the job ends, serving `--http`
/// if given.
///
/// # Errors
/// Bad flags (named), a refused membership, or a failed job.
pub fn worker(job: &str, w: &WorkerArgs, result_columns: &[&'static str], build: BuildJob<'_>) -> anyhow::Result<()> {
    let http = w.http_config()?;
    let metrics = Arc::new(rivulet::metrics::Metrics::default());
    let served =
        endpoint::serve_as(http.as_ref(), job, metrics.clone(), result_columns, Role::Worker { slot: w.slot })?;
    let opts = WorkerOptions {
        job: job.into(),
        coordinator: w.coordinator.clone(),
        slot: w.slot,
        state_dir: w.state_dir.clone(),
        listen: w.listen,
        advertise: w.advertise.clone(),
        token: cluster_token(w.cluster_token_file.as_ref())?,
        metrics,
        http: served.addr().map(|a| format!("http://{a}/")),
        liveness: Arc::new(rivulet::cluster::Liveness::at(w.alive_file.clone())),
    };
    let out = rivulet::cluster::run_worker(&opts, build);
    served.finish(out.is_ok());
    Ok(out?)
}

/// Asks the coordinator of job `job` for a savepoint and says where it
/// was written.
///
/// # Errors
/// The coordinator cannot be reached, refuses, or the copy failed.
pub fn savepoint(job: &str, s: &SavepointArgs) -> anyhow::Result<()> {
    let token = cluster_token(s.cluster_token_file.as_ref())?;
    let epoch = rivulet::cluster::request_savepoint(&s.coordinator, job, token, &s.to)?;
    println!("savepoint of epoch {epoch} written to {}", s.to);
    Ok(())
}
