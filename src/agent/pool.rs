//! Network sandboxes made ahead of their tasks. Starting a sandbox (the
//! network namespace, its address on the task network) is most of what a
//! FARGATE task's start costs on Docker; the agent keeps a few started ones
//! ready, and a task in a mode whose sandbox publishes no ports (`awsvpc`)
//! takes one instead of waiting for its own. The pool refills in the
//! background.
//!
//! A pooled sandbox carries `LABEL_POOL` and no task label (labels cannot
//! change once a container exists). The task that takes it records it as its
//! sandbox (`TaskRuntime::pause_id`) and renames it `berth-<task id>-pause`,
//! as if it had made it. Sandboxes left in the pool by an earlier run are
//! taken back into it at start; those nobody holds are removed by the sweep
//! and when the agent shuts down.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::runtime::pause::{pause_elf, tar_one, PAUSE_IMAGE};
use crate::runtime::{
    ContainerSpec, NetworkAttach, Runtime, RuntimeError, LABEL_CONTAINER, LABEL_MANAGED,
    LABEL_POOL, PAUSE_CONTAINER, TASK_NETWORK,
};

/// Started sandboxes waiting for a task.
pub struct SandboxPool {
    /// How many to keep ready (0: no pool).
    size: usize,
    ready: Mutex<VecDeque<String>>,
    /// Taken by a task that has not yet recorded it (the sweep keeps them).
    handed: Mutex<std::collections::HashSet<String>>,
    filling: AtomicBool,
    /// Set when the agent shuts down: nothing more is made.
    closed: AtomicBool,
}

impl SandboxPool {
    pub fn new(size: usize) -> SandboxPool {
        SandboxPool {
            size,
            ready: Mutex::new(VecDeque::new()),
            handed: Mutex::default(),
            filling: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// A ready sandbox's container id, if there is one. The taker calls
    /// [`SandboxPool::settled`] once its task records it.
    pub fn take(&self) -> Option<String> {
        let id = self.ready.lock().unwrap().pop_front()?;
        self.handed.lock().unwrap().insert(id.clone());
        Some(id)
    }

    /// A taken sandbox is recorded by its task (or given up).
    pub fn settled(&self, id: &str) {
        self.handed.lock().unwrap().remove(id);
    }

    /// Whether `id` waits in the pool or is being handed to a task.
    pub fn holds(&self, id: &str) -> bool {
        self.ready.lock().unwrap().iter().any(|r| r == id)
            || self.handed.lock().unwrap().contains(id)
    }

    /// Take back sandboxes an earlier run left in the pool (running ones, up
    /// to the pool's size); the ids of those it does not want.
    pub fn adopt(&self, running: Vec<String>) -> Vec<String> {
        let mut ready = self.ready.lock().unwrap();
        let mut extra = Vec::new();
        let closed = self.closed.load(Ordering::Acquire);
        for id in running {
            if !closed && ready.len() < self.size && !ready.contains(&id) {
                ready.push_back(id);
            } else {
                extra.push(id);
            }
        }
        extra
    }

    /// Make sandboxes until the pool is full, unless a fill is under way.
    pub async fn fill(&self, runtime: &dyn Runtime, owner: &str) -> Result<(), RuntimeError> {
        if self.size == 0 || self.filling.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let result = async {
            while self.ready.lock().unwrap().len() < self.size
                && !self.closed.load(Ordering::Acquire)
            {
                let id = make(runtime, owner).await?;
                self.ready.lock().unwrap().push_back(id);
            }
            Ok(())
        }
        .await;
        self.filling.store(false, Ordering::Release);
        result
    }

    /// Make no more sandboxes (the server is shutting down).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Make no more, wait (a bounded time) for a fill under way, and remove
    /// every sandbox still waiting: the agent is shutting down.
    pub async fn drain(&self, runtime: &dyn Runtime) {
        self.close();
        for _ in 0..100 {
            if !self.filling.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let ids: Vec<String> = self.ready.lock().unwrap().drain(..).collect();
        for id in ids {
            if let Err(e) = runtime.remove(&id).await {
                tracing::warn!(container = %id, error = %e, "cannot remove a pooled sandbox");
            }
        }
    }
}

/// Create and start one pooled sandbox.
async fn make(runtime: &dyn Runtime, owner: &str) -> Result<String, RuntimeError> {
    runtime.ensure_network(TASK_NETWORK).await?;
    runtime
        .ensure_imported(
            PAUSE_IMAGE,
            tar_one("pause", &pause_elf()),
            &["CMD [\"/pause\"]"],
        )
        .await?;
    let spec = ContainerSpec {
        name: format!("berth-pool-{}", uuid::Uuid::new_v4().simple()),
        image: PAUSE_IMAGE.into(),
        labels: [
            (LABEL_MANAGED.to_string(), owner.to_string()),
            (LABEL_CONTAINER.to_string(), PAUSE_CONTAINER.to_string()),
            (LABEL_POOL.to_string(), "true".to_string()),
        ]
        .into(),
        network: Some(NetworkAttach::Network(TASK_NETWORK.into())),
        ..Default::default()
    };
    let id = runtime.create(&spec).await?;
    if let Err(e) = runtime.start(&id).await {
        runtime.remove(&id).await.ok();
        return Err(e);
    }
    Ok(id)
}
