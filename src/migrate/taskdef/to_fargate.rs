//! EC2 → FARGATE: `awsvpc`, links replaced by localhost, host ports aligned,
//! a valid Fargate size (with its price), and the blockers Fargate refuses.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{container_name, is_set, list, task_size, Findings, Options};
use crate::catalog::Arch;
use crate::ecs::taskdef_rules::fargate_round_up;
use crate::pricing;

/// Log drivers a Fargate task may use.
const FARGATE_LOG_DRIVERS: &[&str] = &["awslogs", "splunk", "awsfirelens"];

/// Container parameters Fargate does not take: (field, why).
const NOT_ON_FARGATE: &[(&str, &str)] = &[
    ("disableNetworking", "Fargate tasks always have their awsvpc network interface"),
    ("dnsServers", "Fargate tasks use the VPC's DNS resolver; DNS servers cannot be set per container"),
    ("dnsSearchDomains", "Fargate tasks use the VPC's DHCP options; search domains cannot be set per container"),
    ("dockerSecurityOptions", "Fargate does not take Docker security options (SELinux, AppArmor labels)"),
    ("extraHosts", "Fargate does not take extra /etc/hosts entries; use DNS (for example Route 53 private zones or Service Connect)"),
];

/// Convert `td` (already checked) to FARGATE.
pub(super) fn convert(td: &mut Map<String, Value>, opts: &Options, f: &mut Findings) {
    let mode = td
        .get("networkMode")
        .and_then(Value::as_str)
        .unwrap_or("bridge")
        .to_string();
    if mode != "awsvpc" {
        f.change(
            "networkMode",
            format!("{mode} → awsvpc"),
            "Fargate supports only awsvpc: each task gets its own network interface and \
             address, and the task's containers share one network namespace (they reach \
             each other on localhost)",
        );
        td.insert("networkMode".into(), json!("awsvpc"));
    }
    task_level_blockers(td, f);
    let needs_role = containers(td, &mode, f);
    execution_role(td, needs_role, opts, f);
    size(td, opts, f);
}

/// `pidMode`, `ipcMode`, `placementConstraints`, volumes, accelerators.
fn task_level_blockers(td: &mut Map<String, Value>, f: &mut Findings) {
    if td.get("pidMode").and_then(Value::as_str) == Some("host") {
        f.blocker(
            "pidMode",
            "pidMode host",
            "Fargate tasks cannot share the host's process namespace; the only pidMode \
             Fargate supports is task",
        );
    }
    match td.get("ipcMode") {
        None | Some(Value::Null) => {}
        Some(v) => f.blocker(
            "ipcMode",
            format!("ipcMode {}", v.as_str().unwrap_or("(set)")),
            "ipcMode is not valid on Fargate: tasks cannot share IPC resources with the host \
             or with each other",
        ),
    }
    if is_set(td.get("placementConstraints")) {
        f.blocker(
            "placementConstraints",
            "task placement constraints",
            "placementConstraints are not valid on Fargate: there are no container instances \
             to choose between (the constraint's intent, e.g. an instance type or zone, has to \
             be met another way, such as the service's subnets)",
        );
    }
    for v in list(td, "volumes") {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("?");
        if v.pointer("/host/sourcePath").is_some_and(|p| !p.is_null()) {
            f.blocker(
                format!("volumes[{name}].host.sourcePath"),
                format!(
                    "host volume {}",
                    v.pointer("/host/sourcePath").unwrap_or(&Value::Null)
                ),
                "Fargate tasks have no host to mount a path from; only task-scoped bind \
                 mounts (host without sourcePath) and EFS volumes are supported",
            );
        }
        if is_set(v.get("dockerVolumeConfiguration")) {
            f.blocker(
                format!("volumes[{name}].dockerVolumeConfiguration"),
                "Docker volume",
                "Fargate tasks support only bind mounts and EFS volumes, not Docker volume \
                 drivers",
            );
        }
    }
    if is_set(td.get("inferenceAccelerators")) {
        f.blocker(
            "inferenceAccelerators",
            "Elastic Inference accelerators",
            "Fargate tasks cannot attach inference accelerators",
        );
    }
}

/// Per container: blockers, links (with the localhost rewrite), hostname and
/// ports. Returns the reasons the task needs an execution role.
fn containers(td: &mut Map<String, Value>, old_mode: &str, f: &mut Findings) -> Vec<String> {
    let mut needs_role = Vec::new();
    // (protocol, containerPort) → the container listening on it.
    let mut ports: BTreeMap<(String, i64), String> = BTreeMap::new();
    let Some(Value::Array(cs)) = td.get_mut("containerDefinitions") else {
        return needs_role;
    };
    for c in cs.iter_mut() {
        let Some(c) = c.as_object_mut() else { continue };
        let name = container_name(c);
        let at = |field: &str| format!("containerDefinitions[{name}].{field}");

        match c.get("privileged") {
            Some(Value::Bool(true)) => f.blocker(
                at("privileged"),
                "privileged container",
                "Fargate does not run privileged containers: a task has no host to give \
                 elevated access to",
            ),
            Some(_) => {
                c.remove("privileged");
                f.change(
                    at("privileged"),
                    "removed (false)",
                    "privileged is not a valid parameter on Fargate, even when false",
                );
            }
            None => {}
        }
        for (field, why) in NOT_ON_FARGATE {
            if is_set(c.get(*field)) {
                f.blocker(at(field), format!("{field} {}", c[*field]), why);
            } else if c.contains_key(*field) {
                c.remove(*field);
                f.change(
                    at(field),
                    "removed (empty)",
                    &format!("{field} is not a valid parameter on Fargate"),
                );
            }
        }
        if let Some(lp) = c.get("linuxParameters").and_then(Value::as_object) {
            linux_parameters(lp, &name, f);
        }
        for r in list(c, "resourceRequirements") {
            match r.get("type").and_then(Value::as_str) {
                Some("GPU") => f.blocker(
                    at("resourceRequirements"),
                    format!(
                        "GPU {}",
                        r.get("value").and_then(Value::as_str).unwrap_or("?")
                    ),
                    "Fargate tasks cannot use GPUs; GPU workloads need EC2 GPU instances",
                ),
                Some("InferenceAccelerator") => f.blocker(
                    at("resourceRequirements"),
                    "inference accelerator",
                    "Fargate tasks cannot attach inference accelerators",
                ),
                _ => {}
            }
        }
        if let Some(lc) = c.get("logConfiguration").and_then(Value::as_object) {
            let driver = lc.get("logDriver").and_then(Value::as_str).unwrap_or("");
            if !FARGATE_LOG_DRIVERS.contains(&driver) {
                f.blocker(
                    at("logConfiguration.logDriver"),
                    format!("log driver {driver}"),
                    "Fargate supports the awslogs, splunk and awsfirelens log drivers only \
                     (route other destinations through awsfirelens)",
                );
            }
            if driver == "awslogs" {
                needs_role.push(format!("{name} logs with awslogs"));
            }
            if is_set(lc.get("secretOptions")) {
                needs_role.push(format!("{name} has log secretOptions"));
            }
        }
        if c.get("image")
            .and_then(Value::as_str)
            .is_some_and(|i| i.contains(".dkr.ecr."))
        {
            needs_role.push(format!("{name} pulls from Amazon ECR"));
        }
        if is_set(c.get("secrets")) {
            needs_role.push(format!("{name} has secrets"));
        }
        if is_set(c.get("repositoryCredentials")) {
            needs_role.push(format!("{name} pulls with repositoryCredentials"));
        }
        if is_set(c.get("environmentFiles")) {
            needs_role.push(format!("{name} has environmentFiles"));
        }

        links(c, &name, f);

        if let Some(h) = c.remove("hostname") {
            if !h.is_null() {
                f.change(
                    at("hostname"),
                    format!("removed ({h})"),
                    "awsvpc does not take a container hostname: the task's hostname is its \
                     network interface's private DNS name",
                );
            }
        }

        let mut mappings = list(c, "portMappings").to_vec();
        for (j, p) in mappings.iter_mut().enumerate() {
            let Some(p) = p.as_object_mut() else { continue };
            let Some(cp) = p.get("containerPort").and_then(Value::as_i64) else {
                continue;
            };
            let protocol = p
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("tcp")
                .to_string();
            if let Some(other) = ports.insert((protocol.clone(), cp), name.clone()) {
                f.blocker(
                    at(&format!("portMappings[{j}].containerPort")),
                    format!("{protocol} port {cp} also used by container {other}"),
                    "in awsvpc all the task's containers share one network namespace, so two \
                     of them cannot listen on the same port (on EC2 each had its own); change \
                     one container's port first",
                );
            }
            match p.get("hostPort").and_then(Value::as_i64) {
                Some(hp) if hp != cp => {
                    p.insert("hostPort".into(), json!(cp));
                    let was = if hp == 0 {
                        "0 (dynamic)".to_string()
                    } else {
                        hp.to_string()
                    };
                    f.change(
                        at(&format!("portMappings[{j}].hostPort")),
                        format!("{was} → {cp}"),
                        &format!(
                            "in awsvpc the host port must equal the container port: the task \
                             is reached at its own address on port {cp} (clients and load \
                             balancer target groups that used the {old_mode}-mode host port \
                             must use {cp}, and target type ip)"
                        ),
                    );
                }
                _ => {}
            }
        }
        if c.contains_key("portMappings") {
            c.insert("portMappings".into(), Value::Array(mappings));
        }
    }
    needs_role
}

/// `linuxParameters` Fargate refuses.
fn linux_parameters(lp: &Map<String, Value>, name: &str, f: &mut Findings) {
    let at = |field: &str| format!("containerDefinitions[{name}].linuxParameters.{field}");
    for (field, why) in [
        (
            "devices",
            "Fargate tasks cannot map host devices into containers",
        ),
        ("sharedMemorySize", "Fargate does not take a /dev/shm size"),
        ("tmpfs", "Fargate does not take tmpfs mounts"),
        ("maxSwap", "Fargate tasks have no swap"),
        ("swappiness", "Fargate tasks have no swap"),
    ] {
        if is_set(lp.get(field)) {
            f.blocker(at(field), format!("{field} {}", lp[field]), why);
        }
    }
    let added: Vec<&str> = lp
        .get("capabilities")
        .and_then(|c| c.get("add"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let refused: Vec<&str> = added
        .into_iter()
        .filter(|c| !matches!(*c, "SYS_PTRACE" | "CAP_SYS_PTRACE"))
        .collect();
    if !refused.is_empty() {
        f.blocker(
            at("capabilities.add"),
            format!("capabilities {}", refused.join(", ")),
            "the only capability a Fargate container can add is SYS_PTRACE",
        );
    }
}

/// Remove a container's links; rewrite its environment values that name a
/// linked container (or its alias) as a host to localhost.
fn links(c: &mut Map<String, Value>, name: &str, f: &mut Findings) {
    let Some(Value::Array(links)) = c.remove("links") else {
        return;
    };
    let mut hosts: Vec<String> = Vec::new();
    for l in links.iter().filter_map(Value::as_str) {
        let (target, alias) = l.split_once(':').unwrap_or((l, l));
        for h in [target, alias] {
            if !h.is_empty() && !hosts.iter().any(|x| x == h) {
                hosts.push(h.to_string());
            }
        }
        f.change(
            format!("containerDefinitions[{name}].links"),
            format!("removed {l}"),
            &format!(
                "awsvpc does not support links: the task's containers share one network \
                 namespace, so {target} is reached at localhost on its container port; the \
                 variables Docker set for the link ({}_PORT_*, …) no longer exist",
                alias.to_ascii_uppercase().replace('-', "_")
            ),
        );
    }
    if links.is_empty() {
        return;
    }
    // A link also made ECS start the linked container first: keep that
    // order as a START dependency.
    for l in links.iter().filter_map(Value::as_str) {
        let target = l.split_once(':').map_or(l, |(t, _)| t);
        let depends = c
            .entry("dependsOn")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("dependsOn is a list");
        if !target.is_empty()
            && !depends
                .iter()
                .any(|d| d.get("containerName").and_then(Value::as_str) == Some(target))
        {
            depends.push(json!({"containerName": target, "condition": "START"}));
            f.change(
                format!("containerDefinitions[{name}].dependsOn"),
                format!("added {target} START"),
                "a link also started the linked container first; the dependency keeps that order",
            );
        }
    }
    // Longest first, so "db-replica" is not read as "db".
    hosts.sort_by_key(|h| std::cmp::Reverse(h.len()));
    if let Some(Value::Array(env)) = c.get_mut("environment") {
        for e in env.iter_mut() {
            let Some(e) = e.as_object_mut() else { continue };
            let var = e
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let Some(value) = e.get("value").and_then(Value::as_str) else {
                continue;
            };
            if let Some(new) = rewrite_hosts(value, &hosts, &var) {
                f.change(
                    format!("containerDefinitions[{name}].environment[{var}]"),
                    format!("{value} → {new}"),
                    "the linked container is now in the same network namespace: reached at \
                     localhost, no longer by its link name",
                );
                e.insert("value".into(), json!(new));
            }
        }
    }
    for field in ["command", "entryPoint"] {
        let mentions = list(c, field)
            .iter()
            .filter_map(Value::as_str)
            .any(|arg| rewrite_hosts(arg, &hosts, "HOST").is_some());
        if mentions {
            f.note(
                format!("containerDefinitions[{name}].{field}"),
                format!("mentions a linked container ({})", hosts.join(", ")),
                "its arguments were left as they are; on Fargate the linked container is at \
                 localhost",
            );
        }
    }
}

/// Whether a variable's name says its value is a host name.
fn names_a_host(var: &str) -> bool {
    let v = var.to_ascii_uppercase();
    [
        "HOST", "ADDR", "SERVER", "URL", "URI", "ENDPOINT", "DSN", "BROKER",
    ]
    .iter()
    .any(|k| v.contains(k))
}

/// `value` with every use of one of `hosts` as a host name replaced by
/// `localhost`, or `None` when there is none. A use as a host: after `//` or
/// `@` (a URL), before `:<digit>` (host:port), or the whole value of a
/// variable whose name says it holds a host (`DB_HOST=database`).
pub(crate) fn rewrite_hosts(value: &str, hosts: &[String], var: &str) -> Option<String> {
    if hosts.iter().any(|h| h == value.trim()) && names_a_host(var) {
        return Some(value.replacen(value.trim(), "localhost", 1));
    }
    let bytes = value.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let mut changed = false;
    'scan: while i < value.len() {
        for h in hosts {
            if value[i..].starts_with(h.as_str()) {
                let end = i + h.len();
                let before_ok = i == 0 || b"/@,; =(\"'".contains(&bytes[i - 1]);
                let after_ok = end == value.len() || b":/,; ?)\"'".contains(&bytes[end]);
                let url = value[..i].ends_with("//") || value[..i].ends_with('@');
                let port = value[end..].starts_with(':')
                    && value[end + 1..].starts_with(|ch: char| ch.is_ascii_digit());
                if before_ok && after_ok && (url || port) {
                    out.push_str("localhost");
                    i = end;
                    changed = true;
                    continue 'scan;
                }
            }
        }
        let ch = value[i..].chars().next().unwrap_or_default();
        out.push(ch);
        i += ch.len_utf8();
    }
    changed.then_some(out)
}

/// Set the execution role when the task needs one, or block.
fn execution_role(
    td: &mut Map<String, Value>,
    needs: Vec<String>,
    opts: &Options,
    f: &mut Findings,
) {
    if needs.is_empty() || td.get("executionRoleArn").is_some_and(Value::is_string) {
        return;
    }
    let why = format!(
        "on EC2 the container instance's role did this work; on Fargate the task needs its \
         own execution role ({})",
        needs.join("; ")
    );
    match &opts.execution_role_arn {
        Some(arn) => {
            td.insert("executionRoleArn".into(), json!(arn));
            f.change("executionRoleArn", format!("set to {arn}"), &why);
        }
        None => f.blocker(
            "executionRoleArn",
            "missing execution role (give one with --execution-role-arn)",
            &why,
        ),
    }
}

/// USD per task-hour of a Fargate size in the region, if priced.
fn price(opts: &Options, arch: Arch, cpu: u32, memory: u32, ephemeral_gb: f64) -> Option<f64> {
    pricing::fargate(&opts.region)?;
    Some(pricing::fargate_cost(
        &opts.region,
        arch,
        false,
        cpu as f64 / 1024.0,
        memory as f64 / 1024.0,
        ephemeral_gb,
        3600.0,
    ))
}

/// Set the task size to the smallest valid Fargate pair holding what the
/// definition asks (task-level, or the sum of its containers).
fn size(td: &mut Map<String, Value>, opts: &Options, f: &mut Findings) {
    let (task_cpu, task_memory) = task_size(td);
    let (mut cpu_sum, mut memory_sum) = (0i64, 0i64);
    for c in list(td, "containerDefinitions")
        .iter()
        .filter_map(Value::as_object)
    {
        cpu_sum += c.get("cpu").and_then(Value::as_i64).unwrap_or(0).max(0);
        memory_sum += c
            .get("memory")
            .or_else(|| c.get("memoryReservation"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0);
    }
    let clamp = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    let asked_cpu = task_cpu.unwrap_or(0).max(clamp(cpu_sum));
    let asked_memory = task_memory.unwrap_or(0).max(clamp(memory_sum));
    let describe = |task: Option<u32>, asked: u32, sum: i64| match task {
        Some(t) if t >= asked => format!("{t}"),
        Some(t) => format!("{t} (containers: {sum})"),
        None if asked == 0 => "none".to_string(),
        None => format!("{asked} (sum of containers)"),
    };
    // Windows containers on Fargate take at least 1 vCPU.
    let windows = td
        .get("runtimePlatform")
        .and_then(|r| r.get("operatingSystemFamily"))
        .and_then(Value::as_str)
        .is_some_and(|o| o.starts_with("WINDOWS"));
    let min_cpu = if windows { 1024 } else { 1 };
    let Some((cpu, memory)) = fargate_round_up(asked_cpu.max(min_cpu), asked_memory.max(1)) else {
        f.blocker(
            "cpu, memory",
            format!("cpu {asked_cpu}, memory {asked_memory} MiB"),
            "larger than any Fargate task (at most 16 vCPU = 16384 units and 120 GB = 122880 MiB)",
        );
        return;
    };
    let arch = match td
        .get("runtimePlatform")
        .and_then(|r| r.get("cpuArchitecture"))
        .and_then(Value::as_str)
    {
        Some("ARM64") => Arch::Arm64,
        _ => Arch::X86_64,
    };
    let ephemeral = td
        .get("ephemeralStorage")
        .and_then(|e| e.get("sizeInGiB"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let fmt = |p: Option<f64>| p.map_or("?".into(), |p| format!("${p:.4}/h"));
    let new_price = price(opts, arch, cpu, memory, ephemeral);
    let region_note = if new_price.is_none() {
        format!(" (no Fargate prices known for region {})", opts.region)
    } else {
        String::new()
    };
    if task_cpu == Some(cpu) && task_memory == Some(memory) {
        f.note(
            "cpu, memory",
            format!(
                "cpu {cpu}, memory {memory} MiB: {} per task in {}{region_note}",
                fmt(new_price),
                opts.region
            ),
            "already a valid Fargate size; Fargate bills the task size per second",
        );
        return;
    }
    let cost = if asked_cpu > 0 && asked_memory > 0 && (asked_cpu, asked_memory) != (cpu, memory) {
        let asked_price = price(opts, arch, asked_cpu, asked_memory, ephemeral);
        format!(
            ": {} instead of {} for the size asked, in {}{region_note}",
            fmt(new_price),
            fmt(asked_price),
            opts.region
        )
    } else {
        format!(
            ": {} per task in {}{region_note}",
            fmt(new_price),
            opts.region
        )
    };
    f.change(
        "cpu, memory",
        format!(
            "cpu {} → {cpu}, memory {} → {memory} MiB{cost}",
            describe(task_cpu, asked_cpu, cpu_sum),
            describe(task_memory, asked_memory, memory_sum)
        ),
        "Fargate needs a task-level cpu and memory from its table of sizes (256 with 512-2048 \
         MiB, 512 with 1-4 GB, 1024 with 2-8 GB, … 16384 with 32-120 GB); this is the \
         smallest one that holds what the task asks (its own size, or the sum of its \
         containers' cpu and memory), and Fargate bills the whole size",
    );
    td.insert("cpu".into(), json!(cpu.to_string()));
    td.insert("memory".into(), json!(memory.to_string()));
}
