//! The whole relocation against a fake host tree and a stateful fake database server (an
//! `Exec` that models systemctl and the SQL client). The real servers run only in the QEMU
//! guests.

use super::*;
use crate::db::client::{Client, DbError, Rows, Session, Target};
use crate::host::{CommandSpec, ExecOutput};
use std::sync::Mutex;
use std::time::Duration;

/// A fake MariaDB/PostgreSQL: `systemctl start` reads the configured datadir from the fake tree
/// (refusing to start when it is missing, like the real server), the server answers `SELECT 1`
/// and the datadir only while running (log lines `sql: ...`).
struct FakeDb {
    host: Host,
    engine: Engine,
    serving: Mutex<Option<PathBuf>>,
    log: Mutex<Vec<String>>,
    /// `mariadb.socket` (socket activation): `None` = no such unit, else whether it listens. A
    /// client connecting while it listens and the server is down starts the server.
    socket: Mutex<Option<bool>>,
}

impl FakeDb {
    fn new(host: &Host, engine: Engine, running: bool) -> Self {
        let db = FakeDb {
            host: host.clone(),
            engine,
            serving: Mutex::new(None),
            log: Mutex::new(Vec::new()),
            socket: Mutex::new(None),
        };
        if running {
            let d = db.configured();
            *db.serving.lock().unwrap() = Some(d);
        }
        db
    }
    fn configured(&self) -> PathBuf {
        engine::discover_with(
            &self.host,
            &crate::host::FakeExec::new(),
            self.engine,
            false,
        )
        .unwrap()
        .config_datadir
    }
    fn serving(&self) -> Option<PathBuf> {
        self.serving.lock().unwrap().clone()
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn ok(stdout: &str) -> ExecOutput {
    ExecOutput {
        status: 0,
        stdout: stdout.into(),
        stderr: String::new(),
    }
}

fn fail(status: i32, stderr: &str) -> ExecOutput {
    ExecOutput {
        status,
        stdout: String::new(),
        stderr: stderr.into(),
    }
}

impl Exec for FakeDb {
    fn output(&self, cmd: &CommandSpec) -> Result<ExecOutput> {
        let line = cmd.display();
        self.log.lock().unwrap().push(line.clone());
        // One systemctl transaction over several units (`stop mariadb.socket mariadb.service`):
        // applied unit by unit, in order, each logged as its own line too.
        if cmd.program == "systemctl"
            && cmd.args.len() > 2
            && matches!(cmd.args[0].as_str(), "start" | "stop")
        {
            for u in &cmd.args[1..] {
                let o =
                    self.output(&CommandSpec::new("systemctl").args([cmd.args[0].as_str(), u]))?;
                if o.status != 0 {
                    return Ok(o);
                }
            }
            return Ok(ok(""));
        }
        let mut serving = self.serving.lock().unwrap();
        let a: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
        let mut socket = self.socket.lock().unwrap();
        Ok(match (cmd.program.as_str(), a.as_slice()) {
            ("systemctl", ["show", "-P", "TriggeredBy", _]) => ok(if socket.is_some() {
                "mariadb.socket\n"
            } else {
                "\n"
            }),
            ("systemctl", ["is-active", "--quiet", "mariadb.socket"]) => {
                if *socket == Some(true) {
                    ok("")
                } else {
                    fail(3, "")
                }
            }
            ("systemctl", [verb @ ("start" | "stop"), "mariadb.socket"]) if socket.is_some() => {
                *socket = Some(*verb == "start");
                ok("")
            }
            ("systemctl", ["is-active", "--quiet", _]) => {
                if serving.is_some() {
                    ok("")
                } else {
                    fail(3, "")
                }
            }
            ("systemctl", ["stop", _]) => {
                *serving = None;
                ok("")
            }
            ("systemctl", ["start", _]) => {
                let d = self.configured();
                if !self.host.path(&d).join("marker").is_file() {
                    return Ok(fail(1, "datadir missing or empty"));
                }
                *serving = Some(d);
                ok("")
            }
            ("systemctl", ["daemon-reload"]) => ok(""),
            _ => fail(1, "unexpected command"),
        })
    }
    fn db(&self) -> &dyn Client {
        self
    }
}

/// The fake server's session: answers while the server runs.
struct FakeDbSession<'a>(&'a FakeDb, Target);

impl Session for FakeDbSession<'_> {
    fn query(&mut self, sql: &str) -> Result<Rows> {
        self.0.log.lock().unwrap().push(format!("sql: {sql}"));
        let serving = self.0.serving.lock().unwrap();
        let Some(dir) = serving.as_ref() else {
            return Err(DbError::Protocol {
                endpoint: self.1.endpoint.to_string(),
                message: "the server went away".into(),
            }
            .into());
        };
        match sql {
            "SELECT 1" => Ok(Rows::value("1")),
            "SELECT @@datadir" | "SHOW data_directory" => {
                Ok(Rows::value(&format!("{}/", dir.display())))
            }
            _ => anyhow::bail!("unknown query {sql}"),
        }
    }
}

impl Client for FakeDb {
    fn connect(&self, t: &Target) -> Result<Box<dyn Session + '_>> {
        self.log.lock().unwrap().push(format!("connect {t}"));
        let mut serving = self.serving.lock().unwrap();
        // a client while the server is down: socket activation starts it (old or new datadir,
        // whatever the configuration says at that moment)
        if serving.is_none() && *self.socket.lock().unwrap() == Some(true) {
            *serving = Some(self.configured());
        }
        if serving.is_none() {
            return Err(DbError::Unreachable {
                endpoint: t.endpoint.to_string(),
                reason: "Connection refused".into(),
            }
            .into());
        }
        Ok(Box::new(FakeDbSession(self, t.clone())))
    }
}

fn put(root: &Path, abs: &str, text: &str) {
    let p = root.join(abs.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn mariadb_host(root: &Path) {
    put(
        root,
        "/etc/mysql/my.cnf",
        "[client-server]\n!includedir /etc/mysql/conf.d/\n!includedir /etc/mysql/mariadb.conf.d/\n",
    );
    put(
        root,
        "/etc/mysql/mariadb.conf.d/50-server.cnf",
        "[mysqld]\n#datadir = /var/lib/mysql\n",
    );
    put(root, "/lib/systemd/system/mariadb.service", "");
    let dd = root.join("var/lib/mysql");
    put(root, "/var/lib/mysql/marker", "the old datadir");
    put(root, "/var/lib/mysql/ibdata1", &"x".repeat(100_000));
    put(root, "/var/lib/mysql/mysql/user.frm", "users");
    put(root, "/var/lib/mysql/db1/t1.ibd", &"t".repeat(40_000));
    fs::set_permissions(&dd, fs::Permissions::from_mode(0o750)).unwrap();
    fs::create_dir_all(root.join("data")).unwrap();
}

struct Env {
    _d: tempfile::TempDir,
    host: Host,
    db: FakeDb,
    journal: PathBuf,
}

fn env(running: bool) -> Env {
    let d = tempfile::tempdir().unwrap();
    mariadb_host(d.path());
    let host = Host::with_root(d.path());
    let db = FakeDb::new(&host, Engine::Mariadb, running);
    let journal = d.path().join("var/lib/dbhost/relocate.json");
    Env {
        _d: d,
        host,
        db,
        journal,
    }
}

fn copts() -> CopyOptions {
    CopyOptions {
        buf_size: 64 << 10,
        hot_window: Duration::ZERO,
        margin_bytes: Some(0),
        ..Default::default()
    }
}

fn no_wait() -> Wait {
    Wait {
        attempts: 3,
        delay: Duration::from_secs(1),
        sleep: |_| {},
    }
}

fn fresh_state(e: &Env) -> RelocateState {
    let inst = engine::discover_with(&e.host, &e.db, Engine::Mariadb, true).unwrap();
    RelocateState::new(
        inst,
        Path::new("/data/mysql"),
        "20261122T010203Z",
        Path::new("/var/lib/dbhost"),
    )
}

fn load(e: &Env) -> RelocateState {
    serde_json::from_slice(&fs::read(&e.journal).unwrap()).unwrap()
}

/// Run `f` with a context whose `save` writes the journal file.
fn with_ctx<T>(e: &Env, opts: CopyOptions, f: impl FnOnce(&mut Ctx) -> T) -> T {
    let journal = e.journal.clone();
    let mut save = move |s: &RelocateState| -> Result<()> {
        atomic_write(&journal, &serde_json::to_vec(s)?, 0o600)?;
        Ok(())
    };
    let mut progress = |_p: Progress| {};
    let mut cx = Ctx {
        host: &e.host,
        exec: &e.db,
        copy: opts,
        wait: no_wait(),
        progress: &mut progress,
        save: &mut save,
        require_separate_fs: false,
    };
    f(&mut cx)
}

fn run_all(e: &Env, st: &mut RelocateState) -> Result<Vec<StepReport>> {
    let r = with_ctx(e, copts(), |cx| run(cx, st, &mut |_| {}));
    atomic_write(&e.journal, &serde_json::to_vec(st).unwrap(), 0o600).unwrap();
    r
}

fn assert_relocated(e: &Env, st: &RelocateState) {
    let root = e.host.root();
    assert_eq!(e.db.serving().as_deref(), Some(Path::new("/data/mysql")));
    assert!(root
        .join("var/lib/mysql.dbhost-old-20261122T010203Z/marker")
        .is_file());
    assert!(!root.join("var/lib/mysql").exists());
    assert_eq!(
        fs::read_to_string(root.join("etc/mysql/mariadb.conf.d/zz-dbhost.cnf")).unwrap(),
        engine::render_mysql_dropin(Path::new("/data/mysql"))
    );
    assert!(
        fs::read_to_string(root.join("etc/systemd/system/mariadb.service.d/dbhost.conf"))
            .unwrap()
            .contains("RequiresMountsFor=/data/mysql")
    );
    let rep = copy::check_metadata(&e.host.path(&st.kept_old), &root.join("data/mysql")).unwrap();
    assert!(rep.ok(), "{:?}", rep.mismatches);
    assert_eq!(
        fs::metadata(root.join("data/mysql")).unwrap().mode() & 0o7777,
        0o750
    );
}

#[test]
fn relocates_a_running_mariadb_and_a_rerun_changes_nothing() {
    let e = env(true);
    let mut st = fresh_state(&e);
    let reps = run_all(&e, &mut st).unwrap();
    let names: Vec<_> = reps.iter().map(|r| r.step.name()).collect();
    assert_eq!(names, STEPS.iter().map(|s| s.name()).collect::<Vec<_>>());
    let changed: Vec<Step> = reps
        .iter()
        .filter(|r| r.outcome == Outcome::Changed)
        .map(|r| r.step)
        .collect();
    // nothing changed between pass 1 and the stop, so the delta pass has nothing to do
    assert_eq!(
        changed,
        vec![
            Step::Pass1,
            Step::VerifyPass1,
            Step::Stop,
            Step::SwitchConfig,
            Step::KeepOld,
            Step::Start
        ]
    );
    assert_relocated(&e, &st);
    assert!(st.was_running);
    // the downtime holds stop … start only, and the copy happened before the stop
    let log = e.db.log();
    let stop = log
        .iter()
        .position(|l| l == "systemctl stop mariadb.service")
        .unwrap();
    let start = log
        .iter()
        .position(|l| l == "systemctl start mariadb.service")
        .unwrap();
    assert!(stop < start);
    // the unit drop-in is written and reloaded while the server still runs: no daemon-reload
    // (seconds on a busy host) inside the downtime window
    let reloads: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, l)| *l == "systemctl daemon-reload")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(reloads.len(), 1, "{log:#?}");
    assert!(reloads[0] < stop, "{log:#?}");

    let again = run_all(&e, &mut st).unwrap();
    assert!(
        again.iter().all(|r| r.outcome == Outcome::Unchanged),
        "{again:#?}"
    );
    assert!(again[..9].iter().all(|r| r.observed == Observed::Done));
    assert_relocated(&e, &st);
}

#[test]
fn socket_activation_is_stopped_for_the_copy_and_started_again() {
    let e = env(true);
    *e.db.socket.lock().unwrap() = Some(true);
    let mut st = fresh_state(&e);
    with_ctx(&e, copts(), |cx| {
        for step in &STEPS[..4] {
            if let Observed::Todo(_) = observe(cx, &st, *step).unwrap() {
                apply(cx, &mut st, *step).unwrap();
            }
        }
    });
    assert_eq!(st.stopped_sockets, vec!["mariadb.socket".to_string()]);
    assert_eq!(load(&e).stopped_sockets, st.stopped_sockets, "recorded");
    // a client now cannot start the server on the old datadir behind pass 2's back
    let t = crate::db::local::targets(&e.host, &st.instance).remove(0);
    assert!(e.db.connect(&t).is_err());
    assert_eq!(e.db.serving(), None);
    let reps = run_all(&e, &mut st).unwrap();
    assert!(reps
        .iter()
        .all(|r| r.observed != Observed::Conflict(String::new())));
    assert_relocated(&e, &st);
    assert_eq!(
        *e.db.socket.lock().unwrap(),
        Some(true),
        "socket listens again"
    );
    let log = e.db.log();
    let at = |l: &str| log.iter().position(|x| x == l).unwrap();
    assert!(at("systemctl stop mariadb.socket") < at("systemctl stop mariadb.service"));
    assert!(at("systemctl start mariadb.socket") < at("systemctl start mariadb.service"));
    let again = run_all(&e, &mut st).unwrap();
    assert!(again.iter().all(|r| r.outcome == Outcome::Unchanged));
}

#[test]
fn a_crash_after_any_step_converges_on_rerun() {
    for k in 0..STEPS.len() {
        let e = env(true);
        let mut st = fresh_state(&e);
        atomic_write(&e.journal, &serde_json::to_vec(&st).unwrap(), 0o600).unwrap();
        // run the first k steps, then "crash": only the journal survives
        with_ctx(&e, copts(), |cx| {
            for step in &STEPS[..k] {
                if let Observed::Todo(_) = observe(cx, &st, *step).unwrap() {
                    apply(cx, &mut st, *step).unwrap();
                }
            }
        });
        // source changes while dbhost is down (only possible while the server runs)
        if e.db.serving().as_deref() == Some(Path::new("/var/lib/mysql")) {
            put(e.host.root(), "/var/lib/mysql/db1/late.ibd", "late write");
        }
        let mut st2 = load(&e);
        run_all(&e, &mut st2).unwrap_or_else(|err| panic!("after step {k}: {err:#}"));
        assert_relocated(&e, &st2);
        if k < 4 {
            assert!(e.host.root().join("data/mysql/db1/late.ibd").is_file());
        }
    }
}

#[test]
fn too_small_target_refuses_before_any_change() {
    let e = env(true);
    let mut st = fresh_state(&e);
    let o = CopyOptions {
        margin_bytes: Some(1 << 62),
        ..copts()
    };
    let err = with_ctx(&e, o, |cx| run(cx, &mut st, &mut |_| {})).unwrap_err();
    assert!(
        err.chain()
            .any(|c| c.downcast_ref::<copy::NoRoom>().is_some()),
        "{err:#}"
    );
    assert!(!e.host.root().join("data/mysql").exists());
    assert!(!e.db.log().iter().any(|l| l.contains("stop")));
    assert_eq!(e.db.serving().as_deref(), Some(Path::new("/var/lib/mysql")));
}

#[test]
fn foreign_data_in_the_target_is_a_conflict() {
    let e = env(true);
    put(e.host.root(), "/data/mysql/somebody-elses", "data");
    let mut st = fresh_state(&e);
    let err = run_all(&e, &mut st).unwrap_err();
    assert!(err.to_string().contains("did not copy"), "{err:#}");
    assert!(e.host.root().join("data/mysql/somebody-elses").is_file());
}

#[test]
fn rollback_restores_config_and_datadir() {
    let e = env(true);
    let mut st = fresh_state(&e);
    let before =
        fs::read_to_string(e.host.root().join("etc/mysql/mariadb.conf.d/50-server.cnf")).unwrap();
    run_all(&e, &mut st).unwrap();
    let st = load(&e);
    let r = with_ctx(&e, copts(), |cx| rollback(cx, &st)).unwrap();
    assert!(r.iter().all(|(_, o)| *o == Outcome::Changed), "{r:?}");
    let root = e.host.root();
    assert!(!root.join("etc/mysql/mariadb.conf.d/zz-dbhost.cnf").exists());
    assert!(!root.join("etc/systemd/system/mariadb.service.d").exists());
    assert_eq!(
        fs::read_to_string(root.join("etc/mysql/mariadb.conf.d/50-server.cnf")).unwrap(),
        before
    );
    assert!(root.join("var/lib/mysql/marker").is_file());
    assert!(!e.host.path(&st.kept_old).exists());
    assert_eq!(e.db.serving().as_deref(), Some(Path::new("/var/lib/mysql")));
    assert!(
        root.join("data/mysql/marker").is_file(),
        "the new copy is left in place"
    );
    // twice: nothing to do
    let r = with_ctx(&e, copts(), |cx| rollback(cx, &st)).unwrap();
    assert!(r.iter().all(|(_, o)| *o == Outcome::Unchanged), "{r:?}");
    // and relocating again works (the manifest makes it a delta)
    let mut st3 = fresh_state(&e);
    st3.kept_old = PathBuf::from("/var/lib/mysql.dbhost-old-20261122T010203Z");
    run_all(&e, &mut st3).unwrap();
    assert_relocated(&e, &st3);
}

#[test]
fn rollback_of_a_half_done_relocation() {
    // crashed after the config switch, before the rename and start
    let e = env(true);
    let mut st = fresh_state(&e);
    with_ctx(&e, copts(), |cx| {
        for step in &STEPS[..7] {
            apply(cx, &mut st, *step).unwrap();
        }
    });
    assert_eq!(e.db.serving(), None);
    let st = load(&e);
    with_ctx(&e, copts(), |cx| rollback(cx, &st)).unwrap();
    assert_eq!(e.db.serving().as_deref(), Some(Path::new("/var/lib/mysql")));
    assert!(!e
        .host
        .root()
        .join("etc/mysql/mariadb.conf.d/zz-dbhost.cnf")
        .exists());
}

#[test]
fn stopped_server_stays_stopped_and_is_not_health_checked_on_rollback() {
    let e = env(false);
    let mut st = fresh_state(&e);
    run_all(&e, &mut st).unwrap();
    assert!(!st.was_running);
    assert_relocated(&e, &st);
    let st = load(&e);
    with_ctx(&e, copts(), |cx| rollback(cx, &st)).unwrap();
    assert_eq!(e.db.serving(), None);
}

#[test]
fn postgresql_relocation() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    put(
        r,
        "/etc/postgresql/15/main/postgresql.conf",
        "data_directory = '/var/lib/postgresql/15/main'\nport = 5432\n",
    );
    put(r, "/var/lib/postgresql/15/main/marker", "pg");
    put(r, "/var/lib/postgresql/15/main/PG_VERSION", "15\n");
    fs::set_permissions(
        r.join("var/lib/postgresql/15/main"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    fs::create_dir_all(r.join("data")).unwrap();
    let host = Host::with_root(r);
    let db = FakeDb::new(&host, Engine::Postgresql, true);
    let e = Env {
        journal: r.join("var/lib/dbhost/relocate.json"),
        _d: d,
        host,
        db,
    };
    let inst = engine::discover_with(&e.host, &e.db, Engine::Postgresql, true).unwrap();
    assert_eq!(inst.source, engine::Source::Runtime);
    let mut st = RelocateState::new(
        inst,
        Path::new("/data/postgresql/15/main"),
        "S",
        Path::new("/var/lib/dbhost"),
    );
    run_all(&e, &mut st).unwrap();
    assert_eq!(
        e.db.serving().as_deref(),
        Some(Path::new("/data/postgresql/15/main"))
    );
    let conf =
        fs::read_to_string(e.host.root().join("etc/postgresql/15/main/postgresql.conf")).unwrap();
    assert!(conf.contains("data_directory = '/data/postgresql/15/main'"));
    assert_eq!(
        fs::metadata(e.host.root().join("data/postgresql/15/main"))
            .unwrap()
            .mode()
            & 0o7777,
        0o700
    );
    assert!(e
        .db
        .log()
        .iter()
        .any(|l| l.starts_with("connect ") && l.ends_with(".s.PGSQL.5432 as postgres")));
    let again = run_all(&e, &mut st).unwrap();
    assert!(again.iter().all(|r| r.outcome == Outcome::Unchanged));
    let st = load(&e);
    with_ctx(&e, copts(), |cx| rollback(cx, &st)).unwrap();
    let conf =
        fs::read_to_string(e.host.root().join("etc/postgresql/15/main/postgresql.conf")).unwrap();
    assert!(conf.contains("data_directory = '/var/lib/postgresql/15/main'"));
    assert_eq!(
        e.db.serving().as_deref(),
        Some(Path::new("/var/lib/postgresql/15/main"))
    );
}

#[test]
fn stamps() {
    assert_eq!(stamp_of(0), "19700101T000000Z");
    assert_eq!(stamp_of(951_782_400), "20000229T000000Z");
    assert_eq!(stamp_of(1_795_312_857), "20261122T020057Z");
    assert_eq!(stamp_now().len(), 16);
}

#[test]
fn state_record_roundtrips_as_json() {
    let e = env(true);
    let st = fresh_state(&e);
    let j = serde_json::to_string(&st).unwrap();
    assert!(j.contains("\"engine\":\"mariadb\""), "{j}");
    let back: RelocateState = serde_json::from_str(&j).unwrap();
    assert_eq!(back, st);
}

#[test]
fn ubuntu_mysql_placeholders_survive_a_crash_after_the_rename() {
    let d = tempfile::tempdir().unwrap();
    let r = &d.path().to_path_buf();
    put(
        r,
        "/etc/mysql/my.cnf",
        "!includedir /etc/mysql/conf.d/\n!includedir /etc/mysql/mysql.conf.d/\n",
    );
    put(
        r,
        "/etc/mysql/mysql.conf.d/mysqld.cnf",
        "[mysqld]\ndatadir = /var/lib/mysql\n",
    );
    put(r, "/lib/systemd/system/mysql.service", "");
    put(r, "/etc/apparmor.d/usr.sbin.mysqld", "profile\n");
    put(r, "/usr/share/mysql/mysql-systemd-start", "#!/bin/sh\n");
    put(r, "/var/lib/mysql/marker", "old");
    put(r, "/var/lib/mysql/mysql/user.ibd", "users");
    fs::set_permissions(r.join("var/lib/mysql"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::create_dir_all(r.join("data")).unwrap();
    let host = Host::with_root(r);
    let db = FakeDb::new(&host, Engine::Mysql, true);
    let e = Env {
        journal: r.join("var/lib/dbhost/relocate.json"),
        _d: d,
        host,
        db,
    };
    let inst = engine::discover_with(&e.host, &e.db, Engine::Mysql, true).unwrap();
    let mut st = RelocateState::new(
        inst,
        Path::new("/data/mysql"),
        "S",
        Path::new("/var/lib/dbhost"),
    );
    with_ctx(&e, copts(), |cx| {
        for step in &STEPS[..7] {
            apply(cx, &mut st, *step).unwrap();
        }
    });
    atomic_write(&e.journal, &serde_json::to_vec(&st).unwrap(), 0o600).unwrap();
    // crash right after the rename, before the placeholders were made
    fs::rename(
        r.join("var/lib/mysql"),
        r.join("var/lib/mysql.dbhost-old-S"),
    )
    .unwrap();
    let mut st = load(&e);
    let reps = run_all(&e, &mut st).unwrap();
    assert_eq!(reps[7].outcome, Outcome::Changed, "{reps:#?}");
    assert!(r.join("var/lib/mysql/mysql").is_dir());
    assert!(fs::read_dir(r.join("var/lib/mysql/mysql"))
        .unwrap()
        .next()
        .is_none());
    assert_eq!(
        fs::metadata(r.join("var/lib/mysql")).unwrap().mode() & 0o7777,
        0o750
    );
    assert!(
        fs::read_to_string(r.join("etc/apparmor.d/local/usr.sbin.mysqld"))
            .unwrap()
            .contains("/data/mysql/** rwk,")
    );
    assert_eq!(e.db.serving().as_deref(), Some(Path::new("/data/mysql")));
    assert!(run_all(&e, &mut st)
        .unwrap()
        .iter()
        .all(|r| r.outcome == Outcome::Unchanged));
    let st = load(&e);
    with_ctx(&e, copts(), |cx| rollback(cx, &st)).unwrap();
    assert!(r.join("var/lib/mysql/mysql/user.ibd").is_file());
    assert!(!r.join("etc/apparmor.d/local/usr.sbin.mysqld").exists());
    assert_eq!(e.db.serving().as_deref(), Some(Path::new("/var/lib/mysql")));
}

#[test]
fn refuses_when_the_data_filesystem_is_not_mounted() {
    // the fake tree is one filesystem: exactly the "mount missing" situation
    let e = env(true);
    let mut st = fresh_state(&e);
    let mut save = |_s: &RelocateState| -> Result<()> { Ok(()) };
    let mut progress = |_p: Progress| {};
    let mut cx = Ctx {
        host: &e.host,
        exec: &e.db,
        copy: copts(),
        wait: no_wait(),
        progress: &mut progress,
        save: &mut save,
        require_separate_fs: true,
    };
    let err = run(&mut cx, &mut st, &mut |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("is the data filesystem mounted"),
        "{err:#}"
    );
    assert!(!e.host.root().join("data/mysql").exists());
    assert_eq!(e.db.serving().as_deref(), Some(Path::new("/var/lib/mysql")));
}

#[test]
fn adopts_a_datadir_already_on_the_data_disks_without_copying() {
    let e = env(true);
    let root = e.host.root().to_path_buf();
    put(&root, "/data/mysql/marker", "the array's database");
    put(&root, "/data/mysql/ibdata1", "innodb");
    fs::create_dir_all(root.join("data/mysql/mysql")).unwrap();
    let mut st = fresh_state(&e);
    st.adopt = true;
    let reps = run_all(&e, &mut st).unwrap();
    for r in &reps[1..6] {
        if r.step != Step::Stop {
            assert_eq!(r.observed, Observed::Done, "{r:?}");
        }
    }
    assert_eq!(e.db.serving().as_deref(), Some(Path::new("/data/mysql")));
    assert_eq!(
        fs::read_to_string(root.join("data/mysql/marker")).unwrap(),
        "the array's database",
        "adopted data is served, not overwritten"
    );
    assert!(root
        .join("var/lib/mysql.dbhost-old-20261122T010203Z/marker")
        .is_file());
    assert!(!root
        .join("var/lib/dbhost/relocate-mariadb-manifest.json")
        .exists());
    // nothing to adopt → refusal
    let e2 = env(true);
    let mut st2 = fresh_state(&e2);
    st2.adopt = true;
    let err = run_all(&e2, &mut st2).unwrap_err();
    assert!(err.to_string().contains("nothing to adopt"), "{err:#}");
}

#[test]
fn finalize_deletes_the_kept_datadir_only_when_healthy() {
    let e = env(true);
    let mut st = fresh_state(&e);
    run_all(&e, &mut st).unwrap();
    let kept = e.host.path(&st.kept_old);
    assert!(kept.is_dir());
    // server down: refuse
    e.db.output(&CommandSpec::new("systemctl").args(["stop", "mariadb.service"]))
        .unwrap();
    let err = with_ctx(&e, copts(), |cx| finalize(cx, &st)).unwrap_err();
    assert!(err.to_string().contains("not deleting"), "{err:#}");
    assert!(kept.is_dir());
    e.db.output(&CommandSpec::new("systemctl").args(["start", "mariadb.service"]))
        .unwrap();
    assert_eq!(
        with_ctx(&e, copts(), |cx| finalize(cx, &st)).unwrap(),
        Outcome::Changed
    );
    assert!(!kept.exists());
    assert_eq!(
        with_ctx(&e, copts(), |cx| finalize(cx, &st)).unwrap(),
        Outcome::Unchanged
    );
}

#[test]
fn status_reports_configured_and_served_datadir() {
    let e = env(true);
    let s = engine::status(&e.host, &e.db, Engine::Mariadb).unwrap();
    assert!(s.active && s.healthy);
    assert_eq!(
        s.serving_datadir.as_deref(),
        Some(Path::new("/var/lib/mysql"))
    );
    let e = env(false);
    let s = engine::status(&e.host, &e.db, Engine::Mariadb).unwrap();
    assert!(!s.active && !s.healthy && s.serving_datadir.is_none());
    assert_eq!(s.config_datadir, Path::new("/var/lib/mysql"));
}

#[test]
fn a_lost_journal_after_the_move_changes_nothing() {
    let e = env(true);
    let mut st = fresh_state(&e);
    run_all(&e, &mut st).unwrap();
    fs::remove_file(&e.journal).unwrap();
    // a new run discovers the server already on the new datadir
    let mut st2 = fresh_state(&e);
    assert_eq!(st2.old_datadir, Path::new("/data/mysql"));
    let reps = run_all(&e, &mut st2).unwrap();
    assert!(
        reps.iter().all(|r| r.outcome == Outcome::Unchanged),
        "{reps:#?}"
    );
    assert!(e.host.root().join("data/mysql/marker").is_file());
    assert_eq!(e.db.serving().as_deref(), Some(Path::new("/data/mysql")));
}

/// An owner the test process may give a file that differs from the one a new file gets: any
/// uid/gid as root, else a supplementary group. `None`: this user cannot show the difference.
fn foreign_owner() -> Option<(u32, u32)> {
    use nix::unistd::{getegid, geteuid, getgroups};
    if geteuid().is_root() {
        return Some((4242, 4243));
    }
    let g = getgroups().ok()?.into_iter().find(|g| *g != getegid())?;
    Some((geteuid().as_raw(), g.as_raw()))
}

#[test]
fn switching_postgresql_conf_keeps_its_owner_and_mode_and_rollback_too() {
    let Some((uid, gid)) = foreign_owner() else {
        eprintln!("skipped: needs root or a supplementary group to own a file differently");
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    let conf = "etc/postgresql/15/main/postgresql.conf";
    put(
        r,
        &format!("/{conf}"),
        "data_directory = '/var/lib/postgresql/15/main'\nport = 5432\n",
    );
    std::os::unix::fs::chown(r.join(conf), Some(uid), Some(gid)).unwrap();
    fs::set_permissions(r.join(conf), fs::Permissions::from_mode(0o640)).unwrap();
    put(r, "/var/lib/postgresql/15/main/PG_VERSION", "15\n");
    put(r, "/var/lib/postgresql/15/main/marker", "pg");
    fs::create_dir_all(r.join("data")).unwrap();
    let host = Host::with_root(r);
    let db = FakeDb::new(&host, Engine::Postgresql, true);
    let e = Env {
        journal: r.join("var/lib/dbhost/relocate.json"),
        _d: d,
        host,
        db,
    };
    let inst = engine::discover_with(&e.host, &e.db, Engine::Postgresql, true).unwrap();
    let mut st = RelocateState::new(inst, Path::new("/data/pg"), "S", Path::new("/x"));
    run_all(&e, &mut st).unwrap();
    let owner_mode = |p: &Path| {
        let m = fs::metadata(p).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    let p = e.host.root().join(conf);
    assert!(fs::read_to_string(&p)
        .unwrap()
        .contains("data_directory = '/data/pg'"));
    assert_eq!(owner_mode(&p), (uid, gid, 0o640));
    let st = load(&e);
    with_ctx(&e, copts(), |cx| rollback(cx, &st)).unwrap();
    assert!(fs::read_to_string(&p)
        .unwrap()
        .contains("'/var/lib/postgresql/15/main'"));
    assert_eq!(owner_mode(&p), (uid, gid, 0o640));
}

#[test]
fn a_crash_in_pass1_before_its_first_checkpoint_is_resumed_not_refused() {
    // A kill or power cut while pass 1 copies its first files (before the periodic manifest
    // checkpoint) leaves files in the target. The next run must recognise them as dbhost's own
    // (the manifest exists from the start of the copy), not refuse them as foreign data.
    let e = env(true);
    let mut st = fresh_state(&e);
    let manifest = e.host.path(&st.manifest);
    let target = e.host.root().join("data/mysql");
    with_ctx(&e, copts(), |cx| {
        apply(cx, &mut st, Step::Preflight).unwrap();
    });
    let journal = e.journal.clone();
    let mut save = move |s: &RelocateState| -> Result<()> {
        atomic_write(&journal, &serde_json::to_vec(s)?, 0o600)?;
        Ok(())
    };
    // The first byte written by pass 1 is where the crash happens: record what a re-run would
    // find on disk at that moment.
    let mut at_first_write: Option<bool> = None;
    let mut progress = |p: Progress| {
        if p.done > 0 && at_first_write.is_none() {
            at_first_write = Some(manifest.is_file());
        }
    };
    let mut cx = Ctx {
        host: &e.host,
        exec: &e.db,
        copy: CopyOptions {
            checkpoint_every: Duration::from_secs(3600),
            ..copts()
        },
        wait: no_wait(),
        progress: &mut progress,
        save: &mut save,
        require_separate_fs: false,
    };
    apply(&mut cx, &mut st, Step::Pass1).unwrap();
    assert_eq!(
        at_first_write,
        Some(true),
        "pass 1 wrote into {} before its manifest existed",
        target.display()
    );
    // And the state such a crash leaves (target files + an empty manifest) is resumed.
    copy::Manifest::new(&e.host.path(&st.old_datadir), &target)
        .save(&manifest)
        .unwrap();
    let st2 = load(&e);
    let obs = with_ctx(&e, copts(), |cx| {
        observe(cx, &st2, Step::Preflight).unwrap()
    });
    assert!(matches!(obs, Observed::Todo(_)), "{obs:?}");
    let mut st2 = st2;
    run_all(&e, &mut st2).unwrap();
    assert_relocated(&e, &st2);
}
