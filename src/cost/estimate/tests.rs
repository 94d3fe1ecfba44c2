use super::*;
use serde_json::json;

const R: &str = "us-east-1";

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn td(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn fargate_td(cpu: &str, memory: &str) -> Map<String, Value> {
    td(json!({
        "family": "t",
        "cpu": cpu,
        "memory": memory,
        "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [{"name": "a", "image": "x"}]
    }))
}

fn input(td: Map<String, Value>, tasks: u64, seconds: f64, k: Option<u64>) -> Input {
    Input {
        label: "t".into(),
        task_definition: td,
        tasks,
        duration_seconds: seconds,
        concurrency: k,
        region: R.into(),
        include_burstable: true,
    }
}

fn choice<'a>(e: &'a Estimate, name: &str) -> &'a Choice {
    e.choices.iter().find(|c| c.name == name).unwrap()
}

#[test]
fn fargate_bills_per_second_rounded_up() {
    // 1 vCPU / 2 GB, 90.2 s → 91 s billed.
    let e = estimate(&input(fargate_td("1024", "2048"), 3, 90.2, None)).unwrap();
    let per_task = (0.04048 + 2.0 * 0.004445) * 91.0 / 3600.0;
    let f = choice(&e, "FARGATE");
    assert!(close(f.per_task_usd.unwrap(), per_task));
    assert!(close(f.total_usd.unwrap(), 3.0 * per_task));
    assert_eq!(f.billed_seconds, Some(91));
    assert!(!f.estimated);
}

#[test]
fn fargate_one_minute_minimum() {
    let e = estimate(&input(fargate_td("1024", "2048"), 1, 5.0, None)).unwrap();
    let per_task = (0.04048 + 2.0 * 0.004445) * 60.0 / 3600.0;
    assert!(close(choice(&e, "FARGATE").total_usd.unwrap(), per_task));
    assert_eq!(choice(&e, "FARGATE").billed_seconds, Some(60));
}

#[test]
fn fargate_spot_uses_spot_rates_and_is_marked_an_estimate() {
    let e = estimate(&input(fargate_td("1 vCPU", "2 GB"), 10, 3600.0, None)).unwrap();
    let s = choice(&e, "FARGATE_SPOT");
    assert!(close(s.per_task_usd.unwrap(), 0.012144 + 2.0 * 0.0013335));
    assert!(s.estimated);
    assert!(e.notes.iter().any(|n| n.contains("spot_x86_64")));
}

#[test]
fn ephemeral_storage_above_20_gib_is_charged() {
    let mut d = fargate_td("1024", "2048");
    d.insert("ephemeralStorage".into(), json!({"sizeInGiB": 50}));
    let e = estimate(&input(d, 1, 3600.0, None)).unwrap();
    let expect = 0.04048 + 2.0 * 0.004445 + 30.0 * 0.000111;
    assert!(close(choice(&e, "FARGATE").total_usd.unwrap(), expect));
}

#[test]
fn arm64_has_no_fargate_spot_and_packs_arm64_types_only() {
    let mut d = fargate_td("1024", "2048");
    d.insert(
        "runtimePlatform".into(),
        json!({"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}),
    );
    let e = estimate(&input(d, 4, 3600.0, None)).unwrap();
    assert_eq!(e.task.architecture, "ARM64");
    let f = choice(&e, "FARGATE");
    assert!(close(f.total_usd.unwrap(), 4.0 * (0.03238 + 2.0 * 0.00356)));
    let s = choice(&e, "FARGATE_SPOT");
    assert!(!s.offered && s.total_usd.is_none());
    assert!(s.note.as_deref().unwrap().contains("ARM64"));
    for name in ["EC2", "EC2_SPOT"] {
        let p = choice(&e, name).packing.as_ref().unwrap();
        let t = crate::catalog::find(&p.instance_type).unwrap();
        assert_eq!(t.arch, Arch::Arm64, "{}", t.name);
    }
    assert_ne!(e.cheapest.as_ref().unwrap().name, "FARGATE_SPOT");
}

#[test]
fn waves_with_concurrency_keep_instances_for_the_run() {
    // 10 tasks, 3 at once → 4 waves of 10 minutes → instances live 40 min.
    let e = estimate(&input(fargate_td("1024", "2048"), 10, 600.0, Some(3))).unwrap();
    assert_eq!((e.concurrency, e.waves), (3, 4));
    assert!(close(e.run_seconds, 2400.0));
    for name in ["EC2", "EC2_SPOT"] {
        let c = choice(&e, name);
        let p = c.packing.as_ref().unwrap();
        assert_eq!(p.tasks, 3, "packs the concurrent tasks only");
        let expect = p.instances as f64 * p.instance_hourly_usd * 2400.0 / 3600.0;
        assert!(close(c.total_usd.unwrap(), expect), "{name}");
        assert!(close(c.per_task_usd.unwrap(), expect / 10.0));
        assert_eq!(c.billed_seconds, Some(2400));
    }
    // Fargate does not care about waves.
    let f = choice(&e, "FARGATE");
    assert!(close(
        f.total_usd.unwrap(),
        10.0 * (0.04048 + 2.0 * 0.004445) / 6.0
    ));
    // Concurrency above N counts as N.
    let e = estimate(&input(fargate_td("1024", "2048"), 2, 600.0, Some(50))).unwrap();
    assert_eq!((e.concurrency, e.waves), (2, 1));
}

#[test]
fn ec2_bills_each_instance_at_least_60_seconds() {
    let e = estimate(&input(fargate_td("1024", "2048"), 1, 10.0, None)).unwrap();
    let c = choice(&e, "EC2");
    let p = c.packing.as_ref().unwrap();
    assert_eq!(c.billed_seconds, Some(60));
    assert!(close(
        c.total_usd.unwrap(),
        p.instances as f64 * p.instance_hourly_usd / 60.0
    ));
}

#[test]
fn ec2_packing_is_the_cheapest_non_burstable_when_asked() {
    let mut i = input(fargate_td("2048", "4096"), 55, 300.0, Some(11));
    i.include_burstable = false;
    let e = estimate(&i).unwrap();
    let p = choice(&e, "EC2").packing.as_ref().unwrap();
    assert!(!p.burstable);
    let all = pack::options(R, Arch::X86_64, Shape::new(2048, 4096), 11, false);
    let best = all.iter().find(|p| !p.burstable).unwrap();
    assert_eq!(p, best);
}

#[test]
fn cheapest_is_the_minimum_offered() {
    let e = estimate(&input(fargate_td("512", "1024"), 100, 1800.0, Some(20))).unwrap();
    let min = e
        .choices
        .iter()
        .filter_map(|c| c.total_usd)
        .fold(f64::INFINITY, f64::min);
    let c = e.cheapest.as_ref().unwrap();
    assert!(close(c.total_usd, min));
    assert!(close(c.per_task_usd * 100.0, c.total_usd));
}

#[test]
fn an_invalid_fargate_size_is_rounded_up_and_said_so() {
    // 1.5 vCPU / 3000 MiB, summed from two containers of an EC2 definition.
    let d = td(json!({
        "family": "ec2",
        "containerDefinitions": [
            {"name": "a", "image": "x", "cpu": 1024, "memory": 2000},
            {"name": "b", "image": "x", "cpu": 512, "memoryReservation": 1000}
        ]
    }));
    let e = estimate(&input(d, 1, 3600.0, None)).unwrap();
    assert_eq!((e.task.cpu, e.task.memory_mib), (1536, 3000));
    assert_eq!(e.task.source, "containers");
    let f = e.fargate_size.as_ref().unwrap();
    assert_eq!((f.cpu, f.memory_mib, f.rounded_up), (2048, 4096, true));
    assert!(close(
        choice(&e, "FARGATE").total_usd.unwrap(),
        2.0 * 0.04048 + 4.0 * 0.004445
    ));
    assert!(e.notes.iter().any(|n| n.contains("not a Fargate size")));
    assert!(choice(&e, "FARGATE")
        .note
        .as_deref()
        .unwrap()
        .contains("rounded up"));
    // The EC2 packing uses the task's own reservation.
    assert_eq!(choice(&e, "EC2").packing.as_ref().unwrap().tasks, 1);
}

#[test]
fn containers_without_cpu_reserve_none_and_are_noted() {
    let d = td(json!({
        "family": "ec2",
        "containerDefinitions": [{"name": "a", "image": "x", "memory": 512}]
    }));
    let e = estimate(&input(d, 4, 60.0, None)).unwrap();
    assert_eq!(e.task.cpu, 0);
    assert!(e.notes.iter().any(|n| n.contains("no CPU is reserved")));
    assert_eq!(
        e.fargate_size.as_ref().map(|f| (f.cpu, f.memory_mib)),
        Some((256, 512))
    );
}

#[test]
fn a_task_too_large_for_fargate_is_not_offered_there() {
    let d = td(json!({
        "family": "big",
        "containerDefinitions": [{"name": "a", "image": "x", "cpu": 2048, "memory": 200000}]
    }));
    let e = estimate(&input(d, 1, 60.0, None)).unwrap();
    assert!(e.fargate_size.is_none());
    assert!(!choice(&e, "FARGATE").offered);
    assert!(choice(&e, "EC2").offered || !choice(&e, "EC2").offered);
}

#[test]
fn no_memory_is_an_error() {
    let d = td(json!({"family": "x", "containerDefinitions": [{"name": "a", "image": "x"}]}));
    let err = estimate(&input(d, 1, 60.0, None)).unwrap_err();
    assert!(err.to_string().contains("no memory"), "{err}");
}

#[test]
fn unknown_region_lists_the_known_ones() {
    let mut i = input(fargate_td("256", "512"), 1, 60.0, None);
    i.region = "mars-north-1".into();
    let err = estimate(&i).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("--region mars-north-1"), "{msg}");
    for r in pricing::regions() {
        assert!(msg.contains(r), "{msg}");
    }
}

#[test]
fn zero_tasks_or_concurrency_are_errors() {
    let err = estimate(&input(fargate_td("256", "512"), 0, 60.0, None)).unwrap_err();
    assert_eq!(err, EstimateError::NoTasks);
    let err = estimate(&input(fargate_td("256", "512"), 1, 60.0, Some(0))).unwrap_err();
    assert_eq!(err, EstimateError::NoConcurrency);
    assert!(parse_count("0").is_err() && parse_count("-3").is_err());
    assert_eq!(parse_count("7"), Ok(7));
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("90s").unwrap(), 90.0);
    assert_eq!(parse_duration("5m").unwrap(), 300.0);
    assert_eq!(parse_duration("1h30m").unwrap(), 5400.0);
    assert_eq!(parse_duration("2.5h").unwrap(), 9000.0);
    assert_eq!(parse_duration("1h 2m 3.5s").unwrap(), 3723.5);
    assert_eq!(parse_duration(" 10M ").unwrap(), 600.0);
}

#[test]
fn bad_durations_name_the_flag() {
    for bad in [
        "", "-5m", "0s", "0h0m", "5", "abc", "5x", "1h1h", "h", "1.2.3s",
    ] {
        let err = parse_duration(bad).unwrap_err();
        assert!(
            matches!(err, EstimateError::Duration { .. }),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().starts_with("--duration"), "{bad}: {err}");
    }
    assert!(parse_duration("-5m")
        .unwrap_err()
        .to_string()
        .contains("positive"));
}

#[test]
fn human_durations() {
    assert_eq!(human_duration(300.0), "5m");
    assert_eq!(human_duration(5400.0), "1h30m");
    assert_eq!(human_duration(90.0), "1m30s");
    assert_eq!(human_duration(3600.0), "1h");
    assert_eq!(human_duration(90.5), "90.5s");
}

#[test]
fn json_keys_are_camel_case_and_table_says_the_cheapest() {
    let e = estimate(&input(fargate_td("1024", "2048"), 8, 300.0, Some(4))).unwrap();
    let v = serde_json::to_value(&e).unwrap();
    assert!(v["choices"][2]["packing"]["tasksPerInstance"].is_u64());
    assert!(v["choices"][0]["perTaskUsd"].is_f64());
    assert!(v["cheapest"]["totalUsd"].is_f64());
    assert_eq!(v["runSeconds"], json!(600.0));
    let table = render_table(&e);
    assert!(table.contains("cheapest: "), "{table}");
    assert!(table.contains("EC2 on-demand"), "{table}");
    assert!(table.contains(" × "), "{table}");
}
