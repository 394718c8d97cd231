//! A loopback HTTP/1.1 server for tests: records every request and answers from a closure.
//! Stands in for IMDS and for a cloud endpoint whose protocol details a test checks.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// One request as the server saw it (header names lowercased).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// (status, headers, body)
pub type Reply = (u16, Vec<(String, String)>, Vec<u8>);

pub struct Server {
    pub base: String,
    pub seen: Arc<Mutex<Vec<Request>>>,
}

/// Start a server on 127.0.0.1 (any port); it runs until the test process ends.
pub fn serve(answer: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { break };
            let seen = seen2.clone();
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut it = line.split_whitespace();
                    let method = it.next().unwrap_or("").to_string();
                    let target = it.next().unwrap_or("").to_string();
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                        }
                    }
                    let len = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .and_then(|(_, v)| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let req = Request {
                        method,
                        target,
                        headers,
                    };
                    let (status, hs, b) = answer(&req);
                    seen.lock().unwrap().push(req);
                    let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", b.len());
                    for (k, v) in hs {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    if w.write_all(out.as_bytes()).is_err() || w.write_all(&b).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Server { base, seen }
}
