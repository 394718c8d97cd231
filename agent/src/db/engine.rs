//! Engines `mysql`, `mariadb`, `postgresql`: find the effective datadir and systemd unit from
//! configuration (and from the running server when it answers), render the configuration switch
//! as drop-ins, and health-check with a real query over the local socket ([`super::local`]).
//! Service control lives in [`super::service`], the configuration parsers in [`super::cnf`]
//! (both re-exported here). Facts: GENERALIZE-DATADIR-TUNING.md B1–B5.
//!
//! Everything here is a function of the host tree (`Host`) and of other processes (`Exec`:
//! programs and database servers), so it is tested with fake trees, programs and servers. Paths
//! in results are in-host absolute paths ("/var/lib/mysql"); map them with `host.path(..)` before
//! touching files.

pub use super::cnf::{
    parse_cnf_text, pg_conf_value, pg_set_data_directory, read_mysql_config, resolve, trim_slash,
    Cnf, CnfLine, CnfSetting, SERVER_GROUPS,
};
pub use super::service::{
    activating_sockets, active_sockets, is_active, is_stopped, start, stop, Wait,
};
use crate::host::{CommandSpec, Exec, Host};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Mysql,
    Mariadb,
    Postgresql,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Mysql => "mysql",
            Engine::Mariadb => "mariadb",
            Engine::Postgresql => "postgresql",
        }
    }
    fn is_mysql_family(self) -> bool {
        matches!(self, Engine::Mysql | Engine::Mariadb)
    }
}

/// Where the datadir value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Source {
    /// Asked the running server.
    Runtime,
    /// A configuration file set it (last one wins).
    Config { file: PathBuf, line: usize },
    /// Nothing set it: the packaging default.
    Default,
}

/// A Debian PostgreSQL cluster (`/etc/postgresql/<version>/<cluster>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgCluster {
    pub version: String,
    pub cluster: String,
    /// In-host path of its postgresql.conf.
    pub conf: PathBuf,
    pub port: u16,
}

/// A database installation found on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub engine: Engine,
    /// Effective datadir (in-host absolute, no trailing slash).
    pub datadir: PathBuf,
    pub source: Source,
    /// What the configuration files say (may differ from runtime before a restart).
    pub config_datadir: PathBuf,
    pub unit: String,
    /// MySQL/MariaDB: the server socket from the configuration, if set.
    pub socket: Option<PathBuf>,
    /// MySQL/MariaDB: the include directory where dbhost's drop-in goes.
    pub dropin_dir: Option<PathBuf>,
    pub pg: Option<PgCluster>,
}

fn unit_exists(host: &Host, unit: &str) -> bool {
    [
        "/etc/systemd/system",
        "/lib/systemd/system",
        "/usr/lib/systemd/system",
    ]
    .iter()
    .any(|d| host.path(Path::new(d).join(unit)).exists())
}

fn mysql_unit(host: &Host, engine: Engine) -> String {
    let candidates: &[&str] = match engine {
        Engine::Mariadb => &["mariadb.service", "mysql.service", "mysqld.service"],
        _ => &["mysql.service", "mysqld.service", "mariadb.service"],
    };
    candidates
        .iter()
        .find(|u| unit_exists(host, u))
        .unwrap_or(&candidates[0])
        .to_string()
}

/// The include dir for dbhost's drop-in: the engine's own `*.conf.d` if the config includes it,
/// else the last included dir.
fn pick_dropin_dir(engine: Engine, cnf: &Cnf) -> Option<PathBuf> {
    let want = match engine {
        Engine::Mariadb => "mariadb.conf.d",
        _ => "mysql.conf.d",
    };
    let norm = |p: &PathBuf| trim_slash(&p.to_string_lossy());
    cnf.includedirs
        .iter()
        .map(norm)
        .find(|d| d.ends_with(want))
        .or_else(|| cnf.includedirs.last().map(norm))
}

/// The statement that asks a server for its datadir.
fn datadir_sql(inst: &Instance) -> &'static str {
    if inst.pg.is_some() {
        "SHOW data_directory"
    } else {
        "SELECT @@datadir"
    }
}

/// Ask the running server for its datadir; `None` when it does not answer.
pub fn runtime_datadir(host: &Host, exec: &dyn Exec, inst: &Instance) -> Option<PathBuf> {
    let v = super::local::scalar(host, exec, inst, datadir_sql(inst)).ok()??;
    v.starts_with('/').then(|| trim_slash(&v))
}

fn discover_mysql(host: &Host, exec: &dyn Exec, engine: Engine, ask: bool) -> Result<Instance> {
    let cnf = read_mysql_config(host)?;
    let (config_datadir, source) = match cnf.server_value("datadir") {
        Some(CnfSetting {
            value: Some(v),
            file,
            line,
            ..
        }) => (
            trim_slash(v),
            Source::Config {
                file: file.clone(),
                line: *line,
            },
        ),
        // Debian's MariaDB from 1:11.8.6-5 defaults to /var/lib/mariadb (B1).
        _ => {
            let d = if engine == Engine::Mariadb
                && !host.path("/var/lib/mysql").is_dir()
                && host.path("/var/lib/mariadb").is_dir()
            {
                "/var/lib/mariadb"
            } else {
                "/var/lib/mysql"
            };
            (PathBuf::from(d), Source::Default)
        }
    };
    let socket = cnf
        .server_value("socket")
        .and_then(|s| s.value.as_deref())
        .map(PathBuf::from);
    let mut inst = Instance {
        engine,
        datadir: config_datadir.clone(),
        source,
        config_datadir,
        unit: mysql_unit(host, engine),
        socket,
        dropin_dir: pick_dropin_dir(engine, &cnf),
        pg: None,
    };
    if ask && is_active(exec, &inst.unit) {
        if let Some(d) = runtime_datadir(host, exec, &inst) {
            inst.datadir = d;
            inst.source = Source::Runtime;
        }
    }
    Ok(inst)
}

/// Debian clusters under `/etc/postgresql/<version>/<cluster>/postgresql.conf`, sorted.
pub fn pg_clusters(host: &Host) -> Vec<PgCluster> {
    let mut out = Vec::new();
    let base = host.etc("postgresql");
    let Ok(vers) = fs::read_dir(&base) else {
        return out;
    };
    for v in vers.flatten() {
        let Ok(cls) = fs::read_dir(v.path()) else {
            continue;
        };
        for c in cls.flatten() {
            let conf = c.path().join("postgresql.conf");
            if !conf.is_file() {
                continue;
            }
            let version = v.file_name().to_string_lossy().into_owned();
            let cluster = c.file_name().to_string_lossy().into_owned();
            let text = fs::read_to_string(&conf).unwrap_or_default();
            let port = pg_conf_value(&text, "port")
                .and_then(|(p, _)| p.parse().ok())
                .unwrap_or(5432);
            out.push(PgCluster {
                conf: PathBuf::from(format!(
                    "/etc/postgresql/{version}/{cluster}/postgresql.conf"
                )),
                version,
                cluster,
                port,
            });
        }
    }
    out.sort_by(|a, b| (&a.version, &a.cluster).cmp(&(&b.version, &b.cluster)));
    out
}

fn discover_pg(host: &Host, exec: &dyn Exec, ask: bool) -> Result<Instance> {
    let clusters = pg_clusters(host);
    let pg = match clusters.as_slice() {
        [] => bail!(
            "no PostgreSQL cluster found under {} (expected <version>/<cluster>/postgresql.conf)",
            host.etc("postgresql").display()
        ),
        [one] => one.clone(),
        many => bail!(
            "{} PostgreSQL clusters found ({}); dbhost relocates exactly one",
            many.len(),
            many.iter()
                .map(|c| format!("{}/{}", c.version, c.cluster))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let text = fs::read_to_string(host.path(&pg.conf))
        .with_context(|| format!("reading {}", pg.conf.display()))?;
    let (config_datadir, source) = match pg_conf_value(&text, "data_directory") {
        Some((v, line)) => (
            trim_slash(&v),
            Source::Config {
                file: pg.conf.clone(),
                line,
            },
        ),
        None => (
            PathBuf::from(format!("/var/lib/postgresql/{}/{}", pg.version, pg.cluster)),
            Source::Default,
        ),
    };
    let mut inst = Instance {
        engine: Engine::Postgresql,
        datadir: config_datadir.clone(),
        source,
        config_datadir,
        unit: format!("postgresql@{}-{}.service", pg.version, pg.cluster),
        socket: None,
        dropin_dir: None,
        pg: Some(pg),
    };
    if ask && is_active(exec, &inst.unit) {
        if let Some(d) = runtime_datadir(host, exec, &inst) {
            inst.datadir = d;
            inst.source = Source::Runtime;
        }
    }
    Ok(inst)
}

/// Find the installation of `engine`: datadir (runtime preferred when the server answers on a
/// live host), unit, drop-in location.
pub fn discover(host: &Host, exec: &dyn Exec, engine: Engine) -> Result<Instance> {
    discover_with(host, exec, engine, host.is_live())
}

/// [`discover`], choosing whether to ask a running server (`ask_runtime`); on a replayed or
/// mounted root the server that answers would be this machine's, so `discover` asks only when
/// the host is live.
pub fn discover_with(
    host: &Host,
    exec: &dyn Exec,
    engine: Engine,
    ask_runtime: bool,
) -> Result<Instance> {
    match engine {
        Engine::Postgresql => discover_pg(host, exec, ask_runtime),
        e => discover_mysql(host, exec, e, ask_runtime),
    }
}

/// The MySQL/MariaDB datadir from configuration alone (an image, a stopped server): `given`,
/// else the option files' `datadir`, else `/var/lib/mysql`. `None` when that directory does not
/// exist (no server installed).
pub fn configured_mysql_datadir(host: &Host, given: Option<&Path>) -> Option<PathBuf> {
    let d = match given {
        Some(d) => d.to_path_buf(),
        None => read_mysql_config(host)
            .ok()
            .and_then(|c| c.server("datadir").map(trim_slash))
            .unwrap_or_else(|| PathBuf::from("/var/lib/mysql")),
    };
    host.path(&d).is_dir().then_some(d)
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Every PostgreSQL data directory of the host: the given list, else each Debian cluster's
/// `data_directory` (or its default), the RHEL layouts (`/var/lib/pgsql/data`,
/// `/var/lib/pgsql/<ver>/data`) and Debian's default tree even without `/etc/postgresql`. Only
/// directories holding `PG_VERSION`.
pub fn pg_datadirs(host: &Host, given: &[PathBuf]) -> Vec<PathBuf> {
    let mut cands: Vec<PathBuf> = given.to_vec();
    if cands.is_empty() {
        for pg in pg_clusters(host) {
            let text = fs::read_to_string(host.path(&pg.conf)).unwrap_or_default();
            cands.push(match pg_conf_value(&text, "data_directory") {
                Some((d, _)) => trim_slash(&d),
                None => PathBuf::from(format!("/var/lib/postgresql/{}/{}", pg.version, pg.cluster)),
            });
        }
        cands.push(PathBuf::from("/var/lib/pgsql/data"));
        for ver in sorted_entries(&host.path("/var/lib/pgsql")) {
            cands.push(host.unroot(&ver.join("data")));
        }
        for ver in sorted_entries(&host.path("/var/lib/postgresql")) {
            for cluster in sorted_entries(&ver) {
                cands.push(host.unroot(&cluster));
            }
        }
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for c in cands {
        if host.path(&c).join("PG_VERSION").is_file() && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// Does `dir` (a host-mapped path) hold a datadir of `engine`? MySQL/MariaDB: a `mysql/`
/// system schema directory plus InnoDB's `ibdata1` or `mysql.ibd`; PostgreSQL: `PG_VERSION`
/// and `global/`. Used to adopt disks that already carry a database.
pub fn looks_like_datadir(engine: Engine, dir: &Path) -> bool {
    match engine {
        Engine::Postgresql => dir.join("PG_VERSION").is_file() && dir.join("global").is_dir(),
        _ => {
            dir.join("mysql").is_dir()
                && (dir.join("ibdata1").is_file() || dir.join("mysql.ibd").is_file())
        }
    }
}

/// What `dbhost status` shows for the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub engine: Engine,
    pub unit: String,
    pub active: bool,
    /// What the configuration says.
    pub config_datadir: PathBuf,
    /// What the running server says (None when it does not answer).
    pub serving_datadir: Option<PathBuf>,
    pub healthy: bool,
}

/// Read-only status: unit state, configured and served datadir, one health query.
pub fn status(host: &Host, exec: &dyn Exec, engine: Engine) -> Result<Status> {
    let inst = discover_with(host, exec, engine, false)?;
    let active = is_active(exec, &inst.unit);
    let healthy = active && answers(host, exec, &inst);
    let serving_datadir = if healthy {
        runtime_datadir(host, exec, &inst)
    } else {
        None
    };
    Ok(Status {
        engine,
        unit: inst.unit,
        active,
        config_datadir: inst.config_datadir,
        serving_datadir,
        healthy,
    })
}

// ---------------------------------------------------------------------------------------------
// rendering the switch

/// A file dbhost writes (in-host path, full content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub content: String,
    pub mode: u32,
}

/// The drop-in's name must sort after every packaged file in the same directory: Ubuntu's MySQL
/// sets `datadir` in `mysql.conf.d/mysqld.cnf`, which sorts after "99-…", so "zz-".
/// (The switch step re-reads the configuration and fails if anything still overrides it, and
/// the health step checks the datadir the server actually serves.)
pub const DROPIN_NAME: &str = "zz-dbhost.cnf";

/// `[mysqld] datadir=` drop-in (the socket is left as configured).
pub fn render_mysql_dropin(new_datadir: &Path) -> String {
    format!(
        "# Written by dbhost: the datadir lives on the data array.\n[mysqld]\ndatadir = {}\n",
        new_datadir.display()
    )
}

/// systemd drop-in: never start without the data filesystem; MariaDB's sandbox (B3) lets the
/// server write only outside /home, /root, /run/user and read-only /usr, /boot, /etc.
pub fn render_systemd_dropin(engine: Engine, new_datadir: &Path) -> String {
    let mut s = format!(
        "# Written by dbhost: the database must never start without its data filesystem.\n\
         [Unit]\nRequiresMountsFor={}\n",
        new_datadir.display()
    );
    if engine.is_mysql_family() {
        let under = |p: &str| new_datadir.starts_with(p);
        let mut svc = String::new();
        if under("/home") || under("/root") || under("/run/user") {
            svc.push_str("ProtectHome=false\n");
        }
        if under("/usr") || under("/boot") || under("/etc") {
            svc.push_str(&format!("ReadWritePaths={}\n", new_datadir.display()));
        }
        if !svc.is_empty() {
            s.push_str("\n[Service]\n");
            s.push_str(&svc);
        }
    }
    s
}

pub const APPARMOR_BEGIN: &str = "# BEGIN dbhost datadir";
pub const APPARMOR_END: &str = "# END dbhost datadir";

/// `/etc/apparmor.d/local/usr.sbin.mysqld` with dbhost's block set to allow `new_datadir`
/// (B2 option b); other lines are kept. `None` removes the block (rollback).
pub fn render_apparmor_local(existing: &str, new_datadir: Option<&Path>) -> String {
    let mut out = String::new();
    let mut inside = false;
    for l in existing.lines() {
        if l.trim() == APPARMOR_BEGIN {
            inside = true;
            continue;
        }
        if l.trim() == APPARMOR_END {
            inside = false;
            continue;
        }
        if !inside {
            out.push_str(l);
            out.push('\n');
        }
    }
    if let Some(d) = new_datadir {
        out.push_str(&format!(
            "{APPARMOR_BEGIN}\n{d}/ r,\n{d}/** rwk,\n{APPARMOR_END}\n",
            d = d.display()
        ));
    }
    out
}

fn apparmor_profile(host: &Host) -> Option<PathBuf> {
    let p = PathBuf::from("/etc/apparmor.d/usr.sbin.mysqld");
    host.path(&p).is_file().then_some(p)
}

/// Every file the switch to `new_datadir` needs, with its full new content.
pub fn render_switch(host: &Host, inst: &Instance, new_datadir: &Path) -> Result<Vec<ConfigFile>> {
    let mut files = Vec::new();
    match inst.engine {
        Engine::Postgresql => {
            let pg = inst
                .pg
                .as_ref()
                .context("PostgreSQL instance without a cluster")?;
            let text = fs::read_to_string(host.path(&pg.conf))
                .with_context(|| format!("reading {}", pg.conf.display()))?;
            let new = if pg_conf_value(&text, "data_directory").map(|v| trim_slash(&v.0))
                == Some(new_datadir.to_path_buf())
            {
                text
            } else {
                pg_set_data_directory(&text, new_datadir)
            };
            files.push(ConfigFile {
                path: pg.conf.clone(),
                content: new,
                mode: 0o644,
            });
        }
        e => {
            let dir = inst.dropin_dir.clone().with_context(|| {
                "the MySQL/MariaDB configuration (/etc/my.cnf, /etc/mysql/my.cnf) has no \
                 !includedir; add one (e.g. !includedir /etc/mysql/conf.d/) so dbhost can \
                 place its drop-in"
                    .to_string()
            })?;
            files.push(ConfigFile {
                path: dir.join(DROPIN_NAME),
                content: render_mysql_dropin(new_datadir),
                mode: 0o644,
            });
            if e == Engine::Mysql && apparmor_profile(host).is_some() {
                let local = PathBuf::from("/etc/apparmor.d/local/usr.sbin.mysqld");
                let existing = fs::read_to_string(host.path(&local)).unwrap_or_default();
                files.push(ConfigFile {
                    content: render_apparmor_local(&existing, Some(new_datadir)),
                    path: local,
                    mode: 0o644,
                });
            }
        }
    }
    files.push(ConfigFile {
        path: PathBuf::from(format!("/etc/systemd/system/{}.d/dbhost.conf", inst.unit)),
        content: render_systemd_dropin(inst.engine, new_datadir),
        mode: 0o644,
    });
    Ok(files)
}

/// Directories that must exist at the old location after the old datadir is renamed:
/// Ubuntu/Debian MySQL's `mysql-systemd-start` requires `/var/lib/mysql/mysql` (B2 §5); a socket
/// configured inside the old datadir (RHEL, B4) needs its directory.
pub fn placeholder_dirs(host: &Host, inst: &Instance, old: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if inst.engine.is_mysql_family() {
        if inst.engine == Engine::Mysql
            && host.path("/usr/share/mysql/mysql-systemd-start").exists()
        {
            v.push(PathBuf::from("/var/lib/mysql"));
            v.push(PathBuf::from("/var/lib/mysql/mysql"));
        }
        if let Some(sock) = &inst.socket {
            if sock.starts_with(old) {
                if let Some(parent) = sock.parent() {
                    let mut p = PathBuf::new();
                    for c in parent.components() {
                        p.push(c);
                        if p.starts_with(old) && !v.contains(&p) {
                            v.push(p.clone());
                        }
                    }
                }
            }
        }
    }
    v
}

/// Commands to run after the configuration files changed.
pub fn reload_commands(host: &Host, inst: &Instance) -> Vec<CommandSpec> {
    let mut v = vec![CommandSpec::new("systemctl").arg("daemon-reload")];
    if inst.engine == Engine::Mysql && apparmor_profile(host).is_some() && apparmor_enabled(host) {
        v.push(CommandSpec::new("apparmor_parser").args(["-r", "/etc/apparmor.d/usr.sbin.mysqld"]));
    }
    v
}

fn apparmor_enabled(host: &Host) -> bool {
    crate::host::read_trimmed(&host.sys("module/apparmor/parameters/enabled"))
        .is_some_and(|v| v.starts_with('Y'))
}

/// Before a planned stop, while the server still serves: have it write its dirty pages now, so
/// the shutdown (inside the downtime window) has little left to flush. MySQL/MariaDB:
/// `innodb_max_dirty_pages_pct = 0`, then wait (bounded by `max_wait`) until the dirty page count
/// is small or stops falling; the setting is not persisted and goes with the restart.
/// PostgreSQL: `CHECKPOINT`. Best effort: a server that refuses only means a slower stop, so
/// this returns what happened as text and never fails the relocation.
pub fn flush_before_stop(
    host: &Host,
    exec: &dyn Exec,
    inst: &Instance,
    max_wait: Duration,
    sleep: fn(Duration),
) -> String {
    let mut session = match super::local::session(host, exec, inst) {
        Ok(s) => s,
        Err(e) => return format!("no flush before the stop ({e:#}); the shutdown flushes"),
    };
    let s = session.as_mut();
    fn q(s: &mut dyn super::client::Session, sql: &str) -> std::result::Result<String, String> {
        s.query(sql)
            .map(|r| r.scalar().unwrap_or("").trim().to_string())
            .map_err(|e| format!("{e:#}"))
    }
    if inst.pg.is_some() {
        let t0 = std::time::Instant::now();
        return match q(s, "CHECKPOINT") {
            Ok(_) => format!(
                "checkpoint before the stop took {:.1} s",
                t0.elapsed().as_secs_f64()
            ),
            Err(e) => format!("no checkpoint before the stop ({e})"),
        };
    }
    let dirty = |s: &mut dyn super::client::Session| -> Option<u64> {
        q(
            s,
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
           WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY'",
        )
        .ok()?
        .parse()
        .ok()
    };
    let Some(before) = dirty(s) else {
        return "no InnoDB dirty page count; the shutdown flushes".into();
    };
    if let Err(e) = q(s, "SET GLOBAL innodb_max_dirty_pages_pct = 0") {
        return format!("dirty pages not flushed before the stop ({e})");
    }
    let t0 = std::time::Instant::now();
    let step = Duration::from_millis(500);
    let (mut now, mut best, mut stalled) = (before, before, 0);
    // Small enough: a few MiB of 16 KiB pages. A steady write load keeps dirtying pages, so
    // stop waiting when the count no longer falls either.
    while now > 256 && stalled < 6 && t0.elapsed() < max_wait {
        sleep(step);
        match dirty(s) {
            Some(n) => {
                now = n;
                if n < best {
                    best = n;
                    stalled = 0;
                } else {
                    stalled += 1;
                }
            }
            None => break,
        }
    }
    format!(
        "InnoDB dirty pages {before} -> {now} in {:.1} s before the stop",
        t0.elapsed().as_secs_f64()
    )
}

/// Does the server answer a real query (`SELECT 1`) over its local socket?
pub fn answers(host: &Host, exec: &dyn Exec, inst: &Instance) -> bool {
    super::local::scalar(host, exec, inst, "SELECT 1").is_ok_and(|v| v.as_deref() == Some("1"))
}

/// A real query over the local socket, retried a bounded number of times; then the server's
/// own datadir must be `expect_datadir` (when given).
pub fn health(
    host: &Host,
    exec: &dyn Exec,
    inst: &Instance,
    expect_datadir: Option<&Path>,
    w: &Wait,
) -> Result<()> {
    let mut last = String::new();
    for i in 0..w.attempts.max(1) {
        match super::local::query(host, exec, inst, "SELECT 1") {
            Ok(r) if r.scalar() == Some("1") => {
                if let Some(want) = expect_datadir {
                    let got = runtime_datadir(host, exec, inst);
                    if got.as_deref() != Some(want) {
                        bail!(
                            "{} answers but serves datadir {:?}, expected {}",
                            inst.unit,
                            got,
                            want.display()
                        );
                    }
                }
                return Ok(());
            }
            Ok(r) => last = format!("`SELECT 1` answered {:?}", r.scalar()),
            Err(e) => last = format!("{e:#}"),
        }
        if i + 1 < w.attempts {
            (w.sleep)(w.delay);
        }
    }
    bail!(
        "health check (`SELECT 1` on {} over its local socket) failed after {} attempts: {last}",
        inst.unit,
        w.attempts
    )
}

#[cfg(test)]
mod tests;
