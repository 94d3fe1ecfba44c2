//! The container runtime, behind a trait so the task lifecycle can be tested
//! without Docker. `docker.rs` implements it on Docker Engine (bollard).
//!
//! Every container Berth creates carries labels naming its cluster, task and
//! container (`LABEL_*`), so `docker ps` shows what belongs to whom and a
//! restarted server can find what it left behind.

pub mod cgroup;
pub mod docker;
pub mod fake;
pub mod hostaddr;
pub mod pause;

pub use cgroup::TaskLimits;

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;

/// Its value is the owning installation's id (see `Store::owner_id`), so
/// several Berth servers can share one Docker Engine without touching each
/// other's containers.
pub const LABEL_MANAGED: &str = "berth.managed";
pub const LABEL_CLUSTER: &str = "berth.cluster";
pub const LABEL_TASK: &str = "berth.task";
pub const LABEL_CONTAINER: &str = "berth.container";
/// The name the per-task network sandbox (the "pause" container) carries in
/// `LABEL_CONTAINER`.
pub const PAUSE_CONTAINER: &str = "~pause";
/// Set on the network sandboxes made ahead of their tasks (the agent's
/// pool): they carry no `LABEL_TASK`, and the task that takes one records
/// it as its sandbox and gives it its name.
pub const LABEL_POOL: &str = "berth.pool";

/// The Docker network tasks get their addresses on: FARGATE and `awsvpc`
/// tasks' sandboxes, `host` tasks' sandboxes, and each container of a
/// `bridge` task.
pub const TASK_NETWORK: &str = "berth-tasks";

/// The network interface that holds the container instances' addresses
/// (`Runtime::ensure_host_address`): a dummy interface, or an empty bridge
/// where the kernel has no dummy driver.
pub const HOST_INTERFACE: &str = "berth0";

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Pull(String),
    #[error("{0}")]
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkAttach {
    /// Join a named network.
    Network(String),
    /// Share another container's network namespace.
    Container(String),
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`, as ECS and Docker both write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    pub fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            _ => None,
        }
    }
}

/// A container port to publish on a host address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    pub container_port: u16,
    pub protocol: Protocol,
    /// The address the port is published on (a container instance's).
    pub host_ip: String,
    /// `None`: the runtime chooses a free port (ECS's dynamic host port).
    pub host_port: Option<u16>,
}

/// A published port as the runtime bound it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortBinding {
    pub container_port: u16,
    pub protocol: Protocol,
    pub host_ip: String,
    pub host_port: u16,
}

/// A name under which a container reaches another on the same network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The runtime name of the container linked to.
    pub container: String,
    pub alias: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    /// `["CMD", …]` or `["CMD-SHELL", "…"]`, as ECS and Docker both write it.
    pub test: Vec<String>,
    pub interval_s: i64,
    pub timeout_s: i64,
    pub retries: i64,
    pub start_period_s: i64,
}

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub labels: HashMap<String, String>,
    pub network: Option<NetworkAttach>,
    /// Hard memory limit, bytes.
    pub memory: Option<i64>,
    /// Soft memory limit, bytes.
    pub memory_reservation: Option<i64>,
    pub cpu_shares: Option<i64>,
    /// CPU quota in billionths of a CPU.
    pub nano_cpus: Option<i64>,
    pub readonly_rootfs: bool,
    pub init: bool,
    /// (name, soft, hard)
    pub ulimits: Vec<(String, i64, i64)>,
    pub stop_timeout_s: Option<i64>,
    pub health: Option<HealthSpec>,
    /// The task's cgroup (`Runtime::task_cgroup`), when it has one.
    pub cgroup_parent: Option<String>,
    /// Ports to publish; only with `NetworkAttach::Network`.
    pub ports: Vec<PublishedPort>,
    /// Aliases of other containers, seen only by this one; only with
    /// `NetworkAttach::Network`. The container linked to need not exist yet.
    pub links: Vec<Link>,
    /// The image's platform (`linux/arm64`) when it is not this machine's
    /// own; `None`: the engine's default.
    pub platform: Option<String>,
}

/// What the runtime reports about a container.
#[derive(Debug, Clone, Default)]
pub struct ContainerInfo {
    pub id: String,
    pub labels: HashMap<String, String>,
    pub running: bool,
    /// created, running, exited, dead…
    pub state: String,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// starting, healthy, unhealthy
    pub health: Option<String>,
    /// Address and MAC on `TASK_NETWORK`, when attached there.
    pub ip: Option<String>,
    pub mac: Option<String>,
    pub image_id: Option<String>,
    /// Its published ports as bound (dynamic ones resolved); empty unless
    /// it is running.
    pub ports: Vec<PortBinding>,
}

/// Credentials for a registry, as `docker login` would give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullAuth {
    /// The registry's host (`127.0.0.1:4566`).
    pub server: String,
    pub username: String,
    pub password: String,
}

#[async_trait]
pub trait Runtime: Send + Sync {
    /// Create the network if it does not exist.
    async fn ensure_network(&self, name: &str) -> Result<(), RuntimeError>;
    /// The local image's digest (or id) if the image is present.
    async fn local_image(&self, image: &str) -> Result<Option<String>, RuntimeError>;
    /// Make `image` from a root filesystem tar (as `docker import`), with
    /// Dockerfile-style `changes` such as `CMD ["/pause"]`, unless present.
    async fn ensure_imported(
        &self,
        image: &str,
        tar: Vec<u8>,
        changes: &[&str],
    ) -> Result<(), RuntimeError>;
    /// The architecture (`amd64`, `arm64`, as Docker names it) a local
    /// image was built for; `None` when the image is not present, or when
    /// it does not say.
    async fn image_architecture(&self, image: &str) -> Result<Option<String>, RuntimeError>;
    /// Pull an image, the variant for `platform` (`linux/arm64`) when given,
    /// with the registry credentials `auth` when given; the digest (or id)
    /// of what was pulled.
    async fn pull(
        &self,
        image: &str,
        platform: Option<&str>,
        auth: Option<&PullAuth>,
    ) -> Result<String, RuntimeError>;
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError>;
    async fn start(&self, id: &str) -> Result<(), RuntimeError>;
    /// SIGTERM, then SIGKILL after `timeout_s`; returns when it has stopped.
    async fn stop(&self, id: &str, timeout_s: i64) -> Result<(), RuntimeError>;
    async fn remove(&self, id: &str) -> Result<(), RuntimeError>;
    /// Give a container another name.
    async fn rename(&self, id: &str, name: &str) -> Result<(), RuntimeError>;
    /// `None` when the container does not exist.
    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError>;
    /// The container's output (stdout and stderr), one `(epoch ms, line)` per
    /// line, from `since_s` (epoch seconds) on, following it until the
    /// container stops.
    fn logs(
        &self,
        id: &str,
        since_s: i64,
    ) -> BoxStream<'static, Result<(i64, String), RuntimeError>>;
    /// Make the cgroup that holds all of a task's containers and bounds them
    /// by the task's limits (see `cgroup`): the `cgroup_parent` for its
    /// containers, or `None` where this runtime cannot make one, and the
    /// limits fall back to each container.
    async fn task_cgroup(
        &self,
        task_id: &str,
        limits: TaskLimits,
    ) -> Result<Option<String>, RuntimeError>;
    /// Remove a task's cgroup once its containers are gone.
    async fn remove_task_cgroup(&self, task_id: &str) -> Result<(), RuntimeError>;
    /// Make `ip` (IPv4) an address of this machine, so ports can be
    /// published on it: a container instance's address. Added to
    /// `HOST_INTERFACE` (created when missing) unless the address is local
    /// already. Idempotent.
    async fn ensure_host_address(&self, ip: &str) -> Result<(), RuntimeError>;
    /// Take an address added by `ensure_host_address` away again; nothing
    /// when it is not on `HOST_INTERFACE`.
    async fn remove_host_address(&self, ip: &str) -> Result<(), RuntimeError>;
    /// Every container whose `LABEL_MANAGED` is `owner`, running or not.
    async fn list_managed(&self, owner: &str) -> Result<Vec<ContainerInfo>, RuntimeError>;
}

/// Where the kernel's `binfmt_misc` registrations are: an interpreter
/// registered there (QEMU, from Debian's `qemu-user-static`) runs binaries of
/// another architecture.
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// Docker's name (`amd64`, `arm64`) for an architecture as Rust (`x86_64`,
/// `aarch64`), ECS (`x86_64`, `arm64`, `ARM64`) or Docker write it; any other
/// name lowercased.
pub fn docker_arch(arch: &str) -> String {
    match arch.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" | "amd64" => "amd64".to_string(),
        "aarch64" | "arm64" => "arm64".to_string(),
        other => other.to_string(),
    }
}

/// This machine's own architecture, as Docker names it.
pub fn native_arch() -> String {
    docker_arch(std::env::consts::ARCH)
}

/// The `binfmt_misc` entry QEMU registers for an architecture (Docker's
/// name): `qemu-aarch64` for `arm64`, `qemu-x86_64` for `amd64`.
pub fn binfmt_entry(arch: &str) -> Option<&'static str> {
    match arch {
        "arm64" => Some("qemu-aarch64"),
        "amd64" => Some("qemu-x86_64"),
        _ => None,
    }
}

/// Whether binaries of `arch` (Docker's name) run here through an emulator
/// registered and enabled under `binfmt_dir` (`BINFMT_DIR`): its entry's
/// first line is `enabled`.
pub fn emulation_registered(binfmt_dir: &Path, arch: &str) -> bool {
    let Some(entry) = binfmt_entry(arch) else {
        return false;
    };
    std::fs::read_to_string(binfmt_dir.join(entry))
        .is_ok_and(|s| s.lines().next().map(str::trim) == Some("enabled"))
}

/// The architectures (Docker's names) whose containers run on this machine:
/// its own, then those it emulates (`binfmt_dir` is `BINFMT_DIR`).
pub fn runnable_archs(native: &str, binfmt_dir: &Path) -> Vec<(String, bool)> {
    let mut out = vec![(native.to_string(), false)];
    for arch in ["amd64", "arm64"] {
        if arch != native && emulation_registered(binfmt_dir, arch) {
            out.push((arch.to_string(), true));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architecture_names() {
        assert_eq!(docker_arch("x86_64"), "amd64");
        assert_eq!(docker_arch("aarch64"), "arm64");
        assert_eq!(docker_arch("ARM64"), "arm64");
        assert_eq!(docker_arch("amd64"), "amd64");
        assert_eq!(docker_arch("riscv64"), "riscv64");
        assert!(["amd64", "arm64"].contains(&native_arch().as_str()));
    }

    #[test]
    fn emulation_from_binfmt_entries() {
        let dir = std::env::temp_dir().join(format!("berth-binfmt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!emulation_registered(&dir, "arm64"));
        assert_eq!(runnable_archs("amd64", &dir), vec![("amd64".into(), false)]);
        std::fs::write(
            dir.join("qemu-aarch64"),
            "disabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n",
        )
        .unwrap();
        assert!(!emulation_registered(&dir, "arm64"));
        std::fs::write(
            dir.join("qemu-aarch64"),
            "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\n",
        )
        .unwrap();
        assert!(emulation_registered(&dir, "arm64"));
        assert!(!emulation_registered(&dir, "amd64"));
        assert!(!emulation_registered(&dir, "s390x"));
        assert_eq!(
            runnable_archs("amd64", &dir),
            vec![("amd64".into(), false), ("arm64".into(), true)]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
