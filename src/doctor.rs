//! `berth doctor`: checks the prerequisites and says plainly what to fix.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// One check's outcome.
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// Works, but deserves a look (printed `WARN`; not a failure).
    pub warn: bool,
    pub detail: String,
}

/// The Docker Engine socket: `DOCKER_HOST` when it is a `unix://` path, else
/// `/var/run/docker.sock`.
pub fn docker_socket() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => h.trim_start_matches("unix://").to_string(),
        _ => "/var/run/docker.sock".to_string(),
    }
}

/// GET `path` from the engine over its socket; the JSON it answers.
fn docker_get(socket: &str, path: &str) -> Result<serde_json::Value, String> {
    let mut s =
        UnixStream::connect(socket).map_err(|e| format!("cannot connect to {socket}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).map_err(|_| "the engine's answer was not understood".to_string())
}

/// Ask the engine for its version over its socket.
pub fn docker_version(socket: &str) -> Result<String, String> {
    let v = docker_get(socket, "/version")?;
    Ok(v["Version"].as_str().unwrap_or("unknown").to_string())
}

/// Whether tasks get a cgroup of their own (task-level cpu and memory), or
/// why their limits fall back to each container.
fn task_limits_check(socket: &str) -> Check {
    let detail = match docker_get(socket, "/info") {
        Ok(info) => {
            let field = |k: &str| info[k].as_str().unwrap_or_default().to_string();
            match crate::runtime::cgroup::TaskCgroups::detect(
                Path::new("/sys/fs/cgroup"),
                &field("CgroupDriver"),
                &field("CgroupVersion"),
            ) {
                Ok(_) => "each task gets a cgroup: task cpu and memory bound all its containers together".to_string(),
                Err(why) => format!("{why}; task cpu and memory are applied to each container instead (run Berth as root on the Docker host, with Docker's cgroupfs driver, for task-level limits)"),
            }
        }
        Err(e) => format!("not checked: {e}"),
    };
    // Degraded, not broken: tasks still run with per-container limits.
    Check {
        name: "task limits",
        ok: true,
        warn: false,
        detail,
    }
}

/// Which architectures tasks run for here: the machine's own, and those
/// emulated through QEMU registered with binfmt_misc under `binfmt_dir`.
/// Informational: a machine without emulation runs its own architecture's
/// tasks.
fn architectures_check(native: &str, binfmt_dir: &Path) -> Check {
    use crate::runtime::{binfmt_entry, runnable_archs};
    let runnable = runnable_archs(native, binfmt_dir);
    let listed: Vec<String> = runnable
        .iter()
        .map(|(arch, emulated)| match (emulated, binfmt_entry(arch)) {
            (true, Some(entry)) => format!("linux/{arch} (emulated: binfmt {entry})"),
            _ => format!("linux/{arch} (native)"),
        })
        .collect();
    let mut detail = format!("tasks run here for {}", listed.join(", "));
    for other in ["amd64", "arm64"] {
        if runnable.iter().any(|(arch, _)| arch == other) {
            continue;
        }
        let ecs_name = if other == "amd64" { "x86_64" } else { other };
        detail.push_str(&format!(
            "; {ecs_name} tasks (instance types such as {}) need images built for {other} and emulation to run: install `qemu-user-static` (Debian package, with `binfmt-support`) to register it",
            if other == "arm64" { "t4g, m7g" } else { "t3, m7i" }
        ));
    }
    if runnable.len() == 1 && !binfmt_dir.join("status").exists() {
        detail.push_str(&format!(
            " (binfmt_misc is not mounted at {}: `mount -t binfmt_misc binfmt_misc {}`)",
            binfmt_dir.display(),
            binfmt_dir.display()
        ));
    }
    Check {
        name: "platforms",
        ok: true,
        warn: false,
        detail,
    }
}

/// Whether load balancers' DNS names can be made to resolve on this
/// machine: the server keeps a block of `hosts` (its `--hosts-file`), which
/// the resolver reads when `nsswitch` (the contents of
/// `/etc/nsswitch.conf`, if any) lists `files` for hosts. Degraded, not
/// broken: load balancers are still reached by address.
fn load_balancer_names_check(hosts: &Path, nsswitch: Option<&str>) -> Check {
    let writable = std::fs::OpenOptions::new().append(true).open(hosts);
    let files_read = nsswitch.is_none_or(|conf| {
        conf.lines()
            .map(str::trim)
            .find(|l| l.starts_with("hosts:"))
            .is_none_or(|l| l.split_whitespace().any(|w| w == "files"))
    });
    let detail = match (writable, files_read) {
        (Ok(_), true) => format!(
            "load balancers' DNS names resolve on this machine (berth server keeps a block of {})",
            hosts.display()
        ),
        (Err(e), _) => format!(
            "load balancers' DNS names cannot be made to resolve: {} is not writable ({e}); reach them by address (`berth lb`), or run berth server as root or with --hosts-file pointing at a file the resolver reads",
            hosts.display()
        ),
        (Ok(_), false) => format!(
            "load balancers' DNS names will not resolve: /etc/nsswitch.conf does not list `files` for hosts, so {} is not read; add it, or reach load balancers by address (`berth lb`)",
            hosts.display()
        ),
    };
    Check {
        name: "lb names",
        ok: true,
        warn: false,
        detail,
    }
}

pub fn run_checks(data_dir: &Path, listen: &str) -> Vec<Check> {
    let mut checks = Vec::new();
    let socket = docker_socket();
    checks.push(match docker_version(&socket) {
        Ok(v) => Check { name: "docker", ok: true, warn: false, detail: format!("Docker Engine {v} answers on {socket}") },
        Err(e) => Check {
            name: "docker",
            ok: false, warn: false,
            detail: format!("Docker Engine is not reachable ({e}). Install it with `apt-get install docker.io` and start it (`dockerd &` or `systemctl start docker`); scripts/setup does both."),
        },
    });
    checks.push(task_limits_check(&socket));
    checks.push(architectures_check(
        &crate::runtime::native_arch(),
        Path::new(crate::runtime::BINFMT_DIR),
    ));
    checks.push(load_balancer_names_check(
        Path::new("/etc/hosts"),
        std::fs::read_to_string("/etc/nsswitch.conf")
            .ok()
            .as_deref(),
    ));
    let probe = data_dir.join(".berth-doctor-probe");
    let writable = std::fs::create_dir_all(data_dir)
        .and_then(|_| std::fs::write(&probe, b"ok"))
        .and_then(|_| std::fs::remove_file(&probe));
    checks.push(match writable {
        Ok(()) => Check {
            name: "data dir",
            ok: true,
            warn: false,
            detail: format!("{} is writable", data_dir.display()),
        },
        Err(e) => Check {
            name: "data dir",
            ok: false,
            warn: false,
            detail: format!(
                "{} is not writable ({e}); choose another with --data-dir or fix its permissions",
                data_dir.display()
            ),
        },
    });
    checks.push(exposure_check(listen));
    checks.push(match TcpListener::bind(listen) {
        Ok(_) => Check { name: "port", ok: true, warn: false, detail: format!("{listen} is free") },
        // The usual state once `scripts/start` has run: Berth holds it.
        Err(_) if berth_serving(listen).is_some() => Check {
            name: "port",
            ok: true, warn: false,
            detail: format!(
                "Berth is serving on {listen}: {}",
                berth_serving(listen).unwrap_or_default()
            ),
        },
        Err(e) => Check {
            name: "port",
            ok: false, warn: false,
            detail: format!("cannot listen on {listen} ({e}) and what holds it is not Berth; stop it or pass --listen HOST:PORT"),
        },
    });
    checks
}

/// Whether the well-known keys (`test`/`test`, always the root of account
/// 000000000000) would be usable from other machines: the server listening
/// beyond loopback. Everything, secrets included, is then open to anyone
/// who reaches the port.
fn exposure_check(listen: &str) -> Check {
    let host = listen.rsplit_once(':').map_or(listen, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    // The well-known key is always configured (src/config.rs).
    let (warn, detail) = if loopback {
        (
            false,
            format!("{listen} is reachable from this machine only"),
        )
    } else {
        (true, format!("{listen} is reachable from other machines, and the well-known keys test/test are the root of account 000000000000: anyone who reaches the port may do anything, read every secret included. Listen on 127.0.0.1, or put Berth behind a firewall"))
    };
    Check {
        name: "exposure",
        ok: true,
        warn,
        detail,
    }
}

/// GET `path` from an HTTP server at `addr`: the body, when it answers 200.
fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let sock = addr.to_socket_addrs().ok()?.next()?;
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?;
    (status == "200").then(|| body.to_string())
}

/// What the Berth server on `addr` serves (`None` when no Berth answers
/// there): each service with the number of its operations.
pub fn berth_serving(addr: &str) -> Option<String> {
    if http_get(addr, "/_berth/health")?.trim() != "ok" {
        return None;
    }
    let listing: serde_json::Value =
        serde_json::from_str(&http_get(addr, "/_berth/services").unwrap_or_default()).ok()?;
    let served: Vec<String> = listing["services"]
        .as_array()?
        .iter()
        .map(|s| {
            let n = s["operations"].as_array().map_or(0, Vec::len);
            format!(
                "{} ({n} operation{})",
                s["name"].as_str().unwrap_or("?"),
                if n == 1 { "" } else { "s" }
            )
        })
        .collect();
    Some(format!(
        "{}; GET /_berth/services lists every operation",
        served.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_balancer_names_say_why_they_cannot_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
        let ok = load_balancer_names_check(&hosts, Some("passwd: files\nhosts: files dns\n"));
        assert!(
            ok.detail.contains("resolve on this machine"),
            "{}",
            ok.detail
        );
        let missing = load_balancer_names_check(&dir.path().join("no/such/hosts"), None);
        assert!(
            missing.detail.contains("is not writable"),
            "{}",
            missing.detail
        );
        let unread = load_balancer_names_check(&hosts, Some("hosts: dns\n"));
        assert!(
            unread.detail.contains("does not list `files`"),
            "{}",
            unread.detail
        );
        assert_eq!(
            std::fs::read_to_string(&hosts).unwrap(),
            "127.0.0.1 localhost\n"
        );
    }

    #[test]
    fn listening_beyond_loopback_with_the_test_keys_is_a_warning() {
        assert!(!exposure_check("127.0.0.1:4566").warn);
        assert!(!exposure_check("[::1]:4566").warn);
        assert!(!exposure_check("localhost:4566").warn);
        let open = exposure_check("0.0.0.0:4566");
        assert!(open.warn && open.ok, "{}", open.detail);
        assert!(open.detail.contains("test/test"));
        assert!(exposure_check("10.0.0.5:4566").warn);
    }

    #[test]
    fn architectures_are_informational() {
        let dir = std::env::temp_dir().join(format!("berth-doctor-binfmt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = architectures_check("amd64", &dir);
        assert!(c.ok);
        assert!(
            c.detail
                .starts_with("tasks run here for linux/amd64 (native);"),
            "{}",
            c.detail
        );
        assert!(c.detail.contains("arm64 tasks"), "{}", c.detail);
        assert!(c.detail.contains("images built for arm64"), "{}", c.detail);
        assert!(c.detail.contains("qemu-user-static"), "{}", c.detail);
        std::fs::write(
            dir.join("qemu-aarch64"),
            "enabled\ninterpreter /usr/bin/qemu-aarch64-static\n",
        )
        .unwrap();
        let c = architectures_check("amd64", &dir);
        assert!(c.ok);
        assert_eq!(
            c.detail,
            "tasks run here for linux/amd64 (native), linux/arm64 (emulated: binfmt qemu-aarch64)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
