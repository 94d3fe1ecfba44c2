//! Auto Scaling groups: their rows, their configuration as the planner sees
//! it, and the group operations of the API. A group's desired capacity is
//! what the API changes; the fleet (`fleet.rs`) launches and terminates
//! instances to match it.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use super::fleet::{self, InstanceRow};
use super::plan::{Distribution, GroupSpec, PoolState, SpotStrategy, WarmPool};
use super::validation;
use crate::catalog;
use crate::context::Ctx;
use crate::ec2::{iso_time, launch_templates};
use crate::error::{ApiError, ApiResult};
use crate::store::Store;

/// A group as stored.
#[derive(Debug, Clone)]
pub struct GroupRow {
    pub arn: String,
    pub account: String,
    pub region: String,
    pub name: String,
    pub created_at: i64,
    pub min: i64,
    pub max: i64,
    pub desired: i64,
    /// The configuration as given: `LaunchTemplate` or
    /// `MixedInstancesPolicy`, zones, `NewInstancesProtectedFromScaleIn`,
    /// `Tags`, …
    pub doc: Map<String, Value>,
    /// The `WarmPoolConfiguration`, when the group has a warm pool.
    pub warm_pool: Option<Value>,
    pub deleting: bool,
}

const SELECT: &str = "SELECT arn, account, region, name, created_at, min_size, max_size, desired,
    doc, warm_pool, deleting FROM auto_scaling_groups";

fn from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<GroupRow> {
    let doc: String = r.get(8)?;
    let warm: Option<String> = r.get(9)?;
    Ok(GroupRow {
        arn: r.get(0)?,
        account: r.get(1)?,
        region: r.get(2)?,
        name: r.get(3)?,
        created_at: r.get(4)?,
        min: r.get(5)?,
        max: r.get(6)?,
        desired: r.get(7)?,
        doc: serde_json::from_str(&doc).unwrap_or_default(),
        warm_pool: warm.and_then(|w| serde_json::from_str(&w).ok()),
        deleting: r.get::<_, i64>(10)? != 0,
    })
}

pub fn find(
    conn: &Connection,
    account: &str,
    region: &str,
    name: &str,
) -> ApiResult<Option<GroupRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT} WHERE account = ?1 AND region = ?2 AND name = ?3"
        ))?
        .query_row(params![account, region, name], from_sql)
        .optional()?)
}

/// A group named by its name or ARN.
pub fn find_named(conn: &Connection, ctx: &Ctx, ident: &str) -> ApiResult<Option<GroupRow>> {
    let name = ident
        .split_once(":autoScalingGroupName/")
        .map_or(ident, |(_, n)| n);
    Ok(find(conn, &ctx.account, &ctx.region, name)?
        .filter(|g| !ident.starts_with("arn:") || g.arn == ident))
}

/// Every group of every account, for the fleet.
pub fn all(conn: &Connection) -> ApiResult<Vec<GroupRow>> {
    Ok(conn
        .prepare_cached(&format!("{SELECT} ORDER BY created_at, name"))?
        .query_map([], from_sql)?
        .collect::<Result<_, _>>()?)
}

fn list(conn: &Connection, ctx: &Ctx) -> ApiResult<Vec<GroupRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT} WHERE account = ?1 AND region = ?2 ORDER BY name"
        ))?
        .query_map(params![ctx.account, ctx.region], from_sql)?
        .collect::<Result<_, _>>()?)
}

/// The group a call names, or Auto Scaling's not-found error.
pub fn require(conn: &Connection, ctx: &Ctx, name: &str) -> ApiResult<GroupRow> {
    find_named(conn, ctx, name)?.ok_or_else(|| not_found(name))
}

fn not_found(name: &str) -> ApiError {
    validation(format!(
        "AutoScalingGroup name not found - AutoScalingGroup '{name}' not found"
    ))
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// The strings of a list member (none when it is absent).
fn strs(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn int_of(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_i64)
}

/// The launch template specification a group launches from.
pub fn template_spec(doc: &Map<String, Value>) -> Option<Value> {
    doc.get("LaunchTemplate").cloned().or_else(|| {
        doc.get("MixedInstancesPolicy")?
            .pointer("/LaunchTemplate/LaunchTemplateSpecification")
            .cloned()
    })
}

/// What a group launches, resolved from its launch template now.
#[derive(Debug, Clone)]
pub struct Launch {
    /// `LaunchTemplateId`, `LaunchTemplateName` and the `Version` as asked.
    pub template: Value,
    /// The version's `LaunchTemplateData`.
    pub data: Value,
    /// Instance types in priority order.
    pub types: Vec<String>,
    /// The template asks for spot.
    pub spot: bool,
}

fn bad_template(message: String) -> ApiError {
    validation(format!(
        "You must use a valid fully-formed launch template. {message}"
    ))
}

/// Resolve the group's launch template (name or id, version `$Default` when
/// unset) and its instance types.
pub fn resolve_launch(conn: &Connection, ctx: &Ctx, doc: &Map<String, Value>) -> ApiResult<Launch> {
    let spec = template_spec(doc).ok_or_else(|| {
        validation("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.")
    })?;
    let t = launch_templates::find(conn, ctx, &spec).map_err(|e| {
        let which = str_of(&spec, "LaunchTemplateName")
            .map(|n| format!("with template name {n}"))
            .or_else(|| str_of(&spec, "LaunchTemplateId").map(|i| format!("with template id {i}")))
            .unwrap_or_else(|| "named".into());
        if e.code == "MissingParameter" {
            bad_template("The launch template specification must name a template by LaunchTemplateId or LaunchTemplateName.".into())
        } else {
            bad_template(format!("The specified launch template, {which}, does not exist."))
        }
    })?;
    let version = str_of(&spec, "Version").unwrap_or("$Default");
    let v = launch_templates::resolve_version(conn, &t, version).map_err(|_| {
        bad_template(format!(
            "The specified version {version} for launch template {} does not exist.",
            t.id
        ))
    })?;
    let overrides: Vec<String> = doc
        .get("MixedInstancesPolicy")
        .and_then(|m| m.pointer("/LaunchTemplate/Overrides"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| str_of(o, "InstanceType").map(str::to_string))
        .collect();
    let types = if overrides.is_empty() {
        str_of(&v.data, "InstanceType")
            .map(|t| vec![t.to_string()])
            .unwrap_or_default()
    } else {
        overrides
    };
    if types.is_empty() {
        return Err(bad_template(format!(
            "The launch template {} version {} has no instance type, and the group names none in its overrides.",
            t.id, v.version
        )));
    }
    for ty in &types {
        if catalog::find(ty).is_none() {
            return Err(validation(format!(
                "The instance type {ty} is not supported: it is not in Berth's instance-type catalog."
            )));
        }
    }
    let spot = v
        .data
        .pointer("/InstanceMarketOptions/MarketType")
        .and_then(Value::as_str)
        == Some("spot");
    if spot && doc.contains_key("MixedInstancesPolicy") {
        return Err(validation(
            "Incompatible launch template: You cannot use a launch template that is set to request Spot Instances (InstanceMarketOptions) when you configure an Auto Scaling group with a mixed instances policy. Add a different launch template to the group and try again.",
        ));
    }
    Ok(Launch {
        template: json!({
            "LaunchTemplateId": t.id,
            "LaunchTemplateName": t.name,
            "Version": version,
        }),
        data: v.data,
        types,
        spot,
    })
}

/// The zones a group spreads over: its `AvailabilityZones`, or one zone per
/// subnet of `VPCZoneIdentifier` (Berth has no VPCs: the n-th subnet is the
/// region's n-th zone, `a`, `b`, `c`, …).
pub fn zones(doc: &Map<String, Value>, region: &str) -> Vec<String> {
    let listed: Vec<String> = strs(doc.get("AvailabilityZones"))
        .into_iter()
        .map(str::to_string)
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    subnets(doc)
        .iter()
        .enumerate()
        .map(|(i, _)| format!("{region}{}", (b'a' + (i % 6) as u8) as char))
        .collect()
}

fn subnets(doc: &Map<String, Value>) -> Vec<String> {
    doc.get("VPCZoneIdentifier")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The zone's subnet, for activity details.
fn subnet_of(doc: &Map<String, Value>, region: &str, az: &str) -> Option<String> {
    let z = zones(doc, region);
    let i = z.iter().position(|x| x == az)?;
    subnets(doc).get(i).cloned()
}

pub fn warm_pool(v: &Value) -> WarmPool {
    WarmPool {
        min_size: int_of(v, "MinSize").unwrap_or(0),
        max_prepared: int_of(v, "MaxGroupPreparedCapacity").filter(|n| *n >= 0),
        pool_state: match str_of(v, "PoolState") {
            Some("Running") => PoolState::Running,
            _ => PoolState::Stopped,
        },
        reuse_on_scale_in: v
            .pointer("/InstanceReusePolicy/ReuseOnScaleIn")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}

/// The group's configuration for the planner.
pub fn spec(g: &GroupRow, launch: &Launch) -> GroupSpec {
    let distribution = g
        .doc
        .get("MixedInstancesPolicy")
        .map(|m| m.get("InstancesDistribution").cloned().unwrap_or(json!({})))
        .map(|d| Distribution {
            on_demand_base: int_of(&d, "OnDemandBaseCapacity").unwrap_or(0),
            on_demand_percentage: int_of(&d, "OnDemandPercentageAboveBaseCapacity").unwrap_or(100),
            spot_strategy: match str_of(&d, "SpotAllocationStrategy") {
                Some("lowest-price") => SpotStrategy::LowestPrice,
                _ => SpotStrategy::Diversified,
            },
        });
    GroupSpec {
        desired: if g.deleting { 0 } else { g.desired },
        max: g.max,
        zones: zones(&g.doc, &g.region),
        types: launch.types.clone(),
        template_spot: launch.spot,
        distribution,
        warm_pool: if g.deleting {
            None
        } else {
            g.warm_pool.as_ref().map(warm_pool)
        },
    }
}

pub fn protects_new_instances(g: &GroupRow) -> bool {
    g.doc
        .get("NewInstancesProtectedFromScaleIn")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn check_bounds(min: i64, max: i64, desired: i64) -> ApiResult<()> {
    if min > max {
        return Err(validation(format!(
            "Max bound, {max}, must be greater than or equal to min bound, {min}"
        )));
    }
    if desired < min || desired > max {
        return Err(validation(format!(
            "Desired capacity:{desired} must be between the specified min size:{min} and max size:{max}"
        )));
    }
    Ok(())
}

/// The configuration members a group keeps in its `doc`.
const CONFIG_KEYS: [&str; 10] = [
    "LaunchTemplate",
    "MixedInstancesPolicy",
    "AvailabilityZones",
    "VPCZoneIdentifier",
    "NewInstancesProtectedFromScaleIn",
    "DefaultCooldown",
    "HealthCheckType",
    "HealthCheckGracePeriod",
    "TerminationPolicies",
    "CapacityRebalance",
];

fn check_config(conn: &Connection, ctx: &Ctx, doc: &Map<String, Value>) -> ApiResult<Launch> {
    if doc.contains_key("LaunchTemplate") && doc.contains_key("MixedInstancesPolicy") {
        return Err(validation(
            "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.",
        ));
    }
    if zones(doc, &ctx.region).is_empty() {
        return Err(validation(
            "At least one Availability Zone or VPC Subnet is required.",
        ));
    }
    if let Some(z) = strs(doc.get("AvailabilityZones"))
        .into_iter()
        .find(|z| !z.starts_with(ctx.region.as_str()))
    {
        return Err(validation(format!("Invalid Availability Zone: {z}")));
    }
    resolve_launch(conn, ctx, doc)
}

pub fn create(store: &Store, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    let name = str_of(input, "AutoScalingGroupName")
        .unwrap_or_default()
        .to_string();
    if input.get("LaunchConfigurationName").is_some() || input.get("InstanceId").is_some() {
        return Err(validation(
            "Berth launches instances from launch templates: use LaunchTemplate or MixedInstancesPolicy (launch configurations and InstanceId are not supported).",
        ));
    }
    let min = int_of(input, "MinSize").unwrap_or(0);
    let max = int_of(input, "MaxSize").unwrap_or(0);
    let desired = int_of(input, "DesiredCapacity").unwrap_or(min);
    check_bounds(min, max, desired)?;
    let mut doc = Map::new();
    for k in CONFIG_KEYS {
        if let Some(v) = input.get(k) {
            doc.insert(k.into(), v.clone());
        }
    }
    doc.insert(
        "Tags".into(),
        input.get("Tags").cloned().unwrap_or(json!([])),
    );
    store.write(|tx| {
        check_config(tx, ctx, &doc)?;
        if find(tx, &ctx.account, &ctx.region, &name)?.is_some() {
            return Err(ApiError::new(
                "AlreadyExists",
                format!("AutoScalingGroup by this name already exists - A group with the name {name} already exists"),
            ));
        }
        let arn = format!(
            "arn:aws:autoscaling:{}:{}:autoScalingGroup:{}:autoScalingGroupName/{name}",
            ctx.region,
            ctx.account,
            uuid::Uuid::new_v4()
        );
        tx.prepare_cached(
            "INSERT INTO auto_scaling_groups (arn, account, region, name, created_at, min_size,
                max_size, desired, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            arn,
            ctx.account,
            ctx.region,
            name,
            ctx.now_millis(),
            min,
            max,
            desired,
            Value::Object(doc.clone()).to_string()
        ])?;
        Ok(json!({}))
    })
}

pub fn save(tx: &Connection, g: &GroupRow) -> ApiResult<()> {
    tx.prepare_cached(
        "UPDATE auto_scaling_groups SET min_size = ?2, max_size = ?3, desired = ?4, doc = ?5,
            warm_pool = ?6, deleting = ?7 WHERE arn = ?1",
    )?
    .execute(params![
        g.arn,
        g.min,
        g.max,
        g.desired,
        Value::Object(g.doc.clone()).to_string(),
        g.warm_pool.as_ref().map(Value::to_string),
        g.deleting as i64
    ])?;
    Ok(())
}

/// Change a group's desired capacity, with the activity cause AWS records.
pub fn change_desired(
    tx: &Connection,
    g: &mut GroupRow,
    desired: i64,
    why: &str,
    now_ms: i64,
) -> ApiResult<()> {
    if g.desired == desired {
        return Ok(());
    }
    let cause = format!(
        "At {} {why} changing the desired capacity from {} to {desired}.",
        when(now_ms),
        g.desired
    );
    g.desired = desired;
    // The fleet names it as the cause of the launches and terminations
    // that follow.
    g.doc.insert(CAUSE_KEY.into(), json!(cause));
    save(tx, g)
}

/// Where a group keeps the cause of its last change of desired capacity
/// (never rendered).
pub const CAUSE_KEY: &str = "berthLastCause";

/// The cause of the last change of desired capacity, if any.
pub fn last_cause(g: &GroupRow) -> Option<&str> {
    g.doc.get(CAUSE_KEY).and_then(Value::as_str)
}

/// A time as Auto Scaling writes it in activity causes.
pub fn when(now_ms: i64) -> String {
    iso_time(now_ms).replace(".000Z", "Z")
}

fn guard_deleting(g: &GroupRow) -> ApiResult<()> {
    if g.deleting {
        return Err(ApiError::new(
            "ScalingActivityInProgress",
            "The group is being deleted.",
        ));
    }
    Ok(())
}

pub fn update(store: &Store, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    let name = str_of(input, "AutoScalingGroupName").unwrap_or_default();
    store.write(|tx| {
        let mut g = require(tx, ctx, name)?;
        guard_deleting(&g)?;
        let mut doc = g.doc.clone();
        for k in CONFIG_KEYS {
            if let Some(v) = input.get(k) {
                doc.insert(k.into(), v.clone());
            }
        }
        // A new launch template replaces a mixed policy, and the reverse.
        if input.get("LaunchTemplate").is_some() {
            doc.remove("MixedInstancesPolicy");
        } else if input.get("MixedInstancesPolicy").is_some() {
            doc.remove("LaunchTemplate");
        }
        if input.get("VPCZoneIdentifier").is_some() && input.get("AvailabilityZones").is_none() {
            doc.remove("AvailabilityZones");
        }
        check_config(tx, ctx, &doc)?;
        let min = int_of(input, "MinSize").unwrap_or(g.min);
        let max = int_of(input, "MaxSize").unwrap_or(g.max);
        let desired = match int_of(input, "DesiredCapacity") {
            Some(d) => d,
            // A new bound moves the desired capacity inside it.
            None => g.desired.clamp(min.min(max), max),
        };
        check_bounds(min, max, desired)?;
        g.doc = doc;
        g.min = min;
        g.max = max;
        save(tx, &g)?;
        change_desired(
            tx,
            &mut g,
            desired,
            "a user request update of AutoScalingGroup constraints",
            ctx.now_millis(),
        )?;
        Ok(json!({}))
    })
}

pub fn set_desired_capacity(store: &Store, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    let name = str_of(input, "AutoScalingGroupName").unwrap_or_default();
    let desired = int_of(input, "DesiredCapacity").unwrap_or(0);
    store.write(|tx| {
        let mut g = require(tx, ctx, name)?;
        guard_deleting(&g)?;
        if desired > g.max {
            return Err(validation(format!(
                "New SetDesiredCapacity value {desired} is above max value {} for the AutoScalingGroup.",
                g.max
            )));
        }
        if desired < g.min {
            return Err(validation(format!(
                "New SetDesiredCapacity value {desired} is below min value {} for the AutoScalingGroup.",
                g.min
            )));
        }
        change_desired(tx, &mut g, desired, "a user request explicitly set group desired capacity", ctx.now_millis())?;
        Ok(json!({}))
    })
}

pub fn delete(store: &Store, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    let name = str_of(input, "AutoScalingGroupName").unwrap_or_default();
    let force = input
        .get("ForceDelete")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    store.write(|tx| {
        let mut g = require(tx, ctx, name)?;
        if g.deleting {
            return Ok(json!({}));
        }
        let members = fleet::members(tx, &g)?;
        if !members.is_empty() && !force {
            return Err(ApiError::new(
                "ResourceInUse",
                "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.",
            ));
        }
        if members.is_empty() {
            tx.prepare_cached("DELETE FROM auto_scaling_groups WHERE arn = ?1")?
                .execute([&g.arn])?;
            return Ok(json!({}));
        }
        // Its instances are terminated by the fleet, protected or not; the
        // group goes when the last one has.
        g.deleting = true;
        g.warm_pool = None;
        save(tx, &g)?;
        fleet::unprotect_all(tx, &g)?;
        Ok(json!({}))
    })
}

pub fn terminate_instance(a: &super::Autoscaling, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    let id = str_of(input, "InstanceId").unwrap_or_default().to_string();
    let decrement = input
        .get("ShouldDecrementDesiredCapacity")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let out = a.store.write(|tx| {
        let inst = fleet::load_instance(tx, &id)?
            .filter(|i| i.account == ctx.account && i.region == ctx.region && i.live())
            .filter(|i| i.group_name.is_some())
            .ok_or_else(|| {
                validation(format!(
                    "Instance Id not found - No managed instance found for instance ID: {id}"
                ))
            })?;
        let mut g = require(tx, ctx, inst.group_name.as_deref().unwrap_or_default())?;
        if decrement && !inst.warm() {
            if g.desired <= g.min {
                return Err(validation(format!(
                    "Currently, desiredSize equals minSize ({}). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.",
                    g.min
                )));
            }
            g.desired -= 1;
            save(tx, &g)?;
        }
        let cause = format!(
            "At {} instance {id} was taken out of service in response to a user request{}.",
            when(ctx.now_millis()),
            if decrement {
                ", shrinking the capacity"
            } else {
                ""
            }
        );
        let activity = fleet::terminate(tx, &g, &inst, &cause, ctx.now_millis())?;
        Ok(json!({"Activity": activity_json(&g.arn, &activity)}))
    })?;
    a.bus.wake(crate::events::Topic::Tasks);
    Ok(out)
}

pub fn set_instance_protection(store: &Store, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    let name = str_of(input, "AutoScalingGroupName").unwrap_or_default();
    let protect = input
        .get("ProtectedFromScaleIn")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let ids = strs(input.get("InstanceIds"));
    if ids.len() > 50 {
        return Err(ApiError::new(
            "LimitExceeded",
            "You can protect at most 50 instances in one call.",
        ));
    }
    store.write(|tx| {
        let g = require(tx, ctx, name)?;
        for id in &ids {
            let ok = fleet::load_instance(tx, id)?
                .is_some_and(|i| i.live() && i.group_name.as_deref() == Some(g.name.as_str()));
            if !ok {
                return Err(validation(format!(
                    "The instance {id} is not part of Auto Scaling group {}.",
                    g.name
                )));
            }
        }
        for id in &ids {
            fleet::set_protected(tx, id, protect)?;
        }
        Ok(json!({}))
    })
}

/// One `Instance` of a group's description.
pub fn instance_json(i: &InstanceRow) -> Value {
    json!({
        "InstanceId": i.id,
        "InstanceType": i.instance_type,
        "AvailabilityZone": i.az,
        "LifecycleState": i.lifecycle,
        "HealthStatus": "Healthy",
        "LaunchTemplate": i.launch_template,
        "ProtectedFromScaleIn": i.protected,
    })
}

fn render(conn: &Connection, g: &GroupRow, with_instances: bool) -> ApiResult<Value> {
    let members = fleet::members(conn, g)?;
    let tags: Vec<Value> = g
        .doc
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| {
            json!({
                "Key": t.get("Key"),
                "Value": t.get("Value").cloned().unwrap_or(json!("")),
                "PropagateAtLaunch": t.get("PropagateAtLaunch").cloned().unwrap_or(json!(false)),
                "ResourceId": g.name,
                "ResourceType": "auto-scaling-group",
            })
        })
        .collect();
    let mut v = json!({
        "AutoScalingGroupName": g.name,
        "AutoScalingGroupARN": g.arn,
        "MinSize": g.min,
        "MaxSize": g.max,
        "DesiredCapacity": g.desired,
        "DefaultCooldown": g.doc.get("DefaultCooldown").cloned().unwrap_or(json!(300)),
        "AvailabilityZones": zones(&g.doc, &g.region),
        "LoadBalancerNames": [],
        "TargetGroupARNs": [],
        "HealthCheckType": g.doc.get("HealthCheckType").cloned().unwrap_or(json!("EC2")),
        "HealthCheckGracePeriod": g.doc.get("HealthCheckGracePeriod").cloned().unwrap_or(json!(0)),
        "CreatedTime": iso_time(g.created_at),
        "SuspendedProcesses": [],
        "EnabledMetrics": [],
        "Tags": tags,
        "TerminationPolicies": g.doc.get("TerminationPolicies").cloned().unwrap_or(json!(["Default"])),
        "NewInstancesProtectedFromScaleIn": protects_new_instances(g),
        "ServiceLinkedRoleARN": format!("arn:aws:iam::{}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling", g.account),
        "CapacityRebalance": g.doc.get("CapacityRebalance").cloned().unwrap_or(json!(false)),
    });
    if with_instances {
        v["Instances"] = Value::Array(
            members
                .iter()
                .filter(|i| !i.warm())
                .map(instance_json)
                .collect(),
        );
    }
    for k in [
        "LaunchTemplate",
        "MixedInstancesPolicy",
        "VPCZoneIdentifier",
    ] {
        if let Some(x) = g.doc.get(k) {
            v[k] = x.clone();
        }
    }
    if let Some(w) = &g.warm_pool {
        v["WarmPoolConfiguration"] = w.clone();
        v["WarmPoolSize"] = json!(members.iter().filter(|i| i.warm()).count());
    }
    if g.deleting {
        v["Status"] = json!("Delete in progress");
    }
    Ok(v)
}

fn max_records(input: &Value, default: usize) -> usize {
    int_of(input, "MaxRecords").map_or(default, |n| n.clamp(1, 100) as usize)
}

fn page_start(input: &Value) -> ApiResult<usize> {
    match str_of(input, "NextToken") {
        None | Some("") => Ok(0),
        Some(t) => crate::paging::offset(t, "autoscaling")
            .ok_or_else(|| ApiError::new("InvalidNextToken", "The token is not valid.")),
    }
}

fn page(items: Vec<Value>, start: usize, size: usize) -> (Vec<Value>, Option<String>) {
    crate::paging::offset_page(items, start, size, "autoscaling")
}

fn tag_matches(g: &GroupRow, filter: &Value) -> bool {
    let name = str_of(filter, "Name").unwrap_or_default();
    let values = strs(filter.get("Values"));
    let tags: Vec<(&str, &str)> = g
        .doc
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| {
            (
                str_of(t, "Key").unwrap_or(""),
                str_of(t, "Value").unwrap_or(""),
            )
        })
        .collect();
    if let Some(key) = name.strip_prefix("tag:") {
        tags.iter().any(|(k, v)| *k == key && values.contains(v))
    } else if name == "tag-key" {
        tags.iter().any(|(k, _)| values.contains(k))
    } else {
        tags.iter().any(|(_, v)| values.contains(v))
    }
}

pub fn describe(store: &Store, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    let names = strs(input.get("AutoScalingGroupNames"));
    let filters: Vec<Value> = input
        .get("Filters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for f in &filters {
        let n = str_of(f, "Name").unwrap_or_default();
        if !(n.starts_with("tag:") || n == "tag-key" || n == "tag-value") {
            return Err(validation(format!("The filter name {n} is not valid.")));
        }
    }
    let with_instances = input
        .get("IncludeInstances")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let start = page_start(input)?;
    let rendered = store.read(|conn| {
        list(conn, ctx)?
            .into_iter()
            .filter(|g| names.is_empty() || names.contains(&g.name.as_str()))
            .filter(|g| filters.iter().all(|f| tag_matches(g, f)))
            .map(|g| render(conn, &g, with_instances))
            .collect::<ApiResult<Vec<_>>>()
    })?;
    let (items, token) = page(rendered, start, max_records(input, 50));
    let mut out = json!({"AutoScalingGroups": items});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

pub fn describe_instances(store: &Store, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    let ids = strs(input.get("InstanceIds"));
    let start = page_start(input)?;
    let rows = store.read(|conn| fleet::managed_instances(conn, &ctx.account, &ctx.region))?;
    let items: Vec<Value> = rows
        .iter()
        .filter(|i| ids.is_empty() || ids.contains(&i.id.as_str()))
        .map(|i| {
            json!({
                "InstanceId": i.id,
                "InstanceType": i.instance_type,
                "AutoScalingGroupName": i.group_name,
                "AvailabilityZone": i.az,
                "LifecycleState": i.lifecycle,
                "HealthStatus": "HEALTHY",
                "LaunchTemplate": i.launch_template,
                "ProtectedFromScaleIn": i.protected,
            })
        })
        .collect();
    let (items, token) = page(items, start, max_records(input, 50));
    let mut out = json!({"AutoScalingInstances": items});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

/// A scaling activity as stored.
#[derive(Debug, Clone)]
pub struct Activity {
    pub id: String,
    pub group_name: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub status: String,
    pub description: String,
    pub cause: String,
    pub details: String,
}

pub fn activity_json(group_arn: &str, a: &Activity) -> Value {
    let mut v = json!({
        "ActivityId": a.id,
        "AutoScalingGroupName": a.group_name,
        "AutoScalingGroupARN": group_arn,
        "Description": a.description,
        "Cause": a.cause,
        "StartTime": iso_time(a.started_at),
        "StatusCode": a.status,
        "Progress": if a.ended_at.is_some() { 100 } else { 50 },
        "Details": a.details,
    });
    if let Some(e) = a.ended_at {
        v["EndTime"] = json!(iso_time(e));
    }
    v
}

/// Record an activity of `g`; `ended` when it completed at once.
#[allow(clippy::too_many_arguments)]
pub fn record_activity(
    tx: &Connection,
    g: &GroupRow,
    description: &str,
    cause: &str,
    status: &str,
    az: Option<&str>,
    now_ms: i64,
    ended: bool,
) -> ApiResult<Activity> {
    let mut details = Map::new();
    if let Some(az) = az {
        if let Some(s) = subnet_of(&g.doc, &g.region, az) {
            details.insert("Subnet ID".into(), json!(s));
        }
        details.insert("Availability Zone".into(), json!(az));
    }
    let a = Activity {
        id: uuid::Uuid::new_v4().to_string(),
        group_name: g.name.clone(),
        started_at: now_ms,
        ended_at: ended.then_some(now_ms),
        status: status.into(),
        description: description.into(),
        cause: cause.into(),
        details: Value::Object(details).to_string(),
    };
    tx.prepare_cached(
        "INSERT INTO scaling_activities (id, account, region, group_name, started_at, ended_at,
            status, description, cause, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        a.id,
        g.account,
        g.region,
        a.group_name,
        a.started_at,
        a.ended_at,
        a.status,
        a.description,
        a.cause,
        a.details
    ])?;
    Ok(a)
}

pub fn describe_activities(store: &Store, ctx: &Ctx, input: &Value) -> ApiResult<Value> {
    let group = str_of(input, "AutoScalingGroupName");
    let ids = strs(input.get("ActivityIds"));
    let start = page_start(input)?;
    let items = store.read(|conn| {
        let mut arns = std::collections::HashMap::new();
        if let Some(name) = group {
            let g = require(conn, ctx, name)?;
            arns.insert(g.name.clone(), g.arn.clone());
        } else {
            for g in list(conn, ctx)? {
                arns.insert(g.name.clone(), g.arn.clone());
            }
        }
        let rows: Vec<Activity> = conn
            .prepare_cached(
                "SELECT id, group_name, started_at, ended_at, status, description, cause, details
                 FROM scaling_activities WHERE account = ?1 AND region = ?2
                 ORDER BY started_at DESC, rowid DESC",
            )?
            .query_map(params![ctx.account, ctx.region], |r| {
                Ok(Activity {
                    id: r.get(0)?,
                    group_name: r.get(1)?,
                    started_at: r.get(2)?,
                    ended_at: r.get(3)?,
                    status: r.get(4)?,
                    description: r.get(5)?,
                    cause: r.get(6)?,
                    details: r.get(7)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows
            .iter()
            .filter(|a| arns.contains_key(&a.group_name))
            .filter(|a| ids.is_empty() || ids.contains(&a.id.as_str()))
            .map(|a| activity_json(&arns[&a.group_name], a))
            .collect::<Vec<_>>())
    })?;
    let (items, token) = page(items, start, max_records(input, 100));
    let mut out = json!({"Activities": items});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}
