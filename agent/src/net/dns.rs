//! Name resolution without libc: `/etc/hosts` first, then the nameservers of `/etc/resolv.conf`
//! (hickory-resolver, pure Rust). A static glibc binary that called `getaddrinfo` would need the
//! NSS modules of the exact glibc it was linked against at run time, which a minimal root or a
//! rescue initramfs does not have (rust-lang/rust#100711); this resolver needs only the two files.
//!
//! Both files are read through [`Host`], so a test points the resolver at a tree of its own.
//! A missing `resolv.conf` is not an error by itself: names from `hosts` and IP literals still
//! resolve, and a name found in neither fails naming both files.

use crate::host::Host;
use anyhow::{anyhow, Result};
use hickory_resolver::config::{ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Hosts, TokioResolver};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The configuration read from the host's files (what [`Resolver::lookup`] will use).
#[derive(Clone)]
struct Config {
    hosts: Arc<Hosts>,
    resolv: Option<ResolverConfig>,
    hosts_path: PathBuf,
    resolv_path: PathBuf,
    /// Why resolv.conf gave no nameserver (missing, unreadable, no `nameserver` line).
    resolv_problem: Option<String>,
}

/// A resolver over one host's `/etc/hosts` and `/etc/resolv.conf`; cheap to clone.
#[derive(Clone)]
pub struct Resolver {
    cfg: Config,
    /// Built on first use, inside the tokio runtime that will drive its queries. (A mutex, not a
    /// `OnceLock`: object_store requires resolvers to be unwind-safe.)
    inner: Arc<Mutex<Option<TokioResolver>>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("hosts", &self.cfg.hosts_path)
            .field("resolv_conf", &self.cfg.resolv_path)
            .finish()
    }
}

impl Resolver {
    /// Read the host's `etc/hosts` and `etc/resolv.conf` (either may be missing).
    pub fn from_host(host: &Host) -> Resolver {
        let hosts_path = host.etc("hosts");
        let resolv_path = host.etc("resolv.conf");
        let mut hosts = Hosts::default();
        if let Ok(f) = std::fs::File::open(&hosts_path) {
            if let Err(e) = hosts.read_hosts_conf(f) {
                tracing::warn!("reading {}: {e}", hosts_path.display());
            }
        }
        let (resolv, resolv_problem) = match std::fs::read(&resolv_path) {
            Err(e) => (None, Some(e.to_string())),
            Ok(bytes) => match hickory_resolver::system_conf::parse_resolv_conf(bytes) {
                Ok((c, _opts)) => (Some(c), None),
                Err(e) => (None, Some(e.to_string())),
            },
        };
        Resolver {
            cfg: Config {
                hosts: Arc::new(hosts),
                resolv,
                hosts_path,
                resolv_path,
                resolv_problem,
            },
            inner: Arc::new(Mutex::new(None)),
        }
    }

    fn resolver(&self) -> TokioResolver {
        let mut slot = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert_with(|| {
            let config = self
                .cfg
                .resolv
                .clone()
                .unwrap_or_else(|| ResolverConfig::from_parts(None, vec![], vec![]));
            let mut b = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
            // The hosts file comes from `Host`, never from the resolver's own fixed path.
            b.options_mut().use_hosts_file = ResolveHosts::Never;
            let mut r = b
                .build()
                .expect("a resolver from a parsed configuration builds");
            r.set_hosts(self.cfg.hosts.clone());
            r
        })
        .clone()
    }

    /// Addresses of `name` (an IP literal is returned as is). Must run inside a tokio runtime.
    pub async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>> {
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let found = self.resolver().lookup_ip(name).await;
        match found {
            Ok(l) => {
                let ips: Vec<IpAddr> = l.iter().collect();
                if ips.is_empty() {
                    Err(anyhow!("resolving {name}: no address"))
                } else {
                    Ok(ips)
                }
            }
            Err(e) => {
                let ns = match &self.cfg.resolv_problem {
                    Some(p) => format!(
                        "and no nameserver from {} ({p})",
                        self.cfg.resolv_path.display()
                    ),
                    None => format!(
                        "nameservers of {} answered: {e}",
                        self.cfg.resolv_path.display()
                    ),
                };
                Err(anyhow!(
                    "resolving {name}: not in {} {ns}",
                    self.cfg.hosts_path.display()
                ))
            }
        }
    }
}

impl object_store::client::DnsResolver for Resolver {
    fn resolve(&self, host: &str) -> object_store::client::DnsFuture {
        let r = self.clone();
        let host = host.to_string();
        Box::pin(async move { r.lookup(&host).await.map_err(|e| e.into_boxed_dyn_error()) })
    }
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let r = self.clone();
        Box::pin(async move {
            let ips = r
                .lookup(name.as_str())
                .await
                .map_err(|e| e.into_boxed_dyn_error())?;
            let addrs: reqwest::dns::Addrs =
                Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn tree(hosts: &str, resolv: Option<&str>) -> (tempfile::TempDir, Host) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/hosts"), hosts).unwrap();
        if let Some(r) = resolv {
            std::fs::write(d.path().join("etc/resolv.conf"), r).unwrap();
        }
        let h = Host::with_root(d.path());
        (d, h)
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn hosts_file_and_literals_resolve_without_nameserver() {
        let (_d, h) = tree("127.0.0.9 store.test\n", None);
        let r = Resolver::from_host(&h);
        let rt = rt();
        assert_eq!(
            rt.block_on(r.lookup("store.test")).unwrap(),
            vec!["127.0.0.9".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            rt.block_on(r.lookup("10.1.2.3")).unwrap(),
            vec!["10.1.2.3".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            rt.block_on(r.lookup("[::1]")).unwrap(),
            vec!["::1".parse::<IpAddr>().unwrap()]
        );
        let e = rt.block_on(r.lookup("elsewhere.test")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("elsewhere.test"), "{msg}");
        assert!(msg.contains("etc/hosts"), "{msg}");
        assert!(msg.contains("resolv.conf"), "{msg}");
    }

    /// A one-answer DNS responder on a loopback UDP port: every A query gets `ip`.
    fn responder(ip: [u8; 4]) -> u16 {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, peer)) = s.recv_from(&mut buf) {
                let q = &buf[..n];
                if n < 12 {
                    continue;
                }
                // Question ends after the name's zero label plus QTYPE and QCLASS.
                let mut i = 12;
                while i < n && q[i] != 0 {
                    i += 1 + q[i] as usize;
                }
                let qend = i + 5;
                if qend > n {
                    continue;
                }
                let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
                let mut a = q[..qend].to_vec();
                a[2] = 0x81; // response, recursion desired
                a[3] = 0x80; // recursion available, no error
                a[6..8].copy_from_slice(&u16::from(qtype == 1).to_be_bytes());
                a[8..12].fill(0);
                if qtype == 1 {
                    a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                    a.extend_from_slice(&ip);
                }
                let _ = s.send_to(&a, peer);
            }
        });
        port
    }

    #[test]
    fn nameserver_answers_when_hosts_does_not() {
        let port = responder([127, 0, 0, 42]);
        // resolv.conf cannot carry a port: point the parsed configuration at the responder.
        let (_d, h) = tree("", Some("nameserver 127.0.0.1\n"));
        let mut r = Resolver::from_host(&h);
        let mut c = r.cfg.resolv.take().unwrap();
        let (dom, search, mut ns) = c.clone().into_parts();
        for s in &mut ns {
            for conn in &mut s.connections {
                conn.port = port;
            }
        }
        c = ResolverConfig::from_parts(dom, search, ns);
        r.cfg.resolv = Some(c);
        let got = rt().block_on(r.lookup("bucket.store.test")).unwrap();
        assert!(
            got.contains(&"127.0.0.42".parse::<IpAddr>().unwrap()),
            "{got:?}"
        );
    }
}
