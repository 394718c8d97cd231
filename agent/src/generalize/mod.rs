//! Image generalization: a list of idempotent deprovision operations ([`Op`]), each observed
//! (what it would remove or change) and applied (changed / unchanged per target); a leftover
//! scanner (`--check`) over a live root or a mounted image; and the first-boot identity refresh.
//!
//! Sources for every operation: `GENERALIZE-DATADIR-TUNING.md` part A (waagent -deprovision,
//! cloud-init clean, virt-sysprep, database identity, the secrets list, the A8 checklist).
//! Order follows its §D: database first (clean shutdown, then scrub), OS identity, provisioning
//! data, storage identity, then the first-boot unit and the stamp that arms it.
//!
//! Rules: every target is an absolute in-host path mapped through [`Host`]; deletions treat
//! `NotFound` as unchanged; edits are pure transforms ([`edits::Edit`]) written atomically with the
//! file's mode and owner kept; programs run only through [`Exec`] and only on the live system.

pub mod db;
pub mod edits;
pub mod firstboot;
pub mod ops;
pub mod scan;
pub mod scrub;

pub use edits::Edit;
pub use ops::{build_ops, Options};

use crate::host::{atomic_write, Exec, Host};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The stamp that arms the first-boot units; removed by the last first-boot phase.
pub const STAMP: &str = "/var/lib/dbhost/generalized";
/// Marker: mdadm.conf changed and the initramfs (which carries a copy) is not rebuilt yet.
pub const INITRAMFS_STALE: &str = "/var/lib/dbhost/initramfs-stale";

/// The issue-7 categories; `Secrets` is used by the scanner only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    Database,
    OsIdentity,
    Provisioning,
    Storage,
    FirstBoot,
    Secrets,
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Category::Database => "database",
            Category::OsIdentity => "os-identity",
            Category::Provisioning => "provisioning",
            Category::Storage => "storage",
            Category::FirstBoot => "first-boot",
            Category::Secrets => "secrets",
        })
    }
}

/// Something an operation acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Remove a file, symlink or directory tree.
    Remove(PathBuf),
    /// Keep the file (inode, owner, mode), make it empty (live logs stay writable).
    Truncate(PathBuf),
    /// Rewrite a file through a pure transform; absent file → unchanged.
    Edit { path: PathBuf, edit: Edit },
    /// Ensure a file has exactly this content and mode.
    Write {
        path: PathBuf,
        content: Vec<u8>,
        mode: u32,
    },
    /// Ensure a file is a copy of `from` (a path on the running system, not under the root).
    Install {
        from: PathBuf,
        path: PathBuf,
        mode: u32,
    },
    /// Ensure `path` is a symlink pointing to `to`.
    Symlink { path: PathBuf, to: PathBuf },
    /// Run programs (live system only).
    Action(Action),
    /// Verify only: a problem refuses apply before anything changes.
    Verify(Verify),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// MySQL/MariaDB: reset replication and binary logs, `innodb_fast_shutdown=0`, stop, verify.
    /// Replica state files and relay logs in `replica_dirs` are zeroed between `STOP SLAVE` and
    /// `RESET SLAVE ALL`: the server deletes them itself, which would leave master.info's
    /// replication password in free blocks of the captured disk.
    StopMysql { replica_dirs: Vec<PathBuf> },
    /// PostgreSQL: stop the units (fast), verify each cluster's control data says "shut down".
    StopPostgres { datadirs: Vec<PathBuf> },
    /// `journalctl --relinquish-var`: journald writes to /run until the next boot, so the
    /// journal files under /var/log/journal can be removed and stay removed.
    RelinquishJournal,
    /// `systemctl stop UNIT` when active (e.g. systemd-random-seed.service, which would write a
    /// new seed at shutdown, after generalize removed it).
    StopUnit(&'static str),
    /// `update-initramfs -u` while the stale marker exists (mdadm.conf changed); then drop it.
    RebuildInitramfs { will_mark: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// fstab: dbhost's mount by filesystem UUID with `nofail`; no md device by kernel name.
    Fstab(PathBuf),
}

/// One generalize operation.
#[derive(Debug, Clone)]
pub struct Op {
    pub category: Category,
    pub id: &'static str,
    pub description: String,
    pub targets: Vec<Target>,
    /// Process names that must not be running before the targets are touched (datadir files).
    pub requires_stopped: &'static [&'static str],
    /// Pending items of this op count as leftovers for `--check`.
    pub in_check: bool,
}

impl Op {
    pub fn new(category: Category, id: &'static str, description: impl Into<String>) -> Self {
        Op {
            category,
            id,
            description: description.into(),
            targets: Vec::new(),
            requires_stopped: &[],
            in_check: true,
        }
    }
}

/// What a target would change (observe) or changed (apply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// In-host path, or the action's name.
    pub target: String,
    pub change: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Changed,
    Unchanged,
    Skipped,
}

/// An op with its observed or applied items.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    pub category: Category,
    pub id: &'static str,
    pub description: String,
    pub items: Vec<Item>,
}

/// Runs ops against a host. `live` allows actions (programs); it defaults to
/// `host.is_live()`, tests set it with a fake [`Exec`].
pub struct Runner<'a> {
    pub host: &'a Host,
    pub exec: &'a dyn Exec,
    pub live: bool,
}

impl<'a> Runner<'a> {
    pub fn new(host: &'a Host, exec: &'a dyn Exec) -> Self {
        Runner {
            host,
            exec,
            live: host.is_live(),
        }
    }

    /// What every op would change, without changing anything.
    pub fn observe(&self, ops: &[Op]) -> Result<Vec<OpReport>> {
        ops.iter()
            .map(|op| {
                let mut items = Vec::new();
                for t in &op.targets {
                    if let Some(change) = self.observe_target(t)? {
                        items.push(Item {
                            target: self.target_name(t),
                            change,
                            outcome: None,
                        });
                    }
                }
                Ok(report(op, items))
            })
            .collect()
    }

    /// Problems found by the verify targets (refuse apply when non-empty).
    pub fn problems(&self, ops: &[Op]) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for op in ops {
            for t in &op.targets {
                if let Target::Verify(_) = t {
                    if let Some(p) = self.observe_target(t)? {
                        out.push((self.target_name(t), p));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Apply every op in order; stops at the first error (re-running converges). Verify
    /// problems refuse before anything changes.
    pub fn apply(&self, ops: &[Op], mut progress: impl FnMut(&OpReport)) -> Result<Vec<OpReport>> {
        let problems = self.problems(ops)?;
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|(t, p)| format!("{t}: {p}")).collect();
            return Err(crate::exit::Failure::Refused(format!(
                "refusing to generalize; fix first: {}",
                list.join("; ")
            ))
            .into());
        }
        let mut reports = Vec::new();
        for op in ops {
            if !op.requires_stopped.is_empty() {
                let left = db::running(self.host, op.requires_stopped);
                if let Some((pid, name)) = left.first() {
                    bail!(
                        "{}: {name} (pid {pid}) is running; stop the database before removing its files",
                        op.id
                    );
                }
            }
            let mut items = Vec::new();
            for t in &op.targets {
                if let Target::Verify(_) = t {
                    continue;
                }
                let name = self.target_name(t);
                let (change, outcome) = self
                    .apply_target(t)
                    .with_context(|| format!("{}: {}", op.id, name))?;
                items.push(Item {
                    target: name,
                    change,
                    outcome: Some(outcome),
                });
            }
            let r = report(op, items);
            progress(&r);
            reports.push(r);
        }
        Ok(reports)
    }

    fn target_name(&self, t: &Target) -> String {
        match t {
            Target::Remove(p)
            | Target::Truncate(p)
            | Target::Edit { path: p, .. }
            | Target::Write { path: p, .. }
            | Target::Install { path: p, .. }
            | Target::Symlink { path: p, .. } => p.display().to_string(),
            Target::Action(a) => match a {
                Action::StopMysql { .. } => "mysqld".into(),
                Action::StopPostgres { .. } => "postgres".into(),
                Action::RelinquishJournal => "journald".into(),
                Action::StopUnit(u) => (*u).into(),
                Action::RebuildInitramfs { .. } => "initramfs".into(),
            },
            Target::Verify(Verify::Fstab(p)) => p.display().to_string(),
        }
    }

    /// `Some(description)` when the target is not in its final state.
    pub fn observe_target(&self, t: &Target) -> Result<Option<String>> {
        let h = self.host;
        Ok(match t {
            Target::Remove(p) => match fs::symlink_metadata(h.path(p)) {
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e).with_context(|| format!("inspecting {}", p.display())),
                Ok(m) if m.is_dir() => Some(format!(
                    "remove directory ({} entries)",
                    count_entries(&h.path(p))
                )),
                Ok(m) if m.file_type().is_symlink() => Some("remove symlink".into()),
                Ok(m) => Some(format!("remove file ({} bytes)", m.len())),
            },
            Target::Truncate(p) => match fs::symlink_metadata(h.path(p)) {
                Ok(m) if m.is_file() && m.len() > 0 => {
                    Some(format!("truncate ({} bytes)", m.len()))
                }
                _ => None,
            },
            Target::Edit { path, .. } if is_symlink(&h.path(path)) => None,
            Target::Edit { path, edit } => match read_text(&h.path(path))? {
                None => None,
                Some(old) => {
                    let new = edit
                        .apply(&old)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    (new != old).then(|| edit.describe())
                }
            },
            Target::Write {
                path,
                content,
                mode,
            } => {
                let hp = h.path(path);
                match fs::read(&hp) {
                    Ok(old) if old == *content && mode_of(&hp) == Some(*mode) => None,
                    Ok(_) => Some(format!("rewrite ({} bytes, mode {mode:o})", content.len())),
                    Err(_) => Some(format!("create ({} bytes, mode {mode:o})", content.len())),
                }
            }
            Target::Install { from, path, mode } => {
                let new = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
                let hp = h.path(path);
                match fs::read(&hp) {
                    Ok(old) if old == new && mode_of(&hp) == Some(*mode) => None,
                    _ => Some(format!("install a copy of {}", from.display())),
                }
            }
            Target::Symlink { path, to } => match fs::read_link(h.path(path)) {
                Ok(cur) if cur == *to => None,
                _ => Some(format!("link to {}", to.display())),
            },
            Target::Action(a) => self.observe_action(a)?,
            Target::Verify(Verify::Fstab(p)) => match read_text(&h.path(p))? {
                None => None,
                Some(text) => {
                    let probs = edits::fstab_problems(&text);
                    (!probs.is_empty()).then(|| {
                        probs
                            .iter()
                            .map(|x| format!("line {}: {} (`{}`)", x.line, x.problem, x.entry))
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                }
            },
        })
    }

    fn observe_action(&self, a: &Action) -> Result<Option<String>> {
        let h = self.host;
        Ok(match a {
            Action::StopMysql { .. } => {
                let r = db::running(h, db::MYSQLD_NAMES);
                r.first().map(|(pid, n)| {
                    format!(
                        "{n} running (pid {pid}): reset replica state and binary logs, \
                         SET GLOBAL innodb_fast_shutdown=0, stop the unit, verify it exited"
                    )
                })
            }
            Action::StopPostgres { datadirs } => {
                let r = db::running(h, db::POSTGRES_NAMES);
                if let Some((pid, _)) = r.first() {
                    Some(format!(
                        "postgres running (pid {pid}): stop the postgresql units (fast), \
                         verify pg_controldata says \"shut down\""
                    ))
                } else {
                    let mut bad = Vec::new();
                    for d in datadirs {
                        if let Some(s) = db::pg_cluster_state(h, self.exec, d) {
                            if s != "shut down" {
                                bad.push(format!("{} is \"{s}\"", d.display()));
                            }
                        }
                    }
                    (!bad.is_empty())
                        .then(|| format!("cluster not cleanly shut down: {}", bad.join(", ")))
                }
            }
            Action::RelinquishJournal => {
                let j = h.path("/var/log/journal");
                (self.live && count_entries(&j) > 0).then(|| {
                    "journalctl --relinquish-var (journald logs to /run until reboot)".into()
                })
            }
            Action::StopUnit(unit) => {
                if !self.live {
                    None
                } else {
                    let out = self.exec.output(
                        &crate::host::CommandSpec::new("systemctl").args(["is-active", unit]),
                    )?;
                    (out.stdout.trim() == "active").then(|| format!("systemctl stop {unit}"))
                }
            }
            Action::RebuildInitramfs { will_mark } => (*will_mark
                || h.path(INITRAMFS_STALE).exists())
            .then(|| "update-initramfs -u (the initramfs carries mdadm.conf)".into()),
        })
    }

    /// Bring one target to its final state: (what was done, changed/unchanged/skipped).
    pub fn apply_target(&self, t: &Target) -> Result<(String, Outcome)> {
        let h = self.host;
        let unchanged = |s: &str| Ok((s.to_string(), Outcome::Unchanged));
        match t {
            Target::Remove(p) => {
                let hp = h.path(p);
                let m = match fs::symlink_metadata(&hp) {
                    Err(e) if e.kind() == ErrorKind::NotFound => return unchanged("absent"),
                    Err(e) => return Err(e).with_context(|| format!("inspecting {}", p.display())),
                    Ok(m) => m,
                };
                // Overwrite first: a removed key or history must not survive in free blocks.
                let r = if m.is_dir() {
                    scrub::zero_tree(&hp)?;
                    fs::remove_dir_all(&hp)
                } else {
                    scrub::zero_file(&hp)?;
                    fs::remove_file(&hp)
                };
                match r {
                    Err(e) if e.kind() == ErrorKind::NotFound => unchanged("absent"),
                    Err(e) => Err(e).with_context(|| format!("removing {}", p.display())),
                    Ok(()) => Ok(("removed".into(), Outcome::Changed)),
                }
            }
            Target::Truncate(p) => {
                let hp = h.path(p);
                match fs::symlink_metadata(&hp) {
                    Ok(m) if m.is_file() && m.len() > 0 => {
                        scrub::zero_file(&hp)?;
                        fs::OpenOptions::new()
                            .write(true)
                            .truncate(true)
                            .open(&hp)
                            .with_context(|| format!("truncating {}", p.display()))?;
                        Ok((format!("truncated {} bytes", m.len()), Outcome::Changed))
                    }
                    _ => unchanged("empty or absent"),
                }
            }
            Target::Edit { path, edit } => {
                let hp = h.path(path);
                if is_symlink(&hp) {
                    return Ok(("left alone: a symlink".into(), Outcome::Skipped));
                }
                let Some(old) = read_text(&hp)? else {
                    return unchanged("absent");
                };
                let new = edit
                    .apply(&old)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                if new == old {
                    return unchanged("already done");
                }
                write_keeping_owner(&hp, new.as_bytes())?;
                Ok((edit.describe(), Outcome::Changed))
            }
            Target::Write {
                path,
                content,
                mode,
            } => {
                let hp = h.path(path);
                let changed = atomic_write(&hp, content, *mode)
                    .with_context(|| format!("writing {}", path.display()))?;
                Ok(if changed {
                    ("written".into(), Outcome::Changed)
                } else {
                    ("already in place".into(), Outcome::Unchanged)
                })
            }
            Target::Install { from, path, mode } => {
                let data = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
                let changed = atomic_write(&h.path(path), &data, *mode)
                    .with_context(|| format!("writing {}", path.display()))?;
                Ok(if changed {
                    (
                        format!("installed from {}", from.display()),
                        Outcome::Changed,
                    )
                } else {
                    ("already in place".into(), Outcome::Unchanged)
                })
            }
            Target::Symlink { path, to } => {
                let hp = h.path(path);
                if fs::read_link(&hp).map(|c| c == *to).unwrap_or(false) {
                    return unchanged("already linked");
                }
                let dir = hp.parent().context("symlink without a parent directory")?;
                fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                let tmp = dir.join(format!(".dbhost-link.{}", std::process::id()));
                let _ = fs::remove_file(&tmp);
                std::os::unix::fs::symlink(to, &tmp)
                    .with_context(|| format!("creating symlink {}", tmp.display()))?;
                fs::rename(&tmp, &hp).with_context(|| format!("renaming to {}", path.display()))?;
                Ok((format!("linked to {}", to.display()), Outcome::Changed))
            }
            Target::Action(a) => self.apply_action(a),
            Target::Verify(_) => unchanged("verified"),
        }
    }

    fn apply_action(&self, a: &Action) -> Result<(String, Outcome)> {
        if self.observe_action(a)?.is_none() {
            return Ok(("nothing to do".into(), Outcome::Unchanged));
        }
        if !self.live {
            return Ok(("skipped: needs the live system".into(), Outcome::Skipped));
        }
        let h = self.host;
        let done = match a {
            Action::StopMysql { replica_dirs } => db::stop_mysql(h, self.exec, replica_dirs)?,
            Action::StopPostgres { datadirs } => db::stop_postgres(h, self.exec, datadirs)?,
            Action::RelinquishJournal => {
                self.exec
                    .run(&crate::host::CommandSpec::new("journalctl").arg("--relinquish-var"))?;
                vec!["journalctl --relinquish-var".to_string()]
            }
            Action::StopUnit(unit) => {
                self.exec
                    .run(&crate::host::CommandSpec::new("systemctl").args(["stop", unit]))?;
                vec![format!("systemctl stop {unit}")]
            }
            Action::RebuildInitramfs { .. } => {
                let marker = h.path(INITRAMFS_STALE);
                if !marker.exists() {
                    return Ok(("nothing to do".into(), Outcome::Unchanged));
                }
                self.exec
                    .run(&crate::host::CommandSpec::new("update-initramfs").arg("-u"))?;
                fs::remove_file(&marker)
                    .with_context(|| format!("removing {}", marker.display()))?;
                vec!["update-initramfs -u".to_string()]
            }
        };
        if done.is_empty() {
            return Ok(("nothing to do".into(), Outcome::Unchanged));
        }
        Ok((done.join("; "), Outcome::Changed))
    }
}

fn report(op: &Op, items: Vec<Item>) -> OpReport {
    OpReport {
        category: op.category,
        id: op.id,
        description: op.description.clone(),
        items,
    }
}

fn is_symlink(p: &Path) -> bool {
    fs::symlink_metadata(p)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
}

fn count_entries(dir: &Path) -> usize {
    fs::read_dir(dir).map(|rd| rd.count()).unwrap_or(0)
}

fn mode_of(p: &Path) -> Option<u32> {
    fs::metadata(p).ok().map(|m| m.mode() & 0o7777)
}

/// Read a text file; `None` when absent.
pub(crate) fn read_text(p: &Path) -> Result<Option<String>> {
    match fs::read(p) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        Ok(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text; left alone", p.display())),
    }
}

/// Atomic rewrite keeping the file's mode, owner and group.
pub(crate) fn write_keeping_owner(path: &Path, data: &[u8]) -> Result<()> {
    let m = fs::metadata(path).with_context(|| format!("inspecting {}", path.display()))?;
    // Hold the old inode open across the atomic replace, then zero it: its blocks (the secret
    // being edited out) are freed only after they hold zeros, and the new content is already
    // durable in place before anything is overwritten.
    let mut old = (m.is_file() && m.nlink() == 1)
        .then(|| fs::OpenOptions::new().write(true).open(path).ok())
        .flatten();
    crate::host::atomic_replace_keeping_owner(path, data)
        .with_context(|| format!("writing {}", path.display()))?;
    let replaced = fs::metadata(path)
        .map(|n| n.ino() != m.ino())
        .unwrap_or(false);
    if let (true, Some(f)) = (replaced, old.as_mut()) {
        scrub::zero_open(f, path)?;
    }
    Ok(())
}

/// Count (changed, unchanged, skipped) items in apply reports.
pub fn tally(reports: &[OpReport]) -> (usize, usize, usize) {
    let mut t = (0, 0, 0);
    for r in reports {
        for i in &r.items {
            match i.outcome {
                Some(Outcome::Changed) => t.0 += 1,
                Some(Outcome::Unchanged) => t.1 += 1,
                Some(Outcome::Skipped) => t.2 += 1,
                None => {}
            }
        }
    }
    t
}
