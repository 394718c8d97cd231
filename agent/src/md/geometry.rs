//! RAID-0 geometry, pure: mdadm-compatible data offset, usable sizes, address mapping.
//! All sizes are in 512-byte sectors. Facts: MD.md §1.7 (mdadm `validate_geometry1`) and §6.

/// Bytes per sector.
pub const SECTOR: u64 = 512;
/// v1.2 superblock position (sector 8 = byte 4096).
pub const SB_OFFSET_V12: u64 = 8;
/// Default chunk: 512 KiB.
pub const DEFAULT_CHUNK_BYTES: u64 = 512 * 1024;

const GIB_SECTORS: u64 = 2 * 1024 * 1024;

/// The data offset mdadm chooses for a v1.1/1.2 member of `dev_sectors`, RAID0 with
/// `chunk_sectors` (0 = no chunk): a headroom of up to 128 MiB, shrunk for small devices, plus
/// bitmap space, rounded up to 1 MiB. Computed from the first member and used for all.
pub fn default_data_offset(dev_sectors: u64, chunk_sectors: u64) -> u64 {
    let mut headroom: u64 = 262_144;
    while headroom * 1024 > dev_sectors && (chunk_sectors == 0 || headroom / 2 >= 2 * chunk_sectors)
    {
        headroom /= 2;
    }
    let bm_space = if dev_sectors < 128 {
        0
    } else if dev_sectors - 128 >= 200 * GIB_SECTORS {
        256
    } else if dev_sectors - 8 > 8 * GIB_SECTORS {
        128
    } else {
        8
    };
    round_up(24 + bm_space + headroom, 2048)
}

pub fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to) * to
}

pub fn round_down(v: u64, to: u64) -> u64 {
    v / to * to
}

/// Per-member data size (sectors) for a v1.2 member: everything after the data offset.
pub fn data_size(dev_sectors: u64, data_offset: u64) -> Option<u64> {
    dev_sectors.checked_sub(data_offset).filter(|s| *s >= 10)
}

/// Usable RAID0 array size in sectors: each member's data size rounded down to whole chunks.
pub fn raid0_array_sectors(member_data_sizes: &[u64], chunk_sectors: u64) -> u64 {
    member_data_sizes
        .iter()
        .map(|s| round_down(*s, chunk_sectors))
        .sum()
}

/// True when members differ in whole-chunk size, i.e. the array has more than one zone and the
/// RAID0 layout matters (MD.md §1.9).
pub fn is_multizone(member_data_sizes: &[u64], chunk_sectors: u64) -> bool {
    let mut it = member_data_sizes.iter().map(|s| s / chunk_sectors);
    match it.next() {
        Some(first) => it.any(|c| c != first),
        None => false,
    }
}

/// For an equal-size (single-zone) RAID0: where array sector `s` lives.
/// Returns (member index, sector on that member counted from the device start).
pub fn raid0_map_single_zone(
    s: u64,
    members: u64,
    chunk_sectors: u64,
    data_offset: u64,
) -> (u64, u64) {
    let c = s / chunk_sectors;
    let member = c % members;
    let member_sector = data_offset + (c / members) * chunk_sectors + (s % chunk_sectors);
    (member, member_sector)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 2048;

    #[test]
    fn data_offset_matches_mdadm_values() {
        // MD.md §1.7, 512 KiB chunk (1024 sectors).
        assert_eq!(default_data_offset(256 * MIB, 1024), 4096); // verified in a VM
        assert_eq!(default_data_offset(1024 * MIB, 1024), 4096);
        assert_eq!(default_data_offset(8 * GIB_SECTORS, 1024), 18432);
        assert_eq!(default_data_offset(16 * GIB_SECTORS, 1024), 34816);
        assert_eq!(default_data_offset(100 * GIB_SECTORS, 1024), 133_120);
        assert_eq!(default_data_offset(512 * GIB_SECTORS, 1024), 264_192);
        assert_eq!(default_data_offset(128 * GIB_SECTORS, 1024), 264_192);
    }

    #[test]
    fn data_offset_is_mib_aligned_and_above_superblock() {
        for dev in [1u64 << 12, 1 << 16, 1 << 20, 1 << 24, 1 << 30, 1 << 34] {
            for chunk in [0u64, 8, 128, 1024, 8192] {
                let off = default_data_offset(dev, chunk);
                assert_eq!(off % 2048, 0);
                assert!(off >= SB_OFFSET_V12 + 8);
            }
        }
    }

    #[test]
    fn array_size_rounds_to_chunks() {
        assert_eq!(raid0_array_sectors(&[520_192, 520_192], 1024), 1_040_384);
        assert_eq!(raid0_array_sectors(&[1500, 2600], 1024), 1024 + 2048);
        assert!(!is_multizone(&[520_192, 520_192], 1024));
        assert!(is_multizone(&[1500, 2600], 1024));
    }

    #[test]
    fn single_zone_mapping() {
        assert_eq!(raid0_map_single_zone(0, 2, 1024, 4096), (0, 4096));
        assert_eq!(raid0_map_single_zone(1024, 2, 1024, 4096), (1, 4096));
        assert_eq!(
            raid0_map_single_zone(2048 + 5, 2, 1024, 4096),
            (0, 4096 + 1024 + 5)
        );
    }
}
