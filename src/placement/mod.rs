//! Task placement for the EC2 launch type: which container instance each
//! task of a RunTask goes to, as ECS decides it.
//!
//! Pure: [`place`] takes a snapshot of the cluster's container instances and
//! a request, and returns the instance of each placed task and the failures
//! to report. Randomness comes from the caller's `rng`, so a test can fix it.
//!
//! The process, per the developer guide ("Amazon ECS task placement"): for
//! each task, keep the instances that satisfy the CPU, memory and port
//! requirements, then those that satisfy the placement constraints, then let
//! the strategies choose among them. Tasks are placed one at a time and each
//! placement updates the snapshot (remaining CPU and memory, ports, task
//! count, task groups), so later tasks see earlier ones.
//!
//! [`Placer`] holds that snapshot across requests, indexed (see
//! `placer.rs`), so a series of requests against one cluster, as RunTask
//! calls arrive one after another, costs about O(log n) per task instead of
//! a scan of every instance; [`place`] is a `Placer` used once.

mod placer;
pub mod query;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests_random;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value;

pub use placer::Placer;
use query::{Expr, Subject};

/// ECS's limit on placement strategies per task (RunTask `placementStrategy`).
pub const MAX_STRATEGIES: usize = 5;
/// ECS's limit on placement constraints per task, counting the task
/// definition's and the request's together.
pub const MAX_CONSTRAINTS: usize = 10;

/// `Failure.reason` when an instance's agent is disconnected.
pub const REASON_AGENT: &str = "AGENT";
/// `Failure.reason` when an instance lacks an attribute the task definition
/// requires (`requiresAttributes`).
pub const REASON_ATTRIBUTE: &str = "ATTRIBUTE";
pub const REASON_CPU: &str = "RESOURCE:CPU";
pub const REASON_MEMORY: &str = "RESOURCE:MEMORY";
/// A TCP host port the task needs is in use.
pub const REASON_PORTS: &str = "RESOURCE:PORTS";
/// A UDP host port the task needs is in use.
pub const REASON_PORTS_UDP: &str = "RESOURCE:PORTS_UDP";
pub const REASON_DISTINCT_INSTANCE: &str = "DistinctInstance placement constraint unsatisfied.";
pub const REASON_MEMBER_OF: &str = "MemberOf placement constraint unsatisfied.";
/// The message of the InvalidParameterException RunTask answers when the
/// cluster has no container instance.
pub const NO_CONTAINER_INSTANCES: &str = "No Container Instances were found in your cluster.";

/// A container instance as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub arn: String,
    pub ec2_instance_id: String,
    /// Attribute name → value (`None`: an attribute without a value), the
    /// built-in ones (`ecs.instance-type`, `ecs.availability-zone`,
    /// `ecs.os-type`, `ecs.cpu-architecture`, `ecs.ami-id`, …) included.
    pub attributes: BTreeMap<String, Option<String>>,
    pub remaining_cpu: i64,
    pub remaining_memory: i64,
    /// TCP host ports in use (reserved by the agent or by tasks).
    pub ports_tcp: BTreeSet<u16>,
    /// UDP host ports in use.
    pub ports_udp: BTreeSet<u16>,
    /// Status ACTIVE. DRAINING and INACTIVE instances take no tasks.
    pub active: bool,
    pub agent_connected: bool,
    pub agent_version: String,
    /// Seconds since the Unix epoch.
    pub registered_at: f64,
    pub running_tasks_count: i64,
    pub pending_tasks_count: i64,
    /// The task group of each task on the instance, one entry per task.
    pub task_groups: Vec<String>,
}

impl Subject for Instance {
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes.get(name).map(|v| v.as_deref())
    }
    fn ec2_instance_id(&self) -> &str {
        &self.ec2_instance_id
    }
    fn agent_connected(&self) -> bool {
        self.agent_connected
    }
    fn agent_version(&self) -> &str {
        &self.agent_version
    }
    fn registered_at(&self) -> f64 {
        self.registered_at
    }
    fn running_tasks_count(&self) -> i64 {
        self.running_tasks_count
    }
    fn task_groups(&self) -> &[String] {
        &self.task_groups
    }
}

/// What to place: `count` copies of one task.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Request {
    pub count: usize,
    /// CPU units one task reserves.
    pub cpu: i64,
    /// MiB one task reserves.
    pub memory: i64,
    /// Static TCP host ports one task needs.
    pub ports_tcp: Vec<u16>,
    /// Static UDP host ports one task needs.
    pub ports_udp: Vec<u16>,
    /// In order of precedence. Empty: random.
    pub strategies: Vec<Strategy>,
    /// The task definition's and the request's, together.
    pub constraints: Vec<Constraint>,
    /// The task group of the tasks (RunTask `group`, by default
    /// `family:<family>`; a service's tasks use `service:<name>`). Spread
    /// and distinctInstance count the tasks of this group.
    pub group: Option<String>,
    /// The task definition's `requiresAttributes`: name and optional value.
    pub required_attributes: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinpackField {
    Cpu,
    Memory,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpreadField {
    /// `instanceId`, or `host`, which has the same effect.
    InstanceId,
    /// `attribute:<name>`: the attribute's name.
    Attribute(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Prefer the instances left with the least of the field.
    Binpack(BinpackField),
    /// Prefer the instances whose value of the field has the fewest tasks of
    /// the group.
    Spread(SpreadField),
    Random,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// Each task of the group on a different instance.
    DistinctInstance,
    /// Only instances that satisfy the expression.
    MemberOf(Expr),
}

/// The outcome of a placement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    /// The instance ARN of each placed task, in placement order. Fewer than
    /// `count` when some tasks could not be placed.
    pub placed: Vec<String>,
    /// When a task could not be placed: one failure per ACTIVE instance,
    /// saying why it could not take the task. Empty when all were placed.
    pub failures: Vec<Failure>,
}

/// An entry of RunTask's `failures`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub arn: Option<String>,
    pub reason: String,
}

/// Why nothing could be placed at all: RunTask answers it as an
/// InvalidParameterException carrying the Display text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceError {
    /// The cluster has no ACTIVE container instance.
    NoContainerInstances,
}

impl fmt::Display for PlaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlaceError::NoContainerInstances => f.write_str(NO_CONTAINER_INSTANCES),
        }
    }
}

impl std::error::Error for PlaceError {}

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
///
/// The strategies, in detail: binpack keeps the instances that would be
/// left with the least of its field; spread by `instanceId` keeps those
/// with the fewest tasks of the request's group (of this request, when it
/// names no group); spread by an attribute keeps those whose value of the
/// attribute has the fewest tasks of the group over every instance of the
/// snapshot (instances without the attribute share one value); random
/// keeps one at random, so the strategies after it have nothing left to
/// choose from.
pub fn place(
    instances: &[Instance],
    req: &Request,
    rng: &mut impl FnMut(usize) -> usize,
) -> Result<Decision, PlaceError> {
    Placer::new(instances).place(req, rng)
}

fn field_str<'a>(obj: &'a Value, key: &str) -> Result<Option<&'a str>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(format!("{key} must be a string.")),
    }
}

fn list_of<'a>(json: &'a Value, what: &str) -> Result<&'a [Value], String> {
    match json {
        Value::Null => Ok(&[]),
        Value::Array(a) => Ok(a.as_slice()),
        _ => Err(format!("{what} must be a list.")),
    }
}

/// Reads RunTask's / CreateService's `placementStrategy`
/// (`[{"type": "binpack"|"spread"|"random", "field": …}]`; null or absent
/// is empty) and validates it as ECS does: at most [`MAX_STRATEGIES`];
/// binpack's field is `cpu` or `memory` (any case); spread needs a field,
/// `instanceId`, `host` or `attribute:<name>`; random takes no field (one
/// given is ignored).
pub fn parse_strategies(json: &Value) -> Result<Vec<Strategy>, String> {
    let items = list_of(json, "placementStrategy")?;
    if items.len() > MAX_STRATEGIES {
        return Err(format!(
            "The number of placement strategies ({}) exceeds the maximum of {MAX_STRATEGIES}.",
            items.len()
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if !item.is_object() {
            return Err("Each placement strategy must be an object.".into());
        }
        let field = field_str(item, "field")?;
        let strategy = match field_str(item, "type")? {
            None => return Err("A placement strategy must have a type.".into()),
            Some("random") => Strategy::Random,
            Some("binpack") => match field.map(str::to_ascii_lowercase).as_deref() {
                Some("cpu") => Strategy::Binpack(BinpackField::Cpu),
                Some("memory") => Strategy::Binpack(BinpackField::Memory),
                Some(_) => {
                    return Err(format!(
                        "Invalid field '{}' for the binpack placement strategy: the field must be cpu or memory.",
                        field.unwrap_or_default()
                    ))
                }
                None => {
                    return Err(
                        "The binpack placement strategy needs a field: cpu or memory.".into(),
                    )
                }
            },
            Some("spread") => match field {
                None | Some("") => {
                    return Err("The spread placement strategy needs a field: instanceId, host or attribute:<name>.".into())
                }
                Some(f) if f.eq_ignore_ascii_case("instanceId") || f.eq_ignore_ascii_case("host") => {
                    Strategy::Spread(SpreadField::InstanceId)
                }
                Some(f) => match f.strip_prefix("attribute:") {
                    Some(name) if !name.is_empty() => {
                        Strategy::Spread(SpreadField::Attribute(name.to_string()))
                    }
                    _ => {
                        return Err(format!(
                            "Invalid field '{f}' for the spread placement strategy: the field must be instanceId, host or attribute:<name>."
                        ))
                    }
                },
            },
            Some(other) => {
                return Err(format!(
                    "Invalid placement strategy type '{other}': it must be random, spread or binpack."
                ))
            }
        };
        out.push(strategy);
    }
    Ok(out)
}

/// Reads RunTask's / CreateService's `placementConstraints`
/// (`[{"type": "distinctInstance"|"memberOf", "expression": …}]`; null or
/// absent is empty) and validates it as ECS does: at most
/// [`MAX_CONSTRAINTS`]; distinctInstance takes no expression (an empty one
/// is tolerated); memberOf needs one, in the cluster query language, of at
/// most 2000 characters. The limit of 10 counts the task definition's
/// constraints too: callers that merge both check the sum against
/// [`MAX_CONSTRAINTS`].
pub fn parse_constraints(json: &Value) -> Result<Vec<Constraint>, String> {
    let items = list_of(json, "placementConstraints")?;
    if items.len() > MAX_CONSTRAINTS {
        return Err(format!(
            "The number of placement constraints ({}) exceeds the maximum of {MAX_CONSTRAINTS}.",
            items.len()
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if !item.is_object() {
            return Err("Each placement constraint must be an object.".into());
        }
        let expression = field_str(item, "expression")?;
        let constraint = match field_str(item, "type")? {
            None => return Err("A placement constraint must have a type.".into()),
            Some("distinctInstance") => match expression {
                None | Some("") => Constraint::DistinctInstance,
                Some(_) => {
                    return Err(
                        "An expression can't be specified for the distinctInstance placement constraint."
                            .into(),
                    )
                }
            },
            Some("memberOf") => match expression {
                None | Some("") => {
                    return Err("The memberOf placement constraint needs an expression.".into())
                }
                Some(e) => Constraint::MemberOf(
                    query::parse(e)
                        .map_err(|err| format!("Invalid placement constraint expression '{e}': {err}."))?,
                ),
            },
            Some(other) => {
                return Err(format!(
                    "Invalid placement constraint type '{other}': it must be distinctInstance or memberOf."
                ))
            }
        };
        out.push(constraint);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inst(n: usize) -> Instance {
        Instance {
            arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/c/{n}"),
            ec2_instance_id: format!("i-{n}"),
            attributes: BTreeMap::new(),
            remaining_cpu: 1024,
            remaining_memory: 2048,
            ports_tcp: BTreeSet::from([22, 2375, 2376, 51678, 51679]),
            ports_udp: BTreeSet::new(),
            active: true,
            agent_connected: true,
            agent_version: "1.80.0".into(),
            registered_at: 1_700_000_000.0,
            running_tasks_count: 0,
            pending_tasks_count: 0,
            task_groups: Vec::new(),
        }
    }

    fn with_attr(mut i: Instance, name: &str, value: &str) -> Instance {
        i.attributes.insert(name.into(), Some(value.into()));
        i
    }

    fn req(count: usize) -> Request {
        Request {
            count,
            cpu: 128,
            memory: 256,
            group: Some("family:web".into()),
            ..Request::default()
        }
    }

    fn arn(n: usize) -> String {
        inst(n).arn
    }

    /// Always the first of the tied instances.
    fn first(_: usize) -> usize {
        0
    }

    fn run(instances: &[Instance], r: &Request) -> Decision {
        place(instances, r, &mut first).expect("placement")
    }

    fn member_of(e: &str) -> Constraint {
        Constraint::MemberOf(query::parse(e).unwrap())
    }

    fn failure(n: usize, reason: &str) -> Failure {
        Failure {
            arn: Some(arn(n)),
            reason: reason.into(),
        }
    }

    #[test]
    fn no_instances_is_an_error() {
        let e = place(&[], &req(1), &mut first).unwrap_err();
        assert_eq!(e, PlaceError::NoContainerInstances);
        assert_eq!(
            e.to_string(),
            "No Container Instances were found in your cluster."
        );
        let mut draining = inst(0);
        draining.active = false;
        assert_eq!(
            place(&[draining], &req(1), &mut first),
            Err(PlaceError::NoContainerInstances)
        );
    }

    #[test]
    fn places_all_and_consumes_resources() {
        let d = run(&[inst(0)], &req(3));
        assert_eq!(d.placed, vec![arn(0); 3]);
        assert!(d.failures.is_empty());
        // 1024 cpu / 128 = 8 tasks fit, 2048 memory / 256 = 8
        let d = run(&[inst(0)], &req(9));
        assert_eq!(d.placed.len(), 8);
        assert_eq!(d.failures, vec![failure(0, REASON_CPU)]);
    }

    #[test]
    fn partial_placement_reports_each_instance_once() {
        let mut r = req(5);
        r.memory = 1024;
        let d = run(&[inst(0), inst(1)], &r);
        assert_eq!(d.placed.len(), 4);
        assert_eq!(
            d.failures,
            vec![failure(0, REASON_MEMORY), failure(1, REASON_MEMORY)]
        );
    }

    #[test]
    fn inactive_instances_are_skipped_and_not_reported() {
        let mut draining = inst(0);
        draining.active = false;
        let mut r = req(2);
        r.cpu = 1024;
        let d = run(&[draining, inst(1)], &r);
        assert_eq!(d.placed, vec![arn(1)]);
        assert_eq!(d.failures, vec![failure(1, REASON_CPU)]);
    }

    #[test]
    fn each_failure_reason() {
        let mut disconnected = inst(0);
        disconnected.agent_connected = false;
        let no_attr = inst(1);
        let mut low_cpu = with_attr(inst(2), "ecs.capability.x", "1");
        low_cpu.remaining_cpu = 64;
        let mut low_mem = with_attr(inst(3), "ecs.capability.x", "1");
        low_mem.remaining_memory = 100;
        let mut tcp = with_attr(inst(4), "ecs.capability.x", "1");
        tcp.ports_tcp.insert(80);
        let mut udp = with_attr(inst(5), "ecs.capability.x", "1");
        udp.ports_udp.insert(53);
        let mut same_group = with_attr(inst(6), "ecs.capability.x", "1");
        same_group.task_groups.push("family:web".into());
        let other_type = with_attr(
            with_attr(inst(7), "ecs.capability.x", "1"),
            "ecs.instance-type",
            "m5.large",
        );
        let all = [
            disconnected,
            no_attr,
            low_cpu,
            low_mem,
            tcp,
            udp,
            same_group,
            other_type,
        ];
        let mut r = req(1);
        r.ports_tcp = vec![80];
        r.ports_udp = vec![53];
        r.required_attributes = vec![("ecs.capability.x".into(), None)];
        r.constraints = vec![
            Constraint::DistinctInstance,
            member_of("attribute:ecs.instance-type =~ t2.*"),
        ];
        let d = run(&all, &r);
        assert!(d.placed.is_empty());
        assert_eq!(
            d.failures,
            vec![
                failure(0, "AGENT"),
                failure(1, "ATTRIBUTE"),
                failure(2, "RESOURCE:CPU"),
                failure(3, "RESOURCE:MEMORY"),
                failure(4, "RESOURCE:PORTS"),
                failure(5, "RESOURCE:PORTS_UDP"),
                failure(6, "DistinctInstance placement constraint unsatisfied."),
                failure(7, "MemberOf placement constraint unsatisfied."),
            ]
        );
    }

    #[test]
    fn resources_are_checked_before_constraints() {
        let mut i = inst(0);
        i.remaining_cpu = 0;
        let mut r = req(1);
        r.constraints = vec![member_of("attribute:nope exists")];
        assert_eq!(run(&[i], &r).failures, vec![failure(0, REASON_CPU)]);
    }

    #[test]
    fn required_attribute_value_must_match() {
        let i = with_attr(inst(0), "ecs.os-type", "linux");
        let mut r = req(1);
        r.required_attributes = vec![("ecs.os-type".into(), Some("windows".into()))];
        assert_eq!(
            run(std::slice::from_ref(&i), &r).failures,
            vec![failure(0, REASON_ATTRIBUTE)]
        );
        r.required_attributes = vec![("ecs.os-type".into(), Some("linux".into()))];
        assert_eq!(run(&[i], &r).placed, vec![arn(0)]);
    }

    #[test]
    fn static_ports_make_tasks_spill_over() {
        let mut r = req(3);
        r.ports_tcp = vec![8080];
        let d = run(&[inst(0), inst(1)], &r);
        assert_eq!(d.placed, vec![arn(0), arn(1)]);
        assert_eq!(
            d.failures,
            vec![failure(0, REASON_PORTS), failure(1, REASON_PORTS)]
        );
        let mut r = req(2);
        r.ports_udp = vec![5353];
        let d = run(&[inst(0)], &r);
        assert_eq!(d.placed, vec![arn(0)]);
        assert_eq!(d.failures, vec![failure(0, REASON_PORTS_UDP)]);
        // TCP and UDP ports are separate
        let mut i = inst(0);
        i.ports_tcp.insert(53);
        let mut r = req(1);
        r.ports_udp = vec![53];
        assert_eq!(run(&[i], &r).placed.len(), 1);
    }

    #[test]
    fn binpack_memory_fills_the_fullest_instance() {
        let mut a = inst(0);
        a.remaining_memory = 2048;
        let mut b = inst(1);
        b.remaining_memory = 600;
        let mut c = inst(2);
        c.remaining_memory = 100; // too little
        let mut r = req(4);
        r.strategies = vec![Strategy::Binpack(BinpackField::Memory)];
        let d = run(&[a, b, c], &r);
        // b (600) takes two (→ 344 → 88), then a
        assert_eq!(d.placed, vec![arn(1), arn(1), arn(0), arn(0)]);
    }

    #[test]
    fn binpack_cpu() {
        let mut a = inst(0);
        a.remaining_cpu = 300;
        let b = inst(1);
        let mut r = req(3);
        r.strategies = vec![Strategy::Binpack(BinpackField::Cpu)];
        let d = run(&[b, a], &r);
        assert_eq!(d.placed, vec![arn(0), arn(0), arn(1)]);
    }

    #[test]
    fn spread_instance_id_balances_group_tasks() {
        let mut busy = inst(0);
        busy.task_groups = vec!["family:web".into(), "family:web".into(), "other".into()];
        let mut r = req(4);
        r.strategies = vec![Strategy::Spread(SpreadField::InstanceId)];
        let d = run(&[busy, inst(1), inst(2)], &r);
        // 1 and 2 first (0 tasks each), then again, counting the new ones
        assert_eq!(d.placed, vec![arn(1), arn(2), arn(1), arn(2)]);
        // tasks of other groups don't count
        let mut other = inst(0);
        other.task_groups = vec!["other".into(); 5];
        let mut r = req(2);
        r.strategies = vec![Strategy::Spread(SpreadField::InstanceId)];
        assert_eq!(run(&[other, inst(1)], &r).placed, vec![arn(0), arn(1)]);
    }

    #[test]
    fn spread_without_group_counts_this_request() {
        let mut r = req(3);
        r.group = None;
        r.strategies = vec![Strategy::Spread(SpreadField::InstanceId)];
        let d = run(&[inst(0), inst(1)], &r);
        assert_eq!(d.placed, vec![arn(0), arn(1), arn(0)]);
    }

    #[test]
    fn spread_by_zone_then_binpack_within() {
        let az = "ecs.availability-zone";
        let a1 = with_attr(inst(0), az, "us-east-1a");
        let mut a2 = with_attr(inst(1), az, "us-east-1a");
        a2.remaining_memory = 1000;
        let b1 = with_attr(inst(2), az, "us-east-1b");
        let mut b2 = with_attr(inst(3), az, "us-east-1b");
        b2.remaining_memory = 700;
        let mut r = req(4);
        r.strategies = vec![
            Strategy::Spread(SpreadField::Attribute(az.into())),
            Strategy::Binpack(BinpackField::Memory),
        ];
        let d = run(&[a1, a2, b1, b2], &r);
        assert_eq!(d.placed, vec![arn(3), arn(1), arn(3), arn(1)]);
    }

    #[test]
    fn spread_by_zone_counts_tasks_on_every_instance() {
        let az = "ecs.availability-zone";
        // zone a already has a task of the group, on an instance that can't
        // take more; zone b has none
        let mut full = with_attr(inst(0), az, "a");
        full.remaining_cpu = 0;
        full.task_groups = vec!["family:web".into()];
        let a = with_attr(inst(1), az, "a");
        let b = with_attr(inst(2), az, "b");
        let mut r = req(3);
        r.strategies = vec![Strategy::Spread(SpreadField::Attribute(az.into()))];
        let d = run(&[full, a, b], &r);
        assert_eq!(d.placed, vec![arn(2), arn(1), arn(2)]);
    }

    #[test]
    fn spread_then_spread() {
        let az = "ecs.availability-zone";
        let all = [
            with_attr(inst(0), az, "a"),
            with_attr(inst(1), az, "a"),
            with_attr(inst(2), az, "b"),
        ];
        let mut r = req(4);
        r.strategies = vec![
            Strategy::Spread(SpreadField::Attribute(az.into())),
            Strategy::Spread(SpreadField::InstanceId),
        ];
        let d = run(&all, &r);
        assert_eq!(d.placed, vec![arn(0), arn(2), arn(1), arn(2)]);
    }

    #[test]
    fn random_uses_rng_over_the_candidates() {
        let mut r = req(3);
        r.strategies = vec![Strategy::Random];
        let mut calls = Vec::new();
        let mut rng = |n: usize| {
            calls.push(n);
            n - 1
        };
        let d = place(&[inst(0), inst(1), inst(2)], &r, &mut rng).unwrap();
        assert_eq!(d.placed, vec![arn(2); 3]);
        assert_eq!(calls, vec![3, 3, 3]);
        // an out-of-range answer wraps instead of panicking
        let d = place(&[inst(0), inst(1)], &req(1), &mut |_| 7).unwrap();
        assert_eq!(d.placed, vec![arn(1)]);
    }

    #[test]
    fn no_strategy_is_random() {
        let mut seq = [1usize, 0, 2].into_iter();
        let d = place(&[inst(0), inst(1), inst(2)], &req(3), &mut |_| {
            seq.next().unwrap()
        })
        .unwrap();
        assert_eq!(d.placed, vec![arn(1), arn(0), arn(2)]);
    }

    #[test]
    fn rng_not_called_for_a_single_candidate() {
        let mut r = req(2);
        r.strategies = vec![Strategy::Random];
        let d = place(&[inst(0)], &r, &mut |_| panic!("called")).unwrap();
        assert_eq!(d.placed.len(), 2);
    }

    #[test]
    fn ties_after_strategies_go_to_rng() {
        let mut r = req(1);
        r.strategies = vec![Strategy::Binpack(BinpackField::Cpu)];
        let d = place(&[inst(0), inst(1)], &r, &mut |n| {
            assert_eq!(n, 2);
            1
        })
        .unwrap();
        assert_eq!(d.placed, vec![arn(1)]);
    }

    #[test]
    fn distinct_instance_one_task_per_instance() {
        let mut r = req(3);
        r.constraints = vec![Constraint::DistinctInstance];
        let d = run(&[inst(0), inst(1)], &r);
        assert_eq!(d.placed, vec![arn(0), arn(1)]);
        assert_eq!(
            d.failures,
            vec![
                failure(0, REASON_DISTINCT_INSTANCE),
                failure(1, REASON_DISTINCT_INSTANCE)
            ]
        );
        // a task of the group already on the instance counts
        let mut busy = inst(0);
        busy.task_groups = vec!["family:web".into()];
        let d = run(&[busy], &req_distinct(1));
        assert_eq!(d.failures, vec![failure(0, REASON_DISTINCT_INSTANCE)]);
        // without a group, only this request's tasks count
        let mut r = req_distinct(2);
        r.group = None;
        let d = run(&[inst(0), inst(1)], &r);
        assert_eq!(d.placed, vec![arn(0), arn(1)]);
    }

    fn req_distinct(count: usize) -> Request {
        let mut r = req(count);
        r.constraints = vec![Constraint::DistinctInstance];
        r
    }

    #[test]
    fn member_of_filters_and_sees_earlier_placements() {
        let all = [
            with_attr(inst(0), "ecs.instance-type", "m5.large"),
            with_attr(inst(1), "ecs.instance-type", "t3.micro"),
        ];
        let mut r = req(2);
        r.constraints = vec![member_of("attribute:ecs.instance-type =~ t3.*")];
        assert_eq!(run(&all, &r).placed, vec![arn(1), arn(1)]);

        // affinity: only instances running a task of the group "databases"
        let mut db = inst(1);
        db.task_groups = vec!["databases".into()];
        let mut r = req(1);
        r.constraints = vec![member_of("task:group == databases")];
        assert_eq!(run(&[inst(0), db.clone()], &r).placed, vec![arn(1)]);
        // anti-affinity
        r.constraints = vec![member_of("not(task:group == databases)")];
        assert_eq!(run(&[db, inst(0)], &r).placed, vec![arn(0)]);

        // the snapshot is updated: a placed task's group is visible to the
        // next task's expression
        let mut r = req(3);
        r.constraints = vec![member_of("not(task:group == family:web)")];
        let d = run(&[inst(0), inst(1)], &r);
        assert_eq!(d.placed, vec![arn(0), arn(1)]);
        assert_eq!(
            d.failures,
            vec![failure(0, REASON_MEMBER_OF), failure(1, REASON_MEMBER_OF)]
        );
    }

    #[test]
    fn member_of_on_instance_fields() {
        let mut old = inst(0);
        old.agent_version = "1.10.0".into();
        old.running_tasks_count = 3;
        let mut r = req(1);
        r.constraints = vec![member_of(
            "agentVersion >= 1.14.0 and runningTasksCount == 0",
        )];
        assert_eq!(run(&[old.clone(), inst(1)], &r).placed, vec![arn(1)]);
        r.constraints = vec![member_of("ec2InstanceId in [i-0]")];
        assert_eq!(run(&[inst(1), old], &r).placed, vec![arn(0)]);
    }

    #[test]
    fn constraints_and_strategies_together() {
        let az = "ecs.availability-zone";
        let all = [
            with_attr(
                with_attr(inst(0), az, "a"),
                "ecs.instance-type",
                "g2.2xlarge",
            ),
            with_attr(with_attr(inst(1), az, "a"), "ecs.instance-type", "t2.small"),
            with_attr(
                with_attr(inst(2), az, "b"),
                "ecs.instance-type",
                "g2.2xlarge",
            ),
            with_attr(
                with_attr(inst(3), az, "b"),
                "ecs.instance-type",
                "g2.2xlarge",
            ),
        ];
        let mut r = req(3);
        r.constraints = vec![
            member_of("attribute:ecs.instance-type =~ g2.*"),
            Constraint::DistinctInstance,
        ];
        r.strategies = vec![Strategy::Spread(SpreadField::Attribute(az.into()))];
        let d = run(&all, &r);
        assert_eq!(d.placed, vec![arn(0), arn(2), arn(3)]);
    }

    #[test]
    fn placement_updates_the_snapshot() {
        // runningTasksCount is untouched (placed tasks are pending); the
        // group is recorded
        let mut r = req(2);
        r.constraints = vec![member_of("runningTasksCount == 0")];
        assert_eq!(run(&[inst(0)], &r).placed.len(), 2);
    }

    #[test]
    fn zero_count_places_nothing() {
        assert_eq!(run(&[inst(0)], &req(0)), Decision::default());
    }

    #[test]
    fn parse_strategies_shapes() {
        assert_eq!(parse_strategies(&Value::Null).unwrap(), vec![]);
        assert_eq!(
            parse_strategies(&json!([
                {"type": "spread", "field": "attribute:ecs.availability-zone"},
                {"type": "spread", "field": "instanceId"},
                {"type": "spread", "field": "host"},
                {"type": "binpack", "field": "memory"},
                {"type": "binpack", "field": "CPU"},
            ]))
            .unwrap(),
            vec![
                Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
                Strategy::Spread(SpreadField::InstanceId),
                Strategy::Spread(SpreadField::InstanceId),
                Strategy::Binpack(BinpackField::Memory),
                Strategy::Binpack(BinpackField::Cpu),
            ]
        );
        assert_eq!(
            parse_strategies(&json!([{"type": "random"}, {"type": "random", "field": "x"}]))
                .unwrap(),
            vec![Strategy::Random, Strategy::Random]
        );
    }

    #[test]
    fn parse_strategies_validation() {
        let e = |v: Value| parse_strategies(&v).unwrap_err();
        assert!(e(json!([{"type": "binpack", "field": "disk"}])).contains("cpu or memory"));
        assert!(e(json!([{"type": "binpack"}])).contains("needs a field"));
        assert!(e(json!([{"type": "spread"}])).contains("needs a field"));
        assert!(e(json!([{"type": "spread", "field": ""}])).contains("needs a field"));
        assert!(e(json!([{"type": "spread", "field": "zone"}]))
            .contains("instanceId, host or attribute"));
        assert!(e(json!([{"type": "spread", "field": "attribute:"}])).contains("Invalid field"));
        assert!(e(json!([{"type": "pack"}])).contains("Invalid placement strategy type 'pack'"));
        assert!(e(json!([{"field": "cpu"}])).contains("must have a type"));
        assert!(e(json!([{"type": 1}])).contains("type must be a string"));
        assert!(e(json!({"type": "random"})).contains("must be a list"));
        assert!(e(json!(["random"])).contains("must be an object"));
        let six = Value::Array(vec![json!({"type": "random"}); 6]);
        assert!(e(six).contains("maximum of 5"));
        assert_eq!(
            parse_strategies(&Value::Array(vec![json!({"type": "random"}); 5]))
                .unwrap()
                .len(),
            5
        );
    }

    #[test]
    fn parse_constraints_shapes() {
        assert_eq!(parse_constraints(&Value::Null).unwrap(), vec![]);
        let c = parse_constraints(&json!([
            {"type": "distinctInstance"},
            {"type": "distinctInstance", "expression": ""},
            {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t2.*"},
        ]))
        .unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0], Constraint::DistinctInstance);
        assert_eq!(c[1], Constraint::DistinctInstance);
        assert_eq!(c[2], member_of("attribute:ecs.instance-type =~ t2.*"));
    }

    #[test]
    fn parse_constraints_validation() {
        let e = |v: Value| parse_constraints(&v).unwrap_err();
        assert!(
            e(json!([{"type": "distinctInstance", "expression": "runningTasksCount == 0"}]))
                .contains("can't be specified")
        );
        assert!(e(json!([{"type": "memberOf"}])).contains("needs an expression"));
        assert!(e(json!([{"type": "memberOf", "expression": ""}])).contains("needs an expression"));
        let bad = e(json!([{"type": "memberOf", "expression": "attribute:a =="}]));
        assert!(
            bad.starts_with("Invalid placement constraint expression 'attribute:a =='"),
            "{bad}"
        );
        assert!(bad.contains("expected a value"), "{bad}");
        let long = format!("attribute:a == {}", "x".repeat(2000));
        assert!(e(json!([{"type": "memberOf", "expression": long}])).contains("maximum is 2000"));
        assert!(e(json!([{"type": "spread"}])).contains("Invalid placement constraint type"));
        assert!(e(json!([{}])).contains("must have a type"));
        assert!(e(json!([{"type": "memberOf", "expression": 5}])).contains("must be a string"));
        assert!(
            e(Value::Array(vec![json!({"type": "distinctInstance"}); 11]))
                .contains("maximum of 10")
        );
        assert_eq!(
            parse_constraints(&Value::Array(vec![json!({"type": "distinctInstance"}); 10]))
                .unwrap()
                .len(),
            10
        );
    }
}
