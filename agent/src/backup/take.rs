//! `dbhost backup`: take one backup of the host's database into a destination.
//!
//! Order: clean this host's partial leftovers → `started.json` → stream every object (each
//! tool's exit status checked before its object is completed) → `manifest.json` last. A failure
//! removes what this run wrote (best effort); a killed run leaves a partial directory that no
//! listing shows as a backup and that the next run removes.

use super::catalog;
use super::codec::Encoding;
use super::manifest::{self, Encryption, Kind, Manifest, Object, Started};
use super::object::put_small;
use super::parts::{self, human};
use super::pipe::{self, Parts};
use super::sql::{self, Conn};
use super::tools::{self, Stream};
use super::Env;
use crate::db::engine::{Engine, Instance};
use crate::host::Host;
use anyhow::{anyhow, Context, Result};
use std::collections::BTreeMap;

/// How to take the backup.
#[derive(Debug, Clone)]
pub struct Options {
    pub kind: Kind,
    pub encoding: Encoding,
    /// PostgreSQL logical: databases dumped at once; mariabackup: copy threads.
    pub parallel: u32,
    /// Expected stored size; default: the datadir's size.
    pub expected: Option<u64>,
    /// Parts in flight per object.
    pub concurrency: usize,
}

/// Progress lines for the operator (stderr in the CLI).
pub type Say<'a> = &'a mut dyn FnMut(String);

/// Partial directories older than this are removed by any host sharing the prefix.
pub const STALE_PARTIAL_SECS: i64 = 7 * 86_400;

/// The host's name (kernel hostname).
pub fn hostname(host: &Host) -> String {
    crate::host::read_trimmed(&host.proc_("sys/kernel/hostname"))
        .unwrap_or_else(|| "unknown".into())
}

/// Remove partial backups this host left (or anyone's, once stale). Returns their ids.
pub fn clean_partials(env: &Env<'_>, say: Say<'_>) -> Result<Vec<String>> {
    let entries = env.rt.block_on(catalog::scan(env.store))?;
    let now = (env.now)();
    let mut removed = Vec::new();
    for e in catalog::partials_to_clean(&entries, &env.hostname, now, STALE_PARTIAL_SECS) {
        let n = env.rt.block_on(catalog::delete(env.store, &e.id))?;
        say(format!("removed partial backup {} ({n} objects)", e.id));
        removed.push(e.id.clone());
    }
    Ok(removed)
}

/// Bytes under the datadir (regular files), the default size estimate.
pub fn datadir_bytes(host: &Host, inst: &Instance) -> Result<u64> {
    let root = host.path(&inst.datadir);
    let files = crate::db::copy::regular_files(&root)
        .with_context(|| format!("measuring datadir {}", inst.datadir.display()))?;
    Ok(files
        .iter()
        .filter_map(|f| std::fs::symlink_metadata(root.join(f)).ok())
        .map(|m| m.len())
        .sum())
}

/// The streams of this backup, in order.
fn streams(
    env: &Env<'_>,
    inst: &Instance,
    opts: &Options,
    tmp: &std::path::Path,
) -> Result<Vec<Stream>> {
    Ok(match (inst.engine, opts.kind) {
        (Engine::Postgresql, Kind::Logical) => {
            let conn = Conn::local(inst);
            let dbs = sql::query(
                env.host,
                env.exec,
                &conn,
                "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname",
            )?;
            let mut v = vec![tools::pg_globals(inst)];
            v.extend(
                dbs.iter()
                    .filter_map(|r| r.first())
                    .map(|d| tools::pg_dump(inst, d)),
            );
            v
        }
        (Engine::Postgresql, Kind::Physical) => vec![tools::pg_basebackup(inst)],
        (_, Kind::Logical) => vec![tools::mysql_dump(
            inst,
            env.host.path("/usr/bin/mariadb-dump").exists(),
        )],
        (_, Kind::Physical) => {
            if inst.engine == Engine::Mysql {
                return Err(anyhow!(
                    "physical backups of MySQL need Percona XtraBackup, which dbhost does not drive; use --kind logical"
                ));
            }
            vec![tools::mariabackup(inst, tmp, opts.parallel)]
        }
    })
}

/// Version and a position of the running server (queries; positions are best effort).
fn server_facts(env: &Env<'_>, inst: &Instance) -> Result<(String, BTreeMap<String, String>)> {
    let conn = Conn::local(inst);
    let (ver, pos) = match inst.engine {
        Engine::Postgresql => (
            "SHOW server_version",
            vec![("lsn", "SELECT pg_current_wal_lsn()")],
        ),
        Engine::Mariadb => (
            "SELECT VERSION()",
            vec![("gtid", "SELECT @@GLOBAL.gtid_current_pos")],
        ),
        Engine::Mysql => (
            "SELECT VERSION()",
            vec![("gtid", "SELECT @@GLOBAL.gtid_executed")],
        ),
    };
    let version = sql::scalar(env.host, env.exec, &conn, ver)
        .with_context(|| format!("asking {} for its version (is it running?)", inst.unit))?;
    let mut p = BTreeMap::new();
    for (k, q) in pos {
        match sql::scalar(env.host, env.exec, &conn, q) {
            Ok(v) if !v.is_empty() => {
                p.insert(k.to_string(), v);
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("position {k}: {e:#}"),
        }
    }
    Ok((version, p))
}

fn object_name(id: &str, s: &Stream, enc: &Encoding) -> String {
    format!(
        "{id}/{}{}{}",
        s.name,
        enc.compression.suffix(),
        if enc.recipients.is_empty() {
            ""
        } else {
            ".age"
        }
    )
}

/// Take a backup of `inst`. Returns the manifest that was written.
pub fn take(env: &Env<'_>, inst: &Instance, opts: &Options, say: Say<'_>) -> Result<Manifest> {
    super::codec::parse_recipients(&opts.encoding.recipients)?;
    clean_partials(env, say)?;
    let (version, start_pos) = server_facts(env, inst)?;
    let source_bytes = datadir_bytes(env.host, inst).unwrap_or(0);
    let expected = opts.expected.unwrap_or(source_bytes);
    let part = parts::part_size(env.store.service.limits(), expected)?;
    let started_at = (env.now)();
    let id = manifest::new_id(started_at, inst.engine.name(), opts.kind);
    let started = Started {
        id: id.clone(),
        host: env.hostname.clone(),
        started: manifest::rfc3339(started_at),
        dbhost_version: env!("CARGO_PKG_VERSION").into(),
    };
    env.rt.block_on(put_small(
        env.store,
        &format!("{id}/{}", manifest::STARTED),
        serde_json::to_vec_pretty(&started)?,
    ))?;
    say(format!(
        "backup {id}: {} {} {version} of {} ({}), parts of {} to {}",
        opts.kind.as_str(),
        inst.engine.name(),
        inst.datadir.display(),
        human(source_bytes),
        human(part),
        env.store.name
    ));
    let tmp = env.host.state_dir().join("tmp").join(&id);
    let res = (|| {
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let list = streams(env, inst, opts, &tmp)?;
        let objects = run_streams(
            env,
            &id,
            &list,
            opts,
            Parts {
                size: part,
                concurrency: opts.concurrency,
            },
            say,
        )?;
        let (_, end_pos) = server_facts(env, inst)?;
        Ok::<_, anyhow::Error>((objects, end_pos))
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    let (objects, end_query) = match res {
        Ok(r) => r,
        Err(e) => {
            if let Err(c) = env.rt.block_on(catalog::delete(env.store, &id)) {
                tracing::warn!("removing the failed backup {id}: {c:#}");
            }
            return Err(e.context(format!(
                "backup {id} failed; nothing was recorded as a backup"
            )));
        }
    };
    // The server's own position when the run began and ended, and the precise one the physical
    // tool reports for the copy (`backup_lsn`, `backup_gtid`, ...).
    let mut start = start_pos;
    let mut end = end_query;
    for (o, stderr) in &objects {
        let (s, e) = tools::positions(o.format, stderr);
        for (k, v) in s {
            start.insert(format!("backup_{k}"), v);
        }
        for (k, v) in e {
            end.insert(format!("backup_{k}"), v);
        }
    }
    let m = Manifest {
        schema: manifest::SCHEMA,
        id: id.clone(),
        dbhost_version: env!("CARGO_PKG_VERSION").into(),
        engine: inst.engine.name().into(),
        engine_version: version,
        kind: opts.kind,
        host: env.hostname.clone(),
        started: manifest::rfc3339(started_at),
        finished: manifest::rfc3339((env.now)()),
        compression: opts.encoding.compression,
        encryption: (!opts.encoding.recipients.is_empty()).then(|| Encryption {
            format: "age".into(),
            recipients: opts.encoding.recipients.clone(),
        }),
        source_bytes,
        part_size: part,
        objects: objects.into_iter().map(|(o, _)| o).collect(),
        start,
        end,
    };
    env.rt.block_on(put_small(
        env.store,
        &format!("{id}/{}", manifest::MANIFEST),
        serde_json::to_vec_pretty(&m)?,
    ))?;
    say(format!(
        "backup {id} complete: {} objects, {} stored ({} plain)",
        m.objects.len(),
        human(m.stored_bytes()),
        human(m.plain_bytes())
    ));
    Ok(m)
}

/// Upload every stream, `opts.parallel` at a time for PostgreSQL's per-database dumps (the
/// first stream, globals, runs alone before them).
fn run_streams(
    env: &Env<'_>,
    id: &str,
    list: &[Stream],
    opts: &Options,
    parts: Parts,
    say: Say<'_>,
) -> Result<Vec<(Object, String)>> {
    let one = |s: &Stream| -> Result<(Object, String)> {
        let name = object_name(id, s, &opts.encoding);
        let up = pipe::upload_command(
            env.rt,
            env.exec,
            &s.cmd,
            env.store,
            &name,
            &opts.encoding,
            parts,
        )?;
        Ok((
            Object {
                stored: up.stored,
                format: s.format,
                plain_bytes: up.plain_bytes,
                plain_sha256: up.plain_sha256,
                database: s.database.clone(),
                tool: s.cmd.display(),
            },
            up.stderr,
        ))
    };
    let width = if list.iter().filter(|s| s.database.is_some()).count() > 1 {
        opts.parallel.max(1) as usize
    } else {
        1
    };
    let mut out = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        // Globals (no database) go alone; per-database dumps go `width` at a time.
        let n = if rest[0].database.is_none() {
            1
        } else {
            width.min(rest.len())
        };
        let (batch, tail) = rest.split_at(n);
        rest = tail;
        let results: Vec<Result<(Object, String)>> = std::thread::scope(|sc| {
            let hs: Vec<_> = batch.iter().map(|s| sc.spawn(|| one(s))).collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a stream thread panicked")))
                })
                .collect()
        });
        for r in results {
            let (o, e) = r?;
            say(format!(
                "  {}: {} stored, {} plain",
                o.stored.name,
                human(o.stored.bytes),
                human(o.plain_bytes)
            ));
            out.push((o, e));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
