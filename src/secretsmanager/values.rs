//! Versions and their values: `GetSecretValue`, `BatchGetSecretValue`,
//! `PutSecretValue`, `UpdateSecretVersionStage`, `ListSecretVersionIds`;
//! the staging labels' rules; and [`SecretsManager::resolve_value_from`],
//! the ECS agent's way in.
//!
//! Every version's value is sealed by KMS under the secret's key, bound to
//! (`SecretARN`, `SecretVersionId`); it is opened only to be answered, or
//! to compare it with a repeated request's value.
//!
//! Staging labels, as AWS moves them: a new version is labelled
//! `AWSCURRENT` unless the caller names other labels (the first version of
//! a secret always is); whenever `AWSCURRENT` moves, the version that had
//! it takes `AWSPREVIOUS` (and the one that had `AWSPREVIOUS` loses it); a
//! label is on one version at most. A version without labels is
//! deprecated: it is kept, hidden from `DescribeSecret` and (unless asked
//! for) `ListSecretVersionIds`, and removed, oldest first, once a secret
//! has more than 100 versions.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use rusqlite::{params, Connection, OptionalExtension};

use super::secrets::{self, day_of, purge_expired, require, Secret, MANAGED_ALIAS};
use super::shapes::*;
use super::{
    decryption_failure, encryption_failure, invalid_next_token, invalid_parameter,
    value_not_found_for_stage, value_not_found_for_version, SecretsManager, VALUE_FROM_ERROR,
};
use crate::context::{millis_to_epoch, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::kms::keys::{b64, from_b64};

pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";
pub const AWSPENDING: &str = "AWSPENDING";
/// A value's size limit, in bytes (string or binary).
pub const MAX_VALUE_BYTES: usize = 65_536;
/// Versions kept per secret: past it the oldest deprecated ones go.
pub const MAX_VERSIONS: usize = 100;
/// Staging labels attached across a secret's versions.
pub const MAX_LABELS: usize = 20;

/// Which of `SecretString` and `SecretBinary` a version holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Binary,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Binary => "binary",
        }
    }

    fn parse(s: &str) -> rusqlite::Result<Kind> {
        match s {
            "string" => Ok(Kind::String),
            "binary" => Ok(Kind::Binary),
            other => Err(rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("bad stored kind {other}").into(),
            )),
        }
    }
}

/// A value in the clear. Its `Debug` shows its kind and length, never its
/// bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Plain {
    pub kind: Kind,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Plain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Plain({}, {} bytes)",
            self.kind.as_str(),
            self.bytes.len()
        )
    }
}

impl Plain {
    /// The value as `GetSecretValue` answers it: (`SecretString`,
    /// `SecretBinary`).
    fn wire(&self) -> ApiResult<(Option<String>, Option<String>)> {
        match self.kind {
            Kind::String => Ok((Some(self.text()?), None)),
            Kind::Binary => Ok((None, Some(b64(&self.bytes)))),
        }
    }

    fn text(&self) -> ApiResult<String> {
        String::from_utf8(self.bytes.clone())
            .map_err(|_| ApiError::internal("a stored secret string is not UTF-8"))
    }
}

fn too_long(field: &str) -> ApiError {
    ApiError::new(
        "ValidationException",
        format!("1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {MAX_VALUE_BYTES}"),
    )
}

/// The value a request gives, if any: `SecretString` or `SecretBinary`
/// (base64 on the wire), not both, at most 64 KiB.
pub fn plain_from_request(string: Option<&str>, binary: Option<&str>) -> ApiResult<Option<Plain>> {
    match (string, binary) {
        (Some(_), Some(_)) => Err(invalid_parameter(
            "You can't specify both a binary secret value and a string secret value in the same secret.",
        )),
        (Some(s), None) => {
            if s.len() > MAX_VALUE_BYTES {
                return Err(too_long("secretString"));
            }
            Ok(Some(Plain {
                kind: Kind::String,
                bytes: s.as_bytes().to_vec(),
            }))
        }
        (None, Some(b)) => {
            let bytes = from_b64("SecretBinary", b)?;
            if bytes.len() > MAX_VALUE_BYTES {
                return Err(too_long("secretBinary"));
            }
            if bytes.is_empty() {
                return Err(ApiError::new(
                    "ValidationException",
                    "1 validation error detected: Value at 'secretBinary' failed to satisfy constraint: Member must have length greater than or equal to 1",
                ));
            }
            Ok(Some(Plain {
                kind: Kind::Binary,
                bytes,
            }))
        }
        (None, None) => Ok(None),
    }
}

/// A version as stored (its value still sealed).
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub version_id: String,
    pub stages: Vec<String>,
    pub kind: Kind,
    sealed: Vec<u8>,
    pub created_at: i64,
}

impl Version {
    pub fn has(&self, stage: &str) -> bool {
        self.stages.iter().any(|s| s == stage)
    }

    fn stages_shape(&self) -> Option<Vec<String>> {
        (!self.stages.is_empty()).then(|| self.stages.clone())
    }
}

const COLUMNS: &str = "version_id, stages, kind, sealed, created_at";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Version> {
    let stages: String = r.get(1)?;
    Ok(Version {
        version_id: r.get(0)?,
        stages: serde_json::from_str(&stages).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
        })?,
        kind: Kind::parse(&r.get::<_, String>(2)?)?,
        sealed: r.get(3)?,
        created_at: r.get(4)?,
    })
}

/// A secret's versions, oldest first.
pub fn versions(conn: &Connection, arn: &str) -> ApiResult<Vec<Version>> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM sm_secret_versions WHERE arn = ?1 ORDER BY created_at, rowid"
    ))?;
    let rows = st.query_map([arn], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn version(conn: &Connection, arn: &str, version_id: &str) -> ApiResult<Option<Version>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM sm_secret_versions WHERE arn = ?1 AND version_id = ?2"),
            params![arn, version_id],
            from_row,
        )
        .optional()?)
}

fn save_stages(tx: &Connection, arn: &str, v: &Version) -> ApiResult<()> {
    tx.execute(
        "UPDATE sm_secret_versions SET stages = ?3 WHERE arn = ?1 AND version_id = ?2",
        params![arn, v.version_id, serde_json::to_string(&v.stages)?],
    )?;
    Ok(())
}

/// The labelled versions of a secret: `VersionIdsToStages`.
pub fn stages_of(conn: &Connection, arn: &str) -> ApiResult<BTreeMap<String, Vec<String>>> {
    Ok(versions(conn, arn)?
        .into_iter()
        .filter(|v| !v.stages.is_empty())
        .map(|v| (v.version_id, v.stages))
        .collect())
}

/// [`stages_of`] for every secret of (account, region), by ARN.
pub fn stages_of_account(
    conn: &Connection,
    account: &str,
    region: &str,
) -> ApiResult<HashMap<String, BTreeMap<String, Vec<String>>>> {
    let mut st = conn.prepare(
        "SELECT v.arn, v.version_id, v.stages FROM sm_secret_versions v \
         JOIN sm_secrets s ON s.arn = v.arn WHERE s.account = ?1 AND s.region = ?2",
    )?;
    let rows = st.query_map(params![account, region], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut out: HashMap<String, BTreeMap<String, Vec<String>>> = HashMap::new();
    for row in rows {
        let (arn, id, stages) = row?;
        let stages: Vec<String> = serde_json::from_str(&stages)?;
        if !stages.is_empty() {
            out.entry(arn).or_default().insert(id, stages);
        }
    }
    Ok(out)
}

fn seal(
    sm: &SecretsManager,
    tx: &Connection,
    secret: &Secret,
    version_id: &str,
    plain: &Plain,
    now_ms: i64,
) -> ApiResult<Vec<u8>> {
    sm.kms
        .seal(
            tx,
            &secret.account,
            &secret.region,
            secret.kms_key_id.as_deref(),
            MANAGED_ALIAS,
            &plain.bytes,
            &[("SecretARN", &secret.arn), ("SecretVersionId", version_id)],
            now_ms,
        )
        .map(|s| s.blob)
        .map_err(encryption_failure)
}

fn open(sm: &SecretsManager, conn: &Connection, secret: &Secret, v: &Version) -> ApiResult<Plain> {
    let (_, bytes) = sm
        .kms
        .unseal(
            conn,
            &secret.account,
            &secret.region,
            &v.sealed,
            &[
                ("SecretARN", &secret.arn),
                ("SecretVersionId", &v.version_id),
            ],
        )
        .map_err(decryption_failure)?;
    Ok(Plain {
        kind: v.kind,
        bytes,
    })
}

fn token_in_use(token: &str, arn: &str) -> ApiError {
    ApiError::new(
        "ResourceExistsException",
        format!("You can't use ClientRequestToken {token} because that value is already in use for a version of secret {arn}."),
    )
}

/// Whether `token` is the id of a version of `secret` that holds `plain`
/// already (a repeated request); an error when its version holds another
/// value (a version never changes).
pub fn replay(
    sm: &SecretsManager,
    tx: &Connection,
    secret: &Secret,
    token: &str,
    plain: &Plain,
) -> ApiResult<bool> {
    match version(tx, &secret.arn, token)? {
        Some(v) => {
            if v.kind == plain.kind && open(sm, tx, secret, &v)? == *plain {
                Ok(true)
            } else {
                Err(token_in_use(token, &secret.arn))
            }
        }
        None => Ok(false),
    }
}

/// What [`add_version`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Added {
    pub version_id: String,
    pub stages: Vec<String>,
    /// False when the request repeated one already served.
    pub created: bool,
}

/// Add a version holding `plain` to `secret`, its id `token` (a fresh
/// UUID without one), labelled `stages` (`AWSCURRENT` without them),
/// moving the labels as AWS does. The same token with the same value is
/// the same version (nothing changes); with another value it is refused.
pub fn add_version(
    sm: &SecretsManager,
    tx: &Connection,
    secret: &Secret,
    token: Option<&str>,
    plain: &Plain,
    stages: Option<&[String]>,
    now_ms: i64,
) -> ApiResult<Added> {
    let version_id = token
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if replay(sm, tx, secret, &version_id, plain)? {
        let v = version(tx, &secret.arn, &version_id)?
            .ok_or_else(|| ApiError::internal("a version vanished in its transaction"))?;
        return Ok(Added {
            version_id,
            stages: v.stages,
            created: false,
        });
    }
    let mut old = versions(tx, &secret.arn)?;
    let mut labels: Vec<String> = Vec::new();
    for s in stages.unwrap_or(&[AWSCURRENT.to_string()]) {
        if !labels.contains(s) {
            labels.push(s.clone());
        }
    }
    if old.is_empty() && !labels.iter().any(|l| l == AWSCURRENT) {
        labels.push(AWSCURRENT.to_string());
    }
    if labels.iter().any(|l| l == AWSCURRENT) {
        if let Some(i) = old.iter().position(|v| v.has(AWSCURRENT)) {
            for v in old.iter_mut() {
                v.stages.retain(|s| s != AWSPREVIOUS);
            }
            old[i].stages.retain(|s| s != AWSCURRENT);
            old[i].stages.push(AWSPREVIOUS.to_string());
        }
    }
    for v in old.iter_mut() {
        v.stages.retain(|s| !labels.contains(s));
    }
    for v in &old {
        save_stages(tx, &secret.arn, v)?;
    }
    let sealed = seal(sm, tx, secret, &version_id, plain, now_ms)?;
    tx.execute(
        "INSERT INTO sm_secret_versions (arn, version_id, stages, kind, sealed, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            secret.arn,
            version_id,
            serde_json::to_string(&labels)?,
            plain.kind.as_str(),
            sealed,
            now_ms
        ],
    )?;
    check_limits(tx, &secret.arn)?;
    Ok(Added {
        version_id,
        stages: labels,
        created: true,
    })
}

/// At most [`MAX_LABELS`] labels across a secret's versions; past
/// [`MAX_VERSIONS`] versions the oldest deprecated ones are removed.
fn check_limits(tx: &Connection, arn: &str) -> ApiResult<()> {
    let all = versions(tx, arn)?;
    let mut labels: Vec<&str> = all
        .iter()
        .flat_map(|v| v.stages.iter().map(String::as_str))
        .collect();
    labels.sort_unstable();
    labels.dedup();
    if labels.len() > MAX_LABELS {
        return Err(super::limit_exceeded(format!(
            "A secret can have at most {MAX_LABELS} staging labels attached across its versions."
        )));
    }
    let mut excess = all.len().saturating_sub(MAX_VERSIONS);
    for v in all.iter().filter(|v| v.stages.is_empty()) {
        if excess == 0 {
            break;
        }
        tx.execute(
            "DELETE FROM sm_secret_versions WHERE arn = ?1 AND version_id = ?2",
            params![arn, v.version_id],
        )?;
        excess -= 1;
    }
    if excess > 0 {
        return Err(super::limit_exceeded(format!(
            "A secret can have at most {MAX_VERSIONS} versions; remove the staging labels of the ones it no longer needs."
        )));
    }
    Ok(())
}

/// Seal again, under the secret's (new) key, the versions labelled
/// `AWSCURRENT`, `AWSPENDING` or `AWSPREVIOUS`.
pub fn reseal_labelled(
    sm: &SecretsManager,
    tx: &Connection,
    secret: &Secret,
    now_ms: i64,
) -> ApiResult<()> {
    for v in versions(tx, &secret.arn)? {
        if !(v.has(AWSCURRENT) || v.has(AWSPENDING) || v.has(AWSPREVIOUS)) {
            continue;
        }
        let plain = open(sm, tx, secret, &v)?;
        let sealed = seal(sm, tx, secret, &v.version_id, &plain, now_ms)?;
        tx.execute(
            "UPDATE sm_secret_versions SET sealed = ?3 WHERE arn = ?1 AND version_id = ?2",
            params![secret.arn, v.version_id, sealed],
        )?;
    }
    Ok(())
}

/// The version a request names: by `VersionId` (which must then carry
/// `VersionStage` too, if given), else by `VersionStage`, else
/// `AWSCURRENT`.
fn select(
    versions: Vec<Version>,
    version_id: Option<&str>,
    stage: Option<&str>,
) -> ApiResult<Version> {
    match version_id {
        Some(id) => {
            let v = versions
                .into_iter()
                .find(|v| v.version_id == id)
                .ok_or_else(|| value_not_found_for_version(id))?;
            match stage {
                Some(s) if !v.has(s) => Err(super::invalid_request(
                    "You provided a VersionStage that is not associated to the provided VersionId.",
                )),
                _ => Ok(v),
            }
        }
        None => {
            let stage = stage.unwrap_or(AWSCURRENT);
            versions
                .into_iter()
                .find(|v| v.has(stage))
                .ok_or_else(|| value_not_found_for_stage(stage))
        }
    }
}

/// A live secret's value: the secret must not be scheduled for deletion.
fn value_of(
    sm: &SecretsManager,
    conn: &Connection,
    secret: &Secret,
    version_id: Option<&str>,
    stage: Option<&str>,
) -> ApiResult<(Version, Plain)> {
    secret.check_not_deleted()?;
    let v = select(versions(conn, &secret.arn)?, version_id, stage)?;
    let plain = open(sm, conn, secret, &v)?;
    Ok((v, plain))
}

/// Record that the secrets `arns` of (account, region) were read today
/// (Secrets Manager keeps the date only): a write only on a secret's first
/// read of the day.
fn record_access(
    sm: &SecretsManager,
    account: &str,
    region: &str,
    read: &[&Secret],
    now_ms: i64,
) -> ApiResult<()> {
    let day = day_of(now_ms);
    let stale: Vec<&str> = read
        .iter()
        .filter(|s| s.accessed_at.is_none_or(|a| a < day))
        .map(|s| s.arn.as_str())
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    sm.store.write(|tx| {
        purge_expired(tx, account, region, now_ms)?;
        for arn in &stale {
            tx.execute(
                "UPDATE sm_secrets SET accessed_at = ?2 WHERE arn = ?1 \
                 AND (accessed_at IS NULL OR accessed_at < ?2)",
                params![arn, day],
            )?;
        }
        Ok(())
    })
}

/// `GetSecretValue`: by `VersionId` and/or `VersionStage`, `AWSCURRENT`
/// by default; refused for a secret scheduled for deletion.
pub fn get_secret_value(
    sm: &SecretsManager,
    ctx: &Ctx,
    req: GetSecretValueRequest,
) -> ApiResult<GetSecretValueResponse> {
    let now = ctx.now_millis();
    let (secret, v, plain) = sm.store.read(|conn| {
        let secret = require(conn, &ctx.account, &ctx.region, &req.secret_id, now)?;
        let (v, plain) = value_of(
            sm,
            conn,
            &secret,
            req.version_id.as_deref(),
            req.version_stage.as_deref(),
        )?;
        Ok((secret, v, plain))
    })?;
    record_access(sm, &ctx.account, &ctx.region, &[&secret], now)?;
    let (secret_string, secret_binary) = plain.wire()?;
    Ok(GetSecretValueResponse {
        arn: Some(secret.arn),
        name: Some(secret.name),
        version_id: Some(v.version_id.clone()),
        version_stages: v.stages_shape(),
        created_date: Some(millis_to_epoch(v.created_at)),
        secret_string,
        secret_binary,
    })
}

fn entry(secret: &Secret, v: &Version, plain: &Plain) -> ApiResult<SecretValueEntry> {
    let (secret_string, secret_binary) = plain.wire()?;
    Ok(SecretValueEntry {
        arn: Some(secret.arn.clone()),
        name: Some(secret.name.clone()),
        version_id: Some(v.version_id.clone()),
        version_stages: v.stages_shape(),
        created_date: Some(millis_to_epoch(v.created_at)),
        secret_string,
        secret_binary,
    })
}

fn error_entry(secret_id: &str, e: ApiError) -> APIErrorType {
    APIErrorType {
        error_code: Some(e.code),
        message: Some(e.message),
        secret_id: Some(secret_id.to_string()),
    }
}

/// `BatchGetSecretValue`: the `AWSCURRENT` values of the secrets
/// `SecretIdList` names (each failure in `Errors`, the others answered),
/// or of the live secrets `Filters` selects, a page (`MaxResults`, 20 by
/// default) at a time.
pub fn batch_get_secret_value(
    sm: &SecretsManager,
    ctx: &Ctx,
    req: BatchGetSecretValueRequest,
) -> ApiResult<BatchGetSecretValueResponse> {
    let now = ctx.now_millis();
    let (ids, filters) = match (&req.secret_id_list, &req.filters) {
        (Some(_), Some(_)) => {
            return Err(invalid_parameter(
                "Either 'SecretIdList' or 'Filters' must be provided, but not both.",
            ))
        }
        (None, None) => {
            return Err(invalid_parameter(
                "Either 'SecretIdList' or 'Filters' must be provided.",
            ))
        }
        (Some(ids), None) => (Some(ids.clone()), None),
        (None, Some(f)) => (None, Some(super::filters::parse(f)?)),
    };
    let mut values = Vec::new();
    let mut errors = Vec::new();
    let mut read: Vec<Secret> = Vec::new();
    let mut next_token = None;
    if let Some(ids) = ids {
        if req.max_results.is_some() {
            return Err(invalid_parameter(
                "'Filters' not specified. 'Filters' must also be specified when 'MaxResults' is provided.",
            ));
        }
        sm.store.read(|conn| {
            for id in &ids {
                let got = secrets::require(conn, &ctx.account, &ctx.region, id, now)
                    .and_then(|s| value_of(sm, conn, &s, None, None).map(|(v, p)| (s, v, p)));
                match got {
                    Ok((s, v, p)) => {
                        values.push(entry(&s, &v, &p)?);
                        read.push(s);
                    }
                    Err(e) if e.status < 500 => errors.push(error_entry(id, e)),
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })?;
    } else if let Some(filters) = filters {
        let size = req.max_results.unwrap_or(20).clamp(1, 20) as usize;
        let start = match &req.next_token {
            Some(t) => {
                crate::paging::offset(t, "secretsmanager-batch").ok_or_else(invalid_next_token)?
            }
            None => 0,
        };
        sm.store.read(|conn| {
            let chosen: Vec<Secret> = secrets::all(conn, &ctx.account, &ctx.region, now)?
                .into_iter()
                .filter(|s| s.deleted_at.is_none())
                .filter(|s| super::filters::matches(&filters, &super::filters::Attributes::of(s)))
                .collect();
            let (page, token) =
                crate::paging::offset_page(chosen, start, size, "secretsmanager-batch");
            next_token = token;
            for s in page {
                match value_of(sm, conn, &s, None, None) {
                    Ok((v, p)) => {
                        values.push(entry(&s, &v, &p)?);
                        read.push(s);
                    }
                    Err(e) if e.status < 500 => errors.push(error_entry(&s.arn, e)),
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })?;
    }
    let read_refs: Vec<&Secret> = read.iter().collect();
    record_access(sm, &ctx.account, &ctx.region, &read_refs, now)?;
    Ok(BatchGetSecretValueResponse {
        secret_values: Some(values),
        errors: (!errors.is_empty()).then_some(errors),
        next_token,
    })
}

/// `PutSecretValue`: a new version, labelled `VersionStages`
/// (`AWSCURRENT` by default); the same `ClientRequestToken` with the same
/// value answers the same.
pub fn put_secret_value(
    sm: &SecretsManager,
    ctx: &Ctx,
    req: PutSecretValueRequest,
) -> ApiResult<PutSecretValueResponse> {
    let plain = plain_from_request(req.secret_string.as_deref(), req.secret_binary.as_deref())?
        .ok_or_else(|| {
            invalid_parameter("You must provide either SecretString or SecretBinary.")
        })?;
    let now = ctx.now_millis();
    sm.store.write(|tx| {
        purge_expired(tx, &ctx.account, &ctx.region, now)?;
        let mut secret = require(tx, &ctx.account, &ctx.region, &req.secret_id, now)?;
        secret.check_not_deleted()?;
        let added = add_version(
            sm,
            tx,
            &secret,
            req.client_request_token.as_deref(),
            &plain,
            req.version_stages.as_deref(),
            now,
        )?;
        if added.created {
            secret.changed_at = now;
            secrets::save(tx, &secret)?;
        }
        Ok(PutSecretValueResponse {
            arn: Some(secret.arn),
            name: Some(secret.name),
            version_id: Some(added.version_id),
            version_stages: Some(added.stages),
        })
    })
}

/// `UpdateSecretVersionStage`: move a label from one version
/// (`RemoveFromVersionId`, required when another version has it) to
/// another (`MoveToVersionId`), or only remove it (not `AWSCURRENT`,
/// which must stay on a version). Moving `AWSCURRENT` leaves
/// `AWSPREVIOUS` on the version it left.
pub fn update_version_stage(
    sm: &SecretsManager,
    ctx: &Ctx,
    req: UpdateSecretVersionStageRequest,
) -> ApiResult<UpdateSecretVersionStageResponse> {
    let now = ctx.now_millis();
    let stage = req.version_stage.as_str();
    let secret = sm.store.write(|tx| {
        purge_expired(tx, &ctx.account, &ctx.region, now)?;
        let mut secret = require(tx, &ctx.account, &ctx.region, &req.secret_id, now)?;
        secret.check_not_deleted()?;
        let mut all = versions(tx, &secret.arn)?;
        let index = |id: &str| {
            all.iter()
                .position(|v| v.version_id == id)
                .ok_or_else(|| value_not_found_for_version(id))
        };
        let from = req.remove_from_version_id.as_deref().map(index).transpose()?;
        let to = req.move_to_version_id.as_deref().map(index).transpose()?;
        if from.is_none() && to.is_none() {
            return Err(invalid_parameter(
                "You must specify MoveToVersionId, RemoveFromVersionId, or both.",
            ));
        }
        if let Some(f) = from {
            if !all[f].has(stage) {
                return Err(invalid_parameter(format!(
                    "The staging label {stage} is not attached to version {}.",
                    all[f].version_id
                )));
            }
        }
        match to {
            Some(t) => {
                if let Some(h) = all.iter().position(|v| v.has(stage)) {
                    if h != t && Some(h) != from {
                        return Err(invalid_parameter(format!(
                            "The parameter RemoveFromVersionId can't be empty. Staging label {stage} is currently attached to version {}, so you must explicitly reference that version in RemoveFromVersionId.",
                            all[h].version_id
                        )));
                    }
                }
            }
            None if stage == AWSCURRENT => {
                return Err(invalid_parameter(
                    "You can't remove the staging label AWSCURRENT without moving it: name the version that takes it in MoveToVersionId.",
                ))
            }
            None => {}
        }
        if from != to {
            if let Some(f) = from {
                all[f].stages.retain(|s| s != stage);
            }
            if let Some(t) = to {
                if !all[t].has(stage) {
                    all[t].stages.push(stage.to_string());
                }
            }
            if stage == AWSCURRENT {
                if let Some(f) = from {
                    for v in all.iter_mut() {
                        v.stages.retain(|s| s != AWSPREVIOUS);
                    }
                    all[f].stages.push(AWSPREVIOUS.to_string());
                }
            }
            for v in &all {
                save_stages(tx, &secret.arn, v)?;
            }
            check_limits(tx, &secret.arn)?;
            secret.changed_at = now;
            secrets::save(tx, &secret)?;
        }
        Ok(secret)
    })?;
    Ok(UpdateSecretVersionStageResponse {
        arn: Some(secret.arn),
        name: Some(secret.name),
    })
}

/// `ListSecretVersionIds`: newest first; deprecated (unlabelled) versions
/// only with `IncludeDeprecated`.
pub fn list_version_ids(
    sm: &SecretsManager,
    ctx: &Ctx,
    req: ListSecretVersionIdsRequest,
) -> ApiResult<ListSecretVersionIdsResponse> {
    let size = req.max_results.unwrap_or(100).clamp(1, 100) as usize;
    let start = match &req.next_token {
        Some(t) => {
            crate::paging::offset(t, "secretsmanager-versions").ok_or_else(invalid_next_token)?
        }
        None => 0,
    };
    let now = ctx.now_millis();
    let (secret, all) = sm.store.read(|conn| {
        let s = require(conn, &ctx.account, &ctx.region, &req.secret_id, now)?;
        let v = versions(conn, &s.arn)?;
        Ok((s, v))
    })?;
    let deprecated = req.include_deprecated.unwrap_or(false);
    let mut shown: Vec<Version> = all
        .into_iter()
        .filter(|v| deprecated || !v.stages.is_empty())
        .collect();
    shown.reverse();
    let (page, token) = crate::paging::offset_page(shown, start, size, "secretsmanager-versions");
    Ok(ListSecretVersionIdsResponse {
        arn: Some(secret.arn),
        name: Some(secret.name),
        next_token: token,
        versions: Some(
            page.into_iter()
                .map(|v| SecretVersionsListEntry {
                    version_stages: v.stages_shape(),
                    created_date: Some(millis_to_epoch(v.created_at)),
                    version_id: Some(v.version_id),
                    ..Default::default()
                })
                .collect(),
        ),
    })
}

/// What an ECS `valueFrom` for Secrets Manager names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueFrom {
    /// A full ARN, a partial ARN or a name.
    pub secret_id: String,
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

fn value_from_error(message: impl Into<String>) -> ApiError {
    ApiError::new(VALUE_FROM_ERROR, message)
}

/// Read a `valueFrom` as the ECS agent reads it: an ARN
/// (`arn:aws:secretsmanager:<region>:<account>:secret:<name or name-AbCdEf>`),
/// or the same followed by `:<json-key>:<version-stage>:<version-id>`
/// (each part may be empty); or a bare name, alone or followed by the
/// same three parts.
pub fn parse_value_from(text: &str) -> ApiResult<ValueFrom> {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let invalid = || {
        value_from_error(
            "an invalid ARN format for the AWS Secrets Manager secret was specified. Specify a valid ARN and try again.",
        )
    };
    let parts: Vec<&str> = text.split(':').collect();
    let (id, rest) = if text.starts_with("arn:") {
        if parts.len() < 7
            || parts[2] != "secretsmanager"
            || parts[5] != "secret"
            || parts[6].is_empty()
        {
            return Err(invalid());
        }
        (parts[..7].join(":"), &parts[7..])
    } else {
        if parts[0].is_empty() {
            return Err(invalid());
        }
        (parts[0].to_string(), &parts[1..])
    };
    match rest {
        [] => Ok(ValueFrom {
            secret_id: id,
            json_key: None,
            version_stage: None,
            version_id: None,
        }),
        [key, stage, version] => Ok(ValueFrom {
            secret_id: id,
            json_key: opt(key),
            version_stage: opt(stage),
            version_id: opt(version),
        }),
        _ => Err(invalid()),
    }
}

/// One top-level key of a JSON `SecretString`: a string as it is, any
/// other value as its JSON text. The errors name the key, never the value.
pub fn json_field(text: &str, key: &str) -> ApiResult<String> {
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|_| {
        value_from_error(format!(
            "retrieved secret from Secrets Manager is not a JSON object, so it has no json key {key}"
        ))
    })?;
    let Some(obj) = doc.as_object() else {
        return Err(value_from_error(format!(
            "retrieved secret from Secrets Manager is not a JSON object, so it has no json key {key}"
        )));
    };
    match obj.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(value_from_error(format!(
            "retrieved secret from Secrets Manager did not contain json key {key}"
        ))),
    }
}

impl SecretsManager {
    /// The value an ECS container secret's `valueFrom` names, read in
    /// (account, region) at `now_ms`, as the ECS agent resolves it at task
    /// start (`GetSecretValue`, then the JSON key if one is named). The
    /// forms are [`parse_value_from`]'s; an ARN of another account or
    /// Region names no secret here.
    ///
    /// The errors are Secrets Manager's own (`ResourceNotFoundException:
    /// Secrets Manager can't find the specified secret.`, the value for a
    /// staging label or version id, `InvalidRequestException` for a secret
    /// scheduled for deletion, `DecryptionFailure`), which the agent wraps
    /// in ECS's words:
    ///
    /// ```text
    /// ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret <valueFrom> from secrets manager: <code>: <message>
    /// ```
    ///
    /// and, with the code [`VALUE_FROM_ERROR`], the agent's own errors, in
    /// its words (which ECS prints after `unable to retrieve secret from
    /// asm: ` without the code): an unreadable `valueFrom` (`an invalid
    /// ARN format for the AWS Secrets Manager secret was specified. Specify
    /// a valid ARN and try again.`), a missing JSON key (`retrieved secret
    /// from Secrets Manager did not contain json key <key>`), a value that
    /// is not a JSON object when a key is named, and a binary secret (ECS
    /// injects `SecretString` only). No error carries the value.
    pub fn resolve_value_from(
        &self,
        account: &str,
        region: &str,
        value_from: &str,
        now_ms: i64,
    ) -> Result<String, ApiError> {
        let r = parse_value_from(value_from)?;
        let (secret, plain) = self.store.read(|conn| {
            let secret = require(conn, account, region, &r.secret_id, now_ms)?;
            let (_, plain) = value_of(
                self,
                conn,
                &secret,
                r.version_id.as_deref(),
                r.version_stage.as_deref(),
            )?;
            Ok((secret, plain))
        })?;
        record_access(self, account, region, &[&secret], now_ms)?;
        if plain.kind == Kind::Binary {
            return Err(value_from_error(format!(
                "secret {} holds a SecretBinary; ECS injects SecretString values only",
                secret.arn
            )));
        }
        let text = plain.text()?;
        match &r.json_key {
            None => Ok(text),
            Some(key) => json_field(&text, key),
        }
    }
}
