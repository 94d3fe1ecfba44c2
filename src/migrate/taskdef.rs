//! `berth migrate task-definition` and `berth migrate lint`: converting an
//! ECS task definition between the FARGATE and EC2 launch types.
//!
//! The core is pure: [`analyze`] takes a task definition (the input of
//! `RegisterTaskDefinition`) and a [`Target`], and gives the converted
//! definition with every [`Finding`]: each change made and why, notes on what
//! to review, and the blockers that stop the definition from running on the
//! target at all. [`convert`] is the same, refusing when anything blocks.
//! [`run_convert`] and [`run_lint`] are the thin CLI edge: load, analyze,
//! print, exit code.
//!
//! What counts as a blocker follows the ECS documentation ("Task definition
//! differences for Fargate", "Amazon ECS task definition parameters for
//! Fargate"): parameters Fargate does not take (`privileged`, host volumes,
//! `pidMode`/`ipcMode` host, GPUs, `linuxParameters.devices`, log drivers
//! other than awslogs, splunk and awsfirelens, `placementConstraints`, …) are
//! blockers when they ask for something, and are dropped when they are empty.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::ecs::taskdef_rules;

mod to_ec2;
mod to_fargate;

#[cfg(test)]
mod tests;

/// The launch type a task definition is converted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// AWS Fargate: `awsvpc`, a valid task size, no host access.
    Fargate,
    /// Container instances: `bridge` (or `host`, `awsvpc`), sized by container.
    Ec2,
}

impl Target {
    /// The launch type as ECS spells it in `requiresCompatibilities`.
    pub fn launch_type(self) -> &'static str {
        match self {
            Target::Fargate => "FARGATE",
            Target::Ec2 => "EC2",
        }
    }
}

/// The network mode of a definition converted to EC2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkMode {
    /// Each task gets an ENI (and address) of its own on the instance.
    Awsvpc,
    /// Each container in its own namespace on the Docker bridge; ports
    /// published on the instance's address.
    Bridge,
    /// The containers share the instance's network namespace.
    Host,
}

impl NetworkMode {
    /// The mode as ECS spells it in `networkMode`.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Awsvpc => "awsvpc",
            NetworkMode::Bridge => "bridge",
            NetworkMode::Host => "host",
        }
    }
}

/// How to convert, beyond the target.
#[derive(Clone, Debug)]
pub struct Options {
    /// EC2 only: the network mode to use (default `bridge`).
    pub network_mode: Option<NetworkMode>,
    /// EC2 `bridge` only: publish each port on the same host port as the
    /// container port instead of a dynamic one (`hostPort: 0`).
    pub static_ports: bool,
    /// EC2 only: drop the task-level cpu and memory, giving each container
    /// without a memory setting a `memoryReservation` instead.
    pub drop_task_size: bool,
    /// FARGATE only: the execution role to set when the definition needs one
    /// (awslogs, ECR images, secrets) and has none.
    pub execution_role_arn: Option<String>,
    /// The region whose Fargate prices are quoted.
    pub region: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            network_mode: None,
            static_ports: false,
            drop_task_size: false,
            execution_role_arn: None,
            region: "us-east-1".into(),
        }
    }
}

/// What a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The definition cannot run on the target; nothing is converted.
    Blocker,
    /// The converter changed, added or removed a field.
    Change,
    /// Nothing changed, but something behaves differently on the target and
    /// deserves a look.
    Note,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Blocker => "blocker",
            Kind::Change => "change",
            Kind::Note => "note",
        }
    }
}

/// One change, note or blocker: where (a path such as
/// `containerDefinitions[web].portMappings[0].hostPort`), what, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// Blocker, change or note.
    pub kind: Kind,
    /// The field it concerns.
    pub path: String,
    /// What was changed (or what blocks).
    pub what: String,
    /// Why, on the target launch type.
    pub why: String,
}

/// The result of [`analyze`]: the converted definition (meaningful only when
/// no finding is a blocker) and every finding, in the order met.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// The converted task definition, ready for `RegisterTaskDefinition`.
    pub task_definition: Map<String, Value>,
    /// Changes, notes and blockers.
    pub findings: Vec<Finding>,
}

impl Analysis {
    /// The findings that stop the conversion.
    pub fn blockers(&self) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| f.kind == Kind::Blocker)
            .collect()
    }
}

/// A conversion without blockers.
#[derive(Clone, Debug)]
pub struct Conversion {
    /// The converted task definition, ready for `RegisterTaskDefinition`.
    pub task_definition: Map<String, Value>,
    /// Every change made, and the notes.
    pub changes: Vec<Finding>,
}

/// Why [`convert`] gave no definition.
#[derive(Debug)]
pub enum ConvertError {
    /// The input is not a task definition this converter can read.
    Invalid(String),
    /// The definition cannot run on the target; these say why.
    Blocked(Vec<Finding>),
}

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvertError::Invalid(m) => f.write_str(m),
            ConvertError::Blocked(b) => write!(f, "{} blocker(s)", b.len()),
        }
    }
}

impl std::error::Error for ConvertError {}

/// Collects findings while a converter works.
#[derive(Default)]
pub(crate) struct Findings(Vec<Finding>);

impl Findings {
    fn push(&mut self, kind: Kind, path: impl Into<String>, what: impl Into<String>, why: &str) {
        self.0.push(Finding {
            kind,
            path: path.into(),
            what: what.into(),
            why: why.to_string(),
        });
    }
    pub(crate) fn change(&mut self, path: impl Into<String>, what: impl Into<String>, why: &str) {
        self.push(Kind::Change, path, what, why);
    }
    pub(crate) fn note(&mut self, path: impl Into<String>, what: impl Into<String>, why: &str) {
        self.push(Kind::Note, path, what, why);
    }
    pub(crate) fn blocker(&mut self, path: impl Into<String>, what: impl Into<String>, why: &str) {
        self.push(Kind::Blocker, path, what, why);
    }
}

/// Convert `td` to `to`, listing every change, note and blocker. Errs only
/// when `td` is not a task definition (the message names the field).
pub fn analyze(
    td: &Map<String, Value>,
    to: Target,
    opts: &Options,
) -> Result<Analysis, ConvertError> {
    let mut out = td.clone();
    let normalised = check_input(&mut out).map_err(ConvertError::Invalid)?;
    let mut findings = Findings::default();
    for (k, n) in normalised {
        findings.change(
            k,
            format!("{n} → \"{n}\""),
            "RegisterTaskDefinition takes the task-level size as a string",
        );
    }
    match to {
        Target::Fargate => to_fargate::convert(&mut out, opts, &mut findings),
        Target::Ec2 => to_ec2::convert(&mut out, opts, &mut findings),
    }
    let want = Value::from(vec![to.launch_type()]);
    let had = out.get("requiresCompatibilities").cloned();
    if had.as_ref() != Some(&want) {
        let before = had
            .filter(|v| !v.is_null())
            .map_or("none".to_string(), |v| v.to_string());
        findings.change(
            "requiresCompatibilities",
            format!("{before} → {want}"),
            &format!(
                "ECS then validates the definition against {} when it is registered, and \
                 runs it with that launch type",
                to.launch_type()
            ),
        );
        out.insert("requiresCompatibilities".into(), want);
    }
    Ok(Analysis {
        task_definition: out,
        findings: findings.0,
    })
}

/// Convert `td` to `to`: the definition and its changes, or the blockers.
pub fn convert(
    td: &Map<String, Value>,
    to: Target,
    opts: &Options,
) -> Result<Conversion, ConvertError> {
    let a = analyze(td, to, opts)?;
    if a.findings.iter().any(|f| f.kind == Kind::Blocker) {
        return Err(ConvertError::Blocked(
            a.findings
                .into_iter()
                .filter(|f| f.kind == Kind::Blocker)
                .collect(),
        ));
    }
    Ok(Conversion {
        task_definition: a.task_definition,
        changes: a.findings,
    })
}

/// The types the converter reads, checked before it reads them; task-level
/// `cpu` and `memory` given as numbers become the strings ECS takes.
fn check_input(td: &mut Map<String, Value>) -> Result<Vec<(&'static str, String)>, String> {
    let mut normalised = Vec::new();
    for k in ["cpu", "memory"] {
        match td.get(k) {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => {
                let s = n.to_string();
                td.insert(k.into(), Value::String(s.clone()));
                normalised.push((k, s));
            }
            Some(Value::String(s)) => {
                let ok = if k == "cpu" {
                    taskdef_rules::parse_cpu(s).is_some()
                } else {
                    taskdef_rules::parse_memory(s).is_some()
                };
                if !ok {
                    return Err(format!(
                        "{k}: {s:?} is not a task {k} (CPU units such as \"1024\" or \"1 vCPU\"; MiB such as \"2048\" or \"2 GB\")"
                    ));
                }
            }
            Some(_) => return Err(format!("{k} must be a string such as \"1024\"")),
        }
    }
    if td
        .get("networkMode")
        .is_some_and(|v| !v.is_string() && !v.is_null())
    {
        return Err("networkMode must be a string".into());
    }
    let Some(Value::Array(containers)) = td.get("containerDefinitions") else {
        return Err("containerDefinitions must be a list of container definitions".into());
    };
    if containers.is_empty() {
        return Err("containerDefinitions is empty".into());
    }
    for (i, c) in containers.iter().enumerate() {
        let Some(c) = c.as_object() else {
            return Err(format!("containerDefinitions[{i}] must be an object"));
        };
        match c.get("name") {
            Some(Value::String(n)) if !n.is_empty() => {}
            _ => {
                return Err(format!(
                    "containerDefinitions[{i}].name must be a non-empty string"
                ))
            }
        }
        for k in ["cpu", "memory", "memoryReservation"] {
            if c.get(k).is_some_and(|v| !v.is_null() && !v.is_i64()) {
                return Err(format!("containerDefinitions[{i}].{k} must be an integer"));
            }
        }
        for k in [
            "portMappings",
            "environment",
            "links",
            "volumesFrom",
            "mountPoints",
        ] {
            if c.get(k).is_some_and(|v| !v.is_null() && !v.is_array()) {
                return Err(format!("containerDefinitions[{i}].{k} must be a list"));
            }
        }
        for (j, p) in list(c, "portMappings").iter().enumerate() {
            let Some(p) = p.as_object() else {
                return Err(format!(
                    "containerDefinitions[{i}].portMappings[{j}] must be an object"
                ));
            };
            for k in ["containerPort", "hostPort"] {
                if p.get(k).is_some_and(|v| !v.is_null() && !v.is_i64()) {
                    return Err(format!(
                        "containerDefinitions[{i}].portMappings[{j}].{k} must be an integer"
                    ));
                }
            }
        }
        for (j, e) in list(c, "environment").iter().enumerate() {
            if !e.is_object() {
                return Err(format!(
                    "containerDefinitions[{i}].environment[{j}] must be an object"
                ));
            }
        }
    }
    for k in ["volumes", "placementConstraints", "requiresCompatibilities"] {
        if td.get(k).is_some_and(|v| !v.is_null() && !v.is_array()) {
            return Err(format!("{k} must be a list"));
        }
    }
    Ok(normalised)
}

/// A list field of an object, or nothing.
pub(crate) fn list<'a>(o: &'a Map<String, Value>, k: &str) -> &'a [Value] {
    o.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Whether a field is present with something in it (not null, not false, not
/// an empty list, object or string).
pub(crate) fn is_set(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        _ => true,
    }
}

/// The name of container `i` (checked by `check_input`).
pub(crate) fn container_name(c: &Map<String, Value>) -> String {
    c.get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The task-level cpu units and memory MiB, where given.
pub(crate) fn task_size(td: &Map<String, Value>) -> (Option<u32>, Option<u32>) {
    let s = |k: &str| td.get(k).and_then(Value::as_str);
    (
        s("cpu").and_then(taskdef_rules::parse_cpu),
        s("memory").and_then(taskdef_rules::parse_memory),
    )
}

// ---------------------------------------------------------------- CLI edge

/// Where the task definition comes from, and the options both commands take.
#[derive(clap::Args, Debug)]
pub struct CommonArgs {
    /// A task definition: a JSON file (register-task-definition input or
    /// describe-task-definition output), or a registered definition's ARN or
    /// family[:revision], read from the server.
    #[arg(value_name = "FILE|ARN")]
    pub source: String,
    /// The launch type to convert to.
    #[arg(long, value_enum)]
    pub to: Target,
    /// EC2: the network mode of the converted definition (default bridge).
    #[arg(long, value_enum, value_name = "MODE")]
    pub network_mode: Option<NetworkMode>,
    /// EC2 bridge: publish each port on the host port equal to its container
    /// port, instead of a dynamic host port (hostPort 0).
    #[arg(long)]
    pub static_ports: bool,
    /// EC2: drop the task-level cpu and memory; each container without a
    /// memory setting gets a memoryReservation (its share of the task memory).
    #[arg(long)]
    pub drop_task_size: bool,
    /// FARGATE: the task execution role to set when the definition needs one
    /// (awslogs, ECR images, secrets) and has none.
    #[arg(long, value_name = "ARN")]
    pub execution_role_arn: Option<String>,
    /// The server to read a registered task definition from (as the aws
    /// CLI's --endpoint-url; also AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The region: of the registered task definition, and of the Fargate
    /// prices quoted (default AWS_REGION, AWS_DEFAULT_REGION, us-east-1).
    #[arg(long)]
    pub region: Option<String>,
}

impl CommonArgs {
    fn options(&self) -> anyhow::Result<Options> {
        if self.to == Target::Fargate {
            if self.network_mode.is_some_and(|m| m != NetworkMode::Awsvpc) {
                anyhow::bail!("--network-mode: FARGATE supports only awsvpc");
            }
            if self.static_ports || self.drop_task_size {
                anyhow::bail!("--static-ports and --drop-task-size apply only with --to ec2");
            }
        } else {
            if self.static_ports && self.network_mode.is_some_and(|m| m != NetworkMode::Bridge) {
                anyhow::bail!("--static-ports applies only to the bridge network mode");
            }
            if self.execution_role_arn.is_some() {
                anyhow::bail!("--execution-role-arn applies only with --to fargate");
            }
        }
        let region = self
            .region
            .clone()
            .or_else(|| {
                ["AWS_REGION", "AWS_DEFAULT_REGION"]
                    .iter()
                    .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            })
            .unwrap_or_else(|| "us-east-1".into());
        Ok(Options {
            network_mode: self.network_mode,
            static_ports: self.static_ports,
            drop_task_size: self.drop_task_size,
            execution_role_arn: self.execution_role_arn.clone(),
            region,
        })
    }

    fn load(&self) -> anyhow::Result<Map<String, Value>> {
        crate::migrate::source::load_task_definition(
            &self.source,
            self.endpoint_url.as_deref(),
            self.region.as_deref(),
        )
    }
}

/// Arguments of `berth migrate task-definition`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Prints the converted task definition as JSON on stdout, ready for
`aws ecs register-task-definition --cli-input-json file://converted.json`,
and lists every change on stderr (--explain adds why).

Exit status: 0 converted; 2 something blocks the conversion (each blocker is
listed on stderr, nothing is printed on stdout); 1 the input could not be read.")]
pub struct ConvertArgs {
    /// The source and the conversion options.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Give the reason for every change, under it on stderr.
    #[arg(long)]
    pub explain: bool,
}

/// Output format of `berth migrate lint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LintFormat {
    /// One finding per line, with why on the next.
    Text,
    /// A JSON object: target, blocked, findings [{kind, path, what, why}].
    Json,
}

/// Arguments of `berth migrate lint`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Lists on stdout what stops the task definition from running on the target
launch type (blockers) and what a conversion would change, without converting.

Exit status: 0 nothing blocks (the definition converts, perhaps with changes);
2 at least one blocker; 1 the input could not be read.")]
pub struct LintArgs {
    /// The source and the conversion options.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: LintFormat,
}

/// Exit status when something blocks the conversion.
pub const EXIT_BLOCKED: i32 = 2;

fn analysis_of(common: &CommonArgs) -> anyhow::Result<Analysis> {
    let opts = common.options()?;
    let td = common.load()?;
    analyze(&td, common.to, &opts).map_err(|e| anyhow::anyhow!("{}: {e}", common.source))
}

/// Write to stdout; a reader that went away (`| head`) is not an error.
fn stdout(s: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn print_finding(out: &mut String, f: &Finding, why: bool) {
    out.push_str(&format!("{:<8} {}: {}\n", f.kind.label(), f.path, f.what));
    if why {
        out.push_str(&format!("         why: {}\n", f.why));
    }
}

/// `berth migrate task-definition`: the converted definition on stdout, the
/// changes on stderr. Exit 0, or 2 when something blocks.
pub fn run_convert(args: ConvertArgs) -> anyhow::Result<i32> {
    let to = args.common.to;
    let a = analysis_of(&args.common)?;
    let blockers = a.blockers();
    if !blockers.is_empty() {
        let mut err = format!(
            "berth: {} cannot run on {}: {} blocker(s)\n",
            args.common.source,
            to.launch_type(),
            blockers.len()
        );
        for f in blockers {
            print_finding(&mut err, f, true);
        }
        eprint!("{err}");
        return Ok(EXIT_BLOCKED);
    }
    // By construction the result registers; check it all the same with the
    // rules RegisterTaskDefinition applies, so nothing unregistrable is
    // ever printed.
    let mut request = a.task_definition.clone();
    request.remove("tags");
    if let Err(e) = taskdef_rules::prepare(&request) {
        anyhow::bail!(
            "the converted task definition would be refused: {}",
            e.message
        );
    }
    let mut err = format!(
        "berth: converted to {} with {} change(s)\n",
        to.launch_type(),
        a.findings.iter().filter(|f| f.kind == Kind::Change).count()
    );
    for f in &a.findings {
        print_finding(&mut err, f, args.explain);
    }
    stdout(&format!(
        "{}\n",
        serde_json::to_string_pretty(&Value::Object(a.task_definition))?
    ))?;
    eprint!("{err}");
    Ok(0)
}

/// `berth migrate lint`: the blockers and changes on stdout. Exit 0 when
/// nothing blocks, 2 when something does.
pub fn run_lint(args: LintArgs) -> anyhow::Result<i32> {
    let to = args.common.to;
    let a = analysis_of(&args.common)?;
    let blocked = !a.blockers().is_empty();
    match args.format {
        LintFormat::Json => stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({
                "target": to.launch_type(),
                "blocked": blocked,
                "findings": a.findings,
            }))?
        ))?,
        LintFormat::Text => {
            let mut out = String::new();
            // Blockers first: they are what the reader must act on.
            for kind in [Kind::Blocker, Kind::Change, Kind::Note] {
                for f in a.findings.iter().filter(|f| f.kind == kind) {
                    print_finding(&mut out, f, true);
                }
            }
            let count = |k: Kind| a.findings.iter().filter(|f| f.kind == k).count();
            out.push_str(&if blocked {
                format!(
                    "{}: cannot run on {}: {} blocker(s), {} change(s) otherwise\n",
                    args.common.source,
                    to.launch_type(),
                    count(Kind::Blocker),
                    count(Kind::Change)
                )
            } else {
                format!(
                    "{}: converts to {} with {} change(s)\n",
                    args.common.source,
                    to.launch_type(),
                    count(Kind::Change)
                )
            });
            stdout(&out)?;
        }
    }
    Ok(if blocked { EXIT_BLOCKED } else { 0 })
}
