//! PostgreSQL sessions. Ordinary sessions go through `tokio-postgres` (simple query protocol:
//! every value as text). Replication-mode sessions (`replication=true`: what a standby and
//! `pg_basebackup` open, matched only by pg_hba.conf's `replication` lines) are not something
//! tokio-postgres 0.7 can start, so [`ReplSession`] speaks that startup, authentication
//! (SCRAM-SHA-256, md5, cleartext) and simple query itself with the same crate family's
//! `postgres-protocol` messages. It runs replication commands such as `IDENTIFY_SYSTEM`,
//! `SHOW wal_level`, `CREATE_REPLICATION_SLOT`, `DROP_REPLICATION_SLOT`.

use super::{login_within, open_stream, query_within, DbError, Rows, Session, Stream, Target};
use anyhow::Result;
use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::{ErrorResponseBody, Message};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

pub struct PgSession {
    rt: Runtime,
    client: tokio_postgres::Client,
    target: Target,
}

fn map_err(t: &Target, sql: Option<&str>, e: tokio_postgres::Error) -> DbError {
    let endpoint = t.endpoint.to_string();
    if let Some(db) = e.as_db_error() {
        let code = db.code().code().to_string();
        let message = db.message().to_string();
        // Class 28 (invalid authorization) and 3D000 (no such database) are login refusals.
        return match sql {
            Some(sql) if !code.starts_with("28") => DbError::Statement {
                endpoint,
                sql: sql.to_string(),
                code,
                message,
            },
            _ => DbError::Refused {
                endpoint,
                user: t.user.clone(),
                code,
                message,
            },
        };
    }
    DbError::Protocol {
        endpoint,
        message: format!("{e}"),
    }
}

impl PgSession {
    pub fn connect(rt: Runtime, t: &Target) -> Result<Self> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.user(&t.user)
            .dbname(t.database.as_deref().unwrap_or("postgres"))
            .application_name("dbhost");
        if let Some(p) = &t.password {
            cfg.password(p.as_bytes());
        }
        let client = rt.block_on(async {
            let stream = open_stream(t).await?;
            let (client, conn) = login_within(t, async {
                cfg.connect_raw(stream, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| map_err(t, None, e))
            })
            .await?;
            // The connection task runs whenever this runtime is driven (each query's
            // block_on); it ends with the client.
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, DbError>(client)
        })?;
        Ok(PgSession {
            rt,
            client,
            target: t.clone(),
        })
    }
}

impl Session for PgSession {
    fn query(&mut self, sql: &str) -> Result<Rows> {
        let t = &self.target;
        let client = &self.client;
        let msgs = self.rt.block_on(query_within(t, sql, async {
            client
                .simple_query(sql)
                .await
                .map_err(|e| map_err(t, Some(sql), e))
        }))?;
        let mut rows = Rows::default();
        for m in msgs {
            match m {
                tokio_postgres::SimpleQueryMessage::RowDescription(cols) => {
                    rows.columns = cols.iter().map(|c| c.name().to_string()).collect();
                }
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    if rows.columns.is_empty() {
                        rows.columns = r.columns().iter().map(|c| c.name().to_string()).collect();
                    }
                    rows.rows
                        .push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
                }
                tokio_postgres::SimpleQueryMessage::CommandComplete(n) => rows.affected = n,
                _ => {}
            }
        }
        Ok(rows)
    }
}

// ---------------------------------------------------------------------------------------------
// replication-mode sessions

/// A physical replication connection (`replication=true`), as a standby opens it.
pub struct ReplSession {
    rt: Runtime,
    conn: ReplConn,
}

struct ReplConn {
    stream: Stream,
    buf: BytesMut,
    target: Target,
}

fn error_fields(body: &ErrorResponseBody) -> (String, String) {
    let (mut code, mut msg) = (String::new(), String::new());
    let mut f = body.fields();
    while let Ok(Some(field)) = f.next() {
        let v = String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'C' => code = v,
            b'M' => msg = v,
            _ => {}
        }
    }
    (code, msg)
}

impl ReplSession {
    /// Connect in physical replication mode and log in.
    pub fn connect(rt: Runtime, t: &Target) -> Result<Self> {
        let stream = rt.block_on(open_stream(t))?;
        let mut conn = ReplConn {
            stream,
            buf: BytesMut::new(),
            target: t.clone(),
        };
        rt.block_on(login_within(t, conn.login()))?;
        Ok(ReplSession { rt, conn })
    }
}

impl ReplConn {
    fn proto(&self, message: impl Into<String>) -> DbError {
        DbError::Protocol {
            endpoint: self.target.endpoint.to_string(),
            message: message.into(),
        }
    }

    async fn send(&mut self, buf: &BytesMut) -> Result<(), DbError> {
        self.stream
            .write_all(buf)
            .await
            .map_err(|e| self.proto(format!("sending: {e}")))
    }

    async fn read(&mut self) -> Result<Message, DbError> {
        loop {
            match Message::parse(&mut self.buf) {
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {}
                Err(e) => return Err(self.proto(format!("bad message: {e}"))),
            }
            let mut chunk = [0u8; 8192];
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| self.proto(format!("receiving: {e}")))?;
            if n == 0 {
                return Err(self.proto("the server closed the connection"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn login(&mut self) -> Result<(), DbError> {
        let t = self.target.clone();
        let refused = |code: String, message: String| DbError::Refused {
            endpoint: t.endpoint.to_string(),
            user: t.user.clone(),
            code,
            message,
        };
        let mut out = BytesMut::new();
        frontend::startup_message(
            [
                ("user", t.user.as_str()),
                ("replication", "true"),
                ("application_name", "dbhost"),
            ],
            &mut out,
        )
        .map_err(|e| self.proto(e.to_string()))?;
        self.send(&out).await?;
        let password = || {
            t.password.clone().ok_or_else(|| {
                refused(
                    String::new(),
                    "the server asks for a password and none was given".into(),
                )
            })
        };
        let mut scram = None;
        loop {
            let mut out = BytesMut::new();
            match self.read().await? {
                Message::AuthenticationOk => {}
                Message::AuthenticationCleartextPassword => {
                    frontend::password_message(password()?.as_bytes(), &mut out)
                        .map_err(|e| self.proto(e.to_string()))?;
                }
                Message::AuthenticationMd5Password(b) => {
                    let h = postgres_protocol::authentication::md5_hash(
                        t.user.as_bytes(),
                        password()?.as_bytes(),
                        b.salt(),
                    );
                    frontend::password_message(h.as_bytes(), &mut out)
                        .map_err(|e| self.proto(e.to_string()))?;
                }
                Message::AuthenticationSasl(b) => {
                    let mut mechs = b.mechanisms();
                    let mut ok = false;
                    while let Ok(Some(m)) = mechs.next() {
                        ok |= m == "SCRAM-SHA-256";
                    }
                    if !ok {
                        return Err(self.proto("the server offers no SASL mechanism dbhost knows"));
                    }
                    let s = postgres_protocol::authentication::sasl::ScramSha256::new(
                        password()?.as_bytes(),
                        postgres_protocol::authentication::sasl::ChannelBinding::unsupported(),
                    );
                    frontend::sasl_initial_response("SCRAM-SHA-256", s.message(), &mut out)
                        .map_err(|e| self.proto(e.to_string()))?;
                    scram = Some(s);
                }
                Message::AuthenticationSaslContinue(b) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| self.proto("SASL continue without a start"))?;
                    s.update(b.data())
                        .map_err(|e| refused(String::new(), e.to_string()))?;
                    frontend::sasl_response(s.message(), &mut out)
                        .map_err(|e| self.proto(e.to_string()))?;
                }
                Message::AuthenticationSaslFinal(b) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| self.proto("SASL final without a start"))?;
                    s.finish(b.data())
                        .map_err(|e| refused(String::new(), e.to_string()))?;
                }
                Message::ErrorResponse(b) => {
                    let (code, msg) = error_fields(&b);
                    return Err(refused(code, msg));
                }
                Message::ReadyForQuery(_) => return Ok(()),
                Message::ParameterStatus(_)
                | Message::BackendKeyData(_)
                | Message::NoticeResponse(_) => {}
                _ => return Err(self.proto("unexpected message while logging in")),
            }
            if !out.is_empty() {
                self.send(&out).await?;
            }
        }
    }

    async fn simple(&mut self, sql: &str) -> Result<Rows, DbError> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out).map_err(|e| self.proto(e.to_string()))?;
        self.send(&out).await?;
        let mut rows = Rows::default();
        let mut failed = None;
        loop {
            match self.read().await? {
                Message::RowDescription(b) => {
                    let mut f = b.fields();
                    while let Ok(Some(field)) = f.next() {
                        rows.columns.push(field.name().to_string());
                    }
                }
                Message::DataRow(b) => {
                    let buf = b.buffer();
                    let mut r = Vec::new();
                    let mut ranges = b.ranges();
                    while let Ok(Some(range)) = ranges.next() {
                        r.push(range.map(|rg| String::from_utf8_lossy(&buf[rg]).into_owned()));
                    }
                    rows.rows.push(r);
                }
                Message::ErrorResponse(b) => failed = Some(error_fields(&b)),
                Message::ReadyForQuery(_) => break,
                // CommandComplete, CopyBoth for START_REPLICATION (never sent here), notices
                _ => {}
            }
        }
        match failed {
            Some((code, message)) => Err(DbError::Statement {
                endpoint: self.target.endpoint.to_string(),
                sql: sql.to_string(),
                code,
                message,
            }),
            None => Ok(rows),
        }
    }
}

impl Session for ReplSession {
    fn query(&mut self, sql: &str) -> Result<Rows> {
        let t = self.conn.target.clone();
        let conn = &mut self.conn;
        Ok(self.rt.block_on(query_within(&t, sql, conn.simple(sql)))?)
    }
}
