//! `rivulet logs`, `scale`, `upgrade` and `rollback`: operating a job
//! `rivulet deploy` made (feature `deploy`).

use crate::cli::{LogsArgs, RollbackArgs, ScaleArgs, UpgradeArgs};
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
pub(crate) fn rollback(a: &RollbackArgs) -> anyhow::Result<()> {
    let m = Manifest::load(&a.file)?;
    let done = rivulet_agent::deploy::rescale::rollback(&m, &a.to, a.image.as_deref())?;
    let job = &m.job.name;
    for c in &done.outcome.changes {
        println!("{c}");
    }
    match (&done.report, done.outcome.changes.is_empty()) {
        (_, true) => println!("job {job}: nothing changed, its coordinator already went back to {}", a.to),
        (Some(r), false) => println!("job {job}: {r}"),
        (None, false) => println!(
            "job {job}: its coordinator restarted with --rollback-to {} but has not logged the rollback yet \
             (`rivulet logs -f MANIFEST coordinator` shows it; job.log must be `info`)",
            a.to
        ),
    }
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
pub(crate) fn rollback(a: &RollbackArgs) -> anyhow::Result<()> {
    Manifest::load(&a.file)?;
    Err(rivulet_agent::deploy::no_client())
}

#[cfg(not(feature = "deploy"))]
pub(crate) fn upgrade(a: &UpgradeArgs) -> anyhow::Result<()> {
    Manifest::load(&a.file)?;
    Err(rivulet_agent::deploy::no_client())
}
