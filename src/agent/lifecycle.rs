//! One task's reconcile: from whatever state it is in, the next steps toward
//! its desired state. Every transition is saved before the next effect.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Map, Value};

use super::{awslogs, Agent};
use crate::context::epoch_seconds;
use crate::ecs::taskdefs;
use crate::ecs::tasks::{self, TaskRow};
use crate::runtime::pause::{pause_elf, tar_one, PAUSE_IMAGE};
use crate::runtime::{
    ContainerInfo, ContainerSpec, HealthSpec, NetworkAttach, RuntimeError, TaskLimits,
    LABEL_CLUSTER, LABEL_CONTAINER, LABEL_MANAGED, LABEL_TASK, PAUSE_CONTAINER, TASK_NETWORK,
};

/// ECS's default and Fargate's maximum `stopTimeout`, seconds.
pub const DEFAULT_STOP_TIMEOUT: i64 = 30;
pub const FARGATE_MAX_STOP_TIMEOUT: i64 = 120;
/// How long a container may wait for its `dependsOn` conditions by default.
pub const DEFAULT_START_TIMEOUT: i64 = 180;

fn now() -> f64 {
    epoch_seconds(Utc::now())
}

fn save(agent: &Agent, task: &TaskRow) -> anyhow::Result<()> {
    agent.store.write(|tx| tasks::save_observed(tx, task))?;
    Ok(())
}

/// Re-read what the API decides (desired status, stop reason).
fn refresh_desired(agent: &Agent, task: &mut TaskRow) -> anyhow::Result<()> {
    if let Some(t) = agent.store.read(|c| tasks::load(c, &task.arn))? {
        task.desired_status = t.desired_status;
        task.stop_code = t.stop_code;
        task.stopped_reason = t.stopped_reason;
    }
    Ok(())
}

fn request_stop(agent: &Agent, task: &mut TaskRow, code: &str, reason: &str) -> anyhow::Result<()> {
    agent
        .store
        .write(|tx| tasks::request_stop(tx, &task.arn, code, reason))?;
    refresh_desired(agent, task)
}

fn set(task: &mut TaskRow, key: &str, v: Value) {
    task.doc.insert(key.into(), v);
}

fn set_status(task: &mut TaskRow, status: &str) {
    set(task, "lastStatus", json!(status));
}

fn container_doc<'a>(task: &'a mut TaskRow, name: &str) -> Option<&'a mut Map<String, Value>> {
    task.doc
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
}

fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn labels(owner: &str, task: &TaskRow, container: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED.to_string(), owner.to_string()),
        (LABEL_CLUSTER.to_string(), task.cluster_arn.clone()),
        (LABEL_TASK.to_string(), task.arn.clone()),
        (LABEL_CONTAINER.to_string(), container.to_string()),
    ])
}

fn int(c: &Map<String, Value>, k: &str) -> Option<i64> {
    c.get(k).and_then(Value::as_i64)
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    })
}

fn stop_timeout(def: &Map<String, Value>) -> i64 {
    int(def, "stopTimeout")
        .unwrap_or(DEFAULT_STOP_TIMEOUT)
        .clamp(0, FARGATE_MAX_STOP_TIMEOUT)
}

fn essential(def: &Map<String, Value>) -> bool {
    def.get("essential")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

fn name_of(def: &Map<String, Value>) -> &str {
    def.get("name").and_then(Value::as_str).unwrap_or_default()
}

/// The task's `cpu` or `memory` (strings of a number in the ECS shape).
fn task_number(task: &TaskRow, key: &str) -> Option<i64> {
    task.doc
        .get(key)
        .and_then(Value::as_str)
        .and_then(|v| v.parse::<i64>().ok())
}

/// The runtime spec of one container of a task.
fn spec_for(
    owner: &str,
    task: &TaskRow,
    def: &Map<String, Value>,
    pause_id: &str,
    cgroup: Option<&str>,
) -> ContainerSpec {
    const MIB: i64 = 1024 * 1024;
    let name = name_of(def);
    let task_memory = task_number(task, "memory");
    let task_cpu = task_number(task, "cpu");
    let env = def
        .get("environment")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some(format!(
                "{}={}",
                e.get("name")?.as_str()?,
                e.get("value")?.as_str().unwrap_or("")
            ))
        })
        .collect();
    let health = def.get("healthCheck").and_then(|h| {
        Some(HealthSpec {
            test: strings(h.get("command"))?,
            interval_s: h.get("interval").and_then(Value::as_i64).unwrap_or(30),
            timeout_s: h.get("timeout").and_then(Value::as_i64).unwrap_or(5),
            retries: h.get("retries").and_then(Value::as_i64).unwrap_or(3),
            start_period_s: h.get("startPeriod").and_then(Value::as_i64).unwrap_or(0),
        })
    });
    let ulimits = def
        .get("ulimits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|u| {
            Some((
                u.get("name")?.as_str()?.to_string(),
                u.get("softLimit")?.as_i64()?,
                u.get("hardLimit")?.as_i64()?,
            ))
        })
        .collect();
    ContainerSpec {
        name: format!("berth-{}-{name}", task_id(&task.arn)),
        image: def
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        entrypoint: strings(def.get("entryPoint")),
        command: strings(def.get("command")),
        env,
        working_dir: def
            .get("workingDirectory")
            .and_then(Value::as_str)
            .map(str::to_string),
        user: def.get("user").and_then(Value::as_str).map(str::to_string),
        hostname: None,
        labels: labels(owner, task, name),
        network: Some(NetworkAttach::Container(pause_id.to_string())),
        // With a task cgroup, the task's memory and cpu bound all its
        // containers together; without one, each container on its own.
        memory: match cgroup {
            Some(_) => int(def, "memory"),
            None => int(def, "memory").or(task_memory),
        }
        .map(|m| m * MIB),
        memory_reservation: int(def, "memoryReservation").map(|m| m * MIB),
        cpu_shares: int(def, "cpu").filter(|c| *c > 0).map(|c| c.max(2)),
        nano_cpus: match cgroup {
            Some(_) => None,
            None => task_cpu.map(|c| c * 1_000_000_000 / 1024),
        },
        cgroup_parent: cgroup.map(str::to_string),
        readonly_rootfs: def
            .get("readonlyRootFilesystem")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        init: def
            .get("linuxParameters")
            .and_then(|l| l.get("initProcessEnabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        ulimits,
        stop_timeout_s: Some(stop_timeout(def)),
        health,
    }
}

pub async fn reconcile(agent: &Agent, arn: &str) -> anyhow::Result<()> {
    let Some(mut task) = agent.store.read(|c| tasks::load(c, arn))? else {
        return Ok(());
    };
    if task.last_status() == "STOPPED" {
        return Ok(());
    }
    let td_arn = task
        .doc
        .get("taskDefinitionArn")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let td = agent
        .store
        .read(|c| taskdefs::find_by_arn(c, &td_arn))?
        .ok_or_else(|| anyhow::anyhow!("task definition {td_arn} is gone"))?;
    let overrides = task.doc.get("overrides").cloned().unwrap_or(json!({}));
    let defs = tasks::effective_containers(&td.doc, &overrides);

    if task.desired_status == "RUNNING" && task.last_status() == "PROVISIONING" {
        if let Err(e) = provision(agent, &mut task).await {
            request_stop(
                agent,
                &mut task,
                "TaskFailedToStart",
                &format!(
                    "ResourceInitializationError: failed to set up the task's network sandbox: {e}"
                ),
            )?;
        }
    }
    refresh_desired(agent, &mut task)?;
    if task.desired_status == "RUNNING" && matches!(task.last_status(), "PENDING" | "ACTIVATING") {
        start_containers(agent, &mut task, &defs).await?;
    }
    refresh_desired(agent, &mut task)?;
    if task.desired_status == "RUNNING" && task.last_status() == "RUNNING" {
        monitor(agent, &mut task, &defs).await?;
    }
    if task.desired_status == "STOPPED" {
        stop(agent, &mut task, &defs).await?;
    }
    Ok(())
}

/// PROVISIONING → PENDING: the network sandbox, and the task's address.
async fn provision(agent: &Agent, task: &mut TaskRow) -> Result<(), RuntimeError> {
    let rt = &agent.runtime;
    rt.ensure_network(TASK_NETWORK).await?;
    rt.ensure_imported(
        PAUSE_IMAGE,
        tar_one("pause", &pause_elf()),
        &["CMD [\"/pause\"]"],
    )
    .await?;
    // The task's cgroup, before anything is put in it.
    let limits = TaskLimits {
        memory_bytes: task_number(task, "memory").map(|m| m << 20),
        cpu_units: task_number(task, "cpu"),
    };
    let cgroup = rt.task_cgroup(task_id(&task.arn), limits).await?;
    if cgroup != task.runtime.cgroup {
        task.runtime.cgroup = cgroup;
        save(agent, task).map_err(|e| RuntimeError::Other(e.to_string()))?;
    }
    let existing = match &task.runtime.pause_id {
        Some(id) => rt.inspect(id).await?,
        None => None,
    };
    let pause = match existing {
        Some(info) => info,
        None => {
            let spec = ContainerSpec {
                name: format!("berth-{}-pause", task_id(&task.arn)),
                image: PAUSE_IMAGE.into(),
                labels: labels(&agent.owner, task, PAUSE_CONTAINER),
                network: Some(NetworkAttach::Network(TASK_NETWORK.into())),
                cgroup_parent: task.runtime.cgroup.clone(),
                ..Default::default()
            };
            // A leftover of an earlier attempt with the same name goes first.
            rt.remove(&spec.name).await?;
            let id = rt.create(&spec).await?;
            task.runtime.pause_id = Some(id.clone());
            save(agent, task).map_err(|e| RuntimeError::Other(e.to_string()))?;
            rt.start(&id).await?;
            rt.inspect(&id)
                .await?
                .ok_or_else(|| RuntimeError::Other("sandbox vanished".into()))?
        }
    };
    if !pause.running {
        rt.start(&pause.id).await?;
    }
    let info = rt.inspect(&pause.id).await?.unwrap_or(pause);
    let ip = info.ip.clone().unwrap_or_default();
    let mac = info.mac.clone().unwrap_or_default();
    let eni = format!("eni-{}", &info.id[..17.min(info.id.len())]);
    if let Some(att) = task
        .doc
        .get_mut("attachments")
        .and_then(Value::as_array_mut)
        .and_then(|a| a.first_mut())
    {
        let subnet = att
            .pointer("/details/0/value")
            .cloned()
            .unwrap_or(json!(""));
        att["status"] = json!("ATTACHED");
        att["details"] = json!([
            {"name": "subnetId", "value": subnet},
            {"name": "networkInterfaceId", "value": eni},
            {"name": "macAddress", "value": mac},
            {"name": "privateDnsName", "value": format!("ip-{}.ec2.internal", ip.replace('.', "-"))},
            {"name": "privateIPv4Address", "value": ip},
        ]);
        let attachment_id = att["id"].clone();
        for c in task
            .doc
            .get_mut("containers")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            c["networkInterfaces"] =
                json!([{"attachmentId": attachment_id, "privateIpv4Address": ip}]);
        }
    }
    set(task, "connectivity", json!("CONNECTED"));
    set(task, "connectivityAt", json!(now()));
    set_status(task, "PENDING");
    save(agent, task).map_err(|e| RuntimeError::Other(e.to_string()))?;
    Ok(())
}

/// Whether a container's `dependsOn` conditions hold; `Err` when they never will.
fn dependencies_met(
    def: &Map<String, Value>,
    states: &HashMap<String, ContainerInfo>,
) -> Result<bool, String> {
    for d in def
        .get("dependsOn")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let dep = d
            .get("containerName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let condition = d
            .get("condition")
            .and_then(Value::as_str)
            .unwrap_or("START");
        let Some(s) = states.get(dep) else {
            return Ok(false);
        };
        let exited = !s.running && s.finished_at.is_some();
        let ok = match condition {
            "START" => true,
            "COMPLETE" => exited,
            "SUCCESS" => {
                if exited && s.exit_code != Some(0) {
                    return Err(format!(
                        "dependency container {dep} exited with code {} (condition SUCCESS)",
                        s.exit_code.unwrap_or(-1)
                    ));
                }
                exited
            }
            "HEALTHY" => {
                if exited {
                    return Err(format!(
                        "dependency container {dep} exited before it was healthy"
                    ));
                }
                s.health.as_deref() == Some("healthy")
            }
            _ => true,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// PENDING → ACTIVATING → RUNNING: pull, create, start in dependency order.
async fn start_containers(
    agent: &Agent,
    task: &mut TaskRow,
    defs: &[Map<String, Value>],
) -> anyhow::Result<()> {
    let rt = agent.runtime.clone();
    let Some(pause_id) = task.runtime.pause_id.clone() else {
        set_status(task, "PROVISIONING");
        save(agent, task)?;
        return Ok(());
    };
    // Pull what is missing.
    if task.doc.get("pullStartedAt").is_none() {
        set(task, "pullStartedAt", json!(now()));
        save(agent, task)?;
    }
    for def in defs {
        let (name, image) = (
            name_of(def).to_string(),
            def.get("image")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        );
        let digest = match rt.local_image(&image).await? {
            Some(d) => d,
            None => match rt.pull(&image).await {
                Ok(d) => d,
                Err(e) => {
                    let reason = format!("CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref {image}: {e}");
                    if let Some(c) = container_doc(task, &name) {
                        c.insert("reason".into(), json!(reason));
                    }
                    save(agent, task)?;
                    request_stop(agent, task, "TaskFailedToStart", &reason)?;
                    return Ok(());
                }
            },
        };
        if let Some(c) = container_doc(task, &name) {
            c.insert("imageDigest".into(), json!(digest));
        }
    }
    if task.doc.get("pullStoppedAt").is_none() {
        set(task, "pullStoppedAt", json!(now()));
        save(agent, task)?;
    }
    // Log groups and streams, before any container writes a line.
    for (_, target) in log_targets(task, defs) {
        let prepared = target.and_then(|t| awslogs::prepare(&agent.logs, &t));
        if let Err(reason) = prepared {
            request_stop(agent, task, "TaskFailedToStart", &reason)?;
            return Ok(());
        }
    }
    // Create the containers that do not exist yet.
    for def in defs {
        let name = name_of(def).to_string();
        let existing = match task.runtime.containers.get(&name) {
            Some(id) => rt.inspect(id).await?,
            None => None,
        };
        if existing.is_none() {
            let spec = spec_for(
                &agent.owner,
                task,
                def,
                &pause_id,
                task.runtime.cgroup.as_deref(),
            );
            rt.remove(&spec.name).await?;
            match rt.create(&spec).await {
                Ok(id) => {
                    task.runtime.containers.insert(name.clone(), id.clone());
                    if let Some(c) = container_doc(task, &name) {
                        c.insert("runtimeId".into(), json!(id));
                    }
                    save(agent, task)?;
                }
                Err(e) => {
                    let reason = format!("CannotCreateContainerError: {e}");
                    request_stop(agent, task, "TaskFailedToStart", &reason)?;
                    return Ok(());
                }
            }
        }
    }
    // Start in dependency order.
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(
            defs.iter()
                .map(|d| int(d, "startTimeout").unwrap_or(DEFAULT_START_TIMEOUT))
                .max()
                .unwrap_or(DEFAULT_START_TIMEOUT) as u64,
        );
    loop {
        refresh_desired(agent, task)?;
        if task.desired_status != "RUNNING" {
            return Ok(());
        }
        let mut states = HashMap::new();
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
                // An essential container that exits while others still wait
                // to start stops the task; once all have started, the task
                // is RUNNING and the monitor sees the exit.
                if !state.running && essential(def) && others_waiting {
                    observe(task, def, Some(state));
                    save(agent, task)?;
                    request_stop(
                        agent,
                        task,
                        "EssentialContainerExited",
                        "Essential container in task exited",
                    )?;
                    return Ok(());
                }
                continue;
            }
            match dependencies_met(def, &states) {
                Ok(true) => {
                    if let Err(e) = rt.start(&state.id).await {
                        let reason = format!("CannotStartContainerError: {e}");
                        if let Some(c) = container_doc(task, name) {
                            c.insert("reason".into(), json!(reason));
                        }
                        save(agent, task)?;
                        request_stop(agent, task, "TaskFailedToStart", &reason)?;
                        return Ok(());
                    }
                    if let Some(c) = container_doc(task, name) {
                        c.insert("lastStatus".into(), json!("RUNNING"));
                    }
                    follow_outputs(agent, task, defs);
                    waiting = true; // look again: it may satisfy others
                    progressed = true;
                }
                Ok(false) => waiting = true,
                Err(why) => {
                    request_stop(
                        agent,
                        task,
                        "TaskFailedToStart",
                        &format!("DependencyConditionUnsatisfied: {why}"),
                    )?;
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
                "TaskFailedToStart",
                "DependencyConditionUnsatisfied: timed out waiting for dependsOn conditions",
            )?;
            return Ok(());
        }
        // Look again at once after starting something; otherwise wait for
        // a dependency to reach its condition.
        if !progressed {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    set_status(task, "ACTIVATING");
    save(agent, task)?;
    set_status(task, "RUNNING");
    set(task, "startedAt", json!(now()));
    save(agent, task)?;
    Ok(())
}

/// The awslogs targets of a task's containers, by container name.
fn log_targets(
    task: &TaskRow,
    defs: &[Map<String, Value>],
) -> Vec<(String, Result<awslogs::Target, String>)> {
    let Some(a) = crate::ecs::arn::parse(&task.arn) else {
        return Vec::new();
    };
    defs.iter()
        .filter_map(|d| {
            awslogs::target(d, a.account, a.region, task_id(&task.arn))
                .map(|t| (name_of(d).to_string(), t))
        })
        .collect()
}

/// Make sure every started container with the awslogs driver has its output
/// copied.
fn follow_outputs(agent: &Agent, task: &TaskRow, defs: &[Map<String, Value>]) {
    for (name, target) in log_targets(task, defs) {
        if let (Ok(t), Some(id)) = (target, task.runtime.containers.get(&name)) {
            agent.follow(t, id);
        }
    }
}

/// Record a container's observed state in the task document.
fn observe(task: &mut TaskRow, def: &Map<String, Value>, info: Option<&ContainerInfo>) {
    let name = name_of(def).to_string();
    let Some(c) = container_doc(task, &name) else {
        return;
    };
    match info {
        Some(i) if i.running => {
            c.insert("lastStatus".into(), json!("RUNNING"));
        }
        Some(i) => {
            if i.started_at.is_some() || i.finished_at.is_some() {
                c.insert("lastStatus".into(), json!("STOPPED"));
                if let Some(code) = i.exit_code {
                    c.insert("exitCode".into(), json!(code));
                }
                if i.oom_killed {
                    c.insert(
                        "reason".into(),
                        json!("OutOfMemoryError: Container killed due to memory usage"),
                    );
                } else if let Some(err) = &i.error {
                    c.insert("reason".into(), json!(err));
                }
            }
        }
        None => {
            c.insert("lastStatus".into(), json!("STOPPED"));
        }
    }
    if def.get("healthCheck").is_some() {
        let h = match info.and_then(|i| i.health.as_deref()) {
            Some("healthy") => "HEALTHY",
            Some("unhealthy") => "UNHEALTHY",
            _ => "UNKNOWN",
        };
        c.insert("healthStatus".into(), json!(h));
    }
}

/// The task's health from its essential containers' health checks.
fn task_health(task: &TaskRow, defs: &[Map<String, Value>]) -> &'static str {
    let checked: Vec<&str> = defs
        .iter()
        .filter(|d| essential(d) && d.get("healthCheck").is_some())
        .filter_map(|d| {
            task.doc["containers"]
                .as_array()?
                .iter()
                .find(|c| c["name"].as_str() == Some(name_of(d)))?
                .get("healthStatus")?
                .as_str()
        })
        .collect();
    if checked.contains(&"UNHEALTHY") {
        "UNHEALTHY"
    } else if !checked.is_empty() && checked.iter().all(|h| *h == "HEALTHY") {
        "HEALTHY"
    } else {
        "UNKNOWN"
    }
}

/// RUNNING: watch the containers; an essential one exiting stops the task.
async fn monitor(
    agent: &Agent,
    task: &mut TaskRow,
    defs: &[Map<String, Value>],
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
        let gone = info.as_ref().is_none_or(|i| !i.running);
        if gone && essential(def) && stop_reason.is_none() {
            stop_reason = Some(match info {
                Some(_) => "Essential container in task exited".to_string(),
                None => format!("Essential container in task exited: container {name} is gone from the Docker host"),
            });
        }
    }
    let health = task_health(task, defs);
    set(task, "healthStatus", json!(health));
    if task.doc != before {
        save(agent, task)?;
    }
    if let Some(reason) = stop_reason {
        request_stop(agent, task, "EssentialContainerExited", &reason)?;
    }
    Ok(())
}

/// Desired STOPPED: DEACTIVATING → STOPPING → DEPROVISIONING → STOPPED.
async fn stop(
    agent: &Agent,
    task: &mut TaskRow,
    defs: &[Map<String, Value>],
) -> anyhow::Result<()> {
    let rt = agent.runtime.clone();
    if !matches!(
        task.last_status(),
        "DEACTIVATING" | "STOPPING" | "DEPROVISIONING"
    ) {
        set(task, "stoppingAt", json!(now()));
        set_status(task, "DEACTIVATING");
        save(agent, task)?;
    }
    if task.last_status() == "DEACTIVATING" {
        set_status(task, "STOPPING");
        save(agent, task)?;
    }
    if task.last_status() == "STOPPING" {
        let stops = defs.iter().filter_map(|def| {
            let id = task.runtime.containers.get(name_of(def))?.clone();
            let rt = rt.clone();
            let timeout = stop_timeout(def);
            Some(async move { rt.stop(&id, timeout).await })
        });
        for r in futures_util::future::join_all(stops).await {
            r?;
        }
        set(task, "executionStoppedAt", json!(now()));
        for def in defs {
            let info = match task.runtime.containers.get(name_of(def)) {
                Some(id) => rt.inspect(id).await?,
                None => None,
            };
            observe(task, def, info.as_ref());
            // Containers never started report no exit code.
            if let Some(c) = container_doc(task, name_of(def)) {
                c.insert("lastStatus".into(), json!("STOPPED"));
            }
        }
        set_status(task, "DEPROVISIONING");
        save(agent, task)?;
    }
    // What the containers wrote is stored before they go.
    follow_outputs(agent, task, defs);
    for id in task.runtime.containers.values() {
        agent.drain(id).await;
        rt.remove(id).await?;
    }
    if let Some(p) = &task.runtime.pause_id {
        rt.remove(p).await?;
    }
    if task.runtime.cgroup.is_some() {
        // Not worth keeping the task from STOPPED: what is left is empty.
        if let Err(e) = rt.remove_task_cgroup(task_id(&task.arn)).await {
            tracing::warn!(task = %task.arn, "{e}");
        }
    }
    if let Some(att) = task
        .doc
        .get_mut("attachments")
        .and_then(Value::as_array_mut)
        .and_then(|a| a.first_mut())
    {
        att["status"] = json!("DELETED");
    }
    set(task, "stoppedAt", json!(now()));
    set_status(task, "STOPPED");
    save(agent, task)?;
    Ok(())
}
