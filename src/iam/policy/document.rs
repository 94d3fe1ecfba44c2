//! Parsing a policy document into typed, precompiled statements.
//!
//! The JSON is read once into a small tree that keeps every member of an
//! object in order (so that a repeated key, which the grammar forbids, is
//! caught with its position), then checked and compiled. Nothing of the
//! JSON is kept: actions are lower-cased globs, resources and condition
//! values compiled patterns, dates and addresses parsed.
//!
//! # Errors
//!
//! IAM answers a malformed document with `MalformedPolicyDocument` and one
//! message. The message depends on the kind of policy: IAM's permissions
//! policy parser (identity policies) folds most structural faults into
//! `Syntax errors in policy.`, while the parser of role trust policies and
//! of resource policies names the field (`Missing required field
//! Principal`, `Has prohibited field Resource`, `Invalid effect: allow`).
//! [`MalformedPolicy::message`] is that message; [`MalformedPolicy::reason`]
//! says precisely what is wrong, whatever the kind. When a document has
//! several faults, the one reported is the first structural fault met
//! reading it in order, else the first of the later checks in IAM's order:
//! legacy parsing (effect case, dates), statement ids, actions present,
//! resources present, resource format, action vendors.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::condition::{Condition, ConditionError, OperatorName};
use super::pattern::{Pattern, Tok, Vars};

/// Which kind of policy a document is; it decides which elements are
/// required or prohibited, and the wording of errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// A permissions policy attached to a user, group or role (inline or
    /// managed), a permissions boundary, or a session policy: no
    /// `Principal`/`NotPrincipal`; `Action` and `Resource` required.
    Identity,
    /// A role's trust (assume-role) policy: `Principal` required, no
    /// `Resource`/`NotResource`.
    Trust,
    /// A resource policy (repository policy, secret policy, ...):
    /// `Principal` required; `Resource` optional, meaning the resource the
    /// policy is attached to.
    Resource,
}

/// The policy language version (`Version` element).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// `2008-10-17`, also what an absent `Version` means: policy
    /// variables are literal text.
    V2008_10_17,
    /// `2012-10-17`: policy variables are substituted.
    V2012_10_17,
}

impl Version {
    /// The version as documents write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2008_10_17 => "2008-10-17",
            Version::V2012_10_17 => "2012-10-17",
        }
    }
}

/// A statement's `Effect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

/// What exactly is wrong with a malformed document.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// Not JSON (or an object with a repeated key); see the position.
    Json(String),
    /// The document is not a JSON object.
    NotAnObject,
    /// An element holds a value of the wrong JSON type.
    WrongType(&'static str),
    /// An element the grammar does not have.
    UnknownField(String),
    /// A `Version` other than `2008-10-17` and `2012-10-17`.
    InvalidVersion(String),
    /// A required element is missing (or is an empty list).
    MissingField(&'static str),
    /// An element this kind of policy must not have.
    ProhibitedField(&'static str),
    /// Both of two exclusive elements (`Action` and `NotAction`, ...).
    Conflict(&'static str, &'static str),
    /// An `Effect` other than `Allow` or `Deny`.
    InvalidEffect(String),
    /// An `Effect` that is `Allow` or `Deny` but for the case.
    EffectCase(String),
    /// A principal that is not `*`, an account id, an ARN or a known type.
    InvalidPrincipal(String),
    /// A condition operator IAM does not know.
    UnknownOperator(String),
    /// An action (or condition key) without its `vendor:` prefix.
    MissingVendor(String),
    /// An action with more than one colon.
    TooManyColons(String),
    /// An action whose vendor has characters other than letters, digits,
    /// `-` and `.`.
    InvalidVendor(String),
    /// A resource that is neither `*` nor an ARN.
    NotAnArn(String),
    /// A date condition value that is neither ISO 8601 nor epoch seconds.
    InvalidDate(String),
    /// Two statements with the same `Sid`.
    DuplicateSid(String),
    /// A `Sid` with characters other than letters and digits (IAM policies).
    InvalidSid(String),
}

/// A document IAM would refuse with `MalformedPolicyDocument`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedPolicy {
    message: String,
    reason: Reason,
    position: Option<(usize, usize)>,
}

impl MalformedPolicy {
    fn new(reason: Reason, kind: PolicyKind) -> MalformedPolicy {
        MalformedPolicy {
            message: message(&reason, kind),
            reason,
            position: None,
        }
    }

    /// IAM's message for the fault, as `MalformedPolicyDocument` carries it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What exactly is wrong.
    pub fn reason(&self) -> &Reason {
        &self.reason
    }

    /// For a JSON syntax error: its line and column (1-based), as
    /// `serde_json` reports them.
    pub fn position(&self) -> Option<(usize, usize)> {
        self.position
    }
}

impl fmt::Display for MalformedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some((line, column)) = self.position {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

impl std::error::Error for MalformedPolicy {}

const SYNTAX: &str = "Syntax errors in policy.";
const LEGACY: &str = "The policy failed legacy parsing";

fn message(reason: &Reason, kind: PolicyKind) -> String {
    let iam = kind == PolicyKind::Identity;
    match reason {
        Reason::Json(_) if iam => SYNTAX.into(),
        Reason::Json(_) => "This policy contains invalid Json".into(),
        Reason::NotAnObject
        | Reason::WrongType(_)
        | Reason::Conflict(..)
        | Reason::UnknownOperator(_) => SYNTAX.into(),
        Reason::UnknownField(_)
        | Reason::InvalidVersion(_)
        | Reason::InvalidEffect(_)
        | Reason::InvalidPrincipal(_)
            if iam =>
        {
            SYNTAX.into()
        }
        Reason::UnknownField(f) => format!("Unknown field {f}"),
        Reason::InvalidVersion(_) => "Invalid Version".into(),
        Reason::InvalidEffect(e) => format!("Invalid effect: {e}"),
        Reason::InvalidPrincipal(p) => format!("Invalid principal in policy: {p}"),
        Reason::EffectCase(_) if iam => LEGACY.into(),
        Reason::EffectCase(e) => format!("Invalid effect: {e}"),
        Reason::InvalidDate(_) => LEGACY.into(),
        Reason::ProhibitedField("Principal" | "NotPrincipal") if iam => {
            "Policy document should not specify a principal.".into()
        }
        Reason::ProhibitedField(f) => format!("Has prohibited field {f}"),
        Reason::MissingField("Action") if iam => "Policy statement must contain actions.".into(),
        Reason::MissingField("Resource") if iam => {
            "Policy statement must contain resources.".into()
        }
        Reason::MissingField(_) if iam => SYNTAX.into(),
        Reason::MissingField(f) => format!("Missing required field {f}"),
        Reason::MissingVendor(_) => {
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.".into()
        }
        Reason::TooManyColons(_) => "Actions/Condition can contain only one colon.".into(),
        Reason::InvalidVendor(v) => format!("Vendor {v} is not valid"),
        Reason::NotAnArn(r) => format!("Resource {r} must be in ARN format or \"*\"."),
        Reason::DuplicateSid(_) => "Statement IDs (SID) in a single policy must be unique.".into(),
        Reason::InvalidSid(_) => "Statement IDs (SID) must be alpha-numeric. Check that your \
                                  input satisfies the regular expression [0-9A-Za-z]*"
            .into(),
    }
}

/// A parsed policy document.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDocument {
    kind: PolicyKind,
    version: Version,
    id: Option<String>,
    statements: Vec<Statement>,
}

/// One statement, compiled.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    sid: Option<String>,
    effect: Effect,
    principal: Option<PrincipalBlock>,
    action: ActionBlock,
    resource: Option<ResourceBlock>,
    conditions: Vec<Condition>,
    required_vars: Vec<String>,
}

/// `Principal` or `NotPrincipal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrincipalBlock {
    negated: bool,
    principals: Principals,
}

/// The value of a `Principal` element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principals {
    /// `"*"`: everyone, anonymous callers and services included.
    Everyone,
    /// `{"AWS": ..., "Service": ..., "Federated": ..., "CanonicalUser": ...}`.
    Map {
        aws: Vec<AwsPrincipal>,
        service: Vec<String>,
        federated: Vec<String>,
        canonical_user: Vec<String>,
    },
}

/// One value of an `AWS` principal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AwsPrincipal {
    /// `"*"`.
    Any,
    /// An account: `123456789012` or `arn:aws:iam::123456789012:root`.
    Account(String),
    /// A user, role, assumed-role session or federated user ARN.
    Arn(String),
}

/// `Action` or `NotAction`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionBlock {
    negated: bool,
    actions: Vec<String>,
    compiled: Vec<ActionPattern>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ActionPattern {
    Any,
    Exact(String),
    Glob(Vec<Tok>),
}

/// `Resource` or `NotResource`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceBlock {
    negated: bool,
    resources: Vec<String>,
    compiled: Vec<Pattern>,
}

impl PolicyDocument {
    /// Parses and checks `text` as a policy of `kind`.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<PolicyDocument, MalformedPolicy> {
        let node: Node = serde_json::from_str(text).map_err(|e| MalformedPolicy {
            position: Some((e.line(), e.column())),
            ..MalformedPolicy::new(Reason::Json(e.to_string()), kind)
        })?;
        let mut parser = Parser {
            kind,
            deferred: None,
        };
        let doc = parser
            .document(node)
            .map_err(|r| MalformedPolicy::new(r, kind))?;
        match parser.deferred {
            Some((_, reason)) => Err(MalformedPolicy::new(reason, kind)),
            None => Ok(doc),
        }
    }

    /// The kind the document was parsed as.
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// The policy language version (2008-10-17 when absent).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The `Id` element.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The statements, in order.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }
}

impl Statement {
    /// The `Sid` element.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// `Allow` or `Deny`.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// `Principal`/`NotPrincipal`; `None` in identity policies.
    pub fn principal(&self) -> Option<&PrincipalBlock> {
        self.principal.as_ref()
    }

    /// `Action`/`NotAction`.
    pub fn action(&self) -> &ActionBlock {
        &self.action
    }

    /// `Resource`/`NotResource`; `None` in trust policies and in resource
    /// policies that leave it out.
    pub fn resource(&self) -> Option<&ResourceBlock> {
        self.resource.as_ref()
    }

    /// The conditions, all of which must hold.
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// The policy variables (lower-cased keys, without default) the
    /// statement uses.
    pub(crate) fn required_vars(&self) -> &[String] {
        &self.required_vars
    }
}

impl PrincipalBlock {
    /// Whether this is `NotPrincipal`.
    pub fn is_not(&self) -> bool {
        self.negated
    }

    /// The principals named.
    pub fn principals(&self) -> &Principals {
        &self.principals
    }
}

impl ActionBlock {
    /// Whether this is `NotAction`.
    pub fn is_not(&self) -> bool {
        self.negated
    }

    /// The action patterns as written.
    pub fn actions(&self) -> &[String] {
        &self.actions
    }

    pub(crate) fn compiled(&self) -> &[ActionPattern] {
        &self.compiled
    }
}

impl ResourceBlock {
    /// Whether this is `NotResource`.
    pub fn is_not(&self) -> bool {
        self.negated
    }

    /// The resource patterns as written.
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    pub(crate) fn compiled(&self) -> &[Pattern] {
        &self.compiled
    }
}

/// Priorities of the faults found after the structure, in IAM's order.
const P_LEGACY: u8 = 1;
const P_SID: u8 = 2;
const P_ACTIONS: u8 = 3;
const P_RESOURCES: u8 = 4;
const P_RESOURCE_FORMAT: u8 = 5;
const P_VENDOR: u8 = 6;

struct Parser {
    kind: PolicyKind,
    deferred: Option<(u8, Reason)>,
}

impl Parser {
    fn defer(&mut self, priority: u8, reason: Reason) {
        if self.deferred.as_ref().is_none_or(|(p, _)| priority < *p) {
            self.deferred = Some((priority, reason));
        }
    }

    fn document(&mut self, node: Node) -> Result<PolicyDocument, Reason> {
        let Node::Object(members) = node else {
            return Err(Reason::NotAnObject);
        };
        let mut version = Version::V2008_10_17;
        let mut id = None;
        let mut statement = None;
        for (key, value) in members {
            match key.as_str() {
                "Version" => {
                    version = match value {
                        Node::String(s) if s == "2012-10-17" => Version::V2012_10_17,
                        Node::String(s) if s == "2008-10-17" => Version::V2008_10_17,
                        Node::String(s) => return Err(Reason::InvalidVersion(s)),
                        _ => return Err(Reason::WrongType("Version")),
                    }
                }
                "Id" => match value {
                    Node::String(s) => id = Some(s),
                    _ => return Err(Reason::WrongType("Id")),
                },
                "Statement" => statement = Some(value),
                _ => return Err(Reason::UnknownField(key)),
            }
        }
        let raw = match statement {
            Some(Node::Object(members)) => vec![members],
            Some(Node::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Node::Object(members) => Ok(members),
                    _ => Err(Reason::WrongType("Statement")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(Reason::WrongType("Statement")),
            None => return Err(Reason::MissingField("Statement")),
        };
        if raw.is_empty() {
            return Err(Reason::MissingField("Statement"));
        }
        let mut statements = Vec::with_capacity(raw.len());
        let mut sids = HashSet::new();
        for members in raw {
            let st = self.statement(members, version)?;
            if let Some(sid) = st.sid.as_deref().filter(|s| !s.is_empty()) {
                if !sids.insert(sid.to_string()) {
                    self.defer(P_SID, Reason::DuplicateSid(sid.to_string()));
                }
            }
            statements.push(st);
        }
        Ok(PolicyDocument {
            kind: self.kind,
            version,
            id,
            statements,
        })
    }

    fn statement(
        &mut self,
        members: Vec<(String, Node)>,
        version: Version,
    ) -> Result<Statement, Reason> {
        let variables = version == Version::V2012_10_17;
        let mut sid = None;
        let mut effect = None;
        let mut principal = None;
        let mut action = None;
        let mut resource = None;
        let mut conditions = Vec::new();
        for (key, value) in members {
            match key.as_str() {
                "Sid" => match value {
                    Node::String(s) => {
                        let iam = self.kind != PolicyKind::Resource;
                        if iam && !s.chars().all(|c| c.is_ascii_alphanumeric()) {
                            self.defer(P_SID, Reason::InvalidSid(s.clone()));
                        }
                        sid = Some(s);
                    }
                    _ => return Err(Reason::WrongType("Sid")),
                },
                "Effect" => {
                    let Node::String(e) = value else {
                        return Err(Reason::WrongType("Effect"));
                    };
                    effect = Some(match e.as_str() {
                        "Allow" => Effect::Allow,
                        "Deny" => Effect::Deny,
                        other if other.eq_ignore_ascii_case("allow") => {
                            self.effect_case(e.clone())?;
                            Effect::Allow
                        }
                        other if other.eq_ignore_ascii_case("deny") => {
                            self.effect_case(e.clone())?;
                            Effect::Deny
                        }
                        _ => return Err(Reason::InvalidEffect(e)),
                    });
                }
                "Principal" | "NotPrincipal" => {
                    let negated = key == "NotPrincipal";
                    let name = if negated { "NotPrincipal" } else { "Principal" };
                    if self.kind == PolicyKind::Identity {
                        return Err(Reason::ProhibitedField(name));
                    }
                    if principal.is_some() {
                        return Err(Reason::Conflict("Principal", "NotPrincipal"));
                    }
                    principal = Some(PrincipalBlock {
                        negated,
                        principals: principals(value)?,
                    });
                }
                "Action" | "NotAction" => {
                    if action.is_some() {
                        return Err(Reason::Conflict("Action", "NotAction"));
                    }
                    let negated = key == "NotAction";
                    let actions = strings(value, if negated { "NotAction" } else { "Action" })?;
                    if actions.is_empty() {
                        self.missing(P_ACTIONS, "Action")?;
                    }
                    let compiled = actions.iter().map(|a| self.action_pattern(a)).collect();
                    action = Some(ActionBlock {
                        negated,
                        actions,
                        compiled,
                    });
                }
                "Resource" | "NotResource" => {
                    let negated = key == "NotResource";
                    let name = if negated { "NotResource" } else { "Resource" };
                    if self.kind == PolicyKind::Trust {
                        return Err(Reason::ProhibitedField(name));
                    }
                    if resource.is_some() {
                        return Err(Reason::Conflict("Resource", "NotResource"));
                    }
                    let resources = strings(value, name)?;
                    if resources.is_empty() && self.kind == PolicyKind::Identity {
                        self.defer(P_RESOURCES, Reason::MissingField("Resource"));
                    }
                    let vars = if variables {
                        Vars::ResourcePart
                    } else {
                        Vars::Off
                    };
                    let mut compiled = Vec::with_capacity(resources.len());
                    for r in &resources {
                        if self.kind == PolicyKind::Identity && r != "*" && !r.contains(':') {
                            self.defer(P_RESOURCE_FORMAT, Reason::NotAnArn(r.clone()));
                        }
                        compiled.push(Pattern::compile(r, vars, true, false));
                    }
                    resource = Some(ResourceBlock {
                        negated,
                        resources,
                        compiled,
                    });
                }
                "Condition" => conditions = self.conditions(value, variables)?,
                _ => return Err(Reason::UnknownField(key)),
            }
        }
        let Some(effect) = effect else {
            return Err(Reason::MissingField("Effect"));
        };
        if principal.is_none() && self.kind != PolicyKind::Identity {
            return Err(Reason::MissingField("Principal"));
        }
        let action = match action {
            Some(a) => a,
            None => {
                self.missing(P_ACTIONS, "Action")?;
                ActionBlock {
                    negated: false,
                    actions: Vec::new(),
                    compiled: Vec::new(),
                }
            }
        };
        if resource.is_none() && self.kind == PolicyKind::Identity {
            self.defer(P_RESOURCES, Reason::MissingField("Resource"));
        }
        let mut required_vars: Vec<String> = Vec::new();
        let from_resources = resource
            .iter()
            .flat_map(|r| r.compiled.iter())
            .flat_map(Pattern::required_vars);
        let from_conditions = conditions.iter().flat_map(Condition::required_vars);
        for var in from_resources.chain(from_conditions) {
            if !required_vars.iter().any(|v| v == var) {
                required_vars.push(var.to_string());
            }
        }
        Ok(Statement {
            sid,
            effect,
            principal,
            action,
            resource,
            conditions,
            required_vars,
        })
    }

    /// An `Effect` right but for its case: IAM's permissions policy parser
    /// fails it in "legacy parsing", the others refuse it outright.
    fn effect_case(&mut self, effect: String) -> Result<(), Reason> {
        if self.kind == PolicyKind::Identity {
            self.defer(P_LEGACY, Reason::EffectCase(effect));
            Ok(())
        } else {
            Err(Reason::EffectCase(effect))
        }
    }

    /// A missing `Action`: deferred in identity policies (IAM checks it
    /// after the structure), a structural fault in the others.
    fn missing(&mut self, priority: u8, field: &'static str) -> Result<(), Reason> {
        if self.kind == PolicyKind::Identity {
            self.defer(priority, Reason::MissingField(field));
            Ok(())
        } else {
            Err(Reason::MissingField(field))
        }
    }

    fn action_pattern(&mut self, action: &str) -> ActionPattern {
        if action == "*" {
            return ActionPattern::Any;
        }
        let colons = action.matches(':').count();
        match colons {
            0 => self.defer(P_VENDOR, Reason::MissingVendor(action.to_string())),
            1 => {
                let vendor = action.split(':').next().unwrap_or_default();
                let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
                if vendor != "*" && !vendor.chars().all(valid) {
                    self.defer(P_VENDOR, Reason::InvalidVendor(vendor.to_string()));
                }
            }
            _ => self.defer(P_VENDOR, Reason::TooManyColons(action.to_string())),
        }
        if action.contains(['*', '?']) {
            let p = Pattern::compile(action, Vars::Off, true, true);
            ActionPattern::Glob(
                p.toks(&Default::default())
                    .map(|t| t.into_owned())
                    .unwrap_or_default(),
            )
        } else {
            ActionPattern::Exact(action.to_ascii_lowercase())
        }
    }

    fn conditions(&mut self, value: Node, variables: bool) -> Result<Vec<Condition>, Reason> {
        let Node::Object(operators) = value else {
            return Err(Reason::WrongType("Condition"));
        };
        let mut out = Vec::new();
        for (operator, body) in operators {
            let Some(name) = OperatorName::parse(&operator) else {
                return Err(Reason::UnknownOperator(operator));
            };
            let Node::Object(keys) = body else {
                return Err(Reason::WrongType("Condition"));
            };
            for (key, values) in keys {
                if !key.contains(':') {
                    self.defer(P_VENDOR, Reason::MissingVendor(key.clone()));
                }
                let raw = condition_values(values)?;
                match Condition::compile(name, &key, raw, variables) {
                    Ok(c) => out.push(c),
                    Err(ConditionError::InvalidDate(d)) => {
                        self.defer(P_LEGACY, Reason::InvalidDate(d));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A string or a list of strings.
fn strings(value: Node, field: &'static str) -> Result<Vec<String>, Reason> {
    match value {
        Node::String(s) => Ok(vec![s]),
        Node::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Node::String(s) => Ok(s),
                _ => Err(Reason::WrongType(field)),
            })
            .collect(),
        _ => Err(Reason::WrongType(field)),
    }
}

/// A condition value or list of them: strings, numbers and booleans, all
/// kept as text.
fn condition_values(value: Node) -> Result<Vec<String>, Reason> {
    let scalar = |n: Node| match n {
        Node::String(s) | Node::Number(s) => Ok(s),
        Node::Bool(b) => Ok(b.to_string()),
        _ => Err(Reason::WrongType("Condition")),
    };
    match value {
        Node::Array(items) => items.into_iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

fn principals(value: Node) -> Result<Principals, Reason> {
    let members = match value {
        Node::String(s) if s == "*" => return Ok(Principals::Everyone),
        Node::String(s) => return Err(Reason::InvalidPrincipal(format!("\"{s}\""))),
        Node::Object(members) => members,
        _ => return Err(Reason::WrongType("Principal")),
    };
    let mut aws = Vec::new();
    let mut service = Vec::new();
    let mut federated = Vec::new();
    let mut canonical_user = Vec::new();
    for (kind, value) in members {
        let values = strings(value, "Principal")?;
        match kind.as_str() {
            "AWS" => {
                for v in values {
                    aws.push(
                        aws_principal(&v)
                            .ok_or_else(|| Reason::InvalidPrincipal(format!("\"AWS\":\"{v}\"")))?,
                    );
                }
            }
            "Service" => service.extend(values),
            "Federated" => federated.extend(values),
            "CanonicalUser" => canonical_user.extend(values),
            _ => {
                let shown = values.first().map(String::as_str).unwrap_or_default();
                return Err(Reason::InvalidPrincipal(format!("\"{kind}\":\"{shown}\"")));
            }
        }
    }
    Ok(Principals::Map {
        aws,
        service,
        federated,
        canonical_user,
    })
}

/// `*`, a 12-digit account id, an account root ARN, or another ARN.
fn aws_principal(v: &str) -> Option<AwsPrincipal> {
    let is_account = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
    if v == "*" {
        return Some(AwsPrincipal::Any);
    }
    if is_account(v) {
        return Some(AwsPrincipal::Account(v.to_string()));
    }
    if !v.starts_with("arn:") {
        return None;
    }
    let fields: Vec<&str> = v.splitn(6, ':').collect();
    if let [_, _, "iam", "", account, "root"] = fields.as_slice() {
        if is_account(account) {
            return Some(AwsPrincipal::Account(account.to_string()));
        }
    }
    Some(AwsPrincipal::Arn(v.to_string()))
}

/// A JSON value that keeps every member of an object, in order, and
/// refuses a repeated key.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Number(v.to_string()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Number(v.to_string()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Number(v.to_string()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut members: Vec<(String, Node)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let value = map.next_value()?;
            members.push((key, value));
        }
        Ok(Node::Object(members))
    }
}
