//! Network plumbing shared by every HTTP user (object stores, Azure IMDS): one tokio runtime
//! builder, one TLS provider (rustls with ring, no OpenSSL), one name resolver that never calls
//! libc's `getaddrinfo` (a static glibc binary cannot load the NSS modules it needs), and one
//! HTTP client factory.
//!
//! - [`dns`]: `/etc/hosts` then the nameservers of `/etc/resolv.conf`, both read through `Host`;
//! - [`http`]: `reqwest` clients built on that resolver.

pub mod dns;
pub mod http;

use anyhow::{Context, Result};
use std::future::Future;
use std::sync::Once;

/// Install rustls' ring provider as the process default (once). reqwest is built without a
/// bundled provider so that exactly one crypto library (ring) is linked.
pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // ring rather than aws-lc-rs: no C/CMake build of aws-lc and a smaller static binary.
        // rustls marks ring's provider deprecated because it lacks post-quantum key exchange;
        // backups that need more than TLS are encrypted on the host (age) before they leave.
        // Err means another provider is already installed, which is as good.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Mozilla's root certificates (DER), compiled in. TLS clients trust them in addition to the
/// system's store: a static binary in a minimal root (no ca-certificates package) still verifies
/// a cloud endpoint, and a system CA (a private endpoint, a corporate proxy) still counts.
pub fn bundled_roots() -> impl Iterator<Item = &'static [u8]> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|c| c.as_ref())
}

/// A tokio runtime for one command (network I/O and the backup pipeline's tasks).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    install_crypto();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("dbhost-net")
        .build()
        .context("starting the tokio runtime")
}

/// Run one future to completion on a fresh runtime (synchronous callers: IMDS, CLI commands).
pub fn block_on<F: Future>(f: F) -> Result<F::Output> {
    Ok(runtime()?.block_on(f))
}
