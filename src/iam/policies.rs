//! Managed policies: the account's own (tables `iam_policies`,
//! `iam_policy_versions`), AWS's ([`managed`](super::managed)), and their
//! attachments to users, roles and groups (`iam_attachments`).

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::entities::{self, require};
use super::shapes::*;
use super::{
    delete_conflict, iam_time, limit_exceeded, managed, names, no_such_entity, page,
    parse_document, policy::PolicyKind, Iam, Kind,
};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::wire::Empty;

/// IAM's quotas: versions kept per policy, policies attached to one
/// identity, characters of a managed policy (whitespace not counted).
const VERSIONS: usize = 5;
const ATTACHED: usize = 10;
const POLICY_SIZE: usize = 6144;

/// A customer managed policy as stored.
#[derive(Debug, Clone)]
struct Stored {
    arn: String,
    name: String,
    id: String,
    path: String,
    description: Option<String>,
    default_version: String,
    next_version: i64,
    created_ms: i64,
    updated_ms: i64,
    tags: Vec<Tag>,
}

const COLUMNS: &str =
    "arn, name, id, path, description, default_version, next_version, created_at, updated_at, tags";

fn row(r: &rusqlite::Row) -> rusqlite::Result<Stored> {
    let tags: String = r.get(9)?;
    Ok(Stored {
        arn: r.get(0)?,
        name: r.get(1)?,
        id: r.get(2)?,
        path: r.get(3)?,
        description: r.get(4)?,
        default_version: r.get(5)?,
        next_version: r.get(6)?,
        created_ms: r.get(7)?,
        updated_ms: r.get(8)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
    })
}

fn stored(conn: &Connection, account: &str, arn: &str) -> ApiResult<Option<Stored>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM iam_policies WHERE arn = ?1 AND account = ?2"
        ))?
        .query_row(params![arn, account], row)
        .optional()?)
}

fn not_found(arn: &str) -> ApiError {
    no_such_entity(format!("Policy {arn} was not found."))
}

fn require_stored(conn: &Connection, account: &str, arn: &str) -> ApiResult<Stored> {
    stored(conn, account, arn)?.ok_or_else(|| not_found(arn))
}

/// Counts of a policy's use in `account`: attachments, and boundaries.
fn usage(conn: &Connection, account: &str, arn: &str) -> ApiResult<(i64, i64)> {
    let attached = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM iam_attachments WHERE account = ?1 AND policy_arn = ?2",
        )?
        .query_row(params![account, arn], |r| r.get(0))?;
    let bounding = conn
        .prepare_cached("SELECT COUNT(*) FROM iam_entities WHERE account = ?1 AND boundary = ?2")?
        .query_row(params![account, arn], |r| r.get(0))?;
    Ok((attached, bounding))
}

/// The default version's document of managed policy `arn`, when it is
/// the account's or AWS's.
pub fn document_of(conn: &Connection, account: &str, arn: &str) -> ApiResult<Option<String>> {
    if let Some(p) = managed::find(arn) {
        return Ok(Some(p.document.to_string()));
    }
    let Some(s) = stored(conn, account, arn)? else {
        return Ok(None);
    };
    version_document(conn, &s.arn, &s.default_version)
}

fn version_document(conn: &Connection, arn: &str, version: &str) -> ApiResult<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT document FROM iam_policy_versions WHERE arn = ?1 AND version_id = ?2",
        )?
        .query_row(params![arn, version], |r| r.get(0))
        .optional()?)
}

/// Policy `arn` as IAM describes it, when the account's or AWS's.
fn describe(conn: &Connection, account: &str, arn: &str) -> ApiResult<Option<Policy>> {
    let (attached, bounding) = usage(conn, account, arn)?;
    if let Some(p) = managed::find(arn) {
        return Ok(Some(Policy {
            arn: Some(p.arn()),
            attachment_count: Some(attached),
            create_date: Some(p.created.to_string()),
            default_version_id: Some(p.version.to_string()),
            description: None,
            is_attachable: Some(true),
            path: Some(p.path.to_string()),
            permissions_boundary_usage_count: Some(bounding),
            policy_id: Some(p.policy_id.to_string()),
            policy_name: Some(p.name.to_string()),
            tags: None,
            update_date: Some(p.updated.to_string()),
        }));
    }
    Ok(stored(conn, account, arn)?.map(|s| Policy {
        arn: Some(s.arn.clone()),
        attachment_count: Some(attached),
        create_date: Some(iam_time(s.created_ms)),
        default_version_id: Some(s.default_version.clone()),
        description: s.description.clone(),
        is_attachable: Some(true),
        path: Some(s.path.clone()),
        permissions_boundary_usage_count: Some(bounding),
        policy_id: Some(s.id.clone()),
        policy_name: Some(s.name.clone()),
        tags: (!s.tags.is_empty()).then(|| s.tags.clone()),
        update_date: Some(iam_time(s.updated_ms)),
    }))
}

fn check_size(document: &str) -> ApiResult<()> {
    if document.chars().filter(|c| !c.is_whitespace()).count() > POLICY_SIZE {
        return Err(limit_exceeded(format!(
            "Cannot exceed quota for PolicySize: {POLICY_SIZE}"
        )));
    }
    Ok(())
}

pub fn create_policy(
    iam: &Iam,
    ctx: &Ctx,
    req: CreatePolicyRequest,
) -> ApiResult<CreatePolicyResponse> {
    parse_document(&req.policy_document, PolicyKind::Identity)?;
    check_size(&req.policy_document)?;
    let path = req.path.clone().unwrap_or_else(|| "/".into());
    names::check_path(&path).map_err(super::validation)?;
    let now = ctx.now.timestamp_millis();
    let s = Stored {
        arn: names::arn(&ctx.account, "policy", &path, &req.policy_name),
        name: req.policy_name.clone(),
        id: names::new_id("ANPA", 21, &mut rand::rngs::OsRng),
        path,
        description: req.description.clone(),
        default_version: "v1".into(),
        next_version: 2,
        created_ms: now,
        updated_ms: now,
        tags: req.tags.clone().unwrap_or_default(),
    };
    iam.store.write(|tx| {
        let taken: bool = tx
            .prepare_cached("SELECT COUNT(*) FROM iam_policies WHERE account = ?1 AND name = ?2")?
            .query_row(params![ctx.account, s.name], |r| r.get::<_, i64>(0))?
            > 0;
        if taken {
            return Err(super::already_exists(format!(
                "A policy called {} already exists. Duplicate names are not allowed.",
                s.name
            )));
        }
        save(tx, &ctx.account, &s)?;
        tx.execute(
            "INSERT INTO iam_policy_versions (arn, version_id, document, created_at) VALUES (?1, 'v1', ?2, ?3)",
            params![s.arn, req.policy_document, now],
        )?;
        Ok(())
    })?;
    let mut policy = iam
        .store
        .read(|conn| describe(conn, &ctx.account, &s.arn))?;
    if let Some(p) = policy.as_mut() {
        p.description = None;
    }
    Ok(CreatePolicyResponse { policy })
}

fn save(conn: &Connection, account: &str, s: &Stored) -> ApiResult<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO iam_policies (account, {COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (arn) DO UPDATE SET default_version = excluded.default_version,
           next_version = excluded.next_version, updated_at = excluded.updated_at, tags = excluded.tags"
    ))?
    .execute(params![
        account,
        s.arn,
        s.name,
        s.id,
        s.path,
        s.description,
        s.default_version,
        s.next_version,
        s.created_ms,
        s.updated_ms,
        serde_json::to_string(&s.tags).expect("tags serialise"),
    ])?;
    Ok(())
}

pub fn get_policy(iam: &Iam, ctx: &Ctx, req: GetPolicyRequest) -> ApiResult<GetPolicyResponse> {
    let policy = iam
        .store
        .read(|conn| describe(conn, &ctx.account, &req.policy_arn))?
        .ok_or_else(|| not_found(&req.policy_arn))?;
    Ok(GetPolicyResponse {
        policy: Some(policy),
    })
}

pub fn list_policies(
    iam: &Iam,
    ctx: &Ctx,
    req: ListPoliciesRequest,
) -> ApiResult<ListPoliciesResponse> {
    let scope = req.scope.map(|s| s.as_str()).unwrap_or("All");
    let policies = iam.store.read(|conn| {
        let mut arns: Vec<String> = Vec::new();
        if scope != "AWS" {
            let local: Vec<String> = conn
                .prepare_cached("SELECT arn FROM iam_policies WHERE account = ?1 ORDER BY name")?
                .query_map([&ctx.account], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            arns.extend(local);
        }
        if scope != "Local" {
            arns.extend(managed::ALL.iter().map(|p| p.arn()));
        }
        let mut out = Vec::new();
        for arn in arns {
            if let Some(p) = describe(conn, &ctx.account, &arn)? {
                let attached = p.attachment_count.unwrap_or(0) > 0;
                let used_as_boundary = p.permissions_boundary_usage_count.unwrap_or(0) > 0;
                let usage_ok = match req.policy_usage_filter.map(|f| f.as_str()) {
                    Some("PermissionsBoundary") => used_as_boundary,
                    Some("PermissionsPolicy") => true,
                    _ => true,
                };
                if req.only_attached == Some(true) && !attached && !used_as_boundary {
                    continue;
                }
                if usage_ok
                    && names::under(p.path.as_deref().unwrap_or("/"), req.path_prefix.as_deref())
                {
                    out.push(Policy {
                        description: None,
                        tags: None,
                        ..p
                    });
                }
            }
        }
        Ok(out)
    })?;
    let (policies, marker) = page(policies, req.marker.as_deref(), req.max_items)?;
    Ok(ListPoliciesResponse {
        is_truncated: Some(marker.is_some()),
        marker,
        policies: Some(policies),
    })
}

/// AWS managed policies are AWS's to change.
fn check_local(arn: &str) -> ApiResult<()> {
    if arn.starts_with("arn:aws:iam::aws:") {
        return Err(ApiError::new(
            "AccessDenied",
            format!("Policy {arn} is an AWS managed policy and cannot be changed."),
        )
        .with_status(403));
    }
    Ok(())
}

pub fn delete_policy(iam: &Iam, ctx: &Ctx, req: DeletePolicyRequest) -> ApiResult<Empty> {
    check_local(&req.policy_arn)?;
    iam.store.write(|tx| {
        let s = require_stored(tx, &ctx.account, &req.policy_arn)?;
        let (attached, bounding) = usage(tx, &ctx.account, &s.arn)?;
        if attached > 0 || bounding > 0 {
            return Err(delete_conflict("Cannot delete a policy attached to entities."));
        }
        let versions: i64 = tx.query_row(
            "SELECT COUNT(*) FROM iam_policy_versions WHERE arn = ?1",
            [&s.arn],
            |r| r.get(0),
        )?;
        if versions > 1 {
            return Err(delete_conflict(
                "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.",
            ));
        }
        tx.execute("DELETE FROM iam_policies WHERE arn = ?1", [&s.arn])?;
        Ok(())
    })?;
    Ok(Empty {})
}

/// Every version of stored policy `arn`: (id, document, created).
fn versions(conn: &Connection, arn: &str) -> ApiResult<Vec<(String, String, i64)>> {
    let mut v: Vec<(String, String, i64)> = conn
        .prepare_cached(
            "SELECT version_id, document, created_at FROM iam_policy_versions WHERE arn = ?1",
        )?
        .query_map([arn], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    v.sort_by_key(|(id, _, _)| std::cmp::Reverse(id[1..].parse::<i64>().unwrap_or(0)));
    Ok(v)
}

pub fn create_policy_version(
    iam: &Iam,
    ctx: &Ctx,
    req: CreatePolicyVersionRequest,
) -> ApiResult<CreatePolicyVersionResponse> {
    check_local(&req.policy_arn)?;
    parse_document(&req.policy_document, PolicyKind::Identity)?;
    check_size(&req.policy_document)?;
    let now = ctx.now.timestamp_millis();
    let (id, default) = iam.store.write(|tx| {
        let mut s = require_stored(tx, &ctx.account, &req.policy_arn)?;
        if versions(tx, &s.arn)?.len() >= VERSIONS {
            return Err(limit_exceeded(format!(
                "A managed policy can have up to {VERSIONS} versions. Before you create a new version, you must delete an existing version."
            )));
        }
        let id = format!("v{}", s.next_version);
        tx.execute(
            "INSERT INTO iam_policy_versions (arn, version_id, document, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![s.arn, id, req.policy_document, now],
        )?;
        s.next_version += 1;
        s.updated_ms = now;
        let default = req.set_as_default == Some(true);
        if default {
            s.default_version = id.clone();
        }
        save(tx, &ctx.account, &s)?;
        Ok((id, default))
    })?;
    Ok(CreatePolicyVersionResponse {
        policy_version: Some(PolicyVersion {
            create_date: Some(iam_time(now)),
            document: None,
            is_default_version: Some(default),
            version_id: Some(id),
        }),
    })
}

pub fn get_policy_version(
    iam: &Iam,
    ctx: &Ctx,
    req: GetPolicyVersionRequest,
) -> ApiResult<GetPolicyVersionResponse> {
    if let Some(p) = managed::find(&req.policy_arn) {
        if req.version_id != p.version {
            return Err(no_such_entity(format!(
                "Policy {} version {} does not exist or is not attachable.",
                req.policy_arn, req.version_id
            )));
        }
        return Ok(GetPolicyVersionResponse {
            policy_version: Some(PolicyVersion {
                create_date: Some(p.updated.to_string()),
                document: Some(names::encode_document(p.document)),
                is_default_version: Some(true),
                version_id: Some(p.version.to_string()),
            }),
        });
    }
    let (s, version) = iam.store.read(|conn| {
        let s = require_stored(conn, &ctx.account, &req.policy_arn)?;
        let v = versions(conn, &s.arn)?
            .into_iter()
            .find(|(id, _, _)| *id == req.version_id);
        Ok((s, v))
    })?;
    let (id, doc, created) = version.ok_or_else(|| {
        no_such_entity(format!(
            "Policy {} version {} does not exist or is not attachable.",
            req.policy_arn, req.version_id
        ))
    })?;
    Ok(GetPolicyVersionResponse {
        policy_version: Some(PolicyVersion {
            create_date: Some(iam_time(created)),
            document: Some(names::encode_document(&doc)),
            is_default_version: Some(id == s.default_version),
            version_id: Some(id),
        }),
    })
}

pub fn list_policy_versions(
    iam: &Iam,
    ctx: &Ctx,
    req: ListPolicyVersionsRequest,
) -> ApiResult<ListPolicyVersionsResponse> {
    let list: Vec<PolicyVersion> = if let Some(p) = managed::find(&req.policy_arn) {
        vec![PolicyVersion {
            create_date: Some(p.updated.to_string()),
            document: None,
            is_default_version: Some(true),
            version_id: Some(p.version.to_string()),
        }]
    } else {
        let (s, v) = iam.store.read(|conn| {
            let s = require_stored(conn, &ctx.account, &req.policy_arn)?;
            let v = versions(conn, &s.arn)?;
            Ok((s, v))
        })?;
        v.into_iter()
            .map(|(id, _, created)| PolicyVersion {
                create_date: Some(iam_time(created)),
                document: None,
                is_default_version: Some(id == s.default_version),
                version_id: Some(id),
            })
            .collect()
    };
    let (versions, marker) = page(list, req.marker.as_deref(), req.max_items)?;
    Ok(ListPolicyVersionsResponse {
        is_truncated: Some(marker.is_some()),
        marker,
        versions: Some(versions),
    })
}

pub fn delete_policy_version(
    iam: &Iam,
    ctx: &Ctx,
    req: DeletePolicyVersionRequest,
) -> ApiResult<Empty> {
    check_local(&req.policy_arn)?;
    iam.store.write(|tx| {
        let s = require_stored(tx, &ctx.account, &req.policy_arn)?;
        if s.default_version == req.version_id {
            return Err(delete_conflict(
                "Cannot delete the default version of a policy.",
            ));
        }
        let n = tx.execute(
            "DELETE FROM iam_policy_versions WHERE arn = ?1 AND version_id = ?2",
            params![s.arn, req.version_id],
        )?;
        if n == 0 {
            return Err(no_such_entity(format!(
                "Policy {} version {} does not exist.",
                s.arn, req.version_id
            )));
        }
        Ok(())
    })?;
    Ok(Empty {})
}

pub fn set_default_policy_version(
    iam: &Iam,
    ctx: &Ctx,
    req: SetDefaultPolicyVersionRequest,
) -> ApiResult<Empty> {
    check_local(&req.policy_arn)?;
    iam.store.write(|tx| {
        let mut s = require_stored(tx, &ctx.account, &req.policy_arn)?;
        if version_document(tx, &s.arn, &req.version_id)?.is_none() {
            return Err(no_such_entity(format!(
                "Policy {} version {} does not exist.",
                s.arn, req.version_id
            )));
        }
        s.default_version = req.version_id.clone();
        s.updated_ms = ctx.now.timestamp_millis();
        save(tx, &ctx.account, &s)
    })?;
    Ok(Empty {})
}

fn retag(iam: &Iam, ctx: &Ctx, arn: &str, f: impl FnOnce(&mut Vec<Tag>)) -> ApiResult<()> {
    check_local(arn)?;
    iam.store.write(|tx| {
        let mut s = require_stored(tx, &ctx.account, arn)?;
        f(&mut s.tags);
        if s.tags.len() > 50 {
            return Err(limit_exceeded(
                "The number of tags has reached the maximum limit.",
            ));
        }
        save(tx, &ctx.account, &s)
    })
}

pub fn tag_policy(iam: &Iam, ctx: &Ctx, req: TagPolicyRequest) -> ApiResult<Empty> {
    retag(iam, ctx, &req.policy_arn, |tags| {
        entities::with_tags(tags, &req.tags)
    })?;
    Ok(Empty {})
}

pub fn untag_policy(iam: &Iam, ctx: &Ctx, req: UntagPolicyRequest) -> ApiResult<Empty> {
    retag(iam, ctx, &req.policy_arn, |tags| {
        entities::without_tags(tags, &req.tag_keys)
    })?;
    Ok(Empty {})
}

pub fn list_policy_tags(
    iam: &Iam,
    ctx: &Ctx,
    req: ListPolicyTagsRequest,
) -> ApiResult<ListPolicyTagsResponse> {
    let tags = if managed::find(&req.policy_arn).is_some() {
        Vec::new()
    } else {
        iam.store
            .read(|conn| require_stored(conn, &ctx.account, &req.policy_arn))?
            .tags
    };
    let (tags, marker) = page(tags, req.marker.as_deref(), req.max_items)?;
    Ok(ListPolicyTagsResponse {
        is_truncated: Some(marker.is_some()),
        marker,
        tags,
    })
}

// Attachments.

/// The managed policies attached to `owner`: their ARNs.
pub fn attached(
    conn: &Connection,
    account: &str,
    kind: Kind,
    owner: &str,
) -> ApiResult<Vec<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT policy_arn FROM iam_attachments WHERE account = ?1 AND kind = ?2 AND owner = ?3 ORDER BY policy_arn",
        )?
        .query_map(params![account, kind.as_str(), owner], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// Attach the AWS service policy `name` (a service-linked role's).
pub fn attach_service_policy(
    tx: &Transaction,
    account: &str,
    kind: Kind,
    owner: &str,
    name: &str,
) -> ApiResult<()> {
    tx.execute(
        "INSERT OR IGNORE INTO iam_attachments (account, kind, owner, policy_arn) VALUES (?1, ?2, ?3, ?4)",
        params![account, kind.as_str(), owner, format!("arn:aws:iam::aws:policy/aws-service-role/{name}")],
    )?;
    Ok(())
}

fn attach(iam: &Iam, ctx: &Ctx, kind: Kind, owner: &str, arn: &str) -> ApiResult<()> {
    iam.store.write(|tx| {
        let e = require(tx, &ctx.account, kind, owner)?;
        if document_of(tx, &ctx.account, arn)?.is_none() {
            return Err(no_such_entity(format!(
                "Policy {arn} does not exist or is not attachable."
            )));
        }
        let now = attached(tx, &ctx.account, kind, &e.name)?;
        if now.iter().any(|a| a == arn) {
            return Ok(());
        }
        if now.len() >= ATTACHED {
            let quota = match kind {
                Kind::User => "PoliciesPerUser",
                Kind::Role => "PoliciesPerRole",
                Kind::Group => "PoliciesPerGroup",
            };
            return Err(limit_exceeded(format!("Cannot exceed quota for {quota}: {ATTACHED}")));
        }
        tx.execute(
            "INSERT INTO iam_attachments (account, kind, owner, policy_arn) VALUES (?1, ?2, ?3, ?4)",
            params![ctx.account, kind.as_str(), e.name, arn],
        )?;
        Ok(())
    })
}

fn detach(iam: &Iam, ctx: &Ctx, kind: Kind, owner: &str, arn: &str) -> ApiResult<()> {
    iam.store.write(|tx| {
        let e = require(tx, &ctx.account, kind, owner)?;
        let n = tx.execute(
            "DELETE FROM iam_attachments WHERE account = ?1 AND kind = ?2 AND owner = ?3 AND policy_arn = ?4",
            params![ctx.account, kind.as_str(), e.name, arn],
        )?;
        if n == 0 {
            return Err(no_such_entity(format!("Policy {arn} was not found.")));
        }
        Ok(())
    })
}

fn list_attached(
    iam: &Iam,
    ctx: &Ctx,
    kind: Kind,
    owner: &str,
    path_prefix: Option<&str>,
    marker: Option<&str>,
    max: Option<i64>,
) -> ApiResult<(Vec<AttachedPolicy>, Option<String>)> {
    let arns = iam.store.read(|conn| {
        let e = require(conn, &ctx.account, kind, owner)?;
        attached(conn, &ctx.account, kind, &e.name)
    })?;
    let list: Vec<AttachedPolicy> = arns
        .into_iter()
        .filter(|arn| {
            let path = names::split_arn(arn)
                .map(|(_, r)| {
                    r.trim_start_matches("policy")
                        .trim_end_matches(names::name_of(arn))
                        .to_string()
                })
                .unwrap_or_else(|| "/".into());
            names::under(&path, path_prefix)
        })
        .map(|arn| AttachedPolicy {
            policy_name: Some(names::name_of(&arn).to_string()),
            policy_arn: Some(arn),
        })
        .collect();
    page(list, marker, max)
}

pub fn attach_user_policy(iam: &Iam, ctx: &Ctx, req: AttachUserPolicyRequest) -> ApiResult<Empty> {
    attach(iam, ctx, Kind::User, &req.user_name, &req.policy_arn)?;
    Ok(Empty {})
}

pub fn detach_user_policy(iam: &Iam, ctx: &Ctx, req: DetachUserPolicyRequest) -> ApiResult<Empty> {
    detach(iam, ctx, Kind::User, &req.user_name, &req.policy_arn)?;
    Ok(Empty {})
}

pub fn list_attached_user_policies(
    iam: &Iam,
    ctx: &Ctx,
    req: ListAttachedUserPoliciesRequest,
) -> ApiResult<ListAttachedUserPoliciesResponse> {
    let (list, marker) = list_attached(
        iam,
        ctx,
        Kind::User,
        &req.user_name,
        req.path_prefix.as_deref(),
        req.marker.as_deref(),
        req.max_items,
    )?;
    Ok(ListAttachedUserPoliciesResponse {
        attached_policies: Some(list),
        is_truncated: Some(marker.is_some()),
        marker,
    })
}

pub fn attach_role_policy(iam: &Iam, ctx: &Ctx, req: AttachRolePolicyRequest) -> ApiResult<Empty> {
    attach(iam, ctx, Kind::Role, &req.role_name, &req.policy_arn)?;
    Ok(Empty {})
}

pub fn detach_role_policy(iam: &Iam, ctx: &Ctx, req: DetachRolePolicyRequest) -> ApiResult<Empty> {
    detach(iam, ctx, Kind::Role, &req.role_name, &req.policy_arn)?;
    Ok(Empty {})
}

pub fn list_attached_role_policies(
    iam: &Iam,
    ctx: &Ctx,
    req: ListAttachedRolePoliciesRequest,
) -> ApiResult<ListAttachedRolePoliciesResponse> {
    let (list, marker) = list_attached(
        iam,
        ctx,
        Kind::Role,
        &req.role_name,
        req.path_prefix.as_deref(),
        req.marker.as_deref(),
        req.max_items,
    )?;
    Ok(ListAttachedRolePoliciesResponse {
        attached_policies: Some(list),
        is_truncated: Some(marker.is_some()),
        marker,
    })
}

pub fn attach_group_policy(
    iam: &Iam,
    ctx: &Ctx,
    req: AttachGroupPolicyRequest,
) -> ApiResult<Empty> {
    attach(iam, ctx, Kind::Group, &req.group_name, &req.policy_arn)?;
    Ok(Empty {})
}

pub fn detach_group_policy(
    iam: &Iam,
    ctx: &Ctx,
    req: DetachGroupPolicyRequest,
) -> ApiResult<Empty> {
    detach(iam, ctx, Kind::Group, &req.group_name, &req.policy_arn)?;
    Ok(Empty {})
}

pub fn list_attached_group_policies(
    iam: &Iam,
    ctx: &Ctx,
    req: ListAttachedGroupPoliciesRequest,
) -> ApiResult<ListAttachedGroupPoliciesResponse> {
    let (list, marker) = list_attached(
        iam,
        ctx,
        Kind::Group,
        &req.group_name,
        req.path_prefix.as_deref(),
        req.marker.as_deref(),
        req.max_items,
    )?;
    Ok(ListAttachedGroupPoliciesResponse {
        attached_policies: Some(list),
        is_truncated: Some(marker.is_some()),
        marker,
    })
}

pub fn list_entities_for_policy(
    iam: &Iam,
    ctx: &Ctx,
    req: ListEntitiesForPolicyRequest,
) -> ApiResult<ListEntitiesForPolicyResponse> {
    let filter = req.entity_filter.map(|f| f.as_str());
    let wants = |k: &str| filter.is_none() || filter == Some(k);
    let (users, roles, groups) = iam.store.read(|conn| {
        if document_of(conn, &ctx.account, &req.policy_arn)?.is_none() {
            return Err(not_found(&req.policy_arn));
        }
        let owners: Vec<(String, String)> = conn
            .prepare_cached(
                "SELECT kind, owner FROM iam_attachments WHERE account = ?1 AND policy_arn = ?2 ORDER BY kind, owner",
            )?
            .query_map(params![ctx.account, req.policy_arn], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let (mut users, mut roles, mut groups) = (Vec::new(), Vec::new(), Vec::new());
        for (kind, owner) in owners {
            let k = match kind.as_str() {
                "user" => Kind::User,
                "role" => Kind::Role,
                _ => Kind::Group,
            };
            let Some(e) = entities::get(conn, &ctx.account, k, &owner)? else {
                continue;
            };
            if !names::under(&e.path, req.path_prefix.as_deref()) {
                continue;
            }
            match k {
                Kind::User if wants("User") => users.push(PolicyUser { user_id: Some(e.id), user_name: Some(e.name) }),
                Kind::Role if wants("Role") => roles.push(PolicyRole { role_id: Some(e.id), role_name: Some(e.name) }),
                Kind::Group if wants("Group") => groups.push(PolicyGroup { group_id: Some(e.id), group_name: Some(e.name) }),
                _ => {}
            }
        }
        Ok((users, roles, groups))
    })?;
    Ok(ListEntitiesForPolicyResponse {
        is_truncated: Some(false),
        marker: None,
        policy_groups: Some(groups),
        policy_roles: Some(roles),
        policy_users: Some(users),
    })
}
