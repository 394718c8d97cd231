//! PostgreSQL: a streaming replica of this host's server (pg_basebackup with a slot, run by
//! `postgres -D NEW` under dbhost's unit); it catches up on the shutdown checkpoint and becomes a
//! plain datadir (standby settings removed). Facts: BACKUP-MIGRATE.md (PostgreSQL), PostgreSQL
//! docs app-pgbasebackup and §27.2.

use super::{SOCKET_DIR, UNIT};
use crate::db::client::{Endpoint, Protocol, Session, Target};
use crate::db::engine::{self, Instance, PgCluster, Wait};
use crate::db::pgctl::{self, Lsn};
use crate::host::{CommandSpec, Exec, Host};
use anyhow::{bail, Context, Result};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The slot on the local server that keeps its WAL for the replica.
pub const SLOT: &str = "dbhost_relocate";
/// The replica's port (only its socket name: it listens on no TCP address).
pub const PORT: u16 = 5499;

fn cluster(inst: &Instance) -> Result<&PgCluster> {
    inst.pg
        .as_ref()
        .context("a PostgreSQL instance without its cluster")
}

/// A session with the replica (postgres by peer authentication over its socket).
pub fn session<'e>(host: &Host, exec: &'e dyn Exec) -> Result<Box<dyn Session + 'e>> {
    let t = Target::new(
        Protocol::Postgres,
        Endpoint::Unix(Path::new(SOCKET_DIR).join(format!(".s.PGSQL.{PORT}"))),
        "postgres",
    )
    .database("postgres")
    .as_uid(crate::host::users::lookup(host, "postgres").map(|a| a.uid));
    exec.db().connect(&t)
}

/// Can this host relocate `inst` through a replica? Needs pg_basebackup and the server binary of
/// the cluster's version, and the server running (a stopped server is copied cold anyway).
pub fn usable(host: &Host, exec: &dyn Exec, inst: &Instance) -> Result<(), String> {
    let pg = cluster(inst).map_err(|e| e.to_string())?;
    for b in ["pg_basebackup", "postgres"] {
        if pgctl::pg_bin_of(host, &pg.version, b).is_none() {
            return Err(format!("{b} of PostgreSQL {} is not installed", pg.version));
        }
    }
    if !engine::is_active(exec, &inst.unit) {
        return Err(format!("{} is not running", inst.unit));
    }
    Ok(())
}

/// Drop the slot on the local server when it exists.
pub fn drop_slot(host: &Host, exec: &dyn Exec, inst: &Instance) -> Result<()> {
    crate::db::local::query(
        host,
        exec,
        inst,
        &format!(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
             WHERE slot_name = '{SLOT}' AND NOT active"
        ),
    )?;
    Ok(())
}

/// `pg_basebackup` as postgres from the server `conn` (a libpq connection string) into `dir`:
/// WAL streamed, the slot created, standby settings written (`-R`), a fast checkpoint.
pub fn basebackup_command(bin: &Path, conn: &str, dir: &Path, slot: &str) -> CommandSpec {
    CommandSpec::new("runuser").args([
        "-u".to_string(),
        "postgres".into(),
        "--".into(),
        bin.display().to_string(),
        "-d".into(),
        conn.into(),
        "-D".into(),
        dir.display().to_string(),
        "-X".into(),
        "stream".into(),
        "-C".into(),
        "-S".into(),
        slot.into(),
        "-R".into(),
        "-c".into(),
        "fast".into(),
        "--no-password".into(),
    ])
}

/// Copy the running server into `new` (an empty directory or absent) with pg_basebackup as
/// postgres over the local socket: WAL streamed, slot created, standby settings written.
pub fn clone(host: &Host, exec: &dyn Exec, inst: &Instance, new: &Path) -> Result<String> {
    let pg = cluster(inst)?;
    let bin = pgctl::pg_bin_of(host, &pg.version, "pg_basebackup")
        .context("pg_basebackup is not installed")?;
    let acct = crate::host::users::lookup(host, "postgres").context("no postgres account")?;
    let hp = host.path(new);
    if hp.exists() {
        // An interrupted clone's files (preflight refused anything that was not dbhost's).
        fs::remove_dir_all(&hp).with_context(|| format!("removing {}", new.display()))?;
    }
    fs::create_dir_all(&hp).with_context(|| format!("creating {}", new.display()))?;
    std::os::unix::fs::chown(&hp, Some(acct.uid), Some(acct.gid))
        .with_context(|| format!("chown {}", new.display()))?;
    fs::set_permissions(&hp, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod {}", new.display()))?;
    drop_slot(host, exec, inst)?;
    let sock_dir = crate::db::local::pg_socket_dir(host, pg);
    let conn = format!(
        "host={} port={} user=postgres application_name=dbhost",
        sock_dir.display(),
        pg.port
    );
    let t0 = Instant::now();
    exec.run(&basebackup_command(
        &host.unroot(&host.path(&bin)),
        &conn,
        new,
        SLOT,
    ))?;
    if !hp.join("standby.signal").is_file() {
        bail!("pg_basebackup left no standby datadir in {}", new.display());
    }
    Ok(format!(
        "pg_basebackup copied the running server in {:.1} s",
        t0.elapsed().as_secs_f64()
    ))
}

/// `systemd-run` arguments that start the replica under dbhost's transient unit.
pub fn start_command(host: &Host, inst: &Instance, new: &Path) -> Result<CommandSpec> {
    let pg = cluster(inst)?;
    let postgres = pgctl::pg_bin_of(host, &pg.version, "postgres")
        .context("the postgres server binary is not installed")?;
    let c = |k: &str, v: String| ["-c".to_string(), format!("{k}={v}")];
    let mut args = vec![
        format!("--unit={UNIT}"),
        "--property=User=postgres".into(),
        // Type=simple: follow() waits for the replica itself (a hot standby's readiness
        // notification is not something to rely on across versions).
        "--property=RuntimeDirectory=dbhost-replica".into(),
        "--property=KillMode=mixed".into(),
        "--property=KillSignal=SIGINT".into(),
        "--property=TimeoutStopSec=300".into(),
        "--description=dbhost: the relocation's replica of the database".into(),
        postgres.display().to_string(),
        "-D".into(),
        new.display().to_string(),
    ];
    args.extend(c("config_file", pg.conf.display().to_string()));
    args.extend(c("data_directory", new.display().to_string()));
    args.extend(c("port", PORT.to_string()));
    args.extend(c("listen_addresses", String::new()));
    args.extend(c("unix_socket_directories", SOCKET_DIR.into()));
    args.extend(c("external_pid_file", format!("{SOCKET_DIR}/postgres.pid")));
    args.extend(c("cluster_name", "dbhost-replica".into()));
    // It runs beside the server: a small buffer cache is enough to apply WAL.
    args.extend(c("shared_buffers", "128MB".into()));
    Ok(CommandSpec::new("systemd-run").args(args))
}

/// Start the replica (when it does not run) and wait until it streams from the server.
pub fn follow(host: &Host, exec: &dyn Exec, inst: &Instance, new: &Path, w: &Wait) -> Result<()> {
    if !engine::is_active(exec, UNIT) {
        // A failed transient unit keeps its name until reset.
        let _ = exec.output(&CommandSpec::new("systemctl").args(["reset-failed", UNIT]));
        exec.run(&start_command(host, inst, new)?)?;
    }
    let mut last = String::new();
    for i in 0..w.attempts.max(1) {
        match session(host, exec).and_then(|mut s| {
            s.query("SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver)")
        }) {
            Ok(r) if r.get(0, "status") == Some("streaming") => return Ok(()),
            Ok(r) => last = format!("WAL receiver {:?}", r.get(0, "status")),
            Err(e) => last = format!("{e:#}"),
        }
        if i + 1 < w.attempts {
            (w.sleep)(w.delay);
        }
    }
    bail!(
        "the replica ({UNIT}) does not stream from {}: {last}; see `journalctl -u {UNIT}`",
        inst.unit
    )
}

/// Is the replica done with the old server? (stopped, its standby settings removed)
pub fn promoted_offline(host: &Host, new: &Path) -> bool {
    let hp = host.path(new);
    hp.join("PG_VERSION").is_file() && !hp.join("standby.signal").exists()
}

/// With the server stopped: the replica applies the server's shutdown checkpoint, stops, and
/// becomes a plain datadir (its standby settings removed, so the server's unit starts it as the
/// primary). The old datadir's slot goes too (it would keep WAL there for ever).
pub fn catch_up(
    host: &Host,
    exec: &dyn Exec,
    inst: &Instance,
    old: &Path,
    new: &Path,
    w: &Wait,
    limit: Duration,
) -> Result<String> {
    if promoted_offline(host, new) {
        return Ok(String::new());
    }
    let c = pgctl::read_control(host, old)
        .with_context(|| format!("reading the control file of {}", old.display()))?;
    if c.state != "shut down" {
        bail!(
            "the server's datadir {} is {:?}, not cleanly shut down: the replica cannot be \
             proven complete",
            old.display(),
            c.state
        );
    }
    // A re-run after a crash: the replica may be down; it replays what it received.
    if !engine::is_active(exec, UNIT) {
        let _ = exec.output(&CommandSpec::new("systemctl").args(["reset-failed", UNIT]));
        exec.run(&start_command(host, inst, new)?)?;
    }
    let t0 = Instant::now();
    let replayed = loop {
        let rep = session(host, exec)
            .and_then(|mut s| s.query("SELECT pg_last_wal_replay_lsn()"))
            .ok()
            .and_then(|r| r.scalar().and_then(|v| v.parse::<Lsn>().ok()));
        if let Some(r) = rep {
            // The replay position is the end of the last record: past the checkpoint's start.
            if r > c.checkpoint {
                break r;
            }
        }
        if t0.elapsed() > limit {
            bail!(
                "the replica did not apply the server's shutdown checkpoint ({}) within {limit:?} \
                 (applied {:?}); the server stays stopped on its old datadir: `dbhost rollback` \
                 starts it again",
                c.checkpoint,
                rep.map(|r| r.to_string())
            );
        }
        (w.sleep)(Duration::from_millis(20));
    };
    let waited = t0.elapsed();
    engine::stop(exec, UNIT, w)?;
    let hp = host.path(new);
    let auto = hp.join("postgresql.auto.conf");
    if let Ok(text) = fs::read_to_string(&auto) {
        // Owned by postgres: a file root owned would stop the server from reading its own
        // ALTER SYSTEM settings (and pg_basebackup from copying it).
        crate::host::atomic_replace_keeping_owner(
            &auto,
            without_standby_settings(&text).as_bytes(),
        )
        .with_context(|| format!("writing {}", auto.display()))?;
    }
    let signal = hp.join("standby.signal");
    if signal.exists() {
        fs::remove_file(&signal).with_context(|| format!("removing {}", signal.display()))?;
        crate::host::fsync_dir(&hp).ok();
    }
    let slot = host.path(old).join("pg_replslot").join(SLOT);
    if slot.is_dir() {
        fs::remove_dir_all(&slot).with_context(|| format!("removing {}", slot.display()))?;
    }
    Ok(format!(
        "the replica applied the shutdown checkpoint {} (replayed to {replayed}) {:.2} s after \
         the stop; stopped it",
        c.checkpoint,
        waited.as_secs_f64()
    ))
}

/// `postgresql.auto.conf` without the standby's connection settings (pure).
pub fn without_standby_settings(text: &str) -> String {
    text.lines()
        .filter(|l| {
            let k = l.trim_start();
            !(k.starts_with("primary_conninfo") || k.starts_with("primary_slot_name"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Stop the replica (rollback, and a relocation that switches method).
pub fn stop(exec: &dyn Exec, w: &Wait) -> Result<bool> {
    engine::stop(exec, UNIT, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replica_runs_beside_the_server_with_its_own_socket() {
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        fs::create_dir_all(h.path("/usr/lib/postgresql/15/bin")).unwrap();
        fs::write(h.path("/usr/lib/postgresql/15/bin/postgres"), "").unwrap();
        let inst = Instance {
            engine: engine::Engine::Postgresql,
            datadir: "/var/lib/postgresql/15/main".into(),
            source: engine::Source::Default,
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
        let c = start_command(&h, &inst, Path::new("/datadrive/postgresql")).unwrap();
        let line = c.display();
        for want in [
            "--unit=dbhost-replica.service",
            "--property=User=postgres",
            "/usr/lib/postgresql/15/bin/postgres -D /datadrive/postgresql",
            "-c config_file=/etc/postgresql/15/main/postgresql.conf",
            "-c data_directory=/datadrive/postgresql",
            "-c port=5499",
            "-c unix_socket_directories=/run/dbhost-replica",
            "-c external_pid_file=/run/dbhost-replica/postgres.pid",
        ] {
            assert!(line.contains(want), "{want} missing: {line}");
        }
        assert!(c.args.contains(&"listen_addresses=".to_string()), "{line}");
        let auto = "# Do not edit\nwork_mem = '8MB'\nprimary_conninfo = 'host=/var/run/postgresql'\nprimary_slot_name = 'dbhost_relocate'\n";
        assert_eq!(
            without_standby_settings(auto),
            "# Do not edit\nwork_mem = '8MB'\n"
        );
    }
}
