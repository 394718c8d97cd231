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
    /// Probe image files or block devices (read-only) as detection probes a disk: signatures
    /// found, and whether the contents are proven blank or would be refused, and why.
    Probe {
        /// Image files or block devices.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
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
        DebugCmd::Probe { paths } => {
            let probes = paths
                .iter()
                .map(|p| crate::detect::probe_image(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            match ctx.output {
                OutputFormat::Json => super::output::print_json(&probes)?,
                OutputFormat::Text => {
                    for p in &probes {
                        crate::outln!("{}", probe_line(p));
                    }
                }
            }
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

/// One image's verdict as a line: "PATH (SIZE bytes): VERDICT[: reasons]".
fn probe_line(p: &crate::detect::ImageProbe) -> String {
    let what = match p.verdict {
        "blank" => "blank (no signature; the blank-proof regions read as zeros)".to_string(),
        "md-member" => format!(
            "md member (not blank; plan may adopt its array): {}",
            p.signatures
                .iter()
                .map(|s| format!("{} at byte {}", s.kind, s.offset))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        v => format!("{v}: {}", p.reason),
    };
    format!("{} ({} bytes): {what}", p.path, p.size_bytes)
}
