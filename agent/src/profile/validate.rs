//! Cross-field rules of profile v1, run after serde accepted the shape. Each problem names the
//! key it is about (the caller turns that into `line:col`). All problems are reported, not just
//! the first.

use super::locate::seg;
use super::{Engine, ExpectedCount, FsType, Level, LunSpec, Profile, SelectMode};
use crate::detect::model::CacheMode;
use std::collections::BTreeSet;

/// A rule violation: the dotted key it is about and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

/// Which engines a tuning knob applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnobScope {
    /// Block layer, kernel, filesystem: any engine.
    Host,
    /// MySQL and MariaDB (InnoDB).
    Innodb,
    Postgresql,
}

/// Knobs a profile may override (GENERALIZE-DATADIR-TUNING.md §C9; issue 6 computes them).
/// `tune/` must recognise every name here; keep the two in step.
pub const KNOBS: &[(&str, KnobScope)] = &[
    ("scheduler", KnobScope::Host),
    ("nr_requests", KnobScope::Host),
    ("rq_affinity", KnobScope::Host),
    ("add_random", KnobScope::Host),
    ("rotational", KnobScope::Host),
    ("read_ahead_kb", KnobScope::Host),
    ("vm.swappiness", KnobScope::Host),
    ("vm.dirty_background_bytes", KnobScope::Host),
    ("vm.dirty_bytes", KnobScope::Host),
    ("transparent_hugepage", KnobScope::Host),
    ("innodb_buffer_pool_size", KnobScope::Innodb),
    ("innodb_io_capacity", KnobScope::Innodb),
    ("innodb_io_capacity_max", KnobScope::Innodb),
    ("innodb_flush_method", KnobScope::Innodb),
    ("innodb_flush_neighbors", KnobScope::Innodb),
    ("innodb_redo_log_capacity", KnobScope::Innodb),
    ("innodb_log_file_size", KnobScope::Innodb),
    ("innodb_read_io_threads", KnobScope::Innodb),
    ("innodb_write_io_threads", KnobScope::Innodb),
    ("shared_buffers", KnobScope::Postgresql),
    ("effective_cache_size", KnobScope::Postgresql),
    ("effective_io_concurrency", KnobScope::Postgresql),
    ("maintenance_io_concurrency", KnobScope::Postgresql),
    ("random_page_cost", KnobScope::Postgresql),
    ("maintenance_work_mem", KnobScope::Postgresql),
    ("wal_buffers", KnobScope::Postgresql),
    ("max_wal_size", KnobScope::Postgresql),
];

/// Largest chunk accepted (md allows more, but nothing gains from it).
pub const MAX_CHUNK: u64 = 64 << 20;
/// Smallest chunk: one 4 KiB page.
pub const MIN_CHUNK: u64 = 4096;
/// Longest md array name we write (the superblock's set_name is 32 bytes with a NUL).
pub const MAX_ARRAY_NAME: usize = 31;
/// Top-level directories a mount point may not be, or be under.
const SYSTEM_DIRS: &[&str] = &[
    "proc", "sys", "dev", "boot", "run", "etc", "usr", "bin", "sbin", "lib", "lib64",
];
/// Mount options dbhost sets itself, or that would break the mount.
const MANAGED_OPTIONS: &[&str] = &["noatime", "nofail", "defaults"];

fn name_chars_ok(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn validate_migrate(p: &Profile, m: &super::Migrate, bad: &mut dyn FnMut(&str, String)) {
    use super::Fence;
    if p.database.engine == Engine::None {
        bad(
            "migrate.source-host",
            "a migration needs database.engine (postgresql, mariadb or mysql)".into(),
        );
    }
    if m.source_host.trim().is_empty() || m.source_host.contains(char::is_whitespace) {
        bad(
            "migrate.source-host",
            format!("{:?} is not a host name or address", m.source_host),
        );
    }
    if m.source_port == Some(0) {
        bad("migrate.source-port", "port 0 is not a port".into());
    }
    for (k, f) in [
        ("migrate.password-file", &m.password_file),
        (
            "migrate.replication-password-file",
            &m.replication_password_file,
        ),
    ] {
        if let Some(f) = f {
            if !f.starts_with('/') {
                bad(k, format!("{f:?} must be an absolute path"));
            }
        }
    }
    match m.fence {
        Fence::ReadOnly => {
            for (k, set) in [
                ("migrate.source-unit", m.source_unit.is_some()),
                ("migrate.stop-command", m.stop_command.is_some()),
            ] {
                if set {
                    bad(
                        k,
                        "is only used with fence = \"stop\"; remove it or set fence = \"stop\""
                            .into(),
                    );
                }
            }
        }
        Fence::Stop => {
            if m.source_unit.is_some() == m.stop_command.is_some() {
                bad(
                    "migrate.fence",
                    "fence = \"stop\" needs exactly one of source-unit (the source runs on this \
                     host) or stop-command (it runs elsewhere)"
                        .into(),
                );
            }
        }
    }
    for (k, argv) in [
        ("migrate.stop-command", &m.stop_command),
        ("migrate.on-cutover", &m.on_cutover),
        ("migrate.source-shell", &m.source_shell),
    ] {
        if argv
            .as_ref()
            .is_some_and(|a| a.is_empty() || a[0].is_empty())
        {
            bad(
                k,
                "must name a program: [\"/path/to/program\", \"arg\", ...]".into(),
            );
        }
    }
    if m.slot.is_empty()
        || m.slot.len() > 63
        || !m
            .slot
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        bad(
            "migrate.slot",
            format!(
                "{:?}: a replication slot name is 1-63 of a-z, 0-9 and _",
                m.slot
            ),
        );
    }
    if p.database.engine == Engine::Postgresql {
        for (k, set) in [
            ("migrate.server-id", m.server_id.is_some()),
            ("migrate.source-shell", m.source_shell.is_some()),
            (
                "migrate.source-defaults-file",
                m.source_defaults_file.is_some(),
            ),
        ] {
            if set {
                bad(k, "is for mysql and mariadb only; remove it".into());
            }
        }
    }
    if let Some(f) = &m.source_defaults_file {
        if !f.starts_with('/') {
            bad(
                "migrate.source-defaults-file",
                format!("{f:?} must be an absolute path"),
            );
        }
    }
    if m.server_id == Some(0) {
        bad(
            "migrate.server-id",
            "server_id 0 cannot replicate; choose 1-4294967295, unlike the source's".into(),
        );
    }
    if m.catch_up_timeout.as_secs() == 0 {
        bad("migrate.catch-up-timeout", "must be at least 1s".into());
    }
    if m.hook_timeout.as_secs() == 0 {
        bad("migrate.hook-timeout", "must be at least 1s".into());
    }
}

pub fn validate(p: &Profile) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut bad = |key: &str, message: String| {
        out.push(Problem {
            key: key.to_string(),
            message,
        })
    };
    let d = &p.disks;

    // --- disks: cache modes
    if d.allowed_cache_modes.is_empty() {
        bad(
            "disks.allowed-cache-modes",
            "must list at least one cache mode (none, readonly, readwrite, unknown)".into(),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, m) in d.allowed_cache_modes.iter().enumerate() {
        if !seen.insert(format!("{m:?}")) {
            bad(
                &format!("disks.allowed-cache-modes[{i}]"),
                format!("cache mode {} is listed twice", cache_name(*m)),
            );
        }
    }
    if let Some(m) = d.assume_cache_mode {
        if m == CacheMode::Unknown {
            bad(
                "disks.assume-cache-mode",
                "assuming \"unknown\" has no effect; name the mode the disks really have (none, readonly or readwrite) or remove the key".into(),
            );
        } else if !d.allowed_cache_modes.contains(&m) {
            bad(
                "disks.assume-cache-mode",
                format!(
                    "assumed cache mode {} is not in disks.allowed-cache-modes, so every disk without a known mode would be refused",
                    cache_name(m)
                ),
            );
        }
    }

    // --- disks: selection
    let mode = d.select_mode();
    match mode {
        SelectMode::AllCandidates => {
            for (k, set) in [
                ("disks.luns", d.luns.is_some()),
                ("disks.serial", d.serial.is_some()),
                ("disks.model", d.model.is_some()),
            ] {
                if set {
                    bad(k, "has no effect with select = \"all-candidates\"; remove it or set select = \"luns\" / \"match\"".into());
                }
            }
        }
        SelectMode::Luns => {
            if d.luns.as_ref().is_none_or(|l| l.is_empty()) {
                bad(
                    "disks.luns",
                    "select = \"luns\" needs a non-empty list, e.g. luns = [0, 1, \"4-7\"]".into(),
                );
            }
            for k in ["disks.serial", "disks.model"] {
                let set = if k == "disks.serial" {
                    d.serial.is_some()
                } else {
                    d.model.is_some()
                };
                if set {
                    bad(k, "cannot be combined with LUN selection; select disks either by LUN or by serial/model".into());
                }
            }
        }
        SelectMode::Match => {
            if d.serial.is_none() && d.model.is_none() {
                bad(
                    "disks.select",
                    "select = \"match\" needs disks.serial and/or disks.model globs".into(),
                );
            }
            if d.luns.is_some() {
                bad("disks.luns", "cannot be combined with serial/model selection; select disks either by LUN or by serial/model".into());
            }
        }
    }
    if let Some(luns) = &d.luns {
        let mut seen = BTreeSet::new();
        for (i, l) in luns.iter().enumerate() {
            let key = format!("disks.luns[{i}]");
            if let LunSpec::Range(a, b) = *l {
                if a > b {
                    bad(
                        &key,
                        format!("LUN range \"{a}-{b}\" is backwards; write \"{b}-{a}\""),
                    );
                    continue;
                }
                if b - a > 4096 {
                    bad(&key, format!("LUN range \"{a}-{b}\" is implausibly large"));
                    continue;
                }
            }
            for lun in l.luns() {
                if !seen.insert(lun) {
                    bad(&key, format!("LUN {lun} is listed more than once"));
                    break;
                }
            }
        }
    }
    for (name, globs) in [("serial", &d.serial), ("model", &d.model)] {
        if let Some(g) = globs {
            if g.is_empty() {
                bad(
                    &format!("disks.{name}"),
                    "must list at least one glob".into(),
                );
            }
            for (i, pat) in g.iter().enumerate() {
                if pat.trim().is_empty() {
                    bad(&format!("disks.{name}[{i}]"), "empty glob".into());
                }
            }
        }
    }

    // --- disks: count vs level
    match (p.array.level, d.expected_count) {
        (_, ExpectedCount::Exactly(0)) => bad(
            "disks.expected-count",
            "must be at least 1 (or \"all\")".into(),
        ),
        (Level::Raid0, ExpectedCount::Exactly(1)) => bad(
            "disks.expected-count",
            "raid0 needs at least 2 disks; for one disk set array.level = \"none\"".into(),
        ),
        (Level::None, ExpectedCount::Exactly(1)) => {}
        (Level::None, c) => bad(
            "disks.expected-count",
            format!(
                "array.level = \"none\" uses exactly one disk; set expected-count = 1 (is {c})"
            ),
        ),
        _ => {}
    }

    // --- disks: IMDS endpoint
    if let Some(ep) = &d.imds_endpoint {
        let rest = ep.strip_prefix("http://");
        match rest {
            None => bad(
                "disks.imds-endpoint",
                format!("{ep:?} must be an http:// URL (IMDS is plain HTTP on a link-local or loopback address)"),
            ),
            Some(r) if r.is_empty() || r.starts_with('/') || r.contains(char::is_whitespace) => {
                bad("disks.imds-endpoint", format!("{ep:?} has no host"))
            }
            _ => {}
        }
        if !matches!(
            d.platform,
            super::PlatformSel::Azure | super::PlatformSel::Any
        ) {
            bad(
                "disks.imds-endpoint",
                format!(
                    "IMDS is only consulted on Azure; remove this key or set disks.platform = \"azure\" (is {})",
                    d.platform
                ),
            );
        }
    }

    // --- array
    if let Some(chunk) = p.array.chunk {
        let c = chunk.bytes();
        if p.array.level == Level::None {
            bad(
                "array.chunk",
                "has no meaning with array.level = \"none\"; remove it".into(),
            );
        } else if !c.is_power_of_two() || c < MIN_CHUNK {
            bad(
                "array.chunk",
                format!("chunk {chunk} must be a power of two and at least 4K (e.g. \"512K\")"),
            );
        } else if c > MAX_CHUNK {
            bad("array.chunk", format!("chunk {chunk} is larger than 64M"));
        }
    }
    let name = &p.array.name;
    if name.is_empty() || name.len() > MAX_ARRAY_NAME {
        bad(
            "array.name",
            format!(
                "must be 1 to {MAX_ARRAY_NAME} characters (is {})",
                name.len()
            ),
        );
    } else if !name_chars_ok(name) || name.starts_with(['-', '.']) {
        bad(
            "array.name",
            format!("{name:?} may only use letters, digits, '-', '_' and '.', and may not start with '-' or '.' (no ':' — the name carries no host)"),
        );
    }

    // --- filesystem
    let fs = &p.filesystem;
    let max = fs.fs_type.max_label_len();
    if fs.label.is_empty() || fs.label.len() > max {
        bad(
            "filesystem.label",
            format!(
                "{:?} is {} characters; a {} label is 1 to {max}",
                fs.label,
                fs.label.len(),
                fs.fs_type
            ),
        );
    } else if !name_chars_ok(&fs.label) {
        bad(
            "filesystem.label",
            format!(
                "{:?} may only use letters, digits, '-', '_' and '.'",
                fs.label
            ),
        );
    }
    if let Err(m) = check_mount_point(&fs.mount_point) {
        bad("filesystem.mount-point", m);
    }
    let mut seen = BTreeSet::new();
    for (i, o) in fs.mount_options.iter().enumerate() {
        let key = format!("filesystem.mount-options[{i}]");
        let opt_name = o.split('=').next().unwrap_or("");
        if o.is_empty() || o.contains([',', ' ', '\t', '\n', '#']) {
            bad(
                &key,
                format!(
                    "{o:?} must be one option without commas or spaces; list options separately"
                ),
            );
        } else if MANAGED_OPTIONS.contains(&o.as_str())
            || opt_name == "x-systemd.device-timeout"
            || opt_name.starts_with("x-dbhost.")
        {
            bad(
                &key,
                format!(
                    "{o:?} is set by dbhost itself (use filesystem.device-timeout for the timeout)"
                ),
            );
        } else if o == "noauto" {
            bad(
                &key,
                "\"noauto\" would leave the database without its filesystem after a reboot".into(),
            );
        } else if fs.fs_type == FsType::Xfs && (o == "nobarrier" || o == "barrier") {
            bad(
                &key,
                format!("{o:?} was removed from XFS in Linux 4.19; the mount would fail"),
            );
        } else if !seen.insert(o.clone()) {
            bad(&key, format!("{o:?} is listed twice"));
        }
    }
    let t = fs.device_timeout.as_secs();
    if t == 0 || t > 3600 {
        bad(
            "filesystem.device-timeout",
            format!("{} must be between 1s and 1h", fs.device_timeout),
        );
    }

    // --- database
    let db = &p.database;
    if db.engine == Engine::None {
        if db.datadir.is_some() {
            bad(
                "database.datadir",
                "engine = \"none\" moves no datadir; remove this key or name an engine".into(),
            );
        }
        if db.retention.is_some() {
            bad(
                "database.retention",
                "engine = \"none\" keeps no old datadir; remove this key".into(),
            );
        }
    }
    if let Some(dd) = &db.datadir {
        if let Err(m) = check_subdir(dd) {
            bad("database.datadir", m);
        }
    }
    if !db.keep_old_datadir && db.retention.is_some() {
        bad(
            "database.retention",
            "has no effect with keep-old-datadir = false; remove one of the two".into(),
        );
    }

    // --- migrate
    if let Some(m) = &p.migrate {
        validate_migrate(p, m, &mut bad);
    }

    // --- tuning
    let tu = &p.tuning;
    if !tu.enabled {
        for (k, set) in [
            ("tuning.overrides", !tu.overrides.is_empty()),
            ("tuning.disk-mbps", tu.disk_mbps.is_some()),
            ("tuning.disk-iops", tu.disk_iops.is_some()),
        ] {
            if set {
                bad(
                    k,
                    "has no effect with tuning.enabled = false; remove it or enable tuning".into(),
                );
            }
        }
    }
    for (k, v) in &tu.overrides {
        let key = format!("tuning.overrides.{}", seg(k));
        match KNOBS.iter().find(|(n, _)| n == k) {
            None => bad(
                &key,
                format!(
                    "unknown tuning knob {k:?}; known knobs: {}",
                    KNOBS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ),
            ),
            Some((_, scope)) => {
                let fits = match scope {
                    KnobScope::Host => true,
                    KnobScope::Innodb => matches!(db.engine, Engine::Mysql | Engine::Mariadb),
                    KnobScope::Postgresql => db.engine == Engine::Postgresql,
                };
                if !fits {
                    bad(
                        &key,
                        format!(
                            "knob {k:?} is for {} but database.engine = \"{}\"",
                            match scope {
                                KnobScope::Innodb => "mysql/mariadb",
                                _ => "postgresql",
                            },
                            db.engine
                        ),
                    );
                }
            }
        }
        if matches!(
            v,
            toml::Value::Array(_) | toml::Value::Table(_) | toml::Value::Datetime(_)
        ) {
            bad(
                &key,
                format!(
                    "a knob value is a string, number or boolean (got {})",
                    v.type_str()
                ),
            );
        }
    }
    for (k, v) in [
        ("tuning.disk-mbps", tu.disk_mbps),
        ("tuning.disk-iops", tu.disk_iops),
    ] {
        if v == Some(0) {
            bad(
                k,
                "must be more than 0 (remove it to let dbhost ask IMDS)".into(),
            );
        }
    }
    if let Some(b) = &p.backup {
        super::backup::validate(b, &mut bad);
        if p.database.engine == super::Engine::None {
            bad(
                "backup.destination",
                "backups need a database: set database.engine".into(),
            );
        }
    }

    out
}

fn cache_name(m: CacheMode) -> &'static str {
    match m {
        CacheMode::None => "none",
        CacheMode::ReadOnly => "readonly",
        CacheMode::ReadWrite => "readwrite",
        CacheMode::Unknown => "unknown",
    }
}

/// The mount point: absolute, normalized, not `/`, not a system directory or under one.
pub fn check_mount_point(mp: &str) -> Result<(), String> {
    if !mp.starts_with('/') {
        return Err(format!(
            "{mp:?} must be an absolute path like \"/datadrive\""
        ));
    }
    if mp == "/" {
        return Err("\"/\" is the root filesystem; choose a directory like \"/datadrive\"".into());
    }
    if mp.contains(|c: char| c.is_whitespace() || c == ',' || c == '#' || c == '\\') {
        return Err(format!(
            "{mp:?} may not contain spaces, commas, '#' or backslashes (fstab)"
        ));
    }
    let comps: Vec<&str> = mp[1..].split('/').collect();
    if mp.ends_with('/')
        || comps
            .iter()
            .any(|c| c.is_empty() || *c == "." || *c == "..")
    {
        return Err(format!(
            "{mp:?} must be a plain path without '.', '..', '//' or a trailing '/'"
        ));
    }
    if SYSTEM_DIRS.contains(&comps[0]) {
        return Err(format!(
            "{mp:?} is a system directory or under one (/{}); choose a directory like \"/datadrive\"",
            comps[0]
        ));
    }
    Ok(())
}

/// The datadir subdirectory: relative, normalized, no `..`.
pub fn check_subdir(dd: &str) -> Result<(), String> {
    if dd.is_empty() {
        return Err("must not be empty (e.g. \"mysql\")".into());
    }
    if dd.starts_with('/') {
        return Err(format!(
            "{dd:?} must be relative to the mount point (e.g. \"mysql\"), not absolute"
        ));
    }
    if dd.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(format!(
            "{dd:?} must be a plain relative path without '.', '..' or empty parts"
        ));
    }
    if dd.contains(|c: char| c.is_whitespace() || c.is_control() || c == '\\') {
        return Err(format!("{dd:?} may not contain whitespace or backslashes"));
    }
    Ok(())
}
