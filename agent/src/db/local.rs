//! The database servers of this host: how to log in to them over the local socket (the one way
//! every room connects: relocation, status, tuning, generalize, migrate), and which server
//! processes run.
//!
//! PostgreSQL: the cluster's unix socket (`unix_socket_directories`, port) as role `postgres`,
//! connecting with the postgres OS uid so Debian's `local all postgres peer` line lets dbhost
//! (root) in. MySQL/MariaDB: the server's socket as root (`unix_socket`/`auth_socket`, the
//! Debian and Ubuntu default), then the accounts of `/etc/mysql/debian.cnf` and `/root/.my.cnf`
//! when root is refused.

use super::client::{self, Endpoint, Protocol, Rows, Session, Target};
use super::cnf::{self, Cnf};
use super::engine::{Engine, Instance, PgCluster};
use crate::host::{Exec, Host};
use anyhow::Result;
use std::fs;
use std::path::{Path, PathBuf};

/// Where Debian and Ubuntu put the server socket, then RHEL, then the compiled-in default.
const MYSQL_SOCKETS: &[&str] = &[
    "/run/mysqld/mysqld.sock",
    "/var/run/mysqld/mysqld.sock",
    "/var/lib/mysql/mysql.sock",
    "/tmp/mysql.sock",
];

/// Files whose client account dbhost may use when root is refused.
const MYSQL_ACCOUNT_FILES: &[&str] = &["/etc/mysql/debian.cnf", "/root/.my.cnf"];

/// The socket a MySQL/MariaDB server listens on: the server groups' `socket`, else the client
/// groups', else the first packaged default that exists on this host.
pub fn mysql_socket(host: &Host, cnf: &Cnf) -> PathBuf {
    if let Some(s) = cnf
        .server("socket")
        .or_else(|| cnf.client_value("socket").and_then(|s| s.value.as_deref()))
    {
        return PathBuf::from(s);
    }
    MYSQL_SOCKETS
        .iter()
        .find(|s| host.path(s).exists())
        .unwrap_or(&MYSQL_SOCKETS[0])
        .into()
}

/// The logins to try for the local MySQL/MariaDB server, in order.
pub fn mysql_targets(host: &Host, socket: &Path) -> Vec<Target> {
    let mut v = vec![Target::new(
        Protocol::Mysql,
        Endpoint::Unix(socket.to_path_buf()),
        "root",
    )];
    for f in MYSQL_ACCOUNT_FILES {
        if let Some(a) = cnf::client_account(host, Path::new(f)) {
            let sock = a.socket.clone().unwrap_or_else(|| socket.to_path_buf());
            v.push(
                Target::new(Protocol::Mysql, Endpoint::Unix(sock), &a.user)
                    .password(Some(a.password)),
            );
        }
    }
    v
}

/// The socket directory of a PostgreSQL cluster: the first of `unix_socket_directories` in its
/// postgresql.conf, else Debian's `/var/run/postgresql`.
pub fn pg_socket_dir(host: &Host, pg: &PgCluster) -> PathBuf {
    let text = fs::read_to_string(host.path(&pg.conf)).unwrap_or_default();
    cnf::pg_conf_value(&text, "unix_socket_directories")
        .and_then(|(v, _)| {
            v.split(',')
                .map(str::trim)
                .find(|d| d.starts_with('/'))
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("/var/run/postgresql"))
}

/// Role `postgres` over a cluster's unix socket, as the postgres OS user (peer authentication).
pub fn pg_target(host: &Host, pg: &PgCluster) -> Target {
    let sock = pg_socket_dir(host, pg).join(format!(".s.PGSQL.{}", pg.port));
    Target::new(Protocol::Postgres, Endpoint::Unix(sock), "postgres")
        .database("postgres")
        .as_uid(crate::host::users::lookup(host, "postgres").map(|a| a.uid))
}

/// The logins to try for an instance, in order.
pub fn targets(host: &Host, inst: &Instance) -> Vec<Target> {
    match (&inst.pg, inst.engine) {
        (Some(pg), _) => vec![pg_target(host, pg)],
        (None, Engine::Postgresql) => Vec::new(),
        (None, _) => {
            let sock = inst.socket.clone().unwrap_or_else(|| {
                let cnf = cnf::read_mysql_config(host).unwrap_or_default();
                mysql_socket(host, &cnf)
            });
            mysql_targets(host, &sock)
        }
    }
}

/// A session with the instance's server over its local socket.
pub fn session<'a>(
    host: &Host,
    exec: &'a dyn Exec,
    inst: &Instance,
) -> Result<Box<dyn Session + 'a>> {
    Ok(client::connect_first(exec.db(), &targets(host, inst))?.0)
}

/// One statement on the instance's server.
pub fn query(host: &Host, exec: &dyn Exec, inst: &Instance, sql: &str) -> Result<Rows> {
    session(host, exec, inst)?.query(sql)
}

/// One statement's first value on the instance's server.
pub fn scalar(host: &Host, exec: &dyn Exec, inst: &Instance, sql: &str) -> Result<Option<String>> {
    Ok(query(host, exec, inst, sql)?.scalar().map(str::to_string))
}

// ---------------------------------------------------------------------------------------------
// server processes

pub const MYSQLD_NAMES: &[&str] = &["mysqld", "mariadbd"];
pub const POSTGRES_NAMES: &[&str] = &["postgres", "postmaster"];
pub const MYSQL_UNITS: &[&str] = &["mariadb.service", "mysql.service", "mysqld.service"];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_logins_root_first_then_account_files() {
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        fs::create_dir_all(h.etc("mysql")).unwrap();
        fs::write(
            h.etc("mysql/debian.cnf"),
            "[client]\nhost = localhost\nuser = debian-sys-maint\npassword = s3cret\nsocket = /run/mysqld/mysqld.sock\n",
        )
        .unwrap();
        let cnf = Cnf::default();
        let sock = mysql_socket(&h, &cnf);
        assert_eq!(sock, Path::new("/run/mysqld/mysqld.sock"));
        let t = mysql_targets(&h, &sock);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].user.as_str(), t[0].password.as_deref()),
            ("root", None)
        );
        assert_eq!(t[1].user, "debian-sys-maint");
        assert_eq!(t[1].password.as_deref(), Some("s3cret"));
        assert!(
            !format!("{:?}", t[1]).contains("s3cret"),
            "a password in Debug output"
        );
    }

    #[test]
    fn pg_socket_from_the_cluster_conf_and_peer_uid() {
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        fs::create_dir_all(h.etc("postgresql/15/main")).unwrap();
        fs::write(
            h.etc("postgresql/15/main/postgresql.conf"),
            "port = 5433\nunix_socket_directories = '/run/pg-a, /tmp'\n",
        )
        .unwrap();
        fs::write(
            h.etc("passwd"),
            "postgres:x:107:114::/var/lib/postgresql:/bin/bash\n",
        )
        .unwrap();
        let pg = PgCluster {
            version: "15".into(),
            cluster: "main".into(),
            conf: "/etc/postgresql/15/main/postgresql.conf".into(),
            port: 5433,
        };
        let t = pg_target(&h, &pg);
        assert_eq!(t.endpoint, Endpoint::Unix("/run/pg-a/.s.PGSQL.5433".into()));
        assert_eq!(t.as_uid, Some(107));
        assert_eq!(t.user, "postgres");
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
}
