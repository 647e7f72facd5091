//! The library behind the `rivulet` CLI and the job binaries: the seed job
//! (`seed`), the flags the binaries share and their value parsers
//! (`args`), deployment on Docker Swarm from a manifest (`deploy`), the mapping of errors to exit codes (`exit`), and the job's
//! HTTP endpoint (`http`, feature `http`; started through `endpoint`).
//!
//! Modules depend only downward: `seed` and `args` on the runtime, `exit`
//! on nothing here. The `rivulet` binary's own modules (`cli` parses,
//! `commands` act) sit on top.

pub mod args;
pub mod dataset;
pub mod deploy;
pub mod endpoint;
pub mod exit;
#[cfg(feature = "http")]
pub mod http;
pub mod role;
pub mod roles;
pub mod seed;
