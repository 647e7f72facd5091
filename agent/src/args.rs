//! Flags shared by the job binaries (`rivulet run`, `sensor-average`) and
//! the value parsers behind every flag: each value is parsed and checked
//! by clap before anything starts, so a bad one is exit 2 naming the flag.

pub mod cluster;
mod duration;
mod engine;
mod http;
mod size;
mod value;

pub use duration::{duration, nonzero_duration, MAX_DURATION};
pub use engine::{EngineArgs, EngineDefaults, OutputModeArg};
pub use http::{http_addr, http_url, resolve as resolve_http, HttpConfig, TOKEN_ENV};
pub use size::{
    default_state_cache, mem_total, mem_usable, state_cache_size, DEFAULT_STATE_CACHE, DEFAULT_STATE_CACHE_RANGE,
    MIN_STATE_CACHE,
};
pub use value::{fraction, mqtt_url, positive_rate};
