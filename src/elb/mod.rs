//! Elastic Load Balancing v2 (Query protocol, `Version=2015-12-01`):
//! application load balancers, their listeners and rules, target groups
//! and targets, and the data plane that serves them.
//!
//! * `load_balancers.rs`: `CreateLoadBalancer`, `DescribeLoadBalancers`,
//!   `DeleteLoadBalancer`, `Describe/ModifyLoadBalancerAttributes`,
//!   `SetSecurityGroups`, `SetSubnets`, `DescribeAccountLimits`;
//! * `target_groups.rs`: `CreateTargetGroup`, `DescribeTargetGroups`,
//!   `ModifyTargetGroup`, `Describe/ModifyTargetGroupAttributes`,
//!   `DeleteTargetGroup`;
//! * `targets.rs`: `RegisterTargets`, `DeregisterTargets`,
//!   `DescribeTargetHealth`, and the typed API the ECS service scheduler
//!   registers its tasks through;
//! * `listeners.rs`: listeners and rules, `SetRulePriorities`;
//! * `actions.rs` (pure): actions and conditions checked and read;
//! * `tags.rs`: `AddTags`, `RemoveTags`, `DescribeTags`;
//! * `routes.rs` (pure): what each listener does with a request, and rule
//!   matching; `table.rs` builds it from the store;
//! * `proxy.rs`: the data plane: an HTTP proxy on every listener's
//!   address and port, routing by the current table;
//! * `probe.rs`: the health check's request to a target, and ALB's
//!   success-code matchers;
//! * `cli.rs`: `berth lb`, each load balancer's URL and its targets' health;
//! * `health.rs`: the controller that binds listeners, checks targets'
//!   health and ends deregistrations.
//!
//! API calls record what is wanted; the data plane controller applies it
//! within a moment (it is woken after every change).

pub mod actions;
pub mod cli;
pub mod health;
pub mod listeners;
pub mod load_balancers;
pub mod probe;
pub mod proxy;
pub mod routes;
#[rustfmt::skip]
pub mod shapes;
pub mod table;
pub mod tags;
pub mod target_groups;
pub mod targets;

use std::sync::Arc;

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::events::{Bus, Topic};
use crate::model;
use crate::store::Store;
use crate::wire::Service;

/// How the load balancer reaches a target registered by instance id: the
/// address of the container instance that EC2 instance is (ECS provides
/// it; the load balancer sits below ECS and knows no instances).
pub trait InstanceAddresses: Send + Sync {
    /// The address of instance `instance_id` in (account, region), if it
    /// is a running instance Berth knows.
    fn address(
        &self,
        conn: &rusqlite::Connection,
        account: &str,
        region: &str,
        instance_id: &str,
    ) -> ApiResult<Option<String>>;
}

/// The load balancer's state: the store, the bus, and how instances are
/// found.
pub struct Elb {
    pub store: Arc<Store>,
    pub bus: Arc<Bus>,
    pub instances: Arc<dyn InstanceAddresses>,
}

/// Elastic Load Balancing v2, registered once in the request pipeline.
/// Every call that changes something wakes the data plane.
pub fn service(state: Arc<Elb>) -> Service {
    fn waking<Req, Resp>(
        f: impl Fn(&Elb, &Ctx, Req) -> ApiResult<Resp> + Send + Sync,
    ) -> impl Fn(&Elb, &Ctx, Req) -> ApiResult<Resp> + Send + Sync {
        move |e, ctx, req| {
            let out = f(e, ctx, req);
            if out.is_ok() {
                e.bus.wake(Topic::LoadBalancers);
            }
            out
        }
    }
    Service::builder(
        "Elastic Load Balancing v2",
        "elasticloadbalancing",
        "elasticloadbalancing",
        model::elbv2(),
        state,
    )
    .op("CreateLoadBalancer", waking(load_balancers::create))
    .op("DescribeLoadBalancers", load_balancers::describe)
    .op("DeleteLoadBalancer", waking(load_balancers::delete))
    .op(
        "DescribeLoadBalancerAttributes",
        load_balancers::describe_attributes,
    )
    .op(
        "ModifyLoadBalancerAttributes",
        waking(load_balancers::modify_attributes),
    )
    .op("SetSecurityGroups", load_balancers::set_security_groups)
    .op("SetSubnets", load_balancers::set_subnets)
    .op("DescribeAccountLimits", load_balancers::account_limits)
    .op("CreateTargetGroup", target_groups::create)
    .op("DescribeTargetGroups", target_groups::describe)
    .op("ModifyTargetGroup", waking(target_groups::modify))
    .op(
        "DescribeTargetGroupAttributes",
        target_groups::describe_attributes,
    )
    .op(
        "ModifyTargetGroupAttributes",
        waking(target_groups::modify_attributes),
    )
    .op("DeleteTargetGroup", waking(target_groups::delete))
    .op("RegisterTargets", waking(targets::register))
    .op("DeregisterTargets", waking(targets::deregister))
    .op("DescribeTargetHealth", targets::describe_health)
    .op("CreateListener", waking(listeners::create))
    .op("DescribeListeners", listeners::describe)
    .op("ModifyListener", waking(listeners::modify))
    .op("DeleteListener", waking(listeners::delete))
    .op("CreateRule", waking(listeners::create_rule))
    .op("DescribeRules", listeners::describe_rules)
    .op("ModifyRule", waking(listeners::modify_rule))
    .op("DeleteRule", waking(listeners::delete_rule))
    .op("SetRulePriorities", waking(listeners::set_rule_priorities))
    .op("AddTags", tags::add)
    .op("RemoveTags", tags::remove)
    .op("DescribeTags", tags::describe)
    .validation_errors(validation_error)
    .build()
}

/// ELB's `ValidationError`.
pub fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new("ValidationError", message)
}

/// A model validation failure, in ELB's words.
pub fn validation_error(e: ApiError) -> ApiError {
    if e.status >= 500 {
        e
    } else {
        validation(e.message)
    }
}

/// An ELB error with its code (as the model's error shapes name them).
pub fn error(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

/// The ARN prefix of every ELB resource in the caller's account and region.
pub fn arn_prefix(ctx: &Ctx) -> String {
    format!(
        "arn:aws:elasticloadbalancing:{}:{}:",
        ctx.region, ctx.account
    )
}

/// `n` random lower-case hex digits, as resource ids are made.
pub fn new_hex(n: usize) -> String {
    let mut s = uuid::Uuid::new_v4().simple().to_string();
    s.truncate(n);
    s
}

/// The VPC Berth's load balancers and target groups are in when none is
/// named: the account's default VPC in the region. EC2's VPCs (when they
/// come) make the same id.
pub fn default_vpc(account: &str, region: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("default-vpc/{account}/{region}").as_bytes());
    format!("vpc-{}", &hex::encode(h)[..17])
}

/// A name of a load balancer or target group: 1 to 32 alphanumerics or
/// hyphens, not starting or ending with a hyphen (nor `internal-` for a
/// load balancer).
pub fn check_name(kind: &str, name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(validation(format!(
            "{kind} name '{name}' must have a maximum of 32 characters, can contain only alphanumeric characters or hyphens, and cannot begin or end with a hyphen"
        )))
    }
}

/// The resource's position in a `Marker`/`PageSize` listing: `Marker` is
/// Berth's opaque offset token.
pub fn page<T>(
    items: Vec<T>,
    marker: Option<&str>,
    page_size: Option<i64>,
) -> ApiResult<(Vec<T>, Option<String>)> {
    let size = match page_size {
        None => 400,
        Some(n) if (1..=400).contains(&n) => n as usize,
        Some(_) => return Err(validation("Page size must be between 1 and 400")),
    };
    let start = match marker {
        None => 0,
        Some(m) => {
            crate::paging::offset(m, "elb").ok_or_else(|| validation("The marker is not valid"))?
        }
    };
    Ok(crate::paging::offset_page(items, start, size, "elb"))
}
