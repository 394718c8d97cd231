//! Process exit codes, documented in the README and consistent across commands.

/// Done, or nothing to change.
pub const OK: i32 = 0;
/// An error (I/O, a failed external program, an unexpected state).
pub const ERROR: i32 = 1;
/// Usage or profile error (malformed TOML, unknown key, invalid value).
pub const USAGE: i32 = 2;
/// Refused for safety (a disk holds data, not enough eligible disks, target too small).
pub const REFUSED: i32 = 3;
/// Interrupted; re-run `dbhost apply` to resume.
pub const INTERRUPTED: i32 = 4;
/// The reader of standard output went away (a closed pipe): 128 + SIGPIPE, the status a shell
/// reports for a filter that SIGPIPE ended. Only commands that change nothing stop this way.
pub const CLOSED_PIPE: i32 = 141;

/// An error that carries the exit code it should produce.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Interrupted(String),
}

impl Failure {
    pub fn code(&self) -> i32 {
        match self {
            Failure::Usage(_) => USAGE,
            Failure::Refused(_) => REFUSED,
            Failure::Interrupted(_) => INTERRUPTED,
        }
    }
}

/// Map an error chain to an exit code: a [`Failure`] anywhere in the chain wins, else 1.
pub fn code_for(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.code();
        }
    }
    ERROR
}
