//! `dbhost apply`, `dbhost status`, `dbhost rollback`.

use super::Ctx;
use clap::Args;

#[derive(Debug, Args)]
pub struct ApplyArgs {}

#[derive(Debug, Args)]
pub struct StatusArgs {}

#[derive(Debug, Args)]
pub struct RollbackArgs {}

pub fn run_apply(_ctx: &Ctx, _args: ApplyArgs) -> anyhow::Result<i32> {
    super::not_yet("apply")
}

pub fn run_status(_ctx: &Ctx, _args: StatusArgs) -> anyhow::Result<i32> {
    super::not_yet("status")
}

pub fn run_rollback(_ctx: &Ctx, _args: RollbackArgs) -> anyhow::Result<i32> {
    super::not_yet("rollback")
}
