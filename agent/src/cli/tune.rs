//! `dbhost tune`.

use super::Ctx;
use clap::Args;

#[derive(Debug, Args)]
pub struct TuneArgs {}

pub fn run(_ctx: &Ctx, _args: TuneArgs) -> anyhow::Result<i32> {
    super::not_yet("tune")
}
