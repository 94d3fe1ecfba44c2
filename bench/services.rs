//! Service scheduler benchmark.
//!
//! 1. **Controller pass** (in-process, no Docker): a store with 1,000
//!    FARGATE services of 10 tasks each (10,000 tasks), every task marked
//!    RUNNING as an agent would report it; then quiet passes of the
//!    scheduler (`Ecs::schedule_services`), each timed: the figure is what
//!    one pass over every service costs when nothing is to be done (target
//!    ≤ 50 ms). The first pass, which launches the 10,000 tasks, is timed
//!    apart.
//! 2. **Killed task replaced** (Docker): a service of 2 FARGATE tasks;
//!    `docker kill` of one task's container, then the time until the
//!    service has 2 RUNNING tasks again, the new one included (target
//!    ≤ 2 s); a fresh service each round, so no round is throttled as a
//!    crash loop.
//! 3. **Rolling deployment** (Docker): a service of 10 FARGATE tasks whose
//!    container has a health check every 5 s; UpdateService to a new
//!    revision (minimumHealthyPercent 100, maximumPercent 200), then the
//!    time until its deployment is COMPLETED. What it must wait for in the
//!    same run: each wave of new tasks waits one health check interval
//!    before it is healthy; with 200% one wave holds all 10. Printed as a
//!    ratio.
//!
//! Flags (after `--`): `--services N` (default 1,000), `--tasks-per N`
//! (10), `--passes N` (20), `--kills N` (5), `--no-docker` (only part 1).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use berth::clock::SystemClock;
use berth::context::Ctx;
use berth::services::Services;
use berth::settings::Settings;
use berth::store::{Durability, Store};
use berth::wire::App;
use common::{ms, percentile, Client};

struct Args {
    services: usize,
    tasks_per: i64,
    passes: usize,
    kills: usize,
    docker: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        services: 1000,
        tasks_per: 10,
        passes: 20,
        kills: 5,
        docker: true,
    };
    common::for_each_arg(|flag, value| {
        match flag {
            "--services" => a.services = common::positive(flag, &value()?)?,
            "--tasks-per" => a.tasks_per = common::positive(flag, &value()?)?,
            "--passes" => a.passes = common::positive(flag, &value()?)?,
            "--kills" => a.kills = common::positive(flag, &value()?)?,
            "--no-docker" => a.docker = false,
            _ => {}
        }
        Ok(())
    })?;
    Ok(a)
}

fn controller_pass(a: &Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(
        &dir.path().join("berth.db"),
        Durability::Normal,
    )?);
    let services =
        Services::new(store.clone(), Settings::default(), Arc::new(SystemClock)).expect("services");
    let app = App::in_process(services.registry());
    let ctx = Ctx::for_tests(chrono::Utc::now());
    let call = |op: &str, input: Value| -> anyhow::Result<Value> {
        app.call_named("ECS", &ctx, op, input)
            .map_err(|e| anyhow::anyhow!("{op}: {e}"))
    };
    call("CreateCluster", json!({"clusterName": "bench"}))?;
    let td = call(
        "RegisterTaskDefinition",
        json!({"family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
               "cpu": "256", "memory": "512",
               "containerDefinitions": [{"name": "main", "image": "app:1"}]}),
    )?["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .context("a task definition")?
        .to_string();
    let t0 = Instant::now();
    for i in 0..a.services {
        call(
            "CreateService",
            json!({"cluster": "bench", "serviceName": format!("s{i}"), "taskDefinition": td,
                   "desiredCount": a.tasks_per, "launchType": "FARGATE",
                   "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}}),
        )?;
    }
    let created = t0.elapsed();
    let now = || chrono::Utc::now().timestamp_millis();
    let t0 = Instant::now();
    services.ecs.schedule_services(now())?;
    let first = t0.elapsed();
    // What the agent would report: every task RUNNING.
    let tasks: i64 = store.write(|tx| {
        tx.execute(
            "UPDATE tasks SET last_status = 'RUNNING', started_at = created_at / 1000.0,
               doc = json_set(doc, '$.lastStatus', 'RUNNING', '$.startedAt', created_at / 1000.0)",
            [],
        )?;
        Ok(tx.query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))?)
    })?;
    // One pass to record every service's steady state, then quiet ones.
    services.ecs.schedule_services(now())?;
    let mut times = Vec::new();
    for _ in 0..a.passes {
        let t0 = Instant::now();
        services.ecs.schedule_services(now())?;
        times.push(t0.elapsed());
    }
    times.sort();
    let launched: i64 =
        store.read(|c| Ok(c.query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))?))?;
    if launched != tasks {
        bail!("a quiet pass launched tasks: {tasks} → {launched}");
    }
    println!(
        "Controller pass, in-process ({} services × {} tasks = {tasks} tasks):",
        a.services, a.tasks_per
    );
    println!(
        "  CreateService × {}: {:.1} ms ({:.3} ms each)",
        a.services,
        ms(created),
        ms(created) / a.services as f64
    );
    println!("  first pass (launches {tasks} tasks): {:.1} ms", ms(first));
    println!(
        "  quiet pass: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms over {} passes (target ≤ 50 ms)",
        ms(percentile(&times, 50.0)),
        ms(percentile(&times, 90.0)),
        ms(*times.last().unwrap_or(&Duration::ZERO)),
        a.passes
    );
    Ok(())
}

const NET: &str = r#"{"awsvpcConfiguration": {"subnets": ["subnet-1"]}}"#;

async fn service_state(c: &mut Client, name: &str) -> anyhow::Result<Value> {
    let out = c
        .ecs(
            "DescribeServices",
            &json!({"cluster": "bench", "services": [name]}),
        )
        .await?;
    Ok(out["services"][0].clone())
}

async fn running_tasks(c: &mut Client, name: &str) -> anyhow::Result<Vec<Value>> {
    let arns = c
        .ecs(
            "ListTasks",
            &json!({"cluster": "bench", "serviceName": name}),
        )
        .await?["taskArns"]
        .clone();
    if arns.as_array().is_none_or(|a| a.is_empty()) {
        return Ok(vec![]);
    }
    let out = c
        .ecs("DescribeTasks", &json!({"cluster": "bench", "tasks": arns}))
        .await?;
    Ok(out["tasks"].as_array().cloned().unwrap_or_default())
}

fn steady(s: &Value) -> bool {
    s["deployments"].as_array().is_some_and(|d| d.len() == 1)
        && s["runningCount"] == s["desiredCount"]
        && s["pendingCount"] == 0
        && s["deployments"][0]["rolloutState"] == "COMPLETED"
}

async fn wait_until(
    c: &mut Client,
    name: &str,
    timeout: Duration,
    mut until: impl FnMut(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let s = service_state(c, name).await?;
        if until(&s) {
            return Ok(s);
        }
        if Instant::now() > deadline {
            bail!("service {name} did not get there in {timeout:?}: {s}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn register(health: bool, rev: &str) -> Value {
    let mut c = json!({"name": "web", "image": "berth-test/testapp:latest",
        "command": ["berth-testapp", "serve", "--port", "8080"],
        "environment": [{"name": "REVISION", "value": rev}]});
    if health {
        c["healthCheck"] = json!({"command": ["CMD-SHELL", "berth-testapp health-check http://localhost:8080/health"],
            "interval": 5, "timeout": 2, "retries": 1, "startPeriod": 0});
    }
    json!({"family": if health { "checked" } else { "plain" }, "networkMode": "awsvpc",
           "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
           "executionRoleArn": "arn:aws:iam::000000000000:role/ecsTaskExecutionRole",
           "containerDefinitions": [c]})
}

async fn docker_parts(a: &Args) -> anyhow::Result<()> {
    let status = std::process::Command::new("tests/images/build").status()?;
    if !status.success() {
        bail!("tests/images/build failed");
    }
    let (mut server, ep) = common::start_server(Some("normal"), &[])?;
    let mut guard = Some(server);
    common::wait_healthy(&ep, &mut guard).await?;
    server = guard.take().context("server")?;
    let mut c = Client::new(&ep);
    c.ecs("CreateCluster", &json!({"clusterName": "bench"}))
        .await?;
    let net: Value = serde_json::from_str(NET)?;

    // Killed task → replacement RUNNING.
    let td = c
        .ecs("RegisterTaskDefinition", &register(false, "1"))
        .await?["taskDefinition"]["taskDefinitionArn"]
        .clone();
    // A fresh service each round: a service whose tasks keep dying soon
    // after they start is throttled (from the third failure in 15
    // minutes), which is not what this measures.
    let mut replace = Vec::new();
    for round in 0..a.kills {
        let name = format!("kill-{round}");
        c.ecs(
            "CreateService",
            &json!({"cluster": "bench", "serviceName": name, "taskDefinition": td,
            "desiredCount": 2, "launchType": "FARGATE", "networkConfiguration": net}),
        )
        .await?;
        wait_until(&mut c, &name, Duration::from_secs(60), steady).await?;
        let before = running_tasks(&mut c, &name).await?;
        let victim = before[0]["taskArn"].as_str().context("a task")?.to_string();
        let id = victim.rsplit('/').next().unwrap_or_default().to_string();
        let t0 = Instant::now();
        let out = std::process::Command::new("docker")
            .args(["kill", &format!("berth-{id}-web")])
            .output()?;
        if !out.status.success() {
            bail!("docker kill: {}", String::from_utf8_lossy(&out.stderr));
        }
        loop {
            let now = running_tasks(&mut c, &name).await?;
            let up = now
                .iter()
                .filter(|t| t["lastStatus"] == "RUNNING" && t["taskArn"] != victim.as_str())
                .count();
            if up == 2 {
                break;
            }
            if t0.elapsed() > Duration::from_secs(60) {
                bail!("no replacement within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        replace.push(t0.elapsed());
        c.ecs(
            "DeleteService",
            &json!({"cluster": "bench", "service": name, "force": true}),
        )
        .await?;
        wait_until(&mut c, &name, Duration::from_secs(60), |s| {
            s["status"] == "INACTIVE"
        })
        .await?;
    }
    replace.sort();
    println!(
        "Killed task replaced (docker kill → replacement RUNNING), {} times:",
        a.kills
    );
    println!(
        "  p50 {:.0} ms, max {:.0} ms (target ≤ 2,000 ms)",
        ms(percentile(&replace, 50.0)),
        ms(*replace.last().unwrap_or(&Duration::ZERO))
    );

    // A rolling deployment of 10 tasks with a 5 s health check.
    let td1 = c
        .ecs("RegisterTaskDefinition", &register(true, "1"))
        .await?["taskDefinition"]["taskDefinitionArn"]
        .clone();
    let td2 = c
        .ecs("RegisterTaskDefinition", &register(true, "2"))
        .await?["taskDefinition"]["taskDefinitionArn"]
        .clone();
    c.ecs(
        "CreateService",
        &json!({"cluster": "bench", "serviceName": "roll", "taskDefinition": td1,
        "desiredCount": 10, "launchType": "FARGATE", "networkConfiguration": net}),
    )
    .await?;
    wait_until(&mut c, "roll", Duration::from_secs(180), steady).await?;
    let t0 = Instant::now();
    c.ecs(
        "UpdateService",
        &json!({"cluster": "bench", "service": "roll", "taskDefinition": td2}),
    )
    .await?;
    let mut lowest = i64::MAX;
    wait_until(&mut c, "roll", Duration::from_secs(300), |s| {
        lowest = lowest.min(s["runningCount"].as_i64().unwrap_or(0));
        steady(s) && s["deployments"][0]["taskDefinition"] == td2
    })
    .await?;
    let took = t0.elapsed();
    let waits = Duration::from_secs(5);
    println!("Rolling deployment of 10 FARGATE tasks, health check every 5 s (100% / 200%):");
    println!(
        "  UpdateService → COMPLETED: {:.2} s; must wait 1 wave × 5 s = {:.0} s; ratio {:.2}×; fewest RUNNING seen {lowest}",
        took.as_secs_f64(),
        waits.as_secs_f64(),
        took.as_secs_f64() / waits.as_secs_f64()
    );
    c.ecs(
        "DeleteService",
        &json!({"cluster": "bench", "service": "roll", "force": true}),
    )
    .await?;
    wait_until(&mut c, "roll", Duration::from_secs(60), |s| {
        s["status"] == "INACTIVE"
    })
    .await?;
    drop(server);
    Ok(())
}

fn main() -> std::process::ExitCode {
    common::exit_with((|| {
        let a = parse_args()?;
        controller_pass(&a)?;
        if a.docker {
            tokio::runtime::Runtime::new()?.block_on(docker_parts(&a))?;
        }
        Ok(())
    })())
}
