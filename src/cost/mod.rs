//! What tasks cost: metering of what ran (`meter`), reports over metered
//! usage (`report`), estimates for planned workloads (`estimate`) and the
//! EC2 packing both compare against (`pack`). Metering, packing and pricing
//! are pure; the `run` functions are the CLI edge.

pub mod estimate;
pub mod pack;

/// `berth cost …`
#[derive(clap::Subcommand)]
pub enum CostCommand {
    /// Price a planned workload on FARGATE, FARGATE_SPOT, EC2 on-demand and
    /// EC2 spot, with the EC2 packing assumed and the cheapest choice.
    Estimate(estimate::Args),
}

/// Run a `berth cost` subcommand; the result is the process exit code.
pub fn run(cmd: CostCommand) -> anyhow::Result<i32> {
    match cmd {
        CostCommand::Estimate(a) => estimate::run(a),
    }
}
