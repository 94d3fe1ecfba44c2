//! Berth's own API (target prefix `Berth_20261123`, model in
//! `models/berth-2026-11-23.json`): what ECS has no operation for. Today:
//! local container instances, which `berth instances add|list|remove` drive.
//! Same protocol and authentication as ECS.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::context::Ctx;
use crate::ecs::instances::{self, InstanceRow, LOCAL_AGENT};
use crate::ecs::{clusters, Ecs};
use crate::error::{ApiError, ApiResult};

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

/// The summary `berth instances list` prints.
fn summary(conn: &rusqlite::Connection, row: &InstanceRow, now_ms: i64) -> ApiResult<Value> {
    let full = instances::render(conn, row, now_ms, false)?;
    let res = |key: &str, name: &str| {
        full[key]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == name))
            .and_then(|r| r["integerValue"].as_i64())
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
        "status": row.status,
        "agentConnected": full["agentConnected"],
        "runningTasksCount": full["runningTasksCount"],
        "pendingTasksCount": full["pendingTasksCount"],
        "registeredCpu": res("registeredResources", "CPU"),
        "registeredMemory": res("registeredResources", "MEMORY"),
        "remainingCpu": res("remainingResources", "CPU"),
        "remainingMemory": res("remainingResources", "MEMORY"),
    });
    if let Some(a) = &row.address {
        v["address"] = json!(a);
    }
    Ok(v)
}

pub fn handle(ecs: &Ecs, ctx: &Ctx, operation: &str, input: Value) -> ApiResult<Value> {
    match operation {
        "AddInstances" => {
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
                    added.push(summary(tx, &row, ctx.now_millis())?);
                }
                Ok(json!({"instances": added}))
            })?;
            ecs.task_events.notify_one();
            Ok(out)
        }
        "ListInstances" => {
            let req: ListRequest = serde_json::from_value(input)?;
            ecs.store.read(|conn| {
                let clusters: Vec<String> = match &req.cluster {
                    Some(c) => vec![clusters::resolve_active(conn, ctx, Some(c))?.arn],
                    None => conn
                        .prepare_cached(
                            "SELECT DISTINCT cluster_arn FROM container_instances
                             WHERE account = ?1 AND region = ?2 ORDER BY cluster_arn",
                        )?
                        .query_map([&ctx.account, &ctx.region], |r| r.get(0))?
                        .collect::<Result<_, _>>()?,
                };
                let mut out = Vec::new();
                for c in clusters {
                    for row in instances::registered(conn, &c)? {
                        out.push(summary(conn, &row, ctx.now_millis())?);
                    }
                }
                Ok(json!({"instances": out}))
            })
        }
        "RemoveInstances" => {
            let req: RemoveRequest = serde_json::from_value(input)?;
            let out = ecs.store.write(|tx| {
                let cluster = clusters::resolve_active(tx, ctx, Some(&req.cluster))?;
                let mut removed = Vec::new();
                let mut failures = Vec::new();
                for ident in &req.instances {
                    // An instance is named by its id, ARN or EC2 instance id.
                    let by_ec2: Option<String> = tx
                        .prepare_cached(
                            "SELECT arn FROM container_instances WHERE cluster_arn = ?1 AND ec2_instance_id = ?2",
                        )?
                        .query_row([&cluster.arn, ident], |r| r.get(0))
                        .ok();
                    let arn = by_ec2
                        .unwrap_or_else(|| instances::instance_arn(ctx, &cluster, ident));
                    match instances::load(tx, &arn)?.filter(|r| {
                        r.cluster_arn == cluster.arn && r.status != "INACTIVE"
                    }) {
                        Some(row) if row.agent == LOCAL_AGENT => {
                            instances::deregister(tx, &row, "Container instance removed")?;
                            let row = instances::load(tx, &arn)?.expect("exists");
                            removed.push(summary(tx, &row, ctx.now_millis())?);
                        }
                        Some(_) => failures.push(json!({"arn": arn, "reason": "NOT_LOCAL"})),
                        None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
                    }
                }
                Ok(json!({"instances": removed, "failures": failures}))
            })?;
            ecs.task_events.notify_one();
            Ok(out)
        }
        other => Err(ApiError::unknown_operation(format!(
            "Berth has no operation {other}."
        ))),
    }
}
