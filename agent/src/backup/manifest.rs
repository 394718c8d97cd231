//! The manifest: what makes a backup exist. Written last, after every object is complete and
//! every tool exited 0; a backup directory without one is partial and is never listed as a
//! backup. Pure data and (de)serialization; the layout of a backup in a destination:
//!
//! ```text
//! PREFIX/ID/started.json     who started it, when (so a later run can clean up a partial one)
//! PREFIX/ID/<objects>        the streams (data.sql.zst, base.tar.zst.age, ...)
//! PREFIX/ID/manifest.json    written last
//! PREFIX/ID/verify.json      written by `backup verify` (result and per-table fingerprints)
//! ```

use super::codec::Compression;
use super::object::Written;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MANIFEST: &str = "manifest.json";
pub const STARTED: &str = "started.json";
pub const VERIFY: &str = "verify.json";
pub const SCHEMA: u32 = 1;

pub use crate::profile::backup::Kind;

/// What the plain bytes of an object are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// SQL text for the mysql/mariadb client or psql.
    Sql,
    /// `pg_dump --format=custom` for pg_restore.
    PgCustom,
    /// mariabackup's xbstream.
    Xbstream,
    /// A tar archive of a datadir (pg_basebackup).
    Tar,
}

/// One stream of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    #[serde(flatten)]
    pub stored: Written,
    pub format: Format,
    /// Plain (uncompressed, decrypted) length and SHA-256.
    pub plain_bytes: u64,
    pub plain_sha256: String,
    /// The database this stream holds, when it holds one (PostgreSQL logical: one per database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The command that produced it (no secrets: credentials never go on a command line).
    pub tool: String,
}

/// Written first: lets a later run on the same host recognise and clean up a partial backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub id: String,
    pub host: String,
    pub started: String,
    pub dbhost_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// "age" (age-encryption.org/v1, X25519 recipients).
    pub format: String,
    pub recipients: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    pub id: String,
    pub dbhost_version: String,
    pub engine: String,
    pub engine_version: String,
    pub kind: Kind,
    pub host: String,
    /// RFC 3339 UTC.
    pub started: String,
    pub finished: String,
    pub compression: Compression,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Size of the datadir when the backup started (the estimate parts were sized from).
    pub source_bytes: u64,
    pub part_size: u64,
    pub objects: Vec<Object>,
    /// Positions at start and end: "gtid", "lsn", "binlog", ... → value.
    #[serde(default)]
    pub start: BTreeMap<String, String>,
    #[serde(default)]
    pub end: BTreeMap<String, String>,
}

impl Manifest {
    pub fn stored_bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.stored.bytes).sum()
    }
    pub fn plain_bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.plain_bytes).sum()
    }

    /// Parse and check a manifest read from `id`'s directory.
    pub fn parse(bytes: &[u8], id: &str) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes)
            .with_context(|| format!("backup {id}: manifest.json is not a dbhost manifest"))?;
        if m.schema != SCHEMA {
            bail!(
                "backup {id}: manifest schema {} is not {SCHEMA}; use a dbhost that reads it",
                m.schema
            );
        }
        if m.id != id {
            bail!("backup {id}: its manifest names backup {}", m.id);
        }
        for o in &m.objects {
            let n = &o.stored.name;
            if !n.starts_with(&format!("{id}/")) || n.contains("..") {
                bail!("backup {id}: object {n} lies outside the backup");
            }
            if o.stored.sha256.len() != 64
                || !o.stored.sha256.bytes().all(|b| b.is_ascii_hexdigit())
            {
                bail!("backup {id}: object {n} has no SHA-256");
            }
        }
        if m.objects.is_empty() {
            bail!("backup {id}: the manifest lists no object");
        }
        Ok(m)
    }
}

/// The result `backup verify` stores beside the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRecord {
    pub id: String,
    /// RFC 3339 UTC.
    pub verified: String,
    pub ok: bool,
    pub host: String,
    pub dbhost_version: String,
    /// What was checked, in order, with its outcome.
    pub checks: Vec<String>,
    /// Per table: "rows=N checksum=X" as the restored server reported them.
    #[serde(default)]
    pub tables: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A backup id: UTC time to the second, engine, kind, and 4 random hex digits, so ids sort by
/// time and two hosts sharing a prefix never collide.
pub fn new_id(now_secs: i64, engine: &str, kind: Kind) -> String {
    let (y, mo, d, h, mi, s) = crate::civil::utc(now_secs);
    let r = crate::host::random_bytes(2)
        .map(hex::encode)
        .unwrap_or_else(|_| format!("{:04x}", std::process::id() & 0xffff));
    format!(
        "{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z-{engine}-{}-{r}",
        kind.as_str()
    )
}

/// Seconds since the epoch encoded at the start of an id (`None` for a foreign name).
pub fn id_time(id: &str) -> Option<i64> {
    let t = id.get(..16)?;
    let b = t.as_bytes();
    if b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Inverse of `civil::utc`'s date part (Howard Hinnant's days-from-civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 UTC text of seconds since the epoch.
pub fn rfc3339(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = crate::civil::utc(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub(crate) fn sample(id: &str) -> Manifest {
        Manifest {
            schema: SCHEMA,
            id: id.into(),
            dbhost_version: "0.1.0".into(),
            engine: "mariadb".into(),
            engine_version: "10.11.6".into(),
            kind: Kind::Logical,
            host: "db1".into(),
            started: "2026-12-05T18:00:00Z".into(),
            finished: "2026-12-05T18:01:00Z".into(),
            compression: Compression::Zstd,
            encryption: None,
            source_bytes: 1 << 20,
            part_size: 8 << 20,
            objects: vec![Object {
                stored: Written {
                    name: format!("{id}/data.sql.zst"),
                    bytes: 10,
                    sha256: "a".repeat(64),
                },
                format: Format::Sql,
                plain_bytes: 100,
                plain_sha256: "b".repeat(64),
                database: None,
                tool: "mariadb-dump --single-transaction --all-databases".into(),
            }],
            start: BTreeMap::from([("gtid".into(), "0-1-5".into())]),
            end: BTreeMap::from([("gtid".into(), "0-1-9".into())]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::sample;
    use super::*;

    #[test]
    fn ids_sort_by_time_and_decode() {
        let a = new_id(1_795_000_000, "mariadb", Kind::Logical);
        let b = new_id(1_795_000_001, "mariadb", Kind::Physical);
        assert!(a < b, "{a} {b}");
        assert!(
            a.starts_with("20261118T") && a.contains("-mariadb-logical-"),
            "{a}"
        );
        assert_eq!(id_time(&a), Some(1_795_000_000));
        assert_eq!(id_time("20000229T000000Z-x"), Some(951_782_400));
        assert_eq!(id_time("notes.txt"), None);
        assert_eq!(id_time("20261399T000000Z-x"), None);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn manifest_round_trips_and_is_checked() {
        let id = "20261205T180000Z-mariadb-logical-abcd";
        let m = sample(id);
        let text = serde_json::to_vec_pretty(&m).unwrap();
        assert_eq!(Manifest::parse(&text, id).unwrap(), m);
        assert!(Manifest::parse(&text, "other")
            .unwrap_err()
            .to_string()
            .contains("names backup"));
        let mut bad = m.clone();
        bad.objects[0].stored.name = "elsewhere/x".into();
        let t = serde_json::to_vec(&bad).unwrap();
        assert!(Manifest::parse(&t, id)
            .unwrap_err()
            .to_string()
            .contains("outside"));
        let mut bad = m.clone();
        bad.schema = 2;
        let t = serde_json::to_vec(&bad).unwrap();
        assert!(Manifest::parse(&t, id)
            .unwrap_err()
            .to_string()
            .contains("schema 2"));
        assert!(Manifest::parse(b"{}", id).is_err());
        assert_eq!(m.stored_bytes(), 10);
        assert_eq!(m.plain_bytes(), 100);
    }
}
