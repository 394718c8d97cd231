//! Talking to database servers over their own protocols: PostgreSQL through `tokio-postgres`
//! (and, for replication-mode sessions, the same crate family's `postgres-protocol`), MySQL and
//! MariaDB through [`mysql`] (a small client of the classic protocol). Over the local unix socket
//! or TCP; no `psql`/`mysql` output is parsed anywhere.
//!
//! The seam: [`Client`] opens a [`Session`] for a [`Target`]. Production code gets its client from
//! [`crate::host::Exec::db`], so every function that may run a program may also query a server,
//! and unit tests answer both from fakes ([`FakeDb`]): no server is needed below the VM tier.
//!
//! Sessions are synchronous for the rest of dbhost: each owns a current-thread tokio runtime and
//! blocks on it. Host names are resolved without libc's NSS (a static binary has none): an IP
//! literal, then the host's `/etc/hosts`, then DNS through `hickory-resolver` ([`resolve`]).

mod fake;
pub mod mysql;
pub mod pg;

pub use fake::{FakeDb, FakeSession};

use crate::host::Host;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which wire protocol a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Postgres,
    Mysql,
}

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// The socket file (in-host absolute path, e.g. `/var/run/postgresql/.s.PGSQL.5432`).
    Unix(PathBuf),
    /// A resolved address; `name` is what the user wrote (for messages).
    Tcp { name: String, addr: SocketAddr },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
            Endpoint::Tcp { name, addr } if name == &addr.ip().to_string() => write!(f, "{addr}"),
            Endpoint::Tcp { name, addr } => write!(f, "{name}:{} ({})", addr.port(), addr.ip()),
        }
    }
}

/// How to reach and log in to one server.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub protocol: Protocol,
    pub endpoint: Endpoint,
    pub user: String,
    pub password: Option<String>,
    /// PostgreSQL: the database (default: `postgres`); MySQL: the default schema, if any.
    pub database: Option<String>,
    /// Connect with this effective OS user id: PostgreSQL's `peer` authentication over the unix
    /// socket maps the connecting process's uid to a role (dbhost runs as root, the role is
    /// `postgres`).
    pub as_uid: Option<u32>,
    /// PostgreSQL: a physical replication session (`replication=true`; pg_hba.conf's
    /// `replication` lines apply) that runs replication commands (`IDENTIFY_SYSTEM`, ...).
    pub replication: bool,
    pub connect_timeout: Duration,
    /// Each statement's limit (a server that accepted the connection but hangs).
    pub query_timeout: Duration,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("Target")
            .field("protocol", &self.protocol)
            .field("endpoint", &self.endpoint)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .field("as_uid", &self.as_uid)
            .field("replication", &self.replication)
            .finish()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as {}", self.endpoint, self.user)
    }
}

impl Target {
    pub fn new(protocol: Protocol, endpoint: Endpoint, user: &str) -> Self {
        Target {
            protocol,
            endpoint,
            user: user.to_string(),
            password: None,
            database: None,
            as_uid: None,
            replication: false,
            connect_timeout: Duration::from_secs(5),
            query_timeout: Duration::from_secs(60),
        }
    }
    pub fn password(mut self, p: Option<String>) -> Self {
        self.password = p;
        self
    }
    pub fn database(mut self, d: &str) -> Self {
        self.database = Some(d.to_string());
        self
    }
    pub fn as_uid(mut self, uid: Option<u32>) -> Self {
        self.as_uid = uid;
        self
    }
    pub fn replication(mut self) -> Self {
        self.replication = true;
        self
    }
    pub fn query_timeout(mut self, t: Duration) -> Self {
        self.query_timeout = t;
        self
    }
}

/// The text result of one statement (both protocols' simple/text query modes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows changed (statements without a result set).
    pub affected: u64,
}

impl Rows {
    /// The first column of the first row (`None` for no row or SQL NULL).
    pub fn scalar(&self) -> Option<&str> {
        self.rows.first()?.first()?.as_deref()
    }
    /// The value of column `name` in row `i`.
    pub fn get(&self, i: usize, name: &str) -> Option<&str> {
        let c = self
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))?;
        self.rows.get(i)?.get(c)?.as_deref()
    }
    /// A result with one row (tests and fakes).
    pub fn one(columns: &[&str], values: &[Option<&str>]) -> Rows {
        Rows {
            columns: columns.iter().map(|s| s.to_string()).collect(),
            rows: vec![values.iter().map(|v| v.map(str::to_string)).collect()],
            affected: 0,
        }
    }
    /// One column, one row.
    pub fn value(v: &str) -> Rows {
        Rows::one(&["?column?"], &[Some(v)])
    }
}

/// What went wrong, typed so callers can say what to fix.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Nothing answered (refused, unreachable, timed out, no socket file).
    #[error("cannot reach {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    /// The server answered and refused the login (or the database/host rule).
    #[error("{endpoint} refused user {user:?}: {message}{}", code_suffix(code))]
    Refused {
        endpoint: String,
        user: String,
        code: String,
        message: String,
    },
    /// A statement failed.
    #[error("{endpoint}: `{sql}` failed: {message}{}", code_suffix(code))]
    Statement {
        endpoint: String,
        sql: String,
        code: String,
        message: String,
    },
    /// The connection broke or the server said something this client does not understand.
    #[error("{endpoint}: {message}")]
    Protocol { endpoint: String, message: String },
}

fn code_suffix(code: &str) -> String {
    if code.is_empty() {
        String::new()
    } else {
        format!(" ({code})")
    }
}

impl DbError {
    /// The server's error code: SQLSTATE (PostgreSQL) or the error number (MySQL).
    pub fn code(&self) -> &str {
        match self {
            DbError::Refused { code, .. } | DbError::Statement { code, .. } => code,
            _ => "",
        }
    }
    pub fn message(&self) -> &str {
        match self {
            DbError::Unreachable { reason, .. } => reason,
            DbError::Refused { message, .. }
            | DbError::Statement { message, .. }
            | DbError::Protocol { message, .. } => message,
        }
    }
}

/// The `DbError` in an error chain, if any.
pub fn db_error(e: &anyhow::Error) -> Option<&DbError> {
    e.chain().find_map(|c| c.downcast_ref::<DbError>())
}

/// An open connection.
pub trait Session {
    /// Run one statement; its rows as text.
    fn query(&mut self, sql: &str) -> Result<Rows>;
    /// Run statements one by one, stopping at the first failure.
    fn run_all(&mut self, sqls: &[&str]) -> Result<()> {
        for s in sqls {
            self.query(s)?;
        }
        Ok(())
    }
}

/// Opens sessions. [`RealClient`] talks to servers; [`FakeDb`] answers from a table.
pub trait Client: Send + Sync {
    fn connect(&self, t: &Target) -> Result<Box<dyn Session + '_>>;
}

/// Connect and run one statement.
pub fn query(c: &dyn Client, t: &Target, sql: &str) -> Result<Rows> {
    c.connect(t)?.query(sql)
}

/// Connect, run one statement, return its first value (`None`: no row or NULL).
pub fn scalar(c: &dyn Client, t: &Target, sql: &str) -> Result<Option<String>> {
    Ok(query(c, t, sql)?.scalar().map(str::to_string))
}

/// Try each target in order; the first that logs in wins. When all fail, the error lists every
/// refusal (e.g. root over the socket, then the maintenance account of debian.cnf).
pub fn connect_first<'a>(
    c: &'a dyn Client,
    targets: &[Target],
) -> Result<(Box<dyn Session + 'a>, Target)> {
    let mut errs = Vec::new();
    for t in targets {
        match c.connect(t) {
            Ok(s) => return Ok((s, t.clone())),
            Err(e) => errs.push(format!("{e:#}")),
        }
    }
    match errs.len() {
        0 => anyhow::bail!("no way to reach the server is configured"),
        1 => Err(anyhow::anyhow!(errs.remove(0))),
        _ => anyhow::bail!("every login was refused: {}", errs.join("; ")),
    }
}

/// Talks to real servers.
#[derive(Debug, Default)]
pub struct RealClient;

impl Client for RealClient {
    fn connect(&self, t: &Target) -> Result<Box<dyn Session + '_>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| anyhow::anyhow!("starting the I/O runtime: {e}"))?;
        Ok(match t.protocol {
            Protocol::Postgres if t.replication => Box::new(pg::ReplSession::connect(rt, t)?),
            Protocol::Postgres => Box::new(pg::PgSession::connect(rt, t)?),
            Protocol::Mysql => Box::new(mysql::MySession::connect(rt, t)?),
        })
    }
}

pub static REAL: RealClient = RealClient;

/// A login (`fut`) bounded by the target's connect timeout.
pub(crate) async fn login_within<T>(
    t: &Target,
    fut: impl std::future::Future<Output = std::result::Result<T, DbError>>,
) -> std::result::Result<T, DbError> {
    match tokio::time::timeout(t.connect_timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(DbError::Unreachable {
            endpoint: t.endpoint.to_string(),
            reason: format!("no login answer within {:?}", t.connect_timeout),
        }),
    }
}

/// A statement (`fut`) bounded by the target's query timeout.
pub(crate) async fn query_within<T>(
    t: &Target,
    sql: &str,
    fut: impl std::future::Future<Output = std::result::Result<T, DbError>>,
) -> std::result::Result<T, DbError> {
    match tokio::time::timeout(t.query_timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(DbError::Protocol {
            endpoint: t.endpoint.to_string(),
            message: format!("`{sql}` did not finish within {:?}", t.query_timeout),
        }),
    }
}

/// Open the transport: a TCP connection, or the unix socket (as `t.as_uid` when set).
pub(crate) async fn open_stream(t: &Target) -> std::result::Result<Stream, DbError> {
    let unreachable = |reason: String| DbError::Unreachable {
        endpoint: t.endpoint.to_string(),
        reason,
    };
    let fut = async {
        match &t.endpoint {
            Endpoint::Tcp { addr, .. } => {
                let s = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                let _ = s.set_nodelay(true);
                Ok(Stream::Tcp(s))
            }
            Endpoint::Unix(path) => {
                let std = match t.as_uid {
                    Some(uid) => {
                        let p = path.clone();
                        // The uid is changed for the connecting thread only; see db::sys.
                        std::thread::spawn(move || super::sys::connect_unix_as(&p, uid))
                            .join()
                            .map_err(|_| unreachable("the connecting thread panicked".into()))?
                    }
                    None => std::os::unix::net::UnixStream::connect(path),
                }
                .map_err(|e| unreachable(e.to_string()))?;
                std.set_nonblocking(true)
                    .map_err(|e| unreachable(e.to_string()))?;
                tokio::net::UnixStream::from_std(std)
                    .map(Stream::Unix)
                    .map_err(|e| unreachable(e.to_string()))
            }
        }
    };
    match tokio::time::timeout(t.connect_timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(unreachable(format!(
            "no answer within {:?}",
            t.connect_timeout
        ))),
    }
}

/// A connected transport (both kinds behave as one byte stream).
pub(crate) enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// name resolution without NSS

/// Resolve `name:port` without libc: dbhost's one resolver ([`crate::net::dns`]: an IP literal
/// as is, the host's `/etc/hosts`, then DNS with the nameservers of its `/etc/resolv.conf`).
/// IPv4 first.
pub fn resolve(host: &Host, name: &str, port: u16) -> Result<Endpoint> {
    let r = crate::net::dns::Resolver::from_host(host);
    let n = name.to_string();
    let mut ips = crate::net::block_on(async move { r.lookup(&n).await })??;
    ips.sort_by_key(|ip| ip.is_ipv6());
    match ips.first() {
        Some(ip) => Ok(Endpoint::Tcp {
            name: name.to_string(),
            addr: SocketAddr::new(*ip, port),
        }),
        None => anyhow::bail!("{name}: no address"),
    }
}

#[cfg(test)]
mod tests;
