//! Amazon CloudWatch Logs (JSON 1.1, target prefix `Logs_20140328`): log
//! groups, log streams and their events, kept in the store.
//!
//! Code map: log groups and retention in `groups.rs`, log streams in
//! `streams.rs`, `PutLogEvents` / `GetLogEvents` / `FilterLogEvents` in
//! `events.rs`, the filter-pattern matcher (pure) in `pattern.rs`, pagination
//! tokens (pure) in `tokens.rs`.
//!
//! Besides the API, other parts of Berth (the task runner, which pushes the
//! output of containers that use the `awslogs` driver) use the Rust API on
//! [`Logs`]: [`Logs::ensure_group`], [`Logs::group_exists`],
//! [`Logs::ensure_stream`] and [`Logs::append`]. The JSON handlers are thin
//! layers over the same store functions.
//!
//! Storage: `log_groups`, `log_streams` and `log_events` (one row per event,
//! indexed by (group, stream, timestamp, id) for `GetLogEvents` and by
//! (group, timestamp, id) for `FilterLogEvents`). An event's `id` is its
//! rowid: unique and increasing, it orders events of equal timestamp and is
//! the second half of every event position in a pagination token.
//!
//! Retention: events older than a group's retention period are deleted when
//! the policy is set and before each later write to the group.

pub mod events;
pub mod groups;
pub mod pattern;
pub mod streams;
pub mod tokens;

use std::sync::Arc;

use crate::clock::Clock;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::model;
use crate::store::Store;
use crate::wire::Service;

/// The CloudWatch Logs service: stateless apart from the store it is given.
pub struct Logs {
    pub store: Arc<Store>,
    /// When the Rust API's writes happen (the API's come with the call).
    pub clock: Arc<dyn Clock>,
}

impl Logs {
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>) -> Logs {
        Logs { store, clock }
    }

    /// CloudWatch Logs, registered once in the request pipeline.
    pub fn service(self: Arc<Self>) -> Service {
        Service::builder("CloudWatch Logs", "logs", "logs", model::logs(), self)
            .op("CreateLogGroup", Logs::create_log_group)
            .op("DeleteLogGroup", Logs::delete_log_group)
            .op("DescribeLogGroups", Logs::describe_log_groups)
            .op("PutRetentionPolicy", Logs::put_retention_policy)
            .op("DeleteRetentionPolicy", Logs::delete_retention_policy)
            .op(
                "PutLogGroupDeletionProtection",
                Logs::put_log_group_deletion_protection,
            )
            .op("CreateLogStream", Logs::create_log_stream)
            .op("DeleteLogStream", Logs::delete_log_stream)
            .op("DescribeLogStreams", Logs::describe_log_streams)
            .op("PutLogEvents", Logs::put_log_events)
            .op("GetLogEvents", Logs::get_log_events)
            .op("FilterLogEvents", Logs::filter_log_events)
            .build()
    }

    // ----- The Rust API for the rest of Berth -----

    /// Create the log group unless it exists (idempotent).
    pub fn ensure_group(&self, account: &str, region: &str, name: &str) -> ApiResult<()> {
        groups::check_group_name(name)?;
        let now = self.clock.now_ms();
        self.store.write(|tx| {
            if groups::find(tx, account, region, name)?.is_none() {
                groups::insert(tx, account, region, name, now, &groups::NewGroup::default())?;
            }
            Ok(())
        })
    }

    /// Whether the log group exists.
    pub fn group_exists(&self, account: &str, region: &str, name: &str) -> ApiResult<bool> {
        self.store
            .read(|conn| Ok(groups::find(conn, account, region, name)?.is_some()))
    }

    /// Create the log stream unless it exists (idempotent). The group must
    /// exist (`ResourceNotFoundException` otherwise), as with the awslogs
    /// driver when it is not told to create groups.
    pub fn ensure_stream(
        &self,
        account: &str,
        region: &str,
        group: &str,
        stream: &str,
    ) -> ApiResult<()> {
        streams::check_stream_name(stream)?;
        let now = self.clock.now_ms();
        self.store.write(|tx| {
            let g = groups::require(tx, account, region, group)?;
            if streams::find(tx, g.id, stream)?.is_none() {
                streams::insert(tx, g.id, stream, now)?;
            }
            Ok(())
        })
    }

    /// The timestamp of the newest event in a stream, if it has any.
    pub fn last_event(
        &self,
        account: &str,
        region: &str,
        group: &str,
        stream: &str,
    ) -> ApiResult<Option<i64>> {
        self.store.read(|conn| {
            let Some(g) = groups::find(conn, account, region, group)? else {
                return Ok(None);
            };
            Ok(streams::find(conn, g.id, stream)?.and_then(|s| s.last_event))
        })
    }

    /// Append events `(timestamp in ms, message)` to an existing stream, in
    /// one transaction, without sequence tokens or PutLogEvents' batch rules:
    /// events are stored in timestamp order (stable for equal timestamps),
    /// empty messages are skipped, and a message longer than
    /// [`events::MAX_APPENDED_EVENT_BYTES`] is split into several events, as
    /// Docker's awslogs driver does. Returns the number of events stored.
    pub fn append(
        &self,
        account: &str,
        region: &str,
        group: &str,
        stream: &str,
        events: &[(i64, String)],
    ) -> ApiResult<usize> {
        let prepared = events::prepare_appended(events);
        let now = self.clock.now_ms();
        self.store.write(|tx| {
            let g = groups::require(tx, account, region, group)?;
            let s = streams::require(tx, g.id, stream)?;
            let refs: Vec<(i64, &str)> = prepared.iter().map(|(t, m)| (*t, m.as_str())).collect();
            events::purge_expired(tx, &g, now)?;
            events::insert(tx, &g, &s, &refs, now)?;
            Ok(refs.len())
        })
    }
}

// ----- Errors, worded as CloudWatch Logs words them -----

pub(crate) fn group_not_found() -> ApiError {
    ApiError::new(
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
}

pub(crate) fn stream_not_found() -> ApiError {
    ApiError::new(
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    )
}

pub(crate) fn invalid_next_token() -> ApiError {
    ApiError::invalid_parameter("The specified nextToken is invalid.")
}

/// The log group a call names, by `logGroupName` or `logGroupIdentifier`
/// (a name or an ARN, with or without the trailing `:*`): exactly one.
pub(crate) fn group_name_of(
    ctx: &Ctx,
    name: Option<String>,
    identifier: Option<String>,
) -> ApiResult<String> {
    match (name, identifier) {
        (Some(_), Some(_)) => Err(ApiError::invalid_parameter(
            "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
        )),
        (None, None) => Err(ApiError::invalid_parameter(
            "Either logGroupName or logGroupIdentifier must be specified.",
        )),
        (Some(n), None) => Ok(n),
        (None, Some(ident)) => groups::identifier_name(ctx, &ident),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::{json, Value};

    impl Logs {
        /// One call through the pipeline's in-process steps.
        fn handle(&self, ctx: &Ctx, operation: &str, input: Value) -> ApiResult<Value> {
            let mut r = crate::wire::Registry::default();
            r.add(Arc::new(Logs::new(self.store.clone(), self.clock.clone())).service());
            crate::wire::App::in_process(r).call_named("CloudWatch Logs", ctx, operation, input)
        }
    }

    fn setup() -> (tempfile::TempDir, Logs, Ctx) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in(dir.path()).unwrap());
        let ctx = Ctx::for_tests(Utc::now());
        (
            dir,
            Logs::new(store, Arc::new(crate::clock::SystemClock)),
            ctx,
        )
    }

    #[test]
    fn logs_model_loads() {
        let m = crate::model::logs();
        assert_eq!(m.target_prefix.as_deref(), Some("Logs_20140328"));
        assert!(m.operations.contains_key("FilterLogEvents"));
        // A Java class like `[\w-_]` (a literal '-') loads and matches.
        let re = m.shape("ResourceType").pattern.as_ref().unwrap();
        assert!(re.is_match("a-b_c") && !re.is_match("a b"));
    }

    #[test]
    fn rust_api_is_idempotent_and_appends() {
        let (_d, logs, ctx) = setup();
        let (a, r) = (ctx.account.as_str(), ctx.region.as_str());
        assert!(!logs.group_exists(a, r, "/ecs/app").unwrap());
        logs.ensure_group(a, r, "/ecs/app").unwrap();
        logs.ensure_group(a, r, "/ecs/app").unwrap();
        assert!(logs.group_exists(a, r, "/ecs/app").unwrap());
        assert_eq!(
            logs.ensure_stream(a, r, "/ecs/none", "s").unwrap_err().code,
            "ResourceNotFoundException"
        );
        logs.ensure_stream(a, r, "/ecs/app", "web/web/1").unwrap();
        logs.ensure_stream(a, r, "/ecs/app", "web/web/1").unwrap();
        let t = ctx.now_millis();
        let n = logs
            .append(
                a,
                r,
                "/ecs/app",
                "web/web/1",
                &[
                    (t + 1, "second".into()),
                    (t, "first".into()),
                    (t, String::new()),
                ],
            )
            .unwrap();
        assert_eq!(n, 2);
        let out = logs
            .handle(
                &ctx,
                "GetLogEvents",
                json!({"logGroupName": "/ecs/app", "logStreamName": "web/web/1", "startFromHead": true}),
            )
            .unwrap();
        let msgs: Vec<&str> = out["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap())
            .collect();
        assert_eq!(msgs, ["first", "second"]);
        assert_eq!(
            logs.append(a, r, "/ecs/app", "nope", &[(t, "x".into())])
                .unwrap_err()
                .message,
            "The specified log stream does not exist."
        );
    }

    #[test]
    fn put_then_page_forward_and_backward() {
        let (_d, logs, ctx) = setup();
        let g = json!({"logGroupName": "g"});
        logs.handle(&ctx, "CreateLogGroup", g.clone()).unwrap();
        logs.handle(
            &ctx,
            "CreateLogStream",
            json!({"logGroupName": "g", "logStreamName": "s"}),
        )
        .unwrap();
        let t = ctx.now_millis() - 1000;
        let evs: Vec<Value> = (0..5)
            .map(|i| json!({"timestamp": t + i, "message": format!("m{i}")}))
            .collect();
        logs.handle(
            &ctx,
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": evs}),
        )
        .unwrap();
        let get = |extra: Value| {
            let mut req = json!({"logGroupName": "g", "logStreamName": "s", "limit": 2});
            req.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            logs.handle(&ctx, "GetLogEvents", req).unwrap()
        };
        let msgs = |v: &Value| -> Vec<String> {
            v["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["message"].as_str().unwrap().to_string())
                .collect()
        };
        // Default: the last events.
        let tail = get(json!({}));
        assert_eq!(msgs(&tail), ["m3", "m4"]);
        let back = get(json!({"nextToken": tail["nextBackwardToken"]}));
        assert_eq!(msgs(&back), ["m1", "m2"]);
        let back2 = get(json!({"nextToken": back["nextBackwardToken"]}));
        assert_eq!(msgs(&back2), ["m0"]);
        let back3 = get(json!({"nextToken": back2["nextBackwardToken"]}));
        assert!(msgs(&back3).is_empty());
        assert_eq!(back3["nextBackwardToken"], back2["nextBackwardToken"]);
        // From the head, forward to the end.
        let mut token = Value::Null;
        let mut all = Vec::new();
        for _ in 0..10 {
            let page = if token.is_null() {
                get(json!({"startFromHead": true}))
            } else {
                get(json!({"nextToken": token}))
            };
            all.extend(msgs(&page));
            if page["nextForwardToken"] == token {
                break;
            }
            token = page["nextForwardToken"].clone();
        }
        assert_eq!(all, ["m0", "m1", "m2", "m3", "m4"]);
        // Time range: [start, end).
        let ranged = get(json!({"startTime": t + 1, "endTime": t + 3, "startFromHead": true}));
        assert_eq!(msgs(&ranged), ["m1", "m2"]);
    }

    #[test]
    fn time_bounds_and_tokens_combine() {
        let (_d, logs, ctx) = setup();
        let (a, r) = (ctx.account.as_str(), ctx.region.as_str());
        logs.ensure_group(a, r, "g").unwrap();
        logs.ensure_stream(a, r, "g", "s").unwrap();
        let t = ctx.now_millis() - 1000;
        // Two events at each of t .. t + 4: a0 b0 a1 b1 ... a4 b4.
        let events: Vec<(i64, String)> = (0..5)
            .flat_map(|i| [(t + i, format!("a{i}")), (t + i, format!("b{i}"))])
            .collect();
        logs.append(a, r, "g", "s", &events).unwrap();
        let msgs = |v: &Value| -> Vec<String> {
            v["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["message"].as_str().unwrap().to_string())
                .collect()
        };
        let filter = |req: Value| logs.handle(&ctx, "FilterLogEvents", req).unwrap();
        // startTime is inclusive, endTime too; the same startTime asked again
        // (as `aws logs tail --follow` does) answers the same events and ids.
        let first = filter(json!({"logGroupName": "g", "startTime": t + 3, "interleaved": true}));
        assert_eq!(msgs(&first), ["a3", "b3", "a4", "b4"]);
        let again = filter(json!({"logGroupName": "g", "startTime": t + 3}));
        assert_eq!(first["events"], again["events"]);
        assert!(first.get("nextToken").is_none());
        let ranged = filter(json!({"logGroupName": "g", "startTime": t + 1, "endTime": t + 2}));
        assert_eq!(msgs(&ranged), ["a1", "b1", "a2", "b2"]);
        // A token from before startTime: startTime still bounds the page.
        let early = filter(json!({"logGroupName": "g", "limit": 1}));
        assert_eq!(msgs(&early), ["a0"]);
        let resumed = filter(json!({
            "logGroupName": "g", "startTime": t + 4, "nextToken": early["nextToken"]
        }));
        assert_eq!(msgs(&resumed), ["a4", "b4"]);
        // A token from after startTime: the token does.
        let page = filter(json!({"logGroupName": "g", "startTime": t + 1, "limit": 3}));
        assert_eq!(msgs(&page), ["a1", "b1", "a2"]);
        let rest = filter(json!({
            "logGroupName": "g", "startTime": t + 1, "nextToken": page["nextToken"]
        }));
        assert_eq!(msgs(&rest), ["b2", "a3", "b3", "a4", "b4"]);

        let get = |extra: Value| {
            let mut req = json!({"logGroupName": "g", "logStreamName": "s"});
            req.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            logs.handle(&ctx, "GetLogEvents", req).unwrap()
        };
        // Backward from the end, bounded by endTime (exclusive) and startTime.
        let last = get(json!({"endTime": t + 3, "limit": 3}));
        assert_eq!(msgs(&last), ["b1", "a2", "b2"]);
        let before = get(
            json!({"endTime": t + 3, "startTime": t + 1, "nextToken": last["nextBackwardToken"]}),
        );
        assert_eq!(msgs(&before), ["a1"]);
        // A backward token from after endTime: endTime still bounds the page.
        let end = get(json!({"limit": 1}));
        assert_eq!(msgs(&end), ["b4"]);
        let bounded = get(json!({"endTime": t + 1, "nextToken": end["nextBackwardToken"]}));
        assert_eq!(msgs(&bounded), ["a0", "b0"]);
        // Forward: a token from before startTime, and one from after it.
        let head = get(json!({"startFromHead": true, "limit": 1}));
        assert_eq!(msgs(&head), ["a0"]);
        let fwd = get(json!({"startTime": t + 4, "nextToken": head["nextForwardToken"]}));
        assert_eq!(msgs(&fwd), ["a4", "b4"]);
        let mid = get(json!({"startFromHead": true, "startTime": t + 1, "limit": 2}));
        assert_eq!(msgs(&mid), ["a1", "b1"]);
        let fwd = get(
            json!({"startTime": t + 1, "endTime": t + 3, "nextToken": mid["nextForwardToken"]}),
        );
        assert_eq!(msgs(&fwd), ["a2", "b2"]);
    }

    #[test]
    fn retention_purges_expired_events() {
        let (_d, logs, ctx) = setup();
        let (a, r) = (ctx.account.as_str(), ctx.region.as_str());
        logs.ensure_group(a, r, "g").unwrap();
        logs.ensure_stream(a, r, "g", "s").unwrap();
        let day = 86_400_000;
        let t = ctx.now_millis();
        logs.append(
            a,
            r,
            "g",
            "s",
            &[(t - 3 * day, "old".into()), (t, "new".into())],
        )
        .unwrap();
        let stored = |logs: &Logs| {
            logs.handle(
                &ctx,
                "DescribeLogGroups",
                json!({"logGroupNamePrefix": "g"}),
            )
            .unwrap()["logGroups"][0]["storedBytes"]
                .as_i64()
                .unwrap()
        };
        assert_eq!(stored(&logs), 6);
        logs.handle(
            &ctx,
            "PutRetentionPolicy",
            json!({"logGroupName": "g", "retentionInDays": 1}),
        )
        .unwrap();
        assert_eq!(stored(&logs), 3);
        let out = logs
            .handle(
                &ctx,
                "GetLogEvents",
                json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
            )
            .unwrap();
        assert_eq!(out["events"].as_array().unwrap().len(), 1);
        assert_eq!(out["events"][0]["message"], "new");
        let s = logs
            .handle(&ctx, "DescribeLogStreams", json!({"logGroupName": "g"}))
            .unwrap();
        assert_eq!(s["logStreams"][0]["firstEventTimestamp"], json!(t));
    }

    #[test]
    fn put_log_events_rules() {
        let (_d, logs, _) = setup();
        let now = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        let ctx = Ctx::for_tests(now);
        logs.handle(&ctx, "CreateLogGroup", json!({"logGroupName": "g"}))
            .unwrap();
        logs.handle(
            &ctx,
            "CreateLogStream",
            json!({"logGroupName": "g", "logStreamName": "s"}),
        )
        .unwrap();
        let put = |events: Value| {
            logs.handle(
                &ctx,
                "PutLogEvents",
                json!({"logGroupName": "g", "logStreamName": "s", "logEvents": events}),
            )
        };
        let t = ctx.now_millis();
        let day = 86_400_000;
        let e =
            put(json!([{"timestamp": t, "message": "b"}, {"timestamp": t - 1, "message": "a"}]))
                .unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert!(e.message.contains("chronological"), "{}", e.message);
        let out = put(json!([
            {"timestamp": t - 15 * day, "message": "old"},
            {"timestamp": t, "message": "ok"},
            {"timestamp": t + 3 * 3_600_000, "message": "new"}
        ]))
        .unwrap();
        assert_eq!(
            out["rejectedLogEventsInfo"],
            json!({"tooOldLogEventEndIndex": 1, "tooNewLogEventStartIndex": 2})
        );
        assert!(out["nextSequenceToken"].is_string());
        let e = put(json!([
            {"timestamp": t - 2 * day, "message": "a"},
            {"timestamp": t, "message": "b"}
        ]))
        .unwrap_err();
        assert!(e.message.contains("24 hours"), "{}", e.message);
        let big = "x".repeat(600_000);
        let e = put(json!([
            {"timestamp": t, "message": big},
            {"timestamp": t, "message": big}
        ]))
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        logs.handle(
            &ctx,
            "PutRetentionPolicy",
            json!({"logGroupName": "g", "retentionInDays": 1}),
        )
        .unwrap();
        let out = put(json!([
            {"timestamp": t - 2 * day, "message": "expired"},
            {"timestamp": t, "message": "ok"}
        ]))
        .unwrap();
        assert_eq!(
            out["rejectedLogEventsInfo"],
            json!({"expiredLogEventEndIndex": 1})
        );
    }
}
