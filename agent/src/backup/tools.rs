//! The engines' own backup programs, as command lines (pure), and what their stderr says about
//! positions.
//!
//! | engine | logical | physical |
//! |---|---|---|
//! | MariaDB / MySQL | one `mariadb-dump`/`mysqldump --single-transaction --all-databases` stream (one transaction: consistent across databases, hence one stream) | `mariabackup --backup --stream=xbstream --parallel=N` |
//! | PostgreSQL | `pg_dumpall --globals-only`, then one `pg_dump -Fc` per database, N at a time (databases are independent snapshots in PostgreSQL anyway) | `pg_basebackup -D - -Ft -X fetch` (WAL inside the tar) |
//!
//! Compression is dbhost's (zstd, multi-threaded), so the tools' own is off (`pg_dump -Z0`).

use super::manifest::Format;
use crate::db::engine::{Engine, Instance};
use crate::host::CommandSpec;
use std::collections::BTreeMap;
use std::path::Path;

/// One stream to take: the command, the object's base name, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub cmd: CommandSpec,
    /// Object base name before compression/encryption suffixes (`data.sql`, `db-app.pgdump`).
    pub name: String,
    pub format: Format,
    pub database: Option<String>,
}

fn pg_port(inst: &Instance) -> String {
    inst.pg.as_ref().map_or(5432, |p| p.port).to_string()
}

fn as_postgres(args: &[&str]) -> CommandSpec {
    CommandSpec::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args.iter().copied())
}

/// MariaDB/MySQL logical: one consistent stream of every database.
pub fn mysql_dump(inst: &Instance, mariadb_dump_present: bool) -> Stream {
    let prog = if inst.engine == Engine::Mariadb && mariadb_dump_present {
        "mariadb-dump"
    } else {
        "mysqldump"
    };
    let mut cmd = CommandSpec::new(prog);
    if let Some(s) = &inst.socket {
        cmd = cmd.arg(format!("--socket={}", s.display()));
    }
    cmd = cmd.args([
        "--single-transaction",
        "--all-databases",
        "--routines",
        "--events",
        "--triggers",
        "--hex-blob",
        "--flush-privileges",
    ]);
    Stream {
        cmd,
        name: "data.sql".into(),
        format: Format::Sql,
        database: None,
    }
}

/// MariaDB physical: xbstream on stdout; `tmp` holds mariabackup's own scratch files.
pub fn mariabackup(inst: &Instance, tmp: &Path, parallel: u32) -> Stream {
    let mut cmd = CommandSpec::new("mariabackup").args(["--backup", "--stream=xbstream"]);
    cmd = cmd.arg(format!("--target-dir={}", tmp.display()));
    if let Some(s) = &inst.socket {
        cmd = cmd.arg(format!("--socket={}", s.display()));
    }
    cmd = cmd.arg(format!("--parallel={}", parallel.max(1)));
    Stream {
        cmd,
        name: "data.xbstream".into(),
        format: Format::Xbstream,
        database: None,
    }
}

/// PostgreSQL logical: roles and tablespaces first.
pub fn pg_globals(inst: &Instance) -> Stream {
    Stream {
        cmd: as_postgres(&["pg_dumpall", "--globals-only", "-p", &pg_port(inst)]),
        name: "globals.sql".into(),
        format: Format::Sql,
        database: None,
    }
}

/// PostgreSQL logical: one database, custom format, uncompressed (dbhost compresses).
pub fn pg_dump(inst: &Instance, db: &str) -> Stream {
    Stream {
        cmd: as_postgres(&["pg_dump", "-Fc", "-Z0", "-p", &pg_port(inst), "-d", db]),
        name: format!("db-{}.pgdump", object_safe(db)),
        format: Format::PgCustom,
        database: Some(db.to_string()),
    }
}

/// PostgreSQL physical: a tar of the cluster with the WAL needed to make it consistent.
pub fn pg_basebackup(inst: &Instance) -> Stream {
    Stream {
        cmd: as_postgres(&[
            "pg_basebackup",
            "-D",
            "-",
            "-Ft",
            "-X",
            "fetch",
            "-c",
            "fast",
            "-v",
            "-p",
            &pg_port(inst),
        ]),
        name: "base.tar".into(),
        format: Format::Tar,
        database: None,
    }
}

/// A database name as part of an object name: keeps `[A-Za-z0-9_.-]`, hex-escapes the rest.
pub fn object_safe(name: &str) -> String {
    let mut s = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.' {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// Start and end positions a physical tool printed on stderr.
pub fn positions(
    format: Format,
    stderr: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut start = BTreeMap::new();
    let mut end = BTreeMap::new();
    for line in stderr.lines() {
        match format {
            Format::Tar => {
                // pg_basebackup -v: "write-ahead log start point: 0/2000028 on timeline 1"
                if let Some(r) = line.split("write-ahead log start point: ").nth(1) {
                    let mut it = r.split_whitespace();
                    if let Some(lsn) = it.next() {
                        start.insert("lsn".into(), lsn.to_string());
                    }
                    if let Some(tl) = r.split("on timeline ").nth(1) {
                        start.insert("timeline".into(), tl.trim().to_string());
                    }
                }
                if let Some(r) = line.split("write-ahead log end point: ").nth(1) {
                    if let Some(lsn) = r.split_whitespace().next() {
                        end.insert("lsn".into(), lsn.to_string());
                    }
                }
            }
            Format::Xbstream => {
                // mariabackup: "[00] ... Redo log (from LSN 44878 to 48196) was copied."
                if let Some(r) = line.split("Redo log (from LSN ").nth(1) {
                    let mut it = r
                        .split(|c: char| !c.is_ascii_digit())
                        .filter(|t| !t.is_empty());
                    if let (Some(a), Some(b)) = (it.next(), it.next()) {
                        start.insert("lsn".into(), a.to_string());
                        end.insert("lsn".into(), b.to_string());
                    }
                }
                // "... MySQL binlog position: filename 'mysql-bin.000002', position '342', GTID of the last change '0-1-7'"
                if let Some(v) = quoted_after(line, "GTID of the last change ") {
                    end.insert("gtid".into(), v);
                }
                if let Some(v) = quoted_after(line, "binlog position: filename ") {
                    end.insert("binlog_file".into(), v);
                }
            }
            Format::Sql | Format::PgCustom => {}
        }
    }
    (start, end)
}

fn quoted_after(line: &str, key: &str) -> Option<String> {
    let r = line.split(key).nth(1)?;
    let r = r.strip_prefix('\'')?;
    Some(r.split('\'').next()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::engine::{PgCluster, Source};

    fn inst(engine: Engine) -> Instance {
        Instance {
            engine,
            datadir: "/datadrive/x".into(),
            source: Source::Default,
            config_datadir: "/datadrive/x".into(),
            unit: "u.service".into(),
            socket: Some("/run/mysqld/mysqld.sock".into()),
            dropin_dir: None,
            pg: (engine == Engine::Postgresql).then(|| PgCluster {
                version: "15".into(),
                cluster: "main".into(),
                conf: "/etc/postgresql/15/main/postgresql.conf".into(),
                port: 5433,
            }),
        }
    }

    #[test]
    fn command_lines() {
        let m = inst(Engine::Mariadb);
        assert_eq!(
            mysql_dump(&m, true).cmd.display(),
            "mariadb-dump --socket=/run/mysqld/mysqld.sock --single-transaction --all-databases --routines --events --triggers --hex-blob --flush-privileges"
        );
        assert!(mysql_dump(&m, false)
            .cmd
            .display()
            .starts_with("mysqldump "));
        assert_eq!(
            mariabackup(&m, Path::new("/tmp/t"), 2).cmd.display(),
            "mariabackup --backup --stream=xbstream --target-dir=/tmp/t --socket=/run/mysqld/mysqld.sock --parallel=2"
        );
        let p = inst(Engine::Postgresql);
        assert_eq!(
            pg_dump(&p, "app db").cmd.display(),
            "runuser -u postgres -- pg_dump -Fc -Z0 -p 5433 -d 'app db'"
        );
        assert_eq!(pg_dump(&p, "app db").name, "db-app%20db.pgdump");
        assert_eq!(
            pg_basebackup(&p).cmd.display(),
            "runuser -u postgres -- pg_basebackup -D - -Ft -X fetch -c fast -v -p 5433"
        );
        assert_eq!(
            pg_globals(&p).cmd.display(),
            "runuser -u postgres -- pg_dumpall --globals-only -p 5433"
        );
    }

    #[test]
    fn positions_from_stderr() {
        let pg = "pg_basebackup: initiating base backup, waiting for checkpoint to complete\npg_basebackup: checkpoint completed\npg_basebackup: write-ahead log start point: 0/2000028 on timeline 1\npg_basebackup: write-ahead log end point: 0/2000100\npg_basebackup: base backup completed\n";
        let (s, e) = positions(Format::Tar, pg);
        assert_eq!(s.get("lsn").map(String::as_str), Some("0/2000028"));
        assert_eq!(s.get("timeline").map(String::as_str), Some("1"));
        assert_eq!(e.get("lsn").map(String::as_str), Some("0/2000100"));
        // Lines of mariabackup 10.11.19 (the binlog line only when the binlog is on).
        let mb = "[00] 2026-12-05 19:09:14 InnoDB LSN: 48196, Flushing Logs\n[00] 2026-12-05 18:00:02 MySQL binlog position: filename 'mysql-bin.000002', position '342', GTID of the last change '0-1-7'\n[00] 2026-12-05 19:09:14 mariabackup: The latest check point (for incremental): '44878'\n[00] 2026-12-05 19:09:15 Redo log (from LSN 44878 to 48196) was copied.\n";
        let (s, e) = positions(Format::Xbstream, mb);
        assert_eq!(s.get("lsn").map(String::as_str), Some("44878"));
        assert_eq!(e.get("lsn").map(String::as_str), Some("48196"));
        assert_eq!(e.get("gtid").map(String::as_str), Some("0-1-7"));
        assert_eq!(
            e.get("binlog_file").map(String::as_str),
            Some("mysql-bin.000002")
        );
    }
}
