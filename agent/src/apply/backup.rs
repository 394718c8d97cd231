//! The `[backup]` steps of `apply`: install the schedule's systemd timers, and restore a backup
//! into a database that holds no data yet (`restore-on-apply`: a new VM from a backup in one
//! step).

use super::step::{ApplyCx, Observation, Outcome, Step};
use crate::backup::restore::{self, OnApply};
use crate::backup::schedule::{self, UnitFile};
use crate::host::{atomic_write, CommandSpec};
use crate::profile::backup::Backup;
use anyhow::{Context, Result};

/// Write the schedule's units, reload systemd, enable and start the timers.
pub struct ScheduleStep {
    pub units: Vec<UnitFile>,
}

impl ScheduleStep {
    pub fn new(b: &Backup, binary: &str, profile: &std::path::Path) -> ScheduleStep {
        ScheduleStep {
            units: schedule::units(b, binary, profile),
        }
    }
    fn stale(&self, cx: &ApplyCx<'_>) -> Vec<&UnitFile> {
        self.units
            .iter()
            .filter(|u| {
                std::fs::read_to_string(cx.host.etc(&format!("systemd/system/{}", u.name)))
                    .ok()
                    .as_deref()
                    != Some(u.text.as_str())
            })
            .collect()
    }
    fn disabled(&self, cx: &ApplyCx<'_>) -> Vec<String> {
        schedule::timers(&self.units)
            .into_iter()
            .filter(|t| {
                !cx.host
                    .etc(&format!("systemd/system/timers.target.wants/{t}"))
                    .exists()
            })
            .collect()
    }
}

impl Step for ScheduleStep {
    fn id(&self) -> String {
        "backup.schedule".into()
    }
    fn describe(&self) -> String {
        format!(
            "install and enable {} (scheduled backups)",
            schedule::timers(&self.units).join(", ")
        )
    }
    fn observe(&self, cx: &mut ApplyCx<'_>) -> Result<Observation> {
        let (stale, disabled) = (self.stale(cx), self.disabled(cx));
        if stale.is_empty() && disabled.is_empty() {
            return Ok(Observation::Done("timers installed and enabled".into()));
        }
        let mut what: Vec<String> = stale.iter().map(|u| format!("write {}", u.name)).collect();
        what.extend(disabled.iter().map(|t| format!("enable {t}")));
        Ok(Observation::Todo(what.join(", ")))
    }
    fn apply(&self, cx: &mut ApplyCx<'_>) -> Result<Outcome> {
        let stale: Vec<UnitFile> = self.stale(cx).into_iter().cloned().collect();
        for u in &stale {
            let abs = format!("/etc/systemd/system/{}", u.name);
            cx.before_modify(&abs)?;
            let p = cx.host.path(&abs);
            atomic_write(&p, u.text.as_bytes(), 0o644)
                .with_context(|| format!("writing {}", p.display()))?;
        }
        let disabled = self.disabled(cx);
        if stale.is_empty() && disabled.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        if cx.host.is_live() {
            cx.exec
                .run(&CommandSpec::new("systemctl").arg("daemon-reload"))?;
            cx.exec.run(
                &CommandSpec::new("systemctl")
                    .args(["enable", "--now"])
                    .args(schedule::timers(&self.units)),
            )?;
        }
        Ok(Outcome::Changed(format!(
            "{} unit(s) written, timers enabled: {}",
            stale.len(),
            schedule::timers(&self.units).join(", ")
        )))
    }
}

/// Restore `which` from the profile's destination when the server holds no data.
pub struct RestoreStep {
    pub profile: crate::profile::Profile,
    pub which: String,
}

impl Step for RestoreStep {
    fn id(&self) -> String {
        "backup.restore".into()
    }
    fn describe(&self) -> String {
        let dest = self
            .profile
            .backup
            .as_ref()
            .map_or("?", |b| b.destination.as_str());
        format!(
            "restore {} from {dest} if the database holds no data",
            self.which
        )
    }
    fn observe(&self, cx: &mut ApplyCx<'_>) -> Result<Observation> {
        if !cx.host.is_live() {
            return Ok(Observation::Done("not the live host".into()));
        }
        let fp = restore::from_profile(cx.host, cx.exec, &self.profile)?;
        let rt = crate::net::runtime()?;
        let env = env(cx, &rt, &fp.store);
        Ok(
            match restore::on_apply_look(&env, &fp.inst, &self.which)?.0 {
                OnApply::HasData(what) => Observation::Done(format!(
                    "the database holds data ({what}); nothing restored over it"
                )),
                OnApply::NoBackup(why) => Observation::Done(format!("nothing to restore ({why})")),
                OnApply::Restore(id) => Observation::Todo(format!("restore {id}")),
            },
        )
    }
    fn apply(&self, cx: &mut ApplyCx<'_>) -> Result<Outcome> {
        let fp = restore::from_profile(cx.host, cx.exec, &self.profile)?;
        let rt = crate::net::runtime()?;
        let env = env(cx, &rt, &fp.store);
        let (look, entry) = restore::on_apply_look(&env, &fp.inst, &self.which)?;
        let (OnApply::Restore(id), Some(e)) = (look, entry) else {
            return Ok(Outcome::Unchanged);
        };
        let m = e.manifest.as_ref().expect("selected backups are complete");
        let mut say = |l: String| tracing::info!("{l}");
        restore::to_host(
            &env,
            &fp.inst,
            m,
            &restore::Keys {
                identities: &fp.ids,
            },
            false,
            &mut say,
        )?;
        let proof = crate::backup::verify::compare_with_record(&env, &fp.inst, e.verify.as_ref())?;
        Ok(Outcome::Changed(format!(
            "restored {id} from {}; {proof}",
            fp.store.name
        )))
    }
}

fn env<'a>(
    cx: &'a ApplyCx<'_>,
    rt: &'a tokio::runtime::Runtime,
    store: &'a crate::backup::dest::Store,
) -> crate::backup::Env<'a> {
    crate::backup::Env {
        host: cx.host,
        exec: cx.exec,
        rt,
        store,
        now: &crate::backup::open::now,
        hostname: crate::backup::take::hostname(cx.host),
    }
}
