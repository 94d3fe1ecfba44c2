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

use super::shapes::{
    self, Attachment, Attribute, CPUArchitecture, CapacityProviderStrategyItem, Container,
    ContainerDefinition, DescribeTasksRequest, DescribeTasksResponse, DesiredStatus,
    EphemeralStorage, Failure, HealthStatus, KeyValuePair, LaunchType, ListTasksRequest,
    ListTasksResponse, NetworkConfiguration, NetworkMode, PlacementConstraint, PlacementStrategy,
    PropagateTags, RunTaskRequest, RunTaskResponse, StartTaskRequest, StartTaskResponse,
    StopTaskRequest, StopTaskResponse, Task, TaskDefinition, TaskField, TaskOverride, TaskStopCode,
};
use super::status::TaskStatus;
use super::{
    arn, capacity_providers, clusters, describe_each, instances, placements, tags, taskdefs, Ecs,
};
use crate::context::millis_to_epoch;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::paging;
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

/// A task as stored: the `Task` the agent last reported (`doc`) and, apart
/// from it, what only the API decides.
#[derive(Debug, Clone)]
pub struct TaskRow {
    pub arn: String,
    pub cluster_arn: String,
    pub desired_status: TaskStatus,
    pub stop_code: Option<TaskStopCode>,
    pub stopped_reason: Option<String>,
    pub doc: Task,
    pub runtime: TaskRuntime,
}

impl TaskRow {
    pub fn last_status(&self) -> TaskStatus {
        self.doc.last_status.unwrap_or_default()
    }

    /// The ECS `Task`, with what the API decided.
    pub fn render(&self) -> Task {
        let mut d = self.doc.clone();
        d.desired_status = Some(self.desired_status);
        d.stop_code = self.stop_code.or(d.stop_code);
        d.stopped_reason = self.stopped_reason.clone().or(d.stopped_reason);
        d
    }

    /// The task's container named `name`.
    pub fn container_mut(&mut self, name: &str) -> Option<&mut Container> {
        self.doc
            .containers
            .iter_mut()
            .flatten()
            .find(|c| c.name.as_deref() == Some(name))
    }

    /// The task's short id (the last part of its ARN).
    pub fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }
}

use crate::store::text_enum;

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
        desired_status: text_enum(2, r.get(2)?)?,
        stop_code: r
            .get::<_, Option<String>>(3)?
            .map(|c| text_enum(3, c))
            .transpose()?,
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

/// The live task of `cluster_arn` with the attachment `id`.
pub fn with_attachment(
    conn: &Connection,
    cluster_arn: &str,
    id: &str,
) -> ApiResult<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT t.arn FROM tasks t, json_each(t.doc, '$.attachments') a
             WHERE t.cluster_arn = ?1 AND t.last_status != 'STOPPED'
               AND json_extract(a.value, '$.id') = ?2
             LIMIT 1",
        )?
        .query_row([cluster_arn, id], |r| r.get(0))
        .optional()?)
}

/// Save what the agent observed: the document (with `version` one more than
/// stored) and the runtime record. Leaves the desired-state columns alone.
pub fn save_observed(conn: &Connection, task: &TaskRow) -> ApiResult<()> {
    conn.prepare_cached(
        "UPDATE tasks SET
           doc = json_set(?2, '$.version', coalesce(json_extract(doc, '$.version'), 0) + 1),
           last_status = json_extract(?2, '$.lastStatus'),
           health_status = json_extract(?2, '$.healthStatus'),
           started_at = json_extract(?2, '$.startedAt'),
           runtime = ?3
         WHERE arn = ?1",
    )?
    .execute(params![
        task.arn,
        serde_json::to_string(&task.doc).expect("serialises"),
        serde_json::to_string(&task.runtime).expect("serialises")
    ])?;
    Ok(())
}

/// Ask for a task to stop. The first reason given wins; returns whether this
/// call changed anything.
pub fn request_stop(
    conn: &Connection,
    arn: &str,
    code: TaskStopCode,
    reason: &str,
) -> ApiResult<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE tasks SET desired_status = 'STOPPED', stop_code = ?2, stopped_reason = ?3,
               doc = json_set(doc, '$.version', coalesce(json_extract(doc, '$.version'), 0) + 1)
             WHERE arn = ?1 AND desired_status != 'STOPPED'",
        )?
        .execute(params![arn, code.as_str(), reason])?;
    Ok(n > 0)
}

/// Stop a task on the control plane's behalf (the service scheduler): ask
/// it to stop, and end it at once when it was still waiting for capacity
/// (nothing runs it yet).
pub(crate) fn stop(
    conn: &Connection,
    arn: &str,
    code: TaskStopCode,
    reason: &str,
    now_epoch: f64,
) -> ApiResult<()> {
    request_stop(conn, arn, code, reason)?;
    if drop_pending(conn, arn)? {
        mark_stopped(conn, arn, now_epoch)?;
    }
    Ok(())
}

/// Record a task as STOPPED without an agent: for tasks whose agent is gone
/// (its instance deregistered or disconnected), so nothing will report
/// their end. Their reservations are released with it.
pub fn mark_stopped(conn: &Connection, arn: &str, now_epoch: f64) -> ApiResult<()> {
    let Some(mut task) = load(conn, arn)? else {
        return Ok(());
    };
    if task.last_status() == TaskStatus::Stopped {
        return Ok(());
    }
    for c in task.doc.containers.iter_mut().flatten() {
        c.last_status = Some(TaskStatus::Stopped);
    }
    let d = &mut task.doc;
    for at in [
        &mut d.stopping_at,
        &mut d.execution_stopped_at,
        &mut d.stopped_at,
    ] {
        at.get_or_insert(now_epoch);
    }
    d.last_status = Some(TaskStatus::Stopped);
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

/// What RunTask and StartTask ask for, as one request; the service
/// scheduler asks for its tasks the same way.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskRequest {
    pub cluster: Option<String>,
    pub task_definition: String,
    pub count: i64,
    pub launch_type: Option<LaunchType>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub overrides: TaskOverride,
    pub started_by: Option<String>,
    pub group: Option<String>,
    pub tags: Vec<tags::Tag>,
    pub propagate_tags: Option<PropagateTags>,
    pub enable_execute_command: bool,
    pub platform_version: Option<String>,
    pub placement_constraints: Vec<PlacementConstraint>,
    pub placement_strategy: Vec<PlacementStrategy>,
}

impl From<RunTaskRequest> for TaskRequest {
    fn from(r: RunTaskRequest) -> TaskRequest {
        TaskRequest {
            cluster: r.cluster,
            task_definition: r.task_definition,
            count: r.count.unwrap_or(1),
            launch_type: r.launch_type,
            capacity_provider_strategy: r.capacity_provider_strategy,
            network_configuration: r.network_configuration,
            overrides: r.overrides.unwrap_or_default(),
            started_by: r.started_by,
            group: r.group,
            tags: tags::from_shapes(r.tags.as_deref().unwrap_or_default()),
            propagate_tags: r.propagate_tags,
            enable_execute_command: r.enable_execute_command.unwrap_or(false),
            platform_version: r.platform_version,
            placement_constraints: r.placement_constraints.unwrap_or_default(),
            placement_strategy: r.placement_strategy.unwrap_or_default(),
        }
    }
}

impl From<&StartTaskRequest> for TaskRequest {
    fn from(r: &StartTaskRequest) -> TaskRequest {
        TaskRequest {
            cluster: r.cluster.clone(),
            task_definition: r.task_definition.clone(),
            count: 1,
            launch_type: Some(LaunchType::Ec2),
            capacity_provider_strategy: None,
            network_configuration: r.network_configuration.clone(),
            overrides: r.overrides.clone().unwrap_or_default(),
            started_by: r.started_by.clone(),
            group: r.group.clone(),
            tags: tags::from_shapes(r.tags.as_deref().unwrap_or_default()),
            propagate_tags: r.propagate_tags,
            enable_execute_command: r.enable_execute_command.unwrap_or(false),
            platform_version: None,
            placement_constraints: Vec::new(),
            placement_strategy: Vec::new(),
        }
    }
}

/// The task's ARN for an id or ARN given in a call.
fn task_arn(ctx: &Ctx, cluster: &clusters::ClusterRow, ident: &str) -> String {
    arn::resolve_in_cluster(ctx, "task", &cluster.name, ident)
}

/// How a RunTask's tasks are launched: by launch type, or split over the
/// providers of a capacity provider strategy (the request's, or the
/// cluster's default when the request names neither).
enum Launching {
    Type(LaunchType),
    Providers(Vec<(capacity_providers::Item, i64)>),
}

/// How a request's tasks are launched, before they are counted out.
enum Via {
    Type(LaunchType),
    Strategy(Vec<capacity_providers::Item>),
}

fn via(
    conn: &Connection,
    ctx: &Ctx,
    cluster: &clusters::ClusterRow,
    req: &TaskRequest,
) -> ApiResult<Via> {
    if req.launch_type.is_some() && req.capacity_provider_strategy.is_some() {
        return Err(ApiError::invalid_parameter(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
        ));
    }
    if let Some(t) = req.launch_type {
        return Ok(Via::Type(t));
    }
    let default = &cluster.doc.default_capacity_provider_strategy;
    let strategy = match &req.capacity_provider_strategy {
        Some(s) => s,
        None if !default.is_empty() => default,
        None => return Ok(Via::Type(LaunchType::Ec2)),
    };
    Ok(Via::Strategy(capacity_providers::check_strategy(
        conn,
        ctx,
        &cluster.doc.capacity_providers,
        strategy,
    )?))
}

fn launching(
    conn: &Connection,
    ctx: &Ctx,
    cluster: &clusters::ClusterRow,
    req: &TaskRequest,
) -> ApiResult<Launching> {
    Ok(match via(conn, ctx, cluster, req)? {
        Via::Type(t) => Launching::Type(t),
        Via::Strategy(items) => {
            let counts = capacity_providers::split(&items, req.count);
            Launching::Providers(
                items
                    .into_iter()
                    .zip(counts)
                    .filter(|(_, n)| *n > 0)
                    .collect(),
            )
        }
    })
}

/// ECS's checks of a request against its cluster and task definition,
/// launching nothing: CreateService and UpdateService make them before they
/// store a service, as RunTask does before it launches. Every provider of a
/// strategy is checked, whatever share of the tasks it would take.
pub(crate) fn check_request(
    conn: &Connection,
    ctx: &Ctx,
    cluster: &clusters::ClusterRow,
    req: &TaskRequest,
) -> ApiResult<()> {
    let types: Vec<LaunchType> = match via(conn, ctx, cluster, req)? {
        Via::Type(t) => vec![t],
        Via::Strategy(items) => items
            .iter()
            .map(|i| {
                if capacity_providers::is_fargate(&i.provider) {
                    LaunchType::Fargate
                } else {
                    LaunchType::Ec2
                }
            })
            .collect(),
    };
    for t in types {
        Launch::check(conn, ctx, req, t)?;
    }
    Ok(())
}

/// A shape as the JSON the pure parsers (placement's, strategies') read.
fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("a shape serialises")
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
        if task.desired_status == TaskStatus::Stopped || task.last_status() == TaskStatus::Stopped {
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
    doc.container_instance_arn = Some(instance.arn.clone());
    if let Some(az) = get("ecs.availability-zone") {
        doc.availability_zone = Some(az);
    }
    doc.attributes = Some(vec![architecture(
        get("ecs.cpu-architecture").unwrap_or_else(|| "x86_64".into()),
    )]);
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
        serde_json::to_string(&doc).expect("serialises"),
    ])?;
    Ok(())
}

/// The `ecs.cpu-architecture` attribute a task reports.
fn architecture(arch: String) -> Attribute {
    Attribute {
        name: "ecs.cpu-architecture".into(),
        value: Some(arch),
        ..Attribute::default()
    }
}

fn failure_list(failures: Vec<placement::Failure>) -> Vec<Failure> {
    failures
        .into_iter()
        .map(|f| Failure {
            arn: f.arn,
            reason: Some(f.reason),
            ..Failure::default()
        })
        .collect()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The effective container definitions of a task: the task definition's,
/// with the task's `containerOverrides` applied (environment variables
/// merged by name; command, cpu and memory replaced).
pub fn effective_containers(
    taskdef: &TaskDefinition,
    overrides: &TaskOverride,
) -> Vec<ContainerDefinition> {
    let ovs = overrides.container_overrides.as_deref().unwrap_or_default();
    taskdef
        .container_definitions
        .iter()
        .flatten()
        .map(|c| {
            let mut c = c.clone();
            let Some(ov) = ovs.iter().find(|o| o.name.is_some() && o.name == c.name) else {
                return c;
            };
            let env = c.environment.get_or_insert_with(Vec::new);
            for e in ov.environment.iter().flatten() {
                match env.iter_mut().find(|x| x.name == e.name) {
                    Some(x) => *x = e.clone(),
                    None => env.push(e.clone()),
                }
            }
            if ov.command.is_some() {
                c.command = ov.command.clone();
            }
            c.cpu = ov.cpu.or(c.cpu);
            c.memory = ov.memory.or(c.memory);
            c.memory_reservation = ov.memory_reservation.or(c.memory_reservation);
            c
        })
        .collect()
}

/// Whom new tasks give work: (the server's own agent, for FARGATE tasks
/// and tasks on its local instances; the fleet, for tasks waiting without
/// an instance).
fn wakes(conn: &Connection, tasks: &[Task]) -> ApiResult<(bool, bool)> {
    let (mut agent, mut fleet) = (false, false);
    let mut seen = HashSet::new();
    for t in tasks {
        match t.container_instance_arn.as_deref() {
            None if t.launch_type == Some(LaunchType::Fargate) => agent = true,
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
    launch_type: LaunchType,
    network_mode: NetworkMode,
    overrides: TaskOverride,
    subnets: Vec<String>,
    task_cpu: Option<String>,
    task_memory: Option<String>,
    tags: Vec<tags::Tag>,
}

impl Launch {
    /// ECS's checks of the request against its task definition.
    fn check(
        conn: &Connection,
        ctx: &Ctx,
        req: &TaskRequest,
        launch_type: LaunchType,
    ) -> ApiResult<Launch> {
        let td = taskdefs::resolve_active(conn, ctx, &req.task_definition)?;
        let doc = &td.doc;
        let network_mode = doc.network_mode.unwrap_or(NetworkMode::Bridge);
        let supported = doc
            .compatibilities
            .iter()
            .flatten()
            .any(|c| c.as_str() == launch_type.as_str());
        if !supported {
            return Err(ApiError::invalid_parameter(format!(
                "Task definition does not support launch_type {}.",
                launch_type.as_str()
            )));
        }
        let overrides = req.overrides.clone();
        for o in overrides.container_overrides.iter().flatten() {
            let n = o.name.as_deref().unwrap_or_default();
            let known = doc
                .container_definitions
                .iter()
                .flatten()
                .any(|c| c.name.as_deref() == Some(n));
            if !known {
                return Err(ApiError::invalid_parameter(format!(
                    "Override for container named {n} is not a container in the TaskDefinition."
                )));
            }
        }
        let subnets: Vec<String> = req
            .network_configuration
            .as_ref()
            .and_then(|n| n.awsvpc_configuration.as_ref())
            .map(|a| a.subnets.clone())
            .unwrap_or_default();
        if network_mode == NetworkMode::Awsvpc && subnets.is_empty() {
            return Err(ApiError::invalid_parameter(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
            ));
        }
        if network_mode != NetworkMode::Awsvpc && req.network_configuration.is_some() {
            return Err(ApiError::invalid_parameter(
                "Network Configuration is not valid for the given networkMode of this task definition.",
            ));
        }
        if launch_type == LaunchType::Fargate
            && (!req.placement_constraints.is_empty() || !req.placement_strategy.is_empty())
        {
            return Err(ApiError::invalid_parameter(
                "Placement constraints and strategies are not supported with the FARGATE launch type.",
            ));
        }
        let task_cpu = overrides.cpu.clone().or(doc.cpu.clone());
        let task_memory = overrides.memory.clone().or(doc.memory.clone());
        let mut task_tags = req.tags.clone();
        if req.propagate_tags == Some(PropagateTags::TaskDefinition) {
            for t in tags::from_shapes(&tags::load(conn, &td.arn)?) {
                if !task_tags.iter().any(|x| x.key == t.key) {
                    task_tags.push(t);
                }
            }
        }
        Ok(Launch {
            td,
            launch_type,
            network_mode,
            overrides,
            subnets,
            task_cpu,
            task_memory,
            tags: task_tags,
        })
    }

    fn family(&self) -> &str {
        self.td.doc.family.as_deref().unwrap_or_default()
    }

    fn group(&self, req: &TaskRequest) -> String {
        req.group
            .clone()
            .unwrap_or_else(|| format!("family:{}", self.family()))
    }

    fn containers(&self) -> Vec<ContainerDefinition> {
        effective_containers(&self.td.doc, &self.overrides)
    }

    fn reservation(&self) -> instances::Reservation {
        instances::reservation(
            &self.td.doc,
            &self.containers(),
            self.task_cpu.as_deref(),
            self.task_memory.as_deref(),
        )
    }

    /// The placement request for `count` tasks: their resources, the
    /// request's strategies and constraints with the task definition's
    /// constraints, and the attributes the task definition requires.
    fn placement_request(&self, req: &TaskRequest, count: usize) -> ApiResult<placement::Request> {
        self.placement_spec(req).placement(count)
    }

    /// How to place these tasks, now or later when they wait for capacity.
    fn placement_spec(&self, req: &TaskRequest) -> PlacementSpec {
        let mut constraints: Vec<Value> = req.placement_constraints.iter().map(to_json).collect();
        constraints.extend(
            self.td
                .doc
                .placement_constraints
                .iter()
                .flatten()
                .map(to_json),
        );
        let required = self
            .td
            .doc
            .requires_attributes
            .iter()
            .flatten()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect();
        PlacementSpec {
            strategies: Value::Array(req.placement_strategy.iter().map(to_json).collect()),
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
        req: &TaskRequest,
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
        req: &TaskRequest,
        placements: &placements::Placements,
    ) -> ApiResult<(placement::Decision, Option<placements::Checkout>)> {
        let count = req.count as usize;
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
        req: &TaskRequest,
        capacity_provider: Option<&str>,
        instance: Option<&instances::InstanceRow>,
    ) -> ApiResult<Task> {
        let id = new_id();
        let arn = arn::in_cluster(ctx, "task", &cluster.name, &id);
        let containers: Vec<Container> = self
            .containers()
            .iter()
            .map(|c| Container {
                container_arn: Some(arn::in_cluster(
                    ctx,
                    "container",
                    &cluster.name,
                    &format!("{id}/{}", uuid::Uuid::new_v4()),
                )),
                task_arn: Some(arn.clone()),
                name: c.name.clone(),
                image: c.image.clone(),
                last_status: Some(TaskStatus::Pending),
                network_interfaces: Some(Vec::new()),
                cpu: Some(c.cpu.unwrap_or(0).to_string()),
                memory: c.memory.map(|m| m.to_string()),
                memory_reservation: c.memory_reservation.map(|m| m.to_string()),
                health_status: c.health_check.as_ref().map(|_| HealthStatus::Unknown),
                ..Container::default()
            })
            .collect();
        let attachments = if self.network_mode == NetworkMode::Awsvpc {
            vec![Attachment {
                id: Some(uuid::Uuid::new_v4().to_string()),
                r#type: Some("ElasticNetworkInterface".into()),
                status: Some("PRECREATED".into()),
                details: Some(vec![KeyValuePair {
                    name: Some("subnetId".into()),
                    value: Some(self.subnets.first().cloned().unwrap_or_default()),
                }]),
            }]
        } else {
            Vec::new()
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
                    .runtime_platform
                    .as_ref()
                    .and_then(|p| p.cpu_architecture)
                {
                    Some(CPUArchitecture::Arm64) => "arm64".into(),
                    _ => "x86_64".into(),
                },
            ),
        };
        let group = self.group(req);
        let fargate = self.launch_type == LaunchType::Fargate;
        let overrides = TaskOverride {
            container_overrides: Some(
                self.overrides
                    .container_overrides
                    .clone()
                    .unwrap_or_default(),
            ),
            inference_accelerator_overrides: Some(Vec::new()),
            cpu: self.overrides.cpu.clone(),
            memory: self.overrides.memory.clone(),
            task_role_arn: self.overrides.task_role_arn.clone(),
            execution_role_arn: self.overrides.execution_role_arn.clone(),
            ..TaskOverride::default()
        };
        let mut t = Task {
            task_arn: Some(arn.clone()),
            cluster_arn: Some(cluster.arn.clone()),
            task_definition_arn: Some(self.td.arn.clone()),
            attachments: Some(attachments),
            attributes: Some(vec![architecture(arch)]),
            availability_zone: Some(az),
            containers: Some(containers),
            last_status: Some(TaskStatus::Provisioning),
            launch_type: Some(self.launch_type),
            group: Some(group.clone()),
            overrides: Some(overrides),
            created_at: Some(ctx.now_epoch()),
            version: Some(1),
            enable_execute_command: Some(req.enable_execute_command),
            health_status: Some(HealthStatus::Unknown),
            tags: Some(
                self.tags
                    .iter()
                    .map(|t| shapes::Tag {
                        key: Some(t.key.clone()),
                        value: Some(t.value.clone()),
                    })
                    .collect(),
            ),
            cpu: self.task_cpu.clone(),
            memory: self.task_memory.clone(),
            started_by: req.started_by.clone(),
            capacity_provider_name: capacity_provider.map(str::to_string),
            ..Task::default()
        };
        if fargate {
            t.platform_version = Some(
                req.platform_version
                    .clone()
                    .filter(|v| v != "LATEST")
                    .unwrap_or_else(|| FARGATE_PLATFORM_VERSION.into()),
            );
            t.platform_family = Some("Linux".into());
            t.ephemeral_storage = Some(
                self.td
                    .doc
                    .ephemeral_storage
                    .clone()
                    .unwrap_or(EphemeralStorage { size_in_gi_b: 20 }),
            );
        }
        let mut runtime = TaskRuntime::default();
        let mut reserved = None;
        if let Some(i) = instance {
            t.container_instance_arn = Some(i.arn.clone());
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
            self.launch_type.as_str(),
            req.started_by,
            group,
            ctx.now_millis(),
            serde_json::to_string(&t).expect("serialises"),
            serde_json::to_string(&runtime).expect("serialises"),
            instance.map(|i| i.arn.clone()),
            reserved,
        ])?;
        tags::put(tx, &arn, &self.tags)?;
        t.desired_status = Some(TaskStatus::Running);
        Ok(t)
    }
}

/// What one launch made: the tasks, the placement failures, the cluster's
/// placer to keep once the transaction commits, and whom to wake.
#[derive(Default)]
pub(crate) struct Launched {
    pub tasks: Vec<Task>,
    pub failures: Vec<Failure>,
    kept: Option<(String, i64, placements::Checkout)>,
    wake_agent: bool,
    wake_fleet: bool,
}

impl Ecs {
    pub(super) fn run_task(&self, ctx: &Ctx, req: RunTaskRequest) -> ApiResult<RunTaskResponse> {
        let req = TaskRequest::from(req);
        let count = req.count;
        if !(1..=10).contains(&count) {
            return Err(ApiError::invalid_parameter(format!(
                "The count parameter must be between 1 and 10 (got {count})."
            )));
        }
        tags::check_user_tags(&req.tags)?;
        let launched = self.store.write_then(
            |tx| {
                let cluster = clusters::resolve_or_create_default(tx, ctx, req.cluster.as_deref())?;
                self.launch(tx, ctx, &cluster, &req)
            },
            |l| self.keep_placer(l),
        )?;
        self.wake_for(&launched);
        Ok(RunTaskResponse {
            tasks: Some(launched.tasks),
            failures: Some(launched.failures),
        })
    }

    /// Once a launch's transaction has committed: keep the cluster's placer
    /// (before the next write can change the cluster).
    pub(crate) fn keep_placer(&self, l: &mut Launched) {
        if let Some((cluster, version, checkout)) = l.kept.take() {
            self.placements.put_back(&cluster, version, checkout);
        }
    }

    /// Wake only who has work: the server's agent for tasks it runs, the
    /// fleet for tasks waiting for capacity.
    pub(crate) fn wake_for(&self, l: &Launched) {
        if l.wake_agent {
            self.tasks_changed();
        }
        if l.wake_fleet {
            self.bus.wake(crate::events::Topic::Fleet);
        }
    }

    /// Start one task of `req` on `instance`, its only candidate: its
    /// status, resources, ports and attributes must fit (StartTask, and the
    /// scheduler of a DAEMON service). `Err` holds why not.
    fn place_on(
        &self,
        tx: &Connection,
        ctx: &Ctx,
        cluster: &clusters::ClusterRow,
        req: &TaskRequest,
        launch: &Launch,
        instance: &instances::InstanceRow,
    ) -> ApiResult<Result<Task, Vec<Failure>>> {
        if instance.status != instances::InstanceStatus::Active {
            return Ok(Err(vec![Failure {
                arn: Some(instance.arn.clone()),
                reason: Some(instance.status.as_str().into()),
                ..Failure::default()
            }]));
        }
        let view = instances::placement_view(tx, instance, self.liveness(ctx))?;
        let mut preq = launch.placement_request(req, 1)?;
        preq.strategies.clear();
        let decision = placement::place(std::slice::from_ref(&view), &preq, &mut |_| 0)
            .map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
        if decision.placed.is_empty() {
            return Ok(Err(decision
                .failures
                .into_iter()
                .map(|f| Failure {
                    arn: Some(f.arn.unwrap_or(instance.arn.clone())),
                    reason: Some(f.reason),
                    ..Failure::default()
                })
                .collect()));
        }
        Ok(Ok(launch.insert(
            tx,
            ctx,
            cluster,
            req,
            None,
            Some(instance),
        )?))
    }

    /// A DAEMON service's instances: the ACTIVE container instances of the
    /// cluster whose attributes meet the request's constraints and its task
    /// definition's required attributes, whatever they have free.
    pub(crate) fn daemon_instances(
        &self,
        tx: &Connection,
        ctx: &Ctx,
        cluster: &clusters::ClusterRow,
        req: &TaskRequest,
    ) -> ApiResult<Vec<String>> {
        let launch = Launch::check(tx, ctx, req, LaunchType::Ec2)?;
        let mut preq = launch.placement_request(req, 1)?;
        preq.strategies.clear();
        preq.cpu = 0;
        preq.memory = 0;
        preq.ports_tcp.clear();
        preq.ports_udp.clear();
        let mut out = Vec::new();
        for (row, view) in instances::snapshot(tx, &cluster.arn, self.liveness(ctx))? {
            if row.status != instances::InstanceStatus::Active {
                continue;
            }
            let fits = placement::place(std::slice::from_ref(&view), &preq, &mut |_| 0)
                .is_ok_and(|d| !d.placed.is_empty());
            if fits {
                out.push(row.arn);
            }
        }
        Ok(out)
    }

    /// Start one task of a DAEMON service on `instance_arn`; what was
    /// started, or why not.
    pub(crate) fn launch_on(
        &self,
        tx: &Connection,
        ctx: &Ctx,
        cluster: &clusters::ClusterRow,
        req: &TaskRequest,
        instance_arn: &str,
    ) -> ApiResult<Result<Launched, String>> {
        let launch = Launch::check(tx, ctx, req, LaunchType::Ec2)?;
        let Some(instance) = instances::load(tx, instance_arn)? else {
            return Ok(Err("MISSING".into()));
        };
        Ok(
            match self.place_on(tx, ctx, cluster, req, &launch, &instance)? {
                Ok(t) => {
                    let (wake_agent, wake_fleet) = wakes(tx, std::slice::from_ref(&t))?;
                    Ok(Launched {
                        tasks: vec![t],
                        failures: Vec::new(),
                        kept: None,
                        wake_agent,
                        wake_fleet,
                    })
                }
                Err(f) => Err(f
                    .into_iter()
                    .filter_map(|f| f.reason)
                    .collect::<Vec<_>>()
                    .join(", ")),
            },
        )
    }

    /// Launch the tasks a request asks for in `cluster`, inside the caller's
    /// write transaction: RunTask's and the service scheduler's one path.
    pub(crate) fn launch(
        &self,
        tx: &Connection,
        ctx: &Ctx,
        cluster: &clusters::ClusterRow,
        req: &TaskRequest,
    ) -> ApiResult<Launched> {
        let count = req.count;
        let cluster = cluster.clone();
        let req = req.clone();
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        let mut kept = None;
        let mut rng = ctx.rng();
        match launching(tx, ctx, &cluster, &req)? {
            Launching::Type(LaunchType::Ec2) => {
                let launch = Launch::check(tx, ctx, &req, LaunchType::Ec2)?;
                let how = Decide {
                    at: self.liveness(ctx),
                    rng: &mut rng,
                };
                let (decision, checkout) =
                    launch.place_kept(tx, how, &cluster, &req, &self.placements)?;
                kept = checkout;
                for arn in decision.placed {
                    let instance = instances::load(tx, &arn)?.expect("placed on a stored instance");
                    tasks.push(launch.insert(tx, ctx, &cluster, &req, None, Some(&instance))?);
                }
                failures = failure_list(decision.failures);
            }
            Launching::Type(LaunchType::Fargate) => {
                let launch = Launch::check(tx, ctx, &req, LaunchType::Fargate)?;
                for _ in 0..count {
                    tasks.push(launch.insert(tx, ctx, &cluster, &req, None, None)?);
                }
            }
            Launching::Type(t) => {
                return Err(ApiError::invalid_parameter(format!(
                    "Launch type {} is not supported by Berth yet.",
                    t.as_str()
                )));
            }
            Launching::Providers(shares) => {
                for (item, n) in shares {
                    let name = item.provider.as_str();
                    if capacity_providers::is_fargate(name) {
                        let launch = Launch::check(tx, ctx, &req, LaunchType::Fargate)?;
                        for _ in 0..n {
                            tasks.push(launch.insert(tx, ctx, &cluster, &req, Some(name), None)?);
                        }
                        continue;
                    }
                    let launch = Launch::check(tx, ctx, &req, LaunchType::Ec2)?;
                    let provider = capacity_providers::find(tx, ctx, name)?
                        .expect("checked with the strategy");
                    let allowed =
                        capacity_providers::group_instances(tx, &*self.groups, &provider)?;
                    let among = Among::Group {
                        instances: &allowed,
                        can_grow: provider.managed_scaling(),
                    };
                    let how = Decide {
                        at: self.liveness(ctx),
                        rng: &mut rng,
                    };
                    let decision = launch.place(tx, how, &cluster, &req, n as usize, among)?;
                    let placed = decision.placed.len() as i64;
                    for arn in decision.placed {
                        let instance =
                            instances::load(tx, &arn)?.expect("placed on a stored instance");
                        tasks.push(launch.insert(
                            tx,
                            ctx,
                            &cluster,
                            &req,
                            Some(name),
                            Some(&instance),
                        )?);
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
                    let pending =
                        serde_json::to_string(&launch.placement_spec(&req)).expect("serialises");
                    for _ in placed..n {
                        let t = launch.insert(tx, ctx, &cluster, &req, Some(name), None)?;
                        tx.prepare_cached(
                            "INSERT INTO pending_placements (task_arn, cluster_arn, capacity_provider, created_at, request)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                        )?
                        .execute(params![t.task_arn, cluster.arn, name, ctx.now_millis(), pending])?;
                        tasks.push(t);
                    }
                }
            }
        }
        // The placer, current as of this transaction's last write.
        let kept = match kept {
            Some(c) => Some((
                cluster.arn.clone(),
                placements::version(tx, &cluster.arn)?,
                c,
            )),
            None => None,
        };
        let (wake_agent, wake_fleet) = wakes(tx, &tasks)?;
        Ok(Launched {
            tasks,
            failures,
            kept,
            wake_agent,
            wake_fleet,
        })
    }

    pub(super) fn start_task(
        &self,
        ctx: &Ctx,
        start: StartTaskRequest,
    ) -> ApiResult<StartTaskResponse> {
        let req = TaskRequest::from(&start);
        tags::check_user_tags(&req.tags)?;
        let named = &start.container_instances;
        if named.is_empty() || named.len() > 10 {
            return Err(ApiError::invalid_parameter(
                "containerInstances cannot be empty and can have at most 10 items.",
            ));
        }
        let out = self.store.write(|tx| {
            let cluster = clusters::resolve_active(tx, ctx, req.cluster.as_deref())?;
            let launch = Launch::check(tx, ctx, &req, LaunchType::Ec2)?;
            let mut tasks = Vec::new();
            let mut failures = Vec::new();
            for ident in named {
                let arn = instances::instance_arn(ctx, &cluster, ident);
                let Some(instance) =
                    instances::load(tx, &arn)?.filter(|i| i.cluster_arn == cluster.arn)
                else {
                    failures.push(super::missing(arn));
                    continue;
                };
                match self.place_on(tx, ctx, &cluster, &req, &launch, &instance)? {
                    Ok(t) => tasks.push(t),
                    Err(f) => failures.extend(f),
                }
            }
            Ok(StartTaskResponse {
                tasks: Some(tasks),
                failures: Some(failures),
            })
        })?;
        self.tasks_changed();
        Ok(out)
    }

    pub(super) fn stop_task(&self, ctx: &Ctx, req: StopTaskRequest) -> ApiResult<StopTaskResponse> {
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
            request_stop(tx, &task.arn, TaskStopCode::UserInitiated, &reason)?;
            if drop_pending(tx, &task.arn)? {
                // It never had an instance: nothing runs, it ends here.
                mark_stopped(tx, &task.arn, ctx.now_epoch())?;
            }
            let task = load(tx, &arn)?.expect("still there");
            Ok(StopTaskResponse {
                task: Some(task.render()),
            })
        })?;
        self.tasks_changed();
        Ok(out)
    }

    pub(super) fn describe_tasks(
        &self,
        ctx: &Ctx,
        req: DescribeTasksRequest,
    ) -> ApiResult<DescribeTasksResponse> {
        if req.tasks.is_empty() || req.tasks.len() > 100 {
            return Err(ApiError::invalid_parameter(
                "Tasks cannot be empty and can have at most 100 items.",
            ));
        }
        let with_tags = req.include.iter().flatten().any(|i| *i == TaskField::Tags);
        self.store.read(|conn| {
            let cluster = clusters::resolve_active(conn, ctx, req.cluster.as_deref())?;
            let (tasks, failures) = describe_each(&req.tasks, |ident| {
                let arn = task_arn(ctx, &cluster, ident);
                Ok(
                    match load(conn, &arn)?.filter(|t| t.cluster_arn == cluster.arn) {
                        Some(t) => {
                            let mut v = t.render();
                            v.tags = if with_tags {
                                Some(tags::load(conn, &t.arn)?)
                            } else {
                                None
                            };
                            Ok(v)
                        }
                        None => Err(arn),
                    },
                )
            })?;
            Ok(DescribeTasksResponse {
                tasks: Some(tasks),
                failures: Some(failures),
            })
        })
    }

    pub(super) fn list_tasks(
        &self,
        ctx: &Ctx,
        req: ListTasksRequest,
    ) -> ApiResult<ListTasksResponse> {
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
            let desired = req.desired_status.unwrap_or(DesiredStatus::Running);
            sql.push_str(" AND desired_status = ?");
            args.push(desired.as_str().to_string().into());
            let launch_type = req.launch_type.map(|l| l.as_str().to_string());
            for (col, v) in [
                ("family", &req.family),
                ("started_by", &req.started_by),
                ("launch_type", &launch_type),
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
            if let Some(service) = &req.service_name {
                // A service's tasks are its group (`service:<name>`).
                let name = service.rsplit('/').next().unwrap_or(service);
                sql.push_str(" AND task_group = ?");
                args.push(format!("service:{name}").into());
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
            Ok(ListTasksResponse {
                task_arns: Some(page.into_iter().map(|(_, a)| a).collect()),
                next_token: token,
            })
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
