//! Plan = a pure function of profile × inventory: which disks, create or adopt, array geometry,
//! filesystem and mount, datadir move, tuning summary — or a refusal that lists every disk with
//! its reasons. Nothing here touches the system; `apply` (issue 5) executes a [`Plan`].
//!
//! - [`select`]: per-disk profile filters and classification;
//! - [`render`]: mkfs arguments, fstab line, human text for plans and refusals;
//! - here: the data types and [`plan`], which holds the disks decision table:
//!
//! | selected disks (after filters, ≥ 1)                               | decision |
//! |--------------------------------------------------------------------|----------|
//! | all blank, count as expected                                       | create   |
//! | all carry v1.x superblocks of ONE array, roles 0..n-1 once, n = raid_disks, same events/chunk, level raid0 | adopt (assemble, no mkfs) |
//! | level none: the one disk carries the profile's filesystem (label or mounted at the mount point) | adopt filesystem |
//! | anything else (busy disk, foreign data, incomplete/several arrays, blank + members, wrong count) | refuse, listing every disk |

pub mod render;
pub mod select;

use crate::detect::model::{CacheMode, Disk, DiskRole, Inventory, Platform, Refusal};
use crate::host::Host;
use crate::md::geometry;
use crate::profile::{Engine, ExpectedCount, FsType, Level, Profile};
use serde::{Deserialize, Serialize};

/// Version of the JSON plan schema (`dbhost plan --output json`).
pub const PLAN_SCHEMA: u32 = 1;
/// md superblock format dbhost writes.
pub const METADATA: &str = "1.2";
/// The smallest device mkfs.xfs (xfsprogs 5.19 and later) formats: "Filesystem must be larger
/// than 300MB" below 300 MiB.
pub const XFS_MIN_BYTES: u64 = 300 * 1024 * 1024;
/// The smallest array dbhost formats with XFS. With a stripe unit, mkfs.xfs (6.1) aligns small
/// allocation groups to it and its 64 MiB minimum log no longer fits one: "Log size must be at
/// least 64MB" up to about 530 MiB (measured over chunks of 64K to 4M and 2 to 8 members).
pub const XFS_MIN_STRIPED_BYTES: u64 = 1024 * 1024 * 1024;

/// The smallest device mkfs of this type formats (`None`: small enough not to matter);
/// `striped`: the device is an array (mkfs gets a stripe unit).
pub fn min_filesystem_bytes(fs: FsType, striped: bool) -> Option<u64> {
    match fs {
        FsType::Xfs if striped => Some(XFS_MIN_STRIPED_BYTES),
        FsType::Xfs => Some(XFS_MIN_BYTES),
        FsType::Ext4 => None,
    }
}

/// Placeholder for identifiers `apply` generates (filesystem UUID).
pub const NEW_UUID: &str = "<new-uuid>";
/// Placeholder for the filesystem UUID in the fstab preview.
pub const FS_UUID: &str = "<fs-uuid>";

/// What the plan does with the disks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum DisksDecision {
    /// All selected disks are blank: create the array (or, level none, the filesystem).
    Create,
    /// The selected disks are the complete member set of one md array: assemble and use it.
    AdoptArray {
        array_uuid: String,
        array_name: String,
        /// The md device already running this array (`md127`), if any.
        running_as: Option<String>,
    },
    /// Level none: the disk already carries the profile's filesystem.
    AdoptFilesystem,
}

/// One disk of the array (or the single disk), in member order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Position in the array (RAID role); 0 for level none.
    pub role: u32,
    pub name: String,
    pub lun: Option<u32>,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub size_bytes: u64,
    /// The path apply should use: a `/dev/disk/by-id` link when there is one.
    pub path: String,
    /// Held data that `--wipe` allowed clearing: apply zeroes its metadata regions first.
    #[serde(default)]
    pub wipe: bool,
}

/// State of a disk for this profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DiskState {
    /// Not used: not a data disk, or filtered out by the profile (see reasons).
    Excluded,
    /// Selected and blank.
    Blank,
    /// Selected and carrying a v1.x md superblock.
    Member {
        array_uuid: String,
        role: Option<u32>,
    },
    /// Selected (level none) and carrying the profile's own filesystem.
    OwnFilesystem,
    /// Selected, but holds data or is in use (see reasons): never written.
    Busy,
    /// Selected and holds data nothing uses (a signature, unrecognized bytes; see reasons), and
    /// `--wipe` was given: cleared before it becomes a member.
    Wipe,
}

/// Plan-specific reasons about a disk (the rest are detection's [`Refusal`]s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum PlanDiskReason {
    /// Carries content detection did not refuse.
    NotBlank { content: Vec<String> },
    /// Member of an md array but the profile uses a single disk (level none).
    MemberButLevelNone { array_uuid: String },
    /// Member of an array whose member set is incomplete or inconsistent.
    IncompleteArray { array_uuid: String, detail: String },
    /// Member of another array than the one adopted.
    OtherArray { array_uuid: String },
}

impl std::fmt::Display for PlanDiskReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanDiskReason::NotBlank { content } => {
                write!(f, "not blank: {}", content.join(", "))
            }
            PlanDiskReason::MemberButLevelNone { array_uuid } => write!(
                f,
                "member of md array {array_uuid}, but the profile uses a single disk (array.level = \"none\")"
            ),
            PlanDiskReason::IncompleteArray { array_uuid, detail } => {
                write!(f, "member of md array {array_uuid}: {detail}")
            }
            PlanDiskReason::OtherArray { array_uuid } => {
                write!(f, "member of another md array {array_uuid}")
            }
        }
    }
}

/// Why a disk is not used, or what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DiskReason {
    Disk(Refusal),
    Plan(PlanDiskReason),
}

impl std::fmt::Display for DiskReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiskReason::Disk(r) => r.fmt(f),
            DiskReason::Plan(r) => r.fmt(f),
        }
    }
}

/// Every disk of the inventory as the profile sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskVerdict {
    pub name: String,
    pub lun: Option<u32>,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub size_bytes: u64,
    pub role: DiskRole,
    /// Detected cache mode, or the profile's assumed one when unknown.
    pub cache_mode: CacheMode,
    #[serde(flatten)]
    pub state: DiskState,
    pub reasons: Vec<DiskReason>,
}

impl DiskVerdict {
    pub fn new(d: &Disk, cache_mode: CacheMode) -> Self {
        DiskVerdict {
            name: d.name.clone(),
            lun: d.lun,
            serial: d.serial.clone(),
            model: d.model.clone(),
            size_bytes: d.size_bytes,
            role: d.role.clone(),
            cache_mode,
            state: DiskState::Excluded,
            reasons: Vec::new(),
        }
    }
    pub fn selected(&self) -> bool {
        self.state != DiskState::Excluded
    }
}

/// Array geometry (raid0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayPlan {
    pub level: Level,
    pub chunk_bytes: u64,
    /// Host-independent name: `/dev/md/<name>`, the superblock name, the fstab owner tag.
    pub name: String,
    pub device: String,
    pub metadata: String,
    pub members: u32,
    /// Data offset in 512-byte sectors (mdadm's default from the first member). `None` when
    /// adopting: the superblocks say.
    pub data_offset_sectors: Option<u64>,
    /// Usable array size; `None` when adopting (the superblocks say).
    pub usable_bytes: Option<u64>,
    /// Members differ in size: the array has more than one zone (layout matters, MD.md §1.9).
    pub multizone: bool,
}

/// Filesystem stripe geometry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FsGeometry {
    Xfs {
        /// Stripe unit (= chunk) and width in units (= members); `None` on a single disk.
        su_bytes: Option<u64>,
        sw: Option<u32>,
        /// Log stripe unit: the chunk, capped at XFS's 256 KiB maximum.
        log_su_bytes: Option<u64>,
    },
    Ext4 {
        block_bytes: u64,
        /// Chunk in filesystem blocks, and stride × members; `None` on a single disk.
        stride: Option<u64>,
        stripe_width: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsPlan {
    pub fs_type: FsType,
    pub label: String,
    /// The block device the filesystem lives on.
    pub device: String,
    pub geometry: FsGeometry,
    /// mkfs command line (UUID placeholder filled by apply); `None` when adopting: never mkfs
    /// over an existing filesystem.
    pub mkfs: Option<Vec<String>>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPlan {
    pub mount_point: String,
    pub options: Vec<String>,
    /// The /etc/fstab line apply writes (filesystem UUID filled in by apply).
    pub fstab_line: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabasePlan {
    pub engine: Engine,
    pub datadir_subdir: String,
    /// mount point / subdirectory.
    pub target: String,
    pub keep_old_datadir: bool,
    pub retention: Option<String>,
    /// `database.method`: may the move use a replica (`auto`), or only the copy.
    #[serde(default)]
    pub method: crate::profile::MoveMethod,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TuningPlan {
    pub enabled: bool,
    pub overrides: Vec<String>,
    pub disk_mbps: Option<u64>,
    pub disk_iops: Option<u64>,
}

/// What `apply` would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub schema: u32,
    pub description: Option<String>,
    pub platform: Platform,
    pub decision: DisksDecision,
    /// The disks used, in member order.
    pub members: Vec<Member>,
    /// Every disk of the inventory with its state and reasons.
    pub disks: Vec<DiskVerdict>,
    /// `None` for level none.
    pub array: Option<ArrayPlan>,
    pub filesystem: FsPlan,
    pub mount: MountPlan,
    /// `None` for engine none.
    pub database: Option<DatabasePlan>,
    pub tuning: TuningPlan,
    pub warnings: Vec<String>,
}

/// Why the plan as a whole is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum RefusalReason {
    PlatformMismatch {
        profile: String,
        host: Platform,
    },
    NoDisks,
    CountMismatch {
        expected: String,
        selected: usize,
    },
    Busy {
        disks: Vec<String>,
    },
    Mixed {
        blank: Vec<String>,
        members: Vec<String>,
        other: Vec<String>,
    },
    SeveralArrays {
        array_uuids: Vec<String>,
    },
    IncompleteArray {
        array_uuid: String,
        detail: String,
    },
    ArrayMismatch {
        array_uuid: String,
        detail: String,
    },
    TooSmallForArray {
        disk: String,
        size_bytes: u64,
    },
    /// The device the filesystem would go on is smaller than its mkfs accepts.
    TooSmallForFilesystem {
        fs: FsType,
        device: String,
        size_bytes: u64,
        min_bytes: u64,
    },
    /// A hint added to any refusal where disks were excluded only because their cache mode is
    /// unknown.
    CacheModeUnknown {
        disks: Vec<String>,
    },
}

impl std::fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use RefusalReason::*;
        match self {
            PlatformMismatch { profile, host } => write!(
                f,
                "the profile is for platform {profile}, this host is {host}"
            ),
            NoDisks => write!(f, "no disk passed the profile's filters"),
            CountMismatch { expected, selected } => write!(
                f,
                "the profile needs {expected} disk(s), {selected} selected"
            ),
            Busy { disks } => write!(
                f,
                "selected disk(s) hold data or are in use: {} (dbhost never writes to them)",
                disks.join(", ")
            ),
            Mixed {
                blank,
                members,
                other,
            } => {
                write!(
                    f,
                    "the selected disks are neither all blank nor exactly one complete array:"
                )?;
                for (what, v) in [("blank", blank), ("md members", members), ("other", other)] {
                    if !v.is_empty() {
                        write!(f, " {what}: {};", v.join(", "))?;
                    }
                }
                Ok(())
            }
            SeveralArrays { array_uuids } => write!(
                f,
                "the selected disks belong to several md arrays: {}",
                array_uuids.join(", ")
            ),
            IncompleteArray { array_uuid, detail } => {
                write!(f, "md array {array_uuid} is incomplete: {detail}")
            }
            ArrayMismatch { array_uuid, detail } => {
                write!(
                    f,
                    "md array {array_uuid} does not fit the profile: {detail}"
                )
            }
            TooSmallForArray { disk, size_bytes } => write!(
                f,
                "{disk} ({size_bytes} bytes) is too small to hold md metadata and one chunk"
            ),
            TooSmallForFilesystem {
                fs,
                device,
                size_bytes,
                min_bytes,
            } => write!(
                f,
                "{device} would hold {size_bytes} bytes; mkfs.{fs} needs at least {min_bytes} \
                 (use larger disks, more of them, or another filesystem type)"
            ),
            CacheModeUnknown { disks } => write!(
                f,
                "the host cache mode of {} is unknown (IMDS gave no answer, or this is not Azure); if you know the disks use no host caching, set disks.assume-cache-mode = \"none\"",
                disks.join(", ")
            ),
        }
    }
}

/// The plan is refused: why, and every disk with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRefusal {
    pub schema: u32,
    pub platform: Platform,
    pub reasons: Vec<RefusalReason>,
    pub disks: Vec<DiskVerdict>,
}

impl std::error::Error for PlanRefusal {}

fn refuse(
    inv: &Inventory,
    mut reasons: Vec<RefusalReason>,
    disks: Vec<DiskVerdict>,
) -> PlanRefusal {
    let unknown: Vec<String> = disks
        .iter()
        .filter(|d| {
            d.reasons
                == [DiskReason::Disk(Refusal::CacheModeNotAllowed {
                    mode: CacheMode::Unknown,
                })]
        })
        .map(|d| d.name.clone())
        .collect();
    if !unknown.is_empty() {
        reasons.push(RefusalReason::CacheModeUnknown { disks: unknown });
    }
    PlanRefusal {
        schema: PLAN_SCHEMA,
        platform: inv.platform,
        reasons,
        disks,
    }
}

/// The path apply uses for a disk: its first `/dev/disk/by-id` link, else `/dev/<name>`.
fn member_path(d: &Disk) -> String {
    let host = Host::real();
    match d.stable_id() {
        Some(id) => host.dev(&format!("disk/by-id/{id}")),
        None => host.dev_node(&d.name),
    }
    .display()
    .to_string()
}

fn member(role: u32, d: &Disk) -> Member {
    Member {
        role,
        name: d.name.clone(),
        lun: d.lun,
        serial: d.serial.clone(),
        model: d.model.clone(),
        size_bytes: d.size_bytes,
        path: member_path(d),
        wipe: false,
    }
}

/// Options of a plan that come from the command line, not the profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// `--wipe`: selected disks that only hold data nothing uses may be cleared and used.
    pub wipe: bool,
}

/// Compute the plan. Pure: reads only `profile` and `inv`.
pub fn plan(profile: &Profile, inv: &Inventory) -> Result<Plan, PlanRefusal> {
    plan_with(profile, inv, PlanOptions::default())
}

/// [`plan`] with command-line options.
pub fn plan_with(
    profile: &Profile,
    inv: &Inventory,
    opts: PlanOptions,
) -> Result<Plan, PlanRefusal> {
    // Every disk, classified, in the stable order (LUN, serial, name).
    let mut disks: Vec<&Disk> = inv.disks.iter().collect();
    disks.sort_by(|a, b| select::stable_order(a, b));
    let mut verdicts: Vec<DiskVerdict> = disks
        .iter()
        .map(|d| select::classify(profile, d, opts.wipe))
        .collect();

    if !profile.disks.platform.accepts(inv.platform) {
        return Err(refuse(
            inv,
            vec![RefusalReason::PlatformMismatch {
                profile: profile.disks.platform.to_string(),
                host: inv.platform,
            }],
            verdicts,
        ));
    }

    let sel: Vec<usize> = (0..disks.len())
        .filter(|&i| verdicts[i].selected())
        .collect();
    if sel.is_empty() {
        return Err(refuse(inv, vec![RefusalReason::NoDisks], verdicts));
    }
    let names = |f: &dyn Fn(&DiskState) -> bool| -> Vec<String> {
        sel.iter()
            .filter(|&&i| f(&verdicts[i].state))
            .map(|&i| disks[i].name.clone())
            .collect()
    };
    let busy = names(&|s| *s == DiskState::Busy);
    let blank = names(&|s| *s == DiskState::Blank);
    let wiped = names(&|s| *s == DiskState::Wipe);
    let members = names(&|s| matches!(s, DiskState::Member { .. }));
    let own_fs = names(&|s| *s == DiskState::OwnFilesystem);
    if !busy.is_empty() {
        return Err(refuse(
            inv,
            vec![RefusalReason::Busy { disks: busy }],
            verdicts,
        ));
    }
    let level = profile.array.level;

    let count_ok = |n: usize| match (profile.disks.expected_count, level) {
        (ExpectedCount::Exactly(e), _) => n == e as usize,
        (ExpectedCount::All, Level::Raid0) => n >= 2,
        (ExpectedCount::All, Level::None) => n == 1,
    };
    let expected_text = match (profile.disks.expected_count, level) {
        (ExpectedCount::Exactly(e), _) => e.to_string(),
        (ExpectedCount::All, Level::Raid0) => "at least 2 (raid0)".to_string(),
        (ExpectedCount::All, Level::None) => "1".to_string(),
    };
    let count_refusal = |n: usize| RefusalReason::CountMismatch {
        expected: expected_text.clone(),
        selected: n,
    };

    // --- the decision table (see the module docs)
    let decision;
    let chosen: Vec<(u32, usize)>; // (role, index into disks)
    let mut warnings = Vec::new();
    if blank.len() + wiped.len() == sel.len() {
        if !count_ok(sel.len()) {
            return Err(refuse(inv, vec![count_refusal(sel.len())], verdicts));
        }
        if !wiped.is_empty() {
            warnings.push(format!(
                "--wipe: {} will be cleared (the data on it is lost)",
                wiped.join(", ")
            ));
        }
        decision = DisksDecision::Create;
        chosen = sel
            .iter()
            .enumerate()
            .map(|(r, &i)| (r as u32, i))
            .collect();
    } else if members.len() == sel.len() {
        match adopt_array(profile, inv, &disks, &sel, &mut verdicts) {
            Ok((d, c, w)) => {
                if !count_ok(c.len()) {
                    return Err(refuse(inv, vec![count_refusal(c.len())], verdicts));
                }
                decision = d;
                chosen = c;
                warnings = w;
            }
            Err(reasons) => return Err(refuse(inv, reasons, verdicts)),
        }
    } else if level == Level::None && own_fs.len() == sel.len() {
        if !count_ok(sel.len()) {
            return Err(refuse(inv, vec![count_refusal(sel.len())], verdicts));
        }
        decision = DisksDecision::AdoptFilesystem;
        chosen = vec![(0, sel[0])];
    } else {
        // Say what each non-blank disk carries, so the listing explains the mix.
        for &i in &sel {
            if let Some(m) = &disks[i].md {
                verdicts[i]
                    .reasons
                    .push(DiskReason::Plan(PlanDiskReason::NotBlank {
                        content: vec![format!(
                            "md superblock of array {} ({:?}), role {} of {}",
                            m.array_uuid,
                            m.name,
                            m.role
                                .map(|r| r.to_string())
                                .unwrap_or_else(|| "spare".into()),
                            m.raid_disks
                        )],
                    }));
            }
        }
        return Err(refuse(
            inv,
            vec![RefusalReason::Mixed {
                blank,
                members,
                other: own_fs,
            }],
            verdicts,
        ));
    }

    let member_list: Vec<Member> = chosen
        .iter()
        .map(|&(r, i)| Member {
            wipe: verdicts[i].state == DiskState::Wipe,
            ..member(r, disks[i])
        })
        .collect();
    let n = member_list.len() as u32;

    // --- array geometry
    let adopting = decision != DisksDecision::Create;
    let array = match level {
        Level::None => None,
        Level::Raid0 => {
            // Adopting keeps the array's own chunk (the superblocks are the truth).
            let chunk_bytes = match (&decision, disks[chosen[0].1].md.as_ref()) {
                (DisksDecision::AdoptArray { .. }, Some(m)) => {
                    u64::from(m.chunk_sectors) * geometry::SECTOR
                }
                _ => profile.array.chunk().bytes(),
            };
            // Adopting keeps the array's own name too: the boot unit assembles it by that name.
            let name = match &decision {
                DisksDecision::AdoptArray { array_name, .. } => array_name
                    .rsplit(':')
                    .next()
                    .unwrap_or(array_name)
                    .to_string(),
                _ => profile.array.name.clone(),
            };
            let chunk_sectors = chunk_bytes / geometry::SECTOR;
            let sectors: Vec<u64> = member_list
                .iter()
                .map(|m| m.size_bytes / geometry::SECTOR)
                .collect();
            let (data_offset, usable, multizone) = if adopting {
                (None, None, false)
            } else {
                let off = geometry::default_data_offset(sectors[0], chunk_sectors);
                let mut sizes = Vec::new();
                for (m, s) in member_list.iter().zip(&sectors) {
                    match geometry::data_size(*s, off).filter(|d| *d >= chunk_sectors) {
                        Some(d) => sizes.push(d),
                        None => {
                            return Err(refuse(
                                inv,
                                vec![RefusalReason::TooSmallForArray {
                                    disk: m.name.clone(),
                                    size_bytes: m.size_bytes,
                                }],
                                verdicts,
                            ))
                        }
                    }
                }
                (
                    Some(off),
                    Some(geometry::raid0_array_sectors(&sizes, chunk_sectors) * geometry::SECTOR),
                    geometry::is_multizone(&sizes, chunk_sectors),
                )
            };
            if multizone {
                warnings.push(
                    "members differ in size: the array has several zones; dbhost records the RAID0 layout in the superblocks".to_string(),
                );
            }
            Some(ArrayPlan {
                level,
                chunk_bytes,
                device: Host::real()
                    .dev(&format!("md/{name}"))
                    .display()
                    .to_string(),
                name,
                metadata: METADATA.to_string(),
                members: n,
                data_offset_sectors: data_offset,
                usable_bytes: usable,
                multizone,
            })
        }
    };

    let device = match &array {
        Some(a) => a.device.clone(),
        None => member_list[0].path.clone(),
    };
    if !adopting {
        // Refuse here what mkfs would refuse halfway through apply.
        let size_bytes = match &array {
            Some(a) => a.usable_bytes.unwrap_or(u64::MAX),
            None => member_list[0].size_bytes,
        };
        let fs = profile.filesystem.fs_type;
        if let Some(min_bytes) =
            min_filesystem_bytes(fs, array.is_some()).filter(|m| size_bytes < *m)
        {
            return Err(refuse(
                inv,
                vec![RefusalReason::TooSmallForFilesystem {
                    fs,
                    device,
                    size_bytes,
                    min_bytes,
                }],
                verdicts,
            ));
        }
    }
    let filesystem = render::fs_plan(profile, array.as_ref(), &device, adopting);
    let mount = render::mount_plan(profile);
    let database = profile.database.datadir().map(|sub| DatabasePlan {
        engine: profile.database.engine,
        datadir_subdir: sub.to_string(),
        target: format!("{}/{sub}", profile.filesystem.mount_point),
        keep_old_datadir: profile.database.keep_old_datadir,
        retention: profile.database.retention.map(|r| r.to_string()),
        method: profile.database.method,
    });
    let tuning = TuningPlan {
        enabled: profile.tuning.enabled,
        overrides: profile
            .tuning
            .overrides
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect(),
        disk_mbps: profile.tuning.disk_mbps,
        disk_iops: profile.tuning.disk_iops,
    };
    Ok(Plan {
        schema: PLAN_SCHEMA,
        description: profile.description.clone(),
        platform: inv.platform,
        decision,
        members: member_list,
        disks: verdicts,
        array,
        filesystem,
        mount,
        database,
        tuning,
        warnings,
    })
}

type Adopted = (DisksDecision, Vec<(u32, usize)>, Vec<String>);

/// All selected disks carry md superblocks: adopt if they are exactly one complete, consistent
/// raid0 array; otherwise the reasons (and per-disk reasons added to `verdicts`).
fn adopt_array(
    profile: &Profile,
    inv: &Inventory,
    disks: &[&Disk],
    sel: &[usize],
    verdicts: &mut [DiskVerdict],
) -> Result<Adopted, Vec<RefusalReason>> {
    if profile.array.level == Level::None {
        return Err(vec![RefusalReason::Busy {
            disks: sel.iter().map(|&i| disks[i].name.clone()).collect(),
        }]);
    }
    let mut uuids: Vec<String> = sel
        .iter()
        .filter_map(|&i| disks[i].md.as_ref().map(|m| m.array_uuid.clone()))
        .collect();
    uuids.sort();
    uuids.dedup();
    if uuids.len() != 1 {
        for &i in sel {
            if let Some(m) = &disks[i].md {
                verdicts[i]
                    .reasons
                    .push(DiskReason::Plan(PlanDiskReason::OtherArray {
                        array_uuid: m.array_uuid.clone(),
                    }));
            }
        }
        return Err(vec![RefusalReason::SeveralArrays { array_uuids: uuids }]);
    }
    let uuid = uuids.remove(0);
    let mds: Vec<_> = sel
        .iter()
        .filter_map(|&i| disks[i].md.as_ref().map(|m| (i, m)))
        .collect();
    let first = mds[0].1;
    let mut problems = Vec::new();
    if first.level != 0 {
        problems.push(RefusalReason::ArrayMismatch {
            array_uuid: uuid.clone(),
            detail: format!(
                "it is level {} (raid{}), the profile wants raid0",
                first.level, first.level
            ),
        });
    }
    for (_, m) in &mds {
        let differs = |what: &str, a: String, b: String| {
            (a != b).then(|| format!("members disagree on {what} ({a} vs {b})"))
        };
        for d in [
            differs("level", first.level.to_string(), m.level.to_string()),
            differs(
                "raid_disks",
                first.raid_disks.to_string(),
                m.raid_disks.to_string(),
            ),
            differs(
                "chunk",
                first.chunk_sectors.to_string(),
                m.chunk_sectors.to_string(),
            ),
            differs("events", first.events.to_string(), m.events.to_string()),
        ]
        .into_iter()
        .flatten()
        {
            let r = RefusalReason::ArrayMismatch {
                array_uuid: uuid.clone(),
                detail: d,
            };
            if !problems.contains(&r) {
                problems.push(r);
            }
        }
    }
    // Roles 0..n-1, each exactly once, n == raid_disks.
    let n = first.raid_disks;
    let mut by_role: Vec<Vec<usize>> = vec![Vec::new(); n as usize];
    let mut bad_role = Vec::new();
    for (i, m) in &mds {
        match m.role {
            Some(r) if r < n => by_role[r as usize].push(*i),
            other => bad_role.push((*i, other)),
        }
    }
    let missing: Vec<u32> = (0..n).filter(|r| by_role[*r as usize].is_empty()).collect();
    let dup: Vec<u32> = (0..n).filter(|r| by_role[*r as usize].len() > 1).collect();
    if !missing.is_empty() || !dup.is_empty() || !bad_role.is_empty() {
        let mut parts = Vec::new();
        let present: Vec<String> = (0..n)
            .filter(|r| !by_role[*r as usize].is_empty())
            .map(|r| r.to_string())
            .collect();
        parts.push(format!(
            "{} of {n} roles present ({})",
            n as usize - missing.len(),
            if present.is_empty() {
                "none".into()
            } else {
                present.join(", ")
            }
        ));
        if !missing.is_empty() {
            parts.push(format!(
                "missing role(s) {}",
                missing
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !dup.is_empty() {
            parts.push(format!(
                "role(s) {} claimed by more than one disk",
                dup.iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (i, role) in &bad_role {
            parts.push(format!(
                "{} has {}",
                disks[*i].name,
                match role {
                    Some(r) => format!("role {r} beyond raid_disks {n}"),
                    None => "no active role (spare or faulty)".to_string(),
                }
            ));
        }
        let detail = parts.join("; ");
        for (i, _) in &mds {
            verdicts[*i]
                .reasons
                .push(DiskReason::Plan(PlanDiskReason::IncompleteArray {
                    array_uuid: uuid.clone(),
                    detail: detail.clone(),
                }));
        }
        problems.push(RefusalReason::IncompleteArray {
            array_uuid: uuid.clone(),
            detail,
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let chosen: Vec<(u32, usize)> = by_role
        .iter()
        .enumerate()
        .map(|(r, v)| (r as u32, v[0]))
        .collect();
    let mut warnings = Vec::new();
    let chunk = u64::from(first.chunk_sectors) * geometry::SECTOR;
    if chunk != profile.array.chunk().bytes() {
        warnings.push(format!(
            "the existing array's chunk is {}, the profile says {}; adopting it as it is",
            crate::profile::Size(chunk),
            profile.array.chunk()
        ));
    }
    let stored = first.name.rsplit(':').next().unwrap_or(&first.name);
    if stored != profile.array.name {
        warnings.push(format!(
            "the existing array is named {:?}, the profile says {:?}; adopting it under the profile's name",
            first.name, profile.array.name
        ));
    }
    let running_as = inv
        .arrays
        .iter()
        .find(|a| {
            chosen
                .iter()
                .all(|&(_, i)| a.members.iter().any(|m| *m == disks[i].name))
        })
        .map(|a| a.name.clone());
    Ok((
        DisksDecision::AdoptArray {
            array_uuid: uuid,
            array_name: first.name.clone(),
            running_as,
        },
        chosen,
        warnings,
    ))
}

#[cfg(test)]
mod tests;
