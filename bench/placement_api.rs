//! Placement through the API: RunTask on a cluster of many container
//! instances, next to the same calls on a cluster of one.
//!
//! `cargo bench --bench placement_api` starts `berth server` (remote agents'
//! timeout set far out, so the registered instances stay connected; no task
//! runs: their agents are elsewhere), registers 10,000 container instances
//! (m5.xlarge-sized, three zones) on cluster `big` with
//! RegisterContainerInstance, and one large instance on cluster `small`,
//! then for each cluster:
//!
//! 1. RunTask count 1, one call after another from one client: the latency
//!    of each call (p50/p90/p99); the first call on `big` (which builds the
//!    cluster's placement index) is printed apart;
//! 2. RunTask count 10 from 16 concurrent clients: tasks placed per second.
//!
//! The per-call placement overhead at 10,000 instances is the difference of
//! the p50 latencies (`big` − `small`): everything else a RunTask does (the
//! signature, the decode, the validation, the inserts, the commit) is the
//! same on both. Targets: overhead ≤ 0.3 ms, ≥ 10,000 tasks/s for count 10.
//!
//! Flags (after `--`): `--instances N` (default 10,000), `--calls N`
//! (RunTask calls of each kind, default 2,000), `--durability full|normal`,
//! `--quick` (1,000 instances, 500 calls). `BERTH_BIN` runs another build.
//! Prints figures, never fails on a missed target.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};

use common::{
    for_each_arg, ms, percentile, positive, start_server, wait_healthy, Client, Endpoint,
};

const CLIENTS: usize = 16;
const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

struct Args {
    instances: usize,
    calls: usize,
    durability: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        instances: 10_000,
        calls: 2_000,
        durability: None,
    };
    let (mut instances, mut calls, mut quick) = (None, None, false);
    for_each_arg(|name, value| {
        match name {
            "--instances" => instances = Some(positive("--instances", &value()?)?),
            "--calls" => calls = Some(positive("--calls", &value()?)?),
            "--durability" => args.durability = Some(value()?),
            "--quick" => quick = true,
            _ => {}
        }
        Ok(())
    })?;
    if quick {
        args.instances = 1_000;
        args.calls = 500;
    }
    args.instances = instances.unwrap_or(args.instances);
    args.calls = calls.unwrap_or(args.calls);
    Ok(args)
}

async fn ecs(client: &mut Client, op: &str, body: Value) -> anyhow::Result<Value> {
    client.ecs(op, &body).await
}

/// Register `n` instances of `cpu` units and `memory` MiB on `cluster`,
/// from `CLIENTS` concurrent clients.
async fn register(
    ep: &Endpoint,
    cluster: &str,
    n: usize,
    cpu: i64,
    memory: i64,
) -> anyhow::Result<()> {
    let per = n.div_ceil(CLIENTS);
    let mut joins = Vec::new();
    for c in 0..CLIENTS {
        let (ep, cluster) = (ep.clone(), cluster.to_string());
        let range = (c * per)..((c + 1) * per).min(n);
        joins.push(tokio::spawn(async move {
            let mut client = Client::new(&ep);
            for i in range {
                let doc = json!({
                    "instanceId": format!("i-{i:017x}"),
                    "instanceType": "m5.xlarge",
                    "availabilityZone": ZONES[i % 3],
                    "region": "us-east-1",
                });
                ecs(
                    &mut client,
                    "RegisterContainerInstance",
                    json!({
                        "cluster": cluster,
                        "instanceIdentityDocument": doc.to_string(),
                        "totalResources": [
                            {"name": "CPU", "type": "INTEGER", "integerValue": cpu},
                            {"name": "MEMORY", "type": "INTEGER", "integerValue": memory},
                        ],
                        "versionInfo": {"agentVersion": "1.89.0", "dockerVersion": "20.10"},
                    }),
                )
                .await?;
            }
            anyhow::Ok(())
        }));
    }
    for j in joins {
        j.await??;
    }
    Ok(())
}

fn run_task(cluster: &str, count: usize) -> Value {
    json!({
        "cluster": cluster,
        "taskDefinition": "placed",
        "count": count,
        "launchType": "EC2",
        "placementStrategy": [
            {"type": "spread", "field": "attribute:ecs.availability-zone"},
            {"type": "binpack", "field": "memory"},
        ],
    })
}

fn placed(out: &Value, count: usize) -> anyhow::Result<()> {
    let n = out["tasks"].as_array().map_or(0, Vec::len);
    if n != count {
        bail!("RunTask placed {n} of {count}: {}", out["failures"]);
    }
    Ok(())
}

/// CPU seconds a process has used (Linux; 0 elsewhere).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line.
    (ticks(11) + ticks(12)) / 100.0
}

struct Figures {
    /// Server CPU per task placed with count 10, milliseconds.
    server_cpu_ms_per_task: f64,
    first: Duration,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    tasks_per_s: f64,
}

async fn measure(ep: &Endpoint, cluster: &str, calls: usize, pid: u32) -> anyhow::Result<Figures> {
    let mut client = Client::new(ep);
    let t0 = Instant::now();
    placed(&ecs(&mut client, "RunTask", run_task(cluster, 1)).await?, 1)?;
    let first = t0.elapsed();
    let mut lat = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t0 = Instant::now();
        placed(&ecs(&mut client, "RunTask", run_task(cluster, 1)).await?, 1)?;
        lat.push(t0.elapsed());
    }
    lat.sort_unstable();
    let per = calls.div_ceil(CLIENTS);
    let cluster_arc: Arc<str> = cluster.into();
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    let mut joins = Vec::new();
    for c in 0..CLIENTS {
        let (ep, cluster) = (ep.clone(), cluster_arc.clone());
        let n = per.min(calls.saturating_sub(c * per));
        joins.push(tokio::spawn(async move {
            let mut client = Client::new(&ep);
            for _ in 0..n {
                placed(
                    &ecs(&mut client, "RunTask", run_task(&cluster, 10)).await?,
                    10,
                )?;
            }
            anyhow::Ok(n * 10)
        }));
    }
    let mut tasks = 0;
    for j in joins {
        tasks += j.await??;
    }
    let tasks_per_s = tasks as f64 / t0.elapsed().as_secs_f64();
    let server_cpu_ms_per_task = (cpu_seconds(pid) - cpu0) * 1000.0 / tasks.max(1) as f64;
    Ok(Figures {
        server_cpu_ms_per_task,
        first,
        p50: percentile(&lat, 50.0),
        p90: percentile(&lat, 90.0),
        p99: percentile(&lat, 99.0),
        tasks_per_s,
    })
}

fn main() -> std::process::ExitCode {
    common::exit_with(real_main())
}

fn real_main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let (guard, ep) = start_server(
        args.durability.as_deref(),
        &["--agent-timeout-seconds", "1000000000"],
    )?;
    let pid = guard.pid();
    let mut server = Some(guard);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        wait_healthy(&ep, &mut server).await?;
        let mut client = Client::new(&ep);
        for c in ["big", "small"] {
            ecs(&mut client, "CreateCluster", json!({"clusterName": c})).await?;
        }
        ecs(&mut client, "RegisterTaskDefinition", json!({
            "family": "placed",
            "requiresCompatibilities": ["EC2"],
            "containerDefinitions": [{"name": "main", "image": "busybox", "cpu": 1, "memory": 6}],
        }))
        .await?;
        let t0 = Instant::now();
        eprintln!("registering {} instances ...", args.instances);
        register(&ep, "big", args.instances, 4096, 15_500).await?;
        let registered = t0.elapsed();
        // One instance that holds every task the runs place.
        let tasks = (args.calls + 1) * 11 + 10;
        register(&ep, "small", 1, tasks as i64 + 16, tasks as i64 * 6 + 16).await?;
        eprintln!("RunTask on big ...");
        let big = measure(&ep, "big", args.calls, pid).await?;
        eprintln!("RunTask on small ...");
        let small = measure(&ep, "small", args.calls, pid).await?;
        anyhow::Ok((registered, big, small))
    });
    drop(rt);
    if result.is_err() {
        if let Some(s) = &server {
            eprintln!("berth server log (tail):\n{}", s.log_tail(3000));
        }
    }
    let (registered, big, small) = result?;
    drop(server);
    println!("berth placement-through-the-API benchmark");
    println!(
        "durability:  {}",
        args.durability
            .as_deref()
            .unwrap_or("full (server default)")
    );
    println!(
        "clusters:    big = {} instances (4096 cpu, 15500 MiB, 3 zones; registered in {:.1} s), small = 1 instance",
        args.instances,
        registered.as_secs_f64()
    );
    println!(
        "requests:    RunTask EC2, strategies spread(zone) + binpack(memory); {} calls of count 1 (1 client), {} of count 10 ({CLIENTS} clients)",
        args.calls, args.calls
    );
    println!();
    println!(
        "{:<20} {:>10} {:>10} {:>10} {:>12} {:>14} {:>18}",
        "cluster", "p50 ms", "p90 ms", "p99 ms", "first ms", "count 10 t/s", "server CPU ms/task"
    );
    for (name, f) in [("big", &big), ("small", &small)] {
        println!(
            "{:<20} {:>10.3} {:>10.3} {:>10.3} {:>12.1} {:>14.0} {:>18.3}",
            name,
            ms(f.p50),
            ms(f.p90),
            ms(f.p99),
            ms(f.first),
            f.tasks_per_s,
            f.server_cpu_ms_per_task
        );
    }
    let overhead = ms(big.p50) - ms(small.p50);
    println!();
    println!(
        "{:<44} {:>12} {:>8}",
        "target (from the issue)", "measured", ""
    );
    println!(
        "{:<44} {:>9.3} ms {:>8}",
        format!(
            "placement overhead per call at {} instances <= 0.3 ms",
            args.instances
        ),
        overhead,
        if overhead <= 0.3 { "met" } else { "MISSED" }
    );
    println!(
        "{:<44} {:>10.0}/s {:>8}",
        "RunTask count 10 >= 10,000 tasks placed/s",
        big.tasks_per_s,
        if big.tasks_per_s >= 10_000.0 {
            "met"
        } else {
            "MISSED"
        }
    );
    Ok(())
}
