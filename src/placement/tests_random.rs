//! Randomised tests of placement, from a seeded xorshift generator (every
//! failure names the seed that reproduces it):
//!
//! - the indexed [`Placer`] decides exactly as the straightforward
//!   [`reference_place`] (same placements, failures and `rng` calls), on
//!   fresh snapshots and across series of requests with instance updates in
//!   between;
//! - properties of every decision: no instance is overcommitted (CPU,
//!   memory, ports), every placed task satisfies every constraint and
//!   required attribute on an ACTIVE, agent-connected instance, failures
//!   are reported exactly when a task could not be placed, and the same
//!   snapshot and seed give the same decision.

use std::collections::{BTreeMap, BTreeSet};

use super::reference::reference_place;
use super::*;

/// xorshift64*: small, seedable, good enough to explore.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }
}

const AZ: &str = "ecs.availability-zone";
const TYPE: &str = "ecs.instance-type";
const GROUPS: [&str; 3] = ["family:web", "family:db", "service:api"];

const EXPRESSIONS: [&str; 10] = [
    "attribute:ecs.instance-type =~ m.*|c.*",
    "attribute:ecs.availability-zone in [a, b]",
    "attribute:ecs.instance-type =~ m.*|c.* and attribute:ecs.availability-zone in [a, b, c]",
    "not(task:group == family:db)",
    "task:group == family:web or attribute:stack == prod",
    "attribute:stack == prod and not(task:group == family:web) and runningTasksCount <= 1",
    "runningTasksCount <= 1",
    "agentVersion >= 1.14.0",
    "attribute:ecs.availability-zone exists",
    "task:group not_exists",
];

fn random_instance(rng: &mut Rng, n: usize) -> Instance {
    let mut attributes = BTreeMap::new();
    match rng.below(20) {
        0 => {}
        1 => {
            attributes.insert(AZ.to_string(), None);
        }
        _ => {
            let az = rng.pick(&["a", "b", "c"]).to_string();
            attributes.insert(AZ.to_string(), Some(az));
        }
    }
    let ty = rng.pick(&["t3.micro", "m5.large", "c5.xlarge", "r5.large"]);
    attributes.insert(TYPE.to_string(), Some(ty.to_string()));
    if rng.chance(60) {
        let stack = rng.pick(&["prod", "dev"]).to_string();
        attributes.insert("stack".to_string(), Some(stack));
    }
    if rng.chance(70) {
        attributes.insert("ecs.capability.x".to_string(), None);
    }
    let mut ports_tcp = BTreeSet::from([22, 2375, 51678]);
    if rng.chance(20) {
        ports_tcp.insert(*rng.pick(&[80, 8080, 443]));
    }
    let mut ports_udp = BTreeSet::new();
    if rng.chance(10) {
        ports_udp.insert(53);
    }
    let task_groups = (0..rng.below(4))
        .map(|_| rng.pick(&GROUPS).to_string())
        .collect();
    Instance {
        arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/c/{n}"),
        ec2_instance_id: format!("i-{n}"),
        attributes,
        // few distinct values, so that strategies tie often
        remaining_cpu: *rng.pick(&[-128, 0, 128, 256, 512, 1024, 2048]),
        remaining_memory: *rng.pick(&[-256, 0, 256, 512, 1024, 2048, 4096]),
        ports_tcp,
        ports_udp,
        active: rng.chance(90),
        agent_connected: rng.chance(92),
        agent_version: rng.pick(&["1.10.0", "1.80.0"]).to_string(),
        registered_at: 1_700_000_000.0 + rng.below(1000) as f64,
        running_tasks_count: rng.below(3) as i64,
        pending_tasks_count: 0,
        task_groups,
    }
}

fn random_cluster(rng: &mut Rng, max: usize) -> Vec<Instance> {
    let n = if rng.chance(3) { 0 } else { 1 + rng.below(max) };
    (0..n).map(|k| random_instance(rng, k)).collect()
}

fn random_strategy(rng: &mut Rng) -> Strategy {
    match rng.below(9) {
        0 => Strategy::Random,
        1 => Strategy::Binpack(BinpackField::Cpu),
        2 | 3 => Strategy::Binpack(BinpackField::Memory),
        4 => Strategy::Spread(SpreadField::InstanceId),
        5 => Strategy::Spread(SpreadField::Attribute("stack".into())),
        6 => Strategy::Spread(SpreadField::Attribute(TYPE.into())),
        _ => Strategy::Spread(SpreadField::Attribute(AZ.into())),
    }
}

fn random_request(rng: &mut Rng) -> Request {
    let strategies = (0..rng.below(4)).map(|_| random_strategy(rng)).collect();
    let constraints = (0..rng.below(3))
        .map(|_| {
            if rng.chance(25) {
                Constraint::DistinctInstance
            } else {
                let e = EXPRESSIONS[rng.below(EXPRESSIONS.len())];
                Constraint::MemberOf(query::parse(e).unwrap())
            }
        })
        .collect();
    let group = match rng.below(20) {
        0..=2 => None,
        3 => Some(format!("service:s{}", rng.below(40))),
        _ => Some(rng.pick(&GROUPS).to_string()),
    };
    let required_attributes = match rng.below(10) {
        0 => vec![("ecs.capability.x".to_string(), None)],
        1 => vec![("stack".to_string(), Some("prod".to_string()))],
        _ => Vec::new(),
    };
    Request {
        count: rng.below(9),
        cpu: *rng.pick(&[0, 64, 128, 256]),
        memory: *rng.pick(&[0, 128, 256, 512]),
        ports_tcp: if rng.chance(20) { vec![8080] } else { vec![] },
        ports_udp: if rng.chance(8) { vec![53] } else { vec![] },
        strategies,
        constraints,
        group,
        required_attributes,
    }
}

/// A seeded tie-breaker that records the numbers it was called with.
fn recording(seed: u64, calls: &mut Vec<usize>) -> impl FnMut(usize) -> usize + '_ {
    let mut rng = Rng::new(seed);
    move |n| {
        calls.push(n);
        rng.next() as usize
    }
}

/// What a placement does to the snapshot, done to a copy of it.
fn apply(snap: &mut [Instance], arn: &str, req: &Request) -> usize {
    let k = snap
        .iter()
        .position(|i| i.arn == arn)
        .expect("placed on an instance of the snapshot");
    let inst = &mut snap[k];
    inst.remaining_cpu -= req.cpu;
    inst.remaining_memory -= req.memory;
    inst.ports_tcp.extend(req.ports_tcp.iter().copied());
    inst.ports_udp.extend(req.ports_udp.iter().copied());
    inst.pending_tasks_count += 1;
    if let Some(g) = &req.group {
        inst.task_groups.push(g.clone());
    }
    k
}

#[test]
fn placement_matches_the_reference_on_fresh_snapshots() {
    for seed in 0..4000u64 {
        let mut rng = Rng::new(seed);
        let snap = random_cluster(&mut rng, 40);
        let req = random_request(&mut rng);
        let tie_seed = rng.next();
        let (mut want_calls, mut got_calls) = (Vec::new(), Vec::new());
        let want = reference_place(&snap, &req, &mut recording(tie_seed, &mut want_calls));
        let got = place(&snap, &req, &mut recording(tie_seed, &mut got_calls));
        assert_eq!(got, want, "seed {seed}: {req:?}");
        assert_eq!(got_calls, want_calls, "seed {seed}: rng calls");
    }
}

#[test]
fn placement_matches_the_reference_across_requests() {
    for seed in 0..400u64 {
        let mut rng = Rng::new(seed);
        let start = random_cluster(&mut rng, 30);
        let mut placer = Placer::new(&start);
        let mut mirror = start.clone();
        // a few request shapes, so indexes are reused, plus random ones
        let shapes: Vec<Request> = (0..3).map(|_| random_request(&mut rng)).collect();
        for step in 0..40 {
            if !mirror.is_empty() && rng.chance(10) {
                let k = rng.below(mirror.len());
                let mut changed = random_instance(&mut rng, k);
                if rng.chance(50) {
                    // keep what placement added, change the rest
                    changed.task_groups = mirror[k].task_groups.clone();
                    changed.ports_tcp = mirror[k].ports_tcp.clone();
                }
                mirror[k] = changed.clone();
                placer.set_instance(k, changed);
                continue;
            }
            let mut req = if rng.chance(70) {
                rng.pick(&shapes).clone()
            } else {
                random_request(&mut rng)
            };
            req.count = rng.below(6);
            let tie_seed = rng.next();
            let (mut want_calls, mut got_calls) = (Vec::new(), Vec::new());
            let want = reference_place(&mirror, &req, &mut recording(tie_seed, &mut want_calls));
            let got = placer.place(&req, &mut recording(tie_seed, &mut got_calls));
            assert_eq!(got, want, "seed {seed} step {step}: {req:?}");
            assert_eq!(got_calls, want_calls, "seed {seed} step {step}: rng calls");
            if let Ok(d) = &want {
                for arn in &d.placed {
                    apply(&mut mirror, arn, &req);
                }
            }
            assert!(
                placer.instances().eq(mirror.iter()),
                "seed {seed} step {step}: state"
            );
        }
    }
}

#[test]
fn placement_matches_the_reference_on_a_larger_cluster() {
    // A small version of the benchmark: the indexes' blocks split and
    // merge, values fill up, ties are long.
    let mut rng = Rng::new(7);
    let start: Vec<Instance> = (0..600).map(|k| random_instance(&mut rng, k)).collect();
    let mut placer = Placer::new(&start);
    let mut mirror = start.clone();
    let shapes = [
        vec![
            Strategy::Spread(SpreadField::Attribute(AZ.into())),
            Strategy::Binpack(BinpackField::Memory),
        ],
        vec![
            Strategy::Spread(SpreadField::InstanceId),
            Strategy::Binpack(BinpackField::Cpu),
        ],
        vec![Strategy::Binpack(BinpackField::Memory)],
        vec![],
    ];
    let member_of =
        query::parse("attribute:ecs.instance-type =~ m.*|c.*|r.* and attribute:ecs.availability-zone in [a, b, c]")
            .unwrap();
    for step in 0..600 {
        let req = Request {
            count: 1 + rng.below(3),
            cpu: *rng.pick(&[16, 32, 64]),
            memory: *rng.pick(&[32, 64, 128]),
            ports_tcp: if rng.chance(5) { vec![8080] } else { vec![] },
            strategies: rng.pick(&shapes).clone(),
            constraints: vec![Constraint::MemberOf(member_of.clone())],
            group: Some(rng.pick(&GROUPS).to_string()),
            ..Request::default()
        };
        let tie_seed = rng.next();
        let (mut want_calls, mut got_calls) = (Vec::new(), Vec::new());
        let want = reference_place(&mirror, &req, &mut recording(tie_seed, &mut want_calls));
        let got = placer.place(&req, &mut recording(tie_seed, &mut got_calls));
        assert_eq!(got, want, "step {step}");
        assert_eq!(got_calls, want_calls, "step {step}: rng calls");
        for arn in &want.unwrap().placed {
            apply(&mut mirror, arn, &req);
        }
    }
    assert!(placer.instances().eq(mirror.iter()));
}

fn has_attribute(inst: &Instance, (name, value): &(String, Option<String>)) -> bool {
    match (inst.attributes.get(name), value) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(have), Some(want)) => have.as_deref() == Some(want.as_str()),
    }
}

/// Checks one decision's properties, replaying it on a copy of the
/// snapshot: each task must fit, and satisfy every constraint, on the
/// instance as the earlier tasks left it.
fn check_properties(seed: u64, snap: &[Instance], req: &Request, d: &Decision) {
    assert!(d.placed.len() <= req.count, "seed {seed}: too many");
    let mut state = snap.to_vec();
    let mut here: BTreeMap<usize, usize> = BTreeMap::new();
    for (t, arn) in d.placed.iter().enumerate() {
        let k = state
            .iter()
            .position(|i| &i.arn == arn)
            .expect("a known instance");
        let inst = &state[k];
        let ctx = format!("seed {seed}, task {t} on {k}: {req:?}");
        assert!(inst.active && inst.agent_connected, "{ctx}: not available");
        assert!(
            req.required_attributes
                .iter()
                .all(|a| has_attribute(inst, a)),
            "{ctx}: required attribute"
        );
        // never overcommits
        assert!(inst.remaining_cpu - req.cpu >= 0, "{ctx}: cpu");
        assert!(inst.remaining_memory - req.memory >= 0, "{ctx}: memory");
        assert!(
            req.ports_tcp.iter().all(|p| !inst.ports_tcp.contains(p)),
            "{ctx}: tcp port"
        );
        assert!(
            req.ports_udp.iter().all(|p| !inst.ports_udp.contains(p)),
            "{ctx}: udp port"
        );
        for c in &req.constraints {
            match c {
                Constraint::MemberOf(e) => assert!(e.eval(inst), "{ctx}: memberOf"),
                Constraint::DistinctInstance => {
                    assert!(!here.contains_key(&k), "{ctx}: distinct (this request)");
                    if let Some(g) = &req.group {
                        assert!(!inst.task_groups.contains(g), "{ctx}: distinct (group)");
                    }
                }
            }
        }
        apply(&mut state, arn, req);
        *here.entry(k).or_default() += 1;
    }
    for (k, n) in &here {
        let (before, after) = (&snap[*k], &state[*k]);
        assert!(after.remaining_cpu >= 0 && after.remaining_memory >= 0);
        assert_eq!(
            before.remaining_cpu - after.remaining_cpu,
            req.cpu * *n as i64
        );
        if !req.ports_tcp.is_empty() || !req.ports_udp.is_empty() {
            assert_eq!(*n, 1, "seed {seed}: a static port twice on one instance");
        }
    }
    let active = snap.iter().filter(|i| i.active).count();
    if d.placed.len() < req.count {
        // one failure per ACTIVE instance, and none of them could take it
        assert_eq!(d.failures.len(), active, "seed {seed}: failures");
        let actives = snap.iter().filter(|i| i.active);
        for (f, inst) in d.failures.iter().zip(actives) {
            assert_eq!(f.arn.as_deref(), Some(inst.arn.as_str()));
        }
    } else {
        assert!(
            d.failures.is_empty(),
            "seed {seed}: failures without a reason"
        );
    }
}

#[test]
fn placement_properties_hold() {
    for seed in 0..3000u64 {
        let mut rng = Rng::new(seed.wrapping_add(1_000_000));
        let snap = random_cluster(&mut rng, 40);
        let req = random_request(&mut rng);
        let tie_seed = rng.next();
        let first = place(&snap, &req, &mut recording(tie_seed, &mut Vec::new()));
        // deterministic for a given snapshot and seed
        let again = place(&snap, &req, &mut recording(tie_seed, &mut Vec::new()));
        assert_eq!(first, again, "seed {seed}: not deterministic");
        match first {
            Err(PlaceError::NoContainerInstances) => {
                assert!(!snap.iter().any(|i| i.active), "seed {seed}");
            }
            Ok(d) => check_properties(seed, &snap, &req, &d),
        }
    }
}

#[test]
fn placement_properties_hold_across_requests() {
    for seed in 0..300u64 {
        let mut rng = Rng::new(seed.wrapping_add(2_000_000));
        let start = random_cluster(&mut rng, 30);
        let mut placer = Placer::new(&start);
        let mut twin = Placer::from_owned(start.clone());
        let mut state = start.clone();
        for _ in 0..30 {
            let req = random_request(&mut rng);
            let tie_seed = rng.next();
            let d = placer.place(&req, &mut recording(tie_seed, &mut Vec::new()));
            let same = twin.place(&req, &mut recording(tie_seed, &mut Vec::new()));
            assert_eq!(d, same, "seed {seed}: not deterministic");
            let Ok(d) = d else { continue };
            check_properties(seed, &state, &req, &d);
            for arn in &d.placed {
                apply(&mut state, arn, &req);
            }
        }
    }
}

/// Instances 0..n with the same memory left; those in `without_cpu` have
/// no CPU left.
fn uniform_cluster(n: usize, without_cpu: std::ops::Range<usize>) -> Vec<Instance> {
    (0..n)
        .map(|k| {
            let mut rng = Rng::new(k as u64);
            let mut inst = random_instance(&mut rng, k);
            inst.active = true;
            inst.agent_connected = true;
            inst.remaining_cpu = if without_cpu.contains(&k) { 0 } else { 1024 };
            inst.remaining_memory = 2048;
            inst.ports_tcp.clear();
            inst.ports_udp.clear();
            inst
        })
        .collect()
}

fn same_as_reference(snap: &[Instance], req: &Request, seed: u64) -> Decision {
    let (mut want_calls, mut got_calls) = (Vec::new(), Vec::new());
    let want = reference_place(snap, req, &mut recording(seed, &mut want_calls));
    let got = place(snap, req, &mut recording(seed, &mut got_calls));
    assert_eq!(got, want);
    assert_eq!(got_calls, want_calls);
    got.unwrap()
}

#[test]
fn placement_ties_span_blocks_that_cannot_fit() {
    // Hundreds of instances with the same key: the ones without CPU fill
    // whole blocks of the index, and the ties after them still count.
    let snap = uniform_cluster(700, 100..400);
    let req = Request {
        count: 3,
        cpu: 128,
        memory: 256,
        strategies: vec![Strategy::Binpack(BinpackField::Memory)],
        group: Some("family:web".into()),
        ..Request::default()
    };
    let mut calls = Vec::new();
    let d = place(&snap, &req, &mut recording(1, &mut calls)).unwrap();
    assert_eq!(calls[0], 400, "every instance with CPU ties");
    same_as_reference(&snap, &req, 1);
    assert_eq!(d.placed.len(), 3);
}

#[test]
fn placement_seeks_past_instances_without_room() {
    // spread by instance, then binpack: within one task count, the
    // instances without the memory are skipped, and the next count is
    // reached when none of this count fits
    let mut snap = uniform_cluster(500, 0..0);
    for (k, inst) in snap.iter_mut().enumerate() {
        inst.remaining_memory = (k as i64 % 50) * 64;
        inst.task_groups = vec!["family:web".into(); k % 3];
    }
    for memory in [64, 1024, 3000, 3136, 4000] {
        for strategies in [
            vec![
                Strategy::Spread(SpreadField::InstanceId),
                Strategy::Binpack(BinpackField::Memory),
            ],
            vec![
                Strategy::Spread(SpreadField::InstanceId),
                Strategy::Spread(SpreadField::InstanceId),
                Strategy::Binpack(BinpackField::Cpu),
                Strategy::Binpack(BinpackField::Memory),
            ],
            vec![
                Strategy::Spread(SpreadField::Attribute(AZ.into())),
                Strategy::Spread(SpreadField::InstanceId),
                Strategy::Binpack(BinpackField::Memory),
            ],
        ] {
            let req = Request {
                count: 40,
                cpu: 32,
                memory,
                strategies,
                group: Some("family:web".into()),
                ..Request::default()
            };
            same_as_reference(&snap, &req, memory as u64);
        }
    }
}
