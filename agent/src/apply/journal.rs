//! The run journal: `/var/lib/dbhost/journal.json`, rewritten atomically after every step
//! transition, plus a copy per run under `/var/lib/dbhost/runs/`. It lets an interrupted run be
//! reported and resumed and gives `dbhost status` its "last run"; it is never the source of truth
//! about disks.

use crate::host::{atomic_write, Host};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Started,
    Changed,
    Unchanged,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: String,
    pub state: StepState,
    #[serde(default)]
    pub detail: String,
    pub at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub run_id: String,
    pub command: String,
    pub profile: Option<String>,
    pub started: u64,
    pub finished: Option<u64>,
    pub status: RunStatus,
    pub steps: Vec<StepRecord>,
    /// Data steps want to survive a crash (e.g. the datadir relocation state).
    #[serde(default)]
    pub data: BTreeMap<String, serde_json::Value>,
    /// When this run resumed an interrupted one, that run's id.
    #[serde(default)]
    pub resumed_from: Option<String>,
    #[serde(skip)]
    path: Option<PathBuf>,
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Journal {
    pub fn path(host: &Host) -> PathBuf {
        host.state_dir().join("journal.json")
    }

    /// The last journal written on this host, if any.
    pub fn load_last(host: &Host) -> Result<Option<Journal>> {
        let p = Self::path(host);
        match std::fs::read(&p) {
            Ok(b) => {
                let mut j: Journal = serde_json::from_slice(&b)
                    .with_context(|| format!("parsing journal {}", p.display()))?;
                j.path = Some(p);
                Ok(Some(j))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading journal {}", p.display())),
        }
    }

    /// Start a new run. If the previous run did not finish, carry its data forward (resume).
    pub fn begin(host: &Host, command: &str, profile: Option<String>) -> Result<Journal> {
        let prev = Self::load_last(host).ok().flatten();
        let started = now();
        let run_id = format!("{started}-{}", std::process::id());
        let (data, resumed_from) = match prev {
            Some(p) if p.status == RunStatus::Running || p.status == RunStatus::Failed => {
                (p.data.clone(), Some(p.run_id.clone()))
            }
            Some(p) => (p.data.clone(), None),
            None => (BTreeMap::new(), None),
        };
        let j = Journal {
            run_id,
            command: command.to_string(),
            profile,
            started,
            finished: None,
            status: RunStatus::Running,
            steps: Vec::new(),
            data,
            resumed_from,
            path: Some(Self::path(host)),
        };
        j.save()?;
        Ok(j)
    }

    /// An in-memory journal (dry runs, tests of steps).
    pub fn scratch() -> Journal {
        Journal {
            run_id: "scratch".into(),
            command: String::new(),
            profile: None,
            started: now(),
            finished: None,
            status: RunStatus::Running,
            steps: Vec::new(),
            data: BTreeMap::new(),
            resumed_from: None,
            path: None,
        }
    }

    pub fn save(&self) -> Result<()> {
        if let Some(p) = &self.path {
            let body = serde_json::to_vec_pretty(self)?;
            atomic_write(p, &body, 0o600)
                .with_context(|| format!("writing journal {}", p.display()))?;
            if let Some(dir) = p.parent() {
                let run = dir.join("runs").join(format!("{}.json", self.run_id));
                atomic_write(&run, &body, 0o600)
                    .with_context(|| format!("writing journal {}", run.display()))?;
            }
        }
        Ok(())
    }

    pub fn mark(&mut self, id: &str, state: StepState, detail: &str) -> Result<()> {
        let rec = StepRecord {
            id: id.to_string(),
            state,
            detail: detail.to_string(),
            at: now(),
        };
        match self.steps.iter_mut().find(|s| s.id == id) {
            Some(s) => *s = rec,
            None => self.steps.push(rec),
        }
        self.save()
    }

    pub fn set_data(&mut self, key: &str, v: serde_json::Value) -> Result<()> {
        self.data.insert(key.to_string(), v);
        self.save()
    }

    pub fn finish(&mut self, status: RunStatus) -> Result<()> {
        self.status = status;
        self.finished = Some(now());
        self.save()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_roundtrip_and_resume() {
        let d = tempfile::tempdir().unwrap();
        let host = Host::with_root(d.path());
        let mut j = Journal::begin(&host, "apply", Some("p.toml".into())).unwrap();
        j.mark("array.create", StepState::Started, "").unwrap();
        j.set_data("relocate", serde_json::json!({"phase": "pass1"}))
            .unwrap();
        // crash here: the next run resumes and keeps the data
        let j2 = Journal::begin(&host, "apply", Some("p.toml".into())).unwrap();
        assert_eq!(j2.resumed_from.as_deref(), Some(j.run_id.as_str()));
        assert_eq!(j2.data["relocate"]["phase"], "pass1");
        let last = Journal::load_last(&host).unwrap().unwrap();
        assert_eq!(last.run_id, j2.run_id);
        assert!(host
            .state_dir()
            .join("runs")
            .join(format!("{}.json", j.run_id))
            .exists());
    }

    #[test]
    fn finished_run_is_not_resumed() {
        let d = tempfile::tempdir().unwrap();
        let host = Host::with_root(d.path());
        let mut j = Journal::begin(&host, "apply", None).unwrap();
        j.finish(RunStatus::Done).unwrap();
        let j2 = Journal::begin(&host, "apply", None).unwrap();
        assert_eq!(j2.resumed_from, None);
    }
}
