//! The Step contract. Every step is idempotent: `observe` looks at the real state (devices, files,
//! services) and says whether there is anything to do; `apply` does it and says whether it changed
//! something. Re-running a finished plan observes `Done` everywhere and changes nothing.

use crate::apply::{journal::Journal, undo::Undo};
use crate::host::{Exec, Host};
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum Observation {
    /// Already in the desired state.
    Done(String),
    /// Something to do; the text says what.
    Todo(String),
    /// The state contradicts the plan; nothing may be changed. The text says what and what to do.
    Conflict(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum Outcome {
    Changed(String),
    Unchanged,
}

/// What a step may use while it runs.
pub struct ApplyCx<'a> {
    pub host: &'a Host,
    pub exec: &'a dyn Exec,
    pub undo: &'a mut Undo,
    pub journal: &'a mut Journal,
    /// Facts discovered by earlier steps of this run (e.g. "md.device", "fs.uuid").
    pub facts: BTreeMap<String, String>,
    /// Progress sink for long steps (bytes done, bytes total).
    pub progress: &'a mut dyn FnMut(&str, u64, u64),
}

impl ApplyCx<'_> {
    /// Save `path` (absolute, in-host) into the undo bundle before modifying it.
    pub fn before_modify(&mut self, abs: &str) -> Result<()> {
        self.undo.save(self.host, abs)
    }
}

pub trait Step {
    /// Stable identifier used in the journal and JSON events ("array.create", "fs.mkfs", …).
    fn id(&self) -> String;
    /// One line for the plan display.
    fn describe(&self) -> String;
    fn observe(&self, cx: &mut ApplyCx<'_>) -> Result<Observation>;
    fn apply(&self, cx: &mut ApplyCx<'_>) -> Result<Outcome>;
}
