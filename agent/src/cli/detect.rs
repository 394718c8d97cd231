//! `dbhost detect`.

use super::Ctx;
use clap::Args;

#[derive(Debug, Args)]
pub struct DetectArgs {}

pub fn run(_ctx: &Ctx, _args: DetectArgs) -> anyhow::Result<i32> {
    super::not_yet("detect")
}
