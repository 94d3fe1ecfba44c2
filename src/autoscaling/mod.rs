//! Amazon EC2 Auto Scaling (Query protocol, `Version=2011-01-01`): the
//! subset Berth serves.
//!
//! * groups (`groups.rs`): `CreateAutoScalingGroup`, `UpdateAutoScalingGroup`,
//!   `DescribeAutoScalingGroups`, `DeleteAutoScalingGroup`,
//!   `SetDesiredCapacity`, `TerminateInstanceInAutoScalingGroup`,
//!   `SetInstanceProtection`, `DescribeScalingActivities`,
//!   `DescribeAutoScalingInstances`;
//! * warm pools (`warm_pools.rs`): `PutWarmPool`, `DescribeWarmPool`,
//!   `DeleteWarmPool`;
//! * what a group does next (`plan.rs`, pure) and the fleet that does it
//!   (`fleet.rs`): launching local EC2 instances from the group's launch
//!   template, booting them, registering them with the cluster their user
//!   data names, warm pools, scale-in, spot interruptions.
//!
//! API calls only record what is wanted (a group's desired capacity); the
//! fleet, run by `berth server` every few hundred milliseconds, brings the
//! instances to it. Errors carry Auto Scaling's codes (`ValidationError`,
//! `AlreadyExists`, `ResourceInUse`, `ScalingActivityInProgress`).

pub mod controller;
pub mod fleet;
pub mod groups;
pub mod managed;
pub mod plan;
#[rustfmt::skip]
pub mod shapes;
pub mod warm_pools;

use serde_json::Value;

use std::sync::Arc;

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::events::{Bus, Topic};
use crate::model;
use crate::settings::Settings;
use crate::store::Store;
use crate::wire::Service;

pub use crate::settings::FleetSettings;

/// Auto Scaling's state: the store, the bus and the fleet's settings.
pub struct Autoscaling {
    pub store: Arc<Store>,
    pub bus: Arc<Bus>,
    pub settings: Arc<Settings>,
}

/// EC2 Auto Scaling (the subset Berth serves), registered once in the
/// request pipeline. After each call the fleet acts on what changed at once
/// rather than at its next tick.
pub fn service(state: Arc<Autoscaling>) -> Service {
    /// A call that changes what the fleet acts on: the fleet is woken
    /// after it, rather than at its next tick.
    fn waking<Req>(
        f: impl Fn(&Autoscaling, &Ctx, Req) -> ApiResult<Value> + Send + Sync,
    ) -> impl Fn(&Autoscaling, &Ctx, Req) -> ApiResult<Value> + Send + Sync {
        move |a, ctx, req| {
            let out = f(a, ctx, req);
            a.bus.wake(Topic::Fleet);
            out
        }
    }
    Service::builder(
        "EC2 Auto Scaling",
        "autoscaling",
        "autoscaling",
        model::autoscaling(),
        state,
    )
    .op(
        "CreateAutoScalingGroup",
        waking(|e, c, r| groups::create(&e.store, c, r)),
    )
    .op(
        "UpdateAutoScalingGroup",
        waking(|e, c, r| groups::update(&e.store, c, r)),
    )
    .op("DescribeAutoScalingGroups", |e: &Autoscaling, c, r| {
        groups::describe(&e.store, c, r)
    })
    .op(
        "DeleteAutoScalingGroup",
        waking(|e, c, r| groups::delete(&e.store, c, r)),
    )
    .op(
        "SetDesiredCapacity",
        waking(|e, c, r| groups::set_desired_capacity(&e.store, c, r)),
    )
    .op(
        "TerminateInstanceInAutoScalingGroup",
        waking(groups::terminate_instance),
    )
    .op(
        "SetInstanceProtection",
        waking(|e, c, r| groups::set_instance_protection(&e.store, c, r)),
    )
    .op("DescribeScalingActivities", |e: &Autoscaling, c, r| {
        groups::describe_activities(&e.store, c, r)
    })
    .op("DescribeAutoScalingInstances", |e: &Autoscaling, c, r| {
        groups::describe_instances(&e.store, c, r)
    })
    .op(
        "PutWarmPool",
        waking(|e, c, r| warm_pools::put(&e.store, c, r)),
    )
    .op("DescribeWarmPool", |e: &Autoscaling, c, r| {
        warm_pools::describe(&e.store, c, r)
    })
    .op(
        "DeleteWarmPool",
        waking(|e, c, r| warm_pools::delete(&e.store, c, r)),
    )
    .validation_errors(validation_error)
    .build()
}

/// Auto Scaling's `ValidationError`.
pub fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new("ValidationError", message)
}

/// A model validation failure, in Auto Scaling's words.
pub fn validation_error(e: ApiError) -> ApiError {
    if e.status >= 500 {
        e
    } else {
        validation(e.message)
    }
}
