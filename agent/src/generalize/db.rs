//! The database side of generalize: the SQL for a clean slow shutdown, stopping the servers and
//! proving they stopped. Finding datadirs, option files, processes, control files and logging in
//! are the db room's ([`crate::db`]); re-exported here for the generalize code.

pub use crate::db::engine::{configured_mysql_datadir as mysql_datadir, pg_datadirs};
pub use crate::db::local::{running, MYSQLD_NAMES, MYSQL_UNITS, POSTGRES_NAMES};
pub use crate::db::pgctl::{pg_cluster_state, pg_control_state};

use crate::db::client::{self, Session};
use crate::host::{CommandSpec, Exec, Host};
use anyhow::{bail, Result};
use std::fs;
use std::path::PathBuf;

/// The MySQL/MariaDB option files (for the paths of binary and relay logs); empty when they
/// cannot be read (an image without a server).
pub fn read_mycnf(host: &Host) -> crate::db::cnf::Cnf {
    crate::db::cnf::read_mysql_config(host).unwrap_or_default()
}

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

/// A session with the local MySQL/MariaDB server: root over the socket, else the account of
/// `/etc/mysql/debian.cnf` or `/root/.my.cnf`.
pub fn mysql_session<'a>(host: &Host, exec: &'a dyn Exec) -> Result<Box<dyn Session + 'a>> {
    let cnf = read_mycnf(host);
    let sock = crate::db::local::mysql_socket(host, &cnf);
    Ok(client::connect_first(exec.db(), &crate::db::local::mysql_targets(host, &sock))?.0)
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
    let ask = "SELECT @@version, @@log_bin";
    let answer = mysql_session(host, exec).and_then(|mut s| Ok((s.query(ask)?, s)));
    let (rows, mut session) = match answer {
        Ok(x) => x,
        Err(e) => bail!(
            "asking the running server (pid {}) for its version to request a slow shutdown \
             (`{ask}`): {e:#}; stop it yourself after `SET GLOBAL innodb_fast_shutdown=0`, then \
             re-run",
            procs[0].0,
        ),
    };
    let version = rows.get(0, "@@version").unwrap_or("").to_string();
    let log_bin = rows.get(0, "@@log_bin") == Some("1");
    for stmt in mysql_prepare_sql(&version, log_bin) {
        if stmt.starts_with("RESET SLAVE") || stmt.starts_with("RESET REPLICA") {
            // Replication threads are stopped: nothing writes these files any more, and the
            // RESET deletes them without overwriting their blocks.
            let n = zero_replica_state(host, replica_dirs)?;
            if n > 0 {
                done.push(format!("zeroed {n} replica state/relay log file(s)"));
            }
        }
        // STOP/RESET SLAVE on a server that never replicated is harmless either way.
        if let Err(e) = session.query(&stmt) {
            if !stmt.contains("SLAVE") && !stmt.contains("REPLICA") {
                return Err(e);
            }
        }
        done.push(stmt);
    }
    drop(session);
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
        assert_eq!(c.server("datadir"), Some("/data/mysql"));
        assert_eq!(c.server("log_bin"), Some("/data/binlog/mysql-bin"));
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

    fn version_row(log_bin: &str) -> crate::db::client::Rows {
        crate::db::client::Rows::one(
            &["@@version", "@@log_bin"],
            &[Some("10.11.6-MariaDB"), Some(log_bin)],
        )
    }

    #[test]
    fn root_refused_falls_back_to_the_debian_cnf_account() {
        use crate::host::FakeExec;
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        fs::create_dir_all(h.proc_("42")).unwrap();
        fs::write(h.proc_("42/comm"), "mariadbd\n").unwrap();
        fs::create_dir_all(h.etc("mysql")).unwrap();
        fs::write(
            h.etc("mysql/debian.cnf"),
            "[client]\nuser = debian-sys-maint\npassword = good\n",
        )
        .unwrap();
        let fx = FakeExec::new();
        fx.db.refuse_login(
            "as root",
            "1698",
            "Access denied for user 'root'@'localhost'",
        );
        fx.db.answer("SELECT @@version", version_row("0"));
        // The fake server never goes away, so the stop ends in "still running"; what matters
        // is that it got past the version query and sent the shutdown settings.
        let e = stop_mysql(&h, &fx, &[]).unwrap_err().to_string();
        assert!(e.contains("still running"), "{e}");
        let calls = fx.db.calls();
        assert!(
            calls[0].ends_with("as debian-sys-maint: SELECT @@version, @@log_bin"),
            "{calls:?}"
        );
        assert!(
            calls.iter().any(|c| c.contains("innodb_fast_shutdown=0")),
            "{calls:?}"
        );
        // nobody can log in: the error says what to do
        let fx = FakeExec::new();
        fx.db.refuse_login("", "1045", "Access denied");
        let e = stop_mysql(&h, &fx, &[]).unwrap_err().to_string();
        assert!(
            e.contains("innodb_fast_shutdown=0") && e.contains("Access denied"),
            "{e}"
        );
    }

    #[test]
    fn replica_state_is_zeroed_before_the_server_deletes_it() {
        use crate::host::FakeExec;
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
        fx.db.answer("SELECT @@version", version_row("1"));
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
        assert!(fx.db.statements().iter().any(|c| c == "RESET SLAVE ALL"));
    }
}
