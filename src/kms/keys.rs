//! Keys and aliases: `CreateKey`, `DescribeKey`, `ListKeys`, `EnableKey`,
//! `DisableKey`, `ScheduleKeyDeletion`, `CancelKeyDeletion`,
//! `CreateAlias`, `DeleteAlias`, `ListAliases`, tags; the typed row; and
//! [`Kms::seal`]/[`Kms::unseal`], how Parameter Store and Secrets Manager
//! keep values encrypted.

use base64::Engine;
use rusqlite::{params, Connection, OptionalExtension};

use super::crypto::{self, Blob, NONCE_LEN};
use super::shapes::*;
use super::{disabled, not_found, pending_deletion, Kms};
use crate::context::{millis_to_epoch, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::store::text_enum;
use crate::wire::Empty;

/// Keys per account and region (KMS's quota).
const MAX_KEYS: i64 = 100_000;
const MAX_TAGS: usize = 50;

/// A key as stored (its material still sealed).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRow {
    pub key_id: String,
    pub account: String,
    pub region: String,
    pub description: String,
    pub key_usage: KeyUsageType,
    pub key_spec: KeySpec,
    pub manager: KeyManagerType,
    pub state: KeyState,
    pub created_at: i64,
    pub deletion_at: Option<i64>,
    material: Vec<u8>,
    pub tags: Vec<Tag>,
}

impl KeyRow {
    pub fn arn(&self) -> String {
        key_arn(&self.account, &self.region, &self.key_id)
    }

    /// The `KeyMetadata` shape.
    pub fn metadata(&self) -> KeyMetadata {
        let symmetric = self.key_spec == KeySpec::SymmetricDefault;
        KeyMetadata {
            aws_account_id: Some(self.account.clone()),
            arn: Some(self.arn()),
            creation_date: Some(millis_to_epoch(self.created_at)),
            customer_master_key_spec: Some(CustomerMasterKeySpec::SymmetricDefault),
            deletion_date: self.deletion_at.map(millis_to_epoch),
            description: Some(self.description.clone()),
            enabled: Some(self.state == KeyState::Enabled),
            encryption_algorithms: symmetric
                .then(|| vec![EncryptionAlgorithmSpec::SymmetricDefault]),
            key_id: self.key_id.clone(),
            key_manager: Some(self.manager),
            key_spec: Some(self.key_spec),
            key_state: Some(self.state),
            key_usage: Some(self.key_usage),
            multi_region: Some(false),
            origin: Some(OriginType::AwsKms),
            ..Default::default()
        }
    }

    /// The key usable for cryptography: enabled, not pending deletion.
    fn usable(&self) -> ApiResult<()> {
        match self.state {
            KeyState::Enabled => Ok(()),
            KeyState::PendingDeletion => Err(pending_deletion(&self.arn())),
            _ => Err(disabled(&self.arn())),
        }
    }
}

pub fn key_arn(account: &str, region: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{key_id}")
}

fn alias_arn(account: &str, region: &str, name: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:{name}")
}

const COLUMNS: &str = "key_id, account, region, description, key_usage, key_spec, manager, \
    state, created_at, deletion_at, material, tags";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<KeyRow> {
    let tags: String = r.get(11)?;
    Ok(KeyRow {
        key_id: r.get(0)?,
        account: r.get(1)?,
        region: r.get(2)?,
        description: r.get(3)?,
        key_usage: text_enum(4, r.get(4)?)?,
        key_spec: text_enum(5, r.get(5)?)?,
        manager: text_enum(6, r.get(6)?)?,
        state: text_enum(7, r.get(7)?)?,
        created_at: r.get(8)?,
        deletion_at: r.get(9)?,
        material: r.get(10)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
    })
}

fn by_id(
    conn: &Connection,
    account: &str,
    region: &str,
    key_id: &str,
) -> ApiResult<Option<KeyRow>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM kms_keys WHERE key_id = ?1 AND account = ?2 AND region = ?3"
            ),
            params![key_id, account, region],
            from_row,
        )
        .optional()?)
}

fn alias_target(
    conn: &Connection,
    account: &str,
    region: &str,
    name: &str,
) -> ApiResult<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT key_id FROM kms_aliases WHERE account = ?1 AND region = ?2 AND name = ?3",
            params![account, region, name],
            |r| r.get(0),
        )
        .optional()?)
}

/// What a `KeyId` parameter names, as KMS reads it: a key id, a key ARN,
/// an alias name (`alias/…`) or an alias ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyRef {
    Key(String),
    Alias(String),
}

fn parse_ref(account: &str, region: &str, text: &str) -> ApiResult<KeyRef> {
    if let Some(rest) = text.strip_prefix("arn:aws:kms:") {
        let parts: Vec<&str> = rest.splitn(3, ':').collect();
        if parts.len() == 3 && parts[0] == region && parts[1] == account {
            if let Some(id) = parts[2].strip_prefix("key/") {
                return Ok(KeyRef::Key(id.to_string()));
            }
            if parts[2].starts_with("alias/") {
                return Ok(KeyRef::Alias(parts[2].to_string()));
            }
        }
        return Err(not_found(&format!("Invalid arn {text}")));
    }
    if text.starts_with("alias/") {
        return Ok(KeyRef::Alias(text.to_string()));
    }
    Ok(KeyRef::Key(text.to_string()))
}

/// The AWS managed key an `alias/aws/<service>` names, made on first use
/// as AWS does.
fn managed(
    tx: &Connection,
    ctx_account: &str,
    region: &str,
    alias: &str,
    now_ms: i64,
) -> ApiResult<KeyRow> {
    if let Some(id) = alias_target(tx, ctx_account, region, alias)? {
        if let Some(k) = by_id(tx, ctx_account, region, &id)? {
            return Ok(k);
        }
    }
    let service = alias.trim_start_matches("alias/aws/");
    let key = insert_key(
        tx,
        ctx_account,
        region,
        &format!("Default key that protects my {service} data when no other key is defined"),
        KeyManagerType::Aws,
        Vec::new(),
        now_ms,
        None,
    )?;
    tx.execute(
        "INSERT OR REPLACE INTO kms_aliases (account, region, name, key_id, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![ctx_account, region, alias, key.key_id, now_ms],
    )?;
    Ok(key)
}

/// The key a `KeyId` parameter names. AWS managed aliases (`alias/aws/…`)
/// make their key on first use, so `conn` must be a write transaction
/// when `make_managed`.
fn resolve(
    conn: &Connection,
    account: &str,
    region: &str,
    text: &str,
    now_ms: Option<i64>,
) -> ApiResult<KeyRow> {
    match parse_ref(account, region, text)? {
        KeyRef::Key(id) => by_id(conn, account, region, &id)?
            .ok_or_else(|| not_found(&format!("Key '{}'", key_arn(account, region, &id)))),
        KeyRef::Alias(name) => {
            if let Some(id) = alias_target(conn, account, region, &name)? {
                return by_id(conn, account, region, &id)?.ok_or_else(|| {
                    not_found(&format!("Alias {}", alias_arn(account, region, &name)))
                });
            }
            match now_ms {
                Some(now) if name.starts_with("alias/aws/") => {
                    managed(conn, account, region, &name, now)
                }
                _ => Err(not_found(&format!(
                    "Alias {}",
                    alias_arn(account, region, &name)
                ))),
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn insert_key(
    tx: &Connection,
    account: &str,
    region: &str,
    description: &str,
    manager: KeyManagerType,
    tags: Vec<Tag>,
    now_ms: i64,
    master: Option<&[u8; 32]>,
) -> ApiResult<KeyRow> {
    let count: i64 = tx.query_row(
        "SELECT COUNT(*) FROM kms_keys WHERE account = ?1 AND region = ?2",
        params![account, region],
        |r| r.get(0),
    )?;
    if count >= MAX_KEYS {
        return Err(ApiError::new(
            "LimitExceededException",
            format!("Too many keys in account {account} and region {region}."),
        ));
    }
    let key_id = uuid::Uuid::new_v4().to_string();
    // The material is sealed by the caller's master key (`seal_material`);
    // managed keys made inside another room's call get it the same way.
    let material = match master {
        Some(m) => seal_material(m, &key_arn(account, region, &key_id)),
        None => Vec::new(),
    };
    let row = KeyRow {
        key_id,
        account: account.to_string(),
        region: region.to_string(),
        description: description.to_string(),
        key_usage: KeyUsageType::EncryptDecrypt,
        key_spec: KeySpec::SymmetricDefault,
        manager,
        state: KeyState::Enabled,
        created_at: now_ms,
        deletion_at: None,
        material,
        tags,
    };
    save(tx, &row)?;
    Ok(row)
}

/// Insert or update a key (an update, not a replace: a replace would
/// delete the row first and take its aliases with it).
fn save(tx: &Connection, k: &KeyRow) -> ApiResult<()> {
    tx.execute(
        &format!(
            "INSERT INTO kms_keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (key_id) DO UPDATE SET description = excluded.description,
               state = excluded.state, deletion_at = excluded.deletion_at,
               material = excluded.material, tags = excluded.tags"
        ),
        params![
            k.key_id,
            k.account,
            k.region,
            k.description,
            k.key_usage.as_str(),
            k.key_spec.as_str(),
            k.manager.as_str(),
            k.state.as_str(),
            k.created_at,
            k.deletion_at,
            k.material,
            serde_json::to_string(&k.tags).expect("tags serialise"),
        ],
    )?;
    Ok(())
}

/// Fresh key material sealed under the master key, bound to the key's ARN.
fn seal_material(master: &[u8; 32], arn: &str) -> Vec<u8> {
    let mut material = [0u8; 32];
    fill_random(&mut material);
    crypto::seal(master, &nonce(), &material, arn.as_bytes())
}

/// Random bytes from the operating system's generator. Cryptographic
/// nonces and key material are the one place Berth draws randomness that
/// is not passed in: a replayed request must never reuse a nonce.
fn fill_random(buf: &mut [u8]) {
    rand::Rng::fill(&mut rand::rngs::OsRng, buf);
}

pub(super) fn nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    fill_random(&mut n);
    n
}

/// What [`Kms::seal`] gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The ARN of the key that sealed it.
    pub key_arn: String,
    pub blob: Vec<u8>,
}

impl Kms {
    fn material(&self, key: &KeyRow) -> ApiResult<[u8; 32]> {
        let open =
            crypto::open(&self.master, &key.material, key.arn().as_bytes()).ok_or_else(|| {
                ApiError::internal(format!(
                    "the material of {} does not open under this server's master key",
                    key.arn()
                ))
            })?;
        open.try_into()
            .map_err(|_| ApiError::internal("key material is not 32 bytes"))
    }

    /// Seal `plaintext` under the key `key_ref` names (an id, ARN, alias
    /// or alias ARN), or under the AWS managed key `managed_alias` when it
    /// names none; `context` is bound to the blob. `tx` must be a write
    /// transaction (a managed key is made on first use).
    #[allow(clippy::too_many_arguments)]
    pub fn seal(
        &self,
        tx: &Connection,
        account: &str,
        region: &str,
        key_ref: Option<&str>,
        managed_alias: &str,
        plaintext: &[u8],
        context: &[(&str, &str)],
        now_ms: i64,
    ) -> ApiResult<Sealed> {
        let key = self.key_for_use(
            tx,
            account,
            region,
            key_ref.unwrap_or(managed_alias),
            now_ms,
        )?;
        let blob = self.seal_with(&key, plaintext, context)?;
        Ok(Sealed {
            key_arn: key.arn(),
            blob,
        })
    }

    /// The usable key `text` names, its material sealed if it was just
    /// made as a managed key.
    pub(super) fn key_for_use(
        &self,
        tx: &Connection,
        account: &str,
        region: &str,
        text: &str,
        now_ms: i64,
    ) -> ApiResult<KeyRow> {
        let mut key = resolve(tx, account, region, text, Some(now_ms))?;
        if key.material.is_empty() {
            key.material = seal_material(&self.master, &key.arn());
            save(tx, &key)?;
        }
        key.usable()?;
        Ok(key)
    }

    pub(super) fn seal_with(
        &self,
        key: &KeyRow,
        plaintext: &[u8],
        context: &[(&str, &str)],
    ) -> ApiResult<Vec<u8>> {
        let material = self.material(key)?;
        let sealed = crypto::seal(
            &material,
            &nonce(),
            plaintext,
            &crypto::context_aad(context.iter().copied()),
        );
        Ok(Blob::encode(&key.key_id, &sealed))
    }

    /// Open a blob [`Kms::seal`] made, with the context it was made with:
    /// the ARN of its key and the plaintext. `InvalidCiphertextException`
    /// for anything else; the key's own error when it is disabled.
    pub fn unseal(
        &self,
        conn: &Connection,
        account: &str,
        region: &str,
        blob: &[u8],
        context: &[(&str, &str)],
    ) -> ApiResult<(String, Vec<u8>)> {
        let b = Blob::decode(blob).ok_or_else(super::invalid_ciphertext)?;
        let key = by_id(conn, account, region, b.key_id)?.ok_or_else(super::invalid_ciphertext)?;
        key.usable()?;
        let material = self.material(&key)?;
        let plain = crypto::open(
            &material,
            b.sealed,
            &crypto::context_aad(context.iter().copied()),
        )
        .ok_or_else(super::invalid_ciphertext)?;
        Ok((key.arn(), plain))
    }

    /// The key a `KeyId` parameter names, for a read.
    pub fn describe(
        &self,
        conn: &Connection,
        account: &str,
        region: &str,
        text: &str,
    ) -> ApiResult<KeyRow> {
        resolve(conn, account, region, text, None)
    }
}

fn check_tags(tags: &[Tag]) -> ApiResult<()> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::new(
            "TagException",
            format!("A key may have at most {MAX_TAGS} tags."),
        ));
    }
    if let Some(t) = tags.iter().find(|t| t.tag_key.starts_with("aws:")) {
        return Err(ApiError::new(
            "TagException",
            format!("Tag key {} uses the reserved prefix aws:.", t.tag_key),
        ));
    }
    Ok(())
}

/// `CreateKey`: symmetric encryption keys only.
pub fn create_key(kms: &Kms, ctx: &Ctx, req: CreateKeyRequest) -> ApiResult<CreateKeyResponse> {
    let spec = req
        .key_spec
        .or(req
            .customer_master_key_spec
            .map(|_| KeySpec::SymmetricDefault))
        .unwrap_or(KeySpec::SymmetricDefault);
    if spec != KeySpec::SymmetricDefault
        || req
            .customer_master_key_spec
            .is_some_and(|s| s != CustomerMasterKeySpec::SymmetricDefault)
    {
        return Err(ApiError::new(
            "UnsupportedOperationException",
            format!(
                "KeySpec {} is not supported: Berth's KMS makes SYMMETRIC_DEFAULT keys.",
                spec.as_str()
            ),
        ));
    }
    if req
        .key_usage
        .is_some_and(|u| u != KeyUsageType::EncryptDecrypt)
    {
        return Err(ApiError::new(
            "ValidationException",
            "KeyUsage must be ENCRYPT_DECRYPT for a SYMMETRIC_DEFAULT key.",
        ));
    }
    if req.origin.is_some_and(|o| o != OriginType::AwsKms) {
        return Err(ApiError::new(
            "UnsupportedOperationException",
            "Only Origin AWS_KMS is supported.",
        ));
    }
    if let Some(p) = &req.policy {
        if !serde_json::from_str::<serde_json::Value>(p).is_ok_and(|v| v.is_object()) {
            return Err(ApiError::new(
                "MalformedPolicyDocumentException",
                "The new key policy will not allow you to update the key policy in the future.",
            ));
        }
    }
    let tags = req.tags.unwrap_or_default();
    check_tags(&tags)?;
    let key = kms.store.write(|tx| {
        insert_key(
            tx,
            &ctx.account,
            &ctx.region,
            req.description.as_deref().unwrap_or_default(),
            KeyManagerType::Customer,
            tags,
            ctx.now_millis(),
            Some(&kms.master),
        )
    })?;
    Ok(CreateKeyResponse {
        key_metadata: Some(key.metadata()),
    })
}

/// `DescribeKey`: by id, ARN, alias or alias ARN; an AWS managed alias
/// makes its key on first use.
pub fn describe_key(
    kms: &Kms,
    ctx: &Ctx,
    req: DescribeKeyRequest,
) -> ApiResult<DescribeKeyResponse> {
    let key = if req.key_id.starts_with("alias/aws/") {
        kms.store.write(|tx| {
            resolve(
                tx,
                &ctx.account,
                &ctx.region,
                &req.key_id,
                Some(ctx.now_millis()),
            )
        })?
    } else {
        kms.store
            .read(|conn| kms.describe(conn, &ctx.account, &ctx.region, &req.key_id))?
    };
    Ok(DescribeKeyResponse {
        key_metadata: Some(key.metadata()),
    })
}

fn page_bounds(limit: Option<i64>, marker: Option<&str>) -> ApiResult<(usize, usize)> {
    let size = match limit {
        None => 100,
        Some(n) if (1..=1000).contains(&n) => n as usize,
        Some(n) => {
            return Err(ApiError::new(
                "ValidationException",
                format!("1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 1000"),
            ))
        }
    };
    let start = match marker {
        None => 0,
        Some(m) => crate::paging::offset(m, "kms")
            .ok_or_else(|| ApiError::new("InvalidMarkerException", "Invalid marker."))?,
    };
    Ok((start, size))
}

/// `ListKeys`: the keys of the caller's account and region, oldest first.
pub fn list_keys(kms: &Kms, ctx: &Ctx, req: ListKeysRequest) -> ApiResult<ListKeysResponse> {
    let (start, size) = page_bounds(req.limit, req.marker.as_deref())?;
    let ids: Vec<String> = kms.store.read(|conn| {
        let mut st = conn.prepare(
            "SELECT key_id FROM kms_keys WHERE account = ?1 AND region = ?2 ORDER BY created_at, key_id",
        )?;
        let rows = st.query_map(params![ctx.account, ctx.region], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    })?;
    let (page, token) = crate::paging::offset_page(ids, start, size, "kms");
    Ok(ListKeysResponse {
        keys: Some(
            page.into_iter()
                .map(|id| KeyListEntry {
                    key_arn: Some(key_arn(&ctx.account, &ctx.region, &id)),
                    key_id: Some(id),
                })
                .collect(),
        ),
        truncated: Some(token.is_some()),
        next_marker: token,
    })
}

/// A customer managed key for a state change: AWS managed keys refuse.
fn customer_key(tx: &Connection, ctx: &Ctx, text: &str) -> ApiResult<KeyRow> {
    let key = resolve(tx, &ctx.account, &ctx.region, text, None)?;
    if key.manager == KeyManagerType::Aws {
        return Err(ApiError::new(
            "AccessDeniedException",
            format!("{} is an AWS managed key and cannot be changed.", key.arn()),
        ));
    }
    Ok(key)
}

fn set_state(kms: &Kms, ctx: &Ctx, key_id: &str, state: KeyState) -> ApiResult<Empty> {
    kms.store.write(|tx| {
        let mut key = customer_key(tx, ctx, key_id)?;
        if key.state == KeyState::PendingDeletion {
            return Err(pending_deletion(&key.arn()));
        }
        key.state = state;
        save(tx, &key)
    })?;
    Ok(Empty {})
}

pub fn enable_key(kms: &Kms, ctx: &Ctx, req: EnableKeyRequest) -> ApiResult<Empty> {
    set_state(kms, ctx, &req.key_id, KeyState::Enabled)
}

pub fn disable_key(kms: &Kms, ctx: &Ctx, req: DisableKeyRequest) -> ApiResult<Empty> {
    set_state(kms, ctx, &req.key_id, KeyState::Disabled)
}

/// `ScheduleKeyDeletion`: 7 to 30 days (default 30); the key is unusable
/// meanwhile.
pub fn schedule_deletion(
    kms: &Kms,
    ctx: &Ctx,
    req: ScheduleKeyDeletionRequest,
) -> ApiResult<ScheduleKeyDeletionResponse> {
    let days = req.pending_window_in_days.unwrap_or(30);
    if !(7..=30).contains(&days) {
        return Err(ApiError::new(
            "ValidationException",
            format!("1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30"),
        ));
    }
    let key = kms.store.write(|tx| {
        let mut key = customer_key(tx, ctx, &req.key_id)?;
        if key.state == KeyState::PendingDeletion {
            return Err(pending_deletion(&key.arn()));
        }
        key.state = KeyState::PendingDeletion;
        key.deletion_at = Some(ctx.now_millis() + days * 86_400_000);
        save(tx, &key)?;
        Ok(key)
    })?;
    Ok(ScheduleKeyDeletionResponse {
        deletion_date: key.deletion_at.map(millis_to_epoch),
        key_id: Some(key.arn()),
        key_state: Some(key.state),
        pending_window_in_days: Some(days),
    })
}

/// `CancelKeyDeletion`: the key comes back disabled, as in KMS.
pub fn cancel_deletion(
    kms: &Kms,
    ctx: &Ctx,
    req: CancelKeyDeletionRequest,
) -> ApiResult<CancelKeyDeletionResponse> {
    let key = kms.store.write(|tx| {
        let mut key = customer_key(tx, ctx, &req.key_id)?;
        if key.state != KeyState::PendingDeletion {
            return Err(ApiError::new(
                "KMSInvalidStateException",
                format!("{} is not pending deletion.", key.arn()),
            ));
        }
        key.state = KeyState::Disabled;
        key.deletion_at = None;
        save(tx, &key)?;
        Ok(key)
    })?;
    Ok(CancelKeyDeletionResponse {
        key_id: Some(key.arn()),
    })
}

fn check_alias_name(name: &str) -> ApiResult<()> {
    let valid = name.starts_with("alias/")
        && name.len() > "alias/".len()
        && name.len() <= 256
        && name["alias/".len()..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c));
    if !valid {
        return Err(ApiError::new(
            "ValidationException",
            format!("1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$"),
        ));
    }
    if name.starts_with("alias/aws/") {
        return Err(ApiError::new(
            "NotAuthorizedException",
            format!(
                "{name}: aliases that begin with alias/aws/ are reserved for AWS managed keys."
            ),
        ));
    }
    Ok(())
}

/// `CreateAlias`: the target must be a customer managed key, named by id
/// or ARN.
pub fn create_alias(kms: &Kms, ctx: &Ctx, req: CreateAliasRequest) -> ApiResult<Empty> {
    check_alias_name(&req.alias_name)?;
    if req.target_key_id.starts_with("alias/") || req.target_key_id.contains(":alias/") {
        return Err(ApiError::new(
            "ValidationException",
            "TargetKeyId must be a key id or key ARN, not an alias.",
        ));
    }
    kms.store.write(|tx| {
        let key = customer_key(tx, ctx, &req.target_key_id)?;
        if alias_target(tx, &ctx.account, &ctx.region, &req.alias_name)?.is_some() {
            return Err(ApiError::new(
                "AlreadyExistsException",
                format!(
                    "An alias with the name {} already exists",
                    alias_arn(&ctx.account, &ctx.region, &req.alias_name)
                ),
            ));
        }
        tx.execute(
            "INSERT INTO kms_aliases (account, region, name, key_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            params![
                ctx.account,
                ctx.region,
                req.alias_name,
                key.key_id,
                ctx.now_millis()
            ],
        )?;
        Ok(())
    })?;
    Ok(Empty {})
}

pub fn delete_alias(kms: &Kms, ctx: &Ctx, req: DeleteAliasRequest) -> ApiResult<Empty> {
    check_alias_name(&req.alias_name)?;
    kms.store.write(|tx| {
        let n = tx.execute(
            "DELETE FROM kms_aliases WHERE account = ?1 AND region = ?2 AND name = ?3",
            params![ctx.account, ctx.region, req.alias_name],
        )?;
        if n == 0 {
            return Err(not_found(&format!(
                "Alias {}",
                alias_arn(&ctx.account, &ctx.region, &req.alias_name)
            )));
        }
        Ok(())
    })?;
    Ok(Empty {})
}

/// `ListAliases`, optionally those of one key.
pub fn list_aliases(
    kms: &Kms,
    ctx: &Ctx,
    req: ListAliasesRequest,
) -> ApiResult<ListAliasesResponse> {
    let (start, size) = page_bounds(req.limit, req.marker.as_deref())?;
    let entries = kms.store.read(|conn| {
        let only = match &req.key_id {
            Some(k) => Some(kms.describe(conn, &ctx.account, &ctx.region, k)?.key_id),
            None => None,
        };
        let mut st = conn.prepare(
            "SELECT name, key_id, created_at, updated_at FROM kms_aliases
             WHERE account = ?1 AND region = ?2 ORDER BY name",
        )?;
        let rows = st.query_map(params![ctx.account, ctx.region], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, key_id, created, updated) = row?;
            if only.as_ref().is_some_and(|k| *k != key_id) {
                continue;
            }
            out.push(AliasListEntry {
                alias_arn: Some(alias_arn(&ctx.account, &ctx.region, &name)),
                alias_name: Some(name),
                creation_date: Some(millis_to_epoch(created)),
                last_updated_date: Some(millis_to_epoch(updated)),
                target_key_id: Some(key_id),
            });
        }
        Ok(out)
    })?;
    let (page, token) = crate::paging::offset_page(entries, start, size, "kms");
    Ok(ListAliasesResponse {
        aliases: Some(page),
        truncated: Some(token.is_some()),
        next_marker: token,
    })
}

pub fn tag_resource(kms: &Kms, ctx: &Ctx, req: TagResourceRequest) -> ApiResult<Empty> {
    kms.store.write(|tx| {
        let mut key = customer_key(tx, ctx, &req.key_id)?;
        for t in req.tags {
            key.tags.retain(|o| o.tag_key != t.tag_key);
            key.tags.push(t);
        }
        check_tags(&key.tags)?;
        save(tx, &key)
    })?;
    Ok(Empty {})
}

pub fn untag_resource(kms: &Kms, ctx: &Ctx, req: UntagResourceRequest) -> ApiResult<Empty> {
    kms.store.write(|tx| {
        let mut key = customer_key(tx, ctx, &req.key_id)?;
        key.tags.retain(|t| !req.tag_keys.contains(&t.tag_key));
        save(tx, &key)
    })?;
    Ok(Empty {})
}

pub fn list_tags(
    kms: &Kms,
    ctx: &Ctx,
    req: ListResourceTagsRequest,
) -> ApiResult<ListResourceTagsResponse> {
    let (start, size) = page_bounds(req.limit, req.marker.as_deref())?;
    let key = kms
        .store
        .read(|conn| kms.describe(conn, &ctx.account, &ctx.region, &req.key_id))?;
    let (page, token) = crate::paging::offset_page(key.tags, start, size, "kms");
    Ok(ListResourceTagsResponse {
        tags: Some(page),
        truncated: Some(token.is_some()),
        next_marker: token,
    })
}

/// Base64 as the JSON protocols carry blobs.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A blob parameter's bytes.
pub fn from_b64(field: &str, text: &str) -> ApiResult<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| ApiError::serialization(format!("{field} is not valid base64.")))
}
