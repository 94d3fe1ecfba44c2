//! Repositories: `CreateRepository`, `DescribeRepositories`,
//! `DeleteRepository`, `PutImageTagMutability`,
//! `PutImageScanningConfiguration`, repository policies and tags; and the
//! typed row the rest of the registry reads (`find`, `require`).

use rusqlite::{params, Connection, OptionalExtension};

use super::names::{parse_repository_arn, repository_arn, valid_repository_name};
use super::shapes::*;
use super::{check_registry, repository_not_found, Ecr};
use crate::context::{millis_to_epoch, Ctx};
use crate::error::{ApiError, ApiResult};

/// ECR's default quota of repositories per region.
pub const MAX_REPOSITORIES: i64 = 100_000;
/// Tags per resource.
const MAX_TAGS: usize = 50;

/// A repository as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Repo {
    pub id: i64,
    pub account: String,
    pub region: String,
    pub name: String,
    pub created_at: i64,
    pub tag_mutability: ImageTagMutability,
    pub tag_exclusions: Vec<ImageTagMutabilityExclusionFilter>,
    pub scan_on_push: bool,
    pub encryption: EncryptionConfiguration,
    pub policy: Option<String>,
    pub lifecycle_policy: Option<String>,
    pub lifecycle_updated: Option<i64>,
}

impl Repo {
    pub fn arn(&self) -> String {
        repository_arn(&self.account, &self.region, &self.name)
    }

    /// Whether `tag`, once on an image, may be moved to another.
    pub fn tag_is_mutable(&self, tag: &str) -> bool {
        let excluded = self
            .tag_exclusions
            .iter()
            .any(|f| crate::wildcard::matches(&f.filter, tag));
        match self.tag_mutability {
            ImageTagMutability::Mutable => true,
            ImageTagMutability::Immutable => false,
            ImageTagMutability::ImmutableWithExclusion => excluded,
            ImageTagMutability::MutableWithExclusion => !excluded,
        }
    }

    /// The `Repository` shape.
    pub fn shape(&self, ecr: &Ecr) -> Repository {
        Repository {
            created_at: Some(millis_to_epoch(self.created_at)),
            encryption_configuration: Some(self.encryption.clone()),
            image_scanning_configuration: Some(ImageScanningConfiguration {
                scan_on_push: Some(self.scan_on_push),
            }),
            image_tag_mutability: Some(self.tag_mutability),
            image_tag_mutability_exclusion_filters: (!self.tag_exclusions.is_empty())
                .then(|| self.tag_exclusions.clone()),
            registry_id: Some(self.account.clone()),
            repository_arn: Some(self.arn()),
            repository_name: Some(self.name.clone()),
            repository_uri: Some(ecr.uri(&self.name)),
        }
    }
}

const COLUMNS: &str = "id, account, region, name, created_at, tag_mutability, tag_exclusions, \
    scan_on_push, encryption, policy, lifecycle_policy, lifecycle_updated";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Repo> {
    let text = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    let decode = |i: usize, s: String| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("bad stored value {s}").into(),
        )
    };
    let mutability = text(5)?;
    Ok(Repo {
        id: r.get(0)?,
        account: r.get(1)?,
        region: r.get(2)?,
        name: r.get(3)?,
        created_at: r.get(4)?,
        tag_mutability: serde_json::from_value(serde_json::Value::String(mutability.clone()))
            .map_err(|_| decode(5, mutability))?,
        tag_exclusions: {
            let t = text(6)?;
            serde_json::from_str(&t).map_err(|_| decode(6, t))?
        },
        scan_on_push: r.get(7)?,
        encryption: {
            let t = text(8)?;
            serde_json::from_str(&t).map_err(|_| decode(8, t))?
        },
        policy: r.get(9)?,
        lifecycle_policy: r.get(10)?,
        lifecycle_updated: r.get(11)?,
    })
}

/// The repository `name` of (account, region), if it exists.
pub fn find(conn: &Connection, account: &str, region: &str, name: &str) -> ApiResult<Option<Repo>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM ecr_repositories WHERE account = ?1 AND region = ?2 AND name = ?3"),
            params![account, region, name],
            from_row,
        )
        .optional()?)
}

/// The repository, or ECR's `RepositoryNotFoundException`.
pub fn require(conn: &Connection, account: &str, region: &str, name: &str) -> ApiResult<Repo> {
    find(conn, account, region, name)?.ok_or_else(|| repository_not_found(account, name))
}

/// Every repository of every account (the collector's sweep).
pub fn all(conn: &Connection) -> ApiResult<Vec<Repo>> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM ecr_repositories ORDER BY id"
    ))?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn list(conn: &Connection, account: &str, region: &str) -> ApiResult<Vec<Repo>> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM ecr_repositories WHERE account = ?1 AND region = ?2 ORDER BY name"
    ))?;
    let rows = st.query_map(params![account, region], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn check_name(name: &str) -> ApiResult<()> {
    if valid_repository_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(format!(
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*'' (got '{name}')"
        )))
    }
}

fn check_tags(tags: &[Tag]) -> ApiResult<()> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::new(
            "TooManyTagsException",
            format!("A resource can have at most {MAX_TAGS} tags"),
        ));
    }
    for t in tags {
        if t.key.is_empty() || t.key.len() > 128 || t.value.len() > 256 || t.key.starts_with("aws:")
        {
            return Err(ApiError::new(
                "InvalidTagParameterException",
                format!("Invalid tag '{}': keys are 1 to 128 characters and may not begin with aws:, values at most 256", t.key),
            ));
        }
    }
    Ok(())
}

fn check_exclusions(
    mutability: ImageTagMutability,
    filters: &Option<Vec<ImageTagMutabilityExclusionFilter>>,
) -> ApiResult<Vec<ImageTagMutabilityExclusionFilter>> {
    let with = matches!(
        mutability,
        ImageTagMutability::ImmutableWithExclusion | ImageTagMutability::MutableWithExclusion
    );
    let filters = filters.clone().unwrap_or_default();
    if with && filters.is_empty() {
        return Err(ApiError::invalid_parameter(format!(
            "imageTagMutabilityExclusionFilters are required when imageTagMutability is {}",
            mutability.as_str()
        )));
    }
    if !with && !filters.is_empty() {
        return Err(ApiError::invalid_parameter(format!(
            "imageTagMutabilityExclusionFilters are not allowed when imageTagMutability is {}",
            mutability.as_str()
        )));
    }
    Ok(filters)
}

/// `CreateRepository`.
pub fn create(
    ecr: &Ecr,
    ctx: &Ctx,
    req: CreateRepositoryRequest,
) -> ApiResult<CreateRepositoryResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    check_name(&req.repository_name)?;
    let tags = req.tags.clone().unwrap_or_default();
    check_tags(&tags)?;
    let mutability = req.image_tag_mutability.unwrap_or_default();
    let exclusions = check_exclusions(mutability, &req.image_tag_mutability_exclusion_filters)?;
    let encryption = req.encryption_configuration.clone().unwrap_or_default();
    if encryption.encryption_type == EncryptionType::Aes256 && encryption.kms_key.is_some() {
        return Err(ApiError::invalid_parameter(
            "Invalid parameter: kmsKey can only be specified when encryptionType is KMS or KMS_DSSE",
        ));
    }
    let repo = ecr.store.write(|tx| {
        if find(tx, &ctx.account, &ctx.region, &req.repository_name)?.is_some() {
            return Err(ApiError::new(
                "RepositoryAlreadyExistsException",
                format!(
                    "The repository with name '{}' already exists in the registry with id '{}'",
                    req.repository_name, ctx.account
                ),
            ));
        }
        let count: i64 = tx.query_row(
            "SELECT COUNT(*) FROM ecr_repositories WHERE account = ?1 AND region = ?2",
            params![ctx.account, ctx.region],
            |r| r.get(0),
        )?;
        if count >= MAX_REPOSITORIES {
            return Err(ApiError::new(
                "LimitExceededException",
                format!("The maximum number of repositories ({MAX_REPOSITORIES}) has been reached"),
            ));
        }
        tx.execute(
            "INSERT INTO ecr_repositories (account, region, name, created_at, tag_mutability, \
             tag_exclusions, scan_on_push, encryption) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                ctx.account,
                ctx.region,
                req.repository_name,
                ctx.now_millis(),
                mutability.as_str(),
                serde_json::to_string(&exclusions)?,
                req.image_scanning_configuration
                    .as_ref()
                    .and_then(|s| s.scan_on_push)
                    .unwrap_or(false),
                serde_json::to_string(&encryption)?,
            ],
        )?;
        let id = tx.last_insert_rowid();
        for t in &tags {
            tx.execute(
                "INSERT OR REPLACE INTO ecr_resource_tags (repository_id, key, value) VALUES (?1, ?2, ?3)",
                params![id, t.key, t.value],
            )?;
        }
        require(tx, &ctx.account, &ctx.region, &req.repository_name)
    })?;
    Ok(CreateRepositoryResponse {
        repository: Some(repo.shape(ecr)),
    })
}

/// `DescribeRepositories`: the named ones (each must exist), or every one,
/// by name, a page at a time.
pub fn describe(
    ecr: &Ecr,
    ctx: &Ctx,
    req: DescribeRepositoriesRequest,
) -> ApiResult<DescribeRepositoriesResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    if let Some(names) = &req.repository_names {
        if req.max_results.is_some() || req.next_token.is_some() {
            return Err(ApiError::invalid_parameter(
                "maxResults and nextToken cannot be used with repositoryNames",
            ));
        }
        let repos = ecr.store.read(|conn| {
            names
                .iter()
                .map(|n| require(conn, &ctx.account, &ctx.region, n))
                .collect::<ApiResult<Vec<_>>>()
        })?;
        return Ok(DescribeRepositoriesResponse {
            next_token: None,
            repositories: Some(repos.iter().map(|r| r.shape(ecr)).collect()),
        });
    }
    let size = crate::paging::page_size(req.max_results, 1000)?;
    let after: Option<String> = req
        .next_token
        .as_deref()
        .map(crate::paging::decode_as)
        .transpose()?;
    let repos = ecr
        .store
        .read(|conn| list(conn, &ctx.account, &ctx.region))?;
    let repos: Vec<Repo> = repos
        .into_iter()
        .filter(|r| after.as_ref().is_none_or(|a| r.name > *a))
        .collect();
    let (page, token) = crate::paging::page(repos, size, |r| serde_json::json!(r.name));
    Ok(DescribeRepositoriesResponse {
        next_token: token,
        repositories: Some(page.iter().map(|r| r.shape(ecr)).collect()),
    })
}

/// `DeleteRepository`: refused while it holds images unless `force`.
pub fn delete(
    ecr: &Ecr,
    ctx: &Ctx,
    req: DeleteRepositoryRequest,
) -> ApiResult<DeleteRepositoryResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    let repo = ecr.store.write(|tx| {
        let repo = require(tx, &ctx.account, &ctx.region, &req.repository_name)?;
        let images: i64 = tx.query_row(
            "SELECT COUNT(*) FROM ecr_images WHERE repository_id = ?1",
            [repo.id],
            |r| r.get(0),
        )?;
        if images > 0 && !req.force.unwrap_or(false) {
            return Err(ApiError::new(
                "RepositoryNotEmptyException",
                format!(
                    "The repository with name '{}' in registry with id '{}' cannot be deleted because it still contains images",
                    repo.name, repo.account
                ),
            ));
        }
        tx.execute("DELETE FROM ecr_repositories WHERE id = ?1", [repo.id])?;
        Ok(repo)
    })?;
    // The blobs nothing references any more go at the collector's next pass.
    ecr.bus.wake(crate::events::Topic::Registry);
    Ok(DeleteRepositoryResponse {
        repository: Some(repo.shape(ecr)),
    })
}

/// Change one repository's row under `f`, answering the repository after.
fn update(
    ecr: &Ecr,
    ctx: &Ctx,
    registry_id: Option<&str>,
    name: &str,
    f: impl FnOnce(&rusqlite::Transaction, &Repo) -> ApiResult<()>,
) -> ApiResult<Repo> {
    check_registry(ctx, registry_id)?;
    ecr.store.write(|tx| {
        let repo = require(tx, &ctx.account, &ctx.region, name)?;
        f(tx, &repo)?;
        require(tx, &ctx.account, &ctx.region, name)
    })
}

/// `PutImageTagMutability`.
pub fn put_tag_mutability(
    ecr: &Ecr,
    ctx: &Ctx,
    req: PutImageTagMutabilityRequest,
) -> ApiResult<PutImageTagMutabilityResponse> {
    let exclusions = check_exclusions(
        req.image_tag_mutability,
        &req.image_tag_mutability_exclusion_filters,
    )?;
    let repo = update(
        ecr,
        ctx,
        req.registry_id.as_deref(),
        &req.repository_name,
        |tx, r| {
            tx.execute(
            "UPDATE ecr_repositories SET tag_mutability = ?1, tag_exclusions = ?2 WHERE id = ?3",
            params![
                req.image_tag_mutability.as_str(),
                serde_json::to_string(&exclusions)?,
                r.id
            ],
        )?;
            Ok(())
        },
    )?;
    Ok(PutImageTagMutabilityResponse {
        image_tag_mutability: Some(repo.tag_mutability),
        image_tag_mutability_exclusion_filters: (!repo.tag_exclusions.is_empty())
            .then(|| repo.tag_exclusions.clone()),
        registry_id: Some(repo.account),
        repository_name: Some(repo.name),
    })
}

/// `PutImageScanningConfiguration` (kept and reported; Berth scans
/// nothing).
pub fn put_scanning_configuration(
    ecr: &Ecr,
    ctx: &Ctx,
    req: PutImageScanningConfigurationRequest,
) -> ApiResult<PutImageScanningConfigurationResponse> {
    let scan = req
        .image_scanning_configuration
        .scan_on_push
        .unwrap_or(false);
    let repo = update(
        ecr,
        ctx,
        req.registry_id.as_deref(),
        &req.repository_name,
        |tx, r| {
            tx.execute(
                "UPDATE ecr_repositories SET scan_on_push = ?1 WHERE id = ?2",
                params![scan, r.id],
            )?;
            Ok(())
        },
    )?;
    Ok(PutImageScanningConfigurationResponse {
        image_scanning_configuration: Some(ImageScanningConfiguration {
            scan_on_push: Some(repo.scan_on_push),
        }),
        registry_id: Some(repo.account),
        repository_name: Some(repo.name),
    })
}

/// `SetRepositoryPolicy`: a JSON policy document, kept as given.
pub fn set_policy(
    ecr: &Ecr,
    ctx: &Ctx,
    req: SetRepositoryPolicyRequest,
) -> ApiResult<SetRepositoryPolicyResponse> {
    let doc: serde_json::Value = serde_json::from_str(&req.policy_text).map_err(|e| {
        ApiError::invalid_parameter(format!("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided': {e}"))
    })?;
    if doc.get("Statement").is_none() {
        return Err(ApiError::invalid_parameter(
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided': a policy needs a Statement",
        ));
    }
    let repo = update(
        ecr,
        ctx,
        req.registry_id.as_deref(),
        &req.repository_name,
        |tx, r| {
            tx.execute(
                "UPDATE ecr_repositories SET policy = ?1 WHERE id = ?2",
                params![req.policy_text, r.id],
            )?;
            Ok(())
        },
    )?;
    Ok(SetRepositoryPolicyResponse {
        policy_text: repo.policy,
        registry_id: Some(repo.account),
        repository_name: Some(repo.name),
    })
}

fn policy_not_found(repo: &Repo) -> ApiError {
    ApiError::new(
        "RepositoryPolicyNotFoundException",
        format!(
            "Repository policy does not exist for the repository with name '{}' in the registry with id '{}'",
            repo.name, repo.account
        ),
    )
}

/// `GetRepositoryPolicy`.
pub fn get_policy(
    ecr: &Ecr,
    ctx: &Ctx,
    req: DeleteRepositoryPolicyRequest,
) -> ApiResult<GetRepositoryPolicyResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    let repo = ecr
        .store
        .read(|conn| require(conn, &ctx.account, &ctx.region, &req.repository_name))?;
    let text = repo.policy.clone().ok_or_else(|| policy_not_found(&repo))?;
    Ok(GetRepositoryPolicyResponse {
        policy_text: Some(text),
        registry_id: Some(repo.account),
        repository_name: Some(repo.name),
    })
}

/// `DeleteRepositoryPolicy`.
pub fn delete_policy(
    ecr: &Ecr,
    ctx: &Ctx,
    req: DeleteRepositoryPolicyRequest,
) -> ApiResult<DeleteRepositoryPolicyResponse> {
    let mut old = None;
    let repo = update(
        ecr,
        ctx,
        req.registry_id.as_deref(),
        &req.repository_name,
        |tx, r| {
            old = Some(r.policy.clone().ok_or_else(|| policy_not_found(r))?);
            tx.execute(
                "UPDATE ecr_repositories SET policy = NULL WHERE id = ?1",
                [r.id],
            )?;
            Ok(())
        },
    )?;
    Ok(DeleteRepositoryPolicyResponse {
        policy_text: old,
        registry_id: Some(repo.account),
        repository_name: Some(repo.name),
    })
}

/// The repository an ARN names, in the caller's account and region.
fn by_arn(conn: &Connection, ctx: &Ctx, arn: &str) -> ApiResult<Repo> {
    let (region, account, name) = parse_repository_arn(arn).ok_or_else(|| {
        ApiError::invalid_parameter(format!("Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN' ({arn})"))
    })?;
    if account != ctx.account || region != ctx.region {
        return Err(repository_not_found(account, name));
    }
    require(conn, account, region, name)
}

/// `TagResource`.
pub fn tag_resource(
    ecr: &Ecr,
    ctx: &Ctx,
    req: TagResourceRequest,
) -> ApiResult<TagResourceResponse> {
    check_tags(&req.tags)?;
    ecr.store.write(|tx| {
        let repo = by_arn(tx, ctx, &req.resource_arn)?;
        for t in &req.tags {
            tx.execute(
                "INSERT OR REPLACE INTO ecr_resource_tags (repository_id, key, value) VALUES (?1, ?2, ?3)",
                params![repo.id, t.key, t.value],
            )?;
        }
        let n: i64 = tx.query_row(
            "SELECT COUNT(*) FROM ecr_resource_tags WHERE repository_id = ?1",
            [repo.id],
            |r| r.get(0),
        )?;
        if n as usize > MAX_TAGS {
            return Err(ApiError::new(
                "TooManyTagsException",
                format!("A resource can have at most {MAX_TAGS} tags"),
            ));
        }
        Ok(())
    })?;
    Ok(TagResourceResponse {})
}

/// `UntagResource`.
pub fn untag_resource(
    ecr: &Ecr,
    ctx: &Ctx,
    req: UntagResourceRequest,
) -> ApiResult<UntagResourceResponse> {
    ecr.store.write(|tx| {
        let repo = by_arn(tx, ctx, &req.resource_arn)?;
        for k in &req.tag_keys {
            tx.execute(
                "DELETE FROM ecr_resource_tags WHERE repository_id = ?1 AND key = ?2",
                params![repo.id, k],
            )?;
        }
        Ok(())
    })?;
    Ok(UntagResourceResponse {})
}

/// `ListTagsForResource`.
pub fn list_tags(
    ecr: &Ecr,
    ctx: &Ctx,
    req: ListTagsForResourceRequest,
) -> ApiResult<ListTagsForResourceResponse> {
    let tags = ecr.store.read(|conn| {
        let repo = by_arn(conn, ctx, &req.resource_arn)?;
        let mut st = conn.prepare(
            "SELECT key, value FROM ecr_resource_tags WHERE repository_id = ?1 ORDER BY key",
        )?;
        let rows = st.query_map([repo.id], |r| {
            Ok(Tag {
                key: r.get(0)?,
                value: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })?;
    Ok(ListTagsForResourceResponse { tags: Some(tags) })
}
