//! ECS resource names, in ECS's current (long) ARN format.

use crate::context::Ctx;

/// `arn:aws:ecs:<region>:<account>:<resource>`.
pub fn ecs(region: &str, account: &str, resource: &str) -> String {
    format!("arn:aws:ecs:{region}:{account}:{resource}")
}

/// An ECS ARN in the caller's account and region.
pub fn of(ctx: &Ctx, resource: &str) -> String {
    ecs(&ctx.region, &ctx.account, resource)
}

pub fn cluster(ctx: &Ctx, name: &str) -> String {
    of(ctx, &format!("cluster/{name}"))
}

pub fn task_definition(ctx: &Ctx, family: &str, revision: i64) -> String {
    of(ctx, &format!("task-definition/{family}:{revision}"))
}

pub fn capacity_provider(ctx: &Ctx, name: &str) -> String {
    of(ctx, &format!("capacity-provider/{name}"))
}

/// A resource of a cluster (`task`, `container-instance`): `<kind>/<cluster
/// name>/<id>`.
pub fn in_cluster(ctx: &Ctx, kind: &str, cluster_name: &str, id: &str) -> String {
    of(ctx, &format!("{kind}/{cluster_name}/{id}"))
}

/// What a call names by `ident`: the ARN itself when it is one, else the
/// ARN of that id of `kind` in the cluster.
pub fn resolve_in_cluster(ctx: &Ctx, kind: &str, cluster_name: &str, ident: &str) -> String {
    if ident.starts_with("arn:") {
        ident.to_string()
    } else {
        in_cluster(ctx, kind, cluster_name, ident)
    }
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
