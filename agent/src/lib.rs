//! dbhost: turn a fresh Linux VM into a database host.
//!
//! Data flow (see `../shared/design/ARCHITECTURE.md`):
//! profile × inventory → plan (pure) → apply (journaled, idempotent steps) → report.
//!
//! Rooms: `cli` (clap types, output), `profile` (TOML schema), `host` (the only place with real
//! paths), `detect` (read-only inventory), `md` (v1.2 superblocks + ioctls), `fs`, `db`, `tune`,
//! `generalize`, `plan`.

// Output goes through `cli::output` (a closed pipe ends a read-only command quietly, never a
// panic); tests may print.
#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]

pub mod apply;
pub mod backup;
pub mod civil;
pub mod cli;
pub mod db;
pub mod detect;
pub mod exit;
pub mod fs;

pub mod generalize;
pub mod host;
pub mod md;
pub mod migrate;
pub mod net;
pub mod plan;
pub mod profile;
pub mod tune;
