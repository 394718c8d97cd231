//! Read a filesystem's type and UUID from its first 64 KiB (pure, over a byte buffer), so dbhost
//! verifies the filesystem it just made before it writes fstab (PEERS.md §0.6: an empty UUID in
//! fstab once mounted the mount point on the OS disk).

use super::FsType;

/// Bytes needed from the start of the device.
pub const PROBE_LEN: usize = 2048;

fn uuid_text(b: &[u8]) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        hex::encode(&b[0..4]),
        hex::encode(&b[4..6]),
        hex::encode(&b[6..8]),
        hex::encode(&b[8..10]),
        hex::encode(&b[10..16])
    )
}

/// An XFS superblock whose mkfs never finished: mkfs.xfs sets `sb_inprogress` (byte 126) in the
/// superblock it writes first and clears it last, and the kernel refuses to mount it while set.
/// Such a device holds no usable filesystem (an mkfs that failed or was killed halfway).
pub fn xfs_mkfs_unfinished(head: &[u8]) -> bool {
    head.len() > 126 && &head[0..4] == b"XFSB" && head[126] != 0
}

/// (type, UUID) of an XFS or ext2/3/4 filesystem starting at `head[0]`.
pub fn identify(head: &[u8]) -> Option<(FsType, String)> {
    // XFS: "XFSB" at 0, sb_uuid at byte 32.
    if head.len() >= 48 && &head[0..4] == b"XFSB" {
        return Some((FsType::Xfs, uuid_text(&head[32..48])));
    }
    // ext*: superblock at 1024; s_magic 0xEF53 at 1024+56; s_uuid at 1024+104.
    if head.len() >= 1024 + 120 && head[1024 + 56] == 0x53 && head[1024 + 57] == 0xEF {
        return Some((FsType::Ext4, uuid_text(&head[1024 + 104..1024 + 120])));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xfs_and_ext4() {
        let mut b = vec![0u8; PROBE_LEN];
        assert_eq!(identify(&b), None);
        b[0..4].copy_from_slice(b"XFSB");
        b[32..48].copy_from_slice(&[
            0x0b, 0x1c, 0x2d, 0x3e, 0x4f, 0x50, 0x46, 0x17, 0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7,
            0xe8, 0xf9,
        ]);
        assert_eq!(
            identify(&b),
            Some((FsType::Xfs, "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9".into()))
        );
        assert!(!xfs_mkfs_unfinished(&b));
        b[126] = 1;
        assert!(
            xfs_mkfs_unfinished(&b),
            "sb_inprogress set: mkfs never finished"
        );
        let mut e = vec![0u8; PROBE_LEN];
        e[1024 + 56] = 0x53;
        e[1024 + 57] = 0xEF;
        e[1024 + 104..1024 + 120].copy_from_slice(&[1u8; 16]);
        assert_eq!(
            identify(&e),
            Some((FsType::Ext4, "01010101-0101-0101-0101-010101010101".into()))
        );
    }
}
