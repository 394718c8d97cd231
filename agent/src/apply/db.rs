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
    loaded: bool,
    /// `None` after loading: nothing to relocate (already on the target).
    state: Option<RelocateState>,
    done_reason: String,
}

struct Ctxd {
    engine: Engine,
    target: PathBuf,
    shared: Rc<RefCell<Shared>>,
}

fn engine_of(p: &crate::profile::Engine) -> Option<Engine> {
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
        if sh.loaded {
            return Ok(());
        }
        sh.loaded = true;
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
        cx.journal
            .set_data(JOURNAL_KEY, serde_json::to_value(&st)?)?;
        sh.state = Some(st);
        Ok(())
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
            relocate::Step::Pass1 => {
                format!("copy the datadir to {t} while the database runs (hashing as it goes)")
            }
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
        let out = relocate::apply(&mut rcx, &mut st, self.step)?;
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
            relocate::Outcome::Changed => Outcome::Changed(String::new()),
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
pub fn steps(db: &DatabasePlan, _mount: &str, _finalize: bool) -> Result<Vec<Box<dyn Step>>> {
    let Some(engine) = engine_of(&db.engine) else {
        return Ok(Vec::new());
    };
    let d = Rc::new(Ctxd {
        engine,
        target: PathBuf::from(&db.target),
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
