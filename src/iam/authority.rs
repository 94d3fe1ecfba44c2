//! IAM's part in the request pipeline: which access key is whose
//! ([`Identities`]) and what its policies allow ([`Authorizer`]).
//!
//! The keys configured at start are their accounts' roots and may do
//! everything. A user's key carries the user's inline and attached
//! policies and those of its groups, bounded by its permissions boundary;
//! a role session's, the role's, bounded by the role's boundary and the
//! session policy. Policies are compiled once per key and kept until
//! anything that grants changes (IAM bumps a generation).
//!
//! `sts:AssumeRole` is decided by STS, which knows the request's
//! `ExternalId` and session name: [`may_assume`] evaluates the role's
//! trust policy as the role's resource policy, so a trust policy naming
//! the caller directly is enough, and one naming the account needs the
//! caller's own `sts:AssumeRole` permission too.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::entities::{self, Entity};
use super::policy::{
    denial_message, evaluate, ContextKeys, Decision, Policies, PolicyDocument, PolicyKind,
    RequestContext,
};
use super::sessions::{self, Holder};
use super::shapes::*;
use super::{inline, keys, names, policies, Iam, Kind};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::wire::authorize::{self, Authorizer, Request};
use crate::wire::identity::{root_arn, Caller, Identities, SessionToken};

/// The compiled policies of one access key.
#[derive(Debug, Default)]
pub struct Grants {
    /// The caller is its account's root.
    root: bool,
    identity: Vec<PolicyDocument>,
    boundary: Option<PolicyDocument>,
    session: Option<Vec<PolicyDocument>>,
    /// A user's `GetSessionToken` session: no IAM, and of STS only
    /// `AssumeRole` and `GetCallerIdentity` (IAM's rule without MFA).
    user_session: bool,
    /// Context keys that hold for every request of the key
    /// (`aws:username`, `aws:userid`, `aws:PrincipalTag/…`).
    keys: Vec<(String, String)>,
}

fn compile(text: &str, kind: PolicyKind) -> Option<PolicyDocument> {
    match PolicyDocument::parse(text, kind) {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::error!(error = e.message(), "a stored policy does not parse");
            None
        }
    }
}

/// The identity policies and boundary of an entity (and of a user's
/// groups).
fn entity_grants(conn: &rusqlite::Connection, e: &Entity, grants: &mut Grants) -> ApiResult<()> {
    let mut holders = vec![e.clone()];
    if e.kind == Kind::User {
        holders.extend(entities::groups_of(conn, &e.account, &e.name)?);
    }
    for h in &holders {
        for (_, doc) in inline::of(conn, &e.account, h.kind, &h.name)? {
            grants.identity.extend(compile(&doc, PolicyKind::Identity));
        }
        for arn in policies::attached(conn, &e.account, h.kind, &h.name)? {
            if let Some(doc) = policies::document_of(conn, &e.account, &arn)? {
                grants.identity.extend(compile(&doc, PolicyKind::Identity));
            }
        }
    }
    if let Some(b) = &e.boundary {
        if let Some(doc) = policies::document_of(conn, &e.account, b)? {
            grants.boundary = compile(&doc, PolicyKind::Identity);
        }
    }
    for t in &e.tags {
        grants
            .keys
            .push((format!("aws:PrincipalTag/{}", t.key), t.value.clone()));
    }
    Ok(())
}

impl Iam {
    /// The grants of access key `key` (compiled now, or kept from before
    /// when nothing changed since).
    pub fn grants(&self, key: &str) -> ApiResult<Arc<Grants>> {
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some((g, grants)) = self.grants.lock().expect("lock").get(key) {
            if *g == generation {
                return Ok(grants.clone());
            }
        }
        let grants = Arc::new(self.store.read(|conn| self.build(conn, key))?);
        let mut cache = self.grants.lock().expect("lock");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(key.to_string(), (generation, grants.clone()));
        Ok(grants)
    }

    fn build(&self, conn: &rusqlite::Connection, key: &str) -> ApiResult<Grants> {
        let mut g = Grants::default();
        if self.roots.get(key).is_some() {
            g.root = true;
            return Ok(g);
        }
        if let Some(k) = keys::get(conn, key)? {
            if let Some(u) = entities::get(conn, &k.account, Kind::User, &k.user_name)? {
                g.keys.push(("aws:username".into(), u.name.clone()));
                g.keys.push(("aws:userid".into(), u.id.clone()));
                g.keys.push(("aws:PrincipalType".into(), "User".into()));
                entity_grants(conn, &u, &mut g)?;
            }
            return Ok(g);
        }
        if let Some(s) = sessions::get(conn, key)? {
            g.keys.push(("aws:userid".into(), s.user_id.clone()));
            for (k, v) in &s.tags {
                g.keys.push((format!("aws:PrincipalTag/{k}"), v.clone()));
            }
            match &s.holder {
                Holder::Root => g.root = true,
                Holder::User(u) => {
                    g.user_session = true;
                    g.keys.push(("aws:username".into(), u.clone()));
                    g.keys.push(("aws:PrincipalType".into(), "User".into()));
                    if let Some(u) = entities::get(conn, &s.account, Kind::User, u)? {
                        entity_grants(conn, &u, &mut g)?;
                    }
                }
                Holder::Role(r) => {
                    g.keys
                        .push(("aws:PrincipalType".into(), "AssumedRole".into()));
                    if let Some(role) = entities::get(conn, &s.account, Kind::Role, r)? {
                        g.keys.push(("aws:PrincipalArn".into(), role.arn()));
                        entity_grants(conn, &role, &mut g)?;
                    }
                    if let Some(p) = &s.policy {
                        let texts: Vec<String> = serde_json::from_str(p).unwrap_or_default();
                        g.session = Some(
                            texts
                                .iter()
                                .filter_map(|t| compile(t, PolicyKind::Identity))
                                .collect(),
                        );
                    }
                }
            }
        }
        Ok(g)
    }

    /// The caller's user id (`GetCallerIdentity`'s `UserId`): the
    /// account for its root, the user's id, or `AROA…:session`.
    pub fn user_id_of(&self, access_key: &str, account: &str) -> ApiResult<String> {
        if self.roots.get(access_key).is_some() {
            return Ok(account.to_string());
        }
        self.store.read(|conn| {
            if let Some(k) = keys::get(conn, access_key)? {
                if let Some(u) = entities::get(conn, &k.account, Kind::User, &k.user_name)? {
                    return Ok(u.id);
                }
            }
            if let Some(s) = sessions::get(conn, access_key)? {
                return Ok(s.user_id);
            }
            Ok(account.to_string())
        })
    }
}

/// The request's context keys: the key's own and the request's.
fn context(grants: &Grants, request: &Request<'_>, resource: &str) -> RequestContext {
    let mut ctx = RequestContext::new(request.principal, &request.action, resource);
    for (k, v) in &grants.keys {
        ctx.keys.insert(k, v.clone());
    }
    ctx.keys.insert("aws:RequestedRegion", request.region);
    let now = chrono::DateTime::from_timestamp_millis(request.now_ms).unwrap_or_default();
    ctx.keys.insert(
        "aws:CurrentTime",
        now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    ctx.keys
        .insert("aws:EpochTime", (request.now_ms / 1000).to_string());
    ctx.keys.insert("aws:SecureTransport", "false");
    ctx
}

fn policies_of(grants: &Grants) -> Policies<'_> {
    Policies {
        identity: grants.identity.iter().collect(),
        resource: Vec::new(),
        boundary: grants.boundary.as_ref().map(|b| vec![b]),
        session: grants.session.as_ref().map(|s| s.iter().collect()),
    }
}

/// The decision for one action on one resource.
fn decide(grants: &Grants, request: &Request<'_>, resource: &str) -> Decision {
    if grants.root {
        return Decision::Allow;
    }
    if grants.user_session {
        let a = request.action.to_ascii_lowercase();
        let sts_ok = a == "sts:assumerole" || a == "sts:getcalleridentity";
        if a.starts_with("iam:") || (a.starts_with("sts:") && !sts_ok) {
            return Decision::ImplicitDeny(super::policy::PolicyType::Identity);
        }
    }
    evaluate(&policies_of(grants), &context(grants, request, resource))
}

/// The pipeline's authorizer: the configured roots may do everything,
/// every other caller what its policies allow on every resource the call
/// names.
pub struct IamAuthorizer(pub Arc<Iam>);

impl Authorizer for IamAuthorizer {
    fn authorize(&self, request: &Request<'_>) -> Result<(), ApiError> {
        let iam = &self.0;
        if iam.roots.get(request.access_key).is_some() {
            return Ok(());
        }
        if request.access_key.starts_with("AKIA") {
            let service = request.action.split(':').next().unwrap_or_default();
            keys::record_use(
                iam,
                request.access_key,
                service,
                request.region,
                request.now_ms,
            );
        }
        // Decided by STS with the trust policy (see the module's doc);
        // asking who one is needs no permission, as in AWS.
        if request.action == "sts:AssumeRole" || request.action == "sts:GetCallerIdentity" {
            return Ok(());
        }
        let grants = iam.grants(request.access_key)?;
        for resource in &request.resources {
            let decision = decide(&grants, request, resource);
            if let Some(message) =
                denial_message(request.principal, &request.action, resource, decision)
            {
                return Err(authorize::access_denied(message));
            }
        }
        Ok(())
    }
}

/// Whether the caller of `ctx` may assume `role` with the context keys
/// `keys` (`sts:ExternalId`, `sts:RoleSessionName`, …): the role's trust
/// policy, as the role's resource policy, with the caller's identity
/// policies.
pub fn may_assume(iam: &Iam, ctx: &Ctx, role: &Entity, keys: &ContextKeys) -> ApiResult<()> {
    let role_arn = role.arn();
    let denied = |why: Option<String>| {
        authorize::access_denied(why.unwrap_or_else(|| {
            format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                ctx.principal_arn
            )
        }))
    };
    if ctx.principal_arn == root_arn(&ctx.account) {
        return Err(denied(Some(
            "Roles may not be assumed by root accounts.".into(),
        )));
    }
    let trust = role
        .trust
        .as_deref()
        .and_then(|t| compile(t, PolicyKind::Trust))
        .ok_or_else(|| denied(None))?;
    let grants = iam.grants(&ctx.access_key)?;
    let request = Request {
        principal: &ctx.principal_arn,
        account: &ctx.account,
        access_key: &ctx.access_key,
        region: &ctx.region,
        now_ms: ctx.now.timestamp_millis(),
        action: "sts:AssumeRole".into(),
        resources: vec![role_arn.clone()],
    };
    let mut rc = context(&grants, &request, &role_arn);
    for (k, v) in keys.iter() {
        rc.keys.insert_all(k, v.iter().cloned());
    }
    let mut policies = policies_of(&grants);
    policies.resource = vec![&trust];
    let decision = evaluate(&policies, &rc);
    if decision.is_allowed() {
        Ok(())
    } else {
        Err(denied(None))
    }
}

/// The identity behind each access key the pipeline sees: the roots
/// configured at start, users' active keys, and unexpired sessions.
pub struct IamIdentities(pub Arc<Iam>);

impl Identities for IamIdentities {
    fn lookup(&self, access_key: &str) -> Result<Option<Caller>, ApiError> {
        let iam = &self.0;
        if let Some(c) = iam.roots.lookup(access_key)? {
            return Ok(Some(c));
        }
        let generation = iam.generation.load(Ordering::SeqCst);
        if let Some((g, caller)) = iam.callers.lock().expect("lock").get(access_key) {
            if *g == generation {
                return Ok(caller.clone());
            }
        }
        let caller = self.find(access_key)?;
        let mut cache = iam.callers.lock().expect("lock");
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(access_key.to_string(), (generation, caller.clone()));
        Ok(caller)
    }
}

impl IamIdentities {
    /// The caller of `access_key`, from the store.
    fn find(&self, access_key: &str) -> Result<Option<Caller>, ApiError> {
        let iam = &self.0;
        let open = |id: &str, sealed: &[u8]| {
            iam.kms
                .open_under_master(id, sealed)
                .and_then(|s| String::from_utf8(s).ok())
        };
        iam.store.read(|conn| {
            if let Some(k) = keys::get(conn, access_key)? {
                if !k.active {
                    return Ok(None);
                }
                let Some(u) = entities::get(conn, &k.account, Kind::User, &k.user_name)? else {
                    return Ok(None);
                };
                return Ok(open(&k.access_key_id, &k.sealed).map(|secret| Caller {
                    account: k.account.clone(),
                    principal_arn: u.arn(),
                    secret,
                    session: None,
                }));
            }
            if let Some(s) = sessions::get(conn, access_key)? {
                return Ok(open(&s.access_key_id, &s.sealed).map(|secret| Caller {
                    account: s.account.clone(),
                    principal_arn: s.principal_arn.clone(),
                    secret,
                    session: Some(SessionToken {
                        token_sha256: s.token_sha256.clone(),
                        expires_ms: s.expires_ms,
                    }),
                }));
            }
            Ok(None)
        })
    }
}

/// `SimulatePrincipalPolicy`: each action on each resource, decided for
/// the user or role named with its policies (plus those given).
pub fn simulate_principal_policy(
    iam: &Iam,
    ctx: &Ctx,
    req: SimulatePrincipalPolicyRequest,
) -> ApiResult<SimulatePolicyResponse> {
    let (_, resource) = names::split_arn(&req.policy_source_arn)
        .ok_or_else(|| super::invalid_input(format!("Invalid ARN: {}", req.policy_source_arn)))?;
    let kind = if resource.starts_with("user/") {
        Kind::User
    } else if resource.starts_with("role/") {
        Kind::Role
    } else if resource.starts_with("group/") {
        Kind::Group
    } else {
        return Err(super::invalid_input(format!(
            "Invalid ARN: {}",
            req.policy_source_arn
        )));
    };
    let mut grants = Grants::default();
    iam.store.read(|conn| {
        let e = entities::require(conn, &ctx.account, kind, names::name_of(resource))?;
        entity_grants(conn, &e, &mut grants)
    })?;
    for text in req.policy_input_list.iter().flatten() {
        grants
            .identity
            .push(super::parse_document(text, PolicyKind::Identity)?);
    }
    let resources = req
        .resource_arns
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| vec!["*".into()]);
    let mut results = Vec::new();
    for action in &req.action_names {
        for resource in &resources {
            let request = Request {
                principal: &req.policy_source_arn,
                account: &ctx.account,
                access_key: "",
                region: &ctx.region,
                now_ms: ctx.now.timestamp_millis(),
                action: action.clone(),
                resources: vec![resource.clone()],
            };
            let decision = decide(&grants, &request, resource);
            results.push(EvaluationResult {
                eval_action_name: action.clone(),
                eval_decision: match decision {
                    Decision::Allow => PolicyEvaluationDecisionType::Allowed,
                    Decision::ExplicitDeny(_) => PolicyEvaluationDecisionType::ExplicitDeny,
                    Decision::ImplicitDeny(_) => PolicyEvaluationDecisionType::ImplicitDeny,
                },
                eval_resource_name: Some(resource.clone()),
                ..Default::default()
            });
        }
    }
    let (evaluation_results, marker) = super::page(results, req.marker.as_deref(), req.max_items)?;
    Ok(SimulatePolicyResponse {
        evaluation_results: Some(evaluation_results),
        is_truncated: Some(marker.is_some()),
        marker,
    })
}
