//! `dbhost generalize`: prepare this VM for image capture, show what that would do
//! (`--dry-run`), scan a root or mounted image for leftovers (`--check`), or run a first-boot
//! phase of a VM deployed from the image (`--first-boot`, used by the units).

use super::output::{print_json, OutputFormat};
use super::Ctx;
use crate::exit::{Failure, OK, REFUSED};
use crate::generalize::firstboot::{self, Phase};
use crate::generalize::{self, scan, tally, OpReport, Options, Outcome, Runner};
use crate::host::RealExec;
use clap::Args;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct GeneralizeArgs {
    /// Show every file and setting that would be removed or changed; change nothing.
    #[arg(long, conflicts_with_all = ["check", "first_boot"])]
    pub dry_run: bool,

    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,

    /// Scan this root (or a mounted image with --sysroot) for leftovers of every category and
    /// for secrets; exit 3 listing each, 0 when clean. Changes nothing.
    #[arg(long, conflicts_with = "first_boot")]
    pub check: bool,

    /// Profile that the first boot of a deployed VM passes to `dbhost apply` (recorded in
    /// /var/lib/dbhost; default: /etc/dbhost/profile.toml if present then).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,

    /// MySQL/MariaDB datadir (default: from the option files, else /var/lib/mysql).
    #[arg(long, value_name = "DIR")]
    pub mysql_datadir: Option<PathBuf>,

    /// PostgreSQL data directory (repeatable; default: every cluster found).
    #[arg(long = "pg-datadir", value_name = "DIR")]
    pub pg_datadirs: Vec<PathBuf>,

    /// Run a first-boot phase (used by dbhost-firstboot*.service).
    #[arg(long, value_enum, value_name = "PHASE", hide = true)]
    pub first_boot: Option<Phase>,
}

fn options(ctx: &Ctx, a: &GeneralizeArgs) -> Options {
    Options {
        mysql_datadir: a.mysql_datadir.clone(),
        pg_datadirs: a.pg_datadirs.clone(),
        profile: a.profile.clone(),
        exe: if ctx.host.is_live() {
            std::env::current_exe().ok()
        } else {
            None
        },
    }
}

pub fn run(ctx: &Ctx, a: GeneralizeArgs) -> anyhow::Result<i32> {
    let exec = RealExec;
    if let Some(phase) = a.first_boot {
        ctx.require_live("generalize --first-boot")?;
        let done = match phase {
            Phase::PreDb => firstboot::run_pre(&ctx.host, &exec)?,
            Phase::PostDb => {
                let exe = std::env::current_exe()?;
                firstboot::run_post(&ctx.host, &exec, &exe)?
            }
        };
        match ctx.output {
            OutputFormat::Json => print_json(&serde_json::json!({
                "command": "generalize", "mode": "first-boot", "done": done }))?,
            OutputFormat::Text => {
                for d in &done {
                    crate::outln!("{d}");
                }
            }
        }
        return Ok(OK);
    }
    if let Some(p) = &a.profile {
        if !p.is_file() {
            return Err(Failure::Usage(format!(
                "profile {} not found; pass an existing profile file",
                p.display()
            ))
            .into());
        }
    }
    let opts = options(ctx, &a);
    if a.check {
        let findings = scan::check(&ctx.host, &exec, &opts)?;
        match ctx.output {
            OutputFormat::Json => print_json(&serde_json::json!({
                "command": "generalize", "mode": "check", "root": ctx.host.root(),
                "clean": findings.is_empty(), "leftovers": findings }))?,
            OutputFormat::Text => {
                for f in &findings {
                    crate::outln!(
                        "{:<13} {:<24} {}  ({})",
                        f.category.to_string(),
                        f.id,
                        f.path,
                        f.detail
                    );
                }
                if findings.is_empty() {
                    crate::outln!("clean: no leftovers under {}", ctx.host.root().display());
                } else {
                    crate::outln!(
                        "{} leftover(s) under {}",
                        findings.len(),
                        ctx.host.root().display()
                    );
                }
            }
        }
        return Ok(if findings.is_empty() { OK } else { REFUSED });
    }

    let ops = generalize::build_ops(&ctx.host, &opts)?;
    let runner = Runner::new(&ctx.host, &exec);
    if a.dry_run {
        let obs = runner.observe(&ops)?;
        match ctx.output {
            OutputFormat::Json => print_json(&serde_json::json!({
                "command": "generalize", "mode": "dry-run", "ops": obs }))?,
            OutputFormat::Text => print_ops(&obs, false),
        }
        return Ok(OK);
    }

    ctx.require_live("generalize")?;
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::Usage(
                "generalize removes this machine's identity, credentials and logs; \
                 pass --yes to run it non-interactively (see --dry-run first)"
                    .into(),
            )
            .into());
        }
        let obs = runner.observe(&ops)?;
        print_ops(&obs, false);
        crate::err!("Generalize this machine for image capture (the database is stopped)? [y/N] ");
        std::io::stderr().flush().ok();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Err(Failure::Interrupted("not confirmed; nothing changed".into()).into());
        }
    }
    let json = ctx.output == OutputFormat::Json;
    let reports = runner.apply(&ops, |r| {
        if json {
            let _ = super::output::print_event(&serde_json::json!({
                "event": "op", "category": r.category, "id": r.id, "items": r.items }));
        } else {
            print_ops(std::slice::from_ref(r), true);
        }
    })?;
    let (changed, unchanged, skipped) = tally(&reports);
    if json {
        super::output::print_event(&serde_json::json!({
            "event": "done", "command": "generalize",
            "changed": changed, "unchanged": unchanged, "skipped": skipped }))?;
    } else {
        crate::outln!(
            "generalize: {changed} changed, {unchanged} unchanged, {skipped} skipped. \
             Power off and capture; the image's first boot runs {} and {}.",
            firstboot::UNIT_PRE,
            firstboot::UNIT_POST
        );
    }
    Ok(OK)
}

fn print_ops(reports: &[OpReport], applied: bool) {
    for r in reports {
        let pending = r
            .items
            .iter()
            .filter(|i| i.outcome != Some(Outcome::Unchanged))
            .count();
        if pending == 0 {
            if !applied {
                crate::outln!("[{}] {}: nothing to do", r.category, r.id);
            } else {
                crate::outln!("[{}] {}: unchanged", r.category, r.id);
            }
            continue;
        }
        crate::outln!("[{}] {}: {}", r.category, r.id, r.description);
        for i in &r.items {
            match i.outcome {
                None => crate::outln!("    {}: {}", i.target, i.change),
                Some(Outcome::Unchanged) => {}
                Some(o) => crate::outln!("    {:?} {}: {}", o, i.target, i.change),
            }
        }
    }
}
