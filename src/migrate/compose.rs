//! `berth migrate compose`: a Docker Compose file turned into one task
//! definition (each service a container), as `ecs-cli compose` did, for the
//! FARGATE (awsvpc, task-level size) or EC2 (bridge, container memory)
//! launch type.
//!
//! [`parse_yaml`] and [`convert`] are pure: keys Berth cannot carry over are
//! listed by name; keys whose loss would change what runs (a `build` without
//! an `image`, `privileged` or host paths on Fargate, …) are errors naming
//! the key. [`run`] reads the files and prints or writes the result.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Map, Value};

use super::apprunner::{sanitize_name, shell_words, write_files};
use crate::ecs::taskdef_rules::fargate_round_up;

/// The launch type to convert for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// awsvpc network mode, task-level cpu and memory of a Fargate size.
    Fargate,
    /// bridge network mode (or host), memory per container.
    Ec2,
}

/// `berth migrate compose FILE --to fargate|ec2`
#[derive(clap::Args)]
pub struct Args {
    /// The Compose file (docker-compose.yml, compose.yaml).
    pub file: PathBuf,
    /// The launch type to convert for.
    #[arg(long, value_enum)]
    pub to: Target,
    /// Task definition family (default: the file's `name`, else its
    /// directory's name).
    #[arg(long)]
    pub family: Option<String>,
    /// Write `task-definition.json` into this directory instead of printing
    /// the task definition.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// The task execution role (`executionRoleArn`). Needed on Fargate when a
    /// container logs with awslogs, pulls its image from ECR or reads secrets;
    /// set when given for EC2 too.
    #[arg(long, value_name = "ARN")]
    pub execution_role_arn: Option<String>,
}

/// What a Compose file becomes.
#[derive(Debug)]
pub struct Conversion {
    /// Input of `aws ecs register-task-definition --cli-input-json`.
    pub task_definition: Map<String, Value>,
    /// Changes made and why.
    pub notes: Vec<String>,
    /// Keys not carried over, each `path: reason`.
    pub unconverted: Vec<String>,
}

/// Parse YAML text (anchors and `<<` merge keys resolved) into JSON.
pub fn parse_yaml(text: &str) -> anyhow::Result<Value> {
    let mut y: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| anyhow!("not valid YAML: {e}"))?;
    y.apply_merge()
        .map_err(|e| anyhow!("YAML merge keys: {e}"))?;
    yaml_to_json(y)
}

fn yaml_to_json(y: serde_norway::Value) -> anyhow::Result<Value> {
    use serde_norway::Value as Y;
    Ok(match y {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(seq) => Value::Array(
            seq.into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => bail!("a mapping key must be a string, not {other:?}"),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value)?,
    })
}

/// A Compose duration (`1m30s`, `10s`, `500ms`, `1h`; a bare number is
/// seconds) in whole seconds, rounded up.
pub fn parse_duration(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_f64() {
        return (n >= 0.0).then(|| n.ceil() as i64);
    }
    let s = v.as_str()?.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" | "" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Some(total.ceil() as i64)
}

/// A Compose byte size (`512M`, `1g`, `1.5GB`, `1024k`; a bare number is
/// bytes) in MiB, rounded up.
pub fn parse_bytes_mib(v: &Value) -> Option<i64> {
    let bytes = if let Some(n) = v.as_f64() {
        n
    } else {
        let s = v.as_str()?.trim().to_ascii_lowercase();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let n: f64 = s[..split].parse().ok()?;
        let scale = match s[split..].trim() {
            "" | "b" => 1.0,
            "k" | "kb" | "kib" => 1024.0,
            "m" | "mb" | "mib" => 1024.0 * 1024.0,
            "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
            "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
            _ => return None,
        };
        n * scale
    };
    (bytes > 0.0).then(|| (bytes / (1024.0 * 1024.0)).ceil() as i64)
}

/// CPUs (`0.5`, `"2"`) as CPU units (1024 to a CPU).
pub fn parse_cpus(v: &Value) -> Option<i64> {
    let n = v.as_f64().or_else(|| v.as_str()?.trim().parse().ok())?;
    (n > 0.0).then(|| (n * 1024.0).round().max(1.0) as i64)
}

/// `KEY=VALUE` lines of an env file; `#` comments, blank lines and
/// `export ` are skipped, matching quotes around the value removed. Keys
/// without a value are returned in the second list.
pub fn parse_env_file(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut out = Vec::new();
    let mut bare = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        match line.split_once('=') {
            Some((k, v)) => {
                let v = v.trim();
                let v = if v.len() >= 2
                    && ((v.starts_with('"') && v.ends_with('"'))
                        || (v.starts_with('\'') && v.ends_with('\'')))
                {
                    &v[1..v.len() - 1]
                } else {
                    v
                };
                out.push((k.trim().to_string(), v.to_string()));
            }
            None => bare.push(line.to_string()),
        }
    }
    (out, bare)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list of strings, or a string (split into words when `split`).
fn string_list(v: &Value, path: &str, split: bool) -> anyhow::Result<Vec<String>> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| scalar(x).ok_or_else(|| anyhow!("{path}: every item must be a string")))
            .collect(),
        Value::String(s) if split => {
            shell_words(s).ok_or_else(|| anyhow!("{path}: unclosed quote in {s:?}"))
        }
        Value::String(s) => Ok(vec![s.clone()]),
        _ => bail!("{path} must be a string or a list of strings"),
    }
}

/// `KEY=VALUE` list or map, as `environment`, `labels`, `sysctls` take.
/// Items without a value come back as `None`.
fn key_values(v: &Value, path: &str) -> anyhow::Result<Vec<(String, Option<String>)>> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| {
                let s = scalar(x).ok_or_else(|| anyhow!("{path}: every item must be a string"))?;
                Ok(match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (s, None),
                })
            })
            .collect(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| match v {
                Value::Null => Ok((k.clone(), None)),
                v => scalar(v)
                    .map(|s| (k.clone(), Some(s)))
                    .ok_or_else(|| anyhow!("{path}.{k} must be a string, number or boolean")),
            })
            .collect(),
        _ => bail!("{path} must be a list or a mapping"),
    }
}

fn port_range(s: &str, path: &str) -> anyhow::Result<(u16, u16)> {
    let parse = |p: &str| -> anyhow::Result<u16> {
        p.trim()
            .parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| anyhow!("{path}: {p:?} is not a port number"))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if b < a {
                bail!("{path}: port range {s:?} ends before it starts");
            }
            Ok((a, b))
        }
        None => {
            let p = parse(s)?;
            Ok((p, p))
        }
    }
}

/// One published port: container port, host port (if any), protocol.
type Port = (u16, Option<u16>, String);

fn expand_ports(
    target: &str,
    published: Option<&str>,
    protocol: &str,
    path: &str,
) -> anyhow::Result<Vec<Port>> {
    let (t0, t1) = port_range(target, path)?;
    let count = (t1 - t0) as usize + 1;
    if count > 100 {
        bail!("{path}: port range {target} has more than 100 ports");
    }
    let protocol = protocol.to_ascii_lowercase();
    if !matches!(protocol.as_str(), "tcp" | "udp") {
        bail!("{path}: protocol {protocol:?} is neither tcp nor udp");
    }
    let hosts: Vec<Option<u16>> = match published.filter(|p| !p.is_empty()) {
        None => vec![None; count],
        Some(p) => {
            let (h0, h1) = port_range(p, path)?;
            if h0 == h1 {
                (0..count)
                    .map(|i| Some(h0 + i as u16).filter(|_| count == 1 || i == 0))
                    .collect()
            } else if (h1 - h0) as usize + 1 == count {
                (0..count).map(|i| Some(h0 + i as u16)).collect()
            } else {
                bail!("{path}: published range {p} and target range {target} differ in length");
            }
        }
    };
    Ok((0..count)
        .map(|i| (t0 + i as u16, hosts[i], protocol.clone()))
        .collect())
}

fn parse_ports(v: &Value, path: &str, notes: &mut Vec<String>) -> anyhow::Result<Vec<Port>> {
    let Value::Array(items) = v else {
        bail!("{path} must be a list")
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match item {
            Value::Object(o) => {
                let target = o
                    .get("target")
                    .and_then(scalar)
                    .ok_or_else(|| anyhow!("{p}.target is missing"))?;
                let published = o.get("published").and_then(scalar);
                let protocol = o.get("protocol").and_then(Value::as_str).unwrap_or("tcp");
                if o.get("host_ip").is_some() {
                    notes.push(format!(
                        "{p}.host_ip is not converted: ECS publishes on every address of the task"
                    ));
                }
                out.extend(expand_ports(&target, published.as_deref(), protocol, &p)?);
            }
            other => {
                let s =
                    scalar(other).ok_or_else(|| anyhow!("{p} must be a string or a mapping"))?;
                let (spec, protocol) = s.split_once('/').unwrap_or((&s, "tcp"));
                let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
                let (target, published) = match parts.as_slice() {
                    [t] => (*t, None),
                    [t, h] => (*t, Some(*h)),
                    [t, h, _ip] => {
                        notes.push(format!("{p}: the host address in {s:?} is not converted: ECS publishes on every address of the task"));
                        (*t, Some(*h))
                    }
                    _ => bail!("{p}: cannot read port {s:?}"),
                };
                out.extend(expand_ports(target, published, protocol, &p)?);
            }
        }
    }
    Ok(out)
}

const FARGATE_LOG_DRIVERS: &[&str] = &["awslogs", "splunk", "awsfirelens"];
const EC2_LOG_DRIVERS: &[&str] = &[
    "json-file",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "awsfirelens",
];

/// Service keys read and dropped with a reason, not errors.
const NOT_CONVERTED: &[(&str, &str)] = &[
    ("container_name", "the container is named after the service"),
    ("networks", "the containers of a task share one network"),
    ("expose", "containers of a task reach each other without it"),
    (
        "secrets",
        "use ECS `secrets` with valueFrom (Secrets Manager or SSM)",
    ),
    (
        "configs",
        "ECS has no configs; bake them into the image or use a volume",
    ),
    ("profiles", "every service is converted"),
    (
        "pull_policy",
        "ECS pulls on each start (see ECS_IMAGE_PULL_BEHAVIOR)",
    ),
    ("scale", "set the ECS service's desiredCount"),
    (
        "stop_signal",
        "ECS stops containers with SIGTERM then SIGKILL",
    ),
    ("platform", "set runtimePlatform on the task definition"),
    ("mem_swappiness", "not converted"),
    ("memswap_limit", "not converted"),
    ("oom_kill_disable", "not converted"),
    ("oom_score_adj", "not converted"),
    ("pid", "not converted"),
    ("ipc", "not converted"),
    ("devices", "not converted"),
    ("cgroup_parent", "ECS places tasks in cgroups of its own"),
    ("domainname", "not converted"),
    ("mac_address", "not converted"),
    ("runtime", "not converted"),
    ("storage_opt", "not converted"),
    ("isolation", "not converted"),
    ("annotations", "not converted"),
    ("attach", "not converted"),
    ("develop", "not converted"),
    ("external_links", "not converted"),
    ("group_add", "not converted"),
    ("credential_spec", "not converted"),
    ("userns_mode", "not converted"),
    ("cpu_count", "not converted"),
    ("cpu_percent", "not converted"),
    ("cpu_period", "not converted"),
    ("cpu_quota", "not converted"),
    ("cpu_rt_runtime", "not converted"),
    ("cpu_rt_period", "not converted"),
    ("cpuset", "not converted"),
    ("blkio_config", "not converted"),
    ("device_cgroup_rules", "not converted"),
    ("links_external", "not converted"),
    ("label_file", "not converted"),
    ("healthcheck.start_interval", "ECS has no start interval"),
];

struct Ctx<'a> {
    target: Target,
    notes: Vec<String>,
    unconverted: Vec<String>,
    names: BTreeMap<String, String>,
    top_volumes: &'a Map<String, Value>,
    volumes: Vec<Value>,
    volume_names: BTreeSet<String>,
}

impl Ctx<'_> {
    fn fargate(&self) -> bool {
        self.target == Target::Fargate
    }
    fn drop_key(&mut self, path: String, why: &str) {
        self.unconverted.push(format!("{path}: {why}"));
    }
    fn add_volume(&mut self, name: String, vol: Value) -> String {
        if self.volume_names.insert(name.clone()) {
            self.volumes.push(vol);
        }
        name
    }
}

/// Convert a parsed Compose file. `family` names the task definition;
/// `execution_role_arn` becomes `executionRoleArn` (required on Fargate when
/// a container needs it); `read_file` reads an `env_file` named as in the
/// file (relative to it).
pub fn convert(
    doc: &Value,
    target: Target,
    family: &str,
    execution_role_arn: Option<&str>,
    read_file: &dyn Fn(&str) -> anyhow::Result<String>,
) -> anyhow::Result<Conversion> {
    let Some(top) = doc.as_object() else {
        bail!("a Compose file must be a mapping with `services`");
    };
    if let Some(v) = top.get("version") {
        let s = scalar(v).unwrap_or_default();
        let major = s.split('.').next().unwrap_or_default();
        if !matches!(major, "2" | "3") {
            bail!("version: {s:?} is not supported; Compose file format 2.x and 3.x (or no version, the Compose Specification) are");
        }
    }
    if top.contains_key("include") {
        bail!(
            "include: services from other files are not supported; merge them into one file first"
        );
    }
    let services = match top.get("services") {
        Some(Value::Object(s)) if !s.is_empty() => s,
        Some(Value::Object(_)) => bail!("services: there are no services"),
        Some(_) => bail!("services must be a mapping of service names"),
        None => bail!("services: the file has no `services`"),
    };
    if services.len() > crate::ecs::taskdef_rules::MAX_CONTAINERS {
        bail!(
            "services: {} services, but a task definition holds at most {}",
            services.len(),
            crate::ecs::taskdef_rules::MAX_CONTAINERS
        );
    }
    let empty = Map::new();
    let top_volumes = top
        .get("volumes")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut ctx = Ctx {
        target,
        notes: Vec::new(),
        unconverted: Vec::new(),
        names: BTreeMap::new(),
        top_volumes,
        volumes: Vec::new(),
        volume_names: BTreeSet::new(),
    };
    for (k, _) in top {
        match k.as_str() {
            "version" | "services" | "volumes" | "name" => {}
            "networks" => ctx.drop_key(
                "networks".into(),
                "the containers of a task share one network",
            ),
            "secrets" => ctx.drop_key(
                "secrets".into(),
                "use ECS `secrets` with valueFrom (Secrets Manager or SSM)",
            ),
            "configs" => ctx.drop_key("configs".into(), "ECS has no configs"),
            k if k.starts_with("x-") => {}
            k => ctx.drop_key(k.to_string(), "unknown top-level key"),
        }
    }
    if top.get("version").is_some() {
        ctx.notes.push(
            "`version` is only informative in the Compose Specification; it is not kept".into(),
        );
    }
    for name in services.keys() {
        let c = sanitize_name(name, true, 255);
        if &c != name {
            ctx.notes.push(format!(
                "service {name:?} is the container {c:?} (ECS names take letters, digits, - and _)"
            ));
        }
        if ctx.names.values().any(|v| v == &c) {
            bail!("services.{name}: its container name {c:?} clashes with another service's");
        }
        ctx.names.insert(name.clone(), c);
    }

    // Network mode.
    let mut network_mode = match target {
        Target::Fargate => "awsvpc",
        Target::Ec2 => "bridge",
    };
    for (name, svc) in services {
        match svc.get("network_mode").and_then(Value::as_str) {
            None | Some("bridge") | Some("default") => {}
            Some("host") if target == Target::Fargate => bail!(
                "services.{name}.network_mode: host is not supported on Fargate (tasks get their own network interface, awsvpc)"
            ),
            Some("host") => network_mode = "host",
            Some(other) => bail!(
                "services.{name}.network_mode: {other:?} is not supported (bridge or host for EC2; Fargate is always awsvpc)"
            ),
        }
    }
    if network_mode == "host" {
        if services
            .values()
            .any(|s| s.get("network_mode").and_then(Value::as_str) != Some("host"))
        {
            bail!("services.*.network_mode: some services use host and some do not; one task has one network mode");
        }
        ctx.notes
            .push("network_mode host: the task uses networkMode host".into());
    }

    // Which services others wait on to complete: not essential.
    let mut completes = BTreeSet::new();
    for svc in services.values() {
        if let Some(Value::Object(deps)) = svc.get("depends_on") {
            for (d, spec) in deps {
                if spec.get("condition").and_then(Value::as_str)
                    == Some("service_completed_successfully")
                {
                    completes.insert(d.clone());
                }
            }
        }
    }

    let mut containers = Vec::new();
    let mut sizes = Vec::new();
    for (name, svc) in services {
        let svc = svc
            .as_object()
            .ok_or_else(|| anyhow!("services.{name} must be a mapping"))?;
        let (c, size) = convert_service(&mut ctx, name, svc, &completes, network_mode, read_file)?;
        containers.push(Value::Object(c));
        sizes.push(size);
    }
    let service_of: BTreeMap<String, String> = ctx
        .names
        .iter()
        .map(|(s, c)| (c.clone(), s.clone()))
        .collect();
    check_healthy_dependencies(&containers, &service_of)?;
    service_hosts(&mut ctx, &mut containers, &service_of, network_mode);
    let role_reasons = execution_role_reasons(&containers);

    let mut td = Map::new();
    td.insert("family".into(), json!(family));
    td.insert("networkMode".into(), json!(network_mode));
    if target == Target::Fargate {
        td.insert("requiresCompatibilities".into(), json!(["FARGATE"]));
        let cpu: i64 = sizes.iter().map(|s| s.0).sum();
        let mem: i64 = sizes.iter().map(|s| s.1).sum();
        let (tc, tm) = fargate_round_up(cpu.clamp(256, u32::MAX as i64) as u32, mem.clamp(512, u32::MAX as i64) as u32)
            .ok_or_else(|| anyhow!("services: together they need {cpu} CPU units and {mem} MiB, more than any Fargate task size"))?;
        ctx.notes.push(format!(
            "task size cpu {tc}, memory {tm}: the smallest Fargate size holding the services' {cpu} CPU units and {mem} MiB"
        ));
        td.insert("cpu".into(), json!(tc.to_string()));
        td.insert("memory".into(), json!(tm.to_string()));
    } else {
        td.insert("requiresCompatibilities".into(), json!(["EC2"]));
    }
    match execution_role_arn {
        Some(arn) => {
            td.insert("executionRoleArn".into(), json!(arn));
            if !role_reasons.is_empty() {
                ctx.notes.push(format!(
                    "executionRoleArn {arn}: ECS uses it to {}",
                    role_reasons.join("; ")
                ));
            }
        }
        None if target == Target::Fargate && !role_reasons.is_empty() => bail!(
            "executionRoleArn: Fargate needs a task execution role to {}; give one with --execution-role-arn ARN",
            role_reasons.join("; ")
        ),
        None => {}
    }
    td.insert("containerDefinitions".into(), Value::Array(containers));
    if !ctx.volumes.is_empty() {
        td.insert(
            "volumes".into(),
            Value::Array(std::mem::take(&mut ctx.volumes)),
        );
    }
    Ok(Conversion {
        task_definition: td,
        notes: ctx.notes,
        unconverted: ctx.unconverted,
    })
}

#[allow(clippy::too_many_arguments)]
fn convert_service(
    ctx: &mut Ctx,
    name: &str,
    svc: &Map<String, Value>,
    completes: &BTreeSet<String>,
    network_mode: &str,
    read_file: &dyn Fn(&str) -> anyhow::Result<String>,
) -> anyhow::Result<(Map<String, Value>, (i64, i64))> {
    let path = format!("services.{name}");
    let cname = ctx.names[name].clone();
    let fargate = ctx.fargate();
    let mut c = Map::new();
    c.insert("name".into(), json!(cname));

    // Image.
    match (svc.get("image").and_then(scalar), svc.get("build")) {
        (Some(image), build) => {
            c.insert("image".into(), json!(image));
            if build.is_some() {
                ctx.drop_key(format!("{path}.build"), "ECS runs images: build and push the image first");
            }
        }
        (None, Some(_)) => bail!("{path}.build: ECS cannot build images; build and push it, then name it in {path}.image"),
        (None, None) => bail!("{path}.image is missing"),
    }
    c.insert("essential".into(), json!(!completes.contains(name)));
    if completes.contains(name) {
        ctx.notes.push(format!(
            "{path}: not essential, since another service waits for it to complete"
        ));
    }

    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut linux = Map::new();
    let (mut cpu, mut memory, mut reservation) = (None, None, None);

    for (key, v) in svc {
        let p = format!("{path}.{key}");
        match key.as_str() {
            "image" | "build" => {}
            "command" => {
                c.insert("command".into(), json!(string_list(v, &p, true)?));
            }
            "entrypoint" => {
                c.insert("entryPoint".into(), json!(string_list(v, &p, true)?));
            }
            "environment" => {
                for (k, val) in key_values(v, &p)? {
                    match val {
                        Some(val) => {
                            env.insert(k, val);
                        }
                        None => ctx.drop_key(
                            format!("{p}.{k}"),
                            "takes its value from the shell running compose; give it a value",
                        ),
                    }
                }
            }
            "env_file" => {}
            "working_dir" => {
                c.insert(
                    "workingDirectory".into(),
                    json!(scalar(v).ok_or_else(|| anyhow!("{p} must be a string"))?),
                );
            }
            "user" => {
                c.insert(
                    "user".into(),
                    json!(scalar(v).ok_or_else(|| anyhow!("{p} must be a string"))?),
                );
            }
            "hostname" if network_mode == "bridge" => {
                c.insert(
                    "hostname".into(),
                    json!(scalar(v).ok_or_else(|| anyhow!("{p} must be a string"))?),
                );
            }
            "hostname" => {
                ctx.drop_key(p, &format!("not supported with networkMode {network_mode}"))
            }
            "labels" => {
                let mut labels = Map::new();
                for (k, val) in key_values(v, &p)? {
                    labels.insert(k, json!(val.unwrap_or_default()));
                }
                c.insert("dockerLabels".into(), Value::Object(labels));
            }
            "ports" => {
                let ports = parse_ports(v, &p, &mut ctx.notes)?;
                let mut out = Vec::new();
                for (container_port, host, protocol) in ports {
                    let mut m = Map::new();
                    m.insert("containerPort".into(), json!(container_port));
                    match network_mode {
                        "bridge" => {
                            if let Some(h) = host {
                                m.insert("hostPort".into(), json!(h));
                            }
                        }
                        mode => {
                            if mode == "host" {
                                m.insert("hostPort".into(), json!(container_port));
                            }
                            if host.is_some_and(|h| h != container_port) {
                                ctx.notes.push(format!(
                                    "{p}: published port {} dropped: with networkMode {network_mode} the task answers on the container port {container_port}",
                                    host.unwrap_or_default()
                                ));
                            }
                        }
                    }
                    m.insert("protocol".into(), json!(protocol));
                    out.push(Value::Object(m));
                }
                c.insert("portMappings".into(), Value::Array(out));
            }
            "healthcheck" => {
                if let Some(hc) = convert_healthcheck(ctx, v, &p)? {
                    c.insert("healthCheck".into(), hc);
                }
            }
            "depends_on" => {
                let mut deps = Vec::new();
                let items: Vec<(String, Option<&Map<String, Value>>)> = match v {
                    Value::Array(a) => a
                        .iter()
                        .map(|x| {
                            scalar(x)
                                .map(|s| (s, None))
                                .ok_or_else(|| anyhow!("{p}: items must be service names"))
                        })
                        .collect::<Result<_, _>>()?,
                    Value::Object(o) => o.iter().map(|(k, x)| (k.clone(), x.as_object())).collect(),
                    _ => bail!("{p} must be a list or a mapping"),
                };
                for (dep, spec) in items {
                    let Some(dep_name) = ctx.names.get(&dep).cloned() else {
                        bail!("{p}: {dep:?} is not a service of this file");
                    };
                    let cond = spec
                        .and_then(|s| s.get("condition"))
                        .and_then(Value::as_str)
                        .unwrap_or("service_started");
                    let condition = match cond {
                        "service_started" => "START",
                        // Checked against the converted containers in
                        // `check_healthy_dependencies`.
                        "service_healthy" => "HEALTHY",
                        "service_completed_successfully" => "SUCCESS",
                        other => bail!("{p}.{dep}.condition: {other:?} is not a Compose condition"),
                    };
                    for extra in ["restart", "required"] {
                        if spec.is_some_and(|s| s.contains_key(extra)) {
                            ctx.drop_key(
                                format!("{p}.{dep}.{extra}"),
                                "ECS has no such dependency option",
                            );
                        }
                    }
                    deps.push(json!({"containerName": dep_name, "condition": condition}));
                }
                c.insert("dependsOn".into(), Value::Array(deps));
            }
            "deploy" => {
                let Some(d) = v.as_object() else {
                    bail!("{p} must be a mapping")
                };
                for (dk, dv) in d {
                    let dp = format!("{p}.{dk}");
                    if dk != "resources" {
                        ctx.drop_key(
                            dp,
                            match dk.as_str() {
                                "replicas" => "set the ECS service's desiredCount",
                                _ => "Swarm deployment settings are not converted",
                            },
                        );
                        continue;
                    }
                    let Some(r) = dv.as_object() else {
                        bail!("{dp} must be a mapping")
                    };
                    for (rk, rv) in r {
                        let rp = format!("{dp}.{rk}");
                        let Some(rv) = rv.as_object() else {
                            bail!("{rp} must be a mapping")
                        };
                        for (k, x) in rv {
                            let xp = format!("{rp}.{k}");
                            match (rk.as_str(), k.as_str()) {
                                ("limits", "cpus") => {
                                    cpu = Some(parse_cpus(x).ok_or_else(|| {
                                        anyhow!("{xp}: {x} is not a number of CPUs")
                                    })?)
                                }
                                ("reservations", "cpus") => {
                                    let n = parse_cpus(x).ok_or_else(|| {
                                        anyhow!("{xp}: {x} is not a number of CPUs")
                                    })?;
                                    cpu = cpu.or(Some(n));
                                }
                                ("limits", "memory") => {
                                    memory = Some(parse_bytes_mib(x).ok_or_else(|| {
                                        anyhow!("{xp}: {x} is not a size like 512M")
                                    })?)
                                }
                                ("reservations", "memory") => {
                                    reservation = Some(parse_bytes_mib(x).ok_or_else(|| {
                                        anyhow!("{xp}: {x} is not a size like 512M")
                                    })?)
                                }
                                _ => ctx.drop_key(xp, "not converted"),
                            }
                        }
                    }
                }
            }
            "cpus" => {
                cpu =
                    Some(parse_cpus(v).ok_or_else(|| anyhow!("{p}: {v} is not a number of CPUs"))?)
            }
            "cpu_shares" => {
                cpu = Some(
                    v.as_i64()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| anyhow!("{p} must be a positive number"))?,
                )
            }
            "mem_limit" => {
                memory = Some(
                    parse_bytes_mib(v)
                        .ok_or_else(|| anyhow!("{p}: {v} is not a size like 512M"))?,
                )
            }
            "mem_reservation" => {
                reservation = Some(
                    parse_bytes_mib(v)
                        .ok_or_else(|| anyhow!("{p}: {v} is not a size like 512M"))?,
                )
            }
            "logging" => {
                let Some(l) = v.as_object() else {
                    bail!("{p} must be a mapping")
                };
                let driver = l
                    .get("driver")
                    .and_then(Value::as_str)
                    .unwrap_or("json-file");
                let allowed = if fargate {
                    FARGATE_LOG_DRIVERS
                } else {
                    EC2_LOG_DRIVERS
                };
                if allowed.contains(&driver) {
                    let mut options = Map::new();
                    if let Some(Value::Object(o)) = l.get("options") {
                        for (k, x) in o {
                            options.insert(
                                k.clone(),
                                json!(scalar(x)
                                    .ok_or_else(|| anyhow!("{p}.options.{k} must be a string"))?),
                            );
                        }
                    }
                    let mut cfg = json!({"logDriver": driver});
                    if !options.is_empty() {
                        cfg["options"] = Value::Object(options);
                    }
                    c.insert("logConfiguration".into(), cfg);
                } else {
                    ctx.drop_key(
                        format!("{p}.driver"),
                        &format!(
                            "{driver} is not a log driver ECS takes here ({})",
                            allowed.join(", ")
                        ),
                    );
                }
            }
            "privileged" => {
                if v.as_bool() == Some(true) {
                    if fargate {
                        bail!("{p}: privileged containers are not supported on Fargate");
                    }
                    c.insert("privileged".into(), json!(true));
                }
            }
            "read_only" => {
                c.insert(
                    "readonlyRootFilesystem".into(),
                    json!(v.as_bool().unwrap_or(false)),
                );
            }
            "init" => {
                linux.insert(
                    "initProcessEnabled".into(),
                    json!(v.as_bool().unwrap_or(false)),
                );
            }
            "tty" => {
                c.insert("pseudoTerminal".into(), json!(v.as_bool().unwrap_or(false)));
            }
            "stdin_open" => {
                c.insert("interactive".into(), json!(v.as_bool().unwrap_or(false)));
            }
            "stop_grace_period" => {
                let s = parse_duration(v)
                    .ok_or_else(|| anyhow!("{p}: {v} is not a duration like 1m30s"))?;
                if s > 120 {
                    ctx.notes.push(format!(
                        "{p}: {s}s is more than ECS's 120 s stopTimeout; 120 is used"
                    ));
                }
                c.insert("stopTimeout".into(), json!(s.clamp(0, 120)));
            }
            "restart" => {
                let r = scalar(v).unwrap_or_default();
                const WHAT_ECS_DOES: &str = "ECS restarts the container in place (essential or not), and only if it ran at least restartAttemptPeriod (default 300 s) since its last start; there is no limit on attempts";
                match r.as_str() {
                    "no" => {}
                    "always" | "unless-stopped" => {
                        c.insert("restartPolicy".into(), json!({"enabled": true}));
                        ctx.notes.push(format!(
                            "{p}: {r} became restartPolicy enabled: {WHAT_ECS_DOES}"
                        ));
                    }
                    _ if r == "on-failure" || r.starts_with("on-failure:") => {
                        if let Some(n) = r.strip_prefix("on-failure:") {
                            if n.parse::<u32>().is_err() {
                                bail!("{p}: {r:?}: on-failure takes a number of retries");
                            }
                        }
                        c.insert(
                            "restartPolicy".into(),
                            json!({"enabled": true, "ignoredExitCodes": [0]}),
                        );
                        let limit = match r.strip_prefix("on-failure:") {
                            Some(n) => format!(" (the limit of {n} retries is not kept)"),
                            None => String::new(),
                        };
                        ctx.notes.push(format!(
                            "{p}: {r} became restartPolicy enabled with ignoredExitCodes [0], so a container that exits 0 is not restarted{limit}: {WHAT_ECS_DOES}"
                        ));
                    }
                    other => bail!(
                        "{p}: {other:?} is not a restart policy (no, always, on-failure[:N], unless-stopped)"
                    ),
                }
            }
            "ulimits" => {
                let Some(u) = v.as_object() else {
                    bail!("{p} must be a mapping")
                };
                let mut out = Vec::new();
                for (k, x) in u {
                    let (soft, hard) = match x {
                        Value::Object(o) => (
                            o.get("soft").and_then(Value::as_i64),
                            o.get("hard").and_then(Value::as_i64),
                        ),
                        x => (x.as_i64(), x.as_i64()),
                    };
                    let (Some(soft), Some(hard)) = (soft, hard) else {
                        bail!("{p}.{k} must be a number or soft/hard numbers");
                    };
                    out.push(json!({"name": k, "softLimit": soft, "hardLimit": hard}));
                }
                c.insert("ulimits".into(), Value::Array(out));
            }
            "extra_hosts" if network_mode == "awsvpc" => {
                ctx.drop_key(p, "not supported with networkMode awsvpc")
            }
            "extra_hosts" => {
                let mut out = Vec::new();
                let pairs: Vec<(String, String)> = match v {
                    Value::Object(o) => o
                        .iter()
                        .map(|(k, x)| (k.clone(), scalar(x).unwrap_or_default()))
                        .collect(),
                    _ => string_list(v, &p, false)?
                        .into_iter()
                        .map(|s| {
                            let (h, ip) = s
                                .split_once('=')
                                .or_else(|| s.split_once(':'))
                                .ok_or_else(|| anyhow!("{p}: {s:?} is not host:address"))?;
                            Ok((h.to_string(), ip.to_string()))
                        })
                        .collect::<anyhow::Result<_>>()?,
                };
                for (h, ip) in pairs {
                    out.push(json!({"hostname": h, "ipAddress": ip}));
                }
                c.insert("extraHosts".into(), Value::Array(out));
            }
            "dns" | "dns_search" if network_mode == "awsvpc" => {
                ctx.drop_key(p, "not supported with networkMode awsvpc")
            }
            "dns" => {
                c.insert("dnsServers".into(), json!(string_list(v, &p, false)?));
            }
            "dns_search" => {
                c.insert("dnsSearchDomains".into(), json!(string_list(v, &p, false)?));
            }
            "dns_opt" => ctx.drop_key(p, "not converted"),
            "cap_add" | "cap_drop" => {
                // ECS's KernelCapabilities are upper case without `CAP_`.
                let caps: Vec<String> = string_list(v, &p, false)?
                    .iter()
                    .map(|c| {
                        let u = c.trim().to_ascii_uppercase();
                        u.strip_prefix("CAP_").map(str::to_string).unwrap_or(u)
                    })
                    .collect();
                if fargate && key == "cap_add" {
                    if let Some(bad) = caps.iter().find(|c| c.as_str() != "SYS_PTRACE") {
                        bail!("{p}: {bad} cannot be added on Fargate (only SYS_PTRACE)");
                    }
                }
                let field = if key == "cap_add" { "add" } else { "drop" };
                let entry = linux.entry("capabilities").or_insert_with(|| json!({}));
                entry[field] = json!(caps);
            }
            "tmpfs" if fargate => ctx.drop_key(p, "tmpfs mounts are not supported on Fargate"),
            "tmpfs" => {
                let mut out = Vec::new();
                for t in string_list(v, &p, false)? {
                    let (path_part, opts) = t.split_once(':').unwrap_or((&t, ""));
                    let size = opts
                        .split(',')
                        .find_map(|o| o.strip_prefix("size="))
                        .and_then(|s| parse_bytes_mib(&json!(s)))
                        .unwrap_or(64);
                    out.push(json!({"containerPath": path_part, "size": size}));
                }
                linux.insert("tmpfs".into(), Value::Array(out));
            }
            "shm_size" if fargate => ctx.drop_key(p, "not supported on Fargate"),
            "shm_size" => {
                linux.insert(
                    "sharedMemorySize".into(),
                    json!(parse_bytes_mib(v)
                        .ok_or_else(|| anyhow!("{p}: {v} is not a size like 64M"))?),
                );
            }
            "sysctls" => {
                let mut out = Vec::new();
                for (k, val) in key_values(v, &p)? {
                    if network_mode == "host" && k.starts_with("net.") {
                        ctx.drop_key(
                            format!("{p}.{k}"),
                            "ECS does not take network namespace systemControls (net.*) with networkMode host",
                        );
                        continue;
                    }
                    out.push(json!({"namespace": k, "value": val.unwrap_or_default()}));
                }
                if !out.is_empty() {
                    c.insert("systemControls".into(), Value::Array(out));
                }
            }
            "security_opt" if fargate => ctx.drop_key(p, "not supported on Fargate"),
            "security_opt" => {
                c.insert(
                    "dockerSecurityOptions".into(),
                    json!(string_list(v, &p, false)?),
                );
            }
            "links" if network_mode == "bridge" => {
                let mut out = Vec::new();
                for l in string_list(v, &p, false)? {
                    let (svc_name, alias) = l.split_once(':').unwrap_or((&l, ""));
                    let Some(target) = ctx.names.get(svc_name) else {
                        bail!("{p}: {svc_name:?} is not a service of this file");
                    };
                    out.push(json!(if alias.is_empty() {
                        target.clone()
                    } else {
                        format!("{target}:{alias}")
                    }));
                }
                c.insert("links".into(), Value::Array(out));
            }
            "links" => ctx.drop_key(
                p,
                &format!(
                    "with networkMode {network_mode} the containers reach each other on localhost"
                ),
            ),
            "network_mode" => {}
            "volumes" => {
                let mounts = convert_volumes(ctx, name, v, &p)?;
                c.insert("mountPoints".into(), Value::Array(mounts));
            }
            "volumes_from" => {
                let mut out = Vec::new();
                for s in string_list(v, &p, false)? {
                    let (src, mode) = s.split_once(':').unwrap_or((&s, "rw"));
                    if src == "container" {
                        bail!("{p}: {s:?} names a container outside this file");
                    }
                    let Some(target) = ctx.names.get(src) else {
                        bail!("{p}: {src:?} is not a service of this file");
                    };
                    out.push(json!({"sourceContainer": target, "readOnly": mode == "ro"}));
                }
                c.insert("volumesFrom".into(), Value::Array(out));
            }
            k if k.starts_with("x-") => {}
            k => match NOT_CONVERTED.iter().find(|(n, _)| *n == k) {
                Some((_, why)) => ctx.drop_key(p, why),
                None => ctx.drop_key(p, "unknown key, not converted"),
            },
        }
    }

    // env_file first; `environment` wins.
    if let Some(files) = svc.get("env_file") {
        let p = format!("{path}.env_file");
        let entries: Vec<(String, bool)> = match files {
            Value::String(s) => vec![(s.clone(), true)],
            Value::Array(a) => a
                .iter()
                .map(|x| match x {
                    Value::String(s) => Ok((s.clone(), true)),
                    Value::Object(o) => Ok((
                        o.get("path")
                            .and_then(Value::as_str)
                            .ok_or_else(|| anyhow!("{p}: an entry has no path"))?
                            .to_string(),
                        o.get("required").and_then(Value::as_bool).unwrap_or(true),
                    )),
                    _ => Err(anyhow!("{p}: items must be file names")),
                })
                .collect::<Result<_, _>>()?,
            _ => bail!("{p} must be a file name or a list"),
        };
        let mut from_files = BTreeMap::new();
        for (file, required) in entries {
            match read_file(&file) {
                Ok(text) => {
                    let (pairs, bare) = parse_env_file(&text);
                    from_files.extend(pairs);
                    for b in bare {
                        ctx.drop_key(format!("{p}: {file}: {b}"), "has no value");
                    }
                }
                Err(e) if required => return Err(e.context(format!("{p}: cannot read {file}"))),
                Err(_) => ctx
                    .notes
                    .push(format!("{p}: {file} is not there and not required")),
            }
        }
        for (k, v) in from_files {
            env.entry(k).or_insert(v);
        }
    }
    if !env.is_empty() {
        c.insert(
            "environment".into(),
            Value::Array(
                env.into_iter()
                    .map(|(k, v)| json!({"name": k, "value": v}))
                    .collect(),
            ),
        );
    }
    if !linux.is_empty() {
        c.insert("linuxParameters".into(), Value::Object(linux));
    }

    // Size.
    if let (Some(m), Some(r)) = (memory, reservation) {
        if r > m {
            bail!("{path}: the memory reservation ({r} MiB) is more than the limit ({m} MiB)");
        }
    }
    for (what, v) in [
        ("memory limit", memory),
        ("memory reservation", reservation),
    ] {
        if v.is_some_and(|v| v < 6) {
            bail!("{path}: the {what} is under ECS's 6 MiB minimum");
        }
    }
    if let Some(cpu) = cpu {
        c.insert("cpu".into(), json!(cpu));
    }
    if let Some(m) = memory {
        c.insert("memory".into(), json!(m));
    }
    if let Some(r) = reservation {
        c.insert("memoryReservation".into(), json!(r));
    }
    if !fargate && memory.is_none() && reservation.is_none() {
        c.insert("memoryReservation".into(), json!(512));
        ctx.notes.push(format!("{path}: no memory limit or reservation; memoryReservation 512 MiB is set (EC2 needs one per container)"));
    }
    Ok((c, (cpu.unwrap_or(0), memory.or(reservation).unwrap_or(0))))
}

/// The Compose service a converted container came from.
fn service_name(service_of: &BTreeMap<String, String>, c: &Value) -> String {
    let cname = c["name"].as_str().unwrap_or_default();
    service_of
        .get(cname)
        .cloned()
        .unwrap_or_else(|| cname.to_string())
}

/// A `service_healthy` dependency (HEALTHY) on a container that ends up with
/// no health check could never be met: ECS would wait for it forever.
fn check_healthy_dependencies(
    containers: &[Value],
    service_of: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    for c in containers {
        let Some(deps) = c.get("dependsOn").and_then(Value::as_array) else {
            continue;
        };
        for d in deps {
            if d["condition"] != "HEALTHY" {
                continue;
            }
            let dep_cname = d["containerName"].as_str().unwrap_or_default();
            let has_check = containers
                .iter()
                .any(|x| x["name"] == dep_cname && x.get("healthCheck").is_some());
            if !has_check {
                let svc = service_name(service_of, c);
                let dep = service_of
                    .get(dep_cname)
                    .map(String::as_str)
                    .unwrap_or(dep_cname);
                bail!(
                    "services.{svc}.depends_on.{dep}: {svc} waits for {dep} to be healthy (service_healthy), but {dep} has no health check in the task definition (none defined, disabled, or test NONE; one in its image is not seen by ECS), so ECS would wait forever; give {dep} a healthcheck test or use condition service_started"
                );
            }
        }
    }
    Ok(())
}

/// What the task execution role is needed for: awslogs, ECR images, secrets.
fn execution_role_reasons(containers: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for c in containers {
        let name = c["name"].as_str().unwrap_or_default();
        if c["logConfiguration"]["logDriver"] == "awslogs" {
            out.push(format!("send {name}'s logs to CloudWatch Logs (awslogs)"));
        }
        if c["image"]
            .as_str()
            .is_some_and(crate::ecs::taskdef_rules::is_ecr_image)
        {
            out.push(format!("pull {name}'s image from ECR"));
        }
        if c.get("secrets")
            .is_some_and(|s| s.as_array().is_some_and(|a| !a.is_empty()))
        {
            out.push(format!("read {name}'s secrets"));
        }
    }
    out
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

/// `value` with every use of one of `hosts` as a host name replaced by `to`,
/// or `None` when there is none. A use as a host: the host of a URL
/// (`postgres://user:pw@db:5432/x`, `http://api`), `host:port` (`db:5432`,
/// also in lists like `a:1,b:2`), or the whole value of a variable whose
/// name says it holds a host (`DB_HOST=db`; not `POSTGRES_USER=postgres`).
fn rewrite_hosts(value: &str, hosts: &[&str], var: &str, to: &str) -> Option<String> {
    let trimmed = value.trim();
    if hosts.contains(&trimmed) && names_a_host(var) {
        return Some(value.replacen(trimmed, to, 1));
    }
    const SEPARATORS: &[char] = &[',', ';', '=', '(', ')', '"', '\'', ' ', '\t', '\n'];
    let mut out = String::new();
    let mut changed = false;
    let mut rest = value;
    while !rest.is_empty() {
        let end = rest.find(SEPARATORS).unwrap_or(rest.len());
        let token = &rest[..end];
        // Where the host starts in the token, and whether a port must follow.
        let (start, need_port) = match token.find("//") {
            Some(i) => {
                let authority_end = token[i + 2..]
                    .find(['/', '?', '#'])
                    .map_or(token.len(), |j| i + 2 + j);
                let at = token[i + 2..authority_end].rfind('@');
                (at.map_or(i + 2, |j| i + 2 + j + 1), false)
            }
            None => (0, true),
        };
        let host_end = token[start..]
            .find([':', '/', '?', '#'])
            .map_or(token.len(), |j| start + j);
        let host = &token[start..host_end];
        let port = token[host_end..].starts_with(':')
            && token[host_end + 1..].starts_with(|ch: char| ch.is_ascii_digit());
        if hosts.contains(&host) && (port || !need_port) {
            out.push_str(&token[..start]);
            out.push_str(to);
            out.push_str(&token[host_end..]);
            changed = true;
        } else {
            out.push_str(token);
        }
        match rest[end..].chars().next() {
            Some(sep) => {
                out.push(sep);
                rest = &rest[end + sep.len_utf8()..];
            }
            None => rest = "",
        }
    }
    changed.then_some(out)
}

/// In Compose a container reaches another by its service name on the
/// default network. With awsvpc or host networking the task's containers
/// share one network namespace: environment values naming another service as
/// a host are rewritten to localhost. With bridge, the container is linked
/// to each service it names, so the name resolves.
fn service_hosts(
    ctx: &mut Ctx,
    containers: &mut [Value],
    service_of: &BTreeMap<String, String>,
    network_mode: &str,
) {
    let all: Vec<String> = ctx.names.keys().cloned().collect();
    for i in 0..containers.len() {
        let svc = service_name(service_of, &containers[i]);
        let cname = ctx.names[&svc].clone();
        // Longest first, so "db-replica" is not read as "db".
        let mut others: Vec<&str> = all
            .iter()
            .map(String::as_str)
            .filter(|s| *s != svc)
            .collect();
        others.sort_by_key(|h| std::cmp::Reverse(h.len()));
        let env: Vec<(String, String)> = containers[i]
            .get("environment")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["name"].as_str().unwrap_or_default().to_string(),
                            e["value"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if network_mode == "bridge" {
            let mut named: Vec<&str> = Vec::new();
            for (var, value) in &env {
                for h in &others {
                    if !named.contains(h) && rewrite_hosts(value, &[h], var, "x").is_some() {
                        named.push(h);
                    }
                }
            }
            named.sort();
            for dep in named {
                let target = ctx.names[dep].clone();
                let linked = containers[i]
                    .get("links")
                    .and_then(Value::as_array)
                    .is_some_and(|l| {
                        l.iter().filter_map(Value::as_str).any(|x| {
                            let (t, alias) = x.split_once(':').unwrap_or((x, x));
                            t == target || alias == dep
                        })
                    });
                if linked {
                    continue;
                }
                if waits_for(containers, &target, &cname) {
                    ctx.notes.push(format!(
                        "services.{svc}.environment names the service {dep}, but {dep} already waits for {svc} (links or depends_on), so no link is added and the name {dep} does not resolve in {svc}; use {dep}'s address or networkMode awsvpc"
                    ));
                    continue;
                }
                let c = containers[i]
                    .as_object_mut()
                    .expect("a container is a mapping");
                let links = c.entry("links").or_insert_with(|| json!([]));
                if let Some(l) = links.as_array_mut() {
                    l.push(json!(target));
                }
                let reach = if target == dep {
                    String::new()
                } else {
                    format!(" (as {target}: {dep} is not a valid ECS link alias; change the value)")
                };
                ctx.notes.push(format!(
                    "services.{svc}: linked to {dep}{reach}, since its environment names it as a host: with networkMode bridge ECS resolves other containers' names only through links"
                ));
            }
            continue;
        }
        // awsvpc or host: one network namespace.
        let mut changes = Vec::new();
        if let Some(Value::Array(env_out)) = containers[i].get_mut("environment") {
            for e in env_out.iter_mut() {
                let var = e["name"].as_str().unwrap_or_default().to_string();
                let Some(value) = e["value"].as_str().map(str::to_string) else {
                    continue;
                };
                if let Some(new) = rewrite_hosts(&value, &others, &var, "localhost") {
                    changes.push(format!(
                        "services.{svc}.environment.{var}: {value} → {new}: with networkMode {network_mode} the task's containers share one network namespace and reach each other at localhost, not by service name"
                    ));
                    e["value"] = json!(new);
                }
            }
        }
        ctx.notes.extend(changes);
        for field in ["command", "entryPoint"] {
            let mentions = containers[i]
                .get(field)
                .and_then(Value::as_array)
                .is_some_and(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .any(|arg| rewrite_hosts(arg, &others, "HOST", "localhost").is_some())
                });
            if mentions {
                ctx.notes.push(format!(
                    "services.{svc}.{field} names another service as a host; it was left as it is: with networkMode {network_mode} that service is at localhost"
                ));
            }
        }
    }
}

/// Whether container `from` waits for `to` (directly or through others) by
/// links or dependsOn: a link from `to` to `from` would make a cycle.
fn waits_for(containers: &[Value], from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(n) = todo.pop() {
        if n == to {
            return true;
        }
        if !seen.insert(n.clone()) {
            continue;
        }
        let Some(c) = containers.iter().find(|c| c["name"] == n.as_str()) else {
            continue;
        };
        for l in c["links"].as_array().into_iter().flatten() {
            if let Some(l) = l.as_str() {
                todo.push(l.split(':').next().unwrap_or(l).to_string());
            }
        }
        for d in c["dependsOn"].as_array().into_iter().flatten() {
            if let Some(d) = d["containerName"].as_str() {
                todo.push(d.to_string());
            }
        }
    }
    false
}

fn convert_healthcheck(ctx: &mut Ctx, v: &Value, p: &str) -> anyhow::Result<Option<Value>> {
    let Some(h) = v.as_object() else {
        bail!("{p} must be a mapping")
    };
    if h.get("disable").and_then(Value::as_bool) == Some(true) {
        return Ok(None);
    }
    let command: Vec<String> = match h.get("test") {
        None => {
            ctx.notes
                .push(format!("{p}: no test; the image's own HEALTHCHECK applies"));
            return Ok(None);
        }
        Some(Value::String(s)) => vec!["CMD-SHELL".into(), s.clone()],
        Some(t) => {
            let list = string_list(t, &format!("{p}.test"), false)?;
            match list.first().map(String::as_str) {
                Some("NONE") => return Ok(None),
                Some("CMD") | Some("CMD-SHELL") => list,
                _ => bail!("{p}.test must start with CMD, CMD-SHELL or NONE"),
            }
        }
    };
    let mut hc = json!({"command": command});
    for (key, field, lo, hi) in [
        ("interval", "interval", 5, 300),
        ("timeout", "timeout", 2, 60),
        ("start_period", "startPeriod", 0, 300),
    ] {
        if let Some(x) = h.get(key) {
            let s = parse_duration(x)
                .ok_or_else(|| anyhow!("{p}.{key}: {x} is not a duration like 1m30s"))?;
            let clamped = s.clamp(lo, hi);
            if clamped != s {
                ctx.notes.push(format!(
                    "{p}.{key}: {s}s is outside ECS's {lo} to {hi}; {clamped} is used"
                ));
            }
            hc[field] = json!(clamped);
        } else if key == "timeout" {
            // Compose's default timeout is 30 s, ECS's 5 s.
            hc["timeout"] = json!(30);
        }
    }
    if let Some(x) = h.get("retries") {
        let n = x
            .as_i64()
            .ok_or_else(|| anyhow!("{p}.retries must be a number"))?;
        let clamped = n.clamp(1, 10);
        if clamped != n {
            ctx.notes.push(format!(
                "{p}.retries: {n} is outside ECS's 1 to 10; {clamped} is used"
            ));
        }
        hc["retries"] = json!(clamped);
    }
    for k in h.keys() {
        if !matches!(
            k.as_str(),
            "test" | "interval" | "timeout" | "start_period" | "retries" | "disable"
        ) {
            ctx.drop_key(format!("{p}.{k}"), "ECS has no such health check setting");
        }
    }
    Ok(Some(hc))
}

fn is_host_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with('.') || s.starts_with('~')
}

fn convert_volumes(ctx: &mut Ctx, service: &str, v: &Value, p: &str) -> anyhow::Result<Vec<Value>> {
    let Value::Array(items) = v else {
        bail!("{p} must be a list")
    };
    let mut mounts = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = format!("{p}[{i}]");
        let (kind, source, target, read_only) = match item {
            Value::String(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                match parts.as_slice() {
                    [t] => ("volume", None, t.to_string(), false),
                    [src, t] => (
                        if is_host_path(src) { "bind" } else { "volume" },
                        Some(src.to_string()),
                        t.to_string(),
                        false,
                    ),
                    [src, t, mode] => (
                        if is_host_path(src) { "bind" } else { "volume" },
                        Some(src.to_string()),
                        t.to_string(),
                        mode.split(',').any(|m| m == "ro"),
                    ),
                    _ => bail!("{ip}: cannot read volume {s:?}"),
                }
            }
            Value::Object(o) => {
                let kind = o.get("type").and_then(Value::as_str).unwrap_or("volume");
                let target = o
                    .get("target")
                    .and_then(Value::as_str)
                    .ok_or_else(|| anyhow!("{ip}.target is missing"))?;
                let kind = match kind {
                    "volume" | "bind" => kind,
                    "tmpfs" => {
                        ctx.drop_key(ip, "tmpfs volumes are not converted (use tmpfs: on EC2)");
                        continue;
                    }
                    other => bail!("{ip}.type: {other:?} is not supported"),
                };
                (
                    kind,
                    o.get("source").and_then(Value::as_str).map(str::to_string),
                    target.to_string(),
                    o.get("read_only").and_then(Value::as_bool).unwrap_or(false),
                )
            }
            _ => bail!("{ip} must be a string or a mapping"),
        };
        let volume_name = match (kind, source) {
            ("bind", Some(src)) => {
                if ctx.fargate() {
                    bail!("{ip}: host path {src:?} cannot be mounted on Fargate (no host paths; use a named volume, or EFS)");
                }
                if !src.starts_with('/') {
                    bail!("{ip}: host path {src:?} is relative; ECS needs an absolute path on the container instance");
                }
                let name = sanitize_name(&format!("host{}", src.replace('/', "-")), true, 255);
                ctx.add_volume(
                    name.clone(),
                    json!({"name": name, "host": {"sourcePath": src}}),
                )
            }
            ("bind", None) => bail!("{ip}.source is missing for a bind mount"),
            (_, Some(src)) => {
                if !ctx.top_volumes.contains_key(&src) {
                    bail!("{ip}: volume {src:?} is not declared under the top-level `volumes`");
                }
                let name = sanitize_name(&src, true, 255);
                let decl = ctx
                    .top_volumes
                    .get(&src)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let vol = if ctx.fargate() {
                    ctx.notes.push(format!("{ip}: volume {src} is task storage on Fargate: shared by the task's containers, gone when the task stops (use EFS to keep data)"));
                    json!({"name": name})
                } else {
                    let mut cfg = json!({"scope": "shared", "autoprovision": true, "driver": decl.get("driver").and_then(Value::as_str).unwrap_or("local")});
                    if let Some(Value::Object(o)) = decl.get("driver_opts") {
                        cfg["driverOpts"] = Value::Object(
                            o.iter()
                                .map(|(k, v)| (k.clone(), json!(scalar(v).unwrap_or_default())))
                                .collect(),
                        );
                    }
                    json!({"name": name, "dockerVolumeConfiguration": cfg})
                };
                ctx.add_volume(name, vol)
            }
            (_, None) => {
                let name = sanitize_name(&format!("{}-anon-{i}", ctx.names[service]), true, 255);
                ctx.add_volume(name.clone(), json!({"name": name}))
            }
        };
        mounts.push(
            json!({"sourceVolume": volume_name, "containerPath": target, "readOnly": read_only}),
        );
    }
    Ok(mounts)
}

/// The family for a file: its `name`, else its directory's name.
fn default_family(doc: &Value, file: &Path) -> String {
    if let Some(n) = doc.get("name").and_then(Value::as_str) {
        return sanitize_name(n, true, 255);
    }
    let dir = std::fs::canonicalize(file)
        .ok()
        .and_then(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "compose".into());
    sanitize_name(&dir, true, 255)
}

/// `berth migrate compose`: convert, print what was not carried over on
/// stderr, print or write the task definition. Bad input writes nothing.
pub fn run(args: Args) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let origin = args.file.display().to_string();
    let doc = parse_yaml(&text).with_context(|| origin.clone())?;
    let family = match &args.family {
        Some(f) => {
            let s = sanitize_name(f, true, 255);
            if &s != f {
                bail!("--family {f:?}: a family takes up to 255 letters, digits, - and _");
            }
            s
        }
        None => default_family(&doc, &args.file),
    };
    let base = args
        .file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let read = |name: &str| -> anyhow::Result<String> {
        let p = base.join(name);
        std::fs::read_to_string(&p).map_err(|e| anyhow!("{}: {e}", p.display()))
    };
    let conv = convert(
        &doc,
        args.to,
        &family,
        args.execution_role_arn.as_deref(),
        &read,
    )
    .with_context(|| origin.clone())?;
    if text.contains("${") {
        eprintln!("note: ${{…}} variables are not interpolated; they are kept as written");
    }
    for n in &conv.notes {
        eprintln!("note: {n}");
    }
    for u in &conv.unconverted {
        eprintln!("not converted: {u}");
    }
    let out = format!(
        "{}\n",
        serde_json::to_string_pretty(&Value::Object(conv.task_definition))?
    );
    match &args.output_dir {
        Some(dir) => {
            write_files(dir, &[("task-definition.json".into(), out)])?;
            println!("{}", dir.join("task-definition.json").display());
        }
        None => print!("{out}"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::taskdef_rules::prepare;

    fn no_files(name: &str) -> anyhow::Result<String> {
        Err(anyhow!("{name}: no such file"))
    }

    const ROLE: &str = "arn:aws:iam::000000000000:role/ecsTaskExecutionRole";

    fn conv_role(yaml: &str, target: Target, role: Option<&str>) -> anyhow::Result<Conversion> {
        convert(&parse_yaml(yaml)?, target, "app", role, &no_files)
    }

    fn conv(yaml: &str, target: Target) -> anyhow::Result<Conversion> {
        conv_role(yaml, target, None)
    }

    fn ok(yaml: &str, target: Target) -> Conversion {
        ok_role(yaml, target, None)
    }

    fn ok_role(yaml: &str, target: Target, role: Option<&str>) -> Conversion {
        let c = conv_role(yaml, target, role).unwrap();
        prepare(&c.task_definition)
            .unwrap_or_else(|e| panic!("{e:?}: {:#}", Value::Object(c.task_definition.clone())));
        c
    }

    fn err(yaml: &str, target: Target) -> String {
        format!("{:#}", conv(yaml, target).unwrap_err())
    }

    fn container<'a>(c: &'a Conversion, name: &str) -> &'a Value {
        c.task_definition["containerDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .unwrap()
    }

    const FULL: &str = r#"
version: "3.8"
x-common: &common
  restart: unless-stopped
  labels:
    team: web
services:
  web:
    <<: *common
    image: nginx:1.27
    command: ["nginx", "-g", "daemon off;"]
    entrypoint: /docker-entrypoint.sh
    environment:
      - MODE=prod
      - EMPTY=
      - FROM_SHELL
    ports:
      - "8080:80"
      - target: 443
        published: 8443
        protocol: tcp
      - "9000-9001:9000-9001/udp"
    healthcheck:
      test: ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]
      interval: 1m30s
      timeout: 10s
      retries: 3
      start_period: 40s
    depends_on:
      api:
        condition: service_healthy
      migrate:
        condition: service_completed_successfully
      cache:
        condition: service_started
    deploy:
      replicas: 2
      resources:
        limits: {cpus: "0.5", memory: 512M}
        reservations: {memory: 256M}
    logging:
      driver: awslogs
      options: {awslogs-group: /ecs/web, awslogs-region: us-east-1, awslogs-stream-prefix: web}
    working_dir: /srv
    user: "101:101"
    read_only: true
    init: true
    stop_grace_period: 30s
    ulimits:
      nofile: {soft: 1024, hard: 4096}
    container_name: my-web
    networks: [front]
  api:
    image: example/api:2
    environment:
      DEBUG: "false"
      WORKERS: 4
    healthcheck:
      test: curl -f http://localhost:8000/health
      interval: 10s
    cpus: 1
    mem_limit: 1g
  migrate:
    image: example/api:2
    command: python manage.py migrate --noinput
  cache:
    image: redis:7
    volumes:
      - cache-data:/data
      - /scratch
networks:
  front: {}
volumes:
  cache-data: {}
"#;

    #[test]
    fn every_supported_key_on_fargate() {
        let c = ok_role(FULL, Target::Fargate, Some(ROLE));
        let td = &c.task_definition;
        assert_eq!(td["executionRoleArn"], ROLE);
        assert_eq!(td["networkMode"], "awsvpc");
        assert_eq!(td["requiresCompatibilities"], json!(["FARGATE"]));
        // 512 + 1024 cpu units; 512 + 1024 MiB → 2 vCPU, 4 GB.
        assert_eq!(
            (td["cpu"].as_str().unwrap(), td["memory"].as_str().unwrap()),
            ("2048", "4096")
        );
        let web = container(&c, "web");
        assert_eq!(web["command"], json!(["nginx", "-g", "daemon off;"]));
        assert_eq!(web["entryPoint"], json!(["/docker-entrypoint.sh"]));
        assert_eq!(
            web["environment"],
            json!([{"name": "EMPTY", "value": ""}, {"name": "MODE", "value": "prod"}])
        );
        assert_eq!(
            web["portMappings"],
            json!([
            {"containerPort": 80, "protocol": "tcp"},
            {"containerPort": 443, "protocol": "tcp"},
            {"containerPort": 9000, "protocol": "udp"},
            {"containerPort": 9001, "protocol": "udp"}])
        );
        assert_eq!(
            web["healthCheck"],
            json!({"command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"], "interval": 90, "timeout": 10, "startPeriod": 40, "retries": 3})
        );
        assert_eq!(
            web["dependsOn"],
            json!([
            {"containerName": "api", "condition": "HEALTHY"},
            {"containerName": "migrate", "condition": "SUCCESS"},
            {"containerName": "cache", "condition": "START"}])
        );
        assert_eq!(
            (
                web["cpu"].clone(),
                web["memory"].clone(),
                web["memoryReservation"].clone()
            ),
            (json!(512), json!(512), json!(256))
        );
        assert_eq!(web["logConfiguration"]["logDriver"], "awslogs");
        assert_eq!(
            web["logConfiguration"]["options"]["awslogs-stream-prefix"],
            "web"
        );
        assert_eq!(web["workingDirectory"], "/srv");
        assert_eq!(web["user"], "101:101");
        assert_eq!(web["readonlyRootFilesystem"], true);
        assert_eq!(web["linuxParameters"]["initProcessEnabled"], true);
        assert_eq!(web["stopTimeout"], 30);
        assert_eq!(
            web["ulimits"],
            json!([{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}])
        );
        assert_eq!(web["dockerLabels"], json!({"team": "web"}));
        assert_eq!(web["restartPolicy"], json!({"enabled": true}));
        assert_eq!(web["essential"], true);
        let api = container(&c, "api");
        assert_eq!(
            api["environment"],
            json!([{"name": "DEBUG", "value": "false"}, {"name": "WORKERS", "value": "4"}])
        );
        assert_eq!(
            api["healthCheck"]["command"],
            json!(["CMD-SHELL", "curl -f http://localhost:8000/health"])
        );
        assert_eq!(api["healthCheck"]["timeout"], 30, "Compose's default");
        assert_eq!(
            (api["cpu"].clone(), api["memory"].clone()),
            (json!(1024), json!(1024))
        );
        let migrate = container(&c, "migrate");
        assert_eq!(migrate["essential"], false, "waited on to complete");
        assert_eq!(
            migrate["command"],
            json!(["python", "manage.py", "migrate", "--noinput"])
        );
        let cache = container(&c, "cache");
        assert_eq!(
            cache["mountPoints"][0],
            json!({"sourceVolume": "cache-data", "containerPath": "/data", "readOnly": false})
        );
        assert_eq!(
            td["volumes"],
            json!([{"name": "cache-data"}, {"name": "cache-anon-1"}])
        );
        for key in [
            "services.web.deploy.replicas",
            "services.web.container_name",
            "services.web.networks",
            "services.web.environment.FROM_SHELL",
            "networks",
        ] {
            assert!(
                c.unconverted.iter().any(|u| u.starts_with(key)),
                "{key} in {:?}",
                c.unconverted
            );
        }
        assert!(c
            .notes
            .iter()
            .any(|n| n.contains("published port 8080 dropped")));
    }

    #[test]
    fn every_supported_key_on_ec2() {
        let c = ok(FULL, Target::Ec2);
        let td = &c.task_definition;
        assert_eq!(td["networkMode"], "bridge");
        assert!(td.get("cpu").is_none() && td.get("memory").is_none());
        let web = container(&c, "web");
        assert_eq!(
            web["portMappings"][0],
            json!({"containerPort": 80, "hostPort": 8080, "protocol": "tcp"})
        );
        assert_eq!(
            web["portMappings"][1],
            json!({"containerPort": 443, "hostPort": 8443, "protocol": "tcp"})
        );
        assert_eq!(
            web["portMappings"][3],
            json!({"containerPort": 9001, "hostPort": 9001, "protocol": "udp"})
        );
        assert_eq!(container(&c, "migrate")["memoryReservation"], 512);
        assert_eq!(
            td["volumes"][0],
            json!({"name": "cache-data", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "driver": "local"}})
        );
    }

    #[test]
    fn ec2_only_keys() {
        let yaml = r#"
services:
  db:
    image: postgres:16
    hostname: db
    privileged: true
    volumes: ["/var/lib/pg:/var/lib/postgresql/data:ro"]
    extra_hosts: ["somehost:162.242.195.82"]
    dns: 8.8.8.8
    cap_add: [NET_ADMIN]
    tmpfs: ["/run:size=32m"]
    shm_size: 256m
    sysctls: {net.core.somaxconn: 1024}
    security_opt: ["no-new-privileges:true"]
    logging: {driver: json-file, options: {max-size: 10m}}
  app:
    image: app:1
    links: ["db:database"]
    volumes_from: ["db:ro"]
    mem_reservation: 128m
    cpu_shares: 256
"#;
        let c = ok(yaml, Target::Ec2);
        let db = container(&c, "db");
        assert_eq!(db["hostname"], "db");
        assert_eq!(db["privileged"], true);
        assert_eq!(db["mountPoints"][0]["readOnly"], true);
        assert_eq!(
            c.task_definition["volumes"][0]["host"]["sourcePath"],
            "/var/lib/pg"
        );
        assert_eq!(
            db["extraHosts"],
            json!([{"hostname": "somehost", "ipAddress": "162.242.195.82"}])
        );
        assert_eq!(db["dnsServers"], json!(["8.8.8.8"]));
        assert_eq!(
            db["linuxParameters"]["capabilities"]["add"],
            json!(["NET_ADMIN"])
        );
        assert_eq!(
            db["linuxParameters"]["tmpfs"],
            json!([{"containerPath": "/run", "size": 32}])
        );
        assert_eq!(db["linuxParameters"]["sharedMemorySize"], 256);
        assert_eq!(
            db["systemControls"],
            json!([{"namespace": "net.core.somaxconn", "value": "1024"}])
        );
        assert_eq!(
            db["logConfiguration"],
            json!({"logDriver": "json-file", "options": {"max-size": "10m"}})
        );
        let app = container(&c, "app");
        assert_eq!(app["links"], json!(["db:database"]));
        assert_eq!(
            app["volumesFrom"],
            json!([{"sourceContainer": "db", "readOnly": true}])
        );
        assert_eq!(
            (app["memoryReservation"].clone(), app["cpu"].clone()),
            (json!(128), json!(256))
        );
    }

    #[test]
    fn host_network_on_ec2() {
        let c = ok(
            "services:\n  a:\n    image: a\n    network_mode: host\n    ports: ['80:80']\n",
            Target::Ec2,
        );
        assert_eq!(c.task_definition["networkMode"], "host");
        assert_eq!(container(&c, "a")["portMappings"][0]["hostPort"], 80);
    }

    #[test]
    fn fargate_drops_what_awsvpc_does_not_take() {
        let c = ok("services:\n  a:\n    image: a\n    hostname: x\n    links: [b]\n    dns: [1.1.1.1]\n    logging: {driver: json-file}\n  b:\n    image: b\n", Target::Fargate);
        let a = container(&c, "a");
        for k in ["hostname", "links", "dnsServers", "logConfiguration"] {
            assert!(a.get(k).is_none(), "{k}");
        }
        assert_eq!(c.unconverted.len(), 4, "{:?}", c.unconverted);
        assert_eq!(c.task_definition["cpu"], "256");
        assert_eq!(c.task_definition["memory"], "512");
    }

    #[test]
    fn errors_name_the_key() {
        for (yaml, target, key) in [
            (
                "version: '1'\nservices: {a: {image: a}}\n",
                Target::Fargate,
                "version",
            ),
            (
                "version: '4.0'\nservices: {a: {image: a}}\n",
                Target::Ec2,
                "version",
            ),
            (
                "services: {a: {build: .}}\n",
                Target::Fargate,
                "services.a.build",
            ),
            (
                "services: {a: {command: x}}\n",
                Target::Fargate,
                "services.a.image",
            ),
            (
                "services: {a: {image: a, privileged: true}}\n",
                Target::Fargate,
                "services.a.privileged",
            ),
            (
                "services: {a: {image: a, network_mode: host}}\n",
                Target::Fargate,
                "services.a.network_mode",
            ),
            (
                "services: {a: {image: a, volumes: ['./data:/data']}}\n",
                Target::Fargate,
                "services.a.volumes[0]",
            ),
            (
                "services: {a: {image: a, volumes: ['./data:/data']}}\n",
                Target::Ec2,
                "services.a.volumes[0]",
            ),
            (
                "services: {a: {image: a, volumes: ['undeclared:/data']}}\n",
                Target::Ec2,
                "services.a.volumes[0]",
            ),
            (
                "services: {a: {image: a, cap_add: [NET_ADMIN]}}\n",
                Target::Fargate,
                "services.a.cap_add",
            ),
            (
                "services: {a: {image: a, depends_on: [b]}}\n",
                Target::Fargate,
                "services.a.depends_on",
            ),
            (
                "services: {a: {image: a, healthcheck: {test: [CMD, x], interval: soon}}}\n",
                Target::Fargate,
                "services.a.healthcheck.interval",
            ),
            (
                "services: {a: {image: a, ports: ['http']}}\n",
                Target::Fargate,
                "services.a.ports[0]",
            ),
            (
                "services: {a: {image: a, network_mode: 'service:b'}}\n",
                Target::Ec2,
                "services.a.network_mode",
            ),
            (
                "services: {a: {image: a, deploy: {resources: {limits: {memory: lots}}}}}\n",
                Target::Fargate,
                "services.a.deploy.resources.limits.memory",
            ),
            (
                "services: {a: {image: a, env_file: .env}}\n",
                Target::Fargate,
                "services.a.env_file",
            ),
            (
                "include: [other.yml]\nservices: {a: {image: a}}\n",
                Target::Fargate,
                "include",
            ),
            ("version: '3'\n", Target::Fargate, "services"),
        ] {
            let e = err(yaml, target);
            assert!(e.contains(key), "{yaml}: {e}");
        }
        assert!(err("services: [", Target::Fargate).contains("YAML"));
    }

    #[test]
    fn env_file_and_environment_merge() {
        let yaml = "services:\n  a:\n    image: a\n    env_file: [common.env, {path: missing.env, required: false}]\n    environment: {B: from-environment}\n";
        let read = |name: &str| -> anyhow::Result<String> {
            match name {
                "common.env" => {
                    Ok("# comment\nexport A=1\nB=from-file\nC=\"quoted value\"\nBARE\n".into())
                }
                _ => Err(anyhow!("no such file")),
            }
        };
        let c = convert(
            &parse_yaml(yaml).unwrap(),
            Target::Fargate,
            "app",
            None,
            &read,
        )
        .unwrap();
        prepare(&c.task_definition).unwrap();
        assert_eq!(
            container(&c, "a")["environment"],
            json!([
            {"name": "A", "value": "1"}, {"name": "B", "value": "from-environment"}, {"name": "C", "value": "quoted value"}])
        );
        assert!(c.unconverted.iter().any(|u| u.contains("BARE")));
    }

    #[test]
    fn fargate_size_rounds_up() {
        let c = ok("services:\n  a: {image: a, deploy: {resources: {limits: {cpus: '1.5', memory: 3000M}}}}\n  b: {image: b, mem_limit: 2g}\n", Target::Fargate);
        assert_eq!(c.task_definition["cpu"], "2048");
        assert_eq!(c.task_definition["memory"], "5120");
        let e = err("services:\n  a: {image: a, cpus: 64}\n", Target::Fargate);
        assert!(e.contains("Fargate"), "{e}");
    }

    #[test]
    fn durations_sizes_and_cpus() {
        assert_eq!(parse_duration(&json!("1m30s")), Some(90));
        assert_eq!(parse_duration(&json!("1h")), Some(3600));
        assert_eq!(parse_duration(&json!("500ms")), Some(1));
        assert_eq!(parse_duration(&json!("1.5s")), Some(2));
        assert_eq!(parse_duration(&json!(20)), Some(20));
        assert_eq!(parse_duration(&json!("10x")), None);
        assert_eq!(parse_duration(&json!("s")), None);
        assert_eq!(parse_bytes_mib(&json!("512M")), Some(512));
        assert_eq!(parse_bytes_mib(&json!("1g")), Some(1024));
        assert_eq!(parse_bytes_mib(&json!("1.5GB")), Some(1536));
        assert_eq!(parse_bytes_mib(&json!("2048k")), Some(2));
        assert_eq!(parse_bytes_mib(&json!(1073741824)), Some(1024));
        assert_eq!(parse_bytes_mib(&json!("big")), None);
        assert_eq!(parse_cpus(&json!("0.25")), Some(256));
        assert_eq!(parse_cpus(&json!(2)), Some(2048));
    }

    #[test]
    fn health_check_bounds_and_none() {
        let c = ok("services:\n  a:\n    image: a\n    healthcheck: {test: [CMD, check], interval: 1s, timeout: 2m, retries: 20, start_period: 10m}\n  b:\n    image: b\n    healthcheck: {test: [NONE]}\n  c:\n    image: c\n    healthcheck: {disable: true}\n", Target::Fargate);
        assert_eq!(
            container(&c, "a")["healthCheck"],
            json!({"command": ["CMD", "check"], "interval": 5, "timeout": 60, "startPeriod": 300, "retries": 10})
        );
        assert!(container(&c, "b").get("healthCheck").is_none());
        assert!(container(&c, "c").get("healthCheck").is_none());
    }

    #[test]
    fn service_names_become_valid_container_names() {
        let c = ok(
            "services:\n  web.app: {image: a}\n  other: {image: b, depends_on: [web.app]}\n",
            Target::Fargate,
        );
        assert_eq!(
            container(&c, "other")["dependsOn"][0]["containerName"],
            "web-app"
        );
    }
    #[test]
    fn fargate_needs_an_execution_role_for_awslogs_and_ecr() {
        let awslogs = "services:\n  a:\n    image: a\n    logging: {driver: awslogs, options: {awslogs-group: g, awslogs-region: us-east-1, awslogs-stream-prefix: a}}\n";
        let ecr =
            "services:\n  a:\n    image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web:1\n";
        for (yaml, why) in [(awslogs, "awslogs"), (ecr, "ECR")] {
            let e = err(yaml, Target::Fargate);
            assert!(e.contains("--execution-role-arn"), "{e}");
            assert!(e.contains(why), "{e}");
            assert!(e.contains("executionRoleArn"), "{e}");
            let c = ok_role(yaml, Target::Fargate, Some(ROLE));
            assert_eq!(c.task_definition["executionRoleArn"], ROLE);
            // EC2: never required, set when given.
            let c = ok(yaml, Target::Ec2);
            assert!(c.task_definition.get("executionRoleArn").is_none());
            let c = ok_role(yaml, Target::Ec2, Some(ROLE));
            assert_eq!(c.task_definition["executionRoleArn"], ROLE);
        }
        // Neither: no role needed, but one given is kept.
        let c = ok("services:\n  a:\n    image: nginx\n", Target::Fargate);
        assert!(c.task_definition.get("executionRoleArn").is_none());
        let c = ok_role(
            "services:\n  a:\n    image: nginx\n",
            Target::Fargate,
            Some(ROLE),
        );
        assert_eq!(c.task_definition["executionRoleArn"], ROLE);
        // An ECR-like name that is not an ECR host is not ECR.
        assert!(!crate::ecs::taskdef_rules::is_ecr_image(
            "example/dkr.ecr.amazonaws.com"
        ));
        assert!(crate::ecs::taskdef_rules::is_ecr_image(
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/a@sha256:00"
        ));
        // Secrets in the output need it too.
        let reasons = execution_role_reasons(&[json!({"name": "a", "image": "x",
            "secrets": [{"name": "K", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/k"}]})]);
        assert_eq!(reasons, vec!["read a's secrets".to_string()]);
    }

    #[test]
    fn capabilities_lose_the_cap_prefix() {
        let yaml = "services:\n  a:\n    image: a\n    cap_add: [CAP_SYS_PTRACE]\n    cap_drop: [cap_net_raw, Mknod]\n";
        let c = ok(yaml, Target::Fargate);
        assert_eq!(
            container(&c, "a")["linuxParameters"]["capabilities"],
            json!({"add": ["SYS_PTRACE"], "drop": ["NET_RAW", "MKNOD"]})
        );
        let e = err(
            "services:\n  a:\n    image: a\n    cap_add: [cap_net_admin]\n",
            Target::Fargate,
        );
        assert!(e.contains("NET_ADMIN"), "{e}");
        let c = ok(
            "services:\n  a:\n    image: a\n    cap_add: [cap_net_admin]\n",
            Target::Ec2,
        );
        assert_eq!(
            container(&c, "a")["linuxParameters"]["capabilities"]["add"],
            json!(["NET_ADMIN"])
        );
    }

    const TALKING: &str = r#"
services:
  web:
    image: web
    environment:
      DATABASE_URL: postgres://postgres:secret@db:5432/app
      API: http://api:8080/v1
      CACHE: cache:6379
      DB_HOST: db
      POSTGRES_USER: postgres
      MODE: api
      OTHER: http://dbx:1
  api:
    image: api
  db:
    image: postgres
  postgres:
    image: postgres
  cache:
    image: redis
"#;

    #[test]
    fn service_names_become_localhost_with_awsvpc_and_host() {
        for (target, yaml) in [
            (Target::Fargate, TALKING.to_string()),
            (
                Target::Ec2,
                TALKING.replace("    image: ", "    network_mode: host\n    image: "),
            ),
        ] {
            let c = ok(&yaml, target);
            let env = &container(&c, "web")["environment"];
            let value = |n: &str| {
                env.as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["name"] == n)
                    .unwrap()["value"]
                    .clone()
            };
            assert_eq!(
                value("DATABASE_URL"),
                "postgres://postgres:secret@localhost:5432/app"
            );
            assert_eq!(value("API"), "http://localhost:8080/v1");
            assert_eq!(value("CACHE"), "localhost:6379");
            assert_eq!(value("DB_HOST"), "localhost");
            assert_eq!(value("POSTGRES_USER"), "postgres", "not a host");
            assert_eq!(value("MODE"), "api", "not a host variable");
            assert_eq!(value("OTHER"), "http://dbx:1", "not a service");
            for var in ["DATABASE_URL", "API", "CACHE", "DB_HOST"] {
                let key = format!("services.web.environment.{var}:");
                assert!(
                    c.notes
                        .iter()
                        .any(|n| n.starts_with(&key) && n.contains("localhost")),
                    "{key} in {:?}",
                    c.notes
                );
            }
            assert!(container(&c, "web").get("links").is_none());
        }
    }

    #[test]
    fn service_names_become_links_with_bridge() {
        let c = ok(TALKING, Target::Ec2);
        let web = container(&c, "web");
        assert_eq!(web["links"], json!(["api", "cache", "db"]));
        assert_eq!(
            web["environment"][1],
            json!({"name": "CACHE", "value": "cache:6379"}),
            "unchanged"
        );
        assert!(
            c.notes
                .iter()
                .any(|n| n.starts_with("services.web: linked to db")),
            "{:?}",
            c.notes
        );
        // Already linked (by an alias): not added twice.
        let c = ok(
            "services:\n  a:\n    image: a\n    links: ['db:database']\n    environment: {DB: 'db:5432', D2: 'database:5432'}\n  db:\n    image: db\n",
            Target::Ec2,
        );
        assert_eq!(container(&c, "a")["links"], json!(["db:database"]));
        // A link back would make a cycle: noted, not linked.
        let c = ok(
            "services:\n  a:\n    image: a\n    environment: {B: 'http://b:80'}\n  b:\n    image: b\n    environment: {A: 'http://a:80'}\n",
            Target::Ec2,
        );
        let links = |n: &str| container(&c, n).get("links").cloned();
        assert_eq!(links("a"), Some(json!(["b"])));
        assert_eq!(links("b"), None);
        assert!(c.notes.iter().any(|n| n.contains("no link is added")));
    }

    #[test]
    fn rewrite_hosts_finds_hosts_only() {
        let hosts = ["db", "api"];
        let r = |v: &str, var: &str| rewrite_hosts(v, &hosts, var, "localhost");
        assert_eq!(r("db:5432", "X").as_deref(), Some("localhost:5432"));
        assert_eq!(
            r("mongodb://u@db:1,api:2/x", "X").as_deref(),
            Some("mongodb://u@localhost:1,localhost:2/x")
        );
        assert_eq!(r("redis://db", "X").as_deref(), Some("redis://localhost"));
        assert_eq!(r("db", "DB_HOST").as_deref(), Some("localhost"));
        assert_eq!(r("db", "DB_NAME"), None);
        assert_eq!(r("db:latest", "X"), None);
        assert_eq!(r("http://db.example.com:80", "X"), None);
        assert_eq!(r("mydb:5432", "X"), None);
    }

    #[test]
    fn restart_policies() {
        let yaml = |r: &str| format!("services:\n  a:\n    image: a\n    restart: {r}\n");
        for (r, want) in [
            ("always", Some(json!({"enabled": true}))),
            ("unless-stopped", Some(json!({"enabled": true}))),
            (
                "on-failure",
                Some(json!({"enabled": true, "ignoredExitCodes": [0]})),
            ),
            (
                "on-failure:3",
                Some(json!({"enabled": true, "ignoredExitCodes": [0]})),
            ),
            ("\"no\"", None),
        ] {
            let c = ok(&yaml(r), Target::Fargate);
            assert_eq!(
                container(&c, "a").get("restartPolicy").cloned(),
                want,
                "{r}"
            );
            if want.is_some() {
                let note = c
                    .notes
                    .iter()
                    .find(|n| n.starts_with("services.a.restart"))
                    .unwrap();
                assert!(note.contains("in place (essential or not)"), "{note}");
                assert!(
                    note.contains("restartAttemptPeriod (default 300 s)"),
                    "{note}"
                );
            }
        }
        assert!(err(&yaml("sometimes"), Target::Ec2).contains("services.a.restart"));
    }

    #[test]
    fn health_check_timeout_defaults_to_composes() {
        let c = ok(
            "services:\n  a:\n    image: a\n    healthcheck: {test: [CMD, check]}\n  b:\n    image: b\n    healthcheck: {test: [CMD, check], timeout: 1s}\n",
            Target::Fargate,
        );
        assert_eq!(container(&c, "a")["healthCheck"]["timeout"], 30);
        assert_eq!(container(&c, "b")["healthCheck"]["timeout"], 2, "clamped");
    }

    #[test]
    fn service_healthy_needs_a_health_check_in_the_output() {
        for check in [
            "",
            "    healthcheck: {disable: true}\n",
            "    healthcheck: {test: [NONE]}\n",
            "    healthcheck: {interval: 5s}\n",
        ] {
            let yaml = format!("services:\n  web:\n    image: a\n    depends_on: {{db: {{condition: service_healthy}}}}\n  db:\n    image: b\n{check}");
            let e = err(&yaml, Target::Fargate);
            assert!(e.contains("services.web.depends_on.db"), "{e}");
            assert!(
                e.contains("web") && e.contains("db has no health check"),
                "{e}"
            );
        }
        let c = ok(
            "services:\n  web:\n    image: a\n    depends_on: {db: {condition: service_healthy}}\n  db:\n    image: b\n    healthcheck: {test: [CMD, ok]}\n",
            Target::Fargate,
        );
        assert_eq!(container(&c, "web")["dependsOn"][0]["condition"], "HEALTHY");
    }

    #[test]
    fn host_network_drops_net_sysctls() {
        let yaml = "services:\n  a:\n    image: a\n    network_mode: host\n    sysctls: {net.core.somaxconn: 1024, kernel.shmmax: 65536}\n";
        let c = ok(yaml, Target::Ec2);
        assert_eq!(
            container(&c, "a")["systemControls"],
            json!([{"namespace": "kernel.shmmax", "value": "65536"}])
        );
        assert!(
            c.unconverted
                .iter()
                .any(|u| u.starts_with("services.a.sysctls.net.core.somaxconn:")),
            "{:?}",
            c.unconverted
        );
        let c = ok(
            "services:\n  a:\n    image: a\n    sysctls: [net.core.somaxconn=1024]\n",
            Target::Ec2,
        );
        assert_eq!(
            container(&c, "a")["systemControls"][0]["namespace"],
            "net.core.somaxconn"
        );
    }
}
