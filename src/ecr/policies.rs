//! Lifecycle policies: `PutLifecyclePolicy`, `GetLifecyclePolicy`,
//! `DeleteLifecyclePolicy`, `StartLifecyclePolicyPreview`,
//! `GetLifecyclePolicyPreview`, and [`enforce`], which expires what a
//! repository's policy says (the collector calls it on its schedule). The
//! rules themselves are `lifecycle.rs`'s.

use rusqlite::{params, OptionalExtension};

use super::images::{self, DeleteRefused};
use super::lifecycle::{self, ImageFacts};
use super::names::Reference;
use super::repositories::{require, Repo};
use super::shapes::*;
use super::{check_registry, Ecr};
use crate::context::{millis_to_epoch, Ctx};
use crate::error::{ApiError, ApiResult};

fn not_found(repo: &Repo) -> ApiError {
    ApiError::new(
        "LifecyclePolicyNotFoundException",
        format!(
            "Lifecycle policy does not exist for the repository with name '{}' in the registry with id '{}'",
            repo.name, repo.account
        ),
    )
}

fn parse(text: &str) -> ApiResult<lifecycle::Policy> {
    lifecycle::parse(text).map_err(ApiError::invalid_parameter)
}

/// `PutLifecyclePolicy`: checked as ECR checks it, then enforced at the
/// collector's next pass.
pub fn put(
    ecr: &Ecr,
    ctx: &Ctx,
    req: PutLifecyclePolicyRequest,
) -> ApiResult<PutLifecyclePolicyResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    parse(&req.lifecycle_policy_text)?;
    let repo = ecr.store.write(|tx| {
        let repo = require(tx, &ctx.account, &ctx.region, &req.repository_name)?;
        tx.execute(
            "UPDATE ecr_repositories SET lifecycle_policy = ?1, lifecycle_updated = NULL WHERE id = ?2",
            params![req.lifecycle_policy_text, repo.id],
        )?;
        Ok(repo)
    })?;
    ecr.bus.wake(crate::events::Topic::Registry);
    Ok(PutLifecyclePolicyResponse {
        lifecycle_policy_text: Some(req.lifecycle_policy_text),
        registry_id: Some(repo.account),
        repository_name: Some(repo.name),
    })
}

/// `GetLifecyclePolicy`.
pub fn get(
    ecr: &Ecr,
    ctx: &Ctx,
    req: GetLifecyclePolicyRequest,
) -> ApiResult<GetLifecyclePolicyResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    let repo = ecr
        .store
        .read(|conn| require(conn, &ctx.account, &ctx.region, &req.repository_name))?;
    let text = repo
        .lifecycle_policy
        .clone()
        .ok_or_else(|| not_found(&repo))?;
    Ok(GetLifecyclePolicyResponse {
        last_evaluated_at: repo.lifecycle_updated.map(millis_to_epoch),
        lifecycle_policy_text: Some(text),
        registry_id: Some(repo.account),
        repository_name: Some(repo.name),
    })
}

/// `DeleteLifecyclePolicy`.
pub fn delete(
    ecr: &Ecr,
    ctx: &Ctx,
    req: DeleteLifecyclePolicyRequest,
) -> ApiResult<DeleteLifecyclePolicyResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    let repo = ecr.store.write(|tx| {
        let repo = require(tx, &ctx.account, &ctx.region, &req.repository_name)?;
        if repo.lifecycle_policy.is_none() {
            return Err(not_found(&repo));
        }
        tx.execute(
            "UPDATE ecr_repositories SET lifecycle_policy = NULL, lifecycle_updated = NULL WHERE id = ?1",
            [repo.id],
        )?;
        Ok(repo)
    })?;
    Ok(DeleteLifecyclePolicyResponse {
        last_evaluated_at: repo.lifecycle_updated.map(millis_to_epoch),
        lifecycle_policy_text: repo.lifecycle_policy,
        registry_id: Some(repo.account),
        repository_name: Some(repo.name),
    })
}

fn facts(images: &[images::ImageRow]) -> Vec<ImageFacts> {
    images
        .iter()
        .map(|i| ImageFacts {
            digest: i.digest.clone(),
            tags: i.tags.clone(),
            pushed_at_ms: i.pushed_at,
        })
        .collect()
}

/// `StartLifecyclePolicyPreview`: the given policy (or the repository's)
/// evaluated over the repository as it is now; the result is kept for
/// `GetLifecyclePolicyPreview`.
pub fn start_preview(
    ecr: &Ecr,
    ctx: &Ctx,
    req: StartLifecyclePolicyPreviewRequest,
) -> ApiResult<StartLifecyclePolicyPreviewResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    let now = ctx.now_millis();
    let (repo, text) = ecr.store.write(|tx| {
        let repo = require(tx, &ctx.account, &ctx.region, &req.repository_name)?;
        let text = match (&req.lifecycle_policy_text, &repo.lifecycle_policy) {
            (Some(t), _) | (None, Some(t)) => t.clone(),
            (None, None) => return Err(not_found(&repo)),
        };
        let policy = parse(&text)?;
        let all = images::all(tx, repo.id)?;
        let results: Vec<serde_json::Value> = lifecycle::preview(&policy, &facts(&all), now)
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "digest": r.image_digest, "tags": r.image_tags,
                    "pushedAt": r.image_pushed_at_ms, "rule": r.applied_rule_priority,
                })
            })
            .collect();
        tx.execute(
            "INSERT OR REPLACE INTO ecr_lifecycle_previews (repository_id, policy, status, result, started_at) \
             VALUES (?1, ?2, 'COMPLETE', ?3, ?4)",
            params![repo.id, text, serde_json::to_string(&results)?, now],
        )?;
        Ok((repo, text))
    })?;
    Ok(StartLifecyclePolicyPreviewResponse {
        lifecycle_policy_text: Some(text),
        registry_id: Some(repo.account),
        repository_name: Some(repo.name),
        status: Some(LifecyclePolicyPreviewStatus::InProgress),
    })
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    digest: String,
    tags: Vec<String>,
    pushed_at: i64,
    rule: i64,
}

/// `GetLifecyclePolicyPreview`.
pub fn get_preview(
    ecr: &Ecr,
    ctx: &Ctx,
    req: GetLifecyclePolicyPreviewRequest,
) -> ApiResult<GetLifecyclePolicyPreviewResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    let (repo, row) = ecr.store.read(|conn| {
        let repo = require(conn, &ctx.account, &ctx.region, &req.repository_name)?;
        let row: Option<(String, String, Option<String>)> = conn
            .query_row(
                "SELECT policy, status, result FROM ecr_lifecycle_previews WHERE repository_id = ?1",
                [repo.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok((repo, row))
    })?;
    let (policy, status, result) = row.ok_or_else(|| {
        ApiError::new(
            "LifecyclePolicyPreviewNotFoundException",
            format!(
                "There is no dry run for the repository with name '{}' in the registry with id '{}'",
                repo.name, repo.account
            ),
        )
    })?;
    let stored: Vec<Stored> = serde_json::from_str(result.as_deref().unwrap_or("[]"))?;
    let total = stored.len() as i64;
    let status_filter = req.filter.as_ref().and_then(|f| f.tag_status);
    let ids = req.image_ids.clone().unwrap_or_default();
    let kept: Vec<Stored> = stored
        .into_iter()
        .filter(|s| match status_filter {
            Some(TagStatus::Tagged) => !s.tags.is_empty(),
            Some(TagStatus::Untagged) => s.tags.is_empty(),
            _ => true,
        })
        .filter(|s| {
            ids.is_empty()
                || ids.iter().any(|id| {
                    id.image_digest.as_ref().is_none_or(|d| *d == s.digest)
                        && id.image_tag.as_ref().is_none_or(|t| s.tags.contains(t))
                })
        })
        .collect();
    let size = crate::paging::page_size(req.max_results, 100)?;
    let start = match req.next_token.as_deref() {
        Some(t) => crate::paging::offset(t, "preview")
            .ok_or_else(|| ApiError::invalid_parameter("Invalid nextToken."))?,
        None => 0,
    };
    let (page, token) = crate::paging::offset_page(kept, start, size, "preview");
    Ok(GetLifecyclePolicyPreviewResponse {
        lifecycle_policy_text: Some(policy),
        next_token: token,
        preview_results: Some(
            page.into_iter()
                .map(|s| LifecyclePolicyPreviewResult {
                    action: Some(LifecyclePolicyRuleAction {
                        target_storage_class: None,
                        r#type: Some(ImageActionType::Expire),
                    }),
                    applied_rule_priority: Some(s.rule),
                    image_digest: Some(s.digest),
                    image_pushed_at: Some(millis_to_epoch(s.pushed_at)),
                    image_tags: (!s.tags.is_empty()).then_some(s.tags),
                    storage_class: None,
                })
                .collect(),
        ),
        registry_id: Some(repo.account),
        repository_name: Some(repo.name),
        status: Some(if status == "COMPLETE" {
            LifecyclePolicyPreviewStatus::Complete
        } else {
            LifecyclePolicyPreviewStatus::InProgress
        }),
        summary: Some(LifecyclePolicyPreviewSummary {
            expiring_image_total_count: Some(total),
            transitioning_image_total_counts: None,
        }),
    })
}

/// Expire what `repo`'s lifecycle policy says, now, in one transaction:
/// the digests expired. An image an index still references is kept (the
/// index goes first, at a later pass).
pub fn enforce(ecr: &Ecr, repo_id: i64, now_ms: i64) -> ApiResult<Vec<String>> {
    ecr.store.write(|tx| {
        let text: Option<String> = tx
            .query_row(
                "SELECT lifecycle_policy FROM ecr_repositories WHERE id = ?1",
                [repo_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let Some(text) = text else {
            return Ok(Vec::new());
        };
        let policy = parse(&text)?;
        let all = images::all(tx, repo_id)?;
        let mut expired = Vec::new();
        for e in lifecycle::evaluate(&policy, &facts(&all), now_ms) {
            match images::delete(tx, repo_id, &Reference::Digest(e.digest.clone()), now_ms)? {
                Ok(d) => expired.push(d),
                Err(DeleteRefused::ReferencedByIndex | DeleteRefused::NotFound) => {}
            }
        }
        tx.execute(
            "UPDATE ecr_repositories SET lifecycle_updated = ?1 WHERE id = ?2",
            params![now_ms, repo_id],
        )?;
        Ok(expired)
    })
}
