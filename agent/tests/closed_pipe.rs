//! A reader that goes away early (`dbhost detect | head -1`, a pager quit early) must end a
//! read-only command quietly with status 141 (128 + SIGPIPE, what a shell shows for a filter that
//! SIGPIPE ended), never with a panic; a command that changes the system runs to its end and
//! exits with its own status. Every command that prints is run twice: with the pipe's read end
//! closed before it starts (the first write fails, deterministically), and behind a reader that
//! closes after one line, as `head -1` does.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const CLOSED_PIPE: i32 = 141;
/// Expected status of a command that changes the system: the one it has with nobody closing.
const OWN: i32 = -1;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/azure-gen2")
}

/// (arguments, exit status expected when stdout is closed: [`CLOSED_PIPE`] or [`OWN`]).
fn commands(scratch: &Path) -> Vec<(Vec<String>, i32)> {
    let prof = |p: &str| repo().join("profiles").join(p).display().to_string();
    let image = scratch.join("blank.img");
    std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
    let mut v: Vec<(Vec<&str>, i32)> = vec![
        (vec!["detect"], CLOSED_PIPE),
        (vec!["--output", "json", "detect"], CLOSED_PIPE),
        (vec!["status"], CLOSED_PIPE),
        (vec!["--output", "json", "status"], CLOSED_PIPE),
        (vec!["generalize", "--check"], CLOSED_PIPE),
        (
            vec!["--output", "json", "generalize", "--check"],
            CLOSED_PIPE,
        ),
        (
            vec![
                "--output",
                "json",
                "apply",
                "--dry-run",
                "--wait-disks",
                "0s",
                "--profile",
                "P",
            ],
            CLOSED_PIPE,
        ),
        (vec!["--help"], CLOSED_PIPE),
        (vec!["--version"], CLOSED_PIPE),
        (vec!["detect", "--help"], CLOSED_PIPE),
    ];
    let owned = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
    let dev = prof("qemu-dev.toml");
    let mut out: Vec<(Vec<String>, i32)> = v
        .drain(..)
        .map(|(a, c)| {
            let a = a
                .into_iter()
                .map(|s| if s == "P" { dev.as_str() } else { s });
            (owned(a.collect()), c)
        })
        .collect();
    let check = prof("azure-mysql.toml");
    out.push((owned(vec!["profile", "check", &check]), CLOSED_PIPE));
    out.push((
        owned(vec!["--output", "json", "profile", "check", &check]),
        CLOSED_PIPE,
    ));
    let img = image.display().to_string();
    out.push((
        owned(vec!["--output", "json", "md", "examine", &img]),
        CLOSED_PIPE,
    ));
    // Changes the system (refused under --sysroot, so it changes nothing here): it keeps going
    // to its own status.
    out.push((
        owned(vec![
            "--output",
            "json",
            "apply",
            "--wait-disks",
            "0s",
            "--profile",
            &dev,
        ]),
        OWN,
    ));
    out
}

fn dbhost(args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dbhost"));
    c.arg("--sysroot").arg(fixture()).args(args);
    c.env_remove("DBHOST_SYSROOT").env("DBHOST_LOG", "warn");
    c
}

fn expected(args: &[String], want: i32) -> i32 {
    if want == OWN {
        dbhost(args).output().unwrap().status.code().unwrap()
    } else {
        want
    }
}

fn assert_quiet(args: &[String], status: std::process::ExitStatus, stderr: &str, want: i32) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "dbhost {args:?} complained about the closed pipe:\n{stderr}"
    );
    assert_eq!(
        status.code(),
        Some(want),
        "dbhost {args:?} with a closed stdout: {status}; stderr:\n{stderr}"
    );
}

#[test]
fn every_command_that_prints_has_output_to_close() {
    // Guard against a vacuous pass: each command really writes to stdout when nobody closes it.
    let scratch = tempfile::tempdir().unwrap();
    for (args, _) in commands(scratch.path()) {
        let out = dbhost(&args).output().unwrap();
        assert!(
            !out.stdout.is_empty(),
            "dbhost {args:?} printed nothing on stdout: {out:?}"
        );
    }
}

#[test]
fn read_end_closed_before_the_first_write() {
    let scratch = tempfile::tempdir().unwrap();
    for (args, want) in commands(scratch.path()) {
        let want = expected(&args, want);
        let (rd, wr) = nix::unistd::pipe().unwrap();
        drop(rd);
        let out = dbhost(&args)
            .stdout(Stdio::from(wr))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_quiet(
            &args,
            out.status,
            &String::from_utf8_lossy(&out.stderr),
            want,
        );
    }
}

#[test]
fn reader_closes_after_one_line() {
    let scratch = tempfile::tempdir().unwrap();
    for (args, want) in commands(scratch.path()) {
        let mut child = dbhost(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // The reader is gone here (dropped), as after `head -1`.
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(!first.is_empty(), "dbhost {args:?}: no first line");
        // Output shorter than the pipe's buffer may all be written before the reader goes: then
        // the command ends as it would have anyway. Either way: no panic, no other status.
        let own = expected(&args, OWN);
        let want = expected(&args, want);
        if status.code() == Some(own) {
            assert_quiet(&args, status, &stderr, own);
        } else {
            assert_quiet(&args, status, &stderr, want);
        }
    }
}
