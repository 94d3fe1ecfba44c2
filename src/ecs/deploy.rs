//! The service scheduler's decisions, pure: given what a service wants
//! (its desired count and deployment bounds) and what its tasks are doing,
//! which tasks to start and which to stop this pass. No store, clock or
//! runtime: `src/ecs/scheduler.rs` reads the snapshot and applies the plan.
//!
//! A rolling deployment (ECS's `ECS` deployment controller) moves a service
//! from its old deployments' tasks to the primary deployment's within two
//! bounds, as ECS documents them:
//! - at least `minimumHealthyPercent` of the desired count, rounded up, stay
//!   healthy: an old task is stopped only while enough others are healthy;
//! - at most `maximumPercent` of it, rounded down, are PENDING or RUNNING:
//!   a new task is started only while the total stays within it.
//!
//! A task is healthy when it is RUNNING and every essential container with
//! a health check reports HEALTHY. Unhealthy tasks (past the grace period)
//! are replaced; so are tasks that stopped for any reason.

/// What a task is doing, as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TaskState {
    /// Not yet RUNNING (PROVISIONING, PENDING, ACTIVATING).
    Pending,
    /// RUNNING, its health not yet known.
    Running,
    /// RUNNING and healthy (or RUNNING with no health check).
    Healthy,
    /// RUNNING and failing its container health checks past the grace
    /// period: to be replaced.
    Unhealthy,
}

/// One live task of the service (not yet asked to stop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    pub arn: String,
    /// Whether it belongs to the primary deployment.
    pub primary: bool,
    pub state: TaskState,
    /// When it was created (ms), for picking the newest to stop first.
    pub created_ms: i64,
    /// Under task scale-in protection: neither scale-in nor a deployment
    /// stops it (failing its health checks still does).
    pub protected: bool,
}

/// The service's bounds for this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub desired: i64,
    pub minimum_healthy_percent: i64,
    pub maximum_percent: i64,
}

impl Bounds {
    /// The fewest healthy tasks a deployment keeps: the desired count times
    /// `minimumHealthyPercent`, rounded up.
    pub fn min_healthy(&self) -> i64 {
        (self.desired * self.minimum_healthy_percent + 99) / 100
    }

    /// The most tasks PENDING or RUNNING at once: the desired count times
    /// `maximumPercent`, rounded down (never below the desired count when
    /// no deployment is under way, so a steady service is always whole).
    pub fn max_total(&self) -> i64 {
        self.desired * self.maximum_percent / 100
    }
}

/// What the scheduler sees of one service.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub bounds: Bounds,
    pub tasks: Vec<TaskView>,
    /// The primary deployment may start tasks (not FAILED by the circuit
    /// breaker, not throttled after repeated failures).
    pub may_launch: bool,
    /// The service is being deleted: every task stops.
    pub draining: bool,
    /// Tasks asked to stop that have not stopped yet: they still count
    /// toward the maximum.
    pub stopping: i64,
}

/// Why a task is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopWhy {
    /// More tasks than desired.
    ScaleIn,
    /// An old deployment's task, replaced by the primary's.
    Deployment,
    /// Failed its container health checks.
    Unhealthy,
    /// The service is deleted.
    Draining,
}

/// One pass's decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// How many tasks of the primary deployment to start.
    pub start: i64,
    pub stop: Vec<(String, StopWhy)>,
}

/// Which task of a set to stop first: the least useful (pending, then
/// running but not yet healthy, then healthy), newest first.
fn stop_order(a: &TaskView, b: &TaskView) -> std::cmp::Ordering {
    a.state
        .cmp(&b.state)
        .then(b.created_ms.cmp(&a.created_ms))
        .then(a.arn.cmp(&b.arn))
}

/// The next step of a service toward its desired state.
pub fn step(s: &Snapshot) -> Plan {
    let mut plan = Plan::default();
    if s.draining {
        plan.stop = s
            .tasks
            .iter()
            .map(|t| (t.arn.clone(), StopWhy::Draining))
            .collect();
        return plan;
    }
    // Unhealthy tasks go first, whatever their deployment.
    let (unhealthy, live): (Vec<&TaskView>, Vec<&TaskView>) = s
        .tasks
        .iter()
        .partition(|t| t.state == TaskState::Unhealthy);
    for t in &unhealthy {
        plan.stop.push((t.arn.clone(), StopWhy::Unhealthy));
    }
    let b = s.bounds;
    let mut primary: Vec<&TaskView> = live.iter().copied().filter(|t| t.primary).collect();
    let mut old: Vec<&TaskView> = live.iter().copied().filter(|t| !t.primary).collect();
    primary.sort_by(|a, b| stop_order(a, b));
    old.sort_by(|a, b| stop_order(a, b));

    // More primary tasks than desired: the surplus stops, protected tasks
    // aside.
    let mut surplus = (primary.len() as i64 - b.desired).max(0) as usize;
    primary.retain(|t| {
        if surplus > 0 && !t.protected {
            surplus -= 1;
            plan.stop.push((t.arn.clone(), StopWhy::ScaleIn));
            return false;
        }
        true
    });

    let healthy = |ts: &[&TaskView]| ts.iter().filter(|t| t.state == TaskState::Healthy).count();
    let primary_healthy = healthy(&primary) as i64;
    let mut old_healthy = healthy(&old) as i64;

    // Old tasks stop while enough others stay healthy. Old tasks that are
    // not healthy never count toward the minimum, so they may always go.
    // When the primary already has all it needs, the old ones all go.
    let primary_done = primary_healthy >= b.desired;
    let mut old_left = old.len() as i64;
    for t in &old {
        let counts = t.state == TaskState::Healthy;
        let may = !counts || primary_done || primary_healthy + old_healthy > b.min_healthy();
        if may && !t.protected {
            plan.stop.push((t.arn.clone(), StopWhy::Deployment));
            old_left -= 1;
            if counts {
                old_healthy -= 1;
            }
        }
    }

    // New tasks start while the total stays within the maximum: every
    // task counts until it has stopped, those this pass stops too. With
    // no old task left the maximum cannot hold back the desired count.
    if s.may_launch {
        let live_total = s.tasks.len() as i64 + s.stopping;
        let ceiling = if old_left == 0 {
            b.max_total().max(b.desired)
        } else {
            b.max_total()
        };
        plan.start = (b.desired - primary.len() as i64)
            .min(ceiling - live_total)
            .max(0);
    }
    plan
}

/// One task of a DAEMON service: where it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonTask {
    pub task: TaskView,
    /// Its container instance (none while it waits for one).
    pub instance: Option<String>,
}

/// What the scheduler sees of a DAEMON service: one task belongs on each
/// of `instances`.
#[derive(Debug, Clone, Default)]
pub struct DaemonSnapshot {
    /// The ACTIVE instances whose attributes meet the constraints.
    pub instances: Vec<String>,
    pub tasks: Vec<DaemonTask>,
    /// Instances where a task asked to stop has not stopped yet.
    pub busy: Vec<String>,
    pub minimum_healthy_percent: i64,
    pub may_launch: bool,
    pub draining: bool,
}

/// One pass's decisions for a DAEMON service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonPlan {
    /// Instances to start a primary task on.
    pub start_on: Vec<String>,
    pub stop: Vec<(String, StopWhy)>,
}

/// The next step of a DAEMON service: a task of the primary deployment on
/// each instance, none elsewhere. An old deployment's task is replaced on
/// its instance (stopped first, as a daemon fills its instance's place)
/// while enough others stay healthy.
pub fn daemon_step(s: &DaemonSnapshot) -> DaemonPlan {
    let mut plan = DaemonPlan::default();
    let stop = |plan: &mut DaemonPlan, t: &TaskView, why| plan.stop.push((t.arn.clone(), why));
    if s.draining {
        for t in &s.tasks {
            stop(&mut plan, &t.task, StopWhy::Draining);
        }
        return plan;
    }
    let eligible = |i: &Option<String>| i.as_ref().is_some_and(|i| s.instances.contains(i));
    let mut kept: Vec<&DaemonTask> = Vec::new();
    for t in &s.tasks {
        if t.task.state == TaskState::Unhealthy {
            stop(&mut plan, &t.task, StopWhy::Unhealthy);
        } else if !eligible(&t.instance) {
            stop(&mut plan, &t.task, StopWhy::ScaleIn);
        } else {
            kept.push(t);
        }
    }
    let min_healthy = (s.instances.len() as i64 * s.minimum_healthy_percent + 99) / 100;
    let mut healthy = kept
        .iter()
        .filter(|t| t.task.state == TaskState::Healthy)
        .count() as i64;
    for instance in &s.instances {
        let mut here: Vec<&DaemonTask> = kept
            .iter()
            .copied()
            .filter(|t| t.instance.as_ref() == Some(instance))
            .collect();
        // The most useful primary task stays; every other primary goes.
        here.sort_by(|a, b| stop_order(&b.task, &a.task));
        let mut has_primary = false;
        let mut occupied = s.busy.contains(instance);
        for t in here {
            let counts = t.task.state == TaskState::Healthy;
            if t.task.primary && !has_primary {
                has_primary = true;
                occupied = true;
            } else if t.task.primary {
                stop(&mut plan, &t.task, StopWhy::ScaleIn);
                healthy -= i64::from(counts);
            } else if !t.task.protected && (!counts || healthy > min_healthy) {
                stop(&mut plan, &t.task, StopWhy::Deployment);
                healthy -= i64::from(counts);
                occupied = true;
            } else {
                occupied = true;
            }
        }
        if !occupied && s.may_launch {
            plan.start_on.push(instance.clone());
        }
    }
    plan
}

/// The circuit breaker's failure threshold for a desired count: half of
/// it, rounded up, at least 3 and at most 200.
pub fn breaker_threshold(desired: i64) -> i64 {
    ((desired + 1) / 2).clamp(3, 200)
}

/// How long a service whose tasks keep failing waits before its next start
/// (ECS's task launch throttling): nothing for the first few failures,
/// then doubling from 5 s up to 5 minutes.
pub fn launch_backoff_ms(failures: i64) -> i64 {
    const FREE: i64 = 3;
    if failures < FREE {
        return 0;
    }
    let doublings = (failures - FREE).min(6) as u32;
    (5_000i64 << doublings).min(300_000)
}

/// Where a traffic-shifting deployment (strategy `BLUE_GREEN`, `LINEAR` or
/// `CANARY`) stands: ECS's lifecycle stages, as `ServiceDeployment`
/// names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Stage {
    /// The green tasks start, all of them, beside the blue ones; no traffic.
    ScaleUp,
    /// The test listener rule sends its traffic to green.
    TestTrafficShift,
    /// Production traffic moves to green, at once or in steps.
    ProductionTrafficShift,
    /// All traffic on green; blue kept running for the bake time.
    BakeTime,
    /// Blue stops; the deployment completes once it has.
    CleanUp,
}

impl Stage {
    pub fn as_str(&self) -> &'static str {
        match self {
            Stage::ScaleUp => "SCALE_UP",
            Stage::TestTrafficShift => "TEST_TRAFFIC_SHIFT",
            Stage::ProductionTrafficShift => "PRODUCTION_TRAFFIC_SHIFT",
            Stage::BakeTime => "BAKE_TIME",
            Stage::CleanUp => "CLEAN_UP",
        }
    }
}

/// A traffic-shifting deployment's state, kept with the deployment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Traffic {
    /// Per load balancer of the service (in order), the target group this
    /// deployment's tasks register in: the one production does not use
    /// when the deployment starts.
    pub target_groups: Vec<String>,
    pub stage: Stage,
    /// The share of production traffic sent to this deployment, percent.
    pub percent: f64,
    /// When the stage (or the last traffic step) began, ms.
    pub since_ms: i64,
}

/// How production traffic moves (`deploymentConfiguration.strategy`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shift {
    /// All at once.
    BlueGreen,
    /// `step_percent` more every `step_bake_ms`.
    Linear {
        step_percent: f64,
        step_bake_ms: i64,
    },
    /// `percent` first, the rest after `bake_ms`.
    Canary { percent: f64, bake_ms: i64 },
}

/// The next state of a traffic-shifting deployment, or `None` while it
/// stays where it is. `green_ready`: every task the deployment wants is
/// healthy. `bake_ms`: how long blue is kept once all traffic is on green.
pub fn traffic_step(
    t: &Traffic,
    shift: Shift,
    bake_ms: i64,
    green_ready: bool,
    now_ms: i64,
) -> Option<Traffic> {
    let to = |stage: Stage, percent: f64| {
        Some(Traffic {
            target_groups: t.target_groups.clone(),
            stage,
            percent,
            since_ms: now_ms,
        })
    };
    let elapsed = now_ms - t.since_ms;
    match t.stage {
        Stage::ScaleUp if green_ready => to(Stage::TestTrafficShift, 0.0),
        Stage::ScaleUp => None,
        Stage::TestTrafficShift => {
            let first = match shift {
                Shift::BlueGreen => 100.0,
                Shift::Linear { step_percent, .. } => step_percent,
                Shift::Canary { percent, .. } => percent,
            };
            to(Stage::ProductionTrafficShift, first.min(100.0))
        }
        Stage::ProductionTrafficShift if t.percent >= 100.0 => to(Stage::BakeTime, 100.0),
        Stage::ProductionTrafficShift => match shift {
            Shift::BlueGreen => to(Stage::ProductionTrafficShift, 100.0),
            Shift::Linear {
                step_percent,
                step_bake_ms,
            } if elapsed >= step_bake_ms => to(
                Stage::ProductionTrafficShift,
                (t.percent + step_percent).min(100.0),
            ),
            Shift::Canary { bake_ms, .. } if elapsed >= bake_ms => {
                to(Stage::ProductionTrafficShift, 100.0)
            }
            _ => None,
        },
        Stage::BakeTime if elapsed >= bake_ms => to(Stage::CleanUp, 100.0),
        Stage::BakeTime | Stage::CleanUp => None,
    }
}

/// The production rule's weights for a share of `percent` to green: whole
/// numbers summing to 100, as ALB takes them.
pub fn weights(percent: f64) -> (i64, i64) {
    let green = percent.round().clamp(0.0, 100.0) as i64;
    (100 - green, green)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(stage: Stage, percent: f64, since_ms: i64) -> Traffic {
        Traffic {
            target_groups: vec!["green".into()],
            stage,
            percent,
            since_ms,
        }
    }

    /// Every state a deployment passes through, stepping each millisecond
    /// from `start` with green ready from `ready_at`.
    fn walk(shift: Shift, bake_ms: i64, ready_at: i64) -> Vec<(i64, Stage, f64)> {
        let mut t = traffic(Stage::ScaleUp, 0.0, 0);
        let mut seen = vec![(0, t.stage, t.percent)];
        for now in 0..100_000 {
            while let Some(next) = traffic_step(&t, shift, bake_ms, now >= ready_at, now) {
                t = next;
                seen.push((now, t.stage, t.percent));
            }
            if t.stage == Stage::CleanUp {
                break;
            }
        }
        seen
    }

    #[test]
    fn blue_green_shifts_all_traffic_once_green_is_ready_then_bakes() {
        let seen = walk(Shift::BlueGreen, 5_000, 1_000);
        assert_eq!(
            seen,
            vec![
                (0, Stage::ScaleUp, 0.0),
                (1_000, Stage::TestTrafficShift, 0.0),
                (1_000, Stage::ProductionTrafficShift, 100.0),
                (1_000, Stage::BakeTime, 100.0),
                (6_000, Stage::CleanUp, 100.0),
            ]
        );
    }

    #[test]
    fn linear_steps_wait_their_bake_time_and_the_last_step_reaches_100() {
        let shift = Shift::Linear {
            step_percent: 30.0,
            step_bake_ms: 2_000,
        };
        let percents: Vec<(i64, f64)> = walk(shift, 0, 0)
            .into_iter()
            .filter(|(_, s, _)| *s == Stage::ProductionTrafficShift)
            .map(|(t, _, p)| (t, p))
            .collect();
        assert_eq!(
            percents,
            vec![(0, 30.0), (2_000, 60.0), (4_000, 90.0), (6_000, 100.0)]
        );
    }

    #[test]
    fn canary_sends_its_share_then_the_rest_after_its_bake_time() {
        let shift = Shift::Canary {
            percent: 5.0,
            bake_ms: 3_000,
        };
        let seen = walk(shift, 1_000, 0);
        assert!(seen.contains(&(0, Stage::ProductionTrafficShift, 5.0)));
        assert!(seen.contains(&(3_000, Stage::ProductionTrafficShift, 100.0)));
        assert!(seen.contains(&(3_000, Stage::BakeTime, 100.0)));
        assert_eq!(seen.last(), Some(&(4_000, Stage::CleanUp, 100.0)));
        assert_eq!(weights(5.0), (95, 5));
        assert_eq!(weights(33.3), (67, 33));
    }

    #[test]
    fn a_deployment_waits_in_scale_up_until_green_is_ready() {
        let t = traffic(Stage::ScaleUp, 0.0, 0);
        assert_eq!(
            traffic_step(&t, Shift::BlueGreen, 0, false, 1_000_000),
            None
        );
        let done = traffic(Stage::CleanUp, 100.0, 0);
        assert_eq!(
            traffic_step(&done, Shift::BlueGreen, 0, true, 1_000_000),
            None
        );
    }
    use rand::{rngs::StdRng, Rng, SeedableRng};

    fn task(n: usize, primary: bool, state: TaskState) -> TaskView {
        TaskView {
            arn: format!("t{n}"),
            primary,
            state,
            created_ms: n as i64,
            protected: false,
        }
    }

    fn bounds(desired: i64, min: i64, max: i64) -> Bounds {
        Bounds {
            desired,
            minimum_healthy_percent: min,
            maximum_percent: max,
        }
    }

    #[test]
    fn rounding_is_ecs_s() {
        let b = bounds(3, 50, 150);
        assert_eq!(b.min_healthy(), 2, "1.5 rounds up");
        assert_eq!(b.max_total(), 4, "4.5 rounds down");
        assert_eq!(breaker_threshold(1), 3);
        assert_eq!(breaker_threshold(10), 5);
        assert_eq!(breaker_threshold(11), 6);
        assert_eq!(breaker_threshold(1000), 200);
    }

    #[test]
    fn an_empty_service_starts_its_desired_count() {
        let s = Snapshot {
            bounds: bounds(3, 100, 200),
            tasks: vec![],
            may_launch: true,
            draining: false,
            stopping: 0,
        };
        assert_eq!(step(&s).start, 3);
    }

    #[test]
    fn a_rolling_update_with_100_200_starts_new_before_stopping_old() {
        let old: Vec<TaskView> = (0..2).map(|n| task(n, false, TaskState::Healthy)).collect();
        let s = Snapshot {
            bounds: bounds(2, 100, 200),
            tasks: old.clone(),
            may_launch: true,
            draining: false,
            stopping: 0,
        };
        let p = step(&s);
        assert_eq!(p.start, 2);
        assert!(p.stop.is_empty(), "{p:?}");
        // One new task healthy: one old one may go.
        let mut tasks = old;
        tasks.push(task(5, true, TaskState::Healthy));
        tasks.push(task(6, true, TaskState::Pending));
        let p = step(&Snapshot { tasks, ..s.clone() });
        assert_eq!(p.start, 0);
        assert_eq!(p.stop, vec![("t1".to_string(), StopWhy::Deployment)]);
    }

    #[test]
    fn a_rolling_update_with_50_100_stops_before_it_starts() {
        let s = Snapshot {
            bounds: bounds(4, 50, 100),
            tasks: (0..4).map(|n| task(n, false, TaskState::Healthy)).collect(),
            may_launch: true,
            draining: false,
            stopping: 0,
        };
        let p = step(&s);
        assert_eq!(p.stop.len(), 2);
        assert_eq!(
            p.start, 0,
            "the stopped ones hold their places until stopped"
        );
        let left: Vec<TaskView> = s
            .tasks
            .iter()
            .filter(|t| !p.stop.iter().any(|(a, _)| *a == t.arn))
            .cloned()
            .collect();
        let p = step(&Snapshot { tasks: left, ..s });
        assert_eq!(p.start, 2, "the room the stopped ones left");
    }

    #[test]
    fn tasks_still_stopping_count_toward_the_maximum() {
        let s = Snapshot {
            bounds: bounds(2, 50, 100),
            tasks: vec![task(0, true, TaskState::Healthy)],
            may_launch: true,
            draining: false,
            stopping: 1,
        };
        assert_eq!(step(&s).start, 0, "the stopping one still holds its place");
        assert_eq!(step(&Snapshot { stopping: 0, ..s }).start, 1);
    }

    #[test]
    fn unhealthy_and_surplus_tasks_stop() {
        let s = Snapshot {
            bounds: bounds(1, 100, 200),
            tasks: vec![
                task(0, true, TaskState::Unhealthy),
                task(1, true, TaskState::Healthy),
                task(2, true, TaskState::Pending),
            ],
            may_launch: true,
            draining: false,
            stopping: 0,
        };
        let p = step(&s);
        assert_eq!(
            p.stop,
            vec![
                ("t0".to_string(), StopWhy::Unhealthy),
                ("t2".to_string(), StopWhy::ScaleIn)
            ]
        );
        assert_eq!(p.start, 0);
    }

    #[test]
    fn protected_tasks_survive_scale_in_and_deployments_but_not_failing_health() {
        let protect = |mut t: TaskView| {
            t.protected = true;
            t
        };
        // Scale in from 3 to 2: the newest unprotected goes, the protected
        // stays even though it would be first.
        let s = Snapshot {
            bounds: bounds(2, 100, 200),
            tasks: vec![
                task(0, true, TaskState::Healthy),
                task(1, true, TaskState::Healthy),
                protect(task(2, true, TaskState::Healthy)),
            ],
            may_launch: true,
            draining: false,
            stopping: 0,
        };
        assert_eq!(step(&s).stop, vec![("t1".to_string(), StopWhy::ScaleIn)]);
        // A deployment whose new task is healthy stops the old ones, but
        // not a protected one; an unhealthy protected task is replaced.
        let s = Snapshot {
            bounds: bounds(1, 100, 200),
            tasks: vec![
                protect(task(0, false, TaskState::Healthy)),
                task(1, false, TaskState::Healthy),
                protect(task(2, true, TaskState::Unhealthy)),
                task(3, true, TaskState::Healthy),
            ],
            may_launch: true,
            draining: false,
            stopping: 0,
        };
        assert_eq!(
            step(&s).stop,
            vec![
                ("t2".to_string(), StopWhy::Unhealthy),
                ("t1".to_string(), StopWhy::Deployment)
            ]
        );
    }

    #[test]
    fn a_failed_deployment_starts_nothing_and_draining_stops_all() {
        let s = Snapshot {
            bounds: bounds(2, 100, 200),
            tasks: vec![task(0, false, TaskState::Healthy)],
            may_launch: false,
            draining: false,
            stopping: 0,
        };
        assert_eq!(step(&s).start, 0);
        let p = step(&Snapshot {
            draining: true,
            ..s
        });
        assert_eq!(p.stop, vec![("t0".to_string(), StopWhy::Draining)]);
    }

    fn on(n: usize, primary: bool, state: TaskState, instance: &str) -> DaemonTask {
        DaemonTask {
            task: task(n, primary, state),
            instance: Some(instance.into()),
        }
    }

    #[test]
    fn a_daemon_fills_each_instance_once_and_follows_them() {
        let mut s = DaemonSnapshot {
            instances: vec!["a".into(), "b".into()],
            may_launch: true,
            ..DaemonSnapshot::default()
        };
        assert_eq!(daemon_step(&s).start_on, ["a", "b"]);
        s.tasks = vec![
            on(0, true, TaskState::Healthy, "a"),
            on(1, true, TaskState::Pending, "a"),
            on(2, true, TaskState::Healthy, "gone"),
        ];
        let p = daemon_step(&s);
        assert_eq!(p.start_on, ["b"]);
        assert_eq!(
            p.stop,
            vec![
                ("t2".to_string(), StopWhy::ScaleIn),
                ("t1".to_string(), StopWhy::ScaleIn)
            ]
        );
    }

    #[test]
    fn a_daemon_deployment_replaces_in_place_within_the_minimum() {
        let s = DaemonSnapshot {
            instances: vec!["a".into(), "b".into()],
            tasks: vec![
                on(0, false, TaskState::Healthy, "a"),
                on(1, false, TaskState::Healthy, "b"),
            ],
            minimum_healthy_percent: 50,
            may_launch: true,
            ..DaemonSnapshot::default()
        };
        let p = daemon_step(&s);
        assert_eq!(p.stop, vec![("t0".to_string(), StopWhy::Deployment)]);
        assert!(p.start_on.is_empty(), "its place is taken until it stops");
        let s = DaemonSnapshot {
            tasks: vec![on(1, false, TaskState::Healthy, "b")],
            ..s
        };
        assert_eq!(daemon_step(&s).start_on, ["a"]);
        let zero = DaemonSnapshot {
            minimum_healthy_percent: 0,
            tasks: vec![
                on(0, false, TaskState::Healthy, "a"),
                on(1, false, TaskState::Healthy, "b"),
            ],
            ..s
        };
        assert_eq!(daemon_step(&zero).stop.len(), 2, "with 0% all go at once");
    }

    /// Simulate a deployment to its end: each pass applies the plan, then
    /// a random part of the pending tasks start and of the running ones
    /// become healthy. Never below the minimum healthy (once reached),
    /// never above the maximum, and it converges.
    #[test]
    fn random_deployments_keep_their_bounds_and_converge() {
        let mut rng = StdRng::seed_from_u64(7);
        for case in 0..500 {
            let desired = rng.gen_range(0..12);
            let min = [0, 50, 100][rng.gen_range(0..3)];
            let max = [100, 150, 200][rng.gen_range(0..3)];
            let b = bounds(desired, min, max);
            if desired > 0 && b.max_total() <= b.min_healthy() {
                // No room to start a new task before an old one stops, and
                // none may stop: ECS cannot move such a service either.
                continue;
            }
            let old = rng.gen_range(0..12);
            let mut tasks: Vec<TaskView> = (0..old)
                .map(|n| task(n, false, TaskState::Healthy))
                .collect();
            let mut next = old;
            let mut passes = 0;
            loop {
                let s = Snapshot {
                    bounds: b,
                    tasks: tasks.clone(),
                    may_launch: true,
                    draining: false,
                    stopping: 0,
                };
                let healthy_before = tasks
                    .iter()
                    .filter(|t| t.state == TaskState::Healthy)
                    .count() as i64;
                let p = step(&s);
                tasks.retain(|t| !p.stop.iter().any(|(a, _)| *a == t.arn));
                let healthy_after = tasks
                    .iter()
                    .filter(|t| t.state == TaskState::Healthy)
                    .count() as i64;
                assert!(
                    healthy_after >= b.min_healthy().min(healthy_before)
                        || tasks.iter().filter(|t| t.primary).count() as i64 >= desired,
                    "case {case}: {b:?} healthy {healthy_before} → {healthy_after} by {p:?}"
                );
                for _ in 0..p.start {
                    tasks.push(task(next, true, TaskState::Pending));
                    next += 1;
                }
                let old_left = tasks.iter().any(|t| !t.primary);
                assert!(
                    !old_left || tasks.len() as i64 <= b.max_total().max(old as i64),
                    "case {case}: {} tasks over the maximum {b:?}",
                    tasks.len()
                );
                let done = !old_left
                    && tasks.len() as i64 == desired
                    && tasks.iter().all(|t| t.state == TaskState::Healthy);
                if done {
                    break;
                }
                for t in tasks.iter_mut().filter(|t| t.primary) {
                    if rng.gen_bool(0.5) {
                        t.state = match t.state {
                            TaskState::Pending => TaskState::Running,
                            _ => TaskState::Healthy,
                        };
                    }
                }
                passes += 1;
                assert!(
                    passes < 200,
                    "case {case}: {b:?} did not converge: {tasks:?}"
                );
            }
        }
    }
}
