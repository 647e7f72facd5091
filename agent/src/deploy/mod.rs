//! Deployment on Docker Swarm from a manifest (`rivulet.toml`):
//! `manifest` parses and checks it, `spec` turns it into Swarm objects,
//! `stack` writes those as a compose file, and `swarm` (cargo feature
//! `deploy`) creates them over the Docker Engine API; `status`, `logs` and
//! `rescale` (scale, upgrade) operate a deployed job there.

#[cfg(feature = "deploy")]
pub mod logs;
pub mod manifest;
#[cfg(feature = "deploy")]
pub mod rescale;
pub mod spec;
pub mod stack;
#[cfg(feature = "deploy")]
pub mod status;
#[cfg(feature = "deploy")]
pub mod swarm;

pub use manifest::{Invalid, Manifest};
pub use spec::{Overrides, Spec};

/// What the commands that need the Docker client say in a build without
/// it (exit 2).
#[cfg(not(feature = "deploy"))]
pub fn no_client() -> anyhow::Error {
    rivulet::Error::Config {
        field: "deploy",
        reason: "this build has no Docker client (built without the cargo feature `deploy`)".into(),
    }
    .into()
}
