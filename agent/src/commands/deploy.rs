//! `rivulet deploy` and `rivulet down`: the manifest made so on a Swarm
//! manager (feature `deploy`), or undone.

use crate::cli::{DeployArgs, DownArgs};
use rivulet_agent::deploy::{Manifest, Spec};

#[cfg(feature = "deploy")]
pub(crate) fn deploy(a: &DeployArgs) -> anyhow::Result<()> {
    let m = Manifest::load(&a.file)?;
    let spec = Spec::of(&m);
    let out = rivulet_agent::deploy::swarm::deploy(&spec, a.dry_run)?;
    let verb = if a.dry_run { "would " } else { "" };
    for c in &out.changes {
        println!("{verb}{c}");
    }
    if out.changes.is_empty() {
        println!("job {}: nothing changed", spec.job);
    } else if !a.dry_run {
        println!(
            "job {}: deployed ({} changes); `docker stack ps {}` shows its tasks",
            spec.job,
            out.changes.len(),
            spec.job
        );
    }
    Ok(())
}

#[cfg(feature = "deploy")]
pub(crate) fn down(a: &DownArgs) -> anyhow::Result<()> {
    let m = Manifest::load(&a.file)?;
    let out = rivulet_agent::deploy::swarm::down(&m.job.name, a.purge)?;
    for c in &out.changes {
        println!("{c}");
    }
    if out.changes.is_empty() {
        println!("job {}: nothing to remove", m.job.name);
    }
    Ok(())
}

#[cfg(not(feature = "deploy"))]
pub(crate) fn deploy(a: &DeployArgs) -> anyhow::Result<()> {
    Manifest::load(&a.file).map(|m| Spec::of(&m))?;
    Err(rivulet_agent::deploy::no_client())
}

#[cfg(not(feature = "deploy"))]
pub(crate) fn down(a: &DownArgs) -> anyhow::Result<()> {
    Manifest::load(&a.file)?;
    Err(rivulet_agent::deploy::no_client())
}
