//! `dbhost debug ...`.

use super::Ctx;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum DebugCmd {
    /// Collect exactly the files detection reads into a tar.gz with a sha256 manifest, so this
    /// host can be replayed elsewhere with --sysroot.
    CaptureHost {
        /// Output archive (.tar.gz).
        out: PathBuf,
    },
}

pub fn run(_ctx: &Ctx, _cmd: DebugCmd) -> anyhow::Result<i32> {
    super::not_yet("debug capture-host")
}
