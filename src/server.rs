//! The HTTP server. It takes its listener and a shutdown signal as arguments,
//! so tests bind port 0 and stop it when they like.

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Response;
use axum::routing::{any, get};
use axum::Router;
use tokio::net::TcpListener;

use crate::wire::{self, App, MAX_BODY_BYTES};

/// The server's routes: the API, Berth's own pages, and `extra` (the
/// registry's `/v2/`, which has a protocol of its own).
pub fn router(app: Arc<App>, extra: Router) -> Router {
    Router::new()
        .route("/_berth/health", get(|| async { "ok\n" }))
        .route("/_berth/services", get(services))
        .route(
            "/_berth/metrics",
            get(|State(app): State<Arc<App>>| async move { app.metrics.encode() }),
        )
        .fallback(any(api))
        .with_state(app)
        .merge(extra)
}

/// What Berth serves: each service, its protocol and its operations.
async fn services(State(app): State<Arc<App>>) -> axum::Json<serde_json::Value> {
    let list: Vec<serde_json::Value> = app
        .registry
        .services()
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "signingName": s.signing_name,
                "protocol": s.model.protocol,
                "targetPrefix": s.model.target_prefix,
                "operations": s.operations(),
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "services": list }))
}

async fn api(State(app): State<Arc<App>>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        drain(body).await;
        return wire::too_large_response(&parts.headers);
    }
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return wire::too_large_response(&parts.headers),
    };
    wire::handle(app, parts.method, parts.uri, parts.headers, body).await
}

/// Read and discard an over-large body (up to a bound), so the client, still
/// sending, gets to read the 413 instead of a reset connection.
async fn drain(body: Body) {
    use http_body_util::BodyExt;
    const DRAIN_LIMIT: usize = 8 * MAX_BODY_BYTES;
    let mut body = body;
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        seen += frame.data_ref().map_or(0, |d| d.len());
        if seen > DRAIN_LIMIT {
            break;
        }
    }
}

/// Serve until `shutdown` resolves, then finish the requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app, extra))
        .with_graceful_shutdown(shutdown)
        .await
}
