//! The wire layer: the only code that knows HTTP, JSON 1.1, Query/XML and
//! SigV4. Every API call, whatever its protocol, passes one pipeline:
//!
//! ```text
//! route (which service, which protocol) → authenticate (SigV4, scope) →
//! decode → validate against the model → authorize → handle → check → encode
//! ```
//!
//! Services are registered once in a [`Registry`] (`service.rs`); the
//! pipeline knows nothing specific to any of them. JSON 1.1 requests are
//! routed by the `X-Amz-Target` prefix, Query requests (both dialects,
//! `form.rs`) by the service of the SigV4 credential scope. A request for a
//! service or operation Berth does not serve (any protocol, REST ones
//! included) gets one clear answer in that service's own error shape
//! (`unserved.rs`). Every response carries `x-amzn-RequestId`.

pub mod authorize;
pub mod form;
pub mod identity;
pub mod service;
pub mod sigv4;
pub mod unserved;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use bytes::Bytes;
use serde_json::Value;

use crate::clock::Clock;
use crate::context::Ctx;
use crate::error::ApiError;
use authorize::Authorizer;
use form::Dialect;
use identity::{Caller, Identities};
pub use service::{Empty, Protocol, Registry, Service};
use sigv4::AuthFailure;

/// Requests larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Everything the pipeline needs.
pub struct App {
    pub registry: Registry,
    /// Who each access key speaks for.
    pub identities: Arc<dyn Identities>,
    pub authorizer: Box<dyn Authorizer>,
    pub clock: Arc<dyn Clock>,
    /// Check every response against the model's output shape and fail the
    /// call (500) when it emits a field the model does not declare.
    pub strict_output: bool,
    /// What the server measures, served at `GET /_berth/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl App {
    /// An app for in-process callers (tests): the default keys, every call
    /// allowed, the system clock, responses checked against the model.
    pub fn in_process(registry: Registry) -> App {
        App {
            registry,
            identities: Arc::new(crate::config::Credentials::default()),
            authorizer: Box::new(authorize::AllowAll),
            clock: Arc::new(crate::clock::SystemClock),
            strict_output: true,
            metrics: Arc::default(),
        }
    }

    /// The pipeline's steps after a request is authenticated and decoded:
    /// validate against the model, authorize, handle, check the answer.
    /// In-process callers (tests) enter here.
    pub fn call(
        &self,
        service: &Service,
        ctx: &Ctx,
        operation: &str,
        input: Value,
    ) -> Result<Value, ApiError> {
        // Validate.
        let known = service.model.operations.contains_key(operation);
        if !service.serves(operation) {
            let e = if known || service.model.subset {
                unserved::operation(service.name, operation)
            } else {
                ApiError::unknown_operation(format!(
                    "{} has no operation {operation}.",
                    service.name
                ))
            };
            return Err(match service.protocol {
                Protocol::Query(Dialect::Ec2) => ApiError::new("InvalidAction", e.message),
                _ => e,
            });
        }
        (service.precheck)(operation, &input)?;
        service
            .model
            .validate_input(operation, &input)
            .map_err(service.validation_errors)?;
        // Authorize.
        let request = authorize::Request {
            principal: &ctx.principal_arn,
            account: &ctx.account,
            access_key: &ctx.access_key,
            region: &ctx.region,
            now_ms: ctx.now.timestamp_millis(),
            action: format!("{}:{operation}", service.iam_prefix),
            resources: (service.resources)(ctx, operation, &input),
        };
        self.authorizer
            .authorize(&request)
            .map_err(|e| authorize::in_protocol(service.protocol, e))?;
        // Handle, and check the answer.
        let output = service
            .call(ctx, operation, input)
            .map_err(|e| authorize::in_protocol(service.protocol, e))?;
        check_output(self, service, operation, &output)?;
        Ok(output)
    }

    /// [`App::call`] on the service registered under `name`.
    pub fn call_named(
        &self,
        name: &str,
        ctx: &Ctx,
        operation: &str,
        input: Value,
    ) -> Result<Value, ApiError> {
        let service = self
            .registry
            .services()
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no service {name} is registered"))
            .clone();
        self.call(&service, ctx, operation, input)
    }
}

/// The shape an answer (or an error) is encoded in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    Json,
    Query(Dialect),
    /// REST-JSON services (Lambda, EKS, …): `x-amzn-ErrorType` and a JSON body.
    RestJson,
    /// REST-XML services (S3): `<Error><Code>…`.
    RestXml,
    /// Smithy RPC v2 CBOR (CloudWatch): a CBOR map.
    Cbor,
}

impl Shape {
    fn of(protocol: Protocol) -> Shape {
        match protocol {
            Protocol::Json => Shape::Json,
            Protocol::Query(d) => Shape::Query(d),
        }
    }

    /// The shape of a service botocore names by protocol.
    fn of_botocore(protocol: Option<&str>) -> Shape {
        match protocol {
            Some("json") => Shape::Json,
            Some("query") => Shape::Query(Dialect::Standard),
            Some("ec2") => Shape::Query(Dialect::Ec2),
            Some("rest-xml") => Shape::RestXml,
            Some("smithy-rpc-v2-cbor") => Shape::Cbor,
            _ => Shape::RestJson,
        }
    }

    /// Whether its services name errors as JSON services do
    /// (`InvalidSignatureException`) rather than as Query ones
    /// (`SignatureDoesNotMatch`).
    fn json_codes(self) -> bool {
        matches!(self, Shape::Json | Shape::RestJson | Shape::Cbor)
    }
}

/// Where a request goes.
enum Route {
    Served {
        service: Arc<Service>,
        /// Query requests: the decoded form.
        form: Option<BTreeMap<String, String>>,
        /// JSON requests: the operation from the target.
        operation: Option<String>,
    },
    Unserved {
        shape: Shape,
        service: String,
        operation: Option<String>,
    },
    /// Not an AWS API call at all.
    Nothing { shape: Shape, error: ApiError },
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn is_form(headers: &HeaderMap) -> bool {
    header(headers, "content-type")
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// Which service a request is for, and in which protocol it speaks.
fn route(
    registry: &Registry,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Route {
    if let Some(target) = header(headers, "x-amz-target") {
        let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
        return match registry.by_target_prefix(prefix) {
            Some(s) => Route::Served {
                service: s.clone(),
                form: None,
                operation: Some(operation.to_string()),
            },
            None => Route::Unserved {
                shape: Shape::Json,
                service: unserved::by_target_prefix(prefix)
                    .map_or_else(|| format!("service of target '{prefix}'"), |s| s.id.clone()),
                operation: (!operation.is_empty()).then(|| operation.to_string()),
            },
        };
    }
    let scope = scope_service(headers);
    if header(headers, "smithy-protocol") == Some("rpc-v2-cbor") {
        // /service/<ServiceName>/operation/<Operation>
        let parts: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
        let (svc, op) = match parts.as_slice() {
            ["service", svc, "operation", op] => (Some(*svc), Some(op.to_string())),
            _ => (None, None),
        };
        let name = svc
            .and_then(unserved::by_target_prefix)
            .or_else(|| scope.as_deref().and_then(unserved::by_signing_name))
            .map_or_else(|| "this service".to_string(), |s| s.id.clone());
        return Route::Unserved {
            shape: Shape::Cbor,
            service: name,
            operation: op,
        };
    }
    if *method == Method::POST && is_form(headers) {
        let form: BTreeMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let scope = scope.unwrap_or_default();
        if let Some(s) = registry.by_query_signing_name(&scope) {
            return Route::Served {
                service: s.clone(),
                form: Some(form),
                operation: None,
            };
        }
        // Signed for a service other than the one whose API version and
        // action the form names: that service answers (its scope check
        // refuses the call).
        let version = form.get("Version").map(String::as_str).unwrap_or("");
        let action = form.get("Action").map(String::as_str).unwrap_or("");
        if let Some(s) = registry.services().iter().find(|s| {
            matches!(s.protocol, Protocol::Query(_))
                && s.model.api_version == version
                && s.model.operations.contains_key(action)
        }) {
            return Route::Served {
                service: s.clone(),
                form: Some(form),
                operation: None,
            };
        }
        let known = unserved::by_signing_name(&scope);
        return Route::Unserved {
            shape: Shape::Query(if scope == "ec2" {
                Dialect::Ec2
            } else {
                Dialect::Standard
            }),
            service: known.map_or_else(|| format!("service '{scope}'"), |s| s.id.clone()),
            operation: form.get("Action").cloned(),
        };
    }
    // A REST call (S3, Lambda, …), named by its credential scope.
    if let Some(known) = scope.as_deref().and_then(unserved::by_signing_name) {
        let shape = Shape::of_botocore(known.protocol.as_deref());
        let shape = if matches!(shape, Shape::Json | Shape::Query(_)) {
            // A JSON or Query service reached some other way than POST /.
            return Route::Nothing {
                shape,
                error: not_post(method),
            };
        } else {
            shape
        };
        return Route::Unserved {
            shape,
            service: known.id.clone(),
            operation: unserved::rest_operation(
                known,
                method.as_str(),
                uri.path(),
                uri.query().unwrap_or(""),
            )
            .map(str::to_string),
        };
    }
    if let Some(scope) = scope {
        return Route::Unserved {
            shape: Shape::RestJson,
            service: format!("service '{scope}'"),
            operation: None,
        };
    }
    Route::Nothing {
        shape: Shape::Json,
        error: if uri.path() == "/" {
            not_post(method)
        } else {
            ApiError::new(
                "UnknownOperationException",
                format!(
                    "Berth serves AWS APIs at POST / (SigV4-signed) and its health at GET /_berth/health; {} {} is neither.",
                    method,
                    uri.path()
                ),
            )
            .with_status(404)
        },
    }
}

fn not_post(method: &Method) -> ApiError {
    ApiError::unknown_operation(format!(
        "{method} is not supported: every API call is POST /."
    ))
    .with_status(405)
}

/// The one entry point for API calls.
pub async fn handle(
    app: Arc<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let route = route(&app.registry, &method, &uri, &headers, &body);
    let (shape, result) = match route {
        Route::Nothing { shape, error } => (shape, Err(error)),
        Route::Unserved {
            shape,
            service,
            operation,
        } => {
            let mut e = unserved::service(&service, operation.as_deref(), &app.registry.served());
            if shape == Shape::RestXml {
                // S3's own words for what it does not implement.
                e.code = "NotImplemented".into();
                e.status = 501;
            }
            (shape, Err(e))
        }
        Route::Served {
            service,
            form,
            operation,
        } => {
            let shape = Shape::of(service.protocol);
            let r = serve(
                &app,
                &service,
                form,
                operation,
                &method,
                &uri,
                &headers,
                &body,
                &request_id,
            )
            .await;
            (shape, r)
        }
    };
    let mut resp = match result {
        Ok(resp) => resp,
        Err(e) => error_response(shape, &e, &request_id),
    };
    with_request_id(&mut resp, &request_id);
    resp
}

/// A call to a served service, through every step of the pipeline.
#[allow(clippy::too_many_arguments)]
async fn serve(
    app: &Arc<App>,
    service: &Arc<Service>,
    form: Option<BTreeMap<String, String>>,
    operation: Option<String>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    request_id: &str,
) -> Result<Response<Body>, ApiError> {
    let shape = Shape::of(service.protocol);
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    if *method != Method::POST {
        return Err(not_post(method));
    }
    // Authenticate.
    let now = app.clock.now();
    let (auth, caller) = authenticate(app.identities.as_ref(), method, uri, headers, body, now)
        .map_err(|f| auth_error(shape, f))?;
    if auth.service != service.signing_name {
        return Err(auth_error(
            shape,
            AuthFailure::WrongService(service.signing_name.to_string()),
        ));
    }
    let ctx = Ctx {
        account: caller.account,
        region: auth.region.clone(),
        access_key: auth.access_key.clone(),
        principal_arn: caller.principal_arn,
        request_id: request_id.to_string(),
        now,
    };
    // Decode.
    let model = service.model;
    let (operation, input) = match (&form, service.protocol) {
        (Some(params), Protocol::Query(dialect)) => {
            let action = params.get("Action").cloned().unwrap_or_default();
            let input = match model.operations.get(&action).and_then(|o| o.input.as_ref()) {
                Some(shape) => form::decode_input(dialect, model, shape, params),
                None => Value::Object(Default::default()),
            };
            (action, input)
        }
        _ => {
            let operation = operation.unwrap_or_default();
            let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
                Value::Object(Default::default())
            } else {
                serde_json::from_slice(body).map_err(|e| {
                    ApiError::serialization(format!("The request body is not valid JSON: {e}."))
                })?
            };
            if !input.is_object() {
                return Err(ApiError::serialization(
                    "The request body must be a JSON object.",
                ));
            }
            (operation, input)
        }
    };
    let (app2, svc, op) = (app.clone(), service.clone(), operation.clone());
    let output = tokio::task::spawn_blocking(move || app2.call(&svc, &ctx, &op, input))
        .await
        .map_err(|e| ApiError::internal(format!("handler panicked: {e}")))??;
    // Encode.
    let (body, content_type) = match service.protocol {
        Protocol::Json => (output.to_string(), "application/x-amz-json-1.1"),
        Protocol::Query(dialect) => (
            form::encode_response(dialect, model, &operation, &output, request_id),
            match dialect {
                Dialect::Standard => "text/xml",
                Dialect::Ec2 => "text/xml;charset=UTF-8",
            },
        ),
    };
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    Ok(resp)
}

/// The service of the SigV4 credential scope in the `Authorization` header
/// (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`), read before the
/// signature is verified so that even authentication errors come in the
/// service's protocol.
fn scope_service(headers: &HeaderMap) -> Option<String> {
    let auth = header(headers, "authorization")?;
    let cred = auth.split("Credential=").nth(1)?;
    let scope = cred.split([',', ' ']).next()?;
    let parts: Vec<&str> = scope.split('/').collect();
    (parts.len() == 5).then(|| parts[3].to_string())
}

fn check_output(
    app: &App,
    service: &Service,
    operation: &str,
    output: &Value,
) -> Result<(), ApiError> {
    if !app.strict_output {
        return Ok(());
    }
    let extra = service.model.undeclared_output_fields(operation, output);
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

/// Verify a request's signature with its access key's secret, and the
/// session token temporary credentials must carry.
fn authenticate(
    identities: &dyn Identities,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(sigv4::Authorization, Caller), AuthFailure> {
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
    let found = std::cell::RefCell::new(None);
    let auth = sigv4::verify(&parts, now, |k| {
        // A store failure reads as an unknown key; it is logged.
        let caller = identities.lookup(k).unwrap_or_else(|e| {
            tracing::error!(error = %e.message, "looking up an access key");
            None
        })?;
        let secret = caller.secret.clone();
        *found.borrow_mut() = Some(caller);
        Some(secret)
    })?;
    let caller = found.into_inner().ok_or(AuthFailure::BadSignature)?;
    let token = header(headers, "x-amz-security-token");
    match (&caller.session, token) {
        (None, None) => {}
        (Some(s), Some(t)) if identity::token_digest(t) == s.token_sha256 => {
            if now.timestamp_millis() >= s.expires_ms {
                return Err(AuthFailure::ExpiredToken);
            }
        }
        _ => return Err(AuthFailure::InvalidToken),
    }
    Ok((auth, caller))
}

/// Map a SigV4 failure to the error each protocol uses for it.
fn auth_error(shape: Shape, f: AuthFailure) -> ApiError {
    let json = shape.json_codes();
    let (json_code, query_code) = match &f {
        AuthFailure::Missing => (
            "MissingAuthenticationTokenException",
            "MissingAuthenticationToken",
        ),
        AuthFailure::Malformed(_) => ("IncompleteSignatureException", "IncompleteSignature"),
        AuthFailure::UnknownKey(_) | AuthFailure::InvalidToken => {
            ("UnrecognizedClientException", "InvalidClientTokenId")
        }
        AuthFailure::ExpiredToken => ("ExpiredTokenException", "ExpiredToken"),
        AuthFailure::BadSignature | AuthFailure::Expired { .. } | AuthFailure::WrongService(_) => {
            ("InvalidSignatureException", "SignatureDoesNotMatch")
        }
    };
    let message = match f {
        AuthFailure::Missing => "Missing Authentication Token".to_string(),
        AuthFailure::Malformed(m) => m,
        AuthFailure::UnknownKey(k) => format!(
            "The security token included in the request is invalid (unknown access key '{k}')."
        ),
        AuthFailure::BadSignature => "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".to_string(),
        AuthFailure::Expired { request_time, now } => format!(
            "Signature expired: {request_time} is now earlier than or later than {now} by more than 15 minutes."
        ),
        AuthFailure::WrongService(s) => {
            format!("Credential should be scoped to correct service: '{s}'. ")
        }
        AuthFailure::InvalidToken => {
            "The security token included in the request is invalid.".to_string()
        }
        AuthFailure::ExpiredToken => {
            "The security token included in the request is expired".to_string()
        }
    };
    ApiError::new(if json { json_code } else { query_code }, message).with_status(if json {
        400
    } else {
        403
    })
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

fn error_response(shape: Shape, err: &ApiError, request_id: &str) -> Response<Body> {
    let escape = |s: &str| quick_xml::escape::escape(s).into_owned();
    let (body, content_type): (Vec<u8>, &'static str) = match shape {
        Shape::Json => (
            serde_json::json!({"__type": err.code, "message": err.message})
                .to_string()
                .into_bytes(),
            "application/x-amz-json-1.1",
        ),
        Shape::RestJson => (
            serde_json::json!({"message": err.message, "code": err.code})
                .to_string()
                .into_bytes(),
            "application/json",
        ),
        Shape::Query(dialect) => (
            form::encode_error(dialect, err, request_id).into_bytes(),
            match dialect {
                Dialect::Standard => "text/xml",
                Dialect::Ec2 => "text/xml;charset=UTF-8",
            },
        ),
        Shape::RestXml => (
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId></Error>\n",
                escape(&err.code),
                escape(&err.message),
                escape(request_id)
            )
            .into_bytes(),
            "application/xml",
        ),
        Shape::Cbor => (
            cbor_text_map(&[("__type", &err.code), ("message", &err.message)]),
            "application/cbor",
        ),
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    if shape.json_codes() {
        if let Ok(v) = HeaderValue::from_str(&err.code) {
            resp.headers_mut().insert("x-amzn-errortype", v);
        }
    }
    if shape == Shape::Cbor {
        resp.headers_mut()
            .insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    }
    resp
}

/// A CBOR map of text keys to text values (RFC 8949), all an error needs.
fn cbor_text_map(entries: &[(&str, &str)]) -> Vec<u8> {
    fn head(out: &mut Vec<u8>, major: u8, n: usize) {
        let m = major << 5;
        match n {
            0..=23 => out.push(m | n as u8),
            24..=0xff => out.extend([m | 24, n as u8]),
            0x100..=0xffff => {
                out.push(m | 25);
                out.extend((n as u16).to_be_bytes());
            }
            _ => {
                out.push(m | 26);
                out.extend((n as u32).to_be_bytes());
            }
        }
    }
    let mut out = Vec::new();
    head(&mut out, 5, entries.len());
    for (k, v) in entries {
        for s in [k, v] {
            head(&mut out, 3, s.len());
            out.extend(s.as_bytes());
        }
    }
    out
}

/// The error response for a body over the limit, before it is read whole.
pub fn too_large_response(headers: &HeaderMap) -> Response<Body> {
    let shape = if headers.contains_key("x-amz-target") || !is_form(headers) {
        Shape::Json
    } else {
        Shape::Query(Dialect::Standard)
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut resp = error_response(shape, &too_large(), &request_id);
    with_request_id(&mut resp, &request_id);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity::SessionToken;

    /// One temporary key (`ASIA1`, token `tok`, valid until `UNTIL`) and
    /// one long-term key (`AKIA1`).
    struct Keys;
    const UNTIL: i64 = 1_700_000_600_000;

    impl Identities for Keys {
        fn lookup(&self, access_key: &str) -> Result<Option<Caller>, ApiError> {
            Ok(match access_key {
                "ASIA1" => Some(Caller {
                    account: "111122223333".into(),
                    principal_arn: "arn:aws:sts::111122223333:assumed-role/r/s".into(),
                    secret: "s1".into(),
                    session: Some(SessionToken {
                        token_sha256: identity::token_digest("tok"),
                        expires_ms: UNTIL,
                    }),
                }),
                "AKIA1" => Some(Caller {
                    account: "111122223333".into(),
                    principal_arn: "arn:aws:iam::111122223333:user/u".into(),
                    secret: "s2".into(),
                    session: None,
                }),
                _ => None,
            })
        }
    }

    /// Authenticate, at `now_ms`, a request signed then with `key` and
    /// `secret` and carrying `token`.
    fn check(
        key: &str,
        secret: &str,
        token: Option<&str>,
        now_ms: i64,
    ) -> Result<Caller, AuthFailure> {
        let now = chrono::DateTime::from_timestamp_millis(now_ms).unwrap();
        let mut headers = vec![("host".to_string(), "localhost".to_string())];
        if let Some(t) = token {
            headers.push(("x-amz-security-token".into(), t.into()));
        }
        let signer = sigv4::Signer {
            access_key: key.into(),
            secret_key: secret.into(),
            region: "us-east-1".into(),
            service: "sts".into(),
        };
        let signed = signer.sign("POST", "/", "", &headers, b"", now);
        let mut map = HeaderMap::new();
        for (n, v) in headers.iter().chain(&signed) {
            map.insert(
                axum::http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let uri: Uri = "/".parse().unwrap();
        authenticate(&Keys, &Method::POST, &uri, &map, b"", now).map(|(_, c)| c)
    }

    #[test]
    fn temporary_keys_need_their_token_until_they_expire() {
        let before = UNTIL - 1000;
        let c = check("ASIA1", "s1", Some("tok"), before).unwrap();
        assert_eq!(
            c.principal_arn,
            "arn:aws:sts::111122223333:assumed-role/r/s"
        );
        assert!(matches!(
            check("ASIA1", "s1", None, before),
            Err(AuthFailure::InvalidToken)
        ));
        assert!(matches!(
            check("ASIA1", "s1", Some("other"), before),
            Err(AuthFailure::InvalidToken)
        ));
        assert!(matches!(
            check("ASIA1", "s1", Some("tok"), UNTIL),
            Err(AuthFailure::ExpiredToken)
        ));
        assert!(matches!(
            check("ASIA1", "wrong", Some("tok"), before),
            Err(AuthFailure::BadSignature)
        ));
        // Long-term keys carry no token.
        check("AKIA1", "s2", None, before).unwrap();
        assert!(matches!(
            check("AKIA1", "s2", Some("tok"), before),
            Err(AuthFailure::InvalidToken)
        ));
        assert!(matches!(
            check("AKIA9", "s2", None, before),
            Err(AuthFailure::UnknownKey(_))
        ));
        // In each protocol's words.
        let e = auth_error(Shape::Query(Dialect::Standard), AuthFailure::ExpiredToken);
        assert_eq!((e.code.as_str(), e.status), ("ExpiredToken", 403));
        let e = auth_error(Shape::Json, AuthFailure::ExpiredToken);
        assert_eq!(e.code, "ExpiredTokenException");
        let e = auth_error(Shape::Json, AuthFailure::InvalidToken);
        assert_eq!(e.code, "UnrecognizedClientException");
    }

    #[test]
    fn cbor_errors_encode_as_a_text_map() {
        let b = cbor_text_map(&[("__type", "X"), ("message", "hi")]);
        assert_eq!(
            b,
            [
                0xa2, 0x66, b'_', b'_', b't', b'y', b'p', b'e', 0x61, b'X', 0x67, b'm', b'e', b's',
                b's', b'a', b'g', b'e', 0x62, b'h', b'i'
            ]
        );
        let long = "a".repeat(300);
        let b = cbor_text_map(&[("m", &long)]);
        assert_eq!(&b[..5], &[0xa1, 0x61, b'm', 0x79, 0x01]);
        assert_eq!(b[5], 0x2c);
    }
}
