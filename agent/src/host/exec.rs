//! Other processes behind one trait: the external programs dbhost runs (mkfs, systemctl,
//! pg_basebackup, ...) and the database servers it talks to over their protocols
//! ([`Exec::db`]), so plans and steps are tested with fakes that record calls. Every error names
//! the full command line (or the server and statement).

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// A command to run: program, arguments, optional environment additions and stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    /// Kill the program (SIGKILL) when it runs longer; the output then has status -1 and the
    /// stderr says so.
    pub timeout: Option<std::time::Duration>,
}

impl CommandSpec {
    pub fn new(program: &str) -> Self {
        CommandSpec {
            program: program.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            timeout: None,
        }
    }
    pub fn timeout(mut self, t: std::time::Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn args<I, S>(mut self, it: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(it.into_iter().map(Into::into));
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }
    /// The command line as a person would type it (for errors and logs).
    pub fn display(&self) -> String {
        let mut s = self.program.clone();
        for a in &self.args {
            s.push(' ');
            if a.is_empty() || a.contains(char::is_whitespace) {
                s.push_str(&format!("'{a}'"));
            } else {
                s.push_str(a);
            }
        }
        s
    }
}

#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Which end of a spawned program is a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipe {
    /// Read its stdout as it is produced (stdin is empty).
    Out,
    /// Feed its stdin as a stream (stdout is collected).
    In,
}

/// A program running with one streamed end; [`Spawned::wait`] reaps it and returns its status
/// and collected output (stderr always).
pub struct Spawned<'a> {
    pub stdin: Option<Box<dyn Write + Send>>,
    pub stdout: Option<Box<dyn Read + Send>>,
    wait: Box<dyn FnOnce() -> Result<ExecOutput> + Send + 'a>,
    kill: Arc<dyn Fn() + Send + Sync>,
}

impl Spawned<'_> {
    /// Close stdin (if still open) and wait for the exit.
    pub fn wait(mut self) -> Result<ExecOutput> {
        drop(self.stdin.take());
        drop(self.stdout.take());
        (self.wait)()
    }
    /// Something that kills the program (SIGKILL) while another thread waits for it.
    pub fn killer(&self) -> Arc<dyn Fn() + Send + Sync> {
        self.kill.clone()
    }
}

/// A Vec shared between a writer handed out as stdin and the code that runs the program.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);
impl Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("stdin buffer").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub trait Exec: Send + Sync {
    /// Run and return the output whatever the exit status.
    fn output(&self, cmd: &CommandSpec) -> Result<ExecOutput>;

    /// Start `cmd` with one end streamed. The default runs it through [`Exec::output`] (whole
    /// stdout at once; stdin collected, then run), which is what fakes need.
    fn spawn(&self, cmd: &CommandSpec, pipe: Pipe) -> Result<Spawned<'_>> {
        let kill: Arc<dyn Fn() + Send + Sync> = Arc::new(|| {});
        match pipe {
            Pipe::Out => {
                let out = self.output(cmd)?;
                let stdout = std::io::Cursor::new(out.stdout.clone().into_bytes());
                Ok(Spawned {
                    stdin: None,
                    stdout: Some(Box::new(stdout)),
                    wait: Box::new(move || {
                        Ok(ExecOutput {
                            stdout: String::new(),
                            ..out
                        })
                    }),
                    kill,
                })
            }
            Pipe::In => {
                let buf = SharedBuf::default();
                let b2 = buf.clone();
                let cmd = cmd.clone();
                Ok(Spawned {
                    stdin: Some(Box::new(buf)),
                    stdout: None,
                    wait: Box::new(move || {
                        let data = std::mem::take(&mut *b2.0.lock().expect("stdin buffer"));
                        self.output(&cmd.stdin(data))
                    }),
                    kill,
                })
            }
        }
    }

    /// The database client: sessions with servers over their own protocols.
    fn db(&self) -> &dyn crate::db::client::Client;

    /// Run and fail (naming the command and its stderr) unless it exits 0.
    fn run(&self, cmd: &CommandSpec) -> Result<ExecOutput> {
        let out = self.output(cmd)?;
        if out.status != 0 {
            bail!(
                "`{}` exited with status {}: {}",
                cmd.display(),
                out.status,
                out.stderr.trim()
            );
        }
        Ok(out)
    }
}

/// Start `cmd` with stdout and stderr piped, stdin piped or empty.
fn start(cmd: &CommandSpec, stdin: bool) -> Result<std::process::Child> {
    use std::process::Stdio;
    let mut c = Command::new(&cmd.program);
    c.args(&cmd.args);
    for (k, v) in &cmd.env {
        c.env(k, v);
    }
    c.stdin(if stdin { Stdio::piped() } else { Stdio::null() });
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    if cmd.timeout.is_some() {
        // Its own process group: at the timeout the whole group goes (a shell's children
        // too, which would otherwise keep the output pipes open).
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
    }
    c.spawn()
        .with_context(|| format!("starting `{}`", cmd.display()))
}

/// Runs real programs.
#[derive(Debug, Default)]
pub struct RealExec;

impl Exec for RealExec {
    fn spawn(&self, cmd: &CommandSpec, pipe: Pipe) -> Result<Spawned<'_>> {
        Self::spawn_real(cmd, pipe)
    }

    fn db(&self) -> &dyn crate::db::client::Client {
        &crate::db::client::REAL
    }
    fn output(&self, cmd: &CommandSpec) -> Result<ExecOutput> {
        let mut child = start(cmd, cmd.stdin.is_some())?;
        if let Some(data) = &cmd.stdin {
            if let Some(mut si) = child.stdin.take() {
                si.write_all(data)
                    .with_context(|| format!("writing stdin of `{}`", cmd.display()))?;
            }
        }
        let Some(limit) = cmd.timeout else {
            let out = child
                .wait_with_output()
                .with_context(|| format!("waiting for `{}`", cmd.display()))?;
            return Ok(ExecOutput {
                status: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        };
        // Readers on threads, so a chatty program cannot block on a full pipe while we wait.
        let read = |r: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut v);
                }
                v
            })
        };
        let so = read(child.stdout.take().map(|s| Box::new(s) as _));
        let se = read(child.stderr.take().map(|s| Box::new(s) as _));
        let t0 = std::time::Instant::now();
        let status = loop {
            if let Some(st) = child
                .try_wait()
                .with_context(|| format!("waiting for `{}`", cmd.display()))?
            {
                break Some(st);
            }
            if t0.elapsed() >= limit {
                let pg = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(pg, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let stdout = String::from_utf8_lossy(&so.join().unwrap_or_default()).into_owned();
        let mut stderr = String::from_utf8_lossy(&se.join().unwrap_or_default()).into_owned();
        if status.is_none() {
            stderr.push_str(&format!("\n(killed after {limit:?})"));
        }
        Ok(ExecOutput {
            status: status.and_then(|s| s.code()).unwrap_or(-1),
            stdout,
            stderr,
        })
    }
}

impl RealExec {
    fn spawn_real(cmd: &CommandSpec, pipe: Pipe) -> Result<Spawned<'static>> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let mut child = start(cmd, pipe == Pipe::In)?;
        let stdin = child
            .stdin
            .take()
            .map(|w| Box::new(w) as Box<dyn Write + Send>);
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        // stderr is drained all along (a full pipe would stall the program); the last 64 KiB
        // are kept for messages.
        let err_thread = std::thread::spawn(move || {
            let mut keep: Vec<u8> = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                keep.extend_from_slice(&buf[..n]);
                if keep.len() > 128 << 10 {
                    keep.drain(..keep.len() - (64 << 10));
                }
            }
            String::from_utf8_lossy(&keep).into_owned()
        });
        // stdout is collected the same way when stdin is the streamed end.
        let (stdout, out_thread) = match pipe {
            Pipe::Out => (Some(Box::new(stdout) as Box<dyn Read + Send>), None),
            Pipe::In => {
                let mut so = stdout;
                let t = std::thread::spawn(move || {
                    let mut v = Vec::new();
                    let _ = so.read_to_end(&mut v);
                    String::from_utf8_lossy(&v).into_owned()
                });
                (None, Some(t))
            }
        };
        let pid = child.id();
        let reaped = Arc::new(AtomicBool::new(false));
        let r2 = reaped.clone();
        let kill: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            if !r2.load(Ordering::SeqCst) {
                if let Ok(p) = i32::try_from(pid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        });
        let line = cmd.display();
        Ok(Spawned {
            stdin,
            stdout,
            wait: Box::new(move || {
                let st = child
                    .wait()
                    .with_context(|| format!("waiting for `{line}`"));
                reaped.store(true, Ordering::SeqCst);
                let st = st?;
                let stderr = err_thread.join().unwrap_or_default();
                let stdout = out_thread
                    .map(|t| t.join().unwrap_or_default())
                    .unwrap_or_default();
                Ok(ExecOutput {
                    status: exit_code(st),
                    stdout,
                    stderr,
                })
            }),
            kill,
        })
    }
}

/// The exit status as a shell shows it (128 + signal for a killed program).
fn exit_code(st: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code()
        .or_else(|| st.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// The order of calls across every fake (programs and database statements), so a test can check
/// that a statement ran before a service stopped.
static FAKE_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The next number of the fakes' common sequence.
pub fn fake_seq() -> u64 {
    FAKE_SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

/// Records every command; answers from a list of (program-prefix match, output) rules.
#[derive(Debug, Default)]
pub struct FakeExec {
    pub calls: Mutex<Vec<CommandSpec>>,
    pub answers: Mutex<Vec<(String, ExecOutput)>>,
    /// The fake database servers (statements answered from rules).
    pub db: crate::db::client::FakeDb,
    seqs: Mutex<Vec<u64>>,
}

impl FakeExec {
    pub fn new() -> Self {
        Self::default()
    }
    /// When a command line starts with `prefix`, answer `out`.
    pub fn answer(&self, prefix: &str, out: ExecOutput) {
        self.answers
            .lock()
            .expect("fake exec lock")
            .push((prefix.to_string(), out));
    }
    pub fn calls(&self) -> Vec<String> {
        self.calls
            .lock()
            .expect("fake exec lock")
            .iter()
            .map(CommandSpec::display)
            .collect()
    }
    /// Every command line and every statement sent to the fake database (`"sql <target>: ..."`),
    /// in the order they happened.
    pub fn timeline(&self) -> Vec<String> {
        let calls = self.calls();
        let seqs = self.seqs.lock().expect("fake exec lock").clone();
        let mut all: Vec<(u64, String)> = seqs.into_iter().zip(calls).collect();
        all.extend(
            self.db
                .sequenced_calls()
                .into_iter()
                .map(|(n, c)| (n, format!("sql {c}"))),
        );
        all.sort();
        all.into_iter().map(|(_, c)| c).collect()
    }
}

impl Exec for FakeExec {
    fn db(&self) -> &dyn crate::db::client::Client {
        &self.db
    }
    fn output(&self, cmd: &CommandSpec) -> Result<ExecOutput> {
        self.calls.lock().expect("fake exec lock").push(cmd.clone());
        self.seqs.lock().expect("fake exec lock").push(fake_seq());
        let line = cmd.display();
        let answers = self.answers.lock().expect("fake exec lock");
        for (prefix, out) in answers.iter() {
            if line.starts_with(prefix.as_str()) {
                return Ok(out.clone());
            }
        }
        Ok(ExecOutput::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_exec_reports_status_and_names_command() {
        let e = RealExec;
        let out = e
            .output(&CommandSpec::new("sh").args(["-c", "echo hi; exit 3"]))
            .unwrap();
        assert_eq!(out.status, 3);
        assert_eq!(out.stdout.trim(), "hi");
        let err = e
            .run(&CommandSpec::new("sh").args(["-c", "echo bad >&2; exit 1"]))
            .unwrap_err();
        assert!(err.to_string().contains("sh -c"), "{err}");
        assert!(err.to_string().contains("bad"), "{err}");
    }

    #[test]
    fn real_exec_kills_at_the_timeout() {
        let t0 = std::time::Instant::now();
        let out = RealExec
            .output(
                &CommandSpec::new("sh")
                    .args(["-c", "echo started; sleep 30"])
                    .timeout(std::time::Duration::from_millis(300)),
            )
            .unwrap();
        assert!(t0.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(out.status, -1);
        assert_eq!(out.stdout.trim(), "started");
        assert!(out.stderr.contains("killed after"), "{}", out.stderr);
        let ok = RealExec
            .output(
                &CommandSpec::new("sh")
                    .args(["-c", "exit 4"])
                    .timeout(std::time::Duration::from_secs(10)),
            )
            .unwrap();
        assert_eq!(ok.status, 4);
    }

    #[test]
    fn real_spawn_streams_both_ways_and_reports_status() {
        let e = RealExec;
        let mut s = e
            .spawn(
                &CommandSpec::new("sh").args(["-c", "seq 1 100000; echo oops >&2; exit 4"]),
                Pipe::Out,
            )
            .unwrap();
        let mut text = String::new();
        s.stdout.take().unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text.lines().count(), 100_000);
        let out = s.wait().unwrap();
        assert_eq!((out.status, out.stderr.trim()), (4, "oops"));
        let mut s = e
            .spawn(&CommandSpec::new("sh").args(["-c", "wc -c"]), Pipe::In)
            .unwrap();
        s.stdin
            .as_mut()
            .unwrap()
            .write_all(&[7u8; 300_000])
            .unwrap();
        let out = s.wait().unwrap();
        assert_eq!((out.status, out.stdout.trim()), (0, "300000"));
        let s = e
            .spawn(&CommandSpec::new("sleep").arg("30"), Pipe::Out)
            .unwrap();
        (s.killer())();
        assert_eq!(s.wait().unwrap().status, 128 + 9);
    }

    #[test]
    fn fake_spawn_goes_through_output() {
        let f = FakeExec::new();
        f.answer(
            "dump",
            ExecOutput {
                status: 2,
                stdout: "partial".into(),
                stderr: "boom".into(),
            },
        );
        let mut s = f.spawn(&CommandSpec::new("dump"), Pipe::Out).unwrap();
        let mut t = String::new();
        s.stdout.take().unwrap().read_to_string(&mut t).unwrap();
        assert_eq!(t, "partial");
        assert_eq!(s.wait().unwrap().status, 2);
        let mut s = f.spawn(&CommandSpec::new("load"), Pipe::In).unwrap();
        s.stdin.as_mut().unwrap().write_all(b"abc").unwrap();
        s.wait().unwrap();
        let calls = f.calls.lock().unwrap();
        assert_eq!(calls.last().unwrap().stdin.as_deref(), Some(&b"abc"[..]));
    }

    #[test]
    fn fake_exec_records() {
        let f = FakeExec::new();
        f.answer(
            "blkid",
            ExecOutput {
                status: 0,
                stdout: "X".into(),
                stderr: String::new(),
            },
        );
        assert_eq!(
            f.output(&CommandSpec::new("blkid").arg("/dev/md0"))
                .unwrap()
                .stdout,
            "X"
        );
        assert_eq!(f.calls(), vec!["blkid /dev/md0".to_string()]);
    }
}
