//! `dbhost backup verify`: a backup is proven by restoring it. Download every object and check
//! its SHA-256, restore into a throwaway server (a temporary directory and port, its own
//! socket), run the engine's own checks (MariaDB/MySQL `CHECK TABLE`, PostgreSQL `amcheck` on
//! every B-tree index), record row counts and a checksum per table as the backup's fingerprint,
//! stop the server and remove the directory. The result is stored beside the manifest
//! (`verify.json`); `list` shows it, `restore` compares the restored server against it.

use super::manifest::{self, Kind, Manifest, VerifyRecord};
use super::object::put_small;
use super::restore::{self, Keys, Say};
use super::sql::{self, Conn};
use super::Env;
use crate::db::engine::Engine;
use crate::host::{CommandSpec, Pipe, Spawned};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A free TCP port on 127.0.0.1 for a throwaway server.
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// The engine a manifest names.
pub fn engine_of(m: &Manifest) -> Result<Engine> {
    match m.engine.as_str() {
        "mariadb" => Ok(Engine::Mariadb),
        "mysql" => Ok(Engine::Mysql),
        "postgresql" => Ok(Engine::Postgresql),
        e => bail!("backup {}: unknown engine {e:?}", m.id),
    }
}

/// A throwaway server: stopped and its directory removed when dropped.
struct Scratch<'e> {
    conn: Conn,
    dir: PathBuf,
    /// MariaDB/MySQL: the server process; PostgreSQL: stopped with pg_ctl.
    server: Option<Spawned<'e>>,
    pg_ctl: Option<CommandSpec>,
    env_exec: &'e dyn crate::host::Exec,
}

impl Drop for Scratch<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            (s.killer())();
            let _ = s.wait();
        }
        if let Some(c) = &self.pg_ctl {
            let _ = self.env_exec.output(c);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PostgreSQL's binaries of one major version (Debian layout).
fn pg_bin(env: &Env<'_>, major: &str, prog: &str) -> Result<String> {
    let p = format!("/usr/lib/postgresql/{major}/bin/{prog}");
    if !env.host.path(&p).exists() {
        bail!("{p} is missing: verifying a PostgreSQL {major} backup needs PostgreSQL {major} installed here");
    }
    Ok(p)
}

fn as_user(user: &str, args: &[String]) -> CommandSpec {
    CommandSpec::new("runuser")
        .args(["-u", user, "--"])
        .args(args.iter().cloned())
}

fn chown(env: &Env<'_>, user: &str, p: &Path) -> Result<()> {
    env.exec
        .run(
            &CommandSpec::new("chown")
                .args(["-R", &format!("{user}:{user}")])
                .arg(env.host.unroot(p).display().to_string()),
        )
        .map(|_| ())
}

/// Wait until `conn` answers `SELECT 1` (bounded).
fn wait_ready(env: &Env<'_>, conn: &Conn, what: &str, log: &Path) -> Result<()> {
    let mut last = String::new();
    for _ in 0..600 {
        match sql::scalar(env.host, env.exec, conn, "SELECT 1") {
            Ok(v) if v == "1" => return Ok(()),
            Ok(v) => last = v,
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    bail!(
        "{what} did not answer within 120 s: {last}; its log: {}",
        restore::tail(&tail)
    )
}

/// Start a throwaway MariaDB/MySQL on `data` (physical: with the backup's own settings).
fn start_mysql<'e>(
    env: &'e Env<'_>,
    engine: Engine,
    work: &Path,
    data: &Path,
    physical: bool,
) -> Result<Scratch<'e>> {
    let w = env.host.unroot(work);
    let sock = w.join("mysqld.sock");
    let port = free_port()?;
    chown(env, "mysql", work)?;
    let defaults = if physical && data.join("backup-my.cnf").exists() {
        format!(
            "--defaults-file={}",
            env.host.unroot(&data.join("backup-my.cnf")).display()
        )
    } else {
        "--no-defaults".to_string()
    };
    let prog = if engine == Engine::Mariadb {
        "mariadbd"
    } else {
        "mysqld"
    };
    let cmd = CommandSpec::new(prog).arg(defaults).args([
        format!("--datadir={}", env.host.unroot(data).display()),
        format!("--socket={}", sock.display()),
        format!("--port={port}"),
        "--bind-address=127.0.0.1".into(),
        format!("--pid-file={}", w.join("mysqld.pid").display()),
        format!("--log-error={}", w.join("error.log").display()),
        "--user=mysql".into(),
        "--skip-grant-tables".into(),
        "--skip-log-bin".into(),
        "--innodb-buffer-pool-size=64M".into(),
    ]);
    let server = env.exec.spawn(&cmd, Pipe::Out)?;
    let conn = Conn::Scratch {
        engine,
        socket: sock,
        port,
        database: None,
    };
    let s = Scratch {
        conn,
        dir: work.to_path_buf(),
        server: Some(server),
        pg_ctl: None,
        env_exec: env.exec,
    };
    wait_ready(
        env,
        &s.conn,
        "the throwaway server",
        &work.join("error.log"),
    )?;
    Ok(s)
}

/// Start a throwaway PostgreSQL on `data` with its own socket directory, port and hba.
fn start_pg<'e>(env: &'e Env<'_>, work: &Path, data: &Path, major: &str) -> Result<Scratch<'e>> {
    let w = env.host.unroot(work);
    let d = env.host.unroot(data);
    let port = free_port()?;
    // A Debian cluster keeps postgresql.conf and pg_hba.conf in /etc: a base backup has none.
    std::fs::write(work.join("postgresql.conf"), "")
        .context("writing the scratch postgresql.conf")?;
    std::fs::write(work.join("hba.conf"), "local all all trust\n")
        .context("writing the scratch hba")?;
    chown(env, "postgres", work)?;
    env.exec.run(
        &CommandSpec::new("chmod")
            .args(["0700"])
            .arg(d.display().to_string()),
    )?;
    let pg_ctl = pg_bin(env, major, "pg_ctl")?;
    let opts = format!(
        "-p {port} -k {w} -c listen_addresses='' -c config_file={w}/postgresql.conf -c hba_file={w}/hba.conf -c ident_file={w}/ident.conf -c shared_buffers=32MB -c max_connections=20 -c archive_mode=off",
        w = w.display()
    );
    let start = as_user(
        "postgres",
        &[
            pg_ctl.clone(),
            "-D".into(),
            d.display().to_string(),
            "-o".into(),
            opts,
            "-w".into(),
            "-t".into(),
            "300".into(),
            "-l".into(),
            w.join("pg.log").display().to_string(),
            "start".into(),
        ],
    );
    let stop = as_user(
        "postgres",
        &[
            pg_ctl,
            "-D".into(),
            d.display().to_string(),
            "-m".into(),
            "immediate".into(),
            "stop".into(),
        ],
    );
    let s = Scratch {
        conn: Conn::Scratch {
            engine: Engine::Postgresql,
            socket: w.clone(),
            port,
            database: None,
        },
        dir: work.to_path_buf(),
        server: None,
        pg_ctl: Some(stop),
        env_exec: env.exec,
    };
    let out = env.exec.output(&start)?;
    if out.status != 0 {
        let log = std::fs::read_to_string(work.join("pg.log")).unwrap_or_default();
        bail!(
            "the throwaway PostgreSQL did not start: {} {}",
            restore::tail(&out.stderr),
            restore::tail(&log)
        );
    }
    wait_ready(
        env,
        &s.conn,
        "the throwaway PostgreSQL",
        &work.join("pg.log"),
    )?;
    Ok(s)
}

/// Restore `m` into a throwaway server under `work` (which must not exist).
fn throwaway<'e>(
    env: &'e Env<'_>,
    m: &Manifest,
    keys: &Keys<'_>,
    work: &Path,
    say: Say<'_>,
) -> Result<Scratch<'e>> {
    let engine = engine_of(m)?;
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let data = work.join("data");
    match (engine, m.kind) {
        (Engine::Postgresql, Kind::Physical) => {
            restore::unpack_physical(env, m, keys, &data, say)?;
            let major = std::fs::read_to_string(data.join("PG_VERSION"))
                .unwrap_or_default()
                .trim()
                .to_string();
            start_pg(env, work, &data, &major)
        }
        (Engine::Postgresql, Kind::Logical) => {
            let major = m
                .engine_version
                .split(['.', ' '])
                .next()
                .unwrap_or("")
                .to_string();
            std::fs::create_dir(&data)?;
            chown(env, "postgres", work)?;
            let initdb = pg_bin(env, &major, "initdb")?;
            let out = env.exec.output(&as_user(
                "postgres",
                &[
                    initdb,
                    "-D".into(),
                    env.host.unroot(&data).display().to_string(),
                    "--auth=trust".into(),
                    "-U".into(),
                    "postgres".into(),
                ],
            ))?;
            if out.status != 0 {
                bail!(
                    "initdb of the throwaway cluster failed: {}",
                    restore::tail(&out.stderr)
                );
            }
            let s = start_pg(env, work, &data, &major)?;
            replay_into(env, m, keys, &s.conn, say)?;
            Ok(s)
        }
        (e, Kind::Physical) => {
            restore::unpack_physical(env, m, keys, &data, say)?;
            start_mysql(env, e, work, &data, true)
        }
        (e, Kind::Logical) => {
            let install = if e == Engine::Mariadb {
                "mariadb-install-db"
            } else {
                "mysqld"
            };
            let d = env.host.unroot(&data).display().to_string();
            let cmd = if e == Engine::Mariadb {
                CommandSpec::new(install).args([
                    "--no-defaults",
                    &format!("--datadir={d}"),
                    "--user=mysql",
                    "--skip-test-db",
                ])
            } else {
                CommandSpec::new(install).args([
                    "--no-defaults",
                    "--initialize-insecure",
                    &format!("--datadir={d}"),
                    "--user=mysql",
                ])
            };
            chown(env, "mysql", work)?;
            let out = env.exec.output(&cmd)?;
            if out.status != 0 {
                bail!(
                    "initialising the throwaway server failed: {}",
                    restore::tail(&out.stderr)
                );
            }
            let s = start_mysql(env, e, work, &data, false)?;
            replay_into(env, m, keys, &s.conn, say)?;
            Ok(s)
        }
    }
}

/// Replay a logical backup into a throwaway server (download, hash check, decode, client).
fn replay_into(
    env: &Env<'_>,
    m: &Manifest,
    keys: &Keys<'_>,
    conn: &Conn,
    say: Say<'_>,
) -> Result<()> {
    for o in &m.objects {
        let cmd = restore::replay_command(conn, o, false);
        restore::object_into_program(env, m, o, keys, &cmd)?;
        say(format!("  {}: checked and replayed", o.stored.name));
    }
    Ok(())
}

/// Per table: "rows=N checksum=X", keyed "schema.table" (PostgreSQL: "database.schema.table").
pub fn fingerprint(env: &Env<'_>, conn: &Conn) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    match conn.engine() {
        Engine::Postgresql => {
            let dbs = sql::query(env.host, env.exec, conn, "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1")?;
            for db in dbs.iter().filter_map(|r| r.first()) {
                let c = conn.with_database(db);
                let tables = sql::query(env.host, env.exec, &c, "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1")?;
                for t in tables.iter().filter_map(|r| r.first()) {
                    let r = sql::query(env.host, env.exec, &c, &format!("SELECT count(*), coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '-') FROM {t} x"))?;
                    let row = r.first().ok_or_else(|| anyhow!("no answer for {db}.{t}"))?;
                    out.insert(
                        format!("{db}.{t}"),
                        format!("rows={} checksum={}", row[0], row.get(1).map_or("-", |s| s)),
                    );
                }
            }
        }
        _ => {
            let tables = user_tables(env, conn)?;
            if tables.is_empty() {
                return Ok(out);
            }
            let list = tables
                .iter()
                .map(|t| quote_mysql(t))
                .collect::<Vec<_>>()
                .join(", ");
            for r in sql::query(
                env.host,
                env.exec,
                conn,
                &format!("CHECKSUM TABLE {list} EXTENDED"),
            )? {
                let (Some(t), Some(sum)) = (r.first(), r.get(1)) else {
                    continue;
                };
                out.insert(t.clone(), format!("checksum={sum}"));
            }
            let counts = tables
                .iter()
                .map(|t| {
                    format!(
                        "SELECT '{}', COUNT(*) FROM {}",
                        t.replace('\'', "''"),
                        quote_mysql(t)
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            for r in sql::query(env.host, env.exec, conn, &counts)? {
                if let (Some(t), Some(n)) = (r.first(), r.get(1)) {
                    let e = out.entry(t.clone()).or_default();
                    *e = format!("rows={n} {e}").trim().to_string();
                }
            }
        }
    }
    Ok(out)
}

fn user_tables(env: &Env<'_>, conn: &Conn) -> Result<Vec<String>> {
    Ok(sql::query(env.host, env.exec, conn, "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('mysql','information_schema','performance_schema','sys') ORDER BY 1")?
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect())
}

/// `schema.table` quoted for MySQL (names without dots; the engines' own tables have none).
fn quote_mysql(t: &str) -> String {
    t.split('.')
        .map(|p| format!("`{}`", p.replace('`', "``")))
        .collect::<Vec<_>>()
        .join(".")
}

/// The engine's own consistency checks; each failure is one line.
fn engine_checks(env: &Env<'_>, conn: &Conn) -> Result<Vec<String>> {
    let mut bad = Vec::new();
    match conn.engine() {
        Engine::Postgresql => {
            let dbs = sql::query(env.host, env.exec, conn, "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1")?;
            for db in dbs.iter().filter_map(|r| r.first()) {
                let c = conn.with_database(db);
                sql::query(
                    env.host,
                    env.exec,
                    &c,
                    "CREATE EXTENSION IF NOT EXISTS amcheck",
                )?;
                let q = "SELECT count(bt_index_check(c.oid, true)) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree' AND c.relpersistence <> 't' AND i.indisvalid";
                if let Err(e) = sql::query(env.host, env.exec, &c, q) {
                    bad.push(format!("amcheck in database {db}: {e:#}"));
                }
            }
        }
        _ => {
            let tables = user_tables(env, conn)?;
            if tables.is_empty() {
                return Ok(bad);
            }
            let list = tables
                .iter()
                .map(|t| quote_mysql(t))
                .collect::<Vec<_>>()
                .join(", ");
            for r in sql::query(env.host, env.exec, conn, &format!("CHECK TABLE {list}"))? {
                // Table, Op, Msg_type, Msg_text: the last row per table says status.
                if let [t, _, kind, text, ..] = r.as_slice() {
                    if kind == "error" || (kind == "status" && text != "OK") {
                        bad.push(format!("CHECK TABLE {t}: {kind}: {text}"));
                    }
                }
            }
        }
    }
    Ok(bad)
}

/// Verify backup `m`: everything above, then `verify.json` written to the destination. Returns
/// the record (ok or not); an error only when the record itself could not be written.
pub fn verify(
    env: &Env<'_>,
    m: &Manifest,
    keys: &Keys<'_>,
    work: &Path,
    say: Say<'_>,
) -> Result<VerifyRecord> {
    let mut checks = Vec::new();
    let mut tables = BTreeMap::new();
    let res = (|| -> Result<()> {
        if work.exists() {
            std::fs::remove_dir_all(work)
                .with_context(|| format!("clearing {}", work.display()))?;
        }
        let scratch = throwaway(env, m, keys, work, say)?;
        checks.push(format!(
            "sha256 of {} objects matches the manifest",
            m.objects.len()
        ));
        checks.push(format!(
            "restored into a throwaway {} ({})",
            m.engine,
            m.kind.as_str()
        ));
        let bad = engine_checks(env, &scratch.conn)?;
        if !bad.is_empty() {
            bail!("engine checks failed: {}", bad.join("; "));
        }
        checks.push(match scratch.conn.engine() {
            Engine::Postgresql => "amcheck: every B-tree index is consistent".to_string(),
            _ => "CHECK TABLE: every table OK".to_string(),
        });
        tables = fingerprint(env, &scratch.conn)?;
        checks.push(format!("{} tables counted and checksummed", tables.len()));
        drop(scratch);
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(work);
    let rec = VerifyRecord {
        id: m.id.clone(),
        verified: manifest::rfc3339((env.now)()),
        ok: res.is_ok(),
        host: env.hostname.clone(),
        dbhost_version: env!("CARGO_PKG_VERSION").into(),
        checks,
        tables,
        error: res.as_ref().err().map(|e| format!("{e:#}")),
    };
    env.rt.block_on(put_small(
        env.store,
        &format!("{}/{}", m.id, manifest::VERIFY),
        serde_json::to_vec_pretty(&rec)?,
    ))?;
    Ok(rec)
}

/// After a restore onto this host: compare its tables with the fingerprint `verify` recorded
/// for the backup. Returns what was proven; an error names the first tables that differ.
pub fn compare_with_record(
    env: &Env<'_>,
    inst: &crate::db::engine::Instance,
    rec: Option<&VerifyRecord>,
) -> Result<String> {
    let Some(rec) = rec.filter(|r| r.ok && !r.tables.is_empty()) else {
        return Ok("no verify fingerprint to compare with (run `dbhost backup verify`)".into());
    };
    let now = fingerprint(env, &Conn::local(inst))?;
    let diff = diff_tables(&rec.tables, &now);
    if diff.is_empty() {
        Ok(format!(
            "{} tables equal the fingerprint verify recorded on {}",
            now.len(),
            rec.verified
        ))
    } else {
        bail!(
            "the restored server differs from what `backup verify` recorded for {}: {}",
            rec.id,
            diff.join("; ")
        )
    }
}

/// Tables whose fingerprint differs (at most 10 named).
pub fn diff_tables(want: &BTreeMap<String, String>, got: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for k in want
        .keys()
        .chain(got.keys().filter(|k| !want.contains_key(*k)))
    {
        let (a, b) = (want.get(k), got.get(k));
        if a != b {
            out.push(format!(
                "{k}: verified {} / restored {}",
                a.map_or("(absent)", String::as_str),
                b.map_or("(absent)", String::as_str)
            ));
        }
    }
    out.truncate(10);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_differences_are_named() {
        let a: BTreeMap<String, String> = [
            ("s.t".to_string(), "rows=1 checksum=5".to_string()),
            ("s.u".into(), "rows=0 checksum=0".into()),
        ]
        .into();
        let mut b = a.clone();
        assert!(diff_tables(&a, &b).is_empty());
        b.insert("s.t".into(), "rows=2 checksum=6".into());
        b.insert("s.v".into(), "rows=1 checksum=1".into());
        b.remove("s.u");
        let d = diff_tables(&a, &b);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].starts_with("s.t: verified rows=1"));
        assert!(d
            .iter()
            .any(|l| l == "s.u: verified rows=0 checksum=0 / restored (absent)"));
    }

    #[test]
    fn mysql_names_are_quoted() {
        assert_eq!(quote_mysql("shop.orders"), "`shop`.`orders`");
        assert_eq!(quote_mysql("a`b.c"), "`a``b`.`c`");
    }
}
