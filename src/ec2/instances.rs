//! `DescribeInstances` and `TerminateInstances` over Berth's local container
//! instances (rows of `container_instances` run by the server's own agent)
//! and the instances Auto Scaling launched:
//! each is an EC2 instance with its instance type, availability zone, AMI,
//! its address on this machine as `PrivateIpAddress`, and `running` while
//! registered, `terminated` once deregistered. Terminating one deregisters it
//! (its tasks stop). Filters: `instance-id`, `instance-type`,
//! `instance-state-name`, `availability-zone`, `private-ip-address`,
//! `architecture`.

use rusqlite::Connection;
use serde_json::{json, Value};

use super::{any_matches, filters, invalid_value, iso_time, page, page_size, page_start, Ec2};
use crate::catalog;
use crate::context::Ctx;
use crate::ecs::instances::{self, InstanceRow};
use crate::error::{ApiError, ApiResult};
use crate::events::Topic;

/// An instance another service launched (an Auto Scaling group's), as EC2
/// presents it.
#[derive(Debug, Clone, PartialEq)]
pub struct Launched {
    pub id: String,
    pub account: String,
    pub region: String,
    pub instance_type: String,
    pub az: String,
    pub spot: bool,
    /// EC2's state `(code, name)`.
    pub state: (i64, &'static str),
    pub launched_at_ms: i64,
    pub launch_template_id: Option<String>,
    pub group_name: Option<String>,
    /// The container instance it registered, while it is registered.
    pub container_instance_arn: Option<String>,
    /// Not terminated.
    pub live: bool,
}

/// The instances other services launch, which EC2 lists and terminates;
/// Auto Scaling implements it (EC2 does not reach into its tables).
pub trait LaunchedInstances: Send + Sync {
    /// Those of an account and region (terminated ones for an hour, as EC2
    /// shows them), oldest first.
    fn all(
        &self,
        conn: &Connection,
        account: &str,
        region: &str,
        now_ms: i64,
    ) -> ApiResult<Vec<Launched>>;
    fn get(&self, conn: &Connection, id: &str) -> ApiResult<Option<Launched>>;
    /// Terminate a live one, as TerminateInstances does (its launcher
    /// records why and replaces it).
    fn terminate(&self, tx: &Connection, id: &str, now_ms: i64) -> ApiResult<()>;
}

const FILTERS: [&str; 6] = [
    "instance-id",
    "instance-type",
    "instance-state-name",
    "availability-zone",
    "private-ip-address",
    "architecture",
];

/// An instance's EC2 state: `(code, name)`.
pub fn state(row: &InstanceRow) -> (i64, &'static str) {
    if !row.is_registered() {
        (48, "terminated")
    } else {
        (16, "running")
    }
}

fn local_instances(conn: &Connection, ctx: &Ctx) -> ApiResult<Vec<InstanceRow>> {
    instances::local_instances(conn, &ctx.account, &ctx.region)
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidInstanceID.NotFound",
        format!("The instance ID '{id}' does not exist"),
    )
}

fn check_id(id: &str) -> ApiResult<()> {
    let ok = id.strip_prefix("i-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17) && h.chars().all(|c| c.is_ascii_hexdigit())
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            "InvalidInstanceID.Malformed",
            format!("Invalid id: \"{id}\""),
        ))
    }
}

fn requested_ids(input: &Value) -> ApiResult<Vec<String>> {
    let ids: Vec<String> = input
        .get("InstanceIds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    for id in &ids {
        check_id(id)?;
    }
    Ok(ids)
}

/// One `Instance` in the response shape, with the filterable facts.
fn render(conn: &Connection, row: &InstanceRow) -> ApiResult<Value> {
    let attrs = instances::attributes_of(conn, row)?;
    let attr = |k: &str| attrs.get(k).cloned().flatten();
    let instance_type = row
        .doc
        .instance_type
        .clone()
        .or_else(|| attr("ecs.instance-type"))
        .unwrap_or_default();
    let arch = catalog::find(&instance_type).map(|t| t.arch.as_str());
    let (code, name) = state(row);
    let mut v = json!({
        "InstanceId": row.ec2_instance_id,
        "InstanceType": instance_type,
        "State": {"Code": code, "Name": name},
        "LaunchTime": iso_time(row.registered_at),
        "Placement": {"AvailabilityZone": attr("ecs.availability-zone").unwrap_or_default()},
    });
    if let Some(a) = attr("ecs.ami-id") {
        v["ImageId"] = json!(a);
    }
    if let Some(a) = arch {
        v["Architecture"] = json!(a);
    }
    if let Some(ip) = row.address.as_deref().filter(|_| name == "running") {
        v["PrivateIpAddress"] = json!(ip);
    }
    Ok(v)
}

/// One `Instance` launched for an Auto Scaling group.
fn render_launched(conn: &Connection, i: &Launched) -> ApiResult<Value> {
    let (code, name) = i.state;
    let mut v = json!({
        "InstanceId": i.id,
        "InstanceType": i.instance_type,
        "State": {"Code": code, "Name": name},
        "LaunchTime": iso_time(i.launched_at_ms),
        "Placement": {"AvailabilityZone": i.az},
        "ImageId": "ami-berth-local",
    });
    if let Some(t) = catalog::find(&i.instance_type) {
        v["Architecture"] = json!(t.arch.as_str());
    }
    if i.spot {
        v["InstanceLifecycle"] = json!("spot");
    }
    if let Some(lt) = &i.launch_template_id {
        let mut tags = vec![json!({"Key": "aws:ec2launchtemplate:id", "Value": lt})];
        if let Some(g) = &i.group_name {
            tags.push(json!({"Key": "aws:autoscaling:groupName", "Value": g}));
        }
        v["Tags"] = Value::Array(tags);
    }
    if name == "running" {
        if let Some(arn) = &i.container_instance_arn {
            if let Some(ip) = instances::load(conn, arn)?.and_then(|r| r.address) {
                v["PrivateIpAddress"] = json!(ip);
            }
        }
    }
    Ok(v)
}

fn matches(v: &Value, f: &super::Filter) -> bool {
    let field = match f.name.as_str() {
        "instance-id" => &v["InstanceId"],
        "instance-type" => &v["InstanceType"],
        "instance-state-name" => &v["State"]["Name"],
        "availability-zone" => &v["Placement"]["AvailabilityZone"],
        "private-ip-address" => &v["PrivateIpAddress"],
        _ => &v["Architecture"],
    };
    field.as_str().is_some_and(|s| any_matches(f, s))
}

/// `DescribeInstances`: one reservation per instance.
pub fn describe(ec2: &Ec2, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    let ids = requested_ids(input)?;
    let filters = filters(input);
    for f in &filters {
        if !FILTERS.contains(&f.name.as_str()) {
            return Err(invalid_value(format!("The filter '{}' is invalid", f.name)));
        }
    }
    let rendered = ec2.store.read(|c| {
        let launched = ec2
            .launched
            .all(c, &ctx.account, &ctx.region, ctx.now_millis())?;
        let mut out: Vec<Value> = Vec::new();
        for i in &launched {
            out.push(render_launched(c, i)?);
        }
        for r in local_instances(c, ctx)? {
            if ec2.launched.get(c, &r.ec2_instance_id)?.is_none() {
                out.push(render(c, &r)?);
            }
        }
        for id in &ids {
            if !out.iter().any(|v| v["InstanceId"] == id.as_str()) {
                return Err(not_found(id));
            }
        }
        Ok(out
            .into_iter()
            .filter(|v| ids.is_empty() || ids.iter().any(|id| v["InstanceId"] == id.as_str()))
            .collect::<Vec<_>>())
    })?;
    let matching: Vec<Value> = rendered
        .into_iter()
        .filter(|v| filters.iter().all(|f| matches(v, f)))
        .collect();
    let start = page_start(input)?;
    let (items, token) = page(matching, start, page_size(input, 1000));
    let reservations: Vec<Value> = items
        .into_iter()
        .map(|i| {
            let suffix = i["InstanceId"]
                .as_str()
                .unwrap_or("i-0")
                .trim_start_matches("i-")
                .to_string();
            json!({
                "ReservationId": format!("r-{suffix}"),
                "OwnerId": ctx.account,
                "Instances": [i],
            })
        })
        .collect();
    let mut out = json!({"Reservations": reservations});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

/// `TerminateInstances`: deregister each local instance (its tasks stop).
pub fn terminate(ec2: &Ec2, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    let ids = requested_ids(input)?;
    if ids.is_empty() {
        return Err(ApiError::new(
            "MissingParameter",
            "The request must contain the parameter InstanceId",
        ));
    }
    let out = ec2.store.write(|tx| {
        let rows = local_instances(tx, ctx)?;
        let mut changes = Vec::new();
        for id in &ids {
            if let Some(i) = ec2
                .launched
                .get(tx, id)?
                .filter(|i| i.account == ctx.account && i.region == ctx.region)
            {
                let (code, name) = i.state;
                let current = if i.live {
                    ec2.launched.terminate(tx, id, ctx.now_millis())?;
                    json!({"Code": 32, "Name": "shutting-down"})
                } else {
                    json!({"Code": code, "Name": name})
                };
                changes.push(json!({
                    "InstanceId": id,
                    "PreviousState": {"Code": code, "Name": name},
                    "CurrentState": current,
                }));
                continue;
            }
            let row = rows
                .iter()
                .find(|r| &r.ec2_instance_id == id)
                .ok_or_else(|| not_found(id))?;
            let (code, name) = state(row);
            let current = if name == "running" {
                instances::deregister(
                    tx,
                    row,
                    "Instance terminated (TerminateInstances)",
                    ctx.now_millis(),
                )?;
                json!({"Code": 32, "Name": "shutting-down"})
            } else {
                json!({"Code": code, "Name": name})
            };
            changes.push(json!({
                "InstanceId": id,
                "PreviousState": {"Code": code, "Name": name},
                "CurrentState": current,
            }));
        }
        Ok(json!({"TerminatingInstances": changes}))
    })?;
    ec2.bus.wake(Topic::Tasks);
    ec2.bus.wake(Topic::Fleet);
    Ok(out)
}
