//! Users, roles and groups (table `iam_entities`, one row each, by kind),
//! group membership (`iam_group_members`), tags and permissions
//! boundaries.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::shapes::*;
use super::{
    already_exists, delete_conflict, iam_time, invalid_input, limit_exceeded, names,
    no_such_entity, page, parse_document, policy::PolicyKind, unmodifiable, Iam, Kind,
};
use crate::context::Ctx;
use crate::error::ApiResult;
use crate::wire::Empty;

/// A user, role or group as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub account: String,
    pub kind: Kind,
    pub name: String,
    pub id: String,
    pub path: String,
    pub created_ms: i64,
    pub description: Option<String>,
    /// A role's trust policy.
    pub trust: Option<String>,
    /// A role's maximum session, seconds.
    pub max_session: Option<i64>,
    /// The ARN of the managed policy that bounds it.
    pub boundary: Option<String>,
    pub tags: Vec<Tag>,
}

impl Entity {
    pub fn arn(&self) -> String {
        names::arn(&self.account, self.kind.as_str(), &self.path, &self.name)
    }

    fn boundary_shape(&self) -> Option<AttachedPermissionsBoundary> {
        self.boundary
            .as_ref()
            .map(|arn| AttachedPermissionsBoundary {
                permissions_boundary_arn: Some(arn.clone()),
                permissions_boundary_type: Some(
                    PermissionsBoundaryAttachmentType::PermissionsBoundaryPolicy,
                ),
            })
    }

    fn tags_shape(&self) -> Option<Vec<Tag>> {
        (!self.tags.is_empty()).then(|| self.tags.clone())
    }

    pub fn user(&self) -> User {
        User {
            arn: self.arn(),
            create_date: iam_time(self.created_ms),
            password_last_used: None,
            path: self.path.clone(),
            permissions_boundary: self.boundary_shape(),
            tags: self.tags_shape(),
            user_id: self.id.clone(),
            user_name: self.name.clone(),
        }
    }

    pub fn role(&self) -> Role {
        Role {
            arn: self.arn(),
            assume_role_policy_document: self.trust.as_deref().map(names::encode_document),
            create_date: iam_time(self.created_ms),
            description: self.description.clone(),
            max_session_duration: self.max_session,
            path: self.path.clone(),
            permissions_boundary: self.boundary_shape(),
            role_id: self.id.clone(),
            role_last_used: Some(RoleLastUsed::default()),
            role_name: self.name.clone(),
            tags: self.tags_shape(),
        }
    }

    pub fn group(&self) -> Group {
        Group {
            arn: self.arn(),
            create_date: iam_time(self.created_ms),
            group_id: self.id.clone(),
            group_name: self.name.clone(),
            path: self.path.clone(),
        }
    }
}

const COLUMNS: &str =
    "account, kind, name, id, path, created_at, description, trust, max_session, boundary, tags";

fn row(kind: Kind) -> impl Fn(&rusqlite::Row) -> rusqlite::Result<Entity> {
    move |r| {
        let tags: String = r.get(10)?;
        Ok(Entity {
            account: r.get(0)?,
            kind,
            name: r.get(2)?,
            id: r.get(3)?,
            path: r.get(4)?,
            created_ms: r.get(5)?,
            description: r.get(6)?,
            trust: r.get(7)?,
            max_session: r.get(8)?,
            boundary: r.get(9)?,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
        })
    }
}

/// The entity `name` (any case) of `kind` in `account`.
pub fn get(conn: &Connection, account: &str, kind: Kind, name: &str) -> ApiResult<Option<Entity>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM iam_entities WHERE account = ?1 AND kind = ?2 AND name = ?3"
        ))?
        .query_row(params![account, kind.as_str(), name], row(kind))
        .optional()?)
}

/// The entity `name`, or IAM's `NoSuchEntity` for it.
pub fn require(conn: &Connection, account: &str, kind: Kind, name: &str) -> ApiResult<Entity> {
    get(conn, account, kind, name)?.ok_or_else(|| {
        no_such_entity(format!(
            "The {} with name {name} cannot be found.",
            kind.noun()
        ))
    })
}

/// Every entity of `kind` in `account`, by name.
pub fn all(conn: &Connection, account: &str, kind: Kind) -> ApiResult<Vec<Entity>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM iam_entities WHERE account = ?1 AND kind = ?2 ORDER BY name"
        ))?
        .query_map(params![account, kind.as_str()], row(kind))?
        .collect::<Result<_, _>>()?)
}

/// The entity whose unique id is `id`.
pub fn by_id(conn: &Connection, account: &str, kind: Kind, id: &str) -> ApiResult<Option<Entity>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM iam_entities WHERE account = ?1 AND kind = ?2 AND id = ?3"
        ))?
        .query_row(params![account, kind.as_str(), id], row(kind))
        .optional()?)
}

fn insert(tx: &Transaction, e: &Entity) -> ApiResult<()> {
    if get(tx, &e.account, e.kind, &e.name)?.is_some() {
        return Err(already_exists(format!(
            "{} with name {} already exists.",
            e.kind.title(),
            e.name
        )));
    }
    save(tx, e)
}

fn save(conn: &Connection, e: &Entity) -> ApiResult<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO iam_entities ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (account, kind, name) DO UPDATE SET path = excluded.path,
           description = excluded.description, trust = excluded.trust,
           max_session = excluded.max_session, boundary = excluded.boundary,
           tags = excluded.tags"
    ))?
    .execute(params![
        e.account,
        e.kind.as_str(),
        e.name,
        e.id,
        e.path,
        e.created_ms,
        e.description,
        e.trust,
        e.max_session,
        e.boundary,
        serde_json::to_string(&e.tags).expect("tags serialise"),
    ])?;
    Ok(())
}

fn new_entity(ctx: &Ctx, kind: Kind, name: &str, path: Option<&str>) -> ApiResult<Entity> {
    let path = path.unwrap_or("/");
    names::check_path(path).map_err(super::validation)?;
    Ok(Entity {
        account: ctx.account.clone(),
        kind,
        name: name.to_string(),
        id: names::new_id(names::id_prefix(kind), 21, &mut rand::rngs::OsRng),
        path: path.to_string(),
        created_ms: ctx.now.timestamp_millis(),
        description: None,
        trust: None,
        max_session: None,
        boundary: None,
        tags: Vec::new(),
    })
}

/// Tags as IAM takes them: at most 50, keys not `aws:`, no key twice.
fn check_tags(tags: &[Tag]) -> ApiResult<()> {
    if tags.len() > 50 {
        return Err(limit_exceeded(
            "The number of tags has reached the maximum limit.",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in tags {
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid_input(
                "User is not authorized to perform: iam:Tag on resource: tags with the aws: prefix are reserved for AWS use.",
            ));
        }
        if !seen.insert(t.key.to_ascii_lowercase()) {
            return Err(invalid_input(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
    }
    Ok(())
}

/// `tags` with `add` merged in (a key given again, in any case, takes
/// its new value), sorted by key.
pub(super) fn with_tags(tags: &mut Vec<Tag>, add: &[Tag]) {
    for t in add {
        tags.retain(|o| !o.key.eq_ignore_ascii_case(&t.key));
        tags.push(t.clone());
    }
    tags.sort_by(|a, b| a.key.cmp(&b.key));
}

/// `tags` without the keys `keys` (in any case).
pub(super) fn without_tags(tags: &mut Vec<Tag>, keys: &[String]) {
    tags.retain(|t| !keys.iter().any(|k| k.eq_ignore_ascii_case(&t.key)));
}

/// [`with_tags`], checked as IAM checks tags.
fn merge_tags(mut tags: Vec<Tag>, add: &[Tag]) -> ApiResult<Vec<Tag>> {
    with_tags(&mut tags, add);
    check_tags(&tags)?;
    Ok(tags)
}

/// A count of rows naming (account, name) is zero, or `DeleteConflict`
/// with `message`.
fn none_left(tx: &Transaction, sql: &str, e: &Entity, message: &str) -> ApiResult<()> {
    let n: i64 = tx.query_row(sql, params![e.account, e.name], |r| r.get(0))?;
    if n > 0 {
        return Err(delete_conflict(message));
    }
    Ok(())
}

/// An identity is deleted only once its inline policies are deleted and
/// its managed ones detached.
fn no_policies_left(tx: &Transaction, e: &Entity) -> ApiResult<()> {
    let kind = e.kind.as_str();
    none_left(
        tx,
        &format!("SELECT COUNT(*) FROM iam_inline_policies WHERE account = ?1 AND kind = '{kind}' AND owner = ?2"),
        e,
        "Cannot delete entity, must delete policies first.",
    )?;
    none_left(
        tx,
        &format!("SELECT COUNT(*) FROM iam_attachments WHERE account = ?1 AND kind = '{kind}' AND owner = ?2"),
        e,
        "Cannot delete entity, must detach all policies first.",
    )
}

/// A permissions boundary must be a managed policy that exists.
fn check_boundary(conn: &Connection, ctx: &Ctx, arn: &str) -> ApiResult<()> {
    if super::policies::document_of(conn, &ctx.account, arn)?.is_none() {
        return Err(invalid_input(format!(
            "ARN {arn} is not valid or the policy does not exist."
        )));
    }
    Ok(())
}

// Users.

pub fn create_user(iam: &Iam, ctx: &Ctx, req: CreateUserRequest) -> ApiResult<CreateUserResponse> {
    let mut e = new_entity(ctx, Kind::User, &req.user_name, req.path.as_deref())?;
    e.tags = req.tags.unwrap_or_default();
    check_tags(&e.tags)?;
    iam.store.write(|tx| {
        if let Some(b) = &req.permissions_boundary {
            check_boundary(tx, ctx, b)?;
            e.boundary = Some(b.clone());
        }
        insert(tx, &e)
    })?;
    Ok(CreateUserResponse {
        user: Some(e.user()),
    })
}

/// The user a request names, or (none named) the caller's own user.
fn named_or_caller(ctx: &Ctx, name: Option<&str>) -> ApiResult<String> {
    if let Some(n) = name {
        return Ok(n.to_string());
    }
    match names::split_arn(&ctx.principal_arn) {
        Some((_, resource)) if resource.starts_with("user/") => {
            Ok(names::name_of(resource).to_string())
        }
        _ => Err(super::validation(
            "Must specify userName when calling with non-User credentials",
        )),
    }
}

pub fn get_user(iam: &Iam, ctx: &Ctx, req: GetUserRequest) -> ApiResult<GetUserResponse> {
    if req.user_name.is_none() && ctx.principal_arn.ends_with(":root") {
        // The root user, as IAM describes it to itself.
        return Ok(GetUserResponse {
            user: User {
                arn: ctx.principal_arn.clone(),
                create_date: iam_time(0),
                password_last_used: None,
                path: "/".into(),
                permissions_boundary: None,
                tags: None,
                user_id: ctx.account.clone(),
                user_name: String::new(),
            },
        });
    }
    let name = named_or_caller(ctx, req.user_name.as_deref())?;
    let e = iam
        .store
        .read(|conn| require(conn, &ctx.account, Kind::User, &name))?;
    Ok(GetUserResponse { user: e.user() })
}

pub fn list_users(iam: &Iam, ctx: &Ctx, req: ListUsersRequest) -> ApiResult<ListUsersResponse> {
    let all = iam.store.read(|conn| all(conn, &ctx.account, Kind::User))?;
    let users: Vec<User> = all
        .iter()
        .filter(|e| names::under(&e.path, req.path_prefix.as_deref()))
        .map(|e| {
            let mut u = e.user();
            u.tags = None;
            u
        })
        .collect();
    let (users, marker) = page(users, req.marker.as_deref(), req.max_items)?;
    Ok(ListUsersResponse {
        is_truncated: Some(marker.is_some()),
        marker,
        users,
    })
}

/// Rename an entity everywhere it is named.
fn rename(tx: &Transaction, account: &str, kind: Kind, old: &str, new: &str) -> ApiResult<()> {
    let k = kind.as_str();
    tx.execute(
        "UPDATE iam_entities SET name = ?4 WHERE account = ?1 AND kind = ?2 AND name = ?3",
        params![account, k, old, new],
    )?;
    for table in ["iam_inline_policies", "iam_attachments"] {
        tx.execute(
            &format!(
                "UPDATE {table} SET owner = ?4 WHERE account = ?1 AND kind = ?2 AND owner = ?3"
            ),
            params![account, k, old, new],
        )?;
    }
    match kind {
        Kind::User => {
            tx.execute(
                "UPDATE iam_group_members SET user_name = ?3 WHERE account = ?1 AND user_name = ?2",
                params![account, old, new],
            )?;
            tx.execute(
                "UPDATE iam_access_keys SET user_name = ?3 WHERE account = ?1 AND user_name = ?2",
                params![account, old, new],
            )?;
        }
        Kind::Group => {
            tx.execute(
                "UPDATE iam_group_members SET group_name = ?3 WHERE account = ?1 AND group_name = ?2",
                params![account, old, new],
            )?;
        }
        Kind::Role => {}
    }
    Ok(())
}

pub fn update_user(iam: &Iam, ctx: &Ctx, req: UpdateUserRequest) -> ApiResult<Empty> {
    iam.store.write(|tx| {
        let mut e = require(tx, &ctx.account, Kind::User, &req.user_name)?;
        if let Some(p) = &req.new_path {
            names::check_path(p).map_err(super::validation)?;
            e.path = p.clone();
            save(tx, &e)?;
        }
        if let Some(n) = &req.new_user_name {
            if !n.eq_ignore_ascii_case(&e.name) && get(tx, &ctx.account, Kind::User, n)?.is_some() {
                return Err(already_exists(format!(
                    "User with name {n} already exists."
                )));
            }
            rename(tx, &ctx.account, Kind::User, &e.name, n)?;
        }
        Ok(())
    })?;
    Ok(Empty {})
}

pub fn delete_user(iam: &Iam, ctx: &Ctx, req: DeleteUserRequest) -> ApiResult<Empty> {
    iam.store.write(|tx| {
        let e = require(tx, &ctx.account, Kind::User, &req.user_name)?;
        none_left(
            tx,
            "SELECT COUNT(*) FROM iam_access_keys WHERE account = ?1 AND user_name = ?2",
            &e,
            "Cannot delete entity, must delete access keys first.",
        )?;
        no_policies_left(tx, &e)?;
        none_left(
            tx,
            "SELECT COUNT(*) FROM iam_group_members WHERE account = ?1 AND user_name = ?2",
            &e,
            "Cannot delete entity, must remove user from all groups first.",
        )?;
        remove(tx, &e)
    })?;
    Ok(Empty {})
}

fn remove(tx: &Transaction, e: &Entity) -> ApiResult<()> {
    tx.execute(
        "DELETE FROM iam_entities WHERE account = ?1 AND kind = ?2 AND name = ?3",
        params![e.account, e.kind.as_str(), e.name],
    )?;
    Ok(())
}

fn tag(iam: &Iam, ctx: &Ctx, kind: Kind, name: &str, tags: &[Tag]) -> ApiResult<()> {
    iam.store.write(|tx| {
        let mut e = require(tx, &ctx.account, kind, name)?;
        e.tags = merge_tags(std::mem::take(&mut e.tags), tags)?;
        save(tx, &e)
    })
}

fn untag(iam: &Iam, ctx: &Ctx, kind: Kind, name: &str, keys: &[String]) -> ApiResult<()> {
    iam.store.write(|tx| {
        let mut e = require(tx, &ctx.account, kind, name)?;
        e.tags
            .retain(|t| !keys.iter().any(|k| k.eq_ignore_ascii_case(&t.key)));
        save(tx, &e)
    })
}

fn tags_of(iam: &Iam, ctx: &Ctx, kind: Kind, name: &str) -> ApiResult<Vec<Tag>> {
    Ok(iam
        .store
        .read(|conn| require(conn, &ctx.account, kind, name))?
        .tags)
}

pub fn tag_user(iam: &Iam, ctx: &Ctx, req: TagUserRequest) -> ApiResult<Empty> {
    tag(iam, ctx, Kind::User, &req.user_name, &req.tags)?;
    Ok(Empty {})
}

pub fn untag_user(iam: &Iam, ctx: &Ctx, req: UntagUserRequest) -> ApiResult<Empty> {
    untag(iam, ctx, Kind::User, &req.user_name, &req.tag_keys)?;
    Ok(Empty {})
}

pub fn list_user_tags(
    iam: &Iam,
    ctx: &Ctx,
    req: ListUserTagsRequest,
) -> ApiResult<ListUserTagsResponse> {
    let tags = tags_of(iam, ctx, Kind::User, &req.user_name)?;
    let (tags, marker) = page(tags, req.marker.as_deref(), req.max_items)?;
    Ok(ListUserTagsResponse {
        is_truncated: Some(marker.is_some()),
        marker,
        tags,
    })
}

// Roles.

/// A role's session limits: one to twelve hours.
const DEFAULT_MAX_SESSION: i64 = 3600;

pub fn create_role(iam: &Iam, ctx: &Ctx, req: CreateRoleRequest) -> ApiResult<CreateRoleResponse> {
    parse_document(&req.assume_role_policy_document, PolicyKind::Trust)?;
    let mut e = new_entity(ctx, Kind::Role, &req.role_name, req.path.as_deref())?;
    e.trust = Some(req.assume_role_policy_document.clone());
    e.description = req.description.clone();
    e.max_session = Some(req.max_session_duration.unwrap_or(DEFAULT_MAX_SESSION));
    e.tags = req.tags.unwrap_or_default();
    check_tags(&e.tags)?;
    iam.store.write(|tx| {
        if let Some(b) = &req.permissions_boundary {
            check_boundary(tx, ctx, b)?;
            e.boundary = Some(b.clone());
        }
        insert(tx, &e)
    })?;
    let mut role = e.role();
    role.role_last_used = None;
    Ok(CreateRoleResponse { role })
}

pub fn get_role(iam: &Iam, ctx: &Ctx, req: GetRoleRequest) -> ApiResult<GetRoleResponse> {
    let e = iam
        .store
        .read(|conn| require(conn, &ctx.account, Kind::Role, &req.role_name))?;
    Ok(GetRoleResponse { role: e.role() })
}

pub fn list_roles(iam: &Iam, ctx: &Ctx, req: ListRolesRequest) -> ApiResult<ListRolesResponse> {
    let all = iam.store.read(|conn| all(conn, &ctx.account, Kind::Role))?;
    let roles: Vec<Role> = all
        .iter()
        .filter(|e| names::under(&e.path, req.path_prefix.as_deref()))
        .map(|e| {
            let mut r = e.role();
            r.tags = None;
            r.role_last_used = None;
            r
        })
        .collect();
    let (roles, marker) = page(roles, req.marker.as_deref(), req.max_items)?;
    Ok(ListRolesResponse {
        is_truncated: Some(marker.is_some()),
        marker,
        roles,
    })
}

/// A service-linked role (`/aws-service-role/`) can be changed only by
/// its service.
fn check_modifiable(e: &Entity) -> ApiResult<()> {
    if e.path.starts_with("/aws-service-role/") {
        return Err(unmodifiable(format!(
            "Cannot perform the operation on the protected role '{}' - this role is only modifiable by AWS",
            e.name
        )));
    }
    Ok(())
}

pub fn update_role(iam: &Iam, ctx: &Ctx, req: UpdateRoleRequest) -> ApiResult<UpdateRoleResponse> {
    iam.store.write(|tx| {
        let mut e = require(tx, &ctx.account, Kind::Role, &req.role_name)?;
        check_modifiable(&e)?;
        if let Some(d) = &req.description {
            e.description = Some(d.clone());
        }
        if let Some(m) = req.max_session_duration {
            e.max_session = Some(m);
        }
        save(tx, &e)
    })?;
    Ok(UpdateRoleResponse {})
}

pub fn update_role_description(
    iam: &Iam,
    ctx: &Ctx,
    req: UpdateRoleDescriptionRequest,
) -> ApiResult<UpdateRoleDescriptionResponse> {
    let e = iam.store.write(|tx| {
        let mut e = require(tx, &ctx.account, Kind::Role, &req.role_name)?;
        check_modifiable(&e)?;
        e.description = Some(req.description.clone());
        save(tx, &e)?;
        Ok(e)
    })?;
    Ok(UpdateRoleDescriptionResponse {
        role: Some(e.role()),
    })
}

pub fn update_assume_role_policy(
    iam: &Iam,
    ctx: &Ctx,
    req: UpdateAssumeRolePolicyRequest,
) -> ApiResult<Empty> {
    parse_document(&req.policy_document, PolicyKind::Trust)?;
    iam.store.write(|tx| {
        let mut e = require(tx, &ctx.account, Kind::Role, &req.role_name)?;
        check_modifiable(&e)?;
        e.trust = Some(req.policy_document.clone());
        save(tx, &e)
    })?;
    Ok(Empty {})
}

pub fn delete_role(iam: &Iam, ctx: &Ctx, req: DeleteRoleRequest) -> ApiResult<Empty> {
    iam.store.write(|tx| {
        let e = require(tx, &ctx.account, Kind::Role, &req.role_name)?;
        check_modifiable(&e)?;
        none_left(
            tx,
            "SELECT COUNT(*) FROM iam_instance_profiles WHERE account = ?1 AND role_name = ?2",
            &e,
            "Cannot delete entity, must remove roles from instance profile first.",
        )?;
        no_policies_left(tx, &e)?;
        remove(tx, &e)
    })?;
    Ok(Empty {})
}

pub fn tag_role(iam: &Iam, ctx: &Ctx, req: TagRoleRequest) -> ApiResult<Empty> {
    tag(iam, ctx, Kind::Role, &req.role_name, &req.tags)?;
    Ok(Empty {})
}

pub fn untag_role(iam: &Iam, ctx: &Ctx, req: UntagRoleRequest) -> ApiResult<Empty> {
    untag(iam, ctx, Kind::Role, &req.role_name, &req.tag_keys)?;
    Ok(Empty {})
}

pub fn list_role_tags(
    iam: &Iam,
    ctx: &Ctx,
    req: ListRoleTagsRequest,
) -> ApiResult<ListRoleTagsResponse> {
    let tags = tags_of(iam, ctx, Kind::Role, &req.role_name)?;
    let (tags, marker) = page(tags, req.marker.as_deref(), req.max_items)?;
    Ok(ListRoleTagsResponse {
        is_truncated: Some(marker.is_some()),
        marker,
        tags,
    })
}

/// `CreateServiceLinkedRole`: the role an AWS service acts through, at
/// `/aws-service-role/<service>/`, trusting that service, with its AWS
/// managed policy attached.
pub fn create_service_linked_role(
    iam: &Iam,
    ctx: &Ctx,
    req: CreateServiceLinkedRoleRequest,
) -> ApiResult<CreateServiceLinkedRoleResponse> {
    let service = req.aws_service_name.as_str();
    let Some((base, policy)) = names::service_linked_role_name(service) else {
        return Err(invalid_input(format!(
            "Service role name {service} is not valid or is not supported."
        )));
    };
    let name = match &req.custom_suffix {
        Some(s) => format!("{base}_{s}"),
        None => base.to_string(),
    };
    let path = format!("/aws-service-role/{service}/");
    let mut e = new_entity(ctx, Kind::Role, &name, Some(&path))?;
    e.trust = Some(format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":["{service}"]}},"Action":["sts:AssumeRole"]}}]}}"#
    ));
    e.description = req.description.clone();
    e.max_session = Some(DEFAULT_MAX_SESSION);
    iam.store.write(|tx| {
        if get(tx, &ctx.account, Kind::Role, &name)?.is_some() {
            return Err(invalid_input(format!(
                "Service role name {name} has been taken in this account, please try a different suffix."
            )));
        }
        insert(tx, &e)?;
        super::policies::attach_service_policy(tx, &ctx.account, Kind::Role, &name, policy)
    })?;
    Ok(CreateServiceLinkedRoleResponse {
        role: Some(e.role()),
    })
}

// Groups.

pub fn create_group(
    iam: &Iam,
    ctx: &Ctx,
    req: CreateGroupRequest,
) -> ApiResult<CreateGroupResponse> {
    let e = new_entity(ctx, Kind::Group, &req.group_name, req.path.as_deref())?;
    iam.store.write(|tx| insert(tx, &e))?;
    Ok(CreateGroupResponse { group: e.group() })
}

/// The users in group `group`, by name.
pub fn members(conn: &Connection, account: &str, group: &str) -> ApiResult<Vec<Entity>> {
    let names: Vec<String> = conn
        .prepare_cached(
            "SELECT user_name FROM iam_group_members WHERE account = ?1 AND group_name = ?2 ORDER BY user_name",
        )?
        .query_map(params![account, group], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for n in names {
        if let Some(e) = get(conn, account, Kind::User, &n)? {
            out.push(e);
        }
    }
    Ok(out)
}

/// The groups user `user` is in, by name.
pub fn groups_of(conn: &Connection, account: &str, user: &str) -> ApiResult<Vec<Entity>> {
    let names: Vec<String> = conn
        .prepare_cached(
            "SELECT group_name FROM iam_group_members WHERE account = ?1 AND user_name = ?2 ORDER BY group_name",
        )?
        .query_map(params![account, user], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for n in names {
        if let Some(e) = get(conn, account, Kind::Group, &n)? {
            out.push(e);
        }
    }
    Ok(out)
}

pub fn get_group(iam: &Iam, ctx: &Ctx, req: GetGroupRequest) -> ApiResult<GetGroupResponse> {
    let (g, users) = iam.store.read(|conn| {
        let g = require(conn, &ctx.account, Kind::Group, &req.group_name)?;
        let users = members(conn, &ctx.account, &g.name)?;
        Ok((g, users))
    })?;
    let users: Vec<User> = users
        .iter()
        .map(|u| {
            let mut u = u.user();
            u.tags = None;
            u
        })
        .collect();
    let (users, marker) = page(users, req.marker.as_deref(), req.max_items)?;
    Ok(GetGroupResponse {
        group: g.group(),
        is_truncated: Some(marker.is_some()),
        marker,
        users,
    })
}

pub fn list_groups(iam: &Iam, ctx: &Ctx, req: ListGroupsRequest) -> ApiResult<ListGroupsResponse> {
    let all = iam
        .store
        .read(|conn| all(conn, &ctx.account, Kind::Group))?;
    let groups: Vec<Group> = all
        .iter()
        .filter(|e| names::under(&e.path, req.path_prefix.as_deref()))
        .map(Entity::group)
        .collect();
    let (groups, marker) = page(groups, req.marker.as_deref(), req.max_items)?;
    Ok(ListGroupsResponse {
        groups,
        is_truncated: Some(marker.is_some()),
        marker,
    })
}

pub fn delete_group(iam: &Iam, ctx: &Ctx, req: DeleteGroupRequest) -> ApiResult<Empty> {
    iam.store.write(|tx| {
        let e = require(tx, &ctx.account, Kind::Group, &req.group_name)?;
        none_left(
            tx,
            "SELECT COUNT(*) FROM iam_group_members WHERE account = ?1 AND group_name = ?2",
            &e,
            "Cannot delete entity, must remove users from group first.",
        )?;
        no_policies_left(tx, &e)?;
        remove(tx, &e)
    })?;
    Ok(Empty {})
}

pub fn add_user_to_group(iam: &Iam, ctx: &Ctx, req: AddUserToGroupRequest) -> ApiResult<Empty> {
    iam.store.write(|tx| {
        let g = require(tx, &ctx.account, Kind::Group, &req.group_name)?;
        let u = require(tx, &ctx.account, Kind::User, &req.user_name)?;
        if groups_of(tx, &ctx.account, &u.name)?.len() >= 10 {
            return Err(limit_exceeded("Cannot exceed quota for GroupsPerUser: 10"));
        }
        tx.execute(
            "INSERT OR IGNORE INTO iam_group_members (account, group_name, user_name) VALUES (?1, ?2, ?3)",
            params![ctx.account, g.name, u.name],
        )?;
        Ok(())
    })?;
    Ok(Empty {})
}

pub fn remove_user_from_group(
    iam: &Iam,
    ctx: &Ctx,
    req: RemoveUserFromGroupRequest,
) -> ApiResult<Empty> {
    iam.store.write(|tx| {
        let g = require(tx, &ctx.account, Kind::Group, &req.group_name)?;
        let u = require(tx, &ctx.account, Kind::User, &req.user_name)?;
        let n = tx.execute(
            "DELETE FROM iam_group_members WHERE account = ?1 AND group_name = ?2 AND user_name = ?3",
            params![ctx.account, g.name, u.name],
        )?;
        if n == 0 {
            return Err(no_such_entity(format!(
                "User {} is not in group {}.",
                u.name, g.name
            )));
        }
        Ok(())
    })?;
    Ok(Empty {})
}

pub fn list_groups_for_user(
    iam: &Iam,
    ctx: &Ctx,
    req: ListGroupsForUserRequest,
) -> ApiResult<ListGroupsForUserResponse> {
    let groups = iam.store.read(|conn| {
        let u = require(conn, &ctx.account, Kind::User, &req.user_name)?;
        groups_of(conn, &ctx.account, &u.name)
    })?;
    let groups: Vec<Group> = groups.iter().map(Entity::group).collect();
    let (groups, marker) = page(groups, req.marker.as_deref(), req.max_items)?;
    Ok(ListGroupsForUserResponse {
        groups,
        is_truncated: Some(marker.is_some()),
        marker,
    })
}

// Permissions boundaries.

fn set_boundary(iam: &Iam, ctx: &Ctx, kind: Kind, name: &str, arn: Option<&str>) -> ApiResult<()> {
    iam.store.write(|tx| {
        let mut e = require(tx, &ctx.account, kind, name)?;
        if kind == Kind::Role {
            check_modifiable(&e)?;
        }
        if let Some(a) = arn {
            check_boundary(tx, ctx, a)?;
        }
        e.boundary = arn.map(str::to_string);
        save(tx, &e)
    })
}

pub fn put_user_boundary(
    iam: &Iam,
    ctx: &Ctx,
    req: PutUserPermissionsBoundaryRequest,
) -> ApiResult<Empty> {
    set_boundary(
        iam,
        ctx,
        Kind::User,
        &req.user_name,
        Some(&req.permissions_boundary),
    )?;
    Ok(Empty {})
}

pub fn delete_user_boundary(
    iam: &Iam,
    ctx: &Ctx,
    req: DeleteUserPermissionsBoundaryRequest,
) -> ApiResult<Empty> {
    set_boundary(iam, ctx, Kind::User, &req.user_name, None)?;
    Ok(Empty {})
}

pub fn put_role_boundary(
    iam: &Iam,
    ctx: &Ctx,
    req: PutRolePermissionsBoundaryRequest,
) -> ApiResult<Empty> {
    set_boundary(
        iam,
        ctx,
        Kind::Role,
        &req.role_name,
        Some(&req.permissions_boundary),
    )?;
    Ok(Empty {})
}

pub fn delete_role_boundary(
    iam: &Iam,
    ctx: &Ctx,
    req: DeleteRolePermissionsBoundaryRequest,
) -> ApiResult<Empty> {
    set_boundary(iam, ctx, Kind::Role, &req.role_name, None)?;
    Ok(Empty {})
}
