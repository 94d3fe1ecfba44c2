//! `berth cost estimate`: what a planned workload — N tasks of one task
//! definition, each running D, K at a time — costs on FARGATE, FARGATE_SPOT,
//! EC2 on-demand and EC2 spot, with the EC2 packing assumed and the cheapest
//! choice.
//!
//! The rules:
//!
//! * **Task size.** Task-level `cpu`/`memory` when given; otherwise the sum of
//!   the containers' `cpu` and memory (hard `memory`, else
//!   `memoryReservation`), which is what ECS reserves on an instance. For the
//!   Fargate prices a size that is not a valid Fargate pair is rounded up to
//!   the smallest one that holds it. `ephemeralStorage.sizeInGiB` above the
//!   included 20 GiB is charged on Fargate.
//! * **Architecture.** `runtimePlatform.cpuArchitecture` (X86_64 by default).
//!   ARM64 prices Graviton Fargate and arm64 instance types only, and
//!   FARGATE_SPOT is not offered for it.
//! * **Fargate** bills each task on its own: D rounded up to the second, at
//!   least one minute ([`pricing::fargate_cost`]).
//! * **EC2.** K tasks run at once, so the N tasks run in ⌈N/K⌉ waves and the
//!   instances holding K tasks ([`pack::cheapest`]) live for the whole run,
//!   waves × D, each billed per second with a 60-second minimum. Only
//!   instance time is counted: no boot time, EBS volumes or data transfer.
//!
//! [`estimate`] is pure; [`run`] is the CLI edge (loading the task
//! definition, printing).

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalog::Arch;
use crate::cost::pack::{self, Packing, Shape};
use crate::ecs::taskdef_rules::{fargate_memory_ok, fargate_round_up, parse_cpu, parse_memory};
use crate::pricing;

/// Ephemeral storage every Fargate task has without configuring it, GiB.
const DEFAULT_EPHEMERAL_GIB: f64 = 20.0;

/// `berth cost estimate` arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The task definition: a JSON file (the input of
    /// register-task-definition or the output of describe-task-definition),
    /// or the ARN or family[:revision] of one registered in a running server.
    #[arg(long, value_name = "FILE|ARN")]
    pub task_definition: String,
    /// How many tasks run in all.
    #[arg(long, value_name = "N", value_parser = parse_count, allow_hyphen_values = true)]
    pub tasks: u64,
    /// How long each task runs: 90s, 5m, 1h30m, 2.5h.
    #[arg(long, value_name = "D", allow_hyphen_values = true)]
    pub duration: String,
    /// How many tasks run at once (default: all of them). With fewer than
    /// N, tasks run in waves and EC2 instances live for the whole run.
    #[arg(long, value_name = "K", value_parser = parse_count, allow_hyphen_values = true)]
    pub concurrency: Option<u64>,
    /// The region priced (default: $AWS_REGION, $AWS_DEFAULT_REGION, else
    /// us-east-1).
    #[arg(long, value_name = "R")]
    pub region: Option<String>,
    /// `table` for people, `json` for programs.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Leave burstable (T-family) instance types out of the EC2 packing.
    #[arg(long)]
    pub no_burstable: bool,
    /// The server to read a registered task definition from (default:
    /// $AWS_ENDPOINT_URL_ECS, $AWS_ENDPOINT_URL, else http://127.0.0.1:4566).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// How `berth cost estimate` prints its answer.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Aligned lines for people.
    Table,
    /// The [`Estimate`] as JSON (camelCase keys).
    Json,
}

/// A whole number of at least 1, for `--tasks` and `--concurrency`.
fn parse_count(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a whole number of at least 1, got {s:?}")),
    }
}

/// What went wrong with an estimate's input. Each message names the flag or
/// the part of the task definition at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EstimateError {
    /// `--duration` is not a positive duration.
    #[error("--duration {value:?}: {reason} (give e.g. 90s, 5m, 1h30m or 2.5h)")]
    Duration {
        /// What was given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// `--tasks` is 0.
    #[error("--tasks must be at least 1")]
    NoTasks,
    /// `--concurrency` is 0.
    #[error("--concurrency must be at least 1")]
    NoConcurrency,
    /// `--region` has no prices.
    #[error("--region {region}: no prices for this region; known regions: {known}")]
    UnknownRegion {
        /// What was given.
        region: String,
        /// The priced regions, comma-separated.
        known: String,
    },
    /// The task definition cannot be sized.
    #[error("task definition: {0}")]
    TaskDefinition(String),
}

/// Parse a duration — `90s`, `5m`, `1h30m`, `2.5h`, `1h 2m 3.5s` — into
/// seconds. Each of `h`, `m`, `s` at most once, each with a number (decimals
/// allowed); the total must be above zero.
pub fn parse_duration(s: &str) -> Result<f64, EstimateError> {
    let err = |reason: &str| EstimateError::Duration {
        value: s.to_string(),
        reason: reason.to_string(),
    };
    let text: String = s
        .trim()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if text.is_empty() {
        return Err(err("is empty"));
    }
    if text.starts_with('-') {
        return Err(err("must be positive"));
    }
    let mut total = 0.0;
    let mut seen = String::new();
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return Err(err(&format!("unexpected {c:?}; units are h, m and s"))),
        };
        if seen.contains(c) {
            return Err(err(&format!("{c:?} appears twice")));
        }
        seen.push(c);
        let n: f64 = number
            .parse()
            .map_err(|_| err(&format!("{c:?} needs a number before it")))?;
        total += n * unit;
        number.clear();
    }
    if !number.is_empty() {
        return Err(err(&format!("{number} has no unit (h, m or s)")));
    }
    if !total.is_finite() {
        return Err(err("is too long"));
    }
    if total <= 0.0 {
        return Err(err("must be more than zero"));
    }
    Ok(total)
}

/// A duration for people: `5m`, `1h30m`, `90.5s`.
pub fn human_duration(seconds: f64) -> String {
    if seconds.fract() != 0.0 || seconds < 1.0 {
        return format!("{seconds:.1}s");
    }
    let s = seconds as u64;
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if sec > 0 || out.is_empty() {
        let _ = write!(out, "{sec}s");
    }
    out
}

/// What an estimate is asked for.
#[derive(Debug, Clone)]
pub struct Input {
    /// How the task definition was named (file, ARN, family), for the output.
    pub label: String,
    /// The task definition (register-task-definition input form).
    pub task_definition: Map<String, Value>,
    /// N: tasks in all (at least 1).
    pub tasks: u64,
    /// D: seconds each task runs (above 0).
    pub duration_seconds: f64,
    /// K: tasks at once; `None` means all N. Above N counts as N.
    pub concurrency: Option<u64>,
    /// The region priced; one of [`pricing::regions`].
    pub region: String,
    /// Whether burstable (T-family) instance types may be chosen.
    pub include_burstable: bool,
}

/// The size of one task, as the estimate understood it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSize {
    /// CPU units ECS reserves (1024 per vCPU); 0 when nothing reserves CPU.
    pub cpu: u64,
    /// MiB ECS reserves.
    pub memory_mib: u64,
    /// Configured ephemeral storage, GiB (20 when not configured).
    pub ephemeral_storage_gib: f64,
    /// `task` (task-level cpu/memory) or `containers` (summed); may be
    /// `task+containers` when only one of the two is set at task level.
    pub source: String,
    /// `X86_64` or `ARM64`.
    pub architecture: String,
}

/// The Fargate size the Fargate prices are for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FargateSize {
    /// CPU units.
    pub cpu: u64,
    /// MiB.
    pub memory_mib: u64,
    /// Whether the task's own size was not a valid Fargate pair and was
    /// rounded up to this one.
    pub rounded_up: bool,
}

/// One way to run the workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Choice {
    /// `FARGATE`, `FARGATE_SPOT`, `EC2` (on-demand) or `EC2_SPOT`.
    pub name: String,
    /// Whether it can run this workload at all.
    pub offered: bool,
    /// USD for the whole workload.
    pub total_usd: Option<f64>,
    /// `total_usd / N`.
    pub per_task_usd: Option<f64>,
    /// Whether the price rests on an estimate (spot) rather than a list
    /// price.
    pub estimated: bool,
    /// For Fargate: seconds billed per task. For EC2: seconds billed per
    /// instance.
    pub billed_seconds: Option<u64>,
    /// For EC2: the fleet assumed.
    pub packing: Option<Packing>,
    /// Why it is not offered, or what to know about it.
    pub note: Option<String>,
}

/// The cheapest offered choice.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cheapest {
    /// The [`Choice::name`].
    pub name: String,
    /// Its total, USD.
    pub total_usd: f64,
    /// Its total per task, USD.
    pub per_task_usd: f64,
}

/// What a planned workload costs, each way it can run. Serialises (camelCase)
/// as the `--output json` form.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Estimate {
    /// How the task definition was named.
    pub task_definition: String,
    /// The region priced.
    pub region: String,
    /// N.
    pub tasks: u64,
    /// K (at most N).
    pub concurrency: u64,
    /// ⌈N/K⌉.
    pub waves: u64,
    /// D, seconds.
    pub duration_seconds: f64,
    /// waves × D: how long the EC2 instances live.
    pub run_seconds: f64,
    /// One task's size.
    pub task: TaskSize,
    /// The size Fargate is priced at; `None` when the task is larger than
    /// any Fargate size.
    pub fargate_size: Option<FargateSize>,
    /// FARGATE, FARGATE_SPOT, EC2, EC2_SPOT, in that order.
    pub choices: Vec<Choice>,
    /// The cheapest offered choice (the first, on a tie).
    pub cheapest: Option<Cheapest>,
    /// When the price files were retrieved, `YYYY-MM-DD`.
    pub prices_retrieved: String,
    /// Assumptions and the basis of figures that are estimates or derived.
    pub notes: Vec<String>,
}

fn td_err(msg: impl Into<String>) -> EstimateError {
    EstimateError::TaskDefinition(msg.into())
}

/// A task-level `cpu`/`memory` value: a string ("1024", "1 vCPU") or a number.
fn task_level(
    td: &Map<String, Value>,
    key: &str,
    parse: fn(&str) -> Option<u32>,
) -> Result<Option<u64>, EstimateError> {
    match td.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse(s)
            .map(|v| Some(u64::from(v)))
            .ok_or_else(|| td_err(format!("task-level {key} {s:?} is not understood"))),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|v| *v > 0)
            .map(Some)
            .ok_or_else(|| td_err(format!("task-level {key} {n} is not understood"))),
        Some(v) => Err(td_err(format!("task-level {key} {v} is not understood"))),
    }
}

fn container_int(c: &Map<String, Value>, key: &str) -> Result<Option<u64>, EstimateError> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
            td_err(format!(
                "container {name:?}: {key} {v} is not a whole number"
            ))
        }),
    }
}

/// The size of one task of `td`, and notes on how it was found.
pub fn task_size(td: &Map<String, Value>) -> Result<(TaskSize, Vec<String>), EstimateError> {
    let mut notes = Vec::new();
    let arch = match td
        .get("runtimePlatform")
        .and_then(|p| p.get("cpuArchitecture"))
        .and_then(Value::as_str)
    {
        None => "X86_64",
        Some(a) if a.eq_ignore_ascii_case("X86_64") => "X86_64",
        Some(a) if a.eq_ignore_ascii_case("ARM64") => "ARM64",
        Some(a) => {
            return Err(td_err(format!(
                "runtimePlatform.cpuArchitecture {a:?} is neither X86_64 nor ARM64"
            )))
        }
    };
    let cpu = task_level(td, "cpu", parse_cpu)?;
    let memory = task_level(td, "memory", parse_memory)?;
    let containers: Vec<&Map<String, Value>> = td
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    let (cpu, cpu_from_task) = match cpu {
        Some(c) => (c, true),
        None => {
            let mut sum = 0u64;
            for c in &containers {
                sum += container_int(c, "cpu")?.unwrap_or(0);
            }
            if sum == 0 {
                notes.push(
                    "no CPU is reserved (no task-level cpu, container cpu 0): ECS places \
                     such tasks on EC2 by memory alone, so the packing counts memory only"
                        .to_string(),
                );
            }
            (sum, false)
        }
    };
    let (memory, memory_from_task) = match memory {
        Some(m) => (m, true),
        None => {
            let mut sum = 0u64;
            for c in &containers {
                let hard = container_int(c, "memory")?;
                let soft = container_int(c, "memoryReservation")?;
                sum += hard.or(soft).unwrap_or(0);
            }
            (sum, false)
        }
    };
    if memory == 0 {
        return Err(td_err(
            "no memory: set task-level memory, or memory or memoryReservation on each container",
        ));
    }
    let source = match (cpu_from_task, memory_from_task) {
        (true, true) => "task",
        (false, false) => "containers",
        _ => "task+containers",
    };
    let ephemeral = match td.get("ephemeralStorage").and_then(|e| e.get("sizeInGiB")) {
        None | Some(Value::Null) => DEFAULT_EPHEMERAL_GIB,
        Some(v) => v
            .as_f64()
            .filter(|g| *g >= 0.0)
            .ok_or_else(|| td_err(format!("ephemeralStorage.sizeInGiB {v} is not a number")))?,
    };
    Ok((
        TaskSize {
            cpu,
            memory_mib: memory,
            ephemeral_storage_gib: ephemeral,
            source: source.to_string(),
            architecture: arch.to_string(),
        },
        notes,
    ))
}

/// The Fargate size for a task of `cpu` units and `memory` MiB: itself when
/// valid, else the smallest valid pair holding it, else `None`.
pub fn fargate_size(cpu: u64, memory: u64) -> Option<FargateSize> {
    let (c, m) = (u32::try_from(cpu).ok()?, u32::try_from(memory).ok()?);
    if fargate_memory_ok(c, m) {
        return Some(FargateSize {
            cpu,
            memory_mib: memory,
            rounded_up: false,
        });
    }
    let (rc, rm) = fargate_round_up(c, m)?;
    Some(FargateSize {
        cpu: u64::from(rc),
        memory_mib: u64::from(rm),
        rounded_up: true,
    })
}

fn not_offered(name: &str, estimated: bool, note: String) -> Choice {
    Choice {
        name: name.to_string(),
        offered: false,
        total_usd: None,
        per_task_usd: None,
        estimated,
        billed_seconds: None,
        packing: None,
        note: Some(note),
    }
}

fn billed(seconds: f64, minimum: u64) -> u64 {
    (seconds.ceil() as u64).max(minimum)
}

/// Price the workload of `input` every way it can run. Pure.
pub fn estimate(input: &Input) -> Result<Estimate, EstimateError> {
    let known = pricing::regions();
    if !known.contains(&input.region.as_str()) {
        return Err(EstimateError::UnknownRegion {
            region: input.region.clone(),
            known: known.join(", "),
        });
    }
    if input.tasks == 0 {
        return Err(EstimateError::NoTasks);
    }
    if input.concurrency == Some(0) {
        return Err(EstimateError::NoConcurrency);
    }
    let d = input.duration_seconds;
    if !(d.is_finite() && d > 0.0) {
        return Err(EstimateError::Duration {
            value: d.to_string(),
            reason: "must be more than zero".into(),
        });
    }
    let region = input.region.as_str();
    let n = input.tasks;
    let k = input.concurrency.unwrap_or(n).min(n);
    let waves = n.div_ceil(k);
    let run_seconds = waves as f64 * d;
    let (task, mut notes) = task_size(&input.task_definition)?;
    let arch = if task.architecture == "ARM64" {
        Arch::Arm64
    } else {
        Arch::X86_64
    };
    let mut choices = Vec::with_capacity(4);

    // Fargate: each task billed on its own.
    let fsize = fargate_size(task.cpu, task.memory_mib);
    let rates = pricing::fargate(region).expect("a known region has Fargate rates");
    for spot in [false, true] {
        let name = if spot { "FARGATE_SPOT" } else { "FARGATE" };
        let Some(size) = &fsize else {
            choices.push(not_offered(
                name,
                spot,
                format!(
                    "{} CPU units / {} MiB is larger than any Fargate size (at most 16 vCPU, 120 GiB)",
                    task.cpu, task.memory_mib
                ),
            ));
            continue;
        };
        if rates.rate(arch, spot).is_none() {
            choices.push(not_offered(
                name,
                spot,
                "not offered for ARM64: Fargate Spot runs Linux X86_64 tasks only".into(),
            ));
            continue;
        }
        let per_task = pricing::fargate_cost(
            region,
            arch,
            spot,
            size.cpu as f64 / 1024.0,
            size.memory_mib as f64 / 1024.0,
            task.ephemeral_storage_gib,
            d,
        );
        let mut note = format!(
            "{} vCPU / {} GiB per task",
            trim_float(size.cpu as f64 / 1024.0),
            trim_float(size.memory_mib as f64 / 1024.0)
        );
        if size.rounded_up {
            let _ = write!(
                note,
                ", rounded up from {} CPU / {} MiB",
                task.cpu, task.memory_mib
            );
        }
        if task.ephemeral_storage_gib > DEFAULT_EPHEMERAL_GIB {
            let _ = write!(
                note,
                ", {} GiB ephemeral storage",
                trim_float(task.ephemeral_storage_gib)
            );
        }
        choices.push(Choice {
            name: name.to_string(),
            offered: true,
            total_usd: Some(per_task * n as f64),
            per_task_usd: Some(per_task),
            estimated: spot,
            billed_seconds: Some(billed(d, pricing::FARGATE_MINIMUM_SECONDS)),
            packing: None,
            note: Some(note),
        });
    }

    // EC2: K tasks at once on one instance type, for the whole run.
    let shape = Shape::new(task.cpu, task.memory_mib);
    for spot in [false, true] {
        let name = if spot { "EC2_SPOT" } else { "EC2" };
        let best = pack::candidates(region, arch, spot)
            .into_iter()
            .filter(|t| input.include_burstable || !t.burstable)
            .filter_map(|t| pack::pack_uniform(t, region, shape, k, spot))
            .min_by(Packing::preference);
        let Some(p) = best else {
            choices.push(not_offered(
                name,
                spot,
                format!(
                    "no {} instance type in the catalog holds a task of {} CPU units / {} MiB",
                    arch.as_str(),
                    task.cpu,
                    task.memory_mib
                ),
            ));
            continue;
        };
        let total = p.cost_for_seconds(run_seconds);
        choices.push(Choice {
            name: name.to_string(),
            offered: true,
            total_usd: Some(total),
            per_task_usd: Some(total / n as f64),
            estimated: spot,
            billed_seconds: Some(billed(run_seconds, pricing::EC2_MINIMUM_SECONDS)),
            packing: Some(p),
            note: None,
        });
    }

    let cheapest = choices
        .iter()
        .filter_map(|c| Some((c, c.total_usd?, c.per_task_usd?)))
        .fold(None::<(&Choice, f64, f64)>, |best, cur| match best {
            Some(b) if b.1 <= cur.1 + 1e-12 => Some(b),
            _ => Some(cur),
        })
        .map(|(c, total, per)| Cheapest {
            name: c.name.clone(),
            total_usd: total,
            per_task_usd: per,
        });

    // Assumptions and the basis of the figures.
    if let Some(size) = fsize.as_ref().filter(|s| s.rounded_up) {
        notes.push(format!(
            "{} CPU units / {} MiB is not a Fargate size: Fargate is priced at the next size up, {} / {}",
            task.cpu, task.memory_mib, size.cpu, size.memory_mib
        ));
    }
    let rate_key = if arch == Arch::Arm64 {
        "arm64"
    } else {
        "x86_64"
    };
    let mut keys = vec![rate_key];
    if rates.rate(arch, true).is_some() {
        keys.push("spot_x86_64");
    }
    if task.ephemeral_storage_gib > DEFAULT_EPHEMERAL_GIB {
        keys.push("ephemeral_gb_hour");
    }
    for key in keys {
        if let Some(basis) = rates.basis.get(key) {
            if !basis.starts_with("quoted") {
                notes.push(format!("Fargate {key} rate in {region}: {basis}"));
            }
        }
    }
    if let Some(r) = pricing::ec2_region(region) {
        if r.status != "quoted" {
            notes.push(format!("EC2 prices in {region}: {}", r.basis));
        }
    }
    for c in choices.iter().filter(|c| c.name == "EC2_SPOT") {
        if let Some(p) = &c.packing {
            let discount = pricing::ec2_spot_discount(&p.instance_type).unwrap_or(0.0);
            notes.push(format!(
                "EC2 spot is an estimate: on-demand × (1 − {}%), the typical discount assumed for {}; spot prices move and are not quoted here",
                trim_float(discount * 100.0),
                p.instance_type.split('.').next().unwrap_or_default()
            ));
        }
    }
    let burstable: Vec<&Choice> = choices
        .iter()
        .filter(|c| c.packing.as_ref().is_some_and(|p| p.burstable))
        .collect();
    if !burstable.is_empty() {
        let names: Vec<String> = burstable
            .iter()
            .filter_map(|c| c.packing.as_ref())
            .map(|p| p.instance_type.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut note = format!(
            "{} burstable (T family): the price assumes CPU use within the baseline; tasks that keep the CPU busy pay for surplus credits, not counted here",
            if names.len() == 1 {
                format!("{} is", names[0])
            } else {
                format!("{} are", names.join(" and "))
            }
        );
        let mut alternatives = Vec::new();
        for c in &burstable {
            let spot = c.name == "EC2_SPOT";
            let alt = pack::candidates(region, arch, spot)
                .into_iter()
                .filter(|t| !t.burstable)
                .filter_map(|t| pack::pack_uniform(t, region, shape, k, spot))
                .min_by(Packing::preference);
            if let Some(p) = alt {
                alternatives.push(format!(
                    "{} {} ({} × {}, {} each)",
                    label(&c.name),
                    usd(p.cost_for_seconds(run_seconds)),
                    p.instances,
                    p.instance_type,
                    tasks_phrase(p.tasks_per_instance)
                ));
            }
        }
        if !alternatives.is_empty() {
            let _ = write!(
                note,
                "; without T types (--no-burstable): {}",
                alternatives.join(", ")
            );
        }
        notes.push(note);
    }
    notes.push(format!(
        "EC2 counts instance time only: the instances live for the whole run ({} × {} = {}), billed per second with a 60-second minimum; not boot time, EBS volumes or data transfer",
        waves_phrase(waves),
        human_duration(d),
        human_duration(run_seconds)
    ));

    let (_, retrieved) = pricing::fargate_source();
    Ok(Estimate {
        task_definition: input.label.clone(),
        region: input.region.clone(),
        tasks: n,
        concurrency: k,
        waves,
        duration_seconds: d,
        run_seconds,
        task,
        fargate_size: fsize,
        choices,
        cheapest,
        prices_retrieved: retrieved.to_string(),
        notes,
    })
}

fn waves_phrase(waves: u64) -> String {
    if waves == 1 {
        "1 wave".into()
    } else {
        format!("{waves} waves")
    }
}

/// A number without a needless fraction: `2`, `0.5`.
fn trim_float(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn tasks_phrase(per_instance: Option<u64>) -> String {
    match per_instance {
        Some(1) => "1 task".to_string(),
        Some(k) => format!("{k} tasks"),
        None => "mixed".to_string(),
    }
}

fn label(name: &str) -> &str {
    match name {
        "EC2" => "EC2 on-demand",
        "EC2_SPOT" => "EC2 spot",
        other => other,
    }
}

fn usd(x: f64) -> String {
    if x >= 100.0 {
        format!("${x:.2}")
    } else {
        format!("${x:.4}")
    }
}

fn percent(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// The table form of an estimate, for people.
pub fn render_table(e: &Estimate) -> String {
    let mut out = String::new();
    let t = &e.task;
    let cpu = if t.cpu == 0 {
        "no CPU reserved".to_string()
    } else {
        format!("{} CPU units", t.cpu)
    };
    let _ = writeln!(
        out,
        "{} tasks of {} ({cpu}, {} MiB, {}) in {}",
        e.tasks, e.task_definition, t.memory_mib, t.architecture, e.region
    );
    let _ = writeln!(
        out,
        "each runs {}; {} at once: {}, {} in all",
        human_duration(e.duration_seconds),
        e.concurrency,
        waves_phrase(e.waves),
        human_duration(e.run_seconds)
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<14} {:>10} {:>10}  detail",
        "option", "total", "per task"
    );
    for c in &e.choices {
        let mark = if c.estimated { " (estimate)" } else { "" };
        let (total, per) = match (c.total_usd, c.per_task_usd) {
            (Some(a), Some(b)) => (usd(a), usd(b)),
            _ => ("-".to_string(), "-".to_string()),
        };
        let detail = match &c.packing {
            Some(p) => format!(
                "{} × {}, {} each, cpu {} mem {}, {}{mark}",
                p.instances,
                p.instance_type,
                tasks_phrase(p.tasks_per_instance),
                percent(p.cpu_utilisation),
                percent(p.memory_utilisation),
                human_duration(e.run_seconds)
            ),
            None => format!("{}{mark}", c.note.as_deref().unwrap_or("")),
        };
        let _ = writeln!(
            out,
            "{:<14} {:>10} {:>10}  {detail}",
            label(&c.name),
            total,
            per
        );
    }
    let _ = writeln!(out);
    match &e.cheapest {
        Some(c) => {
            let _ = writeln!(
                out,
                "cheapest: {}, {} ({} per task)",
                label(&c.name),
                usd(c.total_usd),
                usd(c.per_task_usd)
            );
        }
        None => {
            let _ = writeln!(out, "cheapest: none of the options can run this task");
        }
    }
    let _ = writeln!(out, "prices retrieved {}; notes:", e.prices_retrieved);
    for n in &e.notes {
        let _ = writeln!(out, "  - {n}");
    }
    out
}

fn default_region() -> String {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "us-east-1".to_string())
}

/// `berth cost estimate`: load the task definition, estimate, print. Exit
/// code 0 on success; input errors are returned.
pub fn run(args: Args) -> anyhow::Result<i32> {
    let duration_seconds = parse_duration(&args.duration)?;
    let region = args.region.clone().unwrap_or_else(default_region);
    let known = pricing::regions();
    if !known.contains(&region.as_str()) {
        return Err(EstimateError::UnknownRegion {
            region,
            known: known.join(", "),
        }
        .into());
    }
    let td = crate::migrate::source::load_task_definition(
        &args.task_definition,
        args.endpoint_url.as_deref(),
        Some(&region),
    )?;
    let input = Input {
        label: args.task_definition.clone(),
        task_definition: td,
        tasks: args.tasks,
        duration_seconds,
        concurrency: args.concurrency,
        region,
        include_burstable: !args.no_burstable,
    };
    let e = estimate(&input)?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&e)?),
        Output::Table => print!("{}", render_table(&e)),
    }
    Ok(0)
}

#[cfg(test)]
mod tests;
