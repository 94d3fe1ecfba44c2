//! The fleet: the EC2 instances Berth launches for Auto Scaling groups, and
//! the step (`tick`) that `berth server` runs every few hundred milliseconds
//! to bring each group to what `plan` decides.
//!
//! An instance's life: launched `Pending` (or `Warmed:Pending` into a warm
//! pool) with `ready_at` one boot time ahead; when the boot is over, a
//! warm-pool instance rests `Warmed:Stopped` or `Warmed:Running`, and an
//! instance in service goes `InService` and its agent registers it with
//! the cluster its user data names (`ECS_CLUSTER`, default `default`), as
//! a local container instance. An instance leaving the warm pool joins in a
//! fraction of a boot. Terminating deregisters its container instance (its
//! tasks stop) and ends it `Terminated`. A spot instance can be
//! interrupted: after the notice (two minutes by default) it is terminated,
//! and with `ECS_ENABLE_SPOT_INSTANCE_DRAINING=true` its container instance
//! goes DRAINING and its tasks are stopped as soon as the notice comes.

use std::collections::BTreeMap;

use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use super::groups::{self, Activity, GroupRow};
use super::plan::{self, Action, Lifecycle, Market, Member, PoolState};
use super::FleetSettings;
use crate::context::Ctx;
use crate::ecs::shapes::TaskStopCode;
use crate::ecs::{clusters, instances};
use crate::error::ApiResult;

/// Stop code and reason prefix of tasks ended by a spot interruption.
pub const SPOT_STOP_CODE: TaskStopCode = TaskStopCode::TerminationNotice;

/// An EC2 instance as stored.
#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub id: String,
    pub account: String,
    pub region: String,
    pub group_name: Option<String>,
    pub instance_type: String,
    pub az: String,
    pub market: String,
    pub lifecycle: String,
    pub protected: bool,
    pub launch_template: Value,
    pub ecs_config: BTreeMap<String, String>,
    pub launched_at: i64,
    pub ready_at: i64,
    pub container_instance_arn: Option<String>,
    pub interrupt_at: Option<i64>,
    pub terminated_at: Option<i64>,
    /// Since when it is in its lifecycle state.
    pub state_since: i64,
    /// Time billed while not registered, in the states it has left.
    pub unregistered_billed_ms: i64,
}

impl InstanceRow {
    pub fn live(&self) -> bool {
        self.lifecycle != "Terminated"
    }

    pub fn warm(&self) -> bool {
        self.lifecycle.starts_with("Warmed:")
    }

    /// EC2's instance state: `(code, name)`.
    pub fn state(&self) -> (i64, &'static str) {
        match self.lifecycle.as_str() {
            "Pending" | "Warmed:Pending" => (0, "pending"),
            "InService" | "Warmed:Running" => (16, "running"),
            "Warmed:Stopped" => (80, "stopped"),
            _ => (48, "terminated"),
        }
    }

    /// Milliseconds EC2 has billed it while it was not registered with a
    /// cluster (booting, or running in a warm pool), up to `now_ms`.
    pub fn unregistered_billed_ms(&self, now_ms: i64) -> i64 {
        let current = if self.billed_unregistered_now() {
            (now_ms - self.state_since).max(0)
        } else {
            0
        };
        self.unregistered_billed_ms + current
    }

    /// Whether EC2 bills it now while it is not registered.
    pub fn billed_unregistered_now(&self) -> bool {
        BILLED_UNREGISTERED.contains(&self.lifecycle.as_str())
    }

    fn spot_draining(&self) -> bool {
        self.ecs_config
            .get("ECS_ENABLE_SPOT_INSTANCE_DRAINING")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    fn cluster(&self) -> &str {
        self.ecs_config
            .get("ECS_CLUSTER")
            .map(String::as_str)
            .filter(|c| !c.is_empty())
            .unwrap_or(clusters::DEFAULT_CLUSTER)
    }
}

const SELECT: &str = "SELECT id, account, region, group_name, instance_type, az, market, lifecycle,
    protected, launch_template, ecs_config, launched_at, ready_at, container_instance_arn,
    interrupt_at, terminated_at, state_since, unregistered_billed_ms FROM ec2_instances";

fn from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<InstanceRow> {
    let lt: String = r.get(9)?;
    let cfg: String = r.get(10)?;
    Ok(InstanceRow {
        id: r.get(0)?,
        account: r.get(1)?,
        region: r.get(2)?,
        group_name: r.get(3)?,
        instance_type: r.get(4)?,
        az: r.get(5)?,
        market: r.get(6)?,
        lifecycle: r.get(7)?,
        protected: r.get::<_, i64>(8)? != 0,
        launch_template: serde_json::from_str(&lt).unwrap_or(json!({})),
        ecs_config: serde_json::from_str(&cfg).unwrap_or_default(),
        launched_at: r.get(11)?,
        ready_at: r.get(12)?,
        container_instance_arn: r.get(13)?,
        interrupt_at: r.get(14)?,
        terminated_at: r.get(15)?,
        state_since: r.get(16)?,
        unregistered_billed_ms: r.get(17)?,
    })
}

pub fn load_instance(conn: &Connection, id: &str) -> ApiResult<Option<InstanceRow>> {
    Ok(conn
        .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
        .query_row([id], from_sql)
        .optional()?)
}

/// A group's live members, in service and warm, oldest first.
pub fn members(conn: &Connection, g: &GroupRow) -> ApiResult<Vec<InstanceRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT} WHERE account = ?1 AND region = ?2 AND group_name = ?3
               AND lifecycle != 'Terminated' ORDER BY launched_at, id"
        ))?
        .query_map(params![g.account, g.region, g.name], from_sql)?
        .collect::<Result<_, _>>()?)
}

/// Every instance of an account and region (terminated ones for an hour,
/// as EC2 shows them), oldest first.
pub fn all_instances(
    conn: &Connection,
    account: &str,
    region: &str,
    now_ms: i64,
) -> ApiResult<Vec<InstanceRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT} WHERE account = ?1 AND region = ?2
               AND (terminated_at IS NULL OR terminated_at > ?3) ORDER BY launched_at, id"
        ))?
        .query_map(params![account, region, now_ms - 3_600_000], from_sql)?
        .collect::<Result<_, _>>()?)
}

/// The live instances of every group of an account and region.
pub fn managed_instances(
    conn: &Connection,
    account: &str,
    region: &str,
) -> ApiResult<Vec<InstanceRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT} WHERE account = ?1 AND region = ?2 AND group_name IS NOT NULL
               AND lifecycle != 'Terminated' ORDER BY group_name, launched_at, id"
        ))?
        .query_map(params![account, region], from_sql)?
        .collect::<Result<_, _>>()?)
}

pub fn set_protected(tx: &Connection, id: &str, protect: bool) -> ApiResult<()> {
    tx.prepare_cached("UPDATE ec2_instances SET protected = ?2 WHERE id = ?1")?
        .execute(params![id, protect as i64])?;
    Ok(())
}

pub fn unprotect_all(tx: &Connection, g: &GroupRow) -> ApiResult<()> {
    tx.prepare_cached(
        "UPDATE ec2_instances SET protected = 0 WHERE account = ?1 AND region = ?2 AND group_name = ?3",
    )?
    .execute(params![g.account, g.region, g.name])?;
    Ok(())
}

/// The states in which EC2 bills an instance that is not registered with
/// a cluster: booting, and prepared running in a warm pool. (A stopped
/// warm-pool instance pays only for its volume, which Berth does not price.)
const BILLED_UNREGISTERED: [&str; 3] = ["Pending", "Warmed:Pending", "Warmed:Running"];

/// Move an instance to `lifecycle` at `now_ms`, adding the time it spent
/// billed and unregistered in the state it leaves.
fn set_lifecycle(
    tx: &Connection,
    id: &str,
    lifecycle: &str,
    ready_at: Option<i64>,
    now_ms: i64,
) -> ApiResult<()> {
    tx.prepare_cached(
        "UPDATE ec2_instances SET
           unregistered_billed_ms = unregistered_billed_ms
             + CASE WHEN lifecycle IN ('Pending', 'Warmed:Pending', 'Warmed:Running')
                    THEN max(0, ?4 - state_since) ELSE 0 END,
           lifecycle = ?2, state_since = ?4, ready_at = coalesce(?3, ready_at)
         WHERE id = ?1",
    )?
    .execute(params![id, lifecycle, ready_at, now_ms])?;
    Ok(())
}

fn as_member(conn: &Connection, i: &InstanceRow) -> ApiResult<Option<Member>> {
    let Some(lifecycle) = Lifecycle::parse(&i.lifecycle) else {
        return Ok(None);
    };
    let tasks = match &i.container_instance_arn {
        Some(arn) => instances::live_task_count(conn, arn)?,
        None => 0,
    };
    Ok(Some(Member {
        id: i.id.clone(),
        lifecycle,
        az: i.az.clone(),
        market: Market::parse(&i.market),
        instance_type: i.instance_type.clone(),
        protected: i.protected,
        tasks,
        launched_at: i.launched_at,
    }))
}

/// Terminate `inst`: its container instance is deregistered (its tasks
/// stop with `reason`), it ends `Terminated`.
fn end_instance(
    tx: &Connection,
    inst: &InstanceRow,
    code: TaskStopCode,
    reason: &str,
    now_ms: i64,
) -> ApiResult<()> {
    if let Some(arn) = &inst.container_instance_arn {
        if let Some(ci) = instances::load(tx, arn)?.filter(instances::InstanceRow::is_registered) {
            instances::deregister_with(tx, &ci, code, reason, now_ms)?;
        }
    }
    set_lifecycle(tx, &inst.id, "Terminated", None, now_ms)?;
    tx.prepare_cached("UPDATE ec2_instances SET terminated_at = ?2, protected = 0 WHERE id = ?1")?
        .execute(params![inst.id, now_ms])?;
    Ok(())
}

/// Terminate a member of `g`, recording the activity.
pub fn terminate(
    tx: &Connection,
    g: &GroupRow,
    inst: &InstanceRow,
    cause: &str,
    now_ms: i64,
) -> ApiResult<Activity> {
    end_instance(
        tx,
        inst,
        TaskStopCode::TaskFailedToStart,
        &format!(
            "Instance {} was terminated by its Auto Scaling group",
            inst.id
        ),
        now_ms,
    )?;
    record_termination(tx, g, inst, cause, now_ms)
}

/// The activity of a member's termination.
fn record_termination(
    tx: &Connection,
    g: &GroupRow,
    inst: &InstanceRow,
    cause: &str,
    now_ms: i64,
) -> ApiResult<Activity> {
    groups::record_activity(
        tx,
        g,
        &format!("Terminating EC2 instance: {}", inst.id),
        cause,
        "Successful",
        Some(&inst.az),
        now_ms,
        true,
    )
}

/// The group an instance belongs to, if any.
fn group_of(tx: &Connection, inst: &InstanceRow) -> ApiResult<Option<GroupRow>> {
    match &inst.group_name {
        Some(n) => groups::find(tx, &inst.account, &inst.region, n),
        None => Ok(None),
    }
}

/// Terminate an instance outside its group's decisions (EC2
/// `TerminateInstances`): the group replaces it.
pub fn terminate_by_ec2(tx: &Connection, inst: &InstanceRow, now_ms: i64) -> ApiResult<()> {
    end_instance(
        tx,
        inst,
        TaskStopCode::TaskFailedToStart,
        &format!("Instance {} was terminated (TerminateInstances)", inst.id),
        now_ms,
    )?;
    if let Some(g) = group_of(tx, inst)? {
        let cause = &format!(
                "At {} an instance was taken out of service in response to an EC2 instance status check failure.",
                groups::when(now_ms)
            );
        record_termination(tx, &g, inst, cause, now_ms)?;
    }
    Ok(())
}

/// Give a spot instance its interruption notice: terminated after the
/// notice; with spot draining, its container instance goes DRAINING and
/// its tasks stop now. Returns false when it is not a live spot instance.
pub fn interrupt(
    tx: &Connection,
    inst: &InstanceRow,
    now_ms: i64,
    notice_ms: i64,
) -> ApiResult<bool> {
    if !inst.live() || inst.market != "spot" || inst.interrupt_at.is_some() {
        return Ok(false);
    }
    let at = now_ms + notice_ms;
    tx.prepare_cached("UPDATE ec2_instances SET interrupt_at = ?2 WHERE id = ?1")?
        .execute(params![inst.id, at])?;
    if inst.spot_draining() {
        if let Some(arn) = &inst.container_instance_arn {
            instances::drain_for_interruption(
                tx,
                arn,
                SPOT_STOP_CODE,
                &format!(
                    "Spot interruption: instance {} is reclaimed at {} (spot instance draining)",
                    inst.id,
                    groups::when(at)
                ),
            )?;
        }
    }
    Ok(true)
}

/// Where and how one instance is launched.
struct NewInstance<'a> {
    az: &'a str,
    instance_type: &'a str,
    market: Market,
    warm: bool,
}

/// Launch an instance for `g` from its launch template.
fn launch(
    tx: &Connection,
    g: &GroupRow,
    launch: &groups::Launch,
    new: NewInstance<'_>,
    cause: &str,
    now_ms: i64,
    settings: &FleetSettings,
) -> ApiResult<String> {
    let NewInstance {
        az,
        instance_type,
        market,
        warm,
    } = new;
    let id = instances::new_ec2_instance_id();
    let ecs_config = launch
        .data
        .get("UserData")
        .and_then(Value::as_str)
        .and_then(|u| crate::ec2::ecs_config_from_user_data(u).ok())
        .unwrap_or_default();
    tx.prepare_cached(
        "INSERT INTO ec2_instances (id, account, region, group_name, instance_type, az, market,
            lifecycle, protected, launch_template, ecs_config, launched_at, ready_at, state_since)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?12)",
    )?
    .execute(params![
        id,
        g.account,
        g.region,
        g.name,
        instance_type,
        az,
        market.as_str(),
        if warm {
            Lifecycle::WarmedPending
        } else {
            Lifecycle::Pending
        }
        .as_str(),
        (!warm && groups::protects_new_instances(g)) as i64,
        launch.template.to_string(),
        serde_json::to_string(&ecs_config).expect("serialises"),
        now_ms,
        now_ms + settings.boot_ms,
    ])?;
    let description = if warm {
        format!("Launching a new EC2 instance into warm pool: {id}")
    } else {
        format!("Launching a new EC2 instance: {id}")
    };
    groups::record_activity(
        tx,
        g,
        &description,
        cause,
        "InProgress",
        Some(az),
        now_ms,
        false,
    )?;
    Ok(id)
}

/// Complete the launch activity of `id`.
fn launched(tx: &Connection, g: &GroupRow, id: &str, now_ms: i64) -> ApiResult<()> {
    tx.prepare_cached(
        "UPDATE scaling_activities SET status = 'Successful', ended_at = ?4
         WHERE account = ?1 AND region = ?2 AND group_name = ?3 AND status = 'InProgress'
           AND description LIKE '%' || ?5",
    )?
    .execute(params![g.account, g.region, g.name, now_ms, id])?;
    Ok(())
}

/// The capacity provider that uses group `g`, if any.
fn provider_of(tx: &Connection, g: &GroupRow) -> ApiResult<Option<String>> {
    crate::ecs::capacity_providers::provider_of_group(tx, &g.arn)
}

/// Register an instance in service with its cluster, when the cluster
/// exists; otherwise it stays unregistered, as an agent that cannot find
/// its cluster does.
fn register(
    tx: &Connection,
    g: Option<&GroupRow>,
    inst: &InstanceRow,
    now_ms: i64,
) -> ApiResult<bool> {
    let ctx = Ctx::internal(&inst.account, &inst.region, now_ms);
    let Some(cluster) =
        clusters::find(tx, &ctx, inst.cluster())?.filter(clusters::ClusterRow::is_active)
    else {
        return Ok(false);
    };
    let custom: Vec<(String, Option<String>)> = inst
        .ecs_config
        .get("ECS_INSTANCE_ATTRIBUTES")
        .and_then(|a| serde_json::from_str::<BTreeMap<String, String>>(a).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect();
    let row = instances::add_local_instance(
        tx,
        &ctx,
        &cluster,
        instances::LocalInstance {
            ec2_instance_id: inst.id.clone(),
            instance_type: inst.instance_type.clone(),
            availability_zone: inst.az.clone(),
            market: (inst.market == "spot").then(|| "spot".to_string()),
            capacity_provider: g.map(|g| provider_of(tx, g)).transpose()?.flatten(),
            custom_attributes: custom,
        },
    )?;
    tx.prepare_cached("UPDATE ec2_instances SET container_instance_arn = ?2 WHERE id = ?1")?
        .execute(params![inst.id, row.arn])?;
    Ok(true)
}

/// Bring one group to its plan. Returns whether anything changed.
fn step_group(
    tx: &Connection,
    g: &GroupRow,
    now_ms: i64,
    settings: &FleetSettings,
) -> ApiResult<bool> {
    let rows = members(tx, g)?;
    if g.deleting && rows.is_empty() {
        tx.prepare_cached("DELETE FROM auto_scaling_groups WHERE arn = ?1")?
            .execute([&g.arn])?;
        return Ok(true);
    }
    let ctx = Ctx::internal(&g.account, &g.region, now_ms);
    let launch_spec = match groups::resolve_launch(tx, &ctx, &g.doc) {
        Ok(l) => l,
        Err(e) => {
            // The template went away: nothing can launch; instances can
            // still be terminated.
            tracing::debug!(group = %g.name, error = %e.message, "cannot resolve launch template");
            groups::Launch {
                template: json!({}),
                data: json!({}),
                types: vec![],
                spot: false,
            }
        }
    };
    let mut ms = Vec::new();
    for r in &rows {
        if let Some(m) = as_member(tx, r)? {
            ms.push(m);
        }
    }
    let spec = groups::spec(g, &launch_spec);
    let region = g.region.clone();
    let price = move |t: &str| crate::pricing::ec2_spot_estimate(&region, t).unwrap_or(f64::MAX);
    let actions = plan::plan(&spec, &ms, &price);
    if actions.is_empty() {
        return Ok(false);
    }
    let in_service = ms.iter().filter(|m| !m.lifecycle.warm()).count();
    let default_cause = format!(
        "At {} an instance was started in response to a difference between desired and actual capacity, changing the capacity from {in_service} to {}.",
        groups::when(now_ms),
        spec.desired
    );
    let cause = groups::last_cause(g)
        .map(|c| format!("{c} {default_cause}"))
        .unwrap_or(default_cause);
    let mut changed = false;
    for a in actions {
        match a {
            Action::Launch {
                az,
                instance_type,
                market,
                warm,
            } => {
                if launch_spec.types.is_empty() {
                    continue;
                }
                launch(
                    tx,
                    g,
                    &launch_spec,
                    NewInstance {
                        az: &az,
                        instance_type: &instance_type,
                        market,
                        warm,
                    },
                    &cause,
                    now_ms,
                    settings,
                )?;
            }
            Action::FromWarm { id } => {
                let Some(inst) = load_instance(tx, &id)? else {
                    continue;
                };
                let join = settings.warm_join_ms(inst.lifecycle == "Warmed:Running");
                set_lifecycle(
                    tx,
                    &id,
                    Lifecycle::Pending.as_str(),
                    Some(now_ms + join),
                    now_ms,
                )?;
                if groups::protects_new_instances(g) {
                    set_protected(tx, &id, true)?;
                }
                groups::record_activity(
                    tx,
                    g,
                    &format!("Launching a new EC2 instance from warm pool: {id}"),
                    &cause,
                    "InProgress",
                    Some(&inst.az),
                    now_ms,
                    false,
                )?;
            }
            Action::ToWarm { id } => {
                let Some(inst) = load_instance(tx, &id)? else {
                    continue;
                };
                if let Some(arn) = &inst.container_instance_arn {
                    if let Some(ci) =
                        instances::load(tx, arn)?.filter(instances::InstanceRow::is_registered)
                    {
                        instances::deregister(
                            tx,
                            &ci,
                            "Instance returned to the warm pool",
                            now_ms,
                        )?;
                    }
                }
                let state = match g
                    .warm_pool
                    .as_ref()
                    .map(groups::warm_pool)
                    .map(|w| w.pool_state)
                {
                    Some(PoolState::Running) => "Warmed:Running",
                    _ => "Warmed:Stopped",
                };
                set_lifecycle(tx, &id, state, None, now_ms)?;
                tx.prepare_cached(
                    "UPDATE ec2_instances SET container_instance_arn = NULL, protected = 0 WHERE id = ?1",
                )?
                .execute([&id])?;
                groups::record_activity(
                    tx,
                    g,
                    &format!("Moving EC2 instance to warm pool: {id}"),
                    &format!(
                        "At {} an instance was moved to the warm pool in response to a difference between desired and actual capacity, shrinking the capacity to {}.",
                        groups::when(now_ms),
                        spec.desired
                    ),
                    "Successful",
                    Some(&inst.az),
                    now_ms,
                    true,
                )?;
            }
            Action::Terminate { id } => {
                let Some(inst) = load_instance(tx, &id)? else {
                    continue;
                };
                let cause = if g.deleting {
                    format!(
                        "At {} the group was deleted, terminating its instances.",
                        groups::when(now_ms)
                    )
                } else {
                    format!(
                        "At {} an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity to {}.",
                        groups::when(now_ms),
                        spec.desired
                    )
                };
                terminate(tx, g, &inst, &cause, now_ms)?;
            }
        }
        changed = true;
    }
    Ok(changed)
}

/// Instances whose boot ended: warm-pool instances rest, instances in
/// service go `InService` and register.
fn finish_boots(tx: &Connection, now_ms: i64) -> ApiResult<bool> {
    let due: Vec<InstanceRow> = tx
        .prepare_cached(&format!(
            "{SELECT} WHERE lifecycle IN ('Pending', 'Warmed:Pending') AND ready_at <= ?1
             UNION ALL
             {SELECT} WHERE lifecycle = 'InService' AND container_instance_arn IS NULL"
        ))?
        .query_map([now_ms], from_sql)?
        .collect::<Result<_, _>>()?;
    let mut changed = false;
    for inst in due {
        let g = group_of(tx, &inst)?;
        if inst.lifecycle == "Warmed:Pending" {
            let state = match g
                .as_ref()
                .and_then(|g| g.warm_pool.as_ref())
                .map(|w| groups::warm_pool(w).pool_state)
            {
                Some(PoolState::Running) => "Warmed:Running",
                _ => "Warmed:Stopped",
            };
            set_lifecycle(tx, &inst.id, state, None, now_ms)?;
            if let Some(g) = &g {
                launched(tx, g, &inst.id, now_ms)?;
            }
            changed = true;
            continue;
        }
        if inst.lifecycle == "Pending" {
            set_lifecycle(tx, &inst.id, "InService", None, now_ms)?;
            changed = true;
        }
        if register(tx, g.as_ref(), &inst, now_ms)? {
            changed = true;
        }
        if let Some(g) = &g {
            if inst.lifecycle == "Pending" {
                launched(tx, g, &inst.id, now_ms)?;
            }
        }
    }
    Ok(changed)
}

/// Spot instances whose notice ran out are terminated; with a rehearsal
/// rate set, live spot instances are interrupted at random.
fn spot_interruptions(
    tx: &Connection,
    now_ms: i64,
    elapsed_ms: i64,
    settings: &FleetSettings,
    rng: &mut impl Rng,
) -> ApiResult<bool> {
    let mut changed = false;
    let due: Vec<InstanceRow> = tx
        .prepare_cached(&format!(
            "{SELECT} WHERE interrupt_at IS NOT NULL AND interrupt_at <= ?1 AND lifecycle != 'Terminated'"
        ))?
        .query_map([now_ms], from_sql)?
        .collect::<Result<_, _>>()?;
    for inst in due {
        end_instance(
            tx,
            &inst,
            SPOT_STOP_CODE,
            &format!(
                "Spot interruption: instance {} was reclaimed by EC2",
                inst.id
            ),
            now_ms,
        )?;
        if let Some(g) = group_of(tx, &inst)? {
            let cause = &format!(
                    "At {} an instance was taken out of service in response to an EC2 Spot Instance interruption notice.",
                    groups::when(now_ms)
                );
            record_termination(tx, &g, &inst, cause, now_ms)?;
        }
        changed = true;
    }
    let rate = settings.interruption_rate_per_hour;
    if rate > 0.0 && elapsed_ms > 0 {
        let p = (rate * elapsed_ms as f64 / 3_600_000.0).min(1.0);
        let live: Vec<InstanceRow> = tx
            .prepare_cached(&format!(
                "{SELECT} WHERE market = 'spot' AND interrupt_at IS NULL AND lifecycle = 'InService'"
            ))?
            .query_map([], from_sql)?
            .collect::<Result<_, _>>()?;
        for inst in live {
            if rng.gen_bool(p) {
                tracing::info!(instance = %inst.id, "random spot interruption");
                changed |= interrupt(tx, &inst, now_ms, settings.spot_notice_ms)?;
            }
        }
    }
    Ok(changed)
}

/// One step of the fleet over every group. Returns whether anything
/// changed (so the agent is woken).
pub fn tick(
    tx: &Connection,
    now_ms: i64,
    elapsed_ms: i64,
    settings: &FleetSettings,
    rng: &mut impl Rng,
) -> ApiResult<bool> {
    let mut changed = spot_interruptions(tx, now_ms, elapsed_ms, settings, rng)?;
    changed |= finish_boots(tx, now_ms)?;
    for g in groups::all(tx)? {
        changed |= step_group(tx, &g, now_ms, settings)?;
    }
    // Instances launched with no boot time are ready at once.
    changed |= finish_boots(tx, now_ms)?;
    Ok(changed)
}

/// The instances the fleet launches, as EC2 lists and terminates them.
pub struct Launched;

fn as_launched(i: InstanceRow) -> crate::ec2::instances::Launched {
    crate::ec2::instances::Launched {
        state: i.state(),
        live: i.live(),
        spot: i.market == "spot",
        launch_template_id: i
            .launch_template
            .get("LaunchTemplateId")
            .and_then(Value::as_str)
            .map(str::to_string),
        id: i.id,
        account: i.account,
        region: i.region,
        instance_type: i.instance_type,
        az: i.az,
        launched_at_ms: i.launched_at,
        group_name: i.group_name,
        container_instance_arn: i.container_instance_arn,
    }
}

impl crate::ec2::instances::LaunchedInstances for Launched {
    fn all(
        &self,
        conn: &Connection,
        account: &str,
        region: &str,
        now_ms: i64,
    ) -> ApiResult<Vec<crate::ec2::instances::Launched>> {
        Ok(all_instances(conn, account, region, now_ms)?
            .into_iter()
            .map(as_launched)
            .collect())
    }

    fn get(
        &self,
        conn: &Connection,
        id: &str,
    ) -> ApiResult<Option<crate::ec2::instances::Launched>> {
        Ok(load_instance(conn, id)?.map(as_launched))
    }

    fn terminate(&self, tx: &Connection, id: &str, now_ms: i64) -> ApiResult<()> {
        match load_instance(tx, id)? {
            Some(i) if i.live() => terminate_by_ec2(tx, &i, now_ms),
            _ => Ok(()),
        }
    }
}
