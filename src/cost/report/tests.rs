use super::*;
use crate::cost::meter::{self, InstanceFacts, TaskFacts};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn facts(family: &str, cpu: u32, memory: u32, seconds: i64) -> TaskFacts {
    TaskFacts {
        task_arn: format!("arn:aws:ecs:us-east-1:000000000000:task/c/{family}{seconds}"),
        cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/c".into(),
        region: "us-east-1".into(),
        family: family.into(),
        task_definition_arn: format!(
            "arn:aws:ecs:us-east-1:000000000000:task-definition/{family}:1"
        ),
        started_by: Some("batch".into()),
        group: Some(format!("service:{family}-svc")),
        launch_type: "FARGATE".into(),
        capacity_provider: None,
        arch: Arch::X86_64,
        cpu,
        memory,
        ephemeral_gib: 20.0,
        created_ms: 0,
        pull_started_ms: Some(0),
        stopped_ms: Some(seconds * 1000),
        instance: None,
    }
}

#[test]
fn a_fargate_task_compares_with_every_option() {
    let t = meter::task_usage(&facts("web", 1024, 2048, 3600), 0);
    let r = report(std::slice::from_ref(&t), &[], GroupBy::Family);
    assert_eq!(r.lines.len(), 1);
    let l = &r.lines[0];
    let rates = pricing::fargate("us-east-1").unwrap();
    assert!(close(
        l.fargate_usd,
        rates.x86_64.vcpu_hour + 2.0 * rates.x86_64.gb_hour
    ));
    assert!(close(l.as_run_usd, l.fargate_usd), "as run on FARGATE");
    assert!(close(
        l.fargate_spot_usd.unwrap(),
        rates.spot_x86_64.vcpu_hour + 2.0 * rates.spot_x86_64.gb_hour
    ));
    // EC2: the cheapest x86 type that holds 1024/2048 tasks, full.
    let p = pack::cheapest(
        "us-east-1",
        Arch::X86_64,
        Shape::new(1024, 2048),
        1_000_000,
        false,
    )
    .unwrap();
    let per = p.tasks_per_instance.unwrap();
    assert!(close(
        l.ec2_on_demand_usd.unwrap(),
        p.instance_hourly_usd / per as f64
    ));
    assert!(l.ec2_spot_usd.unwrap() < l.ec2_on_demand_usd.unwrap());
    let assumed = r.ec2_packing.iter().find(|a| !a.spot).unwrap();
    assert_eq!(assumed.instance_type, p.instance_type);
    assert_eq!(assumed.tasks_per_instance, per);
    let cheapest = r.cheapest.unwrap();
    let min = [
        l.fargate_usd,
        l.fargate_spot_usd.unwrap(),
        l.ec2_on_demand_usd.unwrap(),
        l.ec2_spot_usd.unwrap(),
    ]
    .into_iter()
    .fold(f64::INFINITY, f64::min);
    assert!(close(cheapest.usd, min));
}

#[test]
fn short_tasks_bill_the_fargate_minute_and_sizes_round_up_to_fargate_pairs() {
    // 700 cpu / 1500 MiB (an EC2 reservation) is priced on Fargate as
    // 1024 / 2048, for 60 s though it ran 10 s.
    let t = meter::task_usage(&facts("odd", 700, 1500, 10), 0);
    let r = report(&[t], &[], GroupBy::Family);
    let rates = pricing::fargate("us-east-1").unwrap().x86_64;
    assert!(close(
        r.lines[0].fargate_usd,
        (rates.vcpu_hour + 2.0 * rates.gb_hour) * 60.0 / 3600.0
    ));
    assert!(
        r.notes.iter().any(|n| n.contains("rounded up")),
        "{:?}",
        r.notes
    );
    // On EC2 the task's share is paid for the 10 s it ran, not the minute.
    let p = pack::cheapest(
        "us-east-1",
        Arch::X86_64,
        Shape::new(700, 1500),
        1_000_000,
        false,
    )
    .unwrap();
    let per = p.tasks_per_instance.unwrap() as f64;
    assert!(close(
        r.lines[0].ec2_on_demand_usd.unwrap(),
        p.instance_hourly_usd / per * 10.0 / 3600.0
    ));
}

#[test]
fn arm64_has_no_fargate_spot_and_packs_on_arm64_types() {
    let mut f = facts("arm", 1024, 2048, 600);
    f.arch = Arch::Arm64;
    let t = meter::task_usage(&f, 0);
    let r = report(&[t], &[], GroupBy::Family);
    assert_eq!(r.lines[0].fargate_spot_usd, None);
    assert_eq!(r.total.fargate_spot_usd, None);
    for p in &r.ec2_packing {
        assert_eq!(
            crate::catalog::find(&p.instance_type).unwrap().arch,
            Arch::Arm64
        );
    }
    assert!(r.cheapest.unwrap().option != "FARGATE_SPOT");
}

#[test]
fn lines_group_and_total_and_idle_capacity_counts_once() {
    let a = meter::task_usage(&facts("web", 256, 512, 120), 0);
    let b = meter::task_usage(&facts("web", 256, 512, 300), 0);
    let c = meter::task_usage(&facts("batch", 1024, 2048, 60), 0);
    let inst = InstanceFacts {
        arn: "arn:aws:ecs:us-east-1:000000000000:container-instance/c/i".into(),
        ec2_instance_id: "i-1".into(),
        cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/c".into(),
        region: "us-east-1".into(),
        instance_type: "t3.medium".into(),
        registered_cpu: 2048,
        registered_memory: 3992,
        spot: false,
        started_ms: 0,
        ended_ms: Some(3_600_000),
        billed_before_s: 0,
    };
    let iu = meter::instance_usage(&inst, &[], None, 0);
    let tasks = [a.clone(), b.clone(), c.clone()];
    let r = report(&tasks, std::slice::from_ref(&iu), GroupBy::Family);
    assert_eq!(
        r.lines.iter().map(|l| l.key.as_str()).collect::<Vec<_>>(),
        ["batch", "web"]
    );
    let web = &r.lines[1];
    assert_eq!(web.tasks, 2);
    assert_eq!(web.billed_seconds, 420);
    assert!(close(web.as_run_usd, a.cost_usd + b.cost_usd));
    assert_eq!(r.total.tasks, 3);
    assert!(close(
        r.total.as_run_usd,
        a.cost_usd + b.cost_usd + c.cost_usd + iu.idle_usd
    ));
    assert!(close(r.idle.usd, iu.cost_usd), "no task on it: all idle");
    let by_service = report(&tasks, &[], GroupBy::Service);
    assert_eq!(by_service.lines[1].key, "web-svc");
    let by_task = report(&tasks, &[], GroupBy::Task);
    assert_eq!(by_task.lines.len(), 3);
    let by_started = report(&tasks, &[], GroupBy::StartedBy);
    assert_eq!(by_started.lines.len(), 1);
    assert_eq!(by_started.lines[0].key, "batch");
    let text = render_report(&r);
    assert!(
        text.contains("idle capacity (1 instance(s), 3600 s)"),
        "{text}"
    );
    assert!(text.contains("TOTAL"), "{text}");
}

#[test]
fn booting_and_warm_pool_time_of_groups_is_idle_capacity() {
    // ListInstanceUsage lists a group's instance billed while it booted or
    // ran in a warm pool with no container instance: all of it is idle.
    let warm = InstanceUsage {
        container_instance_arn: String::new(),
        ec2_instance_id: "i-warm".into(),
        cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/c".into(),
        region: "us-east-1".into(),
        instance_type: "m5.large".into(),
        market: "on-demand".into(),
        metered_from: 0.0,
        metered_to: None,
        running: true,
        seconds: 45.0,
        billed_seconds: 45,
        cost_usd: 0.0012,
        attributed_usd: 0.0,
        idle_usd: 0.0012,
        basis: "booting".into(),
    };
    let r = report(&[], std::slice::from_ref(&warm), GroupBy::Family);
    assert_eq!(r.idle.instances, 1);
    assert!(close(r.idle.usd, 0.0012));
    assert!(close(r.total.as_run_usd, 0.0012));
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("booting or prepared in a warm pool")),
        "{:?}",
        r.notes
    );
}

#[test]
fn a_task_that_never_pulled_costs_nothing_anywhere() {
    let mut f = facts("web", 1024, 2048, 30);
    f.pull_started_ms = None;
    let t = meter::task_usage(&f, 0);
    let r = report(&[t], &[], GroupBy::Family);
    let l = &r.lines[0];
    assert_eq!(l.fargate_usd, 0.0);
    assert_eq!(l.ec2_on_demand_usd, Some(0.0));
}

#[test]
fn since_takes_times_dates_and_ages() {
    let now = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let at = |s: &str| parse_since(s, now).unwrap().to_rfc3339();
    assert_eq!(at("2026-11-23T09:30:00Z"), "2026-11-23T09:30:00+00:00");
    assert_eq!(at("2026-11-20"), "2026-11-20T00:00:00+00:00");
    assert_eq!(at("90m"), "2026-11-23T10:30:00+00:00");
    assert_eq!(at("2d"), "2026-11-21T12:00:00+00:00");
    for bad in ["", "soon", "5y", "-3h", "h"] {
        let e = parse_since(bad, now).unwrap_err().to_string();
        assert!(e.contains("--since"), "{bad}: {e}");
    }
}

#[test]
fn no_cost_is_printed_negative() {
    assert_eq!(usd(-0.0), "$0.0000");
    assert_eq!(usd(-1e-12), "$0.0000");
    assert_eq!(usd(0.0), "$0.0000");
    assert_eq!(usd(0.005), "$0.005000");
    assert_eq!(usd(-0.25), "$-0.2500");
}
