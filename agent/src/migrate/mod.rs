//! Moving a live database onto this host with the database's own replication: a physical copy of
//! the running source becomes a replica here, catches up, and at cutover the source is fenced,
//! the replica applies the source's last change and is promoted. The outage is the cutover
//! (fence → last change applied → promote), not a copy, so it does not grow with the data.
//! Facts: BACKUP-MIGRATE.md ("Moving a live database").
//!
//! Commands (`dbhost migrate ...`): [`plan`] (read-only checks, refusals with what to fix),
//! [`start`] (clone + replica), [`status`] (lag in bytes and seconds, broken replication),
//! [`cutover`], [`abort`] (before the promotion only), [`finalize`].
//!
//! Crash safety: every phase change is journaled in `/var/lib/dbhost/migrate.json` (atomic
//! write) *before* the action it announces, and every action is idempotent, so re-running the
//! interrupted command (after kill -9 or a power cut) finishes it or rolls it back. The order
//! makes two writable primaries impossible: the source is fenced, durably (a masked unit,
//! `ALTER SYSTEM`), before the replica is promoted; once the promotion was announced nothing
//! lifts the fence again.
//!
//! Engines implement [`Replica`]: [`pg`] (pg_basebackup + streaming standby + slot),
//! [`mariadb`] (mariabackup + GTID replica).

pub mod common;
pub mod hook;
pub mod mariadb;
pub mod pg;
pub mod state;

pub use state::{CutoverRecord, FenceRecord, HookResult, Phase, State};

use crate::db::client::{Endpoint, Target};
use crate::db::engine::{self, Engine, Instance, Wait};
use crate::exit::Failure;
use crate::host::{Exec, Host};
use crate::profile::{Fence, Profile};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a migration needs, resolved from the profile (passwords read, the source resolved).
#[derive(Clone)]
pub struct Settings {
    pub engine: Engine,
    pub mount_point: String,
    pub target_datadir: PathBuf,
    /// What the user wrote (`old-db:5432`) and where it resolved to.
    pub source: Endpoint,
    pub user: String,
    pub password: Option<String>,
    pub repl_user: String,
    pub repl_password: Option<String>,
    pub fence: Fence,
    pub source_unit: Option<String>,
    pub stop_command: Option<Vec<String>>,
    pub hook: Option<Vec<String>>,
    pub hook_timeout: Duration,
    pub max_lag: u64,
    pub catch_up_timeout: Duration,
    pub slot: String,
    pub server_id: Option<u32>,
    pub source_shell: Option<Vec<String>>,
    pub source_defaults_file: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Settings({} from {})", self.engine.name(), self.source)
    }
}

fn read_password(host: &Host, file: &str) -> Result<String> {
    let p = host.path(file);
    let text =
        std::fs::read_to_string(&p).with_context(|| format!("reading the password file {file}"))?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

impl Settings {
    /// From a profile with a `[migrate]` section.
    pub fn from_profile(host: &Host, p: &Profile) -> Result<Settings> {
        let m = p.migrate.as_ref().ok_or_else(|| {
            Failure::Usage(
                "the profile has no [migrate] section (source-host, fence, ...); see \
                 profiles/README.md"
                    .into(),
            )
        })?;
        let engine = crate::apply::db::engine_of(&p.database.engine)
            .ok_or_else(|| Failure::Usage("migrate needs database.engine in the profile".into()))?;
        let mount_point = p.filesystem.mount_point.clone();
        let target_datadir = Path::new(&mount_point).join(p.database.datadir().unwrap_or_default());
        let (port, user) = match engine {
            Engine::Postgresql => (5432, "postgres"),
            _ => (3306, "root"),
        };
        let source =
            crate::db::client::resolve(host, &m.source_host, m.source_port.unwrap_or(port))
                .map_err(|e| {
                    Failure::Refused(format!("the source host {}: {e:#}", m.source_host))
                })?;
        let password = m
            .password_file
            .as_deref()
            .map(|f| read_password(host, f))
            .transpose()?;
        let repl_password = match &m.replication_password_file {
            Some(f) => Some(read_password(host, f)?),
            None => password.clone(),
        };
        let user = m.source_user.clone().unwrap_or_else(|| user.to_string());
        Ok(Settings {
            engine,
            mount_point,
            target_datadir,
            source,
            repl_user: m.replication_user.clone().unwrap_or_else(|| user.clone()),
            user,
            password,
            repl_password,
            fence: m.fence,
            source_unit: m.source_unit.clone(),
            stop_command: m.stop_command.clone(),
            hook: m.on_cutover.clone(),
            hook_timeout: m.hook_timeout.0,
            max_lag: m.max_lag.0,
            catch_up_timeout: m.catch_up_timeout.0,
            slot: m.slot.clone(),
            server_id: m.server_id,
            source_shell: m.source_shell.clone(),
            source_defaults_file: m.source_defaults_file.clone(),
        })
    }

    /// The source address (for messages and the replica's connection settings).
    pub fn source_addr(&self) -> std::net::SocketAddr {
        match &self.source {
            Endpoint::Tcp { addr, .. } => *addr,
            Endpoint::Unix(_) => unreachable!("a migration source is reached over TCP"),
        }
    }
}

/// What the commands need from the outside world.
pub struct Ctx<'a> {
    pub host: &'a Host,
    pub exec: &'a dyn Exec,
    /// Service start/stop waits.
    pub wait: Wait,
    /// Polling interval of the catch-up waits (position checks).
    pub poll: Duration,
    pub sleep: fn(Duration),
    /// One line per thing done (the CLI prints them; JSON events in pipelines).
    pub say: &'a mut dyn FnMut(&str),
    /// Bound of waits for the replica to start streaming.
    pub stream_timeout: Duration,
}

impl Ctx<'_> {
    pub fn note(&mut self, s: impl AsRef<str>) {
        (self.say)(s.as_ref());
    }
}

/// Milliseconds since the epoch (the journal's clock; downtime is measured with `Instant`).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One check of `plan`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// What `migrate plan` found: every check, the refusals (what to fix), and what start/cutover
/// would do.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Plan {
    pub engine: String,
    pub source: String,
    pub target_datadir: PathBuf,
    pub checks: Vec<Check>,
    pub refusals: Vec<String>,
    /// Things to know that do not block (slot retention, a restart needed to enable binlogs...).
    pub notes: Vec<String>,
    pub steps: Vec<String>,
    /// Bytes the copy needs and the target filesystem offers.
    pub needed_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
    /// An existing migration's phase, if any.
    pub phase: Option<Phase>,
}

impl Plan {
    pub fn check(&mut self, name: &str, ok: bool, detail: impl Into<String>) {
        let detail = detail.into();
        if !ok {
            self.refusals.push(format!("{name}: {detail}"));
        }
        self.checks.push(Check {
            name: name.into(),
            ok,
            detail,
        });
    }
    pub fn refused(&self) -> bool {
        !self.refusals.is_empty()
    }
}

/// Where the replica stands.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct ReplicaStatus {
    /// The local server runs and replicates from the source.
    pub replicating: bool,
    /// The source's current position and the replica's applied one (LSN or GTID).
    pub source_pos: Option<String>,
    pub replica_pos: Option<String>,
    pub lag_bytes: Option<u64>,
    pub lag_seconds: Option<f64>,
    /// What is wrong, when replication is broken.
    pub problems: Vec<String>,
    pub detail: Vec<String>,
}

impl ReplicaStatus {
    pub fn healthy(&self) -> bool {
        self.replicating && self.problems.is_empty()
    }
}

/// The engine-specific half of a migration.
pub trait Replica {
    /// Read-only checks of the source and this host.
    fn plan(&self, cx: &mut Ctx, plan: &mut Plan) -> Result<()>;
    /// Copy the running source into the target datadir and start the copy as its replica.
    /// Re-runnable: `st.phase` says how far an earlier run got.
    fn clone_and_follow(&self, cx: &mut Ctx, st: &mut State, save: &mut Saver) -> Result<()>;
    fn status(&self, cx: &mut Ctx, st: &State) -> ReplicaStatus;
    /// Stop writes on the source durably; returns the position the replica must reach.
    fn fence(&self, cx: &mut Ctx, st: &mut State, save: &mut Saver) -> Result<String>;
    /// Lift the fence (only before the promotion).
    fn unfence(&self, cx: &mut Ctx, st: &State) -> Result<()>;
    /// Has the replica applied everything up to `pos` (from [`Replica::fence`])?
    fn caught_up(&self, cx: &mut Ctx, st: &State, pos: &str) -> Result<bool>;
    /// Make the replica a primary that accepts writes (idempotent).
    fn promote(&self, cx: &mut Ctx, st: &State) -> Result<()>;
    /// Does the local server accept writes?
    fn accepts_writes(&self, cx: &mut Ctx, st: &State) -> Result<bool>;
    /// After the promotion, outside the downtime window: drop what only the replica needed.
    fn after_promotion(&self, _cx: &mut Ctx, _st: &State) -> Result<()> {
        Ok(())
    }
    /// After the cutover: drop what only replication needed (slot, stored credentials).
    fn finalize(&self, cx: &mut Ctx, st: &State) -> Result<Vec<String>>;
    /// Before the promotion: stop the replica, remove the copy, put the previous datadir back.
    fn abort(&self, cx: &mut Ctx, st: &State) -> Result<Vec<String>>;
}

fn replica_for(s: &Settings) -> Result<Box<dyn Replica + '_>> {
    match s.engine {
        Engine::Postgresql => Ok(Box::new(pg::Pg { s })),
        Engine::Mariadb | Engine::Mysql => Ok(Box::new(mariadb::Maria { s })),
    }
}

/// Persists the state record (the journal). Tests keep it in memory.
pub type Saver<'a> = dyn FnMut(&State) -> Result<()> + 'a;

/// The local installation of the engine (the server that becomes the replica).
pub fn local_instance(cx: &Ctx, s: &Settings) -> Result<Instance> {
    engine::discover(cx.host, cx.exec, s.engine)
        .with_context(|| format!("finding the local {} installation", s.engine.name()))
}

/// Common checks: the data filesystem is mounted and the local server points at the target
/// (dbhost apply did its part), then the engine's.
pub fn plan(cx: &mut Ctx, s: &Settings, existing: Option<&State>) -> Result<Plan> {
    let mut p = Plan {
        engine: s.engine.name().into(),
        source: s.source.to_string(),
        target_datadir: s.target_datadir.clone(),
        phase: existing.map(|st| st.phase),
        ..Plan::default()
    };
    let mounts = std::fs::read_to_string(cx.host.proc_("self/mounts")).unwrap_or_default();
    let mounted =
        crate::fs::mounts::find(&crate::fs::mounts::parse(&mounts), &s.mount_point).is_some();
    p.check(
        "data filesystem",
        mounted,
        if mounted {
            format!("{} is mounted", s.mount_point)
        } else {
            format!(
                "{} is not mounted; run `dbhost apply --profile ...` first (it builds the array, \
                 the filesystem and points the server at {})",
                s.mount_point,
                s.target_datadir.display()
            )
        },
    );
    match local_instance(cx, s) {
        Ok(inst) => {
            let ok = inst.config_datadir == s.target_datadir;
            p.check(
                "local server",
                ok,
                if ok {
                    format!(
                        "{} is configured for {}",
                        inst.unit,
                        s.target_datadir.display()
                    )
                } else {
                    format!(
                        "{} is configured for {}, not {}; run `dbhost apply --profile ...` first",
                        inst.unit,
                        inst.config_datadir.display(),
                        s.target_datadir.display()
                    )
                },
            );
        }
        Err(e) => p.check("local server", false, format!("{e:#}")),
    }
    replica_for(s)?.plan(cx, &mut p)?;
    p.steps = vec![
        format!(
            "start: copy the running source {} into {} and start it as a replica",
            s.source,
            s.target_datadir.display()
        ),
        "status: watch the replica catch up (lag in bytes and seconds)".into(),
        format!(
            "cutover: fence the source ({}), wait until the replica applied its last change, \
             promote it{}",
            match s.fence {
                Fence::ReadOnly => "read-only, sessions ended",
                Fence::Stop => "stopped",
            },
            if s.hook.is_some() {
                ", run the on-cutover hook"
            } else {
                ""
            }
        ),
        "finalize: drop what replication needed; the source itself is never deleted".into(),
    ];
    Ok(p)
}

/// `dbhost migrate start`.
pub fn start(cx: &mut Ctx, s: &Settings, st: Option<State>, save: &mut Saver) -> Result<State> {
    let mut st = match st {
        Some(st) if st.phase.is_active() => {
            if st.phase != Phase::Cloning && st.phase != Phase::Replicating {
                return Err(Failure::Refused(format!(
                    "a migration from {} is in phase {}; run `dbhost migrate cutover` to finish \
                     it or `dbhost migrate abort`",
                    st.source, st.phase
                ))
                .into());
            }
            if st.source != s.source.to_string() || st.engine != s.engine {
                return Err(Failure::Refused(format!(
                    "a migration of {} from {} is under way; abort it before starting another",
                    st.engine.name(),
                    st.source
                ))
                .into());
            }
            st
        }
        _ => {
            let p = plan(cx, s, None)?;
            if p.refused() {
                return Err(Failure::Refused(format!(
                    "migrate start refused (nothing was changed):\n  {}",
                    p.refusals.join("\n  ")
                ))
                .into());
            }
            let inst = local_instance(cx, s)?;
            State::new(s, inst)
        }
    };
    replica_for(s)?.clone_and_follow(cx, &mut st, save)?;
    Ok(st)
}

/// `dbhost migrate status`.
pub fn status(cx: &mut Ctx, s: &Settings, st: &State) -> Result<ReplicaStatus> {
    Ok(replica_for(s)?.status(cx, st))
}

/// The fault-injection points (test-only, `DBHOST_FAULT`, see `apply::fault`): `migrate.<phase>`
/// before and after each phase change of a cutover is journaled.
pub const FAULT_POINTS: &[&str] = &[
    "migrate.fencing",
    "migrate.fenced",
    "migrate.promoting",
    "migrate.promoted",
    "migrate.cut-over",
    "migrate.replicating",
];

fn set_phase(st: &mut State, phase: Phase, save: &mut Saver) -> Result<()> {
    let point = format!("migrate.{phase}");
    crate::apply::fault::at_step(&point, crate::apply::fault::When::Before);
    st.set_phase(phase);
    save(st)?;
    crate::apply::fault::at_step(&point, crate::apply::fault::When::After);
    Ok(())
}

/// Wait (bounded) until the replica applied `pos`.
fn wait_caught_up(
    cx: &mut Ctx,
    r: &dyn Replica,
    st: &State,
    pos: &str,
    limit: Duration,
) -> Result<bool> {
    let t0 = Instant::now();
    loop {
        match r.caught_up(cx, st, pos) {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(e) => tracing::debug!("catch-up check: {e:#}"),
        }
        if t0.elapsed() >= limit {
            return Ok(false);
        }
        (cx.sleep)(cx.poll);
    }
}

/// `dbhost migrate cutover`: fence → wait → promote → verify → hook. Re-running after an
/// interruption continues from the journaled phase.
pub fn cutover(cx: &mut Ctx, s: &Settings, st: &mut State, save: &mut Saver) -> Result<()> {
    let r = replica_for(s)?;
    let r = r.as_ref();
    let t0 = Instant::now();
    if st.phase == Phase::Replicating {
        let rs = r.status(cx, st);
        if !rs.healthy() {
            return Err(Failure::Refused(format!(
                "replication is not healthy, nothing was switched: {}",
                if rs.problems.is_empty() {
                    "the replica does not replicate".to_string()
                } else {
                    rs.problems.join("; ")
                }
            ))
            .into());
        }
        if let Some(lag) = rs.lag_bytes {
            if lag > s.max_lag {
                return Err(Failure::Refused(format!(
                    "the replica is {} bytes behind the source (max-lag {}); wait until \
                     `dbhost migrate status` shows less, nothing was switched",
                    lag, s.max_lag
                ))
                .into());
            }
        }
        st.cutover = Some(CutoverRecord {
            started_ms: now_ms(),
            ..CutoverRecord::default()
        });
        // What the fence will touch is looked up now, outside the downtime window.
        common::record_fence(cx, s, st, save)?;
        set_phase(st, Phase::Fencing, save)?;
    }
    if matches!(st.phase, Phase::Fencing | Phase::Fenced) {
        cx.note(format!("fencing the source {} ({})", st.source, s.fence));
        if let Some(f) = st.fence.as_mut() {
            if st.phase == Phase::Fencing && f.final_pos.is_none() {
                f.started_ms = now_ms();
            }
        }
        let pos = r.fence(cx, st, save)?;
        if let Some(f) = st.fence.as_mut() {
            f.final_pos = Some(pos.clone());
        }
        set_phase(st, Phase::Fenced, save)?;
        cx.note(format!(
            "source fenced; waiting for the replica to apply {pos} (at most {:?})",
            s.catch_up_timeout
        ));
        if !wait_caught_up(cx, r, st, &pos, s.catch_up_timeout)? {
            let why = format!(
                "the replica did not apply the source's last change ({pos}) within {:?}",
                s.catch_up_timeout
            );
            r.unfence(cx, st)
                .with_context(|| format!("{why}; lifting the fence failed too"))?;
            st.fence = None;
            st.cutover = None;
            set_phase(st, Phase::Replicating, save)?;
            bail!("{why}; the fence is lifted (the source accepts writes again) and nothing was switched");
        }
        set_phase(st, Phase::Promoting, save)?;
    }
    if st.phase == Phase::Promoting {
        cx.note("promoting the replica");
        r.promote(cx, st)?;
        if !r.accepts_writes(cx, st)? {
            bail!(
                "the promoted server does not accept writes yet; re-run `dbhost migrate cutover`"
            );
        }
        let c = st.cutover.get_or_insert_with(CutoverRecord::default);
        c.writable_ms = Some(now_ms());
        if let (Some(f), Some(w)) = (st.fence.as_ref().map(|f| f.started_ms), c.writable_ms) {
            c.downtime_ms = Some(w.saturating_sub(f));
        }
        set_phase(st, Phase::Promoted, save)?;
        cx.note(format!(
            "the new primary accepts writes (downtime {} ms, fence to writable)",
            st.cutover
                .as_ref()
                .and_then(|c| c.downtime_ms)
                .map(|d| d.to_string())
                .unwrap_or_else(|| "?".into())
        ));
    }
    if st.phase == Phase::Promoted {
        // Outside the downtime: what only the replica needed goes, and a stopped source is
        // masked too (its drop-in already keeps it down across a reboot).
        r.after_promotion(cx, st)?;
        if let Some(f) = st.fence.clone() {
            common::mask_fenced(cx, &f)?;
        }
        let hook_ok = match &s.hook {
            Some(argv) => {
                let res = hook::run(cx, s, st, argv);
                let ok = res.ok;
                st.cutover.get_or_insert_with(CutoverRecord::default).hook = Some(res);
                save(st)?;
                ok
            }
            None => true,
        };
        if hook_ok {
            set_phase(st, Phase::CutOver, save)?;
        }
    }
    tracing::debug!("cutover command took {:?}", t0.elapsed());
    if let Some(h) = st.cutover.as_ref().and_then(|c| c.hook.as_ref()) {
        if !h.ok {
            return Err(hook::HookFailed(h.clone()).into());
        }
    }
    Ok(())
}

/// `dbhost migrate abort`: only before the promotion.
pub fn abort(cx: &mut Ctx, s: &Settings, st: &mut State, save: &mut Saver) -> Result<Vec<String>> {
    if !st.phase.abortable() {
        return Err(Failure::Refused(format!(
            "the migration is in phase {}: the copy was promoted and may have taken writes; \
             aborting would lose them. Finish with `dbhost migrate cutover` / `finalize`, or \
             migrate back the other way",
            st.phase
        ))
        .into());
    }
    let r = replica_for(s)?;
    let mut done = Vec::new();
    if st.fence.is_some() {
        r.unfence(cx, st)?;
        done.push("fence lifted: the source accepts writes again".into());
        st.fence = None;
        save(st)?;
    }
    set_phase(st, Phase::Aborting, save)?;
    done.extend(r.abort(cx, st)?);
    set_phase(st, Phase::Aborted, save)?;
    Ok(done)
}

/// `dbhost migrate finalize`.
pub fn finalize(
    cx: &mut Ctx,
    s: &Settings,
    st: &mut State,
    save: &mut Saver,
) -> Result<Vec<String>> {
    if st.phase != Phase::CutOver {
        return Err(Failure::Refused(format!(
            "the migration is in phase {}; finalize follows a finished cutover",
            st.phase
        ))
        .into());
    }
    let done = replica_for(s)?.finalize(cx, st)?;
    set_phase(st, Phase::Finalized, save)?;
    Ok(done)
}

/// A target for the source with the control account.
pub fn source_target(s: &Settings, protocol: crate::db::client::Protocol) -> Target {
    Target::new(protocol, s.source.clone(), &s.user).password(s.password.clone())
}

/// A target for the source with the replication account.
pub fn source_repl_target(s: &Settings, protocol: crate::db::client::Protocol) -> Target {
    Target::new(protocol, s.source.clone(), &s.repl_user).password(s.repl_password.clone())
}

/// The free bytes of the filesystem holding `dir` (its nearest existing ancestor).
pub fn available_bytes(host: &Host, dir: &Path) -> Result<u64> {
    let mut p = host.path(dir);
    while !p.exists() {
        match p.parent() {
            Some(q) => p = q.to_path_buf(),
            None => break,
        }
    }
    let st = nix::sys::statvfs::statvfs(&p).with_context(|| format!("statvfs {}", p.display()))?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// The room check before any write: the copy needs `size` bytes (+ the copier's margin).
pub fn check_room(plan: &mut Plan, host: &Host, dir: &Path, size: u64) {
    let (needed, _) = crate::db::copy::room_needed(size, None, 0);
    match available_bytes(host, dir) {
        Ok(avail) => {
            plan.needed_bytes = Some(needed);
            plan.available_bytes = Some(avail);
            plan.check(
                "room",
                needed <= avail,
                format!(
                    "the copy needs {} MiB ({} MiB of data + margin); the filesystem of {} has {} MiB free",
                    needed >> 20,
                    size >> 20,
                    dir.display(),
                    avail >> 20
                ),
            );
        }
        Err(e) => plan.check("room", false, format!("{e:#}")),
    }
}

#[cfg(test)]
pub(crate) mod tests;
