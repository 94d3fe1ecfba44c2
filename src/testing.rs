//! The in-process world tests run against: a store in a temporary
//! directory, every service registered in the pipeline (entered after
//! authentication, as `App::call`), a clock that moves only when told, and
//! the agent on the fake container runtime. Lifecycles and recovery are
//! tested here in milliseconds; the Docker suite proves them end to end.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::agent::{pool::SandboxPool, Agent, Setup};
use crate::clock::{Clock, ManualClock};
use crate::context::Ctx;
use crate::ecs::Ecs;
use crate::error::ApiResult;
use crate::runtime::fake::FakeRuntime;
use crate::services::Services;
use crate::settings::Settings;
use crate::store::Store;
use crate::wire::App;

pub struct World {
    _dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub ecs: Arc<Ecs>,
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub fake: Arc<FakeRuntime>,
    pub agent: Arc<Agent>,
    pool_size: usize,
    secrets: crate::agent::control::SecretStores,
}

/// The subnet FARGATE tests run in.
pub fn net() -> Value {
    json!({"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c3d"]}})
}

impl Default for World {
    fn default() -> World {
        World::with_pool(0)
    }
}

impl World {
    pub fn new() -> World {
        World::default()
    }

    /// A world whose agent keeps `pool` network sandboxes ready.
    pub fn with_pool(pool: usize) -> World {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Arc::new(Store::open_in(dir.path()).expect("a store"));
        let clock = Arc::new(ManualClock::at_ms(1_800_000_000_000));
        let fake = Arc::new(FakeRuntime::new(clock.clone()));
        let services =
            Services::new(store.clone(), Settings::default(), clock.clone()).expect("services");
        let ecs = services.ecs.clone();
        let mut app = App::in_process(services.registry());
        app.clock = clock.clone();
        let secrets = crate::agent::control::SecretStores {
            ssm: services.ssm.clone(),
            asm: services.secrets.clone(),
        };
        let agent = Self::agent_on(&store, &ecs, &fake, &clock, pool, &secrets);
        World {
            secrets,
            _dir: dir,
            store,
            ecs,
            app,
            clock,
            fake,
            agent,
            pool_size: pool,
        }
    }

    fn agent_on(
        store: &Arc<Store>,
        ecs: &Arc<Ecs>,
        fake: &Arc<FakeRuntime>,
        clock: &Arc<ManualClock>,
        pool: usize,
        secrets: &crate::agent::control::SecretStores,
    ) -> Arc<Agent> {
        Agent::new(
            store.clone(),
            fake.clone(),
            ecs.bus.topic(crate::events::Topic::Tasks),
            Setup {
                metrics: Arc::default(),
                pool: Arc::new(SandboxPool::new(pool)),
                clock: clock.clone(),
                observed: None,
                registry: None,
                pull_behavior: Default::default(),
                secrets: Some(secrets.clone()),
            },
        )
    }

    /// The server restarts: a new agent over the same store and engine.
    pub fn restart_agent(&mut self) {
        self.agent = Self::agent_on(
            &self.store,
            &self.ecs,
            &self.fake,
            &self.clock,
            self.pool_size,
            &self.secrets,
        );
    }

    fn ctx(&self) -> Ctx {
        Ctx::for_tests(self.clock.now())
    }

    /// One call to a service (by its registered name), through validation,
    /// authorization and the handler.
    pub fn call(&self, service: &str, op: &str, input: Value) -> ApiResult<Value> {
        self.app.call_named(service, &self.ctx(), op, input)
    }

    /// An ECS call that must succeed.
    pub fn ecs(&self, op: &str, input: Value) -> Value {
        self.call("ECS", op, input)
            .unwrap_or_else(|e| panic!("{op}: {e}"))
    }

    /// Register a FARGATE task definition of `containers`; its ARN.
    pub fn fargate(&self, containers: Value) -> String {
        self.ecs(
            "RegisterTaskDefinition",
            json!({"family": "t", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
                   "cpu": "256", "memory": "512", "containerDefinitions": containers,
                   "executionRoleArn": "arn:aws:iam::000000000000:role/ecsTaskExecutionRole"}),
        )["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .expect("an ARN")
            .to_string()
    }

    /// RunTask FARGATE of one task of `td` on cluster `default`; its ARN.
    pub fn run_fargate(&self, td: &str) -> String {
        let out = self.ecs(
            "RunTask",
            json!({"taskDefinition": td, "launchType": "FARGATE", "networkConfiguration": net()}),
        );
        out["tasks"][0]["taskArn"]
            .as_str()
            .expect("a task")
            .to_string()
    }

    /// The task as DescribeTasks shows it.
    pub fn task(&self, arn: &str) -> Value {
        self.ecs("DescribeTasks", json!({"tasks": [arn]}))["tasks"][0].clone()
    }

    /// The container of a task named `name`.
    pub fn container(&self, arn: &str, name: &str) -> Value {
        self.task(arn)["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// The runtime id of a task's container.
    pub fn container_id(&self, arn: &str, name: &str) -> String {
        let tid = arn.rsplit('/').next().unwrap_or_default();
        self.fake
            .id_of(&format!("berth-{tid}-{name}"))
            .unwrap_or_else(|| panic!("no container {name} of {arn}"))
    }

    /// One pass of the service scheduler at the world's clock.
    pub fn schedule(&self) {
        self.ecs
            .schedule_services(self.clock.now_ms())
            .unwrap_or_else(|e| panic!("scheduler pass: {e}"));
    }

    /// Scheduler passes and agent work until neither changes anything,
    /// then once more after the clock has moved past the scheduler's settle
    /// window (tasks without a health check count as healthy only after
    /// it), until that too changes nothing.
    pub async fn converge(&self) {
        let mut last = String::new();
        let mut advanced = false;
        for _ in 0..50 {
            self.schedule();
            self.settle().await;
            let now: String = self
                .store
                .read(|c| {
                    Ok(c.query_row(
                        "SELECT (SELECT group_concat(arn || last_status || desired_status, ',') FROM tasks)
                             || (SELECT group_concat(id || status || doc, ',') FROM service_deployments)
                             || (SELECT count(*) FROM service_events)",
                        [],
                        |r| r.get::<_, Option<String>>(0),
                    )?)
                })
                .expect("state")
                .unwrap_or_default();
            if now == last {
                if advanced {
                    return;
                }
                self.clock.advance_ms(crate::ecs::scheduler::SETTLE_MS);
                advanced = true;
            } else {
                advanced = false;
            }
            last = now;
        }
        panic!("the services did not converge");
    }

    /// Let the agent work until every live task stops changing (each
    /// reconcile saves before its next effect, so "no save in a whole
    /// round" is settled). Runs on tokio's paused clock in tests, so waits
    /// inside a reconcile take no time.
    pub async fn settle(&self) {
        let mut last = String::new();
        for _ in 0..100 {
            let live = self.agent.control.live_tasks().await.expect("live tasks");
            for arn in &live {
                crate::agent::reconcile(&self.agent, arn)
                    .await
                    .unwrap_or_else(|e| panic!("reconcile {arn}: {e}"));
            }
            let now: String = self
                .store
                .read(|c| {
                    Ok(c.query_row(
                        "SELECT group_concat(arn || last_status || json_extract(doc, '$.version'), ',')
                         FROM tasks",
                        [],
                        |r| r.get::<_, Option<String>>(0),
                    )?)
                })
                .expect("tasks")
                .unwrap_or_default();
            if now == last {
                // Followers copying output finish.
                tokio::time::sleep(Duration::from_millis(10)).await;
                return;
            }
            last = now;
        }
        panic!("the tasks did not settle");
    }
}
