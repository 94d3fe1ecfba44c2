//! API benchmark: a small load generator for Berth's ECS JSON 1.1 API.
//!
//! `cargo bench --bench api` starts `berth server` on a free port with a fresh
//! data directory (unless `--endpoint-url URL` points at a running server),
//! seeds a cluster, a task definition family, two SSM parameters and an IAM
//! user holding ten managed policies of ten statements each, then measures
//! seven operations (four of ECS; DescribeClusters again signed by that
//! user, so authorised by evaluating its policies; Parameter Store's
//! GetParameter of a String and of a SecureString decrypted through KMS),
//! each with one client and with 16 concurrent clients. Every
//! request is SigV4-signed individually and goes over its client's own
//! keep-alive HTTP/1.1 connection.
//!
//! Flags (after `--`): `--endpoint-url URL`, `--durability full|normal`
//! (passed to the server it starts), `--seconds N` (length of each concurrent
//! run, default 3), `--quick` (0.5 s per run, for CI smoke tests). Unknown
//! arguments, such as the `--bench` that cargo adds, are ignored.

mod common;

use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;

use common::{
    for_each_arg, health_request, ms, parse_endpoint, percentile, positive, start_server,
    wait_healthy, CallResult, Client, Endpoint, ECS_TARGET_PREFIX,
};

const CONCURRENT_CLIENTS: usize = 16;
const SEQUENTIAL_MAX_REQUESTS: usize = 2000;
const SEED_REVISIONS: usize = 20;
/// The baseline: the server's unauthenticated health route, the same HTTP
/// stack with no signing, no validation and no store. Each operation's
/// throughput is reported as a ratio of it, measured in the same run.
const BASELINE: &str = "GET /_berth/health";

struct Args {
    endpoint_url: Option<String>,
    durability: Option<String>,
    seconds: f64,
    quick: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        endpoint_url: None,
        durability: None,
        seconds: 3.0,
        quick: false,
    };
    for_each_arg(|name, value| {
        match name {
            "--endpoint-url" => args.endpoint_url = Some(value()?),
            "--durability" => {
                let v = value()?;
                if v != "full" && v != "normal" {
                    bail!("--durability must be full or normal, not {v:?}");
                }
                args.durability = Some(v);
            }
            "--seconds" => args.seconds = positive("--seconds", &value()?)?,
            "--quick" => args.quick = true,
            _ => {} // e.g. the `--bench` cargo passes
        }
        Ok(())
    })?;
    if args.quick {
        args.seconds = 0.5;
    }
    Ok(args)
}

/// Send one request for `op` (signed, or the unsigned baseline); returns the
/// status and body, and the latency of the round trip (signing excluded).
async fn timed_call(client: &mut Client, op: &Op, body: &Bytes) -> (CallResult, Duration) {
    let req = if op.label == BASELINE {
        health_request(client.endpoint())
    } else {
        client.signed_request(op.target, op.name, body)
    };
    let req = match req {
        Ok(r) => r,
        Err(e) => return (Err(e), Duration::ZERO),
    };
    let start = Instant::now();
    let result = client.send(req).await;
    (result, start.elapsed())
}

/// The results of one measured run.
#[derive(Default)]
struct RunStats {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

impl RunStats {
    fn record(&mut self, result: CallResult, latency: Duration) {
        match result {
            Ok((200, _)) => self.latencies.push(latency),
            Ok((status, body)) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| {
                    format!("HTTP {status}: {}", String::from_utf8_lossy(&body))
                });
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }

    fn merge(&mut self, other: RunStats) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// One client calling `op` until `deadline` or `max` requests.
async fn client_loop(ep: Endpoint, op: Op, body: Bytes, deadline: Instant, max: usize) -> RunStats {
    let mut client = Client::new(&ep).for_service(op.service);
    if let Some((access, secret)) = op.keys {
        client = client.with_keys(access, secret);
    }
    let mut stats = RunStats::default();
    let mut sent = 0;
    while sent < max && Instant::now() < deadline {
        let (result, latency) = timed_call(&mut client, &op, &body).await;
        stats.record(result, latency);
        sent += 1;
    }
    stats
}

/// One measured operation: a label, the service's signing name and
/// target prefix, the operation.
#[derive(Clone, Copy)]
struct Op {
    label: &'static str,
    service: &'static str,
    target: &'static str,
    name: &'static str,
    /// Signed by these keys (an IAM user's) instead of the root's.
    keys: Option<(&'static str, &'static str)>,
}

impl Op {
    const fn ecs(name: &'static str) -> Op {
        Op {
            label: name,
            service: "ecs",
            target: ECS_TARGET_PREFIX,
            name,
            keys: None,
        }
    }
}

/// The IAM user the authorisation is measured with: ten customer managed
/// policies attached, ten statements each; only the last statement of the
/// last policy allows `ecs:DescribeClusters`, so every statement is
/// looked at. Returns its access key and secret.
async fn seed_user(ep: &Endpoint) -> anyhow::Result<(&'static str, &'static str)> {
    const IAM_VERSION: &str = "2010-05-08";
    let mut iam = Client::new(ep);
    let call = |action: &'static str, params: Vec<(&'static str, String)>| (action, params);
    let user = "bench-user".to_string();
    let mut steps = vec![call("CreateUser", vec![("UserName", user.clone())])];
    for p in 0..10 {
        let statements: Vec<serde_json::Value> = (0..10)
            .map(|s| {
                let last = p == 9 && s == 9;
                serde_json::json!({
                    "Sid": format!("S{p}x{s}"),
                    "Effect": "Allow",
                    "Action": if last { vec!["ecs:DescribeClusters".to_string()] }
                              else { vec![format!("ecs:Update{p}{s}*"), format!("logs:Get{s}*")] },
                    "Resource": if last { "arn:aws:ecs:*:*:cluster/bench*".to_string() }
                                else { format!("arn:aws:ecs:*:*:cluster/other-{p}-{s}") },
                    "Condition": {"StringEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}},
                })
            })
            .collect();
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
        steps.push(call(
            "CreatePolicy",
            vec![
                ("PolicyName", format!("bench-{p}")),
                ("PolicyDocument", doc.to_string()),
            ],
        ));
        steps.push(call(
            "AttachUserPolicy",
            vec![
                ("UserName", user.clone()),
                (
                    "PolicyArn",
                    format!("arn:aws:iam::000000000000:policy/bench-{p}"),
                ),
            ],
        ));
    }
    for (action, params) in steps {
        iam.query("iam", IAM_VERSION, action, &params).await?;
    }
    let xml = iam
        .query("iam", IAM_VERSION, "CreateAccessKey", &[("UserName", user)])
        .await?;
    let field = |name: &str| -> anyhow::Result<&'static str> {
        let open = format!("<{name}>");
        let start = xml.find(&open).map(|i| i + open.len());
        let end = xml.find(&format!("</{name}>"));
        match (start, end) {
            (Some(a), Some(b)) if a < b => Ok(Box::leak(xml[a..b].to_string().into_boxed_str())),
            _ => bail!("CreateAccessKey answered without {name}: {xml}"),
        }
    };
    Ok((field("AccessKeyId")?, field("SecretAccessKey")?))
}

const SSM_TARGET_PREFIX: &str = "AmazonSSM";

struct Row {
    op: &'static str,
    clients: usize,
    requests: usize,
    errors: usize,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn run(
    ep: &Endpoint,
    op: Op,
    body: &Bytes,
    clients: usize,
    duration: Duration,
    max_per_client: usize,
) -> anyhow::Result<Row> {
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            tokio::spawn(client_loop(
                ep.clone(),
                op,
                body.clone(),
                deadline,
                max_per_client,
            ))
        })
        .collect();
    let mut stats = RunStats::default();
    for t in tasks {
        stats.merge(t.await?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total = stats.latencies.len() + stats.errors;
    let label = op.label;
    if total == 0 || stats.errors * 2 > total {
        bail!(
            "{label} with {clients} client(s): {} of {total} requests failed; first error: {}",
            stats.errors,
            stats.first_error.as_deref().unwrap_or("none")
        );
    }
    if let Some(e) = &stats.first_error {
        eprintln!(
            "warning: {label} with {clients} client(s): {} error(s); first: {e}",
            stats.errors
        );
    }
    stats.latencies.sort_unstable();
    Ok(Row {
        op: label,
        clients,
        requests: total,
        errors: stats.errors,
        per_sec: total as f64 / elapsed,
        p50_ms: ms(percentile(&stats.latencies, 50.0)),
        p99_ms: ms(percentile(&stats.latencies, 99.0)),
    })
}

async fn bench(args: &Args, ep: &Endpoint) -> anyhow::Result<Vec<Row>> {
    use serde_json::json;

    let mut setup = Client::new(ep);
    setup
        .ecs("CreateCluster", &json!({"clusterName": "bench"}))
        .await?;
    let taskdef = |family: &str| {
        json!({
            "family": family,
            "requiresCompatibilities": ["EC2"],
            "containerDefinitions": [
                {"name": "web", "image": "nginx:latest", "memory": 128, "essential": true}
            ]
        })
    };
    for _ in 0..SEED_REVISIONS {
        setup
            .ecs("RegisterTaskDefinition", &taskdef("bench-web"))
            .await?;
    }
    drop(setup);
    let mut ssm = Client::new(ep).for_service("ssm");
    for (name, kind) in [
        ("/bench/plain", "String"),
        ("/bench/secret", "SecureString"),
    ] {
        let (status, body) = ssm
            .call(
                SSM_TARGET_PREFIX,
                "PutParameter",
                &json!({"Name": name, "Value": "postgres://app:pw@db:5432/app", "Type": kind, "Overwrite": true}),
            )
            .await?;
        if status != 200 {
            bail!(
                "PutParameter failed with HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
    drop(ssm);
    let get_parameter = |label| Op {
        label,
        service: "ssm",
        target: SSM_TARGET_PREFIX,
        name: "GetParameter",
        keys: None,
    };
    let user_keys = seed_user(ep).await?;

    let ops: [(Op, serde_json::Value); 8] = [
        (Op::ecs(BASELINE), json!({})),
        (Op::ecs("DescribeClusters"), json!({"clusters": ["bench"]})),
        (
            Op {
                label: "DescribeClusters user",
                keys: Some(user_keys),
                ..Op::ecs("DescribeClusters")
            },
            json!({"clusters": ["bench"]}),
        ),
        (Op::ecs("RegisterTaskDefinition"), taskdef("bench-reg")),
        (
            Op::ecs("DescribeTaskDefinition"),
            json!({"taskDefinition": "bench-web"}),
        ),
        (
            Op::ecs("ListTaskDefinitions"),
            json!({"familyPrefix": "bench-web"}),
        ),
        (
            get_parameter("GetParameter String"),
            json!({"Name": "/bench/plain"}),
        ),
        (
            get_parameter("GetParameter Secure"),
            json!({"Name": "/bench/secret", "WithDecryption": true}),
        ),
    ];
    let sequential = Duration::from_secs_f64(if args.quick { 0.5 } else { 3.0 });
    let concurrent = Duration::from_secs_f64(args.seconds);
    let mut rows = Vec::new();
    for (op, body) in ops {
        let body = Bytes::from(serde_json::to_vec(&body)?);
        rows.push(run(ep, op, &body, 1, sequential, SEQUENTIAL_MAX_REQUESTS).await?);
        rows.push(run(ep, op, &body, CONCURRENT_CLIENTS, concurrent, usize::MAX).await?);
    }
    Ok(rows)
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<24} {:>7} {:>9} {:>7} {:>10} {:>9} {:>9} {:>12}",
        "operation", "clients", "requests", "errors", "req/s", "p50 ms", "p99 ms", "vs baseline"
    );
    for r in rows {
        let baseline = rows
            .iter()
            .find(|b| b.op == BASELINE && b.clients == r.clients)
            .map_or(f64::NAN, |b| b.per_sec);
        println!(
            "{:<24} {:>7} {:>9} {:>7} {:>10.0} {:>9.3} {:>9.3} {:>11.2}x",
            r.op,
            r.clients,
            r.requests,
            r.errors,
            r.per_sec,
            r.p50_ms,
            r.p99_ms,
            r.per_sec / baseline
        );
    }
    println!("\nbaseline = {BASELINE}: the same HTTP server with no SigV4, validation or store.");
}

fn main() -> std::process::ExitCode {
    common::exit_with(real_main())
}

fn real_main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let (mut server, ep, durability) = match &args.endpoint_url {
        Some(url) => (
            None,
            parse_endpoint(url)?,
            format!(
                "{} (external server at {url})",
                args.durability
                    .as_deref()
                    .unwrap_or("as configured on the server")
            ),
        ),
        None => {
            let (guard, ep) = start_server(args.durability.as_deref(), &[])?;
            let durability = match &args.durability {
                Some(d) => d.clone(),
                None => "full (server default)".to_string(),
            };
            (Some(guard), ep, durability)
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let rows = rt.block_on(async {
        wait_healthy(&ep, &mut server).await?;
        bench(&args, &ep).await
    })?;
    drop(rt);
    drop(server);

    println!("berth API benchmark");
    println!("endpoint:   http://{}", ep.host);
    println!("durability: {durability}");
    println!(
        "runs:       1 client up to {SEQUENTIAL_MAX_REQUESTS} requests or {} s; {CONCURRENT_CLIENTS} clients for {} s",
        if args.quick { 0.5 } else { 3.0 },
        args.seconds
    );
    println!();
    print_table(&rows);
    Ok(())
}
