//! Auto Scaling groups: their rows, their configuration as the planner sees
//! it, and the group operations of the API. A group's desired capacity is
//! what the API changes; the fleet (`fleet.rs`) launches and terminates
//! instances to match it.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::fleet::{self, InstanceRow};
use super::plan::{Distribution, GroupSpec, PoolState, SpotStrategy, WarmPool};
use super::shapes::{
    AutoScalingGroup, AutoScalingGroupNamesType, CreateAutoScalingGroupType,
    DeleteAutoScalingGroupType, DescribeAutoScalingInstancesType, DescribeScalingActivitiesType,
    Filter, LaunchTemplateSpecification, MixedInstancesPolicy, SetDesiredCapacityType,
    SetInstanceProtectionQuery, Tag, TagDescription, TerminateInstanceInAutoScalingGroupType,
    UpdateAutoScalingGroupType, WarmPoolConfiguration, WarmPoolState,
};
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
    /// The configuration as given.
    pub doc: GroupConfig,
    /// The `WarmPoolConfiguration`, when the group has a warm pool.
    pub warm_pool: Option<WarmPoolConfiguration>,
    pub deleting: bool,
}

/// What a group keeps of its configuration (as `CreateAutoScalingGroup`
/// and `UpdateAutoScalingGroup` give it), and the cause of its last change
/// of desired capacity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_template: Option<LaunchTemplateSpecification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixed_instances_policy: Option<MixedInstancesPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub availability_zones: Vec<String>,
    #[serde(
        rename = "VPCZoneIdentifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub vpc_zone_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_instances_protected_from_scale_in: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_cooldown: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_grace_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_policies: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_rebalance: Option<bool>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The cause of the last change of desired capacity (never rendered):
    /// the fleet names it as the cause of the launches and terminations
    /// that follow.
    #[serde(
        rename = "berthLastCause",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_cause: Option<String>,
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

/// The launch template specification a group launches from.
pub fn template_spec(doc: &GroupConfig) -> Option<&LaunchTemplateSpecification> {
    doc.launch_template.as_ref().or_else(|| {
        doc.mixed_instances_policy
            .as_ref()?
            .launch_template
            .as_ref()?
            .launch_template_specification
            .as_ref()
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
pub fn resolve_launch(conn: &Connection, ctx: &Ctx, doc: &GroupConfig) -> ApiResult<Launch> {
    let spec = template_spec(doc).ok_or_else(|| {
        validation("Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.")
    })?;
    let lookup = serde_json::to_value(spec).expect("a specification serialises");
    let t = launch_templates::find(conn, ctx, &lookup).map_err(|e| {
        let which = spec
            .launch_template_name
            .as_ref()
            .map(|n| format!("with template name {n}"))
            .or_else(|| {
                spec.launch_template_id
                    .as_ref()
                    .map(|i| format!("with template id {i}"))
            })
            .unwrap_or_else(|| "named".into());
        if e.code == "MissingParameter" {
            bad_template("The launch template specification must name a template by LaunchTemplateId or LaunchTemplateName.".into())
        } else {
            bad_template(format!("The specified launch template, {which}, does not exist."))
        }
    })?;
    let version = spec.version.as_deref().unwrap_or("$Default");
    let v = launch_templates::resolve_version(conn, &t, version).map_err(|_| {
        bad_template(format!(
            "The specified version {version} for launch template {} does not exist.",
            t.id
        ))
    })?;
    let overrides: Vec<String> = doc
        .mixed_instances_policy
        .as_ref()
        .and_then(|m| m.launch_template.as_ref())
        .and_then(|l| l.overrides.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|o| o.instance_type.clone())
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
    if spot && doc.mixed_instances_policy.is_some() {
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
pub fn zones(doc: &GroupConfig, region: &str) -> Vec<String> {
    if !doc.availability_zones.is_empty() {
        return doc.availability_zones.clone();
    }
    subnets(doc)
        .iter()
        .enumerate()
        .map(|(i, _)| format!("{region}{}", (b'a' + (i % 6) as u8) as char))
        .collect()
}

fn subnets(doc: &GroupConfig) -> Vec<String> {
    doc.vpc_zone_identifier
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The zone's subnet, for activity details.
fn subnet_of(doc: &GroupConfig, region: &str, az: &str) -> Option<String> {
    let z = zones(doc, region);
    let i = z.iter().position(|x| x == az)?;
    subnets(doc).get(i).cloned()
}

pub fn warm_pool(v: &WarmPoolConfiguration) -> WarmPool {
    WarmPool {
        min_size: v.min_size.unwrap_or(0),
        max_prepared: v.max_group_prepared_capacity.filter(|n| *n >= 0),
        pool_state: match v.pool_state {
            Some(WarmPoolState::Running) => PoolState::Running,
            _ => PoolState::Stopped,
        },
        reuse_on_scale_in: v
            .instance_reuse_policy
            .as_ref()
            .and_then(|p| p.reuse_on_scale_in)
            .unwrap_or(false),
    }
}

/// The group's configuration for the planner.
pub fn spec(g: &GroupRow, launch: &Launch) -> GroupSpec {
    let distribution = g.doc.mixed_instances_policy.as_ref().map(|m| {
        let d = m.instances_distribution.clone().unwrap_or_default();
        Distribution {
            on_demand_base: d.on_demand_base_capacity.unwrap_or(0),
            on_demand_percentage: d.on_demand_percentage_above_base_capacity.unwrap_or(100),
            spot_strategy: match d.spot_allocation_strategy.as_deref() {
                Some("lowest-price") => SpotStrategy::LowestPrice,
                _ => SpotStrategy::Diversified,
            },
        }
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
    g.doc.new_instances_protected_from_scale_in.unwrap_or(false)
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

fn check_config(conn: &Connection, ctx: &Ctx, doc: &GroupConfig) -> ApiResult<Launch> {
    if doc.launch_template.is_some() && doc.mixed_instances_policy.is_some() {
        return Err(validation(
            "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.",
        ));
    }
    if zones(doc, &ctx.region).is_empty() {
        return Err(validation(
            "At least one Availability Zone or VPC Subnet is required.",
        ));
    }
    if let Some(z) = doc
        .availability_zones
        .iter()
        .find(|z| !z.starts_with(ctx.region.as_str()))
    {
        return Err(validation(format!("Invalid Availability Zone: {z}")));
    }
    resolve_launch(conn, ctx, doc)
}

pub fn create(store: &Store, ctx: &Ctx, req: CreateAutoScalingGroupType) -> ApiResult<Value> {
    let name = req.auto_scaling_group_name.clone();
    if req.launch_configuration_name.is_some() || req.instance_id.is_some() {
        return Err(validation(
            "Berth launches instances from launch templates: use LaunchTemplate or MixedInstancesPolicy (launch configurations and InstanceId are not supported).",
        ));
    }
    let (min, max) = (req.min_size, req.max_size);
    let desired = req.desired_capacity.unwrap_or(min);
    check_bounds(min, max, desired)?;
    let doc = GroupConfig {
        launch_template: req.launch_template,
        mixed_instances_policy: req.mixed_instances_policy,
        availability_zones: req.availability_zones.unwrap_or_default(),
        vpc_zone_identifier: req.vpc_zone_identifier,
        new_instances_protected_from_scale_in: req.new_instances_protected_from_scale_in,
        default_cooldown: req.default_cooldown,
        health_check_type: req.health_check_type,
        health_check_grace_period: req.health_check_grace_period,
        termination_policies: req.termination_policies,
        capacity_rebalance: req.capacity_rebalance,
        tags: req.tags.unwrap_or_default(),
        last_cause: None,
    };
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
            serde_json::to_string(&doc)?
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
        serde_json::to_string(&g.doc)?,
        g.warm_pool
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?,
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
    g.doc.last_cause = Some(cause);
    save(tx, g)
}

/// The cause of the last change of desired capacity, if any.
pub fn last_cause(g: &GroupRow) -> Option<&str> {
    g.doc.last_cause.as_deref()
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

pub fn update(store: &Store, ctx: &Ctx, req: UpdateAutoScalingGroupType) -> ApiResult<Value> {
    store.write(|tx| {
        let mut g = require(tx, ctx, &req.auto_scaling_group_name)?;
        guard_deleting(&g)?;
        let mut doc = g.doc.clone();
        // A new launch template replaces a mixed policy, and the reverse.
        if let Some(t) = &req.launch_template {
            doc.launch_template = Some(t.clone());
            doc.mixed_instances_policy = None;
        } else if let Some(m) = &req.mixed_instances_policy {
            doc.mixed_instances_policy = Some(m.clone());
            doc.launch_template = None;
        }
        match (&req.availability_zones, &req.vpc_zone_identifier) {
            (Some(z), _) => doc.availability_zones = z.clone(),
            (None, Some(_)) => doc.availability_zones.clear(),
            (None, None) => {}
        }
        if req.vpc_zone_identifier.is_some() {
            doc.vpc_zone_identifier = req.vpc_zone_identifier.clone();
        }
        let or = |new: &Option<i64>, old: Option<i64>| new.or(old);
        doc.new_instances_protected_from_scale_in = req
            .new_instances_protected_from_scale_in
            .or(doc.new_instances_protected_from_scale_in);
        doc.default_cooldown = or(&req.default_cooldown, doc.default_cooldown);
        doc.health_check_type = req.health_check_type.clone().or(doc.health_check_type);
        doc.health_check_grace_period = or(
            &req.health_check_grace_period,
            doc.health_check_grace_period,
        );
        doc.termination_policies = req
            .termination_policies
            .clone()
            .or(doc.termination_policies);
        doc.capacity_rebalance = req.capacity_rebalance.or(doc.capacity_rebalance);
        check_config(tx, ctx, &doc)?;
        let min = req.min_size.unwrap_or(g.min);
        let max = req.max_size.unwrap_or(g.max);
        let desired = match req.desired_capacity {
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

pub fn set_desired_capacity(
    store: &Store,
    ctx: &Ctx,
    req: SetDesiredCapacityType,
) -> ApiResult<Value> {
    let desired = req.desired_capacity;
    store.write(|tx| {
        let mut g = require(tx, ctx, &req.auto_scaling_group_name)?;
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

pub fn delete(store: &Store, ctx: &Ctx, req: DeleteAutoScalingGroupType) -> ApiResult<Value> {
    let force = req.force_delete.unwrap_or(false);
    store.write(|tx| {
        let mut g = require(tx, ctx, &req.auto_scaling_group_name)?;
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

pub fn terminate_instance(
    a: &super::Autoscaling,
    ctx: &Ctx,
    req: TerminateInstanceInAutoScalingGroupType,
) -> ApiResult<Value> {
    let id = req.instance_id;
    let decrement = req.should_decrement_desired_capacity;
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

pub fn set_instance_protection(
    store: &Store,
    ctx: &Ctx,
    req: SetInstanceProtectionQuery,
) -> ApiResult<Value> {
    let name = req.auto_scaling_group_name.as_str();
    let protect = req.protected_from_scale_in;
    let ids = &req.instance_ids;
    if ids.len() > 50 {
        return Err(ApiError::new(
            "LimitExceeded",
            "You can protect at most 50 instances in one call.",
        ));
    }
    store.write(|tx| {
        let g = require(tx, ctx, name)?;
        for id in ids {
            let ok = fleet::load_instance(tx, id)?
                .is_some_and(|i| i.live() && i.group_name.as_deref() == Some(g.name.as_str()));
            if !ok {
                return Err(validation(format!(
                    "The instance {id} is not part of Auto Scaling group {}.",
                    g.name
                )));
            }
        }
        for id in ids {
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
    let tags = g
        .doc
        .tags
        .iter()
        .map(|t| TagDescription {
            key: Some(t.key.clone()),
            value: Some(t.value.clone().unwrap_or_default()),
            propagate_at_launch: Some(t.propagate_at_launch.unwrap_or(false)),
            resource_id: Some(g.name.clone()),
            resource_type: Some("auto-scaling-group".into()),
        })
        .collect();
    let warm = members.iter().filter(|i| i.warm()).count() as i64;
    let group = AutoScalingGroup {
        auto_scaling_group_name: g.name.clone(),
        auto_scaling_group_arn: Some(g.arn.clone()),
        min_size: g.min,
        max_size: g.max,
        desired_capacity: g.desired,
        default_cooldown: g.doc.default_cooldown.unwrap_or(300),
        availability_zones: zones(&g.doc, &g.region),
        load_balancer_names: Some(Vec::new()),
        target_group_ar_ns: Some(Vec::new()),
        health_check_type: g
            .doc
            .health_check_type
            .clone()
            .unwrap_or_else(|| "EC2".into()),
        health_check_grace_period: Some(g.doc.health_check_grace_period.unwrap_or(0)),
        created_time: iso_time(g.created_at),
        suspended_processes: Some(Vec::new()),
        enabled_metrics: Some(Vec::new()),
        tags: Some(tags),
        termination_policies: Some(
            g.doc
                .termination_policies
                .clone()
                .unwrap_or_else(|| vec!["Default".into()]),
        ),
        new_instances_protected_from_scale_in: Some(protects_new_instances(g)),
        service_linked_role_arn: Some(format!("arn:aws:iam::{}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling", g.account)),
        capacity_rebalance: Some(g.doc.capacity_rebalance.unwrap_or(false)),
        launch_template: g.doc.launch_template.clone(),
        mixed_instances_policy: g.doc.mixed_instances_policy.clone(),
        vpc_zone_identifier: g.doc.vpc_zone_identifier.clone(),
        warm_pool_configuration: g.warm_pool.clone(),
        warm_pool_size: g.warm_pool.as_ref().map(|_| warm),
        status: g.deleting.then(|| "Delete in progress".to_string()),
        ..AutoScalingGroup::default()
    };
    let mut v = serde_json::to_value(group)?;
    if with_instances {
        v["Instances"] = Value::Array(
            members
                .iter()
                .filter(|i| !i.warm())
                .map(instance_json)
                .collect(),
        );
    }
    Ok(v)
}

fn max_records(given: Option<i64>, default: usize) -> usize {
    given.map_or(default, |n| n.clamp(1, 100) as usize)
}

fn page_start(token: Option<&str>) -> ApiResult<usize> {
    match token {
        None | Some("") => Ok(0),
        Some(t) => crate::paging::offset(t, "autoscaling")
            .ok_or_else(|| ApiError::new("InvalidNextToken", "The token is not valid.")),
    }
}

fn page(items: Vec<Value>, start: usize, size: usize) -> (Vec<Value>, Option<String>) {
    crate::paging::offset_page(items, start, size, "autoscaling")
}

fn tag_matches(g: &GroupRow, filter: &Filter) -> bool {
    let name = filter.name.as_deref().unwrap_or_default();
    let values: Vec<&str> = filter.values.iter().flatten().map(String::as_str).collect();
    let tags: Vec<(&str, &str)> = g
        .doc
        .tags
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_deref().unwrap_or("")))
        .collect();
    if let Some(key) = name.strip_prefix("tag:") {
        tags.iter().any(|(k, v)| *k == key && values.contains(v))
    } else if name == "tag-key" {
        tags.iter().any(|(k, _)| values.contains(k))
    } else {
        tags.iter().any(|(_, v)| values.contains(v))
    }
}

pub fn describe(store: &Store, ctx: &Ctx, req: AutoScalingGroupNamesType) -> ApiResult<Value> {
    let names = req.auto_scaling_group_names.unwrap_or_default();
    let filters = req.filters.unwrap_or_default();
    for f in &filters {
        let n = f.name.as_deref().unwrap_or_default();
        if !(n.starts_with("tag:") || n == "tag-key" || n == "tag-value") {
            return Err(validation(format!("The filter name {n} is not valid.")));
        }
    }
    let with_instances = req.include_instances.unwrap_or(true);
    let start = page_start(req.next_token.as_deref())?;
    let rendered = store.read(|conn| {
        list(conn, ctx)?
            .into_iter()
            .filter(|g| names.is_empty() || names.contains(&g.name))
            .filter(|g| filters.iter().all(|f| tag_matches(g, f)))
            .map(|g| render(conn, &g, with_instances))
            .collect::<ApiResult<Vec<_>>>()
    })?;
    let (items, token) = page(rendered, start, max_records(req.max_records, 50));
    let mut out = json!({"AutoScalingGroups": items});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

pub fn describe_instances(
    store: &Store,
    ctx: &Ctx,
    req: DescribeAutoScalingInstancesType,
) -> ApiResult<Value> {
    let ids = req.instance_ids.unwrap_or_default();
    let start = page_start(req.next_token.as_deref())?;
    let rows = store.read(|conn| fleet::managed_instances(conn, &ctx.account, &ctx.region))?;
    let items: Vec<Value> = rows
        .iter()
        .filter(|i| ids.is_empty() || ids.contains(&i.id))
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
    let (items, token) = page(items, start, max_records(req.max_records, 50));
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

pub fn describe_activities(
    store: &Store,
    ctx: &Ctx,
    req: DescribeScalingActivitiesType,
) -> ApiResult<Value> {
    let group = req.auto_scaling_group_name.as_deref();
    let ids = req.activity_ids.clone().unwrap_or_default();
    let start = page_start(req.next_token.as_deref())?;
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
            .filter(|a| ids.is_empty() || ids.contains(&a.id))
            .map(|a| activity_json(&arns[&a.group_name], a))
            .collect::<Vec<_>>())
    })?;
    let (items, token) = page(items, start, max_records(req.max_records, 100));
    let mut out = json!({"Activities": items});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}
