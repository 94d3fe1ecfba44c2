//! The disconnected-agent janitor, a controller: every second it stops the
//! tasks of remote instances whose agent has stayed silent past the agent
//! timeout and the grace period (no agent will report their end), and
//! wakes whoever acts on stopped tasks.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{instances, Ecs};
use crate::clock::Clock;
use crate::controllers::Controller;

pub struct Janitor {
    pub ecs: Arc<Ecs>,
    pub clock: Arc<dyn Clock>,
}

#[async_trait]
impl Controller for Janitor {
    fn name(&self) -> &'static str {
        "janitor"
    }

    fn tick(&self) -> Duration {
        Duration::from_secs(1)
    }

    async fn pass(&self, _woken: Vec<String>) -> anyhow::Result<()> {
        let at = instances::Liveness {
            now_ms: self.clock.now_ms(),
            timeout_ms: self.ecs.settings.agent_timeout_ms,
        };
        let grace = self.ecs.settings.agent_grace_ms;
        let stopped = tokio::task::block_in_place(|| {
            self.ecs
                .store
                .write(|tx| instances::stop_disconnected(tx, at, grace))
        })?;
        for t in &stopped {
            tracing::warn!(task = %t, "stopped: its container instance's agent is disconnected");
        }
        if !stopped.is_empty() {
            self.ecs.tasks_changed();
        }
        Ok(())
    }
}
