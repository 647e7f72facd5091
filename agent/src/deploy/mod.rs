//! Deployment on Docker Swarm from a manifest (`rivulet.toml`):
//! `manifest` parses and checks it, `spec` turns it into Swarm objects,
//! `stack` writes those as a compose file, and `swarm` (cargo feature
//! `deploy`) creates them over the Docker Engine API.

pub mod manifest;
pub mod spec;
pub mod stack;
#[cfg(feature = "deploy")]
pub mod swarm;

pub use manifest::{Invalid, Manifest};
pub use spec::Spec;
