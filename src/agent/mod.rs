//! The agent: drives every task toward its desired state on the container
//! runtime, as ECS's agent does on an instance.
//!
//! It is level-triggered. `reconcile(task)` re-reads the task and its
//! containers each time, does the next steps it can, and records each
//! transition in the store before the next effect; running it again after a
//! crash at any point picks up where things stand. One loop wakes on task
//! events (RunTask, StopTask) and every second, and reconciles each task that
//! is not STOPPED, at most one reconcile per task at a time. The same pass on
//! start adopts containers that kept running while the server was down, and
//! a sweep removes managed containers that belong to no live task.
//!
//! Lifecycle: PROVISIONING (EC2: the container instance's address made
//! local; network sandbox created for `awsvpc` and `host`, address attached
//! for `awsvpc`) → PENDING (images pulled, containers created and started in
//! `dependsOn` and `links` order; `networkBindings` recorded for `bridge` and
//! `host`) → ACTIVATING → RUNNING → on stop: DEACTIVATING → STOPPING
//! (SIGTERM, SIGKILL after `stopTimeout`) → DEPROVISIONING (containers and
//! sandbox removed) → STOPPED. `network` says what each network mode means
//! on the runtime.
//!
//! The agent reads tasks and writes what it observes through a
//! [`ControlPlane`] (`control`): the store, for the agent inside `berth
//! server` (FARGATE tasks and local container instances), or a server over
//! its authenticated internal API, for `berth agent` on another Docker host
//! (`remote`: registration, state file, the tasks placed on its instance).
//! Each agent labels its containers with its own owner value and sweeps only
//! those.

pub mod awslogs;
pub mod control;
mod lifecycle;
mod network;
pub mod pool;
pub mod pull;
pub mod remote;
pub mod secrets;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::controllers::Controller;
use crate::events::Wake;
use crate::logs::Logs;
use crate::metrics::Metrics;
use crate::runtime::{Runtime, LABEL_POOL, LABEL_TASK};
use crate::store::Store;

pub use control::{ControlPlane, LocalControlPlane, RegistryPull, RemoteControlPlane};
pub use lifecycle::reconcile;

/// How often every live task is looked at even without an event.
pub const TICK: Duration = Duration::from_secs(1);
/// How often managed containers that belong to no live task are removed.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

pub struct Agent {
    /// Where tasks are read and observations written: the store (inside
    /// `berth server`) or a server over the API (`berth agent`).
    pub control: Arc<dyn ControlPlane>,
    pub runtime: Arc<dyn Runtime>,
    /// Its topic on the bus: woken when tasks change.
    pub events: Arc<Wake>,
    /// This installation's id: the value of the `berth.managed` label on
    /// every container it creates, and the only ones it ever sweeps.
    pub owner: String,
    /// Where task starts' phases are timed.
    pub metrics: Arc<Metrics>,
    /// Network sandboxes started ahead of their tasks.
    pub pool: Arc<pool::SandboxPool>,
    /// Where the times it reports come from.
    pub clock: Arc<dyn Clock>,
    /// `ECS_IMAGE_PULL_BEHAVIOR` for images of Berth's registry.
    pub pull_behavior: pull::PullBehavior,
    /// The images this agent has pulled (the `once` behaviour).
    pulled: Mutex<HashSet<String>>,
    in_flight: Mutex<HashSet<String>>,
    /// Container id → the task copying its output to CloudWatch Logs.
    followers: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

/// What an agent is given besides its control plane and runtime.
pub struct Setup {
    /// Where task starts' phases are timed.
    pub metrics: Arc<Metrics>,
    /// Network sandboxes started ahead of their tasks.
    pub pool: Arc<pool::SandboxPool>,
    /// Where the times it reports come from.
    pub clock: Arc<dyn Clock>,
    /// Woken when it saves what it observed of a task (the service
    /// scheduler's topic, inside `berth server`).
    pub observed: Option<Arc<Wake>>,
    /// The registry ECR image names resolve to (inside `berth server`).
    pub registry: Option<Arc<crate::ecr::Ecr>>,
    /// `ECS_IMAGE_PULL_BEHAVIOR` for images of Berth's registry.
    pub pull_behavior: pull::PullBehavior,
    /// Where container secrets are read (inside `berth server`).
    pub secrets: Option<control::SecretStores>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            metrics: Arc::default(),
            pool: Arc::new(pool::SandboxPool::new(0)),
            clock: Arc::new(crate::clock::SystemClock),
            observed: None,
            registry: None,
            pull_behavior: pull::PullBehavior::default(),
            secrets: None,
        }
    }
}

impl Agent {
    /// The agent inside `berth server`: the store is its control plane.
    pub fn new(
        store: Arc<Store>,
        runtime: Arc<dyn Runtime>,
        events: Arc<Wake>,
        setup: Setup,
    ) -> Arc<Agent> {
        let logs = Arc::new(Logs::new(store.clone(), setup.clock.clone()));
        let owner = store.owner_id().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the installation id");
            "unknown".into()
        });
        let control = Arc::new(LocalControlPlane {
            store,
            logs,
            registry: setup.registry.clone(),
            observed: setup.observed.clone(),
            secrets: setup.secrets.clone(),
        });
        Agent::with_control_plane(control, runtime, events, owner, setup)
    }

    /// An agent driving the tasks `control` hands it, labelling its
    /// containers with `owner`.
    pub fn with_control_plane(
        control: Arc<dyn ControlPlane>,
        runtime: Arc<dyn Runtime>,
        events: Arc<Wake>,
        owner: String,
        setup: Setup,
    ) -> Arc<Agent> {
        Arc::new(Agent {
            owner,
            metrics: setup.metrics,
            pool: setup.pool,
            clock: setup.clock,
            pull_behavior: setup.pull_behavior,
            pulled: Mutex::new(HashSet::new()),
            control,
            runtime,
            events,
            in_flight: Mutex::new(HashSet::new()),
            followers: Mutex::new(HashMap::new()),
        })
    }

    /// Start copying a started container's output, unless that is under
    /// way or done. A follower that ended while its container still runs
    /// (the runtime's stream broke off) is started again; one that copied
    /// a stopped container's output to its end is not. A follower resumes
    /// after the newest event stored, so nothing is copied twice.
    pub(crate) fn follow(&self, target: awslogs::Target, container_id: &str, running: bool) {
        let mut followers = self.followers.lock().unwrap();
        if followers
            .get(container_id)
            .is_some_and(|h| !h.is_finished() || !running)
        {
            return;
        }
        let handle = tokio::spawn(awslogs::follow(
            self.runtime.clone(),
            self.control.clone(),
            target,
            container_id.to_string(),
        ));
        followers.insert(container_id.to_string(), handle);
    }

    /// Wait (a bounded time) for a stopped container's output to be stored.
    pub(crate) async fn drain(&self, container_id: &str) {
        let handle = self.followers.lock().unwrap().remove(container_id);
        if let Some(h) = handle {
            let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
        }
    }

    /// Refill the sandbox pool in the background.
    pub(crate) fn refill(&self) {
        if self.pool.size() == 0 {
            return;
        }
        let (pool, runtime, owner) = (self.pool.clone(), self.runtime.clone(), self.owner.clone());
        tokio::spawn(async move {
            if let Err(e) = pool.fill(&*runtime, &owner).await {
                tracing::warn!(error = %e, "cannot make network sandboxes ahead");
            }
        });
    }

    /// Remove what the agent made ahead and no task holds; tasks' own
    /// containers keep running, to be adopted at the next start.
    pub async fn shutdown(&self) {
        self.pool.drain(&*self.runtime).await;
        // Left by an earlier run and not yet taken back (a sweep under way).
        let loose = match self.runtime.list_managed(&self.owner).await {
            Ok(all) => self.loose_sandboxes(all).await,
            Err(e) => Err(e.into()),
        };
        match loose {
            Ok(loose) => {
                for c in loose {
                    if let Err(e) = self.runtime.remove(&c.id).await {
                        tracing::warn!(container = %c.id, error = %e, "cannot remove a pooled sandbox");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list pooled sandboxes"),
        }
    }

    /// The pooled sandboxes among `containers` that no live task holds and
    /// the pool does not hold either.
    async fn loose_sandboxes(
        &self,
        containers: Vec<crate::runtime::ContainerInfo>,
    ) -> anyhow::Result<Vec<crate::runtime::ContainerInfo>> {
        let pooled: Vec<_> = containers
            .into_iter()
            .filter(|c| c.labels.contains_key(LABEL_POOL))
            .collect();
        if pooled.is_empty() {
            return Ok(pooled);
        }
        let mut held = HashSet::new();
        for arn in self.control.live_tasks().await? {
            if let Some(id) = self
                .control
                .load_task(&arn)
                .await?
                .and_then(|t| t.runtime.pause_id)
            {
                held.insert(id);
            }
        }
        Ok(pooled
            .into_iter()
            .filter(|c| !held.contains(&c.id) && !self.pool.holds(&c.id))
            .collect())
    }

    /// Start a reconcile for every live task that has none running.
    pub async fn pass(self: &Arc<Self>) {
        let live = match self.control.live_tasks().await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot read live tasks");
                return;
            }
        };
        for arn in live {
            if !self.in_flight.lock().unwrap().insert(arn.clone()) {
                continue;
            }
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = reconcile(&me, &arn).await {
                    tracing::warn!(task = %arn, error = %e, "reconcile failed; will retry");
                }
                me.in_flight.lock().unwrap().remove(&arn);
                // What it did may enable the next step at once.
                me.events.notify();
            });
        }
    }

    /// Remove managed containers whose task is gone or STOPPED, and pooled
    /// sandboxes no task holds and the pool does not want.
    pub async fn sweep(&self) -> anyhow::Result<()> {
        let containers = self.runtime.list_managed(&self.owner).await?;
        let loose = self.loose_sandboxes(containers.clone()).await?;
        let (running, stopped): (Vec<_>, Vec<_>) = loose.into_iter().partition(|c| c.running);
        let extra = self.pool.adopt(running.into_iter().map(|c| c.id).collect());
        for id in extra.iter().chain(stopped.iter().map(|c| &c.id)) {
            tracing::info!(container = %id, "removing a pooled sandbox no task holds");
            self.runtime.remove(id).await?;
        }
        let containers: Vec<_> = containers
            .into_iter()
            .filter(|c| !c.labels.contains_key(LABEL_POOL))
            .collect();
        for c in containers {
            let Some(task_arn) = c.labels.get(LABEL_TASK) else {
                continue;
            };
            let keep = self.control.task_live(task_arn).await?;
            if !keep && !self.in_flight.lock().unwrap().contains(task_arn) {
                tracing::info!(container = %c.id, task = %task_arn, "removing orphaned container");
                self.runtime.remove(&c.id).await?;
            }
        }
        for address in self.control.releasable_addresses().await? {
            tracing::info!(%address, "releasing the address of a removed container instance");
            self.runtime.remove_host_address(&address).await?;
            self.control.address_released(&address).await?;
        }
        Ok(())
    }
}

/// The agent as a controller: each pass starts a reconcile for every live
/// task that has none under way (each saves before its next effect and
/// wakes the agent when done); the first pass, and one every
/// `SWEEP_EVERY`, sweeps what belongs to no live task.
pub struct AgentLoop {
    pub agent: Arc<Agent>,
    last_sweep: Mutex<Option<tokio::time::Instant>>,
}

impl AgentLoop {
    pub fn new(agent: Arc<Agent>) -> AgentLoop {
        AgentLoop {
            agent,
            last_sweep: Mutex::new(None),
        }
    }
}

#[async_trait::async_trait]
impl Controller for AgentLoop {
    fn name(&self) -> &'static str {
        "agent"
    }

    fn tick(&self) -> Duration {
        TICK
    }

    async fn pass(&self, _woken: Vec<String>) -> anyhow::Result<()> {
        let due = {
            let last = self.last_sweep.lock().unwrap();
            last.is_none_or(|t| t.elapsed() >= SWEEP_EVERY)
        };
        if due {
            let first = self
                .last_sweep
                .lock()
                .unwrap()
                .replace(tokio::time::Instant::now())
                .is_none();
            if let Err(e) = self.agent.sweep().await {
                tracing::warn!(error = %e, "could not sweep orphaned containers");
            }
            if first {
                self.agent.refill();
            }
        }
        self.agent.pass().await;
        Ok(())
    }
}
