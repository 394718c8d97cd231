//! create / assemble / stop / examine: thin side effects around the pure decisions in
//! [`super::model`]. Every path goes through [`Host`]; every ioctl through [`super::sys`].
//!
//! Sequences follow MD.md §2.4 (assemble), §3 (create), §2.6 (stop) and mdadm's conventions for
//! coexisting with its udev rules (§4.2: `/run/mdadm/map.lock` flock, `creating-mdN` marker,
//! map line so `mdadm --detail --export` names `/dev/md/<name>`).

use super::model::{
    self, ArrayGroup, ArrayName, CreateDecision, CreatePlan, CreateRefusal, CreateRequest,
    GroupStatus, MemberFacts,
};
use super::superblock::{self, ArrayUuid, Found, SB_BYTES};
use super::sys;
use crate::exit::Failure;
use crate::host::{atomic_write, read_trimmed, CommandSpec, Exec, Host};
use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// Whether an action changed the system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "value", rename_all = "snake_case")]
pub enum Outcome<T> {
    Changed(T),
    Unchanged(T),
}

impl<T> Outcome<T> {
    pub fn value(&self) -> &T {
        match self {
            Outcome::Changed(v) | Outcome::Unchanged(v) => v,
        }
    }
    pub fn changed(&self) -> bool {
        matches!(self, Outcome::Changed(_))
    }
}

/// A running (or just started) array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArrayRef {
    /// Stable name: the array is `/dev/md/<name>`.
    pub name: String,
    /// Kernel name, e.g. "md127".
    pub devnm: String,
    pub uuid: ArrayUuid,
    /// `/dev/md/<name>` (absolute, in the host).
    pub link: PathBuf,
    /// Member kernel names.
    pub members: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Reading facts (works on fake host trees: sysfs files, /proc text, /dev entries as files)
// ---------------------------------------------------------------------------------------------

/// Kernel name of a device path given by the user (`/dev/disk/by-id/...`, `/dev/sdb`, `sdb`).
pub fn kernel_name(host: &Host, given: &str) -> Result<String> {
    let p = if given.starts_with('/') {
        host.path(given)
    } else {
        host.dev(given)
    };
    let real = fs::canonicalize(&p).with_context(|| format!("resolving {given}"))?;
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow!("{given} resolves to {} which has no name", real.display()))?;
    if !host.sys(&format!("class/block/{name}")).exists() {
        bail!("{given} ({name}) is not a block device known to the kernel (no sysfs entry)");
    }
    Ok(name)
}

fn list_dir(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn parse_devnum(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Partitions of a whole disk (sysfs children with a `partition` file).
fn partitions_of(host: &Host, kname: &str) -> Vec<String> {
    list_dir(&host.sys(&format!("class/block/{kname}")))
        .into_iter()
        .filter(|c| {
            c.starts_with(kname)
                && host
                    .sys(&format!("class/block/{kname}/{c}/partition"))
                    .exists()
        })
        .collect()
}

/// Kernel names that a `/proc/mounts` or `/proc/swaps` source refers to.
fn source_kname(host: &Host, src: &str) -> Option<String> {
    if !src.starts_with('/') {
        return None;
    }
    let p = host.path(src);
    let real = fs::canonicalize(&p).unwrap_or(p);
    real.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// Mount points whose source is one of `knames` (from `/proc/mounts`).
pub fn mounts_of(host: &Host, knames: &[String]) -> Vec<String> {
    let text = fs::read_to_string(host.proc_("mounts")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let src = it.next()?;
            let mnt = it.next()?;
            let k = source_kname(host, src)?;
            knames.contains(&k).then(|| mnt.replace("\\040", " "))
        })
        .collect()
}

fn swaps_of(host: &Host, knames: &[String]) -> bool {
    let text = fs::read_to_string(host.proc_("swaps")).unwrap_or_default();
    text.lines().skip(1).any(|l| {
        l.split_whitespace()
            .next()
            .and_then(|s| source_kname(host, s))
            .is_some_and(|k| knames.contains(&k))
    })
}

/// Size in bytes of a device or image file (opened read-only).
pub fn content_size_of(path: &Path) -> Result<u64> {
    let f = File::open(path).with_context(|| format!("opening {} for reading", path.display()))?;
    content_size(&f, path)
}

/// Size in bytes of an open device or image file.
fn content_size(f: &File, path: &Path) -> Result<u64> {
    let md = f
        .metadata()
        .with_context(|| format!("stat {}", path.display()))?;
    if md.file_type().is_block_device() {
        Ok(sys::block_size_bytes(f, &path.display().to_string())?)
    } else {
        Ok(md.len())
    }
}

/// Scan an open device/image: md superblocks everywhere, non-zero content in first/last MiB.
fn read_content(
    f: &mut File,
    path: &Path,
    size: u64,
) -> Result<(Vec<Found>, Option<String>, Option<String>)> {
    let found = superblock::scan(f, size).with_context(|| format!("reading {}", path.display()))?;
    let head_len = size.min(MIB) as usize;
    let mut head = vec![0u8; head_len];
    f.seek(SeekFrom::Start(0))
        .and_then(|_| f.read_exact(&mut head))
        .with_context(|| format!("reading the first MiB of {}", path.display()))?;
    // md superblocks are reported separately: blank their spots before describing the rest.
    let mask = |buf: &mut [u8], start: u64| {
        for fo in &found {
            let (o, l) = (fo.offset, SB_BYTES as u64);
            if o + l > start && o < start + buf.len() as u64 {
                let a = o.saturating_sub(start) as usize;
                let b = ((o + l - start) as usize).min(buf.len());
                buf[a..b].fill(0);
            }
        }
    };
    mask(&mut head, 0);
    let head_desc = model::describe_head(&head);
    let tail_desc = if size > MIB {
        let start = size - MIB;
        let mut tail = vec![0u8; MIB as usize];
        f.seek(SeekFrom::Start(start))
            .and_then(|_| f.read_exact(&mut tail))
            .with_context(|| format!("reading the last MiB of {}", path.display()))?;
        mask(&mut tail, start);
        model::describe_tail(&tail, start)
    } else {
        None
    };
    Ok((found, head_desc, tail_desc))
}

/// Everything create/assemble need to know about one device, read without writing.
pub fn member_facts(host: &Host, given: &str) -> Result<MemberFacts> {
    let kname = kernel_name(host, given)?;
    let sysd = |a: &str| host.sys(&format!("class/block/{kname}/{a}"));
    let (major, minor) = read_trimmed(&sysd("dev"))
        .as_deref()
        .and_then(parse_devnum)
        .ok_or_else(|| anyhow!("{given} ({kname}): cannot read its major:minor from sysfs"))?;
    let lbs = read_trimmed(&sysd("queue/logical_block_size"))
        .or_else(|| {
            // A partition: the queue lives on the parent disk.
            let parent = fs::canonicalize(sysd(""))
                .ok()?
                .parent()?
                .join("queue/logical_block_size");
            read_trimmed(&parent)
        })
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    let partitions = partitions_of(host, &kname);
    let mut holders = list_dir(&sysd("holders"));
    for p in &partitions {
        holders.extend(list_dir(
            &host.sys(&format!("class/block/{kname}/{p}/holders")),
        ));
    }
    let mut all = vec![kname.clone()];
    all.extend(partitions.iter().cloned());
    let mountpoints = mounts_of(host, &all);
    let swap = swaps_of(host, &all);
    let node = host.dev(&kname);
    let mut f =
        File::open(&node).with_context(|| format!("opening {} for reading", node.display()))?;
    let size_bytes = match content_size(&f, &node) {
        Ok(s) if s > 0 => s,
        _ => {
            read_trimmed(&sysd("size"))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| anyhow!("{given} ({kname}): cannot read its size"))?
                * 512
        }
    };
    let (found, head, tail) = read_content(&mut f, &node, size_bytes)?;
    Ok(MemberFacts {
        given: given.to_string(),
        kname,
        major,
        minor,
        size_bytes,
        logical_block_size: lbs,
        partitions,
        holders,
        mountpoints,
        swap,
        found,
        head,
        tail,
    })
}

/// An md array the kernel knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunningMd {
    pub devnm: String,
    pub uuid: Option<ArrayUuid>,
    pub array_state: Option<String>,
    pub members: Vec<String>,
}

impl RunningMd {
    /// Running read-write or read-only (not inactive/clear).
    pub fn active(&self) -> bool {
        matches!(
            self.array_state.as_deref(),
            Some("clean" | "active" | "active-idle" | "readonly" | "read-auto" | "write-pending")
        )
    }
}

/// Every `md*` block device with its UUID, state and members (from sysfs).
pub fn running_arrays(host: &Host) -> Vec<RunningMd> {
    list_dir(&host.sys("block"))
        .into_iter()
        .filter(|n| n.starts_with("md"))
        .map(|devnm| {
            let a = |x: &str| read_trimmed(&host.sys(&format!("block/{devnm}/md/{x}")));
            RunningMd {
                uuid: a("uuid").as_deref().and_then(ArrayUuid::parse),
                array_state: a("array_state"),
                members: list_dir(&host.sys(&format!("block/{devnm}/slaves"))),
                devnm,
            }
        })
        .collect()
}

/// Block devices (disks and partitions) that may carry md members: everything in
/// `/sys/class/block` except md, ram, zram, optical and floppy devices.
pub fn candidate_devices(host: &Host) -> Vec<String> {
    list_dir(&host.sys("class/block"))
        .into_iter()
        .filter(|n| {
            !["md", "ram", "zram", "sr", "fd"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .filter(|n| {
            read_trimmed(&host.sys(&format!("class/block/{n}/size")))
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|s| s >= 16)
        })
        .collect()
}

/// Read facts for every candidate device; unreadable ones are listed with the reason.
pub fn scan_devices(host: &Host) -> (Vec<MemberFacts>, Vec<String>) {
    let mut ok = Vec::new();
    let mut errs = Vec::new();
    for n in candidate_devices(host) {
        match member_facts(host, &n) {
            Ok(f) => ok.push(f),
            Err(e) => errs.push(format!("{n}: {e:#}")),
        }
    }
    (ok, errs)
}

fn hostname(host: &Host) -> Option<String> {
    read_trimmed(&host.proc_("sys/kernel/hostname"))
}

fn kernel_release(host: &Host) -> Option<String> {
    read_trimmed(&host.proc_("sys/kernel/osrelease"))
}

/// mdadm (and its udev rules) installed: then follow its locking convention.
pub fn mdadm_present(host: &Host) -> bool {
    [
        "/usr/sbin/mdadm",
        "/sbin/mdadm",
        "/usr/lib/udev/rules.d/64-md-raid-assembly.rules",
        "/lib/udev/rules.d/64-md-raid-assembly.rules",
    ]
    .iter()
    .any(|p| host.path(p).exists())
}

// ---------------------------------------------------------------------------------------------
// Side effects
// ---------------------------------------------------------------------------------------------

fn require_live(host: &Host, what: &str) -> Result<()> {
    if !host.is_live() {
        return Err(Failure::Usage(format!(
            "{what} talks to the kernel and cannot run against a host tree ({})",
            host.root().display()
        ))
        .into());
    }
    Ok(())
}

/// Load md_mod and raid0 when missing; a kernel without md gets a clear error.
pub fn ensure_modules(host: &Host, exec: &dyn Exec) -> Result<()> {
    for (module, needed) in [("md_mod", true), ("raid0", false)] {
        if host.sys(&format!("module/{module}")).exists() {
            continue;
        }
        let out = exec.output(&CommandSpec::new("modprobe").arg(module));
        if !host.sys(&format!("module/{module}")).exists() {
            let why = match out {
                Ok(o) => o.stderr.trim().to_string(),
                Err(e) => format!("{e:#}"),
            };
            if needed {
                bail!(
                    "this kernel has no md RAID support: {} is missing and `modprobe {module}` failed ({why}); install the kernel's md modules (CONFIG_BLK_DEV_MD)",
                    host.sys(&format!("module/{module}")).display()
                );
            }
            // raid0 is auto-loaded by the kernel on RUN_ARRAY (request_module "md-level-0").
            tracing::warn!("modprobe {module} failed ({why}); relying on the kernel's autoload");
        }
    }
    Ok(())
}

/// mdadm's map lock (`/run/mdadm/map.lock`, flock LOCK_EX). Held while members are written and
/// added so `mdadm --incremental` from udev cannot grab them. The owner unlinks the lock file
/// before closing it, as mdadm does.
pub struct MapLock {
    path: PathBuf,
    _lock: nix::fcntl::Flock<File>,
}

impl MapLock {
    pub fn take(host: &Host) -> Result<MapLock> {
        let dir = host.run("mdadm");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("map.lock");
        loop {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            let lock = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
                .map_err(|(_, e)| anyhow!("flock {}: {e}", path.display()))?;
            // The previous owner may have unlinked it between our open and flock.
            let linked = fs::metadata(&path).is_ok();
            if linked {
                return Ok(MapLock { path, _lock: lock });
            }
        }
    }
}

impl Drop for MapLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Replace our line in `/run/mdadm/map` (write `map.new`, rename), or remove it.
fn write_map(host: &Host, devnm: &str, line: Option<&str>) -> Result<()> {
    let p = host.run("mdadm/map");
    let old = fs::read_to_string(&p).unwrap_or_default();
    let new = model::map_update(&old, devnm, line);
    if new == old {
        return Ok(());
    }
    atomic_write(&p, new.as_bytes(), 0o600).with_context(|| format!("writing {}", p.display()))?;
    Ok(())
}

/// Allocate an md device: `mdN` for a numeric name, else the highest free number from 127 down
/// (mdadm's order), via `/sys/module/md_mod/parameters/new_array`; falls back to open-to-create
/// of a `9:N` node on kernels without that parameter.
fn allocate_md(host: &Host, numeric: Option<u32>) -> Result<String> {
    let new_array = host.sys("module/md_mod/parameters/new_array");
    for _ in 0..16 {
        let mut taken: BTreeSet<u32> = list_dir(&host.sys("block"))
            .iter()
            .filter_map(|n| n.strip_prefix("md")?.parse().ok())
            .collect();
        let map = fs::read_to_string(host.run("mdadm/map")).unwrap_or_default();
        taken.extend(map.lines().filter_map(|l| {
            l.split_whitespace()
                .next()?
                .strip_prefix("md")?
                .parse::<u32>()
                .ok()
        }));
        let n = match numeric {
            Some(n) if taken.contains(&n) => {
                bail!("md{n} already exists; numeric array names map to mdN");
            }
            Some(n) => n,
            None => {
                model::pick_free_md(&taken).ok_or_else(|| anyhow!("no free md device number"))?
            }
        };
        let devnm = format!("md{n}");
        if new_array.exists() {
            match fs::write(&new_array, &devnm) {
                Ok(()) => return Ok(devnm),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("writing {devnm} to {}", new_array.display()))
                }
            }
        } else {
            let node = host.dev(&devnm);
            if !node.exists() {
                nix::sys::stat::mknod(
                    &node,
                    nix::sys::stat::SFlag::S_IFBLK,
                    nix::sys::stat::Mode::from_bits_truncate(0o600),
                    libc::makedev(sys::MD_MAJOR, n),
                )
                .with_context(|| format!("mknod {}", node.display()))?;
            }
            return Ok(devnm);
        }
    }
    bail!("could not allocate an md device (new_array kept answering EEXIST)")
}

/// Open `/dev/mdN` exclusively, waiting briefly for devtmpfs to create the node.
fn open_md(host: &Host, devnm: &str, excl: bool) -> Result<File> {
    let node = host.dev(devnm);
    let n: u32 = devnm.trim_start_matches("md").parse().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !node.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if !node.exists() {
        nix::sys::stat::mknod(
            &node,
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            libc::makedev(sys::MD_MAJOR, n),
        )
        .with_context(|| format!("mknod {}", node.display()))?;
    }
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    if excl {
        o.custom_flags(libc::O_EXCL);
    }
    // EBUSY can be a transient udev/blkid probe: retry like mdadm (25 × 200 ms).
    let mut last = None;
    for _ in 0..25 {
        match o.open(&node) {
            Ok(f) => return Ok(f),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                last = Some(e);
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e).with_context(|| format!("opening {}", node.display())),
        }
    }
    Err(last.expect("retried")).with_context(|| format!("opening {} exclusively", node.display()))
}

/// Open a member `O_RDWR|O_EXCL` (fails with EBUSY if anything holds it).
fn open_member_excl(host: &Host, kname: &str, write: bool) -> Result<File> {
    let node = host.dev(kname);
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_EXCL)
        .open(&node)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::EBUSY) {
                anyhow!(Failure::Refused(format!(
                    "{} is in use (held exclusively by a mount, LVM, device-mapper, multipath or another md array)",
                    node.display()
                )))
            } else {
                anyhow!(e).context(format!("opening {} exclusively", node.display()))
            }
        })
}

fn zero_range(f: &mut File, node: &str, off: u64, len: u64) -> Result<()> {
    let zeros = vec![0u8; MIB as usize];
    f.seek(SeekFrom::Start(off))
        .with_context(|| format!("seeking {node} to {off}"))?;
    let mut left = len;
    while left > 0 {
        let n = left.min(MIB) as usize;
        f.write_all(&zeros[..n])
            .with_context(|| format!("zeroing {node} at byte {}", off + len - left))?;
        left -= n as u64;
    }
    Ok(())
}

/// Zero the metadata regions of a whole device that `--wipe` allowed clearing (the same ranges
/// a new member gets: first and last MiB, every md superblock location), with the device opened
/// exclusively (the kernel refuses while anything mounts or holds it), then fsync.
pub fn clear_metadata(host: &Host, device: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let p = host.path(device);
    let node = p.display().to_string();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_EXCL)
        .open(&p)
        .with_context(|| format!("opening {node} exclusively to clear it"))?;
    let size = f
        .seek(SeekFrom::End(0))
        .with_context(|| format!("reading the size of {node}"))?;
    for (off, len) in model::wipe_ranges(size) {
        zero_range(&mut f, &node, off, len)?;
    }
    f.sync_all().with_context(|| format!("fsync {node}"))?;
    let _ = sys::flush_buffers(&f, &node);
    Ok(())
}

/// Wipe and write one member's superblock, fsync, flush, close.
fn write_member(host: &Host, m: &model::MemberPlan) -> Result<()> {
    let node = host.dev(&m.facts.kname).display().to_string();
    let mut f = open_member_excl(host, &m.facts.kname, true)?;
    for (off, len) in &m.wipe {
        zero_range(&mut f, &node, *off, *len)?;
    }
    f.seek(SeekFrom::Start(super::geometry::SB_OFFSET_V12 * 512))
        .and_then(|_| f.write_all(&m.superblock.encode()))
        .with_context(|| format!("writing the md superblock to {node}"))?;
    f.sync_all().with_context(|| format!("fsync {node}"))?;
    let _ = sys::flush_buffers(&f, &node);
    Ok(())
}

/// The kernel steps on an allocated, exclusively opened md device: SET_ARRAY_INFO, ADD_NEW_DISK
/// per member (in order), RUN_ARRAY. On failure the half-built array is stopped.
fn start_array(
    md: &File,
    mdnode: &str,
    minor_version: u8,
    members: &[(String, u32, u32)],
) -> Result<()> {
    let steps = || -> Result<()> {
        sys::set_array_info_v1(md, mdnode, i32::from(minor_version))?;
        for (i, (kname, maj, min)) in members.iter().enumerate() {
            sys::add_new_disk(md, mdnode, i as i32, *maj, *min).map_err(|e| {
                let hint = match e.errno {
                    Errno::EBUSY => " (the member is held by something else)",
                    Errno::EINVAL => " (the kernel rejected its superblock: see dmesg; a kernel older than 5.4 refuses the RAID0 layout feature)",
                    _ => "",
                };
                anyhow!("{e}{hint}").context(format!("adding member {kname} ({maj}:{min})"))
            })?;
        }
        sys::run_array(md, mdnode).map_err(|e| {
            let hint = match e.errno {
                Errno::EOPNOTSUPP => " (multi-zone RAID0 without a layout: set raid0.default_layout or recreate on a kernel >= 5.4)",
                Errno::EINVAL => " (too few members, or chunk not a multiple of the block size: see dmesg)",
                _ => "",
            };
            anyhow!("{e}{hint}")
        })?;
        let _ = sys::restart_array_rw(md, mdnode);
        Ok(())
    };
    if let Err(e) = steps() {
        if let Err(stop) = sys::stop_array(md, mdnode) {
            return Err(e.context(format!("and cleaning up failed too: {stop}")));
        }
        return Err(e);
    }
    Ok(())
}

/// Wait (bounded) until `md/array_state` says the array runs.
fn verify_running(host: &Host, devnm: &str) -> Result<String> {
    let p = host.sys(&format!("block/{devnm}/md/array_state"));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = read_trimmed(&p).unwrap_or_default();
        if matches!(
            st.as_str(),
            "clean" | "active" | "active-idle" | "read-auto"
        ) {
            return Ok(st);
        }
        if Instant::now() >= deadline {
            bail!("{devnm} did not come up: md/array_state is {st:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `/dev/md/<name>` → `../mdN`, unless udev already made it. An existing link to another
/// device is an error (two arrays claiming one name).
fn ensure_link(host: &Host, name: &str, devnm: &str) -> Result<PathBuf> {
    let dir = host.dev("md");
    let link = dir.join(name);
    let want = PathBuf::from(format!("../{devnm}"));
    match fs::read_link(&link) {
        Ok(t) if t.file_name() == Some(std::ffi::OsStr::new(devnm)) => {}
        Ok(t) => bail!(
            "{} already points to {}, not {devnm}: another array uses the name {name}",
            link.display(),
            t.display()
        ),
        Err(_) => {
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let tmp = dir.join(format!(".{name}.dbhost-tmp"));
            let _ = fs::remove_file(&tmp);
            std::os::unix::fs::symlink(&want, &tmp)
                .and_then(|_| fs::rename(&tmp, &link))
                .with_context(|| format!("creating {}", link.display()))?;
        }
    }
    Ok(host.unroot(&link))
}

/// `/dev/md/<name>` as text in the host's namespace (for mdadm's map file).
fn link_text(host: &Host, name: &str) -> String {
    host.unroot(&host.dev(&format!("md/{name}")))
        .display()
        .to_string()
}

fn uevent_change(host: &Host, devnm: &str) {
    let _ = fs::write(host.sys(&format!("block/{devnm}/uevent")), "change");
}

/// Create a RAID-0 (MD.md §3) — or, when the members already are exactly this array, make sure
/// it runs (idempotent). Refusals carry exit code 3, usage errors 2.
pub fn create(host: &Host, exec: &dyn Exec, req: &CreateRequest) -> Result<Outcome<ArrayRef>> {
    require_live(host, "md create")?;
    ensure_modules(host, exec)?;
    let mut facts = Vec::new();
    for g in &req.members {
        facts.push(member_facts(host, g)?);
    }
    let release = kernel_release(host);
    let mut rand_err = None;
    let mut uuids = || match sys::random_uuid() {
        Ok(u) => u,
        Err(e) => {
            rand_err = Some(e);
            [0; 16]
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let decision = plan_create_checked(req, &facts, release.as_deref(), &mut uuids, now)?;
    if let Some(e) = rand_err {
        return Err(e).context("reading random bytes for the array UUID");
    }
    match decision {
        CreateDecision::Exists(g) => {
            tracing::info!(
                "members already form array {}; assembling if needed",
                g.set_name
            );
            assemble_group(host, &g, &req.name.to_string())
        }
        CreateDecision::Create(plan) => {
            if let Some(devnm) = resolve_md(host, plan.name.as_str()) {
                bail!(Failure::Refused(format!(
                    "the name {} is already used by the running array {devnm}; stop it (`dbhost md stop {}`) or choose another name",
                    plan.name, plan.name
                )));
            }
            // O_EXCL probe: nothing may hold a member; close again before ADD_NEW_DISK.
            for m in &plan.members {
                drop(open_member_excl(host, &m.facts.kname, false)?);
            }
            create_from_plan(host, &plan)
        }
    }
}

fn plan_create_checked(
    req: &CreateRequest,
    facts: &[MemberFacts],
    release: Option<&str>,
    uuids: &mut dyn FnMut() -> [u8; 16],
    now: u64,
) -> Result<CreateDecision> {
    model::plan_create(req, facts, release, uuids, now).map_err(|e| match e {
        CreateRefusal::Usage(m) => Failure::Usage(m).into(),
        CreateRefusal::Refused(m) => Failure::Refused(m).into(),
    })
}

fn create_from_plan(host: &Host, plan: &CreatePlan) -> Result<Outcome<ArrayRef>> {
    let name = plan.name.to_string();
    let mdadm = mdadm_present(host);
    let lock = if mdadm {
        Some(MapLock::take(host)?)
    } else {
        None
    };
    let devnm = allocate_md(host, plan.name.numeric()).context("allocating the md device")?;
    let mdnode = host.dev(&devnm).display().to_string();
    let marker = host.run(&format!("mdadm/creating-{devnm}"));
    if mdadm {
        let _ = fs::write(&marker, b"");
    }
    let result = (|| -> Result<()> {
        let md = open_md(host, &devnm, true)?;
        for m in &plan.members {
            if let Err(e) = write_member(host, m) {
                let _ = sys::stop_array(&md, &mdnode);
                return Err(e.context(format!("step: writing the superblock of {}", m.facts.given)));
            }
        }
        let members: Vec<(String, u32, u32)> = plan
            .members
            .iter()
            .map(|m| (m.facts.kname.clone(), m.facts.major, m.facts.minor))
            .collect();
        start_array(&md, &mdnode, 2, &members)
            .with_context(|| format!("starting {mdnode} (array {name})"))?;
        if mdadm {
            let line = model::map_line(&devnm, 2, &plan.spec.set_uuid, &link_text(host, &name));
            write_map(host, &devnm, Some(&line))?;
        }
        Ok(())
    })();
    drop(lock);
    let _ = fs::remove_file(&marker);
    result?;
    verify_running(host, &devnm)?;
    clear_md_signatures(host, &devnm)?;
    let link = ensure_link(host, &name, &devnm)?;
    uevent_change(host, &devnm);
    Ok(Outcome::Changed(ArrayRef {
        name,
        devnm,
        uuid: plan.spec.set_uuid,
        link,
        members: plan.members.iter().map(|m| m.facts.kname.clone()).collect(),
    }))
}

/// Zero the first and last MiB of a NEW md device, so data left on the members (an old
/// filesystem at the same data offset) does not show through as a stale signature.
fn clear_md_signatures(host: &Host, devnm: &str) -> Result<()> {
    let node = host.dev(devnm);
    let nodes = node.display().to_string();
    let mut f = OpenOptions::new()
        .write(true)
        .read(true)
        .open(&node)
        .with_context(|| format!("opening {nodes}"))?;
    let size = sys::block_size_bytes(&f, &nodes)?;
    for (off, len) in model::wipe_ranges(size) {
        zero_range(&mut f, &nodes, off, len)?;
    }
    f.sync_all().with_context(|| format!("fsync {nodes}"))?;
    Ok(())
}

/// Start one complete group under `/dev/md/<name>`; unchanged when it already runs (started by
/// dbhost or by mdadm). Never writes to members.
pub fn assemble_group(host: &Host, g: &ArrayGroup, name: &str) -> Result<Outcome<ArrayRef>> {
    require_live(host, "md assemble")?;
    let mk = |devnm: String, link: PathBuf| ArrayRef {
        name: name.to_string(),
        devnm,
        uuid: g.uuid,
        link,
        members: g.kernel_names(),
    };
    let find_running = || {
        running_arrays(host)
            .into_iter()
            .find(|r| r.uuid == Some(g.uuid) && r.active())
    };
    if let Some(r) = find_running() {
        let link = ensure_link(host, name, &r.devnm)?;
        return Ok(Outcome::Unchanged(mk(r.devnm, link)));
    }
    if g.status() != GroupStatus::Complete {
        bail!(Failure::Refused(format!(
            "array {name} ({}) is not complete: {:?}",
            g.uuid,
            g.status()
        )));
    }
    let holders: Vec<String> = g
        .members
        .iter()
        .flat_map(|m| {
            list_dir(&host.sys(&format!("class/block/{}/holders", m.kname)))
                .into_iter()
                .map(move |h| format!("{} is held by {h}", m.kname))
        })
        .collect();
    if !holders.is_empty() {
        bail!(
            "cannot assemble {name}: {} (an inactive or partial array? stop it with `dbhost md stop`)",
            holders.join(", ")
        );
    }
    let mdadm = mdadm_present(host);
    let lock = if mdadm {
        Some(MapLock::take(host)?)
    } else {
        None
    };
    // mdadm may have started it while we waited for the lock.
    if let Some(r) = find_running() {
        drop(lock);
        let link = ensure_link(host, name, &r.devnm)?;
        return Ok(Outcome::Unchanged(mk(r.devnm, link)));
    }
    let numeric = name.parse::<u32>().ok().filter(|n| *n < 512);
    let devnm = allocate_md(host, numeric)?;
    let mdnode = host.dev(&devnm).display().to_string();
    let result = (|| -> Result<()> {
        let md = open_md(host, &devnm, true)?;
        let members: Vec<(String, u32, u32)> = g
            .add_order()
            .iter()
            .map(|m| (m.kname.clone(), m.major, m.minor))
            .collect();
        start_array(&md, &mdnode, g.minor_version, &members)
            .with_context(|| format!("assembling {mdnode} (array {name})"))?;
        if mdadm {
            let line = model::map_line(&devnm, g.minor_version, &g.uuid, &link_text(host, name));
            write_map(host, &devnm, Some(&line))?;
        }
        Ok(())
    })();
    drop(lock);
    result?;
    verify_running(host, &devnm)?;
    let link = ensure_link(host, name, &devnm)?;
    uevent_change(host, &devnm);
    Ok(Outcome::Changed(mk(devnm, link)))
}

/// Options for `dbhost assemble`.
#[derive(Debug, Clone, Default)]
pub struct AssembleOptions {
    /// Wait up to this long for incomplete arrays (and expected names) to become complete.
    pub wait: Duration,
    /// Array names that must be found (the boot unit passes the arrays dbhost created).
    pub expect: Vec<String>,
}

/// One array in the assemble report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssembleEntry {
    pub name: String,
    pub uuid: Option<ArrayUuid>,
    /// "assembled", "already_running", "incomplete", "inconsistent", "failed", "not_found".
    pub result: String,
    pub devnm: Option<String>,
    pub present_roles: Vec<u32>,
    pub missing_roles: Vec<u32>,
    pub devices: Vec<String>,
    pub detail: Option<String>,
    /// Counts for the exit code: no `--expect` given, or this name was expected.
    pub expected: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct AssembleReport {
    pub arrays: Vec<AssembleEntry>,
    /// Superblock groups ignored as leftovers on members of a complete array.
    pub stale: Vec<String>,
    pub unreadable: Vec<String>,
}

impl AssembleReport {
    /// 0 all good, 3 something incomplete/inconsistent/missing, 1 a failure.
    /// With `--expect`, only the expected arrays count (foreign leftovers are reported only).
    pub fn exit_code(&self) -> i32 {
        let counted = || self.arrays.iter().filter(|a| a.expected);
        if counted().any(|a| a.result == "failed") {
            crate::exit::ERROR
        } else if counted().any(|a| {
            matches!(
                a.result.as_str(),
                "incomplete" | "inconsistent" | "not_found"
            )
        }) {
            crate::exit::REFUSED
        } else {
            crate::exit::OK
        }
    }
}

/// What the scan found, before acting (pure given the facts).
pub struct ScanResult {
    pub groups: Vec<ArrayGroup>,
    pub stale: BTreeSet<ArrayUuid>,
    pub running: Vec<RunningMd>,
    pub unreadable: Vec<String>,
    pub hostname: Option<String>,
}

impl ScanResult {
    pub fn read(host: &Host) -> ScanResult {
        let (facts, unreadable) = scan_devices(host);
        let groups = model::group_members(facts.iter().map(|f| (f, f.v1())));
        let stale = model::stale_groups(&groups);
        ScanResult {
            groups,
            stale,
            running: running_arrays(host),
            unreadable,
            hostname: hostname(host),
        }
    }

    pub fn name_of(&self, g: &ArrayGroup) -> String {
        model::stable_name(&g.set_name, self.hostname.as_deref())
    }

    fn running_for(&self, g: &ArrayGroup) -> Option<&RunningMd> {
        self.running
            .iter()
            .find(|r| r.uuid == Some(g.uuid) && r.active())
    }

    /// Ready = every relevant group runs or is complete and free, and every expected name is
    /// present. Groups whose members are held (mdadm's incremental assembly under way) are not.
    pub fn ready(&self, host: &Host, expect: &[String]) -> bool {
        let relevant: Vec<&ArrayGroup> = self
            .groups
            .iter()
            .filter(|g| !self.stale.contains(&g.uuid))
            .filter(|g| expect.is_empty() || expect.contains(&self.name_of(g)))
            .collect();
        let names: BTreeSet<String> = relevant.iter().map(|g| self.name_of(g)).collect();
        if expect.iter().any(|e| !names.contains(e)) {
            return false;
        }
        relevant.iter().all(|g| {
            self.running_for(g).is_some()
                || (g.status() == GroupStatus::Complete
                    && g.members.iter().all(|m| {
                        list_dir(&host.sys(&format!("class/block/{}/holders", m.kname))).is_empty()
                    }))
        })
    }
}

/// `dbhost assemble`: wait (bounded) for members, then start every complete array not yet
/// running; report incomplete ones with their present/missing roles. Never writes to members.
pub fn assemble_all(
    host: &Host,
    exec: &dyn Exec,
    opts: &AssembleOptions,
) -> Result<AssembleReport> {
    require_live(host, "assemble")?;
    let deadline = Instant::now() + opts.wait;
    let mut scan = ScanResult::read(host);
    // Load md_mod only when there is something to assemble.
    if !scan.groups.is_empty() {
        ensure_modules(host, exec)?;
    }
    while !scan.ready(host, &opts.expect) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        scan = ScanResult::read(host);
    }
    Ok(act_on_scan(host, &scan, &opts.expect))
}

fn act_on_scan(host: &Host, scan: &ScanResult, expect: &[String]) -> AssembleReport {
    let mut rep = AssembleReport {
        unreadable: scan.unreadable.clone(),
        ..Default::default()
    };
    let mut seen_names = BTreeSet::new();
    for g in &scan.groups {
        let name = scan.name_of(g);
        if scan.stale.contains(&g.uuid) {
            rep.stale.push(format!(
                "{} ({}) on {}: leftover superblocks on members of another array, ignored",
                name,
                g.uuid,
                g.kernel_names().join(", ")
            ));
            continue;
        }
        seen_names.insert(name.clone());
        let mut e = AssembleEntry {
            name: name.clone(),
            uuid: Some(g.uuid),
            result: String::new(),
            devnm: None,
            present_roles: vec![],
            missing_roles: vec![],
            devices: g.kernel_names(),
            detail: None,
            expected: expect.is_empty() || expect.contains(&name),
        };
        match g.status() {
            GroupStatus::Complete => {
                e.present_roles = (0..g.raid_disks).collect();
                match assemble_group(host, g, &name) {
                    Ok(o) => {
                        e.result = if o.changed() {
                            "assembled"
                        } else {
                            "already_running"
                        }
                        .into();
                        e.devnm = Some(o.value().devnm.clone());
                    }
                    Err(err) => {
                        e.result = "failed".into();
                        e.detail = Some(format!("{err:#}"));
                    }
                }
            }
            GroupStatus::Incomplete { present, missing } => {
                if let Some(r) = scan.running_for(g) {
                    e.result = "already_running".into();
                    e.devnm = Some(r.devnm.clone());
                } else {
                    e.result = "incomplete".into();
                    e.detail = Some(format!(
                        "refusing to start {name}: roles {missing:?} of {} are missing (present: {present:?} on {}); nothing was written",
                        g.raid_disks,
                        g.kernel_names().join(", ")
                    ));
                    e.present_roles = present;
                    e.missing_roles = missing;
                }
            }
            GroupStatus::Inconsistent { why } => {
                e.result = "inconsistent".into();
                e.detail = Some(why.join("; "));
            }
        }
        rep.arrays.push(e);
    }
    for x in expect {
        if !seen_names.contains(x) {
            rep.arrays.push(AssembleEntry {
                name: x.clone(),
                uuid: None,
                result: "not_found".into(),
                devnm: None,
                present_roles: vec![],
                missing_roles: vec![],
                devices: vec![],
                detail: Some(format!("no device carries a superblock of array {x}")),
                expected: true,
            });
        }
    }
    rep
}

/// Resolve "data", "/dev/md/data", "md127" or "/dev/md127" to the kernel name, if it exists.
pub fn resolve_md(host: &Host, target: &str) -> Option<String> {
    let candidates = if target.starts_with('/') {
        vec![host.path(target)]
    } else {
        vec![host.dev(&format!("md/{target}")), host.dev(target)]
    };
    for c in candidates {
        if let Ok(real) = fs::canonicalize(&c) {
            if let Some(n) = real.file_name().map(|n| n.to_string_lossy().into_owned()) {
                if n.starts_with("md") && host.sys(&format!("block/{n}")).exists() {
                    return Some(n);
                }
            }
        }
    }
    let dev_dir = host.unroot(&host.dev("x"));
    let dev_prefix = format!("{}/", dev_dir.parent().unwrap_or(&dev_dir).display());
    let bare = target.trim_start_matches(dev_prefix.as_str());
    (bare.starts_with("md") && host.sys(&format!("block/{bare}")).exists())
        .then(|| bare.to_string())
}

/// Why an md device cannot be stopped (pure over host facts): holders and mount points.
pub fn stop_blockers(host: &Host, devnm: &str) -> Vec<String> {
    let mut v: Vec<String> = list_dir(&host.sys(&format!("block/{devnm}/holders")))
        .into_iter()
        .map(|h| format!("held by {h}"))
        .collect();
    let mut all = vec![devnm.to_string()];
    all.extend(partitions_of(host, devnm));
    for m in mounts_of(host, &all) {
        v.push(format!("mounted at {m}"));
    }
    v
}

/// Stop an array (EBUSY retried 25 × 200 ms). Unchanged when it is not running.
pub fn stop(host: &Host, target: &str) -> Result<Outcome<String>> {
    require_live(host, "md stop")?;
    let Some(devnm) = resolve_md(host, target) else {
        return Ok(Outcome::Unchanged(format!("{target} is not running")));
    };
    let blockers = stop_blockers(host, &devnm);
    if !blockers.is_empty() {
        bail!(Failure::Refused(format!(
            "cannot stop {target} ({devnm}): {} — unmount or release it first",
            blockers.join(", ")
        )));
    }
    let node = host.dev(&devnm);
    let nodes = node.display().to_string();
    let f = File::open(&node).with_context(|| format!("opening {nodes}"))?;
    let mut tries = 0;
    loop {
        match sys::stop_array(&f, &nodes) {
            Ok(()) => break,
            Err(e) if e.errno == Errno::EBUSY && tries < 25 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => {
                let mut b = stop_blockers(host, &devnm);
                if b.is_empty() {
                    b.push(format!(
                        "another process has {nodes} open (see `fuser -v {nodes}`)"
                    ));
                }
                return Err(anyhow!("{e}")).context(format!(
                    "stopping {target} ({devnm}) after {tries} retries: {}",
                    b.join(", ")
                ));
            }
        }
    }
    drop(f);
    // Remove our /dev/md/<name> links pointing at it and the mdadm map line.
    for l in list_dir(&host.dev("md")) {
        let p = host.dev(&format!("md/{l}"));
        if fs::read_link(&p)
            .ok()
            .and_then(|t| t.file_name().map(|n| n == devnm.as_str()))
            .unwrap_or(false)
        {
            let _ = fs::remove_file(&p);
        }
    }
    if host.run("mdadm/map").exists() {
        let lock = MapLock::take(host)?;
        write_map(host, &devnm, None)?;
        drop(lock);
    }
    Ok(Outcome::Changed(format!("stopped {devnm}")))
}

// ---------------------------------------------------------------------------------------------
// examine
// ---------------------------------------------------------------------------------------------

/// Everything `dbhost md examine` shows for one device or image.
#[derive(Debug, Clone, Serialize)]
pub struct Examined {
    pub path: String,
    pub size_bytes: u64,
    pub superblocks: Vec<ExaminedSb>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExaminedSb {
    pub version: String,
    pub offset_bytes: u64,
    /// "ok", "bad-checksum", "damaged", "stale-0.90", "misplaced".
    pub status: String,
    pub error: Option<String>,
    pub checksum: Option<String>,
    pub checksum_expected: Option<String>,
    pub superblock: Option<superblock::Superblock>,
    pub v090: Option<superblock::V090Info>,
    pub array_uuid: Option<String>,
    pub name: Option<String>,
    pub device_role: Option<String>,
    pub array_state: Option<String>,
    pub state: Option<String>,
}

/// Read-only: every md superblock on a device or image file.
pub fn examine(path: &Path) -> Result<Examined> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = content_size(&f, path)?;
    let found =
        superblock::scan(&mut f, size).with_context(|| format!("reading {}", path.display()))?;
    let superblocks = found
        .into_iter()
        .map(|fo| match fo.kind {
            superblock::FoundKind::V1 { minor, decoded } => {
                let version = minor.to_string();
                match decoded {
                    Ok(d) => {
                        let misplaced = d.sb.super_offset * 512 != fo.offset;
                        let status = if !d.checksum_ok() {
                            "bad-checksum"
                        } else if misplaced {
                            "misplaced"
                        } else {
                            "ok"
                        };
                        ExaminedSb {
                            version,
                            offset_bytes: fo.offset,
                            status: status.into(),
                            error: misplaced.then(|| {
                                format!(
                                    "super_offset {} sectors does not match its position {}",
                                    d.sb.super_offset,
                                    fo.offset / 512
                                )
                            }),
                            checksum: Some(format!("{:x}", d.sb.sb_csum)),
                            checksum_expected: Some(format!("{:x}", d.expected_csum)),
                            array_uuid: Some(d.sb.set_uuid.mdadm()),
                            name: Some(d.sb.name()),
                            device_role: Some(d.sb.role_text()),
                            array_state: Some(d.sb.array_state()),
                            state: Some(if d.sb.clean() { "clean" } else { "active" }.into()),
                            superblock: Some(d.sb),
                            v090: None,
                        }
                    }
                    Err(e) => ExaminedSb {
                        version,
                        offset_bytes: fo.offset,
                        status: "damaged".into(),
                        error: Some(e.to_string()),
                        checksum: None,
                        checksum_expected: None,
                        superblock: None,
                        v090: None,
                        array_uuid: None,
                        name: None,
                        device_role: None,
                        array_state: None,
                        state: None,
                    },
                }
            }
            superblock::FoundKind::V090(i) => ExaminedSb {
                version: "0.90".into(),
                offset_bytes: fo.offset,
                status: "stale-0.90".into(),
                error: None,
                checksum: None,
                checksum_expected: None,
                superblock: None,
                array_uuid: Some(i.uuid.clone()),
                v090: Some(*i),
                name: None,
                device_role: None,
                array_state: None,
                state: None,
            },
        })
        .collect();
    Ok(Examined {
        path: path.display().to_string(),
        size_bytes: size,
        superblocks,
    })
}

/// Resolve a user-given array name for create (validates it).
pub fn array_name(s: &str) -> Result<ArrayName> {
    ArrayName::new(s).map_err(|m| Failure::Usage(m).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::md::superblock::Raid0Spec;

    /// A fake host: sysfs entries, /dev files holding disk content, /proc text.
    struct Fake {
        dir: tempfile::TempDir,
    }

    impl Fake {
        fn new() -> Fake {
            let f = Fake {
                dir: tempfile::tempdir().unwrap(),
            };
            f.write("proc/mounts", "/dev/sda1 / ext4 rw 0 0\n");
            f.write("proc/swaps", "Filename Type Size Used Priority\n");
            f.write("proc/sys/kernel/osrelease", "6.1.0-28-amd64\n");
            f.write("proc/sys/kernel/hostname", "vmhost\n");
            f
        }
        fn host(&self) -> Host {
            Host::with_root(self.dir.path())
        }
        fn write(&self, rel: &str, s: &str) {
            let p = self.dir.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, s).unwrap();
        }
        fn disk(&self, name: &str, minor: u32, bytes: u64) {
            self.write(
                &format!("sys/class/block/{name}/dev"),
                &format!("8:{minor}\n"),
            );
            self.write(
                &format!("sys/class/block/{name}/size"),
                &format!("{}\n", bytes / 512),
            );
            self.write(
                &format!("sys/class/block/{name}/queue/logical_block_size"),
                "512\n",
            );
            fs::create_dir_all(
                self.dir
                    .path()
                    .join(format!("sys/class/block/{name}/holders")),
            )
            .unwrap();
            let p = self.dir.path().join(format!("dev/{name}"));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            File::create(&p).unwrap().set_len(bytes).unwrap();
            let byid = self.dir.path().join("dev/disk/by-id");
            fs::create_dir_all(&byid).unwrap();
            std::os::unix::fs::symlink(format!("../../{name}"), byid.join(format!("scsi-{name}")))
                .unwrap();
        }
        fn put(&self, name: &str, off: u64, data: &[u8]) {
            let mut f = OpenOptions::new()
                .write(true)
                .open(self.dir.path().join(format!("dev/{name}")))
                .unwrap();
            f.seek(SeekFrom::Start(off)).unwrap();
            f.write_all(data).unwrap();
        }
    }

    const GIB: u64 = 1 << 30;

    fn spec(n: u32, uuid: u8) -> Raid0Spec {
        Raid0Spec {
            set_uuid: ArrayUuid([uuid; 16]),
            set_name: "any:data".into(),
            ctime: 1,
            chunk_sectors: 1024,
            raid_disks: n,
            data_offset: 4096,
            raid0_layout_feature: true,
        }
    }

    #[test]
    fn facts_from_fake_tree() {
        let f = Fake::new();
        f.disk("sdb", 16, GIB);
        f.disk("sdc", 32, GIB);
        f.write("proc/mounts", "/dev/sdc /mnt/x xfs rw 0 0\n");
        f.put("sdb", 0, b"XFSB");
        let h = f.host();
        let b = member_facts(&h, "/dev/disk/by-id/scsi-sdb").unwrap();
        assert_eq!(b.kname, "sdb");
        assert_eq!((b.major, b.minor), (8, 16));
        assert_eq!(b.size_bytes, GIB);
        assert!(b.head.as_deref().unwrap().starts_with("XFS"));
        assert!(!b.is_blank());
        let c = member_facts(&h, "sdc").unwrap();
        assert_eq!(c.mountpoints, vec!["/mnt/x"]);
        assert!(c.is_blank());
        assert!(member_facts(&h, "/dev/disk/by-id/nope").is_err());
    }

    #[test]
    fn md_superblock_is_not_reported_as_head_data() {
        let f = Fake::new();
        f.disk("sdb", 16, GIB);
        f.put(
            "sdb",
            4096,
            &spec(2, 1).member(0, GIB / 512, [0; 16]).encode(),
        );
        let b = member_facts(&f.host(), "sdb").unwrap();
        assert_eq!(b.head, None);
        assert_eq!(b.v1().len(), 1);
        assert!(b.contents()[0].contains("md 1.2 superblock of array any:data"));
    }

    #[test]
    fn scan_groups_complete_missing_and_stale() {
        let f = Fake::new();
        for (n, m) in [("sdb", 16), ("sdc", 32), ("sdd", 48), ("sde", 64)] {
            f.disk(n, m, GIB);
        }
        let s = GIB / 512;
        // Array A (2 members) complete on sdc + sdb; array B (2 members) only on sdd.
        f.put("sdb", 4096, &spec(2, 1).member(1, s, [0; 16]).encode());
        f.put("sdc", 4096, &spec(2, 1).member(0, s, [0; 16]).encode());
        let mut b = spec(2, 2);
        b.set_name = "otherhost:logs".into();
        f.put("sdd", 4096, &b.member(0, s, [0; 16]).encode());
        // A stale 1.0 superblock of array C at the end of sdb: ignored.
        let mut c = spec(3, 3).member(2, s, [0; 16]);
        let o10 = superblock::Minor::V1_0.sb_start(s).unwrap();
        c.super_offset = o10;
        f.put("sdb", o10 * 512, &c.encode());
        let h = f.host();
        let scan = ScanResult::read(&h);
        assert_eq!(scan.groups.len(), 3);
        assert_eq!(scan.stale.len(), 1);
        assert!(!scan.ready(&h, &[]));
        assert!(
            scan.ready(&h, &["data".into()]),
            "only the expected array matters"
        );
        let g_a = scan
            .groups
            .iter()
            .find(|g| g.uuid == ArrayUuid([1; 16]))
            .unwrap();
        assert_eq!(scan.name_of(g_a), "data");
        assert_eq!(g_a.status(), GroupStatus::Complete);
        let g_b = scan
            .groups
            .iter()
            .find(|g| g.uuid == ArrayUuid([2; 16]))
            .unwrap();
        assert_eq!(scan.name_of(g_b), "otherhost:logs");
        // act_on_scan on a fake host: complete groups fail (not live), incomplete are refused.
        let rep = act_on_scan(&h, &scan, &["data".into(), "gone".into()]);
        let by = |n: &str| rep.arrays.iter().find(|a| a.name == n).unwrap();
        assert_eq!(by("otherhost:logs").result, "incomplete");
        assert_eq!(by("otherhost:logs").missing_roles, vec![1]);
        assert_eq!(by("otherhost:logs").devices, vec!["sdd"]);
        assert_eq!(by("gone").result, "not_found");
        assert_eq!(by("data").result, "failed"); // the fake host is not live: no ioctls
        assert!(!by("otherhost:logs").expected);
        assert_eq!(rep.stale.len(), 1);
        assert_eq!(rep.exit_code(), crate::exit::ERROR);
        // Only the foreign incomplete array left: reported, but not fatal with --expect.
        let mut rep2 = rep.clone();
        rep2.arrays.retain(|a| a.name == "otherhost:logs");
        assert_eq!(rep2.exit_code(), crate::exit::OK);
        rep2.arrays[0].expected = true;
        assert_eq!(rep2.exit_code(), crate::exit::REFUSED);
    }

    #[test]
    fn running_array_counts_as_ready_and_resolves() {
        let f = Fake::new();
        f.disk("sdb", 16, GIB);
        f.disk("sdc", 32, GIB);
        let s = GIB / 512;
        f.put("sdb", 4096, &spec(2, 1).member(0, s, [0; 16]).encode());
        f.put("sdc", 4096, &spec(2, 1).member(1, s, [0; 16]).encode());
        f.write(
            "sys/block/md127/md/uuid",
            &format!("{}\n", ArrayUuid([1; 16]).dashed()),
        );
        f.write("sys/block/md127/md/array_state", "clean\n");
        f.write("sys/block/md127/holders/.keep", "");
        fs::remove_file(f.dir.path().join("sys/block/md127/holders/.keep")).unwrap();
        f.write("sys/class/block/sdb/holders/md127", "");
        f.write("sys/class/block/sdc/holders/md127", "");
        let h = f.host();
        let scan = ScanResult::read(&h);
        assert!(scan.ready(&h, &["data".into()]));
        // Resolution and stop blockers.
        fs::create_dir_all(f.dir.path().join("dev/md")).unwrap();
        File::create(f.dir.path().join("dev/md127")).unwrap();
        std::os::unix::fs::symlink("../md127", f.dir.path().join("dev/md/data")).unwrap();
        assert_eq!(resolve_md(&h, "data").as_deref(), Some("md127"));
        assert_eq!(resolve_md(&h, "/dev/md/data").as_deref(), Some("md127"));
        assert_eq!(resolve_md(&h, "md127").as_deref(), Some("md127"));
        assert_eq!(resolve_md(&h, "nothing"), None);
        fs::remove_file(f.dir.path().join("dev/md127")).unwrap();
        assert_eq!(
            resolve_md(&h, "/dev/md127").as_deref(),
            Some("md127"),
            "no node, sysfs only"
        );
        File::create(f.dir.path().join("dev/md127")).unwrap();
        assert!(stop_blockers(&h, "md127").is_empty());
        f.write("proc/mounts", "/dev/md/data /datadrive xfs rw 0 0\n");
        assert_eq!(stop_blockers(&h, "md127"), vec!["mounted at /datadrive"]);
        // Incomplete + member held by an inactive md → not ready (mdadm is assembling).
        let rm = running_arrays(&h);
        assert_eq!(rm[0].uuid, Some(ArrayUuid([1; 16])));
        assert!(rm[0].active());
    }

    #[test]
    fn side_effects_refuse_a_fake_host() {
        let f = Fake::new();
        let h = f.host();
        let e = stop(&h, "data").unwrap_err();
        assert_eq!(crate::exit::code_for(&e), crate::exit::USAGE);
        let fx = crate::host::FakeExec::new();
        let req = CreateRequest {
            name: ArrayName::new("data").unwrap(),
            chunk_bytes: 512 * 1024,
            members: vec!["sdb".into(), "sdc".into()],
            wipe: false,
        };
        assert!(create(&h, &fx, &req).is_err());
        assert!(fx.calls().is_empty(), "nothing run against a fake host");
    }

    #[test]
    fn modules_loaded_when_missing_and_clear_error_without_md() {
        let f = Fake::new();
        let h = f.host();
        let fx = crate::host::FakeExec::new();
        let e = ensure_modules(&h, &fx).unwrap_err();
        assert!(format!("{e:#}").contains("no md RAID support"), "{e:#}");
        assert_eq!(fx.calls(), vec!["modprobe md_mod"]);
        f.write("sys/module/md_mod/parameters/new_array", "");
        let fx = crate::host::FakeExec::new();
        ensure_modules(&h, &fx).unwrap(); // raid0 missing: warned, not fatal
        assert_eq!(fx.calls(), vec!["modprobe raid0"]);
    }

    #[test]
    fn examine_image_reports_bad_checksum_and_stale() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.img");
        let size = 64u64 << 20;
        let f = File::create(&p).unwrap();
        f.set_len(size).unwrap();
        drop(f);
        let mut b = spec(2, 1).member(1, size / 512, [0; 16]).encode();
        b[100] ^= 1;
        let mut w = OpenOptions::new().write(true).open(&p).unwrap();
        w.seek(SeekFrom::Start(4096)).unwrap();
        w.write_all(&b).unwrap();
        let o90 = superblock::v090_offset(size).unwrap();
        w.seek(SeekFrom::Start(o90)).unwrap();
        w.write_all(&superblock::MD_SB_MAGIC.to_le_bytes()).unwrap();
        drop(w);
        let x = examine(&p).unwrap();
        assert_eq!(x.superblocks.len(), 2);
        assert_eq!(x.superblocks[0].status, "bad-checksum");
        assert_ne!(
            x.superblocks[0].checksum,
            x.superblocks[0].checksum_expected
        );
        assert_eq!(
            x.superblocks[0].device_role.as_deref(),
            Some("Active device 1")
        );
        assert_eq!(x.superblocks[1].status, "stale-0.90");
    }

    #[test]
    fn map_lock_and_map_file() {
        let f = Fake::new();
        let h = f.host();
        {
            let _l = MapLock::take(&h).unwrap();
            assert!(h.run("mdadm/map.lock").exists());
            write_map(&h, "md127", Some("md127 1.2 a:b:c:d /dev/md/data\n")).unwrap();
        }
        assert!(!h.run("mdadm/map.lock").exists(), "owner unlinks the lock");
        assert_eq!(
            fs::read_to_string(h.run("mdadm/map")).unwrap(),
            "md127 1.2 a:b:c:d /dev/md/data\n"
        );
        write_map(&h, "md127", None).unwrap();
        assert_eq!(fs::read_to_string(h.run("mdadm/map")).unwrap(), "");
    }

    #[test]
    fn link_is_created_once_and_conflicts_are_errors() {
        let f = Fake::new();
        let h = f.host();
        let l = ensure_link(&h, "data", "md127").unwrap();
        assert_eq!(l, PathBuf::from("/dev/md/data"));
        assert_eq!(
            fs::read_link(h.dev("md/data")).unwrap(),
            PathBuf::from("../md127")
        );
        ensure_link(&h, "data", "md127").unwrap();
        assert!(ensure_link(&h, "data", "md126").is_err());
    }
}
