//! Cost-estimate benchmark: the pure estimate and the EC2 packer, without
//! the API.
//!
//! `cargo bench --bench estimate` times
//!
//! 1. `berth::cost::estimate::estimate` for 10,000 concurrent tasks of a
//!    1 vCPU / 2 GiB X86_64 task definition (Fargate, Fargate Spot, and the
//!    EC2 packing tried on every priced x86_64 catalog type, on-demand and
//!    spot), and the same for ARM64;
//! 2. `berth::cost::pack::cheapest_for_mix` for a mix of 5,000 tasks in
//!    12 shapes, on every priced x86_64 type (first-fit-decreasing);
//! 3. the same mix given task by task (5,000 entries of count 1), as a usage
//!    report might pass it, and 5,000 tasks of 5,000 distinct shapes (the
//!    packer's worst case: no two tasks merge);
//!
//! each run several times, printing the median, min and max in
//! milliseconds next to the target (under 1 s). It prints figures and never
//! fails on a missed target.
//!
//! Flags (after `--`): `--runs N` (default 9), `--tasks N` (default 10,000),
//! `--mix N` (default 5,000). Unknown arguments, such as the `--bench` that
//! cargo adds, are ignored.

mod common;

use std::time::{Duration, Instant};

use berth::catalog::Arch;
use berth::cost::estimate::{estimate, Input};
use berth::cost::pack::{self, Shape};
use serde_json::json;

use common::{for_each_arg, positive};

const TARGET_MS: f64 = 1000.0;
const REGION: &str = "us-east-1";
/// The mixed workload's shapes: (CPU units, MiB).
const MIX: [(u64, u64); 12] = [
    (256, 512),
    (256, 1024),
    (512, 1024),
    (512, 2048),
    (1024, 2048),
    (1024, 3072),
    (1024, 4096),
    (2048, 4096),
    (2048, 8192),
    (4096, 8192),
    (0, 768),
    (128, 300),
];

struct Args {
    runs: usize,
    tasks: u64,
    mix: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        runs: 9,
        tasks: 10_000,
        mix: 5_000,
    };
    for_each_arg(|name, value| {
        match name {
            "--runs" => args.runs = positive("--runs", &value()?)?,
            "--tasks" => args.tasks = positive("--tasks", &value()?)?,
            "--mix" => args.mix = positive("--mix", &value()?)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(args)
}

/// Run `f` `runs` times; (median, min, max) in ms, and the last result.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, f64, f64, T) {
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let out = std::hint::black_box(f());
        times.push(start.elapsed());
        last = Some(out);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        last.expect("at least one run"),
    )
}

fn report(what: &str, (median, min, max): (f64, f64, f64), result: &str) {
    let verdict = if median < TARGET_MS { "ok" } else { "MISSED" };
    println!(
        "{what:<60} median {median:>8.3} ms  (min {min:.3}, max {max:.3})  target < {TARGET_MS:.0} ms: {verdict}"
    );
    println!("{:<60} {result}", "");
}

fn input(arch: &str, tasks: u64) -> Input {
    let td = json!({
        "family": "bench",
        "cpu": "1024",
        "memory": "2048",
        "runtimePlatform": {"cpuArchitecture": arch},
        "containerDefinitions": [{"name": "a", "image": "x"}]
    });
    Input {
        label: "bench".into(),
        task_definition: td.as_object().cloned().unwrap_or_default(),
        tasks,
        duration_seconds: 1800.0,
        concurrency: None,
        region: REGION.into(),
        include_burstable: true,
    }
}

fn main() -> std::process::ExitCode {
    common::exit_with(real_main())
}

fn real_main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let x86_types = pack::candidates(REGION, Arch::X86_64, false).len();
    let arm_types = pack::candidates(REGION, Arch::Arm64, false).len();
    println!(
        "berth cost estimate benchmark ({} runs each; {REGION}: {x86_types} x86_64 and {arm_types} arm64 priced types)",
        args.runs
    );
    // Parse the embedded catalog and price files once, outside the timings.
    estimate(&input("X86_64", 1))?;

    for arch in ["X86_64", "ARM64"] {
        let i = input(arch, args.tasks);
        let (med, min, max, e) = time(args.runs, || estimate(&i));
        let e = e?;
        let ec2 = e
            .choices
            .iter()
            .find(|c| c.name == "EC2")
            .and_then(|c| c.packing.as_ref());
        let result = match ec2 {
            Some(p) => format!(
                "EC2: {} × {}, {} each; cheapest {}",
                p.instances,
                p.instance_type,
                p.tasks_per_instance.unwrap_or(0),
                e.cheapest.as_ref().map_or("-", |c| c.name.as_str())
            ),
            None => "EC2 not offered".into(),
        };
        report(
            &format!("estimate, {} tasks, {arch}", args.tasks),
            (med, min, max),
            &result,
        );
    }

    // A mix: counts spread over the shapes, largest share to small tasks.
    let weights: Vec<u64> = (0..MIX.len() as u64).map(|i| 12 - i).collect();
    let total_weight: u64 = weights.iter().sum();
    let mut grouped: Vec<(Shape, u64)> = MIX
        .iter()
        .zip(&weights)
        .map(|(&(c, m), w)| (Shape::new(c, m), args.mix * w / total_weight))
        .collect();
    let placed: u64 = grouped.iter().map(|&(_, n)| n).sum();
    grouped[0].1 += args.mix - placed;
    let mut singles: Vec<(Shape, u64)> = Vec::with_capacity(args.mix as usize);
    let mut left: Vec<u64> = grouped.iter().map(|&(_, n)| n).collect();
    // Interleave the shapes, as tasks arrive.
    while left.iter().any(|&n| n > 0) {
        for (i, n) in left.iter_mut().enumerate() {
            if *n > 0 {
                *n -= 1;
                singles.push((grouped[i].0, 1));
            }
        }
    }
    // The worst case for the packer: every task a shape of its own.
    let distinct: Vec<(Shape, u64)> = (0..args.mix)
        .map(|i| Shape::new(128 + (i * 37) % 1920, 256 + (i * 101) % 7680))
        .map(|s| (s, 1))
        .collect();
    for (what, mix) in [
        ("grouped", &grouped),
        ("task by task", &singles),
        ("all shapes distinct", &distinct),
    ] {
        for spot in [false, true] {
            let (med, min, max, p) = time(args.runs, || {
                pack::cheapest_for_mix(REGION, Arch::X86_64, mix, spot)
            });
            let result = match p {
                Some(p) => format!(
                    "{} × {}, cpu {:.0}% mem {:.0}%, ${:.4}/h",
                    p.instances,
                    p.instance_type,
                    p.cpu_utilisation * 100.0,
                    p.memory_utilisation * 100.0,
                    p.hourly_usd
                ),
                None => "no type holds the mix".into(),
            };
            report(
                &format!(
                    "mix of {} tasks, {what}, {}",
                    args.mix,
                    if spot { "spot" } else { "on-demand" }
                ),
                (med, min, max),
                &result,
            );
        }
    }
    Ok(())
}
