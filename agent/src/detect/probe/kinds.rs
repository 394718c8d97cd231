//! Every kind of content the probe names (md aside: `md.rs`), each with the offset of the magic
//! it looks for. Kind names are dbhost's own (lower case, `-` separated); the signature corpus
//! maps them to `blkid`'s TYPE names. Offsets are bytes from the start of the device unless
//! they say "from the end".

use super::{be32, cstr, le16, le32, le64, sig, uuid_dashed, Src, KIB, MIB};
use crate::detect::model::Signature;
use std::io::{self, Read, Seek};

/// Where a fixed magic sits.
#[derive(Clone, Copy)]
enum At {
    Start(u64),
    /// Bytes back from the end of the device.
    End(u64),
}

/// A fixed magic at a fixed place: the simplest signatures, one line each.
struct Magic {
    kind: &'static str,
    at: At,
    magic: &'static [u8],
}

const fn at(kind: &'static str, off: u64, magic: &'static [u8]) -> Magic {
    Magic {
        kind,
        at: At::Start(off),
        magic,
    }
}
const fn from_end(kind: &'static str, back: u64, magic: &'static [u8]) -> Magic {
    Magic {
        kind,
        at: At::End(back),
        magic,
    }
}

/// Stratis BDA signature block magic, in both copies of the static header.
const STRATIS_MAGIC: &[u8] = b"!Stra0tis\x86\xff\x02^\x41rh";
/// bcache's superblock magic (a UUID in disk byte order) at 4 KiB + 24; bcachefs uses its own.
const BCACHE_MAGIC: &[u8] = &[
    0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d, 0x81,
];
const BCACHEFS_MAGIC: &[u8] = &[
    0xc6, 0x85, 0x73, 0xf6, 0x66, 0xce, 0x90, 0xa9, 0xd9, 0x6a, 0x60, 0xcf, 0x80, 0x3d, 0xf7, 0xef,
];

/// Fixed magics, strong enough (four bytes or more at one place) to name a kind on their own.
const MAGICS: &[Magic] = &[
    // Filesystems.
    at("jfs", 32 * KIB, b"JFS1"), // JFS superblock at 32 KiB, s_magic first
    at("reiserfs", 64 * KIB + 52, b"ReIsErFs"), // 3.5 format, superblock at 64 KiB, magic at +52
    at("reiserfs", 64 * KIB + 52, b"ReIsEr2Fs"), // 3.6 format
    at("reiserfs", 64 * KIB + 52, b"ReIsEr3Fs"), // 3.6 with a non-standard journal
    at("reiserfs", 8 * KIB + 52, b"ReIsErFs"), // old 3.5 layout, superblock at 8 KiB
    at("reiser4", 64 * KIB, b"ReIsEr4"), // reiser4 master superblock at 64 KiB
    at("f2fs", KIB, &[0x10, 0x20, 0xf5, 0xf2]), // F2FS superblock at 1 KiB, le32 0xF2F52010
    at("erofs", KIB, &[0xe2, 0xe1, 0xf5, 0xe0]), // EROFS superblock at 1 KiB, le32 0xE0F5E1E2
    at("squashfs", 0, b"hsqs"),   // squashfs, little-endian s_magic at 0
    at("squashfs", 0, b"sqsh"),   // squashfs 3, big-endian
    at("cramfs", 0, &[0x45, 0x3d, 0xcd, 0x28]), // cramfs le32 0x28CD3D45 at 0
    at("cramfs", 0, &[0x28, 0xcd, 0x3d, 0x45]), // cramfs, big-endian
    at("romfs", 0, b"-rom1fs-"),  // romfs at 0
    at("bfs", 0, &[0xce, 0xfa, 0xad, 0x1b]), // SCO BFS le32 0x1BADFACE at 0
    at("ubifs", 0, &[0x31, 0x18, 0x10, 0x06]), // UBIFS node magic le32 0x06101831 at 0
    at("ubi", 0, b"UBI#"),        // UBI erase-counter header at 0
    at("apfs", 32, b"NXSB"),      // APFS container superblock, nx_magic at 32
    at("ocfs2", KIB, b"OCFSV2"),  // OCFS2 superblock in block 2: 1, 2, 4 or 8 KiB
    at("ocfs2", 2 * KIB, b"OCFSV2"), // (block sizes 512 … 4096)
    at("ocfs2", 4 * KIB, b"OCFSV2"),
    at("ocfs2", 8 * KIB, b"OCFSV2"),
    at("ocfs", 8 * KIB, b"OracleCFS"), // OCFS (v1) volume header at 8 KiB
    at("nss", 4 * KIB, b"SPB5"),       // Novell NSS pool header at 4 KiB
    at("vxfs", KIB, &[0xf5, 0xfc, 0x01, 0xa5]), // VxFS le32 0xA501FCF5 at 1 KiB
    at("vxfs", 8 * KIB, &[0xa5, 0x01, 0xfc, 0xf5]), // VxFS big-endian (HP-UX) at 8 KiB
    at("hpfs", 8 * KIB, &[0x49, 0xe8, 0x95, 0xf9]), // HPFS superblock at 8 KiB
    at("befs", 32, b"BFS1"),           // BeFS superblock magic1 at 512 − 480 …
    at("befs", 32, b"1SFB"),           // … (big-endian)
    at("befs", 512 + 32, b"BFS1"),     // with a 512-byte boot block before it
    at("befs", 512 + 32, b"1SFB"),
    at("exfs", 0, b"EXFS"),                                 // SGI EXFS at 0
    at("zonefs", 0, b"SFOZ"),                               // zonefs superblock magic at 0
    at("scoutfs", 64 * KIB + 4, &[0x8b, 0x42, 0x3c, 0x10]), // scoutfs super at 64 KiB, hdr +4
    at("iso9660", 32 * KIB + 1, b"CD001"), // ISO 9660 volume descriptor at 32 KiB, id at +1
    at("iso9660", 32 * KIB + 9, b"CDROM"), // High Sierra
    at("refs", 0, b"\0\0\0ReFS\0"),        // ReFS volume boot record at 0
    // Volumes, caches, encryption and other block-device stacks.
    at("luks", 0, b"LUKS\xba\xbe"), // LUKS1/2 primary header at 0 (version: detail)
    at("dm-integrity", 0, b"integrt\0"), // dm-integrity superblock at 0
    at("dm-verity", 0, b"verity\0\0"), // dm-verity hash device superblock at 0
    at("dm-snapshot-cow", 0, b"SnAp"), // device-mapper snapshot COW store header at 0
    at("vdo", 0, b"dmvdo001"),      // VDO geometry block at 0
    at("ceph-bluestore", 0, b"bluestore block device"), // BlueStore label at 0
    at("oracleasm", 32, b"ORCLDISK"), // Oracle ASMLib disk header, magic at 32
    at("stratis", 512 + 4, STRATIS_MAGIC), // Stratis signature block 1 at sector 1, magic +4
    at("stratis", 9 * 512 + 4, STRATIS_MAGIC), // … its copy at sector 9
    at("vmfs-volume", MIB, &[0x0d, 0xd0, 0x01, 0xc0]), // VMFS LVM volume header at 1 MiB
    at("vmfs", 2 * MIB, &[0x5e, 0xf1, 0xab, 0x2f]), // VMFS filesystem header at 2 MiB
    at("bcache", 4 * KIB + 24, BCACHE_MAGIC), // bcache superblock at 4 KiB, magic at +24
    at("bcachefs", 4 * KIB + 24, BCACHEFS_MAGIC), // bcachefs: same place …
    at("bcachefs", 2 * MIB + 24, BCACHEFS_MAGIC), // … or its copy at 2 MiB (bcachefs default)
    at("drbdmanage", 0, b"$DRBDmgr=q"), // drbdmanage control volume at 0
    at("drbdproxy-datalog", 0, b"DRBDdlh*"), // DRBD proxy data log at 0
    at("highpoint-raid", 4608 + 32, &[0xf0, 0x16, 0x78, 0x5a]), // HPT37x at sector 9, +32
    at("highpoint-raid", 4608 + 32, &[0xfd, 0x16, 0x78, 0x5a]),
    // Fake-RAID metadata in the last sectors (only on whole disks, as firmware writes it).
    from_end("isw-raid", 1024, b"Intel Raid ISM Cfg Sig. "), // Intel Matrix: 2nd-last sector
    from_end("lsi-raid", 512, b"$XIDE$"),                    // LSI MegaRAID: last sector
    from_end("nvidia-raid", 1024, b"NVIDIA"),                // nVidia: 2nd-last sector
    from_end("ddf-raid", 512, &[0xde, 0x11, 0xde, 0x11]),    // SNIA DDF anchor: last sector
];

fn fixed_magics<R: Read + Seek>(
    s: &mut Src<R>,
    size: u64,
    magics: &[Magic],
    sigs: &mut Vec<Signature>,
) -> io::Result<()> {
    for m in magics {
        let off = match m.at {
            At::Start(o) => o,
            At::End(back) if size >= back.max(64 * KIB) => (size & !511) - back,
            At::End(_) => continue,
        };
        let already = sigs.iter().any(|x| x.kind == m.kind);
        if !already && s.matches(off, m.magic)? {
            sigs.push(sig(m.kind, off, None));
        }
    }
    Ok(())
}

/// Sector 0: NTFS, exFAT, BitLocker, ReFS and vfat boot sectors, else an MBR; then GPT.
pub(super) fn boot_sector_and_tables<R: Read + Seek>(
    s: &mut Src<R>,
    size: u64,
    sigs: &mut Vec<Signature>,
) -> io::Result<()> {
    if let Some(b) = s.at(0, 512)? {
        let marker = b[510] == 0x55 && b[511] == 0xAA;
        let oem = &b[3..11];
        let boot_fs = if oem == b"NTFS    " {
            // NTFS: OEM id "NTFS    " at byte 3.
            Some(sig("ntfs", 3, None))
        } else if oem == b"EXFAT   " {
            // exFAT: OEM name "EXFAT   " at byte 3.
            Some(sig("exfat", 3, None))
        } else if oem == b"-FVE-FS-" {
            // BitLocker (Vista, 7 and later): "-FVE-FS-" at byte 3 of the volume header.
            Some(sig("bitlocker", 3, None))
        } else if oem == b"MSWIN4.1" && bitlocker_to_go(s, &b)? {
            // BitLocker To Go: a FAT-looking header whose FVE metadata offset (le64 at 440)
            // points at a "-FVE-FS-" block.
            Some(sig("bitlocker", 440, Some("to go".into())))
        } else if marker
            && (b[0x36..0x3e].starts_with(b"FAT12")
                || b[0x36..0x3e].starts_with(b"FAT16")
                || &b[0x36..0x3e] == b"FAT     "
                || b[0x52..0x5a].starts_with(b"FAT32"))
        {
            // vfat: FAT12/16 type string at 0x36, FAT32 at 0x52, plus the 0x55AA marker.
            let off = if b[0x52..0x5a].starts_with(b"FAT32") {
                0x52
            } else {
                0x36
            };
            Some(sig("vfat", off, None))
        } else {
            None
        };
        let is_boot_fs = boot_fs.is_some();
        sigs.extend(boot_fs);
        // MBR: 0x55AA at 510 and at least one non-empty, well-formed entry in the table at
        // 446 (4 × 16 bytes; status byte 0x00/0x80, type byte at +4). Protective (0xEE) counts.
        if marker && !is_boot_fs {
            if let Some(m) = mbr(&b) {
                sigs.push(m);
            }
        }
    }
    // GPT primary header: "EFI PART" at LBA 1 (byte 512 for 512-byte sectors, 4096 for 4Kn).
    for lba1 in [512u64, 4096] {
        if s.matches(lba1, b"EFI PART")? {
            sigs.push(sig("gpt", lba1, None));
        }
    }
    // GPT backup header: "EFI PART" in the last LBA (size-512 or size-4096).
    for sect in [512u64, 4096] {
        if size >= 2 * sect && s.matches(size - sect, b"EFI PART")? {
            sigs.push(sig("gpt-backup", size - sect, None));
        }
    }
    Ok(())
}

fn mbr(b: &[u8]) -> Option<Signature> {
    let entries: Vec<&[u8]> = (0..4).map(|i| &b[446 + 16 * i..462 + 16 * i]).collect();
    let well_formed = entries.iter().all(|e| e[0] == 0 || e[0] == 0x80);
    let used: Vec<u8> = entries.iter().map(|e| e[4]).filter(|&t| t != 0).collect();
    if !well_formed || used.is_empty() {
        return None;
    }
    let detail = if used.contains(&0xee) {
        "protective".to_string()
    } else {
        format!(
            "types {}",
            used.iter()
                .map(|t| format!("{t:#04x}"))
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    Some(sig("mbr", 510, Some(detail)))
}

fn bitlocker_to_go<R: Read + Seek>(s: &mut Src<R>, b: &[u8]) -> io::Result<bool> {
    let off = le64(b, 440);
    Ok(off != 0 && s.matches(off, b"-FVE-FS-")?)
}

/// Filesystems, volume managers, encryption and caches with a header near the start.
pub(super) fn filesystems_and_volumes<R: Read + Seek>(
    s: &mut Src<R>,
    size: u64,
    sigs: &mut Vec<Signature>,
) -> io::Result<()> {
    ext(s, sigs)?;
    // XFS: "XFSB" at 0; uuid at 32, label (12 bytes) at 108.
    if let Some(b) = s.at(0, 120)? {
        if &b[0..4] == b"XFSB" {
            let detail = format!(
                "uuid={} label={}",
                uuid_dashed(&b[32..48]),
                cstr(&b[108..120])
            );
            sigs.push(sig("xfs", 0, Some(detail)));
        }
    }
    // btrfs: superblock at 64 KiB, magic "_BHRfS_M" at 0x10000 + 0x40.
    if s.matches(0x10040, b"_BHRfS_M")? {
        sigs.push(sig("btrfs", 0x10040, None));
    }
    swap(s, sigs)?;
    // LVM2 PV: label "LABELONE" at the start of one of sectors 0..3, type "LVM2 001" at +24.
    for sector in 0..4u64 {
        if let Some(b) = s.at(sector * 512, 32)? {
            if &b[0..8] == b"LABELONE" && &b[24..32] == b"LVM2 001" {
                sigs.push(sig("lvm2", sector * 512, None));
                break;
            }
        }
    }
    fixed_magics(s, size, MAGICS, sigs)?;
    if let Some(l) = sigs.iter_mut().find(|x| x.kind == "luks") {
        if let Some(v) = s.at(6, 2)? {
            l.detail = Some(format!("version {}", u16::from_be_bytes([v[0], v[1]])));
        }
    }
    // LUKS2 keeps a secondary header ("SKUL\xba\xbe") at one of 16K, 32K, 64K, 128K, 256K,
    // 512K, 1M, 2M, 4M: it alone still names a LUKS2 device whose primary header is gone.
    for off in [
        0x4000u64, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000,
    ] {
        if s.matches(off, b"SKUL\xba\xbe")? {
            sigs.push(sig("luks2-secondary", off, None));
            break;
        }
    }
    gfs(s, sigs)?;
    ufs(s, sigs)?;
    udf(s, sigs)?;
    drbd(s, size, sigs)
}

/// ext2/3/4 and ext journal devices: superblock at 1024, s_magic 0xEF53 (le16) at 0x438.
fn ext<R: Read + Seek>(s: &mut Src<R>, sigs: &mut Vec<Signature>) -> io::Result<()> {
    let Some(sb) = s.at(1024, 1024)? else {
        return Ok(());
    };
    if le16(&sb, 0x38) != 0xEF53 {
        return Ok(());
    }
    let compat = le32(&sb, 0x5c);
    let incompat = le32(&sb, 0x60);
    // journal device: incompat journal_dev (0x8); ext4: extents (0x40), 64bit (0x80), flex_bg
    // (0x200); ext3: has_journal (compat 0x4).
    let kind = if incompat & 0x8 != 0 {
        "jbd"
    } else if incompat & (0x40 | 0x80 | 0x200) != 0 {
        "ext4"
    } else if compat & 0x4 != 0 {
        "ext3"
    } else {
        "ext2"
    };
    let detail = format!(
        "uuid={} label={}",
        uuid_dashed(&sb[0x68..0x78]),
        cstr(&sb[0x78..0x88])
    );
    sigs.push(sig(kind, 0x438, Some(detail)));
    Ok(())
}

/// swap: "SWAPSPACE2" (v1) or "SWAP-SPACE" (v0) in the last 10 bytes of the first page (4, 8,
/// 16, 32 or 64 KiB pages); a hibernation image puts "S1SUSPEND", "S2SUSPEND", "ULSUSPEND" or
/// "LINHIB0001" there instead.
fn swap<R: Read + Seek>(s: &mut Src<R>, sigs: &mut Vec<Signature>) -> io::Result<()> {
    for page in [4096u64, 8192, 16384, 32768, 65536] {
        let Some(b) = s.at(page - 10, 10)? else {
            continue;
        };
        if &b == b"SWAPSPACE2" || &b == b"SWAP-SPACE" {
            sigs.push(sig("swap", page - 10, None));
            return Ok(());
        }
        if [&b"S1SUSPEND"[..], b"S2SUSPEND", b"ULSUSPEND"]
            .iter()
            .any(|m| b.starts_with(m))
            || &b == b"LINHIB0001"
        {
            sigs.push(sig("swsuspend", page - 10, None));
            return Ok(());
        }
    }
    Ok(())
}

/// GFS/GFS2: superblock at 64 KiB, be32 mh_magic 0x01161970 and mh_type 1 (superblock);
/// sb_fs_format (be32 at +24) is 1309 for GFS, 18xx for GFS2.
fn gfs<R: Read + Seek>(s: &mut Src<R>, sigs: &mut Vec<Signature>) -> io::Result<()> {
    if let Some(b) = s.at(64 * KIB, 32)? {
        if be32(&b, 0) == 0x0116_1970 && be32(&b, 4) == 1 {
            let kind = if be32(&b, 24) == 1309 { "gfs" } else { "gfs2" };
            sigs.push(sig(kind, 64 * KIB, None));
        }
    }
    Ok(())
}

/// UFS/UFS2: fs_magic at +0x55c of a superblock at 0, 8, 64 or 256 KiB, either byte order.
fn ufs<R: Read + Seek>(s: &mut Src<R>, sigs: &mut Vec<Signature>) -> io::Result<()> {
    const MAGICS: [u32; 6] = [
        0x1954_0119, // UFS2
        0x0001_1954, // UFS1
        0x0019_5612, // with "fea"
        0x0009_5014, // long file names
        0x0061_2195, // security
        0x0523_1994, // 4 GB
    ];
    for kb in [0u64, 8, 64, 256] {
        let off = kb * KIB + 0x55c;
        if let Some(b) = s.at(off, 4)? {
            if MAGICS.contains(&le32(&b, 0)) || MAGICS.contains(&be32(&b, 0)) {
                sigs.push(sig("ufs", off, None));
                return Ok(());
            }
        }
    }
    Ok(())
}

/// UDF: an NSR02/NSR03 descriptor in the volume recognition sequence, which starts at 32 KiB
/// with one descriptor per 2 KiB (or per block, for blocks larger than 2 KiB); the identifier
/// is at +1.
fn udf<R: Read + Seek>(s: &mut Src<R>, sigs: &mut Vec<Signature>) -> io::Result<()> {
    for step in [2 * KIB, 4 * KIB] {
        for i in 0..16u64 {
            let off = 32 * KIB + i * step + 1;
            let Some(b) = s.at(off, 5)? else { break };
            if &b == b"NSR02" || &b == b"NSR03" {
                sigs.push(sig("udf", off, None));
                return Ok(());
            }
            if b.iter().all(|&c| c == 0) {
                break; // the sequence ended
            }
        }
    }
    Ok(())
}

/// DRBD internal metadata in the last 4 KiB: be32 magic at +60, 0x8374026b (v08),
/// 0x8374026c (v08, unclean) or 0x8374026d (v09).
fn drbd<R: Read + Seek>(s: &mut Src<R>, size: u64, sigs: &mut Vec<Signature>) -> io::Result<()> {
    if size < 64 * KIB {
        return Ok(());
    }
    let off = size - 4096 + 60;
    if let Some(b) = s.at(off, 4)? {
        if (0x8374_026b..=0x8374_026d).contains(&be32(&b, 0)) {
            sigs.push(sig("drbd", off, None));
        }
    }
    Ok(())
}

/// Fake-RAID and other metadata that lives in the last sectors (the table's `from_end` rows are
/// read by `filesystems_and_volumes`; this is for layouts needing more than one fixed magic).
pub(super) fn raid_members_at_the_end<R: Read + Seek>(
    s: &mut Src<R>,
    size: u64,
    sigs: &mut Vec<Signature>,
) -> io::Result<()> {
    // SNIA DDF: the anchor may also sit 257 sectors before the end (either byte order).
    if size >= 64 * KIB && !sigs.iter().any(|x| x.kind == "ddf-raid") {
        let off = (size & !511) - 257 * 512;
        if let Some(b) = s.at(off, 4)? {
            if le32(&b, 0) == 0xDE11_DE11 {
                sigs.push(sig("ddf-raid", off, None));
            }
        }
    }
    Ok(())
}

/// ZFS member: four 256 KiB labels (L0 at 0, L1 at 256K, L2 at size-512K, L3 at size-256K,
/// the end rounded down to 256 KiB); each holds a 128 KiB uberblock ring at label+128K, slots
/// of ≥ 1 KiB whose first u64 is the magic 0x00bab10c (either byte order). Check L0 and L3.
pub(super) fn zfs<R: Read + Seek>(
    s: &mut Src<R>,
    size: u64,
    sigs: &mut Vec<Signature>,
) -> io::Result<()> {
    let mut labels = vec![0u64];
    if size >= 4 * 262144 {
        labels.push((size & !262143) - 262144);
    }
    for label in labels {
        if let Some(ring) = s.at(label + 131072, 131072)? {
            for slot in (0..131072).step_by(1024) {
                let v = le64(&ring, slot);
                if v == 0x00ba_b10c || v == 0x0cb1_ba00_0000_0000 {
                    sigs.push(sig("zfs", label + 131072 + slot as u64, None));
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// Magics of two or three bytes, looked for only when nothing else was found.
const WEAK_MAGICS: &[Magic] = &[
    at("hfsplus", KIB, b"H+\0\x04"), // HFS+ volume header at 1 KiB: "H+", version 4
    at("hfsplus", KIB, b"HX\0\x05"), // HFSX: "HX", version 5
    at("hfs", KIB, b"BD"),           // HFS master directory block at 1 KiB
    at("xenix", 2 * KIB, &[0x2b, 0x55, 0x44]), // Xenix superblock magic at 1 KiB + 1 KiB
    at("xenix", 2 * KIB, &[0x44, 0x55, 0x2b]),
    at("lvm1", 0, b"HM\x01\0"), // LVM1 PV: "HM" then version 1 or 2 (le16)
    at("lvm1", 0, b"HM\x02\0"),
];

pub(super) fn weak_magics<R: Read + Seek>(
    s: &mut Src<R>,
    size: u64,
    sigs: &mut Vec<Signature>,
) -> io::Result<()> {
    fixed_magics(s, size, WEAK_MAGICS, sigs)?;
    minix(s, sigs)?;
    nilfs2(s, size, sigs)
}

/// Minix: superblock at 1 KiB, s_magic (le16 or be16) at +16 for v1/v2 (0x137F, 0x138F,
/// 0x2468, 0x2478) or at +24 for v3 (0x4D5A); s_log_zone_size (le16 at +10) is 0 for the
/// versions mkfs.minix makes.
fn minix<R: Read + Seek>(s: &mut Src<R>, sigs: &mut Vec<Signature>) -> io::Result<()> {
    let Some(b) = s.at(KIB, 32)? else {
        return Ok(());
    };
    let v12 = [0x137f, 0x138f, 0x2468, 0x2478];
    let m = le16(&b, 16);
    if v12.contains(&m) || v12.contains(&m.swap_bytes()) {
        sigs.push(sig("minix", KIB + 16, None));
    } else if le16(&b, 24) == 0x4d5a || le16(&b, 24) == 0x5a4d {
        sigs.push(sig("minix", KIB + 24, None));
    }
    Ok(())
}

/// nilfs2: superblock at 1 KiB, le16 s_magic 0x3434 at +6, s_bytes (le16 at +8) its length;
/// a backup superblock at ((size / 512) − 8) × 512.
fn nilfs2<R: Read + Seek>(s: &mut Src<R>, size: u64, sigs: &mut Vec<Signature>) -> io::Result<()> {
    let mut places = vec![KIB];
    if size >= 8 * KIB {
        places.push((size / 512 - 8) * 512);
    }
    for sb in places {
        if let Some(b) = s.at(sb, 16)? {
            let bytes = le16(&b, 8);
            if le16(&b, 6) == 0x3434 && (24..=1024).contains(&bytes) {
                sigs.push(sig("nilfs2", sb + 6, None));
                return Ok(());
            }
        }
    }
    Ok(())
}
