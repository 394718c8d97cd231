//! Test scaffolding for the backup room: an in-memory destination, a fixed clock, a fake
//! database that answers the queries `take` and `restore` make.

use super::dest::{Service, Store};
use super::sql::Conn;
use super::Env;
use crate::db::engine::{Engine, Instance, PgCluster, Source};
use crate::host::{Exec, ExecOutput, FakeExec, Host};
use object_store::path::Path as ObjPath;
use std::path::Path;

pub fn mem_store() -> Store {
    Store {
        store: std::sync::Arc::new(object_store::memory::InMemory::new()),
        prefix: ObjPath::from("db1"),
        service: Service::Azure,
        name: "mem://backups/db1".into(),
    }
}

pub const T0: i64 = 1_795_000_000;

pub fn clock() -> i64 {
    T0
}

pub fn env<'a>(
    host: &'a Host,
    exec: &'a dyn Exec,
    rt: &'a tokio::runtime::Runtime,
    store: &'a Store,
) -> Env<'a> {
    Env {
        host,
        exec,
        rt,
        store,
        now: &clock,
        hostname: "db1".into(),
    }
}

pub fn instance(engine: Engine, datadir: &Path) -> Instance {
    Instance {
        engine,
        datadir: datadir.to_path_buf(),
        source: Source::Default,
        config_datadir: datadir.to_path_buf(),
        unit: "mariadb.service".into(),
        socket: None,
        dropin_dir: None,
        pg: (engine == Engine::Postgresql).then(|| PgCluster {
            version: "15".into(),
            cluster: "main".into(),
            conf: "/etc/postgresql/15/main/postgresql.conf".into(),
            port: 5432,
        }),
    }
}

pub fn ok(stdout: &str) -> ExecOutput {
    ExecOutput {
        status: 0,
        stdout: stdout.into(),
        stderr: String::new(),
    }
}

/// The command-line prefix of a query starting with `sql_start` on `conn` (for FakeExec rules).
pub fn query_prefix(conn: &Conn, sql_start: &str) -> String {
    super::sql::command(conn, sql_start)
        .display()
        .trim_end_matches('\'')
        .to_string()
}

/// A MariaDB that answers version, GTID and schema queries; `dump` is what mariadb-dump prints.
pub fn fake_mariadb(dump: &str, user_dbs: &str) -> FakeExec {
    let f = FakeExec::new();
    let c = Conn::Local(instance(Engine::Mariadb, Path::new("/x")), None);
    f.answer(
        &query_prefix(&c, "SELECT VERSION()"),
        ok("10.11.6-MariaDB-0+deb12u1\n"),
    );
    f.answer(
        &query_prefix(&c, "SELECT @@GLOBAL.gtid_current_pos"),
        ok("0-1-42\n"),
    );
    f.answer(&query_prefix(&c, "SELECT schema_name"), ok(user_dbs));
    f.answer("mysqldump", ok(dump));
    f.answer("mariadb-dump", ok(dump));
    f
}
