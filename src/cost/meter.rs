//! Metering: what each task and each container instance used, billed as AWS
//! bills it. Pure: facts in (read from the store by `cost::usage`), usage out.
//!
//! * A FARGATE task is billed per second from the start of its image pull
//!   (`pullStartedAt`) until it stops (`stoppedAt`), rounded up to the
//!   second, with a one-minute minimum, on its task cpu and memory (and its
//!   ephemeral storage above the included 20 GB). A task that never began to
//!   pull is not billed.
//! * An EC2 container instance is billed per second while it is registered,
//!   with a 60-second minimum. Each EC2 task is attributed a share of its
//!   instance's price for as long as it holds its reservation (from placement
//!   to stop): the instance's hourly price is split into a CPU part and a
//!   memory part in the ratio of Fargate's vCPU-hour and GB-hour rates in the
//!   region (so a vCPU and a GB weigh on an instance as they do on Fargate),
//!   and the task pays the fraction of each part it reserved. What the tasks
//!   do not pay is the instance's idle capacity.

use serde::{Deserialize, Serialize};

use crate::catalog::{self, Arch};
use crate::pricing;

/// Seconds in an hour.
const HOUR: f64 = 3600.0;

/// What metering needs to know of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFacts {
    pub task_arn: String,
    pub cluster_arn: String,
    pub region: String,
    pub family: String,
    pub task_definition_arn: String,
    pub started_by: Option<String>,
    pub group: Option<String>,
    /// `FARGATE` or `EC2`.
    pub launch_type: String,
    pub capacity_provider: Option<String>,
    pub arch: Arch,
    /// CPU units: the task size on FARGATE, the reservation on EC2.
    pub cpu: u32,
    /// MiB: the task size on FARGATE, the reservation on EC2.
    pub memory: u32,
    /// Configured ephemeral storage, GiB (20 when not configured).
    pub ephemeral_gib: f64,
    /// Epoch milliseconds.
    pub created_ms: i64,
    pub pull_started_ms: Option<i64>,
    pub stopped_ms: Option<i64>,
    /// Where an EC2 task runs.
    pub instance: Option<InstanceFacts>,
}

/// What metering needs to know of a container instance.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceFacts {
    pub arn: String,
    pub ec2_instance_id: String,
    pub cluster_arn: String,
    pub region: String,
    pub instance_type: String,
    /// Registered CPU units and memory MiB.
    pub registered_cpu: i64,
    pub registered_memory: i64,
    pub spot: bool,
    /// Epoch milliseconds: registered, and deregistered if it has been.
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    /// Seconds of the same start EC2 billed before the instance registered
    /// (an Auto Scaling instance booting, or running in a warm pool): they
    /// count toward the one 60-second minimum of the start.
    pub billed_before_s: u64,
}

/// An EC2 task's share of its instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Share {
    /// Reserved CPU over registered CPU.
    pub cpu: f64,
    /// Reserved memory over registered memory.
    pub memory: f64,
    /// The fraction of the instance's price the task pays.
    pub price: f64,
}

/// A task's metered usage: the `TaskUsage` shape of Berth's API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskUsage {
    pub task_arn: String,
    pub cluster_arn: String,
    pub region: String,
    pub family: String,
    pub task_definition_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub launch_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
    pub cpu_architecture: String,
    pub cpu: u32,
    pub memory: u32,
    pub ephemeral_storage_gib: f64,
    /// Epoch seconds: when billing starts, and ends (absent while running).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metered_from: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metered_to: Option<f64>,
    /// Whether the task still runs (the figures are so far).
    pub running: bool,
    /// The exact metered time, and what is billed for it.
    pub seconds: f64,
    pub billed_seconds: u64,
    /// What the task cost as it ran, USD.
    pub cost_usd: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<Share>,
    /// How the cost was computed, in words.
    pub basis: String,
}

/// A container instance's metered usage: the `InstanceUsage` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceUsage {
    pub container_instance_arn: String,
    pub ec2_instance_id: String,
    pub cluster_arn: String,
    pub region: String,
    pub instance_type: String,
    /// `on-demand` or `spot`.
    pub market: String,
    pub metered_from: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metered_to: Option<f64>,
    pub running: bool,
    pub seconds: f64,
    pub billed_seconds: u64,
    /// The instance's price for the time metered, USD.
    pub cost_usd: f64,
    /// What its tasks paid of it.
    pub attributed_usd: f64,
    /// The rest: capacity nobody reserved.
    pub idle_usd: f64,
    pub basis: String,
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Seconds billed for `seconds`: rounded up to the whole second, at least
/// `minimum`.
pub fn billed(seconds: f64, minimum: u64) -> u64 {
    let whole = if seconds.is_finite() && seconds > 0.0 {
        seconds.ceil() as u64
    } else {
        0
    };
    whole.max(minimum)
}

/// The fraction of an instance's price that is its CPU, by the ratio of
/// Fargate's vCPU-hour and GB-hour rates in the region (x86 on-demand).
/// `None` for an instance type or region Berth has no figures for.
pub fn cpu_part(region: &str, instance_type: &str) -> Option<f64> {
    let t = catalog::find(instance_type)?;
    let rates = pricing::fargate(region)?.x86_64;
    let cpu = f64::from(t.vcpus) * rates.vcpu_hour;
    let mem = t.memory_mib as f64 / 1024.0 * rates.gb_hour;
    (cpu + mem > 0.0).then(|| cpu / (cpu + mem))
}

/// The hourly price of an instance, on-demand or spot (estimate).
pub fn instance_hourly(region: &str, instance_type: &str, spot: bool) -> Option<f64> {
    if spot {
        pricing::ec2_spot_estimate(region, instance_type)
    } else {
        pricing::ec2_on_demand(region, instance_type)
    }
}

/// Meter a task at `now_ms` (the end of a task still running).
pub fn task_usage(f: &TaskFacts, now_ms: i64) -> TaskUsage {
    let running = f.stopped_ms.is_none();
    let end_ms = f.stopped_ms.unwrap_or(now_ms);
    let mut u = TaskUsage {
        task_arn: f.task_arn.clone(),
        cluster_arn: f.cluster_arn.clone(),
        region: f.region.clone(),
        family: f.family.clone(),
        task_definition_arn: f.task_definition_arn.clone(),
        started_by: f.started_by.clone(),
        group: f.group.clone(),
        launch_type: f.launch_type.clone(),
        capacity_provider_name: f.capacity_provider.clone(),
        cpu_architecture: f.arch.as_str().to_string(),
        cpu: f.cpu,
        memory: f.memory,
        ephemeral_storage_gib: f.ephemeral_gib,
        metered_from: None,
        metered_to: f.stopped_ms.map(secs),
        running,
        seconds: 0.0,
        billed_seconds: 0,
        cost_usd: 0.0,
        container_instance_arn: f.instance.as_ref().map(|i| i.arn.clone()),
        instance_type: f.instance.as_ref().map(|i| i.instance_type.clone()),
        share: None,
        basis: String::new(),
    };
    match &f.instance {
        None => {
            let spot = f.capacity_provider.as_deref() == Some("FARGATE_SPOT");
            let Some(start) = f.pull_started_ms else {
                u.basis = "Fargate: the image pull never started, so nothing is billed".into();
                return u;
            };
            u.metered_from = Some(secs(start));
            u.seconds = secs(end_ms - start).max(0.0);
            u.billed_seconds = billed(u.seconds, pricing::FARGATE_MINIMUM_SECONDS);
            u.cost_usd = pricing::fargate_cost(
                &f.region,
                f.arch,
                spot,
                f64::from(f.cpu) / 1024.0,
                f64::from(f.memory) / 1024.0,
                f.ephemeral_gib,
                u.billed_seconds as f64,
            );
            u.basis = format!(
                "Fargate{} {} in {}: {} vCPU, {} GB, per second from the start of the image pull, one-minute minimum",
                if spot { " Spot" } else { "" },
                f.arch.as_str(),
                f.region,
                f64::from(f.cpu) / 1024.0,
                f64::from(f.memory) / 1024.0
            );
        }
        Some(i) => {
            u.metered_from = Some(secs(f.created_ms));
            u.seconds = secs(end_ms - f.created_ms).max(0.0);
            u.billed_seconds = billed(u.seconds, 0);
            let cpu = ratio(f.cpu, i.registered_cpu);
            let memory = ratio(f.memory, i.registered_memory);
            match (
                instance_hourly(&i.region, &i.instance_type, i.spot),
                cpu_part(&i.region, &i.instance_type),
            ) {
                (Some(hourly), Some(part)) => {
                    let price = part * cpu + (1.0 - part) * memory;
                    u.cost_usd = hourly * price * u.billed_seconds as f64 / HOUR;
                    u.share = Some(Share { cpu, memory, price });
                    u.basis = format!(
                        "{:.1}% of {} {} {} (${hourly:.4}/h) while its reservation is held: cpu {:.1}% × {:.0}% + memory {:.1}% × {:.0}%",
                        price * 100.0,
                        if i.spot { "spot" } else { "on-demand" },
                        i.instance_type,
                        i.region,
                        cpu * 100.0,
                        part * 100.0,
                        memory * 100.0,
                        (1.0 - part) * 100.0
                    );
                }
                _ => {
                    u.share = Some(Share {
                        cpu,
                        memory,
                        price: 0.0,
                    });
                    u.basis = format!(
                        "no price for instance type {} in {}: not priced",
                        i.instance_type, i.region
                    );
                }
            }
        }
    }
    u
}

fn ratio(part: u32, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        (f64::from(part) / whole as f64).min(1.0)
    }
}

/// Whole seconds billed for `ms` milliseconds of use, at least `minimum`.
pub fn seconds_billed(ms: i64, minimum: u64) -> u64 {
    (ms.max(0) as u64).div_ceil(1000).max(minimum)
}

/// Meter an instance over `[max(start, since), end or now]`, with what its
/// tasks (already metered, any order, other instances' ignored) paid of it.
/// The 60-second minimum applies when the instance started inside the window.
pub fn instance_usage(
    i: &InstanceFacts,
    tasks: &[TaskUsage],
    since_ms: Option<i64>,
    now_ms: i64,
) -> InstanceUsage {
    let from_ms = since_ms.map_or(i.started_ms, |s| s.max(i.started_ms));
    let end_ms = i.ended_ms.unwrap_or(now_ms).max(from_ms);
    let seconds = secs(end_ms - from_ms);
    let minimum = if from_ms == i.started_ms {
        pricing::EC2_MINIMUM_SECONDS.saturating_sub(i.billed_before_s)
    } else {
        0
    };
    let billed_seconds = billed(seconds, minimum);
    let hourly = instance_hourly(&i.region, &i.instance_type, i.spot);
    let cost_usd = hourly.map_or(0.0, |h| h * billed_seconds as f64 / HOUR);
    // Folded from +0.0: `sum` of no f64 is -0.0.
    let attributed_usd: f64 = tasks
        .iter()
        .filter(|t| t.container_instance_arn.as_deref() == Some(i.arn.as_str()))
        .map(|t| t.cost_usd)
        .fold(0.0, |a, b| a + b);
    let market = if i.spot { "spot" } else { "on-demand" };
    InstanceUsage {
        container_instance_arn: i.arn.clone(),
        ec2_instance_id: i.ec2_instance_id.clone(),
        cluster_arn: i.cluster_arn.clone(),
        region: i.region.clone(),
        instance_type: i.instance_type.clone(),
        market: market.into(),
        metered_from: secs(from_ms),
        metered_to: i.ended_ms.map(secs),
        running: i.ended_ms.is_none(),
        seconds,
        billed_seconds,
        cost_usd,
        attributed_usd,
        idle_usd: (cost_usd - attributed_usd).max(0.0),
        basis: match hourly {
            Some(h) => format!(
                "{} {market} in {} at ${h:.4}/h, per second while registered, 60-second minimum",
                i.instance_type, i.region
            ),
            None => format!(
                "no price for instance type {} in {}: not priced",
                i.instance_type, i.region
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fargate_task(cpu: u32, memory: u32, pull: Option<i64>, stop: Option<i64>) -> TaskFacts {
        TaskFacts {
            task_arn: "arn:aws:ecs:us-east-1:000000000000:task/c/1".into(),
            cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/c".into(),
            region: "us-east-1".into(),
            family: "web".into(),
            task_definition_arn: "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1".into(),
            started_by: None,
            group: Some("family:web".into()),
            launch_type: "FARGATE".into(),
            capacity_provider: None,
            arch: Arch::X86_64,
            cpu,
            memory,
            ephemeral_gib: 20.0,
            created_ms: 1_000,
            pull_started_ms: pull,
            stopped_ms: stop,
            instance: None,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn fargate_is_billed_from_the_pull_rounded_up_with_a_minute_minimum() {
        let rates = pricing::fargate("us-east-1").unwrap().x86_64;
        let per_second = (1.0 * rates.vcpu_hour + 2.0 * rates.gb_hour) / 3600.0;
        // 90.2 s → 91 s.
        let u = task_usage(&fargate_task(1024, 2048, Some(10_000), Some(100_200)), 0);
        assert!(close(u.seconds, 90.2), "{}", u.seconds);
        assert_eq!(u.billed_seconds, 91);
        assert!(close(u.cost_usd, 91.0 * per_second), "{}", u.cost_usd);
        assert_eq!(u.metered_from, Some(10.0));
        assert!(!u.running);
        // 12 s → the one-minute minimum.
        let u = task_usage(&fargate_task(1024, 2048, Some(10_000), Some(22_000)), 0);
        assert_eq!(u.billed_seconds, 60);
        assert!(close(u.cost_usd, 60.0 * per_second));
        // Still running: metered up to now.
        let u = task_usage(&fargate_task(1024, 2048, Some(10_000), None), 130_000);
        assert!(u.running);
        assert_eq!(u.billed_seconds, 120);
        // Never pulled: nothing.
        let u = task_usage(&fargate_task(1024, 2048, None, Some(5_000)), 0);
        assert_eq!(u.billed_seconds, 0);
        assert_eq!(u.cost_usd, 0.0);
    }

    #[test]
    fn fargate_spot_and_arm64_use_their_rates() {
        let r = pricing::fargate("us-east-1").unwrap();
        let mut f = fargate_task(2048, 4096, Some(0), Some(3_600_000));
        f.arch = Arch::Arm64;
        let u = task_usage(&f, 0);
        assert!(close(
            u.cost_usd,
            2.0 * r.arm64.vcpu_hour + 4.0 * r.arm64.gb_hour
        ));
        let mut f = fargate_task(2048, 4096, Some(0), Some(3_600_000));
        f.capacity_provider = Some("FARGATE_SPOT".into());
        let u = task_usage(&f, 0);
        assert!(close(
            u.cost_usd,
            2.0 * r.spot_x86_64.vcpu_hour + 4.0 * r.spot_x86_64.gb_hour
        ));
    }

    fn m5_large(spot: bool) -> InstanceFacts {
        InstanceFacts {
            arn: "arn:aws:ecs:us-east-1:000000000000:container-instance/c/i".into(),
            ec2_instance_id: "i-1".into(),
            cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/c".into(),
            region: "us-east-1".into(),
            instance_type: "m5.large".into(),
            registered_cpu: 2048,
            registered_memory: 7985,
            spot,
            started_ms: 0,
            ended_ms: Some(7_200_000),
            billed_before_s: 0,
        }
    }

    #[test]
    fn one_minimum_per_start_counting_the_boot() {
        // Booted 3 s (billed apart, before it registered), then 18.5 s in
        // the cluster: EC2 bills one 60-second minimum for the start.
        let mut i = m5_large(false);
        i.ended_ms = Some(18_500);
        i.billed_before_s = seconds_billed(3_000, 0);
        let u = instance_usage(&i, &[], None, 0);
        assert_eq!(u.billed_seconds + i.billed_before_s, 60);
        // Booted for longer than the minimum: plain per-second billing.
        i.billed_before_s = 75;
        assert_eq!(instance_usage(&i, &[], None, 0).billed_seconds, 19);
        assert_eq!(seconds_billed(1, 0), 1);
        assert_eq!(seconds_billed(1_001, 0), 2);
        assert_eq!(seconds_billed(-5, 60), 60);
    }

    #[test]
    fn an_instance_that_ran_no_task_paid_nothing_for_tasks() {
        let u = instance_usage(&m5_large(false), &[], None, 0);
        assert!(u.attributed_usd.is_sign_positive(), "{}", u.attributed_usd);
        assert_eq!(u.attributed_usd, 0.0);
    }

    #[test]
    fn an_ec2_task_pays_its_reserved_share_and_the_rest_is_idle() {
        let hourly = pricing::ec2_on_demand("us-east-1", "m5.large").unwrap();
        let part = cpu_part("us-east-1", "m5.large").unwrap();
        // m5.large: 2 vCPU, 8 GiB; Fargate's us-east-1 ratio weighs the CPU
        // at 2 × 0.04048 against 8 × 0.004445.
        assert!(close(part, 0.08096 / (0.08096 + 0.03556)), "{part}");
        let mut f = fargate_task(1024, 3992, None, Some(3_600_000));
        f.launch_type = "EC2".into();
        f.created_ms = 0;
        f.instance = Some(m5_large(false));
        let t = task_usage(&f, 0);
        let share = t.share.clone().unwrap();
        assert!(close(share.cpu, 0.5));
        assert!(close(share.memory, 3992.0 / 7985.0));
        assert_eq!(t.billed_seconds, 3600);
        assert!(close(
            t.cost_usd,
            hourly * (part * 0.5 + (1.0 - part) * 3992.0 / 7985.0)
        ));
        let i = instance_usage(&m5_large(false), std::slice::from_ref(&t), None, 0);
        assert_eq!(i.billed_seconds, 7200);
        assert!(close(i.cost_usd, 2.0 * hourly));
        assert!(close(i.attributed_usd, t.cost_usd));
        assert!(close(i.idle_usd, 2.0 * hourly - t.cost_usd));
    }

    #[test]
    fn instances_bill_a_minimum_minute_and_spot_at_the_estimate() {
        let mut f = m5_large(true);
        f.ended_ms = Some(20_500);
        let i = instance_usage(&f, &[], None, 0);
        assert_eq!(i.billed_seconds, 60);
        let spot = pricing::ec2_spot_estimate("us-east-1", "m5.large").unwrap();
        assert!(close(i.cost_usd, spot * 60.0 / 3600.0));
        assert_eq!(i.market, "spot");
        // A window starting after the launch: no minimum, clipped.
        let mut f = m5_large(false);
        f.ended_ms = Some(100_000);
        let i = instance_usage(&f, &[], Some(90_000), 0);
        assert_eq!(i.billed_seconds, 10);
        // Running: up to now.
        let mut f = m5_large(false);
        f.ended_ms = None;
        let i = instance_usage(&f, &[], None, 600_000);
        assert!(i.running);
        assert_eq!(i.billed_seconds, 600);
    }

    #[test]
    fn an_unpriced_instance_type_costs_nothing_and_says_so() {
        let mut i = m5_large(false);
        i.instance_type = "x9.huge".into();
        let mut f = fargate_task(1024, 1024, None, Some(60_000));
        f.launch_type = "EC2".into();
        f.instance = Some(i.clone());
        let t = task_usage(&f, 0);
        assert_eq!(t.cost_usd, 0.0);
        assert!(t.basis.contains("no price"), "{}", t.basis);
        let u = instance_usage(&i, &[t], None, 0);
        assert_eq!(u.cost_usd, 0.0);
    }
}
