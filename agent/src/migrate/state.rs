//! The migration's journal: `/var/lib/dbhost/migrate.json`, rewritten atomically before every
//! action a phase announces. A lost journal means "no migration": `plan` and `start` then look at
//! the system (a local server that already holds databases is refused, never overwritten).

use super::Settings;
use crate::db::engine::{Engine, Instance};
use crate::host::{atomic_write, Host};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Copying the source (pg_basebackup / mariabackup); re-running `start` redoes the copy.
    Cloning,
    /// The copy runs as a replica of the source.
    Replicating,
    /// Cutover: the fence is being put up.
    Fencing,
    /// The source is fenced; waiting for the replica to apply its last change.
    Fenced,
    /// The promotion was announced: from here on the fence stays up.
    Promoting,
    /// The new primary accepts writes; the hook has not succeeded yet.
    Promoted,
    /// Done: the new primary serves, the source is kept (fenced) until `finalize`.
    CutOver,
    Finalized,
    Aborting,
    Aborted,
}

impl Phase {
    /// A migration in this phase is under way (a new `start` must not begin another).
    pub fn is_active(self) -> bool {
        !matches!(self, Phase::Finalized | Phase::Aborted)
    }
    /// `abort` may undo it (nothing was promoted yet).
    pub fn abortable(self) -> bool {
        matches!(
            self,
            Phase::Cloning
                | Phase::Replicating
                | Phase::Fencing
                | Phase::Fenced
                | Phase::Aborting
                | Phase::Aborted
        )
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        f.write_str(&s)
    }
}

/// How the source was fenced (what `unfence` undoes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceRecord {
    /// "read-only", "stop-unit", "stop-command".
    pub kind: String,
    pub started_ms: u64,
    /// The position the replica must reach (LSN or GTID position).
    #[serde(default)]
    pub final_pos: Option<String>,
    /// Units masked on this host (stop-unit), unmasked by `abort`.
    #[serde(default)]
    pub masked: Vec<String>,
    /// Socket units stopped with the source unit.
    #[serde(default)]
    pub sockets: Vec<String>,
}

/// The hook's outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HookResult {
    pub argv: Vec<String>,
    pub ok: bool,
    /// Exit status; `None` when it could not start or was killed at its timeout.
    pub status: Option<i32>,
    pub seconds: f64,
    /// The end of its stdout and stderr.
    pub output: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CutoverRecord {
    pub started_ms: u64,
    /// When the promoted server was seen accepting writes.
    pub writable_ms: Option<u64>,
    /// From the fence to writable: the outage clients saw.
    pub downtime_ms: Option<u64>,
    pub hook: Option<HookResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub engine: Engine,
    /// The source as written and resolved (`old-db:5432 (10.0.0.5)`).
    pub source: String,
    pub target_datadir: PathBuf,
    /// The local installation (unit, configuration) as found at start.
    pub instance: Instance,
    pub phase: Phase,
    pub started_ms: u64,
    /// Where the datadir that was at the target (the fresh server dbhost apply placed there) is
    /// kept while the copy replaces it; `abort` puts it back, `finalize` removes it.
    #[serde(default)]
    pub set_aside: Option<PathBuf>,
    /// Was the local server running before (abort restores that).
    #[serde(default)]
    pub local_was_running: bool,
    /// PostgreSQL: the source's data directory (a source on this host: its control file tells
    /// the shutdown checkpoint).
    #[serde(default)]
    pub source_datadir: Option<PathBuf>,
    /// PostgreSQL: the passfile the replica's connection settings name.
    #[serde(default)]
    pub passfile: Option<PathBuf>,
    /// MariaDB: the GTID position the copy starts from, and the server_id given to it.
    #[serde(default)]
    pub gtid_start: Option<String>,
    #[serde(default)]
    pub server_id: Option<u32>,
    #[serde(default)]
    pub fence: Option<FenceRecord>,
    #[serde(default)]
    pub cutover: Option<CutoverRecord>,
    /// (ms, phase) of every transition.
    #[serde(default)]
    pub history: Vec<(u64, Phase)>,
}

impl State {
    pub fn new(s: &Settings, inst: Instance) -> State {
        State {
            version: 1,
            engine: s.engine,
            source: s.source.to_string(),
            target_datadir: s.target_datadir.clone(),
            instance: inst,
            phase: Phase::Cloning,
            started_ms: super::now_ms(),
            set_aside: None,
            local_was_running: false,
            source_datadir: None,
            passfile: None,
            gtid_start: None,
            server_id: None,
            fence: None,
            cutover: None,
            history: Vec::new(),
        }
    }

    pub fn set_phase(&mut self, p: Phase) {
        self.phase = p;
        self.history.push((super::now_ms(), p));
    }

    pub fn path(host: &Host) -> PathBuf {
        host.state_dir().join("migrate.json")
    }

    pub fn load(host: &Host) -> Result<Option<State>> {
        let p = Self::path(host);
        match std::fs::read(&p) {
            Ok(b) => Ok(Some(
                serde_json::from_slice(&b).with_context(|| format!("parsing {}", p.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    pub fn save(&self, host: &Host) -> Result<()> {
        let p = Self::path(host);
        atomic_write(&p, &serde_json::to_vec_pretty(self)?, 0o600)
            .with_context(|| format!("writing {}", p.display()))?;
        Ok(())
    }
}
