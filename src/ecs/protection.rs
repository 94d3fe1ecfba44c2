//! Task scale-in protection: UpdateTaskProtection and GetTaskProtection.
//!
//! A service's task may be protected for 1 minute to 48 hours (2 hours when
//! the call names no time). While protected, neither scale-in nor a
//! deployment stops it (`deploy::step` leaves it be); failing its health
//! checks, the service's deletion or StopTask still do. Protection lapses
//! on its own at its expiry: a row whose time has passed is read as
//! unprotected.

use std::collections::HashSet;

use rusqlite::{params, Connection};

use super::shapes::{
    Failure, GetTaskProtectionRequest, GetTaskProtectionResponse, ProtectedTask,
    UpdateTaskProtectionRequest, UpdateTaskProtectionResponse,
};
use super::status::TaskStatus;
use super::{arn, clusters, tasks, Ecs};
use crate::context::{millis_to_epoch, Ctx};
use crate::error::{ApiError, ApiResult};

const DEFAULT_MINUTES: i64 = 120;
const MAX_MINUTES: i64 = 2_880;

/// The tasks protected at `now_ms`, everywhere (few; the scheduler reads
/// them once a pass).
pub fn active(conn: &Connection, now_ms: i64) -> ApiResult<HashSet<String>> {
    let set = conn
        .prepare_cached("SELECT task_arn FROM task_protection WHERE expires_at > ?1")?
        .query_map([now_ms], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(set)
}

/// When a task's protection expires, if it is protected at `now_ms`.
fn expiry(conn: &Connection, task_arn: &str, now_ms: i64) -> ApiResult<Option<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT expires_at FROM task_protection WHERE task_arn = ?1 AND expires_at > ?2",
    )?;
    let mut rows = stmt.query(params![task_arn, now_ms])?;
    Ok(match rows.next()? {
        Some(r) => Some(r.get(0)?),
        None => None,
    })
}

fn failure(arn: String, reason: &str, detail: Option<&str>) -> Failure {
    Failure {
        arn: Some(arn),
        reason: Some(reason.into()),
        detail: detail.map(String::from),
    }
}

/// A task the call may protect: in the cluster, not stopped, a service's.
/// `Err` is the failure to report instead.
fn eligible(
    conn: &Connection,
    cluster: &clusters::ClusterRow,
    arn: &str,
) -> ApiResult<Result<(), Failure>> {
    let Some(t) = tasks::load(conn, arn)?.filter(|t| t.cluster_arn == cluster.arn) else {
        return Ok(Err(failure(arn.into(), "MISSING", None)));
    };
    let service = t
        .doc
        .group
        .as_deref()
        .is_some_and(|g| g.starts_with("service:"));
    if !service {
        return Ok(Err(failure(
            arn.into(),
            "TASK_NOT_VALID",
            Some("The task is not part of a service: only service tasks can be protected."),
        )));
    }
    if t.doc.last_status == Some(TaskStatus::Stopped) || t.desired_status == TaskStatus::Stopped {
        return Ok(Err(failure(
            arn.into(),
            "TASK_NOT_VALID",
            Some("The task is stopped or stopping."),
        )));
    }
    Ok(Ok(()))
}

fn check_tasks(tasks: &[String], max: usize) -> ApiResult<()> {
    if tasks.len() > max {
        return Err(ApiError::invalid_parameter(format!(
            "tasks can have at most {max} items."
        )));
    }
    Ok(())
}

impl Ecs {
    pub(super) fn update_task_protection(
        &self,
        ctx: &Ctx,
        req: UpdateTaskProtectionRequest,
    ) -> ApiResult<UpdateTaskProtectionResponse> {
        if req.tasks.is_empty() {
            return Err(ApiError::invalid_parameter("tasks cannot be empty."));
        }
        check_tasks(&req.tasks, 10)?;
        let minutes = req.expires_in_minutes.unwrap_or(DEFAULT_MINUTES);
        if req.protection_enabled && !(1..=MAX_MINUTES).contains(&minutes) {
            return Err(ApiError::invalid_parameter(format!(
                "expiresInMinutes must be between 1 and {MAX_MINUTES}."
            )));
        }
        let now = ctx.now_millis();
        let expires = now + minutes * 60_000;
        self.store.write(|tx| {
            let cluster = clusters::resolve_active(tx, ctx, Some(&req.cluster))?;
            let mut protected = Vec::new();
            let mut failures = Vec::new();
            for ident in &req.tasks {
                let task_arn = arn::resolve_in_cluster(ctx, "task", &cluster.name, ident);
                if let Err(f) = eligible(tx, &cluster, &task_arn)? {
                    failures.push(f);
                    continue;
                }
                if req.protection_enabled {
                    tx.prepare_cached(
                        "INSERT INTO task_protection (task_arn, cluster_arn, expires_at)
                         VALUES (?1, ?2, ?3)
                         ON CONFLICT (task_arn) DO UPDATE SET expires_at = excluded.expires_at",
                    )?
                    .execute(params![task_arn, cluster.arn, expires])?;
                } else {
                    tx.prepare_cached("DELETE FROM task_protection WHERE task_arn = ?1")?
                        .execute([&task_arn])?;
                }
                protected.push(ProtectedTask {
                    task_arn: Some(task_arn),
                    protection_enabled: Some(req.protection_enabled),
                    expiration_date: req.protection_enabled.then(|| millis_to_epoch(expires)),
                });
            }
            Ok(UpdateTaskProtectionResponse {
                protected_tasks: Some(protected),
                failures: Some(failures),
            })
        })
    }

    pub(super) fn get_task_protection(
        &self,
        ctx: &Ctx,
        req: GetTaskProtectionRequest,
    ) -> ApiResult<GetTaskProtectionResponse> {
        let idents = req.tasks.unwrap_or_default();
        check_tasks(&idents, 100)?;
        let now = ctx.now_millis();
        self.store.read(|conn| {
            let cluster = clusters::resolve_active(conn, ctx, Some(&req.cluster))?;
            let arns: Vec<String> = if idents.is_empty() {
                // No tasks named: the cluster's protected tasks.
                conn.prepare_cached(
                    "SELECT task_arn FROM task_protection WHERE cluster_arn = ?1 AND expires_at > ?2
                     ORDER BY task_arn",
                )?
                .query_map(params![cluster.arn, now], |r| r.get(0))?
                .collect::<Result<_, _>>()?
            } else {
                idents
                    .iter()
                    .map(|i| arn::resolve_in_cluster(ctx, "task", &cluster.name, i))
                    .collect()
            };
            let mut protected = Vec::new();
            let mut failures = Vec::new();
            for task_arn in arns {
                if let Err(f) = eligible(conn, &cluster, &task_arn)? {
                    failures.push(f);
                    continue;
                }
                let until = expiry(conn, &task_arn, now)?;
                protected.push(ProtectedTask {
                    task_arn: Some(task_arn),
                    protection_enabled: Some(until.is_some()),
                    expiration_date: until.map(millis_to_epoch),
                });
            }
            Ok(GetTaskProtectionResponse {
                protected_tasks: Some(protected),
                failures: Some(failures),
            })
        })
    }
}
