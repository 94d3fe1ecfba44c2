//! Berth's own API (target prefix `Berth_20261123`, model in
//! `models/berth-2026-11-23.json`): what ECS has no operation for. Local
//! container instances, which `berth instances add|list|remove` drive; and
//! the internal API of remote agents (`berth agent`, `Agent*` operations):
//! heartbeat, the tasks placed on the agent's instance, what it observed,
//! stop requests, and the awslogs output of their containers. An agent may
//! only read and write the tasks placed on its own instance.
//! Same protocol and authentication as ECS.

use serde::Deserialize;
use serde_json::{json, Value};

use rusqlite::Connection;

use crate::agent::control::{task_from_wire, task_to_wire};
use crate::context::Ctx;
use crate::cost::usage;
use crate::ecs::instances::{self, InstanceRow, LOCAL_AGENT, REMOTE_AGENT};
use crate::ecs::{clusters, taskdefs, tasks, Ecs};
use crate::error::{ApiError, ApiResult};
use crate::logs::Logs;
use crate::model;
use crate::wire::Service;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddRequest {
    cluster: String,
    instance_type: String,
    count: Option<i64>,
    availability_zone: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListRequest {
    cluster: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemoveRequest {
    cluster: String,
    instances: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgentRequest {
    container_instance_arn: String,
    task_arn: Option<String>,
    include_task_definition: Option<bool>,
    document: Option<String>,
    runtime: Option<String>,
    stop_code: Option<crate::ecs::shapes::TaskStopCode>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgentLogRequest {
    container_instance_arn: String,
    region: String,
    log_group_name: String,
    log_stream_name: String,
    create_group: Option<bool>,
    #[serde(default)]
    events: Vec<AgentLogEvent>,
}

#[derive(Deserialize)]
struct AgentLogEvent {
    timestamp: i64,
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InterruptRequest {
    cluster: Option<String>,
    #[serde(default)]
    instance_ids: Vec<String>,
    #[serde(default)]
    tasks: Vec<String>,
}

/// Reason ECS gives a FARGATE_SPOT task it reclaims.
pub const FARGATE_SPOT_REASON: &str = "Your Spot Task was interrupted.";

/// `InterruptSpot`: the notice EC2 gives spot instances and Fargate gives
/// FARGATE_SPOT tasks.
fn interrupt_spot(ecs: &Ecs, ctx: &Ctx, input: Value) -> ApiResult<Value> {
    let req: InterruptRequest = serde_json::from_value(input)?;
    if req.instance_ids.is_empty() && req.tasks.is_empty() {
        return Err(ApiError::invalid_parameter(
            "Name at least one spot instance (instanceIds) or FARGATE_SPOT task (tasks).",
        ));
    }
    let settings = ecs.settings.fleet;
    let now = ctx.now_millis();
    let out = ecs.store.write(|tx| {
        let mut done = Vec::new();
        let mut failures = Vec::new();
        for id in &req.instance_ids {
            let inst = crate::autoscaling::fleet::load_instance(tx, id)?
                .filter(|i| i.account == ctx.account && i.region == ctx.region && i.live());
            match inst {
                None => failures.push(json!({"arn": id, "reason": "MISSING"})),
                Some(i) if i.market != "spot" => {
                    failures.push(json!({"arn": id, "reason": "NOT_SPOT"}))
                }
                Some(i) => {
                    if crate::autoscaling::fleet::interrupt(tx, &i, now, settings.spot_notice_ms)? {
                        done.push(json!({"instanceId": id, "reclaimAt": (now + settings.spot_notice_ms) as f64 / 1000.0}));
                    } else {
                        failures.push(json!({"arn": id, "reason": "ALREADY_INTERRUPTED"}));
                    }
                }
            }
        }
        if !req.tasks.is_empty() {
            let cluster = clusters::resolve_active(tx, ctx, req.cluster.as_deref())?;
            for ident in &req.tasks {
                let arn = crate::ecs::arn::resolve_in_cluster(ctx, "task", &cluster.name, ident);
                match tasks::load(tx, &arn)?.filter(|t| t.cluster_arn == cluster.arn) {
                    None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
                    Some(t) if t.doc.capacity_provider_name.as_deref() != Some("FARGATE_SPOT") => {
                        failures.push(json!({"arn": arn, "reason": "NOT_FARGATE_SPOT"}))
                    }
                    Some(t) => {
                        if tasks::request_stop(tx, &t.arn, crate::ecs::shapes::TaskStopCode::SpotInterruption, FARGATE_SPOT_REASON)? {
                            done.push(json!({"taskArn": arn, "reclaimAt": (now + settings.spot_notice_ms) as f64 / 1000.0}));
                        } else {
                            failures.push(json!({"arn": arn, "reason": "ALREADY_STOPPING"}));
                        }
                    }
                }
            }
        }
        Ok(json!({"interruptions": done, "failures": failures}))
    })?;
    ecs.tasks_changed();
    ecs.bus.wake(crate::events::Topic::Fleet);
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageRequest {
    cluster: Option<String>,
    since: Option<f64>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// A cluster named for a usage listing: its ARN, whether or not it still
/// exists (a deleted cluster's tasks were billed all the same).
fn usage_cluster(ctx: &Ctx, ident: &str) -> String {
    if ident.starts_with("arn:") {
        ident.to_string()
    } else {
        crate::ecs::arn::cluster(ctx, ident)
    }
}

fn usage_scope<'a>(
    ctx: &'a Ctx,
    cluster_arn: Option<&'a str>,
    since: Option<f64>,
) -> usage::Scope<'a> {
    usage::Scope {
        account: &ctx.account,
        region: &ctx.region,
        cluster_arn,
        since_ms: since.map_or(i64::MIN, |s| (s * 1000.0).floor() as i64),
        now_ms: ctx.now_millis(),
    }
}

fn access_denied(message: impl Into<String>) -> ApiError {
    ApiError::new("AccessDeniedException", message)
}

/// The calling agent's instance: registered by an agent (not local), not
/// INACTIVE, of the caller's account and region.
fn agent_instance(conn: &Connection, ctx: &Ctx, arn: &str) -> ApiResult<InstanceRow> {
    let row = instances::load(conn, arn)?
        .filter(|r| {
            crate::ecs::arn::parse(&r.arn)
                .is_some_and(|a| a.account == ctx.account && a.region == ctx.region)
        })
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!("The container instance {arn} is not registered."))
        })?;
    if !row.is_registered() {
        return Err(ApiError::invalid_parameter(format!(
            "The container instance {arn} is deregistered."
        )));
    }
    if row.agent != REMOTE_AGENT {
        return Err(access_denied(format!(
            "The container instance {arn} is run by the server's own agent."
        )));
    }
    Ok(row)
}

/// A task placed on the agent's instance; `None` when there is no such task,
/// `AccessDeniedException` when it is placed elsewhere.
fn agent_task(
    conn: &Connection,
    instance: &InstanceRow,
    task_arn: &str,
) -> ApiResult<Option<tasks::TaskRow>> {
    let placed = instances::instance_of_task(conn, task_arn)?;
    match placed {
        None => Ok(None),
        Some(Some(ci)) if ci == instance.arn => tasks::load(conn, task_arn),
        Some(_) => Err(access_denied(format!(
            "The task {task_arn} is not placed on the container instance {}.",
            instance.arn
        ))),
    }
}

fn required<'a>(v: &'a Option<String>, name: &str) -> ApiResult<&'a str> {
    v.as_deref()
        .ok_or_else(|| ApiError::invalid_parameter(format!("{name} is required.")))
}

/// The internal API of remote agents.
fn agent_operation(p: &Platform, ctx: &Ctx, operation: &str, input: Value) -> ApiResult<Value> {
    let ecs = &p.ecs;
    if operation.ends_with("LogStream")
        || operation.ends_with("LogEvent")
        || operation.ends_with("LogEvents")
    {
        let req: AgentLogRequest = serde_json::from_value(input)?;
        ecs.store
            .read(|c| agent_instance(c, ctx, &req.container_instance_arn))?;
        let logs = &p.logs;
        let (account, region) = (ctx.account.as_str(), req.region.as_str());
        let (group, stream) = (req.log_group_name.as_str(), req.log_stream_name.as_str());
        return match operation {
            "AgentPrepareLogStream" => {
                if req.create_group == Some(true) {
                    logs.ensure_group(account, region, group)?;
                }
                logs.ensure_stream(account, region, group, stream)?;
                Ok(json!({}))
            }
            "AgentGetLastLogEvent" => {
                Ok(match logs.last_event(account, region, group, stream)? {
                    Some(ts) => json!({"timestamp": ts}),
                    None => json!({}),
                })
            }
            _ => {
                let events: Vec<(i64, String)> = req
                    .events
                    .into_iter()
                    .map(|e| (e.timestamp, e.message))
                    .collect();
                let n = logs.append(account, region, group, stream, &events)?;
                Ok(json!({"eventsStored": n}))
            }
        };
    }
    let req: AgentRequest = serde_json::from_value(input)?;
    match operation {
        "AgentHeartbeat" => ecs.store.write(|tx| {
            let row = agent_instance(tx, ctx, &req.container_instance_arn)?;
            instances::heard_from(tx, &row.arn, ecs.liveness(ctx))?;
            let arns = instances::live_tasks_on(tx, &row.arn)?;
            Ok(json!({"taskArns": arns}))
        }),
        "AgentGetTask" => ecs.store.read(|conn| {
            let row = agent_instance(conn, ctx, &req.container_instance_arn)?;
            let Some(task) = agent_task(conn, &row, required(&req.task_arn, "taskArn")?)? else {
                return Ok(json!({}));
            };
            let mut out = json!({"task": task_to_wire(&task)});
            if req.include_task_definition == Some(true) {
                let td_arn = task.doc.task_definition_arn.as_deref().unwrap_or_default();
                if let Some(td) = taskdefs::find_by_arn(conn, td_arn)? {
                    out["taskDefinition"] = json!(serde_json::to_string(&td.doc)?);
                }
            }
            Ok(out)
        }),
        "AgentSaveTask" => {
            let arn = required(&req.task_arn, "taskArn")?;
            let wire = json!({
                "taskArn": arn,
                "document": required(&req.document, "document")?,
                "runtime": required(&req.runtime, "runtime")?,
            });
            let observed = task_from_wire(&wire).map_err(|e| {
                ApiError::invalid_parameter(format!("document or runtime is not valid: {e}"))
            })?;
            let out = ecs.store.write(|tx| {
                let row = agent_instance(tx, ctx, &req.container_instance_arn)?;
                let stored = agent_task(tx, &row, arn)?.ok_or_else(|| {
                    ApiError::invalid_parameter(format!("The task {arn} does not exist."))
                })?;
                if stored.last_status() == crate::ecs::status::TaskStatus::Stopped {
                    // Its end was recorded without the agent: it stays so.
                    return Ok(json!({}));
                }
                tasks::save_observed(tx, &observed)?;
                Ok(json!({}))
            })?;
            // The service scheduler watches what tasks do.
            ecs.bus.wake(crate::events::Topic::Services);
            Ok(out)
        }
        "AgentRequestStop" => {
            let arn = required(&req.task_arn, "taskArn")?;
            let code = req
                .stop_code
                .ok_or_else(|| ApiError::invalid_parameter("stopCode is required."))?;
            let reason = required(&req.reason, "reason")?;
            let changed = ecs.store.write(|tx| {
                let row = agent_instance(tx, ctx, &req.container_instance_arn)?;
                if agent_task(tx, &row, arn)?.is_none() {
                    return Err(ApiError::invalid_parameter(format!(
                        "The task {arn} does not exist."
                    )));
                }
                tasks::request_stop(tx, arn, code, reason)
            })?;
            Ok(json!({"changed": changed}))
        }
        other => Err(ApiError::unknown_operation(format!(
            "Berth has no operation {other}."
        ))),
    }
}

/// The summary `berth instances list` prints.
fn summary(
    conn: &rusqlite::Connection,
    row: &InstanceRow,
    at: instances::Liveness,
) -> ApiResult<Value> {
    let full = instances::render(conn, row, at, false)?;
    let res = |list: &Option<Vec<crate::ecs::shapes::Resource>>, name: &str| {
        list.iter()
            .flatten()
            .find(|r| r.name.as_deref() == Some(name))
            .and_then(|r| r.integer_value)
            .unwrap_or(0)
    };
    let attrs = instances::attributes_of(conn, row)?;
    let attr = |k: &str| attrs.get(k).cloned().flatten().unwrap_or_default();
    let mut v = json!({
        "clusterArn": row.cluster_arn,
        "containerInstanceArn": row.arn,
        "ec2InstanceId": row.ec2_instance_id,
        "instanceType": attr("ecs.instance-type"),
        "availabilityZone": attr("ecs.availability-zone"),
        "local": row.agent == LOCAL_AGENT,
        "status": row.status.as_str(),
        "agentConnected": full.agent_connected,
        "runningTasksCount": full.running_tasks_count,
        "pendingTasksCount": full.pending_tasks_count,
        "registeredCpu": res(&full.registered_resources, "CPU"),
        "registeredMemory": res(&full.registered_resources, "MEMORY"),
        "remainingCpu": res(&full.remaining_resources, "CPU"),
        "remainingMemory": res(&full.remaining_resources, "MEMORY"),
    });
    if let Some(a) = &row.address {
        v["address"] = json!(a);
    }
    Ok(v)
}

fn add_instances(ecs: &Ecs, ctx: &Ctx, input: Value) -> ApiResult<Value> {
    let req: AddRequest = serde_json::from_value(input)?;
    let count = req.count.unwrap_or(1);
    let out = ecs.store.write(|tx| {
        let cluster = clusters::resolve_active(tx, ctx, Some(&req.cluster))?;
        let mut added = Vec::new();
        for _ in 0..count {
            let row = instances::add_local(
                tx,
                ctx,
                &cluster,
                &req.instance_type,
                req.availability_zone.as_deref(),
            )?;
            added.push(summary(tx, &row, ecs.liveness(ctx))?);
        }
        Ok(json!({"instances": added}))
    })?;
    ecs.tasks_changed();
    Ok(out)
}

fn list_instances(ecs: &Ecs, ctx: &Ctx, input: Value) -> ApiResult<Value> {
    let req: ListRequest = serde_json::from_value(input)?;
    ecs.store.read(|conn| {
        let clusters: Vec<String> = match &req.cluster {
            Some(c) => vec![clusters::resolve_active(conn, ctx, Some(c))?.arn],
            None => instances::clusters_with_instances(conn, &ctx.account, &ctx.region)?,
        };
        let mut out = Vec::new();
        for c in clusters {
            for row in instances::registered(conn, &c)? {
                out.push(summary(conn, &row, ecs.liveness(ctx))?);
            }
        }
        Ok(json!({"instances": out}))
    })
}

fn remove_instances(ecs: &Ecs, ctx: &Ctx, input: Value) -> ApiResult<Value> {
    let req: RemoveRequest = serde_json::from_value(input)?;
    let out = ecs.store.write(|tx| {
        let cluster = clusters::resolve_active(tx, ctx, Some(&req.cluster))?;
        let mut removed = Vec::new();
        let mut failures = Vec::new();
        for ident in &req.instances {
            // An instance is named by its id, ARN or EC2 instance id.
            let by_ec2 = instances::by_ec2_instance_id(tx, &cluster.arn, ident)?;
            let arn = by_ec2.unwrap_or_else(|| instances::instance_arn(ctx, &cluster, ident));
            match instances::load(tx, &arn)?
                .filter(|r| r.cluster_arn == cluster.arn && r.is_registered())
            {
                Some(row) if row.agent == LOCAL_AGENT => {
                    instances::deregister(
                        tx,
                        &row,
                        "Container instance removed",
                        ctx.now_millis(),
                    )?;
                    let row = instances::load(tx, &arn)?.expect("exists");
                    removed.push(summary(tx, &row, ecs.liveness(ctx))?);
                }
                Some(_) => failures.push(json!({"arn": arn, "reason": "NOT_LOCAL"})),
                None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
            }
        }
        Ok(json!({"instances": removed, "failures": failures}))
    })?;
    ecs.tasks_changed();
    Ok(out)
}

fn list_task_usage(ecs: &Ecs, ctx: &Ctx, input: Value) -> ApiResult<Value> {
    let req: UsageRequest = serde_json::from_value(input)?;
    let size = crate::paging::page_size(req.max_results, 1000)?;
    let after: Option<(i64, String)> = req
        .next_token
        .as_deref()
        .map(crate::paging::decode_as)
        .transpose()?;
    let cluster = req.cluster.as_deref().map(|c| usage_cluster(ctx, c));
    let scope = usage_scope(ctx, cluster.as_deref(), req.since);
    let rows = ecs
        .store
        .read(|conn| usage::task_usage(conn, &scope, after, size + 1))?;
    let (page, token) =
        crate::paging::page(rows, size, |(created, u)| json!([created, u.task_arn]));
    let mut out = json!({"usage": page.into_iter().map(|(_, u)| u).collect::<Vec<_>>()});
    if let Some(t) = token {
        out["nextToken"] = json!(t);
    }
    Ok(out)
}

fn list_instance_usage(ecs: &Ecs, ctx: &Ctx, input: Value) -> ApiResult<Value> {
    let req: UsageRequest = serde_json::from_value(input)?;
    let cluster = req.cluster.as_deref().map(|c| usage_cluster(ctx, c));
    let scope = usage_scope(ctx, cluster.as_deref(), req.since);
    let usage = ecs.store.read(|conn| usage::instance_usage(conn, &scope))?;
    Ok(json!({ "usage": usage }))
}

/// What Berth's own API works on: ECS (its instances, tasks and settings)
/// and CloudWatch Logs (for remote agents' output).
pub struct Platform {
    pub ecs: Arc<Ecs>,
    pub logs: Arc<Logs>,
}

/// Berth's own API, registered once in the request pipeline.
pub fn service(state: Arc<Platform>) -> Service {
    fn on_ecs(
        f: fn(&Ecs, &Ctx, Value) -> ApiResult<Value>,
    ) -> impl Fn(&Platform, &Ctx, Value) -> ApiResult<Value> + Send + Sync {
        move |p, ctx, input| f(&p.ecs, ctx, input)
    }
    let mut b = Service::builder("Berth's own API", "berth", "ecs", model::berth(), state)
        .op("AddInstances", on_ecs(add_instances))
        .op("ListInstances", on_ecs(list_instances))
        .op("RemoveInstances", on_ecs(remove_instances))
        .op("InterruptSpot", on_ecs(interrupt_spot))
        .op("ListTaskUsage", on_ecs(list_task_usage))
        .op("ListInstanceUsage", on_ecs(list_instance_usage));
    for op in AGENT_OPERATIONS {
        b = b.op(op, move |p: &Platform, ctx: &Ctx, input: Value| {
            agent_operation(p, ctx, op, input)
        });
    }
    b.build()
}

/// The operations of remote agents (`berth agent`).
const AGENT_OPERATIONS: [&str; 7] = [
    "AgentHeartbeat",
    "AgentGetTask",
    "AgentSaveTask",
    "AgentRequestStop",
    "AgentPrepareLogStream",
    "AgentGetLastLogEvent",
    "AgentAppendLogEvents",
];
