//! The one place every call is authorised. The pipeline asks the
//! [`Authorizer`] after a request is authenticated, decoded and validated,
//! and before any handler runs, with the IAM action (`ecs:RunTask`) and the
//! ARNs of the resources the operation declares it acts on. Today every
//! configured key is its account's root and [`AllowAll`] answers; the
//! identity service will evaluate policies here.

use crate::error::ApiError;

/// What is being asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// Who asks: the caller's ARN.
    pub principal: &'a str,
    pub account: &'a str,
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

/// The error of a call a policy does not allow, in AWS's words.
pub fn access_denied(request: &Request<'_>) -> ApiError {
    ApiError::new(
        "AccessDeniedException",
        format!(
            "User: {} is not authorized to perform: {} on resource: {}",
            request.principal,
            request.action,
            request.resources.join(", ")
        ),
    )
}
