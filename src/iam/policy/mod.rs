//! IAM policy documents: parsing and evaluation, pure code without IO.
//!
//! A document is parsed once ([`PolicyDocument::parse`]) for its
//! [`PolicyKind`] — identity, role trust, or resource policy — into typed,
//! precompiled statements, or refused with the [`MalformedPolicy`] message
//! IAM gives. It is then evaluated as often as needed:
//!
//! * [`evaluate`] decides a request ([`RequestContext`]) against the
//!   [`Policies`] that apply to it — the caller's identity policies, the
//!   resource's policies, a permissions boundary, session policies — with
//!   AWS's evaluation logic for requests within one account;
//! * [`evaluate_trust`] decides whether a [`Caller`] may assume a role;
//! * [`denial_message`] writes AWS's `User: … is not authorized to
//!   perform: …` message for a denial ([`Decision`]).
//!
//! ```
//! use berth::iam::policy::{evaluate, Policies, PolicyDocument, PolicyKind, RequestContext};
//!
//! let doc = PolicyDocument::parse(
//!     r#"{"Version": "2012-10-17",
//!         "Statement": {"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*"}}"#,
//!     PolicyKind::Identity,
//! )
//! .unwrap();
//! let policies = Policies { identity: vec![&doc], ..Policies::default() };
//! let ctx = RequestContext::new("arn:aws:iam::123456789012:user/alice", "ecs:DescribeClusters", "*");
//! assert!(evaluate(&policies, &ctx).is_allowed());
//! ```
//!
//! The semantics — where the AWS documentation is explicit, and the
//! choices made where it is not — are described where they live: element
//! checks and error messages in [`document`], condition operators in
//! [`condition`], ARN and wildcard matching and policy variables in
//! [`pattern`], statement applicability and the decision in [`eval`].

pub mod condition;
pub mod document;
pub mod eval;
pub mod pattern;

#[cfg(test)]
mod tests;

pub use condition::{Condition, Operator, OperatorName, SetQualifier};
pub use document::{
    ActionBlock, AwsPrincipal, Effect, MalformedPolicy, PolicyDocument, PolicyKind, PrincipalBlock,
    Principals, Reason, ResourceBlock, Statement, Version,
};
pub use eval::{
    denial_message, evaluate, evaluate_trust, Caller, ContextKeys, Decision, Policies, PolicyType,
    RequestContext,
};
