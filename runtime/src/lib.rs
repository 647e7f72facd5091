//! # Rivulet runtime
//!
//! Stateful stream processing for small machines: typed streams, keyed
//! state on an embedded LSM store (fjall), event time with Flink's watermark
//! and lateness rules, and exactly-once checkpoints — in one process that
//! is also a cluster of one.
//!
//! The same job also runs across several processes ([`cluster`]: a
//! coordinator and worker slots, checkpoints in a shared store). It is not
//! a SQL engine: jobs are Rust programs built with the DataStream API.
//!
//! ```
//! use rivulet::{aggregate::{Avg, Count}, source::Generator, window::Tumbling, Env, JobConfig, Sink, Watermarks, Windowed};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), rivulet::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! let out = dir.path().join("avg.csv");
//! let env = Env::new(JobConfig::new("doc-example"))?;
//! // (sensor, ts_ms, value): 3 sensors, one reading per 100 ms each
//! let readings = Generator::new(Some(300), |i| ((i % 3) as u32, (i / 3 * 100) as i64, i as f64));
//! env.source(readings, Watermarks::bounded_out_of_orderness(Duration::from_secs(1), |r: &(u32, i64, f64)| r.1))
//!     .key_by(|r: &(u32, i64, f64)| r.0)
//!     .window(Tumbling::of(Duration::from_secs(5))?)
//!     .aggregate((Avg::of(|r: &(u32, i64, f64)| r.2), Count))
//!     .sink(Sink::file(&out, |w: &Windowed<u32, (f64, u64)>, buf: &mut Vec<u8>| {
//!         buf.extend_from_slice(format!("{},{},{},{}\n", w.key, w.window.end, w.value.0, w.value.1).as_bytes())
//!     }));
//! env.execute()?;
//! assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 6);
//! # Ok(()) }
//! ```

pub mod aggregate;
pub mod checkpoint;
pub mod cluster;
pub mod contract;
mod error;
pub mod files;
pub mod key;
pub mod memory;
pub mod metrics;
pub mod mqtt;
pub mod net;
mod operator;
mod record;
pub mod sink;
pub mod source;
pub mod state;
mod stream;
pub mod task;
pub mod text;
pub mod time;
pub mod window;

pub use error::{Error, Result};
pub use operator::{KeyedProcessFunction, ProcessContext, TimeDomain, TimerService};
pub use record::{Message, Record};
pub use sink::Sink;
pub use stream::{DataStream, Env, JobConfig, JobOutcome, KeyedStream, OutputMode, WindowedStream};
pub use time::Watermarks;
pub use window::{Window, Windowed};
