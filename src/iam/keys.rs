//! Users' access keys (table `iam_access_keys`): at most two per user,
//! Active or Inactive, their secrets sealed under the master key and
//! shown once, when made.

use rusqlite::{params, Connection, OptionalExtension};

use super::entities::require;
use super::shapes::*;
use super::{iam_time, limit_exceeded, names, no_such_entity, page, Iam, Kind};
use crate::context::Ctx;
use crate::error::ApiResult;
use crate::wire::Empty;

/// IAM's quota of access keys per user.
const KEYS_PER_USER: usize = 2;

/// An access key as stored (its secret still sealed).
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub access_key_id: String,
    pub account: String,
    pub user_name: String,
    pub sealed: Vec<u8>,
    pub active: bool,
    pub created_ms: i64,
    pub used_ms: Option<i64>,
    pub used_service: Option<String>,
    pub used_region: Option<String>,
}

impl StoredKey {
    fn metadata(&self) -> AccessKeyMetadata {
        AccessKeyMetadata {
            access_key_id: Some(self.access_key_id.clone()),
            create_date: Some(iam_time(self.created_ms)),
            status: Some(status(self.active)),
            user_name: Some(self.user_name.clone()),
        }
    }
}

fn status(active: bool) -> StatusType {
    if active {
        StatusType::Active
    } else {
        StatusType::Inactive
    }
}

const COLUMNS: &str = "access_key_id, account, user_name, sealed, status, created_at, used_at, used_service, used_region";

fn row(r: &rusqlite::Row) -> rusqlite::Result<StoredKey> {
    let status: String = r.get(4)?;
    Ok(StoredKey {
        access_key_id: r.get(0)?,
        account: r.get(1)?,
        user_name: r.get(2)?,
        sealed: r.get(3)?,
        active: status == "Active",
        created_ms: r.get(5)?,
        used_ms: r.get(6)?,
        used_service: r.get(7)?,
        used_region: r.get(8)?,
    })
}

/// The key `id`, whoever's it is.
pub fn get(conn: &Connection, id: &str) -> ApiResult<Option<StoredKey>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM iam_access_keys WHERE access_key_id = ?1"
        ))?
        .query_row([id], row)
        .optional()?)
}

/// The keys of user `user`, oldest first.
pub fn of_user(conn: &Connection, account: &str, user: &str) -> ApiResult<Vec<StoredKey>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM iam_access_keys WHERE account = ?1 AND user_name = ?2 ORDER BY created_at, access_key_id"
        ))?
        .query_map(params![account, user], row)?
        .collect::<Result<_, _>>()?)
}

/// The user a key request is about: the one named, or the caller.
fn user_of(conn: &Connection, ctx: &Ctx, name: Option<&str>) -> ApiResult<String> {
    match name {
        Some(n) => Ok(require(conn, &ctx.account, Kind::User, n)?.name),
        None => match names::split_arn(&ctx.principal_arn) {
            Some((_, r)) if r.starts_with("user/") => Ok(names::name_of(r).to_string()),
            _ => Err(super::validation(
                "Must specify userName when calling with non-User credentials",
            )),
        },
    }
}

/// The key `id` of `user`, or `NoSuchEntity`.
fn require_key(conn: &Connection, ctx: &Ctx, user: &str, id: &str) -> ApiResult<StoredKey> {
    get(conn, id)?
        .filter(|k| k.account == ctx.account && k.user_name.eq_ignore_ascii_case(user))
        .ok_or_else(|| no_such_entity(format!("The Access Key with id {id} cannot be found.")))
}

pub fn create(
    iam: &Iam,
    ctx: &Ctx,
    req: CreateAccessKeyRequest,
) -> ApiResult<CreateAccessKeyResponse> {
    let mut random = rand::rngs::OsRng;
    let id = names::new_id("AKIA", 20, &mut random);
    let secret = names::new_secret(&mut random);
    let sealed = iam.kms.seal_under_master(&id, secret.as_bytes());
    let now = ctx.now.timestamp_millis();
    let user = iam.store.write(|tx| {
        let user = user_of(tx, ctx, req.user_name.as_deref())?;
        if of_user(tx, &ctx.account, &user)?.len() >= KEYS_PER_USER {
            return Err(limit_exceeded(format!(
                "Cannot exceed quota for AccessKeysPerUser: {KEYS_PER_USER}"
            )));
        }
        tx.execute(
            "INSERT INTO iam_access_keys (access_key_id, account, user_name, sealed, status, created_at)
             VALUES (?1, ?2, ?3, ?4, 'Active', ?5)",
            params![id, ctx.account, user, sealed, now],
        )?;
        Ok(user)
    })?;
    Ok(CreateAccessKeyResponse {
        access_key: AccessKey {
            access_key_id: id,
            create_date: Some(iam_time(now)),
            secret_access_key: secret,
            status: StatusType::Active,
            user_name: user,
        },
    })
}

pub fn list(iam: &Iam, ctx: &Ctx, req: ListAccessKeysRequest) -> ApiResult<ListAccessKeysResponse> {
    let keys = iam.store.read(|conn| {
        let user = user_of(conn, ctx, req.user_name.as_deref())?;
        of_user(conn, &ctx.account, &user)
    })?;
    let keys: Vec<AccessKeyMetadata> = keys.iter().map(StoredKey::metadata).collect();
    let (access_key_metadata, marker) = page(keys, req.marker.as_deref(), req.max_items)?;
    Ok(ListAccessKeysResponse {
        access_key_metadata,
        is_truncated: Some(marker.is_some()),
        marker,
    })
}

pub fn update(iam: &Iam, ctx: &Ctx, req: UpdateAccessKeyRequest) -> ApiResult<Empty> {
    iam.store.write(|tx| {
        let user = user_of(tx, ctx, req.user_name.as_deref())?;
        let k = require_key(tx, ctx, &user, &req.access_key_id)?;
        tx.execute(
            "UPDATE iam_access_keys SET status = ?2 WHERE access_key_id = ?1",
            params![k.access_key_id, req.status.as_str()],
        )?;
        Ok(())
    })?;
    Ok(Empty {})
}

pub fn delete(iam: &Iam, ctx: &Ctx, req: DeleteAccessKeyRequest) -> ApiResult<Empty> {
    iam.store.write(|tx| {
        let user = user_of(tx, ctx, req.user_name.as_deref())?;
        let k = require_key(tx, ctx, &user, &req.access_key_id)?;
        tx.execute(
            "DELETE FROM iam_access_keys WHERE access_key_id = ?1",
            [k.access_key_id],
        )?;
        Ok(())
    })?;
    Ok(Empty {})
}

pub fn last_used(
    iam: &Iam,
    ctx: &Ctx,
    req: GetAccessKeyLastUsedRequest,
) -> ApiResult<GetAccessKeyLastUsedResponse> {
    let k = iam
        .store
        .read(|conn| get(conn, &req.access_key_id))?
        .filter(|k| k.account == ctx.account)
        .ok_or_else(|| {
            no_such_entity(format!(
                "The Access Key with id {} cannot be found.",
                req.access_key_id
            ))
        })?;
    Ok(GetAccessKeyLastUsedResponse {
        access_key_last_used: Some(AccessKeyLastUsed {
            last_used_date: k.used_ms.map(iam_time),
            region: k.used_region.unwrap_or_else(|| "N/A".into()),
            service_name: k.used_service.unwrap_or_else(|| "N/A".into()),
        }),
        user_name: Some(k.user_name),
    })
}

/// Record that key `id` was used now for `service` in `region` (written
/// at most once a minute per key).
pub fn record_use(iam: &Iam, id: &str, service: &str, region: &str, now_ms: i64) {
    {
        let mut used = iam.used.lock().expect("lock");
        if used.get(id).is_some_and(|t| now_ms - t < 60_000) {
            return;
        }
        used.insert(id.to_string(), now_ms);
    }
    let r = iam.store.write(|tx| {
        tx.execute(
            "UPDATE iam_access_keys SET used_at = ?2, used_service = ?3, used_region = ?4 WHERE access_key_id = ?1",
            params![id, now_ms, service, region],
        )?;
        Ok(())
    });
    if let Err(e) = r {
        tracing::warn!(error = %e.message, "recording an access key's last use");
    }
}
