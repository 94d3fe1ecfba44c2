//! Tasks: `RunTask`, `StopTask`, `DescribeTasks`, `ListTasks`, and the task
//! rows the agent (`src/agent`) drives through ECS's lifecycle.
//!
//! A task row keeps the ECS `Task` document as the agent last reported it
//! (`doc`, with `lastStatus` mirrored in a column) and, apart from it, what
//! only the API decides: `desired_status`, `stop_code`, `stopped_reason`. The
//! agent never writes those columns except through `request_stop`, which
//! keeps the first reason, so a StopTask racing the agent is never lost.

use std::collections::{HashMap, HashSet};

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use rand::Rng;

use super::{capacity_providers, clusters, instances, paging, placements, tags, taskdefs, Ecs};
use crate::context::millis_to_epoch;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::placement;

pub const FARGATE_PLATFORM_VERSION: &str = "1.4.0";

/// Where a task's containers live, as the agent records it. Not part of the
/// ECS document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskRuntime {
    /// The network sandbox container (FARGATE's pause container).
    pub pause_id: Option<String>,
    /// Container name → runtime id.
    #[serde(default)]
    pub containers: std::collections::BTreeMap<String, String>,
    /// The task's cgroup, when its limits are set on one (else on each
    /// container).
    #[serde(default)]
    pub cgroup: Option<String>,
    /// EC2 launch type: the address of the container instance the task was
    /// placed on, where its ports are published. Set at placement.
    #[serde(default)]
    pub host_ip: Option<String>,
}

/// A task as stored.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub arn: String,
    pub cluster_arn: String,
    pub desired_status: String,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub doc: Map<String, Value>,
    pub runtime: TaskRuntime,
}

impl TaskRow {
    pub fn last_status(&self) -> &str {
        self.doc
            .get("lastStatus")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The ECS `Task` shape.
    pub fn render(&self) -> Value {
        let mut d = self.doc.clone();
        d.insert("desiredStatus".into(), json!(self.desired_status));
        if let Some(c) = &self.stop_code {
            d.insert("stopCode".into(), json!(c));
        }
        if let Some(r) = &self.stopped_reason {
            d.insert("stoppedReason".into(), json!(r));
        }
        Value::Object(d)
    }
}

const SELECT: &str =
    "SELECT arn, cluster_arn, desired_status, stop_code, stopped_reason, doc, runtime FROM tasks";

fn json_col<T: serde::de::DeserializeOwned>(
    r: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        arn: r.get(0)?,
        cluster_arn: r.get(1)?,
        desired_status: r.get(2)?,
        stop_code: r.get(3)?,
        stopped_reason: r.get(4)?,
        doc: json_col(r, 5)?,
        runtime: json_col(r, 6)?,
    })
}

pub fn load(conn: &Connection, arn: &str) -> ApiResult<Option<TaskRow>> {
    Ok(conn
        .prepare_cached(&format!("{SELECT} WHERE arn = ?1"))?
        .query_row([arn], from_sql)
        .optional()?)
}

/// Every task the server's own agent still has work on (not yet STOPPED):
/// FARGATE tasks and tasks on local container instances. Tasks on instances
/// registered by an agent elsewhere are that agent's.
pub fn live_arns(conn: &Connection) -> ApiResult<Vec<String>> {
    let arns = conn
        .prepare_cached(
            "SELECT arn, created_at FROM tasks INDEXED BY tasks_live_fargate
               WHERE launch_type = 'FARGATE' AND container_instance_arn IS NULL
                 AND last_status != 'STOPPED'
             UNION ALL
             SELECT t.arn, t.created_at FROM container_instances ci
               JOIN tasks t ON t.container_instance_arn = ci.arn
              WHERE ci.agent = 'local' AND t.last_status != 'STOPPED'
             ORDER BY 2",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(arns)
}

/// Save what the agent observed: the document (with `version` one more than
/// stored) and the runtime record. Leaves the desired-state columns alone.
pub fn save_observed(conn: &Connection, task: &TaskRow) -> ApiResult<()> {
    conn.prepare_cached(
        "UPDATE tasks SET
           doc = json_set(?2, '$.version', coalesce(json_extract(doc, '$.version'), 0) + 1),
           last_status = json_extract(?2, '$.lastStatus'),
           runtime = ?3
         WHERE arn = ?1",
    )?
    .execute(params![
        task.arn,
        Value::Object(task.doc.clone()).to_string(),
        serde_json::to_string(&task.runtime).expect("serialises")
    ])?;
    Ok(())
}

/// Ask for a task to stop. The first reason given wins; returns whether this
/// call changed anything.
pub fn request_stop(conn: &Connection, arn: &str, code: &str, reason: &str) -> ApiResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE tasks SET desired_status = 'STOPPED', stop_code = ?2, stopped_reason = ?3,
               doc = json_set(doc, '$.version', coalesce(json_extract(doc, '$.version'), 0) + 1)
             WHERE arn = ?1 AND desired_status != 'STOPPED'",
        )?
        .execute(params![arn, code, reason])?;
    Ok(n > 0)
}

/// Record a task as STOPPED without an agent: for tasks whose agent is gone
/// (its instance deregistered or disconnected), so nothing will report
/// their end. Their reservations are released with it.
pub fn mark_stopped(conn: &Connection, arn: &str, now_epoch: f64) -> ApiResult<()> {
    let Some(mut task) = load(conn, arn)? else {
        return Ok(());
    };
    if task.last_status() == "STOPPED" {
        return Ok(());
    }
    for c in task
        .doc
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        c["lastStatus"] = json!("STOPPED");
    }
    for k in ["stoppingAt", "executionStoppedAt", "stoppedAt"] {
        task.doc.entry(k).or_insert(json!(now_epoch));
    }
    task.doc.insert("lastStatus".into(), json!("STOPPED"));
    save_observed(conn, &task)
}

/// A cluster's tasks by state.
#[derive(Debug, Default, Clone, Copy)]
pub struct TaskCounts {
    pub running: i64,
    pub pending: i64,
    pub running_fargate: i64,
    pub pending_fargate: i64,
    /// Every task not yet STOPPED, whatever its state.
    pub live: i64,
}

/// Counts of a cluster's tasks by state, for the cluster counters. Pending
/// means not yet RUNNING (PROVISIONING, PENDING, ACTIVATING).
pub fn cluster_task_counts(conn: &Connection, cluster_arn: &str) -> ApiResult<TaskCounts> {
    Ok(conn
        .prepare_cached(
            "SELECT coalesce(sum(last_status = 'RUNNING'), 0),
                    coalesce(sum(last_status IN ('PROVISIONING', 'PENDING', 'ACTIVATING')), 0),
                    coalesce(sum(last_status = 'RUNNING' AND launch_type = 'FARGATE'), 0),
                    coalesce(sum(last_status IN ('PROVISIONING', 'PENDING', 'ACTIVATING') AND launch_type = 'FARGATE'), 0),
                    count(*)
             FROM tasks WHERE cluster_arn = ?1 AND last_status != 'STOPPED'",
        )?
        .query_row([cluster_arn], |r| {
            Ok(TaskCounts {
                running: r.get(0)?,
                pending: r.get(1)?,
                running_fargate: r.get(2)?,
                pending_fargate: r.get(3)?,
                live: r.get(4)?,
            })
        })?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunTaskRequest {
    cluster: Option<String>,
    task_definition: String,
    count: Option<i64>,
    launch_type: Option<String>,
    capacity_provider_strategy: Option<Vec<Value>>,
    network_configuration: Option<Value>,
    overrides: Option<Map<String, Value>>,
    started_by: Option<String>,
    group: Option<String>,
    #[serde(default)]
    tags: Vec<tags::Tag>,
    propagate_tags: Option<String>,
    enable_execute_command: Option<bool>,
    platform_version: Option<String>,
    placement_constraints: Option<Value>,
    placement_strategy: Option<Value>,
    /// StartTask: the instances to start a task on, one each.
    container_instances: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopTaskRequest {
    cluster: Option<String>,
    task: String,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeTasksRequest {
    cluster: Option<String>,
    tasks: Vec<String>,
    #[serde(default)]
    include: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTasksRequest {
    cluster: Option<String>,
    family: Option<String>,
    started_by: Option<String>,
    desired_status: Option<String>,
    launch_type: Option<String>,
    service_name: Option<String>,
    container_instance: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// The task's ARN for an id or ARN given in a call.
fn task_arn(ctx: &Ctx, cluster: &clusters::ClusterRow, ident: &str) -> String {
    if ident.starts_with("arn:") {
        ident.to_string()
    } else {
        format!(
            "arn:aws:ecs:{}:{}:task/{}/{ident}",
            ctx.region, ctx.account, cluster.name
        )
    }
}

/// How a RunTask's tasks are launched: by launch type, or split over the
/// providers of a capacity provider strategy (the request's, or the
/// cluster's default when the request names neither).
enum Launching {
    Type(String),
    Providers(Vec<(capacity_providers::Item, i64)>),
}

fn launching(
    conn: &Connection,
    ctx: &Ctx,
    cluster: &clusters::ClusterRow,
    req: &RunTaskRequest,
    count: i64,
) -> ApiResult<Launching> {
    if req.launch_type.is_some() && req.capacity_provider_strategy.is_some() {
        return Err(ApiError::invalid_parameter(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
        ));
    }
    if let Some(t) = &req.launch_type {
        return Ok(Launching::Type(t.clone()));
    }
    let default: Vec<Value> = cluster
        .doc
        .get("defaultCapacityProviderStrategy")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let strategy = match &req.capacity_provider_strategy {
        Some(s) => s.clone(),
        None if !default.is_empty() => default,
        None => return Ok(Launching::Type("EC2".into())),
    };
    let associated: Vec<String> = cluster
        .doc
        .get("capacityProviders")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let items = capacity_providers::check_strategy(conn, ctx, &associated, &strategy)?;
    let counts = capacity_providers::split(&items, count);
    Ok(Launching::Providers(
        items
            .into_iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .collect(),
    ))
}

/// How to place a RunTask's tasks, as the request and task definition say;
/// kept beside a task that waits in PROVISIONING for capacity
/// (`pending_placements.request`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PlacementSpec {
    strategies: Value,
    constraints: Value,
    required: Vec<(String, Option<String>)>,
    reservation: instances::Reservation,
    group: String,
}

impl PlacementSpec {
    /// The placement request for `count` tasks.
    fn placement(&self, count: usize) -> ApiResult<placement::Request> {
        let invalid = |e: String| ApiError::invalid_parameter(e);
        let strategies = placement::parse_strategies(&self.strategies).map_err(invalid)?;
        let constraints = placement::parse_constraints(&self.constraints).map_err(invalid)?;
        if constraints.len() > placement::MAX_CONSTRAINTS {
            return Err(ApiError::invalid_parameter(format!(
                "A task can have at most {} placement constraints, counting its task definition's.",
                placement::MAX_CONSTRAINTS
            )));
        }
        Ok(placement::Request {
            count,
            cpu: self.reservation.cpu,
            memory: self.reservation.memory,
            ports_tcp: self.reservation.tcp.clone(),
            ports_udp: self.reservation.udp.clone(),
            strategies,
            constraints,
            group: Some(self.group.clone()),
            required_attributes: self.required.clone(),
        })
    }
}

/// Forget a task's pending placement; whether it had one.
fn drop_pending(conn: &Connection, arn: &str) -> ApiResult<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM pending_placements WHERE task_arn = ?1")?
        .execute([arn])?
        > 0)
}

/// The (cpu, memory) of each task waiting for a provider's capacity.
pub fn pending_reservations(
    conn: &Connection,
    provider: &str,
    account: &str,
    region: &str,
) -> ApiResult<Vec<(i64, i64)>> {
    let rows: Vec<String> = conn
        .prepare_cached(
            "SELECT p.request FROM pending_placements p JOIN tasks t ON t.arn = p.task_arn
             WHERE p.capacity_provider = ?1 AND t.account = ?2 AND t.region = ?3
               AND t.desired_status != 'STOPPED'",
        )?
        .query_map(params![provider, account, region], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows
        .iter()
        .filter_map(|r| serde_json::from_str::<PlacementSpec>(r).ok())
        .map(|r| (r.reservation.cpu, r.reservation.memory))
        .collect())
}

/// Place the tasks waiting in PROVISIONING, oldest first, on the instances
/// of their capacity provider's group; end those stopped meanwhile.
/// Returns whether any was placed or ended.
pub fn place_pending(
    tx: &Connection,
    groups: &dyn capacity_providers::ScalingGroups,
    at: instances::Liveness,
    rng: &mut dyn FnMut(usize) -> usize,
) -> ApiResult<bool> {
    let now_ms = at.now_ms;
    let rows: Vec<(String, String, String, String)> = tx
        .prepare_cached(
            "SELECT task_arn, cluster_arn, capacity_provider, request FROM pending_placements
             ORDER BY created_at, task_arn",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let mut changed = false;
    let mut allowed_by_provider: HashMap<String, HashSet<String>> = HashMap::new();
    for (arn, cluster_arn, provider, request) in rows {
        let Some(task) = load(tx, &arn)? else {
            drop_pending(tx, &arn)?;
            continue;
        };
        if task.desired_status == "STOPPED" || task.last_status() == "STOPPED" {
            drop_pending(tx, &arn)?;
            mark_stopped(tx, &arn, millis_to_epoch(now_ms))?;
            changed = true;
            continue;
        }
        let Ok(pending) = serde_json::from_str::<PlacementSpec>(&request) else {
            continue;
        };
        // The group's instances, read once per provider and pass.
        if !allowed_by_provider.contains_key(&provider) {
            let Some(parsed) = super::arn::parse(&arn) else {
                continue;
            };
            let ctx = Ctx::internal(parsed.account, parsed.region, now_ms);
            let allowed = match capacity_providers::find(tx, &ctx, &provider)? {
                Some(p) => capacity_providers::group_instances(tx, groups, &p)?,
                None => HashSet::new(),
            };
            allowed_by_provider.insert(provider.clone(), allowed);
        }
        let allowed = &allowed_by_provider[&provider];
        let views: Vec<placement::Instance> = instances::snapshot(tx, &cluster_arn, at)?
            .into_iter()
            .filter(|(row, _)| allowed.contains(&row.arn))
            .map(|(_, v)| v)
            .collect();
        if views.is_empty() {
            continue;
        }
        // A task that cannot be placed now waits; it never fails the pass.
        let Ok(decision) = pending.placement(1).and_then(|r| {
            placement::place(&views, &r, &mut |n| rng(n))
                .map_err(|e| ApiError::invalid_parameter(e.to_string()))
        }) else {
            continue;
        };
        let Some(instance_arn) = decision.placed.first() else {
            continue;
        };
        let instance = instances::load(tx, instance_arn)?.expect("placed on a stored instance");
        assign(tx, &task, &instance, &pending.reservation)?;
        drop_pending(tx, &arn)?;
        changed = true;
    }
    Ok(changed)
}

/// Give a waiting task the instance placement chose and reserve it there.
fn assign(
    tx: &Connection,
    task: &TaskRow,
    instance: &instances::InstanceRow,
    reservation: &instances::Reservation,
) -> ApiResult<()> {
    let attrs = instances::attributes_of(tx, instance)?;
    let get = |k: &str| attrs.get(k).cloned().flatten();
    let mut doc = task.doc.clone();
    doc.insert("containerInstanceArn".into(), json!(instance.arn));
    if let Some(az) = get("ecs.availability-zone") {
        doc.insert("availabilityZone".into(), json!(az));
    }
    doc.insert(
        "attributes".into(),
        json!([{"name": "ecs.cpu-architecture", "value": get("ecs.cpu-architecture").unwrap_or_else(|| "x86_64".into())}]),
    );
    let mut runtime = task.runtime.clone();
    runtime.host_ip = instance.address.clone();
    tx.prepare_cached(
        "UPDATE tasks SET container_instance_arn = ?2, reserved = ?3, runtime = ?4,
           doc = json_set(?5, '$.version', coalesce(json_extract(doc, '$.version'), 0) + 1)
         WHERE arn = ?1",
    )?
    .execute(params![
        task.arn,
        instance.arn,
        serde_json::to_string(reservation).expect("serialises"),
        serde_json::to_string(&runtime).expect("serialises"),
        Value::Object(doc).to_string(),
    ])?;
    Ok(())
}

fn failure_list(failures: Vec<placement::Failure>) -> Vec<Value> {
    failures
        .into_iter()
        .map(|f| match f.arn {
            Some(arn) => json!({"arn": arn, "reason": f.reason}),
            None => json!({"reason": f.reason}),
        })
        .collect()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Merge a container override into its definition's environment.
fn merged_environment(def: &Value, ov: Option<&Value>) -> Vec<Value> {
    let mut env: Vec<Value> = def
        .get("environment")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for e in ov
        .and_then(|o| o.get("environment"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = e.get("name");
        match env.iter_mut().find(|x| x.get("name") == name) {
            Some(x) => *x = e.clone(),
            None => env.push(e.clone()),
        }
    }
    env
}

/// The effective container definitions of a task: the task definition's,
/// with the task's `containerOverrides` applied.
pub fn effective_containers(
    taskdef: &Map<String, Value>,
    overrides: &Value,
) -> Vec<Map<String, Value>> {
    let ovs = overrides
        .get("containerOverrides")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    taskdef
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_object().cloned())
        .map(|mut c| {
            let ov = ovs.iter().find(|o| o.get("name") == c.get("name"));
            let env = merged_environment(&Value::Object(c.clone()), ov);
            c.insert("environment".into(), Value::Array(env));
            if let Some(ov) = ov {
                for k in ["command", "cpu", "memory", "memoryReservation"] {
                    if let Some(v) = ov.get(k).filter(|v| !v.is_null()) {
                        c.insert(k.into(), v.clone());
                    }
                }
            }
            c
        })
        .collect()
}

/// Whom new tasks give work: (the server's own agent, for FARGATE tasks
/// and tasks on its local instances; the fleet, for tasks waiting without
/// an instance).
fn wakes(conn: &Connection, tasks: &[Value]) -> ApiResult<(bool, bool)> {
    let (mut agent, mut fleet) = (false, false);
    let mut seen = HashSet::new();
    for t in tasks {
        match t.get("containerInstanceArn").and_then(Value::as_str) {
            None if t["launchType"] == "FARGATE" => agent = true,
            None => fleet = true,
            Some(arn) if !agent && seen.insert(arn) => {
                agent =
                    instances::load(conn, arn)?.is_some_and(|i| i.agent == instances::LOCAL_AGENT);
            }
            Some(_) => {}
        }
    }
    Ok((agent, fleet))
}

/// What a placement decides with: when (agents' connectivity), and the
/// call's random source.
struct Decide<'a> {
    at: instances::Liveness,
    rng: &'a mut rand::rngs::StdRng,
}

/// Which instances a placement chooses from.
enum Among<'a> {
    /// Every instance of the cluster.
    Cluster,
    /// The instances of a capacity provider's group; `can_grow` when
    /// managed scaling adds capacity for tasks that do not fit.
    Group {
        instances: &'a HashSet<String>,
        can_grow: bool,
    },
}

/// A task definition checked against a RunTask or StartTask request: what
/// every task the request makes is built from.
struct Launch {
    td: taskdefs::TaskDefRow,
    launch_type: String,
    network_mode: String,
    overrides: Map<String, Value>,
    subnets: Vec<String>,
    task_cpu: Option<Value>,
    task_memory: Option<Value>,
    tags: Vec<tags::Tag>,
}

impl Launch {
    /// ECS's checks of the request against its task definition.
    fn check(
        conn: &Connection,
        ctx: &Ctx,
        req: &RunTaskRequest,
        launch_type: &str,
    ) -> ApiResult<Launch> {
        let td = taskdefs::resolve_active(conn, ctx, &req.task_definition)?;
        let doc = &td.doc;
        let network_mode = doc
            .get("networkMode")
            .and_then(Value::as_str)
            .unwrap_or("bridge")
            .to_string();
        let compat = doc
            .get("compatibilities")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !compat.iter().any(|c| c.as_str() == Some(launch_type)) {
            return Err(ApiError::invalid_parameter(format!(
                "Task definition does not support launch_type {launch_type}."
            )));
        }
        let overrides = req.overrides.clone().unwrap_or_default();
        let names: Vec<&str> = doc["containerDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("name").and_then(Value::as_str))
            .collect();
        for o in overrides
            .get("containerOverrides")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let n = o.get("name").and_then(Value::as_str).unwrap_or_default();
            if !names.contains(&n) {
                return Err(ApiError::invalid_parameter(format!(
                    "Override for container named {n} is not a container in the TaskDefinition."
                )));
            }
        }
        let subnets: Vec<String> = req
            .network_configuration
            .as_ref()
            .and_then(|n| n.pointer("/awsvpcConfiguration/subnets"))
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if network_mode == "awsvpc" && subnets.is_empty() {
            return Err(ApiError::invalid_parameter(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
            ));
        }
        if network_mode != "awsvpc" && req.network_configuration.is_some() {
            return Err(ApiError::invalid_parameter(
                "Network Configuration is not valid for the given networkMode of this task definition.",
            ));
        }
        let task_cpu = overrides.get("cpu").or(doc.get("cpu")).cloned();
        let task_memory = overrides.get("memory").or(doc.get("memory")).cloned();
        let mut task_tags = req.tags.clone();
        if req.propagate_tags.as_deref() == Some("TASK_DEFINITION") {
            for t in tags::load(conn, &td.arn)? {
                if let Ok(t) = serde_json::from_value::<tags::Tag>(t) {
                    if !task_tags.iter().any(|x| x.key == t.key) {
                        task_tags.push(t);
                    }
                }
            }
        }
        Ok(Launch {
            td,
            launch_type: launch_type.to_string(),
            network_mode,
            overrides,
            subnets,
            task_cpu,
            task_memory,
            tags: task_tags,
        })
    }

    fn family(&self) -> &str {
        self.td
            .doc
            .get("family")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    fn group(&self, req: &RunTaskRequest) -> String {
        req.group
            .clone()
            .unwrap_or_else(|| format!("family:{}", self.family()))
    }

    fn containers(&self) -> Vec<Map<String, Value>> {
        effective_containers(&self.td.doc, &Value::Object(self.overrides.clone()))
    }

    fn reservation(&self) -> instances::Reservation {
        instances::reservation(
            &self.td.doc,
            &self.containers(),
            self.task_cpu.as_ref(),
            self.task_memory.as_ref(),
        )
    }

    /// The placement request for `count` tasks: their resources, the
    /// request's strategies and constraints with the task definition's
    /// constraints, and the attributes the task definition requires.
    fn placement_request(
        &self,
        req: &RunTaskRequest,
        count: usize,
    ) -> ApiResult<placement::Request> {
        self.placement_spec(req).placement(count)
    }

    /// How to place these tasks, now or later when they wait for capacity.
    fn placement_spec(&self, req: &RunTaskRequest) -> PlacementSpec {
        let mut constraints: Vec<Value> = req
            .placement_constraints
            .as_ref()
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        constraints.extend(
            self.td
                .doc
                .get("placementConstraints")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        let required = self
            .td
            .doc
            .get("requiresAttributes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| {
                Some((
                    a.get("name")?.as_str()?.to_string(),
                    a.get("value").and_then(Value::as_str).map(str::to_string),
                ))
            })
            .collect();
        PlacementSpec {
            strategies: req.placement_strategy.clone().unwrap_or(json!([])),
            constraints: Value::Array(constraints),
            required,
            reservation: self.reservation(),
            group: self.group(req),
        }
    }

    /// Decide where `count` tasks go, inside the caller's write transaction,
    /// so what it decides on is what it reserves.
    fn place(
        &self,
        conn: &Connection,
        how: Decide<'_>,
        cluster: &clusters::ClusterRow,
        req: &RunTaskRequest,
        count: usize,
        among: Among<'_>,
    ) -> ApiResult<placement::Decision> {
        let (only, can_grow) = match among {
            Among::Cluster => (None, false),
            Among::Group {
                instances,
                can_grow,
            } => (Some(instances), can_grow),
        };
        let preq = self.placement_request(req, count)?;
        let views: Vec<placement::Instance> = instances::snapshot(conn, &cluster.arn, how.at)?
            .into_iter()
            .filter(|(row, _)| only.is_none_or(|o| o.contains(&row.arn)))
            .map(|(_, v)| v)
            .collect();
        if only.is_some() && (views.is_empty() || (can_grow && !views.iter().any(|v| v.active))) {
            // A capacity provider's group with no instance yet, or (when
            // managed scaling can add capacity) with every instance
            // draining: nothing is placed, and the caller decides whether
            // the tasks wait.
            return Ok(placement::Decision::default());
        }
        let rng = &mut *how.rng;
        placement::place(&views, &preq, &mut |n| rng.gen_range(0..n))
            .map_err(|e| ApiError::invalid_parameter(e.to_string()))
    }

    /// Decide where `count` tasks go on any instance of the cluster, with
    /// the cluster's kept placer (returned, to be kept again once the
    /// caller's transaction commits). A request whose constraints read
    /// `runningTasksCount`, which tasks change by starting (no write the
    /// placement version sees), is placed on a fresh snapshot.
    fn place_kept(
        &self,
        conn: &Connection,
        how: Decide<'_>,
        cluster: &clusters::ClusterRow,
        req: &RunTaskRequest,
        count: usize,
        placements: &placements::Placements,
    ) -> ApiResult<(placement::Decision, Option<placements::Checkout>)> {
        let spec = self.placement_spec(req);
        if spec.constraints.to_string().contains("runningTasksCount") {
            let d = self.place(conn, how, cluster, req, count, Among::Cluster)?;
            return Ok((d, None));
        }
        let preq = spec.placement(count)?;
        let mut checkout = placements.take(conn, &cluster.arn, how.at)?;
        let rng = &mut *how.rng;
        let decision = checkout
            .placer
            .place(&preq, &mut |n| rng.gen_range(0..n))
            .map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
        Ok((decision, Some(checkout)))
    }

    /// Store one new task, PROVISIONING, on `instance` when it has one.
    fn insert(
        &self,
        tx: &Connection,
        ctx: &Ctx,
        cluster: &clusters::ClusterRow,
        req: &RunTaskRequest,
        capacity_provider: Option<&str>,
        instance: Option<&instances::InstanceRow>,
    ) -> ApiResult<Value> {
        let id = new_id();
        let arn = format!(
            "arn:aws:ecs:{}:{}:task/{}/{id}",
            ctx.region, ctx.account, cluster.name
        );
        let containers: Vec<Value> = self
            .containers()
            .iter()
            .map(|c| {
                let mut out = json!({
                    "containerArn": format!("arn:aws:ecs:{}:{}:container/{}/{id}/{}", ctx.region, ctx.account, cluster.name, uuid::Uuid::new_v4()),
                    "taskArn": arn,
                    "name": c.get("name"),
                    "image": c.get("image"),
                    "lastStatus": "PENDING",
                    "networkInterfaces": [],
                    "cpu": c.get("cpu").and_then(Value::as_i64).unwrap_or(0).to_string(),
                });
                if let Some(m) = c.get("memory").and_then(Value::as_i64) {
                    out["memory"] = json!(m.to_string());
                }
                if let Some(m) = c.get("memoryReservation").and_then(Value::as_i64) {
                    out["memoryReservation"] = json!(m.to_string());
                }
                if c.get("healthCheck").is_some() {
                    out["healthStatus"] = json!("UNKNOWN");
                }
                out
            })
            .collect();
        let attachments = if self.network_mode == "awsvpc" {
            json!([{
                "id": uuid::Uuid::new_v4().to_string(),
                "type": "ElasticNetworkInterface",
                "status": "PRECREATED",
                "details": [{"name": "subnetId", "value": self.subnets.first().cloned().unwrap_or_default()}],
            }])
        } else {
            json!([])
        };
        let (az, arch) = match instance {
            Some(i) => {
                let attrs = instances::attributes_of(tx, i)?;
                let get = |k: &str| attrs.get(k).cloned().flatten();
                (
                    get("ecs.availability-zone").unwrap_or_else(|| format!("{}a", ctx.region)),
                    get("ecs.cpu-architecture").unwrap_or_else(|| "x86_64".into()),
                )
            }
            None => (
                format!("{}a", ctx.region),
                match self
                    .td
                    .doc
                    .get("runtimePlatform")
                    .and_then(|p| p.get("cpuArchitecture"))
                    .and_then(Value::as_str)
                {
                    Some("ARM64") => "arm64".into(),
                    _ => "x86_64".into(),
                },
            ),
        };
        let group = self.group(req);
        let mut t = json!({
            "taskArn": arn,
            "clusterArn": cluster.arn,
            "taskDefinitionArn": self.td.arn,
            "attachments": attachments,
            "attributes": [{"name": "ecs.cpu-architecture", "value": arch}],
            "availabilityZone": az,
            "containers": containers,
            "lastStatus": "PROVISIONING",
            "launchType": self.launch_type,
            "group": group,
            "overrides": {
                "containerOverrides": self.overrides.get("containerOverrides").cloned().unwrap_or(json!([])),
                "inferenceAcceleratorOverrides": [],
            },
            "createdAt": ctx.now_epoch(),
            "version": 1,
            "enableExecuteCommand": req.enable_execute_command.unwrap_or(false),
            "healthStatus": "UNKNOWN",
            "tags": self.tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect::<Vec<_>>(),
        });
        if self.launch_type == "FARGATE" {
            t["platformVersion"] = json!(req
                .platform_version
                .clone()
                .filter(|v| v != "LATEST")
                .unwrap_or_else(|| FARGATE_PLATFORM_VERSION.into()));
            t["platformFamily"] = json!("Linux");
            t["ephemeralStorage"] = self
                .td
                .doc
                .get("ephemeralStorage")
                .cloned()
                .unwrap_or_else(|| json!({"sizeInGiB": 20}));
        }
        for (k, v) in [("cpu", &self.task_cpu), ("memory", &self.task_memory)] {
            if let Some(v) = v {
                t[k] = v.clone();
            }
        }
        for k in ["cpu", "memory", "taskRoleArn", "executionRoleArn"] {
            if let Some(v) = self.overrides.get(k) {
                t["overrides"][k] = v.clone();
            }
        }
        if let Some(s) = &req.started_by {
            t["startedBy"] = json!(s);
        }
        if let Some(cp) = capacity_provider {
            t["capacityProviderName"] = json!(cp);
        }
        let mut runtime = TaskRuntime::default();
        let mut reserved = None;
        if let Some(i) = instance {
            t["containerInstanceArn"] = json!(i.arn);
            runtime.host_ip = i.address.clone();
            reserved = Some(serde_json::to_string(&self.reservation()).expect("serialises"));
        }
        tx.prepare_cached(
            "INSERT INTO tasks (arn, id, account, region, cluster_arn, family, task_definition_arn,
                launch_type, started_by, task_group, desired_status, last_status, created_at, doc, runtime,
                container_instance_arn, reserved)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'RUNNING', 'PROVISIONING', ?11, ?12, ?13, ?14, ?15)",
        )?
        .execute(params![
            arn,
            id,
            ctx.account,
            ctx.region,
            cluster.arn,
            self.family(),
            self.td.arn,
            self.launch_type,
            req.started_by,
            group,
            ctx.now_millis(),
            t.to_string(),
            serde_json::to_string(&runtime).expect("serialises"),
            instance.map(|i| i.arn.clone()),
            reserved,
        ])?;
        tags::put(tx, &arn, &self.tags)?;
        t["desiredStatus"] = json!("RUNNING");
        Ok(t)
    }
}

impl Ecs {
    pub(super) fn run_task(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: RunTaskRequest = serde_json::from_value(input)?;
        let count = req.count.unwrap_or(1);
        if !(1..=10).contains(&count) {
            return Err(ApiError::invalid_parameter(format!(
                "The count parameter must be between 1 and 10 (got {count})."
            )));
        }
        tags::check_user_tags(&req.tags)?;
        let out = self.store.write_then(|tx| {
            let cluster = clusters::resolve_or_create_default(tx, ctx, req.cluster.as_deref())?;
            let mut tasks = Vec::new();
            let mut failures = Vec::new();
            let mut kept = None;
            let mut rng = ctx.rng();
            match launching(tx, ctx, &cluster, &req, count)? {
                Launching::Type(t) if t == "EC2" => {
                    let launch = Launch::check(tx, ctx, &req, "EC2")?;
                    let (decision, checkout) =
                        launch.place_kept(tx, Decide { at: self.liveness(ctx), rng: &mut rng }, &cluster, &req, count as usize, &self.placements)?;
                    kept = checkout;
                    for arn in decision.placed {
                        let instance =
                            instances::load(tx, &arn)?.expect("placed on a stored instance");
                        tasks.push(launch.insert(tx, ctx, &cluster, &req, None, Some(&instance))?);
                    }
                    failures = failure_list(decision.failures);
                }
                Launching::Type(t) if t == "FARGATE" => {
                    let launch = Launch::check(tx, ctx, &req, "FARGATE")?;
                    for _ in 0..count {
                        tasks.push(launch.insert(tx, ctx, &cluster, &req, None, None)?);
                    }
                }
                Launching::Type(t) => {
                    return Err(ApiError::invalid_parameter(format!(
                        "Launch type {t} is not supported by Berth yet."
                    )));
                }
                Launching::Providers(shares) => {
                    for (item, n) in shares {
                        let name = item.provider.as_str();
                        if capacity_providers::is_fargate(name) {
                            let launch = Launch::check(tx, ctx, &req, "FARGATE")?;
                            for _ in 0..n {
                                tasks.push(launch.insert(tx, ctx, &cluster, &req, Some(name), None)?);
                            }
                            continue;
                        }
                        let launch = Launch::check(tx, ctx, &req, "EC2")?;
                        let provider = capacity_providers::find(tx, ctx, name)?
                            .expect("checked with the strategy");
                        let allowed =
                            capacity_providers::group_instances(tx, &*self.groups, &provider)?;
                        let among = Among::Group {
                            instances: &allowed,
                            can_grow: provider.managed_scaling(),
                        };
                        let decision = launch.place(tx, Decide { at: self.liveness(ctx), rng: &mut rng }, &cluster, &req, n as usize, among)?;
                        let placed = decision.placed.len() as i64;
                        for arn in decision.placed {
                            let instance =
                                instances::load(tx, &arn)?.expect("placed on a stored instance");
                            tasks.push(launch.insert(tx, ctx, &cluster, &req, Some(name), Some(&instance))?);
                        }
                        if placed == n {
                            continue;
                        }
                        if !provider.managed_scaling() {
                            failures.extend(failure_list(decision.failures));
                            continue;
                        }
                        // Managed scaling adds capacity: the rest wait in
                        // PROVISIONING and are placed as instances join.
                        let pending = serde_json::to_string(&launch.placement_spec(&req))
                            .expect("serialises");
                        for _ in placed..n {
                            let t = launch.insert(tx, ctx, &cluster, &req, Some(name), None)?;
                            tx.prepare_cached(
                                "INSERT INTO pending_placements (task_arn, cluster_arn, capacity_provider, created_at, request)
                                 VALUES (?1, ?2, ?3, ?4, ?5)",
                            )?
                            .execute(params![t["taskArn"].as_str(), cluster.arn, name, ctx.now_millis(), pending])?;
                            tasks.push(t);
                        }
                    }
                }
            }
            // The placer, current as of this transaction's last write.
            let kept = match kept {
                Some(c) => Some((cluster.arn.clone(), placements::version(tx, &cluster.arn)?, c)),
                None => None,
            };
            let wake = wakes(tx, &tasks)?;
            Ok((json!({"tasks": tasks, "failures": failures}), kept, wake))
        }, |(_, kept, _)| {
            // Kept before the next write can change the cluster.
            if let Some((cluster, version, checkout)) = kept.take() {
                self.placements.put_back(&cluster, version, checkout);
            }
        })?;
        let (out, _, (agent, fleet)) = out;
        // Only who has work to do is woken: the server's agent for tasks it
        // runs, the fleet for tasks waiting for capacity.
        if agent {
            self.tasks_changed();
        }
        if fleet {
            self.bus.wake(crate::events::Topic::Fleet);
        }
        Ok(out)
    }

    pub(super) fn start_task(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: RunTaskRequest = serde_json::from_value(input)?;
        tags::check_user_tags(&req.tags)?;
        let named = req.container_instances.clone().unwrap_or_default();
        if named.is_empty() || named.len() > 10 {
            return Err(ApiError::invalid_parameter(
                "containerInstances cannot be empty and can have at most 10 items.",
            ));
        }
        let out = self.store.write(|tx| {
            let cluster = clusters::resolve_active(tx, ctx, req.cluster.as_deref())?;
            let launch = Launch::check(tx, ctx, &req, "EC2")?;
            let mut tasks = Vec::new();
            let mut failures = Vec::new();
            for ident in &named {
                let arn = instances::instance_arn(ctx, &cluster, ident);
                let Some(instance) =
                    instances::load(tx, &arn)?.filter(|i| i.cluster_arn == cluster.arn)
                else {
                    failures.push(json!({"arn": arn, "reason": "MISSING"}));
                    continue;
                };
                if instance.status != "ACTIVE" {
                    failures.push(json!({"arn": arn, "reason": instance.status}));
                    continue;
                }
                // The named instance is the only candidate: its resources,
                // ports and attributes still have to fit.
                let view = instances::placement_view(tx, &instance, self.liveness(ctx))?;
                let mut preq = launch.placement_request(&req, 1)?;
                preq.strategies.clear();
                let decision = placement::place(std::slice::from_ref(&view), &preq, &mut |_| 0)
                    .map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
                if decision.placed.is_empty() {
                    for f in decision.failures {
                        failures
                            .push(json!({"arn": f.arn.unwrap_or(arn.clone()), "reason": f.reason}));
                    }
                    continue;
                }
                tasks.push(launch.insert(tx, ctx, &cluster, &req, None, Some(&instance))?);
            }
            Ok(json!({"tasks": tasks, "failures": failures}))
        })?;
        self.tasks_changed();
        Ok(out)
    }

    pub(super) fn stop_task(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: StopTaskRequest = serde_json::from_value(input)?;
        let reason = req
            .reason
            .clone()
            .unwrap_or_else(|| "Task stopped by user".into());
        let out = self.store.write(|tx| {
            let cluster = clusters::resolve_active(tx, ctx, req.cluster.as_deref())?;
            let arn = task_arn(ctx, &cluster, &req.task);
            let task = load(tx, &arn)?
                .filter(|t| t.cluster_arn == cluster.arn)
                .ok_or_else(|| ApiError::invalid_parameter("The referenced task was not found."))?;
            request_stop(tx, &task.arn, "UserInitiated", &reason)?;
            if drop_pending(tx, &task.arn)? {
                // It never had an instance: nothing runs, it ends here.
                mark_stopped(tx, &task.arn, ctx.now_epoch())?;
            }
            let task = load(tx, &arn)?.expect("still there");
            Ok(json!({"task": task.render()}))
        })?;
        self.tasks_changed();
        Ok(out)
    }

    pub(super) fn describe_tasks(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: DescribeTasksRequest = serde_json::from_value(input)?;
        if req.tasks.is_empty() || req.tasks.len() > 100 {
            return Err(ApiError::invalid_parameter(
                "Tasks cannot be empty and can have at most 100 items.",
            ));
        }
        let with_tags = req.include.iter().any(|i| i == "TAGS");
        self.store.read(|conn| {
            let cluster = clusters::resolve_active(conn, ctx, req.cluster.as_deref())?;
            let mut tasks = Vec::new();
            let mut failures = Vec::new();
            for ident in &req.tasks {
                let arn = task_arn(ctx, &cluster, ident);
                match load(conn, &arn)?.filter(|t| t.cluster_arn == cluster.arn) {
                    Some(t) => {
                        let mut v = t.render();
                        if with_tags {
                            v["tags"] = Value::Array(tags::load(conn, &t.arn)?);
                        } else if let Some(o) = v.as_object_mut() {
                            o.remove("tags");
                        }
                        tasks.push(v);
                    }
                    None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
                }
            }
            Ok(json!({"tasks": tasks, "failures": failures}))
        })
    }

    pub(super) fn list_tasks(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: ListTasksRequest = serde_json::from_value(input)?;
        let size = paging::page_size(req.max_results, paging::MAX_RESULTS)?;
        if req.service_name.is_some() && req.family.is_some() {
            return Err(ApiError::invalid_parameter(
                "The family and serviceName parameters cannot both be specified.",
            ));
        }
        let after = match &req.next_token {
            Some(t) => Some(paging::decode_as::<(i64, String)>(t)?),
            None => None,
        };
        self.store.read(|conn| {
            let cluster = clusters::resolve_active(conn, ctx, req.cluster.as_deref())?;
            let mut sql = String::from("SELECT created_at, arn FROM tasks WHERE cluster_arn = ?");
            let mut args: Vec<SqlValue> = vec![cluster.arn.clone().into()];
            let desired = req
                .desired_status
                .clone()
                .unwrap_or_else(|| "RUNNING".into());
            sql.push_str(" AND desired_status = ?");
            args.push(desired.into());
            for (col, v) in [
                ("family", &req.family),
                ("started_by", &req.started_by),
                ("launch_type", &req.launch_type),
            ] {
                if let Some(v) = v {
                    sql.push_str(&format!(" AND {col} = ?"));
                    args.push(v.clone().into());
                }
            }
            if let Some(ci) = &req.container_instance {
                sql.push_str(" AND container_instance_arn = ?");
                args.push(instances::instance_arn(ctx, &cluster, ci).into());
            }
            if req.service_name.is_some() {
                // Services do not exist yet, so no task belongs to one.
                sql.push_str(" AND 0");
            }
            if let Some((ts, arn)) = &after {
                sql.push_str(" AND (created_at, arn) > (?, ?)");
                args.push((*ts).into());
                args.push(arn.clone().into());
            }
            sql.push_str(" ORDER BY created_at, arn LIMIT ?");
            args.push((size as i64 + 1).into());
            let rows: Vec<(i64, String)> = conn
                .prepare_cached(&sql)?
                .query_map(params_from_iter(args.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<Result<_, _>>()?;
            let (page, token) = paging::page(rows, size, |(ts, arn)| json!([ts, arn]));
            let mut out = json!({"taskArns": page.into_iter().map(|(_, a)| a).collect::<Vec<_>>()});
            if let Some(t) = token {
                out["nextToken"] = json!(t);
            }
            Ok(out)
        })
    }
}

// ----- What other services read of tasks (metering) -----

/// A task as other services read it: its columns and documents, its task
/// definition's document.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    pub arn: String,
    pub cluster_arn: String,
    pub region: String,
    pub family: String,
    pub task_definition_arn: String,
    pub launch_type: String,
    pub started_by: Option<String>,
    pub group: Option<String>,
    pub created_ms: i64,
    pub doc: Map<String, Value>,
    /// What it reserves on its instance (EC2 tasks).
    pub reserved: Option<instances::Reservation>,
    pub container_instance_arn: Option<String>,
    pub task_definition: Map<String, Value>,
}

const RECORD: &str = "SELECT t.arn, t.cluster_arn, t.region, t.family, t.task_definition_arn,
    t.launch_type, t.started_by, t.task_group, t.created_at, t.doc, t.reserved,
    t.container_instance_arn, d.doc
    FROM tasks t LEFT JOIN task_definitions d ON d.arn = t.task_definition_arn";

fn record_from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaskRecord> {
    let json = |s: Option<String>| -> Map<String, Value> {
        s.and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    };
    Ok(TaskRecord {
        arn: r.get(0)?,
        cluster_arn: r.get(1)?,
        region: r.get(2)?,
        family: r.get(3)?,
        task_definition_arn: r.get(4)?,
        launch_type: r.get(5)?,
        started_by: r.get(6)?,
        group: r.get(7)?,
        created_ms: r.get(8)?,
        doc: json(r.get(9)?),
        reserved: r
            .get::<_, Option<String>>(10)?
            .and_then(|s| serde_json::from_str(&s).ok()),
        container_instance_arn: r.get(11)?,
        task_definition: json(r.get(12)?),
    })
}

/// The tasks of an account and region (of one cluster, if given) created
/// at or after `since_ms`, oldest first, from after the key `after`
/// (`(created_ms, arn)`), at most `limit`.
pub fn records(
    conn: &Connection,
    account: &str,
    region: &str,
    cluster_arn: Option<&str>,
    since_ms: i64,
    after: (i64, &str),
    limit: usize,
) -> ApiResult<Vec<TaskRecord>> {
    let rows = conn
        .prepare_cached(&format!(
            "{RECORD} WHERE t.account = ?1 AND t.region = ?2
               AND (?3 IS NULL OR t.cluster_arn = ?3) AND t.created_at >= ?4
               AND (t.created_at, t.arn) > (?5, ?6)
             ORDER BY t.created_at, t.arn LIMIT ?7"
        ))?
        .query_map(
            params![
                account,
                region,
                cluster_arn,
                since_ms,
                after.0,
                after.1,
                limit as i64
            ],
            record_from_sql,
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The tasks placed on an instance created at or after `since_ms`.
pub fn records_on(
    conn: &Connection,
    instance_arn: &str,
    since_ms: i64,
) -> ApiResult<Vec<TaskRecord>> {
    let rows = conn
        .prepare_cached(&format!(
            "{RECORD} WHERE t.container_instance_arn = ?1 AND t.created_at >= ?2"
        ))?
        .query_map(params![instance_arn, since_ms], record_from_sql)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The tasks that stopped after stop sequence number `seq` (each task
/// that stops gets the next one), in that order, at most `limit`.
pub fn stopped_after(
    conn: &Connection,
    seq: i64,
    limit: usize,
) -> ApiResult<Vec<(i64, TaskRecord)>> {
    let rows = conn
        .prepare_cached(
            "SELECT t.arn, t.cluster_arn, t.region, t.family, t.task_definition_arn,
               t.launch_type, t.started_by, t.task_group, t.created_at, t.doc, t.reserved,
               t.container_instance_arn, d.doc, t.stop_seq
             FROM tasks t INDEXED BY tasks_by_stop_seq
               LEFT JOIN task_definitions d ON d.arn = t.task_definition_arn
             WHERE t.stop_seq > ?1 ORDER BY t.stop_seq LIMIT ?2",
        )?
        .query_map(params![seq, limit as i64], |r| {
            Ok((r.get(13)?, record_from_sql(r)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
