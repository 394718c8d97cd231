//! Plan tests on hand-built inventories. Exact (snapshot-style) assertions on text and numbers.

use super::*;
use crate::detect::model::{MdMember, RunningArray, Signature, Transport};
use crate::profile;
use std::path::Path;

const GIB: u64 = 1 << 30;

fn prof(text: &str) -> Profile {
    profile::parse(text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn shipped(name: &str) -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../profiles")
        .join(name);
    profile::load(&path)
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A blank data disk as detection reports it. Built through serde so fields that detection adds
/// later (with `#[serde(default)]`) do not break these tests.
fn data(name: &str, lun: Option<u32>, size_gib: u64, cache: CacheMode) -> Disk {
    serde_json::from_value(serde_json::json!({
        "name": name,
        "devnum": "8:0",
        "size_bytes": size_gib * GIB,
        "logical_block_size": 512,
        "physical_block_size": 4096,
        "rotational": false,
        "read_only": false,
        "removable": false,
        "vendor": "Msft",
        "model": "Virtual Disk",
        "serial": null,
        "transport": "scsi",
        "by_id": [],
        "by_path": [],
        "scsi_address": lun.map(|l| format!("1:0:0:{l}")),
        "nvme_nsid": null,
        "partitions": [],
        "holders": [],
        "mountpoints": [],
        "swap": false,
        "write_cache": null,
        "discard_granularity": null,
        "role": {"kind": "data"},
        "lun": lun,
        "cache_mode": cache,
        "signatures": [],
        "md": null,
        "missing_attributes": [],
        "refusals": [],
    }))
    .unwrap()
}

fn os_disk(name: &str) -> Disk {
    let mut d = data(name, None, 30, CacheMode::ReadWrite);
    d.role = DiskRole::Os;
    d.partitions = vec![format!("{name}1"), format!("{name}2")];
    d.mountpoints = vec!["/".into()];
    d.refusals = vec![
        Refusal::OsDisk,
        Refusal::HasPartitions {
            partitions: d.partitions.clone(),
        },
    ];
    d
}

fn resource_disk(name: &str) -> Disk {
    let mut d = data(name, None, 16, CacheMode::Unknown);
    d.role = DiskRole::Resource;
    d.signatures = vec![Signature {
        kind: "ntfs".into(),
        offset: 3,
        detail: None,
    }];
    d.refusals = vec![
        Refusal::ResourceDisk,
        Refusal::HoldsSignature {
            kind: "ntfs".into(),
            offset: 3,
        },
    ];
    d
}

fn md_member(mut d: Disk, uuid: &str, role: u32, raid_disks: u32) -> Disk {
    d.md = Some(
        serde_json::from_value::<MdMember>(serde_json::json!({
            "array_uuid": uuid,
            "name": "any:dbdata",
            "level": 0,
            "raid_disks": raid_disks,
            "role": role,
            "chunk_sectors": 1024,
            "events": 7,
            "minor_version": 2,
        }))
        .unwrap(),
    );
    d.signatures = vec![Signature {
        kind: "md-1.2".into(),
        offset: 4096,
        detail: None,
    }];
    d.refusals = vec![Refusal::HoldsSignature {
        kind: "md-1.2".into(),
        offset: 4096,
    }];
    d
}

fn inv(platform: Platform, disks: Vec<Disk>) -> Inventory {
    Inventory {
        schema: 1,
        platform,
        kernel: Some("6.1.0-28-amd64".into()),
        disks,
        arrays: Vec::new(),
        imds: "ok".into(),
    }
}

/// Azure Gen1 host: OS disk sda, resource disk sdb, blank no-cache data disks at LUN 0 and 1.
fn azure_two_blank() -> Inventory {
    let mut c = data("sdc", Some(0), 512, CacheMode::None);
    c.by_id = vec!["scsi-3600224800000000000000000000000c0".into()];
    let mut d = data("sdd", Some(1), 512, CacheMode::None);
    d.by_id = vec!["scsi-3600224800000000000000000000000d1".into()];
    inv(
        Platform::Azure,
        vec![os_disk("sda"), resource_disk("sdb"), d, c],
    )
}

#[test]
fn two_blank_azure_no_cache_disks_create_raid0() {
    let p = shipped("azure-mysql.toml");
    let plan = plan(&p, &azure_two_blank()).unwrap();
    assert_eq!(plan.decision, DisksDecision::Create);
    let a = plan.array.as_ref().unwrap();
    // 512 GiB = 1073741824 sectors: mdadm's data offset 264192 (MD.md §1.7); each member keeps
    // 1073741824 - 264192 = 1073477632 sectors (a whole number of 1024-sector chunks).
    assert_eq!(a.data_offset_sectors, Some(264_192));
    assert_eq!(a.usable_bytes, Some(2 * 1_073_477_632 * 512));
    assert_eq!(a.usable_bytes, Some(1_099_241_095_168));
    assert_eq!(a.chunk_bytes, 512 * 1024);
    assert_eq!(a.members, 2);
    assert!(!a.multizone);
    assert_eq!(
        plan.filesystem.geometry,
        FsGeometry::Xfs {
            su_bytes: Some(524_288),
            sw: Some(2),
            log_su_bytes: Some(32_768)
        }
    );
    let text = plan.to_string();
    let want = "\
profile: Azure: every no-cache data disk -> RAID-0 (512K) -> XFS at /datadrive -> MySQL
platform: azure
disks: create a new array from 2 blank disk(s)
  member 0: sdc  LUN 0  serial -  512G  /dev/disk/by-id/scsi-3600224800000000000000000000000c0
  member 1: sdd  LUN 1  serial -  512G  /dev/disk/by-id/scsi-3600224800000000000000000000000d1
array: raid0 \"dbdata\" at /dev/md/dbdata, chunk 512K, metadata 1.2, data offset 264192 sectors (129M), usable 1099241095168 bytes (1023.7G)
filesystem: mkfs.xfs -K -L dbdata -m uuid=<new-uuid> -d su=512k,sw=2 -l su=32k /dev/md/dbdata
  note: XFS log stripe unit 32K: the 512K chunk is above XFS's 256K maximum for the log (mkfs.xfs would fall back to the same)
mount: /datadrive
  fstab: UUID=<fs-uuid> /datadrive xfs noatime,nofail,x-systemd.device-timeout=120s,x-dbhost.owner=dbdata 0 0
database: move the mysql datadir to /datadrive/mysql; the old datadir is kept, renamed, until `dbhost apply --finalize`
tuning: on, 0 override(s)
all disks:
  DISK  LUN  SERIAL  SIZE  CACHE      STATE     REASON
  sdc   0    -       512G  none       blank     selected
  sdd   1    -       512G  none       blank     selected
  sda   -    -       30G   readwrite  excluded  OS disk; has partitions: sda1, sda2
  sdb   -    -       16G   unknown    excluded  temporary/resource disk (contents are lost on redeploy); holds a ntfs signature at byte 3
";
    assert_eq!(text, want, "got:\n{text}");
}

#[test]
fn two_disks_needed_one_eligible_refuses_listing_every_disk() {
    let p = shipped("azure-mysql.toml");
    let mut i = azure_two_blank();
    i.disks[2].cache_mode = CacheMode::ReadOnly; // sdd, LUN 1
    let r = plan(&p, &i).unwrap_err();
    assert_eq!(
        r.reasons,
        vec![RefusalReason::CountMismatch {
            expected: "at least 2 (raid0)".into(),
            selected: 1
        }]
    );
    let want = "\
refused on azure:
  - the profile needs at least 2 (raid0) disk(s), 1 selected
disks:
  DISK  LUN  SERIAL  SIZE  CACHE      STATE     REASON
  sdc   0    -       512G  none       blank     selected
  sdd   1    -       512G  readonly   excluded  host cache mode ReadOnly is not allowed by the profile
  sda   -    -       30G   readwrite  excluded  OS disk; has partitions: sda1, sda2
  sdb   -    -       16G   unknown    excluded  temporary/resource disk (contents are lost on redeploy); holds a ntfs signature at byte 3
";
    assert_eq!(r.to_string(), want, "got:\n{r}");
    // JSON: every disk with its machine-readable reasons.
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["reasons"][0]["reason"], "count_mismatch");
    assert_eq!(j["disks"].as_array().unwrap().len(), 4);
    assert_eq!(j["disks"][1]["name"], "sdd");
    assert_eq!(j["disks"][1]["state"], "excluded");
    assert_eq!(
        j["disks"][1]["reasons"][0]["reason"],
        "cache_mode_not_allowed"
    );
    assert_eq!(j["disks"][1]["reasons"][0]["mode"], "readonly");
    assert_eq!(j["disks"][2]["reasons"][0]["reason"], "os_disk");
    // And it round-trips.
    let back: PlanRefusal = serde_json::from_value(j).unwrap();
    assert_eq!(back, r);
}

#[test]
fn cache_mode_filter_uses_assumed_mode_only_when_unknown() {
    let mut i = azure_two_blank();
    for d in &mut i.disks[2..] {
        d.cache_mode = CacheMode::Unknown; // IMDS unavailable
    }
    let strict = shipped("azure-mysql.toml");
    let r = plan(&strict, &i).unwrap_err();
    assert_eq!(
        r.reasons,
        vec![
            RefusalReason::NoDisks,
            RefusalReason::CacheModeUnknown {
                disks: vec!["sdc".into(), "sdd".into()]
            }
        ]
    );
    assert!(r.to_string().contains("  - the host cache mode of sdc, sdd is unknown (IMDS gave no answer, or this is not Azure); if you know the disks use no host caching, set disks.assume-cache-mode = \"none\"\n"), "{r}");
    assert_eq!(
        r.disks[0].reasons,
        vec![DiskReason::Disk(Refusal::CacheModeNotAllowed {
            mode: CacheMode::Unknown
        })]
    );
    let assume = prof(
        "version = 1\n[disks]\nplatform = \"azure\"\nallowed-cache-modes = [\"none\"]\nassume-cache-mode = \"none\"\n",
    );
    let pl = plan(&assume, &i).unwrap();
    assert_eq!(pl.members.len(), 2);
    assert_eq!(pl.disks[0].cache_mode, CacheMode::None);
    // A known mode is never overridden by the assumption.
    i.disks[2].cache_mode = CacheMode::ReadWrite;
    let r = plan(&assume, &i).unwrap_err();
    assert_eq!(r.disks[1].name, "sdd");
    assert_eq!(
        r.disks[1].reasons,
        vec![DiskReason::Disk(Refusal::CacheModeNotAllowed {
            mode: CacheMode::ReadWrite
        })]
    );
}

#[test]
fn stable_member_order_ignores_kernel_names() {
    // QEMU virtio-scsi: sdX letters are not in LUN order (VM-TESTING.md).
    let mk = |name: &str, lun: u32| {
        let mut d = data(name, Some(lun), 1, CacheMode::Unknown);
        d.serial = Some(format!("data{lun}"));
        d
    };
    let i = inv(
        Platform::Qemu,
        vec![mk("sda", 2), mk("sdb", 3), mk("sdc", 1), mk("sdd", 0)],
    );
    let p = shipped("qemu-dev.toml");
    let pl = plan(&p, &i).unwrap();
    let order: Vec<(u32, &str, Option<u32>)> = pl
        .members
        .iter()
        .map(|m| (m.role, m.name.as_str(), m.lun))
        .collect();
    assert_eq!(
        order,
        [
            (0, "sdd", Some(0)),
            (1, "sdc", Some(1)),
            (2, "sda", Some(2)),
            (3, "sdb", Some(3))
        ]
    );
    // Without LUNs (virtio-blk): by serial, then name.
    let mk2 = |name: &str, serial: &str| {
        let mut d = data(name, None, 1, CacheMode::Unknown);
        d.serial = Some(serial.into());
        d.transport = Transport::Virtio;
        d
    };
    let i = inv(
        Platform::Qemu,
        vec![
            mk2("vdb", "vdata2"),
            mk2("vdc", "vdata1"),
            mk2("vdd", "vdata3"),
        ],
    );
    let pl = plan(&p, &i).unwrap();
    let names: Vec<&str> = pl.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["vdc", "vdb", "vdd"]);
    // Shuffling the inventory changes nothing.
    let mut shuffled = i.clone();
    shuffled.disks.reverse();
    assert_eq!(plan(&p, &shuffled).unwrap().members, pl.members);
}

#[test]
fn qemu_profile_selects_by_serial_and_leaves_harness_disks_alone() {
    let mut root = data("vda", None, 10, CacheMode::Unknown);
    root.serial = Some("root".into());
    root.role = DiskRole::Os;
    root.refusals = vec![Refusal::OsDisk];
    let mut cidata = data("vdb", None, 1, CacheMode::Unknown);
    cidata.serial = Some("cidata".into());
    let mut d1 = data("sda", Some(0), 1, CacheMode::Unknown);
    d1.serial = Some("data1".into());
    let mut d2 = data("nvme0n1", None, 1, CacheMode::Unknown);
    d2.serial = Some("nvme-data1".into());
    let i = inv(Platform::Qemu, vec![root, cidata, d1, d2]);
    let pl = plan(&shipped("qemu-dev.toml"), &i).unwrap();
    let names: Vec<&str> = pl.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["sda", "nvme0n1"]);
    let cid = pl.disks.iter().find(|d| d.name == "vdb").unwrap();
    assert_eq!(cid.state, DiskState::Excluded);
    assert_eq!(
        cid.reasons,
        vec![DiskReason::Disk(Refusal::NotSelected {
            why: "serial \"cidata\" matches none of data*, vdata*, nvme-data*".into()
        })]
    );
}

#[test]
fn lun_selection() {
    let p = prof("version = 1\n[disks]\nluns = [1, \"3-4\"]\nmin-size = \"1G\"\n");
    let i = inv(
        Platform::Azure,
        vec![
            data("sdc", Some(0), 8, CacheMode::None),
            data("sdd", Some(1), 8, CacheMode::None),
            data("sde", Some(4), 8, CacheMode::None),
            data("nvme0n1", None, 8, CacheMode::None),
        ],
    );
    let pl = plan(&p, &i).unwrap();
    let names: Vec<&str> = pl.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["sdd", "sde"]);
    let reasons: Vec<String> = pl
        .disks
        .iter()
        .filter(|d| !d.selected())
        .map(|d| format!("{}: {}", d.name, d.reasons[0]))
        .collect();
    assert_eq!(
        reasons,
        [
            "sdc: not selected by the profile: LUN 0 is not in 1, 3-4",
            "nvme0n1: not selected by the profile: no LUN known; the profile selects LUNs 1, 3-4"
        ]
    );
}

#[test]
fn too_small_disks_are_excluded() {
    let p = prof("version = 1\n[disks]\nmin-size = \"64G\"\n");
    let i = inv(
        Platform::Gcp,
        vec![
            data("sdb", Some(0), 128, CacheMode::Unknown),
            data("sdc", Some(1), 32, CacheMode::Unknown),
            data("sdd", Some(2), 128, CacheMode::Unknown),
        ],
    );
    let pl = plan(&p, &i).unwrap();
    assert_eq!(pl.members.len(), 2);
    assert_eq!(
        pl.disks[1].reasons,
        vec![DiskReason::Disk(Refusal::TooSmall {
            size_bytes: 32 * GIB,
            min_bytes: 64 * GIB
        })]
    );
}

#[test]
fn exact_count_mismatch_refuses() {
    let p = prof("version = 1\n[disks]\nexpected-count = 4\n");
    let r = plan(&p, &azure_two_blank()).unwrap_err();
    assert_eq!(
        r.reasons[0].to_string(),
        "the profile needs 4 disk(s), 2 selected"
    );
}

#[test]
fn platform_mismatch_refuses() {
    let p = shipped("azure-mysql.toml");
    let mut i = azure_two_blank();
    i.platform = Platform::Aws;
    let r = plan(&p, &i).unwrap_err();
    assert_eq!(
        r.reasons[0].to_string(),
        "the profile is for platform azure, this host is aws"
    );
    assert_eq!(r.disks.len(), 4);
}

fn azure_array(uuid: &str) -> Inventory {
    let mut i = azure_two_blank();
    // Members attached in reverse: role 0 on LUN 1, role 1 on LUN 0.
    i.disks[2] = md_member(i.disks[2].clone(), uuid, 0, 2); // sdd, LUN 1
    i.disks[3] = md_member(i.disks[3].clone(), uuid, 1, 2); // sdc, LUN 0
    i
}

const UUID: &str = "11111111:22223333:44445555:55555555";

#[test]
fn adopt_complete_array_in_role_order() {
    let p = shipped("azure-mysql.toml");
    let pl = plan(&p, &azure_array(UUID)).unwrap();
    assert_eq!(
        pl.decision,
        DisksDecision::AdoptArray {
            array_uuid: UUID.into(),
            array_name: "any:dbdata".into(),
            running_as: None
        }
    );
    let names: Vec<(u32, &str)> = pl
        .members
        .iter()
        .map(|m| (m.role, m.name.as_str()))
        .collect();
    assert_eq!(names, [(0, "sdd"), (1, "sdc")]);
    assert_eq!(pl.filesystem.mkfs, None);
    let a = pl.array.as_ref().unwrap();
    assert_eq!((a.data_offset_sectors, a.usable_bytes), (None, None));
    assert_eq!(a.chunk_bytes, 512 * 1024);
    assert!(pl.warnings.is_empty(), "{:?}", pl.warnings);
    let text = pl.to_string();
    assert!(text.contains(
        "disks: adopt existing md array 11111111:22223333:44445555:55555555 (name \"any:dbdata\", 2 members); assemble it\n"
    ), "{text}");
    assert!(
        text.contains("filesystem: keep the existing xfs on /dev/md/dbdata\n"),
        "{text}"
    );
}

#[test]
fn adopt_running_array_held_by_md() {
    let p = shipped("azure-mysql.toml");
    let mut i = azure_array(UUID);
    for d in &mut i.disks[2..] {
        d.holders = vec!["md127".into()];
        d.refusals.push(Refusal::HeldBy {
            holders: vec!["md127".into()],
        });
        // Detection also reports the array's mount on its members (seen in a guest).
        d.refusals.push(Refusal::Mounted {
            mountpoint: "/datadrive".into(),
        });
    }
    i.arrays.push(RunningArray {
        name: "md127".into(),
        level: Some("raid0".into()),
        array_state: Some("clean".into()),
        uuid: Some(UUID.into()),
        members: vec!["sdc".into(), "sdd".into()],
    });
    let pl = plan(&p, &i).unwrap();
    assert_eq!(
        pl.decision,
        DisksDecision::AdoptArray {
            array_uuid: UUID.into(),
            array_name: "any:dbdata".into(),
            running_as: Some("md127".into())
        }
    );
}

#[test]
fn adopt_with_other_chunk_warns_and_keeps_the_array_chunk() {
    let p = shipped("azure-mysql.toml");
    let mut i = azure_array(UUID);
    for d in &mut i.disks[2..] {
        d.md.as_mut().unwrap().chunk_sectors = 128;
    }
    let pl = plan(&p, &i).unwrap();
    assert_eq!(pl.array.as_ref().unwrap().chunk_bytes, 64 * 1024);
    assert_eq!(
        pl.warnings,
        ["the existing array's chunk is 64K, the profile says 512K; adopting it as it is"]
    );
}

#[test]
fn incomplete_array_refuses() {
    let p = shipped("azure-mysql.toml");
    let mut i = azure_array(UUID);
    i.disks[3] = md_member(i.disks[3].clone(), UUID, 1, 3); // claims 3 members
    i.disks[2].md.as_mut().unwrap().raid_disks = 3;
    let r = plan(&p, &i).unwrap_err();
    assert_eq!(
        r.reasons,
        vec![RefusalReason::IncompleteArray {
            array_uuid: UUID.into(),
            detail: "2 of 3 roles present (0, 1); missing role(s) 2".into()
        }]
    );
    assert!(r.to_string().contains(
        "  - md array 11111111:22223333:44445555:55555555 is incomplete: 2 of 3 roles present (0, 1); missing role(s) 2\n"
    ), "{r}");
    let sdd = r.disks.iter().find(|d| d.name == "sdd").unwrap();
    assert_eq!(
        sdd.state,
        DiskState::Member {
            array_uuid: UUID.into(),
            role: Some(0)
        }
    );
    assert_eq!(sdd.reasons.len(), 1);
}

#[test]
fn duplicate_roles_and_two_arrays_refuse() {
    let p = shipped("azure-mysql.toml");
    let mut i = azure_array(UUID);
    i.disks[3].md.as_mut().unwrap().role = Some(0);
    let r = plan(&p, &i).unwrap_err();
    assert_eq!(
        r.reasons[0].to_string(),
        "md array 11111111:22223333:44445555:55555555 is incomplete: 1 of 2 roles present (0); missing role(s) 1; role(s) 0 claimed by more than one disk"
    );
    let mut i = azure_array(UUID);
    i.disks[3].md.as_mut().unwrap().array_uuid = "aaaaaaaa:bbbbbbbb:cccccccc:dddddddd".into();
    let r = plan(&p, &i).unwrap_err();
    assert_eq!(
        r.reasons,
        vec![RefusalReason::SeveralArrays {
            array_uuids: vec![UUID.into(), "aaaaaaaa:bbbbbbbb:cccccccc:dddddddd".into()]
        }]
    );
}

#[test]
fn mixed_blank_and_member_refuses() {
    let p = shipped("azure-mysql.toml");
    let mut i = azure_two_blank();
    i.disks[2] = md_member(i.disks[2].clone(), UUID, 0, 1); // sdd
    let r = plan(&p, &i).unwrap_err();
    assert_eq!(
        r.reasons,
        vec![RefusalReason::Mixed {
            blank: vec!["sdc".into()],
            members: vec!["sdd".into()],
            other: vec![]
        }]
    );
    assert_eq!(
        r.reasons[0].to_string(),
        "the selected disks are neither all blank nor exactly one complete array: blank: sdc; md members: sdd;"
    );
    assert_eq!(
        r.disks[1].reasons[0].to_string(),
        "not blank: md superblock of array 11111111:22223333:44445555:55555555 (\"any:dbdata\"), role 0 of 1"
    );
}

#[test]
fn selected_disk_holding_data_refuses_and_says_what() {
    let p = shipped("azure-mysql.toml");
    let mut i = azure_two_blank();
    let sdd = &mut i.disks[2];
    sdd.signatures = vec![Signature {
        kind: "ext4".into(),
        offset: 1080,
        detail: None,
    }];
    sdd.refusals = vec![Refusal::HoldsSignature {
        kind: "ext4".into(),
        offset: 1080,
    }];
    let r = plan(&p, &i).unwrap_err();
    assert_eq!(
        r.reasons,
        vec![RefusalReason::Busy {
            disks: vec!["sdd".into()]
        }]
    );
    let text = r.to_string();
    assert!(text.contains("  sdd   1    -       512G  none       busy      holds a ext4 signature at byte 1080 (wipe it explicitly with --wipe if it is really unused)\n"), "{text}");
}

#[test]
fn selected_disk_with_unrecognized_data_refuses_even_without_a_refusal() {
    let p = shipped("azure-mysql.toml");
    let mut i = azure_two_blank();
    i.disks[2].nonzero_at = Some(4096);
    i.disks[2].refusals = vec![Refusal::UnrecognizedData { offset: 4096 }];
    let r = plan(&p, &i).unwrap_err();
    assert_eq!(
        r.reasons,
        vec![RefusalReason::Busy {
            disks: vec!["sdd".into()]
        }]
    );
    let text = r.to_string();
    assert!(text.contains("busy      holds unrecognized data (non-zero bytes at offset 4096) (wipe it explicitly with --wipe if it is really unused)\n"), "{text}");
    // an inventory that carries the offset but not the refusal (made by hand, or by an older
    // dbhost) is not blank either: plan says what is there
    i.disks[2].refusals.clear();
    let text = plan(&p, &i).unwrap_err().to_string();
    assert!(
        text.contains("unrecognized data (non-zero bytes at offset 4096)"),
        "{text}"
    );
}

#[test]
fn single_disk_profile_uses_the_disk_directly() {
    let p = shipped("single-disk-test.toml");
    let mut i = azure_two_blank();
    i.disks.truncate(3); // sda (OS), sdb (resource), sdd (LUN 1)
    i.disks[2].cache_mode = CacheMode::ReadOnly;
    let pl = plan(&p, &i).unwrap();
    assert_eq!(pl.decision, DisksDecision::Create);
    assert_eq!(pl.array, None);
    let dev = "/dev/disk/by-id/scsi-3600224800000000000000000000000d1";
    assert_eq!(pl.filesystem.device, dev);
    assert_eq!(
        pl.filesystem.mkfs.as_ref().unwrap().join(" "),
        format!("mkfs.xfs -K -L dbdata -m uuid=<new-uuid> {dev}")
    );
    assert_eq!(
        pl.filesystem.geometry,
        FsGeometry::Xfs {
            su_bytes: None,
            sw: None,
            log_su_bytes: None
        }
    );
    let text = pl.to_string();
    assert!(
        text.contains("disks: use 1 blank disk directly (no array)\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("array: none (single disk {dev})\n")),
        "{text}"
    );
    assert!(
        text.contains("database: move the mariadb datadir to /datadrive/mysql;"),
        "{text}"
    );
    // Two blank disks for a one-disk profile: refused, not guessed.
    let r = plan(&p, &azure_two_blank()).unwrap_err();
    assert_eq!(
        r.reasons[0].to_string(),
        "the profile needs 1 disk(s), 2 selected"
    );
}

#[test]
fn single_disk_rerun_adopts_its_own_mounted_filesystem() {
    let p = shipped("single-disk-test.toml");
    let mut i = azure_two_blank();
    i.disks.truncate(3);
    let d = &mut i.disks[2];
    d.signatures = vec![Signature {
        kind: "xfs".into(),
        offset: 0,
        detail: Some("label=dbdata uuid=0c6e3a8e-5a3c-4d7e-9d59-2e1f2a7d9b11".into()),
    }];
    d.mountpoints = vec!["/datadrive".into()];
    d.refusals = vec![
        Refusal::HoldsSignature {
            kind: "xfs".into(),
            offset: 0,
        },
        Refusal::Mounted {
            mountpoint: "/datadrive".into(),
        },
    ];
    let pl = plan(&p, &i).unwrap();
    assert_eq!(pl.decision, DisksDecision::AdoptFilesystem);
    assert_eq!(pl.filesystem.mkfs, None);
    // The same filesystem mounted elsewhere is somebody else's: refused.
    i.disks[2].mountpoints = vec!["/srv".into()];
    i.disks[2].refusals[1] = Refusal::Mounted {
        mountpoint: "/srv".into(),
    };
    let r = plan(&p, &i).unwrap_err();
    assert_eq!(
        r.reasons,
        vec![RefusalReason::Busy {
            disks: vec!["sdd".into()]
        }]
    );
    // An unmounted xfs with another label is not ours either.
    i.disks[2].mountpoints.clear();
    i.disks[2].refusals.truncate(1);
    i.disks[2].signatures[0].detail = Some("label=backup".into());
    assert!(plan(&p, &i).is_err());
}

#[test]
fn ext4_geometry_in_filesystem_blocks() {
    let p =
        prof("version = 1\n[filesystem]\ntype = \"ext4\"\n[database]\nengine = \"postgresql\"\n");
    let i = inv(
        Platform::Azure,
        (0..4)
            .map(|l| {
                data(
                    &format!("sd{}", (b'c' + l as u8) as char),
                    Some(l),
                    64,
                    CacheMode::None,
                )
            })
            .collect(),
    );
    let pl = plan(&p, &i).unwrap();
    assert_eq!(
        pl.filesystem.geometry,
        FsGeometry::Ext4 {
            block_bytes: 4096,
            stride: Some(128),
            stripe_width: Some(512)
        }
    );
    assert_eq!(
        pl.filesystem.mkfs.as_ref().unwrap().join(" "),
        "mkfs.ext4 -q -b 4096 -L dbdata -U <new-uuid> -E nodiscard,lazy_itable_init=0,lazy_journal_init=0,stride=128,stripe_width=512 /dev/md/dbdata"
    );
    assert_eq!(
        pl.mount.fstab_line,
        "UUID=<fs-uuid> /datadrive ext4 noatime,nofail,x-systemd.device-timeout=120s,x-dbhost.owner=dbdata 0 2"
    );
    let db = pl.database.as_ref().unwrap();
    assert_eq!(db.target, "/datadrive/postgresql");
}

#[test]
fn small_chunk_keeps_xfs_log_su_and_unequal_members_are_multizone() {
    let p = prof("version = 1\n[array]\nchunk = \"64K\"\n[tuning]\nenabled = false\n");
    let i = inv(
        Platform::Qemu,
        vec![
            data("sda", Some(0), 8, CacheMode::Unknown),
            data("sdb", Some(1), 16, CacheMode::Unknown),
        ],
    );
    let pl = plan(&p, &i).unwrap();
    let a = pl.array.as_ref().unwrap();
    // 8 GiB first member (16777216 sectors): headroom halves to 16384, bitmap space 8,
    // 24 + 8 + 16384 rounded up to 1 MiB = 18432 (MD.md §1.7), used for both members.
    assert_eq!(a.data_offset_sectors, Some(18_432));
    assert!(a.multizone);
    assert_eq!(
        a.usable_bytes,
        Some((8 * GIB / 512 - 18_432 + 16 * GIB / 512 - 18_432) * 512)
    );
    assert_eq!(
        pl.filesystem.mkfs.as_ref().unwrap().join(" "),
        "mkfs.xfs -K -L dbdata -m uuid=<new-uuid> -d su=64k,sw=2 -l su=64k /dev/md/dbdata"
    );
    assert!(pl.filesystem.notes.is_empty());
    assert!(!pl.tuning.enabled);
    assert!(pl.to_string().contains("tuning: off\n"));
    assert_eq!(pl.warnings.len(), 1);
}

#[test]
fn plan_json_is_stable() {
    let pl = plan(&shipped("postgresql.toml"), &azure_two_blank()).unwrap();
    let j = serde_json::to_value(&pl).unwrap();
    assert_eq!(j["schema"], 1);
    assert_eq!(j["decision"]["action"], "create");
    assert_eq!(j["array"]["data_offset_sectors"], 264_192);
    assert_eq!(j["array"]["device"], "/dev/md/pgdata");
    assert_eq!(j["filesystem"]["geometry"]["type"], "xfs");
    assert_eq!(j["database"]["engine"], "postgresql");
    assert_eq!(j["tuning"]["overrides"][0], "random_page_cost = 1.1");
    assert_eq!(j["disks"][0]["state"], "blank");
    let back: Plan = serde_json::from_value(j).unwrap();
    assert_eq!(back, pl);
}

/// The order `apply` runs its steps in: tuning lands after the mount and before the relocation,
/// so the database's restart during the move applies the tuned settings.
#[test]
fn apply_tunes_before_the_relocation_so_the_move_restart_applies_the_settings() {
    let p = shipped("azure-mysql.toml");
    let plan = plan(&p, &azure_two_blank()).unwrap();
    let steps = crate::apply::build::build(&p, &plan, &Default::default()).unwrap();
    let ids: Vec<String> = steps.iter().map(|s| s.id()).collect();
    let at = |id: &str| {
        ids.iter()
            .position(|x| x == id)
            .unwrap_or_else(|| panic!("{id} not in {ids:?}"))
    };
    assert!(at("fs.mount") < at("tune"), "{ids:?}");
    assert!(at("tune") < at("db.preflight"), "{ids:?}");
    assert!(at("tune") < at("db.stop"), "{ids:?}");
    assert_eq!(ids.last().map(String::as_str), Some("db.health"), "{ids:?}");
}

fn with_exfat(mut d: Disk) -> Disk {
    d.signatures = vec![Signature {
        kind: "exfat".into(),
        offset: 3,
        detail: None,
    }];
    d.refusals = vec![Refusal::HoldsSignature {
        kind: "exfat".into(),
        offset: 3,
    }];
    d
}

#[test]
fn wipe_clears_disks_that_only_hold_data_and_says_so() {
    let p = shipped("azure-mysql.toml");
    let mut i = azure_two_blank();
    i.disks[2] = with_exfat(i.disks[2].clone());
    i.disks[3].nonzero_at = Some(4096);
    i.disks[3].refusals = vec![Refusal::UnrecognizedData { offset: 4096 }];
    // Without --wipe: refused, and the hint says what would help.
    assert!(plan(&p, &i).is_err());
    let pl = plan_with(&p, &i, PlanOptions { wipe: true }).unwrap();
    assert_eq!(pl.decision, DisksDecision::Create);
    let wiped: Vec<_> = pl
        .members
        .iter()
        .filter(|m| m.wipe)
        .map(|m| &m.name)
        .collect();
    assert_eq!(wiped.len(), 2, "{:?}", pl.members);
    assert!(
        pl.warnings
            .iter()
            .any(|w| w.contains("--wipe") && w.contains("lost")),
        "{:?}",
        pl.warnings
    );
    let text = pl.to_string();
    assert!(text.contains("WIPE (--wipe)"), "{text}");
    assert!(text.contains("(cleared: --wipe was given)"), "{text}");
}

#[test]
fn wipe_never_clears_what_is_in_use_partitioned_or_an_array() {
    let p = shipped("azure-mysql.toml");
    let wipe = PlanOptions { wipe: true };
    // Mounted: in use, whatever --wipe says.
    let mut i = azure_two_blank();
    i.disks[2] = with_exfat(i.disks[2].clone());
    i.disks[2].mountpoints = vec!["/mnt/x".into()];
    i.disks[2].refusals.push(Refusal::Mounted {
        mountpoint: "/mnt/x".into(),
    });
    let r = plan_with(&p, &i, wipe).unwrap_err();
    assert!(matches!(r.reasons[0], RefusalReason::Busy { .. }), "{r}");
    assert!(!r.to_string().contains("--wipe if"), "{r}");
    // Partitions: dbhost never deletes partitions; no hint either.
    let mut i = azure_two_blank();
    i.disks[2].partitions = vec!["sdd1".into()];
    i.disks[2].refusals = vec![
        Refusal::HasPartitions {
            partitions: vec!["sdd1".into()],
        },
        Refusal::HoldsSignature {
            kind: "gpt".into(),
            offset: 512,
        },
    ];
    let r = plan_with(&p, &i, wipe).unwrap_err();
    assert!(matches!(r.reasons[0], RefusalReason::Busy { .. }), "{r}");
    assert!(!r.to_string().contains("--wipe if"), "{r}");
    // The members of a complete array are adopted, never wiped (a re-run of `apply --wipe`
    // must find the array the first run made).
    let pl = plan_with(&p, &azure_array(UUID), wipe).unwrap();
    assert!(
        matches!(pl.decision, DisksDecision::AdoptArray { .. }),
        "{:?}",
        pl.decision
    );
    assert!(pl.members.iter().all(|m| !m.wipe));
}

#[test]
fn a_device_smaller_than_mkfs_accepts_is_refused_by_the_plan() {
    let mib = 1024 * 1024;
    let single = |fs: &str| {
        prof(&format!(
            "version = 1\n[disks]\nmin-size = \"16M\"\nexpected-count = 1\n[array]\nlevel = \"none\"\n\
             [filesystem]\ntype = \"{fs}\"\n[database]\nengine = \"none\"\n"
        ))
    };
    let one = |bytes: u64| {
        let mut d = data("sdc", Some(0), 1, CacheMode::None);
        d.size_bytes = bytes;
        inv(Platform::Qemu, vec![d])
    };
    let r = plan(&single("xfs"), &one(299 * mib)).unwrap_err();
    assert_eq!(
        r.reasons,
        vec![RefusalReason::TooSmallForFilesystem {
            fs: FsType::Xfs,
            device: "/dev/sdc".into(),
            size_bytes: 299 * mib,
            min_bytes: 300 * mib,
        }]
    );
    assert!(
        r.reasons[0]
            .to_string()
            .contains("mkfs.xfs needs at least 314572800"),
        "{}",
        r.reasons[0]
    );
    assert!(plan(&single("xfs"), &one(300 * mib)).is_ok());
    assert!(plan(&single("ext4"), &one(64 * mib)).is_ok());
    // An array: its usable size counts, and a striped XFS needs 1 GiB (2 x (514 MiB - a 2 MiB
    // data offset) = 1 GiB is enough, 2 x 513 MiB is not).
    let two = prof(
        "version = 1\n[disks]\nmin-size = \"16M\"\nexpected-count = 2\n[database]\nengine = \"none\"\n",
    );
    let mut a = data("sdc", Some(0), 1, CacheMode::None);
    let mut b = data("sdd", Some(1), 1, CacheMode::None);
    a.size_bytes = 150 * mib;
    b.size_bytes = 150 * mib;
    let r = plan(&two, &inv(Platform::Qemu, vec![a, b])).unwrap_err();
    assert!(matches!(
        r.reasons[0],
        RefusalReason::TooSmallForFilesystem {
            fs: FsType::Xfs,
            ..
        }
    ));
}

#[test]
fn the_plan_shows_the_mkfs_command_apply_runs() {
    // One home for mkfs command lines (fs::mkfs): the plan's preview is that command with the
    // UUID placeholder, for every filesystem type and with or without an array.
    for (fs, disks) in [("xfs", 2usize), ("xfs", 1), ("ext4", 2), ("ext4", 1)] {
        let level = if disks == 1 { "none" } else { "raid0" };
        let p = prof(&format!(
            "version = 1\n[disks]\nexpected-count = {disks}\n[array]\nlevel = \"{level}\"\n\
             [filesystem]\ntype = \"{fs}\"\n[database]\nengine = \"none\"\n"
        ));
        let all = [
            data("sdc", Some(0), 8, CacheMode::None),
            data("sdd", Some(1), 8, CacheMode::None),
        ];
        let pl = plan(&p, &inv(Platform::Qemu, all[..disks].to_vec())).unwrap();
        let stripe = pl.array.as_ref().map(|a| crate::fs::mkfs::Stripe {
            chunk_bytes: a.chunk_bytes,
            members: a.members,
        });
        let cmd = crate::fs::mkfs::command(&crate::fs::mkfs::MkfsSpec {
            fs: pl.filesystem.fs_type.into(),
            device: pl.filesystem.device.clone(),
            label: pl.filesystem.label.clone(),
            uuid: NEW_UUID.into(),
            stripe,
            over_unfinished: false,
        });
        assert_eq!(
            pl.filesystem.mkfs.as_ref().unwrap().join(" "),
            cmd.display(),
            "{fs} over {disks} disk(s)"
        );
    }
}

#[test]
fn an_adopted_array_keeps_its_own_name() {
    // An array mdadm made on this host ("host:name") under another name than the profile's:
    // apply assembles it by UUID and the boot unit expects it by its own name.
    let p = shipped("azure-mysql.toml");
    let mut i = azure_array(UUID);
    for d in &mut i.disks {
        if let Some(m) = d.md.as_mut() {
            m.name = "oldhost:legacy".into();
        }
    }
    let pl = plan(&p, &i).unwrap();
    assert!(matches!(pl.decision, DisksDecision::AdoptArray { .. }));
    assert_eq!(pl.array.as_ref().unwrap().name, "legacy");
}
