//! Tags on load balancers, target groups, listeners and rules: `AddTags`,
//! `RemoveTags`, `DescribeTags` (table `elb_tags`).

use rusqlite::{params, Connection};

use super::shapes::{
    AddTagsInput, AddTagsOutput, DescribeTagsInput, DescribeTagsOutput, RemoveTagsInput,
    RemoveTagsOutput, Tag, TagDescription,
};
use super::{error, validation, Elb};
use crate::context::Ctx;
use crate::error::ApiResult;

/// ELB's limit of tags on one resource.
const MAX_TAGS: usize = 50;

/// Tags as a request gives them: keys 1 to 128 characters, not `aws:`,
/// values up to 256, no key twice.
pub fn check(tags: &[Tag]) -> ApiResult<()> {
    let mut seen = std::collections::BTreeSet::new();
    for t in tags {
        if t.key.is_empty() || t.key.len() > 128 {
            return Err(validation("Tag keys must be between 1 and 128 characters"));
        }
        if t.key.starts_with("aws:") {
            return Err(validation("Tag keys starting with 'aws:' are reserved"));
        }
        if t.value.as_deref().unwrap_or("").len() > 256 {
            return Err(validation("Tag values must be at most 256 characters"));
        }
        if !seen.insert(&t.key) {
            return Err(error(
                "DuplicateTagKeys",
                format!("Tag key '{}' is duplicated", t.key),
            ));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(error(
            "TooManyTags",
            "The quota for the number of tags that can be assigned to a resource has been reached",
        ));
    }
    Ok(())
}

/// Replace the tags of `arn` (none: forget them).
pub fn set(conn: &Connection, arn: &str, tags: &[Tag]) -> ApiResult<()> {
    conn.prepare_cached("DELETE FROM elb_tags WHERE arn = ?1")?
        .execute([arn])?;
    add_to(conn, arn, tags)
}

fn add_to(conn: &Connection, arn: &str, tags: &[Tag]) -> ApiResult<()> {
    let mut ins = conn.prepare_cached(
        "INSERT INTO elb_tags (arn, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value",
    )?;
    for t in tags {
        ins.execute(params![arn, t.key, t.value.as_deref().unwrap_or("")])?;
    }
    Ok(())
}

/// The tags of `arn`, by key.
pub fn of(conn: &Connection, arn: &str) -> ApiResult<Vec<Tag>> {
    Ok(conn
        .prepare_cached("SELECT key, value FROM elb_tags WHERE arn = ?1 ORDER BY key")?
        .query_map([arn], |r| {
            Ok(Tag {
                key: r.get(0)?,
                value: Some(r.get(1)?),
            })
        })?
        .collect::<Result<_, _>>()?)
}

/// The resource `arn` exists in the caller's account and region, or the
/// not-found error of its kind.
fn require_resource(conn: &Connection, ctx: &Ctx, arn: &str) -> ApiResult<()> {
    let kind = arn
        .split(':')
        .nth(5)
        .and_then(|r| r.split('/').next())
        .unwrap_or("");
    let found = match kind {
        "loadbalancer" => super::load_balancers::require(conn, ctx, arn).map(|_| ()),
        "targetgroup" => super::target_groups::require(conn, ctx, arn).map(|_| ()),
        "listener" => super::listeners::require(conn, ctx, arn).map(|_| ()),
        "listener-rule" => super::listeners::require_rule(conn, ctx, arn).map(|_| ()),
        _ => Err(validation(format!("'{arn}' is not a valid resource ARN"))),
    };
    found
}

fn check_arns(arns: &[String]) -> ApiResult<()> {
    if arns.len() > 20 {
        return Err(validation("At most 20 resource ARNs can be given"));
    }
    Ok(())
}

pub fn add(e: &Elb, ctx: &Ctx, req: AddTagsInput) -> ApiResult<AddTagsOutput> {
    check_arns(&req.resource_arns)?;
    check(&req.tags)?;
    e.store.write(|tx| {
        for arn in &req.resource_arns {
            require_resource(tx, ctx, arn)?;
            let mut keys: std::collections::BTreeSet<String> =
                of(tx, arn)?.into_iter().map(|t| t.key).collect();
            keys.extend(req.tags.iter().map(|t| t.key.clone()));
            if keys.len() > MAX_TAGS {
                return Err(error(
                    "TooManyTags",
                    "The quota for the number of tags that can be assigned to a resource has been reached",
                ));
            }
            add_to(tx, arn, &req.tags)?;
        }
        Ok(AddTagsOutput {})
    })
}

pub fn remove(e: &Elb, ctx: &Ctx, req: RemoveTagsInput) -> ApiResult<RemoveTagsOutput> {
    check_arns(&req.resource_arns)?;
    e.store.write(|tx| {
        for arn in &req.resource_arns {
            require_resource(tx, ctx, arn)?;
            let mut del = tx.prepare_cached("DELETE FROM elb_tags WHERE arn = ?1 AND key = ?2")?;
            for k in &req.tag_keys {
                del.execute([arn, k])?;
            }
        }
        Ok(RemoveTagsOutput {})
    })
}

pub fn describe(e: &Elb, ctx: &Ctx, req: DescribeTagsInput) -> ApiResult<DescribeTagsOutput> {
    check_arns(&req.resource_arns)?;
    e.store.read(|conn| {
        let mut out = Vec::new();
        for arn in &req.resource_arns {
            require_resource(conn, ctx, arn)?;
            out.push(TagDescription {
                resource_arn: Some(arn.clone()),
                tags: Some(of(conn, arn)?),
            });
        }
        Ok(DescribeTagsOutput {
            tag_descriptions: Some(out),
        })
    })
}
