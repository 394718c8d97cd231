use super::*;
use crate::db::client::{Client, Endpoint, FakeDb, Rows, Session, Target};
use crate::host::{ExecOutput, FakeExec};
use std::os::unix::fs::symlink;

fn put(root: &Path, abs: &str, text: &str) {
    let p = root.join(abs.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn out(status: i32, stdout: &str) -> ExecOutput {
    ExecOutput {
        status,
        stdout: stdout.into(),
        stderr: String::new(),
    }
}

fn no_wait() -> Wait {
    Wait {
        attempts: 3,
        delay: Duration::from_secs(1),
        sleep: |_| {},
    }
}

/// Debian 12 MariaDB layout: my.cnf -> alternatives -> mariadb.cnf with two includedirs.
fn debian_mariadb(root: &Path) {
    put(
        root,
        "/etc/mysql/mariadb.cnf",
        "[client-server]\nsocket = /run/mysqld/mysqld.sock\n\
         !includedir /etc/mysql/conf.d/\n!includedir /etc/mysql/mariadb.conf.d/\n",
    );
    fs::create_dir_all(root.join("etc/alternatives")).unwrap();
    symlink(
        "/etc/mysql/mariadb.cnf",
        root.join("etc/alternatives/my.cnf"),
    )
    .unwrap();
    symlink("/etc/alternatives/my.cnf", root.join("etc/mysql/my.cnf")).unwrap();
    put(root, "/etc/mysql/conf.d/mysql.cnf", "[mysql]\n");
    put(
        root,
        "/etc/mysql/mariadb.conf.d/50-server.cnf",
        "[server]\n\n[mysqld]\nuser = mysql\npid-file = /run/mysqld/mysqld.pid\n\
         basedir = /usr\n#datadir = /var/lib/mysql\n#tmpdir = /tmp\nbind-address = 127.0.0.1\n\
         skip-name-resolve\n[embedded]\n[mariadb]\n[mariadb-10.11]\n",
    );
    put(
        root,
        "/etc/mysql/mariadb.conf.d/50-client.cnf",
        "[client]\ndatadir = /wrong/client/group\n",
    );
    put(root, "/lib/systemd/system/mariadb.service", "[Service]\n");
    put(root, "/usr/bin/mariadb", "");
}

#[test]
fn parse_cnf_lines() {
    let l = parse_cnf_text(
        "# c\n; c\n[mysqld]\ndata-dir = \"/a b\" \nskip-log-bin\nsocket=/s # note\n\
         !include /x.cnf\n!includedir /d/\n[Client]\nport='3306'\n",
    );
    assert_eq!(
        l,
        vec![
            CnfLine::Setting {
                group: "mysqld".into(),
                key: "data_dir".into(),
                value: Some("/a b".into()),
                line: 4
            },
            CnfLine::Setting {
                group: "mysqld".into(),
                key: "skip_log_bin".into(),
                value: None,
                line: 5
            },
            CnfLine::Setting {
                group: "mysqld".into(),
                key: "socket".into(),
                value: Some("/s".into()),
                line: 6
            },
            CnfLine::Include("/x.cnf".into()),
            CnfLine::IncludeDir("/d/".into()),
            CnfLine::Setting {
                group: "client".into(),
                key: "port".into(),
                value: Some("3306".into()),
                line: 10
            },
        ]
    );
}

#[test]
fn debian_mariadb_defaults() {
    let d = tempfile::tempdir().unwrap();
    debian_mariadb(d.path());
    let host = Host::with_root(d.path());
    let inst = discover(&host, &FakeExec::new(), Engine::Mariadb).unwrap();
    assert_eq!(inst.datadir, Path::new("/var/lib/mysql"));
    assert_eq!(inst.source, Source::Default);
    assert_eq!(inst.unit, "mariadb.service");
    assert_eq!(
        inst.dropin_dir.as_deref(),
        Some(Path::new("/etc/mysql/mariadb.conf.d"))
    );
    let files = render_switch(&host, &inst, Path::new("/data/mysql")).unwrap();
    let paths: Vec<_> = files.iter().map(|f| f.path.display().to_string()).collect();
    assert_eq!(
        paths,
        vec![
            "/etc/mysql/mariadb.conf.d/zz-dbhost.cnf",
            "/etc/systemd/system/mariadb.service.d/dbhost.conf"
        ]
    );
    assert!(files[0]
        .content
        .contains("[mysqld]\ndatadir = /data/mysql\n"));
    assert!(files[1]
        .content
        .contains("[Unit]\nRequiresMountsFor=/data/mysql\n"));
    assert!(!files[1].content.contains("[Service]"));
    assert!(placeholder_dirs(&host, &inst, &inst.datadir).is_empty());

    // once the drop-in is written, the configuration says the new datadir
    for f in &files {
        put(d.path(), &f.path.display().to_string(), &f.content);
    }
    let inst = discover(&host, &FakeExec::new(), Engine::Mariadb).unwrap();
    assert_eq!(inst.config_datadir, Path::new("/data/mysql"));
    assert_eq!(
        inst.source,
        Source::Config {
            file: "/etc/mysql/mariadb.conf.d/zz-dbhost.cnf".into(),
            line: 3
        }
    );
}

#[test]
fn later_files_override_and_only_server_groups_count() {
    let d = tempfile::tempdir().unwrap();
    debian_mariadb(d.path());
    put(
        d.path(),
        "/etc/mysql/conf.d/zz.cnf",
        "[mariadbd]\ndatadir=/from/conf.d\n",
    );
    put(
        d.path(),
        "/etc/mysql/mariadb.conf.d/60-local.cnf",
        "[mariadb]\ndatadir = /srv/db/\n",
    );
    let host = Host::with_root(d.path());
    let inst = discover(&host, &FakeExec::new(), Engine::Mariadb).unwrap();
    assert_eq!(inst.datadir, Path::new("/srv/db"));
    assert_eq!(
        inst.socket, None,
        "[client-server] socket is not the server's"
    );
    // !include of a single file, and loops do not hang
    put(
        d.path(),
        "/etc/mysql/mariadb.conf.d/70-inc.cnf",
        "!include /etc/mysql/extra.inc\n",
    );
    put(
        d.path(),
        "/etc/mysql/extra.inc",
        "[server]\ndatadir = /from/include\n!include /etc/mysql/extra.inc\n",
    );
    let inst = discover(&host, &FakeExec::new(), Engine::Mariadb).unwrap();
    assert_eq!(inst.datadir, Path::new("/from/include"));
}

#[test]
fn runtime_answer_wins_over_configuration() {
    let d = tempfile::tempdir().unwrap();
    debian_mariadb(d.path());
    let host = Host::with_root(d.path());
    let exec = FakeExec::new();
    exec.answer("systemctl is-active", out(0, ""));
    exec.db
        .answer("SELECT @@datadir", Rows::value("/srv/live/"));
    let inst = discover_with(&host, &exec, Engine::Mariadb, true).unwrap();
    assert_eq!(inst.datadir, Path::new("/srv/live"));
    assert_eq!(inst.source, Source::Runtime);
    assert_eq!(inst.config_datadir, Path::new("/var/lib/mysql"));
    // a stopped server is not asked
    let exec = FakeExec::new();
    exec.answer("systemctl is-active", out(3, ""));
    let inst = discover_with(&host, &exec, Engine::Mariadb, true).unwrap();
    assert_eq!(inst.source, Source::Default);
    assert_eq!(
        exec.calls(),
        vec!["systemctl is-active --quiet mariadb.service"]
    );
    // a fake root is never asked by default
    let exec = FakeExec::new();
    discover(&host, &exec, Engine::Mariadb).unwrap();
    assert!(exec.calls().is_empty());
}

#[test]
fn ubuntu_mysql_apparmor_and_start_script_placeholder() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    put(
        r,
        "/etc/mysql/my.cnf",
        "!includedir /etc/mysql/conf.d/\n!includedir /etc/mysql/mysql.conf.d/\n",
    );
    put(
        r,
        "/etc/mysql/mysql.conf.d/mysqld.cnf",
        "[mysqld]\nuser = mysql\ndatadir = /var/lib/mysql\n",
    );
    put(r, "/lib/systemd/system/mysql.service", "");
    put(r, "/etc/apparmor.d/usr.sbin.mysqld", "profile\n");
    put(
        r,
        "/etc/apparmor.d/local/usr.sbin.mysqld",
        "# Site-specific additions\n/srv/other/ r,\n",
    );
    put(r, "/usr/share/mysql/mysql-systemd-start", "#!/bin/sh\n");
    put(r, "/sys/module/apparmor/parameters/enabled", "Y\n");
    let host = Host::with_root(r);
    let inst = discover(&host, &FakeExec::new(), Engine::Mysql).unwrap();
    assert_eq!(inst.unit, "mysql.service");
    assert_eq!(
        inst.source,
        Source::Config {
            file: "/etc/mysql/mysql.conf.d/mysqld.cnf".into(),
            line: 3
        }
    );
    let files = render_switch(&host, &inst, Path::new("/data/mysql")).unwrap();
    assert_eq!(
        files[0].path,
        Path::new("/etc/mysql/mysql.conf.d/zz-dbhost.cnf")
    );
    assert_eq!(
        files[1].path,
        Path::new("/etc/apparmor.d/local/usr.sbin.mysqld")
    );
    assert_eq!(
        files[1].content,
        "# Site-specific additions\n/srv/other/ r,\n# BEGIN dbhost datadir\n\
         /data/mysql/ r,\n/data/mysql/** rwk,\n# END dbhost datadir\n"
    );
    // re-rendering over our own block replaces it; None removes it (rollback)
    let again = render_apparmor_local(&files[1].content, Some(Path::new("/data2/mysql")));
    assert_eq!(again.matches("BEGIN dbhost").count(), 1);
    assert!(again.contains("/data2/mysql/** rwk,") && !again.contains("/data/mysql/"));
    assert_eq!(
        render_apparmor_local(&files[1].content, None),
        "# Site-specific additions\n/srv/other/ r,\n"
    );
    assert_eq!(
        placeholder_dirs(&host, &inst, &inst.datadir),
        vec![
            PathBuf::from("/var/lib/mysql"),
            PathBuf::from("/var/lib/mysql/mysql")
        ]
    );
    let cmds: Vec<_> = reload_commands(&host, &inst)
        .iter()
        .map(CommandSpec::display)
        .collect();
    assert_eq!(
        cmds,
        vec![
            "systemctl daemon-reload",
            "apparmor_parser -r /etc/apparmor.d/usr.sbin.mysqld"
        ]
    );
}

#[test]
fn rhel_socket_inside_datadir_needs_a_placeholder() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    put(
        r,
        "/etc/my.cnf",
        "[client-server]\n!includedir /etc/my.cnf.d\n",
    );
    put(
        r,
        "/etc/my.cnf.d/mariadb-server.cnf",
        "[mysqld]\ndatadir=/var/lib/mysql\nsocket=/var/lib/mysql/mysql.sock\n",
    );
    put(r, "/usr/lib/systemd/system/mariadb.service", "");
    let host = Host::with_root(r);
    let inst = discover(&host, &FakeExec::new(), Engine::Mariadb).unwrap();
    assert_eq!(inst.dropin_dir.as_deref(), Some(Path::new("/etc/my.cnf.d")));
    assert_eq!(
        placeholder_dirs(&host, &inst, &inst.datadir),
        vec![PathBuf::from("/var/lib/mysql")]
    );
    assert_eq!(
        crate::db::local::targets(&host, &inst)[0].endpoint,
        Endpoint::Unix("/var/lib/mysql/mysql.sock".into()),
        "dbhost logs in over the configured socket"
    );
}

#[test]
fn no_includedir_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    put(
        d.path(),
        "/etc/my.cnf",
        "[mysqld]\ndatadir=/var/lib/mysql\n",
    );
    let host = Host::with_root(d.path());
    let inst = discover(&host, &FakeExec::new(), Engine::Mysql).unwrap();
    let e = render_switch(&host, &inst, Path::new("/data/mysql")).unwrap_err();
    assert!(e.to_string().contains("!includedir"), "{e}");
}

#[test]
fn sandbox_dropin_for_protected_paths() {
    let s = render_systemd_dropin(Engine::Mariadb, Path::new("/home/db/mysql"));
    assert!(s.contains("[Service]\nProtectHome=false\n"), "{s}");
    let s = render_systemd_dropin(Engine::Mariadb, Path::new("/usr/local/db"));
    assert!(s.contains("ReadWritePaths=/usr/local/db\n"), "{s}");
    let s = render_systemd_dropin(Engine::Postgresql, Path::new("/home/pg"));
    assert!(!s.contains("[Service]"), "{s}");
}

const PG_CONF: &str = "# PostgreSQL configuration file\n\
data_directory = '/var/lib/postgresql/15/main'\t\t# use data in another directory\n\
hba_file = '/etc/postgresql/15/main/pg_hba.conf'\n\
#data_directory = '/old/commented'\n\
port = 5433\t\t\t\t# (change requires restart)\n\
include_dir = 'conf.d'\n";

#[test]
fn postgresql_debian_cluster() {
    let d = tempfile::tempdir().unwrap();
    put(d.path(), "/etc/postgresql/15/main/postgresql.conf", PG_CONF);
    let host = Host::with_root(d.path());
    let inst = discover(&host, &FakeExec::new(), Engine::Postgresql).unwrap();
    assert_eq!(inst.datadir, Path::new("/var/lib/postgresql/15/main"));
    assert_eq!(inst.unit, "postgresql@15-main.service");
    let pg = inst.pg.clone().unwrap();
    assert_eq!(
        (pg.version.as_str(), pg.cluster.as_str(), pg.port),
        ("15", "main", 5433)
    );
    let files = render_switch(&host, &inst, Path::new("/data/postgresql/15/main")).unwrap();
    assert_eq!(files[0].path, pg.conf);
    assert_eq!(
        pg_conf_value(&files[0].content, "data_directory")
            .unwrap()
            .0,
        "/data/postgresql/15/main"
    );
    assert!(files[0]
        .content
        .contains("#data_directory = '/old/commented'"));
    assert!(files[0].content.contains("hba_file = "));
    assert_eq!(files[0].content.lines().count(), PG_CONF.lines().count());
    assert_eq!(
        files[1].path,
        Path::new("/etc/systemd/system/postgresql@15-main.service.d/dbhost.conf")
    );
    // idempotent render
    assert_eq!(
        pg_set_data_directory(&files[0].content, Path::new("/data/postgresql/15/main")),
        files[0].content
    );
    let t = &crate::db::local::targets(&host, &inst)[0];
    assert_eq!(
        t.to_string(),
        "/var/run/postgresql/.s.PGSQL.5433 as postgres"
    );
    // a config without data_directory gets one appended
    let t = pg_set_data_directory("port = 5432\n", Path::new("/d"));
    assert_eq!(pg_conf_value(&t, "data_directory").unwrap().0, "/d");
    // two clusters: refuse to guess
    put(d.path(), "/etc/postgresql/16/main/postgresql.conf", PG_CONF);
    let e = discover(&host, &FakeExec::new(), Engine::Postgresql).unwrap_err();
    assert!(e.to_string().contains("15/main, 16/main"), "{e}");
}

#[test]
fn health_retries_and_checks_the_served_datadir() {
    let d = tempfile::tempdir().unwrap();
    debian_mariadb(d.path());
    let host = Host::with_root(d.path());
    let inst = discover(&host, &FakeExec::new(), Engine::Mariadb).unwrap();

    let exec = FakeExec::new();
    exec.db.answer("SELECT 1", Rows::value("1"));
    exec.db
        .answer("SELECT @@datadir", Rows::value("/data/mysql/"));
    health(
        &host,
        &exec,
        &inst,
        Some(Path::new("/data/mysql")),
        &no_wait(),
    )
    .unwrap();
    let e = health(&host, &exec, &inst, Some(Path::new("/other")), &no_wait()).unwrap_err();
    assert!(e.to_string().contains("expected /other"), "{e}");

    let exec = FakeExec::new();
    exec.db.unreachable("mysqld.sock", "Can't connect");
    let e = health(&host, &exec, &inst, None, &no_wait()).unwrap_err();
    assert!(e.to_string().contains("after 3 attempts"), "{e}");
    assert!(e.to_string().contains("Can't connect"), "{e}");
    assert!(exec.db.calls().is_empty());
}

#[test]
fn stop_and_start_are_idempotent_and_bounded() {
    let exec = FakeExec::new();
    exec.answer("systemctl is-active", out(3, ""));
    assert!(!stop(&exec, "mariadb.service", &no_wait()).unwrap());
    // start never becomes active: bounded failure naming the unit
    let e = start(&exec, "mariadb.service", &no_wait()).unwrap_err();
    assert!(
        e.to_string()
            .contains("mariadb.service did not become active"),
        "{e}"
    );
    assert!(exec
        .calls()
        .contains(&"systemctl start mariadb.service".to_string()));
    assert_eq!(
        exec.calls()
            .iter()
            .filter(|c| c.starts_with("systemctl is-active"))
            .count(),
        2 + 3
    );
}

#[test]
fn newest_debian_mariadb_default_is_var_lib_mariadb() {
    let d = tempfile::tempdir().unwrap();
    debian_mariadb(d.path());
    fs::create_dir_all(d.path().join("var/lib/mariadb")).unwrap();
    let host = Host::with_root(d.path());
    let inst = discover(&host, &FakeExec::new(), Engine::Mariadb).unwrap();
    assert_eq!(inst.datadir, Path::new("/var/lib/mariadb"));
    fs::create_dir_all(d.path().join("var/lib/mysql")).unwrap();
    let inst = discover(&host, &FakeExec::new(), Engine::Mariadb).unwrap();
    assert_eq!(inst.datadir, Path::new("/var/lib/mysql"));
}

/// A fake systemd with a socket-activated service (Debian 12's mariadb.socket): while the
/// socket listens, a client connecting starts the service.
struct SocketSystemd {
    service: std::sync::Mutex<bool>,
    socket: std::sync::Mutex<bool>,
    calls: std::sync::Mutex<Vec<String>>,
    db: FakeDb,
}

impl SocketSystemd {
    fn new() -> Self {
        SocketSystemd {
            service: std::sync::Mutex::new(true),
            socket: std::sync::Mutex::new(true),
            calls: Default::default(),
            db: FakeDb::new(),
        }
    }
    /// A client (the application) connects.
    fn connect(&self) {
        if *self.socket.lock().unwrap() {
            *self.service.lock().unwrap() = true;
        }
    }
}

impl Exec for SocketSystemd {
    fn db(&self) -> &dyn Client {
        &self.db
    }
    fn output(&self, cmd: &crate::host::CommandSpec) -> anyhow::Result<ExecOutput> {
        self.calls.lock().unwrap().push(cmd.display());
        let a: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
        let flag = |u: &str| {
            if u.ends_with(".socket") {
                &self.socket
            } else {
                &self.service
            }
        };
        Ok(match a.as_slice() {
            ["show", "-P", "TriggeredBy", "mariadb.service"] => out(0, "mariadb.socket\n"),
            ["is-active", "--quiet", u] => out(if *flag(u).lock().unwrap() { 0 } else { 3 }, ""),
            ["is-enabled", _] => out(0, "enabled\n"),
            ["stop", units @ ..] => {
                for u in units {
                    *flag(u).lock().unwrap() = false;
                }
                out(0, "")
            }
            ["start", units @ ..] => {
                for u in units {
                    *flag(u).lock().unwrap() = true;
                }
                out(0, "")
            }
            _ => out(1, "unexpected"),
        })
    }
}

#[test]
fn stop_also_stops_the_activating_socket_and_start_brings_it_back() {
    let sd = SocketSystemd::new();
    assert!(!is_stopped(&sd, "mariadb.service"));
    assert!(stop(&sd, "mariadb.service", &no_wait()).unwrap());
    // During the downtime a client connects: the server must stay down.
    sd.connect();
    assert!(!is_active(&sd, "mariadb.service"));
    assert!(is_stopped(&sd, "mariadb.service"));
    assert!(!stop(&sd, "mariadb.service", &no_wait()).unwrap());
    // Service down but the socket listening (e.g. after a reboot) is not "stopped".
    *sd.socket.lock().unwrap() = true;
    assert!(!is_stopped(&sd, "mariadb.service"));
    assert!(stop(&sd, "mariadb.service", &no_wait()).unwrap());
    assert!(start(&sd, "mariadb.service", &no_wait()).unwrap());
    assert!(
        *sd.socket.lock().unwrap(),
        "the enabled socket was not started again"
    );
    assert!(sd
        .calls
        .lock()
        .unwrap()
        .contains(&"systemctl start mariadb.socket mariadb.service".to_string()));
}

/// A MariaDB whose page cleaner writes 1000 dirty pages per check once asked to flush.
struct Flushing {
    dirty: std::sync::Mutex<u64>,
    asked: std::sync::Mutex<bool>,
    calls: std::sync::Mutex<Vec<String>>,
}

impl Flushing {
    fn answer(&self, sql: &str) -> anyhow::Result<Rows> {
        self.calls.lock().unwrap().push(sql.to_string());
        Ok(if sql.contains("INNODB_BUFFER_POOL_PAGES_DIRTY") {
            let mut d = self.dirty.lock().unwrap();
            let now = *d;
            if *self.asked.lock().unwrap() {
                *d = d.saturating_sub(1000);
            }
            Rows::value(&now.to_string())
        } else if sql == "SET GLOBAL innodb_max_dirty_pages_pct = 0" {
            *self.asked.lock().unwrap() = true;
            Rows::default()
        } else {
            anyhow::bail!("unexpected {sql}")
        })
    }
}

/// A session whose statements `f` answers.
type Answerer<'a> = Box<dyn FnMut(&str) -> anyhow::Result<Rows> + 'a>;
struct FnSession<'a>(Answerer<'a>);

impl Session for FnSession<'_> {
    fn query(&mut self, sql: &str) -> anyhow::Result<Rows> {
        (self.0)(sql)
    }
}

impl Client for Flushing {
    fn connect(&self, _t: &Target) -> anyhow::Result<Box<dyn Session + '_>> {
        Ok(Box::new(FnSession(Box::new(move |sql| self.answer(sql)))))
    }
}

impl Exec for Flushing {
    fn output(&self, cmd: &crate::host::CommandSpec) -> anyhow::Result<ExecOutput> {
        anyhow::bail!("unexpected {}", cmd.display())
    }
    fn db(&self) -> &dyn Client {
        self
    }
}

#[test]
fn dirty_pages_are_flushed_before_the_stop_and_the_wait_is_bounded() {
    let d = tempfile::tempdir().unwrap();
    debian_mariadb(d.path());
    let host = Host::with_root(d.path());
    let inst = discover(&host, &FakeExec::new(), Engine::Mariadb).unwrap();
    let db = Flushing {
        dirty: std::sync::Mutex::new(5000),
        asked: Default::default(),
        calls: Default::default(),
    };
    let said = flush_before_stop(&host, &db, &inst, Duration::from_secs(60), |_| {});
    assert_eq!(
        said,
        "InnoDB dirty pages 5000 -> 0 in 0.0 s before the stop"
    );
    assert_eq!(*db.dirty.lock().unwrap(), 0);
    // a count that never falls (a heavy write load) stops the wait after a few checks
    let stuck = Flushing {
        dirty: std::sync::Mutex::new(9000),
        asked: Default::default(),
        calls: Default::default(),
    };
    let said = flush_before_stop(
        &host,
        &NeverFalls(stuck),
        &inst,
        Duration::from_secs(60),
        |_| {},
    );
    assert!(
        said.starts_with("InnoDB dirty pages 9000 -> 9000"),
        "{said}"
    );
    // a server that does not answer: a note, no error
    let said = flush_before_stop(
        &host,
        &FakeExec::new(),
        &inst,
        Duration::from_secs(60),
        |_| {},
    );
    assert!(said.contains("the shutdown flushes"), "{said}");
}

struct NeverFalls(Flushing);

impl Client for NeverFalls {
    fn connect(&self, _t: &Target) -> anyhow::Result<Box<dyn Session + '_>> {
        Ok(Box::new(FnSession(Box::new(move |sql| {
            let o = self.0.answer(sql)?;
            *self.0.dirty.lock().unwrap() = 9000;
            let n = self.0.calls.lock().unwrap().len();
            assert!(
                n < 20,
                "the wait must stop when the count stalls: {n} calls"
            );
            Ok(o)
        }))))
    }
}

impl Exec for NeverFalls {
    fn output(&self, cmd: &crate::host::CommandSpec) -> anyhow::Result<ExecOutput> {
        anyhow::bail!("unexpected {}", cmd.display())
    }
    fn db(&self) -> &dyn Client {
        self
    }
}

#[test]
fn postgresql_checkpoints_before_the_stop() {
    let d = tempfile::tempdir().unwrap();
    let host = Host::with_root(d.path());
    let exec = FakeExec::new();
    let inst = Instance {
        engine: Engine::Postgresql,
        datadir: "/var/lib/postgresql/15/main".into(),
        source: Source::Default,
        config_datadir: "/var/lib/postgresql/15/main".into(),
        unit: "postgresql@15-main.service".into(),
        socket: None,
        dropin_dir: None,
        pg: Some(PgCluster {
            version: "15".into(),
            cluster: "main".into(),
            conf: "/etc/postgresql/15/main/postgresql.conf".into(),
            port: 5432,
        }),
    };
    let said = flush_before_stop(&host, &exec, &inst, Duration::from_secs(60), |_| {});
    assert!(
        said.starts_with("checkpoint before the stop took"),
        "{said}"
    );
    assert_eq!(
        exec.db.calls(),
        vec!["/var/run/postgresql/.s.PGSQL.5432 as postgres: CHECKPOINT"]
    );
}
