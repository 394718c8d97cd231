//! generalize against fake host trees: plant secrets and identity files of every category,
//! `--check` finds each, apply removes them, `--check` is then clean, a second apply changes
//! nothing, and files outside the op list keep their content.

use dbhost::generalize::{self, scan, tally, Options, Runner};
use dbhost::host::{CommandSpec, Exec, ExecOutput, FakeExec, Host};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const SHADOW: &str = "root:$6$salt$hashhashhash:19700:0:99999:7:::\n\
daemon:*:19700:0:99999:7:::\n\
mysql:!:19700::::::\n\
admin:$y$j9T$abc$def:19700:0:99999:7:::\n";

struct Tree {
    _dir: tempfile::TempDir,
    host: Host,
}

impl Tree {
    fn new() -> Self {
        let d = tempfile::tempdir().unwrap();
        let host = Host::with_root(d.path());
        Tree { _dir: d, host }
    }
    fn w(&self, p: &str, s: &str) -> &Self {
        let p = self.host.path(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
        self
    }
    fn read(&self, p: &str) -> String {
        fs::read_to_string(self.host.path(p)).unwrap()
    }
    fn exists(&self, p: &str) -> bool {
        fs::symlink_metadata(self.host.path(p)).is_ok()
    }
}

const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const RSA: &str =
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n";

/// (path, category-or-rule id expected to report it).
const PLANTED: &[(&str, &str)] = &[
    ("/etc/ssh/ssh_host_ed25519_key", "os.ssh-host-keys"),
    ("/etc/ssh/ssh_host_rsa_key.pub", "os.ssh-host-keys"),
    ("/etc/machine-id", "os.machine-id"),
    ("/var/lib/dbus/machine-id", "os.dbus-machine-id"),
    ("/var/lib/systemd/random-seed", "os.random-seed"),
    ("/var/lib/systemd/credential.secret", "os.random-seed"),
    ("/etc/hostname", "os.hostname"),
    ("/etc/hosts", "os.hostname"),
    ("/var/lib/dhcp/dhclient.eth0.leases", "os.dhcp-leases"),
    (
        "/etc/udev/rules.d/70-persistent-net.rules",
        "os.persistent-net",
    ),
    ("/etc/shadow-", "os.passwd-backups"),
    ("/var/lib/waagent/ovf-env.xml", "prov.waagent"),
    ("/var/lib/waagent/Certificates.pem", "prov.waagent"),
    ("/var/lib/waagent/ABCDEF.prv", "prov.waagent"),
    ("/var/lib/cloud/instances", "prov.cloud-init"),
    ("/var/lib/cloud/seed", "prov.cloud-init"),
    ("/etc/sudoers.d/90-cloud-init-users", "prov.sudoers"),
    ("/root/.bash_history", "prov.histories"),
    ("/home/admin/.bash_history", "prov.histories"),
    ("/root/.mysql_history", "prov.histories"),
    ("/var/lib/postgresql/.psql_history", "prov.histories"),
    ("/root/.my.cnf", "prov.db-credentials"),
    ("/var/lib/postgresql/.pgpass", "prov.db-credentials"),
    ("/home/admin/.ssh", "prov.ssh-userdirs"),
    ("/root/.ssh", "prov.ssh-userdirs"),
    ("/etc/shadow", "prov.root-password"),
    ("/tmp/build.sh", "prov.tmp"),
    ("/var/tmp/dump.sql", "prov.tmp"),
    (
        "/var/cache/apt/archives/mariadb-server_10.11_amd64.deb",
        "prov.package-caches",
    ),
    (
        "/var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease",
        "prov.package-caches",
    ),
    (
        "/var/log/journal/0123456789abcdef0123456789abcdef",
        "prov.journal",
    ),
    ("/var/log/cloud-init.log", "prov.logs"),
    ("/var/log/cloud-init-output.log", "prov.logs"),
    ("/var/log/waagent.log", "prov.logs"),
    ("/var/log/syslog.1.gz", "prov.logs"),
    ("/var/log/syslog", "prov.logs"),
    ("/var/lib/mysql/auto.cnf", "db.mysql.identity"),
    ("/var/lib/mysql/server-key.pem", "db.mysql.identity"),
    ("/var/lib/mysql/private_key.pem", "db.mysql.identity"),
    ("/var/lib/mysql/mysql-bin.000001", "db.mysql.replication"),
    ("/var/lib/mysql/mysql-bin.index", "db.mysql.replication"),
    (
        "/var/lib/mysql/builder-relay-bin.000002",
        "db.mysql.replication",
    ),
    ("/var/lib/mysql/master.info", "db.mysql.replication"),
    ("/var/lib/mysql/grastate.dat", "db.mysql.host-files"),
    ("/var/lib/mysql/mysqld-auto.cnf", "db.mysql.host-files"),
    ("/etc/mysql/debian.cnf", "db.debian-cnf"),
    (
        "/var/lib/postgresql/15/main/postmaster.pid",
        "db.postgresql.state",
    ),
    (
        "/var/lib/postgresql/15/main/standby.signal",
        "db.postgresql.state",
    ),
    (
        "/var/lib/postgresql/15/main/pg_replslot/replica1",
        "db.postgresql.state",
    ),
    (
        "/var/lib/postgresql/15/main/postgresql.auto.conf",
        "db.postgresql.state",
    ),
    ("/etc/ssl/private/ssl-cert-snakeoil.key", "db.tls-snakeoil"),
    ("/etc/mdadm/mdadm.conf", "storage.mdadm-conf"),
];

/// Files no op names: must keep their content byte for byte.
const SENTINELS: &[(&str, &str)] = &[
    ("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nmysql:x:106:112:MySQL:/nonexistent:/bin/false\npostgres:x:107:113::/var/lib/postgresql:/bin/bash\nadmin:x:1000:1000::/home/admin:/bin/bash\n"),
    ("/etc/ssh/sshd_config", "PermitRootLogin no\n"),
    ("/etc/fstab", "UUID=0a1b / ext4 defaults 0 1\nUUID=5f3c /data xfs noatime,nofail,x-systemd.device-timeout=30s,x-dbhost 0 0\n"),
    ("/etc/mysql/my.cnf", "[client-server]\n!includedir /etc/mysql/mariadb.conf.d/\n"),
    ("/etc/mysql/mariadb.conf.d/50-server.cnf", "[mysqld]\ndatadir = /var/lib/mysql\n"),
    ("/var/lib/mysql/ibdata1", "innodb system tablespace"),
    ("/var/lib/mysql/mysql/user.MAD", "user table"),
    ("/var/lib/postgresql/15/main/PG_VERSION", "15\n"),
    ("/home/admin/notes.txt", "keep me\n"),
    ("/etc/sudoers.d/README", "# sudoers.d README\n"),
    ("/etc/ssl/certs/ssl-cert-snakeoil-ca.pem", "-----BEGIN CERTIFICATE-----\n"),
];

fn plant(t: &Tree) {
    for (p, s) in SENTINELS {
        t.w(p, s);
    }
    t.w("/etc/shadow", SHADOW)
        .w("/etc/shadow-", SHADOW)
        .w("/etc/ssh/ssh_host_ed25519_key", KEY)
        .w("/etc/ssh/ssh_host_rsa_key.pub", "ssh-rsa AAAA root@builder\n")
        .w("/etc/machine-id", "0123456789abcdef0123456789abcdef\n")
        .w("/var/lib/dbus/machine-id", "0123456789abcdef0123456789abcdef\n")
        .w("/var/lib/systemd/random-seed", "\x01\x02seed")
        .w("/var/lib/systemd/credential.secret", "secret")
        .w("/etc/hostname", "builder\n")
        .w("/etc/hosts", "127.0.0.1 localhost\n127.0.1.1 builder\n")
        .w("/var/lib/dhcp/dhclient.eth0.leases", "lease { fixed-address 10.0.0.4; }\n")
        .w("/etc/udev/rules.d/70-persistent-net.rules", "SUBSYSTEM==\"net\", ATTR{address}==\"00:0d:3a:01:02:03\", NAME=\"eth0\"\n")
        .w("/var/lib/waagent/ovf-env.xml", "<CustomData>c2VjcmV0</CustomData><UserName>admin</UserName>\n")
        .w("/var/lib/waagent/Certificates.pem", RSA)
        .w("/var/lib/waagent/ABCDEF.prv", RSA)
        .w("/var/lib/cloud/instances/i-123/user-data.txt", "#cloud-config\npassword: Sup3rS3cret\nchpasswd: { expire: false }\n")
        .w("/var/lib/cloud/seed/nocloud/user-data", "#cloud-config\npassword: Sup3rS3cret\n")
        .w("/etc/sudoers.d/90-cloud-init-users", "admin ALL=(ALL) NOPASSWD:ALL\n")
        .w("/root/.bash_history", "mysql -uroot -pSup3rS3cret\n")
        .w("/home/admin/.bash_history", "sudo su\n")
        .w("/root/.mysql_history", "CREATE USER app IDENTIFIED BY 'pw';\n")
        .w("/var/lib/postgresql/.psql_history", "ALTER USER x PASSWORD 'y';\n")
        .w("/root/.my.cnf", "[client]\nuser=root\npassword=Sup3rS3cret\n")
        .w("/var/lib/postgresql/.pgpass", "*:*:*:postgres:Sup3rS3cret\n")
        .w("/home/admin/.ssh/authorized_keys", "ssh-ed25519 AAAA admin@laptop\n")
        .w("/root/.ssh/id_rsa", RSA)
        .w("/tmp/build.sh", "echo build\n")
        .w("/var/tmp/dump.sql", "INSERT ...\n")
        .w("/var/cache/apt/archives/mariadb-server_10.11_amd64.deb", "deb")
        .w("/var/cache/apt/archives/lock", "")
        .w("/var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease", "lists")
        .w("/var/log/journal/0123456789abcdef0123456789abcdef/system.journal", "journal")
        .w("/var/log/cloud-init.log", "user-data: password: Sup3rS3cret\n")
        .w("/var/log/cloud-init-output.log", "output\n")
        .w("/var/log/waagent.log", "agent\n")
        .w("/var/log/syslog.1.gz", "gz")
        .w("/var/log/syslog", "Nov 22 builder kernel: hello\n")
        .w("/var/log/wtmp", "login record")
        .w("/var/lib/mysql/auto.cnf", "[auto]\nserver-uuid=3e11fa47-71ca-11e1-9e33-c80aa9429562\n")
        .w("/var/lib/mysql/server-key.pem", RSA)
        .w("/var/lib/mysql/private_key.pem", RSA)
        .w("/var/lib/mysql/mysql-bin.000001", "binlog")
        .w("/var/lib/mysql/mysql-bin.index", "./mysql-bin.000001\n")
        .w("/var/lib/mysql/builder-relay-bin.000002", "relay")
        .w("/var/lib/mysql/master.info", "33\nmysql-bin.000001\n4\nsource.example\nrepl\nReplPassw0rd\n")
        .w("/var/lib/mysql/grastate.dat", "# GALERA saved state\nuuid: 5ee99582-bb8d-11e2-b8e3-23de375c1d30\nseqno: 8204503945773\n")
        .w("/var/lib/mysql/mysqld-auto.cnf", r#"{"Version":1,"mysql_server":{"server_id":{"Value":"7","Metadata":{}},"max_connections":{"Value":"500","Metadata":{}}}}"#)
        .w("/etc/mysql/debian.cnf", "[client]\nhost     = localhost\nuser     = debian-sys-maint\npassword = Sup3rS3cret\n[mysql_upgrade]\npassword = Sup3rS3cret\n")
        .w("/var/lib/postgresql/15/main/postmaster.pid", "1234\n/var/lib/postgresql/15/main\n")
        .w("/var/lib/postgresql/15/main/standby.signal", "")
        .w("/var/lib/postgresql/15/main/pg_replslot/replica1/state", "slot")
        .w("/var/lib/postgresql/15/main/postgresql.auto.conf", "primary_conninfo = 'host=10.0.0.5 password=ReplPassw0rd'\nwork_mem = '64MB'\n")
        .w("/usr/sbin/make-ssl-cert", "#!/bin/sh\n")
        .w("/etc/ssl/private/ssl-cert-snakeoil.key", RSA)
        .w("/etc/mdadm/mdadm.conf", "HOMEHOST <system>\nARRAY /dev/md/data metadata=1.2 UUID=a:b:c:d name=builder:data\n")
        .w("/usr/share/initramfs-tools/hooks/mdadm", "#!/bin/sh\n")
        .w("/usr/sbin/update-initramfs", "#!/bin/sh\n");
    fs::set_permissions(
        t.host.path("/etc/shadow"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
}

fn opts() -> Options {
    Options {
        exe: Some(PathBuf::from("/usr/local/sbin/dbhost")),
        ..Options::default()
    }
}

/// Secrets the independent content check must not find after generalize.
const SECRET_STRINGS: &[&str] = &[
    "Sup3rS3cret",
    "ReplPassw0rd",
    "PRIVATE KEY",
    "$6$salt",
    "c2VjcmV0",
];

fn grep_tree(root: &Path, needle: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                let b = fs::read(&p).unwrap();
                if String::from_utf8_lossy(&b).contains(needle) {
                    hits.push(p);
                }
            }
        }
    }
    hits
}

#[test]
fn check_finds_every_planted_item_then_apply_cleans_and_is_idempotent() {
    let t = Tree::new();
    plant(&t);
    let exec = FakeExec::new();

    // --check finds each planted item, under the expected op.
    let findings = scan::check(&t.host, &exec, &opts()).unwrap();
    for (path, id) in PLANTED {
        assert!(
            findings
                .iter()
                .any(|f| f.id == *id && f.path.starts_with(path)),
            "{path} not reported by {id}; findings: {findings:#?}"
        );
    }
    // wtmp gets a shutdown record at the capture's poweroff: truncated, but not a leftover.
    assert!(
        !findings.iter().any(|f| f.path == "/var/log/wtmp"),
        "{findings:#?}"
    );
    let kinds: std::collections::BTreeSet<&str> = PLANTED.iter().map(|(_, id)| *id).collect();
    assert!(kinds.len() >= 15, "only {} kinds", kinds.len());

    // apply (actions run through the fake exec as if live).
    let ops = generalize::build_ops(&t.host, &opts()).unwrap();
    let runner = Runner {
        host: &t.host,
        exec: &exec,
        live: true,
    };
    let reports = runner.apply(&ops, |_| {}).unwrap();
    let (changed, _, skipped) = tally(&reports);
    assert!(changed >= PLANTED.len(), "changed {changed}");
    assert_eq!(skipped, 0);
    let calls = exec.calls();
    assert!(
        calls.contains(&"journalctl --relinquish-var".to_string()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"update-initramfs -u".to_string()),
        "{calls:?}"
    );

    // clean afterwards.
    let after = scan::check(&t.host, &exec, &opts()).unwrap();
    assert!(after.is_empty(), "leftovers after generalize: {after:#?}");
    for s in SECRET_STRINGS {
        let hits = grep_tree(t.host.root(), s);
        // The test's own planted helper binaries are not secrets; nothing else may match.
        assert!(hits.is_empty(), "{s:?} still in {hits:?}");
    }

    // second apply: nothing changes.
    let ops = generalize::build_ops(&t.host, &opts()).unwrap();
    let reports = runner.apply(&ops, |_| {}).unwrap();
    let (changed, unchanged, _) = tally(&reports);
    let changed_items: Vec<_> = reports
        .iter()
        .flat_map(|r| {
            r.items
                .iter()
                .filter(|i| i.outcome == Some(generalize::Outcome::Changed))
        })
        .collect();
    assert_eq!(changed, 0, "second run changed: {changed_items:#?}");
    assert!(unchanged > 0);

    // outside the op list: untouched.
    for (p, s) in SENTINELS {
        assert_eq!(t.read(p), *s, "{p} changed");
    }
    // shadow: root locked, everything else byte-identical, mode kept.
    let shadow = t.read("/etc/shadow");
    let expected = SHADOW.replacen("root:$6$salt$hashhashhash:", "root:*:", 1);
    assert_eq!(shadow, expected);
    let mode = fs::metadata(t.host.path("/etc/shadow"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);

    // specifics: machine-id kept but empty, hostname reset, debian.cnf blanked, logs truncated,
    // mdadm.conf host-independent, apt lock kept, first-boot units installed and enabled.
    assert_eq!(t.read("/etc/machine-id"), "");
    assert_eq!(t.read("/etc/hostname"), "localhost\n");
    assert_eq!(t.read("/etc/hosts"), "127.0.0.1 localhost\n");
    assert_eq!(t.read("/var/log/syslog"), "");
    assert_eq!(t.read("/var/log/wtmp"), "");
    assert!(!t.exists("/var/log/syslog.1.gz"));
    assert!(t.exists("/var/cache/apt/archives/lock"));
    assert!(t
        .read("/etc/mysql/debian.cnf")
        .contains("user     = debian-sys-maint\npassword =\n"));
    assert_eq!(t.read("/etc/mdadm/mdadm.conf"), "HOMEHOST <ignore>\n");
    assert!(!t.exists("/var/lib/dbhost/initramfs-stale"));
    assert!(t
        .read("/var/lib/mysql/mysqld-auto.cnf")
        .contains("max_connections"));
    assert_eq!(
        t.read("/var/lib/postgresql/15/main/postgresql.auto.conf"),
        "work_mem = '64MB'\n"
    );
    assert!(t.exists("/var/lib/dbhost/generalized"));
    let unit = t.read("/etc/systemd/system/dbhost-firstboot.service");
    assert!(unit.contains("ExecStart=/usr/local/sbin/dbhost generalize --first-boot pre-db"));
    assert_eq!(
        fs::read_link(
            t.host
                .path("/etc/systemd/system/sysinit.target.wants/dbhost-firstboot.service")
        )
        .unwrap(),
        PathBuf::from("/etc/systemd/system/dbhost-firstboot.service")
    );
    assert!(t.exists("/etc/systemd/system/multi-user.target.wants/dbhost-firstboot-db.service"));
}

#[test]
fn dry_run_names_every_target_and_changes_nothing() {
    let t = Tree::new();
    plant(&t);
    let exec = FakeExec::new();
    let ops = generalize::build_ops(&t.host, &opts()).unwrap();
    let obs = Runner::new(&t.host, &exec).observe(&ops).unwrap();
    let listed: Vec<&str> = obs
        .iter()
        .flat_map(|r| r.items.iter().map(|i| i.target.as_str()))
        .collect();
    for (path, _) in PLANTED {
        assert!(
            listed.iter().any(|l| l.starts_with(path)),
            "{path} not in dry-run"
        );
    }
    assert_eq!(t.read("/etc/shadow"), SHADOW);
    assert!(t.exists("/root/.bash_history"));
    assert!(exec.calls().is_empty(), "dry-run ran {:?}", exec.calls());
}

#[test]
fn waagent_keeps_ovf_env_for_its_own_deprovision() {
    let t = Tree::new();
    t.w("/usr/sbin/waagent", "#!/usr/bin/python3\n")
        .w("/var/lib/waagent/ovf-env.xml", "<UserName>admin</UserName>")
        .w("/var/lib/waagent/GoalState.1.xml", "<x/>");
    let exec = FakeExec::new();
    let ops = generalize::build_ops(&t.host, &opts()).unwrap();
    Runner::new(&t.host, &exec).apply(&ops, |_| {}).unwrap();
    assert!(t.exists("/var/lib/waagent/ovf-env.xml"));
    assert!(!t.exists("/var/lib/waagent/GoalState.1.xml"));
    // ...and --check still reports it until `waagent -deprovision+user` removed it.
    let f = scan::check(&t.host, &exec, &opts()).unwrap();
    assert!(
        f.iter().any(|x| x.path == "/var/lib/waagent/ovf-env.xml"),
        "{f:#?}"
    );
}

#[test]
fn host_bound_fstab_refuses_before_changing_anything() {
    let t = Tree::new();
    plant(&t);
    t.w("/etc/fstab", "/dev/md127 /data xfs noatime 0 0\n");
    let exec = FakeExec::new();
    let ops = generalize::build_ops(&t.host, &opts()).unwrap();
    let err = Runner::new(&t.host, &exec).apply(&ops, |_| {}).unwrap_err();
    assert_eq!(dbhost::exit::code_for(&err), 3, "{err:#}");
    assert!(err.to_string().contains("/dev/md127"), "{err:#}");
    assert_eq!(t.read("/etc/shadow"), SHADOW);
    assert!(t.exists("/etc/ssh/ssh_host_ed25519_key"));
}

/// A fake exec where `systemctl stop` really stops the fake server (removes its /proc entry).
struct StoppingExec {
    inner: FakeExec,
    proc_entry: PathBuf,
    stop_works: bool,
}

impl Exec for StoppingExec {
    fn output(&self, cmd: &CommandSpec) -> anyhow::Result<ExecOutput> {
        let line = cmd.display();
        if self.stop_works && line.starts_with("systemctl stop") {
            let _ = fs::remove_dir_all(&self.proc_entry);
        }
        self.inner.output(cmd)
    }
    fn db(&self) -> &dyn dbhost::db::client::Client {
        &self.inner.db
    }
}

fn running_mariadb() -> (Tree, StoppingExec) {
    let t = Tree::new();
    plant(&t);
    t.w("/proc/4242/comm", "mariadbd\n")
        .w("/usr/bin/mariadb", "");
    let inner = FakeExec::new();
    inner.db.answer(
        "SELECT @@version",
        dbhost::db::client::Rows::one(
            &["@@version", "@@log_bin"],
            &[Some("10.11.6-MariaDB-0+deb12u1"), Some("1")],
        ),
    );
    inner.answer(
        "systemctl is-active mariadb.service",
        ExecOutput {
            status: 0,
            stdout: "active\n".into(),
            stderr: String::new(),
        },
    );
    inner.answer(
        "systemctl is-active",
        ExecOutput {
            status: 3,
            stdout: "inactive\n".into(),
            stderr: String::new(),
        },
    );
    let proc_entry = t.host.path("/proc/4242");
    (
        t,
        StoppingExec {
            inner,
            proc_entry,
            stop_works: true,
        },
    )
}

#[test]
fn mariadb_is_reset_slow_shutdown_and_stopped_before_its_files_go() {
    let (t, exec) = running_mariadb();
    let ops = generalize::build_ops(&t.host, &opts()).unwrap();
    let runner = Runner {
        host: &t.host,
        exec: &exec,
        live: true,
    };
    runner.apply(&ops, |_| {}).unwrap();
    let calls = exec.inner.timeline();
    let pos = |needle: &str| {
        calls
            .iter()
            .position(|c| c.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not called: {calls:#?}"))
    };
    assert!(pos("RESET MASTER") < pos("innodb_fast_shutdown=0"));
    assert!(pos("innodb_fast_shutdown=0") < pos("systemctl stop mariadb.service"));
    assert!(calls[pos("SELECT @@version")].contains("/run/mysqld/mysqld.sock as root"));
    assert!(!t.exists("/var/lib/mysql/auto.cnf"));
}

#[test]
fn server_that_does_not_stop_blocks_everything_after_it() {
    let (t, mut exec) = running_mariadb();
    exec.stop_works = false;
    let ops = generalize::build_ops(&t.host, &opts()).unwrap();
    let runner = Runner {
        host: &t.host,
        exec: &exec,
        live: true,
    };
    let err = runner.apply(&ops, |_| {}).unwrap_err();
    assert!(format!("{err:#}").contains("still running"), "{err:#}");
    assert!(t.exists("/var/lib/mysql/auto.cnf"));
    assert_eq!(t.read("/etc/shadow"), SHADOW);
}

#[test]
fn datadir_files_are_not_touched_while_the_server_runs_without_live_actions() {
    // Not live (e.g. a library caller on a sysroot): the stop action is skipped, so the
    // datadir op must refuse rather than delete files under a running server.
    let (t, exec) = running_mariadb();
    let ops = generalize::build_ops(&t.host, &opts()).unwrap();
    let err = Runner::new(&t.host, &exec).apply(&ops, |_| {}).unwrap_err();
    assert!(
        format!("{err:#}").contains("mariadbd (pid 4242) is running"),
        "{err:#}"
    );
    assert!(t.exists("/var/lib/mysql/auto.cnf"));
}

#[test]
fn unclean_postgres_cluster_is_refused() {
    let t = Tree::new();
    plant(&t);
    let mut control = vec![0u8; 64];
    control[16] = 6; // in production
    let p = t.host.path("/var/lib/postgresql/15/main/global/pg_control");
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, &control).unwrap();
    let exec = FakeExec::new();
    let f = scan::check(&t.host, &exec, &opts()).unwrap();
    assert!(
        f.iter()
            .any(|x| x.id == "db.postgresql.shutdown" && x.detail.contains("in production")),
        "{f:#?}"
    );
    let ops = generalize::build_ops(&t.host, &opts()).unwrap();
    let runner = Runner {
        host: &t.host,
        exec: &exec,
        live: true,
    };
    let err = runner.apply(&ops, |_| {}).unwrap_err();
    assert!(
        format!("{err:#}").contains("not cleanly shut down"),
        "{err:#}"
    );
    control[16] = 1;
    fs::write(&p, &control).unwrap();
    runner
        .apply(&generalize::build_ops(&t.host, &opts()).unwrap(), |_| {})
        .unwrap();
}

#[test]
fn cli_check_exit_codes_on_a_sysroot() {
    let t = Tree::new();
    plant(&t);
    let bin = env!("CARGO_BIN_EXE_dbhost");
    let out = Command::new(bin)
        .args(["--sysroot"])
        .arg(t.host.root())
        .args(["--output", "json", "generalize", "--check"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["clean"], false);
    assert!(v["leftovers"].as_array().unwrap().len() >= PLANTED.len());

    // apply refuses a sysroot; dry-run works on it.
    let out = Command::new(bin)
        .arg("--sysroot")
        .arg(t.host.root())
        .args(["generalize", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(bin)
        .arg("--sysroot")
        .arg(t.host.root())
        .args(["generalize", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("/etc/ssh/ssh_host_ed25519_key: remove file"),
        "{text}"
    );

    // generalize through the library, then the CLI check is clean (exit 0).
    let exec = FakeExec::new();
    let ops = generalize::build_ops(&t.host, &opts()).unwrap();
    Runner {
        host: &t.host,
        exec: &exec,
        live: true,
    }
    .apply(&ops, |_| {})
    .unwrap();
    let out = Command::new(bin)
        .arg("--sysroot")
        .arg(t.host.root())
        .args(["generalize", "--check"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Generalize, then simulate the first boot of a clone: systemd wrote a new machine-id, the
/// pre-db phase runs before the database, the post-db phase after it.
#[test]
fn first_boot_refreshes_identity_after_generalize() {
    use dbhost::generalize::firstboot;
    let t = Tree::new();
    plant(&t);
    t.w("/var/lib/dbhost/profile-src.toml", "version = 1\n");
    let exec = FakeExec::new();
    let mut o = opts();
    o.profile = Some(t.host.path("/var/lib/dbhost/profile-src.toml"));
    let ops = generalize::build_ops(&t.host, &o).unwrap();
    Runner {
        host: &t.host,
        exec: &exec,
        live: true,
    }
    .apply(&ops, |_| {})
    .unwrap();
    assert!(t
        .read("/var/lib/dbhost/generalized")
        .contains("profile=/var/lib/dbhost/firstboot-profile.toml"));
    assert_eq!(
        t.read("/var/lib/dbhost/firstboot-profile.toml"),
        "version = 1\n"
    );

    // Without a stamp: nothing happens.
    let idle = Tree::new();
    let e0 = FakeExec::new();
    assert!(firstboot::run_pre(&idle.host, &e0).unwrap()[0].contains("nothing to do"));
    assert!(e0.calls().is_empty());

    // The clone boots: new machine-id, pre-db phase.
    t.w("/etc/machine-id", "0000002aabcdef0123456789abcdef01\n");
    let exec = FakeExec::new();
    let done = firstboot::run_pre(&t.host, &exec).unwrap();
    assert_eq!(
        t.read("/etc/mysql/mariadb.conf.d/99-dbhost-identity.cnf")
            .lines()
            .last(),
        Some("server_id = 42"),
        "{done:?}"
    );
    let calls = exec.calls();
    assert!(calls.contains(&"ssh-keygen -A".to_string()), "{calls:?}");
    assert!(
        calls.contains(&"make-ssl-cert generate-default-snakeoil --force-overwrite".to_string())
    );

    // post-db with the server down: refuses, stamp kept for the next boot.
    let err = firstboot::run_post(&t.host, &exec, Path::new("/usr/local/sbin/dbhost")).unwrap_err();
    assert!(err.to_string().contains("not running"), "{err:#}");
    assert!(t.exists("/var/lib/dbhost/generalized"));

    // post-db with the server up: rotation over the protocol, apply tolerated as not
    // implemented.
    t.w("/proc/77/comm", "mariadbd\n")
        .w("/usr/bin/mariadb", "")
        .w("/dev/urandom", "0123456789abcdefghijklmnop");
    let exec = FakeExec::new();
    exec.db
        .answer("SELECT COUNT(*)", dbhost::db::client::Rows::value("1"));
    exec.answer(
        "/usr/local/sbin/dbhost apply",
        ExecOutput {
            status: 1,
            stdout: String::new(),
            stderr: "dbhost: error: `dbhost apply` is not implemented in this build\n".into(),
        },
    );
    let done = firstboot::run_post(&t.host, &exec, Path::new("/usr/local/sbin/dbhost")).unwrap();
    assert!(
        !exec.calls().iter().any(|c| c.contains("IDENTIFIED")),
        "password on a command line"
    );
    let stmts = exec.db.statements();
    let sql = stmts
        .iter()
        .find(|c| c.contains("ALTER USER 'debian-sys-maint'"))
        .unwrap_or_else(|| panic!("no ALTER USER: {stmts:#?}"));
    let pw = sql.split('\'').nth(5).unwrap().to_string();
    assert_eq!(pw.len(), 36);
    let cnf = t.read("/etc/mysql/debian.cnf");
    assert!(cnf.contains(&format!("password = {pw}\n")), "{cnf}");
    assert!(!cnf.contains("Sup3rS3cret"));
    assert!(exec.calls().iter().any(|c| c == "/usr/local/sbin/dbhost apply --profile /var/lib/dbhost/firstboot-profile.toml --yes --output json"), "{:?}", exec.calls());
    assert!(!t.exists("/var/lib/dbhost/generalized"), "{done:?}");

    // A real apply failure keeps the stamp.
    t.w(
        "/var/lib/dbhost/generalized",
        &firstboot::stamp_content(true),
    );
    let exec = FakeExec::new();
    exec.db
        .answer("SELECT COUNT(*)", dbhost::db::client::Rows::value("0"));
    exec.answer(
        "/usr/local/sbin/dbhost apply",
        ExecOutput {
            status: 3,
            stdout: String::new(),
            stderr: "refused: disk holds data\n".into(),
        },
    );
    assert!(firstboot::run_post(&t.host, &exec, Path::new("/usr/local/sbin/dbhost")).is_err());
    assert!(t.exists("/var/lib/dbhost/generalized"));
}

#[test]
fn random_seed_service_is_stopped_before_its_seed_is_removed() {
    let t = Tree::new();
    t.w("/var/lib/systemd/random-seed", "seed");
    let exec = FakeExec::new();
    exec.answer(
        "systemctl is-active systemd-random-seed.service",
        ExecOutput {
            status: 0,
            stdout: "active\n".into(),
            stderr: String::new(),
        },
    );
    let ops = generalize::build_ops(&t.host, &opts()).unwrap();
    let obs = Runner {
        host: &t.host,
        exec: &exec,
        live: true,
    }
    .observe(&ops)
    .unwrap();
    assert!(obs.iter().any(|r| r
        .items
        .iter()
        .any(|i| i.change == "systemctl stop systemd-random-seed.service")));
    Runner {
        host: &t.host,
        exec: &exec,
        live: true,
    }
    .apply(&ops, |_| {})
    .unwrap();
    assert!(exec
        .calls()
        .contains(&"systemctl stop systemd-random-seed.service".to_string()));
    assert!(!t.exists("/var/lib/systemd/random-seed"));
}

/// `systemd-analyze verify` accepts the rendered units (skipped where systemd is absent).
#[test]
fn first_boot_units_pass_systemd_analyze_verify() {
    use dbhost::generalize::firstboot::render_units;
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        eprintln!("systemd-analyze not available: skipped");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut args = vec!["verify".to_string(), "--man=no".to_string()];
    for (name, text, _) in render_units(Path::new("/bin/true")) {
        let p = d.path().join(name);
        fs::write(&p, text).unwrap();
        args.push(p.display().to_string());
    }
    let out = Command::new("systemd-analyze")
        .args(&args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !err.contains("dbhost-firstboot"),
        "{err}"
    );
}
