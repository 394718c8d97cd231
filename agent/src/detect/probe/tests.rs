//! Unit tests of the probe: one synthetic buffer per kind, the blank proof, md parsing.

use super::md::{md1_checksum, MD_MAGIC};
use super::*;
use std::io::Cursor;

const MIB: u64 = 1 << 20;

fn img(size: usize) -> Vec<u8> {
    vec![0u8; size]
}
fn put(b: &mut [u8], off: usize, data: &[u8]) {
    b[off..off + data.len()].copy_from_slice(data);
}
fn kinds(r: &ProbeResult) -> Vec<(String, u64)> {
    r.signatures
        .iter()
        .map(|s| (s.kind.clone(), s.offset))
        .collect()
}
fn run(b: Vec<u8>) -> ProbeResult {
    let size = b.len() as u64;
    probe(Cursor::new(b), size).unwrap()
}
fn only(b: Vec<u8>, kind: &str, off: u64) {
    let r = run(b);
    assert_eq!(kinds(&r), vec![(kind.to_string(), off)], "{r:?}");
}

#[test]
fn blank_disk_has_no_signature() {
    assert_eq!(run(img(4 * MIB as usize)), ProbeResult::default());
}

#[test]
fn short_source_reads_zeros_past_its_end() {
    let mut b = img(2048);
    put(&mut b, 0x438, &0xEF53u16.to_le_bytes());
    let r = probe(Cursor::new(b), 10 * MIB).unwrap();
    assert_eq!(r.signatures[0].kind, "ext2");
}

#[test]
fn gpt_primary_512_and_4096_and_backup_only() {
    let mut b = img(MIB as usize);
    put(&mut b, 512, b"EFI PART");
    let n = b.len();
    put(&mut b, n - 512, b"EFI PART");
    let r = run(b);
    assert_eq!(
        kinds(&r),
        vec![("gpt".into(), 512), ("gpt-backup".into(), MIB - 512)]
    );
    let mut b = img(MIB as usize);
    put(&mut b, 4096, b"EFI PART");
    only(b, "gpt", 4096);
    // backup-GPT-only disk (primary wiped, e.g. by a careless `dd` of the first MiB)
    let mut b = img(MIB as usize);
    let n = b.len();
    put(&mut b, n - 4096, b"EFI PART");
    only(b, "gpt-backup", MIB - 4096);
}

#[test]
fn mbr_including_protective() {
    let mut b = img(MIB as usize);
    put(&mut b, 510, &[0x55, 0xAA]);
    // blank table with the marker only: not an MBR
    assert!(run(b.clone()).signatures.is_empty());
    b[446 + 4] = 0x83;
    only(b.clone(), "mbr", 510);
    b[446 + 4] = 0xee;
    let r = run(b);
    assert_eq!(r.signatures[0].detail.as_deref(), Some("protective"));
}

#[test]
fn ext_variants_with_label() {
    let mut b = img(MIB as usize);
    put(&mut b, 0x438, &0xEF53u16.to_le_bytes());
    put(&mut b, 1024 + 0x78, b"data");
    only(b.clone(), "ext2", 0x438);
    put(&mut b, 1024 + 0x5c, &4u32.to_le_bytes());
    only(b.clone(), "ext3", 0x438);
    put(&mut b, 1024 + 0x60, &0x2c0u32.to_le_bytes());
    let r = run(b);
    assert_eq!(kinds(&r), vec![("ext4".into(), 0x438)]);
    assert!(r.signatures[0]
        .detail
        .as_ref()
        .unwrap()
        .contains("label=data"));
}

#[test]
fn xfs_btrfs_swap_lvm_iso_bcache() {
    let mut b = img(MIB as usize);
    put(&mut b, 0, b"XFSB");
    only(b, "xfs", 0);
    let mut b = img(MIB as usize);
    put(&mut b, 0x10040, b"_BHRfS_M");
    only(b, "btrfs", 0x10040);
    let mut b = img(MIB as usize);
    put(&mut b, 4096 - 10, b"SWAPSPACE2");
    only(b, "swap", 4086);
    let mut b = img(MIB as usize);
    put(&mut b, 65536 - 10, b"SWAP-SPACE");
    only(b, "swap", 65526);
    let mut b = img(MIB as usize);
    put(&mut b, 512, b"LABELONE");
    put(&mut b, 512 + 24, b"LVM2 001");
    only(b, "lvm2", 512);
    let mut b = img(MIB as usize);
    put(&mut b, 0x8001, b"CD001");
    only(b, "iso9660", 0x8001);
    let mut b = img(MIB as usize);
    put(
        &mut b,
        4096 + 24,
        &[
            0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba,
            0x6d, 0x81,
        ],
    );
    only(b, "bcache", 4120);
}

#[test]
fn luks1_luks2_and_secondary_header() {
    let mut b = img(8 * MIB as usize);
    put(&mut b, 0, b"LUKS\xba\xbe\x00\x01");
    only(b.clone(), "luks", 0);
    put(&mut b, 6, &[0, 2]);
    put(&mut b, 0x4000, b"SKUL\xba\xbe");
    let r = run(b);
    assert_eq!(
        kinds(&r),
        vec![("luks".into(), 0), ("luks2-secondary".into(), 0x4000)]
    );
    // primary header wiped: the secondary alone still counts
    let mut b = img(8 * MIB as usize);
    put(&mut b, 0x8000, b"SKUL\xba\xbe");
    only(b, "luks2-secondary", 0x8000);
}

#[test]
fn ntfs_and_vfat_are_not_mbr() {
    let mut b = img(MIB as usize);
    put(&mut b, 3, b"NTFS    ");
    put(&mut b, 510, &[0x55, 0xAA]);
    b[446 + 4] = 0x07; // boot code bytes that would look like a table entry
    only(b, "ntfs", 3);
    let mut b = img(MIB as usize);
    put(&mut b, 0x52, b"FAT32   ");
    put(&mut b, 510, &[0x55, 0xAA]);
    only(b, "vfat", 0x52);
    let mut b = img(MIB as usize);
    put(&mut b, 0x36, b"FAT16   ");
    put(&mut b, 510, &[0x55, 0xAA]);
    only(b, "vfat", 0x36);
    // FAT string without the marker: nothing
    let mut b = img(MIB as usize);
    put(&mut b, 0x36, b"FAT16   ");
    assert!(run(b).signatures.is_empty());
}

#[test]
fn zfs_uberblock_in_first_and_last_label() {
    let mut b = img(4 * MIB as usize);
    put(&mut b, 131072 + 2048, &0x00bab10cu64.to_le_bytes());
    only(b, "zfs", 131072 + 2048);
    let mut b = img(4 * MIB as usize);
    let l3 = 4 * MIB as usize - 262144;
    put(&mut b, l3 + 131072, &0x00bab10cu64.to_be_bytes());
    only(b, "zfs", (l3 + 131072) as u64);
}

/// Build a v1.x superblock as mdadm would (fields per MD.md §1.2), with a valid checksum.
fn md1_sb(super_sector: u64, dev_number: u32, role: u16) -> Vec<u8> {
    let mut sb = vec![0u8; 4096];
    put(&mut sb, 0, &MD_MAGIC.to_le_bytes());
    put(&mut sb, 4, &1u32.to_le_bytes());
    put(
        &mut sb,
        16,
        &[
            0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55,
            0x55, 0x55,
        ],
    );
    put(&mut sb, 32, b"any:data");
    put(&mut sb, 72, &0i32.to_le_bytes());
    put(&mut sb, 88, &1024u32.to_le_bytes());
    put(&mut sb, 92, &2u32.to_le_bytes());
    put(&mut sb, 128, &2048u64.to_le_bytes());
    put(&mut sb, 136, &100_000u64.to_le_bytes());
    put(&mut sb, 144, &super_sector.to_le_bytes());
    put(&mut sb, 160, &dev_number.to_le_bytes());
    put(&mut sb, 200, &7u64.to_le_bytes());
    put(&mut sb, 220, &128u32.to_le_bytes());
    for i in 0..128 {
        put(&mut sb, 256 + 2 * i, &0xffffu16.to_le_bytes());
    }
    put(&mut sb, 256 + 2 * dev_number as usize, &role.to_le_bytes());
    let c = md1_checksum(&sb, 128);
    put(&mut sb, 216, &c.to_le_bytes());
    sb
}

#[test]
fn md_1_2_member_is_parsed() {
    let mut b = img(4 * MIB as usize);
    put(&mut b, 4096, &md1_sb(8, 1, 1));
    let r = run(b);
    assert_eq!(kinds(&r), vec![("md-1.2".into(), 4096)]);
    let m = r.md.unwrap();
    assert_eq!(m.array_uuid, "11111111:22223333:44445555:55555555");
    assert_eq!(m.name, "data");
    assert_eq!(m.homehost.as_deref(), Some("any"));
    assert_eq!(
        (m.level, m.raid_disks, m.role, m.chunk_sectors),
        (0, 2, Some(1), 1024)
    );
    assert_eq!((m.events, m.minor_version, m.data_offset), (7, 2, 2048));
    assert!(m.checksum_ok);
}

#[test]
fn md_1_1_and_1_0_and_bad_checksum() {
    let mut b = img(4 * MIB as usize);
    put(&mut b, 0, &md1_sb(0, 0, 0));
    let r = run(b);
    assert_eq!(kinds(&r), vec![("md-1.1".into(), 0)]);
    assert_eq!(r.md.unwrap().minor_version, 1);

    let size = 4 * MIB;
    let off = ((size / 512 - 16) & !7) * 512;
    let mut b = img(size as usize);
    let mut sb = md1_sb(off / 512, 0, 0xfffe);
    sb[300] ^= 0xff; // corrupt a byte covered by the checksum
    put(&mut b, off as usize, &sb);
    let r = run(b);
    assert_eq!(kinds(&r), vec![("md-1.0".into(), off)]);
    let m = r.md.unwrap();
    assert!(!m.checksum_ok);
    assert_eq!(m.role, None, "faulty slot has no role");
}

#[test]
fn md_superblock_at_wrong_place_is_ignored() {
    // super_offset says sector 8 but it sits at 0: not a 1.1 superblock
    let mut b = img(MIB as usize);
    put(&mut b, 0, &md1_sb(8, 0, 0));
    assert!(run(b).signatures.is_empty());
}

#[test]
fn stale_md_0_90_both_endians() {
    let size = 4 * MIB + 12345;
    let off = ((size & !65535) - 65536) as usize;
    for le in [true, false] {
        let mut b = img(size as usize);
        let w = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        put(&mut b, off, &w(MD_MAGIC));
        put(&mut b, off + 20, &w(0xdeadbeef));
        let r = run(b);
        assert_eq!(kinds(&r), vec![("md-0.90".into(), off as u64)]);
        assert!(r.signatures[0]
            .detail
            .as_ref()
            .unwrap()
            .contains("deadbeef"));
        assert!(r.md.is_none());
    }
}

/// One synthetic image per kind: the magic at its documented place, nothing else.
#[test]
fn every_kind_by_its_magic() {
    let m = MIB as usize;
    let cases: Vec<(&str, usize, &[u8], usize)> = vec![
        // (kind, offset written, bytes, image size)
        ("exfat", 3, b"EXFAT   ", m),
        ("bitlocker", 3, b"-FVE-FS-", m),
        ("f2fs", 1024, &[0x10, 0x20, 0xf5, 0xf2], m),
        ("erofs", 1024, &[0xe2, 0xe1, 0xf5, 0xe0], m),
        ("jfs", 32768, b"JFS1", m),
        ("reiserfs", 65536 + 52, b"ReIsEr2Fs", m),
        ("reiserfs", 8192 + 52, b"ReIsErFs", m),
        ("reiser4", 65536, b"ReIsEr4", m),
        ("squashfs", 0, b"hsqs", m),
        ("squashfs", 0, b"sqsh", m),
        ("cramfs", 0, &[0x45, 0x3d, 0xcd, 0x28], m),
        ("romfs", 0, b"-rom1fs-", m),
        ("bfs", 0, &[0xce, 0xfa, 0xad, 0x1b], m),
        ("ubifs", 0, &[0x31, 0x18, 0x10, 0x06], m),
        ("ubi", 0, b"UBI#", m),
        ("apfs", 32, b"NXSB", m),
        ("ocfs2", 2048, b"OCFSV2", m),
        ("ocfs", 8192, b"OracleCFS", m),
        ("nss", 4096, b"SPB5", m),
        ("vxfs", 1024, &[0xf5, 0xfc, 0x01, 0xa5], m),
        ("hpfs", 8192, &[0x49, 0xe8, 0x95, 0xf9], m),
        ("befs", 544, b"BFS1", m),
        ("exfs", 0, b"EXFS", m),
        ("zonefs", 0, b"SFOZ", m),
        ("scoutfs", 65540, &[0x8b, 0x42, 0x3c, 0x10], m),
        ("iso9660", 32769, b"CD001", m),
        ("refs", 0, b"\0\0\0ReFS\0", m),
        ("dm-integrity", 0, b"integrt\0", m),
        ("dm-verity", 0, b"verity\0\0", m),
        ("dm-snapshot-cow", 0, b"SnAp", m),
        ("vdo", 0, b"dmvdo001", m),
        ("ceph-bluestore", 0, b"bluestore block device", m),
        ("oracleasm", 32, b"ORCLDISK", m),
        ("stratis", 516, b"!Stra0tis\x86\xff\x02^\x41rh", m),
        ("stratis", 9 * 512 + 4, b"!Stra0tis\x86\xff\x02^\x41rh", m),
        ("vmfs-volume", m, &[0x0d, 0xd0, 0x01, 0xc0], 4 * m),
        ("vmfs", 2 * m, &[0x5e, 0xf1, 0xab, 0x2f], 4 * m),
        ("drbdmanage", 0, b"$DRBDmgr=q", m),
        ("drbdproxy-datalog", 0, b"DRBDdlh*", m),
        ("highpoint-raid", 4640, &[0xf0, 0x16, 0x78, 0x5a], m),
        (
            "bcachefs",
            4096 + 24,
            &[
                0xc6, 0x85, 0x73, 0xf6, 0x66, 0xce, 0x90, 0xa9, 0xd9, 0x6a, 0x60, 0xcf, 0x80, 0x3d,
                0xf7, 0xef,
            ],
            m,
        ),
        ("isw-raid", m - 1024, b"Intel Raid ISM Cfg Sig. ", m),
        ("lsi-raid", m - 512, b"$XIDE$", m),
        ("nvidia-raid", m - 1024, b"NVIDIA", m),
        ("ddf-raid", m - 512, &[0xde, 0x11, 0xde, 0x11], m),
        ("ddf-raid", m - 257 * 512, &[0x11, 0xde, 0x11, 0xde], m),
        // looked for only when nothing else is there
        ("hfsplus", 1024, b"H+\0\x04", m),
        ("hfsplus", 1024, b"HX\0\x05", m),
        ("hfs", 1024, b"BD", m),
        ("lvm1", 0, b"HM\x01\0", m),
        ("xenix", 2048, &[0x2b, 0x55, 0x44], m),
    ];
    for (kind, off, bytes, size) in cases {
        let mut b = img(size);
        put(&mut b, off, bytes);
        only(b, kind, off as u64);
    }
}

#[test]
fn ext_journal_device_swsuspend_gfs_ufs() {
    let mut b = img(MIB as usize);
    put(&mut b, 0x438, &0xEF53u16.to_le_bytes());
    put(&mut b, 1024 + 0x60, &8u32.to_le_bytes());
    only(b, "jbd", 0x438);
    let mut b = img(MIB as usize);
    put(&mut b, 4086, b"S1SUSPEND");
    only(b, "swsuspend", 4086);
    for (format, kind) in [(1801u32, "gfs2"), (1309, "gfs")] {
        let mut b = img(MIB as usize);
        put(&mut b, 65536, &0x0116_1970u32.to_be_bytes());
        put(&mut b, 65536 + 4, &1u32.to_be_bytes());
        put(&mut b, 65536 + 24, &format.to_be_bytes());
        only(b, kind, 65536);
    }
    let mut b = img(MIB as usize);
    put(&mut b, 65536 + 0x55c, &0x1954_0119u32.to_le_bytes());
    only(b, "ufs", 65536 + 0x55c);
}

#[test]
fn bitlocker_to_go_udf_drbd() {
    let mut b = img(MIB as usize);
    put(&mut b, 3, b"MSWIN4.1");
    put(&mut b, 440, &0x10000u64.to_le_bytes());
    put(&mut b, 0x10000, b"-FVE-FS-");
    only(b.clone(), "bitlocker", 440);
    // the same header without FVE metadata is not BitLocker
    put(&mut b, 0x10000, b"\0\0\0\0\0\0\0\0");
    assert!(run(b).signatures.is_empty());

    let mut b = img(MIB as usize);
    put(&mut b, 32769, b"BEA01");
    put(&mut b, 32769 + 2048, b"NSR03");
    put(&mut b, 32769 + 4096, b"TEA01");
    only(b, "udf", 32769 + 2048);

    for magic in [0x8374_026bu32, 0x8374_026d] {
        let mut b = img(MIB as usize);
        let off = MIB as usize - 4096 + 60;
        put(&mut b, off, &magic.to_be_bytes());
        only(b, "drbd", off as u64);
    }
}

#[test]
fn weak_magics_only_where_nothing_else_is() {
    // minix v1 and v3, nilfs2 primary and backup
    let mut b = img(MIB as usize);
    put(&mut b, 1024 + 16, &0x137fu16.to_le_bytes());
    only(b, "minix", 1040);
    let mut b = img(MIB as usize);
    put(&mut b, 1024 + 24, &0x4d5au16.to_le_bytes());
    only(b, "minix", 1048);
    let mut b = img(MIB as usize);
    put(&mut b, 1024 + 6, &0x3434u16.to_le_bytes());
    put(&mut b, 1024 + 8, &336u16.to_le_bytes());
    only(b, "nilfs2", 1030);
    let backup = (MIB as usize / 512 - 8) * 512;
    let mut b = img(MIB as usize);
    put(&mut b, backup + 6, &0x3434u16.to_le_bytes());
    put(&mut b, backup + 8, &336u16.to_le_bytes());
    only(b, "nilfs2", backup as u64 + 6);
    // an ext4 superblock whose inode count happens to spell "H+": ext4 only
    let mut b = img(MIB as usize);
    put(&mut b, 1024, b"H+\0\x04");
    put(&mut b, 0x438, &0xEF53u16.to_le_bytes());
    put(&mut b, 1024 + 0x60, &0x2c0u32.to_le_bytes());
    only(b, "ext4", 0x438);
}

#[test]
fn exfat_and_bitlocker_boot_sectors_are_not_mbr() {
    let mut b = img(MIB as usize);
    put(&mut b, 3, b"EXFAT   ");
    put(&mut b, 510, &[0x55, 0xAA]);
    b[446 + 4] = 0x07;
    only(b, "exfat", 3);
}

#[test]
fn unrecognized_data_is_not_blank() {
    // random-looking bytes at the start: no signature, first non-zero byte reported
    let mut b = img(8 * MIB as usize);
    put(&mut b, 700, &[1, 2, 3]);
    let r = run(b);
    assert!(r.signatures.is_empty());
    assert_eq!(r.nonzero_at, Some(700));
    assert!(!r.is_blank());
    // one byte in the last MiB, and one in a spread sample in the middle of a big disk
    let mut b = img(8 * MIB as usize);
    let n = b.len();
    b[n - 1] = 0xff;
    assert_eq!(run(b).nonzero_at, Some(8 * MIB - 1));
    let size = 64 * MIB;
    let ranges = blank_proof_ranges(size);
    let mid = ranges
        .iter()
        .find(|(a, _)| *a > MIB && *a < size - MIB)
        .unwrap();
    let mut b = img(size as usize);
    b[mid.0 as usize + 5] = 1;
    assert_eq!(run(b).nonzero_at, Some(mid.0 + 5));
    // all zeros: proven blank
    let r = run(img(64 * MIB as usize));
    assert!(r.is_blank(), "{r:?}");
}

#[test]
fn blank_proof_ranges_cover_head_tail_and_samples() {
    let size = 1 << 40; // 1 TiB
    let r = blank_proof_ranges(size);
    assert_eq!(r.first(), Some(&(0, MIB + 64 * 1024)));
    assert_eq!(r.last(), Some(&(size - MIB, size)));
    assert!(
        r.windows(2).all(|w| w[0].1 < w[1].0),
        "sorted, disjoint: {r:?}"
    );
    let total: u64 = r.iter().map(|(a, b)| b - a).sum();
    assert!(
        (3 * MIB..4 * MIB).contains(&total),
        "a few MiB of reads: {total}"
    );
    assert!(
        r.iter().any(|&(a, _)| a == 64 * MIB),
        "btrfs copy at 64 MiB"
    );
    // a tiny device: one range, the whole device
    assert_eq!(blank_proof_ranges(4096), vec![(0, 4096)]);
    assert_eq!(blank_proof_ranges(0), vec![]);
}

#[test]
fn head_image_reads_zeros_past_its_end_for_the_blank_proof() {
    // a fixture's dev file holds only the first bytes of a 10 GiB disk
    let r = probe(Cursor::new(vec![0u8; 1024]), 10 << 30).unwrap();
    assert!(r.is_blank());
    let r = probe(Cursor::new(vec![0u8, 0, 9]), 10 << 30).unwrap();
    assert_eq!(r.nonzero_at, Some(2));
}
