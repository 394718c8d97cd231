//! Filesystems: mkfs argument rendering (stripe-aligned, no discard on fresh disks), fstab lines
//! (by filesystem UUID, nofail, device timeout, owner tag), filesystem identification, mounts.
//! Pure rendering lives here; side effects go through `host::Exec` and `host::atomic_write`.

pub mod fstab;
pub mod mkfs;
pub mod mounts;
pub mod probe;
pub mod steps;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsType {
    Xfs,
    Ext4,
}

impl FsType {
    pub fn as_str(self) -> &'static str {
        match self {
            FsType::Xfs => "xfs",
            FsType::Ext4 => "ext4",
        }
    }
}

impl From<crate::profile::FsType> for FsType {
    fn from(t: crate::profile::FsType) -> Self {
        match t {
            crate::profile::FsType::Xfs => FsType::Xfs,
            crate::profile::FsType::Ext4 => FsType::Ext4,
        }
    }
}

impl std::fmt::Display for FsType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
