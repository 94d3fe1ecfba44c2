//! Task-start benchmark: how long Berth takes to bring FARGATE tasks to
//! RUNNING on Docker, next to the same container started with `docker run`.
//!
//! `cargo bench --bench tasks` builds the test images (`tests/images/build`),
//! starts `berth server` on a free port with a fresh data directory, creates a
//! cluster and registers a FARGATE task definition running
//! `berth-test/busybox:latest` with `sleep 3600`, then measures:
//!
//! 1. Sequential latency, N times: RunTask (count 1), then DescribeTasks every
//!    10 ms until the task is RUNNING (the figure: RunTask sent → RUNNING
//!    seen); then StopTask and wait for STOPPED, so each run starts from the
//!    same state.
//! 2. The baseline, N times, alternating with the Berth runs:
//!    `docker run -d --rm --network berth-tasks berth-test/busybox:latest
//!    sleep 3600`, timed until the command returns (the container has
//!    started), then `docker rm -f` (untimed).
//! 3. A burst: several RunTask calls of count 10 sent at once; the time until
//!    every task is RUNNING (DescribeTasks in batches of 100), then StopTask
//!    for all of them and the time until every one is STOPPED.
//!
//! One untimed warm-up of each kind runs first (it creates the task network
//! and imports the sandbox image); its figures are printed apart.
//!
//! It prints the figures next to the targets and fails only on errors, never
//! on a missed target.
//!
//! With `--launch-type ec2` the same runs use the EC2 launch type instead: two
//! local m5.2xlarge container instances (Berth's `AddInstances`), a `bridge`
//! task definition with one container (64 MiB), placed by RunTask EC2; the
//! baseline is the same single container.
//!
//! `--load N` times each sequential run while N other tasks start (RunTask
//! calls of up to 10 sent just before it), and each baseline run while N
//! other `docker run -d` start; the load is stopped and removed between
//! runs, untimed.
//!
//! Where a task's start spends its time is read from the server's
//! `GET /_berth/metrics` before and after the sequential runs and printed
//! by phase (per task: pickup, prepare, sandbox, image, create, start, the
//! saves, and the total).
//!
//! Flags (after `--`): `--tasks N` (sequential runs, default 30), `--quick`
//! (10 runs and a burst of 2 × 10 tasks), `--durability full|normal` (passed
//! to the server), `--no-metering` (the server does not freeze each task's
//! usage when it stops, to compare with metering on). Unknown arguments, such as cargo's `--bench`, are ignored.
//!
//! Each Berth server sweeps only its own containers, so other servers on the
//! same Docker Engine do not break a run; the benchmark warns that their load
//! disturbs the figures.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use common::{
    for_each_arg, ms, percentile, positive, start_server, wait_healthy, Client, Endpoint,
};

const CLUSTER: &str = "bench-tasks";
const FAMILY: &str = "bench-sleep";
const IMAGE: &str = "berth-test/busybox:latest";
/// The Docker network Berth gives FARGATE tasks their addresses on.
const TASK_NETWORK: &str = "berth-tasks";
/// `sleep` runs as PID 1 and so ignores SIGTERM; with ECS's default
/// `stopTimeout` (30 s) every StopTask would wait that long for SIGKILL.
const STOP_TIMEOUT_S: u64 = 2;
const SEQUENTIAL_POLL: Duration = Duration::from_millis(10);
const BURST_POLL: Duration = Duration::from_millis(50);
const BURST_COUNT: usize = 10;
const START_TIMEOUT: Duration = Duration::from_secs(120);
const BURST_TIMEOUT: Duration = Duration::from_secs(600);
/// DescribeTasks takes at most this many tasks.
const DESCRIBE_BATCH: usize = 100;
/// Whether this run measures the EC2 launch type (`--launch-type ec2`).
static EC2: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn ec2() -> bool {
    EC2.load(std::sync::atomic::Ordering::Relaxed)
}

/// Concurrent clients sending the burst's StopTask calls.
const STOP_CLIENTS: usize = 10;

/// The targets.
const TARGET_P50_RATIO: f64 = 1.5;
const TARGET_P50: Duration = Duration::from_secs(1);
const TARGET_BURST_TASKS: usize = 100;
const TARGET_BURST: Duration = Duration::from_secs(30);

struct Args {
    tasks: usize,
    burst_calls: usize,
    quick: bool,
    durability: Option<String>,
    no_metering: bool,
    /// Other task starts (and, for the baseline, `docker run`s) under way
    /// while each sequential run is timed.
    load: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        tasks: 30,
        burst_calls: 10,
        quick: false,
        durability: None,
        no_metering: false,
        load: 0,
    };
    let mut tasks = None;
    for_each_arg(|name, value| {
        match name {
            "--tasks" => tasks = Some(positive("--tasks", &value()?)?),
            "--quick" => args.quick = true,
            "--no-metering" => args.no_metering = true,
            "--load" => args.load = value()?.parse().context("--load takes a number")?,
            "--launch-type" => match value()?.to_ascii_lowercase().as_str() {
                "ec2" => EC2.store(true, std::sync::atomic::Ordering::Relaxed),
                "fargate" => {}
                other => bail!("--launch-type must be fargate or ec2, not {other:?}"),
            },
            "--durability" => {
                let v = value()?;
                if v != "full" && v != "normal" {
                    bail!("--durability must be full or normal, not {v:?}");
                }
                args.durability = Some(v);
            }
            _ => {} // e.g. the `--bench` cargo passes
        }
        Ok(())
    })?;
    if args.quick {
        args.tasks = 10;
        args.burst_calls = 2;
    }
    if let Some(n) = tasks {
        args.tasks = n;
    }
    Ok(args)
}

/// Run a command and return its stdout; fails with its stderr.
fn run_cmd(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn docker(args: &[&str]) -> anyhow::Result<String> {
    run_cmd(Command::new("docker").args(args))
}

/// Build (or confirm) the test images.
fn build_images() -> anyhow::Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/build");
    eprintln!("running {} ...", script.display());
    let out = run_cmd(&mut Command::new(&script))?;
    for line in out.lines() {
        eprintln!("  {line}");
    }
    Ok(())
}

/// Managed containers on the Docker daemon: (id, task ARN).
fn managed_containers() -> anyhow::Result<Vec<(String, String)>> {
    let out = docker(&[
        "ps",
        "-a",
        "--filter",
        "label=berth.managed=true",
        "--format",
        "{{.ID}}\t{{.Label \"berth.task\"}}",
    ])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(id, task)| (id.to_string(), task.to_string()))
        .collect())
}

/// The pids of `berth server` processes running on this host (Linux: read
/// from /proc; elsewhere none are found).
fn other_berth_servers() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let mut argv = cmdline.split(|b| *b == 0);
            let exe = Path::new(std::str::from_utf8(argv.next()?).ok()?);
            let is_server = exe.file_name()? == "berth" && argv.next()? == b"server".as_slice();
            is_server.then_some(pid)
        })
        .collect()
}

/// Every task ARN the benchmark has started, for the cleanup after an error.
type Started = Arc<Mutex<HashSet<String>>>;

/// Remove the containers of the benchmark's tasks that are still there (none
/// after a successful run; the server must be stopped first). Returns how
/// many were removed.
fn remove_leftovers(started: &Started) -> anyhow::Result<usize> {
    let ours = started.lock().unwrap().clone();
    let ids: Vec<String> = managed_containers()?
        .into_iter()
        .filter(|(_, task)| ours.contains(task))
        .map(|(id, _)| id)
        .collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids.iter().map(String::as_str));
        docker(&args)?;
    }
    Ok(ids.len())
}

fn run_task_body(count: usize) -> Value {
    if ec2() {
        return json!({
            "cluster": CLUSTER,
            "taskDefinition": FAMILY,
            "count": count,
            "launchType": "EC2",
        });
    }
    json!({
        "cluster": CLUSTER,
        "taskDefinition": FAMILY,
        "count": count,
        "launchType": "FARGATE",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-0bench00"]}},
    })
}

/// RunTask; returns the new tasks' ARNs.
async fn run_tasks(
    client: &mut Client,
    count: usize,
    started: &Started,
) -> anyhow::Result<Vec<String>> {
    let out = client.ecs("RunTask", &run_task_body(count)).await?;
    if out["failures"].as_array().is_some_and(|f| !f.is_empty()) {
        bail!("RunTask reported failures: {}", out["failures"]);
    }
    let arns: Vec<String> = out["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
        .collect();
    started.lock().unwrap().extend(arns.iter().cloned());
    if arns.len() != count {
        bail!(
            "RunTask of count {count} returned {} task(s): {out}",
            arns.len()
        );
    }
    Ok(arns)
}

/// DescribeTasks for up to 100 ARNs, by ARN.
async fn describe(client: &mut Client, arns: &[String]) -> anyhow::Result<HashMap<String, Value>> {
    let out = client
        .ecs("DescribeTasks", &json!({"cluster": CLUSTER, "tasks": arns}))
        .await?;
    if out["failures"].as_array().is_some_and(|f| !f.is_empty()) {
        bail!("DescribeTasks reported failures: {}", out["failures"]);
    }
    Ok(out["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t["taskArn"].as_str()?.to_string(), t.clone())))
        .collect())
}

fn last_status(task: &Value) -> &str {
    task["lastStatus"].as_str().unwrap_or("")
}

fn stopped_unexpectedly(task: &Value) -> anyhow::Error {
    let reason = task["stoppedReason"].as_str().unwrap_or("no reason");
    let vanished = ["No such container", "gone", "non running container"];
    let hint = if vanished.iter().any(|v| reason.contains(v)) {
        "; a container vanished: another Berth server on this Docker daemon (e.g. a test run) \
         removes the managed containers its own store does not know"
    } else {
        ""
    };
    anyhow::anyhow!(
        "task {} stopped before it was RUNNING: {reason} ({}){hint}",
        task["taskArn"],
        task["stopCode"].as_str().unwrap_or("no stop code"),
    )
}

/// Poll until every task in `arns` has `status`; returns, per task, when it
/// was first seen so (from `since`), and the last description of each.
async fn wait_all(
    client: &mut Client,
    arns: &[String],
    status: &str,
    since: Instant,
    poll: Duration,
    timeout: Duration,
) -> anyhow::Result<(Vec<Duration>, HashMap<String, Value>)> {
    let mut seen: HashMap<String, Duration> = HashMap::new();
    let mut last: HashMap<String, Value> = HashMap::new();
    loop {
        let pending: Vec<String> = arns
            .iter()
            .filter(|a| !seen.contains_key(*a))
            .cloned()
            .collect();
        if pending.is_empty() {
            return Ok((arns.iter().map(|a| seen[a]).collect(), last));
        }
        for batch in pending.chunks(DESCRIBE_BATCH) {
            let tasks = describe(client, batch).await?;
            let now = since.elapsed();
            for (arn, task) in tasks {
                if last_status(&task) == status {
                    seen.insert(arn.clone(), now);
                } else if status == "RUNNING" && last_status(&task) == "STOPPED" {
                    return Err(stopped_unexpectedly(&task));
                }
                last.insert(arn, task);
            }
        }
        if since.elapsed() > timeout {
            let stuck: Vec<String> = arns
                .iter()
                .filter(|a| !seen.contains_key(*a))
                .map(|a| format!("{a} ({})", last.get(a).map_or("unknown", last_status)))
                .take(5)
                .collect();
            bail!(
                "{} of {} task(s) not {status} after {} s, e.g. {}",
                arns.len() - seen.len(),
                arns.len(),
                timeout.as_secs(),
                stuck.join(", ")
            );
        }
        tokio::time::sleep(poll).await;
    }
}

/// One sequential Berth run.
struct TaskRun {
    /// RunTask sent → RUNNING seen by DescribeTasks.
    start: Duration,
    /// `startedAt - createdAt` as the server records them.
    server_start: Option<Duration>,
    /// StopTask sent → STOPPED seen.
    stop: Duration,
}

async fn one_task(client: &mut Client, started: &Started) -> anyhow::Result<TaskRun> {
    let t0 = Instant::now();
    let arns = run_tasks(client, 1, started).await?;
    let (at, tasks) =
        wait_all(client, &arns, "RUNNING", t0, SEQUENTIAL_POLL, START_TIMEOUT).await?;
    let task = &tasks[&arns[0]];
    let server_start = match (task["createdAt"].as_f64(), task["startedAt"].as_f64()) {
        (Some(c), Some(s)) if s >= c => Some(Duration::from_secs_f64(s - c)),
        _ => None,
    };
    let t1 = Instant::now();
    client
        .ecs("StopTask", &json!({"cluster": CLUSTER, "task": arns[0]}))
        .await?;
    let (stop, _) = wait_all(client, &arns, "STOPPED", t1, SEQUENTIAL_POLL, START_TIMEOUT).await?;
    Ok(TaskRun {
        start: at[0],
        server_start,
        stop: stop[0],
    })
}

/// `docker run -d` of the baseline container; its id.
fn docker_run() -> anyhow::Result<String> {
    let out = docker(&[
        "run",
        "-d",
        "--rm",
        "--network",
        TASK_NETWORK,
        IMAGE,
        "sleep",
        "3600",
    ])?;
    let id = out.trim().to_string();
    if id.is_empty() {
        bail!("docker run -d printed no container id");
    }
    Ok(id)
}

/// One baseline run: the time `docker run -d` takes to return, while
/// `load` other `docker run -d` start.
fn one_docker_run(load: usize) -> anyhow::Result<Duration> {
    let others: Vec<_> = (0..load).map(|_| std::thread::spawn(docker_run)).collect();
    let t0 = Instant::now();
    let id = docker_run()?;
    let elapsed = t0.elapsed();
    let mut ids = vec![id];
    for o in others {
        ids.push(
            o.join()
                .map_err(|_| anyhow::anyhow!("docker run panicked"))??,
        );
    }
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    docker(&args)?;
    Ok(elapsed)
}

/// Start `load` tasks (RunTask calls of up to 10) in the background.
fn start_load(
    ep: &Endpoint,
    load: usize,
    started: &Started,
) -> Vec<tokio::task::JoinHandle<anyhow::Result<Vec<String>>>> {
    let mut left = load;
    let mut calls = Vec::new();
    while left > 0 {
        let n = left.min(10);
        left -= n;
        let (ep, started) = (ep.clone(), started.clone());
        calls.push(tokio::spawn(async move {
            let mut client = Client::new(&ep);
            run_tasks(&mut client, n, &started).await
        }));
    }
    calls
}

/// Wait for the load's tasks to run, then stop them and wait until stopped.
async fn end_load(
    client: &mut Client,
    calls: Vec<tokio::task::JoinHandle<anyhow::Result<Vec<String>>>>,
) -> anyhow::Result<()> {
    let mut arns = Vec::new();
    for c in calls {
        arns.extend(c.await??);
    }
    if arns.is_empty() {
        return Ok(());
    }
    let t0 = Instant::now();
    wait_all(client, &arns, "RUNNING", t0, BURST_POLL, BURST_TIMEOUT).await?;
    for arn in &arns {
        client
            .ecs("StopTask", &json!({"cluster": CLUSTER, "task": arn}))
            .await?;
    }
    wait_all(
        client,
        &arns,
        "STOPPED",
        Instant::now(),
        BURST_POLL,
        BURST_TIMEOUT,
    )
    .await?;
    Ok(())
}

/// The server's task-start phases so far: phase → (seconds, observations).
async fn phases(client: &mut Client) -> anyhow::Result<HashMap<String, (f64, f64)>> {
    let (status, body) = client.get("/_berth/metrics").await?;
    if status != 200 {
        // A build from before the server measured itself.
        return Ok(HashMap::new());
    }
    Ok(common::histogram_sums(
        &String::from_utf8_lossy(&body),
        "berth_task_start_phase_seconds",
    ))
}

struct Burst {
    calls: usize,
    tasks: usize,
    /// First RunTask sent → the last RunTask answered.
    accepted: Duration,
    /// First RunTask sent → every task RUNNING.
    running: Vec<Duration>,
    all_running: Duration,
    /// First StopTask sent → every task STOPPED.
    all_stopped: Duration,
}

async fn burst(ep: &Endpoint, calls: usize, started: &Started) -> anyhow::Result<Burst> {
    let t0 = Instant::now();
    let sends: Vec<_> = (0..calls)
        .map(|_| {
            let ep = ep.clone();
            let started = started.clone();
            tokio::spawn(async move {
                let mut client = Client::new(&ep);
                run_tasks(&mut client, BURST_COUNT, &started).await
            })
        })
        .collect();
    let mut arns = Vec::new();
    let mut first_error = None;
    for s in sends {
        match s.await? {
            Ok(a) => arns.extend(a),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    if let Some(e) = first_error {
        return Err(e.context("burst RunTask"));
    }
    let accepted = t0.elapsed();
    let mut client = Client::new(ep);
    let (mut running, _) =
        wait_all(&mut client, &arns, "RUNNING", t0, BURST_POLL, BURST_TIMEOUT).await?;
    running.sort_unstable();
    let all_running = *running.last().expect("at least one task");

    let t1 = Instant::now();
    let stops: Vec<_> = arns
        .chunks(arns.len().div_ceil(STOP_CLIENTS))
        .map(|chunk| {
            let ep = ep.clone();
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                let mut client = Client::new(&ep);
                for arn in chunk {
                    client
                        .ecs("StopTask", &json!({"cluster": CLUSTER, "task": arn}))
                        .await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for s in stops {
        s.await??;
    }
    let (stopped, _) =
        wait_all(&mut client, &arns, "STOPPED", t1, BURST_POLL, BURST_TIMEOUT).await?;
    Ok(Burst {
        calls,
        tasks: arns.len(),
        accepted,
        running,
        all_running,
        all_stopped: stopped.into_iter().max().unwrap_or_default(),
    })
}

struct Results {
    warmup_task: TaskRun,
    warmup_docker: Duration,
    berth: Vec<TaskRun>,
    docker: Vec<Duration>,
    burst: Burst,
    /// Per phase, (seconds, observations) over the sequential runs (and
    /// their load).
    phases: HashMap<String, (f64, f64)>,
    /// Tasks started over the sequential runs, load included.
    phase_tasks: usize,
}

async fn bench(args: &Args, ep: &Endpoint, started: &Started) -> anyhow::Result<Results> {
    let mut client = Client::new(ep);
    client
        .ecs("CreateCluster", &json!({"clusterName": CLUSTER}))
        .await?;
    if ec2() {
        let (status, body) = client
            .call(
                "Berth_20261123",
                "AddInstances",
                &json!({"cluster": CLUSTER, "instanceType": "m5.2xlarge", "count": 2}),
            )
            .await?;
        if status != 200 {
            bail!("AddInstances failed: {}", String::from_utf8_lossy(&body));
        }
        client
            .ecs(
                "RegisterTaskDefinition",
                &json!({
                    "family": FAMILY,
                    "networkMode": "bridge",
                    "requiresCompatibilities": ["EC2"],
                    "containerDefinitions": [{
                        "name": "main",
                        "image": IMAGE,
                        "memory": 64,
                        "command": ["sleep", "3600"],
                        "essential": true,
                        "stopTimeout": STOP_TIMEOUT_S,
                    }],
                }),
            )
            .await?;
    } else {
        client
            .ecs(
                "RegisterTaskDefinition",
                &json!({
                    "family": FAMILY,
                    "networkMode": "awsvpc",
                    "requiresCompatibilities": ["FARGATE"],
                    "cpu": "256",
                    "memory": "512",
                    "containerDefinitions": [{
                        "name": "main",
                        "image": IMAGE,
                        "command": ["sleep", "3600"],
                        "essential": true,
                        "stopTimeout": STOP_TIMEOUT_S,
                    }],
                }),
            )
            .await?;
    }

    eprintln!("warm-up: one task, one docker run");
    // The first task creates the task network the baseline joins.
    let warmup_task = one_task(&mut client, started).await?;
    let warmup_docker = one_docker_run(0)?;

    let before = phases(&mut client).await?;
    let mut berth = Vec::new();
    let mut docker = Vec::new();
    for i in 0..args.tasks {
        eprintln!("sequential run {}/{}", i + 1, args.tasks);
        let load = start_load(ep, args.load, started);
        berth.push(one_task(&mut client, started).await?);
        end_load(&mut client, load).await?;
        docker.push(one_docker_run(args.load)?);
    }
    let after = phases(&mut client).await?;
    let phases: HashMap<String, (f64, f64)> = after
        .into_iter()
        .map(|(k, (s, c))| {
            let (s0, c0) = before.get(&k).copied().unwrap_or_default();
            (k, (s - s0, c - c0))
        })
        .collect();
    let phase_tasks = args.tasks * (1 + args.load);

    eprintln!(
        "burst: {} RunTask calls of count {BURST_COUNT} at once",
        args.burst_calls
    );
    let burst = burst(ep, args.burst_calls, started).await?;
    Ok(Results {
        warmup_task,
        warmup_docker,
        berth,
        docker,
        burst,
        phases,
        phase_tasks,
    })
}

struct Summary {
    p50: Duration,
    p90: Duration,
    max: Duration,
}

fn summary(mut v: Vec<Duration>) -> Summary {
    v.sort_unstable();
    Summary {
        p50: percentile(&v, 50.0),
        p90: percentile(&v, 90.0),
        max: v.last().copied().unwrap_or_default(),
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn print_results(args: &Args, ep: &Endpoint, durability: &str, r: &Results) {
    let n = r.berth.len();
    let start = summary(r.berth.iter().map(|t| t.start).collect());
    let server: Vec<Duration> = r.berth.iter().filter_map(|t| t.server_start).collect();
    let server = (server.len() == n).then(|| summary(server));
    let stop = summary(r.berth.iter().map(|t| t.stop).collect());
    let docker = summary(r.docker.clone());
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();

    println!("berth task-start benchmark");
    println!("endpoint:    http://{}", ep.host);
    println!("durability:  {durability}");
    println!(
        "metering:    {}",
        if args.no_metering {
            "off (--no-metering)"
        } else {
            "on"
        }
    );
    if ec2() {
        println!(
            "task:        EC2, bridge, on 2 local m5.2xlarge instances; one container {IMAGE} `sleep 3600` (64 MiB), stopTimeout {STOP_TIMEOUT_S} s"
        );
        println!("             one container per task, on the instance's bridge network, as the baseline");
    } else {
        println!(
        "task:        FARGATE, awsvpc, cpu 256, memory 512; one container {IMAGE} `sleep 3600`, stopTimeout {STOP_TIMEOUT_S} s"
    );
        println!("             Berth starts two containers per task: the network sandbox (\"pause\") and the task's container");
    }
    println!(
        "baseline:    docker run -d --rm --network {TASK_NETWORK} {IMAGE} sleep 3600 (one container), timed until it returns"
    );
    println!(
        "runs:        {n} sequential of each, alternating (after one untimed warm-up of each); DescribeTasks every {} ms",
        SEQUENTIAL_POLL.as_millis()
    );
    if args.load > 0 {
        println!(
            "load:        each run timed while {} other tasks start (baseline: {} other docker run -d)",
            args.load, args.load
        );
    }
    println!();
    println!(
        "{:<44} {:>5} {:>9} {:>9} {:>9}",
        "sequential start (ms)", "runs", "p50", "p90", "max"
    );
    let row = |name: &str, s: &Summary| {
        println!(
            "{:<44} {:>5} {:>9.1} {:>9.1} {:>9.1}",
            name,
            n,
            ms(s.p50),
            ms(s.p90),
            ms(s.max)
        );
    };
    row("berth: RunTask -> RUNNING seen", &start);
    if let Some(s) = &server {
        row("berth: createdAt -> startedAt (server side)", s);
    }
    row("docker run -d", &docker);
    println!(
        "{:<44} {:>5} {:>8.2}x {:>8.2}x",
        "ratio berth / docker",
        "",
        ratio(start.p50, docker.p50),
        ratio(start.p90, docker.p90)
    );
    row("berth: StopTask -> STOPPED seen", &stop);
    println!(
        "warm-up (first of each, not in the figures): berth {:.1} ms to RUNNING, docker run {:.1} ms",
        ms(r.warmup_task.start),
        ms(r.warmup_docker)
    );

    println!();
    println!(
        "where a task's start goes (server side, per task, over the {} tasks the sequential runs started)",
        r.phase_tasks
    );
    println!("{:<44} {:>9} {:>9}", "phase", "ms/task", "calls");
    let per_task = |phase: &str| {
        r.phases.get(phase).map(|(s, c)| {
            (
                s * 1000.0 / r.phase_tasks.max(1) as f64,
                c / r.phase_tasks.max(1) as f64,
            )
        })
    };
    for (phase, what) in [
        ("pickup", "createdAt -> agent takes it up"),
        ("prepare", "address, network, image, cgroup"),
        ("sandbox", "network sandbox"),
        ("image", "image inspect (pull)"),
        ("create", "container create"),
        ("start", "container start"),
        ("save", "saves of what it observed"),
        ("total", "createdAt -> RUNNING saved"),
    ] {
        if let Some((ms_per_task, calls)) = per_task(phase) {
            println!(
                "{:<44} {:>9.1} {:>9.1}",
                format!("{phase}: {what}"),
                ms_per_task,
                calls
            );
        }
    }

    let b = &r.burst;
    let tasks_per_s = b.tasks as f64 / b.all_running.as_secs_f64();
    println!();
    println!(
        "burst: {} RunTask calls of count {BURST_COUNT} sent at once ({} tasks); DescribeTasks in batches of {DESCRIBE_BATCH} every {} ms",
        b.calls,
        b.tasks,
        BURST_POLL.as_millis()
    );
    println!("{:<44} {:>10}", "", "s");
    println!(
        "{:<44} {:>10.2}",
        "all RunTask calls answered",
        b.accepted.as_secs_f64()
    );
    println!(
        "{:<44} {:>10.2}",
        "first task RUNNING",
        b.running[0].as_secs_f64()
    );
    println!(
        "{:<44} {:>10.2}",
        "half the tasks RUNNING",
        percentile(&b.running, 50.0).as_secs_f64()
    );
    println!(
        "{:<44} {:>10.2}",
        "all tasks RUNNING",
        b.all_running.as_secs_f64()
    );
    println!("{:<44} {:>10.1}", "  = tasks/s", tasks_per_s);
    println!(
        "{:<44} {:>10.2}",
        "StopTask all -> all STOPPED",
        b.all_stopped.as_secs_f64()
    );

    println!();
    println!(
        "{:<44} {:>14} {:>8}",
        "target (from the issue)", "measured", ""
    );
    let p50_ratio = ratio(start.p50, docker.p50);
    println!(
        "{:<44} {:>13.2}x {:>8}",
        format!("p50 <= {TARGET_P50_RATIO}x docker run"),
        p50_ratio,
        verdict(p50_ratio <= TARGET_P50_RATIO)
    );
    println!(
        "{:<44} {:>11.1} ms {:>8}",
        format!("p50 < {} ms", TARGET_P50.as_millis()),
        ms(start.p50),
        verdict(start.p50 < TARGET_P50)
    );
    let burst_name = format!(
        "{TARGET_BURST_TASKS} tasks RUNNING < {} s",
        TARGET_BURST.as_secs()
    );
    if b.tasks == TARGET_BURST_TASKS {
        println!(
            "{:<44} {:>12.2} s {:>8}",
            burst_name,
            b.all_running.as_secs_f64(),
            verdict(b.all_running < TARGET_BURST)
        );
    } else {
        println!(
            "{:<44} {:>14} {:>8}",
            burst_name,
            format!("({} tasks)", b.tasks),
            "n/a"
        );
    }
    if args.quick {
        println!("\n--quick: fewer runs and a smaller burst; not comparable with the targets.");
    }
}

fn main() -> std::process::ExitCode {
    common::exit_with(real_main())
}

fn real_main() -> anyhow::Result<()> {
    let args = parse_args()?;
    docker(&["version", "--format", "{{.Server.Version}}"])
        .context("Docker Engine is needed (is dockerd running?)")?;
    build_images()?;
    // Each server sweeps only its own containers (their `berth.managed`
    // label is its owner id), so others do not break the run; their load
    // does disturb the figures.
    let others = other_berth_servers();
    if !others.is_empty() {
        eprintln!(
            "warning: other Berth servers are running (pid {}); their load disturbs the figures",
            others
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let foreign = managed_containers()?;
    if !foreign.is_empty() {
        eprintln!(
            "warning: {} Berth-managed container(s) of other servers are on this Docker daemon",
            foreign.len()
        );
    }

    let (guard, ep) = start_server(
        args.durability.as_deref(),
        if args.no_metering {
            &["--no-metering"]
        } else {
            &[]
        },
    )?;
    let mut server = Some(guard);
    let durability = args
        .durability
        .clone()
        .unwrap_or_else(|| "full (server default)".into());
    let started: Started = Arc::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        wait_healthy(&ep, &mut server).await?;
        bench(&args, &ep, &started).await
    });
    drop(rt);
    if result.is_err() {
        let ours = server.as_ref().map(|s| s.pid());
        if let Some(s) = &server {
            eprintln!("berth server log (tail):\n{}", s.log_tail(4000));
        }
        let others: Vec<String> = other_berth_servers()
            .into_iter()
            .filter(|p| Some(*p) != ours)
            .map(|p| p.to_string())
            .collect();
        if !others.is_empty() {
            eprintln!(
                "note: other Berth servers started during the benchmark (pid {}); their sweep \
                 removes this benchmark's containers. Run it again when they have finished.",
                others.join(", ")
            );
        }
    }
    drop(server);
    match remove_leftovers(&started) {
        Ok(0) => {}
        Ok(n) => eprintln!("removed {n} leftover container(s) of the benchmark's tasks"),
        Err(e) => eprintln!("warning: could not remove leftover containers: {e:#}"),
    }
    let results = result?;
    print_results(&args, &ep, &durability, &results);
    Ok(())
}
