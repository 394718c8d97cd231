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
pub fn cnf_quote(v: &str) -> String {
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
