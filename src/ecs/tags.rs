//! Resource tags: `TagResource`, `UntagResource`, `ListTagsForResource`, and
//! the tag storage that clusters and task definitions share.

use rusqlite::{params, Connection};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{arn, clusters, shapes, taskdefs, Ecs};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

/// ECS allows at most 50 user tags on a resource.
pub const MAX_TAGS: usize = 50;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// Check tags a caller wants to set: ECS reserves the `aws:` prefix.
pub fn check_user_tags(tags: &[Tag]) -> ApiResult<()> {
    for t in tags {
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ApiError::invalid_parameter(
                "Tag keys must not begin with the reserved prefix 'aws:'.",
            ));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many());
    }
    Ok(())
}

fn too_many() -> ApiError {
    ApiError::invalid_parameter(format!("A resource can have at most {MAX_TAGS} tags."))
}

pub fn load(conn: &Connection, resource_arn: &str) -> ApiResult<Vec<shapes::Tag>> {
    let mut stmt =
        conn.prepare_cached("SELECT key, value FROM tags WHERE resource_arn = ?1 ORDER BY rowid")?;
    let rows = stmt.query_map([resource_arn], |r| {
        Ok(shapes::Tag {
            key: Some(r.get(0)?),
            value: Some(r.get(1)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A resource's tags as JSON, for answers not yet typed.
pub fn load_json(conn: &Connection, resource_arn: &str) -> ApiResult<Value> {
    Ok(serde_json::to_value(load(conn, resource_arn)?).expect("tags serialise"))
}

/// Tags as a request gives them.
pub fn from_shapes(tags: &[shapes::Tag]) -> Vec<Tag> {
    tags.iter()
        .map(|t| Tag {
            key: t.key.clone().unwrap_or_default(),
            value: t.value.clone().unwrap_or_default(),
        })
        .collect()
}

/// Add or overwrite tags; fails (in the caller's transaction) when the
/// resource would end with more than 50.
pub fn put(conn: &Connection, resource_arn: &str, tags: &[Tag]) -> ApiResult<()> {
    check_user_tags(tags)?;
    if tags.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "INSERT INTO tags (resource_arn, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (resource_arn, key) DO UPDATE SET value = excluded.value",
    )?;
    for t in tags {
        stmt.execute(params![resource_arn, t.key, t.value])?;
    }
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM tags WHERE resource_arn = ?1")?
        .query_row([resource_arn], |r| r.get(0))?;
    if n as usize > MAX_TAGS {
        return Err(too_many());
    }
    Ok(())
}

pub fn remove(conn: &Connection, resource_arn: &str, keys: &[String]) -> ApiResult<()> {
    let mut stmt = conn.prepare_cached("DELETE FROM tags WHERE resource_arn = ?1 AND key = ?2")?;
    for k in keys {
        stmt.execute(params![resource_arn, k])?;
    }
    Ok(())
}

/// Resolve a resource ARN to a taggable resource that exists, or fail as ECS
/// does.
fn check_resource(conn: &Connection, ctx: &Ctx, resource_arn: &str) -> ApiResult<()> {
    let parsed = arn::parse(resource_arn)
        .ok_or_else(|| ApiError::invalid_parameter("The ARN provided is invalid."))?;
    let found = arn::is_local(ctx, &parsed)
        && match parsed.kind {
            "cluster" => clusters::find(conn, ctx, resource_arn)?.is_some(),
            "task-definition" => taskdefs::exists(conn, resource_arn)?,
            _ => {
                return Err(ApiError::invalid_parameter(format!(
                    "Tagging is not supported for resources of type '{}'.",
                    parsed.kind
                )))
            }
        };
    if !found {
        return Err(ApiError::new(
            "ResourceNotFoundException",
            "The specified resource is not found.",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagResourceRequest {
    resource_arn: String,
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UntagResourceRequest {
    resource_arn: String,
    tag_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTagsForResourceRequest {
    resource_arn: String,
}

impl Ecs {
    pub(super) fn tag_resource(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: TagResourceRequest = serde_json::from_value(input)?;
        self.store.write(|tx| {
            check_resource(tx, ctx, &req.resource_arn)?;
            put(tx, &req.resource_arn, &req.tags)?;
            Ok(json!({}))
        })
    }

    pub(super) fn untag_resource(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: UntagResourceRequest = serde_json::from_value(input)?;
        self.store.write(|tx| {
            check_resource(tx, ctx, &req.resource_arn)?;
            remove(tx, &req.resource_arn, &req.tag_keys)?;
            Ok(json!({}))
        })
    }

    pub(super) fn list_tags_for_resource(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: ListTagsForResourceRequest = serde_json::from_value(input)?;
        self.store.read(|conn| {
            check_resource(conn, ctx, &req.resource_arn)?;
            Ok(json!({"tags": load(conn, &req.resource_arn)?}))
        })
    }
}
