//! Capacity benchmark (seed 002): how long tasks wait for capacity that
//! managed scaling adds, cold and from a warm pool, and how fast a group
//! launches instances.
//!
//! For each boot delay (default 0 s and an EC2-like 45 s; `--quick`: 0 s and
//! 10 s), `cargo bench --bench capacity` starts `berth server` with
//! `--instance-boot-seconds` set to it and measures:
//!
//! 1. **Cold**: an Auto Scaling group (m5.large, min 0, max 2) behind a
//!    capacity provider with managed scaling (target 100) as the cluster's
//!    default strategy; RunTask of 2 tasks that each fill an instance (2048
//!    CPU units); the time from RunTask to both tasks RUNNING.
//! 2. **Warm pool**: the same with a warm pool of 2 stopped instances
//!    prepared first (the time the pool takes to fill is printed: seed 002
//!    reports 37 s for 2 instances on EC2); then RunTask → both RUNNING.
//! 3. **Launch rate** (boot 0 only): SetDesiredCapacity from 0 to N (50;
//!    `--quick`: 20) and the time until N container instances are
//!    registered: instances per second. Anchor: ECS on EC2 reaching 3,500
//!    tasks in about 10 minutes including instance launch (Vlad Ionescu,
//!    2022).
//!
//! The baseline of each RunTask figure is the boot delay itself: what the
//! instance takes before it can run anything. It prints figures, never
//! fails on them. Flags: `--quick`, `--boot S` (the EC2-like delay),
//! `--instances N`.

mod common;

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use serde_json::json;

use common::{for_each_arg, positive, start_server, wait_healthy, Client, Endpoint};

const IMAGE: &str = "berth-test/busybox:latest";
const ASG_VERSION: &str = "2011-01-01";
const EC2_VERSION: &str = "2016-11-15";

struct Args {
    boots: Vec<f64>,
    instances: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut quick = false;
    let mut boot: Option<f64> = None;
    let mut instances: Option<usize> = None;
    for_each_arg(|name, value| {
        match name {
            "--quick" => quick = true,
            "--boot" => boot = Some(positive("--boot", &value()?)?),
            "--instances" => instances = Some(positive("--instances", &value()?)?),
            _ => {}
        }
        Ok(())
    })?;
    let ec2_like = boot.unwrap_or(if quick { 10.0 } else { 45.0 });
    Ok(Args {
        boots: vec![0.0, ec2_like],
        instances: instances.unwrap_or(if quick { 20 } else { 50 }),
    })
}

fn main() -> std::process::ExitCode {
    common::exit_with(run())
}

fn run() -> anyhow::Result<()> {
    let a = args()?;
    let build = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/build");
    let status = std::process::Command::new(&build)
        .status()
        .with_context(|| format!("running {}", build.display()))?;
    if !status.success() {
        bail!("building the test images failed");
    }
    let rt = tokio::runtime::Runtime::new()?;
    let mut rows = Vec::new();
    for boot in &a.boots {
        rows.push(rt.block_on(scenario(*boot, a.instances))?);
    }
    println!();
    println!("RunTask (no capacity) → 2 tasks RUNNING via managed scaling");
    println!(
        "{:>8} {:>12} {:>14} {:>12} {:>10} {:>14}",
        "boot s", "cold s", "warm-pool s", "cold/warm", "pool fill", "instances/s"
    );
    for r in &rows {
        println!(
            "{:>8.1} {:>12.2} {:>14.2} {:>11.1}× {:>9.2}s {:>14}",
            r.boot,
            r.cold.as_secs_f64(),
            r.warm.as_secs_f64(),
            r.cold.as_secs_f64() / r.warm.as_secs_f64().max(0.001),
            r.pool_fill.as_secs_f64(),
            r.rate
                .map(|x| format!("{x:.1}"))
                .unwrap_or_else(|| "-".into()),
        );
    }
    println!("anchors: seed 002 warm-up 37 s for 2 instances; ECS on EC2 ~3,500 tasks in ~10 min with instance launch");
    Ok(())
}

struct Row {
    boot: f64,
    cold: Duration,
    warm: Duration,
    pool_fill: Duration,
    rate: Option<f64>,
}

fn user_data(cluster: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!(
        "#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"
    ))
}

/// A cluster fed by a managed-scaling capacity provider over a new group.
async fn capacity(c: &mut Client, name: &str, max: usize, warm_pool: bool) -> anyhow::Result<()> {
    c.ecs("CreateCluster", &json!({"clusterName": name}))
        .await?;
    c.query(
        "ec2",
        EC2_VERSION,
        "CreateLaunchTemplate",
        &[
            ("LaunchTemplateName", name.to_string()),
            ("LaunchTemplateData.InstanceType", "m5.large".into()),
            ("LaunchTemplateData.UserData", user_data(name)),
        ],
    )
    .await?;
    c.query(
        "autoscaling",
        ASG_VERSION,
        "CreateAutoScalingGroup",
        &[
            ("AutoScalingGroupName", name.to_string()),
            ("LaunchTemplate.LaunchTemplateName", name.to_string()),
            ("MinSize", "0".into()),
            ("MaxSize", max.to_string()),
            ("AvailabilityZones.member.1", "us-east-1a".into()),
            ("AvailabilityZones.member.2", "us-east-1b".into()),
            ("NewInstancesProtectedFromScaleIn", "true".into()),
        ],
    )
    .await?;
    if warm_pool {
        c.query(
            "autoscaling",
            ASG_VERSION,
            "PutWarmPool",
            &[
                ("AutoScalingGroupName", name.to_string()),
                ("MinSize", max.to_string()),
                ("PoolState", "Stopped".into()),
            ],
        )
        .await?;
    }
    let xml = c
        .query(
            "autoscaling",
            ASG_VERSION,
            "DescribeAutoScalingGroups",
            &[("AutoScalingGroupNames.member.1", name.to_string())],
        )
        .await?;
    let arn =
        between(&xml, "<AutoScalingGroupARN>", "</AutoScalingGroupARN>").context("group ARN")?;
    c.ecs(
        "CreateCapacityProvider",
        &json!({"name": format!("cp-{name}"), "autoScalingGroupProvider": {
            "autoScalingGroupArn": arn,
            "managedTerminationProtection": "ENABLED",
            "managedScaling": {"status": "ENABLED", "targetCapacity": 100}}}),
    )
    .await?;
    c.ecs(
        "PutClusterCapacityProviders",
        &json!({"cluster": name, "capacityProviders": [format!("cp-{name}")],
                "defaultCapacityProviderStrategy": [{"capacityProvider": format!("cp-{name}"), "weight": 1}]}),
    )
    .await?;
    Ok(())
}

fn between<'a>(s: &'a str, a: &str, b: &str) -> Option<&'a str> {
    let i = s.find(a)? + a.len();
    let j = s[i..].find(b)? + i;
    Some(&s[i..j])
}

/// RunTask of 2 instance-filling tasks; the time until both are RUNNING.
async fn run_two(
    c: &mut Client,
    cluster: &str,
    td: &str,
) -> anyhow::Result<(Duration, Vec<String>)> {
    let start = Instant::now();
    let out = c
        .ecs(
            "RunTask",
            &json!({"cluster": cluster, "taskDefinition": td, "count": 2}),
        )
        .await?;
    let arns: Vec<String> = out["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
        .collect();
    if arns.len() != 2 {
        bail!("RunTask did not take 2 tasks: {out}");
    }
    loop {
        let d = c
            .ecs("DescribeTasks", &json!({"cluster": cluster, "tasks": arns}))
            .await?;
        let statuses: Vec<&str> = d["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["lastStatus"].as_str())
            .collect();
        if statuses.iter().all(|s| *s == "RUNNING") {
            return Ok((start.elapsed(), arns));
        }
        if statuses.contains(&"STOPPED") {
            bail!("a task stopped: {d}");
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!("tasks not RUNNING after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stop_all(c: &mut Client, cluster: &str, arns: &[String]) -> anyhow::Result<()> {
    for a in arns {
        c.ecs("StopTask", &json!({"cluster": cluster, "task": a}))
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let d = c
            .ecs("DescribeTasks", &json!({"cluster": cluster, "tasks": arns}))
            .await?;
        if d["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|t| t["lastStatus"] == "STOPPED")
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("tasks did not stop within 60 s")
}

async fn registered(c: &mut Client, cluster: &str) -> anyhow::Result<usize> {
    let out = c
        .ecs(
            "ListContainerInstances",
            &json!({"cluster": cluster, "status": "ACTIVE", "maxResults": 100}),
        )
        .await?;
    Ok(out["containerInstanceArns"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0))
}

async fn scenario(boot: f64, n: usize) -> anyhow::Result<Row> {
    let boot_arg = format!("{boot}");
    let (guard, ep): (_, Endpoint) = start_server(
        Some("normal"),
        &[
            "--instance-boot-seconds",
            &boot_arg,
            "--managed-scale-in-seconds",
            "1",
        ],
    )?;
    let mut guard = Some(guard);
    wait_healthy(&ep, &mut guard).await?;
    let mut c = Client::new(&ep);
    let td = c
        .ecs(
            "RegisterTaskDefinition",
            &json!({"family": "bench-capacity", "requiresCompatibilities": ["EC2"],
                    "cpu": "2048", "memory": "512",
                    "containerDefinitions": [{"name": "main", "image": IMAGE,
                        "command": ["sleep", "3600"], "stopTimeout": 1, "essential": true}]}),
        )
        .await?["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .context("task definition ARN")?
        .to_string();

    eprintln!("boot {boot} s: cold start");
    capacity(&mut c, "cold", 2, false).await?;
    let (cold, cold_tasks) = run_two(&mut c, "cold", &td).await?;

    eprintln!("boot {boot} s: warm pool");
    let fill_start = Instant::now();
    capacity(&mut c, "warm", 2, true).await?;
    loop {
        let xml = c
            .query(
                "autoscaling",
                ASG_VERSION,
                "DescribeWarmPool",
                &[("AutoScalingGroupName", "warm".into())],
            )
            .await?;
        if xml
            .matches("<LifecycleState>Warmed:Stopped</LifecycleState>")
            .count()
            == 2
        {
            break;
        }
        if fill_start.elapsed() > Duration::from_secs(600) {
            bail!("the warm pool did not fill within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pool_fill = fill_start.elapsed();
    let (warm, warm_tasks) = run_two(&mut c, "warm", &td).await?;
    stop_all(&mut c, "cold", &cold_tasks).await?;
    stop_all(&mut c, "warm", &warm_tasks).await?;

    let mut rate = None;
    if boot == 0.0 {
        eprintln!("launch rate: {n} instances");
        c.ecs("CreateCluster", &json!({"clusterName": "fleet"}))
            .await?;
        c.query(
            "ec2",
            EC2_VERSION,
            "CreateLaunchTemplate",
            &[
                ("LaunchTemplateName", "fleet".into()),
                ("LaunchTemplateData.InstanceType", "t3.small".into()),
                ("LaunchTemplateData.UserData", user_data("fleet")),
            ],
        )
        .await?;
        c.query(
            "autoscaling",
            ASG_VERSION,
            "CreateAutoScalingGroup",
            &[
                ("AutoScalingGroupName", "fleet".into()),
                ("LaunchTemplate.LaunchTemplateName", "fleet".into()),
                ("MinSize", "0".into()),
                ("MaxSize", n.to_string()),
                ("AvailabilityZones.member.1", "us-east-1a".into()),
            ],
        )
        .await?;
        let start = Instant::now();
        c.query(
            "autoscaling",
            ASG_VERSION,
            "SetDesiredCapacity",
            &[
                ("AutoScalingGroupName", "fleet".into()),
                ("DesiredCapacity", n.to_string()),
            ],
        )
        .await?;
        while registered(&mut c, "fleet").await? < n {
            if start.elapsed() > Duration::from_secs(300) {
                bail!("{n} instances not registered within 5 minutes");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rate = Some(n as f64 / start.elapsed().as_secs_f64());
        c.query(
            "autoscaling",
            ASG_VERSION,
            "SetDesiredCapacity",
            &[
                ("AutoScalingGroupName", "fleet".into()),
                ("DesiredCapacity", "0".into()),
            ],
        )
        .await?;
        while registered(&mut c, "fleet").await? > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    drop(guard);
    Ok(Row {
        boot,
        cold,
        warm,
        pool_fill,
        rate,
    })
}
