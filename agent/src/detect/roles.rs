//! Disk roles per platform, IMDS cache modes, and intrinsic eligibility.
//!
//! Roles come from sysfs facts (PEERS.md §5), never from device letters:
//! * Azure SCSI (storvsc, vendor "Msft" model "Virtual Disk"): the VMBus controller's
//!   `device_id`: Gen1 `{00000000-0000-…}` = OS, `{00000000-0001-…}` = resource; Gen2 controller
//!   `{f8b3781a-…}`: LUN 0 = OS, LUN 1 = resource; data controllers `{f8b3781b/c/d-…}` (and any
//!   other controller, as WALinuxAgent's rules do): data disk, LUN = 4th field of H:C:T:L.
//!   `/dev/disk/azure/…` links, when present, are a cross-check (a disagreement refuses the disk).
//! * Azure NVMe: "MSFT NVMe Accelerator v1.0" nsid 1 = OS, nsid n ≥ 2 = data LUN n−2;
//!   "Microsoft NVMe Direct Disk" (v1/v2) = local ephemeral.
//! * AWS: "Amazon Elastic Block Store" = data (the root volume becomes OS below),
//!   "Amazon EC2 NVMe Instance Storage" = local.
//! * GCP: "nvme_card"/"EphemeralDisk"/`google-local-*` = local; "PersistentDisk"/"nvme_card-pd"
//!   /`google-*` = data.
//! * QEMU: every disk is a data disk; a scsi-hd's LUN is the 4th field of H:C:T:L.
//! * Everywhere: the disk under /, /boot, /boot/efi, /usr or an active swap (through partitions,
//!   LVM/dm and md) is the OS disk.

use super::imds::StorageProfile;
use super::model::*;
use super::Facts;

const GEN2_OS_CTRL: &str = "f8b3781a-1e82-4818-a1c3-63d806ec15bb";
const DATA_CTRLS: [&str; 3] = [
    "f8b3781b-1e82-4818-a1c3-63d806ec15bb",
    "f8b3781c-1e82-4818-a1c3-63d806ec15bb",
    "f8b3781d-1e82-4818-a1c3-63d806ec15bb",
];
/// Mount points that make a disk the OS disk.
const OS_MOUNTS: [&str; 5] = ["/", "/boot", "/boot/efi", "/efi", "/usr"];

fn lun_of(addr: &Option<String>) -> Option<u32> {
    addr.as_ref()?.split(':').nth(3)?.parse().ok()
}

/// Role and LUN from sysfs facts only.
fn from_sysfs(platform: Platform, d: &Disk, f: &Facts) -> (DiskRole, Option<u32>, String) {
    let model = d.model.as_deref().unwrap_or("").trim();
    let vendor = d.vendor.as_deref().unwrap_or("").trim();
    let has_id = |p: &str| d.by_id.iter().any(|i| i.starts_with(p));
    match platform {
        Platform::Azure => {
            if d.transport == Transport::Nvme {
                return match model {
                    "MSFT NVMe Accelerator v1.0" => match d.nvme_nsid {
                        Some(1) => (DiskRole::Os, None, format!("{model} nsid 1 = OS disk")),
                        Some(n) if n >= 2 => (
                            DiskRole::Data,
                            Some(n - 2),
                            format!("{model} nsid {n} = data LUN {}", n - 2),
                        ),
                        _ => (DiskRole::Unknown, None, format!("{model} without nsid")),
                    },
                    "Microsoft NVMe Direct Disk" | "Microsoft NVMe Direct Disk v2" => {
                        (DiskRole::Local, None, format!("{model} = local NVMe"))
                    }
                    _ => (
                        DiskRole::Unknown,
                        None,
                        format!("unknown NVMe model {model:?}"),
                    ),
                };
            }
            if let Some(id) = &f.vmbus_device_id {
                let bare = id
                    .trim_matches(|c| c == '{' || c == '}')
                    .to_ascii_lowercase();
                let lun = lun_of(&d.scsi_address);
                let ctx = format!(
                    "VMBus controller {id}, H:C:T:L {}",
                    d.scsi_address.as_deref().unwrap_or("?")
                );
                if bare.starts_with("00000000-0000-") {
                    return (DiskRole::Os, None, format!("{ctx}: Gen1 OS disk"));
                }
                if bare.starts_with("00000000-0001-") {
                    return (
                        DiskRole::Resource,
                        None,
                        format!("{ctx}: Gen1 resource disk"),
                    );
                }
                if bare == GEN2_OS_CTRL {
                    return match lun {
                        Some(0) => (DiskRole::Os, None, format!("{ctx}: Gen2 OS disk (LUN 0)")),
                        Some(1) => (
                            DiskRole::Resource,
                            None,
                            format!("{ctx}: Gen2 resource disk (LUN 1)"),
                        ),
                        _ => (
                            DiskRole::Unknown,
                            None,
                            format!("{ctx}: unexpected LUN on the OS controller"),
                        ),
                    };
                }
                let which = if DATA_CTRLS.contains(&bare.as_str()) {
                    "data controller"
                } else {
                    "other controller"
                };
                return match lun {
                    Some(l) => (
                        DiskRole::Data,
                        Some(l),
                        format!("{ctx}: {which}, data LUN {l}"),
                    ),
                    None => (DiskRole::Unknown, None, format!("{ctx}: no LUN")),
                };
            }
            (
                DiskRole::Unknown,
                None,
                "no VMBus controller found above the disk".into(),
            )
        }
        Platform::Aws => match model {
            "Amazon Elastic Block Store" => (DiskRole::Data, None, format!("{model} = EBS volume")),
            "Amazon EC2 NVMe Instance Storage" => {
                (DiskRole::Local, None, format!("{model} = instance store"))
            }
            _ => (DiskRole::Unknown, None, format!("unknown model {model:?}")),
        },
        Platform::Gcp => {
            if model == "nvme_card" || model == "EphemeralDisk" || has_id("google-local-") {
                (
                    DiskRole::Local,
                    None,
                    format!("local SSD (model {model:?})"),
                )
            } else if model == "PersistentDisk"
                || model == "nvme_card-pd"
                || has_id("google-")
                || has_id("scsi-0Google_PersistentDisk_")
            {
                (
                    DiskRole::Data,
                    None,
                    format!("persistent disk (model {model:?})"),
                )
            } else {
                (DiskRole::Unknown, None, format!("unknown model {model:?}"))
            }
        }
        Platform::Qemu => {
            let lun = if d.transport == Transport::Scsi {
                lun_of(&d.scsi_address)
            } else {
                None
            };
            let what = match (d.transport, vendor) {
                (Transport::Scsi, _) => format!(
                    "QEMU SCSI disk, LUN {}",
                    lun.map_or("?".into(), |l| l.to_string())
                ),
                (Transport::Virtio, _) => "QEMU virtio-blk disk".to_string(),
                (Transport::Nvme, _) => "QEMU NVMe disk".to_string(),
                (t, _) => format!("QEMU {t:?} disk"),
            };
            let what = match &d.serial {
                Some(s) => format!("{what}, serial {s}"),
                None => what,
            };
            (DiskRole::Data, lun, what)
        }
        Platform::Other => (DiskRole::Unknown, None, "platform unknown".into()),
    }
}

/// What a `/dev/disk/azure/…` link says about the disk it points at.
fn from_azure_link(link: &str) -> Option<(DiskRole, Option<u32>)> {
    let lun_after = |p: &str| link.strip_prefix(p).and_then(|n| n.parse::<u32>().ok());
    if link.contains("-part") {
        return None;
    }
    match link {
        "root" | "os" => Some((DiskRole::Os, None)),
        "resource" => Some((DiskRole::Resource, None)),
        _ if link.starts_with("local/") => Some((DiskRole::Local, None)),
        _ => lun_after("data/by-lun/")
            .or_else(|| {
                ["scsi1/lun", "scsi2/lun", "scsi3/lun", "datadisks/lun"]
                    .iter()
                    .find_map(|p| lun_after(p))
            })
            .map(|l| (DiskRole::Data, Some(l))),
    }
}

/// Set `role`, `lun` and `role_evidence`.
pub(crate) fn assign(platform: Platform, d: &mut Disk, f: &Facts) {
    let (mut role, mut lun, why) = from_sysfs(platform, d, f);
    d.role_evidence.push(why);
    if platform == Platform::Azure {
        for link in &f.azure_links {
            let Some((lrole, llun)) = from_azure_link(link) else {
                continue;
            };
            if role == DiskRole::Unknown {
                d.role_evidence
                    .push(format!("/dev/disk/azure/{link} (sysfs did not tell)"));
                role = lrole;
                lun = llun;
            } else if lrole == role && (llun.is_none() || llun == lun) {
                d.role_evidence
                    .push(format!("/dev/disk/azure/{link} agrees"));
            } else {
                let detail = format!(
                    "sysfs says {role:?}{}, /dev/disk/azure/{link} says {lrole:?}{}",
                    lun.map_or(String::new(), |l| format!(" LUN {l}")),
                    llun.map_or(String::new(), |l| format!(" LUN {l}"))
                );
                d.role_evidence.push(format!("CONFLICT: {detail}"));
                d.refusals.push(Refusal::RoleConflict { detail });
            }
        }
    }
    // The disk under /, /boot, swap … is the OS disk, whatever the platform says.
    let os_mount = d
        .mountpoints
        .iter()
        .find(|m| OS_MOUNTS.contains(&m.as_str()))
        .cloned();
    if let Some(m) = os_mount {
        d.role_evidence.push(format!("backs {m}"));
        role = DiskRole::Os;
        lun = None;
    } else if d.swap && role != DiskRole::Resource {
        d.role_evidence.push("backs active swap".into());
        role = DiskRole::Os;
        lun = None;
    }
    d.role = role;
    d.lun = lun;
}

/// Azure: host caching from IMDS, matched by LUN and cross-checked by size.
pub(crate) fn apply_cache_modes(disks: &mut [Disk], p: &StorageProfile) {
    const GIB: u64 = 1 << 30;
    for d in disks.iter_mut() {
        match d.role {
            DiskRole::Data => {
                let Some(lun) = d.lun else { continue };
                let Some(i) = p.data_disks.iter().find(|x| x.lun == Some(lun)) else {
                    d.role_evidence
                        .push(format!("IMDS lists no data disk at LUN {lun}"));
                    continue;
                };
                match i.size_gb {
                    Some(gb) if gb * GIB != d.size_bytes => d.role_evidence.push(format!(
                        "IMDS LUN {lun} is {gb} GiB but the disk has {} bytes: cache mode not trusted",
                        d.size_bytes
                    )),
                    _ => {
                        d.cache_mode = i.caching;
                        d.role_evidence
                            .push(format!("IMDS LUN {lun} {:?} caching {:?}", i.name, i.caching));
                    }
                }
            }
            DiskRole::Os => {
                if let Some(o) = &p.os_disk {
                    d.cache_mode = o.caching;
                }
            }
            _ => {}
        }
    }
}

/// Intrinsic refusals (profile-dependent ones are added by `plan`).
pub(crate) fn eligibility(d: &mut Disk) {
    if d.refusals
        .iter()
        .any(|r| matches!(r, Refusal::NotADisk { .. }))
    {
        return;
    }
    let mut out = Vec::new();
    if d.removable {
        out.push(Refusal::NotADisk {
            what: "removable media".into(),
        });
    }
    match d.role {
        DiskRole::Os => out.push(Refusal::OsDisk),
        DiskRole::Resource => out.push(Refusal::ResourceDisk),
        DiskRole::Local => out.push(Refusal::LocalEphemeral),
        _ => {}
    }
    if d.read_only {
        out.push(Refusal::ReadOnly);
    }
    if !d.partitions.is_empty() {
        out.push(Refusal::HasPartitions {
            partitions: d.partitions.clone(),
        });
    }
    for m in &d.mountpoints {
        out.push(Refusal::Mounted {
            mountpoint: m.clone(),
        });
    }
    if d.swap {
        out.push(Refusal::Swap);
    }
    if !d.holders.is_empty() {
        out.push(Refusal::HeldBy {
            holders: d.holders.clone(),
        });
    }
    out.extend(content_refusals(&d.signatures, d.md.as_ref(), d.nonzero_at));
    out.append(&mut d.refusals);
    d.refusals = out;
}

/// What a disk's contents alone refuse: every signature but an intact md v1.x member's own
/// superblock (left to `plan`, which adopts complete arrays), and, where no signature was found,
/// non-zero bytes in the regions that prove a disk blank.
pub fn content_refusals(
    signatures: &[Signature],
    md: Option<&MdMember>,
    nonzero_at: Option<u64>,
) -> Vec<Refusal> {
    let adoptable = md
        .filter(|m| m.checksum_ok)
        .map(|m| format!("md-1.{}", m.minor_version));
    let mut out: Vec<Refusal> = signatures
        .iter()
        .filter(|s| adoptable.as_deref() != Some(s.kind.as_str()))
        .map(|s| Refusal::HoldsSignature {
            kind: s.kind.clone(),
            offset: s.offset,
        })
        .collect();
    if let Some(offset) = nonzero_at.filter(|_| signatures.is_empty() && md.is_none()) {
        out.push(Refusal::UnrecognizedData { offset });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(name: &str, transport: Transport) -> Disk {
        Disk {
            name: name.into(),
            devnum: "8:0".into(),
            size_bytes: 1 << 30,
            logical_block_size: 512,
            physical_block_size: 4096,
            rotational: Some(false),
            read_only: false,
            removable: false,
            vendor: None,
            model: None,
            serial: None,
            transport,
            by_id: vec![],
            by_path: vec![],
            scsi_address: None,
            nvme_nsid: None,
            partitions: vec![],
            holders: vec![],
            mountpoints: vec![],
            swap: false,
            write_cache: None,
            discard_granularity: None,
            role: DiskRole::Unknown,
            role_evidence: vec![],
            lun: None,
            cache_mode: CacheMode::Unknown,
            signatures: vec![],
            md: None,
            nonzero_at: None,
            missing_attributes: vec![],
            refusals: vec![],
        }
    }
    fn facts(id: Option<&str>) -> Facts {
        Facts {
            vmbus_device_id: id.map(String::from),
            azure_links: vec![],
        }
    }
    fn scsi(addr: &str, ctrl: &str) -> (DiskRole, Option<u32>) {
        let mut d = disk("sdx", Transport::Scsi);
        d.scsi_address = Some(addr.into());
        assign(Platform::Azure, &mut d, &facts(Some(ctrl)));
        (d.role, d.lun)
    }

    #[test]
    fn azure_scsi_controllers() {
        let g2 = "{f8b3781a-1e82-4818-a1c3-63d806ec15bb}";
        assert_eq!(scsi("0:0:0:0", g2), (DiskRole::Os, None));
        assert_eq!(scsi("0:0:0:1", g2), (DiskRole::Resource, None));
        assert_eq!(scsi("0:0:0:2", g2), (DiskRole::Unknown, None));
        assert_eq!(
            scsi("5:0:0:7", "{f8b3781c-1e82-4818-a1c3-63d806ec15bb}"),
            (DiskRole::Data, Some(7))
        );
        assert_eq!(
            scsi("0:0:0:0", "{00000000-0000-8899-0000-000000000000}"),
            (DiskRole::Os, None)
        );
        assert_eq!(
            scsi("1:0:1:0", "{00000000-0001-8899-0000-000000000000}"),
            (DiskRole::Resource, None)
        );
    }

    #[test]
    fn azure_nvme_accelerator_luns_and_local() {
        let mut d = disk("nvme0n5", Transport::Nvme);
        d.model = Some("MSFT NVMe Accelerator v1.0".into());
        d.nvme_nsid = Some(5);
        assign(Platform::Azure, &mut d, &facts(None));
        assert_eq!((d.role.clone(), d.lun), (DiskRole::Data, Some(3)));
        let mut d = disk("nvme1n1", Transport::Nvme);
        d.model = Some("Microsoft NVMe Direct Disk".into());
        assign(Platform::Azure, &mut d, &facts(None));
        assert_eq!(d.role, DiskRole::Local);
    }

    #[test]
    fn backing_root_makes_os_even_for_a_data_lun() {
        let mut d = disk("sdc", Transport::Scsi);
        d.scsi_address = Some("1:0:0:0".into());
        d.mountpoints = vec!["/".into()];
        assign(
            Platform::Azure,
            &mut d,
            &facts(Some("{f8b3781b-1e82-4818-a1c3-63d806ec15bb}")),
        );
        assert_eq!((d.role.clone(), d.lun), (DiskRole::Os, None));
    }

    fn md_member() -> MdMember {
        MdMember {
            array_uuid: "a:b:c:d".into(),
            name: "data".into(),
            level: 0,
            raid_disks: 2,
            role: Some(0),
            chunk_sectors: 1024,
            events: 1,
            minor_version: 2,
            homehost: None,
            dev_number: 0,
            data_offset: 2048,
            data_size: 1,
            checksum_ok: true,
        }
    }
    fn sig(kind: &str, offset: u64) -> Signature {
        Signature {
            kind: kind.into(),
            offset,
            detail: None,
        }
    }

    #[test]
    fn content_refusals_leave_md_members_to_plan_and_refuse_unknown_bytes() {
        let md = md_member();
        assert_eq!(
            content_refusals(&[sig("md-1.2", 4096)], Some(&md), None),
            vec![]
        );
        assert_eq!(
            content_refusals(&[], None, Some(7)),
            vec![Refusal::UnrecognizedData { offset: 7 }]
        );
        assert_eq!(
            content_refusals(&[sig("exfat", 3)], None, None),
            vec![Refusal::HoldsSignature {
                kind: "exfat".into(),
                offset: 3
            }]
        );
        assert_eq!(content_refusals(&[], None, None), vec![]);
        // eligibility puts it on the disk
        let mut d = disk("sdc", Transport::Scsi);
        d.nonzero_at = Some(7);
        eligibility(&mut d);
        assert_eq!(d.refusals, vec![Refusal::UnrecognizedData { offset: 7 }]);
    }

    #[test]
    fn md_members_and_other_refusals() {
        let md = md_member();
        let mut d = disk("sdc", Transport::Scsi);
        d.md = Some(md.clone());
        d.signatures = vec![sig("md-1.2", 4096), sig("md-1.0", 999)];
        eligibility(&mut d);
        assert_eq!(
            d.refusals,
            vec![Refusal::HoldsSignature {
                kind: "md-1.0".into(),
                offset: 999
            }]
        );
        let mut d = disk("sdc", Transport::Scsi);
        d.md = Some(MdMember {
            checksum_ok: false,
            ..md
        });
        d.signatures = vec![sig("md-1.2", 4096)];
        d.read_only = true;
        d.removable = true;
        eligibility(&mut d);
        assert_eq!(
            d.refusals,
            vec![
                Refusal::NotADisk {
                    what: "removable media".into()
                },
                Refusal::ReadOnly,
                Refusal::HoldsSignature {
                    kind: "md-1.2".into(),
                    offset: 4096
                }
            ]
        );
    }
}
