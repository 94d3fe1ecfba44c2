//! EC2 packing: how many instances of which type a set of tasks needs, and
//! what that fleet costs per hour.
//!
//! A task is reduced to its [`Shape`]: the CPU units and MiB ECS reserves for
//! it on a container instance. An instance offers what the ECS agent
//! registers for its type ([`catalog::ecs_registered_resources`]), not its
//! raw size. Tasks are packed onto instances of **one** type at a time, and
//! every priced catalog type of the architecture is tried; the cheapest fleet
//! wins (ties: fewer instances, then the type's name).
//!
//! * [`cheapest`] / [`options`] pack `count` identical tasks (a uniform
//!   workload): `tasks_per_instance = min(cpu fit, memory fit)`.
//! * [`cheapest_for_mix`] packs a mix of shapes with first-fit-decreasing.
//!
//! Only CPU and memory are considered: not ports, ENIs (awsvpc), GPUs or
//! the agent's container limits. Burstable (T-family) types are candidates
//! like the others; [`Packing::burstable`] says when one was chosen, since
//! tasks that hold their CPU for long exceed its baseline and pay for surplus
//! credits, which these prices leave out.
//!
//! Pure: no I/O, no clock. Prices come from [`crate::pricing`].

use std::cmp::Ordering;

use serde::Serialize;

use crate::catalog::{self, Arch, InstanceType};
use crate::pricing;

/// What ECS reserves for one task on a container instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    /// CPU units (1024 per vCPU). 0 means no CPU reservation: the task is
    /// placed by memory alone, as ECS places it.
    pub cpu: u64,
    /// Memory in MiB.
    pub memory_mib: u64,
}

impl Shape {
    /// A shape of `cpu` units and `memory_mib` MiB.
    pub const fn new(cpu: u64, memory_mib: u64) -> Shape {
        Shape { cpu, memory_mib }
    }
}

/// A fleet of instances of one type holding a set of tasks, and its price.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Packing {
    /// The region the prices are for.
    pub region: String,
    /// The EC2 instance type, e.g. `c7i.large`.
    pub instance_type: String,
    /// Whether the type is a burstable T-family type (CPU credits).
    pub burstable: bool,
    /// What one instance registers with ECS: CPU units.
    pub registered_cpu: u64,
    /// What one instance registers with ECS: MiB.
    pub registered_memory_mib: u64,
    /// Instances in the fleet.
    pub instances: u64,
    /// Tasks placed (all of those asked for).
    pub tasks: u64,
    /// For a uniform workload, how many tasks one instance holds; `None` for
    /// a mix.
    pub tasks_per_instance: Option<u64>,
    /// USD per hour of one instance (the spot estimate when `spot`).
    pub instance_hourly_usd: f64,
    /// USD per hour of the whole fleet: `instances × instance_hourly_usd`.
    pub hourly_usd: f64,
    /// Reserved CPU of the tasks over the CPU the fleet registers, 0.0–1.0.
    pub cpu_utilisation: f64,
    /// Reserved memory of the tasks over the memory the fleet registers,
    /// 0.0–1.0.
    pub memory_utilisation: f64,
    /// Priced at the spot estimate rather than on-demand.
    pub spot: bool,
}

impl Packing {
    /// What the fleet costs in USD when every instance runs `seconds`:
    /// per instance, per second rounded up, with EC2's 60-second minimum
    /// (see [`pricing::ec2_cost`]). 0.0 for an empty fleet.
    pub fn cost_for_seconds(&self, seconds: f64) -> f64 {
        if self.instances == 0 {
            return 0.0;
        }
        let one = pricing::ec2_cost(&self.region, &self.instance_type, self.spot, seconds)
            .unwrap_or(self.instance_hourly_usd * seconds.max(0.0) / 3600.0);
        one * self.instances as f64
    }

    /// The order in which packings are preferred: cheaper fleet per hour
    /// first, then fewer instances, then the type's name.
    pub fn preference(&self, other: &Packing) -> Ordering {
        micro_usd(self.hourly_usd)
            .cmp(&micro_usd(other.hourly_usd))
            .then(self.instances.cmp(&other.instances))
            .then_with(|| self.instance_type.cmp(&other.instance_type))
    }
}

/// A price in units of 10⁻⁹ USD, so that prices equal up to float noise
/// compare equal.
fn micro_usd(usd: f64) -> i64 {
    (usd * 1e9).round() as i64
}

/// The catalog types of `arch` that have a price in `region` (on-demand,
/// and a spot estimate when `spot`), in catalog order.
pub fn candidates(region: &str, arch: Arch, spot: bool) -> Vec<&'static InstanceType> {
    catalog::instance_types()
        .iter()
        .filter(|t| t.arch == arch && hourly_price(region, &t.name, spot).is_some())
        .collect()
}

fn hourly_price(region: &str, instance_type: &str, spot: bool) -> Option<f64> {
    if spot {
        pricing::ec2_spot_estimate(region, instance_type)
    } else {
        pricing::ec2_on_demand(region, instance_type)
    }
}

/// What an instance of type `t` registers with ECS, `(CPU units, MiB)`,
/// floored at zero.
pub fn registered(t: &InstanceType) -> (u64, u64) {
    let (cpu, mem) = catalog::ecs_registered_resources(t);
    (cpu.max(0) as u64, mem.max(0) as u64)
}

/// How many tasks of `shape` fit on an instance that registers `cpu` units
/// and `memory_mib` MiB: the smaller of the CPU fit and the memory fit. A
/// dimension the shape does not reserve (0) does not limit; a shape that
/// reserves nothing fits without limit (`u64::MAX`).
pub fn tasks_per_instance(cpu: u64, memory_mib: u64, shape: Shape) -> u64 {
    let by_cpu = cpu.checked_div(shape.cpu).unwrap_or(u64::MAX);
    let by_mem = memory_mib.checked_div(shape.memory_mib).unwrap_or(u64::MAX);
    by_cpu.min(by_mem)
}

fn utilisation(used: u128, per_instance: u64, instances: u64) -> f64 {
    let offered = u128::from(per_instance) * u128::from(instances);
    if offered == 0 {
        0.0
    } else {
        used as f64 / offered as f64
    }
}

/// Pack `count` tasks of `shape` onto instances of type `t` in `region`.
/// `None` when the type has no price there, or a task does not fit on it.
pub fn pack_uniform(
    t: &InstanceType,
    region: &str,
    shape: Shape,
    count: u64,
    spot: bool,
) -> Option<Packing> {
    let price = hourly_price(region, &t.name, spot)?;
    let (cpu, mem) = registered(t);
    let per = tasks_per_instance(cpu, mem, shape);
    if per == 0 {
        return None;
    }
    let per = per.min(count.max(1));
    let instances = count.div_ceil(per);
    Some(Packing {
        region: region.to_string(),
        instance_type: t.name.clone(),
        burstable: t.burstable,
        registered_cpu: cpu,
        registered_memory_mib: mem,
        instances,
        tasks: count,
        tasks_per_instance: Some(per),
        instance_hourly_usd: price,
        hourly_usd: price * instances as f64,
        cpu_utilisation: utilisation(u128::from(shape.cpu) * u128::from(count), cpu, instances),
        memory_utilisation: utilisation(
            u128::from(shape.memory_mib) * u128::from(count),
            mem,
            instances,
        ),
        spot,
    })
}

/// Every way to run `count` concurrent tasks of `shape` on one priced
/// instance type of `arch` in `region`, most preferred (cheapest) first.
pub fn options(region: &str, arch: Arch, shape: Shape, count: u64, spot: bool) -> Vec<Packing> {
    let mut all: Vec<Packing> = candidates(region, arch, spot)
        .into_iter()
        .filter_map(|t| pack_uniform(t, region, shape, count, spot))
        .collect();
    all.sort_by(Packing::preference);
    all
}

/// The cheapest way to run `count` concurrent tasks of `shape` on instances
/// of one type of `arch` in `region` (ties: fewer instances, then name).
/// `None` when no priced type of that architecture holds one task.
pub fn cheapest(region: &str, arch: Arch, shape: Shape, count: u64, spot: bool) -> Option<Packing> {
    candidates(region, arch, spot)
        .into_iter()
        .filter_map(|t| pack_uniform(t, region, shape, count, spot))
        .min_by(Packing::preference)
}

/// Free capacity of one open instance during first-fit.
#[derive(Clone, Copy)]
struct Bin {
    cpu: u64,
    mem: u64,
}

/// Pack a mix of task shapes — `(shape, how many)` — onto instances of type
/// `t` with first-fit-decreasing: shapes in decreasing order of the larger of
/// their CPU and memory share of the instance, each task into the first open
/// instance with room, a new instance when none has. `None` when the type
/// has no price in `region` or some shape (with a count above 0) does not fit
/// on it. Shapes may repeat; an empty mix packs onto 0 instances.
pub fn pack_mix(
    t: &InstanceType,
    region: &str,
    shapes: &[(Shape, u64)],
    spot: bool,
) -> Option<Packing> {
    let price = hourly_price(region, &t.name, spot)?;
    let (cpu, mem) = registered(t);
    // Identical shapes are merged: first fit puts them where it would one by
    // one, since they sort next to each other.
    let mut merged: std::collections::BTreeMap<Shape, u64> = std::collections::BTreeMap::new();
    for &(s, n) in shapes.iter().filter(|&&(_, n)| n > 0) {
        *merged.entry(s).or_default() += n;
    }
    let mut order: Vec<(Shape, u64)> = merged.into_iter().collect();
    if order
        .iter()
        .any(|&(s, _)| tasks_per_instance(cpu, mem, s) == 0)
    {
        return None;
    }
    // Decreasing by the dominant share of the instance (compared exactly as
    // fractions), then by memory and CPU.
    let share = |s: Shape| -> (u128, u128) {
        let c = u128::from(s.cpu) * u128::from(mem.max(1));
        let m = u128::from(s.memory_mib) * u128::from(cpu.max(1));
        (c.max(m), u128::from(cpu.max(1)) * u128::from(mem.max(1)))
    };
    order.sort_by(|&(a, _), &(b, _)| {
        let ((an, ad), (bn, bd)) = (share(a), share(b));
        (bn * ad)
            .cmp(&(an * bd))
            .then(b.memory_mib.cmp(&a.memory_mib))
            .then(b.cpu.cmp(&a.cpu))
    });

    let mut bins: Vec<Bin> = Vec::new();
    // Index of the first bin that may still have room for anything; bins
    // before it are full for every shape seen so far and stay skipped only
    // while they are full in both dimensions.
    let mut first_open = 0usize;
    let (mut used_cpu, mut used_mem, mut tasks) = (0u128, 0u128, 0u64);
    for &(shape, count) in &order {
        used_cpu += u128::from(shape.cpu) * u128::from(count);
        used_mem += u128::from(shape.memory_mib) * u128::from(count);
        tasks += count;
        let mut left = count;
        // First fit over open instances. Identical tasks go, in bulk, where
        // one-at-a-time first fit would put them: once an instance cannot
        // take another task of this shape, no later task of it fits there.
        for bin in bins.iter_mut().skip(first_open) {
            if left == 0 {
                break;
            }
            let k = tasks_per_instance(bin.cpu, bin.mem, shape).min(left);
            if k > 0 {
                bin.cpu -= shape.cpu * k;
                bin.mem -= shape.memory_mib * k;
                left -= k;
            }
        }
        while first_open < bins.len() && bins[first_open].cpu == 0 && bins[first_open].mem == 0 {
            first_open += 1;
        }
        // New instances for the rest, each filled as far as it goes.
        let per = tasks_per_instance(cpu, mem, shape);
        while left > 0 {
            let k = per.min(left);
            bins.push(Bin {
                cpu: cpu - shape.cpu * k,
                mem: mem - shape.memory_mib * k,
            });
            left -= k;
        }
    }
    let instances = bins.len() as u64;
    Some(Packing {
        region: region.to_string(),
        instance_type: t.name.clone(),
        burstable: t.burstable,
        registered_cpu: cpu,
        registered_memory_mib: mem,
        instances,
        tasks,
        tasks_per_instance: None,
        instance_hourly_usd: price,
        hourly_usd: price * instances as f64,
        cpu_utilisation: utilisation(used_cpu, cpu, instances),
        memory_utilisation: utilisation(used_mem, mem, instances),
        spot,
    })
}

/// The cheapest way to run a mix of task shapes — `(shape, how many)` — at
/// once on instances of one priced type of `arch` in `region`, packed with
/// first-fit-decreasing ([`pack_mix`]); ties go to fewer instances, then
/// the name. `None` when no such type holds every shape.
pub fn cheapest_for_mix(
    region: &str,
    arch: Arch,
    shapes: &[(Shape, u64)],
    spot: bool,
) -> Option<Packing> {
    candidates(region, arch, spot)
        .into_iter()
        .filter_map(|t| pack_mix(t, region, shapes, spot))
        .min_by(Packing::preference)
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "us-east-1";

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn ty(name: &str) -> &'static InstanceType {
        catalog::find(name).unwrap()
    }

    #[test]
    fn fit_is_the_smaller_of_cpu_and_memory() {
        // An instance registering 2048 CPU / 7985 MiB (an m5.large) holds
        // two 1024/2048 tasks: CPU allows 2, memory 3.
        assert_eq!(tasks_per_instance(2048, 7985, Shape::new(1024, 2048)), 2);
        assert_eq!(tasks_per_instance(8192, 7985, Shape::new(1024, 2048)), 3);
        assert_eq!(tasks_per_instance(2048, 7985, Shape::new(0, 4096)), 1);
        assert_eq!(tasks_per_instance(2048, 7985, Shape::new(4096, 512)), 0);
        assert_eq!(tasks_per_instance(2048, 7985, Shape::new(0, 0)), u64::MAX);
    }

    #[test]
    fn uniform_packing_counts_and_utilisation() {
        // m5.large: 2 vCPU, 8 GiB → registers 2048 CPU, 7985 MiB.
        let t = ty("m5.large");
        assert_eq!(registered(t), (2048, 7985));
        let p = pack_uniform(t, R, Shape::new(1024, 2048), 5, false).unwrap();
        assert_eq!(p.tasks_per_instance, Some(2));
        assert_eq!(p.instances, 3);
        let od = pricing::ec2_on_demand(R, "m5.large").unwrap();
        assert!(close(p.hourly_usd, 3.0 * od));
        assert!(close(p.cpu_utilisation, 5.0 * 1024.0 / (3.0 * 2048.0)));
        assert!(close(p.memory_utilisation, 5.0 * 2048.0 / (3.0 * 7985.0)));
        // Fewer tasks than fit: one instance, tasks_per_instance = count.
        let p = pack_uniform(t, R, Shape::new(256, 512), 3, false).unwrap();
        assert_eq!((p.instances, p.tasks_per_instance), (1, Some(3)));
        // Too big for the type.
        assert!(pack_uniform(t, R, Shape::new(4096, 512), 1, false).is_none());
        // A 4 GiB task does not fit a 4 GiB instance (it registers 3992 MiB).
        assert!(pack_uniform(ty("c7i.large"), R, Shape::new(1024, 4096), 1, false).is_none());
    }

    #[test]
    fn spot_uses_the_spot_estimate() {
        let t = ty("c7i.large");
        let p = pack_uniform(t, R, Shape::new(512, 512), 4, true).unwrap();
        let spot = pricing::ec2_spot_estimate(R, "c7i.large").unwrap();
        assert!(p.spot);
        assert!(close(p.instance_hourly_usd, spot));
        assert!(close(p.hourly_usd, spot * p.instances as f64));
    }

    #[test]
    fn cheapest_is_the_minimum_of_the_options_and_respects_arch() {
        let shape = Shape::new(1024, 2048);
        for arch in [Arch::X86_64, Arch::Arm64] {
            for spot in [false, true] {
                let all = options(R, arch, shape, 10, spot);
                assert!(!all.is_empty());
                assert!(all
                    .iter()
                    .all(|p| catalog::find(&p.instance_type).unwrap().arch == arch));
                let best = cheapest(R, arch, shape, 10, spot).unwrap();
                assert_eq!(best, all[0]);
                assert!(all.iter().all(|p| p.hourly_usd >= best.hourly_usd - 1e-9));
            }
        }
        let arm = cheapest(R, Arch::Arm64, shape, 10, false).unwrap();
        assert!(arm.instance_type.contains('g'), "{}", arm.instance_type);
    }

    #[test]
    fn ties_prefer_fewer_instances_then_name() {
        let mut a = pack_uniform(ty("m5.large"), R, Shape::new(1024, 2048), 4, false).unwrap();
        let mut b = a.clone();
        b.instance_type = "a.large".into();
        assert_eq!(a.preference(&b), Ordering::Greater);
        b.instances = a.instances + 1;
        assert_eq!(a.preference(&b), Ordering::Less);
        a.hourly_usd += 0.01;
        assert_eq!(a.preference(&b), Ordering::Greater);
    }

    #[test]
    fn fleet_cost_bills_each_instance_with_the_minimum() {
        let p = pack_uniform(ty("m5.large"), R, Shape::new(1024, 2048), 5, false).unwrap();
        let od = pricing::ec2_on_demand(R, "m5.large").unwrap();
        // 3 instances × 30 s → each billed 60 s.
        assert!(close(p.cost_for_seconds(30.0), 3.0 * od * 60.0 / 3600.0));
        // 3 instances × 90.2 s → each billed 91 s.
        assert!(close(p.cost_for_seconds(90.2), 3.0 * od * 91.0 / 3600.0));
    }

    #[test]
    fn mix_first_fit_decreasing() {
        // m5.large registers 2048 / 7985. Two 1024/4096 tasks cannot share
        // (8192 MiB), so each opens an instance; the 1024/2048 and 512/1024
        // tasks then fill the gaps: [1024/4096 + 1024/2048], [1024/4096 +
        // 512/1024 + 512/1024].
        let t = ty("m5.large");
        let mix = [
            (Shape::new(512, 1024), 2),
            (Shape::new(1024, 4096), 2),
            (Shape::new(1024, 2048), 1),
        ];
        let p = pack_mix(t, R, &mix, false).unwrap();
        assert_eq!((p.instances, p.tasks, p.tasks_per_instance), (2, 5, None));
        assert!(close(p.cpu_utilisation, 4096.0 / 4096.0));
        assert!(close(p.memory_utilisation, 12288.0 / (2.0 * 7985.0)));
        // A shape that fits nowhere on the type rules it out.
        assert!(pack_mix(t, R, &[(Shape::new(4096, 1), 1)], false).is_none());
        // Empty mix: no instances.
        let p = pack_mix(t, R, &[(Shape::new(1, 1), 0)], false).unwrap();
        assert_eq!(p.instances, 0);
    }

    #[test]
    fn mix_of_one_shape_matches_uniform() {
        let shape = Shape::new(768, 1500);
        for t in candidates(R, Arch::X86_64, false) {
            let u = pack_uniform(t, R, shape, 37, false);
            let m = pack_mix(t, R, &[(shape, 20), (shape, 17)], false);
            assert_eq!(u.map(|p| p.instances), m.map(|p| p.instances), "{}", t.name);
        }
        let best = cheapest_for_mix(R, Arch::Arm64, &[(shape, 37)], false).unwrap();
        assert_eq!(
            catalog::find(&best.instance_type).unwrap().arch,
            Arch::Arm64
        );
    }
}
