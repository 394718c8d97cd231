//! Database engines: find datadir/unit, relocate (hot pass + delta pass), verify, switch config.
//! Owner: issue 5. See GENERALIZE-DATADIR-TUNING.md part B.
//!
//! * [`copy`]: the relocation copier (pass 1 hot, pass 2 delta, verification, room check).
//! * [`sys`]: xattr syscalls (the only `unsafe` here).

pub mod bench;
pub mod copy;
pub mod engine;
pub mod relocate;
mod sys;
