//! PostgreSQL: `pg_basebackup -X stream` with a replication slot into the target datadir, run as
//! a streaming standby by the cluster's own unit (the one `dbhost apply` pointed at the array),
//! promoted in place at cutover — no restart inside the outage. Facts: BACKUP-MIGRATE.md
//! (PostgreSQL); PostgreSQL docs app-pgbasebackup, §27.2 (log shipping standby).

use super::{
    check_room, common, source_repl_target, source_target, Ctx, Phase, Plan, Replica,
    ReplicaStatus, Saver, Settings, State,
};
use crate::db::client::{self, db_error, DbError, Protocol, Rows, Session, Target};
use crate::db::engine::{self, Instance};
use crate::db::pgctl::{self, Lsn};
use crate::host::{Exec, Host};
use anyhow::{bail, Context, Result};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Pg<'a> {
    pub s: &'a Settings,
}

/// The parameters a hot standby needs at least as high as its primary's.
const STANDBY_MINIMA: &[&str] = &[
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
];

/// The pg_hba.conf line that lets `user` in from `from` for `database` (`replication` for a
/// replication connection), e.g. `host replication repl 10.0.0.9/32 scram-sha-256`.
pub fn hba_line(database: &str, user: &str, from: &str) -> String {
    let bits = if from.contains(':') { 128 } else { 32 };
    format!("host    {database}    {user}    {from}/{bits}    scram-sha-256")
}

/// The client address in a "no pg_hba.conf entry for ... from host \"X\"" message.
pub fn hba_host(message: &str) -> Option<String> {
    let rest = message.split("host \"").nth(1)?;
    Some(rest.split('"').next()?.to_string())
}

/// What a refused or failed connection to the source means for the user.
fn explain(s: &Settings, e: &anyhow::Error, user: &str, database: &str, pwkey: &str) -> String {
    match db_error(e) {
        Some(DbError::Unreachable { endpoint, reason }) => format!(
            "cannot reach the source {endpoint}: {reason}; is PostgreSQL listening there \
             (listen_addresses, port {}) and may this host connect?",
            s.source_addr().port()
        ),
        Some(DbError::Refused { message, code, .. }) if message.contains("pg_hba.conf") => {
            let from = hba_host(message).unwrap_or_else(|| "THIS_HOST_ADDRESS".into());
            format!(
                "the source {} refused {user:?}: {message} ({code}). Add this line to the \
                 source's pg_hba.conf (before any line that rejects it), then reload it \
                 (SELECT pg_reload_conf()):\n    {}",
                s.source,
                hba_line(database, user, &from)
            )
        }
        Some(DbError::Refused { code, message, .. }) if code == "28P01" => format!(
            "the source {} refused {user:?}: {message}; check the password in {pwkey}",
            s.source
        ),
        Some(DbError::Refused { code, message, .. }) if code == "42501" => format!(
            "the source {} refused {user:?}: {message}; on the source run \
             ALTER ROLE {user} REPLICATION",
            s.source
        ),
        _ => format!("the source {}: {e:#}", s.source),
    }
}

fn lsn(v: Option<&str>) -> Option<Lsn> {
    v.and_then(|v| v.parse().ok())
}

impl Pg<'_> {
    fn repl(&self) -> Target {
        source_repl_target(self.s, Protocol::Postgres).replication()
    }
    fn control(&self) -> Target {
        source_target(self.s, Protocol::Postgres).database("postgres")
    }
    fn control_session<'e>(&self, exec: &'e dyn Exec) -> Result<Box<dyn Session + 'e>> {
        exec.db().connect(&self.control()).map_err(|e| {
            anyhow::anyhow!(
                "{}",
                explain(self.s, &e, &self.s.user, "all", "migrate.password-file")
            )
        })
    }
    fn local<'e>(
        &self,
        host: &Host,
        exec: &'e dyn Exec,
        inst: &Instance,
    ) -> Result<Box<dyn Session + 'e>> {
        let t = crate::db::local::targets(host, inst)
            .into_iter()
            .next()
            .context("no local PostgreSQL cluster")?;
        exec.db().connect(&t)
    }
    fn major(inst: &Instance) -> Result<u32> {
        let pg = inst
            .pg
            .as_ref()
            .context("PostgreSQL instance without a cluster")?;
        pg.version
            .split('.')
            .next()
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("cluster version {:?}", pg.version))
    }

    /// The source's facts over a replication session (what the standby will need).
    fn probe_replication(&self, cx: &Ctx, p: &mut Plan, local_major: Option<u32>) {
        let mut sess = match cx.exec.db().connect(&self.repl()) {
            Ok(s) => s,
            Err(e) => {
                let why = explain(
                    self.s,
                    &e,
                    &self.s.repl_user,
                    "replication",
                    "migrate.replication-password-file",
                );
                p.check("replication login", false, why);
                return;
            }
        };
        let show = |sess: &mut Box<dyn Session + '_>, what: &str| -> Option<String> {
            sess.query(&format!("SHOW {what}"))
                .ok()
                .and_then(|r| r.scalar().map(str::to_string))
        };
        let ident = sess.query("IDENTIFY_SYSTEM").ok();
        p.check(
            "replication login",
            true,
            format!(
                "{} logs in for replication at {} (system {}, WAL at {})",
                self.s.repl_user,
                self.s.source,
                ident
                    .as_ref()
                    .and_then(|r| r.get(0, "systemid"))
                    .unwrap_or("?"),
                ident
                    .as_ref()
                    .and_then(|r| r.get(0, "xlogpos"))
                    .unwrap_or("?"),
            ),
        );
        let num: Option<u32> = show(&mut sess, "server_version_num").and_then(|v| v.parse().ok());
        let major = num.map(|n| n / 10000);
        match (major, local_major) {
            (Some(a), Some(b)) if a != b => p.check(
                "versions",
                false,
                format!(
                    "the source runs PostgreSQL {a} and this host {b}: a physical copy \
                     (pg_basebackup + streaming) needs the same major version. Install \
                     PostgreSQL {a} here and move first (pg_upgrade afterwards), or use the \
                     logical path: `pg_dump --schema-only` from the source into this server, \
                     `CREATE PUBLICATION dbhost FOR ALL TABLES` on the source (wal_level = \
                     logical there), `CREATE SUBSCRIPTION` here; it does not carry DDL, \
                     sequences (copy them at the end) or large objects, and UPDATE/DELETE need \
                     a primary key or replica identity"
                ),
            ),
            (Some(a), Some(_)) => p.check("versions", true, format!("PostgreSQL {a} on both")),
            _ => p.check(
                "versions",
                false,
                "cannot read the source's version".to_string(),
            ),
        }
        match show(&mut sess, "wal_level").as_deref() {
            Some("minimal") => p.check(
                "wal_level",
                false,
                "wal_level = minimal on the source: its WAL cannot feed a standby. Set \
                 wal_level = replica in its postgresql.conf (the default since PostgreSQL 10; \
                 needs a restart of the source)",
            ),
            Some(l) => p.check("wal_level", true, format!("wal_level = {l}")),
            None => p.check("wal_level", false, "cannot read wal_level on the source"),
        }
        let senders: Option<u32> = show(&mut sess, "max_wal_senders").and_then(|v| v.parse().ok());
        match senders {
            Some(n) if n < 2 => p.check(
                "max_wal_senders",
                false,
                format!(
                    "max_wal_senders = {n} on the source; the copy needs 2 while it runs \
                     (data + WAL) and the standby 1 after: set max_wal_senders = 10 (a restart)"
                ),
            ),
            Some(n) => p.check("max_wal_senders", true, format!("max_wal_senders = {n}")),
            None => p.check("max_wal_senders", false, "cannot read max_wal_senders"),
        }
    }

    /// The source's facts over the control account.
    fn probe_control(&self, cx: &mut Ctx, p: &mut Plan, inst: Option<&Instance>) {
        let mut sess = match self.control_session(cx.exec) {
            Ok(s) => s,
            Err(e) => {
                p.check("control login", false, format!("{e:#}"));
                return;
            }
        };
        let one = |sess: &mut Box<dyn Session + '_>, sql: &str| -> Option<String> {
            sess.query(sql)
                .ok()
                .and_then(|r| r.scalar().map(str::to_string))
        };
        let superuser = one(
            &mut sess,
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
        )
        .as_deref()
            == Some("t");
        let needs_super =
            self.s.fence == crate::profile::Fence::ReadOnly || self.s.source_unit.is_some();
        p.check(
            "control login",
            superuser || !needs_super,
            if superuser || !needs_super {
                format!("{} logs in at {}", self.s.user, self.s.source)
            } else {
                format!(
                    "{} is not a superuser on the source; the fence ({}) needs one \
                     (ALTER SYSTEM, ending sessions, data_directory)",
                    self.s.user, self.s.fence
                )
            },
        );
        let tablespaces = sess
            .query("SELECT spcname FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')")
            .map(|r| r.rows.iter().filter_map(|x| x[0].clone()).collect::<Vec<_>>())
            .unwrap_or_default();
        p.check(
            "tablespaces",
            tablespaces.is_empty(),
            if tablespaces.is_empty() {
                "everything lives in the data directory".to_string()
            } else {
                format!(
                    "the source has tablespaces outside its data directory ({}); dbhost copies \
                     the data directory only: move them into pg_default first \
                     (ALTER TABLE ... SET TABLESPACE pg_default)",
                    tablespaces.join(", ")
                )
            },
        );
        match one(
            &mut sess,
            &format!(
                "SELECT active FROM pg_replication_slots WHERE slot_name = {}",
                quote(&self.s.slot)
            ),
        )
        .as_deref()
        {
            Some("t") if p.phase.is_none_or(|ph| !ph.is_active()) => p.check(
                "slot",
                false,
                format!(
                    "the replication slot {} on the source is in use by another replica; \
                     choose another migrate.slot",
                    self.s.slot
                ),
            ),
            _ => {}
        }
        if one(&mut sess, "SHOW max_slot_wal_keep_size").as_deref() == Some("-1") {
            p.notes.push(format!(
                "the slot {} keeps the source's WAL until `migrate finalize` or `abort` \
                 (max_slot_wal_keep_size = -1): a replica left behind for days fills the \
                 source's disk",
                self.s.slot
            ));
        }
        // Hot standby minima against this host's server.
        let src: Rows = sess
            .query(&format!(
                "SELECT name, setting FROM pg_settings WHERE name IN ({})",
                STANDBY_MINIMA
                    .iter()
                    .map(|n| quote(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .unwrap_or_default();
        if let Some(inst) = inst {
            if let Ok(mut local) = self.local(cx.host, cx.exec, inst) {
                let mut low = Vec::new();
                for r in &src.rows {
                    let (Some(name), Some(v)) = (&r[0], &r[1]) else {
                        continue;
                    };
                    let here = local
                        .query(&format!("SHOW {name}"))
                        .ok()
                        .and_then(|x| x.scalar().map(str::to_string));
                    let (a, b) = (
                        v.parse::<u64>().ok(),
                        here.as_deref().and_then(|h| h.parse::<u64>().ok()),
                    );
                    if let (Some(a), Some(b)) = (a, b) {
                        if b < a {
                            low.push(format!("{name} = {b} here, {a} on the source"));
                        }
                    }
                }
                p.check(
                    "standby settings",
                    low.is_empty(),
                    if low.is_empty() {
                        "this host's settings allow a hot standby of the source".to_string()
                    } else {
                        format!(
                            "a hot standby needs these at least as high as the source's: {}; \
                             raise them in this host's postgresql.conf",
                            low.join(", ")
                        )
                    },
                );
                if p.phase.is_none_or(|ph| !ph.is_active()) {
                    let dbs = local
                        .query("SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1') ORDER BY 1")
                        .map(|r| common::column(&r))
                        .unwrap_or_default();
                    common::check_empty(p, &dbs);
                }
            }
        }
        if p.phase.is_none_or(|ph| !ph.is_active()) {
            let size: u64 = one(
                &mut sess,
                "SELECT sum(pg_database_size(oid))::bigint FROM pg_database",
            )
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
            let wal: u64 = one(
                &mut sess,
                "SELECT coalesce(sum(size), 0)::bigint FROM pg_ls_waldir()",
            )
            .and_then(|v| v.parse().ok())
            .unwrap_or(1 << 30);
            check_room(p, cx.host, &self.s.target_datadir, size + wal);
        }
    }

    fn passfile(&self, cx: &Ctx) -> (PathBuf, u32, u32) {
        let acct = crate::host::users::lookup(cx.host, "postgres");
        let home = acct
            .as_ref()
            .map(|a| a.home.clone())
            .unwrap_or_else(|| "/var/lib/postgresql".into());
        (
            Path::new(&home).join(".dbhost-migrate.pgpass"),
            acct.as_ref().map(|a| a.uid).unwrap_or(0),
            acct.as_ref().map(|a| a.gid).unwrap_or(0),
        )
    }

    /// Write the passfile the copy and the standby read (postgres-only, 0600).
    fn write_passfile(&self, cx: &Ctx) -> Result<PathBuf> {
        let (p, uid, gid) = self.passfile(cx);
        let esc = |v: &str| v.replace('\\', "\\\\").replace(':', "\\:");
        let line = format!(
            "*:*:*:{}:{}\n",
            esc(&self.s.repl_user),
            esc(self.s.repl_password.as_deref().unwrap_or(""))
        );
        let hp = cx.host.path(&p);
        crate::host::atomic_write(&hp, line.as_bytes(), 0o600)
            .with_context(|| format!("writing {}", p.display()))?;
        std::os::unix::fs::chown(&hp, Some(uid), Some(gid))
            .with_context(|| format!("chown {}", p.display()))?;
        Ok(p)
    }

    /// Drop the slot on the source (absent is fine). Retries while a walsender still holds it.
    fn drop_slot(&self, cx: &Ctx) -> Result<bool> {
        let t0 = Instant::now();
        loop {
            let r = client::query(
                cx.exec.db(),
                &self.repl(),
                &format!("DROP_REPLICATION_SLOT {}", self.s.slot),
            );
            match r {
                Ok(_) => return Ok(true),
                Err(e) if db_error(&e).is_some_and(|d| d.code() == "42704") => return Ok(false),
                Err(e)
                    if db_error(&e).is_some_and(|d| d.code() == "55006")
                        && t0.elapsed() < Duration::from_secs(30) =>
                {
                    (cx.sleep)(Duration::from_millis(500));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Make the target datadir an empty directory postgres owns, keeping what was there.
    fn prepare_target(&self, cx: &mut Ctx, st: &mut State, save: &mut Saver) -> Result<()> {
        common::set_aside(cx, st, save)?;
        let target = cx.host.path(&st.target_datadir);
        let (_, uid, gid) = self.passfile(cx);
        fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
        std::os::unix::fs::chown(&target, Some(uid), Some(gid))
            .with_context(|| format!("chown {}", target.display()))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod {}", target.display()))?;
        Ok(())
    }

    fn basebackup(&self, cx: &mut Ctx, st: &State, passfile: &Path) -> Result<()> {
        let inst = &st.instance;
        let pg = inst.pg.as_ref().context("no cluster")?;
        let bin = pgctl::pg_bin_of(cx.host, &pg.version, "pg_basebackup")
            .context("pg_basebackup not found (package postgresql-client)")?;
        let addr = self.s.source_addr();
        let conn = format!(
            "host={} port={} user={} passfile={} application_name=dbhost",
            addr.ip(),
            addr.port(),
            self.s.repl_user,
            passfile.display()
        );
        let cmd =
            crate::db::replica::basebackup_command(&bin, &conn, &st.target_datadir, &self.s.slot);
        cx.note(format!(
            "copying {} into {} (pg_basebackup, WAL streamed, slot {})",
            self.s.source,
            st.target_datadir.display(),
            self.s.slot
        ));
        let t0 = Instant::now();
        cx.exec.run(&cmd)?;
        let dd = cx.host.path(&st.target_datadir);
        if !dd.join("standby.signal").is_file() || !dd.join("PG_VERSION").is_file() {
            bail!(
                "pg_basebackup finished but {} holds no standby datadir",
                st.target_datadir.display()
            );
        }
        cx.note(format!("copy done in {:.1} s", t0.elapsed().as_secs_f64()));
        Ok(())
    }

    fn wait_streaming(&self, cx: &mut Ctx, inst: &Instance) -> Result<()> {
        let t0 = Instant::now();
        let mut last = String::new();
        while t0.elapsed() < cx.stream_timeout {
            match self.local(cx.host, cx.exec, inst).and_then(|mut s| {
                s.query("SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver)")
            }) {
                Ok(r)
                    if r.get(0, "pg_is_in_recovery") == Some("t")
                        && r.get(0, "status") == Some("streaming") =>
                {
                    return Ok(())
                }
                Ok(r) => last = format!("receiver status {:?}", r.get(0, "status")),
                Err(e) => last = format!("{e:#}"),
            }
            (cx.sleep)(Duration::from_millis(250));
        }
        bail!(
            "the replica did not start streaming from {} within {:?} ({last}); see \
             `journalctl -u {}`",
            self.s.source,
            cx.stream_timeout,
            inst.unit
        )
    }
}

/// Quote a string literal for PostgreSQL (standard_conforming_strings).
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Replica for Pg<'_> {
    fn plan(&self, cx: &mut Ctx, p: &mut Plan) -> Result<()> {
        let inst = super::local_instance(cx, self.s).ok();
        let local_major = inst.as_ref().and_then(|i| Self::major(i).ok());
        self.probe_replication(cx, p, local_major);
        self.probe_control(cx, p, inst.as_ref());
        if let Some(u) = &self.s.source_unit {
            p.notes.push(format!(
                "fence = stop: cutover stops and masks {u} on this host; `abort` (before the \
                 promotion) unmasks and starts it again"
            ));
        }
        Ok(())
    }

    fn clone_and_follow(&self, cx: &mut Ctx, st: &mut State, save: &mut Saver) -> Result<()> {
        let inst = st.instance.clone();
        if st.phase == Phase::Cloning {
            if st.history.is_empty() {
                st.local_was_running = engine::is_active(cx.exec, &inst.unit);
                if self.s.source_unit.is_some() {
                    let dd = self
                        .control_session(cx.exec)?
                        .query("SHOW data_directory")?
                        .scalar()
                        .map(PathBuf::from);
                    st.source_datadir = dd;
                }
                st.set_phase(Phase::Cloning);
                save(st)?;
            }
            engine::stop(cx.exec, &inst.unit, &cx.wait)?;
            self.prepare_target(cx, st, save)?;
            let passfile = self.write_passfile(cx)?;
            if st.passfile.is_none() {
                st.passfile = Some(passfile.clone());
                save(st)?;
            }
            if self.drop_slot(cx)? {
                cx.note(format!(
                    "dropped the slot {} an interrupted start left",
                    self.s.slot
                ));
            }
            self.basebackup(cx, st, &passfile)?;
            st.set_phase(Phase::Replicating);
            save(st)?;
        }
        engine::start(cx.exec, &inst.unit, &cx.wait)?;
        self.wait_streaming(cx, &inst)?;
        cx.note(format!("{} streams from {}", inst.unit, self.s.source));
        Ok(())
    }

    fn status(&self, cx: &mut Ctx, st: &State) -> ReplicaStatus {
        let mut rs = ReplicaStatus::default();
        let local = self
            .local(cx.host, cx.exec, &st.instance)
            .and_then(|mut s| {
                s.query(
                "SELECT pg_is_in_recovery() AS recovery, pg_last_wal_receive_lsn() AS received, \
                 pg_last_wal_replay_lsn() AS replayed, \
                 extract(epoch from now() - pg_last_xact_replay_timestamp())::float8 AS behind, \
                 (SELECT status FROM pg_stat_wal_receiver) AS receiver",
            )
            });
        let replayed = match &local {
            Ok(r) => {
                let recovery = r.get(0, "recovery") == Some("t");
                let receiver = r.get(0, "receiver").map(str::to_string);
                rs.replicating = recovery && receiver.as_deref() == Some("streaming");
                if !recovery {
                    rs.problems.push(format!(
                        "{} is not a replica (it is a primary)",
                        st.instance.unit
                    ));
                } else if receiver.as_deref() != Some("streaming") {
                    rs.problems.push(format!(
                        "the replica's WAL receiver is {}: replication from {} is broken (see \
                         `journalctl -u {}`); nothing is switched",
                        receiver.as_deref().unwrap_or("not running"),
                        st.source,
                        st.instance.unit
                    ));
                }
                rs.replica_pos = r.get(0, "replayed").map(str::to_string);
                rs.detail.push(format!(
                    "received {}, replayed {}",
                    r.get(0, "received").unwrap_or("-"),
                    r.get(0, "replayed").unwrap_or("-")
                ));
                rs.lag_seconds = r.get(0, "behind").and_then(|v| v.parse().ok());
                lsn(r.get(0, "replayed"))
            }
            Err(e) => {
                rs.problems
                    .push(format!("the local server does not answer: {e:#}"));
                None
            }
        };
        match self.control_session(cx.exec).and_then(|mut s| {
            s.query(&format!(
                "SELECT pg_current_wal_lsn() AS current, \
                 (SELECT active FROM pg_replication_slots WHERE slot_name = {slot}) AS active, \
                 (SELECT wal_status FROM pg_replication_slots WHERE slot_name = {slot}) AS wal, \
                 (SELECT extract(epoch from replay_lag)::float8 FROM pg_stat_replication \
                  WHERE application_name = 'dbhost' LIMIT 1) AS lag",
                slot = quote(&self.s.slot)
            ))
        }) {
            Ok(r) => {
                rs.source_pos = r.get(0, "current").map(str::to_string);
                if let (Some(cur), Some(rep)) = (lsn(r.get(0, "current")), replayed) {
                    rs.lag_bytes = Some(cur.0.saturating_sub(rep.0));
                    if cur <= rep {
                        rs.lag_seconds = Some(0.0);
                    } else if let Some(l) = r.get(0, "lag").and_then(|v| v.parse().ok()) {
                        rs.lag_seconds = Some(l);
                    }
                }
                match (r.get(0, "active"), r.get(0, "wal")) {
                    (None, _) if st.phase == Phase::Replicating => rs
                        .problems
                        .push(format!("the slot {} is gone from the source", self.s.slot)),
                    (_, Some("lost")) => rs.problems.push(format!(
                        "the source removed WAL the replica still needs (slot {} lost): start \
                         over with `migrate abort` and `migrate start`",
                        self.s.slot
                    )),
                    (Some("f"), _) if st.phase == Phase::Replicating => rs.problems.push(format!(
                        "the slot {} on the source is not in use: the replica is not connected",
                        self.s.slot
                    )),
                    _ => {}
                }
            }
            Err(e) => rs.problems.push(format!("cannot ask the source: {e:#}")),
        }
        rs
    }

    fn fence(&self, cx: &mut Ctx, st: &mut State, save: &mut Saver) -> Result<String> {
        let kind = common::fence_kind(self.s);
        common::record_fence(cx, self.s, st, save)?;
        match kind {
            "read-only" => {
                let mut s = self.control_session(cx.exec)?;
                s.run_all(&[
                    "ALTER SYSTEM SET default_transaction_read_only = on",
                    "SELECT pg_reload_conf()",
                ])?;
                // The postmaster applies the reload asynchronously: wait until a new session
                // starts read-only, then end every client session.
                let t0 = Instant::now();
                loop {
                    let v = client::scalar(
                        cx.exec.db(),
                        &self.control(),
                        "SHOW default_transaction_read_only",
                    )?;
                    if v.as_deref() == Some("on") {
                        break;
                    }
                    if t0.elapsed() > Duration::from_secs(10) {
                        bail!("the source did not apply default_transaction_read_only = on");
                    }
                    (cx.sleep)(Duration::from_millis(50));
                }
                s.query(
                    "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity \
                     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
                )?;
                let cur = s
                    .query("SELECT pg_current_wal_lsn()")?
                    .scalar()
                    .map(str::to_string)
                    .context("no WAL position from the source")?;
                Ok(format!("at-least:{cur}"))
            }
            "stop-unit" => {
                let f = st.fence.clone().expect("recorded above");
                common::stop_fenced(cx, &f)?;
                let dd = st.source_datadir.clone().context(
                    "the source's data directory was not recorded at start; cannot read its \
                     shutdown checkpoint",
                )?;
                let c = pgctl::read_control(cx.host, &dd)
                    .with_context(|| format!("reading the control file of {}", dd.display()))?;
                if c.state != "shut down" {
                    bail!(
                        "the source ({}) is {:?} after the stop, not cleanly shut down: its last \
                         WAL may not have reached the replica; not promoting",
                        dd.display(),
                        c.state
                    );
                }
                Ok(format!("after:{}", c.checkpoint))
            }
            _ => {
                let cur =
                    client::scalar(cx.exec.db(), &self.control(), "SELECT pg_current_wal_lsn()")
                        .map_err(|e| {
                            anyhow::anyhow!(
                                "{}",
                                explain(self.s, &e, &self.s.user, "all", "migrate.password-file")
                            )
                        })?
                        .context("no WAL position from the source")?;
                common::run_stop_command(cx, self.s)?;
                Ok(format!("stream-end:{cur}"))
            }
        }
    }

    fn unfence(&self, cx: &mut Ctx, st: &State) -> Result<()> {
        let Some(f) = &st.fence else { return Ok(()) };
        match f.kind.as_str() {
            "read-only" => {
                let mut s = self.control_session(cx.exec)?;
                s.run_all(&[
                    "ALTER SYSTEM RESET default_transaction_read_only",
                    "SELECT pg_reload_conf()",
                ])
            }
            _ => common::unfence_stop(cx, self.s, f),
        }
    }

    fn caught_up(&self, cx: &mut Ctx, st: &State, pos: &str) -> Result<bool> {
        let (rule, l) = pos.split_once(':').context("bad position")?;
        let target: Lsn = l.parse().map_err(|e: String| anyhow::anyhow!(e))?;
        let r = self.local(cx.host, cx.exec, &st.instance)?.query(
            "SELECT pg_last_wal_replay_lsn() AS replayed, pg_last_wal_receive_lsn() AS received, \
             (SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming') AS streaming",
        )?;
        let rep = lsn(r.get(0, "replayed")).unwrap_or_default();
        let rec = lsn(r.get(0, "received")).unwrap_or_default();
        Ok(match rule {
            "at-least" => rep >= target,
            // The replay position is the end of the last record: past the checkpoint's start.
            "after" => rep > target,
            _ => rep >= target && rep >= rec && r.get(0, "streaming") == Some("0"),
        })
    }

    fn promote(&self, cx: &mut Ctx, st: &State) -> Result<()> {
        let mut s = self.local(cx.host, cx.exec, &st.instance)?;
        if s.query("SELECT pg_is_in_recovery()")?.scalar() == Some("t") {
            s.query("SELECT pg_promote(true, 60)")?;
        }
        let t0 = Instant::now();
        while s.query("SELECT pg_is_in_recovery()")?.scalar() != Some("f") {
            if t0.elapsed() > Duration::from_secs(60) {
                bail!(
                    "{} is still in recovery 60 s after pg_promote()",
                    st.instance.unit
                );
            }
            (cx.sleep)(Duration::from_millis(20));
        }
        Ok(())
    }

    fn after_promotion(&self, cx: &mut Ctx, st: &State) -> Result<()> {
        // The connection settings (and the passfile's name) are for a standby only.
        self.local(cx.host, cx.exec, &st.instance)?.run_all(&[
            "ALTER SYSTEM RESET primary_conninfo",
            "ALTER SYSTEM RESET primary_slot_name",
            "SELECT pg_reload_conf()",
        ])
    }

    fn accepts_writes(&self, cx: &mut Ctx, st: &State) -> Result<bool> {
        let mut s = self.local(cx.host, cx.exec, &st.instance)?;
        let r = s.query(
            "SELECT pg_is_in_recovery() AS recovery, current_setting('transaction_read_only') AS ro",
        )?;
        if r.get(0, "recovery") != Some("f") || r.get(0, "ro") != Some("off") {
            return Ok(false);
        }
        // A transaction id is only handed out to a writable primary.
        Ok(s.query("SELECT txid_current()").is_ok())
    }

    fn finalize(&self, cx: &mut Ctx, st: &State) -> Result<Vec<String>> {
        let mut done = Vec::new();
        match self.drop_slot(cx) {
            Ok(true) => done.push(format!("dropped the slot {} on the source", self.s.slot)),
            Ok(false) => done.push(format!("the slot {} is already gone", self.s.slot)),
            Err(e) => done.push(format!(
                "could not drop the slot {} on the source ({e:#}); if that server ever runs \
                 again, drop it there (SELECT pg_drop_replication_slot('{}')) or its WAL grows",
                self.s.slot, self.s.slot
            )),
        }
        if let Some(p) = &st.passfile {
            let _ = fs::remove_file(cx.host.path(p));
            done.push(format!("removed {}", p.display()));
        }
        common::finalize_common(cx, st, &mut done)?;
        Ok(done)
    }

    fn abort(&self, cx: &mut Ctx, st: &State) -> Result<Vec<String>> {
        let mut done = Vec::new();
        common::stop_local(cx, st, &mut done)?;
        match self.drop_slot(cx) {
            Ok(true) => done.push(format!("dropped the slot {} on the source", self.s.slot)),
            Ok(false) => {}
            Err(e) => done.push(format!("could not drop the slot {}: {e:#}", self.s.slot)),
        }
        common::restore_set_aside(cx, st, &mut done)?;
        if let Some(p) = &st.passfile {
            let _ = fs::remove_file(cx.host.path(p));
        }
        common::restart_local(cx, st, &mut done)?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests;
