//! Targets: `RegisterTargets`, `DeregisterTargets`, `DescribeTargetHealth`
//! (table `elb_targets`), and the typed API the ECS service scheduler uses
//! to register its tasks and read their health.
//!
//! A target's health is one of ALB's states with its reason code: `initial`
//! (`Elb.RegistrationInProgress` until the first check, then
//! `Elb.InitialHealthChecking`), `healthy`, `unhealthy`
//! (`Target.ResponseCodeMismatch`, `Target.Timeout`,
//! `Target.FailedHealthChecks`), `unused` (`Target.NotInUse` while no
//! listener routes to its group), `unavailable` (health checks disabled)
//! and `draining` (`Target.DeregistrationInProgress`) for
//! `deregistration_delay.timeout_seconds` after deregistration, then gone.
//! The health checker (`health.rs`) writes the changes.

use std::net::Ipv4Addr;

use rusqlite::{params, Connection, OptionalExtension};

use super::shapes::{
    DeregisterTargetsInput, DeregisterTargetsOutput, DescribeTargetHealthInput,
    DescribeTargetHealthOutput, RegisterTargetsInput, RegisterTargetsOutput, TargetDescription,
    TargetHealth, TargetHealthDescription, TargetHealthReasonEnum, TargetHealthStateEnum,
    TargetTypeEnum,
};
use super::target_groups::{self, TgRow};
use super::{error, Elb, InstanceAddresses};
use crate::context::Ctx;
use crate::error::ApiResult;

/// ALB's limit of targets in one group.
pub const MAX_TARGETS: usize = 1000;

/// A registered target as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRow {
    pub target_group_arn: String,
    pub id: String,
    pub port: u16,
    pub availability_zone: Option<String>,
    pub registered_at: i64,
    pub state: TargetHealthStateEnum,
    pub reason: Option<TargetHealthReasonEnum>,
    pub description: Option<String>,
    /// When it last became healthy (slow start counts from there).
    pub healthy_since: Option<i64>,
    /// While draining: when the deregistration completes.
    pub draining_until: Option<i64>,
}

impl TargetRow {
    pub fn health(&self) -> TargetHealth {
        TargetHealth {
            state: Some(self.state),
            reason: self.reason,
            description: self.description.clone(),
        }
    }
}

/// ALB's words for each reason.
pub fn describe_reason(reason: TargetHealthReasonEnum) -> &'static str {
    use TargetHealthReasonEnum as R;
    match reason {
        R::ElbRegistrationInProgress => "Target registration is in progress",
        R::ElbInitialHealthChecking => "Initial health checks in progress",
        R::ElbInternalError => "Health checks failed due to an internal error",
        R::TargetResponseCodeMismatch => "Health checks failed",
        R::TargetTimeout => "Request timed out",
        R::TargetFailedHealthChecks => "Health checks failed",
        R::TargetNotRegistered => "Target is not registered to the target group",
        R::TargetNotInUse => {
            "Target group is not configured to receive traffic from the load balancer"
        }
        R::TargetDeregistrationInProgress => "Target deregistration is in progress",
        R::TargetInvalidState => "Target is in the stopped or terminated state",
        R::TargetIpUnusable => "The target IP address is reserved for use by a load balancer",
        R::TargetHealthCheckDisabled => "Health checks disabled",
    }
}

fn parse_state(s: &str) -> TargetHealthStateEnum {
    serde_json::from_value(serde_json::Value::String(s.to_string())).unwrap_or_default()
}

fn parse_reason(s: Option<String>) -> Option<TargetHealthReasonEnum> {
    s.and_then(|s| serde_json::from_value(serde_json::Value::String(s)).ok())
}

const COLUMNS: &str = "target_group_arn, id, port, availability_zone, registered_at, state, reason, description, healthy_since, draining_until";

fn row(r: &rusqlite::Row) -> rusqlite::Result<TargetRow> {
    Ok(TargetRow {
        target_group_arn: r.get(0)?,
        id: r.get(1)?,
        port: r.get::<_, i64>(2)? as u16,
        availability_zone: r.get(3)?,
        registered_at: r.get(4)?,
        state: parse_state(&r.get::<_, String>(5)?),
        reason: parse_reason(r.get(6)?),
        description: r.get(7)?,
        healthy_since: r.get(8)?,
        draining_until: r.get(9)?,
    })
}

/// The targets registered in `tg_arn` (draining ones included), in the
/// order they were registered.
pub fn of_group(conn: &Connection, tg_arn: &str) -> ApiResult<Vec<TargetRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM elb_targets WHERE target_group_arn = ?1 ORDER BY registered_at, id, port"
        ))?
        .query_map([tg_arn], row)?
        .collect::<Result<_, _>>()?)
}

/// Every registered target of every group.
pub fn all(conn: &Connection) -> ApiResult<Vec<TargetRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM elb_targets ORDER BY target_group_arn, registered_at, id, port"
        ))?
        .query_map([], row)?
        .collect::<Result<_, _>>()?)
}

fn one(conn: &Connection, tg: &str, id: &str, port: u16) -> ApiResult<Option<TargetRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM elb_targets WHERE target_group_arn = ?1 AND id = ?2 AND port = ?3"
        ))?
        .query_row(params![tg, id, port as i64], row)
        .optional()?)
}

/// Record a target's new health (and when it became healthy).
pub fn set_health(
    conn: &Connection,
    t: &TargetRow,
    state: TargetHealthStateEnum,
    reason: Option<TargetHealthReasonEnum>,
    description: Option<String>,
    now_ms: i64,
) -> ApiResult<()> {
    let healthy_since = match state {
        TargetHealthStateEnum::Healthy => t.healthy_since.or(Some(now_ms)),
        _ => None,
    };
    conn.prepare_cached(
        "UPDATE elb_targets SET state = ?4, reason = ?5, description = ?6, healthy_since = ?7
         WHERE target_group_arn = ?1 AND id = ?2 AND port = ?3 AND state != 'draining'",
    )?
    .execute(params![
        t.target_group_arn,
        t.id,
        t.port as i64,
        state.as_str(),
        reason.map(|r| r.as_str()),
        description.or_else(|| reason.map(|r| describe_reason(r).to_string())),
        healthy_since
    ])?;
    Ok(())
}

/// Remove a target whose deregistration has completed.
pub fn remove(conn: &Connection, t: &TargetRow) -> ApiResult<()> {
    conn.prepare_cached(
        "DELETE FROM elb_targets WHERE target_group_arn = ?1 AND id = ?2 AND port = ?3",
    )?
    .execute(params![t.target_group_arn, t.id, t.port as i64])?;
    Ok(())
}

/// Forget every target of a deleted group.
pub fn forget_group(conn: &Connection, tg_arn: &str) -> ApiResult<()> {
    conn.prepare_cached("DELETE FROM elb_targets WHERE target_group_arn = ?1")?
        .execute([tg_arn])?;
    Ok(())
}

/// A target as a request names it, checked against its group: its id
/// fits the group's target type and its port (the group's by default) is
/// in range.
fn check_target(
    conn: &Connection,
    instances: &dyn InstanceAddresses,
    tg: &TgRow,
    t: &TargetDescription,
) -> ApiResult<(String, u16)> {
    let port = t.port.unwrap_or(tg.port() as i64);
    if !(1..=65535).contains(&port) {
        return Err(error(
            "InvalidTarget",
            format!(
                "The port '{port}' of target '{}' must be between 1 and 65535",
                t.id
            ),
        ));
    }
    match tg.target_type() {
        TargetTypeEnum::Ip => {
            if t.id.parse::<Ipv4Addr>().is_err() {
                return Err(error(
                    "InvalidTarget",
                    format!("The IP address '{}' is not a valid IPv4 address", t.id),
                ));
            }
        }
        _ => {
            let known = t.id.starts_with("i-")
                && instances
                    .address(conn, &tg.account, &tg.region, &t.id)?
                    .is_some();
            if !known {
                return Err(error(
                    "InvalidTarget",
                    format!("The following targets are not valid instances: '{}'", t.id),
                ));
            }
        }
    }
    Ok((t.id.clone(), port as u16))
}

/// Register `targets` in the group `tg_arn` of (the caller's account and
/// region); the path of `RegisterTargets` and of ECS services. A target
/// already registered stays as it is; a draining one is registered again.
pub fn register_in(
    conn: &Connection,
    instances: &dyn InstanceAddresses,
    ctx: &Ctx,
    tg_arn: &str,
    targets: &[TargetDescription],
) -> ApiResult<()> {
    let tg = target_groups::require(conn, ctx, tg_arn)?;
    let checked: Vec<(String, u16, Option<String>)> = targets
        .iter()
        .map(|t| {
            check_target(conn, instances, &tg, t)
                .map(|(id, p)| (id, p, t.availability_zone.clone()))
        })
        .collect::<ApiResult<_>>()?;
    let existing = of_group(conn, tg_arn)?;
    let new = checked
        .iter()
        .filter(|(id, p, _)| !existing.iter().any(|e| &e.id == id && e.port == *p))
        .count();
    if existing.len() + new > MAX_TARGETS {
        return Err(error(
            "TooManyTargets",
            format!("You've reached the limit on the number of targets per target group ({MAX_TARGETS})"),
        ));
    }
    let in_use = !super::listeners::load_balancers_using(conn, tg_arn)?.is_empty();
    let (state, reason) = if in_use {
        (
            TargetHealthStateEnum::Initial,
            TargetHealthReasonEnum::ElbRegistrationInProgress,
        )
    } else {
        (
            TargetHealthStateEnum::Unused,
            TargetHealthReasonEnum::TargetNotInUse,
        )
    };
    for (id, port, az) in checked {
        if let Some(e) = one(conn, tg_arn, &id, port)? {
            if e.state != TargetHealthStateEnum::Draining {
                continue;
            }
        }
        conn.prepare_cached(
            "INSERT INTO elb_targets (target_group_arn, id, port, availability_zone, registered_at, state, reason, description)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (target_group_arn, id, port) DO UPDATE SET registered_at = excluded.registered_at,
                state = excluded.state, reason = excluded.reason, description = excluded.description,
                healthy_since = NULL, draining_until = NULL",
        )?
        .execute(params![
            tg_arn,
            id,
            port as i64,
            az,
            ctx.now_millis(),
            state.as_str(),
            reason.as_str(),
            describe_reason(reason)
        ])?;
    }
    Ok(())
}

/// Deregister `targets` from `tg_arn`: each drains for the group's
/// deregistration delay (the health checker removes it then, or sooner
/// once no request is in flight to it). Returns how many were
/// registered.
pub fn deregister_in(
    conn: &Connection,
    ctx: &Ctx,
    tg_arn: &str,
    targets: &[(String, Option<u16>)],
    strict: bool,
) -> ApiResult<usize> {
    let tg = target_groups::require(conn, ctx, tg_arn)?;
    let delay_ms = tg.number("deregistration_delay.timeout_seconds", 300) as i64 * 1000;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (id, port) in targets {
        let port = port.unwrap_or(tg.port());
        match one(conn, tg_arn, id, port)? {
            Some(t) => found.push(t),
            None => missing.push(id.clone()),
        }
    }
    if strict && !missing.is_empty() {
        return Err(error(
            "InvalidTarget",
            format!(
                "The following targets are not registered in target group '{tg_arn}': '{}'",
                missing.join("', '")
            ),
        ));
    }
    for t in &found {
        if t.state == TargetHealthStateEnum::Draining {
            continue;
        }
        if t.state == TargetHealthStateEnum::Unused || delay_ms == 0 {
            remove(conn, t)?;
            continue;
        }
        let reason = TargetHealthReasonEnum::TargetDeregistrationInProgress;
        conn.prepare_cached(
            "UPDATE elb_targets SET state = 'draining', reason = ?4, description = ?5,
                healthy_since = NULL, draining_until = ?6
             WHERE target_group_arn = ?1 AND id = ?2 AND port = ?3",
        )?
        .execute(params![
            t.target_group_arn,
            t.id,
            t.port as i64,
            reason.as_str(),
            describe_reason(reason),
            ctx.now_millis() + delay_ms
        ])?;
    }
    Ok(found.len())
}

/// The health of target (`id`, `port`) in `tg_arn`, if registered.
pub fn health_of(
    conn: &Connection,
    tg_arn: &str,
    id: &str,
    port: u16,
) -> ApiResult<Option<TargetRow>> {
    one(conn, tg_arn, id, port)
}

pub fn register(e: &Elb, ctx: &Ctx, req: RegisterTargetsInput) -> ApiResult<RegisterTargetsOutput> {
    e.store.write(|tx| {
        register_in(
            tx,
            e.instances.as_ref(),
            ctx,
            &req.target_group_arn,
            &req.targets,
        )?;
        Ok(RegisterTargetsOutput {})
    })
}

pub fn deregister(
    e: &Elb,
    ctx: &Ctx,
    req: DeregisterTargetsInput,
) -> ApiResult<DeregisterTargetsOutput> {
    let targets: Vec<(String, Option<u16>)> = req
        .targets
        .iter()
        .map(|t| (t.id.clone(), t.port.map(|p| p as u16)))
        .collect();
    e.store.write(|tx| {
        deregister_in(tx, ctx, &req.target_group_arn, &targets, true)?;
        Ok(DeregisterTargetsOutput {})
    })
}

/// The health check port of a target: the group's, or the target's own
/// with `traffic-port`.
pub fn health_check_port(tg: &TgRow, t_port: u16) -> u16 {
    match tg.doc.health_check_port.as_deref() {
        Some(p) if p != "traffic-port" => p.parse().unwrap_or(t_port),
        _ => t_port,
    }
}

pub fn describe_health(
    e: &Elb,
    ctx: &Ctx,
    req: DescribeTargetHealthInput,
) -> ApiResult<DescribeTargetHealthOutput> {
    e.store.read(|conn| {
        let tg = target_groups::require(conn, ctx, &req.target_group_arn)?;
        let registered = of_group(conn, &tg.arn)?;
        let describe = |t: &TargetRow| TargetHealthDescription {
            target: Some(TargetDescription {
                id: t.id.clone(),
                port: Some(t.port as i64),
                availability_zone: t.availability_zone.clone(),
                ..Default::default()
            }),
            health_check_port: Some(health_check_port(&tg, t.port).to_string()),
            target_health: Some(t.health()),
            ..Default::default()
        };
        let out: Vec<TargetHealthDescription> = match &req.targets {
            Some(asked) if !asked.is_empty() => asked
                .iter()
                .map(|a| {
                    let port = a.port.map_or(tg.port(), |p| p as u16);
                    match registered.iter().find(|t| t.id == a.id && t.port == port) {
                        Some(t) => describe(t),
                        None => {
                            let reason = TargetHealthReasonEnum::TargetNotRegistered;
                            TargetHealthDescription {
                                target: Some(TargetDescription {
                                    id: a.id.clone(),
                                    port: Some(port as i64),
                                    availability_zone: a.availability_zone.clone(),
                                    ..Default::default()
                                }),
                                health_check_port: Some(health_check_port(&tg, port).to_string()),
                                target_health: Some(TargetHealth {
                                    state: Some(TargetHealthStateEnum::Unused),
                                    reason: Some(reason),
                                    description: Some(describe_reason(reason).to_string()),
                                }),
                                ..Default::default()
                            }
                        }
                    }
                })
                .collect(),
            _ => registered.iter().map(describe).collect(),
        };
        Ok(DescribeTargetHealthOutput {
            target_health_descriptions: Some(out),
        })
    })
}
