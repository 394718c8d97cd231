//! The user's on-cutover hook: runs once the new primary accepts writes (point DNS or a load
//! balancer at it). Its failure is reported loudly and never undoes the cutover: the new primary
//! already took writes.

use super::{Ctx, HookResult, Settings, State};
use crate::host::CommandSpec;

/// The hook failed; the cutover itself is done.
#[derive(Debug, thiserror::Error)]
#[error(
    "the cutover is DONE (the new primary accepts writes) but the on-cutover hook `{}` failed: \
     {}. Clients may still point at the old host: fix the hook's cause and re-run \
     `dbhost migrate cutover` (it runs only the hook again), or redirect them by hand",
    .0.argv.join(" "),
    describe(.0)
)]
pub struct HookFailed(pub HookResult);

fn describe(h: &HookResult) -> String {
    let mut s = match (&h.error, h.status) {
        (Some(e), _) => e.clone(),
        (None, Some(c)) => format!("exit status {c}"),
        (None, None) => "killed at its timeout".into(),
    };
    if !h.output.trim().is_empty() {
        s.push_str(&format!("; its output ends with: {}", h.output.trim()));
    }
    s
}

/// The last `n` characters of `s` (on a char boundary).
fn tail(s: &str, n: usize) -> String {
    let start = s.len().saturating_sub(n);
    let start = (start..=s.len())
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(s.len());
    s[start..].to_string()
}

/// Run the hook with the cutover's facts in its environment.
pub fn run(cx: &mut Ctx, s: &Settings, st: &State, argv: &[String]) -> HookResult {
    let downtime = st
        .cutover
        .as_ref()
        .and_then(|c| c.downtime_ms)
        .map(|d| d.to_string())
        .unwrap_or_default();
    let cmd = CommandSpec::new(&argv[0])
        .args(argv[1..].iter().cloned())
        .env("DBHOST_MIGRATE_ENGINE", s.engine.name())
        .env("DBHOST_MIGRATE_SOURCE", &st.source)
        .env(
            "DBHOST_MIGRATE_DATADIR",
            &st.target_datadir.to_string_lossy(),
        )
        .env("DBHOST_MIGRATE_DOWNTIME_MS", &downtime)
        .timeout(s.hook_timeout);
    cx.note(format!("running the on-cutover hook: {}", cmd.display()));
    let t0 = std::time::Instant::now();
    let r = cx.exec.output(&cmd);
    let seconds = t0.elapsed().as_secs_f64();
    match r {
        Ok(o) => HookResult {
            argv: argv.to_vec(),
            ok: o.status == 0,
            status: (o.status >= 0).then_some(o.status),
            seconds,
            output: tail(&format!("{}{}", o.stdout, o.stderr), 2000),
            error: None,
        },
        Err(e) => HookResult {
            argv: argv.to_vec(),
            ok: false,
            status: None,
            seconds,
            output: String::new(),
            error: Some(format!("{e:#}")),
        },
    }
}
