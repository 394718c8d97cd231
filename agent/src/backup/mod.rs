//! Backups that are proven to restore: `dbhost backup`, `restore`, `backup verify`, `list`,
//! `prune` (BACKUP-MIGRATE.md).
//!
//! - [`dest`]: destinations (Azure Blob, S3, GCS, a directory) through `object_store`;
//! - [`object`]: streamed multipart writes that hash what they send; reads that check hashes;
//! - [`parts`]: multipart part sizes from the expected backup size, per service limits.

pub mod dest;
pub mod object;
pub mod parts;

#[cfg(test)]
pub(crate) mod fakehttp;
