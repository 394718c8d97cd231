//! `dbhost md ...` and `dbhost assemble`.

use super::Ctx;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum MdCmd {
    /// Print the md superblock(s) of a device or image file (like mdadm --examine).
    Examine {
        /// Block device or image file.
        device: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct AssembleArgs {}

pub fn run(_ctx: &Ctx, _cmd: MdCmd) -> anyhow::Result<i32> {
    super::not_yet("md")
}

pub fn run_assemble(_ctx: &Ctx, _args: AssembleArgs) -> anyhow::Result<i32> {
    super::not_yet("assemble")
}
