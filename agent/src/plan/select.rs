//! Disk selection, pure: apply the profile's filters to each detected disk and classify the
//! selected ones (blank / md member / own filesystem / busy). The decision table over these
//! states lives in `plan()` (mod.rs).

use super::{DiskReason, DiskState, DiskVerdict, PlanDiskReason};
use crate::detect::model::{CacheMode, Disk, Refusal};
use crate::profile::units::{format_luns, glob_match};
use crate::profile::{Level, Profile, SelectMode};
use std::cmp::Ordering;

/// The stable member order: by LUN (disks without one last), then serial, then kernel name.
pub fn stable_order(a: &Disk, b: &Disk) -> Ordering {
    (
        a.lun.is_none(),
        a.lun,
        a.serial.is_none(),
        &a.serial,
        &a.name,
    )
        .cmp(&(
            b.lun.is_none(),
            b.lun,
            b.serial.is_none(),
            &b.serial,
            &b.name,
        ))
}

/// The cache mode the profile sees: the detected one, or `assume-cache-mode` when unknown.
pub fn effective_cache_mode(p: &Profile, d: &Disk) -> CacheMode {
    match (d.cache_mode, p.disks.assume_cache_mode) {
        (CacheMode::Unknown, Some(m)) => m,
        (m, _) => m,
    }
}

/// Refusals that say "this is not a data disk at all": never selected, never a reason to refuse
/// the plan.
fn is_role_exclusion(r: &Refusal) -> bool {
    matches!(
        r,
        Refusal::OsDisk
            | Refusal::ResourceDisk
            | Refusal::LocalEphemeral
            | Refusal::NotADisk { .. }
    )
}

/// Refusals that come from a profile (detection may have applied one already): recomputed here.
fn is_profile_filter(r: &Refusal) -> bool {
    matches!(
        r,
        Refusal::CacheModeNotAllowed { .. }
            | Refusal::TooSmall { .. }
            | Refusal::NotSelected { .. }
    )
}

/// The profile's filters for one disk: cache mode, size, LUN / serial / model selection.
pub fn profile_filters(p: &Profile, d: &Disk) -> Vec<Refusal> {
    let mut out = Vec::new();
    let mode = effective_cache_mode(p, d);
    if !p.disks.allowed_cache_modes.contains(&mode) {
        out.push(Refusal::CacheModeNotAllowed { mode });
    }
    let min = p.disks.min_size.bytes();
    if d.size_bytes < min {
        out.push(Refusal::TooSmall {
            size_bytes: d.size_bytes,
            min_bytes: min,
        });
    }
    match p.disks.select_mode() {
        SelectMode::AllCandidates => {}
        SelectMode::Luns => {
            let luns = p.disks.luns.as_deref().unwrap_or(&[]);
            match d.lun {
                None => out.push(Refusal::NotSelected {
                    why: format!(
                        "no LUN known; the profile selects LUNs {}",
                        format_luns(luns)
                    ),
                }),
                Some(l) if !luns.iter().any(|s| s.contains(l)) => out.push(Refusal::NotSelected {
                    why: format!("LUN {l} is not in {}", format_luns(luns)),
                }),
                Some(_) => {}
            }
        }
        SelectMode::Match => {
            for (what, globs, value) in [
                ("serial", &p.disks.serial, &d.serial),
                ("model", &p.disks.model, &d.model),
            ] {
                let Some(globs) = globs else { continue };
                let shown = globs.join(", ");
                match value {
                    None => out.push(Refusal::NotSelected {
                        why: format!("no {what} known; the profile selects {what} {shown}"),
                    }),
                    Some(v) if !globs.iter().any(|g| glob_match(g, v)) => {
                        out.push(Refusal::NotSelected {
                            why: format!("{what} {v:?} matches none of {shown}"),
                        })
                    }
                    Some(_) => {}
                }
            }
        }
    }
    out
}

/// A refusal that an md member legitimately carries: its own superblock, or being held by the
/// md device it is assembled into.
fn member_compatible(r: &Refusal) -> bool {
    match r {
        Refusal::HoldsSignature { kind, .. } => kind.starts_with("md"),
        Refusal::HeldBy { holders } => holders.iter().all(|h| h.starts_with("md")),
        _ => false,
    }
}

/// True when `detail` (detection's signature detail, e.g. `label=dbdata uuid=…`) names `label`.
fn detail_has_label(detail: Option<&str>, label: &str) -> bool {
    detail.is_some_and(|d| {
        d.split([' ', ',', ';'])
            .any(|t| t == format!("label={label}") || t == format!("LABEL={label}"))
    })
}

/// Level none: the disk carries exactly one filesystem of the profile's type, labelled as the
/// profile says or already mounted at its mount point — the profile's own filesystem.
fn own_filesystem(p: &Profile, d: &Disk, blocking: &[Refusal]) -> bool {
    let fs = p.filesystem.fs_type.as_str();
    let [sig] = d.signatures.as_slice() else {
        return false;
    };
    if sig.kind != fs || !d.partitions.is_empty() || d.md.is_some() {
        return false;
    }
    let mounted_here = d.mountpoints.contains(&p.filesystem.mount_point);
    let ok_refusal = |r: &Refusal| match r {
        Refusal::HoldsSignature { kind, .. } => kind == fs,
        Refusal::Mounted { mountpoint } => *mountpoint == p.filesystem.mount_point,
        _ => false,
    };
    blocking.iter().all(ok_refusal)
        && (mounted_here || detail_has_label(sig.detail.as_deref(), &p.filesystem.label))
}

/// Refusals that only say the disk holds data (a signature, unrecognized bytes): what `--wipe`
/// may clear. Anything else (in use, partitions, the OS disk, ...) it never touches.
fn only_holds_data(r: &Refusal) -> bool {
    matches!(
        r,
        Refusal::HoldsSignature { .. } | Refusal::UnrecognizedData { .. }
    )
}

/// Classify one disk for this profile. `wipe`: the user passed `--wipe`, so a selected disk that
/// only holds data nobody uses becomes [`DiskState::Wipe`] instead of [`DiskState::Busy`]; an md
/// member or the profile's own filesystem is still adopted, never wiped.
pub fn classify(p: &Profile, d: &Disk, wipe: bool) -> DiskVerdict {
    let intrinsic: Vec<Refusal> = d
        .refusals
        .iter()
        .filter(|r| !is_profile_filter(r))
        .cloned()
        .collect();
    let mut v = DiskVerdict::new(d, effective_cache_mode(p, d));
    if intrinsic.iter().any(is_role_exclusion) {
        v.state = DiskState::Excluded;
        v.reasons = intrinsic.into_iter().map(DiskReason::Disk).collect();
        return v;
    }
    let filters = profile_filters(p, d);
    if !filters.is_empty() {
        v.state = DiskState::Excluded;
        v.reasons = filters
            .into_iter()
            .chain(intrinsic)
            .map(DiskReason::Disk)
            .collect();
        return v;
    }
    // Selected by the profile: what is on it?
    if intrinsic.is_empty() && d.is_blank() {
        v.state = DiskState::Blank;
        return v;
    }
    if let Some(m) = &d.md {
        // A running member is held by its md array, and detection attributes the array's
        // mount to it as well (found in the roomsy guest on the second apply): both are what
        // an adopted, running array looks like.
        let held_by_md = !d.holders.is_empty() && d.holders.iter().all(|h| h.starts_with("md"));
        if intrinsic
            .iter()
            .all(|r| member_compatible(r) || (held_by_md && matches!(r, Refusal::Mounted { .. })))
        {
            v.state = DiskState::Member {
                array_uuid: m.array_uuid.clone(),
                role: m.role,
            };
            if p.array.level == Level::None {
                v.reasons
                    .push(DiskReason::Plan(PlanDiskReason::MemberButLevelNone {
                        array_uuid: m.array_uuid.clone(),
                    }));
            }
            return v;
        }
    }
    if p.array.level == Level::None && own_filesystem(p, d, &intrinsic) {
        v.state = DiskState::OwnFilesystem;
        return v;
    }
    v.state = if wipe && intrinsic.iter().all(only_holds_data) {
        DiskState::Wipe
    } else {
        DiskState::Busy
    };
    v.reasons = intrinsic.into_iter().map(DiskReason::Disk).collect();
    if v.reasons.is_empty() {
        // Not refused by detection, yet not blank: say what is there.
        let what = d
            .signatures
            .iter()
            .map(|s| format!("{} at byte {}", s.kind, s.offset))
            .chain(
                (!d.partitions.is_empty())
                    .then(|| format!("partitions {}", d.partitions.join(", "))),
            )
            .chain(
                d.nonzero_at
                    .map(|o| format!("unrecognized data (non-zero bytes at offset {o})")),
            )
            .collect::<Vec<_>>();
        v.reasons
            .push(DiskReason::Plan(PlanDiskReason::NotBlank { content: what }));
    }
    v
}
