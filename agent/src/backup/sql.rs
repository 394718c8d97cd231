//! Every query the backup room makes goes through [`query`]: positions, versions, database
//! lists, verification checks. It speaks the servers' own protocols through `db::client` (the
//! one home for database connections): the host's servers with `db::local`'s logins, a
//! throwaway server of `backup verify` over its own socket.

use crate::db::client::{self, Endpoint, Protocol, Target};
use crate::db::engine::{Engine, Instance};
use crate::host::{Exec, Host};
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

/// Verification scans whole tables (CHECKSUM TABLE EXTENDED, md5 over every row).
const QUERY_TIMEOUT: Duration = Duration::from_secs(3600);

/// Which server a query goes to.
#[derive(Debug, Clone)]
pub enum Conn {
    /// The host's own server (found by `db::engine::discover`); PostgreSQL: the database to
    /// connect to (default `postgres`).
    Local(Box<Instance>, Option<String>),
    /// A throwaway server of `backup verify`: its socket (MariaDB/MySQL: the socket file;
    /// PostgreSQL: the socket directory) and port.
    Scratch {
        engine: Engine,
        socket: PathBuf,
        port: u16,
        /// Database to connect to (PostgreSQL), or the default one.
        database: Option<String>,
    },
}

impl Conn {
    /// The host's server `inst`, its default database.
    pub fn local(inst: &Instance) -> Conn {
        Conn::Local(Box::new(inst.clone()), None)
    }
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
                ..
            } => Conn::Scratch {
                engine: *engine,
                socket: socket.clone(),
                port: *port,
                database: Some(db.to_string()),
            },
        }
    }
}

/// The logins to try for `conn`, in order.
pub fn targets(host: &Host, conn: &Conn) -> Vec<Target> {
    let v = match conn {
        Conn::Local(i, db) => crate::db::local::targets(host, i)
            .into_iter()
            .map(|t| match (i.engine, db) {
                (Engine::Postgresql, Some(d)) => t.database(d),
                _ => t,
            })
            .collect(),
        Conn::Scratch {
            engine: Engine::Postgresql,
            socket,
            port,
            database,
        } => vec![Target::new(
            Protocol::Postgres,
            Endpoint::Unix(socket.join(format!(".s.PGSQL.{port}"))),
            "postgres",
        )
        .database(database.as_deref().unwrap_or("postgres"))
        .as_uid(crate::host::users::lookup(host, "postgres").map(|a| a.uid))],
        // Started with --skip-grant-tables: any login over its socket works.
        Conn::Scratch { socket, .. } => vec![Target::new(
            Protocol::Mysql,
            Endpoint::Unix(socket.clone()),
            "root",
        )],
    };
    v.into_iter()
        .map(|t| t.query_timeout(QUERY_TIMEOUT))
        .collect()
}

/// Run `sql`; its rows as text (SQL NULL as "").
pub fn query(host: &Host, exec: &dyn Exec, conn: &Conn, sql: &str) -> Result<Vec<Vec<String>>> {
    let (mut s, _) = client::connect_first(exec.db(), &targets(host, conn))?;
    Ok(s.query(sql)?
        .rows
        .into_iter()
        .map(|r| r.into_iter().map(Option::unwrap_or_default).collect())
        .collect())
}

/// The first column of the first row ("" for none).
pub fn scalar(host: &Host, exec: &dyn Exec, conn: &Conn, sql: &str) -> Result<String> {
    Ok(query(host, exec, conn, sql)?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::client::Rows;
    use crate::host::FakeExec;

    #[test]
    fn rows_errors_and_targets() {
        let f = FakeExec::new();
        f.db.answer(
            "SELECT x",
            Rows {
                columns: vec!["a".into(), "b".into()],
                rows: vec![
                    vec![Some("db1".into()), Some("5".into())],
                    vec![Some("db2".into()), None],
                ],
                affected: 0,
            },
        );
        let host = Host::with_root("/nonexistent");
        let c = Conn::Scratch {
            engine: Engine::Mariadb,
            socket: "/tmp/s".into(),
            port: 0,
            database: None,
        };
        let rows = query(&host, &f, &c, "SELECT x").unwrap();
        assert_eq!(rows, vec![vec!["db1", "5"], vec!["db2", ""]]);
        f.db.fail("", "SELECT 1", "XX000", "nope");
        let pg = Conn::Scratch {
            engine: Engine::Postgresql,
            socket: "/tmp/d".into(),
            port: 5499,
            database: Some("app".into()),
        };
        let e = query(&host, &f, &pg, "SELECT 1").unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
        let t = targets(&host, &pg);
        assert_eq!(t[0].endpoint.to_string(), "/tmp/d/.s.PGSQL.5499");
        assert_eq!(t[0].database.as_deref(), Some("app"));
        assert_eq!(t[0].query_timeout, QUERY_TIMEOUT);
        assert_eq!(targets(&host, &c)[0].endpoint.to_string(), "/tmp/s");
    }
}
