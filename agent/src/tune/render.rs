//! Rendering the persistence files from a [`TuneSet`] — pure text, no I/O.
//!
//! - `/etc/udev/rules.d/60-dbhost.rules`: member queue settings and read-ahead, re-applied by
//!   udev on every add/change event (boot, hot-plug, array assembly).
//!   Members of an md array are matched by the **array UUID in their md superblock** (udev's
//!   blkid builtin reports it as `ID_FS_UUID` with `ID_FS_TYPE=linux_raid_member`): it survives
//!   `sdX` renames (letters are not stable across boots), member reordering, a different bus
//!   position, and moving the disks to a new VM. The rule imports blkid itself because
//!   `60-dbhost.rules` sorts before `60-persistent-storage.rules`, which would import it later.
//!   The md device is matched by its `md/uuid` sysfs attribute (same UUID). A single disk is
//!   matched by its filesystem UUID. Only when no UUID is known does a rule fall back to the
//!   kernel name, and the set says so in its notes.
//! - `/etc/sysctl.d/60-dbhost.conf`: applied by systemd-sysctl at boot.
//! - the database drop-in: `60-dbhost-tuning.cnf` (MySQL/MariaDB `[mysqld]`) or
//!   `60-dbhost-tuning.conf` in PostgreSQL's `conf.d` (Debian's `include_dir`; no ALTER SYSTEM).
//! - `/etc/systemd/system/dbhost-thp.service`, a oneshot before `basic.target` and the database
//!   units that writes the THP mode (the documented alternative is the kernel argument
//!   `transparent_hugepage=never`).

use super::facts::{Engine, TuneFacts};
use super::knobs::{
    Knob, Target, TuneSet, MYSQL_DROPIN, PG_DROPIN, SYSCTL_CONF, THP_SYSFS, THP_UNIT, THP_WANTS,
    UDEV_RULES,
};
use crate::host::Host;
use serde::Serialize;

pub const HEADER: &str = "Written by dbhost (`dbhost tune --apply`). Do not edit: change the \
profile's [tuning] section and re-run; dbhost rewrites this file.";

/// A file dbhost owns: its in-host path and content (or a symlink target).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    pub path: String,
    #[serde(flatten)]
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    File { content: String, mode: u32 },
    Symlink { target: String },
}

fn etc(rel: &str) -> String {
    Host::real().etc(rel).display().to_string()
}

/// Every path tuning may own on this host (rendered or not): what `apply` removes when a file is
/// no longer wanted (tuning turned off, a knob set to `keep`).
pub fn owned_paths(facts: &TuneFacts) -> Vec<String> {
    let mut v = vec![
        etc(UDEV_RULES),
        etc(SYSCTL_CONF),
        etc(THP_UNIT),
        etc(THP_WANTS),
    ];
    if let Some(d) = &facts.db_config_dir {
        let name = match facts.engine {
            Engine::Postgresql => PG_DROPIN,
            _ => MYSQL_DROPIN,
        };
        if facts.engine != Engine::None {
            v.push(format!("{}/{name}", d.trim_end_matches('/')));
        }
    }
    v
}

/// mdadm form "a:b:c:d" or dashed → lowercase dashed UUID (what sysfs `md/uuid` and blkid show).
pub fn dashed_uuid(u: &str) -> String {
    let hex: String = u
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.len() != 32 {
        return u.to_ascii_lowercase();
    }
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn comment_lines(out: &mut String, text: &str) {
    for line in text.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
}

/// The sysfs attribute of a block knob below the device ("queue/scheduler").
fn block_attr(k: &Knob) -> Option<(String, String)> {
    match &k.target {
        Target::Sysfs { rel } => {
            let rest = rel.strip_prefix("block/")?;
            let (dev, attr) = rest.split_once('/')?;
            Some((dev.to_string(), attr.to_string()))
        }
        _ => None,
    }
}

/// Render the udev rules, or `None` when there is no block knob.
pub fn render_udev(set: &TuneSet, facts: &TuneFacts) -> Option<String> {
    let block: Vec<(&Knob, String, String)> = set
        .knobs
        .iter()
        .filter_map(|k| block_attr(k).map(|(d, a)| (k, d, a)))
        .collect();
    if block.is_empty() {
        return None;
    }
    let mut out = String::new();
    comment_lines(&mut out, HEADER);
    out.push_str("ACTION!=\"add|change\", GOTO=\"dbhost_end\"\n");
    out.push_str("SUBSYSTEM!=\"block\", GOTO=\"dbhost_end\"\n");
    out.push_str("ENV{DEVTYPE}!=\"disk\", GOTO=\"dbhost_end\"\n");

    let md_name = facts.md.as_ref().map(|m| m.name.as_str());
    let md_uuid = facts
        .md
        .as_ref()
        .and_then(|m| m.uuid.as_deref())
        .map(dashed_uuid);
    let member_knobs = |dev: &str| -> Vec<(&Knob, String)> {
        block
            .iter()
            .filter(|(_, d, _)| d == dev)
            .map(|(k, _, a)| (*k, a.clone()))
            .collect()
    };
    let assigns = |ks: &[(&Knob, String)]| -> String {
        ks.iter()
            .map(|(k, a)| format!(", ATTR{{{a}}}=\"{}\"", k.value))
            .collect()
    };
    // `unname`: (kernel name, words) for rules that match by UUID, so the persisted text names
    // no device that may come back under another name after a reboot (the file must not change).
    let reasons = |out: &mut String, ks: &[(&Knob, String)], unname: Option<(&str, &str)>| {
        for (k, a) in ks {
            let why = match unname {
                Some((dev, words)) => replace_word(&k.reason, dev, words),
                None => k.reason.clone(),
            };
            comment_lines(out, &format!("{a}={}: {why}", k.value));
        }
    };

    let members: Vec<&str> = facts
        .members
        .iter()
        .map(|m| m.name.as_str())
        .filter(|n| Some(*n) != md_name)
        .collect();
    let sets: Vec<Vec<(String, String)>> = members
        .iter()
        .map(|d| {
            member_knobs(d)
                .iter()
                .map(|(k, a)| (a.clone(), k.value.clone()))
                .collect()
        })
        .collect();
    let uniform = sets.windows(2).all(|w| w[0] == w[1]);
    let any_member_knob = sets.iter().any(|s| !s.is_empty());
    let need_blkid = any_member_knob
        && ((md_uuid.is_some() && uniform) || (md_name.is_none() && facts.fs_uuid.is_some()));
    if need_blkid {
        out.push_str(
            "KERNEL==\"sd*|vd*|xvd*|nvme*n*\", ENV{ID_FS_TYPE}!=\"?*\", IMPORT{builtin}=\"blkid\"\n",
        );
    }
    if any_member_knob {
        match (&md_uuid, uniform, md_name) {
            (Some(u), true, Some(_)) => {
                out.push('\n');
                comment_lines(
                    &mut out,
                    &format!(
                        "Members of md array {u} ({} disks), matched by the array UUID in their md \
                         superblock: survives renames, reordering and a move to a new VM.",
                        members.len()
                    ),
                );
                let ks = member_knobs(members[0]);
                reasons(&mut out, &ks, Some((members[0], "each member")));
                out.push_str(&format!(
                    "ENV{{ID_FS_TYPE}}==\"linux_raid_member\", ENV{{ID_FS_UUID}}==\"{u}\"{}\n",
                    assigns(&ks)
                ));
            }
            _ => {
                for d in &members {
                    let ks = member_knobs(d);
                    if ks.is_empty() {
                        continue;
                    }
                    out.push('\n');
                    let matcher = match (&facts.fs_uuid, md_name) {
                        (Some(fs), None) => {
                            comment_lines(
                                &mut out,
                                &format!(
                                    "Data disk {d}, matched by the UUID of the filesystem on it."
                                ),
                            );
                            format!("ENV{{ID_FS_UUID}}==\"{fs}\"")
                        }
                        _ => {
                            comment_lines(
                                &mut out,
                                &format!(
                                    "Data disk {d}, matched by kernel name (no UUID known: \
                                     re-run dbhost tune if device names change)."
                                ),
                            );
                            format!("KERNEL==\"{d}\"")
                        }
                    };
                    reasons(&mut out, &ks, None);
                    out.push_str(&format!("{matcher}{}\n", assigns(&ks)));
                }
            }
        }
    }
    if let Some(md) = md_name {
        let ks = member_knobs(md);
        if !ks.is_empty() {
            out.push('\n');
            let matcher = match &md_uuid {
                Some(u) => {
                    comment_lines(
                        &mut out,
                        &format!(
                            "The md array {u}, matched by md/uuid; \
                             re-applied on the change event when the array starts."
                        ),
                    );
                    format!("KERNEL==\"md*\", ATTR{{md/uuid}}==\"{u}\"")
                }
                None => {
                    comment_lines(
                        &mut out,
                        &format!("The md array {md}, matched by kernel name (UUID unknown)."),
                    );
                    format!("KERNEL==\"{md}\"")
                }
            };
            let unname = md_uuid.is_some().then_some((md, "the array"));
            reasons(&mut out, &ks, unname);
            out.push_str(&format!("{matcher}{}\n", assigns(&ks)));
        }
    }
    out.push_str("\nLABEL=\"dbhost_end\"\n");
    Some(out)
}

/// `text` with every whole-word `word` (not part of a longer name: sdc, not sdc1) replaced.
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().last().or_else(|| out.chars().last());
        let after = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(is_name) || after.is_some_and(is_name) {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[test]
fn replace_word_only_whole_names() {
    assert_eq!(
        replace_word("sdc: sdc1 of sdc, xsdc", "sdc", "each member"),
        "each member: sdc1 of each member, xsdc"
    );
}

fn sysctl_knobs(set: &TuneSet) -> Vec<(&Knob, &str)> {
    set.knobs
        .iter()
        .filter_map(|k| match &k.target {
            Target::Sysctl { key } => Some((k, key.as_str())),
            _ => None,
        })
        .collect()
}

pub fn render_sysctl(set: &TuneSet) -> Option<String> {
    let ks = sysctl_knobs(set);
    if ks.is_empty() {
        return None;
    }
    let mut out = String::new();
    comment_lines(&mut out, HEADER);
    for (k, key) in ks {
        out.push('\n');
        comment_lines(&mut out, &k.reason);
        out.push_str(&format!("{key} = {}\n", k.value));
    }
    Some(out)
}

fn db_knobs(set: &TuneSet) -> Vec<(&Knob, &str)> {
    set.knobs
        .iter()
        .filter_map(|k| match &k.target {
            Target::Database { variable, .. } => Some((k, variable.as_str())),
            _ => None,
        })
        .collect()
}

/// The database drop-in: (in-host path, content), or `None` without DB knobs or config dir.
pub fn render_db(set: &TuneSet, facts: &TuneFacts) -> Option<(String, String)> {
    let ks = db_knobs(set);
    let dir = facts.db_config_dir.as_deref()?;
    if ks.is_empty() {
        return None;
    }
    let mut out = String::new();
    comment_lines(&mut out, HEADER);
    let name = match facts.engine {
        Engine::Postgresql => PG_DROPIN,
        _ => {
            comment_lines(
                &mut out,
                "Files here are read in lexical order and the last setting wins; \
                 `dbhost tune --explain` names later files that override these.",
            );
            out.push_str("[mysqld]\n");
            MYSQL_DROPIN
        }
    };
    for (k, var) in ks {
        out.push('\n');
        comment_lines(&mut out, &k.reason);
        out.push_str(&format!("{var} = {}\n", k.value));
    }
    Some((format!("{}/{name}", dir.trim_end_matches('/')), out))
}

/// The THP oneshot unit, or `None` when THP is not set.
pub fn render_thp_unit(set: &TuneSet) -> Option<String> {
    let k = set
        .knobs
        .iter()
        .find(|k| matches!(&k.target, Target::Sysfs { rel } if rel == THP_SYSFS))?;
    let attr = Host::real().sys(THP_SYSFS).display().to_string();
    let mut out = String::new();
    comment_lines(&mut out, HEADER);
    comment_lines(
        &mut out,
        &format!("transparent_hugepage={}: {}", k.value, k.reason),
    );
    comment_lines(
        &mut out,
        &format!(
            "Alternative without this unit: the kernel argument transparent_hugepage={}.",
            k.value
        ),
    );
    out.push_str(&format!(
        "[Unit]
Description=dbhost: transparent hugepages = {v} for the database
DefaultDependencies=no
After=sysinit.target local-fs.target
Before=basic.target mysql.service mariadb.service postgresql.service
ConditionPathExists={attr}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'echo {v} > {attr}'

[Install]
WantedBy=basic.target
",
        v = k.value
    ));
    Some(out)
}

/// Every file the set needs, in a stable order.
pub fn render_all(set: &TuneSet, facts: &TuneFacts) -> Vec<Rendered> {
    let mut v = Vec::new();
    let file = |path: String, content: String| Rendered {
        path,
        body: Body::File {
            content,
            mode: 0o644,
        },
    };
    if let Some(c) = render_udev(set, facts) {
        v.push(file(etc(UDEV_RULES), c));
    }
    if let Some(c) = render_sysctl(set) {
        v.push(file(etc(SYSCTL_CONF), c));
    }
    if let Some(c) = render_thp_unit(set) {
        v.push(file(etc(THP_UNIT), c));
        v.push(Rendered {
            path: etc(THP_WANTS),
            body: Body::Symlink {
                target: etc(THP_UNIT),
            },
        });
    }
    if let Some((p, c)) = render_db(set, facts) {
        v.push(file(p, c));
    }
    v
}
