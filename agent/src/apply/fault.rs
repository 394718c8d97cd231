//! TEST-ONLY fault injection for the VM scenarios (`crash-matrix`, the fault claims): make
//! `dbhost apply` die, freeze (so the harness can cut the power) or wait while the test breaks a
//! disk, at a chosen, deterministic point. Nothing happens unless the environment variable
//! `DBHOST_FAULT` is set; operators never set it.
//!
//! ```text
//! DBHOST_FAULT=kill@<step-id>:before     SIGKILL itself before step <step-id> is observed
//! DBHOST_FAULT=kill@<step-id>:after      ... once <step-id>'s outcome is journaled
//! DBHOST_FAULT=kill@copy:pass1:<n>       ... right after the n-th file copied by pass 1
//! DBHOST_FAULT=kill@copy:pass2:<n>       ... right after the n-th file copied by pass 2
//! DBHOST_FAULT=pause@<point>             at <point>: write DBHOST_FAULT_MARK (a file path, if
//!                                        set) and block forever (the VM is powered off hard)
//! DBHOST_FAULT=hold@<point>              at <point>: write DBHOST_FAULT_MARK (required) and wait
//!                                        until that file is gone, then go on (the test makes a
//!                                        disk fail, vanish or fill up at that exact point)
//! ```
//!
//! A hold waits at most `DBHOST_FAULT_HOLD_SECS` (default 900) seconds; then dbhost exits with
//! code 124 saying so, rather than going on in a world the test did not finish preparing.
//!
//! Step ids are the journal's (`db.room`, `md.array`, `fs.mkfs`, `db.pass1`, `tune`, ...), and
//! for `dbhost migrate` its phases (`migrate.fencing`, `migrate.promoting`, ...: before and after
//! the phase is journaled); a
//! `before`/`after` point fires whatever the step's observation was, so a series of runs with
//! `kill@S:after` for each step S in order walks the whole plan one step per run. `n` counts the
//! files (re)written by the current run of the pass (skipped up-to-date files do not count).
//! A malformed value, or a step id the plan does not have, is a usage error (exit 2) before
//! anything is touched, so a typo cannot turn a crash test into a silent full run.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const ENV: &str = "DBHOST_FAULT";
pub const ENV_MARK: &str = "DBHOST_FAULT_MARK";
pub const ENV_HOLD_SECS: &str = "DBHOST_FAULT_HOLD_SECS";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Kill,
    Pause,
    Hold,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Before,
    After,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Pass1,
    Pass2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Point {
    Step { id: String, when: When },
    Copy { pass: Pass, n: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub action: Action,
    pub point: Point,
}

/// Parse a `DBHOST_FAULT` value.
pub fn parse(s: &str) -> Result<Fault> {
    let usage =
        "expected kill@STEP:before|after, kill@copy:pass1|pass2:N, or pause@/hold@ the same";
    let Some((act, rest)) = s.trim().split_once('@') else {
        bail!("{ENV}={s:?}: no '@'; {usage}");
    };
    let action = match act {
        "kill" => Action::Kill,
        "pause" => Action::Pause,
        "hold" => Action::Hold,
        _ => bail!("{ENV}={s:?}: unknown action {act:?}; {usage}"),
    };
    let point = if let Some(c) = rest.strip_prefix("copy:") {
        let Some((pass, n)) = c.split_once(':') else {
            bail!("{ENV}={s:?}: missing the file count; {usage}");
        };
        let pass = match pass {
            "pass1" => Pass::Pass1,
            "pass2" => Pass::Pass2,
            _ => bail!("{ENV}={s:?}: unknown pass {pass:?}; {usage}"),
        };
        let n: u64 = match n.parse() {
            Ok(n) if n > 0 => n,
            _ => bail!("{ENV}={s:?}: the file count must be a number ≥ 1; {usage}"),
        };
        Point::Copy { pass, n }
    } else {
        let Some((id, when)) = rest.rsplit_once(':') else {
            bail!("{ENV}={s:?}: missing :before or :after; {usage}");
        };
        let when = match when {
            "before" => When::Before,
            "after" => When::After,
            _ => bail!("{ENV}={s:?}: {when:?} is neither before nor after; {usage}"),
        };
        if id.is_empty() || id.contains(char::is_whitespace) {
            bail!("{ENV}={s:?}: bad step id {id:?}; {usage}");
        }
        Point::Step {
            id: id.to_string(),
            when,
        }
    };
    Ok(Fault { action, point })
}

static ARMED: OnceLock<Option<Fault>> = OnceLock::new();

/// Read `DBHOST_FAULT` once (call before anything is touched). `known_steps`: the plan's step
/// ids; a step point naming another id is refused.
pub fn arm_from_env(known_steps: &[String]) -> Result<Option<Fault>> {
    let f = match std::env::var(ENV) {
        Ok(v) if !v.trim().is_empty() => Some(parse(&v)?),
        _ => None,
    };
    if let Some(f) = &f {
        validate(f, known_steps)?;
        if f.action == Action::Hold && std::env::var_os(ENV_MARK).is_none() {
            bail!("{ENV}: hold@ needs {ENV_MARK} (the file whose removal releases the hold)");
        }
        tracing::warn!(fault = ?f, "TEST-ONLY fault injection armed ({ENV})");
    }
    let _ = ARMED.set(f.clone());
    Ok(f)
}

/// A step point must name one of the plan's steps (else it would never fire).
pub fn validate(f: &Fault, known_steps: &[String]) -> Result<()> {
    if let Point::Step { id, .. } = &f.point {
        if !known_steps.iter().any(|k| k == id) {
            bail!(
                "{ENV}: this plan has no step {id:?} (its steps: {})",
                known_steps.join(", ")
            );
        }
    }
    Ok(())
}

fn armed() -> Option<&'static Fault> {
    ARMED.get().and_then(|f| f.as_ref())
}

/// A step boundary was reached.
pub fn at_step(id: &str, when: When) {
    if let Some(f) = armed() {
        if matches!(&f.point, Point::Step { id: i, when: w } if i == id && *w == when) {
            fire(f);
        }
    }
}

/// The `n`-th file of a copy pass (this run) is in place.
pub fn at_copy(pass: Pass, n: u64) {
    if let Some(f) = armed() {
        if f.point == (Point::Copy { pass, n }) {
            fire(f);
        }
    }
}

fn fire(f: &Fault) {
    crate::errln!(
        "dbhost: TEST-ONLY fault injection: {:?} at {:?}",
        f.action,
        f.point
    );
    let mark = std::env::var_os(ENV_MARK).map(PathBuf::from);
    match f.action {
        Action::Kill => {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        Action::Pause => {
            if let Some(p) = &mark {
                let _ = crate::host::atomic_write(p, format!("{:?}\n", f.point).as_bytes(), 0o644);
            }
        }
        Action::Hold => {
            let secs = std::env::var(ENV_HOLD_SECS)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(900);
            if let Some(p) = &mark {
                if let Err(e) = hold(p, &format!("{:?}\n", f.point), Duration::from_secs(secs)) {
                    crate::errln!("dbhost: TEST-ONLY fault injection: {e:#}");
                    std::process::exit(124);
                }
            }
            return;
        }
    }
    // Pause (or a kill that could not be delivered): block until the power goes.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Write `mark` and wait until it is removed (at most `limit`).
fn hold(mark: &Path, what: &str, limit: Duration) -> Result<()> {
    crate::host::atomic_write(mark, what.as_bytes(), 0o644)?;
    let t0 = Instant::now();
    while mark.exists() {
        if t0.elapsed() > limit {
            bail!(
                "hold at {} not released within {} s (remove {} to release it)",
                what.trim(),
                limit.as_secs(),
                mark.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_step_and_copy_points() {
        assert_eq!(
            parse("kill@db.switch-config:after").unwrap(),
            Fault {
                action: Action::Kill,
                point: Point::Step {
                    id: "db.switch-config".into(),
                    when: When::After
                }
            }
        );
        assert_eq!(
            parse("pause@md.array:before").unwrap(),
            Fault {
                action: Action::Pause,
                point: Point::Step {
                    id: "md.array".into(),
                    when: When::Before
                }
            }
        );
        assert_eq!(
            parse("kill@copy:pass2:3").unwrap().point,
            Point::Copy {
                pass: Pass::Pass2,
                n: 3
            }
        );
        assert_eq!(
            parse("pause@copy:pass1:40").unwrap(),
            Fault {
                action: Action::Pause,
                point: Point::Copy {
                    pass: Pass::Pass1,
                    n: 40
                }
            }
        );
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "kill",
            "kill@",
            "kill@fs.mkfs",
            "kill@fs.mkfs:during",
            "stop@fs.mkfs:after",
            "kill@:after",
            "kill@copy:pass3:1",
            "kill@copy:pass1",
            "kill@copy:pass1:0",
            "kill@copy:pass1:x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn parses_hold() {
        assert_eq!(
            parse("hold@fs.mkfs:before").unwrap(),
            Fault {
                action: Action::Hold,
                point: Point::Step {
                    id: "fs.mkfs".into(),
                    when: When::Before
                }
            }
        );
        assert_eq!(parse("hold@copy:pass1:2").unwrap().action, Action::Hold);
    }

    #[test]
    fn a_hold_goes_on_once_its_mark_is_removed() {
        let d = tempfile::tempdir().unwrap();
        let mark = d.path().join("held");
        let m = mark.clone();
        let remover = std::thread::spawn(move || {
            let t0 = Instant::now();
            while !m.exists() && t0.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(std::fs::read_to_string(&m).unwrap(), "here\n");
            std::fs::remove_file(&m).unwrap();
        });
        hold(&mark, "here\n", Duration::from_secs(60)).unwrap();
        remover.join().unwrap();
        assert!(!mark.exists());
    }

    #[test]
    fn a_hold_nobody_releases_ends_with_an_error() {
        let d = tempfile::tempdir().unwrap();
        let mark = d.path().join("held");
        let e = hold(&mark, "fs.mkfs", Duration::from_millis(300)).unwrap_err();
        assert!(e.to_string().contains("not released within"), "{e}");
    }

    #[test]
    fn a_step_point_must_name_a_step_of_the_plan() {
        let known = vec!["md.array".to_string(), "fs.mkfs".to_string()];
        assert!(validate(&parse("kill@fs.mkfs:after").unwrap(), &known).is_ok());
        assert!(validate(&parse("kill@copy:pass1:2").unwrap(), &known).is_ok());
        let e = validate(&parse("kill@fs.mkfz:after").unwrap(), &known).unwrap_err();
        assert!(e.to_string().contains("fs.mkfz"), "{e}");
    }
}
