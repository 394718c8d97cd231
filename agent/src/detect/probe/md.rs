//! md superblocks: 0.90 near the end of the device and v1.x at the three places mdadm puts them.
//! The v1.x parsing here is deliberately small (just what `plan` needs to decide "adopt"); the
//! full codec lives in `md/superblock.rs`.

use super::{be32, cstr, le16, le32, le64, sig, ProbeResult, Src};
use crate::detect::model::MdMember;
use std::io::{self, Read, Seek};

/// md superblock magic (all versions).
pub(super) const MD_MAGIC: u32 = 0xa92b_4efc;

/// mdadm's text form: the 16 bytes in disk order, in four groups of four.
fn uuid_mdadm(b: &[u8]) -> String {
    b.chunks(4).map(hex::encode).collect::<Vec<_>>().join(":")
}

pub(super) fn md_superblocks<R: Read + Seek>(
    s: &mut Src<R>,
    size: u64,
    out: &mut ProbeResult,
) -> io::Result<()> {
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
                    out.signatures.push(sig(
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
                out.signatures
                    .push(sig(&format!("md-1.{minor}"), off, Some(detail)));
                if out.md.is_none() {
                    out.md = Some(m);
                }
            }
        }
    }
    Ok(())
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
pub(super) fn md1_checksum(b: &[u8], max_dev: usize) -> u32 {
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
