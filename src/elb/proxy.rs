//! The data plane: an HTTP proxy on every listener's address and port,
//! routing each request by the current [`Table`] the way an Application
//! Load Balancer does.
//!
//! * A listener speaks HTTP/1.1 and cleartext HTTP/2 to clients; targets
//!   are spoken to over HTTP/1.1 through one shared pool of keep-alive
//!   connections.
//! * The table is swapped whole by [`DataPlane::apply`]; each request reads
//!   it once, so it is routed by one consistent table even while a new one
//!   comes in. Listeners that stay in the table keep their socket (and
//!   their clients' open connections).
//! * What the load balancer answers itself (fixed responses, redirects, the
//!   502/503/504 error pages) carries `Server: awselb/2.0`, like ALB's.
//! * A client connection with nothing sent either way for the load
//!   balancer's idle timeout is closed; a request waiting on its target is
//!   not idle (its target gets the same timeout and a 504). A WebSocket
//!   tunnel is held to the same rule, so it lives as long as it is used.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

use super::routes::{
    pick_weighted, Action, Algorithm, Condition, FixedResponse, Forward, GroupRoutes,
    ListenerRoutes, Redirect, RequestView, Table, TargetRoutes,
};

pub use super::probe::{code_matches, probe, ProbeOutcome};

/// Target group stickiness: names the group a client sticks to.
const GROUP_COOKIE: &str = "AWSALBTG";
/// Its twin for cross-origin requests (`SameSite=None`).
const GROUP_CORS_COOKIE: &str = "AWSALBTGCORS";
/// Target stickiness (`lb_cookie`): names the target a client sticks to.
const TARGET_COOKIE: &str = "AWSALB";
const TARGET_CORS_COOKIE: &str = "AWSALBCORS";
/// How long a connection to a target may take to open before the request
/// gets a 504 (ALB waits 10 seconds too).
const TARGET_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle keep-alive connection to a target is kept for reuse.
const TARGET_POOL_IDLE: Duration = Duration::from_secs(60);
/// The idle timeout when a listener's is not known (ALB's default).
const DEFAULT_IDLE: Duration = Duration::from_secs(60);

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// One target group's traffic over a period (see
/// [`DataPlane::take_metrics`]), as CloudWatch's `AWS/ApplicationELB`
/// metrics count it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupMetrics {
    /// Requests forwarded to the group (`RequestCountPerTarget`'s sum),
    /// those the load balancer answered itself for it included.
    pub requests: u64,
    /// Target responses by status class (`HTTPCode_Target_2XX_Count`...).
    pub target_2xx: u64,
    pub target_3xx: u64,
    pub target_4xx: u64,
    pub target_5xx: u64,
    /// 502, 503 and 504 answered by the load balancer for the group
    /// (`HTTPCode_ELB_5XX_Count`): no target, target unreachable, target
    /// too slow.
    pub elb_5xx: u64,
    /// The sum of `TargetResponseTime` in milliseconds: from sending the
    /// request to a target to its response's headers.
    pub target_response_time_ms: f64,
    /// How many responses that sum covers.
    pub target_responses_timed: u64,
}

/// The load balancers' data plane: every listener's socket and the table
/// they route by.
pub struct DataPlane {
    shared: Arc<Shared>,
    /// Listeners bound, by address; locked for the whole of an `apply` so
    /// two applies never race on a socket.
    listeners: tokio::sync::Mutex<BTreeMap<SocketAddr, Bound>>,
}

/// A bound listener: dropping `stop` tells its accept loop and its
/// connections to finish.
struct Bound {
    stop: watch::Sender<()>,
    accept: JoinHandle<()>,
}

impl Bound {
    /// Stops accepting (the socket is closed when this returns) and lets
    /// open connections finish the requests they have in flight.
    async fn close(self) {
        drop(self.stop);
        if let Err(e) = self.accept.await {
            tracing::warn!(error = %e, "a listener's accept loop ended abnormally");
        }
    }
}

/// What every connection's requests share.
struct Shared {
    clock_ms: Arc<dyn Fn() -> i64 + Send + Sync>,
    table: RwLock<Arc<Table>>,
    client: Client<HttpConnector, Incoming>,
    /// The next round-robin position, per target group.
    round_robin: Mutex<HashMap<String, usize>>,
    in_flight: Arc<Mutex<HashMap<SocketAddr, usize>>>,
    metrics: Mutex<BTreeMap<String, GroupMetrics>>,
}

/// A poisoned lock only means another request panicked mid-update of a
/// counter; the counters stay usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DataPlane {
    /// A data plane serving nothing yet. `clock_ms` gives "now" in
    /// milliseconds since the epoch, which slow start measures targets'
    /// time since becoming healthy by.
    pub fn new(clock_ms: Arc<dyn Fn() -> i64 + Send + Sync>) -> Arc<DataPlane> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(TARGET_CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(TARGET_POOL_IDLE)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Arc::new(DataPlane {
            shared: Arc::new(Shared {
                clock_ms,
                table: RwLock::new(Arc::new(Table::default())),
                client,
                round_robin: Mutex::new(HashMap::new()),
                in_flight: Arc::new(Mutex::new(HashMap::new())),
                metrics: Mutex::new(BTreeMap::new()),
            }),
            listeners: tokio::sync::Mutex::new(BTreeMap::new()),
        })
    }

    /// Swaps in a new table: requests from now on route by it. Binds the
    /// listeners new in the table, closes those gone from it (their open
    /// connections finish their requests) and keeps the others as they
    /// are, never rebinding an unchanged address. Returns the listeners
    /// that could not be bound, with the reason; a later `apply` tries
    /// them again.
    pub async fn apply(self: &Arc<Self>, table: Table) -> Vec<(SocketAddr, String)> {
        let wanted: Vec<SocketAddr> = table.listeners.keys().copied().collect();
        *self.shared.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        let mut bound = self.listeners.lock().await;
        let gone: Vec<SocketAddr> = bound
            .keys()
            .filter(|a| !wanted.contains(a))
            .copied()
            .collect();
        // Closed before binding, so an address may move between listeners
        // (say from 127.0.0.1:80 to 0.0.0.0:80) in one apply.
        for addr in gone {
            if let Some(b) = bound.remove(&addr) {
                b.close().await;
                tracing::info!(%addr, "load balancer listener closed");
            }
        }
        let mut failed = Vec::new();
        for addr in wanted {
            if bound.contains_key(&addr) {
                continue;
            }
            match bind(addr) {
                Ok(listener) => {
                    let (stop, stopped) = watch::channel(());
                    let accept =
                        tokio::spawn(accept_loop(self.shared.clone(), listener, addr, stopped));
                    bound.insert(addr, Bound { stop, accept });
                    tracing::info!(%addr, "load balancer listener bound");
                }
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "load balancer listener could not bind");
                    failed.push((addr, e.to_string()));
                }
            }
        }
        failed
    }

    /// Per target group, the counters since the last call, which resets
    /// them. Groups with no traffic since are absent.
    pub fn take_metrics(&self) -> BTreeMap<String, GroupMetrics> {
        std::mem::take(&mut *lock(&self.shared.metrics))
    }

    /// Requests in flight to a target (WebSocket tunnels open through it
    /// included): a deregistering target may finish draining early when
    /// this is 0.
    pub fn in_flight(&self, addr: SocketAddr) -> usize {
        lock(&self.shared.in_flight)
            .get(&addr)
            .copied()
            .unwrap_or(0)
    }

    /// Stops every listener; open connections finish the requests they
    /// have in flight.
    pub async fn shutdown(&self) {
        let mut bound = self.listeners.lock().await;
        for (_, b) in std::mem::take(&mut *bound) {
            b.close().await;
        }
    }
}

/// A listening socket with `SO_REUSEADDR`, so a restarted server can bind
/// an address whose old connections are still in `TIME_WAIT`.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    addr: SocketAddr,
    mut stop: watch::Receiver<()>,
) {
    loop {
        tokio::select! {
            // Only ever an error: the sender is dropped, never sent on.
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let stop = stop.clone();
                    tokio::spawn(serve_connection(shared.clone(), stream, peer, addr, stop));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little
                    // rather than spin.
                    tracing::warn!(%addr, error = %e, "load balancer listener could not accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// The connection-wide facts a request needs.
struct ConnInfo {
    listener: SocketAddr,
    peer: SocketAddr,
    /// Requests of this connection not yet answered in full; while any is,
    /// the connection is not idle.
    busy: Arc<AtomicUsize>,
}

async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    listener: SocketAddr,
    mut stop: watch::Receiver<()>,
) {
    let _ = stream.set_nodelay(true);
    let idle = shared.idle_timeout(listener);
    let busy = Arc::new(AtomicUsize::new(0));
    let io = TokioIo::new(IdleIo::new(stream, idle, busy.clone()));
    let info = Arc::new(ConnInfo {
        listener,
        peer,
        busy,
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Header names as ALB writes them (`Server`, `Content-Type`); HTTP/1
    // clients treat them alike either way.
    builder
        .http1()
        .title_case_headers(true)
        .timer(TokioTimer::new())
        .header_read_timeout(idle);
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        let info = info.clone();
        async move { Ok::<_, Infallible>(shared.handle(req, &info).await) }
    });
    let conn = builder.serve_connection_with_upgrades(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "load balancer client connection ended");
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

impl Shared {
    fn table(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn idle_timeout(&self, listener: SocketAddr) -> Duration {
        self.table()
            .listeners
            .get(&listener)
            .map_or(DEFAULT_IDLE, |l| {
                Duration::from_secs(l.idle_timeout_secs.max(1))
            })
    }

    /// One client request, routed by the table as it is now.
    async fn handle(&self, req: Request<Incoming>, conn: &ConnInfo) -> Response<Tracked> {
        let busy = Busy::new(conn.busy.clone());
        let table = self.table();
        let mut response = match table.listeners.get(&conn.listener) {
            // The listener left the table while this connection was open.
            None => Tracked::plain(elb_error(StatusCode::SERVICE_UNAVAILABLE)),
            Some(listener) => self.route(req, conn, listener, &table).await,
        };
        response.body_mut().busy = Some(busy);
        response
    }

    async fn route(
        &self,
        req: Request<Incoming>,
        conn: &ConnInfo,
        listener: &ListenerRoutes,
        table: &Table,
    ) -> Response<Tracked> {
        let host = request_host(&req);
        let rule = {
            // Headers and the query are gathered only when a rule looks at
            // them: most listeners route by path and host alone.
            let conditions = || listener.rules.iter().flat_map(|r| &r.conditions);
            let headers = if conditions().any(|c| matches!(c, Condition::HttpHeader { .. })) {
                req.headers()
                    .iter()
                    .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?)))
                    .collect()
            } else {
                Vec::new()
            };
            let query = match req.uri().query() {
                Some(q) if conditions().any(|c| matches!(c, Condition::QueryString(_))) => {
                    url::form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .collect()
                }
                _ => Vec::new(),
            };
            let view = RequestView {
                method: req.method().as_str(),
                path: req.uri().path(),
                host: &host,
                headers,
                query,
                source: Some(client_ip(conn.peer)),
            };
            listener.route(&view)
        };
        match rule.map(|r| &r.action) {
            Some(Action::FixedResponse(fixed)) => Tracked::plain(fixed_response(fixed)),
            Some(Action::Redirect(redirect)) => Tracked::plain(redirect_response(
                redirect,
                &host,
                req.uri(),
                conn.listener.port(),
            )),
            Some(Action::Forward(forward)) => {
                let idle = Duration::from_secs(listener.idle_timeout_secs.max(1));
                self.forward(req, forward, table, conn, host, idle).await
            }
            // Every listener has a default rule; a table without one
            // serves nothing.
            None => Tracked::plain(elb_error(StatusCode::SERVICE_UNAVAILABLE)),
        }
    }

    /// A forward action: a target group by weight (or stickiness), a
    /// target in it, and the request passed on.
    async fn forward(
        &self,
        mut req: Request<Incoming>,
        forward: &Forward,
        table: &Table,
        conn: &ConnInfo,
        host: String,
        idle: Duration,
    ) -> Response<Tracked> {
        let cookies = request_cookies(req.headers());
        let sticky_group = forward.group_stickiness_secs.and_then(|_| {
            let arn = [GROUP_COOKIE, GROUP_CORS_COOKIE]
                .iter()
                .find_map(|name| cookies.get(*name).and_then(|v| decode_cookie(v)))?;
            forward.groups.iter().position(|(a, _)| *a == arn)
        });
        let chosen = match (sticky_group, forward.groups.as_slice()) {
            (Some(i), _) => Some(i),
            // One group: no draw needed.
            (None, [(_, w)]) => (*w > 0).then_some(0),
            (None, groups) => pick_weighted(groups, rand::random()),
        };
        let Some(index) = chosen else {
            return Tracked::plain(elb_error(StatusCode::SERVICE_UNAVAILABLE));
        };
        let arn = forward.groups[index].0.as_str();
        let mut set_cookies = Vec::new();
        if let Some(secs) = forward.group_stickiness_secs {
            set_cookies.extend(sticky_cookies(GROUP_COOKIE, GROUP_CORS_COOKIE, arn, secs));
        }
        self.record(arn, |m| m.requests += 1);
        let Some(group) = table.groups.get(arn) else {
            self.record(arn, |m| m.elb_5xx += 1);
            return Tracked::plain(elb_error(StatusCode::SERVICE_UNAVAILABLE));
        };
        let routable = group.routable();
        if routable.is_empty() {
            self.record(arn, |m| m.elb_5xx += 1);
            return Tracked::plain(elb_error(StatusCode::SERVICE_UNAVAILABLE));
        }
        let sticky_target = group.stickiness_secs.and_then(|_| {
            let addr: SocketAddr = [TARGET_COOKIE, TARGET_CORS_COOKIE]
                .iter()
                .find_map(|name| cookies.get(*name).and_then(|v| decode_cookie(v)))?
                .parse()
                .ok()?;
            routable.iter().any(|t| t.addr == addr).then_some(addr)
        });
        let target = sticky_target.unwrap_or_else(|| self.pick_target(group, &routable));
        if let Some(secs) = group.stickiness_secs {
            set_cookies.extend(sticky_cookies(
                TARGET_COOKIE,
                TARGET_CORS_COOKIE,
                &target.to_string(),
                secs,
            ));
        }

        let in_flight = InFlight::new(self.in_flight.clone(), target);
        let upgrade = is_upgrade(req.headers()).then(|| hyper::upgrade::on(&mut req));
        if let Err(e) = prepare_upstream(&mut req, target, conn, host) {
            tracing::debug!(error = %e, "request could not be passed on");
            return Tracked::plain(status_only(StatusCode::BAD_REQUEST));
        }

        let sent = Instant::now();
        let mut response = match tokio::time::timeout(idle, self.client.request(req)).await {
            Err(_) => {
                self.record(arn, |m| m.elb_5xx += 1);
                return Tracked::plain(elb_error(StatusCode::GATEWAY_TIMEOUT));
            }
            Ok(Err(e)) => {
                tracing::debug!(%target, error = %e, "target failed");
                self.record(arn, |m| m.elb_5xx += 1);
                return Tracked::plain(elb_error(if timed_out(&e) {
                    StatusCode::GATEWAY_TIMEOUT
                } else {
                    StatusCode::BAD_GATEWAY
                }));
            }
            Ok(Ok(response)) => response,
        };
        let elapsed_ms = sent.elapsed().as_secs_f64() * 1000.0;
        let status = response.status();
        self.record(arn, |m| {
            match status.as_u16() {
                200..=299 => m.target_2xx += 1,
                300..=399 => m.target_3xx += 1,
                400..=499 => m.target_4xx += 1,
                500..=599 => m.target_5xx += 1,
                _ => {}
            }
            m.target_response_time_ms += elapsed_ms;
            m.target_responses_timed += 1;
        });

        if status == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client_side) = upgrade {
                let target_side = hyper::upgrade::on(&mut response);
                tokio::spawn(tunnel(client_side, target_side, in_flight));
                let (mut parts, _) = response.into_parts();
                append_cookies(&mut parts.headers, &set_cookies);
                return Tracked::plain(Response::from_parts(parts, empty()));
            }
        }
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        append_cookies(&mut parts.headers, &set_cookies);
        Response::from_parts(
            parts,
            Tracked {
                inner: body.map_err(BoxError::from).boxed_unsync(),
                idle: Some((idle, Box::pin(tokio::time::sleep(idle)))),
                in_flight: Some(in_flight),
                busy: None,
            },
        )
    }

    /// A target for a new request among the routable ones, by the group's
    /// algorithm. A target in its slow-start window is passed over with
    /// probability 1 - its share, so its load ramps up over the window.
    fn pick_target(&self, group: &GroupRoutes, routable: &[&TargetRoutes]) -> SocketAddr {
        let n = routable.len();
        let start = {
            let mut positions = lock(&self.round_robin);
            match positions.get_mut(&group.arn) {
                Some(next) => {
                    let start = *next;
                    *next = next.wrapping_add(1);
                    start
                }
                None => {
                    positions.insert(group.arn.clone(), 1);
                    0
                }
            }
        };
        let mut order: Vec<&TargetRoutes> = (0..n).map(|i| routable[(start + i) % n]).collect();
        if group.algorithm == Algorithm::LeastOutstandingRequests {
            let in_flight = lock(&self.in_flight);
            // Stable: ties keep the round-robin order.
            order.sort_by_key(|t| in_flight.get(&t.addr).copied().unwrap_or(0));
        }
        let now = (self.clock_ms)();
        order
            .iter()
            .find(|t| {
                let share = group.slow_start_share(t, now);
                share >= 1.0 || rand::random::<f64>() < share
            })
            .unwrap_or(&order[0])
            .addr
    }

    fn record(&self, arn: &str, update: impl FnOnce(&mut GroupMetrics)) {
        let mut metrics = lock(&self.metrics);
        match metrics.get_mut(arn) {
            Some(m) => update(m),
            None => update(metrics.entry(arn.to_string()).or_default()),
        }
    }
}

/// Turns the client's request into the one the target gets: addressed to
/// the target over HTTP/1.1, hop-by-hop headers gone, the `Host` kept
/// and ALB's `X-Forwarded-*` and `X-Amzn-Trace-Id` headers added.
fn prepare_upstream(
    req: &mut Request<Incoming>,
    target: SocketAddr,
    conn: &ConnInfo,
    host: String,
) -> Result<(), BoxError> {
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_string();
    *req.uri_mut() = Uri::builder()
        .scheme("http")
        .authority(target.to_string())
        .path_and_query(path)
        .build()?;
    *req.version_mut() = Version::HTTP_11;
    let headers = req.headers_mut();
    let upgrade = is_upgrade(headers)
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten();
    strip_hop_by_hop(headers);
    if let Some(protocol) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
    // HTTP/2 clients name the host in the authority only.
    if !headers.contains_key(header::HOST) && !host.is_empty() {
        headers.insert(header::HOST, HeaderValue::from_str(&host)?);
    }
    let ip = client_ip(conn.peer).to_string();
    let forwarded_for = {
        let earlier: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if earlier.is_empty() {
            ip
        } else {
            format!("{}, {ip}", earlier.join(", "))
        }
    };
    headers.insert("x-forwarded-for", HeaderValue::from_str(&forwarded_for)?);
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    headers.insert("x-forwarded-port", HeaderValue::from(conn.listener.port()));
    let trace = headers
        .get("x-amzn-trace-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match trace {
        Some(t) if t.contains("Root=") => {}
        Some(t) => {
            let value = format!("{};{t}", new_trace_root());
            headers.insert("x-amzn-trace-id", HeaderValue::from_str(&value)?);
        }
        None => {
            headers.insert("x-amzn-trace-id", HeaderValue::from_str(&new_trace_root())?);
        }
    }
    Ok(())
}

/// Whether a target request failed for a timeout (connecting, say)
/// rather than a refusal or a broken connection.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// `Root=1-<epoch seconds, 8 hex digits>-<96 random bits, 24 hex digits>`,
/// the X-Ray trace id ALB starts a request's trace with.
fn new_trace_root() -> String {
    let secs = chrono::Utc::now().timestamp().max(0) as u64;
    let random: [u8; 12] = rand::random();
    format!("Root=1-{:08x}-{}", secs, hex::encode(random))
}

/// Headers that describe one hop's connection, not the request, and so
/// are never passed on (RFC 9110 7.6.1), with any the `Connection` header
/// names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

/// Whether a request asks to switch protocols (a WebSocket handshake).
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Once the client has the target's 101, the two connections are joined
/// and bytes copied both ways until either side closes (or the client's
/// side goes idle). The tunnel counts as a request in flight to its
/// target until then.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    target: hyper::upgrade::OnUpgrade,
    in_flight: InFlight,
) {
    let _in_flight = in_flight;
    match tokio::try_join!(client, target) {
        Ok((client, target)) => {
            let mut client = TokioIo::new(client);
            let mut target = TokioIo::new(target);
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut target).await {
                tracing::debug!(error = %e, "upgraded connection ended");
            }
        }
        Err(e) => tracing::debug!(error = %e, "connection upgrade failed"),
    }
}

/// The host the client asked for: its `Host` header, or the authority of
/// the request line (HTTP/2, absolute-form).
fn request_host<B>(req: &Request<B>) -> String {
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()))
        .unwrap_or_default()
}

/// The client's address, IPv4 ones accepted on an IPv6 socket shown as
/// IPv4.
fn client_ip(peer: SocketAddr) -> IpAddr {
    match peer.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn request_cookies(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Stickiness cookies carry what they stick to (a target group's ARN, a
/// target's address) in an opaque, cookie-safe form.
fn encode_cookie(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(value)
}

fn decode_cookie(value: &str) -> Option<String> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(value).ok()?).ok()
}

/// The `Set-Cookie` values for a stickiness cookie and its cross-origin
/// twin, which browsers send on cross-site requests too.
fn sticky_cookies(name: &str, cors_name: &str, value: &str, secs: u64) -> [String; 2] {
    let value = encode_cookie(value);
    [
        format!("{name}={value}; Max-Age={secs}; Path=/"),
        format!("{cors_name}={value}; Max-Age={secs}; Path=/; SameSite=None; Secure"),
    ]
}

fn append_cookies(headers: &mut HeaderMap, cookies: &[String]) {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
}

fn full(body: impl Into<Bytes>) -> ProxyBody {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A response the load balancer makes itself, marked as ALB marks them.
fn elb_response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<ProxyBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::SERVER, HeaderValue::from_static("awselb/2.0"));
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    response
}

fn status_only(status: StatusCode) -> Response<ProxyBody> {
    let mut response = elb_response(status, "text/plain", Bytes::new());
    response.headers_mut().remove(header::CONTENT_TYPE);
    response
}

/// ALB's own page for a status it answers with itself, titled as ALB
/// titles it.
fn elb_page(status: StatusCode) -> String {
    let title = match status.as_u16() {
        302 => "302 Found".to_string(),
        502 => "502 Bad Gateway".to_string(),
        503 => "503 Service Temporarily Unavailable".to_string(),
        504 => "504 Gateway Time-out".to_string(),
        code => format!("{code} {}", status.canonical_reason().unwrap_or("")),
    };
    format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
    )
}

/// ALB's error response for 502, 503 and 504.
fn elb_error(status: StatusCode) -> Response<ProxyBody> {
    elb_response(status, "text/html", elb_page(status))
}

fn fixed_response(fixed: &FixedResponse) -> Response<ProxyBody> {
    let status = StatusCode::from_u16(fixed.status).unwrap_or(StatusCode::OK);
    elb_response(
        status,
        fixed.content_type.as_deref().unwrap_or("text/plain"),
        fixed.body.clone().unwrap_or_default(),
    )
}

/// A redirect: each part with `#{protocol}`, `#{host}`, `#{port}`,
/// `#{path}` and `#{query}` replaced by the request's own. As in ALB,
/// `#{path}` is the path without its leading `/` (the default path is
/// `/#{path}`), `#{host}` is without the port, `#{port}` is the
/// listener's, and the port is left out of `Location` when it is the
/// protocol's default.
fn redirect_response(
    redirect: &Redirect,
    host: &str,
    uri: &Uri,
    listener_port: u16,
) -> Response<ProxyBody> {
    let host_name = match host.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let port = listener_port.to_string();
    let path = uri.path().strip_prefix('/').unwrap_or(uri.path());
    let query = uri.query().unwrap_or("");
    let fill = |part: &str| {
        part.replace("#{protocol}", "http")
            .replace("#{host}", host_name)
            .replace("#{port}", &port)
            .replace("#{path}", path)
            .replace("#{query}", query)
    };
    let protocol = fill(&redirect.protocol).to_ascii_lowercase();
    let to_host = fill(&redirect.host);
    let to_port = fill(&redirect.port);
    let mut to_path = fill(&redirect.path);
    if !to_path.starts_with('/') {
        to_path.insert(0, '/');
    }
    let to_query = fill(&redirect.query);
    let default_port = match protocol.as_str() {
        "https" => "443",
        _ => "80",
    };
    let mut location = format!("{protocol}://{to_host}");
    if !to_port.is_empty() && to_port != default_port {
        location.push(':');
        location.push_str(&to_port);
    }
    location.push_str(&to_path);
    if !to_query.is_empty() {
        location.push('?');
        location.push_str(&to_query);
    }
    let status = StatusCode::from_u16(redirect.status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    let mut response = elb_response(status, "text/html", elb_page(status));
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            response.headers_mut().insert(header::LOCATION, v);
            response
        }
        Err(_) => status_only(StatusCode::BAD_REQUEST),
    }
}

/// A request in flight to a target, counted until dropped: with the
/// response's body once it is sent in full, or when the request fails.
struct InFlight {
    counts: Arc<Mutex<HashMap<SocketAddr, usize>>>,
    addr: SocketAddr,
}

impl InFlight {
    fn new(counts: Arc<Mutex<HashMap<SocketAddr, usize>>>, addr: SocketAddr) -> InFlight {
        *lock(&counts).entry(addr).or_insert(0) += 1;
        InFlight { counts, addr }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(n) = counts.get_mut(&self.addr) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.addr);
            }
        }
    }
}

/// A request of a client connection not yet answered in full.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(count: Arc<AtomicUsize>) -> Busy {
        count.fetch_add(1, Ordering::AcqRel);
        Busy(count)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body on its way to the client, holding the request's
/// counters until it is sent (or dropped), and failing when a target
/// stops sending for the idle timeout.
struct Tracked {
    inner: ProxyBody,
    idle: Option<(Duration, Pin<Box<Sleep>>)>,
    in_flight: Option<InFlight>,
    busy: Option<Busy>,
}

impl Tracked {
    fn plain(response: Response<ProxyBody>) -> Response<Tracked> {
        response.map(|inner| Tracked {
            inner,
            idle: None,
            in_flight: None,
            busy: None,
        })
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some((idle, timer)) = &mut this.idle {
                    timer.as_mut().reset(Instant::now() + *idle);
                }
                if frame.is_none() {
                    this.in_flight = None;
                }
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let expired = match &mut this.idle {
                    Some((_, timer)) => timer.as_mut().poll(cx).is_ready(),
                    None => false,
                };
                if !expired {
                    return Poll::Pending;
                }
                this.in_flight = None;
                Poll::Ready(Some(Err(
                    "the target sent nothing for the idle timeout".into()
                )))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A client connection's socket, which fails (closing the connection)
/// once nothing has been read or written for the idle timeout while no
/// request of the connection is waiting on its answer. Both HTTP
/// connections and the WebSocket tunnels they become read through it.
struct IdleIo<T> {
    inner: T,
    idle: Duration,
    last_activity: Instant,
    timer: Pin<Box<Sleep>>,
    busy: Arc<AtomicUsize>,
}

impl<T> IdleIo<T> {
    fn new(inner: T, idle: Duration, busy: Arc<AtomicUsize>) -> IdleIo<T> {
        let now = Instant::now();
        IdleIo {
            inner,
            idle,
            last_activity: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            busy,
        }
    }

    /// Called while a read waits: `Ready` with an error once the
    /// connection has been idle for the timeout.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let deadline = self.last_activity + self.idle;
            if self.timer.deadline() != deadline {
                self.timer.as_mut().reset(deadline);
            }
            ready!(self.timer.as_mut().poll(cx));
            if self.busy.load(Ordering::Acquire) == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for the load balancer's idle timeout",
                )));
            }
            // A request waits on its target: not idle.
            self.last_activity = Instant::now();
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.last_activity = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => this.poll_idle(cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.inner).poll_write(cx, buf));
        if matches!(written, Ok(n) if n > 0) {
            this.last_activity = Instant::now();
        }
        Poll::Ready(written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs));
        if matches!(written, Ok(n) if n > 0) {
            this.last_activity = Instant::now();
        }
        Poll::Ready(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elb::routes::{Condition, Health, RuleRoutes};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{mpsc, Semaphore};

    /// The most any one step of a test may take.
    const LIMIT: Duration = Duration::from_secs(10);

    fn plane() -> Arc<DataPlane> {
        DataPlane::new(Arc::new(|| 1_700_000_000_000))
    }

    /// A port nothing listens on (for a listener to be bound, or a target
    /// that refuses connections).
    fn free_addr() -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }

    /// A request a backend holds until the test lets it go, announcing
    /// its arrival first.
    #[derive(Clone)]
    struct Hold {
        release: Arc<Semaphore>,
        arrived: mpsc::UnboundedSender<&'static str>,
    }

    /// A backend answering with its name on the body's first line and the
    /// request's headers on the next, as `name: value`. `/status/N`
    /// answers N, `/sleep/MS` answers after MS milliseconds, and `/hold`
    /// waits for `hold`'s release.
    async fn backend_holding(name: &'static str, hold: Option<Hold>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let hold = hold.clone();
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let hold = hold.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        if let Some(ms) = path.strip_prefix("/sleep/") {
                            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
                        }
                        if let (Some(hold), "/hold") = (&hold, path.as_str()) {
                            hold.arrived.send(name).unwrap();
                            hold.release.acquire().await.unwrap().forget();
                        }
                        let status = path
                            .strip_prefix("/status/")
                            .map_or(200, |s| s.parse().unwrap());
                        let mut body = format!("{name}\n");
                        for (k, v) in req.headers() {
                            body.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
                        }
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .header("x-backend", name)
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        addr
    }

    async fn backend(name: &'static str) -> SocketAddr {
        backend_holding(name, None).await
    }

    /// A backend that switches protocols on any request asking for a
    /// WebSocket and then echoes every byte.
    async fn echo_upgrade_backend() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let head = read_head(&mut stream).await;
                    if !head.to_ascii_lowercase().contains("upgrade: websocket") {
                        let _ = stream
                            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                            .await;
                        return;
                    }
                    stream
                        .write_all(
                            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                        )
                        .await
                        .unwrap();
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    /// Reads up to the end of an HTTP head.
    async fn read_head(stream: &mut TcpStream) -> String {
        read_until(stream, "\r\n\r\n").await
    }

    /// Reads until what was read contains `needle`.
    async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
        let mut seen = Vec::new();
        tokio::time::timeout(LIMIT, async {
            let mut byte = [0u8; 1];
            while !String::from_utf8_lossy(&seen).contains(needle) {
                let n = stream.read(&mut byte).await.unwrap();
                assert!(
                    n > 0,
                    "closed before {needle:?}: {:?}",
                    String::from_utf8_lossy(&seen)
                );
                seen.push(byte[0]);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {needle:?} in {:?}", String::from_utf8_lossy(&seen)));
        String::from_utf8_lossy(&seen).into_owned()
    }

    /// Waits, up to the limit, for `done` to hold.
    async fn eventually(what: &str, done: impl Fn() -> bool) {
        tokio::time::timeout(LIMIT, async {
            while !done() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("never: {what}"));
    }

    struct Reply {
        status: u16,
        headers: HeaderMap,
        body: String,
    }

    impl Reply {
        /// The backend that answered.
        fn backend(&self) -> &str {
            self.body.lines().next().unwrap_or("")
        }

        /// A request header as the backend saw it.
        fn seen(&self, name: &str) -> Option<&str> {
            self.body
                .lines()
                .skip(1)
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        }

        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).and_then(|v| v.to_str().ok())
        }

        /// The value a `Set-Cookie` gives cookie `name`.
        fn cookie(&self, name: &str) -> Option<String> {
            self.headers
                .get_all(header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|c| c.strip_prefix(&format!("{name}=")))
                .map(|c| c.split(';').next().unwrap().to_string())
        }
    }

    async fn send(
        client: &Client<HttpConnector, Empty<Bytes>>,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::get(format!("http://{addr}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = tokio::time::timeout(LIMIT, client.request(req.body(Empty::new()).unwrap()))
            .await
            .expect("the proxy answers in time")
            .expect("the proxy answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = tokio::time::timeout(LIMIT, response.into_body().collect())
            .await
            .unwrap()
            .unwrap()
            .to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
        let client = Client::builder(TokioExecutor::new()).build_http();
        send(&client, addr, path, headers).await
    }

    fn listener(idle_timeout_secs: u64, rules: Vec<RuleRoutes>) -> ListenerRoutes {
        ListenerRoutes {
            listener_arn: "listener".into(),
            load_balancer_arn: "lb".into(),
            protocol: "HTTP".into(),
            idle_timeout_secs,
            rules,
        }
    }

    fn rule(path: Option<&str>, action: Action) -> RuleRoutes {
        RuleRoutes {
            rule_arn: path.unwrap_or("default").into(),
            conditions: path
                .map(|p| vec![Condition::PathPattern(vec![p.into()])])
                .unwrap_or_default(),
            action,
        }
    }

    fn forward(groups: &[(&str, u32)]) -> Action {
        Action::Forward(Forward {
            groups: groups.iter().map(|(a, w)| (a.to_string(), *w)).collect(),
            group_stickiness_secs: None,
        })
    }

    fn fixed(status: u16, content_type: Option<&str>, body: &str) -> Action {
        Action::FixedResponse(FixedResponse {
            status,
            content_type: content_type.map(str::to_string),
            body: Some(body.to_string()),
        })
    }

    fn group(arn: &str, targets: &[SocketAddr]) -> GroupRoutes {
        GroupRoutes {
            arn: arn.into(),
            algorithm: Algorithm::RoundRobin,
            stickiness_secs: None,
            slow_start_secs: 0,
            targets: targets
                .iter()
                .map(|addr| TargetRoutes {
                    addr: *addr,
                    health: Health::Healthy,
                    healthy_since_ms: None,
                })
                .collect(),
        }
    }

    fn table(addr: SocketAddr, listener: ListenerRoutes, groups: Vec<GroupRoutes>) -> Table {
        Table {
            listeners: BTreeMap::from([(addr, listener)]),
            groups: groups.into_iter().map(|g| (g.arn.clone(), g)).collect(),
        }
    }

    /// A data plane serving `table`, every listener bound. Applied from a
    /// task of its own, as the server does (which `apply` being `Send`
    /// allows).
    async fn serving(table: Table) -> Arc<DataPlane> {
        let dp = plane();
        let applying = dp.clone();
        let failed = tokio::spawn(async move { applying.apply(table).await })
            .await
            .unwrap();
        assert_eq!(failed, vec![]);
        dp
    }

    /// A listener forwarding everything to one round-robin group `tg`.
    async fn forwarding(targets: &[SocketAddr], idle: u64) -> (Arc<DataPlane>, SocketAddr) {
        let addr = free_addr();
        let dp = serving(table(
            addr,
            listener(idle, vec![rule(None, forward(&[("tg", 1)]))]),
            vec![group("tg", targets)],
        ))
        .await;
        (dp, addr)
    }

    const PAGE_503: &str = concat!(
        "<html>\r\n",
        "<head><title>503 Service Temporarily Unavailable</title></head>\r\n",
        "<body>\r\n",
        "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n",
        "</body>\r\n",
        "</html>\r\n",
    );

    #[tokio::test]
    async fn fixed_responses_are_answered_by_the_load_balancer() {
        let addr = free_addr();
        let _dp = serving(table(
            addr,
            listener(
                60,
                vec![
                    rule(Some("/plain"), fixed(200, None, "")),
                    rule(
                        None,
                        fixed(404, Some("application/json"), "{\"error\":\"none\"}"),
                    ),
                ],
            ),
            vec![],
        ))
        .await;
        let r = get(addr, "/anything?x=1", &[]).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("server"), Some("awselb/2.0"));
        assert_eq!(r.body, "{\"error\":\"none\"}");
        let r = get(addr, "/plain", &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.body, "");
    }

    #[tokio::test]
    async fn redirects_fill_in_the_request_and_leave_out_default_ports() {
        let addr = free_addr();
        let to_https = Action::Redirect(Redirect {
            protocol: "HTTPS".into(),
            host: "#{host}".into(),
            port: "443".into(),
            path: "/new/#{path}".into(),
            query: "#{query}&x=1".into(),
            status: 301,
        });
        let same = Action::Redirect(Redirect {
            protocol: "#{protocol}".into(),
            host: "#{host}".into(),
            port: "#{port}".into(),
            path: "/#{path}".into(),
            query: "#{query}".into(),
            status: 302,
        });
        let _dp = serving(table(
            addr,
            listener(60, vec![rule(Some("/moved/*"), to_https), rule(None, same)]),
            vec![],
        ))
        .await;
        let host = [("host", "Example.com:8080")];
        let r = get(addr, "/moved/old?a=b", &host).await;
        assert_eq!(r.status, 301);
        assert_eq!(
            r.header("location"),
            Some("https://Example.com/new/moved/old?a=b&x=1")
        );
        assert_eq!(r.header("server"), Some("awselb/2.0"));
        let r = get(addr, "/keep/x", &host).await;
        assert_eq!(r.status, 302);
        let expected = format!("http://Example.com:{}/keep/x", addr.port());
        assert_eq!(r.header("location"), Some(expected.as_str()));
    }

    #[tokio::test]
    async fn round_robin_alternates_between_targets() {
        let a = backend("a").await;
        let b = backend("b").await;
        let (_dp, addr) = forwarding(&[a, b], 60).await;
        let mut seen = Vec::new();
        for _ in 0..6 {
            let r = get(addr, "/", &[]).await;
            assert_eq!(r.status, 200);
            seen.push(r.backend().to_string());
        }
        for pair in seen.windows(2) {
            assert_ne!(pair[0], pair[1], "{seen:?}");
        }
        assert_eq!(seen.iter().filter(|s| *s == "a").count(), 3);
    }

    #[tokio::test]
    async fn a_group_weighted_zero_gets_nothing() {
        let a = backend("a").await;
        let b = backend("b").await;
        let addr = free_addr();
        let _dp = serving(table(
            addr,
            listener(60, vec![rule(None, forward(&[("tg-a", 1), ("tg-b", 0)]))]),
            vec![group("tg-a", &[a]), group("tg-b", &[b])],
        ))
        .await;
        for _ in 0..10 {
            assert_eq!(get(addr, "/", &[]).await.backend(), "a");
        }
    }

    #[tokio::test]
    async fn no_targets_or_no_group_is_a_503() {
        let addr = free_addr();
        let dp = serving(table(
            addr,
            listener(
                60,
                vec![
                    rule(Some("/ghost"), forward(&[("tg-gone", 1)])),
                    rule(None, forward(&[("tg-empty", 1)])),
                ],
            ),
            vec![group("tg-empty", &[])],
        ))
        .await;
        for path in ["/", "/ghost"] {
            let r = get(addr, path, &[]).await;
            assert_eq!(r.status, 503);
            assert_eq!(r.body, PAGE_503);
            assert_eq!(r.header("content-type"), Some("text/html"));
            assert_eq!(r.header("server"), Some("awselb/2.0"));
        }
        let metrics = dp.take_metrics();
        assert_eq!(metrics["tg-empty"].requests, 1);
        assert_eq!(metrics["tg-empty"].elb_5xx, 1);
    }

    #[tokio::test]
    async fn a_target_refusing_connections_is_a_502() {
        let closed = free_addr();
        let (dp, addr) = forwarding(&[closed], 60).await;
        let r = get(addr, "/", &[]).await;
        assert_eq!(r.status, 502);
        assert!(
            r.body.contains("<title>502 Bad Gateway</title>"),
            "{}",
            r.body
        );
        assert_eq!(r.header("server"), Some("awselb/2.0"));
        assert_eq!(dp.in_flight(closed), 0);
        let m = &dp.take_metrics()["tg"];
        assert_eq!((m.requests, m.elb_5xx, m.target_5xx), (1, 1, 0));
    }

    #[tokio::test]
    async fn a_target_slower_than_the_idle_timeout_is_a_504() {
        let slow = backend("slow").await;
        let (dp, addr) = forwarding(&[slow], 1).await;
        let r = get(addr, "/sleep/4000", &[]).await;
        assert_eq!(r.status, 504);
        assert!(
            r.body.contains("<title>504 Gateway Time-out</title>"),
            "{}",
            r.body
        );
        eventually("the timed-out request is no longer in flight", || {
            dp.in_flight(slow) == 0
        })
        .await;
    }

    #[tokio::test]
    async fn targets_learn_who_asked_and_how() {
        let a = backend("a").await;
        let (_dp, addr) = forwarding(&[a], 60).await;
        let r = get(
            addr,
            "/",
            &[
                ("host", "app.example.com"),
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", "https"),
                ("connection", "x-secret"),
                ("x-secret", "1"),
            ],
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.seen("host"), Some("app.example.com"));
        assert_eq!(r.seen("x-forwarded-for"), Some("203.0.113.9, 127.0.0.1"));
        assert_eq!(r.seen("x-forwarded-proto"), Some("http"));
        let port = addr.port().to_string();
        assert_eq!(r.seen("x-forwarded-port"), Some(port.as_str()));
        assert_eq!(r.seen("x-secret"), None, "headers named by Connection stay");
        let trace = r.seen("x-amzn-trace-id").unwrap();
        let shape = regex::Regex::new("^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$").unwrap();
        assert!(shape.is_match(trace), "{trace}");

        let given = "Root=1-5759e988-bd862e3fe1be46a994272793";
        let r = get(addr, "/", &[("x-amzn-trace-id", given)]).await;
        assert_eq!(r.seen("x-amzn-trace-id"), Some(given));
        assert_eq!(r.seen("x-forwarded-for"), Some("127.0.0.1"));
    }

    #[tokio::test]
    async fn the_target_cookie_pins_a_client_to_its_target() {
        let a = backend("a").await;
        let b = backend("b").await;
        let addr = free_addr();
        let mut g = group("tg", &[a, b]);
        g.stickiness_secs = Some(300);
        let _dp = serving(table(
            addr,
            listener(60, vec![rule(None, forward(&[("tg", 1)]))]),
            vec![g],
        ))
        .await;
        let first = get(addr, "/", &[]).await;
        let cookie = first.cookie("AWSALB").expect("AWSALB is set");
        assert!(first.cookie("AWSALBCORS").is_some());
        let set = first.header("set-cookie").unwrap();
        assert!(
            set.contains("Max-Age=300") && set.contains("Path=/"),
            "{set}"
        );
        // Without the cookie, round robin moves on.
        assert_ne!(get(addr, "/", &[]).await.backend(), first.backend());
        let sent = format!("other=1; AWSALB={cookie}");
        for _ in 0..6 {
            let r = get(addr, "/", &[("cookie", &sent)]).await;
            assert_eq!(r.backend(), first.backend());
        }
        // A cookie naming no routable target is ignored.
        let stale = format!("AWSALB={}", encode_cookie("127.0.0.1:1"));
        assert_eq!(get(addr, "/", &[("cookie", &stale)]).await.status, 200);
    }

    #[tokio::test]
    async fn the_group_cookie_pins_a_client_to_its_target_group() {
        let a = backend("a").await;
        let b = backend("b").await;
        let addr = free_addr();
        let action = Action::Forward(Forward {
            groups: vec![("tg-a".into(), 1), ("tg-b".into(), 1)],
            group_stickiness_secs: Some(600),
        });
        let _dp = serving(table(
            addr,
            listener(60, vec![rule(None, action)]),
            vec![group("tg-a", &[a]), group("tg-b", &[b])],
        ))
        .await;
        let first = get(addr, "/", &[]).await;
        let cookie = first.cookie("AWSALBTG").expect("AWSALBTG is set");
        let arn = decode_cookie(&cookie).unwrap();
        assert_eq!(arn, format!("tg-{}", first.backend()));
        let sent = format!("AWSALBTG={cookie}");
        for _ in 0..10 {
            assert_eq!(
                get(addr, "/", &[("cookie", &sent)]).await.backend(),
                first.backend()
            );
        }
    }

    #[tokio::test]
    async fn least_outstanding_requests_avoids_a_busy_target() {
        let (arrived, mut arrivals) = mpsc::unbounded_channel();
        let hold = Hold {
            release: Arc::new(Semaphore::new(0)),
            arrived,
        };
        let a = backend_holding("a", Some(hold.clone())).await;
        let b = backend_holding("b", Some(hold.clone())).await;
        let addr = free_addr();
        let mut g = group("tg", &[a, b]);
        g.algorithm = Algorithm::LeastOutstandingRequests;
        let dp = serving(table(
            addr,
            listener(60, vec![rule(None, forward(&[("tg", 1)]))]),
            vec![g],
        ))
        .await;
        let held = tokio::spawn(async move { get(addr, "/hold", &[]).await });
        let busy = tokio::time::timeout(LIMIT, arrivals.recv())
            .await
            .unwrap()
            .unwrap();
        let (busy_addr, idle_name) = if busy == "a" { (a, "b") } else { (b, "a") };
        assert_eq!(dp.in_flight(busy_addr), 1);
        for _ in 0..3 {
            assert_eq!(get(addr, "/", &[]).await.backend(), idle_name);
        }
        hold.release.add_permits(1);
        assert_eq!(held.await.unwrap().backend(), busy);
        eventually("the held request is done", || dp.in_flight(busy_addr) == 0).await;
    }

    #[tokio::test]
    async fn metrics_count_target_responses_by_class_and_reset() {
        let a = backend("a").await;
        let (dp, addr) = forwarding(&[a], 60).await;
        for path in [
            "/status/200",
            "/status/302",
            "/status/404",
            "/status/503",
            "/",
        ] {
            get(addr, path, &[]).await;
        }
        let metrics = dp.take_metrics();
        let m = &metrics["tg"];
        assert_eq!(m.requests, 5);
        assert_eq!(
            (
                m.target_2xx,
                m.target_3xx,
                m.target_4xx,
                m.target_5xx,
                m.elb_5xx
            ),
            (2, 1, 1, 1, 0)
        );
        assert_eq!(m.target_responses_timed, 5);
        assert!(m.target_response_time_ms > 0.0);
        assert!(dp.take_metrics().is_empty());
    }

    #[tokio::test]
    async fn http2_clients_are_served() {
        let a = backend("a").await;
        let (_dp, addr) = forwarding(&[a], 60).await;
        let h2 = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
        let r = send(&h2, addr, "/", &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.backend(), "a");
        let authority = addr.to_string();
        assert_eq!(r.seen("host"), Some(authority.as_str()));
    }

    #[tokio::test]
    async fn websocket_upgrades_are_tunnelled_while_in_use() {
        let echo = echo_upgrade_backend().await;
        let (dp, addr) = forwarding(&[echo], 1).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(
                b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
            .await
            .unwrap();
        let head = read_head(&mut client).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("upgrade: websocket"),
            "{head}"
        );
        // Used for longer than the idle timeout, a little at a time.
        for i in 0..5 {
            let message = format!("ping {i};");
            client.write_all(message.as_bytes()).await.unwrap();
            read_until(&mut client, &message).await;
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        assert_eq!(dp.in_flight(echo), 1);
        // Then left idle, it is closed.
        let mut rest = [0u8; 16];
        let closed = tokio::time::timeout(LIMIT, client.read(&mut rest))
            .await
            .expect("the idle tunnel is closed");
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
        eventually("the tunnel is no longer in flight", || {
            dp.in_flight(echo) == 0
        })
        .await;
    }

    #[tokio::test]
    async fn idle_client_connections_are_closed() {
        let addr = free_addr();
        let _dp = serving(table(
            addr,
            listener(1, vec![rule(None, fixed(200, None, "ok"))]),
            vec![],
        ))
        .await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        read_until(&mut client, "\r\n\r\nok").await;
        let mut rest = [0u8; 16];
        let closed = tokio::time::timeout(LIMIT, client.read(&mut rest))
            .await
            .expect("the idle connection is closed");
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    }

    #[tokio::test]
    async fn a_request_that_is_not_http_gets_a_400_and_disturbs_nobody() {
        let addr = free_addr();
        let _dp = serving(table(
            addr,
            listener(60, vec![rule(None, fixed(200, None, "ok"))]),
            vec![],
        ))
        .await;
        let mut open = TcpStream::connect(addr).await.unwrap();
        let mut bad = TcpStream::connect(addr).await.unwrap();
        bad.write_all(b"NOT HTTP AT ALL\r\n\r\n").await.unwrap();
        let head = read_head(&mut bad).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");
        open.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        read_until(&mut open, "\r\n\r\nok").await;
    }

    #[tokio::test]
    async fn apply_keeps_unchanged_listeners_and_closes_removed_ones() {
        let addr = free_addr();
        let serve = |body: &str| {
            table(
                addr,
                listener(60, vec![rule(None, fixed(200, None, body))]),
                vec![],
            )
        };
        let dp = serving(serve("first")).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        read_until(&mut conn, "first").await;

        // Same listener, new rules: the open connection is served by them.
        assert_eq!(dp.apply(serve("second")).await, vec![]);
        conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        read_until(&mut conn, "second").await;

        assert_eq!(dp.apply(Table::default()).await, vec![]);
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the listener is closed"
        );

        // Bound again, then shut down.
        assert_eq!(dp.apply(serve("third")).await, vec![]);
        assert_eq!(get(addr, "/", &[]).await.body, "third");
        dp.shutdown().await;
        assert!(TcpStream::connect(addr).await.is_err(), "shut down");
    }

    #[tokio::test]
    async fn an_address_in_use_is_reported_and_the_rest_served() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken_addr = taken.local_addr().unwrap();
        let free = free_addr();
        let l = || listener(60, vec![rule(None, fixed(200, None, "ok"))]);
        let dp = plane();
        let failed = dp
            .apply(Table {
                listeners: BTreeMap::from([(taken_addr, l()), (free, l())]),
                groups: BTreeMap::new(),
            })
            .await;
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, taken_addr);
        assert_eq!(get(free, "/", &[]).await.body, "ok");
    }

    #[tokio::test]
    async fn slow_start_gives_a_new_target_a_smaller_share() {
        let dp = plane();
        let now = (dp.shared.clock_ms)();
        let mut g = group("tg", &[free_addr(), free_addr()]);
        g.slow_start_secs = 300;
        g.targets[1].healthy_since_ms = Some(now);
        let routable = g.routable();
        let new = g.targets[1].addr;
        let to_new = (0..1000)
            .filter(|_| dp.shared.pick_target(&g, &routable) == new)
            .count();
        // Its share is 10% at first: it is passed over 9 times in 10 when
        // its turn comes, so about 50 of 1000.
        assert!((1..200).contains(&to_new), "{to_new}");
    }
}
