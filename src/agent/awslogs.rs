//! The `awslogs` log driver: a container's stdout and stderr, timestamped,
//! into CloudWatch Logs group `awslogs-group`, stream
//! `<awslogs-stream-prefix>/<container>/<task-id>`.
//!
//! A follower per container reads the runtime's log stream and appends it in
//! small batches. After a restart it resumes after the newest event already
//! stored, so lines are neither lost nor repeated (to the millisecond).

use std::sync::Arc;
use std::time::Duration;

use super::control::ControlPlane;
use crate::ecs::shapes::{ContainerDefinition, LogDriver};
use crate::runtime::Runtime;
use futures_util::StreamExt;

/// How often a follower stores what it has read.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// The most lines stored in one batch.
const MAX_BATCH: usize = 500;

/// Where one container's output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub account: String,
    pub region: String,
    pub group: String,
    pub stream: String,
    pub create_group: bool,
}

/// The awslogs target of a container definition, if it uses the driver.
/// `Err` names what is wrong with its options.
pub fn target(
    def: &ContainerDefinition,
    account: &str,
    task_region: &str,
    task_id: &str,
) -> Option<Result<Target, String>> {
    let cfg = def.log_configuration.as_ref()?;
    if cfg.log_driver != LogDriver::Awslogs {
        return None;
    }
    let opt = |k: &str| {
        cfg.options
            .as_ref()
            .and_then(|o| o.get(k))
            .map(String::as_str)
    };
    let name = def.name.as_deref().unwrap_or_default();
    let Some(group) = opt("awslogs-group") else {
        return Some(Err(
            "failed to validate logger args: awslogs-group is required".into(),
        ));
    };
    let stream = match opt("awslogs-stream-prefix") {
        Some(p) if !p.is_empty() => format!("{p}/{name}/{task_id}"),
        _ => format!("{name}/{task_id}"),
    };
    Some(Ok(Target {
        account: account.to_string(),
        region: opt("awslogs-region").unwrap_or(task_region).to_string(),
        group: group.to_string(),
        stream,
        create_group: opt("awslogs-create-group") == Some("true"),
    }))
}

/// Make the group (when asked to) and the stream exist, as the driver does
/// when a container starts; the reason in ECS's words when it cannot.
pub async fn prepare(control: &dyn ControlPlane, t: &Target) -> Result<(), String> {
    control.prepare_log_stream(t).await.map_err(|e| {
        format!(
            "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: {e} : exit status 1"
        )
    })
}

/// Copy a container's output into its stream until the container stops.
pub async fn follow(
    runtime: Arc<dyn Runtime>,
    control: Arc<dyn ControlPlane>,
    t: Target,
    container_id: String,
) {
    let after = match control.last_log_event(&t).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(stream = %t.stream, error = %e, "cannot read the log stream");
            return;
        }
    };
    let since_s = after.map_or(0, |ms| ms / 1000);
    let mut lines = runtime.logs(&container_id, since_s);
    let mut batch: Vec<(i64, String)> = Vec::new();
    async fn flush(control: &dyn ControlPlane, t: &Target, batch: &mut Vec<(i64, String)>) {
        if batch.is_empty() {
            return;
        }
        if let Err(e) = control.append_log_events(t, batch).await {
            tracing::warn!(stream = %t.stream, error = %e, "cannot store container output");
        }
        batch.clear();
    }
    // Stored in small batches, at least every 200 ms while lines come, so
    // a container that writes steadily is seen live.
    let mut every = tokio::time::interval(FLUSH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            line = lines.next() => match line {
                Some(Ok((ms, line))) => {
                    if after.is_none_or(|a| ms > a) {
                        batch.push((ms, line));
                    }
                    if batch.len() >= MAX_BATCH {
                        flush(&*control, &t, &mut batch).await;
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(container = %container_id, error = %e, "log stream ended");
                    break;
                }
                None => break,
            },
            _ = every.tick() => flush(&*control, &t, &mut batch).await,
        }
    }
    flush(&*control, &t, &mut batch).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_names_follow_ecs() {
        let def = json!({"name": "web", "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/web", "awslogs-stream-prefix": "ecs", "awslogs-region": "us-east-2",
            "awslogs-create-group": "true"}}});
        let t = target(
            &serde_json::from_value(def).unwrap(),
            "1",
            "us-east-1",
            "abc",
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.stream, "ecs/web/abc");
        assert_eq!((t.region.as_str(), t.create_group), ("us-east-2", true));
        let other = json!({"name": "web", "logConfiguration": {"logDriver": "json-file"}});
        assert!(target(&serde_json::from_value(other).unwrap(), "1", "r", "abc").is_none());
        let no_group =
            json!({"name": "web", "logConfiguration": {"logDriver": "awslogs", "options": {}}});
        assert!(
            target(&serde_json::from_value(no_group).unwrap(), "1", "r", "abc")
                .unwrap()
                .is_err()
        );
    }
}
