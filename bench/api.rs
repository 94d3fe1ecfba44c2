//! API benchmark: a small load generator for Berth's ECS JSON 1.1 API.
//!
//! `cargo bench --bench api` starts `berth server` on a free port with a fresh
//! data directory (unless `--endpoint-url URL` points at a running server),
//! seeds a cluster and a task definition family, then measures four
//! operations, each with one client and with 16 concurrent clients. Every
//! request is SigV4-signed individually and goes over its client's own
//! keep-alive HTTP/1.1 connection.
//!
//! Flags (after `--`): `--endpoint-url URL`, `--durability full|normal`
//! (passed to the server it starts), `--seconds N` (length of each concurrent
//! run, default 3), `--quick` (0.5 s per run, for CI smoke tests). Unknown
//! arguments, such as the `--bench` that cargo adds, are ignored.

use std::net::TcpListener as StdTcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use berth::wire::sigv4::Signer;
use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
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
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .with_context(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "--endpoint-url" => args.endpoint_url = Some(value("--endpoint-url")?),
            "--durability" => {
                let v = value("--durability")?;
                if v != "full" && v != "normal" {
                    bail!("--durability must be full or normal, not {v:?}");
                }
                args.durability = Some(v);
            }
            "--seconds" => {
                let v = value("--seconds")?;
                args.seconds =
                    v.parse().ok().filter(|s: &f64| *s > 0.0).with_context(|| {
                        format!("--seconds must be a positive number, not {v:?}")
                    })?;
            }
            "--quick" => args.quick = true,
            _ => {} // e.g. the `--bench` cargo passes
        }
    }
    if args.quick {
        args.seconds = 0.5;
    }
    Ok(args)
}

/// Where to connect and what to put in the `host` header.
#[derive(Clone)]
struct Endpoint {
    addr: String,
    host: String,
}

fn parse_endpoint(raw: &str) -> anyhow::Result<Endpoint> {
    let url = url::Url::parse(raw).with_context(|| format!("bad --endpoint-url {raw:?}"))?;
    if url.scheme() != "http" {
        bail!("only http:// endpoints are supported, not {raw:?}");
    }
    let host = url.host_str().context("endpoint URL has no host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let host_header = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    Ok(Endpoint {
        addr: format!("{host}:{port}"),
        host: host_header,
    })
}

/// The server this benchmark started; killed when dropped.
struct ServerGuard {
    child: Child,
    _data_dir: tempfile::TempDir,
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn berth_binary() -> anyhow::Result<PathBuf> {
    // Cargo builds the crate's binaries (with the bench profile, i.e. into
    // target/release) before it runs a benchmark and tells us where.
    let built = PathBuf::from(env!("CARGO_BIN_EXE_berth"));
    if built.exists() {
        return Ok(built);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = manifest.join("target/release/berth");
    if !path.exists() {
        eprintln!("building {} ...", path.display());
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--bin", "berth"])
            .current_dir(manifest)
            .status()
            .context("running cargo build")?;
        if !status.success() {
            bail!("cargo build --release --bin berth failed");
        }
    }
    Ok(path)
}

fn start_server(durability: Option<&str>) -> anyhow::Result<(ServerGuard, Endpoint)> {
    let bin = berth_binary()?;
    let port = StdTcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let data_dir = tempfile::Builder::new().prefix("berth-bench").tempdir()?;
    let log = std::fs::File::create(data_dir.path().join("server.log"))?;
    let mut cmd = Command::new(&bin);
    cmd.arg("server")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data_dir.path().join("data"));
    if let Some(d) = durability {
        cmd.arg("--durability").arg(d);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let endpoint = Endpoint {
        addr: format!("127.0.0.1:{port}"),
        host: format!("127.0.0.1:{port}"),
    };
    Ok((
        ServerGuard {
            child,
            _data_dir: data_dir,
        },
        endpoint,
    ))
}

async fn wait_healthy(ep: &Endpoint, server: &mut Option<ServerGuard>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(g) = server.as_mut() {
            if let Some(status) = g.child.try_wait()? {
                let log = std::fs::read_to_string(g._data_dir.path().join("server.log"))
                    .unwrap_or_default();
                bail!("berth server exited early ({status}):\n{log}");
            }
        }
        let ok = async {
            let mut conn = Conn::open(ep).await?;
            let req = hyper::Request::get("/_berth/health")
                .header("host", &ep.host)
                .body(Full::new(Bytes::new()))?;
            let resp = conn.sender.send_request(req).await?;
            anyhow::Ok(resp.status() == 200)
        }
        .await
        .unwrap_or(false);
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} did not answer GET /_berth/health within 30 s", ep.addr);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One client: a keep-alive HTTP/1.1 connection.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(ep: &Endpoint) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(&ep.addr)
            .await
            .with_context(|| format!("connecting to {}", ep.addr))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender })
    }
}

/// Signs and sends ECS calls over one connection.
struct Client {
    ep: Endpoint,
    signer: Signer,
    conn: Option<Conn>,
}

/// The outcome of one call: the status and body (or a transport error).
type CallResult = anyhow::Result<(u16, Bytes)>;

impl Client {
    fn new(ep: &Endpoint) -> Client {
        Client {
            ep: ep.clone(),
            signer: Signer {
                access_key: "test".into(),
                secret_key: "test".into(),
                region: "us-east-1".into(),
                service: "ecs".into(),
            },
            conn: None,
        }
    }

    fn build(&self, op: &str, body: &Bytes) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
        if op == BASELINE {
            return Ok(hyper::Request::get("/_berth/health")
                .header("host", self.ep.host.as_str())
                .body(Full::new(Bytes::new()))?);
        }
        let mut headers = vec![
            ("host".to_string(), self.ep.host.clone()),
            ("content-type".to_string(), CONTENT_TYPE.to_string()),
            ("x-amz-target".to_string(), format!("{TARGET_PREFIX}.{op}")),
        ];
        let signed = self
            .signer
            .sign("POST", "/", "", &headers, body, Utc::now());
        headers.extend(signed);
        let mut req = hyper::Request::post("/");
        for (n, v) in &headers {
            req = req.header(n.as_str(), v.as_str());
        }
        Ok(req
            .header("content-length", body.len())
            .body(Full::new(body.clone()))?)
    }

    /// Send one signed request; returns the status, body and the latency of
    /// the round trip (signing excluded).
    async fn call(&mut self, op: &str, body: &Bytes) -> (CallResult, Duration) {
        let req = match self.build(op, body) {
            Ok(r) => r,
            Err(e) => return (Err(e), Duration::ZERO),
        };
        let start = Instant::now();
        let result = self.round_trip(req).await;
        let elapsed = start.elapsed();
        if result.is_err() {
            self.conn = None; // reconnect next time
        }
        (result, elapsed)
    }

    async fn round_trip(&mut self, req: hyper::Request<Full<Bytes>>) -> CallResult {
        if self.conn.is_none() {
            self.conn = Some(Conn::open(&self.ep).await?);
        }
        let conn = self.conn.as_mut().expect("connected above");
        conn.sender.ready().await?;
        let resp = conn.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// A setup call that must succeed.
    async fn must(&mut self, op: &str, body: &serde_json::Value) -> anyhow::Result<()> {
        let body = Bytes::from(serde_json::to_vec(body)?);
        let (status, resp) = self.call(op, &body).await.0?;
        if status != 200 {
            bail!(
                "{op} failed with HTTP {status}: {}",
                String::from_utf8_lossy(&resp)
            );
        }
        Ok(())
    }
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
async fn client_loop(
    ep: Endpoint,
    op: &'static str,
    body: Bytes,
    deadline: Instant,
    max: usize,
) -> RunStats {
    let mut client = Client::new(&ep);
    let mut stats = RunStats::default();
    let mut sent = 0;
    while sent < max && Instant::now() < deadline {
        let (result, latency) = client.call(op, &body).await;
        stats.record(result, latency);
        sent += 1;
    }
    stats
}

struct Row {
    op: &'static str,
    clients: usize,
    requests: usize,
    errors: usize,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Nearest-rank percentile of an ascending vector.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn run(
    ep: &Endpoint,
    op: &'static str,
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
    if total == 0 || stats.errors * 2 > total {
        bail!(
            "{op} with {clients} client(s): {} of {total} requests failed; first error: {}",
            stats.errors,
            stats.first_error.as_deref().unwrap_or("none")
        );
    }
    if let Some(e) = &stats.first_error {
        eprintln!(
            "warning: {op} with {clients} client(s): {} error(s); first: {e}",
            stats.errors
        );
    }
    stats.latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(Row {
        op,
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
        .must("CreateCluster", &json!({"clusterName": "bench"}))
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
            .must("RegisterTaskDefinition", &taskdef("bench-web"))
            .await?;
    }
    drop(setup);

    let ops: [(&'static str, serde_json::Value); 5] = [
        (BASELINE, json!({})),
        ("DescribeClusters", json!({"clusters": ["bench"]})),
        ("RegisterTaskDefinition", taskdef("bench-reg")),
        (
            "DescribeTaskDefinition",
            json!({"taskDefinition": "bench-web"}),
        ),
        ("ListTaskDefinitions", json!({"familyPrefix": "bench-web"})),
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
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
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
            let (guard, ep) = start_server(args.durability.as_deref())?;
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
