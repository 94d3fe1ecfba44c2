//! One task's reconcile: from whatever state it is in, the next steps toward
//! its desired state. Every transition is saved before the next effect.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::network::{self, NetworkMode};
use super::pull::Plan;
use super::{awslogs, Agent};
use crate::context::epoch_seconds;
use crate::ecs::shapes::{
    Connectivity, ContainerCondition, ContainerDefinition, HealthStatus, KeyValuePair, LaunchType,
    NetworkInterface, TaskStopCode,
};
use crate::ecs::status::TaskStatus;
use crate::ecs::tasks::{self, TaskRow};
use crate::metrics::Phase;
use crate::runtime::pause::{pause_elf, tar_one, PAUSE_IMAGE};
use crate::runtime::{
    ContainerInfo, ContainerSpec, HealthSpec, NetworkAttach, PublishedPort, RuntimeError,
    TaskLimits, LABEL_CLUSTER, LABEL_CONTAINER, LABEL_MANAGED, LABEL_TASK, PAUSE_CONTAINER,
    TASK_NETWORK,
};

/// ECS's default and Fargate's maximum `stopTimeout`, seconds.
pub const DEFAULT_STOP_TIMEOUT: i64 = 30;
pub const FARGATE_MAX_STOP_TIMEOUT: i64 = 120;
/// How long a container may wait for its `dependsOn` conditions by default.
pub const DEFAULT_START_TIMEOUT: i64 = 180;

/// Now, from the agent's clock, as the epoch seconds ECS reports.
fn now(agent: &Agent) -> f64 {
    epoch_seconds(agent.clock.now())
}

async fn save(agent: &Agent, task: &TaskRow) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let r = agent.control.save_task(task).await;
    agent.metrics.task_phase(Phase::Save, t0.elapsed());
    r
}

/// How long ago the task was created (RunTask committed), by the wall clock.
fn since_created(agent: &Agent, task: &TaskRow) -> Option<Duration> {
    let created = task.doc.created_at?;
    Some(Duration::from_secs_f64((now(agent) - created).max(0.0)))
}

/// Re-read what the API decides (desired status, stop reason).
async fn refresh_desired(agent: &Agent, task: &mut TaskRow) -> anyhow::Result<()> {
    if let Some(t) = agent.control.load_task(&task.arn).await? {
        task.desired_status = t.desired_status;
        task.stop_code = t.stop_code;
        task.stopped_reason = t.stopped_reason;
    }
    Ok(())
}

async fn request_stop(
    agent: &Agent,
    task: &mut TaskRow,
    code: TaskStopCode,
    reason: &str,
) -> anyhow::Result<()> {
    agent.control.request_stop(&task.arn, code, reason).await?;
    refresh_desired(agent, task).await
}

fn set_status(task: &mut TaskRow, status: TaskStatus) {
    task.doc.last_status = Some(status);
}

/// Record why a container failed, in its part of the task.
fn set_reason(task: &mut TaskRow, container: &str, reason: &str) {
    if let Some(c) = task.container_mut(container) {
        c.reason = Some(reason.to_string());
    }
}

fn labels(owner: &str, task: &TaskRow, container: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_string(), owner.to_string()),
        (LABEL_CLUSTER.to_string(), task.cluster_arn.clone()),
        (LABEL_TASK.to_string(), task.arn.clone()),
        (LABEL_CONTAINER.to_string(), container.to_string()),
    ])
}

/// A container's `stopTimeout`: ECS's default when unset; Fargate caps it at
/// 120 s, the EC2 launch type does not.
fn stop_timeout(task: &TaskRow, def: &ContainerDefinition) -> i64 {
    let t = def.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT).max(0);
    match task.doc.launch_type {
        Some(LaunchType::Ec2) => t,
        _ => t.min(FARGATE_MAX_STOP_TIMEOUT),
    }
}

fn essential(def: &ContainerDefinition) -> bool {
    def.essential.unwrap_or(true)
}

fn name_of(def: &ContainerDefinition) -> &str {
    def.name.as_deref().unwrap_or_default()
}

/// A task's `cpu` or `memory` (strings of a number in the ECS shape).
fn number(v: &Option<String>) -> Option<i64> {
    v.as_deref().and_then(|v| v.parse::<i64>().ok())
}

/// The address of the container instance an EC2 task runs on, where its
/// ports are published; `None` for FARGATE. `Err` when the mode publishes
/// ports and the task has none.
fn host_address(task: &TaskRow, mode: NetworkMode) -> Result<Option<String>, RuntimeError> {
    if task.doc.launch_type == Some(LaunchType::Fargate) {
        return Ok(None);
    }
    match &task.runtime.host_ip {
        Some(ip) => Ok(Some(ip.clone())),
        None if mode.publishes() => Err(RuntimeError::Other(
            "the task has no container instance address to publish its ports on".into(),
        )),
        None => Ok(None),
    }
}

/// Whether a task's container can run its image here.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PlatformCheck {
    /// Create it with this platform (`linux/arm64`), or the engine's default
    /// (`None`: the machine's own).
    Run(Option<String>),
    /// It cannot: the container's reason and the task's stopped reason.
    Fail(String),
}

/// Whether a container of a task for `task_arch` runs its image built for
/// `image_arch` (`None`: the image does not say, so the machine's own) on a
/// machine of `native` architecture, `emulated` saying whether binaries of
/// `task_arch` run here through emulation (binfmt). Architectures are
/// Docker's names (`amd64`, `arm64`). As on ECS, an image without a variant
/// for the instance's architecture fails as a pull.
fn platform_check(
    task_arch: &str,
    image_arch: Option<&str>,
    native: &str,
    emulated: bool,
) -> PlatformCheck {
    if task_arch == native {
        return PlatformCheck::Run(None);
    }
    let platform = format!("linux/{task_arch}");
    if image_arch.unwrap_or(native) != task_arch {
        return PlatformCheck::Fail(format!(
            "CannotPullContainerError: pull image manifest has been retried 1 time(s): image Manifest does not contain descriptor matching platform '{platform}'"
        ));
    }
    if !emulated {
        return PlatformCheck::Fail(format!(
            "CannotStartContainerError: {platform} cannot run on this machine (linux/{native}): exec format error: no emulation for {platform} is installed (qemu-user-static)"
        ));
    }
    PlatformCheck::Run(Some(platform))
}

/// The architecture the task was placed for (its `ecs.cpu-architecture`
/// attribute), as Docker names it; the machine's own when it has none.
fn task_arch(task: &TaskRow, native: &str) -> String {
    task.doc
        .attributes
        .iter()
        .flatten()
        .find(|a| a.name == "ecs.cpu-architecture")
        .and_then(|a| a.value.as_deref())
        .map(crate::runtime::docker_arch)
        .unwrap_or_else(|| native.to_string())
}

/// Where a task's containers are attached.
#[derive(Debug, Clone, Copy)]
struct TaskNetwork<'a> {
    mode: NetworkMode,
    /// The sandbox, in the modes that have one.
    pause_id: Option<&'a str>,
    /// The container instance's address, in the modes that publish ports.
    host_ip: Option<&'a str>,
}

/// The runtime spec of one container of a task.
fn spec_for(
    owner: &str,
    task: &TaskRow,
    def: &ContainerDefinition,
    net: TaskNetwork<'_>,
    cgroup: Option<&str>,
) -> ContainerSpec {
    const MIB: i64 = 1024 * 1024;
    let name = name_of(def);
    let task_memory = number(&task.doc.memory);
    let task_cpu = number(&task.doc.cpu);
    let env = def
        .environment
        .iter()
        .flatten()
        .filter_map(|KeyValuePair { name, value }| {
            Some(format!(
                "{}={}",
                name.as_deref()?,
                value.as_deref().unwrap_or("")
            ))
        })
        .collect();
    let health = def
        .health_check
        .as_ref()
        .filter(|h| !h.command.is_empty())
        .map(|h| HealthSpec {
            test: h.command.clone(),
            interval_s: h.interval.unwrap_or(30),
            timeout_s: h.timeout.unwrap_or(5),
            retries: h.retries.unwrap_or(3),
            start_period_s: h.start_period.unwrap_or(0),
        });
    let ulimits = def
        .ulimits
        .iter()
        .flatten()
        .map(|u| (u.name.as_str().to_string(), u.soft_limit, u.hard_limit))
        .collect();
    let host_ip = net.host_ip.unwrap_or_default();
    let (network, ports, links, hostname) = match (net.mode, net.pause_id) {
        (NetworkMode::Bridge, _) => (
            NetworkAttach::Network(TASK_NETWORK.into()),
            network::container_ports(net.mode, def, host_ip),
            network::links(net.mode, task.id(), def),
            def.hostname.clone(),
        ),
        (NetworkMode::None, _) => (
            NetworkAttach::None,
            Vec::new(),
            Vec::new(),
            def.hostname.clone(),
        ),
        (NetworkMode::Awsvpc | NetworkMode::Host, pause_id) => (
            NetworkAttach::Container(pause_id.unwrap_or_default().to_string()),
            Vec::new(),
            Vec::new(),
            None,
        ),
    };
    ContainerSpec {
        name: network::runtime_name(task.id(), name),
        image: def.image.clone().unwrap_or_default(),
        entrypoint: def.entry_point.clone(),
        command: def.command.clone(),
        env,
        working_dir: def.working_directory.clone(),
        user: def.user.clone(),
        hostname,
        labels: labels(owner, task, name),
        network: Some(network),
        ports,
        links,
        // With a task cgroup, the task's memory and cpu bound all its
        // containers together; without one, each container on its own.
        memory: match cgroup {
            Some(_) => def.memory,
            None => def.memory.or(task_memory),
        }
        .map(|m| m * MIB),
        memory_reservation: def.memory_reservation.map(|m| m * MIB),
        cpu_shares: def.cpu.filter(|c| *c > 0).map(|c| c.max(2)),
        nano_cpus: match cgroup {
            Some(_) => None,
            None => task_cpu.map(|c| c * 1_000_000_000 / 1024),
        },
        cgroup_parent: cgroup.map(str::to_string),
        readonly_rootfs: def.readonly_root_filesystem.unwrap_or(false),
        init: def
            .linux_parameters
            .as_ref()
            .and_then(|l| l.init_process_enabled)
            .unwrap_or(false),
        ulimits,
        stop_timeout_s: Some(stop_timeout(task, def)),
        health,
        // Set by `start_containers` for a task of another architecture.
        platform: None,
    }
}

pub async fn reconcile(agent: &Agent, arn: &str) -> anyhow::Result<()> {
    let Some(mut task) = agent.control.load_task(arn).await? else {
        return Ok(());
    };
    if task.last_status() == TaskStatus::Stopped {
        return Ok(());
    }
    let td_arn = task.doc.task_definition_arn.clone().unwrap_or_default();
    let td = agent
        .control
        .load_task_definition(arn, &td_arn)
        .await?
        .ok_or_else(|| anyhow::anyhow!("task definition {td_arn} is gone"))?;
    let defs = tasks::effective_containers(&td, &task.doc.overrides.clone().unwrap_or_default());
    let mode = NetworkMode::of(&task.doc, &td);
    let running = |t: &TaskRow| t.desired_status == TaskStatus::Running;

    if running(&task) && task.last_status() == TaskStatus::Provisioning {
        if let Err(e) = provision(agent, &mut task, &defs, mode).await {
            let what = if mode.has_sandbox() {
                "the task's network sandbox"
            } else {
                "the task's network"
            };
            request_stop(
                agent,
                &mut task,
                TaskStopCode::TaskFailedToStart,
                &format!("ResourceInitializationError: failed to set up {what}: {e}"),
            )
            .await?;
        }
    }
    refresh_desired(agent, &mut task).await?;
    if running(&task)
        && matches!(
            task.last_status(),
            TaskStatus::Pending | TaskStatus::Activating
        )
    {
        start_containers(agent, &mut task, &defs, mode).await?;
    }
    refresh_desired(agent, &mut task).await?;
    if running(&task) && task.last_status() == TaskStatus::Running {
        monitor(agent, &mut task, &defs).await?;
    }
    if task.desired_status == TaskStatus::Stopped {
        stop(agent, &mut task, &defs).await?;
    }
    Ok(())
}

/// PROVISIONING → PENDING: the container instance's address (EC2), the
/// network sandbox (`awsvpc`, `host`), and the task's address (`awsvpc`).
async fn provision(
    agent: &Agent,
    task: &mut TaskRow,
    defs: &[ContainerDefinition],
    mode: NetworkMode,
) -> Result<(), RuntimeError> {
    let rt = &agent.runtime;
    if task.runtime.cgroup.is_none() && task.runtime.pause_id.is_none() {
        if let Some(d) = since_created(agent, task) {
            agent.metrics.task_phase(Phase::Pickup, d);
        }
    }
    let t0 = Instant::now();
    let host_ip = host_address(task, mode)?;
    if let Some(ip) = &host_ip {
        rt.ensure_host_address(ip).await?;
    }
    rt.ensure_network(TASK_NETWORK).await?;
    if mode.has_sandbox() {
        rt.ensure_imported(
            PAUSE_IMAGE,
            tar_one("pause", &pause_elf()),
            &["CMD [\"/pause\"]"],
        )
        .await?;
    }
    // The task's cgroup, before anything is put in it.
    let limits = TaskLimits {
        memory_bytes: number(&task.doc.memory).map(|m| m << 20),
        cpu_units: number(&task.doc.cpu),
    };
    let cgroup = rt.task_cgroup(task.id(), limits).await?;
    if cgroup != task.runtime.cgroup {
        task.runtime.cgroup = cgroup;
        save(agent, task)
            .await
            .map_err(|e| RuntimeError::Other(e.to_string()))?;
    }
    agent.metrics.task_phase(Phase::Prepare, t0.elapsed());
    if mode.has_sandbox() {
        let t0 = Instant::now();
        let ports = network::sandbox_ports(mode, defs, host_ip.as_deref().unwrap_or_default());
        let sandbox = sandbox(agent, task, ports).await?;
        if mode == NetworkMode::Awsvpc {
            attach_eni(task, &sandbox);
        }
        agent.metrics.task_phase(Phase::Sandbox, t0.elapsed());
    }
    task.doc.connectivity = Some(Connectivity::Connected);
    task.doc.connectivity_at = Some(now(agent));
    set_status(task, TaskStatus::Pending);
    save(agent, task)
        .await
        .map_err(|e| RuntimeError::Other(e.to_string()))?;
    Ok(())
}

/// The task's network sandbox, created and started unless it is; its ports
/// published (`host` mode).
async fn sandbox(
    agent: &Agent,
    task: &mut TaskRow,
    ports: Vec<PublishedPort>,
) -> Result<ContainerInfo, RuntimeError> {
    let rt = &agent.runtime;
    let existing = match &task.runtime.pause_id {
        Some(id) => rt.inspect(id).await?,
        None => None,
    };
    let pooled = match (&existing, ports.is_empty()) {
        (None, true) => from_pool(agent, task).await?,
        _ => None,
    };
    let pause = match existing.or(pooled) {
        Some(info) => info,
        None => {
            let spec = ContainerSpec {
                name: format!("berth-{}-pause", task.id()),
                image: PAUSE_IMAGE.into(),
                labels: labels(&agent.owner, task, PAUSE_CONTAINER),
                network: Some(NetworkAttach::Network(TASK_NETWORK.into())),
                cgroup_parent: task.runtime.cgroup.clone(),
                ports,
                ..Default::default()
            };
            // A leftover of an earlier attempt with the same name goes first.
            rt.remove(&spec.name).await?;
            let id = rt.create(&spec).await?;
            task.runtime.pause_id = Some(id.clone());
            save(agent, task)
                .await
                .map_err(|e| RuntimeError::Other(e.to_string()))?;
            rt.start(&id).await?;
            rt.inspect(&id)
                .await?
                .ok_or_else(|| RuntimeError::Other("sandbox vanished".into()))?
        }
    };
    if !pause.running {
        rt.start(&pause.id).await?;
    }
    Ok(rt.inspect(&pause.id).await?.unwrap_or(pause))
}

/// A sandbox from the pool, recorded as the task's and named for it; `None`
/// when the pool has none ready (or the one it had is no longer running).
async fn from_pool(
    agent: &Agent,
    task: &mut TaskRow,
) -> Result<Option<ContainerInfo>, RuntimeError> {
    let rt = &agent.runtime;
    let Some(id) = agent.pool.take() else {
        return Ok(None);
    };
    agent.refill();
    let info = rt.inspect(&id).await?.filter(|i| i.running);
    let Some(info) = info else {
        agent.pool.settled(&id);
        rt.remove(&id).await?;
        return Ok(None);
    };
    task.runtime.pause_id = Some(id.clone());
    let saved = save(agent, task).await;
    agent.pool.settled(&id);
    saved.map_err(|e| RuntimeError::Other(e.to_string()))?;
    // Named as the task's own sandbox would be; a leftover of that name goes.
    let name = format!("berth-{}-pause", task.id());
    rt.remove(&name).await?;
    rt.rename(&id, &name).await?;
    Ok(Some(info))
}

/// Report the sandbox's address as the task's ENI (`awsvpc`), in its first
/// attachment, when it has one.
fn attach_eni(task: &mut TaskRow, info: &ContainerInfo) {
    let ip = info.ip.clone().unwrap_or_default();
    let mac = info.mac.clone().unwrap_or_default();
    let eni = format!("eni-{}", &info.id[..17.min(info.id.len())]);
    let Some(att) = task.doc.attachments.iter_mut().flatten().next() else {
        return;
    };
    let subnet = att
        .details
        .iter()
        .flatten()
        .next()
        .and_then(|d| d.value.clone())
        .unwrap_or_default();
    let pair = |name: &str, value: String| KeyValuePair {
        name: Some(name.to_string()),
        value: Some(value),
    };
    att.status = Some("ATTACHED".into());
    att.details = Some(vec![
        pair("subnetId", subnet),
        pair("networkInterfaceId", eni),
        pair("macAddress", mac),
        pair(
            "privateDnsName",
            format!("ip-{}.ec2.internal", ip.replace('.', "-")),
        ),
        pair("privateIPv4Address", ip.clone()),
    ]);
    let attachment_id = att.id.clone();
    for c in task.doc.containers.iter_mut().flatten() {
        c.network_interfaces = Some(vec![NetworkInterface {
            attachment_id: attachment_id.clone(),
            private_ipv4_address: Some(ip.clone()),
            ..Default::default()
        }]);
    }
}

/// What a container waits for before it starts: its `dependsOn`
/// conditions, and the containers it links to started (as ECS orders links).
fn start_conditions(def: &ContainerDefinition) -> Vec<(String, ContainerCondition)> {
    let mut out: Vec<(String, ContainerCondition)> = def
        .depends_on
        .iter()
        .flatten()
        .map(|d| (d.container_name.clone(), d.condition))
        .collect();
    for target in network::link_targets(def) {
        if !out.iter().any(|(dep, _)| *dep == target) {
            out.push((target, ContainerCondition::Start));
        }
    }
    out
}

/// Whether a container's `dependsOn` conditions (and links) hold; `Err`
/// when they never will.
fn dependencies_met(
    def: &ContainerDefinition,
    states: &HashMap<String, ContainerInfo>,
) -> Result<bool, String> {
    for (dep, condition) in start_conditions(def) {
        let Some(s) = states.get(&dep) else {
            return Ok(false);
        };
        let exited = !s.running && s.finished_at.is_some();
        let ok = match condition {
            // Created is not enough: it must have been started.
            ContainerCondition::Start => s.running || s.started_at.is_some(),
            ContainerCondition::Complete => exited,
            ContainerCondition::Success => {
                if exited && s.exit_code != Some(0) {
                    return Err(format!(
                        "dependency container {dep} exited with code {} (condition SUCCESS)",
                        s.exit_code.unwrap_or(-1)
                    ));
                }
                exited
            }
            ContainerCondition::Healthy => {
                if exited {
                    return Err(format!(
                        "dependency container {dep} exited before it was healthy"
                    ));
                }
                s.health.as_deref() == Some("healthy")
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Record a started container's `networkBindings` (in the modes that
/// publish ports), once.
fn record_bindings(
    task: &mut TaskRow,
    def: &ContainerDefinition,
    mode: NetworkMode,
    host_ip: Option<&str>,
    info: &ContainerInfo,
) {
    let Some(c) = task.container_mut(name_of(def)) else {
        return;
    };
    if c.network_bindings.is_none() {
        c.network_bindings =
            network::network_bindings(mode, def, host_ip.unwrap_or_default(), &info.ports);
    }
}

/// The environment (`NAME=value`) each container still to be created gets
/// from its `secrets`; `Err` is the task's stopped reason.
async fn task_secrets(
    agent: &Agent,
    task: &TaskRow,
    defs: &[ContainerDefinition],
) -> Result<HashMap<String, Vec<String>>, String> {
    let wanted = super::secrets::wanted(
        defs.iter()
            .filter(|d| !task.runtime.containers.contains_key(name_of(d))),
    );
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let mut parts = task.arn.split(':');
    let region = parts.nth(3).unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    let value_froms: Vec<String> = wanted
        .values()
        .flatten()
        .map(|(_, vf)| vf.clone())
        .collect();
    let mut values = agent
        .control
        .resolve_secrets(account, region, &value_froms)
        .await?
        .into_iter();
    Ok(wanted
        .into_iter()
        .map(|(container, list)| {
            let env = list
                .into_iter()
                .map(|(name, _)| format!("{name}={}", values.next().unwrap_or_default()))
                .collect();
            (container, env)
        })
        .collect())
}

/// PENDING → ACTIVATING → RUNNING: pull, create, start in dependency order.
async fn start_containers(
    agent: &Agent,
    task: &mut TaskRow,
    defs: &[ContainerDefinition],
    mode: NetworkMode,
) -> anyhow::Result<()> {
    let rt = agent.runtime.clone();
    let pause_id = task.runtime.pause_id.clone();
    if mode.has_sandbox() && pause_id.is_none() {
        set_status(task, TaskStatus::Provisioning);
        save(agent, task).await?;
        return Ok(());
    }
    // The instance's address may be gone (the machine restarted) since
    // the task was provisioned.
    let host_ip = match host_address(task, mode) {
        Ok(ip) => ip,
        Err(e) => {
            let reason = format!("ResourceInitializationError: {e}");
            request_stop(agent, task, TaskStopCode::TaskFailedToStart, &reason).await?;
            return Ok(());
        }
    };
    if let Some(ip) = &host_ip {
        if let Err(e) = rt.ensure_host_address(ip).await {
            let reason = format!("ResourceInitializationError: {e}");
            request_stop(agent, task, TaskStopCode::TaskFailedToStart, &reason).await?;
            return Ok(());
        }
    }
    let net = TaskNetwork {
        mode,
        pause_id: pause_id.as_deref(),
        host_ip: host_ip.as_deref(),
    };
    // Secrets of the containers still to be created, read before any pull
    // as the ECS agent reads them; held in memory only.
    let secret_env = match task_secrets(agent, task, defs).await {
        Ok(env) => env,
        Err(reason) => {
            request_stop(agent, task, TaskStopCode::TaskFailedToStart, &reason).await?;
            return Ok(());
        }
    };
    // Pull what is missing.
    if task.doc.pull_started_at.is_none() {
        task.doc.pull_started_at = Some(now(agent));
        save(agent, task).await?;
    }
    // Only a task for another architecture than the machine's looks at its
    // images' architecture.
    let native = crate::runtime::native_arch();
    let arch = task_arch(task, &native);
    let foreign_platform = (arch != native).then(|| format!("linux/{arch}"));
    let mut platforms: HashMap<String, Option<String>> = HashMap::new();
    // Images naming an ECR registry run from Berth's registry, under the
    // name they have there.
    let mut resolved: HashMap<String, String> = HashMap::new();
    let t0 = Instant::now();
    for def in defs {
        let (name, asked) = (
            name_of(def).to_string(),
            def.image.clone().unwrap_or_default(),
        );
        let account = task.arn.split(':').nth(4).unwrap_or_default().to_string();
        let registry = match agent.control.registry_pull(&asked, &account).await {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref {asked}: {e:#}");
                set_reason(task, &name, &reason);
                save(agent, task).await?;
                request_stop(agent, task, TaskStopCode::TaskFailedToStart, &reason).await?;
                return Ok(());
            }
        };
        let image = registry.as_ref().map_or(asked.clone(), |r| r.image.clone());
        let cached = rt.local_image(&image).await?;
        let before = agent.pulled.lock().unwrap().contains(&image);
        let plan = super::pull::plan(
            agent.pull_behavior,
            registry.is_some(),
            cached.is_some(),
            before,
        );
        let pulled = match plan {
            Plan::UseCached => Ok(cached.clone().unwrap_or_default()),
            Plan::Pull { fallback } => {
                let auth = registry.as_ref().map(|r| &r.auth);
                match rt.pull(&image, foreign_platform.as_deref(), auth).await {
                    Ok(d) => {
                        agent.pulled.lock().unwrap().insert(image.clone());
                        Ok(d)
                    }
                    Err(e) if fallback => cached.clone().ok_or(e),
                    Err(e) => Err(e),
                }
            }
        };
        let digest = match pulled {
            Ok(d) => d,
            Err(e) => {
                let reason = format!("CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref {asked}: {e}");
                set_reason(task, &name, &reason);
                save(agent, task).await?;
                request_stop(agent, task, TaskStopCode::TaskFailedToStart, &reason).await?;
                return Ok(());
            }
        };
        if registry.is_some() {
            resolved.insert(name.clone(), image.clone());
        }
        if foreign_platform.is_some() {
            let image_arch = rt.image_architecture(&image).await?;
            let emulated = crate::runtime::emulation_registered(
                std::path::Path::new(crate::runtime::BINFMT_DIR),
                &arch,
            );
            match platform_check(&arch, image_arch.as_deref(), &native, emulated) {
                PlatformCheck::Run(platform) => {
                    platforms.insert(name.clone(), platform);
                }
                PlatformCheck::Fail(reason) => {
                    set_reason(task, &name, &reason);
                    save(agent, task).await?;
                    request_stop(agent, task, TaskStopCode::TaskFailedToStart, &reason).await?;
                    return Ok(());
                }
            }
        }
        if let Some(c) = task.container_mut(&name) {
            c.image_digest = Some(digest);
        }
    }
    agent.metrics.task_phase(Phase::Image, t0.elapsed());
    if task.doc.pull_stopped_at.is_none() {
        task.doc.pull_stopped_at = Some(now(agent));
        save(agent, task).await?;
    }
    // Log groups and streams, before any container writes a line.
    for (_, target) in log_targets(task, defs) {
        let prepared = match target {
            Ok(t) => awslogs::prepare(&*agent.control, &t).await,
            Err(e) => Err(e),
        };
        if let Err(reason) = prepared {
            request_stop(agent, task, TaskStopCode::TaskFailedToStart, &reason).await?;
            return Ok(());
        }
    }
    // Create the containers that do not exist yet.
    let t0 = Instant::now();
    for def in defs {
        let name = name_of(def).to_string();
        let existing = match task.runtime.containers.get(&name) {
            Some(id) => rt.inspect(id).await?,
            None => None,
        };
        if existing.is_none() {
            let mut spec = spec_for(&agent.owner, task, def, net, task.runtime.cgroup.as_deref());
            if let Some(vars) = secret_env.get(&name) {
                spec.env.extend(vars.iter().cloned());
            }
            spec.platform = platforms.get(&name).cloned().flatten();
            if let Some(image) = resolved.get(&name) {
                spec.image = image.clone();
            }
            rt.remove(&spec.name).await?;
            match rt.create(&spec).await {
                Ok(id) => {
                    task.runtime.containers.insert(name.clone(), id.clone());
                    if let Some(c) = task.container_mut(&name) {
                        c.runtime_id = Some(id);
                    }
                    save(agent, task).await?;
                }
                Err(e) => {
                    let reason = format!("CannotCreateContainerError: {e}");
                    request_stop(agent, task, TaskStopCode::TaskFailedToStart, &reason).await?;
                    return Ok(());
                }
            }
        }
    }
    agent.metrics.task_phase(Phase::Create, t0.elapsed());
    // Start in dependency order.
    let t0 = Instant::now();
    let mut states: HashMap<String, ContainerInfo> = HashMap::new();
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(
            defs.iter()
                .map(|d| d.start_timeout.unwrap_or(DEFAULT_START_TIMEOUT))
                .max()
                .unwrap_or(DEFAULT_START_TIMEOUT) as u64,
        );
    loop {
        refresh_desired(agent, task).await?;
        if task.desired_status != TaskStatus::Running {
            return Ok(());
        }
        states.clear();
        for (name, id) in &task.runtime.containers {
            if let Some(info) = rt.inspect(id).await? {
                states.insert(name.clone(), info);
            }
        }
        let mut waiting = false;
        let mut progressed = false;
        for def in defs {
            let name = name_of(def);
            let Some(state) = states.get(name) else {
                continue;
            };
            let started = state.running || state.started_at.is_some();
            let others_waiting = defs.iter().any(|d| {
                states
                    .get(name_of(d))
                    .is_some_and(|s| !s.running && s.started_at.is_none())
            });
            if started {
                // Started before (an earlier pass, or before a restart).
                follow_outputs(agent, task, std::slice::from_ref(def), |_| {
                    Some(state.running)
                });
                record_bindings(task, def, mode, host_ip.as_deref(), state);
                // An essential container that exits while others still wait
                // to start stops the task; once all have started, the task
                // is RUNNING and the monitor sees the exit.
                if !state.running && essential(def) && others_waiting {
                    observe(task, def, Some(state));
                    save(agent, task).await?;
                    request_stop(
                        agent,
                        task,
                        TaskStopCode::EssentialContainerExited,
                        "Essential container in task exited",
                    )
                    .await?;
                    return Ok(());
                }
                continue;
            }
            match dependencies_met(def, &states) {
                Ok(true) => {
                    if let Err(e) = rt.start(&state.id).await {
                        let reason = format!("CannotStartContainerError: {e}");
                        set_reason(task, name, &reason);
                        save(agent, task).await?;
                        request_stop(agent, task, TaskStopCode::TaskFailedToStart, &reason).await?;
                        return Ok(());
                    }
                    if let Some(c) = task.container_mut(name) {
                        c.last_status = Some(TaskStatus::Running);
                    }
                    follow_outputs(agent, task, defs, |n| (n == name).then_some(true));
                    waiting = true; // look again: it may satisfy others
                    progressed = true;
                }
                Ok(false) => waiting = true,
                Err(why) => {
                    request_stop(
                        agent,
                        task,
                        TaskStopCode::TaskFailedToStart,
                        &format!("DependencyConditionUnsatisfied: {why}"),
                    )
                    .await?;
                    return Ok(());
                }
            }
        }
        if !waiting {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            request_stop(
                agent,
                task,
                TaskStopCode::TaskFailedToStart,
                "DependencyConditionUnsatisfied: timed out waiting for dependsOn conditions",
            )
            .await?;
            return Ok(());
        }
        // Look again at once after starting something; otherwise wait for
        // a dependency to reach its condition.
        if !progressed {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    agent.metrics.task_phase(Phase::Start, t0.elapsed());
    // RUNNING is reported with what the containers are now (health that a
    // `dependsOn` waited for, exits), not only from the next monitor pass.
    for def in defs {
        if let Some(state) = states.get(name_of(def)) {
            observe(task, def, Some(state));
        }
    }
    task.doc.health_status = Some(task_health(task, defs));
    set_status(task, TaskStatus::Activating);
    save(agent, task).await?;
    set_status(task, TaskStatus::Running);
    task.doc.started_at = Some(now(agent));
    save(agent, task).await?;
    if let Some(d) = since_created(agent, task) {
        agent.metrics.task_phase(Phase::Total, d);
    }
    Ok(())
}

/// The awslogs targets of a task's containers, by container name.
fn log_targets(
    task: &TaskRow,
    defs: &[ContainerDefinition],
) -> Vec<(String, Result<awslogs::Target, String>)> {
    let Some(a) = crate::ecs::arn::parse(&task.arn) else {
        return Vec::new();
    };
    defs.iter()
        .filter_map(|d| {
            awslogs::target(d, a.account, a.region, task.id()).map(|t| (name_of(d).to_string(), t))
        })
        .collect()
}

/// Make sure the output of each started container that uses the awslogs
/// driver is copied. `state` says, by container name, whether it has been
/// started (`Some`) and is running (`Some(true)`); only started ones are
/// followed, for the runtime's log stream of a container not yet started
/// ends at once.
fn follow_outputs(
    agent: &Agent,
    task: &TaskRow,
    defs: &[ContainerDefinition],
    state: impl Fn(&str) -> Option<bool>,
) {
    for (name, target) in log_targets(task, defs) {
        if let (Ok(t), Some(id)) = (target, task.runtime.containers.get(&name)) {
            if let Some(running) = state(&name) {
                agent.follow(t, id, running);
            }
        }
    }
}

/// `Some(running)` once the runtime has started a container.
fn started(info: &ContainerInfo) -> Option<bool> {
    (info.running || info.started_at.is_some()).then_some(info.running)
}

/// Record a container's observed state in the task document.
fn observe(task: &mut TaskRow, def: &ContainerDefinition, info: Option<&ContainerInfo>) {
    let Some(c) = task.container_mut(name_of(def)) else {
        return;
    };
    match info {
        Some(i) if i.running => c.last_status = Some(TaskStatus::Running),
        Some(i) => {
            if i.started_at.is_some() || i.finished_at.is_some() {
                c.last_status = Some(TaskStatus::Stopped);
                if let Some(code) = i.exit_code {
                    c.exit_code = Some(code);
                }
                if i.oom_killed {
                    c.reason =
                        Some("OutOfMemoryError: Container killed due to memory usage".into());
                } else if let Some(err) = &i.error {
                    c.reason = Some(err.clone());
                }
            }
        }
        None => c.last_status = Some(TaskStatus::Stopped),
    }
    if def.health_check.is_some() {
        c.health_status = Some(match info.and_then(|i| i.health.as_deref()) {
            Some("healthy") => HealthStatus::Healthy,
            Some("unhealthy") => HealthStatus::Unhealthy,
            _ => HealthStatus::Unknown,
        });
    }
}

/// The task's health from its essential containers' health checks.
fn task_health(task: &TaskRow, defs: &[ContainerDefinition]) -> HealthStatus {
    let checked: Vec<HealthStatus> = defs
        .iter()
        .filter(|d| essential(d) && d.health_check.is_some())
        .filter_map(|d| {
            task.doc
                .containers
                .iter()
                .flatten()
                .find(|c| c.name.as_deref() == Some(name_of(d)))?
                .health_status
        })
        .collect();
    if checked.contains(&HealthStatus::Unhealthy) {
        HealthStatus::Unhealthy
    } else if !checked.is_empty() && checked.iter().all(|h| *h == HealthStatus::Healthy) {
        HealthStatus::Healthy
    } else {
        HealthStatus::Unknown
    }
}

/// RUNNING: watch the containers; an essential one exiting stops the task.
async fn monitor(
    agent: &Agent,
    task: &mut TaskRow,
    defs: &[ContainerDefinition],
) -> anyhow::Result<()> {
    let before = task.doc.clone();
    let mut stop_reason = None;
    if let Some(pause) = &task.runtime.pause_id {
        if !agent
            .runtime
            .inspect(pause)
            .await?
            .is_some_and(|p| p.running)
        {
            stop_reason = Some(
                "Task stopped because its network sandbox container is gone from the Docker host"
                    .to_string(),
            );
        }
    }
    for def in defs {
        let name = name_of(def);
        let info = match task.runtime.containers.get(name) {
            Some(id) => agent.runtime.inspect(id).await?,
            None => None,
        };
        observe(task, def, info.as_ref());
        // Adopted after a restart, or its follower broke off: copy on.
        if let Some(running) = info.as_ref().and_then(started) {
            follow_outputs(agent, task, std::slice::from_ref(def), |_| Some(running));
        }
        let gone = info.as_ref().is_none_or(|i| !i.running);
        if gone && essential(def) && stop_reason.is_none() {
            stop_reason = Some(match info {
                Some(_) => "Essential container in task exited".to_string(),
                None => format!("Essential container in task exited: container {name} is gone from the Docker host"),
            });
        }
    }
    task.doc.health_status = Some(task_health(task, defs));
    if task.doc != before {
        save(agent, task).await?;
    }
    if let Some(reason) = stop_reason {
        request_stop(agent, task, TaskStopCode::EssentialContainerExited, &reason).await?;
    }
    Ok(())
}

/// Desired STOPPED: DEACTIVATING → STOPPING → DEPROVISIONING → STOPPED.
async fn stop(
    agent: &Agent,
    task: &mut TaskRow,
    defs: &[ContainerDefinition],
) -> anyhow::Result<()> {
    let rt = agent.runtime.clone();
    if !matches!(
        task.last_status(),
        TaskStatus::Deactivating | TaskStatus::Stopping | TaskStatus::Deprovisioning
    ) {
        task.doc.stopping_at = Some(now(agent));
        set_status(task, TaskStatus::Deactivating);
        save(agent, task).await?;
    }
    if task.last_status() == TaskStatus::Deactivating {
        set_status(task, TaskStatus::Stopping);
        save(agent, task).await?;
    }
    if task.last_status() == TaskStatus::Stopping {
        let stops = defs.iter().filter_map(|def| {
            let id = task.runtime.containers.get(name_of(def))?.clone();
            let rt = rt.clone();
            let timeout = stop_timeout(task, def);
            Some(async move { rt.stop(&id, timeout).await })
        });
        for r in futures_util::future::join_all(stops).await {
            r?;
        }
        task.doc.execution_stopped_at = Some(now(agent));
        for def in defs {
            let info = match task.runtime.containers.get(name_of(def)) {
                Some(id) => rt.inspect(id).await?,
                None => None,
            };
            observe(task, def, info.as_ref());
            // Containers never started report no exit code.
            if let Some(c) = task.container_mut(name_of(def)) {
                c.last_status = Some(TaskStatus::Stopped);
            }
        }
        set_status(task, TaskStatus::Deprovisioning);
        save(agent, task).await?;
    }
    // What the containers wrote is stored before they go.
    let mut states = HashMap::new();
    for (name, id) in &task.runtime.containers {
        if let Some(s) = rt.inspect(id).await?.as_ref().and_then(started) {
            states.insert(name.clone(), s);
        }
    }
    follow_outputs(agent, task, defs, |n| states.get(n).copied());
    for id in task.runtime.containers.values() {
        agent.drain(id).await;
        rt.remove(id).await?;
    }
    if let Some(p) = &task.runtime.pause_id {
        rt.remove(p).await?;
    }
    if task.runtime.cgroup.is_some() {
        // Not worth keeping the task from STOPPED: what is left is empty.
        if let Err(e) = rt.remove_task_cgroup(task.id()).await {
            tracing::warn!(task = %task.arn, "{e}");
        }
    }
    if let Some(att) = task.doc.attachments.iter_mut().flatten().next() {
        att.status = Some("DELETED".into());
    }
    task.doc.stopped_at = Some(now(agent));
    set_status(task, TaskStatus::Stopped);
    save(agent, task).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::tasks::TaskRuntime;
    use crate::runtime::{Link, Protocol};
    use serde_json::{json, Value};

    fn obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    fn task(launch_type: &str, host_ip: Option<&str>) -> TaskRow {
        TaskRow {
            arn: "arn:aws:ecs:us-east-1:000000000000:task/c/abc".into(),
            cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/c".into(),
            desired_status: TaskStatus::Running,
            stop_code: None,
            stopped_reason: None,
            doc: obj(json!({"launchType": launch_type, "containers": [{"name": "web"}]})),
            runtime: TaskRuntime {
                host_ip: host_ip.map(str::to_string),
                ..Default::default()
            },
        }
    }

    fn started(running: bool) -> ContainerInfo {
        ContainerInfo {
            running,
            started_at: Some(chrono::Utc::now()),
            ..Default::default()
        }
    }

    #[test]
    fn platform_of_a_task_for_another_architecture() {
        use PlatformCheck::*;
        // The machine's own architecture: as always, whatever the image.
        assert_eq!(
            platform_check("amd64", Some("arm64"), "amd64", false),
            Run(None)
        );
        assert_eq!(platform_check("arm64", None, "arm64", false), Run(None));
        // No variant for the task's architecture: fails as ECS's pull does.
        let no_variant = "CannotPullContainerError: pull image manifest has been retried 1 time(s): image Manifest does not contain descriptor matching platform 'linux/arm64'";
        for emulated in [false, true] {
            assert_eq!(
                platform_check("arm64", Some("amd64"), "amd64", emulated),
                Fail(no_variant.into())
            );
            assert_eq!(
                platform_check("arm64", None, "amd64", emulated),
                Fail(no_variant.into())
            );
        }
        // The right variant: runs emulated, or cannot run at all.
        assert_eq!(
            platform_check("arm64", Some("arm64"), "amd64", true),
            Run(Some("linux/arm64".into()))
        );
        let Fail(why) = platform_check("arm64", Some("arm64"), "amd64", false) else {
            panic!("runs without emulation");
        };
        assert!(why.starts_with("CannotStartContainerError: "), "{why}");
        assert!(
            why.contains("no emulation for linux/arm64 is installed (qemu-user-static)"),
            "{why}"
        );
        // The other way round.
        assert_eq!(
            platform_check("amd64", Some("amd64"), "arm64", true),
            Run(Some("linux/amd64".into()))
        );
        assert!(matches!(
            platform_check("amd64", Some("arm64"), "arm64", true),
            Fail(r) if r.ends_with("platform 'linux/amd64'")
        ));
    }

    #[test]
    fn task_architecture_from_its_attribute() {
        let mut t = task("EC2", Some("10.99.0.1"));
        assert_eq!(task_arch(&t, "amd64"), "amd64");
        t.doc.attributes = obj(json!([{"name": "ecs.cpu-architecture", "value": "arm64"}]));
        assert_eq!(task_arch(&t, "amd64"), "arm64");
        t.doc.attributes = obj(json!([{"name": "ecs.cpu-architecture", "value": "x86_64"}]));
        assert_eq!(task_arch(&t, "amd64"), "amd64");
    }

    #[test]
    fn links_order_starts_like_depends_on_start() {
        let def: ContainerDefinition = obj(json!({
            "name": "web",
            "links": ["db:database", "cache", "db"],
            "dependsOn": [{"containerName": "cache", "condition": "HEALTHY"}],
        }));
        assert_eq!(
            start_conditions(&def),
            vec![
                ("cache".to_string(), ContainerCondition::Healthy),
                ("db".to_string(), ContainerCondition::Start),
            ]
        );
        let def: ContainerDefinition = obj(json!({"name": "web", "links": ["db:database"]}));
        let mut states = HashMap::new();
        assert_eq!(dependencies_met(&def, &states), Ok(false));
        states.insert("db".to_string(), ContainerInfo::default()); // created
        assert_eq!(dependencies_met(&def, &states), Ok(false));
        states.insert("db".to_string(), started(true));
        assert_eq!(dependencies_met(&def, &states), Ok(true));
        assert_eq!(
            dependencies_met(&obj(json!({"name": "db"})), &HashMap::new()),
            Ok(true)
        );
    }

    #[test]
    fn specs_by_network_mode() {
        let def: ContainerDefinition = obj(json!({
            "name": "web", "image": "img", "hostname": "www",
            "links": ["db:database"],
            "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}],
        }));
        let t = task("EC2", Some("10.99.0.1"));
        let bridge = TaskNetwork {
            mode: NetworkMode::Bridge,
            pause_id: None,
            host_ip: Some("10.99.0.1"),
        };
        let spec = spec_for("o", &t, &def, bridge, None);
        assert_eq!(spec.name, "berth-abc-web");
        assert_eq!(
            spec.network,
            Some(NetworkAttach::Network(TASK_NETWORK.into()))
        );
        assert_eq!(spec.hostname.as_deref(), Some("www"));
        assert_eq!(
            spec.ports,
            vec![PublishedPort {
                container_port: 80,
                protocol: Protocol::Tcp,
                host_ip: "10.99.0.1".into(),
                host_port: None,
            }]
        );
        assert_eq!(
            spec.links,
            vec![Link {
                container: "berth-abc-db".into(),
                alias: "database".into(),
            }]
        );
        for mode in [NetworkMode::Host, NetworkMode::Awsvpc] {
            let net = TaskNetwork {
                mode,
                pause_id: Some("pause1"),
                host_ip: Some("10.99.0.1"),
            };
            let spec = spec_for("o", &t, &def, net, None);
            assert_eq!(
                spec.network,
                Some(NetworkAttach::Container("pause1".into()))
            );
            assert!(spec.ports.is_empty() && spec.links.is_empty());
            assert_eq!(spec.hostname, None);
        }
    }

    #[test]
    fn host_address_only_for_ec2() {
        let fargate = task("FARGATE", Some("10.99.0.1"));
        assert_eq!(host_address(&fargate, NetworkMode::Awsvpc).unwrap(), None);
        let ec2 = task("EC2", Some("10.99.0.1"));
        for mode in [NetworkMode::Bridge, NetworkMode::Host, NetworkMode::Awsvpc] {
            assert_eq!(
                host_address(&ec2, mode).unwrap().as_deref(),
                Some("10.99.0.1")
            );
        }
        let nowhere = task("EC2", None);
        assert!(host_address(&nowhere, NetworkMode::Bridge).is_err());
        assert!(host_address(&nowhere, NetworkMode::Host).is_err());
        assert_eq!(host_address(&nowhere, NetworkMode::Awsvpc).unwrap(), None);
    }

    #[test]
    fn bindings_recorded_once() {
        let def: ContainerDefinition =
            obj(json!({"name": "web", "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}));
        let mut t = task("EC2", Some("10.99.0.1"));
        let mut info = started(true);
        info.ports = vec![crate::runtime::PortBinding {
            container_port: 80,
            protocol: Protocol::Tcp,
            host_ip: "10.99.0.1".into(),
            host_port: 32768,
        }];
        record_bindings(&mut t, &def, NetworkMode::Bridge, Some("10.99.0.1"), &info);
        let expected = json!([{"bindIP": "10.99.0.1", "containerPort": 80, "hostPort": 32768, "protocol": "tcp"}]);
        let bindings = |t: &TaskRow| {
            serde_json::to_value(&t.doc.containers.as_ref().unwrap()[0].network_bindings).unwrap()
        };
        assert_eq!(bindings(&t), expected);
        // Stopped later: what was bound stays reported.
        record_bindings(
            &mut t,
            &def,
            NetworkMode::Bridge,
            Some("10.99.0.1"),
            &started(false),
        );
        assert_eq!(bindings(&t), expected);
        let mut f = task("FARGATE", None);
        record_bindings(&mut f, &def, NetworkMode::Awsvpc, None, &info);
        assert_eq!(bindings(&f), Value::Null);
    }
}
