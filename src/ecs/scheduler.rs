//! The service scheduler, a level-triggered controller: each pass compares
//! every service's desired state with its tasks and takes the next step
//! (`deploy::step`, pure), launching through RunTask's own path and
//! stopping with `ServiceSchedulerInitiated`. It also moves deployments
//! along: COMPLETED when the primary's tasks are all healthy and the old
//! ones gone, FAILED when the circuit breaker trips (rolling back to the
//! last completed deployment when asked), INACTIVE when their tasks are
//! gone; and a deleted service from DRAINING to INACTIVE.
//!
//! A pass first decides every service on a read snapshot; only a service
//! with something to do is decided again and acted on inside a write
//! transaction, so what it acts on is what it decided on, and a quiet
//! service costs one read. Everything it decides follows from the store,
//! so a pass interrupted by a crash is simply run again: no task is started
//! twice for one slot (the slot is filled by the committed task) and none
//! is forgotten (a missing one is seen missing again).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection};

use super::deploy::{self, Bounds, Plan, Snapshot, StopWhy, TaskState, TaskView};
use super::deploy::{Shift, Stage};
use super::service_lb::{self, LbHealth, TaskTarget};
use super::services::{self, DeploymentRow, ServiceRow, ServiceStatus, ACTIVE, INACTIVE, PRIMARY};
use super::shapes::{
    Deployment, DeploymentConfiguration, DeploymentRolloutState, DeploymentStrategy, HealthStatus,
    PropagateTags, SchedulingStrategy, Service, ServiceDeploymentStatus, TaskStopCode,
};
use super::status::TaskStatus;
use super::{arn, clusters, protection, tags, taskdefs, tasks, Ecs};
use crate::clock::Clock;
use crate::context::Ctx;
use crate::controllers::Controller;
use crate::error::ApiResult;

use super::services::FAILED;

/// Throttling counts the failures of the last 15 minutes.
const RECENT_MS: i64 = 15 * 60 * 1000;

/// One live task of a service, as stored.
#[derive(Debug, Clone)]
struct LiveTask {
    arn: String,
    started_by: Option<String>,
    last_status: TaskStatus,
    health: HealthStatus,
    started_ms: Option<i64>,
    created_ms: i64,
    td_arn: String,
    instance: Option<String>,
    protected: bool,
}

/// What a pass reads of one service.
struct Observed {
    service: ServiceRow,
    deployments: Vec<DeploymentRow>,
    /// Desired RUNNING and not yet STOPPED.
    live: Vec<LiveTask>,
    /// Not yet STOPPED, whatever is desired.
    not_stopped: i64,
    /// Per deployment: (failures, failures in the last 15 minutes, when
    /// its newest task was created).
    failures: HashMap<String, (i64, i64, i64)>,
    /// Per task definition: whether an essential container has a health
    /// check.
    checked: HashMap<String, bool>,
    /// The newest event's message.
    last_event: Option<String>,
    /// A DAEMON service: the instances it belongs on, and those where a
    /// task asked to stop has not stopped yet.
    daemon: Option<(Vec<String>, Vec<String>)>,
    /// A service behind load balancers: its tasks' targets.
    lb: Option<LbObserved>,
}

/// A load-balanced service's targets as a pass sees them.
#[derive(Debug, Default)]
struct LbObserved {
    targets: Vec<TaskTarget>,
    /// Per live task: its targets' health, and the group failing it.
    health: HashMap<String, (LbHealth, Option<service_lb::Failing>)>,
    /// RUNNING tasks not registered yet.
    unregistered: Vec<String>,
    /// Registered tasks that are no longer live (stopped, or asked to stop
    /// by someone else).
    gone: Vec<String>,
    /// Deregistering tasks whose deregistration delay has passed.
    expired: Vec<TaskTarget>,
    /// A traffic-shifting service: its listener rules (production, then
    /// test, per load balancer) and their forward weights as they are.
    rules: Vec<ListenerRule>,
}

/// One listener rule a traffic-shifting service steers.
#[derive(Debug, Clone)]
struct ListenerRule {
    arn: String,
    /// Its load balancer's index in the service's `loadBalancers`.
    lb: usize,
    production: bool,
    weights: Vec<(String, i64)>,
}

impl LbObserved {
    fn has_work(&self) -> bool {
        !self.unregistered.is_empty() || !self.gone.is_empty() || !self.expired.is_empty()
    }

    fn health_of(&self, task_arn: &str) -> LbHealth {
        self.health
            .get(task_arn)
            .map_or(LbHealth::Pending, |(h, _)| *h)
    }
}

/// The event of a service whose launches are held back.
fn throttled_event(name: &str) -> String {
    format!(
        "(service {name}) is unable to consistently start tasks successfully. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
    )
}

/// Each deployment's (the circuit breaker's count of failed tasks,
/// failures in the last 15 minutes for throttling, when its newest task was
/// created), for the deployments `ids`, or for every deployment not yet
/// INACTIVE.
fn failures_of(
    conn: &Connection,
    ids: Option<&[&str]>,
    now_ms: i64,
) -> ApiResult<HashMap<String, (i64, i64, i64)>> {
    let sql = format!(
        "SELECT started_by, {},
                coalesce(sum(({FAILED}) AND created_at >= ?1), 0), coalesce(max(created_at), 0)
         FROM tasks INDEXED BY tasks_by_started_by WHERE started_by {}
         GROUP BY started_by",
        services::failure_columns(),
        match ids {
            Some(_) => "= ?2",
            None => "IN (SELECT id FROM service_deployments WHERE status != 'INACTIVE')",
        }
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(String, (i64, i64, i64))> {
        let breaker = services::breaker_count(r.get(1)?, r.get(2)?, r.get(3)?);
        Ok((r.get(0)?, (breaker, r.get(4)?, r.get(5)?)))
    };
    let mut out = HashMap::new();
    match ids {
        Some(ids) => {
            for id in ids {
                for x in stmt.query_map(params![now_ms - RECENT_MS, id], row)? {
                    let (k, v) = x?;
                    out.insert(k, v);
                }
            }
        }
        None => {
            for x in stmt.query_map(params![now_ms - RECENT_MS], row)? {
                let (k, v) = x?;
                out.insert(k, v);
            }
        }
    }
    Ok(out)
}

/// What the read phase of a pass reads once for every service: the
/// deployments not yet INACTIVE and their failures.
struct Bulk {
    deployments: HashMap<String, Vec<DeploymentRow>>,
    failures: HashMap<String, (i64, i64, i64)>,
    protected: HashSet<String>,
}

impl Bulk {
    fn read(conn: &Connection, now_ms: i64) -> ApiResult<Bulk> {
        let mut deployments: HashMap<String, Vec<DeploymentRow>> = HashMap::new();
        for d in services::current_deployments(conn)? {
            deployments
                .entry(d.service_arn.clone())
                .or_default()
                .push(d);
        }
        Ok(Bulk {
            deployments,
            failures: failures_of(conn, None, now_ms)?,
            protected: protection::active(conn, now_ms)?,
        })
    }
}

/// Observe one service: everything it needs read in `conn`, or (the read
/// phase of a pass) its deployments and failures taken from `bulk`.
fn observe(
    ecs: &Ecs,
    conn: &Connection,
    service: ServiceRow,
    now_ms: i64,
    mut bulk: Option<&mut Bulk>,
) -> ApiResult<Observed> {
    let arn = service.arn.as_str();
    let (deployments, mut failures) = match bulk.as_mut() {
        Some(b) => {
            let deps = b.deployments.remove(arn).unwrap_or_default();
            let failures = deps
                .iter()
                .filter_map(|d| b.failures.get(&d.id).map(|f| (d.id.clone(), *f)))
                .collect();
            (deps, failures)
        }
        None => {
            let deps = services::deployments(conn, arn)?;
            let ids: Vec<&str> = deps
                .iter()
                .filter(|d| d.status() != INACTIVE)
                .map(|d| d.id.as_str())
                .collect();
            let failures = failures_of(conn, Some(&ids), now_ms)?;
            (deps, failures)
        }
    };
    let fresh;
    let protected = match bulk.as_ref() {
        Some(b) => &b.protected,
        None => {
            fresh = protection::active(conn, now_ms)?;
            &fresh
        }
    };
    // Every task of the service not yet STOPPED, from the covering index.
    let mut not_stopped = 0;
    let mut live = Vec::new();
    let mut busy = Vec::new();
    let mut rows = conn.prepare_cached(
        "SELECT arn, started_by, last_status, health_status, started_at, created_at,
                    task_definition_arn, container_instance_arn, desired_status
             FROM tasks INDEXED BY tasks_by_group
             WHERE cluster_arn = ?1 AND task_group = ?2 AND last_status != 'STOPPED'",
    )?;
    let mut q = rows.query(params![service.cluster_arn, service.group()])?;
    while let Some(r) = q.next()? {
        not_stopped += 1;
        let instance: Option<String> = r.get(7)?;
        if r.get_ref(8)?.as_str().ok() != Some("RUNNING") {
            busy.extend(instance);
            continue;
        }
        let last_status = match r.get_ref(2)?.as_str().ok() {
            Some("RUNNING") => TaskStatus::Running,
            _ => TaskStatus::Pending,
        };
        let health = match r.get_ref(3)?.as_str().ok() {
            Some("HEALTHY") => HealthStatus::Healthy,
            Some("UNHEALTHY") => HealthStatus::Unhealthy,
            _ => HealthStatus::Unknown,
        };
        let task_arn: String = r.get(0)?;
        live.push(LiveTask {
            protected: protected.contains(&task_arn),
            arn: task_arn,
            started_by: r.get(1)?,
            last_status,
            health,
            started_ms: r.get::<_, Option<f64>>(4)?.map(|s| (s * 1000.0) as i64),
            created_ms: r.get(5)?,
            td_arn: r.get(6)?,
            instance,
        });
    }
    drop(q);
    let lbs = service.doc.load_balancers.clone().unwrap_or_default();
    let lb = if lbs.is_empty() {
        None
    } else {
        let targets = service_lb::of_service(conn, arn)?;
        // A task being deregistered counts as stopping already.
        let deregistering: HashSet<&str> = targets
            .iter()
            .filter(|t| t.deregistering)
            .map(|t| t.task_arn.as_str())
            .collect();
        live.retain(|t| !deregistering.contains(t.arn.as_str()));
        let registered: HashSet<&str> = targets
            .iter()
            .filter(|t| !t.deregistering)
            .map(|t| t.task_arn.as_str())
            .collect();
        let unregistered = live
            .iter()
            .filter(|t| {
                t.last_status == TaskStatus::Running && !registered.contains(t.arn.as_str())
            })
            .map(|t| t.arn.clone())
            .collect();
        let gone = registered
            .iter()
            .filter(|a| !live.iter().any(|t| t.arn == **a))
            .map(|a| a.to_string())
            .collect();
        let mut expired: Vec<TaskTarget> = Vec::new();
        for t in targets
            .iter()
            .filter(|t| t.deregistering && t.until_ms.is_some_and(|u| u <= now_ms))
        {
            if !expired.iter().any(|e| e.task_arn == t.task_arn) {
                expired.push(t.clone());
            }
        }
        let health = service_lb::health(conn, &targets)?;
        let mut rules = Vec::new();
        if services::shifts_traffic(&service.doc) {
            for (i, l) in lbs.iter().enumerate() {
                let adv = l.advanced_configuration.clone().unwrap_or_default();
                for (rule, production) in [
                    (adv.production_listener_rule, true),
                    (adv.test_listener_rule, false),
                ] {
                    let Some(rule) = rule else { continue };
                    if let Some(weights) = crate::elb::listeners::forward_weights(conn, &rule)? {
                        rules.push(ListenerRule {
                            arn: rule,
                            lb: i,
                            production,
                            weights,
                        });
                    }
                }
            }
        }
        Some(LbObserved {
            targets,
            health,
            unregistered,
            gone,
            expired,
            rules,
        })
    };
    let mut checked = HashMap::new();
    for d in deployments.iter().filter(|d| d.status() != INACTIVE) {
        failures.entry(d.id.clone()).or_insert((0, 0, 0));
        if let Some(td) = &d.doc.task_definition {
            checked.insert(td.clone(), ecs.health_checked(conn, td)?);
        }
    }
    // The newest event matters only to a service that may be throttled.
    let may_throttle = failures
        .values()
        .any(|(_, recent, _)| deploy::launch_backoff_ms(*recent) > 0);
    let last_event = if may_throttle {
        services::last_event(conn, arn)?.map(|(m, _)| m)
    } else {
        None
    };
    let daemon = match deployments.iter().find(|d| d.status() == PRIMARY) {
        Some(p) if is_daemon(&service) && service.status == ServiceStatus::Active => {
            let ctx = internal_ctx(arn, now_ms);
            match clusters::find(conn, &ctx, &service.cluster_arn)? {
                Some(cluster) if cluster.is_active() => {
                    let req = task_request(conn, &service, &p.id, &p.doc, &cluster)?;
                    let eligible = ecs.daemon_instances(conn, &ctx, &cluster, &req)?;
                    Some((eligible, busy))
                }
                _ => Some((Vec::new(), Vec::new())),
            }
        }
        _ => None,
    };
    Ok(Observed {
        lb,
        daemon,
        last_event,
        service,
        deployments,
        live,
        not_stopped,
        failures,
        checked,
    })
}

fn is_daemon(s: &ServiceRow) -> bool {
    s.doc.scheduling_strategy == Some(SchedulingStrategy::Daemon)
}

/// The context the scheduler acts in: the service's account and region.
pub(super) fn internal_ctx(service_arn: &str, now_ms: i64) -> Ctx {
    let parsed = arn::parse(service_arn);
    Ctx::internal(
        parsed.as_ref().map(|p| p.account).unwrap_or_default(),
        parsed.as_ref().map(|p| p.region).unwrap_or_default(),
        now_ms,
    )
}

/// What a service's tasks of one revision are launched with: `rev` (a
/// deployment's, or a task set's as a deployment) started by `started_by`.
pub(super) fn task_request(
    conn: &Connection,
    s: &ServiceRow,
    started_by: &str,
    rev: &Deployment,
    cluster: &clusters::ClusterRow,
) -> ApiResult<tasks::TaskRequest> {
    let mut task_tags = Vec::new();
    if s.doc.propagate_tags == Some(PropagateTags::Service) {
        task_tags = tags::from_shapes(&tags::load(conn, &s.arn)?);
    }
    if s.doc.enable_ecs_managed_tags == Some(true) {
        for (k, v) in [
            ("aws:ecs:serviceName", s.name.as_str()),
            ("aws:ecs:clusterName", cluster.name.as_str()),
        ] {
            task_tags.push(tags::Tag {
                key: k.into(),
                value: v.into(),
            });
        }
    }
    Ok(tasks::TaskRequest {
        cluster: Some(cluster.arn.clone()),
        task_definition: rev.task_definition.clone().unwrap_or_default(),
        count: 1,
        launch_type: rev.launch_type,
        capacity_provider_strategy: rev.capacity_provider_strategy.clone(),
        network_configuration: rev.network_configuration.clone(),
        started_by: Some(started_by.to_string()),
        group: Some(s.group()),
        tags: task_tags,
        propagate_tags: s
            .doc
            .propagate_tags
            .filter(|t| *t == PropagateTags::TaskDefinition),
        enable_execute_command: s.doc.enable_execute_command.unwrap_or(false),
        platform_version: rev.platform_version.clone(),
        placement_constraints: s.doc.placement_constraints.clone().unwrap_or_default(),
        placement_strategy: s.doc.placement_strategy.clone().unwrap_or_default(),
        ..tasks::TaskRequest::default()
    })
}

/// What a pass decides for one service.
#[derive(Debug, Default)]
struct Decision {
    plan: Plan,
    /// A DAEMON service: the instances to start a task on.
    start_on: Vec<String>,
    /// A DAEMON service's desired count changed (its instances did).
    desired: Option<i64>,
    /// The primary's rollout is to become COMPLETED.
    complete: bool,
    /// The circuit breaker trips: roll back to this deployment (when one
    /// completed before), or just fail.
    trip: Option<Option<String>>,
    /// ACTIVE deployments left without tasks.
    retire: Vec<String>,
    /// The service reached (true) or left (false) its steady state.
    steady: Option<bool>,
    /// A DRAINING service whose tasks have all stopped.
    inactive: bool,
    /// The primary's launches are held back after repeated failures.
    throttled: bool,
    /// ... and no event says so yet.
    note_throttled: bool,
    /// Targets to register, deregister, or tasks whose deregistration is
    /// done.
    lb_work: bool,
    /// The primary's traffic shift moves on to this state.
    traffic: Option<deploy::Traffic>,
    /// Listener rules whose forward weights are to be set.
    weights: Vec<(String, Vec<(String, i64)>)>,
}

impl Decision {
    fn is_empty(&self) -> bool {
        self.plan.start == 0
            && self.plan.stop.is_empty()
            && self.start_on.is_empty()
            && self.desired.is_none()
            && !self.complete
            && self.trip.is_none()
            && self.retire.is_empty()
            && self.steady.is_none()
            && !self.inactive
            && !self.note_throttled
            && !self.lb_work
            && self.traffic.is_none()
            && self.weights.is_empty()
    }
}

fn grace_ms(s: &ServiceRow) -> i64 {
    s.doc.health_check_grace_period_seconds.unwrap_or(0) * 1000
}

fn decide(o: &Observed, now_ms: i64) -> Decision {
    let mut d = Decision {
        lb_work: o.lb.as_ref().is_some_and(LbObserved::has_work),
        ..Decision::default()
    };
    let s = &o.service;
    let primary = o.deployments.iter().find(|d| d.status() == PRIMARY);
    let primary_id = primary.map(|p| p.id.as_str()).unwrap_or_default();
    let views: Vec<TaskView> = o
        .live
        .iter()
        .map(|t| TaskView {
            arn: t.arn.clone(),
            primary: t.started_by.as_deref() == Some(primary_id),
            state: state_of(
                t,
                o.checked.get(&t.td_arn).copied().unwrap_or(false),
                o.lb.as_ref().map(|l| l.health_of(&t.arn)),
                grace_ms(s),
                now_ms,
            ),
            created_ms: t.created_ms,
            protected: t.protected,
        })
        .collect();
    if s.status != ServiceStatus::Active {
        d.plan = deploy::step(&Snapshot {
            bounds: Bounds {
                desired: 0,
                minimum_healthy_percent: 0,
                maximum_percent: 100,
            },
            tasks: views,
            may_launch: false,
            draining: true,
            stopping: 0,
        });
        d.inactive = s.status == ServiceStatus::Draining && o.not_stopped == 0;
        return d;
    }
    let Some(primary) = primary else {
        return d;
    };
    let config = s.config();
    let breaker = s.breaker();
    let (failed, recent, last_launch) = o.failures.get(&primary.id).copied().unwrap_or_default();
    let in_progress = primary.rollout() == DeploymentRolloutState::InProgress;
    if breaker.enable && in_progress && failed >= deploy::breaker_threshold(s.desired()) {
        let target = breaker.rollback.then(|| {
            o.deployments
                .iter()
                .filter(|x| x.id != primary.id)
                .find(|x| x.rollout() == DeploymentRolloutState::Completed)
                .map(|x| x.id.clone())
        });
        d.trip = Some(target.flatten());
        return d;
    }
    let failed_deployment = primary.rollout() == DeploymentRolloutState::Failed;
    let backoff = deploy::launch_backoff_ms(recent);
    d.throttled = backoff > 0 && now_ms - last_launch < backoff;
    d.note_throttled =
        d.throttled && o.last_event.as_deref() != Some(throttled_event(&s.name).as_str());
    let may_launch = !failed_deployment && !d.throttled;
    let mut desired = s.desired();
    if let Some((instances, busy)) = &o.daemon {
        desired = instances.len() as i64;
        if desired != s.desired() {
            d.desired = Some(desired);
        }
        let tasks = o
            .live
            .iter()
            .zip(&views)
            .map(|(t, v)| deploy::DaemonTask {
                task: v.clone(),
                instance: t.instance.clone(),
            })
            .collect();
        let plan = deploy::daemon_step(&deploy::DaemonSnapshot {
            instances: instances.clone(),
            tasks,
            busy: busy.clone(),
            minimum_healthy_percent: config.minimum_healthy_percent.unwrap_or(0),
            may_launch,
            draining: false,
        });
        d.plan.stop = plan.stop;
        d.start_on = plan.start_on;
    } else {
        // Blue/green, linear, canary: green starts whole beside blue, and
        // blue stays until the clean-up.
        let shifting = in_progress
            && primary
                .traffic
                .as_ref()
                .is_some_and(|t| t.stage != Stage::CleanUp);
        let (min, max) = if shifting {
            (100, config.maximum_percent.unwrap_or(200).max(200))
        } else {
            (
                config.minimum_healthy_percent.unwrap_or(100),
                config.maximum_percent.unwrap_or(200),
            )
        };
        d.plan = deploy::step(&Snapshot {
            bounds: Bounds {
                desired,
                minimum_healthy_percent: min,
                maximum_percent: max,
            },
            tasks: views.clone(),
            may_launch,
            draining: false,
            stopping: o.not_stopped - o.live.len() as i64,
        });
        if shifting {
            d.plan.stop.retain(|(_, why)| *why != StopWhy::Deployment);
        }
    }
    if let Some(t) = primary.traffic.as_ref().filter(|_| in_progress) {
        let ready = views
            .iter()
            .filter(|v| v.primary && v.state == TaskState::Healthy)
            .count() as i64
            >= desired;
        let bake_ms = config.bake_time_in_minutes.unwrap_or(0) * 60_000;
        // Every stage that can pass now passes in this one step.
        let mut next = None;
        while let Some(n) = deploy::traffic_step(
            next.as_ref().unwrap_or(t),
            shift_of(&config),
            bake_ms,
            ready,
            now_ms,
        ) {
            let done = n.stage == Stage::CleanUp;
            next = Some(n);
            if done {
                break;
            }
        }
        d.traffic = next;
    }
    if let (Some(t), Some(lb)) = (d.traffic.as_ref().or(primary.traffic.as_ref()), &o.lb) {
        d.weights = wanted_weights(&s.doc, t, &lb.rules);
    }
    // After this pass's stops: what is left of each deployment.
    let stopped = |v: &TaskView| d.plan.stop.iter().any(|(a, _)| *a == v.arn);
    let left: Vec<&TaskView> = views.iter().filter(|v| !stopped(v)).collect();
    let old_left = left.iter().filter(|v| !v.primary).count();
    let primary_left: Vec<&&TaskView> = left.iter().filter(|v| v.primary).collect();
    let whole = old_left == 0
        && d.plan.start == 0
        && d.start_on.is_empty()
        && primary_left.len() as i64 == desired
        && primary_left.iter().all(|v| v.state == TaskState::Healthy);
    d.complete = whole && in_progress;
    for dep in o.deployments.iter().filter(|x| x.status() == ACTIVE) {
        let has_tasks = left.iter().any(|v| {
            o.live
                .iter()
                .any(|t| t.arn == v.arn && t.started_by.as_deref() == Some(dep.id.as_str()))
        });
        if !has_tasks {
            d.retire.push(dep.id.clone());
        }
    }
    let steady = whole && d.plan.stop.is_empty() && !failed_deployment;
    if steady != s.steady {
        d.steady = Some(steady);
    }
    d
}

/// How a service's production traffic moves, from its deployment
/// configuration (ECS's defaults: linear steps of 10% every 6 minutes, a
/// 5% canary for 10 minutes).
fn shift_of(config: &DeploymentConfiguration) -> Shift {
    match config.strategy {
        Some(DeploymentStrategy::Linear) => {
            let l = config.linear_configuration.clone().unwrap_or_default();
            Shift::Linear {
                step_percent: l.step_percent.unwrap_or(10.0),
                step_bake_ms: l.step_bake_time_in_minutes.unwrap_or(6) * 60_000,
            }
        }
        Some(DeploymentStrategy::Canary) => {
            let c = config.canary_configuration.clone().unwrap_or_default();
            Shift::Canary {
                percent: c.canary_percent.unwrap_or(5.0),
                bake_ms: c.canary_bake_time_in_minutes.unwrap_or(10) * 60_000,
            }
        }
        _ => Shift::BlueGreen,
    }
}

/// The rules whose weights differ from what the primary's traffic state
/// wants: production sends `percent` to the deployment's target group and
/// the rest to the other one; the test rule sends everything to the
/// deployment's once its test traffic shift has begun.
fn wanted_weights(
    s: &Service,
    t: &deploy::Traffic,
    rules: &[ListenerRule],
) -> Vec<(String, Vec<(String, i64)>)> {
    let pairs = services::target_group_pairs(s);
    let mut out = Vec::new();
    for r in rules {
        let (Some((p, a)), Some(green)) = (pairs.get(r.lb), t.target_groups.get(r.lb)) else {
            continue;
        };
        let blue = if green == p { a } else { p };
        let green_share = if r.production {
            deploy::weights(t.percent).1
        } else if t.stage == Stage::ScaleUp {
            0
        } else {
            100
        };
        let mut want = vec![
            (blue.clone(), 100 - green_share),
            (green.clone(), green_share),
        ];
        if blue == green {
            want.truncate(1);
            want[0].1 = 100;
        }
        let mut have = r.weights.clone();
        have.sort();
        let mut sorted = want.clone();
        sorted.sort();
        if have != sorted {
            out.push((r.arn.clone(), want));
        }
    }
    out
}

/// How the scheduler sees a live task.
/// How long a task without a container health check must have been
/// RUNNING before it counts as healthy: a revision whose container dies
/// right after starting would otherwise complete its deployment (and stop
/// the old tasks) in the moment before the crash is seen.
pub const SETTLE_MS: i64 = 3_000;

/// A task's state for the rolling steps: its containers' health and, behind
/// load balancers, its targets' (`lb`), failing ones ignored for the
/// health check grace period.
fn state_of(
    t: &LiveTask,
    checked: bool,
    lb: Option<LbHealth>,
    grace_ms: i64,
    now_ms: i64,
) -> TaskState {
    let own = container_state(t, checked, grace_ms, now_ms);
    let Some(lb) = lb else {
        return own;
    };
    // The load balancer's health checks are the task's: it need not wait
    // out the settling time of a task nobody checks.
    let containers_fine = match own {
        TaskState::Healthy => true,
        TaskState::Running => !checked && t.last_status == TaskStatus::Running,
        _ => false,
    };
    let since = t.started_ms.unwrap_or(t.created_ms);
    match lb {
        _ if !containers_fine => own,
        LbHealth::Healthy => TaskState::Healthy,
        LbHealth::Pending => TaskState::Running,
        LbHealth::Unhealthy if now_ms - since < grace_ms => TaskState::Running,
        LbHealth::Unhealthy => TaskState::Unhealthy,
    }
}

fn container_state(t: &LiveTask, checked: bool, grace_ms: i64, now_ms: i64) -> TaskState {
    if t.last_status != TaskStatus::Running {
        return TaskState::Pending;
    }
    if !checked {
        let since = t.started_ms.unwrap_or(t.created_ms);
        return if now_ms - since >= SETTLE_MS {
            TaskState::Healthy
        } else {
            TaskState::Running
        };
    }
    match t.health {
        HealthStatus::Healthy => TaskState::Healthy,
        HealthStatus::Unhealthy => {
            let since = t.started_ms.unwrap_or(t.created_ms);
            if now_ms - since < grace_ms {
                TaskState::Running
            } else {
                TaskState::Unhealthy
            }
        }
        _ => TaskState::Running,
    }
}

/// The short id of a task ARN.
fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// What acting on one service needs woken afterwards.
#[derive(Default)]
struct Acted {
    launched: Vec<tasks::Launched>,
    stopped: bool,
}

impl Ecs {
    /// Whether a task definition has an essential container with a health
    /// check (a revision never changes, so the answer is kept).
    fn health_checked(&self, conn: &Connection, td_arn: &str) -> ApiResult<bool> {
        if let Some(v) = self.health_checks.lock().unwrap().get(td_arn) {
            return Ok(*v);
        }
        let has = taskdefs::find_by_arn(conn, td_arn)?.is_some_and(|t| {
            t.doc
                .container_definitions
                .iter()
                .flatten()
                .any(|c| c.essential.unwrap_or(true) && c.health_check.is_some())
        });
        self.health_checks
            .lock()
            .unwrap()
            .insert(td_arn.to_string(), has);
        Ok(has)
    }

    /// One pass over every service not yet INACTIVE: every one decided on
    /// one read snapshot, those with something to do acted on one by one.
    pub fn schedule_services(&self, now_ms: i64) -> ApiResult<()> {
        let busy: Vec<String> = self.store.read(|c| {
            let mut busy = Vec::new();
            let mut bulk = Bulk::read(c, now_ms)?;
            for service in services::live(c)? {
                let arn = service.arn.clone();
                let o = observe(self, c, service, now_ms, Some(&mut bulk))?;
                if !decide(&o, now_ms).is_empty() {
                    busy.push(arn);
                }
            }
            Ok(busy)
        })?;
        for arn in busy {
            let acted = self.store.write_then(
                |tx| self.act(tx, &arn, now_ms),
                |a| {
                    for l in &mut a.launched {
                        self.keep_placer(l);
                    }
                },
            )?;
            for l in &acted.launched {
                self.wake_for(l);
            }
            if acted.stopped {
                self.tasks_changed();
            }
        }
        self.schedule_task_sets(now_ms)
    }

    /// Decide one service again inside the write transaction and act.
    fn act(&self, tx: &Connection, arn: &str, now_ms: i64) -> ApiResult<Acted> {
        let mut acted = Acted::default();
        let Some(service) = services::load(tx, arn)? else {
            return Ok(acted);
        };
        let o = observe(self, tx, service, now_ms, None)?;
        let d = decide(&o, now_ms);
        let ctx = internal_ctx(arn, now_ms);
        let mut s = o.service.clone();
        let name = s.name.clone();
        let primary = o
            .deployments
            .iter()
            .find(|x| x.status() == PRIMARY)
            .cloned();
        let primary_id = primary.as_ref().map(|p| p.id.clone()).unwrap_or_default();

        if let Some(target) = &d.trip {
            let mut failed = primary.clone().expect("a breaker trips on the primary");
            failed.doc.rollout_state = Some(DeploymentRolloutState::Failed);
            failed.doc.rollout_state_reason =
                Some("ECS deployment circuit breaker: tasks failed to start.".into());
            failed.doc.updated_at = Some(ctx.now_epoch());
            failed.outcome = Some(if s.breaker().rollback {
                ServiceDeploymentStatus::RollbackFailed
            } else {
                ServiceDeploymentStatus::Stopped
            });
            services::event(
                tx,
                &ctx,
                arn,
                &format!(
                    "(service {name}) (deployment {}) deployment failed: tasks failed to start.",
                    failed.id
                ),
            )?;
            if let Some(target_id) = target {
                let back = o
                    .deployments
                    .iter()
                    .find(|x| &x.id == target_id)
                    .expect("a deployment of the service");
                let reason = format!(
                    "ECS deployment circuit breaker: rolling back to deploymentId {target_id}."
                );
                services::roll_back(tx, &ctx, &mut s, failed, back, reason)?;
            } else {
                services::save_deployment(tx, &failed)?;
            }
            return Ok(acted);
        }

        let mut by_reason: Vec<(StopWhy, Vec<String>)> = Vec::new();
        if let Some(lb) = &o.lb {
            self.sync_targets(tx, &ctx, &o, lb, &mut by_reason, &mut acted)?;
        }

        // Stops first: they make the room the starts take.
        for (task_arn, why) in &d.plan.stop {
            let failing =
                o.lb.as_ref()
                    .and_then(|l| l.health.get(task_arn))
                    .filter(|(h, _)| *h == LbHealth::Unhealthy)
                    .and_then(|(_, f)| f.clone());
            let container_failed = o
                .live
                .iter()
                .any(|t| t.arn == *task_arn && t.health == HealthStatus::Unhealthy);
            let reason = match (why, &failing) {
                (StopWhy::Unhealthy, Some(f)) if !container_failed => format!(
                    "Task failed ELB health checks in (target-group {})",
                    f.target_group_arn
                ),
                (StopWhy::Unhealthy, _) => "Task failed container health checks".to_string(),
                _ => format!("Scaling activity initiated by (deployment {primary_id})"),
            };
            if *why == StopWhy::Unhealthy {
                // ECS's words: the target's port and ALB's reason, or the
                // container's health check.
                let message = match (&failing, container_failed) {
                    (Some(f), false) => format!(
                        "(service {name}) (task {}) (port {}) is unhealthy in (target-group {}) due to (reason {}).",
                        short(task_arn),
                        f.port,
                        f.target_group_arn,
                        f.reason
                    ),
                    _ => format!(
                        "(service {name}) (task {}) failed container health checks.",
                        short(task_arn)
                    ),
                };
                services::event(tx, &ctx, arn, &message)?;
            }
            if let Some(lb) = &o.lb {
                // Behind a load balancer the task is deregistered first and
                // stops once in-flight requests have had their time.
                let (until, groups) = service_lb::deregister(
                    tx,
                    &ctx,
                    task_arn,
                    &lb.targets,
                    Some((TaskStopCode::ServiceSchedulerInitiated, &reason)),
                )?;
                for g in &groups {
                    services::event(
                        tx,
                        &ctx,
                        arn,
                        &format!("(service {name}) deregistered 1 targets in (target-group {g})"),
                    )?;
                }
                if until.is_some() {
                    continue;
                }
            }
            tasks::stop(
                tx,
                task_arn,
                TaskStopCode::ServiceSchedulerInitiated,
                &reason,
                ctx.now_epoch(),
            )?;
            acted.stopped = true;
            match by_reason.iter_mut().find(|(w, _)| w == why) {
                Some((_, v)) => v.push(task_arn.clone()),
                None => by_reason.push((*why, vec![task_arn.clone()])),
            }
        }
        let all_stopped: Vec<&String> = by_reason.iter().flat_map(|(_, v)| v).collect();
        if !all_stopped.is_empty() {
            let ids: Vec<String> = all_stopped
                .iter()
                .map(|a| format!("(task {})", short(a)))
                .collect();
            services::event(
                tx,
                &ctx,
                arn,
                &format!(
                    "(service {name}) has stopped {} running tasks: {}.",
                    ids.len(),
                    ids.join(" ")
                ),
            )?;
        }

        if let Some(n) = d.desired {
            s.doc.desired_count = Some(n);
            services::save(tx, &s)?;
            if let Some(mut p) = primary.clone() {
                p.doc.desired_count = Some(n);
                services::save_deployment(tx, &p)?;
            }
        }
        if let Some(p) = &primary {
            if d.plan.start > 0 {
                self.start(tx, &ctx, &s, p, Start::Count(d.plan.start), &mut acted)?;
            }
            for instance in &d.start_on {
                self.start(tx, &ctx, &s, p, Start::On(instance), &mut acted)?;
            }
        }
        if d.note_throttled {
            services::event(tx, &ctx, arn, &throttled_event(&name))?;
        }
        if let (Some(t), Some(mut p)) = (&d.traffic, primary.clone()) {
            p.traffic = Some(t.clone());
            services::save_deployment(tx, &p)?;
        }
        for (rule, weights) in &d.weights {
            // A rule ALB refuses to rewrite (its groups moved elsewhere, say)
            // is said once, and does not hold up the rest of the pass.
            match crate::elb::listeners::set_forward_weights(tx, &ctx, rule, weights) {
                Ok(()) => self.bus.wake(crate::events::Topic::LoadBalancers),
                Err(e) => {
                    let msg = format!(
                        "(service {name}) failed to shift traffic on (listener-rule {rule}): {}",
                        e.message
                    );
                    let last = services::last_event(tx, arn)?.map(|(m, _)| m);
                    if last.as_deref() != Some(msg.as_str()) {
                        services::event(tx, &ctx, arn, &msg)?;
                    }
                }
            }
        }

        let mut deployments = services::deployments(tx, arn)?;
        if d.complete {
            if let Some(p) = deployments.iter_mut().find(|x| x.status() == PRIMARY) {
                p.doc.rollout_state = Some(DeploymentRolloutState::Completed);
                p.doc.rollout_state_reason = Some(format!("ECS deployment {} completed.", p.id));
                p.doc.updated_at = Some(ctx.now_epoch());
                p.outcome = Some(ServiceDeploymentStatus::Successful);
                services::save_deployment(tx, p)?;
                let id = p.id.clone();
                for f in deployments
                    .iter_mut()
                    .filter(|x| x.rolled_back_to.as_deref() == Some(id.as_str()))
                {
                    f.outcome = Some(ServiceDeploymentStatus::RollbackSuccessful);
                    services::save_deployment(tx, f)?;
                }
                services::event(
                    tx,
                    &ctx,
                    arn,
                    &format!("(service {name}) (deployment {id}) deployment completed."),
                )?;
            }
        }
        for dep in deployments.iter_mut().filter(|x| d.retire.contains(&x.id)) {
            dep.doc.status = Some(INACTIVE.into());
            dep.doc.updated_at = Some(ctx.now_epoch());
            services::save_deployment(tx, dep)?;
        }
        if let Some(steady) = d.steady {
            s.steady = steady;
            services::save(tx, &s)?;
            if steady {
                services::event(
                    tx,
                    &ctx,
                    arn,
                    &format!("(service {name}) has reached a steady state."),
                )?;
            }
        }
        if d.inactive {
            s.status = ServiceStatus::Inactive;
            services::save(tx, &s)?;
            for dep in deployments.iter_mut().filter(|x| x.status() != INACTIVE) {
                dep.doc.status = Some(INACTIVE.into());
                services::save_deployment(tx, dep)?;
            }
        }
        Ok(acted)
    }

    /// Keep a load-balanced service's targets equal to its tasks: register
    /// RUNNING tasks, deregister those gone, and stop the tasks whose
    /// deregistration delay has passed.
    fn sync_targets(
        &self,
        tx: &Connection,
        ctx: &Ctx,
        o: &Observed,
        lb: &LbObserved,
        by_reason: &mut Vec<(StopWhy, Vec<String>)>,
        acted: &mut Acted,
    ) -> ApiResult<()> {
        let s = &o.service;
        let name = &s.name;
        let lbs = s.doc.load_balancers.clone().unwrap_or_default();
        for task_arn in &lb.gone {
            let (_, groups) = service_lb::deregister(tx, ctx, task_arn, &lb.targets, None)?;
            for g in groups {
                services::event(
                    tx,
                    ctx,
                    &s.arn,
                    &format!("(service {name}) deregistered 1 targets in (target-group {g})"),
                )?;
            }
        }
        for t in &lb.expired {
            let code = t
                .stop_code
                .as_deref()
                .and_then(|c| serde_json::from_value(serde_json::Value::String(c.into())).ok())
                .unwrap_or(TaskStopCode::ServiceSchedulerInitiated);
            let reason = t.stop_reason.clone().unwrap_or_default();
            tasks::stop(tx, &t.task_arn, code, &reason, ctx.now_epoch())?;
            service_lb::forget(tx, &t.task_arn)?;
            acted.stopped = true;
            let why = if reason.starts_with("Task failed") {
                StopWhy::Unhealthy
            } else {
                StopWhy::ScaleIn
            };
            match by_reason.iter_mut().find(|(w, _)| *w == why) {
                Some((_, v)) => v.push(t.task_arn.clone()),
                None => by_reason.push((why, vec![t.task_arn.clone()])),
            }
        }
        for task_arn in &lb.unregistered {
            // A traffic-shifting deployment's tasks go to its own groups.
            let traffic = o
                .live
                .iter()
                .find(|t| t.arn == *task_arn)
                .and_then(|t| t.started_by.as_deref())
                .and_then(|id| o.deployments.iter().find(|d| d.id == id))
                .and_then(|d| d.traffic.as_ref());
            let mut lbs = lbs.clone();
            if let Some(t) = traffic {
                for (lb, tg) in lbs.iter_mut().zip(&t.target_groups) {
                    lb.target_group_arn = Some(tg.clone());
                }
            }
            for r in service_lb::register(tx, ctx, &s.arn, &lbs, task_arn)? {
                let msg = match r {
                    Ok(g) => format!("(service {name}) registered 1 targets in (target-group {g})"),
                    Err(why) => format!(
                        "(service {name}) failed to register targets in (target-group {why})"
                    ),
                };
                services::event(tx, ctx, &s.arn, &msg)?;
            }
        }
        Ok(())
    }

    /// Launch a service's primary deployment's tasks: `count` placed as
    /// RunTask places them, or one on a DAEMON's instance. What cannot be
    /// placed becomes an event, never a failed pass.
    fn start(
        &self,
        tx: &Connection,
        ctx: &Ctx,
        s: &ServiceRow,
        p: &DeploymentRow,
        how: Start<'_>,
        acted: &mut Acted,
    ) -> ApiResult<()> {
        let name = &s.name;
        let cluster = match clusters::find(tx, ctx, &s.cluster_arn)? {
            Some(c) if c.is_active() => c,
            _ => return Ok(()),
        };
        let mut req = task_request(tx, s, &p.id, &p.doc, &cluster)?;
        tx.execute_batch("SAVEPOINT service_launch")?;
        let result = match how {
            Start::Count(n) => {
                req.count = n;
                self.launch(tx, ctx, &cluster, &req).map(|l| {
                    let reason = l.failures.first().and_then(|f| f.reason.clone());
                    (l, reason)
                })
            }
            Start::On(instance) => {
                self.launch_on(tx, ctx, &cluster, &req, instance)
                    .map(|r| match r {
                        Ok(l) => (l, None),
                        Err(reason) => (tasks::Launched::default(), Some(reason)),
                    })
            }
        };
        let (started, reason) = match result {
            Ok((l, reason)) => {
                tx.execute_batch("RELEASE service_launch")?;
                let started: Vec<String> = l
                    .tasks
                    .iter()
                    .filter_map(|t| {
                        t.task_arn
                            .as_deref()
                            .map(|a| format!("(task {})", short(a)))
                    })
                    .collect();
                acted.launched.push(l);
                (started, reason)
            }
            Err(e) => {
                tx.execute_batch("ROLLBACK TO service_launch; RELEASE service_launch")?;
                (Vec::new(), Some(e.message))
            }
        };
        if !started.is_empty() {
            services::event(
                tx,
                ctx,
                &s.arn,
                &format!(
                    "(service {name}) has started {} tasks: {}.",
                    started.len(),
                    started.join(" ")
                ),
            )?;
        }
        if let Some(reason) = reason {
            let msg = format!(
                "(service {name}) was unable to place a task because no container instance met all of its requirements. Reason: {reason}"
            );
            if services::last_event(tx, &s.arn)?.map(|(m, _)| m) != Some(msg.clone()) {
                services::event(tx, ctx, &s.arn, &msg)?;
            }
        }
        Ok(())
    }
}

/// How the scheduler starts tasks.
enum Start<'a> {
    /// This many, placed as RunTask places them.
    Count(i64),
    /// One on this container instance (DAEMON).
    On(&'a str),
}

/// The scheduler under the controller runtime.
pub struct ServiceScheduler {
    pub ecs: Arc<Ecs>,
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
impl Controller for ServiceScheduler {
    fn name(&self) -> &'static str {
        "services"
    }

    fn tick(&self) -> Duration {
        Duration::from_millis(500)
    }

    async fn pass(&self, _woken: Vec<String>) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        tokio::task::block_in_place(|| self.ecs.schedule_services(now))?;
        Ok(())
    }
}
