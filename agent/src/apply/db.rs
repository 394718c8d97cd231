//! The datadir relocation as apply steps: an adapter over `db::relocate` (its ten idempotent
//! steps: preflight, pass 1, verify pass 1, stop, pass 2, verify delta, switch config, keep old,
//! start, health). The relocation record lives in the journal (`data.relocate`) so a crash at any
//! point resumes; without a journal the state is re-derived from the configuration and the disks
//! (a database whose configuration already points at the target is simply done).

use super::step::{ApplyCx, Observation, Outcome, Step};
use crate::db::engine::{self as dbe, Engine};
use crate::db::relocate::{self, Observed, RelocateState};
use crate::plan::DatabasePlan;
use anyhow::{Context, Result};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

const JOURNAL_KEY: &str = "relocate";

/// Shared between the steps of one run.
#[derive(Default)]
struct Shared {
    /// The journal run the state was loaded for: the dry run that shows the plan observes
    /// with a scratch journal first, and the real run must load its own journal's record
    /// (a resumed relocation), not keep what the dry run derived.
    loaded_for: Option<String>,
    /// `None` after loading: nothing to relocate (already on the target).
    state: Option<RelocateState>,
    done_reason: String,
}

struct Ctxd {
    engine: Engine,
    method: crate::profile::MoveMethod,
    target: PathBuf,
    /// The data filesystem's mount point: until it is mounted (earlier steps still to do),
    /// the relocation can only be "to do" (its checks need the mounted target).
    mount_point: String,
    shared: Rc<RefCell<Shared>>,
}

pub fn engine_of(p: &crate::profile::Engine) -> Option<Engine> {
    match p {
        crate::profile::Engine::Mysql => Some(Engine::Mysql),
        crate::profile::Engine::Mariadb => Some(Engine::Mariadb),
        crate::profile::Engine::Postgresql => Some(Engine::Postgresql),
        crate::profile::Engine::None => None,
    }
}

impl Ctxd {
    fn load(&self, cx: &mut ApplyCx<'_>) -> Result<()> {
        let mut sh = self.shared.borrow_mut();
        if sh.loaded_for.as_deref() == Some(cx.journal.run_id.as_str()) {
            return Ok(());
        }
        sh.loaded_for = Some(cx.journal.run_id.clone());
        sh.state = None;
        sh.done_reason.clear();
        if let Some(v) = cx.journal.data.get(JOURNAL_KEY) {
            if let Ok(st) = serde_json::from_value::<RelocateState>(v.clone()) {
                if st.new_datadir == self.target && st.engine() == self.engine {
                    sh.state = Some(st);
                    return Ok(());
                }
            }
        }
        let inst = dbe::discover(cx.host, cx.exec, self.engine)
            .with_context(|| format!("finding the {} installation", self.engine.name()))?;
        if inst.datadir == self.target || inst.config_datadir == self.target {
            sh.done_reason = format!(
                "{} already uses {}",
                self.engine.name(),
                self.target.display()
            );
            sh.state = None;
            return Ok(());
        }
        let mut st = RelocateState::new(
            inst,
            &self.target,
            &relocate::stamp_now(),
            Path::new("/var/lib/dbhost"),
        );
        // Decision R2 (docs/operator-notes.md): the mount already holds a datadir of this
        // engine that dbhost did not copy in this run (disks adopted from an earlier VM):
        // point the database at it instead of copying.
        // Only a datadir whose relocation finished (marker on the data filesystem, written after
        // the health check) is adopted: a half-copied one is never taken for a datadir.
        st.adopt = dbe::looks_like_datadir(self.engine, &cx.host.path(&self.target))
            && cx.host.path(complete_marker(&self.target)).exists()
            && !cx.host.path(&st.manifest).exists();
        (st.method, st.method_reason) = if self.method == crate::profile::MoveMethod::Copy {
            (
                relocate::Method::Copy,
                "the two-pass copy (database.method = \"copy\")".into(),
            )
        } else {
            choose_method(cx, &st.instance)
        };
        cx.journal
            .set_data(JOURNAL_KEY, serde_json::to_value(&st)?)?;
        sh.state = Some(st);
        Ok(())
    }
}

/// A running PostgreSQL, or MariaDB with its binary log on, moves through a replica (the outage
/// is then a restart, not a copy); everything else by the two-pass copy.
fn choose_method(cx: &ApplyCx<'_>, inst: &dbe::Instance) -> (relocate::Method, String) {
    match inst.engine {
        Engine::Postgresql => match crate::db::replica::usable(cx.host, cx.exec, inst) {
            Ok(()) => (
                relocate::Method::Replica,
                "a streaming replica of the running server: the downtime is the switch".into(),
            ),
            Err(why) => (relocate::Method::Copy, format!("the two-pass copy ({why})")),
        },
        _ => (
            relocate::Method::Copy,
            "the two-pass copy (MariaDB/MySQL move by file copy)".into(),
        ),
    }
}

struct RelocStep {
    step: relocate::Step,
    d: Rc<Ctxd>,
}

fn map_obs(o: Observed) -> Observation {
    match o {
        Observed::Done => Observation::Done(String::new()),
        Observed::Todo(s) => Observation::Todo(s),
        Observed::Conflict(s) => Observation::Conflict(s),
    }
}

impl Step for RelocStep {
    fn id(&self) -> String {
        format!("db.{}", self.step.name())
    }
    fn describe(&self) -> String {
        let t = self.d.target.display();
        match self.step {
            relocate::Step::Preflight => format!("check room and paths for the datadir at {t}"),
            relocate::Step::Clone => format!(
                "replica method: copy the running server into {t} (pg_basebackup / mariabackup)"
            ),
            relocate::Step::Follow => format!(
                "replica method: run the copy as a replica ({}) until the stop",
                crate::db::replica::UNIT
            ),
            relocate::Step::CatchUp => {
                "replica method: the replica applies the server's last change, then stops".into()
            }
            relocate::Step::Pass1 => format!(
                "copy method: copy the datadir to {t} while the database runs (hashing as it \
                 goes; again while what changed shrinks)"
            ),
            relocate::Step::VerifyPass1 => {
                "re-read and verify the copied files while the database runs".into()
            }
            relocate::Step::Stop => "stop the database (downtime starts)".into(),
            relocate::Step::Pass2 => {
                "copy only what changed since pass 1, remove what disappeared".into()
            }
            relocate::Step::VerifyDelta => {
                "verify the changed files and every entry's metadata".into()
            }
            relocate::Step::SwitchConfig => {
                "point the configuration at the new datadir (drop-ins, RequiresMountsFor=)".into()
            }
            relocate::Step::KeepOld => "keep the old datadir, renamed".into(),
            relocate::Step::Start => "start the database (downtime ends)".into(),
            relocate::Step::Health => "health check: a real query over the local socket".into(),
        }
    }
    fn observe(&self, cx: &mut ApplyCx<'_>) -> Result<Observation> {
        let mounts = std::fs::read_to_string(cx.host.proc_("self/mounts")).unwrap_or_default();
        if crate::fs::mounts::find(&crate::fs::mounts::parse(&mounts), &self.d.mount_point)
            .is_none()
        {
            return Ok(Observation::Todo(format!(
                "once {} is mounted",
                self.d.mount_point
            )));
        }
        self.d.load(cx)?;
        let sh = self.d.shared.borrow();
        let Some(st) = &sh.state else {
            return Ok(Observation::Done(sh.done_reason.clone()));
        };
        let mut prog = |_p: crate::db::copy::Progress| {};
        let mut save = |_s: &RelocateState| -> Result<()> { Ok(()) };
        let rcx = relocate::Ctx {
            host: cx.host,
            exec: cx.exec,
            copy: Default::default(),
            wait: Default::default(),
            progress: &mut prog,
            save: &mut save,
            require_separate_fs: true,
        };
        Ok(map_obs(relocate::observe(&rcx, st, self.step)?))
    }
    fn apply(&self, cx: &mut ApplyCx<'_>) -> Result<Outcome> {
        let mut st = match &self.d.shared.borrow().state {
            Some(s) => s.clone(),
            None => return Ok(Outcome::Unchanged),
        };
        if self.step == relocate::Step::SwitchConfig {
            // The undo bundle holds every file as it was before dbhost changed it (issue 5 §1);
            // the switch rewrites the engine's configuration (Debian: postgresql.conf itself).
            for f in dbe::render_switch(cx.host, &st.instance, &st.new_datadir)? {
                cx.before_modify(&f.path.to_string_lossy())?;
            }
        }
        let step_name = self.id();
        let ApplyCx {
            host,
            exec,
            journal,
            progress,
            ..
        } = cx;
        let mut prog = |p: crate::db::copy::Progress| progress(&step_name, p.done, p.total);
        let mut save = |s: &RelocateState| -> Result<()> {
            journal.set_data(JOURNAL_KEY, serde_json::to_value(s)?)
        };
        let mut rcx = relocate::Ctx {
            host,
            exec: *exec,
            copy: Default::default(),
            wait: Default::default(),
            progress: &mut prog,
            save: &mut save,
            require_separate_fs: true,
        };
        let (out, detail) = relocate::apply_detailed(&mut rcx, &mut st, self.step)?;
        if self.step == relocate::Step::Health {
            let m = cx.host.path(complete_marker(&st.new_datadir));
            let body = serde_json::json!({
                "engine": st.engine().name(),
                "datadir": st.new_datadir,
                "previous_datadir": st.old_datadir,
                "completed": crate::apply::journal::now(),
            });
            crate::host::atomic_write(&m, serde_json::to_string_pretty(&body)?.as_bytes(), 0o644)
                .with_context(|| format!("writing {}", m.display()))?;
        }
        cx.journal
            .set_data(JOURNAL_KEY, serde_json::to_value(&st)?)?;
        self.d.shared.borrow_mut().state = Some(st);
        Ok(match out {
            relocate::Outcome::Changed => Outcome::Changed(detail),
            relocate::Outcome::Unchanged => Outcome::Unchanged,
        })
    }
}

/// A file on the data filesystem, next to the datadir, written once a relocation finished
/// (verified copy, switched, healthy). State on the device: a new VM with these disks adopts
/// the datadir only when it is there.
pub fn complete_marker(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "datadir".into());
    target.with_file_name(format!(".dbhost-{name}.complete"))
}

/// The relocation steps for a plan's database section.
pub fn steps(db: &DatabasePlan, mount: &str, _finalize: bool) -> Result<Vec<Box<dyn Step>>> {
    let Some(engine) = engine_of(&db.engine) else {
        return Ok(Vec::new());
    };
    let d = Rc::new(Ctxd {
        engine,
        method: db.method,
        target: PathBuf::from(&db.target),
        mount_point: mount.to_string(),
        shared: Rc::new(RefCell::new(Shared::default())),
    });
    Ok(relocate::STEPS
        .iter()
        .map(|s| {
            Box::new(RelocStep {
                step: *s,
                d: d.clone(),
            }) as Box<dyn Step>
        })
        .collect())
}

/// The relocation record of the last run, if any (for status and rollback).
pub fn recorded_state(j: &super::Journal) -> Option<RelocateState> {
    j.data
        .get(JOURNAL_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// Decision R5 before any write: when the filesystem for the datadir does not exist yet, compare
/// the datadir's allocated size (+ the copier's margin) with the new device's usable size less
/// filesystem overhead, so a too-small array is refused before the array or the filesystem is
/// made. (Once the filesystem is mounted, `db.preflight` checks real free space.)
pub struct RoomStep {
    pub engine: Option<Engine>,
    pub target: PathBuf,
    pub mount_point: String,
    /// Usable bytes of the device the filesystem goes on; `None` when the plan cannot know them
    /// (an array to adopt: its size is read once it is assembled, and its filesystem exists).
    pub device_bytes: Option<u64>,
}

/// Space a fresh filesystem keeps for itself (log, metadata): 5 % plus 64 MiB, generously.
pub fn fs_overhead(device_bytes: u64) -> u64 {
    device_bytes / 20 + (64 << 20)
}

impl Step for RoomStep {
    fn id(&self) -> String {
        "db.room".into()
    }
    fn describe(&self) -> String {
        match self.device_bytes {
            Some(b) => format!(
                "check the datadir fits on the new {} MiB device before touching any disk",
                b >> 20
            ),
            None => "check the datadir fits on the data device before touching any disk".into(),
        }
    }
    fn observe(&self, cx: &mut ApplyCx<'_>) -> Result<Observation> {
        let Some(engine) = self.engine else {
            return Ok(Observation::Done("no database".into()));
        };
        let mounts = std::fs::read_to_string(cx.host.proc_("self/mounts")).unwrap_or_default();
        if crate::fs::mounts::find(&crate::fs::mounts::parse(&mounts), &self.mount_point).is_some()
        {
            return Ok(Observation::Done(
                "filesystem mounted; db.preflight checks free space".into(),
            ));
        }
        let inst = match dbe::discover(cx.host, cx.exec, engine) {
            Ok(i) => i,
            Err(e) => {
                return Ok(Observation::Conflict(format!(
                    "cannot find the {} installation: {e:#}",
                    engine.name()
                )))
            }
        };
        if inst.datadir == self.target || inst.config_datadir == self.target {
            return Ok(Observation::Done("already relocated".into()));
        }
        let src = cx.host.path(&inst.datadir);
        let (alloc, _, files) = crate::db::copy::source_usage(&src)
            .with_context(|| format!("measuring the datadir {}", inst.datadir.display()))?;
        let (needed, _) = crate::db::copy::room_needed(alloc, None, 0);
        let Some(device_bytes) = self.device_bytes else {
            return Ok(Observation::Done(format!(
                "{} MiB needed; the device's size is known once the array is assembled \
                 (db.preflight checks free space on the mounted filesystem)",
                needed >> 20
            )));
        };
        let available = device_bytes.saturating_sub(fs_overhead(device_bytes));
        if needed > available {
            return Ok(Observation::Conflict(format!(
                "the datadir {} needs {} MiB ({} files, {} MiB allocated + margin) but the new filesystem on the data disks would offer about {} MiB; attach larger or more disks. Nothing was written",
                inst.datadir.display(),
                needed >> 20,
                files,
                alloc >> 20,
                available >> 20
            )));
        }
        Ok(Observation::Done(format!(
            "{} MiB needed, about {} MiB available",
            needed >> 20,
            available >> 20
        )))
    }
    fn apply(&self, _cx: &mut ApplyCx<'_>) -> Result<Outcome> {
        Ok(Outcome::Unchanged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{Journal, Undo};
    use crate::host::{FakeExec, Host};

    #[test]
    fn a_resumed_relocation_is_loaded_from_the_real_journal_after_the_dry_run() {
        // Killed (or powered off) after db.switch-config: the configuration already points at
        // the new datadir, the old one is not renamed yet. The dry run (scratch journal, no
        // record) must not decide for the real run that the relocation is done.
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        let put = |p: &str, t: &str| {
            let p = h.path(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        };
        put("/var/lib/mysql/ibdata1", "old");
        put("/var/lib/mysql/mysql/user.frm", "u");
        put("/datadrive/mysql/ibdata1", "new");
        put("/datadrive/mysql/mysql/user.frm", "u");
        put("/lib/systemd/system/mariadb.service", "");
        put("/etc/mysql/my.cnf", "[mysqld]\ndatadir=/var/lib/mysql\n");
        put(
            "/proc/self/mounts",
            "/dev/vda / ext4 rw 0 0\n/dev/md127 /datadrive xfs rw 0 0\n",
        );
        let exec = FakeExec::new();
        let inst = dbe::discover(&h, &exec, Engine::Mariadb).unwrap();
        let st = RelocateState::new(
            inst,
            Path::new("/datadrive/mysql"),
            "20261122T010203Z",
            Path::new("/var/lib/dbhost"),
        );
        put("/etc/mysql/my.cnf", "[mysqld]\ndatadir=/datadrive/mysql\n");
        let plan = DatabasePlan {
            method: Default::default(),
            engine: crate::profile::Engine::Mariadb,
            datadir_subdir: "mysql".into(),
            target: "/datadrive/mysql".into(),
            keep_old_datadir: true,
            retention: None,
        };
        let steps = steps(&plan, "/datadrive", false).unwrap();
        let keep_old = steps.iter().find(|s| s.id() == "db.keep-old").unwrap();
        let mut u = Undo::disabled();
        let mut p = |_: &str, _: u64, _: u64| {};
        // 1. the dry run: a scratch journal without the record
        let mut scratch = Journal::scratch();
        let mut cx = ApplyCx {
            host: &h,
            exec: &exec,
            undo: &mut u,
            journal: &mut scratch,
            facts: Default::default(),
            progress: &mut p,
        };
        keep_old.observe(&mut cx).unwrap();
        // 2. the real run: its journal carries the interrupted run's record
        let mut real = Journal::begin(&h, "apply", None).unwrap();
        real.set_data(JOURNAL_KEY, serde_json::to_value(&st).unwrap())
            .unwrap();
        let mut u = Undo::disabled();
        let mut cx = ApplyCx {
            host: &h,
            exec: &exec,
            undo: &mut u,
            journal: &mut real,
            facts: Default::default(),
            progress: &mut p,
        };
        let obs = keep_old.observe(&mut cx).unwrap();
        assert!(matches!(obs, Observation::Todo(_)), "{obs:?}");
    }

    #[test]
    fn too_small_device_is_a_conflict_before_any_write() {
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        std::fs::create_dir_all(h.path("/var/lib/mysql/mysql")).unwrap();
        std::fs::write(h.path("/var/lib/mysql/ibdata1"), vec![7u8; 4 << 20]).unwrap();
        std::fs::create_dir_all(h.path("/etc/mysql")).unwrap();
        std::fs::write(
            h.path("/etc/mysql/my.cnf"),
            "[mysqld]\ndatadir=/var/lib/mysql\n",
        )
        .unwrap();
        std::fs::create_dir_all(h.path("/proc/self")).unwrap();
        std::fs::write(h.path("/proc/self/mounts"), "/dev/vda / ext4 rw 0 0\n").unwrap();
        let exec = FakeExec::new();
        let mut j = Journal::scratch();
        let mut u = Undo::disabled();
        let mut p = |_: &str, _: u64, _: u64| {};
        let mut cx = ApplyCx {
            host: &h,
            exec: &exec,
            undo: &mut u,
            journal: &mut j,
            facts: Default::default(),
            progress: &mut p,
        };
        let step = |bytes| RoomStep {
            engine: Some(Engine::Mariadb),
            target: PathBuf::from("/datadrive/mysql"),
            mount_point: "/datadrive".into(),
            device_bytes: bytes,
        };
        // 4 MiB + 64 MiB margin does not fit on 100 MiB less overhead (69 MiB)...
        assert!(matches!(
            step(Some(100 << 20)).observe(&mut cx).unwrap(),
            Observation::Conflict(_)
        ));
        // ...but fits on 1 GiB.
        assert!(matches!(
            step(Some(1 << 30)).observe(&mut cx).unwrap(),
            Observation::Done(_)
        ));
        assert!(step(Some(1 << 30))
            .describe()
            .contains("new 1024 MiB device"));
        // An array to adopt: no size before it is assembled; nothing to refuse, and no
        // made-up size in the plan (it said 17592186044415 MiB).
        let unknown = step(None);
        assert_eq!(
            unknown.describe(),
            "check the datadir fits on the data device before touching any disk"
        );
        match unknown.observe(&mut cx).unwrap() {
            Observation::Done(d) => assert!(d.contains("known once the array is assembled"), "{d}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_config_switch_saves_the_files_it_changes_in_the_undo_bundle() {
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        let conf = "/etc/postgresql/15/main/postgresql.conf";
        std::fs::create_dir_all(h.path("/etc/postgresql/15/main")).unwrap();
        std::fs::write(
            h.path(conf),
            "data_directory = '/var/lib/postgresql/15/main'\nport = 5432\n",
        )
        .unwrap();
        std::fs::create_dir_all(h.path("/var/lib/postgresql/15/main/global")).unwrap();
        std::fs::create_dir_all(h.path("/datadrive")).unwrap();
        std::fs::create_dir_all(h.path("/proc/self")).unwrap();
        std::fs::write(
            h.path("/proc/self/mounts"),
            "/dev/vda / ext4 rw 0 0\n/dev/md127 /datadrive xfs rw 0 0\n",
        )
        .unwrap();
        let exec = FakeExec::new();
        let mut j = Journal::scratch();
        let mut u = Undo::open(&h, "1-1").unwrap();
        let mut p = |_: &str, _: u64, _: u64| {};
        let mut cx = ApplyCx {
            host: &h,
            exec: &exec,
            undo: &mut u,
            journal: &mut j,
            facts: Default::default(),
            progress: &mut p,
        };
        let d = Rc::new(Ctxd {
            engine: Engine::Postgresql,
            method: Default::default(),
            target: PathBuf::from("/datadrive/postgresql"),
            mount_point: "/datadrive".into(),
            shared: Rc::new(RefCell::new(Shared::default())),
        });
        let step = RelocStep {
            step: relocate::Step::SwitchConfig,
            d,
        };
        assert!(matches!(
            step.observe(&mut cx).unwrap(),
            Observation::Todo(_)
        ));
        assert!(matches!(step.apply(&mut cx).unwrap(), Outcome::Changed(_)));
        assert!(std::fs::read_to_string(h.path(conf))
            .unwrap()
            .contains("'/datadrive/postgresql'"));
        let saved: Vec<(String, bool)> = u
            .manifest()
            .entries
            .iter()
            .map(|e| (e.path.clone(), e.existed))
            .collect();
        assert!(saved.contains(&(conf.to_string(), true)), "{saved:?}");
        assert!(
            saved.contains(&(
                "/etc/systemd/system/postgresql@15-main.service.d/dbhost.conf".to_string(),
                false
            )),
            "{saved:?}"
        );
    }
}
