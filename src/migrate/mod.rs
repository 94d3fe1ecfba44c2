//! Converting workloads between launch types and onto Berth: task
//! definitions between FARGATE and EC2 (`taskdef`), App Runner services
//! (`apprunner`) and Docker Compose files (`compose`). Every converter is pure
//! (JSON or YAML in, JSON out, with the list of changes it made and why); the
//! `run` functions are the thin CLI edge that reads files or asks a server.

pub mod apprunner;
pub mod compose;
pub mod source;
pub mod taskdef;

/// `berth migrate …`
#[derive(clap::Subcommand)]
pub enum MigrateCommand {
    /// Convert a task definition to the FARGATE or EC2 launch type; print it
    /// (ready for `aws ecs register-task-definition --cli-input-json`) and,
    /// on stderr, every change and why.
    TaskDefinition(taskdef::ConvertArgs),
    /// List what stops a task definition from running on FARGATE or EC2,
    /// without converting it.
    Lint(taskdef::LintArgs),
    /// Turn an App Runner service (`aws apprunner describe-service` JSON)
    /// into a FARGATE task definition, target group, listener, service and
    /// scaling policy.
    Apprunner(apprunner::Args),
    /// Turn a Docker Compose file into a task definition.
    Compose(compose::Args),
}

/// Run a `berth migrate` subcommand; the result is the process exit code.
pub fn run(cmd: MigrateCommand) -> anyhow::Result<i32> {
    match cmd {
        MigrateCommand::TaskDefinition(a) => taskdef::run_convert(a),
        MigrateCommand::Lint(a) => taskdef::run_lint(a),
        MigrateCommand::Apprunner(a) => apprunner::run(a),
        MigrateCommand::Compose(a) => compose::run(a),
    }
}
