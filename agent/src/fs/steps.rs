//! Apply steps for the filesystem: mkfs (only on a blank device), verify, fstab, lock down the
//! bare mount point, mount. Each observes the real state first; state lives on the device (the
//! filesystem UUID and label) and in the tagged fstab line, never in marker files.

use super::fstab::{self, Entry};
use super::mkfs::{self, MkfsSpec, Stripe};
use super::{mounts, probe, FsType};
use crate::apply::{ApplyCx, Observation, Outcome, Step};
use crate::host::{atomic_write, random_uuid, CommandSpec, Host};
use anyhow::{bail, Context, Result};
use std::io::Read;

/// What the filesystem steps need to know.
#[derive(Debug, Clone)]
pub struct FsTarget {
    /// Absolute in-host path of the device (e.g. "/dev/md/dbdata", "/dev/disk/by-id/...").
    pub device: String,
    pub fs: FsType,
    pub label: String,
    pub stripe: Option<Stripe>,
    pub mount_point: String,
    pub extra_options: Vec<String>,
    pub device_timeout: String,
    /// Owner tag for fstab.
    pub owner: String,
    /// `--wipe` allowed clearing this device (a disk of level none that held data): whatever is
    /// on it is cleared before mkfs instead of refused.
    pub wipe_first: bool,
}

/// What is at the start of the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceContent {
    Blank,
    Fs(FsType, String),
    /// Non-zero bytes we do not recognise as XFS/ext4.
    Unknown,
}

const HEAD: usize = 64 * 1024;

pub fn read_content(host: &Host, device: &str) -> Result<DeviceContent> {
    let p = host.path(device);
    let mut f = std::fs::File::open(&p).with_context(|| format!("opening {}", p.display()))?;
    let mut buf = vec![0u8; HEAD];
    let mut n = 0;
    while n < buf.len() {
        let k = f
            .read(&mut buf[n..])
            .with_context(|| format!("reading {}", p.display()))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    buf.truncate(n);
    if let Some((t, u)) = probe::identify(&buf) {
        return Ok(DeviceContent::Fs(t, u));
    }
    if buf.iter().all(|b| *b == 0) {
        Ok(DeviceContent::Blank)
    } else {
        Ok(DeviceContent::Unknown)
    }
}

fn fs_uuid(cx: &ApplyCx<'_>, t: &FsTarget) -> Result<String> {
    match read_content(cx.host, &t.device)? {
        DeviceContent::Fs(ty, u) if ty == t.fs => Ok(u),
        other => bail!(
            "{}: expected a {} filesystem, found {:?}",
            t.device,
            t.fs,
            other
        ),
    }
}

pub struct MkfsStep(pub FsTarget);

impl Step for MkfsStep {
    fn id(&self) -> String {
        "fs.mkfs".into()
    }
    fn describe(&self) -> String {
        let t = &self.0;
        match t.stripe {
            Some(s) => format!(
                "make {} (label {}) on {} aligned to {} KiB chunk × {} members, no discard",
                t.fs,
                t.label,
                t.device,
                s.chunk_bytes / 1024,
                s.members
            ),
            None => format!(
                "make {} (label {}) on {}, no discard",
                t.fs, t.label, t.device
            ),
        }
    }
    fn observe(&self, cx: &mut ApplyCx<'_>) -> Result<Observation> {
        let t = &self.0;
        // Every step is observed before the first one runs, so on a first apply the md device
        // does not exist yet: the array step before this one creates it.
        if !cx.host.path(&t.device).exists() {
            return Ok(Observation::Todo(format!(
                "{} does not exist yet (made by an earlier step)",
                t.device
            )));
        }
        let content = read_content(cx.host, &t.device)?;
        if t.wipe_first && content != DeviceContent::Blank {
            return Ok(Observation::Todo(format!(
                "{} holds data; --wipe: clear it, then make the filesystem",
                t.device
            )));
        }
        Ok(match content {
            DeviceContent::Blank => Observation::Todo(format!("{} is blank", t.device)),
            DeviceContent::Fs(ty, u) if ty == t.fs => {
                Observation::Done(format!("{} already holds {ty} UUID {u}; keeping it (never mkfs over a filesystem)", t.device))
            }
            DeviceContent::Fs(ty, u) => Observation::Conflict(format!(
                "{} holds a {ty} filesystem (UUID {u}) but the profile wants {}; dbhost will not reformat it. Change the profile's filesystem type or wipe the device yourself",
                t.device, t.fs
            )),
            DeviceContent::Unknown => Observation::Conflict(format!(
                "{} starts with data dbhost does not recognise; refusing to make a filesystem over it",
                t.device
            )),
        })
    }
    fn apply(&self, cx: &mut ApplyCx<'_>) -> Result<Outcome> {
        let t = &self.0;
        if t.wipe_first && read_content(cx.host, &t.device)? != DeviceContent::Blank {
            crate::md::array::clear_metadata(cx.host, &t.device)?;
        }
        let uuid = random_uuid().context("generating a filesystem UUID")?;
        let spec = MkfsSpec {
            fs: t.fs,
            device: t.device.clone(),
            label: t.label.clone(),
            uuid: uuid.clone(),
            stripe: t.stripe,
        };
        cx.exec.run(&mkfs::command(&spec))?;
        // Verify the new filesystem is seen before anything refers to it.
        let _ = cx
            .exec
            .output(&CommandSpec::new("udevadm").args(["settle", "--timeout=30"]));
        let seen = fs_uuid(cx, t)?;
        if seen != uuid {
            bail!(
                "after mkfs, {} reports UUID {seen}, expected {uuid}; not writing fstab",
                t.device
            );
        }
        cx.facts.insert("fs.uuid".into(), uuid.clone());
        Ok(Outcome::Changed(format!(
            "{} {} UUID {uuid}",
            t.fs, t.device
        )))
    }
}

pub struct FstabStep(pub FsTarget);

impl FstabStep {
    fn entry(&self, uuid: String) -> Entry {
        let t = &self.0;
        Entry {
            fs_uuid: uuid,
            mount_point: t.mount_point.clone(),
            fs: t.fs,
            extra_options: t.extra_options.clone(),
            device_timeout: t.device_timeout.clone(),
            owner: t.owner.clone(),
        }
    }
    fn render(
        &self,
        cx: &ApplyCx<'_>,
    ) -> Result<std::result::Result<(String, fstab::Change), fstab::Conflict>> {
        let uuid = match fs_uuid(cx, &self.0) {
            Ok(u) => u,
            // during a dry run the filesystem may not exist yet
            Err(_) => "<new-filesystem-uuid>".to_string(),
        };
        let p = cx.host.etc("fstab");
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
        };
        Ok(fstab::ensure(&text, &self.entry(uuid)))
    }
}

impl Step for FstabStep {
    fn id(&self) -> String {
        "fs.fstab".into()
    }
    fn describe(&self) -> String {
        format!(
            "fstab: mount by filesystem UUID at {} with nofail,x-systemd.device-timeout={}",
            self.0.mount_point, self.0.device_timeout
        )
    }
    fn observe(&self, cx: &mut ApplyCx<'_>) -> Result<Observation> {
        Ok(match self.render(cx)? {
            Ok((_, fstab::Change::Unchanged)) => Observation::Done("entry present".into()),
            Ok((_, fstab::Change::Added)) => Observation::Todo("add entry".into()),
            Ok((_, fstab::Change::Replaced(old))) => Observation::Todo(format!("replace `{old}`")),
            Err(c) => Observation::Conflict(c.to_string()),
        })
    }
    fn apply(&self, cx: &mut ApplyCx<'_>) -> Result<Outcome> {
        let (text, change) = match self.render(cx)? {
            Ok(x) => x,
            Err(c) => bail!(c),
        };
        if change == fstab::Change::Unchanged {
            return Ok(Outcome::Unchanged);
        }
        cx.before_modify("/etc/fstab")?;
        let p = cx.host.etc("fstab");
        atomic_write(&p, text.as_bytes(), 0o644)
            .with_context(|| format!("writing {}", p.display()))?;
        let _ = cx
            .exec
            .output(&CommandSpec::new("systemctl").arg("daemon-reload"));
        Ok(Outcome::Changed(format!("{change:?}")))
    }
}

fn mounted_source(host: &Host, mount_point: &str) -> Result<Option<String>> {
    let p = host.proc_("self/mounts");
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    Ok(mounts::find(&mounts::parse(&text), mount_point).map(|m| m.source.clone()))
}

fn same_device(host: &Host, a: &str, b: &str) -> bool {
    match (
        std::fs::canonicalize(host.path(a)),
        std::fs::canonicalize(host.path(b)),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// The bare mount-point directory: root-owned, mode 000 and immutable while nothing is mounted,
/// so nothing (a database started too early, a careless script) writes to the OS disk there.
pub struct LockdownStep(pub FsTarget);

impl Step for LockdownStep {
    fn id(&self) -> String {
        "fs.lockdown".into()
    }
    fn describe(&self) -> String {
        format!(
            "lock down the bare mount point {} (mode 000, immutable)",
            self.0.mount_point
        )
    }
    fn observe(&self, cx: &mut ApplyCx<'_>) -> Result<Observation> {
        use std::os::unix::fs::PermissionsExt;
        let t = &self.0;
        if mounted_source(cx.host, &t.mount_point)?.is_some() {
            return Ok(Observation::Done(format!(
                "{} is mounted (the bare directory is underneath)",
                t.mount_point
            )));
        }
        let p = cx.host.path(&t.mount_point);
        match std::fs::symlink_metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Observation::Todo(format!("create {}", t.mount_point)))
            }
            Err(e) => Err(e).with_context(|| format!("inspecting {}", p.display())),
            Ok(md) if !md.is_dir() => Ok(Observation::Conflict(format!(
                "{} exists and is not a directory",
                t.mount_point
            ))),
            Ok(md) => {
                let empty = std::fs::read_dir(&p)
                    .with_context(|| format!("listing {}", p.display()))?
                    .next()
                    .is_none();
                if !empty {
                    return Ok(Observation::Conflict(format!(
                        "{} is not mounted but holds files; move them away (they are on the OS disk) before dbhost mounts the array there",
                        t.mount_point
                    )));
                }
                if md.permissions().mode() & 0o7777 == 0 {
                    Ok(Observation::Done("mode 000".into()))
                } else {
                    Ok(Observation::Todo("set mode 000 and immutable".into()))
                }
            }
        }
    }
    fn apply(&self, cx: &mut ApplyCx<'_>) -> Result<Outcome> {
        use std::os::unix::fs::PermissionsExt;
        let t = &self.0;
        let p = cx.host.path(&t.mount_point);
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000))
            .with_context(|| format!("chmod 000 {}", p.display()))?;
        if cx.host.is_live() {
            // Best effort: not every filesystem supports the immutable flag.
            let _ = cx
                .exec
                .output(&CommandSpec::new("chattr").args(["+i", &t.mount_point]));
        }
        Ok(Outcome::Changed(format!("{} mode 000", t.mount_point)))
    }
}

pub struct MountStep(pub FsTarget);

impl Step for MountStep {
    fn id(&self) -> String {
        "fs.mount".into()
    }
    fn describe(&self) -> String {
        format!("mount {} at {}", self.0.device, self.0.mount_point)
    }
    fn observe(&self, cx: &mut ApplyCx<'_>) -> Result<Observation> {
        let t = &self.0;
        Ok(match mounted_source(cx.host, &t.mount_point)? {
            None => Observation::Todo(format!("mount {}", t.mount_point)),
            Some(src) if same_device(cx.host, &src, &t.device) => {
                Observation::Done(format!("{} mounted from {src}", t.mount_point))
            }
            Some(src) => Observation::Conflict(format!(
                "{} is already mounted from {src}, not from {}; unmount it first",
                t.mount_point, t.device
            )),
        })
    }
    fn apply(&self, cx: &mut ApplyCx<'_>) -> Result<Outcome> {
        let t = &self.0;
        cx.exec
            .run(&CommandSpec::new("mount").arg(&t.mount_point))?;
        match mounted_source(cx.host, &t.mount_point)? {
            Some(src) if same_device(cx.host, &src, &t.device) => {}
            other => bail!(
                "after `mount {}`, the mount table shows {:?} there, not {}",
                t.mount_point,
                other,
                t.device
            ),
        }
        // The root of the new filesystem: root-owned, 0755 (the datadir below gets its own owner).
        Ok(Outcome::Changed(format!(
            "mounted {} at {}",
            t.device, t.mount_point
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{run_steps, Journal, RunOptions, Undo};
    use crate::host::FakeExec;

    fn target() -> FsTarget {
        FsTarget {
            device: "/dev/md/dbdata".into(),
            fs: FsType::Xfs,
            label: "dbdata".into(),
            stripe: Some(Stripe {
                chunk_bytes: 512 * 1024,
                members: 2,
            }),
            mount_point: "/datadrive".into(),
            extra_options: vec![],
            device_timeout: "30s".into(),
            owner: "dbdata".into(),
            wipe_first: false,
        }
    }

    fn host_with(dev: &[u8]) -> (tempfile::TempDir, Host) {
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        std::fs::create_dir_all(h.path("/dev/md")).unwrap();
        std::fs::write(h.path("/dev/md/dbdata"), dev).unwrap();
        std::fs::create_dir_all(h.path("/etc")).unwrap();
        std::fs::write(h.path("/etc/fstab"), "UUID=r / ext4 defaults 0 1\n").unwrap();
        std::fs::create_dir_all(h.path("/proc/self")).unwrap();
        std::fs::write(h.path("/proc/self/mounts"), "/dev/vda / ext4 rw 0 0\n").unwrap();
        (d, h)
    }

    fn xfs_image(uuid: [u8; 16]) -> Vec<u8> {
        let mut b = vec![0u8; 8192];
        b[0..4].copy_from_slice(b"XFSB");
        b[32..48].copy_from_slice(&uuid);
        b
    }

    fn observe_all(h: &Host) -> Vec<Observation> {
        let exec = FakeExec::new();
        let mut j = Journal::scratch();
        let mut u = Undo::disabled();
        let mut p = |_: &str, _: u64, _: u64| {};
        let mut cx = ApplyCx {
            host: h,
            exec: &exec,
            undo: &mut u,
            journal: &mut j,
            facts: Default::default(),
            progress: &mut p,
        };
        let t = target();
        vec![
            MkfsStep(t.clone()).observe(&mut cx).unwrap(),
            FstabStep(t.clone()).observe(&mut cx).unwrap(),
            LockdownStep(t.clone()).observe(&mut cx).unwrap(),
            MountStep(t).observe(&mut cx).unwrap(),
        ]
    }

    #[test]
    fn missing_device_is_todo_not_an_error() {
        // First apply: the array (and so /dev/md/NAME) is made by an earlier step, after
        // every step has been observed.
        let (_d, h) = host_with(&[]);
        std::fs::remove_file(h.path("/dev/md/dbdata")).unwrap();
        let obs = observe_all(&h);
        assert!(
            matches!(&obs[0], Observation::Todo(t) if t.contains("does not exist yet")),
            "{obs:?}"
        );
        assert!(
            obs.iter().all(|o| matches!(o, Observation::Todo(_))),
            "{obs:?}"
        );
    }

    #[test]
    fn blank_device_needs_everything() {
        let (_d, h) = host_with(&vec![0u8; 8192]);
        let obs = observe_all(&h);
        assert!(
            obs.iter().all(|o| matches!(o, Observation::Todo(_))),
            "{obs:?}"
        );
    }

    #[test]
    fn existing_xfs_is_kept_and_fstab_uses_its_uuid() {
        let (_d, h) = host_with(&xfs_image([0xab; 16]));
        let exec = FakeExec::new();
        let mut j = Journal::begin(&h, "apply", None).unwrap();
        let mut u = Undo::open(&h, &j.run_id.clone()).unwrap();
        let mut p = |_: &str, _: u64, _: u64| {};
        let mut cx = ApplyCx {
            host: &h,
            exec: &exec,
            undo: &mut u,
            journal: &mut j,
            facts: Default::default(),
            progress: &mut p,
        };
        let t = target();
        let steps: Vec<Box<dyn Step>> = vec![Box::new(MkfsStep(t.clone())), Box::new(FstabStep(t))];
        let r = run_steps(&steps, &mut cx, RunOptions::default(), &mut |_| {}).unwrap();
        assert_eq!((r.changed, r.unchanged), (1, 1));
        assert!(
            exec.calls().iter().all(|c| !c.starts_with("mkfs")),
            "{:?}",
            exec.calls()
        );
        let fstab = std::fs::read_to_string(h.path("/etc/fstab")).unwrap();
        assert!(
            fstab.contains(
                "UUID=abababab-abab-abab-abab-abababababab /datadrive xfs defaults,noatime,nofail"
            ),
            "{fstab}"
        );
        assert!(fstab.starts_with("UUID=r / ext4 defaults 0 1\n"));
    }

    #[test]
    fn foreign_content_and_wrong_fs_are_conflicts() {
        let (_d, h) = host_with(b"some database pages");
        assert!(matches!(observe_all(&h)[0], Observation::Conflict(_)));
        let mut ext = vec![0u8; 4096];
        ext[1024 + 56] = 0x53;
        ext[1024 + 57] = 0xEF;
        let (_d2, h2) = host_with(&ext);
        assert!(matches!(observe_all(&h2)[0], Observation::Conflict(_)));
    }

    #[test]
    fn wipe_first_turns_foreign_content_into_work_and_clears_it() {
        let (_d, h) = host_with(&[0x5a; 3 << 20]);
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
        let t = FsTarget {
            wipe_first: true,
            ..target()
        };
        let obs = MkfsStep(t.clone()).observe(&mut cx).unwrap();
        assert!(
            matches!(&obs, Observation::Todo(w) if w.contains("--wipe")),
            "{obs:?}"
        );
        crate::md::array::clear_metadata(&h, &t.device).unwrap();
        let after = std::fs::read(h.path(&t.device)).unwrap();
        assert_eq!(after.len(), 3 << 20, "the device keeps its size");
        let mib = 1 << 20;
        assert!(after[..mib].iter().all(|b| *b == 0), "first MiB cleared");
        assert!(after[2 * mib..].iter().all(|b| *b == 0), "last MiB cleared");
        assert!(
            after[mib..2 * mib].iter().any(|b| *b != 0),
            "only metadata regions"
        );
        assert_eq!(read_content(&h, &t.device).unwrap(), DeviceContent::Blank);
    }

    #[test]
    fn non_empty_unmounted_mount_point_is_a_conflict() {
        let (_d, h) = host_with(&vec![0u8; 8192]);
        std::fs::create_dir_all(h.path("/datadrive")).unwrap();
        std::fs::write(h.path("/datadrive/stray.ibd"), "x").unwrap();
        assert!(matches!(observe_all(&h)[2], Observation::Conflict(_)));
    }

    #[test]
    fn mounted_elsewhere_is_a_conflict_and_ours_is_done() {
        let (_d, h) = host_with(&vec![0u8; 8192]);
        std::fs::write(
            h.path("/proc/self/mounts"),
            "/dev/vda / ext4 rw 0 0\n/dev/sdz /datadrive xfs rw 0 0\n",
        )
        .unwrap();
        assert!(matches!(observe_all(&h)[3], Observation::Conflict(_)));
        std::fs::write(
            h.path("/proc/self/mounts"),
            "/dev/md/dbdata /datadrive xfs rw 0 0\n",
        )
        .unwrap();
        assert!(matches!(observe_all(&h)[3], Observation::Done(_)));
    }
}
