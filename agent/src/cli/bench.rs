//! `dbhost bench`.

use super::Ctx;
use clap::Args;

#[derive(Debug, Args)]
pub struct BenchArgs {}

pub fn run(_ctx: &Ctx, _args: BenchArgs) -> anyhow::Result<i32> {
    super::not_yet("bench")
}
