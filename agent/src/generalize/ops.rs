//! The generalize operation list. Built from what is on the host (globs are expanded here, so
//! `--dry-run` names every file); each op's targets are then observed or applied by the
//! [`super::Runner`]. Order: GENERALIZE-DATADIR-TUNING.md §D.

use super::{db, firstboot, Action, Category, Edit, Op, Target, Verify, INITRAMFS_STALE, STAMP};
use crate::host::Host;
use anyhow::Result;
use std::fs;
use std::path::{Path, PathBuf};

/// Inputs that are not discovered from the host.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// MySQL/MariaDB datadir (default: from the option files, else /var/lib/mysql).
    pub mysql_datadir: Option<PathBuf>,
    /// PostgreSQL data directories (default: discovered).
    pub pg_datadirs: Vec<PathBuf>,
    /// Profile for `dbhost apply` on the first boot (copied into dbhost's state dir).
    pub profile: Option<PathBuf>,
    /// The dbhost binary to reference from (and, if needed, install for) the first-boot units.
    /// `None`: the units reference [`firstboot::INSTALLED_BIN`] and nothing is installed.
    pub exe: Option<PathBuf>,
}

/// Files MySQL generates in the datadir when missing: server identity and TLS/RSA key pairs.
pub const MYSQL_AUTO_FILES: &[&str] = &[
    "auto.cnf",
    "ca.pem",
    "ca-key.pem",
    "server-cert.pem",
    "server-key.pem",
    "client-cert.pem",
    "client-key.pem",
    "private_key.pem",
    "public_key.pem",
];

/// Shell, database-client and editor histories.
pub const HISTORIES: &[&str] = &[
    ".bash_history",
    ".zsh_history",
    ".sh_history",
    ".ash_history",
    ".mysql_history",
    ".mariadb_history",
    ".psql_history",
    ".sqlite_history",
    ".python_history",
    ".lesshst",
    ".viminfo",
    ".rediscli_history",
];

/// Database client credential files in home directories.
pub const DB_CREDENTIALS: &[&str] = &[".my.cnf", ".mylogin.cnf", ".pgpass"];

/// Sorted entries of an in-host directory, as in-host absolute paths. Missing dir → empty.
pub fn entries(host: &Host, dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(host.path(dir))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| dir.join(e.file_name()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn matching(host: &Host, dir: &str, pred: impl Fn(&str) -> bool) -> Vec<Target> {
    entries(host, Path::new(dir))
        .into_iter()
        .filter(|p| pred(&name_of(p)))
        .map(Target::Remove)
        .collect()
}

fn remove_contents(host: &Host, dir: &str) -> Vec<Target> {
    matching(host, dir, |_| true)
}

/// Where MySQL/MariaDB keep binary/relay logs and replica metadata: the datadir, the
/// directories of absolute `log_bin`/`relay_log` settings, /var/log/mysql.
fn mysql_log_dirs(dd: Option<&Path>, cnf: &crate::db::cnf::Cnf) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = dd.map(Path::to_path_buf).into_iter().collect();
    for v in [cnf.server("log_bin"), cnf.server("relay_log")]
        .into_iter()
        .flatten()
    {
        let p = Path::new(v);
        if p.is_absolute() {
            if let Some(parent) = p.parent() {
                dirs.push(parent.to_path_buf());
            }
        }
    }
    dirs.push(PathBuf::from("/var/log/mysql"));
    dirs.dedup();
    dirs
}

/// Replica state and relay logs (not binary logs): what `RESET SLAVE ALL` deletes.
pub fn is_replica_state(name: &str) -> bool {
    is_binlog_or_relay(name) && (name.ends_with(".info") || name.contains("relay"))
}

/// MySQL binary/relay log files and replica metadata by name.
pub fn is_binlog_or_relay(name: &str) -> bool {
    if matches!(
        name,
        "master.info" | "relay-log.info" | "multi-master.info" | "relay-log.index"
    ) {
        return true;
    }
    if (name.starts_with("master-") || name.starts_with("relay-log-")) && name.ends_with(".info") {
        return true;
    }
    // <stem>.NNNNNN[.idx], <stem>.index, <stem>.state with stem binlog / *-bin / *-relay-bin.
    let (stem, rest) = match name.split_once('.') {
        Some(x) => x,
        None => return false,
    };
    let stem_ok = stem == "binlog" || stem.ends_with("-bin") || stem == "mysql-bin";
    if !stem_ok {
        return false;
    }
    let rest = rest.strip_suffix(".idx").unwrap_or(rest);
    rest == "index"
        || rest == "state"
        || (rest.len() >= 6 && rest.bytes().all(|b| b.is_ascii_digit()))
}

/// Home directories: /root, /home/*, and every existing home in /etc/passwd other than `/`.
/// Returns (home, is_human) — human: root, /home/*, uid ≥ 1000.
pub fn homes(host: &Host) -> Vec<(PathBuf, bool)> {
    let mut out: Vec<(PathBuf, bool)> = vec![(PathBuf::from("/root"), true)];
    for h in entries(host, Path::new("/home")) {
        if host.path(&h).is_dir() {
            out.push((h, true));
        }
    }
    if let Ok(pw) = fs::read_to_string(host.path("/etc/passwd")) {
        for line in pw.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
                continue;
            }
            let uid: u32 = f[2].parse().unwrap_or(0);
            let home = PathBuf::from(f[5]);
            if f[5].is_empty() || home == Path::new("/") || !host.path(&home).is_dir() {
                continue;
            }
            let human = uid == 0 || (1000..60000).contains(&uid);
            if let Some(e) = out.iter_mut().find(|(h, _)| *h == home) {
                e.1 |= human;
            } else {
                out.push((home, human));
            }
        }
    }
    out
}

/// The builder's host name from /etc/hostname.
fn hostname(host: &Host) -> String {
    fs::read_to_string(host.path("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Does the initramfs carry mdadm.conf (mdadm's initramfs-tools hook or dracut module present)?
pub fn initramfs_carries_mdadm(host: &Host) -> bool {
    host.path("/usr/share/initramfs-tools/hooks/mdadm").exists()
        && host.path("/usr/sbin/update-initramfs").exists()
}

fn log_is_rotated(name: &str) -> bool {
    let tail = name.rsplit('.').next().unwrap_or("");
    name.ends_with(".gz")
        || name.ends_with(".xz")
        || name.ends_with(".bz2")
        || name.ends_with(".zst")
        || name.ends_with(".old")
        || (tail.bytes().all(|b| b.is_ascii_digit()) && !tail.is_empty() && name.contains('.'))
        || name
            .rsplit('-')
            .next()
            .map(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or(false)
}

/// Logs that may echo provisioning secrets: removed, not truncated.
fn log_is_provisioning(rel: &str) -> bool {
    rel.starts_with("cloud-init") || rel == "waagent.log" || rel.starts_with("azure/")
}

/// Login accounting files: truncated by their own op, not counted by `--check` (poweroff
/// appends a shutdown record to wtmp after generalize).
pub const LOGIN_RECORDS: &[&str] = &["wtmp", "btmp", "lastlog", "faillog"];

/// Walk /var/log: journal handled separately; provisioning logs and rotated copies removed,
/// other regular files truncated (kept for daemons that expect them, owner and mode intact).
fn log_targets(host: &Host) -> Vec<Target> {
    let mut out = Vec::new();
    fn walk(host: &Host, dir: &Path, base: &Path, out: &mut Vec<Target>, depth: usize) {
        if depth > 6 {
            return;
        }
        for p in entries(host, dir) {
            let rel = p
                .strip_prefix(base)
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or_default();
            if rel == "journal" {
                continue;
            }
            let Ok(m) = fs::symlink_metadata(host.path(&p)) else {
                continue;
            };
            if m.is_dir() {
                if log_is_provisioning(&format!("{rel}/")) {
                    out.push(Target::Remove(p));
                } else {
                    walk(host, &p, base, out, depth + 1);
                }
            } else if m.is_file() {
                let name = name_of(&p);
                if log_is_provisioning(&rel) || log_is_rotated(&name) {
                    out.push(Target::Remove(p));
                } else if !LOGIN_RECORDS.contains(&rel.as_str()) {
                    out.push(Target::Truncate(p));
                }
            }
        }
    }
    walk(
        host,
        Path::new("/var/log"),
        Path::new("/var/log"),
        &mut out,
        0,
    );
    out
}

/// Entries of /tmp and /var/tmp, except systemd's private tmp dirs and X11-style socket dirs
/// of the running system.
fn tmp_targets(host: &Host, dir: &str) -> Vec<Target> {
    matching(host, dir, |n| {
        let private = n.starts_with("systemd-private-");
        let x11 = n.starts_with('.') && n.ends_with("-unix");
        !(private || x11)
    })
}

/// Build the op list for this host.
pub fn build_ops(host: &Host, opts: &Options) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    let mysql_dd = db::mysql_datadir(host, opts.mysql_datadir.as_deref());
    let pg_dds = db::pg_datadirs(host, &opts.pg_datadirs);
    let cnf = db::read_mycnf(host);

    // ---- first boot: binary, profile copy and units first, while the source files (possibly
    // in /tmp, which prov.tmp empties) still exist. Inert until the stamp at the very end.
    ops.extend(firstboot::install_ops(host, opts)?);

    // ---- database -------------------------------------------------------------------------
    let mut op = Op::new(
        Category::Database,
        "db.mysql.shutdown",
        "MySQL/MariaDB: clean slow shutdown (replica state and binary logs reset, innodb_fast_shutdown=0), verified",
    );
    op.targets.push(Target::Action(Action::StopMysql {
        replica_dirs: mysql_log_dirs(mysql_dd.as_deref(), &cnf),
    }));
    ops.push(op);

    let mut op = Op::new(
        Category::Database,
        "db.postgresql.shutdown",
        "PostgreSQL: stopped fast, control data says \"shut down\"",
    );
    op.targets.push(Target::Action(Action::StopPostgres {
        datadirs: pg_dds.clone(),
    }));
    ops.push(op);

    if let Some(dd) = &mysql_dd {
        let mut op = Op::new(
            Category::Database,
            "db.mysql.identity",
            format!(
                "MySQL server_uuid (auto.cnf) and auto-generated TLS/RSA keys in {} (regenerated at first start)",
                dd.display()
            ),
        );
        op.requires_stopped = db::MYSQLD_NAMES;
        op.targets = MYSQL_AUTO_FILES
            .iter()
            .map(|f| dd.join(f))
            .filter(|p| fs::symlink_metadata(host.path(p)).is_ok())
            .map(Target::Remove)
            .collect();
        ops.push(op);

        let mut op = Op::new(
            Category::Database,
            "db.mysql.replication",
            "binary logs, relay logs and replica state files (master.info, relay-log.info, *-bin.*, *-relay-bin.*, index files)",
        );
        op.requires_stopped = db::MYSQLD_NAMES;
        for d in mysql_log_dirs(Some(dd), &cnf) {
            for p in entries(host, &d) {
                if is_binlog_or_relay(&name_of(&p))
                    && !op.targets.contains(&Target::Remove(p.clone()))
                {
                    op.targets.push(Target::Remove(p));
                }
            }
        }
        ops.push(op);

        let mut op = Op::new(
            Category::Database,
            "db.mysql.host-files",
            "host-specific server files: stale *.pid, <hostname>.err, mysqld-auto.cnf host values, Galera grastate.dat/gvwstate.dat",
        );
        op.requires_stopped = db::MYSQLD_NAMES;
        for p in entries(host, dd) {
            let n = name_of(&p);
            if n.ends_with(".pid")
                || n.ends_with(".err")
                || n == "grastate.dat"
                || n == "gvwstate.dat"
            {
                op.targets.push(Target::Remove(p));
            }
        }
        op.targets.push(Target::Edit {
            path: dd.join("mysqld-auto.cnf"),
            edit: Edit::MysqldAutoCnf,
        });
        ops.push(op);
    }

    let mut op = Op::new(
        Category::Database,
        "db.debian-cnf",
        "debian-sys-maint password in /etc/mysql/debian.cnf emptied (rotated on first boot)",
    );
    op.targets.push(Target::Edit {
        path: PathBuf::from("/etc/mysql/debian.cnf"),
        edit: Edit::BlankPasswords,
    });
    ops.push(op);

    if !pg_dds.is_empty() {
        let mut op = Op::new(
            Category::Database,
            "db.postgresql.state",
            "PostgreSQL postmaster.pid, standby.signal/recovery.signal, replication slots, primary_conninfo in postgresql.auto.conf",
        );
        op.requires_stopped = db::POSTGRES_NAMES;
        for d in &pg_dds {
            for f in ["postmaster.pid", "standby.signal", "recovery.signal"] {
                op.targets.push(Target::Remove(d.join(f)));
            }
            for s in entries(host, &d.join("pg_replslot")) {
                op.targets.push(Target::Remove(s));
            }
            op.targets.push(Target::Edit {
                path: d.join("postgresql.auto.conf"),
                edit: Edit::PgAutoConf,
            });
        }
        ops.push(op);
    }

    if host.path("/usr/sbin/make-ssl-cert").exists() {
        let mut op = Op::new(
            Category::Database,
            "db.tls-snakeoil",
            "Debian snakeoil TLS key pair (used by PostgreSQL; regenerated on first boot by make-ssl-cert)",
        );
        op.requires_stopped = db::POSTGRES_NAMES;
        op.targets = vec![
            Target::Remove(PathBuf::from("/etc/ssl/private/ssl-cert-snakeoil.key")),
            Target::Remove(PathBuf::from("/etc/ssl/certs/ssl-cert-snakeoil.pem")),
        ];
        ops.push(op);
    }

    // ---- OS identity ----------------------------------------------------------------------
    let mut op = Op::new(
        Category::OsIdentity,
        "os.machine-id",
        "/etc/machine-id emptied (kept; systemd generates a new one at the next boot)",
    );
    op.targets.push(Target::Write {
        path: PathBuf::from("/etc/machine-id"),
        content: Vec::new(),
        mode: 0o444,
    });
    ops.push(op);

    let mut op = Op::new(
        Category::OsIdentity,
        "os.dbus-machine-id",
        "/var/lib/dbus/machine-id removed unless it is a symlink to /etc/machine-id",
    );
    let dbus = PathBuf::from("/var/lib/dbus/machine-id");
    if fs::symlink_metadata(host.path(&dbus))
        .map(|m| !m.file_type().is_symlink())
        .unwrap_or(false)
    {
        op.targets.push(Target::Remove(dbus));
    }
    ops.push(op);

    let mut op = Op::new(
        Category::OsIdentity,
        "os.ssh-host-keys",
        "SSH host keys /etc/ssh/ssh_host_* (regenerated on first boot)",
    );
    op.targets = matching(host, "/etc/ssh", |n| n.starts_with("ssh_host_"));
    ops.push(op);

    let mut op = Op::new(
        Category::OsIdentity,
        "os.random-seed",
        "systemd random seed and credential secret",
    );
    op.targets = vec![
        // Stopped first: it saves a fresh seed when it stops, i.e. at the capture's poweroff.
        Target::Action(Action::StopUnit("systemd-random-seed.service")),
        Target::Remove(PathBuf::from("/var/lib/systemd/random-seed")),
        Target::Remove(PathBuf::from("/var/lib/systemd/credential.secret")),
    ];
    ops.push(op);

    let old_name = hostname(host);
    let mut op = Op::new(
        Category::OsIdentity,
        "os.hostname",
        "host name reset to `localhost` (the platform sets the new one), its 127.0.1.1 line dropped",
    );
    op.targets.push(Target::Edit {
        path: PathBuf::from("/etc/hosts"),
        edit: Edit::DropHostsName(old_name),
    });
    op.targets.push(Target::Edit {
        path: PathBuf::from("/etc/hostname"),
        edit: Edit::ResetHostname,
    });
    ops.push(op);

    let mut op = Op::new(
        Category::OsIdentity,
        "os.dhcp-leases",
        "DHCP leases (dhclient, dhcpcd, NetworkManager, systemd-networkd)",
    );
    for d in [
        "/var/lib/dhcp",
        "/var/lib/dhclient",
        "/var/lib/dhcpcd",
        "/run/systemd/netif/leases",
    ] {
        op.targets.extend(remove_contents(host, d));
    }
    op.targets
        .extend(matching(host, "/var/lib/NetworkManager", |n| {
            n.ends_with(".lease") || n.ends_with(".leases")
        }));
    ops.push(op);

    let mut op = Op::new(
        Category::OsIdentity,
        "os.persistent-net",
        "persistent-net udev rules (NIC names bound to the builder's MAC addresses)",
    );
    op.targets = matching(host, "/etc/udev/rules.d", |n| {
        n == "70-persistent-net.rules" || n == "75-persistent-net-generator.rules"
    });
    ops.push(op);

    let mut op = Op::new(
        Category::OsIdentity,
        "os.passwd-backups",
        "backup copies of the password databases (/etc/shadow-, /etc/gshadow-)",
    );
    op.targets = matching(host, "/etc", |n| n == "shadow-" || n == "gshadow-");
    ops.push(op);

    // ---- provisioning data ----------------------------------------------------------------
    let mut op = Op::new(
        Category::Provisioning,
        "prov.waagent",
        "Azure agent state /var/lib/waagent/* (certificates, CustomData, goal state, extension settings)",
    );
    // `waagent -deprovision+user`, run after generalize, reads the provisioned user from
    // ovf-env.xml (then deletes the whole directory): keep it when the agent is installed.
    let waagent_installed = host.path("/usr/sbin/waagent").exists();
    op.targets = matching(host, "/var/lib/waagent", |n| {
        !(waagent_installed && n == "ovf-env.xml")
    });
    ops.push(op);

    let mut op = Op::new(
        Category::Provisioning,
        "prov.cloud-init",
        "cloud-init state, seed and instance data /var/lib/cloud/* (as `cloud-init clean --seed`)",
    );
    op.targets = remove_contents(host, "/var/lib/cloud");
    ops.push(op);

    let mut op = Op::new(
        Category::Provisioning,
        "prov.sudoers",
        "provisioning sudoers entries (/etc/sudoers.d/90-cloud-init-users, /etc/sudoers.d/waagent)",
    );
    op.targets = matching(host, "/etc/sudoers.d", |n| {
        n == "90-cloud-init-users" || n == "waagent"
    });
    ops.push(op);

    let all_homes = homes(host);
    let mut op = Op::new(
        Category::Provisioning,
        "prov.histories",
        "shell, database-client and editor histories in every home",
    );
    let mut cred = Op::new(
        Category::Provisioning,
        "prov.db-credentials",
        "database client credentials in homes (.my.cnf, .mylogin.cnf, .pgpass)",
    );
    let mut sshdirs = Op::new(
        Category::Provisioning,
        "prov.ssh-userdirs",
        "users' ~/.ssh (authorized_keys, private keys) of root and human users",
    );
    for (home, human) in &all_homes {
        for f in HISTORIES {
            let p = home.join(f);
            if fs::symlink_metadata(host.path(&p)).is_ok() {
                op.targets.push(Target::Remove(p));
            }
        }
        for f in DB_CREDENTIALS {
            let p = home.join(f);
            if fs::symlink_metadata(host.path(&p)).is_ok() {
                cred.targets.push(Target::Remove(p));
            }
        }
        let s = home.join(".ssh");
        if *human && fs::symlink_metadata(host.path(&s)).is_ok() {
            sshdirs.targets.push(Target::Remove(s));
        }
    }
    ops.push(op);
    ops.push(cred);
    ops.push(sshdirs);

    let mut op = Op::new(
        Category::Provisioning,
        "prov.root-password",
        "root password locked in /etc/shadow (other lines byte-identical)",
    );
    op.targets.push(Target::Edit {
        path: PathBuf::from("/etc/shadow"),
        edit: Edit::LockRoot,
    });
    ops.push(op);

    let mut op = Op::new(
        Category::Provisioning,
        "prov.tmp",
        "temporary files /tmp/*, /var/tmp/* (systemd private tmp dirs of running services kept)",
    );
    op.targets = tmp_targets(host, "/tmp");
    op.targets.extend(tmp_targets(host, "/var/tmp"));
    ops.push(op);

    let mut op = Op::new(
        Category::Provisioning,
        "prov.package-caches",
        "package caches (/var/cache/apt/archives/*.deb, /var/lib/apt/lists/*, dnf/yum caches)",
    );
    op.targets = matching(host, "/var/cache/apt/archives", |n| n.ends_with(".deb"));
    op.targets
        .extend(matching(host, "/var/cache/apt/archives/partial", |_| true));
    op.targets
        .extend(matching(host, "/var/cache/apt", |n| n.ends_with(".bin")));
    op.targets.extend(matching(host, "/var/lib/apt/lists", |n| {
        n != "lock" && n != "partial" && n != "auxfiles"
    }));
    op.targets.extend(remove_contents(host, "/var/cache/dnf"));
    op.targets.extend(remove_contents(host, "/var/cache/yum"));
    ops.push(op);

    let mut op = Op::new(
        Category::Provisioning,
        "prov.journal",
        "systemd journal /var/log/journal/* (journald moved to /run until reboot first)",
    );
    op.targets.push(Target::Action(Action::RelinquishJournal));
    // The per-machine-id directories go too: their names are the builder's machine-id.
    op.targets.extend(remove_contents(host, "/var/log/journal"));
    ops.push(op);

    let mut op = Op::new(
        Category::Provisioning,
        "prov.logs",
        "logs: cloud-init*, waagent.log, /var/log/azure and rotated copies removed; other files in /var/log truncated",
    );
    op.targets = log_targets(host);
    ops.push(op);

    let mut op = Op::new(
        Category::Provisioning,
        "prov.login-records",
        "login records /var/log/{wtmp,btmp,lastlog,faillog} truncated",
    );
    op.in_check = false;
    op.targets = LOGIN_RECORDS
        .iter()
        .map(|n| Target::Truncate(Path::new("/var/log").join(n)))
        .collect();
    ops.push(op);

    // ---- storage identity -----------------------------------------------------------------
    let mut op = Op::new(
        Category::Storage,
        "storage.fstab",
        "fstab: dbhost's mount by filesystem UUID with nofail; no md device by kernel name (verified, not changed)",
    );
    op.targets
        .push(Target::Verify(Verify::Fstab(PathBuf::from("/etc/fstab"))));
    ops.push(op);

    let carries = initramfs_carries_mdadm(host);
    let mut will_mark = false;
    let mut op = Op::new(
        Category::Storage,
        "storage.mdadm-conf",
        "mdadm.conf without host-bound lines (HOMEHOST <ignore>, ARRAY lines named after a host dropped)",
    );
    for conf in ["/etc/mdadm/mdadm.conf", "/etc/mdadm.conf"] {
        let p = PathBuf::from(conf);
        if let Ok(Some(text)) = super::read_text(&host.path(&p)) {
            if carries && Edit::MdadmHostIndependent.apply(&text).ok().as_deref() != Some(&text) {
                will_mark = true;
            }
            op.targets.push(Target::Edit {
                path: p,
                edit: Edit::MdadmHostIndependent,
            });
        }
    }
    if will_mark {
        // Marker first: if the run stops between the edit and the rebuild, the rebuild
        // still happens on the next run.
        op.targets.insert(
            0,
            Target::Write {
                path: PathBuf::from(INITRAMFS_STALE),
                content: b"mdadm.conf changed; run update-initramfs -u\n".to_vec(),
                mode: 0o644,
            },
        );
    }
    ops.push(op);

    let mut op = Op::new(
        Category::Storage,
        "storage.initramfs",
        "initramfs rebuilt when it carries a changed mdadm.conf",
    );
    op.targets
        .push(Target::Action(Action::RebuildInitramfs { will_mark }));
    ops.push(op);

    // ---- first boot: the stamp that arms the units comes last ------------------------------

    let mut op = Op::new(
        Category::FirstBoot,
        "firstboot.stamp",
        format!("stamp {STAMP} arming the first-boot units (removed by them)"),
    );
    op.in_check = false;
    op.targets.push(Target::Write {
        path: PathBuf::from(STAMP),
        content: firstboot::stamp_content(opts.profile.is_some()).into_bytes(),
        mode: 0o644,
    });
    ops.push(op);

    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binlog_names() {
        for n in [
            "mysql-bin.000001",
            "mysql-bin.index",
            "binlog.000123",
            "binlog.index",
            "mariadb-bin.state",
            "db1-relay-bin.000002",
            "db1-relay-bin.index",
            "relay-log.info",
            "master.info",
            "binlog.000001.idx",
        ] {
            assert!(is_binlog_or_relay(n), "{n}");
        }
        for n in [
            "ibdata1",
            "auto.cnf",
            "mysql",
            "bin.txt",
            "ib_logfile0",
            "aria_log.00000001",
        ] {
            assert!(!is_binlog_or_relay(n), "{n}");
        }
    }

    #[test]
    fn rotated_logs() {
        for n in [
            "syslog.1",
            "syslog.2.gz",
            "dpkg.log.old",
            "messages-20260101",
            "error.log.1",
        ] {
            assert!(log_is_rotated(n), "{n}");
        }
        for n in ["syslog", "error.log", "wtmp", "lastlog"] {
            assert!(!log_is_rotated(n), "{n}");
        }
    }
}
