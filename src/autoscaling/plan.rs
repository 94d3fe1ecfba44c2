//! What an Auto Scaling group does next, decided by a pure function: given
//! the group's configuration and its members, the launches, warm-pool moves
//! and terminations that bring it to its desired capacity, spread across its
//! Availability Zones, with the on-demand/spot split of its mixed instances
//! policy and the size of its warm pool. The fleet (`fleet.rs`) applies the
//! actions; nothing here touches the store or the clock.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Market {
    OnDemand,
    Spot,
}

impl Market {
    pub fn as_str(self) -> &'static str {
        match self {
            Market::OnDemand => "on-demand",
            Market::Spot => "spot",
        }
    }

    pub fn parse(s: &str) -> Market {
        if s == "spot" {
            Market::Spot
        } else {
            Market::OnDemand
        }
    }
}

/// How spot instances choose among the policy's instance types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpotStrategy {
    /// `lowest-price`: the type with the lowest spot price.
    LowestPrice,
    /// `capacity-optimized`, `price-capacity-optimized`, …: spread over the
    /// types, the way deeper pools are chosen on EC2.
    Diversified,
}

/// The `InstancesDistribution` of a mixed instances policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    pub on_demand_base: i64,
    pub on_demand_percentage: i64,
    pub spot_strategy: SpotStrategy,
}

impl Distribution {
    /// How many of `n` instances are on-demand: the base, then the
    /// percentage of the rest, rounded up (in favour of on-demand, as EC2
    /// Auto Scaling rounds).
    pub fn on_demand_of(&self, n: i64) -> i64 {
        let base = self.on_demand_base.min(n);
        let above = (n - base).max(0);
        base + (above * self.on_demand_percentage + 99) / 100
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolState {
    Stopped,
    Running,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WarmPool {
    pub min_size: i64,
    /// `MaxGroupPreparedCapacity`; `None` (or -1 on the wire) means the
    /// group's maximum size.
    pub max_prepared: Option<i64>,
    pub pool_state: PoolState,
    pub reuse_on_scale_in: bool,
}

impl WarmPool {
    /// How many instances the pool holds for a group of `desired` out of `max`.
    pub fn target(&self, desired: i64, max: i64) -> i64 {
        let prepared = self.max_prepared.unwrap_or(max);
        (prepared - desired).max(self.min_size).max(0)
    }
}

/// A group's configuration, as the planner needs it.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub desired: i64,
    pub max: i64,
    pub zones: Vec<String>,
    /// The instance types it launches, in priority order (the launch
    /// template's type, or the policy's overrides).
    pub types: Vec<String>,
    /// The launch template asks for spot (`InstanceMarketOptions`).
    pub template_spot: bool,
    pub distribution: Option<Distribution>,
    pub warm_pool: Option<WarmPool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Pending,
    InService,
    WarmedPending,
    WarmedStopped,
    WarmedRunning,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Pending => "Pending",
            Lifecycle::InService => "InService",
            Lifecycle::WarmedPending => "Warmed:Pending",
            Lifecycle::WarmedStopped => "Warmed:Stopped",
            Lifecycle::WarmedRunning => "Warmed:Running",
        }
    }

    pub fn parse(s: &str) -> Option<Lifecycle> {
        Some(match s {
            "Pending" => Lifecycle::Pending,
            "InService" => Lifecycle::InService,
            "Warmed:Pending" => Lifecycle::WarmedPending,
            "Warmed:Stopped" => Lifecycle::WarmedStopped,
            "Warmed:Running" => Lifecycle::WarmedRunning,
            _ => return None,
        })
    }

    pub fn warm(self) -> bool {
        matches!(
            self,
            Lifecycle::WarmedPending | Lifecycle::WarmedStopped | Lifecycle::WarmedRunning
        )
    }
}

/// One live member of the group (terminated instances are not members).
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub lifecycle: Lifecycle,
    pub az: String,
    pub market: Market,
    pub instance_type: String,
    pub protected: bool,
    /// Tasks not yet stopped on its container instance.
    pub tasks: i64,
    pub launched_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Launch {
        az: String,
        instance_type: String,
        market: Market,
        /// Into the warm pool rather than into service.
        warm: bool,
    },
    /// A prepared instance of the warm pool goes into service.
    FromWarm {
        id: String,
    },
    /// An instance leaves service for the warm pool (`ReuseOnScaleIn`).
    ToWarm {
        id: String,
    },
    Terminate {
        id: String,
    },
}

/// The actions that bring the group to its desired capacity and its warm
/// pool to its size. `spot_price` prices an instance type's spot hour, for
/// the `lowest-price` strategy.
pub fn plan(spec: &GroupSpec, members: &[Member], spot_price: &dyn Fn(&str) -> f64) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut active: Vec<Member> = members
        .iter()
        .filter(|m| !m.lifecycle.warm())
        .cloned()
        .collect();
    let mut warm: Vec<Member> = members
        .iter()
        .filter(|m| m.lifecycle.warm())
        .cloned()
        .collect();
    let desired = spec.desired.max(0);
    let count = active.len() as i64;
    if count < desired {
        for _ in 0..(desired - count) {
            // Prepared instances first: running ones, then stopped ones.
            let pick = warm
                .iter()
                .position(|m| m.lifecycle == Lifecycle::WarmedRunning)
                .or_else(|| {
                    warm.iter()
                        .position(|m| m.lifecycle == Lifecycle::WarmedStopped)
                });
            if let Some(i) = pick {
                let mut m = warm.remove(i);
                actions.push(Action::FromWarm { id: m.id.clone() });
                m.lifecycle = Lifecycle::Pending;
                active.push(m);
                continue;
            }
            let az = least_used_zone(&spec.zones, &active);
            let market = next_market(spec, &active);
            let instance_type = choose_type(spec, market, &active, spot_price);
            actions.push(Action::Launch {
                az: az.clone(),
                instance_type: instance_type.clone(),
                market,
                warm: false,
            });
            active.push(Member {
                id: String::new(),
                lifecycle: Lifecycle::Pending,
                az,
                market,
                instance_type,
                protected: false,
                tasks: 0,
                launched_at: i64::MAX,
            });
        }
    } else if count > desired {
        let reuse = spec.warm_pool.as_ref().is_some_and(|w| w.reuse_on_scale_in);
        for _ in 0..(count - desired) {
            let Some(i) = scale_in_victim(spec, &active) else {
                break; // every remaining instance is protected
            };
            let m = active.remove(i);
            if reuse && m.market == Market::OnDemand {
                actions.push(Action::ToWarm { id: m.id.clone() });
                warm.push(Member {
                    lifecycle: Lifecycle::WarmedStopped,
                    ..m
                });
            } else {
                actions.push(Action::Terminate { id: m.id });
            }
        }
    }
    if let Some(pool) = &spec.warm_pool {
        let target = pool.target(desired, spec.max);
        let have = warm.len() as i64;
        if have < target {
            for _ in 0..(target - have) {
                let az = least_used_zone(&spec.zones, &warm);
                let instance_type = spec.types.first().cloned().unwrap_or_default();
                actions.push(Action::Launch {
                    az: az.clone(),
                    instance_type: instance_type.clone(),
                    market: Market::OnDemand,
                    warm: true,
                });
                warm.push(Member {
                    id: String::new(),
                    lifecycle: Lifecycle::WarmedPending,
                    az,
                    market: Market::OnDemand,
                    instance_type,
                    protected: false,
                    tasks: 0,
                    launched_at: i64::MAX,
                });
            }
        } else if have > target {
            // Newest first: the longest-prepared instances stay.
            warm.sort_by_key(|m| std::cmp::Reverse(m.launched_at));
            for m in warm.iter().take((have - target) as usize) {
                actions.push(Action::Terminate { id: m.id.clone() });
            }
        }
    } else {
        for m in &warm {
            actions.push(Action::Terminate { id: m.id.clone() });
        }
    }
    actions
}

/// The zone with the fewest of `members`, earlier zones first on ties.
fn least_used_zone(zones: &[String], members: &[Member]) -> String {
    zones
        .iter()
        .min_by_key(|z| members.iter().filter(|m| &m.az == *z).count())
        .cloned()
        .unwrap_or_default()
}

/// The market of the next instance launched into service.
fn next_market(spec: &GroupSpec, active: &[Member]) -> Market {
    match &spec.distribution {
        Some(d) => {
            let on_demand = active
                .iter()
                .filter(|m| m.market == Market::OnDemand)
                .count() as i64;
            if on_demand < d.on_demand_of(active.len() as i64 + 1) {
                Market::OnDemand
            } else {
                Market::Spot
            }
        }
        None if spec.template_spot => Market::Spot,
        None => Market::OnDemand,
    }
}

fn choose_type(
    spec: &GroupSpec,
    market: Market,
    active: &[Member],
    spot_price: &dyn Fn(&str) -> f64,
) -> String {
    let first = spec.types.first().cloned().unwrap_or_default();
    let strategy = spec.distribution.as_ref().map(|d| d.spot_strategy);
    match (market, strategy) {
        (Market::Spot, Some(SpotStrategy::LowestPrice)) => spec
            .types
            .iter()
            .min_by(|a, b| spot_price(a).total_cmp(&spot_price(b)))
            .cloned()
            .unwrap_or(first),
        (Market::Spot, Some(SpotStrategy::Diversified)) => spec
            .types
            .iter()
            .min_by_key(|t| {
                active
                    .iter()
                    .filter(|m| m.market == Market::Spot && &&m.instance_type == t)
                    .count()
            })
            .cloned()
            .unwrap_or(first),
        _ => first,
    }
}

/// Which in-service instance scale-in takes: never a protected one; from the
/// zone with the most instances; of the market the policy has too many of;
/// the one running the fewest tasks; the newest.
fn scale_in_victim(spec: &GroupSpec, active: &[Member]) -> Option<usize> {
    let mut per_zone: BTreeMap<&str, usize> = BTreeMap::new();
    for m in active {
        *per_zone.entry(m.az.as_str()).or_default() += 1;
    }
    let surplus_market = spec.distribution.as_ref().map(|d| {
        let n = active.len() as i64 - 1;
        let on_demand = active
            .iter()
            .filter(|m| m.market == Market::OnDemand)
            .count() as i64;
        if on_demand > d.on_demand_of(n) {
            Market::OnDemand
        } else {
            Market::Spot
        }
    });
    active
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.protected)
        .min_by_key(|(_, m)| {
            (
                std::cmp::Reverse(per_zone[m.az.as_str()]),
                surplus_market.is_some_and(|s| s != m.market),
                m.tasks,
                std::cmp::Reverse(m.launched_at),
            )
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(desired: i64) -> GroupSpec {
        GroupSpec {
            desired,
            max: 10,
            zones: vec!["us-east-1a".into(), "us-east-1b".into()],
            types: vec!["m5.large".into()],
            template_spot: false,
            distribution: None,
            warm_pool: None,
        }
    }

    fn member(id: &str, lifecycle: Lifecycle, az: &str) -> Member {
        Member {
            id: id.into(),
            lifecycle,
            az: az.into(),
            market: Market::OnDemand,
            instance_type: "m5.large".into(),
            protected: false,
            tasks: 0,
            launched_at: 0,
        }
    }

    fn no_price(_: &str) -> f64 {
        1.0
    }

    fn launches(actions: &[Action]) -> Vec<(String, Market, bool)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Launch {
                    az, market, warm, ..
                } => Some((az.clone(), *market, *warm)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn launches_up_to_desired_spread_over_zones() {
        let a = plan(&spec(3), &[], &no_price);
        let l = launches(&a);
        assert_eq!(l.len(), 3);
        let zones: Vec<&str> = l.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(zones, ["us-east-1a", "us-east-1b", "us-east-1a"]);
        // One already in 1a: the next goes to 1b.
        let a = plan(
            &spec(2),
            &[member("i-1", Lifecycle::InService, "us-east-1a")],
            &no_price,
        );
        assert_eq!(launches(&a)[0].0, "us-east-1b");
    }

    #[test]
    fn nothing_to_do_at_desired() {
        let m = [member("i-1", Lifecycle::InService, "us-east-1a")];
        assert!(plan(&spec(1), &m, &no_price).is_empty());
    }

    #[test]
    fn scale_in_skips_protected_and_prefers_empty() {
        let mut busy = member("i-busy", Lifecycle::InService, "us-east-1a");
        busy.tasks = 2;
        let idle = member("i-idle", Lifecycle::InService, "us-east-1b");
        let a = plan(&spec(1), &[busy.clone(), idle.clone()], &no_price);
        assert_eq!(
            a,
            [Action::Terminate {
                id: "i-idle".into()
            }]
        );
        let mut guarded = idle.clone();
        guarded.protected = true;
        let a = plan(&spec(0), &[busy.clone(), guarded], &no_price);
        assert_eq!(
            a,
            [Action::Terminate {
                id: "i-busy".into()
            }]
        );
        busy.protected = true;
        let mut g2 = idle;
        g2.protected = true;
        assert!(plan(&spec(0), &[busy, g2], &no_price).is_empty());
    }

    #[test]
    fn scale_in_balances_zones() {
        let m = [
            member("i-1", Lifecycle::InService, "us-east-1a"),
            member("i-2", Lifecycle::InService, "us-east-1a"),
            member("i-3", Lifecycle::InService, "us-east-1b"),
        ];
        let a = plan(&spec(2), &m, &no_price);
        assert!(matches!(&a[0], Action::Terminate { id } if id != "i-3"));
    }

    #[test]
    fn mixed_policy_splits_on_demand_and_spot() {
        let d = Distribution {
            on_demand_base: 1,
            on_demand_percentage: 25,
            spot_strategy: SpotStrategy::LowestPrice,
        };
        // 1 base + 25% of 4 above = 2 on-demand out of 5.
        assert_eq!(d.on_demand_of(5), 2);
        assert_eq!(d.on_demand_of(0), 0);
        assert_eq!(d.on_demand_of(1), 1);
        assert_eq!(d.on_demand_of(2), 2); // 25% of 1, rounded up
        let mut s = spec(5);
        s.distribution = Some(d);
        s.types = vec!["m5.large".into(), "m6i.large".into(), "c5.large".into()];
        let price = |t: &str| if t == "c5.large" { 0.03 } else { 0.05 };
        let a = plan(&s, &[], &price);
        let l: Vec<Market> = launches(&a).iter().map(|x| x.1).collect();
        assert_eq!(l.iter().filter(|m| **m == Market::OnDemand).count(), 2);
        assert_eq!(l.iter().filter(|m| **m == Market::Spot).count(), 3);
        for act in &a {
            if let Action::Launch {
                instance_type,
                market,
                ..
            } = act
            {
                let want = if *market == Market::Spot {
                    "c5.large"
                } else {
                    "m5.large"
                };
                assert_eq!(instance_type, want);
            }
        }
    }

    #[test]
    fn diversified_spot_spreads_types() {
        let mut s = spec(4);
        s.distribution = Some(Distribution {
            on_demand_base: 0,
            on_demand_percentage: 0,
            spot_strategy: SpotStrategy::Diversified,
        });
        s.types = vec!["m5.large".into(), "m6i.large".into()];
        let a = plan(&s, &[], &no_price);
        let types: Vec<&str> = a
            .iter()
            .filter_map(|x| match x {
                Action::Launch { instance_type, .. } => Some(instance_type.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(types.iter().filter(|t| **t == "m5.large").count(), 2);
        assert_eq!(types.iter().filter(|t| **t == "m6i.large").count(), 2);
    }

    #[test]
    fn warm_pool_is_filled_and_used_first() {
        let mut s = spec(0);
        s.max = 3;
        s.warm_pool = Some(WarmPool {
            min_size: 0,
            max_prepared: None,
            pool_state: PoolState::Stopped,
            reuse_on_scale_in: false,
        });
        let l = launches(&plan(&s, &[], &no_price));
        assert_eq!(l.len(), 3);
        assert!(l.iter().all(|x| x.2), "all into the warm pool");
        // Desired 1 with three stopped warm instances: one leaves the pool,
        // nothing is launched cold, and the pool shrinks to 2 by itself.
        s.desired = 1;
        let warm: Vec<Member> = (0..3)
            .map(|i| member(&format!("i-{i}"), Lifecycle::WarmedStopped, "us-east-1a"))
            .collect();
        let a = plan(&s, &warm, &no_price);
        assert_eq!(a, [Action::FromWarm { id: "i-0".into() }]);
        // A pending warm instance is not taken: a cold launch is.
        let pending = [member("i-p", Lifecycle::WarmedPending, "us-east-1a")];
        let mut s2 = s.clone();
        s2.max = 1;
        let a = plan(&s2, &pending, &no_price);
        assert_eq!(launches(&a).len(), 1);
        assert!(!launches(&a)[0].2);
    }

    #[test]
    fn warm_pool_min_size_and_reuse_on_scale_in() {
        let pool = WarmPool {
            min_size: 2,
            max_prepared: Some(1),
            pool_state: PoolState::Running,
            reuse_on_scale_in: true,
        };
        assert_eq!(pool.target(0, 5), 2);
        assert_eq!(pool.target(3, 5), 2);
        let mut s = spec(0);
        s.warm_pool = Some(pool);
        let m = [
            member("i-1", Lifecycle::InService, "us-east-1a"),
            member("w-1", Lifecycle::WarmedRunning, "us-east-1a"),
            member("w-2", Lifecycle::WarmedRunning, "us-east-1b"),
        ];
        let a = plan(&s, &m, &no_price);
        // The in-service instance returns to the pool, which then has one
        // more than it needs: the newest-launched extra is terminated.
        assert_eq!(a[0], Action::ToWarm { id: "i-1".into() });
        assert_eq!(a.len(), 2);
        assert!(matches!(a[1], Action::Terminate { .. }));
    }

    #[test]
    fn warm_instances_without_a_pool_are_terminated() {
        let a = plan(
            &spec(0),
            &[member("w", Lifecycle::WarmedStopped, "us-east-1a")],
            &no_price,
        );
        assert_eq!(a, [Action::Terminate { id: "w".into() }]);
    }

    #[test]
    fn template_spot_launches_spot() {
        let mut s = spec(1);
        s.template_spot = true;
        assert_eq!(launches(&plan(&s, &[], &no_price))[0].1, Market::Spot);
    }
}
