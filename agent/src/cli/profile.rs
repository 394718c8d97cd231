//! `dbhost profile ...`.

use super::Ctx;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ProfileCmd {
    /// Parse and validate a profile; errors name file:line:col and the key.
    Check {
        /// The profile (TOML).
        file: PathBuf,
    },
}

pub fn run(_ctx: &Ctx, _cmd: ProfileCmd) -> anyhow::Result<i32> {
    super::not_yet("profile check")
}
