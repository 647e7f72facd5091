//! # Rivulet SQL
//!
//! Flink SQL jobs for Rivulet: a Flink dialect on `sqlparser`
//! ([`dialect`]), planned onto the runtime's DataStream API.

pub mod dialect;
mod error;

pub use dialect::{parse, FlinkDialect};
pub use error::{Error, Result};
