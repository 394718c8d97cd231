//! Pure rendering: mkfs arguments with stripe geometry, the fstab line, and human text for a
//! [`Plan`] and a [`PlanRefusal`].

use super::{
    ArrayPlan, DiskState, DiskVerdict, DisksDecision, FsGeometry, FsPlan, MountPlan, Plan,
    PlanRefusal, EXT4_BLOCK, FS_UUID, NEW_UUID, XFS_MAX_LOG_SU,
};
use crate::detect::model::CacheMode;
use crate::profile::{FsType, Profile};
use std::fmt::{self, Write as _};

/// Bytes in mkfs's suffix form: `512k`, `1m`, or plain bytes.
fn mkfs_size(b: u64) -> String {
    if b % (1 << 20) == 0 {
        format!("{}m", b >> 20)
    } else if b % 1024 == 0 {
        format!("{}k", b >> 10)
    } else {
        b.to_string()
    }
}

/// Human size: exact binary unit when it divides (`512G`), else one decimal (`29.9G`).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [(&str, u64); 5] = [
        ("P", 1 << 50),
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ];
    for (u, m) in UNITS {
        if b >= m {
            return if b % m == 0 {
                format!("{}{u}", b / m)
            } else {
                format!("{:.1}{u}", b as f64 / m as f64)
            };
        }
    }
    format!("{b}B")
}

/// The filesystem part of a plan: geometry from the array, mkfs unless adopting.
pub fn fs_plan(p: &Profile, array: Option<&ArrayPlan>, device: &str, adopting: bool) -> FsPlan {
    let label = p.filesystem.label.clone();
    let mut notes = Vec::new();
    let (geometry, mut argv) = match p.filesystem.fs_type {
        FsType::Xfs => {
            let mut argv: Vec<String> = vec![
                "mkfs.xfs".into(),
                "-K".into(),
                "-L".into(),
                label.clone(),
                "-m".into(),
                format!("uuid={NEW_UUID}"),
            ];
            let g = match array {
                Some(a) => {
                    let log_su = a.chunk_bytes.min(XFS_MAX_LOG_SU);
                    if log_su < a.chunk_bytes {
                        notes.push(format!(
                            "XFS log stripe unit capped at {} (XFS maximum; chunk is {})",
                            human_bytes(XFS_MAX_LOG_SU),
                            human_bytes(a.chunk_bytes)
                        ));
                    }
                    argv.extend([
                        "-d".into(),
                        format!("su={},sw={}", mkfs_size(a.chunk_bytes), a.members),
                        "-l".into(),
                        format!("su={}", mkfs_size(log_su)),
                    ]);
                    FsGeometry::Xfs {
                        su_bytes: Some(a.chunk_bytes),
                        sw: Some(a.members),
                        log_su_bytes: Some(log_su),
                    }
                }
                None => FsGeometry::Xfs {
                    su_bytes: None,
                    sw: None,
                    log_su_bytes: None,
                },
            };
            (g, argv)
        }
        FsType::Ext4 => {
            let mut ext = vec![
                "nodiscard".to_string(),
                "lazy_itable_init=0".into(),
                "lazy_journal_init=0".into(),
            ];
            let g = match array {
                Some(a) => {
                    let stride = (a.chunk_bytes / EXT4_BLOCK).max(1);
                    let width = stride * u64::from(a.members);
                    ext.insert(0, format!("stripe_width={width}"));
                    ext.insert(0, format!("stride={stride}"));
                    FsGeometry::Ext4 {
                        block_bytes: EXT4_BLOCK,
                        stride: Some(stride),
                        stripe_width: Some(width),
                    }
                }
                None => FsGeometry::Ext4 {
                    block_bytes: EXT4_BLOCK,
                    stride: None,
                    stripe_width: None,
                },
            };
            let argv = vec![
                "mkfs.ext4".into(),
                "-L".into(),
                label.clone(),
                "-U".into(),
                NEW_UUID.into(),
                "-b".into(),
                EXT4_BLOCK.to_string(),
                "-E".into(),
                ext.join(","),
            ];
            (g, argv)
        }
    };
    argv.push(device.to_string());
    if adopting {
        notes.push("existing filesystem is used as it is (never mkfs over data)".into());
    }
    FsPlan {
        fs_type: p.filesystem.fs_type,
        label,
        device: device.to_string(),
        geometry,
        mkfs: (!adopting).then_some(argv),
        notes,
    }
}

/// Mount options dbhost writes: its own, then the profile's extras.
pub fn mount_options(p: &Profile) -> Vec<String> {
    let mut o = vec![
        "noatime".to_string(),
        "nofail".into(),
        format!(
            "x-systemd.device-timeout={}s",
            p.filesystem.device_timeout.as_secs()
        ),
        format!("x-dbhost.owner={}", p.array.name),
    ];
    o.extend(p.filesystem.mount_options.iter().cloned());
    o
}

pub fn mount_plan(p: &Profile) -> MountPlan {
    let options = mount_options(p);
    let pass = match p.filesystem.fs_type {
        FsType::Xfs => 0,
        FsType::Ext4 => 2,
    };
    MountPlan {
        mount_point: p.filesystem.mount_point.clone(),
        fstab_line: format!(
            "UUID={FS_UUID} {} {} {} 0 {pass}",
            p.filesystem.mount_point,
            p.filesystem.fs_type,
            options.join(",")
        ),
        options,
    }
}

fn cache_name(m: CacheMode) -> &'static str {
    match m {
        CacheMode::None => "none",
        CacheMode::ReadOnly => "readonly",
        CacheMode::ReadWrite => "readwrite",
        CacheMode::Unknown => "unknown",
    }
}

fn state_name(s: &DiskState) -> String {
    match s {
        DiskState::Excluded => "excluded".into(),
        DiskState::Blank => "blank".into(),
        DiskState::Member { role, .. } => match role {
            Some(r) => format!("md member {r}"),
            None => "md spare".into(),
        },
        DiskState::OwnFilesystem => "own filesystem".into(),
        DiskState::Busy => "busy".into(),
        DiskState::Wipe => "WIPE (--wipe)".into(),
    }
}

/// One line per disk: name, LUN, serial, size, cache mode, state, reasons.
pub fn disk_table(disks: &[DiskVerdict]) -> String {
    let rows: Vec<[String; 7]> = disks
        .iter()
        .map(|d| {
            [
                d.name.clone(),
                d.lun.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
                d.serial.clone().unwrap_or_else(|| "-".into()),
                human_bytes(d.size_bytes),
                cache_name(d.cache_mode).into(),
                state_name(&d.state),
                if d.reasons.is_empty() {
                    if d.selected() {
                        "selected".to_string()
                    } else {
                        "-".to_string()
                    }
                } else {
                    d.reasons
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                        + if d.state == DiskState::Wipe {
                            " (cleared: --wipe was given)"
                        } else {
                            crate::detect::model::wipe_hint(d.reasons.iter().filter_map(
                                |r| match r {
                                    super::DiskReason::Disk(x) => Some(x),
                                    super::DiskReason::Plan(_) => None,
                                },
                            ))
                        }
                },
            ]
        })
        .collect();
    let head = ["DISK", "LUN", "SERIAL", "SIZE", "CACHE", "STATE", "REASON"];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(head.map(String::from)).chain(rows) {
        let mut line = String::from("  ");
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<width$}  ", width = w[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

impl fmt::Display for PlanRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "refused on {}:", self.platform)?;
        for r in &self.reasons {
            writeln!(f, "  - {r}")?;
        }
        writeln!(f, "disks:")?;
        write!(f, "{}", disk_table(&self.disks))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.description {
            writeln!(f, "profile: {d}")?;
        }
        writeln!(f, "platform: {}", self.platform)?;
        let n = self.members.len();
        match &self.decision {
            DisksDecision::Create => match &self.array {
                Some(_) => writeln!(f, "disks: create a new array from {n} blank disk(s)")?,
                None => writeln!(f, "disks: use 1 blank disk directly (no array)")?,
            },
            DisksDecision::AdoptArray {
                array_uuid,
                array_name,
                running_as,
            } => {
                write!(
                    f,
                    "disks: adopt existing md array {array_uuid} (name {array_name:?}, {n} members)"
                )?;
                match running_as {
                    Some(md) => writeln!(f, ", already running as {md}")?,
                    None => writeln!(f, "; assemble it")?,
                }
            }
            DisksDecision::AdoptFilesystem => writeln!(
                f,
                "disks: adopt the existing filesystem on {}",
                self.members[0].name
            )?,
        }
        for m in &self.members {
            writeln!(
                f,
                "  member {}: {}  LUN {}  serial {}  {}  {}",
                m.role,
                m.name,
                m.lun.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
                m.serial.as_deref().unwrap_or("-"),
                human_bytes(m.size_bytes),
                m.path
            )?;
        }
        match &self.array {
            Some(a) => {
                write!(
                    f,
                    "array: {} {:?} at {}, chunk {}, metadata {}",
                    a.level,
                    a.name,
                    a.device,
                    human_bytes(a.chunk_bytes),
                    a.metadata
                )?;
                if let Some(o) = a.data_offset_sectors {
                    write!(f, ", data offset {o} sectors ({})", human_bytes(o * 512))?;
                }
                if let Some(u) = a.usable_bytes {
                    write!(f, ", usable {u} bytes ({})", human_bytes(u))?;
                }
                writeln!(f)?;
            }
            None => writeln!(f, "array: none (single disk {})", self.filesystem.device)?,
        }
        let fs = &self.filesystem;
        match &fs.mkfs {
            Some(argv) => writeln!(f, "filesystem: {}", argv.join(" "))?,
            None => writeln!(
                f,
                "filesystem: keep the existing {} on {}",
                fs.fs_type, fs.device
            )?,
        }
        for n in &fs.notes {
            writeln!(f, "  note: {n}")?;
        }
        writeln!(f, "mount: {}", self.mount.mount_point)?;
        writeln!(f, "  fstab: {}", self.mount.fstab_line)?;
        match &self.database {
            Some(d) => {
                write!(f, "database: move the {} datadir to {}", d.engine, d.target)?;
                if d.keep_old_datadir {
                    write!(f, "; the old datadir is kept, renamed, ")?;
                    match &d.retention {
                        Some(r) => writeln!(f, "for {r}")?,
                        None => writeln!(f, "until `dbhost apply --finalize`")?,
                    }
                } else {
                    writeln!(f, "; the old datadir is removed once the copy is verified")?;
                }
            }
            None => writeln!(f, "database: none (storage only)")?,
        }
        if self.tuning.enabled {
            writeln!(
                f,
                "tuning: on, {} override(s){}",
                self.tuning.overrides.len(),
                if self.tuning.overrides.is_empty() {
                    String::new()
                } else {
                    format!(": {}", self.tuning.overrides.join(", "))
                }
            )?;
        } else {
            writeln!(f, "tuning: off")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        writeln!(f, "all disks:")?;
        write!(f, "{}", disk_table(&self.disks))
    }
}
