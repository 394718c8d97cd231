//! `dbhost generalize`.

use super::Ctx;
use clap::Args;

#[derive(Debug, Args)]
pub struct GeneralizeArgs {}

pub fn run(_ctx: &Ctx, _args: GeneralizeArgs) -> anyhow::Result<i32> {
    super::not_yet("generalize")
}
