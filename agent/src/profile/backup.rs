//! `[backup]`: where and how `dbhost backup` stores backups, and what `restore`, `backup verify`,
//! `backup prune` and the scheduled runs read. No secret is ever a key here: credentials come
//! from the environment or from the file `credentials-file` names.

use super::units::Duration;
use serde::{Deserialize, Serialize};

/// Logical (SQL dump) or physical (file copy) backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Logical,
    Physical,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Logical => "logical",
            Kind::Physical => "physical",
        }
    }
}

/// Compression of a backup stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Zstd,
    Gzip,
    None,
}

impl Compression {
    /// File name suffix of a stream compressed this way.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::Zstd => ".zst",
            Compression::Gzip => ".gz",
            Compression::None => "",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        }
    }
    /// Valid levels, for validation messages.
    pub fn levels(self) -> Option<std::ops::RangeInclusive<i32>> {
        match self {
            Compression::Zstd => Some(1..=19),
            Compression::Gzip => Some(1..=9),
            Compression::None => None,
        }
    }
}

/// `[backup.retention]`: what `backup prune` keeps. Unset: keep everything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Retention {
    /// The newest N complete backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// The newest backup of each of the last D days (UTC) that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    /// The newest backup of each of the last W ISO weeks that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
}

fn default_delay() -> Duration {
    Duration::secs(1800)
}

/// `[backup.schedule]`: systemd timers `apply` installs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Schedule {
    /// systemd `OnCalendar=` of `dbhost backup` (then `backup prune`).
    pub backup: String,
    /// systemd `OnCalendar=` of `dbhost backup verify latest`; none: never scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<String>,
    /// `RandomizedDelaySec=` of both timers (hosts sharing a destination spread out).
    #[serde(default = "default_delay")]
    pub randomized_delay: Duration,
}

/// `[backup]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Backup {
    /// azure://CONTAINER/PREFIX, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or file:///DIR.
    pub destination: String,
    /// Service endpoint (Azurite, an S3-compatible server, a sovereign cloud).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Azure storage account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// KEY=VALUE file with the secrets (mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
    /// Azure: the VM's managed identity (IMDS at `disks.imds-endpoint`).
    #[serde(default)]
    pub managed_identity: bool,
    #[serde(default)]
    pub kind: Kind,
    #[serde(default)]
    pub compression: Compression,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_level: Option<i32>,
    /// age recipients (`age1...`): backups are encrypted on the host to these public keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encrypt_to: Vec<String>,
    /// age secret key file for `restore`/`verify` on hosts that hold it (mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<String>,
    /// PostgreSQL logical: databases dumped at once; MariaDB physical: copy threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<u32>,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// `apply` restores this backup (`latest`, `latest-verified` or an id) when the database it
    /// just set up holds no data yet: a new VM built from a backup in one step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_on_apply: Option<String>,
}

impl Backup {
    /// Every key set, for the README check.
    pub fn full_example() -> Backup {
        Backup {
            destination: "azure://backups/db1".into(),
            endpoint: Some("http://127.0.0.1:10000/devstoreaccount1".into()),
            region: Some("us-east-1".into()),
            account: Some("devstoreaccount1".into()),
            credentials_file: Some("/etc/dbhost/backup.env".into()),
            managed_identity: false,
            kind: Kind::Physical,
            compression: Compression::Zstd,
            compression_level: Some(3),
            encrypt_to: vec![
                "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p".into(),
            ],
            identity_file: Some("/etc/dbhost/backup-key.txt".into()),
            parallel: Some(2),
            retention: Retention {
                keep_last: Some(7),
                keep_daily: Some(7),
                keep_weekly: Some(4),
            },
            schedule: Some(Schedule {
                backup: "daily".into(),
                verify: Some("weekly".into()),
                randomized_delay: default_delay(),
            }),
            restore_on_apply: Some("latest-verified".into()),
        }
    }
}

/// Cross-field checks of `[backup]`: (key, message).
pub fn validate(b: &Backup, out: &mut dyn FnMut(&str, String)) {
    if let Err(e) = crate::backup::dest::Destination::parse(&b.destination) {
        out("backup.destination", e.to_string());
    }
    for (k, v) in [
        ("backup.credentials-file", &b.credentials_file),
        ("backup.identity-file", &b.identity_file),
    ] {
        if let Some(p) = v {
            if !p.starts_with('/') {
                out(k, format!("{p:?} must be an absolute path"));
            }
        }
    }
    if let Some(e) = &b.endpoint {
        if !(e.starts_with("http://") || e.starts_with("https://")) {
            out(
                "backup.endpoint",
                format!("{e:?} must be an http:// or https:// URL"),
            );
        }
    }
    match (b.compression.levels(), b.compression_level) {
        (None, Some(_)) => out(
            "backup.compression-level",
            "no level with compression \"none\"".into(),
        ),
        (Some(r), Some(l)) if !r.contains(&l) => out(
            "backup.compression-level",
            format!(
                "{l} is outside {}..={} for {}",
                r.start(),
                r.end(),
                b.compression.as_str()
            ),
        ),
        _ => {}
    }
    if let Err(e) = crate::backup::codec::parse_recipients(&b.encrypt_to) {
        out("backup.encrypt-to", e.to_string());
    }
    if b.parallel == Some(0) {
        out("backup.parallel", "must be at least 1".into());
    }
    if let Some(s) = &b.schedule {
        for (k, v) in [
            ("backup.schedule.backup", Some(&s.backup)),
            ("backup.schedule.verify", s.verify.as_ref()),
        ] {
            if let Some(v) = v {
                if v.trim().is_empty() || v.contains('\n') {
                    out(k, "must be a systemd OnCalendar= expression (e.g. \"daily\", \"*-*-* 02:30\")".into());
                }
            }
        }
    }
    if let Some(r) = &b.restore_on_apply {
        if r.is_empty() || r.contains('/') {
            out(
                "backup.restore-on-apply",
                "must be \"latest\", \"latest-verified\" or a backup id".into(),
            );
        }
    }
}
