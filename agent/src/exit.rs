//! Exit codes and the error line, for every binary of the project: the one
//! place that decides them.
//!
//! 0 success; 1 the job or command failed; 2 bad arguments or config (the
//! message names the flag); 3 a state directory or an output file was
//! refused (damaged, another job's, changed outside the job), or the
//! checkpoint to restore is not retained; 4 `rivulet status` found no job
//! at its address, or no service of the job is on the swarm; 5 `rivulet
//! status -f`: a service of the job has no task running; 128 + N stopped
//! by signal N
//! (chosen by the binary that caught it).
//! clap exits 2 by itself for values its parsers refuse.

use std::process::ExitCode;

/// Bad arguments or config.
pub const USAGE: u8 = 2;
/// A state directory, checkpoint store or output file was refused, or a
/// cluster refused this process's membership.
pub const STATE_REFUSED: u8 = 3;
/// `rivulet status`: no job answered at the address.
pub const NO_JOB: u8 = 4;

/// `rivulet status -f`: a service of the job has no task running.
pub const DEGRADED: u8 = 5;

/// No service of a job is on the swarm (`rivulet status -f`, `scale`,
/// `upgrade`, `logs`): exit [`NO_JOB`].
#[derive(Debug)]
pub struct NotDeployed {
    /// The job's name.
    pub job: String,
}

impl std::fmt::Display for NotDeployed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no service of job {} is on this swarm (`rivulet deploy -f MANIFEST` creates them)", self.job)
    }
}

impl std::error::Error for NotDeployed {}

/// No job answered at an HTTP address (`rivulet status`): exit [`NO_JOB`].
#[derive(Debug)]
pub struct NoJob {
    /// The address asked.
    pub addr: String,
    /// What happened instead.
    pub reason: String,
}

impl std::fmt::Display for NoJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no job is serving at {} ({}); start one with --http {}", self.addr, self.reason, self.addr)
    }
}

impl std::error::Error for NoJob {}

/// The exit code for `e`.
pub fn code(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.is::<NoJob>() || c.is::<NotDeployed>()) {
        return NO_JOB;
    }
    if e.chain().any(|c| c.is::<rivulet_sql::Error>() || c.is::<crate::deploy::Invalid>()) {
        return USAGE;
    }
    match e.chain().find_map(|c| c.downcast_ref::<rivulet::Error>()) {
        Some(
            rivulet::Error::StateRefused { .. }
            | rivulet::Error::OutputRefused { .. }
            | rivulet::Error::ClusterRefused(_),
        ) => STATE_REFUSED,
        Some(rivulet::Error::Config { .. }) => USAGE,
        Some(rivulet::Error::CheckpointStore(e)) => e.exit_code(),
        _ => 1,
    }
}

/// The flag a runtime config field is set by, so messages name what the
/// user typed (`--checkpoint-interval`, not `checkpoint_interval`).
/// Fields no flag sets keep their name.
pub fn flag(field: &str) -> &str {
    match field {
        "parallelism" => "--parallelism",
        "checkpoint_interval" => "--checkpoint-interval",
        "retain_checkpoints" => "--retain-checkpoints",
        "restore_checkpoint" => "--restore-checkpoint",
        "output_mode" => "--output-mode",
        "min_checkpoint_pause" => "--min-checkpoint-pause",
        "checkpoint_timeout" => "--checkpoint-timeout",
        "state_cache_bytes" => "--state-cache",
        "state_dir" => "--state-dir",
        "window" => "--window",
        "url" => "--mqtt",
        "client_id" => "--client-id",
        "share_group" => "--share-group",
        "dead_letter" => "--dead-letter",
        "topic" => "--topic",
        "publish" => "--publish",
        other => other,
    }
}

/// `e` and its causes as one line (as `{e:#}` prints them), with config
/// errors naming the flag.
pub fn message(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e
        .chain()
        .map(|c| match c.downcast_ref::<rivulet::Error>() {
            Some(rivulet::Error::Config { field, reason }) => format!("invalid {}: {reason}", flag(field)),
            _ => c.to_string(),
        })
        .collect();
    parts.join(": ")
}

/// Prints `program: message` to stderr and returns the exit code for the
/// outcome of `main`.
pub fn report(program: &str, r: anyhow::Result<()>) -> ExitCode {
    report_code(program, r.map(|()| ExitCode::SUCCESS))
}

/// [`report`] for a `main` that chooses its own exit code on success (e.g.
/// 128 + the signal that stopped the job).
pub fn report_code(program: &str, r: anyhow::Result<ExitCode>) -> ExitCode {
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{program}: {}", message(&e));
            ExitCode::from(code(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Guards issue 12 §11: what the user sees names the flag, not the
    // runtime's field, and the code is 2.
    #[test]
    fn config_errors_name_the_flag() {
        let e = anyhow::Error::from(rivulet::Error::Config {
            field: "checkpoint_interval",
            reason: "must be positive".into(),
        })
        .context("building the job");
        assert_eq!(message(&e), "building the job: invalid --checkpoint-interval: must be positive");
        assert_eq!(code(&e), USAGE);
    }

    // Guards that a refused state directory is 3 and anything else 1.
    #[test]
    fn codes() {
        let refused = anyhow::Error::from(rivulet::Error::StateRefused { path: "/x".into(), reason: "r".into() });
        assert_eq!(code(&refused), STATE_REFUSED);
        assert_eq!(code(&anyhow::anyhow!("boom")), 1);
    }
}
