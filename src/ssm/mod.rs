//! AWS Systems Manager Parameter Store (JSON 1.1, `AmazonSSM`): the part
//! of SSM that ECS workloads use for configuration and secrets.
//!
//! * `names.rs` (pure): parameter names, hierarchies, ARNs, selectors
//!   (`name:3`, `name:label`) and labels, as SSM validates them;
//! * `parameters.rs`: `PutParameter`, `GetParameter(s)`,
//!   `GetParametersByPath`, `DeleteParameter(s)`, `DescribeParameters`,
//!   `GetParameterHistory`, `Label/UnlabelParameterVersion`, tags; and
//!   [`Ssm::resolve_value_from`], what a task's `secrets` read.
//!
//! Every version of a parameter is kept (up to 100). A `SecureString`'s
//! value is sealed by KMS (`alias/aws/ssm` unless `KeyId` names a key),
//! with the parameter's ARN as encryption context; the plain value never
//! reaches the database.

pub mod names;
pub mod parameters;
#[rustfmt::skip]
pub mod shapes;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::error::ApiError;
use crate::kms::Kms;
use crate::model;
use crate::store::Store;
use crate::wire::Service;

/// Parameter Store's state: the store, and KMS for SecureStrings.
pub struct Ssm {
    pub store: Arc<Store>,
    pub kms: Arc<Kms>,
}

impl Ssm {
    /// SSM, registered once in the request pipeline.
    pub fn service(self: Arc<Self>) -> Service {
        Service::builder("SSM", "ssm", "ssm", model::ssm(), self)
            .validation_errors(crate::error::as_validation_exception)
            .resources(resources)
            .op("PutParameter", parameters::put)
            .op("GetParameter", parameters::get)
            .op("GetParameters", parameters::get_many)
            .op("GetParametersByPath", parameters::get_by_path)
            .op("DeleteParameter", parameters::delete)
            .op("DeleteParameters", parameters::delete_many)
            .op("DescribeParameters", parameters::describe)
            .op("GetParameterHistory", parameters::history)
            .op("LabelParameterVersion", parameters::label)
            .op("UnlabelParameterVersion", parameters::unlabel)
            .op("AddTagsToResource", parameters::add_tags)
            .op("RemoveTagsFromResource", parameters::remove_tags)
            .op("ListTagsForResource", parameters::list_tags)
            .build()
    }
}

// ----- SSM's errors, in its words -----

pub fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new("ValidationException", message)
}

pub fn not_found() -> ApiError {
    ApiError::new("ParameterNotFound", "")
}

/// The parameters a call names, as ARNs (`*` when it names none): what
/// a policy's `Resource` is matched against.
fn resources(
    ctx: &crate::context::Ctx,
    _operation: &str,
    input: &serde_json::Value,
) -> Vec<String> {
    let arn = |name: &str| {
        if name.starts_with("arn:") {
            name.to_string()
        } else {
            // A selector (`name:3`, `name:label`) is not part of the name.
            let bare = name.split(':').next().unwrap_or(name);
            names::arn(&ctx.account, &ctx.region, bare)
        }
    };
    let mut out: Vec<String> = Vec::new();
    for key in ["Name", "Path", "ResourceId"] {
        if let Some(n) = input.get(key).and_then(|v| v.as_str()) {
            out.push(arn(n));
        }
    }
    for n in input
        .get("Names")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
    {
        out.push(arn(n));
    }
    if out.is_empty() {
        out.push("*".to_string());
    }
    out
}
