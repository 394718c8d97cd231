//! Azure Instance Metadata Service client, just enough for `compute/storageProfile`.
//!
//! One GET through dbhost's HTTP client (`net::http`; no proxy is ever consulted, which IMDS
//! requires). Bounded retries with short backoff on 429, 410, 5xx, connection errors and
//! timeouts. IMDS encodes every JSON primitive as a string ("0", "None", "128"); the parser also
//! accepts numbers.

use super::model::CacheMode;
use crate::net::dns::Resolver;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::time::Duration;

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

/// The endpoint must be a plain `http://HOST[:PORT]` base: IMDS is link-local and unencrypted.
fn check_endpoint(endpoint: &str) -> Result<String> {
    let u = reqwest::Url::parse(endpoint)
        .with_context(|| format!("IMDS endpoint {endpoint:?} is not a URL"))?;
    if u.scheme() != "http" {
        bail!("IMDS endpoint {endpoint:?} must start with http://");
    }
    if u.path() != "/" || u.query().is_some() || u.host_str().is_none() {
        bail!("IMDS endpoint {endpoint:?} must be a base URL without a path (http://HOST[:PORT])");
    }
    Ok(endpoint.trim_end_matches('/').to_string())
}

async fn attempt(client: &reqwest::Client, url: &str) -> std::result::Result<String, AttemptError> {
    let err = |msg: String, retry| AttemptError { msg, retry };
    let what = |e: &reqwest::Error| {
        if e.is_timeout() {
            format!("timed out waiting for {url}")
        } else if e.is_connect() {
            format!("connecting to {url}: {}", chain(e))
        } else {
            format!("requesting {url}: {}", chain(e))
        }
    };
    let resp = client
        .get(url)
        .header("Metadata", "true")
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| err(what(&e), true))?;
    let status = resp.status().as_u16();
    if resp.content_length().is_some_and(|n| n > 1 << 20) {
        return Err(err(format!("answer from {url} exceeds 1 MiB"), false));
    }
    let body = resp.text().await.map_err(|e| err(what(&e), true))?;
    match status {
        200 => Ok(body),
        429 | 410 | 500..=599 => Err(err(format!("HTTP {status} from {url}"), true)),
        _ => Err(err(format!("HTTP {status} from {url}"), false)),
    }
}

/// An error and its sources on one line (reqwest's own text stops at "error sending request").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// GET `path` from IMDS with bounded retries (429, 410, 5xx, connection errors, timeouts).
pub fn get(cfg: &ImdsConfig, resolver: &Resolver, path: &str) -> Result<String> {
    let base = check_endpoint(&cfg.endpoint)?;
    let url = format!("{base}{path}");
    let client = crate::net::http::client(
        resolver,
        &crate::net::http::ClientOpts {
            timeout: cfg.timeout,
            no_proxy: true,
        },
    )?;
    let attempts = cfg.attempts.max(1);
    let backoff = cfg.backoff;
    crate::net::block_on(async move {
        let mut backoff = backoff;
        let mut last = String::new();
        for i in 0..attempts {
            if i > 0 {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
            match attempt(&client, &url).await {
                Ok(body) => return Ok(body),
                Err(e) => {
                    tracing::debug!("IMDS attempt {} failed: {}", i + 1, e.msg);
                    last = e.msg;
                    if !e.retry {
                        break;
                    }
                }
            }
        }
        bail!("querying IMDS {url}: {last}")
    })?
}

/// GET the storage profile with bounded retries. Returns the parsed profile and the raw body.
pub fn fetch_storage_profile(
    cfg: &ImdsConfig,
    resolver: &Resolver,
) -> Result<(StorageProfile, String)> {
    let body = get(cfg, resolver, STORAGE_PROFILE_PATH)?;
    let p = parse_storage_profile(&body)
        .with_context(|| format!("parsing IMDS answer from {}", cfg.endpoint))?;
    Ok((p, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    pub(crate) const GOOD: &str = r#"{"dataDisks":[{"caching":"None","createOption":"Empty","diskSizeGB":"128","lun":"0","name":"d0","managedDisk":{"id":"x","storageAccountType":"Premium_LRS"},"writeAcceleratorEnabled":"false"},{"caching":"ReadOnly","diskSizeGB":"256","lun":"1","name":"d1"}],"imageReference":{"offer":"debian-12"},"osDisk":{"caching":"ReadWrite","diskSizeGB":"30","name":"os","osType":"Linux"},"resourceDisk":{"size":"0"}}"#;

    fn find(h: &[u8], n: &[u8]) -> Option<usize> {
        h.windows(n.len()).position(|w| w == n)
    }

    fn resolver() -> Resolver {
        Resolver::from_host(&crate::host::Host::with_root("/nonexistent"))
    }

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
                assert!(
                    text.to_ascii_lowercase().contains("\r\nmetadata: true\r\n"),
                    "{text}"
                );
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
        let (p, raw) = fetch_storage_profile(&cfg(ep), &resolver()).unwrap();
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
        let (p, _) = fetch_storage_profile(&cfg(ep), &resolver()).unwrap();
        assert_eq!(p.data_disks.len(), 2);
    }

    #[test]
    fn not_found_is_not_retried() {
        let (ep, n) = server(vec![http("404 Not Found", "{}")]);
        let e = fetch_storage_profile(&cfg(ep), &resolver()).unwrap_err();
        assert!(e.to_string().contains("HTTP 404"), "{e}");
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn too_many_requests_then_ok() {
        let (ep, n) = server(vec![
            http("429 Too Many Requests", ""),
            http("200 OK", GOOD),
        ]);
        let (p, _) = fetch_storage_profile(&cfg(ep), &resolver()).unwrap();
        assert_eq!(p.data_disks.len(), 2);
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn server_error_is_retried_then_reported() {
        let (ep, n) = server(vec![http("500 Internal Server Error", "oops")]);
        let e = fetch_storage_profile(&cfg(ep), &resolver()).unwrap_err();
        assert!(e.to_string().contains("HTTP 500"), "{e}");
        assert_eq!(n.load(Ordering::SeqCst), 3, "bounded retries");
    }

    #[test]
    fn silent_server_times_out() {
        let (ep, n) = server(vec![None]);
        let mut c = cfg(ep);
        c.attempts = 2;
        let e = fetch_storage_profile(&c, &resolver()).unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn malformed_json_is_an_error() {
        let (ep, _) = server(vec![http("200 OK", "{\"dataDisks\": [")]);
        let e = fetch_storage_profile(&cfg(ep), &resolver()).unwrap_err();
        assert!(format!("{e:#}").contains("not valid JSON"), "{e:#}");
        let e = parse_storage_profile(r#"{"dataDisks": 5}"#).unwrap_err();
        assert!(e.to_string().contains("not an array"));
    }

    #[test]
    fn endpoint_must_be_plain_http_base() {
        assert!(check_endpoint("https://x").is_err());
        assert!(check_endpoint("http://x/path").is_err());
        assert!(check_endpoint("http://x:99999").is_err());
        assert_eq!(
            check_endpoint("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
    }
}
