//! Engines `mysql`, `mariadb`, `postgresql`: find the effective datadir and systemd unit from
//! configuration (and from the running server when it answers), render the configuration switch
//! as drop-ins, stop/start through systemctl, and health-check with a real query over the local
//! socket. Facts: GENERALIZE-DATADIR-TUNING.md B1–B5.
//!
//! Everything here is a function of the host tree (`Host`) and of external programs (`Exec`), so
//! it is tested with fake trees and fake programs. Paths in results are in-host absolute paths
//! ("/var/lib/mysql"); map them with `host.path(..)` before touching files.

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

// ---------------------------------------------------------------------------------------------
// my.cnf

/// One `key = value` in an option group, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CnfSetting {
    pub group: String,
    pub key: String,
    pub value: Option<String>,
    pub file: PathBuf,
    pub line: usize,
}

/// All settings of a my.cnf tree in reading order, and every `!includedir` seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cnf {
    pub settings: Vec<CnfSetting>,
    pub includedirs: Vec<PathBuf>,
    pub files: Vec<PathBuf>,
}

/// Groups the server reads (GENERALIZE-DATADIR-TUNING.md B2/B3).
pub const SERVER_GROUPS: &[&str] = &["mysqld", "server", "mariadb", "mariadbd"];

impl Cnf {
    /// Last value of `key` in the server groups (later files override earlier ones).
    pub fn server_value(&self, key: &str) -> Option<&CnfSetting> {
        self.settings
            .iter()
            .rev()
            .find(|s| s.key == key && SERVER_GROUPS.contains(&s.group.as_str()))
    }
}

/// Follow symlinks of an in-host path inside the host root (absolute link targets are
/// re-rooted: /etc/mysql/my.cnf -> /etc/alternatives/my.cnf -> /etc/mysql/mariadb.cnf).
pub fn resolve(host: &Host, abs: &Path) -> PathBuf {
    let mut cur = abs.to_path_buf();
    for _ in 0..40 {
        match fs::read_link(host.path(&cur)) {
            Ok(t) if t.is_absolute() => cur = t,
            Ok(t) => cur = cur.parent().unwrap_or(Path::new("/")).join(t),
            Err(_) => break,
        }
    }
    cur
}

/// Parse one option file's text (pure). `!include`/`!includedir` lines are returned as
/// directives in order with the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CnfLine {
    Setting {
        group: String,
        key: String,
        value: Option<String>,
        line: usize,
    },
    Include(PathBuf),
    IncludeDir(PathBuf),
}

pub fn parse_cnf_text(text: &str) -> Vec<CnfLine> {
    let mut out = Vec::new();
    let mut group = String::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some(rest) = l.strip_prefix("!includedir") {
            out.push(CnfLine::IncludeDir(PathBuf::from(rest.trim())));
            continue;
        }
        if let Some(rest) = l.strip_prefix("!include") {
            out.push(CnfLine::Include(PathBuf::from(rest.trim())));
            continue;
        }
        if l.starts_with('[') {
            if let Some(end) = l.find(']') {
                group = l[1..end].trim().to_ascii_lowercase();
            }
            continue;
        }
        let l = cut_comment(l);
        let (k, v) = match l.split_once('=') {
            Some((k, v)) => (k.trim(), Some(cnf_value(v))),
            None => (l.trim(), None),
        };
        out.push(CnfLine::Setting {
            group: group.clone(),
            key: k.replace('-', "_").to_ascii_lowercase(),
            value: v,
            line: i + 1,
        });
    }
    out
}

/// An option line without its comment, as the server reads it (mysys `my_default.c`): the
/// first `#` outside single or double quotes starts the comment (`\` escapes a quote inside
/// quotes).
fn cut_comment(l: &str) -> &str {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in l.char_indices() {
        if (c == '\'' || c == '"') && !escaped {
            match quote {
                None => quote = Some(c),
                Some(q) if q == c => quote = None,
                Some(_) => {}
            }
        }
        if quote.is_none() && c == '#' {
            return &l[..i];
        }
        escaped = quote.is_some() && c == '\\' && !escaped;
    }
    l
}

/// A value as the server reads it: trimmed; one pair of matching quotes around it removed;
/// the escapes `\n \t \r \b \s \" \' \\` decoded (any other backslash is kept).
fn cnf_value(v: &str) -> String {
    let mut v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            v = &v[1..v.len() - 1];
            break;
        }
    }
    let mut out = String::with_capacity(v.len());
    let mut it = v.chars().peekable();
    while let Some(c) = it.next() {
        let next = if c == '\\' { it.peek().copied() } else { None };
        let decoded = match next {
            Some('n') => '\n',
            Some('t') => '\t',
            Some('r') => '\r',
            Some('b') => '\u{8}',
            Some('s') => ' ',
            Some(e @ ('"' | '\'' | '\\')) => e,
            _ => {
                out.push(c);
                continue;
            }
        };
        it.next();
        out.push(decoded);
    }
    out
}

/// A value written so the server reads it back unchanged: quoted, with `\` and `"` escaped,
/// when it holds a character the option-file syntax gives a meaning (`#`, quotes, `\`,
/// surrounding whitespace); plain otherwise.
fn cnf_quote(v: &str) -> String {
    if !v.is_empty() && v.trim() == v && !v.contains(['#', '"', '\'', '\\']) {
        return v.to_string();
    }
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

fn read_cnf(host: &Host, abs: &Path, cnf: &mut Cnf, depth: usize) -> Result<()> {
    if depth > 10 {
        bail!("{}: !include nesting deeper than 10", abs.display());
    }
    let real = resolve(host, abs);
    let p = host.path(&real);
    let text = match fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", abs.display())),
    };
    if cnf.files.contains(&real) {
        return Ok(()); // include loop
    }
    cnf.files.push(real.clone());
    for l in parse_cnf_text(&text) {
        match l {
            CnfLine::Setting {
                group,
                key,
                value,
                line,
            } => cnf.settings.push(CnfSetting {
                group,
                key,
                value,
                file: real.clone(),
                line,
            }),
            CnfLine::Include(f) => read_cnf(host, &f, cnf, depth + 1)?,
            CnfLine::IncludeDir(d) => {
                cnf.includedirs.push(d.clone());
                let dir = host.path(resolve(host, &d));
                let mut names: Vec<String> = match fs::read_dir(&dir) {
                    Ok(rd) => rd
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.ends_with(".cnf"))
                        .collect(),
                    Err(_) => Vec::new(),
                };
                names.sort();
                for n in names {
                    read_cnf(host, &d.join(n), cnf, depth + 1)?;
                }
            }
        }
    }
    Ok(())
}

/// The option files a MySQL/MariaDB server reads, in order (later overrides earlier).
pub fn read_mysql_config(host: &Host) -> Result<Cnf> {
    let mut cnf = Cnf::default();
    for f in ["/etc/my.cnf", "/etc/mysql/my.cnf"] {
        read_cnf(host, Path::new(f), &mut cnf, 0)?;
    }
    Ok(cnf)
}

fn trim_slash(p: &str) -> PathBuf {
    let t = p.trim().trim_end_matches('/');
    PathBuf::from(if t.is_empty() { "/" } else { t })
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

/// Client program for queries over the local socket.
fn mysql_client(host: &Host, engine: Engine) -> &'static str {
    if engine == Engine::Mariadb && host.path("/usr/bin/mariadb").exists() {
        "mariadb"
    } else {
        "mysql"
    }
}

fn mysql_query(host: &Host, engine: Engine, sql: &str) -> CommandSpec {
    CommandSpec::new(mysql_client(host, engine)).args(["-NBe", sql])
}

fn pg_query(pg: &PgCluster, sql: &str) -> CommandSpec {
    CommandSpec::new("runuser").args([
        "-u",
        "postgres",
        "--",
        "psql",
        "-X",
        "-A",
        "-t",
        "-q",
        "-p",
        &pg.port.to_string(),
        "-c",
        sql,
    ])
}

/// Ask the running server for its datadir; `None` when it does not answer.
pub fn runtime_datadir(host: &Host, exec: &dyn Exec, inst: &Instance) -> Option<PathBuf> {
    let cmd = match (&inst.pg, inst.engine) {
        (Some(pg), Engine::Postgresql) => pg_query(pg, "SHOW data_directory"),
        (None, e) if e.is_mysql_family() => mysql_query(host, e, "SELECT @@datadir"),
        _ => return None,
    };
    let out = exec.output(&cmd).ok()?;
    let v = out.stdout.trim();
    (out.status == 0 && v.starts_with('/')).then(|| trim_slash(v))
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

/// The name of a `name [=] value` line of postgresql.conf and the rest after the separator
/// (PostgreSQL's guc-file.l: a name is letters, digits, `_` and `.`, not starting with a
/// digit); `None` for comments, blank lines and lines that are no assignment.
fn pg_conf_name(line: &str) -> Option<(&str, &str)> {
    let l = line.trim_start();
    let end = l
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(l.len());
    let (name, rest) = l.split_at(end);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let after = rest.trim_start();
    let value = match after.strip_prefix('=') {
        Some(v) => v,
        None if after.len() < rest.len() => after,
        None => return None,
    };
    Some((name, value.trim_start()))
}

/// A value as PostgreSQL reads it: a quoted string (`''` and backslash escapes decoded) or an
/// unquoted word, ending at whitespace or a comment.
fn pg_conf_unquote(v: &str) -> String {
    let Some(rest) = v.strip_prefix('\'') else {
        let end = v.find(|c: char| c == '#' || c.is_whitespace());
        return v[..end.unwrap_or(v.len())].to_string();
    };
    let mut out = String::new();
    let mut it = rest.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\'' if it.peek() == Some(&'\'') => {
                it.next();
                out.push('\'');
            }
            '\'' => break,
            '\\' => match it.next() {
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{c}'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(d @ '0'..='7') => {
                    let mut n = d.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match it.peek().and_then(|c| c.to_digit(8)) {
                            Some(x) => {
                                n = n * 8 + x;
                                it.next();
                            }
                            None => break,
                        }
                    }
                    out.push(char::from_u32(n & 0xff).unwrap_or('\u{fffd}'));
                }
                Some(other) => out.push(other),
                None => {}
            },
            c => out.push(c),
        }
    }
    out
}

/// Value of `key` in a postgresql.conf text (last active assignment wins; names compare
/// without case, as PostgreSQL's do): (value, line).
pub fn pg_conf_value(text: &str, key: &str) -> Option<(String, usize)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let (name, rest) = pg_conf_name(raw)?;
            name.eq_ignore_ascii_case(key)
                .then(|| (pg_conf_unquote(rest), i + 1))
        })
        .last()
}

/// Set `data_directory` in a postgresql.conf text (pure): replace the active assignment(s), or
/// append one. The path is quoted as PostgreSQL reads it back (`'` doubled, `\` escaped).
/// Returns the new text.
pub fn pg_set_data_directory(text: &str, new: &Path) -> String {
    let quoted = new
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('\'', "''");
    let line = format!("data_directory = '{quoted}'\t# set by dbhost\n");
    let mut out = String::with_capacity(text.len() + line.len() + 1);
    let mut done = false;
    // Other lines are kept byte for byte, line endings included.
    for raw in text.split_inclusive('\n') {
        let body = raw.strip_suffix('\n').unwrap_or(raw);
        if pg_conf_name(body).is_some_and(|(n, _)| n.eq_ignore_ascii_case("data_directory")) {
            if !done {
                out.push_str(&line);
                done = true;
            }
        } else {
            out.push_str(raw);
            if !raw.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    if !done {
        out.push_str(&line);
    }
    out
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
    let healthy = active
        && exec
            .output(&health_command(host, &inst))
            .is_ok_and(|o| o.status == 0 && o.stdout.trim() == "1");
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
        cnf_quote(&new_datadir.display().to_string())
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

// ---------------------------------------------------------------------------------------------
// service control and health

/// Retry policy for start/stop waits and health checks.
#[derive(Clone)]
pub struct Wait {
    pub attempts: u32,
    pub delay: Duration,
    /// Sleeps between attempts (tests pass a no-op).
    pub sleep: fn(Duration),
}

impl Default for Wait {
    /// Up to 60 s, checked every 250 ms: a server that is up after 0.3 s is seen then, not 2 s
    /// later (these waits sit inside the downtime window).
    fn default() -> Self {
        Wait {
            attempts: 240,
            delay: Duration::from_millis(250),
            sleep: std::thread::sleep,
        }
    }
}

impl std::fmt::Debug for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Wait({}×{:?})", self.attempts, self.delay)
    }
}

pub fn is_active(exec: &dyn Exec, unit: &str) -> bool {
    exec.output(&CommandSpec::new("systemctl").args(["is-active", "--quiet", unit]))
        .map(|o| o.status == 0)
        .unwrap_or(false)
}

fn wait_until(exec: &dyn Exec, unit: &str, active: bool, w: &Wait) -> Result<()> {
    for i in 0..w.attempts.max(1) {
        if is_active(exec, unit) == active {
            return Ok(());
        }
        if i + 1 < w.attempts {
            (w.sleep)(w.delay);
        }
    }
    bail!(
        "{unit} did not become {} within {} checks {:?} apart; see `journalctl -u {unit}`",
        if active { "active" } else { "inactive" },
        w.attempts,
        w.delay
    )
}

/// The socket units that start `unit` when a client connects (socket activation: Debian 12's
/// MariaDB 10.11 listens through `mariadb.socket`). While one of them listens, stopping the
/// service is not enough: the next client starts it again.
pub fn activating_sockets(exec: &dyn Exec, unit: &str) -> Vec<String> {
    exec.output(&CommandSpec::new("systemctl").args(["show", "-P", "TriggeredBy", unit]))
        .ok()
        .filter(|o| o.status == 0)
        .map(|o| {
            o.stdout
                .split_whitespace()
                .filter(|s| s.ends_with(".socket"))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The activating socket units (see [`activating_sockets`]) that are active now.
pub fn active_sockets(exec: &dyn Exec, unit: &str) -> Vec<String> {
    activating_sockets(exec, unit)
        .into_iter()
        .filter(|s| is_active(exec, s))
        .collect()
}

/// Stopped for good: the unit is inactive and no socket unit can start it again.
pub fn is_stopped(exec: &dyn Exec, unit: &str) -> bool {
    !is_active(exec, unit) && active_sockets(exec, unit).is_empty()
}

/// Stop the unit, and the socket units that would start it again, and wait until it is
/// inactive. Already stopped for good → `Ok(false)`.
pub fn stop(exec: &dyn Exec, unit: &str, w: &Wait) -> Result<bool> {
    let sockets = active_sockets(exec, unit);
    if !is_active(exec, unit) && sockets.is_empty() {
        return Ok(false);
    }
    // One transaction, sockets included: a client connecting during the downtime must not
    // start the server again on the old datadir.
    let mut args = vec!["stop".to_string()];
    args.extend(sockets);
    args.push(unit.to_string());
    exec.run(&CommandSpec::new("systemctl").args(args))?;
    wait_until(exec, unit, false, w)?;
    Ok(true)
}

/// Start the unit (with its enabled socket units, first, as at boot) and wait until it is
/// active. Already active → `Ok(false)`.
pub fn start(exec: &dyn Exec, unit: &str, w: &Wait) -> Result<bool> {
    if is_active(exec, unit) {
        return Ok(false);
    }
    let mut args = vec!["start".to_string()];
    for s in activating_sockets(exec, unit) {
        let enabled = exec
            .output(&CommandSpec::new("systemctl").args(["is-enabled", &s]))
            .is_ok_and(|o| o.status == 0 && o.stdout.trim() == "enabled");
        if enabled && !is_active(exec, &s) {
            args.push(s);
        }
    }
    args.push(unit.to_string());
    exec.run(&CommandSpec::new("systemctl").args(args))?;
    wait_until(exec, unit, true, w)?;
    Ok(true)
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
    let q = |sql: &str| -> std::result::Result<String, String> {
        let cmd = query_command(host, inst, sql);
        match exec.output(&cmd) {
            Ok(o) if o.status == 0 => Ok(o.stdout.trim().to_string()),
            Ok(o) => Err(format!("{}: {}", cmd.display(), o.stderr.trim())),
            Err(e) => Err(format!("{}: {e:#}", cmd.display())),
        }
    };
    if inst.pg.is_some() {
        let t0 = std::time::Instant::now();
        return match q("CHECKPOINT") {
            Ok(_) => format!(
                "checkpoint before the stop took {:.1} s",
                t0.elapsed().as_secs_f64()
            ),
            Err(e) => format!("no checkpoint before the stop ({e})"),
        };
    }
    let dirty = || -> Option<u64> {
        q(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
           WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY'",
        )
        .ok()?
        .parse()
        .ok()
    };
    let Some(before) = dirty() else {
        return "no InnoDB dirty page count; the shutdown flushes".into();
    };
    if let Err(e) = q("SET GLOBAL innodb_max_dirty_pages_pct = 0") {
        return format!("dirty pages not flushed before the stop ({e})");
    }
    let t0 = std::time::Instant::now();
    let step = Duration::from_millis(500);
    let (mut now, mut best, mut stalled) = (before, before, 0);
    // Small enough: a few MiB of 16 KiB pages. A steady write load keeps dirtying pages, so
    // stop waiting when the count no longer falls either.
    while now > 256 && stalled < 6 && t0.elapsed() < max_wait {
        sleep(step);
        match dirty() {
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

/// The health query for an instance (`SELECT 1` over the local socket).
pub fn health_command(host: &Host, inst: &Instance) -> CommandSpec {
    query_command(host, inst, "SELECT 1")
}

/// `sql` for the instance's server over its local socket (psql as postgres, or the MySQL client).
fn query_command(host: &Host, inst: &Instance, sql: &str) -> CommandSpec {
    match &inst.pg {
        Some(pg) => pg_query(pg, sql),
        None => mysql_query(host, inst.engine, sql),
    }
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
    let cmd = health_command(host, inst);
    let mut last = String::new();
    for i in 0..w.attempts.max(1) {
        match exec.output(&cmd) {
            Ok(o) if o.status == 0 && o.stdout.trim() == "1" => {
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
            Ok(o) => {
                last = format!(
                    "status {}: {}",
                    o.status,
                    if o.stderr.trim().is_empty() {
                        o.stdout.trim()
                    } else {
                        o.stderr.trim()
                    }
                )
            }
            Err(e) => last = format!("{e:#}"),
        }
        if i + 1 < w.attempts {
            (w.sleep)(w.delay);
        }
    }
    bail!(
        "health check `{}` failed after {} attempts: {last}",
        cmd.display(),
        w.attempts
    )
}

#[cfg(test)]
mod tests;
