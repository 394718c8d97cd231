//! md RAID without mdadm. Owner: issue 4. Facts: `../shared/design/MD.md`.
//!
//! - [`superblock`]: v1.x superblock encode/decode/checksum over byte buffers (pure).
//! - [`geometry`]: mdadm-compatible data offset and RAID0 sizing (pure).
//! - [`model`]: names, create plan, grouping/completeness, wipe set, map lines (pure).
//! - [`sys`]: the md/block ioctls — the only unsafe code here.
//! - [`array`]: create / assemble / stop / examine (thin side effects through `Host`).
//! - [`boot`]: the boot-time assembly unit.
pub mod array;
pub mod boot;
pub mod geometry;
pub mod model;
pub mod superblock;
pub mod sys;

pub use array::{
    assemble_all, assemble_group, content_size_of, create, examine, stop, ArrayRef,
    AssembleOptions, AssembleReport, Outcome,
};
pub use boot::{install_boot_unit, BootUnitOptions};
pub use model::{ArrayName, CreateRequest};
