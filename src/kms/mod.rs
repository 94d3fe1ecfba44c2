//! AWS KMS (JSON 1.1, `TrentService`), the part secrets need: symmetric
//! keys that encrypt and decrypt, aliases, and the AWS managed keys
//! (`alias/aws/ssm`, `alias/aws/secretsmanager`) that Parameter Store and
//! Secrets Manager use when the caller names none.
//!
//! * `crypto.rs` (pure): AES-256-GCM, the ciphertext blob, encryption
//!   contexts;
//! * `keys.rs`: `CreateKey`, `DescribeKey`, `ListKeys`, `EnableKey`,
//!   `DisableKey`, `ScheduleKeyDeletion`, `CancelKeyDeletion`, aliases,
//!   tags; and [`Kms::seal`]/[`Kms::unseal`], what other rooms call;
//! * `data.rs`: `Encrypt`, `Decrypt`, `GenerateDataKey`.
//!
//! Every key's material is sealed under the master key, which lives in
//! its own file (`kms/master.key` under the data dir, 0600, or the file
//! `--master-key-file` names) and never in the database: a copy of the
//! database alone decrypts nothing.

pub mod crypto;
pub mod data;
pub mod keys;
#[rustfmt::skip]
pub mod shapes;

use std::path::Path;
use std::sync::Arc;

use crate::error::ApiError;
use crate::model;
use crate::store::Store;
use crate::wire::Service;

/// KMS's state: the store and the master key.
pub struct Kms {
    pub store: Arc<Store>,
    master: [u8; 32],
}

impl Kms {
    /// KMS over `store`, its master key read from `master_key` (made there
    /// if missing).
    pub fn open(store: Arc<Store>, master_key: &Path) -> std::io::Result<Kms> {
        Ok(Kms {
            store,
            master: crate::keyfile::load_or_create(master_key)?,
        })
    }

    /// KMS with a fixed master key, for tests.
    pub fn with_master(store: Arc<Store>, master: [u8; 32]) -> Kms {
        Kms { store, master }
    }

    /// Seal another room's secret (an access key's) directly under the
    /// master key, bound to `id` (the access key id).
    pub fn seal_under_master(&self, id: &str, plaintext: &[u8]) -> Vec<u8> {
        crypto::seal(&self.master, &keys::nonce(), plaintext, id.as_bytes())
    }

    /// Open what [`Kms::seal_under_master`] sealed for `id`.
    pub fn open_under_master(&self, id: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        crypto::open(&self.master, sealed, id.as_bytes())
    }

    /// KMS, registered once in the request pipeline.
    pub fn service(self: Arc<Self>) -> Service {
        Service::builder("KMS", "kms", "kms", model::kms(), self)
            .validation_errors(crate::error::as_validation_exception)
            .op("CreateKey", keys::create_key)
            .op("DescribeKey", keys::describe_key)
            .op("ListKeys", keys::list_keys)
            .op("EnableKey", keys::enable_key)
            .op("DisableKey", keys::disable_key)
            .op("ScheduleKeyDeletion", keys::schedule_deletion)
            .op("CancelKeyDeletion", keys::cancel_deletion)
            .op("CreateAlias", keys::create_alias)
            .op("DeleteAlias", keys::delete_alias)
            .op("ListAliases", keys::list_aliases)
            .op("TagResource", keys::tag_resource)
            .op("UntagResource", keys::untag_resource)
            .op("ListResourceTags", keys::list_tags)
            .op("Encrypt", data::encrypt)
            .op("Decrypt", data::decrypt)
            .op("GenerateDataKey", data::generate_data_key)
            .build()
    }
}

// ----- KMS's errors, in its words -----

pub fn not_found(what: &str) -> ApiError {
    ApiError::new("NotFoundException", format!("{what} is not found."))
}

pub fn disabled(arn: &str) -> ApiError {
    ApiError::new("DisabledException", format!("{arn} is disabled."))
}

pub fn pending_deletion(arn: &str) -> ApiError {
    ApiError::new(
        "KMSInvalidStateException",
        format!("{arn} is pending deletion."),
    )
}

pub fn invalid_ciphertext() -> ApiError {
    ApiError::new("InvalidCiphertextException", "")
}

#[cfg(test)]
mod tests;
