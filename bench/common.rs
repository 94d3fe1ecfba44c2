//! What the benchmarks share: flag parsing, starting a `berth server` of
//! their own, and a SigV4-signing HTTP/1.1 client. Included by each benchmark
//! with `mod common;`; not every benchmark uses every item.

#![allow(dead_code)]

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

/// The `X-Amz-Target` prefix of ECS's JSON 1.1 operations.
pub const ECS_TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Walk the command line (`--name value` or `--name=value`), calling `f` with
/// each argument's name and a function that takes its value (the inline one,
/// else the next argument). Arguments `f` does not know, such as the
/// `--bench` that cargo adds, should be ignored by it.
pub fn for_each_arg(
    mut f: impl FnMut(&str, &mut dyn FnMut() -> anyhow::Result<String>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .with_context(|| format!("{name} needs a value"))
        };
        f(&name, &mut value)?;
    }
    Ok(())
}

/// A flag's value parsed as a number greater than zero.
pub fn positive<T>(name: &str, value: &str) -> anyhow::Result<T>
where
    T: std::str::FromStr + PartialOrd + Default,
{
    value
        .parse()
        .ok()
        .filter(|v: &T| *v > T::default())
        .with_context(|| format!("{name} must be a positive number, not {value:?}"))
}

/// Where to connect and what to put in the `host` header.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: String,
    pub host: String,
}

pub fn parse_endpoint(raw: &str) -> anyhow::Result<Endpoint> {
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

/// The server a benchmark started; killed when dropped.
pub struct ServerGuard {
    child: Child,
    data_dir: tempfile::TempDir,
}

impl ServerGuard {
    fn log_path(&self) -> PathBuf {
        self.data_dir.path().join("server.log")
    }

    /// The last `max` bytes of the server's log.
    pub fn log_tail(&self, max: usize) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let mut start = log.len().saturating_sub(max);
        while !log.is_char_boundary(start) {
            start += 1;
        }
        log[start..].to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error (with the server's log) if the server has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "berth server exited early ({status}):\n{}",
                self.log_tail(20_000)
            );
        }
        Ok(())
    }
}

impl Drop for ServerGuard {
    /// SIGTERM, so the server removes what it made ahead (its pool of
    /// network sandboxes); SIGKILL if it has not stopped within 20 s.
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn berth_binary() -> anyhow::Result<PathBuf> {
    // Another build to compare with (e.g. an earlier commit's).
    if let Ok(other) = std::env::var("BERTH_BIN") {
        return Ok(PathBuf::from(other));
    }
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

/// Start `berth server` on a free port with a fresh data directory (removed
/// when the guard is dropped); its stderr goes to `server.log` there.
pub fn start_server(
    durability: Option<&str>,
    extra_args: &[&str],
) -> anyhow::Result<(ServerGuard, Endpoint)> {
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
    cmd.args(extra_args);
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
    Ok((ServerGuard { child, data_dir }, endpoint))
}

/// `GET /_berth/health`, unsigned.
pub fn health_request(ep: &Endpoint) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
    Ok(hyper::Request::get("/_berth/health")
        .header("host", ep.host.as_str())
        .body(Full::new(Bytes::new()))?)
}

/// Wait (up to 30 s) until the server answers its health route; fails early
/// if the server the benchmark started has exited.
pub async fn wait_healthy(ep: &Endpoint, server: &mut Option<ServerGuard>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(g) = server.as_mut() {
            g.check_running()?;
        }
        let ok = async {
            let mut conn = Conn::open(ep).await?;
            let resp = conn.sender.send_request(health_request(ep)?).await?;
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
pub struct Conn {
    pub sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(ep: &Endpoint) -> anyhow::Result<Conn> {
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

/// The outcome of one call: the status and body (or a transport error).
pub type CallResult = anyhow::Result<(u16, Bytes)>;

/// Signs and sends JSON 1.1 calls over one connection (opened on first use,
/// reopened after a transport error).
pub struct Client {
    ep: Endpoint,
    signer: Signer,
    conn: Option<Conn>,
}

impl Client {
    /// A client for ECS with the default credentials (`test`/`test`,
    /// us-east-1).
    pub fn new(ep: &Endpoint) -> Client {
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

    /// The same client signing with another access key (an IAM user's).
    pub fn with_keys(mut self, access_key: &str, secret_key: &str) -> Client {
        self.signer.access_key = access_key.to_string();
        self.signer.secret_key = secret_key.to_string();
        self
    }

    /// The same client signing for another service (`ssm`, `kms`, …).
    pub fn for_service(mut self, service: &str) -> Client {
        self.signer.service = service.to_string();
        self
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    /// A signed JSON 1.1 request for `{target_prefix}.{op}` with `body`.
    pub fn signed_request(
        &self,
        target_prefix: &str,
        op: &str,
        body: &Bytes,
    ) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
        let mut headers = vec![
            ("host".to_string(), self.ep.host.clone()),
            ("content-type".to_string(), CONTENT_TYPE.to_string()),
            ("x-amz-target".to_string(), format!("{target_prefix}.{op}")),
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

    /// An unsigned `GET path` (Berth's own routes: health, metrics).
    pub async fn get(&mut self, path: &str) -> CallResult {
        let req = hyper::Request::get(path)
            .header("host", self.ep.host.as_str())
            .body(Full::new(Bytes::new()))?;
        self.send(req).await
    }

    /// Send one request over this client's connection.
    pub async fn send(&mut self, req: hyper::Request<Full<Bytes>>) -> CallResult {
        let result = self.round_trip(req).await;
        if result.is_err() {
            self.conn = None; // reconnect next time
        }
        result
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

    /// Sign and send one JSON 1.1 call; returns its status and body.
    pub async fn call(
        &mut self,
        target_prefix: &str,
        op: &str,
        body: &serde_json::Value,
    ) -> CallResult {
        let body = Bytes::from(serde_json::to_vec(body)?);
        let req = self.signed_request(target_prefix, op, &body)?;
        self.send(req).await
    }

    /// A Query call (form-encoded `Action=…&Version=…`) to `service` (its
    /// SigV4 signing name) that must succeed; returns the XML response.
    pub async fn query(
        &mut self,
        service: &str,
        version: &str,
        action: &str,
        params: &[(&str, String)],
    ) -> anyhow::Result<String> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", action)
            .append_pair("Version", version);
        for (k, v) in params {
            form.append_pair(k, v);
        }
        let body = Bytes::from(form.finish());
        let mut headers = vec![
            ("host".to_string(), self.ep.host.clone()),
            (
                "content-type".to_string(),
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            ),
        ];
        let signer = Signer {
            service: service.to_string(),
            ..self.signer.clone()
        };
        headers.extend(signer.sign("POST", "/", "", &headers, &body, Utc::now()));
        let mut req = hyper::Request::post("/");
        for (n, v) in &headers {
            req = req.header(n.as_str(), v.as_str());
        }
        let req = req
            .header("content-length", body.len())
            .body(Full::new(body.clone()))?;
        let (status, resp) = self.send(req).await.with_context(|| action.to_string())?;
        let text = String::from_utf8_lossy(&resp).into_owned();
        if status != 200 {
            bail!("{action} failed with HTTP {status}: {text}");
        }
        Ok(text)
    }

    /// An ECS call that must succeed (HTTP 200); returns its parsed output.
    pub async fn ecs(
        &mut self,
        op: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let (status, resp) = self
            .call(ECS_TARGET_PREFIX, op, body)
            .await
            .with_context(|| op.to_string())?;
        if status != 200 {
            bail!(
                "{op} failed with HTTP {status}: {}",
                String::from_utf8_lossy(&resp)
            );
        }
        serde_json::from_slice(&resp).with_context(|| format!("{op}: response is not JSON"))
    }
}

/// Nearest-rank percentile of an ascending slice.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Run `main`, printing its error (with causes) and failing the process.
pub fn exit_with(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The `(sum, count)` of each series of a Prometheus histogram in a text
/// exposition, by the value of its one label: e.g. for
/// `berth_task_start_phase_seconds`, phase → (seconds, observations).
pub fn histogram_sums(text: &str, name: &str) -> std::collections::HashMap<String, (f64, f64)> {
    let mut out: std::collections::HashMap<String, (f64, f64)> = Default::default();
    for line in text.lines() {
        for (suffix, slot) in [("_sum{", 0), ("_count{", 1)] {
            let Some(rest) = line.strip_prefix(&format!("{name}{suffix}")) else {
                continue;
            };
            let Some((labels, value)) = rest.split_once("} ") else {
                continue;
            };
            let label = labels
                .split_once('=')
                .map(|(_, v)| v.trim_matches('"').to_string())
                .unwrap_or_default();
            let v: f64 = value.trim().parse().unwrap_or(0.0);
            let e = out.entry(label).or_default();
            if slot == 0 {
                e.0 = v;
            } else {
                e.1 = v;
            }
        }
    }
    out
}
