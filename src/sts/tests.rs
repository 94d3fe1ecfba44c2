//! IAM and STS through the pipeline, with IAM's authorizer and identities
//! in place: callers are told apart by their access keys.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::config::Credentials;
use crate::context::Ctx;
use crate::error::ApiResult;
use crate::iam::authority::{IamAuthorizer, IamIdentities};
use crate::iam::{names, Iam};
use crate::kms::Kms;
use crate::store::Store;
use crate::wire::identity::token_digest;
use crate::wire::Empty;
use crate::wire::{App, Registry};

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;

struct World {
    _dir: tempfile::TempDir,
    iam: Arc<Iam>,
    app: App,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_in(dir.path()).unwrap());
    let kms = Arc::new(Kms::with_master(store.clone(), [5; 32]));
    let iam = Arc::new(Iam::new(store, kms, Credentials::default()));
    let mut registry = Registry::default();
    registry
        .add(iam.clone().service())
        .add(super::service(Arc::new(super::Sts { iam: iam.clone() })))
        .add(probe_service());
    let mut app = App::in_process(registry);
    app.authorizer = Box::new(IamAuthorizer(iam.clone()));
    app.identities = Arc::new(IamIdentities(iam.clone()));
    World {
        _dir: dir,
        iam,
        app,
    }
}

/// A stand-in for the services IAM guards: STS's `GetCallerIdentity`
/// needs no permission, so ECS's ListClusters is asked through a tiny
/// service with ECS's model and prefix.
fn probe_service() -> crate::wire::Service {
    struct Probe;
    crate::wire::Service::builder("ECS", "ecs", "ecs", crate::model::ecs(), Arc::new(Probe))
        .op("ListClusters", |_: &Probe, _: &Ctx, _: Value| Ok(Empty {}))
        .build()
}

fn root() -> Ctx {
    Ctx::for_tests(chrono::DateTime::from_timestamp_millis(T0).unwrap())
}

/// The context of a request signed with `key`, as the pipeline makes it.
fn as_key(w: &World, key: &str) -> Ctx {
    let caller = w.app.identities.lookup(key).unwrap().expect("a known key");
    Ctx {
        account: caller.account,
        access_key: key.to_string(),
        principal_arn: caller.principal_arn,
        ..root()
    }
}

fn iam(w: &World, ctx: &Ctx, op: &str, input: Value) -> ApiResult<Value> {
    w.app.call_named("IAM", ctx, op, input)
}

fn sts(w: &World, ctx: &Ctx, op: &str, input: Value) -> ApiResult<Value> {
    w.app.call_named("STS", ctx, op, input)
}

fn list_clusters(w: &World, ctx: &Ctx) -> ApiResult<Value> {
    w.app.call_named("ECS", ctx, "ListClusters", json!({}))
}

/// A user with an access key: (user ARN, key id).
fn user_with_key(w: &World, name: &str) -> (String, String) {
    let u = iam(w, &root(), "CreateUser", json!({"UserName": name})).unwrap();
    let k = iam(w, &root(), "CreateAccessKey", json!({"UserName": name})).unwrap();
    (
        u["User"]["Arn"].as_str().unwrap().to_string(),
        k["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string(),
    )
}

const ECS_READ: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:List*", "Resource": "*"}]}"#;

#[test]
fn a_users_key_is_the_user_and_opens_to_its_secret_while_active() {
    let w = world();
    let u = iam(
        &w,
        &root(),
        "CreateUser",
        json!({"UserName": "alice", "Path": "/ops/"}),
    )
    .unwrap();
    assert_eq!(u["User"]["Arn"], "arn:aws:iam::000000000000:user/ops/alice");
    assert!(u["User"]["UserId"].as_str().unwrap().starts_with("AIDA"));
    let k = iam(&w, &root(), "CreateAccessKey", json!({"UserName": "alice"})).unwrap();
    let id = k["AccessKey"]["AccessKeyId"].as_str().unwrap();
    let secret = k["AccessKey"]["SecretAccessKey"].as_str().unwrap();
    assert!(id.starts_with("AKIA") && id.len() == 20, "{id}");
    let caller = w.app.identities.lookup(id).unwrap().unwrap();
    assert_eq!(caller.secret, secret);
    assert_eq!(
        caller.principal_arn,
        "arn:aws:iam::000000000000:user/ops/alice"
    );
    assert_eq!(caller.session, None);
    // Listing shows no secret; a third key is over the quota.
    let listed = iam(&w, &root(), "ListAccessKeys", json!({"UserName": "alice"})).unwrap();
    assert_eq!(listed["AccessKeyMetadata"][0]["Status"], "Active");
    assert!(listed.to_string().find(secret).is_none());
    iam(&w, &root(), "CreateAccessKey", json!({"UserName": "alice"})).unwrap();
    let e = iam(&w, &root(), "CreateAccessKey", json!({"UserName": "alice"})).unwrap_err();
    assert_eq!(e.code, "LimitExceeded");
    // Inactive: the key is no one's.
    iam(
        &w,
        &root(),
        "UpdateAccessKey",
        json!({"UserName": "alice", "AccessKeyId": id, "Status": "Inactive"}),
    )
    .unwrap();
    assert_eq!(w.app.identities.lookup(id).unwrap(), None);
    // A user with keys cannot be deleted.
    let e = iam(&w, &root(), "DeleteUser", json!({"UserName": "alice"})).unwrap_err();
    assert_eq!((e.code.as_str(), e.status), ("DeleteConflict", 409));
    // The secret is not in the database in plain text.
    let path = w.iam.store.path().to_path_buf();
    let bytes = std::fs::read(&path).unwrap();
    assert!(!bytes
        .windows(secret.len())
        .any(|win| win == secret.as_bytes()));
}

#[test]
fn a_user_may_do_only_what_its_policies_allow_and_changes_apply_at_once() {
    let w = world();
    let (arn, key) = user_with_key(&w, "bob");
    let bob = as_key(&w, &key);
    let e = list_clusters(&w, &bob).unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    assert_eq!(
        e.message,
        format!("User: {arn} is not authorized to perform: ecs:ListClusters because no identity-based policy allows the ecs:ListClusters action")
    );
    // An AWS managed policy attached: allowed at once.
    iam(
        &w,
        &root(),
        "AttachUserPolicy",
        json!({"UserName": "bob",
        "PolicyArn": "arn:aws:iam::aws:policy/AmazonECS_FullAccess"}),
    )
    .unwrap();
    list_clusters(&w, &bob).unwrap();
    // IAM itself is not in that policy: IAM answers AccessDenied, 403.
    let e = iam(&w, &bob, "ListUsers", json!({})).unwrap_err();
    assert_eq!((e.code.as_str(), e.status), ("AccessDenied", 403));
    // An explicit deny through a group wins.
    iam(&w, &root(), "CreateGroup", json!({"GroupName": "no-ecs"})).unwrap();
    iam(&w, &root(), "PutGroupPolicy", json!({"GroupName": "no-ecs", "PolicyName": "deny",
        "PolicyDocument": r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ecs:*", "Resource": "*"}]}"#})).unwrap();
    iam(
        &w,
        &root(),
        "AddUserToGroup",
        json!({"GroupName": "no-ecs", "UserName": "bob"}),
    )
    .unwrap();
    let e = list_clusters(&w, &bob).unwrap_err();
    assert!(
        e.message
            .ends_with("with an explicit deny in an identity-based policy"),
        "{}",
        e.message
    );
    iam(
        &w,
        &root(),
        "RemoveUserFromGroup",
        json!({"GroupName": "no-ecs", "UserName": "bob"}),
    )
    .unwrap();
    list_clusters(&w, &bob).unwrap();
    // A permissions boundary that does not allow ECS limits it.
    iam(&w, &root(), "CreatePolicy", json!({"PolicyName": "only-logs",
        "PolicyDocument": r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}"#})).unwrap();
    iam(
        &w,
        &root(),
        "PutUserPermissionsBoundary",
        json!({"UserName": "bob",
        "PermissionsBoundary": "arn:aws:iam::000000000000:policy/only-logs"}),
    )
    .unwrap();
    let e = list_clusters(&w, &bob).unwrap_err();
    assert!(
        e.message
            .ends_with("because no permissions boundary allows the ecs:ListClusters action"),
        "{}",
        e.message
    );
}

#[test]
fn policies_are_checked_versioned_and_returned_url_encoded() {
    let w = world();
    let e = iam(&w, &root(), "CreatePolicy", json!({"PolicyName": "bad",
        "PolicyDocument": r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "ecs:*", "Resource": "*"}]}"#})).unwrap_err();
    assert_eq!(e.code, "MalformedPolicyDocument");
    let p = iam(
        &w,
        &root(),
        "CreatePolicy",
        json!({"PolicyName": "p", "PolicyDocument": ECS_READ}),
    )
    .unwrap();
    let arn = p["Policy"]["Arn"].as_str().unwrap().to_string();
    assert_eq!(arn, "arn:aws:iam::000000000000:policy/p");
    assert_eq!(p["Policy"]["DefaultVersionId"], "v1");
    for _ in 0..4 {
        iam(
            &w,
            &root(),
            "CreatePolicyVersion",
            json!({"PolicyArn": arn, "PolicyDocument": ECS_READ, "SetAsDefault": true}),
        )
        .unwrap();
    }
    let e = iam(
        &w,
        &root(),
        "CreatePolicyVersion",
        json!({"PolicyArn": arn, "PolicyDocument": ECS_READ}),
    )
    .unwrap_err();
    assert_eq!(e.code, "LimitExceeded");
    let e = iam(
        &w,
        &root(),
        "DeletePolicyVersion",
        json!({"PolicyArn": arn, "VersionId": "v5"}),
    )
    .unwrap_err();
    assert_eq!(e.code, "DeleteConflict");
    let v = iam(
        &w,
        &root(),
        "GetPolicyVersion",
        json!({"PolicyArn": arn, "VersionId": "v5"}),
    )
    .unwrap();
    assert_eq!(v["PolicyVersion"]["IsDefaultVersion"], true);
    assert_eq!(
        v["PolicyVersion"]["Document"],
        names::encode_document(ECS_READ)
    );
    // The AWS managed ones are there, and cannot be changed.
    let m = iam(&w, &root(), "GetPolicy", json!({"PolicyArn": "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"})).unwrap();
    assert_eq!(
        m["Policy"]["PolicyName"],
        "AmazonECSTaskExecutionRolePolicy"
    );
    let e = iam(
        &w,
        &root(),
        "DeletePolicy",
        json!({"PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    )
    .unwrap_err();
    assert_eq!(e.code, "AccessDenied");
    // Attached, it cannot be deleted.
    iam(
        &w,
        &root(),
        "CreateRole",
        json!({"RoleName": "r", "AssumeRolePolicyDocument": TRUST_ECS_TASKS}),
    )
    .unwrap();
    iam(
        &w,
        &root(),
        "AttachRolePolicy",
        json!({"RoleName": "r", "PolicyArn": arn}),
    )
    .unwrap();
    let ents = iam(
        &w,
        &root(),
        "ListEntitiesForPolicy",
        json!({"PolicyArn": arn}),
    )
    .unwrap();
    assert_eq!(ents["PolicyRoles"][0]["RoleName"], "r");
    let e = iam(&w, &root(), "DeleteRole", json!({"RoleName": "r"})).unwrap_err();
    assert_eq!(e.code, "DeleteConflict");
    let got = iam(&w, &root(), "GetRole", json!({"RoleName": "R"})).unwrap();
    assert_eq!(got["Role"]["RoleName"], "r", "names are case-insensitive");
    assert_eq!(
        got["Role"]["AssumeRolePolicyDocument"],
        names::encode_document(TRUST_ECS_TASKS)
    );
    assert_eq!(got["Role"]["MaxSessionDuration"], 3600);
}

const TRUST_ECS_TASKS: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;

fn trust(principal: &str, condition: &str) -> String {
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "{principal}"}}, "Action": "sts:AssumeRole"{condition}}}]}}"#
    )
}

#[test]
fn assume_role_follows_the_trust_policy_and_the_session_has_the_roles_permissions() {
    let w = world();
    let (carol_arn, key) = user_with_key(&w, "carol");
    let carol = as_key(&w, &key);
    let cond = r#", "Condition": {"StringEquals": {"sts:ExternalId": "cloudburst-external-id"}}"#;
    iam(&w, &root(), "CreateRole", json!({"RoleName": "CloudBurstFargateRole",
        // Carol, and the role's own sessions (role chaining).
        "AssumeRolePolicyDocument": trust(&format!(r#"{carol_arn}", "arn:aws:iam::000000000000:role/CloudBurstFargateRole"#), cond)
            .replace(r#""AWS": ""#, r#""AWS": [""#).replace(r#"role/CloudBurstFargateRole"}"#, r#"role/CloudBurstFargateRole"]}"#),
        "MaxSessionDuration": 7200})).unwrap();
    iam(&w, &root(), "PutRolePolicy", json!({"RoleName": "CloudBurstFargateRole", "PolicyName": "ecs", "PolicyDocument": ECS_READ})).unwrap();
    let role_arn = "arn:aws:iam::000000000000:role/CloudBurstFargateRole";
    // The root may not assume roles; a wrong ExternalId is denied.
    let e = sts(
        &w,
        &root(),
        "AssumeRole",
        json!({"RoleArn": role_arn, "RoleSessionName": "sess"}),
    )
    .unwrap_err();
    assert_eq!((e.code.as_str(), e.status), ("AccessDenied", 403));
    let e = sts(
        &w,
        &carol,
        "AssumeRole",
        json!({"RoleArn": role_arn, "RoleSessionName": "sess", "ExternalId": "wrong"}),
    )
    .unwrap_err();
    assert_eq!(e.code, "AccessDenied");
    assert!(
        e.message.contains(
            "sts:AssumeRole on resource: arn:aws:iam::000000000000:role/CloudBurstFargateRole"
        ),
        "{}",
        e.message
    );
    // Longer than the role allows.
    let e = sts(
        &w,
        &carol,
        "AssumeRole",
        json!({"RoleArn": role_arn, "RoleSessionName": "sess",
        "ExternalId": "cloudburst-external-id", "DurationSeconds": 7201}),
    )
    .unwrap_err();
    assert_eq!(e.code, "ValidationError");
    // The trust policy names carol directly: she needs no permission of her own.
    let out = sts(
        &w,
        &carol,
        "AssumeRole",
        json!({"RoleArn": role_arn, "RoleSessionName": "cloudburst-session",
        "ExternalId": "cloudburst-external-id", "DurationSeconds": 7200}),
    )
    .unwrap();
    let c = &out["Credentials"];
    let id = c["AccessKeyId"].as_str().unwrap();
    assert!(id.starts_with("ASIA"));
    assert_eq!(
        out["AssumedRoleUser"]["Arn"],
        "arn:aws:sts::000000000000:assumed-role/CloudBurstFargateRole/cloudburst-session"
    );
    let caller = w.app.identities.lookup(id).unwrap().unwrap();
    let session = caller.session.clone().unwrap();
    assert_eq!(
        session.token_sha256,
        token_digest(c["SessionToken"].as_str().unwrap())
    );
    assert_eq!(session.expires_ms, T0 + 7200 * 1000);
    assert_eq!(caller.secret, c["SecretAccessKey"].as_str().unwrap());
    // The session may do what the role may, and is who it says.
    let s = as_key(&w, id);
    list_clusters(&w, &s).unwrap();
    let me = sts(&w, &s, "GetCallerIdentity", json!({})).unwrap();
    assert_eq!(
        me["Arn"],
        "arn:aws:sts::000000000000:assumed-role/CloudBurstFargateRole/cloudburst-session"
    );
    assert!(me["UserId"]
        .as_str()
        .unwrap()
        .ends_with(":cloudburst-session"));
    assert!(me["UserId"].as_str().unwrap().starts_with("AROA"));
    let e = iam(&w, &s, "ListRoles", json!({})).unwrap_err();
    assert_eq!(e.code, "AccessDenied");
    // Role chaining is limited to an hour.
    let chained = json!({"RoleArn": role_arn, "RoleSessionName": "again",
        "ExternalId": "cloudburst-external-id", "DurationSeconds": 3601});
    let e = sts(&w, &s, "AssumeRole", chained.clone()).unwrap_err();
    assert_eq!(e.code, "ValidationError");
    let mut chained = chained;
    chained["DurationSeconds"] = json!(3600);
    let again = sts(&w, &s, "AssumeRole", chained).unwrap();
    assert_eq!(
        again["AssumedRoleUser"]["Arn"],
        "arn:aws:sts::000000000000:assumed-role/CloudBurstFargateRole/again"
    );
}

#[test]
fn a_trust_policy_naming_the_account_needs_the_callers_own_permission() {
    let w = world();
    let (_, key) = user_with_key(&w, "dave");
    let dave = as_key(&w, &key);
    iam(
        &w,
        &root(),
        "CreateRole",
        json!({"RoleName": "ops",
        "AssumeRolePolicyDocument": trust("arn:aws:iam::000000000000:root", "")}),
    )
    .unwrap();
    let role_arn = "arn:aws:iam::000000000000:role/ops";
    let e = sts(
        &w,
        &dave,
        "AssumeRole",
        json!({"RoleArn": role_arn, "RoleSessionName": "sess"}),
    )
    .unwrap_err();
    assert_eq!(e.code, "AccessDenied");
    iam(&w, &root(), "PutUserPolicy", json!({"UserName": "dave", "PolicyName": "assume",
        "PolicyDocument": format!(r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "{role_arn}"}}]}}"#)})).unwrap();
    let out = sts(&w, &dave, "AssumeRole", json!({"RoleArn": role_arn, "RoleSessionName": "sess",
        "Policy": r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}"#})).unwrap();
    // The role has no permission, and the session policy only narrows.
    let s = as_key(&w, out["Credentials"]["AccessKeyId"].as_str().unwrap());
    assert!(list_clusters(&w, &s).is_err());
    assert!(out["PackedPolicySize"].as_i64().unwrap() > 0);
    // A role that does not exist reads as a denial, as in AWS.
    let e = sts(
        &w,
        &dave,
        "AssumeRole",
        json!({"RoleArn": "arn:aws:iam::000000000000:role/nope", "RoleSessionName": "sess"}),
    )
    .unwrap_err();
    assert_eq!(e.code, "AccessDenied");
}

#[test]
fn session_tokens_of_users_carry_the_users_permissions_but_not_iam() {
    let w = world();
    let (arn, key) = user_with_key(&w, "erin");
    iam(
        &w,
        &root(),
        "AttachUserPolicy",
        json!({"UserName": "erin", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    )
    .unwrap();
    let erin = as_key(&w, &key);
    iam(&w, &erin, "ListUsers", json!({})).unwrap();
    let out = sts(
        &w,
        &erin,
        "GetSessionToken",
        json!({"DurationSeconds": 900}),
    )
    .unwrap();
    let s = as_key(&w, out["Credentials"]["AccessKeyId"].as_str().unwrap());
    assert_eq!(s.principal_arn, arn);
    list_clusters(&w, &s).unwrap();
    assert_eq!(
        iam(&w, &s, "ListUsers", json!({})).unwrap_err().code,
        "AccessDenied"
    );
    let e = sts(&w, &s, "GetSessionToken", json!({})).unwrap_err();
    assert_eq!(e.code, "AccessDenied");
}

#[test]
fn instance_profiles_hold_one_role_and_service_linked_roles_are_protected() {
    let w = world();
    iam(
        &w,
        &root(),
        "CreateRole",
        json!({"RoleName": "ecsInstanceRole", "AssumeRolePolicyDocument": TRUST_ECS_TASKS}),
    )
    .unwrap();
    iam(
        &w,
        &root(),
        "CreateRole",
        json!({"RoleName": "other", "AssumeRolePolicyDocument": TRUST_ECS_TASKS}),
    )
    .unwrap();
    let p = iam(
        &w,
        &root(),
        "CreateInstanceProfile",
        json!({"InstanceProfileName": "ecsInstanceRole"}),
    )
    .unwrap();
    assert_eq!(
        p["InstanceProfile"]["Arn"],
        "arn:aws:iam::000000000000:instance-profile/ecsInstanceRole"
    );
    iam(
        &w,
        &root(),
        "AddRoleToInstanceProfile",
        json!({"InstanceProfileName": "ecsInstanceRole", "RoleName": "ecsInstanceRole"}),
    )
    .unwrap();
    let e = iam(
        &w,
        &root(),
        "AddRoleToInstanceProfile",
        json!({"InstanceProfileName": "ecsInstanceRole", "RoleName": "other"}),
    )
    .unwrap_err();
    assert_eq!(e.code, "LimitExceeded");
    let got = iam(
        &w,
        &root(),
        "GetInstanceProfile",
        json!({"InstanceProfileName": "ecsInstanceRole"}),
    )
    .unwrap();
    assert_eq!(
        got["InstanceProfile"]["Roles"][0]["RoleName"],
        "ecsInstanceRole"
    );
    let e = iam(
        &w,
        &root(),
        "DeleteInstanceProfile",
        json!({"InstanceProfileName": "ecsInstanceRole"}),
    )
    .unwrap_err();
    assert_eq!(e.code, "DeleteConflict");
    let slr = iam(
        &w,
        &root(),
        "CreateServiceLinkedRole",
        json!({"AWSServiceName": "ecs.amazonaws.com"}),
    )
    .unwrap();
    assert_eq!(
        slr["Role"]["Arn"],
        "arn:aws:iam::000000000000:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"
    );
    let e = iam(
        &w,
        &root(),
        "DeleteRole",
        json!({"RoleName": "AWSServiceRoleForECS"}),
    )
    .unwrap_err();
    assert_eq!(e.code, "UnmodifiableEntity");
    let e = iam(&w, &root(), "GetUser", json!({"UserName": "ghost"})).unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.status, e.message.as_str()),
        (
            "NoSuchEntity",
            404,
            "The user with name ghost cannot be found."
        )
    );
}
