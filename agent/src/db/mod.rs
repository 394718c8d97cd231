//! The one home of database knowledge: finding an instance (datadir, unit, configuration),
//! reading its option files, logging in to it over its own protocol, and moving its datadir.
//! Facts: GENERALIZE-DATADIR-TUNING.md part B, BACKUP-MIGRATE.md.
//!
//! Public API (apply, status, rollback, tune, generalize and migrate call these):
//!
//! * [`client`] — sessions with servers over their protocols (tokio-postgres, a small MySQL
//!   client), the [`client::Client`] seam ([`crate::host::Exec::db`]) and its fake; name
//!   resolution without NSS.
//! * [`local`] — how to log in to this host's servers (peer auth as postgres, root over the
//!   socket, debian.cnf), which server processes run.
//! * [`cnf`] — the option-file and postgresql.conf parsers (the only ones).
//! * [`service`] — systemd start/stop with socket activation, bounded waits.
//! * [`pgctl`] — PostgreSQL's control file and LSNs.
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
pub mod client;
pub mod cnf;
pub mod copy;
pub mod engine;
pub mod local;
pub mod pgctl;
pub mod relocate;
pub mod service;
mod sys;
