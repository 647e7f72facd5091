//! `rivulet logs`, `rivulet scale` and `rivulet upgrade`: operating a job
//! `rivulet deploy` made (feature `deploy`).

use crate::cli::{LogsArgs, ScaleArgs, UpgradeArgs};
use rivulet_agent::deploy::Manifest;

#[cfg(feature = "deploy")]
pub(crate) fn logs(a: &LogsArgs) -> anyhow::Result<()> {
    let m = Manifest::load(&a.file)?;
    rivulet_agent::deploy::logs::print(&rivulet_agent::deploy::logs::Request {
        job: m.job.name,
        service: a.service.clone(),
        tail: a.tail,
        follow: a.follow,
    })
}

#[cfg(feature = "deploy")]
pub(crate) fn scale(a: &ScaleArgs) -> anyhow::Result<()> {
    let m = Manifest::load(&a.file)?;
    let done = rivulet_agent::deploy::rescale::scale(&m, a.workers)?;
    report(&m.job.name, &done, &format!("runs {} worker slots", a.workers));
    Ok(())
}

#[cfg(feature = "deploy")]
pub(crate) fn upgrade(a: &UpgradeArgs) -> anyhow::Result<()> {
    let m = Manifest::load(&a.file)?;
    let done = rivulet_agent::deploy::rescale::upgrade(&m, &a.image)?;
    report(&m.job.name, &done, &format!("runs {}", a.image));
    Ok(())
}

#[cfg(feature = "deploy")]
fn report(job: &str, done: &rivulet_agent::deploy::rescale::Rescaled, what: &str) {
    if let Some(s) = &done.savepoint {
        let tries = if s.attempts > 1 { format!(", at attempt {}", s.attempts) } else { String::new() };
        println!("{} (the rollback point{tries})", s.report.trim());
    }
    for c in &done.outcome.changes {
        println!("{c}");
    }
    if done.outcome.changes.is_empty() {
        println!("job {job}: nothing changed, it {what} already");
    } else {
        println!("job {job}: {what}; it resumes from the latest checkpoint in its store");
    }
}

#[cfg(not(feature = "deploy"))]
pub(crate) fn logs(a: &LogsArgs) -> anyhow::Result<()> {
    Manifest::load(&a.file)?;
    Err(rivulet_agent::deploy::no_client())
}

#[cfg(not(feature = "deploy"))]
pub(crate) fn scale(a: &ScaleArgs) -> anyhow::Result<()> {
    Manifest::load(&a.file)?;
    Err(rivulet_agent::deploy::no_client())
}

#[cfg(not(feature = "deploy"))]
pub(crate) fn upgrade(a: &UpgradeArgs) -> anyhow::Result<()> {
    Manifest::load(&a.file)?;
    Err(rivulet_agent::deploy::no_client())
}
