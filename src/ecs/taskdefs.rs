//! Task definitions: `RegisterTaskDefinition`, `DescribeTaskDefinition`,
//! `ListTaskDefinitions`, `ListTaskDefinitionFamilies`,
//! `DeregisterTaskDefinition`, `DeleteTaskDefinitions`.
//!
//! The rules a registration must pass, and the normalisations ECS applies,
//! are pure functions in `taskdef_rules.rs`; this file is their storage.
//! Revisions of a family count 1, 2, 3… and are never reused, whatever
//! happens to earlier ones.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use serde_json::{json, Value};

use super::shapes::{
    DeleteTaskDefinitionsRequest, DeleteTaskDefinitionsResponse, DeregisterTaskDefinitionRequest,
    DeregisterTaskDefinitionResponse, DescribeTaskDefinitionRequest,
    DescribeTaskDefinitionResponse, Failure, ListTaskDefinitionFamiliesRequest,
    ListTaskDefinitionFamiliesResponse, ListTaskDefinitionsRequest, ListTaskDefinitionsResponse,
    RegisterTaskDefinitionResponse, SortOrder, TaskDefinition, TaskDefinitionFamilyStatus,
    TaskDefinitionField, TaskDefinitionStatus,
};
use super::{arn, tags, taskdef_rules, Ecs};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::paging;

/// A stored task definition: its ARN, family, revision, status and the full
/// `TaskDefinition` ECS returns.
#[derive(Debug, Clone)]
pub struct TaskDefRow {
    pub arn: String,
    pub family: String,
    pub revision: i64,
    pub status: TaskDefinitionStatus,
    pub doc: TaskDefinition,
}

/// How a call names a task definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskDefRef {
    /// `family`: the latest ACTIVE revision.
    Family(String),
    /// `family:revision` or a full ARN.
    Revision(String, i64),
}

pub fn parse_ref(ctx: &Ctx, ident: &str) -> Option<TaskDefRef> {
    let body = if ident.starts_with("arn:") {
        let a = arn::parse(ident)?;
        if a.kind != "task-definition" || !arn::is_local(ctx, &a) {
            return None;
        }
        a.rest
    } else {
        ident
    };
    match body.rsplit_once(':') {
        Some((family, rev)) => {
            let rev: i64 = rev.parse().ok().filter(|r| *r > 0)?;
            Some(TaskDefRef::Revision(family.to_string(), rev))
        }
        None if ident.starts_with("arn:") => None,
        None => Some(TaskDefRef::Family(body.to_string())),
    }
}

fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, i64, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn to_row(t: (String, String, i64, String, String)) -> ApiResult<TaskDefRow> {
    let bad = |e: serde_json::Error| ApiError::internal(e.to_string());
    Ok(TaskDefRow {
        arn: t.0,
        family: t.1,
        revision: t.2,
        status: serde_json::from_value(Value::String(t.3)).map_err(bad)?,
        doc: serde_json::from_str(&t.4).map_err(bad)?,
    })
}

/// Find a task definition in any status.
pub fn find(conn: &Connection, ctx: &Ctx, r: &TaskDefRef) -> ApiResult<Option<TaskDefRow>> {
    let found = match r {
        TaskDefRef::Family(family) => conn
            .prepare_cached(
                "SELECT arn, family, revision, status, doc FROM task_definitions
                 WHERE account = ?1 AND region = ?2 AND family = ?3 AND status = 'ACTIVE'
                 ORDER BY revision DESC LIMIT 1",
            )?
            .query_row(params![ctx.account, ctx.region, family], row_from)
            .optional()?,
        TaskDefRef::Revision(family, rev) => conn
            .prepare_cached(
                "SELECT arn, family, revision, status, doc FROM task_definitions WHERE arn = ?1",
            )?
            .query_row([arn::task_definition(ctx, family, *rev)], row_from)
            .optional()?,
    };
    found.map(to_row).transpose()
}

/// Resolve an identifier to a task definition that can start new tasks
/// (ACTIVE), as RunTask and CreateService need.
pub fn resolve_active(conn: &Connection, ctx: &Ctx, ident: &str) -> ApiResult<TaskDefRow> {
    let r = parse_ref(ctx, ident).ok_or_else(|| {
        ApiError::invalid_parameter(format!("Invalid task definition identifier: {ident}"))
    })?;
    match find(conn, ctx, &r)? {
        Some(row) if row.status == TaskDefinitionStatus::Active => Ok(row),
        Some(row) => Err(ApiError::client(format!(
            "TaskDefinition is inactive: {}",
            row.arn
        ))),
        None => Err(ApiError::client("Unable to describe task definition.")),
    }
}

/// A task definition by its full ARN, in any status.
pub fn find_by_arn(conn: &Connection, arn: &str) -> ApiResult<Option<TaskDefRow>> {
    conn.prepare_cached(
        "SELECT arn, family, revision, status, doc FROM task_definitions WHERE arn = ?1",
    )?
    .query_row([arn], row_from)
    .optional()?
    .map(to_row)
    .transpose()
}

pub fn exists(conn: &Connection, arn: &str) -> ApiResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM task_definitions WHERE arn = ?1")?
        .query_row([arn], |_| Ok(()))
        .optional()?
        .is_some())
}

fn save(conn: &Connection, row: &TaskDefRow) -> ApiResult<()> {
    conn.prepare_cached("UPDATE task_definitions SET status = ?2, doc = ?3 WHERE arn = ?1")?
        .execute(params![
            row.arn,
            row.status.as_str(),
            serde_json::to_string(&row.doc).expect("serialises")
        ])?;
    Ok(())
}

fn not_found() -> ApiError {
    ApiError::client("Unable to describe task definition.")
}

impl Ecs {
    pub(super) fn register_task_definition(
        &self,
        ctx: &Ctx,
        input: Value,
    ) -> ApiResult<RegisterTaskDefinitionResponse> {
        let Value::Object(mut input) = input else {
            return Err(ApiError::serialization("Expected an object."));
        };
        let user_tags: Vec<tags::Tag> = match input.remove("tags") {
            Some(t) => serde_json::from_value(t)?,
            None => Vec::new(),
        };
        tags::check_user_tags(&user_tags)?;
        // The rules normalise what was given, then it is a TaskDefinition.
        let mut doc: TaskDefinition =
            serde_json::from_value(Value::Object(taskdef_rules::prepare(&input)?))?;
        let family = doc.family.clone().unwrap_or_default();
        self.store.write(|tx| {
            let last: i64 = tx
                .prepare_cached(
                    "SELECT coalesce(max(revision), 0) FROM task_definitions
                     WHERE account = ?1 AND region = ?2 AND family = ?3",
                )?
                .query_row(params![ctx.account, ctx.region, family], |r| r.get(0))?;
            let revision = last + 1;
            let arn = arn::task_definition(ctx, &family, revision);
            doc.task_definition_arn = Some(arn.clone());
            doc.revision = Some(revision);
            doc.status = Some(TaskDefinitionStatus::Active);
            doc.registered_at = Some(ctx.now_epoch());
            doc.registered_by = Some(ctx.principal_arn.clone());
            tx.prepare_cached(
                "INSERT INTO task_definitions
                 (arn, account, region, family, revision, status, registered_at, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'ACTIVE', ?6, ?7)",
            )?
            .execute(params![
                arn,
                ctx.account,
                ctx.region,
                family,
                revision,
                ctx.now_millis(),
                serde_json::to_string(&doc).expect("serialises")
            ])?;
            tags::put(tx, &arn, &user_tags)?;
            Ok(RegisterTaskDefinitionResponse {
                task_definition: Some(doc),
                tags: Some(tags::load(tx, &arn)?),
            })
        })
    }

    pub(super) fn describe_task_definition(
        &self,
        ctx: &Ctx,
        req: DescribeTaskDefinitionRequest,
    ) -> ApiResult<DescribeTaskDefinitionResponse> {
        let r = parse_ref(ctx, &req.task_definition).ok_or_else(not_found)?;
        let with_tags = req
            .include
            .iter()
            .flatten()
            .any(|i| *i == TaskDefinitionField::Tags);
        self.store.read(|conn| {
            let row = find(conn, ctx, &r)?.ok_or_else(not_found)?;
            Ok(DescribeTaskDefinitionResponse {
                tags: if with_tags {
                    Some(tags::load(conn, &row.arn)?)
                } else {
                    None
                },
                task_definition: Some(row.doc),
            })
        })
    }

    pub(super) fn list_task_definitions(
        &self,
        ctx: &Ctx,
        req: ListTaskDefinitionsRequest,
    ) -> ApiResult<ListTaskDefinitionsResponse> {
        let size = paging::page_size(req.max_results, paging::MAX_RESULTS)?;
        let status = req.status.unwrap_or(TaskDefinitionStatus::Active);
        let desc = req.sort == Some(SortOrder::Desc);
        let (after_family, after_rev) = match &req.next_token {
            Some(t) => {
                let k = paging::decode(t)?;
                match (
                    k.get(0).and_then(Value::as_str),
                    k.get(1).and_then(Value::as_i64),
                ) {
                    (Some(f), Some(r)) => (Some(f.to_string()), r),
                    _ => return Err(ApiError::invalid_parameter("Invalid nextToken.")),
                }
            }
            None => (None, 0),
        };
        let cmp = if desc { "<" } else { ">" };
        let order = if desc { "DESC" } else { "ASC" };
        // Clauses are added only when used, so SQLite can walk the
        // (account, region, status, family, revision) index.
        let mut sql = String::from(
            "SELECT arn, family, revision FROM task_definitions
             WHERE account = ? AND region = ? AND status = ?",
        );
        let mut args: Vec<SqlValue> = vec![
            ctx.account.clone().into(),
            ctx.region.clone().into(),
            status.as_str().to_string().into(),
        ];
        if let Some(f) = &req.family_prefix {
            sql.push_str(" AND family = ?");
            args.push(f.clone().into());
        }
        if let Some(f) = after_family {
            sql.push_str(&format!(" AND (family, revision) {cmp} (?, ?)"));
            args.push(f.into());
            args.push(after_rev.into());
        }
        sql.push_str(&format!(
            " ORDER BY family {order}, revision {order} LIMIT ?"
        ));
        args.push((size as i64 + 1).into());
        self.store.read(|conn| {
            let rows: Vec<(String, String, i64)> = conn
                .prepare_cached(&sql)?
                .query_map(params_from_iter(args.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<_, _>>()?;
            let (page, token) = paging::page(rows, size, |(_, f, r)| json!([f, r]));
            Ok(ListTaskDefinitionsResponse {
                task_definition_arns: Some(page.into_iter().map(|(a, _, _)| a).collect()),
                next_token: token,
            })
        })
    }

    pub(super) fn list_task_definition_families(
        &self,
        ctx: &Ctx,
        req: ListTaskDefinitionFamiliesRequest,
    ) -> ApiResult<ListTaskDefinitionFamiliesResponse> {
        let size = paging::page_size(req.max_results, paging::MAX_RESULTS)?;
        let after = match &req.next_token {
            Some(t) => Some(
                paging::decode(t)?
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::invalid_parameter("Invalid nextToken."))?,
            ),
            None => None,
        };
        // A family is ACTIVE when it has an ACTIVE revision, INACTIVE when it
        // has none.
        let having = match req.status.unwrap_or(TaskDefinitionFamilyStatus::All) {
            TaskDefinitionFamilyStatus::Active => "HAVING sum(status = 'ACTIVE') > 0",
            TaskDefinitionFamilyStatus::Inactive => "HAVING sum(status = 'ACTIVE') = 0",
            TaskDefinitionFamilyStatus::All => "",
        };
        let sql = format!(
            "SELECT family FROM task_definitions
             WHERE account = ?1 AND region = ?2
               AND (?3 IS NULL OR substr(family, 1, length(?3)) = ?3)
               AND (?4 IS NULL OR family > ?4)
             GROUP BY family {having} ORDER BY family LIMIT ?5"
        );
        self.store.read(|conn| {
            let rows: Vec<String> = conn
                .prepare_cached(&sql)?
                .query_map(
                    params![
                        ctx.account,
                        ctx.region,
                        req.family_prefix,
                        after,
                        size as i64 + 1
                    ],
                    |r| r.get(0),
                )?
                .collect::<Result<_, _>>()?;
            let (page, token) = paging::page(rows, size, |f| json!(f));
            Ok(ListTaskDefinitionFamiliesResponse {
                families: Some(page),
                next_token: token,
            })
        })
    }

    pub(super) fn deregister_task_definition(
        &self,
        ctx: &Ctx,
        req: DeregisterTaskDefinitionRequest,
    ) -> ApiResult<DeregisterTaskDefinitionResponse> {
        let r = match parse_ref(ctx, &req.task_definition) {
            Some(r @ TaskDefRef::Revision(..)) => r,
            Some(TaskDefRef::Family(_)) => {
                return Err(ApiError::client(
                    "A revision must be specified: use family:revision or the full task definition ARN.",
                ))
            }
            None => return Err(ApiError::client("The specified task definition does not exist.")),
        };
        self.store.write(|tx| {
            let mut row = find(tx, ctx, &r)?
                .ok_or_else(|| ApiError::client("The specified task definition does not exist."))?;
            if row.status == TaskDefinitionStatus::Active {
                row.status = TaskDefinitionStatus::Inactive;
                row.doc.status = Some(row.status);
                row.doc.deregistered_at = Some(ctx.now_epoch());
                save(tx, &row)?;
            }
            Ok(DeregisterTaskDefinitionResponse {
                task_definition: Some(row.doc),
            })
        })
    }

    pub(super) fn delete_task_definitions(
        &self,
        ctx: &Ctx,
        req: DeleteTaskDefinitionsRequest,
    ) -> ApiResult<DeleteTaskDefinitionsResponse> {
        if req.task_definitions.is_empty() || req.task_definitions.len() > 10 {
            return Err(ApiError::invalid_parameter(
                "taskDefinitions must name between 1 and 10 task definitions.",
            ));
        }
        self.store.write(|tx| {
            let mut done = Vec::new();
            let mut failures = Vec::new();
            for ident in &req.task_definitions {
                let fail = |reason: &str| Failure {
                    arn: Some(ident.clone()),
                    reason: Some(reason.into()),
                    ..Failure::default()
                };
                let row = match parse_ref(ctx, ident) {
                    Some(r @ TaskDefRef::Revision(..)) => find(tx, ctx, &r)?,
                    Some(TaskDefRef::Family(_)) => {
                        failures.push(fail("The specified task definition identifier is invalid. Specify a valid name or ARN and try again."));
                        continue;
                    }
                    None => None,
                };
                let Some(mut row) = row else {
                    failures.push(fail("The specified task definition does not exist. Specify a valid account, family, revision and try again."));
                    continue;
                };
                match row.status {
                    TaskDefinitionStatus::Active => failures.push(Failure {
                        arn: Some(row.arn),
                        reason: Some("The specified task definition is still in ACTIVE status. Please deregister the target and try again.".into()),
                        ..Failure::default()
                    }),
                    TaskDefinitionStatus::Inactive => {
                        row.status = TaskDefinitionStatus::DeleteInProgress;
                        row.doc.status = Some(row.status);
                        row.doc.delete_requested_at = Some(ctx.now_epoch());
                        save(tx, &row)?;
                        done.push(row.doc);
                    }
                    TaskDefinitionStatus::DeleteInProgress => done.push(row.doc),
                }
            }
            Ok(DeleteTaskDefinitionsResponse {
                task_definitions: Some(done),
                failures: Some(failures),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn task_definition_references() {
        let ctx = Ctx::for_tests(Utc::now());
        assert_eq!(
            parse_ref(&ctx, "web"),
            Some(TaskDefRef::Family("web".into()))
        );
        assert_eq!(
            parse_ref(&ctx, "web:3"),
            Some(TaskDefRef::Revision("web".into(), 3))
        );
        assert_eq!(
            parse_ref(
                &ctx,
                "arn:aws:ecs:us-east-1:000000000000:task-definition/web:7"
            ),
            Some(TaskDefRef::Revision("web".into(), 7))
        );
        assert_eq!(parse_ref(&ctx, "web:x"), None);
        assert_eq!(parse_ref(&ctx, "web:0"), None);
        assert_eq!(
            parse_ref(
                &ctx,
                "arn:aws:ecs:eu-west-1:000000000000:task-definition/web:7"
            ),
            None
        );
    }
}
