//! What the server measures about itself, in Prometheus's text format at
//! `GET /_berth/metrics`: where a task's start spends its time (by phase),
//! and each controller's passes, failures and pass durations. One
//! [`Metrics`] is made by `berth server` and passed to what records into it.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The phases of a task's start the agent times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// From the task's `createdAt` (RunTask committed) until the agent takes
    /// it up: the API's write and the agent's wake-up.
    Pickup,
    /// The instance address, the task network, the sandbox image and the
    /// task's cgroup made sure of.
    Prepare,
    /// The task's network sandbox created and started, or taken from the
    /// pool of ready ones.
    Sandbox,
    /// Images looked up (pulled when missing).
    Image,
    /// Containers created.
    Create,
    /// Containers started in dependency order.
    Start,
    /// One save of what the agent observed (a store transaction).
    Save,
    /// From `createdAt` to RUNNING saved.
    Total,
}

impl Phase {
    pub const ALL: [Phase; 8] = [
        Phase::Pickup,
        Phase::Prepare,
        Phase::Sandbox,
        Phase::Image,
        Phase::Create,
        Phase::Start,
        Phase::Save,
        Phase::Total,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pickup => "pickup",
            Phase::Prepare => "prepare",
            Phase::Sandbox => "sandbox",
            Phase::Image => "image",
            Phase::Create => "create",
            Phase::Start => "start",
            Phase::Save => "save",
            Phase::Total => "total",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabel {
    controller: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    task_start: Histograms<PhaseLabel>,
    passes: Family<ControllerLabel, Counter>,
    failures: Family<ControllerLabel, Counter>,
    pass_seconds: Histograms<ControllerLabel>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let task_start: Histograms<PhaseLabel> = Family::new_with_constructor(seconds_histogram);
        let passes = Family::<ControllerLabel, Counter>::default();
        let failures = Family::<ControllerLabel, Counter>::default();
        let pass_seconds: Histograms<ControllerLabel> =
            Family::new_with_constructor(seconds_histogram);
        registry.register(
            "berth_task_start_phase_seconds",
            "Where a task's start spends its time, by phase",
            task_start.clone(),
        );
        registry.register(
            "berth_controller_passes",
            "Passes each controller ran",
            passes.clone(),
        );
        registry.register(
            "berth_controller_failures",
            "Passes of each controller that failed (and were retried)",
            failures.clone(),
        );
        registry.register(
            "berth_controller_pass_seconds",
            "How long each controller's passes took",
            pass_seconds.clone(),
        );
        Metrics {
            registry,
            task_start,
            passes,
            failures,
            pass_seconds,
        }
    }
}

impl Metrics {
    /// Record how long a phase of a task's start took.
    pub fn task_phase(&self, phase: Phase, took: Duration) {
        self.task_start
            .get_or_create(&PhaseLabel {
                phase: phase.as_str(),
            })
            .observe(took.as_secs_f64());
    }

    /// Record one pass of a controller.
    pub fn controller_pass(&self, controller: &'static str, took: Duration, failed: bool) {
        let l = ControllerLabel { controller };
        self.passes.get_or_create(&l).inc();
        if failed {
            self.failures.get_or_create(&l).inc();
        }
        self.pass_seconds
            .get_or_create(&l)
            .observe(took.as_secs_f64());
    }

    /// Everything, in Prometheus's text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_and_passes_are_exposed() {
        let m = Metrics::default();
        m.task_phase(Phase::Sandbox, Duration::from_millis(120));
        m.task_phase(Phase::Sandbox, Duration::from_millis(80));
        m.controller_pass("agent", Duration::from_millis(3), true);
        let text = m.encode();
        assert!(
            text.contains("berth_task_start_phase_seconds_count{phase=\"sandbox\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("berth_task_start_phase_seconds_sum{phase=\"sandbox\"} 0.2"),
            "{text}"
        );
        assert!(text.contains("berth_controller_failures_total{controller=\"agent\"} 1"));
    }
}
