//! Evaluating parsed policies against a request.
//!
//! # A statement applies to a request when
//!
//! 1. its `Action` names the action (`*`/`?` wildcards, case-insensitive),
//!    or its `NotAction` does not;
//! 2. every policy variable it uses without a default resolves to exactly
//!    one value in the request's context keys (the documentation: a
//!    variable AWS cannot resolve "might cause the entire statement to be
//!    invalid" — here it always does, for `Allow` and `Deny` alike);
//! 3. its `Resource` names the resource (ARN patterns, see
//!    [`pattern`](super::pattern)) or its `NotResource` does not; a
//!    statement without either (trust policies, resource policies that
//!    leave it out) covers the resource its policy is attached to;
//! 4. its `Principal` names the caller, or its `NotPrincipal` does not
//!    (identity policies have neither: the caller is the identity);
//! 5. all its conditions hold (see [`condition`](super::condition)).
//!
//! # Principals
//!
//! An AWS principal names the caller when it is `*`, the caller's exact
//! ARN, the caller's account (`123456789012` or `arn:aws:iam::…:root`),
//! or — for a role session `arn:aws:sts::…:assumed-role/R/S` — the role
//! `arn:aws:iam::…:role/[path/]R`, or — for a federated user session
//! `arn:aws:sts::…:federated-user/N` — the IAM user `…:user/[path/]N`.
//! Principals have no wildcards but the whole `*`. A `NotPrincipal`
//! excludes the caller when any of its values names the caller in one of
//! those ways (AWS asks for the session, role and account to be listed;
//! any one of them is enough here).
//!
//! # Decision, within one account ([`evaluate`])
//!
//! Following "Policy evaluation logic":
//!
//! 1. An applicable `Deny` in any identity, resource, boundary or session
//!    policy: [`Decision::ExplicitDeny`], naming the first kind found in
//!    that order.
//! 2. The account's root user (`arn:aws:iam::<account>:root`) is allowed.
//! 3. A resource policy `Allow` that names the caller *directly* — its
//!    exact ARN (user, role session, federated user session) or `*` — is
//!    an `Allow` that no implicit deny in identity policies, boundaries or
//!    session policies limits.
//! 4. Otherwise an identity policy `Allow`, or a resource policy `Allow`
//!    that names the role of the caller's session (or the user behind a
//!    federated user session), is needed: else implicitly denied
//!    ("no identity-based policy allows").
//! 5. Then the permissions boundary, when there is one, must allow it, and
//!    a session policy, when the session has one, must allow it.
//!
//! Simplifications, each documented by AWS for cases Berth does not have:
//! no SCPs, no VPC endpoint policies, no cross-account requests (a
//! resource policy naming another account's principal simply does not
//! apply to this caller). A resource policy that names the caller's
//! *account* delegates to the account's identity policies and grants
//! nothing on its own. For a federated user session (`GetFederationToken`)
//! without a session policy, AWS denies: pass `session: Some(vec![])`.
//!
//! # Cost
//!
//! Documents are compiled when parsed. Evaluating allocates nothing for
//! statements without policy variables: action patterns are lower-cased
//! in advance and compared ASCII-case-insensitively, context keys are
//! stored lower-cased and looked up with the lower-cased names the
//! statements hold, and matching is done on borrowed text.

use std::collections::HashMap;

use super::document::{
    ActionBlock, ActionPattern, AwsPrincipal, Effect, PolicyDocument, PrincipalBlock, Principals,
    ResourceBlock, Statement,
};
use super::pattern::{arn_glob, glob};

/// The request's condition context keys. Names are case-insensitive
/// (stored lower-cased); values are case-sensitive and a key may have
/// several (`aws:TagKeys`). A key present with no value counts as absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextKeys {
    map: HashMap<String, Vec<String>>,
}

impl ContextKeys {
    /// No keys.
    pub fn new() -> ContextKeys {
        ContextKeys::default()
    }

    /// Sets `name` to the single `value`, replacing what it had.
    pub fn insert(&mut self, name: &str, value: impl Into<String>) {
        self.map.insert(name.to_lowercase(), vec![value.into()]);
    }

    /// Sets `name` to `values` (a multivalued key), replacing what it had.
    pub fn insert_all<I, S>(&mut self, name: &str, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let values = values.into_iter().map(Into::into).collect();
        self.map.insert(name.to_lowercase(), values);
    }

    /// [`insert`](Self::insert), builder style.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> ContextKeys {
        self.insert(name, value);
        self
    }

    /// [`insert_all`](Self::insert_all), builder style.
    pub fn with_all<I, S>(mut self, name: &str, values: I) -> ContextKeys
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.insert_all(name, values);
        self
    }

    /// Removes `name`, returning its values.
    pub fn remove(&mut self, name: &str) -> Option<Vec<String>> {
        self.map.remove(&name.to_lowercase())
    }

    /// The values of `name`, whatever its case.
    pub fn get(&self, name: &str) -> Option<&[String]> {
        if name.chars().any(char::is_uppercase) {
            self.get_lower(&name.to_lowercase())
        } else {
            self.get_lower(name)
        }
    }

    /// The values of a name already lower-cased (no allocation).
    pub(crate) fn get_lower(&self, lower: &str) -> Option<&[String]> {
        self.map.get(lower).map(Vec::as_slice)
    }

    /// The keys (lower-cased) and their values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// One request to authorize.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestContext {
    /// The caller: `arn:aws:iam::123456789012:user/alice`,
    /// `arn:aws:sts::123456789012:assumed-role/app/session`, or the root
    /// `arn:aws:iam::123456789012:root`.
    pub principal_arn: String,
    /// The caller's account.
    pub principal_account: String,
    /// The IAM action, `service:Action` (`ecs:RunTask`).
    pub action: String,
    /// The resource's ARN, or `*` for actions without resource-level
    /// permissions.
    pub resource: String,
    /// The condition context keys (and policy variables).
    pub keys: ContextKeys,
}

impl RequestContext {
    /// A request by `principal_arn`; the account is the ARN's fifth field.
    /// Sets the keys `aws:PrincipalArn` and `aws:PrincipalAccount`; add
    /// the others (`aws:username`, `aws:SourceIp`, `aws:CurrentTime`, ...)
    /// to [`keys`](Self::keys).
    pub fn new(principal_arn: &str, action: &str, resource: &str) -> RequestContext {
        let account = principal_arn
            .split(':')
            .nth(4)
            .unwrap_or_default()
            .to_string();
        let keys = ContextKeys::new()
            .with("aws:PrincipalArn", principal_arn)
            .with("aws:PrincipalAccount", account.clone());
        RequestContext {
            principal_arn: principal_arn.to_string(),
            principal_account: account,
            action: action.to_string(),
            resource: resource.to_string(),
            keys,
        }
    }

    /// Adds a context key, builder style.
    pub fn with_key(mut self, name: &str, value: impl Into<String>) -> RequestContext {
        self.keys.insert(name, value);
        self
    }

    /// Adds a multivalued context key, builder style.
    pub fn with_keys<I, S>(mut self, name: &str, values: I) -> RequestContext
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keys.insert_all(name, values);
        self
    }
}

/// The policies that apply to a request.
#[derive(Clone, Debug, Default)]
pub struct Policies<'a> {
    /// The caller's identity policies: inline and managed, the user's
    /// groups' too, or the role's for a role session.
    pub identity: Vec<&'a PolicyDocument>,
    /// The resource's policies (repository policy, secret policy, ...).
    pub resource: Vec<&'a PolicyDocument>,
    /// The caller's permissions boundary, if it has one.
    pub boundary: Option<Vec<&'a PolicyDocument>>,
    /// The session policies passed when the session was made, if any.
    pub session: Option<Vec<&'a PolicyDocument>>,
}

/// A kind of policy, as denial messages name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyType {
    Identity,
    Resource,
    Boundary,
    Session,
    Trust,
}

impl PolicyType {
    /// The policy type as denial messages write it.
    pub fn name(self) -> &'static str {
        match self {
            PolicyType::Identity => "identity-based policy",
            PolicyType::Resource => "resource-based policy",
            PolicyType::Boundary => "permissions boundary",
            PolicyType::Session => "session policy",
            PolicyType::Trust => "role trust policy",
        }
    }
}

/// The outcome of an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    /// A `Deny` statement applied, in a policy of this type.
    ExplicitDeny(PolicyType),
    /// No `Allow` where one was needed: in policies of this type.
    ImplicitDeny(PolicyType),
}

impl Decision {
    /// Whether the request is allowed.
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }

    /// The end of AWS's denial message: `with an explicit deny in an
    /// identity-based policy`, `because no session policy allows the
    /// ecs:RunTask action`; `None` for `Allow`.
    pub fn reason(self, action: &str) -> Option<String> {
        match self {
            Decision::Allow => None,
            Decision::ExplicitDeny(PolicyType::Trust) => {
                Some("with an explicit deny in the role trust policy".to_string())
            }
            Decision::ExplicitDeny(t) => {
                let article = if t == PolicyType::Identity { "an" } else { "a" };
                Some(format!("with an explicit deny in {article} {}", t.name()))
            }
            Decision::ImplicitDeny(t) => Some(format!(
                "because no {} allows the {action} action",
                t.name()
            )),
        }
    }
}

/// AWS's access-denied message for a denial, `None` for `Allow`:
/// `User: arn:aws:iam::123456789012:user/alice is not authorized to
/// perform: ecs:RunTask on resource: arn:aws:ecs:…:task-definition/web:1
/// because no identity-based policy allows the ecs:RunTask action`. The
/// `on resource:` part is left out for the resource `*` (or none).
pub fn denial_message(
    principal: &str,
    action: &str,
    resource: &str,
    decision: Decision,
) -> Option<String> {
    let reason = decision.reason(action)?;
    Some(if resource.is_empty() || resource == "*" {
        format!("User: {principal} is not authorized to perform: {action} {reason}")
    } else {
        format!(
            "User: {principal} is not authorized to perform: {action} on resource: {resource} {reason}"
        )
    })
}

/// Who is asking, for a trust policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caller<'a> {
    /// An AWS principal's ARN (user, role session, root).
    Aws(&'a str),
    /// A service principal, `ecs-tasks.amazonaws.com`.
    Service(&'a str),
    /// A federated identity provider (`AssumeRoleWithWebIdentity`,
    /// `AssumeRoleWithSAML`): `accounts.google.com` or a provider ARN.
    Federated(&'a str),
}

/// How directly an applicable statement names the caller; the order
/// matters (`max` of several statements).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Grant {
    /// Does not apply.
    No,
    /// Names the caller's account: delegation to its identity policies.
    Account,
    /// Names the role behind the caller's session (or the user behind a
    /// federated user session): limited by boundaries and session policies.
    Identity,
    /// Names the caller itself (or everyone); identity policies' statements.
    Direct,
}

struct Request<'a> {
    caller: Caller<'a>,
    account: &'a str,
    action: &'a str,
    resource: Option<&'a str>,
    keys: &'a ContextKeys,
}

/// What a set of policies says: whether a `Deny` applies, and the best
/// `Allow`.
struct Scan {
    deny: bool,
    allow: Grant,
}

fn scan(docs: &[&PolicyDocument], req: &Request<'_>) -> Scan {
    let mut allow = Grant::No;
    for doc in docs {
        for st in doc.statements() {
            match st.effect() {
                Effect::Deny => {
                    if applies(st, req) != Grant::No {
                        return Scan { deny: true, allow };
                    }
                }
                Effect::Allow if allow < Grant::Direct => allow = allow.max(applies(st, req)),
                Effect::Allow => {}
            }
        }
    }
    Scan { deny: false, allow }
}

/// Decides a request within one account; see the module documentation.
pub fn evaluate(policies: &Policies<'_>, ctx: &RequestContext) -> Decision {
    let req = Request {
        caller: Caller::Aws(&ctx.principal_arn),
        account: &ctx.principal_account,
        action: &ctx.action,
        resource: Some(&ctx.resource),
        keys: &ctx.keys,
    };
    let identity = scan(&policies.identity, &req);
    if identity.deny {
        return Decision::ExplicitDeny(PolicyType::Identity);
    }
    let resource = scan(&policies.resource, &req);
    if resource.deny {
        return Decision::ExplicitDeny(PolicyType::Resource);
    }
    let boundary = policies.boundary.as_deref().map(|b| scan(b, &req));
    if boundary.as_ref().is_some_and(|b| b.deny) {
        return Decision::ExplicitDeny(PolicyType::Boundary);
    }
    let session = policies.session.as_deref().map(|s| scan(s, &req));
    if session.as_ref().is_some_and(|s| s.deny) {
        return Decision::ExplicitDeny(PolicyType::Session);
    }
    if is_root(&ctx.principal_arn, &ctx.principal_account) || resource.allow == Grant::Direct {
        return Decision::Allow;
    }
    if identity.allow == Grant::No && resource.allow < Grant::Identity {
        return Decision::ImplicitDeny(PolicyType::Identity);
    }
    if boundary.is_some_and(|b| b.allow == Grant::No) {
        return Decision::ImplicitDeny(PolicyType::Boundary);
    }
    if session.is_some_and(|s| s.allow == Grant::No) {
        return Decision::ImplicitDeny(PolicyType::Session);
    }
    Decision::Allow
}

/// Decides whether `caller` may perform `action` (`sts:AssumeRole`,
/// `sts:AssumeRoleWithWebIdentity`, `sts:TagSession`, ...) on the role
/// whose trust policy is `policy`: a `Deny` that applies denies, else an
/// `Allow` that applies allows, else it is implicitly denied. A statement
/// naming the caller's account lets any principal of that account in
/// (whose own identity policies must allow `sts:AssumeRole`, which the
/// caller checks with [`evaluate`]). `keys` are the request's context keys
/// (`sts:ExternalId`, `aws:SourceIp`, `aws:PrincipalTag/...`).
pub fn evaluate_trust(
    policy: &PolicyDocument,
    caller: Caller<'_>,
    action: &str,
    keys: &ContextKeys,
) -> Decision {
    let account = match caller {
        Caller::Aws(arn) => arn.split(':').nth(4).unwrap_or_default(),
        _ => "",
    };
    let req = Request {
        caller,
        account,
        action,
        resource: None,
        keys,
    };
    let result = scan(&[policy], &req);
    if result.deny {
        Decision::ExplicitDeny(PolicyType::Trust)
    } else if result.allow == Grant::No {
        Decision::ImplicitDeny(PolicyType::Trust)
    } else {
        Decision::Allow
    }
}

/// Whether the statement applies to the request, and how directly it
/// names the caller.
fn applies(st: &Statement, req: &Request<'_>) -> Grant {
    if !action_matches(st.action(), req.action) {
        return Grant::No;
    }
    let resolved = |k: &String| matches!(req.keys.get_lower(k), Some([_]));
    if !st.required_vars().iter().all(resolved) {
        return Grant::No;
    }
    if !resource_matches(st.resource(), req.resource, req.keys) {
        return Grant::No;
    }
    let grant = principal_grant(st.principal(), req.caller, req.account);
    if grant == Grant::No || !st.conditions().iter().all(|c| c.holds(req.keys)) {
        return Grant::No;
    }
    grant
}

fn action_matches(block: &ActionBlock, action: &str) -> bool {
    let named = block.compiled().iter().any(|p| match p {
        ActionPattern::Any => true,
        ActionPattern::Exact(a) => a.eq_ignore_ascii_case(action),
        ActionPattern::Glob(toks) => glob(toks, action, true),
    });
    named != block.is_not()
}

fn resource_matches(
    block: Option<&ResourceBlock>,
    resource: Option<&str>,
    keys: &ContextKeys,
) -> bool {
    let (Some(block), Some(resource)) = (block, resource) else {
        return true;
    };
    let named = block
        .compiled()
        .iter()
        .any(|p| p.toks(keys).is_some_and(|t| arn_glob(&t, resource)));
    named != block.is_not()
}

fn principal_grant(block: Option<&PrincipalBlock>, caller: Caller<'_>, account: &str) -> Grant {
    let Some(block) = block else {
        return Grant::Direct;
    };
    let named = match (block.principals(), caller) {
        (Principals::Everyone, _) => Grant::Direct,
        (Principals::Map { aws, .. }, Caller::Aws(arn)) => aws
            .iter()
            .map(|p| aws_grant(p, arn, account))
            .max()
            .unwrap_or(Grant::No),
        (Principals::Map { service, .. }, Caller::Service(s)) => {
            if service.iter().any(|x| x == s) {
                Grant::Direct
            } else {
                Grant::No
            }
        }
        (Principals::Map { federated, .. }, Caller::Federated(f)) => {
            if federated.iter().any(|x| x == f) {
                Grant::Direct
            } else {
                Grant::No
            }
        }
    };
    match (block.is_not(), named) {
        (false, g) => g,
        (true, Grant::No) => Grant::Direct,
        (true, _) => Grant::No,
    }
}

fn aws_grant(p: &AwsPrincipal, caller: &str, account: &str) -> Grant {
    match p {
        AwsPrincipal::Any => Grant::Direct,
        AwsPrincipal::Account(id) if !account.is_empty() && id == account => Grant::Account,
        AwsPrincipal::Account(_) => Grant::No,
        AwsPrincipal::Arn(arn) if arn == caller => Grant::Direct,
        AwsPrincipal::Arn(arn) if behind_session(caller, arn) => Grant::Identity,
        AwsPrincipal::Arn(_) => Grant::No,
    }
}

/// Whether `named` is the role behind the role session `caller`, or the
/// IAM user behind the federated user session `caller`.
fn behind_session(caller: &str, named: &str) -> bool {
    let mut c = caller.splitn(6, ':');
    let mut n = named.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("sts"), Some(""), Some(account), Some(res)) =
        (c.next(), c.next(), c.next(), c.next(), c.next(), c.next())
    else {
        return false;
    };
    let (Some("arn"), Some(np), Some("iam"), Some(""), Some(na), Some(nres)) =
        (n.next(), n.next(), n.next(), n.next(), n.next(), n.next())
    else {
        return false;
    };
    if np != partition || na != account {
        return false;
    }
    let last = nres.rsplit('/').next();
    if let Some(rest) = res.strip_prefix("assumed-role/") {
        nres.starts_with("role/") && last == rest.split('/').next()
    } else if let Some(user) = res.strip_prefix("federated-user/") {
        nres.starts_with("user/") && last == Some(user)
    } else {
        false
    }
}

/// Whether `arn` is the account's root user.
fn is_root(arn: &str, account: &str) -> bool {
    let mut f = arn.splitn(6, ':');
    matches!(
        (f.next(), f.next(), f.next(), f.next(), f.next(), f.next()),
        (Some("arn"), Some(_), Some("iam"), Some(""), Some(a), Some("root")) if a == account
    )
}
