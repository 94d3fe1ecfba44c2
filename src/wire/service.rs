//! A service as the request pipeline knows it: registered once, with its
//! model (which gives its protocol and, for JSON services, its target
//! prefix), its SigV4 signing name, and one handler per operation, all of
//! one signature. Nothing else in the pipeline is specific to a service.
//!
//! ```ignore
//! Service::builder("STS", "sts", "sts", model::sts(), state)
//!     .op("GetCallerIdentity", Sts::get_caller_identity)
//!     .build()
//! ```
//!
//! A handler takes the caller's [`Ctx`] and a typed request and returns a
//! typed response (`serde_json::Value` is a type too, for handlers that have
//! not been given their own); the pipeline decodes the request from the
//! input it validated against the model and encodes the response, so JSON
//! values stay at this edge.

use std::collections::HashMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::form::Dialect;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::model::Model;

/// One operation's handler, typed request and response erased.
type Handler = Box<dyn Fn(&Ctx, Value) -> ApiResult<Value> + Send + Sync>;

/// How a service's requests and answers are encoded (the model's
/// `metadata.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// JSON 1.0/1.1: `POST /` with `X-Amz-Target: <prefix>.<Operation>`.
    Json,
    /// Query, in one of its dialects: `POST /` with a form body.
    Query(Dialect),
}

/// Maps a model validation failure (ECS's codes) to the service's own.
pub type ValidationErrors = fn(ApiError) -> ApiError;
/// The ARNs of the resources a call acts on, for authorization. A service
/// that must look a name up to know its ARN (Secrets Manager's secrets)
/// passes a closure over its state.
pub type Resources = Arc<dyn Fn(&Ctx, &str, &Value) -> Vec<String> + Send + Sync>;
/// Checks a service makes before the model's, with its own error codes.
pub type Precheck = fn(&str, &Value) -> ApiResult<()>;

pub struct Service {
    /// How people name it in messages: `ECS`, `CloudWatch Logs`.
    pub name: &'static str,
    /// The prefix of its IAM action names (`ecs` in `ecs:RunTask`).
    pub iam_prefix: &'static str,
    /// The service of its SigV4 credential scope.
    pub signing_name: &'static str,
    pub model: &'static Model,
    pub protocol: Protocol,
    pub(super) validation_errors: ValidationErrors,
    pub(super) precheck: Precheck,
    pub(super) resources: Resources,
    ops: HashMap<&'static str, Handler>,
}

impl Service {
    /// Start registering a service whose handlers take `state`.
    pub fn builder<S: Send + Sync + 'static>(
        name: &'static str,
        iam_prefix: &'static str,
        signing_name: &'static str,
        model: &'static Model,
        state: Arc<S>,
    ) -> Builder<S> {
        let protocol = match model.protocol.as_str() {
            "json" => Protocol::Json,
            "query" => Protocol::Query(Dialect::Standard),
            "ec2" => Protocol::Query(Dialect::Ec2),
            other => panic!("{name}: protocol {other} is not one the pipeline speaks"),
        };
        Builder {
            state,
            service: Service {
                name,
                iam_prefix,
                signing_name,
                model,
                protocol,
                validation_errors: |e| e,
                precheck: |_, _| Ok(()),
                resources: Arc::new(|_, _, _| vec!["*".to_string()]),
                ops: HashMap::new(),
            },
        }
    }

    /// Whether the service has a handler for `operation`.
    pub fn serves(&self, operation: &str) -> bool {
        self.ops.contains_key(operation)
    }

    /// The operations it serves, sorted.
    pub fn operations(&self) -> Vec<&'static str> {
        let mut ops: Vec<&'static str> = self.ops.keys().copied().collect();
        ops.sort_unstable();
        ops
    }

    /// Run an operation on input validated against the model.
    pub(super) fn call(&self, ctx: &Ctx, operation: &str, input: Value) -> ApiResult<Value> {
        match self.ops.get(operation) {
            Some(h) => h(ctx, input),
            None => Err(super::unserved::operation(self.name, operation)),
        }
    }
}

pub struct Builder<S> {
    state: Arc<S>,
    service: Service,
}

impl<S: Send + Sync + 'static> Builder<S> {
    /// Serve `name` with `handler`.
    pub fn op<Req, Resp, F>(mut self, name: &'static str, handler: F) -> Self
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        F: Fn(&S, &Ctx, Req) -> ApiResult<Resp> + Send + Sync + 'static,
    {
        assert!(
            self.service.model.operations.contains_key(name),
            "{}: {name} is not an operation of its model",
            self.service.name
        );
        let state = self.state.clone();
        let h: Handler = Box::new(move |ctx, input| {
            let req: Req = serde_json::from_value(input)?;
            let resp = handler(&state, ctx, req)?;
            serde_json::to_value(resp)
                .map_err(|e| ApiError::internal(format!("cannot encode the answer: {e}")))
        });
        self.service.ops.insert(name, h);
        self
    }

    pub fn validation_errors(mut self, f: ValidationErrors) -> Self {
        self.service.validation_errors = f;
        self
    }

    pub fn precheck(mut self, f: Precheck) -> Self {
        self.service.precheck = f;
        self
    }

    pub fn resources(
        mut self,
        f: impl Fn(&Ctx, &str, &Value) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.service.resources = Arc::new(f);
        self
    }

    pub fn build(self) -> Service {
        self.service
    }
}

/// Every service Berth serves.
#[derive(Default)]
pub struct Registry {
    services: Vec<Arc<Service>>,
}

impl Registry {
    pub fn add(&mut self, service: Service) -> &mut Self {
        if let Some(prefix) = &service.model.target_prefix {
            assert!(
                self.by_target_prefix(prefix).is_none(),
                "{prefix} registered twice"
            );
        }
        self.services.push(Arc::new(service));
        self
    }

    /// The JSON service a `X-Amz-Target` prefix names.
    pub fn by_target_prefix(&self, prefix: &str) -> Option<&Arc<Service>> {
        self.services.iter().find(|s| {
            s.protocol == Protocol::Json && s.model.target_prefix.as_deref() == Some(prefix)
        })
    }

    /// The Query service a credential scope names.
    pub fn by_query_signing_name(&self, name: &str) -> Option<&Arc<Service>> {
        self.services
            .iter()
            .find(|s| matches!(s.protocol, Protocol::Query(_)) && s.signing_name == name)
    }

    pub fn services(&self) -> &[Arc<Service>] {
        &self.services
    }

    /// What Berth serves, for messages: `ECS, CloudWatch Logs, … and STS`.
    pub fn served(&self) -> String {
        let names: Vec<String> = self
            .services
            .iter()
            .map(|s| {
                if s.ops.len() < s.model.operations.len() || s.model.subset {
                    format!("{} (subset)", s.name)
                } else {
                    s.name.to_string()
                }
            })
            .collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => names.concat(),
        }
    }
}

/// The answer of an operation whose output the model leaves empty.
#[derive(Debug, Default, serde::Serialize)]
pub struct Empty {}
