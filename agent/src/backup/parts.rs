//! Multipart part sizes, derived from the size a backup is expected to reach.
//!
//! Every object store caps the number of parts of one object: S3 and GCS (its XML multipart API)
//! at 10,000 parts of 5 MiB to 5 GiB, Azure Blob at 50,000 blocks of up to 4,000 MiB. With a
//! fixed 5 MiB part an S3 object ends near 48.8 GiB, and the upload fails at the end, after hours
//! (pgBackRest PR #1055: Azure InvalidBlockList at 91 % of 1.1 TB). The limits are ours, in code
//! and unit-tested: the emulators used in tests (Azurite, moto) do not enforce them.

pub use crate::profile::units::human_size as human;
use anyhow::{bail, Result};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// What one destination allows for one multipart object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartLimits {
    /// Service name for messages.
    pub service: &'static str,
    pub max_parts: u64,
    /// Smallest part but the last.
    pub min_part: u64,
    pub max_part: u64,
    pub max_object: u64,
}

/// Amazon S3 and S3-compatible servers.
pub const S3: PartLimits = PartLimits {
    service: "S3",
    max_parts: 10_000,
    min_part: 5 * MIB,
    max_part: 5 * GIB,
    max_object: 5 * TIB,
};

/// Google Cloud Storage (XML multipart upload API).
pub const GCS: PartLimits = PartLimits {
    service: "GCS",
    max_parts: 10_000,
    min_part: 5 * MIB,
    max_part: 5 * GIB,
    max_object: 5 * TIB,
};

/// Azure Blob Storage block blobs (Put Block / Put Block List).
pub const AZURE: PartLimits = PartLimits {
    service: "Azure Blob",
    max_parts: 50_000,
    min_part: 1,
    max_part: 4000 * MIB,
    max_object: 50_000 * 4000 * MIB,
};

/// A local directory: no service limit; parts only bound memory.
pub const LOCAL: PartLimits = PartLimits {
    service: "directory",
    max_parts: u64::MAX,
    min_part: 1,
    max_part: GIB,
    max_object: u64::MAX,
};

/// The part size used unless the expected size needs bigger parts.
pub const DEFAULT_PART: u64 = 8 * MIB;

/// Expected sizes are estimates (a datadir's size, before compression); parts are sized so that
/// twice the estimate still fits.
pub const HEADROOM: u64 = 2;

/// The part size for an object expected to reach `expected` bytes: at least [`DEFAULT_PART`],
/// large enough that `HEADROOM × expected` fits in the service's part count, rounded up to a
/// whole MiB. Refuses an expected size one object of the service cannot hold.
pub fn part_size(limits: &PartLimits, expected: u64) -> Result<u64> {
    if expected > limits.max_object {
        bail!(
            "a backup expected to reach {} cannot be one {} object (at most {})",
            human(expected),
            limits.service,
            human(limits.max_object)
        );
    }
    let want = expected.saturating_mul(HEADROOM);
    let mut part = want.div_ceil(limits.max_parts.max(1));
    part = part.div_ceil(MIB).saturating_mul(MIB);
    part = part.max(DEFAULT_PART).max(limits.min_part);
    if part > limits.max_part {
        // The headroom does not fit; the estimate itself still must.
        let bare = expected.div_ceil(limits.max_parts).div_ceil(MIB) * MIB;
        if bare > limits.max_part {
            bail!(
                "a backup expected to reach {} needs parts over the {} limit of {}",
                human(expected),
                limits.service,
                human(limits.max_part)
            );
        }
        part = limits.max_part;
    }
    Ok(part)
}

/// The most bytes an object written in `part`-byte parts can hold on this service.
pub fn capacity(limits: &PartLimits, part: u64) -> u64 {
    part.saturating_mul(limits.max_parts).min(limits.max_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_backups_use_the_default_part() {
        for l in [&S3, &GCS, &AZURE, &LOCAL] {
            assert_eq!(part_size(l, 0).unwrap(), DEFAULT_PART);
            assert_eq!(part_size(l, 10 * GIB).unwrap(), DEFAULT_PART);
        }
    }

    #[test]
    fn the_five_mib_trap_is_avoided() {
        // 5 MiB parts cap an S3 object near 48.8 GiB; a 100 GiB backup needs bigger parts.
        assert!(capacity(&S3, 5 * MIB) < 49 * GIB);
        let p = part_size(&S3, 100 * GIB).unwrap();
        assert_eq!(p % MIB, 0);
        assert!(capacity(&S3, p) >= 200 * GIB, "{p}");
        assert!(p <= S3.max_part);
        // Azure has five times the block count: the same backup needs smaller blocks.
        let a = part_size(&AZURE, 100 * GIB).unwrap();
        assert!(a < p && capacity(&AZURE, a) >= 200 * GIB, "{a}");
    }

    #[test]
    fn every_size_up_to_the_limit_fits_its_estimate() {
        for l in [&S3, &GCS, &AZURE] {
            let mut e = MIB;
            while e <= l.max_object {
                let p = part_size(l, e).unwrap();
                assert!(p >= l.min_part && p <= l.max_part, "{} {e} {p}", l.service);
                assert!(capacity(l, p) >= e, "{} {e} {p}", l.service);
                e = e.saturating_mul(3);
            }
            // Exactly the largest object: parts at the maximum, no headroom left.
            let p = part_size(l, l.max_object).unwrap();
            assert!(capacity(l, p) >= l.max_object, "{}", l.service);
        }
    }

    #[test]
    fn too_big_is_refused_with_the_limit_named() {
        let e = part_size(&S3, 6 * TIB).unwrap_err().to_string();
        assert!(e.contains("S3") && e.contains("5.0 TiB"), "{e}");
        let e = part_size(&AZURE, 200 * TIB).unwrap_err().to_string();
        assert!(e.contains("Azure Blob"), "{e}");
    }

    #[test]
    fn limits_are_the_documented_ones() {
        assert_eq!(S3.max_parts * S3.max_part / TIB, 48); // 10,000 × 5 GiB, capped at 5 TiB
        assert_eq!(AZURE.max_parts, 50_000);
        assert_eq!(AZURE.max_part, 4000 * MIB);
        assert_eq!(AZURE.max_object / GIB, 195_312); // ~190.7 TiB
        assert_eq!(human(5 * TIB), "5.0 TiB");
        assert_eq!(human(512), "512 B");
    }
}
