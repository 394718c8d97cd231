//! Read-only detection: platform, block-device inventory, signatures, roles, eligibility.
//!
//! Entry point: [`detect`]. Everything is read through the host root (`Host`), so the same code
//! runs on the live system, on fixtures and on a replayed capture (`debug capture-host`).
//! Nothing here writes anywhere.

pub mod capture;
pub mod imds;
pub mod model;
pub mod probe;
mod reader;
mod roles;

pub use model::*;

use anyhow::Result;
use reader::Reader;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::fs::mounts;
use crate::host::Host;

/// Environment variable naming the IMDS base URL (`http://127.0.0.1:PORT` in tests).
pub const IMDS_ENDPOINT_ENV: &str = "DBHOST_IMDS_ENDPOINT";
/// The real Azure IMDS.
pub const IMDS_DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
/// Azure's DMI chassis asset tag (cloud-init's Azure test).
pub const AZURE_ASSET_TAG: &str = "7783-7084-3265-9085-8269-3286-77";

/// Where a capture keeps what is not a plain host file (relative to the host root).
pub const CAPTURE_DIR: &str = "dbhost-capture";

/// Knobs for [`detect`].
#[derive(Debug, Clone)]
pub struct DetectOptions {
    /// IMDS base URL. Precedence: this field (profile key) → `DBHOST_IMDS_ENDPOINT` → the real
    /// IMDS (the last only on the live host).
    pub imds_endpoint: Option<String>,
    /// `false`: never query IMDS (cache modes stay `unknown`).
    pub query_imds: bool,
    pub imds_timeout: Duration,
    pub imds_attempts: u32,
    pub imds_backoff: Duration,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            imds_endpoint: None,
            query_imds: true,
            imds_timeout: Duration::from_secs(2),
            imds_attempts: 3,
            imds_backoff: Duration::from_millis(250),
        }
    }
}

/// The result of probing one device's contents, as stored in a capture's `probes.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<probe::ProbeResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a run saw besides the inventory (used by capture).
#[derive(Debug, Default)]
pub(crate) struct Extras {
    pub probes: BTreeMap<String, ProbeRecord>,
    pub imds_body: Option<String>,
}

/// Detect the platform and classify every block device. Read-only; deterministic (disks are
/// sorted by name). Missing attributes are reported on the disk, never a panic.
pub fn detect(host: &Host, opts: &DetectOptions) -> Result<Inventory> {
    let r = Reader::new(host);
    Ok(detect_with(&r, opts)?.0)
}

/// Platform from DMI only (no network).
pub fn platform(host: &Host) -> Platform {
    platform_of(&Reader::new(host))
}

fn platform_of(r: &Reader) -> Platform {
    let dmi = |a: &str| {
        r.text(&r.host.sys(&format!("class/dmi/id/{a}")))
            .unwrap_or_default()
    };
    if dmi("chassis_asset_tag") == AZURE_ASSET_TAG {
        return Platform::Azure;
    }
    let hv = r.text(&r.host.sys("hypervisor/uuid")).unwrap_or_default();
    if dmi("sys_vendor") == "Amazon EC2" || hv.to_ascii_lowercase().starts_with("ec2") {
        return Platform::Aws;
    }
    if dmi("product_name") == "Google Compute Engine" {
        return Platform::Gcp;
    }
    if dmi("sys_vendor") == "QEMU" {
        return Platform::Qemu;
    }
    Platform::Other
}

/// Device name prefixes that are never data disks.
fn not_a_disk(name: &str) -> Option<&'static str> {
    const KINDS: [(&str, &str); 7] = [
        ("loop", "loop device"),
        ("ram", "ram disk"),
        ("zram", "compressed ram disk"),
        ("sr", "optical drive"),
        ("md", "md array"),
        ("dm-", "device-mapper device"),
        ("nbd", "network block device"),
    ];
    KINDS
        .iter()
        .find(|(p, _)| {
            name.starts_with(p)
                && name[p.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit())
        })
        .map(|(_, w)| *w)
}

/// Per-disk facts that only role assignment needs.
pub(crate) struct Facts {
    /// VMBus `device_id` of the SCSI controller above the disk (Azure).
    pub vmbus_device_id: Option<String>,
    /// `/dev/disk/azure/…` links (relative to that directory) pointing at the disk.
    pub azure_links: Vec<String>,
}

fn opt(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.is_empty())
}

fn trailing_number(s: &str) -> u64 {
    let d: String = s
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    d.parse().unwrap_or(0)
}

/// The unit serial number in a SCSI VPD page 0x80 as the disk returned it (sysfs
/// `device/vpd_pg80`): a 4-byte header whose last byte is the length, then the serial (SPC-4
/// 7.8.15), trimmed of the padding disks put around it. `None` when empty or too short.
pub fn vpd_pg80_serial(page: &[u8]) -> Option<String> {
    let body = page.get(4..)?;
    let n = usize::from(page[3]).min(body.len());
    let s = String::from_utf8_lossy(&body[..n]).trim().to_string();
    (!s.is_empty()).then_some(s)
}

pub(crate) fn detect_with(r: &Reader, opts: &DetectOptions) -> Result<(Inventory, Extras)> {
    let host = r.host;
    let mut extras = Extras::default();
    let platform = platform_of(r);
    let kernel = r.text(&host.proc_("sys/kernel/osrelease"));

    let names: Vec<String> = r.list(&host.sys("block"));

    // Partitions of every block device, and partition → parent.
    let mut parts_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut parent_of: BTreeMap<String, String> = BTreeMap::new();
    for n in &names {
        let base = host.sys(&format!("block/{n}"));
        let mut parts: Vec<String> = r
            .list(&base)
            .into_iter()
            .filter(|e| e.starts_with(n.as_str()) && e != n)
            .filter(|e| r.exists(&base.join(e).join("partition")))
            .collect();
        parts.sort_by_key(|p| trailing_number(p));
        for p in &parts {
            parent_of.insert(p.clone(), n.clone());
        }
        parts_of.insert(n.clone(), parts);
    }

    // Whole disks underneath a kernel block name (through partitions and slaves chains).
    fn whole_disks(
        r: &Reader,
        name: &str,
        parent_of: &BTreeMap<String, String>,
        depth: u32,
        out: &mut BTreeSet<String>,
    ) {
        if depth > 8 {
            return;
        }
        if let Some(p) = parent_of.get(name) {
            return whole_disks(r, p, parent_of, depth + 1, out);
        }
        let slaves = r.list(&r.host.sys(&format!("block/{name}/slaves")));
        if slaves.is_empty() {
            out.insert(name.to_string());
        }
        for s in slaves {
            whole_disks(r, &s, parent_of, depth + 1, out);
        }
    }
    // A device path from /proc (e.g. /dev/sda1, /dev/mapper/vg-root) → kernel name.
    let kernel_name = |src: &str| -> Option<String> {
        let rel = src.strip_prefix("/dev/")?;
        let mut p = host.dev(rel);
        for _ in 0..4 {
            match r.read_link(&p) {
                Some(t) => p = p.parent().unwrap_or(host.root()).join(t),
                None => break,
            }
        }
        p.file_name().map(|f| f.to_string_lossy().into_owned())
    };

    // major:minor → kernel name, for every block device and partition.
    let mut by_devnum: BTreeMap<String, String> = BTreeMap::new();
    for n in &names {
        let base = host.sys(&format!("block/{n}"));
        if let Some(d) = opt(r.text(&base.join("dev"))) {
            by_devnum.insert(d, n.clone());
        }
        for p in parts_of.get(n).into_iter().flatten() {
            if let Some(d) = opt(r.text(&base.join(p).join("dev"))) {
                by_devnum.insert(d, p.clone());
            }
        }
    }

    // Mounts, attributed to whole disks: /proc/self/mountinfo (major:minor, so "/dev/root"
    // resolves), else /proc/self/mounts, else /proc/mounts.
    let mount_entries: Vec<(Option<String>, String, String)> =
        match r.text(&host.proc_("self/mountinfo")) {
            Some(mi) => mounts::parse_mountinfo(&mi)
                .into_iter()
                .map(|m| (Some(m.devnum), m.source, m.target))
                .collect(),
            None => {
                let text = r
                    .text(&host.proc_("self/mounts"))
                    .or_else(|| r.text(&host.proc_("mounts")))
                    .unwrap_or_default();
                mounts::parse(&text)
                    .into_iter()
                    .map(|m| (None, m.source, m.target))
                    .collect()
            }
        };
    let mut mounts_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (devnum, src, mp) in mount_entries {
        let Some(k) = devnum
            .and_then(|d| by_devnum.get(&d).cloned())
            .or_else(|| kernel_name(&src))
        else {
            continue;
        };
        let mut disks = BTreeSet::new();
        whole_disks(r, &k, &parent_of, 0, &mut disks);
        for d in disks {
            let v = mounts_of.entry(d).or_default();
            if !v.contains(&mp) {
                v.push(mp.clone());
            }
        }
    }
    let mut swap_disks = BTreeSet::new();
    let swaps = r.text(&host.proc_("swaps")).unwrap_or_default();
    for swap in mounts::parse_swaps(&swaps) {
        if swap.kind != "partition" {
            continue;
        }
        if let Some(k) = kernel_name(&swap.source) {
            whole_disks(r, &k, &parent_of, 0, &mut swap_disks);
        }
    }

    // /dev/disk/by-id, by-path, azure: link name lists per target kernel name.
    let links = |dir: &str| -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (rel, target) in r.links_under(&host.dev(dir)) {
            if let Some(t) = target.file_name() {
                m.entry(t.to_string_lossy().into_owned())
                    .or_default()
                    .push(rel);
            }
        }
        m
    };
    let by_id = links("disk/by-id");
    let by_path = links("disk/by-path");
    let azure = links("disk/azure");

    let mut disks = Vec::new();
    let mut arrays = Vec::new();
    let mut facts = BTreeMap::new();
    for name in &names {
        let base = host.sys(&format!("block/{name}"));
        let attr = |a: &str| opt(r.text(&base.join(a)));
        let mut missing = Vec::new();
        let mut need = |a: &str| {
            let v = attr(a);
            if v.is_none() {
                missing.push(a.to_string());
            }
            v
        };
        let devnum = need("dev").unwrap_or_default();
        let size_sectors = need("size").and_then(|s| s.parse::<u64>().ok());
        let ro = need("ro").is_some_and(|v| v == "1");
        let removable = need("removable").is_some_and(|v| v == "1");
        let partitions = parts_of.get(name).cloned().unwrap_or_default();
        let mut holders = r.list(&base.join("holders"));
        for p in &partitions {
            holders.extend(r.list(&base.join(p).join("holders")));
        }
        let mountpoints = mounts_of.get(name).cloned().unwrap_or_default();
        let swap = swap_disks.contains(name);

        if let Some(what) = not_a_disk(name) {
            if name.starts_with("md") {
                arrays.push(RunningArray {
                    name: name.clone(),
                    level: attr("md/level"),
                    array_state: attr("md/array_state"),
                    uuid: attr("md/uuid"),
                    members: r.list(&base.join("slaves")),
                });
            }
            if size_sectors.unwrap_or(0) == 0 {
                continue; // unattached loop/nbd, empty optical drive
            }
            disks.push(Disk {
                name: name.clone(),
                devnum,
                size_bytes: size_sectors.unwrap_or(0) * 512,
                logical_block_size: 512,
                physical_block_size: 512,
                rotational: None,
                read_only: ro,
                removable,
                vendor: None,
                model: None,
                serial: None,
                transport: Transport::Other,
                by_id: by_id.get(name).cloned().unwrap_or_default(),
                by_path: by_path.get(name).cloned().unwrap_or_default(),
                scsi_address: None,
                nvme_nsid: None,
                partitions,
                holders,
                mountpoints,
                swap,
                write_cache: None,
                discard_granularity: None,
                role: DiskRole::Unknown,
                role_evidence: vec![],
                lun: None,
                cache_mode: CacheMode::Unknown,
                signatures: vec![],
                md: None,
                nonzero_at: None,
                missing_attributes: missing,
                refusals: vec![Refusal::NotADisk {
                    what: what.to_string(),
                }],
            });
            continue;
        }

        let lbs = need("queue/logical_block_size").and_then(|v| v.parse().ok());
        let pbs = need("queue/physical_block_size").and_then(|v| v.parse().ok());
        let rotational = need("queue/rotational").map(|v| v == "1");
        let write_cache = need("queue/write_cache");
        let discard_granularity =
            need("queue/discard_granularity").and_then(|v| v.parse::<u64>().ok());

        let canon = r.canonicalize(&base).map(|p| r.rel(&p)).unwrap_or_default();
        let devlink = r.canonicalize(&base.join("device"));
        let transport = if canon.contains("/nvme/") || name.starts_with("nvme") {
            Transport::Nvme
        } else if canon.contains("/ata") {
            Transport::Ata
        } else if canon.contains("/host") && canon.contains("/target") {
            Transport::Scsi
        } else if name.starts_with("vd") || canon.contains("/virtio") {
            Transport::Virtio
        } else if name.starts_with("xvd") || canon.contains("vbd-") {
            Transport::Xen
        } else {
            Transport::Other
        };
        let scsi_address = devlink
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|f| f.to_string_lossy().into_owned())
            .filter(|f| {
                f.split(':').count() == 4 && f.split(':').all(|x| x.parse::<u32>().is_ok())
            });
        let nvme_nsid = if transport == Transport::Nvme {
            attr("nsid")
                .and_then(|v| v.parse().ok())
                .or_else(|| name.rsplit_once('n').and_then(|(_, n)| n.parse().ok()))
        } else {
            None
        };
        let vendor = attr("device/vendor").filter(|_| transport != Transport::Nvme);
        let model = attr("device/model");
        if model.is_none() && matches!(transport, Transport::Scsi | Transport::Nvme) {
            missing.push("device/model".into());
        }
        let serial = match transport {
            Transport::Nvme => attr("device/serial"),
            Transport::Virtio => attr("serial"),
            Transport::Scsi | Transport::Ata => r
                .bytes(&base.join("device/vpd_pg80"))
                .and_then(|b| vpd_pg80_serial(&b)),
            _ => None,
        };
        // Azure: the VMBus device above a SCSI disk carries the controller's device_id.
        let mut vmbus_device_id = None;
        if transport == Transport::Scsi {
            if let Some(mut p) = devlink.clone() {
                let sys_root = r.canonicalize(&host.sys("")).unwrap_or_default();
                while p.pop() && p.starts_with(&sys_root) && p != sys_root {
                    let f = p.join("device_id");
                    if r.exists(&f) {
                        vmbus_device_id = r.text(&f);
                        break;
                    }
                }
            }
        }

        let size_bytes = size_sectors.unwrap_or(0) * 512;
        let (signatures, md, nonzero_at, probe_error) =
            match probe_contents(r, name, size_bytes, &mut extras) {
                Ok(p) => (p.signatures, p.md, p.nonzero_at, None),
                Err(e) => (vec![], None, None, Some(e)),
            };
        if let Some(e) = &probe_error {
            missing.push(format!("contents ({e})"));
        }

        facts.insert(
            name.clone(),
            Facts {
                vmbus_device_id,
                azure_links: azure.get(name).cloned().unwrap_or_default(),
            },
        );
        let mut refusals = Vec::new();
        if size_sectors.is_none() {
            refusals.push(Refusal::Unreadable {
                attribute: "size".into(),
            });
        }
        if let Some(e) = probe_error {
            refusals.push(Refusal::Unreadable {
                attribute: format!("contents of /dev/{name} ({e})"),
            });
        }
        disks.push(Disk {
            name: name.clone(),
            devnum,
            size_bytes,
            logical_block_size: lbs.unwrap_or(512),
            physical_block_size: pbs.unwrap_or(512),
            rotational,
            read_only: ro,
            removable,
            vendor,
            model,
            serial,
            transport,
            by_id: by_id.get(name).cloned().unwrap_or_default(),
            by_path: by_path.get(name).cloned().unwrap_or_default(),
            scsi_address,
            nvme_nsid,
            partitions,
            holders,
            mountpoints,
            swap,
            write_cache,
            discard_granularity,
            role: DiskRole::Unknown,
            role_evidence: vec![],
            lun: None,
            cache_mode: CacheMode::Unknown,
            signatures,
            md,
            nonzero_at,
            missing_attributes: missing,
            refusals,
        });
    }

    for d in disks.iter_mut() {
        if let Some(f) = facts.get(&d.name) {
            roles::assign(platform, d, f);
        }
    }

    // Cache modes from IMDS (Azure only).
    let imds = if platform != Platform::Azure {
        "not azure".to_string()
    } else {
        let replay = host.path(format!("/{CAPTURE_DIR}/imds-storage-profile.json"));
        let endpoint = opts.imds_endpoint.clone().or_else(|| {
            std::env::var(IMDS_ENDPOINT_ENV)
                .ok()
                .filter(|s| !s.is_empty())
        });
        if !opts.query_imds {
            "skipped (disabled)".to_string()
        } else if endpoint.is_none() && !host.is_live() && r.exists(&replay) {
            match r.text(&replay).map(|b| imds::parse_storage_profile(&b)) {
                Some(Ok(p)) => {
                    roles::apply_cache_modes(&mut disks, &p);
                    "ok (replayed from capture)".to_string()
                }
                Some(Err(e)) => format!("error: {e:#}"),
                None => "error: capture's IMDS answer unreadable".to_string(),
            }
        } else if endpoint.is_none() && !host.is_live() {
            format!("skipped (not the live host; set {IMDS_ENDPOINT_ENV} to query one)")
        } else {
            let cfg = imds::ImdsConfig {
                endpoint: endpoint.unwrap_or_else(|| IMDS_DEFAULT_ENDPOINT.to_string()),
                timeout: opts.imds_timeout,
                attempts: opts.imds_attempts,
                backoff: opts.imds_backoff,
            };
            match imds::fetch_storage_profile(&cfg, &crate::net::dns::Resolver::from_host(host)) {
                Ok((p, body)) => {
                    roles::apply_cache_modes(&mut disks, &p);
                    extras.imds_body = Some(body);
                    "ok".to_string()
                }
                Err(e) => format!("error: {e:#}"),
            }
        }
    };

    for d in disks.iter_mut() {
        roles::eligibility(d);
    }
    disks.sort_by(|a, b| a.name.cmp(&b.name));
    arrays.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((
        Inventory {
            schema: INVENTORY_SCHEMA,
            platform,
            kernel,
            disks,
            arrays,
            imds,
        },
        extras,
    ))
}

/// The one function through which detection reads device contents.
///
/// Order: a real block device node under the root is probed directly; else a capture's
/// `dbhost-capture/probes.json` entry is replayed; else a regular file at `dev/<name>` is taken
/// as the head of the device (zeros beyond its end; fixtures use this).
fn probe_contents(
    r: &Reader,
    name: &str,
    size: u64,
    extras: &mut Extras,
) -> std::result::Result<probe::ProbeResult, String> {
    use std::os::unix::fs::FileTypeExt;
    let node = r.host.dev_node(name);
    let meta = std::fs::metadata(&node);
    let is_blk = meta.as_ref().is_ok_and(|m| m.file_type().is_block_device());
    let res = if is_blk {
        probe_file(&node, size)
    } else if let Some(rec) = capture_record(r, name) {
        rec
    } else if meta.as_ref().is_ok_and(|m| m.is_file()) {
        probe_file(&node, size)
    } else if meta.is_err() {
        Err(format!("{} does not exist", r.host.unroot(&node).display()))
    } else {
        Err(format!(
            "{} is not a block device",
            r.host.unroot(&node).display()
        ))
    };
    extras.probes.insert(
        name.to_string(),
        match &res {
            Ok(p) => ProbeRecord {
                result: Some(p.clone()),
                error: None,
            },
            Err(e) => ProbeRecord {
                result: None,
                error: Some(e.clone()),
            },
        },
    );
    res
}

fn probe_file(node: &Path, size: u64) -> std::result::Result<probe::ProbeResult, String> {
    let f = std::fs::File::open(node).map_err(|e| open_error(&e, crate::host::is_root()))?;
    probe::probe(std::io::BufReader::new(f), size).map_err(|e| format!("reading: {e}"))
}

/// Why a device could not be opened for reading, in words: what the kernel answered, and that
/// reading disk contents needs root only when it is a permission error and dbhost is not root.
fn open_error(e: &std::io::Error, root: bool) -> String {
    let denied = matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM));
    if denied && !root {
        format!("opening for reading: {e}; reading disk contents needs root")
    } else {
        format!("opening for reading: {e}")
    }
}

/// What `dbhost debug probe` reports for one file or device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageProbe {
    pub path: String,
    pub size_bytes: u64,
    /// `blank`, `md-member` (an intact md v1.x member: adoptable, not blank) or `refused`.
    pub verdict: &'static str,
    pub signatures: Vec<Signature>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md: Option<MdMember>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonzero_at: Option<u64>,
    /// What detection would refuse a disk with these contents for (empty when blank).
    pub refusals: Vec<Refusal>,
    /// The refusals as one line, with the `--wipe` hint, as `detect` prints them.
    pub reason: String,
}

/// Probe one image file or block device exactly as detection probes a disk (read-only): the
/// same signatures, the same blank proof, the same content refusals.
pub fn probe_image(path: &Path) -> Result<ImageProbe> {
    let shown = path.display().to_string();
    let size = crate::md::content_size_of(path)?;
    let res = probe_file(path, size).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    let refusals = roles::content_refusals(&res.signatures, res.md.as_ref(), res.nonzero_at);
    let verdict = if !refusals.is_empty() {
        "refused"
    } else if res.md.is_some() {
        "md-member"
    } else {
        "blank"
    };
    Ok(ImageProbe {
        path: shown,
        size_bytes: size,
        verdict,
        reason: describe_refusals(&refusals),
        signatures: res.signatures,
        md: res.md,
        nonzero_at: res.nonzero_at,
        refusals,
    })
}

fn capture_record(
    r: &Reader,
    name: &str,
) -> Option<std::result::Result<probe::ProbeResult, String>> {
    let p = r.host.path(format!("/{CAPTURE_DIR}/probes.json"));
    if !p.exists() {
        return None;
    }
    let text = r.text(&p)?;
    let map: BTreeMap<String, ProbeRecord> = serde_json::from_str(&text).ok()?;
    let rec = map.get(name)?;
    Some(match (&rec.result, &rec.error) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(e)) => Err(e.clone()),
        (None, None) => Err("empty capture record".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vpd_serial_is_bounded_by_the_page() {
        assert_eq!(
            vpd_pg80_serial(b"\0\x80\0\x06 ABC12 "),
            Some("ABC12".into())
        );
        // a length byte beyond the page reads what is there
        assert_eq!(vpd_pg80_serial(b"\0\x80\0\xffXY"), Some("XY".into()));
        assert_eq!(vpd_pg80_serial(b"\0\x80\0\x04    "), None);
        assert_eq!(vpd_pg80_serial(b"\0\x80\0"), None);
        assert_eq!(vpd_pg80_serial(b""), None);
    }

    #[test]
    fn not_a_disk_names() {
        assert_eq!(not_a_disk("loop0"), Some("loop device"));
        assert_eq!(not_a_disk("md127"), Some("md array"));
        assert_eq!(not_a_disk("dm-3"), Some("device-mapper device"));
        assert_eq!(not_a_disk("sr0"), Some("optical drive"));
        assert_eq!(not_a_disk("sda"), None);
        assert_eq!(not_a_disk("ramoops"), None);
    }

    #[test]
    fn open_error_names_the_kernel_answer_and_root_only_when_not_root() {
        let denied = std::io::Error::from_raw_os_error(libc::EACCES);
        let as_root = open_error(&denied, true);
        assert!(as_root.contains("Permission denied"), "{as_root}");
        assert!(!as_root.contains("root"), "{as_root}");
        let as_user = open_error(&denied, false);
        assert!(as_user.contains("Permission denied"), "{as_user}");
        assert!(
            as_user.ends_with("reading disk contents needs root"),
            "{as_user}"
        );
        // not a permission problem: no word about root, whoever runs it
        let eio = std::io::Error::from_raw_os_error(libc::EIO);
        for root in [true, false] {
            let t = open_error(&eio, root);
            assert!(
                t.contains("Input/output error") && !t.contains("root"),
                "{t}"
            );
        }
    }

    #[test]
    fn missing_attributes_never_panic() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sys/block/sdz")).unwrap();
        let inv = detect(&Host::with_root(d.path()), &DetectOptions::default()).unwrap();
        assert_eq!(inv.platform, Platform::Other);
        let z = &inv.disks[0];
        assert!(z.missing_attributes.contains(&"size".to_string()), "{z:?}");
        assert!(z.refusals.contains(&Refusal::Unreadable {
            attribute: "size".into()
        }));
        assert!(z.refusals.iter().any(
            |r| matches!(r, Refusal::Unreadable { attribute } if attribute.contains("contents"))
        ));
    }
}
