//! The one place every call is authorised. The pipeline asks the
//! [`Authorizer`] after a request is authenticated, decoded and validated,
//! and before any handler runs, with the IAM action (`ecs:RunTask`) and the
//! ARNs of the resources the operation declares it acts on. The identity
//! service's authorizer evaluates the caller's policies; [`AllowAll`]
//! serves in-process callers that are all roots.

use crate::error::ApiError;
use crate::wire::form::Dialect;
use crate::wire::Protocol;

/// What is being asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// Who asks: the caller's ARN.
    pub principal: &'a str,
    pub account: &'a str,
    /// The access key that signed the request.
    pub access_key: &'a str,
    /// The region the request is for.
    pub region: &'a str,
    /// When it is made.
    pub now_ms: i64,
    /// `<service prefix>:<Operation>`, as IAM policies name actions.
    pub action: String,
    /// The resources the call acts on (`*` when it names none).
    pub resources: Vec<String>,
}

pub trait Authorizer: Send + Sync {
    /// `Ok` to let the call through; the error the caller gets otherwise.
    fn authorize(&self, request: &Request<'_>) -> Result<(), ApiError>;
}

/// Every authenticated caller may do everything (the account roots).
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _request: &Request<'_>) -> Result<(), ApiError> {
        Ok(())
    }
}

/// The code of a denied call (`AccessDeniedException`, as JSON services
/// name it; [`in_protocol`] gives each protocol its own).
pub const ACCESS_DENIED: &str = "AccessDeniedException";

/// A denial with AWS's message (`User: … is not authorized to perform: …`).
pub fn access_denied(message: impl Into<String>) -> ApiError {
    ApiError::new(ACCESS_DENIED, message)
}

/// A denial as the service's protocol words it: `AccessDeniedException`
/// (400) for JSON services, `AccessDenied` (403) for Query ones and
/// `UnauthorizedOperation` (403) for EC2. Other errors pass unchanged.
pub fn in_protocol(protocol: Protocol, e: ApiError) -> ApiError {
    if e.code != ACCESS_DENIED {
        return e;
    }
    match protocol {
        Protocol::Json => e,
        Protocol::Query(Dialect::Standard) => {
            ApiError::new("AccessDenied", e.message).with_status(403)
        }
        Protocol::Query(Dialect::Ec2) => {
            ApiError::new("UnauthorizedOperation", e.message).with_status(403)
        }
    }
}
