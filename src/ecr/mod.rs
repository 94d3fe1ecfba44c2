//! Amazon ECR (JSON 1.1, `AmazonEC2ContainerRegistry_V20150921`) and the
//! registry it fronts: the OCI distribution protocol on Berth's own port,
//! which `docker login/push/pull` speak.
//!
//! * `repositories.rs`: `CreateRepository`, `DescribeRepositories`,
//!   `DeleteRepository`, `PutImageTagMutability`,
//!   `PutImageScanningConfiguration`, repository policies, tags;
//! * `images.rs`: `PutImage`, `BatchGetImage`, `BatchDeleteImage`,
//!   `DescribeImages`, `ListImages`, and the manifest functions the
//!   registry shares with them;
//! * `layers.rs`: `BatchCheckLayerAvailability`, `InitiateLayerUpload`,
//!   `UploadLayerPart`, `CompleteLayerUpload`, `GetDownloadUrlForLayer`,
//!   and the blob links the registry shares;
//! * `auth.rs`: `GetAuthorizationToken`, and the tokens the registry
//!   accepts;
//! * `policies.rs`: lifecycle policies (`Put/Get/DeleteLifecyclePolicy`,
//!   the preview) and their enforcement; `lifecycle.rs` (pure) their rules;
//! * `registry.rs`: the distribution protocol (`/v2/…`);
//! * `blobs.rs`: blob files, content-addressed; `manifest.rs` and
//!   `names.rs` (pure): manifests, names, digests, ECR image URIs;
//! * `cli.rs`: `berth images`;
//! * `collector.rs`: the controller that enforces lifecycle policies and
//!   removes what nothing references.

pub mod auth;
pub mod blobs;
pub mod cli;
pub mod collector;
pub mod images;
pub mod layers;
pub mod lifecycle;
pub mod manifest;
pub mod names;
pub mod policies;
pub mod registry;
pub mod repositories;
#[rustfmt::skip]
pub mod shapes;
#[cfg(test)]
mod tests_registry;

use std::path::Path;
use std::sync::Arc;

use crate::clock::Clock;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::events::Bus;
use crate::model;
use crate::settings::Settings;
use crate::store::Store;
use crate::wire::Service;

/// The registry's state: the store, the blob files, the key its tokens
/// are signed with, and the host name its repositories' URIs carry.
pub struct Ecr {
    pub store: Arc<Store>,
    pub bus: Arc<Bus>,
    pub blobs: blobs::BlobStore,
    pub tokens: auth::TokenKey,
    /// `127.0.0.1:4566`: the registry's host in `repositoryUri`, which
    /// docker trusts without configuration because it is loopback.
    pub host: String,
    pub clock: Arc<dyn Clock>,
}

impl Ecr {
    /// The registry over `store`, its files under `dir` (made if missing).
    pub fn open(
        store: Arc<Store>,
        bus: Arc<Bus>,
        settings: &Settings,
        dir: &Path,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<Ecr> {
        Ok(Ecr {
            store,
            bus,
            blobs: blobs::BlobStore::open(dir)?,
            tokens: auth::TokenKey::load_or_create(&dir.join("token.key"))?,
            host: registry_host(&settings.endpoint),
            clock,
        })
    }

    /// A repository's URI.
    pub fn uri(&self, name: &str) -> String {
        format!("{}/{name}", self.host)
    }

    /// ECR, registered once in the request pipeline.
    pub fn service(self: Arc<Self>) -> Service {
        Service::builder("ECR", "ecr", "ecr", model::ecr(), self)
            .op("CreateRepository", repositories::create)
            .op("DescribeRepositories", repositories::describe)
            .op("DeleteRepository", repositories::delete)
            .op("PutImageTagMutability", repositories::put_tag_mutability)
            .op(
                "PutImageScanningConfiguration",
                repositories::put_scanning_configuration,
            )
            .op("SetRepositoryPolicy", repositories::set_policy)
            .op("GetRepositoryPolicy", repositories::get_policy)
            .op("DeleteRepositoryPolicy", repositories::delete_policy)
            .op("TagResource", repositories::tag_resource)
            .op("UntagResource", repositories::untag_resource)
            .op("ListTagsForResource", repositories::list_tags)
            .op("GetAuthorizationToken", auth::get_authorization_token)
            .op("PutImage", images::put_image)
            .op("BatchGetImage", images::batch_get_image)
            .op("BatchDeleteImage", images::batch_delete_image)
            .op("DescribeImages", images::describe_images)
            .op("ListImages", images::list_images)
            .op(
                "BatchCheckLayerAvailability",
                layers::batch_check_availability,
            )
            .op("InitiateLayerUpload", layers::initiate_upload)
            .op("UploadLayerPart", layers::upload_part)
            .op("CompleteLayerUpload", layers::complete_upload)
            .op("GetDownloadUrlForLayer", layers::download_url)
            .op("PutLifecyclePolicy", policies::put)
            .op("GetLifecyclePolicy", policies::get)
            .op("DeleteLifecyclePolicy", policies::delete)
            .op("StartLifecyclePolicyPreview", policies::start_preview)
            .op("GetLifecyclePolicyPreview", policies::get_preview)
            .build()
    }
}

/// The registry's host from the server's endpoint URL: its authority, with
/// an unspecified address made loopback.
pub fn registry_host(endpoint: &str) -> String {
    let authority = endpoint
        .split("://")
        .nth(1)
        .unwrap_or(endpoint)
        .split('/')
        .next()
        .unwrap_or_default();
    authority.replace("0.0.0.0", "127.0.0.1")
}

/// The registry id a request names must be the caller's account.
pub fn check_registry(ctx: &Ctx, registry_id: Option<&str>) -> ApiResult<()> {
    match registry_id {
        Some(id) if id != ctx.account => Err(ApiError::invalid_parameter(format!(
            "Invalid parameter at 'registryId' failed to satisfy constraint: 'registry {id} is not the caller's account {}'",
            ctx.account
        ))),
        _ => Ok(()),
    }
}

// ----- ECR's errors, in its words -----

pub fn repository_not_found(account: &str, name: &str) -> ApiError {
    ApiError::new(
        "RepositoryNotFoundException",
        format!(
            "The repository with name '{name}' does not exist in the registry with id '{account}'"
        ),
    )
}

pub fn image_not_found(account: &str, repo: &str, id: &str) -> ApiError {
    ApiError::new(
        "ImageNotFoundException",
        format!("The image with imageId {id} does not exist within the repository with name '{repo}' in the registry with id '{account}'"),
    )
}

pub fn tag_immutable(repo: &str, tag: &str) -> ApiError {
    ApiError::new(
        "ImageTagAlreadyExistsException",
        format!("The image tag '{tag}' already exists in the '{repo}' repository and cannot be overwritten because the repository is immutable."),
    )
}

/// The ECR API's rendering of an image id in messages:
/// `{imageDigest:'…', imageTag:'…'}`.
pub fn id_text(digest: Option<&str>, tag: Option<&str>) -> String {
    format!(
        "{{imageDigest:'{}', imageTag:'{}'}}",
        digest.unwrap_or("null"),
        tag.unwrap_or("null")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_host_is_the_endpoint_authority() {
        assert_eq!(registry_host("http://127.0.0.1:4566"), "127.0.0.1:4566");
        assert_eq!(registry_host("http://0.0.0.0:9000/"), "127.0.0.1:9000");
    }
}
