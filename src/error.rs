//! The one error type every API handler returns. The wire layer turns it into
//! the protocol's error shape (JSON `__type`/`message` or Query `ErrorResponse`).

use std::fmt;

/// An AWS-style API error: a code (the `__type` of JSON services, the `Code` of
/// Query services), a message for people, and the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    pub status: u16,
}

impl ApiError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            code: code.into(),
            message: message.into(),
            status: 400,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// ECS `InvalidParameterException`: a parameter is wrong.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
    }

    /// ECS `ClientException`: the request is wrong in a way ECS attributes to
    /// the caller (it is what task definition rules raise).
    pub fn client(message: impl Into<String>) -> Self {
        Self::new("ClientException", message)
    }

    pub fn cluster_not_found() -> Self {
        Self::new("ClusterNotFoundException", "Cluster not found.")
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new("SerializationException", message)
    }

    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new("UnknownOperationException", message)
    }

    /// An unexpected failure inside Berth (`ServerException` in ECS terms).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("ServerException", message).with_status(500)
    }
}

/// Model validation speaks ECS's `InvalidParameterException`; the services
/// that answer a model constraint with `ValidationException` (KMS, SSM,
/// Secrets Manager) register this.
pub fn as_validation_exception(e: ApiError) -> ApiError {
    if e.code == "InvalidParameterException" {
        ApiError::new("ValidationException", e.message)
    } else {
        e
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        tracing::error!(error = %e, "store error");
        ApiError::internal(format!("store error: {e}"))
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::serialization(e.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
