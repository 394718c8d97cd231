//! Test scaffolding for the backup room: an in-memory destination, a fixed clock, a fake
//! database that answers the queries `take` and `restore` make.

use super::dest::{Service, Store};
use super::Env;
use crate::db::client::Rows;
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

/// Rows of one text column.
pub fn column(values: &[&str]) -> Rows {
    Rows {
        columns: vec!["c".into()],
        rows: values.iter().map(|v| vec![Some(v.to_string())]).collect(),
        affected: 0,
    }
}

/// A MariaDB that answers version, GTID and schema queries; `dump` is what mariadb-dump prints.
pub fn fake_mariadb(dump: &str, user_dbs: &str) -> FakeExec {
    let f = FakeExec::new();
    f.db.answer("SELECT VERSION()", Rows::value("10.11.6-MariaDB-0+deb12u1"));
    f.db.answer("SELECT @@GLOBAL.gtid_current_pos", Rows::value("0-1-42"));
    let dbs: Vec<&str> = user_dbs.lines().filter(|l| !l.is_empty()).collect();
    f.db.answer("SELECT schema_name", column(&dbs));
    f.answer("mysqldump", ok(dump));
    f.answer("mariadb-dump", ok(dump));
    f
}
