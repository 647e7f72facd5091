//! `rivulet scale` and `rivulet upgrade`: a savepoint of the running job
//! first (the rollback point), then the job's services changed so the
//! coordinator restarts from the latest checkpoint in the store with the
//! other worker count or image. `rivulet rollback`: the coordinator
//! restarted with `--rollback-to` one of those savepoints (and maybe
//! another image), which makes the savepoint the job's next checkpoint.
//!
//! The savepoint is asked for by a one-off service (`JOB_savepoint-…`) on
//! the job's network, on the coordinator's node, with the coordinator's
//! image, mounts and cluster token: the coordinator writes it, and a file
//! store's savepoint directory must exist where the coordinator sees it.
//! `docker exec` into the coordinator's container would reach it only when
//! the coordinator runs on the engine this command talks to; a service
//! runs wherever the coordinator is.

use super::spec::{Service, Spec, COORDINATOR_PORT, STORE_DIR, TOKEN_SECRET};
use super::swarm::{apply, filter, job_services, manager, running_overrides, runtime, service_spec, Outcome};
use crate::exit::NotDeployed;
use anyhow::Context;
use bollard::models::{TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum, TaskState};
use bollard::query_parameters::{ListSecretsOptions, ListTasksOptions, LogsOptions};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long the savepoint's one-off service may take, scheduling included.
const SAVEPOINT_TIMEOUT: Duration = Duration::from_secs(300);

/// Attempts at a savepoint before `scale`/`upgrade` give up.
const SAVEPOINT_ATTEMPTS: u32 = 5;

/// How long the services may take to run the tasks of their updated specs.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(180);

/// A savepoint written by the coordinator.
#[derive(Debug)]
pub struct Savepoint {
    /// Where it is, as the job's containers see it (a directory on the
    /// checkpoint store's volume, or a store URL).
    pub to: String,
    /// What the `savepoint` command printed (`savepoint of epoch N ...`).
    pub report: String,
    /// How many attempts it took.
    pub attempts: u32,
}

/// What `scale` / `upgrade` did.
#[derive(Debug)]
pub struct Rescaled {
    /// The rollback point (none when nothing had to change).
    pub savepoint: Option<Savepoint>,
    /// The services created, updated or removed.
    pub outcome: Outcome,
}

/// Rescales the running job of `spec` (built from the manifest) to
/// `workers` slots: savepoint, then the coordinator with the other
/// `--workers`, slots created or removed. The image `rivulet upgrade` set,
/// if any, stays.
///
/// # Errors
/// [`super::Invalid`] (exit 2) when the engine is no manager or the
/// manifest's placements fit no node; [`NotDeployed`] (exit 4) when the
/// job is not on the swarm; the savepoint or an engine request failed (nothing changed
/// when the savepoint failed).
pub fn scale(manifest: &super::Manifest, workers: u16) -> anyhow::Result<Rescaled> {
    change(manifest, |o| o.workers = Some(workers))
}

/// Rolls the coordinator and every worker slot of the running job to
/// `image` (each service stop-first) after a savepoint;
/// the job resumes from the latest checkpoint in the store. The broker is
/// left as it is. A worker count `rivulet scale` set stays.
///
/// # Errors
/// As [`scale`].
pub fn upgrade(manifest: &super::Manifest, image: &str) -> anyhow::Result<Rescaled> {
    change(manifest, |o| o.image = Some(image.to_owned()))
}

fn change(manifest: &super::Manifest, f: impl FnOnce(&mut super::spec::Overrides)) -> anyhow::Result<Rescaled> {
    runtime()?.block_on(async {
        let docker = manager().await?;
        let job = &manifest.job.name;
        let mut overrides = running_overrides(&docker, job).await?;
        f(&mut overrides);
        let spec = Spec::with(manifest, overrides);
        if job_services(&docker, job).await?.is_empty() {
            return Err(NotDeployed { job: job.clone() }.into());
        }
        if apply(&docker, &spec, true).await?.changes.is_empty() {
            return Ok(Rescaled { savepoint: None, outcome: Outcome::default() });
        }
        let savepoint = savepoint(&docker, &spec).await?;
        let outcome = apply(&docker, &spec, false).await?;
        converge(&docker, job).await?;
        Ok(Rescaled { savepoint: Some(savepoint), outcome })
    })
}

/// What `rollback` did.
#[derive(Debug)]
pub struct RolledBack {
    /// The services updated (none: the coordinator already runs with this
    /// rollback, which its store made happen once).
    pub outcome: Outcome,
    /// The coordinator's own report of the rollback (`rolled back to a
    /// savepoint ...`), if it logged one in time.
    pub report: Option<String>,
}

/// How long `rollback` waits for the coordinator to report the rollback.
const ROLLBACK_REPORT_TIMEOUT: Duration = Duration::from_secs(120);

/// Restarts the running job's coordinator with `--rollback-to to` (a
/// savepoint `scale` or `upgrade` wrote, as they printed it: a directory
/// under the checkpoint store's mount as the containers see it, as a path
/// or a `file://` URL, or an S3 URL), and with
/// `image` for the coordinator and every worker slot if given (e.g. the
/// image before an upgrade). No savepoint is taken first: it would pin
/// another checkpoint and could release the one to go back to. The worker
/// count and image `scale` or `upgrade` set stay unless `image` replaces
/// the image.
///
/// # Errors
/// [`super::Invalid`] (exit 2) for a savepoint path outside the store's
/// mount, an engine that is no manager, or placements that fit no node;
/// [`NotDeployed`] (exit 4); the coordinator refused the rollback (e.g.
/// the savepoint is no longer pinned: nothing was changed in the store);
/// an engine request failed.
pub fn rollback(manifest: &super::Manifest, to: &str, image: Option<&str>) -> anyhow::Result<RolledBack> {
    runtime()?.block_on(async {
        let docker = manager().await?;
        let job = &manifest.job.name;
        let mut overrides = running_overrides(&docker, job).await?;
        if let Some(i) = image {
            overrides.image = Some(i.to_owned());
        }
        overrides.rollback_to = Some(to.to_owned());
        let spec = Spec::with(manifest, overrides);
        let path = to.strip_prefix("file://").unwrap_or(to);
        if spec.store_url.starts_with("file://") && !path.starts_with(&format!("{STORE_DIR}/")) {
            return Err(super::Invalid {
                field: "--to".into(),
                reason: format!(
                    "`{to}` is not on the checkpoint store's volume, {STORE_DIR}/ in the job's containers: \
                     give the path `rivulet scale` or `rivulet upgrade` printed"
                ),
            }
            .into());
        }
        if job_services(&docker, job).await?.is_empty() {
            return Err(NotDeployed { job: job.clone() }.into());
        }
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i32::try_from(d.as_secs()).unwrap_or(i32::MAX))
            .saturating_sub(1);
        let outcome = apply(&docker, &spec, false).await?;
        if outcome.changes.is_empty() {
            return Ok(RolledBack { outcome, report: None });
        }
        converge(&docker, job).await?;
        let report = rollback_report(&docker, &spec.full("coordinator"), since).await?;
        Ok(RolledBack { outcome, report })
    })
}

/// Waits for the coordinator's line about the rollback in what its tasks
/// logged since `since` (Unix seconds): `Some(line)` once it says it rolled
/// back (or had before), `None` if it said nothing in time (a `job.log`
/// filter above `info` hides the line); an error with its words when it
/// refused.
async fn rollback_report(docker: &Docker, service: &str, since: i32) -> anyhow::Result<Option<String>> {
    let start = Instant::now();
    while start.elapsed() < ROLLBACK_REPORT_TIMEOUT {
        let opts = LogsOptions { stdout: true, stderr: true, since, tail: "all".into(), ..Default::default() };
        let mut stream = docker.service_logs(service, Some(opts));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            text.push_str(&chunk?.to_string());
        }
        for line in text.lines() {
            // The words, without the log line's time and target.
            let said = ["already rolled back to this savepoint", "rolled back to a savepoint"]
                .iter()
                .find_map(|w| line.find(w).map(|at| line[at..].trim().to_string()));
            if said.is_some() {
                return Ok(said);
            }
            // clap's refusal of the path, or the store's of the rollback.
            if line.contains("--rollback-to <") || (line.contains("--checkpoint-store") && line.contains(" refused: "))
            {
                anyhow::bail!("the coordinator did not roll back: {}", line.trim());
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(None)
}

/// Has the running coordinator write a savepoint of the latest complete
/// checkpoint, through a one-off service on its node.
async fn savepoint(docker: &Docker, spec: &Spec) -> anyhow::Result<Savepoint> {
    let coordinator = spec.full("coordinator");
    let services = job_services(docker, &spec.job).await?;
    let Some((id, _, _)) = services.get(&coordinator) else {
        return Err(NotDeployed { job: spec.job.clone() }.into());
    };
    let running = docker.inspect_service(id, None).await.with_context(|| format!("inspecting {coordinator}"))?;
    let container = running.spec.and_then(|s| s.task_template).and_then(|t| t.container_spec).unwrap_or_default();
    let image = container.image.unwrap_or_default();
    let bin = container.command.and_then(|c| c.into_iter().next()).unwrap_or_default();
    // The coordinator may be restarting (a scale just before): a minute.
    let start = Instant::now();
    let node = loop {
        let running = tasks(docker, &coordinator)
            .await?
            .into_iter()
            .find(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
            .and_then(|t| t.node_id);
        match running {
            Some(n) => break n,
            None if start.elapsed() > Duration::from_secs(60) => {
                anyhow::bail!("{coordinator} has had no running task for a minute: no job to take a savepoint of")
            }
            None => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };

    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let name = format!("savepoint-{stamp}");
    let Some(template) = spec.services.iter().find(|s| s.name == "coordinator") else {
        anyhow::bail!("the job's spec has no coordinator");
    };
    let mut secret_ids = HashMap::new();
    for s in docker.list_secrets(None::<ListSecretsOptions>).await? {
        if let (Some(id), Some(n)) = (s.id, s.spec.and_then(|s| s.name)) {
            secret_ids.insert(n, id);
        }
    }
    // A coordinator just started may not listen yet or hold no complete
    // checkpoint, and it refuses while its sink has not yet published the
    // latest one ("try again in a moment"): a few attempts, each into a
    // directory of its own (a refused one may hold a partial copy).
    let full = spec.full(&name);
    let mut attempt = 0;
    let (to, logs) = loop {
        attempt += 1;
        let to = match spec.store_url.strip_prefix("file://") {
            Some(_) => format!("{STORE_DIR}/savepoints/{stamp}-{attempt}"),
            None => format!("{}/savepoints/{stamp}-{attempt}", spec.store_url.trim_end_matches('/')),
        };
        let one_off = Service {
            name: name.clone(),
            image: image.clone(),
            command: vec![
                bin.clone(),
                "savepoint".into(),
                "--coordinator".into(),
                format!("coordinator:{COORDINATOR_PORT}"),
                "--to".into(),
                to.clone(),
                "--cluster-token-file".into(),
                format!("/run/secrets/{TOKEN_SECRET}"),
            ],
            env: template.env.clone(),
            volumes: template.volumes.clone(),
            secrets: template.secrets.clone(),
            configs: vec![],
            constraints: vec![format!("node.id == {node}")],
            memory: None,
            publish: None,
            health: None,
        };
        let mut service = service_spec(spec, &one_off, "", &secret_ids, &HashMap::new());
        if let Some(t) = service.task_template.as_mut() {
            t.restart_policy = Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                ..Default::default()
            });
        }
        docker.create_service(service, None).await.with_context(|| format!("creating service {full}"))?;
        let outcome = wait_done(docker, &full).await;
        let logs = service_output(docker, &full).await.unwrap_or_default();
        let removed = docker.delete_service(&full).await.with_context(|| format!("removing service {full}"));
        let state = outcome?;
        removed?;
        if state == TaskState::COMPLETE {
            break (to, logs);
        }
        if attempt >= SAVEPOINT_ATTEMPTS {
            anyhow::bail!("the savepoint failed ({state}, {attempt} attempts): {}", logs.trim());
        }
        wait_gone(docker, &full).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let report = logs.lines().rev().find(|l| l.contains("savepoint of epoch")).unwrap_or(logs.trim()).to_string();
    Ok(Savepoint { to, report, attempts: attempt })
}

/// The tasks of a service, newest first.
pub(super) async fn tasks(docker: &Docker, service: &str) -> anyhow::Result<Vec<bollard::models::Task>> {
    let mut list = docker
        .list_tasks(Some(ListTasksOptions { filters: Some(filter("service", service)) }))
        .await
        .with_context(|| format!("listing the tasks of {service}"))?;
    list.sort_by_key(|t| std::cmp::Reverse(t.created_at.as_ref().map(ToString::to_string)));
    Ok(list)
}

/// Waits until the one-off service's task has ended; its final state.
async fn wait_done(docker: &Docker, service: &str) -> anyhow::Result<TaskState> {
    let start = Instant::now();
    loop {
        let state = tasks(docker, service).await?.first().and_then(|t| t.status.as_ref().and_then(|s| s.state));
        if let Some(s @ (TaskState::COMPLETE | TaskState::FAILED | TaskState::REJECTED | TaskState::SHUTDOWN)) = state {
            return Ok(s);
        }
        if start.elapsed() > SAVEPOINT_TIMEOUT {
            anyhow::bail!("{service} did not end within {}s (state {state:?})", SAVEPOINT_TIMEOUT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Waits until every service of the job runs the task of its current
/// spec (the coordinator's may also have completed: the job finished).
async fn converge(docker: &Docker, job: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let mut waiting = Vec::new();
        for (name, (_, version, _)) in job_services(docker, job).await? {
            let list = tasks(docker, &name).await?;
            let current = list.iter().find(|t| {
                t.desired_state == Some(TaskState::RUNNING)
                    || (t.desired_state == Some(TaskState::SHUTDOWN)
                        && t.status.as_ref().and_then(|s| s.state) == Some(TaskState::COMPLETE))
            });
            let state = current.and_then(|t| t.status.as_ref().and_then(|s| s.state));
            let of_spec = current
                .and_then(|t| t.version.as_ref().and_then(|v| v.index))
                .is_some_and(|v| v >= u64::try_from(version).unwrap_or(0));
            if !(of_spec && matches!(state, Some(TaskState::RUNNING | TaskState::COMPLETE))) {
                waiting.push(name);
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if start.elapsed() > CONVERGE_TIMEOUT {
            anyhow::bail!(
                "after {}s these services still do not run a task of their updated spec: {} (`rivulet status -f` shows why)",
                CONVERGE_TIMEOUT.as_secs(),
                waiting.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until a removed service is no longer listed, so its name can be
/// used again.
async fn wait_gone(docker: &Docker, service: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    while docker.inspect_service(service, None).await.is_ok() {
        if start.elapsed() > Duration::from_secs(30) {
            anyhow::bail!("{service} is still listed 30s after its removal");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Everything a service's tasks wrote.
async fn service_output(docker: &Docker, service: &str) -> anyhow::Result<String> {
    let opts = LogsOptions { stdout: true, stderr: true, tail: "all".into(), ..Default::default() };
    let mut stream = docker.service_logs(service, Some(opts));
    let mut out = String::new();
    while let Some(chunk) = stream.next().await {
        out.push_str(&chunk?.to_string());
    }
    Ok(out)
}
