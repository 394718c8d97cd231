//! Exact classification of every disk in every host-tree fixture (made by
//! `scripts/gen-fixtures.py`), IMDS cache modes against a loopback fake, and capture → replay.

mod common;

use common::{copy_tree, fixture};
use dbhost::detect::{self, CacheMode, DetectOptions, DiskRole, Inventory, Platform};
use dbhost::host::Host;
use std::io::{Read, Write};
use std::net::TcpListener;

fn no_imds() -> DetectOptions {
    DetectOptions {
        query_imds: false,
        ..DetectOptions::default()
    }
}

fn run(name: &str) -> Inventory {
    detect::detect(&Host::with_root(fixture(name)), &no_imds()).unwrap()
}

/// (disk, role, lun, refusal reasons in order)
type Expect<'a> = (&'a str, DiskRole, Option<u32>, &'a [&'a str]);

fn check(inv: &Inventory, platform: Platform, expect: &[Expect]) {
    assert_eq!(inv.platform, platform);
    let names: Vec<&str> = inv.disks.iter().map(|d| d.name.as_str()).collect();
    let want: Vec<&str> = expect.iter().map(|e| e.0).collect();
    assert_eq!(names, want, "disk list");
    for (d, (name, role, lun, reasons)) in inv.disks.iter().zip(expect) {
        assert_eq!(&d.role, role, "{name} role; evidence {:?}", d.role_evidence);
        assert_eq!(d.lun, *lun, "{name} lun; evidence {:?}", d.role_evidence);
        let got: Vec<String> = d
            .refusals
            .iter()
            .map(|r| {
                serde_json::to_value(r).unwrap()["reason"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(got, *reasons, "{name} refusals: {:?}", d.refusals);
        assert!(
            d.missing_attributes.is_empty()
                || d.refusals
                    .iter()
                    .any(|r| matches!(r, detect::Refusal::NotADisk { .. })),
            "{name} missing {:?}",
            d.missing_attributes
        );
    }
}

const OS_GPT: &[&str] = &[
    "os_disk",
    "has_partitions",
    "mounted",
    "mounted",
    "holds_signature",
    "holds_signature",
];

#[test]
fn azure_gen1_scsi() {
    let inv = run("azure-gen1-scsi");
    check(
        &inv,
        Platform::Azure,
        &[
            (
                "sda",
                DiskRole::Os,
                None,
                &["os_disk", "has_partitions", "mounted", "holds_signature"],
            ),
            (
                "sdb",
                DiskRole::Resource,
                None,
                &["resource_disk", "has_partitions", "holds_signature"],
            ),
            ("sdc", DiskRole::Data, Some(0), &[]),
            ("sdd", DiskRole::Data, Some(1), &[]),
        ],
    );
    // the WALinuxAgent links were used as a cross-check
    let sdc = &inv.disks[2];
    assert!(
        sdc.role_evidence
            .iter()
            .any(|e| e.contains("scsi1/lun0 agrees")),
        "{:?}",
        sdc.role_evidence
    );
    assert_eq!(
        inv.disks[1].signatures[0].detail.as_deref(),
        Some("types 0x07")
    );
    assert_eq!(sdc.scsi_address.as_deref(), Some("3:0:0:0"));
    assert_eq!(sdc.vendor.as_deref(), Some("Msft"));
    assert_eq!(sdc.model.as_deref(), Some("Virtual Disk"));
    assert_eq!(sdc.size_bytes, 128 << 30);
    assert_eq!(sdc.write_cache.as_deref(), Some("write back"));
    assert_eq!(
        sdc.by_id,
        vec![
            "scsi-3600224801f3c4e5d6a7b8c9d0e1f2a3b",
            "wwn-0x600224801f3c4e5d6a7b8c9d0e1f2a3b"
        ]
    );
    assert_eq!(inv.imds, "skipped (disabled)");
}

#[test]
fn azure_gen2() {
    let inv = run("azure-gen2");
    check(
        &inv,
        Platform::Azure,
        &[
            ("sda", DiskRole::Os, None, OS_GPT),
            (
                "sdb",
                DiskRole::Resource,
                None,
                &[
                    "resource_disk",
                    "has_partitions",
                    "mounted",
                    "holds_signature",
                    "holds_signature",
                ],
            ),
            ("sdc", DiskRole::Data, Some(0), &[]),
            ("sdd", DiskRole::Data, Some(1), &[]),
            ("sde", DiskRole::Data, Some(2), &[]),
            ("sdf", DiskRole::Data, Some(3), &["holds_signature"]),
        ],
    );
    let sdf = &inv.disks[5];
    assert_eq!(sdf.signatures[0].kind, "ext4");
    assert_eq!(sdf.signatures[0].offset, 0x438);
    assert!(sdf.signatures[0]
        .detail
        .as_ref()
        .unwrap()
        .contains("label=olddata"));
    assert_eq!(inv.disks[1].mountpoints, vec!["/mnt"]);
}

#[test]
fn azure_nvme_v6() {
    let inv = run("azure-nvme-v6");
    check(
        &inv,
        Platform::Azure,
        &[
            ("nvme0n1", DiskRole::Os, None, OS_GPT),
            ("nvme0n2", DiskRole::Data, Some(0), &[]),
            ("nvme0n3", DiskRole::Data, Some(1), &[]),
            ("nvme1n1", DiskRole::Local, None, &["local_ephemeral"]),
        ],
    );
    assert_eq!(inv.disks[1].nvme_nsid, Some(2));
    assert!(inv.disks[1]
        .role_evidence
        .iter()
        .any(|e| e.contains("data/by-lun/0 agrees")));
    assert_eq!(inv.disks[3].serial.as_deref(), Some("a1b2c3d4e5f60718"));
}

#[test]
fn aws_nitro() {
    check(
        &run("aws-nitro"),
        Platform::Aws,
        &[
            ("nvme0n1", DiskRole::Os, None, OS_GPT),
            ("nvme1n1", DiskRole::Data, None, &[]),
            ("nvme2n1", DiskRole::Local, None, &["local_ephemeral"]),
            ("nvme3n1", DiskRole::Local, None, &["local_ephemeral"]),
        ],
    );
}

#[test]
fn gcp() {
    let inv = run("gcp");
    check(
        &inv,
        Platform::Gcp,
        &[
            ("nvme0n1", DiskRole::Local, None, &["local_ephemeral"]),
            ("sda", DiskRole::Os, None, OS_GPT),
            ("sdb", DiskRole::Data, None, &[]),
        ],
    );
    assert_eq!(
        inv.disks[2].by_id,
        vec!["google-pgdata", "scsi-0Google_PersistentDisk_pgdata"]
    );
}

#[test]
fn qemu_virtio_scsi() {
    let inv = run("qemu-virtio-scsi");
    check(
        &inv,
        Platform::Qemu,
        &[
            ("loop1", DiskRole::Unknown, None, &["not_a_disk"]),
            ("nvme0n1", DiskRole::Data, None, &[]),
            ("sda", DiskRole::Data, Some(0), &[]),
            ("sdb", DiskRole::Data, Some(1), &[]),
            (
                "vda",
                DiskRole::Os,
                None,
                &[
                    "os_disk",
                    "has_partitions",
                    "mounted",
                    "swap",
                    "holds_signature",
                ],
            ),
        ],
    );
    let sdb = &inv.disks[3];
    assert_eq!(sdb.serial.as_deref(), Some("data1"));
    assert_eq!(sdb.scsi_address.as_deref(), Some("2:0:0:1"));
    assert_eq!(sdb.by_path, vec!["pci-0000:00:03.0-scsi-0:0:0:1"]);
    assert_eq!(sdb.rotational, Some(true));
    assert!(inv.disks[4].swap);
}

#[test]
fn shuffled_letters() {
    let inv = run("shuffled");
    check(
        &inv,
        Platform::Azure,
        &[
            ("dm-0", DiskRole::Unknown, None, &["not_a_disk"]),
            ("sda", DiskRole::Data, Some(1), &[]),
            ("sdb", DiskRole::Data, Some(0), &[]),
            (
                "sdc",
                DiskRole::Os,
                None,
                &[
                    "os_disk",
                    "has_partitions",
                    "mounted",
                    "mounted",
                    "held_by",
                    "holds_signature",
                    "holds_signature",
                ],
            ),
            ("sdd", DiskRole::Resource, None, &["resource_disk"]),
            // an intact v1.2 member is left to plan (adopt or refuse), but listed
            ("sde", DiskRole::Data, Some(2), &[]),
        ],
    );
    let sdc = &inv.disks[3];
    assert_eq!(sdc.mountpoints, vec!["/boot", "/"], "root on LVM on sdc2");
    assert_eq!(sdc.holders, vec!["dm-0"]);
    let sde = &inv.disks[5];
    assert_eq!(sde.signatures[0].kind, "md-1.2");
    let md = sde.md.as_ref().unwrap();
    assert_eq!(md.array_uuid, "01234567:89abcdef:01234567:89abcdef");
    assert_eq!(
        (md.name.as_str(), md.homehost.as_deref()),
        ("dbdata", Some("any"))
    );
    assert_eq!(
        (
            md.level,
            md.raid_disks,
            md.role,
            md.events,
            md.chunk_sectors
        ),
        (0, 2, Some(0), 42, 1024)
    );
    assert!(md.checksum_ok);
    assert!(!sde.is_blank());
}

#[test]
fn deterministic_and_json_roundtrip() {
    for f in [
        "azure-gen1-scsi",
        "azure-gen2",
        "azure-nvme-v6",
        "aws-nitro",
        "gcp",
        "qemu-virtio-scsi",
        "shuffled",
    ] {
        let a = run(f);
        let b = run(f);
        assert_eq!(a, b, "{f}");
        let json = serde_json::to_string(&a).unwrap();
        let back: Inventory = serde_json::from_str(&json).unwrap();
        assert_eq!(a, back, "{f}");
        assert_eq!(a.schema, detect::INVENTORY_SCHEMA);
    }
}

/// Fake IMDS on loopback answering every request with `body`.
fn fake_imds(body: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    ep
}

#[test]
fn azure_cache_modes_from_fake_imds() {
    // LUN 0 None, LUN 1 ReadOnly, LUN 2 size mismatch (not trusted), LUN 3 ReadWrite
    let ep = fake_imds(
        r#"{"osDisk":{"caching":"ReadWrite","diskSizeGB":"30","name":"os"},"dataDisks":[
        {"lun":"0","caching":"None","diskSizeGB":"256","name":"d0"},
        {"lun":"1","caching":"ReadOnly","diskSizeGB":"256","name":"d1"},
        {"lun":"2","caching":"None","diskSizeGB":"512","name":"d2"},
        {"lun":"3","caching":"ReadWrite","diskSizeGB":"256","name":"d3"}]}"#,
    );
    let opts = DetectOptions {
        imds_endpoint: Some(ep),
        ..DetectOptions::default()
    };
    let inv = detect::detect(&Host::with_root(fixture("azure-gen2")), &opts).unwrap();
    assert_eq!(inv.imds, "ok");
    let modes: Vec<(String, CacheMode)> = inv
        .disks
        .iter()
        .map(|d| (d.name.clone(), d.cache_mode))
        .collect();
    assert_eq!(
        modes,
        vec![
            ("sda".into(), CacheMode::ReadWrite),
            ("sdb".into(), CacheMode::Unknown),
            ("sdc".into(), CacheMode::None),
            ("sdd".into(), CacheMode::ReadOnly),
            ("sde".into(), CacheMode::Unknown),
            ("sdf".into(), CacheMode::ReadWrite),
        ]
    );
    assert!(inv.disks[4]
        .role_evidence
        .iter()
        .any(|e| e.contains("not trusted")));
}

#[test]
fn imds_unreachable_leaves_cache_unknown() {
    // a loopback port with nothing listening
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let opts = DetectOptions {
        imds_endpoint: Some(ep),
        imds_attempts: 2,
        imds_backoff: std::time::Duration::from_millis(1),
        ..DetectOptions::default()
    };
    let inv = detect::detect(&Host::with_root(fixture("azure-gen1-scsi")), &opts).unwrap();
    assert!(inv.imds.starts_with("error:"), "{}", inv.imds);
    assert!(inv.disks.iter().all(|d| d.cache_mode == CacheMode::Unknown));
}

#[test]
fn capture_then_replay_gives_identical_inventory() {
    let ep = fake_imds(
        r#"{"dataDisks":[{"lun":"0","caching":"None","diskSizeGB":"128"},{"lun":"1","caching":"ReadOnly","diskSizeGB":"128"}]}"#,
    );
    for f in [
        "azure-gen1-scsi",
        "azure-gen2",
        "azure-nvme-v6",
        "aws-nitro",
        "gcp",
        "qemu-virtio-scsi",
        "shuffled",
    ] {
        let host = Host::with_root(fixture(f));
        let opts = DetectOptions {
            imds_endpoint: Some(ep.clone()),
            ..DetectOptions::default()
        };
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("host.tar.gz");
        let summary = detect::capture::capture_host(&host, &opts, &archive).unwrap();
        let original = summary.inventory.clone();
        assert_eq!(original, detect::detect(&host, &opts).unwrap(), "{f}");

        let out = tmp.path().join("replay");
        std::fs::create_dir(&out).unwrap();
        let gz = flate2::read::GzDecoder::new(std::fs::File::open(&archive).unwrap());
        tar::Archive::new(gz).unpack(&out).unwrap();
        // no disk contents were copied
        for d in &original.disks {
            assert!(
                !out.join("dev").join(&d.name).exists(),
                "{f}: dev/{} copied",
                d.name
            );
        }
        // replay without any IMDS endpoint: the captured answer is used
        let replayed = detect::detect(&Host::with_root(&out), &DetectOptions::default()).unwrap();
        let mut expect = original.clone();
        if expect.platform == Platform::Azure {
            assert_eq!(original.imds, "ok", "{f}");
            expect.imds = "ok (replayed from capture)".into();
        }
        assert_eq!(replayed, expect, "{f}: replay differs");

        // the manifest covers every regular file with the right hash
        let manifest = std::fs::read_to_string(out.join("dbhost-capture/MANIFEST.sha256")).unwrap();
        let mut n = 0;
        for line in manifest.lines() {
            let (hash, path) = line.split_once("  ").unwrap();
            use sha2::Digest;
            let data = std::fs::read(out.join(path)).unwrap();
            assert_eq!(
                hex::encode(sha2::Sha256::digest(&data)),
                hash,
                "{f}: {path}"
            );
            n += 1;
        }
        assert!(n > 10, "{f}: manifest has {n} entries");
        // symlinks are stored as symlinks
        let sys_block = std::fs::symlink_metadata(
            out.join("sys/block")
                .join(&original.disks.last().unwrap().name),
        )
        .unwrap();
        assert!(sys_block.file_type().is_symlink(), "{f}");
    }
}

#[test]
fn cli_detect_table_and_json_on_every_fixture() {
    let bin = env!("CARGO_BIN_EXE_dbhost");
    for f in [
        "azure-gen1-scsi",
        "azure-gen2",
        "azure-nvme-v6",
        "aws-nitro",
        "gcp",
        "qemu-virtio-scsi",
        "shuffled",
    ] {
        let out = std::process::Command::new(bin)
            .args(["detect", "--sysroot"])
            .arg(fixture(f))
            .env_remove("DBHOST_IMDS_ENDPOINT")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("NAME") && text.contains("VERDICT"), "{text}");
        let inv = run_default(f);
        let candidates = inv.disks.iter().filter(|d| d.is_candidate()).count();
        assert!(
            text.ends_with(&format!("{candidates} data candidate(s)\n")),
            "{text}"
        );
        for d in &inv.disks {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{} ", d.name))),
                "{f}: no row for {}",
                d.name
            );
        }
        if f == "shuffled" {
            assert!(
                text.contains("candidate, md member of \"dbdata\""),
                "{text}"
            );
            assert!(text.contains("held by dm-0"), "{text}");
        }
        let json = std::process::Command::new(bin)
            .args(["--output", "json", "detect", "--sysroot"])
            .arg(fixture(f))
            .env_remove("DBHOST_IMDS_ENDPOINT")
            .output()
            .unwrap();
        assert!(json.status.success());
        let inv: Inventory = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(inv, run_default(f), "{f}");
    }
}

fn run_default(f: &str) -> Inventory {
    // what the CLI does on a sysroot without an endpoint: IMDS skipped (not the live host)
    assert!(
        std::env::var("DBHOST_IMDS_ENDPOINT").is_err(),
        "unset DBHOST_IMDS_ENDPOINT to run the tests"
    );
    detect::detect(&Host::with_root(fixture(f)), &DetectOptions::default()).unwrap()
}

#[test]
fn azure_link_disagreeing_with_sysfs_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&fixture("azure-gen1-scsi"), tmp.path());
    // the udev link says LUN 0 is sdd, sysfs says sdd is LUN 1
    let l = tmp.path().join("dev/disk/azure/scsi1/lun0");
    std::fs::remove_file(&l).unwrap();
    std::os::unix::fs::symlink("../../../sdd", &l).unwrap();
    let inv = run_at(tmp.path());
    let sdd = inv.disks.iter().find(|d| d.name == "sdd").unwrap();
    assert_eq!(sdd.lun, Some(1));
    assert!(
        matches!(sdd.refusals.as_slice(), [detect::Refusal::RoleConflict { detail }] if detail.contains("scsi1/lun0")),
        "{:?}",
        sdd.refusals
    );
}

#[test]
fn unreadable_attributes_are_reported_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&fixture("azure-gen2"), tmp.path());
    let sdc = std::fs::canonicalize(tmp.path().join("sys/block/sdc")).unwrap();
    std::fs::remove_file(sdc.join("queue/rotational")).unwrap();
    std::fs::remove_file(sdc.join("size")).unwrap();
    std::fs::remove_file(tmp.path().join("dev/sdd")).unwrap();
    let inv = run_at(tmp.path());
    let c = inv.disks.iter().find(|d| d.name == "sdc").unwrap();
    assert_eq!(c.missing_attributes, vec!["size", "queue/rotational"]);
    assert_eq!(c.rotational, None);
    assert_eq!((c.role.clone(), c.lun), (DiskRole::Data, Some(0)));
    assert_eq!(
        c.refusals,
        vec![detect::Refusal::Unreadable {
            attribute: "size".into()
        }]
    );
    let d = inv.disks.iter().find(|d| d.name == "sdd").unwrap();
    assert!(
        matches!(d.refusals.as_slice(), [detect::Refusal::Unreadable { attribute }] if attribute.contains("/dev/sdd does not exist")),
        "{:?}",
        d.refusals
    );
}

fn run_at(p: &std::path::Path) -> Inventory {
    detect::detect(&Host::with_root(p), &no_imds()).unwrap()
}

#[test]
fn cli_capture_host_then_detect_on_the_replay() {
    let bin = env!("CARGO_BIN_EXE_dbhost");
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("cap.tar.gz");
    let st = std::process::Command::new(bin)
        .args(["debug", "capture-host", "--no-imds", "--sysroot"])
        .arg(fixture("shuffled"))
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(String::from_utf8_lossy(&st.stdout).contains("6 disks"));
    let out = tmp.path().join("replay");
    std::fs::create_dir(&out).unwrap();
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&archive).unwrap());
    tar::Archive::new(gz).unpack(&out).unwrap();
    let json = std::process::Command::new(bin)
        .args(["--output", "json", "detect", "--no-imds", "--sysroot"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(json.status.success());
    let inv: Inventory = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(inv, run("shuffled"));
}
