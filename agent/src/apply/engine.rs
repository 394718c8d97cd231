//! Runs steps in order. For each: observe; `Done` → unchanged; `Conflict` → stop before touching
//! anything further (refused, exit 3); `Todo` → journal "started", apply, journal the outcome.
//! A dry run only observes. Every transition is reported as an [`Event`] (JSON lines for
//! pipelines, readable lines for people) and a [`Report`] sums up the run.

use super::journal::{RunStatus, StepState};
use super::step::{ApplyCx, Observation, Outcome, Step};
use crate::exit::Failure;
use anyhow::Result;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Observed {
        step: String,
        description: String,
        observation: Observation,
    },
    Started {
        step: String,
    },
    Finished {
        step: String,
        outcome: Outcome,
        seconds: f64,
    },
    Failed {
        step: String,
        error: String,
    },
    Progress {
        step: String,
        done: u64,
        total: u64,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step: String,
    pub description: String,
    pub observation: Observation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub steps: Vec<StepReport>,
    pub changed: usize,
    pub unchanged: usize,
}

impl Report {
    pub fn changed_anything(&self) -> bool {
        self.changed > 0
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    pub dry_run: bool,
    /// Stop at the next step boundary once SIGINT/SIGTERM arrived (the CLI sets this).
    pub honour_interrupts: bool,
}

/// Run `steps`. `emit` receives every event.
pub fn run_steps(
    steps: &[Box<dyn Step>],
    cx: &mut ApplyCx<'_>,
    opts: RunOptions,
    emit: &mut dyn FnMut(&Event),
) -> Result<Report> {
    let mut report = Report {
        dry_run: opts.dry_run,
        steps: Vec::new(),
        changed: 0,
        unchanged: 0,
    };
    for step in steps {
        let id = step.id();
        if !opts.dry_run && opts.honour_interrupts && super::sys::interrupted() {
            cx.journal
                .mark(&id, StepState::Pending, "interrupted before this step")?;
            cx.journal.finish(RunStatus::Failed)?;
            return Err(Failure::Interrupted(format!(
                "interrupted before step {id}; re-run `dbhost apply` to resume"
            ))
            .into());
        }
        if !opts.dry_run {
            super::fault::at_step(&id, super::fault::When::Before);
        }
        let description = step.describe();
        let observation = match step.observe(cx) {
            Ok(o) => o,
            Err(e) => {
                let msg = format!("{e:#}");
                emit(&Event::Failed {
                    step: id.clone(),
                    error: msg.clone(),
                });
                if !opts.dry_run {
                    cx.journal.mark(&id, StepState::Failed, &msg)?;
                    cx.journal.finish(RunStatus::Failed)?;
                }
                return Err(e.context(format!("step {id}: observing")));
            }
        };
        emit(&Event::Observed {
            step: id.clone(),
            description: description.clone(),
            observation: observation.clone(),
        });
        let mut rep = StepReport {
            step: id.clone(),
            description,
            observation: observation.clone(),
            outcome: None,
        };
        match observation {
            Observation::Done(_) => {
                report.unchanged += 1;
                if !opts.dry_run {
                    rep.outcome = Some(Outcome::Unchanged);
                    cx.journal.mark(&id, StepState::Unchanged, "")?;
                }
            }
            Observation::Conflict(why) => {
                report.steps.push(rep);
                if !opts.dry_run {
                    cx.journal.mark(&id, StepState::Failed, &why)?;
                    cx.journal.finish(RunStatus::Failed)?;
                }
                return Err(Failure::Refused(format!("step {id}: {why}")).into());
            }
            Observation::Todo(_) if opts.dry_run => {}
            Observation::Todo(_) => {
                emit(&Event::Started { step: id.clone() });
                cx.journal.mark(&id, StepState::Started, "")?;
                let t0 = std::time::Instant::now();
                match step.apply(cx) {
                    Ok(outcome) => {
                        let (state, detail) = match &outcome {
                            Outcome::Changed(d) => {
                                report.changed += 1;
                                (StepState::Changed, d.clone())
                            }
                            Outcome::Unchanged => {
                                report.unchanged += 1;
                                (StepState::Unchanged, String::new())
                            }
                        };
                        cx.journal.mark(&id, state, &detail)?;
                        emit(&Event::Finished {
                            step: id.clone(),
                            outcome: outcome.clone(),
                            seconds: t0.elapsed().as_secs_f64(),
                        });
                        rep.outcome = Some(outcome);
                    }
                    Err(e) => {
                        let msg = format!("{e:#}");
                        emit(&Event::Failed {
                            step: id.clone(),
                            error: msg.clone(),
                        });
                        cx.journal.mark(&id, StepState::Failed, &msg)?;
                        cx.journal.finish(RunStatus::Failed)?;
                        return Err(e.context(format!("step {id}")));
                    }
                }
            }
        }
        report.steps.push(rep);
        if !opts.dry_run {
            super::fault::at_step(&id, super::fault::When::After);
        }
    }
    if !opts.dry_run {
        cx.journal.finish(RunStatus::Done)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{Journal, Undo};
    use crate::host::{FakeExec, Host};
    use std::cell::Cell;

    /// A step over a marker file: Done when the file has the content, Todo otherwise; a file
    /// holding "CONFLICT" is a conflict.
    struct FileStep {
        name: &'static str,
        content: &'static str,
        applies: Cell<u32>,
    }

    impl Step for FileStep {
        fn id(&self) -> String {
            format!("file.{}", self.name)
        }
        fn describe(&self) -> String {
            format!("write /etc/{}", self.name)
        }
        fn observe(&self, cx: &mut ApplyCx<'_>) -> Result<Observation> {
            let p = cx.host.path(format!("/etc/{}", self.name));
            Ok(match std::fs::read_to_string(&p) {
                Ok(s) if s == self.content => Observation::Done("present".into()),
                Ok(s) if s == "CONFLICT" => Observation::Conflict("foreign content".into()),
                _ => Observation::Todo("write it".into()),
            })
        }
        fn apply(&self, cx: &mut ApplyCx<'_>) -> Result<Outcome> {
            self.applies.set(self.applies.get() + 1);
            let abs = format!("/etc/{}", self.name);
            cx.before_modify(&abs)?;
            crate::host::atomic_write(&cx.host.path(&abs), self.content.as_bytes(), 0o644)?;
            Ok(Outcome::Changed("written".into()))
        }
    }

    fn run(host: &Host, steps: &[Box<dyn Step>], dry: bool) -> Result<(Report, Vec<String>)> {
        run_with(
            host,
            steps,
            RunOptions {
                dry_run: dry,
                honour_interrupts: false,
            },
        )
    }

    fn run_with(
        host: &Host,
        steps: &[Box<dyn Step>],
        opts: RunOptions,
    ) -> Result<(Report, Vec<String>)> {
        let exec = FakeExec::new();
        let mut journal = Journal::begin(host, "apply", None)?;
        let mut undo = Undo::open(host, &journal.run_id.clone())?;
        let mut prog = |_: &str, _: u64, _: u64| {};
        let mut cx = ApplyCx {
            host,
            exec: &exec,
            undo: &mut undo,
            journal: &mut journal,
            facts: Default::default(),
            progress: &mut prog,
        };
        let mut events = Vec::new();
        let r = run_steps(steps, &mut cx, opts, &mut |e| {
            events.push(serde_json::to_string(e).unwrap())
        })?;
        Ok((r, events))
    }

    fn steps() -> Vec<Box<dyn Step>> {
        vec![
            Box::new(FileStep {
                name: "a.conf",
                content: "A",
                applies: Cell::new(0),
            }),
            Box::new(FileStep {
                name: "b.conf",
                content: "B",
                applies: Cell::new(0),
            }),
        ]
    }

    #[test]
    fn apply_then_rerun_changes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let host = Host::with_root(d.path());
        let (dry, _) = run(&host, &steps(), true).unwrap();
        assert_eq!(dry.changed, 0);
        assert!(!host.path("/etc/a.conf").exists(), "dry run wrote a file");
        let (r1, ev) = run(&host, &steps(), false).unwrap();
        assert_eq!((r1.changed, r1.unchanged), (2, 0));
        assert!(ev.iter().any(|e| e.contains("\"event\":\"finished\"")));
        let (r2, _) = run(&host, &steps(), false).unwrap();
        assert_eq!((r2.changed, r2.unchanged), (0, 2));
        let j = Journal::load_last(&host).unwrap().unwrap();
        assert_eq!(j.status, RunStatus::Done);
    }

    #[test]
    fn conflict_stops_before_later_steps() {
        let d = tempfile::tempdir().unwrap();
        let host = Host::with_root(d.path());
        std::fs::create_dir_all(host.path("/etc")).unwrap();
        std::fs::write(host.path("/etc/a.conf"), "CONFLICT").unwrap();
        let err = run(&host, &steps(), false).unwrap_err();
        assert_eq!(crate::exit::code_for(&err), crate::exit::REFUSED);
        assert!(!host.path("/etc/b.conf").exists());
        assert_eq!(
            std::fs::read_to_string(host.path("/etc/a.conf")).unwrap(),
            "CONFLICT"
        );
    }

    #[test]
    fn interrupt_stops_at_a_step_boundary_with_exit_4() {
        let d = tempfile::tempdir().unwrap();
        let host = Host::with_root(d.path());
        // Only this test honours interrupts, so the process-wide flag cannot leak into others.
        crate::apply::sys::set_interrupted(true);
        let err = run_with(
            &host,
            &steps(),
            RunOptions {
                dry_run: false,
                honour_interrupts: true,
            },
        );
        crate::apply::sys::set_interrupted(false);
        let err = err.unwrap_err();
        assert_eq!(crate::exit::code_for(&err), crate::exit::INTERRUPTED);
        assert!(!host.path("/etc/a.conf").exists());
        let (r, _) = run(&host, &steps(), false).unwrap();
        assert_eq!(r.changed, 2);
    }

    #[test]
    fn rollback_restores_pre_run_state() {
        let d = tempfile::tempdir().unwrap();
        let host = Host::with_root(d.path());
        std::fs::create_dir_all(host.path("/etc")).unwrap();
        std::fs::write(host.path("/etc/a.conf"), "old").unwrap();
        run(&host, &steps(), false).unwrap();
        for id in Undo::list(&host).unwrap() {
            Undo::restore(&host, &id).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(host.path("/etc/a.conf")).unwrap(),
            "old"
        );
        assert!(!host.path("/etc/b.conf").exists());
    }
}
