//! Instance profiles (table `iam_instance_profiles`): the container an
//! EC2 instance's role is passed in, with at most one role.

use rusqlite::{params, Connection, OptionalExtension};

use super::entities::{self, require};
use super::shapes::*;
use super::{
    already_exists, delete_conflict, iam_time, limit_exceeded, names, no_such_entity, page, Iam,
    Kind,
};
use crate::context::Ctx;
use crate::error::ApiResult;
use crate::wire::Empty;

/// An instance profile as stored.
#[derive(Debug, Clone)]
pub struct Profile {
    pub account: String,
    pub name: String,
    pub id: String,
    pub path: String,
    pub created_ms: i64,
    pub role: Option<String>,
    pub tags: Vec<Tag>,
}

impl Profile {
    pub fn arn(&self) -> String {
        names::arn(&self.account, "instance-profile", &self.path, &self.name)
    }
}

const COLUMNS: &str = "account, name, id, path, created_at, role_name, tags";

fn row(r: &rusqlite::Row) -> rusqlite::Result<Profile> {
    let tags: String = r.get(6)?;
    Ok(Profile {
        account: r.get(0)?,
        name: r.get(1)?,
        id: r.get(2)?,
        path: r.get(3)?,
        created_ms: r.get(4)?,
        role: r.get(5)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
    })
}

/// Instance profile `name` of `account`.
pub fn get_profile(conn: &Connection, account: &str, name: &str) -> ApiResult<Option<Profile>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM iam_instance_profiles WHERE account = ?1 AND name = ?2"
        ))?
        .query_row(params![account, name], row)
        .optional()?)
}

fn require_profile(conn: &Connection, account: &str, name: &str) -> ApiResult<Profile> {
    get_profile(conn, account, name)?
        .ok_or_else(|| no_such_entity(format!("Instance Profile {name} cannot be found.")))
}

fn all(conn: &Connection, account: &str) -> ApiResult<Vec<Profile>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM iam_instance_profiles WHERE account = ?1 ORDER BY name"
        ))?
        .query_map([account], row)?
        .collect::<Result<_, _>>()?)
}

fn save(conn: &Connection, p: &Profile) -> ApiResult<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO iam_instance_profiles ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (account, name) DO UPDATE SET role_name = excluded.role_name, tags = excluded.tags"
    ))?
    .execute(params![
        p.account,
        p.name,
        p.id,
        p.path,
        p.created_ms,
        p.role,
        serde_json::to_string(&p.tags).expect("tags serialise"),
    ])?;
    Ok(())
}

/// The profile as IAM describes it, with its role.
fn describe(conn: &Connection, p: &Profile) -> ApiResult<InstanceProfile> {
    let mut roles = Vec::new();
    if let Some(r) = &p.role {
        if let Some(e) = entities::get(conn, &p.account, Kind::Role, r)? {
            let mut role = e.role();
            role.role_last_used = None;
            role.tags = None;
            roles.push(role);
        }
    }
    Ok(InstanceProfile {
        arn: p.arn(),
        create_date: iam_time(p.created_ms),
        instance_profile_id: p.id.clone(),
        instance_profile_name: p.name.clone(),
        path: p.path.clone(),
        roles,
        tags: (!p.tags.is_empty()).then(|| p.tags.clone()),
    })
}

pub fn create(
    iam: &Iam,
    ctx: &Ctx,
    req: CreateInstanceProfileRequest,
) -> ApiResult<CreateInstanceProfileResponse> {
    let path = req.path.clone().unwrap_or_else(|| "/".into());
    names::check_path(&path).map_err(super::validation)?;
    let p = Profile {
        account: ctx.account.clone(),
        name: req.instance_profile_name.clone(),
        id: names::new_id("AIPA", 21, &mut rand::rngs::OsRng),
        path,
        created_ms: ctx.now.timestamp_millis(),
        role: None,
        tags: req.tags.clone().unwrap_or_default(),
    };
    let out = iam.store.write(|tx| {
        if get_profile(tx, &ctx.account, &p.name)?.is_some() {
            return Err(already_exists(format!(
                "Instance Profile {} already exists.",
                p.name
            )));
        }
        save(tx, &p)?;
        describe(tx, &p)
    })?;
    Ok(CreateInstanceProfileResponse {
        instance_profile: out,
    })
}

pub fn get(
    iam: &Iam,
    ctx: &Ctx,
    req: GetInstanceProfileRequest,
) -> ApiResult<GetInstanceProfileResponse> {
    let out = iam.store.read(|conn| {
        let p = require_profile(conn, &ctx.account, &req.instance_profile_name)?;
        describe(conn, &p)
    })?;
    Ok(GetInstanceProfileResponse {
        instance_profile: out,
    })
}

pub fn list(
    iam: &Iam,
    ctx: &Ctx,
    req: ListInstanceProfilesRequest,
) -> ApiResult<ListInstanceProfilesResponse> {
    let out = iam.store.read(|conn| {
        all(conn, &ctx.account)?
            .iter()
            .filter(|p| names::under(&p.path, req.path_prefix.as_deref()))
            .map(|p| describe(conn, p))
            .collect::<ApiResult<Vec<_>>>()
    })?;
    let (instance_profiles, marker) = page(out, req.marker.as_deref(), req.max_items)?;
    Ok(ListInstanceProfilesResponse {
        instance_profiles,
        is_truncated: Some(marker.is_some()),
        marker,
    })
}

pub fn delete(iam: &Iam, ctx: &Ctx, req: DeleteInstanceProfileRequest) -> ApiResult<Empty> {
    iam.store.write(|tx| {
        let p = require_profile(tx, &ctx.account, &req.instance_profile_name)?;
        if p.role.is_some() {
            return Err(delete_conflict(
                "Cannot delete entity, must remove roles from instance profile first.",
            ));
        }
        tx.execute(
            "DELETE FROM iam_instance_profiles WHERE account = ?1 AND name = ?2",
            params![ctx.account, p.name],
        )?;
        Ok(())
    })?;
    Ok(Empty {})
}

pub fn add_role(iam: &Iam, ctx: &Ctx, req: AddRoleToInstanceProfileRequest) -> ApiResult<Empty> {
    iam.store.write(|tx| {
        let mut p = require_profile(tx, &ctx.account, &req.instance_profile_name)?;
        let role = require(tx, &ctx.account, Kind::Role, &req.role_name)?;
        if p.role.is_some() {
            return Err(limit_exceeded(
                "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1",
            ));
        }
        p.role = Some(role.name);
        save(tx, &p)
    })?;
    Ok(Empty {})
}

pub fn remove_role(
    iam: &Iam,
    ctx: &Ctx,
    req: RemoveRoleFromInstanceProfileRequest,
) -> ApiResult<Empty> {
    iam.store.write(|tx| {
        let mut p = require_profile(tx, &ctx.account, &req.instance_profile_name)?;
        let role = require(tx, &ctx.account, Kind::Role, &req.role_name)?;
        if !p
            .role
            .as_deref()
            .is_some_and(|r| r.eq_ignore_ascii_case(&role.name))
        {
            return Err(no_such_entity(format!(
                "Role {} in Instance Profile {} cannot be found.",
                role.name, p.name
            )));
        }
        p.role = None;
        save(tx, &p)
    })?;
    Ok(Empty {})
}

pub fn list_for_role(
    iam: &Iam,
    ctx: &Ctx,
    req: ListInstanceProfilesForRoleRequest,
) -> ApiResult<ListInstanceProfilesForRoleResponse> {
    let out = iam.store.read(|conn| {
        let role = require(conn, &ctx.account, Kind::Role, &req.role_name)?;
        all(conn, &ctx.account)?
            .iter()
            .filter(|p| p.role.as_deref() == Some(role.name.as_str()))
            .map(|p| describe(conn, p))
            .collect::<ApiResult<Vec<_>>>()
    })?;
    let (instance_profiles, marker) = page(out, req.marker.as_deref(), req.max_items)?;
    Ok(ListInstanceProfilesForRoleResponse {
        instance_profiles,
        is_truncated: Some(marker.is_some()),
        marker,
    })
}

fn retag(iam: &Iam, ctx: &Ctx, name: &str, f: impl FnOnce(&mut Vec<Tag>)) -> ApiResult<()> {
    iam.store.write(|tx| {
        let mut p = require_profile(tx, &ctx.account, name)?;
        f(&mut p.tags);
        if p.tags.len() > 50 {
            return Err(limit_exceeded(
                "The number of tags has reached the maximum limit.",
            ));
        }
        save(tx, &p)
    })
}

pub fn tag(iam: &Iam, ctx: &Ctx, req: TagInstanceProfileRequest) -> ApiResult<Empty> {
    retag(iam, ctx, &req.instance_profile_name, |tags| {
        entities::with_tags(tags, &req.tags)
    })?;
    Ok(Empty {})
}

pub fn untag(iam: &Iam, ctx: &Ctx, req: UntagInstanceProfileRequest) -> ApiResult<Empty> {
    retag(iam, ctx, &req.instance_profile_name, |tags| {
        entities::without_tags(tags, &req.tag_keys)
    })?;
    Ok(Empty {})
}

pub fn list_tags(
    iam: &Iam,
    ctx: &Ctx,
    req: ListInstanceProfileTagsRequest,
) -> ApiResult<ListInstanceProfileTagsResponse> {
    let tags = iam
        .store
        .read(|conn| require_profile(conn, &ctx.account, &req.instance_profile_name))?
        .tags;
    let (tags, marker) = page(tags, req.marker.as_deref(), req.max_items)?;
    Ok(ListInstanceProfileTagsResponse {
        is_truncated: Some(marker.is_some()),
        marker,
        tags,
    })
}
