//! Image registry benchmark: Berth's registry (the OCI distribution
//! protocol on its API port) next to Debian's `docker-registry` (the CNCF
//! distribution registry) on loopback, in the same run; and the lifecycle
//! policy engine over a repository of 10,000 images.
//!
//! * **Berth**: `berth server` on a free port with a fresh data directory
//!   (`--hosts-file none --sandbox-pool 0`: nothing of its own in Docker);
//!   repositories made with `CreateRepository` and the password of
//!   `GetAuthorizationToken` (SigV4-signed calls, `test`/`test`).
//! * **docker-registry** (Debian's package, installed with apt-get when not
//!   found; without it Berth is measured alone): a child process with a
//!   generated configuration in a temporary directory: filesystem storage
//!   there, `blobdescriptor: inmemory` cache (Debian's default
//!   configuration), no authentication, errors-only log. Stopped at the
//!   end, also when the run fails.
//!
//! Each round (`--rounds`, default 3), with a new repository name for
//! every push so no blob is already there, both registries in turn (the
//! order alternates from round to round):
//!
//! 1. **docker push / docker pull** (the real client; needs Docker): a
//!    fresh image of `--layers` (5) layers of random bytes (so compression
//!    gains nothing), `--size-mb` (200) MB in all, built `FROM scratch` with
//!    the classic builder (not timed), so it shares no layer with any other
//!    image. Timed: `docker push` to each registry; then the image is
//!    removed from Docker (every tag: its layers go with it) and
//!    `docker pull` from each registry is timed, the image removed again
//!    after each pull, so every pull downloads every layer (checked: a
//!    `Pull complete` line per layer). Docker's own work is in these
//!    figures: gzip of each layer on push, gunzip and extraction on pull,
//!    its default concurrency (5 uploads, 3 downloads). Logins use a
//!    temporary `DOCKER_CONFIG`, never the user's.
//! 2. **raw push / raw pull** (an HTTP/1.1 client in this process): the
//!    registry's own serving speed, without Docker's gzip and extraction.
//!    A fresh image of the same shape (random layers, a config, an OCI
//!    manifest) made in memory, its digests computed before the clock
//!    starts. Push: for each blob, `POST …/blobs/uploads/`, one `PATCH`
//!    with the whole blob, `PUT ?digest=`, 5 blobs at a time (Docker's
//!    default), then the manifest `PUT`. Pull: the manifest `GET`, then
//!    every blob `GET`, 3 at a time (Docker's default), bytes counted and
//!    discarded (not hashed).
//!
//! MB/s = the image's bytes (its config and layers, as the manifest gives
//! them; MB = 10^6 bytes) / seconds. The table gives the median of the
//! rounds and the ratio Berth / docker-registry (target ≥ 1×). Client,
//! Docker and both registries share the machine's cores.
//!
//! **Lifecycle** (in-process, no Docker): 10,000 `ImageFacts` (`--images`)
//! pushed over 60 days, a quarter each tagged `prod-N`, tagged `dev-N`,
//! untagged, and tagged twice `release-N`/`sha-N`; a policy of four rules
//! (prod: keep 100; `dev-*`: 30 days; untagged: 14 days; any: keep 5,000).
//! Timed: `lifecycle::evaluate` (best and median of `--eval-runs`, 20), and
//! `policies::enforce` on a store holding the same images (each a small
//! manifest of its own), the whole transaction with its deletes and its
//! commit (the server's default durability, `full`), a fresh repository
//! each of 3 runs.
//!
//! Flags (after `--`): `--rounds N` (3), `--size-mb M` (200), `--layers N`
//! (5), `--images N` (10,000), `--eval-runs N` (20), `--only-lifecycle`
//! (no registry, no Docker), `--no-lifecycle`.

mod common;

use std::collections::VecDeque;
use std::io::Write;
use std::net::TcpListener as StdTcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use rand::RngCore;
use serde_json::{json, Value};
use tokio::runtime::Runtime;

use berth::clock::SystemClock;
use berth::context::Ctx;
use berth::ecr::lifecycle::{self, ImageFacts};
use berth::ecr::names::digest_of;
use berth::ecr::shapes::{CreateRepositoryRequest, PutLifecyclePolicyRequest};
use berth::ecr::{images, layers, policies, repositories};
use berth::services::Services;
use berth::settings::Settings;
use berth::store::{Durability, Store};
use berth::wire::sigv4::Signer;
use common::{ms, Conn, Endpoint};

const MB: f64 = 1_000_000.0;
const ECR_TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";
/// Docker's defaults (`max-concurrent-uploads`, `max-concurrent-downloads`).
const PUSH_STREAMS: usize = 5;
const PULL_STREAMS: usize = 3;
const DAY_MS: i64 = 86_400_000;

struct Args {
    rounds: usize,
    size_mb: u64,
    layers: usize,
    images: usize,
    eval_runs: usize,
    registry: bool,
    lifecycle: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        rounds: 3,
        size_mb: 200,
        layers: 5,
        images: 10_000,
        eval_runs: 20,
        registry: true,
        lifecycle: true,
    };
    common::for_each_arg(|flag, value| {
        match flag {
            "--rounds" => a.rounds = common::positive(flag, &value()?)?,
            "--size-mb" => a.size_mb = common::positive(flag, &value()?)?,
            "--layers" => a.layers = common::positive(flag, &value()?)?,
            "--images" => a.images = common::positive(flag, &value()?)?,
            "--eval-runs" => a.eval_runs = common::positive(flag, &value()?)?,
            "--only-lifecycle" => a.registry = false,
            "--no-lifecycle" => a.lifecycle = false,
            _ => {}
        }
        Ok(())
    })?;
    Ok(a)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(StdTcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

// ----- the registries -----

/// A registry to push to and pull from.
#[derive(Clone)]
struct Target {
    label: &'static str,
    ep: Endpoint,
    /// `Authorization` of every registry request (Berth's `AWS:<token>`).
    auth: Option<String>,
    /// Repositories must be made with `CreateRepository` first.
    ecr: bool,
}

impl Target {
    /// `127.0.0.1:port`, the host part of its image references.
    fn host(&self) -> &str {
        &self.ep.host
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut r = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.ep.host.as_str());
        if let Some(a) = &self.auth {
            r = r.header("authorization", a.as_str());
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        Ok(r.body(Full::new(body))?)
    }

    /// Make repository `name` where the registry needs it made.
    async fn prepare(&self, name: &str) -> anyhow::Result<()> {
        if self.ecr {
            ecr_call(
                &self.ep,
                "CreateRepository",
                &json!({ "repositoryName": name }),
            )
            .await?;
        }
        Ok(())
    }
}

/// A SigV4-signed ECR call (JSON 1.1) that must succeed.
async fn ecr_call(ep: &Endpoint, op: &str, body: &Value) -> anyhow::Result<Value> {
    let body = Bytes::from(serde_json::to_vec(body)?);
    let signer = Signer {
        access_key: "test".into(),
        secret_key: "test".into(),
        region: "us-east-1".into(),
        service: "ecr".into(),
    };
    let mut headers = vec![
        ("host".to_string(), ep.host.clone()),
        ("content-type".to_string(), common::CONTENT_TYPE.to_string()),
        (
            "x-amz-target".to_string(),
            format!("{ECR_TARGET_PREFIX}.{op}"),
        ),
    ];
    headers.extend(signer.sign("POST", "/", "", &headers, &body, Utc::now()));
    let mut req = Request::post("/");
    for (n, v) in &headers {
        req = req.header(n.as_str(), v.as_str());
    }
    let req = req.body(Full::new(body))?;
    let mut conn = Conn::open(ep).await?;
    let resp = conn.sender.send_request(req).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    if status != 200 {
        bail!(
            "{op} failed with HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    serde_json::from_slice(&bytes).with_context(|| format!("{op}: response is not JSON"))
}

/// Debian's `docker-registry`, on PATH or in /usr/bin, else installed with
/// apt-get; `None` (and why) when it cannot be had.
fn registry_binary() -> Result<String, String> {
    let found = || {
        ["docker-registry", "/usr/bin/docker-registry"]
            .into_iter()
            .find(|bin| {
                Command::new(bin)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
    };
    if let Some(bin) = found() {
        return Ok(bin.to_string());
    }
    eprintln!("docker-registry not found; installing it with apt-get ...");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let install = || apt(&["install", "-y", "docker-registry"]);
    if !(install() || (apt(&["update"]) && install())) {
        return Err("apt-get install -y docker-registry failed".into());
    }
    found()
        .map(str::to_string)
        .ok_or_else(|| "docker-registry was installed but is not on PATH nor in /usr/bin".into())
}

/// `docker-registry` as a child process, its configuration and storage in
/// a temporary directory; stopped when dropped.
struct Distribution {
    child: Child,
    dir: tempfile::TempDir,
    ep: Endpoint,
}

impl Distribution {
    fn start(bin: &str) -> anyhow::Result<Distribution> {
        let dir = tempfile::Builder::new()
            .prefix("berth-bench-registry")
            .tempdir()?;
        let port = free_port()?;
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)?;
        let conf = format!(
            "version: 0.1\n\
             log:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  cache:\n    blobdescriptor: inmemory\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        let conf_path = dir.path().join("config.yml");
        std::fs::write(&conf_path, conf)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(bin)
            .arg("serve")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        let ep = Endpoint {
            addr: format!("127.0.0.1:{port}"),
            host: format!("127.0.0.1:{port}"),
        };
        let mut d = Distribution { child, dir, ep };
        d.wait_listening()?;
        Ok(d)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Wait (up to 10 s) until it accepts connections.
    fn wait_listening(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("docker-registry exited ({status}):\n{}", self.log());
            }
            if std::net::TcpStream::connect(&self.ep.addr).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "docker-registry did not listen on {} within 10 s:\n{}",
                    self.ep.addr,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Distribution {
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

// ----- the raw client -----

/// Send a request and read its whole answer.
async fn round_trip(
    conn: &mut Conn,
    req: Request<Full<Bytes>>,
) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
    conn.sender.ready().await?;
    let resp = conn.sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok((parts.status, parts.headers, body))
}

fn expect(
    what: &str,
    (status, headers, body): (StatusCode, HeaderMap, Bytes),
    want: StatusCode,
) -> anyhow::Result<HeaderMap> {
    if status != want {
        bail!(
            "{what}: HTTP {status} (expected {want}): {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(headers)
}

/// The path and query of an upload's `Location` (Berth's is relative,
/// distribution's absolute).
fn location(what: &str, headers: &HeaderMap) -> anyhow::Result<String> {
    let raw = headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .with_context(|| format!("{what}: no Location"))?;
    if raw.starts_with('/') {
        return Ok(raw.to_string());
    }
    let url = url::Url::parse(raw).with_context(|| format!("{what}: bad Location {raw:?}"))?;
    Ok(match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    })
}

/// One blob pushed as Docker pushes it: start, one PATCH, PUT ?digest=.
async fn push_blob(
    t: &Target,
    conn: &mut Conn,
    name: &str,
    digest: &str,
    data: Bytes,
) -> anyhow::Result<()> {
    let req = t.request(
        Method::POST,
        &format!("/v2/{name}/blobs/uploads/"),
        &[],
        Bytes::new(),
    )?;
    let h = expect(
        "start upload",
        round_trip(conn, req).await?,
        StatusCode::ACCEPTED,
    )?;
    let at = location("start upload", &h)?;
    let req = t.request(
        Method::PATCH,
        &at,
        &[("content-type", "application/octet-stream")],
        data,
    )?;
    let h = expect("PATCH", round_trip(conn, req).await?, StatusCode::ACCEPTED)?;
    let at = location("PATCH", &h)?;
    let sep = if at.contains('?') { '&' } else { '?' };
    let req = t.request(
        Method::PUT,
        &format!("{at}{sep}digest={digest}"),
        &[],
        Bytes::new(),
    )?;
    expect(
        "finish upload",
        round_trip(conn, req).await?,
        StatusCode::CREATED,
    )?;
    Ok(())
}

/// Run `jobs` on `streams` connections of their own, each taking the next
/// job when it is done with one.
async fn on_streams<J, F, Fut>(
    t: &Target,
    jobs: Vec<J>,
    streams: usize,
    work: F,
) -> anyhow::Result<u64>
where
    J: Send + 'static,
    F: Fn(Target, Conn, J) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<(Conn, u64)>> + Send,
{
    let queue = Arc::new(Mutex::new(jobs.into_iter().collect::<VecDeque<J>>()));
    let mut tasks = Vec::new();
    for _ in 0..streams {
        let (queue, t, work) = (queue.clone(), t.clone(), work.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&t.ep).await?;
            let mut total = 0;
            loop {
                let job = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some(job) = job else { break };
                let (c, n) = work(t.clone(), conn, job).await?;
                conn = c;
                total += n;
            }
            anyhow::Ok(total)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total)
}

/// An image made in memory: its blobs (config first) and manifest.
struct RawImage {
    blobs: Vec<(String, Bytes)>,
    manifest: Bytes,
}

impl RawImage {
    fn new(size: u64, layers: usize) -> RawImage {
        let mut rng = rand::thread_rng();
        let per = (size / layers as u64) as usize;
        let layer_blobs: Vec<(String, Bytes)> = (0..layers)
            .map(|_| {
                let mut v = vec![0u8; per];
                rng.fill_bytes(&mut v);
                (digest_of(&v), Bytes::from(v))
            })
            .collect();
        let config = json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Labels": {"bench": uuid::Uuid::new_v4().to_string()}},
            "rootfs": {"type": "layers", "diff_ids": layer_blobs.iter().map(|(d, _)| d).collect::<Vec<_>>()},
        });
        let config = Bytes::from(serde_json::to_vec(&config).expect("JSON"));
        let config_digest = digest_of(&config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config.len()},
            "layers": layer_blobs.iter().map(|(d, b)| json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": d, "size": b.len()})).collect::<Vec<_>>(),
        });
        let mut blobs = vec![(config_digest, config)];
        blobs.extend(layer_blobs);
        RawImage {
            blobs,
            manifest: Bytes::from(serde_json::to_vec(&manifest).expect("JSON")),
        }
    }

    fn bytes(&self) -> u64 {
        self.blobs.iter().map(|(_, b)| b.len() as u64).sum()
    }
}

/// Push `image` into `name` (blobs 5 at a time, then the manifest);
/// the seconds it took.
async fn raw_push(t: &Target, name: &str, image: &RawImage) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let name2 = name.to_string();
    on_streams(
        t,
        image.blobs.clone(),
        PUSH_STREAMS,
        move |t, mut conn, (digest, data): (String, Bytes)| {
            let name = name2.clone();
            async move {
                let n = data.len() as u64;
                push_blob(&t, &mut conn, &name, &digest, data).await?;
                Ok((conn, n))
            }
        },
    )
    .await?;
    let mut conn = Conn::open(&t.ep).await?;
    let req = t.request(
        Method::PUT,
        &format!("/v2/{name}/manifests/latest"),
        &[("content-type", OCI_MANIFEST)],
        image.manifest.clone(),
    )?;
    expect(
        "PUT manifest",
        round_trip(&mut conn, req).await?,
        StatusCode::CREATED,
    )?;
    Ok(t0.elapsed().as_secs_f64())
}

/// The blobs (digest, size; config first) of `name:latest`'s manifest.
async fn manifest_blobs(
    t: &Target,
    conn: &mut Conn,
    name: &str,
) -> anyhow::Result<Vec<(String, u64)>> {
    let req = t.request(
        Method::GET,
        &format!("/v2/{name}/manifests/latest"),
        &[("accept", MANIFEST_ACCEPT)],
        Bytes::new(),
    )?;
    let (status, _, body) = round_trip(conn, req).await?;
    if status != 200 {
        bail!(
            "GET manifest of {name} from {}: HTTP {status}: {}",
            t.label,
            String::from_utf8_lossy(&body)
        );
    }
    let m: Value = serde_json::from_slice(&body)?;
    let one = |d: &Value| -> anyhow::Result<(String, u64)> {
        Ok((
            d["digest"].as_str().context("a digest")?.to_string(),
            d["size"].as_u64().context("a size")?,
        ))
    };
    let mut out = vec![one(&m["config"])?];
    for l in m["layers"].as_array().context("an image manifest")? {
        out.push(one(l)?);
    }
    Ok(out)
}

/// Pull `name:latest` (manifest, then blobs 3 at a time, counted and
/// discarded): the seconds it took and the bytes of its blobs.
async fn raw_pull(t: &Target, name: &str) -> anyhow::Result<(f64, u64)> {
    let t0 = Instant::now();
    let mut conn = Conn::open(&t.ep).await?;
    let blobs = manifest_blobs(t, &mut conn, name).await?;
    let want: u64 = blobs.iter().map(|(_, s)| s).sum();
    let name2 = name.to_string();
    let got = on_streams(
        t,
        blobs,
        PULL_STREAMS,
        move |t, mut conn, (digest, size): (String, u64)| {
            let name = name2.clone();
            async move {
                let req = t.request(
                    Method::GET,
                    &format!("/v2/{name}/blobs/{digest}"),
                    &[],
                    Bytes::new(),
                )?;
                conn.sender.ready().await?;
                let resp = conn.sender.send_request(req).await?;
                if resp.status() != 200 {
                    bail!("GET blob {digest}: HTTP {}", resp.status());
                }
                let mut body = resp.into_body();
                let mut n = 0u64;
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame?.into_data() {
                        n += data.len() as u64;
                    }
                }
                if n != size {
                    bail!("GET blob {digest}: {n} bytes, not {size}");
                }
                Ok((conn, n))
            }
        },
    )
    .await?;
    if got != want {
        bail!("pulled {got} bytes, not {want}");
    }
    Ok((t0.elapsed().as_secs_f64(), got))
}

// ----- Docker -----

struct Docker {
    /// A `DOCKER_CONFIG` of our own (the logins of this run).
    config: tempfile::TempDir,
}

impl Docker {
    fn available() -> bool {
        Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg("--config").arg(self.config.path());
        c
    }

    /// Run `docker args…`: its stdout, or an error with its stderr.
    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("running docker")?;
        if !out.status.success() {
            bail!(
                "docker {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn login(&self, host: &str, password: &str) -> anyhow::Result<()> {
        let mut child = self
            .cmd()
            .args(["login", "--username", "AWS", "--password-stdin", host])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("docker login's stdin")?
            .write_all(password.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "docker login {host} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Remove an image and every tag of it (its layers go with it).
    fn remove(&self, id: &str) {
        let _ = self
            .cmd()
            .args(["rmi", "-f", id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    fn exists(&self, id: &str) -> bool {
        self.cmd()
            .args(["image", "inspect", id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// An image this run built (or pulled back); removed when dropped.
struct BuiltImage<'a> {
    docker: &'a Docker,
    id: String,
}

impl Drop for BuiltImage<'_> {
    fn drop(&mut self) {
        self.docker.remove(&self.id);
    }
}

/// Build a fresh image of `layers` layers of random bytes, `size` bytes in
/// all, `FROM scratch`, tagged `tag`: its id.
fn build_image<'a>(
    docker: &'a Docker,
    tag: &str,
    size: u64,
    layers: usize,
) -> anyhow::Result<BuiltImage<'a>> {
    let ctx = tempfile::Builder::new()
        .prefix("berth-bench-ecr-build")
        .tempdir()?;
    let per = (size / layers as u64) as usize;
    let mut dockerfile = String::from("FROM scratch\n");
    let mut rng = rand::thread_rng();
    let mut buf = vec![0u8; per];
    for i in 1..=layers {
        rng.fill_bytes(&mut buf);
        std::fs::write(ctx.path().join(format!("layer{i}")), &buf)?;
        dockerfile.push_str(&format!("COPY layer{i} /layer{i}\n"));
    }
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile)?;
    let out = docker
        .cmd()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", tag])
        .arg(ctx.path())
        .stdin(Stdio::null())
        .output()
        .context("running docker build")?;
    if !out.status.success() {
        bail!(
            "docker build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !id.starts_with("sha256:") {
        bail!("docker build -q printed {id:?}, not an image id");
    }
    Ok(BuiltImage { docker, id })
}

// ----- the registry comparison -----

struct Series {
    /// MB/s of each round, by target.
    by_target: Vec<Vec<f64>>,
}

impl Series {
    fn new(targets: usize) -> Series {
        Series {
            by_target: vec![Vec::new(); targets],
        }
    }
}

struct Figures {
    docker_push: Series,
    docker_pull: Series,
    raw_push: Series,
    raw_pull: Series,
}

fn rate(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / MB / secs
}

fn registries(a: &Args) -> anyhow::Result<()> {
    let rt = Runtime::new()?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let size = a.size_mb * 1_000_000;

    // Berth.
    let (server, berth_ep) =
        common::start_server(None, &["--hosts-file", "none", "--sandbox-pool", "0"])?;
    let mut guard = Some(server);
    rt.block_on(common::wait_healthy(&berth_ep, &mut guard))?;
    let token = rt.block_on(ecr_call(&berth_ep, "GetAuthorizationToken", &json!({})))?;
    let token = token["authorizationData"][0]["authorizationToken"]
        .as_str()
        .context("an authorization token")?
        .to_string();
    let decoded = base64::engine::general_purpose::STANDARD.decode(&token)?;
    let password = String::from_utf8(decoded)?
        .strip_prefix("AWS:")
        .context("a token of AWS:<password>")?
        .to_string();
    let mut targets = vec![Target {
        label: "berth",
        ep: berth_ep.clone(),
        auth: Some(format!("Basic {token}")),
        ecr: true,
    }];

    // docker-registry.
    let mut distribution = None;
    let mut registry_version = String::new();
    match registry_binary() {
        Ok(bin) => {
            registry_version = Command::new(&bin)
                .arg("--version")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            let d = Distribution::start(&bin)?;
            targets.push(Target {
                label: "docker-registry",
                ep: d.ep.clone(),
                auth: None,
                ecr: false,
            });
            distribution = Some(d);
        }
        Err(why) => {
            println!("docker-registry unavailable ({why}): measuring Berth alone");
        }
    }

    let docker = if Docker::available() {
        let d = Docker {
            config: tempfile::Builder::new()
                .prefix("berth-bench-docker-config")
                .tempdir()?,
        };
        d.login(berth_ep.host.as_str(), &password)?;
        Some(d)
    } else {
        println!("Docker unavailable: only the raw HTTP client is measured");
        None
    };

    println!("berth registry benchmark: push and pull vs docker-registry");
    println!(
        "berth:           {} (berth server, pid {}, --durability full)",
        berth_ep.addr,
        guard.as_ref().map_or(0, |g| g.pid())
    );
    if let Some(d) = &distribution {
        println!(
            "docker-registry: {} ({registry_version}, pid {}, filesystem storage, inmemory blobdescriptor cache)",
            d.ep.addr,
            d.child.id()
        );
    }
    println!(
        "image:           {} layers of random bytes, {} MB in all (MB = 10^6 bytes), a fresh one each round, a new repository each push",
        a.layers, a.size_mb
    );
    println!(
        "rounds:          {}, the registries' order alternating; {cores} cores shared by the client, Docker and both registries",
        a.rounds
    );
    println!();

    let n = targets.len();
    let mut f = Figures {
        docker_push: Series::new(n),
        docker_pull: Series::new(n),
        raw_push: Series::new(n),
        raw_pull: Series::new(n),
    };
    let run = std::process::id();
    for round in 1..=a.rounds {
        let order: Vec<usize> = if round % 2 == 1 {
            (0..n).collect()
        } else {
            (0..n).rev().collect()
        };
        if let Some(docker) = &docker {
            docker_round(a, &rt, docker, &targets, &order, round, run, size, &mut f)?;
        }
        // Raw HTTP: a fresh image in memory, the same bytes to each.
        let image = RawImage::new(size, a.layers);
        let bytes = image.bytes();
        for &i in &order {
            let t = &targets[i];
            let name = format!("raw-{run}-r{round}");
            rt.block_on(t.prepare(&name))?;
            let push = rt.block_on(raw_push(t, &name, &image))?;
            let (pull, got) = rt.block_on(raw_pull(t, &name))?;
            println!(
                "round {round}  raw HTTP     {:<16} push {:>7.1} MB/s ({:.2} s)   pull {:>7.1} MB/s ({:.2} s)",
                t.label,
                rate(bytes, push),
                push,
                rate(got, pull),
                pull
            );
            f.raw_push.by_target[i].push(rate(bytes, push));
            f.raw_pull.by_target[i].push(rate(got, pull));
        }
    }
    if let Some(mut g) = guard.take() {
        g.check_running()?;
    }
    drop(distribution);

    println!();
    let other = targets.get(1).map_or("-", |t| t.label);
    println!(
        "{:<30} {:>9} {:>16} {:>18} {:>20}",
        "median MB/s", "berth", other, "ratio of medians", "per-round ratio (≥1×)"
    );
    let rows = [
        ("docker push (real client)", &f.docker_push),
        ("docker pull (real client)", &f.docker_pull),
        ("raw push (HTTP, 5 streams)", &f.raw_push),
        ("raw pull (HTTP, 3 streams)", &f.raw_pull),
    ];
    for (label, s) in rows {
        if s.by_target[0].is_empty() {
            continue;
        }
        let b = median(&s.by_target[0]);
        match s.by_target.get(1) {
            Some(r) => {
                let paired: Vec<f64> = s.by_target[0].iter().zip(r).map(|(b, r)| b / r).collect();
                let paired = median(&paired);
                let r = median(r);
                println!(
                    "{label:<30} {b:>9.1} {r:>16.1} {:>17.2}× {:>12.2}× {:>6}",
                    b / r,
                    paired,
                    mark(paired >= 1.0)
                );
            }
            None => println!("{label:<30} {b:>9.1} {:>16} {:>18} {:>20}", "-", "-", "-"),
        }
    }
    println!(
        "\nratio of medians = median berth / median docker-registry over {} round(s); per-round ratio = the median\n\
         of each round's berth / docker-registry (the two measured back to back, so drift in the machine's load\n\
         cancels out). docker push and pull include Docker's gzip (push), gunzip and extraction (pull); the raw\n\
         client moves the bytes only.",
        a.rounds
    );
    Ok(())
}

/// One round of `docker push` and `docker pull` against every target.
#[allow(clippy::too_many_arguments)]
fn docker_round(
    a: &Args,
    rt: &Runtime,
    docker: &Docker,
    targets: &[Target],
    order: &[usize],
    round: usize,
    run: u32,
    size: u64,
    f: &mut Figures,
) -> anyhow::Result<()> {
    let local = format!("berth-bench-ecr/img:{run}-r{round}");
    let image = build_image(docker, &local, size, a.layers)?;
    let name = format!("docker-{run}-r{round}");
    let tags: Vec<String> = targets
        .iter()
        .map(|t| format!("{}/{name}:latest", t.host()))
        .collect();
    let mut bytes = vec![0u64; targets.len()];
    for &i in order {
        let t = &targets[i];
        rt.block_on(t.prepare(&name))?;
        docker.run(&["tag", &image.id, &tags[i]])?;
        let t0 = Instant::now();
        docker.run(&["push", &tags[i]])?;
        let secs = t0.elapsed().as_secs_f64();
        // What was pushed: the manifest's config and layers.
        bytes[i] = rt.block_on(async {
            let mut conn = Conn::open(&t.ep).await?;
            let blobs = manifest_blobs(t, &mut conn, &name).await?;
            anyhow::Ok(blobs.iter().map(|(_, s)| s).sum())
        })?;
        println!(
            "round {round}  docker push  {:<16} {:>7.1} MB/s ({:.2} s, {:.1} MB)",
            t.label,
            rate(bytes[i], secs),
            secs,
            bytes[i] as f64 / MB
        );
        f.docker_push.by_target[i].push(rate(bytes[i], secs));
    }
    // Every pull starts from nothing: the image and its layers removed.
    docker.remove(&image.id);
    for &i in order {
        let t = &targets[i];
        if docker.exists(&image.id) {
            bail!("image {} is still present before a pull", image.id);
        }
        let t0 = Instant::now();
        let out = docker.run(&["pull", &tags[i]])?;
        let secs = t0.elapsed().as_secs_f64();
        let complete = out.matches("Pull complete").count();
        docker.remove(&image.id);
        let note = if complete < a.layers {
            format!("  (only {complete} of {} layers downloaded)", a.layers)
        } else {
            String::new()
        };
        println!(
            "round {round}  docker pull  {:<16} {:>7.1} MB/s ({:.2} s){note}",
            t.label,
            rate(bytes[i], secs),
            secs
        );
        f.docker_pull.by_target[i].push(rate(bytes[i], secs));
    }
    drop(image);
    Ok(())
}

// ----- lifecycle -----

const POLICY: &str = r#"{"rules": [
 {"rulePriority": 1, "description": "keep the 100 newest prod images",
  "selection": {"tagStatus": "tagged", "tagPrefixList": ["prod"], "countType": "imageCountMoreThan", "countNumber": 100},
  "action": {"type": "expire"}},
 {"rulePriority": 2, "description": "dev images for 30 days",
  "selection": {"tagStatus": "tagged", "tagPatternList": ["dev-*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30},
  "action": {"type": "expire"}},
 {"rulePriority": 3, "description": "untagged images for 14 days",
  "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
  "action": {"type": "expire"}},
 {"rulePriority": 4, "description": "at most 5000 images",
  "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5000},
  "action": {"type": "expire"}}
]}"#;

/// Image `i` of `n`: its tags and when it was pushed (over 60 days, the
/// last the newest).
fn image_shape(i: usize, n: usize, now: i64) -> (Vec<String>, i64) {
    let tags = match i % 4 {
        0 => vec![format!("prod-{i}")],
        1 => vec![format!("dev-{i}")],
        2 => vec![],
        _ => vec![format!("release-{i}"), format!("sha-{i}")],
    };
    let pushed = now - ((n - i) as i64 * 60 * DAY_MS) / n as i64;
    (tags, pushed)
}

fn lifecycle_bench(a: &Args) -> anyhow::Result<()> {
    let now = Utc::now().timestamp_millis();
    let n = a.images;
    let policy = lifecycle::parse(POLICY).map_err(anyhow::Error::msg)?;
    let facts: Vec<ImageFacts> = (0..n)
        .map(|i| {
            let (tags, pushed_at_ms) = image_shape(i, n, now);
            ImageFacts {
                digest: digest_of(format!("image {i}").as_bytes()),
                tags,
                pushed_at_ms,
            }
        })
        .collect();
    let mut times = Vec::new();
    let mut expired = 0;
    for _ in 0..a.eval_runs {
        let t0 = Instant::now();
        let out = lifecycle::evaluate(&policy, &facts, now);
        times.push(t0.elapsed());
        expired = out.len();
    }
    times.sort();
    println!(
        "Lifecycle policy, {n} images (¼ prod-N, ¼ dev-N, ¼ untagged, ¼ two tags; pushed over 60 days), 4 rules:"
    );
    println!(
        "  lifecycle::evaluate: best {:.2} ms, median {:.2} ms over {} runs ({expired} images expired)",
        ms(times[0]),
        ms(times[times.len() / 2]),
        a.eval_runs
    );

    // The same through the store.
    let dir = tempfile::Builder::new()
        .prefix("berth-bench-lifecycle")
        .tempdir()?;
    let store = Arc::new(Store::open(&dir.path().join("berth.db"), Durability::Full)?);
    let services = Services::new(store.clone(), Settings::default(), Arc::new(SystemClock))
        .context("services")?;
    let ecr = services.ecr.clone();
    let ctx = Ctx::for_tests(Utc::now());
    let layer = digest_of(b"layer");
    let config = digest_of(b"config");
    let mut fills = Vec::new();
    let mut enforces = Vec::new();
    let mut removed = 0;
    for run in 0..3 {
        let name = format!("lifecycle-{run}");
        repositories::create(
            &ecr,
            &ctx,
            CreateRepositoryRequest {
                repository_name: name.clone(),
                ..Default::default()
            },
        )?;
        let repo = store
            .read(|c| repositories::find(c, &ctx.account, &ctx.region, &name))?
            .context("the repository just made")?;
        let t0 = Instant::now();
        store.write(|tx| {
            layers::link(tx, repo.id, &layer, 5, now)?;
            layers::link(tx, repo.id, &config, 6, now)?;
            for i in 0..n {
                let (tags, pushed) = image_shape(i, n, now);
                let manifest = serde_json::to_vec(&json!({
                    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 6},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 5}],
                    "annotations": {"n": i.to_string()},
                }))?;
                if tags.is_empty() {
                    images::push(tx, &repo, &manifest, Some(OCI_MANIFEST), None, None, pushed)?;
                }
                for t in &tags {
                    images::push(tx, &repo, &manifest, Some(OCI_MANIFEST), Some(t), None, pushed)?;
                }
            }
            Ok(())
        })?;
        fills.push(t0.elapsed());
        policies::put(
            &ecr,
            &ctx,
            PutLifecyclePolicyRequest {
                lifecycle_policy_text: POLICY.to_string(),
                repository_name: name.clone(),
                ..Default::default()
            },
        )?;
        let t0 = Instant::now();
        let gone = policies::enforce(&ecr, repo.id, now)?;
        enforces.push(t0.elapsed());
        removed = gone.len();
        let left = store.read(|c| Ok(images::all(c, repo.id)?.len()))?;
        if removed != expired || left + removed != n {
            bail!("enforce removed {removed} images and left {left}; evaluate expired {expired} of {n}");
        }
    }
    enforces.sort();
    fills.sort();
    println!(
        "  policies::enforce through the store (read, evaluate, {removed} deletes, commit): best {:.1} ms, median {:.1} ms over {} runs",
        ms(enforces[0]),
        ms(enforces[enforces.len() / 2]),
        enforces.len()
    );
    println!(
        "  (filling the repository, {n} images::push in one transaction: median {:.0} ms)",
        ms(fills[fills.len() / 2])
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    common::exit_with((|| {
        let a = parse_args()?;
        if a.registry {
            registries(&a)?;
        }
        if a.lifecycle {
            if a.registry {
                println!();
            }
            lifecycle_bench(&a)?;
        }
        Ok(())
    })())
}
