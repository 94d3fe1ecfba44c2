//! `Runtime` on Docker Engine, through bollard.

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, HealthConfig, HostConfig,
    NetworkCreateRequest, NetworkingConfig, PortMap, ResourcesUlimits,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectContainerOptions, ListContainersOptions,
    LogsOptions, RemoveContainerOptions, RenameContainerOptions, StartContainerOptions,
    StopContainerOptions,
};
use bollard::Docker;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::cgroup::TaskCgroups;
use super::hostaddr::HostAddresses;
use super::{
    ContainerInfo, ContainerSpec, NetworkAttach, PortBinding, Protocol, PublishedPort, PullAuth,
    Runtime, RuntimeError, TaskLimits, LABEL_MANAGED, TASK_NETWORK,
};

pub struct DockerRuntime {
    docker: Docker,
    /// Task-level limits, when the engine's cgroups can be written here.
    cgroups: Result<TaskCgroups, String>,
    /// Container instance addresses, on this machine.
    addresses: HostAddresses,
}

impl DockerRuntime {
    /// Connect to the local engine (DOCKER_HOST or the default socket) and
    /// agree on an API version with it.
    pub async fn connect() -> Result<DockerRuntime, RuntimeError> {
        let docker = Docker::connect_with_local_defaults().map_err(other)?;
        let docker = docker.negotiate_version().await.map_err(|e| {
            RuntimeError::Other(format!(
                "Docker Engine is not reachable ({e}); run `berth doctor` for what to fix"
            ))
        })?;
        let cgroups = task_cgroups(&docker).await;
        match &cgroups {
            Ok(_) => tracing::info!("task-level cpu and memory limits: one cgroup per task"),
            Err(why) => {
                tracing::warn!("task-level limits fall back to each container's limits: {why}")
            }
        }
        Ok(DockerRuntime {
            docker,
            cgroups,
            addresses: HostAddresses::default(),
        })
    }

    /// Whether tasks get a cgroup of their own, and if not, why.
    pub fn task_cgroups(&self) -> Result<(), String> {
        self.cgroups.as_ref().map(|_| ()).map_err(Clone::clone)
    }
}

/// `Err` naming the engine when it is not on this host (not a Unix socket).
fn local_engine() -> Result<(), String> {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    if !(host.is_empty() || host.starts_with("unix://")) {
        return Err(format!("the Docker Engine is remote ({host})"));
    }
    Ok(())
}

/// Task cgroups are written into the local cgroup filesystem, so the engine
/// must be on this host (a Unix socket) and use the `cgroupfs` driver.
async fn task_cgroups(docker: &Docker) -> Result<TaskCgroups, String> {
    local_engine()?;
    let info = docker.info().await.map_err(|e| e.to_string())?;
    let driver = info
        .cgroup_driver
        .map(|d| d.to_string())
        .unwrap_or_default();
    let version = info
        .cgroup_version
        .map(|v| v.to_string())
        .unwrap_or_default();
    TaskCgroups::detect(Path::new(CGROUP_ROOT), &driver, &version)
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

fn other(e: bollard::errors::Error) -> RuntimeError {
    RuntimeError::Other(e.to_string())
}

fn is_404(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn time(s: Option<&String>) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(s?).ok()?.with_timezone(&Utc);
    // Docker reports "0001-01-01T00:00:00Z" for never.
    (t.timestamp() > 0).then_some(t)
}

/// Docker's `PortBindings` (and `ExposedPorts`, its keys) for published
/// ports: `"80/tcp": [{"HostIp": "10.99.0.1", "HostPort": ""}]`, an empty
/// `HostPort` asking Docker to choose one.
fn port_map(ports: &[PublishedPort]) -> PortMap {
    let mut map = PortMap::new();
    for p in ports {
        map.entry(format!("{}/{}", p.container_port, p.protocol.as_str()))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(bollard::models::PortBinding {
                host_ip: Some(p.host_ip.clone()),
                host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
            });
    }
    map
}

/// The bindings in inspect's `NetworkSettings.Ports`, ordered by container
/// port and protocol. Exposed but unpublished ports (`null`) have none.
fn bindings_from(ports: Option<&PortMap>) -> Vec<PortBinding> {
    let mut out = Vec::new();
    for (key, list) in ports.into_iter().flatten() {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let (Ok(container_port), Some(protocol)) = (port.parse::<u16>(), Protocol::parse(proto))
        else {
            continue;
        };
        for b in list.iter().flatten() {
            let Some(host_port) = b.host_port.as_deref().and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            out.push(PortBinding {
                container_port,
                protocol,
                host_ip: b.host_ip.clone().unwrap_or_default(),
                host_port,
            });
        }
    }
    out.sort();
    out
}

fn info_from(c: ContainerInspectResponse) -> ContainerInfo {
    let state = c.state.unwrap_or_default();
    let labels = c
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    let ports = bindings_from(c.network_settings.as_ref().and_then(|n| n.ports.as_ref()));
    let net = c
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|mut n| n.remove(TASK_NETWORK));
    ContainerInfo {
        id: c.id.unwrap_or_default(),
        labels,
        running: state.running.unwrap_or(false),
        state: state.status.map(|s| s.to_string()).unwrap_or_default(),
        exit_code: state.exit_code,
        oom_killed: state.oom_killed.unwrap_or(false),
        error: state.error.filter(|e| !e.is_empty()),
        started_at: time(state.started_at.as_ref()),
        finished_at: time(state.finished_at.as_ref()),
        health: state.health.and_then(|h| h.status).map(|s| s.to_string()),
        ip: net
            .as_ref()
            .and_then(|n| n.ip_address.clone())
            .filter(|s| !s.is_empty()),
        mac: net.and_then(|n| n.mac_address).filter(|s| !s.is_empty()),
        image_id: c.image,
        ports,
    }
}

#[async_trait]
impl Runtime for DockerRuntime {
    async fn ensure_network(&self, name: &str) -> Result<(), RuntimeError> {
        match self
            .docker
            .inspect_network(
                name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if is_404(&e) => {}
            Err(e) => return Err(other(e)),
        }
        let mut labels = HashMap::new();
        labels.insert(LABEL_MANAGED.to_string(), "true".to_string());
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels),
            ..Default::default()
        };
        match self.docker.create_network(req).await {
            Ok(_) => Ok(()),
            // Lost a race with another creator.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(other(e)),
        }
    }

    async fn local_image(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(i) => {
                // The digest of this image's own repository when it has
                // one (an image pushed to several has one each).
                let repo = repository_of(image);
                let digests = i.repo_digests.unwrap_or_default();
                let own = digests
                    .iter()
                    .find(|d| d.split_once('@').is_some_and(|(r, _)| r == repo))
                    .or(digests.first());
                Ok(own
                    .and_then(|d| d.split_once('@').map(|(_, h)| h.to_string()))
                    .or(i.id))
            }
            Err(e) if is_404(&e) => Ok(None),
            Err(e) => Err(other(e)),
        }
    }

    async fn ensure_imported(
        &self,
        image: &str,
        tar: Vec<u8>,
        changes: &[&str],
    ) -> Result<(), RuntimeError> {
        if self.local_image(image).await?.is_some() {
            return Ok(());
        }
        let (repo, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
        let opts = CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(repo.into()),
            tag: Some(tag.into()),
            changes: changes.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        };
        let mut stream =
            self.docker
                .create_image(Some(opts), Some(bollard::body_full(tar.into())), None);
        while let Some(item) = stream.next().await {
            item.map_err(other)?;
        }
        Ok(())
    }

    async fn image_architecture(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(i.architecture.filter(|a| !a.is_empty())),
            Err(e) if is_404(&e) => Ok(None),
            Err(e) => Err(other(e)),
        }
    }

    async fn pull(
        &self,
        image: &str,
        platform: Option<&str>,
        auth: Option<&PullAuth>,
    ) -> Result<String, RuntimeError> {
        let opts = CreateImageOptions {
            from_image: Some(image.to_string()),
            platform: platform.unwrap_or_default().to_string(),
            ..Default::default()
        };
        let credentials = auth.map(|a| bollard::auth::DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: Some(a.server.clone()),
            ..Default::default()
        });
        let mut stream = self.docker.create_image(Some(opts), None, credentials);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                return Err(RuntimeError::Pull(e.to_string()));
            }
        }
        self.local_image(image)
            .await?
            .ok_or_else(|| RuntimeError::Pull(format!("{image} is not present after the pull")))
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let network_mode = spec.network.as_ref().map(|n| match n {
            NetworkAttach::Network(name) => name.clone(),
            NetworkAttach::Container(id) => format!("container:{id}"),
            NetworkAttach::None => "none".to_string(),
        });
        let network = match &spec.network {
            Some(NetworkAttach::Network(name)) => Some(name),
            _ => None,
        };
        if network.is_none() && !(spec.ports.is_empty() && spec.links.is_empty()) {
            return Err(RuntimeError::Other(format!(
                "container {}: published ports and links need a network of its own",
                spec.name
            )));
        }
        // On a user-defined network Docker ignores `HostConfig.Links`; links
        // are made per endpoint, as aliases only this container resolves.
        let networking_config = network.filter(|_| !spec.links.is_empty()).map(|name| {
            let links = spec
                .links
                .iter()
                .map(|l| format!("{}:{}", l.container, l.alias))
                .collect();
            NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    name.clone(),
                    EndpointSettings {
                        links: Some(links),
                        ..Default::default()
                    },
                )])),
            }
        });
        let port_bindings = (!spec.ports.is_empty()).then(|| port_map(&spec.ports));
        let exposed_ports = port_bindings
            .as_ref()
            .map(|m| m.keys().map(|k| (k.clone(), HashMap::new())).collect());
        let host = HostConfig {
            network_mode,
            port_bindings,
            memory: spec.memory,
            memory_reservation: spec.memory_reservation,
            // No swap beyond the hard limit, so the limit is what kills.
            memory_swap: spec.memory,
            cpu_shares: spec.cpu_shares,
            nano_cpus: spec.nano_cpus,
            cgroup_parent: spec.cgroup_parent.clone(),
            readonly_rootfs: Some(spec.readonly_rootfs),
            init: spec.init.then_some(true),
            ulimits: (!spec.ulimits.is_empty()).then(|| {
                spec.ulimits
                    .iter()
                    .map(|(name, soft, hard)| ResourcesUlimits {
                        name: Some(name.clone()),
                        soft: Some(*soft),
                        hard: Some(*hard),
                    })
                    .collect()
            }),
            ..Default::default()
        };
        let second = 1_000_000_000i64;
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.command.clone(),
            env: Some(spec.env.clone()),
            working_dir: spec.working_dir.clone(),
            user: spec.user.clone(),
            hostname: spec.hostname.clone(),
            labels: Some(spec.labels.clone()),
            stop_timeout: spec.stop_timeout_s,
            healthcheck: spec.health.as_ref().map(|h| HealthConfig {
                test: Some(h.test.clone()),
                interval: Some(h.interval_s * second),
                timeout: Some(h.timeout_s * second),
                retries: Some(h.retries),
                start_period: Some(h.start_period_s * second),
                start_interval: None,
            }),
            host_config: Some(host),
            exposed_ports,
            networking_config,
            ..Default::default()
        };
        let opts = CreateContainerOptions {
            name: Some(spec.name.clone()),
            platform: spec.platform.clone().unwrap_or_default(),
        };
        let resp = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| {
                if is_404(&e) {
                    RuntimeError::NotFound(e.to_string())
                } else {
                    other(e)
                }
            })?;
        Ok(resp.id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.docker
            .start_container(id, None::<StartContainerOptions>)
            .await
            .map_err(other)
    }

    async fn stop(&self, id: &str, timeout_s: i64) -> Result<(), RuntimeError> {
        let opts = StopContainerOptions {
            t: Some(timeout_s as i32),
            signal: None,
        };
        match self.docker.stop_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_404(&e) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(other(e)),
        }
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            link: false,
        };
        match self.docker.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_404(&e) => Ok(()),
            Err(e) => Err(other(e)),
        }
    }

    async fn rename(&self, id: &str, name: &str) -> Result<(), RuntimeError> {
        let opts = RenameContainerOptions {
            name: name.to_string(),
        };
        self.docker.rename_container(id, opts).await.map_err(other)
    }

    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        match self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => {
                let info = info_from(c);
                // Docker learns of an OOM kill from an event that can come
                // after the exit's: a container that has just exited 137
                // without the flag is looked at once more.
                let just_killed = !info.running
                    && info.exit_code == Some(137)
                    && !info.oom_killed
                    && info
                        .finished_at
                        .is_some_and(|f| Utc::now() - f < chrono::Duration::seconds(2));
                if just_killed {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    if let Ok(again) = self
                        .docker
                        .inspect_container(id, None::<InspectContainerOptions>)
                        .await
                    {
                        return Ok(Some(info_from(again)));
                    }
                }
                Ok(Some(info))
            }
            Err(e) if is_404(&e) => Ok(None),
            Err(e) => Err(other(e)),
        }
    }

    fn logs(
        &self,
        id: &str,
        since_s: i64,
    ) -> futures_util::stream::BoxStream<'static, Result<(i64, String), RuntimeError>> {
        let opts = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            timestamps: true,
            since: since_s.clamp(0, i32::MAX as i64) as i32,
            until: 0,
            tail: "all".into(),
        };
        self.docker
            .logs(id, Some(opts))
            .map(|item| {
                let out = item.map_err(other)?;
                let text = out.to_string();
                // "2026-11-23T09:24:44.241399123Z message"
                let (stamp, line) = text.split_once(' ').unwrap_or(("", text.as_str()));
                let ms = DateTime::parse_from_rfc3339(stamp)
                    .map(|t| t.timestamp_millis())
                    .unwrap_or_else(|_| Utc::now().timestamp_millis());
                Ok((ms, line.trim_end_matches(['\n', '\r']).to_string()))
            })
            .boxed()
    }

    async fn task_cgroup(
        &self,
        task_id: &str,
        limits: TaskLimits,
    ) -> Result<Option<String>, RuntimeError> {
        let Ok(cg) = &self.cgroups else {
            return Ok(None);
        };
        cg.create(task_id, limits)
            .map(Some)
            .map_err(|e| RuntimeError::Other(format!("cannot make the task's cgroup: {e}")))
    }

    async fn remove_task_cgroup(&self, task_id: &str) -> Result<(), RuntimeError> {
        match &self.cgroups {
            Ok(cg) => cg
                .remove(task_id)
                .map_err(|e| RuntimeError::Other(format!("cannot remove the task's cgroup: {e}"))),
            Err(_) => Ok(()),
        }
    }

    async fn ensure_host_address(&self, ip: &str) -> Result<(), RuntimeError> {
        local_engine().map_err(|why| {
            RuntimeError::Other(format!(
                "container instance addresses are local to this machine, but {why}"
            ))
        })?;
        self.addresses.ensure(ip).await
    }

    async fn remove_host_address(&self, ip: &str) -> Result<(), RuntimeError> {
        self.addresses.remove(ip).await
    }

    async fn list_managed(&self, owner: &str) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_string(),
            vec![format!("{LABEL_MANAGED}={owner}")],
        );
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(other)?;
        let mut out = Vec::new();
        for c in list {
            if let Some(id) = c.id {
                if let Some(info) = self.inspect(&id).await? {
                    out.push(info);
                }
            }
        }
        Ok(out)
    }
}

/// An image reference without its tag or digest (`host:5000/a/b:v1` →
/// `host:5000/a/b`).
fn repository_of(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(port: u16, protocol: Protocol, host_port: Option<u16>) -> PublishedPort {
        PublishedPort {
            container_port: port,
            protocol,
            host_ip: "10.99.0.1".into(),
            host_port,
        }
    }

    #[test]
    fn published_ports_become_docker_port_bindings() {
        let map = port_map(&[
            published(80, Protocol::Tcp, Some(8080)),
            published(80, Protocol::Tcp, None),
            published(53, Protocol::Udp, None),
        ]);
        let json = serde_json::to_value(&map).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "80/tcp": [
                    {"HostIp": "10.99.0.1", "HostPort": "8080"},
                    {"HostIp": "10.99.0.1", "HostPort": ""},
                ],
                "53/udp": [{"HostIp": "10.99.0.1", "HostPort": ""}],
            })
        );
    }

    #[test]
    fn bindings_as_inspect_reports_them() {
        let map: PortMap = serde_json::from_value(serde_json::json!({
            "8080/tcp": [{"HostIp": "10.99.0.1", "HostPort": "32768"}],
            "9090/udp": [{"HostIp": "10.99.0.1", "HostPort": "32768"}],
            "80/tcp": [{"HostIp": "10.99.0.1", "HostPort": "80"}],
            "7070/tcp": null,
            "sctp/x": [{"HostIp": "", "HostPort": "1"}],
        }))
        .unwrap();
        let b = bindings_from(Some(&map));
        let brief: Vec<_> = b
            .iter()
            .map(|b| {
                (
                    b.container_port,
                    b.protocol,
                    b.host_ip.as_str(),
                    b.host_port,
                )
            })
            .collect();
        assert_eq!(
            brief,
            vec![
                (80, Protocol::Tcp, "10.99.0.1", 80),
                (8080, Protocol::Tcp, "10.99.0.1", 32768),
                (9090, Protocol::Udp, "10.99.0.1", 32768),
            ]
        );
        assert!(bindings_from(None).is_empty());
    }
}
