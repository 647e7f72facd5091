//! `rivulet logs`: what the job's tasks wrote, read over the Docker Engine
//! API task by task, each line prefixed with its service, task and node
//! (`worker-0.3f9c2a1b@pi2 | ...`), the tasks Swarm replaced included.

use super::rescale::tasks;
use super::swarm::{job_services, manager, runtime};
use crate::exit::NotDeployed;
use anyhow::Context;
use bollard::query_parameters::{ListNodesOptions, LogsOptions};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

/// What to show.
#[derive(Debug, Clone)]
pub struct Request {
    /// The job's name.
    pub job: String,
    /// One service, by its short (`coordinator`) or full name; none: all.
    pub service: Option<String>,
    /// The last N lines of each task; none: everything.
    pub tail: Option<u64>,
    /// Keep printing what the running tasks (and the ones Swarm starts
    /// later) write, until interrupted.
    pub follow: bool,
}

/// Prints the logs `r` asks for on stdout.
///
/// # Errors
/// [`super::Invalid`] (exit 2) when the engine is no manager or the job
/// has no service `r.service`; [`NotDeployed`] (exit 4) when it has none
/// at all; engine errors.
pub fn print(r: &Request) -> anyhow::Result<()> {
    runtime()?.block_on(print_async(r))
}

async fn print_async(r: &Request) -> anyhow::Result<()> {
    let docker = manager().await?;
    let services: BTreeMap<String, _> = job_services(&docker, &r.job).await?.into_iter().collect();
    if services.is_empty() {
        return Err(NotDeployed { job: r.job.clone() }.into());
    }
    let prefix = format!("{}_", r.job);
    let wanted: Vec<String> = match &r.service {
        None => services.keys().cloned().collect(),
        Some(s) => {
            let full = if s.starts_with(&prefix) { s.clone() } else { format!("{prefix}{s}") };
            if !services.contains_key(&full) {
                let names: Vec<&str> = services.keys().map(|n| n.trim_start_matches(&prefix)).collect();
                return Err(super::Invalid {
                    field: "SERVICE".into(),
                    reason: format!("job {} has no service `{s}`; it has {}", r.job, names.join(", ")),
                }
                .into());
            }
            vec![full]
        }
    };
    let mut hosts = HashMap::new();
    for n in docker.list_nodes(None::<ListNodesOptions>).await.context("listing the swarm's nodes")? {
        if let (Some(id), Some(h)) = (n.id, n.description.and_then(|d| d.hostname)) {
            hosts.insert(id, h);
        }
    }
    let tail = r.tail.map_or("all".to_string(), |n| n.to_string());
    let mut seen = HashSet::new();
    let mut out = std::io::stdout().lock();
    // Each task's lines in order, oldest task first, service by service;
    // with --follow the running tasks are left to `follow`.
    for service in &wanted {
        let mut list = tasks(&docker, service).await?;
        list.reverse();
        for t in list {
            let Some(id) = t.id.clone() else { continue };
            if t.status.as_ref().and_then(|s| s.container_status.as_ref()).is_none() {
                continue; // never ran: nothing was written
            }
            if r.follow && running(&t) {
                continue;
            }
            seen.insert(id.clone());
            let label = label(&prefix, service, &id, t.node_id.as_ref().and_then(|n| hosts.get(n)));
            let opts = LogsOptions { stdout: true, stderr: true, tail: tail.clone(), ..Default::default() };
            let mut stream = docker.task_logs(&id, Some(opts));
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.with_context(|| format!("reading the logs of task {id}"))?;
                write_lines(&mut out, &label, &chunk.to_string())?;
            }
        }
    }
    drop(out);
    if !r.follow {
        return Ok(());
    }
    follow(&docker, &wanted, &prefix, &hosts, seen, tail).await
}

fn running(t: &bollard::models::Task) -> bool {
    t.status.as_ref().and_then(|s| s.state) == Some(bollard::models::TaskState::RUNNING)
}

/// Follows the running tasks (from their last `tail` lines) and every
/// task Swarm starts later (from its first line), until interrupted.
async fn follow(
    docker: &Docker,
    services: &[String],
    prefix: &str,
    hosts: &HashMap<String, String>,
    mut seen: HashSet<String>,
    mut tail: String,
) -> anyhow::Result<()> {
    loop {
        for service in services {
            for t in tasks(docker, service).await? {
                let Some(id) = t.id.clone() else { continue };
                if !running(&t) || !seen.insert(id.clone()) {
                    continue;
                }
                let label = label(prefix, service, &id, t.node_id.as_ref().and_then(|n| hosts.get(n)));
                let opts =
                    LogsOptions { follow: true, stdout: true, stderr: true, tail: tail.clone(), ..Default::default() };
                let mut stream = docker.task_logs(&id, Some(opts));
                tokio::spawn(async move {
                    while let Some(Ok(chunk)) = stream.next().await {
                        if write_lines(&mut std::io::stdout().lock(), &label, &chunk.to_string()).is_err() {
                            break;
                        }
                    }
                });
            }
        }
        tail = "all".into();
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// `worker-0.3f9c2a1b@pi2`.
fn label(prefix: &str, service: &str, task: &str, host: Option<&String>) -> String {
    let short = service.strip_prefix(prefix).unwrap_or(service);
    let task = task.get(..8).unwrap_or(task);
    match host {
        Some(h) => format!("{short}.{task}@{h}"),
        None => format!("{short}.{task}"),
    }
}

fn write_lines(out: &mut impl Write, label: &str, text: &str) -> std::io::Result<()> {
    for l in text.lines() {
        writeln!(out, "{label} | {l}")?;
    }
    out.flush()
}
