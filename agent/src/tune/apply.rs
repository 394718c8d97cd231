//! Observing and applying a [`TuneSet`]: read-compare-write of the persistence files
//! (`host::atomic_write`, unchanged when equal) and of the live values (sysfs, `/proc/sys`),
//! so a re-run changes nothing. Works on any [`Host`] root; only a remount needs the live system.

use super::facts::{selected_choice, TuneFacts};
use super::knobs::{Knob, Target, TuneSet};
use super::render::{owned_paths, render_all, Body};
use crate::host::{atomic_write, CommandSpec, Exec, Host};
use anyhow::{Context, Result};
use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Changed,
    Unchanged,
    /// Could not be applied now (a missing attribute, a remount outside the live system, a
    /// database variable that takes effect at the next restart); see the note.
    NotApplied,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Changed => "changed",
            Outcome::Unchanged => "unchanged",
            Outcome::NotApplied => "not applied",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileOutcome {
    Written,
    Unchanged,
    Removed,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: String,
    pub outcome: FileOutcome,
}

/// One knob as observed (explain) or after apply.
#[derive(Debug, Clone, Serialize)]
pub struct KnobReport {
    #[serde(flatten)]
    pub knob: Knob,
    /// The value before (explain: now); `None` when it cannot be read.
    pub current: Option<String>,
    /// True when the live value already equals the target.
    pub in_effect: bool,
    /// After apply: changed / unchanged / not applied. Explain: `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TuneReport {
    pub enabled: bool,
    pub knobs: Vec<KnobReport>,
    pub files: Vec<FileReport>,
    pub notes: Vec<String>,
    /// True when anything was written, removed or set.
    pub changed: bool,
}

fn mount_options(host: &Host, mount_point: &str) -> Option<Vec<String>> {
    let text = fs::read_to_string(host.proc_("mounts")).ok()?;
    text.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 4 && f[1].replace("\\040", " ") == mount_point)
            .then(|| f[3].split(',').map(str::to_string).collect())
    })
}

/// The variable's value in an existing drop-in (`name = value`).
fn dropin_value(host: &Host, file: &str, var: &str) -> Option<String> {
    if file.is_empty() {
        return None;
    }
    let text = fs::read_to_string(host.path(file)).ok()?;
    text.lines().find_map(|l| {
        let l = l.trim();
        let (k, v) = l.split_once('=')?;
        (k.trim() == var).then(|| v.trim().to_string())
    })
}

/// Live path of a sysfs/sysctl knob under the host root.
fn live_path(host: &Host, k: &Knob) -> Option<PathBuf> {
    match &k.target {
        Target::Sysfs { rel } => Some(host.sys(rel)),
        Target::Sysctl { key } => Some(host.proc_(&format!("sys/{}", key.replace('.', "/")))),
        _ => None,
    }
}

/// Read the knob's current value.
pub fn current_value(host: &Host, k: &Knob) -> Option<String> {
    match &k.target {
        Target::Sysfs { .. } | Target::Sysctl { .. } => {
            let p = live_path(host, k)?;
            fs::read_to_string(p).ok().map(|s| selected_choice(&s))
        }
        Target::Mount { mount_point } => mount_options(host, mount_point).map(|o| o.join(",")),
        Target::Database { variable, .. } => dropin_value(host, &k.persisted_in, variable),
    }
}

/// Does `current` already satisfy the knob?
fn satisfied(k: &Knob, current: Option<&str>) -> bool {
    let Some(cur) = current else { return false };
    match &k.target {
        Target::Mount { .. } => {
            let have: Vec<&str> = cur.split(',').collect();
            k.value.split(',').all(|o| have.contains(&o))
        }
        _ => cur == k.value,
    }
}

/// Observe every knob without changing anything (`dbhost tune --explain`).
pub fn observe(host: &Host, set: &TuneSet) -> TuneReport {
    let knobs = set
        .knobs
        .iter()
        .map(|k| {
            let current = current_value(host, k);
            KnobReport {
                in_effect: satisfied(k, current.as_deref()),
                knob: k.clone(),
                current,
                outcome: None,
                note: None,
            }
        })
        .collect();
    let mut notes = set.notes.clone();
    notes.extend(shadow_notes(host, set));
    TuneReport {
        enabled: set.enabled,
        knobs,
        files: vec![],
        notes,
        changed: false,
    }
}

/// `key = value` settings of a simple config file, with the `[group]` they appear in.
fn settings(text: &str) -> Vec<(String, String, String)> {
    let mut group = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('#') || l.starts_with(';') || l.is_empty() {
            continue;
        }
        if l.starts_with('[') && l.ends_with(']') {
            group = l[1..l.len() - 1].trim().to_ascii_lowercase();
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            let v = v.split('#').next().unwrap_or("").trim().trim_matches('\'');
            out.push((group.clone(), k.trim().to_string(), v.to_string()));
        }
    }
    out
}

/// Config files read after dbhost's (lexical order) that set the same knob to another value:
/// their setting wins at the next boot or restart, so the explanation says so.
pub fn shadow_notes(host: &Host, set: &TuneSet) -> Vec<String> {
    use std::collections::BTreeMap;
    let mut notes = Vec::new();
    // sysctl.d: systemd-sysctl reads all directories' *.conf sorted by file name; /etc wins
    // over /run and /usr/lib for the same name.
    let ours = std::path::Path::new(super::knobs::SYSCTL_CONF)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in [
        host.path("/usr/lib/sysctl.d"),
        host.run("sysctl.d"),
        host.etc("sysctl.d"),
    ] {
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.filter_map(|e| e.ok()) {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.ends_with(".conf") {
                    by_name.insert(n, e.path());
                }
            }
        }
    }
    for (name, path) in by_name.range(ours.clone()..) {
        if *name == ours {
            continue;
        }
        let Ok(text) = fs::read_to_string(path) else {
            continue;
        };
        for (_, k, v) in settings(&text) {
            let key = k.trim_start_matches('-').replace('/', ".");
            if let Some(knob) = set
                .knobs
                .iter()
                .find(|kn| matches!(&kn.target, Target::Sysctl { key: kk } if *kk == key))
            {
                if v != knob.value {
                    notes.push(format!(
                        "{key} = {v} in {} is read after {} and wins at boot",
                        host.unroot(path).display(),
                        knob.persisted_in
                    ));
                }
            }
        }
    }
    // Database drop-ins: later files in the same directory win.
    let Some(db) = set
        .knobs
        .iter()
        .find(|k| matches!(k.target, Target::Database { .. }) && !k.persisted_in.is_empty())
    else {
        return notes;
    };
    let ours = host.path(&db.persisted_in);
    let (Some(dir), Some(our_name)) = (ours.parent(), ours.file_name()) else {
        return notes;
    };
    let mut later: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().as_os_str() > our_name)
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    later.sort();
    for path in later {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        for (var, v) in db_settings(&path, &text) {
            if let Some(knob) = set.knobs.iter().find(
                |kn| matches!(&kn.target, Target::Database { variable, .. } if *variable == var),
            ) {
                if v != knob.value {
                    notes.push(format!(
                        "{var} = {v} in {} is read after {} and wins at the next restart",
                        host.unroot(&path).display(),
                        knob.persisted_in
                    ));
                }
            }
        }
    }
    notes
}

/// The server settings of a database configuration file: a MySQL/MariaDB option file (`.cnf`,
/// server groups only) or a PostgreSQL `.conf`, through the db room's parsers.
fn db_settings(path: &Path, text: &str) -> Vec<(String, String)> {
    use crate::db::cnf::{is_server_group, parse_cnf_text, CnfLine};
    if path.extension().is_some_and(|e| e == "cnf") {
        parse_cnf_text(text)
            .into_iter()
            .filter_map(|l| match l {
                CnfLine::Setting {
                    group, key, value, ..
                } if is_server_group(&group) => Some((key, value.unwrap_or_default())),
                _ => None,
            })
            .collect()
    } else {
        settings(text)
            .into_iter()
            .map(|(_, k, v)| (k.replace('-', "_"), v))
            .collect()
    }
}

fn write_files(host: &Host, set: &TuneSet, facts: &TuneFacts) -> Result<Vec<FileReport>> {
    let rendered = render_all(set, facts);
    let mut reports = Vec::new();
    for r in &rendered {
        let p = host.path(&r.path);
        let outcome = match &r.body {
            Body::File { content, mode } => {
                if atomic_write(&p, content.as_bytes(), *mode)
                    .with_context(|| format!("writing {}", p.display()))?
                {
                    FileOutcome::Written
                } else {
                    FileOutcome::Unchanged
                }
            }
            Body::Symlink { target } => ensure_symlink(&p, Path::new(target))?,
        };
        reports.push(FileReport {
            path: r.path.clone(),
            outcome,
        });
    }
    // Files dbhost owns but no longer wants (tuning off, a knob kept): remove them.
    for path in owned_paths(facts) {
        if rendered.iter().any(|r| r.path == path) {
            continue;
        }
        let p = host.path(&path);
        if fs::symlink_metadata(&p).is_ok() {
            fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
            reports.push(FileReport {
                path,
                outcome: FileOutcome::Removed,
            });
        }
    }
    Ok(reports)
}

fn ensure_symlink(p: &Path, target: &Path) -> Result<FileOutcome> {
    if let Ok(cur) = fs::read_link(p) {
        if cur == target {
            return Ok(FileOutcome::Unchanged);
        }
    }
    if fs::symlink_metadata(p).is_ok() {
        fs::remove_file(p).with_context(|| format!("removing {}", p.display()))?;
    }
    if let Some(dir) = p.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::os::unix::fs::symlink(target, p)
        .with_context(|| format!("linking {} -> {}", p.display(), target.display()))?;
    Ok(FileOutcome::Written)
}

/// Apply the set: persistence files first, then live values. Idempotent: a second run reports
/// every file and knob unchanged. With `set.enabled == false` it only removes dbhost's files.
pub fn apply(host: &Host, exec: &dyn Exec, set: &TuneSet, facts: &TuneFacts) -> Result<TuneReport> {
    // Read everything before writing: "current" is the value before this run.
    let before: Vec<Option<String>> = set.knobs.iter().map(|k| current_value(host, k)).collect();
    let files = write_files(host, set, facts)?;
    let file_changed = |path: &str| {
        files
            .iter()
            .any(|f| f.path == path && f.outcome != FileOutcome::Unchanged)
    };
    let mut knobs = Vec::new();
    let mut notes = set.notes.clone();
    for (k, current) in set.knobs.iter().zip(before) {
        let in_effect = satisfied(k, current.as_deref());
        let (runtime, note) = match &k.target {
            Target::Sysfs { .. } | Target::Sysctl { .. } => {
                let p = live_path(host, k).expect("sysfs/sysctl knob has a path");
                if in_effect {
                    (Outcome::Unchanged, None)
                } else if !p.exists() {
                    (
                        Outcome::NotApplied,
                        Some(format!("{} does not exist on this kernel", p.display())),
                    )
                } else {
                    fs::write(&p, format!("{}\n", k.value))
                        .with_context(|| format!("writing {} to {}", k.value, p.display()))?;
                    (Outcome::Changed, None)
                }
            }
            Target::Mount { mount_point } => {
                if in_effect {
                    (Outcome::Unchanged, None)
                } else if current.is_none() {
                    (
                        Outcome::NotApplied,
                        Some(format!("{mount_point} is not mounted")),
                    )
                } else if host.is_live() {
                    exec.run(
                        &CommandSpec::new("mount")
                            .arg("-o")
                            .arg(format!("remount,{}", k.value))
                            .arg(mount_point),
                    )
                    .with_context(|| format!("remounting {mount_point} with {}", k.value))?;
                    (Outcome::Changed, None)
                } else {
                    (
                        Outcome::NotApplied,
                        Some("a remount needs the live system".into()),
                    )
                }
            }
            Target::Database { engine, .. } => {
                if k.persisted_in.is_empty() {
                    (
                        Outcome::NotApplied,
                        Some(format!("no configuration directory for {engine}")),
                    )
                } else {
                    (
                        Outcome::Unchanged,
                        Some(format!("takes effect when {engine} restarts")),
                    )
                }
            }
        };
        let outcome = if runtime == Outcome::Changed || file_changed(&k.persisted_in) {
            Outcome::Changed
        } else {
            runtime
        };
        knobs.push(KnobReport {
            knob: k.clone(),
            current,
            in_effect,
            outcome: Some(outcome),
            note,
        });
    }
    notes.extend(shadow_notes(host, set));
    if let Some(mp) = set.knobs.iter().find_map(|k| match &k.target {
        Target::Mount { mount_point } => Some((mount_point.clone(), k.value.clone())),
        _ => None,
    }) {
        if let Some(n) = fstab_note(host, &mp.0, &mp.1) {
            notes.push(n);
        }
    }
    let changed = files.iter().any(|f| f.outcome != FileOutcome::Unchanged)
        || knobs.iter().any(|k| k.outcome == Some(Outcome::Changed));
    Ok(TuneReport {
        enabled: set.enabled,
        knobs,
        files,
        notes,
        changed,
    })
}

/// The filesystem step owns fstab; tuning only checks it carries the options.
fn fstab_note(host: &Host, mount_point: &str, opts: &str) -> Option<String> {
    let text = fs::read_to_string(host.etc("fstab")).ok()?;
    let line = text.lines().find(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        !l.trim_start().starts_with('#') && f.len() >= 4 && f[1] == mount_point
    })?;
    let have: Vec<&str> = line.split_whitespace().nth(3)?.split(',').collect();
    let missing: Vec<&str> = opts.split(',').filter(|o| !have.contains(o)).collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the fstab entry for {mount_point} lacks {} (written by the filesystem step): \
             the option is lost at reboot",
            missing.join(",")
        )
    })
}
