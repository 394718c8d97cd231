//! Backups that are proven to restore: `dbhost backup`, `restore`, `backup verify`, `list`,
//! `prune` (BACKUP-MIGRATE.md).
//!
//! - [`dest`]: destinations (Azure Blob, S3, GCS, a directory) through `object_store`;
//! - [`object`]: streamed multipart writes that hash what they send; reads that check hashes;
//! - [`parts`]: multipart part sizes from the expected backup size, per service limits;
//! - [`codec`]: compression (zstd, gzip) and age encryption of a stream;
//! - [`pipe`]: a program's output streamed to an object, an object streamed into a program;
//! - [`manifest`]: the manifest (written last: what makes a backup exist), ids, verify records;
//! - [`catalog`]: what a destination holds (complete, partial), deletion manifest-first;
//! - [`tools`]: the engines' dump and copy programs as command lines, positions from stderr;
//! - [`sql`]: the one function every query of this room goes through;
//! - [`take`]: `dbhost backup`; [`restore`]: `dbhost restore`; [`verify`]: `backup verify`;
//! - [`retention`]: what `backup prune` keeps (pure); [`schedule`]: the systemd timers;
//! - [`open`]: from a profile's `[backup]` to an opened destination and keys.

pub mod catalog;
pub mod codec;
pub mod dest;
pub mod manifest;
pub mod object;
pub mod open;
pub mod parts;
pub mod pipe;
pub mod restore;
pub mod retention;
pub mod schedule;
pub mod sql;
pub mod take;
pub mod tools;
pub mod verify;

#[cfg(test)]
pub(crate) mod fakehttp;
#[cfg(test)]
pub(crate) mod testenv;

use crate::host::{Exec, Host};
use dest::Store;

/// What the backup commands need from the host: the system, a runtime, the destination, a
/// clock (injected in tests) and this host's name.
pub struct Env<'a> {
    pub host: &'a Host,
    pub exec: &'a dyn Exec,
    pub rt: &'a tokio::runtime::Runtime,
    pub store: &'a Store,
    /// Seconds since the epoch.
    pub now: &'a dyn Fn() -> i64,
    pub hostname: String,
}
