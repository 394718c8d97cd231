//! MariaDB: a GTID replica of this host's server (binary log on, TCP on loopback) made from a
//! mariabackup stream, run by a second `mariadbd` under dbhost's unit with the server's own
//! options plus its datadir, socket and server_id. Before the server stops it becomes read-only,
//! its client sessions end, and the replica must reach its `@@gtid_binlog_pos`. The pieces
//! `dbhost migrate` shares live here too: the mariabackup pipeline, the read-only fence, the
//! backup's GTID. Facts: BACKUP-MIGRATE.md (MariaDB 10.11).

use super::{SOCKET_DIR, UNIT};
use crate::db::client::{mysql::quote, Endpoint, Protocol, Session, Target};
use crate::db::engine::{self, Instance, Wait};
use crate::db::relocate::RelocateState;
use crate::host::{CommandSpec, Exec, Host};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The replica's option file (made before each start: /run is empty after a reboot).
pub const CNF: &str = "/run/dbhost-replica.cnf";
/// The account the replica logs in with (only for the move; dropped at the catch-up).
pub const ACCOUNT: &str = "dbhost_relocate";

/// The GTID position in mariabackup's binlog info file ("file\tpos\tgtid").
pub fn backup_gtid(text: &str) -> Option<String> {
    let g = text.lines().next()?.split('\t').nth(2)?.trim();
    (!g.is_empty()).then(|| g.to_string())
}

/// A server_id from a machine-id (never 0 or 1), unlike `avoid`.
pub fn derived_server_id(machine_id: &str, avoid: Option<u32>) -> u32 {
    let h = Sha256::digest(machine_id.trim().as_bytes());
    let mut id = (u32::from_le_bytes([h[0], h[1], h[2], h[3]]) & 0x7fff_ffff).max(2);
    if Some(id) == avoid {
        id += 1;
    }
    id
}

fn quote_sh(a: &str) -> String {
    format!("'{}'", a.replace('\'', "'\\''"))
}

/// Where mariabackup's messages go while its stream is piped.
const BACKUP_LOG: &str = "/run/dbhost-mariabackup.log";

/// `mariabackup --backup --stream` (its arguments after the program name; run on the source,
/// or through `shell` on another host) unpacked into `target` (in-host path, an empty
/// directory), prepared and handed to mysql. Returns the backup's GTID position.
pub fn backup_into(
    host: &Host,
    exec: &dyn Exec,
    backup_args: &[String],
    shell: Option<&[String]>,
    password: Option<&str>,
    target: &Path,
) -> Result<String> {
    let mut remote: Vec<String> = std::iter::once("mariabackup".to_string())
        .chain(backup_args.iter().cloned())
        .chain([
            "--backup".to_string(),
            "--stream=xbstream".to_string(),
            "--target-dir=/tmp".to_string(),
        ])
        .map(|a| quote_sh(&a))
        .collect();
    let mut cmd = CommandSpec::new("bash").timeout(Duration::from_secs(24 * 3600));
    if let Some(pw) = password {
        match shell {
            // Through the shell: in that command's environment, never its arguments.
            Some(_) => remote.insert(0, format!("MYSQL_PWD={}", quote_sh(pw))),
            None => cmd = cmd.env("MYSQL_PWD", pw),
        }
    }
    let producer = match shell {
        Some(sh) => {
            let mut v: Vec<String> = sh.iter().map(|a| quote_sh(a)).collect();
            v.push(quote_sh(&remote.join(" ")));
            v.join(" ")
        }
        None => remote.join(" "),
    };
    let t = target.display().to_string();
    let script = format!(
        "set -o pipefail; {producer} 2>{BACKUP_LOG} | mbstream -x -C {}",
        quote_sh(&t)
    );
    let out = exec.output(&cmd.args(["-c".to_string(), script]))?;
    if out.status != 0 {
        let log = fs::read_to_string(host.path(BACKUP_LOG)).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(8).collect();
        bail!(
            "mariabackup's stream into {t} failed (status {}): {}{}",
            out.status,
            out.stderr.trim(),
            if tail.is_empty() {
                String::new()
            } else {
                format!(
                    "\nmariabackup said:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            }
        );
    }
    exec.run(
        &CommandSpec::new("mariabackup")
            .args(["--prepare".to_string(), format!("--target-dir={t}")]),
    )?;
    exec.run(&CommandSpec::new("chown").args(["-R", "mysql:mysql", &t]))?;
    let dd = host.path(target);
    let info = ["xtrabackup_binlog_info", "mariadb_backup_binlog_info"]
        .iter()
        .find_map(|f| fs::read_to_string(dd.join(f)).ok())
        .unwrap_or_default();
    backup_gtid(&info).with_context(|| {
        format!(
            "the copy in {t} holds no binlog position (xtrabackup_binlog_info): is binary \
             logging on at the source?"
        )
    })
}

/// The read-only fence on a session with the source: `read_only = 1`, every client session
/// ended (replication and system threads spared), then its last GTID position. Accounts with
/// READ_ONLY ADMIN could still write; applications should not have it.
pub fn fence_read_only(s: &mut dyn Session) -> Result<String> {
    s.query("SET GLOBAL read_only = 1")?;
    let victims = s.query(
        "SELECT id FROM information_schema.processlist WHERE id <> CONNECTION_ID() AND \
         command NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon', 'Slave_IO', 'Slave_SQL', \
         'Slave_worker') AND user NOT IN ('system user', 'event_scheduler')",
    )?;
    for r in &victims.rows {
        if let Some(id) = &r[0] {
            // Gone already is fine.
            let _ = s.query(&format!("KILL CONNECTION {id}"));
        }
    }
    // A transaction that committed while we looked is in the binlog: read the position after
    // every session is gone.
    s.query("SELECT @@gtid_binlog_pos")?
        .scalar()
        .map(str::to_string)
        .context("no @@gtid_binlog_pos")
}

fn has_mariabackup(host: &Host) -> bool {
    ["/usr/bin/mariabackup", "/usr/bin/mariadb-backup"]
        .iter()
        .any(|p| host.path(p).is_file())
}

/// What the replica connects to: the server's loopback TCP endpoint.
fn server_endpoint(host: &Host, exec: &dyn Exec, inst: &Instance) -> Result<(String, u16)> {
    let r = crate::db::local::query(
        host,
        exec,
        inst,
        "SELECT @@log_bin AS log_bin, @@skip_networking AS skip, @@port AS port, @@bind_address AS bind",
    )?;
    if r.get(0, "log_bin") != Some("1") {
        bail!("binary logs are off, so a replica cannot follow the server");
    }
    if r.get(0, "skip") == Some("1") {
        bail!("the server does not listen on TCP (skip_networking), where a replica connects");
    }
    let port = r
        .get(0, "port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(3306);
    let bind = r.get(0, "bind").unwrap_or("").trim().to_string();
    let addr = match bind.as_str() {
        "" | "*" | "0.0.0.0" | "::" | "127.0.0.1" | "localhost" => "127.0.0.1".to_string(),
        other => other
            .split(',')
            .next()
            .unwrap_or("127.0.0.1")
            .trim()
            .to_string(),
    };
    Ok((addr, port))
}

pub fn usable(host: &Host, exec: &dyn Exec, inst: &Instance) -> Result<(), String> {
    if !has_mariabackup(host) {
        return Err("mariabackup is not installed (package mariadb-backup)".into());
    }
    if !engine::is_active(exec, &inst.unit) {
        return Err(format!("{} is not running", inst.unit));
    }
    server_endpoint(host, exec, inst)
        .map(|_| ())
        .map_err(|e| format!("{e:#}"))
}

fn session_as_root<'e>(exec: &'e dyn Exec, sock: &Path) -> Result<Box<dyn Session + 'e>> {
    exec.db().connect(&Target::new(
        Protocol::Mysql,
        Endpoint::Unix(sock.to_path_buf()),
        "root",
    ))
}

/// A session with the replica (root over its socket).
pub fn session<'e>(exec: &'e dyn Exec) -> Result<Box<dyn Session + 'e>> {
    session_as_root(exec, &Path::new(SOCKET_DIR).join("mysqld.sock"))
}

/// The replication account on the server, unlogged (`sql_log_bin = 0`): nothing downstream.
fn make_account(host: &Host, exec: &dyn Exec, inst: &Instance, pw: &str) -> Result<()> {
    let mut s = crate::db::local::session(host, exec, inst)?;
    s.query("SET SESSION sql_log_bin = 0")?;
    for h in ["127.0.0.1", "localhost", "::1"] {
        s.query(&format!(
            "CREATE USER IF NOT EXISTS '{ACCOUNT}'@'{h}' IDENTIFIED BY {}",
            quote(pw)
        ))?;
        s.query(&format!(
            "ALTER USER '{ACCOUNT}'@'{h}' IDENTIFIED BY {}",
            quote(pw)
        ))?;
        s.query(&format!(
            "GRANT REPLICATION SLAVE ON *.* TO '{ACCOUNT}'@'{h}'"
        ))?;
    }
    Ok(())
}

fn drop_account(s: &mut dyn Session) -> Result<()> {
    s.query("SET SESSION sql_log_bin = 0")?;
    for h in ["127.0.0.1", "localhost", "::1"] {
        s.query(&format!("DROP USER IF EXISTS '{ACCOUNT}'@'{h}'"))?;
    }
    Ok(())
}

pub fn clone(host: &Host, exec: &dyn Exec, st: &mut RelocateState) -> Result<String> {
    let inst = st.instance.clone();
    let pw = match &st.replica_password {
        Some(p) => p.clone(),
        None => {
            let p = hex::encode(crate::host::random_bytes(18).context("reading random bytes")?);
            st.replica_password = Some(p.clone());
            p
        }
    };
    make_account(host, exec, &inst, &pw)?;
    let src_id: Option<u32> = crate::db::local::scalar(host, exec, &inst, "SELECT @@server_id")?
        .and_then(|v| v.parse().ok());
    let mid = fs::read_to_string(host.etc("machine-id")).unwrap_or_default();
    st.replica_server_id = Some(derived_server_id(&format!("relocate-{mid}"), src_id));
    let hp = host.path(&st.new_datadir);
    if hp.exists() {
        // An interrupted clone's files (preflight refused anything that was not dbhost's).
        fs::remove_dir_all(&hp)
            .with_context(|| format!("removing {}", st.new_datadir.display()))?;
    }
    fs::create_dir_all(&hp).with_context(|| format!("creating {}", st.new_datadir.display()))?;
    let sock = inst
        .socket
        .clone()
        .unwrap_or_else(|| crate::db::local::mysql_socket(host, &Default::default()));
    let t0 = Instant::now();
    let gtid = backup_into(
        host,
        exec,
        &[
            "--user=root".to_string(),
            format!("--socket={}", sock.display()),
        ],
        None,
        None,
        &st.new_datadir,
    )?;
    st.replica_gtid = Some(gtid.clone());
    Ok(format!(
        "mariabackup copied the running server in {:.1} s (GTID {gtid})",
        t0.elapsed().as_secs_f64()
    ))
}

/// The replica's option file: the server's own options, then its datadir, socket, server_id,
/// no binary log, read-only, a small buffer pool (it runs beside the server).
pub fn render_cnf(main: &Path, new: &Path, server_id: u32) -> String {
    format!(
        "# Written by dbhost: the relocation's replica, beside the server.\n\
         !include {}\n[mysqld]\ndatadir = {}\nsocket = {SOCKET_DIR}/mysqld.sock\n\
         pid-file = {SOCKET_DIR}/mysqld.pid\nlog_error = {SOCKET_DIR}/error.log\n\
         skip-networking\nskip-log-bin\nserver_id = {server_id}\nread_only = ON\n\
         innodb_buffer_pool_size = 128M\n",
        main.display(),
        new.display()
    )
}

fn main_cnf(host: &Host) -> PathBuf {
    ["/etc/mysql/my.cnf", "/etc/my.cnf"]
        .iter()
        .map(PathBuf::from)
        .find(|p| host.path(p).exists())
        .unwrap_or_else(|| PathBuf::from("/etc/mysql/my.cnf"))
}

fn start_replica(host: &Host, exec: &dyn Exec, st: &RelocateState) -> Result<()> {
    if engine::is_active(exec, UNIT) {
        return Ok(());
    }
    let sid = st
        .replica_server_id
        .context("no server_id recorded for the replica")?;
    crate::host::atomic_write(
        &host.path(CNF),
        render_cnf(&main_cnf(host), &st.new_datadir, sid).as_bytes(),
        0o644,
    )
    .with_context(|| format!("writing {CNF}"))?;
    let _ = exec.output(&CommandSpec::new("systemctl").args(["reset-failed", UNIT]));
    let mariadbd = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"]
        .iter()
        .find(|p| host.path(p).is_file())
        .unwrap_or(&"/usr/sbin/mariadbd");
    exec.run(&CommandSpec::new("systemd-run").args([
        format!("--unit={UNIT}"),
        "--property=User=mysql".into(),
        "--property=RuntimeDirectory=dbhost-replica".into(),
        "--property=TimeoutStopSec=900".into(),
        "--description=dbhost: the relocation's replica of the database".into(),
        mariadbd.to_string(),
        format!("--defaults-file={CNF}"),
    ]))?;
    Ok(())
}

pub fn follow(host: &Host, exec: &dyn Exec, st: &RelocateState, w: &Wait) -> Result<()> {
    start_replica(host, exec, st)?;
    let (addr, port) = server_endpoint(host, exec, &st.instance)?;
    let mut last = String::new();
    for i in 0..w.attempts.max(1) {
        let r = session(exec).and_then(|mut s| {
            let status = s.query("SHOW SLAVE STATUS")?;
            if status.rows.is_empty() {
                let gtid = st
                    .replica_gtid
                    .clone()
                    .context("no GTID position recorded")?;
                s.run_all(&[
                    &format!("SET GLOBAL gtid_slave_pos = {}", quote(&gtid)),
                    &format!(
                        "CHANGE MASTER TO MASTER_HOST = {}, MASTER_PORT = {port}, \
                         MASTER_USER = '{ACCOUNT}', MASTER_PASSWORD = {}, \
                         MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1",
                        quote(&addr),
                        quote(st.replica_password.as_deref().unwrap_or(""))
                    ),
                    "START SLAVE",
                ])?;
                return s.query("SHOW SLAVE STATUS");
            }
            Ok(status)
        });
        match r.map(|r| replication_running(&r)) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(state)) => last = state,
            Err(e) => last = format!("{e:#}"),
        }
        if i + 1 < w.attempts {
            (w.sleep)(w.delay);
        }
    }
    bail!(
        "the replica ({UNIT}) does not follow {}: {last}; see `journalctl -u {UNIT}`",
        st.instance.unit
    )
}

/// Wait (bounded) until the replica applied `pos`.
fn wait_gtid(exec: &dyn Exec, pos: &str, limit: Duration) -> Result<bool> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        let r = session(exec)
            .and_then(|mut s| s.query(&format!("SELECT MASTER_GTID_WAIT({}, 1)", quote(pos))));
        match r {
            Ok(r) if r.scalar() == Some("0") => return Ok(true),
            // MASTER_GTID_WAIT waited its second; a replica not answering yet gets one too.
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    Ok(pos.is_empty())
}

pub fn before_stop(
    host: &Host,
    exec: &dyn Exec,
    st: &mut RelocateState,
    _w: &Wait,
    save: &mut dyn FnMut(&RelocateState) -> Result<()>,
) -> Result<String> {
    if !engine::is_active(exec, &st.instance.unit) {
        return Ok(String::new());
    }
    let t0 = Instant::now();
    let pos = {
        let mut s = crate::db::local::session(host, exec, &st.instance)?;
        fence_read_only(s.as_mut())?
    };
    st.replica_final_gtid = Some(pos.clone());
    save(st)?;
    if !wait_gtid(exec, &pos, Duration::from_secs(300))? {
        // Lift the fence: the server keeps serving; a re-run tries again.
        crate::db::local::query(host, exec, &st.instance, "SET GLOBAL read_only = 0")?;
        bail!(
            "the replica did not reach the server's last change ({pos}) within 300 s; the \
             server is writable again and keeps its datadir"
        );
    }
    Ok(format!(
        "server read-only, sessions ended; the replica reached {pos} {:.2} s later",
        t0.elapsed().as_secs_f64()
    ))
}

pub fn catch_up(host: &Host, exec: &dyn Exec, st: &mut RelocateState, w: &Wait) -> Result<String> {
    if st.caught_up {
        return Ok(String::new());
    }
    // A re-run after a crash: the replica may be down; it has what it applied.
    start_replica(host, exec, st)?;
    let pos = st.replica_final_gtid.clone().unwrap_or_default();
    if !wait_gtid(exec, &pos, Duration::from_secs(60))? {
        bail!(
            "the replica does not hold the server's last change ({pos}); the server stays \
             stopped on its old datadir: `dbhost rollback` starts it again"
        );
    }
    {
        let mut s = session(exec)?;
        s.run_all(&["STOP SLAVE", "RESET SLAVE ALL"])?;
        drop_account(s.as_mut())?;
    }
    engine::stop(exec, UNIT, w)?;
    let _ = fs::remove_file(host.path(CNF));
    st.caught_up = true;
    Ok(format!(
        "the replica holds {pos}; its replication settings are gone; stopped it"
    ))
}

pub fn after_rollback(host: &Host, exec: &dyn Exec, st: &RelocateState) -> Result<()> {
    let mut s = crate::db::local::session(host, exec, &st.instance)?;
    // A restart already cleared read_only; the server may not have stopped.
    s.query("SET GLOBAL read_only = 0")?;
    drop_account(s.as_mut())
}

/// `SHOW SLAVE STATUS` says both replication threads run; otherwise what each says (pure).
pub fn replication_running(r: &crate::db::client::Rows) -> std::result::Result<(), String> {
    if r.get(0, "Slave_IO_Running") == Some("Yes") && r.get(0, "Slave_SQL_Running") == Some("Yes") {
        return Ok(());
    }
    Err(format!(
        "IO {:?} {}, SQL {:?} {}",
        r.get(0, "Slave_IO_Running"),
        r.get(0, "Last_IO_Error").unwrap_or(""),
        r.get(0, "Slave_SQL_Running"),
        r.get(0, "Last_SQL_Error").unwrap_or("")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pure_parts() {
        assert_eq!(
            backup_gtid("mysql-bin.000003\t1234\t0-1-42,1-7-3\n").as_deref(),
            Some("0-1-42,1-7-3")
        );
        assert_eq!(backup_gtid("mysql-bin.000003\t1234\t\n"), None);
        let a = derived_server_id("0123456789abcdef0123456789abcdef", None);
        assert!(a >= 2);
        assert_eq!(
            derived_server_id("0123456789abcdef0123456789abcdef", Some(a)),
            a + 1
        );
        let c = render_cnf(
            Path::new("/etc/mysql/my.cnf"),
            Path::new("/datadrive/mysql"),
            7,
        );
        assert!(c.starts_with("# Written by dbhost"));
        let inc = c.find("!include /etc/mysql/my.cnf").unwrap();
        let dd = c.find("datadir = /datadrive/mysql").unwrap();
        assert!(
            inc < dd,
            "the server's options first, the replica's after: {c}"
        );
        for want in [
            "skip-log-bin",
            "server_id = 7",
            "read_only = ON",
            "socket = /run/dbhost-replica/mysqld.sock",
        ] {
            assert!(c.contains(want), "{want}: {c}");
        }
    }
}
