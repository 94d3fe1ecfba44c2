//! Task-level resource limits: one cgroup per task that holds all of its
//! containers (the network sandbox too), with the task's memory as a hard
//! limit and its cpu as a CFS quota, as the ECS agent makes `/ecs/<task-id>`.
//! Containers join it through Docker's `CgroupParent`; their own limits
//! (container `memory`, `memoryReservation`, cpu shares) nest inside it.
//!
//! Docker cannot put limits on a parent cgroup, so they are written into the
//! cgroup filesystem directly. That needs Berth on the Docker host, allowed
//! to write `/sys/fs/cgroup`, and Docker's `cgroupfs` driver; otherwise
//! [`TaskCgroups::detect`] says why and the task's limits fall back to each
//! container.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The cgroup under which every task's cgroup is made.
const PARENT: &str = "berth";
/// CFS period, microseconds.
const PERIOD_US: i64 = 100_000;
/// The smallest quota the kernel accepts, microseconds.
const MIN_QUOTA_US: i64 = 1_000;

/// What a task's cgroup limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskLimits {
    pub memory_bytes: Option<i64>,
    /// ECS CPU units (1024 per vCPU).
    pub cpu_units: Option<i64>,
}

impl TaskLimits {
    /// The CFS quota for `cpu_units`, microseconds per `PERIOD_US`.
    pub fn cpu_quota_us(&self) -> Option<i64> {
        self.cpu_units
            .map(|u| (u * PERIOD_US / 1024).max(MIN_QUOTA_US))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    /// One hierarchy per controller under the root (`memory/`, `cpu/`, …).
    V1,
    /// The unified hierarchy.
    V2,
}

/// The cgroup filesystem, as far as task cgroups go.
#[derive(Debug, Clone)]
pub struct TaskCgroups {
    root: PathBuf,
    layout: Layout,
}

impl TaskCgroups {
    /// Whether task cgroups can be made under `root` (normally
    /// `/sys/fs/cgroup`) for a Docker Engine whose cgroup driver and version
    /// are `driver` and `version`; `Err` says why not.
    pub fn detect(root: &Path, driver: &str, version: &str) -> Result<TaskCgroups, String> {
        if driver != "cgroupfs" {
            return Err(format!(
                "Docker's cgroup driver is {driver:?}; task-level limits need \"cgroupfs\""
            ));
        }
        let layout = match version {
            "2" => Layout::V2,
            _ => Layout::V1,
        };
        let cg = TaskCgroups {
            root: root.to_path_buf(),
            layout,
        };
        cg.prepare_parent()
            .map_err(|e| format!("cannot write cgroups under {}: {e}", root.display()))?;
        Ok(cg)
    }

    /// The `CgroupParent` for a task's containers.
    pub fn path_of(task_id: &str) -> String {
        format!("/{PARENT}/{task_id}")
    }

    fn prepare_parent(&self) -> io::Result<()> {
        match self.layout {
            Layout::V1 => {
                for c in ["memory", "cpu"] {
                    fs::create_dir_all(self.root.join(c).join(PARENT))?;
                }
            }
            Layout::V2 => {
                enable_controllers(&self.root)?;
                let parent = self.root.join(PARENT);
                fs::create_dir_all(&parent)?;
                enable_controllers(&parent)?;
            }
        }
        Ok(())
    }

    /// Make (or update) the task's cgroup with `limits`; its `CgroupParent`.
    pub fn create(&self, task_id: &str, limits: TaskLimits) -> io::Result<String> {
        self.prepare_parent()?;
        match self.layout {
            Layout::V1 => {
                let mem = self.root.join("memory").join(PARENT).join(task_id);
                fs::create_dir_all(&mem)?;
                if let Some(bytes) = limits.memory_bytes {
                    fs::write(mem.join("memory.limit_in_bytes"), bytes.to_string())?;
                    // No swap beyond the limit where swap is accounted.
                    let memsw = mem.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        fs::write(memsw, bytes.to_string())?;
                    }
                }
                let cpu = self.root.join("cpu").join(PARENT).join(task_id);
                fs::create_dir_all(&cpu)?;
                if let Some(q) = limits.cpu_quota_us() {
                    fs::write(cpu.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
                    fs::write(cpu.join("cpu.cfs_quota_us"), q.to_string())?;
                }
            }
            Layout::V2 => {
                let dir = self.root.join(PARENT).join(task_id);
                fs::create_dir_all(&dir)?;
                if let Some(bytes) = limits.memory_bytes {
                    fs::write(dir.join("memory.max"), bytes.to_string())?;
                    let swap = dir.join("memory.swap.max");
                    if swap.exists() {
                        fs::write(swap, "0")?;
                    }
                }
                if let Some(q) = limits.cpu_quota_us() {
                    fs::write(dir.join("cpu.max"), format!("{q} {PERIOD_US}"))?;
                }
                enable_controllers(&dir)?;
            }
        }
        Ok(Self::path_of(task_id))
    }

    /// Remove the task's cgroup in every hierarchy where it exists (the
    /// container runtime makes it in all of them). Its containers must be
    /// gone; a cgroup that does not exist is not an error.
    pub fn remove(&self, task_id: &str) -> io::Result<()> {
        let dirs: Vec<PathBuf> = match self.layout {
            Layout::V1 => fs::read_dir(&self.root)?
                .filter_map(Result::ok)
                // `cpu` may be a link to `cpu,cpuacct`: visit real dirs only.
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path().join(PARENT).join(task_id))
                .collect(),
            Layout::V2 => vec![self.root.join(PARENT).join(task_id)],
        };
        for dir in dirs {
            remove_tree(&dir)?;
        }
        Ok(())
    }

    /// The memory limit the task's cgroup holds, bytes (for `berth doctor`
    /// and tests).
    pub fn memory_limit(&self, task_id: &str) -> io::Result<String> {
        let file = match self.layout {
            Layout::V1 => self
                .root
                .join("memory")
                .join(PARENT)
                .join(task_id)
                .join("memory.limit_in_bytes"),
            Layout::V2 => self.root.join(PARENT).join(task_id).join("memory.max"),
        };
        Ok(fs::read_to_string(file)?.trim().to_string())
    }
}

/// Let children of `dir` use the memory, cpu and pids controllers (v2).
fn enable_controllers(dir: &Path) -> io::Result<()> {
    let available = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let enabled = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    for c in ["memory", "cpu", "pids"] {
        let has = |s: &str| s.split_whitespace().any(|x| x == c);
        if has(&available) && !has(&enabled) {
            fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"))?;
        }
    }
    Ok(())
}

/// rmdir a cgroup and any child cgroups left in it, deepest first. Only
/// directories can be removed from a cgroup filesystem; its files go with
/// them.
fn remove_tree(dir: &Path) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in entries.filter_map(Result::ok) {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path())?;
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_follows_cpu_units() {
        let l = |u| TaskLimits {
            memory_bytes: None,
            cpu_units: Some(u),
        };
        assert_eq!(l(256).cpu_quota_us(), Some(25_000));
        assert_eq!(l(1024).cpu_quota_us(), Some(100_000));
        assert_eq!(l(4096).cpu_quota_us(), Some(400_000));
        assert_eq!(l(2).cpu_quota_us(), Some(MIN_QUOTA_US));
        assert_eq!(TaskLimits::default().cpu_quota_us(), None);
    }

    #[test]
    fn systemd_driver_is_refused() {
        let e = TaskCgroups::detect(Path::new("/nonexistent"), "systemd", "2").unwrap_err();
        assert!(e.contains("cgroupfs"), "{e}");
    }

    /// On an ordinary directory the v1 layout writes the limit files where
    /// the kernel would read them, and removal takes the whole tree.
    #[test]
    fn v1_layout_on_a_plain_directory() {
        let root = std::env::temp_dir().join(format!("berth-cgroup-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for c in ["memory", "cpu", "pids"] {
            fs::create_dir_all(root.join(c)).unwrap();
        }
        let cg = TaskCgroups::detect(&root, "cgroupfs", "1").unwrap();
        let limits = TaskLimits {
            memory_bytes: Some(512 << 20),
            cpu_units: Some(512),
        };
        assert_eq!(cg.create("t1", limits).unwrap(), "/berth/t1");
        assert_eq!(cg.memory_limit("t1").unwrap(), (512u64 << 20).to_string());
        let quota = fs::read_to_string(root.join("cpu/berth/t1/cpu.cfs_quota_us")).unwrap();
        assert_eq!(quota, "50000");
        // The container runtime adds the task's cgroup in other hierarchies
        // and a child per container. Plain files cannot be rmdir'd, so the
        // test keeps to directories.
        fs::create_dir_all(root.join("pids/berth/t1/c1")).unwrap();
        fs::remove_file(root.join("memory/berth/t1/memory.limit_in_bytes")).unwrap();
        fs::remove_file(root.join("cpu/berth/t1/cpu.cfs_quota_us")).unwrap();
        fs::remove_file(root.join("cpu/berth/t1/cpu.cfs_period_us")).unwrap();
        cg.remove("t1").unwrap();
        for c in ["memory", "cpu", "pids"] {
            assert!(!root.join(c).join("berth/t1").exists(), "{c}");
        }
        cg.remove("t1").unwrap();
        fs::remove_dir_all(&root).unwrap();
    }
}
