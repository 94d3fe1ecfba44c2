//! `berth cost usage` and `berth cost report`: metered usage as the server
//! lists it (`ListTaskUsage`, `ListInstanceUsage`), and the report over it —
//! what it cost as it ran, and what the same usage would have cost on
//! FARGATE, FARGATE_SPOT, EC2 on-demand and EC2 spot. The report itself
//! (`report`) is pure.
//!
//! The alternatives price each task's metered seconds:
//! * FARGATE and FARGATE_SPOT: at the task's size rounded up to a valid
//!   Fargate pair, per second with the one-minute minimum (Spot is not
//!   offered for arm64);
//! * EC2 on-demand and spot: at the task's share of the cheapest instance
//!   type of its architecture that holds tasks of its size, bin-packed full
//!   (`pack::cheapest`): the instance's hourly price over the tasks it holds.
//!   Instances kept full are the best case; the idle capacity of real
//!   instances is reported on its own line.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::meter::{InstanceUsage, TaskUsage};
use super::pack::{self, Shape};
use crate::catalog::Arch;
use crate::client::render_table;
use crate::ecs::taskdef_rules::fargate_round_up;
use crate::pricing;

/// How report lines are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupBy {
    /// The service that started the task (`service:NAME` groups).
    Service,
    /// The task definition family.
    Family,
    /// The task's `startedBy`.
    StartedBy,
    /// One line per task.
    Task,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// How the CLI reaches the server, and which usage it asks for.
#[derive(clap::Args, Debug)]
pub struct Query {
    /// Only this cluster's tasks and instances (name or ARN).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Only tasks created at or after this time: RFC 3339
    /// (2026-11-23T09:00:00Z), a date (2026-11-23, midnight UTC), or an age
    /// (90m, 12h, 7d: that long ago).
    #[arg(long)]
    pub since: Option<String>,
    /// The server (default: $AWS_ENDPOINT_URL, else http://127.0.0.1:4566).
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// The region whose usage to read (default: $AWS_REGION, else us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// `table` for people, `json` for scripts.
    #[arg(long, value_enum, default_value = "table")]
    pub output: Output,
}

/// `berth cost usage`.
#[derive(clap::Args, Debug)]
pub struct UsageArgs {
    #[command(flatten)]
    pub query: Query,
}

/// `berth cost report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub query: Query,
    /// One line per service, task definition family, startedBy, or task.
    #[arg(long, value_enum, default_value = "family")]
    pub group_by: GroupBy,
}

/// Parse `--since` at `now`.
pub fn parse_since(s: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| since_error(s))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        "w" => n * 604_800,
        _ => return Err(since_error(s)),
    };
    Ok(now - chrono::Duration::seconds(seconds))
}

fn since_error(s: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "--since {s:?}: expected a time (2026-11-23T09:00:00Z), a date (2026-11-23) or an age (90m, 12h, 7d)"
    )
}

/// One line of a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub key: String,
    pub tasks: u64,
    /// Metered seconds, exact and billed.
    pub seconds: f64,
    pub billed_seconds: u64,
    /// What it cost as it ran.
    pub as_run_usd: f64,
    pub fargate_usd: f64,
    /// `None` when some task could not run on Fargate Spot (arm64).
    pub fargate_spot_usd: Option<f64>,
    /// `None` when no priced instance type holds some task.
    pub ec2_on_demand_usd: Option<f64>,
    pub ec2_spot_usd: Option<f64>,
}

impl Line {
    fn add(&mut self, other: &Line) {
        self.tasks += other.tasks;
        self.seconds += other.seconds;
        self.billed_seconds += other.billed_seconds;
        self.as_run_usd += other.as_run_usd;
        self.fargate_usd += other.fargate_usd;
        let sum = |a: Option<f64>, b: Option<f64>| Some(a? + b?);
        self.fargate_spot_usd = sum(self.fargate_spot_usd, other.fargate_spot_usd);
        self.ec2_on_demand_usd = sum(self.ec2_on_demand_usd, other.ec2_on_demand_usd);
        self.ec2_spot_usd = sum(self.ec2_spot_usd, other.ec2_spot_usd);
    }

    fn empty(key: &str) -> Line {
        Line {
            key: key.into(),
            fargate_spot_usd: Some(0.0),
            ec2_on_demand_usd: Some(0.0),
            ec2_spot_usd: Some(0.0),
            ..Line::default()
        }
    }
}

/// The idle capacity of container instances: what they cost that no task
/// reservation paid.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Idle {
    pub instances: u64,
    pub instance_seconds: f64,
    /// The instances' price for the time metered.
    pub instances_usd: f64,
    /// The part their tasks paid (in the lines above).
    pub attributed_usd: f64,
    pub usd: f64,
}

/// The EC2 packing an alternative assumed for one task size.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Assumed {
    pub region: String,
    pub cpu_architecture: String,
    pub cpu: u64,
    pub memory: u64,
    pub spot: bool,
    pub instance_type: String,
    pub tasks_per_instance: u64,
    pub instance_hourly_usd: f64,
}

/// The cheapest way to run the usage of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cheapest {
    /// `FARGATE`, `FARGATE_SPOT`, `EC2 on-demand` or `EC2 spot`.
    pub option: String,
    pub usd: f64,
}

/// A cost report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub group_by: GroupBy,
    pub lines: Vec<Line>,
    pub idle: Idle,
    /// The lines summed; `asRunUsd` includes the idle capacity.
    pub total: Line,
    /// The cheapest of FARGATE, FARGATE_SPOT, EC2 on-demand, EC2 spot for
    /// this usage, and its total.
    pub cheapest: Option<Cheapest>,
    pub ec2_packing: Vec<Assumed>,
    pub notes: Vec<String>,
}

fn group_key(t: &TaskUsage, by: GroupBy) -> String {
    let task_id = || {
        t.task_arn
            .rsplit('/')
            .next()
            .unwrap_or(&t.task_arn)
            .to_string()
    };
    match by {
        GroupBy::Family => t.family.clone(),
        GroupBy::Task => task_id(),
        GroupBy::StartedBy => t
            .started_by
            .clone()
            .unwrap_or_else(|| "(no startedBy)".into()),
        GroupBy::Service => t
            .group
            .as_deref()
            .and_then(|g| g.strip_prefix("service:"))
            .map(str::to_string)
            .unwrap_or_else(|| "(no service)".into()),
    }
}

fn arch_of(t: &TaskUsage) -> Arch {
    if t.cpu_architecture == "arm64" {
        Arch::Arm64
    } else {
        Arch::X86_64
    }
}

type PackKey = (String, Arch, Shape, bool);

/// Build a report over metered usage.
pub fn report(tasks: &[TaskUsage], instances: &[InstanceUsage], by: GroupBy) -> Report {
    let mut packs: HashMap<PackKey, Option<(String, u64, f64)>> = HashMap::new();
    let mut notes = Vec::new();
    let mut groups: BTreeMap<String, Line> = BTreeMap::new();
    let mut rounded_up = 0;
    for t in tasks {
        let arch = arch_of(t);
        let billed = t.billed_seconds;
        // A task that was never billed (it never pulled its image) would
        // cost nothing anywhere.
        let seconds = if billed == 0 { 0.0 } else { t.seconds };
        let mut line = Line {
            key: group_key(t, by),
            tasks: 1,
            seconds: t.seconds,
            billed_seconds: billed,
            as_run_usd: t.cost_usd,
            ..Line::default()
        };
        let (cpu, memory) = match fargate_round_up(t.cpu.max(1), t.memory.max(1)) {
            Some(pair) => pair,
            None => (t.cpu, t.memory),
        };
        if (cpu, memory) != (t.cpu, t.memory) {
            rounded_up += 1;
        }
        let fargate = |spot: bool| {
            if billed == 0 {
                return Some(0.0);
            }
            let rates = pricing::fargate(&t.region)?;
            rates.rate(arch, spot)?;
            Some(pricing::fargate_cost(
                &t.region,
                arch,
                spot,
                f64::from(cpu) / 1024.0,
                f64::from(memory) / 1024.0,
                t.ephemeral_storage_gib,
                seconds,
            ))
        };
        line.fargate_usd = fargate(false).unwrap_or(0.0);
        line.fargate_spot_usd = fargate(true);
        let shape = Shape::new(u64::from(t.cpu), u64::from(t.memory));
        let mut ec2 = |spot: bool| {
            let packed = packs
                .entry((t.region.clone(), arch, shape, spot))
                .or_insert_with(|| {
                    // Enough tasks that every instance is full: the
                    // per-task price is the instance's over what it holds.
                    let p = pack::cheapest(&t.region, arch, shape, 1_000_000, spot)?;
                    let per_instance = p.tasks_per_instance.unwrap_or(1).max(1);
                    Some((p.instance_type, per_instance, p.instance_hourly_usd))
                })
                .clone();
            // Per second of the task's run (a share of an instance has no
            // minimum of its own; the instance's is in the packing).
            let run = if billed == 0 { 0.0 } else { t.seconds.ceil() };
            packed.map(|(_, n, hourly)| hourly / n as f64 * run / 3600.0)
        };
        line.ec2_on_demand_usd = ec2(false);
        line.ec2_spot_usd = ec2(true);
        groups
            .entry(line.key.clone())
            .or_insert_with(|| Line::empty(&line.key))
            .add(&line);
    }
    if rounded_up > 0 {
        notes.push(format!(
            "{rounded_up} task(s) priced on Fargate at the next valid Fargate size (cpu/memory rounded up)"
        ));
    }
    if tasks.iter().any(|t| t.running) {
        notes.push("running tasks are metered up to now".into());
    }
    if tasks.iter().any(|t| arch_of(t) == Arch::Arm64) {
        notes.push("Fargate Spot does not run arm64 tasks: no FARGATE_SPOT total".into());
    }
    let prepared = instances
        .iter()
        .filter(|i| i.container_instance_arn.is_empty())
        .count();
    if prepared > 0 {
        notes.push(format!(
            "idle capacity includes {prepared} Auto Scaling instance(s) billed while booting or prepared in a warm pool"
        ));
    }
    let mut idle = Idle::default();
    for i in instances {
        idle.instances += 1;
        idle.instance_seconds += i.seconds;
        idle.instances_usd += i.cost_usd;
        idle.attributed_usd += i.attributed_usd;
        idle.usd += i.idle_usd;
    }
    let lines: Vec<Line> = groups.into_values().collect();
    let mut total = Line::empty("TOTAL");
    for l in &lines {
        total.add(l);
    }
    total.as_run_usd += idle.usd;
    let cheapest = [
        ("FARGATE", Some(total.fargate_usd)),
        ("FARGATE_SPOT", total.fargate_spot_usd),
        ("EC2 on-demand", total.ec2_on_demand_usd),
        ("EC2 spot", total.ec2_spot_usd),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        Some(Cheapest {
            option: k.to_string(),
            usd: v?,
        })
    })
    .min_by(|a, b| a.usd.total_cmp(&b.usd))
    .filter(|_| !tasks.is_empty());
    let mut ec2_packing: Vec<Assumed> = packs
        .into_iter()
        .filter_map(|((region, arch, shape, spot), p)| {
            let (instance_type, tasks_per_instance, instance_hourly_usd) = p?;
            Some(Assumed {
                region,
                cpu_architecture: arch.as_str().into(),
                cpu: shape.cpu,
                memory: shape.memory_mib,
                spot,
                instance_type,
                tasks_per_instance,
                instance_hourly_usd,
            })
        })
        .collect();
    ec2_packing.sort_by(|a, b| {
        (a.cpu, a.memory, a.spot, &a.region).cmp(&(b.cpu, b.memory, b.spot, &b.region))
    });
    if ec2_packing.iter().any(|p| p.spot) {
        notes.push(
            "EC2 spot prices are estimates (on-demand less the family's typical discount)".into(),
        );
    }
    Report {
        group_by: by,
        lines,
        idle,
        total,
        cheapest,
        ec2_packing,
        notes,
    }
}

fn usd(v: f64) -> String {
    // Below what is printed, a cost is nothing: never `$-0.0000`.
    let v = if v.abs() < 5e-7 { 0.0 } else { v };
    if v != 0.0 && v.abs() < 0.01 {
        format!("${v:.6}")
    } else {
        format!("${v:.4}")
    }
}

fn usd_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), usd)
}

/// The report for people.
pub fn render_report(r: &Report) -> String {
    let row = |l: &Line| {
        vec![
            l.key.clone(),
            l.tasks.to_string(),
            l.billed_seconds.to_string(),
            usd(l.as_run_usd),
            usd(l.fargate_usd),
            usd_opt(l.fargate_spot_usd),
            usd_opt(l.ec2_on_demand_usd),
            usd_opt(l.ec2_spot_usd),
        ]
    };
    let mut rows: Vec<Vec<String>> = r.lines.iter().map(row).collect();
    rows.push(vec![
        format!(
            "idle capacity ({} instance(s), {:.0} s)",
            r.idle.instances, r.idle.instance_seconds
        ),
        String::new(),
        String::new(),
        usd(r.idle.usd),
        "-".into(),
        "-".into(),
        "-".into(),
        "-".into(),
    ]);
    rows.push(row(&r.total));
    let group = match r.group_by {
        GroupBy::Service => "SERVICE",
        GroupBy::Family => "FAMILY",
        GroupBy::StartedBy => "STARTED BY",
        GroupBy::Task => "TASK",
    };
    let mut out = render_table(
        &[
            group,
            "TASKS",
            "BILLED S",
            "AS RUN",
            "FARGATE",
            "FARGATE_SPOT",
            "EC2",
            "EC2 SPOT",
        ],
        &rows,
        1,
    );
    if let Some(c) = &r.cheapest {
        out.push_str(&format!(
            "\ncheapest for this usage: {} at {}",
            c.option,
            usd(c.usd)
        ));
        if r.total.as_run_usd > 0.0 {
            let diff = (r.total.as_run_usd - c.usd) / r.total.as_run_usd * 100.0;
            out.push_str(&format!(" ({diff:.0}% below the cost as run)"));
        }
        out.push('\n');
    }
    for p in &r.ec2_packing {
        out.push_str(&format!(
            "EC2{} assumes {} ({}) holding {} task(s) of {} cpu / {} MiB at {}/h\n",
            if p.spot { " spot" } else { "" },
            p.instance_type,
            p.region,
            p.tasks_per_instance,
            p.cpu,
            p.memory,
            usd(p.instance_hourly_usd)
        ));
    }
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

/// Per-task usage for people.
pub fn render_usage(tasks: &[TaskUsage], instances: &[InstanceUsage]) -> String {
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.task_arn.rsplit('/').next().unwrap_or("").to_string(),
                t.family.clone(),
                t.launch_type.clone(),
                format!("{}/{}", t.cpu, t.memory),
                format!("{:.1}", t.seconds),
                t.billed_seconds.to_string(),
                usd(t.cost_usd),
                if t.running { "running" } else { "stopped" }.into(),
            ]
        })
        .collect();
    let mut out = render_table(
        &[
            "TASK", "FAMILY", "LAUNCH", "CPU/MIB", "SECONDS", "BILLED S", "COST", "STATE",
        ],
        &rows,
        4,
    );
    if !instances.is_empty() {
        let rows: Vec<Vec<String>> = instances
            .iter()
            .map(|i| {
                vec![
                    i.ec2_instance_id.clone(),
                    i.instance_type.clone(),
                    i.market.clone(),
                    format!("{:.1}", i.seconds),
                    i.billed_seconds.to_string(),
                    usd(i.cost_usd),
                    usd(i.attributed_usd),
                    usd(i.idle_usd),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&render_table(
            &[
                "INSTANCE",
                "TYPE",
                "MARKET",
                "SECONDS",
                "BILLED S",
                "COST",
                "TASKS PAID",
                "IDLE",
            ],
            &rows,
            3,
        ));
    }
    out
}

/// Read every page of task usage and the instance usage. A cluster the
/// query names must exist in the region read (an all-zero report of a
/// cluster that is in another region would say nothing true).
fn fetch(q: &Query) -> anyhow::Result<(Vec<TaskUsage>, Vec<InstanceUsage>)> {
    let client = crate::client::Client::from_env(q.endpoint_url.as_deref(), q.region.as_deref())?;
    if let Some(c) = &q.cluster {
        let out = crate::client::block_on(client.call(
            "AmazonEC2ContainerServiceV20141113.DescribeClusters",
            &json!({"clusters": [c]}),
        ))??;
        if out["clusters"].as_array().is_none_or(Vec::is_empty) {
            anyhow::bail!(
                "cluster {c} does not exist in region {} ({}); clusters are regional: pass --region",
                client.region(),
                client.region_source()
            );
        }
    }
    let mut body = json!({});
    if let Some(c) = &q.cluster {
        body["cluster"] = json!(c);
    }
    if let Some(s) = &q.since {
        body["since"] = json!(parse_since(s, Utc::now())?.timestamp_millis() as f64 / 1000.0);
    }
    crate::client::block_on(async {
        let mut tasks = Vec::new();
        loop {
            let out = client.call("Berth_20261123.ListTaskUsage", &body).await?;
            for u in out["usage"].as_array().into_iter().flatten() {
                tasks.push(serde_json::from_value(u.clone())?);
            }
            match out.get("nextToken").and_then(Value::as_str) {
                Some(t) => body["nextToken"] = json!(t),
                None => break,
            }
        }
        if let Some(o) = body.as_object_mut() {
            o.remove("nextToken");
        }
        let out = client
            .call("Berth_20261123.ListInstanceUsage", &body)
            .await?;
        let instances = out["usage"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| serde_json::from_value(u.clone()))
            .collect::<Result<_, _>>()?;
        anyhow::Ok((tasks, instances))
    })?
}

/// `berth cost usage`.
pub fn run_usage(args: UsageArgs) -> anyhow::Result<i32> {
    let (tasks, instances) = fetch(&args.query)?;
    match args.query.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"tasks": tasks, "instances": instances}))?
        ),
        Output::Table => print!("{}", render_usage(&tasks, &instances)),
    }
    Ok(0)
}

/// `berth cost report`.
pub fn run_report(args: ReportArgs) -> anyhow::Result<i32> {
    let (tasks, instances) = fetch(&args.query)?;
    let mut r = report(&tasks, &instances, args.group_by);
    if tasks.is_empty() && instances.is_empty() {
        let client = crate::client::Client::from_env(
            args.query.endpoint_url.as_deref(),
            args.query.region.as_deref(),
        )?;
        r.notes.push(format!(
            "no usage in region {} ({}); usage is regional: pass --region for another",
            client.region(),
            client.region_source()
        ));
    }
    match args.query.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        Output::Table => print!("{}", render_report(&r)),
    }
    Ok(0)
}

#[cfg(test)]
mod tests;
