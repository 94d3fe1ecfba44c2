//! FARGATE → EC2: `bridge` (or the mode asked), host ports dynamic or static,
//! localhost between containers replaced by links in `bridge`, memory where
//! EC2 needs it, and what is Fargate-only removed.

use serde_json::{json, Map, Value};

use super::{container_name, list, task_size, Findings, NetworkMode, Options};

/// The soft memory reservation given to a container when nothing says how
/// much it needs.
const DEFAULT_RESERVATION: i64 = 128;

/// Convert `td` (already checked) to EC2.
pub(super) fn convert(td: &mut Map<String, Value>, opts: &Options, f: &mut Findings) {
    let mode = opts.network_mode.unwrap_or(NetworkMode::Bridge);
    let old = td
        .get("networkMode")
        .and_then(Value::as_str)
        .unwrap_or("bridge")
        .to_string();
    let windows = td
        .get("runtimePlatform")
        .and_then(|r| r.get("operatingSystemFamily"))
        .and_then(Value::as_str)
        .is_some_and(|os| os.starts_with("WINDOWS"));
    if windows && mode != NetworkMode::Awsvpc {
        f.blocker(
            "networkMode",
            format!("{} on Windows", mode.as_str()),
            "Windows containers on EC2 support only the default (NAT) and awsvpc network \
             modes; convert with --network-mode awsvpc",
        );
    }
    if old != mode.as_str() {
        let why = match mode {
            NetworkMode::Bridge => {
                "EC2 tasks can share the instance's address instead of taking an ENI each: in \
                 bridge mode each container has its own network namespace on the Docker \
                 bridge and its ports are published on the instance's address (no ENI per \
                 task, so an instance holds more tasks)"
            }
            NetworkMode::Host => {
                "asked with --network-mode host: the task's containers use the instance's \
                 network directly, each containerPort taken on the instance (one such task \
                 per instance and port)"
            }
            NetworkMode::Awsvpc => {
                "asked with --network-mode awsvpc: each task takes an ENI of the instance, as \
                 on Fargate"
            }
        };
        f.change("networkMode", format!("{old} → {}", mode.as_str()), why);
        td.insert("networkMode".into(), json!(mode.as_str()));
    } else if mode == NetworkMode::Awsvpc {
        f.note(
            "networkMode",
            "awsvpc kept",
            "on EC2 each awsvpc task takes one of the instance's ENIs (the instance type \
             limits how many; ENI trunking raises it), and RunTask still needs a \
             networkConfiguration",
        );
    }
    if let Some(e) = td.remove("ephemeralStorage") {
        f.change(
            "ephemeralStorage",
            format!("removed ({e})"),
            "ephemeralStorage sizes a Fargate task's own storage; EC2 tasks use the container \
             instance's disk, so size the instance's volume instead",
        );
    }
    ports(td, mode, opts.static_ports, f);
    if mode == NetworkMode::Bridge {
        localhost_to_links(td, f);
    }
    memory(td, opts.drop_task_size, f);
}

/// Host ports as the mode needs them: dynamic (0) or static in bridge, equal
/// to the container port in host and awsvpc.
fn ports(td: &mut Map<String, Value>, mode: NetworkMode, static_ports: bool, f: &mut Findings) {
    let Some(Value::Array(cs)) = td.get_mut("containerDefinitions") else {
        return;
    };
    for c in cs.iter_mut().filter_map(Value::as_object_mut) {
        let name = container_name(c);
        let Some(Value::Array(mappings)) = c.get_mut("portMappings") else {
            continue;
        };
        for (j, p) in mappings.iter_mut().enumerate() {
            let Some(p) = p.as_object_mut() else { continue };
            let Some(cp) = p.get("containerPort").and_then(Value::as_i64) else {
                continue;
            };
            let old = p.get("hostPort").and_then(Value::as_i64);
            let (new, why) = match mode {
                NetworkMode::Bridge if static_ports => (
                    cp,
                    format!(
                        "--static-ports: published on the instance's port {cp}, so one such \
                         task per instance"
                    ),
                ),
                NetworkMode::Bridge => (
                    0,
                    "dynamic host port: Docker picks a free port on the instance (ephemeral \
                     range), so many copies of the task fit on one instance; the port is \
                     reported in the task's networkBindings, and a load balancer target group \
                     of type instance follows it"
                        .to_string(),
                ),
                NetworkMode::Host | NetworkMode::Awsvpc => (
                    cp,
                    format!(
                        "in {} mode the host port must equal the container port",
                        mode.as_str()
                    ),
                ),
            };
            if old != Some(new) {
                let was = old.map_or("absent".to_string(), |o| o.to_string());
                let now = if new == 0 {
                    "0 (dynamic)".to_string()
                } else {
                    new.to_string()
                };
                f.change(
                    format!("containerDefinitions[{name}].portMappings[{j}].hostPort"),
                    format!("{was} → {now}"),
                    &why,
                );
                p.insert("hostPort".into(), json!(new));
            }
        }
    }
}

/// In bridge mode containers no longer share localhost: an environment value
/// that reaches another container of the task at `localhost:PORT` is rewritten
/// to that container's name, with a link to it.
fn localhost_to_links(td: &mut Map<String, Value>, f: &mut Findings) {
    let Some(Value::Array(cs)) = td.get_mut("containerDefinitions") else {
        return;
    };
    if cs.len() < 2 {
        return;
    }
    // containerPort → the containers listening on it.
    let owners: Vec<(i64, String)> = cs
        .iter()
        .filter_map(Value::as_object)
        .flat_map(|c| {
            let name = container_name(c);
            list(c, "portMappings")
                .iter()
                .filter_map(|p| p.get("containerPort").and_then(Value::as_i64))
                .map(move |p| (p, name.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut links: Vec<(String, Vec<String>)> = cs
        .iter()
        .filter_map(Value::as_object)
        .map(|c| {
            (
                container_name(c),
                list(c, "links")
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|l| l.split(':').next().unwrap_or(l).to_string())
                    .collect(),
            )
        })
        .collect();
    for c in cs.iter_mut().filter_map(Value::as_object_mut) {
        let name = container_name(c);
        let Some(Value::Array(env)) = c.get_mut("environment") else {
            continue;
        };
        let mut added: Vec<String> = Vec::new();
        for e in env.iter_mut().filter_map(Value::as_object_mut) {
            let var = e
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let Some(value) = e.get("value").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            let path = format!("containerDefinitions[{name}].environment[{var}]");
            let (new, unresolved) = rewrite_localhost(&value, |port| {
                let others: Vec<&String> = owners
                    .iter()
                    .filter(|(p, _)| *p == i64::from(port))
                    .map(|(_, n)| n)
                    .collect();
                match others.as_slice() {
                    [one] if **one != name && !reaches(&links, one, &name) => Some((*one).clone()),
                    _ => None,
                }
            });
            if let Some((new, targets)) = new {
                f.change(
                    &path,
                    format!("{value} → {new}"),
                    "in bridge mode each container has its own localhost; the container \
                     listening on that port is reached by its name through a link",
                );
                e.insert("value".into(), json!(new));
                for t in targets {
                    if !added.contains(&t) {
                        added.push(t);
                    }
                }
            }
            if unresolved {
                f.note(
                    &path,
                    format!("{value} uses localhost"),
                    "in bridge mode each container has its own localhost: if this points at \
                     another container of the task, add a link to it (or convert with \
                     --network-mode host or awsvpc)",
                );
            }
        }
        if added.is_empty() {
            continue;
        }
        let mut new_links = list(c, "links").to_vec();
        for t in added {
            let linked = new_links
                .iter()
                .filter_map(Value::as_str)
                .any(|l| l.split(':').next() == Some(t.as_str()));
            if !linked {
                f.change(
                    format!("containerDefinitions[{name}].links"),
                    format!("added {t}"),
                    "a bridge-mode container reaches another container of the task by name \
                     only through a link (ECS also starts the linked container first)",
                );
                new_links.push(json!(t));
            }
        }
        if let Some((_, ls)) = links.iter_mut().find(|(n, _)| *n == name) {
            *ls = new_links
                .iter()
                .filter_map(Value::as_str)
                .map(|l| l.split(':').next().unwrap_or(l).to_string())
                .collect();
        }
        c.insert("links".into(), Value::Array(new_links));
    }
}

/// Whether container `from` already reaches `to` through links (directly or
/// not), so that a link from `to` to `from` would close a cycle.
fn reaches(links: &[(String, Vec<String>)], from: &str, to: &str) -> bool {
    let mut seen = vec![from.to_string()];
    let mut stack = vec![from.to_string()];
    while let Some(n) = stack.pop() {
        if n == to {
            return true;
        }
        for l in links.iter().filter(|(c, _)| *c == n).flat_map(|(_, ls)| ls) {
            if !seen.contains(l) {
                seen.push(l.clone());
                stack.push(l.clone());
            }
        }
    }
    false
}

/// `value` with `localhost:PORT` / `127.0.0.1:PORT` replaced by the name of
/// the container `owner(PORT)` names: the new value and the containers it
/// now names, if any; and whether some use of localhost was left.
#[allow(clippy::type_complexity)]
pub(crate) fn rewrite_localhost(
    value: &str,
    owner: impl Fn(u16) -> Option<String>,
) -> (Option<(String, Vec<String>)>, bool) {
    let bytes = value.as_bytes();
    let mut out = String::new();
    let mut targets = Vec::new();
    let mut unresolved = false;
    let mut i = 0;
    'scan: while i < value.len() {
        for local in ["localhost", "127.0.0.1"] {
            if value[i..].starts_with(local) {
                let end = i + local.len();
                let before_ok = i == 0 || b"/@,; =(\"'".contains(&bytes[i - 1]);
                let after_ok = end == value.len() || b":/,; ?)\"'".contains(&bytes[end]);
                if before_ok && after_ok {
                    let digits: String = value[end..]
                        .strip_prefix(':')
                        .unwrap_or("")
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    match digits.parse::<u16>().ok().and_then(&owner) {
                        Some(t) => {
                            out.push_str(&t);
                            if !targets.contains(&t) {
                                targets.push(t);
                            }
                        }
                        None => {
                            out.push_str(local);
                            unresolved = true;
                        }
                    }
                    i = end;
                    continue 'scan;
                }
            }
        }
        let ch = value[i..].chars().next().unwrap_or_default();
        out.push(ch);
        i += ch.len_utf8();
    }
    ((!targets.is_empty()).then_some((out, targets)), unresolved)
}

/// EC2 needs a task memory or each container's memory/memoryReservation.
/// The task size is kept (a hard limit for the whole task, as on Fargate)
/// unless `drop` asks to remove it; then, and whenever there is no task
/// memory, each container without one gets a memoryReservation.
fn memory(td: &mut Map<String, Value>, drop: bool, f: &mut Findings) {
    let (_, task_memory) = task_size(td);
    if drop {
        for k in ["cpu", "memory"] {
            if let Some(v) = td.remove(k) {
                f.change(
                    k,
                    format!("removed ({v})"),
                    "--drop-task-size: on EC2 the task-level size is optional; without it \
                     the containers' own settings are what placement reserves and what \
                     limits them",
                );
            }
        }
    } else if task_memory.is_some() {
        return;
    }
    let Some(Value::Array(cs)) = td.get_mut("containerDefinitions") else {
        return;
    };
    let has_memory = |c: &Map<String, Value>| {
        c.get("memory").is_some_and(Value::is_i64)
            || c.get("memoryReservation").is_some_and(Value::is_i64)
    };
    let explicit: i64 = cs
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|c| {
            c.get("memoryReservation")
                .or_else(|| c.get("memory"))
                .and_then(Value::as_i64)
        })
        .sum();
    let without = cs
        .iter()
        .filter_map(Value::as_object)
        .filter(|c| !has_memory(c))
        .count() as i64;
    if without == 0 {
        return;
    }
    let (share, why) = match task_memory {
        Some(tm) if (tm as i64 - explicit) / without >= 6 => (
            (tm as i64 - explicit) / without,
            format!(
                "EC2 needs a task memory or each container's memory/memoryReservation; this \
                 is the container's share of the task's {tm} MiB (a soft reservation: \
                 placement reserves it, the container may use more when the instance has it)"
            ),
        ),
        _ => (
            DEFAULT_RESERVATION,
            format!(
                "EC2 needs a task memory or each container's memory/memoryReservation, and \
                 nothing says how much this container needs: {DEFAULT_RESERVATION} MiB, a soft \
                 reservation (the container may use more when the instance has it)"
            ),
        ),
    };
    for c in cs.iter_mut().filter_map(Value::as_object_mut) {
        if has_memory(c) {
            continue;
        }
        let name = container_name(c);
        c.insert("memoryReservation".into(), json!(share));
        f.change(
            format!("containerDefinitions[{name}].memoryReservation"),
            format!("added {share}"),
            &why,
        );
    }
}
