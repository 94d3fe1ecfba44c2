//! Warm pools: `PutWarmPool`, `DescribeWarmPool`, `DeleteWarmPool`. A
//! group's warm pool holds instances launched and booted ahead of need
//! (`Warmed:Stopped` or `Warmed:Running`); a scale-out takes them first and
//! they join in a fraction of a cold boot. Its size is
//! `max(MinSize, MaxGroupPreparedCapacity − DesiredCapacity)`, with
//! `MaxGroupPreparedCapacity` defaulting to the group's `MaxSize`.

use serde_json::{json, Value};

use super::fleet;
use super::groups::{self, instance_json};
use super::shapes::{
    DeleteWarmPoolType, DescribeWarmPoolType, PutWarmPoolType, WarmPoolConfiguration, WarmPoolState,
};
use super::validation;
use crate::context::Ctx;
use crate::error::ApiResult;
use crate::store::Store;

pub fn put(store: &Store, ctx: &Ctx, req: PutWarmPoolType) -> ApiResult<Value> {
    let name = req.auto_scaling_group_name.as_str();
    let min = req.min_size.unwrap_or(0);
    let max_prepared = req.max_group_prepared_capacity;
    if let Some(m) = max_prepared.filter(|m| *m != -1) {
        if m < min {
            return Err(validation(format!(
                "MaxGroupPreparedCapacity ({m}) must be greater than or equal to the warm pool's MinSize ({min}), or -1."
            )));
        }
    }
    store.write(|tx| {
        let mut g = groups::require(tx, ctx, name)?;
        let launch = groups::resolve_launch(tx, ctx, &g.doc)?;
        if launch.spot || g.doc.mixed_instances_policy.is_some() {
            return Err(validation(
                "You can't add a warm pool to an Auto Scaling group that has a mixed instances policy or a launch template that requests Spot Instances.",
            ));
        }
        g.warm_pool = Some(WarmPoolConfiguration {
            min_size: Some(min),
            max_group_prepared_capacity: max_prepared,
            pool_state: Some(req.pool_state.unwrap_or(WarmPoolState::Stopped)),
            instance_reuse_policy: req.instance_reuse_policy.clone(),
            status: None,
        });
        groups::save(tx, &g)?;
        Ok(json!({}))
    })
}

pub fn describe(store: &Store, ctx: &Ctx, req: DescribeWarmPoolType) -> ApiResult<Value> {
    let name = req.auto_scaling_group_name.as_str();
    store.read(|conn| {
        let g = groups::require(conn, ctx, name)?;
        let warm: Vec<Value> = fleet::members(conn, &g)?
            .iter()
            .filter(|i| i.warm())
            .map(instance_json)
            .collect();
        let mut out = json!({"Instances": warm});
        if let Some(cfg) = &g.warm_pool {
            out["WarmPoolConfiguration"] = serde_json::to_value(cfg)?;
        }
        Ok(out)
    })
}

pub fn delete(store: &Store, ctx: &Ctx, req: DeleteWarmPoolType) -> ApiResult<Value> {
    let name = req.auto_scaling_group_name.as_str();
    store.write(|tx| {
        let mut g = groups::require(tx, ctx, name)?;
        if g.warm_pool.is_none() {
            return Err(validation(format!(
                "The Auto Scaling group {name} has no warm pool."
            )));
        }
        // Its instances are terminated by the fleet: a group without a
        // pool keeps no warmed instances.
        g.warm_pool = None;
        groups::save(tx, &g)?;
        Ok(json!({}))
    })
}
