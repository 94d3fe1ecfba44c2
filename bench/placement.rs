//! Scheduler benchmark: the pure placement function, without the API.
//!
//! `cargo bench --bench placement` builds a simulated cluster of 10,000
//! container instances (ten instance types from four families, three
//! availability zones, custom attributes, varied free CPU and memory from
//! tasks already running, some host ports in use, a few instances draining
//! or disconnected), then places 100,000 tasks of mixed sizes one decision
//! at a time, as RunTask calls arrive one after another: each decision
//! places one task (count 1) on the state the previous decisions left, with
//! the strategies [spread attribute:ecs.availability-zone, binpack memory]
//! and a memberOf constraint on the instance type and zone. It prints the
//! total time, placements per second, the latency of one decision
//! (p50/p90/p99/max) and how many tasks were placed or failed, next to the
//! target (≥ 50,000 placements/s) and two anchors: Nomad placed ~3,750
//! containers/s in its million-container challenge; kube-scheduler does
//! ~100–300 pods/s.
//!
//! Then, for comparison: the same tasks as requests of count 10 on a fresh
//! copy of the cluster, and `placement::place` on a fresh snapshot per call
//! (what the API's RunTask does today), on the cluster as the first run
//! left it.
//!
//! The decisions use a `placement::Placer`, which keeps the cluster's state
//! and indexes across decisions. Everything is seeded: a run is
//! reproducible. It prints figures and never fails on a missed target.
//!
//! Flags (after `--`): `--quick` (1,000 instances, 10,000 tasks),
//! `--instances N`, `--tasks N`, `--seed N`. Unknown arguments, such as the
//! `--bench` that cargo adds, are ignored.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use berth::placement::{
    self, query, BinpackField, Constraint, Instance, Placer, Request, SpreadField, Strategy,
};

use common::{for_each_arg, percentile, positive};

const TARGET_PER_SEC: f64 = 50_000.0;
const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
const MEMBER_OF: &str = "attribute:ecs.instance-type =~ m.*|c.*|r.* and \
                         attribute:ecs.availability-zone in [us-east-1a, us-east-1b, us-east-1c]";
/// (type, vCPUs, GiB, weight in the fleet, architecture)
const TYPES: [(&str, i64, i64, u32, &str); 10] = [
    ("t3.large", 2, 8, 10, "x86_64"),
    ("t3.xlarge", 4, 16, 10, "x86_64"),
    ("m5.xlarge", 4, 16, 15, "x86_64"),
    ("m5.2xlarge", 8, 32, 15, "x86_64"),
    ("m6g.2xlarge", 8, 32, 5, "arm64"),
    ("m5.4xlarge", 16, 64, 5, "x86_64"),
    ("c5.2xlarge", 8, 16, 15, "x86_64"),
    ("c5.4xlarge", 16, 32, 10, "x86_64"),
    ("r5.xlarge", 4, 32, 10, "x86_64"),
    ("r5.2xlarge", 8, 64, 5, "x86_64"),
];
/// (CPU units, MiB, weight in the workload)
const SIZES: [(i64, i64, u32); 5] = [
    (128, 256, 40),
    (256, 512, 35),
    (512, 1024, 17),
    (1024, 2048, 6),
    (2048, 4096, 2),
];
const SERVICES: usize = 20;
/// One task in this many needs the static host port 8080.
const STATIC_PORT_EVERY: usize = 20;

struct Args {
    instances: usize,
    tasks: usize,
    seed: u64,
    quick: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        instances: 10_000,
        tasks: 100_000,
        seed: 42,
        quick: false,
    };
    let (mut instances, mut tasks) = (None, None);
    for_each_arg(|name, value| {
        match name {
            "--quick" => args.quick = true,
            "--instances" => instances = Some(positive("--instances", &value()?)?),
            "--tasks" => tasks = Some(positive("--tasks", &value()?)?),
            "--seed" => args.seed = value()?.parse()?,
            _ => {} // e.g. the `--bench` cargo passes
        }
        Ok(())
    })?;
    if args.quick {
        args.instances = 1_000;
        args.tasks = 10_000;
    }
    args.instances = instances.unwrap_or(args.instances);
    args.tasks = tasks.unwrap_or(args.tasks);
    Ok(args)
}

/// xorshift64*, seeded: the cluster, the workload and the tie-breaks.
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
    /// An index into `weights`, drawn by weight.
    fn weighted(&mut self, weights: impl Iterator<Item = u32> + Clone) -> usize {
        let total: u32 = weights.clone().sum();
        let mut r = self.below(total as usize) as u32;
        for (i, w) in weights.enumerate() {
            if r < w {
                return i;
            }
            r -= w;
        }
        unreachable!("r < total")
    }
}

fn service(n: usize) -> String {
    format!("service:svc-{n:02}")
}

fn cluster(n: usize, rng: &mut Rng) -> Vec<Instance> {
    (0..n)
        .map(|k| {
            let (ty, vcpu, gib, _, arch) = TYPES[rng.weighted(TYPES.iter().map(|t| t.3))];
            let cpu = vcpu * 1024;
            // the agent and the OS keep some memory
            let memory = gib * 1024 - 512;
            let mut attributes: BTreeMap<String, Option<String>> = BTreeMap::new();
            let mut attr = |name: &str, value: Option<&str>| {
                attributes.insert(name.to_string(), value.map(str::to_string));
            };
            attr("ecs.instance-type", Some(ty));
            attr("ecs.availability-zone", Some(ZONES[rng.below(3)]));
            attr("ecs.os-type", Some("linux"));
            attr("ecs.cpu-architecture", Some(arch));
            attr("ecs.ami-id", Some("ami-0a1b2c3d4e5f67890"));
            attr("ecs.capability.task-eni", None);
            attr(
                "stack",
                Some(if rng.chance(70) { "prod" } else { "staging" }),
            );
            attr(
                "team",
                Some(["payments", "search", "web", "data"][rng.below(4)]),
            );
            // 40% fresh, the others with tasks running on up to 60%
            let used = if rng.chance(40) {
                0
            } else {
                rng.below(60) as i64
            };
            let used_cpu = cpu * used / 100 / 128 * 128;
            let used_memory = memory * used / 100 / 256 * 256;
            let running = (used_cpu / 512) as usize;
            let task_groups: Vec<String> =
                (0..running).map(|_| service(rng.below(SERVICES))).collect();
            let mut ports_tcp = BTreeSet::from([22, 2375, 2376, 51678, 51679]);
            if rng.chance(15) {
                ports_tcp.extend([80, 443]);
            }
            if rng.chance(10) {
                ports_tcp.insert(8080);
            }
            Instance {
                arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/bench/{k:08x}"),
                ec2_instance_id: format!("i-{k:017x}"),
                attributes,
                remaining_cpu: cpu - used_cpu,
                remaining_memory: memory - used_memory,
                ports_tcp,
                ports_udp: BTreeSet::new(),
                active: !rng.chance(1),
                agent_connected: rng.below(200) != 0,
                agent_version: "1.86.3".into(),
                registered_at: 1_700_000_000.0 + k as f64,
                running_tasks_count: running as i64,
                pending_tasks_count: 0,
                task_groups,
            }
        })
        .collect()
}

/// The workload: one request template per (size, static port, service);
/// each task names one.
struct Workload {
    templates: Vec<Request>,
    tasks: Vec<usize>,
}

fn template_index(size: usize, port: bool, service: usize) -> usize {
    (size * 2 + port as usize) * SERVICES + service
}

fn workload(n: usize, count: usize, rng: &mut Rng) -> Workload {
    let member_of = query::parse(MEMBER_OF).expect("the benchmark's expression parses");
    let mut templates = Vec::new();
    for &(cpu, memory, _) in &SIZES {
        for port in [false, true] {
            for s in 0..SERVICES {
                templates.push(Request {
                    count,
                    cpu,
                    memory,
                    ports_tcp: if port { vec![8080] } else { vec![] },
                    ports_udp: vec![],
                    strategies: vec![
                        Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
                        Strategy::Binpack(BinpackField::Memory),
                    ],
                    constraints: vec![Constraint::MemberOf(member_of.clone())],
                    group: Some(service(s)),
                    required_attributes: vec![],
                });
            }
        }
    }
    let tasks = (0..n)
        .map(|_| {
            let size = rng.weighted(SIZES.iter().map(|s| s.2));
            let port = rng.below(STATIC_PORT_EVERY) == 0;
            template_index(size, port, rng.below(SERVICES))
        })
        .collect();
    Workload { templates, tasks }
}

struct RunStats {
    requests: usize,
    placed: usize,
    failed_requests: usize,
    total: Duration,
    /// The first request's latency (it builds the index).
    first: Duration,
    latencies: Vec<Duration>,
}

impl RunStats {
    fn per_sec(&self) -> f64 {
        self.placed as f64 / self.total.as_secs_f64()
    }
}

/// Sends every request of the workload, one after another, to `placer`.
fn run(placer: &mut Placer, w: &Workload, seed: u64) -> RunStats {
    let mut ties = Rng::new(seed);
    let mut tie = |n: usize| ties.below(n);
    let mut latencies = Vec::with_capacity(w.tasks.len());
    let (mut placed, mut failed_requests) = (0, 0);
    let start = Instant::now();
    for &t in &w.tasks {
        let req = &w.templates[t];
        let t0 = Instant::now();
        let d = placer
            .place(req, &mut tie)
            .expect("the cluster has ACTIVE instances");
        latencies.push(t0.elapsed());
        placed += d.placed.len();
        if d.placed.len() < req.count {
            failed_requests += 1;
        }
    }
    let total = start.elapsed();
    let first = latencies.first().copied().unwrap_or_default();
    latencies.sort_unstable();
    RunStats {
        requests: w.tasks.len(),
        placed,
        failed_requests,
        total,
        first,
        latencies,
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn print_latencies(what: &str, l: &[Duration]) {
    println!(
        "  {what:<15} p50 {:.1} µs   p90 {:.1} µs   p99 {:.1} µs   max {:.1} µs",
        us(percentile(l, 50.0)),
        us(percentile(l, 90.0)),
        us(percentile(l, 99.0)),
        us(l.last().copied().unwrap_or_default()),
    );
}

fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() -> std::process::ExitCode {
    common::exit_with(real_main())
}

fn real_main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let mut rng = Rng::new(args.seed);
    let instances = cluster(args.instances, &mut rng);
    let singles = workload(args.tasks, 1, &mut rng);

    let member_of = query::parse(MEMBER_OF)?;
    let eligible: Vec<&Instance> = instances
        .iter()
        .filter(|i| i.active && i.agent_connected && member_of.eval(*i))
        .collect();
    let free_cpu: i64 = eligible.iter().map(|i| i.remaining_cpu).sum();
    let free_mem: i64 = eligible.iter().map(|i| i.remaining_memory).sum();
    let (want_cpu, want_mem) = singles.tasks.iter().fold((0i64, 0i64), |(c, m), &t| {
        (
            c + singles.templates[t].cpu,
            m + singles.templates[t].memory,
        )
    });
    let pct = |a: i64, b: i64| 100.0 * a as f64 / b as f64;

    println!("berth placement benchmark (seed {})", args.seed);
    println!(
        "cluster:   {} instances, {} types in 4 families, 3 zones; {} ACTIVE, connected and \
         eligible for the constraint",
        thousands(args.instances as f64),
        TYPES.len(),
        thousands(eligible.len() as f64)
    );
    println!(
        "capacity:  eligible free {} vCPU, {} GiB; the tasks ask {} vCPU ({:.0}%), {} GiB ({:.0}%)",
        thousands(free_cpu as f64 / 1024.0),
        thousands(free_mem as f64 / 1024.0),
        thousands(want_cpu as f64 / 1024.0),
        pct(want_cpu, free_cpu),
        thousands(want_mem as f64 / 1024.0),
        pct(want_mem, free_mem),
    );
    println!(
        "tasks:     {} of 5 sizes (128–2048 CPU units, 256–4096 MiB), {} services, 1 in \
         {STATIC_PORT_EVERY} with static host port 8080",
        thousands(args.tasks as f64),
        SERVICES
    );
    println!(
        "request:   strategies [spread attribute:ecs.availability-zone, binpack memory]; \
         memberOf \"{MEMBER_OF}\""
    );
    println!();

    // 1. One task per decision, on the state the earlier ones left.
    let mut placer = Placer::new(&instances);
    let s = run(&mut placer, &singles, args.seed);
    let met = if s.per_sec() >= TARGET_PER_SEC {
        "met"
    } else {
        "MISSED"
    };
    println!("one task per decision (count 1), state kept across decisions:");
    println!(
        "  decisions       {}: {} placed, {} failed",
        thousands(s.requests as f64),
        thousands(s.placed as f64),
        thousands(s.failed_requests as f64)
    );
    println!(
        "  total           {:.3} s (the first decision builds the index: {:.1} ms)",
        s.total.as_secs_f64(),
        us(s.first) / 1000.0
    );
    println!("  throughput      {} placements/s", thousands(s.per_sec()));
    print_latencies("per decision", &s.latencies);
    println!(
        "  target          ≥ {} placements/s: {met}",
        thousands(TARGET_PER_SEC)
    );
    println!(
        "  anchors         Nomad ~3,750 containers/s (million-container challenge); \
         kube-scheduler ~100–300 pods/s"
    );
    println!();

    // 2. The same tasks as requests of count 10, on a fresh cluster.
    let tens = Workload {
        templates: singles
            .templates
            .iter()
            .map(|r| Request {
                count: 10,
                ..r.clone()
            })
            .collect(),
        tasks: singles.tasks.iter().step_by(10).copied().collect(),
    };
    let mut fresh = Placer::new(&instances);
    let t = run(&mut fresh, &tens, args.seed);
    println!("requests of count 10, state kept across requests:");
    println!(
        "  requests        {}: {} tasks placed, {} requests not fully placed",
        thousands(t.requests as f64),
        thousands(t.placed as f64),
        thousands(t.failed_requests as f64)
    );
    println!(
        "  total           {:.3} s, {} placements/s",
        t.total.as_secs_f64(),
        thousands(t.per_sec())
    );
    print_latencies("per request", &t.latencies);
    println!();

    // 3. The API's path today: `place` on a fresh snapshot per call.
    let snapshot: Vec<Instance> = placer.instances().cloned().collect();
    drop(placer);
    let calls = if args.quick { 50 } else { 200 };
    println!(
        "placement::place on a fresh snapshot per call (RunTask today), cluster as run 1 left it, \
         {calls} calls each:"
    );
    for count in [1, 10] {
        let mut ties = Rng::new(args.seed);
        let mut latencies = Vec::with_capacity(calls);
        let mut placed = 0;
        for &task in singles.tasks.iter().take(calls) {
            let req = Request {
                count,
                ..singles.templates[task].clone()
            };
            let t0 = Instant::now();
            let d = placement::place(&snapshot, &req, &mut |n| ties.below(n))
                .expect("the cluster has ACTIVE instances");
            latencies.push(t0.elapsed());
            placed += d.placed.len();
        }
        let total: Duration = latencies.iter().sum();
        latencies.sort_unstable();
        println!(
            "  count {count:<2}        {} placements/s; per call p50 {:.2} ms, p99 {:.2} ms",
            thousands(placed as f64 / total.as_secs_f64()),
            us(percentile(&latencies, 50.0)) / 1000.0,
            us(percentile(&latencies, 99.0)) / 1000.0,
        );
    }
    Ok(())
}
