//! What tasks cost: metering of what ran (`meter`), reports over metered
//! usage (`report`, the store edge in `usage`), estimates for planned workloads (`estimate`) and the
//! EC2 packing both compare against (`pack`). Metering, packing and pricing
//! are pure; the `run` functions are the CLI edge.

pub mod estimate;
pub mod meter;
pub mod metering;
pub mod pack;
pub mod report;
pub mod usage;

/// `berth cost …`
#[derive(clap::Subcommand)]
pub enum CostCommand {
    /// Price a planned workload on FARGATE, FARGATE_SPOT, EC2 on-demand and
    /// EC2 spot, with the EC2 packing assumed and the cheapest choice.
    Estimate(estimate::Args),
    /// Metered usage: each task (what it was billed for and what it cost as
    /// it ran) and each container instance (its price, what its tasks paid,
    /// the idle rest).
    Usage(report::UsageArgs),
    /// What metered usage cost as it ran, and what it would have cost on
    /// FARGATE, FARGATE_SPOT, EC2 on-demand and EC2 spot, with the idle
    /// capacity of instances on its own line.
    Report(report::ReportArgs),
}

/// Run a `berth cost` subcommand; the result is the process exit code.
pub fn run(cmd: CostCommand) -> anyhow::Result<i32> {
    match cmd {
        CostCommand::Estimate(a) => estimate::run(a),
        CostCommand::Usage(a) => report::run_usage(a),
        CostCommand::Report(a) => report::run_report(a),
    }
}
