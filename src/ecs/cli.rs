//! `berth services`: a cluster's services at a glance, and a wait that shows
//! a deployment converging. Both are plain ECS calls (`ListServices`,
//! `DescribeServices`) made as the aws CLI makes them.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::{block_on, render_table, Client};

#[derive(clap::Args, Debug)]
pub struct Target {
    /// The server (default: $AWS_ENDPOINT_URL, else http://127.0.0.1:4566).
    #[arg(long, global = true)]
    endpoint_url: Option<String>,
    /// Region (default: $AWS_REGION or $AWS_DEFAULT_REGION, else us-east-1).
    #[arg(long, global = true)]
    region: Option<String>,
    /// The cluster (default: `default`).
    #[arg(long, global = true, default_value = "default")]
    cluster: String,
}

#[derive(clap::Subcommand, Debug)]
pub enum ServicesAction {
    /// Each service: status, running/desired, pending, and its deployments.
    List,
    /// Wait until the services are stable (one deployment, COMPLETED, with
    /// every desired task running), printing each change as it comes.
    WaitStable {
        /// Service names or ARNs.
        #[arg(required = true)]
        services: Vec<String>,
        /// Give up after this many seconds (exit 2).
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
}

#[derive(clap::Args, Debug)]
pub struct ServicesCommand {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    action: ServicesAction,
}

const ECS: &str = "AmazonEC2ContainerServiceV20141113";

async fn ecs(c: &Client, op: &str, body: Value) -> anyhow::Result<Value> {
    Ok(c.call(&format!("{ECS}.{op}"), &body).await?)
}

/// One line of a service's state: what `list` shows and `wait-stable`
/// prints whenever it changes.
fn summary(s: &Value) -> Vec<String> {
    let n = |k: &str| s[k].as_i64().unwrap_or(0);
    let deployments: Vec<String> = s["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let td = d["taskDefinition"].as_str().unwrap_or_default();
            format!(
                "{} {} {} {}/{}{}",
                d["status"].as_str().unwrap_or_default(),
                td.rsplit('/').next().unwrap_or(td),
                d["rolloutState"].as_str().unwrap_or_default(),
                d["runningCount"].as_i64().unwrap_or(0),
                d["desiredCount"].as_i64().unwrap_or(0),
                match d["failedTasks"].as_i64().unwrap_or(0) {
                    0 => String::new(),
                    f => format!(" ({f} failed)"),
                }
            )
        })
        .collect();
    vec![
        s["serviceName"].as_str().unwrap_or_default().to_string(),
        s["status"].as_str().unwrap_or_default().to_string(),
        format!("{}/{}", n("runningCount"), n("desiredCount")),
        n("pendingCount").to_string(),
        deployments.join("; "),
    ]
}

fn stable(s: &Value) -> bool {
    let deps = s["deployments"].as_array().map(Vec::len).unwrap_or(0);
    deps == 1
        && s["runningCount"] == s["desiredCount"]
        && s["pendingCount"] == 0
        && s["deployments"][0]["rolloutState"] == "COMPLETED"
}

async fn run_async(cmd: ServicesCommand) -> anyhow::Result<i32> {
    let t = &cmd.target;
    let c = Client::from_env(t.endpoint_url.as_deref(), t.region.as_deref())?;
    match cmd.action {
        ServicesAction::List => {
            let mut arns = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut body = json!({"cluster": t.cluster});
                if let Some(tk) = &token {
                    body["nextToken"] = json!(tk);
                }
                let out = ecs(&c, "ListServices", body).await?;
                arns.extend(
                    out["serviceArns"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_string),
                );
                token = out["nextToken"].as_str().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            let mut rows = Vec::new();
            for chunk in arns.chunks(10) {
                let out = ecs(
                    &c,
                    "DescribeServices",
                    json!({"cluster": t.cluster, "services": chunk}),
                )
                .await?;
                rows.extend(
                    out["services"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(summary),
                );
            }
            let header = ["SERVICE", "STATUS", "RUNNING", "PENDING", "DEPLOYMENTS"];
            print!("{}", render_table(&header, &rows, 2));
            Ok(0)
        }
        ServicesAction::WaitStable { services, timeout } => {
            let deadline = Instant::now() + Duration::from_secs(timeout);
            let mut last: Vec<Option<Vec<String>>> = vec![None; services.len()];
            let mut seen_events: Vec<Option<String>> = vec![None; services.len()];
            let started = Instant::now();
            loop {
                let out = ecs(
                    &c,
                    "DescribeServices",
                    json!({"cluster": t.cluster, "services": services}),
                )
                .await?;
                if let Some(f) = out["failures"].as_array().and_then(|f| f.first()) {
                    anyhow::bail!(
                        "{}: {}",
                        f["arn"].as_str().unwrap_or_default(),
                        f["reason"].as_str().unwrap_or_default()
                    );
                }
                let all: Vec<Value> = out["services"].as_array().cloned().unwrap_or_default();
                for (i, s) in all.iter().enumerate() {
                    let line = summary(s);
                    if last[i].as_ref() != Some(&line) {
                        println!(
                            "[{:>6.1}s] {} {}  running {}  pending {}  {}",
                            started.elapsed().as_secs_f64(),
                            line[0],
                            line[1],
                            line[2],
                            line[3],
                            line[4]
                        );
                        last[i] = Some(line);
                    }
                    // The newest events, once each.
                    let newest = s["events"][0]["id"].as_str().map(str::to_string);
                    if newest != seen_events[i] {
                        let mut fresh = Vec::new();
                        for e in s["events"].as_array().into_iter().flatten() {
                            if e["id"].as_str().map(str::to_string) == seen_events[i] {
                                break;
                            }
                            fresh.push(e["message"].as_str().unwrap_or_default().to_string());
                            if seen_events[i].is_none() {
                                break; // only the newest before the wait began
                            }
                        }
                        for m in fresh.iter().rev() {
                            println!("          {m}");
                        }
                        seen_events[i] = newest;
                    }
                }
                if all.iter().all(stable) {
                    println!("stable after {:.1}s", started.elapsed().as_secs_f64());
                    return Ok(0);
                }
                if Instant::now() > deadline {
                    eprintln!("berth: not stable after {timeout}s");
                    return Ok(2);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// `berth services …`; the process exit code.
pub fn run(cmd: ServicesCommand) -> anyhow::Result<i32> {
    block_on(run_async(cmd))?
}
