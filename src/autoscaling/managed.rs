//! ECS managed scaling and managed termination protection, run with the
//! fleet: for each capacity provider with managed scaling, the tasks
//! waiting in PROVISIONING are placed as instances join, then
//! `CapacityProviderReservation` = M/N × 100 (M: instances running tasks
//! plus those the waiting tasks need, packed first-fit; N: the group's
//! instances, but idle draining ones, which are leaving) sets the group's
//! desired capacity to reach the target (step sizes and bounds applied;
//! scale-in only after `scale_in_after_ms` below target); with managed
//! termination protection, instances running tasks are protected.
//!
//! It lives with Auto Scaling, which it drives, and reads ECS through
//! ECS's own functions. [`Groups`] is what ECS asks of Auto Scaling groups.

use std::collections::HashSet;

use rusqlite::Connection;

use super::fleet;
use super::groups::{self, GroupRow};
use crate::catalog;
use crate::context::Ctx;
use crate::ecs::capacity_providers::{self, GroupFacts, ScalingGroups};
use crate::ecs::{instances, tasks};
use crate::error::ApiResult;
use crate::settings::FleetSettings;

/// Auto Scaling groups as ECS's capacity providers see them.
pub struct Groups;

/// The group an ARN names, in an account and region.
fn group_of(
    conn: &Connection,
    account: &str,
    region: &str,
    arn: &str,
) -> ApiResult<Option<GroupRow>> {
    let name = arn
        .split_once(":autoScalingGroupName/")
        .map_or(arn, |(_, n)| n);
    Ok(groups::find(conn, account, region, name)?.filter(|g| g.arn == arn))
}

impl ScalingGroups for Groups {
    fn group(&self, conn: &Connection, ctx: &Ctx, arn: &str) -> ApiResult<Option<GroupFacts>> {
        Ok(groups::find_named(conn, ctx, arn)?
            .filter(|g| g.arn == arn)
            .map(|g| GroupFacts {
                arn: g.arn.clone(),
                protects_new_instances: groups::protects_new_instances(&g),
            }))
    }

    fn container_instances(
        &self,
        conn: &Connection,
        account: &str,
        region: &str,
        group_arn: &str,
    ) -> ApiResult<HashSet<String>> {
        let Some(g) = group_of(conn, account, region, group_arn)? else {
            return Ok(HashSet::new());
        };
        Ok(fleet::members(conn, &g)?
            .into_iter()
            .filter_map(|i| i.container_instance_arn)
            .collect())
    }
}

/// `CapacityProviderReservation`: the instances the provider needs (`m`,
/// those running tasks plus those the waiting tasks need) over those it has
/// (`n`), ×100. ECS's conventions: 100 when both are zero, 200 when tasks
/// wait and there are no instances.
pub fn reservation(m: i64, n: i64) -> f64 {
    match (m, n) {
        (0, 0) => 100.0,
        (_, 0) => 200.0,
        _ => m as f64 * 100.0 / n as f64,
    }
}

/// How many instances of `capacity` (cpu, memory) the `tasks` (cpu, memory
/// each) need, packed first-fit in decreasing size. A task larger than an
/// empty instance needs none (it can never be placed).
pub fn instances_needed(capacity: (i64, i64), tasks: &[(i64, i64)]) -> i64 {
    let mut sorted: Vec<(i64, i64)> = tasks
        .iter()
        .copied()
        .filter(|(c, m)| *c <= capacity.0 && *m <= capacity.1)
        .collect();
    sorted.sort_by_key(|(c, m)| std::cmp::Reverse((*m, *c)));
    let mut bins: Vec<(i64, i64)> = Vec::new();
    for (c, m) in sorted {
        match bins.iter_mut().find(|b| b.0 >= c && b.1 >= m) {
            Some(b) => {
                b.0 -= c;
                b.1 -= m;
            }
            None => bins.push((capacity.0 - c, capacity.1 - m)),
        }
    }
    bins.len() as i64
}

/// The desired capacity managed scaling asks for: enough instances that
/// `m` of them are `target`% of the group, moved from `current` by at least
/// the minimum and at most the maximum step, within the group's bounds.
pub fn desired_for(
    m: i64,
    current: i64,
    target: i64,
    min_step: i64,
    max_step: i64,
    bounds: (i64, i64),
) -> i64 {
    let want = (m * 100 + target.max(1) - 1) / target.max(1);
    let next = if want > current {
        current + (want - current).clamp(min_step.max(1), max_step.max(1))
    } else if want < current {
        current - (current - want).min(max_step.max(1))
    } else {
        current
    };
    next.clamp(bounds.0, bounds.1)
}

/// Managed scaling for every provider that has it, after placing the tasks
/// waiting for capacity. Returns whether anything changed.
pub fn tick(
    tx: &Connection,
    at: instances::Liveness,
    settings: &FleetSettings,
    rng: &mut dyn FnMut(usize) -> usize,
) -> ApiResult<bool> {
    let now_ms = at.now_ms;
    let mut changed = tasks::place_pending(tx, &Groups, at, rng)?;
    for mut p in capacity_providers::all_active(tx)? {
        let Some(mut g) = group_of(tx, &p.account, &p.region, &p.group_arn)? else {
            continue;
        };
        if g.deleting {
            continue;
        }
        let members: Vec<fleet::InstanceRow> = fleet::members(tx, &g)?
            .into_iter()
            .filter(|i| !i.warm())
            .collect();
        // Which registered members run tasks (`None`: not registered), and
        // how many members count as capacity: an idle member that drains
        // is on its way out and takes no task.
        let mut running = Vec::with_capacity(members.len());
        let mut leaving = 0;
        for i in &members {
            running.push(match &i.container_instance_arn {
                Some(arn) => {
                    let busy = instances::live_task_count(tx, arn)? > 0;
                    let draining = instances::load(tx, arn)?
                        .is_some_and(|r| r.status == instances::InstanceStatus::Draining);
                    leaving += i64::from(draining && !busy);
                    Some(busy)
                }
                None => None,
            });
        }
        if p.managed_termination_protection() {
            for (i, busy) in members.iter().zip(&running) {
                if let Some(busy) = *busy {
                    if busy != i.protected {
                        fleet::set_protected(tx, &i.id, busy)?;
                        changed = true;
                    }
                }
            }
        }
        if !p.managed_scaling() {
            continue;
        }
        let busy = running.iter().filter(|b| **b == Some(true)).count() as i64;
        let waiting = tasks::pending_reservations(tx, &p.name, &p.account, &p.region)?;
        let ctx = Ctx::internal(&p.account, &p.region, now_ms);
        let capacity = groups::resolve_launch(tx, &ctx, &g.doc)
            .ok()
            .and_then(|l| l.types.first().cloned())
            .and_then(|t| catalog::find(&t))
            .map(catalog::ecs_registered_resources)
            .unwrap_or((0, 0));
        let m = busy + instances_needed(capacity, &waiting);
        let n = members.len() as i64 - leaving;
        let scaling = p.scaling();
        let target = scaling.target_capacity;
        let metric = reservation(m, n);
        // The members on their way out stay in the group's count.
        let next = desired_for(
            m,
            g.desired - leaving,
            target,
            scaling.minimum_step,
            scaling.maximum_step,
            ((g.min - leaving).max(0), (g.max - leaving).max(0)),
        ) + leaving;
        let below = metric < target as f64;
        let since = capacity_providers::below_target_since(&p);
        match (below, since) {
            (true, None) => capacity_providers::set_below_target_since(tx, &mut p, Some(now_ms))?,
            (false, Some(_)) => capacity_providers::set_below_target_since(tx, &mut p, None)?,
            _ => {}
        }
        let scale_in_due = since.is_some_and(|s| now_ms - s >= settings.scale_in_after_ms);
        let apply = (next > g.desired) || (next < g.desired && below && scale_in_due);
        if apply {
            let why = format!(
                "a monitor alarm TargetTracking-{}-Alarm{} in state ALARM triggered policy ECSManagedAutoScalingPolicy-{} (CapacityProviderReservation {metric:.0} against target {target})",
                g.name,
                if next > g.desired { "High" } else { "Low" },
                p.name
            );
            tracing::info!(provider = %p.name, group = %g.name, from = g.desired, to = next, reservation = metric, "managed scaling");
            let scaled_in = next < g.desired;
            groups::change_desired(tx, &mut g, next, &why, now_ms)?;
            if scaled_in {
                // The next scale-in waits for another full period below target.
                capacity_providers::set_below_target_since(tx, &mut p, None)?;
            }
            changed = true;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservation_conventions() {
        assert_eq!(reservation(0, 0), 100.0);
        assert_eq!(reservation(3, 0), 200.0);
        assert_eq!(reservation(1, 2), 50.0);
        assert_eq!(reservation(3, 2), 150.0);
    }

    #[test]
    fn packing_counts_instances() {
        let cap = (2048, 3800);
        assert_eq!(instances_needed(cap, &[]), 0);
        assert_eq!(instances_needed(cap, &[(1024, 1000); 2]), 1);
        assert_eq!(instances_needed(cap, &[(1024, 1000); 3]), 2);
        assert_eq!(instances_needed(cap, &[(256, 3000), (256, 3000)]), 2);
        // Too big for any instance: needs none.
        assert_eq!(instances_needed(cap, &[(4096, 100)]), 0);
    }

    #[test]
    fn desired_follows_target_and_steps() {
        // 3 needed at target 100: 3.
        assert_eq!(desired_for(3, 0, 100, 1, 10000, (0, 10)), 3);
        // Target 50: twice as many.
        assert_eq!(desired_for(3, 0, 50, 1, 10000, (0, 10)), 6);
        // Maximum step 2.
        assert_eq!(desired_for(5, 0, 100, 1, 2, (0, 10)), 2);
        // Minimum step 3.
        assert_eq!(desired_for(1, 0, 100, 3, 10, (0, 10)), 3);
        // Scale in, bounded by the group.
        assert_eq!(desired_for(0, 3, 100, 1, 10000, (1, 10)), 1);
        assert_eq!(desired_for(0, 3, 100, 1, 10000, (0, 10)), 0);
        // Above the group's max: the max.
        assert_eq!(desired_for(20, 0, 100, 1, 10000, (0, 3)), 3);
    }
}
