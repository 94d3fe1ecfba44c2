//! The placement function as first written: a straightforward scan of every
//! instance for every task, on a clone of the snapshot. Kept, for tests
//! only, as the reference the indexed [`super::Placer`] must agree with
//! decision for decision (same placements, same failures, same calls to
//! `rng`).

use std::collections::BTreeMap;

use super::query::Subject;
use super::*;

/// Places `req.count` tasks on `instances`.
///
/// Each task goes through the filters in this order, and an instance that
/// fails one is reported with that filter's reason: agent connected
/// ([`REASON_AGENT`]), required attributes ([`REASON_ATTRIBUTE`]), CPU,
/// memory, TCP ports, UDP ports (`RESOURCE:*`), then each constraint in
/// order ([`REASON_DISTINCT_INSTANCE`], [`REASON_MEMBER_OF`]). The
/// strategies then narrow the survivors in order; ties left at the end are
/// broken with `rng`, which is called with the number of tied instances and
/// must return an index below it.
///
/// Tasks that fit are placed even when later ones don't (RunTask returns
/// them in `tasks` beside the `failures`). Once one task can't be placed,
/// none of the rest can (nothing changed), so placement stops there and the
/// failures are reported once, one per ACTIVE instance.
///
/// Instances that are not ACTIVE are never candidates and are not reported;
/// with no ACTIVE instance at all, the answer is
/// [`PlaceError::NoContainerInstances`].
pub fn reference_place(
    instances: &[Instance],
    req: &Request,
    rng: &mut impl FnMut(usize) -> usize,
) -> Result<Decision, PlaceError> {
    if !instances.iter().any(|i| i.active) {
        return Err(PlaceError::NoContainerInstances);
    }
    let mut snap: Vec<Instance> = instances.to_vec();
    // Tasks of this request on each instance (for spread and
    // distinctInstance when the request names no group).
    let mut placed_here = vec![0usize; snap.len()];
    let mut decision = Decision::default();

    for _ in 0..req.count {
        let mut candidates = Vec::new();
        let mut rejections = Vec::new();
        for (k, inst) in snap.iter().enumerate() {
            if !inst.active {
                continue;
            }
            match reject_reason(inst, placed_here[k], req) {
                None => candidates.push(k),
                Some(reason) => rejections.push(Failure {
                    arn: Some(inst.arn.clone()),
                    reason: reason.to_string(),
                }),
            }
        }
        if candidates.is_empty() {
            decision.failures = rejections;
            break;
        }
        let k = choose(&snap, &placed_here, &candidates, req, rng);
        let inst = &mut snap[k];
        inst.remaining_cpu -= req.cpu;
        inst.remaining_memory -= req.memory;
        inst.ports_tcp.extend(req.ports_tcp.iter().copied());
        inst.ports_udp.extend(req.ports_udp.iter().copied());
        inst.pending_tasks_count += 1;
        if let Some(g) = &req.group {
            inst.task_groups.push(g.clone());
        }
        placed_here[k] += 1;
        decision.placed.push(inst.arn.clone());
    }
    Ok(decision)
}

/// Why `inst` can't take one more task of `req`, or `None` when it can.
fn reject_reason(inst: &Instance, placed_here: usize, req: &Request) -> Option<&'static str> {
    if !inst.agent_connected {
        return Some(REASON_AGENT);
    }
    let has_attr =
        |(name, value): &(String, Option<String>)| match (inst.attributes.get(name), value) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(have), Some(want)) => have.as_deref() == Some(want.as_str()),
        };
    if !req.required_attributes.iter().all(has_attr) {
        return Some(REASON_ATTRIBUTE);
    }
    if inst.remaining_cpu < req.cpu {
        return Some(REASON_CPU);
    }
    if inst.remaining_memory < req.memory {
        return Some(REASON_MEMORY);
    }
    if req.ports_tcp.iter().any(|p| inst.ports_tcp.contains(p)) {
        return Some(REASON_PORTS);
    }
    if req.ports_udp.iter().any(|p| inst.ports_udp.contains(p)) {
        return Some(REASON_PORTS_UDP);
    }
    for c in &req.constraints {
        match c {
            Constraint::DistinctInstance => {
                let group_here = req
                    .group
                    .as_ref()
                    .is_some_and(|g| inst.task_groups.contains(g));
                if placed_here > 0 || group_here {
                    return Some(REASON_DISTINCT_INSTANCE);
                }
            }
            Constraint::MemberOf(e) => {
                if !e.eval(inst) {
                    return Some(REASON_MEMBER_OF);
                }
            }
        }
    }
    None
}

/// Tasks of the request's group on an instance of the snapshot.
fn group_tasks(inst: &Instance, placed_here: usize, req: &Request) -> usize {
    match &req.group {
        Some(g) => inst.task_groups.iter().filter(|t| *t == g).count(),
        None => placed_here,
    }
}

/// Narrows `candidates` (non-empty) strategy by strategy, then breaks ties
/// with `rng`.
fn choose(
    snap: &[Instance],
    placed_here: &[usize],
    candidates: &[usize],
    req: &Request,
    rng: &mut impl FnMut(usize) -> usize,
) -> usize {
    let mut pick = |n: usize| if n <= 1 { 0 } else { rng(n) % n };
    let mut set: Vec<usize> = candidates.to_vec();
    for s in &req.strategies {
        if set.len() <= 1 {
            break;
        }
        match s {
            Strategy::Random => {
                let k = set[pick(set.len())];
                set = vec![k];
            }
            Strategy::Binpack(field) => {
                let left = |k: usize| match field {
                    BinpackField::Cpu => snap[k].remaining_cpu - req.cpu,
                    BinpackField::Memory => snap[k].remaining_memory - req.memory,
                };
                let least = set.iter().map(|&k| left(k)).min().unwrap_or(0);
                set.retain(|&k| left(k) == least);
            }
            Strategy::Spread(SpreadField::InstanceId) => {
                let tasks = |k: usize| group_tasks(&snap[k], placed_here[k], req);
                let fewest = set.iter().map(|&k| tasks(k)).min().unwrap_or(0);
                set.retain(|&k| tasks(k) == fewest);
            }
            Strategy::Spread(SpreadField::Attribute(name)) => {
                // Tasks of the group per value of the attribute, over every
                // instance of the cluster (an instance without the attribute
                // counts under "no value").
                let value = |k: usize| -> Option<Option<&str>> { snap[k].attribute(name) };
                let mut per_value: BTreeMap<Option<Option<&str>>, usize> = BTreeMap::new();
                for (k, inst) in snap.iter().enumerate() {
                    *per_value.entry(value(k)).or_default() +=
                        group_tasks(inst, placed_here[k], req);
                }
                let tasks = |k: usize| per_value.get(&value(k)).copied().unwrap_or(0);
                let fewest = set.iter().map(|&k| tasks(k)).min().unwrap_or(0);
                set.retain(|&k| tasks(k) == fewest);
            }
        }
    }
    set[pick(set.len())]
}
