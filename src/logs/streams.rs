//! Log streams: `CreateLogStream`, `DeleteLogStream`, `DescribeLogStreams`.
//!
//! A stream row keeps the times `DescribeLogStreams` reports (first and last
//! event timestamp, last ingestion time), its upload counter (the
//! `uploadSequenceToken`, which PutLogEvents no longer checks) and the bytes
//! it stores (counted in its group's `storedBytes`; a stream itself reports
//! 0, as CloudWatch Logs has done since 2019).

use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};

use super::groups::{self, GroupRow};
use super::{group_name_of, stream_not_found, tokens, Logs};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone)]
pub struct StreamRow {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub first_event: Option<i64>,
    pub last_event: Option<i64>,
    pub last_ingestion: Option<i64>,
    pub upload_seq: i64,
    pub stored_bytes: i64,
}

/// The model's rule for stream names (1–512 characters, no `:` or `*`), for
/// names that come through the Rust API rather than a validated request.
pub fn check_stream_name(name: &str) -> ApiResult<()> {
    if name.is_empty() || name.chars().count() > 512 || name.contains([':', '*']) {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid log stream name '{name}': use 1 to 512 characters other than ':' and '*'."
        )));
    }
    Ok(())
}

const COLUMNS: &str =
    "id, name, created_at, first_event, last_event, last_ingestion, upload_seq, stored_bytes";

fn row(r: &rusqlite::Row) -> rusqlite::Result<StreamRow> {
    Ok(StreamRow {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
        first_event: r.get(3)?,
        last_event: r.get(4)?,
        last_ingestion: r.get(5)?,
        upload_seq: r.get(6)?,
        stored_bytes: r.get(7)?,
    })
}

pub fn find(conn: &Connection, group_id: i64, name: &str) -> ApiResult<Option<StreamRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM log_streams WHERE group_id = ?1 AND name = ?2"
    ))?;
    Ok(stmt.query_row(params![group_id, name], row).optional()?)
}

/// The stream, or `ResourceNotFoundException`.
pub fn require(conn: &Connection, group_id: i64, name: &str) -> ApiResult<StreamRow> {
    find(conn, group_id, name)?.ok_or_else(stream_not_found)
}

pub fn insert(conn: &Connection, group_id: i64, name: &str, now: i64) -> ApiResult<()> {
    conn.prepare_cached(
        "INSERT INTO log_streams (group_id, name, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![group_id, name, now])?;
    Ok(())
}

/// Every stream of a group: id → name.
pub fn names(conn: &Connection, group_id: i64) -> ApiResult<Vec<(i64, String)>> {
    let mut stmt =
        conn.prepare_cached("SELECT id, name FROM log_streams WHERE group_id = ?1 ORDER BY name")?;
    let rows = stmt
        .query_map([group_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The `LogStream` shape.
fn render(g: &GroupRow, s: &StreamRow) -> Value {
    let mut out = json!({
        "logStreamName": s.name,
        "creationTime": s.created_at,
    });
    let o = out.as_object_mut().expect("object");
    if let Some(t) = s.first_event {
        o.insert("firstEventTimestamp".into(), json!(t));
    }
    if let Some(t) = s.last_event {
        o.insert("lastEventTimestamp".into(), json!(t));
    }
    if let Some(t) = s.last_ingestion {
        o.insert("lastIngestionTime".into(), json!(t));
    }
    o.insert(
        "uploadSequenceToken".into(),
        json!(tokens::sequence_token(s.upload_seq)),
    );
    o.insert(
        "arn".into(),
        json!(format!("{}:log-stream:{}", g.group_arn(), s.name)),
    );
    o.insert("storedBytes".into(), json!(0));
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StreamRequest {
    log_group_name: String,
    log_stream_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeLogStreamsRequest {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    descending: Option<bool>,
    limit: Option<i64>,
    next_token: Option<String>,
}

impl Logs {
    pub(super) fn create_log_stream(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: StreamRequest = serde_json::from_value(input)?;
        check_stream_name(&req.log_stream_name)?;
        self.store.write(|tx| {
            let g = groups::require(tx, &ctx.account, &ctx.region, &req.log_group_name)?;
            if find(tx, g.id, &req.log_stream_name)?.is_some() {
                return Err(ApiError::new(
                    "ResourceAlreadyExistsException",
                    "The specified log stream already exists",
                ));
            }
            insert(tx, g.id, &req.log_stream_name, ctx.now_millis())?;
            Ok(json!({}))
        })
    }

    pub(super) fn delete_log_stream(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: StreamRequest = serde_json::from_value(input)?;
        self.store.write(|tx| {
            let g = groups::require(tx, &ctx.account, &ctx.region, &req.log_group_name)?;
            let s = require(tx, g.id, &req.log_stream_name)?;
            groups::check_stream_deletable(&g)?;
            tx.prepare_cached("DELETE FROM log_events WHERE group_id = ?1 AND stream_id = ?2")?
                .execute(params![g.id, s.id])?;
            tx.prepare_cached("DELETE FROM log_streams WHERE id = ?1")?
                .execute([s.id])?;
            tx.prepare_cached(
                "UPDATE log_groups SET stored_bytes = max(0, stored_bytes - ?2) WHERE id = ?1",
            )?
            .execute(params![g.id, s.stored_bytes])?;
            Ok(json!({}))
        })
    }

    pub(super) fn describe_log_streams(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: DescribeLogStreamsRequest = serde_json::from_value(input)?;
        let group = group_name_of(ctx, req.log_group_name, req.log_group_identifier)?;
        let by_time = req.order_by.as_deref() == Some("LastEventTime");
        if by_time && req.log_stream_name_prefix.is_some() {
            return Err(ApiError::invalid_parameter(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        let descending = req.descending.unwrap_or(false);
        let size = req.limit.unwrap_or(50).clamp(1, 50) as usize;
        // The sort key: (last event time or -1 when ordered by time, name).
        let after: Option<(i64, String)> = match &req.next_token {
            None => None,
            Some(t) => {
                let v = tokens::decode(t)?;
                match v.as_array().map(Vec::as_slice) {
                    Some([k, n]) => match (k.as_i64(), n.as_str()) {
                        (Some(k), Some(n)) => Some((k, n.to_string())),
                        _ => return Err(super::invalid_next_token()),
                    },
                    _ => return Err(super::invalid_next_token()),
                }
            }
        };
        let (cmp, dir) = if descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let sql = if by_time {
            format!(
                "SELECT {COLUMNS}, ifnull(last_event, -1) AS k FROM log_streams
                 WHERE group_id = ?1
                   AND (?2 IS NULL OR substr(name, 1, length(?2)) = ?2)
                   AND (?3 IS NULL OR (ifnull(last_event, -1), name) {cmp} (?3, ?4))
                 ORDER BY k {dir}, name {dir}
                 LIMIT ?5"
            )
        } else {
            format!(
                "SELECT {COLUMNS}, 0 FROM log_streams
                 WHERE group_id = ?1
                   AND (?2 IS NULL OR substr(name, 1, length(?2)) = ?2)
                   AND (?3 IS NULL OR name {cmp} ?4)
                 ORDER BY name {dir}
                 LIMIT ?5"
            )
        };
        self.store.read(|conn| {
            let g = groups::require(conn, &ctx.account, &ctx.region, &group)?;
            let mut stmt = conn.prepare_cached(&sql)?;
            let (after_key, after_name) = match &after {
                Some((k, n)) => (Some(*k), Some(n.as_str())),
                None => (None, None),
            };
            let mut rows: Vec<(StreamRow, i64)> = stmt
                .query_map(
                    params![
                        g.id,
                        req.log_stream_name_prefix,
                        after_key,
                        after_name,
                        size as i64 + 1
                    ],
                    |r| Ok((row(r)?, r.get(8)?)),
                )?
                .collect::<Result<_, _>>()?;
            let more = rows.len() > size;
            rows.truncate(size);
            let streams: Vec<Value> = rows.iter().map(|(s, _)| render(&g, s)).collect();
            let mut out = json!({ "logStreams": streams });
            if more {
                if let Some((s, k)) = rows.last() {
                    out["nextToken"] = json!(tokens::encode(&json!([k, s.name])));
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names() {
        assert!(check_stream_name("ecs/web/0123abcd").is_ok());
        assert!(check_stream_name("").is_err());
        assert!(check_stream_name("a:b").is_err());
        assert!(check_stream_name("a*").is_err());
    }
}
