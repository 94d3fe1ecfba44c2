//! Log groups: `CreateLogGroup`, `DeleteLogGroup`, `DescribeLogGroups`,
//! `PutRetentionPolicy`, `DeleteRetentionPolicy`,
//! `PutLogGroupDeletionProtection`.
//!
//! A group is scoped by (account, region, name). Deleting it deletes its
//! streams and their events.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{group_not_found, tokens, Logs};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

/// The retention periods CloudWatch Logs accepts, in days.
pub const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

#[derive(Debug, Clone)]
pub struct GroupRow {
    pub id: i64,
    pub account: String,
    pub region: String,
    pub name: String,
    pub created_at: i64,
    pub retention_days: Option<i64>,
    pub kms_key_id: Option<String>,
    pub class: String,
    pub deletion_protection: bool,
    pub stored_bytes: i64,
}

impl GroupRow {
    /// The ARN with the trailing `:*` (`arn` in `LogGroup`).
    pub fn arn(&self) -> String {
        format!("{}:*", self.group_arn())
    }

    /// The ARN without `:*` (`logGroupArn`).
    pub fn group_arn(&self) -> String {
        group_arn(&self.account, &self.region, &self.name)
    }
}

pub fn group_arn(account: &str, region: &str, name: &str) -> String {
    format!("arn:aws:logs:{region}:{account}:log-group:{name}")
}

/// What `CreateLogGroup` may set besides the name.
#[derive(Debug, Default)]
pub struct NewGroup {
    pub kms_key_id: Option<String>,
    pub class: Option<String>,
    pub deletion_protection: bool,
    pub tags: Map<String, Value>,
}

/// The model's rule for log group names (1–512 of `[.\-_/#A-Za-z0-9]`), for
/// names that come through the Rust API rather than a validated request.
pub fn check_group_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/#".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(format!(
            "Invalid log group name '{name}': use 1 to 512 letters, digits and . _ - / #."
        )))
    }
}

const COLUMNS: &str = "id, account, region, name, created_at, retention_days, kms_key_id, class, deletion_protection, stored_bytes";

fn row(r: &rusqlite::Row) -> rusqlite::Result<GroupRow> {
    Ok(GroupRow {
        id: r.get(0)?,
        account: r.get(1)?,
        region: r.get(2)?,
        name: r.get(3)?,
        created_at: r.get(4)?,
        retention_days: r.get(5)?,
        kms_key_id: r.get(6)?,
        class: r.get(7)?,
        deletion_protection: r.get(8)?,
        stored_bytes: r.get(9)?,
    })
}

pub fn find(
    conn: &Connection,
    account: &str,
    region: &str,
    name: &str,
) -> ApiResult<Option<GroupRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM log_groups WHERE account = ?1 AND region = ?2 AND name = ?3"
    ))?;
    Ok(stmt
        .query_row(params![account, region, name], row)
        .optional()?)
}

/// The group, or `ResourceNotFoundException`.
pub fn require(conn: &Connection, account: &str, region: &str, name: &str) -> ApiResult<GroupRow> {
    find(conn, account, region, name)?.ok_or_else(group_not_found)
}

pub fn insert(
    conn: &Connection,
    account: &str,
    region: &str,
    name: &str,
    now: i64,
    new: &NewGroup,
) -> ApiResult<()> {
    conn.prepare_cached(
        "INSERT INTO log_groups (account, region, name, created_at, kms_key_id, class, deletion_protection, tags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        account,
        region,
        name,
        now,
        new.kms_key_id,
        new.class.as_deref().unwrap_or("STANDARD"),
        new.deletion_protection,
        Value::Object(new.tags.clone()).to_string(),
    ])?;
    Ok(())
}

/// The name a `logGroupIdentifier` (a name, or an ARN with or without `:*`)
/// stands for. An ARN of another account or region names no group here.
pub fn identifier_name(ctx: &Ctx, ident: &str) -> ApiResult<String> {
    if !ident.starts_with("arn:") {
        return Ok(ident.to_string());
    }
    let mut parts = ident.splitn(6, ':');
    let (_, partition, service, region, account, resource) = (
        parts.next(),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let name = resource
        .strip_prefix("log-group:")
        .map(|n| n.strip_suffix(":*").unwrap_or(n))
        .filter(|n| !n.is_empty() && !n.contains(':'));
    let Some(name) = name.filter(|_| partition.starts_with("aws") && service == "logs") else {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid log group identifier '{ident}': use a log group name or ARN."
        )));
    };
    if account != ctx.account || region != ctx.region {
        return Err(group_not_found());
    }
    Ok(name.to_string())
}

/// The `LogGroup` shape.
fn render(g: &GroupRow, metric_filters: bool) -> Value {
    let mut out = json!({
        "logGroupName": g.name,
        "creationTime": g.created_at,
    });
    let o = out.as_object_mut().expect("object");
    if let Some(days) = g.retention_days {
        o.insert("retentionInDays".into(), json!(days));
    }
    if metric_filters {
        o.insert("metricFilterCount".into(), json!(0));
    }
    o.insert("arn".into(), json!(g.arn()));
    o.insert("storedBytes".into(), json!(g.stored_bytes));
    if let Some(k) = &g.kms_key_id {
        o.insert("kmsKeyId".into(), json!(k));
    }
    o.insert("logGroupClass".into(), json!(g.class));
    o.insert("logGroupArn".into(), json!(g.group_arn()));
    o.insert(
        "deletionProtectionEnabled".into(),
        json!(g.deletion_protection),
    );
    out
}

fn check_deletable(g: &GroupRow) -> ApiResult<()> {
    if g.deletion_protection {
        return Err(ApiError::new(
            "ValidationException",
            "Cannot delete log group with deletion protection enabled. Disable deletion protection first.",
        ));
    }
    Ok(())
}

/// Delete a group's events and streams, then the group.
fn delete_all(conn: &Connection, g: &GroupRow) -> ApiResult<()> {
    conn.prepare_cached("DELETE FROM log_events WHERE group_id = ?1")?
        .execute([g.id])?;
    conn.prepare_cached("DELETE FROM log_streams WHERE group_id = ?1")?
        .execute([g.id])?;
    conn.prepare_cached("DELETE FROM log_groups WHERE id = ?1")?
        .execute([g.id])?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateLogGroupRequest {
    log_group_name: String,
    kms_key_id: Option<String>,
    log_group_class: Option<String>,
    deletion_protection_enabled: Option<bool>,
    #[serde(default)]
    tags: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogGroupNameRequest {
    log_group_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeLogGroupsRequest {
    log_group_name_prefix: Option<String>,
    log_group_name_pattern: Option<String>,
    log_group_identifiers: Option<Vec<String>>,
    log_group_class: Option<String>,
    limit: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutRetentionPolicyRequest {
    log_group_name: String,
    retention_in_days: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutLogGroupDeletionProtectionRequest {
    log_group_identifier: String,
    deletion_protection_enabled: bool,
}

impl Logs {
    pub(super) fn create_log_group(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: CreateLogGroupRequest = serde_json::from_value(input)?;
        check_group_name(&req.log_group_name)?;
        if req.log_group_name.starts_with("aws/") {
            return Err(ApiError::invalid_parameter(
                "Log group names can't start with 'aws/'.",
            ));
        }
        let new = NewGroup {
            kms_key_id: req.kms_key_id,
            class: req.log_group_class,
            deletion_protection: req.deletion_protection_enabled.unwrap_or(false),
            tags: req.tags,
        };
        self.store.write(|tx| {
            if find(tx, &ctx.account, &ctx.region, &req.log_group_name)?.is_some() {
                return Err(ApiError::new(
                    "ResourceAlreadyExistsException",
                    "The specified log group already exists",
                ));
            }
            insert(
                tx,
                &ctx.account,
                &ctx.region,
                &req.log_group_name,
                ctx.now_millis(),
                &new,
            )?;
            Ok(json!({}))
        })
    }

    pub(super) fn delete_log_group(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: LogGroupNameRequest = serde_json::from_value(input)?;
        self.store.write(|tx| {
            let g = require(tx, &ctx.account, &ctx.region, &req.log_group_name)?;
            check_deletable(&g)?;
            delete_all(tx, &g)?;
            Ok(json!({}))
        })
    }

    pub(super) fn describe_log_groups(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: DescribeLogGroupsRequest = serde_json::from_value(input)?;
        if req.log_group_name_prefix.is_some() && req.log_group_name_pattern.is_some() {
            return Err(ApiError::invalid_parameter(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
            ));
        }
        if req.log_group_identifiers.is_some()
            && (req.log_group_name_prefix.is_some() || req.log_group_name_pattern.is_some())
        {
            return Err(ApiError::invalid_parameter(
                "logGroupIdentifiers cannot be combined with logGroupNamePrefix or logGroupNamePattern.",
            ));
        }
        let size = req.limit.unwrap_or(50).clamp(1, 50) as usize;
        let after = match &req.next_token {
            Some(t) => tokens::decode(t)?
                .as_str()
                .map(str::to_string)
                .ok_or_else(super::invalid_next_token)?,
            None => String::new(),
        };
        let wanted: Option<std::collections::HashSet<String>> =
            req.log_group_identifiers.as_ref().map(|ids| {
                ids.iter()
                    .filter_map(|i| identifier_name(ctx, i).ok())
                    .collect()
            });
        let prefix = req.log_group_name_prefix.as_deref().unwrap_or("");
        // Seek to the later of the prefix and the token's name.
        let (from, inclusive) = if after.as_str() >= prefix {
            (after.as_str(), after.is_empty())
        } else {
            (prefix, true)
        };
        let only_basic = req
            .log_group_name_pattern
            .as_deref()
            .is_some_and(|p| !p.is_empty());
        self.store.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM log_groups
                 WHERE account = ?1 AND region = ?2 AND (name > ?3 OR (?4 AND name = ?3))
                 ORDER BY name"
            ))?;
            let mut rows = stmt.query(params![ctx.account, ctx.region, from, inclusive])?;
            let mut page = Vec::new();
            let mut more = false;
            while let Some(r) = rows.next()? {
                let g = row(r)?;
                if !g.name.starts_with(prefix) {
                    break;
                }
                let keep = req
                    .log_group_name_pattern
                    .as_deref()
                    .is_none_or(|p| g.name.contains(p))
                    && req.log_group_class.as_deref().is_none_or(|c| g.class == c)
                    && wanted.as_ref().is_none_or(|w| w.contains(&g.name));
                if !keep {
                    continue;
                }
                if page.len() == size {
                    more = true;
                    break;
                }
                page.push(g);
            }
            let groups: Vec<Value> = page
                .iter()
                .map(|g| {
                    if only_basic {
                        json!({"logGroupName": g.name, "creationTime": g.created_at, "arn": g.arn()})
                    } else {
                        render(g, true)
                    }
                })
                .collect();
            let mut out = json!({ "logGroups": groups });
            if more {
                if let Some(last) = page.last() {
                    out["nextToken"] = json!(tokens::encode(&json!(last.name)));
                }
            }
            Ok(out)
        })
    }

    pub(super) fn put_retention_policy(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: PutRetentionPolicyRequest = serde_json::from_value(input)?;
        if !RETENTION_DAYS.contains(&req.retention_in_days) {
            let allowed: Vec<String> = RETENTION_DAYS.iter().map(i64::to_string).collect();
            return Err(ApiError::invalid_parameter(format!(
                "1 validation error detected: Value '{}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                req.retention_in_days,
                allowed.join(", ")
            )));
        }
        self.set_retention(ctx, &req.log_group_name, Some(req.retention_in_days))
    }

    pub(super) fn delete_retention_policy(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: LogGroupNameRequest = serde_json::from_value(input)?;
        self.set_retention(ctx, &req.log_group_name, None)
    }

    fn set_retention(&self, ctx: &Ctx, name: &str, days: Option<i64>) -> ApiResult<Value> {
        self.store.write(|tx| {
            let g = require(tx, &ctx.account, &ctx.region, name)?;
            tx.prepare_cached("UPDATE log_groups SET retention_days = ?2 WHERE id = ?1")?
                .execute(params![g.id, days])?;
            let g = GroupRow {
                retention_days: days,
                ..g
            };
            super::events::purge_expired(tx, &g, ctx.now_millis())?;
            Ok(json!({}))
        })
    }

    pub(super) fn put_log_group_deletion_protection(
        &self,
        ctx: &Ctx,
        input: Value,
    ) -> ApiResult<Value> {
        let req: PutLogGroupDeletionProtectionRequest = serde_json::from_value(input)?;
        let name = identifier_name(ctx, &req.log_group_identifier)?;
        self.store.write(|tx| {
            let g = require(tx, &ctx.account, &ctx.region, &name)?;
            tx.prepare_cached("UPDATE log_groups SET deletion_protection = ?2 WHERE id = ?1")?
                .execute(params![g.id, req.deletion_protection_enabled])?;
            Ok(json!({}))
        })
    }
}

/// Deletion protection also guards the group's streams.
pub(super) fn check_stream_deletable(g: &GroupRow) -> ApiResult<()> {
    if g.deletion_protection {
        return Err(ApiError::new(
            "ValidationException",
            "Cannot delete log stream of a log group with deletion protection enabled. Disable deletion protection first.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn identifiers() {
        let ctx = Ctx::for_tests(Utc::now());
        assert_eq!(identifier_name(&ctx, "/a/b").unwrap(), "/a/b");
        let arn = group_arn(&ctx.account, &ctx.region, "/a/b");
        assert_eq!(identifier_name(&ctx, &arn).unwrap(), "/a/b");
        assert_eq!(identifier_name(&ctx, &format!("{arn}:*")).unwrap(), "/a/b");
        let other = group_arn("111111111111", &ctx.region, "/a/b");
        assert_eq!(
            identifier_name(&ctx, &other).unwrap_err().code,
            "ResourceNotFoundException"
        );
        assert_eq!(
            identifier_name(&ctx, "arn:aws:ecs:us-east-1:000000000000:cluster/x")
                .unwrap_err()
                .code,
            "InvalidParameterException"
        );
    }

    #[test]
    fn group_names() {
        assert!(check_group_name("/ecs/my-app_1.#x").is_ok());
        assert!(check_group_name("").is_err());
        assert!(check_group_name("a b").is_err());
        assert!(check_group_name(&"a".repeat(513)).is_err());
    }
}
