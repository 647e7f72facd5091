//! `rivulet deploy` and `rivulet down` over the Docker Engine API
//! (bollard): the [`Spec`] made so on a Swarm manager, idempotently.
//!
//! Each service carries the hash of its spec ([`HASH_LABEL`]); a service
//! whose hash is unchanged is left alone, so deploying the same manifest
//! twice changes nothing. Volumes are created by Swarm on the node a task
//! lands on (from the mount's driver options), as `docker stack` does.

use super::manifest::Invalid;
use super::spec::{
    Overrides, Service, Spec, HASH_LABEL, HEALTH_TIMING, IMAGE_LABEL, NAMESPACE_LABEL, ROLLBACK_LABEL, WORKERS_LABEL,
};
use anyhow::Context;
use base64::Engine as _;
use bollard::models::{
    ConfigSpec, EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, EndpointSpecModeEnum,
    HealthConfig, Limit, Mount, MountType, MountVolumeOptions, MountVolumeOptionsDriverConfig, NetworkAttachmentConfig,
    NetworkCreateRequest, SecretSpec, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec, TaskSpecContainerSpecConfigs,
    TaskSpecContainerSpecFile, TaskSpecContainerSpecFile1, TaskSpecContainerSpecSecrets, TaskSpecPlacement,
    TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use bollard::query_parameters::{
    ListConfigsOptions, ListNodesOptions, ListSecretsOptions, ListServicesOptions, ListVolumesOptions,
    RemoveVolumeOptions, UpdateServiceOptions,
};
use bollard::Docker;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What a deploy did (or, with `dry_run`, would do): one line per change.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `create service sensors_worker-0`, ...
    pub changes: Vec<String>,
}

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

/// Connects to the engine (`DOCKER_HOST` or the local socket), negotiates
/// the API version and checks it is a Swarm manager.
pub(super) async fn manager() -> anyhow::Result<Docker> {
    let docker = Docker::connect_with_defaults().context("connecting to the Docker Engine (DOCKER_HOST)")?;
    let docker = docker
        .negotiate_version()
        .await
        .context("the Docker Engine does not answer (is it running? `systemctl start docker`, or set DOCKER_HOST)")?;
    let info = docker.info().await.context("asking the Docker Engine for its state")?;
    let swarm = info.swarm.unwrap_or_default();
    let active = swarm.local_node_state.map(|s| s.to_string()) == Some("active".into());
    if !active || swarm.control_available != Some(true) {
        let why = if active { "this node is a swarm worker, not a manager" } else { "this engine is not in a swarm" };
        return Err(Invalid {
            field: "swarm".into(),
            reason: format!(
                "{why}: run `docker swarm init` on the first node (and `docker swarm join --token ... MANAGER:2377` \
                 on the others, token from `docker swarm join-token worker`), or point DOCKER_HOST at a manager"
            ),
        }
        .into());
    }
    Ok(docker)
}

pub(super) fn labels(spec: &Spec) -> HashMap<String, String> {
    HashMap::from([(NAMESPACE_LABEL.to_string(), spec.job.clone())])
}

pub(super) fn filter(key: &str, value: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(key.to_string(), vec![value.to_string()])])
}

/// Deploys `spec` (or says what it would change, with `dry_run`).
///
/// # Errors
/// [`Invalid`] (exit 2) when the engine is no manager, a placement fits no
/// node, a published port is another service's, a secret the manifest
/// names is missing, or the running job was scaled or upgraded to another
/// worker count or image than the manifest's: then nothing was created.
/// Engine errors otherwise.
pub fn deploy(spec: &Spec, dry_run: bool) -> anyhow::Result<Outcome> {
    runtime()?.block_on(async {
        let docker = manager().await?;
        check_overrides(&docker, spec).await?;
        // A rollback done stays the coordinator's flag (the store makes it
        // happen once): dropping it would only restart the coordinator.
        match running_overrides(&docker, &spec.job).await?.rollback_to {
            Some(to) if spec.overrides.rollback_to.is_none() => {
                apply(&docker, &spec.clone().rolled_back_to(to), dry_run).await
            }
            _ => apply(&docker, spec, dry_run).await,
        }
    })
}

/// What `rivulet scale` and `rivulet upgrade` set on the running job
/// (labels of its coordinator service).
pub(super) async fn running_overrides(docker: &Docker, job: &str) -> anyhow::Result<Overrides> {
    let Some((id, _, _)) = job_services(docker, job).await?.remove(&format!("{job}_coordinator")) else {
        return Ok(Overrides::default());
    };
    let s = docker.inspect_service(&id, None).await.context("inspecting the coordinator's service")?;
    let labels = s.spec.and_then(|s| s.labels).unwrap_or_default();
    Ok(Overrides {
        workers: labels.get(WORKERS_LABEL).and_then(|w| w.parse().ok()),
        image: labels.get(IMAGE_LABEL).cloned(),
        rollback_to: labels.get(ROLLBACK_LABEL).cloned(),
    })
}

/// A plain deploy does not undo `rivulet scale` or `upgrade` silently: a
/// manifest that disagrees with what they set is refused.
async fn check_overrides(docker: &Docker, spec: &Spec) -> anyhow::Result<()> {
    let running = running_overrides(docker, &spec.job).await?;
    let workers = spec.services.iter().filter(|s| s.name.starts_with("worker-")).count();
    if let Some(n) = running.workers.filter(|n| usize::from(*n) != workers) {
        return Err(Invalid {
            field: "job.workers".into(),
            reason: format!(
                "the job runs {n} worker slots since `rivulet scale --workers {n}`, the manifest says {workers}: \
                 set workers = {n} in the manifest, or go back with `rivulet scale -f MANIFEST --workers {workers}`"
            ),
        }
        .into());
    }
    let image = spec.services.iter().find(|s| s.name == "coordinator").map(|s| s.image.clone()).unwrap_or_default();
    if let Some(i) = running.image.filter(|i| *i != image) {
        return Err(Invalid {
            field: "images".into(),
            reason: format!(
                "the job runs {i} since `rivulet upgrade --image {i}`, the manifest says {image}: put {i} in \
                 [images], or go back with `rivulet upgrade -f MANIFEST --image {image}`"
            ),
        }
        .into());
    }
    Ok(())
}

/// Creates, updates and removes what `spec` says, on `docker`.
pub(super) async fn apply(docker: &Docker, spec: &Spec, dry_run: bool) -> anyhow::Result<Outcome> {
    let docker = docker.clone();
    check(&docker, spec).await?;
    let mut out = Outcome::default();
    let act = |out: &mut Outcome, what: String| {
        out.changes.push(what);
        !dry_run
    };

    // The network.
    let net = spec.full(&spec.network.0);
    let nets = docker
        .list_networks(Some(bollard::query_parameters::ListNetworksOptions { filters: Some(filter("name", &net)) }))
        .await?;
    if !nets.iter().any(|n| n.name.as_deref() == Some(&net)) && act(&mut out, format!("create network {net}")) {
        let mut options = HashMap::new();
        if spec.network.1 {
            options.insert("encrypted".to_string(), String::new());
        }
        docker
            .create_network(NetworkCreateRequest {
                name: net.clone(),
                driver: Some("overlay".into()),
                options: Some(options),
                labels: Some(labels(spec)),
                ..Default::default()
            })
            .await
            .with_context(|| format!("creating network {net}"))?;
    }

    // The cluster token: generated once, kept across deploys.
    let token = spec.full(&spec.token_secret);
    let mut secret_ids = HashMap::new();
    for s in docker.list_secrets(None::<ListSecretsOptions>).await? {
        if let (Some(id), Some(name)) = (s.id, s.spec.and_then(|s| s.name)) {
            secret_ids.insert(name, id);
        }
    }
    if !secret_ids.contains_key(&token) && act(&mut out, format!("create secret {token} (a new cluster token)")) {
        let data = base64::engine::general_purpose::STANDARD.encode(new_token()?);
        let id = docker
            .create_secret(SecretSpec {
                name: Some(token.clone()),
                labels: Some(labels(spec)),
                data: Some(data),
                ..Default::default()
            })
            .await
            .with_context(|| format!("creating secret {token}"))?
            .id;
        secret_ids.insert(token.clone(), id);
    }

    // Configs: immutable, named by their content's hash.
    let mut config_ids = HashMap::new();
    for c in docker.list_configs(None::<ListConfigsOptions>).await? {
        if let (Some(id), Some(name)) = (c.id, c.spec.and_then(|s| s.name)) {
            config_ids.insert(name, id);
        }
    }
    for (name, content) in &spec.configs {
        if !config_ids.contains_key(name) && act(&mut out, format!("create config {name}")) {
            let id = docker
                .create_config(ConfigSpec {
                    name: Some(name.clone()),
                    labels: Some(labels(spec)),
                    data: Some(base64::engine::general_purpose::STANDARD.encode(content)),
                    ..Default::default()
                })
                .await
                .with_context(|| format!("creating config {name}"))?
                .id;
            config_ids.insert(name.clone(), id);
        }
    }

    // The services: created, updated when their hash changed, or left alone.
    let existing = job_services(&docker, &spec.job).await?;
    for s in &spec.services {
        let name = spec.full(&s.name);
        let hash = spec.hash(s);
        let service_spec = service_spec(spec, s, &hash, &secret_ids, &config_ids);
        match existing.get(&name) {
            None => {
                if act(&mut out, format!("create service {name}")) {
                    docker
                        .create_service(service_spec, None)
                        .await
                        .with_context(|| format!("creating service {name}"))?;
                }
            }
            Some((_, _, old)) if old.as_deref() == Some(hash.as_str()) => {}
            Some((id, version, _)) => {
                if act(&mut out, format!("update service {name}")) {
                    let opts = UpdateServiceOptions { version: *version, ..Default::default() };
                    docker
                        .update_service(id, service_spec, opts, None)
                        .await
                        .with_context(|| format!("updating service {name}"))?;
                }
            }
        }
    }
    // Services of the job the manifest no longer has (fewer workers).
    for (name, (id, _, _)) in &existing {
        if !spec.services.iter().any(|s| &spec.full(&s.name) == name) && act(&mut out, format!("remove service {name}"))
        {
            docker.delete_service(id).await.with_context(|| format!("removing service {name}"))?;
        }
    }
    Ok(out)
}

/// The job's services: name -> (id, version, spec hash).
pub(super) async fn job_services(
    docker: &Docker,
    job: &str,
) -> anyhow::Result<HashMap<String, (String, i32, Option<String>)>> {
    let list = docker
        .list_services(Some(ListServicesOptions {
            filters: Some(filter("label", &format!("{NAMESPACE_LABEL}={job}"))),
            ..Default::default()
        }))
        .await
        .context("listing the job's services")?;
    let mut out = HashMap::new();
    for s in list {
        let version = s.version.and_then(|v| v.index).and_then(|i| i32::try_from(i).ok()).unwrap_or(0);
        let spec = s.spec.unwrap_or_default();
        let (Some(id), Some(name)) = (s.id, spec.name) else { continue };
        let hash = spec.labels.and_then(|l| l.get(HASH_LABEL).cloned());
        out.insert(name, (id, version, hash));
    }
    Ok(out)
}

/// Refusals before anything is created: placements no node satisfies, a
/// published port another service holds, a secret the manifest names that
/// does not exist.
async fn check(docker: &Docker, spec: &Spec) -> anyhow::Result<()> {
    let nodes = docker.list_nodes(None::<ListNodesOptions>).await.context("listing the swarm's nodes")?;
    let facts: Vec<HashMap<String, String>> = nodes
        .iter()
        .map(|n| {
            let mut f = HashMap::new();
            let spec = n.spec.clone().unwrap_or_default();
            let desc = n.description.clone().unwrap_or_default();
            if let Some(h) = desc.hostname {
                f.insert("node.hostname".to_string(), h);
            }
            if let Some(a) = desc.platform.and_then(|p| p.architecture) {
                f.insert("node.platform.arch".to_string(), a);
            }
            if let Some(r) = spec.role {
                f.insert("node.role".to_string(), r.to_string());
            }
            for (k, v) in spec.labels.unwrap_or_default() {
                f.insert(format!("node.labels.{k}"), v);
            }
            f
        })
        .collect();
    for s in &spec.services {
        let fits = |f: &HashMap<String, String>| {
            s.constraints.iter().all(|c| match c.split_once(" == ") {
                Some((k, v)) => f.get(k).map(String::as_str) == Some(v),
                None => true,
            })
        };
        if !facts.iter().any(fits) {
            let role = if s.name.starts_with("worker-") { "workers" } else { s.name.as_str() };
            return Err(Invalid {
                field: format!("placement.{role}"),
                reason: format!(
                    "no node of the swarm satisfies {} (for {}); label nodes with \
                     `docker node update --label-add KEY=VALUE NODE`",
                    s.constraints.join(" and "),
                    s.name
                ),
            }
            .into());
        }
    }
    let mine = job_services(docker, &spec.job).await?;
    for s in &spec.services {
        let Some((port, _)) = s.publish else { continue };
        for other in docker.list_services(None::<ListServicesOptions>).await? {
            let name = other.spec.as_ref().and_then(|s| s.name.clone()).unwrap_or_default();
            if mine.contains_key(&name) {
                continue;
            }
            let ports = other.endpoint.and_then(|e| e.ports).unwrap_or_default();
            if ports.iter().any(|p| p.published_port == Some(i64::from(port))) {
                return Err(Invalid {
                    field: if s.name == "broker" { "ports.broker" } else { "ports.http" }.into(),
                    reason: format!("port {port} is published by service {name} already"),
                }
                .into());
            }
        }
    }
    let secrets: Vec<String> = docker
        .list_secrets(None::<ListSecretsOptions>)
        .await?
        .into_iter()
        .filter_map(|s| s.spec.and_then(|s| s.name))
        .collect();
    for (field, s) in &spec.external_secrets {
        if !secrets.contains(s) {
            let what = if field.starts_with("ports.") { "TOKEN" } else { "SECRET_KEY" };
            return Err(Invalid {
                field: field.clone(),
                reason: format!("the swarm has no secret `{s}`: `printf %s {what} | docker secret create {s} -`"),
            }
            .into());
        }
    }
    Ok(())
}

pub(super) fn service_spec(
    spec: &Spec,
    s: &Service,
    hash: &str,
    secret_ids: &HashMap<String, String>,
    config_ids: &HashMap<String, String>,
) -> ServiceSpec {
    let mut service_labels = labels(spec);
    service_labels.insert(HASH_LABEL.into(), hash.into());
    if s.name == "coordinator" {
        if let Some(n) = spec.overrides.workers {
            service_labels.insert(WORKERS_LABEL.into(), n.to_string());
        }
        if let Some(i) = &spec.overrides.image {
            service_labels.insert(IMAGE_LABEL.into(), i.clone());
        }
        if let Some(to) = &spec.overrides.rollback_to {
            service_labels.insert(ROLLBACK_LABEL.into(), to.clone());
        }
    }
    let mounts = s
        .volumes
        .iter()
        .map(|(v, target)| {
            let opts = spec.volumes.iter().find(|(n, _)| n == v).map(|(_, o)| o.clone()).unwrap_or_default();
            Mount {
                target: Some(target.clone()),
                source: Some(spec.full(v)),
                typ: Some(MountType::VOLUME),
                volume_options: Some(MountVolumeOptions {
                    labels: Some(labels(spec)),
                    driver_config: (!opts.is_empty()).then(|| MountVolumeOptionsDriverConfig {
                        name: Some("local".into()),
                        options: Some(opts.into_iter().collect()),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    let secrets = s
        .secrets
        .iter()
        .map(|r| {
            let name = if r.owned { spec.full(&r.name) } else { r.name.clone() };
            TaskSpecContainerSpecSecrets {
                file: Some(TaskSpecContainerSpecFile {
                    name: Some(r.target.clone()),
                    uid: Some("0".into()),
                    gid: Some("0".into()),
                    mode: Some(0o400),
                }),
                secret_id: secret_ids.get(&name).cloned(),
                secret_name: Some(name),
            }
        })
        .collect();
    let configs = s
        .configs
        .iter()
        .map(|(name, target)| TaskSpecContainerSpecConfigs {
            file: Some(TaskSpecContainerSpecFile1 {
                name: Some(target.clone()),
                uid: Some("0".into()),
                gid: Some("0".into()),
                mode: Some(0o444),
            }),
            config_id: config_ids.get(name).cloned(),
            config_name: Some(name.clone()),
            ..Default::default()
        })
        .collect();
    let container = TaskSpecContainerSpec {
        image: Some(s.image.clone()),
        labels: Some(labels(spec)),
        command: s.command.first().map(|c| vec![c.clone()]),
        args: Some(s.command.iter().skip(1).cloned().collect()),
        hostname: Some(s.name.clone()),
        env: Some(s.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        mounts: Some(mounts),
        secrets: Some(secrets),
        configs: Some(configs),
        stop_grace_period: Some(20_000_000_000),
        // The engine's init (tini) as PID 1 hands SIGTERM on: the job's
        // process alone as PID 1 would have it ignored by the kernel (it
        // installs no handler in the cluster roles), and every stop-first
        // update would wait out the grace period before SIGKILL.
        init: Some(true),
        health_check: s.health.as_ref().map(|test| {
            let t = HEALTH_TIMING;
            let ns = |secs: u32| i64::from(secs) * 1_000_000_000;
            HealthConfig {
                test: Some(test.clone()),
                interval: Some(ns(t.interval_s)),
                timeout: Some(ns(t.timeout_s)),
                retries: Some(i64::from(t.retries)),
                start_period: Some(ns(t.start_period_s)),
                ..Default::default()
            }
        }),
        ..Default::default()
    };
    ServiceSpec {
        name: Some(spec.full(&s.name)),
        labels: Some(service_labels),
        task_template: Some(TaskSpec {
            container_spec: Some(container),
            resources: s.memory.map(|m| TaskSpecResources {
                limits: Some(Limit { memory_bytes: i64::try_from(m).ok(), ..Default::default() }),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ON_FAILURE),
                delay: Some(2_000_000_000),
                ..Default::default()
            }),
            placement: Some(TaskSpecPlacement { constraints: Some(s.constraints.clone()), ..Default::default() }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(spec.full(&spec.network.0)),
                aliases: Some(vec![s.name.clone()]),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        }),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            order: Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST),
            ..Default::default()
        }),
        // DNS round robin: a service's name resolves to its task's own
        // address, so connections need no virtual IP (IPVS) and a port is
        // published on the node the task runs on.
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: s.publish.map(|(published, target)| {
                vec![EndpointPortConfig {
                    target_port: Some(i64::from(target)),
                    published_port: Some(i64::from(published)),
                    publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                    ..Default::default()
                }]
            }),
        }),
        ..Default::default()
    }
}

/// 32 random bytes as hex, from the kernel.
fn new_token() -> anyhow::Result<String> {
    use std::io::Read;
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).context("reading /dev/urandom")?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Removes the job's services, then its network and configs; with
/// `purge` also its cluster token and the volumes on this node.
///
/// # Errors
/// [`Invalid`] when the engine is no manager; engine errors.
pub fn down(job: &str, purge: bool) -> anyhow::Result<Outcome> {
    runtime()?.block_on(down_async(job, purge))
}

async fn down_async(job: &str, purge: bool) -> anyhow::Result<Outcome> {
    let docker = manager().await?;
    let mut out = Outcome::default();
    let by_label = filter("label", &format!("{NAMESPACE_LABEL}={job}"));
    for (name, (id, _, _)) in job_services(&docker, job).await? {
        docker.delete_service(&id).await.with_context(|| format!("removing service {name}"))?;
        out.changes.push(format!("remove service {name}"));
    }
    // The network and volumes are in use until the tasks' containers are gone.
    let deadline = Instant::now() + Duration::from_secs(60);
    let net = format!("{job}_net");
    // Until the engine no longer lists it: a removal it accepted may take
    // a moment to show.
    let mut removed = false;
    loop {
        let nets = docker
            .list_networks(Some(bollard::query_parameters::ListNetworksOptions { filters: Some(filter("name", &net)) }))
            .await?;
        let Some(n) = nets.into_iter().find(|n| n.name.as_deref() == Some(&net)) else { break };
        match docker.remove_network(n.id.as_deref().unwrap_or(&net)).await {
            Ok(()) if !removed => {
                out.changes.push(format!("remove network {net}"));
                removed = true;
            }
            Ok(()) => {}
            Err(e) if Instant::now() > deadline => return Err(e).with_context(|| format!("removing network {net}")),
            Err(_) => {}
        }
        if Instant::now() > deadline {
            anyhow::bail!("network {net} is still listed {}s after its removal", 60);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for c in docker.list_configs(Some(ListConfigsOptions { filters: Some(by_label.clone()) })).await? {
        let name = c.spec.and_then(|s| s.name).unwrap_or_default();
        if let Some(id) = c.id {
            docker.delete_config(&id).await.with_context(|| format!("removing config {name}"))?;
            out.changes.push(format!("remove config {name}"));
        }
    }
    if purge {
        for s in docker.list_secrets(Some(ListSecretsOptions { filters: Some(by_label.clone()) })).await? {
            let name = s.spec.and_then(|s| s.name).unwrap_or_default();
            if let Some(id) = s.id {
                docker.delete_secret(&id).await.with_context(|| format!("removing secret {name}"))?;
                out.changes.push(format!("remove secret {name}"));
            }
        }
        let vols = docker.list_volumes(Some(ListVolumesOptions { filters: Some(by_label.clone()) })).await?;
        for v in vols.volumes.unwrap_or_default() {
            loop {
                match docker.remove_volume(&v.name, None::<RemoveVolumeOptions>).await {
                    Ok(()) => break,
                    Err(e) if Instant::now() > deadline => {
                        return Err(e).with_context(|| format!("removing volume {}", v.name))
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
            out.changes.push(format!("remove volume {} (on this node)", v.name));
        }
    }
    Ok(out)
}
