//! Azure Instance Metadata Service client, just enough for `compute/storageProfile`.
//!
//! A plain HTTP/1.1 GET over `std::net::TcpStream` (no proxy is ever consulted, which IMDS
//! requires; no HTTP crate needed for one request to a link-local address). Bounded retries with
//! short backoff on 429, 410, 5xx, connection errors and timeouts. IMDS encodes every JSON
//! primitive as a string ("0", "None", "128"); the parser also accepts numbers.

use super::model::CacheMode;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// IMDS path and API version queried.
pub const STORAGE_PROFILE_PATH: &str =
    "/metadata/instance/compute/storageProfile?api-version=2021-02-01";

#[derive(Debug, Clone)]
pub struct ImdsConfig {
    /// Base URL, `http://HOST[:PORT]`.
    pub endpoint: String,
    /// Per-attempt connect/read timeout.
    pub timeout: Duration,
    /// Total attempts (≥ 1).
    pub attempts: u32,
    /// Backoff before the 2nd attempt; doubles each retry.
    pub backoff: Duration,
}

/// One disk as IMDS describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImdsDisk {
    pub lun: Option<u32>,
    pub caching: CacheMode,
    pub size_gb: Option<u64>,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StorageProfile {
    pub os_disk: Option<ImdsDisk>,
    pub data_disks: Vec<ImdsDisk>,
}

fn s_or_n(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn disk(v: &Value) -> ImdsDisk {
    let num = |k: &str| {
        v.get(k)
            .and_then(s_or_n)
            .and_then(|s| s.parse::<u64>().ok())
    };
    let caching = match v.get("caching").and_then(s_or_n).as_deref() {
        Some("None") => CacheMode::None,
        Some("ReadOnly") => CacheMode::ReadOnly,
        Some("ReadWrite") => CacheMode::ReadWrite,
        _ => CacheMode::Unknown,
    };
    ImdsDisk {
        lun: num("lun").and_then(|l| u32::try_from(l).ok()),
        caching,
        size_gb: num("diskSizeGB"),
        name: v.get("name").and_then(s_or_n).unwrap_or_default(),
    }
}

/// Parse the JSON body of `compute/storageProfile`.
pub fn parse_storage_profile(body: &str) -> Result<StorageProfile> {
    let v: Value = serde_json::from_str(body).context("IMDS storageProfile is not valid JSON")?;
    if !v.is_object() {
        bail!("IMDS storageProfile is not a JSON object");
    }
    let data = match v.get("dataDisks") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().map(disk).collect(),
        Some(_) => bail!("IMDS storageProfile.dataDisks is not an array"),
    };
    Ok(StorageProfile {
        os_disk: v.get("osDisk").filter(|o| o.is_object()).map(disk),
        data_disks: data,
    })
}

/// Why one attempt failed, and whether another attempt may help.
#[derive(Debug)]
struct AttemptError {
    msg: String,
    retry: bool,
}

fn split_url(endpoint: &str) -> Result<(String, u16)> {
    let rest = endpoint
        .trim_end_matches('/')
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("IMDS endpoint {endpoint:?} must start with http://"))?;
    if rest.contains('/') {
        bail!("IMDS endpoint {endpoint:?} must be a base URL without a path (http://HOST[:PORT])");
    }
    match rest.rsplit_once(':') {
        Some((h, p)) => Ok((
            h.to_string(),
            p.parse()
                .with_context(|| format!("bad port in IMDS endpoint {endpoint:?}"))?,
        )),
        None => Ok((rest.to_string(), 80)),
    }
}

fn attempt(host: &str, port: u16, timeout: Duration) -> std::result::Result<String, AttemptError> {
    let err = |msg: String, retry| AttemptError { msg, retry };
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| err(format!("resolving {host}: {e}"), false))?
        .next()
        .ok_or_else(|| err(format!("{host} has no address"), false))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| err(format!("connecting to {addr}: {e}"), true))?;
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let req = format!(
        "GET {STORAGE_PROFILE_PATH} HTTP/1.1\r\nHost: {host}\r\nMetadata: true\r\nUser-Agent: dbhost/{}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    s.write_all(req.as_bytes())
        .map_err(|e| err(format!("sending request to {addr}: {e}"), true))?;
    // Read until the server closes (Connection: close), bounded in size and time.
    let deadline = Instant::now() + timeout;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if Instant::now() > deadline {
            return Err(err(format!("timed out reading from {addr}"), true));
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > 1 << 20 {
                    return Err(err(format!("answer from {addr} exceeds 1 MiB"), false));
                }
                if response_complete(&raw) {
                    break;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return Err(err(format!("timed out reading from {addr}"), true));
            }
            Err(e) => return Err(err(format!("reading from {addr}: {e}"), true)),
        }
    }
    let (status, body) =
        parse_response(&raw).map_err(|m| err(format!("bad HTTP answer from {addr}: {m}"), true))?;
    match status {
        200 => Ok(body),
        429 | 410 | 500..=599 => Err(err(format!("HTTP {status} from {addr}"), true)),
        _ => Err(err(format!("HTTP {status} from {addr}"), false)),
    }
}

/// True once headers and a Content-Length body (or final chunk) are in.
fn response_complete(raw: &[u8]) -> bool {
    let Some(hend) = find(raw, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..hend]).to_ascii_lowercase();
    let body = &raw[hend + 4..];
    if let Some(cl) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return body.len() >= cl;
    }
    if head.contains("transfer-encoding: chunked") {
        return find(body, b"0\r\n\r\n").is_some();
    }
    false
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn parse_response(raw: &[u8]) -> std::result::Result<(u16, String), String> {
    let hend = find(raw, b"\r\n\r\n").ok_or("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..hend]).into_owned();
    let mut lines = head.lines();
    let status_line = lines.next().ok_or("empty answer")?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let lower = head.to_ascii_lowercase();
    let mut body = raw[hend + 4..].to_vec();
    if lower.contains("transfer-encoding: chunked") {
        body = dechunk(&body)?;
    } else if let Some(cl) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        if body.len() < cl {
            return Err("body shorter than Content-Length".into());
        }
        body.truncate(cl);
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut b: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let le = find(b, b"\r\n").ok_or("truncated chunk size")?;
        let size_txt = String::from_utf8_lossy(&b[..le]);
        let size = usize::from_str_radix(size_txt.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_txt:?}"))?;
        b = &b[le + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// GET the storage profile with bounded retries. Returns the parsed profile and the raw body.
pub fn fetch_storage_profile(cfg: &ImdsConfig) -> Result<(StorageProfile, String)> {
    let (host, port) = split_url(&cfg.endpoint)?;
    let attempts = cfg.attempts.max(1);
    let mut backoff = cfg.backoff;
    let mut last = String::new();
    for i in 0..attempts {
        if i > 0 {
            std::thread::sleep(backoff);
            backoff = backoff.saturating_mul(2);
        }
        match attempt(&host, port, cfg.timeout) {
            Ok(body) => {
                let p = parse_storage_profile(&body)
                    .with_context(|| format!("parsing IMDS answer from {}", cfg.endpoint))?;
                return Ok((p, body));
            }
            Err(e) => {
                tracing::debug!("IMDS attempt {} failed: {}", i + 1, e.msg);
                last = e.msg;
                if !e.retry {
                    break;
                }
            }
        }
    }
    bail!(
        "querying IMDS {}{}: {last}",
        cfg.endpoint,
        STORAGE_PROFILE_PATH
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    pub(crate) const GOOD: &str = r#"{"dataDisks":[{"caching":"None","createOption":"Empty","diskSizeGB":"128","lun":"0","name":"d0","managedDisk":{"id":"x","storageAccountType":"Premium_LRS"},"writeAcceleratorEnabled":"false"},{"caching":"ReadOnly","diskSizeGB":"256","lun":"1","name":"d1"}],"imageReference":{"offer":"debian-12"},"osDisk":{"caching":"ReadWrite","diskSizeGB":"30","name":"os","osType":"Linux"},"resourceDisk":{"size":"0"}}"#;

    /// A loopback server answering each connection with the next scripted reply (`None` = accept
    /// and never answer). Returns the endpoint and a request counter.
    fn server(replies: Vec<Option<String>>) -> (String, Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let ep = format!("http://{}", l.local_addr().unwrap());
        let n = Arc::new(AtomicUsize::new(0));
        let n2 = n.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for (i, stream) in l.incoming().enumerate() {
                let Ok(mut s) = stream else { break };
                let mut req = Vec::new();
                let mut b = [0u8; 1024];
                while find(&req, b"\r\n\r\n").is_none() {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => req.extend_from_slice(&b[..k]),
                    }
                }
                let text = String::from_utf8_lossy(&req).into_owned();
                assert!(text.starts_with(&format!("GET {STORAGE_PROFILE_PATH} HTTP/1.1\r\n")));
                assert!(text.contains("\r\nMetadata: true\r\n"), "{text}");
                n2.fetch_add(1, Ordering::SeqCst);
                match replies.get(i.min(replies.len() - 1)).cloned().flatten() {
                    Some(r) => {
                        let _ = s.write_all(r.as_bytes());
                    }
                    None => held.push(s),
                }
            }
        });
        (ep, n)
    }
    fn http(status: &str, body: &str) -> Option<String> {
        Some(format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }
    fn cfg(ep: String) -> ImdsConfig {
        ImdsConfig {
            endpoint: ep,
            timeout: Duration::from_millis(300),
            attempts: 3,
            backoff: Duration::from_millis(10),
        }
    }

    #[test]
    fn good_answer_is_parsed() {
        let (ep, n) = server(vec![http("200 OK", GOOD)]);
        let (p, raw) = fetch_storage_profile(&cfg(ep)).unwrap();
        assert_eq!(raw, GOOD);
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert_eq!(p.data_disks.len(), 2);
        assert_eq!(
            p.data_disks[0],
            ImdsDisk {
                lun: Some(0),
                caching: CacheMode::None,
                size_gb: Some(128),
                name: "d0".into()
            }
        );
        assert_eq!(p.data_disks[1].caching, CacheMode::ReadOnly);
        assert_eq!(p.os_disk.unwrap().caching, CacheMode::ReadWrite);
    }

    #[test]
    fn chunked_answer_is_parsed() {
        let body = GOOD;
        let (a, b) = body.split_at(40);
        let r = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        );
        let (ep, _) = server(vec![Some(r)]);
        let (p, _) = fetch_storage_profile(&cfg(ep)).unwrap();
        assert_eq!(p.data_disks.len(), 2);
    }

    #[test]
    fn not_found_is_not_retried() {
        let (ep, n) = server(vec![http("404 Not Found", "{}")]);
        let e = fetch_storage_profile(&cfg(ep)).unwrap_err();
        assert!(e.to_string().contains("HTTP 404"), "{e}");
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn too_many_requests_then_ok() {
        let (ep, n) = server(vec![
            http("429 Too Many Requests", ""),
            http("200 OK", GOOD),
        ]);
        let (p, _) = fetch_storage_profile(&cfg(ep)).unwrap();
        assert_eq!(p.data_disks.len(), 2);
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn server_error_is_retried_then_reported() {
        let (ep, n) = server(vec![http("500 Internal Server Error", "oops")]);
        let e = fetch_storage_profile(&cfg(ep)).unwrap_err();
        assert!(e.to_string().contains("HTTP 500"), "{e}");
        assert_eq!(n.load(Ordering::SeqCst), 3, "bounded retries");
    }

    #[test]
    fn silent_server_times_out() {
        let (ep, n) = server(vec![None]);
        let mut c = cfg(ep);
        c.attempts = 2;
        let e = fetch_storage_profile(&c).unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn malformed_json_is_an_error() {
        let (ep, _) = server(vec![http("200 OK", "{\"dataDisks\": [")]);
        let e = fetch_storage_profile(&cfg(ep)).unwrap_err();
        assert!(format!("{e:#}").contains("not valid JSON"), "{e:#}");
        let e = parse_storage_profile(r#"{"dataDisks": 5}"#).unwrap_err();
        assert!(e.to_string().contains("not an array"));
    }

    #[test]
    fn endpoint_must_be_plain_http_base() {
        assert!(split_url("https://x").is_err());
        assert!(split_url("http://x/path").is_err());
        assert_eq!(
            split_url("http://127.0.0.1:8080/").unwrap(),
            ("127.0.0.1".into(), 8080)
        );
    }
}
