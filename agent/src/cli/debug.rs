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
    /// Write man pages (section 8) generated from the CLI definition into DIR.
    #[command(hide = true)]
    GenMan {
        /// Output directory.
        dir: PathBuf,
    },
    /// Write bash, zsh and fish completions generated from the CLI definition into DIR.
    #[command(hide = true)]
    GenCompletions {
        /// Output directory.
        dir: PathBuf,
    },
}

pub fn run(_ctx: &Ctx, cmd: DebugCmd) -> anyhow::Result<i32> {
    match cmd {
        DebugCmd::CaptureHost { .. } => super::not_yet("debug capture-host"),
        DebugCmd::GenMan { dir } => {
            for p in super::gen_docs::write_man(&dir)? {
                println!("{}", p.display());
            }
            Ok(crate::exit::OK)
        }
        DebugCmd::GenCompletions { dir } => {
            for p in super::gen_docs::write_completions(&dir)? {
                println!("{}", p.display());
            }
            Ok(crate::exit::OK)
        }
    }
}
