//! `dbhost backup ...`, `dbhost restore`: argument types and printing; the work is in
//! `crate::backup`.

use super::{Ctx, OutputFormat};
use crate::backup::codec::{Compression, Encoding};
use crate::backup::dest::{Destination, Store};
use crate::backup::manifest::Kind;
use crate::backup::parts::human;
use crate::backup::{catalog, restore, retention, take, verify, Env};
use crate::db::engine::Engine;
use crate::host::RealExec;
use crate::profile::Size;
use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Where backups are (flags override the profile's `[backup]` section).
#[derive(Debug, Clone, Default, Args)]
pub struct DestArgs {
    /// Destination URL: azure://CONTAINER/PREFIX, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or
    /// file:///DIR.
    #[arg(long = "to", visible_alias = "from", value_name = "URL")]
    pub url: Option<String>,
    /// Service endpoint (Azurite http://HOST:10000/ACCOUNT, an S3-compatible server).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// S3 region.
    #[arg(long)]
    pub region: Option<String>,
    /// Azure storage account.
    #[arg(long)]
    pub account: Option<String>,
    /// KEY=VALUE file with the secrets (mode 0600): AZURE_STORAGE_ACCOUNT_KEY, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS, ...
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,
    /// Azure: authenticate with the VM's managed identity (IMDS; Azure VMs only).
    #[arg(long)]
    pub managed_identity: bool,
}

impl DestArgs {
    /// The destination from these flags over `base` (the profile's, when there is one).
    pub fn resolve(&self, base: Option<Destination>) -> Result<Destination> {
        let mut d =
            match (&self.url, base) {
                (Some(u), _) => Destination::parse(u)?,
                (None, Some(b)) => b,
                (None, None) => return Err(crate::exit::Failure::Usage(
                    "no backup destination: pass --to URL or a profile with a [backup] destination"
                        .into(),
                )
                .into()),
            };
        if let Some(e) = &self.endpoint {
            d.endpoint = Some(e.clone());
        }
        if let Some(r) = &self.region {
            d.region = Some(r.clone());
        }
        if let Some(a) = &self.account {
            d.account = Some(a.clone());
        }
        if let Some(f) = &self.credentials_file {
            d.credentials_file = Some(f.clone());
        }
        d.managed_identity |= self.managed_identity;
        Ok(d)
    }
}

/// Open `d` on this host.
pub fn open_destination(ctx: &Ctx, d: &Destination, imds_endpoint: Option<&str>) -> Result<Store> {
    crate::backup::open::store(&ctx.host, d, imds_endpoint)
}

/// Options every backup command shares.
#[derive(Debug, Clone, Default, Args)]
pub struct Common {
    /// Profile whose `[backup]` section (and `database.engine`) gives the defaults.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    #[command(flatten)]
    pub dest: DestArgs,
}

/// `dbhost backup`: take a backup, or manage the destination's backups.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub cmd: Option<BackupCmd>,
    #[command(flatten)]
    pub take: TakeArgs,
}

#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// List the destination's backups (complete ones, with their verify status; partial ones).
    List(Common),
    /// Prove a backup restores: check every hash, restore into a throwaway server, run the
    /// engine's checks, record per-table counts and checksums (verify.json beside it).
    Verify(VerifyArgs),
    /// Delete backups the retention policy does not keep (never the newest verified one).
    Prune(PruneArgs),
}

/// `dbhost backup verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Backup id, `latest` or `latest-verified`.
    #[arg(default_value = "latest")]
    pub backup: String,
    #[command(flatten)]
    pub common: Common,
    /// age secret key file (mode 0600) for an encrypted backup (default: the profile's).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Where the throwaway server lives while it runs (default: beside the datadir when the
    /// profile names one, else /var/lib/dbhost/verify).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

/// `dbhost backup prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub common: Common,
    /// Keep the newest N complete backups (overrides the profile's keep-last).
    #[arg(long)]
    pub keep_last: Option<u32>,
    /// Keep the newest backup of each of the newest D days that have one.
    #[arg(long)]
    pub keep_daily: Option<u32>,
    /// Keep the newest backup of each of the newest W ISO weeks that have one.
    #[arg(long)]
    pub keep_weekly: Option<u32>,
    /// Show what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Taking a backup.
#[derive(Debug, Args)]
pub struct TakeArgs {
    #[command(flatten)]
    pub common: Common,
    /// Engine to back up (default: the profile's database.engine).
    #[arg(long, value_enum)]
    pub engine: Option<crate::profile::Engine>,
    /// logical (SQL dump) or physical (mariabackup, pg_basebackup); default: the profile's, else
    /// logical.
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
    /// Compression (default: the profile's, else zstd).
    #[arg(long, value_enum)]
    pub compression: Option<Compression>,
    /// Compression level (zstd 1-19, default 3; gzip 1-9, default 6).
    #[arg(long)]
    pub compression_level: Option<i32>,
    /// Encrypt on this host to an age public key (age1...); repeat for several.
    #[arg(long, value_name = "RECIPIENT")]
    pub encrypt_to: Vec<String>,
    /// PostgreSQL logical: databases dumped at once; mariabackup: copy threads.
    #[arg(long)]
    pub parallel: Option<u32>,
    /// Size the backup may reach (sizes multipart parts; default: the datadir's size).
    #[arg(long, value_name = "SIZE")]
    pub expected_size: Option<Size>,
    /// Parts uploaded at once per object.
    #[arg(long, default_value_t = 4)]
    pub upload_concurrency: usize,
}

/// `dbhost restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Backup id, `latest` (newest complete) or `latest-verified`.
    #[arg(default_value = "latest")]
    pub backup: String,
    #[command(flatten)]
    pub common: Common,
    /// Engine of this host's server (default: the profile's database.engine).
    #[arg(long, value_enum)]
    pub engine: Option<crate::profile::Engine>,
    /// age secret key file (mode 0600) for an encrypted backup (default: the profile's
    /// identity-file).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Restore into this new directory instead of this host's server: a ready datadir
    /// (physical) or the plain dump files (logical).
    #[arg(long, value_name = "DIR")]
    pub into: Option<PathBuf>,
    /// Replace a server that holds data (a physical restore keeps its old datadir, renamed).
    #[arg(long)]
    pub force: bool,
}

/// The profile (when given) and the destination it and the flags name.
struct Setup {
    profile: Option<crate::profile::Profile>,
    dest: Destination,
}

impl Setup {
    fn backup(&self) -> crate::profile::backup::Backup {
        self.profile
            .as_ref()
            .and_then(|p| p.backup.clone())
            .unwrap_or_default()
    }
    fn imds(&self) -> Option<&str> {
        self.profile
            .as_ref()
            .and_then(|p| p.disks.imds_endpoint.as_deref())
    }
    /// The engine from the flag or the profile.
    fn engine(&self, flag: Option<crate::profile::Engine>) -> Result<Engine> {
        let e = flag
            .or_else(|| self.profile.as_ref().map(|p| p.database.engine))
            .unwrap_or_default();
        crate::apply::db::engine_of(&e).ok_or_else(|| {
            crate::exit::Failure::Usage(
                "which database? pass --engine or a profile with database.engine".into(),
            )
            .into()
        })
    }
}

/// Load the profile (exit 2 with its errors) and resolve the destination.
fn setup(ctx: &Ctx, c: &Common) -> Result<std::result::Result<Setup, i32>> {
    let profile = match &c.profile {
        None => None,
        Some(p) => match crate::profile::load(p)? {
            Ok(p) => Some(p),
            Err(errs) => return Ok(Err(super::profile::report_errors(ctx, &errs))),
        },
    };
    let base = match profile.as_ref().and_then(|p| p.backup.as_ref()) {
        None => None,
        Some(b) => Some(crate::backup::open::destination(b)?),
    };
    let dest = c.dest.resolve(base)?;
    Ok(Ok(Setup { profile, dest }))
}

/// Progress lines on stderr: plain in text mode, as log lines in JSON mode (stdout carries the
/// result document).
fn sayer(ctx: &Ctx) -> impl FnMut(String) + '_ {
    move |line: String| {
        if ctx.output == OutputFormat::Text {
            crate::errln!("{line}");
        } else {
            tracing::info!("{line}");
        }
    }
}

/// What `dbhost status` says about backups: the last backup and verify runs, the timers.
pub fn status_json(ctx: &Ctx) -> serde_json::Value {
    let read = |what: &str| -> serde_json::Value {
        std::fs::read(
            ctx.host
                .state_dir()
                .join(format!("backup-last-{what}.json")),
        )
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null)
    };
    let timers: Vec<String> = [
        crate::backup::schedule::BACKUP_UNIT,
        crate::backup::schedule::VERIFY_UNIT,
    ]
    .iter()
    .map(|u| format!("{u}.timer"))
    .filter(|t| {
        ctx.host
            .etc(&format!("systemd/system/timers.target.wants/{t}"))
            .exists()
    })
    .collect();
    serde_json::json!({"last_backup": read("backup"), "last_verify": read("verify"), "timers": timers})
}

/// The text form of [`status_json`].
pub fn status_text(v: &serde_json::Value) {
    crate::outln!("backups:");
    for (k, label) in [
        ("last_backup", "last backup"),
        ("last_verify", "last verify"),
    ] {
        let r = &v[k];
        if r.is_null() {
            crate::outln!("  {label}: none recorded");
            continue;
        }
        let ok = r["ok"].as_bool() == Some(true);
        crate::outln!(
            "  {label}: {} {} at {} to {}{}",
            if ok { "OK" } else { "FAILED" },
            r["id"].as_str().unwrap_or("-"),
            r["finished"].as_str().unwrap_or("?"),
            r["destination"].as_str().unwrap_or("?"),
            r["error"]
                .as_str()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    let timers: Vec<&str> = v["timers"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
        .unwrap_or_default();
    crate::outln!(
        "  timers: {}",
        if timers.is_empty() {
            "none".to_string()
        } else {
            timers.join(", ")
        }
    );
}

/// Record the outcome of a backup or verify run for `dbhost status`.
fn record_last(ctx: &Ctx, what: &str, v: serde_json::Value) {
    let _ = std::fs::create_dir_all(ctx.host.state_dir());
    let p = ctx
        .host
        .state_dir()
        .join(format!("backup-last-{what}.json"));
    if let Ok(text) = serde_json::to_vec_pretty(&v) {
        if let Err(e) = crate::host::atomic_write(&p, &text, 0o644) {
            tracing::warn!("recording the {what} result in {}: {e:#}", p.display());
        }
    }
}

pub fn run(ctx: &Ctx, a: BackupArgs) -> Result<i32> {
    match a.cmd {
        None => run_take(ctx, a.take),
        Some(BackupCmd::List(c)) => run_list(ctx, c),
        Some(BackupCmd::Verify(v)) => run_verify(ctx, v),
        Some(BackupCmd::Prune(p)) => run_prune(ctx, p),
    }
}

fn run_take(ctx: &Ctx, a: TakeArgs) -> Result<i32> {
    ctx.require_live("backup")?;
    let s = match setup(ctx, &a.common)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let engine = s.engine(a.engine)?;
    let b = s.backup();
    let _lock = super::apply::take_named_lock(ctx, "dbhost-backup.lock")?;
    let store = open_destination(ctx, &s.dest, s.imds())?;
    let compression = a.compression.unwrap_or(b.compression);
    let opts = take::Options {
        kind: a.kind.unwrap_or(b.kind),
        encoding: Encoding {
            compression,
            level: a.compression_level.or(b.compression_level),
            threads: 0,
            recipients: if a.encrypt_to.is_empty() {
                b.encrypt_to.clone()
            } else {
                a.encrypt_to.clone()
            },
        },
        parallel: a.parallel.or(b.parallel).unwrap_or(2),
        expected: a.expected_size.map(|s| s.0),
        concurrency: a.upload_concurrency.max(1),
    };
    let exec = RealExec;
    let inst = crate::db::engine::discover(&ctx.host, &exec, engine)?;
    let rt = crate::net::runtime()?;
    let env = Env {
        host: &ctx.host,
        exec: &exec,
        rt: &rt,
        store: &store,
        now: &crate::backup::open::now,
        hostname: take::hostname(&ctx.host),
    };
    let mut say = sayer(ctx);
    let res = take::take(&env, &inst, &opts, &mut say);
    record_last(
        ctx,
        "backup",
        match &res {
            Ok(m) => serde_json::json!({"ok": true, "id": m.id, "destination": store.name,
                "finished": m.finished, "stored_bytes": m.stored_bytes()}),
            Err(e) => serde_json::json!({"ok": false, "destination": store.name,
                "finished": crate::backup::manifest::rfc3339(crate::backup::open::now()), "error": format!("{e:#}")}),
        },
    );
    let m = res?;
    match ctx.output {
        OutputFormat::Json => super::output::print_json(&m)?,
        OutputFormat::Text => crate::outln!("{}", m.id),
    }
    Ok(crate::exit::OK)
}

fn run_list(ctx: &Ctx, c: Common) -> Result<i32> {
    let s = match setup(ctx, &c)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let store = open_destination(ctx, &s.dest, s.imds())?;
    let entries = crate::net::block_on(catalog::scan(&store))??;
    let rows: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            let m = e.manifest.as_ref();
            serde_json::json!({
                "id": e.id,
                "complete": e.complete(),
                "engine": m.map(|m| &m.engine),
                "kind": m.map(|m| m.kind.as_str()),
                "finished": m.map(|m| &m.finished),
                "stored_bytes": m.map(|m| m.stored_bytes()),
                "plain_bytes": m.map(|m| m.plain_bytes()),
                "encrypted": m.map(|m| m.encryption.is_some()),
                "verify": e.verify.as_ref().map(|v| serde_json::json!({
                    "ok": v.ok, "verified": v.verified, "error": v.error})),
                "problem": e.problem,
            })
        })
        .collect();
    match ctx.output {
        OutputFormat::Json => super::output::print_json(&serde_json::json!({
            "destination": store.name, "backups": rows}))?,
        OutputFormat::Text => {
            crate::outln!("{}:", store.name);
            if entries.is_empty() {
                crate::outln!("  (no backups)");
            }
            for e in &entries {
                crate::outln!("  {}", list_line(e));
            }
        }
    }
    Ok(crate::exit::OK)
}

/// One line of `backup list`.
fn list_line(e: &catalog::Entry) -> String {
    match &e.manifest {
        None => format!(
            "{}  PARTIAL ({})",
            e.id,
            e.problem
                .as_deref()
                .unwrap_or("no manifest: interrupted or failed")
        ),
        Some(m) => {
            let v = match &e.verify {
                None => "not verified".to_string(),
                Some(v) if v.ok => format!("verified {}", v.verified),
                Some(v) => format!("VERIFY FAILED {}", v.verified),
            };
            format!(
                "{}  {} {} {}  {} ({} plain){}  {v}",
                e.id,
                m.engine,
                m.engine_version,
                m.kind.as_str(),
                human(m.stored_bytes()),
                human(m.plain_bytes()),
                if m.encryption.is_some() {
                    " encrypted"
                } else {
                    ""
                }
            )
        }
    }
}

/// One backup picked from the destination, with what restoring or verifying it needs.
struct Selected {
    s: Setup,
    store: Store,
    rt: tokio::runtime::Runtime,
    entry: catalog::Entry,
    ids: Vec<age::x25519::Identity>,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl Selected {
    fn env<'a>(&'a self, ctx: &'a Ctx, exec: &'a RealExec) -> Env<'a> {
        Env {
            host: &ctx.host,
            exec,
            rt: &self.rt,
            store: &self.store,
            now: &crate::backup::open::now,
            hostname: take::hostname(&ctx.host),
        }
    }
}

/// Profile, keys, lock, destination, and the backup `which` names.
fn select_one(
    ctx: &Ctx,
    c: &Common,
    which: &str,
    identity: Option<&PathBuf>,
) -> Result<std::result::Result<Selected, i32>> {
    let s = match setup(ctx, c)? {
        Ok(s) => s,
        Err(code) => return Ok(Err(code)),
    };
    let id_file = identity
        .cloned()
        .or(s.backup().identity_file.as_ref().map(PathBuf::from));
    let ids = crate::backup::open::identities(&ctx.host, id_file.as_deref())?;
    let lock = super::apply::take_named_lock(ctx, "dbhost-backup.lock")?;
    let store = open_destination(ctx, &s.dest, s.imds())?;
    let rt = crate::net::runtime()?;
    let entries = rt.block_on(catalog::scan(&store))?;
    let entry = restore::select(&entries, which)?.clone();
    Ok(Ok(Selected {
        s,
        store,
        rt,
        entry,
        ids,
        _lock: lock,
    }))
}

pub fn run_restore(ctx: &Ctx, a: RestoreArgs) -> Result<i32> {
    ctx.require_live("restore")?;
    let sel = match select_one(ctx, &a.common, &a.backup, a.identity.as_ref())? {
        Ok(sel) => sel,
        Err(code) => return Ok(code),
    };
    let Selected {
        s, entry: e, ids, ..
    } = &sel;
    let m = e.manifest.clone().expect("select returns complete backups");
    let exec = RealExec;
    let env = sel.env(ctx, &exec);
    let mut say = sayer(ctx);
    say(format!(
        "restoring {} ({} {} {}, {}{})",
        m.id,
        m.engine,
        m.engine_version,
        m.kind.as_str(),
        human(m.stored_bytes()),
        match &e.verify {
            Some(v) if v.ok => format!(", verified {}", v.verified),
            Some(_) => ", its last verify FAILED".into(),
            None => ", not verified".into(),
        }
    ));
    let keys = restore::Keys { identities: ids };
    let v = match &a.into {
        Some(dir) => {
            let d = ctx.host.path(dir);
            restore::to_dir(&env, &m, &keys, &d, &mut say)?;
            serde_json::json!({"id": m.id, "into": dir})
        }
        None => {
            let engine = s.engine(a.engine)?;
            let inst = crate::db::engine::discover(&ctx.host, &exec, engine)?;
            let r = restore::to_host(&env, &inst, &m, &keys, a.force, &mut say)?;
            let proof = verify::compare_with_record(&env, &inst, e.verify.as_ref())?;
            say(format!("  {proof}"));
            let mut v = serde_json::to_value(&r)?;
            v["proof"] = proof.into();
            v
        }
    };
    match ctx.output {
        OutputFormat::Json => super::output::print_json(&v)?,
        OutputFormat::Text => crate::outln!("restored {}", m.id),
    }
    Ok(crate::exit::OK)
}

/// Where `verify` puts its throwaway server: on the data filesystem when the profile's engine
/// is found there (room for a datadir), else under dbhost's state directory.
fn work_dir(ctx: &Ctx, s: &Setup, flag: Option<&PathBuf>, id: &str) -> PathBuf {
    if let Some(d) = flag {
        return ctx.host.path(d).join(format!("dbhost-verify-{id}"));
    }
    let beside = s
        .engine(None)
        .ok()
        .and_then(|e| crate::db::engine::discover(&ctx.host, &RealExec, e).ok())
        .and_then(|i| {
            i.datadir
                .parent()
                .map(|p| p.join(format!(".dbhost-verify-{id}")))
        });
    match beside {
        Some(p) => ctx.host.path(p),
        None => ctx.host.state_dir().join("verify").join(id),
    }
}

fn run_verify(ctx: &Ctx, a: VerifyArgs) -> Result<i32> {
    ctx.require_live("backup verify")?;
    let sel = match select_one(ctx, &a.common, &a.backup, a.identity.as_ref())? {
        Ok(sel) => sel,
        Err(code) => return Ok(code),
    };
    let Selected { s, store, ids, .. } = &sel;
    let m = sel
        .entry
        .manifest
        .clone()
        .expect("select returns complete backups");
    let exec = RealExec;
    let env = sel.env(ctx, &exec);
    let mut say = sayer(ctx);
    say(format!(
        "verifying {} ({} {} {})",
        m.id,
        m.engine,
        m.engine_version,
        m.kind.as_str()
    ));
    let work = work_dir(ctx, s, a.work_dir.as_ref(), &m.id);
    let rec = verify::verify(
        &env,
        &m,
        &restore::Keys { identities: ids },
        &work,
        &mut say,
    );
    record_last(
        ctx,
        "verify",
        match &rec {
            Ok(r) => serde_json::json!({"ok": r.ok, "id": r.id, "destination": store.name,
                "finished": r.verified, "error": r.error}),
            Err(e) => serde_json::json!({"ok": false, "id": m.id, "destination": store.name,
                "finished": crate::backup::manifest::rfc3339(crate::backup::open::now()),
                "error": format!("{e:#}")}),
        },
    );
    let rec = rec?;
    match ctx.output {
        OutputFormat::Json => super::output::print_json(&rec)?,
        OutputFormat::Text => {
            for c in &rec.checks {
                crate::outln!("  ok: {c}");
            }
            match &rec.error {
                None => crate::outln!(
                    "{} verified: it restores and its {} tables check out",
                    rec.id,
                    rec.tables.len()
                ),
                Some(err) => crate::outln!("{} FAILED verification: {err}", rec.id),
            }
        }
    }
    if rec.ok {
        Ok(crate::exit::OK)
    } else {
        Err(anyhow::anyhow!(
            "backup {} failed verification: {}",
            rec.id,
            rec.error.unwrap_or_default()
        ))
    }
}

fn run_prune(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    if !a.dry_run {
        ctx.require_live("backup prune")?;
    }
    let s = match setup(ctx, &a.common)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let mut policy = s.backup().retention;
    policy.keep_last = a.keep_last.or(policy.keep_last);
    policy.keep_daily = a.keep_daily.or(policy.keep_daily);
    policy.keep_weekly = a.keep_weekly.or(policy.keep_weekly);
    let _lock = if a.dry_run {
        None
    } else {
        Some(super::apply::take_named_lock(ctx, "dbhost-backup.lock")?)
    };
    let store = open_destination(ctx, &s.dest, s.imds())?;
    let rt = crate::net::runtime()?;
    let entries = rt.block_on(catalog::scan(&store))?;
    let items: Vec<retention::Item> = entries
        .iter()
        .filter(|e| e.problem.is_none())
        .filter_map(|e| {
            Some(retention::Item {
                id: e.id.clone(),
                time: e.time()?,
                complete: e.complete(),
                verified_ok: e.verified_ok(),
            })
        })
        .collect();
    let d = retention::decide(
        &items,
        &policy,
        crate::backup::open::now(),
        take::STALE_PARTIAL_SECS,
    );
    let mut deleted = Vec::new();
    if !a.dry_run {
        for id in &d.delete {
            rt.block_on(catalog::delete(&store, id))?;
            deleted.push(id.clone());
        }
    }
    match ctx.output {
        OutputFormat::Json => super::output::print_json(&serde_json::json!({
            "destination": store.name, "dry_run": a.dry_run, "keep": d.keep,
            "delete": d.delete, "deleted": deleted}))?,
        OutputFormat::Text => {
            for (id, why) in &d.keep {
                crate::outln!("keep   {id}  ({})", why.join(", "));
            }
            for id in &d.delete {
                crate::outln!("{} {id}", if a.dry_run { "would delete" } else { "delete" });
            }
        }
    }
    Ok(crate::exit::OK)
}
