//! AWS Identity and Access Management (Query protocol,
//! `Version=2010-05-08`): who may call Berth and what they may do.
//!
//! * `entities.rs`: users, roles and groups (`Create/Get/List/Delete/
//!   Update{User,Role,Group}`, `UpdateAssumeRolePolicy`, group
//!   membership, tags, permissions boundaries, `CreateServiceLinkedRole`);
//! * `keys.rs`: users' access keys (`Create/List/Update/DeleteAccessKey`,
//!   `GetAccessKeyLastUsed`);
//! * `inline.rs`: inline policies of users, roles and groups;
//! * `policies.rs`: managed policies, their versions and attachments,
//!   with the AWS managed policies of [`managed`];
//! * `profiles.rs`: instance profiles;
//! * `sessions.rs`: temporary credentials, which STS issues;
//! * `authority.rs`: the pipeline's [`Identities`](crate::wire::identity::Identities)
//!   (which key is whose) and [`Authorizer`](crate::wire::authorize::Authorizer)
//!   (what its policies allow, by [`policy`]);
//! * `names.rs` (pure): ids, secrets, ARNs, paths;
//! * [`policy`] (pure): policy documents parsed and evaluated.
//!
//! IAM and STS are tested together through the pipeline in
//! `src/sts/tests.rs`.
//!
//! IAM is global: its resources belong to an account, in every region.
//! The keys configured at start stay their accounts' roots. Secrets of
//! access keys and sessions are sealed under the master key.

pub mod authority;
pub mod entities;
pub mod inline;
pub mod keys;
pub mod managed;
pub mod names;
pub mod policies;
pub mod policy;
pub mod profiles;
pub mod sessions;
#[rustfmt::skip]
pub mod shapes;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::config::Credentials;
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::kms::Kms;
use crate::model;
use crate::store::Store;
use crate::wire::Service;

/// What kind of identity an entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    User,
    Role,
    Group,
}

impl Kind {
    /// As stored, and as ARNs name it (`user/…`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Role => "role",
            Kind::Group => "group",
        }
    }

    /// As IAM's messages name it.
    fn noun(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Role => "role",
            Kind::Group => "group",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Role => "Role",
            Kind::Group => "Group",
        }
    }
}

/// IAM's state: the store, KMS (whose master key seals key secrets), the
/// configured root keys, and the compiled policies of recent callers.
pub struct Iam {
    pub store: Arc<Store>,
    pub kms: Arc<Kms>,
    pub roots: Credentials,
    /// Bumped by every change to who holds which policy; compiled grants
    /// older than it are rebuilt.
    generation: AtomicU64,
    grants: Mutex<HashMap<String, (u64, Arc<authority::Grants>)>>,
    /// Who each recently seen key is, kept as the grants are.
    callers: Mutex<HashMap<String, (u64, Option<crate::wire::identity::Caller>)>>,
    /// When each key's last use was last written (written at most once a
    /// minute per key).
    used: Mutex<HashMap<String, i64>>,
}

impl Iam {
    pub fn new(store: Arc<Store>, kms: Arc<Kms>, roots: Credentials) -> Iam {
        Iam {
            store,
            kms,
            roots,
            generation: AtomicU64::new(0),
            grants: Mutex::default(),
            callers: Mutex::default(),
            used: Mutex::default(),
        }
    }

    /// Forget compiled grants and known callers: something they were made
    /// from changed.
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// IAM, registered once in the request pipeline.
    pub fn service(self: Arc<Self>) -> Service {
        /// Wrap a handler that changes grants: on success, compiled ones
        /// are forgotten.
        fn changing<Req, Resp>(
            f: impl Fn(&Iam, &Ctx, Req) -> ApiResult<Resp> + Send + Sync,
        ) -> impl Fn(&Iam, &Ctx, Req) -> ApiResult<Resp> + Send + Sync {
            move |iam, ctx, req| {
                let out = f(iam, ctx, req);
                if out.is_ok() {
                    iam.changed();
                }
                out
            }
        }
        use entities as e;
        use inline as i;
        use policies as p;
        use profiles as pr;
        Service::builder("IAM", "iam", "iam", model::iam(), self)
            .validation_errors(validation_error)
            .resources(resources)
            .op("CreateUser", changing(e::create_user))
            .op("GetUser", e::get_user)
            .op("ListUsers", e::list_users)
            .op("UpdateUser", changing(e::update_user))
            .op("DeleteUser", changing(e::delete_user))
            .op("TagUser", e::tag_user)
            .op("UntagUser", e::untag_user)
            .op("ListUserTags", e::list_user_tags)
            .op("CreateRole", changing(e::create_role))
            .op("GetRole", e::get_role)
            .op("ListRoles", e::list_roles)
            .op("UpdateRole", e::update_role)
            .op("UpdateRoleDescription", e::update_role_description)
            .op(
                "UpdateAssumeRolePolicy",
                changing(e::update_assume_role_policy),
            )
            .op("DeleteRole", changing(e::delete_role))
            .op("TagRole", e::tag_role)
            .op("UntagRole", e::untag_role)
            .op("ListRoleTags", e::list_role_tags)
            .op(
                "CreateServiceLinkedRole",
                changing(e::create_service_linked_role),
            )
            .op("CreateGroup", e::create_group)
            .op("GetGroup", e::get_group)
            .op("ListGroups", e::list_groups)
            .op("DeleteGroup", changing(e::delete_group))
            .op("AddUserToGroup", changing(e::add_user_to_group))
            .op("RemoveUserFromGroup", changing(e::remove_user_from_group))
            .op("ListGroupsForUser", e::list_groups_for_user)
            .op("PutUserPermissionsBoundary", changing(e::put_user_boundary))
            .op(
                "DeleteUserPermissionsBoundary",
                changing(e::delete_user_boundary),
            )
            .op("PutRolePermissionsBoundary", changing(e::put_role_boundary))
            .op(
                "DeleteRolePermissionsBoundary",
                changing(e::delete_role_boundary),
            )
            .op("CreateAccessKey", changing(keys::create))
            .op("ListAccessKeys", keys::list)
            .op("UpdateAccessKey", changing(keys::update))
            .op("DeleteAccessKey", changing(keys::delete))
            .op("GetAccessKeyLastUsed", keys::last_used)
            .op("PutUserPolicy", changing(i::put_user_policy))
            .op("GetUserPolicy", i::get_user_policy)
            .op("ListUserPolicies", i::list_user_policies)
            .op("DeleteUserPolicy", changing(i::delete_user_policy))
            .op("PutRolePolicy", changing(i::put_role_policy))
            .op("GetRolePolicy", i::get_role_policy)
            .op("ListRolePolicies", i::list_role_policies)
            .op("DeleteRolePolicy", changing(i::delete_role_policy))
            .op("PutGroupPolicy", changing(i::put_group_policy))
            .op("GetGroupPolicy", i::get_group_policy)
            .op("ListGroupPolicies", i::list_group_policies)
            .op("DeleteGroupPolicy", changing(i::delete_group_policy))
            .op("CreatePolicy", p::create_policy)
            .op("GetPolicy", p::get_policy)
            .op("ListPolicies", p::list_policies)
            .op("DeletePolicy", changing(p::delete_policy))
            .op("CreatePolicyVersion", changing(p::create_policy_version))
            .op("GetPolicyVersion", p::get_policy_version)
            .op("ListPolicyVersions", p::list_policy_versions)
            .op("DeletePolicyVersion", changing(p::delete_policy_version))
            .op(
                "SetDefaultPolicyVersion",
                changing(p::set_default_policy_version),
            )
            .op("TagPolicy", p::tag_policy)
            .op("UntagPolicy", p::untag_policy)
            .op("ListPolicyTags", p::list_policy_tags)
            .op("AttachUserPolicy", changing(p::attach_user_policy))
            .op("DetachUserPolicy", changing(p::detach_user_policy))
            .op("ListAttachedUserPolicies", p::list_attached_user_policies)
            .op("AttachRolePolicy", changing(p::attach_role_policy))
            .op("DetachRolePolicy", changing(p::detach_role_policy))
            .op("ListAttachedRolePolicies", p::list_attached_role_policies)
            .op("AttachGroupPolicy", changing(p::attach_group_policy))
            .op("DetachGroupPolicy", changing(p::detach_group_policy))
            .op("ListAttachedGroupPolicies", p::list_attached_group_policies)
            .op("ListEntitiesForPolicy", p::list_entities_for_policy)
            .op(
                "SimulatePrincipalPolicy",
                authority::simulate_principal_policy,
            )
            .op("CreateInstanceProfile", pr::create)
            .op("GetInstanceProfile", pr::get)
            .op("ListInstanceProfiles", pr::list)
            .op("DeleteInstanceProfile", pr::delete)
            .op("AddRoleToInstanceProfile", pr::add_role)
            .op("RemoveRoleFromInstanceProfile", pr::remove_role)
            .op("ListInstanceProfilesForRole", pr::list_for_role)
            .op("TagInstanceProfile", pr::tag)
            .op("UntagInstanceProfile", pr::untag)
            .op("ListInstanceProfileTags", pr::list_tags)
            .op("ListAccountAliases", list_account_aliases)
            .build()
    }
}

/// `ListAccountAliases`: Berth's accounts have none.
fn list_account_aliases(
    _iam: &Iam,
    _ctx: &Ctx,
    _req: shapes::ListAccountAliasesRequest,
) -> ApiResult<shapes::ListAccountAliasesResponse> {
    Ok(shapes::ListAccountAliasesResponse {
        account_aliases: Vec::new(),
        is_truncated: Some(false),
        marker: None,
    })
}

/// The ARNs an IAM call acts on: the user, role, group, policy or
/// instance profile it names (`*` for listings and creations of
/// nothing named).
fn resources(ctx: &Ctx, operation: &str, input: &Value) -> Vec<String> {
    let text = |k: &str| input.get(k).and_then(Value::as_str);
    let path = text("Path").unwrap_or("/");
    let named = |resource: &str, key: &str| {
        text(key).map(|name| names::arn(&ctx.account, resource, path, name))
    };
    let found = if let Some(arn) = text("PolicyArn") {
        Some(arn.to_string())
    } else if operation.contains("InstanceProfile") && !operation.ends_with("ForRole") {
        named("instance-profile", "InstanceProfileName")
    } else if operation.contains("Group") && operation != "ListGroupsForUser" {
        named("group", "GroupName")
    } else if operation.contains("Role") {
        named("role", "RoleName")
    } else if operation == "CreatePolicy" {
        named("policy", "PolicyName")
    } else {
        named("user", "UserName")
    };
    vec![found.unwrap_or_else(|| "*".to_string())]
}

/// A model validation failure, in IAM's words.
fn validation_error(e: ApiError) -> ApiError {
    if e.status >= 500 {
        e
    } else {
        validation(e.message)
    }
}

/// IAM's `ValidationError`.
pub fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new("ValidationError", message)
}

/// `NoSuchEntity` (404).
pub fn no_such_entity(message: impl Into<String>) -> ApiError {
    ApiError::new("NoSuchEntity", message).with_status(404)
}

/// `EntityAlreadyExists` (409).
pub fn already_exists(message: impl Into<String>) -> ApiError {
    ApiError::new("EntityAlreadyExists", message).with_status(409)
}

/// `DeleteConflict` (409).
pub fn delete_conflict(message: impl Into<String>) -> ApiError {
    ApiError::new("DeleteConflict", message).with_status(409)
}

/// `LimitExceeded` (409).
pub fn limit_exceeded(message: impl Into<String>) -> ApiError {
    ApiError::new("LimitExceeded", message).with_status(409)
}

/// `InvalidInput`.
pub fn invalid_input(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidInput", message)
}

/// `MalformedPolicyDocument`.
pub fn malformed_policy(message: impl Into<String>) -> ApiError {
    ApiError::new("MalformedPolicyDocument", message)
}

/// `UnmodifiableEntity`.
pub fn unmodifiable(message: impl Into<String>) -> ApiError {
    ApiError::new("UnmodifiableEntity", message)
}

/// A time as IAM writes it (ISO 8601, seconds, `Z`).
pub fn iam_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// One page of `items` after `marker` (Berth's opaque offset), at most
/// `max_items` (IAM's default 100, at most 1000), and the marker of the
/// next page.
pub fn page<T>(
    items: Vec<T>,
    marker: Option<&str>,
    max_items: Option<i64>,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let size = max_items.unwrap_or(100).clamp(1, 1000) as usize;
    let start = match marker {
        None => 0,
        Some(m) => {
            crate::paging::offset(m, "iam").ok_or_else(|| invalid_input("Invalid Marker."))?
        }
    };
    Ok(crate::paging::offset_page(items, start, size, "iam"))
}

/// The policy document of a request, checked as IAM checks it.
pub fn parse_document(text: &str, kind: policy::PolicyKind) -> ApiResult<policy::PolicyDocument> {
    policy::PolicyDocument::parse(text, kind).map_err(|e| malformed_policy(e.message()))
}
