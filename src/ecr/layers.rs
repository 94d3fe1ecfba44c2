//! Layers: which blobs a repository holds (`ecr_layers`), uploads in
//! progress (`ecr_uploads`), and ECR's layer API:
//! `BatchCheckLayerAvailability`, `InitiateLayerUpload`, `UploadLayerPart`,
//! `CompleteLayerUpload`, `GetDownloadUrlForLayer`. The registry protocol's
//! blob uploads go through the same functions.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::blobs::FinishError;
use super::names::valid_digest;
use super::repositories::{require, Repo};
use super::shapes::*;
use super::{check_registry, Ecr};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

/// The part size advertised: what a JSON request carries in base64
/// within the pipeline's 10 MiB body limit.
pub const PART_SIZE: i64 = 5 * 1024 * 1024;

/// The size of a blob the repository holds.
pub fn linked(conn: &Connection, repo_id: i64, digest: &str) -> ApiResult<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT size FROM ecr_layers WHERE repository_id = ?1 AND digest = ?2",
            params![repo_id, digest],
            |r| r.get(0),
        )
        .optional()?)
}

/// Make a stored blob part of a repository (again: its grace restarts).
pub fn link(tx: &Transaction, repo_id: i64, digest: &str, size: i64, now_ms: i64) -> ApiResult<()> {
    tx.execute(
        "INSERT INTO ecr_layers (repository_id, digest, size, linked_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (repository_id, digest) DO UPDATE SET linked_at = MAX(linked_at, excluded.linked_at)",
        params![repo_id, digest, size, now_ms],
    )?;
    Ok(())
}

/// Whether any repository holds the blob (a mount's source check, the
/// collector).
pub fn linked_anywhere(conn: &Connection, digest: &str) -> ApiResult<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM ecr_layers WHERE digest = ?1)",
        [digest],
        |r| r.get(0),
    )?)
}

/// Record a new upload into `repo`.
pub fn record_upload(tx: &Transaction, repo_id: i64, id: &str, now_ms: i64) -> ApiResult<()> {
    tx.execute(
        "INSERT INTO ecr_uploads (id, repository_id, started_at) VALUES (?1, ?2, ?3)",
        params![id, repo_id, now_ms],
    )?;
    Ok(())
}

/// The repository an upload belongs to.
pub fn upload_repository(conn: &Connection, id: &str) -> ApiResult<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT repository_id FROM ecr_uploads WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?)
}

/// Forget an upload (finished or cancelled).
pub fn forget_upload(tx: &Transaction, id: &str) -> ApiResult<()> {
    tx.execute("DELETE FROM ecr_uploads WHERE id = ?1", [id])?;
    Ok(())
}

/// Every upload (id, started) the store knows, for the collector.
pub fn uploads(conn: &Connection) -> ApiResult<Vec<(String, i64)>> {
    let mut st = conn.prepare("SELECT id, started_at FROM ecr_uploads")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn upload_not_found(id: &str, repo: &Repo) -> ApiError {
    ApiError::new(
        "UploadNotFoundException",
        format!(
            "The upload with id '{id}' does not exist in the repository with name '{}' in the registry with id '{}'",
            repo.name, repo.account
        ),
    )
}

/// The upload `id` of `repo`, or ECR's `UploadNotFoundException`.
fn require_upload(ecr: &Ecr, ctx: &Ctx, name: &str, id: &str) -> ApiResult<Repo> {
    ecr.store.read(|conn| {
        let repo = require(conn, &ctx.account, &ctx.region, name)?;
        match upload_repository(conn, id)? {
            Some(r) if r == repo.id => Ok(repo),
            _ => Err(upload_not_found(id, &repo)),
        }
    })
}

/// `BatchCheckLayerAvailability`.
pub fn batch_check_availability(
    ecr: &Ecr,
    ctx: &Ctx,
    req: BatchCheckLayerAvailabilityRequest,
) -> ApiResult<BatchCheckLayerAvailabilityResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    let (layers, failures) = ecr.store.read(|conn| {
        let repo = require(conn, &ctx.account, &ctx.region, &req.repository_name)?;
        let (mut layers, mut failures) = (Vec::new(), Vec::new());
        for d in &req.layer_digests {
            if !valid_digest(d) {
                failures.push(LayerFailure {
                    failure_code: Some(LayerFailureCode::InvalidLayerDigest),
                    failure_reason: Some("Invalid layer digest".into()),
                    layer_digest: Some(d.clone()),
                });
                continue;
            }
            match linked(conn, repo.id, d)? {
                Some(size) => layers.push(Layer {
                    layer_availability: Some(LayerAvailability::Available),
                    layer_digest: Some(d.clone()),
                    layer_size: Some(size),
                    media_type: None,
                }),
                None => failures.push(LayerFailure {
                    failure_code: Some(LayerFailureCode::MissingLayerDigest),
                    failure_reason: Some("Layer digest not found".into()),
                    layer_digest: Some(d.clone()),
                }),
            }
        }
        Ok((layers, failures))
    })?;
    Ok(BatchCheckLayerAvailabilityResponse {
        failures: Some(failures),
        layers: Some(layers),
    })
}

/// `InitiateLayerUpload`.
pub fn initiate_upload(
    ecr: &Ecr,
    ctx: &Ctx,
    req: InitiateLayerUploadRequest,
) -> ApiResult<InitiateLayerUploadResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    let repo = ecr
        .store
        .read(|conn| require(conn, &ctx.account, &ctx.region, &req.repository_name))?;
    let id = ecr.blobs.start().map_err(io_error)?;
    ecr.store
        .write(|tx| record_upload(tx, repo.id, &id, ctx.now_millis()))?;
    Ok(InitiateLayerUploadResponse {
        part_size: Some(PART_SIZE),
        upload_id: Some(id),
    })
}

/// `UploadLayerPart`: parts arrive in order, each starting where the last
/// ended.
pub fn upload_part(
    ecr: &Ecr,
    ctx: &Ctx,
    req: UploadLayerPartRequest,
) -> ApiResult<UploadLayerPartResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    let repo = require_upload(ecr, ctx, &req.repository_name, &req.upload_id)?;
    let bytes = STANDARD.decode(&req.layer_part_blob).map_err(|_| {
        ApiError::invalid_parameter("Invalid parameter at 'layerPartBlob': not base64")
    })?;
    let have = ecr.blobs.upload_size(&req.upload_id).unwrap_or(0) as i64;
    let expected_last = req.part_first_byte + bytes.len() as i64 - 1;
    if req.part_first_byte != have || req.part_last_byte != expected_last {
        return Err(ApiError::new(
            "InvalidLayerPartException",
            format!(
                "The layer part ({}-{}) is not the next part of upload '{}': {} bytes received so far, {} in this part",
                req.part_first_byte,
                req.part_last_byte,
                req.upload_id,
                have,
                bytes.len()
            ),
        ));
    }
    let size = ecr.blobs.append(&req.upload_id, &bytes).map_err(io_error)? as i64;
    Ok(UploadLayerPartResponse {
        last_byte_received: Some(size - 1),
        registry_id: Some(repo.account),
        repository_name: Some(repo.name),
        upload_id: Some(req.upload_id),
    })
}

/// Finish upload `id` as blob `digest` in `repo`: the file verified and
/// moved into place, then linked in the repository. Errors in ECR's words.
pub fn finish(ecr: &Ecr, repo: &Repo, id: &str, digest: &str, now_ms: i64) -> ApiResult<i64> {
    if !valid_digest(digest) {
        return Err(ApiError::new(
            "InvalidLayerException",
            format!("Invalid layer digest '{digest}'"),
        ));
    }
    let size = match ecr.blobs.finish(id, digest) {
        Ok(size) => size as i64,
        Err(FinishError::Unknown) => return Err(upload_not_found(id, repo)),
        Err(FinishError::Mismatch { expected, actual }) => {
            ecr.blobs.cancel(id);
            ecr.store.write(|tx| forget_upload(tx, id))?;
            return Err(ApiError::new(
                "InvalidLayerException",
                format!("The layer digest {expected} does not match the uploaded content's digest {actual}"),
            ));
        }
        Err(FinishError::Io(e)) => return Err(io_error(e)),
    };
    ecr.store.write(|tx| {
        forget_upload(tx, id)?;
        link(tx, repo.id, digest, size, now_ms)
    })?;
    Ok(size)
}

/// `CompleteLayerUpload`.
pub fn complete_upload(
    ecr: &Ecr,
    ctx: &Ctx,
    req: CompleteLayerUploadRequest,
) -> ApiResult<CompleteLayerUploadResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    let repo = require_upload(ecr, ctx, &req.repository_name, &req.upload_id)?;
    let digest = match req.layer_digests.as_slice() {
        [d] => d.clone(),
        _ => {
            return Err(ApiError::invalid_parameter(
                "Invalid parameter at 'layerDigests': exactly one digest is expected",
            ))
        }
    };
    if ecr.blobs.upload_size(&req.upload_id) == Some(0) {
        return Err(ApiError::new(
            "EmptyUploadException",
            format!("The upload with id '{}' is empty", req.upload_id),
        ));
    }
    let exists = ecr
        .store
        .read(|conn| linked(conn, repo.id, &digest))?
        .is_some();
    if exists {
        ecr.blobs.cancel(&req.upload_id);
        ecr.store.write(|tx| forget_upload(tx, &req.upload_id))?;
        return Err(ApiError::new(
            "LayerAlreadyExistsException",
            format!(
                "The layer with digest '{digest}' already exists in the repository with name '{}' in registry with id '{}'",
                repo.name, repo.account
            ),
        ));
    }
    finish(ecr, &repo, &req.upload_id, &digest, ctx.now_millis())?;
    Ok(CompleteLayerUploadResponse {
        layer_digest: Some(digest),
        registry_id: Some(repo.account),
        repository_name: Some(repo.name),
        upload_id: Some(req.upload_id),
    })
}

/// `GetDownloadUrlForLayer`: the registry's own blob URL (it asks for the
/// same credentials as the rest of the registry).
pub fn download_url(
    ecr: &Ecr,
    ctx: &Ctx,
    req: GetDownloadUrlForLayerRequest,
) -> ApiResult<GetDownloadUrlForLayerResponse> {
    check_registry(ctx, req.registry_id.as_deref())?;
    ecr.store.read(|conn| {
        let repo = require(conn, &ctx.account, &ctx.region, &req.repository_name)?;
        if !valid_digest(&req.layer_digest) {
            return Err(ApiError::new(
                "InvalidParameterException",
                format!("Invalid layer digest '{}'", req.layer_digest),
            ));
        }
        match linked(conn, repo.id, &req.layer_digest)? {
            Some(_) => Ok(()),
            None => Err(ApiError::new(
                "LayersNotFoundException",
                format!(
                    "The layer with digest '{}' does not exist in the repository with name '{}' in the registry with id '{}'",
                    req.layer_digest, repo.name, repo.account
                ),
            )),
        }
    })?;
    Ok(GetDownloadUrlForLayerResponse {
        download_url: Some(format!(
            "http://{}/v2/{}/blobs/{}",
            ecr.host, req.repository_name, req.layer_digest
        )),
        layer_digest: Some(req.layer_digest),
    })
}

pub fn io_error(e: std::io::Error) -> ApiError {
    ApiError::internal(format!("registry storage: {e}"))
}
