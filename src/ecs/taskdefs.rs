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
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{arn, paging, tags, taskdef_rules, Ecs};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

/// A stored task definition: its ARN, family, revision, status and the full
/// `TaskDefinition` document ECS returns.
#[derive(Debug, Clone)]
pub struct TaskDefRow {
    pub arn: String,
    pub family: String,
    pub revision: i64,
    pub status: String,
    pub doc: Map<String, Value>,
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
    Ok(TaskDefRow {
        arn: t.0,
        family: t.1,
        revision: t.2,
        status: t.3,
        doc: serde_json::from_str(&t.4).map_err(|e| ApiError::internal(e.to_string()))?,
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
        Some(row) if row.status == "ACTIVE" => Ok(row),
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
            row.status,
            Value::Object(row.doc.clone()).to_string()
        ])?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeTaskDefinitionRequest {
    task_definition: String,
    #[serde(default)]
    include: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTaskDefinitionsRequest {
    family_prefix: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTaskDefinitionFamiliesRequest {
    family_prefix: Option<String>,
    status: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeregisterTaskDefinitionRequest {
    task_definition: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteTaskDefinitionsRequest {
    task_definitions: Vec<String>,
}

fn not_found() -> ApiError {
    ApiError::client("Unable to describe task definition.")
}

impl Ecs {
    pub(super) fn register_task_definition(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let Value::Object(mut input) = input else {
            return Err(ApiError::serialization("Expected an object."));
        };
        let user_tags: Vec<tags::Tag> = match input.remove("tags") {
            Some(t) => serde_json::from_value(t)?,
            None => Vec::new(),
        };
        tags::check_user_tags(&user_tags)?;
        let mut doc = taskdef_rules::prepare(&input)?;
        let family = doc["family"].as_str().unwrap_or_default().to_string();
        self.store.write(|tx| {
            let last: i64 = tx
                .prepare_cached(
                    "SELECT coalesce(max(revision), 0) FROM task_definitions
                     WHERE account = ?1 AND region = ?2 AND family = ?3",
                )?
                .query_row(params![ctx.account, ctx.region, family], |r| r.get(0))?;
            let revision = last + 1;
            let arn = arn::task_definition(ctx, &family, revision);
            let mut head = Map::new();
            head.insert("taskDefinitionArn".into(), json!(arn));
            head.append(&mut doc);
            let mut doc = head;
            doc.insert("revision".into(), json!(revision));
            doc.insert("status".into(), json!("ACTIVE"));
            doc.insert("registeredAt".into(), json!(ctx.now_epoch()));
            doc.insert("registeredBy".into(), json!(ctx.principal_arn));
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
                Value::Object(doc.clone()).to_string()
            ])?;
            tags::put(tx, &arn, &user_tags)?;
            Ok(json!({"taskDefinition": doc, "tags": tags::load(tx, &arn)?}))
        })
    }

    pub(super) fn describe_task_definition(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: DescribeTaskDefinitionRequest = serde_json::from_value(input)?;
        let r = parse_ref(ctx, &req.task_definition).ok_or_else(not_found)?;
        self.store.read(|conn| {
            let row = find(conn, ctx, &r)?.ok_or_else(not_found)?;
            let mut out = json!({"taskDefinition": row.doc});
            if req.include.iter().any(|i| i == "TAGS") {
                out["tags"] = Value::Array(tags::load(conn, &row.arn)?);
            }
            Ok(out)
        })
    }

    pub(super) fn list_task_definitions(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: ListTaskDefinitionsRequest = serde_json::from_value(input)?;
        let size = paging::page_size(req.max_results, paging::MAX_RESULTS)?;
        let status = req.status.unwrap_or_else(|| "ACTIVE".into());
        let desc = req.sort.as_deref() == Some("DESC");
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
            status.into(),
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
            let mut out = json!({"taskDefinitionArns": page.into_iter().map(|(a, _, _)| a).collect::<Vec<_>>()});
            if let Some(t) = token {
                out["nextToken"] = json!(t);
            }
            Ok(out)
        })
    }

    pub(super) fn list_task_definition_families(
        &self,
        ctx: &Ctx,
        input: Value,
    ) -> ApiResult<Value> {
        let req: ListTaskDefinitionFamiliesRequest = serde_json::from_value(input)?;
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
        let having = match req.status.as_deref().unwrap_or("ALL") {
            "ACTIVE" => "HAVING sum(status = 'ACTIVE') > 0",
            "INACTIVE" => "HAVING sum(status = 'ACTIVE') = 0",
            _ => "",
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
            let mut out = json!({"families": page});
            if let Some(t) = token {
                out["nextToken"] = json!(t);
            }
            Ok(out)
        })
    }

    pub(super) fn deregister_task_definition(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: DeregisterTaskDefinitionRequest = serde_json::from_value(input)?;
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
            if row.status == "ACTIVE" {
                row.status = "INACTIVE".into();
                row.doc.insert("status".into(), json!("INACTIVE"));
                row.doc
                    .insert("deregisteredAt".into(), json!(ctx.now_epoch()));
                save(tx, &row)?;
            }
            Ok(json!({"taskDefinition": row.doc}))
        })
    }

    pub(super) fn delete_task_definitions(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: DeleteTaskDefinitionsRequest = serde_json::from_value(input)?;
        if req.task_definitions.is_empty() || req.task_definitions.len() > 10 {
            return Err(ApiError::invalid_parameter(
                "taskDefinitions must name between 1 and 10 task definitions.",
            ));
        }
        self.store.write(|tx| {
            let mut done = Vec::new();
            let mut failures = Vec::new();
            for ident in &req.task_definitions {
                let fail = |reason: &str| json!({"arn": ident, "reason": reason});
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
                match row.status.as_str() {
                    "ACTIVE" => failures.push(json!({
                        "arn": row.arn,
                        "reason": "The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
                    })),
                    "INACTIVE" => {
                        row.status = "DELETE_IN_PROGRESS".into();
                        row.doc.insert("status".into(), json!("DELETE_IN_PROGRESS"));
                        row.doc.insert("deleteRequestedAt".into(), json!(ctx.now_epoch()));
                        save(tx, &row)?;
                        done.push(Value::Object(row.doc));
                    }
                    _ => done.push(Value::Object(row.doc)),
                }
            }
            Ok(json!({"taskDefinitions": done, "failures": failures}))
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
