//! Amazon EC2 Auto Scaling (Query protocol, `Version=2011-01-01`): the
//! subset Berth serves.
//!
//! * groups (`groups.rs`): `CreateAutoScalingGroup`, `UpdateAutoScalingGroup`,
//!   `DescribeAutoScalingGroups`, `DeleteAutoScalingGroup`,
//!   `SetDesiredCapacity`, `TerminateInstanceInAutoScalingGroup`,
//!   `SetInstanceProtection`, `DescribeScalingActivities`;
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

pub mod fleet;
pub mod groups;
pub mod plan;
pub mod warm_pools;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde_json::Value;

use std::sync::Arc;

use crate::context::Ctx;
use crate::ecs::Ecs;
use crate::error::{ApiError, ApiResult};
use crate::model;
use crate::wire::Service;

static BOOT_MS: AtomicI64 = AtomicI64::new(3_000);
static SPOT_NOTICE_MS: AtomicI64 = AtomicI64::new(120_000);
static SCALE_IN_AFTER_MS: AtomicI64 = AtomicI64::new(900_000);
static INTERRUPTION_RATE_BITS: AtomicU64 = AtomicU64::new(0);

/// How the fleet's instances behave: boot time, spot notice, managed
/// scaling's scale-in delay, the rehearsal interruption rate. Set once by
/// `berth server`.
#[derive(Debug, Clone, Copy)]
pub struct FleetSettings {
    /// From launch to the agent registering a cold instance.
    pub boot_ms: i64,
    /// From a spot interruption notice to termination.
    pub spot_notice_ms: i64,
    /// How long managed scaling's metric must stay below target before it
    /// scales in (ECS: 15 one-minute datapoints).
    pub scale_in_after_ms: i64,
    /// Random spot interruptions per spot instance-hour (0: none).
    pub interruption_rate_per_hour: f64,
}

impl FleetSettings {
    pub fn apply(self) {
        BOOT_MS.store(self.boot_ms.max(0), Ordering::Relaxed);
        SPOT_NOTICE_MS.store(self.spot_notice_ms.max(0), Ordering::Relaxed);
        SCALE_IN_AFTER_MS.store(self.scale_in_after_ms.max(0), Ordering::Relaxed);
        INTERRUPTION_RATE_BITS.store(
            self.interruption_rate_per_hour.max(0.0).to_bits(),
            Ordering::Relaxed,
        );
    }

    pub fn current() -> FleetSettings {
        FleetSettings {
            boot_ms: BOOT_MS.load(Ordering::Relaxed),
            spot_notice_ms: SPOT_NOTICE_MS.load(Ordering::Relaxed),
            scale_in_after_ms: SCALE_IN_AFTER_MS.load(Ordering::Relaxed),
            interruption_rate_per_hour: f64::from_bits(
                INTERRUPTION_RATE_BITS.load(Ordering::Relaxed),
            ),
        }
    }

    /// How long an instance leaving the warm pool takes to join: a stopped
    /// instance starts without its first-boot work (a quarter of a cold
    /// boot), a running one only has its agent register (a tenth).
    pub fn warm_join_ms(&self, from_running: bool) -> i64 {
        if from_running {
            self.boot_ms / 10
        } else {
            self.boot_ms / 4
        }
    }
}

/// EC2 Auto Scaling (the subset Berth serves), registered once in the
/// request pipeline. After each call the fleet acts on what changed at once
/// rather than at its next tick.
pub fn service(ecs: Arc<Ecs>) -> Service {
    type Handler = fn(&Ecs, &Ctx, &Value) -> ApiResult<Value>;
    fn waking(f: Handler) -> impl Fn(&Ecs, &Ctx, Value) -> ApiResult<Value> + Send + Sync {
        move |ecs, ctx, input| {
            let out = f(ecs, ctx, &input);
            fleet::wake();
            out
        }
    }
    Service::builder(
        "EC2 Auto Scaling",
        "autoscaling",
        "autoscaling",
        model::autoscaling(),
        ecs,
    )
    .op(
        "CreateAutoScalingGroup",
        waking(|e, c, i| groups::create(&e.store, c, i)),
    )
    .op(
        "UpdateAutoScalingGroup",
        waking(|e, c, i| groups::update(&e.store, c, i)),
    )
    .op(
        "DescribeAutoScalingGroups",
        waking(|e, c, i| groups::describe(&e.store, c, i)),
    )
    .op(
        "DeleteAutoScalingGroup",
        waking(|e, c, i| groups::delete(&e.store, c, i)),
    )
    .op(
        "SetDesiredCapacity",
        waking(|e, c, i| groups::set_desired_capacity(&e.store, c, i)),
    )
    .op(
        "TerminateInstanceInAutoScalingGroup",
        waking(groups::terminate_instance),
    )
    .op(
        "SetInstanceProtection",
        waking(|e, c, i| groups::set_instance_protection(&e.store, c, i)),
    )
    .op(
        "DescribeScalingActivities",
        waking(|e, c, i| groups::describe_activities(&e.store, c, i)),
    )
    .op(
        "DescribeAutoScalingInstances",
        waking(|e, c, i| groups::describe_instances(&e.store, c, i)),
    )
    .op(
        "PutWarmPool",
        waking(|e, c, i| warm_pools::put(&e.store, c, i)),
    )
    .op(
        "DescribeWarmPool",
        waking(|e, c, i| warm_pools::describe(&e.store, c, i)),
    )
    .op(
        "DeleteWarmPool",
        waking(|e, c, i| warm_pools::delete(&e.store, c, i)),
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
