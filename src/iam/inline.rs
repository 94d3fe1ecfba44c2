//! Inline policies of users, roles and groups (table
//! `iam_inline_policies`), one handler set for the three kinds.

use rusqlite::{params, Connection, OptionalExtension};

use super::entities::require;
use super::shapes::*;
use super::{
    limit_exceeded, names, no_such_entity, page, parse_document, policy::PolicyKind, Iam, Kind,
};
use crate::context::Ctx;
use crate::error::ApiResult;
use crate::wire::Empty;

/// IAM's quota on the inline policies of one identity: their documents'
/// characters, whitespace not counted.
fn size_quota(kind: Kind) -> usize {
    match kind {
        Kind::User => 2048,
        Kind::Role => 10240,
        Kind::Group => 5120,
    }
}

fn counted(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

/// The inline policies of `owner`, by name: (name, document).
pub fn of(
    conn: &Connection,
    account: &str,
    kind: Kind,
    owner: &str,
) -> ApiResult<Vec<(String, String)>> {
    Ok(conn
        .prepare_cached(
            "SELECT name, document FROM iam_inline_policies
             WHERE account = ?1 AND kind = ?2 AND owner = ?3 ORDER BY name",
        )?
        .query_map(params![account, kind.as_str(), owner], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?)
}

fn put(iam: &Iam, ctx: &Ctx, kind: Kind, owner: &str, name: &str, document: &str) -> ApiResult<()> {
    parse_document(document, PolicyKind::Identity)?;
    iam.store.write(|tx| {
        let e = require(tx, &ctx.account, kind, owner)?;
        let others: usize = of(tx, &ctx.account, kind, &e.name)?
            .iter()
            .filter(|(n, _)| n != name)
            .map(|(_, d)| counted(d))
            .sum();
        if others + counted(document) > size_quota(kind) {
            return Err(limit_exceeded(format!(
                "Maximum policy size of {} bytes exceeded for {} {}",
                size_quota(kind),
                kind.as_str(),
                e.name
            )));
        }
        tx.execute(
            "INSERT INTO iam_inline_policies (account, kind, owner, name, document)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (account, kind, owner, name) DO UPDATE SET document = excluded.document",
            params![ctx.account, kind.as_str(), e.name, name, document],
        )?;
        Ok(())
    })
}

fn missing(kind: Kind, name: &str) -> crate::error::ApiError {
    no_such_entity(format!(
        "The {} policy with name {name} cannot be found.",
        kind.as_str()
    ))
}

/// (owner's stored name, document) of the inline policy `name`.
fn get(iam: &Iam, ctx: &Ctx, kind: Kind, owner: &str, name: &str) -> ApiResult<(String, String)> {
    iam.store.read(|conn| {
        let e = require(conn, &ctx.account, kind, owner)?;
        let doc: Option<String> = conn
            .prepare_cached(
                "SELECT document FROM iam_inline_policies
                 WHERE account = ?1 AND kind = ?2 AND owner = ?3 AND name = ?4",
            )?
            .query_row(params![ctx.account, kind.as_str(), e.name, name], |r| {
                r.get(0)
            })
            .optional()?;
        Ok((e.name, doc.ok_or_else(|| missing(kind, name))?))
    })
}

fn list(
    iam: &Iam,
    ctx: &Ctx,
    kind: Kind,
    owner: &str,
    marker: Option<&str>,
    max: Option<i64>,
) -> ApiResult<(Vec<String>, Option<String>)> {
    let names: Vec<String> = iam.store.read(|conn| {
        let e = require(conn, &ctx.account, kind, owner)?;
        Ok(of(conn, &ctx.account, kind, &e.name)?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    })?;
    page(names, marker, max)
}

fn delete(iam: &Iam, ctx: &Ctx, kind: Kind, owner: &str, name: &str) -> ApiResult<()> {
    iam.store.write(|tx| {
        let e = require(tx, &ctx.account, kind, owner)?;
        let n = tx.execute(
            "DELETE FROM iam_inline_policies WHERE account = ?1 AND kind = ?2 AND owner = ?3 AND name = ?4",
            params![ctx.account, kind.as_str(), e.name, name],
        )?;
        if n == 0 {
            return Err(missing(kind, name));
        }
        Ok(())
    })
}

pub fn put_user_policy(iam: &Iam, ctx: &Ctx, req: PutUserPolicyRequest) -> ApiResult<Empty> {
    put(
        iam,
        ctx,
        Kind::User,
        &req.user_name,
        &req.policy_name,
        &req.policy_document,
    )?;
    Ok(Empty {})
}

pub fn get_user_policy(
    iam: &Iam,
    ctx: &Ctx,
    req: GetUserPolicyRequest,
) -> ApiResult<GetUserPolicyResponse> {
    let (user_name, doc) = get(iam, ctx, Kind::User, &req.user_name, &req.policy_name)?;
    Ok(GetUserPolicyResponse {
        policy_document: names::encode_document(&doc),
        policy_name: req.policy_name,
        user_name,
    })
}

pub fn list_user_policies(
    iam: &Iam,
    ctx: &Ctx,
    req: ListUserPoliciesRequest,
) -> ApiResult<ListUserPoliciesResponse> {
    let (policy_names, marker) = list(
        iam,
        ctx,
        Kind::User,
        &req.user_name,
        req.marker.as_deref(),
        req.max_items,
    )?;
    Ok(ListUserPoliciesResponse {
        is_truncated: Some(marker.is_some()),
        marker,
        policy_names,
    })
}

pub fn delete_user_policy(iam: &Iam, ctx: &Ctx, req: DeleteUserPolicyRequest) -> ApiResult<Empty> {
    delete(iam, ctx, Kind::User, &req.user_name, &req.policy_name)?;
    Ok(Empty {})
}

pub fn put_role_policy(iam: &Iam, ctx: &Ctx, req: PutRolePolicyRequest) -> ApiResult<Empty> {
    put(
        iam,
        ctx,
        Kind::Role,
        &req.role_name,
        &req.policy_name,
        &req.policy_document,
    )?;
    Ok(Empty {})
}

pub fn get_role_policy(
    iam: &Iam,
    ctx: &Ctx,
    req: GetRolePolicyRequest,
) -> ApiResult<GetRolePolicyResponse> {
    let (role_name, doc) = get(iam, ctx, Kind::Role, &req.role_name, &req.policy_name)?;
    Ok(GetRolePolicyResponse {
        policy_document: names::encode_document(&doc),
        policy_name: req.policy_name,
        role_name,
    })
}

pub fn list_role_policies(
    iam: &Iam,
    ctx: &Ctx,
    req: ListRolePoliciesRequest,
) -> ApiResult<ListRolePoliciesResponse> {
    let (policy_names, marker) = list(
        iam,
        ctx,
        Kind::Role,
        &req.role_name,
        req.marker.as_deref(),
        req.max_items,
    )?;
    Ok(ListRolePoliciesResponse {
        is_truncated: Some(marker.is_some()),
        marker,
        policy_names,
    })
}

pub fn delete_role_policy(iam: &Iam, ctx: &Ctx, req: DeleteRolePolicyRequest) -> ApiResult<Empty> {
    delete(iam, ctx, Kind::Role, &req.role_name, &req.policy_name)?;
    Ok(Empty {})
}

pub fn put_group_policy(iam: &Iam, ctx: &Ctx, req: PutGroupPolicyRequest) -> ApiResult<Empty> {
    put(
        iam,
        ctx,
        Kind::Group,
        &req.group_name,
        &req.policy_name,
        &req.policy_document,
    )?;
    Ok(Empty {})
}

pub fn get_group_policy(
    iam: &Iam,
    ctx: &Ctx,
    req: GetGroupPolicyRequest,
) -> ApiResult<GetGroupPolicyResponse> {
    let (group_name, doc) = get(iam, ctx, Kind::Group, &req.group_name, &req.policy_name)?;
    Ok(GetGroupPolicyResponse {
        group_name,
        policy_document: names::encode_document(&doc),
        policy_name: req.policy_name,
    })
}

pub fn list_group_policies(
    iam: &Iam,
    ctx: &Ctx,
    req: ListGroupPoliciesRequest,
) -> ApiResult<ListGroupPoliciesResponse> {
    let (policy_names, marker) = list(
        iam,
        ctx,
        Kind::Group,
        &req.group_name,
        req.marker.as_deref(),
        req.max_items,
    )?;
    Ok(ListGroupPoliciesResponse {
        is_truncated: Some(marker.is_some()),
        marker,
        policy_names,
    })
}

pub fn delete_group_policy(
    iam: &Iam,
    ctx: &Ctx,
    req: DeleteGroupPolicyRequest,
) -> ApiResult<Empty> {
    delete(iam, ctx, Kind::Group, &req.group_name, &req.policy_name)?;
    Ok(Empty {})
}
