//! The facts tuning is computed from ([`TuneFacts`]), and how to gather them from a [`Host`].
//!
//! Tuning does not depend on detection's or the profile's types: the lead wires those into
//! [`GatherHints`] (disk caps from Azure IMDS or the profile, the engine, the array). Gathering
//! only reads: sysfs, `/proc`, `/etc`, the dpkg status file, and `sysinfo` on the live system.

use crate::host::{read_trimmed, Host};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// The database engine the host serves: the profile's type (`database.engine`).
pub use crate::profile::Engine;

/// A (major, minor, patch) version.
pub type Version = (u32, u32, u32);

/// One data disk under the filesystem (an md member, or the single data disk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberFacts {
    /// Kernel name: "sdc", "nvme0n2", "vdb".
    pub name: String,
    /// `queue/rotational` as the kernel reports it.
    pub rotational: bool,
    /// Number of blk-mq hardware queues (`/sys/block/X/mq/*`); 1 = single-queue.
    pub hw_queues: u32,
    /// Schedulers the kernel offers for this disk (`queue/scheduler`); empty = unknown.
    pub schedulers: Vec<String>,
    /// Sustained (not burst) bandwidth cap in MB/s (Azure IMDS `bytesPerSecondThrottle`, or the
    /// profile's `disk-mbps`).
    pub cap_mbps: Option<u64>,
    /// Sustained IOPS cap (Azure IMDS `opsPerSecondThrottle`, or the profile's `disk-iops`).
    pub cap_iops: Option<u64>,
    /// Where the caps come from ("azure-imds", "profile", "--disk-iops"), for the explanation.
    pub cap_source: Option<String>,
    /// Azure `storageAccountType` (Premium_LRS, StandardSSD_LRS, Standard_LRS, PremiumV2_LRS, …).
    pub account_type: Option<String>,
}

impl MemberFacts {
    pub fn mq(&self) -> bool {
        self.hw_queues > 1
    }
}

/// The md array the filesystem sits on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdFacts {
    /// Kernel name: "md127".
    pub name: String,
    /// Array UUID, lowercase dashed form (`md/uuid` in sysfs; what blkid calls ID_FS_UUID on a
    /// member). Used by the udev rules so they survive device renames and a move to a new VM.
    pub uuid: Option<String>,
    /// Chunk size in bytes (`md/chunk_size`).
    pub chunk_bytes: Option<u64>,
}

/// Everything the tuning computation looks at. Pure data, built by [`gather`] or by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TuneFacts {
    pub ram_bytes: u64,
    pub cpus: u32,
    /// Data disks, in array member order.
    pub members: Vec<MemberFacts>,
    pub md: Option<MdFacts>,
    /// UUID of the filesystem on the array (or on the single disk), for the single-disk udev match.
    pub fs_uuid: Option<String>,
    /// Running kernel (major, minor).
    pub kernel: (u32, u32),
    pub engine: Engine,
    /// Installed server version, when known (dpkg status, `/etc/postgresql/<v>`).
    pub db_version: Option<Version>,
    /// Directory the database drop-in goes to (in-host absolute path), when one exists.
    pub db_config_dir: Option<String>,
    pub mount_point: Option<String>,
    pub fs_type: Option<String>,
    /// The VM's uncached disk IOPS cap, when known (it bounds what a stripe can deliver).
    pub vm_cap_iops: Option<u64>,
    /// Size of the device the data filesystem is on (the array, or the single disk): database
    /// files sized from RAM/CPUs (the redo log) must also fit there.
    #[serde(default)]
    pub data_bytes: Option<u64>,
}

/// Per-disk caps and type, from Azure IMDS or the profile (wired by the lead).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskCaps {
    pub mbps: Option<u64>,
    pub iops: Option<u64>,
    pub account_type: Option<String>,
    pub source: Option<String>,
}

/// What the caller knows better than sysfs.
#[derive(Debug, Clone, Default)]
pub struct GatherHints {
    /// Engine from the profile; `None` → guessed from what is installed.
    pub engine: Option<Engine>,
    /// md device to tune ("md127"); `None` → the single running raid0 array, if any.
    pub md: Option<String>,
    /// Data disks to tune when there is no array (single-disk profile, or before creation).
    pub disks: Vec<String>,
    /// Caps per disk kernel name (Azure IMDS matched by LUN).
    pub per_disk: BTreeMap<String, DiskCaps>,
    /// Caps for disks without an entry in `per_disk` (profile `disk-mbps` / `disk-iops`).
    pub default_caps: DiskCaps,
    pub vm_cap_iops: Option<u64>,
}

/// Gather [`TuneFacts`] from a host (live or a fake tree).
pub fn gather(host: &Host, hints: &GatherHints) -> Result<TuneFacts> {
    let (ram_bytes, cpus) = ram_and_cpus(host)?;
    let kernel = read_trimmed(&host.proc_("sys/kernel/osrelease"))
        .and_then(|s| parse_kernel(&s))
        .unwrap_or((0, 0));

    let md = match &hints.md {
        Some(name) => {
            let name = resolve_dev(host, name);
            if !host.sys(&format!("block/{name}/md")).is_dir() {
                bail!(
                    "{name} is not an md array here ({} missing)",
                    host.sys(&format!("block/{name}/md")).display()
                );
            }
            Some(name)
        }
        None if hints.disks.is_empty() => find_raid0(host)?,
        None => None,
    };

    let mut member_names: Vec<String> = match &md {
        Some(name) => md_members(host, name)?,
        None => hints.disks.iter().map(|d| resolve_dev(host, d)).collect(),
    };
    if member_names.is_empty() {
        bail!(
            "no data disks to tune: no running md raid0 array found under {} and no disk named \
             (use --md NAME or --disk NAME)",
            host.sys("block").display()
        );
    }
    member_names.dedup();

    let mut members = Vec::new();
    for name in &member_names {
        if !host.sys(&format!("block/{name}")).exists() {
            bail!(
                "disk {name} not found ({} missing)",
                host.sys(&format!("block/{name}")).display()
            );
        }
        let caps = hints.per_disk.get(name).unwrap_or(&hints.default_caps);
        members.push(member_facts(host, name, caps));
    }

    let md_facts = md.as_ref().map(|name| MdFacts {
        name: name.clone(),
        uuid: host.block_attr(name, "md/uuid"),
        chunk_bytes: host
            .block_attr(name, "md/chunk_size")
            .and_then(|s| s.parse().ok()),
    });

    let fs_dev = md.clone().or_else(|| {
        if member_names.len() == 1 {
            Some(member_names[0].clone())
        } else {
            None
        }
    });
    let (mount_point, fs_type) = match &fs_dev {
        Some(d) => find_mount(host, d),
        None => (None, None),
    };
    let fs_uuid = fs_dev.as_deref().and_then(|d| find_fs_uuid(host, d));
    let data_bytes = fs_dev
        .as_deref()
        .and_then(|d| host.block_attr(d, "size"))
        .and_then(|s| s.parse::<u64>().ok())
        .map(|sectors| sectors * 512)
        .filter(|&b| b > 0);

    let engine = hints.engine.unwrap_or_else(|| guess_engine(host));
    let db_version = db_version(host, engine);
    let db_config_dir = db_config_dir(host, engine, db_version);

    Ok(TuneFacts {
        ram_bytes,
        cpus,
        members,
        md: md_facts,
        fs_uuid,
        kernel,
        engine,
        db_version,
        db_config_dir,
        mount_point,
        fs_type,
        vm_cap_iops: hints.vm_cap_iops,
        data_bytes,
    })
}

/// "sdc", "/dev/sdc", "/dev/md/data", "/dev/disk/by-id/..." → the kernel name, following
/// links under the host root.
fn resolve_dev(host: &Host, s: &str) -> String {
    let base = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    if s.contains('/') {
        if let Some(n) = fs::canonicalize(host.path(s)).ok().and_then(|p| base(&p)) {
            return n;
        }
    }
    base(Path::new(s)).unwrap_or_else(|| s.to_string())
}

fn ram_and_cpus(host: &Host) -> Result<(u64, u32)> {
    if host.is_live() {
        let mut sys = sysinfo::System::new().context("reading the memory size (sysinfo)")?;
        sys.refresh_memory();
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        return Ok((sys.total_memory(), cpus));
    }
    let meminfo = host.proc_("meminfo");
    let text =
        fs::read_to_string(&meminfo).with_context(|| format!("reading {}", meminfo.display()))?;
    let ram = parse_meminfo_total(&text)
        .with_context(|| format!("no MemTotal line in {}", meminfo.display()))?;
    let online = host.sys("devices/system/cpu/online");
    let cpus = read_trimmed(&online)
        .and_then(|s| parse_cpu_list(&s))
        .with_context(|| format!("reading the CPU list in {}", online.display()))?;
    Ok((ram, cpus))
}

/// `MemTotal:       32834460 kB` → bytes.
pub fn parse_meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// `0-3,6,8-9` → 7.
pub fn parse_cpu_list(s: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.trim().parse().ok()?;
                let b: u32 = b.trim().parse().ok()?;
                n += b.checked_sub(a)? + 1;
            }
            None => {
                part.trim().parse::<u32>().ok()?;
                n += 1;
            }
        }
    }
    (n > 0).then_some(n)
}

/// "6.1.0-28-amd64" → (6, 1).
pub fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The scheduler names offered in `queue/scheduler` ("[mq-deadline] kyber none").
pub fn parse_schedulers(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|t| t.trim_matches(|c| c == '[' || c == ']').to_string())
        .collect()
}

/// The selected value of a sysfs choice attribute ("always [madvise] never" → "madvise");
/// a plain value is returned trimmed.
pub fn selected_choice(s: &str) -> String {
    let s = s.trim();
    if let (Some(a), Some(b)) = (s.find('['), s.find(']')) {
        if a < b {
            return s[a + 1..b].to_string();
        }
    }
    s.to_string()
}

fn member_facts(host: &Host, name: &str, caps: &DiskCaps) -> MemberFacts {
    let hw_queues = fs::read_dir(host.sys(&format!("block/{name}/mq")))
        .map(|rd| rd.filter_map(|e| e.ok()).count() as u32)
        .unwrap_or(1)
        .max(1);
    MemberFacts {
        name: name.to_string(),
        rotational: host.block_attr(name, "queue/rotational").as_deref() == Some("1"),
        hw_queues,
        schedulers: host
            .block_attr(name, "queue/scheduler")
            .map(|s| parse_schedulers(&s))
            .unwrap_or_default(),
        cap_mbps: caps.mbps,
        cap_iops: caps.iops,
        cap_source: caps.source.clone(),
        account_type: caps.account_type.clone(),
    }
}

fn find_raid0(host: &Host) -> Result<Option<String>> {
    let dir = host.sys("block");
    let Ok(rd) = fs::read_dir(&dir) else {
        return Ok(None);
    };
    let mut found: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("md"))
        .filter(|n| host.block_attr(n, "md/level").as_deref() == Some("raid0"))
        .filter(|n| {
            !matches!(
                host.block_attr(n, "md/array_state").as_deref(),
                Some("inactive") | Some("clear")
            )
        })
        .collect();
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => bail!(
            "several raid0 arrays are running ({}); name the one to tune with --md",
            found.join(", ")
        ),
    }
}

/// Whole-disk names of an array's members, in role order when sysfs tells it.
fn md_members(host: &Host, md: &str) -> Result<Vec<String>> {
    let dir = host.sys(&format!("block/{md}/md"));
    let rd = fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
    let mut by_role: Vec<(u32, String)> = Vec::new();
    for e in rd.filter_map(|e| e.ok()) {
        let fname = e.file_name().to_string_lossy().into_owned();
        let Some(dev) = fname.strip_prefix("dev-") else {
            continue;
        };
        let role = read_trimmed(&e.path().join("slot"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(u32::MAX);
        by_role.push((role, whole_disk(host, dev)));
    }
    if by_role.is_empty() {
        // Fall back to holders' view: /sys/block/mdX/slaves/*.
        if let Ok(rd) = fs::read_dir(host.sys(&format!("block/{md}/slaves"))) {
            for e in rd.filter_map(|e| e.ok()) {
                let n = e.file_name().to_string_lossy().into_owned();
                by_role.push((u32::MAX, whole_disk(host, &n)));
            }
        }
    }
    by_role.sort();
    Ok(by_role.into_iter().map(|(_, n)| n).collect())
}

/// A partition name ("sdb1") → its disk ("sdb"); a disk name is returned as is.
fn whole_disk(host: &Host, name: &str) -> String {
    if host.sys(&format!("block/{name}")).exists() {
        return name.to_string();
    }
    if let Ok(rd) = fs::read_dir(host.sys("block")) {
        for e in rd.filter_map(|e| e.ok()) {
            if e.path().join(name).is_dir() {
                return e.file_name().to_string_lossy().into_owned();
            }
        }
    }
    name.to_string()
}

/// Mount point and filesystem type of the device `dev` (kernel name), from /proc/mounts.
fn find_mount(host: &Host, dev: &str) -> (Option<String>, Option<String>) {
    let Some(text) = fs::read_to_string(host.proc_("mounts")).ok() else {
        return (None, None);
    };
    for m in crate::fs::mounts::parse(&text) {
        let src = Path::new(&m.source);
        let base = src.file_name().map(|s| s.to_string_lossy().into_owned());
        let resolved = fs::canonicalize(host.path(src))
            .ok()
            .and_then(|p| p.file_name().map(|s| s.to_string_lossy().into_owned()));
        if base.as_deref() == Some(dev) || resolved.as_deref() == Some(dev) {
            return (Some(m.target), Some(m.fstype));
        }
    }
    (None, None)
}

/// Filesystem UUID of `dev`: from the by-uuid links, else read from the device itself (udev
/// may not have probed a filesystem made a moment ago, and md devices get no by-uuid link
/// without mdadm's or dbhost's rule). The same answer every run, so rendered files are stable.
pub(crate) fn find_fs_uuid(host: &Host, dev: &str) -> Option<String> {
    if let Ok(rd) = fs::read_dir(host.dev("disk/by-uuid")) {
        for e in rd.filter_map(|e| e.ok()) {
            let Ok(target) = fs::read_link(e.path()) else {
                continue;
            };
            if target.file_name().map(|s| s.to_string_lossy().into_owned()) == Some(dev.to_string())
            {
                return Some(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    use std::io::Read;
    let mut head = Vec::with_capacity(crate::fs::probe::PROBE_LEN);
    fs::File::open(host.dev(dev))
        .ok()?
        .take(crate::fs::probe::PROBE_LEN as u64)
        .read_to_end(&mut head)
        .ok()?;
    crate::fs::probe::identify(&head).map(|(_, uuid)| uuid)
}

fn guess_engine(host: &Host) -> Engine {
    let pkgs = dpkg_installed(host);
    let has = |p: &str| pkgs.keys().any(|k| k.starts_with(p));
    if has("mariadb-server") || host.etc("mysql/mariadb.conf.d").is_dir() {
        Engine::Mariadb
    } else if has("mysql-server") || has("mysql-community-server") {
        Engine::Mysql
    } else if has("postgresql") || host.etc("postgresql").is_dir() {
        Engine::Postgresql
    } else if host.etc("mysql/mysql.conf.d").is_dir() {
        Engine::Mysql
    } else {
        Engine::None
    }
}

/// Installed packages and versions from the dpkg status file.
fn dpkg_installed(host: &Host) -> BTreeMap<String, String> {
    match fs::read_to_string(host.var("lib/dpkg/status")) {
        Ok(text) => parse_dpkg_status(&text),
        Err(_) => BTreeMap::new(),
    }
}

/// Installed packages and their versions in the text of a dpkg status file.
pub fn parse_dpkg_status(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stanza in text.split("\n\n") {
        let mut name = None;
        let mut version = None;
        let mut installed = false;
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                name = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("Version: ") {
                version = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("Status: ") {
                installed = v.trim().ends_with(" installed");
            }
        }
        if let (Some(n), Some(v), true) = (name, version, installed) {
            out.insert(n, v);
        }
    }
    out
}

/// "1:10.11.6-0+deb12u1" → (10, 11, 6).
pub fn parse_pkg_version(v: &str) -> Option<Version> {
    let v = v.split_once(':').map(|(_, r)| r).unwrap_or(v);
    let mut it = v.split(|c: char| !c.is_ascii_digit());
    let a = it.next()?.parse().ok()?;
    let b = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let c = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    Some((a, b, c))
}

fn pg_versions(host: &Host) -> Vec<u32> {
    let mut v: Vec<u32> = fs::read_dir(host.etc("postgresql"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn db_version(host: &Host, engine: Engine) -> Option<Version> {
    let pkgs = dpkg_installed(host);
    let find = |prefixes: &[&str]| {
        prefixes.iter().find_map(|p| {
            pkgs.iter()
                .find(|(k, _)| k.starts_with(p))
                .and_then(|(_, v)| parse_pkg_version(v))
        })
    };
    match engine {
        Engine::Mariadb => find(&["mariadb-server-core", "mariadb-server"]),
        Engine::Mysql => find(&[
            "mysql-server-core",
            "mysql-community-server-core",
            "mysql-server",
            "mysql-community-server",
        ]),
        Engine::Postgresql => pg_versions(host).last().map(|&v| (v, 0, 0)),
        Engine::None => None,
    }
}

fn db_config_dir(host: &Host, engine: Engine, version: Option<Version>) -> Option<String> {
    let candidates: Vec<String> = match engine {
        Engine::Mariadb => vec!["mysql/mariadb.conf.d".into(), "my.cnf.d".into()],
        Engine::Mysql => vec!["mysql/mysql.conf.d".into(), "my.cnf.d".into()],
        Engine::Postgresql => {
            let v = version.map(|v| v.0)?;
            let mut clusters: Vec<String> = fs::read_dir(host.etc(&format!("postgresql/{v}")))
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            clusters.sort();
            // "main" first: Debian's default cluster.
            clusters.sort_by_key(|c| c != "main");
            clusters
                .into_iter()
                .map(|c| format!("postgresql/{v}/{c}/conf.d"))
                .collect()
        }
        Engine::None => vec![],
    };
    candidates
        .into_iter()
        .find(|rel| host.etc(rel).is_dir())
        .map(|rel| host.unroot(&host.etc(&rel)).to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(
            parse_meminfo_total("MemTotal:       32834460 kB\nMemFree: 1 kB\n"),
            Some(32834460 * 1024)
        );
        assert_eq!(parse_cpu_list("0-3,6,8-9"), Some(7));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_kernel("6.1.0-28-amd64"), Some((6, 1)));
        assert_eq!(parse_kernel("5.15.0"), Some((5, 15)));
        assert_eq!(
            parse_schedulers("[mq-deadline] kyber none"),
            vec!["mq-deadline", "kyber", "none"]
        );
        assert_eq!(selected_choice("always [madvise] never"), "madvise");
        assert_eq!(selected_choice(" none\n"), "none");
        assert_eq!(parse_pkg_version("1:10.11.6-0+deb12u1"), Some((10, 11, 6)));
        assert_eq!(
            parse_pkg_version("8.0.39-0ubuntu0.22.04.1"),
            Some((8, 0, 39))
        );
        let status =
            "Package: mariadb-server\nStatus: install ok installed\nVersion: 1:10.11.6\n\n\
                      Package: postgresql-15\nStatus: deinstall ok config-files\nVersion: 15.8\n\n\
                      Package: sudo\nVersion: 1.9\n";
        // Found by fuzzing (host_text): a kB count past 2^54 overflowed the byte count.
        assert_eq!(
            parse_meminfo_total("MemTotal: 18014398509481984 kB\n"),
            None
        );
        let pkgs = parse_dpkg_status(status);
        assert_eq!(pkgs.len(), 1, "{pkgs:?}");
        assert_eq!(pkgs["mariadb-server"], "1:10.11.6");
    }
}
