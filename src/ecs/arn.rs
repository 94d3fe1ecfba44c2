//! ECS resource names, in ECS's current (long) ARN format.

use crate::context::Ctx;

pub fn cluster(ctx: &Ctx, name: &str) -> String {
    format!("arn:aws:ecs:{}:{}:cluster/{name}", ctx.region, ctx.account)
}

pub fn task_definition(ctx: &Ctx, family: &str, revision: i64) -> String {
    format!(
        "arn:aws:ecs:{}:{}:task-definition/{family}:{revision}",
        ctx.region, ctx.account
    )
}

/// A parsed ECS ARN: `arn:aws:ecs:<region>:<account>:<kind>/<rest>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsArn<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub kind: &'a str,
    pub rest: &'a str,
}

pub fn parse(arn: &str) -> Option<EcsArn<'_>> {
    let mut parts = arn.splitn(6, ':');
    let (a, p, svc, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if a != "arn" || !p.starts_with("aws") || svc != "ecs" {
        return None;
    }
    let (kind, rest) = resource.split_once('/')?;
    Some(EcsArn {
        region,
        account,
        kind,
        rest,
    })
}

/// Whether an ARN belongs to the caller's account and region.
pub fn is_local(ctx: &Ctx, arn: &EcsArn<'_>) -> bool {
    arn.region == ctx.region && arn.account == ctx.account
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_and_task_definition_arns() {
        let a = parse("arn:aws:ecs:us-east-1:000000000000:cluster/web").unwrap();
        assert_eq!((a.kind, a.rest, a.region), ("cluster", "web", "us-east-1"));
        let t = parse("arn:aws:ecs:eu-west-1:1:task-definition/f:3").unwrap();
        assert_eq!((t.kind, t.rest), ("task-definition", "f:3"));
        assert!(parse("arn:aws:s3:::bucket/x").is_none());
        assert!(parse("cluster/web").is_none());
    }
}
