//! The database side of generalize, self-contained on purpose (the db room exposes engine
//! discovery later): locate datadirs from option files, find running servers in /proc, decide the
//! SQL for a clean slow shutdown, read PostgreSQL's control file state.

use crate::host::{CommandSpec, Exec, Host};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Settings read from the MySQL/MariaDB option files that generalize needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MyCnf {
    pub datadir: Option<PathBuf>,
    pub log_bin: Option<String>,
    pub relay_log: Option<String>,
}

/// Server sections whose options apply to mysqld/mariadbd.
fn server_section(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    n == "mysqld"
        || n == "server"
        || n == "mariadb"
        || n == "mariadbd"
        || n.starts_with("mysqld-")
        || n.starts_with("mariadb-")
        || n == "galera"
}

/// Parse option files starting at the usual roots, following `!include` / `!includedir`.
/// Later settings win, as in the server. Missing files are skipped.
pub fn read_mycnf(host: &Host) -> MyCnf {
    let mut vals: BTreeMap<String, String> = BTreeMap::new();
    let mut seen = Vec::new();
    for root in ["/etc/my.cnf", "/etc/mysql/my.cnf"] {
        parse_cnf_file(host, Path::new(root), &mut vals, &mut seen, 0);
    }
    let get = |k: &str| vals.get(k).cloned();
    MyCnf {
        datadir: get("datadir").map(PathBuf::from),
        log_bin: get("log_bin").or_else(|| get("log-bin")),
        relay_log: get("relay_log").or_else(|| get("relay-log")),
    }
}

fn parse_cnf_file(
    host: &Host,
    abs: &Path,
    vals: &mut BTreeMap<String, String>,
    seen: &mut Vec<PathBuf>,
    depth: usize,
) {
    if depth > 8 || seen.iter().any(|s| s == abs) {
        return;
    }
    seen.push(abs.to_path_buf());
    let Ok(text) = fs::read_to_string(host.path(abs)) else {
        return;
    };
    let mut in_server = false;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("!includedir") {
            let dir = PathBuf::from(rest.trim());
            let mut names: Vec<PathBuf> = fs::read_dir(host.path(&dir))
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| dir.join(e.file_name()))
                        .filter(|p| {
                            p.extension()
                                .map(|x| x == "cnf" || x == "ini")
                                .unwrap_or(false)
                        })
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            for n in names {
                parse_cnf_file(host, &n, vals, seen, depth + 1);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("!include") {
            parse_cnf_file(host, Path::new(rest.trim()), vals, seen, depth + 1);
            continue;
        }
        if let Some(sec) = line.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            in_server = server_section(sec);
            continue;
        }
        if !in_server {
            continue;
        }
        let (k, v) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (line, ""),
        };
        let k = k.replace('-', "_");
        let v = v.trim_matches('"').trim_matches('\'').to_string();
        vals.insert(k, v);
    }
}

/// The MySQL/MariaDB datadir: the given override, else the option files, else /var/lib/mysql.
/// `None` when the directory does not exist under the host root (no server installed).
pub fn mysql_datadir(host: &Host, given: Option<&Path>) -> Option<PathBuf> {
    let d = match given {
        Some(d) => d.to_path_buf(),
        None => read_mycnf(host)
            .datadir
            .unwrap_or_else(|| PathBuf::from("/var/lib/mysql")),
    };
    host.path(&d).is_dir().then_some(d)
}

/// PostgreSQL data directories: the given list, else every Debian cluster
/// (`/etc/postgresql/<ver>/<cluster>/postgresql.conf` → `data_directory`), else the RHEL layouts
/// (`/var/lib/pgsql/data`, `/var/lib/pgsql/<ver>/data`). Only directories holding `PG_VERSION`.
pub fn pg_datadirs(host: &Host, given: &[PathBuf]) -> Vec<PathBuf> {
    let mut cands: Vec<PathBuf> = given.to_vec();
    if cands.is_empty() {
        for ver in sorted_entries(&host.path("/etc/postgresql")) {
            for cluster in sorted_entries(&ver) {
                let conf = cluster.join("postgresql.conf");
                if let Ok(text) = fs::read_to_string(&conf) {
                    if let Some(d) = pg_conf_value(&text, "data_directory") {
                        cands.push(PathBuf::from(d));
                    }
                }
            }
        }
        cands.push(PathBuf::from("/var/lib/pgsql/data"));
        for ver in sorted_entries(&host.path("/var/lib/pgsql")) {
            cands.push(host.unroot(&ver.join("data")));
        }
        // Debian default layout even without /etc/postgresql (e.g. config removed).
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

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// `key = 'value'` from postgresql.conf (last one wins).
pub fn pg_conf_value(text: &str, key: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some((k, v)) = line.split_once('=') {
            if k.trim() == key {
                found = Some(v.trim().trim_matches('\'').to_string());
            }
        }
    }
    found
}

/// Processes whose `comm` is one of `names`, from `/proc/<pid>/comm` (empty on an image).
pub fn running(host: &Host, names: &[&str]) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(host.proc_("")) else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(comm) = fs::read_to_string(e.path().join("comm")) {
            let comm = comm.trim();
            if names.contains(&comm) {
                out.push((pid, comm.to_string()));
            }
        }
    }
    out.sort();
    out
}

pub const MYSQLD_NAMES: &[&str] = &["mysqld", "mariadbd"];
pub const POSTGRES_NAMES: &[&str] = &["postgres", "postmaster"];
pub const MYSQL_UNITS: &[&str] = &["mariadb.service", "mysql.service", "mysqld.service"];

/// The SQL that prepares a MySQL/MariaDB server for capture, from `SELECT @@version, @@log_bin`:
/// drop replica configuration, reset binary logs and GTID history (when binary logging is on),
/// and request a slow shutdown.
pub fn mysql_prepare_sql(version: &str, log_bin: bool) -> Vec<String> {
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    let (major, minor, patch) = parse_version(version);
    let mut sql = Vec::new();
    if mariadb || (major, minor, patch) < (8, 0, 22) {
        sql.push("STOP SLAVE".to_string());
        sql.push("RESET SLAVE ALL".to_string());
    } else {
        sql.push("STOP REPLICA".to_string());
        sql.push("RESET REPLICA ALL".to_string());
    }
    if log_bin {
        if !mariadb && (major, minor) >= (8, 2) {
            sql.push("RESET BINARY LOGS AND GTIDS".to_string());
        } else {
            sql.push("RESET MASTER".to_string());
        }
    }
    sql.push("SET GLOBAL innodb_fast_shutdown=0".to_string());
    sql
}

fn parse_version(v: &str) -> (u32, u32, u32) {
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

/// The client program and its connection arguments: `mariadb` or `mysql`, with
/// `--defaults-file=/etc/mysql/debian.cnf` when that file names a user with a password,
/// else as the OS user (root over the unix socket).
pub fn mysql_client(host: &Host) -> CommandSpec {
    let mut c = mysql_client_as_root(host);
    let debian = host.path("/etc/mysql/debian.cnf");
    if let Ok(t) = fs::read_to_string(&debian) {
        if super::edits::cnf_has_password(&t) {
            c = c.arg(format!("--defaults-file={}", debian.display()));
        }
    }
    c
}

/// The client as the OS user (root over the unix socket; Debian's MariaDB authenticates root
/// by socket), without debian.cnf.
pub fn mysql_client_as_root(host: &Host) -> CommandSpec {
    CommandSpec::new(if host.path("/usr/bin/mariadb").exists() {
        "mariadb"
    } else {
        "mysql"
    })
}

/// Zero the replica state files and relay logs found in `dirs` (see
/// [`super::ops::is_replica_state`]); returns how many files were overwritten.
fn zero_replica_state(host: &Host, dirs: &[PathBuf]) -> Result<usize> {
    let mut n = 0;
    for d in dirs {
        let Ok(rd) = fs::read_dir(host.path(d)) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if super::ops::is_replica_state(&name) && super::scrub::zero_file(&e.path())? > 0 {
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Stop MySQL/MariaDB cleanly: reset replication and binary logs, `innodb_fast_shutdown=0`,
/// `systemctl stop` every active unit, then verify no server process is left.
pub fn stop_mysql(host: &Host, exec: &dyn Exec, replica_dirs: &[PathBuf]) -> Result<Vec<String>> {
    let procs = running(host, MYSQLD_NAMES);
    if procs.is_empty() {
        return Ok(vec![]);
    }
    let mut done = Vec::new();
    // debian.cnf first (the maintenance account); when its credentials do not work (a stale or
    // edited file), root over the unix socket.
    let ask = ["-N", "-B", "-e", "SELECT @@version, @@log_bin"];
    let mut client = mysql_client(host);
    let mut out = exec.output(&client.clone().args(ask))?;
    if out.status != 0 {
        let root = mysql_client_as_root(host);
        let again = exec.output(&root.clone().args(ask))?;
        if again.status == 0 {
            done.push(format!(
                "{} refused ({}); connected as root over the unix socket",
                client.display(),
                out.stderr.trim()
            ));
            client = root;
            out = again;
        }
    }
    if out.status != 0 {
        bail!(
            "asking the running server (pid {}) for its version to request a slow shutdown: \
             `{}` exited with status {}: {}; stop it yourself after \
             `SET GLOBAL innodb_fast_shutdown=0`, then re-run",
            procs[0].0,
            client.clone().args(ask).display(),
            out.status,
            out.stderr.trim()
        );
    }
    let mut f = out.stdout.split_whitespace();
    let version = f.next().unwrap_or("").to_string();
    let log_bin = f.next() == Some("1");
    for stmt in mysql_prepare_sql(&version, log_bin) {
        if stmt.starts_with("RESET SLAVE") || stmt.starts_with("RESET REPLICA") {
            // Replication threads are stopped: nothing writes these files any more, and the
            // RESET deletes them without overwriting their blocks.
            let n = zero_replica_state(host, replica_dirs)?;
            if n > 0 {
                done.push(format!("zeroed {n} replica state/relay log file(s)"));
            }
        }
        let cmd = client.clone().args(["-e", &stmt]);
        let r = exec.output(&cmd)?;
        // STOP/RESET SLAVE on a server that never replicated is harmless either way.
        if r.status != 0 && !stmt.contains("SLAVE") && !stmt.contains("REPLICA") {
            bail!("`{}` failed: {}", cmd.display(), r.stderr.trim());
        }
        done.push(stmt);
    }
    let mut stopped_any = false;
    for unit in MYSQL_UNITS {
        let st = exec.output(&CommandSpec::new("systemctl").args(["is-active", unit]))?;
        if st.stdout.trim() == "active" {
            exec.run(&CommandSpec::new("systemctl").args(["stop", unit]))?;
            done.push(format!("systemctl stop {unit}"));
            stopped_any = true;
        }
    }
    let left = running(host, MYSQLD_NAMES);
    if !left.is_empty() {
        bail!(
            "{} (pid {}) is still running{}; stop it, then re-run generalize",
            left[0].1,
            left[0].0,
            if stopped_any {
                " after systemctl stop"
            } else {
                " and no mariadb/mysql/mysqld unit is active"
            }
        );
    }
    Ok(done)
}

/// PostgreSQL `DBState` read from `global/pg_control` (offset 16, after system identifier u64,
/// pg_control_version u32 and catalog_version_no u32). Little-endian hosts.
pub fn pg_control_state(buf: &[u8]) -> Option<&'static str> {
    let b: [u8; 4] = buf.get(16..20)?.try_into().ok()?;
    Some(match i32::from_le_bytes(b) {
        0 => "starting up",
        1 => "shut down",
        2 => "shut down in recovery",
        3 => "shutting down",
        4 => "in crash recovery",
        5 => "in archive recovery",
        6 => "in production",
        _ => return None,
    })
}

/// The state of a cluster: from `pg_controldata` when live and found, else the control file.
pub fn pg_cluster_state(host: &Host, exec: &dyn Exec, datadir: &Path) -> Option<String> {
    if host.is_live() {
        if let Some(bin) = pg_controldata_bin(host) {
            if let Ok(out) = exec.run(
                &CommandSpec::new(&bin.display().to_string()).arg(datadir.display().to_string()),
            ) {
                for l in out.stdout.lines() {
                    if let Some(v) = l.strip_prefix("Database cluster state:") {
                        return Some(v.trim().to_string());
                    }
                }
            }
        }
    }
    let buf = fs::read(host.path(datadir).join("global/pg_control")).ok()?;
    pg_control_state(&buf).map(str::to_string)
}

fn pg_controldata_bin(host: &Host) -> Option<PathBuf> {
    let mut c = Vec::new();
    for base in ["/usr/lib/postgresql", "/usr"] {
        for e in sorted_entries(&host.path(base)) {
            let p = e.join("bin/pg_controldata");
            if p.is_file() {
                c.push(p);
            }
        }
    }
    for p in ["/usr/bin/pg_controldata", "/usr/local/bin/pg_controldata"] {
        if host.path(p).is_file() {
            c.push(host.path(p));
        }
    }
    c.pop()
}

/// Stop PostgreSQL through every active `postgresql*` unit (Debian's `pg_ctlcluster` stops with
/// `-m fast`), then require each cluster's control data to say "shut down".
pub fn stop_postgres(host: &Host, exec: &dyn Exec, datadirs: &[PathBuf]) -> Result<Vec<String>> {
    let mut done = Vec::new();
    if !running(host, POSTGRES_NAMES).is_empty() {
        let list = exec.run(&CommandSpec::new("systemctl").args([
            "list-units",
            "--type=service",
            "--state=active",
            "--plain",
            "--no-legend",
            "postgresql*",
        ]))?;
        let mut units: Vec<String> = list
            .stdout
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect();
        // Stop the instances before the umbrella unit.
        units.sort_by_key(|u| !u.contains('@'));
        for u in units {
            exec.run(&CommandSpec::new("systemctl").args(["stop", &u]))?;
            done.push(format!("systemctl stop {u}"));
        }
        let left = running(host, POSTGRES_NAMES);
        if !left.is_empty() {
            bail!(
                "postgres (pid {}) is still running after stopping the postgresql units; \
                 stop it with `pg_ctl stop -m fast`, then re-run",
                left[0].0
            );
        }
    }
    for d in datadirs {
        match pg_cluster_state(host, exec, d).as_deref() {
            Some("shut down") | None => {}
            Some(other) => bail!(
                "PostgreSQL cluster {} is not cleanly shut down (control data: {other}); \
                 start it and stop it with `pg_ctl stop -m fast`, then re-run",
                d.display()
            ),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_by_flavor_and_version() {
        let m = mysql_prepare_sql("10.11.6-MariaDB-0+deb12u1", true);
        assert_eq!(
            m,
            vec![
                "STOP SLAVE",
                "RESET SLAVE ALL",
                "RESET MASTER",
                "SET GLOBAL innodb_fast_shutdown=0"
            ]
        );
        let m = mysql_prepare_sql("8.4.3", true);
        assert!(m.contains(&"RESET BINARY LOGS AND GTIDS".to_string()));
        assert!(m.contains(&"RESET REPLICA ALL".to_string()));
        let m = mysql_prepare_sql("8.0.36-0ubuntu0.22.04.1", false);
        assert!(!m
            .iter()
            .any(|s| s.contains("MASTER") || s.contains("BINARY")));
        assert!(m.contains(&"STOP REPLICA".to_string()));
        assert_eq!(
            mysql_prepare_sql("5.7.44-log", true)[1],
            "RESET SLAVE ALL".to_string()
        );
    }

    #[test]
    fn pg_control_state_offsets() {
        let mut b = vec![0u8; 64];
        b[16] = 1;
        assert_eq!(pg_control_state(&b), Some("shut down"));
        b[16] = 6;
        assert_eq!(pg_control_state(&b), Some("in production"));
        assert_eq!(pg_control_state(&b[..10]), None);
    }

    #[test]
    fn mycnf_follows_includes_and_last_wins() {
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        let w = |p: &str, s: &str| {
            let p = h.path(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, s).unwrap();
        };
        w(
            "/etc/mysql/my.cnf",
            "[client-server]\n!includedir /etc/mysql/conf.d/\n!includedir /etc/mysql/mariadb.conf.d/\n",
        );
        w(
            "/etc/mysql/mariadb.conf.d/50-server.cnf",
            "[mysqld]\ndatadir = /var/lib/mysql\n#log_bin = /var/log/mysql/mysql-bin.log\n[client]\ndatadir=/nope\n",
        );
        w(
            "/etc/mysql/mariadb.conf.d/90-dbhost.cnf",
            "[mariadb]\ndatadir=/data/mysql\nlog-bin=/data/binlog/mysql-bin\n",
        );
        let c = read_mycnf(&h);
        assert_eq!(c.datadir, Some(PathBuf::from("/data/mysql")));
        assert_eq!(c.log_bin.as_deref(), Some("/data/binlog/mysql-bin"));
        assert_eq!(mysql_datadir(&h, None), None, "not created yet");
        fs::create_dir_all(h.path("/data/mysql")).unwrap();
        assert_eq!(mysql_datadir(&h, None), Some(PathBuf::from("/data/mysql")));
    }

    #[test]
    fn pg_datadirs_from_debian_conf() {
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        let conf = h.path("/etc/postgresql/15/main/postgresql.conf");
        fs::create_dir_all(conf.parent().unwrap()).unwrap();
        fs::write(
            &conf,
            "data_directory = '/data/pg/15/main'\t\t# use data in another directory\n",
        )
        .unwrap();
        assert!(pg_datadirs(&h, &[]).is_empty());
        fs::create_dir_all(h.path("/data/pg/15/main")).unwrap();
        fs::write(h.path("/data/pg/15/main/PG_VERSION"), "15\n").unwrap();
        assert_eq!(
            pg_datadirs(&h, &[]),
            vec![PathBuf::from("/data/pg/15/main")]
        );
    }

    #[test]
    fn finds_processes_by_comm() {
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        fs::create_dir_all(h.proc_("42")).unwrap();
        fs::write(h.proc_("42/comm"), "mariadbd\n").unwrap();
        fs::create_dir_all(h.proc_("7")).unwrap();
        fs::write(h.proc_("7/comm"), "bash\n").unwrap();
        assert_eq!(
            running(&h, MYSQLD_NAMES),
            vec![(42, "mariadbd".to_string())]
        );
    }

    #[test]
    fn stale_debian_cnf_falls_back_to_root_over_the_socket() {
        use crate::host::{ExecOutput, FakeExec};
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        fs::create_dir_all(h.proc_("42")).unwrap();
        fs::write(h.proc_("42/comm"), "mariadbd\n").unwrap();
        fs::create_dir_all(h.path("/usr/bin")).unwrap();
        fs::write(h.path("/usr/bin/mariadb"), "").unwrap();
        fs::create_dir_all(h.etc("mysql")).unwrap();
        fs::write(
            h.etc("mysql/debian.cnf"),
            "[client]\nuser = debian-sys-maint\npassword = stale\n",
        )
        .unwrap();
        let fx = FakeExec::new();
        fx.answer(
            "mariadb --defaults-file=",
            ExecOutput {
                status: 1,
                stdout: String::new(),
                stderr: "ERROR 1045 (28000): Access denied for user 'debian-sys-maint'".into(),
            },
        );
        fx.answer(
            "mariadb -N -B",
            ExecOutput {
                status: 0,
                stdout: "10.11.6-MariaDB\t0\n".into(),
                stderr: String::new(),
            },
        );
        // The fake server never goes away, so the stop ends in "still running"; what matters
        // is that it got past the version query and sent the shutdown settings as root.
        let e = stop_mysql(&h, &fx, &[]).unwrap_err().to_string();
        assert!(e.contains("still running"), "{e}");
        let calls = fx.calls();
        assert!(
            calls[0].starts_with("mariadb --defaults-file="),
            "{calls:?}"
        );
        assert!(calls[1].starts_with("mariadb -N -B -e"), "{calls:?}");
        assert!(
            calls
                .iter()
                .any(|c| c.starts_with("mariadb -e") && c.contains("innodb_fast_shutdown")),
            "{calls:?}"
        );
    }

    #[test]
    fn replica_state_is_zeroed_before_the_server_deletes_it() {
        use crate::host::{ExecOutput, FakeExec};
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        fs::create_dir_all(h.proc_("42")).unwrap();
        fs::write(h.proc_("42/comm"), "mariadbd\n").unwrap();
        fs::create_dir_all(h.path("/usr/bin")).unwrap();
        fs::write(h.path("/usr/bin/mariadb"), "").unwrap();
        let dd = h.path("/datadrive/mysql");
        fs::create_dir_all(&dd).unwrap();
        let secret = "33\nmysql-bin.000001\n4\nsource\nrepl\nS3cret\n3306\n";
        for f in ["master.info", "relay-log.info", "db1-relay-bin.000002"] {
            fs::write(dd.join(f), secret).unwrap();
        }
        fs::write(dd.join("mysql-bin.000001"), "binlog").unwrap();
        fs::write(dd.join("ibdata1"), "data").unwrap();
        let fx = FakeExec::new();
        fx.answer(
            "mariadb -N -B",
            ExecOutput {
                status: 0,
                stdout: "10.11.6-MariaDB\t1\n".into(),
                stderr: String::new(),
            },
        );
        // the fake server never exits: the stop ends in "still running", after the SQL
        let e = stop_mysql(&h, &fx, &[PathBuf::from("/datadrive/mysql")]).unwrap_err();
        assert!(e.to_string().contains("still running"), "{e}");
        for f in ["master.info", "relay-log.info", "db1-relay-bin.000002"] {
            let b = fs::read(dd.join(f)).unwrap();
            assert!(b.len() == secret.len() && b.iter().all(|&x| x == 0), "{f}");
        }
        // binary logs (RESET MASTER) and data files are not replica state
        assert_eq!(
            fs::read_to_string(dd.join("mysql-bin.000001")).unwrap(),
            "binlog"
        );
        assert_eq!(fs::read_to_string(dd.join("ibdata1")).unwrap(), "data");
        assert!(fx.calls().iter().any(|c| c.contains("RESET SLAVE ALL")));
    }
}
