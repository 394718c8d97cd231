//! The inventory data model: what detection reports and what `plan` consumes.
//! Serialized as `dbhost detect --output json` (schema documented in `docs/detect-schema.md`).
//! Bump [`INVENTORY_SCHEMA`] on any incompatible change.

use serde::{Deserialize, Serialize};

/// Version of the JSON inventory schema.
pub const INVENTORY_SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Azure,
    Aws,
    Gcp,
    Qemu,
    Other,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Platform::Azure => "azure",
            Platform::Aws => "aws",
            Platform::Gcp => "gcp",
            Platform::Qemu => "qemu",
            Platform::Other => "other",
        };
        f.write_str(s)
    }
}

/// Host caching mode of a cloud data disk (Azure IMDS `caching`), or what the profile states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    None,
    ReadOnly,
    ReadWrite,
    Unknown,
}

/// What a disk is for, as far as the platform tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DiskRole {
    /// The OS disk (boot / root lives here).
    Os,
    /// Azure temporary/resource disk (SCSI) — never a data candidate.
    Resource,
    /// Local/ephemeral NVMe (Azure "NVMe Direct Disk", AWS instance store, GCP local SSD).
    Local,
    /// A remote data disk (Azure LUN, EBS volume, GCP PD, QEMU data disk).
    Data,
    /// Nothing tells.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Scsi,
    Nvme,
    Virtio,
    Ata,
    Xen,
    Other,
}

/// A recognised on-disk signature (found by the pure-Rust probe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// "gpt", "gpt-backup", "mbr", "ext4", "xfs", "btrfs", "swap", "lvm2", "luks", "md-0.90",
    /// "md-1.0", "md-1.1", "md-1.2", "ntfs", "vfat", "exfat", "f2fs", "zfs", … (every kind is
    /// listed, with its offset, in `detect/probe/kinds.rs` and `docs/detect-schema.md`).
    pub kind: String,
    /// Byte offset of the magic that identified it.
    pub offset: u64,
    /// Extra detail: filesystem label/UUID, md array UUID and name, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A v1.x md superblock found on a disk (enough to decide "adopt").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdMember {
    /// mdadm text form `xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx`.
    pub array_uuid: String,
    pub name: String,
    pub level: i32,
    pub raid_disks: u32,
    /// This member's role (slot) or `None` for spare/faulty.
    pub role: Option<u32>,
    pub chunk_sectors: u32,
    pub events: u64,
    pub minor_version: u8,
    /// The part of `set_name` before ':' (mdadm's homehost), when there is one;
    /// `name` is the part after it.
    #[serde(default)]
    pub homehost: Option<String>,
    /// Slot index into dev_roles.
    #[serde(default)]
    pub dev_number: u32,
    /// Sector where member data begins.
    #[serde(default)]
    pub data_offset: u64,
    /// Sectors usable for data.
    #[serde(default)]
    pub data_size: u64,
    /// The superblock checksum is correct (the kernel refuses a member whose checksum is bad).
    #[serde(default)]
    pub checksum_ok: bool,
}

/// Why a disk is not a data candidate. Every refusal is something a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Refusal {
    OsDisk,
    ResourceDisk,
    LocalEphemeral,
    HasPartitions {
        partitions: Vec<String>,
    },
    HoldsSignature {
        kind: String,
        offset: u64,
    },
    /// No signature dbhost knows, but the regions that prove a disk blank are not all zeros.
    UnrecognizedData {
        offset: u64,
    },
    Mounted {
        mountpoint: String,
    },
    Swap,
    HeldBy {
        holders: Vec<String>,
    },
    /// removable, loop, ram, zram, optical, md, dm, …
    NotADisk {
        what: String,
    },
    ReadOnly,
    CacheModeNotAllowed {
        mode: CacheMode,
    },
    TooSmall {
        size_bytes: u64,
        min_bytes: u64,
    },
    NotSelected {
        why: String,
    },
    Unreadable {
        attribute: String,
    },
    /// Two sources disagree about what the disk is (e.g. sysfs vs `/dev/disk/azure` links).
    RoleConflict {
        detail: String,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::OsDisk => write!(f, "OS disk"),
            Refusal::ResourceDisk => {
                write!(f, "temporary/resource disk (contents are lost on redeploy)")
            }
            Refusal::LocalEphemeral => write!(
                f,
                "local ephemeral disk (contents are lost on stop/deallocate)"
            ),
            Refusal::HasPartitions { partitions } => {
                write!(f, "has partitions: {}", partitions.join(", "))
            }
            Refusal::HoldsSignature { kind, offset } => {
                write!(f, "holds a {kind} signature at byte {offset}")
            }
            Refusal::UnrecognizedData { offset } => write!(
                f,
                "holds unrecognized data (non-zero bytes at offset {offset})"
            ),
            Refusal::Mounted { mountpoint } => write!(f, "mounted at {mountpoint}"),
            Refusal::Swap => write!(f, "in use as swap"),
            Refusal::HeldBy { holders } => write!(f, "held by {}", holders.join(", ")),
            Refusal::NotADisk { what } => write!(f, "not a data disk ({what})"),
            Refusal::ReadOnly => write!(f, "read-only"),
            Refusal::CacheModeNotAllowed { mode } => {
                write!(f, "host cache mode {mode:?} is not allowed by the profile")
            }
            Refusal::TooSmall {
                size_bytes,
                min_bytes,
            } => write!(
                f,
                "too small: {size_bytes} bytes < {min_bytes} bytes required by the profile"
            ),
            Refusal::NotSelected { why } => write!(f, "not selected by the profile: {why}"),
            Refusal::Unreadable { attribute } => write!(f, "could not read {attribute}"),
            Refusal::RoleConflict { detail } => write!(f, "role is ambiguous: {detail}"),
        }
    }
}

impl Refusal {
    /// Refusals that `--wipe` cannot lift: what the disk is (OS, resource, not a disk), that
    /// something uses it right now (mounted, swap, held, read-only), or partitions (dbhost never
    /// deletes partitions: the kernel holds them as devices of their own).
    fn wipe_cannot_help(&self) -> bool {
        matches!(
            self,
            Refusal::HasPartitions { .. }
                | Refusal::OsDisk
                | Refusal::ResourceDisk
                | Refusal::LocalEphemeral
                | Refusal::NotADisk { .. }
                | Refusal::Mounted { .. }
                | Refusal::Swap
                | Refusal::HeldBy { .. }
                | Refusal::ReadOnly
                | Refusal::RoleConflict { .. }
        )
    }
}

/// A disk's refusals as one line. The `--wipe` hint is given only where wiping would make the
/// disk usable: it holds a signature or partitions and nothing says it is in use or not a data
/// disk (never for the OS or resource disk, or a mounted one).
pub fn describe_refusals(refusals: &[Refusal]) -> String {
    let s = refusals
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    s + wipe_hint(refusals.iter())
}

/// The `--wipe` hint to append to a disk's reasons ("" when wiping would not help).
pub fn wipe_hint<'a>(refusals: impl Iterator<Item = &'a Refusal> + Clone) -> &'static str {
    let holds_data = refusals.clone().any(|r| {
        matches!(
            r,
            Refusal::HoldsSignature { .. }
                | Refusal::UnrecognizedData { .. }
                | Refusal::HasPartitions { .. }
        )
    });
    if holds_data && !refusals.into_iter().any(|r| r.wipe_cannot_help()) {
        " (wipe it explicitly with --wipe if it is really unused)"
    } else {
        ""
    }
}

/// One whole block device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// Kernel name: "sda", "nvme0n1", "vdb".
    pub name: String,
    /// "8:0"
    pub devnum: String,
    pub size_bytes: u64,
    pub logical_block_size: u32,
    pub physical_block_size: u32,
    pub rotational: Option<bool>,
    pub read_only: bool,
    pub removable: bool,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub transport: Transport,
    /// `/dev/disk/by-id/*` names pointing at this disk (file names only).
    pub by_id: Vec<String>,
    /// `/dev/disk/by-path/*` names pointing at this disk.
    pub by_path: Vec<String>,
    /// SCSI address "H:C:T:L" when the disk is SCSI.
    pub scsi_address: Option<String>,
    /// NVMe namespace id when the disk is NVMe.
    pub nvme_nsid: Option<u32>,
    pub partitions: Vec<String>,
    pub holders: Vec<String>,
    pub mountpoints: Vec<String>,
    pub swap: bool,
    /// `queue/write_cache` ("write back" / "write through").
    pub write_cache: Option<String>,
    pub discard_granularity: Option<u64>,
    pub role: DiskRole,
    /// How the role and LUN were worked out (sysfs controller, model, mounts, links).
    #[serde(default)]
    pub role_evidence: Vec<String>,
    /// Platform LUN (Azure LUN, QEMU scsi lun) when known.
    pub lun: Option<u32>,
    pub cache_mode: CacheMode,
    pub signatures: Vec<Signature>,
    /// A v1.x md superblock, if one is present and valid.
    pub md: Option<MdMember>,
    /// With no signature found: the first non-zero byte in the regions that prove a disk blank
    /// (`None`: proven blank, or a signature was found).
    #[serde(default)]
    pub nonzero_at: Option<u64>,
    /// Attributes that could not be read (reported, never a panic).
    pub missing_attributes: Vec<String>,
    /// Empty = intrinsic data candidate (profile filters are applied by `plan`).
    pub refusals: Vec<Refusal>,
}

impl Disk {
    /// Intrinsically eligible (before profile filters).
    pub fn is_candidate(&self) -> bool {
        self.refusals.is_empty()
    }
    /// A blank disk: no signature of any kind, no partitions, and the blank-proof regions read
    /// as zeros.
    pub fn is_blank(&self) -> bool {
        self.signatures.is_empty()
            && self.partitions.is_empty()
            && self.md.is_none()
            && self.nonzero_at.is_none()
    }
    /// `/dev/disk/by-id/...` path suitable for a stable reference, if any.
    pub fn stable_id(&self) -> Option<&str> {
        self.by_id.first().map(String::as_str)
    }
}

/// An md array the kernel currently runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningArray {
    /// "md127"
    pub name: String,
    pub level: Option<String>,
    pub array_state: Option<String>,
    pub uuid: Option<String>,
    pub members: Vec<String>,
}

/// Everything detection learned about the host. Pure data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub schema: u32,
    pub platform: Platform,
    /// Kernel release (`/proc/sys/kernel/osrelease`), e.g. "6.1.0-28-amd64".
    pub kernel: Option<String>,
    pub disks: Vec<Disk>,
    pub arrays: Vec<RunningArray>,
    /// Whether Azure IMDS was consulted and what happened ("not azure", "ok", "error: …").
    pub imds: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig() -> Refusal {
        Refusal::HoldsSignature {
            kind: "ext4".into(),
            offset: 1080,
        }
    }

    #[test]
    fn wipe_hint_only_where_wiping_would_help() {
        let hint = "--wipe";
        assert!(describe_refusals(&[sig()]).contains(hint));
        let parts = Refusal::HasPartitions {
            partitions: vec!["sdc1".into()],
        };
        // dbhost never deletes partitions, so --wipe would not help there.
        assert!(!describe_refusals(&[parts.clone(), sig()]).contains(hint));
        for blocker in [
            Refusal::OsDisk,
            Refusal::ResourceDisk,
            Refusal::Mounted {
                mountpoint: "/mnt".into(),
            },
            Refusal::HeldBy {
                holders: vec!["md127".into()],
            },
        ] {
            let text = describe_refusals(&[blocker.clone(), sig()]);
            assert!(!text.contains(hint), "{text}");
            assert!(text.starts_with(&blocker.to_string()), "{text}");
            assert!(
                text.contains("holds a ext4 signature at byte 1080"),
                "{text}"
            );
        }
        assert_eq!(describe_refusals(&[Refusal::OsDisk]), "OS disk");
        assert_eq!(
            describe_refusals(&[Refusal::UnrecognizedData { offset: 42 }]),
            "holds unrecognized data (non-zero bytes at offset 42) (wipe it explicitly with --wipe if it is really unused)"
        );
    }
}
