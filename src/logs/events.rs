//! Log events: `PutLogEvents`, `GetLogEvents`, `FilterLogEvents`, and the
//! insert the Rust API's `append` shares with `PutLogEvents`.
//!
//! An event is one row of `log_events`; its position is (timestamp, id),
//! `id` being the rowid, so events of equal timestamp keep their order of
//! arrival. A page holds at most `limit` events (default 10,000) and about
//! 1 MB of messages, as CloudWatch Logs pages do.

use rusqlite::{params, Connection};
use serde::Deserialize;
use serde_json::{json, Value};

use super::groups::{self, GroupRow};
use super::pattern::FilterPattern;
use super::streams::{self, StreamRow};
use super::tokens::{self, Direction, Position};
use super::{group_name_of, Logs};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

/// Bytes counted for each event on top of its message (PutLogEvents' rule).
pub const EVENT_OVERHEAD: usize = 26;
/// The largest PutLogEvents batch: messages in UTF-8 plus 26 bytes each.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// Events more than this far in the future are rejected (2 hours).
pub const MAX_FUTURE_MS: i64 = 2 * 3_600_000;
/// Events older than this are rejected (14 days).
pub const MAX_AGE_MS: i64 = 14 * 86_400_000;
/// The accepted events of one batch may span at most 24 hours.
pub const MAX_SPAN_MS: i64 = 86_400_000;
/// The most events a page returns.
pub const MAX_PAGE_EVENTS: i64 = 10_000;
/// About how many message bytes a page returns.
pub const MAX_PAGE_BYTES: usize = 1_048_576;
/// `append` splits longer messages, as Docker's awslogs driver does
/// (256 KiB less the per-event overhead).
pub const MAX_APPENDED_EVENT_BYTES: usize = 262_144 - EVENT_OVERHEAD;
/// How many events one `FilterLogEvents` call examines before it answers
/// with what it found and a `nextToken` to go on (pages may be empty).
const FILTER_SCAN_BUDGET: usize = 200_000;

/// Delete the group's events older than its retention period (nothing when
/// it has none), keeping the streams' first-event times and the stored bytes
/// right. Runs when a retention policy is set and before each write to the
/// group, so expired events go away without a background sweeper (CloudWatch
/// Logs also deletes them some time after they expire, not at once).
pub fn purge_expired(conn: &Connection, g: &GroupRow, now: i64) -> ApiResult<()> {
    let Some(days) = g.retention_days else {
        return Ok(());
    };
    let cutoff = now - days * 86_400_000;
    let per_stream: Vec<(i64, i64)> = conn
        .prepare_cached(
            "SELECT stream_id, sum(length(CAST(message AS BLOB))) FROM log_events
             WHERE group_id = ?1 AND timestamp < ?2 GROUP BY stream_id",
        )?
        .query_map(params![g.id, cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    if per_stream.is_empty() {
        return Ok(());
    }
    conn.prepare_cached("DELETE FROM log_events WHERE group_id = ?1 AND timestamp < ?2")?
        .execute(params![g.id, cutoff])?;
    let mut total = 0;
    for (stream_id, bytes) in per_stream {
        total += bytes;
        conn.prepare_cached(
            "UPDATE log_streams SET
                 stored_bytes = max(0, stored_bytes - ?3),
                 first_event = ifnull(
                     (SELECT min(timestamp) FROM log_events WHERE group_id = ?2 AND stream_id = ?1),
                     first_event)
             WHERE id = ?1",
        )?
        .execute(params![stream_id, g.id, bytes])?;
    }
    conn.prepare_cached(
        "UPDATE log_groups SET stored_bytes = max(0, stored_bytes - ?2) WHERE id = ?1",
    )?
    .execute(params![g.id, total])?;
    Ok(())
}

/// Store `events` (already in timestamp order) in the stream, and update the
/// stream's times, its upload counter and the group's stored bytes. Returns
/// the stream's new upload count.
pub fn insert(
    conn: &Connection,
    g: &GroupRow,
    s: &StreamRow,
    events: &[(i64, &str)],
    ingestion: i64,
) -> ApiResult<i64> {
    let mut bytes: i64 = 0;
    {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO log_events (group_id, stream_id, timestamp, ingestion, message)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (ts, msg) in events {
            stmt.execute(params![g.id, s.id, ts, ingestion, msg])?;
            bytes += msg.len() as i64;
        }
    }
    let first = events.iter().map(|e| e.0).min();
    let last = events.iter().map(|e| e.0).max();
    let seq: i64 = conn
        .prepare_cached(
            "UPDATE log_streams SET
                 first_event = CASE WHEN ?2 IS NULL THEN first_event ELSE min(ifnull(first_event, ?2), ?2) END,
                 last_event = CASE WHEN ?3 IS NULL THEN last_event ELSE max(ifnull(last_event, ?3), ?3) END,
                 last_ingestion = CASE WHEN ?2 IS NULL THEN last_ingestion ELSE ?4 END,
                 stored_bytes = stored_bytes + ?5,
                 upload_seq = upload_seq + 1
             WHERE id = ?1
             RETURNING upload_seq",
        )?
        .query_row(params![s.id, first, last, ingestion, bytes], |r| r.get(0))?;
    if bytes > 0 {
        conn.prepare_cached(
            "UPDATE log_groups SET stored_bytes = stored_bytes + ?2 WHERE id = ?1",
        )?
        .execute(params![g.id, bytes])?;
    }
    Ok(seq)
}

/// `append`'s normalisation: drop empty messages, split long ones on
/// character boundaries, and order by timestamp (stable), negative
/// timestamps counting as 0.
pub fn prepare_appended(events: &[(i64, String)]) -> Vec<(i64, String)> {
    let mut out = Vec::with_capacity(events.len());
    for (ts, msg) in events {
        let ts = (*ts).max(0);
        let mut rest = msg.as_str();
        while !rest.is_empty() {
            let mut cut = rest.len().min(MAX_APPENDED_EVENT_BYTES);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push((ts, rest[..cut].to_string()));
            rest = &rest[cut..];
        }
    }
    out.sort_by_key(|e| e.0);
    out
}

/// Which events of a chronological batch `PutLogEvents` rejects, as
/// `RejectedLogEventsInfo` counts them: a prefix too old (older than 14
/// days: `tooOldLogEventEndIndex`, exclusive), a prefix older than the
/// group's retention (`expiredLogEventEndIndex`, exclusive) and a suffix too
/// far in the future (`tooNewLogEventStartIndex`, inclusive). Returns the
/// range of accepted indexes and the info (`None` when nothing is rejected).
pub fn classify(
    timestamps: &[i64],
    now: i64,
    retention_days: Option<i64>,
) -> (std::ops::Range<usize>, Option<Value>) {
    let too_old = timestamps.partition_point(|&t| t < now - MAX_AGE_MS);
    let expired = retention_days
        .map(|d| timestamps.partition_point(|&t| t < now - d * 86_400_000))
        .unwrap_or(0);
    let too_new = timestamps.partition_point(|&t| t <= now + MAX_FUTURE_MS);
    let start = too_old.max(expired).min(too_new);
    let mut info = serde_json::Map::new();
    if too_new < timestamps.len() {
        info.insert("tooNewLogEventStartIndex".into(), json!(too_new));
    }
    if too_old > 0 {
        info.insert("tooOldLogEventEndIndex".into(), json!(too_old));
    }
    if expired > 0 {
        info.insert("expiredLogEventEndIndex".into(), json!(expired));
    }
    let info = (!info.is_empty()).then_some(Value::Object(info));
    (start..too_new, info)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InputLogEvent {
    timestamp: i64,
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutLogEventsRequest {
    log_group_name: String,
    log_stream_name: String,
    log_events: Vec<InputLogEvent>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetLogEventsRequest {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: String,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterLogEventsRequest {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

/// Where a forward scan starts: after `after`, and at `start` at the
/// earliest (inclusive: ids are ≥ 1, so `(start, 0)` precedes every event at
/// `start`). Bounding the index range by position, rather than filtering by
/// `timestamp >= start` beside a position, keeps SQLite from walking every
/// older event of the group or stream to find the first one.
fn scan_after(after: Position, start: i64) -> Position {
    after.max(Position {
        timestamp: start,
        id: 0,
    })
}

/// Where a backward scan starts: before `before`, and before `end` at the
/// latest (exclusive).
fn scan_before(before: Position, end: i64) -> Position {
    before.min(Position {
        timestamp: end,
        id: 0,
    })
}

struct EventRow {
    pos: Position,
    stream_id: i64,
    ingestion: i64,
    message: String,
}

fn event_row(r: &rusqlite::Row) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        pos: Position {
            timestamp: r.get(0)?,
            id: r.get(1)?,
        },
        ingestion: r.get(2)?,
        message: r.get(3)?,
        stream_id: r.get(4)?,
    })
}

impl Logs {
    pub(super) fn put_log_events(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: PutLogEventsRequest = serde_json::from_value(input)?;
        let size: usize = req
            .log_events
            .iter()
            .map(|e| e.message.len() + EVENT_OVERHEAD)
            .sum();
        if size > MAX_BATCH_BYTES {
            return Err(ApiError::invalid_parameter(format!(
                "Upload too large: {size} bytes exceeds limit of {MAX_BATCH_BYTES}"
            )));
        }
        if req
            .log_events
            .windows(2)
            .any(|w| w[1].timestamp < w[0].timestamp)
        {
            return Err(ApiError::invalid_parameter(
                "Log events in a single PutLogEvents request must be in chronological order.",
            ));
        }
        let now = ctx.now_millis();
        self.store.write(|tx| {
            let g = groups::require(tx, &ctx.account, &ctx.region, &req.log_group_name)?;
            let s = streams::require(tx, g.id, &req.log_stream_name)?;
            let timestamps: Vec<i64> = req.log_events.iter().map(|e| e.timestamp).collect();
            let (accepted, rejected) = classify(&timestamps, now, g.retention_days);
            let batch: Vec<(i64, &str)> = req.log_events[accepted]
                .iter()
                .map(|e| (e.timestamp, e.message.as_str()))
                .collect();
            if let (Some(first), Some(last)) = (batch.first(), batch.last()) {
                if last.0 - first.0 > MAX_SPAN_MS {
                    return Err(ApiError::invalid_parameter(
                        "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
                    ));
                }
            }
            purge_expired(tx, &g, now)?;
            let seq = insert(tx, &g, &s, &batch, now)?;
            let mut out = json!({"nextSequenceToken": tokens::sequence_token(seq)});
            if let Some(info) = rejected {
                out["rejectedLogEventsInfo"] = info;
            }
            Ok(out)
        })
    }

    pub(super) fn get_log_events(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: GetLogEventsRequest = serde_json::from_value(input)?;
        let group = group_name_of(ctx, req.log_group_name, req.log_group_identifier)?;
        let limit = req
            .limit
            .unwrap_or(MAX_PAGE_EVENTS)
            .clamp(1, MAX_PAGE_EVENTS);
        let passed = match &req.next_token {
            Some(t) => Some(tokens::parse_stream_token(t)?),
            None => None,
        };
        let (direction, from) = passed.unwrap_or(if req.start_from_head.unwrap_or(false) {
            (Direction::Forward, Position::START)
        } else {
            (Direction::Backward, Position::END)
        });
        // startTime is inclusive, endTime exclusive. The scan starts at the
        // nearer of the token's position and the time bound it runs towards,
        // and stops at the other bound.
        let start = req.start_time.unwrap_or(i64::MIN);
        let end = req.end_time.unwrap_or(i64::MAX);
        let (sql, scan_from, stop_at) = match direction {
            Direction::Forward => (
                "SELECT timestamp, id, ingestion, message, stream_id FROM log_events
                 WHERE group_id = ?1 AND stream_id = ?2 AND (timestamp, id) > (?3, ?4)
                   AND timestamp < ?5
                 ORDER BY timestamp, id LIMIT ?6",
                scan_after(from, start),
                end,
            ),
            Direction::Backward => (
                "SELECT timestamp, id, ingestion, message, stream_id FROM log_events
                 WHERE group_id = ?1 AND stream_id = ?2 AND (timestamp, id) < (?3, ?4)
                   AND timestamp >= ?5
                 ORDER BY timestamp DESC, id DESC LIMIT ?6",
                scan_before(from, end),
                start,
            ),
        };
        self.store.read(|conn| {
            let g = groups::require(conn, &ctx.account, &ctx.region, &group)?;
            let s = streams::require(conn, g.id, &req.log_stream_name)?;
            let mut stmt = conn.prepare_cached(sql)?;
            let mut rows = stmt.query(params![
                g.id,
                s.id,
                scan_from.timestamp,
                scan_from.id,
                stop_at,
                limit
            ])?;
            let mut page = Vec::new();
            let mut bytes = 0;
            while let Some(r) = rows.next()? {
                let e = event_row(r)?;
                bytes += e.message.len() + EVENT_OVERHEAD;
                if bytes > MAX_PAGE_BYTES && !page.is_empty() {
                    break;
                }
                page.push(e);
            }
            if direction == Direction::Backward {
                page.reverse();
            }
            let (forward, backward) = match (page.first(), page.last()) {
                (Some(first), Some(last)) => (
                    tokens::stream_token(Direction::Forward, last.pos),
                    tokens::stream_token(Direction::Backward, first.pos),
                ),
                _ => match (&req.next_token, passed) {
                    // The end in the direction asked: the same token back.
                    (Some(t), Some((Direction::Forward, p))) => {
                        (t.clone(), tokens::stream_token(Direction::Backward, p))
                    }
                    (Some(t), Some((Direction::Backward, p))) => {
                        (tokens::stream_token(Direction::Forward, p), t.clone())
                    }
                    _ => (
                        tokens::stream_token(Direction::Forward, Position::START),
                        tokens::stream_token(Direction::Backward, Position::START),
                    ),
                },
            };
            let events: Vec<Value> = page
                .iter()
                .map(|e| {
                    json!({
                        "timestamp": e.pos.timestamp,
                        "message": e.message,
                        "ingestionTime": e.ingestion,
                    })
                })
                .collect();
            Ok(json!({
                "events": events,
                "nextForwardToken": forward,
                "nextBackwardToken": backward,
            }))
        })
    }

    pub(super) fn filter_log_events(&self, ctx: &Ctx, input: Value) -> ApiResult<Value> {
        let req: FilterLogEventsRequest = serde_json::from_value(input)?;
        let group = group_name_of(ctx, req.log_group_name, req.log_group_identifier)?;
        if req.log_stream_names.is_some() && req.log_stream_name_prefix.is_some() {
            return Err(ApiError::invalid_parameter(
                "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.",
            ));
        }
        let pattern = FilterPattern::parse(req.filter_pattern.as_deref().unwrap_or(""))?;
        let limit = req
            .limit
            .unwrap_or(MAX_PAGE_EVENTS)
            .clamp(1, MAX_PAGE_EVENTS) as usize;
        let after = match &req.next_token {
            Some(t) => tokens::decode_position(t)?,
            None => Position::START,
        };
        // Both ends are inclusive. `aws logs tail --follow` asks every 5 s
        // from the newest timestamp it has printed, without a token: the scan
        // starts there, not at the group's oldest event.
        let start = req.start_time.unwrap_or(i64::MIN);
        let end = req.end_time.unwrap_or(i64::MAX);
        let after = scan_after(after, start);
        self.store.read(|conn| {
            let g = groups::require(conn, &ctx.account, &ctx.region, &group)?;
            let all_streams = streams::names(conn, g.id)?;
            let wanted: Option<std::collections::HashSet<&str>> = req
                .log_stream_names
                .as_ref()
                .map(|n| n.iter().map(String::as_str).collect());
            let stream_names: std::collections::HashMap<i64, &str> = all_streams
                .iter()
                .filter(|(_, n)| {
                    wanted.as_ref().is_none_or(|w| w.contains(n.as_str()))
                        && req
                            .log_stream_name_prefix
                            .as_deref()
                            .is_none_or(|p| n.starts_with(p))
                })
                .map(|(id, n)| (*id, n.as_str()))
                .collect();
            let filtered_streams = wanted.is_some() || req.log_stream_name_prefix.is_some();
            let mut page: Vec<EventRow> = Vec::new();
            let mut next: Option<Position> = None;
            if !(filtered_streams && stream_names.is_empty()) {
                let mut stmt = conn.prepare_cached(
                    "SELECT timestamp, id, ingestion, message, stream_id FROM log_events
                     WHERE group_id = ?1 AND (timestamp, id) > (?2, ?3) AND timestamp <= ?4
                     ORDER BY timestamp, id",
                )?;
                let mut rows = stmt.query(params![g.id, after.timestamp, after.id, end])?;
                let mut bytes = 0;
                let mut scanned = 0;
                while let Some(r) = rows.next()? {
                    let e = event_row(r)?;
                    scanned += 1;
                    if stream_names.contains_key(&e.stream_id) && pattern.matches(&e.message) {
                        let size = e.message.len() + EVENT_OVERHEAD;
                        if page.len() == limit
                            || (bytes + size > MAX_PAGE_BYTES && !page.is_empty())
                        {
                            // There is more: resume after the last one returned.
                            next = page.last().map(|l: &EventRow| l.pos);
                            break;
                        }
                        bytes += size;
                        page.push(e);
                    } else if scanned >= FILTER_SCAN_BUDGET {
                        // Looked long enough: answer, and go on from here
                        // next time if there is more to look at.
                        if rows.next()?.is_some() {
                            next = Some(e.pos);
                        }
                        break;
                    }
                }
            }
            let events: Vec<Value> = page
                .iter()
                .map(|e| {
                    json!({
                        "logStreamName": stream_names.get(&e.stream_id).copied().unwrap_or_default(),
                        "timestamp": e.pos.timestamp,
                        "message": e.message,
                        "ingestionTime": e.ingestion,
                        "eventId": tokens::event_id(e.pos),
                    })
                })
                .collect();
            // No longer supported by CloudWatch Logs, which answers an empty list.
            let mut out = json!({"events": events, "searchedLogStreams": []});
            if let Some(p) = next {
                out["nextToken"] = json!(tokens::encode_position(p));
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_prefixes_and_suffix() {
        let now = 100 * 86_400_000;
        let day = 86_400_000;
        let ts = [now - 20 * day, now - 2 * day, now, now + 3 * 3_600_000];
        let (ok, info) = classify(&ts, now, None);
        assert_eq!(ok, 1..3);
        assert_eq!(
            info.unwrap(),
            json!({"tooNewLogEventStartIndex": 3, "tooOldLogEventEndIndex": 1})
        );
        let (ok, info) = classify(&ts, now, Some(1));
        assert_eq!(ok, 2..3);
        assert_eq!(info.unwrap()["expiredLogEventEndIndex"], json!(2));
        let (ok, info) = classify(&[now, now], now, Some(1));
        assert_eq!((ok, info), (0..2, None));
        // Everything too old.
        let (ok, _) = classify(&[0, 1], now, None);
        assert!(ok.is_empty());
        // Everything too new.
        let (ok, info) = classify(&[now + day], now, None);
        assert!(ok.is_empty());
        assert_eq!(info.unwrap(), json!({"tooNewLogEventStartIndex": 0}));
    }

    #[test]
    fn appended_events_are_normalised() {
        let long = "é".repeat(MAX_APPENDED_EVENT_BYTES); // two bytes each
        let out = prepare_appended(&[
            (5, "b".into()),
            (-3, "a".into()),
            (5, String::new()),
            (5, "c".into()),
            (9, long.clone()),
        ]);
        assert_eq!(out[0], (0, "a".to_string()));
        assert_eq!(out[1], (5, "b".to_string()));
        assert_eq!(out[2], (5, "c".to_string()));
        let parts: Vec<&(i64, String)> = out[3..].iter().collect();
        assert_eq!(parts.len(), 2);
        assert!(parts
            .iter()
            .all(|(t, m)| *t == 9 && m.len() <= MAX_APPENDED_EVENT_BYTES));
        assert_eq!(
            parts.iter().map(|(_, m)| m.as_str()).collect::<String>(),
            long
        );
    }
}
