//! Container instances: `RegisterContainerInstance`,
//! `DeregisterContainerInstance`, `DescribeContainerInstances`,
//! `ListContainerInstances`, `UpdateContainerInstancesState`, the attribute
//! operations (`PutAttributes`, `DeleteAttributes`, `ListAttributes`), the
//! local instances `berth instances add` makes, and the snapshot of a
//! cluster that placement (`src/placement`) decides on.
//!
//! An instance row keeps what was registered ([`InstanceDoc`]:
//! registeredResources, versionInfo). What remains is never stored: it is registered minus what
//! the tasks placed on the instance and not yet STOPPED reserve (the
//! `reserved` column of each task), so it cannot drift.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::shapes::{
    Attribute, ContainerDefinition, ContainerInstance, ContainerInstanceField,
    ContainerInstanceStatus, DeleteAttributesRequest, DeleteAttributesResponse,
    DeregisterContainerInstanceRequest, DeregisterContainerInstanceResponse,
    DescribeContainerInstancesRequest, DescribeContainerInstancesResponse, ListAttributesRequest,
    ListAttributesResponse, ListContainerInstancesRequest, ListContainerInstancesResponse,
    NetworkMode, PutAttributesRequest, PutAttributesResponse, RegisterContainerInstanceRequest,
    RegisterContainerInstanceResponse, Resource, TargetType, TaskDefinition, TaskStopCode,
    TransportProtocol, UpdateContainerInstancesStateRequest, UpdateContainerInstancesStateResponse,
    VersionInfo,
};
use super::{arn, clusters, describe_each, tags, Ecs};
use crate::catalog;
use crate::context::{millis_to_epoch, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::paging;
use crate::placement::{self, query};

/// The agent of instances the server itself runs.
pub const LOCAL_AGENT: &str = "local";
/// The agent of instances registered through the API.
pub const REMOTE_AGENT: &str = "remote";
/// The container agent version Berth reports.
pub const AGENT_VERSION: &str = "1.89.0";
/// When connectivity is judged: now, and how long a remote agent may go
/// unheard before it counts as disconnected (`--agent-timeout-seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    pub now_ms: i64,
    pub timeout_ms: i64,
}

/// The stop code and reason of tasks whose instance's agent stayed
/// disconnected past the grace period.
pub const DISCONNECTED_STOP_CODE: TaskStopCode = TaskStopCode::TaskFailedToStart;
pub const DISCONNECTED_REASON: &str = "Container instance agent disconnected";
/// Local instances take their addresses from a /16 of `10.128.0.0/10`.
const LOCAL_NET: u8 = 10;
/// ECS allows this many custom attributes on a resource.
const MAX_CUSTOM_ATTRIBUTES: usize = 10;

/// Capabilities a local instance offers, as the ECS agent advertises them:
/// what Berth's agent really does. `requiresAttributes` naming anything else
/// (a logging driver Berth does not ship to, for example) finds no instance.
const CAPABILITIES: &[&str] = &[
    "com.amazonaws.ecs.capability.docker-remote-api.1.17",
    "com.amazonaws.ecs.capability.docker-remote-api.1.18",
    "com.amazonaws.ecs.capability.docker-remote-api.1.19",
    "com.amazonaws.ecs.capability.docker-remote-api.1.20",
    "com.amazonaws.ecs.capability.docker-remote-api.1.21",
    "com.amazonaws.ecs.capability.docker-remote-api.1.22",
    "com.amazonaws.ecs.capability.docker-remote-api.1.23",
    "com.amazonaws.ecs.capability.docker-remote-api.1.24",
    "com.amazonaws.ecs.capability.docker-remote-api.1.25",
    "com.amazonaws.ecs.capability.docker-remote-api.1.26",
    "com.amazonaws.ecs.capability.docker-remote-api.1.27",
    "com.amazonaws.ecs.capability.docker-remote-api.1.28",
    "com.amazonaws.ecs.capability.docker-remote-api.1.29",
    "com.amazonaws.ecs.capability.docker-remote-api.1.30",
    "com.amazonaws.ecs.capability.docker-remote-api.1.31",
    "com.amazonaws.ecs.capability.docker-remote-api.1.32",
    "com.amazonaws.ecs.capability.logging-driver.awslogs",
    "com.amazonaws.ecs.capability.logging-driver.json-file",
    "com.amazonaws.ecs.capability.logging-driver.none",
    "com.amazonaws.ecs.capability.task-iam-role",
    "com.amazonaws.ecs.capability.task-iam-role-network-host",
    "ecs.capability.execution-role-awslogs",
    "com.amazonaws.ecs.capability.ecr-auth",
    "ecs.capability.execution-role-ecr-pull",
    "ecs.capability.secrets.ssm.environment-variables",
    "ecs.capability.secrets.asm.environment-variables",
    "ecs.capability.task-eni",
    "ecs.capability.task-cpu-mem-limit",
    "ecs.capability.container-health-check",
    "ecs.capability.container-ordering",
];

/// A container instance's status. The model's `ContainerInstanceStatus`
/// lacks INACTIVE, which ECS answers for a deregistered instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceStatus {
    Active,
    Draining,
    Inactive,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Active => "ACTIVE",
            InstanceStatus::Draining => "DRAINING",
            InstanceStatus::Inactive => "INACTIVE",
        }
    }

    fn parse(s: &str) -> InstanceStatus {
        match s {
            "ACTIVE" => InstanceStatus::Active,
            "DRAINING" => InstanceStatus::Draining,
            _ => InstanceStatus::Inactive,
        }
    }
}

/// What an instance row keeps beyond its columns: what it registered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceDoc {
    #[serde(default)]
    pub registered_resources: Vec<Resource>,
    #[serde(default)]
    pub version_info: VersionInfo,
    /// Bumped on every change ECS reports (`version`).
    #[serde(default)]
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// `spot` for a spot instance (metered at spot prices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Anything else a row of an earlier version kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl InstanceDoc {
    fn resource(&self, name: &str) -> Option<&Resource> {
        self.registered_resources
            .iter()
            .find(|r| r.name.as_deref() == Some(name))
    }

    /// An integer resource by name (0 when absent).
    pub fn resource_int(&self, name: &str) -> i64 {
        self.resource(name)
            .and_then(|r| r.integer_value.or(r.long_value))
            .unwrap_or(0)
    }

    fn resource_ports(&self, name: &str) -> BTreeSet<u16> {
        ports_of(self.resource(name))
    }

    pub fn is_spot(&self) -> bool {
        self.market.as_deref() == Some("spot")
    }
}

fn ports_of(r: Option<&Resource>) -> BTreeSet<u16> {
    r.and_then(|r| r.string_set_value.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A container instance as stored.
#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub arn: String,
    pub id: String,
    pub cluster_arn: String,
    pub ec2_instance_id: String,
    pub status: InstanceStatus,
    pub registered_at: i64,
    pub agent: String,
    pub last_seen: Option<i64>,
    /// The instance's own address, where its tasks' ports are published.
    pub address: Option<String>,
    pub doc: InstanceDoc,
}

impl InstanceRow {
    /// Registered: ACTIVE or DRAINING.
    pub fn is_registered(&self) -> bool {
        self.status != InstanceStatus::Inactive
    }
}

const SELECT: &str = "SELECT arn, id, cluster_arn, ec2_instance_id, status, registered_at, agent,
    last_seen, address, doc FROM container_instances";

fn from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<InstanceRow> {
    let doc: String = r.get(9)?;
    Ok(InstanceRow {
        arn: r.get(0)?,
        id: r.get(1)?,
        cluster_arn: r.get(2)?,
        ec2_instance_id: r.get(3)?,
        status: InstanceStatus::parse(&r.get::<_, String>(4)?),
        registered_at: r.get(5)?,
        agent: r.get(6)?,
        last_seen: r.get(7)?,
        address: r.get(8)?,
        doc: serde_json::from_str(&doc).unwrap_or_default(),
    })
}

pub fn load(conn: &Connection, arn: &str) -> ApiResult<Option<InstanceRow>> {
    Ok(conn
        .prepare_cached(&format!("{SELECT} WHERE arn = ?1"))?
        .query_row([arn], from_sql)
        .optional()?)
}

/// The cluster's instances that are not INACTIVE, oldest first.
pub fn registered(conn: &Connection, cluster_arn: &str) -> ApiResult<Vec<InstanceRow>> {
    let rows = conn
        .prepare_cached(&format!(
            "{SELECT} WHERE cluster_arn = ?1 AND status != 'INACTIVE' ORDER BY registered_at, arn"
        ))?
        .query_map([cluster_arn], from_sql)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// How many instances a cluster has registered (ACTIVE or DRAINING).
pub fn registered_count(conn: &Connection, cluster_arn: &str) -> ApiResult<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM container_instances WHERE cluster_arn = ?1 AND status != 'INACTIVE'",
        )?
        .query_row([cluster_arn], |r| r.get(0))?)
}

/// The ARN an instance identifier (id or ARN) stands for in a cluster.
pub fn instance_arn(ctx: &Ctx, cluster: &clusters::ClusterRow, ident: &str) -> String {
    arn::resolve_in_cluster(ctx, "container-instance", &cluster.name, ident)
}

/// What a task reserves on the instance it is placed on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub cpu: i64,
    pub memory: i64,
    #[serde(default)]
    pub tcp: Vec<u16>,
    #[serde(default)]
    pub udp: Vec<u16>,
}

/// What a task of `taskdef` (with its effective containers `containers`)
/// reserves, as ECS counts it: the task-level cpu and memory when set, else
/// the sum over containers (a container's `memoryReservation` when it has
/// one, else its `memory`); and the static host ports of `bridge` and `host`
/// mode (in `host` mode a container port is its host port).
pub fn reservation(
    taskdef: &TaskDefinition,
    containers: &[ContainerDefinition],
    task_cpu: Option<&str>,
    task_memory: Option<&str>,
) -> Reservation {
    let mode = taskdef.network_mode.unwrap_or(NetworkMode::Bridge);
    let parsed = |v: Option<&str>| v.and_then(|v| v.trim().parse::<i64>().ok());
    let cpu = parsed(task_cpu).unwrap_or_else(|| containers.iter().filter_map(|c| c.cpu).sum());
    let memory = parsed(task_memory).unwrap_or_else(|| {
        containers
            .iter()
            .filter_map(|c| c.memory_reservation.or(c.memory))
            .sum()
    });
    let mut r = Reservation {
        cpu,
        memory,
        ..Default::default()
    };
    if mode == NetworkMode::Awsvpc {
        return r;
    }
    for pm in containers
        .iter()
        .flat_map(|c| c.port_mappings.iter().flatten())
    {
        let host = match mode {
            NetworkMode::Host => pm.host_port.or(pm.container_port),
            _ => pm.host_port,
        };
        let Some(port) = host.filter(|p| *p > 0).and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        match pm.protocol {
            Some(TransportProtocol::Udp) => r.udp.push(port),
            _ => r.tcp.push(port),
        }
    }
    r
}

/// What the live tasks on an instance use.
#[derive(Debug, Default)]
struct Usage {
    cpu: i64,
    memory: i64,
    tcp: BTreeSet<u16>,
    udp: BTreeSet<u16>,
    running: i64,
    pending: i64,
    groups: Vec<String>,
}

fn usage(conn: &Connection, instance_arn: &str) -> ApiResult<Usage> {
    let mut u = Usage::default();
    let mut stmt = conn.prepare_cached(
        "SELECT last_status, reserved, task_group FROM tasks
         WHERE container_instance_arn = ?1 AND last_status != 'STOPPED'",
    )?;
    let rows = stmt.query_map([instance_arn], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    for row in rows {
        let (status, reserved, group) = row?;
        if status == "RUNNING" {
            u.running += 1;
        } else {
            u.pending += 1;
        }
        let r: Reservation = reserved
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        u.cpu += r.cpu;
        u.memory += r.memory;
        u.tcp.extend(r.tcp);
        u.udp.extend(r.udp);
        u.groups.extend(group);
    }
    Ok(u)
}

fn resources(cpu: i64, memory: i64, tcp: &BTreeSet<u16>, udp: &BTreeSet<u16>) -> Vec<Resource> {
    let int = |name: &str, v: i64| Resource {
        name: Some(name.into()),
        r#type: Some("INTEGER".into()),
        double_value: Some(0.0),
        long_value: Some(0),
        integer_value: Some(v),
        string_set_value: None,
    };
    let set = |name: &str, s: &BTreeSet<u16>| Resource {
        name: Some(name.into()),
        r#type: Some("STRINGSET".into()),
        double_value: Some(0.0),
        long_value: Some(0),
        integer_value: Some(0),
        string_set_value: Some(s.iter().map(|p| p.to_string()).collect()),
    };
    vec![
        int("CPU", cpu),
        int("MEMORY", memory),
        set("PORTS", tcp),
        set("PORTS_UDP", udp),
    ]
}

pub fn agent_connected(row: &InstanceRow, at: Liveness) -> bool {
    row.is_registered()
        && (row.agent == LOCAL_AGENT
            || row
                .last_seen
                .is_some_and(|t| at.now_ms - t <= at.timeout_ms))
}

/// Stop the tasks of remote instances whose agent has been disconnected
/// (not heard from for the agent timeout) for longer than `grace_ms`: no
/// agent reports their end, so they end here, with a reason that says so.
/// Returns the tasks stopped.
pub fn stop_disconnected(conn: &Connection, at: Liveness, grace_ms: i64) -> ApiResult<Vec<String>> {
    let now_ms = at.now_ms;
    let cutoff = now_ms - at.timeout_ms - grace_ms;
    let rows: Vec<(String, String, Option<i64>)> = conn
        .prepare_cached(
            "SELECT t.arn, ci.ec2_instance_id, ci.last_seen FROM tasks t
               JOIN container_instances ci ON ci.arn = t.container_instance_arn
             WHERE ci.agent = ?1 AND ci.status != 'INACTIVE' AND t.last_status != 'STOPPED'
               AND coalesce(ci.last_seen, ci.registered_at) < ?2
             ORDER BY t.created_at",
        )?
        .query_map(params![REMOTE_AGENT, cutoff], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut stopped = Vec::new();
    for (arn, ec2_id, last_seen) in rows {
        let silent_s = last_seen.map_or(0, |t| (now_ms - t) / 1000);
        let reason = format!(
            "{DISCONNECTED_REASON}: the agent of {ec2_id} has not been heard from for {silent_s} s"
        );
        super::tasks::request_stop(conn, &arn, DISCONNECTED_STOP_CODE, &reason)?;
        super::tasks::mark_stopped(conn, &arn, millis_to_epoch(now_ms))?;
        stopped.push(arn);
    }
    Ok(stopped)
}

/// Record that a remote instance's agent was heard from.
pub fn heard_from(conn: &Connection, arn: &str, at: Liveness) -> ApiResult<()> {
    let now_ms = at.now_ms;
    let before: Option<(Option<i64>, String)> = conn
        .prepare_cached("SELECT last_seen, cluster_arn FROM container_instances WHERE arn = ?1")?
        .query_row([arn], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    conn.prepare_cached("UPDATE container_instances SET last_seen = ?2 WHERE arn = ?1")?
        .execute(params![arn, now_ms])?;
    // An agent counted disconnected is back: placement sees it again.
    if let Some((seen, cluster)) = before {
        if seen.is_none_or(|t| now_ms - t > at.timeout_ms) {
            super::placements::bump(conn, &cluster)?;
        }
    }
    Ok(())
}

/// An instance's attributes, name → value.
pub fn attributes_of(
    conn: &Connection,
    row: &InstanceRow,
) -> ApiResult<BTreeMap<String, Option<String>>> {
    let attrs = conn
        .prepare_cached(
            "SELECT name, value FROM attributes WHERE cluster_arn = ?1 AND target_id = ?2 ORDER BY name",
        )?
        .query_map([&row.cluster_arn, &row.arn], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(attrs)
}

/// The ECS `ContainerInstance` shape.
pub fn render(
    conn: &Connection,
    row: &InstanceRow,
    at: Liveness,
    with_tags: bool,
) -> ApiResult<ContainerInstance> {
    let u = usage(conn, &row.arn)?;
    let reg_tcp = row.doc.resource_ports("PORTS");
    let reg_udp = row.doc.resource_ports("PORTS_UDP");
    let remaining = resources(
        row.doc.resource_int("CPU") - u.cpu,
        row.doc.resource_int("MEMORY") - u.memory,
        &reg_tcp.union(&u.tcp).copied().collect(),
        &reg_udp.union(&u.udp).copied().collect(),
    );
    let attributes = attributes_of(conn, row)?
        .into_iter()
        .map(|(name, value)| Attribute {
            name,
            value,
            ..Attribute::default()
        })
        .collect();
    Ok(ContainerInstance {
        container_instance_arn: Some(row.arn.clone()),
        ec2_instance_id: Some(row.ec2_instance_id.clone()),
        version: Some(row.doc.version.max(1)),
        version_info: Some(row.doc.version_info.clone()),
        remaining_resources: Some(remaining),
        registered_resources: Some(row.doc.registered_resources.clone()),
        status: Some(row.status.as_str().into()),
        status_reason: row.doc.status_reason.clone(),
        agent_connected: Some(agent_connected(row, at)),
        running_tasks_count: Some(u.running),
        pending_tasks_count: Some(u.pending),
        attributes: Some(attributes),
        registered_at: Some(millis_to_epoch(row.registered_at)),
        attachments: Some(Vec::new()),
        capacity_provider_name: row.doc.capacity_provider_name.clone(),
        tags: if with_tags {
            Some(tags::load(conn, &row.arn)?)
        } else {
            None
        },
        ..ContainerInstance::default()
    })
}

/// The placement view of an instance.
pub fn placement_view(
    conn: &Connection,
    row: &InstanceRow,
    at: Liveness,
) -> ApiResult<placement::Instance> {
    let u = usage(conn, &row.arn)?;
    Ok(placement::Instance {
        arn: row.arn.clone(),
        ec2_instance_id: row.ec2_instance_id.clone(),
        attributes: attributes_of(conn, row)?,
        remaining_cpu: row.doc.resource_int("CPU") - u.cpu,
        remaining_memory: row.doc.resource_int("MEMORY") - u.memory,
        ports_tcp: row
            .doc
            .resource_ports("PORTS")
            .union(&u.tcp)
            .copied()
            .collect(),
        ports_udp: row
            .doc
            .resource_ports("PORTS_UDP")
            .union(&u.udp)
            .copied()
            .collect(),
        active: row.status == InstanceStatus::Active,
        agent_connected: agent_connected(row, at),
        agent_version: row
            .doc
            .version_info
            .agent_version
            .clone()
            .unwrap_or_else(|| AGENT_VERSION.to_string()),
        registered_at: millis_to_epoch(row.registered_at),
        running_tasks_count: u.running,
        pending_tasks_count: u.pending,
        task_groups: u.groups,
    })
}

/// The placement view of every registered instance of a cluster, with rows.
pub fn snapshot(
    conn: &Connection,
    cluster_arn: &str,
    at: Liveness,
) -> ApiResult<Vec<(InstanceRow, placement::Instance)>> {
    registered(conn, cluster_arn)?
        .into_iter()
        .map(|row| {
            let view = placement_view(conn, &row, at)?;
            Ok((row, view))
        })
        .collect()
}

fn set_attribute(
    conn: &Connection,
    cluster_arn: &str,
    target: &str,
    name: &str,
    value: Option<&str>,
) -> ApiResult<()> {
    conn.prepare_cached(
        "INSERT INTO attributes (cluster_arn, target_type, target_id, name, value)
         VALUES (?1, 'container-instance', ?2, ?3, ?4)
         ON CONFLICT (cluster_arn, target_id, name) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![cluster_arn, target, name, value])?;
    Ok(())
}

/// The attributes ECS sets on every instance: instance type, architecture,
/// OS, availability zone, AMI, and the agent's capabilities.
fn builtin_attributes(
    instance_type: &str,
    arch: &str,
    az: &str,
    ami: &str,
) -> Vec<(String, Option<String>)> {
    let mut v: Vec<(String, Option<String>)> = vec![
        ("ecs.instance-type".into(), Some(instance_type.into())),
        ("ecs.cpu-architecture".into(), Some(arch.into())),
        ("ecs.os-type".into(), Some("linux".into())),
        ("ecs.os-family".into(), Some("LINUX".into())),
        ("ecs.availability-zone".into(), Some(az.into())),
        ("ecs.ami-id".into(), Some(ami.into())),
    ];
    v.extend(CAPABILITIES.iter().map(|c| (c.to_string(), None)));
    v
}

fn new_hex(n: usize) -> String {
    let mut s = uuid::Uuid::new_v4().simple().to_string();
    s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    s.truncate(n);
    s
}

/// Everything needed to register an instance.
pub struct Registration {
    pub ec2_instance_id: String,
    pub instance_type: String,
    pub arch: String,
    pub availability_zone: String,
    pub ami_id: String,
    pub cpu: i64,
    pub memory: i64,
    pub ports_tcp: BTreeSet<u16>,
    pub ports_udp: BTreeSet<u16>,
    pub agent: String,
    pub address: Option<String>,
    pub version_info: VersionInfo,
    pub custom_attributes: Vec<(String, Option<String>)>,
}

/// Store a new instance in `cluster`, ACTIVE.
pub fn insert(
    conn: &Connection,
    ctx: &Ctx,
    cluster: &clusters::ClusterRow,
    reg: Registration,
) -> ApiResult<InstanceRow> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let arn = instance_arn(ctx, cluster, &id);
    let doc = InstanceDoc {
        registered_resources: resources(reg.cpu, reg.memory, &reg.ports_tcp, &reg.ports_udp),
        version_info: reg.version_info,
        version: 1,
        instance_type: Some(reg.instance_type.clone()),
        ..InstanceDoc::default()
    };
    let now = ctx.now_millis();
    conn.prepare_cached(
        "INSERT INTO container_instances (arn, id, account, region, cluster_arn, ec2_instance_id,
            status, registered_at, agent, last_seen, address, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'ACTIVE', ?7, ?8, ?7, ?9, ?10)",
    )?
    .execute(params![
        arn,
        id,
        ctx.account,
        ctx.region,
        cluster.arn,
        reg.ec2_instance_id,
        now,
        reg.agent,
        reg.address,
        serde_json::to_string(&doc)?
    ])?;
    for (name, value) in builtin_attributes(
        &reg.instance_type,
        &reg.arch,
        &reg.availability_zone,
        &reg.ami_id,
    )
    .into_iter()
    .chain(reg.custom_attributes)
    {
        set_attribute(conn, &cluster.arn, &arn, &name, value.as_deref())?;
    }
    Ok(load(conn, &arn)?.expect("just inserted"))
}

/// The next free address for a local instance: `10.<n>.x.y`, where `n`
/// (128 to 191) comes from this installation's owner id, so two Berth
/// servers on one machine are unlikely to hand out the same addresses.
fn next_local_address(conn: &Connection) -> ApiResult<String> {
    let owner: String = crate::store::owner_in(conn)?.unwrap_or_default();
    let second = 128
        + owner
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
            % 64;
    let used: BTreeSet<String> = conn
        .prepare_cached(
            "SELECT address FROM container_instances WHERE agent = ?1 AND status != 'INACTIVE' AND address IS NOT NULL",
        )?
        .query_map([LOCAL_AGENT], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for i in 0u32..(254 * 256) {
        let a = format!("{}.{second}.{}.{}", LOCAL_NET, i / 254, i % 254 + 1);
        if !used.contains(&a) {
            return Ok(a);
        }
    }
    Err(ApiError::client(
        "No addresses are left for local container instances.",
    ))
}

/// Register a local instance of `instance_type` (from the catalog) in
/// `cluster`, in `az` or the cluster's next availability zone in turn.
pub fn add_local(
    conn: &Connection,
    ctx: &Ctx,
    cluster: &clusters::ClusterRow,
    instance_type: &str,
    az: Option<&str>,
) -> ApiResult<InstanceRow> {
    let az = match az {
        Some(a) => a.to_string(),
        None => {
            let n = registered_count(conn, &cluster.arn)?;
            format!("{}{}", ctx.region, ["a", "b", "c"][(n % 3) as usize])
        }
    };
    add_local_instance(
        conn,
        ctx,
        cluster,
        LocalInstance {
            ec2_instance_id: format!("i-{}", new_hex(17)),
            instance_type: instance_type.to_string(),
            availability_zone: az,
            market: None,
            capacity_provider: None,
            custom_attributes: vec![],
        },
    )
}

/// A local instance to register: an EC2 instance Berth runs itself.
pub struct LocalInstance {
    pub ec2_instance_id: String,
    pub instance_type: String,
    pub availability_zone: String,
    /// `spot` for a spot instance (metered at spot prices).
    pub market: Option<String>,
    /// The capacity provider of the instance's Auto Scaling group.
    pub capacity_provider: Option<String>,
    pub custom_attributes: Vec<(String, Option<String>)>,
}

/// A new EC2 instance id.
pub fn new_ec2_instance_id() -> String {
    format!("i-{}", new_hex(17))
}

/// Register a local instance of a catalog type with `cluster`: the server's
/// own agent runs its tasks, on an address of its own.
pub fn add_local_instance(
    conn: &Connection,
    ctx: &Ctx,
    cluster: &clusters::ClusterRow,
    spec: LocalInstance,
) -> ApiResult<InstanceRow> {
    let t = catalog::find(&spec.instance_type).ok_or_else(|| {
        ApiError::invalid_parameter(format!(
            "The instance type '{}' is not in Berth's catalog.",
            spec.instance_type
        ))
    })?;
    let (cpu, memory) = catalog::ecs_registered_resources(t);
    let address = next_local_address(conn)?;
    let row = insert(
        conn,
        ctx,
        cluster,
        Registration {
            ec2_instance_id: spec.ec2_instance_id,
            instance_type: t.name.clone(),
            arch: t.arch.as_str().to_string(),
            availability_zone: spec.availability_zone,
            ami_id: "ami-berth-local".into(),
            cpu,
            memory,
            ports_tcp: catalog::default_ports_reserved().into_iter().collect(),
            ports_udp: BTreeSet::new(),
            agent: LOCAL_AGENT.into(),
            address: Some(address),
            version_info: version_info("berth", "DockerVersion: 20.10"),
            custom_attributes: spec.custom_attributes,
        },
    )?;
    if spec.market.is_some() || spec.capacity_provider.is_some() {
        let mut row = row;
        row.doc.market = spec.market;
        row.doc.capacity_provider_name = spec.capacity_provider;
        save_doc(conn, &row)?;
        return Ok(row);
    }
    Ok(row)
}

fn save_doc(conn: &Connection, row: &InstanceRow) -> ApiResult<()> {
    conn.prepare_cached("UPDATE container_instances SET doc = ?2 WHERE arn = ?1")?
        .execute(params![row.arn, serde_json::to_string(&row.doc)?])?;
    Ok(())
}

/// What Berth's agent reports of itself.
fn version_info(hash: &str, docker: &str) -> VersionInfo {
    VersionInfo {
        agent_version: Some(AGENT_VERSION.into()),
        agent_hash: Some(hash.into()),
        docker_version: Some(docker.into()),
    }
}

/// Mark an instance INACTIVE and stop what still runs on it, with `reason`.
pub fn deregister(
    conn: &Connection,
    row: &InstanceRow,
    reason: &str,
    now_ms: i64,
) -> ApiResult<()> {
    deregister_with(conn, row, TaskStopCode::TaskFailedToStart, reason, now_ms)
}

/// Mark an instance INACTIVE and stop what still runs on it with `code`
/// and `reason`.
pub fn deregister_with(
    conn: &Connection,
    row: &InstanceRow,
    code: TaskStopCode,
    reason: &str,
    now_ms: i64,
) -> ApiResult<()> {
    conn.prepare_cached(
        "UPDATE container_instances SET status = 'INACTIVE',
           deregistered_at = coalesce(deregistered_at, ?2),
           doc = json_set(doc, '$.version', coalesce(json_extract(doc, '$.version'), 0) + 1)
         WHERE arn = ?1",
    )?
    .execute(params![&row.arn, now_ms])?;
    let live: Vec<String> = conn
        .prepare_cached(
            "SELECT arn FROM tasks WHERE container_instance_arn = ?1 AND desired_status != 'STOPPED'",
        )?
        .query_map([&row.arn], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for t in live {
        super::tasks::request_stop(conn, &t, code, reason)?;
        if row.agent != LOCAL_AGENT {
            // No agent of ours will stop it: it ends here.
            super::tasks::mark_stopped(conn, &t, millis_to_epoch(now_ms))?;
        }
    }
    Ok(())
}

/// Addresses of INACTIVE local instances with no task left that is not
/// STOPPED, and that no registered instance uses.
pub fn releasable_addresses(conn: &Connection) -> ApiResult<Vec<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT DISTINCT i.address FROM container_instances i
             WHERE i.agent = ?1 AND i.status = 'INACTIVE' AND i.address IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.container_instance_arn = i.arn
                                 AND t.last_status != 'STOPPED')
               AND NOT EXISTS (SELECT 1 FROM container_instances o WHERE o.address = i.address
                                 AND o.status != 'INACTIVE')",
        )?
        .query_map([LOCAL_AGENT], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// An address taken off the machine: INACTIVE instances no longer hold it.
pub fn forget_address(conn: &Connection, address: &str) -> ApiResult<()> {
    conn.prepare_cached(
        "UPDATE container_instances SET address = NULL WHERE address = ?1 AND status = 'INACTIVE'",
    )?
    .execute([address])?;
    Ok(())
}

/// Tasks on an instance that are not yet STOPPED.
pub fn live_task_count(conn: &Connection, arn: &str) -> ApiResult<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM tasks WHERE container_instance_arn = ?1 AND last_status != 'STOPPED'",
        )?
        .query_row([arn], |r| r.get(0))?)
}

fn check_attribute(a: &Attribute) -> ApiResult<()> {
    let name_ok = !a.name.is_empty()
        && a.name.len() <= 128
        && a.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/' | b'\\' | b'.'));
    if !name_ok {
        return Err(ApiError::invalid_parameter(format!(
            "Attribute name '{}' is invalid: up to 128 letters, numbers, hyphens, underscores, forward slashes, back slashes, or periods.",
            a.name
        )));
    }
    if let Some(v) = &a.value {
        let ok = !v.is_empty()
            && v.len() <= 128
            && v.trim() == v
            && v.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'-' | b'_' | b'.' | b'@' | b'/' | b'\\' | b':' | b' ')
            });
        if !ok {
            return Err(ApiError::invalid_parameter(format!(
                "Attribute value '{v}' is invalid: up to 128 letters, numbers, hyphens, underscores, periods, at signs, forward slashes, back slashes, colons, or spaces, without leading or trailing whitespace."
            )));
        }
    }
    Ok(())
}

/// An attribute in the shape the attribute operations answer with.
fn attribute_of(name: &str, value: Option<&str>, target: &str) -> Attribute {
    Attribute {
        name: name.into(),
        value: value.map(str::to_string),
        target_type: Some(TargetType::ContainerInstance),
        target_id: Some(target.into()),
    }
}

fn target_not_found(target: &str) -> ApiError {
    ApiError::new(
        "TargetNotFoundException",
        format!("Could not find the target {target} in the cluster."),
    )
}

impl Ecs {
    pub(super) fn register_container_instance(
        &self,
        ctx: &Ctx,
        req: RegisterContainerInstanceRequest,
    ) -> ApiResult<RegisterContainerInstanceResponse> {
        let user_tags = tags::from_shapes(req.tags.as_deref().unwrap_or_default());
        tags::check_user_tags(&user_tags)?;
        let attributes = req.attributes.clone().unwrap_or_default();
        for a in &attributes {
            check_attribute(a)?;
        }
        let identity: Value = match &req.instance_identity_document {
            Some(d) => serde_json::from_str(d).map_err(|_| {
                ApiError::invalid_parameter("The instance identity document is not valid JSON.")
            })?,
            None => Value::Object(Map::new()),
        };
        let text = |k: &str| identity.get(k).and_then(Value::as_str).map(str::to_string);
        let instance_type = text("instanceType").unwrap_or_else(|| "t3.medium".into());
        let defaults = catalog::find(&instance_type).map(catalog::ecs_registered_resources);
        let total = req.total_resources.clone().unwrap_or_default();
        let total_resource = |name: &str| total.iter().find(|r| r.name.as_deref() == Some(name));
        let total_int =
            |name: &str| total_resource(name).and_then(|r| r.integer_value.or(r.long_value));
        let total_ports = |name: &str| -> Option<BTreeSet<u16>> {
            let r = total_resource(name)?;
            r.string_set_value.as_ref()?;
            Some(ports_of(Some(r)))
        };
        let cpu = total_int("CPU").or(defaults.map(|d| d.0)).unwrap_or(2048);
        let memory = total_int("MEMORY")
            .or(defaults.map(|d| d.1))
            .unwrap_or(3904);
        if cpu <= 0 || memory <= 0 {
            return Err(ApiError::invalid_parameter(
                "totalResources CPU and MEMORY must be greater than zero.",
            ));
        }
        let out = self.store.write(|tx| {
            let cluster = clusters::resolve_active(tx, ctx, req.cluster.as_deref())?;
            if let Some(arn) = &req.container_instance_arn {
                // Re-registration by an agent that knows its ARN: it is
                // heard from again, with what it reports now.
                let row = load(tx, arn)?
                    .filter(|r| r.cluster_arn == cluster.arn && r.is_registered())
                    .ok_or_else(|| {
                        ApiError::invalid_parameter(format!(
                            "The container instance {arn} is not registered in the cluster."
                        ))
                    })?;
                tx.prepare_cached("UPDATE container_instances SET last_seen = ?2 WHERE arn = ?1")?
                    .execute(params![row.arn, ctx.now_millis()])?;
                for a in &attributes {
                    set_attribute(tx, &cluster.arn, &row.arn, &a.name, a.value.as_deref())?;
                }
                let row = load(tx, arn)?.expect("exists");
                return render(tx, &row, self.liveness(ctx), true);
            }
            let arch = text("architecture")
                .map(|a| if a == "aarch64" { "arm64".into() } else { a })
                .or(catalog::find(&instance_type).map(|t| t.arch.as_str().to_string()))
                .unwrap_or_else(|| "x86_64".into());
            let row = insert(
                tx,
                ctx,
                &cluster,
                Registration {
                    ec2_instance_id: text("instanceId")
                        .unwrap_or_else(|| format!("i-{}", new_hex(17))),
                    instance_type: instance_type.clone(),
                    arch,
                    availability_zone: text("availabilityZone")
                        .unwrap_or_else(|| format!("{}a", ctx.region)),
                    ami_id: text("imageId").unwrap_or_else(|| "ami-berth-local".into()),
                    cpu,
                    memory,
                    ports_tcp: total_ports("PORTS")
                        .unwrap_or_else(|| catalog::default_ports_reserved().into_iter().collect()),
                    ports_udp: total_ports("PORTS_UDP").unwrap_or_default(),
                    agent: REMOTE_AGENT.into(),
                    address: text("privateIp"),
                    version_info: req
                        .version_info
                        .clone()
                        .unwrap_or_else(|| version_info("", "")),
                    custom_attributes: attributes
                        .iter()
                        .map(|a| (a.name.clone(), a.value.clone()))
                        .collect(),
                },
            )?;
            tags::put(tx, &row.arn, &user_tags)?;
            render(tx, &row, self.liveness(ctx), true)
        })?;
        Ok(RegisterContainerInstanceResponse {
            container_instance: Some(out),
        })
    }

    pub(super) fn deregister_container_instance(
        &self,
        ctx: &Ctx,
        req: DeregisterContainerInstanceRequest,
    ) -> ApiResult<DeregisterContainerInstanceResponse> {
        let out = self.store.write(|tx| {
            let cluster = clusters::resolve_active(tx, ctx, req.cluster.as_deref())?;
            let arn = instance_arn(ctx, &cluster, &req.container_instance);
            let row = load(tx, &arn)?
                .filter(|r| r.cluster_arn == cluster.arn)
                .ok_or_else(|| {
                    ApiError::invalid_parameter(format!(
                        "The referenced container instance {} was not found.",
                        req.container_instance
                    ))
                })?;
            if row.is_registered() {
                if !req.force.unwrap_or(false) && live_task_count(tx, &row.arn)? > 0 {
                    return Err(ApiError::invalid_parameter(
                        "The container instance has tasks that are still running or pending. Stop them first, or deregister with force to stop them.",
                    ));
                }
                deregister(tx, &row, "Container instance deregistered", ctx.now_millis())?;
            }
            let row = load(tx, &arn)?.expect("exists");
            render(tx, &row, self.liveness(ctx), false)
        })?;
        self.tasks_changed();
        Ok(DeregisterContainerInstanceResponse {
            container_instance: Some(out),
        })
    }

    pub(super) fn describe_container_instances(
        &self,
        ctx: &Ctx,
        req: DescribeContainerInstancesRequest,
    ) -> ApiResult<DescribeContainerInstancesResponse> {
        if req.container_instances.is_empty() || req.container_instances.len() > 100 {
            return Err(ApiError::invalid_parameter(
                "containerInstances cannot be empty and can have at most 100 items.",
            ));
        }
        let with_tags = req
            .include
            .iter()
            .flatten()
            .any(|i| *i == ContainerInstanceField::Tags);
        self.store.read(|conn| {
            let cluster = clusters::resolve_active(conn, ctx, req.cluster.as_deref())?;
            let (found, failures) = describe_each(&req.container_instances, |ident| {
                let arn = instance_arn(ctx, &cluster, ident);
                Ok(
                    match load(conn, &arn)?.filter(|r| r.cluster_arn == cluster.arn) {
                        Some(row) => Ok(render(conn, &row, self.liveness(ctx), with_tags)?),
                        None => Err(arn),
                    },
                )
            })?;
            Ok(DescribeContainerInstancesResponse {
                container_instances: Some(found),
                failures: Some(failures),
            })
        })
    }

    pub(super) fn list_container_instances(
        &self,
        ctx: &Ctx,
        req: ListContainerInstancesRequest,
    ) -> ApiResult<ListContainerInstancesResponse> {
        let size = paging::page_size(req.max_results, paging::MAX_RESULTS)?;
        let filter =
            match req.filter.as_deref() {
                Some(f) => Some(query::parse(f).map_err(|e| {
                    ApiError::invalid_parameter(format!("Invalid filter '{f}': {e}."))
                })?),
                None => None,
            };
        let after = match &req.next_token {
            Some(t) => Some(paging::decode_as::<(i64, String)>(t)?),
            None => None,
        };
        self.store.read(|conn| {
            let cluster = clusters::resolve_active(conn, ctx, req.cluster.as_deref())?;
            let mut sql = format!("{SELECT} WHERE cluster_arn = ?");
            let mut args: Vec<SqlValue> = vec![cluster.arn.clone().into()];
            match req.status {
                Some(s) => {
                    sql.push_str(" AND status = ?");
                    args.push(s.as_str().to_string().into());
                }
                None => sql.push_str(" AND status != 'INACTIVE'"),
            }
            if let Some((ts, arn)) = &after {
                sql.push_str(" AND (registered_at, arn) > (?, ?)");
                args.push((*ts).into());
                args.push(arn.clone().into());
            }
            sql.push_str(" ORDER BY registered_at, arn");
            let rows: Vec<InstanceRow> = conn
                .prepare_cached(&sql)?
                .query_map(params_from_iter(args.iter()), from_sql)?
                .collect::<Result<_, _>>()?;
            let mut matching = Vec::new();
            for row in rows {
                if let Some(f) = &filter {
                    if !f.eval(&placement_view(conn, &row, self.liveness(ctx))?) {
                        continue;
                    }
                }
                matching.push(row);
                if matching.len() > size {
                    break;
                }
            }
            let (page, next_token) = paging::page(matching, size, |r| {
                serde_json::to_value((r.registered_at, &r.arn)).expect("a key serialises")
            });
            Ok(ListContainerInstancesResponse {
                container_instance_arns: Some(page.into_iter().map(|r| r.arn).collect()),
                next_token,
            })
        })
    }

    pub(super) fn update_container_instances_state(
        &self,
        ctx: &Ctx,
        req: UpdateContainerInstancesStateRequest,
    ) -> ApiResult<UpdateContainerInstancesStateResponse> {
        let status = match req.status {
            ContainerInstanceStatus::Active => InstanceStatus::Active,
            ContainerInstanceStatus::Draining => InstanceStatus::Draining,
            other => {
                return Err(ApiError::invalid_parameter(format!(
                    "Container instance status can only be updated to ACTIVE or DRAINING, not {}.",
                    other.as_str()
                )))
            }
        };
        if req.container_instances.is_empty() || req.container_instances.len() > 10 {
            return Err(ApiError::invalid_parameter(
                "containerInstances cannot be empty and can have at most 10 items.",
            ));
        }
        self.store.write(|tx| {
            let cluster = clusters::resolve_active(tx, ctx, req.cluster.as_deref())?;
            let (found, failures) = describe_each(&req.container_instances, |ident| {
                let arn = instance_arn(ctx, &cluster, ident);
                let Some(row) = load(tx, &arn)?
                    .filter(|r| r.cluster_arn == cluster.arn && r.is_registered())
                else {
                    return Ok(Err(arn));
                };
                if row.status != status {
                    tx.prepare_cached(
                        "UPDATE container_instances SET status = ?2,
                           doc = json_set(doc, '$.version', coalesce(json_extract(doc, '$.version'), 0) + 1)
                         WHERE arn = ?1",
                    )?
                    .execute(params![row.arn, status.as_str()])?;
                }
                let row = load(tx, &arn)?.expect("exists");
                Ok(Ok(render(tx, &row, self.liveness(ctx), false)?))
            })?;
            Ok(UpdateContainerInstancesStateResponse {
                container_instances: Some(found),
                failures: Some(failures),
            })
        })
    }

    /// The instance an attribute targets, in `cluster`.
    fn attribute_target(
        conn: &Connection,
        ctx: &Ctx,
        cluster: &clusters::ClusterRow,
        a: &Attribute,
    ) -> ApiResult<InstanceRow> {
        let target = a.target_id.as_deref().ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "Attribute '{}' needs a targetId: the container instance it applies to.",
                a.name
            ))
        })?;
        let arn = instance_arn(ctx, cluster, target);
        load(conn, &arn)?
            .filter(|r| r.cluster_arn == cluster.arn && r.is_registered())
            .ok_or_else(|| target_not_found(target))
    }

    pub(super) fn put_attributes(
        &self,
        ctx: &Ctx,
        req: PutAttributesRequest,
    ) -> ApiResult<PutAttributesResponse> {
        if req.attributes.is_empty() || req.attributes.len() > 10 {
            return Err(ApiError::invalid_parameter(
                "attributes cannot be empty and can have at most 10 items.",
            ));
        }
        for a in &req.attributes {
            check_attribute(a)?;
        }
        self.store.write(|tx| {
            let cluster = clusters::resolve_active(tx, ctx, req.cluster.as_deref())?;
            let mut out = Vec::new();
            for a in &req.attributes {
                let row = Self::attribute_target(tx, ctx, &cluster, a)?;
                set_attribute(tx, &cluster.arn, &row.arn, &a.name, a.value.as_deref())?;
                let custom = attributes_of(tx, &row)?
                    .keys()
                    .filter(|n| !n.starts_with("ecs.") && !n.starts_with("com.amazonaws.ecs."))
                    .count();
                if custom > MAX_CUSTOM_ATTRIBUTES {
                    return Err(ApiError::new(
                        "AttributeLimitExceededException",
                        format!("You can apply up to {MAX_CUSTOM_ATTRIBUTES} custom attributes for each resource."),
                    ));
                }
                out.push(attribute_of(&a.name, a.value.as_deref(), &row.arn));
            }
            Ok(PutAttributesResponse {
                attributes: Some(out),
            })
        })
    }

    pub(super) fn delete_attributes(
        &self,
        ctx: &Ctx,
        req: DeleteAttributesRequest,
    ) -> ApiResult<DeleteAttributesResponse> {
        if req.attributes.is_empty() {
            return Err(ApiError::invalid_parameter("attributes cannot be empty."));
        }
        for a in &req.attributes {
            check_attribute(a)?;
        }
        self.store.write(|tx| {
            let cluster = clusters::resolve_active(tx, ctx, req.cluster.as_deref())?;
            let mut out = Vec::new();
            for a in &req.attributes {
                let row = Self::attribute_target(tx, ctx, &cluster, a)?;
                tx.prepare_cached(
                    "DELETE FROM attributes WHERE cluster_arn = ?1 AND target_id = ?2 AND name = ?3",
                )?
                .execute(params![cluster.arn, row.arn, a.name])?;
                out.push(attribute_of(&a.name, a.value.as_deref(), &row.arn));
            }
            Ok(DeleteAttributesResponse {
                attributes: Some(out),
            })
        })
    }

    pub(super) fn list_attributes(
        &self,
        ctx: &Ctx,
        req: ListAttributesRequest,
    ) -> ApiResult<ListAttributesResponse> {
        if req.attribute_value.is_some() && req.attribute_name.is_none() {
            return Err(ApiError::invalid_parameter(
                "attributeValue can only be given with attributeName.",
            ));
        }
        let size = paging::page_size(req.max_results, paging::MAX_RESULTS)?;
        let after = match &req.next_token {
            Some(t) => Some(paging::decode_as::<(String, String)>(t)?),
            None => None,
        };
        self.store.read(|conn| {
            let cluster = clusters::resolve_active(conn, ctx, req.cluster.as_deref())?;
            let mut sql = String::from(
                "SELECT a.target_id, a.name, a.value FROM attributes a
                 JOIN container_instances i ON i.arn = a.target_id
                 WHERE a.cluster_arn = ? AND i.status != 'INACTIVE'",
            );
            let mut args: Vec<SqlValue> = vec![cluster.arn.clone().into()];
            if let Some(n) = &req.attribute_name {
                sql.push_str(" AND a.name = ?");
                args.push(n.clone().into());
            }
            if let Some(v) = &req.attribute_value {
                sql.push_str(" AND a.value = ?");
                args.push(v.clone().into());
            }
            if let Some((t, n)) = &after {
                sql.push_str(" AND (a.target_id, a.name) > (?, ?)");
                args.push(t.clone().into());
                args.push(n.clone().into());
            }
            sql.push_str(" ORDER BY a.target_id, a.name LIMIT ?");
            args.push((size as i64 + 1).into());
            let rows: Vec<(String, String, Option<String>)> = conn
                .prepare_cached(&sql)?
                .query_map(params_from_iter(args.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<_, _>>()?;
            let (page, next_token) = paging::page(rows, size, |(t, n, _)| {
                serde_json::to_value((t, n)).expect("a key serialises")
            });
            Ok(ListAttributesResponse {
                attributes: Some(
                    page.into_iter()
                        .map(|(t, n, v)| attribute_of(&n, v.as_deref(), &t))
                        .collect(),
                ),
                next_token,
            })
        })
    }
}

// ----- What other services ask of container instances -----

/// The instance a task is placed on (`Some(None)`: the task exists and is
/// on none; `None`: no such task).
pub fn instance_of_task(conn: &Connection, task_arn: &str) -> ApiResult<Option<Option<String>>> {
    Ok(conn
        .prepare_cached("SELECT container_instance_arn FROM tasks WHERE arn = ?1")?
        .query_row([task_arn], |r| r.get(0))
        .optional()?)
}

/// The tasks on an instance not yet STOPPED, oldest first.
pub fn live_tasks_on(conn: &Connection, instance_arn: &str) -> ApiResult<Vec<String>> {
    let arns = conn
        .prepare_cached(
            "SELECT arn FROM tasks WHERE container_instance_arn = ?1
               AND last_status != 'STOPPED' ORDER BY created_at",
        )?
        .query_map([instance_arn], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(arns)
}

/// The clusters of an account and region that have had instances.
pub fn clusters_with_instances(
    conn: &Connection,
    account: &str,
    region: &str,
) -> ApiResult<Vec<String>> {
    let arns = conn
        .prepare_cached(
            "SELECT DISTINCT cluster_arn FROM container_instances
             WHERE account = ?1 AND region = ?2 ORDER BY cluster_arn",
        )?
        .query_map([account, region], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(arns)
}

/// The instance of a cluster registered for an EC2 instance id.
pub fn by_ec2_instance_id(
    conn: &Connection,
    cluster_arn: &str,
    ec2_id: &str,
) -> ApiResult<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT arn FROM container_instances WHERE cluster_arn = ?1 AND ec2_instance_id = ?2",
        )?
        .query_row([cluster_arn, ec2_id], |r| r.get(0))
        .optional()?)
}

/// The server's own (local) instances of an account and region, oldest
/// first, whatever their status.
pub fn local_instances(
    conn: &Connection,
    account: &str,
    region: &str,
) -> ApiResult<Vec<InstanceRow>> {
    let rows = conn
        .prepare_cached(&format!(
            "{SELECT} WHERE account = ?1 AND region = ?2 AND agent = ?3 ORDER BY registered_at, arn"
        ))?
        .query_map(params![account, region, LOCAL_AGENT], from_sql)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A spot interruption notice with draining on: the instance goes
/// DRAINING and its tasks are asked to stop with `code` and `reason`.
pub fn drain_for_interruption(
    conn: &Connection,
    instance_arn: &str,
    code: TaskStopCode,
    reason: &str,
) -> ApiResult<()> {
    conn.prepare_cached(
        "UPDATE container_instances SET status = 'DRAINING',
           doc = json_set(doc, '$.version', coalesce(json_extract(doc, '$.version'), 0) + 1)
         WHERE arn = ?1 AND status = 'ACTIVE'",
    )?
    .execute([instance_arn])?;
    let live: Vec<String> = conn
        .prepare_cached(
            "SELECT arn FROM tasks WHERE container_instance_arn = ?1 AND desired_status != 'STOPPED'",
        )?
        .query_map([instance_arn], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for t in live {
        super::tasks::request_stop(conn, &t, code, reason)?;
    }
    Ok(())
}

/// The instances of an account and region (of one cluster, if given)
/// registered at any time since `since_ms`, with when each was
/// deregistered, oldest first (for metering).
pub fn registered_since(
    conn: &Connection,
    account: &str,
    region: &str,
    cluster_arn: Option<&str>,
    since_ms: i64,
) -> ApiResult<Vec<(InstanceRow, Option<i64>)>> {
    let rows = conn
        .prepare_cached(
            "SELECT arn, id, cluster_arn, ec2_instance_id, status, registered_at, agent,
               last_seen, address, doc, deregistered_at FROM container_instances
             WHERE account = ?1 AND region = ?2 AND (?3 IS NULL OR cluster_arn = ?3)
               AND (deregistered_at IS NULL OR deregistered_at >= ?4)
             ORDER BY registered_at, arn",
        )?
        .query_map(params![account, region, cluster_arn, since_ms], |r| {
            Ok((from_sql(r)?, r.get(10)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Whether an EC2 instance ever registered a container instance.
pub fn ever_registered(conn: &Connection, ec2_id: &str) -> ApiResult<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM container_instances WHERE ec2_instance_id = ?1)",
        )?
        .query_row([ec2_id], |r| r.get(0))?)
}

/// When an instance was deregistered, if it has been.
pub fn deregistered_at(conn: &Connection, arn: &str) -> ApiResult<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT deregistered_at FROM container_instances WHERE arn = ?1")?
        .query_row([arn], |r| r.get(0))
        .optional()?
        .flatten())
}

/// How the load balancer reaches a target registered by EC2 instance id:
/// the address of that instance's container instance (a local instance's
/// own address on this machine).
pub struct LoadBalancerInstances;

impl crate::elb::InstanceAddresses for LoadBalancerInstances {
    fn address(
        &self,
        conn: &Connection,
        account: &str,
        region: &str,
        instance_id: &str,
    ) -> ApiResult<Option<String>> {
        Ok(conn
            .prepare_cached(
                "SELECT address FROM container_instances
                 WHERE account = ?1 AND region = ?2 AND ec2_instance_id = ?3
                   AND status != 'INACTIVE' AND address IS NOT NULL
                 ORDER BY registered_at DESC LIMIT 1",
            )?
            .query_row([account, region, instance_id], |r| r.get(0))
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn reservation_counts_as_ecs_does() {
        let td: TaskDefinition = def(json!({"networkMode": "bridge"}));
        let cs: Vec<ContainerDefinition> = vec![
            def(
                json!({"cpu": 256, "memory": 512, "portMappings": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 0}]}),
            ),
            def(
                json!({"cpu": 128, "memory": 1024, "memoryReservation": 256, "portMappings": [{"containerPort": 53, "hostPort": 5353, "protocol": "udp"}]}),
            ),
        ];
        let r = reservation(&td, &cs, None, None);
        assert_eq!(
            (r.cpu, r.memory),
            (384, 768),
            "memoryReservation counts where set"
        );
        assert_eq!(
            (r.tcp, r.udp),
            (vec![8080], vec![5353]),
            "dynamic ports reserve nothing"
        );
        let task_level = reservation(&td, &cs, Some("1024"), Some("2048"));
        assert_eq!((task_level.cpu, task_level.memory), (1024, 2048));
        let host: TaskDefinition = def(json!({"networkMode": "host"}));
        let hc: Vec<ContainerDefinition> = vec![def(
            json!({"memory": 64, "portMappings": [{"containerPort": 9000}]}),
        )];
        assert_eq!(reservation(&host, &hc, None, None).tcp, vec![9000]);
        let vpc: TaskDefinition = def(json!({"networkMode": "awsvpc"}));
        assert!(reservation(&vpc, &hc, None, None).tcp.is_empty());
    }

    #[test]
    fn attribute_names_and_values_are_checked() {
        let a = |n: &str, v: Option<&str>| Attribute {
            name: n.into(),
            value: v.map(str::to_string),
            ..Attribute::default()
        };
        assert!(check_attribute(&a("stack", Some("prod"))).is_ok());
        assert!(check_attribute(&a("team/owner.x", Some("a@b: c"))).is_ok());
        assert!(check_attribute(&a("bad name", None)).is_err());
        assert!(check_attribute(&a("ok", Some(" lead"))).is_err());
        assert!(check_attribute(&a(&"x".repeat(129), None)).is_err());
    }

    #[test]
    fn a_stored_document_of_before_reads() {
        let doc: InstanceDoc = serde_json::from_str(
            r#"{"registeredResources":[{"name":"CPU","type":"INTEGER","doubleValue":0.0,"longValue":0,"integerValue":2048},
                {"name":"PORTS","type":"STRINGSET","stringSetValue":["22","2375"]}],
               "versionInfo":{"agentVersion":"1.89.0"},"version":3,"instanceType":"m5.large",
               "market":"spot","capacityProviderName":null,"somethingElse":1}"#,
        )
        .unwrap();
        assert_eq!(doc.resource_int("CPU"), 2048);
        assert_eq!(doc.resource_int("MEMORY"), 0);
        assert_eq!(doc.resource_ports("PORTS"), BTreeSet::from([22, 2375]));
        assert!(doc.is_spot());
        assert_eq!(doc.version, 3);
        assert_eq!(doc.capacity_provider_name, None);
        let again = serde_json::to_value(&doc).unwrap();
        assert_eq!(again["somethingElse"], 1, "unknown members are kept");
    }
}
