//! The engine flags both job binaries declare (`rivulet run`,
//! `sensor-average`), as one struct they flatten into their arguments.

use super::duration::{duration, nonzero_duration};
use super::size::{mem_total, state_cache_size, DEFAULT_STATE_CACHE};
use clap::{Args, ValueEnum};
use rivulet::{JobConfig, OutputMode};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// When results leave (`--output-mode`).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputModeArg {
    /// At the next periodic checkpoint (exactly once).
    Checkpoint,
    /// A checkpoint starts as soon as results are produced; they leave
    /// when it completes (exactly once).
    CommitOnOutput,
    /// At once, before their checkpoint: a crash republishes the results
    /// since the last checkpoint identically (needs --parallelism 1).
    Eager,
}

impl From<OutputModeArg> for OutputMode {
    fn from(m: OutputModeArg) -> Self {
        match m {
            OutputModeArg::Checkpoint => OutputMode::Checkpoint,
            OutputModeArg::CommitOnOutput => OutputMode::CommitOnOutput,
            OutputModeArg::Eager => OutputMode::Eager,
        }
    }
}

/// What a binary uses for the engine flags the user left out, where the
/// binaries differ.
#[derive(Debug, Clone, Copy)]
pub struct EngineDefaults {
    /// `--parallelism`.
    pub parallelism: usize,
    /// `--output-mode`.
    pub output_mode: OutputMode,
}

/// Parallelism, state directory, checkpoints, output mode and state cache.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// Parallel instances of the window operator [default: 1 for
    /// sensor-average, 2 for `rivulet run`].
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=u64::from(rivulet::key::DEFAULT_KEY_GROUPS)))]
    pub parallelism: Option<usize>,
    /// Checkpoint here and resume from here after a crash.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Time between checkpoints (e.g. 1s, 500ms; at least 1ms).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = nonzero_duration)]
    pub checkpoint_interval: Duration,
    /// Complete checkpoints kept restorable in --state-dir (1: only the
    /// last, as needed for crash recovery; each more keeps one more epoch's
    /// changes on disk).
    #[arg(long, value_name = "N", default_value_t = rivulet::state::DEFAULT_RETAIN_CHECKPOINTS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub retain_checkpoints: usize,
    /// Before running, restore this retained checkpoint of --state-dir: the
    /// job goes back to its state, input positions and output length,
    /// drops later checkpoints and replays.
    #[arg(long, value_name = "EPOCH", requires = "state_dir")]
    pub restore_checkpoint: Option<u64>,
    /// When results leave (with a state directory). `checkpoint` and
    /// `commit-on-output` are exactly once; `eager` republishes identically
    /// after a crash and needs --parallelism 1 [default: commit-on-output
    /// with MQTT input, checkpoint with a file or generated input].
    #[arg(long, value_name = "MODE", value_enum)]
    pub output_mode: Option<OutputModeArg>,
    /// Least time between the end of a checkpoint and the next one started
    /// for new results (commit-on-output); 0 allowed.
    #[arg(long, value_name = "DURATION", default_value = "5ms", value_parser = duration)]
    pub min_checkpoint_pause: Duration,
    /// Longest a checkpoint may take from its start until every task has
    /// staged it (e.g. 10m, 30s; at least 1ms). One that takes longer (a
    /// task hangs) stops the job with an error naming the tasks that did
    /// not answer; a restart resumes from the last complete checkpoint.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = nonzero_duration)]
    pub checkpoint_timeout: Duration,
    /// Memory for keyed state per operator instance (e.g. 512KiB, 8MiB,
    /// 64MiB; at least 64KiB, at most the machine's memory). It trades
    /// memory for speed: state beyond it spills to the state directory and
    /// is read back from disk when touched. Keys beyond the hottest few are
    /// kept packed, about 45 bytes each: 64MiB holds 1.4 million windows
    /// of the seed job before any goes to disk. It costs memory only as keys fill it. Default: 1/256 of this machine's memory, within 8MiB to
    /// 64MiB (8MiB when the memory is not known).
    #[arg(long, value_name = "SIZE", default_value = DEFAULT_STATE_CACHE.as_str(), value_parser = state_cache_size)]
    pub state_cache: usize,
    /// Serve Prometheus metrics (/metrics), the JSON API (/api/v1/...) and
    /// the job's page (/) at this address: IP:PORT or a port (on
    /// 127.0.0.1); 0.0.0.0:PORT (any address that is not loopback) needs
    /// --http-token [default: off].
    #[arg(long, value_name = "ADDR", value_parser = super::http::http_addr)]
    pub http: Option<SocketAddr>,
    /// A file whose first line is the bearer token every HTTP request must
    /// carry (`Authorization: Bearer TOKEN`; the page takes `/?token=`);
    /// without it, the RIVULET_HTTP_TOKEN environment variable.
    #[arg(long, value_name = "FILE", requires = "http")]
    pub http_token: Option<PathBuf>,
    /// After the job ends, keep serving its final figures this long (for
    /// a last scrape); a signal ends the wait.
    #[arg(long, value_name = "DURATION", default_value = "0ms", value_parser = duration, requires = "http")]
    pub http_linger: Duration,
}

impl EngineArgs {
    /// The HTTP endpoint's settings, or `None` without `--http`.
    ///
    /// # Errors
    /// [`rivulet::Error::Config`] naming `--http-token` (see
    /// [`super::resolve_http`]).
    pub fn http_config(&self) -> Result<Option<super::HttpConfig>, rivulet::Error> {
        let Some(addr) = self.http else { return Ok(None) };
        super::http::resolve(addr, self.http_token.as_deref(), self.http_linger).map(Some)
    }

    /// Fills `job` from the flags, `defaults` for those left out.
    ///
    /// # Errors
    /// [`rivulet::Error::Config`] naming `--state-cache` when the cache of
    /// every instance together is more than this machine's memory, or
    /// `--output-mode` when eager is asked for with more than one instance.
    pub fn fill(&self, job: &mut JobConfig, defaults: EngineDefaults) -> Result<(), rivulet::Error> {
        let parallelism = self.parallelism.unwrap_or(defaults.parallelism);
        if let Some(total) = mem_total() {
            let all = (self.state_cache as u64).saturating_mul(parallelism as u64);
            if all > total {
                return Err(rivulet::Error::Config {
                    field: "--state-cache",
                    reason: format!(
                        "{} per instance × --parallelism {parallelism} is more than this machine's memory ({} MiB)",
                        self.state_cache,
                        total >> 20
                    ),
                });
            }
        }
        let output_mode = self.output_mode.map_or(defaults.output_mode, OutputMode::from);
        if output_mode == OutputMode::Eager && parallelism != 1 {
            return Err(rivulet::Error::Config {
                field: "--output-mode",
                reason: format!(
                    "eager needs --parallelism 1 (results leave in one deterministic order), not {parallelism}"
                ),
            });
        }
        job.parallelism = parallelism;
        job.state_dir.clone_from(&self.state_dir);
        job.checkpoint_interval = self.checkpoint_interval;
        job.store.retain_checkpoints = self.retain_checkpoints;
        job.restore_checkpoint = self.restore_checkpoint;
        job.output_mode = output_mode;
        job.min_checkpoint_pause = self.min_checkpoint_pause;
        job.checkpoint_timeout = self.checkpoint_timeout;
        job.state_cache_bytes = self.state_cache;
        Ok(())
    }
}
