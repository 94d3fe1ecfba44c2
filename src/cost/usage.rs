//! The store edge of metering: reads the facts of tasks and instances
//! (through ECS's and Auto Scaling's own functions), meters them
//! (`cost::meter`), freezes a stopped task's usage in metering's own table
//! `task_usage` (so its bill never changes, even when the price files do;
//! the metering controller, `metering.rs`, does it within a pass of the
//! stop), and lists usage for Berth's API (`ListTaskUsage`,
//! `ListInstanceUsage` in `platform.rs`). A stopped task not yet frozen is
//! metered from the same facts, so it reads the same.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::meter::{self, InstanceFacts, InstanceUsage, TaskFacts, TaskUsage};
use crate::catalog::Arch;
use crate::ecs::instances;
use crate::ecs::taskdef_rules::{parse_cpu, parse_memory};
use crate::ecs::tasks::{self, TaskRecord};
use crate::error::ApiResult;

fn epoch_ms(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_f64)
        .map(|s| (s * 1000.0).round() as i64)
}

/// An instance's metering facts from its row.
fn instance_facts(
    row: &instances::InstanceRow,
    region: &str,
    ended_ms: Option<i64>,
    billed_before_s: u64,
) -> InstanceFacts {
    InstanceFacts {
        arn: row.arn.clone(),
        ec2_instance_id: row.ec2_instance_id.clone(),
        cluster_arn: row.cluster_arn.clone(),
        region: region.to_string(),
        instance_type: row.doc.instance_type.clone().unwrap_or_default(),
        registered_cpu: row.doc.resource_int("CPU"),
        registered_memory: row.doc.resource_int("MEMORY"),
        spot: row.doc.is_spot(),
        started_ms: row.registered_at,
        ended_ms,
        billed_before_s,
    }
}

fn load_instance(conn: &Connection, arn: &str) -> ApiResult<Option<InstanceFacts>> {
    let Some(row) = instances::load(conn, arn)? else {
        return Ok(None);
    };
    let region = crate::ecs::arn::parse(arn)
        .map(|a| a.region.to_string())
        .unwrap_or_default();
    let ended = instances::deregistered_at(conn, arn)?;
    // An Auto Scaling instance was billed while it booted.
    let billed_before_s = crate::autoscaling::fleet::load_instance(conn, &row.ec2_instance_id)?
        .map_or(0, |i| meter::seconds_billed(i.unregistered_billed_ms, 0));
    Ok(Some(instance_facts(&row, &region, ended, billed_before_s)))
}

/// A task as read for metering: its facts, and its frozen usage if any.
struct Row {
    facts: TaskFacts,
    instance_arn: Option<String>,
    usage: Option<String>,
}

/// The frozen usage of a task, if metering has frozen it.
fn frozen(conn: &Connection, task_arn: &str) -> ApiResult<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT usage FROM task_usage WHERE task_arn = ?1")?
        .query_row([task_arn], |r| r.get(0))
        .optional()?)
}

fn row_of(conn: &Connection, r: TaskRecord) -> ApiResult<Row> {
    let doc = &r.doc;
    let arch = match r
        .task_definition
        .get("runtimePlatform")
        .and_then(|p| p.get("cpuArchitecture"))
        .and_then(Value::as_str)
    {
        Some("ARM64") => Arch::Arm64,
        _ => Arch::X86_64,
    };
    let size = |k: &str, parse: fn(&str) -> Option<u32>| {
        doc.get(k)
            .and_then(Value::as_str)
            .and_then(parse)
            .unwrap_or(0)
    };
    let (cpu, memory) = match &r.reserved {
        Some(res) => (res.cpu.max(0) as u32, res.memory.max(0) as u32),
        None => (size("cpu", parse_cpu), size("memory", parse_memory)),
    };
    let ephemeral_gib = doc
        .get("ephemeralStorage")
        .and_then(|e| e.get("sizeInGiB"))
        .and_then(Value::as_f64)
        .unwrap_or(20.0);
    let stopped_ms = (doc.get("lastStatus").and_then(Value::as_str) == Some("STOPPED"))
        .then(|| epoch_ms(doc.get("stoppedAt")))
        .flatten();
    let usage = frozen(conn, &r.arn)?;
    Ok(Row {
        facts: TaskFacts {
            capacity_provider: doc
                .get("capacityProviderName")
                .and_then(Value::as_str)
                .map(str::to_string),
            pull_started_ms: epoch_ms(doc.get("pullStartedAt")),
            task_arn: r.arn,
            cluster_arn: r.cluster_arn,
            region: r.region,
            family: r.family,
            task_definition_arn: r.task_definition_arn,
            launch_type: r.launch_type,
            started_by: r.started_by,
            group: r.group,
            created_ms: r.created_ms,
            arch,
            cpu,
            memory,
            ephemeral_gib,
            stopped_ms,
            instance: None,
        },
        instance_arn: r.container_instance_arn,
        usage,
    })
}

/// Meter a row: its frozen usage, or computed now.
fn meter_row(conn: &Connection, mut row: Row, now_ms: i64) -> ApiResult<TaskUsage> {
    if let Some(u) = row
        .usage
        .as_deref()
        .and_then(|u| serde_json::from_str(u).ok())
    {
        return Ok(u);
    }
    if let Some(arn) = &row.instance_arn {
        row.facts.instance = load_instance(conn, arn)?;
        if let Some(i) = &row.facts.instance {
            // The arch of an EC2 task is its instance's.
            row.facts.arch =
                crate::catalog::find(&i.instance_type).map_or(row.facts.arch, |t| t.arch);
        }
    }
    Ok(meter::task_usage(&row.facts, now_ms))
}

/// Freeze the usage of a stopped task, unless it is frozen already.
/// Returns whether it froze it.
pub fn freeze(conn: &Connection, task: TaskRecord, now_ms: i64) -> ApiResult<bool> {
    if task.doc.get("lastStatus").and_then(Value::as_str) != Some("STOPPED") {
        return Ok(false);
    }
    let row = row_of(conn, task)?;
    if row.usage.is_some() {
        return Ok(false);
    }
    let arn = row.facts.task_arn.clone();
    let usage = meter_row(conn, row, now_ms)?;
    conn.prepare_cached("INSERT OR IGNORE INTO task_usage (task_arn, usage) VALUES (?1, ?2)")?
        .execute(params![
            arn,
            serde_json::to_string(&usage).expect("serialises")
        ])?;
    Ok(true)
}

/// Whose usage a listing covers.
pub struct Scope<'a> {
    pub account: &'a str,
    pub region: &'a str,
    /// One cluster, or all of the account's in the region.
    pub cluster_arn: Option<&'a str>,
    /// Epoch milliseconds (`i64::MIN` for all time).
    pub since_ms: i64,
    /// Metered up to this (epoch milliseconds) where still running.
    pub now_ms: i64,
}

/// The tasks in `scope` created at or after its `since_ms`, oldest first,
/// from after the key `after` (`(created_ms, arn)`), at most `limit`.
pub fn task_usage(
    conn: &Connection,
    scope: &Scope<'_>,
    after: Option<(i64, String)>,
    limit: usize,
) -> ApiResult<Vec<(i64, TaskUsage)>> {
    let Scope {
        account,
        region,
        cluster_arn,
        since_ms,
        now_ms,
    } = *scope;
    let (after_ms, after_arn) = after.unwrap_or((i64::MIN, String::new()));
    tasks::records(
        conn,
        account,
        region,
        cluster_arn,
        since_ms,
        (after_ms, &after_arn),
        limit,
    )?
    .into_iter()
    .map(|r| {
        let created = r.created_ms;
        Ok((created, meter_row(conn, row_of(conn, r)?, now_ms)?))
    })
    .collect()
}

/// The container instances in `scope` registered at any time in
/// `[since_ms, now]`, metered over that window with what the tasks placed on
/// them paid.
pub fn instance_usage(conn: &Connection, scope: &Scope<'_>) -> ApiResult<Vec<InstanceUsage>> {
    let Scope {
        account,
        region,
        cluster_arn,
        since_ms,
        now_ms,
    } = *scope;
    let registered = instances::registered_since(conn, account, region, cluster_arn, since_ms)?;
    let mut out = Vec::with_capacity(registered.len());
    for (row, _) in registered {
        let Some(facts) = load_instance(conn, &row.arn)? else {
            continue;
        };
        let tasks = tasks::records_on(conn, &row.arn, since_ms)?
            .into_iter()
            .map(|r| meter_row(conn, row_of(conn, r)?, now_ms))
            .collect::<ApiResult<Vec<_>>>()?;
        let since = (since_ms > i64::MIN).then_some(since_ms);
        out.push(meter::instance_usage(&facts, &tasks, since, now_ms));
    }
    out.extend(unregistered_usage(conn, scope)?);
    Ok(out)
}

/// What Auto Scaling groups' instances were billed while registered with no
/// cluster: booting, and prepared running in a warm pool. Each is all idle
/// capacity (no task can use it), listed with an empty container instance
/// ARN under the cluster its user data names. Instances terminated before
/// `since` are left out; the time of the others is counted whole.
fn unregistered_usage(conn: &Connection, scope: &Scope<'_>) -> ApiResult<Vec<InstanceUsage>> {
    use crate::autoscaling::fleet;
    let mut out = Vec::new();
    for i in fleet::all_instances(conn, scope.account, scope.region, i64::MIN / 2)? {
        if i.terminated_at.is_some_and(|t| t < scope.since_ms) {
            continue;
        }
        let cluster = i
            .ecs_config
            .get("ECS_CLUSTER")
            .filter(|c| !c.is_empty())
            .map(String::as_str)
            .unwrap_or(crate::ecs::clusters::DEFAULT_CLUSTER);
        let cluster_arn =
            crate::ecs::arn::ecs(scope.region, scope.account, &format!("cluster/{cluster}"));
        if scope.cluster_arn.is_some_and(|c| c != cluster_arn) {
            continue;
        }
        let ms = i.unregistered_billed_ms(scope.now_ms);
        if ms <= 0 {
            continue;
        }
        let seconds = ms as f64 / 1000.0;
        let spot = i.market == "spot";
        // Per second. The start's one 60-second minimum is counted with the
        // instance's time in the cluster once it has registered, here
        // while it has not.
        let registered = instances::ever_registered(conn, &i.id)?;
        let minimum = if registered {
            0
        } else {
            crate::pricing::EC2_MINIMUM_SECONDS
        };
        let billed_seconds = meter::seconds_billed(ms, minimum);
        let hourly = if spot {
            crate::pricing::ec2_spot_estimate(&i.region, &i.instance_type)
        } else {
            crate::pricing::ec2_on_demand(&i.region, &i.instance_type)
        };
        let cost = hourly.map_or(0.0, |h| h * billed_seconds as f64 / 3600.0);
        let running = i.billed_unregistered_now();
        out.push(InstanceUsage {
            container_instance_arn: String::new(),
            ec2_instance_id: i.id.clone(),
            cluster_arn,
            region: i.region.clone(),
            instance_type: i.instance_type.clone(),
            market: i.market.clone(),
            metered_from: i.launched_at as f64 / 1000.0,
            metered_to: (!running).then(|| i.terminated_at.unwrap_or(scope.now_ms) as f64 / 1000.0),
            running,
            seconds,
            billed_seconds,
            cost_usd: cost,
            attributed_usd: 0.0,
            idle_usd: cost,
            basis: format!(
                "EC2 {} {} of Auto Scaling group {}, billed while booting or prepared in a warm pool (not registered with a cluster)",
                i.instance_type,
                i.market,
                i.group_name.as_deref().unwrap_or("-")
            ),
        });
    }
    Ok(out)
}
