//! md RAID without mdadm: v1.2 superblocks (pure), ioctls (`sys`), create/assemble/stop (`array`).
//! Owner: issue 4. Facts: `../shared/design/MD.md`.
pub mod array;
pub mod geometry;
pub mod model;
pub mod superblock;
pub mod sys;
