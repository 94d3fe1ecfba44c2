//! Services: `CreateService`, `UpdateService`, `DeleteService`,
//! `DescribeServices`, `ListServices`, `ListServiceDeployments`,
//! `DescribeServiceDeployments`, `DescribeServiceRevisions`.
//!
//! A service row keeps what the caller asked for (`doc`, the ECS `Service`
//! shape without what is computed: counts, deployments, events). Each
//! deployment is a row of `service_deployments` (`doc`, the ECS
//! `Deployment` shape without its counts): what its tasks are launched
//! from, its rollout state and status. A deployment is also the service
//! revision it deploys and the service deployment the newer API lists, so
//! all three share its number. The scheduler (`scheduler.rs`) brings the
//! tasks to what they say; tasks belong to a deployment by `startedBy`
//! (the deployment's id) and to the service by `group` (`service:<name>`).
//! A deleted service is DRAINING while its tasks stop, then INACTIVE, and
//! stays describable.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;

use super::shapes::{
    CapacityProviderStrategyItem, ContinueServiceDeploymentRequest,
    ContinueServiceDeploymentResponse, CreateServiceRequest, CreateServiceResponse,
    DeleteServiceRequest, DeleteServiceResponse, Deployment, DeploymentCircuitBreaker,
    DeploymentConfiguration, DeploymentController, DeploymentControllerType,
    DeploymentRolloutState, DeploymentStrategy, DescribeServiceDeploymentsRequest,
    DescribeServiceDeploymentsResponse, DescribeServiceRevisionsRequest,
    DescribeServiceRevisionsResponse, DescribeServicesRequest, DescribeServicesResponse,
    LaunchType, ListServiceDeploymentsRequest, ListServiceDeploymentsResponse,
    ListServicesByNamespaceRequest, ListServicesByNamespaceResponse, ListServicesRequest,
    ListServicesResponse, SchedulingStrategy, Service, ServiceDeployment, ServiceDeploymentBrief,
    ServiceDeploymentStatus, ServiceEvent, ServiceField, ServiceRevision, ServiceRevisionSummary,
    StopServiceDeploymentRequest, StopServiceDeploymentResponse, StopServiceDeploymentStopType,
    UpdateServiceRequest, UpdateServiceResponse,
};
use super::{arn, clusters, deploy, describe_each, tags, taskdefs, tasks, Ecs};
use crate::context::{millis_to_epoch, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::events::Topic;
use crate::paging;

/// A service's status as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceStatus {
    Active,
    Draining,
    Inactive,
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Active => "ACTIVE",
            ServiceStatus::Draining => "DRAINING",
            ServiceStatus::Inactive => "INACTIVE",
        }
    }

    fn parse(s: &str) -> ServiceStatus {
        match s {
            "ACTIVE" => ServiceStatus::Active,
            "DRAINING" => ServiceStatus::Draining,
            _ => ServiceStatus::Inactive,
        }
    }
}

/// A service as stored.
#[derive(Debug, Clone)]
pub struct ServiceRow {
    pub arn: String,
    pub cluster_arn: String,
    pub name: String,
    pub status: ServiceStatus,
    pub created_ms: i64,
    /// Whether the service was last seen in a steady state (for its event).
    pub steady: bool,
    pub doc: Service,
}

impl ServiceRow {
    pub fn desired(&self) -> i64 {
        self.doc.desired_count.unwrap_or(0)
    }

    /// The task group of its tasks.
    pub fn group(&self) -> String {
        format!("service:{}", self.name)
    }

    pub fn config(&self) -> DeploymentConfiguration {
        self.doc
            .deployment_configuration
            .clone()
            .unwrap_or_default()
    }

    pub fn breaker(&self) -> DeploymentCircuitBreaker {
        self.config()
            .deployment_circuit_breaker
            .unwrap_or(DeploymentCircuitBreaker {
                enable: false,
                rollback: false,
            })
    }
}

/// A deployment's status (`PRIMARY`, `ACTIVE`, `INACTIVE`).
pub const PRIMARY: &str = "PRIMARY";
pub const ACTIVE: &str = "ACTIVE";
pub const INACTIVE: &str = "INACTIVE";

/// A deployment as stored.
#[derive(Debug, Clone)]
pub struct DeploymentRow {
    pub id: String,
    pub service_arn: String,
    pub seq: i64,
    pub doc: Deployment,
    /// How it ended, for the service deployment it is
    /// (`ServiceDeploymentStatus`); `None` while it is under way.
    pub outcome: Option<ServiceDeploymentStatus>,
    pub rolled_back_to: Option<String>,
    /// A blue/green, linear or canary deployment: where its traffic shift
    /// stands.
    pub traffic: Option<deploy::Traffic>,
}

impl DeploymentRow {
    pub fn status(&self) -> &str {
        self.doc.status.as_deref().unwrap_or(INACTIVE)
    }
    pub fn rollout(&self) -> DeploymentRolloutState {
        self.doc
            .rollout_state
            .unwrap_or(DeploymentRolloutState::InProgress)
    }
    /// The deployment's number (the part of its id after `ecs-svc/`).
    pub fn number(&self) -> &str {
        self.id.trim_start_matches("ecs-svc/")
    }
}

/// Failures that count toward launch throttling (a condition on `tasks`):
/// tasks that never ran, that stopped on their own, or that failed their
/// health checks.
pub const FAILED: &str =
    "last_status = 'STOPPED' AND (stop_code IN ('TaskFailedToStart', 'EssentialContainerExited')
      OR stopped_reason LIKE 'Task failed container health checks%')";

/// Tasks stopped for failing their container health checks (a condition
/// on `tasks`).
pub const FAILED_HEALTH: &str =
    "last_status = 'STOPPED' AND stopped_reason LIKE 'Task failed container health checks%'";

/// The aggregates over a deployment's tasks that its failures are counted
/// from: (failures, health-check failures, whether any task has reached
/// RUNNING), as columns of a query over its tasks.
pub fn failure_columns() -> String {
    format!(
        "coalesce(sum({FAILED}), 0), coalesce(sum({FAILED_HEALTH}), 0),
         coalesce(max(started_at IS NOT NULL), 0)"
    )
}

/// The circuit breaker's count of a deployment's failed tasks (its
/// `failedTasks`), in ECS's two stages: until one of its tasks has reached
/// RUNNING, every task that failed (stage 1: none ran, so each failed to
/// start or to reach RUNNING); once one has, only the tasks stopped for
/// failing their health checks (stage 2). A task that ran and then exited
/// does not trip the breaker; launch throttling deals with it.
pub fn breaker_count(failed: i64, failed_health: i64, ran: bool) -> i64 {
    if ran {
        failed_health
    } else {
        failed
    }
}

/// The breaker's count of a deployment's failed tasks.
fn failed_count(conn: &Connection, deployment_id: &str) -> ApiResult<i64> {
    let (failed, health, ran): (i64, i64, bool) = conn
        .prepare_cached(&format!(
            "SELECT {} FROM tasks INDEXED BY tasks_by_started_by WHERE started_by = ?1",
            failure_columns()
        ))?
        .query_row([deployment_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(breaker_count(failed, health, ran))
}

const SELECT: &str = "SELECT arn, cluster_arn, name, status, created_at, steady, doc FROM services";

fn from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<ServiceRow> {
    let doc: String = r.get(6)?;
    Ok(ServiceRow {
        arn: r.get(0)?,
        cluster_arn: r.get(1)?,
        name: r.get(2)?,
        status: ServiceStatus::parse(&r.get::<_, String>(3)?),
        created_ms: r.get(4)?,
        steady: r.get(5)?,
        doc: serde_json::from_str(&doc).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e))
        })?,
    })
}

pub fn load(conn: &Connection, arn: &str) -> ApiResult<Option<ServiceRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT} WHERE arn = ?1 ORDER BY created_at DESC LIMIT 1"
        ))?
        .query_row([arn], from_sql)
        .optional()?)
}

/// The service of a cluster named `name` (or by ARN), the newest of that
/// name when an INACTIVE one was created again.
fn find(
    conn: &Connection,
    ctx: &Ctx,
    cluster: &clusters::ClusterRow,
    ident: &str,
) -> ApiResult<Option<ServiceRow>> {
    let arn = service_arn(ctx, cluster, ident);
    Ok(load(conn, &arn)?.filter(|s| s.cluster_arn == cluster.arn))
}

/// The service a call names in `cluster`; ServiceNotFoundException when
/// there is none.
pub fn find_in(
    conn: &Connection,
    ctx: &Ctx,
    cluster: &clusters::ClusterRow,
    ident: &str,
) -> ApiResult<ServiceRow> {
    find(conn, ctx, cluster, ident)?.ok_or_else(not_found)
}

/// Whether an outside tool drives the service's deployments through task
/// sets (the EXTERNAL deployment controller).
pub fn is_external(s: &Service) -> bool {
    s.deployment_controller
        .as_ref()
        .is_some_and(|c| c.r#type == DeploymentControllerType::External)
}

/// A cluster's services by status and launch: (ACTIVE on EC2, ACTIVE on
/// FARGATE, DRAINING on EC2, DRAINING on FARGATE), for its statistics. A
/// service whose capacity provider strategy names a Fargate provider counts
/// as FARGATE.
pub fn statistics(conn: &Connection, cluster_arn: &str) -> ApiResult<[i64; 4]> {
    let mut out = [0; 4];
    let rows: Vec<ServiceRow> = conn
        .prepare_cached(&format!(
            "{SELECT} WHERE cluster_arn = ?1 AND status IN ('ACTIVE', 'DRAINING')"
        ))?
        .query_map([cluster_arn], from_sql)?
        .collect::<Result<_, _>>()?;
    for s in rows {
        let fargate = s.doc.launch_type == Some(LaunchType::Fargate)
            || s.doc
                .capacity_provider_strategy
                .iter()
                .flatten()
                .any(|i| super::capacity_providers::is_fargate(&i.capacity_provider));
        let i = usize::from(s.status == ServiceStatus::Draining) * 2 + usize::from(fargate);
        out[i] += 1;
    }
    Ok(out)
}

/// How a service or task set that names neither a launch type nor a
/// strategy launches: by the cluster's default capacity provider strategy,
/// or on EC2 when the cluster has none.
pub fn default_launch(
    cluster: &clusters::ClusterRow,
    launch_type: Option<LaunchType>,
    strategy: Option<Vec<CapacityProviderStrategyItem>>,
) -> (
    Option<LaunchType>,
    Option<Vec<CapacityProviderStrategyItem>>,
) {
    if launch_type.is_some() || strategy.is_some() {
        return (launch_type, strategy);
    }
    let default = &cluster.doc.default_capacity_provider_strategy;
    if default.is_empty() {
        (Some(LaunchType::Ec2), None)
    } else {
        (None, Some(default.clone()))
    }
}

/// The platform version and family of a FARGATE service or task set
/// (`LATEST` and `Linux` unless named); others keep what they name.
pub fn platform(
    launch_type: Option<LaunchType>,
    version: Option<String>,
) -> (Option<String>, Option<String>) {
    if launch_type == Some(LaunchType::Fargate) {
        (
            Some(version.unwrap_or_else(|| "LATEST".into())),
            Some("Linux".into()),
        )
    } else {
        (version, None)
    }
}

/// The service's ARN for a name or ARN.
fn service_arn(ctx: &Ctx, cluster: &clusters::ClusterRow, ident: &str) -> String {
    arn::resolve_in_cluster(ctx, "service", &cluster.name, ident)
}

/// Every service not yet INACTIVE, for the scheduler.
pub fn live(conn: &Connection) -> ApiResult<Vec<ServiceRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT} WHERE status != 'INACTIVE' ORDER BY created_at"
        ))?
        .query_map([], from_sql)?
        .collect::<Result<_, _>>()?)
}

/// How many ACTIVE services a cluster has.
pub fn active_count(conn: &Connection, cluster_arn: &str) -> ApiResult<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM services WHERE cluster_arn = ?1 AND status = 'ACTIVE'",
        )?
        .query_row([cluster_arn], |r| r.get(0))?)
}

/// How many services of a cluster are not yet INACTIVE.
pub fn live_count(conn: &Connection, cluster_arn: &str) -> ApiResult<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM services WHERE cluster_arn = ?1 AND status != 'INACTIVE'",
        )?
        .query_row([cluster_arn], |r| r.get(0))?)
}

pub fn save(conn: &Connection, s: &ServiceRow) -> ApiResult<()> {
    conn.prepare_cached("UPDATE services SET status = ?2, steady = ?3, doc = ?4 WHERE arn = ?1")?
        .execute(params![
            s.arn,
            s.status.as_str(),
            s.steady,
            serde_json::to_string(&s.doc).expect("serialises")
        ])?;
    Ok(())
}

const DEPLOYMENT: &str =
    "SELECT id, service_arn, seq, doc, outcome, rolled_back_to, traffic FROM service_deployments";

fn deployment_from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeploymentRow> {
    let doc: String = r.get(3)?;
    let outcome: Option<String> = r.get(4)?;
    Ok(DeploymentRow {
        id: r.get(0)?,
        service_arn: r.get(1)?,
        seq: r.get(2)?,
        doc: serde_json::from_str(&doc).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
        })?,
        outcome: outcome.and_then(|o| serde_json::from_value(json!(o)).ok()),
        rolled_back_to: r.get(5)?,
        traffic: r
            .get::<_, Option<String>>(6)?
            .and_then(|t| serde_json::from_str(&t).ok()),
    })
}

/// A service's deployments, newest first.
pub fn deployments(conn: &Connection, service_arn: &str) -> ApiResult<Vec<DeploymentRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "{DEPLOYMENT} WHERE service_arn = ?1 ORDER BY seq DESC"
        ))?
        .query_map([service_arn], deployment_from_sql)?
        .collect::<Result<_, _>>()?)
}

/// Every deployment not yet INACTIVE, of every service.
pub fn current_deployments(conn: &Connection) -> ApiResult<Vec<DeploymentRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "{DEPLOYMENT} WHERE status != 'INACTIVE' ORDER BY service_arn, seq DESC"
        ))?
        .query_map([], deployment_from_sql)?
        .collect::<Result<_, _>>()?)
}

fn deployment(conn: &Connection, id: &str) -> ApiResult<Option<DeploymentRow>> {
    Ok(conn
        .prepare_cached(&format!("{DEPLOYMENT} WHERE id = ?1"))?
        .query_row([id], deployment_from_sql)
        .optional()?)
}

pub fn save_deployment(conn: &Connection, d: &DeploymentRow) -> ApiResult<()> {
    conn.prepare_cached(
        "UPDATE service_deployments SET status = ?2, doc = ?3, outcome = ?4, rolled_back_to = ?5,
           traffic = ?6
         WHERE id = ?1",
    )?
    .execute(params![
        d.id,
        d.status(),
        serde_json::to_string(&d.doc).expect("serialises"),
        d.outcome.map(|o| o.as_str()),
        d.rolled_back_to,
        d.traffic
            .as_ref()
            .map(|t| serde_json::to_string(t).expect("serialises")),
    ])?;
    Ok(())
}

/// A new deployment id: `ecs-svc/` and 19 digits (from a fresh UUID, as
/// task ids are).
pub fn new_deployment_id() -> String {
    let n = 1_000_000_000_000_000_000u64
        + (uuid::Uuid::new_v4().as_u128() % 9_000_000_000_000_000_000) as u64;
    format!("ecs-svc/{n}")
}

/// Start a new deployment of `service` as it now stands: it becomes the
/// PRIMARY, the one before it ACTIVE (its tasks are replaced). Returns its
/// id. `reason` overrides the in-progress rollout reason (rollbacks).
pub fn start_deployment(
    tx: &Connection,
    ctx: &Ctx,
    service: &ServiceRow,
    reason: Option<String>,
) -> ApiResult<String> {
    let id = new_deployment_id();
    let earlier = deployments(tx, &service.arn)?;
    let traffic = initial_traffic(service, &earlier, ctx.now_millis());
    for mut d in earlier {
        if d.status() == PRIMARY {
            d.doc.status = Some(ACTIVE.into());
            d.doc.desired_count = Some(0);
            d.doc.updated_at = Some(ctx.now_epoch());
            if d.rollout() == DeploymentRolloutState::InProgress && d.outcome.is_none() {
                d.outcome = Some(ServiceDeploymentStatus::Stopped);
            }
            save_deployment(tx, &d)?;
        }
    }
    let s = &service.doc;
    let now = ctx.now_epoch();
    let doc = Deployment {
        id: Some(id.clone()),
        status: Some(PRIMARY.into()),
        task_definition: s.task_definition.clone(),
        desired_count: Some(service.desired()),
        pending_count: Some(0),
        running_count: Some(0),
        failed_tasks: Some(0),
        created_at: Some(now),
        updated_at: Some(now),
        capacity_provider_strategy: s.capacity_provider_strategy.clone(),
        launch_type: s.launch_type,
        platform_version: s.platform_version.clone(),
        platform_family: s.platform_family.clone(),
        network_configuration: s.network_configuration.clone(),
        rollout_state: Some(DeploymentRolloutState::InProgress),
        rollout_state_reason: Some(
            reason.unwrap_or_else(|| format!("ECS deployment {id} in progress.")),
        ),
        ..Deployment::default()
    };
    let seq: i64 = tx
        .prepare_cached(
            "SELECT coalesce(max(seq), 0) + 1 FROM service_deployments WHERE service_arn = ?1",
        )?
        .query_row([&service.arn], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT INTO service_deployments (id, service_arn, seq, status, created_at, doc, traffic)
         VALUES (?1, ?2, ?3, 'PRIMARY', ?4, ?5, ?6)",
    )?
    .execute(params![
        id,
        service.arn,
        seq,
        ctx.now_millis(),
        serde_json::to_string(&doc).expect("serialises"),
        traffic
            .as_ref()
            .map(|t| serde_json::to_string(t).expect("serialises")),
    ])?;
    Ok(id)
}

/// Whether `s` deploys by shifting traffic (`BLUE_GREEN`, `LINEAR`,
/// `CANARY`) rather than rolling.
pub fn shifts_traffic(s: &Service) -> bool {
    s.deployment_configuration
        .as_ref()
        .and_then(|c| c.strategy)
        .is_some_and(|st| st != DeploymentStrategy::Rolling)
}

/// Per load balancer of `s`, its two target groups: the primary
/// (`targetGroupArn`) and the alternate of its advanced configuration.
pub fn target_group_pairs(s: &Service) -> Vec<(String, String)> {
    s.load_balancers
        .iter()
        .flatten()
        .map(|lb| {
            let primary = lb.target_group_arn.clone().unwrap_or_default();
            let alternate = lb
                .advanced_configuration
                .as_ref()
                .and_then(|a| a.alternate_target_group_arn.clone())
                .unwrap_or_else(|| primary.clone());
            (primary, alternate)
        })
        .collect()
}

/// The traffic state a new deployment of `service` starts in: none for a
/// rolling service. Otherwise its tasks go to the target groups production
/// does not use (those of the newest deployment that took all traffic, or
/// the primary ones), starting in SCALE_UP; the first deployment has
/// nothing to shift from and starts on the primary groups in CLEAN_UP.
fn initial_traffic(
    service: &ServiceRow,
    earlier: &[DeploymentRow],
    now_ms: i64,
) -> Option<deploy::Traffic> {
    if !shifts_traffic(&service.doc) {
        return None;
    }
    let pairs = target_group_pairs(&service.doc);
    let primary: Vec<String> = pairs.iter().map(|(p, _)| p.clone()).collect();
    if earlier.is_empty() {
        return Some(deploy::Traffic {
            target_groups: primary,
            stage: deploy::Stage::CleanUp,
            percent: 100.0,
            since_ms: now_ms,
        });
    }
    let production = earlier
        .iter()
        .filter_map(|d| d.traffic.as_ref())
        .find(|t| matches!(t.stage, deploy::Stage::BakeTime | deploy::Stage::CleanUp))
        .map_or(primary, |t| t.target_groups.clone());
    let green = pairs
        .iter()
        .enumerate()
        .map(|(i, (p, a))| {
            if production.get(i) == Some(a) {
                p.clone()
            } else {
                a.clone()
            }
        })
        .collect();
    Some(deploy::Traffic {
        target_groups: green,
        stage: deploy::Stage::ScaleUp,
        percent: 0.0,
        since_ms: now_ms,
    })
}

/// Roll `service` back to the deployment `target`: the service takes its
/// revision again and a new deployment of it starts, in progress for
/// `reason`; `failed` (its rollout state and reason as the caller set them)
/// is kept as rolling back to it. Returns the new deployment's id.
pub fn roll_back(
    tx: &Connection,
    ctx: &Ctx,
    service: &mut ServiceRow,
    failed: DeploymentRow,
    target: &DeploymentRow,
    reason: String,
) -> ApiResult<String> {
    let s = &mut service.doc;
    s.task_definition = target.doc.task_definition.clone();
    s.launch_type = target.doc.launch_type;
    s.capacity_provider_strategy = target.doc.capacity_provider_strategy.clone();
    s.network_configuration = target.doc.network_configuration.clone();
    s.platform_version = target.doc.platform_version.clone();
    save(tx, service)?;
    let new_id = start_deployment(tx, ctx, service, Some(reason))?;
    // A traffic-shifting service goes back to the target groups the
    // target served from, all traffic at once.
    if let Some(mut new) = deployment(tx, &new_id)? {
        if let (Some(t), Some(back)) = (new.traffic.as_mut(), target.traffic.as_ref()) {
            t.target_groups = back.target_groups.clone();
            t.stage = deploy::Stage::CleanUp;
            t.percent = 100.0;
            save_deployment(tx, &new)?;
        }
    }
    // `start_deployment` made the failed one ACTIVE; keep why.
    if let Some(mut f) = deployment(tx, &failed.id)? {
        f.doc.rollout_state = failed.doc.rollout_state;
        f.doc.rollout_state_reason = failed.doc.rollout_state_reason.clone();
        f.doc.updated_at = failed.doc.updated_at;
        f.outcome = Some(ServiceDeploymentStatus::RollbackInProgress);
        f.rolled_back_to = Some(new_id.clone());
        save_deployment(tx, &f)?;
    }
    event(
        tx,
        ctx,
        &service.arn,
        &format!(
            "(service {}) rolling back to deployment {}.",
            service.name, target.id
        ),
    )?;
    Ok(new_id)
}

/// Record a service event (ECS keeps the last 100).
pub fn event(tx: &Connection, ctx: &Ctx, service_arn: &str, message: &str) -> ApiResult<()> {
    tx.prepare_cached(
        "INSERT INTO service_events (service_arn, id, created_at, message) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        service_arn,
        uuid::Uuid::new_v4().to_string(),
        ctx.now_millis(),
        message
    ])?;
    tx.prepare_cached(
        "DELETE FROM service_events WHERE service_arn = ?1 AND seq <=
           (SELECT seq FROM service_events WHERE service_arn = ?1 ORDER BY seq DESC LIMIT 1 OFFSET 100)",
    )?
    .execute([service_arn])?;
    Ok(())
}

/// The newest event's message and time (ms), to not repeat one.
pub fn last_event(tx: &Connection, service_arn: &str) -> ApiResult<Option<(String, i64)>> {
    Ok(tx
        .prepare_cached(
            "SELECT message, created_at FROM service_events WHERE service_arn = ?1
             ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([service_arn], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

fn events(conn: &Connection, service_arn: &str) -> ApiResult<Vec<ServiceEvent>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, created_at, message FROM service_events WHERE service_arn = ?1
             ORDER BY seq DESC LIMIT 100",
        )?
        .query_map([service_arn], |r| {
            Ok(ServiceEvent {
                id: Some(r.get(0)?),
                created_at: Some(millis_to_epoch(r.get(1)?)),
                message: Some(r.get(2)?),
            })
        })?
        .collect::<Result<_, _>>()?)
}

/// The service's live tasks (not STOPPED) by deployment:
/// (startedBy, lastStatus) and how many.
fn task_counts(conn: &Connection, s: &ServiceRow) -> ApiResult<Vec<(Option<String>, String, i64)>> {
    Ok(conn
        .prepare_cached(
            "SELECT started_by, last_status, count(*) FROM tasks INDEXED BY tasks_by_group
             WHERE cluster_arn = ?1 AND task_group = ?2 AND last_status != 'STOPPED'
             GROUP BY started_by, last_status",
        )?
        .query_map(params![s.cluster_arn, s.group()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?)
}

/// The ECS `Service`: what was asked, with its counts, deployments and
/// events as they stand.
pub fn render(conn: &Connection, s: &ServiceRow, with_tags: bool) -> ApiResult<Service> {
    let mut out = s.doc.clone();
    out.status = Some(s.status.as_str().into());
    let counts = task_counts(conn, s)?;
    let count = |dep: Option<&str>, running: bool| -> i64 {
        counts
            .iter()
            .filter(|(by, _, _)| dep.is_none_or(|d| by.as_deref() == Some(d)))
            .filter(|(_, st, _)| (st == "RUNNING") == running)
            .map(|(_, _, n)| n)
            .sum()
    };
    out.running_count = Some(count(None, true));
    out.pending_count = Some(count(None, false));
    let mut deps = Vec::new();
    for d in deployments(conn, &s.arn)? {
        if d.status() == INACTIVE {
            continue;
        }
        let mut doc = d.doc.clone();
        doc.running_count = Some(count(Some(&d.id), true));
        doc.pending_count = Some(count(Some(&d.id), false));
        doc.failed_tasks = Some(failed_count(conn, &d.id)?);
        deps.push(doc);
    }
    if let Some(primary) = deps.first() {
        out.task_definition = primary.task_definition.clone();
    }
    out.deployments = Some(deps);
    if is_external(&s.doc) {
        out.task_sets = Some(super::task_sets::rendered(conn, s)?);
    }
    out.events = Some(events(conn, &s.arn)?);
    out.tags = if with_tags {
        Some(tags::load(conn, &s.arn)?)
    } else {
        None
    };
    Ok(out)
}

fn deployment_not_found(arn: &str) -> ApiError {
    ApiError::new(
        "ServiceDeploymentNotFoundException",
        format!("The service deployment {arn} does not exist."),
    )
}

fn not_found() -> ApiError {
    ApiError::new("ServiceNotFoundException", "Service not found.")
}

fn not_active() -> ApiError {
    ApiError::new("ServiceNotActiveException", "Service was not ACTIVE.")
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The deployment bounds as ECS fills and checks them.
fn deployment_configuration(
    given: Option<DeploymentConfiguration>,
    daemon: bool,
) -> ApiResult<DeploymentConfiguration> {
    let mut c = given.unwrap_or_default();
    let (min_default, max_default) = if daemon { (0, 100) } else { (100, 200) };
    let min = *c.minimum_healthy_percent.get_or_insert(min_default);
    let max = *c.maximum_percent.get_or_insert(max_default);
    if !(0..=100).contains(&min) {
        return Err(ApiError::invalid_parameter(
            "deploymentConfiguration.minimumHealthyPercent must be between 0 and 100.",
        ));
    }
    if daemon && max != 100 {
        return Err(ApiError::invalid_parameter(
            "The maximumPercent of a service using the DAEMON scheduling strategy must be 100.",
        ));
    }
    if !(100..=200).contains(&max) {
        return Err(ApiError::invalid_parameter(
            "deploymentConfiguration.maximumPercent must be between 100 and 200.",
        ));
    }
    let strategy = c.strategy.unwrap_or_default();
    if daemon && strategy != DeploymentStrategy::Rolling {
        return Err(ApiError::invalid_parameter(format!(
            "The {} deployment strategy is not supported for services using the DAEMON scheduling strategy.",
            strategy.as_str()
        )));
    }
    let minutes = |what: &str, v: Option<i64>| match v {
        Some(m) if !(0..=1440).contains(&m) => Err(ApiError::invalid_parameter(format!(
            "deploymentConfiguration.{what} must be between 0 and 1440."
        ))),
        _ => Ok(()),
    };
    minutes("bakeTimeInMinutes", c.bake_time_in_minutes)?;
    if let Some(l) = &c.linear_configuration {
        minutes(
            "linearConfiguration.stepBakeTimeInMinutes",
            l.step_bake_time_in_minutes,
        )?;
        if l.step_percent.is_some_and(|p| !(3.0..=100.0).contains(&p)) {
            return Err(ApiError::invalid_parameter(
                "deploymentConfiguration.linearConfiguration.stepPercent must be between 3.0 and 100.0.",
            ));
        }
    }
    if let Some(k) = &c.canary_configuration {
        minutes(
            "canaryConfiguration.canaryBakeTimeInMinutes",
            k.canary_bake_time_in_minutes,
        )?;
        if k.canary_percent
            .is_some_and(|p| !(0.1..=100.0).contains(&p))
        {
            return Err(ApiError::invalid_parameter(
                "deploymentConfiguration.canaryConfiguration.canaryPercent must be between 0.1 and 100.0.",
            ));
        }
    }
    if c.deployment_circuit_breaker.is_none() {
        c.deployment_circuit_breaker = Some(DeploymentCircuitBreaker {
            enable: false,
            rollback: false,
        });
    }
    Ok(c)
}

/// What a service's tasks are launched with, checked as RunTask checks it,
/// so a service that could never start a task is refused up front.
fn check_launch(
    tx: &Connection,
    ctx: &Ctx,
    cluster: &clusters::ClusterRow,
    s: &Service,
) -> ApiResult<()> {
    let td = s
        .task_definition
        .clone()
        .ok_or_else(|| ApiError::invalid_parameter("A task definition must be specified."))?;
    tasks::check_request(
        tx,
        ctx,
        cluster,
        &tasks::TaskRequest {
            cluster: Some(cluster.arn.clone()),
            task_definition: td,
            count: 1,
            launch_type: s.launch_type,
            capacity_provider_strategy: s.capacity_provider_strategy.clone(),
            network_configuration: s.network_configuration.clone(),
            placement_constraints: s.placement_constraints.clone().unwrap_or_default(),
            placement_strategy: s.placement_strategy.clone().unwrap_or_default(),
            ..tasks::TaskRequest::default()
        },
    )?;
    super::service_lb::check(tx, ctx, s)
}

impl Ecs {
    pub(super) fn create_service(
        &self,
        ctx: &Ctx,
        req: CreateServiceRequest,
    ) -> ApiResult<CreateServiceResponse> {
        let name = req.service_name.clone();
        if !valid_name(&name) {
            return Err(ApiError::invalid_parameter(
                "Service name must begin with a letter and contain only letters, numbers, hyphens and underscores, up to 255 characters.",
            ));
        }
        let daemon = req.scheduling_strategy == Some(SchedulingStrategy::Daemon);
        if daemon {
            if req.launch_type == Some(LaunchType::Fargate) {
                return Err(ApiError::invalid_parameter(
                    "The DAEMON scheduling strategy is not supported for services using the FARGATE launch type.",
                ));
            }
            if req.desired_count.is_some() {
                return Err(ApiError::invalid_parameter(
                    "A desired count cannot be specified for a service using the DAEMON scheduling strategy.",
                ));
            }
            if req.capacity_provider_strategy.is_some() {
                return Err(ApiError::invalid_parameter(
                    "Capacity provider strategies are not supported for services using the DAEMON scheduling strategy.",
                ));
            }
            if req
                .placement_strategy
                .as_ref()
                .is_some_and(|p| !p.is_empty())
            {
                return Err(ApiError::invalid_parameter(
                    "Placement strategies are not supported for services using the DAEMON scheduling strategy.",
                ));
            }
        }
        let controller = req
            .deployment_controller
            .clone()
            .unwrap_or(DeploymentController {
                r#type: DeploymentControllerType::Ecs,
            });
        if controller.r#type == DeploymentControllerType::CodeDeploy {
            return Err(ApiError::invalid_parameter(
                "The CODE_DEPLOY deployment controller needs AWS CodeDeploy, which Berth does not serve: use the EXTERNAL controller with task sets, or the ECS controller.",
            ));
        }
        let external = controller.r#type == DeploymentControllerType::External;
        if req.desired_count.is_some_and(|n| n < 0) {
            return Err(ApiError::invalid_parameter(
                "desiredCount must be greater than or equal to 0.",
            ));
        }
        if req.task_definition.is_none() && !external {
            return Err(ApiError::invalid_parameter(
                "A task definition must be specified for a service using the ECS deployment controller.",
            ));
        }
        let user_tags = tags::from_shapes(req.tags.as_deref().unwrap_or_default());
        tags::check_user_tags(&user_tags)?;
        let config = deployment_configuration(req.deployment_configuration.clone(), daemon)?;
        let out = self.store.write(|tx| {
            let cluster = clusters::resolve_or_create_default(tx, ctx, req.cluster.as_deref())?;
            let arn = arn::in_cluster(ctx, "service", &cluster.name, &name);
            let td = match req.task_definition.as_deref() {
                Some(td) => Some(taskdefs::resolve_active(tx, ctx, td)?),
                None => None,
            };
            let td_arn = td.as_ref().map(|t| t.arn.clone());
            let (launch_type, strategy) = if daemon {
                (Some(LaunchType::Ec2), req.capacity_provider_strategy.clone())
            } else {
                default_launch(&cluster, req.launch_type, req.capacity_provider_strategy.clone())
            };
            let (platform_version, platform_family) = platform(launch_type, req.platform_version.clone());
            let doc = Service {
                service_arn: Some(arn.clone()),
                service_name: Some(name.clone()),
                cluster_arn: Some(cluster.arn.clone()),
                load_balancers: Some(req.load_balancers.clone().unwrap_or_default()),
                service_registries: Some(req.service_registries.clone().unwrap_or_default()),
                desired_count: Some(req.desired_count.unwrap_or(0)),
                launch_type,
                capacity_provider_strategy: strategy,
                platform_version,
                platform_family,
                task_definition: td_arn.clone(),
                deployment_configuration: Some(config.clone()),
                role_arn: req.role.clone(),
                created_at: Some(ctx.now_epoch()),
                placement_constraints: Some(req.placement_constraints.clone().unwrap_or_default()),
                placement_strategy: Some(req.placement_strategy.clone().unwrap_or_default()),
                network_configuration: req.network_configuration.clone(),
                health_check_grace_period_seconds: req.health_check_grace_period_seconds,
                scheduling_strategy: Some(req.scheduling_strategy.unwrap_or(SchedulingStrategy::Replica)),
                deployment_controller: Some(controller.clone()),
                created_by: Some(ctx.principal_arn.clone()),
                enable_ecs_managed_tags: Some(req.enable_ecs_managed_tags.unwrap_or(false)),
                propagate_tags: Some(req.propagate_tags.unwrap_or(super::shapes::PropagateTags::None)),
                enable_execute_command: Some(req.enable_execute_command.unwrap_or(false)),
                availability_zone_rebalancing: req.availability_zone_rebalancing,
                ..Service::default()
            };
            if td_arn.is_some() {
                check_launch(tx, ctx, &cluster, &doc)?;
            }
            if let Some(existing) = find(tx, ctx, &cluster, &name)? {
                match existing.status {
                    ServiceStatus::Active => {
                        // The same request again answers the same service.
                        let same = |mut a: Service, mut b: Service| {
                            a.created_at = None;
                            b.created_at = None;
                            a.task_definition = None;
                            b.task_definition = None;
                            a == b
                        };
                        let current = deployments(tx, &existing.arn)?
                            .into_iter()
                            .find(|d| d.status() == PRIMARY)
                            .and_then(|d| d.doc.task_definition);
                        let current = if external { existing.doc.task_definition.clone() } else { current };
                        if same(existing.doc.clone(), doc.clone()) && (external || current == td_arn) {
                            return render(tx, &existing, false);
                        }
                        return Err(ApiError::invalid_parameter("Creation of service was not idempotent."));
                    }
                    ServiceStatus::Draining => {
                        return Err(ApiError::invalid_parameter(
                            "Unable to Start a service that is still Draining.",
                        ));
                    }
                    ServiceStatus::Inactive => {
                        tx.prepare_cached("DELETE FROM services WHERE arn = ?1")?.execute([&arn])?;
                        tx.prepare_cached("DELETE FROM service_events WHERE service_arn = ?1")?.execute([&arn])?;
                    }
                }
            }
            tx.prepare_cached(
                "INSERT INTO services (arn, account, region, cluster_arn, name, status, created_at, steady, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'ACTIVE', ?6, 0, ?7)",
            )?
            .execute(params![
                arn,
                ctx.account,
                ctx.region,
                cluster.arn,
                name,
                ctx.now_millis(),
                serde_json::to_string(&doc).expect("serialises")
            ])?;
            tags::put(tx, &arn, &user_tags)?;
            let row = load(tx, &arn)?.expect("just inserted");
            // Task sets, made by the outside tool, carry an EXTERNAL
            // service's tasks; it has no deployments of its own.
            if !external {
                start_deployment(tx, ctx, &row, None)?;
            }
            render(tx, &row, false)
        })?;
        self.bus.wake(Topic::Services);
        Ok(CreateServiceResponse { service: Some(out) })
    }

    pub(super) fn update_service(
        &self,
        ctx: &Ctx,
        req: UpdateServiceRequest,
    ) -> ApiResult<UpdateServiceResponse> {
        if req.desired_count.is_some_and(|n| n < 0) {
            return Err(ApiError::invalid_parameter(
                "desiredCount must be greater than or equal to 0.",
            ));
        }
        if req.deployment_controller.is_some() {
            return Err(ApiError::invalid_parameter(
                "A service's deployment controller cannot be changed: create the service again with the controller it needs.",
            ));
        }
        let out = self.store.write(|tx| {
            let cluster = clusters::resolve_active(tx, ctx, req.cluster.as_deref())?;
            let mut s = find(tx, ctx, &cluster, &req.service)?.ok_or_else(not_found)?;
            if s.status != ServiceStatus::Active {
                return Err(not_active());
            }
            let daemon = s.doc.scheduling_strategy == Some(SchedulingStrategy::Daemon);
            if daemon && req.desired_count.is_some() {
                return Err(ApiError::invalid_parameter(
                    "A desired count cannot be specified for a service using the DAEMON scheduling strategy.",
                ));
            }
            let before = s.doc.clone();
            let current_td = deployments(tx, &s.arn)?
                .into_iter()
                .find(|d| d.status() == PRIMARY)
                .and_then(|d| d.doc.task_definition)
                .or(before.task_definition.clone());
            let d = &mut s.doc;
            if let Some(n) = req.desired_count {
                d.desired_count = Some(n);
            }
            if let Some(td) = &req.task_definition {
                d.task_definition = Some(taskdefs::resolve_active(tx, ctx, td)?.arn);
            } else {
                d.task_definition = current_td.clone();
            }
            if let Some(c) = &req.capacity_provider_strategy {
                d.capacity_provider_strategy = Some(c.clone());
                d.launch_type = None;
            }
            if let Some(c) = &req.deployment_configuration {
                // What the request gives replaces what the service had.
                let old = d.deployment_configuration.clone().unwrap_or_default();
                let c = c.clone();
                let merged = DeploymentConfiguration {
                    minimum_healthy_percent: c.minimum_healthy_percent.or(old.minimum_healthy_percent),
                    maximum_percent: c.maximum_percent.or(old.maximum_percent),
                    deployment_circuit_breaker: c
                        .deployment_circuit_breaker
                        .or(old.deployment_circuit_breaker),
                    alarms: c.alarms.or(old.alarms),
                    strategy: c.strategy.or(old.strategy),
                    bake_time_in_minutes: c.bake_time_in_minutes.or(old.bake_time_in_minutes),
                    linear_configuration: c.linear_configuration.or(old.linear_configuration),
                    canary_configuration: c.canary_configuration.or(old.canary_configuration),
                    lifecycle_hooks: c.lifecycle_hooks.or(old.lifecycle_hooks),
                };
                d.deployment_configuration = Some(deployment_configuration(Some(merged), daemon)?);
            }
            if let Some(n) = &req.network_configuration {
                d.network_configuration = Some(n.clone());
            }
            if let Some(p) = &req.placement_constraints {
                d.placement_constraints = Some(p.clone());
            }
            if let Some(p) = &req.placement_strategy {
                d.placement_strategy = Some(p.clone());
            }
            if let Some(p) = &req.platform_version {
                d.platform_version = Some(p.clone());
            }
            if let Some(g) = req.health_check_grace_period_seconds {
                d.health_check_grace_period_seconds = Some(g);
            }
            if let Some(e) = req.enable_execute_command {
                d.enable_execute_command = Some(e);
            }
            if let Some(e) = req.enable_ecs_managed_tags {
                d.enable_ecs_managed_tags = Some(e);
            }
            if let Some(p) = req.propagate_tags {
                d.propagate_tags = Some(p);
            }
            if let Some(l) = &req.load_balancers {
                d.load_balancers = Some(l.clone());
            }
            if let Some(r) = &req.service_registries {
                d.service_registries = Some(r.clone());
            }
            if let Some(a) = req.availability_zone_rebalancing {
                d.availability_zone_rebalancing = Some(a);
            }
            if is_external(&s.doc) {
                let revision_change = req.task_definition.is_some()
                    || req.force_new_deployment == Some(true)
                    || req.network_configuration.is_some()
                    || req.capacity_provider_strategy.is_some()
                    || req.platform_version.is_some()
                    || req.load_balancers.is_some();
                if revision_change {
                    return Err(ApiError::invalid_parameter(
                        "The service uses the EXTERNAL deployment controller: its task definition, network, capacity and load balancers are changed through task sets.",
                    ));
                }
                save(tx, &s)?;
                return render(tx, &s, false);
            }
            check_launch(tx, ctx, &cluster, &s.doc)?;
            let redeploy = req.force_new_deployment == Some(true)
                || s.doc.task_definition != current_td
                || s.doc.network_configuration != before.network_configuration
                || s.doc.capacity_provider_strategy != before.capacity_provider_strategy
                || s.doc.platform_version != before.platform_version
                || s.doc.placement_constraints != before.placement_constraints
                || s.doc.placement_strategy != before.placement_strategy
                || s.doc.load_balancers != before.load_balancers;
            save(tx, &s)?;
            if redeploy {
                start_deployment(tx, ctx, &s, None)?;
            } else if let Some(mut primary) = deployments(tx, &s.arn)?
                .into_iter()
                .find(|d| d.status() == PRIMARY)
            {
                primary.doc.desired_count = Some(s.desired());
                primary.doc.updated_at = Some(ctx.now_epoch());
                save_deployment(tx, &primary)?;
            }
            render(tx, &s, false)
        })?;
        self.bus.wake(Topic::Services);
        Ok(UpdateServiceResponse { service: Some(out) })
    }

    pub(super) fn delete_service(
        &self,
        ctx: &Ctx,
        req: DeleteServiceRequest,
    ) -> ApiResult<DeleteServiceResponse> {
        let out = self.store.write(|tx| {
            let cluster = clusters::resolve_active(tx, ctx, req.cluster.as_deref())?;
            let mut s = find(tx, ctx, &cluster, &req.service)?.ok_or_else(not_found)?;
            if s.status != ServiceStatus::Active {
                return Err(not_active());
            }
            if s.desired() > 0 && req.force != Some(true) {
                return Err(ApiError::invalid_parameter(
                    "The service cannot be stopped while it is scaled above 0.",
                ));
            }
            s.status = ServiceStatus::Draining;
            s.doc.desired_count = Some(0);
            save(tx, &s)?;
            for mut d in deployments(tx, &s.arn)? {
                if d.status() != INACTIVE {
                    d.doc.desired_count = Some(0);
                    save_deployment(tx, &d)?;
                }
            }
            render(tx, &s, false)
        })?;
        self.bus.wake(Topic::Services);
        Ok(DeleteServiceResponse { service: Some(out) })
    }

    pub(super) fn describe_services(
        &self,
        ctx: &Ctx,
        req: DescribeServicesRequest,
    ) -> ApiResult<DescribeServicesResponse> {
        if req.services.is_empty() || req.services.len() > 10 {
            return Err(ApiError::invalid_parameter(
                "Services cannot be empty and can have at most 10 items.",
            ));
        }
        let with_tags = req
            .include
            .iter()
            .flatten()
            .any(|i| *i == ServiceField::Tags);
        self.store.read(|conn| {
            let cluster = clusters::resolve_active(conn, ctx, req.cluster.as_deref())?;
            let (services, failures) = describe_each(&req.services, |ident| {
                Ok(match find(conn, ctx, &cluster, ident)? {
                    Some(s) => Ok(render(conn, &s, with_tags)?),
                    None => Err(service_arn(ctx, &cluster, ident)),
                })
            })?;
            Ok(DescribeServicesResponse {
                services: Some(services),
                failures: Some(failures),
            })
        })
    }

    pub(super) fn list_services(
        &self,
        ctx: &Ctx,
        req: ListServicesRequest,
    ) -> ApiResult<ListServicesResponse> {
        let size = paging::page_size(req.max_results, paging::MAX_RESULTS)?;
        let after = match &req.next_token {
            Some(t) => Some(paging::decode_as::<(i64, String)>(t)?),
            None => None,
        };
        self.store.read(|conn| {
            let cluster = clusters::resolve_active(conn, ctx, req.cluster.as_deref())?;
            let rows: Vec<ServiceRow> = conn
                .prepare_cached(&format!(
                    "{SELECT} WHERE cluster_arn = ?1 AND status != 'INACTIVE' ORDER BY created_at, arn"
                ))?
                .query_map([&cluster.arn], from_sql)?
                .collect::<Result<_, _>>()?;
            let rows: Vec<(i64, String)> = rows
                .into_iter()
                .filter(|s| req.launch_type.is_none_or(|l| s.doc.launch_type == Some(l)))
                .filter(|s| {
                    req.scheduling_strategy
                        .is_none_or(|st| s.doc.scheduling_strategy == Some(st))
                })
                .map(|s| (s.created_ms, s.arn))
                .filter(|k| after.as_ref().is_none_or(|a| k > a))
                .collect();
            let (page, token) = paging::page(rows, size, |(ts, arn)| json!([ts, arn]));
            Ok(ListServicesResponse {
                service_arns: Some(page.into_iter().map(|(_, a)| a).collect()),
                next_token: token,
            })
        })
    }

    pub(super) fn list_service_deployments(
        &self,
        ctx: &Ctx,
        req: ListServiceDeploymentsRequest,
    ) -> ApiResult<ListServiceDeploymentsResponse> {
        let size = paging::page_size(req.max_results, 100)?;
        let start = match &req.next_token {
            Some(t) => paging::offset(t, "service-deployments")
                .ok_or_else(|| ApiError::invalid_parameter("Invalid nextToken."))?,
            None => 0,
        };
        self.store.read(|conn| {
            let cluster = clusters::resolve_active(conn, ctx, req.cluster.as_deref())?;
            let s = find(conn, ctx, &cluster, &req.service)?.ok_or_else(not_found)?;
            let mut briefs = Vec::new();
            for d in deployments(conn, &s.arn)? {
                let sd = service_deployment(ctx, &cluster, &s, &d);
                let wanted = req
                    .status
                    .as_ref()
                    .is_none_or(|st| st.is_empty() || sd.status.is_some_and(|x| st.contains(&x)));
                let created = sd.created_at.unwrap_or_default();
                let in_range = req.created_at.as_ref().is_none_or(|r| {
                    r.after.is_none_or(|a| created >= a) && r.before.is_none_or(|b| created <= b)
                });
                if wanted && in_range {
                    briefs.push(ServiceDeploymentBrief {
                        service_deployment_arn: sd.service_deployment_arn,
                        service_arn: sd.service_arn,
                        cluster_arn: sd.cluster_arn,
                        started_at: sd.started_at,
                        created_at: sd.created_at,
                        finished_at: sd.finished_at,
                        target_service_revision_arn: sd.target_service_revision.and_then(|r| r.arn),
                        status: sd.status,
                        status_reason: sd.status_reason,
                    });
                }
            }
            let (page, token) = paging::offset_page(briefs, start, size, "service-deployments");
            Ok(ListServiceDeploymentsResponse {
                service_deployments: Some(page),
                next_token: token,
            })
        })
    }

    /// Stop a deployment in progress by rolling the service back to its
    /// last completed revision (ECS's one stop type; ABORT is refused as
    /// ECS documents).
    pub(super) fn stop_service_deployment(
        &self,
        ctx: &Ctx,
        req: StopServiceDeploymentRequest,
    ) -> ApiResult<StopServiceDeploymentResponse> {
        if req.stop_type == Some(StopServiceDeploymentStopType::Abort) {
            return Err(ApiError::invalid_parameter(
                "The stopType ABORT is not supported for this service deployment. The valid value is ROLLBACK.",
            ));
        }
        let a = req.service_deployment_arn.clone();
        let rolled = self.store.write(|tx| {
            let Some((_, mut s, d)) = by_revision_arn(tx, ctx, &a, "service-deployment")? else {
                return Err(deployment_not_found(&a));
            };
            match d.outcome {
                Some(ServiceDeploymentStatus::RollbackInProgress | ServiceDeploymentStatus::RollbackRequested) => {
                    return Ok(false);
                }
                None if d.status() == PRIMARY && d.rollout() == DeploymentRolloutState::InProgress => {}
                _ => {
                    return Err(ApiError::new(
                        "ConflictException",
                        format!("The service deployment {a} is not in progress, so it cannot be stopped."),
                    ))
                }
            }
            if s.status != ServiceStatus::Active {
                return Err(not_active());
            }
            let Some(target) = deployments(tx, &s.arn)?
                .into_iter()
                .filter(|x| x.id != d.id)
                .find(|x| x.rollout() == DeploymentRolloutState::Completed)
            else {
                return Err(ApiError::new(
                    "ConflictException",
                    format!("The service deployment {a} cannot be rolled back: the service has no completed deployment to return to."),
                ));
            };
            let mut failed = d.clone();
            failed.doc.rollout_state = Some(DeploymentRolloutState::Failed);
            failed.doc.rollout_state_reason = Some("Service deployment stopped: rollback requested.".into());
            failed.doc.updated_at = Some(ctx.now_epoch());
            event(
                tx,
                ctx,
                &s.arn,
                &format!("(service {}) (deployment {}) was stopped: rollback requested.", s.name, d.id),
            )?;
            let reason = format!("Service deployment rolling back to deploymentId {} on request.", target.id);
            roll_back(tx, ctx, &mut s, failed, &target, reason)?;
            Ok(true)
        })?;
        if rolled {
            self.bus.wake(Topic::Services);
        }
        Ok(StopServiceDeploymentResponse {
            service_deployment_arn: Some(a),
        })
    }

    /// Service Connect namespaces are Cloud Map's, which Berth does not
    /// serve yet: no namespace exists, so every one is not found.
    pub(super) fn list_services_by_namespace(
        &self,
        _ctx: &Ctx,
        req: ListServicesByNamespaceRequest,
    ) -> ApiResult<ListServicesByNamespaceResponse> {
        paging::page_size(req.max_results, paging::MAX_RESULTS)?;
        Err(ApiError::new(
            "NamespaceNotFoundException",
            format!("The specified namespace {} does not exist.", req.namespace),
        ))
    }

    /// A deployment waits on a lifecycle hook only when one is running;
    /// Berth runs no hooks, so none is ever waiting to be continued.
    pub(super) fn continue_service_deployment(
        &self,
        ctx: &Ctx,
        req: ContinueServiceDeploymentRequest,
    ) -> ApiResult<ContinueServiceDeploymentResponse> {
        let a = req.service_deployment_arn.clone();
        self.store.read(|conn| {
            if by_revision_arn(conn, ctx, &a, "service-deployment")?.is_none() {
                return Err(deployment_not_found(&a));
            }
            Err(ApiError::invalid_parameter(format!(
                "No lifecycle hook {} is waiting in the service deployment {a}.",
                req.hook_id
            )))
        })
    }

    pub(super) fn describe_service_deployments(
        &self,
        ctx: &Ctx,
        req: DescribeServiceDeploymentsRequest,
    ) -> ApiResult<DescribeServiceDeploymentsResponse> {
        if req.service_deployment_arns.is_empty() || req.service_deployment_arns.len() > 20 {
            return Err(ApiError::invalid_parameter(
                "serviceDeploymentArns cannot be empty and can have at most 20 items.",
            ));
        }
        self.store.read(|conn| {
            let (found, failures) = describe_each(&req.service_deployment_arns, |a| {
                Ok(match by_revision_arn(conn, ctx, a, "service-deployment")? {
                    Some((cluster, s, d)) => Ok(service_deployment(ctx, &cluster, &s, &d)),
                    None => Err(a.clone()),
                })
            })?;
            Ok(DescribeServiceDeploymentsResponse {
                service_deployments: Some(found),
                failures: Some(failures),
            })
        })
    }

    pub(super) fn describe_service_revisions(
        &self,
        ctx: &Ctx,
        req: DescribeServiceRevisionsRequest,
    ) -> ApiResult<DescribeServiceRevisionsResponse> {
        if req.service_revision_arns.is_empty() || req.service_revision_arns.len() > 20 {
            return Err(ApiError::invalid_parameter(
                "serviceRevisionArns cannot be empty and can have at most 20 items.",
            ));
        }
        self.store.read(|conn| {
            let (found, failures) = describe_each(&req.service_revision_arns, |a| {
                Ok(match by_revision_arn(conn, ctx, a, "service-revision")? {
                    Some((cluster, s, d)) => Ok(service_revision(ctx, &cluster, &s, &d)),
                    None => Err(a.clone()),
                })
            })?;
            Ok(DescribeServiceRevisionsResponse {
                service_revisions: Some(found),
                failures: Some(failures),
            })
        })
    }
}

/// `service-deployment/<cluster>/<service>/<number>` or
/// `service-revision/…`: its cluster, service and deployment.
fn by_revision_arn(
    conn: &Connection,
    ctx: &Ctx,
    a: &str,
    kind: &str,
) -> ApiResult<Option<(clusters::ClusterRow, ServiceRow, DeploymentRow)>> {
    let Some(parsed) = arn::parse(a).filter(|p| p.kind == kind) else {
        return Ok(None);
    };
    let mut parts = parsed.rest.splitn(3, '/');
    let (Some(c), Some(svc), Some(number)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(None);
    };
    let Some(cluster) = clusters::find(conn, ctx, c)? else {
        return Ok(None);
    };
    let Some(s) = find(conn, ctx, &cluster, svc)? else {
        return Ok(None);
    };
    let Some(d) =
        deployment(conn, &format!("ecs-svc/{number}"))?.filter(|d| d.service_arn == s.arn)
    else {
        return Ok(None);
    };
    Ok(Some((cluster, s, d)))
}

fn revision_arn(
    ctx: &Ctx,
    cluster: &clusters::ClusterRow,
    s: &ServiceRow,
    d: &DeploymentRow,
) -> String {
    arn::of(
        ctx,
        &format!(
            "service-revision/{}/{}/{}",
            cluster.name,
            s.name,
            d.number()
        ),
    )
}

/// A deployment as the service deployment it is.
fn service_deployment(
    ctx: &Ctx,
    cluster: &clusters::ClusterRow,
    s: &ServiceRow,
    d: &DeploymentRow,
) -> ServiceDeployment {
    let status = d.outcome.unwrap_or(match d.rollout() {
        DeploymentRolloutState::Completed => ServiceDeploymentStatus::Successful,
        DeploymentRolloutState::Failed => ServiceDeploymentStatus::RollbackFailed,
        DeploymentRolloutState::InProgress => ServiceDeploymentStatus::InProgress,
    });
    let finished = !matches!(
        status,
        ServiceDeploymentStatus::InProgress | ServiceDeploymentStatus::Pending
    );
    ServiceDeployment {
        service_deployment_arn: Some(arn::of(
            ctx,
            &format!(
                "service-deployment/{}/{}/{}",
                cluster.name,
                s.name,
                d.number()
            ),
        )),
        service_arn: Some(s.arn.clone()),
        cluster_arn: Some(cluster.arn.clone()),
        created_at: d.doc.created_at,
        started_at: d.doc.created_at,
        updated_at: d.doc.updated_at,
        finished_at: if finished { d.doc.updated_at } else { None },
        target_service_revision: Some(ServiceRevisionSummary {
            arn: Some(revision_arn(ctx, cluster, s, d)),
            requested_task_count: d.doc.desired_count,
            running_task_count: None,
            pending_task_count: None,
            requested_production_traffic_weight: d.traffic.as_ref().map(|t| t.percent),
            ..ServiceRevisionSummary::default()
        }),
        status: Some(status),
        status_reason: d.doc.rollout_state_reason.clone(),
        deployment_configuration: s.doc.deployment_configuration.clone(),
        lifecycle_stage: d
            .traffic
            .as_ref()
            .filter(|_| !finished)
            .and_then(|t| serde_json::from_value(json!(t.stage.as_str())).ok()),
        ..ServiceDeployment::default()
    }
}

/// A deployment as the service revision it deploys.
fn service_revision(
    ctx: &Ctx,
    cluster: &clusters::ClusterRow,
    s: &ServiceRow,
    d: &DeploymentRow,
) -> ServiceRevision {
    ServiceRevision {
        service_revision_arn: Some(revision_arn(ctx, cluster, s, d)),
        service_arn: Some(s.arn.clone()),
        cluster_arn: Some(cluster.arn.clone()),
        task_definition: d.doc.task_definition.clone(),
        capacity_provider_strategy: d.doc.capacity_provider_strategy.clone(),
        launch_type: d.doc.launch_type,
        platform_version: d.doc.platform_version.clone(),
        platform_family: d.doc.platform_family.clone(),
        load_balancers: s.doc.load_balancers.clone(),
        service_registries: s.doc.service_registries.clone(),
        network_configuration: d.doc.network_configuration.clone(),
        created_at: d.doc.created_at,
        ..ServiceRevision::default()
    }
}
