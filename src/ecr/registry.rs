//! The OCI distribution protocol (`/v2/…`) on Berth's own port: what
//! `docker login/push/pull` speak to the registry. Credentials are HTTP
//! Basic `AWS:<token>` (`aws ecr get-login-password`), and the token's
//! account and region decide which repositories a request sees. Every
//! write goes through the same functions as the ECR API (`images::push`,
//! `layers::finish`), so both check the same rules.
//!
//! Routes (names may hold slashes, so the path is split from its end):
//!
//! | method | path | what |
//! | --- | --- | --- |
//! | GET, HEAD | `/v2/` | the credentials check |
//! | GET | `/v2/<name>/tags/list` | tags, `n`/`last` paging |
//! | GET, HEAD, PUT, DELETE | `/v2/<name>/manifests/<ref>` | manifests by tag or digest |
//! | GET, HEAD | `/v2/<name>/blobs/<digest>` | blobs, with `Range` |
//! | POST | `/v2/<name>/blobs/uploads/` | start (or `?digest=` monolithic, `?mount=&from=`) |
//! | PATCH, PUT, GET, DELETE | `/v2/<name>/blobs/uploads/<id>` | chunk, finish (`?digest=`), status, cancel |

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use axum::routing::any;
use axum::Router;
use futures_util::StreamExt;

use super::auth::Grant;
use super::images::{self, DeleteRefused};
use super::layers;
use super::names::{valid_digest, Reference};
use super::repositories::{self, Repo};
use super::Ecr;
use crate::error::ApiError;

/// The largest manifest accepted (ECR: 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// The registry's routes, to merge into the server's router.
pub fn router(ecr: Arc<Ecr>) -> Router {
    Router::new()
        .route("/v2", any(base))
        .route("/v2/", any(base))
        .route("/v2/{*rest}", any(dispatch))
        .with_state(ecr)
}

/// A protocol error: its HTTP status, code and message.
#[derive(Debug)]
struct Error {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> Error {
    Error {
        status,
        code,
        message: message.into(),
    }
}

impl Error {
    fn response(self, head: bool) -> Response<Body> {
        let body = serde_json::json!({"errors": [{"code": self.code, "message": self.message, "detail": null}]});
        let mut r = Response::builder()
            .status(self.status)
            .header("Content-Type", "application/json")
            .header("Docker-Distribution-API-Version", "registry/2.0");
        if self.status == StatusCode::UNAUTHORIZED {
            r = r.header("WWW-Authenticate", "Basic realm=\"Berth ECR\"");
        }
        let body = if head {
            Body::empty()
        } else {
            Body::from(body.to_string())
        };
        r.body(body).expect("a valid response")
    }
}

/// An API error from the shared functions, in the protocol's terms.
fn from_api(e: ApiError) -> Error {
    let (status, code) = match e.code.as_str() {
        "RepositoryNotFoundException" => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
        "ImageNotFoundException" => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
        "LayersNotFoundException" | "ReferencedImagesNotFoundException" => {
            (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
        }
        "ImageTagAlreadyExistsException" => (StatusCode::BAD_REQUEST, "TAG_INVALID"),
        "ImageDigestDoesNotMatchException" => (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
        "InvalidParameterException" if e.message.contains("'imageTag'") => {
            (StatusCode::BAD_REQUEST, "TAG_INVALID")
        }
        "InvalidParameterException" => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
        "InvalidLayerException" => (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
        "UploadNotFoundException" => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN"),
    };
    err(status, code, e.message)
}

fn io(e: std::io::Error) -> Error {
    err(
        StatusCode::INTERNAL_SERVER_ERROR,
        "UNKNOWN",
        format!("storage: {e}"),
    )
}

fn authorize(ecr: &Ecr, headers: &HeaderMap) -> Result<Grant, Error> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| ecr.tokens.verify_basic(v, ecr.clock.now_ms()))
        .ok_or_else(|| {
            err(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required: log in with the password of `aws ecr get-login-password`",
            )
        })
}

fn builder(status: StatusCode) -> axum::http::response::Builder {
    Response::builder()
        .status(status)
        .header("Docker-Distribution-API-Version", "registry/2.0")
}

async fn base(State(ecr): State<Arc<Ecr>>, req: Request) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    match authorize(&ecr, req.headers()) {
        Ok(_) => builder(StatusCode::OK)
            .header("Content-Type", "application/json")
            .body(if head {
                Body::empty()
            } else {
                Body::from("{}")
            })
            .expect("a valid response"),
        Err(e) => e.response(head),
    }
}

/// What a path under `/v2/` names.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    Uploads(String),
    Upload(String, String),
}

fn route(rest: &str) -> Option<Route> {
    // From the end, in fixed shapes: a reference, digest or upload id
    // holds no slash, while a repository name may hold `manifests` or
    // `blobs` as one of its components.
    let parts: Vec<&str> = rest.split('/').collect();
    let n = parts.len();
    let name = |k: usize| {
        let name = parts[..n.saturating_sub(k)].join("/");
        (n > k && !name.is_empty()).then_some(name)
    };
    match parts.as_slice() {
        [.., "tags", "list"] => Some(Route::Tags(name(2)?)),
        [.., "blobs", "uploads", ""] => Some(Route::Uploads(name(3)?)),
        [.., "blobs", "uploads"] => Some(Route::Uploads(name(2)?)),
        [.., "blobs", "uploads", id] => Some(Route::Upload(name(3)?, id.to_string())),
        [.., "manifests", r] if !r.is_empty() => Some(Route::Manifest(name(2)?, r.to_string())),
        [.., "blobs", d] if !d.is_empty() => Some(Route::Blob(name(2)?, d.to_string())),
        _ => None,
    }
}

fn query(req: &Request, key: &str) -> Option<String> {
    let q = req.uri().query()?;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn dispatch(State(ecr): State<Arc<Ecr>>, req: Request) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    match serve(&ecr, req).await {
        Ok(r) => r,
        Err(e) => e.response(head),
    }
}

/// The repository `name` of the grant's account and region.
async fn repository(ecr: &Arc<Ecr>, grant: &Grant, name: &str) -> Result<Repo, Error> {
    let (ecr, grant, name) = (ecr.clone(), grant.clone(), name.to_string());
    blocking(move || {
        ecr.store.read(|conn| {
            repositories::find(conn, &grant.account, &grant.region, &name)?.ok_or_else(|| {
                ApiError::new(
                    "RepositoryNotFoundException",
                    format!("repository name not known to registry: {name}"),
                )
            })
        })
    })
    .await
}

/// Run store work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", e.to_string()))?
        .map_err(from_api)
}

async fn serve(ecr: &Arc<Ecr>, req: Request) -> Result<Response<Body>, Error> {
    let grant = authorize(ecr, req.headers())?;
    let path = req.uri().path().to_string();
    let rest = path.strip_prefix("/v2/").unwrap_or_default();
    let route =
        route(rest).ok_or_else(|| err(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "no such route"))?;
    let method = req.method().clone();
    let head = method == Method::HEAD;
    match (route, method) {
        (Route::Tags(name), Method::GET) => {
            let (n, last) = (query(&req, "n"), query(&req, "last"));
            tags(ecr, &grant, &name, n, last).await
        }
        (Route::Manifest(name, r), Method::GET | Method::HEAD) => {
            get_manifest(ecr, &grant, &name, &r, head).await
        }
        (Route::Manifest(name, r), Method::PUT) => put_manifest(ecr, &grant, &name, &r, req).await,
        (Route::Manifest(name, r), Method::DELETE) => delete_manifest(ecr, &grant, &name, &r).await,
        (Route::Blob(name, d), Method::GET | Method::HEAD) => {
            get_blob(ecr, &grant, &name, &d, req).await
        }
        (Route::Uploads(name), Method::POST) => start_upload(ecr, &grant, &name, req).await,
        (Route::Upload(name, id), Method::PATCH) => {
            patch_upload(ecr, &grant, &name, &id, req).await
        }
        (Route::Upload(name, id), Method::PUT) => put_upload(ecr, &grant, &name, &id, req).await,
        (Route::Upload(name, id), Method::GET) => upload_status(ecr, &grant, &name, &id).await,
        (Route::Upload(name, id), Method::DELETE) => cancel_upload(ecr, &grant, &name, &id).await,
        (_, m) => Err(err(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("{m} is not supported here"),
        )),
    }
}

async fn tags(
    ecr: &Arc<Ecr>,
    grant: &Grant,
    name: &str,
    n: Option<String>,
    last: Option<String>,
) -> Result<Response<Body>, Error> {
    let repo = repository(ecr, grant, name).await?;
    let n: Option<usize> = n.and_then(|v| v.parse().ok());
    let ecr2 = ecr.clone();
    let all: Vec<String> = blocking(move || {
        ecr2.store.read(|conn| {
            let mut st = conn
                .prepare("SELECT tag FROM ecr_image_tags WHERE repository_id = ?1 ORDER BY tag")?;
            let rows = st.query_map([repo.id], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
    })
    .await?;
    let mut page: Vec<String> = all
        .into_iter()
        .filter(|t| last.as_ref().is_none_or(|l| t > l))
        .collect();
    let mut link = None;
    if let Some(n) = n {
        if page.len() > n {
            page.truncate(n);
            if let Some(l) = page.last() {
                link = Some(format!(
                    "</v2/{name}/tags/list?n={n}&last={l}>; rel=\"next\""
                ));
            }
        }
    }
    let mut r = builder(StatusCode::OK).header("Content-Type", "application/json");
    if let Some(l) = link {
        r = r.header("Link", l);
    }
    let body = serde_json::json!({"name": name, "tags": page});
    Ok(r.body(Body::from(body.to_string()))
        .expect("a valid response"))
}

async fn get_manifest(
    ecr: &Arc<Ecr>,
    grant: &Grant,
    name: &str,
    reference: &str,
    head: bool,
) -> Result<Response<Body>, Error> {
    let repo = repository(ecr, grant, name).await?;
    let r = Reference::parse(reference);
    let ecr2 = ecr.clone();
    let (repo_id, account, rname) = (repo.id, repo.account.clone(), repo.name.clone());
    let image = blocking(move || {
        let found = ecr2.store.read(|conn| images::resolve(conn, repo_id, &r))?;
        let image = found.ok_or_else(|| {
            super::image_not_found(&account, &rname, &format!("manifest unknown: {r:?}"))
        })?;
        if !head {
            let now = ecr2.clock.now_ms();
            ecr2.store
                .write(|tx| images::record_pull(tx, repo_id, &image.digest, now))?;
        }
        Ok(image)
    })
    .await?;
    let r = builder(StatusCode::OK)
        .header("Content-Type", image.media_type.as_str())
        .header("Docker-Content-Digest", image.digest.as_str())
        .header("Content-Length", image.manifest.len())
        .header("ETag", format!("\"{}\"", image.digest));
    let body = if head {
        Body::empty()
    } else {
        Body::from(image.manifest)
    };
    Ok(r.body(body).expect("a valid response"))
}

async fn read_limited(req: Request, limit: usize) -> Result<bytes::Bytes, Error> {
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| {
            err(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                format!("a manifest may be at most {limit} bytes"),
            )
        })
}

async fn put_manifest(
    ecr: &Arc<Ecr>,
    grant: &Grant,
    name: &str,
    reference: &str,
    req: Request,
) -> Result<Response<Body>, Error> {
    let repo = repository(ecr, grant, name).await?;
    let declared = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = read_limited(req, MAX_MANIFEST_BYTES).await?;
    let (tag, expected) = match Reference::parse(reference) {
        Reference::Tag(t) => (Some(t), None),
        Reference::Digest(d) => (None, Some(d)),
    };
    let ecr2 = ecr.clone();
    let pushed = blocking(move || {
        let now = ecr2.clock.now_ms();
        ecr2.store.write(|tx| {
            images::push(
                tx,
                &repo,
                &bytes,
                declared.as_deref(),
                tag.as_deref(),
                expected.as_deref(),
                now,
            )
        })
    })
    .await?;
    Ok(builder(StatusCode::CREATED)
        .header(
            "Location",
            format!("/v2/{name}/manifests/{}", pushed.digest),
        )
        .header("Docker-Content-Digest", pushed.digest.as_str())
        .body(Body::empty())
        .expect("a valid response"))
}

async fn delete_manifest(
    ecr: &Arc<Ecr>,
    grant: &Grant,
    name: &str,
    reference: &str,
) -> Result<Response<Body>, Error> {
    let repo = repository(ecr, grant, name).await?;
    let r = Reference::parse(reference);
    let ecr2 = ecr.clone();
    // By tag, the distribution protocol removes the tag only; by digest,
    // the image.
    let outcome = blocking(move || {
        let now = ecr2.clock.now_ms();
        ecr2.store.write(|tx| match &r {
            Reference::Tag(t) => images::untag(tx, repo.id, t),
            Reference::Digest(_) => images::delete(tx, repo.id, &r, now),
        })
    })
    .await?;
    match outcome {
        Ok(_) => {
            ecr.bus.wake(crate::events::Topic::Registry);
            Ok(builder(StatusCode::ACCEPTED)
                .body(Body::empty())
                .expect("a valid response"))
        }
        Err(DeleteRefused::NotFound) => Err(err(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
        )),
        Err(DeleteRefused::ReferencedByIndex) => Err(err(
            StatusCode::CONFLICT,
            "DENIED",
            "the manifest is referenced by a manifest list",
        )),
    }
}

/// `bytes=a-b` (or `a-`) of a blob of `size`.
fn parse_range(h: &str, size: u64) -> Option<(u64, u64)> {
    let spec = h.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end: u64 = if b.trim().is_empty() {
        size.checked_sub(1)?
    } else {
        b.trim().parse::<u64>().ok()?.min(size.checked_sub(1)?)
    };
    (start <= end && end < size).then_some((start, end))
}

async fn get_blob(
    ecr: &Arc<Ecr>,
    grant: &Grant,
    name: &str,
    digest: &str,
    req: Request,
) -> Result<Response<Body>, Error> {
    let head = req.method() == Method::HEAD;
    let repo = repository(ecr, grant, name).await?;
    let unknown = || {
        err(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("blob unknown to registry: {digest}"),
        )
    };
    if !valid_digest(digest) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("invalid digest {digest}"),
        ));
    }
    let (ecr2, d) = (ecr.clone(), digest.to_string());
    // A HEAD is how a push learns a layer is there and need not be sent:
    // the layer's grace in the repository starts again.
    let linked = blocking(move || {
        let linked = ecr2.store.read(|conn| layers::linked(conn, repo.id, &d))?;
        if let (true, Some(size)) = (head, linked) {
            let now = ecr2.clock.now_ms();
            ecr2.store
                .write(|tx| layers::link(tx, repo.id, &d, size, now))?;
        }
        Ok(linked)
    })
    .await?;
    if linked.is_none() {
        return Err(unknown());
    }
    let size = ecr.blobs.size(digest).ok_or_else(unknown)?;
    let range = req
        .headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut r = builder(StatusCode::OK)
        .header("Content-Type", "application/octet-stream")
        .header("Docker-Content-Digest", digest)
        .header("Accept-Ranges", "bytes")
        .header("ETag", format!("\"{digest}\""));
    let (start, end) = match range {
        Some(h) => match parse_range(&h, size) {
            Some((a, b)) => {
                r = r
                    .status(StatusCode::PARTIAL_CONTENT)
                    .header("Content-Range", format!("bytes {a}-{b}/{size}"));
                (a, b)
            }
            None => {
                return Err(err(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "BLOB_UNKNOWN",
                    format!("range {h} is not within {size} bytes"),
                ))
            }
        },
        None => (0, size.saturating_sub(1)),
    };
    let len = if size == 0 { 0 } else { end - start + 1 };
    r = r.header("Content-Length", len);
    if head || len == 0 {
        return Ok(r.body(Body::empty()).expect("a valid response"));
    }
    let file = ecr.blobs.open_blob(digest).map_err(io)?;
    let mut file = tokio::fs::File::from_std(file);
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(io)?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024);
    Ok(r.body(Body::from_stream(stream)).expect("a valid response"))
}

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn accepted_upload(name: &str, id: &str, size: u64) -> Response<Body> {
    let range = if size == 0 {
        "0-0".to_string()
    } else {
        format!("0-{}", size - 1)
    };
    builder(StatusCode::ACCEPTED)
        .header("Location", upload_location(name, id))
        .header("Docker-Upload-UUID", id)
        .header("Range", range)
        .header("Content-Length", 0)
        .body(Body::empty())
        .expect("a valid response")
}

fn blob_created(name: &str, digest: &str) -> Response<Body> {
    builder(StatusCode::CREATED)
        .header("Location", format!("/v2/{name}/blobs/{digest}"))
        .header("Docker-Content-Digest", digest)
        .header("Content-Length", 0)
        .body(Body::empty())
        .expect("a valid response")
}

async fn start_upload(
    ecr: &Arc<Ecr>,
    grant: &Grant,
    name: &str,
    req: Request,
) -> Result<Response<Body>, Error> {
    let repo = repository(ecr, grant, name).await?;
    // A cross-repository mount: the blob is linked at once when the
    // source repository (of the same account and region) holds it.
    if let (Some(digest), Some(from)) = (query(&req, "mount"), query(&req, "from")) {
        if valid_digest(&digest) {
            let (ecr2, grant2, d, target) = (ecr.clone(), grant.clone(), digest.clone(), repo.id);
            let mounted = blocking(move || {
                let now = ecr2.clock.now_ms();
                ecr2.store.write(|tx| {
                    let source = repositories::find(tx, &grant2.account, &grant2.region, &from)?;
                    match source {
                        Some(s) => match layers::linked(tx, s.id, &d)? {
                            Some(size) => {
                                layers::link(tx, target, &d, size, now)?;
                                Ok(true)
                            }
                            None => Ok(false),
                        },
                        None => Ok(false),
                    }
                })
            })
            .await?;
            if mounted {
                return Ok(blob_created(name, &digest));
            }
        }
    }
    let id = ecr.blobs.start().map_err(io)?;
    let (ecr2, id2) = (ecr.clone(), id.clone());
    blocking(move || {
        let now = ecr2.clock.now_ms();
        ecr2.store
            .write(|tx| layers::record_upload(tx, repo.id, &id2, now))
    })
    .await?;
    // A monolithic upload: the blob in the POST itself.
    if let Some(digest) = query(&req, "digest") {
        append_body(ecr, &id, req).await?;
        return finish(ecr, &repo, name, &id, &digest).await;
    }
    Ok(accepted_upload(name, &id, 0))
}

/// The upload `id` of `repo`, and its size so far.
async fn upload_of(ecr: &Arc<Ecr>, repo: &Repo, id: &str) -> Result<u64, Error> {
    let unknown = || {
        err(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            format!("blob upload unknown to registry: {id}"),
        )
    };
    let (ecr2, id2, repo_id) = (ecr.clone(), id.to_string(), repo.id);
    let owner = blocking(move || {
        ecr2.store
            .read(|conn| layers::upload_repository(conn, &id2))
    })
    .await?;
    if owner != Some(repo_id) {
        return Err(unknown());
    }
    ecr.blobs.upload_size(id).ok_or_else(unknown)
}

/// Stream a request's body onto the end of an upload.
async fn append_body(ecr: &Arc<Ecr>, id: &str, req: Request) -> Result<u64, Error> {
    let mut w = ecr.blobs.appender(id).map_err(io)?;
    let mut stream = req.into_body().into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            err(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                format!("the upload was cut short: {e}"),
            )
        })?;
        w.write(&chunk).map_err(io)?;
    }
    w.close().map_err(io)
}

async fn patch_upload(
    ecr: &Arc<Ecr>,
    grant: &Grant,
    name: &str,
    id: &str,
    req: Request,
) -> Result<Response<Body>, Error> {
    let repo = repository(ecr, grant, name).await?;
    let have = upload_of(ecr, &repo, id).await?;
    // A chunk must start where the upload ends.
    if let Some(range) = req
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
    {
        let start = range
            .trim_start_matches("bytes ")
            .split('-')
            .next()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if start != Some(have) {
            return Err(err(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                format!("the chunk {range} does not start at {have}, where the upload ends"),
            ));
        }
    }
    let size = append_body(ecr, id, req).await?;
    Ok(accepted_upload(name, id, size))
}

async fn finish(
    ecr: &Arc<Ecr>,
    repo: &Repo,
    name: &str,
    id: &str,
    digest: &str,
) -> Result<Response<Body>, Error> {
    if !valid_digest(digest) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("invalid digest {digest}"),
        ));
    }
    let (ecr2, repo2, id2, d) = (
        ecr.clone(),
        repo.clone(),
        id.to_string(),
        digest.to_string(),
    );
    blocking(move || {
        let now = ecr2.clock.now_ms();
        layers::finish(&ecr2, &repo2, &id2, &d, now)
    })
    .await?;
    Ok(blob_created(name, digest))
}

async fn put_upload(
    ecr: &Arc<Ecr>,
    grant: &Grant,
    name: &str,
    id: &str,
    req: Request,
) -> Result<Response<Body>, Error> {
    let repo = repository(ecr, grant, name).await?;
    upload_of(ecr, &repo, id).await?;
    let digest = query(&req, "digest").ok_or_else(|| {
        err(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "the digest parameter is required",
        )
    })?;
    append_body(ecr, id, req).await?;
    finish(ecr, &repo, name, id, &digest).await
}

async fn upload_status(
    ecr: &Arc<Ecr>,
    grant: &Grant,
    name: &str,
    id: &str,
) -> Result<Response<Body>, Error> {
    let repo = repository(ecr, grant, name).await?;
    let size = upload_of(ecr, &repo, id).await?;
    let mut r = accepted_upload(name, id, size);
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

async fn cancel_upload(
    ecr: &Arc<Ecr>,
    grant: &Grant,
    name: &str,
    id: &str,
) -> Result<Response<Body>, Error> {
    let repo = repository(ecr, grant, name).await?;
    upload_of(ecr, &repo, id).await?;
    ecr.blobs.cancel(id);
    let (ecr2, id2) = (ecr.clone(), id.to_string());
    blocking(move || ecr2.store.write(|tx| layers::forget_upload(tx, &id2))).await?;
    let mut r = builder(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .expect("a valid response");
    r.headers_mut()
        .insert("Content-Length", HeaderValue::from_static("0"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_split_names_with_slashes_from_the_end() {
        assert_eq!(
            route("team/app/tags/list"),
            Some(Route::Tags("team/app".into()))
        );
        assert_eq!(
            route("a/b/manifests/v1"),
            Some(Route::Manifest("a/b".into(), "v1".into()))
        );
        assert_eq!(route("a/blobs/uploads/"), Some(Route::Uploads("a".into())));
        assert_eq!(
            route("a/b/blobs/uploads/abc"),
            Some(Route::Upload("a/b".into(), "abc".into()))
        );
        assert_eq!(
            route("a/blobs/sha256:00"),
            Some(Route::Blob("a".into(), "sha256:00".into()))
        );
        assert_eq!(route("nothing"), None);
        // A name may hold `manifests` or `blobs` as a component.
        assert_eq!(
            route("team/manifests/app/blobs/uploads/"),
            Some(Route::Uploads("team/manifests/app".into()))
        );
        assert_eq!(
            route("team/blobs/x/manifests/v1"),
            Some(Route::Manifest("team/blobs/x".into(), "v1".into()))
        );
        assert_eq!(route("/manifests/v1"), None);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=2-5", 10), Some((2, 5)));
        assert_eq!(parse_range("bytes=2-", 10), Some((2, 9)));
        assert_eq!(parse_range("bytes=2-50", 10), Some((2, 9)));
        assert_eq!(parse_range("bytes=12-15", 10), None);
        assert_eq!(parse_range("items=1-2", 10), None);
    }
}
