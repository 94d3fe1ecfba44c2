//! AWS STS (Query protocol). So far: `GetCallerIdentity`, which proves the
//! Query path end to end; `AssumeRole` arrives with IAM roles.

use serde_json::{json, Value};

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};

pub fn handle(ctx: &Ctx, operation: &str, _input: Value) -> ApiResult<Value> {
    match operation {
        "GetCallerIdentity" => Ok(json!({
            "UserId": ctx.account,
            "Account": ctx.account,
            "Arn": ctx.principal_arn,
        })),
        other => Err(ApiError::unknown_operation(format!(
            "Berth does not implement the STS operation {other} yet."
        ))),
    }
}
