//! Load balancer benchmark: Berth's data plane (`berth::elb::proxy`)
//! next to nginx proxying the same backend, in the same run.
//!
//! * **Backend**: an HTTP/1.1 keep-alive server in this process on
//!   127.0.0.1, answering every request `200` with a 13-byte body.
//! * **Berth**: a `DataPlane` on a Tokio runtime of its own (one worker
//!   thread per core, as `berth server` runs it), serving a table with one
//!   listener on 127.0.0.1 whose default rule forwards to one round-robin
//!   target group, the backend its one healthy target.
//! * **nginx** (Debian's `nginx-light` or `nginx`, installed with apt-get
//!   when not found): a child process with a generated configuration in a
//!   temporary directory: `daemon off`, `master_process on`,
//!   `worker_processes auto` (one worker per core; `--nginx-workers`
//!   changes it), no access log; an upstream with `keepalive 64`,
//!   `proxy_http_version 1.1` and `Connection ""`, and the `Host` and
//!   `X-Forwarded-For/Proto/Port` headers passed on as Berth passes them.
//!   Keep-alive connections are not closed after a number of requests on
//!   either side (nginx's default closes them after 1,000), since Berth
//!   never does. It is stopped at the end, also when the run fails.
//! * **Load generator** (in this process, on the backend's runtime): C
//!   keep-alive HTTP/1.1 connections, each sending `GET /` back to back.
//!   After a warm-up, every request sent and answered within the next D
//!   seconds is counted and its latency recorded; a response other than the
//!   backend's `200` and its body counts as an error.
//!
//! For each C (default 1 and 64): requests per second of each proxy (the
//! ratio Berth / nginx, target ≥ 0.9×) and p50 / p99 latency (the ratio of
//! the p99s, Berth / nginx, target ≤ 1.2×). The runs alternate, Berth then
//! nginx, for each C and each round, so drift over the run hits both alike;
//! the figures of a C are over all its rounds. The load generator, the
//! backend and the proxy measured share the machine's cores: the figures
//! are of the three together, not of a proxy alone.
//!
//! **Rolling deployment** (with `--deployment`; needs Docker): `berth
//! server` started on a free port, a load balancer with an HTTP listener on
//! port 80 forwarding to an `ip` target group (health check `/health` every
//! 5 s, deregistration delay 5 s), and an ECS service of 10 FARGATE tasks
//! of the test image registered in it (minimumHealthyPercent 100,
//! maximumPercent 200). Once its 10 targets are healthy, a steady 200
//! requests per second (`--rate`) go to the listener over keep-alive
//! connections, sent on schedule whether or not earlier ones have been
//! answered; UpdateService moves the service to a new revision, and the
//! load goes on until the deployment is COMPLETED, every answer comes from
//! the new revision and the old targets have had their deregistration delay.
//! The figure: requests lost, i.e. not answered `200` by a task within 10 s
//! (target 0).
//!
//! Flags (after `--`): `--seconds D` (default 5), `--warmup S` (1),
//! `--rounds N` (1), `--connections LIST` (`1,64`), `--nginx-workers N`
//! (`auto`), `--deployment` (also the rolling deployment), `--rate N`
//! (200), `--only-deployment` (the rolling deployment alone).

mod common;

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

use berth::elb::proxy::DataPlane;
use berth::elb::routes::{
    Action, Algorithm, Forward, GroupRoutes, Health, ListenerRoutes, RuleRoutes, Table,
    TargetRoutes,
};
use common::{ms, percentile, Conn, Endpoint};

/// What the backend answers every request with.
const BODY: &[u8] = b"Hello, world!";

struct Args {
    seconds: u64,
    warmup: u64,
    rounds: usize,
    connections: Vec<usize>,
    nginx_workers: String,
    proxy: bool,
    deployment: bool,
    rate: u32,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        seconds: 5,
        warmup: 1,
        rounds: 1,
        connections: vec![1, 64],
        nginx_workers: "auto".into(),
        proxy: true,
        deployment: false,
        rate: 200,
    };
    common::for_each_arg(|flag, value| {
        match flag {
            "--seconds" => a.seconds = common::positive(flag, &value()?)?,
            "--warmup" => {
                let v = value()?;
                a.warmup = v
                    .parse()
                    .with_context(|| format!("--warmup must be a number of seconds, not {v:?}"))?;
            }
            "--rounds" => a.rounds = common::positive(flag, &value()?)?,
            "--connections" => {
                a.connections = value()?
                    .split(',')
                    .map(|c| common::positive(flag, c.trim()))
                    .collect::<anyhow::Result<_>>()?;
            }
            "--nginx-workers" => {
                let v = value()?;
                if v != "auto" {
                    common::positive::<usize>(flag, &v)?;
                }
                a.nginx_workers = v;
            }
            "--deployment" => a.deployment = true,
            "--only-deployment" => {
                a.deployment = true;
                a.proxy = false;
            }
            "--rate" => a.rate = common::positive(flag, &value()?)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(a)
}

/// A port on 127.0.0.1 nothing listens on.
fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(StdTcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint {
        addr: addr.to_string(),
        host: addr.to_string(),
    }
}

/// The backend: every request on every connection gets `200` and [`BODY`].
async fn backend(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Berth's data plane with one listener on `listen` forwarding everything
/// to `target`.
async fn berth_proxy(listen: SocketAddr, target: SocketAddr) -> anyhow::Result<Arc<DataPlane>> {
    let group = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/bench/0";
    let lb = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/bench/0";
    let table = Table {
        listeners: [(
            listen,
            ListenerRoutes {
                listener_arn: format!("{lb}/listener"),
                load_balancer_arn: lb.into(),
                protocol: "HTTP".into(),
                idle_timeout_secs: 60,
                rules: vec![RuleRoutes {
                    rule_arn: "default".into(),
                    conditions: vec![],
                    action: Action::Forward(Forward {
                        groups: vec![(group.into(), 1)],
                        group_stickiness_secs: None,
                    }),
                }],
            },
        )]
        .into(),
        groups: [(
            group.to_string(),
            GroupRoutes {
                arn: group.into(),
                algorithm: Algorithm::RoundRobin,
                stickiness_secs: None,
                slow_start_secs: 0,
                targets: vec![TargetRoutes {
                    addr: target,
                    health: Health::Healthy,
                    healthy_since_ms: None,
                }],
            },
        )]
        .into(),
    };
    let dp = DataPlane::new(Arc::new(|| chrono::Utc::now().timestamp_millis()));
    let failed = dp.apply(table).await;
    if !failed.is_empty() {
        bail!("the listener could not be bound: {failed:?}");
    }
    Ok(dp)
}

/// The nginx binary: on PATH or in /usr/sbin, else installed with apt-get.
fn nginx_binary() -> anyhow::Result<String> {
    let found = || {
        ["nginx", "/usr/sbin/nginx"].into_iter().find(|bin| {
            Command::new(bin)
                .arg("-v")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    };
    if let Some(bin) = found() {
        return Ok(bin.to_string());
    }
    eprintln!("nginx not found; installing it with apt-get ...");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let install = || apt(&["install", "-y", "nginx-light"]) || apt(&["install", "-y", "nginx"]);
    let installed = install() || (apt(&["update"]) && install());
    if !installed {
        bail!(
            "nginx is needed as the baseline and could not be installed \
             (apt-get install -y nginx-light failed); install nginx and run again"
        );
    }
    found()
        .map(str::to_string)
        .context("nginx was installed but is not on PATH nor in /usr/sbin")
}

/// nginx as a child process, with its configuration and files in a
/// temporary directory; stopped when dropped.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    fn start(
        bin: &str,
        listen: SocketAddr,
        backend: SocketAddr,
        workers: &str,
    ) -> anyhow::Result<Nginx> {
        let dir = tempfile::Builder::new()
            .prefix("berth-bench-nginx")
            .tempdir()?;
        // Workers may run as another user (nginx's `user` when started by
        // root): they must reach their files here.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        }
        let d = dir.path().display();
        let conf = format!(
            r#"daemon off;
master_process on;
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000000;
    keepalive_timeout 60s;
    upstream backend {{
        server {backend};
        keepalive 64;
        keepalive_requests 1000000000;
        keepalive_timeout 60s;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Port $server_port;
        }}
    }}
}}
"#
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        let mut nginx = Nginx { child, dir };
        nginx.wait_listening(listen)?;
        Ok(nginx)
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Wait (up to 10 s) until nginx accepts connections on `listen`.
    fn wait_listening(&mut self, listen: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("nginx exited ({status}):\n{}", self.error_log());
            }
            if std::net::TcpStream::connect(listen).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "nginx did not listen on {listen} within 10 s:\n{}",
                    self.error_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nginx {
    /// SIGTERM (a fast shutdown: the master stops its workers, then
    /// itself); SIGKILL if it has not exited within 5 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one connection of the load generator saw in the window.
#[derive(Default)]
struct Sample {
    latencies: Vec<Duration>,
    errors: u64,
}

/// `conns` connections sending requests back to back; what was sent and
/// answered between `warmup` from now and `seconds` after that.
async fn load(
    ep: &Endpoint,
    conns: usize,
    warmup: Duration,
    seconds: Duration,
) -> anyhow::Result<Sample> {
    let start = Instant::now() + warmup;
    let end = start + seconds;
    let tasks: Vec<_> = (0..conns)
        .map(|_| tokio::spawn(one_connection(ep.clone(), start, end)))
        .collect();
    let mut all = Sample::default();
    for t in tasks {
        let s = t.await?;
        all.latencies.extend(s.latencies);
        all.errors += s.errors;
    }
    Ok(all)
}

async fn one_connection(ep: Endpoint, start: Instant, end: Instant) -> Sample {
    let mut sample = Sample::default();
    let mut conn: Option<Conn> = None;
    loop {
        let sent = Instant::now();
        if sent >= end {
            return sample;
        }
        let outcome = async {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => conn.insert(Conn::open(&ep).await?),
            };
            c.sender.ready().await?;
            let req = Request::get("/")
                .header("host", ep.host.as_str())
                .body(Full::new(Bytes::new()))?;
            let resp = c.sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok(status == 200 && body == BODY)
        }
        .await;
        let done = Instant::now();
        let counted = sent >= start && done <= end;
        match outcome {
            Ok(true) if counted => sample.latencies.push(done - sent),
            Ok(true) => {}
            Ok(false) => sample.errors += counted as u64,
            Err(_) => {
                sample.errors += counted as u64;
                conn = None;
                // Not a busy loop against a proxy that refuses.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Proxy {
    Berth,
    Nginx,
}

/// Every run of one proxy at one C, pooled.
#[derive(Default)]
struct Pooled {
    latencies: Vec<Duration>,
    errors: u64,
    seconds: f64,
}

impl Pooled {
    fn run(s: Sample, seconds: f64) -> Pooled {
        Pooled {
            latencies: s.latencies,
            errors: s.errors,
            seconds,
        }
    }

    fn add(&mut self, other: Pooled) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.seconds += other.seconds;
    }

    fn per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.seconds
    }

    fn p(&mut self, p: f64) -> f64 {
        self.latencies.sort_unstable();
        ms(percentile(&self.latencies, p))
    }
}

fn thousands(n: f64) -> String {
    let s = format!("{n:.0}");
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

fn proxy_vs_nginx(a: &Args) -> anyhow::Result<()> {
    let nginx_bin = nginx_binary()?;
    // The backend and the load generator; Berth's proxy on a runtime of
    // its own, as in `berth server`.
    let env = Runtime::new()?;
    let berth_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("berth-proxy")
        .build()?;

    let backend_listener = env.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let backend_addr = backend_listener.local_addr()?;
    env.spawn(backend(backend_listener));

    let berth_addr = free_addr()?;
    let dp = berth_rt.block_on(berth_proxy(berth_addr, backend_addr))?;
    let nginx_addr = free_addr()?;
    let nginx = Nginx::start(&nginx_bin, nginx_addr, backend_addr, &a.nginx_workers)?;

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let nginx_version = Command::new(&nginx_bin)
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_default();
    println!("berth load balancer benchmark: proxy vs nginx");
    println!(
        "backend:    127.0.0.1:{} (in-process, 200 with a {}-byte body)",
        backend_addr.port(),
        BODY.len()
    );
    println!("berth:      {berth_addr} (DataPlane, Tokio multi-thread runtime, {cores} workers)");
    println!(
        "nginx:      {nginx_addr} ({nginx_version}, pid {}, worker_processes {}, upstream keepalive 64)",
        nginx.pid(),
        a.nginx_workers
    );
    println!(
        "runs:       {} s each after {} s of warm-up, {} round(s), Berth and nginx alternating",
        a.seconds, a.warmup, a.rounds
    );
    println!(
        "machine:    {cores} cores, shared by the load generator, the backend and the proxy measured"
    );
    println!();

    let warmup = Duration::from_secs(a.warmup);
    let seconds = Duration::from_secs(a.seconds);
    let mut pooled: Vec<[Pooled; 2]> = a.connections.iter().map(|_| Default::default()).collect();
    for round in 1..=a.rounds {
        for (i, &c) in a.connections.iter().enumerate() {
            for proxy in [Proxy::Berth, Proxy::Nginx] {
                let (name, addr) = match proxy {
                    Proxy::Berth => ("berth", berth_addr),
                    Proxy::Nginx => ("nginx", nginx_addr),
                };
                let s = env.block_on(load(&endpoint(addr), c, warmup, seconds))?;
                let mut one = Pooled::run(s, seconds.as_secs_f64());
                println!(
                    "round {round}  C={c:<3} {name}: {:>9} req/s  p50 {:.3} ms  p99 {:.3} ms  errors {}",
                    thousands(one.per_sec()),
                    one.p(50.0),
                    one.p(99.0),
                    one.errors
                );
                pooled[i][proxy as usize].add(one);
            }
        }
    }
    drop(nginx);
    berth_rt.block_on(dp.shutdown());

    println!();
    println!(
        "{:>5} {:>12} {:>12} {:>15} {:>20} {:>20} {:>17} {:>8}",
        "C",
        "berth req/s",
        "nginx req/s",
        "ratio (≥0.9×)",
        "berth p50/p99 ms",
        "nginx p50/p99 ms",
        "p99 ratio (≤1.2×)",
        "errors"
    );
    for (i, &c) in a.connections.iter().enumerate() {
        let [b, n] = &mut pooled[i];
        let ratio = b.per_sec() / n.per_sec();
        let p99_ratio = b.p(99.0) / n.p(99.0);
        println!(
            "{c:>5} {:>12} {:>12} {:>7.2}× {:>6} {:>20} {:>20} {:>9.2}× {:>6} {:>8}",
            thousands(b.per_sec()),
            thousands(n.per_sec()),
            ratio,
            mark(ratio >= 0.9),
            format!("{:.3} / {:.3}", b.p(50.0), b.p(99.0)),
            format!("{:.3} / {:.3}", n.p(50.0), n.p(99.0)),
            p99_ratio,
            mark(p99_ratio <= 1.2),
            format!("{}/{}", b.errors, n.errors),
        );
    }
    println!(
        "\nratio = berth / nginx; errors = berth/nginx requests not answered 200 with the backend's body.\n\
         The load generator, the backend and the proxy share the machine's {cores} cores."
    );
    Ok(())
}

const ELB_VERSION: &str = "2015-12-01";
const ELB_SERVICE: &str = "elasticloadbalancing";
const EXEC_ROLE: &str = "arn:aws:iam::000000000000:role/ecsTaskExecutionRole";
/// How long a request of the steady load may wait for its answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const DESIRED: i64 = 10;

/// The text of every `<tag>` element of an XML response.
fn xml_values<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

fn xml_value(xml: &str, tag: &str) -> anyhow::Result<String> {
    xml_values(xml, tag)
        .first()
        .map(|v| v.to_string())
        .with_context(|| format!("no <{tag}> in {xml}"))
}

fn task_definition(revision: &str) -> serde_json::Value {
    serde_json::json!({
        "family": "elb-bench", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512", "executionRoleArn": EXEC_ROLE,
        "containerDefinitions": [{
            "name": "web", "image": "berth-test/testapp:latest",
            "command": ["berth-testapp", "serve", "--port", "8080"],
            "portMappings": [{"containerPort": 8080}],
            "environment": [{"name": "TESTAPP_NAME", "value": format!("rev-{revision}")}]}]})
}

async fn describe_service(c: &mut common::Client) -> anyhow::Result<serde_json::Value> {
    let out = c
        .ecs(
            "DescribeServices",
            &serde_json::json!({"cluster": "elb-bench", "services": ["web"]}),
        )
        .await?;
    Ok(out["services"][0].clone())
}

fn steady(s: &serde_json::Value, task_definition: &serde_json::Value) -> bool {
    s["deployments"].as_array().is_some_and(|d| d.len() == 1)
        && s["deployments"][0]["rolloutState"] == "COMPLETED"
        && s["deployments"][0]["taskDefinition"] == *task_definition
        && s["runningCount"] == DESIRED
        && s["pendingCount"] == 0
}

async fn healthy_targets(c: &mut common::Client, tg: &str) -> anyhow::Result<usize> {
    let xml = c
        .query(
            ELB_SERVICE,
            ELB_VERSION,
            "DescribeTargetHealth",
            &[("TargetGroupArn", tg.to_string())],
        )
        .await?;
    Ok(xml_values(&xml, "State")
        .iter()
        .filter(|s| **s == "healthy")
        .count())
}

/// One request of the steady load: when it was sent (since the load
/// began) and the revision that answered, or why it was lost.
struct Answer {
    sent: Duration,
    latency: Duration,
    outcome: Result<String, String>,
}

/// A request sent on a keep-alive connection of `pool` (a new one when
/// none is free); the connection goes back once it has answered.
async fn steady_request(
    ep: Endpoint,
    pool: Arc<std::sync::Mutex<Vec<Conn>>>,
    began: Instant,
) -> Answer {
    let t0 = Instant::now();
    let attempt = async {
        let free = pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match free {
            Some(c) => c,
            None => Conn::open(&ep).await?,
        };
        conn.sender.ready().await?;
        let req = Request::get("/")
            .header("host", ep.host.as_str())
            .body(Full::new(Bytes::new()))?;
        let resp = conn.sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        let body = String::from_utf8_lossy(&body).into_owned();
        pool.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
        if status != 200 {
            bail!("HTTP {status}");
        }
        body.split_whitespace()
            .find_map(|w| w.strip_prefix("name="))
            .map(str::to_string)
            .with_context(|| format!("not the test app's answer: {body:?}"))
    };
    let outcome = match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
        Ok(Ok(name)) => Ok(name),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
    };
    Answer {
        sent: t0 - began,
        latency: t0.elapsed(),
        outcome,
    }
}

async fn rolling_deployment(a: &Args) -> anyhow::Result<()> {
    let status = Command::new("tests/images/build").status()?;
    if !status.success() {
        bail!("tests/images/build failed");
    }
    let (server, ep) = common::start_server(Some("normal"), &[])?;
    let mut guard = Some(server);
    common::wait_healthy(&ep, &mut guard).await?;
    let mut c = common::Client::new(&ep);
    let result = deploy_under_load(a, &mut c).await;
    // Whatever happened, the service's tasks are stopped before the server.
    let _ = c
        .ecs(
            "DeleteService",
            &serde_json::json!({"cluster": "elb-bench", "service": "web", "force": true}),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match describe_service(&mut c).await {
            Ok(s) if s["status"] != "INACTIVE" || s["runningCount"] != 0 => {}
            _ => break,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(guard);
    result
}

async fn deploy_under_load(a: &Args, c: &mut common::Client) -> anyhow::Result<()> {
    use serde_json::json;
    c.ecs("CreateCluster", &json!({"clusterName": "elb-bench"}))
        .await?;
    let q = |k: &str, v: &str| (k.to_string(), v.to_string());
    async fn query(
        c: &mut common::Client,
        action: &'static str,
        params: Vec<(String, String)>,
    ) -> anyhow::Result<String> {
        let params: Vec<(&str, String)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        c.query(ELB_SERVICE, ELB_VERSION, action, &params).await
    }
    let lb = query(
        c,
        "CreateLoadBalancer",
        vec![
            q("Name", "elb-bench"),
            q("Subnets.member.1", "subnet-aaaa1111"),
            q("Subnets.member.2", "subnet-bbbb2222"),
        ],
    )
    .await?;
    let lb_arn = xml_value(&lb, "LoadBalancerArn")?;
    let address = xml_value(&lb, "IpAddress")?;
    let tg = query(
        c,
        "CreateTargetGroup",
        vec![
            q("Name", "elb-bench"),
            q("Protocol", "HTTP"),
            q("Port", "8080"),
            q("TargetType", "ip"),
            q("VpcId", "vpc-12345678"),
            q("HealthCheckPath", "/health"),
            q("HealthCheckIntervalSeconds", "5"),
            q("HealthCheckTimeoutSeconds", "2"),
            q("HealthyThresholdCount", "2"),
            q("UnhealthyThresholdCount", "2"),
        ],
    )
    .await?;
    let tg_arn = xml_value(&tg, "TargetGroupArn")?;
    query(
        c,
        "ModifyTargetGroupAttributes",
        vec![
            q("TargetGroupArn", &tg_arn),
            q(
                "Attributes.member.1.Key",
                "deregistration_delay.timeout_seconds",
            ),
            q("Attributes.member.1.Value", "5"),
        ],
    )
    .await?;
    query(
        c,
        "CreateListener",
        vec![
            q("LoadBalancerArn", &lb_arn),
            q("Protocol", "HTTP"),
            q("Port", "80"),
            q("DefaultActions.member.1.Type", "forward"),
            q("DefaultActions.member.1.TargetGroupArn", &tg_arn),
        ],
    )
    .await?;

    let td = |out: serde_json::Value| out["taskDefinition"]["taskDefinitionArn"].clone();
    let td1 = td(c
        .ecs("RegisterTaskDefinition", &task_definition("1"))
        .await?);
    let td2 = td(c
        .ecs("RegisterTaskDefinition", &task_definition("2"))
        .await?);
    c.ecs(
        "CreateService",
        &json!({"cluster": "elb-bench", "serviceName": "web", "taskDefinition": td1,
            "desiredCount": DESIRED, "launchType": "FARGATE",
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-aaaa1111"]}},
            "healthCheckGracePeriodSeconds": 10,
            "loadBalancers": [{"targetGroupArn": tg_arn, "containerName": "web", "containerPort": 8080}],
            "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200}}),
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let s = describe_service(c).await?;
        if steady(&s, &td1) && healthy_targets(c, &tg_arn).await? == DESIRED as usize {
            break;
        }
        if Instant::now() > deadline {
            bail!("the service did not have {DESIRED} healthy targets within 180 s: {s}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The steady load, on schedule, until told to stop.
    let lb_ep = endpoint(SocketAddr::new(address.parse()?, 80));
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let rate = a.rate;
    let load = tokio::spawn(async move {
        let pool = Arc::new(std::sync::Mutex::new(Vec::new()));
        let began = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
        let mut sent = Vec::new();
        loop {
            tokio::select! {
                _ = stop_rx.changed() => break,
                _ = tick.tick() => sent.push(tokio::spawn(
                    steady_request(lb_ep.clone(), pool.clone(), began))),
            }
        }
        let mut answers = Vec::new();
        for s in sent {
            answers.push(s.await?);
        }
        anyhow::Ok(answers)
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t0 = Instant::now();
    c.ecs(
        "UpdateService",
        &json!({"cluster": "elb-bench", "service": "web", "taskDefinition": td2}),
    )
    .await?;
    let deadline = t0 + Duration::from_secs(300);
    loop {
        let s = describe_service(c).await?;
        if steady(&s, &td2) {
            break;
        }
        if Instant::now() > deadline || load.is_finished() {
            let _ = stop_tx.send(true);
            bail!("the deployment did not complete within 300 s: {s}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let took = t0.elapsed();
    // The old targets' deregistration delay, and some more.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let _ = stop_tx.send(true);
    let answers = load.await??;

    let lost: Vec<&Answer> = answers.iter().filter(|r| r.outcome.is_err()).collect();
    let mut by_reason: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in &lost {
        *by_reason
            .entry(r.outcome.as_ref().err().map_or("", |e| e.as_str()))
            .or_default() += 1;
    }
    let revision = |name: &str| {
        answers
            .iter()
            .filter(|r| r.outcome.as_deref() == Ok(name))
            .count()
    };
    let mut latencies: Vec<Duration> = answers
        .iter()
        .filter(|r| r.outcome.is_ok())
        .map(|r| r.latency)
        .collect();
    latencies.sort_unstable();
    let last = answers.last().map_or(Duration::ZERO, |r| r.sent);
    println!(
        "Rolling deployment of {DESIRED} FARGATE tasks behind the load balancer, {} req/s (100% / 200%):",
        a.rate
    );
    println!(
        "  UpdateService → COMPLETED: {:.1} s; load for {:.1} s: {} requests, {} answered by rev-1, {} by rev-2",
        took.as_secs_f64(),
        last.as_secs_f64(),
        answers.len(),
        revision("rev-1"),
        revision("rev-2")
    );
    println!(
        "  answered: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default())
    );
    println!(
        "  requests lost: {} (target 0) {}",
        lost.len(),
        mark(lost.is_empty())
    );
    for (reason, n) in &by_reason {
        println!("    {n} × {reason}");
    }
    for r in lost.iter().take(5) {
        println!(
            "    e.g. sent at {:.3} s: {}",
            r.sent.as_secs_f64(),
            r.outcome.as_ref().err().map_or("", |e| e.as_str())
        );
    }
    if revision("rev-2") == 0 {
        bail!("no request was answered by the new revision");
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    common::exit_with((|| {
        let a = parse_args()?;
        if a.proxy {
            proxy_vs_nginx(&a)?;
        }
        if a.deployment {
            println!();
            Runtime::new()?.block_on(rolling_deployment(&a))?;
        }
        Ok(())
    })())
}
