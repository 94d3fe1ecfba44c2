//! Secrets: the typed row and how a `SecretId` names one (a name, a full
//! ARN, or a partial ARN without the six random characters);
//! `CreateSecret`, `UpdateSecret`, `DescribeSecret`, `ListSecrets`,
//! `DeleteSecret`, `RestoreSecret`, `TagResource`, `UntagResource` and the
//! resource policies.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::filters;
use super::shapes::*;
use super::values;
use super::{
    encryption_failure, invalid_next_token, invalid_parameter, invalid_request, limit_exceeded,
    marked_for_deletion, secret_not_found, Empty, SecretsManager,
};
use crate::context::{millis_to_epoch, Ctx};
use crate::error::{ApiError, ApiResult};

/// The AWS managed key that seals values when a secret names no key.
pub const MANAGED_ALIAS: &str = "alias/aws/secretsmanager";
/// Secrets per account and Region (Secrets Manager's quota).
pub const MAX_SECRETS: i64 = 500_000;
/// Tags per secret.
pub const MAX_TAGS: usize = 50;
/// The recovery window when `DeleteSecret` names none.
pub const DEFAULT_RECOVERY_DAYS: i64 = 30;
pub const DAY_MS: i64 = 86_400_000;

/// A secret as stored (its versions are in `sm_secret_versions`).
#[derive(Debug, Clone, PartialEq)]
pub struct Secret {
    pub arn: String,
    pub account: String,
    pub region: String,
    pub name: String,
    pub description: Option<String>,
    /// The key the caller named (as named), `None` for the AWS managed key.
    pub kms_key_id: Option<String>,
    pub created_at: i64,
    pub changed_at: i64,
    /// The day (midnight UTC) it was last read, as AWS records it.
    pub accessed_at: Option<i64>,
    /// When it is scheduled to be deleted, if it is.
    pub deleted_at: Option<i64>,
    pub tags: Vec<Tag>,
    pub policy: Option<String>,
}

impl Secret {
    /// Refuse an operation on a secret scheduled for deletion.
    pub fn check_not_deleted(&self) -> ApiResult<()> {
        match self.deleted_at {
            Some(_) => Err(marked_for_deletion()),
            None => Ok(()),
        }
    }

    fn tags_shape(&self) -> Option<Vec<Tag>> {
        (!self.tags.is_empty()).then(|| self.tags.clone())
    }

    fn description_shape(&self) -> Option<String> {
        self.description.clone().filter(|d| !d.is_empty())
    }
}

const COLUMNS: &str = "arn, account, region, name, description, kms_key_id, created_at, \
    changed_at, accessed_at, deleted_at, tags, policy";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Secret> {
    let tags: String = r.get(10)?;
    Ok(Secret {
        arn: r.get(0)?,
        account: r.get(1)?,
        region: r.get(2)?,
        name: r.get(3)?,
        description: r.get(4)?,
        kms_key_id: r.get(5)?,
        created_at: r.get(6)?,
        changed_at: r.get(7)?,
        accessed_at: r.get(8)?,
        deleted_at: r.get(9)?,
        tags: serde_json::from_str(&tags).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(10, rusqlite::types::Type::Text, Box::new(e))
        })?,
        policy: r.get(11)?,
    })
}

/// Rows still alive at `now`: not past their deletion date.
const ALIVE: &str = "(deleted_at IS NULL OR deleted_at > ?)";

fn by_name(
    conn: &Connection,
    account: &str,
    region: &str,
    name: &str,
    now_ms: i64,
) -> ApiResult<Option<Secret>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM sm_secrets WHERE account = ?1 AND region = ?2 AND name = ?3 \
                 AND (deleted_at IS NULL OR deleted_at > ?4)"
            ),
            params![account, region, name, now_ms],
            from_row,
        )
        .optional()?)
}

fn by_arn(
    conn: &Connection,
    account: &str,
    region: &str,
    arn: &str,
    now_ms: i64,
) -> ApiResult<Option<Secret>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM sm_secrets WHERE arn = ?1 AND account = ?2 AND region = ?3 \
                 AND (deleted_at IS NULL OR deleted_at > ?4)"
            ),
            params![arn, account, region, now_ms],
            from_row,
        )
        .optional()?)
}

/// The parts of a Secrets Manager ARN: (region, account, the resource
/// after `secret:`); `None` when `text` is not one.
pub fn parse_arn(text: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = text.splitn(7, ':').collect();
    match parts.as_slice() {
        ["arn", _partition, "secretsmanager", region, account, "secret", rest] => {
            Some((region, account, rest))
        }
        _ => None,
    }
}

/// The secret a `SecretId` names in (account, region) at `now_ms`,
/// scheduled for deletion or not: a name, a full ARN, or a partial ARN
/// (the ARN without the hyphen and six random characters). An ARN of
/// another account or Region names nothing here.
pub fn find(
    conn: &Connection,
    account: &str,
    region: &str,
    secret_id: &str,
    now_ms: i64,
) -> ApiResult<Option<Secret>> {
    if secret_id.starts_with("arn:") {
        let Some((arn_region, arn_account, rest)) = parse_arn(secret_id) else {
            return Ok(None);
        };
        if arn_region != region || arn_account != account {
            return Ok(None);
        }
        if let Some(s) = by_arn(conn, account, region, secret_id, now_ms)? {
            return Ok(Some(s));
        }
        // A partial ARN: what follows `secret:` is the name.
        return by_name(conn, account, region, rest, now_ms);
    }
    by_name(conn, account, region, secret_id, now_ms)
}

/// [`find`], or Secrets Manager's `ResourceNotFoundException`.
pub fn require(
    conn: &Connection,
    account: &str,
    region: &str,
    secret_id: &str,
    now_ms: i64,
) -> ApiResult<Secret> {
    find(conn, account, region, secret_id, now_ms)?.ok_or_else(secret_not_found)
}

/// Every live secret of (account, region), by creation.
pub fn all(conn: &Connection, account: &str, region: &str, now_ms: i64) -> ApiResult<Vec<Secret>> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM sm_secrets WHERE account = ?1 AND region = ?2 AND {ALIVE} \
         ORDER BY created_at, name"
    ))?;
    let rows = st.query_map(params![account, region, now_ms], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Remove the secrets of (account, region) whose deletion date has
/// passed, with their versions: every write calls it first, so a name is
/// free again once its secret is gone.
pub fn purge_expired(tx: &Connection, account: &str, region: &str, now_ms: i64) -> ApiResult<()> {
    tx.execute(
        "DELETE FROM sm_secret_versions WHERE arn IN (SELECT arn FROM sm_secrets \
         WHERE account = ?1 AND region = ?2 AND deleted_at IS NOT NULL AND deleted_at <= ?3)",
        params![account, region, now_ms],
    )?;
    tx.execute(
        "DELETE FROM sm_secrets WHERE account = ?1 AND region = ?2 \
         AND deleted_at IS NOT NULL AND deleted_at <= ?3",
        params![account, region, now_ms],
    )?;
    Ok(())
}

fn insert(tx: &Connection, s: &Secret) -> ApiResult<()> {
    tx.execute(
        &format!(
            "INSERT INTO sm_secrets ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ),
        params![
            s.arn,
            s.account,
            s.region,
            s.name,
            s.description,
            s.kms_key_id,
            s.created_at,
            s.changed_at,
            s.accessed_at,
            s.deleted_at,
            serde_json::to_string(&s.tags)?,
            s.policy,
        ],
    )?;
    Ok(())
}

/// Write back a secret's row (never `INSERT OR REPLACE`: that would
/// delete its versions with it).
pub fn save(tx: &Connection, s: &Secret) -> ApiResult<()> {
    tx.execute(
        "UPDATE sm_secrets SET description = ?2, kms_key_id = ?3, changed_at = ?4, \
         accessed_at = ?5, deleted_at = ?6, tags = ?7, policy = ?8 WHERE arn = ?1",
        params![
            s.arn,
            s.description,
            s.kms_key_id,
            s.changed_at,
            s.accessed_at,
            s.deleted_at,
            serde_json::to_string(&s.tags)?,
            s.policy,
        ],
    )?;
    Ok(())
}

fn remove(tx: &Connection, arn: &str) -> ApiResult<()> {
    tx.execute("DELETE FROM sm_secret_versions WHERE arn = ?1", [arn])?;
    tx.execute("DELETE FROM sm_secrets WHERE arn = ?1", [arn])?;
    Ok(())
}

/// A new secret's ARN: its name, a hyphen and six random alphanumeric
/// characters, so a secret made again under an old name has a new ARN.
pub fn new_arn(account: &str, region: &str, name: &str) -> String {
    use rand::Rng;
    let suffix: String = (0..6)
        .map(|_| rand::rngs::OsRng.sample(rand::distributions::Alphanumeric) as char)
        .collect();
    format!("arn:aws:secretsmanager:{region}:{account}:secret:{name}-{suffix}")
}

/// Midnight (UTC) of the day of `ms`: Secrets Manager records the date a
/// secret was last accessed, not the time.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// A secret's name: 1 to 512 of `A-Z a-z 0-9 / _ + = . @ -`.
pub fn check_name(name: &str) -> ApiResult<()> {
    let valid = !name.is_empty()
        && name.chars().count() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    if valid {
        Ok(())
    } else {
        Err(invalid_parameter(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
        ))
    }
}

/// Merge `new` into `tags` (a key given again takes the new value),
/// checking each and the count.
fn merge_tags(tags: &mut Vec<Tag>, new: &[Tag]) -> ApiResult<()> {
    for t in new {
        let key = t.key.clone().unwrap_or_default();
        if key.is_empty() {
            return Err(invalid_parameter("A tag key can't be empty."));
        }
        if key.starts_with("aws:") {
            return Err(invalid_parameter(format!(
                "Invalid tag key {key}: the prefix aws: is reserved for AWS use."
            )));
        }
        let value = t.value.clone().unwrap_or_default();
        match tags
            .iter_mut()
            .find(|o| o.key.as_deref() == Some(key.as_str()))
        {
            Some(o) => o.value = Some(value),
            None => tags.push(Tag {
                key: Some(key),
                value: Some(value),
            }),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(invalid_parameter(format!(
            "A secret can have at most {MAX_TAGS} tags."
        )));
    }
    Ok(())
}

/// A `KmsKeyId` parameter: an empty one names the AWS managed key.
fn key_param(k: Option<&str>) -> Option<String> {
    k.filter(|k| !k.is_empty()).map(str::to_string)
}

/// The key `key` names must exist (it is checked again, usable, when a
/// value is sealed under it). AWS managed aliases are made on first use.
fn check_key(sm: &SecretsManager, tx: &Connection, ctx: &Ctx, key: Option<&str>) -> ApiResult<()> {
    match key {
        Some(k) if !k.starts_with("alias/aws/") => sm
            .kms
            .describe(tx, &ctx.account, &ctx.region, k)
            .map(|_| ())
            .map_err(encryption_failure),
        _ => Ok(()),
    }
}

/// `CreateSecret`: the secret, and its first version when a value is
/// given (its id the `ClientRequestToken`, labelled `AWSCURRENT`). A
/// repeated call with the same token and value answers the same; the same
/// token with another value is refused.
pub fn create(
    sm: &SecretsManager,
    ctx: &Ctx,
    req: CreateSecretRequest,
) -> ApiResult<CreateSecretResponse> {
    check_name(&req.name)?;
    if req
        .add_replica_regions
        .as_ref()
        .is_some_and(|r| !r.is_empty())
    {
        return Err(invalid_request(
            "Berth does not replicate secrets to other Regions: AddReplicaRegions is not supported.",
        ));
    }
    let mut tags = Vec::new();
    merge_tags(&mut tags, req.tags.as_deref().unwrap_or_default())?;
    let plain =
        values::plain_from_request(req.secret_string.as_deref(), req.secret_binary.as_deref())?;
    let kms_key_id = key_param(req.kms_key_id.as_deref());
    let now = ctx.now_millis();
    sm.store.write(|tx| {
        purge_expired(tx, &ctx.account, &ctx.region, now)?;
        if let Some(existing) = by_name(tx, &ctx.account, &ctx.region, &req.name, now)? {
            if existing.deleted_at.is_some() {
                return Err(invalid_request(
                    "You can't create this secret because a secret with this name is already scheduled for deletion.",
                ));
            }
            if let (Some(token), Some(p)) = (&req.client_request_token, &plain) {
                if values::replay(sm, tx, &existing, token, p)? {
                    return Ok(CreateSecretResponse {
                        arn: Some(existing.arn.clone()),
                        name: Some(existing.name.clone()),
                        version_id: Some(token.clone()),
                        replication_status: None,
                    });
                }
            }
            return Err(ApiError::new(
                "ResourceExistsException",
                format!("The operation failed because the secret {} already exists.", req.name),
            ));
        }
        let count: i64 = tx.query_row(
            "SELECT COUNT(*) FROM sm_secrets WHERE account = ?1 AND region = ?2",
            params![ctx.account, ctx.region],
            |r| r.get(0),
        )?;
        if count >= MAX_SECRETS {
            return Err(limit_exceeded(format!(
                "You have reached the maximum number of secrets ({MAX_SECRETS}) in this Region."
            )));
        }
        if plain.is_none() {
            check_key(sm, tx, ctx, kms_key_id.as_deref())?;
        }
        let secret = Secret {
            arn: new_arn(&ctx.account, &ctx.region, &req.name),
            account: ctx.account.clone(),
            region: ctx.region.clone(),
            name: req.name.clone(),
            description: req.description.clone(),
            kms_key_id: kms_key_id.clone(),
            created_at: now,
            changed_at: now,
            accessed_at: None,
            deleted_at: None,
            tags: tags.clone(),
            policy: None,
        };
        insert(tx, &secret)?;
        let version_id = match &plain {
            Some(p) => Some(
                values::add_version(sm, tx, &secret, req.client_request_token.as_deref(), p, None, now)?
                    .version_id,
            ),
            None => None,
        };
        Ok(CreateSecretResponse {
            arn: Some(secret.arn),
            name: Some(secret.name),
            version_id,
            replication_status: None,
        })
    })
}

/// `UpdateSecret`: the description, the key (the versions labelled
/// `AWSCURRENT`, `AWSPENDING` or `AWSPREVIOUS` are sealed again under the
/// new one, as AWS re-encrypts them), and a new value as `PutSecretValue`
/// makes one (it becomes `AWSCURRENT`).
pub fn update(
    sm: &SecretsManager,
    ctx: &Ctx,
    req: UpdateSecretRequest,
) -> ApiResult<UpdateSecretResponse> {
    let plain =
        values::plain_from_request(req.secret_string.as_deref(), req.secret_binary.as_deref())?;
    let now = ctx.now_millis();
    sm.store.write(|tx| {
        purge_expired(tx, &ctx.account, &ctx.region, now)?;
        let mut secret = require(tx, &ctx.account, &ctx.region, &req.secret_id, now)?;
        secret.check_not_deleted()?;
        if let Some(d) = &req.description {
            secret.description = Some(d.clone());
            secret.changed_at = now;
        }
        if let Some(k) = &req.kms_key_id {
            let key = key_param(Some(k));
            check_key(sm, tx, ctx, key.as_deref())?;
            if key != secret.kms_key_id {
                secret.kms_key_id = key;
                values::reseal_labelled(sm, tx, &secret, now)?;
            }
            secret.changed_at = now;
        }
        let version_id = match &plain {
            Some(p) => {
                let added = values::add_version(
                    sm,
                    tx,
                    &secret,
                    req.client_request_token.as_deref(),
                    p,
                    None,
                    now,
                )?;
                if added.created {
                    secret.changed_at = now;
                }
                Some(added.version_id)
            }
            None => None,
        };
        save(tx, &secret)?;
        Ok(UpdateSecretResponse {
            arn: Some(secret.arn),
            name: Some(secret.name),
            version_id,
        })
    })
}

/// `DescribeSecret`: a secret scheduled for deletion too, with its
/// `DeletedDate`.
pub fn describe(
    sm: &SecretsManager,
    ctx: &Ctx,
    req: DescribeSecretRequest,
) -> ApiResult<DescribeSecretResponse> {
    let now = ctx.now_millis();
    let (secret, stages) = sm.store.read(|conn| {
        let s = require(conn, &ctx.account, &ctx.region, &req.secret_id, now)?;
        let stages = values::stages_of(conn, &s.arn)?;
        Ok((s, stages))
    })?;
    Ok(DescribeSecretResponse {
        arn: Some(secret.arn.clone()),
        name: Some(secret.name.clone()),
        description: secret.description_shape(),
        kms_key_id: secret.kms_key_id.clone(),
        created_date: Some(millis_to_epoch(secret.created_at)),
        last_changed_date: Some(millis_to_epoch(secret.changed_at)),
        last_accessed_date: secret.accessed_at.map(millis_to_epoch),
        deleted_date: secret.deleted_at.map(millis_to_epoch),
        tags: secret.tags_shape(),
        version_ids_to_stages: (!stages.is_empty()).then_some(stages),
        ..Default::default()
    })
}

/// `ListSecrets`: the live secrets of the caller's account and Region
/// (those scheduled for deletion only with `IncludePlannedDeletion`), the
/// filters applied (see `filters.rs`), sorted by `SortBy` (creation by
/// default) in `SortOrder` (ascending by default), a page at a time.
pub fn list(
    sm: &SecretsManager,
    ctx: &Ctx,
    req: ListSecretsRequest,
) -> ApiResult<ListSecretsResponse> {
    let size = req.max_results.unwrap_or(100).clamp(1, 100) as usize;
    let start = match &req.next_token {
        Some(t) => crate::paging::offset(t, "secretsmanager").ok_or_else(invalid_next_token)?,
        None => 0,
    };
    let filters = filters::parse(req.filters.as_deref().unwrap_or_default())?;
    let include_deleted = req.include_planned_deletion.unwrap_or(false);
    let now = ctx.now_millis();
    let (secrets, mut stages) = sm.store.read(|conn| {
        let secrets = all(conn, &ctx.account, &ctx.region, now)?;
        let stages = values::stages_of_account(conn, &ctx.account, &ctx.region)?;
        Ok((secrets, stages))
    })?;
    let mut secrets: Vec<Secret> = secrets
        .into_iter()
        .filter(|s| include_deleted || s.deleted_at.is_none())
        .filter(|s| filters::matches(&filters, &filters::Attributes::of(s)))
        .collect();
    sort(
        &mut secrets,
        req.sort_by.unwrap_or_default(),
        req.sort_order.unwrap_or_default(),
    );
    let (page, token) = crate::paging::offset_page(secrets, start, size, "secretsmanager");
    Ok(ListSecretsResponse {
        secret_list: Some(
            page.into_iter()
                .map(|s| {
                    let versions = stages.remove(&s.arn).filter(|v| !v.is_empty());
                    list_entry(s, versions)
                })
                .collect(),
        ),
        next_token: token,
    })
}

fn sort(secrets: &mut [Secret], by: SortByType, order: SortOrderType) {
    secrets.sort_by(|a, b| {
        let o = match by {
            SortByType::CreatedDate => a.created_at.cmp(&b.created_at),
            SortByType::LastAccessedDate => a.accessed_at.cmp(&b.accessed_at),
            SortByType::LastChangedDate => a.changed_at.cmp(&b.changed_at),
            SortByType::Name => a.name.cmp(&b.name),
        }
        .then_with(|| a.name.cmp(&b.name));
        match order {
            SortOrderType::Asc => o,
            SortOrderType::Desc => o.reverse(),
        }
    });
}

fn list_entry(s: Secret, versions: Option<BTreeMap<String, Vec<String>>>) -> SecretListEntry {
    SecretListEntry {
        arn: Some(s.arn.clone()),
        name: Some(s.name.clone()),
        description: s.description_shape(),
        kms_key_id: s.kms_key_id.clone(),
        created_date: Some(millis_to_epoch(s.created_at)),
        last_changed_date: Some(millis_to_epoch(s.changed_at)),
        last_accessed_date: s.accessed_at.map(millis_to_epoch),
        deleted_date: s.deleted_at.map(millis_to_epoch),
        tags: s.tags_shape(),
        secret_versions_to_stages: versions,
        ..Default::default()
    }
}

/// `DeleteSecret`: scheduled `RecoveryWindowInDays` (7 to 30, default 30)
/// from now, or removed at once with `ForceDeleteWithoutRecovery` (which
/// also removes a secret already scheduled, and answers for one that does
/// not exist, as AWS does).
pub fn delete(
    sm: &SecretsManager,
    ctx: &Ctx,
    req: DeleteSecretRequest,
) -> ApiResult<DeleteSecretResponse> {
    let force = req.force_delete_without_recovery.unwrap_or(false);
    if force && req.recovery_window_in_days.is_some() {
        return Err(invalid_parameter(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
        ));
    }
    let days = req.recovery_window_in_days.unwrap_or(DEFAULT_RECOVERY_DAYS);
    if !(7..=30).contains(&days) {
        return Err(invalid_parameter(
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
        ));
    }
    let now = ctx.now_millis();
    sm.store.write(|tx| {
        purge_expired(tx, &ctx.account, &ctx.region, now)?;
        let Some(mut secret) = find(tx, &ctx.account, &ctx.region, &req.secret_id, now)? else {
            if !force {
                return Err(secret_not_found());
            }
            let (arn, name) = match parse_arn(&req.secret_id) {
                Some((_, _, name)) => (req.secret_id.clone(), name.to_string()),
                None => (
                    format!(
                        "arn:aws:secretsmanager:{}:{}:secret:{}",
                        ctx.region, ctx.account, req.secret_id
                    ),
                    req.secret_id.clone(),
                ),
            };
            return Ok(DeleteSecretResponse {
                arn: Some(arn),
                name: Some(name),
                deletion_date: Some(millis_to_epoch(now)),
            });
        };
        let deletion = if force {
            remove(tx, &secret.arn)?;
            now
        } else {
            secret.check_not_deleted()?;
            let at = now + days * DAY_MS;
            secret.deleted_at = Some(at);
            save(tx, &secret)?;
            at
        };
        Ok(DeleteSecretResponse {
            arn: Some(secret.arn),
            name: Some(secret.name),
            deletion_date: Some(millis_to_epoch(deletion)),
        })
    })
}

/// `RestoreSecret`: cancel a scheduled deletion (a secret not scheduled
/// is left as it is).
pub fn restore(
    sm: &SecretsManager,
    ctx: &Ctx,
    req: RestoreSecretRequest,
) -> ApiResult<RestoreSecretResponse> {
    let now = ctx.now_millis();
    let secret = sm.store.write(|tx| {
        purge_expired(tx, &ctx.account, &ctx.region, now)?;
        let mut secret = require(tx, &ctx.account, &ctx.region, &req.secret_id, now)?;
        if secret.deleted_at.is_some() {
            secret.deleted_at = None;
            save(tx, &secret)?;
        }
        Ok(secret)
    })?;
    Ok(RestoreSecretResponse {
        arn: Some(secret.arn),
        name: Some(secret.name),
    })
}

/// Change one live secret not scheduled for deletion under `f`.
fn change(
    sm: &SecretsManager,
    ctx: &Ctx,
    secret_id: &str,
    f: impl FnOnce(&mut Secret) -> ApiResult<()>,
) -> ApiResult<Secret> {
    let now = ctx.now_millis();
    sm.store.write(|tx| {
        purge_expired(tx, &ctx.account, &ctx.region, now)?;
        let mut secret = require(tx, &ctx.account, &ctx.region, secret_id, now)?;
        secret.check_not_deleted()?;
        f(&mut secret)?;
        secret.changed_at = now;
        save(tx, &secret)?;
        Ok(secret)
    })
}

/// `TagResource`: a key given again takes the new value.
pub fn tag_resource(sm: &SecretsManager, ctx: &Ctx, req: TagResourceRequest) -> ApiResult<Empty> {
    change(sm, ctx, &req.secret_id, |s| {
        merge_tags(&mut s.tags, &req.tags)
    })?;
    Ok(Empty {})
}

/// `UntagResource`: keys the secret lacks are ignored.
pub fn untag_resource(
    sm: &SecretsManager,
    ctx: &Ctx,
    req: UntagResourceRequest,
) -> ApiResult<Empty> {
    change(sm, ctx, &req.secret_id, |s| {
        s.tags.retain(|t| {
            !req.tag_keys
                .iter()
                .any(|k| t.key.as_deref() == Some(k.as_str()))
        });
        Ok(())
    })?;
    Ok(Empty {})
}

/// `PutResourcePolicy`: the document is kept as given; it must be a JSON
/// object. Berth's authorizer does not evaluate it.
pub fn put_policy(
    sm: &SecretsManager,
    ctx: &Ctx,
    req: PutResourcePolicyRequest,
) -> ApiResult<PutResourcePolicyResponse> {
    let is_object = serde_json::from_str::<serde_json::Value>(&req.resource_policy)
        .is_ok_and(|v| v.is_object());
    if !is_object {
        return Err(ApiError::new(
            "MalformedPolicyDocumentException",
            "This resource policy contains a syntax error: a resource policy is a JSON object.",
        ));
    }
    let secret = change(sm, ctx, &req.secret_id, |s| {
        s.policy = Some(req.resource_policy.clone());
        Ok(())
    })?;
    Ok(PutResourcePolicyResponse {
        arn: Some(secret.arn),
        name: Some(secret.name),
    })
}

/// `GetResourcePolicy`: without `ResourcePolicy` when there is none.
pub fn get_policy(
    sm: &SecretsManager,
    ctx: &Ctx,
    req: GetResourcePolicyRequest,
) -> ApiResult<GetResourcePolicyResponse> {
    let now = ctx.now_millis();
    let secret = sm
        .store
        .read(|conn| require(conn, &ctx.account, &ctx.region, &req.secret_id, now))?;
    Ok(GetResourcePolicyResponse {
        arn: Some(secret.arn),
        name: Some(secret.name),
        resource_policy: secret.policy,
    })
}

/// `DeleteResourcePolicy`: answers the same when there is none.
pub fn delete_policy(
    sm: &SecretsManager,
    ctx: &Ctx,
    req: DeleteResourcePolicyRequest,
) -> ApiResult<DeleteResourcePolicyResponse> {
    let secret = change(sm, ctx, &req.secret_id, |s| {
        s.policy = None;
        Ok(())
    })?;
    Ok(DeleteResourcePolicyResponse {
        arn: Some(secret.arn),
        name: Some(secret.name),
    })
}
