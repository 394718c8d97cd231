//! The apply engine: runs a plan's steps (observe → done/to do/conflict; apply → changed/unchanged),
//! journals progress under `/var/lib/dbhost/` (atomic writes) so an interrupted run resumes, and
//! saves every file it is about to modify into an undo bundle (tar.gz + sha256 manifest) that
//! `dbhost rollback` restores.
//!
//! ARCHITECTURE.md places the engine in `plan/`; it lives here so `plan/` stays pure (profile ×
//! inventory → plan) and this room holds everything with side effects of the run itself.
//! The journal only makes a run resumable and reportable: state lives on the devices, and a lost
//! journal never causes a wipe (steps re-observe the devices every time).

pub mod backup;
pub mod build;
pub mod db;
pub mod engine;
pub mod fault;
pub mod journal;
pub mod step;
pub mod sys;
pub mod tuning;
pub mod undo;

pub use engine::{run_steps, Event, Report, RunOptions, StepReport};
pub use journal::Journal;
pub use step::{ApplyCx, Observation, Outcome, Step};
pub use undo::Undo;
