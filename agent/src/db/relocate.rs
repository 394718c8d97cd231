//! Datadir relocation as a sequence of idempotent, observable steps (GENERALIZE-DATADIR-TUNING.md
//! B9–B11), by one of two methods ([`Method`]):
//!
//! * replica (PostgreSQL): preflight → clone (pg_basebackup of the running server) → follow (the
//!   copy streams as a replica under dbhost's unit, [`super::replica`]) → stop → catch-up (the
//!   replica applies the shutdown checkpoint and stops) → switch → keep old → start → health:
//!   the downtime does not grow with the data;
//! * copy (the fallback: MariaDB/MySQL, a stopped server): preflight (room, target sanity) →
//!   pass 1 (DB running, repeated while what changed shrinks) → verify pass 1 (DB running) →
//!   stop → pass 2 (delta) → verify delta → switch configuration (drop-ins) → keep the old
//!   datadir (renamed `<old>.dbhost-old-<stamp>`, never deleted) → start → health check.
//!
//! The steps of the other method observe "done".
//!
//! Each step observes the system first (`Done` / `Todo` / `Conflict`) and then applies
//! (`Changed` / `Unchanged`), so re-running after a crash at any point converges: once the
//! configuration points at the new datadir every copy step is done; a running, healthy server on
//! the new datadir makes the whole sequence unchanged. [`RelocateState`] is the small record the
//! journal persists; it is saved (through [`Ctx::save`]) before every action that needs it for
//! rollback (original file contents, placeholders created).

use super::copy::{self, CopyOptions, Manifest, Progress};
use super::engine::{self, Engine, Instance, Wait};
use crate::host::{atomic_write, Exec, Host};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Preflight,
    Clone,
    Follow,
    Pass1,
    VerifyPass1,
    Stop,
    CatchUp,
    Pass2,
    VerifyDelta,
    SwitchConfig,
    KeepOld,
    Start,
    Health,
}

pub const STEPS: [Step; 13] = [
    Step::Preflight,
    Step::Clone,
    Step::Follow,
    Step::Pass1,
    Step::VerifyPass1,
    Step::Stop,
    Step::CatchUp,
    Step::Pass2,
    Step::VerifyDelta,
    Step::SwitchConfig,
    Step::KeepOld,
    Step::Start,
    Step::Health,
];

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::Clone => "clone",
            Step::Follow => "follow",
            Step::CatchUp => "catch-up",
            Step::Pass1 => "pass1",
            Step::VerifyPass1 => "verify-pass1",
            Step::Stop => "stop",
            Step::Pass2 => "pass2",
            Step::VerifyDelta => "verify-delta",
            Step::SwitchConfig => "switch-config",
            Step::KeepOld => "keep-old",
            Step::Start => "start",
            Step::Health => "health",
        }
    }
    /// True for the steps inside the database downtime window.
    pub fn in_downtime(self) -> bool {
        matches!(
            self,
            Step::Stop
                | Step::CatchUp
                | Step::Pass2
                | Step::VerifyDelta
                | Step::SwitchConfig
                | Step::KeepOld
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum Observed {
    Done,
    Todo(String),
    Conflict(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Changed,
    Unchanged,
}

/// A file as it was before dbhost first wrote it (`None`: it did not exist).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedFile {
    pub path: PathBuf,
    pub before: Option<String>,
    pub mode: Option<u32>,
    /// Owner (uid, gid) of the original file; rollback gives it back.
    #[serde(default)]
    pub owner: Option<(u32, u32)>,
}

/// Replace the file at `p` (host-mapped) atomically with `mode`, then give it `owner` (uid,
/// gid): the atomic replacement is a new inode created by root, and Debian's
/// `/etc/postgresql/<v>/<c>/postgresql.conf` belongs to postgres (its tools and the cluster
/// owner edit it).
fn write_config(p: &Path, content: &str, mode: u32, owner: Option<(u32, u32)>) -> Result<bool> {
    let mut changed = atomic_write(p, content.as_bytes(), mode)
        .with_context(|| format!("writing {}", p.display()))?;
    if let Some((uid, gid)) = owner {
        let now = fs::metadata(p).with_context(|| format!("reading {}", p.display()))?;
        if (now.uid(), now.gid()) != (uid, gid) {
            std::os::unix::fs::chown(p, Some(uid), Some(gid))
                .with_context(|| format!("chown {uid}:{gid} {}", p.display()))?;
            changed = true;
        }
    }
    Ok(changed)
}

/// A file the switch rewrites keeps its mode and owner; a new one gets `mode`, root's.
fn write_switched(p: &Path, content: &str, mode: u32) -> Result<bool> {
    match fs::metadata(p) {
        Ok(m) => write_config(p, content, m.mode() & 0o7777, Some((m.uid(), m.gid()))),
        Err(_) => write_config(p, content, mode, None),
    }
}

/// How the data gets to the new datadir.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Two-pass file copy (hot pass, then the delta with the server stopped).
    #[default]
    Copy,
    /// A streaming replica of the running server (PostgreSQL).
    Replica,
}

/// What the journal persists for one relocation. Paths are in-host absolute paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelocateState {
    pub version: u32,
    /// The installation as found before the relocation (engine, unit, config locations).
    pub instance: Instance,
    pub old_datadir: PathBuf,
    pub new_datadir: PathBuf,
    /// Where the old datadir is kept: `<old>.dbhost-old-<stamp>`.
    pub kept_old: PathBuf,
    /// The copy manifest checkpoint.
    pub manifest: PathBuf,
    /// Was the server running when the relocation started (rollback restores that).
    pub was_running: bool,
    /// `was_running` was recorded (by the first preflight).
    #[serde(default)]
    pub running_recorded: bool,
    #[serde(default)]
    pub saved_files: Vec<SavedFile>,
    #[serde(default)]
    pub placeholders: Vec<PathBuf>,
    /// Adopt: the new location already holds this engine's datadir (disks of a previous VM);
    /// point the database at it instead of copying (the copy steps are done by definition).
    #[serde(default)]
    pub adopt: bool,
    /// Socket units that activate the service (systemd socket activation, e.g. Debian's
    /// `mariadb.socket`) which the stop step stopped too; the start step starts them again.
    #[serde(default)]
    pub stopped_sockets: Vec<String>,
    #[serde(default)]
    pub method: Method,
    /// Why this method (shown in the plan).
    #[serde(default)]
    pub method_reason: String,
    /// The replica's clone started: the files in the new datadir are dbhost's.
    #[serde(default)]
    pub clone_started: bool,
    #[serde(default)]
    pub cloned: bool,
    /// MariaDB replica: the backup's GTID, the replica's server_id and replication password,
    /// the server's last GTID before its stop, and whether the replica was closed after it.
    #[serde(default)]
    pub replica_gtid: Option<String>,
    #[serde(default)]
    pub replica_server_id: Option<u32>,
    #[serde(default)]
    pub replica_password: Option<String>,
    #[serde(default)]
    pub replica_final_gtid: Option<String>,
    #[serde(default)]
    pub caught_up: bool,
}

impl RelocateState {
    /// A fresh record for moving `inst` to `new_datadir`. `stamp` names the kept old datadir
    /// (use [`stamp_now`]); `state_dir` is dbhost's state directory (in-host path).
    pub fn new(inst: Instance, new_datadir: &Path, stamp: &str, state_dir: &Path) -> Self {
        let old = inst.datadir.clone();
        let kept_old = PathBuf::from(format!("{}.dbhost-old-{stamp}", old.display()));
        RelocateState {
            version: 1,
            manifest: state_dir.join(format!("relocate-{}-manifest.json", inst.engine.name())),
            instance: inst,
            old_datadir: old,
            new_datadir: new_datadir.to_path_buf(),
            kept_old,
            was_running: false,
            running_recorded: false,
            saved_files: Vec::new(),
            adopt: false,
            placeholders: Vec::new(),
            stopped_sockets: Vec::new(),
            method: Method::Copy,
            method_reason: String::new(),
            clone_started: false,
            cloned: false,
            replica_gtid: None,
            replica_server_id: None,
            replica_password: None,
            replica_final_gtid: None,
            caught_up: false,
        }
    }
    pub fn engine(&self) -> Engine {
        self.instance.engine
    }
}

/// `YYYYMMDDTHHMMSSZ` (UTC) for now.
pub fn stamp_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    stamp_of(secs)
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the epoch (civil-from-days, proleptic Gregorian).
pub fn stamp_of(secs: i64) -> String {
    let (y, m, d, hh, mm, ss) = crate::civil::utc(secs);
    format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}Z")
}

/// What the steps need from the outside world.
pub struct Ctx<'a> {
    pub host: &'a Host,
    pub exec: &'a dyn Exec,
    pub copy: CopyOptions,
    pub wait: Wait,
    /// Copy/verify progress (for indicatif bars).
    pub progress: &'a mut dyn FnMut(Progress),
    /// Persist the state record (the journal). Called before actions that rollback depends on.
    pub save: &'a mut dyn FnMut(&RelocateState) -> Result<()>,
    /// Refuse when the new datadir would land on the old datadir's filesystem (the data
    /// filesystem is not mounted). Always true in production; fake-root tests turn it off.
    pub require_separate_fs: bool,
}

fn config_switched(cx: &Ctx, st: &RelocateState) -> Result<bool> {
    let now = engine::discover_with(cx.host, cx.exec, st.engine(), false)?;
    Ok(now.config_datadir == st.new_datadir)
}

/// Same device as the nearest existing ancestor of `b`?
fn same_fs(a: &Path, b: &Path) -> bool {
    let mut cur = b.to_path_buf();
    while !cur.exists() {
        match cur.parent() {
            Some(p) => cur = p.to_path_buf(),
            None => return false,
        }
    }
    match (fs::metadata(a), fs::metadata(&cur)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev(),
        _ => false,
    }
}

fn is_empty_dir(p: &Path) -> bool {
    fs::read_dir(p)
        .map(|mut r| r.next().is_none())
        .unwrap_or(false)
}

fn load_manifest(cx: &Ctx, st: &RelocateState) -> Manifest {
    Manifest::load_or_new(
        &cx.host.path(&st.manifest),
        &cx.host.path(&st.old_datadir),
        &cx.host.path(&st.new_datadir),
    )
}

/// Placeholder directories the engine needs at the old location that do not exist yet.
fn missing_placeholders(cx: &Ctx, st: &RelocateState) -> Vec<PathBuf> {
    engine::placeholder_dirs(cx.host, &st.instance, &st.old_datadir)
        .into_iter()
        .filter(|p| !cx.host.path(p).exists())
        .collect()
}

fn render(cx: &Ctx, st: &RelocateState) -> Result<Vec<engine::ConfigFile>> {
    engine::render_switch(cx.host, &st.instance, &st.new_datadir)
}

/// Look at the system (never at a journal alone) and say whether `step` is needed.
pub fn observe(cx: &Ctx, st: &RelocateState, step: Step) -> Result<Observed> {
    let switched = config_switched(cx, st)?;
    let old = cx.host.path(&st.old_datadir);
    let new = cx.host.path(&st.new_datadir);
    let copy_done = || Observed::Done;
    Ok(match step {
        Step::Preflight => {
            if switched {
                Observed::Done
            } else if st.new_datadir.starts_with(&st.old_datadir)
                || st.old_datadir.starts_with(&st.new_datadir)
            {
                Observed::Conflict(format!(
                    "the new datadir {} and the old one {} are nested; choose a directory on \
                     the data mount",
                    st.new_datadir.display(),
                    st.old_datadir.display()
                ))
            } else if !old.is_dir() {
                Observed::Conflict(format!(
                    "the datadir {} does not exist and the configuration does not point at {}",
                    st.old_datadir.display(),
                    st.new_datadir.display()
                ))
            } else if cx.require_separate_fs && same_fs(&old, &new) {
                Observed::Conflict(format!(
                    "{} would be on the same filesystem as {}; is the data filesystem mounted?",
                    st.new_datadir.display(),
                    st.old_datadir.display()
                ))
            } else if st.adopt {
                if engine::looks_like_datadir(st.engine(), &new) {
                    Observed::Todo(format!("adopt the datadir at {}", st.new_datadir.display()))
                } else {
                    Observed::Conflict(format!(
                        "{} does not hold a {} datadir; nothing to adopt",
                        st.new_datadir.display(),
                        st.engine().name()
                    ))
                }
            } else if new.exists()
                && !is_empty_dir(&new)
                && !cx.host.path(&st.manifest).exists()
                && !st.clone_started
            {
                Observed::Conflict(format!(
                    "{} already holds data that dbhost did not copy; refusing to overwrite it \
                     (move it away, or point the profile at another directory)",
                    st.new_datadir.display()
                ))
            } else {
                Observed::Todo("check room and paths".into())
            }
        }
        Step::Pass1 | Step::VerifyPass1 | Step::Pass2 | Step::VerifyDelta
            if switched || st.adopt =>
        {
            copy_done()
        }
        Step::Pass1 | Step::VerifyPass1 | Step::Pass2 | Step::VerifyDelta
            if st.method == Method::Replica =>
        {
            Observed::Done
        }
        Step::Clone | Step::Follow | Step::CatchUp
            if switched || st.adopt || st.method == Method::Copy =>
        {
            Observed::Done
        }
        Step::Clone => {
            if st.cloned && engine::looks_like_datadir(st.engine(), &new) {
                Observed::Done
            } else {
                Observed::Todo(format!(
                    "copy the running server into {}",
                    st.new_datadir.display()
                ))
            }
        }
        Step::Follow => {
            if super::replica::done(cx.host, st) || engine::is_stopped(cx.exec, &st.instance.unit) {
                Observed::Done
            } else {
                Observed::Todo(format!("stream into the copy ({})", super::replica::UNIT))
            }
        }
        Step::CatchUp => {
            if super::replica::done(cx.host, st) {
                Observed::Done
            } else {
                Observed::Todo("the replica applies the last change, then stops".into())
            }
        }
        Step::Pass1 => Observed::Todo(format!(
            "copy {} to {} while the database runs",
            st.old_datadir.display(),
            st.new_datadir.display()
        )),
        Step::VerifyPass1 => {
            if switched {
                Observed::Done
            } else {
                let m = load_manifest(cx, st);
                let n = m
                    .entries
                    .values()
                    .filter(|e| {
                        e.kind == copy::Kind::File
                            && e.hardlink_to.is_none()
                            && !e.dirty
                            && !e.verified
                    })
                    .count();
                if n == 0 && !m.entries.is_empty() {
                    Observed::Done
                } else {
                    Observed::Todo(format!("re-read {n} copied files"))
                }
            }
        }
        Step::Stop => {
            if switched || engine::is_stopped(cx.exec, &st.instance.unit) {
                Observed::Done
            } else {
                Observed::Todo(format!("stop {}", st.instance.unit))
            }
        }
        Step::Pass2 => Observed::Todo("copy what changed since pass 1".into()),
        Step::VerifyDelta => Observed::Todo("verify the delta and all metadata".into()),
        Step::SwitchConfig => {
            let files = render(cx, st)?;
            let stale: Vec<String> = files
                .iter()
                .filter(|f| {
                    fs::read_to_string(cx.host.path(&f.path)).ok().as_deref()
                        != Some(f.content.as_str())
                })
                .map(|f| f.path.display().to_string())
                .collect();
            if stale.is_empty() {
                Observed::Done
            } else {
                Observed::Todo(format!("write {}", stale.join(", ")))
            }
        }
        // Built from a discovery after the move (lost journal): nothing was moved by this
        // record, so there is nothing to keep — and the live datadir must not be renamed.
        Step::KeepOld if st.old_datadir == st.new_datadir => Observed::Done,
        Step::KeepOld => {
            let kept = cx.host.path(&st.kept_old).is_dir();
            let old_is_ours = !old.exists() || st.placeholders.contains(&st.old_datadir);
            let missing = missing_placeholders(cx, st);
            match (kept, old_is_ours) {
                (true, true) if missing.is_empty() => Observed::Done,
                (true, true) => Observed::Todo(format!(
                    "create placeholder {}",
                    missing
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                (false, true) if !old.exists() => Observed::Conflict(format!(
                    "neither {} nor {} exists",
                    st.old_datadir.display(),
                    st.kept_old.display()
                )),
                (true, false) => Observed::Conflict(format!(
                    "both {} and {} exist; remove one by hand",
                    st.old_datadir.display(),
                    st.kept_old.display()
                )),
                _ => Observed::Todo(format!(
                    "rename {} to {}",
                    st.old_datadir.display(),
                    st.kept_old.display()
                )),
            }
        }
        Step::Start => {
            if engine::is_active(cx.exec, &st.instance.unit)
                && st
                    .stopped_sockets
                    .iter()
                    .all(|s| engine::is_active(cx.exec, s))
            {
                Observed::Done
            } else {
                Observed::Todo(format!("start {}", st.instance.unit))
            }
        }
        Step::Health => Observed::Todo("query the server over its local socket".into()),
    })
}

fn outcome(changed: bool) -> Outcome {
    if changed {
        Outcome::Changed
    } else {
        Outcome::Unchanged
    }
}

/// Carry out `step` (call [`observe`] first; applying a done step is harmless but may cost a
/// scan).
pub fn apply(cx: &mut Ctx, st: &mut RelocateState, step: Step) -> Result<Outcome> {
    apply_detailed(cx, st, step).map(|(o, _)| o)
}

/// Files of the switch that do not change which datadir the server uses, so they can be written
/// (and reloaded) while it still runs: the systemd unit drop-in and the AppArmor local rule.
fn staged_before_stop(path: &Path) -> bool {
    path.starts_with("/etc/systemd/") || path.starts_with("/etc/apparmor.d/")
}

/// Does a change of this file need [`engine::reload_commands`]? The MySQL/MariaDB `.cnf` is read
/// at start only; PostgreSQL's `postgresql.conf` also feeds Debian's systemd generator
/// (`RequiresMountsFor=` of the cluster unit), so it needs a daemon-reload.
fn needs_reload(engine: Engine, path: &Path) -> bool {
    engine == Engine::Postgresql || staged_before_stop(path)
}

/// Write `files` (originals recorded for rollback first: the first save wins, so a re-run never
/// records dbhost's own content as "before"), then reload what needs it. True when any file
/// changed.
fn write_config_files(
    cx: &mut Ctx,
    st: &mut RelocateState,
    files: &[engine::ConfigFile],
) -> Result<bool> {
    let mut dirty = false;
    for f in files {
        if !st.saved_files.iter().any(|s| s.path == f.path) {
            let p = cx.host.path(&f.path);
            let md = fs::metadata(&p).ok();
            st.saved_files.push(SavedFile {
                path: f.path.clone(),
                before: fs::read_to_string(&p).ok(),
                mode: md.as_ref().map(|m| m.mode() & 0o7777),
                owner: md.as_ref().map(|m| (m.uid(), m.gid())),
            });
            dirty = true;
        }
    }
    if dirty {
        (cx.save)(st)?;
    }
    let mut changed = false;
    let mut reload = false;
    for f in files {
        let p = cx.host.path(&f.path);
        let c = write_switched(&p, &f.content, f.mode)?;
        changed |= c;
        reload |= c && needs_reload(st.engine(), &f.path);
    }
    if reload {
        for c in engine::reload_commands(cx.host, &st.instance) {
            cx.exec.run(&c)?;
        }
    }
    Ok(changed)
}

/// What a copy pass did, for reports: `copied N of M entries, B bytes[, removed R]`. The byte
/// count is what a pipeline (or the relocation benchmark) divides by the step's seconds.
fn pass_detail(rep: &copy::PassReport) -> String {
    let mut s = format!(
        "copied {} of {} entries, {} bytes",
        rep.copied.len(),
        rep.entries,
        rep.copied_bytes
    );
    if !rep.removed.is_empty() {
        s.push_str(&format!(", removed {}", rep.removed.len()));
    }
    s
}

fn verify_detail(rep: &copy::VerifyReport) -> String {
    format!(
        "hashed {} files, {} bytes; compared {} patched files, {} bytes; {} entries' metadata \
         checked",
        rep.hashed_files,
        rep.hashed_bytes,
        rep.compared_files,
        rep.compared_bytes,
        rep.checked_entries
    )
}

/// [`apply`], plus a one-line account of the work done (bytes copied or hashed; empty for the
/// steps that move no data).
pub fn apply_detailed(
    cx: &mut Ctx,
    st: &mut RelocateState,
    step: Step,
) -> Result<(Outcome, String)> {
    let old = cx.host.path(&st.old_datadir);
    let new = cx.host.path(&st.new_datadir);
    let replica_only = matches!(step, Step::Clone | Step::Follow | Step::CatchUp);
    let copy_only = matches!(
        step,
        Step::Pass1 | Step::VerifyPass1 | Step::Pass2 | Step::VerifyDelta
    );
    if (replica_only && st.method != Method::Replica) || (copy_only && st.method != Method::Copy) {
        return Ok((Outcome::Unchanged, String::new()));
    }
    match step {
        Step::Preflight => {
            if let Observed::Conflict(c) = observe(cx, st, step)? {
                bail!("{c}");
            }
            if !st.adopt {
                copy::check_room(&old, &new, &cx.copy)?;
            }
            // First run only: remember whether the server ran, so rollback restores that.
            if !st.running_recorded {
                st.was_running = engine::is_active(cx.exec, &st.instance.unit);
                st.running_recorded = true;
                (cx.save)(st)?;
            }
            Ok((Outcome::Unchanged, String::new()))
        }
        Step::Clone => {
            if !st.clone_started {
                st.clone_started = true;
                (cx.save)(st)?;
            }
            let d = super::replica::clone(cx.host, cx.exec, st)?;
            st.cloned = true;
            (cx.save)(st)?;
            Ok((Outcome::Changed, d))
        }
        Step::Follow => {
            super::replica::follow(cx.host, cx.exec, st, &cx.wait)?;
            Ok((
                Outcome::Changed,
                format!("{} streams from {}", super::replica::UNIT, st.instance.unit),
            ))
        }
        Step::CatchUp => {
            let d =
                super::replica::catch_up(cx.host, cx.exec, st, &cx.wait, Duration::from_secs(300))?;
            (cx.save)(st)?;
            Ok((outcome(!d.is_empty()), d))
        }
        Step::Pass1 => {
            let mut man = load_manifest(cx, st);
            let mp = cx.host.path(&st.manifest);
            // The manifest must exist before the first byte lands in the target: it is what
            // tells a re-run after a crash that the files there are dbhost's own copy (else
            // preflight refuses them as foreign data). Pass 1 only checkpoints every few seconds.
            if !mp.exists() {
                man.save(&mp)?;
            }
            let rep = copy::pass1(&old, &new, &mut man, &cx.copy, cx.progress, &mut |m| {
                m.save(&mp)
            })?;
            let mut detail = pass_detail(&rep);
            // While the server writes, files change behind the pass. Live passes again, each
            // copying only what changed since the one before, as long as that shrinks: what is
            // left for pass 2 (inside the downtime) is then one pass's worth of changes.
            let (mut prev, mut more) = (rep.copied_bytes, Vec::new());
            while more.len() < MAX_LIVE_PASSES && prev > LIVE_PASS_FLOOR {
                let r = copy::pass1(&old, &new, &mut man, &cx.copy, cx.progress, &mut |m| {
                    m.save(&mp)
                })?;
                more.push(r.copied_bytes);
                if r.copied_bytes * 2 > prev {
                    break;
                }
                prev = r.copied_bytes;
            }
            if !more.is_empty() {
                detail.push_str(&format!(
                    "; {} more live pass(es) copied {} bytes",
                    more.len(),
                    more.iter()
                        .map(|b| b.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Ok((outcome(rep.changed()), detail))
        }
        Step::VerifyPass1 => {
            let mut man = load_manifest(cx, st);
            let rep = copy::verify_pass1(&mut man, &cx.copy, cx.progress)?;
            man.save(&cx.host.path(&st.manifest))?;
            for m in &rep.mismatches {
                tracing::warn!(path = %m.path, "pass 1 copy differs ({}); pass 2 copies it again", m.what);
            }
            Ok((outcome(rep.hashed_files > 0), verify_detail(&rep)))
        }
        Step::Stop => {
            // Downtime starts here, so first (server still running) put the files in place
            // that do not move the datadir — the unit drop-in (RequiresMountsFor=) and the
            // AppArmor rule for the new path — and reload them: `systemctl daemon-reload`
            // takes seconds on a busy host and need not happen inside the window.
            let files: Vec<_> = render(cx, st)?
                .into_iter()
                .filter(|f| staged_before_stop(&f.path))
                .collect();
            let staged = write_config_files(cx, st, &files)?;
            // With socket activation a client connecting after the stop would start the server
            // again, on the old datadir, in the middle of pass 2: stop the sockets first
            // (recorded before, so the start step and rollback start them again).
            // `engine::stop` stops them in the same transaction as the service.
            let socks = engine::active_sockets(cx.exec, &st.instance.unit);
            if socks.iter().any(|s| !st.stopped_sockets.contains(s)) {
                for s in socks {
                    if !st.stopped_sockets.contains(&s) {
                        st.stopped_sockets.push(s);
                    }
                }
                (cx.save)(st)?;
            }
            let flushed = if engine::is_active(cx.exec, &st.instance.unit) {
                engine::flush_before_stop(
                    cx.host,
                    cx.exec,
                    &st.instance,
                    Duration::from_secs(60),
                    cx.wait.sleep,
                )
            } else {
                String::new()
            };
            let fenced = if st.method == Method::Replica {
                let (host, exec, wait) = (cx.host, cx.exec, cx.wait.clone());
                super::replica::before_stop(host, exec, st, &wait, cx.save)?
            } else {
                String::new()
            };
            let stopped = engine::stop(cx.exec, &st.instance.unit, &cx.wait)?;
            let detail = [
                staged.then(|| "unit drop-in staged and reloaded before the stop".to_string()),
                (!flushed.is_empty()).then_some(flushed),
                (!fenced.is_empty()).then_some(fenced),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ");
            Ok((outcome(stopped || staged), detail))
        }
        Step::Pass2 => {
            if engine::is_active(cx.exec, &st.instance.unit) {
                bail!(
                    "{} is running; pass 2 copies only with the database stopped",
                    st.instance.unit
                );
            }
            let mut man = load_manifest(cx, st);
            let mpath = cx.host.path(&st.manifest);
            let rep = copy::pass2(&old, &new, &mut man, &cx.copy, cx.progress, &mut |m| {
                m.save(&mpath)
            })?;
            man.save(&cx.host.path(&st.manifest))?;
            Ok((outcome(rep.changed()), pass_detail(&rep)))
        }
        Step::VerifyDelta => {
            let mut man = load_manifest(cx, st);
            let rep = copy::verify_delta(&mut man, &cx.copy, cx.progress)?;
            man.save(&cx.host.path(&st.manifest))?;
            rep.ensure_ok(&format!(
                "verifying {} against {}",
                st.new_datadir.display(),
                st.old_datadir.display()
            ))?;
            Ok((
                outcome(rep.hashed_files + rep.compared_files > 0),
                verify_detail(&rep),
            ))
        }
        Step::SwitchConfig => {
            let files = render(cx, st)?;
            let changed = write_config_files(cx, st, &files)?;
            if !config_switched(cx, st)? {
                let now = engine::discover_with(cx.host, cx.exec, st.engine(), false)?;
                bail!(
                    "after writing the drop-ins the configuration still says datadir {} ({:?}); \
                     a later file overrides dbhost's",
                    now.config_datadir.display(),
                    now.source
                );
            }
            Ok((outcome(changed), String::new()))
        }
        Step::KeepOld => {
            match observe(cx, st, step)? {
                Observed::Done => return Ok((Outcome::Unchanged, String::new())),
                Observed::Conflict(c) => bail!("{c}"),
                Observed::Todo(_) => {}
            }
            let kept = cx.host.path(&st.kept_old);
            if !kept.exists() {
                fs::rename(&old, &kept)
                    .with_context(|| format!("renaming {} to {}", old.display(), kept.display()))?;
                crate::host::fsync_dir(kept.parent().unwrap_or(Path::new("/")))
                    .with_context(|| format!("syncing the parent of {}", kept.display()))?;
            }
            // Placeholders get the owner and mode of the old datadir. They are recorded before
            // they are created, so rollback knows to remove them.
            let meta =
                fs::metadata(&kept).with_context(|| format!("reading {}", kept.display()))?;
            let missing = missing_placeholders(cx, st);
            let unrecorded: Vec<PathBuf> = missing
                .iter()
                .filter(|p| !st.placeholders.contains(p))
                .cloned()
                .collect();
            if !unrecorded.is_empty() {
                st.placeholders.extend(unrecorded);
                (cx.save)(st)?;
            }
            for p in &missing {
                let hp = cx.host.path(p);
                fs::create_dir_all(&hp).with_context(|| format!("creating {}", p.display()))?;
                std::os::unix::fs::chown(&hp, Some(meta.uid()), Some(meta.gid()))
                    .with_context(|| format!("chown {}", p.display()))?;
                fs::set_permissions(&hp, fs::Permissions::from_mode(meta.mode() & 0o7777))
                    .with_context(|| format!("chmod {}", p.display()))?;
            }
            Ok((Outcome::Changed, String::new()))
        }
        Step::Start => {
            // Sockets first, so the server takes over their listening sockets as at boot.
            for s in &st.stopped_sockets {
                engine::start(cx.exec, s, &cx.wait)?;
            }
            Ok((
                outcome(engine::start(cx.exec, &st.instance.unit, &cx.wait)?),
                String::new(),
            ))
        }
        Step::Health => {
            engine::health(
                cx.host,
                cx.exec,
                &st.instance,
                Some(&st.new_datadir),
                &cx.wait,
            )?;
            Ok((Outcome::Unchanged, String::new()))
        }
    }
}

/// At most this many live passes after the first.
const MAX_LIVE_PASSES: usize = 4;
/// A live pass that copied less than this leaves too little to be worth another.
const LIVE_PASS_FLOOR: u64 = 8 << 20;

/// One step's result for reports and JSON events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    pub step: Step,
    pub observed: Observed,
    pub outcome: Outcome,
}

/// Run every step in order: observe, apply when not done, report through `on_step`. Stops at
/// the first error (the state record is already saved; re-running resumes).
pub fn run(
    cx: &mut Ctx,
    st: &mut RelocateState,
    on_step: &mut dyn FnMut(&StepReport),
) -> Result<Vec<StepReport>> {
    let mut out = Vec::new();
    for step in STEPS {
        let observed = observe(cx, st, step)?;
        let outcome = match &observed {
            Observed::Done => Outcome::Unchanged,
            Observed::Conflict(c) => bail!("{}: {c}", step.name()),
            Observed::Todo(_) => {
                apply(cx, st, step).with_context(|| format!("relocation step {}", step.name()))?
            }
        };
        let r = StepReport {
            step,
            observed,
            outcome,
        };
        on_step(&r);
        out.push(r);
    }
    Ok(out)
}

/// Put the previous datadir and configuration back (B11): stop, restore the files dbhost
/// changed, reload, remove placeholders, rename the kept datadir back, start if it was running
/// and check health on the old datadir. Each step is idempotent. Writes the database accepted
/// on the new datadir are NOT copied back; the new datadir is left in place.
pub fn rollback(cx: &mut Ctx, st: &RelocateState) -> Result<Vec<(String, Outcome)>> {
    let mut out = Vec::new();
    if st.method == Method::Replica {
        // The replica must not run on (or keep streaming into) the datadir left behind.
        out.push((
            "stop-replica".to_string(),
            outcome(super::replica::stop(cx.exec, &cx.wait)?),
        ));
    }
    let old = cx.host.path(&st.old_datadir);
    let kept = cx.host.path(&st.kept_old);
    let needs_restore = st
        .saved_files
        .iter()
        .any(|s| fs::read_to_string(cx.host.path(&s.path)).ok() != s.before);
    let needs_rename = kept.is_dir();
    // Activating sockets are stopped with the service (else a client restarts it mid-way) and
    // started again at the end, like those the relocation stopped.
    let mut socks = st.stopped_sockets.clone();
    let stopped = if needs_restore || needs_rename {
        for s in engine::active_sockets(cx.exec, &st.instance.unit) {
            if !socks.contains(&s) {
                socks.push(s);
            }
        }
        // Stops the active ones with the service, in one transaction.
        engine::stop(cx.exec, &st.instance.unit, &cx.wait)?
    } else {
        false
    };
    out.push(("stop".to_string(), outcome(stopped)));
    let mut restored = false;
    for s in &st.saved_files {
        let p = cx.host.path(&s.path);
        let now = fs::read_to_string(&p).ok();
        if now == s.before {
            continue;
        }
        match &s.before {
            Some(text) => {
                write_config(&p, text, s.mode.unwrap_or(0o644), s.owner)
                    .with_context(|| format!("restoring {}", s.path.display()))?;
            }
            None => {
                fs::remove_file(&p).with_context(|| format!("removing {}", s.path.display()))?;
                if let Some(dir) = p.parent() {
                    if dir.extension().is_some_and(|e| e == "d") && is_empty_dir(dir) {
                        let _ = fs::remove_dir(dir);
                    }
                }
            }
        }
        restored = true;
    }
    if restored {
        for c in engine::reload_commands(cx.host, &st.instance) {
            cx.exec.run(&c)?;
        }
    }
    out.push(("restore-config".to_string(), outcome(restored)));
    let mut renamed = false;
    if kept.is_dir() {
        for p in st.placeholders.iter().rev() {
            let hp = cx.host.path(p);
            if hp.is_dir() {
                fs::remove_dir(&hp).with_context(|| {
                    format!(
                        "removing placeholder {} (it should be empty; move its content away)",
                        p.display()
                    )
                })?;
            }
        }
        if old.exists() {
            bail!(
                "cannot rename {} back: {} exists",
                st.kept_old.display(),
                st.old_datadir.display()
            );
        }
        fs::rename(&kept, &old)
            .with_context(|| format!("renaming {} to {}", kept.display(), old.display()))?;
        renamed = true;
    }
    out.push(("restore-datadir".to_string(), outcome(renamed)));
    for s in &socks {
        engine::start(cx.exec, s, &cx.wait)?;
    }
    let started = if st.was_running {
        let s = engine::start(cx.exec, &st.instance.unit, &cx.wait)?;
        engine::health(
            cx.host,
            cx.exec,
            &st.instance,
            Some(&st.old_datadir),
            &cx.wait,
        )?;
        if st.method == Method::Replica {
            // Its slot would keep WAL on the server for ever.
            super::replica::after_rollback(cx.host, cx.exec, st)?;
        }
        s
    } else {
        false
    };
    out.push(("start".to_string(), outcome(started)));
    Ok(out)
}

/// `apply --finalize`: once the server answers on the new datadir, delete the kept old one.
/// Refuses while the server is not healthy on the new datadir. Already gone → `Unchanged`.
pub fn finalize(cx: &mut Ctx, st: &RelocateState) -> Result<Outcome> {
    let kept = cx.host.path(&st.kept_old);
    if !kept.exists() {
        return Ok(Outcome::Unchanged);
    }
    if !config_switched(cx, st)? {
        bail!(
            "the configuration does not point at {}; not deleting {}",
            st.new_datadir.display(),
            st.kept_old.display()
        );
    }
    engine::health(
        cx.host,
        cx.exec,
        &st.instance,
        Some(&st.new_datadir),
        &cx.wait,
    )
    .with_context(|| format!("not deleting {}", st.kept_old.display()))?;
    fs::remove_dir_all(&kept).with_context(|| format!("removing {}", kept.display()))?;
    Ok(Outcome::Changed)
}

#[cfg(test)]
mod tests;
