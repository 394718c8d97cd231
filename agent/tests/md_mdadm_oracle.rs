//! Cross-check dbhost's v1.2 superblocks with `mdadm --examine` (an independent oracle, never
//! used by dbhost itself). Runs only where mdadm is installed; otherwise prints why it skipped,
//! or fails when `DBHOST_REQUIRE_ORACLES=1` (the test command sets it).
//! Also reads mdadm-made member images from `agent/tests/fixtures/md/*.img.gz` when present.

use dbhost::md::superblock::{self, ArrayUuid, Raid0Spec};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The oracle, or `None` where it is not installed. The test command installs mdadm and sets
/// `DBHOST_REQUIRE_ORACLES=1`: there a missing oracle fails the test instead of skipping it.
fn mdadm() -> Option<PathBuf> {
    for p in ["/usr/sbin/mdadm", "/sbin/mdadm", "/usr/bin/mdadm"] {
        if Path::new(p).exists() {
            return Some(PathBuf::from(p));
        }
    }
    assert!(
        std::env::var_os("DBHOST_REQUIRE_ORACLES").is_none_or(|v| v != "1"),
        "mdadm is not installed but DBHOST_REQUIRE_ORACLES=1: install it (apt-get install mdadm)"
    );
    None
}

const MEMBER_BYTES: u64 = 256 << 20;

fn write_members(dir: &Path, spec: &Raid0Spec) -> Vec<PathBuf> {
    (0..spec.raid_disks)
        .map(|i| {
            let p = dir.join(format!("m{i}.img"));
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .read(true)
                .open(&p)
                .unwrap();
            f.set_len(MEMBER_BYTES).unwrap();
            let sb = spec.member(i, MEMBER_BYTES / 512, [0x40 + i as u8; 16]);
            f.seek(SeekFrom::Start(4096)).unwrap();
            f.write_all(&sb.encode()).unwrap();
            f.sync_all().unwrap();
            p
        })
        .collect()
}

fn spec(feature: bool) -> Raid0Spec {
    Raid0Spec {
        set_uuid: ArrayUuid([
            0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55,
            0x55, 0x55,
        ]),
        set_name: "any:data".into(),
        ctime: 1_700_000_000,
        chunk_sectors: 1024,
        raid_disks: 2,
        data_offset: 4096,
        raid0_layout_feature: feature,
    }
}

fn examine(mdadm: &Path, p: &Path) -> String {
    let out = Command::new(mdadm)
        .arg("--examine")
        .arg(p)
        .output()
        .unwrap();
    let s =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mdadm --examine {}: {s}", p.display());
    s
}

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(" : ")?;
            (k.trim() == key).then(|| v.trim())
        })
        .unwrap_or_else(|| panic!("no `{key}` in:\n{text}"))
}

#[test]
fn mdadm_examine_accepts_dbhost_superblocks() {
    let Some(mdadm) = mdadm() else {
        eprintln!("SKIP: mdadm not installed (it is only an oracle for this test)");
        return;
    };
    for feature in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(feature);
        let members = write_members(dir.path(), &s);
        for (i, m) in members.iter().enumerate() {
            let t = examine(&mdadm, m);
            eprintln!("{t}");
            assert_eq!(field(&t, "Magic"), "a92b4efc");
            assert_eq!(field(&t, "Version"), "1.2");
            assert_eq!(
                field(&t, "Feature Map"),
                if feature { "0x1000" } else { "0x0" }
            );
            assert_eq!(
                field(&t, "Array UUID"),
                "11111111:22223333:44445555:55555555"
            );
            assert!(field(&t, "Name").starts_with("any:data"), "{t}");
            assert_eq!(field(&t, "Raid Level"), "raid0");
            assert_eq!(field(&t, "Raid Devices"), "2");
            assert!(field(&t, "Avail Dev Size").starts_with("520192 sectors"));
            assert_eq!(field(&t, "Data Offset"), "4096 sectors");
            assert_eq!(field(&t, "Super Offset"), "8 sectors");
            assert_eq!(field(&t, "State"), "clean");
            assert!(field(&t, "Checksum").ends_with("- correct"), "{t}");
            assert_eq!(field(&t, "Events"), "0");
            assert_eq!(field(&t, "Chunk Size"), "512K");
            assert_eq!(field(&t, "Device Role"), format!("Active device {i}"));
            assert!(field(&t, "Array State").starts_with("AA"), "{t}");
            if feature {
                assert_eq!(field(&t, "Layout"), "original");
            }
            // Our own parser agrees on the checksum mdadm printed.
            let mut buf = vec![0u8; 4096];
            let mut f = std::fs::File::open(m).unwrap();
            f.seek(SeekFrom::Start(4096)).unwrap();
            f.read_exact(&mut buf).unwrap();
            let sb = superblock::parse(&buf).unwrap().unwrap();
            assert!(field(&t, "Checksum").starts_with(&format!("{:x} ", sb.sb_csum)));
        }
    }
}

#[test]
fn mdadm_examine_sees_corruption_like_we_do() {
    let Some(mdadm) = mdadm() else {
        eprintln!("SKIP: mdadm not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let members = write_members(dir.path(), &spec(true));
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&members[0])
        .unwrap();
    let mut buf = vec![0u8; 4096];
    f.seek(SeekFrom::Start(4096)).unwrap();
    f.read_exact(&mut buf).unwrap();
    buf[100] ^= 0x01; // new_level
    f.seek(SeekFrom::Start(4096)).unwrap();
    f.write_all(&buf).unwrap();
    f.sync_all().unwrap();
    let d = superblock::decode(&buf).unwrap().unwrap();
    assert!(!d.checksum_ok());
    let t = examine(&mdadm, &members[0]);
    assert_eq!(
        field(&t, "Checksum"),
        format!("{:x} - expected {:x}", d.sb.sb_csum, d.expected_csum)
    );
}

/// Member images made by a real `mdadm --create` in a guest (the VM harness may drop them here,
/// gzip-compressed). Each must parse with a correct checksum and a v1.2 layout.
#[test]
fn parses_mdadm_made_fixture_images_if_present() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/md");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        eprintln!("SKIP: no {} (fixtures from an mdadm guest)", dir.display());
        return;
    };
    let mut n = 0;
    for e in rd {
        let p = e.unwrap().path();
        if !p.to_string_lossy().ends_with(".img.gz") {
            continue;
        }
        let mut data = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap())
            .read_to_end(&mut data)
            .unwrap();
        let found = superblock::scan(&mut std::io::Cursor::new(&data), data.len() as u64).unwrap();
        let sb = found
            .iter()
            .find_map(|f| f.valid_v1())
            .unwrap_or_else(|| panic!("{}: no valid v1 superblock: {found:?}", p.display()));
        assert_eq!(sb.level, 0, "{}", p.display());
        assert!(sb.role().is_some(), "{}", p.display());
        n += 1;
    }
    eprintln!("checked {n} mdadm-made image(s)");
}

/// A superblock laid out byte for byte as mdadm 4.2 writes it on create (MD.md §1.11 hexdump:
/// feature 0, layout 1, size 0, bad-block log 8 sectors at +8, max_dev 128, host-prefixed name).
/// `mdadm --create` needs the md driver, which this host lacks, so the VM-observed layout is
/// rebuilt here; dbhost's parser must read it and mdadm must call it correct.
#[test]
fn parses_mdadm_42_style_superblock() {
    let mut s = spec(false);
    s.set_name = "vmhost:test".into();
    let mut sb = s.member(1, MEMBER_BYTES / 512, [0x77; 16]);
    sb.bblog_size = 8;
    sb.bblog_offset = 8;
    let buf = sb.encode();
    let p = superblock::parse(&buf).unwrap().unwrap();
    assert_eq!(p.name(), "vmhost:test");
    assert_eq!((p.bblog_size, p.bblog_offset), (8, 8));
    assert_eq!(p.feature_map, 0);
    assert_eq!(p.layout, 1);
    assert_eq!(p.data_size, 0x7f000);
    assert_eq!(p.role(), Some(1));
    let Some(mdadm) = mdadm() else {
        eprintln!("SKIP (oracle part): mdadm not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.img");
    let mut f = std::fs::File::create(&path).unwrap();
    f.set_len(MEMBER_BYTES).unwrap();
    f.seek(SeekFrom::Start(4096)).unwrap();
    f.write_all(&buf).unwrap();
    drop(f);
    let t = examine(&mdadm, &path);
    assert!(field(&t, "Checksum").ends_with("- correct"), "{t}");
    assert!(field(&t, "Bad Block Log").starts_with("512 entries available at offset 8 sectors"));
    assert_eq!(field(&t, "Name"), "vmhost:test");
    assert_eq!(field(&t, "Device Role"), "Active device 1");
}

/// `dbhost md examine` and `mdadm --examine` agree field by field on the same image, for a good
/// and for a corrupted superblock.
#[test]
fn dbhost_examine_agrees_with_mdadm() {
    let Some(mdadm) = mdadm() else {
        eprintln!("SKIP: mdadm not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let members = write_members(dir.path(), &spec(true));
    for corrupt in [false, true] {
        if corrupt {
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&members[1])
                .unwrap();
            f.seek(SeekFrom::Start(4096 + 120)).unwrap();
            f.write_all(&[0x5a]).unwrap();
        }
        let ours = dbhost::cli::md::examine_text(&dbhost::md::examine(&members[1]).unwrap());
        let theirs = examine(&mdadm, &members[1]);
        for key in [
            "Magic",
            "Version",
            "Feature Map",
            "Array UUID",
            "Name",
            "Raid Level",
            "Raid Devices",
            "Data Offset",
            "Super Offset",
            "State",
            "Checksum",
            "Events",
            "Layout",
            "Chunk Size",
            "Device Role",
        ] {
            assert_eq!(
                field(&ours, key),
                field(&theirs, key),
                "{key}\n{ours}\n{theirs}"
            );
        }
        assert!(field(&theirs, "Array State").starts_with(field(&ours, "Array State")));
        assert!(field(&theirs, "Avail Dev Size")
            .starts_with(field(&ours, "Avail Dev Size").split(' ').next().unwrap()));
    }
}
