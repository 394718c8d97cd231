//! Service control through systemd: start, stop (with the socket units that would start the
//! service again), bounded waits. Facts: GENERALIZE-DATADIR-TUNING.md B3 (socket activation).

use crate::host::{CommandSpec, Exec};
use anyhow::{bail, Result};
use std::time::Duration;

/// Retry policy for start/stop waits and health checks.
#[derive(Clone)]
pub struct Wait {
    pub attempts: u32,
    pub delay: Duration,
    /// Sleeps between attempts (tests pass a no-op).
    pub sleep: fn(Duration),
}

impl Default for Wait {
    /// Up to 60 s, checked every 250 ms: a server that is up after 0.3 s is seen then, not 2 s
    /// later (these waits sit inside the downtime window).
    fn default() -> Self {
        Wait {
            attempts: 240,
            delay: Duration::from_millis(250),
            sleep: std::thread::sleep,
        }
    }
}

impl std::fmt::Debug for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Wait({}×{:?})", self.attempts, self.delay)
    }
}

pub fn is_active(exec: &dyn Exec, unit: &str) -> bool {
    exec.output(&CommandSpec::new("systemctl").args(["is-active", "--quiet", unit]))
        .map(|o| o.status == 0)
        .unwrap_or(false)
}

fn wait_until(exec: &dyn Exec, unit: &str, active: bool, w: &Wait) -> Result<()> {
    for i in 0..w.attempts.max(1) {
        if is_active(exec, unit) == active {
            return Ok(());
        }
        if i + 1 < w.attempts {
            (w.sleep)(w.delay);
        }
    }
    bail!(
        "{unit} did not become {} within {} checks {:?} apart; see `journalctl -u {unit}`",
        if active { "active" } else { "inactive" },
        w.attempts,
        w.delay
    )
}

/// The socket units that start `unit` when a client connects (socket activation: Debian 12's
/// MariaDB 10.11 listens through `mariadb.socket`). While one of them listens, stopping the
/// service is not enough: the next client starts it again.
pub fn activating_sockets(exec: &dyn Exec, unit: &str) -> Vec<String> {
    exec.output(&CommandSpec::new("systemctl").args(["show", "-P", "TriggeredBy", unit]))
        .ok()
        .filter(|o| o.status == 0)
        .map(|o| {
            o.stdout
                .split_whitespace()
                .filter(|s| s.ends_with(".socket"))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The activating socket units (see [`activating_sockets`]) that are active now.
pub fn active_sockets(exec: &dyn Exec, unit: &str) -> Vec<String> {
    activating_sockets(exec, unit)
        .into_iter()
        .filter(|s| is_active(exec, s))
        .collect()
}

/// Stopped for good: the unit is inactive and no socket unit can start it again.
pub fn is_stopped(exec: &dyn Exec, unit: &str) -> bool {
    !is_active(exec, unit) && active_sockets(exec, unit).is_empty()
}

/// Stop the unit, and the socket units that would start it again, and wait until it is
/// inactive. Already stopped for good → `Ok(false)`.
pub fn stop(exec: &dyn Exec, unit: &str, w: &Wait) -> Result<bool> {
    let sockets = active_sockets(exec, unit);
    if !is_active(exec, unit) && sockets.is_empty() {
        return Ok(false);
    }
    // One transaction, sockets included: a client connecting during the downtime must not
    // start the server again on the old datadir.
    let mut args = vec!["stop".to_string()];
    args.extend(sockets);
    args.push(unit.to_string());
    exec.run(&CommandSpec::new("systemctl").args(args))?;
    wait_until(exec, unit, false, w)?;
    Ok(true)
}

/// Start the unit (with its enabled socket units, first, as at boot) and wait until it is
/// active. Already active → `Ok(false)`.
pub fn start(exec: &dyn Exec, unit: &str, w: &Wait) -> Result<bool> {
    if is_active(exec, unit) {
        return Ok(false);
    }
    let mut args = vec!["start".to_string()];
    for s in activating_sockets(exec, unit) {
        let enabled = exec
            .output(&CommandSpec::new("systemctl").args(["is-enabled", &s]))
            .is_ok_and(|o| o.status == 0 && o.stdout.trim() == "enabled");
        if enabled && !is_active(exec, &s) {
            args.push(s);
        }
    }
    args.push(unit.to_string());
    exec.run(&CommandSpec::new("systemctl").args(args))?;
    wait_until(exec, unit, true, w)?;
    Ok(true)
}
