//! From a plan to the list of steps `dbhost apply` runs, in order:
//! install the binary → array (create or adopt) → boot assembly unit → filesystem (mkfs only on a
//! blank device, lock down the bare mount point, fstab, mount) → tuning → datadir relocation
//! (whose restart applies the tuned database settings).
//! Every step observes the real state first, so a second run finds everything done.

use super::step::{ApplyCx, Observation, Outcome, Step};
use crate::fs::mkfs::Stripe;
use crate::fs::steps::{FsTarget, FstabStep, LockdownStep, MkfsStep, MountStep};
use crate::host::{atomic_write, CommandSpec};
use crate::plan::{DisksDecision, FsGeometry, Plan};
use crate::profile::Profile;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Duration;

/// Options that come from the command line, not the profile.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `--wipe`: the user explicitly allowed clearing selected disks that are not blank.
    pub wipe: bool,
    /// `--finalize`: remove the kept old datadir after a verified move.
    pub finalize: bool,
    /// Where the running binary is (installed to /usr/local/sbin/dbhost for the boot units).
    pub self_exe: Option<PathBuf>,
    /// The profile file (absolute): the scheduled backup units read it.
    pub profile_path: Option<PathBuf>,
}

pub const INSTALLED_BINARY: &str = "/usr/local/sbin/dbhost";

/// The steps for `plan` under `profile`.
pub fn build(profile: &Profile, plan: &Plan, opts: &BuildOptions) -> Result<Vec<Box<dyn Step>>> {
    let mut steps: Vec<Box<dyn Step>> = Vec::new();
    if let Some(db) = &plan.database {
        let device_bytes = match &plan.array {
            Some(a) => a.usable_bytes,
            None => plan.members.first().map(|m| m.size_bytes),
        };
        steps.push(Box::new(super::db::RoomStep {
            engine: super::db::engine_of(&db.engine),
            target: PathBuf::from(&db.target),
            mount_point: plan.mount.mount_point.clone(),
            device_bytes,
        }));
    }
    if let Some(exe) = &opts.self_exe {
        steps.push(Box::new(InstallSelf { from: exe.clone() }));
    }
    let owner;
    if let Some(a) = &plan.array {
        owner = a.name.clone();
        steps.push(Box::new(ArrayStep {
            name: a.name.clone(),
            chunk_bytes: a.chunk_bytes,
            members: plan.members.iter().map(|m| m.path.clone()).collect(),
            create: matches!(plan.decision, DisksDecision::Create),
            wipe: opts.wipe,
            adopt_uuid: match &plan.decision {
                DisksDecision::AdoptArray { array_uuid, .. } => Some(array_uuid.clone()),
                _ => None,
            },
        }));
        steps.push(Box::new(BootUnitStep {
            name: a.name.clone(),
        }));
    } else {
        owner = plan.filesystem.label.clone();
    }
    let stripe = match &plan.filesystem.geometry {
        FsGeometry::Xfs {
            su_bytes: Some(su),
            sw: Some(sw),
            ..
        } => Some(Stripe {
            chunk_bytes: *su,
            members: *sw,
        }),
        FsGeometry::Ext4 {
            block_bytes,
            stride: Some(st),
            stripe_width: Some(w),
        } => Some(Stripe {
            chunk_bytes: st * block_bytes,
            members: (w / st.max(&1)) as u32,
        }),
        _ => None,
    };
    let fs_type: crate::fs::FsType = plan.filesystem.fs_type.into();
    let target = FsTarget {
        device: plan.filesystem.device.clone(),
        fs: fs_type,
        label: plan.filesystem.label.clone(),
        stripe,
        mount_point: plan.mount.mount_point.clone(),
        extra_options: profile.filesystem.mount_options.clone(),
        device_timeout: format!("{}s", profile.filesystem.device_timeout.0.as_secs()),
        owner,
        // Level none: the disk itself gets the filesystem; an array is cleared by md.array.
        wipe_first: plan.array.is_none() && plan.members.iter().any(|m| m.wipe),
    };
    steps.push(Box::new(MkfsStep(target.clone())));
    steps.push(Box::new(LockdownStep(target.clone())));
    steps.push(Box::new(FstabStep(target.clone())));
    steps.push(Box::new(MountStep(target.clone())));
    // Tuning before the relocation: the database settings it writes take effect at the restart
    // the move makes anyway (instead of at some later restart), a setting the server refuses
    // shows up while dbhost is still watching (the health check), and the copy already runs with
    // the array's queue settings.
    steps.push(Box::new(super::tuning::TuneStep::new(profile, plan)));
    if let Some(db) = &plan.database {
        steps.extend(super::db::steps(
            db,
            &plan.mount.mount_point,
            opts.finalize,
        )?);
    }
    // The database is on its disks and running: restore into it when it is empty, then let the
    // schedule take over (the first scheduled backup never races the restore).
    if let (Some(b), Some(_)) = (&profile.backup, &plan.database) {
        if let Some(which) = &b.restore_on_apply {
            steps.push(Box::new(super::backup::RestoreStep {
                profile: profile.clone(),
                which: which.clone(),
            }));
        }
        if b.schedule.is_some() {
            let p = opts
                .profile_path
                .clone()
                .context("the backup schedule needs the profile's path")?;
            steps.push(Box::new(super::backup::ScheduleStep::new(
                b,
                INSTALLED_BINARY,
                &p,
            )));
        }
    }
    Ok(steps)
}

/// Copy the running binary to /usr/local/sbin/dbhost so the boot units can run it.
pub struct InstallSelf {
    pub from: PathBuf,
}

impl Step for InstallSelf {
    fn id(&self) -> String {
        "self.install".into()
    }
    fn describe(&self) -> String {
        format!("install dbhost at {INSTALLED_BINARY} (used by the boot units)")
    }
    fn observe(&self, cx: &mut ApplyCx<'_>) -> Result<Observation> {
        if !cx.host.is_live() {
            return Ok(Observation::Done("not the live host".into()));
        }
        let me = std::fs::read(&self.from)
            .with_context(|| format!("reading {}", self.from.display()))?;
        match std::fs::read(cx.host.path(INSTALLED_BINARY)) {
            Ok(b) if b == me => Ok(Observation::Done("same binary".into())),
            Ok(_) => Ok(Observation::Todo("update it".into())),
            Err(_) => Ok(Observation::Todo("install it".into())),
        }
    }
    fn apply(&self, cx: &mut ApplyCx<'_>) -> Result<Outcome> {
        let me = std::fs::read(&self.from)
            .with_context(|| format!("reading {}", self.from.display()))?;
        let dst = cx.host.path(INSTALLED_BINARY);
        cx.before_modify(INSTALLED_BINARY)?;
        let changed =
            atomic_write(&dst, &me, 0o755).with_context(|| format!("writing {}", dst.display()))?;
        Ok(if changed {
            Outcome::Changed(INSTALLED_BINARY.into())
        } else {
            Outcome::Unchanged
        })
    }
}

/// The md RAID-0: create over blank members, or adopt (assemble) an existing one.
pub struct ArrayStep {
    pub name: String,
    pub chunk_bytes: u64,
    pub members: Vec<String>,
    pub create: bool,
    pub wipe: bool,
    /// Adopting: the array's UUID (mdadm text form). The array is found by it, not by name: an
    /// array another tool made keeps the name it was given.
    pub adopt_uuid: Option<String>,
}

impl ArrayStep {
    fn running(&self, cx: &ApplyCx<'_>) -> Option<String> {
        if let Some(uuid) = &self.adopt_uuid {
            return crate::md::array::running_arrays(cx.host)
                .into_iter()
                .find(|r| r.active() && r.uuid.map(|u| u.mdadm()).as_ref() == Some(uuid))
                .map(|r| r.devnm);
        }
        let link = format!("/dev/md/{}", self.name);
        let devnm = crate::md::array::resolve_md(cx.host, &link)?;
        let st = crate::host::read_trimmed(&cx.host.sys(&format!("block/{devnm}/md/array_state")))?;
        matches!(
            st.as_str(),
            "clean" | "active" | "active-idle" | "read-auto"
        )
        .then_some(devnm)
    }
}

impl Step for ArrayStep {
    fn id(&self) -> String {
        "md.array".into()
    }
    fn describe(&self) -> String {
        if self.create {
            format!(
                "create RAID-0 /dev/md/{} over {} member(s), chunk {} KiB, v1.2 superblocks written by dbhost",
                self.name,
                self.members.len(),
                self.chunk_bytes / 1024
            )
        } else {
            format!(
                "adopt the existing array /dev/md/{} (assemble; members are never written)",
                self.name
            )
        }
    }
    fn observe(&self, cx: &mut ApplyCx<'_>) -> Result<Observation> {
        if let Some(devnm) = self.running(cx) {
            cx.facts.insert("md.devnm".into(), devnm.clone());
            return Ok(Observation::Done(format!(
                "/dev/md/{} runs as {devnm}",
                self.name
            )));
        }
        Ok(Observation::Todo(if self.create {
            "create".into()
        } else {
            "assemble".into()
        }))
    }
    fn apply(&self, cx: &mut ApplyCx<'_>) -> Result<Outcome> {
        use crate::md::array as md;
        if self.create {
            let req = crate::md::model::CreateRequest {
                name: md::array_name(&self.name)?,
                chunk_bytes: self.chunk_bytes,
                members: self.members.clone(),
                wipe: self.wipe,
            };
            let out = md::create(cx.host, cx.exec, &req)?;
            let r = out.value();
            cx.facts.insert("md.devnm".into(), r.devnm.clone());
            Ok(if out.changed() {
                Outcome::Changed(format!(
                    "{} as {} (UUID {})",
                    r.link.display(),
                    r.devnm,
                    r.uuid
                ))
            } else {
                Outcome::Unchanged
            })
        } else {
            let rep = md::assemble_all(
                cx.host,
                cx.exec,
                &md::AssembleOptions {
                    wait: Duration::from_secs(30),
                    expect: vec![self.name.clone()],
                },
            )?;
            let e = rep
                .arrays
                .iter()
                .find(|a| match &self.adopt_uuid {
                    Some(u) => a.uuid.map(|x| x.mdadm()).as_ref() == Some(u),
                    None => a.name == self.name,
                })
                .cloned();
            match e {
                Some(e) if e.result == "assembled" => Ok(Outcome::Changed(format!(
                    "assembled /dev/md/{} as {}",
                    self.name,
                    e.devnm.unwrap_or_default()
                ))),
                Some(e) if e.result == "already_running" => Ok(Outcome::Unchanged),
                Some(e) => Err(crate::exit::Failure::Refused(format!(
                    "array {}: {} (present roles {:?}, missing roles {:?}, devices {:?}){}",
                    self.name,
                    e.result,
                    e.present_roles,
                    e.missing_roles,
                    e.devices,
                    e.detail.map(|d| format!(": {d}")).unwrap_or_default()
                ))
                .into()),
                None => bail!("array {} was not found by the assembly scan", self.name),
            }
        }
    }
}

/// dbhost's boot-time assembly unit (works with mdadm absent).
pub struct BootUnitStep {
    pub name: String,
}

impl BootUnitStep {
    fn opts(&self) -> Result<crate::md::boot::BootUnitOptions> {
        Ok(crate::md::boot::BootUnitOptions {
            binary: PathBuf::from(INSTALLED_BINARY),
            expect: vec![crate::md::array::array_name(&self.name)?],
            ..Default::default()
        })
    }
}

impl Step for BootUnitStep {
    fn id(&self) -> String {
        "md.boot-unit".into()
    }
    fn describe(&self) -> String {
        format!(
            "install and enable {} (assembles /dev/md/{} at boot without mdadm)",
            crate::md::boot::UNIT_NAME,
            self.name
        )
    }
    fn observe(&self, cx: &mut ApplyCx<'_>) -> Result<Observation> {
        let want = crate::md::boot::render_unit(&self.opts()?);
        let p = cx
            .host
            .etc(&format!("systemd/system/{}", crate::md::boot::UNIT_NAME));
        let enabled = cx
            .host
            .etc(&format!(
                "systemd/system/local-fs.target.wants/{}",
                crate::md::boot::UNIT_NAME
            ))
            .exists();
        let rule = cx.host.etc(crate::md::boot::UDEV_RULE_ETC);
        let rule_ok =
            std::fs::read_to_string(&rule).ok().as_deref() == Some(crate::md::boot::UDEV_RULE);
        match std::fs::read_to_string(&p) {
            Ok(t) if t == want && !rule_ok => Ok(Observation::Todo(format!(
                "write {}",
                cx.host.unroot(&rule).display()
            ))),
            Ok(t) if t == want && enabled => Ok(Observation::Done("installed and enabled".into())),
            Ok(t) if t == want => Ok(Observation::Todo("enable it".into())),
            Ok(_) => Ok(Observation::Todo("update it".into())),
            Err(_) => Ok(Observation::Todo("install it".into())),
        }
    }
    fn apply(&self, cx: &mut ApplyCx<'_>) -> Result<Outcome> {
        for rel in [
            format!("systemd/system/{}", crate::md::boot::UNIT_NAME),
            crate::md::boot::UDEV_RULE_ETC.to_string(),
        ] {
            let abs = cx.host.unroot(&cx.host.etc(&rel));
            cx.before_modify(&abs.display().to_string())?;
        }
        let out = crate::md::boot::install_boot_unit(cx.host, cx.exec, &self.opts()?)?;
        Ok(if out.changed() {
            Outcome::Changed(out.value().display().to_string())
        } else {
            Outcome::Unchanged
        })
    }
}

/// Run `systemctl daemon-reload` (used after unit/fstab changes).
pub fn daemon_reload(cx: &ApplyCx<'_>) {
    if cx.host.is_live() {
        let _ = cx
            .exec
            .output(&CommandSpec::new("systemctl").arg("daemon-reload"));
    }
}
