//! Images: a manifest per digest in a repository, and tags pointing at
//! them. `PutImage`, `BatchGetImage`, `BatchDeleteImage`,
//! `DescribeImages`, `ListImages`; and the functions the registry protocol
//! shares with them, so that both paths check the same rules (tag
//! immutability, referenced layers present, digests verified).

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::manifest::{Kind, Manifest};
use super::names::{digest_of, valid_digest, valid_tag, Reference};
use super::repositories::{require, Repo};
use super::shapes::*;
use super::{check_registry, id_text, image_not_found, tag_immutable, Ecr};
use crate::context::{millis_to_epoch, Ctx};
use crate::error::{ApiError, ApiResult};

/// An image as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRow {
    pub digest: String,
    pub media_type: String,
    pub artifact_media_type: Option<String>,
    pub manifest: Vec<u8>,
    pub size: i64,
    pub pushed_at: i64,
    pub last_pull: Option<i64>,
    /// Its tags, sorted.
    pub tags: Vec<String>,
}

const COLUMNS: &str =
    "digest, media_type, artifact_media_type, manifest, size, pushed_at, last_pull";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<ImageRow> {
    Ok(ImageRow {
        digest: r.get(0)?,
        media_type: r.get(1)?,
        artifact_media_type: r.get(2)?,
        manifest: r.get(3)?,
        size: r.get(4)?,
        pushed_at: r.get(5)?,
        last_pull: r.get(6)?,
        tags: Vec::new(),
    })
}

/// The tags of an image.
pub fn tags_of(conn: &Connection, repo_id: i64, digest: &str) -> ApiResult<Vec<String>> {
    // Sorted here: an ORDER BY would lead SQLite to walk the primary key
    // (every tag of the repository) instead of the index by digest.
    let mut st = conn.prepare_cached(
        "SELECT tag FROM ecr_image_tags WHERE repository_id = ?1 AND digest = ?2",
    )?;
    let rows = st.query_map(params![repo_id, digest], |r| r.get(0))?;
    let mut tags: Vec<String> = rows.collect::<Result<_, _>>()?;
    tags.sort();
    Ok(tags)
}

/// The image with `digest`, with its tags.
pub fn by_digest(conn: &Connection, repo_id: i64, digest: &str) -> ApiResult<Option<ImageRow>> {
    let row = conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM ecr_images WHERE repository_id = ?1 AND digest = ?2"),
            params![repo_id, digest],
            from_row,
        )
        .optional()?;
    match row {
        Some(mut i) => {
            i.tags = tags_of(conn, repo_id, digest)?;
            Ok(Some(i))
        }
        None => Ok(None),
    }
}

/// The digest a tag points at.
pub fn tag_digest(conn: &Connection, repo_id: i64, tag: &str) -> ApiResult<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT digest FROM ecr_image_tags WHERE repository_id = ?1 AND tag = ?2",
            params![repo_id, tag],
            |r| r.get(0),
        )
        .optional()?)
}

/// The image a reference names.
pub fn resolve(conn: &Connection, repo_id: i64, r: &Reference) -> ApiResult<Option<ImageRow>> {
    let digest = match r {
        Reference::Digest(d) => d.clone(),
        Reference::Tag(t) => match tag_digest(conn, repo_id, t)? {
            Some(d) => d,
            None => return Ok(None),
        },
    };
    by_digest(conn, repo_id, &digest)
}

/// Every image of a repository with its tags, oldest push first.
pub fn all(conn: &Connection, repo_id: i64) -> ApiResult<Vec<ImageRow>> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM ecr_images WHERE repository_id = ?1 ORDER BY pushed_at, digest"
    ))?;
    let mut images: Vec<ImageRow> = st
        .query_map([repo_id], from_row)?
        .collect::<Result<_, _>>()?;
    let mut st = conn
        .prepare("SELECT digest, tag FROM ecr_image_tags WHERE repository_id = ?1 ORDER BY tag")?;
    let mut tags: std::collections::HashMap<String, Vec<String>> = Default::default();
    for row in st.query_map([repo_id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))? {
        let (d, t) = row?;
        tags.entry(d).or_default().push(t);
    }
    for i in &mut images {
        i.tags = tags.remove(&i.digest).unwrap_or_default();
    }
    Ok(images)
}

/// Record a pull of an image (`lastRecordedPullTime`).
pub fn record_pull(tx: &Transaction, repo_id: i64, digest: &str, now_ms: i64) -> ApiResult<()> {
    tx.execute(
        "UPDATE ecr_images SET last_pull = ?3 WHERE repository_id = ?1 AND digest = ?2",
        params![repo_id, digest, now_ms],
    )?;
    Ok(())
}

/// What a manifest push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub digest: String,
    pub media_type: String,
    /// The image existed already, and so did the tag if one was given.
    pub unchanged: bool,
}

/// Push a manifest into `repo`, tagged `tag` if given: the one path of both
/// `PutImage` and the registry's manifest `PUT`. The manifest must parse,
/// match `expected_digest` when one is given, and reference only blobs
/// (or, for an index, images) the repository holds; a tag of an immutable
/// repository cannot move.
pub fn push(
    tx: &Transaction,
    repo: &Repo,
    bytes: &[u8],
    declared: Option<&str>,
    tag: Option<&str>,
    expected_digest: Option<&str>,
    now_ms: i64,
) -> ApiResult<Pushed> {
    let digest = digest_of(bytes);
    if let Some(e) = expected_digest {
        if e != digest {
            return Err(ApiError::new(
                "ImageDigestDoesNotMatchException",
                format!("The specified image digest {e} does not match the digest of the manifest {digest}"),
            ));
        }
    }
    if let Some(t) = tag {
        if !valid_tag(t) {
            return Err(ApiError::invalid_parameter(format!(
                "Invalid parameter at 'imageTag' failed to satisfy constraint: 'must satisfy regular expression '[a-zA-Z0-9_][a-zA-Z0-9_.-]{{0,127}}'' (got '{t}')"
            )));
        }
    }
    let manifest = Manifest::parse(bytes, declared).map_err(|e| {
        ApiError::invalid_parameter(format!(
            "Invalid parameter at 'ImageManifest' failed to satisfy constraint: '{e}'"
        ))
    })?;
    let existing = by_digest(tx, repo.id, &digest)?;
    let current = match tag {
        Some(t) => tag_digest(tx, repo.id, t)?,
        None => None,
    };
    if let (Some(t), Some(cur)) = (tag, &current) {
        if *cur != digest && !repo.tag_is_mutable(t) {
            return Err(tag_immutable(&repo.name, t));
        }
    }
    let unchanged = existing.is_some() && (tag.is_none() || current.as_deref() == Some(&digest));
    if existing.is_none() {
        let size = match &manifest.kind {
            Kind::Image { .. } => {
                let missing: Vec<&str> = manifest
                    .blobs()
                    .into_iter()
                    .filter(|d| {
                        !matches!(super::layers::linked(tx, repo.id, &d.digest), Ok(Some(_)))
                    })
                    .map(|d| d.digest.as_str())
                    .collect();
                if !missing.is_empty() {
                    return Err(ApiError::new(
                        "LayersNotFoundException",
                        format!(
                            "The image manifest references layers that do not exist in the repository with name '{}' in the registry with id '{}': {}",
                            repo.name,
                            repo.account,
                            missing.join(", ")
                        ),
                    ));
                }
                manifest.layers_size()
            }
            Kind::Index { manifests } => {
                let mut size = 0;
                for m in manifests {
                    match by_digest(tx, repo.id, &m.digest)? {
                        Some(child) => size += child.size,
                        None => {
                            return Err(ApiError::new(
                                "ReferencedImagesNotFoundException",
                                format!(
                                    "The manifest list references images that do not exist in the repository with name '{}': {}",
                                    repo.name, m.digest
                                ),
                            ))
                        }
                    }
                }
                size
            }
        };
        tx.execute(
            "INSERT INTO ecr_images (repository_id, digest, media_type, artifact_media_type, \
             manifest, size, pushed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                repo.id,
                digest,
                manifest.media_type,
                manifest.artifact_media_type,
                bytes,
                size,
                now_ms
            ],
        )?;
        let refs = manifest
            .blobs()
            .into_iter()
            .chain(manifest.children())
            .map(|d| d.digest.clone());
        for r in refs {
            tx.execute(
                "INSERT OR IGNORE INTO ecr_image_refs (repository_id, image_digest, ref_digest) VALUES (?1, ?2, ?3)",
                params![repo.id, digest, r],
            )?;
        }
    }
    if let Some(t) = tag {
        tx.execute(
            "INSERT OR REPLACE INTO ecr_image_tags (repository_id, tag, digest) VALUES (?1, ?2, ?3)",
            params![repo.id, t, digest],
        )?;
    }
    Ok(Pushed {
        media_type: existing.map_or(manifest.media_type, |e| e.media_type),
        digest,
        unchanged,
    })
}

/// Why an image could not be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteRefused {
    NotFound,
    /// An index of the repository references it.
    ReferencedByIndex,
}

/// Delete by reference: a digest deletes the image and its tags; a tag
/// removes the tag, and the image with it when it was its last (as
/// `BatchDeleteImage` does). The digest it acted on.
pub fn delete(
    tx: &Transaction,
    repo_id: i64,
    r: &Reference,
    now_ms: i64,
) -> ApiResult<Result<String, DeleteRefused>> {
    let image = match resolve(tx, repo_id, r)? {
        Some(i) => i,
        None => return Ok(Err(DeleteRefused::NotFound)),
    };
    if let Reference::Tag(t) = r {
        if image.tags.len() > 1 {
            return untag(tx, repo_id, t);
        }
    }
    let referenced: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM ecr_image_refs WHERE repository_id = ?1 AND ref_digest = ?2)",
        params![repo_id, image.digest],
        |r| r.get(0),
    )?;
    if referenced {
        return Ok(Err(DeleteRefused::ReferencedByIndex));
    }
    let refs: Vec<String> = {
        let mut st = tx.prepare(
            "SELECT ref_digest FROM ecr_image_refs WHERE repository_id = ?1 AND image_digest = ?2",
        )?;
        let rows = st.query_map(params![repo_id, image.digest], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for sql in [
        "DELETE FROM ecr_image_tags WHERE repository_id = ?1 AND digest = ?2",
        "DELETE FROM ecr_image_refs WHERE repository_id = ?1 AND image_digest = ?2",
        "DELETE FROM ecr_images WHERE repository_id = ?1 AND digest = ?2",
    ] {
        tx.execute(sql, params![repo_id, image.digest])?;
    }
    // The layers only this image used stay in the repository for the
    // collector's grace from now (a push under way may have been told
    // they are there), then leave it; their files go once no repository
    // holds them.
    for r in refs {
        tx.execute(
            "UPDATE ecr_layers SET linked_at = ?3 WHERE repository_id = ?1 AND digest = ?2 AND NOT EXISTS \
             (SELECT 1 FROM ecr_image_refs WHERE repository_id = ?1 AND ref_digest = ?2)",
            params![repo_id, r, now_ms],
        )?;
    }
    Ok(Ok(image.digest))
}

/// Remove one tag; the image stays (untagged if it was its last).
pub fn untag(
    tx: &Transaction,
    repo_id: i64,
    tag: &str,
) -> ApiResult<Result<String, DeleteRefused>> {
    match tag_digest(tx, repo_id, tag)? {
        Some(d) => {
            tx.execute(
                "DELETE FROM ecr_image_tags WHERE repository_id = ?1 AND tag = ?2",
                params![repo_id, tag],
            )?;
            Ok(Ok(d))
        }
        None => Ok(Err(DeleteRefused::NotFound)),
    }
}

/// An `ImageIdentifier` as a reference; a digest and a tag must agree.
fn reference_of(
    conn: &Connection,
    repo_id: i64,
    id: &ImageIdentifier,
) -> Result<Reference, (ImageFailureCode, String)> {
    if let Some(d) = &id.image_digest {
        if !valid_digest(d) {
            return Err((
                ImageFailureCode::InvalidImageDigest,
                "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'".into(),
            ));
        }
    }
    match (&id.image_digest, &id.image_tag) {
        (Some(d), Some(t)) => match tag_digest(conn, repo_id, t) {
            Ok(Some(td)) if td == *d => Ok(Reference::Digest(d.clone())),
            Ok(Some(_)) => Err((
                ImageFailureCode::ImageTagDoesNotMatchDigest,
                "Invalid request parameters: image tag does not match image digest".into(),
            )),
            _ => Err((
                ImageFailureCode::ImageNotFound,
                "Requested image not found".into(),
            )),
        },
        (Some(d), None) => Ok(Reference::Digest(d.clone())),
        (None, Some(t)) => Ok(Reference::Tag(t.clone())),
        (None, None) => Err((
            ImageFailureCode::MissingDigestAndTag,
            "Invalid request parameters: both tag and digest cannot be null".into(),
        )),
    }
}

fn failure(id: &ImageIdentifier, code: ImageFailureCode, reason: String) -> ImageFailure {
    ImageFailure {
        failure_code: Some(code),
        failure_reason: Some(reason),
        image_id: Some(id.clone()),
    }
}

fn image_shape(repo: &Repo, i: &ImageRow, tag: Option<String>) -> Image {
    Image {
        image_id: Some(ImageIdentifier {
            image_digest: Some(i.digest.clone()),
            image_tag: tag,
        }),
        image_manifest: Some(String::from_utf8_lossy(&i.manifest).into_owned()),
        image_manifest_media_type: Some(i.media_type.clone()),
        registry_id: Some(repo.account.clone()),
        repository_name: Some(repo.name.clone()),
    }
}

/// `PutImage`.
pub fn put_image(ecr: &Ecr, ctx: &Ctx, req: PutImageRequest) -> ApiResult<PutImageResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    let (repo, pushed) = ecr.store.write(|tx| {
        let repo = require(tx, &ctx.account, &ctx.region, &req.repository_name)?;
        let pushed = push(
            tx,
            &repo,
            req.image_manifest.as_bytes(),
            req.image_manifest_media_type.as_deref(),
            req.image_tag.as_deref(),
            req.image_digest.as_deref(),
            ctx.now_millis(),
        )?;
        if pushed.unchanged {
            return Err(ApiError::new(
                "ImageAlreadyExistsException",
                format!(
                    "Image with digest '{}' and tag '{}' already exists in the repository with name '{}' in registry with id '{}'",
                    pushed.digest,
                    req.image_tag.as_deref().unwrap_or("null"),
                    repo.name,
                    repo.account
                ),
            ));
        }
        Ok((repo, pushed))
    })?;
    Ok(PutImageResponse {
        image: Some(Image {
            image_id: Some(ImageIdentifier {
                image_digest: Some(pushed.digest),
                image_tag: req.image_tag.clone(),
            }),
            image_manifest: Some(req.image_manifest),
            image_manifest_media_type: Some(pushed.media_type),
            registry_id: Some(repo.account),
            repository_name: Some(repo.name),
        }),
    })
}

/// `BatchGetImage`: each image asked, or a failure for it; a pull as far
/// as `lastRecordedPullTime` is concerned.
pub fn batch_get_image(
    ecr: &Ecr,
    ctx: &Ctx,
    req: BatchGetImageRequest,
) -> ApiResult<BatchGetImageResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    let accepted = req.accepted_media_types.clone();
    let (images, failures) = ecr.store.write(|tx| {
        let repo = require(tx, &ctx.account, &ctx.region, &req.repository_name)?;
        let (mut images, mut failures) = (Vec::new(), Vec::new());
        for id in &req.image_ids {
            let r = match reference_of(tx, repo.id, id) {
                Ok(r) => r,
                Err((code, reason)) => {
                    failures.push(failure(id, code, reason));
                    continue;
                }
            };
            match resolve(tx, repo.id, &r)? {
                Some(i)
                    if accepted
                        .as_ref()
                        .is_some_and(|a| !a.contains(&i.media_type)) =>
                {
                    failures.push(failure(
                        id,
                        ImageFailureCode::ImageNotFound,
                        format!(
                            "Requested image's media type {} is not among the accepted media types",
                            i.media_type
                        ),
                    ));
                }
                Some(i) => {
                    record_pull(tx, repo.id, &i.digest, ctx.now_millis())?;
                    let tag = id.image_tag.clone();
                    images.push(image_shape(&repo, &i, tag));
                }
                None => failures.push(failure(
                    id,
                    ImageFailureCode::ImageNotFound,
                    "Requested image not found".into(),
                )),
            }
        }
        Ok((images, failures))
    })?;
    Ok(BatchGetImageResponse {
        failures: Some(failures),
        images: Some(images),
    })
}

/// `BatchDeleteImage`.
pub fn batch_delete_image(
    ecr: &Ecr,
    ctx: &Ctx,
    req: BatchDeleteImageRequest,
) -> ApiResult<BatchDeleteImageResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    let (deleted, failures) = ecr.store.write(|tx| {
        let repo = require(tx, &ctx.account, &ctx.region, &req.repository_name)?;
        let (mut deleted, mut failures) = (Vec::new(), Vec::new());
        for id in &req.image_ids {
            let r = match reference_of(tx, repo.id, id) {
                Ok(r) => r,
                Err((code, reason)) => {
                    failures.push(failure(id, code, reason));
                    continue;
                }
            };
            match delete(tx, repo.id, &r, ctx.now_millis())? {
                Ok(digest) => deleted.push(ImageIdentifier {
                    image_digest: Some(digest),
                    image_tag: id.image_tag.clone(),
                }),
                Err(DeleteRefused::NotFound) => failures.push(failure(
                    id,
                    ImageFailureCode::ImageNotFound,
                    "Requested image not found".into(),
                )),
                Err(DeleteRefused::ReferencedByIndex) => failures.push(failure(
                    id,
                    ImageFailureCode::ImageReferencedByManifestList,
                    "Requested image is referenced by a manifest list".into(),
                )),
            }
        }
        Ok((deleted, failures))
    })?;
    if !deleted.is_empty() {
        ecr.bus.wake(crate::events::Topic::Registry);
    }
    Ok(BatchDeleteImageResponse {
        failures: Some(failures),
        image_ids: Some(deleted),
    })
}

fn tag_status_keeps(status: Option<TagStatus>, i: &ImageRow) -> bool {
    match status {
        Some(TagStatus::Tagged) => !i.tags.is_empty(),
        Some(TagStatus::Untagged) => i.tags.is_empty(),
        _ => true,
    }
}

fn detail(repo: &Repo, i: &ImageRow) -> ImageDetail {
    ImageDetail {
        artifact_media_type: i.artifact_media_type.clone(),
        image_digest: Some(i.digest.clone()),
        image_manifest_media_type: Some(i.media_type.clone()),
        image_pushed_at: Some(millis_to_epoch(i.pushed_at)),
        image_size_in_bytes: Some(i.size),
        image_tags: (!i.tags.is_empty()).then(|| i.tags.clone()),
        last_recorded_pull_time: i.last_pull.map(millis_to_epoch),
        registry_id: Some(repo.account.clone()),
        repository_name: Some(repo.name.clone()),
        ..Default::default()
    }
}

/// The images of a listing after `next_token` (a digest), filtered.
fn listing(
    images: Vec<ImageRow>,
    status: Option<TagStatus>,
    max_results: Option<i64>,
    next_token: Option<&str>,
) -> ApiResult<(Vec<ImageRow>, Option<String>)> {
    let size = crate::paging::page_size(max_results, 1000)?;
    let after: Option<(i64, String)> = next_token.map(crate::paging::decode_as).transpose()?;
    let images: Vec<ImageRow> = images
        .into_iter()
        .filter(|i| tag_status_keeps(status, i))
        .filter(|i| {
            after
                .as_ref()
                .is_none_or(|(p, d)| (i.pushed_at, &i.digest) > (*p, d))
        })
        .collect();
    Ok(crate::paging::page(images, size, |i| {
        serde_json::json!([i.pushed_at, i.digest])
    }))
}

/// `DescribeImages`.
pub fn describe_images(
    ecr: &Ecr,
    ctx: &Ctx,
    req: DescribeImagesRequest,
) -> ApiResult<DescribeImagesResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    let (repo, images) = ecr.store.read(|conn| {
        let repo = require(conn, &ctx.account, &ctx.region, &req.repository_name)?;
        let images = all(conn, repo.id)?;
        Ok((repo, images))
    })?;
    if let Some(ids) = &req.image_ids {
        if req.max_results.is_some() || req.next_token.is_some() {
            return Err(ApiError::invalid_parameter(
                "maxResults and nextToken cannot be used with imageIds",
            ));
        }
        let mut out: Vec<ImageDetail> = Vec::new();
        for id in ids {
            let found = images.iter().find(|i| {
                id.image_digest.as_ref().is_none_or(|d| *d == i.digest)
                    && id.image_tag.as_ref().is_none_or(|t| i.tags.contains(t))
                    && (id.image_digest.is_some() || id.image_tag.is_some())
            });
            match found {
                Some(i) => {
                    if !out
                        .iter()
                        .any(|o| o.image_digest.as_deref() == Some(&i.digest))
                    {
                        out.push(detail(&repo, i));
                    }
                }
                None => {
                    return Err(image_not_found(
                        &repo.account,
                        &repo.name,
                        &id_text(id.image_digest.as_deref(), id.image_tag.as_deref()),
                    ))
                }
            }
        }
        return Ok(DescribeImagesResponse {
            image_details: Some(out),
            next_token: None,
        });
    }
    let status = req.filter.as_ref().and_then(|f| f.tag_status);
    let (page, token) = listing(images, status, req.max_results, req.next_token.as_deref())?;
    Ok(DescribeImagesResponse {
        image_details: Some(page.iter().map(|i| detail(&repo, i)).collect()),
        next_token: token,
    })
}

/// `ListImages`: an id per tag, and one without a tag for untagged images.
pub fn list_images(ecr: &Ecr, ctx: &Ctx, req: ListImagesRequest) -> ApiResult<ListImagesResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    let images = ecr.store.read(|conn| {
        let repo = require(conn, &ctx.account, &ctx.region, &req.repository_name)?;
        all(conn, repo.id)
    })?;
    let status = req.filter.as_ref().and_then(|f| f.tag_status);
    let (page, token) = listing(images, status, req.max_results, req.next_token.as_deref())?;
    let mut ids = Vec::new();
    for i in page {
        if i.tags.is_empty() {
            ids.push(ImageIdentifier {
                image_digest: Some(i.digest.clone()),
                image_tag: None,
            });
        }
        for t in i.tags {
            ids.push(ImageIdentifier {
                image_digest: Some(i.digest.clone()),
                image_tag: Some(t),
            });
        }
    }
    Ok(ListImagesResponse {
        image_ids: Some(ids),
        next_token: token,
    })
}
