//! AWS STS (Query protocol, `Version=2011-06-15`). So far
//! `GetCallerIdentity`; `AssumeRole` arrives with IAM roles.
//!
//! The smallest service, and the shape of every one: a folder, typed
//! requests and answers, and one registration ([`service`]) that the
//! request pipeline routes by the service's model and signing name.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::context::Ctx;
use crate::error::ApiResult;
use crate::model;
use crate::wire::Service;

/// STS keeps no state of its own.
pub struct Sts;

#[derive(Debug, Default, Deserialize)]
pub struct GetCallerIdentityRequest {}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetCallerIdentityResponse {
    pub user_id: String,
    pub account: String,
    pub arn: String,
}

impl Sts {
    fn get_caller_identity(
        &self,
        ctx: &Ctx,
        _req: GetCallerIdentityRequest,
    ) -> ApiResult<GetCallerIdentityResponse> {
        Ok(GetCallerIdentityResponse {
            user_id: ctx.account.clone(),
            account: ctx.account.clone(),
            arn: ctx.principal_arn.clone(),
        })
    }
}

/// STS, registered once in the request pipeline.
pub fn service() -> Service {
    Service::builder("STS", "sts", "sts", model::sts(), Arc::new(Sts))
        .op("GetCallerIdentity", Sts::get_caller_identity)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_identity_is_the_signing_account() {
        let ctx = Ctx::for_tests(chrono::Utc::now());
        let out = Sts
            .get_caller_identity(&ctx, GetCallerIdentityRequest::default())
            .unwrap();
        assert_eq!(
            serde_json::to_value(out).unwrap(),
            serde_json::json!({"UserId": "000000000000", "Account": "000000000000",
                "Arn": "arn:aws:iam::000000000000:root"})
        );
    }
}
