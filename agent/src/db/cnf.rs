//! Configuration files of the engines, parsed in one place: MySQL/MariaDB option files (my.cnf
//! and everything it includes) and PostgreSQL's `postgresql.conf`. Pure text functions plus the
//! readers that follow includes under a [`Host`] root. Used by discovery, the relocation's switch,
//! tuning, generalize and migrate.

use crate::host::Host;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

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

/// Does the server read option group `name`? The plain groups above, the version-specific ones
/// (`[mysqld-8.0]`, `[mariadb-10.11]`) and Galera's.
pub fn is_server_group(name: &str) -> bool {
    SERVER_GROUPS.contains(&name)
        || name.starts_with("mysqld-")
        || name.starts_with("mariadb-")
        || name == "galera"
}

/// Groups the command-line clients read (and dbhost, when it logs in with a file's account).
pub const CLIENT_GROUPS: &[&str] = &[
    "client",
    "client-server",
    "client-mariadb",
    "mysql",
    "mariadb-client",
];

impl Cnf {
    /// Last value of `key` in the server groups (later files override earlier ones).
    pub fn server_value(&self, key: &str) -> Option<&CnfSetting> {
        self.settings
            .iter()
            .rev()
            .find(|s| s.key == key && is_server_group(&s.group))
    }
    /// Last value of `key` in the client groups.
    pub fn client_value(&self, key: &str) -> Option<&CnfSetting> {
        self.settings
            .iter()
            .rev()
            .find(|s| s.key == key && CLIENT_GROUPS.contains(&s.group.as_str()))
    }
    /// `key`'s value in the server groups (`None` when unset or set without a value).
    pub fn server(&self, key: &str) -> Option<&str> {
        self.server_value(key).and_then(|s| s.value.as_deref())
    }
    /// Is `key` set in the server groups (with or without a value, e.g. `log-bin`)?
    pub fn server_has(&self, key: &str) -> bool {
        self.server_value(key).is_some()
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
        let (k, v) = match l.split_once('=') {
            Some((k, v)) => (k.trim(), Some(strip_value(v))),
            None => (l, None),
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

fn strip_value(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) {
            if let Some(end) = v[1..].find(q) {
                return v[1..1 + end].to_string();
            }
        }
    }
    // an unquoted value ends at an inline comment
    let v = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    v.trim().to_string()
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

/// One option file (and what it includes), e.g. `/etc/mysql/debian.cnf`. A missing file gives
/// an empty [`Cnf`].
pub fn read_cnf_file(host: &Host, abs: &Path) -> Result<Cnf> {
    let mut cnf = Cnf::default();
    read_cnf(host, abs, &mut cnf, 0)?;
    Ok(cnf)
}

/// An account in an option file's client groups (`user`, `password`, `socket`), e.g. Debian's
/// maintenance account in `/etc/mysql/debian.cnf` or root's `~/.my.cnf`. Only a file that names
/// a password counts (without one, the account is root over the socket anyway).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientAccount {
    pub file: PathBuf,
    pub user: String,
    pub password: String,
    pub socket: Option<PathBuf>,
}

impl std::fmt::Debug for ClientAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClientAccount({} from {})",
            self.user,
            self.file.display()
        )
    }
}

pub fn client_account(host: &Host, abs: &Path) -> Option<ClientAccount> {
    let cnf = read_cnf_file(host, abs).ok()?;
    let password = cnf.client_value("password")?.value.clone()?;
    Some(ClientAccount {
        file: abs.to_path_buf(),
        user: cnf
            .client_value("user")
            .and_then(|s| s.value.clone())
            .unwrap_or_else(|| "root".into()),
        password,
        socket: cnf
            .client_value("socket")
            .and_then(|s| s.value.as_deref())
            .map(PathBuf::from),
    })
}

/// The option files a MySQL/MariaDB server reads, in order (later overrides earlier).
pub fn read_mysql_config(host: &Host) -> Result<Cnf> {
    let mut cnf = Cnf::default();
    for f in ["/etc/my.cnf", "/etc/mysql/my.cnf"] {
        read_cnf(host, Path::new(f), &mut cnf, 0)?;
    }
    Ok(cnf)
}

pub fn trim_slash(p: &str) -> PathBuf {
    let t = p.trim().trim_end_matches('/');
    PathBuf::from(if t.is_empty() { "/" } else { t })
}

/// Value of `key` in a postgresql.conf text (last active assignment wins): (value, line).
pub fn pg_conf_value(text: &str, key: &str) -> Option<(String, usize)> {
    let mut found = None;
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.starts_with('#') {
            continue;
        }
        let Some((k, v)) = l
            .split_once('=')
            .or_else(|| l.split_once(char::is_whitespace))
        else {
            continue;
        };
        if k.trim() != key {
            continue;
        }
        let v = v.trim();
        let val = if let Some(rest) = v.strip_prefix('\'') {
            rest.split('\'').next().unwrap_or("").to_string()
        } else {
            v.split(|c: char| c == '#' || c.is_whitespace())
                .next()
                .unwrap_or("")
                .to_string()
        };
        found = Some((val, i + 1));
    }
    found
}

/// Set `data_directory` in a postgresql.conf text (pure): replace the active assignment(s), or
/// append one. Returns the new text.
pub fn pg_set_data_directory(text: &str, new: &Path) -> String {
    let line = format!("data_directory = '{}'\t# set by dbhost", new.display());
    let mut out = Vec::new();
    let mut done = false;
    for raw in text.lines() {
        let l = raw.trim_start();
        let is_assign = !l.starts_with('#')
            && l.strip_prefix("data_directory")
                .is_some_and(|r| r.trim_start().starts_with('=') || r.starts_with([' ', '\t']));
        if is_assign {
            if !done {
                out.push(line.clone());
                done = true;
            }
        } else {
            out.push(raw.to_string());
        }
    }
    if !done {
        out.push(line);
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}
