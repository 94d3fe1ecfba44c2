//! AWS STS (Query protocol, `Version=2011-06-15`): temporary
//! credentials. `AssumeRole` (the role's trust policy with `ExternalId`,
//! session names, durations within the role's maximum, session policies
//! and tags), `GetSessionToken`, `GetCallerIdentity`, `GetAccessKeyInfo`.
//! Sessions are kept by IAM ([`crate::iam::sessions`]); the pipeline then
//! requires their session token and refuses them once expired.

#[rustfmt::skip]
pub mod shapes;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::iam::entities;
use crate::iam::policy::{ContextKeys, PolicyKind};
use crate::iam::sessions::{self, Holder};
use crate::iam::{self, authority, names, Iam, Kind};
use crate::model;
use crate::wire::identity::Identities;
use crate::wire::Service;
use shapes::*;

/// STS acts on IAM's roles and sessions.
pub struct Sts {
    pub iam: Arc<Iam>,
}

/// Longest role chaining session (a role session assuming a role).
const CHAINED_MAX_S: i64 = 3600;
/// `GetSessionToken`'s bounds: users up to 36 hours, the root one hour.
const SESSION_TOKEN_DEFAULT_S: i64 = 43_200;
const SESSION_TOKEN_MAX_S: i64 = 129_600;
const ROOT_SESSION_MAX_S: i64 = 3600;
/// Session policies, packed, at most this many characters.
const PACKED_POLICY_MAX: usize = 2048;

/// STS's `ValidationError`.
fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new("ValidationError", message)
}

fn credentials(issued: &sessions::Issued) -> Credentials {
    Credentials {
        access_key_id: issued.access_key_id.clone(),
        expiration: iam::iam_time(issued.expires_ms),
        secret_access_key: issued.secret.clone(),
        session_token: issued.token.clone(),
    }
}

fn is_role_session(arn: &str) -> bool {
    arn.starts_with("arn:aws:sts::") && arn.contains(":assumed-role/")
}

impl Sts {
    fn assume_role(&self, ctx: &Ctx, req: AssumeRoleRequest) -> ApiResult<AssumeRoleResponse> {
        let denied = || {
            crate::wire::authorize::access_denied(format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {}",
                ctx.principal_arn, req.role_arn
            ))
        };
        let Some((account, resource)) = names::split_arn(&req.role_arn) else {
            return Err(validation(format!(
                "{} is invalid (the role ARN must be arn:aws:iam::<account>:role/<name>)",
                req.role_arn
            )));
        };
        if !resource.starts_with("role/") {
            return Err(validation(format!("{} is not a role ARN", req.role_arn)));
        }
        let role = self
            .iam
            .store
            .read(|conn| entities::get(conn, account, Kind::Role, names::name_of(resource)))?
            .filter(|r| r.arn() == req.role_arn)
            .ok_or_else(denied)?;
        let mut keys =
            ContextKeys::new().with("sts:RoleSessionName", req.role_session_name.clone());
        if let Some(x) = &req.external_id {
            keys.insert("sts:ExternalId", x.clone());
        }
        if let Some(s) = &req.source_identity {
            keys.insert("sts:SourceIdentity", s.clone());
        }
        let tags: Vec<(String, String)> = req
            .tags
            .iter()
            .flatten()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect();
        for (k, v) in &tags {
            keys.insert(&format!("aws:RequestTag/{k}"), v.clone());
        }
        if !tags.is_empty() {
            keys.insert_all("aws:TagKeys", tags.iter().map(|(k, _)| k.clone()));
        }
        authority::may_assume(&self.iam, ctx, &role, &keys)?;
        let max = if is_role_session(&ctx.principal_arn) {
            CHAINED_MAX_S
        } else {
            role.max_session.unwrap_or(3600)
        };
        let duration = req.duration_seconds.unwrap_or(3600);
        if duration > max {
            return Err(validation(
                if max == CHAINED_MAX_S && is_role_session(&ctx.principal_arn) {
                    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".to_string()
                } else {
                    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.".to_string()
                },
            ));
        }
        // Session policies: the inline one and the managed ones named.
        let mut documents = Vec::new();
        if let Some(p) = &req.policy {
            iam::parse_document(p, PolicyKind::Identity)?;
            documents.push(p.clone());
        }
        for d in req.policy_arns.iter().flatten() {
            let arn = d.arn.clone().unwrap_or_default();
            let doc = self
                .iam
                .store
                .read(|conn| iam::policies::document_of(conn, &ctx.account, &arn))?
                .ok_or_else(|| validation(format!("The policy {arn} does not exist.")))?;
            documents.push(doc);
        }
        let packed: usize = documents
            .iter()
            .map(|d| d.chars().filter(|c| !c.is_whitespace()).count())
            .sum();
        if packed > PACKED_POLICY_MAX {
            return Err(ApiError::new(
                "PackedPolicyTooLarge",
                "Packed size of the session policies exceeds the limit.",
            ));
        }
        let packed_percent = (packed * 100 / PACKED_POLICY_MAX) as i64;
        let session = req.role_session_name.clone();
        let principal_arn = names::assumed_role_arn(&role.account, &role.name, &session);
        let user_id = format!("{}:{session}", role.id);
        let issued = sessions::issue(
            &self.iam,
            sessions::Request {
                account: role.account.clone(),
                principal_arn: principal_arn.clone(),
                user_id: user_id.clone(),
                holder: Holder::Role(role.name.clone()),
                policy: (!documents.is_empty())
                    .then(|| serde_json::to_string(&documents).expect("strings serialise")),
                tags,
                source_identity: req.source_identity.clone(),
                now_ms: ctx.now.timestamp_millis(),
                duration_s: duration,
            },
        )?;
        Ok(AssumeRoleResponse {
            assumed_role_user: Some(AssumedRoleUser {
                arn: principal_arn,
                assumed_role_id: user_id,
            }),
            credentials: Some(credentials(&issued)),
            packed_policy_size: (!documents.is_empty()).then_some(packed_percent),
            source_identity: req.source_identity,
        })
    }

    fn get_session_token(
        &self,
        ctx: &Ctx,
        req: GetSessionTokenRequest,
    ) -> ApiResult<GetSessionTokenResponse> {
        if is_role_session(&ctx.principal_arn) || ctx.access_key.starts_with("ASIA") {
            return Err(crate::wire::authorize::access_denied(
                "Cannot call GetSessionToken with session credentials",
            ));
        }
        let root = ctx.principal_arn == crate::wire::identity::root_arn(&ctx.account);
        let max = if root {
            ROOT_SESSION_MAX_S
        } else {
            SESSION_TOKEN_MAX_S
        };
        let duration = req
            .duration_seconds
            .unwrap_or(if root {
                ROOT_SESSION_MAX_S
            } else {
                SESSION_TOKEN_DEFAULT_S
            })
            .min(max);
        let holder = if root {
            Holder::Root
        } else {
            Holder::User(names::name_of(&ctx.principal_arn).to_string())
        };
        let issued = sessions::issue(
            &self.iam,
            sessions::Request {
                account: ctx.account.clone(),
                principal_arn: ctx.principal_arn.clone(),
                user_id: self.iam.user_id_of(&ctx.access_key, &ctx.account)?,
                holder,
                policy: None,
                tags: Vec::new(),
                source_identity: None,
                now_ms: ctx.now.timestamp_millis(),
                duration_s: duration,
            },
        )?;
        Ok(GetSessionTokenResponse {
            credentials: Some(credentials(&issued)),
        })
    }

    fn get_caller_identity(
        &self,
        ctx: &Ctx,
        _req: GetCallerIdentityRequest,
    ) -> ApiResult<GetCallerIdentityResponse> {
        Ok(GetCallerIdentityResponse {
            account: Some(ctx.account.clone()),
            arn: Some(ctx.principal_arn.clone()),
            user_id: Some(self.iam.user_id_of(&ctx.access_key, &ctx.account)?),
        })
    }

    fn get_access_key_info(
        &self,
        _ctx: &Ctx,
        req: GetAccessKeyInfoRequest,
    ) -> ApiResult<GetAccessKeyInfoResponse> {
        let caller = authority::IamIdentities(self.iam.clone()).lookup(&req.access_key_id)?;
        Ok(GetAccessKeyInfoResponse {
            account: caller.map(|c| c.account),
        })
    }
}

/// The ARN an STS call acts on: the role `AssumeRole` names.
fn resources(_ctx: &Ctx, operation: &str, input: &serde_json::Value) -> Vec<String> {
    match (operation, input.get("RoleArn").and_then(|v| v.as_str())) {
        ("AssumeRole", Some(arn)) => vec![arn.to_string()],
        _ => vec!["*".to_string()],
    }
}

/// STS, registered once in the request pipeline.
pub fn service(sts: Arc<Sts>) -> Service {
    Service::builder("STS", "sts", "sts", model::sts(), sts)
        .validation_errors(|e| {
            if e.status >= 500 {
                e
            } else {
                validation(e.message)
            }
        })
        .resources(resources)
        .op("AssumeRole", Sts::assume_role)
        .op("GetSessionToken", Sts::get_session_token)
        .op("GetCallerIdentity", Sts::get_caller_identity)
        .op("GetAccessKeyInfo", Sts::get_access_key_info)
        .build()
}
