//! A small client of the MySQL/MariaDB classic protocol: handshake v10, login, `COM_QUERY` with
//! text result sets. Hand-written on tokio because the maintained crate (`mysql_async` 0.37)
//! cannot finish the authentication Debian's MariaDB and Ubuntu's MySQL use for root: the
//! server switches to `unix_socket`/`auth_socket`, mysql_async answers and then fails with
//! "unknown auth plugin" instead of reading the OK that follows. This client knows those
//! plugins (nothing to send: the server reads the socket's peer credentials), plus
//! `mysql_native_password` and `caching_sha2_password` (fast path; the full path only over the
//! unix socket, where the server accepts the password in clear).
//!
//! The byte layouts are pure functions ([`parse_handshake`], [`handshake_response`],
//! [`scramble_native`], [`parse_result_packet`], ...) tested without a server; `tests.rs` also runs
//! a fake server over a socket pair.

use super::{
    login_within, open_stream, query_within, DbError, Endpoint, Rows, Session, Stream, Target,
};
use anyhow::Result;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

pub const CLIENT_LONG_PASSWORD: u32 = 1;
pub const CLIENT_LONG_FLAG: u32 = 4;
pub const CLIENT_CONNECT_WITH_DB: u32 = 8;
pub const CLIENT_PROTOCOL_41: u32 = 0x200;
pub const CLIENT_TRANSACTIONS: u32 = 0x2000;
pub const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
pub const CLIENT_MULTI_RESULTS: u32 = 0x20000;
pub const CLIENT_PLUGIN_AUTH: u32 = 0x80000;
pub const CLIENT_PLUGIN_AUTH_LENENC: u32 = 0x200000;
const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;
/// utf8mb4_general_ci
const CHARSET: u8 = 45;
const MAX_PACKET: usize = 0xFF_FFFF;

/// The server's first packet (protocol 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub server_version: String,
    pub connection_id: u32,
    pub capabilities: u32,
    pub nonce: Vec<u8>,
    pub plugin: String,
}

fn cstr(p: &[u8], i: &mut usize) -> Option<String> {
    let rest = p.get(*i..)?;
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let s = String::from_utf8_lossy(&rest[..end]).into_owned();
    *i += end + 1;
    Some(s)
}

/// Parse the initial handshake packet (payload only).
pub fn parse_handshake(p: &[u8]) -> std::result::Result<Handshake, String> {
    if p.first() == Some(&0xFF) {
        let (code, msg) = parse_err(p);
        return Err(format!("{msg} ({code})"));
    }
    if p.first() != Some(&10) {
        return Err(format!(
            "protocol version {:?} (only 10 is known)",
            p.first()
        ));
    }
    let short = || "short handshake packet".to_string();
    let mut i = 1;
    let server_version = cstr(p, &mut i).ok_or_else(short)?;
    let u32_at =
        |i: usize| -> Option<u32> { Some(u32::from_le_bytes(p.get(i..i + 4)?.try_into().ok()?)) };
    let u16_at = |i: usize| -> Option<u32> {
        Some(u16::from_le_bytes(p.get(i..i + 2)?.try_into().ok()?) as u32)
    };
    let connection_id = u32_at(i).ok_or_else(short)?;
    i += 4;
    let mut nonce = p.get(i..i + 8).ok_or_else(short)?.to_vec();
    i += 9; // 8 bytes + filler
    let mut caps = u16_at(i).ok_or_else(short)?;
    i += 2;
    let mut plugin = String::new();
    if p.len() > i {
        i += 1 + 2; // charset, status
        caps |= u16_at(i).ok_or_else(short)? << 16;
        i += 2;
        let auth_len = *p.get(i).ok_or_else(short)? as usize;
        i += 1 + 10; // reserved (MariaDB: extended capabilities in its last 4 bytes)
        if caps & CLIENT_SECURE_CONNECTION != 0 {
            let n = (auth_len.saturating_sub(8)).max(13);
            let part = p.get(i..(i + n).min(p.len())).ok_or_else(short)?;
            // The second part ends with a NUL that is not part of the nonce.
            let part = part.strip_suffix(&[0]).unwrap_or(part);
            nonce.extend_from_slice(part);
            i += n;
        }
        if caps & CLIENT_PLUGIN_AUTH != 0 {
            plugin = cstr(p, &mut i).unwrap_or_default();
        }
    }
    Ok(Handshake {
        server_version,
        connection_id,
        capabilities: caps,
        nonce,
        plugin,
    })
}

/// The capability flags this client asks for, given the server's.
pub fn client_capabilities(server: u32, with_db: bool) -> u32 {
    let mut want = CLIENT_LONG_PASSWORD
        | CLIENT_LONG_FLAG
        | CLIENT_PROTOCOL_41
        | CLIENT_TRANSACTIONS
        | CLIENT_SECURE_CONNECTION
        | CLIENT_MULTI_RESULTS
        | CLIENT_PLUGIN_AUTH
        | CLIENT_PLUGIN_AUTH_LENENC;
    if with_db {
        want |= CLIENT_CONNECT_WITH_DB;
    }
    want & (server | CLIENT_LONG_PASSWORD)
}

pub fn put_lenenc_int(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xFA => out.push(n as u8),
        0xFB..=0xFFFF => {
            out.push(0xFC);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0xFD);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xFE);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// A length-encoded integer at `*i`; `None` for the NULL marker (0xFB) or a short buffer.
pub fn lenenc_int(p: &[u8], i: &mut usize) -> Option<u64> {
    let b = *p.get(*i)?;
    let (n, len) = match b {
        0..=0xFA => (b as u64, 1),
        0xFC => (
            u16::from_le_bytes(p.get(*i + 1..*i + 3)?.try_into().ok()?) as u64,
            3,
        ),
        0xFD => {
            let s = p.get(*i + 1..*i + 4)?;
            (u32::from_le_bytes([s[0], s[1], s[2], 0]) as u64, 4)
        }
        0xFE => (
            u64::from_le_bytes(p.get(*i + 1..*i + 9)?.try_into().ok()?),
            9,
        ),
        _ => return None,
    };
    *i += len;
    Some(n)
}

fn lenenc_str(p: &[u8], i: &mut usize) -> Option<Option<String>> {
    if p.get(*i) == Some(&0xFB) {
        *i += 1;
        return Some(None);
    }
    let n = lenenc_int(p, i)? as usize;
    let s = p.get(*i..*i + n)?;
    *i += n;
    Some(Some(String::from_utf8_lossy(s).into_owned()))
}

/// The client's handshake response (protocol 41).
pub fn handshake_response(
    caps: u32,
    user: &str,
    auth: &[u8],
    database: Option<&str>,
    plugin: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + user.len() + auth.len());
    out.extend_from_slice(&caps.to_le_bytes());
    out.extend_from_slice(&(MAX_PACKET as u32).to_le_bytes());
    out.push(CHARSET);
    out.extend_from_slice(&[0u8; 23]);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    if caps & CLIENT_PLUGIN_AUTH_LENENC != 0 {
        put_lenenc_int(&mut out, auth.len() as u64);
        out.extend_from_slice(auth);
    } else {
        out.push(auth.len() as u8);
        out.extend_from_slice(auth);
    }
    if caps & CLIENT_CONNECT_WITH_DB != 0 {
        out.extend_from_slice(database.unwrap_or("").as_bytes());
        out.push(0);
    }
    if caps & CLIENT_PLUGIN_AUTH != 0 {
        out.extend_from_slice(plugin.as_bytes());
        out.push(0);
    }
    out
}

/// `mysql_native_password`: SHA1(pw) XOR SHA1(nonce[..20] + SHA1(SHA1(pw))); empty for no
/// password.
pub fn scramble_native(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let h1 = Sha1::digest(password);
    let h2 = Sha1::digest(h1);
    let mut h = Sha1::new();
    h.update(&nonce[..nonce.len().min(20)]);
    h.update(h2);
    let h3 = h.finalize();
    h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect()
}

/// `caching_sha2_password` (fast path): SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce).
pub fn scramble_sha2(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let h1 = Sha256::digest(password);
    let h2 = Sha256::digest(h1);
    let mut h = Sha256::new();
    h.update(h2);
    h.update(&nonce[..nonce.len().min(20)]);
    let h3 = h.finalize();
    h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect()
}

/// What to send for `plugin`; `Err` names a plugin this client cannot speak.
pub fn auth_data(
    plugin: &str,
    password: &str,
    nonce: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    match plugin {
        "" | "mysql_native_password" => Ok(scramble_native(password.as_bytes(), nonce)),
        "caching_sha2_password" => Ok(scramble_sha2(password.as_bytes(), nonce)),
        // The server reads the connecting process's uid from the socket.
        "unix_socket" | "auth_socket" => Ok(Vec::new()),
        "mysql_clear_password" => {
            let mut v = password.as_bytes().to_vec();
            v.push(0);
            Ok(v)
        }
        other => Err(format!(
            "the account uses the authentication plugin {other:?}, which dbhost does not \
             speak (it knows mysql_native_password, caching_sha2_password, unix_socket)"
        )),
    }
}

/// An ERR packet: (error number as text, message).
pub fn parse_err(p: &[u8]) -> (String, String) {
    let code = p
        .get(1..3)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .unwrap_or(0);
    let mut msg = p.get(3..).unwrap_or(&[]);
    if msg.first() == Some(&b'#') && msg.len() >= 6 {
        msg = &msg[6..]; // '#' + SQLSTATE
    }
    (code.to_string(), String::from_utf8_lossy(msg).into_owned())
}

/// The status flags of an OK packet (after affected rows and last insert id).
fn ok_status(p: &[u8]) -> (u64, u16) {
    let mut i = 1;
    let affected = lenenc_int(p, &mut i).unwrap_or(0);
    let _ = lenenc_int(p, &mut i);
    let status = p
        .get(i..i + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .unwrap_or(0);
    (affected, status)
}

fn is_eof(p: &[u8]) -> bool {
    p.first() == Some(&0xFE) && p.len() < 9
}

/// One column definition packet: the column's name.
pub fn column_name(p: &[u8]) -> Option<String> {
    let mut i = 0;
    for _ in 0..4 {
        lenenc_str(p, &mut i)?; // catalog, schema, table, org_table
    }
    lenenc_str(p, &mut i)?
}

/// One text-protocol row of `n` values.
pub fn parse_row(p: &[u8], n: usize) -> Option<Vec<Option<String>>> {
    let mut i = 0;
    (0..n).map(|_| lenenc_str(p, &mut i)).collect()
}

pub struct MySession {
    rt: Runtime,
    conn: MyConn,
}

struct MyConn {
    stream: Stream,
    seq: u8,
    target: Target,
    /// Set once the server said goodbye or the connection broke.
    broken: bool,
}

impl MySession {
    pub fn connect(rt: Runtime, t: &Target) -> Result<Self> {
        let stream = rt.block_on(open_stream(t))?;
        let mut conn = MyConn {
            stream,
            seq: 0,
            target: t.clone(),
            broken: false,
        };
        rt.block_on(login_within(t, conn.login()))?;
        Ok(MySession { rt, conn })
    }
}

impl Drop for MySession {
    fn drop(&mut self) {
        if !self.conn.broken {
            let conn = &mut self.conn;
            // COM_QUIT, best effort: the server would notice the closed socket anyway.
            let _ = self.rt.block_on(async {
                tokio::time::timeout(std::time::Duration::from_millis(200), async {
                    conn.seq = 0;
                    conn.write_packet(&[0x01]).await
                })
                .await
            });
        }
    }
}

impl MyConn {
    fn proto(&mut self, message: impl Into<String>) -> DbError {
        self.broken = true;
        DbError::Protocol {
            endpoint: self.target.endpoint.to_string(),
            message: message.into(),
        }
    }

    async fn read_packet(&mut self) -> Result<Vec<u8>, DbError> {
        let mut payload = Vec::new();
        loop {
            let mut h = [0u8; 4];
            if let Err(e) = self.stream.read_exact(&mut h).await {
                return Err(self.proto(format!("receiving: {e}")));
            }
            let n = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
            self.seq = h[3].wrapping_add(1);
            let start = payload.len();
            payload.resize(start + n, 0);
            if let Err(e) = self.stream.read_exact(&mut payload[start..]).await {
                return Err(self.proto(format!("receiving: {e}")));
            }
            if n < MAX_PACKET {
                return Ok(payload);
            }
        }
    }

    async fn write_packet(&mut self, payload: &[u8]) -> Result<(), DbError> {
        let mut buf = Vec::with_capacity(payload.len() + 8);
        let mut chunks = payload.chunks(MAX_PACKET).peekable();
        if payload.is_empty() {
            buf.extend_from_slice(&[0, 0, 0, self.seq]);
            self.seq = self.seq.wrapping_add(1);
        }
        while let Some(c) = chunks.next() {
            buf.extend_from_slice(&(c.len() as u32).to_le_bytes()[..3]);
            buf.push(self.seq);
            self.seq = self.seq.wrapping_add(1);
            buf.extend_from_slice(c);
            if chunks.peek().is_none() && c.len() == MAX_PACKET {
                buf.extend_from_slice(&[0, 0, 0, self.seq]);
                self.seq = self.seq.wrapping_add(1);
            }
        }
        if let Err(e) = self.stream.write_all(&buf).await {
            return Err(self.proto(format!("sending: {e}")));
        }
        Ok(())
    }

    fn refused(&self, code: String, message: String) -> DbError {
        DbError::Refused {
            endpoint: self.target.endpoint.to_string(),
            user: self.target.user.clone(),
            code,
            message,
        }
    }

    async fn login(&mut self) -> Result<(), DbError> {
        let first = self.read_packet().await?;
        let hs = match parse_handshake(&first) {
            Ok(h) => h,
            Err(e) if first.first() == Some(&0xFF) => {
                let (code, msg) = parse_err(&first);
                let _ = e;
                return Err(self.refused(code, msg));
            }
            Err(e) => return Err(self.proto(e)),
        };
        let password = self.target.password.clone().unwrap_or_default();
        let db = self.target.database.clone();
        let caps = client_capabilities(hs.capabilities, db.is_some());
        let mut plugin = if hs.plugin.is_empty() {
            "mysql_native_password".to_string()
        } else {
            hs.plugin.clone()
        };
        let data = match auth_data(&plugin, &password, &hs.nonce) {
            Ok(d) => d,
            // Answer with the default plugin; the server may switch to one this client knows.
            Err(_) => {
                plugin = "mysql_native_password".into();
                scramble_native(password.as_bytes(), &hs.nonce)
            }
        };
        let resp = handshake_response(caps, &self.target.user, &data, db.as_deref(), &plugin);
        self.write_packet(&resp).await?;
        loop {
            let p = self.read_packet().await?;
            match p.first() {
                Some(0x00) => return Ok(()),
                Some(0xFF) => {
                    let (code, msg) = parse_err(&p);
                    self.broken = true;
                    return Err(self.refused(code, msg));
                }
                Some(0xFE) if p.len() > 1 => {
                    let mut i = 1;
                    plugin = cstr(&p, &mut i).unwrap_or_default();
                    let rest = p.get(i..).unwrap_or(&[]);
                    let nonce = rest.strip_suffix(&[0]).unwrap_or(rest).to_vec();
                    let data = match auth_data(&plugin, &password, &nonce) {
                        Ok(d) => d,
                        Err(e) => return Err(self.refused(String::new(), e)),
                    };
                    self.write_packet(&data).await?;
                }
                // caching_sha2_password: 3 = fast auth done (OK follows), 4 = send the password.
                Some(0x01) if p.get(1) == Some(&3) => {}
                Some(0x01) if p.get(1) == Some(&4) => {
                    if !matches!(self.target.endpoint, Endpoint::Unix(_)) {
                        return Err(self.refused(
                            String::new(),
                            "caching_sha2_password wants the full password exchange, which \
                             needs TLS over TCP; connect over the unix socket, or give the \
                             account mysql_native_password"
                                .into(),
                        ));
                    }
                    let mut v = password.as_bytes().to_vec();
                    v.push(0);
                    self.write_packet(&v).await?;
                }
                Some(0x01) => {}
                _ => return Err(self.proto("unexpected packet while logging in")),
            }
        }
    }

    /// Read one result (OK, ERR, or a text result set). `Ok((rows, more))`.
    async fn read_result(&mut self, sql: &str) -> Result<(Rows, bool), DbError> {
        let p = self.read_packet().await?;
        let statement_error = |c: &MyConn, code: String, message: String| DbError::Statement {
            endpoint: c.target.endpoint.to_string(),
            sql: sql.to_string(),
            code,
            message,
        };
        match p.first() {
            Some(0x00) => {
                let (affected, status) = ok_status(&p);
                return Ok((
                    Rows {
                        affected,
                        ..Rows::default()
                    },
                    status & SERVER_MORE_RESULTS_EXISTS != 0,
                ));
            }
            Some(0xFF) => {
                let (code, msg) = parse_err(&p);
                return Err(statement_error(self, code, msg));
            }
            Some(0xFB) => return Err(self.proto("the server asked for a local file")),
            _ => {}
        }
        let mut i = 0;
        let n = match lenenc_int(&p, &mut i) {
            Some(n) => n as usize,
            None => return Err(self.proto("bad column count")),
        };
        let mut rows = Rows::default();
        for _ in 0..n {
            let c = self.read_packet().await?;
            match column_name(&c) {
                Some(name) => rows.columns.push(name),
                None => return Err(self.proto("bad column definition")),
            }
        }
        let eof = self.read_packet().await?;
        if !is_eof(&eof) {
            return Err(self.proto("no EOF after the column definitions"));
        }
        loop {
            let r = self.read_packet().await?;
            if is_eof(&r) {
                let status = r
                    .get(3..5)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .unwrap_or(0);
                return Ok((rows, status & SERVER_MORE_RESULTS_EXISTS != 0));
            }
            if r.first() == Some(&0xFF) {
                let (code, msg) = parse_err(&r);
                return Err(statement_error(self, code, msg));
            }
            match parse_row(&r, n) {
                Some(v) => rows.rows.push(v),
                None => return Err(self.proto("bad row")),
            }
        }
    }

    async fn query(&mut self, sql: &str) -> Result<Rows, DbError> {
        if self.broken {
            return Err(self.proto("the connection is closed"));
        }
        self.seq = 0;
        let mut pkt = Vec::with_capacity(sql.len() + 1);
        pkt.push(0x03);
        pkt.extend_from_slice(sql.as_bytes());
        self.write_packet(&pkt).await?;
        let (first, mut more) = self.read_result(sql).await?;
        // Further result sets (a CALL): read and drop them, the first is the answer.
        while more {
            more = self.read_result(sql).await?.1;
        }
        Ok(first)
    }
}

impl Session for MySession {
    fn query(&mut self, sql: &str) -> Result<Rows> {
        let t = self.conn.target.clone();
        let conn = &mut self.conn;
        let r = self.rt.block_on(query_within(&t, sql, conn.query(sql)));
        if matches!(r, Err(DbError::Protocol { .. })) {
            // A timed-out statement leaves its answer in the pipe: never reuse the connection.
            self.conn.broken = true;
        }
        Ok(r?)
    }
}

/// Quote a string literal for SQL (both engines' standard quoting; backslashes too, for MySQL's
/// default sql_mode).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}
