use super::*;
use crate::backup::catalog;
use crate::backup::take::{self, Options};
use crate::backup::testenv::*;
use crate::host::{FakeExec, Host, RealExec};

fn dump() -> String {
    (0..5_000)
        .map(|i| format!("INSERT INTO t VALUES ({i});\n"))
        .collect()
}

fn logical(
    host: &Host,
    f: &FakeExec,
    rt: &tokio::runtime::Runtime,
    store: &crate::backup::dest::Store,
) -> Manifest {
    let inst = instance(Engine::Mariadb, Path::new("/datadrive/mysql"));
    std::fs::create_dir_all(host.path("/datadrive/mysql")).unwrap();
    let e = env(host, f, rt, store);
    take::take(
        &e,
        &inst,
        &Options {
            kind: Kind::Logical,
            encoding: Default::default(),
            parallel: 1,
            expected: None,
            concurrency: 2,
        },
        &mut |_| {},
    )
    .unwrap()
}

#[test]
fn select_picks_latest_verified_or_id_and_refuses_partials() {
    use crate::backup::manifest::VerifyRecord;
    let mk = |id: &str, complete: bool, ok: Option<bool>| catalog::Entry {
        id: id.into(),
        manifest: complete.then(|| crate::backup::manifest::tests_support::sample(id)),
        verify: ok.map(|ok| VerifyRecord {
            id: id.into(),
            verified: "t".into(),
            ok,
            host: "h".into(),
            dbhost_version: "0".into(),
            checks: vec![],
            tables: Default::default(),
            error: None,
        }),
        started: None,
        problem: None,
    };
    let v = vec![
        mk("20261201T000000Z-a", true, Some(true)),
        mk("20261202T000000Z-b", true, Some(false)),
        mk("20261203T000000Z-c", true, None),
        mk("20261204T000000Z-d", false, None),
    ];
    assert_eq!(select(&v, "latest").unwrap().id, "20261203T000000Z-c");
    assert_eq!(
        select(&v, "latest-verified").unwrap().id,
        "20261201T000000Z-a"
    );
    assert_eq!(
        select(&v, "20261202T000000Z-b").unwrap().id,
        "20261202T000000Z-b"
    );
    let e = select(&v, "20261204T000000Z-d").unwrap_err().to_string();
    assert!(e.contains("not a complete backup"), "{e}");
    assert!(select(&v, "nope").is_err());
    assert!(select(&[], "latest").is_err());
}

#[test]
fn logical_into_a_directory_writes_the_plain_dump() {
    let d = tempfile::tempdir().unwrap();
    let host = Host::with_root(d.path());
    let f = fake_mariadb(&dump(), "");
    let store = mem_store();
    let rt = crate::net::runtime().unwrap();
    let m = logical(&host, &f, &rt, &store);
    let e = env(&host, &f, &rt, &store);
    let out = d.path().join("restored");
    to_dir(&e, &m, &Keys { identities: &[] }, &out, &mut |_| {}).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("data.sql")).unwrap(),
        dump()
    );
    // Not into a directory that holds something.
    let err = to_dir(&e, &m, &Keys { identities: &[] }, &out, &mut |_| {}).unwrap_err();
    assert_eq!(crate::exit::code_for(&err), crate::exit::REFUSED, "{err:#}");
}

#[test]
fn a_corrupt_object_is_refused_and_nothing_is_left() {
    use object_store::ObjectStoreExt;
    let d = tempfile::tempdir().unwrap();
    let host = Host::with_root(d.path());
    let f = fake_mariadb(&dump(), "");
    let store = mem_store();
    let rt = crate::net::runtime().unwrap();
    let m = logical(&host, &f, &rt, &store);
    let key = store.key(&m.objects[0].stored.name);
    let mut b = rt
        .block_on(async { store.store.get(&key).await.unwrap().bytes().await.unwrap() })
        .to_vec();
    b[10] ^= 0x40;
    rt.block_on(store.store.put(&key, bytes::Bytes::from(b).into()))
        .unwrap();
    let e = env(&host, &f, &rt, &store);
    let out = d.path().join("restored");
    let err = to_dir(&e, &m, &Keys { identities: &[] }, &out, &mut |_| {}).unwrap_err();
    let t = format!("{err:#}");
    assert!(
        t.contains(&m.objects[0].stored.name) && t.contains(&m.objects[0].stored.sha256),
        "{t}"
    );
    assert!(!out.exists());
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("restore"))
        .collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");
    // Onto the host: refused before the server sees a byte.
    let inst = instance(Engine::Mariadb, Path::new("/datadrive/mysql"));
    let err = to_host(&e, &inst, &m, &Keys { identities: &[] }, false, &mut |_| {}).unwrap_err();
    assert!(
        format!("{err:#}").contains("the server was not touched"),
        "{err:#}"
    );
    assert!(!f.calls().iter().any(|c| c == "mariadb"), "{:?}", f.calls());
}

#[test]
fn a_server_with_data_is_refused_without_force() {
    let d = tempfile::tempdir().unwrap();
    let host = Host::with_root(d.path());
    let f = fake_mariadb(&dump(), "app\nshop\n");
    let store = mem_store();
    let rt = crate::net::runtime().unwrap();
    let m = logical(&host, &f, &rt, &store);
    let e = env(&host, &f, &rt, &store);
    let inst = instance(Engine::Mariadb, Path::new("/datadrive/mysql"));
    let err = to_host(&e, &inst, &m, &Keys { identities: &[] }, false, &mut |_| {}).unwrap_err();
    assert_eq!(crate::exit::code_for(&err), crate::exit::REFUSED);
    let t = err.to_string();
    assert!(
        t.contains("database app, database shop") && t.contains("--force"),
        "{t}"
    );
    let pg = instance(Engine::Postgresql, Path::new("/pg"));
    let err = to_host(&e, &pg, &m, &Keys { identities: &[] }, true, &mut |_| {}).unwrap_err();
    assert!(
        err.to_string()
            .contains("is of mariadb but this host runs postgresql"),
        "{err}"
    );
}

#[test]
fn logical_onto_the_host_replays_into_the_client() {
    let d = tempfile::tempdir().unwrap();
    let host = Host::with_root(d.path());
    let f = fake_mariadb(&dump(), "");
    let store = mem_store();
    let rt = crate::net::runtime().unwrap();
    let m = logical(&host, &f, &rt, &store);
    let e = env(&host, &f, &rt, &store);
    let inst = instance(Engine::Mariadb, Path::new("/datadrive/mysql"));
    to_host(&e, &inst, &m, &Keys { identities: &[] }, false, &mut |_| {}).unwrap();
    let calls = f.calls.lock().unwrap();
    let fed = calls
        .iter()
        .find(|c| c.program == "mariadb" && c.args.is_empty())
        .expect("client ran");
    assert_eq!(fed.stdin.as_deref(), Some(dump().as_bytes()));
    assert!(f.db.statements().iter().any(|s| s == "FLUSH PRIVILEGES"));
    // The staging directory is gone.
    assert!(std::fs::read_dir(host.path("/datadrive"))
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().contains("restore")));
}

#[test]
fn a_physical_tar_backup_unpacks_into_a_new_directory() {
    // The real tar on both ends: a datadir-like tree streamed out and unpacked again.
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("base/1")).unwrap();
    std::fs::write(src.join("PG_VERSION"), "15\n").unwrap();
    std::fs::write(src.join("base/1/1234"), vec![7u8; 200_000]).unwrap();
    let store = mem_store();
    let rt = crate::net::runtime().unwrap();
    let host = Host::real();
    let cmd = CommandSpec::new("tar")
        .args(["-c", "-f", "-", "-C"])
        .arg(src.display().to_string())
        .arg(".");
    let id = "20261118T000000Z-postgresql-physical-abcd";
    let up = pipe::upload_command(
        &rt,
        &RealExec,
        &cmd,
        &store,
        &format!("{id}/base.tar.zst"),
        &Default::default(),
        pipe::Parts {
            size: 8 << 20,
            concurrency: 2,
        },
    )
    .unwrap();
    let mut m = crate::backup::manifest::tests_support::sample(id);
    m.kind = Kind::Physical;
    m.objects = vec![Object {
        stored: up.stored,
        format: Format::Tar,
        plain_bytes: up.plain_bytes,
        plain_sha256: up.plain_sha256,
        database: None,
        tool: cmd.display(),
    }];
    let e = env(&host, &RealExec, &rt, &store);
    let out = d.path().join("restored");
    to_dir(&e, &m, &Keys { identities: &[] }, &out, &mut |_| {}).unwrap();
    assert_eq!(
        std::fs::read(out.join("base/1/1234")).unwrap(),
        vec![7u8; 200_000]
    );
    assert_eq!(
        std::fs::read_to_string(out.join("PG_VERSION")).unwrap(),
        "15\n"
    );
}

#[test]
fn too_little_room_is_refused_before_anything_changes() {
    let d = tempfile::tempdir().unwrap();
    let err = check_room(d.path(), u64::MAX / 2, "restoring backup X").unwrap_err();
    assert_eq!(crate::exit::code_for(&err), crate::exit::REFUSED);
    let t = err.to_string();
    assert!(
        t.contains("restoring backup X needs about") && t.contains("nothing was changed"),
        "{t}"
    );
    check_room(d.path(), 1, "restoring backup X").unwrap();
}
