//! Pure-Rust on-disk signature probe (no libblkid: the binary must stay static).
//!
//! Works over any `Read + Seek` source. The source may be shorter than the device it stands for
//! (a fixture's head image): bytes past its end read as zeros, and `size` is the device size.
//! Every magic and its offset is documented next to the check that looks for it.
//!
//! The md v1.x parsing here is deliberately small (just what `plan` needs to decide "adopt");
//! the full codec lives in `md/superblock.rs`.

use super::model::{MdMember, Signature};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Seek, SeekFrom};

/// What the probe found on one device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub signatures: Vec<Signature>,
    pub md: Option<MdMember>,
}

/// A `Read + Seek` source that reads zeros past its end, up to the device size.
struct Src<R> {
    inner: R,
    len: u64,
    size: u64,
}

impl<R: Read + Seek> Src<R> {
    /// Read `n` bytes at `off`; zero-filled past the source's end; `None` if outside the device.
    fn at(&mut self, off: u64, n: usize) -> io::Result<Option<Vec<u8>>> {
        if off.checked_add(n as u64).is_none_or(|end| end > self.size) {
            return Ok(None);
        }
        let mut buf = vec![0u8; n];
        if off < self.len {
            let avail = ((self.len - off) as usize).min(n);
            self.inner.seek(SeekFrom::Start(off))?;
            self.inner.read_exact(&mut buf[..avail])?;
        }
        Ok(Some(buf))
    }
    fn matches(&mut self, off: u64, magic: &[u8]) -> io::Result<bool> {
        Ok(self.at(off, magic.len())?.is_some_and(|b| b == magic))
    }
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn be32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn le64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}
fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).trim().to_string()
}
fn uuid_dashed(b: &[u8]) -> String {
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
/// mdadm's text form: the 16 bytes in disk order, in four groups of four.
fn uuid_mdadm(b: &[u8]) -> String {
    b.chunks(4).map(hex::encode).collect::<Vec<_>>().join(":")
}

fn sig(kind: &str, offset: u64, detail: Option<String>) -> Signature {
    Signature {
        kind: kind.to_string(),
        offset,
        detail,
    }
}

/// md superblock magic (all versions).
const MD_MAGIC: u32 = 0xa92b_4efc;

/// Probe a device of `size` bytes for every known signature.
pub fn probe<R: Read + Seek>(mut inner: R, size: u64) -> io::Result<ProbeResult> {
    let len = inner.seek(SeekFrom::End(0))?;
    let mut s = Src { inner, len, size };
    let mut out = ProbeResult::default();
    let sigs = &mut out.signatures;

    // --- Boot sector (offset 0, 512 bytes): NTFS, vfat, MBR share the 0x55AA marker at 510.
    let mut boot_fs = false;
    if let Some(b) = s.at(0, 512)? {
        let marker = b[510] == 0x55 && b[511] == 0xAA;
        // NTFS: OEM id "NTFS    " at byte 3.
        if &b[3..11] == b"NTFS    " {
            sigs.push(sig("ntfs", 3, None));
            boot_fs = true;
        }
        // vfat: FAT12/16 type string at 0x36, FAT32 at 0x52, plus the 0x55AA marker.
        else if marker
            && (b[0x36..0x3e].starts_with(b"FAT12")
                || b[0x36..0x3e].starts_with(b"FAT16")
                || &b[0x36..0x3e] == b"FAT     "
                || b[0x52..0x5a].starts_with(b"FAT32"))
        {
            let off = if b[0x52..0x5a].starts_with(b"FAT32") {
                0x52
            } else {
                0x36
            };
            sigs.push(sig("vfat", off, None));
            boot_fs = true;
        }
        // MBR: 0x55AA at 510 and at least one non-empty, well-formed entry in the table at
        // 446 (4 × 16 bytes; status byte 0x00/0x80, type byte at +4). Protective (0xEE) counts.
        if marker && !boot_fs {
            let entries: Vec<&[u8]> = (0..4).map(|i| &b[446 + 16 * i..462 + 16 * i]).collect();
            let well_formed = entries.iter().all(|e| e[0] == 0 || e[0] == 0x80);
            let used: Vec<u8> = entries.iter().map(|e| e[4]).filter(|&t| t != 0).collect();
            if well_formed && !used.is_empty() {
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
                sigs.push(sig("mbr", 510, Some(detail)));
            }
        }
    }

    // --- GPT primary header: "EFI PART" at LBA 1 (byte 512 for 512-byte sectors, 4096 for 4Kn).
    for lba1 in [512u64, 4096] {
        if s.matches(lba1, b"EFI PART")? {
            sigs.push(sig("gpt", lba1, None));
        }
    }
    // --- GPT backup header: "EFI PART" in the last LBA (size-512 or size-4096).
    for sect in [512u64, 4096] {
        if size >= 2 * sect && s.matches(size - sect, b"EFI PART")? {
            sigs.push(sig("gpt-backup", size - sect, None));
        }
    }

    // --- ext2/3/4: superblock at 1024, s_magic 0xEF53 (le16) at 1024+0x38 = 0x438.
    if let Some(sb) = s.at(1024, 1024)? {
        if le16(&sb, 0x38) == 0xEF53 {
            let compat = le32(&sb, 0x5c);
            let incompat = le32(&sb, 0x60);
            // ext4: extents (0x40), 64bit (0x80), flex_bg (0x200); ext3: has_journal (compat 0x4).
            let kind = if incompat & (0x40 | 0x80 | 0x200) != 0 {
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
        }
    }

    // --- XFS: "XFSB" at 0; uuid at 32, label (12 bytes) at 108.
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

    // --- btrfs: superblock at 64 KiB, magic "_BHRfS_M" at 0x10000 + 0x40.
    if s.matches(0x10040, b"_BHRfS_M")? {
        sigs.push(sig("btrfs", 0x10040, None));
    }

    // --- swap: "SWAPSPACE2" (v1) or "SWAP-SPACE" (v0) in the last 10 bytes of the first page.
    for page in [4096u64, 8192, 16384, 65536] {
        if let Some(b) = s.at(page - 10, 10)? {
            if &b == b"SWAPSPACE2" || &b == b"SWAP-SPACE" {
                sigs.push(sig("swap", page - 10, None));
                break;
            }
        }
    }

    // --- LVM2 PV: label "LABELONE" at the start of one of sectors 0..3, type "LVM2 001" at +24.
    for sector in 0..4u64 {
        if let Some(b) = s.at(sector * 512, 32)? {
            if &b[0..8] == b"LABELONE" && &b[24..32] == b"LVM2 001" {
                sigs.push(sig("lvm2", sector * 512, None));
                break;
            }
        }
    }

    // --- LUKS: primary header magic "LUKS\xba\xbe" at 0, version (be16) at 6. LUKS2 keeps a
    // secondary header ("SKUL\xba\xbe") at one of 16K, 32K, 64K, 128K, 256K, 512K, 1M, 2M, 4M.
    if let Some(b) = s.at(0, 8)? {
        if &b[0..6] == b"LUKS\xba\xbe" {
            let v = u16::from_be_bytes([b[6], b[7]]);
            sigs.push(sig("luks", 0, Some(format!("version {v}"))));
        }
    }
    for off in [
        0x4000u64, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000,
    ] {
        if s.matches(off, b"SKUL\xba\xbe")? {
            sigs.push(sig("luks2-secondary", off, None));
            break;
        }
    }

    // --- md 0.90: 4 KiB superblock, 64 KiB aligned, 64 KiB before the aligned end:
    // offset = (size & !65535) - 65536; magic host-endian (check both byte orders),
    // major_version (offset 4) = 0. UUID words at 20, 52, 56, 60.
    if size >= 131072 {
        let off = (size & !65535) - 65536;
        if let Some(b) = s.at(off, 64)? {
            let (le, be) = (le32(&b, 0) == MD_MAGIC, be32(&b, 0) == MD_MAGIC);
            if le || be {
                let rd = |o| if le { le32(&b, o) } else { be32(&b, o) };
                if rd(4) == 0 {
                    let uuid = format!(
                        "{:08x}:{:08x}:{:08x}:{:08x}",
                        rd(20),
                        rd(52),
                        rd(56),
                        rd(60)
                    );
                    let level = rd(28) as i32;
                    sigs.push(sig(
                        "md-0.90",
                        off,
                        Some(format!("uuid={uuid} level={level}")),
                    ));
                }
            }
        }
    }

    // --- md 1.x: 1.1 at 0, 1.2 at 4096, 1.0 at ((sectors - 16) & !7) * 512.
    // A candidate counts when magic (le32 at 0) and major_version 1 (at 4) match and its own
    // super_offset (le64 at 144) names the sector it was found at.
    let sectors = size / 512;
    let mut cands: Vec<(u8, u64)> = vec![(1, 0), (2, 4096)];
    if sectors > 24 {
        cands.push((0, ((sectors - 16) & !7) * 512));
    }
    for (minor, off) in cands {
        if let Some(b) = s.at(off, 4096)? {
            if let Some(m) = parse_md1(&b, minor, off / 512) {
                let detail = format!(
                    "uuid={} name={} level={} role={} checksum={}",
                    m.array_uuid,
                    m.name,
                    m.level,
                    m.role.map_or("spare".to_string(), |r| r.to_string()),
                    if m.checksum_ok { "ok" } else { "bad" }
                );
                sigs.push(sig(&format!("md-1.{minor}"), off, Some(detail)));
                if out.md.is_none() {
                    out.md = Some(m);
                }
            }
        }
    }
    let sigs = &mut out.signatures;

    // --- iso9660: primary volume descriptor at 32 KiB, "CD001" at 0x8001.
    if s.matches(0x8001, b"CD001")? {
        sigs.push(sig("iso9660", 0x8001, None));
    }

    // --- bcache: superblock at 4 KiB, 16-byte magic at 4096 + 24.
    const BCACHE_MAGIC: [u8; 16] = [
        0xc6, 0x85, 0x73, 0xf6, 0x4e, 0x1a, 0x45, 0xca, 0x82, 0x65, 0xf5, 0x7f, 0x48, 0xba, 0x6d,
        0x81,
    ];
    if s.matches(4096 + 24, &BCACHE_MAGIC)? {
        sigs.push(sig("bcache", 4096 + 24, None));
    }

    // --- ZFS member: four 256 KiB labels (L0 at 0, L1 at 256K, L2 at size-512K, L3 at
    // size-256K); each holds a 128 KiB uberblock ring at label+128K, slots of ≥ 1 KiB whose
    // first u64 is the magic 0x00bab10c (either byte order). Check L0 and L3.
    let mut labels = vec![0u64];
    if size >= 4 * 262144 {
        labels.push((size & !262143) - 262144);
    }
    'zfs: for label in labels {
        if let Some(ring) = s.at(label + 131072, 131072)? {
            for slot in (0..131072).step_by(1024) {
                let v = le64(&ring, slot);
                if v == 0x00ba_b10c || v == 0x0cb1_ba00_0000_0000 {
                    sigs.push(sig("zfs", label + 131072 + slot as u64, None));
                    break 'zfs;
                }
            }
        }
    }

    Ok(out)
}

/// Parse a v1.x superblock found at sector `at_sector` (minor version `minor`): just the fields
/// `plan` needs. Offsets follow MD.md §1.2 (little-endian).
fn parse_md1(b: &[u8], minor: u8, at_sector: u64) -> Option<MdMember> {
    if le32(b, 0) != MD_MAGIC || le32(b, 4) != 1 {
        return None;
    }
    let super_offset = le64(b, 144);
    if super_offset != at_sector {
        return None;
    }
    let max_dev = le32(b, 220) as usize;
    if max_dev > (4096 - 256) / 2 {
        return None;
    }
    let set_name = cstr(&b[32..64]);
    let (homehost, name) = match set_name.split_once(':') {
        Some((h, n)) => (Some(h.to_string()), n.to_string()),
        None => (None, set_name.clone()),
    };
    let dev_number = le32(b, 160);
    let role = if (dev_number as usize) < max_dev {
        let r = le16(b, 256 + 2 * dev_number as usize);
        (r < 0xff00).then_some(u32::from(r))
    } else {
        None
    };
    Some(MdMember {
        array_uuid: uuid_mdadm(&b[16..32]),
        name,
        level: le32(b, 72) as i32,
        raid_disks: le32(b, 92),
        role,
        chunk_sectors: le32(b, 88),
        events: le64(b, 200),
        minor_version: minor,
        homehost,
        dev_number,
        data_offset: le64(b, 128),
        data_size: le64(b, 136),
        checksum_ok: md1_checksum(b, max_dev) == le32(b, 216),
    })
}

/// `calc_sb_1_csum`: le32 words of the first 256 + 2*max_dev bytes (sb_csum as 0) summed into
/// a u64, a trailing le16 added when the length is not a multiple of 4, folded once.
pub(crate) fn md1_checksum(b: &[u8], max_dev: usize) -> u32 {
    let len = 256 + 2 * max_dev;
    let mut sum: u64 = 0;
    let mut i = 0;
    while i + 4 <= len {
        let w = if i == 216 { 0 } else { le32(b, i) };
        sum += u64::from(w);
        i += 4;
    }
    if len % 4 == 2 {
        sum += u64::from(le16(b, len - 2));
    }
    ((sum & 0xffff_ffff) + (sum >> 32)) as u32
}

#[cfg(test)]
mod tests {
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
}
