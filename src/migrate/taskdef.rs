//! (being written)

#[derive(clap::Args)]
pub struct ConvertArgs {}

#[derive(clap::Args)]
pub struct LintArgs {}

pub fn run_convert(_args: ConvertArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not built yet")
}

pub fn run_lint(_args: LintArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not built yet")
}
