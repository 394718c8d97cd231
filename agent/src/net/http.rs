//! HTTP clients (reqwest over rustls) that resolve names with [`super::dns::Resolver`].
//! Object stores get their clients from `object_store` itself (it is handed the same resolver);
//! this factory serves dbhost's own requests, such as Azure IMDS.

use super::dns::Resolver;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Duration;

/// How a client connects.
#[derive(Debug, Clone)]
pub struct ClientOpts {
    /// Per-request timeout (connect, send, read the whole answer).
    pub timeout: Duration,
    /// Never consult `HTTP(S)_PROXY`: link-local metadata services require a direct connection.
    pub no_proxy: bool,
}

/// A client with dbhost's resolver, user agent and the given options.
pub fn client(resolver: &Resolver, opts: &ClientOpts) -> Result<reqwest::Client> {
    super::install_crypto();
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("dbhost/", env!("CARGO_PKG_VERSION")))
        .timeout(opts.timeout)
        .connect_timeout(opts.timeout)
        .dns_resolver(Arc::new(resolver.clone()))
        .tls_certs_merge(
            super::bundled_roots().filter_map(|der| reqwest::Certificate::from_der(der).ok()),
        );
    if opts.no_proxy {
        b = b.no_proxy();
    }
    b.build().context("building the HTTP client")
}
