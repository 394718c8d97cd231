//! `dbhost apply`, `dbhost status`, `dbhost rollback`.
//!
//! apply: profile → (wait for disks) → detect → plan → steps; shows the plan and asks on a TTY
//! unless `--yes`; `--dry-run` only observes; `--output json` emits one JSON event per line.

use super::{Ctx, OutputFormat};
use crate::apply::{self, build, ApplyCx, Event, Journal, Observation, Outcome, RunOptions, Undo};
use crate::exit::{self, Failure};
use crate::host::RealExec;
use anyhow::{Context, Result};
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The profile (TOML).
    #[arg(long, value_name = "FILE")]
    pub profile: PathBuf,
    /// Show what would be done (observe only); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (cloud-init, pipelines). Required when stdin is not a TTY.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Wait up to DURATION for the profile's disks before planning (e.g. 300s); default: the
    /// profile's `disks.wait-timeout`.
    #[arg(long, value_name = "DURATION", value_parser = parse_dur)]
    pub wait_disks: Option<Duration>,
    /// Explicitly allow clearing selected disks that hold old signatures (DESTROYS their data).
    #[arg(long)]
    pub wipe: bool,
    /// After a verified move, remove the kept old datadir.
    #[arg(long)]
    pub finalize: bool,
}

fn parse_dur(s: &str) -> Result<Duration, String> {
    super::detect::parse_duration(s)
}

#[derive(Debug, Args)]
pub struct StatusArgs {}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

pub(crate) fn confirm(question: &str) -> Result<bool> {
    crate::err!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES"))
}

/// Take dbhost's run lock (two applies at once — cloud-init and a first-boot unit — must not
/// interleave). Held until the process exits.
pub(crate) fn take_lock(ctx: &Ctx) -> Result<nix::fcntl::Flock<std::fs::File>> {
    take_named_lock(ctx, "dbhost.lock")
}

/// An exclusive lock on `/run/NAME` for the life of the process; refused when another run
/// holds it.
pub(crate) fn take_named_lock(ctx: &Ctx, name: &str) -> Result<nix::fcntl::Flock<std::fs::File>> {
    use nix::fcntl::{Flock, FlockArg};
    let dir = ctx.host.run("");
    std::fs::create_dir_all(&dir).ok();
    let p = ctx.host.run(name);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .with_context(|| format!("opening {}", p.display()))?;
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        // Kept for the life of the process (dropping it unlocks).
        Ok(l) => Ok(l),
        Err((_, e)) => Err(Failure::Refused(format!(
            "another dbhost run holds {} ({e}); wait for it to finish",
            p.display()
        ))
        .into()),
    }
}

/// The refusal reasons that more disks appearing could resolve (a disk attached late, a member
/// of the array not there yet): only these are worth waiting for. A disk that is busy, holds a
/// signature or belongs to another array stays so; waiting would only delay the refusal.
fn waitable_reasons(reasons: &[crate::plan::RefusalReason]) -> Vec<String> {
    use crate::plan::RefusalReason as R;
    let waitable = |r: &R| {
        matches!(
            r,
            R::NoDisks | R::CountMismatch { .. } | R::IncompleteArray { .. }
        )
    };
    let hint = |r: &R| matches!(r, R::CacheModeUnknown { .. });
    if reasons.iter().any(|r| !waitable(r) && !hint(r)) {
        return Vec::new();
    }
    reasons
        .iter()
        .filter(|r| waitable(r))
        .map(|r| r.to_string())
        .collect()
}

pub fn run_apply(ctx: &Ctx, a: ApplyArgs) -> Result<i32> {
    let prof = match crate::profile::load(&a.profile)? {
        Ok(p) => p,
        Err(errs) => return Ok(super::profile::report_errors(ctx, &errs)),
    };
    if !a.dry_run {
        ctx.require_live("apply")?;
    }
    let _lock = if ctx.host.is_live() && !a.dry_run {
        Some(take_lock(ctx)?)
    } else {
        None
    };
    let opts = crate::detect::DetectOptions {
        imds_endpoint: prof.disks.imds_endpoint.clone(),
        ..Default::default()
    };
    let timeout = a.wait_disks.unwrap_or(prof.disks.wait_timeout.0);
    let plan_opts = crate::plan::PlanOptions { wipe: a.wipe };
    let mut clock = super::detect::RealClock;
    let waited = super::detect::wait_for_disks(
        || crate::detect::detect(&ctx.host, &opts),
        |inv| match crate::plan::plan_with(&prof, inv, plan_opts) {
            Ok(_) => Vec::new(),
            Err(r) => waitable_reasons(&r.reasons),
        },
        timeout,
        &mut clock,
    )?;
    let plan = match crate::plan::plan_with(&prof, &waited.inventory, plan_opts) {
        Ok(p) => p,
        Err(r) => {
            if ctx.output == OutputFormat::Json {
                // apply's JSON output is one event per line (pipelines read it line by line);
                // the refusal is one more event, not a pretty-printed document.
                crate::outln!(
                    "{}",
                    serde_json::json!({
                        "event": "refused",
                        "exit_code": crate::exit::REFUSED,
                        "message": format!("plan for {} {r}", a.profile.display()).trim_end(),
                        "refusal": r,
                    })
                );
                return Ok(crate::exit::REFUSED);
            }
            return super::plan::emit(ctx.output, &a.profile, Err(r));
        }
    };
    let bopts = build::BuildOptions {
        wipe: a.wipe,
        finalize: a.finalize,
        self_exe: std::env::current_exe().ok(),
        profile_path: std::fs::canonicalize(&a.profile).ok(),
    };
    let steps = build::build(&prof, &plan, &bopts)?;
    if !a.dry_run {
        // TEST-ONLY (vm-tests crash-matrix): inert unless DBHOST_FAULT is set.
        let ids: Vec<String> = steps.iter().map(|s| s.id()).collect();
        apply::fault::arm_from_env(&ids).map_err(|e| Failure::Usage(format!("{e:#}")))?;
    }
    let exec = RealExec;
    let json = ctx.output == OutputFormat::Json;

    // 1. Observe everything (dry run). This is the plan shown to the operator.
    let mut j = Journal::scratch();
    // The dry run sees what the real run will resume (an interrupted relocation's record), so
    // a relocation cut after db.switch-config is not shown as done, or skipped as "nothing to do".
    if let Ok(Some(last)) = Journal::load_last(&ctx.host) {
        j.data = last.data;
    }
    let mut u = Undo::disabled();
    let mut noprog = |_: &str, _: u64, _: u64| {};
    let mut cx = ApplyCx {
        host: &ctx.host,
        exec: &exec,
        undo: &mut u,
        journal: &mut j,
        facts: Default::default(),
        progress: &mut noprog,
    };
    let dry = apply::run_steps(
        &steps,
        &mut cx,
        RunOptions {
            dry_run: true,
            honour_interrupts: false,
        },
        &mut |e| {
            if json {
                let _ = super::output::print_event(e);
            }
        },
    );
    let dry = dry?;
    let todo = dry
        .steps
        .iter()
        .filter(|s| matches!(s.observation, Observation::Todo(_)))
        .count();
    if !json {
        crate::outln!("plan for {}:", a.profile.display());
        crate::out!("{plan}");
        crate::outln!("steps:");
        for s in &dry.steps {
            let (mark, detail) = match &s.observation {
                Observation::Done(d) => ("done", d.as_str()),
                Observation::Todo(d) => ("TODO", d.as_str()),
                Observation::Conflict(d) => ("CONFLICT", d.as_str()),
            };
            crate::outln!(
                "  [{mark:>4}] {:<18} {}{}",
                s.step,
                s.description,
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                }
            );
        }
    }
    if a.dry_run {
        if !json {
            crate::outln!("dry run: {todo} step(s) to do; nothing was changed");
        } else {
            super::output::print_event(&serde_json::json!({"event": "dry_run", "todo": todo}))?;
        }
        return Ok(exit::OK);
    }
    if todo == 0 {
        if json {
            super::output::print_event(
                &serde_json::json!({"event": "summary", "changed": 0, "unchanged": dry.steps.len()}),
            )?;
        } else {
            crate::outln!("nothing to do: the host already matches the profile");
        }
        // Still record the run for `status`.
        let mut jr = Journal::begin(&ctx.host, "apply", Some(a.profile.display().to_string()))?;
        for s in &dry.steps {
            jr.mark(&s.step, crate::apply::journal::StepState::Unchanged, "")?;
        }
        jr.finish(crate::apply::journal::RunStatus::Done)?;
        return Ok(exit::OK);
    }
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::Usage(
                "apply changes disks and the database; stdin is not a terminal, so pass --yes to confirm".into(),
            )
            .into());
        }
        if !confirm(&format!("apply {todo} step(s)?"))? {
            crate::errln!("dbhost: nothing changed");
            return Ok(exit::REFUSED);
        }
    }

    // 2. Apply, journaled, with an undo bundle. Ctrl-C / SIGTERM stop at the next step boundary
    // (exit 4); a second one stops at once. Either way a re-run resumes.
    crate::apply::sys::install_interrupt_handlers();
    let mut journal = Journal::begin(&ctx.host, "apply", Some(a.profile.display().to_string()))?;
    if let Some(prev) = &journal.resumed_from {
        tracing::warn!(previous = %prev, "resuming an interrupted run");
    }
    let mut undo = Undo::open(&ctx.host, &journal.run_id.clone())?;
    let tty = std::io::stderr().is_terminal() && !json;
    let bar = if tty {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:18} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        Some(b)
    } else {
        None
    };
    let mut last_json = std::time::Instant::now();
    let mut progress = |step: &str, done: u64, total: u64| {
        if let Some(b) = &bar {
            if b.is_hidden() {
                b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            b.set_message(step.to_string());
            b.set_length(total);
            b.set_position(done);
        } else if json && last_json.elapsed() >= Duration::from_secs(1) {
            last_json = std::time::Instant::now();
            let _ = super::output::print_event(&Event::Progress {
                step: step.to_string(),
                done,
                total,
            });
        }
    };
    let mut cx = ApplyCx {
        host: &ctx.host,
        exec: &exec,
        undo: &mut undo,
        journal: &mut journal,
        facts: Default::default(),
        progress: &mut progress,
    };
    let res = apply::run_steps(
        &steps,
        &mut cx,
        RunOptions {
            dry_run: false,
            honour_interrupts: true,
        },
        &mut |e| {
            if json {
                let _ = super::output::print_event(e);
            } else {
                match e {
                    Event::Started { step } => crate::errln!("dbhost: {step}: started"),
                    Event::Finished {
                        step,
                        outcome,
                        seconds,
                    } => match outcome {
                        Outcome::Changed(d) => {
                            crate::errln!("dbhost: {step}: changed in {seconds:.1}s {d}")
                        }
                        Outcome::Unchanged => crate::errln!("dbhost: {step}: unchanged"),
                    },
                    Event::Failed { step, error } => {
                        crate::errln!("dbhost: {step}: FAILED: {error}")
                    }
                    _ => {}
                }
            }
        },
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = res?;
    if json {
        super::output::print_event(&serde_json::json!({
            "event": "summary", "changed": report.changed, "unchanged": report.unchanged,
            "run_id": journal.run_id,
        }))?;
    } else {
        crate::outln!(
            "done: {} step(s) changed, {} unchanged (run {}; undo bundle under {})",
            report.changed,
            report.unchanged,
            journal.run_id,
            Undo::root(&ctx.host).join(&journal.run_id).display()
        );
    }
    Ok(exit::OK)
}

pub fn run_status(ctx: &Ctx, _a: StatusArgs) -> Result<i32> {
    use crate::md::array as md;
    let arrays = md::running_arrays(&ctx.host);
    let mounts = std::fs::read_to_string(ctx.host.proc_("self/mounts")).unwrap_or_default();
    let fstab = std::fs::read_to_string(ctx.host.etc("fstab")).unwrap_or_default();
    let ours: Vec<(String, String, bool)> = fstab
        .lines()
        .filter_map(crate::fs::fstab::parse_line)
        .filter(|l| crate::fs::fstab::owner_of(l).is_some())
        .map(|l| {
            let mounted =
                crate::fs::mounts::find(&crate::fs::mounts::parse(&mounts), l.file).is_some();
            (l.spec.to_string(), l.file.to_string(), mounted)
        })
        .collect();
    let last = Journal::load_last(&ctx.host).ok().flatten();
    let reloc = last.as_ref().and_then(apply::db::recorded_state);
    let db = reloc.as_ref().map(|st| {
        let active = crate::db::engine::is_active(&RealExec, &st.instance.unit);
        let healthy = active && crate::db::engine::answers(&ctx.host, &RealExec, &st.instance);
        serde_json::json!({
            "engine": st.engine().name(), "unit": st.instance.unit,
            "datadir": st.new_datadir, "previous_datadir": st.old_datadir,
            "kept_old": st.kept_old, "active": active, "healthy": healthy,
        })
    });
    let backups = super::backup::status_json(ctx);
    let v = serde_json::json!({
        "backup": backups,
        "arrays": arrays.iter().map(|a| serde_json::json!({
            "device": a.devnm, "uuid": a.uuid.map(|u| u.to_string()),
            "state": a.array_state, "members": a.members})).collect::<Vec<_>>(),
        "filesystems": ours.iter().map(|(s, m, on)| serde_json::json!({"fstab": s, "mount_point": m, "mounted": on})).collect::<Vec<_>>(),
        "database": db,
        "last_run": last.as_ref().map(|j| serde_json::json!({
            "run_id": j.run_id, "status": j.status, "profile": j.profile,
            "steps": j.steps})),
    });
    match ctx.output {
        OutputFormat::Json => super::output::print_json(&v)?,
        OutputFormat::Text => {
            crate::outln!("arrays:");
            if arrays.is_empty() {
                crate::outln!("  (none running)");
            }
            for a in &arrays {
                crate::outln!(
                    "  {} {} members {} uuid {}",
                    a.devnm,
                    a.array_state.clone().unwrap_or_default(),
                    a.members.join(","),
                    a.uuid.map(|u| u.to_string()).unwrap_or_default()
                );
            }
            crate::outln!("filesystems (dbhost's fstab entries):");
            if ours.is_empty() {
                crate::outln!("  (none)");
            }
            for (s, m, on) in &ours {
                crate::outln!(
                    "  {s} at {m}: {}",
                    if *on { "mounted" } else { "NOT mounted" }
                );
            }
            crate::outln!("database:");
            match &db {
                Some(d) => crate::outln!(
                    "  {} ({}) datadir {} — {}, {}",
                    d["engine"].as_str().unwrap_or(""),
                    d["unit"].as_str().unwrap_or(""),
                    d["datadir"].as_str().unwrap_or(""),
                    if d["active"].as_bool() == Some(true) {
                        "active"
                    } else {
                        "NOT active"
                    },
                    if d["healthy"].as_bool() == Some(true) {
                        "answers queries"
                    } else {
                        "NOT answering"
                    },
                ),
                None => crate::outln!("  (no relocation recorded)"),
            }
            super::backup::status_text(&backups);
            crate::outln!("last run:");
            match &last {
                Some(j) => {
                    crate::outln!(
                        "  {} {:?} profile {}",
                        j.run_id,
                        j.status,
                        j.profile.clone().unwrap_or_default()
                    );
                    for s in &j.steps {
                        crate::outln!("    {:<18} {:?} {}", s.id, s.state, s.detail);
                    }
                }
                None => crate::outln!("  (never)"),
            }
        }
    }
    Ok(exit::OK)
}

pub fn run_rollback(ctx: &Ctx, a: RollbackArgs) -> Result<i32> {
    ctx.require_live("rollback")?;
    let _lock = take_lock(ctx)?;
    let bundles = Undo::list(&ctx.host)?;
    let last = Journal::load_last(&ctx.host)?;
    let reloc = last.as_ref().and_then(apply::db::recorded_state);
    if bundles.is_empty() && reloc.is_none() {
        crate::outln!("nothing to roll back");
        return Ok(exit::OK);
    }
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::Usage(
                "rollback changes configuration; pass --yes to confirm".into(),
            )
            .into());
        }
        if !confirm(&format!(
            "restore {} undo bundle(s){}?",
            bundles.len(),
            if reloc.is_some() {
                " and move the database back to its previous datadir"
            } else {
                ""
            }
        ))? {
            return Ok(exit::REFUSED);
        }
    }
    if let Some(st) = &reloc {
        let mut prog = |_p: crate::db::copy::Progress| {};
        let mut save = |_s: &crate::db::relocate::RelocateState| -> Result<()> { Ok(()) };
        let mut rcx = crate::db::relocate::Ctx {
            host: &ctx.host,
            exec: &RealExec,
            copy: Default::default(),
            wait: Default::default(),
            progress: &mut prog,
            save: &mut save,
            require_separate_fs: true,
        };
        for (what, out) in crate::db::relocate::rollback(&mut rcx, st)? {
            crate::outln!("database: {what}: {out:?}");
        }
    }
    for id in &bundles {
        for p in Undo::restore(&ctx.host, id)? {
            crate::outln!("restored {p} (bundle {id})");
        }
    }
    let _ = crate::host::Exec::output(
        &RealExec,
        &crate::host::CommandSpec::new("systemctl").arg("daemon-reload"),
    );
    // The rolled-back state is the new baseline: archive the bundles and the relocation record.
    let archive = ctx.host.state_dir().join("rolled-back");
    std::fs::create_dir_all(&archive).ok();
    for id in &bundles {
        let _ = std::fs::rename(Undo::root(&ctx.host).join(id), archive.join(id));
    }
    if let Some(mut j) = last {
        j.data.remove("relocate");
        let mut nj = Journal::begin(&ctx.host, "rollback", j.profile.clone())?;
        nj.data.clear();
        nj.finish(crate::apply::journal::RunStatus::Done)?;
    }
    crate::outln!("rollback done");
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::waitable_reasons;
    use crate::plan::RefusalReason as R;

    #[test]
    fn waits_only_for_reasons_more_disks_can_fix() {
        let missing = vec![R::CountMismatch {
            expected: "2".into(),
            selected: 1,
        }];
        assert_eq!(waitable_reasons(&missing).len(), 1);
        assert_eq!(waitable_reasons(&[R::NoDisks]).len(), 1);
        // A busy disk stays busy: refuse at once, even when a count is also short.
        let busy = vec![
            R::Busy {
                disks: vec!["sda".into()],
            },
            R::CountMismatch {
                expected: "2".into(),
                selected: 1,
            },
        ];
        assert!(waitable_reasons(&busy).is_empty());
        let several = vec![R::SeveralArrays {
            array_uuids: vec!["a".into(), "b".into()],
        }];
        assert!(waitable_reasons(&several).is_empty());
    }
}
