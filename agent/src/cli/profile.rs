//! `dbhost profile ...`.

use super::{Ctx, OutputFormat};
use crate::profile::{self, Level, Profile, SelectMode};
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum ProfileCmd {
    /// Parse and validate a profile; errors name file:line:col and the key (exit 2).
    Check {
        /// The profile (TOML).
        file: PathBuf,
    },
}

pub fn run(ctx: &Ctx, cmd: ProfileCmd) -> anyhow::Result<i32> {
    match cmd {
        ProfileCmd::Check { file } => {
            let prof = match profile::load(&file)? {
                Ok(p) => p,
                Err(errs) => return Ok(report_errors(ctx, &errs)),
            };
            match ctx.output {
                OutputFormat::Text => crate::outln!("{}", summary(&file, &prof)),
                OutputFormat::Json => super::output::print_json(&serde_json::json!({
                    "file": file,
                    "valid": true,
                    "profile": prof,
                }))?,
            }
            Ok(crate::exit::OK)
        }
    }
}

/// Print every profile error (text: one `file:line:col: message (key `x.y`)` line each on
/// stderr; JSON: one document on stdout) and return the usage exit code (2).
pub fn report_errors(ctx: &Ctx, errs: &profile::ProfileErrors) -> i32 {
    match ctx.output {
        OutputFormat::Text => crate::errln!("{errs}"),
        OutputFormat::Json => {
            let v = serde_json::json!({
                "event": "error",
                "exit_code": crate::exit::USAGE,
                "valid": false,
                "errors": errs.0,
            });
            crate::outln!("{v}");
        }
    }
    crate::exit::USAGE
}

/// Load a profile; a bad profile becomes `Failure::Usage` (exit 2) carrying every error, one per
/// line, as `file:line:col: message (key `x.y`)`.
pub fn load_or_usage(file: &Path) -> anyhow::Result<Profile> {
    match profile::load(file)? {
        Ok(p) => Ok(p),
        Err(errs) => Err(crate::exit::Failure::Usage(errs.to_string()).into()),
    }
}

/// A short human summary of a valid profile.
pub fn summary(file: &Path, p: &Profile) -> String {
    let d = &p.disks;
    let sel = match d.select_mode() {
        SelectMode::AllCandidates => "all candidates".to_string(),
        SelectMode::Luns => format!(
            "LUNs {}",
            profile::units::format_luns(d.luns.as_deref().unwrap_or(&[]))
        ),
        SelectMode::Match => {
            let mut parts = Vec::new();
            if let Some(s) = &d.serial {
                parts.push(format!("serial {}", s.join("|")));
            }
            if let Some(m) = &d.model {
                parts.push(format!("model {}", m.join("|")));
            }
            parts.join(" and ")
        }
    };
    let modes: Vec<String> = d
        .allowed_cache_modes
        .iter()
        .map(|m| format!("{m:?}").to_lowercase())
        .collect();
    let array = match p.array.level {
        Level::Raid0 => format!("raid0 \"{}\", chunk {}", p.array.name, p.array.chunk()),
        Level::None => "none (single disk)".to_string(),
    };
    let db = match p.database.datadir() {
        Some(dd) => format!("{} -> {}/{dd}", p.database.engine, p.filesystem.mount_point),
        None => "none (storage only)".to_string(),
    };
    let tuning = if p.tuning.enabled {
        format!("on, {} override(s)", p.tuning.overrides.len())
    } else {
        "off".to_string()
    };
    let mut s = format!(
        "{}: valid profile (version {})\n",
        file.display(),
        p.version
    );
    if let Some(desc) = &p.description {
        s += &format!("  {desc}\n");
    }
    s += &format!(
        "  disks:      platform {}, {sel}, cache modes [{}], min size {}, expected {}\n",
        d.platform,
        modes.join(", "),
        d.min_size,
        d.expected_count
    );
    s += &format!("  array:      {array}\n");
    s += &format!(
        "  filesystem: {} label \"{}\" at {}\n",
        p.filesystem.fs_type, p.filesystem.label, p.filesystem.mount_point
    );
    s += &format!("  database:   {db}\n");
    s += &format!("  tuning:     {tuning}");
    if let Some(b) = &p.backup {
        s += &format!(
            "\n  backup:     {} to {}{}{}{}",
            b.kind.as_str(),
            b.destination,
            if b.encrypt_to.is_empty() {
                ""
            } else {
                ", encrypted"
            },
            b.schedule
                .as_ref()
                .map(|x| format!(", scheduled {}", x.backup))
                .unwrap_or_default(),
            b.restore_on_apply
                .as_ref()
                .map(|r| format!(", restore-on-apply {r}"))
                .unwrap_or_default()
        );
    }
    s
}
