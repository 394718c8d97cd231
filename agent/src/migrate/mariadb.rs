//! MariaDB: `mariabackup --backup --stream=xbstream` on the source (locally, or through
//! `source-shell`), `mbstream -x` into the target datadir, `--prepare`, then the copy starts as a
//! replica from the backup's GTID position (distinct server_id, `read_only` until the cutover).
//! Cutover: the source becomes read-only and its sessions end, its `@@gtid_binlog_pos` is the
//! last change, `MASTER_GTID_WAIT` on the replica, `STOP SLAVE; RESET SLAVE ALL; read_only = 0`.
//! Facts: BACKUP-MIGRATE.md (MariaDB 10.11 / MySQL 8).

use super::{
    check_room, common, source_repl_target, source_target, Ctx, Phase, Plan, Replica,
    ReplicaStatus, Saver, Settings, State,
};
use crate::db::client::{db_error, mysql::quote, DbError, Protocol, Rows, Session, Target};
use crate::db::engine::{self, Engine, Instance};
use crate::host::{Exec, Host};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Maria<'a> {
    pub s: &'a Settings,
}

/// The drop-in that makes the copy a replica: its own server_id, and read-only until cutover.
pub const DROPIN: &str = "zz-dbhost-migrate.cnf";

/// The replica's option drop-in (pure).
pub fn render_dropin(server_id: u32, read_only: bool) -> String {
    format!(
        "# Written by dbhost migrate: this server was copied from another and replicates from \
         it.\n[mysqld]\nserver_id = {server_id}\n{}",
        if read_only { "read_only = ON\n" } else { "" }
    )
}

pub use crate::db::replica::mariadb::{backup_gtid, derived_server_id};

/// "10.11.6-MariaDB-0+deb12u1" → ("mariadb", 10, 11).
pub fn parse_version(v: &str) -> (bool, u32, u32) {
    let mariadb = v.to_ascii_lowercase().contains("mariadb");
    // MariaDB 10 used to report "5.5.5-10.x" in the handshake; @@version has no prefix.
    let v = v.strip_prefix("5.5.5-").unwrap_or(v);
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    (mariadb, it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn explain(s: &Settings, e: &anyhow::Error, user: &str, pwkey: &str) -> String {
    match db_error(e) {
        Some(DbError::Unreachable { endpoint, reason }) => format!(
            "cannot reach the source {endpoint}: {reason}; is the server listening there \
             (bind-address, port {}) and may this host connect?",
            s.source_addr().port()
        ),
        Some(DbError::Refused { code, message, .. }) if code == "1130" => format!(
            "the source {} refused {user:?}: {message} ({code}); create the account for this \
             host there, e.g. CREATE USER '{user}'@'THIS_HOST' IDENTIFIED BY '...'",
            s.source
        ),
        Some(DbError::Refused { code, message, .. }) if code == "1045" => format!(
            "the source {} refused {user:?}: {message} ({code}); check the password in {pwkey}",
            s.source
        ),
        _ => format!("the source {}: {e:#}", s.source),
    }
}

impl Maria<'_> {
    fn control(&self) -> Target {
        source_target(self.s, Protocol::Mysql)
    }
    fn repl(&self) -> Target {
        source_repl_target(self.s, Protocol::Mysql)
    }
    fn control_session<'e>(&self, exec: &'e dyn Exec) -> Result<Box<dyn Session + 'e>> {
        exec.db().connect(&self.control()).map_err(|e| {
            anyhow::anyhow!(
                "{}",
                explain(self.s, &e, &self.s.user, "migrate.password-file")
            )
        })
    }
    fn local<'e>(
        &self,
        host: &Host,
        exec: &'e dyn Exec,
        inst: &Instance,
    ) -> Result<Box<dyn Session + 'e>> {
        crate::db::local::session(host, exec, inst)
    }
    fn dropin_path(inst: &Instance) -> Option<PathBuf> {
        inst.dropin_dir.as_ref().map(|d| d.join(DROPIN))
    }
    fn write_dropin(&self, host: &Host, inst: &Instance, server_id: u32, ro: bool) -> Result<()> {
        let p = Self::dropin_path(inst)
            .context("the MySQL/MariaDB configuration has no !includedir for dbhost's drop-in")?;
        crate::host::atomic_write(
            &host.path(&p),
            render_dropin(server_id, ro).as_bytes(),
            0o644,
        )
        .with_context(|| format!("writing {}", p.display()))?;
        Ok(())
    }

    fn grants(sess: &mut Box<dyn Session + '_>) -> String {
        sess.query("SHOW GRANTS")
            .map(|r| {
                r.rows
                    .iter()
                    .filter_map(|x| x[0].clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
            .to_ascii_uppercase()
    }

    fn probe(&self, cx: &mut Ctx, p: &mut Plan) {
        let mut sess = match self.control_session(cx.exec) {
            Ok(s) => s,
            Err(e) => {
                p.check("control login", false, format!("{e:#}"));
                return;
            }
        };
        p.check(
            "control login",
            true,
            format!("{} logs in at {}", self.s.user, self.s.source),
        );
        let r = sess
            .query("SELECT @@version AS v, @@log_bin AS log_bin, @@server_id AS id, @@gtid_binlog_pos AS gtid, @@binlog_format AS fmt")
            .unwrap_or_default();
        let version = r.get(0, "v").unwrap_or("").to_string();
        let (src_maria, a, b) = parse_version(&version);
        let local = super::local_instance(cx, self.s).ok();
        let local_version = local.as_ref().and_then(|i| {
            self.local(cx.host, cx.exec, i)
                .and_then(|mut s| s.query("SELECT @@version"))
                .ok()
                .and_then(|r| r.scalar().map(str::to_string))
        });
        match local_version.as_deref().map(parse_version) {
            _ if !src_maria => p.check(
                "versions",
                false,
                format!(
                    "the source runs MySQL {version}: mariabackup copies MariaDB only. Use \
                     MySQL's own path: CLONE INSTANCE (same series, InnoDB only) or \
                     xtrabackup into this host's MySQL, or the logical path: mysqldump \
                     --single-transaction --source-data=2 (or mydumper) here, then replication \
                     from the dump's position"
                ),
            ),
            Some((true, c, d)) if (c, d) != (a, b) => p.check(
                "versions",
                false,
                format!(
                    "the source runs MariaDB {a}.{b} and this host {c}.{d}: a physical copy \
                     needs the same series. Install MariaDB {a}.{b} here, or use the logical \
                     path: mariadb-dump --single-transaction --master-data=2 --gtid from the \
                     source into this server, then replicate from the dump's GTID position"
                ),
            ),
            Some((true, _, _)) => p.check("versions", true, format!("MariaDB {a}.{b} on both")),
            _ => p.check(
                "versions",
                true,
                format!(
                    "the source runs MariaDB {a}.{b}; this host's server does not answer (its \
                     version is checked at start)"
                ),
            ),
        }
        let src_id: Option<u32> = r.get(0, "id").and_then(|v| v.parse().ok());
        if r.get(0, "log_bin") != Some("1") {
            let size = self.size(&mut sess);
            let secs = size / (100 << 20) + 1;
            p.check(
                "binary log",
                false,
                format!(
                    "binary logging is off on the source, so a replica cannot catch up with it. \
                     Either enable it there (log_bin = mysql-bin and server_id = {} in its \
                     option file, then one restart of the source, seconds of downtime) and \
                     re-run, or take the file-copy path: stop the source, copy its datadir \
                     ({} MiB; about {secs} s at 100 MiB/s), start it here (`dbhost apply` does \
                     this for a server on this host, with a two-pass copy)",
                    src_id.filter(|i| *i != 0).unwrap_or(1),
                    size >> 20
                ),
            );
        } else {
            p.check(
                "binary log",
                true,
                format!(
                    "binary log on ({} format), GTID position {}",
                    r.get(0, "fmt").unwrap_or("?"),
                    r.get(0, "gtid").unwrap_or("")
                ),
            );
        }
        let ours = self.server_id(cx.host, src_id);
        p.check(
            "server_id",
            Some(ours) != src_id,
            format!(
                "the source has server_id {}, the copy gets {ours}",
                src_id.map(|i| i.to_string()).unwrap_or_else(|| "?".into())
            ),
        );
        let g = Self::grants(&mut sess);
        let can_fence =
            g.contains("ALL PRIVILEGES") || g.contains("SUPER") || g.contains("READ_ONLY ADMIN");
        p.check(
            "fence rights",
            can_fence,
            if can_fence {
                format!("{} may set read_only and end sessions", self.s.user)
            } else {
                format!(
                    "{} may not make the source read-only: GRANT READ_ONLY ADMIN, CONNECTION \
                     ADMIN, REPLICATION CLIENT ON *.* TO the account on the source",
                    self.s.user
                )
            },
        );
        match cx.exec.db().connect(&self.repl()) {
            Err(e) => p.check(
                "replication login",
                false,
                explain(
                    self.s,
                    &e,
                    &self.s.repl_user,
                    "migrate.replication-password-file",
                ),
            ),
            Ok(mut rs) => {
                let g = Self::grants(&mut rs);
                let ok = g.contains("REPLICATION SLAVE")
                    || g.contains("REPLICATION REPLICA")
                    || g.contains("ALL PRIVILEGES");
                p.check(
                    "replication login",
                    ok,
                    if ok {
                        format!("{} may replicate", self.s.repl_user)
                    } else {
                        format!(
                            "{} lacks the right to replicate: on the source, GRANT REPLICATION \
                             SLAVE ON *.* TO the account",
                            self.s.repl_user
                        )
                    },
                );
            }
        }
        if p.phase.is_none_or(|ph| !ph.is_active()) {
            if let Some(inst) = &local {
                if let Ok(mut l) = self.local(cx.host, cx.exec, inst) {
                    let dbs = l
                        .query("SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys', 'test') ORDER BY 1")
                        .map(|r| common::column(&r))
                        .unwrap_or_default();
                    common::check_empty(p, &dbs);
                }
            }
            let size = self.size(&mut sess);
            check_room(p, cx.host, &self.s.target_datadir, size);
        }
    }

    /// What the copy will take: every table's data and indexes, plus InnoDB's logs.
    fn size(&self, sess: &mut Box<dyn Session + '_>) -> u64 {
        let data: u64 = sess
            .query("SELECT COALESCE(SUM(data_length + index_length + data_free), 0) FROM information_schema.tables")
            .ok()
            .and_then(|r| r.scalar().and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        let logs: u64 = sess
            .query("SELECT @@innodb_log_file_size")
            .ok()
            .and_then(|r| r.scalar().and_then(|v| v.parse().ok()))
            .unwrap_or(96 << 20);
        data + logs + (64 << 20)
    }

    fn server_id(&self, host: &Host, avoid: Option<u32>) -> u32 {
        self.s.server_id.unwrap_or_else(|| {
            let mid = fs::read_to_string(host.etc("machine-id")).unwrap_or_default();
            derived_server_id(&mid, avoid)
        })
    }

    /// The source's mariabackup stream, unpacked into the target, prepared, owned by mysql.
    fn copy(&self, cx: &mut Ctx, st: &State) -> Result<String> {
        let mut args = Vec::new();
        if let Some(f) = &self.s.source_defaults_file {
            args.push(format!("--defaults-file={f}"));
            if self.s.source_shell.is_none() {
                // The socket of that server, read with dbhost's option-file parser.
                let cnf = crate::db::cnf::read_cnf_file(cx.host, Path::new(f)).unwrap_or_default();
                if let Some(sock) = cnf.server("socket") {
                    args.push(format!("--socket={sock}"));
                }
            }
        }
        args.push(format!("--user={}", self.s.user));
        cx.note(format!(
            "copying {} into {} (mariabackup --stream)",
            self.s.source,
            st.target_datadir.display()
        ));
        let t0 = Instant::now();
        let gtid = crate::db::replica::mariadb::backup_into(
            cx.host,
            cx.exec,
            &args,
            self.s.source_shell.as_deref(),
            self.s.password.as_deref(),
            &st.target_datadir,
        )
        .with_context(|| format!("copying {}", self.s.source))?;
        cx.note(format!(
            "copied and prepared in {:.1} s (GTID {gtid})",
            t0.elapsed().as_secs_f64()
        ));
        Ok(gtid)
    }

    fn slave_status(&self, cx: &Ctx, inst: &Instance) -> Result<Rows> {
        self.local(cx.host, cx.exec, inst)?
            .query("SHOW SLAVE STATUS")
    }

    fn wait_replicating(&self, cx: &mut Ctx, inst: &Instance) -> Result<()> {
        let t0 = Instant::now();
        let mut last = String::new();
        while t0.elapsed() < cx.stream_timeout {
            match self
                .slave_status(cx, inst)
                .map(|r| crate::db::replica::mariadb::replication_running(&r))
            {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(state)) => last = state,
                Err(e) => last = format!("{e:#}"),
            }
            (cx.sleep)(Duration::from_millis(250));
        }
        bail!(
            "the replica did not start replicating from {} within {:?} ({last})",
            self.s.source,
            cx.stream_timeout
        )
    }

    /// Read-only on the source, client sessions ended; the source's last GTID position.
    fn fence_read_only(&self, cx: &mut Ctx) -> Result<String> {
        let mut s = self.control_session(cx.exec)?;
        crate::db::replica::mariadb::fence_read_only(s.as_mut())
    }
}

impl Replica for Maria<'_> {
    fn plan(&self, cx: &mut Ctx, p: &mut Plan) -> Result<()> {
        if self.s.engine == Engine::Mysql {
            p.check(
                "engine",
                false,
                "dbhost migrate copies MariaDB (mariabackup); for MySQL 8 use CLONE INSTANCE \
                 or xtrabackup, or the logical path (mysqldump --single-transaction \
                 --source-data=2, then replication from the dump's position)",
            );
            return Ok(());
        }
        self.probe(cx, p);
        if self.s.fence == crate::profile::Fence::ReadOnly {
            p.notes.push(
                "fence = read-only: read_only = 1 on the source is lost if the source restarts; \
                 accounts with READ_ONLY ADMIN (or SUPER before 10.11) can still write"
                    .into(),
            );
        }
        Ok(())
    }

    fn clone_and_follow(&self, cx: &mut Ctx, st: &mut State, save: &mut Saver) -> Result<()> {
        let inst = st.instance.clone();
        if st.phase == Phase::Cloning {
            if st.history.is_empty() {
                st.local_was_running = engine::is_active(cx.exec, &inst.unit);
                let src_id: Option<u32> = self
                    .control_session(cx.exec)?
                    .query("SELECT @@server_id")?
                    .scalar()
                    .and_then(|v| v.parse().ok());
                st.server_id = Some(self.server_id(cx.host, src_id));
                st.set_phase(Phase::Cloning);
                save(st)?;
            }
            engine::stop(cx.exec, &inst.unit, &cx.wait)?;
            common::set_aside(cx, st, save)?;
            let target = cx.host.path(&st.target_datadir);
            fs::create_dir_all(&target)
                .with_context(|| format!("creating {}", target.display()))?;
            let gtid = self.copy(cx, st)?;
            st.gtid_start = Some(gtid);
            st.set_phase(Phase::Replicating);
            save(st)?;
        }
        let sid = st.server_id.context("no server_id recorded")?;
        self.write_dropin(cx.host, &inst, sid, true)?;
        engine::start(cx.exec, &inst.unit, &cx.wait)?;
        let mut l = self.local(cx.host, cx.exec, &inst)?;
        let configured = l
            .query("SHOW SLAVE STATUS")?
            .get(0, "Master_Host")
            .is_some();
        if !configured {
            let gtid = st.gtid_start.clone().context("no GTID position recorded")?;
            let addr = self.s.source_addr();
            l.run_all(&[
                &format!("SET GLOBAL gtid_slave_pos = {}", quote(&gtid)),
                &format!(
                    "CHANGE MASTER TO MASTER_HOST = {}, MASTER_PORT = {}, MASTER_USER = {}, \
                     MASTER_PASSWORD = {}, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1",
                    quote(&addr.ip().to_string()),
                    addr.port(),
                    quote(&self.s.repl_user),
                    quote(self.s.repl_password.as_deref().unwrap_or(""))
                ),
                "START SLAVE",
            ])?;
        }
        drop(l);
        self.wait_replicating(cx, &inst)?;
        cx.note(format!("{} replicates from {}", inst.unit, self.s.source));
        Ok(())
    }

    fn status(&self, cx: &mut Ctx, st: &State) -> ReplicaStatus {
        let mut rs = ReplicaStatus::default();
        let mut local_file_pos = None;
        match self.slave_status(cx, &st.instance) {
            Ok(r) if r.rows.is_empty() => rs
                .problems
                .push(format!("{} is not a replica", st.instance.unit)),
            Ok(r) => {
                let io = r.get(0, "Slave_IO_Running").unwrap_or("");
                let sql = r.get(0, "Slave_SQL_Running").unwrap_or("");
                rs.replicating = io == "Yes" && sql == "Yes";
                if !rs.replicating {
                    rs.problems.push(format!(
                        "replication from {} is broken (IO thread {io}{}, SQL thread {sql}{}); \
                         nothing is switched",
                        st.source,
                        r.get(0, "Last_IO_Error")
                            .filter(|e| !e.is_empty())
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default(),
                        r.get(0, "Last_SQL_Error")
                            .filter(|e| !e.is_empty())
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default(),
                    ));
                }
                rs.lag_seconds = r
                    .get(0, "Seconds_Behind_Master")
                    .and_then(|v| v.parse().ok());
                rs.detail.push(format!(
                    "read {}:{}, applied {}:{}",
                    r.get(0, "Master_Log_File").unwrap_or("-"),
                    r.get(0, "Read_Master_Log_Pos").unwrap_or("-"),
                    r.get(0, "Relay_Master_Log_File").unwrap_or("-"),
                    r.get(0, "Exec_Master_Log_Pos").unwrap_or("-"),
                ));
                local_file_pos = Some((
                    r.get(0, "Relay_Master_Log_File").unwrap_or("").to_string(),
                    r.get(0, "Exec_Master_Log_Pos")
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0),
                ));
                rs.replica_pos = self
                    .local(cx.host, cx.exec, &st.instance)
                    .and_then(|mut s| s.query("SELECT @@gtid_slave_pos"))
                    .ok()
                    .and_then(|r| r.scalar().map(str::to_string));
            }
            Err(e) => rs
                .problems
                .push(format!("the local server does not answer: {e:#}")),
        }
        match self
            .control_session(cx.exec)
            .and_then(|mut s| s.query("SHOW MASTER STATUS"))
        {
            Ok(r) => {
                let file = r.get(0, "File").unwrap_or("");
                let pos: u64 = r
                    .get(0, "Position")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if let Some((f, p)) = &local_file_pos {
                    if f == file {
                        rs.lag_bytes = Some(pos.saturating_sub(*p));
                    }
                }
                rs.source_pos = self
                    .control_session(cx.exec)
                    .and_then(|mut s| s.query("SELECT @@gtid_binlog_pos"))
                    .ok()
                    .and_then(|r| r.scalar().map(str::to_string));
            }
            Err(e) => rs.problems.push(format!("cannot ask the source: {e:#}")),
        }
        rs
    }

    fn fence(&self, cx: &mut Ctx, st: &mut State, save: &mut Saver) -> Result<String> {
        let kind = common::fence_kind(self.s);
        common::record_fence(cx, self.s, st, save)?;
        if kind == "read-only" {
            return self.fence_read_only(cx);
        }
        // Stop too (durable: a restart would lift read_only), after reading the position. A
        // re-run after the stop finds the position recorded (the source no longer answers)
        // and makes sure of the stop again.
        let pos = match st.fence.as_ref().and_then(|f| f.final_pos.clone()) {
            Some(p) => p,
            None => {
                let p = self.fence_read_only(cx)?;
                if let Some(f) = st.fence.as_mut() {
                    f.final_pos = Some(p.clone());
                }
                save(st)?;
                p
            }
        };
        match kind {
            "stop-unit" => {
                let f = st.fence.clone().expect("recorded");
                common::stop_fenced(cx, &f)?;
            }
            _ => {
                common::run_stop_command(cx, self.s)?;
            }
        }
        Ok(pos)
    }

    fn unfence(&self, cx: &mut Ctx, st: &State) -> Result<()> {
        let Some(f) = &st.fence else { return Ok(()) };
        match f.kind.as_str() {
            "read-only" => {
                self.control_session(cx.exec)?
                    .query("SET GLOBAL read_only = 0")?;
                Ok(())
            }
            _ => {
                common::unfence_stop(cx, self.s, f)?;
                // Up again: the read_only the fence set did not survive the restart, unless
                // the server never stopped (an interrupted fence).
                if let Ok(mut s) = self.control_session(cx.exec) {
                    s.query("SET GLOBAL read_only = 0")?;
                }
                Ok(())
            }
        }
    }

    fn caught_up(&self, cx: &mut Ctx, st: &State, pos: &str) -> Result<bool> {
        if pos.is_empty() {
            return Ok(true);
        }
        let r = self
            .local(cx.host, cx.exec, &st.instance)?
            .query(&format!("SELECT MASTER_GTID_WAIT({}, 0.5)", quote(pos)))?;
        Ok(r.scalar() == Some("0"))
    }

    fn promote(&self, cx: &mut Ctx, st: &State) -> Result<()> {
        let sid = st.server_id.context("no server_id recorded")?;
        // The configuration first: a restart from here on comes up writable, not a replica.
        self.write_dropin(cx.host, &st.instance, sid, false)?;
        let mut l = self.local(cx.host, cx.exec, &st.instance)?;
        l.run_all(&["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0"])
    }

    fn accepts_writes(&self, cx: &mut Ctx, st: &State) -> Result<bool> {
        let mut l = self.local(cx.host, cx.exec, &st.instance)?;
        let ro = l.query("SELECT @@global.read_only")?;
        let slave = l.query("SHOW SLAVE STATUS")?;
        Ok(ro.scalar() == Some("0") && slave.rows.is_empty())
    }

    fn finalize(&self, cx: &mut Ctx, st: &State) -> Result<Vec<String>> {
        let mut done = Vec::new();
        common::finalize_common(cx, st, &mut done)?;
        Ok(done)
    }

    fn abort(&self, cx: &mut Ctx, st: &State) -> Result<Vec<String>> {
        let mut done = Vec::new();
        common::stop_local(cx, st, &mut done)?;
        if let Some(p) = Self::dropin_path(&st.instance) {
            if fs::remove_file(cx.host.path(&p)).is_ok() {
                done.push(format!("removed {}", p.display()));
            }
        }
        common::restore_set_aside(cx, st, &mut done)?;
        common::restart_local(cx, st, &mut done)?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::client::Endpoint;
    use crate::host::FakeExec;
    use crate::profile::Fence;

    fn host() -> (tempfile::TempDir, Host) {
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        let put = |p: &str, t: &str| {
            let p = h.path(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, t).unwrap();
        };
        put(
            "/etc/mysql/my.cnf",
            "[client-server]\n!includedir /etc/mysql/mariadb.conf.d/\n",
        );
        put(
            "/etc/mysql/mariadb.conf.d/zz-dbhost.cnf",
            "[mysqld]\ndatadir = /datadrive/mysql\n",
        );
        put("/lib/systemd/system/mariadb.service", "");
        put("/proc/self/mounts", "/dev/md127 /datadrive xfs rw 0 0\n");
        put("/etc/machine-id", "0123456789abcdef0123456789abcdef\n");
        (d, h)
    }

    fn settings() -> Settings {
        let mut s = crate::migrate::tests::settings(Fence::ReadOnly);
        s.engine = Engine::Mariadb;
        s.target_datadir = "/datadrive/mysql".into();
        s.source = Endpoint::Tcp {
            name: "127.0.0.2".into(),
            addr: "127.0.0.2:3306".parse().unwrap(),
        };
        s.user = "root".into();
        s
    }

    fn source(fx: &FakeExec, version: &str, log_bin: &str) {
        fx.db.answer_at(
            "127.0.0.2",
            "SELECT @@version AS v",
            Rows::one(
                &["v", "log_bin", "id", "gtid", "fmt"],
                &[
                    Some(version),
                    Some(log_bin),
                    Some("1"),
                    Some("0-1-42"),
                    Some("MIXED"),
                ],
            ),
        );
        fx.db.answer_at(
            "127.0.0.2",
            "SHOW GRANTS",
            Rows::value("GRANT ALL PRIVILEGES ON *.* TO `root`@`%`"),
        );
        fx.db
            .answer_at("127.0.0.2", "SELECT COALESCE(SUM", Rows::value("104857600"));
        fx.db.answer_at(
            "mysqld.sock",
            "SELECT @@version",
            Rows::value("10.11.6-MariaDB-0+deb12u1"),
        );
    }

    fn plan_of(fx: &FakeExec, h: &Host) -> Plan {
        let mut say = |_: &str| {};
        let mut cx = Ctx {
            host: h,
            exec: fx,
            wait: Default::default(),
            poll: Duration::from_millis(1),
            sleep: |_| {},
            say: &mut say,
            stream_timeout: Duration::from_millis(1),
        };
        crate::migrate::plan(&mut cx, &settings(), None).unwrap()
    }

    #[test]
    fn plan_passes_for_a_mariadb_source_with_binlogs() {
        let (_d, h) = host();
        let fx = FakeExec::new();
        source(&fx, "10.11.6-MariaDB-log", "1");
        let p = plan_of(&fx, &h);
        assert!(!p.refused(), "{:#?}", p.refusals);
        assert!(p
            .checks
            .iter()
            .any(|c| c.name == "binary log" && c.detail.contains("0-1-42")));
    }

    #[test]
    fn without_binlogs_the_plan_says_what_enabling_costs_and_offers_the_file_copy() {
        let (_d, h) = host();
        let fx = FakeExec::new();
        source(&fx, "10.11.6-MariaDB", "0");
        let p = plan_of(&fx, &h);
        let all = p.refusals.join("\n");
        assert!(all.contains("binary logging is off"), "{all}");
        assert!(all.contains("one restart of the source"), "{all}");
        assert!(
            all.contains("file-copy path") && all.contains("s at 100 MiB/s"),
            "{all}"
        );
    }

    #[test]
    fn other_versions_and_mysql_are_refused_with_the_logical_path() {
        let (_d, h) = host();
        let fx = FakeExec::new();
        source(&fx, "10.6.18-MariaDB", "1");
        let all = plan_of(&fx, &h).refusals.join("\n");
        assert!(all.contains("MariaDB 10.6 and this host 10.11"), "{all}");
        assert!(all.contains("mariadb-dump --single-transaction"), "{all}");
        let fx = FakeExec::new();
        source(&fx, "8.0.39", "1");
        let all = plan_of(&fx, &h).refusals.join("\n");
        assert!(all.contains("mariabackup copies MariaDB only"), "{all}");
    }

    #[test]
    fn a_refused_login_names_the_password_file() {
        let (_d, h) = host();
        let fx = FakeExec::new();
        fx.db.refuse_login(
            "127.0.0.2:3306 as root",
            "1045",
            "Access denied for user 'root'@'127.0.0.1' (using password: YES)",
        );
        let all = plan_of(&fx, &h).refusals.join("\n");
        assert!(all.contains("migrate.password-file"), "{all}");
    }

    #[test]
    fn pure_parts() {
        assert_eq!(
            parse_version("10.11.6-MariaDB-0+deb12u1-log"),
            (true, 10, 11)
        );
        assert_eq!(parse_version("8.0.39-0ubuntu0.22.04.1"), (false, 8, 0));
        let a = derived_server_id("0123456789abcdef0123456789abcdef", None);
        assert!(a >= 2);
        assert_eq!(
            derived_server_id("0123456789abcdef0123456789abcdef", Some(a)),
            a + 1
        );
        assert!(render_dropin(7, true).contains("server_id = 7\nread_only = ON"));
        assert!(!render_dropin(7, false).contains("read_only"));
    }
}
