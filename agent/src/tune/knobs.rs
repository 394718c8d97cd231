//! The tuning set: every knob as data (target, value, reason, where it is persisted), computed
//! by a pure function of [`TuneFacts`] and per-knob overrides. Formulas and sources:
//! `GENERALIZE-DATADIR-TUNING.md` part C (C4 block layer, C5 kernel, C7 InnoDB, C8 PostgreSQL,
//! C9 knob table).

use super::facts::{Engine, MemberFacts, TuneFacts};
use crate::exit::Failure;
use crate::host::Host;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * 1024;
pub const GIB: u64 = 1024 * 1024 * 1024;

/// Knob name → value, from the profile's `[tuning]` overrides or `--set knob=value`.
/// The value `keep` leaves a knob untouched.
pub type Overrides = BTreeMap<String, String>;

/// The persistence files (in-host absolute paths).
pub const UDEV_RULES: &str = "udev/rules.d/60-dbhost.rules";
pub const SYSCTL_CONF: &str = "sysctl.d/60-dbhost.conf";
pub const THP_UNIT: &str = "systemd/system/dbhost-thp.service";
pub const THP_WANTS: &str = "systemd/system/basic.target.wants/dbhost-thp.service";
pub const MYSQL_DROPIN: &str = "60-dbhost-tuning.cnf";
pub const PG_DROPIN: &str = "60-dbhost-tuning.conf";
/// sysfs attribute for transparent hugepages (relative to the sysfs root).
pub const THP_SYSFS: &str = "kernel/mm/transparent_hugepage/enabled";

/// What kind of thing a knob sets, and so how it is read, applied and persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Target {
    /// A sysfs attribute, relative to the sysfs root ("block/sdc/queue/scheduler").
    Sysfs { rel: String },
    /// A sysctl key ("vm.swappiness"), live under /proc/sys.
    Sysctl { key: String },
    /// Options a mounted filesystem must carry.
    Mount { mount_point: String },
    /// A database server variable, persisted in the engine's drop-in.
    Database { engine: Engine, variable: String },
}

impl Target {
    /// How the target reads for a person: "/sys/block/sdc/queue/scheduler", "vm.swappiness",
    /// "mount:/datadrive", "mariadb:innodb_io_capacity".
    pub fn display(&self) -> String {
        match self {
            Target::Sysfs { rel } => Host::real().sys(rel).display().to_string(),
            Target::Sysctl { key } => key.clone(),
            Target::Mount { mount_point } => format!("mount:{mount_point}"),
            Target::Database { engine, variable } => format!("{engine}:{variable}"),
        }
    }
}

/// Where a knob's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Computed,
    Override,
}

/// One knob: what to set, to what, why, and where it is made persistent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Knob {
    /// Stable knob name used by overrides ("queue.scheduler", "vm.swappiness",
    /// "innodb_io_capacity"). Per-disk knobs share a name across disks.
    pub name: String,
    /// The disk or md device a block knob applies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    pub target: Target,
    /// [`Target::display`], kept in the JSON for readers.
    pub target_display: String,
    pub value: String,
    /// Why, citing the facts it was computed from.
    pub reason: String,
    pub source: Source,
    /// In-host absolute path of the file that makes it persistent.
    pub persisted_in: String,
}

/// The computed tuning set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TuneSet {
    pub enabled: bool,
    pub knobs: Vec<Knob>,
    /// Knobs deliberately not set, and why (missing facts, defaults already right, `keep`).
    pub notes: Vec<String>,
}

impl TuneSet {
    pub fn names(&self) -> BTreeSet<&str> {
        self.knobs.iter().map(|k| k.name.as_str()).collect()
    }
    /// The knob with this name (first one for per-disk knobs).
    pub fn get(&self, name: &str) -> Option<&Knob> {
        self.knobs.iter().find(|k| k.name == name)
    }
    /// The knob with this name for this device.
    pub fn get_dev(&self, name: &str, dev: &str) -> Option<&Knob> {
        self.knobs
            .iter()
            .find(|k| k.name == name && k.device.as_deref() == Some(dev))
    }
}

/// Value checks for overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Choice(&'static [&'static str]),
    MountOptions,
    /// A database value: a number, a size with a unit, or an identifier.
    DbValue,
}

/// Every knob dbhost knows, so an override with a typo is an error instead of being ignored.
const CATALOG: &[(&str, Kind)] = &[
    ("queue.rotational", Kind::Choice(&["0", "1"])),
    (
        "queue.scheduler",
        Kind::Choice(&["none", "mq-deadline", "kyber", "bfq"]),
    ),
    ("queue.nr_requests", Kind::Integer),
    ("queue.rq_affinity", Kind::Choice(&["0", "1", "2"])),
    ("queue.add_random", Kind::Choice(&["0", "1"])),
    ("read_ahead_kb", Kind::Integer),
    ("vm.swappiness", Kind::Integer),
    ("vm.dirty_background_bytes", Kind::Integer),
    ("vm.dirty_bytes", Kind::Integer),
    (
        "transparent_hugepage",
        Kind::Choice(&["always", "madvise", "never"]),
    ),
    ("mount.options", Kind::MountOptions),
    ("innodb_buffer_pool_size", Kind::DbValue),
    ("innodb_io_capacity", Kind::Integer),
    ("innodb_io_capacity_max", Kind::Integer),
    ("innodb_flush_method", Kind::DbValue),
    ("innodb_flush_neighbors", Kind::Choice(&["0", "1", "2"])),
    ("innodb_redo_log_capacity", Kind::DbValue),
    ("innodb_log_file_size", Kind::DbValue),
    ("innodb_read_io_threads", Kind::Integer),
    ("innodb_write_io_threads", Kind::Integer),
    ("shared_buffers", Kind::DbValue),
    ("effective_cache_size", Kind::DbValue),
    ("effective_io_concurrency", Kind::Integer),
    ("maintenance_io_concurrency", Kind::Integer),
    ("random_page_cost", Kind::DbValue),
    ("maintenance_work_mem", Kind::DbValue),
    ("wal_buffers", Kind::DbValue),
];

/// Names of every knob dbhost knows (for documentation and error messages).
pub fn knob_names() -> Vec<&'static str> {
    CATALOG.iter().map(|(n, _)| *n).collect()
}

fn kind_of(name: &str) -> Option<Kind> {
    CATALOG.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

/// Check every override: known knob, valid value, never XFS `nobarrier`.
pub fn validate_overrides(ov: &Overrides, fs_type: Option<&str>) -> Result<(), Failure> {
    for (name, value) in ov {
        let Some(kind) = kind_of(name) else {
            return Err(Failure::Usage(format!(
                "unknown tuning knob `{name}` in the overrides; known knobs: {}",
                knob_names().join(", ")
            )));
        };
        if value == "keep" {
            continue;
        }
        let bad = |what: &str| {
            Failure::Usage(format!(
                "tuning override {name} = \"{value}\" is not valid: {what}"
            ))
        };
        match kind {
            Kind::Integer => {
                value
                    .parse::<u64>()
                    .map_err(|_| bad("expected a non-negative integer (or \"keep\")"))?;
            }
            Kind::Choice(allowed) => {
                if !allowed.contains(&value.as_str()) {
                    return Err(bad(&format!("expected one of {}", allowed.join(", "))));
                }
            }
            Kind::MountOptions => {
                if value.is_empty()
                    || !value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "=,_-.".contains(c))
                {
                    return Err(bad("expected comma-separated mount options"));
                }
                let is_xfs = fs_type.is_none_or(|t| t == "xfs");
                if is_xfs
                    && value
                        .split(',')
                        .any(|o| o == "nobarrier" || o == "barrier=0")
                {
                    return Err(bad(
                        "XFS removed `nobarrier` in Linux 4.19 and the mount fails; barriers stay on",
                    ));
                }
            }
            Kind::DbValue => {
                if value.is_empty()
                    || !value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                {
                    return Err(bad("expected a number, a size like 8G/512MB, or a word"));
                }
            }
        }
    }
    Ok(())
}

/// Builder that applies overrides as knobs are emitted.
struct Builder<'a> {
    ov: &'a Overrides,
    used: BTreeSet<String>,
    knobs: Vec<Knob>,
    notes: Vec<String>,
}

impl Builder<'_> {
    /// Emit knob `name`: the override wins; else the computed `(value, reason)`; else a note.
    fn emit(
        &mut self,
        name: &str,
        device: Option<&str>,
        target: Target,
        persisted_in: &str,
        computed: Result<(String, String), String>,
    ) {
        debug_assert!(kind_of(name).is_some(), "knob {name} missing from CATALOG");
        let (value, reason, source) = match self.ov.get(name) {
            Some(v) => {
                self.used.insert(name.to_string());
                if v == "keep" {
                    let what = device.map(|d| format!(" on {d}")).unwrap_or_default();
                    self.notes.push(format!(
                        "{name}{what} left untouched (profile override `keep`)"
                    ));
                    return;
                }
                let was = match &computed {
                    Ok((c, _)) => format!("computed value would be {c}"),
                    Err(why) => format!("not computed: {why}"),
                };
                (
                    v.clone(),
                    format!("profile override ({was})"),
                    Source::Override,
                )
            }
            None => match computed {
                Ok((v, r)) => (v, r, Source::Computed),
                Err(why) => {
                    let what = device.map(|d| format!(" on {d}")).unwrap_or_default();
                    self.notes.push(format!("{name}{what} not set: {why}"));
                    return;
                }
            },
        };
        self.knobs.push(Knob {
            name: name.to_string(),
            device: device.map(str::to_string),
            target_display: target.display(),
            target,
            value,
            reason,
            source,
            persisted_in: persisted_in.to_string(),
        });
    }
}

fn etc_path(rel: &str) -> String {
    Host::real().etc(rel).display().to_string()
}

/// Human size: "24 GiB", "1.5 GiB", "512 MiB".
pub fn human(bytes: u64) -> String {
    if bytes >= GIB && bytes % (GIB / 2) == 0 {
        let g = bytes as f64 / GIB as f64;
        if bytes % GIB == 0 {
            format!("{} GiB", bytes / GIB)
        } else {
            format!("{g:.1} GiB")
        }
    } else if bytes >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB as f64)
    } else {
        format!("{} MiB", bytes / MIB)
    }
}

/// my.cnf size: "24G", "3968M".
fn mysql_size(bytes: u64) -> String {
    if bytes % GIB == 0 {
        format!("{}G", bytes / GIB)
    } else {
        format!("{}M", bytes / MIB)
    }
}

/// postgresql.conf size: "16GB", "512MB".
fn pg_size(bytes: u64) -> String {
    if bytes % GIB == 0 {
        format!("{}GB", bytes / GIB)
    } else {
        format!("{}MB", bytes / MIB)
    }
}

/// Azure storage account types backed by SSD.
fn ssd_account(t: Option<&str>) -> bool {
    matches!(
        t,
        Some("Premium_LRS")
            | Some("Premium_ZRS")
            | Some("PremiumV2_LRS")
            | Some("StandardSSD_LRS")
            | Some("StandardSSD_ZRS")
            | Some("UltraSSD_LRS")
    )
}

/// Rotational as far as tuning is concerned: an SSD-backed Azure disk that reports rotational=1
/// (Hyper-V virtual disks may) counts as non-rotational, and its flag is corrected.
fn effectively_rotational(m: &MemberFacts) -> bool {
    m.rotational && !ssd_account(m.account_type.as_deref())
}

/// Σ of a per-member cap, when every member has one.
fn sum_caps(members: &[MemberFacts], f: impl Fn(&MemberFacts) -> Option<u64>) -> Option<u64> {
    members.iter().map(f).sum::<Option<u64>>()
}

fn cap_source(members: &[MemberFacts]) -> String {
    let mut s: Vec<&str> = members
        .iter()
        .filter_map(|m| m.cap_source.as_deref())
        .collect();
    s.sort();
    s.dedup();
    if s.is_empty() {
        "given caps".into()
    } else {
        s.join(", ")
    }
}

/// "2 × 5000" or "5000 + 2300" for the explanation.
fn caps_expr(members: &[MemberFacts], f: impl Fn(&MemberFacts) -> Option<u64>) -> String {
    let vals: Vec<u64> = members.iter().filter_map(&f).collect();
    if vals.windows(2).all(|w| w[0] == w[1]) && !vals.is_empty() {
        format!("{} × {}", vals.len(), vals[0])
    } else {
        vals.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

/// Compute the tuning set. Pure: same facts and overrides → same knobs, in a stable order.
/// `enabled == false` (profile `tuning.enabled = false`) → no knobs at all.
pub fn compute(facts: &TuneFacts, ov: &Overrides, enabled: bool) -> Result<TuneSet, Failure> {
    if !enabled {
        return Ok(TuneSet {
            enabled: false,
            knobs: vec![],
            notes: vec!["tuning is disabled by the profile (tuning.enabled = false)".into()],
        });
    }
    // Profiles may spell knobs kebab-case (innodb-io-capacity): same knob.
    let ov: Overrides = ov
        .iter()
        .map(|(k, v)| (k.trim().replace('-', "_"), v.trim().to_string()))
        .collect();
    validate_overrides(&ov, facts.fs_type.as_deref())?;
    let mut b = Builder {
        ov: &ov,
        used: BTreeSet::new(),
        knobs: vec![],
        notes: vec![],
    };
    let udev = etc_path(UDEV_RULES);
    let sysctl = etc_path(SYSCTL_CONF);
    let n = facts.members.len() as u64;

    // --- Member queues (C4). md is bio-based: no scheduler, no nr_requests; tune the members.
    for m in &facts.members {
        let dev = m.name.as_str();
        let q = |attr: &str| Target::Sysfs {
            rel: format!("block/{dev}/queue/{attr}"),
        };
        let rot = effectively_rotational(m);
        if m.rotational && !rot {
            b.emit(
                "queue.rotational",
                Some(dev),
                q("rotational"),
                &udev,
                Ok((
                    "0".into(),
                    format!(
                        "{dev} reports rotational=1 but is an Azure {} (SSD-backed) disk; \
                         MariaDB skips neighbour flushing and md inherits non-rotational only \
                         when the flag is 0",
                        m.account_type.as_deref().unwrap_or("?")
                    ),
                )),
            );
        }
        let queues = if m.mq() {
            format!("{} hardware queues", m.hw_queues)
        } else {
            "a single hardware queue".to_string()
        };
        let want = if m.mq() && !rot {
            "none"
        } else {
            "mq-deadline"
        };
        let offered = |s: &str| m.schedulers.is_empty() || m.schedulers.iter().any(|x| x == s);
        let sched: Result<(String, String), String> = if offered(want) {
            let why = if want == "none" {
                format!(
                    "{dev} is non-rotational with {queues}: the cloud host and the device \
                     already order I/O, a second scheduler only adds latency (md itself has none)"
                )
            } else if rot {
                format!("{dev} is rotational: mq-deadline bounds read latency under writes")
            } else {
                format!(
                    "{dev} has {queues}: mq-deadline keeps reads from starving behind writes \
                     on the one queue"
                )
            };
            Ok((want.to_string(), why))
        } else if offered("none") {
            Ok((
                "none".into(),
                format!(
                    "{dev}: {want} is not offered by this kernel ({}); none is",
                    m.schedulers.join(" ")
                ),
            ))
        } else {
            Err(format!(
                "{want} not offered by the kernel ({})",
                m.schedulers.join(" ")
            ))
        };
        let chosen = sched.as_ref().ok().map(|(v, _)| v.clone());
        b.emit("queue.scheduler", Some(dev), q("scheduler"), &udev, sched);
        let chosen =
            b.ov.get("queue.scheduler")
                .filter(|v| *v != "keep")
                .cloned()
                .or(chosen);
        let nr: Result<(String, String), String> = match chosen.as_deref() {
            Some("none") | None => Err(
                "with scheduler none the queue depth is the driver's tag depth; leave it".into(),
            ),
            Some(s) => Ok((
                "256".into(),
                format!(
                    "{s} on {dev}: room for 256 requests to merge and sort, enough for \
                     the 8–16+ outstanding I/Os per disk that cloud caps need"
                ),
            )),
        };
        b.emit("queue.nr_requests", Some(dev), q("nr_requests"), &udev, nr);
        let rq = if !m.mq() && facts.cpus > 1 {
            (
                "2".into(),
                format!(
                    "{dev} has a single hardware queue, so completions arrive on one CPU; \
                     2 completes each request on the submitting CPU ({} vCPUs)",
                    facts.cpus
                ),
            )
        } else {
            (
                "1".into(),
                format!(
                    "{dev} has {queues} on {} vCPU(s): completions are already spread; \
                     1 (complete on the submitter's CPU group) is the kernel default",
                    facts.cpus
                ),
            )
        };
        b.emit(
            "queue.rq_affinity",
            Some(dev),
            q("rq_affinity"),
            &udev,
            Ok(rq),
        );
        b.emit(
            "queue.add_random",
            Some(dev),
            q("add_random"),
            &udev,
            Ok((
                "0".into(),
                format!("{dev}: disk timings in a VM are no entropy source; skip the per-I/O cost"),
            )),
        );
    }

    // --- Read-ahead on the device the filesystem sits on (C4).
    let engine_ra = match facts.engine {
        Engine::Postgresql => "PostgreSQL reads through the page cache",
        Engine::Mysql | Engine::Mariadb => {
            "InnoDB uses O_DIRECT, so read-ahead only affects binlogs, backups and dumps"
        }
        Engine::None => "no database engine given",
    };
    match (&facts.md, facts.members.len()) {
        (Some(md), _) => {
            let t = Target::Sysfs {
                rel: format!("block/{}/queue/read_ahead_kb", md.name),
            };
            let computed =
                match md.chunk_bytes {
                    Some(c) if c > 0 => {
                        let chunk_kib = c / KIB;
                        let stripe = chunk_kib * n;
                        let v = stripe.clamp(128, 4096);
                        Ok((
                            v.to_string(),
                            format!(
                            "{engine_ra}: one full stripe ({n} members × {chunk_kib} KiB chunk = \
                             {stripe} KiB{}) keeps every member busy on sequential reads without \
                             the kernel's 2 × stripe over-read on random reads",
                            if v != stripe { ", bounded to 128..4096" } else { "" }
                        ),
                        ))
                    }
                    _ => Err(format!("chunk size of {} unknown", md.name)),
                };
            b.emit("read_ahead_kb", Some(&md.name), t, &udev, computed);
            b.notes.push(format!(
                "read_ahead_kb on the members is left alone: page-cache read-ahead happens on {}",
                md.name
            ));
        }
        (None, 1) => {
            let dev = &facts.members[0].name;
            let t = Target::Sysfs {
                rel: format!("block/{dev}/queue/read_ahead_kb"),
            };
            b.emit(
                "read_ahead_kb",
                Some(dev),
                t,
                &udev,
                Ok((
                    "128".into(),
                    format!(
                        "{engine_ra}; a single disk ({dev}): 128 KiB serves sequential reads \
                         without wasting the disk's IOPS cap on random ones"
                    ),
                )),
            );
        }
        (None, _) => b.notes.push(
            "read_ahead_kb not set: several disks but no md array yet (set on the array)".into(),
        ),
    }

    // --- Kernel VM settings (C5).
    let cache_of = match facts.engine {
        Engine::Postgresql => "shared buffers",
        Engine::Mysql | Engine::Mariadb => "InnoDB buffer pool",
        Engine::None => "database cache",
    };
    b.emit(
        "vm.swappiness",
        None,
        Target::Sysctl {
            key: "vm.swappiness".into(),
        },
        &sysctl,
        Ok((
            "1".into(),
            format!(
                "database host ({} RAM): keep swap for emergencies only so the kernel does not \
                 page out the {cache_of} (Percona practice; tuned uses 1–10)",
                human(facts.ram_bytes)
            ),
        )),
    );
    let array_mbps = sum_caps(&facts.members, |m| m.cap_mbps);
    let flush_secs = |bytes: u64| -> String {
        match array_mbps {
            Some(bw) if bw > 0 => format!(
                "; at the array's {bw} MB/s that is {:.0} s of writeback",
                bytes as f64 / (bw as f64 * 1e6)
            ),
            _ => String::new(),
        }
    };
    let def_bg = facts.ram_bytes / 10;
    let def_dirty = facts.ram_bytes / 5;
    b.emit(
        "vm.dirty_background_bytes",
        None,
        Target::Sysctl {
            key: "vm.dirty_background_bytes".into(),
        },
        &sysctl,
        Ok((
            (64 * MIB).to_string(),
            format!(
                "start background writeback at 64 MiB instead of 10% of {} ({}){}; \
                 small steady flushes instead of checkpoint/fsync storms (tuned postgresql profile)",
                human(facts.ram_bytes),
                human(def_bg),
                flush_secs(def_bg)
            ),
        )),
    );
    b.emit(
        "vm.dirty_bytes",
        None,
        Target::Sysctl {
            key: "vm.dirty_bytes".into(),
        },
        &sysctl,
        Ok((
            (512 * MIB).to_string(),
            format!(
                "block writers at 512 MiB of dirty pages instead of 20% of {} ({}){}",
                human(facts.ram_bytes),
                human(def_dirty),
                flush_secs(def_dirty)
            ),
        )),
    );
    b.emit(
        "transparent_hugepage",
        None,
        Target::Sysfs {
            rel: THP_SYSFS.into(),
        },
        &etc_path(THP_UNIT),
        Ok((
            "never".into(),
            format!(
                "{}: THP compaction and khugepaged stalls cause latency spikes and memory \
                 bloat (PostgreSQL docs, Percona, tuned postgresql/oracle profiles)",
                match facts.engine {
                    Engine::None => "database host".to_string(),
                    e => e.to_string(),
                }
            ),
        )),
    );

    // --- Mount options (C3). Never XFS nobarrier: removed in 4.19, the mount would fail.
    match &facts.mount_point {
        Some(mp) => b.emit(
            "mount.options",
            None,
            Target::Mount {
                mount_point: mp.clone(),
            },
            &etc_path("fstab"),
            Ok((
                "noatime".into(),
                format!(
                    "{} at {mp}: no access-time writes on every read; barriers stay on \
                     (XFS nobarrier was removed in 4.19)",
                    facts.fs_type.as_deref().unwrap_or("filesystem")
                ),
            )),
        ),
        None => b
            .notes
            .push("mount.options not checked: the data filesystem is not mounted".into()),
    }

    // --- Database (C7 / C8).
    let db_file = |name: &str| match &facts.db_config_dir {
        Some(d) => format!("{}/{name}", d.trim_end_matches('/')),
        None => String::new(),
    };
    match facts.engine {
        Engine::Mysql | Engine::Mariadb => innodb(&mut b, facts, &db_file(MYSQL_DROPIN)),
        Engine::Postgresql => postgres(&mut b, facts, &db_file(PG_DROPIN)),
        Engine::None => {}
    }
    if facts.engine != Engine::None && facts.db_config_dir.is_none() {
        b.notes.push(format!(
            "no configuration directory for {} found: database knobs are shown but not persisted",
            facts.engine
        ));
    }

    // Every override must have been used.
    let unused: Vec<&String> = ov.keys().filter(|k| !b.used.contains(*k)).collect();
    if let Some(k) = unused.first() {
        return Err(Failure::Usage(format!(
            "tuning override `{k}` does not apply to this host (engine {}, {} data disk(s){})",
            facts.engine,
            facts.members.len(),
            if facts.md.is_some() { ", md array" } else { "" }
        )));
    }
    Ok(TuneSet {
        enabled: true,
        knobs: b.knobs,
        notes: b.notes,
    })
}

fn innodb(b: &mut Builder, f: &TuneFacts, file: &str) {
    let e = f.engine;
    let db = |v: &str| Target::Database {
        engine: e,
        variable: v.to_string(),
    };
    let ram = f.ram_bytes;
    let (pool, frac) = if ram < GIB {
        (128 * MIB, "128 MiB (RAM below 1 GiB)".to_string())
    } else if ram <= 4 * GIB {
        (ram / 2 / (128 * MIB) * (128 * MIB), "50%".to_string())
    } else {
        (ram / 4 * 3 / (128 * MIB) * (128 * MIB), "75%".to_string())
    };
    let pool = pool.max(128 * MIB);
    b.emit(
        "innodb_buffer_pool_size",
        None,
        db("innodb_buffer_pool_size"),
        file,
        Ok((
            mysql_size(pool),
            format!(
                "{frac} of {} RAM, rounded down to 128 MiB chunks (innodb_dedicated_server rule; \
                 the manual recommends 50–75%)",
                human(ram)
            ),
        )),
    );

    // io_capacity from the sustained (not burst) caps.
    let sum = sum_caps(&f.members, |m| m.cap_iops);
    let sustained = match (sum, f.vm_cap_iops) {
        (Some(s), Some(vm)) => Some((s.min(vm), s, Some(vm))),
        (Some(s), None) => Some((s, s, None)),
        _ => None,
    };
    let (cap, max) = match sustained {
        Some((s, total, vm)) => {
            let expr = format!(
                "{} IOPS = {total} ({})",
                caps_expr(&f.members, |m| m.cap_iops),
                cap_source(&f.members)
            );
            let bound = match vm {
                Some(vm) if vm < total => format!(", bounded by the VM's uncached cap {vm}"),
                _ => String::new(),
            };
            let cap_v = ((s * 3 / 4) / 100 * 100).max(100);
            let max_v = (s / 100 * 100).max(cap_v);
            (
                Ok((
                    cap_v.to_string(),
                    format!(
                        "75% of the sustained cap: {expr}{bound}; headroom for foreground I/O, \
                         never sized from burst credits"
                    ),
                )),
                Ok((
                    max_v.to_string(),
                    format!("the sustained cap: {expr}{bound}"),
                )),
            )
        }
        None => {
            let why = "no IOPS cap known for every disk (Azure IMDS opsPerSecondThrottle or \
                       the profile's disk-iops)"
                .to_string();
            (Err(why.clone()), Err(why))
        }
    };
    b.emit(
        "innodb_io_capacity",
        None,
        db("innodb_io_capacity"),
        file,
        cap,
    );
    b.emit(
        "innodb_io_capacity_max",
        None,
        db("innodb_io_capacity_max"),
        file,
        max,
    );

    let ver = f.db_version;
    let vs = |v: Option<(u32, u32, u32)>| match v {
        Some((a, b, c)) => format!("{a}.{b}.{c}"),
        None => "version unknown".to_string(),
    };
    let odirect_default = match (e, ver) {
        (Engine::Mysql, Some(v)) => v >= (8, 4, 0),
        (Engine::Mariadb, Some(v)) => v >= (10, 6, 0),
        _ => false,
    };
    let fm = if odirect_default {
        Err(format!(
            "O_DIRECT is already the default in {e} {}",
            vs(ver)
        ))
    } else {
        Ok((
            "O_DIRECT".to_string(),
            format!(
                "{e} {}: the default is not O_DIRECT here; bypass the page cache so data is not \
                 cached twice (buffer pool + OS)",
                vs(ver)
            ),
        ))
    };
    b.emit(
        "innodb_flush_method",
        None,
        db("innodb_flush_method"),
        file,
        fm,
    );
    let any_rot = f.members.iter().any(|m| m.rotational);
    b.emit(
        "innodb_flush_neighbors",
        None,
        db("innodb_flush_neighbors"),
        file,
        Ok((
            "0".into(),
            if any_rot {
                "members report rotational=1 but cloud disks have no seek cost; flushing \
                 neighbour pages only spends the IOPS cap (MDEV-17380)"
                    .to_string()
            } else {
                "non-rotational members: flushing neighbour pages only spends the IOPS cap; \
                 explicit because MariaDB defaults to 1"
                    .to_string()
            },
        )),
    );

    // Redo: innodb_dedicated_server 8.4 rule, vCPUs / 2 GiB, 1..16 GiB — but at most 1/8 of the
    // data device (the server creates the whole file at its next start; on a small array a
    // 1 GiB log would crowd out the data, or not fit at all).
    let rule = (f.cpus as u64 / 2).clamp(1, 16) * GIB;
    let cap = f
        .data_bytes
        .map(|b| (b / 8 / (128 * MIB) * (128 * MIB)).max(128 * MIB));
    let redo_bytes = cap.map_or(rule, |c| rule.min(c));
    let redo_size = mysql_size(redo_bytes);
    let mut redo_why = format!(
        "{} vCPUs / 2 = {} GiB (innodb_dedicated_server rule, 1..16 GiB): about an hour \
         of peak redo so checkpoints do not force flushing",
        f.cpus,
        rule / GIB
    );
    if redo_bytes < rule {
        redo_why = format!(
            "{redo_why}, capped at 1/8 of the {} data device",
            human(f.data_bytes.unwrap_or(0))
        );
    }
    match (e, ver) {
        (Engine::Mariadb, _) => b.emit(
            "innodb_log_file_size",
            None,
            db("innodb_log_file_size"),
            file,
            Ok((
                redo_size.clone(),
                format!("{redo_why}; MariaDB has one ib_logfile0"),
            )),
        ),
        (_, Some(v)) if v >= (8, 0, 30) => b.emit(
            "innodb_redo_log_capacity",
            None,
            db("innodb_redo_log_capacity"),
            file,
            Ok((
                redo_size.clone(),
                format!(
                    "{redo_why}; MySQL {} uses innodb_redo_log_capacity",
                    vs(ver)
                ),
            )),
        ),
        (_, Some(_)) => b.emit(
            "innodb_log_file_size",
            None,
            db("innodb_log_file_size"),
            file,
            Ok((
                mysql_size(redo_bytes / 2),
                format!(
                    "{redo_why}; MySQL {} before 8.0.30: 2 files of half",
                    vs(ver)
                ),
            )),
        ),
        (_, None) => {
            b.emit(
                "innodb_redo_log_capacity",
                None,
                db("innodb_redo_log_capacity"),
                file,
                Err("MySQL version unknown (innodb_redo_log_capacity needs ≥ 8.0.30)".into()),
            );
            b.emit(
                "innodb_log_file_size",
                None,
                db("innodb_log_file_size"),
                file,
                Err("MySQL version unknown".into()),
            );
        }
    }

    let threads = (f.cpus).clamp(4, 16);
    for v in ["innodb_read_io_threads", "innodb_write_io_threads"] {
        b.emit(
            v,
            None,
            db(v),
            file,
            Ok((
                threads.to_string(),
                format!(
                    "{} vCPUs → {threads} threads (one per vCPU, 4..16) to keep {} striped \
                     disk(s) busy",
                    f.cpus,
                    f.members.len()
                ),
            )),
        );
    }
}

fn postgres(b: &mut Builder, f: &TuneFacts, file: &str) {
    let db = |v: &str| Target::Database {
        engine: Engine::Postgresql,
        variable: v.to_string(),
    };
    let ram = f.ram_bytes;
    let ram_h = human(ram);
    let sb = if ram >= GIB {
        Ok((
            pg_size(ram / 4 / MIB * MIB),
            format!("25% of {ram_h} RAM (PostgreSQL docs; above 40% rarely helps)"),
        ))
    } else {
        Err(format!("{ram_h} RAM: keep the default"))
    };
    let sb_set = sb.is_ok();
    b.emit("shared_buffers", None, db("shared_buffers"), file, sb);
    b.emit(
        "effective_cache_size",
        None,
        db("effective_cache_size"),
        file,
        Ok((
            pg_size(ram / 4 * 3 / MIB * MIB),
            format!("75% of {ram_h} RAM: shared buffers plus the OS page cache (planner hint)"),
        )),
    );
    let n = f.members.len() as u64;
    let rot = f.members.iter().all(effectively_rotational);
    let eic = if rot {
        (2 * n).max(2)
    } else {
        (50 * n).clamp(100, 300)
    };
    let eic_why = if rot {
        format!("{n} rotational disk(s): 2 per spindle")
    } else {
        format!(
            "{n} striped non-rotational disk(s): 50 per disk, 100..300 (the docs suggest \
             hundreds for striped SSD)"
        )
    };
    b.emit(
        "effective_io_concurrency",
        None,
        db("effective_io_concurrency"),
        file,
        Ok((eic.to_string(), eic_why.clone())),
    );
    let mic = match f.db_version {
        Some(v) if v >= (13, 0, 0) => Ok((
            eic.to_string(),
            format!("same as effective_io_concurrency: {eic_why}"),
        )),
        Some(_) => Err("PostgreSQL before 13 has no maintenance_io_concurrency".into()),
        None => Err("PostgreSQL version unknown (needs ≥ 13)".into()),
    };
    b.emit(
        "maintenance_io_concurrency",
        None,
        db("maintenance_io_concurrency"),
        file,
        mic,
    );
    let rpc = if rot {
        Err("rotational disks: keep the default 4.0".into())
    } else {
        Ok((
            "1.1".into(),
            "non-rotational cloud disks: a random page costs about as much as a sequential one"
                .into(),
        ))
    };
    b.emit("random_page_cost", None, db("random_page_cost"), file, rpc);
    let mwm = (ram / 16 / MIB * MIB).clamp(64 * MIB, 2 * GIB);
    b.emit(
        "maintenance_work_mem",
        None,
        db("maintenance_work_mem"),
        file,
        Ok((
            pg_size(mwm),
            format!("1/16 of {ram_h} RAM, 64 MB..2 GB: faster VACUUM and index builds"),
        )),
    );
    let wb = if sb_set {
        Ok((
            "16MB".into(),
            "one WAL segment: what -1 (auto) reaches with shared_buffers ≥ 512 MB; more gains \
             nothing"
                .into(),
        ))
    } else {
        Err("shared_buffers left at default; auto sizing is right".into())
    };
    b.emit("wal_buffers", None, db("wal_buffers"), file, wb);
}
