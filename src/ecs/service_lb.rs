//! Services behind load balancers: ECS's side of the integration with
//! Elastic Load Balancing (table `service_targets`).
//!
//! * `check`: a service's `loadBalancers` checked as ECS checks them (the
//!   target group exists and has a load balancer, its target type fits
//!   the network mode, the container and port are in the task definition).
//! * The scheduler registers each RUNNING task of the service as a target
//!   of each of its target groups (an `awsvpc` task by its IP and the
//!   container port; a `bridge` or `host` task by its instance and the host
//!   port bound to the container port), and counts a task healthy only
//!   once every target of it is healthy.
//! * A task the scheduler stops is deregistered first; it stops once the
//!   target groups' deregistration delay has passed, so requests in
//!   flight finish (the row waits in state `deregistering`, and the task
//!   counts as stopping meanwhile). A task that stops for any other reason
//!   is deregistered when the scheduler sees it gone.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::instances;
use super::shapes::{LoadBalancer, NetworkMode, Service, TaskStopCode};
use super::taskdefs;
use super::tasks;
use crate::context::Ctx;
use crate::elb;
use crate::elb::shapes::{TargetDescription, TargetHealthStateEnum, TargetTypeEnum};
use crate::error::{ApiError, ApiResult};

/// ECS's limit of load balancers (target groups) on one service.
const MAX_LOAD_BALANCERS: usize = 5;

/// One target of one task, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskTarget {
    pub task_arn: String,
    pub target_group_arn: String,
    pub target_id: String,
    pub port: u16,
    /// Still registered, or deregistering until `until_ms`.
    pub deregistering: bool,
    pub until_ms: Option<i64>,
    /// Why the task stops once deregistered.
    pub stop_code: Option<String>,
    pub stop_reason: Option<String>,
}

/// A task's health as its target groups see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbHealth {
    /// Not registered yet, or not yet checked.
    Pending,
    Healthy,
    /// Failing the health checks of this target group.
    Unhealthy,
}

/// `loadBalancers` of a service checked against its task definition and
/// the target groups, as ECS checks them.
pub fn check(conn: &Connection, ctx: &Ctx, s: &Service) -> ApiResult<()> {
    let lbs = s.load_balancers.as_deref().unwrap_or(&[]);
    if lbs.is_empty() {
        return Ok(());
    }
    if lbs.len() > MAX_LOAD_BALANCERS {
        return Err(ApiError::invalid_parameter(format!(
            "A service can have at most {MAX_LOAD_BALANCERS} load balancers."
        )));
    }
    check_advanced(conn, s, lbs)?;
    let td_arn = s.task_definition.clone().unwrap_or_default();
    let td = taskdefs::resolve_active(conn, ctx, &td_arn)?;
    let mode = td.doc.network_mode.unwrap_or(NetworkMode::Bridge);
    for lb in lbs {
        if lb.load_balancer_name.is_some() {
            return Err(ApiError::invalid_parameter(
                "Classic Load Balancers are not supported by Berth: give a targetGroupArn.",
            ));
        }
        let tg_arn = lb.target_group_arn.clone().ok_or_else(|| {
            ApiError::invalid_parameter("loadBalancers.targetGroupArn must be specified.")
        })?;
        if let Some(alternate) = lb
            .advanced_configuration
            .as_ref()
            .and_then(|a| a.alternate_target_group_arn.clone())
        {
            check_target_type(conn, ctx, &alternate, mode)?;
        }
        check_target_type(conn, ctx, &tg_arn, mode)?;
        if elb::listeners::load_balancers_using(conn, &tg_arn)?.is_empty() {
            return Err(ApiError::invalid_parameter(format!(
                "The target group with targetGroupArn {tg_arn} does not have an associated load balancer."
            )));
        }
        let name = lb.container_name.clone().unwrap_or_default();
        let port = lb.container_port.unwrap_or(0);
        let container = td
            .doc
            .container_definitions
            .iter()
            .flatten()
            .find(|c| c.name.as_deref() == Some(name.as_str()))
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "The container {name} does not exist in the task definition."
                ))
            })?;
        let has_port = container
            .port_mappings
            .iter()
            .flatten()
            .any(|p| p.container_port == Some(port));
        if !has_port {
            return Err(ApiError::invalid_parameter(format!(
                "The container {name} did not have a container port {port} defined."
            )));
        }
    }
    Ok(())
}

/// A target group exists in the caller's account and region and its
/// target type fits the network mode.
fn check_target_type(
    conn: &Connection,
    ctx: &Ctx,
    tg_arn: &str,
    mode: NetworkMode,
) -> ApiResult<()> {
    let tg = elb::target_groups::load(conn, tg_arn)?
        .filter(|t| t.account == ctx.account && t.region == ctx.region)
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "Unable to assume role and validate the specified targetGroupArn. Please verify that the ECS service role being passed has the proper permissions. ({tg_arn} was not found.)"
            ))
        })?;
    let kind = tg.target_type();
    if (mode == NetworkMode::Awsvpc) != (kind == TargetTypeEnum::Ip) {
        return Err(ApiError::invalid_parameter(format!(
            "The provided target group {tg_arn} has target type {}, which is incompatible with the {} network mode specified in the task definition.",
            kind.as_str(),
            mode.as_str()
        )));
    }
    Ok(())
}

/// The advanced configuration of `lbs` (blue/green, linear and canary
/// deployments), checked as ECS checks it.
fn check_advanced(conn: &Connection, s: &Service, lbs: &[LoadBalancer]) -> ApiResult<()> {
    let with = lbs
        .iter()
        .filter(|l| l.advanced_configuration.is_some())
        .count();
    if super::services::shifts_traffic(s) && with < lbs.len() {
        return Err(ApiError::invalid_parameter(
            "advancedConfiguration field is required for all loadBalancers when using a non-ROLLING deployment strategy",
        ));
    }
    if with != 0 && with != lbs.len() {
        return Err(ApiError::invalid_parameter(
            "Either all or none of the provided loadBalancers must have advancedConfiguration defined",
        ));
    }
    let mut groups: Vec<&str> = Vec::new();
    for lb in lbs {
        groups.extend(lb.target_group_arn.as_deref());
        let Some(adv) = &lb.advanced_configuration else {
            continue;
        };
        let alternate = adv.alternate_target_group_arn.as_deref().ok_or_else(|| {
            ApiError::invalid_parameter(
                "advancedConfiguration.alternateTargetGroupArn must be specified.",
            )
        })?;
        groups.push(alternate);
        let production = adv.production_listener_rule.as_deref().ok_or_else(|| {
            ApiError::invalid_parameter(
                "advancedConfiguration.productionListenerRule must be specified.",
            )
        })?;
        for rule in [Some(production), adv.test_listener_rule.as_deref()]
            .into_iter()
            .flatten()
        {
            if !rule.contains(":listener-rule/") {
                return Err(ApiError::invalid_parameter(format!(
                    "{} has an invalid ARN format. Must be RuleArn for ALB or ListenerArn for NLB.",
                    if rule == production {
                        "productionListenerRule"
                    } else {
                        "testListenerRule"
                    }
                )));
            }
            if elb::listeners::forward_weights(conn, rule)?.is_none() {
                return Err(ApiError::invalid_parameter(format!(
                    "The listener rule {rule} does not exist or does not forward to target groups."
                )));
            }
        }
        if adv.test_listener_rule.as_deref() == Some(production) {
            return Err(ApiError::invalid_parameter(format!(
                "The following rules cannot be used as both production and test listener rules: {production}"
            )));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for g in groups {
        if !seen.insert(g) {
            return Err(ApiError::invalid_parameter(format!(
                "Duplicate targetGroupArn found: {g}"
            )));
        }
    }
    Ok(())
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<TaskTarget> {
    Ok(TaskTarget {
        task_arn: r.get(0)?,
        target_group_arn: r.get(1)?,
        target_id: r.get(2)?,
        port: r.get::<_, i64>(3)? as u16,
        deregistering: r.get::<_, String>(4)? == "deregistering",
        until_ms: r.get(5)?,
        stop_code: r.get(6)?,
        stop_reason: r.get(7)?,
    })
}

/// Every target recorded for the service's tasks.
pub fn of_service(conn: &Connection, service_arn: &str) -> ApiResult<Vec<TaskTarget>> {
    Ok(conn
        .prepare_cached(
            "SELECT task_arn, target_group_arn, target_id, port, state, until_ms, stop_code, stop_reason
             FROM service_targets WHERE service_arn = ?1 ORDER BY task_arn, target_group_arn",
        )?
        .query_map([service_arn], row)?
        .collect::<Result<_, _>>()?)
}

/// The health of each task's targets: healthy when every target is,
/// unhealthy (with the target group) when any fails its checks.
/// The target that fails a task's load balancer health checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Failing {
    pub target_group_arn: String,
    pub port: u16,
    /// ALB's description of the failure ("Health checks failed with these
    /// codes: [500]").
    pub reason: String,
}

/// Per task, the health of its targets, and the target failing it.
pub fn health(
    conn: &Connection,
    targets: &[TaskTarget],
) -> ApiResult<HashMap<String, (LbHealth, Option<Failing>)>> {
    let mut out: HashMap<String, (LbHealth, Option<Failing>)> = HashMap::new();
    for t in targets.iter().filter(|t| !t.deregistering) {
        let row = elb::targets::health_of(conn, &t.target_group_arn, &t.target_id, t.port)?;
        let state = row.as_ref().map(|r| r.state);
        let h = match state {
            Some(TargetHealthStateEnum::Healthy)
            | Some(TargetHealthStateEnum::Unavailable)
            | Some(TargetHealthStateEnum::Unused) => LbHealth::Healthy,
            Some(TargetHealthStateEnum::Unhealthy) => LbHealth::Unhealthy,
            _ => LbHealth::Pending,
        };
        let e = out
            .entry(t.task_arn.clone())
            .or_insert((LbHealth::Healthy, None));
        match (e.0, h) {
            (_, LbHealth::Unhealthy) => {
                let why = row
                    .and_then(|r| r.description)
                    .unwrap_or_else(|| "Health checks failed".to_string());
                let failing = Failing {
                    target_group_arn: t.target_group_arn.clone(),
                    port: t.port,
                    reason: why,
                };
                *e = (LbHealth::Unhealthy, Some(failing))
            }
            (LbHealth::Healthy, LbHealth::Pending) => e.0 = LbHealth::Pending,
            _ => {}
        }
    }
    Ok(out)
}

/// The targets a RUNNING task makes, one per load balancer of the
/// service: `None` while what they need (its address, its bound port) is
/// not known yet.
fn targets_of(
    conn: &Connection,
    lbs: &[LoadBalancer],
    task: &tasks::TaskRow,
) -> ApiResult<Option<Vec<(String, String, u16)>>> {
    let ip = task
        .doc
        .attachments
        .iter()
        .flatten()
        .flat_map(|a| a.details.iter().flatten())
        .find(|d| d.name.as_deref() == Some("privateIPv4Address"))
        .and_then(|d| d.value.clone());
    let instance = match &task.doc.container_instance_arn {
        Some(ci) => instances::load(conn, ci)?.map(|i| i.ec2_instance_id),
        None => None,
    };
    let mut out = Vec::new();
    for lb in lbs {
        let (Some(tg), Some(name), Some(port)) = (
            lb.target_group_arn.clone(),
            lb.container_name.as_deref(),
            lb.container_port,
        ) else {
            continue;
        };
        let target = match &ip {
            Some(ip) => Some((ip.clone(), port as u16)),
            None => {
                let host_port = task
                    .doc
                    .containers
                    .iter()
                    .flatten()
                    .filter(|c| c.name.as_deref() == Some(name))
                    .flat_map(|c| c.network_bindings.iter().flatten())
                    .find(|b| b.container_port == Some(port))
                    .and_then(|b| b.host_port);
                match (&instance, host_port) {
                    (Some(i), Some(p)) => Some((i.clone(), p as u16)),
                    _ => None,
                }
            }
        };
        match target {
            Some((id, port)) => out.push((tg, id, port)),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// Register a RUNNING task's targets; returns, per target group, how many
/// were registered. A target group that refuses (deleted since) is left
/// out with the reason.
pub fn register(
    conn: &Connection,
    ctx: &Ctx,
    service_arn: &str,
    lbs: &[LoadBalancer],
    task_arn: &str,
) -> ApiResult<Vec<Result<String, String>>> {
    let Some(task) = tasks::load(conn, task_arn)? else {
        return Ok(vec![]);
    };
    let Some(targets) = targets_of(conn, lbs, &task)? else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for (tg, id, port) in targets {
        let desc = TargetDescription {
            id: id.clone(),
            port: Some(port as i64),
            ..Default::default()
        };
        match elb::targets::register_in(conn, &instances::LoadBalancerInstances, ctx, &tg, &[desc])
        {
            Ok(()) => {
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO service_targets
                        (task_arn, service_arn, target_group_arn, target_id, port, state)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'registered')",
                )?
                .execute(params![task_arn, service_arn, tg, id, port as i64])?;
                out.push(Ok(tg));
            }
            Err(e) => out.push(Err(format!("{tg}: {}", e.message))),
        }
    }
    Ok(out)
}

/// Deregister a task's targets. With `then_stop`, the task is stopped
/// (with that code and reason) once the longest deregistration delay of
/// its groups has passed: returns when, or `None` when nothing was
/// registered (the caller stops it now). Without, the records are
/// forgotten (the task is stopping or gone already).
pub fn deregister(
    conn: &Connection,
    ctx: &Ctx,
    task_arn: &str,
    targets: &[TaskTarget],
    then_stop: Option<(TaskStopCode, &str)>,
) -> ApiResult<(Option<i64>, Vec<String>)> {
    let mine: Vec<&TaskTarget> = targets
        .iter()
        .filter(|t| t.task_arn == task_arn && !t.deregistering)
        .collect();
    let mut groups = Vec::new();
    let mut until = None;
    for t in &mine {
        let delay = match elb::target_groups::load(conn, &t.target_group_arn)? {
            Some(g) => {
                let n = elb::targets::deregister_in(
                    conn,
                    ctx,
                    &t.target_group_arn,
                    &[(t.target_id.clone(), Some(t.port))],
                    false,
                )?;
                if n > 0 {
                    groups.push(t.target_group_arn.clone());
                }
                g.number("deregistration_delay.timeout_seconds", 300) as i64 * 1000
            }
            None => 0,
        };
        let t_until = ctx.now_millis() + delay;
        until = Some(until.map_or(t_until, |u: i64| u.max(t_until)));
    }
    match then_stop {
        Some((code, reason)) if !mine.is_empty() => {
            conn.prepare_cached(
                "UPDATE service_targets SET state = 'deregistering', until_ms = ?2, stop_code = ?3, stop_reason = ?4
                 WHERE task_arn = ?1",
            )?
            .execute(params![task_arn, until, code.as_str(), reason])?;
            Ok((until, groups))
        }
        _ => {
            forget(conn, task_arn)?;
            Ok((None, groups))
        }
    }
}

/// Forget the records of a task (deregistered and stopped).
pub fn forget(conn: &Connection, task_arn: &str) -> ApiResult<()> {
    conn.prepare_cached("DELETE FROM service_targets WHERE task_arn = ?1")?
        .execute([task_arn])?;
    Ok(())
}
