//! Every query the backup room makes goes through [`query`]: positions, versions, database
//! lists, verification checks. Today it runs the engine's own command-line client over a local
//! socket (as `db::engine` does for health checks); it is the one function to replace when the
//! protocol clients of `db/` land.

use crate::db::engine::{Engine, Instance};
use crate::host::{CommandSpec, Exec};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Which server a query goes to.
#[derive(Debug, Clone)]
pub enum Conn {
    /// The host's own server (found by `db::engine::discover`); PostgreSQL: the database to
    /// connect to (default `postgres`).
    Local(Instance, Option<String>),
    /// A throwaway server of `backup verify`: its socket (MariaDB/MySQL: the socket file;
    /// PostgreSQL: the socket directory) and port, running as `user`.
    Scratch {
        engine: Engine,
        socket: PathBuf,
        port: u16,
        /// PostgreSQL: the OS user psql runs as (peer authentication).
        user: String,
        /// Database to connect to (PostgreSQL), or the default one.
        database: Option<String>,
    },
}

impl Conn {
    pub fn engine(&self) -> Engine {
        match self {
            Conn::Local(i, _) => i.engine,
            Conn::Scratch { engine, .. } => *engine,
        }
    }
    /// The same server, connected to `db` (PostgreSQL queries are per database).
    pub fn with_database(&self, db: &str) -> Conn {
        match self {
            Conn::Local(i, _) => Conn::Local(i.clone(), Some(db.to_string())),
            Conn::Scratch {
                engine,
                socket,
                port,
                user,
                ..
            } => Conn::Scratch {
                engine: *engine,
                socket: socket.clone(),
                port: *port,
                user: user.clone(),
                database: Some(db.to_string()),
            },
        }
    }
}

/// The client command for `sql` on `conn` (tab-separated rows, no headers).
pub fn command(conn: &Conn, sql: &str) -> CommandSpec {
    match conn {
        Conn::Local(i, db) if i.engine == Engine::Postgresql => {
            let port = i.pg.as_ref().map_or(5432, |p| p.port).to_string();
            psql("postgres", None, &port, db.as_deref(), sql)
        }
        Conn::Local(i, _) => {
            let mut c = CommandSpec::new(mysql_client(i.engine));
            if let Some(s) = &i.socket {
                c = c.arg(format!("--socket={}", s.display()));
            }
            c.args(["-NB", "-e", sql])
        }
        Conn::Scratch {
            engine: Engine::Postgresql,
            socket,
            port,
            user,
            database,
        } => psql(
            user,
            Some(&socket.display().to_string()),
            &port.to_string(),
            database.as_deref(),
            sql,
        ),
        Conn::Scratch { engine, socket, .. } => CommandSpec::new(mysql_client(*engine))
            .arg(format!("--socket={}", socket.display()))
            .args(["-NB", "-e", sql]),
    }
}

fn mysql_client(e: Engine) -> &'static str {
    if e == Engine::Mariadb {
        "mariadb"
    } else {
        "mysql"
    }
}

fn psql(user: &str, dir: Option<&str>, port: &str, db: Option<&str>, sql: &str) -> CommandSpec {
    let mut c =
        CommandSpec::new("runuser").args(["-u", user, "--", "psql", "-X", "-A", "-t", "-q"]);
    c = c.args(["-F", "\t", "-v", "ON_ERROR_STOP=1", "-p", port]);
    if let Some(d) = dir {
        c = c.args(["-h", d]);
    }
    c.args(["-d", db.unwrap_or("postgres"), "-c", sql])
}

/// Run `sql`; rows of tab-separated columns.
pub fn query(exec: &dyn Exec, conn: &Conn, sql: &str) -> Result<Vec<Vec<String>>> {
    let cmd = command(conn, sql);
    let out = exec.output(&cmd)?;
    if out.status != 0 {
        bail!(
            "query `{sql}` failed (status {}): {}",
            out.status,
            out.stderr.trim()
        );
    }
    Ok(out
        .stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect())
}

/// The first column of the first row.
pub fn scalar(exec: &dyn Exec, conn: &Conn, sql: &str) -> Result<String> {
    Ok(query(exec, conn, sql)?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{ExecOutput, FakeExec};

    #[test]
    fn rows_and_errors() {
        let f = FakeExec::new();
        f.answer(
            "mariadb --socket=/tmp/s -NB -e 'SELECT",
            ExecOutput {
                status: 0,
                stdout: "db1\tt1\t5\ndb1\tt2\t0\n".into(),
                stderr: String::new(),
            },
        );
        let c = Conn::Scratch {
            engine: Engine::Mariadb,
            socket: "/tmp/s".into(),
            port: 0,
            user: "mysql".into(),
            database: None,
        };
        let rows = query(&f, &c, "SELECT x").unwrap();
        assert_eq!(rows[1], vec!["db1", "t2", "0"]);
        f.answer(
            "runuser",
            ExecOutput {
                status: 2,
                stdout: String::new(),
                stderr: "FATAL: nope".into(),
            },
        );
        let pg = Conn::Scratch {
            engine: Engine::Postgresql,
            socket: "/tmp/d".into(),
            port: 5499,
            user: "postgres".into(),
            database: Some("app".into()),
        };
        let e = query(&f, &pg, "SELECT 1").unwrap_err().to_string();
        assert!(e.contains("FATAL: nope"), "{e}");
        let line = f.calls().last().unwrap().clone();
        assert!(
            line.contains("-h /tmp/d") && line.contains("-d app") && line.contains("-p 5499"),
            "{line}"
        );
    }
}
