//! `dbhost debug ...`.

use super::{Ctx, OutputFormat};
use crate::detect::{capture, DetectOptions};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum DebugCmd {
    /// Collect exactly the files detection reads into a tar.gz with a sha256 manifest, so this
    /// host can be replayed elsewhere with --sysroot.
    CaptureHost {
        /// Output archive (.tar.gz).
        out: PathBuf,
        /// Do not query Azure IMDS while capturing.
        #[arg(long)]
        no_imds: bool,
    },
    /// Resolve a host name the way every dbhost network client does (/etc/hosts, then the
    /// nameservers of /etc/resolv.conf; no libc resolver).
    Resolve {
        /// Host name.
        name: String,
    },
    /// Open a backup destination and list what is under its prefix (credentials, reachability).
    Destination {
        #[command(flatten)]
        dest: super::backup::DestArgs,
        /// List at most this many objects.
        #[arg(long, default_value_t = 20)]
        limit: usize,
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

pub fn run(ctx: &Ctx, cmd: DebugCmd) -> anyhow::Result<i32> {
    match cmd {
        DebugCmd::CaptureHost { out, no_imds } => {
            let opts = DetectOptions {
                query_imds: !no_imds,
                ..DetectOptions::default()
            };
            let s = capture::capture_host(&ctx.host, &opts, &out)?;
            match ctx.output {
                OutputFormat::Json => super::output::print_json(&serde_json::json!({
                    "archive": out.display().to_string(),
                    "files": s.files, "links": s.links, "dirs": s.dirs,
                    "disks": s.inventory.disks.len(),
                }))?,
                OutputFormat::Text => crate::outln!(
                    "wrote {}: {} files, {} links, {} directories, {} disks (no disk contents; replay: tar -xzf {} -C DIR && dbhost detect --sysroot DIR)",
                    out.display(),
                    s.files,
                    s.links,
                    s.dirs,
                    s.inventory.disks.len(),
                    out.display()
                ),
            }
            Ok(crate::exit::OK)
        }
        DebugCmd::Resolve { name } => {
            let r = crate::net::dns::Resolver::from_host(&ctx.host);
            let ips = crate::net::block_on(async move { r.lookup(&name).await })??;
            for ip in ips {
                crate::outln!("{ip}");
            }
            Ok(crate::exit::OK)
        }
        DebugCmd::Destination { dest, limit } => {
            let d = dest.resolve(None)?;
            let store = super::backup::open_destination(ctx, &d, None)?;
            let keys = crate::net::block_on(crate::backup::object::list_keys(&store, limit))??;
            for k in &keys {
                crate::outln!("{k}");
            }
            crate::errln!("{}: {} object(s) listed", store.name, keys.len());
            Ok(crate::exit::OK)
        }
        DebugCmd::GenMan { dir } => {
            for p in super::gen_docs::write_man(&dir)? {
                crate::outln!("{}", p.display());
            }
            Ok(crate::exit::OK)
        }
        DebugCmd::GenCompletions { dir } => {
            for p in super::gen_docs::write_completions(&dir)? {
                crate::outln!("{}", p.display());
            }
            Ok(crate::exit::OK)
        }
    }
}
