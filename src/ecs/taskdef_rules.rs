//! The rules of `RegisterTaskDefinition`, and the normalisations ECS applies
//! before it stores a task definition. Pure: a validated request in, the
//! `TaskDefinition` document (without ARN, revision, status and registration
//! stamps) or ECS's error out.

use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};

/// Valid Fargate task sizes: cpu units → allowed memory (MiB).
pub fn fargate_memory_ok(cpu: u32, memory: u32) -> bool {
    let stepped = |lo: u32, hi: u32, step: u32| {
        memory >= lo && memory <= hi && (memory - lo).is_multiple_of(step)
    };
    match cpu {
        256 => matches!(memory, 512 | 1024 | 2048),
        512 => stepped(1024, 4096, 1024),
        1024 => stepped(2048, 8192, 1024),
        2048 => stepped(4096, 16384, 1024),
        4096 => stepped(8192, 30720, 1024),
        8192 => stepped(16384, 61440, 4096),
        16384 => stepped(32768, 122880, 8192),
        _ => false,
    }
}

/// The smallest valid Fargate (cpu, memory) pair that holds `cpu` units and
/// `memory` MiB, if any does.
pub fn fargate_round_up(cpu: u32, memory: u32) -> Option<(u32, u32)> {
    const SIZES: &[(u32, u32, u32, u32)] = &[
        (256, 512, 2048, 512),
        (512, 1024, 4096, 1024),
        (1024, 2048, 8192, 1024),
        (2048, 4096, 16384, 1024),
        (4096, 8192, 30720, 1024),
        (8192, 16384, 61440, 4096),
        (16384, 32768, 122880, 8192),
    ];
    SIZES.iter().find_map(|&(c, lo, hi, step)| {
        if c < cpu || hi < memory {
            return None;
        }
        let mut m = lo;
        while m < memory {
            m += if c == 256 { m } else { step };
        }
        (m <= hi && fargate_memory_ok(c, m)).then_some((c, m))
    })
}

/// Parse task-level cpu: CPU units ("1024") or vCPUs ("1 vCPU", "0.25 vcpu").
pub fn parse_cpu(s: &str) -> Option<u32> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    if let Some(n) = lower.strip_suffix("vcpu") {
        let v: f64 = n.trim().parse().ok()?;
        let units = v * 1024.0;
        (units > 0.0 && units.fract() == 0.0 && units <= u32::MAX as f64).then_some(units as u32)
    } else {
        t.parse().ok().filter(|n| *n > 0)
    }
}

/// Parse task-level memory: MiB ("2048") or GB ("2 GB", "0.5GB").
pub fn parse_memory(s: &str) -> Option<u32> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    if let Some(n) = lower.strip_suffix("gb") {
        let v: f64 = n.trim().parse().ok()?;
        let mib = v * 1024.0;
        (mib > 0.0 && mib.fract() == 0.0 && mib <= u32::MAX as f64).then_some(mib as u32)
    } else {
        t.parse().ok().filter(|n| *n > 0)
    }
}

fn client(msg: impl Into<String>) -> ApiError {
    ApiError::client(msg)
}

fn container_error(name: &str, msg: &str) -> ApiError {
    client(format!("Invalid setting for container '{name}'. {msg}"))
}

fn str_of<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str)
}

fn int_of(o: &Map<String, Value>, k: &str) -> Option<i64> {
    o.get(k).and_then(Value::as_i64)
}

fn list_of<'a>(o: &'a Map<String, Value>, k: &str) -> &'a [Value] {
    o.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// ECS takes at most ten containers in a task definition.
pub const MAX_CONTAINERS: usize = 10;
/// ECS refuses a task definition whose JSON is longer than 64 KiB.
pub const MAX_TASK_DEFINITION_BYTES: usize = 65536;

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Apply ECS's rules and normalisations to a `RegisterTaskDefinition` request
/// (without `tags`), giving the `TaskDefinition` fields ECS stores.
pub fn prepare(input: &Map<String, Value>) -> ApiResult<Map<String, Value>> {
    let length = Value::Object(input.clone()).to_string().len();
    if length > MAX_TASK_DEFINITION_BYTES {
        return Err(client(format!(
            "Actual length: '{length}'. Max allowed length is '{MAX_TASK_DEFINITION_BYTES}' bytes."
        )));
    }
    let family = str_of(input, "family").unwrap_or_default();
    if !valid_name(family) {
        return Err(client(
            "Family must be up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores.",
        ));
    }
    let containers: Vec<&Map<String, Value>> = list_of(input, "containerDefinitions")
        .iter()
        .filter_map(Value::as_object)
        .collect();
    if containers.is_empty() {
        return Err(client("Container list cannot be empty."));
    }
    if containers.len() > MAX_CONTAINERS {
        return Err(client("Too many containers."));
    }
    let compat: Vec<&str> = list_of(input, "requiresCompatibilities")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let fargate = compat.contains(&"FARGATE");
    let network_mode = str_of(input, "networkMode").unwrap_or("bridge");

    // Task-level size, stored as ECS stores it: CPU units and MiB, as strings.
    let task_cpu = task_size(
        input,
        "cpu",
        parse_cpu,
        "CPU units (1024) nor vCPUs (1 vCPU)",
    )?;
    let task_memory = task_size(input, "memory", parse_memory, "MiB (2048) nor GB (2 GB)")?;

    if fargate {
        check_fargate(input, &containers, network_mode, task_cpu, task_memory)?;
    } else if let Some(cpu) = task_cpu {
        if !(128..=196_608).contains(&cpu) {
            return Err(client(format!(
                "Invalid 'cpu' setting for task. {cpu} CPU units is outside 128 to 196608."
            )));
        }
    }

    let names: Vec<&str> = containers
        .iter()
        .map(|c| str_of(c, "name").unwrap_or_default())
        .collect();
    for (i, c) in containers.iter().enumerate() {
        let name = names[i];
        if name.is_empty() {
            return Err(client("Container.name should not be null or empty."));
        }
        if !valid_name(name) {
            return Err(client("Container.name contains invalid characters."));
        }
        if str_of(c, "image").is_none_or(str::is_empty) {
            return Err(client("Container.image should not be null or empty."));
        }
        if names[..i].contains(&name) {
            return Err(client(
                "Container names must be unique within a Task Definition.",
            ));
        }
    }

    let mut out_containers = Vec::new();
    let (mut cpu_sum, mut reservation_sum) = (0i64, 0i64);
    for c in &containers {
        out_containers.push(Value::Object(check_container(
            c,
            &containers,
            &names,
            network_mode,
            fargate,
            task_memory,
        )?));
        cpu_sum += int_of(c, "cpu").unwrap_or(0);
        reservation_sum += int_of(c, "memoryReservation")
            .or(int_of(c, "memory"))
            .unwrap_or(0);
    }
    if !out_containers.iter().any(|c| c["essential"] == json!(true)) {
        return Err(client(
            "Task definition doesn't have any essential container.",
        ));
    }
    if task_cpu.is_some_and(|tc| cpu_sum > tc as i64) {
        return Err(client(
            "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'.",
        ));
    }
    if task_memory.is_some_and(|tm| reservation_sum > tm as i64) {
        return Err(client(
            "The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'.",
        ));
    }

    // Assemble in the order ECS returns the fields.
    let mut doc = Map::new();
    doc.insert("containerDefinitions".into(), Value::Array(out_containers));
    doc.insert("family".into(), json!(family));
    for k in ["taskRoleArn", "executionRoleArn"] {
        if let Some(v) = input.get(k).filter(|v| !v.is_null()) {
            doc.insert(k.into(), v.clone());
        }
    }
    doc.insert("networkMode".into(), json!(network_mode));
    doc.insert("volumes".into(), json!(list_of(input, "volumes")));
    let attrs = required_attributes(input, &doc, network_mode);
    doc.insert("requiresAttributes".into(), Value::Array(attrs));
    doc.insert(
        "placementConstraints".into(),
        json!(list_of(input, "placementConstraints")),
    );
    doc.insert("compatibilities".into(), json!(compatibilities(&compat)));
    for k in [
        "runtimePlatform",
        "inferenceAccelerators",
        "pidMode",
        "ipcMode",
        "proxyConfiguration",
        "ephemeralStorage",
        "enableFaultInjection",
    ] {
        if let Some(v) = input.get(k).filter(|v| !v.is_null()) {
            doc.insert(k.into(), v.clone());
        }
    }
    if !compat.is_empty() {
        doc.insert("requiresCompatibilities".into(), json!(compat));
    }
    if let Some(cpu) = task_cpu {
        doc.insert("cpu".into(), json!(cpu.to_string()));
    }
    if let Some(memory) = task_memory {
        doc.insert("memory".into(), json!(memory.to_string()));
    }
    Ok(doc)
}

/// A task-level `cpu` or `memory`, parsed from the units ECS accepts.
fn task_size(
    input: &Map<String, Value>,
    field: &str,
    parse: fn(&str) -> Option<u32>,
    units: &str,
) -> ApiResult<Option<u32>> {
    str_of(input, field)
        .map(|s| {
            parse(s).ok_or_else(|| {
                client(format!(
                    "Invalid '{field}' setting for task. '{s}' is neither {units}."
                ))
            })
        })
        .transpose()
}

/// What `requiresCompatibilities: ["FARGATE"]` adds to the rules.
fn check_fargate(
    input: &Map<String, Value>,
    containers: &[&Map<String, Value>],
    network_mode: &str,
    task_cpu: Option<u32>,
    task_memory: Option<u32>,
) -> ApiResult<()> {
    if network_mode != "awsvpc" {
        return Err(client("Fargate only supports network mode ‘awsvpc’."));
    }
    let Some(cpu) = task_cpu else {
        return Err(client(
            "Fargate requires that 'cpu' be defined at the task level.",
        ));
    };
    let Some(memory) = task_memory else {
        return Err(client(
            "Fargate requires that 'memory' be defined at the task level.",
        ));
    };
    if !fargate_memory_ok(cpu, memory) {
        return Err(client(format!(
            "No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. See the Amazon ECS documentation for the valid values."
        )));
    }
    if str_of(input, "pidMode") == Some("host") {
        return Err(client(
            "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'.",
        ));
    }
    if input.get("ipcMode").is_some_and(|v| !v.is_null()) {
        return Err(client(
            "Tasks using the Fargate launch type do not support ipcMode.",
        ));
    }
    if list_of(input, "volumes")
        .iter()
        .any(|v| v.pointer("/host/sourcePath").is_some_and(|p| !p.is_null()))
    {
        return Err(client(
            "Fargate compatible task definitions do not support sourcePath",
        ));
    }
    if containers
        .iter()
        .any(|c| c.get("privileged").and_then(Value::as_bool) == Some(true))
    {
        return Err(client(
            "Fargate compatible task definitions do not support privileged",
        ));
    }
    let windows = input
        .get("runtimePlatform")
        .and_then(|p| p.get("operatingSystemFamily"))
        .and_then(Value::as_str)
        .is_some_and(|f| f.starts_with("WINDOWS"));
    if windows && cpu < 1024 {
        return Err(client(format!(
            "Fargate Windows tasks need at least 1 vCPU: {cpu} CPU is not a valid Fargate configuration for Windows containers."
        )));
    }
    if str_of(input, "executionRoleArn").is_none() {
        let awslogs = containers.iter().any(|c| {
            c.get("logConfiguration")
                .and_then(|l| l.get("logDriver"))
                .and_then(Value::as_str)
                == Some("awslogs")
        });
        if awslogs {
            return Err(client(
                "Fargate requires task definition to have execution role ARN to support log driver awslogs.",
            ));
        }
        if containers
            .iter()
            .filter_map(|c| str_of(c, "image"))
            .any(is_ecr_image)
        {
            return Err(client(
                "Fargate requires task definition to have execution role ARN to support ECR images.",
            ));
        }
    }
    Ok(())
}

/// An image in a private Amazon ECR registry
/// (`<account>.dkr.ecr.<region>.amazonaws.com[.cn]/…`), which Fargate pulls with
/// the task's execution role.
pub fn is_ecr_image(image: &str) -> bool {
    let host = image.split('/').next().unwrap_or_default();
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() >= 6
        && parts[0].len() == 12
        && parts[0].chars().all(|c| c.is_ascii_digit())
        && parts[1] == "dkr"
        && parts[2] == "ecr"
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"))
}

/// One container's rules, and the container definition ECS stores for it.
fn check_container(
    c: &Map<String, Value>,
    all: &[&Map<String, Value>],
    names: &[&str],
    network_mode: &str,
    fargate: bool,
    task_memory: Option<u32>,
) -> ApiResult<Map<String, Value>> {
    let name = str_of(c, "name").unwrap_or_default();
    let memory = int_of(c, "memory");
    let reservation = int_of(c, "memoryReservation");
    if memory.is_none() && reservation.is_none() && task_memory.is_none() && !fargate {
        return Err(container_error(
            name,
            "At least one of 'memory' or 'memoryReservation' must be specified.",
        ));
    }
    for (what, v) in [("memory", memory), ("memoryReservation", reservation)] {
        if v.is_some_and(|v| v < 6) {
            return Err(container_error(
                name,
                &format!("The '{what}' setting must be at least 6 MiB."),
            ));
        }
    }
    if let (Some(m), Some(r)) = (memory, reservation) {
        if m < r {
            return Err(client(format!(
                "The 'memoryReservation' setting for container '{name}' is greater than the 'memory' setting."
            )));
        }
    }
    if let (Some(tm), Some(m)) = (task_memory, memory) {
        if m > tm as i64 {
            return Err(client(format!(
                "The 'memory' setting for container '{name}' is greater than for the task."
            )));
        }
    }
    let links: Vec<&str> = list_of(c, "links")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !links.is_empty() && network_mode != "bridge" {
        return Err(client(format!(
            "Links are not supported when networkMode={network_mode}."
        )));
    }
    for l in &links {
        let target = l.split(':').next().unwrap_or(l);
        if !names.contains(&target) {
            return Err(container_error(
                name,
                &format!("Link '{l}' names a container that is not in the task definition."),
            ));
        }
    }
    if network_mode == "awsvpc" && c.get("hostname").is_some_and(|h| !h.is_null()) {
        return Err(client(
            "hostname is not supported on container when networkMode=awsvpc.",
        ));
    }
    for d in list_of(c, "dependsOn") {
        let dep = d
            .get("containerName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !names.contains(&dep) || dep == name {
            return Err(client(format!(
                "Cannot depend on container + '{dep}' because it does not exist"
            )));
        }
        let condition = d
            .get("condition")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let dep_essential = all
            .iter()
            .find(|o| str_of(o, "name") == Some(dep))
            .and_then(|o| o.get("essential"))
            .and_then(Value::as_bool)
            .unwrap_or(true);
        if matches!(condition, "SUCCESS" | "COMPLETE") && dep_essential {
            return Err(client(
                "A dependency container with SUCCESS or COMPLETE condition cannot be an essential container",
            ));
        }
    }

    let mut ports = Vec::new();
    for p in list_of(c, "portMappings") {
        let mut p = p.as_object().cloned().unwrap_or_default();
        let container_port = int_of(&p, "containerPort");
        let host_port = int_of(&p, "hostPort");
        if container_port.is_none() && p.get("containerPortRange").is_none() {
            return Err(client(format!(
                "Invalid 'containerPort' setting for container '{name}'."
            )));
        }
        if matches!(network_mode, "awsvpc" | "host") {
            if let Some(cp) = container_port {
                if host_port.is_some_and(|hp| hp != cp) {
                    return Err(client(format!(
                        "When networkMode={network_mode}, the host ports and container ports in port mappings must match."
                    )));
                }
                p.insert("hostPort".into(), json!(cp));
            }
        }
        p.entry("protocol").or_insert_with(|| json!("tcp"));
        ports.push(Value::Object(p));
    }

    // ECS fills these in when they are absent.
    let mut out = c.clone();
    out.entry("cpu").or_insert_with(|| json!(0));
    out.insert("portMappings".into(), Value::Array(ports));
    let essential = c.get("essential").and_then(Value::as_bool).unwrap_or(true);
    out.insert("essential".into(), json!(essential));
    for list in ["environment", "mountPoints", "volumesFrom"] {
        out.entry(list).or_insert_with(|| json!([]));
    }
    Ok(out)
}

/// The launch types a task definition can run on: EC2 always (Linux), plus
/// each one it requires.
pub fn compatibilities(required: &[&str]) -> Vec<String> {
    let mut out = vec!["EC2".to_string()];
    for c in required {
        if !out.iter().any(|o| o == c) {
            out.push(c.to_string());
        }
    }
    out
}

/// The container-instance attributes a task definition needs, as ECS derives
/// them from the features it uses.
pub fn required_attributes(
    input: &Map<String, Value>,
    doc: &Map<String, Value>,
    network_mode: &str,
) -> Vec<Value> {
    let mut attrs: Vec<&str> = Vec::new();
    let mut add = |a: &'static str| {
        if !attrs.contains(&a) {
            attrs.push(a);
        }
    };
    let execution_role = input.get("executionRoleArn").is_some_and(|v| v.is_string());
    if input.get("taskRoleArn").is_some_and(|v| v.is_string()) {
        add("com.amazonaws.ecs.capability.task-iam-role");
    }
    if network_mode == "awsvpc" {
        add("ecs.capability.task-eni");
        add("com.amazonaws.ecs.capability.docker-remote-api.1.18");
    }
    for c in list_of(doc, "containerDefinitions") {
        let Some(c) = c.as_object() else { continue };
        if let Some(driver) = c
            .get("logConfiguration")
            .and_then(|l| l.get("logDriver"))
            .and_then(Value::as_str)
        {
            match driver {
                "awslogs" => {
                    add("com.amazonaws.ecs.capability.logging-driver.awslogs");
                    add("com.amazonaws.ecs.capability.docker-remote-api.1.19");
                    if execution_role {
                        add("ecs.capability.execution-role-awslogs");
                    }
                }
                "json-file" => add("com.amazonaws.ecs.capability.logging-driver.json-file"),
                "syslog" => add("com.amazonaws.ecs.capability.logging-driver.syslog"),
                "fluentd" => add("com.amazonaws.ecs.capability.logging-driver.fluentd"),
                "gelf" => add("com.amazonaws.ecs.capability.logging-driver.gelf"),
                "journald" => add("com.amazonaws.ecs.capability.logging-driver.journald"),
                "splunk" => add("com.amazonaws.ecs.capability.logging-driver.splunk"),
                "awsfirelens" => add("ecs.capability.firelens.fluentbit"),
                _ => {}
            }
        }
        if c.get("memoryReservation").is_some() {
            add("com.amazonaws.ecs.capability.docker-remote-api.1.21");
        }
        if c.get("healthCheck").is_some() {
            add("ecs.capability.container-health-check");
        }
        if !list_of(c, "dependsOn").is_empty() {
            add("ecs.capability.container-ordering");
        }
        let image = str_of(c, "image").unwrap_or_default();
        if image.contains(".dkr.ecr.") {
            add("com.amazonaws.ecs.capability.ecr-auth");
            if execution_role {
                add("ecs.capability.execution-role-ecr-pull");
            }
        }
        if c.get("repositoryCredentials").is_some() {
            add("com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager");
        }
        for s in list_of(c, "secrets") {
            let from = s
                .get("valueFrom")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if from.contains(":secretsmanager:") {
                add("ecs.capability.secrets.asm.environment-variables");
            } else {
                add("ecs.capability.secrets.ssm.environment-variables");
            }
        }
        if !list_of(c, "environmentFiles").is_empty() {
            add("ecs.capability.env-files.s3");
        }
    }
    attrs.into_iter().map(|a| json!({"name": a})).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn fargate(cpu: &str, memory: &str) -> Map<String, Value> {
        td(json!({
            "family": "f", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
            "cpu": cpu, "memory": memory,
            "containerDefinitions": [{"name": "app", "image": "busybox"}]
        }))
    }

    #[test]
    fn fargate_table() {
        for (c, m, ok) in [
            (256, 512, true),
            (256, 1536, false),
            (256, 2048, true),
            (256, 4096, false),
            (512, 1024, true),
            (512, 4096, true),
            (512, 5120, false),
            (1024, 2048, true),
            (1024, 8192, true),
            (1024, 1024, false),
            (2048, 4096, true),
            (2048, 5120, true),
            (2048, 16384, true),
            (2048, 4608, false),
            (4096, 8192, true),
            (4096, 30720, true),
            (4096, 31744, false),
            (8192, 16384, true),
            (8192, 20480, true),
            (8192, 17408, false),
            (8192, 61440, true),
            (16384, 32768, true),
            (16384, 40960, true),
            (16384, 36864, false),
            (16384, 122880, true),
            (128, 512, false),
            (300, 1024, false),
        ] {
            assert_eq!(fargate_memory_ok(c, m), ok, "{c}/{m}");
        }
    }

    #[test]
    fn fargate_needs_an_execution_role_for_awslogs_and_ecr() {
        let mut t = fargate("256", "512");
        t["containerDefinitions"][0]["logConfiguration"] = json!({"logDriver": "awslogs",
            "options": {"awslogs-group": "g", "awslogs-region": "us-east-1"}});
        let e = prepare(&t).unwrap_err();
        assert_eq!(e.code, "ClientException");
        assert!(e
            .message
            .contains("execution role ARN to support log driver awslogs"));
        t.insert(
            "executionRoleArn".into(),
            json!("arn:aws:iam::000000000000:role/x"),
        );
        assert!(prepare(&t).is_ok());
        let mut t = fargate("256", "512");
        t["containerDefinitions"][0]["image"] =
            json!("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1");
        assert!(prepare(&t).unwrap_err().message.contains("ECR images"));
        assert!(is_ecr_image(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/a/b@sha256:00"
        ));
        assert!(!is_ecr_image("public.ecr.aws/nginx/nginx:1"));
        assert!(!is_ecr_image("busybox"));
    }

    #[test]
    fn fargate_windows_needs_one_vcpu() {
        let mut t = fargate("512", "1024");
        t.insert("runtimePlatform".into(), json!({"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE", "cpuArchitecture": "X86_64"}));
        assert!(prepare(&t).unwrap_err().message.contains("at least 1 vCPU"));
        let mut t = fargate("1024", "2048");
        t.insert("runtimePlatform".into(), json!({"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE", "cpuArchitecture": "X86_64"}));
        assert!(prepare(&t).is_ok());
    }

    #[test]
    fn round_up_to_valid_fargate_size() {
        assert_eq!(fargate_round_up(100, 300), Some((256, 512)));
        assert_eq!(fargate_round_up(256, 1500), Some((256, 2048)));
        assert_eq!(fargate_round_up(256, 3000), Some((512, 3072)));
        assert_eq!(fargate_round_up(1500, 1000), Some((2048, 4096)));
        assert_eq!(fargate_round_up(9000, 17000), Some((16384, 32768)));
        assert_eq!(fargate_round_up(8192, 17000), Some((8192, 20480)));
        assert_eq!(fargate_round_up(20000, 1000), None);
    }

    #[test]
    fn units_are_normalised() {
        assert_eq!(parse_cpu("1 vCPU"), Some(1024));
        assert_eq!(parse_cpu("0.25 vcpu"), Some(256));
        assert_eq!(parse_cpu("512"), Some(512));
        assert_eq!(parse_cpu("abc"), None);
        assert_eq!(parse_memory("2 GB"), Some(2048));
        assert_eq!(parse_memory("0.5GB"), Some(512));
        assert_eq!(parse_memory("1024"), Some(1024));
        assert_eq!(parse_memory("-1"), None);
        let doc = prepare(&fargate("1 vCPU", "2 GB")).unwrap();
        assert_eq!(
            (doc["cpu"].as_str(), doc["memory"].as_str()),
            (Some("1024"), Some("2048"))
        );
    }

    #[test]
    fn fargate_rules() {
        assert!(prepare(&fargate("256", "512")).is_ok());
        let e = prepare(&fargate("256", "4096")).unwrap_err();
        assert_eq!(e.code, "ClientException");
        assert!(
            e.message.contains("No Fargate configuration exists"),
            "{}",
            e.message
        );
        let mut bridge = fargate("256", "512");
        bridge.insert("networkMode".into(), json!("bridge"));
        assert!(prepare(&bridge).unwrap_err().message.contains("awsvpc"));
        let mut no_size = fargate("256", "512");
        no_size.remove("cpu");
        assert!(prepare(&no_size)
            .unwrap_err()
            .message
            .contains("'cpu' be defined"));
        let mut privileged = fargate("256", "512");
        privileged["containerDefinitions"][0]["privileged"] = json!(true);
        assert!(prepare(&privileged).is_err());
        let mut pid = fargate("256", "512");
        pid.insert("pidMode".into(), json!("host"));
        assert!(prepare(&pid).is_err());
        let mut ipc = fargate("256", "512");
        ipc.insert("ipcMode".into(), json!("task"));
        assert!(prepare(&ipc).is_err());
        let mut vol = fargate("256", "512");
        vol.insert(
            "volumes".into(),
            json!([{"name": "v", "host": {"sourcePath": "/data"}}]),
        );
        assert!(prepare(&vol).is_err());
        let mut empty_host = fargate("256", "512");
        empty_host.insert("volumes".into(), json!([{"name": "v", "host": {}}]));
        assert!(prepare(&empty_host).is_ok());
    }

    #[test]
    fn ec2_rules_and_defaults() {
        let no_mem =
            td(json!({"family": "f", "containerDefinitions": [{"name": "a", "image": "x"}]}));
        let e = prepare(&no_mem).unwrap_err();
        assert!(
            e.message.contains("'memory' or 'memoryReservation'"),
            "{}",
            e.message
        );
        let ok = td(
            json!({"family": "f", "containerDefinitions": [{"name": "a", "image": "x", "memoryReservation": 64,
            "portMappings": [{"containerPort": 80, "hostPort": 0}]}]}),
        );
        let doc = prepare(&ok).unwrap();
        assert_eq!(doc["networkMode"], "bridge");
        assert_eq!(doc["compatibilities"], json!(["EC2"]));
        let c = &doc["containerDefinitions"][0];
        assert_eq!(
            (c["essential"].clone(), c["cpu"].clone()),
            (json!(true), json!(0))
        );
        assert_eq!(
            c["portMappings"][0],
            json!({"containerPort": 80, "hostPort": 0, "protocol": "tcp"})
        );
        let too_big = td(
            json!({"family": "f", "memory": "512", "containerDefinitions": [{"name": "a", "image": "x", "memory": 1024}]}),
        );
        assert!(prepare(&too_big).is_err());
        let res_gt_mem = td(
            json!({"family": "f", "containerDefinitions": [{"name": "a", "image": "x", "memory": 64, "memoryReservation": 128}]}),
        );
        assert!(prepare(&res_gt_mem).is_err());
    }

    #[test]
    fn container_rules() {
        let dup = td(
            json!({"family": "f", "memory": "512", "containerDefinitions": [
            {"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}),
        );
        assert!(prepare(&dup)
            .unwrap_err()
            .message
            .contains("must be unique"));
        let none_essential = td(
            json!({"family": "f", "memory": "512", "containerDefinitions": [
            {"name": "a", "image": "x", "essential": false}]}),
        );
        assert!(prepare(&none_essential)
            .unwrap_err()
            .message
            .contains("essential"));
        let bad_dep = td(
            json!({"family": "f", "memory": "512", "containerDefinitions": [
            {"name": "a", "image": "x", "dependsOn": [{"containerName": "b", "condition": "START"}]}]}),
        );
        assert!(prepare(&bad_dep).is_err());
        let links_awsvpc = td(
            json!({"family": "f", "memory": "512", "networkMode": "awsvpc", "containerDefinitions": [
            {"name": "a", "image": "x", "links": ["b"]}, {"name": "b", "image": "x"}]}),
        );
        assert!(prepare(&links_awsvpc)
            .unwrap_err()
            .message
            .contains("Links"));
        let links_bridge = td(
            json!({"family": "f", "memory": "512", "containerDefinitions": [
            {"name": "a", "image": "x", "links": ["b:db"]}, {"name": "b", "image": "x"}]}),
        );
        assert!(prepare(&links_bridge).is_ok());
    }

    #[test]
    fn awsvpc_host_ports() {
        let mut t = fargate("256", "512");
        t["containerDefinitions"][0]["portMappings"] = json!([{"containerPort": 8501}]);
        let doc = prepare(&t).unwrap();
        assert_eq!(
            doc["containerDefinitions"][0]["portMappings"][0]["hostPort"],
            8501
        );
        t["containerDefinitions"][0]["portMappings"] =
            json!([{"containerPort": 8501, "hostPort": 80}]);
        assert!(prepare(&t).is_err());
    }

    #[test]
    fn requires_attributes_follow_features() {
        let t = td(json!({
            "family": "f", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
            "cpu": "512", "memory": "1024",
            "executionRoleArn": "arn:aws:iam::1:role/exec", "taskRoleArn": "arn:aws:iam::1:role/task",
            "containerDefinitions": [{"name": "app", "image": "1.dkr.ecr.us-east-2.amazonaws.com/x:1",
              "logConfiguration": {"logDriver": "awslogs", "options": {}}}]
        }));
        let doc = prepare(&t).unwrap();
        let names: Vec<&str> = doc["requiresAttributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        for want in [
            "ecs.capability.task-eni",
            "com.amazonaws.ecs.capability.logging-driver.awslogs",
            "ecs.capability.execution-role-awslogs",
            "com.amazonaws.ecs.capability.task-iam-role",
            "com.amazonaws.ecs.capability.ecr-auth",
            "ecs.capability.execution-role-ecr-pull",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        assert_eq!(doc["compatibilities"], json!(["EC2", "FARGATE"]));
    }
}
