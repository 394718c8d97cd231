//! Database side of issue 5: find the datadir and unit, relocate it with minimal downtime
//! (hot pass + delta pass), verify, switch configuration, roll back.
//! Facts: GENERALIZE-DATADIR-TUNING.md part B.
//!
//! Public API (the apply engine, `status` and `rollback` call these):
//!
//! * [`copy`] — the relocation copier, usable on its own:
//!   [`copy::check_room`] (typed [`copy::NoRoom`] refusal before any write),
//!   [`copy::pass1`] (DB running; hashes while copying; checkpoints a [`copy::Manifest`]),
//!   [`copy::verify_pass1`] (re-read target, DB running), [`copy::pass2`] (DB stopped; delta +
//!   deletions), [`copy::verify_delta`] (hash only the delta + metadata of every entry),
//!   [`copy::verify_full`] / [`copy::check_metadata`] (paranoid / cheap tree comparisons).
//!   Progress comes through `&mut dyn FnMut(copy::Progress)` (phase, bytes done, total).
//! * [`engine`] — [`engine::discover`] (datadir from runtime or my.cnf / postgresql.conf, unit,
//!   drop-in dir), [`engine::render_switch`] (every file the switch writes, full content),
//!   [`engine::placeholder_dirs`], [`engine::reload_commands`], [`engine::stop`] /
//!   [`engine::start`] / [`engine::health`] with a bounded [`engine::Wait`].
//! * [`relocate`] — the steps ([`relocate::STEPS`]): [`relocate::observe`] →
//!   `Done/Todo/Conflict`, [`relocate::apply`] → `Changed/Unchanged`, [`relocate::run`] for
//!   all of them, [`relocate::rollback`]; [`relocate::RelocateState`] is the serde record the
//!   journal persists (saved through `Ctx::save` before anything rollback depends on).
//! * [`mod@bench`] — [`bench::measure_copy`]: copy/verify throughput figures for the VM benchmark.
//!
//! External programs run only through `crate::host::Exec`; paths come from `crate::host::Host`.
//! `sys` holds the xattr syscalls, the only `unsafe` in this module.

pub mod bench;
pub mod copy;
pub mod engine;
pub mod relocate;
mod sys;
