use super::*;
use crate::backup::catalog;
use crate::backup::testenv::*;
use crate::host::{ExecOutput, Host};

fn dump() -> String {
    (0..20_000)
        .map(|i| format!("INSERT INTO t VALUES ({i});\n"))
        .collect()
}

fn opts() -> Options {
    Options {
        kind: Kind::Logical,
        encoding: Encoding::default(),
        parallel: 2,
        expected: None,
        concurrency: 2,
    }
}

fn datadir() -> (tempfile::TempDir, Host, Instance) {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("datadrive/mysql/app")).unwrap();
    std::fs::write(
        d.path().join("datadrive/mysql/app/t.ibd"),
        vec![0u8; 100_000],
    )
    .unwrap();
    let host = Host::with_root(d.path());
    let inst = instance(Engine::Mariadb, Path::new("/datadrive/mysql"));
    (d, host, inst)
}

use std::path::Path;

#[test]
fn a_backup_writes_its_objects_then_the_manifest() {
    let (_d, host, inst) = datadir();
    let f = fake_mariadb(&dump(), "");
    let store = mem_store();
    let rt = crate::net::runtime().unwrap();
    let env = env(&host, &f, &rt, &store);
    let mut lines = Vec::new();
    let m = take(&env, &inst, &opts(), &mut |l| lines.push(l)).unwrap();
    assert_eq!(m.engine, "mariadb");
    assert_eq!(m.engine_version, "10.11.6-MariaDB-0+deb12u1");
    assert_eq!(m.source_bytes, 100_000);
    assert_eq!(m.start.get("gtid").map(String::as_str), Some("0-1-42"));
    assert_eq!(m.objects.len(), 1);
    let o = &m.objects[0];
    assert_eq!(o.stored.name, format!("{}/data.sql.zst", m.id));
    assert_eq!(o.plain_bytes, dump().len() as u64);
    assert!(o.tool.contains("--single-transaction"), "{}", o.tool);
    assert!(m.id.starts_with("20261118T"), "{}", m.id);
    let all = rt.block_on(catalog::scan(&store)).unwrap();
    assert_eq!(all.len(), 1);
    assert!(all[0].complete());
    assert_eq!(all[0].manifest.as_ref().unwrap(), &m);
    assert!(lines.iter().any(|l| l.contains("complete")), "{lines:?}");
}

#[test]
fn a_failing_dump_leaves_no_backup_and_says_why() {
    let (_d, host, inst) = datadir();
    let f = fake_mariadb("", "");
    f.answers.lock().unwrap().insert(
        0,
        (
            "mysqldump".into(),
            ExecOutput {
                status: 2,
                stdout: dump(),
                stderr: "mysqldump: Got error: 1045: Access denied".into(),
            },
        ),
    );
    let store = mem_store();
    let rt = crate::net::runtime().unwrap();
    let env = env(&host, &f, &rt, &store);
    let e = take(&env, &inst, &opts(), &mut |_| {}).unwrap_err();
    let t = format!("{e:#}");
    assert!(
        t.contains("nothing was recorded") && t.contains("Access denied") && t.contains("status 2"),
        "{t}"
    );
    assert!(rt.block_on(catalog::scan(&store)).unwrap().is_empty());
}

#[test]
fn a_partial_backup_of_this_host_is_cleaned_by_the_next_run() {
    let (_d, host, inst) = datadir();
    let f = fake_mariadb(&dump(), "");
    let store = mem_store();
    let rt = crate::net::runtime().unwrap();
    let env = env(&host, &f, &rt, &store);
    // What a run killed mid-upload leaves: started.json and an object, no manifest.
    let old = "20261117T000000Z-mariadb-logical-dead";
    rt.block_on(async {
        let st = Started {
            id: old.into(),
            host: "db1".into(),
            started: "x".into(),
            dbhost_version: "0".into(),
        };
        put_small(
            &store,
            &format!("{old}/started.json"),
            serde_json::to_vec(&st).unwrap(),
        )
        .await
        .unwrap();
        put_small(&store, &format!("{old}/data.sql.zst"), vec![1, 2, 3])
            .await
            .unwrap();
    });
    let before = rt.block_on(catalog::scan(&store)).unwrap();
    assert_eq!(before.len(), 1);
    assert!(!before[0].complete(), "a partial backup is never complete");
    let mut lines = Vec::new();
    take(&env, &inst, &opts(), &mut |l| lines.push(l)).unwrap();
    let after = rt.block_on(catalog::scan(&store)).unwrap();
    assert_eq!(after.len(), 1);
    assert_ne!(after[0].id, old);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("removed partial backup") && l.contains(old)),
        "{lines:?}"
    );
}

#[test]
fn postgres_logical_dumps_globals_then_each_database() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("pg/base")).unwrap();
    let host = Host::with_root(d.path());
    let inst = instance(Engine::Postgresql, Path::new("/pg"));
    let f = crate::host::FakeExec::new();
    f.db.answer(
        "SHOW server_version",
        crate::db::client::Rows::value("15.8"),
    );
    f.db.answer(
        "SELECT pg_current_wal_lsn()",
        crate::db::client::Rows::value("0/3000060"),
    );
    f.db.answer("SELECT datname", column(&["app", "postgres", "shop"]));
    f.answer(
        "runuser -u postgres -- pg_dumpall",
        ok("CREATE ROLE app;\n"),
    );
    f.answer("runuser -u postgres -- pg_dump", ok("PGDMP..."));
    let store = mem_store();
    let rt = crate::net::runtime().unwrap();
    let env = env(&host, &f, &rt, &store);
    let m = take(&env, &inst, &opts(), &mut |_| {}).unwrap();
    let names: Vec<String> = m
        .objects
        .iter()
        .map(|o| o.stored.name.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "globals.sql.zst",
            "db-app.pgdump.zst",
            "db-postgres.pgdump.zst",
            "db-shop.pgdump.zst"
        ]
    );
    assert_eq!(m.objects[2].database.as_deref(), Some("postgres"));
    assert_eq!(m.start.get("lsn").map(String::as_str), Some("0/3000060"));
}
