//! Task sets, for services whose deployments an outside tool drives (the
//! `EXTERNAL` deployment controller): CreateTaskSet, DescribeTaskSets,
//! UpdateTaskSet, DeleteTaskSet and UpdateServicePrimaryTaskSet.
//!
//! A task set is a revision of the service's tasks at a scale: its
//! `computedDesiredCount` is the service's desired count times the scale
//! percentage, rounded up. The scheduler's task-set pass
//! ([`Ecs::schedule_task_sets`]) keeps each set at that count, its tasks
//! started by the set's id in the service's group; a deleted set drains
//! (every task stopped) and is gone once its tasks have stopped.

use std::collections::HashSet;

use rusqlite::{params, Connection, OptionalExtension};

use super::services::{self, ServiceRow, ServiceStatus};
use super::shapes::{
    CreateTaskSetRequest, CreateTaskSetResponse, DeleteTaskSetRequest, DeleteTaskSetResponse,
    Deployment, DeploymentControllerType, DescribeTaskSetsRequest, DescribeTaskSetsResponse, Scale,
    ScaleUnit, StabilityStatus, TaskSet, TaskSetField, TaskStopCode,
    UpdateServicePrimaryTaskSetRequest, UpdateServicePrimaryTaskSetResponse, UpdateTaskSetRequest,
    UpdateTaskSetResponse,
};
use super::{arn, clusters, describe_each, protection, tags, tasks, Ecs};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::events::Topic;

pub const PRIMARY: &str = "PRIMARY";
pub const ACTIVE: &str = "ACTIVE";
pub const DRAINING: &str = "DRAINING";

#[derive(Debug, Clone)]
pub struct TaskSetRow {
    pub arn: String,
    pub id: String,
    pub service_arn: String,
    pub status: String,
    pub doc: TaskSet,
}

const SELECT: &str = "SELECT arn, id, service_arn, status, doc FROM task_sets";

fn from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaskSetRow> {
    let doc: String = r.get(4)?;
    Ok(TaskSetRow {
        arn: r.get(0)?,
        id: r.get(1)?,
        service_arn: r.get(2)?,
        status: r.get(3)?,
        doc: serde_json::from_str(&doc).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
        })?,
    })
}

/// A service's task sets, oldest first.
pub fn of_service(conn: &Connection, service_arn: &str) -> ApiResult<Vec<TaskSetRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT} WHERE service_arn = ?1 ORDER BY created_at, arn"
        ))?
        .query_map([service_arn], from_sql)?
        .collect::<Result<_, _>>()?)
}

fn all(conn: &Connection) -> ApiResult<Vec<TaskSetRow>> {
    Ok(conn
        .prepare_cached(&format!("{SELECT} ORDER BY service_arn, created_at, arn"))?
        .query_map([], from_sql)?
        .collect::<Result<_, _>>()?)
}

fn save(conn: &Connection, t: &TaskSetRow) -> ApiResult<()> {
    conn.prepare_cached("UPDATE task_sets SET status = ?2, doc = ?3 WHERE arn = ?1")?
        .execute(params![t.arn, t.status, serde_json::to_string(&t.doc)?])?;
    Ok(())
}

/// A task set's share of `desired`: the scale percentage of it, rounded up.
pub fn computed(desired: i64, scale: &Scale) -> i64 {
    let pct = scale.value.unwrap_or(100.0).clamp(0.0, 100.0);
    ((desired as f64) * pct / 100.0 - 1e-9).ceil().max(0.0) as i64
}

fn check_scale(scale: &Scale) -> ApiResult<()> {
    match scale.value {
        Some(v) if (0.0..=100.0).contains(&v) => Ok(()),
        _ => Err(ApiError::invalid_parameter(
            "The scale value must be a percentage between 0 and 100.",
        )),
    }
}

/// The task set as described: its counts as they stand.
fn render(
    conn: &Connection,
    s: &ServiceRow,
    t: &TaskSetRow,
    with_tags: bool,
) -> ApiResult<TaskSet> {
    let mut out = t.doc.clone();
    let (running, pending): (i64, i64) = conn
        .prepare_cached(
            "SELECT coalesce(sum(last_status = 'RUNNING'), 0), coalesce(sum(last_status != 'RUNNING'), 0)
             FROM tasks INDEXED BY tasks_by_started_by
             WHERE started_by = ?1 AND last_status != 'STOPPED'",
        )?
        .query_row([&t.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let want = if t.status == DRAINING {
        0
    } else {
        computed(
            s.desired(),
            t.doc.scale.as_ref().unwrap_or(&Scale::default()),
        )
    };
    out.status = Some(t.status.clone());
    out.computed_desired_count = Some(want);
    out.running_count = Some(running);
    out.pending_count = Some(pending);
    out.stability_status = Some(if running == want && pending == 0 {
        StabilityStatus::SteadyState
    } else {
        StabilityStatus::Stabilizing
    });
    out.tags = with_tags.then(|| tags::load(conn, &t.arn)).transpose()?;
    Ok(out)
}

/// The task sets of a service as DescribeServices shows them.
pub fn rendered(conn: &Connection, s: &ServiceRow) -> ApiResult<Vec<TaskSet>> {
    of_service(conn, &s.arn)?
        .iter()
        .map(|t| render(conn, s, t, false))
        .collect()
}

/// The ACTIVE service a task-set call names, which must use the EXTERNAL
/// deployment controller.
fn external_service(
    conn: &Connection,
    ctx: &Ctx,
    cluster: &str,
    service: &str,
) -> ApiResult<(clusters::ClusterRow, ServiceRow)> {
    let cluster = clusters::resolve_active(conn, ctx, Some(cluster))?;
    let s = services::find_in(conn, ctx, &cluster, service)?;
    if s.status != ServiceStatus::Active {
        return Err(ApiError::new(
            "ServiceNotActiveException",
            "Service was not ACTIVE.",
        ));
    }
    let external = s
        .doc
        .deployment_controller
        .as_ref()
        .is_some_and(|c| c.r#type == DeploymentControllerType::External);
    if !external {
        return Err(ApiError::invalid_parameter(
            "Amazon ECS only supports task set management on services configured to use external deployment controllers.",
        ));
    }
    Ok((cluster, s))
}

fn not_found(ident: &str) -> ApiError {
    ApiError::new(
        "TaskSetNotFoundException",
        format!("The specified task set {ident} does not exist."),
    )
}

/// A task set of `s` by id or ARN.
fn find(conn: &Connection, s: &ServiceRow, ident: &str) -> ApiResult<Option<TaskSetRow>> {
    let key = if ident.starts_with("arn:") {
        ident.rsplit('/').next().unwrap_or_default().to_string()
    } else {
        ident.trim_start_matches("ecs-svc/").to_string()
    };
    Ok(conn
        .prepare_cached(&format!("{SELECT} WHERE id = ?1 AND service_arn = ?2"))?
        .query_row(params![format!("ecs-svc/{key}"), s.arn], from_sql)
        .optional()?)
}

/// A task set as the revision its tasks are launched from.
fn revision(t: &TaskSet) -> Deployment {
    Deployment {
        task_definition: t.task_definition.clone(),
        launch_type: t.launch_type,
        capacity_provider_strategy: t.capacity_provider_strategy.clone(),
        network_configuration: t.network_configuration.clone(),
        platform_version: t.platform_version.clone(),
        ..Deployment::default()
    }
}

/// What a task set's tasks are launched with.
fn task_request(
    conn: &Connection,
    s: &ServiceRow,
    cluster: &clusters::ClusterRow,
    t: &TaskSetRow,
) -> ApiResult<tasks::TaskRequest> {
    super::scheduler::task_request(conn, s, &t.id, &revision(&t.doc), cluster)
}

/// One task set's tasks this pass: the live ones (newest first) and how
/// many it should have.
struct SetView {
    set: TaskSetRow,
    service: ServiceRow,
    live: Vec<(String, i64)>,
    stopping: i64,
    want: i64,
}

impl SetView {
    fn read(conn: &Connection, set: TaskSetRow, service: ServiceRow) -> ApiResult<SetView> {
        let mut live: Vec<(String, i64)> = Vec::new();
        let mut stopping = 0;
        let mut stmt = conn.prepare_cached(
            "SELECT arn, created_at, desired_status FROM tasks INDEXED BY tasks_by_started_by
             WHERE started_by = ?1 AND last_status != 'STOPPED'",
        )?;
        let mut rows = stmt.query([&set.id])?;
        while let Some(r) = rows.next()? {
            if r.get_ref(2)?.as_str().ok() == Some("RUNNING") {
                live.push((r.get(0)?, r.get(1)?));
            } else {
                stopping += 1;
            }
        }
        live.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let want = if set.status == DRAINING || service.status != ServiceStatus::Active {
            0
        } else {
            computed(
                service.desired(),
                set.doc.scale.as_ref().unwrap_or(&Scale::default()),
            )
        };
        Ok(SetView {
            set,
            service,
            live,
            stopping,
            want,
        })
    }

    /// Nothing to start, stop or forget.
    fn quiet(&self, protected: &HashSet<String>) -> bool {
        let n = self.live.len() as i64;
        let stoppable = self.live.iter().any(|(a, _)| !protected.contains(a));
        let gone = self.set.status == DRAINING && n == 0 && self.stopping == 0;
        !gone && n >= self.want && (n == self.want || !stoppable)
    }
}

impl Ecs {
    /// The task-set pass of the service scheduler: every task set kept at
    /// its computed count.
    pub(super) fn schedule_task_sets(&self, now_ms: i64) -> ApiResult<()> {
        let busy: Vec<String> = self.store.read(|c| {
            let sets = all(c)?;
            if sets.is_empty() {
                return Ok(Vec::new());
            }
            let protected = protection::active(c, now_ms)?;
            let mut busy = Vec::new();
            for set in sets {
                let Some(service) = services::load(c, &set.service_arn)? else {
                    continue;
                };
                let arn = set.arn.clone();
                if !SetView::read(c, set, service)?.quiet(&protected) {
                    busy.push(arn);
                }
            }
            Ok(busy)
        })?;
        for arn in busy {
            let mut launched = self.store.write_then(
                |tx| self.act_on_set(tx, &arn, now_ms),
                |l| {
                    for x in l.iter_mut() {
                        self.keep_placer(x);
                    }
                },
            )?;
            for l in &mut launched {
                self.wake_for(l);
            }
            self.tasks_changed();
        }
        Ok(())
    }

    fn act_on_set(
        &self,
        tx: &Connection,
        arn: &str,
        now_ms: i64,
    ) -> ApiResult<Vec<tasks::Launched>> {
        let Some(set) = tx
            .prepare_cached(&format!("{SELECT} WHERE arn = ?1"))?
            .query_row([arn], from_sql)
            .optional()?
        else {
            return Ok(Vec::new());
        };
        let Some(service) = services::load(tx, &set.service_arn)? else {
            return Ok(Vec::new());
        };
        let v = SetView::read(tx, set, service)?;
        let ctx = super::scheduler::internal_ctx(&v.service.arn, now_ms);
        let n = v.live.len() as i64;
        if v.set.status == DRAINING && n == 0 && v.stopping == 0 {
            tx.prepare_cached("DELETE FROM task_sets WHERE arn = ?1")?
                .execute([&v.set.arn])?;
            return Ok(Vec::new());
        }
        if n > v.want {
            let protected = protection::active(tx, now_ms)?;
            let draining = v.set.status == DRAINING;
            let reason = format!("Scaling activity initiated by (deployment {})", v.set.id);
            let mut surplus = n - v.want;
            for (task, _) in &v.live {
                if surplus == 0 {
                    break;
                }
                if draining || !protected.contains(task) {
                    tasks::stop(
                        tx,
                        task,
                        TaskStopCode::ServiceSchedulerInitiated,
                        &reason,
                        ctx.now_epoch(),
                    )?;
                    surplus -= 1;
                }
            }
            return Ok(Vec::new());
        }
        if n < v.want {
            let cluster = match clusters::find(tx, &ctx, &v.service.cluster_arn)? {
                Some(c) if c.is_active() => c,
                _ => return Ok(Vec::new()),
            };
            let mut req = task_request(tx, &v.service, &cluster, &v.set)?;
            req.count = v.want - n;
            tx.execute_batch("SAVEPOINT task_set_launch")?;
            return match self.launch(tx, &ctx, &cluster, &req) {
                Ok(l) => {
                    tx.execute_batch("RELEASE task_set_launch")?;
                    Ok(vec![l])
                }
                Err(e) => {
                    tx.execute_batch("ROLLBACK TO task_set_launch; RELEASE task_set_launch")?;
                    services::event(
                        tx,
                        &ctx,
                        &v.service.arn,
                        &format!(
                            "(service {}) (task-set {}) was unable to start tasks: {}",
                            v.service.name, v.set.id, e.message
                        ),
                    )?;
                    Ok(Vec::new())
                }
            };
        }
        Ok(Vec::new())
    }

    pub(super) fn create_task_set(
        &self,
        ctx: &Ctx,
        req: CreateTaskSetRequest,
    ) -> ApiResult<CreateTaskSetResponse> {
        let scale = req.scale.clone().unwrap_or(Scale {
            unit: Some(ScaleUnit::Percent),
            value: Some(100.0),
        });
        check_scale(&scale)?;
        let user_tags = tags::from_shapes(req.tags.as_deref().unwrap_or_default());
        tags::check_user_tags(&user_tags)?;
        let out = self.store.write(|tx| {
            let (cluster, s) = external_service(tx, ctx, &req.cluster, &req.service)?;
            let td = super::taskdefs::resolve_active(tx, ctx, &req.task_definition)?;
            let (launch_type, strategy) = services::default_launch(
                &cluster,
                req.launch_type,
                req.capacity_provider_strategy.clone(),
            );
            let (platform_version, platform_family) =
                services::platform(launch_type, req.platform_version.clone());
            let id = services::new_deployment_id();
            let number = id.trim_start_matches("ecs-svc/");
            let arn = arn::of(
                ctx,
                &format!("task-set/{}/{}/{number}", cluster.name, s.name),
            );
            let now = ctx.now_epoch();
            let doc = TaskSet {
                id: Some(id.clone()),
                task_set_arn: Some(arn.clone()),
                service_arn: Some(s.arn.clone()),
                cluster_arn: Some(cluster.arn.clone()),
                external_id: req.external_id.clone(),
                task_definition: Some(td.arn.clone()),
                launch_type,
                capacity_provider_strategy: strategy,
                platform_version,
                platform_family,
                network_configuration: req.network_configuration.clone(),
                load_balancers: Some(req.load_balancers.clone().unwrap_or_default()),
                service_registries: Some(req.service_registries.clone().unwrap_or_default()),
                scale: Some(scale.clone()),
                created_at: Some(now),
                updated_at: Some(now),
                stability_status_at: Some(now),
                ..TaskSet::default()
            };
            let row = TaskSetRow {
                arn: arn.clone(),
                id: id.clone(),
                service_arn: s.arn.clone(),
                status: ACTIVE.into(),
                doc,
            };
            tasks::check_request(tx, ctx, &cluster, &task_request(tx, &s, &cluster, &row)?)?;
            tx.prepare_cached(
                "INSERT INTO task_sets (arn, id, service_arn, status, created_at, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                arn,
                id,
                s.arn,
                ACTIVE,
                ctx.now_millis(),
                serde_json::to_string(&row.doc)?
            ])?;
            tags::put(tx, &arn, &user_tags)?;
            render(tx, &s, &row, false)
        })?;
        self.bus.wake(Topic::Services);
        Ok(CreateTaskSetResponse {
            task_set: Some(out),
        })
    }

    pub(super) fn update_task_set(
        &self,
        ctx: &Ctx,
        req: UpdateTaskSetRequest,
    ) -> ApiResult<UpdateTaskSetResponse> {
        check_scale(&req.scale)?;
        let out = self.store.write(|tx| {
            let (_, s) = external_service(tx, ctx, &req.cluster, &req.service)?;
            let mut t = find(tx, &s, &req.task_set)?
                .filter(|t| t.status != DRAINING)
                .ok_or_else(|| not_found(&req.task_set))?;
            t.doc.scale = Some(Scale {
                unit: Some(req.scale.unit.unwrap_or(ScaleUnit::Percent)),
                value: req.scale.value,
            });
            t.doc.updated_at = Some(ctx.now_epoch());
            save(tx, &t)?;
            render(tx, &s, &t, false)
        })?;
        self.bus.wake(Topic::Services);
        Ok(UpdateTaskSetResponse {
            task_set: Some(out),
        })
    }

    pub(super) fn update_service_primary_task_set(
        &self,
        ctx: &Ctx,
        req: UpdateServicePrimaryTaskSetRequest,
    ) -> ApiResult<UpdateServicePrimaryTaskSetResponse> {
        let out = self.store.write(|tx| {
            let (_, s) = external_service(tx, ctx, &req.cluster, &req.service)?;
            let mut t = find(tx, &s, &req.primary_task_set)?
                .filter(|t| t.status != DRAINING)
                .ok_or_else(|| not_found(&req.primary_task_set))?;
            for mut other in of_service(tx, &s.arn)? {
                if other.status == PRIMARY && other.arn != t.arn {
                    other.status = ACTIVE.into();
                    other.doc.updated_at = Some(ctx.now_epoch());
                    save(tx, &other)?;
                }
            }
            t.status = PRIMARY.into();
            t.doc.updated_at = Some(ctx.now_epoch());
            save(tx, &t)?;
            // The service shows the primary set's revision.
            let mut svc = s.clone();
            svc.doc.task_definition = t.doc.task_definition.clone();
            services::save(tx, &svc)?;
            render(tx, &s, &t, false)
        })?;
        Ok(UpdateServicePrimaryTaskSetResponse {
            task_set: Some(out),
        })
    }

    pub(super) fn delete_task_set(
        &self,
        ctx: &Ctx,
        req: DeleteTaskSetRequest,
    ) -> ApiResult<DeleteTaskSetResponse> {
        let out = self.store.write(|tx| {
            let (_, s) = external_service(tx, ctx, &req.cluster, &req.service)?;
            let mut t = find(tx, &s, &req.task_set)?
                .filter(|t| t.status != DRAINING)
                .ok_or_else(|| not_found(&req.task_set))?;
            let scaled = t.doc.scale.as_ref().and_then(|x| x.value).unwrap_or(0.0) > 0.0;
            if (t.status == PRIMARY || scaled) && req.force != Some(true) {
                return Err(ApiError::invalid_parameter(
                    "The task set cannot be deleted while it is the primary task set or scaled above 0%. Scale it to 0 first, or use force.",
                ));
            }
            t.status = DRAINING.into();
            t.doc.updated_at = Some(ctx.now_epoch());
            save(tx, &t)?;
            render(tx, &s, &t, false)
        })?;
        self.bus.wake(Topic::Services);
        Ok(DeleteTaskSetResponse {
            task_set: Some(out),
        })
    }

    pub(super) fn describe_task_sets(
        &self,
        ctx: &Ctx,
        req: DescribeTaskSetsRequest,
    ) -> ApiResult<DescribeTaskSetsResponse> {
        let with_tags = req
            .include
            .iter()
            .flatten()
            .any(|i| *i == TaskSetField::Tags);
        self.store.read(|conn| {
            let cluster = clusters::resolve_active(conn, ctx, Some(&req.cluster))?;
            let s = services::find_in(conn, ctx, &cluster, &req.service)?;
            let (found, failures) = match &req.task_sets {
                Some(idents) if !idents.is_empty() => describe_each(idents, |ident| {
                    Ok(match find(conn, &s, ident)? {
                        Some(t) => Ok(render(conn, &s, &t, with_tags)?),
                        None => Err(ident.clone()),
                    })
                })?,
                _ => (
                    of_service(conn, &s.arn)?
                        .iter()
                        .map(|t| render(conn, &s, t, with_tags))
                        .collect::<ApiResult<_>>()?,
                    Vec::new(),
                ),
            };
            Ok(DescribeTaskSetsResponse {
                task_sets: Some(found),
                failures: Some(failures),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_computed_count_rounds_up() {
        let at = |v: f64| Scale {
            unit: Some(ScaleUnit::Percent),
            value: Some(v),
        };
        assert_eq!(computed(4, &at(50.0)), 2);
        assert_eq!(computed(3, &at(50.0)), 2);
        assert_eq!(computed(3, &at(0.0)), 0);
        assert_eq!(computed(3, &at(100.0)), 3);
        assert_eq!(computed(10, &at(33.3)), 4);
        assert_eq!(computed(0, &at(100.0)), 0);
    }
}
