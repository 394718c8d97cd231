//! Output formatting shared by every command, and the one place that writes to stdout/stderr.
//!
//! A reader that goes away early (`dbhost detect | head -1`, a pager quit early) closes the pipe:
//! the next write fails with EPIPE (Rust ignores SIGPIPE, so `println!` would panic). Here a
//! command that only reads the host stops quietly with [`crate::exit::CLOSED_PIPE`], like any
//! Unix filter killed by SIGPIPE; a command that changes the system keeps going without output
//! (see [`keep_going_when_closed`]): a closed report must never interrupt a change halfway.
//!
//! Use [`outln!`](crate::outln)/[`out!`](crate::out) and [`errln!`](crate::errln)/
//! [`err!`](crate::err) instead of `println!`/`eprintln!` (clippy's `print_stdout` and
//! `print_stderr` lints enforce it outside tests).

use clap::ValueEnum;
use serde::Serialize;
use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Set once a command that changes the system is running: a closed stream no longer ends it.
static KEEP_GOING: AtomicBool = AtomicBool::new(false);
/// Set when stdout (or stderr) failed: further output to it is dropped.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

/// From now on a closed stdout/stderr drops output instead of ending the process.
pub fn keep_going_when_closed() {
    KEEP_GOING.store(true, Ordering::SeqCst);
}

/// Whether stdout failed during this run (a command may still want to say so at the end).
pub fn stdout_gone() -> bool {
    STDOUT_GONE.load(Ordering::SeqCst)
}

/// Which stream a write goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Write formatted text to a stream; the policy for a failed write is the module's.
pub fn write_to(stream: Stream, args: fmt::Arguments<'_>) {
    let gone = match stream {
        Stream::Stdout => &STDOUT_GONE,
        Stream::Stderr => &STDERR_GONE,
    };
    if gone.load(Ordering::SeqCst) {
        return;
    }
    let res = match stream {
        Stream::Stdout => {
            let mut o = io::stdout().lock();
            o.write_fmt(args).and_then(|()| o.flush())
        }
        Stream::Stderr => {
            let mut e = io::stderr().lock();
            e.write_fmt(args).and_then(|()| e.flush())
        }
    };
    if let Err(e) = res {
        gone.store(true, Ordering::SeqCst);
        on_write_error(stream, &e);
    }
}

/// A write failed: stop quietly (read-only commands) or keep going without that stream.
fn on_write_error(stream: Stream, e: &io::Error) {
    if KEEP_GOING.load(Ordering::SeqCst) {
        return;
    }
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(crate::exit::CLOSED_PIPE);
    }
    if stream == Stream::Stdout {
        // Not a closed reader (a full disk, a revoked terminal): say so where we still can.
        write_to(
            Stream::Stderr,
            format_args!("dbhost: error: writing to standard output: {e}\n"),
        );
    }
    std::process::exit(crate::exit::ERROR);
}

/// `print!` through [`write_to`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_to($crate::cli::output::Stream::Stdout, format_args!($($arg)*))
    };
}

/// `println!` through [`write_to`].
#[macro_export]
macro_rules! outln {
    () => { $crate::out!("\n") };
    ($($arg:tt)*) => {
        $crate::cli::output::write_to(
            $crate::cli::output::Stream::Stdout,
            format_args!("{}\n", format_args!($($arg)*)),
        )
    };
}

/// `eprint!` through [`write_to`].
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::cli::output::write_to($crate::cli::output::Stream::Stderr, format_args!($($arg)*))
    };
}

/// `eprintln!` through [`write_to`].
#[macro_export]
macro_rules! errln {
    () => { $crate::err!("\n") };
    ($($arg:tt)*) => {
        $crate::cli::output::write_to(
            $crate::cli::output::Stream::Stderr,
            format_args!("{}\n", format_args!($($arg)*)),
        )
    };
}

/// Print a serializable value as pretty JSON on stdout.
pub fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    crate::outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Print one JSON event line (for pipelines) on stdout.
pub fn print_event<T: Serialize>(v: &T) -> anyhow::Result<()> {
    crate::outln!("{}", serde_json::to_string(v)?);
    Ok(())
}

/// Report an error: the whole context chain, on stderr (text) or as JSON on stdout.
pub fn print_error(fmt: OutputFormat, err: &anyhow::Error, code: i32) {
    let chain: Vec<String> = err.chain().map(|c| c.to_string()).collect();
    match fmt {
        OutputFormat::Text => {
            crate::errln!("dbhost: error: {}", chain.join(": "));
        }
        OutputFormat::Json => {
            let v = serde_json::json!({"event": "error", "exit_code": code, "error": chain.join(": "), "chain": chain});
            crate::outln!("{v}");
        }
    }
}
