//! The migration against a fake host tree and a fake world: systemd units, a source PostgreSQL
//! on "10.0.0.5" and the local cluster, all answering through `Exec` and its database client.
//! Real servers run only in the QEMU guests (vm-tests migrate-*).

use super::*;
use crate::db::client::{Client, DbError, Rows, Session, Target};
use crate::host::{CommandSpec, ExecOutput};
use crate::profile::Fence;
use std::fs;
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub struct World {
    /// unit → (active, masked)
    pub units: Vec<(String, bool, bool)>,
    pub src_lsn: u64,
    pub src_version: u32,
    pub wal_level: String,
    pub src_read_only: bool,
    pub src_size: u64,
    pub slot: Option<bool>,
    pub repl_refused: Option<(String, String)>,
    pub unreachable: bool,
    /// The local server: running as a standby, its applied position, promoted.
    pub in_recovery: bool,
    pub replay: u64,
    pub receiving: bool,
    /// The replica stops applying (catch-up never completes).
    pub stuck: bool,
    /// Statements that fail once (crash points).
    pub fail_once: Vec<String>,
    pub hook_status: i32,
    pub log: Vec<String>,
    pub local_dbs: Vec<String>,
}

impl Default for World {
    fn default() -> Self {
        World {
            units: vec![
                ("postgresql@15-main.service".into(), true, false),
                ("oldpg.service".into(), true, false),
            ],
            src_lsn: 0x300_0000,
            src_version: 150004,
            wal_level: "replica".into(),
            src_read_only: false,
            src_size: 1 << 20,
            slot: None,
            repl_refused: None,
            unreachable: false,
            in_recovery: false,
            replay: 0,
            receiving: false,
            stuck: false,
            fail_once: Vec::new(),
            hook_status: 0,
            log: Vec::new(),
            local_dbs: Vec::new(),
        }
    }
}

pub struct Fake {
    pub host: Host,
    pub w: Mutex<World>,
}

fn out(status: i32, stdout: &str) -> ExecOutput {
    ExecOutput {
        status,
        stdout: stdout.into(),
        stderr: String::new(),
    }
}

pub const SRC_DATADIR: &str = "/var/lib/oldpg";

fn lsn_text(v: u64) -> String {
    crate::db::pgctl::Lsn(v).to_string()
}

fn unit_in(w: &World, name: &str) -> (bool, bool) {
    w.units
        .iter()
        .find(|u| u.0 == name)
        .map(|u| (u.1, u.2))
        .unwrap_or((false, false))
}

impl Fake {
    fn unit(&self, name: &str) -> (bool, bool) {
        unit_in(&self.w.lock().unwrap(), name)
    }
    fn set_unit(&self, name: &str, active: Option<bool>, masked: Option<bool>) {
        let mut w = self.w.lock().unwrap();
        if !w.units.iter().any(|u| u.0 == name) {
            w.units.push((name.into(), false, false));
        }
        let u = w.units.iter_mut().find(|u| u.0 == name).unwrap();
        if let Some(a) = active {
            u.1 = a;
        }
        if let Some(m) = masked {
            u.2 = m;
        }
    }
    /// The source's control file: shut down with its last checkpoint at `lsn` when its unit is
    /// down.
    fn write_control(&self, lsn: u64) {
        let (active, _) = self.unit("oldpg.service");
        let mut b = vec![0u8; 512];
        b[16] = if active { 6 } else { 1 };
        b[32..40].copy_from_slice(&lsn.to_le_bytes());
        let p = self.host.path(SRC_DATADIR).join("global/pg_control");
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b).unwrap();
    }
    fn local_running(&self) -> bool {
        self.unit("postgresql@15-main.service").0
    }
}

impl Exec for Fake {
    fn output(&self, cmd: &CommandSpec) -> Result<ExecOutput> {
        {
            let mut w = self.w.lock().unwrap();
            let line = cmd.display();
            w.log.push(line.clone());
            if let Some(i) = w
                .fail_once
                .iter()
                .position(|p| line.starts_with(p.as_str()))
            {
                w.fail_once.remove(i);
                return Ok(out(1, &format!("injected failure of `{line}`")));
            }
        }
        let a: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
        match (cmd.program.as_str(), a.as_slice()) {
            ("systemctl", ["is-active", "--quiet", u]) => {
                Ok(out(if self.unit(u).0 { 0 } else { 3 }, ""))
            }
            ("systemctl", ["show", "-P", "TriggeredBy", _]) => Ok(out(0, "\n")),
            ("systemctl", ["daemon-reload"]) => Ok(out(0, "")),
            ("systemctl", ["is-enabled", _]) => Ok(out(0, "enabled\n")),
            ("systemctl", ["mask", units @ ..]) | ("systemctl", ["unmask", units @ ..]) => {
                for u in units {
                    self.set_unit(u, None, Some(a[0] == "mask"));
                }
                Ok(out(0, ""))
            }
            ("systemctl", ["stop", units @ ..]) => {
                let was_up = self.unit("oldpg.service").0;
                for u in units {
                    self.set_unit(u, Some(false), None);
                }
                let mut w = self.w.lock().unwrap();
                if units.contains(&"postgresql@15-main.service") {
                    w.receiving = false;
                }
                if was_up && units.contains(&"oldpg.service") {
                    // The shutdown checkpoint record, sent to a connected standby before the
                    // walsender exits.
                    let ckpt = w.src_lsn;
                    w.src_lsn += 104;
                    if w.receiving && !w.stuck {
                        w.replay = w.src_lsn;
                    }
                    w.receiving = false;
                    drop(w);
                    self.write_control(ckpt);
                }
                Ok(out(0, ""))
            }
            ("systemctl", ["start", units @ ..]) => {
                for u in units {
                    if self.unit(u).1 {
                        return Ok(out(1, "unit is masked"));
                    }
                    self.set_unit(u, Some(true), None);
                }
                let standby = self
                    .host
                    .path("/datadrive/postgresql/standby.signal")
                    .exists();
                let mut w = self.w.lock().unwrap();
                if units.contains(&"postgresql@15-main.service") && standby && !w.stuck {
                    w.in_recovery = true;
                    w.receiving = unit_in(&w, "oldpg.service").0;
                }
                Ok(out(0, ""))
            }
            (
                "runuser",
                [.., "-D", dir, "-X", "stream", "-C", "-S", slot, "-R", "-c", "fast", "--no-password"],
            ) => {
                let d = self.host.path(dir);
                assert!(d.is_dir(), "pg_basebackup into a missing {dir}");
                assert_eq!(fs::read_dir(&d).unwrap().count(), 0, "{dir} is not empty");
                for f in ["PG_VERSION", "standby.signal", "postgresql.auto.conf"] {
                    fs::write(d.join(f), "15\n").unwrap();
                }
                let mut w = self.w.lock().unwrap();
                assert!(w.slot.is_none(), "slot {slot} exists");
                w.slot = Some(false);
                w.replay = w.src_lsn;
                Ok(out(0, ""))
            }
            ("/usr/local/bin/hook", _) => {
                let s = self.w.lock().unwrap().hook_status;
                Ok(out(s, "dns updated\n"))
            }
            _ => Ok(out(1, &format!("unexpected {}", cmd.display()))),
        }
    }
    fn db(&self) -> &dyn Client {
        self
    }
}

struct FakeSession<'a>(&'a Fake, Target);

impl Session for FakeSession<'_> {
    fn query(&mut self, sql: &str) -> Result<Rows> {
        let f = self.0;
        let local = matches!(self.1.endpoint, crate::db::client::Endpoint::Unix(_));
        let mut w = f.w.lock().unwrap();
        w.log.push(format!(
            "sql {}: {sql}",
            if local { "local" } else { "source" }
        ));
        if let Some(i) = w.fail_once.iter().position(|p| sql.starts_with(p.as_str())) {
            w.fail_once.remove(i);
            anyhow::bail!("injected failure of `{sql}`");
        }
        let v = |s: &str| Ok(Rows::value(s));
        if local {
            if !unit_in(&w, "postgresql@15-main.service").0 {
                anyhow::bail!("the local server went away");
            }
            let streaming = w.receiving && !w.stuck;
            if streaming && w.in_recovery {
                w.replay = w.src_lsn;
            }
            return match sql {
                s if s.starts_with("SELECT pg_is_in_recovery(), (SELECT status") => Ok(Rows::one(
                    &["pg_is_in_recovery", "status"],
                    &[
                        Some(if w.in_recovery { "t" } else { "f" }),
                        w.receiving.then_some("streaming"),
                    ],
                )),
                s if s.starts_with("SELECT pg_is_in_recovery() AS recovery, pg_last") => {
                    let rep = lsn_text(w.replay);
                    Ok(Rows::one(
                        &["recovery", "received", "replayed", "behind", "receiver"],
                        &[
                            Some(if w.in_recovery { "t" } else { "f" }),
                            Some(&rep),
                            Some(&rep),
                            Some("0.5"),
                            w.receiving.then_some("streaming"),
                        ],
                    ))
                }
                s if s.starts_with("SELECT pg_last_wal_replay_lsn() AS replayed") => {
                    let rep = lsn_text(w.replay);
                    Ok(Rows::one(
                        &["replayed", "received", "streaming"],
                        &[
                            Some(&rep),
                            Some(&rep),
                            Some(if streaming { "1" } else { "0" }),
                        ],
                    ))
                }
                "SELECT pg_is_in_recovery()" => v(if w.in_recovery { "t" } else { "f" }),
                "SELECT pg_promote(true, 60)" => {
                    w.in_recovery = false;
                    w.receiving = false;
                    v("t")
                }
                s if s.starts_with("SELECT pg_is_in_recovery() AS recovery, current_setting") => {
                    Ok(Rows::one(
                        &["recovery", "ro"],
                        &[Some(if w.in_recovery { "t" } else { "f" }), Some("off")],
                    ))
                }
                "SELECT txid_current()" if !w.in_recovery => v("742"),
                "SELECT txid_current()" => {
                    anyhow::bail!("cannot assign TransactionIds during recovery")
                }
                s if s.starts_with("SELECT datname FROM pg_database") => Ok(Rows {
                    columns: vec!["datname".into()],
                    rows: w.local_dbs.iter().map(|d| vec![Some(d.clone())]).collect(),
                    affected: 0,
                }),
                s if s.starts_with("SHOW ") => v("100"),
                _ => Ok(Rows::default()),
            };
        }
        // the source
        if !unit_in(&w, "oldpg.service").0 {
            anyhow::bail!("the source went away");
        }
        let lsn = lsn_text(w.src_lsn);
        match sql {
            "IDENTIFY_SYSTEM" => Ok(Rows::one(
                &["systemid", "timeline", "xlogpos", "dbname"],
                &[Some("7715890353515899785"), Some("1"), Some(&lsn), None],
            )),
            "SHOW server_version_num" => v(&w.src_version.to_string()),
            "SHOW wal_level" => v(&w.wal_level.clone()),
            "SHOW max_wal_senders" => v("10"),
            "SHOW data_directory" => v(SRC_DATADIR),
            "SHOW max_slot_wal_keep_size" => v("-1"),
            "SHOW default_transaction_read_only" => v(if w.src_read_only { "on" } else { "off" }),
            "ALTER SYSTEM SET default_transaction_read_only = on" => {
                w.src_read_only = true;
                v("")
            }
            "ALTER SYSTEM RESET default_transaction_read_only" => {
                w.src_read_only = false;
                v("")
            }
            s if s.starts_with("SELECT rolsuper") => v("t"),
            s if s.starts_with("SELECT sum(pg_database_size") => v(&w.src_size.to_string()),
            s if s.starts_with("SELECT coalesce(sum(size)") => v("16777216"),
            s if s.starts_with("SELECT active FROM pg_replication_slots") => match w.slot {
                Some(a) => v(if a { "t" } else { "f" }),
                None => Ok(Rows::default()),
            },
            s if s.starts_with("SELECT pg_current_wal_lsn() AS current") => Ok(Rows::one(
                &["current", "active", "wal", "lag"],
                &[
                    Some(&lsn),
                    w.slot.map(|a| if a || w.receiving { "t" } else { "f" }),
                    w.slot.map(|_| "reserved"),
                    Some("0.2"),
                ],
            )),
            "SELECT pg_current_wal_lsn()" => v(&lsn),
            s if s.starts_with("DROP_REPLICATION_SLOT") => match w.slot.take() {
                Some(_) => v(""),
                None => Err(DbError::Statement {
                    endpoint: "10.0.0.5:5432".into(),
                    sql: s.into(),
                    code: "42704".into(),
                    message: "replication slot does not exist".into(),
                }
                .into()),
            },
            _ => Ok(Rows::default()),
        }
    }
}

impl Client for Fake {
    fn connect(&self, t: &Target) -> Result<Box<dyn Session + '_>> {
        let w = self.w.lock().unwrap();
        let remote = matches!(t.endpoint, crate::db::client::Endpoint::Tcp { .. });
        if remote && (w.unreachable || !unit_in(&w, "oldpg.service").0) {
            return Err(DbError::Unreachable {
                endpoint: t.endpoint.to_string(),
                reason: "Connection refused (os error 111)".into(),
            }
            .into());
        }
        if remote && t.replication {
            if let Some((code, msg)) = &w.repl_refused {
                return Err(DbError::Refused {
                    endpoint: t.endpoint.to_string(),
                    user: t.user.clone(),
                    code: code.clone(),
                    message: msg.clone(),
                }
                .into());
            }
        }
        if !remote && !unit_in(&w, "postgresql@15-main.service").0 {
            return Err(DbError::Unreachable {
                endpoint: t.endpoint.to_string(),
                reason: "No such file or directory".into(),
            }
            .into());
        }
        drop(w);
        Ok(Box::new(FakeSession(self, t.clone())))
    }
}

pub fn put(host: &Host, abs: &str, text: &str) {
    let p = host.path(abs);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// A host after `dbhost apply`: /datadrive mounted, the Debian cluster 15/main configured for
/// /datadrive/postgresql (a fresh datadir there), a postgres account.
pub fn applied_host() -> (tempfile::TempDir, Fake) {
    let d = tempfile::tempdir().unwrap();
    let host = Host::with_root(d.path());
    put(
        &host,
        "/etc/postgresql/15/main/postgresql.conf",
        "data_directory = '/datadrive/postgresql'\nport = 5432\n",
    );
    put(
        &host,
        "/proc/self/mounts",
        "/dev/md127 /datadrive xfs rw 0 0\n",
    );
    put(&host, "/datadrive/postgresql/PG_VERSION", "15\n");
    put(
        &host,
        "/etc/passwd",
        &format!(
            "postgres:x:{}:{}::{}:/bin/bash\n",
            nix::unistd::getuid(),
            nix::unistd::getgid(),
            "/var/lib/postgresql"
        ),
    );
    fs::create_dir_all(host.path("/var/lib/postgresql")).unwrap();
    put(&host, "/usr/lib/postgresql/15/bin/pg_basebackup", "");
    let f = Fake {
        host,
        w: Mutex::new(World::default()),
    };
    let lsn = f.w.lock().unwrap().src_lsn;
    f.write_control(lsn);
    (d, f)
}

pub fn settings(fence: Fence) -> Settings {
    Settings {
        engine: Engine::Postgresql,
        mount_point: "/datadrive".into(),
        target_datadir: "/datadrive/postgresql".into(),
        source: Endpoint::Tcp {
            name: "10.0.0.5".into(),
            addr: "10.0.0.5:5432".parse().unwrap(),
        },
        user: "postgres".into(),
        password: Some("pw".into()),
        repl_user: "repl".into(),
        repl_password: Some("rpw".into()),
        fence,
        source_unit: (fence == Fence::Stop).then(|| "oldpg.service".to_string()),
        stop_command: None,
        hook: Some(vec!["/usr/local/bin/hook".into(), "10.0.0.9".into()]),
        hook_timeout: Duration::from_secs(5),
        max_lag: 64 << 20,
        catch_up_timeout: Duration::from_millis(50),
        slot: "dbhost_migrate".into(),
        server_id: None,
        source_shell: None,
        source_defaults_file: None,
    }
}

/// Run `f` with a migration context over the fake.
pub fn with_cx<T>(f: &Fake, body: impl FnOnce(&mut Ctx) -> T) -> T {
    let mut lines = Vec::new();
    let mut say = |l: &str| lines.push(l.to_string());
    let mut cx = Ctx {
        host: &f.host,
        exec: f,
        wait: Wait {
            attempts: 3,
            delay: Duration::from_millis(1),
            sleep: |_| {},
        },
        poll: Duration::from_millis(5),
        sleep: |d| std::thread::sleep(d.min(Duration::from_millis(5))),
        say: &mut say,
        stream_timeout: Duration::from_millis(200),
    };
    body(&mut cx)
}

fn started(f: &Fake, s: &Settings) -> State {
    let saved: std::cell::RefCell<Option<State>> = Default::default();
    let st = with_cx(f, |cx| {
        start(cx, s, None, &mut |st: &State| {
            *saved.borrow_mut() = Some(st.clone());
            Ok(())
        })
    })
    .unwrap();
    assert_eq!(saved.borrow().as_ref().unwrap().phase, Phase::Replicating);
    st
}

#[test]
fn plan_checks_and_passes() {
    let (_d, f) = applied_host();
    let s = settings(Fence::ReadOnly);
    let p = with_cx(&f, |cx| plan(cx, &s, None)).unwrap();
    assert!(!p.refused(), "{:#?}", p.refusals);
    let names: Vec<&str> = p.checks.iter().map(|c| c.name.as_str()).collect();
    for n in [
        "data filesystem",
        "local server",
        "replication login",
        "versions",
        "wal_level",
        "room",
    ] {
        assert!(names.contains(&n), "{n} not checked: {names:?}");
    }
    assert!(p.notes.iter().any(|n| n.contains("max_slot_wal_keep_size")));
    // nothing was written
    assert!(f.w.lock().unwrap().slot.is_none());
    assert!(!f.host.path(State::path(&f.host)).exists());
}

#[test]
fn plan_refuses_with_what_to_fix() {
    let (_d, f) = applied_host();
    let s = settings(Fence::ReadOnly);
    {
        let mut w = f.w.lock().unwrap();
        w.repl_refused = Some((
            "28000".into(),
            "no pg_hba.conf entry for replication connection from host \"10.0.0.9\", user \"repl\", no encryption".into(),
        ));
        w.src_version = 140011;
        w.wal_level = "minimal".into();
    }
    let p = with_cx(&f, |cx| plan(cx, &s, None)).unwrap();
    let all = p.refusals.join("\n");
    assert!(
        all.contains("host    replication    repl    10.0.0.9/32    scram-sha-256"),
        "{all}"
    );
    // the replication session never opened: versions are read there
    f.w.lock().unwrap().repl_refused = None;
    let p = with_cx(&f, |cx| plan(cx, &s, None)).unwrap();
    let all = p.refusals.join("\n");
    assert!(all.contains("PostgreSQL 14 and this host 15"), "{all}");
    assert!(all.contains("CREATE SUBSCRIPTION"), "{all}");
    assert!(all.contains("wal_level = minimal"), "{all}");
    // wrong password, unreachable
    f.w.lock().unwrap().repl_refused = Some((
        "28P01".into(),
        "password authentication failed for user \"repl\"".into(),
    ));
    let p = with_cx(&f, |cx| plan(cx, &s, None)).unwrap();
    assert!(p
        .refusals
        .join("\n")
        .contains("migrate.replication-password-file"));
    f.w.lock().unwrap().unreachable = true;
    let p = with_cx(&f, |cx| plan(cx, &s, None)).unwrap();
    assert!(
        p.refusals
            .join("\n")
            .contains("cannot reach the source 10.0.0.5:5432"),
        "{:?}",
        p.refusals
    );
}

#[test]
fn start_refuses_before_any_write_when_there_is_no_room() {
    let (_d, f) = applied_host();
    f.w.lock().unwrap().src_size = 1 << 60;
    let s = settings(Fence::ReadOnly);
    let e = with_cx(&f, |cx| start(cx, &s, None, &mut |_| Ok(()))).unwrap_err();
    assert_eq!(crate::exit::code_for(&e), crate::exit::REFUSED);
    assert!(e.to_string().contains("room: the copy needs"), "{e}");
    assert!(f.host.path("/datadrive/postgresql/PG_VERSION").exists());
    assert!(f
        .w
        .lock()
        .unwrap()
        .log
        .iter()
        .all(|l| !l.starts_with("systemctl stop")));
}

#[test]
fn start_refuses_a_host_that_holds_databases() {
    let (_d, f) = applied_host();
    f.w.lock().unwrap().local_dbs = vec!["shop".into()];
    let s = settings(Fence::ReadOnly);
    let e = with_cx(&f, |cx| start(cx, &s, None, &mut |_| Ok(()))).unwrap_err();
    assert!(
        e.to_string().contains("already holds databases (shop)"),
        "{e}"
    );
}

#[test]
fn start_clones_and_follows_keeping_the_previous_datadir() {
    let (_d, f) = applied_host();
    let s = settings(Fence::ReadOnly);
    let st = started(&f, &s);
    assert_eq!(st.phase, Phase::Replicating);
    let aside = f.host.path(st.set_aside.as_ref().unwrap());
    assert!(
        aside.join("PG_VERSION").exists(),
        "the fresh datadir is kept"
    );
    assert!(f.host.path("/datadrive/postgresql/standby.signal").exists());
    let pass =
        fs::read_to_string(f.host.path("/var/lib/postgresql/.dbhost-migrate.pgpass")).unwrap();
    assert_eq!(pass, "*:*:*:repl:rpw\n");
    let rs = with_cx(&f, |cx| status(cx, &s, &st)).unwrap();
    assert!(rs.healthy(), "{rs:#?}");
    assert_eq!(rs.lag_bytes, Some(0));
    // re-running start changes nothing and copies nothing again
    let n =
        f.w.lock()
            .unwrap()
            .log
            .iter()
            .filter(|l| l.starts_with("runuser"))
            .count();
    let st2 = with_cx(&f, |cx| start(cx, &s, Some(st.clone()), &mut |_| Ok(()))).unwrap();
    assert_eq!(st2.phase, Phase::Replicating);
    assert_eq!(
        f.w.lock()
            .unwrap()
            .log
            .iter()
            .filter(|l| l.starts_with("runuser"))
            .count(),
        n
    );
}

#[test]
fn an_interrupted_clone_is_redone_from_scratch() {
    let (_d, f) = applied_host();
    let s = settings(Fence::ReadOnly);
    let mut st = State::new(&s, with_cx(&f, |cx| local_instance(cx, &s)).unwrap());
    st.set_aside = Some("/datadrive/postgresql.dbhost-pre-migrate-x".into());
    // the first run set the fresh datadir aside and left a partial copy and the slot behind
    fs::rename(
        f.host.path("/datadrive/postgresql"),
        f.host.path("/datadrive/postgresql.dbhost-pre-migrate-x"),
    )
    .unwrap();
    put(&f.host, "/datadrive/postgresql/base/1/1259", "partial");
    f.w.lock().unwrap().slot = Some(false);
    st.set_phase(Phase::Cloning);
    let st = with_cx(&f, |cx| start(cx, &s, Some(st), &mut |_| Ok(()))).unwrap();
    assert_eq!(st.phase, Phase::Replicating);
    assert!(!f.host.path("/datadrive/postgresql/base/1/1259").exists());
    assert!(f
        .host
        .path("/datadrive/postgresql.dbhost-pre-migrate-x/PG_VERSION")
        .exists());
}

#[test]
fn status_shows_broken_replication_and_cutover_switches_nothing() {
    let (_d, f) = applied_host();
    let s = settings(Fence::ReadOnly);
    let mut st = started(&f, &s);
    f.w.lock().unwrap().receiving = false;
    let rs = with_cx(&f, |cx| status(cx, &s, &st)).unwrap();
    assert!(!rs.healthy());
    assert!(rs.problems.join(" ").contains("broken"), "{rs:?}");
    let e = with_cx(&f, |cx| cutover(cx, &s, &mut st, &mut |_| Ok(()))).unwrap_err();
    assert_eq!(crate::exit::code_for(&e), crate::exit::REFUSED);
    assert_eq!(st.phase, Phase::Replicating);
    assert!(!f.w.lock().unwrap().src_read_only);
}

#[test]
fn read_only_cutover_promotes_measures_and_runs_the_hook() {
    let (_d, f) = applied_host();
    let s = settings(Fence::ReadOnly);
    let mut st = started(&f, &s);
    with_cx(&f, |cx| cutover(cx, &s, &mut st, &mut |_| Ok(()))).unwrap();
    assert_eq!(st.phase, Phase::CutOver);
    let w = f.w.lock().unwrap();
    assert!(w.src_read_only, "the source stays fenced");
    assert!(!w.in_recovery, "promoted");
    let c = st.cutover.clone().unwrap();
    assert!(c.downtime_ms.is_some());
    assert!(c.hook.unwrap().ok);
    let order: Vec<&String> = w
        .log
        .iter()
        .filter(|l| {
            l.contains("default_transaction_read_only = on")
                || l.contains("pg_promote")
                || l.starts_with("/usr/local/bin/hook")
                || l.contains("pg_terminate_backend")
        })
        .collect();
    assert_eq!(order.len(), 4, "{order:#?}");
    assert!(order[0].contains("read_only = on") && order[1].contains("terminate"));
    assert!(order[2].contains("pg_promote") && order[3].starts_with("/usr/local/bin/hook"));
    assert!(w
        .log
        .iter()
        .any(|l| l.contains("ALTER SYSTEM RESET primary_conninfo")));
}

#[test]
fn a_failing_hook_is_loud_and_does_not_undo_the_cutover() {
    let (_d, f) = applied_host();
    let s = settings(Fence::ReadOnly);
    let mut st = started(&f, &s);
    f.w.lock().unwrap().hook_status = 7;
    let e = with_cx(&f, |cx| cutover(cx, &s, &mut st, &mut |_| Ok(()))).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("the cutover is DONE") && msg.contains("exit status 7"),
        "{msg}"
    );
    assert!(msg.contains("dns updated"), "{msg}");
    assert_eq!(st.phase, Phase::Promoted);
    assert!(!f.w.lock().unwrap().in_recovery, "still promoted");
    // fixed: re-running runs only the hook
    f.w.lock().unwrap().hook_status = 0;
    let promotes = |f: &Fake| {
        f.w.lock()
            .unwrap()
            .log
            .iter()
            .filter(|l| l.contains("pg_promote"))
            .count()
    };
    let before = promotes(&f);
    with_cx(&f, |cx| cutover(cx, &s, &mut st, &mut |_| Ok(()))).unwrap();
    assert_eq!(st.phase, Phase::CutOver);
    assert_eq!(promotes(&f), before);
}

#[test]
fn a_replica_that_does_not_catch_up_lifts_the_fence_and_switches_nothing() {
    let (_d, f) = applied_host();
    let s = settings(Fence::ReadOnly);
    let mut st = started(&f, &s);
    {
        let mut w = f.w.lock().unwrap();
        w.stuck = true;
        w.src_lsn += 4096; // the source wrote on after the replica stalled
    }
    let e = with_cx(&f, |cx| cutover(cx, &s, &mut st, &mut |_| Ok(()))).unwrap_err();
    assert!(e.to_string().contains("the fence is lifted"), "{e}");
    assert_eq!(st.phase, Phase::Replicating);
    let w = f.w.lock().unwrap();
    assert!(!w.src_read_only, "the source accepts writes again");
    assert!(w.in_recovery, "nothing promoted");
}

#[test]
fn stop_fence_masks_the_source_and_waits_for_its_shutdown_checkpoint() {
    let (_d, f) = applied_host();
    let s = settings(Fence::Stop);
    let mut st = started(&f, &s);
    assert_eq!(st.source_datadir.as_deref(), Some(Path::new(SRC_DATADIR)));
    with_cx(&f, |cx| cutover(cx, &s, &mut st, &mut |_| Ok(()))).unwrap();
    assert_eq!(f.unit("oldpg.service"), (false, true), "stopped and masked");
    let dropin = f
        .host
        .path("/etc/systemd/system/oldpg.service.d/zz-dbhost-fence.conf");
    assert!(
        fs::read_to_string(dropin)
            .unwrap()
            .contains("ConditionPathExists=/nonexistent"),
        "the stop survives a reboot"
    );
    // the mask (a daemon-reload) came after the promotion, outside the downtime window
    let w = f.w.lock().unwrap();
    let at = |p: &str| w.log.iter().position(|l| l.contains(p)).unwrap();
    assert!(at("systemctl stop oldpg.service") < at("pg_promote"));
    assert!(at("pg_promote") < at("systemctl mask oldpg.service"));
    drop(w);
    assert!(st
        .fence
        .as_ref()
        .unwrap()
        .final_pos
        .as_deref()
        .unwrap()
        .starts_with("after:"));
    assert!(!f.w.lock().unwrap().in_recovery);
}

/// Every crash point of a cutover: an error (the process dying there) at each statement, then a
/// re-run. Never two writable servers; the re-run always finishes.
#[test]
fn cutover_resumes_after_an_interruption_at_every_step() {
    for point in [
        "ALTER SYSTEM SET default_transaction_read_only",
        "SELECT count(pg_terminate_backend",
        "SELECT pg_current_wal_lsn()",
        "SELECT pg_last_wal_replay_lsn() AS replayed",
        "SELECT pg_promote",
        "ALTER SYSTEM RESET primary_conninfo",
        "SELECT txid_current()",
    ] {
        let (_d, f) = applied_host();
        let s = settings(Fence::ReadOnly);
        let mut st = started(&f, &s);
        f.w.lock().unwrap().fail_once.push(point.into());
        let saved: std::cell::RefCell<Option<State>> = Default::default();
        let mut save = |st: &State| {
            *saved.borrow_mut() = Some(st.clone());
            Ok(())
        };
        let first = with_cx(&f, |cx| cutover(cx, &s, &mut st, &mut save));
        // the journal as the crash left it
        let mut st = saved.borrow().clone().unwrap_or(st);
        {
            let w = f.w.lock().unwrap();
            let source_writable = !w.src_read_only;
            let replica_writable = !w.in_recovery;
            assert!(
                !(source_writable && replica_writable),
                "{point}: two writable primaries"
            );
        }
        if first.is_err() {
            assert!(st.phase != Phase::CutOver, "{point}");
            with_cx(&f, |cx| cutover(cx, &s, &mut st, &mut save))
                .unwrap_or_else(|e| panic!("{point}: re-run failed: {e:#}"));
        }
        assert_eq!(st.phase, Phase::CutOver, "{point}");
        let w = f.w.lock().unwrap();
        assert!(w.src_read_only && !w.in_recovery, "{point}");
    }
}

#[test]
fn abort_before_the_promotion_puts_everything_back() {
    let (_d, f) = applied_host();
    let s = settings(Fence::Stop);
    let mut st = started(&f, &s);
    // a cutover that stopped after the fence: the replica stalled and lifting the fence failed
    {
        let mut w = f.w.lock().unwrap();
        w.stuck = true;
        w.fail_once.push("systemctl unmask".into());
    }
    let e = with_cx(&f, |cx| cutover(cx, &s, &mut st, &mut |_| Ok(()))).unwrap_err();
    assert!(e.to_string().contains("lifting the fence failed"), "{e:#}");
    assert!(st.fence.is_some());
    assert!(!f.unit("oldpg.service").0, "the source stays stopped");
    assert!(f.w.lock().unwrap().in_recovery, "not promoted");
    let done = with_cx(&f, |cx| abort(cx, &s, &mut st, &mut |_| Ok(()))).unwrap();
    assert_eq!(st.phase, Phase::Aborted);
    assert_eq!(
        f.unit("oldpg.service"),
        (true, false),
        "unmasked and running: {done:?}"
    );
    assert!(!f.host.path("/datadrive/postgresql/standby.signal").exists());
    assert!(f.host.path("/datadrive/postgresql/PG_VERSION").exists());
    assert!(f.w.lock().unwrap().slot.is_none(), "slot dropped");
    assert!(f.local_running(), "the local server runs again as before");
}

#[test]
fn abort_after_the_promotion_is_refused_and_finalize_cleans_up() {
    let (_d, f) = applied_host();
    let s = settings(Fence::ReadOnly);
    let mut st = started(&f, &s);
    with_cx(&f, |cx| cutover(cx, &s, &mut st, &mut |_| Ok(()))).unwrap();
    let e = with_cx(&f, |cx| abort(cx, &s, &mut st, &mut |_| Ok(()))).unwrap_err();
    assert_eq!(crate::exit::code_for(&e), crate::exit::REFUSED);
    assert!(e.to_string().contains("promoted"), "{e}");
    let done = with_cx(&f, |cx| finalize(cx, &s, &mut st, &mut |_| Ok(()))).unwrap();
    assert_eq!(st.phase, Phase::Finalized);
    assert!(f.w.lock().unwrap().slot.is_none(), "{done:?}");
    assert!(!f.host.path(st.set_aside.as_ref().unwrap()).exists());
    assert!(!f
        .host
        .path("/var/lib/postgresql/.dbhost-migrate.pgpass")
        .exists());
    assert!(
        f.w.lock().unwrap().src_read_only,
        "the source stays fenced: {done:?}"
    );
}
