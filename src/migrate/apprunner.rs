//! `berth migrate apprunner`: an App Runner service (the JSON of
//! `aws apprunner describe-service`) turned into what runs it on ECS with
//! the FARGATE launch type behind an Application Load Balancer:
//!
//! | file | for |
//! | --- | --- |
//! | `task-definition.json` | `aws ecs register-task-definition --cli-input-json` |
//! | `target-group.json` | `aws elbv2 create-target-group --cli-input-json` |
//! | `listener.json` | `aws elbv2 create-listener --cli-input-json` |
//! | `service.json` | `aws ecs create-service --cli-input-json` |
//! | `scalable-target.json` | `aws application-autoscaling register-scalable-target --cli-input-json` |
//! | `scaling-policy.json` | `aws application-autoscaling put-scaling-policy --cli-input-json` |
//! | `README.md` | the commands above, in order, and every placeholder to fill in |
//!
//! [`convert`] is pure; [`run`] reads the files and writes the directory
//! (all or nothing).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};

use crate::ecs::taskdef_rules::{fargate_round_up, parse_cpu, parse_memory};

/// Placeholder for the subnets the tasks and the load balancer run in.
pub const SUBNET: &str = "REPLACE_WITH_SUBNET_ID";
/// Placeholder for the tasks' security group.
pub const SECURITY_GROUP: &str = "REPLACE_WITH_SECURITY_GROUP_ID";
/// Placeholder for the VPC of the target group.
pub const VPC: &str = "REPLACE_WITH_VPC_ID";
/// Placeholder for the ARN `create-load-balancer` answers.
pub const LOAD_BALANCER_ARN: &str = "REPLACE_WITH_LOAD_BALANCER_ARN";
/// Placeholder for the ARN `create-target-group` answers.
pub const TARGET_GROUP_ARN: &str = "REPLACE_WITH_TARGET_GROUP_ARN";
/// Placeholder for the account, when the App Runner ARN does not give it.
pub const ACCOUNT: &str = "REPLACE_WITH_ACCOUNT_ID";

/// `berth migrate apprunner FILE --output-dir DIR`
#[derive(clap::Args)]
pub struct Args {
    /// The output of `aws apprunner describe-service` (`{"Service": {...}}`).
    pub file: PathBuf,
    /// Directory to write the files into (created; existing files of the
    /// same names are replaced).
    #[arg(long)]
    pub output_dir: PathBuf,
    /// The output of `aws apprunner describe-auto-scaling-configuration` for
    /// the service's auto scaling configuration (MinSize, MaxSize,
    /// MaxConcurrency); without it, App Runner's defaults (1, 25, 100).
    #[arg(long)]
    pub auto_scaling: Option<PathBuf>,
    /// The ECS cluster the service is created in.
    #[arg(long, default_value = "default")]
    pub cluster: String,
}

/// The App Runner auto scaling settings that carry over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scaling {
    /// Fewest instances (App Runner keeps them provisioned).
    pub min_size: i64,
    /// Most instances.
    pub max_size: i64,
    /// Concurrent requests an instance takes before App Runner scales out.
    pub max_concurrency: i64,
}

impl Default for Scaling {
    fn default() -> Self {
        Scaling {
            min_size: 1,
            max_size: 25,
            max_concurrency: 100,
        }
    }
}

/// Everything one App Runner service becomes.
#[derive(Debug)]
pub struct Plan {
    /// Input of `aws ecs register-task-definition`.
    pub task_definition: Map<String, Value>,
    /// Input of `aws elbv2 create-target-group`.
    pub target_group: Value,
    /// Input of `aws elbv2 create-listener`.
    pub listener: Value,
    /// Input of `aws ecs create-service`.
    pub service: Value,
    /// Input of `aws application-autoscaling register-scalable-target`.
    pub scalable_target: Value,
    /// Input of `aws application-autoscaling put-scaling-policy`.
    pub scaling_policy: Value,
    /// The README: commands in order, placeholders, notes.
    pub readme: String,
    /// What changed in the move and why, one line each.
    pub notes: Vec<String>,
}

impl Plan {
    /// The files of the plan: (file name, contents).
    pub fn files(&self) -> Vec<(String, String)> {
        let json = |v: &Value| format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default());
        vec![
            (
                "task-definition.json".into(),
                json(&Value::Object(self.task_definition.clone())),
            ),
            ("target-group.json".into(), json(&self.target_group)),
            ("listener.json".into(), json(&self.listener)),
            ("service.json".into(), json(&self.service)),
            ("scalable-target.json".into(), json(&self.scalable_target)),
            ("scaling-policy.json".into(), json(&self.scaling_policy)),
            ("README.md".into(), self.readme.clone()),
        ]
    }
}

const SERVICE: &str = "Service";
const IMAGE_REPO: &str = "Service.SourceConfiguration.ImageRepository";
const IMAGE_CONFIG: &str = "Service.SourceConfiguration.ImageRepository.ImageConfiguration";

fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

fn string_field(o: &Map<String, Value>, key: &str, path: &str) -> anyhow::Result<Option<String>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => bail!("{path}.{key} must be a string"),
    }
}

fn int_field(o: &Map<String, Value>, key: &str, path: &str) -> anyhow::Result<Option<i64>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        {
            Some(n) if n >= 0 => Ok(Some(n)),
            _ => bail!("{path}.{key} must be a whole number, not {v}"),
        },
    }
}

/// Read the auto scaling settings from `describe-auto-scaling-configuration`
/// output (`{"AutoScalingConfiguration": {...}}`) or a bare configuration.
pub fn parse_scaling(v: &Value) -> anyhow::Result<Scaling> {
    let (o, path) = match obj(v, "AutoScalingConfiguration") {
        Some(o) => (o, "AutoScalingConfiguration"),
        None => match v.as_object() {
            Some(o) => (o, "auto scaling configuration"),
            None => bail!("the auto scaling configuration must be a JSON object"),
        },
    };
    scaling_from(o, path, Scaling::default())
}

fn scaling_from(o: &Map<String, Value>, path: &str, base: Scaling) -> anyhow::Result<Scaling> {
    let s = Scaling {
        min_size: int_field(o, "MinSize", path)?.unwrap_or(base.min_size),
        max_size: int_field(o, "MaxSize", path)?.unwrap_or(base.max_size),
        max_concurrency: int_field(o, "MaxConcurrency", path)?.unwrap_or(base.max_concurrency),
    };
    if s.max_size < s.min_size || s.max_size == 0 {
        bail!(
            "{path}: MaxSize ({}) must be at least 1 and at least MinSize ({})",
            s.max_size,
            s.min_size
        );
    }
    if s.max_concurrency == 0 {
        bail!("{path}.MaxConcurrency must be at least 1");
    }
    Ok(s)
}

/// Split a command line into words as a POSIX shell would, without
/// expanding anything; `None` when the quotes do not close.
pub fn shell_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => cur.push(c),
                            '\n' => {}
                            c => {
                                cur.push('\\');
                                cur.push(c);
                            }
                        },
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => cur.push(c),
                    None => cur.push('\\'),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// Whether a command line uses the shell (pipes, redirections, variables,
/// globs, several commands) outside quotes that keep it literal.
pub fn needs_shell(s: &str) -> bool {
    let mut single = false;
    let mut double = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '$' | '`' if !single => return true,
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '*' | '?' | '~' | '#'
                if !single && !double =>
            {
                return true
            }
            _ => {}
        }
    }
    false
}

/// A name ECS and ELB take: letters, digits and `-` (and `_` when
/// `underscore`), other characters turned into `-`, at most `max` long,
/// never starting or ending with `-`.
pub fn sanitize_name(s: &str, underscore: bool, max: usize) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || (underscore && c == '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut out: String = mapped.trim_matches('-').chars().take(max).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        "app".into()
    } else {
        out
    }
}

/// The region and account of an App Runner ARN
/// (`arn:aws:apprunner:REGION:ACCOUNT:service/NAME/ID`).
fn arn_parts(arn: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = arn.split(':').collect();
    (parts.len() >= 6 && parts[0] == "arn" && !parts[3].is_empty() && !parts[4].is_empty())
        .then(|| (parts[3].to_string(), parts[4].to_string()))
}

fn env_list(
    o: Option<&Map<String, Value>>,
    path: &str,
    value_key: &str,
) -> anyhow::Result<Vec<Value>> {
    let Some(o) = o else { return Ok(Vec::new()) };
    let mut pairs: Vec<(&String, String)> = Vec::new();
    for (k, v) in o {
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => bail!("{path}.{k} must be a string"),
        };
        pairs.push((k, v));
    }
    pairs.sort();
    Ok(pairs
        .into_iter()
        .map(|(k, v)| json!({"name": k, value_key: v}))
        .collect())
}

/// Convert an App Runner service description. `scaling` is the service's
/// auto scaling configuration when it was given apart (`--auto-scaling`);
/// otherwise the settings come from the document itself (a
/// `MinSize`/`MaxSize`/`MaxConcurrency` in `AutoScalingConfigurationSummary`
/// or a top-level `AutoScalingConfiguration`) or App Runner's defaults.
pub fn convert(doc: &Value, scaling: Option<Scaling>, cluster: &str) -> anyhow::Result<Plan> {
    let svc = match obj(doc, SERVICE) {
        Some(s) => s,
        None if doc.get("SourceConfiguration").is_some() => doc.as_object().unwrap_or_else(|| {
            unreachable!("a value with a member is an object")
        }),
        None => bail!("not an App Runner service description: it has no `Service` object (expected the output of `aws apprunner describe-service`)"),
    };
    let mut notes = Vec::new();

    // Source: only image repositories carry over; code repositories are built by App Runner.
    let source = svc
        .get("SourceConfiguration")
        .and_then(Value::as_object)
        .context("Service.SourceConfiguration is missing: the service has no source to migrate")?;
    let Some(repo) = source.get("ImageRepository").and_then(Value::as_object) else {
        if source.contains_key("CodeRepository") {
            bail!("{IMAGE_REPO} is missing: the service is built from a code repository (Service.SourceConfiguration.CodeRepository); build and push an image first, then migrate a service that runs it");
        }
        bail!("{IMAGE_REPO} is missing: the service has no image to run");
    };
    let image = string_field(repo, "ImageIdentifier", IMAGE_REPO)?
        .filter(|s| !s.trim().is_empty())
        .with_context(|| {
            format!(
                "{IMAGE_REPO}.ImageIdentifier is missing or empty: the service has no image to run"
            )
        })?;
    let repo_type = string_field(repo, "ImageRepositoryType", IMAGE_REPO)?;
    let empty = Map::new();
    let image_cfg = repo
        .get("ImageConfiguration")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let port_text = string_field(image_cfg, "Port", IMAGE_CONFIG)?.unwrap_or_else(|| "8080".into());
    let port: u16 = port_text
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .with_context(|| {
            format!("{IMAGE_CONFIG}.Port must be a port number from 1 to 65535, not {port_text:?}")
        })?;
    if !image_cfg.contains_key("Port") {
        notes.push("ImageConfiguration.Port is not set: App Runner's default 8080 is used".into());
    }

    let name_src = string_field(svc, "ServiceName", SERVICE)?.unwrap_or_else(|| "app".into());
    let name = sanitize_name(&name_src, true, 255);
    if name != name_src {
        notes.push(format!(
            "ServiceName {name_src:?} is not a valid ECS name; {name:?} is used for the family, container and service"
        ));
    }
    let arn = string_field(svc, "ServiceArn", SERVICE)?.unwrap_or_default();
    let (region, account) = match arn_parts(&arn) {
        Some(p) => p,
        None => {
            notes.push(format!("Service.ServiceArn does not give the region and account: us-east-1 is used for awslogs-region and {ACCOUNT} for the account"));
            ("us-east-1".into(), ACCOUNT.into())
        }
    };

    // Size: App Runner's sizes are all valid Fargate sizes; round up all the same.
    let inst = svc
        .get("InstanceConfiguration")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let cpu_text = string_field(inst, "Cpu", "Service.InstanceConfiguration")?
        .unwrap_or_else(|| "1 vCPU".into());
    let mem_text = string_field(inst, "Memory", "Service.InstanceConfiguration")?
        .unwrap_or_else(|| "2 GB".into());
    let cpu = parse_cpu(&cpu_text).with_context(|| {
        format!("Service.InstanceConfiguration.Cpu {cpu_text:?} is neither CPU units (1024) nor vCPUs (1 vCPU)")
    })?;
    let memory = parse_memory(&mem_text).with_context(|| {
        format!(
            "Service.InstanceConfiguration.Memory {mem_text:?} is neither MiB (2048) nor GB (2 GB)"
        )
    })?;
    let (task_cpu, task_memory) = fargate_round_up(cpu, memory).with_context(|| {
        format!("Service.InstanceConfiguration: {cpu_text} and {mem_text} is larger than any Fargate task size")
    })?;
    if (task_cpu, task_memory) != (cpu, memory) {
        notes.push(format!(
            "{cpu_text} / {mem_text} is not a Fargate task size; rounded up to cpu {task_cpu}, memory {task_memory}"
        ));
    }

    // The container.
    let mut container = Map::new();
    container.insert("name".into(), json!(name));
    container.insert("image".into(), json!(image));
    container.insert("essential".into(), json!(true));
    container.insert(
        "portMappings".into(),
        json!([{"containerPort": port, "protocol": "tcp"}]),
    );
    if let Some(start) =
        string_field(image_cfg, "StartCommand", IMAGE_CONFIG)?.filter(|s| !s.trim().is_empty())
    {
        let command = if needs_shell(&start) {
            notes.push("StartCommand uses the shell: it runs as [\"sh\", \"-c\", …], so the image needs /bin/sh".into());
            vec!["sh".to_string(), "-c".to_string(), start]
        } else {
            shell_words(&start).with_context(|| {
                format!("{IMAGE_CONFIG}.StartCommand has an unclosed quote: {start:?}")
            })?
        };
        container.insert("command".into(), json!(command));
    }
    let environment = env_list(
        image_cfg
            .get("RuntimeEnvironmentVariables")
            .and_then(Value::as_object),
        &format!("{IMAGE_CONFIG}.RuntimeEnvironmentVariables"),
        "value",
    )?;
    if !environment.is_empty() {
        container.insert("environment".into(), Value::Array(environment));
    }
    let secrets = env_list(
        image_cfg
            .get("RuntimeEnvironmentSecrets")
            .and_then(Value::as_object),
        &format!("{IMAGE_CONFIG}.RuntimeEnvironmentSecrets"),
        "valueFrom",
    )?;
    if !secrets.is_empty() {
        notes.push(format!(
            "RuntimeEnvironmentSecrets became {} container secret(s): the task execution role needs secretsmanager:GetSecretValue / ssm:GetParameters on them",
            secrets.len()
        ));
        container.insert("secrets".into(), Value::Array(secrets));
    }
    let log_group = format!("/ecs/{name}");
    container.insert(
        "logConfiguration".into(),
        json!({"logDriver": "awslogs", "options": {
            "awslogs-group": log_group,
            "awslogs-region": region,
            "awslogs-stream-prefix": "ecs",
        }}),
    );
    notes.push(format!(
        "logs go to the CloudWatch Logs group {log_group}, created by step 0 of the commands (the usual task execution role may not create log groups)"
    ));

    // Health check.
    let hc = svc
        .get("HealthCheckConfiguration")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    const HC: &str = "Service.HealthCheckConfiguration";
    let protocol = string_field(hc, "Protocol", HC)?.unwrap_or_else(|| "TCP".into());
    if !matches!(protocol.as_str(), "TCP" | "HTTP") {
        bail!("{HC}.Protocol must be TCP or HTTP, not {protocol:?}");
    }
    let path = string_field(hc, "Path", HC)?
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".into());
    let path = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let interval = int_field(hc, "Interval", HC)?.unwrap_or(5);
    let timeout = int_field(hc, "Timeout", HC)?.unwrap_or(2);
    let healthy = int_field(hc, "HealthyThreshold", HC)?.unwrap_or(1);
    let unhealthy = int_field(hc, "UnhealthyThreshold", HC)?.unwrap_or(5);
    let tg_interval = interval.clamp(5, 300);
    let tg_timeout = timeout.clamp(2, 120).min(tg_interval - 1);
    let tg_healthy = healthy.clamp(2, 10);
    let tg_unhealthy = unhealthy.clamp(2, 10);
    if (tg_interval, tg_timeout, tg_healthy, tg_unhealthy)
        != (interval, timeout, healthy, unhealthy)
    {
        notes.push(format!(
            "health check Interval {interval}s, Timeout {timeout}s, HealthyThreshold {healthy}, UnhealthyThreshold {unhealthy} are outside what a target group takes; the target group uses {tg_interval}s, {tg_timeout}s, {tg_healthy}, {tg_unhealthy}"
        ));
    }
    if protocol == "HTTP" {
        // Quoted for the shell: a path may hold `&`, `?`, `;` or spaces.
        let url = format!("'http://localhost:{port}{}'", path.replace('\'', "'\\''"));
        let ci = interval.clamp(5, 300);
        let ct = timeout.clamp(2, 60).min(ci - 1);
        let retries = unhealthy.clamp(1, 10);
        container.insert(
            "healthCheck".into(),
            json!({
                "command": ["CMD-SHELL", format!("wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url} || exit 1")],
                "interval": ci,
                "timeout": ct,
                "retries": retries,
                "startPeriod": 10,
            }),
        );
        notes.push("the HTTP health check also became a container healthCheck, which needs wget or curl in the image".into());
    } else {
        notes.push(format!(
            "App Runner checks TCP; an ALB target group checks HTTP only, so the target group asks for {path} and counts any answer (200-499) as healthy"
        ));
    }

    // Roles.
    let execution_role = format!("arn:aws:iam::{account}:role/ecsTaskExecutionRole");
    notes.push(format!(
        "executionRoleArn is {execution_role} (ECS's usual execution role; it pulls the image and writes the logs, App Runner's access role does not carry over)"
    ));
    if repo_type.as_deref() == Some("ECR_PUBLIC") {
        notes.push("the image is in ECR Public: the tasks need a route to the internet (assignPublicIp ENABLED or a NAT gateway)".into());
    }

    let mut td = Map::new();
    td.insert("family".into(), json!(name));
    td.insert("networkMode".into(), json!("awsvpc"));
    td.insert("requiresCompatibilities".into(), json!(["FARGATE"]));
    td.insert("cpu".into(), json!(task_cpu.to_string()));
    td.insert("memory".into(), json!(task_memory.to_string()));
    td.insert("executionRoleArn".into(), json!(execution_role));
    if let Some(role) = string_field(inst, "InstanceRoleArn", "Service.InstanceConfiguration")?
        .filter(|s| !s.is_empty())
    {
        td.insert("taskRoleArn".into(), json!(role));
        notes.push(format!(
            "InstanceRoleArn became taskRoleArn: its trust policy must allow ecs-tasks.amazonaws.com (App Runner's allows tasks.apprunner.amazonaws.com): {role}"
        ));
    }
    td.insert(
        "containerDefinitions".into(),
        Value::Array(vec![Value::Object(container)]),
    );
    td.insert(
        "runtimePlatform".into(),
        json!({"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"}),
    );

    // Scaling: given apart, else in the document, else App Runner's defaults.
    let scaling = match scaling {
        Some(s) => s,
        None => {
            let mut s = Scaling::default();
            let mut found = false;
            if let Some(summary) = svc
                .get("AutoScalingConfigurationSummary")
                .and_then(Value::as_object)
            {
                if ["MinSize", "MaxSize", "MaxConcurrency"]
                    .iter()
                    .any(|k| summary.contains_key(*k))
                {
                    s = scaling_from(summary, "Service.AutoScalingConfigurationSummary", s)?;
                    found = true;
                }
            }
            for (o, p) in [
                (
                    svc.get("AutoScalingConfiguration"),
                    "Service.AutoScalingConfiguration",
                ),
                (
                    doc.get("AutoScalingConfiguration"),
                    "AutoScalingConfiguration",
                ),
            ] {
                if let Some(o) = o.and_then(Value::as_object) {
                    s = scaling_from(o, p, s)?;
                    found = true;
                }
            }
            if !found {
                let cfg = svc
                    .get("AutoScalingConfigurationSummary")
                    .and_then(|v| v.get("AutoScalingConfigurationName"))
                    .and_then(Value::as_str)
                    .unwrap_or("DefaultConfiguration");
                notes.push(format!(
                    "describe-service does not carry MinSize/MaxSize/MaxConcurrency; App Runner's defaults (1, 25, 100) are used. Pass --auto-scaling with the output of `aws apprunner describe-auto-scaling-configuration` for {cfg:?} to use its values"
                ));
            }
            s
        }
    };
    notes.push(format!(
        "App Runner scales on {} concurrent requests per instance; ECS scales on ALBRequestCountPerTarget, requests per target per minute: the target {} assumes requests take about one second (concurrency × 60); with faster requests raise it in proportion, after watching the service",
        scaling.max_concurrency,
        request_target(scaling.max_concurrency)
    ));

    // Network.
    let net = svc
        .get("NetworkConfiguration")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let egress = net
        .get("EgressConfiguration")
        .and_then(|e| e.get("EgressType"))
        .and_then(Value::as_str)
        .unwrap_or("DEFAULT");
    let public_ip = if egress == "VPC" {
        let connector = net
            .get("EgressConfiguration")
            .and_then(|e| e.get("VpcConnectorArn"))
            .and_then(Value::as_str)
            .unwrap_or("(none)");
        notes.push(format!(
            "egress goes through the VPC connector {connector}: use its subnets and security groups (`aws apprunner describe-vpc-connector`) for {SUBNET} and {SECURITY_GROUP}; assignPublicIp is DISABLED"
        ));
        "DISABLED"
    } else {
        notes.push(format!(
            "App Runner gave the service internet egress; assignPublicIp is ENABLED for public subnets ({SUBNET}); use DISABLED with private subnets behind a NAT gateway"
        ));
        "ENABLED"
    };
    let public = net
        .get("IngressConfiguration")
        .and_then(|i| i.get("IsPubliclyAccessible"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let scheme = if public {
        "internet-facing"
    } else {
        "internal"
    };
    for (k, what) in [
        (
            "EncryptionConfiguration",
            "a customer KMS key for App Runner's own storage; nothing to carry over",
        ),
        (
            "ObservabilityConfiguration",
            "App Runner's X-Ray tracing; add an ADOT sidecar to the task definition to keep it",
        ),
    ] {
        if svc.get(k).is_some_and(|v| !v.is_null()) {
            notes.push(format!("Service.{k} is not converted: {what}"));
        }
    }
    if source
        .get("AutoDeploymentsEnabled")
        .and_then(Value::as_bool)
        == Some(true)
    {
        notes.push("AutoDeploymentsEnabled is not converted: deploy new images with register-task-definition and update-service (for example from CI)".into());
    }

    // Load balancing.
    let tg_name = format!("{}-tg", sanitize_name(&name, false, 29));
    let mut tg = json!({
        "Name": tg_name,
        "Protocol": "HTTP",
        "ProtocolVersion": "HTTP1",
        "Port": port,
        "VpcId": VPC,
        "TargetType": "ip",
        "HealthCheckEnabled": true,
        "HealthCheckProtocol": "HTTP",
        "HealthCheckPort": "traffic-port",
        "HealthCheckPath": path,
        "HealthCheckIntervalSeconds": tg_interval,
        "HealthCheckTimeoutSeconds": tg_timeout,
        "HealthyThresholdCount": tg_healthy,
        "UnhealthyThresholdCount": tg_unhealthy,
        "Matcher": {"HttpCode": if protocol == "HTTP" { "200-299" } else { "200-499" }},
    });
    if let Some(tags) = svc.get("Tags").and_then(Value::as_array) {
        tg["Tags"] = json!(tags);
    }
    let listener = json!({
        "LoadBalancerArn": LOAD_BALANCER_ARN,
        "Protocol": "HTTP",
        "Port": 80,
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": TARGET_GROUP_ARN}],
    });
    let service = json!({
        "cluster": cluster,
        "serviceName": name,
        "taskDefinition": name,
        "desiredCount": scaling.min_size,
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
        "loadBalancers": [{"targetGroupArn": TARGET_GROUP_ARN, "containerName": name, "containerPort": port}],
        "healthCheckGracePeriodSeconds": 60,
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": [SUBNET],
            "securityGroups": [SECURITY_GROUP],
            "assignPublicIp": public_ip,
        }},
        "deploymentConfiguration": {
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": true, "rollback": true},
        },
        "propagateTags": "SERVICE",
    });
    let resource_id = format!("service/{cluster}/{name}");
    let scalable_target = json!({
        "ServiceNamespace": "ecs",
        "ResourceId": resource_id,
        "ScalableDimension": "ecs:service:DesiredCount",
        "MinCapacity": scaling.min_size,
        "MaxCapacity": scaling.max_size,
    });
    let resource_label = format!("app/REPLACE_WITH_LOAD_BALANCER_NAME/REPLACE_WITH_LOAD_BALANCER_ID/targetgroup/{tg_name}/REPLACE_WITH_TARGET_GROUP_ID");
    let scaling_policy = json!({
        "PolicyName": format!("{name}-requests-per-target"),
        "ServiceNamespace": "ecs",
        "ResourceId": resource_id,
        "ScalableDimension": "ecs:service:DesiredCount",
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": request_target(scaling.max_concurrency),
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ALBRequestCountPerTarget",
                "ResourceLabel": resource_label,
            },
            "ScaleOutCooldown": 60,
            "ScaleInCooldown": 300,
        },
    });
    if scaling.min_size == 0 {
        notes.push("MinSize is 0: the service is created with desiredCount 0; App Runner keeps no provisioned instance then either, but ECS will not scale out from 0 on request count".into());
    }

    let readme = readme(&ReadmeInput {
        name: &name,
        source: &name_src,
        cluster,
        scheme,
        port,
        tg_name: &tg_name,
        log_group: &log_group,
        notes: &notes,
    });
    Ok(Plan {
        task_definition: td,
        target_group: tg,
        listener,
        service,
        scalable_target,
        scaling_policy,
        readme,
        notes,
    })
}

struct ReadmeInput<'a> {
    name: &'a str,
    source: &'a str,
    cluster: &'a str,
    scheme: &'a str,
    port: u16,
    tg_name: &'a str,
    log_group: &'a str,
    notes: &'a [String],
}

/// The `ALBRequestCountPerTarget` target (requests per target per minute)
/// for App Runner's `MaxConcurrency` (requests in flight per instance):
/// with requests of about one second, `concurrency` in flight is
/// `concurrency × 60` a minute.
fn request_target(max_concurrency: i64) -> f64 {
    (max_concurrency * 60) as f64
}

fn readme(r: &ReadmeInput) -> String {
    let ReadmeInput {
        name,
        source,
        cluster,
        scheme,
        port,
        tg_name,
        log_group,
        notes,
    } = r;
    let mut s = format!(
        "# {name}: from App Runner to ECS on Fargate\n\n\
Converted from the App Runner service `{source}` by `berth migrate apprunner`.\n\
The service runs as an ECS service with the FARGATE launch type behind an\n\
Application Load Balancer, which takes the place of App Runner's own endpoint.\n\n\
## Placeholders\n\n\
App Runner manages the network itself, so these values have no App Runner\n\
equivalent: replace them before running the commands.\n\n\
| placeholder | where | what |\n| --- | --- | --- |\n\
| `{SUBNET}` | service.json, step 3 | subnets for the tasks and the load balancer (two zones for the ALB) |\n\
| `{SECURITY_GROUP}` | service.json | a security group letting the load balancer reach port {port} |\n\
| `REPLACE_WITH_ALB_SECURITY_GROUP_ID` | step 3 | a security group open on port 80 for the load balancer |\n\
| `{VPC}` | target-group.json | the VPC of the subnets |\n\
| `{TARGET_GROUP_ARN}` | listener.json, service.json | `TargetGroups[0].TargetGroupArn` from step 2 |\n\
| `{LOAD_BALANCER_ARN}` | listener.json | `LoadBalancers[0].LoadBalancerArn` from step 3 |\n\
| `REPLACE_WITH_LOAD_BALANCER_NAME/…_ID`, `REPLACE_WITH_TARGET_GROUP_ID` | scaling-policy.json | the last parts of the two ARNs (`app/NAME/ID/targetgroup/{tg_name}/ID`) |\n\n\
## Commands, in order\n\n\
```sh\n\
# 0. the log group of the containers' output\n\
aws logs create-log-group --log-group-name {log_group}\n\
# 1. the task definition\n\
aws ecs register-task-definition --cli-input-json file://task-definition.json\n\
# 2. the target group\n\
aws elbv2 create-target-group --cli-input-json file://target-group.json\n\
# 3. the load balancer ({scheme}, as App Runner's ingress was)\n\
aws elbv2 create-load-balancer --name {lb}-alb --type application --scheme {scheme} \\\n\
\x20   --subnets {SUBNET} REPLACE_WITH_SECOND_SUBNET_ID --security-groups REPLACE_WITH_ALB_SECURITY_GROUP_ID\n\
# 4. the listener: port 80 forwards to the target group\n\
aws elbv2 create-listener --cli-input-json file://listener.json\n\
# 5. the cluster and the service\n\
aws ecs create-cluster --cluster-name {cluster}\n\
aws ecs create-service --cli-input-json file://service.json\n\
# 6. auto scaling, as App Runner's\n\
aws application-autoscaling register-scalable-target --cli-input-json file://scalable-target.json\n\
aws application-autoscaling put-scaling-policy --cli-input-json file://scaling-policy.json\n\
```\n\n\
For HTTPS, add a listener on 443 with `--protocol HTTPS --certificates CertificateArn=…`.\n\n\
## What changed\n\n",
        lb = sanitize_name(name, false, 28),
    );
    for n in notes.iter() {
        s.push_str("- ");
        s.push_str(n);
        s.push('\n');
    }
    s
}

/// Write `files` into `dir`: nothing is written unless every file can be.
/// A new directory is filled beside its final place and renamed into it;
/// in an existing one, each file is written beside and renamed over.
pub fn write_files(dir: &Path, files: &[(String, String)]) -> anyhow::Result<()> {
    if dir.exists() {
        if !dir.is_dir() {
            bail!("{} exists and is not a directory", dir.display());
        }
        let mut staged = Vec::new();
        for (name, text) in files {
            let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
            if let Err(e) = std::fs::write(&tmp, text) {
                for t in &staged {
                    let _ = std::fs::remove_file(t);
                }
                return Err(e).with_context(|| format!("cannot write {}", tmp.display()));
            }
            staged.push(tmp);
        }
        for ((name, _), tmp) in files.iter().zip(&staged) {
            std::fs::rename(tmp, dir.join(name))
                .with_context(|| format!("cannot write {}", dir.join(name).display()))?;
        }
        return Ok(());
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = parent.join(format!(".{base}.tmp-{}", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        std::fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        for (name, text) in files {
            std::fs::write(tmp.join(name), text).with_context(|| format!("cannot write {name}"))?;
        }
        std::fs::rename(&tmp, dir).with_context(|| format!("cannot create {}", dir.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// `berth migrate apprunner`: convert, print the notes on stderr, write the
/// directory. Bad input writes nothing.
pub fn run(args: Args) -> anyhow::Result<i32> {
    let doc = read_json(&args.file)?;
    let scaling = match &args.auto_scaling {
        Some(p) => Some(parse_scaling(&read_json(p)?).with_context(|| p.display().to_string())?),
        None => None,
    };
    let plan =
        convert(&doc, scaling, &args.cluster).with_context(|| args.file.display().to_string())?;
    write_files(&args.output_dir, &plan.files())?;
    for n in &plan.notes {
        eprintln!("note: {n}");
    }
    for (name, _) in plan.files() {
        println!("{}", args.output_dir.join(name).display());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::taskdef_rules::prepare;

    fn seed() -> Value {
        json!({"Service": {
            "ServiceName": "lobster-streamlit",
            "ServiceId": "8fe1e10304f84fd2b0df550fe98a71fa",
            "ServiceArn": "arn:aws:apprunner:us-east-2:123456789012:service/lobster-streamlit/8fe1e10304f84fd2b0df550fe98a71fa",
            "ServiceUrl": "abcdefgh.us-east-2.awsapprunner.com",
            "CreatedAt": "2025-01-10T10:00:00Z",
            "UpdatedAt": "2025-01-10T10:00:00Z",
            "Status": "RUNNING",
            "SourceConfiguration": {
                "ImageRepository": {
                    "ImageIdentifier": "123456789012.dkr.ecr.us-east-2.amazonaws.com/homara:latest",
                    "ImageConfiguration": {
                        "Port": "8501",
                        "RuntimeEnvironmentVariables": {"STREAMLIT_SERVER_HEADLESS": "true", "APP_ENV": "prod"},
                        "RuntimeEnvironmentSecrets": {"OPENAI_API_KEY": "arn:aws:secretsmanager:us-east-2:123456789012:secret:openai-AbCdEf"},
                        "StartCommand": "streamlit run app.py --server.port 8501"
                    },
                    "ImageRepositoryType": "ECR"
                },
                "AutoDeploymentsEnabled": true,
                "AuthenticationConfiguration": {"AccessRoleArn": "arn:aws:iam::123456789012:role/AppRunnerECRAccessRole"}
            },
            "InstanceConfiguration": {"Cpu": "0.5 vCPU", "Memory": "1 GB", "InstanceRoleArn": "arn:aws:iam::123456789012:role/lobster-instance"},
            "HealthCheckConfiguration": {"Protocol": "HTTP", "Path": "/healthz", "Interval": 10, "Timeout": 5, "HealthyThreshold": 1, "UnhealthyThreshold": 5},
            "AutoScalingConfigurationSummary": {
                "AutoScalingConfigurationArn": "arn:aws:apprunner:us-east-2:123456789012:autoscalingconfiguration/DefaultConfiguration/1/00000000000000000000000000000001",
                "AutoScalingConfigurationName": "DefaultConfiguration",
                "AutoScalingConfigurationRevision": 1
            },
            "NetworkConfiguration": {"EgressConfiguration": {"EgressType": "DEFAULT"}, "IngressConfiguration": {"IsPubliclyAccessible": true}}
        }})
    }

    #[test]
    fn seed_service_converts_to_a_valid_fargate_task_definition() {
        let plan = convert(&seed(), None, "lobster-cluster").unwrap();
        let td = &plan.task_definition;
        prepare(td).expect("the task definition registers");
        assert_eq!(td["cpu"], "512");
        assert_eq!(td["memory"], "1024");
        assert_eq!(td["networkMode"], "awsvpc");
        assert_eq!(
            td["executionRoleArn"],
            "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
        );
        assert_eq!(
            td["taskRoleArn"],
            "arn:aws:iam::123456789012:role/lobster-instance"
        );
        let c = &td["containerDefinitions"][0];
        assert_eq!(
            c["image"],
            "123456789012.dkr.ecr.us-east-2.amazonaws.com/homara:latest"
        );
        assert_eq!(c["portMappings"][0]["containerPort"], 8501);
        assert_eq!(
            c["command"],
            json!(["streamlit", "run", "app.py", "--server.port", "8501"])
        );
        assert_eq!(
            c["environment"],
            json!([{"name": "APP_ENV", "value": "prod"}, {"name": "STREAMLIT_SERVER_HEADLESS", "value": "true"}])
        );
        assert_eq!(c["secrets"][0]["name"], "OPENAI_API_KEY");
        assert!(c["secrets"][0]["valueFrom"]
            .as_str()
            .unwrap()
            .contains(":secretsmanager:"));
        assert_eq!(
            c["logConfiguration"]["options"]["awslogs-region"],
            "us-east-2"
        );
        assert_eq!(
            c["logConfiguration"]["options"]["awslogs-group"],
            "/ecs/lobster-streamlit"
        );
        assert_eq!(c["healthCheck"]["interval"], 10);
        assert_eq!(c["healthCheck"]["retries"], 5);
        assert!(c["healthCheck"]["command"][1]
            .as_str()
            .unwrap()
            .contains("'http://localhost:8501/healthz'"));
        assert!(c["logConfiguration"]["options"]
            .get("awslogs-create-group")
            .is_none());
    }

    #[test]
    fn health_check_url_is_quoted_for_the_shell() {
        let mut doc = seed();
        doc["Service"]["HealthCheckConfiguration"]["Path"] = json!("/health?a=1&b='x'");
        let plan = convert(&doc, None, "default").unwrap();
        let c = &plan.task_definition["containerDefinitions"][0];
        let cmd = c["healthCheck"]["command"][1].as_str().unwrap();
        assert!(
            cmd.contains(r#"'http://localhost:8501/health?a=1&b='\''x'\'''"#),
            "{cmd}"
        );
    }

    #[test]
    fn seed_service_gives_target_group_listener_service_and_scaling() {
        let plan = convert(&seed(), None, "lobster-cluster").unwrap();
        let tg = &plan.target_group;
        assert_eq!(tg["TargetType"], "ip");
        assert_eq!(tg["Protocol"], "HTTP");
        assert_eq!(tg["Port"], 8501);
        assert_eq!(tg["HealthCheckPath"], "/healthz");
        assert_eq!(tg["HealthCheckIntervalSeconds"], 10);
        assert_eq!(tg["HealthCheckTimeoutSeconds"], 5);
        assert_eq!(
            tg["HealthyThresholdCount"], 2,
            "App Runner's 1 is below ELB's minimum 2"
        );
        assert_eq!(tg["UnhealthyThresholdCount"], 5);
        assert!(tg["Name"].as_str().unwrap().len() <= 32);
        assert_eq!(plan.listener["DefaultActions"][0]["Type"], "forward");
        let s = &plan.service;
        assert_eq!(s["launchType"], "FARGATE");
        assert_eq!(s["desiredCount"], 1);
        assert_eq!(s["cluster"], "lobster-cluster");
        assert_eq!(s["loadBalancers"][0]["containerPort"], 8501);
        assert_eq!(
            s["networkConfiguration"]["awsvpcConfiguration"]["subnets"],
            json!([SUBNET])
        );
        assert_eq!(
            plan.scalable_target["ResourceId"],
            "service/lobster-cluster/lobster-streamlit"
        );
        assert_eq!(plan.scalable_target["MaxCapacity"], 25);
        let tt = &plan.scaling_policy["TargetTrackingScalingPolicyConfiguration"];
        assert_eq!(tt["TargetValue"], 6000.0, "100 in flight, about 1 s each");
        assert_eq!(
            tt["PredefinedMetricSpecification"]["PredefinedMetricType"],
            "ALBRequestCountPerTarget"
        );
        assert!(plan.readme.contains("register-task-definition"));
        assert!(plan.readme.contains("put-scaling-policy"));
        assert!(plan.notes.iter().any(|n| n.contains("--auto-scaling")));
        assert_eq!(plan.files().len(), 7);
    }

    #[test]
    fn auto_scaling_configuration_given_apart_or_inline() {
        let given = parse_scaling(&json!({"AutoScalingConfiguration": {"MinSize": 2, "MaxSize": 4, "MaxConcurrency": 50}})).unwrap();
        let plan = convert(&seed(), Some(given), "default").unwrap();
        assert_eq!(plan.service["desiredCount"], 2);
        assert_eq!(plan.scalable_target["MinCapacity"], 2);
        assert_eq!(plan.scalable_target["MaxCapacity"], 4);
        assert_eq!(
            plan.scaling_policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"],
            3000.0
        );
        let mut doc = seed();
        doc["Service"]["AutoScalingConfigurationSummary"]["MinSize"] = json!(3);
        doc["Service"]["AutoScalingConfigurationSummary"]["MaxSize"] = json!(6);
        let plan = convert(&doc, None, "default").unwrap();
        assert_eq!(plan.service["desiredCount"], 3);
        assert_eq!(plan.scalable_target["MaxCapacity"], 6);
        assert!(parse_scaling(&json!({"MinSize": 5, "MaxSize": 2})).is_err());
    }

    #[test]
    fn sizes_map_to_fargate_pairs() {
        for (cpu, mem, want) in [
            ("1 vCPU", "2 GB", ("1024", "2048")),
            ("0.25 vCPU", "0.5 GB", ("256", "512")),
            ("1024", "3072", ("1024", "3072")),
            ("2 vCPU", "6 GB", ("2048", "6144")),
            ("4 vCPU", "12 GB", ("4096", "12288")),
            ("0.25 vCPU", "4 GB", ("512", "4096")),
        ] {
            let mut doc = seed();
            doc["Service"]["InstanceConfiguration"] = json!({"Cpu": cpu, "Memory": mem});
            let plan = convert(&doc, None, "default").unwrap();
            prepare(&plan.task_definition).unwrap();
            assert_eq!(
                (
                    plan.task_definition["cpu"].as_str().unwrap(),
                    plan.task_definition["memory"].as_str().unwrap()
                ),
                want,
                "{cpu} {mem}"
            );
        }
        let mut doc = seed();
        doc["Service"]["InstanceConfiguration"] = json!({"Cpu": "lots", "Memory": "2 GB"});
        let e = convert(&doc, None, "default").unwrap_err().to_string();
        assert!(e.contains("InstanceConfiguration.Cpu"), "{e}");
    }

    #[test]
    fn tcp_health_check_and_defaults() {
        let doc = json!({"Service": {
            "ServiceName": "plain",
            "SourceConfiguration": {"ImageRepository": {"ImageIdentifier": "public.ecr.aws/nginx/nginx:latest", "ImageRepositoryType": "ECR_PUBLIC"}},
            "HealthCheckConfiguration": {"Protocol": "TCP", "Interval": 1, "Timeout": 1, "HealthyThreshold": 1, "UnhealthyThreshold": 20},
            "NetworkConfiguration": {"EgressConfiguration": {"EgressType": "VPC", "VpcConnectorArn": "arn:aws:apprunner:eu-west-1:1:vpcconnector/x/1/y"}, "IngressConfiguration": {"IsPubliclyAccessible": false}}
        }});
        let plan = convert(&doc, None, "default").unwrap();
        prepare(&plan.task_definition).unwrap();
        let c = &plan.task_definition["containerDefinitions"][0];
        assert!(c.get("healthCheck").is_none());
        assert!(c.get("command").is_none());
        assert_eq!(c["portMappings"][0]["containerPort"], 8080);
        assert_eq!(plan.task_definition["cpu"], "1024");
        assert_eq!(plan.task_definition["memory"], "2048");
        let tg = &plan.target_group;
        assert_eq!(tg["HealthCheckIntervalSeconds"], 5);
        assert_eq!(tg["HealthCheckTimeoutSeconds"], 2);
        assert_eq!(tg["UnhealthyThresholdCount"], 10);
        assert_eq!(tg["Matcher"]["HttpCode"], "200-499");
        assert_eq!(
            plan.service["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"],
            "DISABLED"
        );
        assert!(plan.readme.contains("--scheme internal"));
        assert!(plan.task_definition["executionRoleArn"]
            .as_str()
            .unwrap()
            .contains(ACCOUNT));
    }

    #[test]
    fn start_command_with_shell_syntax_runs_in_sh() {
        let mut doc = seed();
        doc["Service"]["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]
            ["StartCommand"] = json!("./migrate && exec gunicorn -b 0.0.0.0:$PORT app:app");
        let plan = convert(&doc, None, "default").unwrap();
        let cmd = &plan.task_definition["containerDefinitions"][0]["command"];
        assert_eq!(cmd[0], "sh");
        assert_eq!(cmd[1], "-c");
        assert_eq!(
            shell_words(r#"a "b c" 'd e' f\ g"#).unwrap(),
            vec!["a", "b c", "d e", "f g"]
        );
        assert!(shell_words("a 'b").is_none());
        assert!(!needs_shell("node 'a|b' server.js"));
        assert!(needs_shell("a | b"));
    }

    #[test]
    fn missing_image_and_bad_fields_name_the_field() {
        let mut doc = seed();
        doc["Service"]["SourceConfiguration"]["ImageRepository"]
            .as_object_mut()
            .unwrap()
            .remove("ImageIdentifier");
        let e = convert(&doc, None, "default").unwrap_err().to_string();
        assert!(e.contains("ImageIdentifier"), "{e}");
        let code = json!({"Service": {"ServiceName": "x", "SourceConfiguration": {"CodeRepository": {"RepositoryUrl": "https://example.com/r"}}}});
        let e = convert(&code, None, "default").unwrap_err().to_string();
        assert!(
            e.contains("ImageRepository") && e.contains("CodeRepository"),
            "{e}"
        );
        let mut doc = seed();
        doc["Service"]["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]["Port"] =
            json!("http");
        let e = convert(&doc, None, "default").unwrap_err().to_string();
        assert!(e.contains("Port"), "{e}");
        let e = convert(&json!({"Services": []}), None, "default")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Service"), "{e}");
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(sanitize_name("my.app/v2", true, 255), "my-app-v2");
        assert_eq!(sanitize_name("a_b", false, 255), "a-b");
        assert_eq!(sanitize_name("---", true, 10), "app");
        assert_eq!(sanitize_name("abcdefghij-klm", false, 11), "abcdefghij");
    }

    #[test]
    fn write_files_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a").join("out");
        write_files(&out, &[("x.json".into(), "{}".into())]).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("x.json")).unwrap(), "{}");
        write_files(&out, &[("x.json".into(), "[]".into())]).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("x.json")).unwrap(), "[]");
        assert_eq!(std::fs::read_dir(dir.path().join("a")).unwrap().count(), 1);
    }
}
