//! The metering controller: freezes the usage of each task that stops, so
//! its bill never changes afterwards. ECS gives every task that stops the
//! next stop sequence number; each pass freezes those after the last one it
//! did (kept in metering's own `metering_state`), in one transaction, so a
//! crash between passes loses nothing and freezes nothing twice. Woken on
//! the bus (`Metering`) and every second.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};

use super::usage;
use crate::clock::Clock;
use crate::controllers::Controller;
use crate::ecs::tasks;
use crate::error::ApiResult;
use crate::store::Store;

/// Tasks frozen per batch (a pass runs batches until none is left).
const BATCH: usize = 256;
const WATERMARK: &str = "stop_seq";

/// Freeze the usage of every task stopped since the last time; how many.
pub fn freeze_stopped(tx: &Connection, now_ms: i64) -> ApiResult<usize> {
    let mut seq: i64 = tx
        .prepare_cached("SELECT value FROM metering_state WHERE key = ?1")?
        .query_row([WATERMARK], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let mut frozen = 0;
    loop {
        let batch = tasks::stopped_after(tx, seq, BATCH)?;
        let n = batch.len();
        for (s, task) in batch {
            seq = s;
            frozen += usize::from(usage::freeze(tx, task, now_ms)?);
        }
        if n < BATCH {
            break;
        }
    }
    tx.prepare_cached(
        "INSERT INTO metering_state (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(rusqlite::params![WATERMARK, seq])?;
    Ok(frozen)
}

pub struct Metering {
    pub store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
impl Controller for Metering {
    fn name(&self) -> &'static str {
        "metering"
    }

    fn tick(&self) -> Duration {
        Duration::from_secs(1)
    }

    async fn pass(&self, _woken: Vec<String>) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        tokio::task::block_in_place(|| self.store.write(|tx| freeze_stopped(tx, now)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::runtime::fake::Program;
    use crate::testing::World;

    #[tokio::test(start_paused = true)]
    async fn a_stopped_task_is_frozen_once_and_reads_the_same_before_and_after() {
        let w = World::new();
        w.fake.image("app:1", Program::runs());
        let td = w.fargate(json!([{"name": "main", "image": "app:1"}]));
        let arn = w.run_fargate(&td);
        w.settle().await;
        w.clock.advance_ms(90_000);
        w.fake.exit(&w.container_id(&arn, "main"), 0);
        w.settle().await;
        assert_eq!(w.task(&arn)["lastStatus"], "STOPPED");
        let listed = || {
            w.call("Berth's own API", "ListTaskUsage", json!({}))
                .unwrap()["usage"][0]
                .clone()
        };
        let before = listed();
        assert!(before["billedSeconds"].as_u64().unwrap() >= 60, "{before}");
        let now = w.clock.now_ms();
        assert_eq!(w.store.write(|tx| freeze_stopped(tx, now)).unwrap(), 1);
        assert_eq!(
            w.store.write(|tx| freeze_stopped(tx, now)).unwrap(),
            0,
            "once"
        );
        // Much later, the frozen bill is the same.
        w.clock.advance_ms(3_600_000);
        assert_eq!(listed(), before);
        let stored: i64 = w
            .store
            .read(|c| Ok(c.query_row("SELECT count(*) FROM task_usage", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(stored, 1);
    }
}
