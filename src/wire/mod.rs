//! The wire layer: the only code that knows HTTP, JSON 1.1, Query/XML and
//! SigV4. A request is authenticated, routed to a service and operation,
//! decoded into a JSON value, validated against the service model, handed to
//! the service, and the result (or the `ApiError`) is encoded in the
//! protocol's shape. Every response carries `x-amzn-RequestId`.
//!
//! Routing: JSON 1.1 requests by the `X-Amz-Target` prefix; Query requests by
//! the service name in the SigV4 credential scope. EC2 (signing name `ec2`)
//! speaks its own dialect of Query (`ec2query`).

pub mod ec2query;
pub mod query;
pub mod sigv4;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use bytes::Bytes;
use chrono::Utc;
use serde_json::Value;

use crate::config::Credentials;
use crate::context::Ctx;
use crate::ecs::Ecs;
use crate::error::ApiError;
use crate::model::{self, Model};
use crate::sts;
use sigv4::AuthFailure;

/// Requests larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Everything the wire layer dispatches to.
pub struct App {
    pub ecs: Ecs,
    pub logs: crate::logs::Logs,
    pub credentials: Credentials,
    /// Check every response against the model's output shape and fail the
    /// call (500) when it emits a field the model does not declare.
    pub strict_output: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    Json,
    Query,
    /// EC2's Query dialect: flattened lists, no result wrapper, its own errors.
    Ec2,
}

/// A JSON 1.1 service Berth serves.
#[derive(Clone, Copy, Debug)]
enum JsonService {
    Ecs,
    Logs,
    /// Berth's own operations (`platform`).
    Berth,
}

fn json_service(prefix: &str) -> Option<(JsonService, &'static Model)> {
    if Some(prefix) == model::ecs().target_prefix.as_deref() {
        return Some((JsonService::Ecs, model::ecs()));
    }
    if Some(prefix) == model::logs().target_prefix.as_deref() {
        return Some((JsonService::Logs, model::logs()));
    }
    if Some(prefix) == model::berth().target_prefix.as_deref() {
        return Some((JsonService::Berth, model::berth()));
    }
    None
}

/// A Query service Berth serves, by SigV4 signing name.
#[derive(Clone, Copy, Debug)]
enum QueryService {
    Sts,
    Ec2,
    AutoScaling,
}

fn query_service(signing_name: &str) -> Option<(QueryService, &'static Model)> {
    match signing_name {
        "sts" => Some((QueryService::Sts, model::sts())),
        "ec2" => Some((QueryService::Ec2, model::ec2())),
        "autoscaling" => Some((QueryService::AutoScaling, model::autoscaling())),
        _ => None,
    }
}

struct Failure {
    protocol: Protocol,
    error: ApiError,
}

/// The one entry point for API calls (`POST /`).
pub async fn handle(
    app: Arc<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let protocol = if headers.contains_key("x-amz-target") {
        Protocol::Json
    } else if headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
    {
        if scope_service(&headers).as_deref() == Some("ec2") {
            Protocol::Ec2
        } else {
            Protocol::Query
        }
    } else {
        Protocol::Json
    };
    let result = dispatch(app, protocol, method, uri, headers, body, &request_id).await;
    match result {
        Ok(resp) => resp,
        Err(f) => error_response(f.protocol, &f.error, &request_id),
    }
}

async fn dispatch(
    app: Arc<App>,
    protocol: Protocol,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    request_id: &str,
) -> Result<Response<Body>, Failure> {
    let fail = |error: ApiError| Failure { protocol, error };
    if body.len() > MAX_BODY_BYTES {
        return Err(fail(too_large()));
    }
    if method != Method::POST {
        return Err(fail(
            ApiError::unknown_operation(format!(
                "{method} is not supported: every API call is POST /."
            ))
            .with_status(405),
        ));
    }
    let now = Utc::now();
    let auth = authenticate(&app.credentials, &method, &uri, &headers, &body, now)
        .map_err(|f| fail(auth_error(protocol, f)))?;
    let key = app
        .credentials
        .get(&auth.access_key)
        .expect("verified key exists");
    let ctx = Ctx {
        account: key.account.clone(),
        region: auth.region.clone(),
        access_key: auth.access_key.clone(),
        principal_arn: format!("arn:aws:iam::{}:root", key.account),
        request_id: request_id.to_string(),
        now,
    };
    match protocol {
        Protocol::Json => {
            let target = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
            let (service, model) = json_service(prefix).ok_or_else(|| {
                fail(ApiError::unknown_operation(format!(
                    "Unknown target '{target}'."
                )))
            })?;
            let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
                Value::Object(Default::default())
            } else {
                serde_json::from_slice(&body).map_err(|e| {
                    fail(ApiError::serialization(format!(
                        "The request body is not valid JSON: {e}."
                    )))
                })?
            };
            if !input.is_object() {
                return Err(fail(ApiError::serialization(
                    "The request body must be a JSON object.",
                )));
            }
            model.validate_input(operation, &input).map_err(fail)?;
            let op = operation.to_string();
            let app2 = app.clone();
            let output = tokio::task::spawn_blocking(move || match service {
                JsonService::Ecs => app2.ecs.handle(&ctx, &op, input),
                JsonService::Logs => app2.logs.handle(&ctx, &op, input),
                JsonService::Berth => crate::platform::handle(&app2.ecs, &ctx, &op, input),
            })
            .await
            .map_err(|e| fail(ApiError::internal(format!("handler panicked: {e}"))))?
            .map_err(fail)?;
            check_output(&app, model, operation, &output).map_err(fail)?;
            let mut resp = Response::new(Body::from(output.to_string()));
            resp.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("application/x-amz-json-1.1"),
            );
            with_request_id(&mut resp, request_id);
            Ok(resp)
        }
        Protocol::Query | Protocol::Ec2 => {
            let params: BTreeMap<String, String> =
                url::form_urlencoded::parse(&body).into_owned().collect();
            let action = params.get("Action").cloned().unwrap_or_default();
            let (service, model) = query_service(&auth.service).ok_or_else(|| {
                fail(ApiError::unknown_operation(format!(
                    "Unknown service '{}' for action '{action}'.",
                    auth.service
                )))
            })?;
            let Some(op) = model.operations.get(&action) else {
                if let QueryService::Ec2 = service {
                    return Err(fail(ApiError::new(
                        "InvalidAction",
                        format!("The action {action} is not valid for this web service."),
                    )));
                }
                return Err(fail(ApiError::unknown_operation(format!(
                    "Could not find operation {action} for version {}.",
                    params.get("Version").map(String::as_str).unwrap_or("")
                ))));
            };
            if let QueryService::Ec2 = service {
                return dispatch_ec2(app, ctx, model, &action, &params, request_id).await;
            }
            let input = match &op.input {
                Some(shape) => query::decode_input(model, shape, &params),
                None => Value::Object(Default::default()),
            };
            let output = match service {
                QueryService::Sts => {
                    model.validate_input(&action, &input).map_err(fail)?;
                    sts::handle(&ctx, &action, input)
                }
                QueryService::AutoScaling => {
                    model
                        .validate_input(&action, &input)
                        .map_err(|e| fail(crate::autoscaling::validation_error(e)))?;
                    let (app2, op) = (app.clone(), action.clone());
                    tokio::task::spawn_blocking(move || {
                        crate::autoscaling::handle(&app2.ecs, &ctx, &op, input)
                    })
                    .await
                    .map_err(|e| fail(ApiError::internal(format!("handler panicked: {e}"))))?
                }
                QueryService::Ec2 => unreachable!("EC2 is dispatched above"),
            }
            .map_err(fail)?;
            check_output(&app, model, &action, &output).map_err(fail)?;
            let xml = query::encode_response(model, &action, &output, request_id);
            let mut resp = Response::new(Body::from(xml));
            resp.headers_mut()
                .insert("content-type", HeaderValue::from_static("text/xml"));
            with_request_id(&mut resp, request_id);
            Ok(resp)
        }
    }
}

/// An EC2 call: decoded and answered in EC2's Query dialect.
async fn dispatch_ec2(
    app: Arc<App>,
    ctx: Ctx,
    model: &'static Model,
    action: &str,
    params: &BTreeMap<String, String>,
    request_id: &str,
) -> Result<Response<Body>, Failure> {
    let fail = |error: ApiError| Failure {
        protocol: Protocol::Ec2,
        error,
    };
    let input = match model.operations.get(action).and_then(|o| o.input.as_ref()) {
        Some(shape) => ec2query::decode_input(model, shape, params),
        None => Value::Object(Default::default()),
    };
    crate::ec2::validate(action, &input).map_err(fail)?;
    model
        .validate_input(action, &input)
        .map_err(|e| fail(ec2query::validation_error(e)))?;
    let op = action.to_string();
    let app2 = app.clone();
    let output =
        tokio::task::spawn_blocking(move || crate::ec2::handle(&app2.ecs, &ctx, &op, input))
            .await
            .map_err(|e| fail(ApiError::internal(format!("handler panicked: {e}"))))?
            .map_err(fail)?;
    check_output(&app, model, action, &output).map_err(fail)?;
    let xml = ec2query::encode_response(model, action, &output, request_id);
    let mut resp = Response::new(Body::from(xml));
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/xml;charset=UTF-8"),
    );
    with_request_id(&mut resp, request_id);
    Ok(resp)
}

/// The service of the SigV4 credential scope in the `Authorization` header
/// (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`), read before the
/// signature is verified so that even authentication errors come in the
/// service's protocol.
fn scope_service(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let cred = auth.split("Credential=").nth(1)?;
    let scope = cred.split([',', ' ']).next()?;
    let parts: Vec<&str> = scope.split('/').collect();
    (parts.len() == 5).then(|| parts[3].to_string())
}

fn check_output(app: &App, model: &Model, operation: &str, output: &Value) -> Result<(), ApiError> {
    if !app.strict_output {
        return Ok(());
    }
    let extra = model.undeclared_output_fields(operation, output);
    if extra.is_empty() {
        Ok(())
    } else {
        tracing::error!(
            operation,
            ?extra,
            "response has fields the model does not declare"
        );
        Err(ApiError::internal(format!(
            "strict output: {operation} emitted fields the model does not declare: {}",
            extra.join(", ")
        )))
    }
}

fn authenticate(
    credentials: &Credentials,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: chrono::DateTime<Utc>,
) -> Result<sigv4::Authorization, AuthFailure> {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let parts = sigv4::RequestParts {
        method: method.as_str(),
        raw_path: uri.path(),
        raw_query: uri.query().unwrap_or(""),
        headers: &pairs,
        body,
    };
    sigv4::verify(&parts, now, |k| {
        credentials.get(k).map(|key| key.secret.clone())
    })
}

/// Map a SigV4 failure to the error each protocol uses for it.
fn auth_error(protocol: Protocol, f: AuthFailure) -> ApiError {
    let json = protocol == Protocol::Json;
    match f {
        AuthFailure::Missing => ApiError::new(
            if json { "MissingAuthenticationTokenException" } else { "MissingAuthenticationToken" },
            "Missing Authentication Token",
        )
        .with_status(if json { 400 } else { 403 }),
        AuthFailure::Malformed(m) => ApiError::new(
            if json { "IncompleteSignatureException" } else { "IncompleteSignature" },
            m,
        )
        .with_status(if json { 400 } else { 403 }),
        AuthFailure::UnknownKey(k) => ApiError::new(
            if json { "UnrecognizedClientException" } else { "InvalidClientTokenId" },
            format!("The security token included in the request is invalid (unknown access key '{k}')."),
        )
        .with_status(if json { 400 } else { 403 }),
        AuthFailure::BadSignature => ApiError::new(
            if json { "InvalidSignatureException" } else { "SignatureDoesNotMatch" },
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        )
        .with_status(if json { 400 } else { 403 }),
        AuthFailure::Expired { request_time, now } => ApiError::new(
            if json { "InvalidSignatureException" } else { "SignatureDoesNotMatch" },
            format!(
                "Signature expired: {request_time} is now earlier than or later than {now} by more than 15 minutes."
            ),
        )
        .with_status(if json { 400 } else { 403 }),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        "RequestEntityTooLargeException",
        format!("Request body is larger than {MAX_BODY_BYTES} bytes."),
    )
    .with_status(413)
}

fn with_request_id(resp: &mut Response<Body>, request_id: &str) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v.clone());
        resp.headers_mut().insert("x-amz-request-id", v);
    }
}

fn error_response(protocol: Protocol, err: &ApiError, request_id: &str) -> Response<Body> {
    let (body, content_type) = match protocol {
        Protocol::Json => (
            serde_json::json!({"__type": err.code, "message": err.message}).to_string(),
            "application/x-amz-json-1.1",
        ),
        Protocol::Query => (query::encode_error(err, request_id), "text/xml"),
        Protocol::Ec2 => (
            ec2query::encode_error(err, request_id),
            "text/xml;charset=UTF-8",
        ),
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    if protocol == Protocol::Json {
        if let Ok(v) = HeaderValue::from_str(&err.code) {
            resp.headers_mut().insert("x-amzn-errortype", v);
        }
    }
    with_request_id(&mut resp, request_id);
    resp
}

/// The error response for a body over the limit, before it is read whole.
pub fn too_large_response(headers: &HeaderMap) -> Response<Body> {
    let protocol = if headers.contains_key("x-amz-target") {
        Protocol::Json
    } else {
        Protocol::Query
    };
    error_response(protocol, &too_large(), &uuid::Uuid::new_v4().to_string())
}
