//! What both engines' halves do the same way: the fence record, stopping/masking a source unit
//! and undoing it, setting the previous datadir aside and putting it back, the closing notes.

use super::{now_ms, Ctx, FenceRecord, Saver, Settings, State};
use crate::db::engine;
use crate::exit::Failure;
use crate::host::CommandSpec;
use crate::profile::Fence;
use anyhow::{Context, Result};
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

/// The check that this host's server holds no databases of its own (a migration imports into a
/// fresh server and never overwrites data).
pub fn check_empty(p: &mut super::Plan, dbs: &[String]) {
    p.check(
        "this host is empty",
        dbs.is_empty(),
        if dbs.is_empty() {
            "the local server holds no databases of its own".to_string()
        } else {
            format!(
                "the local server already holds databases ({}); migrate imports into a fresh \
                 server and never overwrites data",
                dbs.join(", ")
            )
        },
    );
}

/// The first column of every row.
pub fn column(r: &crate::db::client::Rows) -> Vec<String> {
    r.rows.iter().filter_map(|x| x[0].clone()).collect()
}

/// The kind of fence the settings ask for: "read-only", "stop-unit" or "stop-command".
pub fn fence_kind(s: &Settings) -> &'static str {
    match (s.fence, &s.source_unit) {
        (Fence::ReadOnly, _) => "read-only",
        (_, Some(_)) => "stop-unit",
        _ => "stop-command",
    }
}

/// Record the fence in the journal before putting it up (what `unfence` and `abort` undo).
pub fn record_fence(cx: &mut Ctx, s: &Settings, st: &mut State, save: &mut Saver) -> Result<()> {
    if st.fence.is_some() {
        return Ok(());
    }
    let mut f = FenceRecord {
        kind: fence_kind(s).into(),
        started_ms: now_ms(),
        ..FenceRecord::default()
    };
    if let Some(u) = &s.source_unit {
        f.masked = vec![u.clone()];
        f.sockets = engine::activating_sockets(cx.exec, u);
    }
    st.fence = Some(f);
    save(st)
}

/// Run the user's stop command (fence = stop, source elsewhere).
pub fn run_stop_command(cx: &mut Ctx, s: &Settings) -> Result<()> {
    let argv = s.stop_command.clone().unwrap_or_default();
    cx.exec.run(
        &CommandSpec::new(&argv[0])
            .args(argv[1..].iter().cloned())
            .timeout(Duration::from_secs(300)),
    )?;
    Ok(())
}

/// The drop-in that keeps a fenced unit from starting again, even after a reboot: written right
/// after the stop (a file, no daemon-reload inside the downtime window; systemd reads it at the
/// next boot). The mask follows after the promotion.
pub fn fence_dropin(unit: &str) -> PathBuf {
    PathBuf::from(format!("/etc/systemd/system/{unit}.d/zz-dbhost-fence.conf"))
}

const FENCE_DROPIN: &str = "# Written by dbhost migrate: this server's data moved to another host \
     (a cutover); it must not start again.\n# `dbhost migrate abort` removes this file before a \
     promotion; afterwards remove it yourself only to run this server on its own.\n[Unit]\n\
     ConditionPathExists=/nonexistent/dbhost-migrate-fenced\n";

/// Stop the source's unit with its socket units in one call, then make the stop durable. Not
/// masked first: a masked unit loses its own stop settings (ExecStop, KillSignal, KillMode), and
/// PostgreSQL killed with the default SIGTERM to every process ends its WAL senders before they
/// sent the shutdown checkpoint to the replica.
pub fn stop_fenced(cx: &mut Ctx, f: &FenceRecord) -> Result<()> {
    let mut stop = vec!["stop".to_string()];
    stop.extend(f.sockets.iter().cloned());
    stop.extend(f.masked.iter().cloned());
    cx.exec.run(&CommandSpec::new("systemctl").args(stop))?;
    for u in &f.masked {
        let p = cx.host.path(fence_dropin(u));
        crate::host::atomic_write(&p, FENCE_DROPIN.as_bytes(), 0o644)
            .with_context(|| format!("writing {}", p.display()))?;
        if engine::is_active(cx.exec, u) {
            anyhow::bail!("{u} is still active after `systemctl stop`");
        }
    }
    Ok(())
}

/// After the promotion: mask the stopped source (runtime too; costs a daemon-reload).
pub fn mask_fenced(cx: &mut Ctx, f: &FenceRecord) -> Result<()> {
    if f.kind != "stop-unit" {
        return Ok(());
    }
    let mut mask = vec!["mask".to_string()];
    mask.extend(f.masked.iter().cloned());
    mask.extend(f.sockets.iter().cloned());
    cx.exec.run(&CommandSpec::new("systemctl").args(mask))?;
    Ok(())
}

/// Undo a stop fence: remove the drop-in, unmask, start the unit and its sockets. A stop
/// command cannot be undone by dbhost.
pub fn unfence_stop(cx: &mut Ctx, s: &Settings, f: &FenceRecord) -> Result<()> {
    if f.kind != "stop-unit" {
        return Err(Failure::Refused(format!(
            "the source was stopped by {:?}: start it again yourself",
            s.stop_command.clone().unwrap_or_default().join(" ")
        ))
        .into());
    }
    for u in &f.masked {
        let p = cx.host.path(fence_dropin(u));
        if p.exists() {
            fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    let mut unmask = vec!["unmask".to_string()];
    unmask.extend(f.masked.iter().cloned());
    unmask.extend(f.sockets.iter().cloned());
    cx.exec.run(&CommandSpec::new("systemctl").args(unmask))?;
    cx.exec
        .run(&CommandSpec::new("systemctl").arg("daemon-reload"))?;
    for u in f.sockets.iter().chain(&f.masked) {
        engine::start(cx.exec, u, &cx.wait)?;
    }
    Ok(())
}

fn set_aside_path(st: &State) -> PathBuf {
    let name = st
        .target_datadir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "datadir".into());
    st.target_datadir.with_file_name(format!(
        "{name}.dbhost-pre-migrate-{}",
        crate::db::relocate::stamp_now()
    ))
}

/// Make room for the copy at the target: the datadir there is renamed aside (recorded first),
/// or, when that already happened, what is there is an interrupted start's partial copy and
/// goes. Leaves the target absent.
pub fn set_aside(cx: &mut Ctx, st: &mut State, save: &mut Saver) -> Result<()> {
    let target = cx.host.path(&st.target_datadir);
    if st.set_aside.is_none() {
        st.set_aside = Some(set_aside_path(st));
        save(st)?;
    }
    let aside_abs = st.set_aside.clone().expect("set above");
    let aside = cx.host.path(&aside_abs);
    if target.exists() && !aside.exists() {
        fs::rename(&target, &aside)
            .with_context(|| format!("renaming {} to {}", target.display(), aside.display()))?;
        cx.note(format!(
            "kept the previous datadir as {}",
            aside_abs.display()
        ));
    } else if target.exists() {
        fs::remove_dir_all(&target)
            .with_context(|| format!("removing the partial copy {}", target.display()))?;
        cx.note("removed the partial copy of an interrupted start");
    }
    Ok(())
}

/// `abort`: remove the copy and put the datadir set aside back.
pub fn restore_set_aside(cx: &mut Ctx, st: &State, done: &mut Vec<String>) -> Result<()> {
    let Some(aside) = &st.set_aside else {
        return Ok(());
    };
    let ha = cx.host.path(aside);
    let target = cx.host.path(&st.target_datadir);
    if !ha.exists() {
        return Ok(());
    }
    if target.exists() {
        fs::remove_dir_all(&target)
            .with_context(|| format!("removing the copy {}", target.display()))?;
        done.push(format!(
            "removed the copy at {}",
            st.target_datadir.display()
        ));
    }
    fs::rename(&ha, &target)
        .with_context(|| format!("renaming {} back to {}", ha.display(), target.display()))?;
    done.push(format!(
        "put the previous datadir back at {}",
        st.target_datadir.display()
    ));
    Ok(())
}

/// `finalize`: remove the datadir set aside at start; say what happens to the source.
pub fn finalize_common(cx: &mut Ctx, st: &State, done: &mut Vec<String>) -> Result<()> {
    if let Some(a) = &st.set_aside {
        let hp = cx.host.path(a);
        if hp.exists() {
            fs::remove_dir_all(&hp).with_context(|| format!("removing {}", a.display()))?;
            done.push(format!(
                "removed the datadir set aside at start ({})",
                a.display()
            ));
        }
    }
    if let Some(f) = &st.fence {
        done.push(match f.kind.as_str() {
            "stop-unit" => format!(
                "the source unit {} stays stopped and masked; its data is untouched",
                f.masked.join(" ")
            ),
            "read-only" => "the source stays fenced (read-only); its data is untouched".into(),
            _ => "the source was stopped; its data is untouched".into(),
        });
    }
    Ok(())
}

/// `abort`: stop the local server (the replica); start it again at the end if it ran before.
pub fn stop_local(cx: &mut Ctx, st: &State, done: &mut Vec<String>) -> Result<()> {
    if engine::stop(cx.exec, &st.instance.unit, &cx.wait)? {
        done.push(format!("stopped the replica ({})", st.instance.unit));
    }
    Ok(())
}

pub fn restart_local(cx: &mut Ctx, st: &State, done: &mut Vec<String>) -> Result<()> {
    if st.local_was_running && engine::start(cx.exec, &st.instance.unit, &cx.wait)? {
        done.push(format!("started {} again", st.instance.unit));
    }
    Ok(())
}
