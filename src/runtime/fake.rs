//! A container runtime in memory, for testing the task lifecycle, recovery
//! and the controllers in-process, in milliseconds, without Docker.
//!
//! Containers are created, started, stopped and removed as on an engine,
//! with addresses on the task network, published ports, labels and names.
//! What a container does once started is its image's [`Program`]: it keeps
//! running (the default), or exits at once with a code; it may report a
//! health check's result; it writes lines of output. Tests also act on
//! running containers: [`FakeRuntime::exit`], [`FakeRuntime::set_health`],
//! [`FakeRuntime::oom`], [`FakeRuntime::vanish`]. Timestamps come from the
//! clock it is given.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream, StreamExt};

use super::{
    ContainerInfo, ContainerSpec, NetworkAttach, PortBinding, PullAuth, Runtime, RuntimeError,
    TaskLimits, LABEL_MANAGED,
};
use crate::clock::Clock;

/// What a container of an image does once started.
#[derive(Debug, Clone, Default)]
pub struct Program {
    /// Exit with this code as soon as it starts (`None`: keep running).
    pub exits: Option<i64>,
    /// Its health check's status once started: `healthy` or `unhealthy`
    /// (`None`: `starting` while it has a health check).
    pub health: Option<&'static str>,
    /// Lines it writes when it starts.
    pub output: Vec<String>,
    /// The image's architecture (`amd64`, `arm64`); `None`: unspecified.
    pub arch: Option<&'static str>,
}

impl Program {
    /// Runs until stopped.
    pub fn runs() -> Program {
        Program::default()
    }

    /// Exits with `code` as soon as it starts.
    pub fn exits(code: i64) -> Program {
        Program {
            exits: Some(code),
            ..Program::default()
        }
    }

    pub fn healthy(mut self) -> Program {
        self.health = Some("healthy");
        self
    }

    pub fn writes(mut self, lines: &[&str]) -> Program {
        self.output = lines.iter().map(|l| l.to_string()).collect();
        self
    }
}

#[derive(Debug, Clone)]
struct Container {
    spec: ContainerSpec,
    info: ContainerInfo,
    /// (epoch ms, line) of everything it wrote.
    output: Vec<(i64, String)>,
}

#[derive(Default)]
struct State {
    images: HashMap<String, Program>,
    /// Images present locally (pulled or imported).
    present: HashSet<String>,
    containers: BTreeMap<String, Container>,
    networks: HashSet<String>,
    host_addresses: HashSet<String>,
    cgroups: HashSet<String>,
    next_id: u64,
    next_ip: u32,
    /// Every call made, in order, for tests that count them.
    calls: Vec<String>,
}

/// The in-memory runtime.
pub struct FakeRuntime {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl FakeRuntime {
    pub fn new(clock: Arc<dyn Clock>) -> FakeRuntime {
        FakeRuntime {
            clock,
            state: Mutex::new(State::default()),
        }
    }

    /// Make an image present locally, running `program`.
    pub fn image(&self, name: &str, program: Program) {
        let mut s = self.state.lock().unwrap();
        s.images.insert(name.to_string(), program);
        s.present.insert(name.to_string());
    }

    /// Make an image pullable (known, but not present until pulled).
    pub fn pullable(&self, name: &str, program: Program) {
        self.state
            .lock()
            .unwrap()
            .images
            .insert(name.to_string(), program);
    }

    /// The id of the container with `name` (runtime name, or a suffix of it
    /// such as `-main`).
    pub fn id_of(&self, name: &str) -> Option<String> {
        let s = self.state.lock().unwrap();
        s.containers
            .values()
            .find(|c| c.spec.name == name || c.spec.name.ends_with(name))
            .map(|c| c.info.id.clone())
    }

    /// The runtime names of every container, sorted.
    pub fn names(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        let mut n: Vec<String> = s.containers.values().map(|c| c.spec.name.clone()).collect();
        n.sort();
        n
    }

    /// The spec a container was created with.
    pub fn spec(&self, id: &str) -> Option<ContainerSpec> {
        let s = self.state.lock().unwrap();
        s.containers.get(id).map(|c| c.spec.clone())
    }

    /// How many calls of `kind` (`create`, `start`, …) were made.
    pub fn calls(&self, kind: &str) -> usize {
        let s = self.state.lock().unwrap();
        s.calls.iter().filter(|c| c.as_str() == kind).count()
    }

    fn finish(c: &mut Container, now: chrono::DateTime<chrono::Utc>, code: i64) {
        c.info.running = false;
        c.info.state = "exited".into();
        c.info.exit_code = Some(code);
        c.info.finished_at = Some(now);
        c.info.ports.clear();
    }

    /// A running container exits with `code`.
    pub fn exit(&self, id: &str, code: i64) {
        let now = self.clock.now();
        let mut s = self.state.lock().unwrap();
        if let Some(c) = s.containers.get_mut(id).filter(|c| c.info.running) {
            Self::finish(c, now, code);
        }
    }

    /// A running container is killed for using more memory than it may.
    pub fn oom(&self, id: &str) {
        let now = self.clock.now();
        let mut s = self.state.lock().unwrap();
        if let Some(c) = s.containers.get_mut(id).filter(|c| c.info.running) {
            c.info.oom_killed = true;
            Self::finish(c, now, 137);
        }
    }

    /// A container's health check reports `status` (`healthy`, `unhealthy`).
    pub fn set_health(&self, id: &str, status: &str) {
        let mut s = self.state.lock().unwrap();
        if let Some(c) = s.containers.get_mut(id) {
            c.info.health = Some(status.to_string());
        }
    }

    /// A container disappears from the engine (removed behind Berth's back).
    pub fn vanish(&self, id: &str) {
        self.state.lock().unwrap().containers.remove(id);
    }

    fn record(&self, s: &mut State, call: &str) {
        s.calls.push(call.to_string());
    }
}

fn not_found(what: &str) -> RuntimeError {
    RuntimeError::NotFound(format!("No such container: {what}"))
}

/// The container `key` names (id or name).
fn resolve<'a>(s: &'a mut State, key: &str) -> Option<&'a mut Container> {
    let id = s
        .containers
        .values()
        .find(|c| c.info.id == key || c.spec.name == key)
        .map(|c| c.info.id.clone())?;
    s.containers.get_mut(&id)
}

#[async_trait]
impl Runtime for FakeRuntime {
    async fn ensure_network(&self, name: &str) -> Result<(), RuntimeError> {
        let mut s = self.state.lock().unwrap();
        self.record(&mut s, "ensure_network");
        s.networks.insert(name.to_string());
        Ok(())
    }

    async fn local_image(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        let s = self.state.lock().unwrap();
        Ok(s.present
            .contains(image)
            .then(|| format!("sha256:{:064x}", fnv(image))))
    }

    async fn ensure_imported(
        &self,
        image: &str,
        _tar: Vec<u8>,
        _changes: &[&str],
    ) -> Result<(), RuntimeError> {
        let mut s = self.state.lock().unwrap();
        s.present.insert(image.to_string());
        s.images.entry(image.to_string()).or_default();
        Ok(())
    }

    async fn image_architecture(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        let s = self.state.lock().unwrap();
        Ok(s.images.get(image).and_then(|p| p.arch).map(str::to_string))
    }

    async fn pull(
        &self,
        image: &str,
        _platform: Option<&str>,
        _auth: Option<&PullAuth>,
    ) -> Result<String, RuntimeError> {
        let mut s = self.state.lock().unwrap();
        self.record(&mut s, "pull");
        if !s.images.contains_key(image) {
            return Err(RuntimeError::Pull(format!(
                "pull access denied for {image}, repository does not exist"
            )));
        }
        s.present.insert(image.to_string());
        Ok(format!("sha256:{:064x}", fnv(image)))
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let mut s = self.state.lock().unwrap();
        self.record(&mut s, "create");
        if !s.present.contains(&spec.image) {
            return Err(RuntimeError::NotFound(format!(
                "No such image: {}",
                spec.image
            )));
        }
        if s.containers.values().any(|c| c.spec.name == spec.name) {
            return Err(RuntimeError::Other(format!(
                "Conflict. The container name \"/{}\" is already in use",
                spec.name
            )));
        }
        if let Some(NetworkAttach::Container(other)) = &spec.network {
            if resolve(&mut s, other).is_none() {
                return Err(not_found(other));
            }
        }
        s.next_id += 1;
        let id = format!("{:064x}", fnv(&spec.name) ^ s.next_id);
        let info = ContainerInfo {
            id: id.clone(),
            labels: spec.labels.clone(),
            state: "created".into(),
            image_id: Some(format!("sha256:{:064x}", fnv(&spec.image))),
            ..ContainerInfo::default()
        };
        s.containers.insert(
            id.clone(),
            Container {
                spec: spec.clone(),
                info,
                output: Vec::new(),
            },
        );
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let now = self.clock.now();
        let mut s = self.state.lock().unwrap();
        self.record(&mut s, "start");
        s.next_ip += 1;
        let n = s.next_ip;
        let program = {
            let c = resolve(&mut s, id).ok_or_else(|| not_found(id))?;
            c.spec.image.clone()
        };
        let program = s.images.get(&program).cloned().unwrap_or_default();
        let c = resolve(&mut s, id).ok_or_else(|| not_found(id))?;
        if c.info.running {
            return Ok(());
        }
        c.info.running = true;
        c.info.state = "running".into();
        c.info.started_at = Some(now);
        c.info.finished_at = None;
        c.info.exit_code = None;
        if matches!(c.spec.network, Some(NetworkAttach::Network(_))) {
            c.info.ip = Some(format!("172.30.{}.{}", n / 250, n % 250 + 2));
            c.info.mac = Some(format!("02:42:ac:1e:{:02x}:{:02x}", n / 250, n % 250 + 2));
        }
        let mut dynamic = 32768 + n as u16 * 8;
        c.info.ports = c
            .spec
            .ports
            .iter()
            .map(|p| PortBinding {
                container_port: p.container_port,
                protocol: p.protocol,
                host_ip: p.host_ip.clone(),
                host_port: p.host_port.unwrap_or_else(|| {
                    dynamic += 1;
                    dynamic
                }),
            })
            .collect();
        if c.spec.health.is_some() {
            c.info.health = Some(program.health.unwrap_or("starting").to_string());
        }
        let ms = now.timestamp_millis();
        c.output
            .extend(program.output.iter().map(|l| (ms, l.clone())));
        if let Some(code) = program.exits {
            Self::finish(c, now, code);
        }
        Ok(())
    }

    async fn stop(&self, id: &str, _timeout_s: i64) -> Result<(), RuntimeError> {
        let now = self.clock.now();
        let mut s = self.state.lock().unwrap();
        self.record(&mut s, "stop");
        if let Some(c) = resolve(&mut s, id) {
            if c.info.running {
                // As a process that exits on SIGTERM.
                Self::finish(c, now, 143);
            }
        }
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let mut s = self.state.lock().unwrap();
        self.record(&mut s, "remove");
        if let Some(id) = resolve(&mut s, id).map(|c| c.info.id.clone()) {
            s.containers.remove(&id);
        }
        Ok(())
    }

    async fn rename(&self, id: &str, name: &str) -> Result<(), RuntimeError> {
        let mut s = self.state.lock().unwrap();
        let c = resolve(&mut s, id).ok_or_else(|| not_found(id))?;
        c.spec.name = name.to_string();
        Ok(())
    }

    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        let mut s = self.state.lock().unwrap();
        Ok(resolve(&mut s, id).map(|c| c.info.clone()))
    }

    fn logs(
        &self,
        id: &str,
        since_s: i64,
    ) -> BoxStream<'static, Result<(i64, String), RuntimeError>> {
        let mut s = self.state.lock().unwrap();
        let lines: Vec<Result<(i64, String), RuntimeError>> = match resolve(&mut s, id) {
            Some(c) => c
                .output
                .iter()
                .filter(|(ms, _)| *ms / 1000 >= since_s)
                .cloned()
                .map(Ok)
                .collect(),
            None => vec![Err(not_found(id))],
        };
        stream::iter(lines).boxed()
    }

    async fn task_cgroup(
        &self,
        task_id: &str,
        _limits: TaskLimits,
    ) -> Result<Option<String>, RuntimeError> {
        let path = format!("/berth/{task_id}");
        self.state.lock().unwrap().cgroups.insert(path.clone());
        Ok(Some(path))
    }

    async fn remove_task_cgroup(&self, task_id: &str) -> Result<(), RuntimeError> {
        self.state
            .lock()
            .unwrap()
            .cgroups
            .remove(&format!("/berth/{task_id}"));
        Ok(())
    }

    async fn ensure_host_address(&self, ip: &str) -> Result<(), RuntimeError> {
        self.state
            .lock()
            .unwrap()
            .host_addresses
            .insert(ip.to_string());
        Ok(())
    }

    async fn remove_host_address(&self, ip: &str) -> Result<(), RuntimeError> {
        self.state.lock().unwrap().host_addresses.remove(ip);
        Ok(())
    }

    async fn list_managed(&self, owner: &str) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let s = self.state.lock().unwrap();
        Ok(s.containers
            .values()
            .filter(|c| c.info.labels.get(LABEL_MANAGED).map(String::as_str) == Some(owner))
            .map(|c| c.info.clone())
            .collect())
    }
}

/// A stable hash for made-up ids and digests.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}
