//! `dbhost migrate plan|start|status|cutover|abort|finalize --profile P`: import a live database
//! from its old host (the profile's `[migrate]` section) with the database's own replication.

use super::{Ctx, OutputFormat};
use crate::exit::{self, Failure};
use crate::host::RealExec;
use crate::migrate::{self, Phase, Settings, State};
use anyhow::Result;
use clap::{Args, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ProfileArg {
    /// The profile (its [database] and [migrate] sections).
    #[arg(long)]
    pub profile: PathBuf,
}

#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// The profile (its [database] and [migrate] sections).
    #[arg(long)]
    pub profile: PathBuf,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum MigrateCmd {
    /// Check the source and this host and say what start and cutover would do (read-only; exit 3
    /// with every reason when it refuses).
    Plan(ProfileArg),
    /// Copy the running source here and start the copy as its replica (re-run to resume).
    Start(ChangeArgs),
    /// The replica's state: lag in bytes and seconds; exit 1 when replication is broken.
    Status(ProfileArg),
    /// Fence the source, wait until the replica applied its last change, promote it, run the
    /// on-cutover hook; reports the downtime. Re-run after an interruption to finish.
    Cutover(ChangeArgs),
    /// Before the promotion only: lift the fence, stop the replica, remove the copy, put the
    /// previous datadir back.
    Abort(ChangeArgs),
    /// After the cutover: drop the replication slot and what the migration kept aside; the
    /// source's data is never deleted.
    Finalize(ChangeArgs),
}

impl MigrateCmd {
    pub fn changes_system(&self) -> bool {
        !matches!(self, MigrateCmd::Plan(_) | MigrateCmd::Status(_))
    }
    fn profile(&self) -> &PathBuf {
        match self {
            MigrateCmd::Plan(a) | MigrateCmd::Status(a) => &a.profile,
            MigrateCmd::Start(a)
            | MigrateCmd::Cutover(a)
            | MigrateCmd::Abort(a)
            | MigrateCmd::Finalize(a) => &a.profile,
        }
    }
    fn name(&self) -> &'static str {
        match self {
            MigrateCmd::Plan(_) => "plan",
            MigrateCmd::Start(_) => "start",
            MigrateCmd::Status(_) => "status",
            MigrateCmd::Cutover(_) => "cutover",
            MigrateCmd::Abort(_) => "abort",
            MigrateCmd::Finalize(_) => "finalize",
        }
    }
}

fn say_line(json: bool, line: &str) {
    if json {
        let _ =
            super::output::print_event(&serde_json::json!({"event": "progress", "message": line}));
    } else {
        crate::errln!("dbhost: {line}");
    }
}

fn confirm(ctx: &Ctx, yes: bool, question: &str) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() || ctx.output == OutputFormat::Json {
        return Err(Failure::Usage(format!(
            "{question}: stdin is not a terminal, so pass --yes to confirm"
        ))
        .into());
    }
    super::apply::confirm(&format!("{question}?"))
}

fn require_state(ctx: &Ctx) -> Result<State> {
    State::load(&ctx.host)?.ok_or_else(|| {
        Failure::Refused(format!(
            "no migration on this host ({} is absent); `dbhost migrate start` begins one",
            State::path(&ctx.host).display()
        ))
        .into()
    })
}

pub fn run(ctx: &Ctx, cmd: MigrateCmd) -> Result<i32> {
    let prof = match crate::profile::load(cmd.profile())? {
        Ok(p) => p,
        Err(errs) => return Ok(super::profile::report_errors(ctx, &errs)),
    };
    let settings = Settings::from_profile(&ctx.host, &prof)?;
    if cmd.changes_system() {
        ctx.require_live(&format!("migrate {}", cmd.name()))?;
    }
    let _lock = if cmd.changes_system() {
        Some(super::apply::take_lock(ctx)?)
    } else {
        None
    };
    if cmd.changes_system() {
        let points: Vec<String> = migrate::FAULT_POINTS
            .iter()
            .map(|p| p.to_string())
            .collect();
        crate::apply::fault::arm_from_env(&points).map_err(|e| Failure::Usage(format!("{e:#}")))?;
    }
    let json = ctx.output == OutputFormat::Json;
    let mut say = |l: &str| say_line(json, l);
    let mut mcx = migrate::Ctx {
        host: &ctx.host,
        exec: &RealExec,
        wait: Default::default(),
        poll: Duration::from_millis(50),
        sleep: std::thread::sleep,
        say: &mut say,
        stream_timeout: Duration::from_secs(120),
    };
    let host = ctx.host.clone();
    let mut save = move |st: &State| st.save(&host);
    let existing = State::load(&ctx.host)?;
    match cmd {
        MigrateCmd::Plan(_) => {
            let p = migrate::plan(&mut mcx, &settings, existing.as_ref())?;
            print_plan(ctx, &p)?;
            Ok(if p.refused() { exit::REFUSED } else { exit::OK })
        }
        MigrateCmd::Start(a) => {
            if !confirm(
                ctx,
                a.yes,
                &format!(
                    "copy {} into {} and run it as a replica",
                    settings.source,
                    settings.target_datadir.display()
                ),
            )? {
                return Ok(exit::REFUSED);
            }
            let st = migrate::start(&mut mcx, &settings, existing, &mut save)?;
            let rs = migrate::status(&mut mcx, &settings, &st)?;
            print_status(ctx, &st, &rs)?;
            Ok(exit::OK)
        }
        MigrateCmd::Status(_) => {
            let st = require_state(ctx)?;
            let rs = migrate::status(&mut mcx, &settings, &st)?;
            print_status(ctx, &st, &rs)?;
            Ok(if st.phase == Phase::Replicating && !rs.healthy() {
                exit::ERROR
            } else {
                exit::OK
            })
        }
        MigrateCmd::Cutover(a) => {
            let mut st = require_state(ctx)?;
            if st.phase == Phase::CutOver
                && st
                    .cutover
                    .as_ref()
                    .and_then(|c| c.hook.as_ref())
                    .is_none_or(|h| h.ok)
            {
                print_cutover(ctx, &st)?;
                return Ok(exit::OK);
            }
            if st.phase == Phase::Replicating
                && !confirm(
                    ctx,
                    a.yes,
                    &format!(
                        "fence {} and promote the replica here (downtime starts)",
                        st.source
                    ),
                )?
            {
                return Ok(exit::REFUSED);
            }
            if st.phase == Phase::CutOver {
                // Only the hook failed before: run it again.
                st.set_phase(Phase::Promoted);
            }
            let r = migrate::cutover(&mut mcx, &settings, &mut st, &mut save);
            print_cutover(ctx, &st)?;
            r.map(|()| exit::OK)
        }
        MigrateCmd::Abort(a) => {
            let mut st = require_state(ctx)?;
            if !confirm(ctx, a.yes, "abort the migration and remove the copy")? {
                return Ok(exit::REFUSED);
            }
            let done = migrate::abort(&mut mcx, &settings, &mut st, &mut save)?;
            print_lines(ctx, "aborted", &done)?;
            Ok(exit::OK)
        }
        MigrateCmd::Finalize(a) => {
            let mut st = require_state(ctx)?;
            if !confirm(ctx, a.yes, "finalize the migration")? {
                return Ok(exit::REFUSED);
            }
            let done = migrate::finalize(&mut mcx, &settings, &mut st, &mut save)?;
            print_lines(ctx, "finalized", &done)?;
            Ok(exit::OK)
        }
    }
}

fn print_plan(ctx: &Ctx, p: &migrate::Plan) -> Result<()> {
    if ctx.output == OutputFormat::Json {
        return super::output::print_json(p);
    }
    crate::outln!(
        "migrate {} from {} into {}",
        p.engine,
        p.source,
        p.target_datadir.display()
    );
    if let Some(ph) = p.phase {
        crate::outln!("a migration is recorded on this host: phase {ph}");
    }
    for c in &p.checks {
        crate::outln!(
            "  [{}] {}: {}",
            if c.ok { "ok" } else { "NO" },
            c.name,
            c.detail
        );
    }
    for n in &p.notes {
        crate::outln!("  note: {n}");
    }
    if p.refused() {
        crate::outln!("refused; fix these, nothing was changed:");
        for r in &p.refusals {
            crate::outln!("  - {r}");
        }
    } else {
        crate::outln!("steps:");
        for s in &p.steps {
            crate::outln!("  - {s}");
        }
    }
    Ok(())
}

fn print_status(ctx: &Ctx, st: &State, rs: &migrate::ReplicaStatus) -> Result<()> {
    if ctx.output == OutputFormat::Json {
        return super::output::print_json(&serde_json::json!({
            "phase": st.phase, "engine": st.engine.name(), "source": st.source,
            "datadir": st.target_datadir, "healthy": rs.healthy(), "replica": rs,
            "cutover": st.cutover,
        }));
    }
    crate::outln!(
        "migration of {} from {}: phase {}",
        st.engine.name(),
        st.source,
        st.phase
    );
    crate::outln!(
        "  replication: {}",
        if rs.healthy() {
            "streaming"
        } else if st.phase == Phase::Replicating {
            "BROKEN"
        } else {
            "not replicating"
        }
    );
    crate::outln!(
        "  source at {}, replica applied {}",
        rs.source_pos.as_deref().unwrap_or("?"),
        rs.replica_pos.as_deref().unwrap_or("?")
    );
    crate::outln!(
        "  lag: {} bytes, {} s",
        rs.lag_bytes
            .map(|b| b.to_string())
            .unwrap_or_else(|| "?".into()),
        rs.lag_seconds
            .map(|s| format!("{s:.1}"))
            .unwrap_or_else(|| "?".into())
    );
    for d in &rs.detail {
        crate::outln!("  {d}");
    }
    for p in &rs.problems {
        crate::outln!("  problem: {p}");
    }
    Ok(())
}

fn print_cutover(ctx: &Ctx, st: &State) -> Result<()> {
    let c = st.cutover.clone().unwrap_or_default();
    if ctx.output == OutputFormat::Json {
        return super::output::print_event(&serde_json::json!({
            "event": "summary", "phase": st.phase, "source": st.source,
            "downtime_ms": c.downtime_ms, "final_position": st.fence.as_ref().and_then(|f| f.final_pos.clone()),
            "hook": c.hook,
        }));
    }
    crate::outln!("phase {}", st.phase);
    if let Some(d) = c.downtime_ms {
        crate::outln!(
            "downtime: {:.3} s (source fenced until the new primary accepted writes)",
            d as f64 / 1000.0
        );
    }
    if let Some(h) = &c.hook {
        crate::outln!(
            "on-cutover hook: {} ({:.1} s)",
            if h.ok { "ok" } else { "FAILED" },
            h.seconds
        );
    }
    if st.phase == Phase::CutOver {
        crate::outln!(
            "the source {} is kept, fenced, until `dbhost migrate finalize`",
            st.source
        );
    }
    Ok(())
}

fn print_lines(ctx: &Ctx, what: &str, lines: &[String]) -> Result<()> {
    if ctx.output == OutputFormat::Json {
        return super::output::print_event(
            &serde_json::json!({"event": "summary", "result": what, "done": lines}),
        );
    }
    for l in lines {
        crate::outln!("{l}");
    }
    crate::outln!("{what}");
    Ok(())
}
