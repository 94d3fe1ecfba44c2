//! AWS Secrets Manager (JSON 1.1, `secretsmanager`): secrets, their
//! versions and staging labels, deletion with a recovery window, tags,
//! resource policies and random passwords; and
//! [`SecretsManager::resolve_value_from`], how the ECS agent reads a
//! container's `secrets` at task start.
//!
//! * `secrets.rs`: the typed row, how a `SecretId` names a secret (name,
//!   full ARN, partial ARN), `CreateSecret`, `UpdateSecret`,
//!   `DescribeSecret`, `ListSecrets`, `DeleteSecret`, `RestoreSecret`,
//!   tags and resource policies;
//! * `values.rs`: versions and their staging labels, every value sealed by
//!   KMS: `GetSecretValue`, `BatchGetSecretValue`, `PutSecretValue`,
//!   `UpdateSecretVersionStage`, `ListSecretVersionIds`, and the ECS
//!   `valueFrom` forms;
//! * `filters.rs` (pure): `ListSecrets`' filters;
//! * `password.rs` (pure but for the OS's random source):
//!   `GetRandomPassword`.
//!
//! A value is never stored in plain text: each version's bytes are sealed
//! by [`crate::kms::Kms::seal`] under the secret's key (the AWS managed
//! `alias/aws/secretsmanager` when it names none), bound to the secret's
//! ARN and the version's id, as AWS binds them (`SecretARN`,
//! `SecretVersionId`). No value is ever written to an error message or a
//! log line.
//!
//! A secret scheduled for deletion keeps its rows until its deletion date;
//! past it the secret is gone for every call, and its rows are removed by
//! the next write of its account and region.

pub mod filters;
pub mod password;
pub mod secrets;
#[rustfmt::skip]
pub mod shapes;
pub mod values;

use std::sync::Arc;

use crate::error::ApiError;
use crate::model;
use crate::store::Store;
use crate::wire::Service;

pub use crate::wire::Empty;

/// Secrets Manager's state: the store and KMS, which seals every value.
pub struct SecretsManager {
    pub store: Arc<Store>,
    pub kms: Arc<crate::kms::Kms>,
}

impl SecretsManager {
    /// Secrets Manager, registered once in the request pipeline.
    pub fn service(self: Arc<Self>) -> Service {
        let me = self.clone();
        Service::builder(
            "SecretsManager",
            "secretsmanager",
            "secretsmanager",
            model::secretsmanager(),
            self,
        )
        .validation_errors(crate::error::as_validation_exception)
        .resources(move |ctx, _op, input| me.resources(ctx, input))
        .op("CreateSecret", secrets::create)
        .op("UpdateSecret", secrets::update)
        .op("DescribeSecret", secrets::describe)
        .op("ListSecrets", secrets::list)
        .op("DeleteSecret", secrets::delete)
        .op("RestoreSecret", secrets::restore)
        .op("TagResource", secrets::tag_resource)
        .op("UntagResource", secrets::untag_resource)
        .op("PutResourcePolicy", secrets::put_policy)
        .op("GetResourcePolicy", secrets::get_policy)
        .op("DeleteResourcePolicy", secrets::delete_policy)
        .op("GetSecretValue", values::get_secret_value)
        .op("BatchGetSecretValue", values::batch_get_secret_value)
        .op("PutSecretValue", values::put_secret_value)
        .op("UpdateSecretVersionStage", values::update_version_stage)
        .op("ListSecretVersionIds", values::list_version_ids)
        .op("GetRandomPassword", password::get_random_password)
        .build()
    }
}

// ----- Secrets Manager's errors, in its words -----

/// The code of the errors [`SecretsManager::resolve_value_from`] makes
/// itself (a `valueFrom` it cannot read, a JSON key the value lacks), in
/// the words of the ECS agent, which makes them on AWS; every other error
/// it returns is Secrets Manager's own.
pub const VALUE_FROM_ERROR: &str = "SecretValueFromError";

pub fn secret_not_found() -> ApiError {
    ApiError::new(
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
}

pub fn value_not_found_for_stage(stage: &str) -> ApiError {
    ApiError::new(
        "ResourceNotFoundException",
        format!("Secrets Manager can't find the specified secret value for staging label: {stage}"),
    )
}

pub fn value_not_found_for_version(version_id: &str) -> ApiError {
    ApiError::new(
        "ResourceNotFoundException",
        format!(
            "Secrets Manager can't find the specified secret value for VersionId: {version_id}"
        ),
    )
}

pub fn marked_for_deletion() -> ApiError {
    ApiError::new(
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
    )
}

pub fn invalid_parameter(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidParameterException", message)
}

pub fn invalid_request(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidRequestException", message)
}

pub fn limit_exceeded(message: impl Into<String>) -> ApiError {
    ApiError::new("LimitExceededException", message)
}

pub fn invalid_next_token() -> ApiError {
    ApiError::new(
        "InvalidNextTokenException",
        "The NextToken value is invalid.",
    )
}

/// A KMS refusal while sealing a value: the key named does not exist
/// (`InvalidParameterException`, as Secrets Manager reports an invalid
/// key), or cannot be used (`EncryptionFailure`, with KMS's reason).
pub fn encryption_failure(e: ApiError) -> ApiError {
    match e.code.as_str() {
        "NotFoundException" => invalid_parameter(format!(
            "The operation failed because of an invalid KMS key: {}",
            e.message
        )),
        "DisabledException" | "KMSInvalidStateException" | "InvalidCiphertextException" => {
            ApiError::new("EncryptionFailure", e.message)
        }
        _ => e,
    }
}

/// A KMS refusal while opening a value: its key cannot be used
/// (`DecryptionFailure`, with KMS's reason), or the blob does not open.
pub fn decryption_failure(e: ApiError) -> ApiError {
    match e.code.as_str() {
        "DisabledException" | "KMSInvalidStateException" | "NotFoundException" => {
            ApiError::new("DecryptionFailure", e.message)
        }
        "InvalidCiphertextException" => ApiError::new(
            "DecryptionFailure",
            "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
        ),
        _ => e,
    }
}

#[cfg(test)]
mod tests;

impl SecretsManager {
    /// The secrets a call names, as their ARNs (a name is looked up; one
    /// not found is named by its partial ARN); `*` when it names none.
    fn resources(&self, ctx: &crate::context::Ctx, input: &serde_json::Value) -> Vec<String> {
        let id = input
            .get("SecretId")
            .or_else(|| input.get("Name"))
            .and_then(|v| v.as_str());
        let Some(id) = id else {
            return vec!["*".to_string()];
        };
        let found = self
            .store
            .read(|conn| {
                secrets::find(
                    conn,
                    &ctx.account,
                    &ctx.region,
                    id,
                    ctx.now.timestamp_millis(),
                )
            })
            .ok()
            .flatten();
        vec![match found {
            Some(s) => s.arn,
            None if id.starts_with("arn:") => id.to_string(),
            None => format!(
                "arn:aws:secretsmanager:{}:{}:secret:{id}",
                ctx.region, ctx.account
            ),
        }]
    }
}
