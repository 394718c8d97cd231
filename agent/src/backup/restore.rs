//! `dbhost restore`: a backup back into a directory (scratch) or onto this host's server.
//!
//! Every object's SHA-256 is checked before its bytes can reach a datadir: physical backups are
//! unpacked into a staging directory beside the datadir (same filesystem) and swapped in only
//! when every hash matched and the engine prepared it; logical dumps are downloaded (still
//! compressed) into a staging file, checked, then replayed. A failure — a bad hash, a full
//! disk — removes the staging and leaves the server and its datadir as they were. A server that
//! holds data is refused unless `--force`; then its old datadir is kept, renamed, never deleted.

use super::codec::{self, Compression};
use super::manifest::{Format, Kind, Manifest, Object};
use super::object;
use super::parts::human;
use super::pipe::{self, Decoding};
use super::sql::{self, Conn};
use super::Env;
use crate::db::engine::{self, Engine, Instance, Wait};
use crate::exit::Failure;
use crate::host::{CommandSpec, Exec, Pipe};
use anyhow::{anyhow, bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Progress lines for the operator.
pub type Say<'a> = &'a mut dyn FnMut(String);

/// The keys a backup may need.
pub struct Keys<'a> {
    pub identities: &'a [age::x25519::Identity],
}

fn decoding<'a>(m: &Manifest, keys: &Keys<'a>) -> Decoding<'a> {
    Decoding {
        compression: m.compression,
        encrypted: m.encryption.is_some(),
        identities: keys.identities,
    }
}

/// The plain name of an object (`data.sql.zst.age` → `data.sql`).
pub fn plain_name(o: &Object, c: Compression) -> String {
    let base = o.stored.name.rsplit('/').next().unwrap_or(&o.stored.name);
    let base = base.strip_suffix(".age").unwrap_or(base);
    base.strip_suffix(c.suffix()).unwrap_or(base).to_string()
}

/// Stream one object, decoded, into the stdin of `cmd`; both the hashes and the program's exit
/// status must be good.
pub(crate) fn object_into_program(
    env: &Env<'_>,
    m: &Manifest,
    o: &Object,
    keys: &Keys<'_>,
    cmd: &CommandSpec,
) -> Result<String> {
    let mut child = env.exec.spawn(cmd, Pipe::In)?;
    let mut stdin = child.stdin.take().expect("Pipe::In gives stdin");
    let kill = child.killer();
    let r = pipe::download_into(
        env.rt,
        env.store,
        &o.stored,
        &decoding(m, keys),
        (o.plain_bytes, &o.plain_sha256),
        &mut stdin,
    );
    drop(stdin);
    if r.is_err() {
        kill();
    }
    let out = child.wait()?;
    r?;
    if out.status != 0 {
        bail!(
            "`{}` exited with status {} while reading {}: {}",
            cmd.display(),
            out.status,
            o.stored.name,
            out.stderr.trim()
        );
    }
    Ok(out.stderr)
}

/// Stream one object, decoded, into a file.
fn object_into_file(
    env: &Env<'_>,
    m: &Manifest,
    o: &Object,
    keys: &Keys<'_>,
    path: &Path,
) -> Result<()> {
    let mut f =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    pipe::download_into(
        env.rt,
        env.store,
        &o.stored,
        &decoding(m, keys),
        (o.plain_bytes, &o.plain_sha256),
        &mut f,
    )?;
    f.sync_all()
        .with_context(|| format!("writing {}", path.display()))
}

/// Unpack a physical backup (every object) into `dir`, which must not exist yet; on failure
/// `dir` is removed. MariaDB's copy is prepared (`mariabackup --prepare`) and ready to serve.
pub fn unpack_physical(
    env: &Env<'_>,
    m: &Manifest,
    keys: &Keys<'_>,
    dir: &Path,
    say: Say<'_>,
) -> Result<()> {
    let res = (|| {
        std::fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        let in_host = env.host.unroot(dir);
        for o in &m.objects {
            let cmd = match o.format {
                Format::Xbstream => CommandSpec::new("mbstream")
                    .args(["-x", "-C"])
                    .arg(in_host.display().to_string()),
                Format::Tar => CommandSpec::new("tar")
                    .args(["-x", "-f", "-", "-C"])
                    .arg(in_host.display().to_string()),
                f => bail!("{}: a physical backup does not hold {f:?}", o.stored.name),
            };
            object_into_program(env, m, o, keys, &cmd)?;
            say(format!(
                "  {}: {} checked and unpacked",
                o.stored.name,
                human(o.stored.bytes)
            ));
        }
        if m.objects.iter().any(|o| o.format == Format::Xbstream) {
            let out = env.exec.output(
                &CommandSpec::new("mariabackup")
                    .arg("--prepare")
                    .arg(format!("--target-dir={}", in_host.display())),
            )?;
            if out.status != 0 {
                bail!(
                    "mariabackup --prepare failed (status {}): {}",
                    out.status,
                    tail(&out.stderr)
                );
            }
            say("  prepared (mariabackup --prepare)".into());
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    res
}

/// The last lines of a program's stderr, for one-line errors.
pub fn tail(s: &str) -> String {
    let v: Vec<&str> = s.trim().lines().rev().take(4).collect();
    v.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Restore into a scratch directory: physical → a ready datadir at `dir`; logical → the plain
/// dump files in `dir` (`data.sql`, `globals.sql`, `db-NAME.pgdump`).
pub fn to_dir(
    env: &Env<'_>,
    m: &Manifest,
    keys: &Keys<'_>,
    dir: &Path,
    say: Say<'_>,
) -> Result<()> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Failure::Refused(format!(
            "{} exists and is not empty; restore into a new directory",
            dir.display()
        ))
        .into());
    }
    let _ = std::fs::remove_dir(dir);
    let staging = sibling(dir, &format!("dbhost-restore-{}", m.id));
    match m.kind {
        Kind::Physical => unpack_physical(env, m, keys, &staging, say)?,
        Kind::Logical => {
            std::fs::create_dir(&staging)
                .with_context(|| format!("creating {}", staging.display()))?;
            for o in &m.objects {
                let p = staging.join(plain_name(o, m.compression));
                if let Err(e) = object_into_file(env, m, o, keys, &p) {
                    let _ = std::fs::remove_dir_all(&staging);
                    return Err(e);
                }
                say(format!(
                    "  {}: checked, {} written",
                    o.stored.name,
                    human(o.plain_bytes)
                ));
            }
        }
    }
    std::fs::rename(&staging, dir)
        .with_context(|| format!("renaming {} to {}", staging.display(), dir.display()))
}

/// `PARENT/.NAME-<tag>` beside `p` (same filesystem, so renames are atomic).
fn sibling(p: &Path, tag: &str) -> PathBuf {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    p.with_file_name(format!(".{name}.{tag}"))
}

/// User data on a server: MariaDB/MySQL schemas beyond the system ones; PostgreSQL databases
/// beyond the defaults, or tables in `postgres`. Returns what was found.
pub fn user_data(host: &crate::host::Host, exec: &dyn Exec, conn: &Conn) -> Result<Vec<String>> {
    Ok(match conn.engine() {
        Engine::Postgresql => {
            let mut v: Vec<String> = sql::query(host, exec, conn, "SELECT datname FROM pg_database WHERE datname NOT IN ('postgres','template0','template1') ORDER BY 1")?
                .into_iter()
                .filter_map(|r| r.into_iter().next())
                .map(|d| format!("database {d}"))
                .collect();
            let n = sql::scalar(host, exec, conn, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%'")?;
            if n != "0" {
                v.push(format!("{n} tables in database postgres"));
            }
            v
        }
        _ => sql::query(host, exec, conn, "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN ('mysql','information_schema','performance_schema','sys') ORDER BY 1")?
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .map(|d| format!("database {d}"))
            .collect(),
    })
}

/// What a restore onto the host did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    pub id: String,
    pub datadir: PathBuf,
    /// Physical with `--force`: where the previous datadir was kept.
    pub previous_datadir: Option<PathBuf>,
}

/// Restore onto this host's running server (`apply` put it on the data disks).
pub fn to_host(
    env: &Env<'_>,
    inst: &Instance,
    m: &Manifest,
    keys: &Keys<'_>,
    force: bool,
    say: Say<'_>,
) -> Result<Restored> {
    if m.engine != inst.engine.name() && !(m.engine == "mysql" && inst.engine == Engine::Mariadb) {
        return Err(Failure::Refused(format!(
            "backup {} is of {} but this host runs {}",
            m.id,
            m.engine,
            inst.engine.name()
        ))
        .into());
    }
    let conn = Conn::local(inst);
    let found = user_data(env.host, env.exec, &conn)
        .with_context(|| format!("asking {} what it holds (is it running?)", inst.unit))?;
    if !found.is_empty() && !force {
        return Err(Failure::Refused(format!(
            "{} holds data ({}); refusing to restore over it (pass --force to replace it; a physical restore keeps the old datadir)",
            inst.unit,
            found.join(", ")
        ))
        .into());
    }
    match m.kind {
        Kind::Physical => physical_to_host(env, inst, m, keys, say),
        Kind::Logical => logical_to_host(env, inst, m, keys, force && !found.is_empty(), say),
    }
}

/// Free bytes on the filesystem holding `p`.
fn free_bytes(p: &Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(p).ok()?;
    Some(s.blocks_available() as u64 * s.fragment_size() as u64)
}

fn check_room(dir: &Path, need: u64, what: &str) -> Result<()> {
    if let Some(free) = free_bytes(dir) {
        if free < need {
            return Err(Failure::Refused(format!(
                "{what} needs about {} but {} has {} free; nothing was changed",
                human(need),
                dir.display(),
                human(free)
            ))
            .into());
        }
    }
    Ok(())
}

fn physical_to_host(
    env: &Env<'_>,
    inst: &Instance,
    m: &Manifest,
    keys: &Keys<'_>,
    say: Say<'_>,
) -> Result<Restored> {
    if inst.engine == Engine::Postgresql {
        let want = m.engine_version.split('.').next().unwrap_or("");
        let have = inst.pg.as_ref().map(|p| p.version.as_str()).unwrap_or("");
        if want != have {
            return Err(Failure::Refused(format!("backup {} is of PostgreSQL {want}; a physical restore needs the same major version, this host runs {have}", m.id)).into());
        }
    }
    let datadir = env.host.path(&inst.datadir);
    let parent = datadir
        .parent()
        .ok_or_else(|| anyhow!("datadir {} has no parent", inst.datadir.display()))?;
    check_room(
        parent,
        m.plain_bytes(),
        &format!("restoring backup {}", m.id),
    )?;
    let staging = sibling(&datadir, &format!("dbhost-restore-{}", m.id));
    let _ = std::fs::remove_dir_all(&staging);
    unpack_physical(env, m, keys, &staging, say)
        .map_err(|e| e.context("the datadir was not touched"))?;
    let (user, mode) = if inst.engine == Engine::Postgresql {
        ("postgres", "0700")
    } else {
        ("mysql", "0750")
    };
    let st = env.host.unroot(&staging);
    let owned = env
        .exec
        .run(
            &CommandSpec::new("chown")
                .args(["-R", &format!("{user}:{user}")])
                .arg(st.display().to_string()),
        )
        .and_then(|_| {
            env.exec.run(
                &CommandSpec::new("chmod")
                    .arg(mode)
                    .arg(st.display().to_string()),
            )
        });
    if let Err(e) = owned {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e.context("the datadir was not touched"));
    }
    let w = Wait::default();
    engine::stop(env.exec, &inst.unit, &w)?;
    let old = sibling(&datadir, &format!("dbhost-old-{}", (env.now)()));
    let swap = std::fs::rename(&datadir, &old)
        .with_context(|| format!("moving {} aside", inst.datadir.display()))
        .and_then(|_| {
            std::fs::rename(&staging, &datadir)
                .with_context(|| format!("moving the restored copy to {}", inst.datadir.display()))
        });
    let started = swap.and_then(|_| {
        engine::start(env.exec, &inst.unit, &w)?;
        engine::health(env.host, env.exec, inst, None, &w)
    });
    if let Err(e) = started {
        // Put the previous datadir back and start it again; keep the restored copy for a look.
        let _ = engine::stop(env.exec, &inst.unit, &w);
        if old.exists() {
            if datadir.exists() {
                let _ = std::fs::rename(&datadir, &staging);
            }
            let _ = std::fs::rename(&old, &datadir);
        }
        let _ = engine::start(env.exec, &inst.unit, &w);
        return Err(e.context(format!(
            "restoring {} failed; the previous datadir is back in place (the restored copy is at {})",
            m.id,
            env.host.unroot(&staging).display()
        )));
    }
    say(format!(
        "  {} serves the restored datadir; the previous one is kept at {}",
        inst.unit,
        env.host.unroot(&old).display()
    ));
    Ok(Restored {
        id: m.id.clone(),
        datadir: inst.datadir.clone(),
        previous_datadir: Some(env.host.unroot(&old)),
    })
}

fn logical_to_host(
    env: &Env<'_>,
    inst: &Instance,
    m: &Manifest,
    keys: &Keys<'_>,
    replacing: bool,
    say: Say<'_>,
) -> Result<Restored> {
    let datadir = env.host.path(&inst.datadir);
    let parent = datadir.parent().unwrap_or(&datadir).to_path_buf();
    // The dump's rows become table files of about the dump's size.
    check_room(
        &parent,
        m.plain_bytes() + m.stored_bytes(),
        &format!("restoring backup {}", m.id),
    )?;
    let staging = sibling(&datadir, &format!("dbhost-restore-{}", m.id));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let res = (|| {
        // Stage the stored bytes and check their hashes before anything reaches the server.
        let mut staged = Vec::new();
        for o in &m.objects {
            let p = staging.join(o.stored.name.rsplit('/').next().unwrap_or("object"));
            let mut f =
                std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?;
            env.rt
                .block_on(object::read_verified(env.store, &o.stored, &mut |c| {
                    f.write_all(c)
                        .with_context(|| format!("writing {}", p.display()))
                }))
                .context("the server was not touched")?;
            staged.push((o, p));
        }
        say(format!(
            "  {} objects checked ({} staged)",
            m.objects.len(),
            human(m.stored_bytes())
        ));
        let conn = Conn::local(inst);
        let before = user_data(env.host, env.exec, &conn)?;
        let replayed = replay(env, inst, m, keys, &staged, replacing);
        if let Err(e) = replayed {
            if !replacing {
                // The server held no user data before: drop what the partial replay created.
                for d in user_data(env.host, env.exec, &conn).unwrap_or_default() {
                    if before.contains(&d) {
                        continue;
                    }
                    if let Some(name) = d.strip_prefix("database ") {
                        let q = match inst.engine {
                            Engine::Postgresql => {
                                format!("DROP DATABASE IF EXISTS \"{}\"", name.replace('"', "\"\""))
                            }
                            _ => format!("DROP DATABASE IF EXISTS `{}`", name.replace('`', "``")),
                        };
                        let _ = sql::query(env.host, env.exec, &conn, &q);
                    }
                }
            }
            return Err(e);
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    res?;
    Ok(Restored {
        id: m.id.clone(),
        datadir: inst.datadir.clone(),
        previous_datadir: None,
    })
}

/// Replay staged logical objects into the server, decoding from the staged files.
fn replay(
    env: &Env<'_>,
    inst: &Instance,
    m: &Manifest,
    keys: &Keys<'_>,
    staged: &[(&Object, PathBuf)],
    replacing: bool,
) -> Result<()> {
    for (o, p) in staged {
        let cmd = replay_command(&Conn::local(inst), o, replacing);
        let mut child = env.exec.spawn(&cmd, Pipe::In)?;
        let mut stdin = child.stdin.take().expect("Pipe::In gives stdin");
        let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
        let fed = (|| {
            let mut r = codec::decoder(
                m.compression,
                m.encryption.is_some(),
                keys.identities,
                Box::new(f),
            )?;
            let mut t = codec::Tally::new(&mut stdin);
            std::io::copy(&mut r, &mut t)
                .with_context(|| format!("replaying {}", o.stored.name))?;
            let (_, n, h) = t.into_parts();
            if n != o.plain_bytes || h != o.plain_sha256 {
                bail!(
                    "{} decodes to {n} bytes with sha256 {h}, not the manifest's {} / {}",
                    o.stored.name,
                    o.plain_bytes,
                    o.plain_sha256
                );
            }
            Ok(())
        })();
        drop(stdin);
        if fed.is_err() {
            (child.killer())();
        }
        let out = child.wait()?;
        fed?;
        if out.status != 0 {
            bail!(
                "`{}` failed (status {}) replaying {}: {}",
                cmd.display(),
                out.status,
                o.stored.name,
                tail(&out.stderr)
            );
        }
    }
    if inst.engine != Engine::Postgresql {
        sql::query(env.host, env.exec, &Conn::local(inst), "FLUSH PRIVILEGES")?;
    }
    Ok(())
}

/// The client that replays one logical object into a server: the host's (`Conn::Local`) or a
/// throwaway one (`Conn::Scratch`). PostgreSQL: roles and tablespaces through psql (some exist
/// already, e.g. `postgres`: psql goes on past those), each database through pg_restore
/// (`--create` but for `postgres`, which exists; `replacing`: drop what is there first).
pub(crate) fn replay_command(conn: &Conn, o: &Object, replacing: bool) -> CommandSpec {
    let (engine, socket, port) = match conn {
        Conn::Local(i, _) => (
            i.engine,
            i.socket.clone(),
            i.pg.as_ref().map_or(5432, |p| p.port),
        ),
        Conn::Scratch {
            engine,
            socket,
            port,
            ..
        } => (*engine, Some(socket.clone()), *port),
    };
    if engine != Engine::Postgresql {
        let mut c = CommandSpec::new(if engine == Engine::Mariadb {
            "mariadb"
        } else {
            "mysql"
        });
        if let Some(s) = socket {
            c = c.arg(format!("--socket={}", s.display()));
        }
        return c;
    }
    let prog = if o.format == Format::Sql {
        "psql"
    } else {
        "pg_restore"
    };
    let mut a: Vec<String> = vec![prog.into(), "-p".into(), port.to_string()];
    if let (Conn::Scratch { .. }, Some(dir)) = (conn, &socket) {
        a.extend(["-h".into(), dir.display().to_string()]);
    }
    if o.format == Format::Sql {
        a.extend(["-X", "-q"].map(String::from));
    } else {
        a.push("--exit-on-error".into());
        if o.database.as_deref() != Some("postgres") {
            a.push("--create".into());
        }
        if replacing {
            a.extend(["--clean", "--if-exists"].map(String::from));
        }
    }
    a.extend(["-d", "postgres"].map(String::from));
    CommandSpec::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(a)
}

/// What `apply`'s `restore-on-apply` finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnApply {
    /// The server holds data: nothing is restored over it.
    HasData(String),
    /// No backup matches (a first deployment): nothing to restore.
    NoBackup(String),
    /// This backup will be restored.
    Restore(String),
}

/// Everything `restore-on-apply` needs, opened from the profile.
pub struct FromProfile {
    pub inst: Instance,
    pub store: super::dest::Store,
    pub ids: Vec<age::x25519::Identity>,
}

pub fn from_profile(
    host: &crate::host::Host,
    exec: &dyn Exec,
    p: &crate::profile::Profile,
) -> Result<FromProfile> {
    let b = p
        .backup
        .as_ref()
        .ok_or_else(|| anyhow!("the profile has no [backup] section"))?;
    let engine = crate::apply::db::engine_of(&p.database.engine)
        .ok_or_else(|| anyhow!("the profile names no database engine"))?;
    let inst = engine::discover(host, exec, engine)?;
    let d = super::open::destination(b)?;
    let store = super::open::store(host, &d, p.disks.imds_endpoint.as_deref())?;
    let ids = super::open::identities(host, b.identity_file.as_deref().map(Path::new))?;
    Ok(FromProfile { inst, store, ids })
}

/// Look: does the server hold data, and which backup would be restored?
pub fn on_apply_look(
    env: &Env<'_>,
    inst: &Instance,
    which: &str,
) -> Result<(OnApply, Option<super::catalog::Entry>)> {
    let found = user_data(env.host, env.exec, &Conn::local(inst))
        .with_context(|| format!("asking {} what it holds", inst.unit))?;
    if !found.is_empty() {
        return Ok((OnApply::HasData(found.join(", ")), None));
    }
    let entries = env.rt.block_on(super::catalog::scan(env.store))?;
    match select(&entries, which) {
        Ok(e) => Ok((OnApply::Restore(e.id.clone()), Some(e.clone()))),
        Err(e) => Ok((OnApply::NoBackup(format!("{}: {e}", env.store.name)), None)),
    }
}

/// Pick a backup: an id, `latest` (newest complete) or `latest-verified`.
pub fn select<'a>(
    entries: &'a [super::catalog::Entry],
    which: &str,
) -> Result<&'a super::catalog::Entry> {
    let mut complete = entries.iter().filter(|e| e.complete());
    let found = match which {
        "latest" => complete.next_back(),
        "latest-verified" => complete.rfind(|e| e.verified_ok()),
        id => entries.iter().find(|e| e.id == id),
    };
    match found {
        Some(e) if e.complete() => Ok(e),
        Some(e) => Err(Failure::Refused(format!(
            "{} is not a complete backup (no manifest{})",
            e.id,
            e.problem
                .as_ref()
                .map(|p| format!(": {p}"))
                .unwrap_or_default()
        ))
        .into()),
        None => Err(Failure::Refused(format!("no backup matches {which:?}")).into()),
    }
}

#[cfg(test)]
mod tests;
