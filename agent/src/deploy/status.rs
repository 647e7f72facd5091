//! `rivulet status -f`: the Swarm's view of a deployed job — each service,
//! its tasks per node with their state, and how often Swarm replaced a task.

use super::rescale::tasks;
use super::swarm::{job_services, manager, runtime};
use crate::exit::NotDeployed;
use anyhow::Context;
use bollard::models::TaskState;
use bollard::query_parameters::ListNodesOptions;
use std::collections::{BTreeMap, HashMap};

/// One service of the job as Swarm sees it.
#[derive(Debug)]
pub struct ServiceView {
    /// Full name (`JOB_worker-0`).
    pub name: String,
    /// The image its tasks run.
    pub image: String,
    /// Its current task: (node hostname, state, error), if any.
    pub current: Option<(String, String, Option<String>)>,
    /// Tasks Swarm replaced (failed, killed, or shut down by an update),
    /// as far as the swarm's task history goes (5 per slot by default).
    pub restarts: usize,
    /// The last replaced task's end: (state, error or message).
    pub last_end: Option<(String, String)>,
}

/// The Swarm's view of a job.
#[derive(Debug)]
pub struct View {
    /// The job's services, by name.
    pub services: Vec<ServiceView>,
    /// `http://ADDR/` of the coordinator's published `--http`: the address
    /// of the node its task runs on.
    pub coordinator_http: Option<std::net::SocketAddr>,
}

impl View {
    /// Every service has a task running, or the job finished (the
    /// coordinator's task completed, and the workers' with it).
    pub fn healthy(&self) -> bool {
        let state = |s: &ServiceView| s.current.as_ref().map(|(_, state, _)| state.clone()).unwrap_or_default();
        let finished = self.services.iter().any(|s| s.name.ends_with("_coordinator") && state(s) == "complete");
        self.services.iter().all(|s| state(s) == "running" || (finished && state(s) == "complete"))
    }
}

/// What Swarm knows of `job`'s services and tasks; with `http_port`, where
/// the coordinator's published `--http` is.
///
/// # Errors
/// [`super::Invalid`] (exit 2) when the engine is no manager; [`NotDeployed`]
/// (exit 4) when the swarm has no service of the job; engine errors.
pub fn view(job: &str, http_port: Option<u16>) -> anyhow::Result<View> {
    runtime()?.block_on(async {
        let docker = manager().await?;
        let services = job_services(&docker, job).await?;
        if services.is_empty() {
            return Err(NotDeployed { job: job.to_owned() }.into());
        }
        let mut nodes = HashMap::new();
        for n in docker.list_nodes(None::<ListNodesOptions>).await.context("listing the swarm's nodes")? {
            let host = n.description.and_then(|d| d.hostname).unwrap_or_default();
            let addr = n.status.and_then(|s| s.addr).unwrap_or_default();
            if let Some(id) = n.id {
                nodes.insert(id, (host, addr));
            }
        }
        let mut out = View { services: Vec::new(), coordinator_http: None };
        let sorted: BTreeMap<_, _> = services.into_iter().collect();
        for (name, (id, _, _)) in sorted {
            let s = docker.inspect_service(&id, None).await.with_context(|| format!("inspecting {name}"))?;
            let image = s
                .spec
                .and_then(|s| s.task_template)
                .and_then(|t| t.container_spec)
                .and_then(|c| c.image)
                .unwrap_or_default();
            let list = tasks(&docker, &name).await?;
            let state = |t: &bollard::models::Task| {
                t.status.as_ref().and_then(|s| s.state).map_or("unknown".to_string(), |s| s.to_string())
            };
            // The current task is the one Swarm wants running (or the
            // newest, for a job that completed).
            let current = list
                .iter()
                .find(|t| t.desired_state == Some(TaskState::RUNNING))
                .or_else(|| list.first().filter(|t| state(t) == "complete"));
            let node_of = |t: &bollard::models::Task| {
                t.node_id.as_ref().and_then(|n| nodes.get(n)).map(|(h, _)| h.clone()).unwrap_or_default()
            };
            let replaced: Vec<_> =
                list.iter().filter(|t| current.is_none_or(|c| c.id != t.id) && t.status.is_some()).collect();
            let last_end = replaced.first().map(|t| {
                let st = t.status.clone().unwrap_or_default();
                (state(t), st.err.or(st.message).unwrap_or_default())
            });
            if name.ends_with("_coordinator") {
                if let (Some(port), Some(t)) = (http_port, current) {
                    let addr = t.node_id.as_ref().and_then(|n| nodes.get(n)).map(|(_, a)| a.clone());
                    out.coordinator_http = addr.and_then(|a| format!("{a}:{port}").parse().ok());
                }
            }
            out.services.push(ServiceView {
                name,
                image,
                current: current.map(|t| (node_of(t), state(t), t.status.as_ref().and_then(|s| s.err.clone()))),
                restarts: replaced.len(),
                last_end,
            });
        }
        Ok(out)
    })
}
