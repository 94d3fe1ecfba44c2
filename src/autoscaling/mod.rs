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

use crate::context::Ctx;
use crate::ecs::Ecs;
use crate::error::{ApiError, ApiResult};

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

/// Run one Auto Scaling operation; `input` has been validated against the model.
pub fn handle(ecs: &Ecs, ctx: &Ctx, operation: &str, input: Value) -> ApiResult<Value> {
    let out = match operation {
        "CreateAutoScalingGroup" => groups::create(&ecs.store, ctx, &input),
        "UpdateAutoScalingGroup" => groups::update(&ecs.store, ctx, &input),
        "DescribeAutoScalingGroups" => groups::describe(&ecs.store, ctx, &input),
        "DeleteAutoScalingGroup" => groups::delete(&ecs.store, ctx, &input),
        "SetDesiredCapacity" => groups::set_desired_capacity(&ecs.store, ctx, &input),
        "TerminateInstanceInAutoScalingGroup" => groups::terminate_instance(ecs, ctx, &input),
        "SetInstanceProtection" => groups::set_instance_protection(&ecs.store, ctx, &input),
        "DescribeScalingActivities" => groups::describe_activities(&ecs.store, ctx, &input),
        "DescribeAutoScalingInstances" => groups::describe_instances(&ecs.store, ctx, &input),
        "PutWarmPool" => warm_pools::put(&ecs.store, ctx, &input),
        "DescribeWarmPool" => warm_pools::describe(&ecs.store, ctx, &input),
        "DeleteWarmPool" => warm_pools::delete(&ecs.store, ctx, &input),
        other => Err(ApiError::unknown_operation(format!(
            "Berth does not implement the Auto Scaling operation {other} yet."
        ))),
    }?;
    // The fleet acts on what changed at once rather than at its next tick.
    fleet::wake();
    Ok(out)
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
