//! The fleet as a controller: each pass brings every group's instances to
//! what the group wants (`fleet::tick`), then runs ECS managed scaling
//! (`managed::tick`), in one write transaction; woken by Auto Scaling and
//! ECS changes on the bus (topic `Fleet`), and every 250 ms, since boots
//! and spot notices end with time.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rand::{Rng, SeedableRng};

use super::{fleet, managed, Autoscaling};
use crate::clock::Clock;
use crate::controllers::Controller;
use crate::ecs::instances::Liveness;
use crate::events::Topic;

pub struct FleetController {
    pub state: Arc<Autoscaling>,
    pub clock: Arc<dyn Clock>,
    /// When the last pass ran (epoch ms), for the random interruptions'
    /// rate.
    last_ms: std::sync::Mutex<Option<i64>>,
    rng: std::sync::Mutex<rand::rngs::StdRng>,
}

impl FleetController {
    pub fn new(state: Arc<Autoscaling>, clock: Arc<dyn Clock>, seed: u64) -> FleetController {
        FleetController {
            state,
            clock,
            last_ms: std::sync::Mutex::new(None),
            rng: std::sync::Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)),
        }
    }

    /// One pass, synchronously (the store is SQLite): whether anything
    /// changed.
    pub fn step(&self) -> crate::error::ApiResult<bool> {
        let now = self.clock.now_ms();
        let elapsed = {
            let mut last = self.last_ms.lock().unwrap();
            let e = last.map_or(0, |l| now - l);
            *last = Some(now);
            e
        };
        let settings = &self.state.settings;
        let mut rng = self.rng.lock().unwrap();
        let at = Liveness {
            now_ms: now,
            timeout_ms: settings.agent_timeout_ms,
        };
        self.state.store.write(|tx| {
            let mut changed = fleet::tick(tx, now, elapsed, &settings.fleet, &mut *rng)?;
            changed |= managed::tick(tx, at, &settings.fleet, &mut |n| rng.gen_range(0..n))?;
            Ok(changed)
        })
    }
}

#[async_trait]
impl Controller for FleetController {
    fn name(&self) -> &'static str {
        "fleet"
    }

    fn tick(&self) -> Duration {
        Duration::from_millis(250)
    }

    async fn pass(&self, _woken: Vec<String>) -> anyhow::Result<()> {
        let changed = tokio::task::block_in_place(|| self.step())?;
        if changed {
            self.state.bus.wake(Topic::Tasks);
        }
        Ok(())
    }
}
