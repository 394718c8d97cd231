//! `dbhost plan`.

use super::Ctx;
use clap::Args;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The profile (TOML).
    #[arg(long, value_name = "FILE")]
    pub profile: std::path::PathBuf,
}

pub fn run(_ctx: &Ctx, _args: PlanArgs) -> anyhow::Result<i32> {
    super::not_yet("plan")
}
