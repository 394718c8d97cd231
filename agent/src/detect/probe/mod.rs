//! Pure-Rust on-disk signature probe (no libblkid: the binary must stay static).
//!
//! Works over any `Read + Seek` source. The source may be shorter than the device it stands for
//! (a fixture's head image): bytes past its end read as zeros, and `size` is the device size.
//! Every magic and its offset is documented next to the check that looks for it (`kinds.rs`,
//! `md.rs`); libblkid (util-linux) looks at the same places, and the signature corpus
//! (`scripts/signature-corpus.sh`) checks our verdicts against `blkid -p` on images made by the
//! real tools.
//!
//! **Blank means proven blank.** "No signature we know" is not "blank": a disk is blank only
//! when no signature is found *and* every region in [`blank_proof_ranges`] reads as zeros.
//! Otherwise [`ProbeResult::nonzero_at`] names the first non-zero byte, and detection refuses
//! the disk as holding unrecognized data.

mod kinds;
mod md;
#[cfg(test)]
mod tests;

use super::model::{MdMember, Signature};
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Seek, SeekFrom};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// What the probe found on one device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub signatures: Vec<Signature>,
    pub md: Option<MdMember>,
    /// Byte offset of the first non-zero byte in the regions that prove a disk blank; only
    /// looked for when no signature was found (`None` then means: proven blank).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonzero_at: Option<u64>,
}

impl ProbeResult {
    /// No signature and every blank-proof region reads as zeros.
    pub fn is_blank(&self) -> bool {
        self.signatures.is_empty() && self.md.is_none() && self.nonzero_at.is_none()
    }
}

/// A `Read + Seek` source that reads zeros past its end, up to the device size.
struct Src<R> {
    inner: R,
    len: u64,
    size: u64,
}

impl<R: Read + Seek> Src<R> {
    /// Read `n` bytes at `off`; zero-filled past the source's end; `None` if outside the device.
    /// A read error names the offset it happened at.
    fn at(&mut self, off: u64, n: usize) -> io::Result<Option<Vec<u8>>> {
        if off.checked_add(n as u64).is_none_or(|end| end > self.size) {
            return Ok(None);
        }
        let mut buf = vec![0u8; n];
        if off < self.len {
            let avail = ((self.len - off) as usize).min(n);
            self.inner
                .seek(SeekFrom::Start(off))
                .and_then(|_| self.inner.read_exact(&mut buf[..avail]))
                .map_err(|e| io::Error::new(e.kind(), format!("at byte {off}: {e}")))?;
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

fn sig(kind: &str, offset: u64, detail: Option<String>) -> Signature {
    Signature {
        kind: kind.to_string(),
        offset,
        detail,
    }
}

/// Probe a device of `size` bytes for every known signature; when none is found, read the
/// blank-proof regions and report the first non-zero byte.
pub fn probe<R: Read + Seek>(mut inner: R, size: u64) -> io::Result<ProbeResult> {
    let len = inner.seek(SeekFrom::End(0))?;
    let mut s = Src { inner, len, size };
    let mut out = ProbeResult::default();
    kinds::boot_sector_and_tables(&mut s, size, &mut out.signatures)?;
    kinds::filesystems_and_volumes(&mut s, size, &mut out.signatures)?;
    md::md_superblocks(&mut s, size, &mut out)?;
    kinds::raid_members_at_the_end(&mut s, size, &mut out.signatures)?;
    kinds::zfs(&mut s, size, &mut out.signatures)?;
    if out.signatures.is_empty() {
        // Two-byte magics (minix, HFS "BD", nilfs2, …) match too much by chance to be looked
        // for next to a real signature: only name them on a disk where nothing else is.
        kinds::weak_magics(&mut s, size, &mut out.signatures)?;
    }
    if out.signatures.is_empty() && out.md.is_none() {
        out.nonzero_at = first_nonzero(&mut s, size)?;
    }
    Ok(out)
}

/// Offsets (besides the head and the tail) where some format keeps a header or a copy of one,
/// read 64 KiB each when inside the device: 1 MiB (VMFS volume header), 2 MiB (VMFS filesystem
/// header), 4 MiB (end of LUKS2's largest header area), 64 MiB (btrfs's first superblock copy),
/// 128 MiB (ext2/3/4's first backup superblock with 4 KiB blocks).
const FIXED_PROOF_OFFSETS: [u64; 5] = [MIB, 2 * MIB, 4 * MIB, 64 * MIB, 128 * MIB];
/// Ranges sampled evenly over the whole device, each this long.
const SPREAD_SAMPLES: u64 = 8;
const SPREAD_LEN: u64 = 128 * KIB;

/// The byte ranges `(start, end)` that must read as zeros for a signature-less disk to count as
/// blank: the first MiB (boot sectors, partition tables, nearly every superblock), the last MiB
/// (backup GPT, md 1.0/0.90, ZFS L2/L3, nilfs2's backup, DRBD and fake-RAID metadata), the
/// fixed offsets above, and [`SPREAD_SAMPLES`] ranges spread evenly between them (data of an
/// unknown format, a raw database file, an encrypted volume without a header). About 3.3 MiB
/// of reads on a large disk; a new cloud disk reads as zeros, so this costs nothing there.
/// Sorted, merged, clamped to the device.
pub fn blank_proof_ranges(size: u64) -> Vec<(u64, u64)> {
    let mut v = vec![(0, MIB), (size.saturating_sub(MIB), size)];
    v.extend(FIXED_PROOF_OFFSETS.iter().map(|&o| (o, o + 64 * KIB)));
    for k in 1..=SPREAD_SAMPLES {
        let start = (size / (SPREAD_SAMPLES + 1) * k) & !(4 * KIB - 1);
        v.push((start, start + SPREAD_LEN));
    }
    let mut v: Vec<(u64, u64)> = v
        .into_iter()
        .map(|(a, b)| (a.min(size), b.min(size)))
        .filter(|(a, b)| a < b)
        .collect();
    v.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (a, b) in v {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// The first non-zero byte in the blank-proof ranges, reading 128 KiB at a time.
fn first_nonzero<R: Read + Seek>(s: &mut Src<R>, size: u64) -> io::Result<Option<u64>> {
    const CHUNK: u64 = 128 * KIB;
    for (start, end) in blank_proof_ranges(size) {
        let mut off = start;
        while off < end {
            let n = CHUNK.min(end - off);
            if let Some(buf) = s.at(off, n as usize)? {
                if let Some(i) = buf.iter().position(|&b| b != 0) {
                    return Ok(Some(off + i as u64));
                }
            }
            off += n;
        }
    }
    Ok(None)
}
