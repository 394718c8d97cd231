//! Profiles: TOML, `version = 1`, strict (`deny_unknown_fields` on every struct), validated
//! across fields after parsing. Every error names `file:line:col` and the key.
//!
//! Layout of this room:
//! - `mod.rs` (here): the v1 schema structs, defaults, [`load`] / [`parse`];
//! - [`units`]: sizes, durations, LUN lists, counts, globs (string forms with clear errors);
//! - [`validate`]: the cross-field rules;
//! - [`locate`]: maps a byte offset or a key path to `line:col` (toml error spans and key spans).
//!
//! Every key is documented in `profiles/README.md`; `tests::readme_documents_every_key` fails when
//! one is missing there. When you add a key: add it to the struct, to [`Profile::full_example`],
//! and to the README table.

pub mod backup;
pub mod locate;
pub mod units;
pub mod validate;

pub use units::{Duration, ExpectedCount, LunSpec, Size};

use crate::detect::model::{CacheMode, Platform};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The only schema version this build reads.
pub const PROFILE_VERSION: u32 = 1;

/// A parsed, validated v1 profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Profile {
    /// Schema version; must be 1.
    pub version: u32,
    /// Free text shown by `profile check` and `plan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub disks: Disks,
    #[serde(default)]
    pub array: Array,
    #[serde(default)]
    pub filesystem: Filesystem,
    #[serde(default)]
    pub database: Database,
    #[serde(default)]
    pub tuning: Tuning,
    /// Importing a live database from its old host (`dbhost migrate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<Migrate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<backup::Backup>,
}

/// Which platform the profile is meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformSel {
    Azure,
    Aws,
    Gcp,
    Qemu,
    #[default]
    Any,
}

impl PlatformSel {
    pub fn accepts(self, p: Platform) -> bool {
        matches!(
            (self, p),
            (PlatformSel::Any, _)
                | (PlatformSel::Azure, Platform::Azure)
                | (PlatformSel::Aws, Platform::Aws)
                | (PlatformSel::Gcp, Platform::Gcp)
                | (PlatformSel::Qemu, Platform::Qemu)
        )
    }
}

impl fmt::Display for PlatformSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlatformSel::Azure => "azure",
            PlatformSel::Aws => "aws",
            PlatformSel::Gcp => "gcp",
            PlatformSel::Qemu => "qemu",
            PlatformSel::Any => "any",
        })
    }
}

/// How data disks are selected among the intrinsic candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelectMode {
    /// Every intrinsic candidate that passes the platform, cache-mode and size filters.
    AllCandidates,
    /// Disks whose platform LUN is in `disks.luns`.
    Luns,
    /// Disks whose serial matches a `disks.serial` glob and/or model a `disks.model` glob.
    Match,
}

impl fmt::Display for SelectMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SelectMode::AllCandidates => "all-candidates",
            SelectMode::Luns => "luns",
            SelectMode::Match => "match",
        })
    }
}

pub fn all_cache_modes() -> Vec<CacheMode> {
    vec![
        CacheMode::None,
        CacheMode::ReadOnly,
        CacheMode::ReadWrite,
        CacheMode::Unknown,
    ]
}

fn default_min_size() -> Size {
    Size::gib(1)
}

/// `[disks]`: which disks become the array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Disks {
    /// The platform this profile is for; a host of another platform is refused.
    #[serde(default)]
    pub platform: PlatformSel,
    /// Host cache modes a data disk may have. Default: every mode (no filter).
    #[serde(default = "all_cache_modes")]
    pub allowed_cache_modes: Vec<CacheMode>,
    /// Cache mode to assume for a disk whose mode is unknown (no IMDS, not Azure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_cache_mode: Option<CacheMode>,
    /// Selection mode; inferred from `luns` / `serial` / `model` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<SelectMode>,
    /// LUNs (numbers or "FIRST-LAST" ranges) for `select = "luns"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub luns: Option<Vec<LunSpec>>,
    /// Serial globs (any one matches) for `select = "match"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<Vec<String>>,
    /// Model globs (any one matches) for `select = "match"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Vec<String>>,
    /// Smallest disk that may be used.
    #[serde(default = "default_min_size")]
    pub min_size: Size,
    /// How many disks must be selected: a number, or "all" (every selected disk).
    #[serde(default)]
    pub expected_count: ExpectedCount,
    /// Azure IMDS base URL override (default: the link-local address; env DBHOST_IMDS_ENDPOINT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imds_endpoint: Option<String>,
    /// How long `apply`/`detect --wait-disks` waits for the expected disks to appear.
    #[serde(default = "default_wait_timeout")]
    pub wait_timeout: Duration,
}

fn default_wait_timeout() -> Duration {
    Duration::secs(0)
}

impl Default for Disks {
    fn default() -> Self {
        Disks {
            platform: PlatformSel::Any,
            allowed_cache_modes: all_cache_modes(),
            assume_cache_mode: None,
            select: None,
            luns: None,
            serial: None,
            model: None,
            min_size: default_min_size(),
            expected_count: ExpectedCount::All,
            imds_endpoint: None,
            wait_timeout: default_wait_timeout(),
        }
    }
}

impl Disks {
    /// The effective selection mode (explicit, or inferred from the selector keys).
    pub fn select_mode(&self) -> SelectMode {
        if let Some(m) = self.select {
            return m;
        }
        if self.luns.is_some() {
            SelectMode::Luns
        } else if self.serial.is_some() || self.model.is_some() {
            SelectMode::Match
        } else {
            SelectMode::AllCandidates
        }
    }
}

/// RAID level of the data array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Raid0,
    /// No array: the single selected disk carries the filesystem directly.
    None,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Raid0 => "raid0",
            Level::None => "none",
        })
    }
}

pub const DEFAULT_CHUNK: Size = Size::kib(512);
pub const DEFAULT_ARRAY_NAME: &str = "dbdata";

fn default_array_name() -> String {
    DEFAULT_ARRAY_NAME.to_string()
}

/// `[array]`: the md array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Array {
    #[serde(default)]
    pub level: Level,
    /// Chunk (stripe unit) for raid0; default 512K. Not allowed with level none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<Size>,
    /// Host-independent array name (`/dev/md/<name>`, fstab owner tag).
    #[serde(default = "default_array_name")]
    pub name: String,
}

impl Default for Array {
    fn default() -> Self {
        Array {
            level: Level::Raid0,
            chunk: None,
            name: default_array_name(),
        }
    }
}

impl Array {
    pub fn chunk(&self) -> Size {
        self.chunk.unwrap_or(DEFAULT_CHUNK)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsType {
    #[default]
    Xfs,
    Ext4,
}

impl FsType {
    /// Longest label the filesystem stores.
    pub fn max_label_len(self) -> usize {
        match self {
            FsType::Xfs => 12,
            FsType::Ext4 => 16,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            FsType::Xfs => "xfs",
            FsType::Ext4 => "ext4",
        }
    }
}

impl fmt::Display for FsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub const DEFAULT_MOUNT_POINT: &str = "/datadrive";

fn default_label() -> String {
    "dbdata".to_string()
}
fn default_mount_point() -> String {
    DEFAULT_MOUNT_POINT.to_string()
}
fn default_device_timeout() -> Duration {
    Duration::secs(120)
}

/// `[filesystem]`: filesystem and mount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Filesystem {
    #[serde(default, rename = "type")]
    pub fs_type: FsType,
    #[serde(default = "default_label")]
    pub label: String,
    #[serde(default = "default_mount_point")]
    pub mount_point: String,
    /// Extra mount options, added after dbhost's own (`noatime,nofail,x-systemd.device-timeout=…`).
    #[serde(default)]
    pub mount_options: Vec<String>,
    /// `x-systemd.device-timeout=` in fstab: how long boot waits for the array before going on.
    #[serde(default = "default_device_timeout")]
    pub device_timeout: Duration,
}

impl Default for Filesystem {
    fn default() -> Self {
        Filesystem {
            fs_type: FsType::Xfs,
            label: default_label(),
            mount_point: default_mount_point(),
            mount_options: Vec::new(),
            device_timeout: default_device_timeout(),
        }
    }
}

/// The database engine (the profile's `database.engine`, `tune --engine`, tuning facts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Mysql,
    Mariadb,
    Postgresql,
    /// Storage only; no datadir is moved.
    #[default]
    None,
}

impl Engine {
    /// MySQL or MariaDB (InnoDB knobs, my.cnf drop-ins).
    pub fn is_innodb(self) -> bool {
        matches!(self, Engine::Mysql | Engine::Mariadb)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Mysql => "mysql",
            Engine::Mariadb => "mariadb",
            Engine::Postgresql => "postgresql",
            Engine::None => "none",
        }
    }
    /// Default datadir subdirectory under the mount point.
    pub fn default_datadir(self) -> Option<&'static str> {
        match self {
            Engine::Mysql | Engine::Mariadb => Some("mysql"),
            Engine::Postgresql => Some("postgresql"),
            Engine::None => None,
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn yes() -> bool {
    true
}

/// How `apply` moves the datadir.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MoveMethod {
    /// PostgreSQL (running) through a streaming replica; otherwise the two-pass copy.
    #[default]
    Auto,
    /// Always the two-pass file copy.
    Copy,
}

/// `[database]`: which engine's datadir moves onto the mount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Database {
    #[serde(default)]
    pub engine: Engine,
    /// Subdirectory of the mount point that becomes the datadir (default per engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datadir: Option<String>,
    /// Keep the old datadir (renamed) after a verified move, until `apply --finalize`.
    #[serde(default = "yes")]
    pub keep_old_datadir: bool,
    /// Remove the kept old datadir on a later `apply` once it is older than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Duration>,
    /// How the datadir moves: `auto` (a replica where the engine allows) or `copy`.
    #[serde(default)]
    pub method: MoveMethod,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            engine: Engine::None,
            datadir: None,
            keep_old_datadir: true,
            retention: None,
            method: MoveMethod::Auto,
        }
    }
}

impl Database {
    /// The datadir subdirectory: explicit, else the engine's default; `None` for engine none.
    pub fn datadir(&self) -> Option<&str> {
        match self.engine {
            Engine::None => None,
            e => self.datadir.as_deref().or(e.default_datadir()),
        }
    }
}

/// `[tuning]`: computed I/O and database tuning (issue 6), with per-knob overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Tuning {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Knob name → value; replaces the computed value (see [`validate::KNOBS`]).
    #[serde(default)]
    pub overrides: BTreeMap<String, toml::Value>,
    /// Per-disk bandwidth cap in MB/s when IMDS does not tell (sizing innodb_io_capacity etc.).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_mbps: Option<u64>,
    /// Per-disk IOPS cap when IMDS does not tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_iops: Option<u64>,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            enabled: true,
            overrides: BTreeMap::new(),
            disk_mbps: None,
            disk_iops: None,
        }
    }
}

/// How `dbhost migrate cutover` stops writes on the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fence {
    /// Over SQL: the source becomes read-only (PostgreSQL: `default_transaction_read_only`,
    /// persisted with ALTER SYSTEM; MariaDB/MySQL: `read_only`) and its client sessions end.
    #[default]
    ReadOnly,
    /// The source server stops: `source-unit` on this host, or `stop-command` elsewhere.
    Stop,
}

impl fmt::Display for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fence::ReadOnly => "read-only",
            Fence::Stop => "stop",
        })
    }
}

fn default_max_lag() -> Size {
    Size::mib(64)
}
fn default_catch_up_timeout() -> Duration {
    Duration::secs(60)
}
fn default_hook_timeout() -> Duration {
    Duration::secs(120)
}
pub const DEFAULT_SLOT: &str = "dbhost_migrate";
fn default_slot() -> String {
    DEFAULT_SLOT.to_string()
}

/// `[migrate]`: the old host a live database is imported from (`dbhost migrate`), how its
/// writes are fenced at cutover, and what runs once the new primary accepts writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Migrate {
    /// The old host: a name (resolved through /etc/hosts, then DNS) or an address.
    pub source_host: String,
    /// Its port; default 5432 (postgresql) or 3306 (mysql, mariadb).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_port: Option<u16>,
    /// The account that reads the source's state and fences it (PostgreSQL: a superuser;
    /// MariaDB/MySQL: SUPER, or READ_ONLY ADMIN + CONNECTION ADMIN + REPLICATION CLIENT).
    /// Default `postgres` / `root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_user: Option<String>,
    /// File holding source-user's password (its first line). Absent: no password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// The account the copy streams with (PostgreSQL: a REPLICATION role; MariaDB/MySQL:
    /// REPLICATION SLAVE). Default: source-user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_user: Option<String>,
    /// File holding replication-user's password. Default: password-file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_password_file: Option<String>,
    #[serde(default)]
    pub fence: Fence,
    /// fence = "stop" with the source on this host: its systemd unit (stopped and masked, so
    /// nothing starts it again; `migrate abort` unmasks it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_unit: Option<String>,
    /// fence = "stop" with the source elsewhere: the command (argv) that stops it, e.g.
    /// ["ssh", "old-db", "sudo", "systemctl", "stop", "postgresql@15-main"].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_command: Option<Vec<String>>,
    /// Runs (argv) once the new primary accepts writes: point DNS or a load balancer at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_cutover: Option<Vec<String>>,
    /// How long the hook may run.
    #[serde(default = "default_hook_timeout")]
    pub hook_timeout: Duration,
    /// Cutover starts only while the copy is at most this far behind the source.
    #[serde(default = "default_max_lag")]
    pub max_lag: Size,
    /// After the fence, how long cutover waits for the copy to apply the source's last change;
    /// then it lifts the fence again and switches nothing.
    #[serde(default = "default_catch_up_timeout")]
    pub catch_up_timeout: Duration,
    /// PostgreSQL: the replication slot on the source that keeps its WAL for the copy.
    #[serde(default = "default_slot")]
    pub slot: String,
    /// MariaDB/MySQL: the new server's server_id (must differ from the source's). Default:
    /// derived from this host's machine-id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<u32>,
    /// MariaDB/MySQL: how to run a command on the source host (argv prefix, e.g. ["ssh",
    /// "old-db"]) for the physical copy (mariabackup reads the source's files). Absent: the
    /// source runs on this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_shell: Option<Vec<String>>,
    /// MariaDB/MySQL: the source server's option file for mariabackup there (datadir, socket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_defaults_file: Option<String>,
}

impl Profile {
    /// Every key set (every `Option` is `Some`, every list non-empty). Used by the test that
    /// checks `profiles/README.md` documents every key; not necessarily a *valid* profile.
    pub fn full_example() -> Profile {
        let mut overrides = BTreeMap::new();
        overrides.insert("vm.swappiness".to_string(), toml::Value::Integer(1));
        Profile {
            version: PROFILE_VERSION,
            description: Some("example".into()),
            disks: Disks {
                platform: PlatformSel::Azure,
                allowed_cache_modes: vec![CacheMode::None],
                assume_cache_mode: Some(CacheMode::None),
                select: Some(SelectMode::Luns),
                luns: Some(vec![LunSpec::One(0), LunSpec::Range(4, 7)]),
                serial: Some(vec!["data*".into()]),
                model: Some(vec!["Virtual Disk".into()]),
                min_size: Size::gib(64),
                expected_count: ExpectedCount::Exactly(2),
                imds_endpoint: Some("http://127.0.0.1:8080".into()),
                wait_timeout: Duration::secs(300),
            },
            array: Array {
                level: Level::Raid0,
                chunk: Some(DEFAULT_CHUNK),
                name: "dbdata".into(),
            },
            filesystem: Filesystem {
                mount_options: vec!["logbsize=256k".into()],
                ..Filesystem::default()
            },
            database: Database {
                engine: Engine::Mysql,
                datadir: Some("mysql".into()),
                keep_old_datadir: true,
                retention: Some(Duration::secs(7 * 86400)),
                method: MoveMethod::Copy,
            },
            tuning: Tuning {
                enabled: true,
                overrides,
                disk_mbps: Some(200),
                disk_iops: Some(5000),
            },
            migrate: Some(Migrate {
                source_host: "old-db.example".into(),
                source_port: Some(3306),
                source_user: Some("dbhost".into()),
                password_file: Some("/root/source.pw".into()),
                replication_user: Some("repl".into()),
                replication_password_file: Some("/root/repl.pw".into()),
                fence: Fence::Stop,
                source_unit: Some("mariadb.service".into()),
                stop_command: Some(vec!["ssh".into(), "old-db".into()]),
                on_cutover: Some(vec!["/usr/local/bin/point-dns".into()]),
                hook_timeout: default_hook_timeout(),
                max_lag: default_max_lag(),
                catch_up_timeout: default_catch_up_timeout(),
                slot: default_slot(),
                server_id: Some(2),
                source_shell: Some(vec!["ssh".into(), "old-db".into()]),
                source_defaults_file: Some("/etc/mysql/my.cnf".into()),
            }),
            backup: Some(backup::Backup::full_example()),
        }
    }
}

/// One problem in a profile, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileError {
    pub file: PathBuf,
    /// 1-based line and column (column counts characters).
    pub line: usize,
    pub col: usize,
    /// Dotted key path (`disks.min-size`, `disks.luns[2]`), when the problem has one.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )?;
        if let Some(k) = &self.key {
            write!(f, " (key `{k}`)")?;
        }
        Ok(())
    }
}

/// Every problem found in a profile (parse errors stop at the first; validation reports all).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileErrors(pub Vec<ProfileError>);

impl fmt::Display for ProfileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProfileErrors {}

/// Read and parse a profile file. An unreadable file is an I/O error (anyhow, exit 1); a bad
/// profile is [`ProfileErrors`] wrapped in `exit::Failure::Usage`-compatible form by the CLI.
pub fn load(path: &Path) -> anyhow::Result<Result<Profile, ProfileErrors>> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading profile {}", path.display()))?;
    Ok(parse(&text, path))
}

/// Parse and validate profile text; `file` is only used in error messages.
pub fn parse(text: &str, file: &Path) -> Result<Profile, ProfileErrors> {
    let doc = match toml::de::DeTable::parse(text) {
        Ok(d) => d,
        Err(e) => return Err(ProfileErrors(vec![from_toml_error(&e, text, file, None)])),
    };
    let at = |span: std::ops::Range<usize>, key: Option<String>, message: String| {
        let (line, col) = locate::line_col(text, span.start);
        ProfileError {
            file: file.to_path_buf(),
            line,
            col,
            key,
            message,
        }
    };
    // Version dispatch before the schema: a future version gets a clear message, not a list of
    // unknown keys.
    match doc.get_ref().get("version") {
        None => {
            return Err(ProfileErrors(vec![at(
                0..0,
                Some("version".into()),
                format!(
                    "missing required key `version`; add `version = {PROFILE_VERSION}` at the top"
                ),
            )]))
        }
        Some(v) => {
            let ok = v
                .get_ref()
                .as_integer()
                .map(|i| i.as_str() == PROFILE_VERSION.to_string() && i.radix() == 10)
                .unwrap_or(false);
            if !ok {
                let shown = match v.get_ref() {
                    toml::de::DeValue::Integer(i) => i.as_str().to_string(),
                    toml::de::DeValue::String(s) => format!("{s:?}"),
                    other => other.type_str().to_string(),
                };
                return Err(ProfileErrors(vec![at(
                    v.span(),
                    Some("version".into()),
                    format!("unsupported profile version {shown}: this dbhost reads version {PROFILE_VERSION}"),
                )]));
            }
        }
    }
    let profile: Profile = match toml::from_str(text) {
        Ok(p) => p,
        Err(e) => {
            return Err(ProfileErrors(vec![from_toml_error(
                &e,
                text,
                file,
                Some(&doc),
            )]))
        }
    };
    let problems = validate::validate(&profile);
    if problems.is_empty() {
        return Ok(profile);
    }
    let mut errs: Vec<ProfileError> = problems
        .into_iter()
        .map(|p| {
            let span = locate::span_of(doc.get_ref(), &p.key).unwrap_or(0..0);
            at(span, Some(p.key), p.message)
        })
        .collect();
    errs.sort_by_key(|e| (e.line, e.col));
    Err(ProfileErrors(errs))
}

fn from_toml_error(
    e: &toml::de::Error,
    text: &str,
    file: &Path,
    doc: Option<&toml::Spanned<toml::de::DeTable<'_>>>,
) -> ProfileError {
    let span = e.span().unwrap_or(0..0);
    let (line, col) = locate::line_col(text, span.start);
    let message = e.message().trim().to_string();
    let mut key = doc.and_then(|d| locate::key_at(d.get_ref(), span.start));
    // serde reports a missing field at the table that lacks it: name the field itself.
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        key = Some(match key {
            Some(k) if !k.is_empty() => format!("{k}.{field}"),
            _ => field.to_string(),
        });
    }
    ProfileError {
        file: file.to_path_buf(),
        line,
        col,
        key: key.filter(|k| !k.is_empty()),
        message,
    }
}

#[cfg(test)]
mod tests;
