//! Pure decisions for md arrays: names, member classification, the create plan, grouping of
//! found superblocks into arrays, completeness, free device numbers, the wipe set, map lines.
//! No I/O here: everything is a function of facts read by `array.rs` (tested with fakes).

use super::geometry;
use super::superblock::{ArrayUuid, Found, FoundKind, Minor, Raid0Spec, Superblock};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The array name a user gives (`data`); stored on disk as `any:<name>` (MD.md §4.1) so every
/// host treats the array as local and names it `/dev/md/<name>`, whatever its hostname.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ArrayName(String);

impl ArrayName {
    /// 1–27 characters from `[A-Za-z0-9_.-]`, starting with a letter or digit, so that
    /// `any:<name>` fits the 32-byte set_name with a NUL to spare.
    pub fn new(s: &str) -> Result<ArrayName, String> {
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if s.is_empty() || s.len() > 27 || !ok_chars || !first_ok {
            return Err(format!(
                "invalid array name {s:?}: use 1-27 characters from A-Z a-z 0-9 _ . - starting with a letter or digit"
            ));
        }
        Ok(ArrayName(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// What goes into the superblock: `any:<name>`.
    pub fn set_name(&self) -> String {
        format!("any:{}", self.0)
    }
    /// A numeric name N maps to the kernel device mdN (as mdadm does for local arrays).
    pub fn numeric(&self) -> Option<u32> {
        self.0.parse::<u32>().ok().filter(|n| *n < 512)
    }
}

impl fmt::Display for ArrayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `/dev/md/<name>` name for a set_name, following mdadm's local/foreign rule (MD.md §4.1):
/// `any:` or `<this host>:` is stripped; a foreign `host:name` keeps its prefix; '/' and NUL
/// are replaced so the result is one path component.
pub fn stable_name(set_name: &str, hostname: Option<&str>) -> String {
    let local = match set_name.split_once(':') {
        Some(("any", rest)) => rest.to_string(),
        Some((h, rest)) if Some(h) == hostname => rest.to_string(),
        _ => set_name.to_string(),
    };
    let s: String = local
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if s.is_empty() {
        "unnamed".into()
    } else {
        s
    }
}

/// Kernel release "6.1.0-28-amd64" → (6, 1).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether the kernel knows MD_FEATURE_RAID0_LAYOUT (v5.4+, MD.md §1.3). Unknown → assume yes
/// only when the release could not be read at all is NOT assumed: callers pass `None` → false.
pub fn kernel_has_raid0_layout(release: Option<&str>) -> bool {
    release
        .and_then(kernel_version)
        .is_some_and(|v| v >= (5, 4))
}

/// What reading a candidate member told us (filled by `array.rs` from sysfs, /proc and the
/// device content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberFacts {
    /// The path the user gave (kept for messages), e.g. /dev/disk/by-id/scsi-...-lun0.
    pub given: String,
    /// Kernel name: "sdb".
    pub kname: String,
    pub major: u32,
    pub minor: u32,
    pub size_bytes: u64,
    pub logical_block_size: u32,
    pub partitions: Vec<String>,
    pub holders: Vec<String>,
    pub mountpoints: Vec<String>,
    pub swap: bool,
    /// md superblocks found at any location (see `superblock::scan`).
    #[serde(skip)]
    pub found: Vec<Found>,
    /// Description of non-md content in the first/last MiB (`None` = all zero).
    pub head: Option<String>,
    pub tail: Option<String>,
}

impl MemberFacts {
    pub fn sectors(&self) -> u64 {
        self.size_bytes / 512
    }
    /// Valid v1 superblocks on this device.
    pub fn v1(&self) -> Vec<&Superblock> {
        self.found.iter().filter_map(Found::valid_v1).collect()
    }
    /// A short list of what this disk carries, for refusals ("md 1.2 array any:x (uuid) at 4096").
    pub fn contents(&self) -> Vec<String> {
        let mut v: Vec<String> = self.found.iter().map(describe_found).collect();
        if let Some(h) = &self.head {
            v.push(h.clone());
        }
        if let Some(t) = &self.tail {
            v.push(t.clone());
        }
        v
    }
    pub fn is_blank(&self) -> bool {
        self.found.is_empty() && self.head.is_none() && self.tail.is_none()
    }
}

pub fn describe_found(f: &Found) -> String {
    match &f.kind {
        FoundKind::V1 {
            minor,
            decoded: Ok(d),
        } => format!(
            "md {minor} superblock of array {} ({}) at byte {}{}",
            d.sb.name(),
            d.sb.set_uuid,
            f.offset,
            if d.checksum_ok() {
                ""
            } else {
                " (bad checksum)"
            }
        ),
        FoundKind::V1 {
            minor,
            decoded: Err(e),
        } => format!("damaged md {minor} superblock at byte {} ({e})", f.offset),
        FoundKind::V090(i) => format!(
            "md 0.90 superblock of array {} at byte {}",
            i.uuid, f.offset
        ),
    }
}

/// Name a signature at the start of a disk from the first MiB (for messages only; the decision
/// is "all zero or not"). Offsets: MBR 510, GPT 512/4096, LVM2 label 512, LUKS 0, XFS 0,
/// ext 1080, swap 4086, btrfs 65600.
pub fn describe_head(buf: &[u8]) -> Option<String> {
    let first = buf.iter().position(|b| *b != 0)?;
    let at = |o: usize, m: &[u8]| buf.len() >= o + m.len() && &buf[o..o + m.len()] == m;
    let kind = if at(512, b"EFI PART") || at(4096, b"EFI PART") {
        "GPT partition table"
    } else if at(0, b"LUKS\xba\xbe") {
        "LUKS header"
    } else if at(512, b"LABELONE") || at(24, b"LVM2 001") || at(536, b"LVM2 001") {
        "LVM2 physical volume"
    } else if at(0, b"XFSB") {
        "XFS filesystem"
    } else if at(1080, &[0x53, 0xef]) {
        "ext2/3/4 filesystem"
    } else if at(4086, b"SWAPSPACE2") || at(4086, b"SWAP-SPACE") {
        "swap area"
    } else if at(65600, b"_BHRfS_M") {
        "btrfs filesystem"
    } else if at(510, &[0x55, 0xaa]) {
        "MBR/boot sector"
    } else {
        "data"
    };
    Some(format!(
        "{kind} (first non-zero byte at offset {first} of the first MiB)"
    ))
}

/// Describe non-zero content in the last MiB (`tail_start` = its device offset).
pub fn describe_tail(buf: &[u8], tail_start: u64) -> Option<String> {
    let first = buf.iter().position(|b| *b != 0)?;
    let gpt = buf.len() >= 512 && &buf[buf.len() - 512..buf.len() - 504] == b"EFI PART";
    Some(format!(
        "{} (non-zero byte at offset {} in the last MiB)",
        if gpt { "backup GPT header" } else { "data" },
        tail_start + first as u64
    ))
}

/// Byte ranges to zero on a member before writing the new superblock: the first and last MiB
/// (MBR, primary GPT, every filesystem/LVM/LUKS magic at the start, md 1.1 and 1.2, backup GPT,
/// md 1.0 and 0.90 near the end), merged when they overlap.
pub fn wipe_ranges(size_bytes: u64) -> Vec<(u64, u64)> {
    const MIB: u64 = 1 << 20;
    if size_bytes <= 2 * MIB {
        return vec![(0, size_bytes)];
    }
    let mut v = vec![(0, MIB), (size_bytes - MIB, MIB)];
    for (_, off, len) in super::superblock::md_locations(size_bytes) {
        if !v.iter().any(|(o, l)| off >= *o && off + len <= o + l) {
            v.push((off, len));
        }
    }
    v
}

/// What to zero on a new member: [`wipe_ranges`] plus the first MiB of its data area, so the
/// new array starts with zeros (chunk by chunk, the array's first bytes are the members' first
/// data bytes): whatever a cleared disk held there cannot look like a filesystem to the mkfs
/// that follows, also when a re-run after a crash finds the array already made.
pub fn member_wipe_ranges(size_bytes: u64, data_offset_sectors: u64) -> Vec<(u64, u64)> {
    const MIB: u64 = 1 << 20;
    let mut v = wipe_ranges(size_bytes);
    let start = data_offset_sectors * 512;
    let len = MIB.min(size_bytes.saturating_sub(start));
    if len > 0 && !v.iter().any(|(o, l)| start >= *o && start + len <= o + l) {
        v.push((start, len));
    }
    v
}

/// A create request as the CLI or the apply engine states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub name: ArrayName,
    pub chunk_bytes: u64,
    /// Member paths in role order (stable ids preferred: /dev/disk/by-id/...).
    pub members: Vec<String>,
    /// Explicit permission to clear disks that are not blank.
    pub wipe: bool,
}

/// One member of a create plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPlan {
    pub facts: MemberFacts,
    /// Zero these ranges first (always the full wipe set; on a blank disk it is a no-op).
    pub wipe: Vec<(u64, u64)>,
    /// Whether the disk held something (so the user's --wipe was needed).
    pub destroys: Vec<String>,
    pub superblock: Superblock,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePlan {
    pub name: ArrayName,
    pub spec: Raid0Spec,
    pub members: Vec<MemberPlan>,
    pub array_sectors: u64,
    pub multizone: bool,
}

/// What `create` should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateDecision {
    /// The members already are exactly this array (same name, all roles, in this order or any):
    /// assemble it if needed, never rewrite.
    Exists(ArrayGroup),
    Create(CreatePlan),
}

/// Why a create is refused (exit 3) or malformed (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateRefusal {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Refused(String),
}

/// Decide create vs exists vs refuse. Pure: `uuids` supplies the random set UUID and then one
/// device UUID per member; `now` is the creation time in seconds; `kernel_release` is
/// `/proc/sys/kernel/osrelease`.
pub fn plan_create(
    req: &CreateRequest,
    facts: &[MemberFacts],
    kernel_release: Option<&str>,
    uuids: &mut dyn FnMut() -> [u8; 16],
    now: u64,
) -> Result<CreateDecision, CreateRefusal> {
    use CreateRefusal::{Refused, Usage};
    if facts.len() < 2 {
        return Err(Usage(format!(
            "a RAID-0 needs at least 2 members, {} given (use array level \"none\" for one disk)",
            facts.len()
        )));
    }
    if facts.len() > 128 {
        return Err(Usage("at most 128 members are supported".into()));
    }
    let mut seen = BTreeMap::new();
    for f in facts {
        if let Some(prev) = seen.insert((f.major, f.minor), &f.given) {
            return Err(Usage(format!(
                "{} and {} are the same device ({})",
                prev, f.given, f.kname
            )));
        }
    }
    // Idempotency: the members already form exactly the requested array.
    let groups = group_members(facts.iter().map(|f| (f, f.v1())));
    if let Some(g) = groups.iter().find(|g| {
        g.set_name == req.name.set_name()
            && matches!(g.status(), GroupStatus::Complete)
            && g.members.len() == facts.len()
            && facts
                .iter()
                .all(|f| g.members.iter().any(|m| m.kname == f.kname))
    }) {
        return Ok(CreateDecision::Exists(g.clone()));
    }

    let chunk = req.chunk_bytes;
    let max_lbs = facts
        .iter()
        .map(|f| u64::from(f.logical_block_size.max(512)))
        .max()
        .unwrap_or(512);
    if chunk < 4096 || chunk % 1024 != 0 {
        return Err(Usage(format!(
            "chunk {chunk} bytes: must be at least 4 KiB and a multiple of 1 KiB"
        )));
    }
    if chunk % max_lbs != 0 {
        return Err(Usage(format!(
            "chunk {chunk} bytes is not a multiple of the members' logical block size {max_lbs} (the kernel would refuse RUN_ARRAY with EINVAL)"
        )));
    }
    let chunk_sectors = chunk / 512;

    let mut problems = Vec::new();
    for f in facts {
        let mut why = Vec::new();
        if !f.mountpoints.is_empty() {
            why.push(format!("mounted at {}", f.mountpoints.join(", ")));
        }
        if f.swap {
            why.push("in use as swap".into());
        }
        if !f.holders.is_empty() {
            why.push(format!("held by {}", f.holders.join(", ")));
        }
        if !f.partitions.is_empty() {
            why.push(format!(
                "has partitions {} (remove them first; dbhost does not delete partitions)",
                f.partitions.join(", ")
            ));
        }
        if why.is_empty() && !f.is_blank() && !req.wipe {
            why.push(format!(
                "is not blank: {} (pass --wipe to clear it if its data is not needed)",
                f.contents().join("; ")
            ));
        }
        if !why.is_empty() {
            problems.push(format!("{} ({}): {}", f.given, f.kname, why.join("; ")));
        }
    }
    if !problems.is_empty() {
        return Err(Refused(format!(
            "refusing to create array {}:\n  {}",
            req.name,
            problems.join("\n  ")
        )));
    }

    let data_offset = geometry::default_data_offset(facts[0].sectors(), chunk_sectors);
    let mut sizes = Vec::new();
    for f in facts {
        match geometry::data_size(f.sectors(), data_offset) {
            Some(s) if s >= chunk_sectors => sizes.push(s),
            _ => {
                return Err(Refused(format!(
                    "{} ({}) is too small: {} bytes leaves less than one {chunk}-byte chunk after the {}-sector data offset",
                    f.given, f.kname, f.size_bytes, data_offset
                )))
            }
        }
    }
    let multizone = geometry::is_multizone(&sizes, chunk_sectors);
    let feature = kernel_has_raid0_layout(kernel_release);
    if !feature && multizone {
        return Err(Refused(format!(
            "members have different sizes and kernel {} predates RAID0 layout support (5.4): such an array could not be assembled reliably; use disks of equal size",
            kernel_release.unwrap_or("(unknown)")
        )));
    }
    let spec = Raid0Spec {
        set_uuid: ArrayUuid(uuids()),
        set_name: req.name.set_name(),
        ctime: now,
        chunk_sectors: chunk_sectors as u32,
        raid_disks: facts.len() as u32,
        data_offset,
        raid0_layout_feature: feature,
    };
    let members = facts
        .iter()
        .enumerate()
        .map(|(i, f)| MemberPlan {
            facts: f.clone(),
            wipe: member_wipe_ranges(f.size_bytes, data_offset),
            destroys: f.contents(),
            superblock: spec.member(i as u32, f.sectors(), uuids()),
        })
        .collect();
    Ok(CreateDecision::Create(CreatePlan {
        name: req.name.clone(),
        array_sectors: geometry::raid0_array_sectors(&sizes, chunk_sectors),
        spec,
        members,
        multizone,
    }))
}

/// One device in an array group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupMember {
    pub kname: String,
    pub major: u32,
    pub minor: u32,
    pub role: Option<u32>,
    pub events: u64,
    pub dev_number: u32,
}

/// All devices carrying superblocks with one set UUID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArrayGroup {
    pub uuid: ArrayUuid,
    pub set_name: String,
    pub minor_version: u8,
    pub level: i32,
    pub raid_disks: u32,
    pub chunk_sectors: u32,
    pub layout: u32,
    pub feature_map: u32,
    pub members: Vec<GroupMember>,
    /// Field disagreements between members (level/chunk/layout/raid_disks/minor/name).
    pub mismatches: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum GroupStatus {
    Complete,
    Incomplete {
        present: Vec<u32>,
        missing: Vec<u32>,
    },
    Inconsistent {
        why: Vec<String>,
    },
}

impl ArrayGroup {
    pub fn status(&self) -> GroupStatus {
        let mut why = self.mismatches.clone();
        if self.raid_disks == 0 || self.raid_disks > super::superblock::MAX_DEV_LIMIT {
            // Never size anything by an untrusted count.
            why.push(format!("impossible raid_disks {}", self.raid_disks));
            return GroupStatus::Inconsistent { why };
        }
        if self.level != 0 {
            why.push(format!(
                "RAID level {} (dbhost assembles RAID-0 only)",
                self.level
            ));
        }
        let mut by_role: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
        for m in &self.members {
            if let Some(r) = m.role {
                by_role.entry(r).or_default().push(&m.kname);
            }
        }
        for (r, devs) in &by_role {
            if devs.len() > 1 {
                why.push(format!("role {r} claimed by {}", devs.join(" and ")));
            }
            if *r >= self.raid_disks {
                why.push(format!(
                    "role {r} out of range (raid_disks {})",
                    self.raid_disks
                ));
            }
        }
        let max_ev = self.members.iter().map(|m| m.events).max().unwrap_or(0);
        for m in &self.members {
            if m.events + 1 < max_ev {
                why.push(format!(
                    "{} is stale (events {} < {})",
                    m.kname, m.events, max_ev
                ));
            }
        }
        if !why.is_empty() {
            return GroupStatus::Inconsistent { why };
        }
        let present: Vec<u32> = by_role.keys().copied().collect();
        let missing: Vec<u32> = (0..self.raid_disks)
            .filter(|r| !by_role.contains_key(r))
            .collect();
        if missing.is_empty() {
            GroupStatus::Complete
        } else {
            GroupStatus::Incomplete { present, missing }
        }
    }

    /// Members in the order to add them: by role, the freshest (highest events) last.
    pub fn add_order(&self) -> Vec<&GroupMember> {
        let mut v: Vec<&GroupMember> = self.members.iter().filter(|m| m.role.is_some()).collect();
        v.sort_by_key(|m| (m.role, m.events));
        if let Some(pos) = v
            .iter()
            .enumerate()
            .max_by_key(|(i, m)| (m.events, std::cmp::Reverse(*i)))
            .map(|(i, _)| i)
        {
            let fresh = v.remove(pos);
            v.push(fresh);
        }
        v
    }

    pub fn kernel_names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.kname.clone()).collect()
    }
}

/// Anything that looks like a device with facts and superblocks (for grouping).
pub trait DeviceLike {
    fn kname(&self) -> &str;
    fn devnum(&self) -> (u32, u32);
}
impl DeviceLike for MemberFacts {
    fn kname(&self) -> &str {
        &self.kname
    }
    fn devnum(&self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

/// Group devices by the set UUID of their valid v1 superblocks.
pub fn group_members<'a, D: DeviceLike + 'a>(
    devs: impl IntoIterator<Item = (&'a D, Vec<&'a Superblock>)>,
) -> Vec<ArrayGroup> {
    let mut groups: BTreeMap<ArrayUuid, ArrayGroup> = BTreeMap::new();
    for (d, sbs) in devs {
        for sb in sbs {
            let minor_version = match sb.super_offset {
                0 => Minor::V1_1.number(),
                8 => Minor::V1_2.number(),
                _ => Minor::V1_0.number(),
            };
            let g = groups.entry(sb.set_uuid).or_insert_with(|| ArrayGroup {
                uuid: sb.set_uuid,
                set_name: sb.name(),
                minor_version,
                level: sb.level,
                raid_disks: sb.raid_disks,
                chunk_sectors: sb.chunksize,
                layout: sb.layout,
                feature_map: sb.feature_map,
                members: Vec::new(),
                mismatches: Vec::new(),
            });
            let mut mism = Vec::new();
            let k = d.kname();
            if sb.level != g.level {
                mism.push(format!("{k}: level {} vs {}", sb.level, g.level));
            }
            if sb.raid_disks != g.raid_disks {
                mism.push(format!(
                    "{k}: raid_disks {} vs {}",
                    sb.raid_disks, g.raid_disks
                ));
            }
            if sb.chunksize != g.chunk_sectors {
                mism.push(format!(
                    "{k}: chunk {} vs {} sectors",
                    sb.chunksize, g.chunk_sectors
                ));
            }
            if sb.layout != g.layout {
                mism.push(format!("{k}: layout {} vs {}", sb.layout, g.layout));
            }
            if sb.feature_map != g.feature_map {
                mism.push(format!(
                    "{k}: feature map {:#x} vs {:#x}",
                    sb.feature_map, g.feature_map
                ));
            }
            if minor_version != g.minor_version {
                mism.push(format!(
                    "{k}: metadata 1.{} vs 1.{}",
                    minor_version, g.minor_version
                ));
            }
            if sb.name() != g.set_name {
                mism.push(format!("{k}: name {:?} vs {:?}", sb.name(), g.set_name));
            }
            g.mismatches.extend(mism);
            let (major, minor) = d.devnum();
            g.members.push(GroupMember {
                kname: k.to_string(),
                major,
                minor,
                role: sb.role(),
                events: sb.events,
                dev_number: sb.dev_number,
            });
        }
    }
    groups.into_values().collect()
}

/// Groups that are not complete but every device of which also belongs to a complete group:
/// leftovers of an older array (stale superblocks at another location), to be ignored.
pub fn stale_groups(groups: &[ArrayGroup]) -> BTreeSet<ArrayUuid> {
    let complete_devs: BTreeSet<&str> = groups
        .iter()
        .filter(|g| g.status() == GroupStatus::Complete)
        .flat_map(|g| g.members.iter().map(|m| m.kname.as_str()))
        .collect();
    groups
        .iter()
        .filter(|g| g.status() != GroupStatus::Complete)
        .filter(|g| {
            g.members
                .iter()
                .all(|m| complete_devs.contains(m.kname.as_str()))
        })
        .map(|g| g.uuid)
        .collect()
}

/// mdadm picks free md numbers from 127 down to 0, then 511 down to 128 (MD.md §2.3).
pub fn pick_free_md(taken: &BTreeSet<u32>) -> Option<u32> {
    (0..=127u32)
        .rev()
        .chain((128..=511u32).rev())
        .find(|n| !taken.contains(n))
}

/// A line of mdadm's `/run/mdadm/map`: `mdN 1.2 <host-endian uuid words> /dev/md/NAME`.
pub fn map_line(devnm: &str, minor_version: u8, uuid: &ArrayUuid, link: &str) -> String {
    format!("{devnm} 1.{minor_version} {} {link}\n", uuid.map_words())
}

/// Replace (or add) the line for `devnm` in a map file's text.
pub fn map_update(text: &str, devnm: &str, line: Option<&str>) -> String {
    let mut out: String = text
        .lines()
        .filter(|l| l.split_whitespace().next() != Some(devnm))
        .map(|l| format!("{l}\n"))
        .collect();
    if let Some(l) = line {
        out.push_str(l);
    }
    out
}

/// Parse a human size: "512K", "1M", "65536", "90s"-style durations are elsewhere.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let up = s.trim().to_ascii_uppercase();
    let t = up
        .strip_suffix("IB")
        .or_else(|| up.strip_suffix('B'))
        .unwrap_or(&up);
    let (num, mult) = match t.chars().last() {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("invalid size {s:?} (examples: 512K, 1M, 65536)"))
}

/// Parse a duration: "90s", "2m", "500ms", "30" (seconds).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    let t = s.trim();
    let bad = || format!("invalid duration {s:?} (examples: 90s, 2m, 500ms)");
    if let Some(n) = t.strip_suffix("ms") {
        return n.parse().map(Duration::from_millis).map_err(|_| bad());
    }
    if let Some(n) = t.strip_suffix('s') {
        return n.parse().map(Duration::from_secs).map_err(|_| bad());
    }
    if let Some(n) = t.strip_suffix('m') {
        return n
            .parse::<u64>()
            .map(|m| Duration::from_secs(m * 60))
            .map_err(|_| bad());
    }
    t.parse().map(Duration::from_secs).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::md::superblock::{decode, FoundKind};

    fn facts(kname: &str, minor: u32, size: u64) -> MemberFacts {
        MemberFacts {
            given: format!("/dev/disk/by-id/x-{kname}"),
            kname: kname.into(),
            major: 8,
            minor,
            size_bytes: size,
            logical_block_size: 512,
            partitions: vec![],
            holders: vec![],
            mountpoints: vec![],
            swap: false,
            found: vec![],
            head: None,
            tail: None,
        }
    }

    fn with_sb(mut f: MemberFacts, sb: &Superblock) -> MemberFacts {
        let d = decode(&sb.encode()).unwrap().unwrap();
        f.found.push(Found {
            offset: sb.super_offset * 512,
            kind: FoundKind::V1 {
                minor: Minor::V1_2,
                decoded: Ok(d),
            },
        });
        f
    }

    fn req(wipe: bool) -> CreateRequest {
        CreateRequest {
            name: ArrayName::new("data").unwrap(),
            chunk_bytes: 512 * 1024,
            members: vec![],
            wipe,
        }
    }

    fn counter() -> impl FnMut() -> [u8; 16] {
        let mut n = 0u8;
        move || {
            n += 1;
            [n; 16]
        }
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn names() {
        assert!(ArrayName::new("data").is_ok());
        assert!(ArrayName::new("").is_err());
        assert!(ArrayName::new("a/b").is_err());
        assert!(ArrayName::new("-x").is_err());
        assert!(ArrayName::new(&"x".repeat(28)).is_err());
        assert_eq!(ArrayName::new("data").unwrap().set_name(), "any:data");
        assert_eq!(ArrayName::new("0").unwrap().numeric(), Some(0));
        assert_eq!(stable_name("any:data", Some("h")), "data");
        assert_eq!(stable_name("h:data", Some("h")), "data");
        assert_eq!(stable_name("other:data", Some("h")), "other:data");
        assert_eq!(stable_name("a/b", None), "a_b");
        assert_eq!(stable_name("", None), "unnamed");
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.1.0-28-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("5.4"), Some((5, 4)));
        assert!(kernel_has_raid0_layout(Some("5.4.0-1")));
        assert!(!kernel_has_raid0_layout(Some("4.19.0")));
        assert!(!kernel_has_raid0_layout(None));
    }

    #[test]
    fn create_plan_two_blank_disks() {
        let f = vec![facts("sdb", 16, 256 << 20), facts("sdc", 32, 256 << 20)];
        let d = plan_create(&req(false), &f, Some("6.1.0"), &mut counter(), 1000).unwrap();
        let CreateDecision::Create(p) = d else {
            panic!("{d:?}")
        };
        assert_eq!(p.spec.data_offset, 4096);
        assert_eq!(p.spec.set_uuid, ArrayUuid([1; 16]));
        assert_eq!(p.spec.set_name, "any:data");
        assert!(p.spec.raid0_layout_feature);
        assert_eq!(p.array_sectors, 1_040_384);
        assert_eq!(p.members[1].superblock.dev_number, 1);
        assert_eq!(p.members[1].superblock.device_uuid, [3; 16]);
        assert_eq!(p.members[0].superblock.data_size, 520_192);
        assert!(p.members.iter().all(|m| m.destroys.is_empty()));
    }

    #[test]
    fn create_refuses_bad_input() {
        let one = vec![facts("sdb", 16, GIB)];
        assert!(matches!(
            plan_create(&req(false), &one, Some("6.1"), &mut counter(), 0),
            Err(CreateRefusal::Usage(_))
        ));
        let dup = vec![facts("sdb", 16, GIB), facts("sdb", 16, GIB)];
        assert!(matches!(
            plan_create(&req(false), &dup, Some("6.1"), &mut counter(), 0),
            Err(CreateRefusal::Usage(m)) if m.contains("same device")
        ));
        let mut r = req(false);
        r.chunk_bytes = 2048;
        let two = vec![facts("sdb", 16, GIB), facts("sdc", 32, GIB)];
        assert!(plan_create(&r, &two, Some("6.1"), &mut counter(), 0).is_err());
        // 4Kn members: 6 KiB chunk is not a multiple of 4096.
        let mut k4 = two.clone();
        k4[1].logical_block_size = 4096;
        r.chunk_bytes = 6144;
        match plan_create(&r, &k4, Some("6.1"), &mut counter(), 0) {
            Err(CreateRefusal::Usage(m)) => assert!(m.contains("logical block size 4096"), "{m}"),
            o => panic!("{o:?}"),
        }
        r.chunk_bytes = 8192;
        assert!(plan_create(&r, &k4, Some("6.1"), &mut counter(), 0).is_ok());
    }

    #[test]
    fn create_refuses_in_use_and_non_blank_unless_wipe() {
        let mut a = facts("sdb", 16, GIB);
        a.mountpoints.push("/mnt".into());
        let b = facts("sdc", 32, GIB);
        match plan_create(&req(true), &[a, b.clone()], Some("6.1"), &mut counter(), 0) {
            Err(CreateRefusal::Refused(m)) => assert!(m.contains("mounted at /mnt"), "{m}"),
            o => panic!("{o:?}"),
        }
        let mut c = facts("sdd", 48, GIB);
        c.head = Some("XFS filesystem (first non-zero byte at offset 0 of the first MiB)".into());
        match plan_create(
            &req(false),
            &[b.clone(), c.clone()],
            Some("6.1"),
            &mut counter(),
            0,
        ) {
            Err(CreateRefusal::Refused(m)) => {
                assert!(
                    m.contains("sdd") && m.contains("XFS") && m.contains("--wipe"),
                    "{m}"
                )
            }
            o => panic!("{o:?}"),
        }
        let CreateDecision::Create(p) =
            plan_create(&req(true), &[b, c], Some("6.1"), &mut counter(), 0).unwrap()
        else {
            panic!()
        };
        assert!(p.members[1].destroys[0].contains("XFS"));
        assert_eq!(p.members[1].wipe[0], (0, 1 << 20));
        // The first MiB of every member's data area is zeroed too: the new array starts with
        // zeros, whatever the cleared disk held there.
        let start = p.spec.data_offset * 512;
        for m in &p.members {
            assert!(m.wipe.contains(&(start, 1 << 20)), "{:?}", m.wipe);
        }
    }

    #[test]
    fn stale_other_array_needs_wipe_same_array_is_exists() {
        let spec = crate::md::superblock::Raid0Spec {
            set_uuid: ArrayUuid([7; 16]),
            set_name: "any:data".into(),
            ctime: 1,
            chunk_sectors: 1024,
            raid_disks: 2,
            data_offset: 4096,
            raid0_layout_feature: true,
        };
        let s = GIB / 512;
        let a = with_sb(facts("sdb", 16, GIB), &spec.member(0, s, [1; 16]));
        let b = with_sb(facts("sdc", 32, GIB), &spec.member(1, s, [2; 16]));
        // Same name, complete: exists (even with --wipe: never destroy the requested array).
        for wipe in [false, true] {
            match plan_create(
                &req(wipe),
                &[b.clone(), a.clone()],
                Some("6.1"),
                &mut counter(),
                0,
            )
            .unwrap()
            {
                CreateDecision::Exists(g) => assert_eq!(g.uuid, ArrayUuid([7; 16])),
                o => panic!("{o:?}"),
            }
        }
        // Another array's member: refused without --wipe.
        let mut other = req(false);
        other.name = ArrayName::new("db2").unwrap();
        match plan_create(
            &other,
            &[a.clone(), facts("sdd", 48, GIB)],
            Some("6.1"),
            &mut counter(),
            0,
        ) {
            Err(CreateRefusal::Refused(m)) => {
                assert!(m.contains("md 1.2 superblock of array any:data"), "{m}")
            }
            o => panic!("{o:?}"),
        }
        other.wipe = true;
        assert!(matches!(
            plan_create(
                &other,
                &[a, facts("sdd", 48, GIB)],
                Some("6.1"),
                &mut counter(),
                0
            ),
            Ok(CreateDecision::Create(_))
        ));
    }

    #[test]
    fn unequal_sizes_need_layout_kernel() {
        let f = vec![facts("sdb", 16, GIB), facts("sdc", 32, 2 * GIB)];
        let CreateDecision::Create(p) =
            plan_create(&req(false), &f, Some("6.1.0"), &mut counter(), 0).unwrap()
        else {
            panic!()
        };
        assert!(p.multizone && p.spec.raid0_layout_feature);
        assert!(matches!(
            plan_create(&req(false), &f, Some("4.19.0"), &mut counter(), 0),
            Err(CreateRefusal::Refused(_))
        ));
        let eq = vec![facts("sdb", 16, GIB), facts("sdc", 32, GIB)];
        let CreateDecision::Create(p) =
            plan_create(&req(false), &eq, Some("4.19.0"), &mut counter(), 0).unwrap()
        else {
            panic!()
        };
        assert!(!p.spec.raid0_layout_feature);
        assert_eq!(p.members[0].superblock.feature_map, 0);
    }

    fn group_of(members: &[(&str, u32, u32)], raid_disks: u32) -> Vec<ArrayGroup> {
        let spec = crate::md::superblock::Raid0Spec {
            set_uuid: ArrayUuid([5; 16]),
            set_name: "any:data".into(),
            ctime: 1,
            chunk_sectors: 1024,
            raid_disks,
            data_offset: 4096,
            raid0_layout_feature: true,
        };
        let f: Vec<MemberFacts> = members
            .iter()
            .map(|(k, minor, role)| {
                with_sb(
                    facts(k, *minor, GIB),
                    &spec.member(*role, GIB / 512, [0; 16]),
                )
            })
            .collect();
        group_members(f.iter().map(|x| (x, x.v1())))
    }

    #[test]
    fn grouping_and_completeness() {
        let g = group_of(&[("sdc", 32, 1), ("sdb", 16, 0)], 2);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].status(), GroupStatus::Complete);
        let order: Vec<_> = g[0].add_order().iter().map(|m| m.role).collect();
        assert_eq!(order.len(), 2);
        let g = group_of(&[("sdb", 16, 0)], 2);
        assert_eq!(
            g[0].status(),
            GroupStatus::Incomplete {
                present: vec![0],
                missing: vec![1]
            }
        );
        let g = group_of(&[("sdb", 16, 0), ("sdc", 32, 0)], 2);
        assert!(
            matches!(g[0].status(), GroupStatus::Inconsistent { why } if why[0].contains("role 0 claimed by sdb and sdc"))
        );
    }

    #[test]
    fn hostile_raid_disks_is_inconsistent() {
        let mut g = group_of(&[("sdb", 16, 0)], 2);
        g[0].raid_disks = u32::MAX;
        assert!(
            matches!(g[0].status(), GroupStatus::Inconsistent { why } if why[0].contains("impossible"))
        );
    }

    #[test]
    fn grouping_detects_mismatch_and_stale_groups() {
        let s = GIB / 512;
        let mut spec = crate::md::superblock::Raid0Spec {
            set_uuid: ArrayUuid([5; 16]),
            set_name: "any:data".into(),
            ctime: 1,
            chunk_sectors: 1024,
            raid_disks: 2,
            data_offset: 4096,
            raid0_layout_feature: true,
        };
        let a = with_sb(facts("sdb", 16, GIB), &spec.member(0, s, [0; 16]));
        spec.chunk_sectors = 128;
        let b = with_sb(facts("sdc", 32, GIB), &spec.member(1, s, [0; 16]));
        let g = group_members([&a, &b].into_iter().map(|x| (x, x.v1())));
        assert!(
            matches!(g[0].status(), GroupStatus::Inconsistent { why } if why[0].contains("chunk"))
        );
        // sdb also carries an old array's 1.0 superblock: that group is stale, not a refusal.
        spec.chunk_sectors = 1024;
        let b = with_sb(facts("sdc", 32, GIB), &spec.member(1, s, [0; 16]));
        let mut old = spec.clone();
        old.set_uuid = ArrayUuid([6; 16]);
        let a2 = with_sb(a.clone(), &old.member(0, s, [0; 16]));
        let g = group_members([&a2, &b].into_iter().map(|x| (x, x.v1())));
        assert_eq!(g.len(), 2);
        let stale = stale_groups(&g);
        assert_eq!(
            stale.into_iter().collect::<Vec<_>>(),
            vec![ArrayUuid([6; 16])]
        );
    }

    #[test]
    fn free_md_numbers_and_map() {
        let mut t = BTreeSet::new();
        assert_eq!(pick_free_md(&t), Some(127));
        t.insert(127);
        t.insert(126);
        assert_eq!(pick_free_md(&t), Some(125));
        let all: BTreeSet<u32> = (0..128).collect();
        assert_eq!(pick_free_md(&all), Some(511));
        let u = ArrayUuid([
            0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55,
            0x55, 0x55,
        ]);
        let l = map_line("md127", 2, &u, "/dev/md/data");
        assert_eq!(
            l,
            "md127 1.2 11111111:33332222:55554444:55555555 /dev/md/data\n"
        );
        let text = "md126 1.2 a:b:c:d /dev/md/x\nmd127 1.2 old /dev/md/old\n";
        assert_eq!(
            map_update(text, "md127", Some(&l)),
            format!("md126 1.2 a:b:c:d /dev/md/x\n{l}")
        );
        assert_eq!(
            map_update(text, "md126", None),
            "md127 1.2 old /dev/md/old\n"
        );
    }

    #[test]
    fn wipe_set_covers_every_md_location_and_gpt() {
        for size in [3u64 << 20, GIB, 10 * GIB + 4096 * 3] {
            let w = wipe_ranges(size);
            let covered = |o: u64, l: u64| w.iter().any(|(a, n)| o >= *a && o + l <= a + n);
            for (_, o, l) in crate::md::superblock::md_locations(size) {
                assert!(covered(o, l), "size {size} loc {o}");
            }
            assert!(covered(0, 34 * 512)); // MBR + primary GPT
            assert!(covered(size - 33 * 512, 33 * 512)); // backup GPT
            assert!(covered(65536, 4096)); // btrfs
        }
        assert_eq!(wipe_ranges(1 << 20), vec![(0, 1 << 20)]);
    }

    #[test]
    fn head_descriptions() {
        let mut b = vec![0u8; 1 << 20];
        assert_eq!(describe_head(&b), None);
        b[0..4].copy_from_slice(b"XFSB");
        assert!(describe_head(&b).unwrap().starts_with("XFS"));
        let mut b = vec![0u8; 1 << 20];
        b[1080] = 0x53;
        b[1081] = 0xef;
        assert!(describe_head(&b).unwrap().starts_with("ext"));
        let mut t = vec![0u8; 1 << 20];
        let n = t.len();
        t[n - 512..n - 504].copy_from_slice(b"EFI PART");
        assert!(describe_tail(&t, 0).unwrap().starts_with("backup GPT"));
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("512K").unwrap(), 524_288);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("x").is_err());
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert!(parse_duration("soon").is_err());
    }
}
