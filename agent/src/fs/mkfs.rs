//! mkfs command lines. Pure: (filesystem, geometry, label, uuid, device) → argv.
//!
//! Facts (GENERALIZE-DATADIR-TUNING.md §C3, PEERS.md §0.9-10):
//! - XFS: `-d su=<chunk>,sw=<members>`; the log stripe unit is capped at 256 KiB, so with a larger
//!   chunk we pass `-l su=32k` explicitly rather than let mkfs warn and adjust.
//! - ext4: `stride = chunk / block`, `stripe_width = stride × members`; `lazy_itable_init=0,
//!   lazy_journal_init=0` so no background init pollutes the first load.
//! - No discard at mkfs on fresh cloud disks: `mkfs.xfs -K`, `mke2fs -E nodiscard`.
//! - Never `-f`/`-F`: mkfs itself then refuses a device that already carries a filesystem, a
//!   last line of defence behind our own probe. The one exception: over an XFS whose mkfs never
//!   finished (`MkfsSpec::over_unfinished`, found by `probe::xfs_mkfs_unfinished`), which holds
//!   nothing but would make mkfs.xfs refuse.

use super::FsType;
use crate::host::CommandSpec;

/// Stripe geometry of the device the filesystem goes on (None for a single disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stripe {
    pub chunk_bytes: u64,
    pub members: u32,
}

/// XFS's maximum log stripe unit.
pub const XFS_MAX_LOG_SU: u64 = 256 * 1024;
/// Log stripe unit used when the chunk is larger than XFS allows.
pub const XFS_FALLBACK_LOG_SU: u64 = 32 * 1024;
/// ext4 block size we format with.
pub const EXT4_BLOCK: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MkfsSpec {
    pub fs: FsType,
    pub device: String,
    pub label: String,
    pub uuid: String,
    pub stripe: Option<Stripe>,
    /// The device holds an XFS whose mkfs never finished: pass -f (see the module doc).
    pub over_unfinished: bool,
}

/// The XFS log stripe unit for a chunk: the chunk itself up to XFS's 256 KiB maximum, above it
/// 32 KiB (what mkfs.xfs falls back to on its own, with a warning).
pub fn xfs_log_su(chunk_bytes: u64) -> u64 {
    if chunk_bytes <= XFS_MAX_LOG_SU {
        chunk_bytes
    } else {
        XFS_FALLBACK_LOG_SU
    }
}

fn kib(bytes: u64) -> String {
    format!("{}k", bytes / 1024)
}

/// The mkfs command line for `spec`.
pub fn command(spec: &MkfsSpec) -> CommandSpec {
    match spec.fs {
        FsType::Xfs => {
            let mut c = CommandSpec::new("mkfs.xfs").arg("-K");
            if spec.over_unfinished {
                c = c.arg("-f");
            }
            c = c
                .args(["-L", &spec.label])
                .args(["-m", &format!("uuid={}", spec.uuid)]);
            if let Some(s) = spec.stripe {
                c = c.args(["-d", &format!("su={},sw={}", kib(s.chunk_bytes), s.members)]);
                c = c.args(["-l", &format!("su={}", kib(xfs_log_su(s.chunk_bytes)))]);
            }
            c.arg(&spec.device)
        }
        FsType::Ext4 => {
            let mut ext = vec![
                "nodiscard".to_string(),
                "lazy_itable_init=0".to_string(),
                "lazy_journal_init=0".to_string(),
            ];
            if let Some(s) = spec.stripe {
                let stride = (s.chunk_bytes / EXT4_BLOCK).max(1);
                ext.push(format!("stride={stride}"));
                ext.push(format!("stripe_width={}", stride * u64::from(s.members)));
            }
            CommandSpec::new("mkfs.ext4")
                .args(["-q", "-b", &EXT4_BLOCK.to_string()])
                .args(["-L", &spec.label])
                .args(["-U", &spec.uuid])
                .args(["-E", &ext.join(",")])
                .arg(&spec.device)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(fs: FsType, stripe: Option<Stripe>) -> MkfsSpec {
        MkfsSpec {
            fs,
            device: "/dev/md/dbdata".into(),
            label: "dbdata".into(),
            uuid: "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9".into(),
            stripe,
            over_unfinished: false,
        }
    }

    #[test]
    fn xfs_two_disks_512k() {
        let c = command(&spec(
            FsType::Xfs,
            Some(Stripe {
                chunk_bytes: 512 * 1024,
                members: 2,
            }),
        ));
        assert_eq!(
            c.display(),
            "mkfs.xfs -K -L dbdata -m uuid=0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9 -d su=512k,sw=2 -l su=32k /dev/md/dbdata"
        );
    }

    #[test]
    fn xfs_over_an_unfinished_mkfs_forces_and_only_then() {
        let mut s = spec(FsType::Xfs, None);
        assert!(!command(&s).args.iter().any(|a| a == "-f"));
        s.over_unfinished = true;
        assert_eq!(
            command(&s).display(),
            "mkfs.xfs -K -f -L dbdata -m uuid=0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9 /dev/md/dbdata"
        );
    }

    #[test]
    fn xfs_small_chunk_keeps_log_su() {
        let c = command(&spec(
            FsType::Xfs,
            Some(Stripe {
                chunk_bytes: 64 * 1024,
                members: 4,
            }),
        ));
        assert!(
            c.display().contains("-d su=64k,sw=4 -l su=64k "),
            "{}",
            c.display()
        );
    }

    #[test]
    fn xfs_single_disk_has_no_stripe() {
        let c = command(&spec(FsType::Xfs, None));
        assert!(!c.display().contains("su="));
        assert!(c.args.contains(&"-K".to_string()));
        assert!(!c.args.iter().any(|a| a == "-f"));
    }

    #[test]
    fn ext4_stride_and_width() {
        let c = command(&spec(
            FsType::Ext4,
            Some(Stripe {
                chunk_bytes: 512 * 1024,
                members: 4,
            }),
        ));
        assert_eq!(
            c.display(),
            "mkfs.ext4 -q -b 4096 -L dbdata -U 0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9 -E nodiscard,lazy_itable_init=0,lazy_journal_init=0,stride=128,stripe_width=512 /dev/md/dbdata"
        );
        assert!(!c.args.iter().any(|a| a == "-F"));
    }
}
